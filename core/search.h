/* search.h - the in-memory search index over the validated cache, and the search query.
 *
 * The index is built once per process from cache/gallery_cache.json (streamed line by line,
 * no whole-document tree), keeps per model only what filters and sorts need plus the byte
 * span of the model's JSON text in the cache file, and pre-sorts every (sort, order) pair at
 * load time. Answers copy model texts from the cache file (pread on an fd the index keeps
 * open, so a cache replaced by rename never mixes with the indexed one). */
#ifndef MG_SEARCH_H
#define MG_SEARCH_H

#include <jansson.h>
#include <stddef.h>
#include <sys/stat.h>

#include "mg_error.h"

typedef struct search_index search_index;

/* Builds an index of the cache file at `cache_path`. Returns an owned index (free with
 * search_index_free), or NULL and err when the file is missing or not in cache format. */
search_index *search_index_load(const char *cache_path, mg_error *err);
void search_index_free(search_index *idx);

size_t search_index_count(const search_index *idx);

/* 1 when `st` (a fresh stat of the cache path) is the file this index was built from
 * (same device, inode, size and mtime). */
int search_index_is_current(const search_index *idx, const struct stat *st);

/* Returns a new reference to the model with `id` (parsed from its cache line), or NULL
 * when there is none. */
json_t *search_index_get(const search_index *idx, const char *id);

/* Bounds of the free-text `query`, checked before any work: at most this many distinct
 * terms, each at most this many bytes (400 invalid_parameter naming query otherwise). */
#define SEARCH_TERMS_MAX 32
#define SEARCH_TERM_BYTES_MAX 64

typedef enum { SEARCH_SORT_RATING, SEARCH_SORT_SIZE, SEARCH_SORT_NAME, SEARCH_SORT_UPDATED }
    search_sort;

typedef struct search_query {
    char *terms;          /* owned: the lower-cased query terms, each once, joined by one
                             space (at most SEARCH_TERMS_MAX), or NULL */
    char *category, *language, *tag, *quantization, *license; /* owned, lower-cased or NULL */
    double min_rating, min_size_gb, max_size_gb, max_ram_gb, max_vram_gb; /* NAN = unset */
    search_sort sort;
    int descending;
    long limit, offset;
} search_query;

/* Parses a raw (URL-encoded) query string into `q` as the contract's parameter table says:
 * unknown parameters ignored, the last of a repeated parameter wins, an empty text filter
 * (query, category, language, tag, quantization, license) ignored; an empty numeric, paging or
 * sort value is malformed; `query` is bounded (SEARCH_TERMS_MAX, SEARCH_TERM_BYTES_MAX) and
 * its repeated terms dropped. A malformed value: -1 and err 400 "invalid_parameter" naming
 * the parameter.
 * On success free `q` with search_query_free. */
int search_query_parse(search_query *q, const char *query_string, mg_error *err);
void search_query_free(search_query *q);

/* Receives pieces of an answer; returns 0, or -1 to stop. */
typedef int (*search_write_fn)(void *ctx, const char *data, size_t len);

/* Runs `q` and writes {"total":N,"offset":o,"limit":l,"models":[...]} through `write`.
 * 0, or -1 and err (an I/O error reading the cache, or the writer stopping). */
int search_run(const search_index *idx, const search_query *q, search_write_fn write,
               void *ctx, mg_error *err);

#endif
