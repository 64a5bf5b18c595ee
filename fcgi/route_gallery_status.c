/* route_gallery_status.c - the gallery refresh endpoints: GET /api/models/gallery/status
 * answers what the installer's refresher last saw (cache/gallery_status.json); POST
 * /api/models/gallery/refresh asks it for a refresh now (cache/refresh.request) and answers
 * 202 at once. Nothing is fetched here: the handlers only read and write small files. */
#include <stdio.h>

#include "router.h"
#include "sources.h"

void route_gallery_status(http_req *req, worker_ctx *w, const route_seg *param) {
    (void)param;
    mg_error err;
    mg_error_clear(&err);
    json_t *status = sources_status(&w->cfg, &err);
    if (!status) {
        http_send_error(req, &err);
        return;
    }
    http_add_header(req, "Cache-Control: no-store");
    http_send_json(req, 200, status);
    json_decref(status);
}

void route_gallery_refresh(http_req *req, worker_ctx *w, const route_seg *param) {
    (void)param;
    mg_error err;
    mg_error_clear(&err);
    long long id = 0;
    if (sources_request_refresh(&w->cfg, &id, &err) != 0) {
        http_send_error(req, &err);
        return;
    }
    json_t *body = json_pack("{s:s, s:I, s:s}", "status", "accepted", "request_id",
                             (json_int_t)id, "status_url", "/api/models/gallery/status");
    http_add_header(req, "Location: /api/models/gallery/status");
    http_send_json(req, 202, body);
    json_decref(body);
}
