/* main.c - mg-fcgi, the master process: opens the FastCGI unix sockets (run/fcgi.sock for
 * every route, run/fcgi-bulk.sock for the searches nginx sends there, which workers take only
 * when nothing waits on the first), writes run/fcgi.pid, forks the workers (worker.c) and
 * keeps their number up, restarting any that dies (with a back-off when they die young).
 * SIGTERM/SIGINT: stops the workers, removes the pid file and the sockets, exits 0. SIGHUP:
 * restarts the workers. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "config.h"
#include "fs.h"
#include "gallery.h"
#include "log.h"
#include "worker.h"

#define MASTER_WORKERS_MAX 256
#define MASTER_BACKLOG 1024
#define MASTER_STOP_WAIT_S 5.0     /* SIGKILL workers still alive after this */
#define MASTER_YOUNG_S 2.0         /* a worker dying sooner is restarted with a back-off */
#define MASTER_BACKOFF_MAX_S 10.0

typedef struct master_slot {
    pid_t pid;          /* 0: not running */
    double started;     /* monotonic seconds */
    double backoff;     /* current restart delay */
    double respawn_at;  /* when pid == 0: monotonic time of the next start */
    int restarting;     /* asked to stop (SIGHUP): restart at once, no warning */
} master_slot;

typedef struct master_opts {
    const char *root, *socket, *bulk_socket;
    const char *print_setting; /* --print-setting NAME: print it and exit */
    int workers;
} master_opts;

static double master_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void master_usage(FILE *out) {
    fprintf(out, "usage: mg-fcgi [--root DIR] [--socket PATH] [--bulk-socket PATH] [--workers N]\n"
                 "  --root DIR      data root (default: $MG_ROOT, else the repository)\n"
                 "  --socket PATH   FastCGI unix socket (default: ROOT/run/fcgi.sock)\n"
                 "  --bulk-socket PATH  the socket for searches, served when the first has\n"
                 "                  nothing waiting (default: ROOT/run/fcgi-bulk.sock)\n"
                 "  --workers N     worker processes, 1-%d (default: online CPUs)\n"
                 "  --print-setting NAME  print redis_url or node_name as server.json sets\n"
                 "                  it (empty: none) and exit; 1 when server.json is bad\n",
            MASTER_WORKERS_MAX);
}

