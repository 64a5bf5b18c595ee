/* job_index.h - jobs/index: one text line per job, newest first, so that listing the queue
 * and its history, finding a model's active job and scheduling read one file instead of
 * every job file.
 *
 * The file starts with the line "mg-jobs-index 1"; each further line is
 *
 *     <job_id> <status> <created_ns> <model_id> <public JSON>\n
 *
 * the job's public view (job_public) as of its last status change: progress-only saves of a
 * running job do not touch it. It is derived data, written only under the queue lock by
 * core/job.c (temp file + rename) and rebuilt from the job files whenever it is missing,
 * damaged or possibly stale (see job.c). Readers take no lock. */
#ifndef MG_JOB_INDEX_H
#define MG_JOB_INDEX_H

#include <jansson.h>
#include <stddef.h>
#include <sys/stat.h>

#include "job.h"
#include "mg_error.h"

typedef struct job_index_entry {
    const char *job_id;     /* ID_JOB_LEN characters, not NUL-terminated (in the text) */
    const char *model_id;   /* model_len characters, not NUL-terminated */
    size_t model_len;
    const char *json;       /* the public view, json_len bytes of compact JSON */
    size_t json_len;
    const char *line;       /* the whole line, '\n' included */
    size_t line_len;
    long long created_ns;   /* the order: newest first */
    job_status status;
} job_index_entry;

typedef struct job_index {
    char *text;                          /* owned: the file's bytes */
    size_t len;
    job_index_entry *entries;            /* owned, newest first */
    size_t count;
    size_t *by_status[JOB_STATUS_COUNT]; /* owned: entry numbers of each status, in order */
    size_t n_status[JOB_STATUS_COUNT];
    struct stat st;                      /* the file as read */
} job_index;

/* Reads and parses the index file `path`. Returns a new index, or NULL and err: code
 * "job_index_missing" when there is no file, "job_index_damaged" when a line does not
 * parse. */
job_index *job_index_read(const char *path, mg_error *err);
void job_index_free(job_index *ix);

/* 1 when `st` (a stat of the index path now) is the file `ix` was read from. */
int job_index_is_current(const job_index *ix, const struct stat *st);

/* How many entries have `status` (< 0: all). */
size_t job_index_count(const job_index *ix, int status);

/* The `i`-th entry (0: newest) of those with `status` (< 0: all), or NULL. Borrowed. */
const job_index_entry *job_index_get(const job_index *ix, int status, size_t i);

/* The entry of `job_id`, or NULL. Borrowed. */
const job_index_entry *job_index_find(const job_index *ix, const char *job_id);

/* The creation time of `job` (borrowed) in nanoseconds: created_ns, else created_at. */
long long job_index_created_ns(json_t *job);

/* Writes a new index to `path` (temp file + rename, no fsync: it is rebuilt after a crash):
 * the entries of `old` (borrowed, may be NULL) with `job` (borrowed, may be NULL) put in
 * its place (its line replaced, or inserted by creation time), then the oldest finished
 * entries beyond `keep_finished` dropped; `on_prune(ctx, job_id)` is called for each
 * dropped one. 0, or -1 and err. */
typedef void (*job_index_prune_fn)(void *ctx, const char *job_id);
int job_index_put(const char *path, const job_index *old, json_t *job, long keep_finished,
                  job_index_prune_fn on_prune, void *ctx, mg_error *err);

/* Writes a new index to `path` from `jobs` (borrowed array of job objects, newest first),
 * with the same pruning as job_index_put. 0, or -1 and err. */
int job_index_write_all(const char *path, json_t *jobs, long keep_finished,
                        job_index_prune_fn on_prune, void *ctx, mg_error *err);

#endif
