/* gallery.c - parsing and validating gallery documents, and keeping the validated cache
 * (cache/gallery_cache.json + cache/gallery_cache.meta.json) in step with its source.
 *
 * The meta sidecar is a small object:
 *   {"format": 1,
 *    "source": {"path", "size", "mtime_ns", "ino", "ctime_ns"} or null (or a URL's data),
 *    "cache":  {"size", "mtime_ns", "ino"} of the cache file as written, or null,
 *    "index", "gzip": the same for the search index and the gzip copy derived from it,
 *    "models": N, "invalid": [{index, id, reason}], "built_at": ISO-8601,
 *    "error":  null, or why the last rebuild from the source failed}
 * A cache file whose stat differs from "cache" is foreign or corrupted and gets rewritten; a
 * derived file whose stat differs is derived again from the cache.
 *
 * A rebuild streams the source: one model at a time is parsed, checked and written to the
 * cache, its gzip copy and the search index (cachefile.c), so memory does not grow with the
 * gallery. */
#include "gallery.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cachefile.h"
#include "fs.h"
#include "hash.h"
#include "id.h"
#include "log.h"
#include "rebuild.h"
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

/* mirrors: absent, null, or an array of at most GALLERY_MIRRORS_MAX absolute http(s) URLs. */
static int gallery_mirrors_valid(json_t *model) {
    json_t *m = json_object_get(model, "mirrors"), *url;
    size_t i;
    if (!m || json_is_null(m)) return 1;
    if (!json_is_array(m) || json_array_size(m) > GALLERY_MIRRORS_MAX) return 0;
    json_array_foreach(m, i, url) if (!gallery_url_valid(url)) return 0;
    return 1;
}

static int gallery_optional_valid(json_t *model, char *reason, size_t len) {
    static const char *strings[] = {"parameters", "license", "description", "quantization",
                                    "updatedAt", "family", NULL};
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
    if (!gallery_mirrors_valid(model))
        return gallery_reason(reason, len, "mirrors must be an array of at most 16 absolute "
                                           "http(s) URLs");
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

/* The ids of one gallery so far, each with the index of the model that took it first. */
typedef struct gallery_ids {
    char *bytes;
    size_t len, cap;
    struct gallery_id { uint32_t off, len; size_t index; } *ids;
    size_t n, capids;
    uint32_t *slots;    /* open addressing: id + 1, 0 free; at most half full */
    size_t nslots;
} gallery_ids;

static int gallery_ids_grow(gallery_ids *set) {
    size_t nslots = set->nslots ? set->nslots * 2 : 1024, mask = nslots - 1;
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < set->n; i++) {
        size_t at = hash_fnv1a(set->bytes + set->ids[i].off, set->ids[i].len) & mask;
        while (slots[at]) at = (at + 1) & mask;
        slots[at] = (uint32_t)i + 1;
    }
    free(set->slots);
    set->slots = slots;
    set->nslots = nslots;
    return 0;
}

/* Takes `id` for model `index`: -1 when it was free, the first model's index when it was
 * taken, -2 when out of memory. */
static long long gallery_ids_take(gallery_ids *set, const char *id, size_t len, size_t index) {
    if ((set->n + 1) * 2 > set->nslots && gallery_ids_grow(set) != 0) return -2;
    size_t mask = set->nslots - 1, at = hash_fnv1a(id, len) & mask;
    for (; set->slots[at]; at = (at + 1) & mask) {
        const struct gallery_id *e = &set->ids[set->slots[at] - 1];
        if (e->len == len && memcmp(set->bytes + e->off, id, len) == 0) return (long long)e->index;
    }
    if (set->n == set->capids) {
        size_t cap = set->capids ? set->capids * 2 : 1024;
        struct gallery_id *ids = realloc(set->ids, cap * sizeof *ids);
        if (!ids) return -2;
        set->ids = ids;
        set->capids = cap;
    }
    if (set->len + len > set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 65536;
        while (cap < set->len + len) cap *= 2;
        char *bytes = realloc(set->bytes, cap);
        if (!bytes) return -2;
        set->bytes = bytes;
        set->cap = cap;
    }
    memcpy(set->bytes + set->len, id, len);
    set->ids[set->n] = (struct gallery_id){(uint32_t)set->len, (uint32_t)len, index};
    set->len += len;
    set->slots[at] = (uint32_t)++set->n;
    return -1;
}

