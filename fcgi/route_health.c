/* route_health.c - GET /api/models/health: the API answers, for which node, how many models
 * the gallery has, whether live progress works (with redis_url: asked of nchan), and a
 * report of every process of the stack read from the pid files under run/ and /proc: the
 * supervisor (runsvdir under deploy/up), nginx, mg-fcgi and mg-installer, each with its
 * workers or services. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "proc.h"
#include "router.h"

#define ROUTE_HEALTH_CHILDREN_MAX 256

/* One process as {pid, program, user, uptime_s}. Returns a new reference. */
static json_t *route_health_proc(const proc_info *p) {
    char user[64];
    return json_pack("{s:i, s:s, s:s, s:f}", "pid", (int)p->pid, "program", p->comm, "user",
                     proc_user_name(p->uid, user, sizeof user), "uptime_s",
                     (double)(long long)(p->age_s * 10) / 10);
}

/* The live children of `pid` as an array of route_health_proc objects (new reference). */
static json_t *route_health_children(pid_t pid) {
    pid_t kids[ROUTE_HEALTH_CHILDREN_MAX];
    size_t n = proc_children(pid, kids, ROUTE_HEALTH_CHILDREN_MAX);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        proc_info c;
        if (proc_read(kids[i], &c) == 0 && proc_live(&c))
            json_array_append_new(list, route_health_proc(&c));
    }
    return list;
}

/* The report of the process named by pid file `pidfile` (program `comm`): {status:
 * "running", pid, program, user, uptime_s[, children_key: [...]]} or {status: "down", pid:
 * null}. Returns a new reference. */
static json_t *route_health_entry(const char *pidfile, const char *comm,
                                  const char *children_key) {
    proc_info p;
    if (!proc_pidfile(pidfile, comm, &p)) return json_pack("{s:s, s:n}", "status", "down", "pid");
    json_t *o = route_health_proc(&p);
    json_object_set_new(o, "status", json_string("running"));
    if (children_key) json_object_set_new(o, children_key, route_health_children(p.pid));
    return o;
}

/* Every process of the stack (new reference). The supervisor is reported when deploy/up
 * started one (run/supervisor.pid); under systemd there is none of ours. nginx's pid file
 * is run/nginx.pid unless MG_NGINX_PID names another (Debian's nginx: /run/nginx.pid). */
static json_t *route_health_processes(const mg_config *cfg, int *installer_running) {
    char path[MG_PATH_MAX];
    json_t *procs = json_object();
    if (access(config_path(cfg, path, "run/supervisor.pid"), F_OK) == 0)
        json_object_set_new(procs, "supervisor", route_health_entry(path, "runsvdir", "services"));
    const char *nginx_pid = getenv("MG_NGINX_PID");
    if (!nginx_pid || !*nginx_pid) nginx_pid = config_path(cfg, path, "run/nginx.pid");
    json_object_set_new(procs, "nginx", route_health_entry(nginx_pid, "nginx", "workers"));
    json_object_set_new(procs, "fcgi", route_health_entry(config_path(cfg, path, "run/fcgi.pid"),
                                                          "mg-fcgi", "workers"));
    json_t *inst = route_health_entry(config_path(cfg, path, "run/installer.pid"),
                                      "mg-installer", NULL);
    *installer_running = strcmp(json_string_value(json_object_get(inst, "status")), "running") == 0;
    json_object_set_new(procs, "installer", inst);
    return procs;
}

/* {"store": "memory" | "redis", "status": "ok" | "unavailable"[, "message"]}: where nchan
 * keeps the progress channel and whether it takes messages now. New reference. */
static json_t *route_health_progress(const mg_config *cfg) {
    char why[256];
    int ok = channel_ok(cfg, why, sizeof why);
    json_t *o = json_pack("{s:s, s:s}", "store", cfg->redis_url ? "redis" : "memory", "status",
                          ok ? "ok" : "unavailable");
    if (!ok)
        json_object_set_new(o, "message", json_string(why));
    return o;
}

void route_health(http_req *req, worker_ctx *w, const route_seg *param) {
    (void)param;
    mg_error err;
    mg_error_clear(&err);
    const search_index *idx = worker_index(w, &err);
    int installer_running = 0;
    json_t *procs = route_health_processes(&w->cfg, &installer_running);
    json_t *body = json_pack("{s:s, s:s, s:s, s:I, s:o, s:o}", "status", "ok", "node",
                             w->cfg.node_name, "installer",
                             installer_running ? "running" : "down", "gallery_models",
                             (json_int_t)(idx ? search_index_count(idx) : 0), "progress",
                             route_health_progress(&w->cfg), "processes", procs);
    http_send_json(req, 200, body);
    json_decref(body);
}
