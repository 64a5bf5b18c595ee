/* sched.h - the scheduler: which queued jobs run, at most max_parallel_downloads at once,
 * oldest first, read from jobs/index (kept parsed while the file is unchanged); paused jobs
 * wait until resumed. It also finishes cancels of jobs that do not run (status cancelling:
 * the partial is removed, the job ends cancelled), announces queued and paused jobs on the
 * progress channel, passes pause requests to runners, and takes job files that appeared
 * outside the queue into the index. Runs in the main thread only. */
#ifndef MG_SCHED_H
#define MG_SCHED_H

#include <stdatomic.h>

#include "config.h"
#include "id.h"
#include "job_index.h"
#include "runner.h"

#define SCHED_MAX_SLOTS 16
#define SCHED_NOTED_MAX 64

typedef struct sched {
    const mg_config *cfg;      /* borrowed; may be replaced between calls */
    runner *slots[SCHED_MAX_SLOTS];
    atomic_int stopping;       /* set at shutdown; runners stop and keep their partials */
    int notify_fd;             /* eventfd the runners write as they end */
    job_index *ix;             /* owned: jobs/index as last read, or NULL */
    char noted[SCHED_NOTED_MAX][ID_JOB_LEN + 1]; /* job files that changed, to check */
    int noted_n, noted_overflow;
} sched;

/* 0, or -1 when the eventfd cannot be made. */
int sched_init(sched *s, const mg_config *cfg);

/* Starts queued (or crash-interrupted) jobs while slots are free, finishes cancels of jobs
 * that do not run, and announces the queued ones. */
void sched_fill(sched *s);

/* Notes that the job file of `job_id` changed (not by a runner of this process): the next
 * sched_fill takes it into jobs/index when it is not there. */
void sched_note_job(sched *s, const char *job_id);

/* Joins and frees the runners that ended. Returns how many. */
int sched_reap(sched *s);

/* 1 when `job_id` runs in this process. */
int sched_running(const sched *s, const char *job_id);

/* Passes a cancel request to the runner of `job_id`, if it runs here. */
void sched_cancel(sched *s, const char *job_id);

/* Passes a pause request to the runner of `job_id`, if it runs here. */
void sched_pause(sched *s, const char *job_id);

/* Stops every runner (partials kept for a resume), waiting up to `timeout_ms` in total, and
 * frees what the scheduler holds. */
void sched_shutdown(sched *s, int timeout_ms);

#endif
