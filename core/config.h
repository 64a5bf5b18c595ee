/* config.h - the data root and config/server.json.
 *
 * The data root is MG_ROOT, else the repository the binaries were built from. Every key of
 * server.json is optional; an unreadable or invalid server.json is an error that names it. */
#ifndef MG_CONFIG_H
#define MG_CONFIG_H

#include <jansson.h>

#include "mg_error.h"

#define MG_PATH_MAX 4096

typedef struct mg_config {
    char root[MG_PATH_MAX];   /* absolute data root, no trailing slash */
    char *gallery_url;        /* owned; NULL: the local config/models_gallery.json */
    long gallery_cache_ttl_s; /* default 3600 */
    int allow_http;           /* default 0 */
    char *api_token;          /* owned; NULL: no token needed */
    int max_parallel_downloads; /* default 2, 1..16 */
    json_t *galleries;        /* owned reference: array of {name, url|path}, or NULL */
} mg_config;

/* Returns the data root: `override` if not NULL, else $MG_ROOT, else the build's repository.
 * The pointer is to static or caller memory; do not free. */
const char *config_default_root(const char *override);

/* Loads `root`/config/server.json into `cfg` (defaults for absent keys; environment
 * overrides: MG_GALLERY_URL, MG_API_TOKEN, MG_ALLOW_HTTP). Creates the data root folders
 * (config, cache, models/llm, models/.partial, jobs, run). 0, or -1 and err. Free with
 * config_free. */
int config_load(mg_config *cfg, const char *root, mg_error *err);
void config_free(mg_config *cfg);

/* Writes root/rel into out (size MG_PATH_MAX). Returns out. Paths that do not fit abort. */
char *config_path(const mg_config *cfg, char *out, const char *rel);

#endif