static void gallery_ids_free(gallery_ids *set) {
    free(set->bytes);
    free(set->ids);
    free(set->slots);
}

struct gallery_checker {
    gallery_ids ids;
};

gallery_checker *gallery_checker_new(void) { return calloc(1, sizeof(gallery_checker)); }

void gallery_checker_free(gallery_checker *c) {
    if (!c) return;
    gallery_ids_free(&c->ids);
    free(c);
}

int gallery_checker_check(gallery_checker *c, json_t *model, size_t index, json_t *invalid) {
    gallery_ids *ids = &c->ids;
    char reason[160];
    json_t *id = json_object_get(model, "id");
    int ok = gallery_model_valid(model, reason, sizeof reason);
    if (ok) {
        long long first = gallery_ids_take(ids, json_string_value(id), json_string_length(id), index);
        if (first == -2) return -1;
        if (first >= 0) {
            snprintf(reason, sizeof reason, "duplicate id (first used by model %lld)", first);
            ok = 0;
        }
    }
    if (ok) return 1;
    const char *id_text = gallery_is_cstring(id) ? json_string_value(id) : NULL;
    json_array_append_new(invalid, json_pack("{s:I, s:O, s:s}", "index", (json_int_t)index,
                                             "id", id_text ? id : json_null(), "reason", reason));
    return 0;
}

void gallery_log_invalid(const char *source, json_t *invalid) {
    json_t *e;
    size_t i;
    json_array_foreach(invalid, i, e) {
        const char *id = json_string_value(json_object_get(e, "id"));
        log_warn("%s: model %lld (id %s) left out: %s", source,
                 (long long)json_integer_value(json_object_get(e, "index")), id ? id : "(none)",
                 json_string_value(json_object_get(e, "reason")));
    }
}

/* Checks every model of `models` (borrowed); appends the valid ones to `out` and an
 * {index, id, reason} to `invalid` for the others, logging each once. */
