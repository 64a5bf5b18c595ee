/* metrics.h - counters shared between processes for GET /metrics: a small file per
 * component under run/ (run/fcgi.metrics, run/installer.metrics) that every process of the
 * component maps (MAP_SHARED). Each slot holds one sample name in Prometheus form
 * ("mg_http_requests_total{route=\"/api/models/jobs\",status=\"200\"}") and an atomic 64-bit
 * value, so that any number of stateless FastCGI workers, or the installer's threads, add to
 * them with one atomic instruction and no lock. A name new to the file is given a slot under
 * an flock of the file (and a mutex within the process). The counters start at zero with the
 * file; a file that is not ours is started afresh. */
#ifndef MG_METRICS_H
#define MG_METRICS_H

#include <stdint.h>

#include "config.h"
#include "mg_error.h"

#define METRICS_NAME_MAX 243

/* Maps (creating) the counters file root/rel for this process; later metrics_add calls count
 * into it. A second call is a no-op. 0, or -1 and err (metrics_add then does nothing). */
int metrics_open(const mg_config *cfg, const char *rel, mg_error *err);

/* Unmaps the file; metrics_add does nothing until the next metrics_open. */
void metrics_close(void);

/* Adds `n` to the sample `name` (at most METRICS_NAME_MAX bytes). Thread-safe; a no-op
 * before metrics_open, for a name too long or when the file is full. */
void metrics_add(const char *name, uint64_t n);

/* metrics_add with the name made by printf from `fmt`. */
void metrics_addf(uint64_t n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Calls fn(ctx, name, value) for every sample in the counters file root/rel (absent: none).
 * Names are borrowed for the call only. */
typedef void (*metrics_visit_fn)(void *ctx, const char *name, uint64_t value);
void metrics_read(const mg_config *cfg, const char *rel, metrics_visit_fn fn, void *ctx);

#endif
