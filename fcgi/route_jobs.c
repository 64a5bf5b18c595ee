/* route_jobs.c - the install queue over HTTP: queueing an install (with the checks that
 * come before it: known model, not installed, enough disk), listing (pages of jobs/index,
 * kept parsed between requests while the file is unchanged), reading, cancelling, pausing
 * and resuming jobs. The queue itself is core/job.c; the installer does the work. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "gallery.h"
#include "job.h"
#include "job_index.h"
#include "log.h"
#include "percent.h"
#include "registry.h"
#include "router.h"

/* Free space kept on top of the model's size. */
#define ROUTE_JOBS_DISK_MARGIN (256.0 * 1024 * 1024)
/* How long a pause waits for the installer to stop a running download. */
#define ROUTE_JOBS_PAUSE_WAIT_MS 2000
/* How long DELETE /api/models/jobs/{id} waits for the installer to confirm a cancel. */
#define ROUTE_JOBS_CANCEL_WAIT_MS 1000
#define ROUTE_JOBS_POLL_MS 50
#define ROUTE_JOBS_LIMIT_DEFAULT 100
#define ROUTE_JOBS_LIMIT_MAX 1000
#define ROUTE_JOBS_OFFSET_MAX 1000000000L

/* This worker's parsed jobs/index, reused while the file is unchanged (one stat). */
static job_index *route_jobs_ix;

/* Bytes the model's file will take: sizeBytes when the gallery has it, else sizeGb. */
static double route_jobs_model_bytes(json_t *model) {
    json_t *bytes = json_object_get(model, "sizeBytes");
    if (json_is_integer(bytes) && json_integer_value(bytes) > 0)
        return (double)json_integer_value(bytes);
    return json_number_value(json_object_get(model, "sizeGb")) * 1e9;
}

/* Bytes already downloaded for `id` by an earlier attempt (models/.partial). */
static double route_jobs_partial_bytes(const mg_config *cfg, const char *id, json_t *model) {
    char ext[16], rel[256], path[MG_PATH_MAX];
    gallery_model_ext(json_string_value(json_object_get(model, "downloadUrl")), ext);
    snprintf(rel, sizeof rel, "models/.partial/%s%s.part", id, ext);
    struct stat st;
    return stat(config_path(cfg, path, rel), &st) == 0 ? (double)st.st_size : 0.0;
}

double route_jobs_disk_need(const mg_config *cfg, const char *id, json_t *model) {
    double size = route_jobs_model_bytes(model) - route_jobs_partial_bytes(cfg, id, model);
    return (size < 0 ? 0 : size) + ROUTE_JOBS_DISK_MARGIN;
}

int route_jobs_disk_check(const mg_config *cfg, const char *id, json_t *model, mg_error *err) {
    char dir[MG_PATH_MAX];
    struct statvfs vfs;
    if (statvfs(config_path(cfg, dir, "models"), &vfs) != 0) {
        log_warn("statvfs %s failed: %s; not checking free space", dir, strerror(errno));
        return 0;
    }
    double avail = (double)vfs.f_bavail * (double)vfs.f_frsize;
    double need = route_jobs_disk_need(cfg, id, model);
    if (avail >= need) return 0;
    return mg_error_set(err, 507, "insufficient_storage", NULL,
                        "not enough free disk space to install %s: it needs %.2f GB (%.2f GB "
                        "for the file plus a %.2f GB margin) and %s has %.2f GB free",
                        id, need / 1e9, (need - ROUTE_JOBS_DISK_MARGIN) / 1e9,
                        ROUTE_JOBS_DISK_MARGIN / 1e9, dir, avail / 1e9);
}

void route_jobs_send_accepted(http_req *req, const mg_config *cfg, json_t *job) {
    const char *job_id = json_string_value(json_object_get(job, "job_id"));
    json_t *body = json_pack("{s:O?, s:O?, s:s, s:s, s:s}", "job_id",
                             json_object_get(job, "job_id"), "model_id",
                             json_object_get(job, "model_id"), "kind", job_kind(job), "status",
                             job_status_name(job_get_status(job)), "node", cfg->node_name);
    if (job_id) http_add_header(req, "Location: /api/models/jobs/%s", job_id);
    http_send_json(req, 202, body);
    json_decref(body);
}

void route_jobs_busy(http_req *req, const char *id, json_t *job) {
    http_error(req, 409, "job_active", "id",
               "%s has an unfinished %s job (%s, %s); wait for it, or cancel it first", id,
               job_kind(job), json_string_value(json_object_get(job, "job_id")),
               job_status_name(job_get_status(job)));
}

