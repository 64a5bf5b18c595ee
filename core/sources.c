/* sources.c - the list of gallery sources from the configuration, merging their galleries,
 * and the status / refresh-request files shared by the refresher and the FastCGI routes. */
#include "sources.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fetch.h"
#include "fs.h"
#include "gallery.h"
#include "redact.h"

/* ---- the list of sources ---------------------------------------------------------- */

int sources_remote_mode(const mg_config *cfg) {
    return cfg->gallery_url != NULL || cfg->galleries != NULL;
}

static void sources_set_path(const mg_config *cfg, gallery_source *s, const char *path) {
    char abs[MG_PATH_MAX];
    if (path[0] == '/') s->path = strdup(path);
    else s->path = strdup(config_path(cfg, abs, path));
}

static void sources_set_url(const mg_config *cfg, gallery_source *s, const char *url) {
    mg_error uerr;
    s->url = strdup(url);
    if (fetch_url_check(s->url, cfg->allow_http, &uerr) != 0)
        memcpy(s->error, uerr.message, sizeof s->error);
}

/* Takes the public key `key` (base64) and the signature's place `sig` (may be NULL: the
 * source's url or path + ".sig"; a relative path is from the data root) for `s`. */
static void sources_set_key(const mg_config *cfg, gallery_source *s, const char *key,
                            const char *sig) {
    char abs[MG_PATH_MAX];
    if (signature_key_decode(key, s->key) != 0) {
        snprintf(s->error, sizeof s->error,
                 "public_key must be base64 of a 32-byte Ed25519 public key (44 characters)");
        return;
    }
    s->is_signed = 1;
    snprintf(s->key_b64, sizeof s->key_b64, "%s", key);
    if (sig && !fetch_is_url(sig) && sig[0] != '/') sig = config_path(cfg, abs, sig);
    if (sig) {
        s->signature = strdup(sig);
    } else {
        const char *base = s->url ? s->url : s->path;
        size_t n = strlen(base) + 5;
        if ((s->signature = malloc(n))) snprintf(s->signature, n, "%s.sig", base);
    }
    mg_error uerr;
    if (s->signature && fetch_is_url(s->signature) &&
        fetch_url_check(s->signature, cfg->allow_http, &uerr) != 0)
        snprintf(s->error, sizeof s->error, "signature_url: %.480s", uerr.message);
}

static int sources_name_taken(const sources_list *list, const char *name) {
    for (size_t i = 0; i < list->count; i++)
        if (strcmp(list->items[i].name, name) == 0) return 1;
    return 0;
}

/* Fills `s` from entry `i` of the galleries list; sets s->error when it is unusable. */
static void sources_from_entry(const mg_config *cfg, const sources_list *list, json_t *entry,
                               size_t i, gallery_source *s) {
    json_t *name = json_object_get(entry, "name");
    json_t *url = json_object_get(entry, "url"), *path = json_object_get(entry, "path");
    int has_url = json_is_string(url), has_path = json_is_string(path);
    snprintf(s->name, sizeof s->name, "galleries[%zu]", i);
    if (!json_is_object(entry)) {
        snprintf(s->error, sizeof s->error, "galleries[%zu] must be an object", i);
        return;
    }
    if (!json_is_string(name) || !id_model_valid(json_string_value(name),
                                                 json_string_length(name))) {
        snprintf(s->error, sizeof s->error,
                 "name must be a string matching ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$");
        return;
    }
    snprintf(s->name, sizeof s->name, "%s", json_string_value(name));
    if (sources_name_taken(list, s->name)) {
        snprintf(s->error, sizeof s->error, "the name %s is used by an earlier source", s->name);
        return;
    }
    if (has_url == has_path) {
        snprintf(s->error, sizeof s->error, "exactly one of url and path must be a string");
        return;
    }
    if (has_path) sources_set_path(cfg, s, json_string_value(path));
    else sources_set_url(cfg, s, json_string_value(url));
    json_t *key = json_object_get(entry, "public_key"), *sig = json_object_get(entry,
                                                                             "signature_url");
    if (!s->error[0] && key && !json_is_null(key))
        sources_set_key(cfg, s, json_is_string(key) ? json_string_value(key) : "",
                        json_string_value(sig));
}

int sources_load(const mg_config *cfg, sources_list *out, mg_error *err) {
    (void)err;
    size_t n = json_array_size(cfg->galleries);
    out->count = 0;
    out->items = calloc(n ? n : 1, sizeof *out->items);
    if (!out->items) return mg_error_set(err, 500, "out_of_memory", NULL, "out of memory");
    if (n == 0) {
        gallery_source *s = &out->items[out->count++];
        snprintf(s->name, sizeof s->name, "%s", SOURCES_DEFAULT_NAME);
        if (!cfg->gallery_url) {
            sources_set_path(cfg, s, SOURCES_LOCAL_REL);
            return 0;
        }
        sources_set_url(cfg, s, cfg->gallery_url);
        if (!s->error[0] && cfg->gallery_public_key)
            sources_set_key(cfg, s, cfg->gallery_public_key, cfg->gallery_signature_url);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        sources_from_entry(cfg, out, json_array_get(cfg->galleries, i), i,
                           &out->items[out->count]);
        out->count++;
    }
    return 0;
}

