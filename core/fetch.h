/* fetch.h - fetching a gallery over HTTP(S) with libcurl, and loading one from a path or a URL.
 *
 * Used by the installer's refresher and by any C program that embeds libmgcore. Fetches are
 * conditional (If-None-Match / If-Modified-Since from the last answer, so an unchanged gallery
 * costs a 304) and bounded against a hostile or broken source: a body size cap, connect and
 * total timeouts, http(s) only (plain http only with allow_http, for redirects too) and a
 * limited number of redirects. Nothing here touches the cache: the caller decides what a
 * result means.
 *
 * Callers must have called curl_global_init() once before starting threads (the installer's
 * refresher does it in refresh_start). */
#ifndef MG_FETCH_H
#define MG_FETCH_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>

#include "mg_error.h"

#define FETCH_DEFAULT_MAX_BYTES (64LL * 1024 * 1024)
#define FETCH_DEFAULT_CONNECT_TIMEOUT_S 5L
#define FETCH_DEFAULT_TIMEOUT_S 60L
#define FETCH_DEFAULT_MAX_REDIRECTS 5L
#define FETCH_HEADER_MAX 256

typedef struct fetch_options {
    const char *etag;           /* borrowed: sent as If-None-Match, or NULL */
    const char *last_modified;  /* borrowed: sent as If-Modified-Since, or NULL */
    int allow_http;             /* 1: http:// allowed besides https:// */
    long connect_timeout_s;     /* default 5 (env MG_FETCH_CONNECT_TIMEOUT_S) */
    long timeout_s;             /* whole transfer; default 60 (env MG_FETCH_TIMEOUT_S) */
    long max_redirects;         /* default 5; 0 follows none */
    long long max_bytes;        /* body cap; default 64 MiB (env MG_FETCH_MAX_BYTES) */
    const atomic_int *cancel;   /* borrowed or NULL: nonzero stops the transfer */
    /* NULL, or called with the exact bytes of a gallery (fetched, or read from a path)
     * before they are parsed: 0 to take them, -1 with err to refuse them (a signature that
     * does not verify). */
    int (*check_body)(void *ud, const char *body, size_t len, mg_error *err);
    void *check_ud;
} fetch_options;

typedef struct fetch_result {
    long http_status;                      /* last answer's status, 0 when none came */
    int not_modified;                      /* 1 on 304 */
    char etag[FETCH_HEADER_MAX];           /* ETag of the answer, "" when none */
    char last_modified[FETCH_HEADER_MAX];  /* Last-Modified of the answer, "" when none */
    long long body_bytes;                  /* bytes of body received */
    json_t *invalid;                       /* owned: [{index, id, reason}] or NULL */
} fetch_result;

/* Fills `opt` with the defaults (and their environment overrides); no conditional headers. */
void fetch_options_init(fetch_options *opt, int allow_http);

/* Zeroes `res`. fetch_result_clear releases what a fetch left in it (res->invalid). */
void fetch_result_init(fetch_result *res);
void fetch_result_clear(fetch_result *res);

/* 1 when `s` starts with a URL scheme ("http://", "https://", or any "scheme://"). */
int fetch_is_url(const char *s);

/* 0 when `url` is an absolute URL with a host that may be fetched: https, or http when
 * `allow_http`. -1 and err 400 "invalid_url" (naming the scheme when it is the reason). */
int fetch_url_check(const char *url, int allow_http, mg_error *err);

/* Copies a header value into `out` (size n) without surrounding blanks. Returns 0, or -1
 * (out = "") when it is empty, too long or holds control characters: such a value is never
 * sent back in a conditional header. */
int fetch_header_clean(char *out, size_t n, const char *value, size_t len);

/* GETs `url` (opt may be NULL: the defaults). Returns the body of a 200 as a malloc'd,
 * NUL-terminated buffer the caller frees, its length in *len. NULL otherwise: on a 304 with
 * res->not_modified = 1 and err 304 "not_modified"; on any failure with err 502 and code
 * "fetch_failed" (network, timeout, truncated body), "http_error" (another status),
 * "too_large" (over max_bytes) or 400 "invalid_url". `res` (required) gets status,
 * validators and size in every case. */
char *fetch_body(const char *url, const fetch_options *opt, fetch_result *res, size_t *len,
                 mg_error *err);

/* Fetches and validates the gallery at `url` (gallery_parse). Returns a new reference to
 * {version, generatedAt, models:[valid models]}; res->invalid gets a new reference to the
 * invalid entries (release with fetch_result_clear). NULL as fetch_body, or with err 502
 * "invalid_gallery" (not JSON, naming line and column; no models array) or "no_valid_model"
 * (res->invalid then says why each model was left out). */
json_t *fetch_gallery(const char *url, const fetch_options *opt, fetch_result *res,
                      mg_error *err);

/* Loads a gallery from a URL (as fetch_gallery) or a file path (gallery_parse_file; the same
 * "no_valid_model" rule). `opt` and `res` may be NULL; with a path, res->http_status stays 0.
 * Returns a new reference, or NULL and err. */
json_t *load_gallery(const char *path_or_url, const fetch_options *opt, fetch_result *res,
                     mg_error *err);

#endif
