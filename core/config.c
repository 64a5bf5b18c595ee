/* config.c - the data root and config/server.json, with environment overrides; every
 * setting checked for type, range and length before it is used (see config.h). */
#include "config.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"
#include "signature.h"

#ifndef MG_DEFAULT_ROOT
#define MG_DEFAULT_ROOT "."
#endif

#define CONFIG_FILE_REL "config/server.json"
#define CONFIG_JOB_HISTORY 1000
#define CONFIG_JOB_HISTORY_MAX 100000
#define CONFIG_MIN_DOWNLOAD_SPEED 1024
#define CONFIG_NODE_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
/* What a redis_url may hold: nginx.conf carries it in double quotes as it is. */
#define CONFIG_REDIS_CHARS CONFIG_NODE_CHARS "~!*+,=:@/[]"

static const char *config_root_dirs[] = {"config", "cache", "models/llm", "models/.partial",
                                         "jobs", "run", NULL};

const char *config_default_root(const char *override) {
    if (override && *override) return override;
    const char *env = getenv("MG_ROOT");
    return (env && *env) ? env : MG_DEFAULT_ROOT;
}

char *config_path(const mg_config *cfg, char *out, const char *rel) {
    if (fs_join(out, MG_PATH_MAX, cfg->root, rel) != 0) {
        log_error("path too long under %.200s: %.200s...; not using it", cfg->root, rel);
        out[0] = '\0';
    }
    return out;
}

int config_node_name_ok(const char *name) {
    size_t n = strlen(name);
    return n >= 1 && n <= CONFIG_NODE_MAX && isalnum((unsigned char)name[0]) &&
           strspn(name, CONFIG_NODE_CHARS) == n;
}

/* The host name as a node name: cut to CONFIG_NODE_MAX, other characters as '-'; "node"
 * when there is none. */
static void config_default_node(char out[CONFIG_NODE_MAX + 1]) {
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    host[CONFIG_NODE_MAX] = '\0';
    for (char *p = host; *p; p++)
        if (!strchr(CONFIG_NODE_CHARS, *p)) *p = '-';
    snprintf(out, CONFIG_NODE_MAX + 1, "%.*s", CONFIG_NODE_MAX,
             config_node_name_ok(host) ? host : "node");
}

static void config_defaults(mg_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    config_default_node(cfg->node_name);
    cfg->gallery_cache_ttl_s = 3600;
    cfg->max_parallel_downloads = 2;
    cfg->download_segments = 4;
    cfg->segment_min_bytes = 256LL << 20;
    cfg->server_names = json_array();
    cfg->allowed_origins = json_array();
    cfg->job_history = CONFIG_JOB_HISTORY;
    cfg->min_download_speed = CONFIG_MIN_DOWNLOAD_SPEED;
    cfg->machine_ram_gb = NAN;
    cfg->machine_vram_gb = NAN;
}

/* ---- checks of single settings ------------------------------------------------------ */

static int config_bad(mg_error *err, const char *path, const char *key, const char *what) {
    return mg_error_set(err, 500, "invalid_config", key, "%s: %s must be %s (see README)", path,
                        key, what);
}

/* A string of 1..max bytes without control characters. */
static int config_text_ok(json_t *v, size_t max) {
    if (!json_is_string(v)) return 0;
    size_t n = json_string_length(v);
    const unsigned char *s = (const unsigned char *)json_string_value(v);
    if (n == 0 || n > max || strlen((const char *)s) != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] == 0x7f) return 0;
    return 1;
}

/* A token: 1..CONFIG_TOKEN_MAX visible ASCII characters (what a Bearer header can carry). */
static int config_token_ok(json_t *v) {
    if (!config_text_ok(v, CONFIG_TOKEN_MAX)) return 0;
    for (const char *s = json_string_value(v); *s; s++)
        if (*s <= 0x20 || *s >= 0x7f) return 0;
    return 1;
}

/* A host: a DNS name or IPv4 address ([A-Za-z0-9.-], no leading or trailing '.'), or an
 * IPv6 address in brackets; `len` bytes of `s`. */
