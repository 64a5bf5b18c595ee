/* cachefile.h - writes the gallery cache (cache/gallery_cache.json, one model per line, see
 * gallery.h) together with the two files derived from it, one model at a time:
 *
 *   cache/gallery_cache.json.gz   the same bytes gzip-compressed (nginx's gzip_static)
 *   cache/gallery_cache.index     the search index (sindex.h)
 *
 * All three are written to temp files and renamed into place at the end, the index and the
 * gzip copy first, so that a reader that sees the new cache file finds its index too. */
#ifndef MG_CACHEFILE_H
#define MG_CACHEFILE_H

#include <jansson.h>
#include <stddef.h>
#include <sys/stat.h>

#include "mg_error.h"

typedef struct cachefile cachefile;

/* What was written: each file's fstat. */
typedef struct cachefile_stats {
    struct stat cache, index, gzip;
    size_t models;
} cachefile_stats;

/* Starts writing the cache at `cache_path` for a gallery with these `version` and
 * `generated` values (borrowed, may be NULL for null). Returns an owned writer (end it with
 * cachefile_commit or cachefile_abort), or NULL and err. The caller holds the cache lock. */
cachefile *cachefile_begin(const char *cache_path, json_t *version, json_t *generated,
                           mg_error *err);

/* Appends `model` (borrowed; a valid model). 0, or -1 and err. */
int cachefile_add(cachefile *c, json_t *model, mg_error *err);

/* As cachefile_add, with the model's compact JSON text (one line) given. */
int cachefile_add_text(cachefile *c, json_t *model, const char *text, size_t len, mg_error *err);

/* Finishes the three files, fsyncs them and renames them into place; fills *out. Frees `c`
 * whatever happens. 0, or -1 and err (the old files then stay). */
int cachefile_commit(cachefile *c, cachefile_stats *out, mg_error *err);

void cachefile_abort(cachefile *c);

/* The jansson flags a value is written into the cache with: compact, keys in order, reals
 * with 15 significant digits ("4.1", not "4.0999999999999996"), or 17 when `v` (borrowed)
 * holds a real so large that 15 would round it past DBL_MAX: the cache always parses again. */
size_t cachefile_json_flags(json_t *v);

/* Writes the index and the gzip copy of the existing cache file at `cache_path` (the cache
 * itself is left as it is); fills *out. The caller holds the cache lock. 0, or -1 and err
 * (also when the file is not in cache format). */
int cachefile_derive(const char *cache_path, cachefile_stats *out, mg_error *err);

#endif