void sources_free(sources_list *list) {
    for (size_t i = 0; list->items && i < list->count; i++) {
        free(list->items[i].url);
        free(list->items[i].path);
        free(list->items[i].signature);
    }
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

char *sources_store_path(const mg_config *cfg, const char *name, char *out) {
    char rel[MG_PATH_MAX];
    snprintf(rel, sizeof rel, "%s/%s.json", SOURCES_STORE_REL, name);
    return config_path(cfg, out, rel);
}

/* ---- merging ---------------------------------------------------------------------- */

void sources_tag_models(json_t *gallery, const char *name) {
    json_t *model;
    size_t i;
    json_array_foreach(json_object_get(gallery, "models"), i, model)
        json_object_set_new(model, "gallery", json_string(name));
}

json_t *sources_merge(json_t *parts, json_t **clashes) {
    json_t *models = json_array(), *owner = json_object(), *found = json_array();
    json_t *version = NULL, *generated = NULL, *part;
    size_t i;
    json_array_foreach(parts, i, part) {
        const char *name = json_string_value(json_object_get(part, "name"));
        json_t *g = json_object_get(part, "gallery"), *model;
        size_t j;
        if (!name || !json_is_object(g)) continue;
        if (!version) {
            version = json_object_get(g, "version");
            generated = json_object_get(g, "generatedAt");
        }
        json_array_foreach(json_object_get(g, "models"), j, model) {
            const char *id = json_string_value(json_object_get(model, "id"));
            if (!id) continue;
            json_t *kept = json_object_get(owner, id);
            if (kept) {
                json_array_append_new(found, json_pack("{s:s, s:O, s:s}", "id", id, "kept",
                                                       kept, "dropped", name));
                continue;
            }
            json_object_set_new(owner, id, json_string(name));
            json_t *copy = json_copy(model);
            json_object_set_new(copy, "gallery", json_string(name));
            json_array_append_new(models, copy);
        }
    }
    json_t *out = json_pack("{s:O, s:O, s:o}", "version", version ? version : json_null(),
                            "generatedAt", generated ? generated : json_null(), "models",
                            models);
    json_decref(owner);
    if (clashes) *clashes = found;
    else json_decref(found);
    return out;
}

/* ---- status and refresh requests -------------------------------------------------- */

json_t *sources_status_entry(const gallery_source *s) {
    return json_pack("{s:s, s:s?, s:s?, s:n, s:n, s:n, s:n, s:n, s:n, s:[], s:s?, s:n, s:n, "
                     "s:n, s:[], s:n}",
                     "name", s->name, "url", s->url, "path", s->path, "last_attempt",
                     "last_success", "etag", "last_modified", "http_status", "model_count",
                     "invalid", "error", s->error[0] ? s->error : NULL, "last_error",
                     "last_error_at", "last_change", "clashes", "signature");
}

/* Local mode: the single source's state is the cache meta's. */
static void sources_fill_from_meta(const mg_config *cfg, json_t *entry) {
    json_t *meta = gallery_cache_meta(cfg);
    if (!meta) return;
    json_t *built = json_object_get(meta, "built_at"), *error = json_object_get(meta, "error");
    json_object_set(entry, "last_attempt", built ? built : json_null());
    if (!json_is_string(error)) json_object_set(entry, "last_success", built ? built : json_null());
    json_object_set(entry, "model_count", json_object_get(meta, "models"));
    json_t *invalid = json_object_get(meta, "invalid");
    if (json_is_array(invalid)) json_object_set(entry, "invalid", invalid);
    if (json_is_string(error)) json_object_set(entry, "error", error);
    json_decref(meta);
}

/* A status document made from the configuration alone. New reference. */
static json_t *sources_status_from_config(const mg_config *cfg, int remote) {
    sources_list list;
    json_t *entries = json_array();
    sources_load(cfg, &list, NULL);
    for (size_t i = 0; i < list.count; i++) {
        json_t *entry = sources_status_entry(&list.items[i]);
        if (!remote) sources_fill_from_meta(cfg, entry);
        json_array_append_new(entries, entry);
    }
    sources_free(&list);
    return json_pack("{s:s, s:n, s:n, s:I, s:n, s:n, s:o, s:[]}", "mode",
                     remote ? "remote" : "local", "updated_at", "last_request_id", "ttl_s",
                     (json_int_t)cfg->gallery_cache_ttl_s, "next_refresh_at", "serving",
                     "sources", entries, "clashes");
}

json_t *sources_status(const mg_config *cfg, mg_error *err) {
    char path[MG_PATH_MAX];
    int remote = sources_remote_mode(cfg);
    json_error_t jerr;
    json_t *file = json_load_file(config_path(cfg, path, SOURCES_STATUS_REL), 0, &jerr);
    const char *mode = json_string_value(json_object_get(file, "mode"));
    if (remote && mode && strcmp(mode, "remote") == 0) {
        redact_json(file);
        return file;
    }
    json_t *status = sources_status_from_config(cfg, remote);
    if (!status) {
        json_decref(file);
        mg_error_set(err, 500, "internal_error", NULL, "cannot build the gallery status");
        return NULL;
    }
    /* A request handled in either mode is still handled. */
    json_t *last = json_object_get(file, "last_request_id");
    if (json_is_integer(last)) json_object_set(status, "last_request_id", last);
    json_decref(file);
    redact_json(status);
    return status;
}

int sources_request_refresh(const mg_config *cfg, long long *request_id, mg_error *err) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long id = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    char path[MG_PATH_MAX], text[64];
    int n = snprintf(text, sizeof text, "{\"request_id\": %lld}\n", id);
    if (fs_write_atomic(config_path(cfg, path, SOURCES_REQUEST_REL), text, (size_t)n, err) != 0)
        return -1;
    if (request_id) *request_id = id;
    return 0;
}
