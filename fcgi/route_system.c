/* route_system.c - the machine the models run on: its profile (GET /api/models/system) and
 * the checks before an install (GET /api/models/gallery/{id}/preflight: disk, fit, already
 * installed), which queue nothing. Both name this node. core/machine.c does the detection
 * and the fit. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "job.h"
#include "machine.h"
#include "registry.h"
#include "router.h"

void route_system_get(http_req *req, worker_ctx *w, const route_seg *param) {
    (void)param;
    machine_profile m;
    machine_detect(&w->cfg, &m);
    json_t *body = machine_json(&m);
    json_object_set_new(body, "node", json_string(w->cfg.node_name));
    http_send_json(req, 200, body);
    json_decref(body);
}

/* Appends {"code", "message"} to `reasons`. */
static void route_system_reason(json_t *reasons, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void route_system_reason(json_t *reasons, const char *code, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_array_append_new(reasons, json_pack("{s:s,s:s}", "code", code, "message", msg));
}

/* The reason a model of `need` does not fit `m`. */
static void route_system_too_large(json_t *reasons, const machine_profile *m,
                                   const machine_need *need) {
    route_system_reason(reasons, "too_large",
                        "it needs about %.1f GB of memory%s; this machine has %.1f GB of RAM "
                        "and %.1f GB of VRAM",
                        need->ram_bytes / 1e9, need->estimated ? " (estimated from its size)" : "",
                        (double)m->ram_bytes / 1e9, (double)m->vram_bytes / 1e9);
}

/* The preflight answer for `model` (borrowed). New reference. */
static json_t *route_system_check(worker_ctx *w, const char *id, json_t *model) {
    machine_profile m;
    machine_detect(&w->cfg, &m);
    machine_need need = machine_need_of_model(model);
    machine_fit_class fit = machine_fit(&m, &need);
    double needs = route_jobs_disk_need(&w->cfg, id, model);
    int disk_ok = m.disk_free_bytes < 0 || (double)m.disk_free_bytes >= needs;
    int installed = registry_is_installed(&w->cfg, id);
    json_t *reasons = json_array();
    if (installed)
        route_system_reason(reasons, "already_installed",
                            "%s is already installed (update or verify it instead)", id);
    if (!disk_ok)
        route_system_reason(reasons, "insufficient_storage",
                            "it needs %.2f GB of free disk (the file and a 256 MiB margin) and "
                            "models/ has %.2f GB free", needs / 1e9,
                            (double)m.disk_free_bytes / 1e9);
    if (fit == MACHINE_FIT_TOO_LARGE) route_system_too_large(reasons, &m, &need);
    return json_pack("{s:s,s:b,s:I,s:I,s:b,s:s,s:b,s:I,s:b,s:o}", "model_id", id, "ok",
                     !installed && disk_ok && fit != MACHINE_FIT_TOO_LARGE, "needs_bytes",
                     (json_int_t)needs, "free_bytes", (json_int_t)m.disk_free_bytes, "disk_ok",
                     disk_ok, "fit", machine_fit_name(fit), "fit_estimated", need.estimated,
                     "needs_memory_bytes", (json_int_t)need.ram_bytes, "already_installed",
                     installed, "reasons", reasons);
}

void route_system_preflight(http_req *req, worker_ctx *w, const route_seg *param) {
    json_t *model = route_gallery_model(req, w, param);
    if (!model) return;
    json_t *body = route_system_check(w, param->s, model);
    json_object_set_new(body, "node", json_string(w->cfg.node_name));
    http_send_json(req, 200, body);
    json_decref(body);
    json_decref(model);
}