static int config_host_ok(const char *s, size_t len) {
    if (len == 0 || len > 255) return 0;
    if (s[0] == '[')
        return len > 2 && s[len - 1] == ']' &&
               strspn(s + 1, "0123456789abcdefABCDEF:.") >= len - 2;
    if (s[0] == '.' || s[0] == '-' || s[len - 1] == '.') return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-') return 0;
    return 1;
}

/* "host" or "host:port" (port 1-65535, digits only). */
static int config_hostport_ok(const char *s) {
    size_t len = strlen(s);
    const char *colon = s[0] == '[' ? strstr(s, "]:") : strrchr(s, ':');
    if (colon && s[0] == '[') colon++;
    if (!colon) return config_host_ok(s, len);
    size_t plen = len - (size_t)(colon + 1 - s);
    if (plen == 0 || plen > 5 || strspn(colon + 1, "0123456789") != plen) return 0;
    long port = strtol(colon + 1, NULL, 10);
    return port >= 1 && port <= 65535 && config_host_ok(s, (size_t)(colon - s));
}

/* "http://host[:port]" or "https://host[:port]", no path. */
static int config_origin_ok(const char *s) {
    const char *rest = strncmp(s, "https://", 8) == 0  ? s + 8
                       : strncmp(s, "http://", 7) == 0 ? s + 7
                                                       : NULL;
    return rest && !strchr(rest, '/') && config_hostport_ok(rest);
}

/* Copies the array setting `key` of `doc` into *out, lower-cased, each entry checked by
 * `ok`. 0, or -1 and err. */
static int config_name_list(json_t *doc, const char *key, int (*ok)(const char *),
                            const char *what, json_t **out, const char *path, mg_error *err) {
    json_t *v = json_object_get(doc, key), *item;
    size_t i;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_array(v) || json_array_size(v) > CONFIG_LIST_MAX)
        return config_bad(err, path, key, "an array of at most 64 strings");
    json_array_foreach(v, i, item) {
        if (!config_text_ok(item, CONFIG_NAME_MAX) || !ok(json_string_value(item)))
            return config_bad(err, path, key, what);
        char low[CONFIG_NAME_MAX + 1];
        snprintf(low, sizeof low, "%s", json_string_value(item));
        for (char *p = low; *p; p++) *p = (char)tolower((unsigned char)*p);
        json_array_append_new(*out, json_string(low));
    }
    return 0;
}

/* galleries: at most CONFIG_LIST_MAX entries; the url and path of each within bounds (the
 * rest of an entry is judged by sources_load, which reports it in the status). */
static int config_galleries(json_t *v, const char *path, mg_error *err) {
    json_t *entry;
    size_t i;
    if (!json_is_array(v) || json_array_size(v) > CONFIG_LIST_MAX)
        return config_bad(err, path, "galleries", "an array of at most 64 sources");
    json_array_foreach(v, i, entry) {
        json_t *url = json_object_get(entry, "url"), *p = json_object_get(entry, "path");
        char key[48];
        snprintf(key, sizeof key, "galleries[%zu]", i);
        if (json_is_string(url) && !config_text_ok(url, CONFIG_URL_MAX))
            return config_bad(err, path, key, "a source whose url is 1 to 2048 characters");
        if (json_is_string(p) && !config_text_ok(p, CONFIG_PATH_MAX))
            return config_bad(err, path, key, "a source whose path is 1 to 1024 characters");
        json_t *sig = json_object_get(entry, "signature_url");
        if (json_is_string(sig) && !config_text_ok(sig, CONFIG_URL_MAX))
            return config_bad(err, path, key,
                              "a source whose signature_url is 1 to 2048 characters");
    }
    return 0;
}

/* The parts of a redis_url other than its host, port and password: none may be there but an
 * empty path or a database number. */