/* 0, 1 for --help, or -1 on bad arguments. */
static int master_parse_args(int argc, char **argv, master_opts *o) {
    static const struct option longs[] = {{"root", required_argument, NULL, 'r'},
                                          {"socket", required_argument, NULL, 's'},
                                          {"bulk-socket", required_argument, NULL, 'b'},
                                          {"workers", required_argument, NULL, 'w'},
                                          {"print-setting", required_argument, NULL, 'p'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    o->root = NULL;
    o->socket = NULL;
    o->bulk_socket = NULL;
    o->print_setting = NULL;
    o->workers = cpus < 1 ? 1 : cpus > MASTER_WORKERS_MAX ? MASTER_WORKERS_MAX : (int)cpus;
    int c;
    while ((c = getopt_long(argc, argv, "r:s:b:w:p:h", longs, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'r': o->root = optarg; break;
        case 's': o->socket = optarg; break;
        case 'b': o->bulk_socket = optarg; break;
        case 'p': o->print_setting = optarg; break;
        case 'w':
            o->workers = (int)strtol(optarg, &end, 10);
            if (*end || o->workers < 1 || o->workers > MASTER_WORKERS_MAX) {
                fprintf(stderr, "mg-fcgi: --workers must be 1-%d\n", MASTER_WORKERS_MAX);
                return -1;
            }
            break;
        case 'h': return 1;
        default: return -1;
        }
    }
    return optind == argc ? 0 : -1;
}

/* The pid in `pidfile` when it names a live mg-fcgi other than this process, else 0. */
static pid_t master_other_running(const char *pidfile) {
    char *text = fs_read_all(pidfile, NULL, NULL);
    long pid = text ? strtol(text, NULL, 10) : 0;
    free(text);
    if (pid <= 0 || pid == getpid()) return 0;
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/%ld/comm", pid);
    char *comm = fs_read_all(proc, NULL, NULL);
    int same = comm && strcmp(comm, "mg-fcgi\n") == 0;
    free(comm);
    return same ? (pid_t)pid : 0;
}

/* Opens the listening socket at `path` (replacing a stale socket file), mode 0660 (nginx's
 * workers run as the same user under deploy/up, or in its group under the Debian package),
 * non-blocking (workers poll both sockets and may lose a race for a connection).
 * The fd, or -1 (logged). */
static int master_open_socket(const char *path) {
    struct sockaddr_un sun;
    if (strlen(path) >= sizeof sun.sun_path) {
        log_error("socket path %s is longer than %zu bytes", path, sizeof sun.sun_path - 1);
        return -1;
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            log_error("%s exists and is not a socket; not replacing it", path);
            return -1;
        }
        fs_unlink(path, NULL);
    }
    int fd = FCGX_OpenSocket(path, MASTER_BACKLOG);
    if (fd < 0) {
        log_error("cannot listen on %s: %s", path, strerror(errno));
        return -1;
    }
    if (chmod(path, 0660) != 0) log_warn("chmod 0660 %s: %s", path, strerror(errno));
    int flags = fcntl(fd, F_GETFL, 0);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        log_error("cannot make %s non-blocking: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int master_write_pid(const char *pidfile) {
    char text[32];
    int n = snprintf(text, sizeof text, "%d\n", (int)getpid());
    mg_error err;
    mg_error_clear(&err);
    if (fs_write_atomic(pidfile, text, (size_t)n, &err) == 0) return 0;
    log_error("cannot write %s: %s", pidfile, err.message);
    return -1;
}

/* In a new worker: a master killed (even by SIGKILL) takes the worker with it, after the
 * request it is serving. The supervisor then starts a new master, which binds the sockets
 * again. A master that died before this ran is no longer the parent: exit at once. */
static void master_child_of(pid_t master) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != master) _exit(0);
}

static void master_spawn(master_slot *s, mg_config *cfg, const int fds[2]) {
    pid_t master = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        log_error("fork failed: %s; retrying in 1 s", strerror(errno));
        s->respawn_at = master_now() + 1.0;
        return;
    }
    if (pid == 0) {
        master_child_of(master);
        mg_config copy = *cfg; /* the child's own copy of the master's memory */
        exit(worker_run(&copy, fds));
    }
    s->pid = pid;
    s->started = master_now();
}

/* Records the end of worker `pid` (wait status `st`) and schedules its restart. */
static void master_reaped(master_slot *slots, int n, pid_t pid, int st, int stopping) {
    for (int i = 0; i < n; i++) {
        master_slot *s = &slots[i];
        if (s->pid != pid) continue;
        double now = master_now(), lived = now - s->started;
        int restarting = stopping || s->restarting;
        s->restarting = 0;
        if (restarting)
            s->backoff = 0;
        else if (lived < MASTER_YOUNG_S)
            s->backoff = s->backoff > 0 ? s->backoff * 2 : 0.25;
        else
            s->backoff = 0;
        if (s->backoff > MASTER_BACKOFF_MAX_S) s->backoff = MASTER_BACKOFF_MAX_S;
        s->pid = 0;
        s->respawn_at = now + s->backoff;
        if (!restarting) {
            if (WIFSIGNALED(st))
                log_warn("worker %d killed by signal %d after %.1f s; restarting in %.2f s",
                         (int)pid, WTERMSIG(st), lived, s->backoff);
            else
                log_warn("worker %d exited with status %d after %.1f s; restarting in %.2f s",
                         (int)pid, WEXITSTATUS(st), lived, s->backoff);
        }
        return;
    }
}

static int master_live(const master_slot *slots, int n) {
    int live = 0;
    for (int i = 0; i < n; i++) live += slots[i].pid > 0;
    return live;
}

static void master_signal_all(master_slot *slots, int n, int sig) {
    for (int i = 0; i < n; i++)
        if (slots[i].pid > 0) kill(slots[i].pid, sig);
}

