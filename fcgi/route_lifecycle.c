/* route_lifecycle.c - what happens to installed models after the install: updates to the
 * gallery's newer file (an update job), verification of the file on disk (a verify job),
 * and the cleanup of leftovers (core/cleanup.c; the answers name this node). The jobs run in
 * the installer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "job.h"
#include "percent.h"
#include "registry.h"
#include "router.h"

/* The registry entry of `id` (a new reference), or NULL after answering 404. */
static json_t *route_lifecycle_entry(http_req *req, worker_ctx *w, const char *id) {
    mg_error err;
    mg_error_clear(&err);
    json_t *entry = registry_get(&w->cfg, id, &err);
    if (!entry) http_send_error(req, &err);
    return entry;
}

/* The status of the registry entry `entry` (borrowed) of the model. */
static const char *route_lifecycle_status(worker_ctx *w, json_t *entry) {
    char abs[MG_PATH_MAX];
    return registry_entry_status(entry, registry_entry_file(&w->cfg, entry, abs) ? abs : NULL);
}

/* Queues a job of `kind` for `model` (borrowed): 202 with the job, also when one of that
 * kind is already unfinished; 409 "job_active" when one of another kind is. */
static void route_lifecycle_queue(http_req *req, worker_ctx *w, const char *id, json_t *model,
                                  const char *kind) {
    mg_error err;
    mg_error_clear(&err);
    int created = 0;
    json_t *job = job_enqueue_kind(&w->cfg, model, kind, &created, &err);
    if (!job)
        http_send_error(req, &err);
    else if (!created && strcmp(job_kind(job), kind) != 0)
        route_jobs_busy(req, id, job);
    else
        route_jobs_send_accepted(req, &w->cfg, job);
    json_decref(job);
}

/* An unfinished job of `id` of another kind than `kind`: answers 409 and returns 1. */
static int route_lifecycle_busy(http_req *req, worker_ctx *w, const char *id, const char *kind) {
    json_t *job = job_find_active(&w->cfg, id);
    int busy = job && strcmp(job_kind(job), kind) != 0;
    if (busy) route_jobs_busy(req, id, job);
    json_decref(job);
    return busy;
}

/* The gallery model `id` (a new reference), or NULL after answering 404 or 503. */
static json_t *route_lifecycle_model(http_req *req, worker_ctx *w, const char *id) {
    mg_error err;
    mg_error_clear(&err);
    const search_index *idx = worker_index(w, &err);
    if (!idx) {
        http_send_error(req, &err);
        return NULL;
    }
    json_t *model = search_index_get(idx, id);
    if (!model)
        http_error(req, 404, "model_not_found", "id",
                   "%s is not in the gallery any more, so there is no newer file to update to",
                   id);
    return model;
}

/* 202 and an update job; 409 up_to_date when the installed file is the gallery's and
 * intact (a corrupt or missing file is downloaded again). */
static void route_lifecycle_update_model(http_req *req, worker_ctx *w, const char *id,
                                         json_t *entry, json_t *model) {
    mg_error err;
    mg_error_clear(&err);
    const char *have = json_string_value(json_object_get(entry, "checksum"));
    const char *want = json_string_value(json_object_get(model, "checksum"));
    const char *status = route_lifecycle_status(w, entry);
    if (route_lifecycle_busy(req, w, id, "update")) return;
    if (have && want && strcmp(have, want) == 0 && strcmp(status, "installed") == 0) {
        http_error(req, 409, "up_to_date", "id",
                   "%s is up to date: the installed file has the gallery's checksum %s", id,
                   want);
        return;
    }
    json_t *active = job_find_active(&w->cfg, id);
    int check = active == NULL; /* a running update was checked when it was queued */
    json_decref(active);
    if (check && route_jobs_disk_check(&w->cfg, id, model, &err) != 0) {
        http_send_error(req, &err);
        return;
    }
    route_lifecycle_queue(req, w, id, model, "update");
}

void route_lifecycle_update(http_req *req, worker_ctx *w, const route_seg *param) {
    if (!route_model_id_ok(req, param)) return;
    json_t *entry = route_lifecycle_entry(req, w, param->s);
    json_t *model = entry ? route_lifecycle_model(req, w, param->s) : NULL;
    if (model) route_lifecycle_update_model(req, w, param->s, entry, model);
    json_decref(model);
    json_decref(entry);
}

