/* fetch.c - bounded, conditional HTTP(S) GETs of gallery documents with libcurl, and
 * load_gallery for a path or a URL. */
#include "fetch.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fs.h"
#include "gallery.h"

/* ---- options and results ---------------------------------------------------------- */

/* The positive integer in environment variable `name` when it is one up to `max`, else def. */
static long long fetch_env_number(const char *name, long long def, long long max) {
    const char *v = getenv(name);
    if (!v || !*v) return def;
    char *end;
    long long n = strtoll(v, &end, 10);
    return (*end == '\0' && n > 0 && n <= max) ? n : def;
}

void fetch_options_init(fetch_options *opt, int allow_http) {
    memset(opt, 0, sizeof *opt);
    opt->allow_http = allow_http;
    opt->connect_timeout_s = (long)fetch_env_number("MG_FETCH_CONNECT_TIMEOUT_S",
                                                    FETCH_DEFAULT_CONNECT_TIMEOUT_S, 3600);
    opt->timeout_s =
        (long)fetch_env_number("MG_FETCH_TIMEOUT_S", FETCH_DEFAULT_TIMEOUT_S, 86400);
    opt->max_redirects = FETCH_DEFAULT_MAX_REDIRECTS;
    opt->max_bytes =
        fetch_env_number("MG_FETCH_MAX_BYTES", FETCH_DEFAULT_MAX_BYTES, 1LL << 40);
}

void fetch_result_init(fetch_result *res) { memset(res, 0, sizeof *res); }

void fetch_result_clear(fetch_result *res) {
    json_decref(res->invalid);
    fetch_result_init(res);
}

/* ---- pure helpers ----------------------------------------------------------------- */

int fetch_is_url(const char *s) {
    if (!s || !isalpha((unsigned char)*s)) return 0;
    const char *p = s;
    while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.') p++;
    return strncmp(p, "://", 3) == 0;
}

int fetch_url_check(const char *url, int allow_http, mg_error *err) {
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = 0;
    if (!u || !url || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
        rc = mg_error_set(err, 400, "invalid_url", NULL, "%s is not an absolute URL with a host",
                          url ? url : "(null)");
    } else if (strcasecmp(scheme, "https") != 0 &&
               !(allow_http && strcasecmp(scheme, "http") == 0)) {
        rc = mg_error_set(err, 400, "invalid_url", NULL,
                          "%s: scheme %s is not allowed (https only%s)", url, scheme,
                          allow_http ? " or http" : "; http needs allow_http");
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

int fetch_header_clean(char *out, size_t n, const char *value, size_t len) {
    out[0] = '\0';
    if (!value) return -1;
    while (len > 0 && (*value == ' ' || *value == '\t')) value++, len--;
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t' ||
                       value[len - 1] == '\r' || value[len - 1] == '\n'))
        len--;
    if (len == 0 || len >= n) return -1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f) return -1;
    memcpy(out, value, len);
    out[len] = '\0';
    return 0;
}

/* ---- the transfer ----------------------------------------------------------------- */

typedef struct fetch_buffer {
    char *data;
    size_t len, cap;
    long long max;
    int overflow;
    CURL *curl;
} fetch_buffer;

/* Keeps the body of a 200 only, up to `max` bytes; past it the transfer is aborted. */
static size_t fetch_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata) {
    fetch_buffer *b = userdata;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) return n;
    if ((long long)(b->len + n) > b->max) {
        b->overflow = 1;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + n + 1) cap *= 2;
        char *bigger = realloc(b->data, cap);
        if (!bigger) return 0;
        b->data = bigger;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static int fetch_progress_cb(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
                             curl_off_t ultotal, curl_off_t ulnow) {
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    const atomic_int *cancel = clientp;
    return cancel && atomic_load(cancel) ? 1 : 0;
}

/* The conditional request headers from `opt`, or NULL. Caller frees the list. */
static struct curl_slist *fetch_conditional_headers(const fetch_options *opt) {
    struct curl_slist *h = NULL;
    char line[FETCH_HEADER_MAX + 32], clean[FETCH_HEADER_MAX];
    if (opt->etag && fetch_header_clean(clean, sizeof clean, opt->etag, strlen(opt->etag)) == 0) {
        snprintf(line, sizeof line, "If-None-Match: %s", clean);
        h = curl_slist_append(h, line);
    }
    if (opt->last_modified && fetch_header_clean(clean, sizeof clean, opt->last_modified,
                                                 strlen(opt->last_modified)) == 0) {
        snprintf(line, sizeof line, "If-Modified-Since: %s", clean);
        h = curl_slist_append(h, line);
    }
    return h;
}

static void fetch_setup(CURL *c, const char *url, const fetch_options *opt, fetch_buffer *b,
                        struct curl_slist *headers) {
    const char *protocols = opt->allow_http ? "http,https" : "https";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protocols);
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, opt->max_redirects > 0 ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, opt->max_redirects);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, opt->connect_timeout_s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, opt->timeout_s);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)opt->max_bytes);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_USERAGENT, "model-gallery/1 (gallery refresh)");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fetch_write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, fetch_progress_cb);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)opt->cancel);
}

