/* worker.h - one FastCGI worker process: its accept loop and the little it keeps between
 * requests (server.json, the search index, an answer buffer), each re-checked by stat. */
#ifndef MG_WORKER_H
#define MG_WORKER_H

#include <sys/stat.h>
#include <time.h>

#include "answer_cache.h"
#include "config.h"
#include "http.h"
#include "mg_error.h"
#include "search.h"

typedef struct worker_ctx {
    mg_config cfg;          /* owned; reloaded when config/server.json changes */
    struct stat cfg_st;     /* server.json as last loaded (st_ino 0: absent) */
    search_index *idx;      /* owned mapping, or NULL until a request needs it */
    unsigned long idx_gen;  /* counts the indexes mapped: answers of one belong to it */
    acache facets;          /* recent facet answers of the current index */
    time_t repair_failed_at; /* last failed repair of the index file, or 0 */
    struct stat pending_src; /* a changed source left to the installer to rebuild ... */
    time_t pending_since;    /* ... since then */
    struct stat src_st;     /* config/models_gallery.json when the cache was last ensured */
    int src_checked;        /* 1 once gallery_cache_ensure ran in this process */
    time_t ensure_failed_at; /* last failed gallery_cache_ensure with no cache left, or 0 */
    char ensure_error[560]; /* its message, answered again until the next retry */
    http_buf out;           /* answer buffer reused between requests */
} worker_ctx;

/* Takes over `cfg` (moved: the caller must not free it) and runs the accept loop on the
 * non-blocking listening sockets `fds` until SIGTERM: fds[0] first, fds[1] (the searches)
 * only when nothing waits on fds[0], so that a flood of searches never queues health, writes
 * or nginx's access checks behind it for longer than one request. Returns the process exit
 * status. */
int worker_run(mg_config *cfg, const int fds[2]);

/* Reloads the config when config/server.json changed since it was last read (one stat). */
void worker_refresh_config(worker_ctx *w);

/* Makes sure the cache is current with its source (gallery_cache_ensure when the source
 * file changed or the cache is gone) and returns the search index of the cache file as it
 * is now, mapped again when the file changed (the previous one is kept while the new cache
 * has no matching index yet). Borrowed (valid until the next call), or NULL and err
 * (503 "gallery_unavailable"). */
const search_index *worker_index(worker_ctx *w, mg_error *err);

/* 1 when run/installer.pid names a live (not zombie) process called mg-installer. */
int worker_installer_running(const mg_config *cfg);

/* Only the first half of worker_index: the cache is ensured current. 0, or -1 and err. */
int worker_gallery_fresh(worker_ctx *w, mg_error *err);

#endif
