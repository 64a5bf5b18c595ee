/* registry.h - config/models.json: the installed models.
 *
 * {"models": {id: {id, name, path, size, installedAt, backend, active}}}, path relative to
 * the data root. Reads take a shared flock on config/.models.lock, read-modify-write cycles
 * an exclusive one; every write is atomic (fs_write_atomic). */
#ifndef MG_REGISTRY_H
#define MG_REGISTRY_H

#include <jansson.h>

#include "config.h"
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

/* Removes the entry `id` and the file models/llm/{id}.* it names (or, with no entry, the
 * unregistered file with that stem). Sets *entry_removed / *file_removed (either may be
 * NULL). 0 when something was removed, -1 and err 404 "not_found" when neither existed. */
int registry_remove(const mg_config *cfg, const char *id, int *entry_removed,
                    int *file_removed, mg_error *err);

/* Returns a new reference to {"models": {id: {..., "status": s}}}: every entry with status
 * "installed" (its file exists) or "missing", plus "unregistered" entries for files in
 * models/llm/ without one (key: file name without extension; dot-files never listed). */
json_t *registry_list(const mg_config *cfg, mg_error *err);

/* 1 when `id` has an entry whose file exists. */
int registry_is_installed(const mg_config *cfg, const char *id);

#endif
