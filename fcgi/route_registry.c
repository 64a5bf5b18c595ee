/* route_registry.c - the installed models of this node: listing the registry (with file
 * status; the answer names the node) and deleting a model, which first cancels an install
 * of it that is still queued or running. */
#include <stdio.h>
#include <string.h>

#include "job.h"
#include "registry.h"
#include "router.h"

/* How long deleting a model waits for the installer to stop an install of it. */
#define ROUTE_REGISTRY_CANCEL_WAIT_MS 2000

void route_registry_list(http_req *req, worker_ctx *w, const route_seg *param) {
    (void)param;
    mg_error err;
    mg_error_clear(&err);
    json_t *list = registry_list(&w->cfg, &err);
    if (!list) {
        http_send_error(req, &err);
        return;
    }
    json_object_set_new(list, "node", json_string(w->cfg.node_name)); /* whose models */
    http_send_json(req, 200, list);
    json_decref(list);
}

/* Cancels the queued or running job of model `id`, waiting for the installer to stop it.
 * Returns 1 when there was one. */
static int route_registry_cancel_active(worker_ctx *w, const char *id) {
    json_t *active = job_find_active(&w->cfg, id);
    if (!active) return 0;
    const char *job_id = json_string_value(json_object_get(active, "job_id"));
    mg_error err;
    mg_error_clear(&err);
    if (job_id) json_decref(route_jobs_cancel_wait(w, job_id, ROUTE_REGISTRY_CANCEL_WAIT_MS, &err));
    json_decref(active);
    return 1;
}

void route_registry_delete(http_req *req, worker_ctx *w, const route_seg *param) {
    if (!route_model_id_ok(req, param)) return;
    const char *id = param->s;
    int cancelled = route_registry_cancel_active(w, id);
    mg_error err;
    mg_error_clear(&err);
    int file_removed = 0;
    if (registry_remove(&w->cfg, id, NULL, &file_removed, &err) != 0 &&
        !(cancelled && err.status == 404)) {
        if (err.status == 404)
            snprintf(err.message, sizeof err.message,
                     "%s is neither installed nor being installed", id);
        http_send_error(req, &err);
        return;
    }
    json_t *body = json_pack("{s:s, s:b}", "deleted", id, "file_removed", file_removed);
    http_send_json(req, 200, body);
    json_decref(body);
}
