/* httpd.h - a small HTTP/1.1 file server in a thread of the test process, for the unit tests
 * of the installer's downloads: it serves one body with Range ("bytes=a-") and If-Range
 * (ETag) as a real server does, answers each request by the next step of a script (an error
 * status, a redirect, a connection dropped after N bytes, Range ignored, a wrong
 * Content-Range, bytes trickled slowly, another body or validators), and logs every request: its Range and If-Range headers,
 * the status sent, the body bytes sent and when it came. One connection per request
 * (Connection: close), each answered by a thread of its own. */
#ifndef MG_TEST_HTTPD_H
#define MG_TEST_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#define HTTPD_LOG_MAX 64
#define HTTPD_SCRIPT_MAX 16

/* How one request is answered. Zero fields mean "as a real server would". */
typedef struct httpd_step {
    int status;            /* answer this error status (small JSON body) instead of the file */
    int64_t drop_after;    /* > 0: close the connection after this many body bytes */
    int ignore_range;      /* answer 200 with the whole body although Range was sent */
    int64_t range_shift;   /* a 206 says (and sends from) its start plus this many bytes */
    int trickle_ms;        /* > 0: send trickle_bytes, then sleep this long, and so on */
    int trickle_bytes;
    int no_length;         /* no Content-Length; the end of the body is the closed connection */
    int64_t announce;      /* > 0: Content-Length says this many bytes (the body as it is) */
    const char *body;      /* another body for this request (borrowed), with its own ETag */
    size_t body_len;
    const char *etag;      /* the ETag of `body` */
    const char *etag_header;   /* sent as the ETag instead (If-Range still compares the
                                  body's own); "" sends none */
    const char *last_modified; /* a Last-Modified header to send */
    const char *location;      /* answer 302 with this Location */
} httpd_step;

typedef struct httpd_request {
    char range[64];        /* the Range header, "" when absent */
    char if_range[128];    /* the If-Range header, "" when absent */
    int status;            /* the status sent */
    int64_t bytes;         /* body bytes sent */
    int64_t at_ms;         /* when it arrived (monotonic ms) */
} httpd_request;

typedef struct httpd httpd;

/* Starts a server on 127.0.0.1 (a free port) serving `body` (borrowed, `len` bytes) with the
 * ETag `etag` (borrowed, e.g. "\"v1\"") at every path. Returns an owned server, or NULL. */
httpd *httpd_start(const char *body, size_t len, const char *etag);

/* Stops the thread and frees the server. */
void httpd_stop(httpd *h);

/* The URL of `path` ("/m.gguf") on this server, in a static buffer. */
const char *httpd_url(httpd *h, const char *path);

/* Appends a step to the script: the next request not yet scripted is answered by it. */
void httpd_script(httpd *h, const httpd_step *step);

/* Replaces the body every later unscripted request gets (borrowed). */
void httpd_set_body(httpd *h, const char *body, size_t len, const char *etag);

/* Copies the log into `out` (at most HTTPD_LOG_MAX entries); returns the request count.
 * This and httpd_bytes first wait (up to 5 s) until no connection is being answered. */
int httpd_log(httpd *h, httpd_request *out);

/* Body bytes sent over all requests. */
int64_t httpd_bytes(httpd *h);

/* Forgets the log and the script. */
void httpd_reset(httpd *h);

#endif
