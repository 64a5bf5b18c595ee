/* access.h - who may use the API (contract v2 "Access"): the Host allow-list (421
 * misdirected_request), the browser origin rule for requests that change something (403
 * forbidden_origin), a readable config/server.json for them (503 config_unavailable) and the
 * api_token (401 unauthorized, compared in constant time). Also the two checks nginx asks
 * for in subrequests: the Host of what it serves itself, and the progress subscriber's
 * handshake (Host, Origin even for GET, token as a header or an access_token parameter). */
#ifndef MG_ACCESS_H
#define MG_ACCESS_H

#include "config.h"
#include "http.h"

/* Requests whose query string is longer are refused with 414 before anything is parsed. */
#define ACCESS_QUERY_MAX 8192

/* 1 when `host` (a Host header value, may be NULL) is allowed for a server listening on
 * `port`: 127.0.0.1, localhost or [::1] with that port (or without it on port 80), or an
 * entry of server_names ("host" matches any port, "host:port" that one). Case-insensitive. */
int access_host_allowed(const mg_config *cfg, const char *host, long port);

/* 1 when `origin` (an Origin header value) is allowed: http(s):// plus an allowed host, or
 * an entry of allowed_origins. "null" never is. */
int access_origin_allowed(const mg_config *cfg, const char *origin, long port);

/* The checks every API request passes before routing: an allowed Host (421), no X-MG-Node
 * header naming another node (421 wrong_node) and a query string of at most
 * ACCESS_QUERY_MAX bytes (414). 1 to go on; 0 when an answer was sent. */
int access_request_ok(http_req *req, const mg_config *cfg);

/* The checks of a request that changes something (any method but GET/HEAD/OPTIONS): the
 * origin rule (403), a readable server.json (503), the token (401). 1 to go on; 0 when an
 * answer was sent. */
int access_write_ok(http_req *req, const mg_config *cfg);

/* Answers nginx's subrequests (FastCGI parameter MG_AUTH set, path /api/models/_auth/...):
 * "host" 204 or 403 with "X-MG-Deny: host"; "subscribe" 204, or the 421/403/401 JSON error
 * nchan passes on to the subscriber; "progress" (Redis mode) 204, or 403 with "X-MG-Deny:
 * progress" while nchan cannot reach Redis (channel.h). 1 when `req` was such a subrequest
 * (answered). */
int access_subrequest(http_req *req, const mg_config *cfg);

#endif