static void gallery_filter_models(json_t *models, json_t *out, json_t *invalid,
                                  const char *source) {
    gallery_checker c = {0};
    json_t *model;
    size_t i;
    json_array_foreach(models, i, model)
        if (gallery_checker_check(&c, model, i, invalid) == 1) json_array_append(out, model);
    gallery_ids_free(&c.ids);
    gallery_log_invalid(source, invalid);
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

void gallery_index_path(const char *cache_path, char *out, size_t n) {
    size_t len = strlen(cache_path);
    if (len > 5 && strcmp(cache_path + len - 5, ".json") == 0) len -= 5;
    int w = snprintf(out, n, "%.*s.index", (int)len, cache_path);
    if (w < 0 || (size_t)w >= n) out[0] = '\0';
}

void gallery_gzip_path(const char *cache_path, char *out, size_t n) {
    int w = snprintf(out, n, "%s.gz", cache_path);
    if (w < 0 || (size_t)w >= n) out[0] = '\0';
}

/* Writes the meta of a cache just written (`st`): a copy of `meta` (borrowed, or NULL) with
 * the files' stats and what else is missing. */
static int gallery_meta_finish(const char *cache_path, json_t *meta, const cachefile_stats *st,
                               mg_error *err) {
    char meta_path[PATH_MAX], now[40];
    json_t *m = json_is_object(meta) ? json_copy(meta) : json_object();
    gallery_now_iso(now);
    json_object_set_new(m, "format", json_integer(GALLERY_META_FORMAT));
    json_object_set_new(m, "cache", gallery_stat_json(&st->cache, 0));
    json_object_set_new(m, "index", gallery_stat_json(&st->index, 0));
    json_object_set_new(m, "gzip", gallery_stat_json(&st->gzip, 0));
    json_object_set_new(m, "models", json_integer((json_int_t)st->models));
    if (!json_object_get(m, "built_at")) json_object_set_new(m, "built_at", json_string(now));
    if (!json_object_get(m, "invalid")) json_object_set_new(m, "invalid", json_array());
    if (!json_object_get(m, "error")) json_object_set_new(m, "error", json_null());
    if (!json_object_get(m, "source")) json_object_set_new(m, "source", json_null());
    gallery_meta_path(cache_path, meta_path, sizeof meta_path);
    int rc = gallery_meta_write(meta_path, m, err);
    json_decref(m);
    return rc;
}

int gallery_cache_write(const char *cache_path, json_t *gallery, json_t *meta, mg_error *err) {
    cachefile *c = cachefile_begin(cache_path, json_object_get(gallery, "version"),
                                   json_object_get(gallery, "generatedAt"), err);
    if (!c) return -1;
    json_t *model;
    size_t i;
    json_array_foreach(json_object_get(gallery, "models"), i, model) {
        if (cachefile_add(c, model, err) != 0) {
            cachefile_abort(c);
            return -1;
        }
    }
    cachefile_stats st;
    if (cachefile_commit(c, &st, err) != 0) return -1;
    return gallery_meta_finish(cache_path, meta, &st, err);
}

/* ---- keeping the cache up to date ------------------------------------------------- */

typedef struct gallery_paths {
    char source[MG_PATH_MAX], cache[MG_PATH_MAX], meta[MG_PATH_MAX], lock[MG_PATH_MAX];
    char index[MG_PATH_MAX], gzip[MG_PATH_MAX];
} gallery_paths;

typedef struct gallery_stats {
    int have_source, have_cache, have_meta, have_index, have_gzip;
    struct stat source, cache, meta, index, gzip;
} gallery_stats;

static void gallery_paths_init(const mg_config *cfg, gallery_paths *p) {
    config_path(cfg, p->source, GALLERY_SOURCE_REL);
    config_path(cfg, p->cache, GALLERY_CACHE_REL);
    config_path(cfg, p->meta, GALLERY_META_REL);
    config_path(cfg, p->lock, GALLERY_LOCK_REL);
    gallery_index_path(p->cache, p->index, sizeof p->index);
    gallery_gzip_path(p->cache, p->gzip, sizeof p->gzip);
}

static void gallery_stats_take(const gallery_paths *p, gallery_stats *s) {
    memset(s, 0, sizeof *s);
    s->have_source = stat(p->source, &s->source) == 0;
    s->have_cache = stat(p->cache, &s->cache) == 0;
    s->have_meta = stat(p->meta, &s->meta) == 0;
    s->have_index = stat(p->index, &s->index) == 0;
    s->have_gzip = stat(p->gzip, &s->gzip) == 0;
}

static int gallery_same_stat(const struct stat *a, const struct stat *b) {
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           gallery_ns(a->st_mtim) == gallery_ns(b->st_mtim) &&
           gallery_ns(a->st_ctim) == gallery_ns(b->st_ctim);
}

/* The last state this process found up to date, so that the fast path is five stats. */
static pthread_mutex_t gallery_last_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int valid;
    char root[MG_PATH_MAX];
    gallery_stats st;
} gallery_last;

static int gallery_all_there(const gallery_stats *s) {
    return s->have_source && s->have_cache && s->have_meta && s->have_index && s->have_gzip;
}

static int gallery_last_matches(const mg_config *cfg, const gallery_stats *s) {
    pthread_mutex_lock(&gallery_last_mu);
    const gallery_stats *l = &gallery_last.st;
    int ok = gallery_last.valid && gallery_all_there(s) && strcmp(gallery_last.root, cfg->root) == 0 &&
             gallery_same_stat(&l->source, &s->source) && gallery_same_stat(&l->cache, &s->cache) &&
             gallery_same_stat(&l->meta, &s->meta) && gallery_same_stat(&l->index, &s->index) &&
             gallery_same_stat(&l->gzip, &s->gzip);
    pthread_mutex_unlock(&gallery_last_mu);
    return ok;
}

