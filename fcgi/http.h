/* http.h - one FastCGI request as the handlers see it: its method, raw path and query, and
 * the helpers that write answers (JSON bodies, JSON errors, raw bytes) with a Status line. */
#ifndef MG_HTTP_H
#define MG_HTTP_H

#include <fcgiapp.h>
#include <jansson.h>
#include <stddef.h>
#include <sys/uio.h>

#include "mg_error.h"

/* Requests with a larger body are refused with 413 before any handler runs. */
#define HTTP_BODY_MAX (1024 * 1024)

enum { HTTP_GET = 1, HTTP_HEAD = 2, HTTP_POST = 4, HTTP_DELETE = 8 };

typedef struct http_req {
    FCGX_Request *fcgx;  /* borrowed */
    const char *method;  /* REQUEST_METHOD (borrowed from the request), "" when absent */
    int method_bit;      /* one of HTTP_GET..., 0 for any other method */
    int head;            /* HEAD: answers carry the headers only */
    char *path;          /* owned: the raw, still percent-encoded path of REQUEST_URI */
    const char *query;   /* QUERY_STRING (borrowed), "" when absent */
    char headers[1024];  /* extra header lines ("Name: value\r\n") for the next answer */
    size_t headers_len;
    int answered;        /* the status of the answer once one was written, else 0 */
} http_req;

/* A growable byte buffer for answers built in pieces (owned by whoever holds it). */
typedef struct http_buf {
    char *data;
    size_t len, cap;
} http_buf;

/* Reads the request's parameters into `req`. 0, or -1 when memory ran out. Free with
 * http_req_free. */
int http_req_init(http_req *req, FCGX_Request *fcgx);
void http_req_free(http_req *req);

/* The FastCGI parameter `name` (e.g. "HTTP_IF_NONE_MATCH"), borrowed, or NULL. */
const char *http_param(const http_req *req, const char *name);

/* Adds a header line to the next answer of `req` (silently dropped when it does not fit). */
void http_add_header(http_req *req, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes an answer: Status, Content-Type (when not NULL), Content-Length, the extra headers,
 * then `len` bytes of `body` (not for HEAD, 204 or 304). 0, or -1 on a write error. */
int http_send_raw(http_req *req, int status, const char *content_type, const void *body,
                  size_t len);

/* An answer gathered as pieces, written without copying them: a stable piece is only
 * pointed at (its memory must stay valid until the answer is sent), another is copied. */
typedef struct http_pieces {
    struct iovec *iov;       /* owned array */
    size_t n, cap;
    size_t total;            /* bytes in all pieces */
    char small[8192];        /* copies of the pieces that are not stable ... */
    size_t small_len;
    char **spill;            /* ... and those that did not fit (owned) */
    size_t nspill;
} http_pieces;

void http_pieces_init(http_pieces *p);
/* Adds `len` bytes at `data`. 0, or -1 when memory ran out. */
int http_pieces_add(http_pieces *p, const void *data, size_t len, int stable);
void http_pieces_free(http_pieces *p);

/* As http_send_raw with the body in `p` (its iov entries are used up). */
int http_send_pieces(http_req *req, int status, const char *content_type, http_pieces *p);

/* Writes `body` (borrowed) as compact JSON. */
int http_send_json(http_req *req, int status, json_t *body);

/* Writes {"error":{"code","message","parameter"?}} with err->status (500 when unset) and
 * logs one line for a 5xx. */
int http_send_error(http_req *req, const mg_error *err);

/* As http_send_error with the error given in place. `parameter` may be NULL. */
int http_error(http_req *req, int status, const char *code, const char *parameter,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The reason phrase of `status` ("Not Found"). */
const char *http_reason(int status);

/* Appends to `buf`. 0, or -1 when memory ran out. */
int http_buf_append(http_buf *buf, const void *data, size_t len);
/* Empties `buf`, giving back its memory when it grew beyond `keep` bytes. */
void http_buf_reset(http_buf *buf, size_t keep);
void http_buf_free(http_buf *buf);

#endif
