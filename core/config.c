/* config.c - the data root and config/server.json, with environment overrides. */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"

#ifndef MG_DEFAULT_ROOT
#define MG_DEFAULT_ROOT "."
#endif

static const char *config_root_dirs[] = {"config", "cache", "models/llm", "models/.partial",
                                         "jobs", "run", NULL};

const char *config_default_root(const char *override) {
    if (override && *override) return override;
    const char *env = getenv("MG_ROOT");
    return (env && *env) ? env : MG_DEFAULT_ROOT;
}

char *config_path(const mg_config *cfg, char *out, const char *rel) {
    if (fs_join(out, MG_PATH_MAX, cfg->root, rel) != 0) abort();
    return out;
}

static void config_defaults(mg_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->gallery_cache_ttl_s = 3600;
    cfg->max_parallel_downloads = 2;
}

static char *config_dup_string(json_t *v) {
    return json_is_string(v) && json_string_length(v) > 0 ? strdup(json_string_value(v))
                                                          : NULL;
}

/* Reads the keys of server.json (borrowed `doc`) into cfg; -1 and err on a wrong type. */
static int config_apply(mg_config *cfg, json_t *doc, const char *path, mg_error *err) {
    json_t *v;
    if ((v = json_object_get(doc, "gallery_url")) && !json_is_null(v)) {
        if (!json_is_string(v)) goto bad_type;
        cfg->gallery_url = config_dup_string(v);
    }
    if ((v = json_object_get(doc, "gallery_cache_ttl_s")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1) goto bad_type;
        cfg->gallery_cache_ttl_s = (long)json_integer_value(v);
    }
    if ((v = json_object_get(doc, "allow_http")) && !json_is_null(v)) {
        if (!json_is_boolean(v)) goto bad_type;
        cfg->allow_http = json_is_true(v);
    }
    if ((v = json_object_get(doc, "api_token")) && !json_is_null(v)) {
        if (!json_is_string(v)) goto bad_type;
        cfg->api_token = config_dup_string(v);
    }
    if ((v = json_object_get(doc, "max_parallel_downloads")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 16)
            goto bad_type;
        cfg->max_parallel_downloads = (int)json_integer_value(v);
    }
    if ((v = json_object_get(doc, "galleries")) && !json_is_null(v)) {
        if (!json_is_array(v)) goto bad_type;
        cfg->galleries = json_incref(v);
    }
    return 0;
bad_type:
    return mg_error_set(err, 500, "invalid_config", NULL,
                        "%s: a key has the wrong type or is out of range (see README)", path);
}

static int config_read_file(mg_config *cfg, mg_error *err) {
    char path[MG_PATH_MAX];
    config_path(cfg, path, "config/server.json");
    if (access(path, F_OK) != 0) return 0;
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (!doc)
        return mg_error_set(err, 500, "invalid_config", NULL,
                            "%s: not valid JSON at line %d, column %d: %s", path, jerr.line,
                            jerr.column, jerr.text);
    int rc = json_is_object(doc)
                 ? config_apply(cfg, doc, path, err)
                 : mg_error_set(err, 500, "invalid_config", NULL, "%s: not an object", path);
    json_decref(doc);
    return rc;
}

static void config_apply_env(mg_config *cfg) {
    const char *v;
    if ((v = getenv("MG_GALLERY_URL")) && *v) {
        free(cfg->gallery_url);
        cfg->gallery_url = strdup(v);
    }
    if ((v = getenv("MG_API_TOKEN")) && *v) {
        free(cfg->api_token);
        cfg->api_token = strdup(v);
    }
    if ((v = getenv("MG_ALLOW_HTTP")) && *v) cfg->allow_http = strcmp(v, "0") != 0;
}

int config_load(mg_config *cfg, const char *root, mg_error *err) {
    config_defaults(cfg);
    char abs[PATH_MAX];
    const char *r = config_default_root(root);
    if (fs_mkdirs(r, 0755, err) != 0) return -1;
    if (!realpath(r, abs))
        return mg_error_set(err, 500, "invalid_root", NULL, "data root %s is not usable", r);
    snprintf(cfg->root, sizeof cfg->root, "%s", abs);
    for (int i = 0; config_root_dirs[i]; i++) {
        char dir[MG_PATH_MAX];
        if (fs_mkdirs(config_path(cfg, dir, config_root_dirs[i]), 0755, err) != 0) return -1;
    }
    if (config_read_file(cfg, err) != 0) {
        config_free(cfg);
        return -1;
    }
    config_apply_env(cfg);
    return 0;
}

void config_free(mg_config *cfg) {
    free(cfg->gallery_url);
    free(cfg->api_token);
    json_decref(cfg->galleries);
    cfg->gallery_url = cfg->api_token = NULL;
    cfg->galleries = NULL;
}
