/* refresh.c - the gallery refresher thread of mg-installer: fetches the configured sources
 * (conditionally), keeps each source's last good gallery, merges them into the cache and
 * writes cache/gallery_status.json. Never empties the gallery: a failing source keeps its
 * last good copy, and with none at all the cache stays or falls back to the local file. */
#include "refresh.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fetch.h"
#include "fs.h"
#include "gallery.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "signature.h"
#include "sources.h"

#define REFRESH_RETRY_S 60L  /* next attempt after a failure, when the TTL is longer */
#define REFRESH_TICK_MS 1000 /* how often changed files and the request file are checked */

/* ---- one source ------------------------------------------------------------------- */

/* What a cycle knows while it runs (all owned). */
typedef struct refresh_cycle {
    mg_config cfg;
    const atomic_int *cancel;
    char now[40];
    json_t *prev;    /* the previous status file, or NULL */
    int failures;    /* sources that failed in this cycle */
} refresh_cycle;

static json_t *refresh_json_str(const char *s) {
    return s && *s ? json_string(s) : json_null();
}

/* The previous status entry of `s` when it described the same url or path, else a blank one.
 * New reference. */
static json_t *refresh_entry_start(refresh_cycle *c, const gallery_source *s) {
    json_t *old, *entries = json_object_get(c->prev, "sources");
    size_t i;
    json_array_foreach(entries, i, old) {
        const char *name = json_string_value(json_object_get(old, "name"));
        const char *url = json_string_value(json_object_get(old, "url"));
        const char *path = json_string_value(json_object_get(old, "path"));
        if (name && strcmp(name, s->name) == 0 && !s->error[0] &&
            ((s->url && url && strcmp(url, s->url) == 0) ||
             (s->path && path && strcmp(path, s->path) == 0))) {
            json_t *e = json_deep_copy(old);
            json_object_set_new(e, "clashes", json_array());
            return e;
        }
    }
    return sources_status_entry(s);
}

static void refresh_entry_error(refresh_cycle *c, const gallery_source *s, json_t *entry,
                                const char *message) {
    json_object_set_new(entry, "error", json_string(message));
    json_object_set_new(entry, "last_error", json_string(message));
    json_object_set_new(entry, "last_error_at", json_string(c->now));
    c->failures++;
    log_warn("gallery source %s: %s (keeping its last good gallery)", s->name, message);
}

/* The stored last good gallery of `s`, when it was stored for the same url or path.
 * New reference to {name, url, path, etag, last_modified, stat, fetched_at, gallery,
 * invalid}, or NULL. */
static json_t *refresh_store_load(refresh_cycle *c, const gallery_source *s) {
    char path[MG_PATH_MAX];
    json_t *st = json_load_file(sources_store_path(&c->cfg, s->name, path), 0, NULL);
    const char *url = json_string_value(json_object_get(st, "url"));
    const char *file = json_string_value(json_object_get(st, "path"));
    const char *key = json_string_value(json_object_get(st, "public_key"));
    int same = s->url ? url && strcmp(url, s->url) == 0 : file && strcmp(file, s->path) == 0;
    if (s->is_signed && (!key || strcmp(key, s->key_b64) != 0))
        same = 0; /* not verified with this key: never served as verified */
    if (!same || !json_is_object(json_object_get(st, "gallery"))) {
        json_decref(st);
        return NULL;
    }
    return st;
}

/* Stores `g` (borrowed) as the last good gallery of `s` (with the public key that verified
 * it, when signed). New reference to the record. */
static json_t *refresh_store_save(refresh_cycle *c, const gallery_source *s, json_t *g,
                                  json_t *invalid, const char *etag, const char *lm,
                                  json_t *stat_rec) {
    char path[MG_PATH_MAX];
    json_t *rec = json_pack("{s:s, s:o, s:o, s:o, s:o, s:O, s:s, s:O, s:o}", "name", s->name,
                            "url", refresh_json_str(s->url), "path", refresh_json_str(s->path),
                            "etag", refresh_json_str(etag), "last_modified",
                            refresh_json_str(lm), "stat", stat_rec ? stat_rec : json_null(),
                            "fetched_at", c->now, "gallery", g, "invalid",
                            invalid ? json_incref(invalid) : json_array());
    json_object_set_new(rec, "public_key", refresh_json_str(s->is_signed ? s->key_b64 : NULL));
    mg_error err;
    char *text = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
    config_path(&c->cfg, path, SOURCES_STORE_REL);
    if (!text || fs_mkdirs(path, 0755, &err) != 0 ||
        fs_write_atomic(sources_store_path(&c->cfg, s->name, path), text, strlen(text), &err) != 0)
        log_error("gallery source %s: cannot store its gallery: %s", s->name,
                  text ? err.message : "out of memory");
    free(text);
    return rec;
}

