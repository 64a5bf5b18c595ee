/* router.c - the route table and dispatch: splits the raw path into percent-decoded
 * segments (an encoded "/" stays inside its segment), matches them against the table and
 * answers what no handler should have to: 400 undecodable path, 404, 405 + Allow, 413, and
 * (through access.c) 421, 414, 403, 503 and 401. Every answer is counted by route, method and
 * status in run/fcgi.metrics. */
#include "router.h"

#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "id.h"
#include "log.h"
#include "metrics.h"
#include "percent.h"

#define ROUTE_SEGS_MAX 8

typedef struct route_def {
    const char *pattern[ROUTE_SEGS_MAX]; /* literal segments, "*" = the parameter; NULL ends */
    int methods;                         /* HTTP_GET also allows HEAD */
    route_fn fn;
} route_def;

static const route_def route_table[] = {
    {{"api", "models", "gallery", NULL}, HTTP_GET, route_gallery_get},
    {{"api", "models", "gallery", "search", NULL}, HTTP_GET, route_gallery_search},
    {{"api", "models", "gallery", "facets", NULL}, HTTP_GET, route_gallery_facets},
    {{"api", "models", "gallery", "status", NULL}, HTTP_GET, route_gallery_status},
    {{"api", "models", "gallery", "refresh", NULL}, HTTP_POST, route_gallery_refresh},
    {{"api", "models", "gallery", "*", "install", NULL}, HTTP_POST, route_jobs_install},
    {{"api", "models", "health", NULL}, HTTP_GET, route_health},
    {{"api", "models", "jobs", NULL}, HTTP_GET, route_jobs_list},
    {{"api", "models", "jobs", "*", NULL}, HTTP_GET, route_jobs_get},
    {{"api", "models", "jobs", "*", NULL}, HTTP_DELETE, route_jobs_cancel},
    {{"api", "models", "jobs", "*", "pause", NULL}, HTTP_POST, route_jobs_pause},
    {{"api", "models", "jobs", "*", "resume", NULL}, HTTP_POST, route_jobs_resume},
    {{"api", "models", "installed", NULL}, HTTP_GET, route_registry_list},
    {{"api", "models", "*", NULL}, HTTP_DELETE, route_registry_delete},
    {{"api", "models", "*", "update", NULL}, HTTP_POST, route_lifecycle_update},
    {{"api", "models", "*", "verify", NULL}, HTTP_POST, route_lifecycle_verify},
    {{"api", "models", "cleanup", NULL}, HTTP_GET, route_lifecycle_cleanup_get},
    {{"api", "models", "cleanup", NULL}, HTTP_POST, route_lifecycle_cleanup_post},
    {{"api", "models", "system", NULL}, HTTP_GET, route_system_get},
    {{"api", "models", "gallery", "*", "preflight", NULL}, HTTP_GET, route_system_preflight},
    {{"metrics", NULL}, HTTP_GET, route_metrics},
};

#define ROUTE_COUNT (sizeof route_table / sizeof route_table[0])

typedef struct route_path {
    route_seg seg[ROUTE_SEGS_MAX];
    size_t n;
    int too_long;   /* more segments than any route has, or an empty one: no route */
    char *buf;      /* owned: the decoded segments, each NUL-terminated */
} route_path;

/* Splits and decodes `path` (raw, starting with '/'; one trailing '/' is ignored).
 * 0, or -1 when a segment is not valid percent-encoding. */
static int route_split(const char *path, route_path *rp) {
    memset(rp, 0, sizeof *rp);
    size_t len = strlen(path);
    if (len > 1 && path[len - 1] == '/') len--;
    rp->buf = malloc(len + ROUTE_SEGS_MAX + 1);
    if (!rp->buf) return -1;
    char *out = rp->buf;
    const char *p = path + (len > 0 && path[0] == '/');
    const char *end = path + len;
    while (p < end) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        size_t n = slash ? (size_t)(slash - p) : (size_t)(end - p);
        if (rp->n == ROUTE_SEGS_MAX || n == 0) {
            rp->too_long = 1;
            return 0;
        }
        size_t dlen;
        if (percent_decode(p, n, out, &dlen) != 0) return -1;
        rp->seg[rp->n].s = out;
        rp->seg[rp->n].len = dlen;
        rp->n++;
        out += dlen + 1;
        if (!slash) break;
        p = slash + 1;
    }
    return 0;
}