static void gallery_last_remember(const mg_config *cfg, const gallery_stats *s) {
    if (!gallery_all_there(s)) return;
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

/* 1 when the search index and the gzip copy are the ones the meta recorded. */
static int gallery_derived_good(json_t *meta, const gallery_stats *s) {
    return meta && s->have_index && s->have_gzip &&
           gallery_stat_matches(json_object_get(meta, "index"), &s->index, 0) &&
           gallery_stat_matches(json_object_get(meta, "gzip"), &s->gzip, 0);
}

typedef enum { GALLERY_FRESH, GALLERY_DERIVE, GALLERY_STALE, GALLERY_BROKEN } gallery_state;

/* Compares the meta with the files: FRESH (cache and derived files usable, source unchanged
 * since the last attempt), DERIVE (the same, but the derived files are not the recorded
 * ones), BROKEN (source unchanged, its error recorded, no good cache), or STALE. A missing
 * source recorded as such (null) counts as unchanged while it stays missing. */
static gallery_state gallery_check(json_t *meta, const gallery_stats *s, mg_error *err) {
    if (!meta) return GALLERY_STALE;
    json_t *source = json_object_get(meta, "source"), *error = json_object_get(meta, "error");
    int same = s->have_source ? gallery_stat_matches(source, &s->source, 1)
                              : json_is_null(source) && json_is_string(error);
    if (!same) return GALLERY_STALE;
    if (gallery_cache_good(meta, s))
        return gallery_derived_good(meta, s) ? GALLERY_FRESH : GALLERY_DERIVE;
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

/* Rebuilds the cache (and its derived files) from the source file, one model at a time.
 * Caller holds the cache lock. */
static int gallery_rebuild(const gallery_paths *p, json_t *meta, gallery_stats *s,
                           mg_error *err) {
    mg_error serr;
    mg_error_clear(&serr);
    cachefile_stats st;
    json_t *invalid = NULL;
    int rc = rebuild_from_file(p->source, p->cache, SOURCES_DEFAULT_NAME, &s->source, &st,
                               &invalid, &serr, err);
    s->have_source = rc == 0 || strcmp(serr.code, "invalid_gallery") == 0;
    if (rc != 0 && serr.message[0]) return gallery_keep_last(p, meta, s, serr.message, err);
    if (rc == 0) {
        json_t *src = gallery_stat_json(&s->source, 1);
        json_object_set_new(src, "path", json_string(p->source));
        json_t *m = json_pack("{s:o, s:O, s:n}", "source", src, "invalid", invalid, "error");
        rc = gallery_meta_finish(p->cache, m, &st, err);
        json_decref(m);
    }
    if (rc == 0) {
        gallery_log_invalid(p->source, invalid);
        log_info("gallery cache rebuilt from %s: %zu models, %zu left out", p->source,
                 st.models, json_array_size(invalid));
    }
    json_decref(invalid);
    malloc_trim(0); /* the builder's memory is free: give the pages back */
    return rc;
}

/* Derives the search index and the gzip copy from the cache file as it is and records them
 * (and the cache file) in the meta. Caller holds the cache lock. */
static int gallery_derive(const gallery_paths *p, json_t *meta, mg_error *err) {
    cachefile_stats st;
    int rc = cachefile_derive(p->cache, &st, err);
    malloc_trim(0);
    if (rc != 0) return -1;
    log_info("search index and gzip copy of %s rebuilt: %zu models", p->cache, st.models);
    return gallery_meta_finish(p->cache, meta, &st, err);
}

/* A stale cache in local mode: seeds a missing source, then rebuilds or keeps the last. */
static int gallery_refresh_local(const gallery_paths *p, json_t *meta, gallery_stats *s,
                                 mg_error *err) {
    if (!s->have_source && gallery_seed(p) == 0) gallery_stats_take(p, s);
    if (s->have_source) return gallery_rebuild(p, meta, s, err);
    char why[MG_PATH_MAX + 64];
    snprintf(why, sizeof why, "%s: the gallery file is missing", p->source);
    return gallery_keep_last(p, meta, s, why, err);
}

/* Under the cache lock: checks again, then seeds, rebuilds, derives or keeps the last good
 * cache. In remote mode an existing cache is only given its derived files. */
static int gallery_ensure_locked(const mg_config *cfg, const gallery_paths *p, int remote,
                                 mg_error *err) {
    gallery_stats s;
    gallery_stats_take(p, &s);
    json_t *meta = gallery_meta_load(p->meta);
    int rc = 0;
    if (remote && s.have_cache) {
        if (!gallery_cache_good(meta, &s) || !gallery_derived_good(meta, &s))
            rc = gallery_derive(p, meta, err);
        json_decref(meta);
        return rc;
    }
    gallery_state state = gallery_check(meta, &s, err);
    if (state == GALLERY_BROKEN) rc = -1;
    if (state == GALLERY_DERIVE && gallery_derive(p, meta, NULL) != 0) state = GALLERY_STALE;
    if (state == GALLERY_STALE) rc = gallery_refresh_local(p, meta, &s, err);
    if (rc == 0) {
        json_decref(meta);
        gallery_stats_take(p, &s);
        meta = gallery_meta_load(p->meta);
        if (gallery_check(meta, &s, NULL) == GALLERY_FRESH) gallery_last_remember(cfg, &s);
    }
    json_decref(meta);
    return rc;
}

static int gallery_ensure(const mg_config *cfg, int wait, mg_error *err) {
    gallery_paths p;
    gallery_stats s;
    gallery_paths_init(cfg, &p);
    gallery_stats_take(&p, &s);
    /* URL or multi-gallery mode: another module refreshes; only make sure a cache (and its
     * derived files) exists. */
    int remote = cfg->gallery_url != NULL || cfg->galleries != NULL;
    json_t *meta = NULL;
    if (remote && s.have_cache) {
        meta = gallery_meta_load(p.meta);
        int ok = gallery_cache_good(meta, &s) && gallery_derived_good(meta, &s);
        json_decref(meta);
        if (ok) return 0;
    } else if (!remote) {
        if (gallery_last_matches(cfg, &s)) return 0;
        meta = gallery_meta_load(p.meta);
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
    int lock = wait ? fs_lock(p.lock, 1, err) : fs_lock_try(p.lock, 1, err);
    if (lock == -2) return 1;
    if (lock < 0) return -1;
    int rc = gallery_ensure_locked(cfg, &p, remote, err);
    fs_unlock(lock);
    return rc;
}

int gallery_cache_ensure(const mg_config *cfg, mg_error *err) {
    return gallery_ensure(cfg, 1, err);
}

int gallery_cache_ensure_try(const mg_config *cfg, mg_error *err) {
    return gallery_ensure(cfg, 0, err);
}

int gallery_cache_settled(const mg_config *cfg) {
    if (cfg->gallery_url != NULL || cfg->galleries != NULL) return 1;
    gallery_paths p;
    gallery_stats s;
    gallery_paths_init(cfg, &p);
    gallery_stats_take(&p, &s);
    if (gallery_last_matches(cfg, &s)) return 1;
    json_t *meta = gallery_meta_load(p.meta);
    gallery_state state = gallery_check(meta, &s, NULL);
    json_decref(meta);
    return state == GALLERY_FRESH || state == GALLERY_BROKEN;
}

int gallery_cache_repair(const mg_config *cfg, const struct stat *bad, int wait, mg_error *err) {
    gallery_paths p;
    gallery_paths_init(cfg, &p);
    int lock = wait ? fs_lock(p.lock, 1, err) : fs_lock_try(p.lock, 1, err);
    if (lock == -2) return 1;
    if (lock < 0) return -1;
    struct stat now;
    int rc = 0;
    /* replaced since the caller looked: the caller tries the new one */
    int replaced = stat(p.index, &now) == 0 && bad && bad->st_ino &&
                   !(now.st_ino == bad->st_ino && now.st_size == bad->st_size &&
                     gallery_ns(now.st_mtim) == gallery_ns(bad->st_mtim));
    if (!replaced) {
        json_t *meta = gallery_meta_load(p.meta);
        rc = gallery_derive(&p, meta, err);
        json_decref(meta);
        if (rc != 0 && !(cfg->gallery_url || cfg->galleries)) {
            gallery_stats s;
            gallery_stats_take(&p, &s);
            meta = gallery_meta_load(p.meta);
            rc = gallery_refresh_local(&p, meta, &s, err);
            json_decref(meta);
        }
    }
    fs_unlock(lock);
    return rc;
}
