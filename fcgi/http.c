/* http.c - reading a FastCGI request's parameters and writing answers: Status line,
 * headers, JSON bodies and the contract's JSON error shape. */
#include "http.h"

#include <errno.h>
#include <fastcgi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>

#include "log.h"
#include "redact.h"

/* Answers at least this large skip libfcgi's stream buffer (see http_write_records). */
#define HTTP_DIRECT_MIN (16 * 1024)
/* The content of one FastCGI record: at most 64 KiB - 1, kept 8-byte aligned. */
#define HTTP_RECORD_MAX (FCGI_MAX_LENGTH & ~7u)
#define HTTP_RECORDS 32

static const struct {
    int status;
    const char *reason;
} http_reasons[] = {
    {200, "OK"},
    {202, "Accepted"},
    {204, "No Content"},
    {304, "Not Modified"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {409, "Conflict"},
    {411, "Length Required"},
    {413, "Payload Too Large"},
    {414, "URI Too Long"},
    {421, "Misdirected Request"},
    {500, "Internal Server Error"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {507, "Insufficient Storage"},
};

const char *http_reason(int status) {
    for (size_t i = 0; i < sizeof http_reasons / sizeof http_reasons[0]; i++)
        if (http_reasons[i].status == status) return http_reasons[i].reason;
    return status < 500 ? "Client Error" : "Server Error";
}

static int http_method_bit(const char *m) {
    if (strcmp(m, "GET") == 0) return HTTP_GET;
    if (strcmp(m, "HEAD") == 0) return HTTP_HEAD;
    if (strcmp(m, "POST") == 0) return HTTP_POST;
    if (strcmp(m, "DELETE") == 0) return HTTP_DELETE;
    return 0;
}

/* The path part of a request target: "/a/b?x" -> "/a/b"; an absolute-form target
 * "http://host/a" -> "/a". Returns a new string the caller frees, or NULL. */
static char *http_target_path(const char *target) {
    const char *p = target;
    if (*p != '/') {
        const char *scheme = strstr(p, "://");
        if (scheme) p = scheme + 3 + strcspn(scheme + 3, "/?#");
        if (*p != '/') return strdup("/");
    }
    return strndup(p, strcspn(p, "?#"));
}

int http_req_init(http_req *req, FCGX_Request *fcgx) {
    memset(req, 0, sizeof *req);
    req->fcgx = fcgx;
    const char *m = http_param(req, "REQUEST_METHOD");
    req->method = m ? m : "";
    req->method_bit = http_method_bit(req->method);
    req->head = req->method_bit == HTTP_HEAD;
    const char *q = http_param(req, "QUERY_STRING");
    req->query = q ? q : "";
    const char *target = http_param(req, "REQUEST_URI");
    if (!target || !*target) target = http_param(req, "DOCUMENT_URI");
    if (!target || !*target) target = http_param(req, "SCRIPT_NAME");
    req->path = http_target_path(target ? target : "/");
    return req->path ? 0 : -1;
}

void http_req_free(http_req *req) {
    free(req->path);
    req->path = NULL;
}

const char *http_param(const http_req *req, const char *name) {
    return FCGX_GetParam(name, req->fcgx->envp);
}

void http_add_header(http_req *req, const char *fmt, ...) {
    size_t room = sizeof req->headers - req->headers_len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(req->headers + req->headers_len, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n + 2 >= room) {
        req->headers[req->headers_len] = '\0';
        return;
    }
    req->headers_len += (size_t)n;
    memcpy(req->headers + req->headers_len, "\r\n", 3);
    req->headers_len += 2;
}

/* Writes `len` bytes to the request's output in pieces FCGX_PutStr accepts. */
static int http_write(http_req *req, const char *data, size_t len) {
    while (len > 0) {
        int n = len > (1u << 30) ? (1 << 30) : (int)len;
        if (FCGX_PutStr(data, n, req->fcgx->out) != n) return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* writev until everything is written. 0, or -1. */
static int http_writev_all(int fd, struct iovec *iov, int n) {
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++, n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* Writes the pieces seg[0..nseg) as FastCGI stdout records of up to 64 KiB straight to the
 * connection, a few records per writev, instead of through libfcgi's stream buffer (8 KiB
 * records, a copy and a write each): what the stream holds is flushed first, and libfcgi
 * ends the stream as usual when the request finishes. 0, or -1 on a write error. */
static int http_write_records(http_req *req, struct iovec *seg, int nseg) {
    FCGX_Request *r = req->fcgx;
    if (FCGX_FFlush(r->out) != 0 || r->ipcFd < 0) return -1;
    FCGI_Header hdr[HTTP_RECORDS];
    struct iovec iov[HTTP_RECORDS * 4];
    while (nseg > 0) {
        int n = 0, h = 0;
        while (nseg > 0 && h < HTTP_RECORDS) {
            size_t room = HTTP_RECORD_MAX, content = 0;
            int first = n++;
            while (nseg > 0 && room > 0 && n < (int)(sizeof iov / sizeof iov[0])) {
                size_t take = seg->iov_len < room ? seg->iov_len : room;
                iov[n++] = (struct iovec){seg->iov_base, take};
                seg->iov_base = (char *)seg->iov_base + take;
                seg->iov_len -= take;
                room -= take;
                content += take;
                if (seg->iov_len == 0) seg++, nseg--;
            }
            hdr[h] = (FCGI_Header){FCGI_VERSION_1, FCGI_STDOUT, (unsigned char)(r->requestId >> 8),
                                   (unsigned char)r->requestId, (unsigned char)(content >> 8),
                                   (unsigned char)content, 0, 0};
            iov[first] = (struct iovec){&hdr[h++], sizeof(FCGI_Header)};
            if (n + 2 >= (int)(sizeof iov / sizeof iov[0])) break;
        }
        if (http_writev_all(r->ipcFd, iov, n) != 0) return -1;
    }
    return 0;
}

/* The CGI header block of an answer into `head` (1536 bytes); its length. */
static size_t http_head(http_req *req, int status, const char *content_type, size_t len,
                        char *head) {
    const size_t room = 1536;
    int bodyless = status == 204 || status == 304;
    int n = snprintf(head, room, "Status: %d %s\r\n", status, http_reason(status));
    if (content_type && !bodyless)
        n += snprintf(head + n, room - (size_t)n, "Content-Type: %s\r\n", content_type);
    if (!bodyless)
        n += snprintf(head + n, room - (size_t)n, "Content-Length: %zu\r\n", len);
    n += snprintf(head + n, room - (size_t)n, "%s\r\n", req->headers);
    req->answered = status;
    return (size_t)n;
}

void http_pieces_init(http_pieces *p) { memset(p, 0, sizeof *p); }

/* Room for one more iovec. 0, or -1. */
static int http_pieces_room(http_pieces *p) {
    if (p->n < p->cap) return 0;
    size_t cap = p->cap ? p->cap * 2 : 256;
    struct iovec *iov = realloc(p->iov, cap * sizeof *iov);
    if (!iov) return -1;
    p->iov = iov;
    p->cap = cap;
    return 0;
}

int http_pieces_add(http_pieces *p, const void *data, size_t len, int stable) {
    if (len == 0) return 0;
    if (http_pieces_room(p) != 0) return -1;
    void *at = (void *)data;
    if (!stable && len <= sizeof p->small - p->small_len) {
        at = memcpy(p->small + p->small_len, data, len);
        p->small_len += len;
    } else if (!stable) {
        char **spill = realloc(p->spill, (p->nspill + 1) * sizeof *spill);
        if (!spill) return -1;
        p->spill = spill;
        if (!(at = p->spill[p->nspill] = malloc(len))) return -1;
        p->nspill++;
        memcpy(at, data, len);
    }
    p->iov[p->n++] = (struct iovec){at, len};
    p->total += len;
    return 0;
}

void http_pieces_free(http_pieces *p) {
    for (size_t i = 0; i < p->nspill; i++) free(p->spill[i]);
    free(p->spill);
    free(p->iov);
    http_pieces_init(p);
}

int http_send_pieces(http_req *req, int status, const char *content_type, http_pieces *p) {
    char head[1536];
    size_t n = http_head(req, status, content_type, p->total, head);
    if (req->head) return http_write(req, head, n);
    if (http_pieces_room(p) != 0) return -1;
    memmove(p->iov + 1, p->iov, p->n * sizeof *p->iov); /* the head first */
    p->iov[0] = (struct iovec){head, n};
    int rc = http_write_records(req, p->iov, (int)p->n + 1);
    memmove(p->iov, p->iov + 1, p->n * sizeof *p->iov);
    return rc;
}

int http_send_raw(http_req *req, int status, const char *content_type, const void *body,
                  size_t len) {
    char head[1536];
    int bodyless = status == 204 || status == 304;
    size_t n = http_head(req, status, content_type, len, head);
    if (!req->head && !bodyless && len >= HTTP_DIRECT_MIN) {
        struct iovec seg[2] = {{head, (size_t)n}, {(void *)body, len}};
        return http_write_records(req, seg, 2);
    }
    if (http_write(req, head, (size_t)n) < 0) return -1;
    if (req->head || bodyless || len == 0) return 0;
    return http_write(req, body, len);
}

int http_send_json(http_req *req, int status, json_t *body) {
    char *text = json_dumps(body, JSON_COMPACT);
    if (!text) {
        mg_error err;
        mg_error_set(&err, 500, "internal_error", NULL, "could not encode the answer as JSON");
        return http_send_error(req, &err);
    }
    int rc = http_send_raw(req, status, "application/json", text, strlen(text));
    free(text);
    return rc;
}

int http_send_error(http_req *req, const mg_error *err) {
    int status = err->status >= 400 && err->status <= 599 ? err->status : 500;
    const char *code = err->code[0] ? err->code : "internal_error";
    char message[3 * sizeof err->message + 16];
    redact_text(message, sizeof message, err->message[0] ? err->message : http_reason(status));
    if (status >= 500)
        log_warn("%d %s %s: %s: %s", status, req->method, req->path, code, message);
    json_t *inner = json_pack("{s:s, s:s}", "code", code, "message", message);
    if (inner && err->parameter[0])
        json_object_set_new(inner, "parameter", json_string(err->parameter));
    json_t *body = inner ? json_pack("{s:o}", "error", inner) : NULL;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    static const char fallback[] =
        "{\"error\":{\"code\":\"internal_error\",\"message\":\"out of memory\"}}";
    int rc = http_send_raw(req, status, "application/json", text ? text : fallback,
                           text ? strlen(text) : sizeof fallback - 1);
    free(text);
    return rc;
}

int http_error(http_req *req, int status, const char *code, const char *parameter,
               const char *fmt, ...) {
    mg_error err;
    mg_error_set(&err, status, code, parameter, "%s", "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    return http_send_error(req, &err);
}

int http_buf_append(http_buf *buf, const void *data, size_t len) {
    if (buf->cap - buf->len < len) {
        size_t cap = buf->cap ? buf->cap : 65536;
        while (cap - buf->len < len) cap *= 2;
        char *p = realloc(buf->data, cap);
        if (!p) return -1;
        buf->data = p;
        buf->cap = cap;
    }
    memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    return 0;
}

void http_buf_reset(http_buf *buf, size_t keep) {
    buf->len = 0;
    if (buf->cap > keep) http_buf_free(buf);
}

void http_buf_free(http_buf *buf) {
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}