static void master_reap_all(master_slot *slots, int n, int stopping) {
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) master_reaped(slots, n, pid, st, stopping);
}

/* Waits for a signal of `set` up to `seconds`. The signal, or 0 on timeout. */
static int master_wait(const sigset_t *set, double seconds) {
    if (seconds < 0) seconds = 0;
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    int sig = sigtimedwait(set, NULL, &ts);
    return sig > 0 ? sig : 0;
}

/* Stops every worker: SIGTERM, then SIGKILL for those still alive after a while. */
static void master_stop(master_slot *slots, int n, const sigset_t *set) {
    master_signal_all(slots, n, SIGTERM);
    double deadline = master_now() + MASTER_STOP_WAIT_S;
    master_reap_all(slots, n, 1);
    while (master_live(slots, n) > 0 && master_now() < deadline) {
        master_wait(set, deadline - master_now());
        master_reap_all(slots, n, 1);
    }
    if (master_live(slots, n) == 0) return;
    log_warn("%d workers still running after %.0f s; killing them", master_live(slots, n),
             MASTER_STOP_WAIT_S);
    master_signal_all(slots, n, SIGKILL);
    for (int i = 0; i < n; i++)
        if (slots[i].pid > 0) waitpid(slots[i].pid, NULL, 0);
}

/* Keeps `n` workers running until SIGTERM or SIGINT. */
static void master_supervise(master_slot *slots, int n, mg_config *cfg, const int fds[2],
                             const sigset_t *set) {
    for (;;) {
        double now = master_now(), next = now + 3600;
        for (int i = 0; i < n; i++) {
            if (slots[i].pid > 0) continue;
            if (slots[i].respawn_at <= now) master_spawn(&slots[i], cfg, fds);
            if (slots[i].pid == 0 && slots[i].respawn_at < next) next = slots[i].respawn_at;
        }
        int sig = master_wait(set, next - master_now());
        if (sig == SIGTERM || sig == SIGINT) {
            log_info("signal %d: stopping %d workers", sig, master_live(slots, n));
            return;
        }
        if (sig == SIGHUP) {
            log_info("SIGHUP: restarting the workers");
            for (int i = 0; i < n; i++) slots[i].restarting = slots[i].pid > 0;
            master_signal_all(slots, n, SIGTERM);
        }
        master_reap_all(slots, n, 0);
    }
}

static void master_on_chld(int sig) { (void)sig; }

#ifdef MG_SANITIZE
/* Sanitizer builds: LeakSanitizer checks at exit by attaching to this process with ptrace,
 * whose SIGSTOP a SIGCONT cancels, and then waits for that stop forever. runit sends SIGCONT
 * right after SIGTERM, so a master that stops fast could hang in the check. SIGCONT is kept
 * blocked (its continuing still acts); before exiting, this waits up to 0.5 s for it. */
static void master_settle(void) {
    sigset_t cont;
    sigemptyset(&cont);
    sigaddset(&cont, SIGCONT);
    struct timespec ts = {0, 500 * 1000 * 1000};
    sigtimedwait(&cont, NULL, &ts);
}
#endif

/* Blocks the signals the master waits for (workers unblock them). */
static void master_signals(sigset_t *set) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = master_on_chld;
    sigaction(SIGCHLD, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGCHLD);
    sigprocmask(SIG_BLOCK, set, NULL);
#ifdef MG_SANITIZE
    sigset_t cont;
    sigemptyset(&cont);
    sigaddset(&cont, SIGCONT);
    sigprocmask(SIG_BLOCK, &cont, NULL);
#endif
}

/* Loads the config and brings the gallery cache up to date. A broken server.json still
 * starts the workers, on the defaults, refusing changes (503) until it is fixed; the cache
 * is then left to the installer. 0, or -1 (logged). */
