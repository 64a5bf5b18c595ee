/* sources.h - the gallery sources of a data root, merging them, and the refresh status.
 *
 * Sources come from config/server.json: `galleries` [{name, url | path, public_key,
 * signature_url}] when it is a non-empty array, else the single source "default":
 * gallery_url (or MG_GALLERY_URL; gallery_public_key, gallery_signature_url), else
 * config/models_gallery.json. A source with a public key is used only with a valid Ed25519
 * signature (signature.h) of its exact bytes; its status entry says "signature". In
 * "local" mode (no gallery_url and no galleries key) the cache follows
 * config/models_gallery.json through gallery_cache_ensure; in "remote" mode the installer's
 * refresher (installer/refresh.c) fetches the sources and writes the cache.
 *
 * Files under cache/ (all written atomically):
 *   gallery_status.json   what the refresher last saw, per source (GET .../gallery/status)
 *   refresh.request       written by POST .../gallery/refresh; the refresher takes it
 *   sources/{name}.json   the last good validated gallery of one source, with its validators
 */
#ifndef MG_SOURCES_H
#define MG_SOURCES_H

#include <jansson.h>
#include <stddef.h>

#include "config.h"
#include "id.h"
#include "mg_error.h"
#include "signature.h"

#define SOURCES_STATUS_REL "cache/gallery_status.json"
#define SOURCES_REQUEST_REL "cache/refresh.request"
#define SOURCES_STORE_REL "cache/sources"
#define SOURCES_DEFAULT_NAME "default"
#define SOURCES_LOCAL_REL "config/models_gallery.json"

typedef struct gallery_source {
    char name[ID_MODEL_MAX + 1]; /* a valid model id, so also a safe file name */
    char *url;                   /* owned, or NULL */
    char *path;                  /* owned absolute path, or NULL */
    char error[512];             /* why the entry is unusable, "" when it is usable */
    int is_signed;               /* 1: public_key given; the gallery needs its signature */
    unsigned char key[SIGNATURE_KEY_BYTES];
    char key_b64[SIGNATURE_KEY_B64];
    char *signature;             /* owned, when is_signed: the signature's URL or absolute
                                    path (signature_url, default url or path + ".sig") */
} gallery_source;

typedef struct sources_list {
    gallery_source *items; /* owned array */
    size_t count;
} sources_list;

/* 1 when the refresher owns the cache (gallery_url or a galleries key), 0 in local mode. */
int sources_remote_mode(const mg_config *cfg);

/* Fills `out` with the sources of `cfg` in order. Entries that are wrong (no name, a name
 * that is not an id or is used twice, neither or both of url and path, a URL that is not
 * allowed) stay in the list with `error` set, so status can show them. Relative paths are
 * taken from the data root. Always 0; free with sources_free. */
int sources_load(const mg_config *cfg, sources_list *out, mg_error *err);
void sources_free(sources_list *list);

/* Sets "gallery": `name` on every model of `gallery` (borrowed, modified in place). */
void sources_tag_models(json_t *gallery, const char *name);

/* Merges `parts` (borrowed array of {"name": s, "gallery": g}) in order into a new gallery:
 * version and generatedAt of the first part, models of every part tagged with the part's
 * name; the first part wins an id clash. Returns a new reference; *clashes (when not NULL)
 * gets a new reference to [{id, kept, dropped}]. */
json_t *sources_merge(json_t *parts, json_t **clashes);

/* Path of the stored last good gallery of source `name` into out (size MG_PATH_MAX). */
char *sources_store_path(const mg_config *cfg, const char *name, char *out);

/* A status entry for `s` with nothing attempted yet: {name, url, path, last_attempt,
 * last_success, etag, last_modified, http_status, model_count, invalid, error, last_error,
 * last_error_at, last_change, clashes, signature}, url or path null, signature null, error
 * the configuration problem or null. New reference. */
json_t *sources_status_entry(const gallery_source *s);

/* The status answer: cache/gallery_status.json when the refresher has written one for the
 * current mode, else one made from the configuration (and, in local mode, from the cache
 * meta). Returns a new reference, or NULL and err. */
json_t *sources_status(const mg_config *cfg, mg_error *err);

/* Asks the refresher for a refresh now: writes cache/refresh.request holding a new request
 * id (nanoseconds since the epoch) and returns it in *request_id. The status shows the last
 * request handled as "last_request_id". 0, or -1 and err. */
int sources_request_refresh(const mg_config *cfg, long long *request_id, mg_error *err);

#endif
