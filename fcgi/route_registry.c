/* route_registry.c - the installed models of this node: listing the registry (with file
 * status, partial downloads, whether the gallery has a newer file; the answer names the
 * node) and deleting a model (its entry, its file and any partial download of it), which
 * first cancels a job of it that is still unfinished. */
#include <stdio.h>
#include <string.h>

#include "job.h"
#include "registry.h"
#include "router.h"

/* How long deleting a model waits for the installer to stop an install of it. */
#define ROUTE_REGISTRY_CANCEL_WAIT_MS 2000

/* Adds latest_checksum (the gallery's, or null when the gallery does not have the model or
 * cannot be read) and update_available (the entry records another checksum) to each item of
 * `models` (borrowed). */
static void route_registry_updates(worker_ctx *w, json_t *models) {
    const search_index *idx = worker_index(w, NULL);
    const char *key;
    json_t *item;
    json_object_foreach(models, key, item) {
        const char *status = json_string_value(json_object_get(item, "status"));
        json_t *model = idx ? search_index_get(idx, key) : NULL;
        json_t *latest = json_object_get(model, "checksum");
        json_t *have = json_object_get(item, "checksum");
        int entry = status && strcmp(status, "unregistered") != 0 && strcmp(status, "partial") != 0;
        json_object_set_new(item, "latest_checksum", json_is_string(latest) ? json_copy(latest)
                                                                             : json_null());
        json_object_set_new(item, "update_available",
                            json_boolean(entry && json_is_string(latest) && json_is_string(have) &&
                                         !json_equal(latest, have)));
        json_decref(model);
    }
}

void route_registry_list(http_req *req, worker_ctx *w, const route_seg *param) {
    (void)param;
    mg_error err;
    mg_error_clear(&err);
    json_t *active = job_active_models(&w->cfg);
    json_t *list = registry_list(&w->cfg, active, &err);
    json_decref(active);
    if (list) route_registry_updates(w, json_object_get(list, "models"));
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
    int partial_removed = registry_remove_partial(&w->cfg, id);
    if (registry_remove(&w->cfg, id, NULL, &file_removed, &err) != 0 &&
        !((cancelled || partial_removed) && err.status == 404)) {
        if (err.status == 404)
            snprintf(err.message, sizeof err.message,
                     "%s is neither installed nor being installed", id);
        http_send_error(req, &err);
        return;
    }
    json_t *body = json_pack("{s:s, s:b}", "deleted", id, "file_removed",
                             file_removed || partial_removed);
    http_send_json(req, 200, body);
    json_decref(body);
}
