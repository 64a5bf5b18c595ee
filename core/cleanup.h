/* cleanup.h - GET and POST /api/models/cleanup: files that take disk space and belong to
 * nothing, and their removal.
 *
 * Kinds of items:
 *   partial       models/.partial/{id}{ext}.part (with its .meta) of a model that has no
 *                 unfinished job (queued, running, paused or being cancelled);
 *   orphan_meta   a .part.meta without its .part, of such a model;
 *   temp          temporary files a writer left behind ("<name>.tmp.<pid>[.<n>]",
 *                 ".<job>.json.<pid>.tmp") under config/, cache/, jobs/, models/llm/ and
 *                 models/.partial/, when their process is gone or they are over an hour
 *                 old, and any other file in models/.partial/;
 *   unregistered  a file of models/llm/ that no registry entry names and whose model has
 *                 no unfinished job (removed only when asked for).
 * Registered models and the files of unfinished jobs are never items. Each item is
 * {"kind", "path" (relative to the data root), "bytes", "age_s"}. */
#ifndef MG_CLEANUP_H
#define MG_CLEANUP_H

#include <jansson.h>

#include "config.h"
#include "mg_error.h"

/* Returns a new reference to {"items": [...], "bytes": N} (N: the items' bytes together)
 * as the data root is now, or NULL and err. */
json_t *cleanup_scan(const mg_config *cfg, mg_error *err);

/* Removes the items (unregistered files only with `include_unregistered`) under the queue
 * lock, so that no job starts or resumes meanwhile. Returns a new reference to
 * {"items": [removed...], "bytes": freed, "failed": [{"path", "error"}...]}, or NULL and
 * err. */
json_t *cleanup_run(const mg_config *cfg, int include_unregistered, mg_error *err);

/* The pid a temporary file name names ("x.tmp.123.4", "x.tmp.123", ".id.json.123.tmp"),
 * or 0 when `name` is no temporary file name of ours. */
long cleanup_temp_pid(const char *name);

#endif
