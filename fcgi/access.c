/* access.c - the Host allow-list, the browser origin rule, fail-closed settings and the
 * api_token, for API requests and for nginx's auth subrequests (see access.h). */
#include "access.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "channel.h"
#include "log.h"
#include "percent.h"

#define ACCESS_LOOPBACK_N 3
static const char *access_loopback[ACCESS_LOOPBACK_N] = {"127.0.0.1", "localhost", "[::1]"};

/* 1 when `host` is `name` followed by nothing, or by ":" and `port` (any port when
 * port < 0). Case-insensitive. */
static int access_host_is(const char *host, const char *name, long port) {
    size_t n = strlen(name);
    if (strncasecmp(host, name, n) != 0) return 0;
    const char *rest = host + n;
    if (*rest == '\0') return 1;
    if (*rest != ':' || !rest[1] || strspn(rest + 1, "0123456789") != strlen(rest + 1) ||
        strlen(rest + 1) > 5)
        return 0;
    return port < 0 || strtol(rest + 1, NULL, 10) == port;
}

int access_host_allowed(const mg_config *cfg, const char *host, long port) {
    if (!host || !*host) return 0;
    for (int i = 0; i < ACCESS_LOOPBACK_N; i++) {
        size_t n = strlen(access_loopback[i]);
        if (access_host_is(host, access_loopback[i], port) && (host[n] != '\0' || port == 80))
            return 1;
    }
    size_t i;
    json_t *name;
    json_array_foreach(cfg->server_names, i, name) {
        const char *s = json_string_value(name);
        if (!s) continue;
        int has_port = s[0] == '[' ? strstr(s, "]:") != NULL : strchr(s, ':') != NULL;
        if (has_port ? strcasecmp(host, s) == 0 : access_host_is(host, s, -1)) return 1;
    }
    return 0;
}

int access_origin_allowed(const mg_config *cfg, const char *origin, long port) {
    size_t i;
    json_t *entry;
    if (!origin || !*origin) return 0;
    json_array_foreach(cfg->allowed_origins, i, entry) {
        const char *s = json_string_value(entry);
        if (s && strcasecmp(origin, s) == 0) return 1;
    }
    const char *rest = strncasecmp(origin, "http://", 7) == 0    ? origin + 7
                       : strncasecmp(origin, "https://", 8) == 0 ? origin + 8
                                                                 : NULL;
    return rest && !strpbrk(rest, "/?#@ ") && access_host_allowed(cfg, rest, port);
}

static long access_port(const http_req *req) {
    const char *p = http_param(req, "SERVER_PORT");
    return p && *p ? strtol(p, NULL, 10) : 0;
}

/* An excerpt of a header value for a message (printable ASCII, at most 100 bytes). */
static void access_excerpt(const char *v, char out[112]) {
    size_t n = 0;
    for (; v && v[n] && n < 100; n++) out[n] = (v[n] >= 0x20 && v[n] < 0x7f) ? v[n] : '?';
    out[n] = '\0';
    if (v && v[n]) strcpy(out + n, "...");
}

static int access_misdirected(http_req *req, long port) {
    char host[112];
    access_excerpt(http_param(req, "HTTP_HOST"), host);
    http_error(req, 421, "misdirected_request", NULL,
               "this server answers only for the Host names 127.0.0.1:%ld, localhost:%ld, "
               "[::1]:%ld and the server_names of config/server.json, not '%s'",
               port, port, port, host);
    return 0;
}

/* 1 when the request names no node (X-MG-Node) or this one; else answers 421 wrong_node,
 * so that a call a load balancer should have pinned to another node changes nothing here. */
static int access_node_ok(http_req *req, const mg_config *cfg) {
    const char *node = http_param(req, "HTTP_X_MG_NODE");
    char shown[112];
    if (!node || !*node || strcasecmp(node, cfg->node_name) == 0) return 1;
    access_excerpt(node, shown);
    http_error(req, 421, "wrong_node", NULL,
               "this is node '%s'; the request is for node '%s' (X-MG-Node): the load "
               "balancer sent it to the wrong node", cfg->node_name, shown);
    return 0;
}

int access_request_ok(http_req *req, const mg_config *cfg) {
    long port = access_port(req);
    if (!access_host_allowed(cfg, http_param(req, "HTTP_HOST"), port))
        return access_misdirected(req, port);
    if (!access_node_ok(req, cfg)) return 0;
    if (strlen(req->query) > ACCESS_QUERY_MAX) {
        http_error(req, 414, "uri_too_long", NULL,
                   "the query string is longer than %d bytes", ACCESS_QUERY_MAX);
        return 0;
    }
    return 1;
}

/* 1 when the browser origin rule lets the request through; else answers 403. */
static int access_origin_ok(http_req *req, const mg_config *cfg) {
    const char *origin = http_param(req, "HTTP_ORIGIN");
    const char *site = http_param(req, "HTTP_SEC_FETCH_SITE");
    char shown[112];
    if (site && strcasecmp(site, "cross-site") == 0) {
        http_error(req, 403, "forbidden_origin", NULL,
                   "requests from another site's pages are refused (Sec-Fetch-Site: "
                   "cross-site)");
        return 0;
    }
    if (!origin || access_origin_allowed(cfg, origin, access_port(req))) return 1;
    access_excerpt(origin, shown);
    http_error(req, 403, "forbidden_origin", NULL,
               "requests from pages of origin '%s' are refused; allowed are this server's own "
               "pages and the allowed_origins of config/server.json", shown);
    return 0;
}

