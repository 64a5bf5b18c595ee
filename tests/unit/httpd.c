/* httpd.c - the test process's own HTTP file server (see httpd.h). */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct httpd {
    int fd;
    int port;
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t mu;
    const char *body;  /* under mu */
    size_t len;
    const char *etag;
    httpd_step script[HTTPD_SCRIPT_MAX];
    int scripted, used;
    httpd_request log[HTTPD_LOG_MAX];
    int logged;
    int64_t bytes;
    int live;          /* connection threads running (under mu) */
    pthread_cond_t idle;
};

typedef struct httpd_conn {
    httpd *h;
    int fd;
} httpd_conn;

static int64_t httpd_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends all of `data`; -1 when the client went away. */
static int httpd_send(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t w = send(fd, data, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Reads the request head (up to the blank line) into buf. 0, or -1. */
static int httpd_read_head(int fd, char *buf, size_t n) {
    size_t got = 0;
    while (got + 1 < n) {
        ssize_t r = recv(fd, buf + got, n - 1 - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
        buf[got] = '\0';
        if (strstr(buf, "\r\n\r\n")) return 0;
    }
    return -1;
}

/* Copies the value of header `name` of the request head `head` into out ("" when absent). */
static void httpd_header(const char *head, const char *name, char *out, size_t n) {
    size_t len = strlen(name);
    out[0] = '\0';
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        const char *p = line + 2;
        if (strncasecmp(p, name, len) != 0 || p[len] != ':') continue;
        p += len + 1;
        while (*p == ' ') p++;
        size_t k = strcspn(p, "\r\n");
        if (k >= n) k = n - 1;
        memcpy(out, p, k);
        out[k] = '\0';
        return;
    }
}

/* Takes the next script step (zeroed when none is left) and the body it serves. */
static void httpd_next(httpd *h, httpd_step *st, const char **body, size_t *len,
                       const char **etag) {
    pthread_mutex_lock(&h->mu);
    memset(st, 0, sizeof *st);
    if (h->used < h->scripted) *st = h->script[h->used++];
    *body = st->body ? st->body : h->body;
    *len = st->body ? st->body_len : h->len;
    *etag = st->body ? (st->etag ? st->etag : "\"other\"") : h->etag;
    pthread_mutex_unlock(&h->mu);
}

/* Logs a request as it arrives; returns its slot (-1 when the log is full). */
static int httpd_record(httpd *h, const httpd_request *r) {
    pthread_mutex_lock(&h->mu);
    int slot = h->logged < HTTPD_LOG_MAX ? h->logged++ : -1;
    if (slot >= 0) h->log[slot] = *r;
    pthread_mutex_unlock(&h->mu);
    return slot;
}

static void httpd_set_status(httpd *h, int slot, int status) {
    pthread_mutex_lock(&h->mu);
    if (slot >= 0) h->log[slot].status = status;
    pthread_mutex_unlock(&h->mu);
}

static void httpd_count(httpd *h, int slot, int64_t n) {
    pthread_mutex_lock(&h->mu);
    if (slot >= 0) h->log[slot].bytes += n;
    h->bytes += n;
    pthread_mutex_unlock(&h->mu);
}

/* Sends `len` bytes of the body as the step says, counting them in log slot `slot`. */
static void httpd_body(httpd *h, int slot, int fd, const httpd_step *st, const char *data,
                       int64_t len) {
    int64_t sent = 0, limit = st->drop_after > 0 && st->drop_after < len ? st->drop_after : len;
    while (sent < limit && !atomic_load(&h->stop)) {
        int64_t n = limit - sent;
        if (st->trickle_ms > 0 && n > st->trickle_bytes) n = st->trickle_bytes;
        if (n > 65536) n = 65536;
        if (httpd_send(fd, data + sent, (size_t)n) < 0) break;
        sent += n;
        httpd_count(h, slot, n);
        for (int t = 0; st->trickle_ms > 0 && sent < limit && t < st->trickle_ms; t += 10) {
            if (atomic_load(&h->stop)) break;
            usleep(10000);
        }
    }
}

/* Answers one request on `fd`. */
static void httpd_answer(httpd *h, int fd) {
    char head[8192], line[1024];
    httpd_request rec = {0};
    rec.at_ms = httpd_now_ms();
    if (httpd_read_head(fd, head, sizeof head) < 0) return;
    httpd_header(head, "Range", rec.range, sizeof rec.range);
    httpd_header(head, "If-Range", rec.if_range, sizeof rec.if_range);
    httpd_step st;
    const char *body, *etag;
    size_t size;
    httpd_next(h, &st, &body, &size, &etag);
    int slot = httpd_record(h, &rec);
    if (st.location) {
        httpd_set_status(h, slot, 302);
        int n = snprintf(line, sizeof line,
                         "HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n"
                         "Connection: close\r\n\r\n",
                         st.location);
        httpd_send(fd, line, (size_t)n);
        return;
    }
    if (st.status) {
        static const char err[] = "{\"error\":\"scripted\"}";
        httpd_set_status(h, slot, st.status);
        int n = snprintf(line, sizeof line,
                         "HTTP/1.1 %d Scripted\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                         st.status, sizeof err - 1, err);
        httpd_send(fd, line, (size_t)n);
        return;
    }
    long long start = 0;
    int ranged = rec.range[0] && !st.ignore_range &&
                 sscanf(rec.range, "bytes=%lld-", &start) == 1 &&
                 (!rec.if_range[0] || strcmp(rec.if_range, etag) == 0);
    if (ranged && start >= (long long)size) {
        httpd_set_status(h, slot, 416);
        int n = snprintf(line, sizeof line,
                         "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */%zu\r\n"
                         "Content-Length: 0\r\nConnection: close\r\n\r\n",
                         size);
        httpd_send(fd, line, (size_t)n);
        return;
    }
    if (!ranged) start = 0;
    start += ranged ? st.range_shift : 0;
    if (start < 0) start = 0;
    if (start > (long long)size) start = (long long)size;
    int64_t len = (int64_t)size - start;
    httpd_set_status(h, slot, ranged ? 206 : 200);
    const char *sent_etag = st.etag_header ? st.etag_header : etag;
    int n = snprintf(line, sizeof line, "HTTP/1.1 %s\r\nContent-Type: application/octet-stream\r\n"
                     "Accept-Ranges: bytes\r\nConnection: close\r\n",
                     ranged ? "206 Partial Content" : "200 OK");
    if (sent_etag[0]) n += snprintf(line + n, sizeof line - (size_t)n, "ETag: %s\r\n", sent_etag);
    if (st.last_modified)
        n += snprintf(line + n, sizeof line - (size_t)n, "Last-Modified: %s\r\n",
                      st.last_modified);
    if (ranged)
        n += snprintf(line + n, sizeof line - (size_t)n, "Content-Range: bytes %lld-%lld/%zu\r\n",
                      start, (long long)size - 1, size);
    if (!st.no_length)
        n += snprintf(line + n, sizeof line - (size_t)n, "Content-Length: %" PRId64 "\r\n",
                      st.announce > 0 ? st.announce : len);
    n += snprintf(line + n, sizeof line - (size_t)n, "\r\n");
    if (httpd_send(fd, line, (size_t)n) == 0) httpd_body(h, slot, fd, &st, body + start, len);
}

/* One connection: one request, then the connection closes. */
static void *httpd_conn_main(void *arg) {
    httpd_conn *c = arg;
    httpd *h = c->h;
    httpd_answer(h, c->fd);
    shutdown(c->fd, SHUT_WR);
    close(c->fd);
    free(c);
    pthread_mutex_lock(&h->mu);
    if (--h->live == 0) pthread_cond_broadcast(&h->idle);
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static void *httpd_main(void *arg) {
    httpd *h = arg;
    while (!atomic_load(&h->stop)) {
        struct pollfd p = {.fd = h->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) continue;
        httpd_conn *c = malloc(sizeof *c);
        int fd = accept4(h->fd, NULL, NULL, SOCK_CLOEXEC);
        pthread_t t;
        if (!c || fd < 0) {
            free(c);
            if (fd >= 0) close(fd);
            continue;
        }
        *c = (httpd_conn){h, fd};
        pthread_mutex_lock(&h->mu);
        h->live++;
        pthread_mutex_unlock(&h->mu);
        if (pthread_create(&t, NULL, httpd_conn_main, c) == 0) {
            pthread_detach(t);
            continue;
        }
        close(fd);
        free(c);
        pthread_mutex_lock(&h->mu);
        h->live--;
        pthread_mutex_unlock(&h->mu);
    }
    return NULL;
}

httpd *httpd_start(const char *body, size_t len, const char *etag) {
    httpd *h = calloc(1, sizeof *h);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (!h) return NULL;
    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->fd < 0 || bind(h->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(h->fd, 16) != 0 ||
        getsockname(h->fd, (struct sockaddr *)&a, &alen) != 0) {
        if (h->fd >= 0) close(h->fd);
        free(h);
        return NULL;
    }
    h->port = ntohs(a.sin_port);
    h->body = body;
    h->len = len;
    h->etag = etag;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->idle, NULL);
    if (pthread_create(&h->thread, NULL, httpd_main, h) != 0) {
        close(h->fd);
        free(h);
        return NULL;
    }
    return h;
}

void httpd_stop(httpd *h) {
    if (!h) return;
    atomic_store(&h->stop, 1);
    pthread_join(h->thread, NULL);
    close(h->fd);
    pthread_mutex_lock(&h->mu);
    while (h->live > 0) pthread_cond_wait(&h->idle, &h->mu);
    pthread_mutex_unlock(&h->mu);
    pthread_cond_destroy(&h->idle);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

const char *httpd_url(httpd *h, const char *path) {
    static char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", h->port, path);
    return url;
}

void httpd_script(httpd *h, const httpd_step *step) {
    pthread_mutex_lock(&h->mu);
    if (h->scripted < HTTPD_SCRIPT_MAX) h->script[h->scripted++] = *step;
    pthread_mutex_unlock(&h->mu);
}

void httpd_set_body(httpd *h, const char *body, size_t len, const char *etag) {
    pthread_mutex_lock(&h->mu);
    h->body = body;
    h->len = len;
    h->etag = etag;
    pthread_mutex_unlock(&h->mu);
}

/* Waits (under mu, up to 5 s) until no connection is being answered, so that the log and the
 * byte counts are final once the client is done. */
static void httpd_wait_idle(httpd *h) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    while (h->live > 0 && pthread_cond_timedwait(&h->idle, &h->mu, &until) == 0) {
    }
}

int httpd_log(httpd *h, httpd_request *out) {
    pthread_mutex_lock(&h->mu);
    httpd_wait_idle(h);
    int n = h->logged;
    memcpy(out, h->log, sizeof h->log[0] * (size_t)n);
    pthread_mutex_unlock(&h->mu);
    return n;
}

int64_t httpd_bytes(httpd *h) {
    pthread_mutex_lock(&h->mu);
    httpd_wait_idle(h);
    int64_t b = h->bytes;
    pthread_mutex_unlock(&h->mu);
    return b;
}

void httpd_reset(httpd *h) {
    pthread_mutex_lock(&h->mu);
    h->scripted = h->used = h->logged = 0;
    h->bytes = 0;
    pthread_mutex_unlock(&h->mu);
}