static int config_redis_parts_ok(CURLU *u) {
    char *user = NULL, *path = NULL, *query = NULL, *fragment = NULL;
    curl_url_get(u, CURLUPART_USER, &user, 0);
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0);
    int ok = (!user || !*user) && !query && !fragment &&
             (!path || strcmp(path, "/") == 0 ||
              (path[0] == '/' && strlen(path) <= 3 && strspn(path + 1, "0123456789") ==
                                                          strlen(path) - 1));
    curl_free(user);
    curl_free(path);
    curl_free(query);
    curl_free(fragment);
    return ok;
}

/* redis://[:password@]host[:port][/db] in characters nginx.conf can hold as they are. */
static int config_redis_url_ok(const char *s) {
    size_t n = strlen(s);
    if (n > CONFIG_REDIS_URL_MAX || strncmp(s, "redis://", 8) != 0 ||
        strspn(s, CONFIG_REDIS_CHARS) != n)
        return 0;
    CURLU *u = curl_url();
    char *host = NULL;
    int ok = u && curl_url_set(u, CURLUPART_URL, s, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
             config_host_ok(host, strlen(host)) && config_redis_parts_ok(u);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

/* ---- server.json -------------------------------------------------------------------- */

/* gallery_public_key and gallery_signature_url: gallery_url's signature. */
static int config_apply_signed(mg_config *cfg, json_t *doc, const char *path, mg_error *err) {
    json_t *v;
    unsigned char key[SIGNATURE_KEY_BYTES];
    if ((v = json_object_get(doc, "gallery_public_key")) && !json_is_null(v)) {
        if (!json_is_string(v) || signature_key_decode(json_string_value(v), key) != 0)
            return config_bad(err, path, "gallery_public_key",
                              "null or base64 of a 32-byte Ed25519 public key (44 characters)");
        cfg->gallery_public_key = strdup(json_string_value(v));
    }
    if ((v = json_object_get(doc, "gallery_signature_url")) && !json_is_null(v)) {
        if (!config_text_ok(v, CONFIG_URL_MAX))
            return config_bad(err, path, "gallery_signature_url",
                              "null or a URL of up to 2048 characters");
        cfg->gallery_signature_url = strdup(json_string_value(v));
    }
    return 0;
}

/* The gallery source: gallery_url and its signature. */
static int config_apply_basic(mg_config *cfg, json_t *doc, const char *path, mg_error *err) {
    json_t *v;
    if ((v = json_object_get(doc, "gallery_url")) && !json_is_null(v)) {
        if (!json_is_string(v) || (json_string_length(v) && !config_text_ok(v, CONFIG_URL_MAX)))
            return config_bad(err, path, "gallery_url", "null or a URL of up to 2048 characters");
        if (json_string_length(v)) cfg->gallery_url = strdup(json_string_value(v));
    }
    return config_apply_signed(cfg, doc, path, err);
}

/* The settings of earlier versions, continued: cache, downloads, token, sources. */
static int config_apply_more(mg_config *cfg, json_t *doc, const char *path, mg_error *err) {
    json_t *v;
    if ((v = json_object_get(doc, "gallery_cache_ttl_s")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > 366L * 86400)
            return config_bad(err, path, "gallery_cache_ttl_s", "an integer from 1 to 31622400");
        cfg->gallery_cache_ttl_s = (long)json_integer_value(v);
    }
    if ((v = json_object_get(doc, "allow_http")) && !json_is_null(v)) {
        if (!json_is_boolean(v)) return config_bad(err, path, "allow_http", "true or false");
        cfg->allow_http = json_is_true(v);
    }
    if ((v = json_object_get(doc, "api_token")) && !json_is_null(v)) {
        if (!json_is_string(v) || (json_string_length(v) && !config_token_ok(v)))
            return config_bad(err, path, "api_token",
                              "null or 1 to 256 visible ASCII characters (no spaces)");
        if (json_string_length(v)) cfg->api_token = strdup(json_string_value(v));
    }
    if ((v = json_object_get(doc, "max_parallel_downloads")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 16)
            return config_bad(err, path, "max_parallel_downloads", "an integer from 1 to 16");
        cfg->max_parallel_downloads = (int)json_integer_value(v);
    }
    if ((v = json_object_get(doc, "galleries")) && !json_is_null(v)) {
        if (config_galleries(v, path, err) != 0) return -1;
        cfg->galleries = json_deep_copy(v);
    }
    return 0;
}

/* Who may talk to the API: server_names and allowed_origins. */
static int config_apply_access(mg_config *cfg, json_t *doc, const char *path, mg_error *err) {
    if (config_name_list(doc, "server_names", config_hostport_ok,
                         "an array of \"host\" or \"host:port\" strings", &cfg->server_names,
                         path, err) != 0)
        return -1;
    return config_name_list(doc, "allowed_origins", config_origin_ok,
                            "an array of \"http(s)://host[:port]\" strings",
                            &cfg->allowed_origins, path, err);
}

/* Parallel segments: download_segments and segment_min_bytes. */
static int config_apply_segments(mg_config *cfg, json_t *doc, const char *path, mg_error *err) {
    json_t *v;
    if ((v = json_object_get(doc, "download_segments")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 16)
            return config_bad(err, path, "download_segments", "an integer from 1 to 16");
        cfg->download_segments = (int)json_integer_value(v);
    }
    if ((v = json_object_get(doc, "segment_min_bytes")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > (1LL << 50))
            return config_bad(err, path, "segment_min_bytes",
                              "an integer number of bytes from 1 to 2^50");
        cfg->segment_min_bytes = (long long)json_integer_value(v);
    }
    return 0;
}

/* The queue and the downloads: job_history and min_download_speed. */
static int config_apply_jobs(mg_config *cfg, json_t *doc, const char *path, mg_error *err) {
    json_t *v;
    if ((v = json_object_get(doc, "job_history")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > CONFIG_JOB_HISTORY_MAX)
            return config_bad(err, path, "job_history", "an integer from 1 to 100000");
        cfg->job_history = (long)json_integer_value(v);
    }
    if ((v = json_object_get(doc, "min_download_speed")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > (1LL << 40))
            return config_bad(err, path, "min_download_speed",
                              "an integer number of bytes per second from 1 to 2^40");
        cfg->min_download_speed = (long long)json_integer_value(v);
    }
    if ((v = json_object_get(doc, "max_download_rate")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > (1LL << 40))
            return config_bad(err, path, "max_download_rate",
                              "null or an integer number of bytes per second from 1 to 2^40");
        cfg->max_download_rate = (long long)json_integer_value(v);
    }
    return config_apply_segments(cfg, doc, path, err);
}

/* url_rewrites: at most CONFIG_LIST_MAX {prefix, replace} objects, both strings of 1 to
 * CONFIG_URL_MAX characters; replace an absolute http(s) URL prefix. */
static int config_url_rewrites(mg_config *cfg, json_t *doc, const char *path, mg_error *err) {
    json_t *v = json_object_get(doc, "url_rewrites"), *entry;
    size_t i;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_array(v) || json_array_size(v) > CONFIG_LIST_MAX)
        return config_bad(err, path, "url_rewrites", "null or an array of at most 64 rewrites");
    json_array_foreach(v, i, entry) {
        json_t *prefix = json_object_get(entry, "prefix");
        json_t *repl = json_object_get(entry, "replace");
        const char *r = json_string_value(repl);
        char key[48];
        snprintf(key, sizeof key, "url_rewrites[%zu]", i);
        if (!json_is_object(entry) || !config_text_ok(prefix, CONFIG_URL_MAX) ||
            !config_text_ok(repl, CONFIG_URL_MAX) ||
            (strncmp(r, "http://", 7) != 0 && strncmp(r, "https://", 8) != 0))
            return config_bad(err, path, key,
                              "{\"prefix\": \"...\", \"replace\": \"http(s)://...\"} with both "
                              "1 to 2048 characters");
    }
    cfg->url_rewrites = json_deep_copy(v);
    return 0;
}

/* Several nodes: node_name and redis_url. */
static int config_apply_nodes(mg_config *cfg, json_t *doc, const char *path, mg_error *err) {
    json_t *v;
    if ((v = json_object_get(doc, "node_name")) && !json_is_null(v)) {
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
            !config_node_name_ok(json_string_value(v)))
            return config_bad(err, path, "node_name",
                              "null or 1 to 64 letters, digits, '.', '_' or '-' (starting "
                              "with a letter or digit)");
        snprintf(cfg->node_name, sizeof cfg->node_name, "%s", json_string_value(v));
    }
    if ((v = json_object_get(doc, "redis_url")) && !json_is_null(v)) {
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
            !config_redis_url_ok(json_string_value(v)))
            return config_bad(err, path, "redis_url",
                              "null or redis://[:password@]host[:port][/db] (up to 512 "
                              "letters, digits and ._-~!*+,=:@/[])");
        cfg->redis_url = strdup(json_string_value(v));
    }
    return 0;
}