/* 1 when `rp` matches `def`; the parameter segment (if any) goes to *param. */
static int route_match(const route_def *def, const route_path *rp, const route_seg **param) {
    size_t i = 0;
    for (; i < ROUTE_SEGS_MAX && def->pattern[i]; i++) {
        if (i >= rp->n) return 0;
        const char *lit = def->pattern[i];
        if (strcmp(lit, "*") == 0) {
            *param = &rp->seg[i];
        } else if (rp->seg[i].len != strlen(lit) || memcmp(rp->seg[i].s, lit, rp->seg[i].len)) {
            return 0;
        }
    }
    return i == rp->n;
}

static void route_allow(int methods, char *out, size_t n) {
    static const struct {
        int bit;
        const char *name;
    } names[] = {{HTTP_GET, "GET, HEAD"}, {HTTP_POST, "POST"}, {HTTP_DELETE, "DELETE"}};
    out[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(methods & names[i].bit)) continue;
        size_t used = strlen(out);
        snprintf(out + used, n - used, "%s%s", used ? ", " : "", names[i].name);
    }
}

/* 1 when the request body is acceptable; otherwise answers 413 and returns 0. */
static int route_body_ok(http_req *req) {
    const char *cl = http_param(req, "CONTENT_LENGTH");
    if (!cl || !*cl) return 1;
    char *end;
    unsigned long long n = strtoull(cl, &end, 10);
    if (*end == '\0' && n <= HTTP_BODY_MAX) return 1;
    http_error(req, 413, "payload_too_large", NULL,
               "the request body is larger than %d bytes; no endpoint takes a body",
               HTTP_BODY_MAX);
    return 0;
}

#define ROUTE_ID_RULE                                                                      \
    "a model id is 1 to 128 characters: letters, digits, '.', '_' and '-', starting with a " \
    "letter or digit (^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$)"

/* 1 when a segment of `rp` is "." or ".." (a raw path nginx passed on unresolved). */
static int route_has_dot_segment(const route_path *rp) {
    for (size_t i = 0; i < rp->n; i++)
        if (strcmp(rp->seg[i].s, ".") == 0 || strcmp(rp->seg[i].s, "..") == 0) return 1;
    return 0;
}

/* 1 when `def` has a parameter segment. */
static int route_has_param(const route_def *def) {
    for (size_t i = 0; i < ROUTE_SEGS_MAX && def->pattern[i]; i++)
        if (strcmp(def->pattern[i], "*") == 0) return 1;
    return 0;
}

/* Finds the route of `rp` for method bit `want`: routes without a parameter win over those
 * with one (so /api/models/jobs is never the model "jobs"). Sets *allowed to the methods
 * the path allows, *param to the parameter segment. The route, or NULL. */
static const route_def *route_find(const route_path *rp, int want, int *allowed,
                                   const route_seg **param) {
    const route_def *hit = NULL;
    *allowed = 0;
    for (int pass = 0; pass < 2 && !*allowed && !rp->too_long; pass++) {
        for (size_t i = 0; i < sizeof route_table / sizeof route_table[0]; i++) {
            const route_seg *p = NULL;
            if (route_has_param(&route_table[i]) != pass) continue;
            if (!route_match(&route_table[i], rp, &p)) continue;
            *allowed |= route_table[i].methods;
            if (!hit && (route_table[i].methods & want)) {
                hit = &route_table[i];
                *param = p;
            }
        }
    }
    return hit;
}

/* The metrics label of `def`: its path with "{id}" for the parameter ("/api/models/jobs/{id}").
 * Static storage. */
