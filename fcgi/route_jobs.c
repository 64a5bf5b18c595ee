/* route_jobs.c - the install queue over HTTP: queueing an install (with the checks that
 * come before it: known model, not installed, enough disk), listing, reading and
 * cancelling jobs. The queue itself is core/job.c; the installer does the work. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "gallery.h"
#include "job.h"
#include "log.h"
#include "registry.h"
#include "router.h"

/* Free space kept on top of the model's size. */
#define ROUTE_JOBS_DISK_MARGIN (256.0 * 1024 * 1024)
/* How long a cancel of a running job waits for the installer to stop it. */
#define ROUTE_JOBS_CANCEL_WAIT_MS 2000
#define ROUTE_JOBS_POLL_MS 50

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

/* 0 when models/ has room for the model plus the margin, else -1 and err 507. */
static int route_jobs_disk_check(const mg_config *cfg, const char *id, json_t *model,
                                 mg_error *err) {
    char dir[MG_PATH_MAX];
    struct statvfs vfs;
    if (statvfs(config_path(cfg, dir, "models"), &vfs) != 0) {
        log_warn("statvfs %s failed: %s; not checking free space", dir, strerror(errno));
        return 0;
    }
    double avail = (double)vfs.f_bavail * (double)vfs.f_frsize;
    double size = route_jobs_model_bytes(model) - route_jobs_partial_bytes(cfg, id, model);
    if (size < 0) size = 0;
    double need = size + ROUTE_JOBS_DISK_MARGIN;
    if (avail >= need) return 0;
    return mg_error_set(err, 507, "insufficient_storage", NULL,
                        "not enough free disk space to install %s: it needs %.2f GB (%.2f GB "
                        "for the file plus a %.2f GB margin) and %s has %.2f GB free",
                        id, need / 1e9, size / 1e9, ROUTE_JOBS_DISK_MARGIN / 1e9, dir,
                        avail / 1e9);
}

/* Answers 202 with the job's id, model and status, and Location. */
static void route_jobs_send_accepted(http_req *req, json_t *job) {
    const char *job_id = json_string_value(json_object_get(job, "job_id"));
    json_t *body = json_pack("{s:O?, s:O?, s:s}", "job_id", json_object_get(job, "job_id"),
                             "model_id", json_object_get(job, "model_id"), "status",
                             job_status_name(job_get_status(job)));
    if (job_id) http_add_header(req, "Location: /api/models/jobs/%s", job_id);
    http_send_json(req, 202, body);
    json_decref(body);
}

/* The queueing itself, once the id is known valid and `model` found. */
static void route_jobs_enqueue(http_req *req, worker_ctx *w, const char *id, json_t *model) {
    mg_error err;
    mg_error_clear(&err);
    json_t *job = job_find_active(&w->cfg, id);
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
        route_jobs_send_accepted(req, job);
    else
        http_send_error(req, &err);
    json_decref(job);
}

void route_jobs_install(http_req *req, worker_ctx *w, const route_seg *param) {
    if (!route_model_id_ok(req, param)) return;
    mg_error err;
    mg_error_clear(&err);
    const search_index *idx = worker_index(w, &err);
    if (!idx) {
        http_send_error(req, &err);
        return;
    }
    json_t *model = search_index_get(idx, param->s);
    if (!model) {
        http_error(req, 404, "model_not_found", "id", "no model with id %s in the gallery",
                   param->s);
        return;
    }
    route_jobs_enqueue(req, w, param->s, model);
    json_decref(model);
}

void route_jobs_list(http_req *req, worker_ctx *w, const route_seg *param) {
    (void)param;
    mg_error err;
    mg_error_clear(&err);
    json_t *jobs = job_list(&w->cfg, &err);
    if (!jobs) {
        http_send_error(req, &err);
        return;
    }
    json_t *out = json_array();
    size_t i;
    json_t *job;
    json_array_foreach(jobs, i, job) json_array_append_new(out, job_public(job));
    json_t *body = json_pack("{s:o}", "jobs", out);
    http_send_json(req, 200, body);
    json_decref(body);
    json_decref(jobs);
}

/* Sends the public fields of `job` (a new reference, consumed) or the error. */
static void route_jobs_send_job(http_req *req, json_t *job, const mg_error *err) {
    if (!job) {
        http_send_error(req, err);
        return;
    }
    json_t *pub = job_public(job);
    http_send_json(req, 200, pub);
    json_decref(pub);
    json_decref(job);
}

void route_jobs_get(http_req *req, worker_ctx *w, const route_seg *param) {
    if (!route_job_id_ok(req, param)) return;
    mg_error err;
    mg_error_clear(&err);
    route_jobs_send_job(req, job_load(&w->cfg, param->s, &err), &err);
}

static long route_jobs_ms_since(const struct timespec *t0) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

json_t *route_jobs_cancel_wait(worker_ctx *w, const char *job_id, mg_error *err) {
    json_t *job = job_cancel(&w->cfg, job_id, err);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (job && !job_status_terminal(job_get_status(job)) &&
           route_jobs_ms_since(&t0) < ROUTE_JOBS_CANCEL_WAIT_MS) {
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

void route_jobs_cancel(http_req *req, worker_ctx *w, const route_seg *param) {
    if (!route_job_id_ok(req, param)) return;
    mg_error err;
    mg_error_clear(&err);
    route_jobs_send_job(req, route_jobs_cancel_wait(w, param->s, &err), &err);
}