/* Records a success of `s` whose good gallery is `rec` (borrowed) in `entry`. */
static void refresh_entry_success(refresh_cycle *c, json_t *entry, json_t *rec) {
    json_object_set_new(entry, "last_success", json_string(c->now));
    json_object_set_new(entry, "error", json_null());
    json_object_set(entry, "etag", json_object_get(rec, "etag"));
    json_object_set(entry, "last_modified", json_object_get(rec, "last_modified"));
    json_object_set(entry, "invalid", json_object_get(rec, "invalid"));
}

/* Takes `g` (a new reference, consumed) as the good gallery of `s`, replacing `stored`
 * (consumed, may be NULL); `res` gives its validators and invalid entries, `stat_rec`
 * (borrowed, may be NULL) a path source's stat. Returns a new reference to the new record. */
static json_t *refresh_accept(refresh_cycle *c, const gallery_source *s, json_t *entry,
                              json_t *stored, json_t *g, const fetch_result *res,
                              json_t *stat_rec) {
    int changed = !stored || !json_equal(g, json_object_get(stored, "gallery"));
    json_decref(stored);
    json_t *rec = refresh_store_save(c, s, g, res->invalid, res->etag, res->last_modified,
                                     stat_rec);
    if (changed) json_object_set_new(entry, "last_change", json_string(c->now));
    refresh_entry_success(c, entry, rec);
    json_decref(g);
    return rec;
}

/* ---- signatures ------------------------------------------------------------------- */

/* What the signature check of one source needs (borrowed). */
typedef struct refresh_sig {
    refresh_cycle *c;
    const gallery_source *s;
    json_t *entry;
} refresh_sig;

/* The text of the signature of `s` (fetched from its URL, or read from its path): malloc'd,
 * or NULL with err when there is none to be had. */
static char *refresh_signature_text(refresh_cycle *c, const gallery_source *s, size_t *len,
                                    mg_error *err) {
    if (!fetch_is_url(s->signature)) return fs_read_all(s->signature, len, err);
    fetch_options opt;
    fetch_result res;
    fetch_options_init(&opt, c->cfg.allow_http);
    opt.cancel = c->cancel;
    opt.max_bytes = 4096;
    fetch_result_init(&res);
    char *text = fetch_body(s->signature, &opt, &res, len, err);
    fetch_result_clear(&res);
    return text;
}

/* fetch check_body of a signed source: the exact bytes of the gallery must carry a valid
 * Ed25519 signature by the source's key. Sets the entry's "signature". 0, or -1 and err. */
static int refresh_check_signature(void *ud, const char *body, size_t len, mg_error *err) {
    refresh_sig *rs = ud;
    size_t sig_len = 0;
    mg_error serr;
    mg_error_clear(&serr);
    char *sig = refresh_signature_text(rs->c, rs->s, &sig_len, &serr);
    int found = sig != NULL, ok = found && signature_verify(rs->s->key, body, len, sig, sig_len);
    free(sig);
    json_object_set_new(rs->entry, "signature",
                        json_string(ok ? "valid" : found ? "invalid" : "missing"));
    if (ok) return 0;
    if (!found)
        return mg_error_set(err, 502, "signature_missing", NULL,
                            "no signature for the gallery (%.300s); it is not used and the "
                            "last verified gallery stays", serr.message);
    return mg_error_set(err, 502, "signature_invalid", NULL,
                        "the signature at %.300s does not verify the gallery with its "
                        "public_key; it is not used and the last verified gallery stays",
                        rs->s->signature);
}

/* Sets the signature check of signed source `s` on `opt`, with `rs` (filled here) as its
 * state. */
