/* hashpipe.c - a hashing thread that follows a growing file (see hashpipe.h). */
#include "hashpipe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HASHPIPE_CHUNK (1 << 20)              /* bytes read and hashed at a time */
#define HASHPIPE_WRITEBACK ((int64_t)32 << 20) /* start writeback every 32 MiB */

/* Waits for bytes to hash. Returns the count ready (> 0), or 0 when the thread must end. */
static size_t hashpipe_wait(hashpipe *hp, int64_t *off) {
    pthread_mutex_lock(&hp->mu);
    while (!hp->abort && !hp->closing && hp->hashed == hp->avail) {
        hp->waiting = 1;
        pthread_cond_wait(&hp->cv, &hp->mu);
        hp->waiting = 0;
    }
    int64_t n = hp->abort ? 0 : hp->avail - hp->hashed;
    *off = hp->hashed;
    pthread_mutex_unlock(&hp->mu);
    return n > HASHPIPE_CHUNK ? HASHPIPE_CHUNK : (size_t)(n > 0 ? n : 0);
}

static void hashpipe_set_error(hashpipe *hp, int e) {
    pthread_mutex_lock(&hp->mu);
    hp->err = e ? e : EIO;
    pthread_mutex_unlock(&hp->mu);
}

static void *hashpipe_main(void *arg) {
    hashpipe *hp = arg;
    int64_t flushed = 0, off;
    size_t n;
    while ((n = hashpipe_wait(hp, &off)) > 0) {
        ssize_t r = pread(hp->fd, hp->buf, n, off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            hashpipe_set_error(hp, r < 0 ? errno : EIO);
            break;
        }
        EVP_DigestUpdate(hp->md, hp->buf, (size_t)r);
        pthread_mutex_lock(&hp->mu);
        hp->hashed = off + r;
        pthread_mutex_unlock(&hp->mu);
        if (off + r - flushed >= HASHPIPE_WRITEBACK) {
            sync_file_range(hp->fd, flushed, off + r - flushed, SYNC_FILE_RANGE_WRITE);
            flushed = off + r;
        }
    }
    return NULL;
}

int hashpipe_start(hashpipe *hp, int fd, int64_t avail) {
    memset(hp, 0, sizeof *hp);
    hp->fd = fd;
    hp->avail = avail;
    hp->buf = malloc(HASHPIPE_CHUNK);
    hp->md = EVP_MD_CTX_new();
    if (!hp->buf || !hp->md || EVP_DigestInit_ex(hp->md, EVP_sha256(), NULL) != 1) goto fail;
    pthread_mutex_init(&hp->mu, NULL);
    pthread_cond_init(&hp->cv, NULL);
    if (pthread_create(&hp->thread, NULL, hashpipe_main, hp) != 0) {
        pthread_mutex_destroy(&hp->mu);
        pthread_cond_destroy(&hp->cv);
        goto fail;
    }
    hp->running = 1;
    return 0;
fail:
    free(hp->buf);
    EVP_MD_CTX_free(hp->md);
    memset(hp, 0, sizeof *hp);
    errno = ENOMEM;
    return -1;
}

void hashpipe_feed(hashpipe *hp, int64_t avail) {
    pthread_mutex_lock(&hp->mu);
    hp->avail = avail;
    if (hp->waiting) pthread_cond_signal(&hp->cv);
    pthread_mutex_unlock(&hp->mu);
}

/* Ends the thread (after the last byte when !abort) and frees everything. Returns the
 * thread's errno, or 0. */
static int hashpipe_stop(hashpipe *hp, int abort, unsigned char *digest) {
    if (!hp->running) return EINVAL;
    pthread_mutex_lock(&hp->mu);
    hp->closing = 1;
    hp->abort = abort;
    pthread_cond_signal(&hp->cv);
    pthread_mutex_unlock(&hp->mu);
    pthread_join(hp->thread, NULL);
    int e = hp->err;
    if (!e && !abort && hp->hashed != hp->avail) e = EIO;
    if (!e && digest) EVP_DigestFinal_ex(hp->md, digest, NULL);
    pthread_mutex_destroy(&hp->mu);
    pthread_cond_destroy(&hp->cv);
    free(hp->buf);
    EVP_MD_CTX_free(hp->md);
    memset(hp, 0, sizeof *hp);
    return e;
}

int hashpipe_finish(hashpipe *hp, char hex[65]) {
    unsigned char d[32];
    int e = hashpipe_stop(hp, 0, d);
    if (e) {
        errno = e;
        return -1;
    }
    for (int i = 0; i < 32; i++) {
        static const char digits[] = "0123456789abcdef";
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[64] = '\0';
    return 0;
}

void hashpipe_cancel(hashpipe *hp) {
    if (hp->running) hashpipe_stop(hp, 1, NULL);
}
