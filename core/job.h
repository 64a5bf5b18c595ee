/* job.h - the durable install queue: one JSON file per job in jobs/, written atomically,
 * and jobs/index, one line per job (core/job_index.h) so that listing and scheduling cost
 * the same with 10 or 10,000 finished jobs.
 *
 * jobs/{job_id}.json holds {job_id, model_id, kind, status, progress, downloaded, total,
 * error, error_code, diagnosis, created_at, updated_at} plus what the installer needs without
 * the gallery: name, url, checksum, ext, size (expected bytes). Creating a job, claiming it
 * and changing its status happen under the exclusive flock jobs/.lock, so two POSTs for one
 * model make one job; every status change also rewrites the job's line in jobs/index and
 * prunes the oldest finished jobs beyond job_history. A cancel of a job is the marker file
 * jobs/{job_id}.cancel plus the status cancelling; the installer alone then writes the final
 * status. */
#ifndef MG_JOB_H
#define MG_JOB_H

#include <jansson.h>
#include <stddef.h>

#include "config.h"
#include "mg_error.h"

typedef enum {
    JOB_QUEUED,
    JOB_DOWNLOADING,
    JOB_VERIFYING,
    JOB_INSTALLED,
    JOB_FAILED,
    JOB_CANCELLED,
    JOB_CANCELLING, /* cancel asked for; the installer has not confirmed it yet */
    JOB_PAUSED      /* paused by the user: its partial kept, never claimed until resumed */
} job_status;

#define JOB_STATUS_COUNT 8

const char *job_status_name(job_status s);
/* 0 and *out, or -1 for an unknown name. */
int job_status_parse(const char *name, job_status *out);
/* 1 for installed, failed, cancelled. */
int job_status_terminal(job_status s);
/* 1 for the statuses whose job file the installer updates without a status change
 * (downloading, verifying, cancelling): their progress lives in the job file. */
int job_status_live(job_status s);
/* The status of `job` (borrowed); JOB_FAILED when the field is unreadable. */
job_status job_get_status(json_t *job);

/* Queues an install of `model` (borrowed gallery model). When a queued or running job for
 * that model exists (see job_find_active), returns it and sets *created = 0; otherwise
 * writes a new queued job and sets *created = 1. Returns a new reference, or NULL and err. */
json_t *job_enqueue(const mg_config *cfg, json_t *model, int *created, mg_error *err);

/* As job_enqueue for a job of `kind`: "install", "update" (download `model`, a gallery
 * model, beside the installed file and swap it in once verified) or "verify" (re-hash the
 * installed file: `model` is {id, name, checksum, path, sizeBytes} from its registry entry).
 * The job records the model's "gallery" and, for verify, "path". An unfinished job of the
 * model, of any kind, is returned instead (*created = 0); the caller compares its kind. */
json_t *job_enqueue_kind(const mg_config *cfg, json_t *model, const char *kind, int *created,
                         mg_error *err);

/* The kind of `job` (borrowed): "install" when the field is absent (older job files). */
const char *job_kind(json_t *job);

/* Returns a new reference to the job, or NULL and err (404 "job_not_found"). */
json_t *job_load(const mg_config *cfg, const char *job_id, mg_error *err);

/* Parses `len` bytes of a job file; `source` names it in messages (a path). Returns a new
 * reference to the job object, or NULL and err 500 "job_corrupt" when the text is not a JSON
 * object. Field types are not checked here: readers use json_*_value, which tolerate any. */
json_t *job_parse(const char *text, size_t len, const char *source, mg_error *err);

/* Returns a new reference to the newest unfinished job of `model_id` that is not being
 * cancelled, or NULL. (A job being cancelled does not stop a new install of its model: the
 * installer finishes the older job first.) */
json_t *job_find_active(const mg_config *cfg, const char *model_id);

/* Writes `job` (borrowed; its updated_at is set to now) atomically. `durable` (status
 * changes) adds fsyncs and updates jobs/index (pruning the history); progress-only updates
 * pass 0. While the cancel marker exists an unfinished job is saved as cancelling (also in
 * `job`). Takes the queue lock. 0, or -1 and err. */
int job_save(const mg_config *cfg, json_t *job, int durable, mg_error *err);

/* Cancels: an unfinished job gets the cancel marker and the status cancelling; the installer
 * removes its partial and writes cancelled. A finished job: err 409 "job_finished". Returns a
 * new reference to the job as it is now. */
json_t *job_cancel(const mg_config *cfg, const char *job_id, mg_error *err);