/* Copies header `name` of the last answer into out (size FETCH_HEADER_MAX), or "". */
static void fetch_header_get(CURL *c, const char *name, char *out) {
    struct curl_header *h = NULL;
    out[0] = '\0';
    if (curl_easy_header(c, name, 0, CURLH_HEADER, -1, &h) == CURLHE_OK && h && h->value)
        fetch_header_clean(out, FETCH_HEADER_MAX, h->value, strlen(h->value));
}

/* Turns the outcome of a finished transfer into the function's answer. */
static char *fetch_finish(CURLcode cc, const char *url, const fetch_options *opt,
                          fetch_result *res, fetch_buffer *b, const char *curl_msg,
                          size_t *len, mg_error *err) {
    if (b->overflow || cc == CURLE_FILESIZE_EXCEEDED) {
        mg_error_set(err, 502, "too_large", NULL, "%s: the body is larger than %lld bytes", url,
                     opt->max_bytes);
    } else if (cc == CURLE_ABORTED_BY_CALLBACK) {
        mg_error_set(err, 503, "cancelled", NULL, "%s: fetch cancelled", url);
    } else if (cc != CURLE_OK) {
        mg_error_set(err, 502, "fetch_failed", NULL, "%s: %s", url,
                     curl_msg[0] ? curl_msg : curl_easy_strerror(cc));
    } else if (res->http_status == 304) {
        res->not_modified = 1;
        mg_error_set(err, 304, "not_modified", NULL, "%s: not modified", url);
    } else if (res->http_status != 200) {
        mg_error_set(err, 502, "http_error", NULL, "%s: HTTP status %ld", url,
                     res->http_status);
    } else {
        if (len) *len = b->len;
        if (!b->data) b->data = calloc(1, 1);
        char *body = b->data;
        b->data = NULL;
        if (!body) mg_error_set(err, 500, "out_of_memory", NULL, "%s: out of memory", url);
        return body;
    }
    return NULL;
}

char *fetch_body(const char *url, const fetch_options *opt, fetch_result *res, size_t *len,
                 mg_error *err) {
    fetch_options defaults;
    if (!opt) {
        fetch_options_init(&defaults, 0);
        opt = &defaults;
    }
    res->http_status = 0;
    res->not_modified = 0;
    res->body_bytes = 0;
    res->etag[0] = res->last_modified[0] = '\0';
    if (len) *len = 0;
    if (fetch_url_check(url, opt->allow_http, err) != 0) return NULL;
    CURL *c = curl_easy_init();
    if (!c) {
        mg_error_set(err, 500, "internal_error", NULL, "cannot start a transfer for %s", url);
        return NULL;
    }
    fetch_buffer b = {.max = opt->max_bytes, .curl = c};
    char curl_msg[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = fetch_conditional_headers(opt);
    fetch_setup(c, url, opt, &b, headers);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_msg);
    CURLcode cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->http_status);
    fetch_header_get(c, "ETag", res->etag);
    fetch_header_get(c, "Last-Modified", res->last_modified);
    res->body_bytes = (long long)b.len;
    char *body = fetch_finish(cc, url, opt, res, &b, curl_msg, len, err);
    free(b.data);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    return body;
}

/* A parsed gallery with no valid model is a failure (its invalid list says why). */
static json_t *fetch_require_models(json_t *g, const char *source, mg_error *err) {
    if (g && json_array_size(json_object_get(g, "models")) == 0) {
        mg_error_set(err, 502, "no_valid_model", NULL, "%s: the gallery has no valid model",
                     source);
        json_decref(g);
        return NULL;
    }
    return g;
}

json_t *fetch_gallery(const char *url, const fetch_options *opt, fetch_result *res,
                      mg_error *err) {
    size_t len = 0;
    json_decref(res->invalid);
    res->invalid = NULL;
    char *body = fetch_body(url, opt, res, &len, err);
    if (!body) return NULL;
    if (opt && opt->check_body && opt->check_body(opt->check_ud, body, len, err) != 0) {
        free(body);
        return NULL;
    }
    json_t *g = gallery_parse(body, len, url, &res->invalid, err);
    free(body);
    if (!g && err) err->status = 502;
    return fetch_require_models(g, url, err);
}

/* Reads the gallery file at `path`, has opt->check_body judge its bytes, then parses them.
 * New reference, or NULL and err. */
static json_t *fetch_checked_file(const char *path, const fetch_options *opt, fetch_result *r,
                                  mg_error *err) {
    size_t len = 0;
    json_decref(r->invalid);
    r->invalid = NULL;
    char *text = fs_read_all(path, &len, err);
    if (!text) return NULL;
    json_t *g = NULL;
    if (opt->check_body(opt->check_ud, text, len, err) == 0)
        g = fetch_require_models(gallery_parse(text, len, path, &r->invalid, err), path, err);
    free(text);
    return g;
}

json_t *load_gallery(const char *path_or_url, const fetch_options *opt, fetch_result *res,
                     mg_error *err) {
    fetch_result local;
    fetch_result_init(&local);
    fetch_result *r = res ? res : &local;
    json_t *g;
    if (fetch_is_url(path_or_url)) {
        g = fetch_gallery(path_or_url, opt, r, err);
    } else if (opt && opt->check_body) {
        g = fetch_checked_file(path_or_url, opt, r, err);
    } else {
        json_decref(r->invalid);
        r->invalid = NULL;
        g = fetch_require_models(gallery_parse_file(path_or_url, &r->invalid, err),
                                 path_or_url, err);
    }
    fetch_result_clear(&local);
    return g;
}
