/* gzpipe.c - gzip compression on its own thread (gzpipe.h).
 *
 * Two buffers: the caller fills one while the thread compresses the other; a full buffer is
 * handed over when the thread is idle (the caller waits otherwise), so memory stays at two
 * buffers whatever the input size. */
#include "gzpipe.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define GZPIPE_BUF (1u << 20)

struct gzpipe {
    int fd;
    z_stream z;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *fill, *work;      /* the caller's buffer, the thread's buffer */
    size_t fill_len, work_len;
    int work_ready;         /* the thread has `work` to compress */
    int finishing;          /* no more input: the thread ends the stream and stops */
    int failed;             /* errno of a failed write, or -1 for a zlib error; 0 */
    char out[GZPIPE_BUF];   /* compressed bytes on their way to fd */
};

static int gzpipe_put(gzpipe *g, const char *data, size_t len) {
    while (len > 0) {
        ssize_t w = write(g->fd, data, len);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return errno;
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Compresses `len` bytes of `data` (flush: Z_NO_FLUSH or Z_FINISH) and writes the output. */
static int gzpipe_deflate(gzpipe *g, const char *data, size_t len, int flush) {
    g->z.next_in = (Bytef *)data;
    g->z.avail_in = (uInt)len;
    int zrc;
    do {
        g->z.next_out = (Bytef *)g->out;
        g->z.avail_out = sizeof g->out;
        zrc = deflate(&g->z, flush);
        if (zrc == Z_STREAM_ERROR) return -1;
        int e = gzpipe_put(g, g->out, sizeof g->out - g->z.avail_out);
        if (e) return e;
    } while (g->z.avail_out == 0 || (flush == Z_FINISH && zrc != Z_STREAM_END));
    return 0;
}

static void *gzpipe_main(void *arg) {
    gzpipe *g = arg;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        while (!g->work_ready && !g->finishing) pthread_cond_wait(&g->cv, &g->mu);
        if (!g->work_ready) break; /* finishing, nothing left */
        pthread_mutex_unlock(&g->mu);
        int e = g->failed ? 0 : gzpipe_deflate(g, g->work, g->work_len, Z_NO_FLUSH);
        pthread_mutex_lock(&g->mu);
        if (e && !g->failed) g->failed = e;
        g->work_ready = 0;
        pthread_cond_broadcast(&g->cv);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

gzpipe *gzpipe_start(int fd, int level, mg_error *err) {
    gzpipe *g = calloc(1, sizeof *g);
    if (g) {
        g->fill = malloc(GZPIPE_BUF);
        g->work = malloc(GZPIPE_BUF);
    }
    if (!g || !g->fill || !g->work ||
        deflateInit2(&g->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        if (g) free(g->fill), free(g->work);
        free(g);
        mg_error_set(err, 500, "out_of_memory", NULL, "out of memory starting gzip");
        return NULL;
    }
    g->fd = fd;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    if (pthread_create(&g->thread, NULL, gzpipe_main, g) != 0) {
        deflateEnd(&g->z);
        free(g->fill), free(g->work), free(g);
        mg_error_set(err, 500, "internal_error", NULL, "cannot start the gzip thread");
        return NULL;
    }
    return g;
}

/* Hands the full buffer to the thread once it is idle. */
static void gzpipe_hand_over(gzpipe *g) {
    pthread_mutex_lock(&g->mu);
    while (g->work_ready) pthread_cond_wait(&g->cv, &g->mu);
    char *t = g->work;
    g->work = g->fill;
    g->work_len = g->fill_len;
    g->fill = t;
    g->fill_len = 0;
    g->work_ready = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

int gzpipe_write(gzpipe *g, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        if (g->fill_len == GZPIPE_BUF) gzpipe_hand_over(g);
        size_t n = GZPIPE_BUF - g->fill_len < len ? GZPIPE_BUF - g->fill_len : len;
        memcpy(g->fill + g->fill_len, p, n);
        g->fill_len += n;
        p += n;
        len -= n;
    }
    return g->failed ? -1 : 0;
}

/* Stops the thread after the work handed over; 0 or the failure. */
static int gzpipe_stop(gzpipe *g) {
    pthread_mutex_lock(&g->mu);
    g->finishing = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    int failed = g->failed;
    deflateEnd(&g->z);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    return failed;
}

int gzpipe_finish(gzpipe *g, mg_error *err) {
    pthread_mutex_lock(&g->mu);
    while (g->work_ready) pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    int e = g->failed ? g->failed : gzpipe_deflate(g, g->fill, g->fill_len, Z_FINISH);
    if (e && !g->failed) g->failed = e;
    int failed = gzpipe_stop(g);
    free(g->fill), free(g->work), free(g);
    if (!failed) return 0;
    return mg_error_set(err, failed == ENOSPC ? 507 : 500, "io_error", NULL,
                        "cannot write the compressed gallery: %s",
                        failed > 0 ? strerror(failed) : "zlib error");
}

void gzpipe_abort(gzpipe *g) {
    if (!g) return;
    gzpipe_stop(g);
    free(g->fill), free(g->work), free(g);
}