static void refresh_sig_options(refresh_cycle *c, const gallery_source *s, json_t *entry,
                                fetch_options *opt, refresh_sig *rs) {
    if (!s->is_signed) return;
    rs->c = c;
    rs->s = s;
    rs->entry = entry;
    opt->check_body = refresh_check_signature;
    opt->check_ud = rs;
}

/* Fetches URL source `s`. Returns a new reference to its good record (new or stored) or NULL. */
static json_t *refresh_url_source(refresh_cycle *c, const gallery_source *s, json_t *entry) {
    json_t *stored = refresh_store_load(c, s);
    fetch_options opt;
    fetch_result res;
    mg_error err;
    mg_error_clear(&err);
    fetch_options_init(&opt, c->cfg.allow_http);
    opt.cancel = c->cancel;
    opt.etag = json_string_value(json_object_get(stored, "etag"));
    opt.last_modified = json_string_value(json_object_get(stored, "last_modified"));
    refresh_sig rs;
    refresh_sig_options(c, s, entry, &opt, &rs);
    fetch_result_init(&res);
    json_t *g = fetch_gallery(s->url, &opt, &res, &err);
    json_object_set_new(entry, "http_status",
                        res.http_status ? json_integer(res.http_status) : json_null());
    if (g) {
        stored = refresh_accept(c, s, entry, stored, g, &res, NULL);
    } else if (res.not_modified && stored) {
        refresh_entry_success(c, entry, stored);
    } else {
        if (res.not_modified)
            snprintf(err.message, sizeof err.message, "%s: 304 Not Modified without a stored copy",
                     s->url);
        if (res.invalid) json_object_set(entry, "invalid", res.invalid);
        refresh_entry_error(c, s, entry, err.message);
    }
    fetch_result_clear(&res);
    return stored;
}

