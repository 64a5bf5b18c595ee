/* main.c - mg-installer: the download daemon of one data root. Watches jobs/ (new jobs and
 * cancel markers) and config/ + cache/ (keeps the gallery cache fresh) with inotify, runs
 * queued jobs through the scheduler, and stops cleanly on SIGTERM/SIGINT, leaving running
 * downloads to resume at the next start. */
#include <curl/curl.h>
#include <jansson.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "config.h"
#include "fs.h"
#include "gallery.h"
#include "id.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "progress.h"
#include "ratelimit.h"
#include "refresh.h"
#include "sched.h"

#define MAIN_RESCAN_MS 2000    /* look at the queue at least this often */
#define MAIN_DEBOUNCE_MS 100   /* gallery cache check after a change of its sources */
#define MAIN_SHUTDOWN_MS 700   /* how long runners get to stop */
#define MAIN_LOCK_WAIT_S 10    /* wait for a previous daemon of the root to exit */

typedef struct daemon_state {
    mg_config cfg;
    sched sched;
    int inotify_fd, signal_fd, lock_fd;
    int wd_jobs, wd_config, wd_cache;
    int64_t gallery_due;   /* when to check the gallery cache; 0: not pending */
    int rescan;            /* the queue changed */
    int reload;            /* server.json changed */
    char pidfile[MG_PATH_MAX];
} daemon_state;

static void main_usage(void) {
    fprintf(stderr, "usage: mg-installer [--root DIR]\n");
    exit(2);
}

/* Takes run/installer.lock so that one daemon serves a root, waiting a little for one that is
 * stopping. 0, or -1. */
static int main_lock(daemon_state *d) {
    char path[MG_PATH_MAX];
    config_path(&d->cfg, path, "run/installer.lock");
    mg_error err;
    d->lock_fd = fs_open(path, O_RDWR | O_CREAT, 0644, &err);
    if (d->lock_fd < 0) {
        log_error("%s", err.message);
        return -1;
    }
    for (int i = 0; i < MAIN_LOCK_WAIT_S * 10; i++) {
        if (flock(d->lock_fd, LOCK_EX | LOCK_NB) == 0) return 0;
        usleep(100000);
    }
    log_error("another mg-installer serves %s (%s is locked)", d->cfg.root, path);
    return -1;
}

static int main_pidfile(daemon_state *d) {
    char text[32];
    mg_error err;
    config_path(&d->cfg, d->pidfile, "run/installer.pid");
    int n = snprintf(text, sizeof text, "%d\n", (int)getpid());
    if (fs_write_atomic(d->pidfile, text, (size_t)n, &err) < 0) {
        log_error("cannot write the pid file: %s", err.message);
        return -1;
    }
    return 0;
}

/* Removes the pid file when it still names this process. */
static void main_pidfile_remove(daemon_state *d) {
    char *text = fs_read_all(d->pidfile, NULL, NULL);
    if (text && atoi(text) == (int)getpid()) fs_unlink(d->pidfile, NULL);
    free(text);
}

/* Blocks the stop signals in every thread and returns a signalfd for them, or -1. */
static int main_signals(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return -1;
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static int main_watch(daemon_state *d, const char *rel, uint32_t mask) {
    char path[MG_PATH_MAX];
    int wd = inotify_add_watch(d->inotify_fd, config_path(&d->cfg, path, rel), mask);
    if (wd < 0) log_error("cannot watch %s: %s", path, strerror(errno));
    return wd;
}

static int main_watches(daemon_state *d) {
    d->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (d->inotify_fd < 0) return -1;
    uint32_t files = IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_CREATE;
    d->wd_jobs = main_watch(d, "jobs", IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE);
    d->wd_config = main_watch(d, "config", files);
    d->wd_cache = main_watch(d, "cache", files);
    return d->wd_jobs < 0 || d->wd_config < 0 || d->wd_cache < 0 ? -1 : 0;
}

/* 1 when `name` is "<job_id><suffix>"; the id is copied into id. */
static int main_job_name(const char *name, const char *suffix, char id[ID_JOB_LEN + 1]) {
    size_t n = strlen(name), s = strlen(suffix);
    if (n != ID_JOB_LEN + s || strcmp(name + ID_JOB_LEN, suffix) != 0) return 0;
    memcpy(id, name, ID_JOB_LEN);
    id[ID_JOB_LEN] = '\0';
    return id_job_valid(id);
}

/* 1 for the files the gallery cache depends on or consists of. */
static int main_gallery_file(const char *name) {
    static const char *names[] = {"models_gallery.json", "server.json", "gallery_cache.json",
                                  "gallery_cache.meta.json", "gallery_cache.index",
                                  "gallery_cache.json.gz", NULL};
    for (int i = 0; names[i]; i++)
        if (strcmp(name, names[i]) == 0) return 1;
    return 0;
}

static void main_event(daemon_state *d, const struct inotify_event *ev) {
    char id[ID_JOB_LEN + 1];
    const char *name = ev->len ? ev->name : "";
    if (ev->mask & IN_Q_OVERFLOW) {
        d->rescan = 1;
        d->gallery_due = progress_now_ms() + MAIN_DEBOUNCE_MS;
    } else if (ev->wd == d->wd_jobs) {
        if (main_job_name(name, ".cancel", id)) {
            sched_cancel(&d->sched, id);
            d->rescan = 1; /* a job that does not run ends cancelled there */
        } else if (main_job_name(name, ".pause", id)) {
            sched_pause(&d->sched, id);
        } else if (main_job_name(name, ".json", id) && !sched_running(&d->sched, id)) {
            sched_note_job(&d->sched, id);
            d->rescan = 1;
        }
    } else if (ev->wd == d->wd_config || ev->wd == d->wd_cache) {
        if (strcmp(name, "server.json") == 0) d->reload = 1;
        if (main_gallery_file(name) && !d->gallery_due)
            d->gallery_due = progress_now_ms() + MAIN_DEBOUNCE_MS;
    }
}

static void main_read_events(daemon_state *d) {
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(d->inotify_fd, buf, sizeof buf);
        if (n <= 0) return;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            main_event(d, ev);
            p += sizeof *ev + ev->len;
        }
    }
}