static const char *route_label(const route_def *def) {
    static char labels[ROUTE_COUNT][96];
    char *out = labels[def - route_table];
    if (out[0]) return out;
    for (size_t i = 0, len = 0; i < ROUTE_SEGS_MAX && def->pattern[i]; i++) {
        const char *seg = strcmp(def->pattern[i], "*") == 0 ? "{id}" : def->pattern[i];
        len += (size_t)snprintf(out + len, sizeof labels[0] - len, "/%s", seg);
        if (len >= sizeof labels[0]) break;
    }
    return out;
}

/* Counts the answer to `req` under the route label `route` in run/fcgi.metrics. */
static void route_count(const http_req *req, worker_ctx *w, const char *route) {
    static int opened;
    if (!opened) {
        opened = 1;
        mg_error err;
        if (metrics_open(&w->cfg, "run/fcgi.metrics", &err) < 0) log_warn("%s", err.message);
    }
    const char *method = req->method_bit ? req->method : "other";
    metrics_addf(1, "mg_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"}",
                 route, method, req->answered ? req->answered : 500);
}

/* Answers `req`: the route `hit`, or 405 / 400 / 404 when there is none. */
static void route_answer(http_req *req, worker_ctx *w, const route_path *rp,
                         const route_def *hit, int allowed, const route_seg *param, int want) {
    if (hit) {
        int writes = want == HTTP_POST || want == HTTP_DELETE;
        if (route_body_ok(req) && (!writes || access_write_ok(req, &w->cfg)))
            hit->fn(req, w, param);
    } else if (allowed) {
        char allow[64];
        route_allow(allowed, allow, sizeof allow);
        http_add_header(req, "Allow: %s", allow);
        http_error(req, 405, "method_not_allowed", NULL, "%s is not allowed here; allowed: %s",
                   req->method[0] ? req->method : "(none)", allow);
    } else if (route_has_dot_segment(rp)) {
        http_error(req, 400, "invalid_model_id", "id",
                   "'.' and '..' are not path segments here, nor model ids: %s", ROUTE_ID_RULE);
    } else {
        http_error(req, 404, "not_found", NULL, "no endpoint at %s", req->path);
    }
}

void route_dispatch(http_req *req, worker_ctx *w) {
    route_path rp;
    if (access_subrequest(req, &w->cfg)) return; /* nginx's checks: not counted */
    if (!access_request_ok(req, &w->cfg)) {
        route_count(req, w, "refused");
        return;
    }
    if (route_split(req->path, &rp) != 0) {
        free(rp.buf);
        http_error(req, 400, "invalid_path", NULL,
                   "the path is not valid percent-encoding ('%%' must start '%%XX' with two "
                   "hex digits)");
        route_count(req, w, "unmatched");
        return;
    }
    int allowed;
    const route_seg *param = NULL;
    int want = req->method_bit == HTTP_HEAD ? HTTP_GET : req->method_bit;
    const route_def *hit = route_find(&rp, want, &allowed, &param);
    route_answer(req, w, &rp, hit, allowed, param, want);
    route_count(req, w, hit ? route_label(hit) : "unmatched");
    free(rp.buf);
}

int route_model_id_ok(http_req *req, const route_seg *id) {
    if (id && id_model_valid(id->s, id->len)) return 1;
    http_error(req, 400, "invalid_model_id", "id", "%s", ROUTE_ID_RULE);
    return 0;
}

json_t *route_gallery_model(http_req *req, worker_ctx *w, const route_seg *id) {
    if (!route_model_id_ok(req, id)) return NULL;
    mg_error err;
    mg_error_clear(&err);
    const search_index *idx = worker_index(w, &err);
    json_t *model = idx ? search_index_get(idx, id->s) : NULL;
    if (!idx)
        http_send_error(req, &err);
    else if (!model)
        http_error(req, 404, "model_not_found", "id", "no model with id %s in the gallery",
                   id->s);
    return model;
}

int route_job_id_ok(http_req *req, const route_seg *id) {
    if (id && strlen(id->s) == id->len && id_job_valid(id->s)) return 1;
    http_error(req, 400, "invalid_job_id", "job_id",
               "a job id is %d lower-case hex digits", ID_JOB_LEN);
    return 0;
}