/* The checksum a verification compares with: the entry's, else (an entry of an older
 * version) the gallery's. NULL after answering 409 when there is none. Borrowed from
 * `entry` or `*model` (a new reference the caller frees, or NULL). */
static const char *route_lifecycle_checksum(http_req *req, worker_ctx *w, const char *id,
                                            json_t *entry, json_t **model) {
    const char *sum = json_string_value(json_object_get(entry, "checksum"));
    *model = NULL;
    if (sum) return sum;
    const search_index *idx = worker_index(w, NULL);
    *model = idx ? search_index_get(idx, id) : NULL;
    sum = json_string_value(json_object_get(*model, "checksum"));
    if (!sum)
        http_error(req, 409, "no_checksum", "id",
                   "%s was installed without a recorded checksum and is not in the gallery: "
                   "there is nothing to verify it against", id);
    return sum;
}

/* 202 and a verify job of the entry's file. */
static void route_lifecycle_verify_entry(http_req *req, worker_ctx *w, const char *id,
                                         json_t *entry) {
    char abs[MG_PATH_MAX];
    struct stat st;
    if (!registry_entry_file(&w->cfg, entry, abs) || stat(abs, &st) != 0 ||
        !S_ISREG(st.st_mode)) {
        http_error(req, 409, "file_missing", "id",
                   "the file of %s is missing; delete the entry and install the model again",
                   id);
        return;
    }
    if (route_lifecycle_busy(req, w, id, "verify")) return;
    json_t *gallery_model = NULL;
    const char *sum = route_lifecycle_checksum(req, w, id, entry, &gallery_model);
    if (sum) {
        json_t *spec = json_pack("{s:s,s:O?,s:s,s:O,s:I}", "id", id, "name",
                                 json_object_get(entry, "name"), "checksum", sum, "path",
                                 json_object_get(entry, "path"), "sizeBytes",
                                 (json_int_t)st.st_size);
        route_lifecycle_queue(req, w, id, spec, "verify");
        json_decref(spec);
    }
    json_decref(gallery_model);
}

void route_lifecycle_verify(http_req *req, worker_ctx *w, const route_seg *param) {
    if (!route_model_id_ok(req, param)) return;
    json_t *entry = route_lifecycle_entry(req, w, param->s);
    if (entry) route_lifecycle_verify_entry(req, w, param->s, entry);
    json_decref(entry);
}

void route_lifecycle_cleanup_get(http_req *req, worker_ctx *w, const route_seg *param) {
    (void)param;
    mg_error err;
    mg_error_clear(&err);
    json_t *body = cleanup_scan(&w->cfg, &err);
    if (body) json_object_set_new(body, "node", json_string(w->cfg.node_name));
    if (body)
        http_send_json(req, 200, body);
    else
        http_send_error(req, &err);
    json_decref(body);
}

/* Reads ?include= (the last one given; empty ignored): 1 for "unregistered", 0 when
 * absent, -1 after answering 400 for anything else. */
static int route_lifecycle_include(http_req *req) {
    char *v;
    size_t n;
    int rc = percent_query_get(req->query, "include", &v, &n);
    int include = rc == 1 && n > 0 ? (n == 12 && memcmp(v, "unregistered", 12) == 0 ? 1 : -1)
                  : rc < 0         ? -1
                                   : 0;
    free(v);
    if (include >= 0) return include;
    http_error(req, 400, "invalid_parameter", "include",
               "include takes one value, \"unregistered\" (remove files of models/llm/ that no "
               "entry names too)");
    return -1;
}

void route_lifecycle_cleanup_post(http_req *req, worker_ctx *w, const route_seg *param) {
    (void)param;
    mg_error err;
    mg_error_clear(&err);
    int include = route_lifecycle_include(req);
    if (include < 0) return;
    json_t *body = cleanup_run(&w->cfg, include, &err);
    if (body) json_object_set_new(body, "node", json_string(w->cfg.node_name));
    if (body)
        http_send_json(req, 200, body);
    else
        http_send_error(req, &err);
    json_decref(body);
}
