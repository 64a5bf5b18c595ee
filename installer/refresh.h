/* refresh.h - the gallery refresher: a thread of mg-installer that keeps the cache in step
 * with the configured sources (see core/sources.h).
 *
 * In remote mode (gallery_url or galleries) it fetches every URL source with If-None-Match /
 * If-Modified-Since from its last good answer and re-reads every path source, every
 * gallery_cache_ttl_s (sooner, at most a minute, after a failure), at start, when
 * config/server.json or a path source changes, and when cache/refresh.request appears
 * (POST /api/models/gallery/refresh). A source that fails keeps its last good gallery; the
 * sources are merged in order (the first wins an id clash) and the cache is rewritten, under
 * cache/.lock, only when the merged gallery changed. With no good source at all the cache
 * stays as it is, or, when there is none, is built from config/models_gallery.json. Every
 * cycle writes cache/gallery_status.json. In local mode a cycle is gallery_cache_ensure. */
#ifndef MG_REFRESH_H
#define MG_REFRESH_H

#include <stdatomic.h>

#include "mg_error.h"

typedef struct refresh_thread refresh_thread;

/* Starts the refresher for the data root `root` (copied). Calls curl_global_init. Returns an
 * owned handle for refresh_stop, or NULL and err. */
refresh_thread *refresh_start(const char *root, mg_error *err);

/* Stops the thread (an ongoing fetch is aborted), joins it and frees `t` (NULL is a no-op). */
void refresh_stop(refresh_thread *t);

/* Runs one refresh cycle for `root` in the calling thread; `request_id` (0: none) is recorded
 * as handled in the status. `cancel` (may be NULL) aborts fetches when nonzero. Returns the
 * number of seconds until the next cycle is due, or -1 and err when the configuration
 * cannot be read. */
long refresh_run_once(const char *root, long long request_id, const atomic_int *cancel,
                      mg_error *err);

#endif
