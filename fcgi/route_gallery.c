/* route_gallery.c - the read-only gallery endpoints: the whole cache file (nginx's fallback,
 * with the same ETag nginx makes), search and facets. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "machine.h"
#include "router.h"

/* 1 when the If-None-Match header value `inm` names `etag` (weakly) or is "*". */
static int route_gallery_etag_match(const char *inm, const char *etag) {
    const char *p = inm;
    size_t elen = strlen(etag);
    while (p && *p) {
        p += strspn(p, " \t,");
        if (!*p) break;
        if (*p == '*') return 1;
        if (strncmp(p, "W/", 2) == 0) p += 2;
        size_t n = strcspn(p, ",");
        size_t m = n;
        while (m > 0 && (p[m - 1] == ' ' || p[m - 1] == '\t')) m--;
        if (m == elen && memcmp(p, etag, m) == 0) return 1;
        p += n;
    }
    return 0;
}

/* Adds ETag and Last-Modified for a file, as nginx's static module makes them:
 * ETag "<mtime hex>-<size hex>". Writes the ETag into `etag` (64 bytes). */
static void route_gallery_validators(http_req *req, const struct stat *st, char etag[64]) {
    snprintf(etag, 64, "\"%llx-%llx\"", (unsigned long long)st->st_mtime,
             (unsigned long long)st->st_size);
    char date[64];
    struct tm tm;
    gmtime_r(&st->st_mtime, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    http_add_header(req, "ETag: %s", etag);
    http_add_header(req, "Last-Modified: %s", date);
    http_add_header(req, "Cache-Control: no-cache");
}

/* Sends the open cache file `fd` (its stat in `st`) as the answer body. */
static void route_gallery_send_file(http_req *req, int fd, const struct stat *st) {
    size_t size = (size_t)st->st_size;
    if (size == 0 || req->head) {
        http_send_raw(req, 200, "application/json", NULL, size);
        return;
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        http_error(req, 500, "internal_error", NULL, "cannot map the gallery cache: %s",
                   strerror(errno));
        return;
    }
    http_send_raw(req, 200, "application/json", map, size);
    munmap(map, size);
}

void route_gallery_get(http_req *req, worker_ctx *w, const route_seg *param) {
    (void)param;
    mg_error err;
    mg_error_clear(&err);
    if (worker_gallery_fresh(w, &err) != 0) {
        http_send_error(req, &err);
        return;
    }
    char path[MG_PATH_MAX];
    config_path(&w->cfg, path, "cache/gallery_cache.json");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        http_error(req, 503, "gallery_unavailable", NULL, "cannot open %s: %s", path,
                   strerror(errno));
        if (fd >= 0) close(fd);
        return;
    }
    char etag[64];
    route_gallery_validators(req, &st, etag);
    const char *inm = http_param(req, "HTTP_IF_NONE_MATCH");
    if (inm && route_gallery_etag_match(inm, etag))
        http_send_raw(req, 304, NULL, NULL, 0);
    else
        route_gallery_send_file(req, fd, &st);
    close(fd);
}

static int route_gallery_write(void *ctx, const char *data, size_t len) {
    return http_buf_append(ctx, data, len);
}

static int route_gallery_piece(void *ctx, const char *data, size_t len, int stable) {
    return http_pieces_add(ctx, data, len, stable);
}

/* Gives `q` this machine's memory (server.json's machine, else detected), for fit. */
static void route_gallery_machine(worker_ctx *w, search_query *q) {
    machine_profile m;
    machine_memory(&w->cfg, &m);
    search_query_set_machine(q, (double)m.ram_bytes, (double)m.vram_bytes);
}

void route_gallery_search(http_req *req, worker_ctx *w, const route_seg *param) {
    (void)param;
    mg_error err;
    mg_error_clear(&err);
    search_query q;
    if (search_query_parse(&q, req->query, &err) != 0) {
        http_send_error(req, &err);
        return;
    }
    route_gallery_machine(w, &q);
    const search_index *idx = worker_index(w, &err);
    http_pieces p;
    http_pieces_init(&p);
    if (idx && search_run_pieces(idx, &q, route_gallery_piece, &p, &err) == 0)
        http_send_pieces(req, 200, "application/json", &p); /* texts straight from the mapping */
    else
        http_send_error(req, &err);
    http_pieces_free(&p);
    search_query_free(&q);
}

/* Facets: from the worker's recent answers when the same query string was answered from
 * the same index for a machine of the same memory, else counted (and kept). */
void route_gallery_facets(http_req *req, worker_ctx *w, const route_seg *param) {
    (void)param;
    mg_error err;
    mg_error_clear(&err);
    search_query q;
    if (search_query_parse(&q, req->query, &err) != 0) {
        http_send_error(req, &err);
        return;
    }
    route_gallery_machine(w, &q);
    size_t klen = strlen(req->query) + 48;
    char *key = malloc(klen);
    if (key) snprintf(key, klen, "%s#%.0f:%.0f", req->query, q.ram_bytes, q.vram_bytes);
    const search_index *idx = worker_index(w, &err);
    const acache_slot *hit = idx && key ? acache_get(&w->facets, w->idx_gen, key) : NULL;
    long limit;
    w->out.len = 0;
    if (hit) {
        http_send_raw(req, 200, "application/json", hit->data, hit->len);
    } else if (idx && search_facet_limit_parse(req->query, &limit, &err) == 0 &&
               search_facets(idx, &q, limit, route_gallery_write, &w->out, &err) == 0) {
        if (key) acache_put(&w->facets, w->idx_gen, key, w->out.data, w->out.len);
        http_send_raw(req, 200, "application/json", w->out.data, w->out.len);
    } else {
        http_send_error(req, &err);
    }
    free(key);
    search_query_free(&q);
}