static void main_gallery(daemon_state *d) {
    mg_error err;
    d->gallery_due = 0;
    if (gallery_cache_ensure(&d->cfg, &err) < 0)
        log_warn("gallery cache: %s", err.message);
}

/* Reloads config/server.json (new jobs take a copy of the settings when they start); a
 * broken file keeps the last good settings. */
static void main_reload(daemon_state *d) {
    mg_error err;
    d->reload = 0;
    if (config_reload(&d->cfg, &err) < 0) {
        log_error("keeping the previous settings: %s", err.message);
        return;
    }
    d->sched.cfg = &d->cfg;
    progress_set_node(d->cfg.node_name); /* redis_url takes effect at the next deploy/up */
    ratelimit_set(d->cfg.max_download_rate);
    d->rescan = 1;
}

static int main_timeout(const daemon_state *d, int64_t next_scan) {
    int64_t now = progress_now_ms(), until = next_scan;
    if (d->gallery_due && d->gallery_due < until) until = d->gallery_due;
    return until <= now ? 0 : (int)(until - now);
}

/* The event loop; returns when a stop signal arrives. */
static void main_loop(daemon_state *d) {
    int64_t next_scan = 0;
    for (;;) {
        int64_t now = progress_now_ms();
        if (d->reload) main_reload(d);
        if (d->gallery_due && now >= d->gallery_due) main_gallery(d);
        if (d->rescan || now >= next_scan) {
            d->rescan = 0;
            sched_fill(&d->sched);
            next_scan = progress_now_ms() + MAIN_RESCAN_MS;
        }
        struct pollfd fds[3] = {{d->signal_fd, POLLIN, 0},
                                {d->inotify_fd, POLLIN, 0},
                                {d->sched.notify_fd, POLLIN, 0}};
        if (poll(fds, 3, main_timeout(d, next_scan)) < 0 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            return;
        }
        if (fds[0].revents) {
            struct signalfd_siginfo si;
            if (read(d->signal_fd, &si, sizeof si) == (ssize_t)sizeof si) {
                log_info("signal %d: stopping", (int)si.ssi_signo);
                return;
            }
        }
        if (fds[1].revents) main_read_events(d);
        if (fds[2].revents && sched_reap(&d->sched) > 0) d->rescan = 1;
    }
}

static const char *main_args(int argc, char **argv) {
    const char *root = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--root") == 0 && i + 1 < argc)
            root = argv[++i];
        else if (strncmp(argv[i], "--root=", 7) == 0)
            root = argv[i] + 7;
        else
            main_usage();
    }
    return config_default_root(root);
}

int main(int argc, char **argv) {
    static daemon_state d;
    mg_error err;
    char sock[MG_PATH_MAX];
    log_set_component("mg-installer");
    /* A fixed threshold: buffers as large as jobs/index (read and rewritten at every status
     * change) always come from mmap and go back to the system when freed, instead of
     * raising glibc's dynamic threshold and staying in the heaps as the history grows. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    json_object_seed(0); /* before any thread: jansson seeds its hash function once */
    const char *root = main_args(argc, argv);
    d.signal_fd = main_signals();
    if (d.signal_fd < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        log_error("cannot set up signals or libcurl");
        return 1;
    }
    if (config_load(&d.cfg, root, &err) < 0) {
        log_error("%s", err.message);
        return 1;
    }
    if (main_lock(&d) < 0 || main_pidfile(&d) < 0) return 1;
    if (main_watches(&d) < 0 || sched_init(&d.sched, &d.cfg) < 0) {
        log_error("cannot watch the data root: %s", strerror(errno));
        main_pidfile_remove(&d);
        return 1;
    }
    /* jobs/index is derived from the job files: after a crash of the machine it may lag */
    if (job_index_rebuild(&d.cfg, &err) < 0) log_warn("%s", err.message);
    if (metrics_open(&d.cfg, "run/installer.metrics", &err) < 0) log_warn("%s", err.message);
    progress_start(config_path(&d.cfg, sock, "run/nchan.sock"), d.cfg.node_name,
                   d.cfg.redis_url != NULL);
    ratelimit_set(d.cfg.max_download_rate);
    log_info("serving %s (up to %d downloads at once)", d.cfg.root,
             d.cfg.max_parallel_downloads);
    main_gallery(&d);
    /* issue 4: the gallery refresher (gallery_url / galleries sources) */
    refresh_thread *refresher = refresh_start(d.cfg.root, &err);
    if (!refresher) log_error("%s", err.message);
    main_loop(&d);
    refresh_stop(refresher);
    sched_shutdown(&d.sched, MAIN_SHUTDOWN_MS);
    progress_stop(200);
    main_pidfile_remove(&d);
    log_info("stopped");
    fflush(NULL);
    _exit(0); /* runners still stopping end with the process; their partials resume later */
}
