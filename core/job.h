/* job.h - the durable install queue: one JSON file per job in jobs/, written atomically.
 *
 * jobs/{job_id}.json holds {job_id, model_id, status, progress, downloaded, total, error,
 * created_at, updated_at} plus what the installer needs without the gallery: name, url,
 * checksum, ext, size (expected bytes). Creating a job, claiming it and changing its status
 * happen under the exclusive flock jobs/.lock, so two POSTs for one model make one job.
 * A cancel of a running job is the marker file jobs/{job_id}.cancel, which the installer
 * watches; the installer alone then writes the final status. */
#ifndef MG_JOB_H
#define MG_JOB_H

#include <jansson.h>

#include "config.h"
#include "mg_error.h"

typedef enum {
    JOB_QUEUED,
    JOB_DOWNLOADING,
    JOB_VERIFYING,
    JOB_INSTALLED,
    JOB_FAILED,
    JOB_CANCELLED
} job_status;

const char *job_status_name(job_status s);
/* 0 and *out, or -1 for an unknown name. */
int job_status_parse(const char *name, job_status *out);
/* 1 for installed, failed, cancelled. */
int job_status_terminal(job_status s);
/* The status of `job` (borrowed); JOB_FAILED when the field is unreadable. */
job_status job_get_status(json_t *job);

/* Queues an install of `model` (borrowed gallery model). When a queued or running job for
 * that model exists, returns it and sets *created = 0; otherwise writes a new queued job and
 * sets *created = 1. Returns a new reference, or NULL and err. */
json_t *job_enqueue(const mg_config *cfg, json_t *model, int *created, mg_error *err);

/* Returns a new reference to the job, or NULL and err (404 "job_not_found"). */
json_t *job_load(const mg_config *cfg, const char *job_id, mg_error *err);

/* Parses `len` bytes of a job file; `source` names it in messages (a path). Returns a new
 * reference to the job object, or NULL and err 500 "job_corrupt" when the text is not a JSON
 * object. Field types are not checked here: readers use json_*_value, which tolerate any. */
json_t *job_parse(const char *text, size_t len, const char *source, mg_error *err);

/* Returns a new reference to an array of all jobs, newest first. */
json_t *job_list(const mg_config *cfg, mg_error *err);

/* Returns a new reference to the queued or running job of `model_id`, or NULL. */
json_t *job_find_active(const mg_config *cfg, const char *model_id);

/* Writes `job` (borrowed; its updated_at is set to now) atomically. `durable` adds fsyncs
 * (status changes); progress-only updates pass 0. Takes the queue lock. 0, or -1 and err. */
int job_save(const mg_config *cfg, json_t *job, int durable, mg_error *err);

/* Cancels: a queued job becomes cancelled at once; a running one gets the cancel marker.
 * A terminal job: err 409 "job_finished". Returns a new reference to the job as it is now. */
json_t *job_cancel(const mg_config *cfg, const char *job_id, mg_error *err);

/* 1 when the cancel marker of `job_id` exists. job_clear_cancel removes it. */
int job_cancel_requested(const mg_config *cfg, const char *job_id);
void job_clear_cancel(const mg_config *cfg, const char *job_id);

/* Installer side: takes a queued job (or one left downloading/verifying by a crashed run)
 * by setting it to downloading under the lock. 1 when claimed, 0 when not claimable. */
int job_claim(const mg_config *cfg, json_t *job, mg_error *err);

/* Returns a new reference holding only the public fields of `job` (borrowed), as
 * GET /api/models/jobs/{id} answers. */
json_t *job_public(json_t *job);

/* Current time as ISO-8601 with offset ("2026-11-26T09:36:39+00:00") into out. */
void job_now_iso(char out[40]);

#endif
