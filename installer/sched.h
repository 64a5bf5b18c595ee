/* sched.h - the scheduler: which queued jobs run, at most max_parallel_downloads at once,
 * oldest first (created_at). Runs in the main thread only. */
#ifndef MG_SCHED_H
#define MG_SCHED_H

#include <stdatomic.h>

#include "config.h"
#include "runner.h"

#define SCHED_MAX_SLOTS 16

typedef struct sched {
    const mg_config *cfg;      /* borrowed; may be replaced between calls */
    runner *slots[SCHED_MAX_SLOTS];
    atomic_int stopping;       /* set at shutdown; runners stop and keep their partials */
    int notify_fd;             /* eventfd the runners write as they end */
} sched;

/* 0, or -1 when the eventfd cannot be made. */
int sched_init(sched *s, const mg_config *cfg);

/* Starts queued (or crash-interrupted) jobs while slots are free. */
void sched_fill(sched *s);

/* Joins and frees the runners that ended. Returns how many. */
int sched_reap(sched *s);

/* 1 when `job_id` runs in this process. */
int sched_running(const sched *s, const char *job_id);

/* Passes a cancel request to the runner of `job_id`, if it runs here. */
void sched_cancel(sched *s, const char *job_id);

/* Stops every runner (partials kept for a resume), waiting up to `timeout_ms` in total. */
void sched_shutdown(sched *s, int timeout_ms);

#endif
