/* rebuild.c - the streaming rebuild of the cache from a gallery file (rebuild.h).
 *
 * Two threads share the work: the reader parses each model with jansson and makes its cache
 * line (its own compact text, the source tag added), and hands batches of them over a small
 * ring; the writer (the caller's thread) checks each (valid, id not taken) and appends the
 * kept ones to the cache, its gzip copy and the index. The ring holds a few batches, so
 * memory stays flat whatever the size of the gallery, and parsing overlaps writing and
 * indexing on a second core. */
#include "rebuild.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gallery.h"
#include "gallery_stream.h"

#define REBUILD_BATCH 16      /* models per batch: small, so that the jansson nodes freed
                                 * come back from malloc's per-thread cache */
#define REBUILD_RING 4        /* batches in flight */

typedef struct rebuild_batch {
    json_t *models[REBUILD_BATCH];
    size_t index[REBUILD_BATCH];                   /* each model's place in the gallery */
    size_t off[REBUILD_BATCH], len[REBUILD_BATCH]; /* each model's line in `text` */
    size_t n;
    char *text;
    size_t text_len, text_cap;
} rebuild_batch;

typedef struct rebuild {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rebuild_batch ring[REBUILD_RING];
    size_t head, count;       /* full batches: ring[head], ring[head + 1], ... */
    int read_done;            /* the reader stopped (read_rc says why) */
    int read_rc;              /* 0: end of the models; -1: src_err / oom */
    int stop;                 /* the writer failed: the reader stops */
    gallery_stream *gs;
    gallery_checker *checker;
    json_t *invalid;
    const char *name;
    mg_error src_err;
} rebuild;

static int rebuild_text_room(rebuild_batch *b, size_t more) {
    if (b->text_len + more <= b->text_cap) return 0;
    size_t cap = b->text_cap ? b->text_cap : 256 * 1024;
    while (cap < b->text_len + more) cap *= 2;
    char *t = realloc(b->text, cap);
    if (!t) return -1;
    b->text = t;
    b->text_cap = cap;
    return 0;
}

/* Appends model `m` with its cache line: the compact text with "gallery": name added (the
 * model re-serialised when it carries a "gallery" of its own). Takes over `m`. */
static int rebuild_batch_add(rebuild_batch *b, json_t *m, const char *text, size_t len,
                             const char *name) {
    size_t at = b->text_len, n = len + strlen(name) + 16;
    int ok = rebuild_text_room(b, n) == 0;
    if (ok && !json_object_get(m, "gallery") && len >= 2 && text[len - 1] == '}') {
        memcpy(b->text + at, text, len - 1);
        n = len - 1 + (size_t)sprintf(b->text + at + len - 1, ",\"gallery\":\"%s\"}", name);
    } else if (ok) {
        json_object_set_new(m, "gallery", json_string(name));
        char *dump = json_dumps(m, cachefile_json_flags(m));
        ok = dump && rebuild_text_room(b, (n = strlen(dump))) == 0;
        if (ok) memcpy(b->text + at, dump, n);
        free(dump);
    }
    if (!ok) {
        json_decref(m);
        return -1;
    }
    b->off[b->n] = at;
    b->len[b->n] = n;
    b->models[b->n++] = m;
    b->text_len += n;
    return 0;
}

/* Fills `b` with the next models. 1 when the batch is full, 0 at the end of the models, -1 on
 * an error (r->src_err). */
static int rebuild_fill(rebuild *r, rebuild_batch *b) {
    /* the models the writer is done with are freed here, in the thread that made them:
     * glibc frees much faster to the arena of the freeing thread */
    for (size_t i = 0; i < b->n; i++) json_decref(b->models[i]);
    b->n = b->text_len = 0;
    while (b->n < REBUILD_BATCH) {
        json_t *m;
        const char *text;
        size_t len;
        int rc = gallery_stream_next(r->gs, &m, &b->index[b->n], &text, &len, &r->src_err);
        if (rc <= 0) return rc;
        if (rebuild_batch_add(b, m, text, len, r->name) != 0) {
            mg_error_set(&r->src_err, 500, "out_of_memory", NULL,
                         "out of memory reading the gallery");
            return -1;
        }
    }
    return 1;
}