/* The queueing itself, once the id is known valid and `model` found. */
static void route_jobs_enqueue(http_req *req, worker_ctx *w, const char *id, json_t *model) {
    mg_error err;
    mg_error_clear(&err);
    json_t *job = job_find_active(&w->cfg, id);
    if (job && strcmp(job_kind(job), "install") != 0) {
        route_jobs_busy(req, id, job);
        json_decref(job);
        return;
    }
    if (!job && registry_is_installed(&w->cfg, id)) {
        http_error(req, 409, "already_installed", "id",
                   "%s is already installed; DELETE /api/models/%s first to reinstall it", id,
                   id);
        return;
    }
    if (!job && route_jobs_disk_check(&w->cfg, id, model, &err) != 0) {
        http_send_error(req, &err);
        return;
    }
    int created = 0;
    if (!job) job = job_enqueue(&w->cfg, model, &created, &err);
    if (job)
        route_jobs_send_accepted(req, &w->cfg, job);
    else
        http_send_error(req, &err);
    json_decref(job);
}

void route_jobs_install(http_req *req, worker_ctx *w, const route_seg *param) {
    json_t *model = route_gallery_model(req, w, param);
    if (!model) return;
    route_jobs_enqueue(req, w, param->s, model);
    json_decref(model);
}

/* A page request: ?status=&limit=&offset= (unknown parameters ignored, the last of a
 * repeated one wins, an empty status ignored). */
typedef struct route_jobs_page {
    int status; /* < 0: any */
    long limit, offset;
} route_jobs_page;

/* Parses the integer `v` (`len` bytes, digits only) into *out within lo..hi. 0, or -1 and
 * err 400 naming `param`. */
static int route_jobs_integer(const char *param, const char *v, size_t len, long lo, long hi,
                              long *out, mg_error *err) {
    errno = 0;
    long n = len && len < 12 && strspn(v, "0123456789") == len ? strtol(v, NULL, 10) : -1;
    if (n < lo || n > hi || errno)
        return mg_error_set(err, 400, "invalid_parameter", param,
                            "%s must be an integer from %ld to %ld", param, lo, hi);
    *out = n;
    return 0;
}

/* Sets pg->status from the decoded value `v` (`len` bytes; empty: any). 0, or -1 and err. */
static int route_jobs_status(route_jobs_page *pg, const char *v, size_t len, mg_error *err) {
    job_status st;
    pg->status = -1;
    if (len == 0) return 0;
    if (strlen(v) == len && job_status_parse(v, &st) == 0) {
        pg->status = (int)st;
        return 0;
    }
    return mg_error_set(err, 400, "invalid_parameter", "status",
                        "status must be one of queued, downloading, verifying, cancelling, "
                        "paused, installed, failed, cancelled");
}

static const char *const route_jobs_params[] = {"status", "limit", "offset"};
#define ROUTE_JOBS_NPARAMS 3

/* Reads parameter `i` of the query string `qs` into `pg` when given. 0, or -1 and err. */
static int route_jobs_apply(route_jobs_page *pg, const char *qs, int i, mg_error *err) {
    const char *name = route_jobs_params[i];
    char *v;
    size_t n;
    int rc = percent_query_get(qs, name, &v, &n);
    if (rc == -2) return mg_error_set(err, 500, "internal_error", NULL, "out of memory");
    if (rc < 0)
        return mg_error_set(err, 400, "invalid_parameter", name,
                            "%s is not valid percent-encoding", name);
    if (rc == 0) return 0;
    if (i == 0)
        rc = route_jobs_status(pg, v, n, err);
    else if (i == 1)
        rc = route_jobs_integer(name, v, n, 1, ROUTE_JOBS_LIMIT_MAX, &pg->limit, err);
    else
        rc = route_jobs_integer(name, v, n, 0, ROUTE_JOBS_OFFSET_MAX, &pg->offset, err);
    free(v);
    return rc;
}

/* Parses the query string of `req` into `pg`. 0, or -1 and err. */
static int route_jobs_parse_page(const http_req *req, route_jobs_page *pg, mg_error *err) {
    pg->status = -1;
    pg->limit = ROUTE_JOBS_LIMIT_DEFAULT;
    pg->offset = 0;
    int rc = 0;
    for (int i = 0; i < ROUTE_JOBS_NPARAMS && rc == 0; i++)
        rc = route_jobs_apply(pg, req->query, i, err);
    return rc;
}

/* This worker's index, current with jobs/index. Borrowed, or NULL and err. */
static const job_index *route_jobs_index(worker_ctx *w, mg_error *err) {
    char path[MG_PATH_MAX];
    struct stat st;
    if (route_jobs_ix && stat(config_path(&w->cfg, path, "jobs/index"), &st) == 0 &&
        job_index_is_current(route_jobs_ix, &st))
        return route_jobs_ix;
    job_index *ix = job_index_load(&w->cfg, err);
    if (!ix) return NULL;
    job_index_free(route_jobs_ix);
    route_jobs_ix = ix;
    return ix;
}

static int route_jobs_write(void *ctx, const char *data, size_t len) {
    return http_buf_append(ctx, data, len);
}

