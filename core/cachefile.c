/* cachefile.c - writes the cache file, its gzip copy and its search index in one pass over
 * the models (cachefile.h). Each model is serialised once; the text goes to the cache file and
 * to the gzip thread, the parsed model to the index builder with the text's place in the
 * file. Memory holds one model plus the index being built, never the whole gallery. */
#include "cachefile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "gallery.h"
#include "gzpipe.h"
#include "sindex_build.h"

#define CACHEFILE_BUF (1u << 20)
/* 4x smaller than the cache; the fastest level, as it shares the cores with the rebuild */
#define CACHEFILE_GZIP_LEVEL 1

enum { CF_CACHE, CF_INDEX, CF_GZIP, CF_FILES };

struct cachefile {
    char path[CF_FILES][PATH_MAX];  /* the final names */
    char tmp[CF_FILES][PATH_MAX];   /* the temp files being written */
    int fd[CF_FILES];
    gzpipe *gz;
    sindex_builder *index;
    char *buf;                      /* cache bytes not written yet */
    size_t len;
    char *text;                     /* one model's JSON text */
    size_t text_cap;
    uint64_t off;                   /* bytes of the cache so far */
    size_t models;
    int err;                        /* errno of a failed cache write, or 0 */
};

static void cachefile_paths(cachefile *c, const char *cache_path) {
    snprintf(c->path[CF_CACHE], PATH_MAX, "%s", cache_path);
    gallery_index_path(cache_path, c->path[CF_INDEX], PATH_MAX);
    gallery_gzip_path(cache_path, c->path[CF_GZIP], PATH_MAX);
}

void cachefile_abort(cachefile *c) {
    if (!c) return;
    gzpipe_abort(c->gz);
    sindex_builder_free(c->index);
    for (int i = 0; i < CF_FILES; i++)
        if (c->fd[i] >= 0) fs_atomic_abort(c->fd[i], c->tmp[i]);
    free(c->buf);
    free(c->text);
    free(c);
}

/* A writer with temp files for the files from `first` on (the cache is CF_CACHE). */
static cachefile *cachefile_open(const char *cache_path, int first, mg_error *err) {
    cachefile *c = calloc(1, sizeof *c);
    if (!c) {
        mg_error_set(err, 500, "out_of_memory", NULL, "out of memory writing the cache");
        return NULL;
    }
    for (int i = 0; i < CF_FILES; i++) c->fd[i] = -1;
    cachefile_paths(c, cache_path);
    int ok = (c->buf = malloc(CACHEFILE_BUF)) != NULL;
    for (int i = first; ok && i < CF_FILES; i++)
        ok = (c->fd[i] = fs_atomic_open(c->path[i], c->tmp[i], err)) >= 0;
    if (ok && !(c->index = sindex_builder_new(c->fd[CF_INDEX], err))) ok = 0;
    if (ok && !(c->gz = gzpipe_start(c->fd[CF_GZIP], CACHEFILE_GZIP_LEVEL, err))) ok = 0;
    if (!ok && c->buf == NULL) mg_error_set(err, 500, "out_of_memory", NULL, "out of memory");
    if (!ok) {
        cachefile_abort(c);
        return NULL;
    }
    return c;
}

/* ---- the cache bytes -------------------------------------------------------------- */

static void cachefile_flush(cachefile *c) {
    if (c->len == 0) return;
    if (c->fd[CF_CACHE] >= 0) {
        size_t done = 0;
        while (done < c->len && !c->err) {
            ssize_t w = write(c->fd[CF_CACHE], c->buf + done, c->len - done);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) c->err = errno;
            else done += (size_t)w;
        }
    }
    gzpipe_write(c->gz, c->buf, c->len);
    c->len = 0;
}

static void cachefile_put(cachefile *c, const char *data, size_t len) {
    c->off += len;
    while (len > 0) {
        if (c->len == CACHEFILE_BUF) cachefile_flush(c);
        size_t n = CACHEFILE_BUF - c->len < len ? CACHEFILE_BUF - c->len : len;
        memcpy(c->buf + c->len, data, n);
        c->len += n;
        data += n;
        len -= n;
    }
}

/* 1 when `v` (borrowed) holds a real so large that 15 significant digits would round it past
 * DBL_MAX (1.79769313486232e+308 does not parse again). */
