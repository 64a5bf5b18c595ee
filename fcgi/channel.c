/* channel.c - asks nchan whether the progress channel works (see channel.h). */
#include "channel.h"

#include <curl/curl.h>
#include <stdio.h>

#define CHANNEL_URL "http://localhost/pub/progress"

static size_t channel_discard(char *data, size_t size, size_t n, void *ud) {
    (void)data;
    (void)ud;
    return size * n;
}

/* The HTTP status nchan answers the channel GET with, 0 and why when it does not answer. */
static long channel_status(const mg_config *cfg, char *why, size_t n) {
    char sock[MG_PATH_MAX];
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(why, n, "out of memory");
        return 0;
    }
    curl_easy_setopt(c, CURLOPT_URL, CHANNEL_URL);
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, config_path(cfg, sock, "run/nchan.sock"));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)CHANNEL_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, channel_discard);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    else
        snprintf(why, n, "nchan did not answer on run/nchan.sock (%s)", curl_easy_strerror(rc));
    curl_easy_cleanup(c);
    return code;
}

int channel_ok(const mg_config *cfg, char *why, size_t n) {
    if (!cfg->redis_url) return 1;
    why[0] = '\0';
    long code = channel_status(cfg, why, n);
    if (code == 200 || code == 404) return 1;
    if (code)
        snprintf(why, n, "nchan cannot reach Redis for the progress channel (HTTP %ld)", code);
    return 0;
}
