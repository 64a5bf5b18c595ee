/* mirror.c - the URLs of a download after url_rewrites, and the hosts being skipped (see
 * mirror.h). The host table is shared by the download threads (a mutex guards it). */
#include "mirror.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "progress.h"
#include "redact.h"

#define MIRROR_HOSTS 64
#define MIRROR_HOST_KEY 300

typedef struct mirror_host {
    char key[MIRROR_HOST_KEY]; /* "scheme://host:port", "" when the slot is free */
    int fails;                 /* failures in a row */
    int64_t until_ms;          /* skipped until then (progress_now_ms) */
    int64_t used_ms;           /* last change, to reuse the oldest slot */
} mirror_host;

static pthread_mutex_t mirror_mu = PTHREAD_MUTEX_INITIALIZER;
static mirror_host mirror_hosts[MIRROR_HOSTS];

int mirror_rewrite(json_t *rewrites, const char *url, char *out, size_t n) {
    json_t *rule;
    size_t i;
    json_array_foreach(rewrites, i, rule) {
        const char *prefix = json_string_value(json_object_get(rule, "prefix"));
        const char *repl = json_string_value(json_object_get(rule, "replace"));
        size_t k = prefix ? strlen(prefix) : 0;
        if (!k || !repl || strncmp(url, prefix, k) != 0) continue;
        return (size_t)snprintf(out, n, "%s%s", repl, url + k) < n ? 0 : -1;
    }
    return (size_t)snprintf(out, n, "%s", url) < n ? 0 : -1;
}

/* Appends `url` rewritten to the list unless it is there already. 0, or -1 with why. */
static int mirror_list_add(mirror_list *l, const mg_config *cfg, const char *url, char *why,
                           size_t n) {
    char out[MIRROR_URL_MAX], shown[512];
    if (mirror_rewrite(cfg->url_rewrites, url, out, sizeof out) < 0) {
        snprintf(why, n, "the download URL %s is longer than %d bytes after its url_rewrites",
                 redact_text(shown, sizeof shown, url), MIRROR_URL_MAX - 1);
        return -1;
    }
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->urls[i], out) == 0) return 0;
    if (l->n >= MIRROR_URLS_MAX) return 0;
    if (!(l->urls[l->n] = strdup(out))) return snprintf(why, n, "out of memory"), -1;
    l->n++;
    return 0;
}

int mirror_list_build(mirror_list *l, const mg_config *cfg, const char *url, json_t *mirrors,
                      char *why, size_t n) {
    json_t *m;
    size_t i;
    memset(l, 0, sizeof *l);
    if (mirror_list_add(l, cfg, url, why, n) < 0) return mirror_list_free(l), -1;
    json_array_foreach(mirrors, i, m) {
        if (json_is_string(m) && mirror_list_add(l, cfg, json_string_value(m), why, n) < 0)
            return mirror_list_free(l), -1;
    }
    return 0;
}

void mirror_list_free(mirror_list *l) {
    for (int i = 0; i < l->n; i++) free(l->urls[i]);
    l->n = 0;
}

/* "scheme://host:port" of `url` into key; 0, or -1 when it is no URL. */
static int mirror_host_key(const char *url, char key[MIRROR_HOST_KEY]) {
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK;
    if (ok) snprintf(key, MIRROR_HOST_KEY, "%s://%s:%s", scheme, host, port);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return ok ? 0 : -1;
}

/* The slot of `key` (under mirror_mu); with `create`, a free or the oldest slot is taken. */
static mirror_host *mirror_host_find(const char *key, int create) {
    mirror_host *oldest = &mirror_hosts[0];
    for (int i = 0; i < MIRROR_HOSTS; i++) {
        if (strcmp(mirror_hosts[i].key, key) == 0) return &mirror_hosts[i];
        if (mirror_hosts[i].used_ms < oldest->used_ms) oldest = &mirror_hosts[i];
    }
    if (!create) return NULL;
    memset(oldest, 0, sizeof *oldest);
    snprintf(oldest->key, sizeof oldest->key, "%s", key);
    return oldest;
}

static long mirror_skip_seconds(void) {
    const char *v = getenv("MG_HOST_SKIP_SECONDS");
    long s = v && *v ? strtol(v, NULL, 10) : 300;
    return s < 0 ? 0 : s > 86400 ? 86400 : s;
}

void mirror_host_failed(const char *url) {
    char key[MIRROR_HOST_KEY];
    if (mirror_host_key(url, key) < 0) return;
    pthread_mutex_lock(&mirror_mu);
    mirror_host *h = mirror_host_find(key, 1);
    h->used_ms = progress_now_ms();
    if (++h->fails >= MIRROR_SKIP_AFTER) {
        if (h->until_ms <= h->used_ms)
            log_warn("host %s failed %d times in a row; skipped for %ld s where a mirror is "
                     "left", key, h->fails, mirror_skip_seconds());
        h->until_ms = h->used_ms + mirror_skip_seconds() * 1000;
    }
    pthread_mutex_unlock(&mirror_mu);
}

void mirror_host_ok(const char *url) {
    char key[MIRROR_HOST_KEY];
    if (mirror_host_key(url, key) < 0) return;
    pthread_mutex_lock(&mirror_mu);
    mirror_host *h = mirror_host_find(key, 0);
    if (h) {
        h->fails = 0;
        h->until_ms = 0;
    }
    pthread_mutex_unlock(&mirror_mu);
}

int mirror_host_skipped(const char *url) {
    char key[MIRROR_HOST_KEY];
    if (mirror_host_key(url, key) < 0) return 0;
    pthread_mutex_lock(&mirror_mu);
    mirror_host *h = mirror_host_find(key, 0);
    int skipped = h && h->until_ms > progress_now_ms();
    pthread_mutex_unlock(&mirror_mu);
    return skipped;
}