static int cachefile_has_huge_real(json_t *v) {
    json_t *item;
    const char *key;
    size_t i;
    if (json_is_real(v)) return fabs(json_real_value(v)) >= 1e308;
    if (json_is_array(v))
        json_array_foreach(v, i, item) if (cachefile_has_huge_real(item)) return 1;
    if (json_is_object(v))
        json_object_foreach(v, key, item) if (cachefile_has_huge_real(item)) return 1;
    return 0;
}

size_t cachefile_json_flags(json_t *v) {
    size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY;
    return flags | JSON_REAL_PRECISION(cachefile_has_huge_real(v) ? 17 : 15);
}

/* Serialises `v` into c->text; returns its length, or 0 on failure. */
static size_t cachefile_dump(cachefile *c, json_t *v) {
    size_t flags = cachefile_json_flags(v);
    size_t need = json_dumpb(v, c->text, c->text_cap, flags);
    if (need > c->text_cap) {
        char *t = realloc(c->text, need * 2);
        if (!t) return 0;
        c->text = t;
        c->text_cap = need * 2;
        need = json_dumpb(v, c->text, c->text_cap, flags);
    }
    return need;
}

static int cachefile_put_json(cachefile *c, json_t *v) {
    size_t n = cachefile_dump(c, v ? v : json_null());
    if (n) cachefile_put(c, c->text, n);
    return n ? 0 : -1;
}

static int cachefile_write_error(const cachefile *c, mg_error *err) {
    return mg_error_set(err, c->err == ENOSPC ? 507 : 500, "io_error", NULL,
                        "cannot write %s: %s", c->path[CF_CACHE], strerror(c->err));
}

/* ---- a new cache ------------------------------------------------------------------ */

cachefile *cachefile_begin(const char *cache_path, json_t *version, json_t *generated,
                           mg_error *err) {
    cachefile *c = cachefile_open(cache_path, CF_CACHE, err);
    if (!c) return NULL;
    cachefile_put(c, "{\"version\":", 11);
    int rc = cachefile_put_json(c, version);
    cachefile_put(c, ",\"generatedAt\":", 15);
    if (rc == 0) rc = cachefile_put_json(c, generated);
    cachefile_put(c, ",\"models\":[\n", 12);
    if (rc != 0) {
        cachefile_abort(c);
        mg_error_set(err, 500, "internal_error", NULL, "cannot serialise the gallery header");
        return NULL;
    }
    return c;
}

int cachefile_add_text(cachefile *c, json_t *model, const char *text, size_t len, mg_error *err) {
    if (c->models) cachefile_put(c, ",\n", 2);
    uint64_t at = c->off;
    cachefile_put(c, text, len);
    c->models++;
    if (c->err) return cachefile_write_error(c, err);
    return sindex_builder_add(c->index, model, at, len, err);
}

int cachefile_add(cachefile *c, json_t *model, mg_error *err) {
    size_t n = cachefile_dump(c, model);
    if (n == 0) return mg_error_set(err, 500, "internal_error", NULL, "cannot serialise a model");
    return cachefile_add_text(c, model, c->text, n, err);
}

/* Ends the index and the gzip copy of the cache whose fstat is `cache_st`, then renames
 * them into place. Frees the index and the pipe. */
static int cachefile_commit_derived(cachefile *c, const struct stat *cache_st,
                                    cachefile_stats *out, mg_error *err) {
    int rc = sindex_builder_finish(c->index, cache_st, err);
    sindex_builder_free(c->index);
    c->index = NULL;
    gzpipe *gz = c->gz;
    c->gz = NULL;
    if (gzpipe_finish(gz, rc == 0 ? err : NULL) != 0) rc = -1;
    for (int i = CF_INDEX; rc == 0 && i < CF_FILES; i++) {
        if (fstat(c->fd[i], i == CF_INDEX ? &out->index : &out->gzip) != 0)
            rc = mg_error_set(err, 500, "io_error", NULL, "cannot stat %s: %s", c->tmp[i],
                              strerror(errno));
        if (rc == 0) rc = fs_atomic_commit(c->fd[i], c->tmp[i], c->path[i], err);
        c->fd[i] = -1;
    }
    return rc;
}