static void *rebuild_read(void *arg) {
    rebuild *r = arg;
    int rc = 1;
    while (rc == 1) {
        pthread_mutex_lock(&r->mu);
        while (r->count == REBUILD_RING && !r->stop) pthread_cond_wait(&r->cv, &r->mu);
        int stop = r->stop;
        rebuild_batch *b = &r->ring[(r->head + r->count) % REBUILD_RING];
        pthread_mutex_unlock(&r->mu);
        if (stop) break;
        rc = rebuild_fill(r, b);
        pthread_mutex_lock(&r->mu);
        if (b->n) r->count++;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }
    pthread_mutex_lock(&r->mu);
    r->read_done = 1;
    r->read_rc = rc < 0 ? -1 : 0;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* The writer's side: every batch into the cache. 0, or -1 and err. */
static int rebuild_write(rebuild *r, cachefile *c, mg_error *err) {
    int rc = 0;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        while (r->count == 0 && !r->read_done) pthread_cond_wait(&r->cv, &r->mu);
        rebuild_batch *b = r->count ? &r->ring[r->head] : NULL;
        pthread_mutex_unlock(&r->mu);
        if (!b) break;
        for (size_t i = 0; rc == 0 && i < b->n; i++) {
            int keep = gallery_checker_check(r->checker, b->models[i], b->index[i], r->invalid);
            if (keep == 1)
                rc = cachefile_add_text(c, b->models[i], b->text + b->off[i], b->len[i], err);
            else if (keep < 0)
                rc = mg_error_set(err, 500, "out_of_memory", NULL,
                                  "out of memory checking the gallery");
        }
        pthread_mutex_lock(&r->mu);
        r->head = (r->head + 1) % REBUILD_RING;
        r->count--;
        if (rc != 0) r->stop = 1;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }
    return rc;
}

static void rebuild_free(rebuild *r) {
    for (int i = 0; i < REBUILD_RING; i++) {
        for (size_t j = 0; j < r->ring[i].n; j++) json_decref(r->ring[i].models[j]);
        free(r->ring[i].text);
    }
    gallery_checker_free(r->checker);
    gallery_stream_close(r->gs);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
}

/* Runs the reader thread against the writer `c`. 0, or -1 (src_err or err set). */
static int rebuild_run(rebuild *r, cachefile *c, mg_error *err) {
    pthread_t reader;
    if (pthread_create(&reader, NULL, rebuild_read, r) != 0)
        return mg_error_set(err, 500, "internal_error", NULL, "cannot start the gallery reader");
    int rc = rebuild_write(r, c, err);
    pthread_join(reader, NULL);
    if (rc == 0 && r->read_rc != 0) {
        *err = r->src_err;
        rc = -1;
    }
    return rc;
}

/* 1 when `e` is the source's fault rather than this process's (memory). */
static int rebuild_source_fault(const mg_error *e) {
    return strcmp(e->code, "out_of_memory") != 0;
}

int rebuild_from_file(const char *source, const char *cache_path, const char *name,
                      struct stat *source_st, cachefile_stats *out, json_t **invalid,
                      mg_error *src_err, mg_error *err) {
    rebuild r;
    memset(&r, 0, sizeof r);
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    r.name = name;
    *invalid = NULL;
    r.gs = gallery_stream_open(source, source_st, &r.src_err);
    if (!r.gs) {
        *err = r.src_err;
        if (rebuild_source_fault(&r.src_err)) *src_err = r.src_err;
        rebuild_free(&r);
        return -1;
    }
    r.checker = gallery_checker_new();
    r.invalid = json_array();
    cachefile *c = r.checker ? cachefile_begin(cache_path, gallery_stream_version(r.gs),
                                               gallery_stream_generated(r.gs), err)
                             : NULL;
    int rc = c ? rebuild_run(&r, c, err) : -1;
    if (rc != 0 && r.read_rc != 0 && rebuild_source_fault(&r.src_err)) *src_err = r.src_err;
    if (rc != 0) cachefile_abort(c);
    else rc = cachefile_commit(c, out, err);
    rebuild_free(&r);
    if (rc == 0) *invalid = r.invalid;
    else json_decref(r.invalid);
    return rc;
}