/* One number of machine: a JSON number within lo..hi into *out. 0, or -1 and err. */
static int config_machine_number(json_t *machine, const char *key, double lo, double *out,
                                 const char *path, mg_error *err) {
    json_t *v = json_object_get(machine, key);
    char name[32];
    snprintf(name, sizeof name, "machine.%s", key);
    if (!v || json_is_null(v)) return 0;
    double d = json_number_value(v);
    if (!json_is_number(v) || !isfinite(d) || d < lo || d > 1e6)
        return config_bad(err, path, name, lo > 0 ? "a number of GB above 0, at most 1000000"
                                                  : "a number of GB from 0 to 1000000");
    *out = d;
    return 0;
}

/* machine: {"ram_gb", "vram_gb"} overriding what the machine profile detects. */
static int config_apply_machine(mg_config *cfg, json_t *doc, const char *path, mg_error *err) {
    json_t *m = json_object_get(doc, "machine");
    if (!m || json_is_null(m)) return 0;
    if (!json_is_object(m))
        return config_bad(err, path, "machine", "null or an object {\"ram_gb\", \"vram_gb\"}");
    if (config_machine_number(m, "ram_gb", 1e-9, &cfg->machine_ram_gb, path, err) != 0) return -1;
    return config_machine_number(m, "vram_gb", 0, &cfg->machine_vram_gb, path, err);
}

