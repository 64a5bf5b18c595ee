/* registry.h - config/models.json: the installed models.
 *
 * {"models": {id: {id, name, path, size, installedAt, backend, active, checksum, gallery}}},
 * path relative to the data root; checksum and gallery (the source) as installed, and after
 * a verification verifiedAt and, when it failed, corrupt: true. Reads take a shared flock on
 * config/.models.lock, read-modify-write cycles an exclusive one; every write is atomic
 * (fs_write_atomic). */
#ifndef MG_REGISTRY_H
#define MG_REGISTRY_H

#include <jansson.h>

#include "config.h"
#include "id.h"
#include "mg_error.h"

/* Returns a new reference to the registry document ({"models": {}} when the file is absent).
 * A file that is not JSON: NULL and err 500 naming the file, line and column. */
json_t *registry_load(const mg_config *cfg, mg_error *err);

/* Parses `len` bytes of registry text; `source` names it in messages (a path). Returns a new
 * reference to the document (a "models" object is added when the key is absent), or NULL and
 * err 500 "registry_corrupt" when it is not JSON or its "models" is not an object. */
json_t *registry_parse(const char *text, size_t len, const char *source, mg_error *err);

/* Resolves the "path" of `entry` (borrowed) to an absolute path under cfg->root in `out` when
 * it names a plain file directly under models/llm/ (1); anything else (absolute, "..", other
 * folders, dot-files, NUL bytes) is 0. No file system access. */
int registry_entry_file(const mg_config *cfg, json_t *entry, char out[MG_PATH_MAX]);

/* Adds or replaces the entry `id` with `entry` (borrowed; copied) under the exclusive lock.
 * 0, or -1 and err. */
int registry_add(const mg_config *cfg, const char *id, json_t *entry, mg_error *err);

/* As registry_add for a model just installed or updated: an earlier entry's "active" is
 * kept, and the file it named is removed when it is another file in models/llm/ (an update
 * whose URL has another extension). 0, or -1 and err. */
int registry_replace(const mg_config *cfg, const char *id, json_t *entry, mg_error *err);

/* Records the result of a verification of `id`: verifiedAt now, and corrupt: true when `ok`
 * is 0 (removed when 1). 0, -1 and err 404 "not_installed" when there is no entry. */
int registry_set_verified(const mg_config *cfg, const char *id, int ok, mg_error *err);

/* Returns a new reference to a copy of the entry `id`, or NULL and err (404
 * "not_installed" when there is none). */
json_t *registry_get(const mg_config *cfg, const char *id, mg_error *err);

/* The status of `entry` (borrowed; `abs` its resolved file, see registry_entry_file, or
 * NULL): "installed", "missing" (no file), or "corrupt" (the file's size differs from the
 * entry's, or the last verification failed). */
const char *registry_entry_status(json_t *entry, const char *abs);

/* Removes the entry `id` and the file models/llm/{id}.* it names (or, with no entry, the
 * unregistered file with that stem). Sets *entry_removed / *file_removed (either may be
 * NULL). 0 when something was removed, -1 and err 404 "not_found" when neither existed. */
int registry_remove(const mg_config *cfg, const char *id, int *entry_removed,
                    int *file_removed, mg_error *err);

/* Removes the partial downloads of `id` (models/.partial/{id}{ext}.part and .part.meta).
 * 1 when one was removed. */
int registry_remove_partial(const mg_config *cfg, const char *id);

/* Returns a new reference to {"models": {key: item}}, each item {id, name, path, size,
 * installedAt, backend, active, status, checksum, gallery, verifiedAt, id_valid} (null
 * where there is nothing to say):
 * - every entry, status as registry_entry_status;
 * - "unregistered" for each file of models/llm/ that no entry names (dot-files never
 *   listed), whatever its name: the key is the name without its extension when that is a
 *   valid model id not used yet, else the whole name; "id_valid": false marks keys that are
 *   no model id (such files go through cleanup); bytes that are not UTF-8 show as U+FFFD;
 * - "partial" for each partial download (models/.partial/{id}{ext}.part) of a model with
 *   neither an entry nor an unfinished job in `active` (borrowed, may be NULL: an object
 *   whose keys are model ids, see job_active_models); its size is the bytes on disk. */
json_t *registry_list(const mg_config *cfg, json_t *active, mg_error *err);

/* The model id a file of models/llm/ named `name` belongs to: its name without the last
 * extension, into out. 0, or -1 when that is no valid model id. */
int registry_stem(const char *name, char out[ID_MODEL_MAX + 1]);

/* The model id of a partial download named `name` ("{id}{ext}.part"), into out. 0, or -1. */
int registry_partial_id(const char *name, char out[ID_MODEL_MAX + 1]);

/* Writes `name` into out (size n) as valid UTF-8, each byte of a malformed sequence
 * replaced by U+FFFD. 1 when `name` was valid UTF-8 already. */
int registry_utf8(const char *name, char *out, size_t n);

/* 1 when `id` has an entry whose file exists. */
int registry_is_installed(const mg_config *cfg, const char *id);

#endif