static int master_prepare(mg_config *cfg, const char *root) {
    mg_error err;
    mg_error_clear(&err);
    int rc = config_load_or_defaults(cfg, config_default_root(root), &err);
    if (rc < 0) {
        log_error("%s", err.message);
        return -1;
    }
    if (rc > 0) {
        log_error("%s (serving reads only, changes get 503 until it is fixed)", err.message);
        return 0;
    }
    mg_error_clear(&err);
    if (gallery_cache_ensure(cfg, &err) != 0)
        log_error("gallery cache: %s (serving 503 until it is fixed)", err.message);
    return 0;
}

/* The socket paths: the options', else ROOT/run/fcgi.sock and ROOT/run/fcgi-bulk.sock. */
static void master_socket_paths(const master_opts *o, const mg_config *cfg,
                                char sock[MG_PATH_MAX], char bulk[MG_PATH_MAX]) {
    if (o->socket)
        snprintf(sock, MG_PATH_MAX, "%s", o->socket);
    else
        config_path(cfg, sock, "run/fcgi.sock");
    if (o->bulk_socket)
        snprintf(bulk, MG_PATH_MAX, "%s", o->bulk_socket);
    else
        config_path(cfg, bulk, "run/fcgi-bulk.sock");
}

/* Opens both listening sockets into fds. 0, or -1 (logged; nothing left open). */
static int master_open_sockets(const char *sock, const char *bulk, int fds[2]) {
    fds[0] = master_open_socket(sock);
    fds[1] = fds[0] < 0 ? -1 : master_open_socket(bulk);
    if (fds[1] >= 0) return 0;
    if (fds[0] >= 0) close(fds[0]);
    return -1;
}

/* --print-setting: what deploy/up renders into nginx.conf, checked as the processes check it.
 * The exit status. */
static int master_print_setting(const char *root, const char *name) {
    mg_config cfg;
    mg_error err;
    if (config_load(&cfg, config_default_root(root), &err) != 0) {
        fprintf(stderr, "mg-fcgi: %s\n", err.message);
        return 1;
    }
    int rc = 0;
    if (strcmp(name, "redis_url") == 0) {
        printf("%s\n", cfg.redis_url ? cfg.redis_url : "");
    } else if (strcmp(name, "node_name") == 0) {
        printf("%s\n", cfg.node_name);
    } else {
        fprintf(stderr, "mg-fcgi: --print-setting takes redis_url or node_name\n");
        rc = 2;
    }
    config_free(&cfg);
    return rc;
}

int main(int argc, char **argv) {
    log_set_component("mg-fcgi");
    master_opts o;
    int rc = master_parse_args(argc, argv, &o);
    if (rc != 0) {
        master_usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? 0 : 2;
    }
    if (o.print_setting) return master_print_setting(o.root, o.print_setting);
    mg_config cfg;
    if (master_prepare(&cfg, o.root) != 0) return 1;
    char pidfile[MG_PATH_MAX], sock[MG_PATH_MAX], bulk[MG_PATH_MAX];
    config_path(&cfg, pidfile, "run/fcgi.pid");
    master_socket_paths(&o, &cfg, sock, bulk);
    pid_t other = master_other_running(pidfile);
    if (other) {
        log_error("mg-fcgi %d is already running for %s (%s)", (int)other, cfg.root, pidfile);
        config_free(&cfg);
        return 1;
    }
    sigset_t set;
    master_signals(&set);
    FCGX_Init();
    int fds[2];
    if (master_open_sockets(sock, bulk, fds) != 0 || master_write_pid(pidfile) != 0) {
        config_free(&cfg);
        return 1;
    }
    log_info("listening on %s and %s with %d workers, data root %s", sock, bulk, o.workers,
             cfg.root);
    master_slot *slots = calloc((size_t)o.workers, sizeof *slots);
    if (!slots) return 1;
    master_supervise(slots, o.workers, &cfg, fds, &set);
    master_stop(slots, o.workers, &set);
    if (master_other_running(pidfile) == 0) fs_unlink(pidfile, NULL);
    fs_unlink(sock, NULL);
    fs_unlink(bulk, NULL);
    close(fds[0]);
    close(fds[1]);
    free(slots);
    config_free(&cfg);
    log_info("stopped");
#ifdef MG_SANITIZE
    master_settle();
#endif
    return 0;
}
