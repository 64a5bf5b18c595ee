/* router.h - maps a request's method and decoded path to a handler, answering 404, 405
 * (with Allow), 400 for undecodable paths and 413 for oversized bodies itself, after the
 * access checks (access.h: 421 foreign Host, 414 long query; for POST/DELETE 403 foreign
 * origin, 503 unreadable settings, 401 without the api_token). Declares the handlers of
 * every route group. */
#ifndef MG_ROUTER_H
#define MG_ROUTER_H

#include <stddef.h>

#include "http.h"
#include "worker.h"

/* One percent-decoded path segment: `s` is NUL-terminated but may hold NUL bytes (%00),
 * so `len` is its true length. Borrowed from the router for the handler's duration. */
typedef struct route_seg {
    const char *s;
    size_t len;
} route_seg;

typedef void (*route_fn)(http_req *req, worker_ctx *w, const route_seg *param);

/* Answers `req`. */
void route_dispatch(http_req *req, worker_ctx *w);

/* Validates a path segment as a model id (400 "invalid_model_id" answered when not).
 * 1 when valid. */
int route_model_id_ok(http_req *req, const route_seg *id);
/* Same for a job id (400 "invalid_job_id"). */
int route_job_id_ok(http_req *req, const route_seg *id);
/* The gallery model named by the path segment `id` (a new reference), or NULL after
 * answering 400 (malformed id), 404 "model_not_found" or the gallery's own error. */
json_t *route_gallery_model(http_req *req, worker_ctx *w, const route_seg *id);

/* route_gallery.c */
void route_gallery_get(http_req *req, worker_ctx *w, const route_seg *param);
void route_gallery_search(http_req *req, worker_ctx *w, const route_seg *param);
void route_gallery_facets(http_req *req, worker_ctx *w, const route_seg *param);

/* route_health.c: GET /api/models/health with the report of every process */
void route_health(http_req *req, worker_ctx *w, const route_seg *param);

/* route_gallery_status.c: GET /api/models/gallery/status, POST /api/models/gallery/refresh */
void route_gallery_status(http_req *req, worker_ctx *w, const route_seg *param);
void route_gallery_refresh(http_req *req, worker_ctx *w, const route_seg *param);

/* route_jobs.c */
void route_jobs_install(http_req *req, worker_ctx *w, const route_seg *param);
void route_jobs_list(http_req *req, worker_ctx *w, const route_seg *param);
void route_jobs_get(http_req *req, worker_ctx *w, const route_seg *param);
void route_jobs_cancel(http_req *req, worker_ctx *w, const route_seg *param);
void route_jobs_pause(http_req *req, worker_ctx *w, const route_seg *param);
void route_jobs_resume(http_req *req, worker_ctx *w, const route_seg *param);

/* Bytes of free disk an install or update of `model` (borrowed) needs: its size less what a
 * partial download of it already holds, plus a 256 MiB margin. */
double route_jobs_disk_need(const mg_config *cfg, const char *id, json_t *model);

/* 0 when models/ has room for route_jobs_disk_need, else -1 and err 507. */
int route_jobs_disk_check(const mg_config *cfg, const char *id, json_t *model, mg_error *err);

/* Answers 202 with the job's id, model, kind, status and this node, and Location. */
void route_jobs_send_accepted(http_req *req, const mg_config *cfg, json_t *job);

/* Answers 409 "job_active": model `id` has the unfinished job `job` (borrowed) of another
 * kind. */
void route_jobs_busy(http_req *req, const char *id, json_t *job);

/* Cancels job `job_id` and waits up to `wait_ms` for the installer to confirm it (or the job
 * to end otherwise). Returns a new reference to the job as it is then, or NULL and err (404,
 * 409 "job_finished"). */
json_t *route_jobs_cancel_wait(worker_ctx *w, const char *job_id, int wait_ms, mg_error *err);

/* route_metrics.c: GET /metrics (nginx lets only 127.0.0.1 through) */
void route_metrics(http_req *req, worker_ctx *w, const route_seg *param);

/* route_registry.c */
void route_registry_list(http_req *req, worker_ctx *w, const route_seg *param);
void route_registry_delete(http_req *req, worker_ctx *w, const route_seg *param);

/* route_lifecycle.c: POST /api/models/{id}/update, POST /api/models/{id}/verify,
 * GET and POST /api/models/cleanup */
void route_lifecycle_update(http_req *req, worker_ctx *w, const route_seg *param);
void route_lifecycle_verify(http_req *req, worker_ctx *w, const route_seg *param);
void route_lifecycle_cleanup_get(http_req *req, worker_ctx *w, const route_seg *param);
void route_lifecycle_cleanup_post(http_req *req, worker_ctx *w, const route_seg *param);

/* route_system.c: GET /api/models/system, GET /api/models/gallery/{id}/preflight */
void route_system_get(http_req *req, worker_ctx *w, const route_seg *param);
void route_system_preflight(http_req *req, worker_ctx *w, const route_seg *param);

#endif
