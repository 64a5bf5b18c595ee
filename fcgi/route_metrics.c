/* route_metrics.c - GET /metrics in the Prometheus text format (0.0.4). nginx lets only
 * 127.0.0.1 reach it. Gauges are read at scrape time (jobs by status from jobs/index, models
 * and the last refresh result of each gallery source from the status document); counters
 * come from the shared counters files (core/metrics.h) that the FastCGI workers (requests by
 * route, method and status) and the installer (bytes downloaded, failures by code, finished
 * jobs, refreshes by source and result) add to. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job_index.h"
#include "metrics.h"
#include "router.h"
#include "sources.h"

typedef struct route_metrics_family {
    const char *name, *type, *help;
} route_metrics_family;

static const route_metrics_family route_metrics_families[] = {
    {"mg_jobs", "gauge", "Jobs in the queue and its history, by status."},
    {"mg_gallery_models", "gauge", "Valid models of each gallery source."},
    {"mg_gallery_source_ok", "gauge", "1 when the last refresh of the source succeeded."},
    {"mg_download_bytes_total", "counter", "Bytes downloaded into partial files."},
    {"mg_download_failures_total", "counter", "Failed jobs by error_code."},
    {"mg_jobs_finished_total", "counter", "Jobs that ended, by final status."},
    {"mg_gallery_refresh_total", "counter",
     "Refreshes of a remote gallery source by result (ok, not_modified, error)."},
    {"mg_http_requests_total", "counter", "API answers by route, method and status."},
};

/* A sample read from a counters file. */
typedef struct route_metrics_sample {
    char *name;
    uint64_t value;
} route_metrics_sample;

typedef struct route_metrics_list {
    route_metrics_sample *items;
    size_t n, cap;
} route_metrics_list;

static void route_metrics_collect(void *ctx, const char *name, uint64_t value) {
    route_metrics_list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        route_metrics_sample *p = realloc(l->items, cap * sizeof *p);
        if (!p) return;
        l->items = p;
        l->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) return;
    l->items[l->n].name = copy;
    l->items[l->n++].value = value;
}

static int route_metrics_cmp(const void *a, const void *b) {
    return strcmp(((const route_metrics_sample *)a)->name,
                  ((const route_metrics_sample *)b)->name);
}

/* Appends printf output to `out`. */
static void route_metrics_printf(http_buf *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void route_metrics_printf(http_buf *out, const char *fmt, ...) {
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0) http_buf_append(out, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* The HELP and TYPE lines of the family of sample `name`, once per family. */
static void route_metrics_family_head(http_buf *out, const char *name, char *last, size_t n) {
    size_t len = strcspn(name, "{");
    if (strlen(last) == len && strncmp(last, name, len) == 0) return;
    snprintf(last, n, "%.*s", (int)len, name);
    for (size_t i = 0; i < sizeof route_metrics_families / sizeof *route_metrics_families; i++) {
        const route_metrics_family *f = &route_metrics_families[i];
        if (strcmp(f->name, last) != 0) continue;
        route_metrics_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                             f->type);
        return;
    }
    route_metrics_printf(out, "# TYPE %s untyped\n", last);
}

static void route_metrics_jobs(http_buf *out, worker_ctx *w) {
    job_index *ix = job_index_load(&w->cfg, NULL);
    char last[64] = "";
    route_metrics_family_head(out, "mg_jobs", last, sizeof last);
    for (int s = 0; s < JOB_STATUS_COUNT; s++)
        route_metrics_printf(out, "mg_jobs{status=\"%s\"} %zu\n", job_status_name((job_status)s),
                             ix ? job_index_count(ix, s) : 0);
    job_index_free(ix);
}

static void route_metrics_gallery(http_buf *out, worker_ctx *w) {
    json_t *status = sources_status(&w->cfg, NULL);
    json_t *sources = json_object_get(status, "sources");
    char last[64] = "";
    size_t i;
    json_t *src;
    route_metrics_family_head(out, "mg_gallery_models", last, sizeof last);
    json_array_foreach(sources, i, src) {
        route_metrics_printf(out, "mg_gallery_models{source=\"%s\"} %lld\n",
                             json_string_value(json_object_get(src, "name")),
                             (long long)json_integer_value(json_object_get(src, "model_count")));
    }
    route_metrics_family_head(out, "mg_gallery_source_ok", last, sizeof last);
    json_array_foreach(sources, i, src) {
        route_metrics_printf(out, "mg_gallery_source_ok{source=\"%s\"} %d\n",
                             json_string_value(json_object_get(src, "name")),
                             json_is_null(json_object_get(src, "error")) &&
                                 !json_is_null(json_object_get(src, "last_success")));
    }
    json_decref(status);
}

/* The counters of both files, sorted, grouped into families. */
static void route_metrics_counters(http_buf *out, worker_ctx *w) {
    route_metrics_list l = {NULL, 0, 0};
    metrics_read(&w->cfg, "run/installer.metrics", route_metrics_collect, &l);
    metrics_read(&w->cfg, "run/fcgi.metrics", route_metrics_collect, &l);
    if (l.n) qsort(l.items, l.n, sizeof *l.items, route_metrics_cmp);
    char last[METRICS_NAME_MAX + 1] = "";
    for (size_t i = 0; i < l.n; i++) {
        route_metrics_family_head(out, l.items[i].name, last, sizeof last);
        route_metrics_printf(out, "%s %llu\n", l.items[i].name,
                             (unsigned long long)l.items[i].value);
        free(l.items[i].name);
    }
    free(l.items);
}

void route_metrics(http_req *req, worker_ctx *w, const route_seg *param) {
    (void)param;
    w->out.len = 0;
    route_metrics_jobs(&w->out, w);
    route_metrics_gallery(&w->out, w);
    route_metrics_counters(&w->out, w);
    http_add_header(req, "Cache-Control: no-store");
    http_send_raw(req, 200, "text/plain; version=0.0.4; charset=utf-8", w->out.data, w->out.len);
}
