/* gallery.c - parsing and validating gallery documents, and keeping the validated cache
 * (cache/gallery_cache.json + cache/gallery_cache.meta.json) in step with its source.
 *
 * The meta sidecar is a small object:
 *   {"format": 1,
 *    "source": {"path", "size", "mtime_ns", "ino", "ctime_ns"} or null (or a URL's data),
 *    "cache":  {"size", "mtime_ns", "ino"} of the cache file as written, or null,
 *    "models": N, "invalid": [{index, id, reason}], "built_at": ISO-8601,
 *    "error":  null, or why the last rebuild from the source failed}
 * A cache file whose stat differs from "cache" is foreign or corrupted and gets rewritten. */
#include "gallery.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "id.h"
#include "log.h"
#include "sources.h"

/* The curated gallery copied to a data root that has none: the repository's in a build
 * tree, /usr/share/model-gallery/... in the Debian package (CMake sets it). */
#ifndef MG_SEED_GALLERY
#define MG_SEED_GALLERY "./config/models_gallery.json"
#endif

#define GALLERY_SOURCE_REL "config/models_gallery.json"
#define GALLERY_CACHE_REL "cache/gallery_cache.json"
#define GALLERY_META_REL "cache/gallery_cache.meta.json"
#define GALLERY_LOCK_REL "cache/.lock"
#define GALLERY_META_FORMAT 1

/* ---- validation of one model ------------------------------------------------------ */

static int gallery_reason(char *reason, size_t len, const char *text) {
    if (reason && len) snprintf(reason, len, "%s", text);
    return 0;
}

/* A string without embedded NUL bytes. */
static int gallery_is_cstring(json_t *v) {
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

static int gallery_opt_string(json_t *model, const char *key) {
    json_t *v = json_object_get(model, key);
    return !v || json_is_null(v) || json_is_string(v);
}

static int gallery_opt_string_array(json_t *model, const char *key) {
    json_t *v = json_object_get(model, key), *item;
    size_t i;
    if (!v || json_is_null(v)) return 1;
    if (!json_is_array(v)) return 0;
    json_array_foreach(v, i, item) if (!json_is_string(item)) return 0;
    return 1;
}

/* Absent/null, or a number within [lo, hi]. */
static int gallery_opt_number(json_t *obj, const char *key, double lo, double hi) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 1;
    if (!json_is_number(v)) return 0;
    double d = json_number_value(v);
    return isfinite(d) && d >= lo && d <= hi;
}

static int gallery_checksum_valid(json_t *v) {
    if (!gallery_is_cstring(v)) return 0;
    const char *s = json_string_value(v);
    if (strncmp(s, "sha256:", 7) != 0 || strlen(s) != 7 + 64) return 0;
    for (const char *p = s + 7; *p; p++)
        if (!isxdigit((unsigned char)*p)) return 0;
    return 1;
}