int cachefile_commit(cachefile *c, cachefile_stats *out, mg_error *err) {
    cachefile_put(c, c->models ? "\n]}\n" : "]}\n", c->models ? 4 : 3);
    cachefile_flush(c);
    memset(out, 0, sizeof *out);
    out->models = c->models;
    int rc = c->err ? cachefile_write_error(c, err) : 0;
    if (rc == 0 && (fsync(c->fd[CF_CACHE]) != 0 || fstat(c->fd[CF_CACHE], &out->cache) != 0))
        rc = mg_error_set(err, errno == ENOSPC ? 507 : 500, "io_error", NULL,
                          "cannot write %s: %s", c->path[CF_CACHE], strerror(errno));
    if (rc == 0) rc = cachefile_commit_derived(c, &out->cache, out, err);
    if (rc == 0) {
        rc = fs_atomic_commit(c->fd[CF_CACHE], c->tmp[CF_CACHE], c->path[CF_CACHE], err);
        c->fd[CF_CACHE] = -1;
    }
    if (rc == 0) fs_sync_parent(c->path[CF_CACHE]);
    cachefile_abort(c);
    return rc;
}

/* ---- the derived files of an existing cache --------------------------------------- */

/* The first line must be {"version":...,"generatedAt":...,"models":[ */
static int cachefile_header_ok(const char *line, size_t len) {
    static const char tail[] = "\"models\":[";
    size_t t = sizeof tail - 1;
    if (len < t + 1 || line[0] != '{' || memcmp(line + len - t, tail, t) != 0) return 0;
    char *doc = malloc(len + 3);
    if (!doc) return 0;
    memcpy(doc, line, len);
    memcpy(doc + len, "]}", 3);
    json_t *j = json_loadb(doc, len + 2, 0, NULL);
    int ok = json_is_array(json_object_get(j, "models"));
    json_decref(j);
    free(doc);
    return ok;
}

/* One model line (its text without the ",\n" or "\n" after it) into the index. */
static int cachefile_derive_model(cachefile *c, const char *s, size_t len, uint64_t off) {
    if (len && s[len - 1] == ',') len--;
    json_t *model = json_loadb(s, len, JSON_ALLOW_NUL, NULL);
    int ok = json_is_object(model) && json_is_string(json_object_get(model, "id")) &&
             json_is_string(json_object_get(model, "name")) &&
             sindex_builder_add(c->index, model, off, len, NULL) == 0;
    json_decref(model);
    c->models += ok;
    return ok ? 0 : -1;
}

/* Reads the cache through `f`: every byte to the gzip copy, every model to the index.
 * 0 when it is whole (a header line, model lines, "]}" and nothing after). */
static int cachefile_derive_read(cachefile *c, FILE *f) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t got = getline(&line, &cap, f);
    int rc = got > 1 && line[got - 1] == '\n' && cachefile_header_ok(line, (size_t)got - 1) ? 0 : -1;
    uint64_t off = got > 0 ? (uint64_t)got : 0;
    if (rc == 0) gzpipe_write(c->gz, line, (size_t)got);
    while (rc == 0) {
        got = getline(&line, &cap, f);
        if (got <= 0 || line[got - 1] != '\n') {
            rc = -1;
            break;
        }
        gzpipe_write(c->gz, line, (size_t)got);
        if (got == 3 && memcmp(line, "]}\n", 3) == 0) {
            rc = getc(f) == EOF ? 1 : -1;
            break;
        }
        rc = cachefile_derive_model(c, line, (size_t)got - 1, off);
        off += (uint64_t)got;
    }
    free(line);
    return rc == 1 ? 0 : -1;
}

static int cachefile_same_file(const struct stat *a, const struct stat *b) {
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

int cachefile_derive(const char *cache_path, cachefile_stats *out, mg_error *err) {
    memset(out, 0, sizeof *out);
    int fd = open(cache_path, O_RDONLY | O_CLOEXEC);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        int e = errno;
        if (fd >= 0) close(fd);
        return mg_error_set(err, e == ENOENT ? 404 : 500, "io_error", NULL, "cannot open %s: %s",
                            cache_path, strerror(e));
    }
    cachefile *c = fstat(fd, &out->cache) == 0 ? cachefile_open(cache_path, CF_INDEX, err) : NULL;
    int rc = c ? cachefile_derive_read(c, f) : -1;
    struct stat after;
    if (c && rc != 0)
        mg_error_set(err, 500, "gallery_unavailable", NULL, "%s: not in gallery cache format",
                     cache_path);
    else if (c && (fstat(fd, &after) != 0 || !cachefile_same_file(&after, &out->cache)))
        rc = mg_error_set(err, 409, "cache_changed", NULL, "%s changed while it was indexed",
                          cache_path);
    fclose(f);
    if (c) out->models = c->models;
    if (c && rc == 0) rc = cachefile_commit_derived(c, &out->cache, out, err);
    if (c && rc == 0) fs_sync_parent(cache_path);
    cachefile_abort(c);
    return c ? rc : -1;
}