void route_jobs_list(http_req *req, worker_ctx *w, const route_seg *param) {
    (void)param;
    mg_error err;
    mg_error_clear(&err);
    route_jobs_page pg;
    if (route_jobs_parse_page(req, &pg, &err) != 0) {
        http_send_error(req, &err);
        return;
    }
    const job_index *ix = route_jobs_index(w, &err);
    w->out.len = 0;
    if (ix && job_page_write(&w->cfg, ix, pg.status, (size_t)pg.offset, (size_t)pg.limit,
                             route_jobs_write, &w->out) == 0)
        http_send_raw(req, 200, "application/json", w->out.data, w->out.len);
    else if (ix)
        http_error(req, 500, "internal_error", NULL, "out of memory");
    else
        http_send_error(req, &err);
}

/* Sends the public fields of `job` (a new reference, consumed) or the error. */
static void route_jobs_send_job(http_req *req, const mg_config *cfg, json_t *job,
                                const mg_error *err) {
    if (!job) {
        http_send_error(req, err);
        return;
    }
    json_t *pub = job_view(cfg, job);
    http_send_json(req, 200, pub);
    json_decref(pub);
    json_decref(job);
}

void route_jobs_get(http_req *req, worker_ctx *w, const route_seg *param) {
    if (!route_job_id_ok(req, param)) return;
    mg_error err;
    mg_error_clear(&err);
    route_jobs_send_job(req, &w->cfg, job_load(&w->cfg, param->s, &err), &err);
}

static long route_jobs_ms_since(const struct timespec *t0) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

json_t *route_jobs_cancel_wait(worker_ctx *w, const char *job_id, int wait_ms, mg_error *err) {
    json_t *job = job_cancel(&w->cfg, job_id, err);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (job && !job_status_terminal(job_get_status(job)) &&
           route_jobs_ms_since(&t0) < wait_ms) {
        struct timespec pause = {0, ROUTE_JOBS_POLL_MS * 1000000L};
        nanosleep(&pause, NULL);
        json_t *now = job_load(&w->cfg, job_id, NULL);
        if (now) {
            json_decref(job);
            job = now;
        }
    }
    return job;
}

/* 200 cancelled when the installer confirmed the cancel in time, 202 cancelling otherwise,
 * 409 when the job ended otherwise first. */
void route_jobs_cancel(http_req *req, worker_ctx *w, const route_seg *param) {
    if (!route_job_id_ok(req, param)) return;
    mg_error err;
    mg_error_clear(&err);
    json_t *job = route_jobs_cancel_wait(w, param->s, ROUTE_JOBS_CANCEL_WAIT_MS, &err);
    job_status st = job ? job_get_status(job) : JOB_FAILED;
    if (job && job_status_terminal(st) && st != JOB_CANCELLED) {
        http_error(req, 409, "job_finished", "job_id",
                   "job '%s' ended %s before the cancel took effect", param->s,
                   job_status_name(st));
        json_decref(job);
        return;
    }
    if (!job) {
        http_send_error(req, &err);
        return;
    }
    json_t *pub = job_view(&w->cfg, job);
    http_send_json(req, st == JOB_CANCELLED ? 200 : 202, pub);
    json_decref(pub);
    json_decref(job);
}

/* 1 when the job `job_id` is no longer being paused: the installer removed the marker, or
 * the job ended. */
static int route_jobs_pause_settled(worker_ctx *w, const char *job_id, json_t **job) {
    json_t *now = job_load(&w->cfg, job_id, NULL);
    if (now) {
        json_decref(*job);
        *job = now;
    }
    return !job_pause_requested(&w->cfg, job_id) || job_status_terminal(job_get_status(*job));
}

/* 200 with the job paused; a running download is given up to ROUTE_JOBS_PAUSE_WAIT_MS to stop
 * (it ends paused even when the installer is down). 409 when it ended otherwise first. */
void route_jobs_pause(http_req *req, worker_ctx *w, const route_seg *param) {
    if (!route_job_id_ok(req, param)) return;
    mg_error err;
    mg_error_clear(&err);
    json_t *job = job_pause(&w->cfg, param->s, &err);
    if (!job) {
        http_send_error(req, &err);
        return;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!route_jobs_pause_settled(w, param->s, &job) &&
           route_jobs_ms_since(&t0) < ROUTE_JOBS_PAUSE_WAIT_MS) {
        struct timespec pause = {0, ROUTE_JOBS_POLL_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
    job_status st = job_get_status(job);
    if (job_status_terminal(st)) {
        http_error(req, 409, "job_finished", "job_id", "job '%s' ended %s before it could pause",
                   param->s, job_status_name(st));
    } else {
        json_t *pub = job_view(&w->cfg, job);
        http_send_json(req, 200, pub);
        json_decref(pub);
    }
    json_decref(job);
}

/* 202 with the job queued again (Location: the job). */
void route_jobs_resume(http_req *req, worker_ctx *w, const route_seg *param) {
    if (!route_job_id_ok(req, param)) return;
    mg_error err;
    mg_error_clear(&err);
    json_t *job = job_resume(&w->cfg, param->s, &err);
    if (!job) {
        http_send_error(req, &err);
        return;
    }
    json_t *pub = job_view(&w->cfg, job);
    http_add_header(req, "Location: /api/models/jobs/%s", param->s);
    http_send_json(req, 202, pub);
    json_decref(pub);
    json_decref(job);
}
