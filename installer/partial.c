/* partial.c - the hidden partial file of a download and its meta (see partial.h). */
#include "partial.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"

int partial_ext_valid(const char *ext) {
    size_t n = ext ? strlen(ext) : 0;
    if (n < 2 || n > 15 || ext[0] != '.') return 0;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)ext[i])) return 0;
    return 1;
}

void partial_paths(partial *p, const mg_config *cfg, const char *id, const char *ext) {
    char rel[MG_PATH_MAX];
    memset(p, 0, sizeof *p);
    p->fd = -1;
    snprintf(rel, sizeof rel, "models/.partial/%s%s.part", id, ext);
    config_path(cfg, p->part, rel);
    snprintf(rel, sizeof rel, "models/.partial/%s%s.part.meta", id, ext);
    config_path(cfg, p->meta, rel);
    snprintf(p->rel, sizeof p->rel, "models/llm/%s%s", id, ext);
    config_path(cfg, p->final, p->rel);
}

/* Returns a new reference to the meta document, or NULL when there is none or it is not
 * an object. */
static json_t *partial_meta_load(const partial *p) {
    size_t len = 0;
    char *text = fs_read_all(p->meta, &len, NULL);
    json_t *meta = text ? json_loadb(text, len, 0, NULL) : NULL;
    free(text);
    if (meta && !json_is_object(meta)) {
        json_decref(meta);
        meta = NULL;
    }
    return meta;
}

/* Writes the meta {url, checksum, validator, source, verified} (`verified` borrowed, may be
 * NULL) durably. 0, or -1 with a message in why. */
static int partial_meta_write(const partial *p, json_t *verified, char *why, size_t n) {
    json_t *meta = json_pack("{s:s,s:s,s:s,s:s,s:O*,s:O*}", "url", p->url, "checksum",
                             p->checksum, "validator", p->validator, "source",
                             p->source[0] ? p->source : p->url, "verified", verified,
                             "segments", verified ? NULL : p->segments);
    char *text = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
    json_decref(meta);
    mg_error err;
    int rc = text ? fs_write_atomic(p->meta, text, strlen(text), &err) : -1;
    if (rc < 0) snprintf(why, n, "cannot write %s: %s", p->meta, text ? err.message : "no memory");
    free(text);
    return rc;
}

/* 1 when `meta` (borrowed) names this url and checksum. */
static int partial_meta_matches(json_t *meta, const char *url, const char *checksum) {
    const char *u = json_string_value(json_object_get(meta, "url"));
    const char *c = json_string_value(json_object_get(meta, "checksum"));
    return u && c && strcmp(u, url) == 0 && strcmp(c, checksum) == 0;
}

