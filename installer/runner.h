/* runner.h - one running job: a thread that downloads the model (install, update) or
 * re-hashes the installed file (verify), keeps the job file and the live progress up to
 * date, writes the registry entry and the final status. A paused download stops, keeps its
 * partial and ends the thread with the job paused. */
#ifndef MG_RUNNER_H
#define MG_RUNNER_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "id.h"
#include "job.h"
#include "progress.h"

typedef struct runner {
    char job_id[ID_JOB_LEN + 1];
    char model_id[ID_MODEL_MAX + 1];
    json_t *job;               /* owned: the claimed job, saved as it changes */
    mg_config cfg;             /* owned: a copy of the daemon's settings at the start */
    atomic_int cancel;         /* set by the main thread when jobs/{id}.cancel appears */
    atomic_int pause;          /* set by the main thread when jobs/{id}.pause appears */
    atomic_int finished;       /* set by the thread as it ends */
    const atomic_int *stopping;/* borrowed: the daemon shuts down */
    int notify_fd;             /* borrowed eventfd: written when the thread ends */
    pthread_t thread;
    job_status status;         /* last reported status */
    progress_meter meter;
    int64_t last_save_ms, last_cancel_check_ms;
} runner;

/* Starts a thread for `job` (a claimed job, status downloading; the reference is stolen)
 * with a copy of the daemon's settings `cfg` (borrowed). Returns a new runner (free with
 * runner_free after runner_join), or NULL. */
runner *runner_start(const mg_config *cfg, json_t *job, const atomic_int *stopping,
                     int notify_fd);

/* Asks the runner to cancel its job. 1 when it was not asked before. */
int runner_cancel(runner *r);

/* Asks the runner to pause its job. 1 when it was not asked before. */
int runner_pause(runner *r);

/* Waits for the thread up to `timeout_ms` (< 0: forever). 0 when it ended, -1 otherwise. */
int runner_join(runner *r, int timeout_ms);
void runner_free(runner *r);

/* Removes the partial download of `job` (borrowed). */
void runner_discard_partial(const mg_config *cfg, json_t *job);

/* Handles a job that the queue turned to cancelled while claiming it (it was being
 * cancelled): removes its partial download, publishes the final message and counts it. */
void runner_cancelled_unclaimed(const mg_config *cfg, json_t *job);

#endif