static int config_read_file(mg_config *cfg, mg_error *err) {
    char path[MG_PATH_MAX];
    config_path(cfg, path, CONFIG_FILE_REL);
    if (access(path, F_OK) != 0 && errno == ENOENT) return 0;
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (!doc)
        return mg_error_set(err, 500, "invalid_config", NULL,
                            "%s: cannot be read or is not valid JSON (line %d, column %d): %s",
                            path, jerr.line, jerr.column, jerr.text);
    int rc;
    if (!json_is_object(doc))
        rc = mg_error_set(err, 500, "invalid_config", NULL, "%s: not a JSON object", path);
    else if ((rc = config_apply_basic(cfg, doc, path, err)) == 0 &&
             (rc = config_apply_more(cfg, doc, path, err)) == 0 &&
             (rc = config_apply_access(cfg, doc, path, err)) == 0 &&
             (rc = config_apply_jobs(cfg, doc, path, err)) == 0)
        rc = config_apply_machine(cfg, doc, path, err);
    if (rc == 0 && json_is_object(doc)) rc = config_apply_nodes(cfg, doc, path, err);
    if (rc == 0 && json_is_object(doc)) rc = config_url_rewrites(cfg, doc, path, err);
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

/* The defaults, the resolved root and its folders. 0, or -1 and err. */
static int config_open_root(mg_config *cfg, const char *root, mg_error *err) {
    config_defaults(cfg);
    char abs[PATH_MAX];
    const char *r = config_default_root(root);
    if (fs_mkdirs_follow(r, 0755, err) != 0) return -1;
    if (!realpath(r, abs))
        return mg_error_set(err, 500, "invalid_root", NULL, "data root %s is not usable", r);
    if (strlen(abs) > CONFIG_ROOT_MAX)
        return mg_error_set(err, 500, "invalid_root", NULL,
                            "data root %.200s... is longer than %d bytes", abs, CONFIG_ROOT_MAX);
    snprintf(cfg->root, sizeof cfg->root, "%s", abs);
    for (int i = 0; config_root_dirs[i]; i++) {
        char dir[MG_PATH_MAX];
        if (fs_mkdirs(config_path(cfg, dir, config_root_dirs[i]), 0755, err) != 0) return -1;
    }
    return 0;
}

int config_load(mg_config *cfg, const char *root, mg_error *err) {
    if (config_open_root(cfg, root, err) != 0 || config_read_file(cfg, err) != 0) {
        config_free(cfg);
        return -1;
    }
    config_apply_env(cfg);
    return 0;
}

int config_load_or_defaults(mg_config *cfg, const char *root, mg_error *err) {
    mg_error e;
    mg_error_clear(&e);
    if (config_open_root(cfg, root, err) != 0) {
        config_free(cfg);
        return -1;
    }
    if (config_read_file(cfg, &e) == 0) {
        config_apply_env(cfg);
        return 0;
    }
    char keep[MG_PATH_MAX];
    snprintf(keep, sizeof keep, "%s", cfg->root);
    config_free(cfg);
    config_defaults(cfg);
    snprintf(cfg->root, sizeof cfg->root, "%s", keep);
    config_apply_env(cfg);
    cfg->state = CONFIG_DEFAULTS;
    snprintf(cfg->problem, sizeof cfg->problem, "%s", e.message);
    if (err) *err = e;
    return 1;
}

int config_reload(mg_config *cfg, mg_error *err) {
    mg_config fresh;
    mg_error e;
    mg_error_clear(&e);
    if (config_load(&fresh, cfg->root, &e) == 0) {
        config_free(cfg);
        *cfg = fresh;
        return 0;
    }
    if (cfg->state == CONFIG_FRESH) cfg->state = CONFIG_STALE;
    snprintf(cfg->problem, sizeof cfg->problem, "%s", e.message);
    if (err) *err = e;
    return -1;
}

static char *config_strdup_or_null(const char *s) { return s ? strdup(s) : NULL; }

int config_copy(mg_config *dst, const mg_config *src) {
    *dst = *src;
    dst->gallery_url = config_strdup_or_null(src->gallery_url);
    dst->gallery_public_key = config_strdup_or_null(src->gallery_public_key);
    dst->gallery_signature_url = config_strdup_or_null(src->gallery_signature_url);
    dst->api_token = config_strdup_or_null(src->api_token);
    dst->redis_url = config_strdup_or_null(src->redis_url);
    dst->galleries = src->galleries ? json_deep_copy(src->galleries) : NULL;
    dst->server_names = json_deep_copy(src->server_names);
    dst->allowed_origins = json_deep_copy(src->allowed_origins);
    dst->url_rewrites = src->url_rewrites ? json_deep_copy(src->url_rewrites) : NULL;
    if ((src->url_rewrites && !dst->url_rewrites) ||
        (src->gallery_public_key && !dst->gallery_public_key) ||
        (src->gallery_signature_url && !dst->gallery_signature_url) ||
        (src->gallery_url && !dst->gallery_url) || (src->api_token && !dst->api_token) ||
        (src->redis_url && !dst->redis_url) ||
        (src->galleries && !dst->galleries) || (src->server_names && !dst->server_names) ||
        (src->allowed_origins && !dst->allowed_origins)) {
        config_free(dst);
        return -1;
    }
    return 0;
}

void config_free(mg_config *cfg) {
    free(cfg->gallery_url);
    free(cfg->gallery_public_key);
    free(cfg->gallery_signature_url);
    cfg->gallery_public_key = cfg->gallery_signature_url = NULL;
    free(cfg->api_token);
    free(cfg->redis_url);
    json_decref(cfg->galleries);
    json_decref(cfg->server_names);
    json_decref(cfg->allowed_origins);
    json_decref(cfg->url_rewrites);
    cfg->url_rewrites = NULL;
    cfg->gallery_url = cfg->api_token = cfg->redis_url = NULL;
    cfg->galleries = cfg->server_names = cfg->allowed_origins = NULL;
}