static long long refresh_ns(struct timespec ts) {
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static json_t *refresh_stat_json(const struct stat *st) {
    return json_pack("{s:I, s:I, s:I}", "size", (json_int_t)st->st_size, "mtime_ns",
                     (json_int_t)refresh_ns(st->st_mtim), "ino", (json_int_t)st->st_ino);
}

/* Reads path source `s` when it changed since it was stored. New reference or NULL. */
static json_t *refresh_path_source(refresh_cycle *c, const gallery_source *s, json_t *entry) {
    json_t *stored = refresh_store_load(c, s);
    struct stat st;
    mg_error err;
    mg_error_clear(&err);
    json_t *now_stat = stat(s->path, &st) == 0 ? refresh_stat_json(&st) : NULL;
    if (stored && now_stat && json_equal(now_stat, json_object_get(stored, "stat"))) {
        refresh_entry_success(c, entry, stored);
        json_decref(now_stat);
        return stored;
    }
    fetch_result res;
    fetch_options opt;
    refresh_sig rs;
    fetch_options_init(&opt, c->cfg.allow_http);
    refresh_sig_options(c, s, entry, &opt, &rs);
    fetch_result_init(&res);
    json_t *g = now_stat ? load_gallery(s->path, &opt, &res, &err) : NULL;
    if (!now_stat)
        mg_error_set(&err, 500, "io_error", NULL, "%s: %s", s->path, strerror(errno));
    if (g) {
        stored = refresh_accept(c, s, entry, stored, g, &res, now_stat);
    } else {
        if (res.invalid) json_object_set(entry, "invalid", res.invalid);
        refresh_entry_error(c, s, entry, err.message);
    }
    fetch_result_clear(&res);
    json_decref(now_stat);
    return stored;
}

/* Attempts source `s`; appends its status entry to `entries` and, when it has a good
 * gallery, {name, gallery} to `parts`. */
static void refresh_source(refresh_cycle *c, const gallery_source *s, json_t *entries,
                           json_t *parts) {
    json_t *entry = refresh_entry_start(c, s);
    json_array_append_new(entries, entry);
    if (s->error[0]) {
        json_object_set_new(entry, "error", json_string(s->error));
        c->failures++;
        log_warn("gallery source %s: %s", s->name, s->error);
        return;
    }
    json_object_set_new(entry, "last_attempt", json_string(c->now));
    /* signed: "valid" stands for an unchanged verified copy; a check overwrites it */
    json_object_set_new(entry, "signature", s->is_signed ? json_string("valid") : json_null());
    json_t *rec = s->url ? refresh_url_source(c, s, entry) : refresh_path_source(c, s, entry);
    if (s->is_signed && !rec && json_is_string(json_object_get(entry, "error")) &&
        strcmp(json_string_value(json_object_get(entry, "signature")), "valid") == 0)
        json_object_set_new(entry, "signature", json_null()); /* no gallery came to check */
    json_t *g = json_object_get(rec, "gallery");
    const char *result = !json_is_null(json_object_get(entry, "error")) ? "error"
                         : json_integer_value(json_object_get(entry, "http_status")) == 304
                             ? "not_modified"
                             : "ok";
    metrics_addf(1, "mg_gallery_refresh_total{source=\"%s\",result=\"%s\"}", s->name, result);
    json_object_set_new(entry, "model_count",
                        g ? json_integer((json_int_t)json_array_size(json_object_get(g, "models")))
                          : json_integer(0));
    if (g) json_array_append_new(parts, json_pack("{s:s, s:O}", "name", s->name, "gallery", g));
    json_decref(rec);
}

/* ---- the merged cache ------------------------------------------------------------- */

/* Hex SHA-256 of the compact rendering of `g` into out (65 bytes). */
static void refresh_digest(json_t *g, char out[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char *text = json_dumps(g, JSON_COMPACT | JSON_PRESERVE_ORDER);
    out[0] = '\0';
    if (text && EVP_Digest(text, strlen(text), md, &n, EVP_sha256(), NULL) == 1)
        for (unsigned int i = 0; i < n && i < 32; i++) sprintf(out + 2 * i, "%02x", md[i]);
    free(text);
}

/* 1 when the cache file is the one `meta` (borrowed) says was written with digest `sha`. */
static int refresh_cache_current(refresh_cycle *c, json_t *meta, const char *sha) {
    char path[MG_PATH_MAX];
    struct stat st;
    json_t *rec = json_object_get(meta, "cache");
    const char *old = json_string_value(json_object_get(meta, "content_sha256"));
    return old && strcmp(old, sha) == 0 &&
           stat(config_path(&c->cfg, path, "cache/gallery_cache.json"), &st) == 0 &&
           json_integer_value(json_object_get(rec, "size")) == (json_int_t)st.st_size &&
           json_integer_value(json_object_get(rec, "mtime_ns")) == refresh_ns(st.st_mtim);
}

/* 1 when `parts` (borrowed) holds a part named `name`. */
static int refresh_has_part(json_t *parts, const char *name) {
    json_t *p;
    size_t i;
    json_array_foreach(parts, i, p) {
        const char *n = json_string_value(json_object_get(p, "name"));
        if (n && name && strcmp(n, name) == 0) return 1;
    }
    return 0;
}

/* The cache meta for the merged gallery: where each part came from and the invalid entries
 * of those sources (each tagged with its source's name). New reference. */
static json_t *refresh_meta(json_t *entries, json_t *parts, json_t *clashes, const char *sha) {
    json_t *srcs = json_array(), *invalid = json_array(), *e, *bad;
    size_t i, j;
    json_array_foreach(entries, i, e) {
        if (!refresh_has_part(parts, json_string_value(json_object_get(e, "name")))) continue;
        json_array_append_new(srcs, json_pack("{s:O, s:O, s:O, s:O, s:O}", "name",
                                              json_object_get(e, "name"), "url",
                                              json_object_get(e, "url"), "path",
                                              json_object_get(e, "path"), "etag",
                                              json_object_get(e, "etag"), "last_modified",
                                              json_object_get(e, "last_modified")));
        json_array_foreach(json_object_get(e, "invalid"), j, bad) {
            json_t *copy = json_copy(bad);
            json_object_set(copy, "gallery", json_object_get(e, "name"));
            json_array_append_new(invalid, copy);
        }
    }
    return json_pack("{s:{s:s, s:o}, s:o, s:n, s:s, s:O}", "source", "kind", "sources",
                     "sources", srcs, "invalid", invalid, "error", "content_sha256", sha,
                     "clashes", clashes);
}

/* Writes the merged gallery when it differs from the cache. 0, or -1 (logged). */
static int refresh_write_cache(refresh_cycle *c, json_t *merged, json_t *entries,
                               json_t *parts, json_t *clashes) {
    char sha[65], cache[MG_PATH_MAX], lock_path[MG_PATH_MAX];
    mg_error err;
    refresh_digest(merged, sha);
    json_t *meta = gallery_cache_meta(&c->cfg);
    int current = refresh_cache_current(c, meta, sha);
    json_decref(meta);
    if (current) return 0;
    int lock = fs_lock(config_path(&c->cfg, lock_path, "cache/.lock"), 1, &err);
    if (lock < 0) {
        log_error("gallery cache not written: %s", err.message);
        return -1;
    }
    json_t *m = refresh_meta(entries, parts, clashes, sha);
    int rc = gallery_cache_write(config_path(&c->cfg, cache, "cache/gallery_cache.json"), merged,
                                 m, &err);
    fs_unlock(lock);
    json_decref(m);
    if (rc != 0) {
        log_error("gallery cache not written: %s", err.message);
        return -1;
    }
    json_t *clash;
    size_t i;
    json_array_foreach(clashes, i, clash)
        log_warn("gallery id clash: %s is in %s and %s; %s wins",
                 json_string_value(json_object_get(clash, "id")),
                 json_string_value(json_object_get(clash, "kept")),
                 json_string_value(json_object_get(clash, "dropped")),
                 json_string_value(json_object_get(clash, "kept")));
    log_info("gallery cache written: %zu models from the sources",
             json_array_size(json_object_get(merged, "models")));
    return 0;
}

/* Adds each clash to the entry of the source that lost it. */
static void refresh_note_clashes(json_t *entries, json_t *clashes) {
    json_t *clash, *e;
    size_t i, j;
    json_array_foreach(clashes, i, clash) {
        const char *dropped = json_string_value(json_object_get(clash, "dropped"));
        json_array_foreach(entries, j, e) {
            const char *name = json_string_value(json_object_get(e, "name"));
            if (name && dropped && strcmp(name, dropped) == 0)
                json_array_append_new(json_object_get(e, "clashes"),
                                      json_pack("{s:O, s:O}", "id", json_object_get(clash, "id"),
                                                "kept", json_object_get(clash, "kept")));
        }
    }
}

/* What the cache holds now: {models, fallback, sources}. New reference. */
static json_t *refresh_serving(refresh_cycle *c) {
    json_t *meta = gallery_cache_meta(&c->cfg);
    json_t *src = json_object_get(meta, "source");
    const char *kind = json_string_value(json_object_get(src, "kind"));
    int ours = kind && strcmp(kind, "sources") == 0;
    json_t *names = json_array(), *s;
    size_t i;
    if (ours)
        json_array_foreach(json_object_get(src, "sources"), i, s)
            json_array_append(names, json_object_get(s, "name"));
    else if (meta)
        json_array_append_new(names, json_string(SOURCES_LOCAL_REL));
    json_t *out = json_pack("{s:I, s:b, s:o}", "models",
                            json_integer_value(json_object_get(meta, "models")), "fallback",
                            meta && !ours, "sources", names);
    json_decref(meta);
    return out;
}

/* ---- a cycle ---------------------------------------------------------------------- */

static void refresh_write_status(refresh_cycle *c, json_t *status) {
    char path[MG_PATH_MAX];
    mg_error err;
    char *text = json_dumps(status, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text ||
        fs_write_atomic(config_path(&c->cfg, path, SOURCES_STATUS_REL), text, strlen(text),
                        &err) != 0)
        log_error("cannot write %s: %s", SOURCES_STATUS_REL, text ? err.message : "out of memory");
    free(text);
}

/* Remote mode: every source, the merge, the cache. Returns the status document. */
static json_t *refresh_remote(refresh_cycle *c) {
    sources_list list;
    json_t *entries = json_array(), *parts = json_array(), *clashes = NULL;
    sources_load(&c->cfg, &list, NULL);
    for (size_t i = 0; i < list.count; i++) refresh_source(c, &list.items[i], entries, parts);
    sources_free(&list);
    json_t *merged = sources_merge(parts, &clashes);
    refresh_note_clashes(entries, clashes);
    if (json_array_size(parts) > 0) {
        refresh_write_cache(c, merged, entries, parts, clashes);
    } else {
        mg_error err;
        mg_error_clear(&err);
        if (gallery_cache_ensure(&c->cfg, &err) != 0)
            log_error("no gallery source is usable and no cache: %s", err.message);
    }
    json_t *status = json_pack("{s:s, s:s, s:n, s:I, s:n, s:o, s:o, s:o}", "mode", "remote",
                               "updated_at", c->now, "last_request_id", "ttl_s",
                               (json_int_t)c->cfg.gallery_cache_ttl_s, "next_refresh_at",
                               "serving", refresh_serving(c), "clashes", clashes, "sources",
                               entries);
    json_decref(merged);
    json_decref(parts);
    return status;
}

/* Local mode: the cache follows config/models_gallery.json. Returns the status document. */
static json_t *refresh_local(refresh_cycle *c) {
    mg_error err;
    mg_error_clear(&err);
    if (gallery_cache_ensure(&c->cfg, &err) != 0) {
        log_error("gallery: %s", err.message);
        c->failures++;
    }
    json_t *status = sources_status(&c->cfg, NULL);
    if (!status) status = json_object();
    json_object_set_new(status, "updated_at", json_string(c->now));
    return status;
}

/* The request id of the previous status, carried over when this cycle handles none. */
static json_int_t refresh_prev_request(refresh_cycle *c) {
    return json_integer_value(json_object_get(c->prev, "last_request_id"));
}

long refresh_run_once(const char *root, long long request_id, const atomic_int *cancel,
                      mg_error *err) {
    refresh_cycle c;
    memset(&c, 0, sizeof c);
    if (config_load(&c.cfg, root, err) != 0) return -1;
    char path[MG_PATH_MAX];
    c.cancel = cancel;
    job_now_iso(c.now);
    c.prev = json_load_file(config_path(&c.cfg, path, SOURCES_STATUS_REL), 0, NULL);
    int remote = sources_remote_mode(&c.cfg);
    json_t *status = remote ? refresh_remote(&c) : refresh_local(&c);
    long ttl = c.cfg.gallery_cache_ttl_s;
    long next = c.failures && ttl > REFRESH_RETRY_S ? REFRESH_RETRY_S : ttl;
    json_int_t req = request_id ? (json_int_t)request_id : refresh_prev_request(&c);
    json_object_set_new(status, "last_request_id", req ? json_integer(req) : json_null());
    if (remote) {
        time_t at = time(NULL) + next;
        struct tm tm;
        char when[40];
        gmtime_r(&at, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
        json_object_set_new(status, "next_refresh_at", json_string(when));
    }
    refresh_write_status(&c, status);
    json_decref(status);
    json_decref(c.prev);
    config_free(&c.cfg);
    return next;
}

/* ---- the thread ------------------------------------------------------------------- */

struct refresh_thread {
    pthread_t tid;
    char root[MG_PATH_MAX];
    atomic_int stop;
    int wake_fd;    /* eventfd: refresh_stop */
    int notify_fd;  /* inotify on cache/ and config/, or -1 */
    char watched[4096]; /* the stat fingerprint of server.json and the path sources */
};

/* Takes cache/refresh.request if present: its request id (1 when unreadable), else 0. */
static long long refresh_take_request(const char *root) {
    char req[MG_PATH_MAX], taken[MG_PATH_MAX + 8];
    fs_join(req, sizeof req, root, SOURCES_REQUEST_REL);
    snprintf(taken, sizeof taken, "%s.taken", req);
    if (fs_rename(req, taken, NULL) != 0) return 0;
    json_t *doc = json_load_file(taken, 0, NULL);
    long long id = json_integer_value(json_object_get(doc, "request_id"));
    json_decref(doc);
    fs_unlink(taken, NULL);
    return id > 0 ? id : 1;
}

static void refresh_fingerprint_add(char *out, size_t n, const char *path) {
    struct stat st;
    size_t used = strlen(out);
    if (stat(path, &st) != 0) memset(&st, 0, sizeof st);
    snprintf(out + used, n - used, "%llx:%llx:%llx;", (unsigned long long)st.st_ino,
             (unsigned long long)st.st_size, (unsigned long long)refresh_ns(st.st_mtim));
}

/* The fingerprint of what a change of should start a cycle: server.json and, in remote
 * mode, every path source. */
static void refresh_fingerprint(const char *root, char *out, size_t n) {
    mg_config cfg;
    char path[MG_PATH_MAX];
    out[0] = '\0';
    fs_join(path, sizeof path, root, "config/server.json");
    refresh_fingerprint_add(out, n, path);
    if (config_load(&cfg, root, NULL) != 0) return;
    if (sources_remote_mode(&cfg)) {
        sources_list list;
        sources_load(&cfg, &list, NULL);
        for (size_t i = 0; i < list.count; i++)
            if (list.items[i].path) refresh_fingerprint_add(out, n, list.items[i].path);
        sources_free(&list);
    }
    config_free(&cfg);
}

/* Waits until the next tick, a wake-up or a file event in cache/ or config/. */
static void refresh_wait(refresh_thread *t, long timeout_ms) {
    struct pollfd fds[2] = {{.fd = t->wake_fd, .events = POLLIN},
                            {.fd = t->notify_fd, .events = POLLIN}};
    if (poll(fds, t->notify_fd >= 0 ? 2 : 1, (int)timeout_ms) <= 0) return;
    char buf[4096];
    if (fds[1].revents & POLLIN)
        while (read(t->notify_fd, buf, sizeof buf) > 0) {}
}

static long long refresh_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *refresh_main(void *arg) {
    refresh_thread *t = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the main thread's */
    long long due = 0;
    while (!atomic_load(&t->stop)) {
        char fp[sizeof t->watched];
        long long req = refresh_take_request(t->root);
        refresh_fingerprint(t->root, fp, sizeof fp);
        int changed = strcmp(fp, t->watched) != 0;
        if (req || changed || refresh_mono_ms() >= due) {
            mg_error err;
            mg_error_clear(&err);
            snprintf(t->watched, sizeof t->watched, "%s", fp);
            long next = refresh_run_once(t->root, req, &t->stop, &err);
            if (next < 0) {
                log_error("gallery refresh: %s", err.message);
                next = REFRESH_RETRY_S;
            }
            due = refresh_mono_ms() + next * 1000;
            continue;
        }
        long long left = due - refresh_mono_ms();
        refresh_wait(t, left < REFRESH_TICK_MS ? (left > 0 ? left : 0) : REFRESH_TICK_MS);
    }
    return NULL;
}

/* inotify on cache/ (the request file) and config/ (server.json, local path sources), both
 * created when missing. */
static int refresh_watch(const char *root) {
    static const char *dirs[] = {"cache", "config"};
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return -1;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char dir[MG_PATH_MAX];
        fs_join(dir, sizeof dir, root, dirs[i]);
        fs_mkdirs(dir, 0755, NULL);
        if (inotify_add_watch(fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE) < 0)
            log_warn("cannot watch %s: %s (checking every second)", dir, strerror(errno));
    }
    return fd;
}

refresh_thread *refresh_start(const char *root, mg_error *err) {
    refresh_thread *t = calloc(1, sizeof *t);
    if (!t) {
        mg_error_set(err, 500, "out_of_memory", NULL, "out of memory");
        return NULL;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(t->root, sizeof t->root, "%s", root);
    t->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    t->notify_fd = refresh_watch(root);
    if (t->wake_fd < 0 || pthread_create(&t->tid, NULL, refresh_main, t) != 0) {
        mg_error_set(err, 500, "internal_error", NULL, "cannot start the gallery refresher");
        if (t->wake_fd >= 0) close(t->wake_fd);
        if (t->notify_fd >= 0) close(t->notify_fd);
        free(t);
        return NULL;
    }
    log_info("gallery refresher started");
    return t;
}

void refresh_stop(refresh_thread *t) {
    if (!t) return;
    atomic_store(&t->stop, 1);
    uint64_t one = 1;
    ssize_t w = write(t->wake_fd, &one, sizeof one);
    (void)w;
    pthread_join(t->tid, NULL);
    close(t->wake_fd);
    if (t->notify_fd >= 0) close(t->notify_fd);
    curl_global_cleanup();
    free(t);
}