/* 1 when the cancel marker of `job_id` exists. job_clear_cancel removes it. */
int job_cancel_requested(const mg_config *cfg, const char *job_id);
void job_clear_cancel(const mg_config *cfg, const char *job_id);

/* Pauses: a queued job becomes paused at once; a downloading one also gets the marker
 * jobs/{job_id}.pause, which tells the installer to stop it, keep its partial and free the
 * slot. While the marker exists job_save keeps the job paused. 409 "job_finished" for a
 * finished job, 409 "job_not_pausable" while verifying or being cancelled, or for a verify
 * job. A paused job: returned as it is. Returns a new reference to the job as it is now. */
json_t *job_pause(const mg_config *cfg, const char *job_id, mg_error *err);

/* Resumes a paused job: it is queued again (the pause marker removed first). A job that is
 * queued or running already: returned as it is; 409 "job_finished" for a finished one,
 * 409 "job_cancelling" for one being cancelled. Returns a new reference. */
json_t *job_resume(const mg_config *cfg, const char *job_id, mg_error *err);

/* 1 when the pause marker of `job_id` exists. job_clear_pause removes it. */
int job_pause_requested(const mg_config *cfg, const char *job_id);
void job_clear_pause(const mg_config *cfg, const char *job_id);

/* Installer side, once a paused download stopped: writes `job` (borrowed) durably with the
 * status the file has now (paused, or queued / cancelling when a resume or a cancel came
 * meanwhile; the status is copied into `job`) and removes the pause marker. 0, or -1. */
int job_settle_pause(const mg_config *cfg, json_t *job, mg_error *err);

/* Returns a new reference to {model_id: {"job_id", "kind", "status"}} for every model with
 * an unfinished job (queued, running, paused or being cancelled), from jobs/index. */
json_t *job_active_models(const mg_config *cfg);

/* Runs `fn(ctx, active)` under the queue lock, with `active` (borrowed) as in
 * job_active_models but read from the job files themselves: no job can be created, resumed
 * or claimed while it runs. 0, or -1 and err when the lock cannot be taken. */
typedef void (*job_locked_fn)(void *ctx, json_t *active);
int job_with_queue_lock(const mg_config *cfg, job_locked_fn fn, void *ctx, mg_error *err);

/* Installer side: takes a queued job (or one left downloading/verifying by a crashed run)
 * by setting it to downloading (verifying for a verify job) under the lock; `job`
 * (borrowed) is updated from the file. A job with a cancel marker or the status cancelling
 * becomes cancelled instead (0). 1 when claimed, 0 when not claimable, -1 and err. */
int job_claim(const mg_config *cfg, json_t *job, mg_error *err);

/* Returns a new reference holding only the public fields of `job` (borrowed), as
 * GET /api/models/jobs/{id} answers: kind "install", error_code and diagnosis null when
 * the file predates them. */
json_t *job_public(json_t *job);

/* job_public plus "node": the node that holds the job, cfg->node_name (the name is not kept
 * in the job file: a renamed node answers with its new name). Returns a new reference. */
json_t *job_view(const mg_config *cfg, json_t *job);

/* ---- the index (jobs/index, see job_index.h) ---- */

struct job_index;

/* Reads jobs/index; a missing or damaged one is rebuilt from the job files first (under the
 * lock). Returns a new index (free with job_index_free), or NULL and err. */
struct job_index *job_index_load(const mg_config *cfg, mg_error *err);

/* Rebuilds jobs/index from the job files, pruning finished jobs beyond job_history. Takes
 * the lock. 0, or -1 and err. */
int job_index_rebuild(const mg_config *cfg, mg_error *err);

/* Adds the job file `job_id` to jobs/index when it is not there (a job file that appeared
 * without the queue, or an index a crash left behind). Takes the lock. 1 when added. */
int job_index_adopt(const mg_config *cfg, const char *job_id);

/* Writes the page {"node","total","offset","limit","jobs":[...]} of the jobs in `ix`
 * (borrowed) with status `status` (< 0: any), newest first, to `fn`; each job carries "node"
 * too (as job_view). Jobs in a live status are read from their files (current progress).
 * 0, or -1 when `fn` failed. */
typedef int (*job_write_fn)(void *ctx, const char *data, size_t len);
int job_page_write(const mg_config *cfg, const struct job_index *ix, int status,
                   size_t offset, size_t limit, job_write_fn fn, void *ctx);

/* Current time as ISO-8601 with offset ("2026-11-26T09:36:39+00:00") into out. */
void job_now_iso(char out[40]);

#endif
