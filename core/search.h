/* search.h - the search index of the validated cache, the search query, and answering
 * searches and facet counts from the index.
 *
 * The index is a file beside the cache (cache/gallery_cache.index, layout in sindex.h),
 * built once by whoever writes the cache and mapped read-only by every reader, so that
 * many processes share one copy. A search index names the cache file it describes; answers
 * copy model texts from that cache file, mapped with the index, so a cache replaced by
 * rename never mixes with the indexed one. */
#ifndef MG_SEARCH_H
#define MG_SEARCH_H

#include <jansson.h>
#include <stddef.h>
#include <sys/stat.h>

#include "mg_error.h"

typedef struct search_index search_index;

/* Maps the index file `index_path` and the cache file `cache_path` it describes and checks
 * the index through (see search_index.c). Returns an owned index (free with
 * search_index_free), or NULL and err: code "index_missing" (404) when there is no index
 * file, "index_stale" (409) when it describes another version of the cache file (or the
 * cache file is missing), "index_invalid" (500) when it is corrupted or foreign. */
search_index *search_index_open(const char *index_path, const char *cache_path, mg_error *err);

/* As search_index_open with the index beside the cache (gallery_index_path). */
search_index *search_index_load(const char *cache_path, mg_error *err);
void search_index_free(search_index *idx);

size_t search_index_count(const search_index *idx);

/* 1 when `st` (a fresh stat of the cache path) is the cache file this index describes
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
    char *family;         /* owned, lower-cased or NULL */
    double min_rating, min_size_gb, max_size_gb, max_ram_gb, max_vram_gb; /* NAN = unset */
    search_sort sort;
    int descending;
    long limit, offset;
    unsigned fit_mask;    /* the `fit` filter: bit c set for machine_fit_class c; 0: none */
    int fit_known;        /* the machine is known (search_query_set_machine): answers carry
                             fit and fit_estimated, facets count fit */
    double ram_bytes, vram_bytes; /* that machine's memory */
} search_query;

/* Parses a raw (URL-encoded) query string into `q` as the contract's parameter table says:
 * unknown parameters ignored, the last of a repeated parameter wins, an empty text filter
 * (query, category, language, tag, quantization, license, family, fit) ignored; an empty
 * numeric, paging or sort value is malformed; `fit` is a comma list of fit classes;
 * `query` is bounded (SEARCH_TERMS_MAX, SEARCH_TERM_BYTES_MAX) and its repeated terms
 * dropped. A malformed value: -1 and err 400 "invalid_parameter" naming
 * the parameter.
 * On success free `q` with search_query_free. */
int search_query_parse(search_query *q, const char *query_string, mg_error *err);
void search_query_free(search_query *q);

/* The machine that fit classes are computed for (machine.h): `ram_bytes` of RAM and
 * `vram_bytes` of VRAM. Without it answers carry no fit, the fit facet is empty, and the
 * `fit` filter compares with a machine of no memory. */
void search_query_set_machine(search_query *q, double ram_bytes, double vram_bytes);

/* Receives pieces of an answer; returns 0, or -1 to stop. */
typedef int (*search_write_fn)(void *ctx, const char *data, size_t len);

/* Runs `q` and writes {"total":N,"offset":o,"limit":l,"models":[...]} through `write`; with
 * a machine (search_query_set_machine) each model carries "fit" and "fit_estimated" last.
 * 0, or -1 and err (out of memory, or the writer stopping). */
int search_run(const search_index *idx, const search_query *q, search_write_fn write,
               void *ctx, mg_error *err);

/* Receives an answer piece by piece: `data` stays valid as long as the index stays mapped
 * when `stable` (a model's text, in the mapped cache file), else only during the call.
 * Returns 0, or -1 to stop. */
typedef int (*search_piece_fn)(void *ctx, const char *data, size_t len, int stable);

/* As search_run, answering through `piece` without copying the model texts. */
int search_run_pieces(const search_index *idx, const search_query *q, search_piece_fn piece,
                      void *ctx, mg_error *err);

/* The facets, in the order of the answer (the value fields of the index, then "fit"). */
#define SEARCH_FACETS 7
extern const char *const search_facet_names[SEARCH_FACETS];

#define SEARCH_FACET_LIMIT_DEFAULT 50
#define SEARCH_FACET_LIMIT_MAX 1000

/* Parses `facet_limit` (1-1000, default 50) from a raw query string; the other parameters
 * are search_query_parse's. 0, or -1 and err 400 "invalid_parameter" naming facet_limit. */
int search_facet_limit_parse(const char *query_string, long *limit, mg_error *err);

/* Writes {"total":N,"facets":{"category":[{"value":v,"count":c},...],...,"fit":[...]}}
 * through `write`: per facet, the lower-cased values of the models that match every filter
 * of `q` except the facet's own, with how many hold each, by count descending then value, at
 * most `facet_limit` of them; `total` counts the models matching every filter. `fit` counts
 * the fit classes on the machine of `q` (empty without one). 0, or -1 and err (the writer
 * stopping). */
int search_facets(const search_index *idx, const search_query *q, long facet_limit,
                  search_write_fn write, void *ctx, mg_error *err);

#endif
