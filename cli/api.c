/* api.c - mgctl's requests: libcurl against the API, JSON answers, and the server's error
 * messages turned into readable lines and exit codes (see mgctl.h). */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "mgctl.h"

#define CTL_ANSWER_MAX (64L << 20) /* the largest answer read (a search of 1000 models) */

typedef struct ctl_buf {
    char *data;
    size_t len;
    int too_big;
} ctl_buf;

static size_t ctl_collect(char *p, size_t size, size_t n, void *ud) {
    ctl_buf *b = ud;
    size_t k = size * n;
    if (b->len + k > (size_t)CTL_ANSWER_MAX) {
        b->too_big = 1;
        return 0;
    }
    char *grown = realloc(b->data, b->len + k + 1);
    if (!grown) return 0;
    memcpy(grown + b->len, p, k);
    b->data = grown;
    b->len += k;
    b->data[b->len] = '\0';
    return k;
}

int ctl_exit_of(long status) {
    if (status >= 200 && status < 300) return CTL_OK;
    switch (status) {
    case 401:
    case 403:
    case 421: return CTL_DENIED;
    case 404: return CTL_NOT_FOUND;
    case 409: return CTL_CONFLICT;
    case 507: return CTL_NO_SPACE;
    default: return CTL_ERROR;
    }
}

/* Prints the error of a non-2xx answer: the server's message and code, and a hint where
 * one helps. */
static void ctl_print_error(const ctl *c, long status, json_t *body) {
    json_t *err = json_object_get(body, "error");
    const char *msg = ctl_str(err, "message", NULL), *code = ctl_str(err, "code", "");
    const char *param = ctl_str(err, "parameter", NULL);
    if (!msg) {
        fprintf(stderr, "mgctl: the server answered HTTP %ld without an error message\n", status);
        return;
    }
    fprintf(stderr, "mgctl: %s (%s%s%s, HTTP %ld)\n", msg, code, param ? ", parameter " : "",
            param ? param : "", status);
    if (status == 401)
        fprintf(stderr, "mgctl: %s\n", c->token ? "the token was refused; check --token or "
                                                  "MG_API_TOKEN"
                                                : "this server needs a token: --token or "
                                                  "MG_API_TOKEN");
}

/* Sets the request of `h`: method, URL, headers (`*hdrs`, freed by the caller). */
static void ctl_setup(CURL *h, const ctl *c, const char *method, const char *url,
                      struct curl_slist **hdrs) {
    char auth[512];
    *hdrs = curl_slist_append(NULL, "Accept: application/json");
    if (c->token && strcmp(method, "GET") != 0) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
        *hdrs = curl_slist_append(*hdrs, auth);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "mgctl/1.0");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)(c->timeout_s > 0 ? c->timeout_s : 30));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
}

/* The request itself; `quiet`: print nothing (the caller polls). */
static int ctl_send(const ctl *c, const char *method, const char *path, ctl_answer *ans,
                    int quiet) {
    char url[8192], errbuf[CURL_ERROR_SIZE] = "";
    ctl_buf b = {NULL, 0, 0};
    struct curl_slist *hdrs = NULL;
    memset(ans, 0, sizeof *ans);
    snprintf(url, sizeof url, "%s%s", c->url, path);
    CURL *h = curl_easy_init();
    if (!h) return CTL_ERROR;
    ctl_setup(h, c, method, url, &hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, ctl_collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ans->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    int out = CTL_OK;
    if (rc != CURLE_OK) {
        if (!quiet)
            fprintf(stderr, "mgctl: cannot reach %s: %s (is the stack up? --url or MG_URL "
                    "names it)\n", c->url, b.too_big ? "the answer is too large"
                                       : errbuf[0] ? errbuf : curl_easy_strerror(rc));
        out = CTL_UNREACHABLE;
    } else if (!(ans->body = json_loadb(b.data ? b.data : "", b.len, 0, NULL))) {
        if (!quiet)
            fprintf(stderr, "mgctl: %s answered HTTP %ld without JSON: is it the Model Gallery "
                    "API?\n", c->url, ans->status);
        out = CTL_UNREACHABLE;
    } else {
        if (!c->json) ctl_printable(ans->body);
        if ((out = ctl_exit_of(ans->status)) != CTL_OK && !quiet)
            ctl_print_error(c, ans->status, ans->body);
    }
    free(b.data);
    return out;
}

int ctl_request(const ctl *c, const char *method, const char *path, ctl_answer *ans) {
    return ctl_send(c, method, path, ans, 0);
}

int ctl_get_print(const ctl *c, const char *path, void (*print)(json_t *body)) {
    ctl_answer a;
    int rc = ctl_request(c, "GET", path, &a);
    if (rc == CTL_OK) {
        if (c->json) ctl_print_json(a.body);
        else print(a.body);
    }
    ctl_answer_free(&a);
    return rc;
}

int ctl_request_quiet(const ctl *c, const char *method, const char *path, ctl_answer *ans) {
    return ctl_send(c, method, path, ans, 1);
}

void ctl_answer_free(ctl_answer *ans) {
    json_decref(ans->body);
    ans->body = NULL;
}

void ctl_escape(const char *s, char *out, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 4 < n; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p)) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
}

void ctl_query_add(char *q, size_t n, const char *key, const char *value) {
    char enc[2048];
    size_t used = strlen(q);
    ctl_escape(value, enc, sizeof enc);
    snprintf(q + used, n - used, "%s%s=%s", used ? "&" : "", key, enc);
}

void ctl_print_json(json_t *body) {
    json_dumpf(body, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
}
