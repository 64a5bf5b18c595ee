/* gallery.h - parsing and validating a gallery document, and the validated cache.
 *
 * A gallery is {version, generatedAt, models[]}. Invalid models are left out and reported
 * once each (log line with index, id and reason). The cache (cache/gallery_cache.json) holds
 * the validated payload exactly as GET /api/models/gallery answers it, one model per line so
 * that readers can index it without building a whole JSON tree:
 *
 *   {"version":...,"generatedAt":...,"models":[
 *   {...model 0...},
 *   {...model 1...}
 *   ]}
 *
 * Two files are derived from it and written with it: cache/gallery_cache.json.gz (the same
 * bytes gzip-compressed, for nginx's gzip_static) and cache/gallery_cache.index (the search
 * index, search.h). Its sidecar cache/gallery_cache.meta.json records where it came from
 * (the source files' size and mtime, or a URL's ETag/Last-Modified), the stat of the cache
 * file and of each derived file, and the invalid entries, so a corrupted or foreign file is
 * noticed and rewritten. */
#ifndef MG_GALLERY_H
#define MG_GALLERY_H

#include <jansson.h>
#include <stddef.h>
#include <sys/stat.h>

#include "config.h"
#include "mg_error.h"

#define GALLERY_MIRRORS_MAX 16 /* most URLs a model's mirrors array may hold */

/* Parses `len` bytes of gallery text; `source` names it in messages (a path or URL).
 * Returns a new reference to {version, generatedAt, models:[valid models]} and, when
 * `invalid` is not NULL, a new reference in *invalid to [{index, id, reason}, ...].
 * Text that is not JSON: NULL and err "<source>: not valid JSON at line L, column C: ...".
 * JSON without a models array: NULL and err. The caller decrefs both results. */
json_t *gallery_parse(const char *text, size_t len, const char *source, json_t **invalid,
                      mg_error *err);

/* As gallery_parse, reading the file at `path`. */
json_t *gallery_parse_file(const char *path, json_t **invalid, mg_error *err);

/* 1 when `model` (borrowed) satisfies the contract's rules, else 0 with a reason such as
 * "checksum must be sha256: followed by 64 hex digits" in `reason`. Uniqueness of ids is
 * checked by gallery_parse, not here. */
int gallery_model_valid(json_t *model, char *reason, size_t reason_len);

/* Checks the models of one gallery in order: each valid (gallery_model_valid) and its id not
 * used by an earlier model. */
typedef struct gallery_checker gallery_checker;
gallery_checker *gallery_checker_new(void); /* owned, or NULL when out of memory */
void gallery_checker_free(gallery_checker *c);

/* Checks model `index` (borrowed): 1 when it is kept (its id now taken), 0 when it is left
 * out (an {index, id, reason} appended to `invalid`, not logged), -1 when out of memory. */
int gallery_checker_check(gallery_checker *c, json_t *model, size_t index, json_t *invalid);

/* Logs each entry of `invalid` once: "<source>: model I (id X) left out: <reason>". */
void gallery_log_invalid(const char *source, json_t *invalid);

/* The file extension a model installs with, from its URL path (".gguf" when the path has
 * none or an odd one). Writes at most 16 bytes including NUL into `ext`. */
void gallery_model_ext(const char *download_url, char ext[16]);

/* Writes `gallery` (borrowed) to `cache_path` in the one-model-per-line format with its
 * derived files and its sidecar meta (borrowed `meta`, an object; the files' stats are
 * added), all atomically. The caller holds the cache lock (cache/.lock). 0, or -1 and err. */
int gallery_cache_write(const char *cache_path, json_t *gallery, json_t *meta, mg_error *err);

/* The files derived from the cache at `cache_path`: its search index (".json" replaced by
 * ".index") and its gzip copy (+ ".gz"), into `out` (size `n`). */
void gallery_index_path(const char *cache_path, char *out, size_t n);
void gallery_gzip_path(const char *cache_path, char *out, size_t n);

/* Makes sure cache/gallery_cache.json is usable and, in local mode (no gallery_url and no
 * galleries list), up to date with config/models_gallery.json: when the meta does not match
 * the source's or the cache file's size and mtime, rebuilds it under the cache lock and logs
 * each invalid model. A source that is not JSON keeps the last good cache (error logged and
 * recorded in the meta as "error"); with no good cache at all it is an error. Seeds
 * config/models_gallery.json from the repository's curated gallery when absent.
 * 0 when a usable cache exists afterwards, -1 and err otherwise. */
int gallery_cache_ensure(const mg_config *cfg, mg_error *err);

/* As gallery_cache_ensure, but returns 1 at once instead of waiting while another process
 * holds the cache lock (it is rebuilding: a reader with a cache to serve serves that). */
int gallery_cache_ensure_try(const mg_config *cfg, mg_error *err);

/* 1 when nothing is left to do for the cache: it and its derived files are up to date with
 * the source, or the source's failure is recorded (remote mode: always); 0 while a rebuild is
 * due. Only looks. */
int gallery_cache_settled(const mg_config *cfg);

/* A reader found the search index unusable (missing, corrupted, foreign, or naming another
 * cache file); `bad` is the stat it saw of the index path (zeroed when missing). Under the
 * cache lock, unless the index was replaced meanwhile (then 0: try the new one), derives
 * the index and the gzip copy from the cache file again (in local mode, rebuilds from the
 * source when the cache file itself is unusable). `wait` 0: returns 1 at once when another
 * process holds the lock (it is writing the cache). 0, 1, or -1 and err. */
int gallery_cache_repair(const mg_config *cfg, const struct stat *bad, int wait, mg_error *err);

/* Returns a new reference to the meta object of the current cache, or NULL when absent. */
json_t *gallery_cache_meta(const mg_config *cfg);

#endif