static int gallery_url_valid(json_t *v) {
    if (!gallery_is_cstring(v)) return 0;
    CURLU *u = curl_url();
    if (!u) return 0;
    char *scheme = NULL, *host = NULL;
    int ok = curl_url_set(u, CURLUPART_URL, json_string_value(v), 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
             (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0) &&
             host[0] != '\0';
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

static int gallery_hardware_valid(json_t *hw, char *reason, size_t len) {
    if (!hw || json_is_null(hw)) return 1;
    if (!json_is_object(hw))
        return gallery_reason(reason, len, "recommendedHardware must be an object");
    if (!gallery_opt_string(hw, "cpu"))
        return gallery_reason(reason, len, "recommendedHardware.cpu must be a string");
    if (!gallery_opt_string(hw, "gpu"))
        return gallery_reason(reason, len, "recommendedHardware.gpu must be a string");
    if (!gallery_opt_number(hw, "ramGb", 1, INFINITY))
        return gallery_reason(reason, len, "recommendedHardware.ramGb must be a number >= 1");
    if (!gallery_opt_number(hw, "vramGb", 0, INFINITY))
        return gallery_reason(reason, len, "recommendedHardware.vramGb must be a number >= 0");
    return 1;
}

static int gallery_optional_valid(json_t *model, char *reason, size_t len) {
    static const char *strings[] = {"parameters", "license", "description", "quantization",
                                    "updatedAt", NULL};
    static const char *arrays[] = {"categories", "languages", "tags", NULL};
    char text[96];
    for (int i = 0; strings[i]; i++)
        if (!gallery_opt_string(model, strings[i])) {
            snprintf(text, sizeof text, "%s must be a string", strings[i]);
            return gallery_reason(reason, len, text);
        }
    for (int i = 0; arrays[i]; i++)
        if (!gallery_opt_string_array(model, arrays[i])) {
            snprintf(text, sizeof text, "%s must be an array of strings", arrays[i]);
            return gallery_reason(reason, len, text);
        }
    if (!gallery_opt_number(model, "rating", 0, 5))
        return gallery_reason(reason, len, "rating must be a number from 0 to 5");
    json_t *ctx = json_object_get(model, "contextLength");
    if (ctx && !json_is_null(ctx) && !(json_is_integer(ctx) && json_integer_value(ctx) >= 1))
        return gallery_reason(reason, len, "contextLength must be an integer >= 1");
    return gallery_hardware_valid(json_object_get(model, "recommendedHardware"), reason, len);
}

int gallery_model_valid(json_t *model, char *reason, size_t reason_len) {
    if (!json_is_object(model))
        return gallery_reason(reason, reason_len, "model must be an object");
    json_t *id = json_object_get(model, "id");
    if (!json_is_string(id) || !id_model_valid(json_string_value(id), json_string_length(id)))
        return gallery_reason(reason, reason_len,
                              "id must be a string matching ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$");
    json_t *name = json_object_get(model, "name");
    if (!json_is_string(name) || json_string_length(name) == 0)
        return gallery_reason(reason, reason_len, "name must be a non-empty string");
    if (!gallery_checksum_valid(json_object_get(model, "checksum")))
        return gallery_reason(reason, reason_len,
                              "checksum must be sha256: followed by 64 hex digits");
    if (!gallery_url_valid(json_object_get(model, "downloadUrl")))
        return gallery_reason(reason, reason_len, "downloadUrl must be an absolute http(s) URL");
    json_t *size = json_object_get(model, "sizeGb");
    if (!json_is_number(size) || !(json_number_value(size) > 0) ||
        !isfinite(json_number_value(size)))
        return gallery_reason(reason, reason_len, "sizeGb must be a number greater than 0");
    return gallery_optional_valid(model, reason, reason_len);
}

void gallery_model_ext(const char *download_url, char ext[16]) {
    snprintf(ext, 16, ".gguf");
    CURLU *u = curl_url();
    char *path = NULL;
    if (u && download_url && curl_url_set(u, CURLUPART_URL, download_url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        const char *dot = strrchr(base, '.');
        size_t n = dot ? strlen(dot + 1) : 0;
        int ok = dot && dot != base && n >= 1 && n <= 8;
        for (size_t i = 0; ok && i < n; i++) ok = isalnum((unsigned char)dot[1 + i]);
        if (ok) {
            ext[0] = '.';
            for (size_t i = 0; i < n; i++) ext[1 + i] = (char)tolower((unsigned char)dot[1 + i]);
            ext[1 + n] = '\0';
        }
    }
    curl_free(path);
    curl_url_cleanup(u);
}

/* ---- parsing a document ----------------------------------------------------------- */

/* Checks every model of `models` (borrowed); appends the valid ones to `out` and an
 * {index, id, reason} to `invalid` for the others, logging each once. */
static void gallery_filter_models(json_t *models, json_t *out, json_t *invalid,
                                  const char *source) {
    json_t *seen = json_object(), *model;
    size_t i;
    json_array_foreach(models, i, model) {
        char reason[160];
        json_t *id = json_object_get(model, "id");
        int ok = gallery_model_valid(model, reason, sizeof reason);
        if (ok) {
            json_t *first = json_object_get(seen, json_string_value(id));
            if (first) {
                snprintf(reason, sizeof reason, "duplicate id (first used by model %lld)",
                         (long long)json_integer_value(first));
                ok = 0;
            } else {
                json_object_set_new(seen, json_string_value(id), json_integer((json_int_t)i));
            }
        }
        if (ok) {
            json_array_append(out, model);
            continue;
        }
        const char *id_text = gallery_is_cstring(id) ? json_string_value(id) : NULL;
        log_warn("%s: model %zu (id %s) left out: %s", source, i,
                 id_text ? id_text : "(none)", reason);
        json_array_append_new(invalid, json_pack("{s:I, s:O, s:s}", "index", (json_int_t)i,
                                                 "id", id_text ? id : json_null(),
                                                 "reason", reason));
    }
    json_decref(seen);
}

json_t *gallery_parse(const char *text, size_t len, const char *source, json_t **invalid,
                      mg_error *err) {
    json_error_t jerr;
    if (invalid) *invalid = NULL;
    json_t *doc = json_loadb(text, len, JSON_ALLOW_NUL, &jerr);
    if (!doc) {
        mg_error_set(err, 500, "invalid_gallery", NULL,
                     "%s: not valid JSON at line %d, column %d: %s", source, jerr.line,
                     jerr.column, jerr.text);
        return NULL;
    }
    json_t *models = json_object_get(doc, "models");
    if (!json_is_array(models)) {
        mg_error_set(err, 500, "invalid_gallery", NULL,
                     "%s: not a gallery (an object with a \"models\" array)", source);
        json_decref(doc);
        return NULL;
    }
    json_t *version = json_object_get(doc, "version");
    json_t *generated = json_object_get(doc, "generatedAt");
    json_t *valid = json_array(), *bad = json_array();
    gallery_filter_models(models, valid, bad, source);
    json_t *out = json_pack("{s:O, s:O, s:o}", "version", version ? version : json_null(),
                            "generatedAt", generated ? generated : json_null(), "models",
                            valid);
    json_decref(doc);
    if (invalid) *invalid = bad;
    else json_decref(bad);
    return out;
}

/* Reads the whole file at `path` through one fd; its fstat goes to *st. Caller frees. */
static char *gallery_read_file(const char *path, size_t *len, struct stat *st, mg_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        mg_error_set(err, errno == ENOENT ? 404 : 500, "io_error", NULL, "cannot open %s: %s",
                     path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    if (fstat(fd, st) == 0 && (buf = malloc((size_t)st->st_size + 1))) {
        size_t n = 0;
        while (n < (size_t)st->st_size) {
            ssize_t r = read(fd, buf + n, (size_t)st->st_size - n);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            n += (size_t)r;
        }
        buf[n] = '\0';
        *len = n;
    }
    if (!buf) mg_error_set(err, 500, "io_error", NULL, "cannot read %s: %s", path,
                           strerror(errno));
    close(fd);
    return buf;
}

json_t *gallery_parse_file(const char *path, json_t **invalid, mg_error *err) {
    size_t len = 0;
    struct stat st;
    if (invalid) *invalid = NULL;
    char *text = gallery_read_file(path, &len, &st, err);
    if (!text) return NULL;
    json_t *g = gallery_parse(text, len, path, invalid, err);
    free(text);
    return g;
}

/* ---- the cache file --------------------------------------------------------------- */

static long long gallery_ns(struct timespec ts) {
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static json_t *gallery_stat_json(const struct stat *st, int with_ctime) {
    json_t *o = json_pack("{s:I, s:I, s:I}", "size", (json_int_t)st->st_size, "mtime_ns",
                          (json_int_t)gallery_ns(st->st_mtim), "ino", (json_int_t)st->st_ino);
    if (with_ctime) json_object_set_new(o, "ctime_ns", json_integer(gallery_ns(st->st_ctim)));
    return o;
}

static int gallery_stat_matches(json_t *rec, const struct stat *st, int with_ctime) {
    if (!json_is_object(rec) || !st) return 0;
    return json_integer_value(json_object_get(rec, "size")) == (json_int_t)st->st_size &&
           json_integer_value(json_object_get(rec, "mtime_ns")) == gallery_ns(st->st_mtim) &&
           json_integer_value(json_object_get(rec, "ino")) == (json_int_t)st->st_ino &&
           (!with_ctime ||
            json_integer_value(json_object_get(rec, "ctime_ns")) == gallery_ns(st->st_ctim));
}

static void gallery_now_iso(char out[40]) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, 40, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
}

/* 1 when `v` (borrowed) holds a real so large that 15 significant digits would round it past
 * DBL_MAX (1.79769313486232e+308 does not parse again). */
static int gallery_has_huge_real(json_t *v) {
    json_t *item;
    const char *key;
    size_t i;
    if (json_is_real(v)) return fabs(json_real_value(v)) >= 1e308;
    if (json_is_array(v))
        json_array_foreach(v, i, item) if (gallery_has_huge_real(item)) return 1;
    if (json_is_object(v))
        json_object_foreach(v, key, item) if (gallery_has_huge_real(item)) return 1;
    return 0;
}

/* Writes `v` compactly; reals with 15 significant digits ("4.1", not "4.0999999999999996"),
 * or 17 in a value holding a huge real, so that the cache always parses again. */
static int gallery_dump_value(json_t *v, FILE *f) {
    size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY;
    return json_dumpf(v, f, flags | JSON_REAL_PRECISION(gallery_has_huge_real(v) ? 17 : 15));
}

/* Serialises `gallery` in the one-model-per-line format. Caller frees *buf. */
static int gallery_cache_render(json_t *gallery, char **buf, size_t *len) {
    FILE *f = open_memstream(buf, len);
    if (!f) return -1;
    json_t *version = json_object_get(gallery, "version");
    json_t *generated = json_object_get(gallery, "generatedAt");
    json_t *models = json_object_get(gallery, "models"), *model;
    size_t i, n = json_array_size(models);
    int rc = 0;
    fputs("{\"version\":", f);
    rc |= gallery_dump_value(version ? version : json_null(), f);
    fputs(",\"generatedAt\":", f);
    rc |= gallery_dump_value(generated ? generated : json_null(), f);
    fputs(",\"models\":[\n", f);
    json_array_foreach(models, i, model) {
        rc |= gallery_dump_value(model, f);
        fputs(i + 1 < n ? ",\n" : "\n", f);
    }
    fputs("]}\n", f);
    if (fclose(f) != 0) rc = -1;
    if (rc != 0) {
        free(*buf);
        *buf = NULL;
    }
    return rc ? -1 : 0;
}

static void gallery_meta_path(const char *cache_path, char *out, size_t n) {
    size_t len = strlen(cache_path);
    if (len > 5 && strcmp(cache_path + len - 5, ".json") == 0) len -= 5;
    snprintf(out, n, "%.*s.meta.json", (int)len, cache_path);
}

static int gallery_meta_write(const char *meta_path, json_t *meta, mg_error *err) {
    char *text = json_dumps(meta, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text)
        return mg_error_set(err, 500, "internal_error", NULL, "cannot serialise cache meta");
    size_t len = strlen(text);
    text[len] = '\n'; /* json_dumps leaves room for the NUL; the newline replaces it */
    int rc = fs_write_atomic(meta_path, text, len + 1, err);
    free(text);
    return rc;
}

int gallery_cache_write(const char *cache_path, json_t *gallery, json_t *meta, mg_error *err) {
    char *buf = NULL, meta_path[PATH_MAX];
    size_t len = 0;
    struct stat st;
    if (gallery_cache_render(gallery, &buf, &len) != 0)
        return mg_error_set(err, 500, "internal_error", NULL, "cannot serialise the gallery");
    int rc = fs_write_atomic(cache_path, buf, len, err);
    free(buf);
    if (rc != 0) return -1;
    if (stat(cache_path, &st) != 0)
        return mg_error_set(err, 500, "io_error", NULL, "cannot stat %s: %s", cache_path,
                            strerror(errno));
    json_t *m = json_is_object(meta) ? json_copy(meta) : json_object();
    char now[40];
    gallery_now_iso(now);
    json_object_set_new(m, "format", json_integer(GALLERY_META_FORMAT));
    json_object_set_new(m, "cache", gallery_stat_json(&st, 0));
    json_object_set_new(m, "models",
                        json_integer((json_int_t)json_array_size(json_object_get(gallery, "models"))));
    if (!json_object_get(m, "built_at")) json_object_set_new(m, "built_at", json_string(now));
    if (!json_object_get(m, "invalid")) json_object_set_new(m, "invalid", json_array());
    if (!json_object_get(m, "error")) json_object_set_new(m, "error", json_null());
    gallery_meta_path(cache_path, meta_path, sizeof meta_path);
    rc = gallery_meta_write(meta_path, m, err);
    json_decref(m);
    return rc;
}

/* ---- keeping the cache up to date ------------------------------------------------- */

typedef struct gallery_paths {
    char source[MG_PATH_MAX], cache[MG_PATH_MAX], meta[MG_PATH_MAX], lock[MG_PATH_MAX];
} gallery_paths;

typedef struct gallery_stats {
    int have_source, have_cache, have_meta;
    struct stat source, cache, meta;
} gallery_stats;

static void gallery_paths_init(const mg_config *cfg, gallery_paths *p) {
    config_path(cfg, p->source, GALLERY_SOURCE_REL);
    config_path(cfg, p->cache, GALLERY_CACHE_REL);
    config_path(cfg, p->meta, GALLERY_META_REL);
    config_path(cfg, p->lock, GALLERY_LOCK_REL);
}

static void gallery_stats_take(const gallery_paths *p, gallery_stats *s) {
    memset(s, 0, sizeof *s);
    s->have_source = stat(p->source, &s->source) == 0;
    s->have_cache = stat(p->cache, &s->cache) == 0;
    s->have_meta = stat(p->meta, &s->meta) == 0;
}

static int gallery_same_stat(const struct stat *a, const struct stat *b) {
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           gallery_ns(a->st_mtim) == gallery_ns(b->st_mtim) &&
           gallery_ns(a->st_ctim) == gallery_ns(b->st_ctim);
}

/* The last state this process found up to date, so that the fast path is three stats. */
static pthread_mutex_t gallery_last_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int valid;
    char root[MG_PATH_MAX];
    gallery_stats st;
} gallery_last;

static int gallery_last_matches(const mg_config *cfg, const gallery_stats *s) {
    pthread_mutex_lock(&gallery_last_mu);
    int ok = gallery_last.valid && s->have_source && s->have_cache && s->have_meta &&
             strcmp(gallery_last.root, cfg->root) == 0 &&
             gallery_same_stat(&gallery_last.st.source, &s->source) &&
             gallery_same_stat(&gallery_last.st.cache, &s->cache) &&
             gallery_same_stat(&gallery_last.st.meta, &s->meta);
    pthread_mutex_unlock(&gallery_last_mu);
    return ok;
}

static void gallery_last_remember(const mg_config *cfg, const gallery_stats *s) {
    if (!s->have_source || !s->have_cache || !s->have_meta) return;
    pthread_mutex_lock(&gallery_last_mu);
    gallery_last.valid = 1;
    snprintf(gallery_last.root, sizeof gallery_last.root, "%s", cfg->root);
    gallery_last.st = *s;
    pthread_mutex_unlock(&gallery_last_mu);
}

static json_t *gallery_meta_load(const char *meta_path) {
    json_t *m = json_load_file(meta_path, 0, NULL);
    if (m && (!json_is_object(m) ||
              json_integer_value(json_object_get(m, "format")) != GALLERY_META_FORMAT)) {
        json_decref(m);
        m = NULL;
    }
    return m;
}

json_t *gallery_cache_meta(const mg_config *cfg) {
    char path[MG_PATH_MAX];
    return gallery_meta_load(config_path(cfg, path, GALLERY_META_REL));
}

/* 1 when the cache file is the one the meta recorded writing. */
static int gallery_cache_good(json_t *meta, const gallery_stats *s) {
    return meta && s->have_cache && gallery_stat_matches(json_object_get(meta, "cache"),
                                                         &s->cache, 0);
}

typedef enum { GALLERY_FRESH, GALLERY_STALE, GALLERY_BROKEN } gallery_state;

/* Compares the meta with the files: FRESH (cache usable, source unchanged since the last
 * attempt), BROKEN (source unchanged, its error recorded, no good cache), or STALE. A missing
 * source recorded as such (null) counts as unchanged while it stays missing. */
static gallery_state gallery_check(json_t *meta, const gallery_stats *s, mg_error *err) {
    if (!meta) return GALLERY_STALE;
    json_t *source = json_object_get(meta, "source"), *error = json_object_get(meta, "error");
    int same = s->have_source ? gallery_stat_matches(source, &s->source, 1)
                              : json_is_null(source) && json_is_string(error);
    if (!same) return GALLERY_STALE;
    if (gallery_cache_good(meta, s)) return GALLERY_FRESH;
    if (json_is_string(error)) {
        mg_error_set(err, 500, "invalid_gallery", NULL, "%s", json_string_value(error));
        return GALLERY_BROKEN;
    }
    return GALLERY_STALE;
}

static int gallery_same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* Copies the curated seed gallery to an absent source. 0 when seeded. */
static int gallery_seed(const gallery_paths *p) {
    const char *seed = MG_SEED_GALLERY;
    if (gallery_same_file(seed, p->source)) return -1;
    size_t len = 0;
    char *text = fs_read_all(seed, &len, NULL);
    if (!text) return -1;
    int rc = fs_write_atomic(p->source, text, len, NULL);
    free(text);
    if (rc == 0) log_info("seeded %s from %s", p->source, seed);
    return rc;
}

/* The source is unusable (`why`): keeps a good cache and records the error in its meta. */
static int gallery_keep_last(const gallery_paths *p, json_t *meta, const gallery_stats *s,
                             const char *why, mg_error *err) {
    int good = gallery_cache_good(meta, s);
    json_t *m = good ? json_copy(meta) : json_pack("{s:i, s:n, s:i, s:[]}", "format",
                                                   GALLERY_META_FORMAT, "cache", "models", 0,
                                                   "invalid");
    json_object_set_new(m, "source",
                        s->have_source ? gallery_stat_json(&s->source, 1) : json_null());
    json_object_set_new(m, "error", json_string(why));
    if (s->have_source) json_object_set_new(json_object_get(m, "source"), "path",
                                            json_string(p->source));
    gallery_meta_write(p->meta, m, NULL);
    json_decref(m);
    if (good) {
        log_error("%s; serving the last good cache", why);
        return 0;
    }
    log_error("%s; no good cache to serve", why);
    return mg_error_set(err, 500, "invalid_gallery", NULL, "%s", why);
}

/* Rebuilds the cache from the source file. Caller holds the cache lock. */
static int gallery_rebuild(const gallery_paths *p, json_t *meta, gallery_stats *s,
                           mg_error *err) {
    size_t len = 0;
    mg_error perr;
    mg_error_clear(&perr);
    char *text = gallery_read_file(p->source, &len, &s->source, &perr);
    s->have_source = text != NULL;
    json_t *invalid = NULL;
    json_t *g = text ? gallery_parse(text, len, p->source, &invalid, &perr) : NULL;
    free(text);
    if (!g) return gallery_keep_last(p, meta, s, perr.message, err);
    sources_tag_models(g, SOURCES_DEFAULT_NAME); /* every answer names its source */
    json_t *src = gallery_stat_json(&s->source, 1);
    json_object_set_new(src, "path", json_string(p->source));
    json_t *m = json_pack("{s:o, s:o, s:n}", "source", src, "invalid", invalid, "error");
    int rc = gallery_cache_write(p->cache, g, m, err);
    if (rc == 0)
        log_info("gallery cache rebuilt from %s: %zu models, %zu left out", p->source,
                 json_array_size(json_object_get(g, "models")), json_array_size(invalid));
    json_decref(m);
    json_decref(g);
    malloc_trim(0); /* a big gallery's tree is gone: give the pages back */
    return rc;
}

/* Under the cache lock: checks again, seeds, rebuilds or keeps the last good cache. */
static int gallery_ensure_locked(const mg_config *cfg, const gallery_paths *p, int any_cache,
                                 mg_error *err) {
    gallery_stats s;
    gallery_stats_take(p, &s);
    if (any_cache && s.have_cache) return 0;
    json_t *meta = gallery_meta_load(p->meta);
    gallery_state state = gallery_check(meta, &s, err);
    int rc = state == GALLERY_BROKEN ? -1 : 0;
    if (state == GALLERY_STALE) {
        if (!s.have_source && gallery_seed(p) == 0) gallery_stats_take(p, &s);
        if (s.have_source) {
            rc = gallery_rebuild(p, meta, &s, err);
        } else {
            char why[MG_PATH_MAX + 64];
            snprintf(why, sizeof why, "%s: the gallery file is missing", p->source);
            rc = gallery_keep_last(p, meta, &s, why, err);
        }
        if (rc == 0) {
            json_decref(meta);
            gallery_stats_take(p, &s);
            meta = gallery_meta_load(p->meta);
            if (gallery_check(meta, &s, NULL) == GALLERY_FRESH) gallery_last_remember(cfg, &s);
        }
    } else if (state == GALLERY_FRESH) {
        gallery_last_remember(cfg, &s);
    }
    json_decref(meta);
    return rc;
}

int gallery_cache_ensure(const mg_config *cfg, mg_error *err) {
    gallery_paths p;
    gallery_stats s;
    gallery_paths_init(cfg, &p);
    gallery_stats_take(&p, &s);
    /* URL or multi-gallery mode: another module refreshes; only make sure a cache exists. */
    int any_cache = cfg->gallery_url != NULL || cfg->galleries != NULL;
    if (any_cache && s.have_cache) return 0;
    if (!any_cache) {
        if (gallery_last_matches(cfg, &s)) return 0;
        json_t *meta = gallery_meta_load(p.meta);
        gallery_state state = gallery_check(meta, &s, err);
        json_decref(meta);
        if (state == GALLERY_FRESH) {
            gallery_last_remember(cfg, &s);
            return 0;
        }
        if (state == GALLERY_BROKEN) return -1;
    }
    char dir[MG_PATH_MAX];
    if (fs_mkdirs(config_path(cfg, dir, "cache"), 0755, err) != 0) return -1;
    int lock = fs_lock(p.lock, 1, err);
    if (lock < 0) return -1;
    int rc = gallery_ensure_locked(cfg, &p, any_cache, err);
    fs_unlock(lock);
    return rc;
}
