/* worker.c - a FastCGI worker: accepts requests on the two shared sockets (the first one
 * before the searches' one) and hands them to the router. Holds nothing durable; the
 * settings it keeps between requests are checked against the file with a stat per request
 * and reloaded on change, and the search index it maps (shared with every other process) is
 * remapped when the cache file changes. */
#include "worker.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "gallery.h"
#include "log.h"
#include "proc.h"
#include "router.h"

/* Answer buffers larger than this are given back after the request. */
#define WORKER_BUF_KEEP (4u << 20)

static volatile sig_atomic_t worker_busy;
static volatile sig_atomic_t worker_stop;

/* SIGTERM: an idle worker exits at once; a busy one finishes its request first. */
static void worker_on_term(int sig) {
    (void)sig;
    if (!worker_busy) _exit(0);
    worker_stop = 1;
}

/* 1 when `a` and `b` describe the same version of a file (both zeroed: both absent). */
static int worker_stat_same(const struct stat *a, const struct stat *b) {
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* stat() that leaves a zeroed struct for a missing file. 1 when the file exists. */
static int worker_stat(const char *path, struct stat *st) {
    if (stat(path, st) == 0) return 1;
    memset(st, 0, sizeof *st);
    return 0;
}

/* Reads server.json again; a broken one keeps the last good settings, marked stale (so
 * that changes are refused with 503 until it is fixed). */
static void worker_load_config(worker_ctx *w, const struct stat *st) {
    mg_error err;
    mg_error_clear(&err);
    if (config_reload(&w->cfg, &err) != 0)
        log_error("keeping the previous settings, refusing changes: %s", err.message);
    w->cfg_st = *st;
}

void worker_refresh_config(worker_ctx *w) {
    char path[MG_PATH_MAX];
    struct stat st;
    worker_stat(config_path(&w->cfg, path, "config/server.json"), &st);
    if (!worker_stat_same(&st, &w->cfg_st)) worker_load_config(w, &st);
}

/* Stats of the gallery source and of the cache file, as they are now. */
static int worker_gallery_stats(worker_ctx *w, struct stat *src, struct stat *cache) {
    char path[MG_PATH_MAX];
    worker_stat(config_path(&w->cfg, path, "config/models_gallery.json"), src);
    return worker_stat(config_path(&w->cfg, path, "cache/gallery_cache.json"), cache);
}

int worker_installer_running(const mg_config *cfg) {
    char path[MG_PATH_MAX];
    return proc_pidfile(config_path(cfg, path, "run/installer.pid"), "mg-installer", NULL) > 0;
}

/* A failed cache rebuild with nothing to serve is retried after this many seconds (or at
 * once when the source changes). */
#define WORKER_ENSURE_RETRY_S 2

/* A source change is left to the installer for this long before a worker rebuilds itself. */
#define WORKER_PENDING_S 30
/* ... and the request that notices it waits this long for the installer's rebuild. */
#define WORKER_WAIT_MS 1000

/* The source changed and this worker has an index to serve: 1 when the installer (which
 * watches the files) is left to rebuild, so that a worker's memory never holds a rebuild on
 * top of its mappings and no request waits for a whole rebuild. The first request that
 * notices a change waits up to a second for it (a small gallery is then served at once);
 * the index is remapped as soon as the new cache is in. */
static int worker_leave_to_installer(worker_ctx *w, const struct stat *src) {
    if (!worker_installer_running(&w->cfg)) return 0;
    if (worker_stat_same(src, &w->pending_src))
        return time(NULL) - w->pending_since < WORKER_PENDING_S;
    w->pending_src = *src;
    w->pending_since = time(NULL);
    for (int waited = 0; waited < WORKER_WAIT_MS && !gallery_cache_settled(&w->cfg); waited += 10)
        usleep(10 * 1000);
    return 1;
}

int worker_gallery_fresh(worker_ctx *w, mg_error *err) {
    struct stat src, cache;
    int have_cache = worker_gallery_stats(w, &src, &cache);
    if (w->src_checked && have_cache && worker_stat_same(&src, &w->src_st) &&
        (!w->idx || search_index_is_current(w->idx, &cache)))
        return 0;
    if (w->cfg.state == CONFIG_DEFAULTS) /* no settings: the installer keeps the cache */
        return have_cache ? 0
                          : mg_error_set(err, 503, "gallery_unavailable", NULL,
                                         "the gallery is unavailable: no cache file, and %s",
                                         w->cfg.problem);
    if (w->ensure_failed_at && !have_cache && worker_stat_same(&src, &w->src_st) &&
        time(NULL) - w->ensure_failed_at < WORKER_ENSURE_RETRY_S)
        return mg_error_set(err, 503, "gallery_unavailable", NULL, "%s", w->ensure_error);
    if (w->idx && have_cache && search_index_is_current(w->idx, &cache) &&
        worker_leave_to_installer(w, &src))
        return 0;
    mg_error e;
    mg_error_clear(&e);
    int rc = w->idx ? gallery_cache_ensure_try(&w->cfg, &e) : gallery_cache_ensure(&w->cfg, &e);
    if (rc == 1) return 0;
    have_cache = worker_gallery_stats(w, &w->src_st, &cache);
    w->src_checked = rc == 0 || have_cache;
    w->ensure_failed_at = 0;
    if (rc == 0 && have_cache) return 0;
    if (have_cache) {
        log_warn("gallery cache check failed, serving the last cache: %s", e.message);
        return 0;
    }
    w->ensure_failed_at = time(NULL);
    snprintf(w->ensure_error, sizeof w->ensure_error, "the gallery is unavailable: %s",
             e.message[0] ? e.message : "no cache file");
    return mg_error_set(err, 503, "gallery_unavailable", NULL, "%s", w->ensure_error);
}

/* Maps the search index of the cache at `cache`. When the index is unusable, has it
 * repaired (waiting for the cache lock only when this worker has no index to serve
 * meanwhile; a writer holding it is about to put a matching index in place) and tries once
 * more. An owned index, or NULL and err. */
static search_index *worker_map(worker_ctx *w, const char *cache, mg_error *err) {
    search_index *idx = search_index_load(cache, err);
    if (idx) return idx;
    if (w->idx && time(NULL) - w->repair_failed_at < WORKER_ENSURE_RETRY_S) return NULL;
    if (w->cfg.state == CONFIG_DEFAULTS) return NULL; /* settings unknown: leave it to the installer */
    char index[MG_PATH_MAX];
    struct stat bad;
    gallery_index_path(cache, index, sizeof index);
    worker_stat(index, &bad);
    mg_error rerr;
    mg_error_clear(&rerr);
    int rc = gallery_cache_repair(&w->cfg, &bad, w->idx == NULL, &rerr);
    if (rc < 0) {
        w->repair_failed_at = time(NULL);
        log_warn("search index of %s: %s", cache, rerr.message);
    }
    return rc == 0 ? search_index_load(cache, err) : NULL;
}

const search_index *worker_index(worker_ctx *w, mg_error *err) {
    mg_error e;
    mg_error_clear(&e);
    if (worker_gallery_fresh(w, &e) != 0) {
        if (!w->idx) {
            if (err) *err = e;
            return NULL;
        }
        return w->idx; /* the last good gallery (its mapping still reads the old file) */
    }
    char path[MG_PATH_MAX];
    struct stat st;
    if (!worker_stat(config_path(&w->cfg, path, "cache/gallery_cache.json"), &st) && w->idx)
        return w->idx;
    if (w->idx && search_index_is_current(w->idx, &st)) return w->idx;
    search_index *idx = worker_map(w, path, &e);
    if (!idx) {
        if (w->idx) return w->idx; /* until the index of the new cache is in place */
        mg_error_set(err, 503, "gallery_unavailable", NULL, "the gallery is unavailable: %s",
                     e.message);
        return NULL;
    }
    search_index_free(w->idx);
    w->idx = idx;
    w->idx_gen++;
    w->repair_failed_at = 0;
    return idx;
}

static void worker_handle(worker_ctx *w, FCGX_Request *r) {
    http_req req;
    if (http_req_init(&req, r) != 0) {
        static const char oom[] = "Status: 500 Internal Server Error\r\n\r\n";
        FCGX_PutStr(oom, (int)sizeof oom - 1, r->out);
        log_error("out of memory reading a request");
        return;
    }
    worker_refresh_config(w);
    route_dispatch(&req, w);
    if (!req.answered)
        http_error(&req, 500, "internal_error", NULL, "the handler gave no answer");
    http_req_free(&req);
    http_buf_reset(&w->out, WORKER_BUF_KEEP);
}

static void worker_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = worker_on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Waits for the next request on `fds` (fds[0] first) and accepts it into req[0] or req[1].
 * The request, or NULL when the worker must stop (*status set on an error). */
static FCGX_Request *worker_accept(const int fds[2], FCGX_Request req[2], int *status) {
    while (!worker_stop) {
        struct pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
        worker_busy = 0;
        int n = poll(p, 2, -1);
        worker_busy = 1;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & POLLIN)) continue;
            int rc = FCGX_Accept_r(&req[i]);
            if (rc == 0) return &req[i];
            if (rc == -EAGAIN || rc == -EWOULDBLOCK || rc == -EINTR) continue; /* taken */
            if (!worker_stop) {
                log_error("accept on the FastCGI socket failed: %s", strerror(-rc));
                *status = 1;
            }
            return NULL;
        }
    }
    if (!worker_stop) {
        log_error("poll on the FastCGI sockets failed: %s", strerror(errno));
        *status = 1;
    }
    return NULL;
}

int worker_run(mg_config *cfg, const int fds[2]) {
    worker_ctx w;
    memset(&w, 0, sizeof w);
    w.cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    worker_signals();
    w.cfg_st.st_ino = (ino_t)-1; /* force a fresh read of server.json */
    worker_refresh_config(&w);

    FCGX_Request req[2];
    FCGX_InitRequest(&req[0], fds[0], 0);
    FCGX_InitRequest(&req[1], fds[1], 0);
    int status = 0;
    FCGX_Request *r;
    while ((r = worker_accept(fds, req, &status)) != NULL) {
        worker_handle(&w, r);
        FCGX_Finish_r(r);
    }
    FCGX_Free(&req[0], 0);
    FCGX_Free(&req[1], 0);
    search_index_free(w.idx);
    acache_free(&w.facets);
    http_buf_free(&w.out);
    config_free(&w.cfg);
    return status;
}