int partial_open(partial *p, const char *url, const char *checksum, char *why, size_t n) {
    char dir[MG_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", p->part);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    mg_error err;
    if (fs_mkdirs(dir, 0755, &err) < 0) {
        snprintf(why, n, "%s", err.message);
        return -1;
    }
    snprintf(p->url, sizeof p->url, "%s", url);
    snprintf(p->checksum, sizeof p->checksum, "%s", checksum);
    json_t *meta = partial_meta_load(p);
    int same = partial_meta_matches(meta, url, checksum) &&
               !json_is_object(json_object_get(meta, "verified"));
    const char *v = json_string_value(json_object_get(meta, "validator"));
    const char *src = json_string_value(json_object_get(meta, "source"));
    snprintf(p->validator, sizeof p->validator, "%s", same && v ? v : "");
    snprintf(p->source, sizeof p->source, "%s", same && src ? src : url);
    json_t *segs = json_object_get(meta, "segments");
    json_decref(p->segments);
    p->segments = same && json_is_object(segs) ? json_incref(segs) : NULL;
    json_decref(meta);
    if (!same) {
        fs_unlink(p->part, NULL);
        if (partial_meta_write(p, NULL, why, n) < 0) return -1;
    }
    p->fd = fs_open(p->part, O_RDWR | O_CREAT, 0644, &err);
    if (p->fd < 0 && errno == ELOOP) {
        /* a link planted where the partial goes: removed, never followed */
        log_warn("%s; removing the link and starting the download afresh", err.message);
        if (fs_unlink(p->part, &err) == 0)
            p->fd = fs_open(p->part, O_RDWR | O_CREAT, 0644, &err);
    }
    struct stat st;
    if (p->fd < 0 || fstat(p->fd, &st) < 0) {
        snprintf(why, n, "%s", p->fd < 0 ? err.message : strerror(errno));
        partial_close(p);
        return -1;
    }
    p->size = st.st_size;
    return 0;
}

int partial_set_validator(partial *p, const char *validator, const char *source, char *why,
                          size_t n) {
    if (strcmp(p->validator, validator) == 0 && strcmp(p->source, source) == 0) return 0;
    snprintf(p->validator, sizeof p->validator, "%s", validator);
    snprintf(p->source, sizeof p->source, "%s", source);
    return partial_meta_write(p, NULL, why, n);
}

int partial_set_segments(partial *p, json_t *segments, char *why, size_t n) {
    json_t *old = p->segments;
    p->segments = segments ? json_deep_copy(segments) : NULL;
    json_decref(old);
    return partial_meta_write(p, NULL, why, n);
}

int partial_truncate(partial *p, char *why, size_t n) {
    if (p->segments && partial_set_segments(p, NULL, why, n) < 0) return -1;
    if (ftruncate(p->fd, 0) < 0) {
        snprintf(why, n, "cannot truncate %s: %s", p->part, strerror(errno));
        return -1;
    }
    p->size = 0;
    return 0;
}

void partial_close(partial *p) {
    if (p->fd >= 0) close(p->fd);
    p->fd = -1;
    json_decref(p->segments);
    p->segments = NULL;
}

void partial_discard(partial *p) {
    partial_close(p);
    fs_unlink(p->part, NULL);
    fs_unlink(p->meta, NULL);
}

/* The identity of a file that rename keeps: {size, ino, mtime_ns}. New reference. */
static json_t *partial_identity(const struct stat *st) {
    return json_pack("{s:I,s:I,s:I}", "size", (json_int_t)st->st_size, "ino",
                     (json_int_t)st->st_ino, "mtime_ns",
                     (json_int_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec);
}

int partial_commit(partial *p, char *why, size_t n) {
    struct stat st;
    if (fsync(p->fd) < 0 || fstat(p->fd, &st) < 0) {
        snprintf(why, n, "cannot write %s: %s", p->part,
                 errno == ENOSPC ? "disk full" : strerror(errno));
        partial_discard(p);
        return -1;
    }
    json_t *id = partial_identity(&st);
    int rc = id ? partial_meta_write(p, id, why, n) : -1;
    json_decref(id);
    if (rc < 0) {
        partial_discard(p);
        return -1;
    }
    partial_close(p);
    mg_error err;
    if (fs_rename(p->part, p->final, &err) < 0) {
        snprintf(why, n, "cannot move the download into place: %s", err.message);
        partial_discard(p);
        return -1;
    }
    fs_sync_parent(p->final);
    return 0;
}

/* 1 when `path` is a regular file with the identity `id` (borrowed). */
static int partial_is(const char *path, json_t *id) {
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    json_t *now = partial_identity(&st);
    int same = json_equal(now, id);
    json_decref(now);
    return same;
}

int partial_recover(partial *p, const char *checksum, int64_t *size) {
    json_t *meta = partial_meta_load(p);
    json_t *id = json_object_get(meta, "verified");
    const char *c = json_string_value(json_object_get(meta, "checksum"));
    if (!json_is_object(id)) id = NULL;
    int ok = 0;
    if (id && c && strcmp(c, checksum) == 0) {
        if (!partial_is(p->final, id) && partial_is(p->part, id) &&
            fs_rename(p->part, p->final, NULL) == 0)
            fs_sync_parent(p->final); /* a crash between the meta and the rename */
        ok = partial_is(p->final, id);
    }
    if (ok) {
        *size = (int64_t)json_integer_value(json_object_get(id, "size"));
    } else if (id) {
        log_info("%s names a verified download that is gone or changed; ignoring it", p->meta);
        fs_unlink(p->meta, NULL);
    }
    json_decref(meta);
    return ok;
}

void partial_registered(partial *p) {
    if (fs_unlink(p->meta, NULL) == 0) fs_sync_parent(p->meta);
}
