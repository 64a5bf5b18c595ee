/* mirror.h - the URLs one download may come from, and the hosts that keep failing.
 *
 * A job names its downloadUrl and, optionally, the model's mirrors. Before the download,
 * server.json's url_rewrites (the first rule whose prefix starts the URL) rewrite each of
 * them; duplicates are left out. While downloads run, every failure of a URL (connection,
 * 5xx, 404, stall) counts against its host (scheme, host and port); a host that failed
 * MIRROR_SKIP_AFTER times in a row is skipped for MG_HOST_SKIP_SECONDS (default 300) by the
 * next choices of every download in this process, unless no other URL is left. A success
 * clears its count. */
#ifndef MG_MIRROR_H
#define MG_MIRROR_H

#include <jansson.h>
#include <stddef.h>

#include "config.h"
#include "gallery.h"

#define MIRROR_URLS_MAX (GALLERY_MIRRORS_MAX + 1)
#define MIRROR_URL_MAX 4096 /* longest URL after a rewrite */
#define MIRROR_SKIP_AFTER 2 /* failures in a row that make a host skipped */

typedef struct mirror_list {
    char *urls[MIRROR_URLS_MAX]; /* owned: the rewritten URLs, downloadUrl first */
    int n;
} mirror_list;

/* Writes `url` rewritten by the first matching rule of `rewrites` (borrowed, may be NULL)
 * into out (size n). 0, or -1 when the result does not fit. */
int mirror_rewrite(json_t *rewrites, const char *url, char *out, size_t n);

/* Builds the list of `url` and `mirrors` (borrowed JSON array of strings, may be NULL),
 * each rewritten by cfg->url_rewrites, without duplicates. 0, or -1 when a URL does not
 * fit after its rewrite (why says which). Free with mirror_list_free. */
int mirror_list_build(mirror_list *l, const mg_config *cfg, const char *url, json_t *mirrors,
                      char *why, size_t n);
void mirror_list_free(mirror_list *l);

/* Counts a failure, or a success (clears the count), of the host of `url`. */
void mirror_host_failed(const char *url);
void mirror_host_ok(const char *url);

/* 1 when the host of `url` is being skipped now. */
int mirror_host_skipped(const char *url);

#endif
