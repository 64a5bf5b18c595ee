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

/* Cancels job `job_id` and waits up to `wait_ms` for the installer to confirm it (or the job
 * to end otherwise). Returns a new reference to the job as it is then, or NULL and err (404,
 * 409 "job_finished"). */
json_t *route_jobs_cancel_wait(worker_ctx *w, const char *job_id, int wait_ms, mg_error *err);

/* route_metrics.c: GET /metrics (nginx lets only 127.0.0.1 through) */
void route_metrics(http_req *req, worker_ctx *w, const route_seg *param);

/* route_registry.c */
void route_registry_list(http_req *req, worker_ctx *w, const route_seg *param);
void route_registry_delete(http_req *req, worker_ctx *w, const route_seg *param);

#endif
