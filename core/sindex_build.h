/* sindex_build.h - builds the search index file (sindex.h) while the cache is written, one
 * model at a time, so that its memory grows with the index, not with the gallery text. */
#ifndef MG_SINDEX_BUILD_H
#define MG_SINDEX_BUILD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "mg_error.h"

typedef struct sindex_builder sindex_builder;

/* Starts an index that is written to `fd` (an empty file open for writing; the builder
 * writes the haystacks as models come and the rest at the end). The fd stays the caller's.
 * Returns an owned builder (free with sindex_builder_free), or NULL and err. */
sindex_builder *sindex_builder_new(int fd, mg_error *err);

/* Adds `model` (borrowed, a valid model object), whose JSON text spans `text_len` bytes at
 * `text_off` in the cache file. Models are numbered in the order they are added. 0, or -1
 * and err (out of memory, a write error). */
int sindex_builder_add(sindex_builder *b, json_t *model, uint64_t text_off, size_t text_len,
                       mg_error *err);

/* Writes the rest of the file and its header, naming the cache file whose fstat is
 * `cache_st`. Does not fsync. 0, or -1 and err. */
int sindex_builder_finish(sindex_builder *b, const struct stat *cache_st, mg_error *err);

void sindex_builder_free(sindex_builder *b);

#endif