/* Constant-time comparison of two byte strings (time depends on the length of `a` only). */
static int access_token_equal(const char *a, size_t alen, const char *b, size_t blen) {
    unsigned char diff = alen != blen;
    for (size_t i = 0; i < alen; i++) diff |= (unsigned char)(a[i] ^ (blen ? b[i % blen] : 0));
    return diff == 0;
}

/* The token of an "Authorization: Bearer <token>" header into *tok and *len; 0, or -1. */
static int access_bearer(const char *h, const char **tok, size_t *len) {
    while (h && isspace((unsigned char)*h)) h++;
    if (!h || strncasecmp(h, "Bearer", 6) != 0 || !isspace((unsigned char)h[6])) return -1;
    h += 6;
    while (isspace((unsigned char)*h)) h++;
    size_t n = strlen(h);
    while (n > 0 && isspace((unsigned char)h[n - 1])) n--;
    *tok = h;
    *len = n;
    return 0;
}

static int access_unauthorized(http_req *req, int invalid) {
    if (invalid)
        http_add_header(req, "WWW-Authenticate: Bearer realm=\"model-gallery\", "
                             "error=\"invalid_token\"");
    else
        http_add_header(req, "WWW-Authenticate: Bearer realm=\"model-gallery\"");
    http_error(req, 401, "unauthorized", NULL,
               invalid ? "the bearer token is not the api_token"
                       : "this needs the header Authorization: Bearer <api_token>");
    return 0;
}

/* The access_token parameter of the query string, percent-decoded into out (size n).
 * 0, or -1 when there is none (or it does not fit). */
static int access_query_token(const char *qs, char *out, size_t n) {
    for (const char *p = qs; p && *p;) {
        size_t len = strcspn(p, "&");
        if (len > 13 && strncmp(p, "access_token=", 13) == 0 && len - 13 < n) {
            size_t dlen;
            if (percent_decode(p + 13, len - 13, out, &dlen) == 0 && dlen == strlen(out))
                return 0;
        }
        p += len + (p[len] == '&');
    }
    return -1;
}

/* 1 when no token is set, or the request carries it (the header; the access_token query
 * parameter too when `query_ok`); else answers 401. */
static int access_token_ok(http_req *req, const mg_config *cfg, int query_ok) {
    const char *token = cfg->api_token, *got = NULL;
    size_t len = 0;
    char qtok[CONFIG_TOKEN_MAX + 2];
    if (!token || !*token) return 1;
    if (access_bearer(http_param(req, "HTTP_AUTHORIZATION"), &got, &len) != 0) {
        if (!query_ok || access_query_token(req->query, qtok, sizeof qtok) != 0)
            return access_unauthorized(req, 0);
        got = qtok;
        len = strlen(qtok);
    }
    if (!access_token_equal(got, len, token, strlen(token))) return access_unauthorized(req, 1);
    return 1;
}

int access_write_ok(http_req *req, const mg_config *cfg) {
    if (!access_origin_ok(req, cfg)) return 0;
    if (cfg->state != CONFIG_FRESH) {
        http_error(req, 503, "config_unavailable", NULL,
                   "changes are refused until config/server.json can be read again: %s",
                   cfg->problem);
        return 0;
    }
    return access_token_ok(req, cfg, 0);
}

/* Whether a subscriber may connect now (Redis mode): 204 when the progress channel works,
 * else 403 with "X-MG-Deny: progress", which nginx answers with 503 progress_unavailable
 * (nchan itself would answer an empty 503, before any other check). */
static void access_channel_ok(http_req *req, const mg_config *cfg) {
    char why[256];
    if (channel_ok(cfg, why, sizeof why)) {
        http_send_raw(req, 204, NULL, NULL, 0);
        return;
    }
    log_warn("progress subscriber refused: %s", why);
    http_add_header(req, "X-MG-Deny: progress");
    http_send_raw(req, 403, NULL, NULL, 0);
}

int access_subrequest(http_req *req, const mg_config *cfg) {
    const char *flag = http_param(req, "MG_AUTH");
    if (!flag || strcmp(flag, "1") != 0) return 0;
    long port = access_port(req);
    if (strcmp(req->path, "/api/models/_auth/host") == 0) {
        if (access_host_allowed(cfg, http_param(req, "HTTP_HOST"), port)) {
            http_send_raw(req, 204, NULL, NULL, 0);
        } else {
            http_add_header(req, "X-MG-Deny: host");
            http_send_raw(req, 403, NULL, NULL, 0);
        }
        return 1;
    }
    if (strcmp(req->path, "/api/models/_auth/subscribe") == 0) {
        if (!access_host_allowed(cfg, http_param(req, "HTTP_HOST"), port))
            access_misdirected(req, port);
        else if (access_origin_ok(req, cfg) && access_token_ok(req, cfg, 1))
            http_send_raw(req, 204, NULL, NULL, 0);
        return 1;
    }
    if (strcmp(req->path, "/api/models/_auth/progress") == 0) {
        if (access_host_allowed(cfg, http_param(req, "HTTP_HOST"), port)) {
            access_channel_ok(req, cfg);
        } else { /* a foreign Host hears 421, whatever Redis does */
            http_add_header(req, "X-MG-Deny: host");
            http_send_raw(req, 403, NULL, NULL, 0);
        }
        return 1;
    }
    http_error(req, 404, "not_found", NULL, "no such check");
    return 1;
}
