/* config.h - the data root and config/server.json.
 *
 * The data root is MG_ROOT, else the repository the binaries were built from. Every key of
 * server.json is optional; an unreadable or invalid server.json, or a setting of the wrong
 * type, out of range or too long, is an error that names the file and the key. Long-running
 * processes keep their last good settings then (config_reload) and mark them stale, so that
 * requests that change something can be refused (fail closed) until the file is fixed. */
#ifndef MG_CONFIG_H
#define MG_CONFIG_H

#include <jansson.h>

#include "mg_error.h"

#define MG_PATH_MAX 4096
#define CONFIG_ROOT_MAX 2048     /* longest data root path accepted */
#define CONFIG_PATH_MAX 1024     /* longest path setting (galleries[].path) */
#define CONFIG_URL_MAX 2048      /* longest URL setting (gallery_url, galleries[].url) */
#define CONFIG_TOKEN_MAX 256     /* longest api_token */
#define CONFIG_LIST_MAX 64       /* most entries of galleries, server_names, allowed_origins */
#define CONFIG_NAME_MAX 261      /* longest server_names / allowed_origins host[:port] */
#define CONFIG_NODE_MAX 64       /* longest node_name */
#define CONFIG_REDIS_URL_MAX 512 /* longest redis_url */

typedef enum {
    CONFIG_FRESH = 0,   /* server.json as it is now (or absent: the defaults) */
    CONFIG_STALE = 1,   /* server.json is broken now; these are the last good settings */
    CONFIG_DEFAULTS = 2 /* server.json is broken and was never good here: defaults only */
} config_state;

typedef struct mg_config {
    char root[MG_PATH_MAX];   /* absolute data root, no trailing slash */
    char *gallery_url;        /* owned; NULL: the local config/models_gallery.json */
    char *gallery_public_key; /* owned: gallery_url's Ed25519 key (base64), or NULL */
    char *gallery_signature_url; /* owned: where its signature is, NULL: gallery_url + .sig */
    long gallery_cache_ttl_s; /* default 3600 */
    int allow_http;           /* default 0 */
    char *api_token;          /* owned; NULL: no token needed */
    int max_parallel_downloads; /* default 2, 1..16 */
    json_t *galleries;        /* owned reference: array of {name, url|path}, or NULL */
    json_t *server_names;     /* owned: array of lower-case "host" / "host:port" (never NULL
                                 after a load) */
    json_t *allowed_origins;  /* owned: array of lower-case "scheme://host[:port]" (same) */
    char node_name[CONFIG_NODE_MAX + 1]; /* this node's name in answers and progress
                                 messages: node_name, default the host name */
    char *redis_url;          /* owned; redis://[:password@]host[:port][/db] holding nchan's
                                 progress channel, NULL: nginx's memory (one node) */
    config_state state;       /* CONFIG_FRESH unless config_reload / config_load_or_defaults
                                 could not read server.json */
    char problem[512];        /* why the state is not fresh, "" otherwise */
    long job_history;         /* finished jobs kept, default 1000, 1..100000 */
    long long min_download_speed; /* bytes/s under which a download stalls, default 1024 */
    long long max_download_rate;  /* bytes/s for all downloads together; 0: unlimited */
    double machine_ram_gb;    /* machine.ram_gb: RAM this machine offers models (GB = 1e9
                                 bytes), overriding detection; NAN: detect */
    double machine_vram_gb;   /* machine.vram_gb: VRAM, likewise; NAN: detect */
    int download_segments;    /* concurrent ranged requests of one large file, 1..16, default 4 */
    long long segment_min_bytes; /* smallest file fetched in segments, default 256 MiB */
    json_t *url_rewrites;     /* owned: array of {prefix, replace} (both non-empty strings of
                                 up to 2048 characters), or NULL */
} mg_config;

/* Returns the data root: `override` if not NULL, else $MG_ROOT, else the build's repository.
 * The pointer is to static or caller memory; do not free. */
const char *config_default_root(const char *override);

/* Loads `root`/config/server.json into `cfg` (defaults for absent keys; environment
 * overrides: MG_GALLERY_URL, MG_API_TOKEN, MG_ALLOW_HTTP). Creates the data root folders
 * (config, cache, models/llm, models/.partial, jobs, run). 0, or -1 and err (cfg then holds
 * nothing to free). Free with config_free. */
int config_load(mg_config *cfg, const char *root, mg_error *err);
void config_free(mg_config *cfg);

/* As config_load, but a server.json that cannot be read or holds a bad setting still gives
 * a usable `cfg`: the defaults, state CONFIG_DEFAULTS and `problem` set; returns 1 and err
 * then. -1 and err only when the data root itself is unusable. */
int config_load_or_defaults(mg_config *cfg, const char *root, mg_error *err);

/* Reads server.json again for the root of `cfg`: on success replaces `cfg` (state fresh) and
 * returns 0; otherwise keeps every setting, marks them CONFIG_STALE (CONFIG_DEFAULTS stays),
 * sets `problem`, and returns -1 and err. */
int config_reload(mg_config *cfg, mg_error *err);

/* Makes `dst` a deep copy of `src` (nothing shared: safe to hand to another thread).
 * 0, or -1 when memory ran out (dst then holds nothing to free). */
int config_copy(mg_config *dst, const mg_config *src);

/* 1 when `name` is a usable node_name: 1..CONFIG_NODE_MAX of [A-Za-z0-9._-], starting with
 * a letter or digit (it goes into answers, a request header and URL paths as it is). */
int config_node_name_ok(const char *name);

/* Writes root/rel into out (size MG_PATH_MAX). Returns out. A path that does not fit (never
 * for a root config_load accepted and a setting it checked) comes out empty, which every
 * file operation refuses, and is logged. */
char *config_path(const mg_config *cfg, char *out, const char *rel);

#endif
