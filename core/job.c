/* job.c - the durable install queue: jobs/{job_id}.json written atomically, creation,
 * claiming and cancellation serialised by the exclusive flock jobs/.lock, the cancel marker
 * jobs/{job_id}.cancel the installer watches, and jobs/index (job_index.c) kept in step.
 *
 * Besides the public fields a job file holds what the installer needs (name, url, checksum,
 * ext, size) and "created_ns", the creation time in nanoseconds that orders jobs.
 *
 * Every status change writes the job file durably, then the index, under the lock. The first
 * byte of jobs/.lock is '1' while a holder is between the two: a holder that died there
 * (kill -9) leaves it set, and the next one to take the lock rebuilds the index from the job
 * files. The installer also rebuilds it at start (after a power loss it may be stale). */
#include "job.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "gallery.h"
#include "id.h"
#include "job_index.h"
#include "log.h"
#include "redact.h"

#define JOB_DIR "jobs"
#define JOB_LOCK "jobs/.lock"
#define JOB_INDEX "jobs/index"

static const char *const job_status_names[JOB_STATUS_COUNT] = {
    "queued", "downloading", "verifying", "installed",
    "failed", "cancelled",   "cancelling", "paused"};

const char *job_status_name(job_status s) {
    if ((int)s < 0 || (int)s >= JOB_STATUS_COUNT) return "failed";
    return job_status_names[s];
}

int job_status_parse(const char *name, job_status *out) {
    for (int i = 0; name && i < JOB_STATUS_COUNT; i++) {
        if (strcmp(name, job_status_names[i]) == 0) {
            *out = (job_status)i;
            return 0;
        }
    }
    return -1;
}

int job_status_terminal(job_status s) {
    return s == JOB_INSTALLED || s == JOB_FAILED || s == JOB_CANCELLED;
}

int job_status_live(job_status s) {
    return s == JOB_DOWNLOADING || s == JOB_VERIFYING || s == JOB_CANCELLING;
}

job_status job_get_status(json_t *job) {
    job_status s;
    if (job_status_parse(json_string_value(json_object_get(job, "status")), &s) < 0)
        return JOB_FAILED;
    return s;
}

void job_now_iso(char out[40]) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, 40, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
}

static json_int_t job_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (json_int_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Writes the path of jobs/{job_id}{suffix} into out (MG_PATH_MAX). */
static char *job_path(const mg_config *cfg, char *out, const char *job_id, const char *suffix) {
    char rel[64];
    snprintf(rel, sizeof rel, JOB_DIR "/%s%s", job_id, suffix);
    return config_path(cfg, out, rel);
}

/* Reads jobs/{job_id}.json; the id must be valid. Returns a new reference, or NULL and err
 * (404 "job_not_found", 500 "job_corrupt"). */
static json_t *job_read(const mg_config *cfg, const char *job_id, mg_error *err) {
    char path[MG_PATH_MAX];
    job_path(cfg, path, job_id, ".json");
    mg_error rerr;
    size_t len = 0;
    char *text = fs_read_all(path, &len, &rerr);
    if (!text) {
        if (errno == ENOENT)
            mg_error_set(err, 404, "job_not_found", "job_id", "no job '%s'", job_id);
        else
            mg_error_set(err, 500, "job_unreadable", NULL, "%s", rerr.message);
        return NULL;
    }
    json_t *job = job_parse(text, len, path, err);
    free(text);
    return job;
}

json_t *job_parse(const char *text, size_t len, const char *source, mg_error *err) {
    json_error_t jerr;
    json_t *job = json_loadb(text, len, 0, &jerr);
    if (!json_is_object(job)) {
        json_decref(job);
        mg_error_set(err, 500, "job_corrupt", NULL, "%s: not a valid job file (line %d, column %d)",
                     source, jerr.line, jerr.column);
        return NULL;
    }
    return job;
}

/* Writes `text` to the temporary file `tmp` and renames it over `path`, without fsync (a
 * progress update). 0, or -1 and err. */
static int job_write_fast(const char *tmp, const char *path, const char *text, mg_error *err) {
    size_t len = strlen(text);
    fs_unlink(tmp, NULL); /* a leftover (or a planted link) of the same name */
    int fd = fs_open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644, err);
    if (fd < 0) return -1;
    int ok = write(fd, text, len) == (ssize_t)len;
    int e = errno;
    close(fd);
    if (ok && fs_rename(tmp, path, err) == 0) return 0;
    if (!ok) mg_error_set(err, 500, "io_error", NULL, "cannot write %s: %s", path, strerror(e));
    fs_unlink(tmp, NULL);
    return -1;
}

/* Writes `job` (borrowed) to its file: atomically and fsync'ed when `durable`, else a plain
 * write to a temporary file renamed over it. The caller holds the lock. 0, or -1 and err. */
static int job_write(const mg_config *cfg, json_t *job, int durable, mg_error *err) {
    const char *job_id = json_string_value(json_object_get(job, "job_id"));
    if (!job_id || !id_job_valid(job_id))
        return mg_error_set(err, 500, "internal_error", NULL, "job without a valid job_id");
    char path[MG_PATH_MAX], tmp[MG_PATH_MAX];
    job_path(cfg, path, job_id, ".json");
    char *text = json_dumps(job, JSON_COMPACT);
    if (!text) return mg_error_set(err, 500, "internal_error", NULL, "out of memory");
    int rc;
    if (durable) {
        rc = fs_write_atomic(path, text, strlen(text), err);
    } else {
        char rel[64];
        snprintf(rel, sizeof rel, JOB_DIR "/.%s.json.%d.tmp", job_id, (int)getpid());
        config_path(cfg, tmp, rel);
        rc = job_write_fast(tmp, path, text, err);
    }
    free(text);
    return rc;
}

/* ---- the lock, the index and the history ---- */

/* Removes the files of a job pruned from the history (a job_index_prune_fn). */
static void job_prune_files(void *ctx, const char *job_id) {
    const mg_config *cfg = ctx;
    char path[MG_PATH_MAX];
    if (!id_job_valid(job_id)) return;
    fs_unlink(job_path(cfg, path, job_id, ".cancel"), NULL);
    fs_unlink(job_path(cfg, path, job_id, ".json"), NULL);
}

/* Calls `fn` for each job file in jobs/ (file names "<job_id>.json" only) with the parsed
 * job. Unreadable files are skipped. */
typedef void (*job_visit_fn)(json_t *job, void *ctx);

static void job_foreach(const mg_config *cfg, job_visit_fn fn, void *ctx) {
    char dir[MG_PATH_MAX];
    DIR *d = opendir(config_path(cfg, dir, JOB_DIR));
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char id[ID_JOB_LEN + 1];
        const char *name = de->d_name;
        if (strlen(name) != ID_JOB_LEN + 5 || strcmp(name + ID_JOB_LEN, ".json") != 0) continue;
        memcpy(id, name, ID_JOB_LEN);
        id[ID_JOB_LEN] = '\0';
        if (!id_job_valid(id)) continue;
        json_t *job = job_read(cfg, id, NULL);
        if (!job) continue;
        fn(job, ctx);
        json_decref(job);
    }
    closedir(d);
}

static void job_collect(json_t *job, void *ctx) { json_array_append(ctx, job); }

/* Newest first: created_ns (or created_at), then job_id, as the index orders. */
static int job_order(const void *a, const void *b) {
    json_t *ja = *(json_t *const *)a, *jb = *(json_t *const *)b;
    long long na = job_index_created_ns(ja), nb = job_index_created_ns(jb);
    if (na != nb) return na > nb ? -1 : 1;
    const char *ia = json_string_value(json_object_get(ja, "job_id"));
    const char *ib = json_string_value(json_object_get(jb, "job_id"));
    return -strcmp(ia ? ia : "", ib ? ib : "");
}

/* Returns a new reference to every job file's job, newest first, or NULL. */
static json_t *job_all_sorted(const mg_config *cfg) {
    json_t *all = json_array();
    job_foreach(cfg, job_collect, all);
    size_t n = json_array_size(all);
    json_t **items = malloc((n ? n : 1) * sizeof *items);
    if (!items) {
        json_decref(all);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) items[i] = json_incref(json_array_get(all, i));
    qsort(items, n, sizeof *items, job_order);
    json_array_clear(all);
    for (size_t i = 0; i < n; i++) json_array_append_new(all, items[i]);
    free(items);
    return all;
}

/* Rebuilds the index from the job files; the caller holds the lock. 0, or -1 and err. */
static int job_rebuild_locked(const mg_config *cfg, mg_error *err) {
    char path[MG_PATH_MAX];
    json_t *all = job_all_sorted(cfg);
    if (!all) return mg_error_set(err, 500, "internal_error", NULL, "out of memory");
    int rc = job_index_write_all(config_path(cfg, path, JOB_INDEX), all, cfg->job_history,
                                 job_prune_files, (void *)cfg, err);
    json_decref(all);
    return rc;
}

/* Sets the first byte of the lock file: '1' while the job files and the index may differ. */
static void job_mark(int fd, char c) {
    if (pwrite(fd, &c, 1, 0) != 1) log_warn("cannot mark the queue lock: %s", strerror(errno));
}

/* Takes the queue lock (creating jobs/ if needed) and repairs what a holder that died left
 * behind. Returns the fd, or -1 and err. */
static int job_lock(const mg_config *cfg, mg_error *err) {
    char dir[MG_PATH_MAX], lock[MG_PATH_MAX];
    if (fs_mkdirs(config_path(cfg, dir, JOB_DIR), 0755, err) < 0) return -1;
    int fd = fs_lock(config_path(cfg, lock, JOB_LOCK), 1, err);
    char c = 0;
    if (fd >= 0 && pread(fd, &c, 1, 0) == 1 && c == '1') {
        mg_error e;
        log_warn("a queue writer stopped half-way; rebuilding %s/" JOB_INDEX, cfg->root);
        if (job_rebuild_locked(cfg, &e) == 0)
            job_mark(fd, '0');
        else
            log_warn("%s", e.message);
    }
    return fd;
}

/* Reads the index; the caller holds the lock. A missing or damaged one is rebuilt first.
 * Returns a new index, or NULL and err. */
static job_index *job_index_read_locked(const mg_config *cfg, mg_error *err) {
    char path[MG_PATH_MAX];
    config_path(cfg, path, JOB_INDEX);
    mg_error e;
    job_index *ix = job_index_read(path, &e);
    if (ix) return ix;
    if (strcmp(e.code, "job_index_missing") != 0) log_warn("%s; rebuilding it", e.message);
    if (job_rebuild_locked(cfg, err) < 0) return NULL;
    return job_index_read(path, err);
}

/* Writes `job` (borrowed) durably and puts it into the index; the caller holds the lock
 * `fd`. An index that cannot be written is left marked for a rebuild. 0, or -1 and err. */
static int job_commit(const mg_config *cfg, int fd, json_t *job, mg_error *err) {
    char path[MG_PATH_MAX];
    job_mark(fd, '1');
    if (job_write(cfg, job, 1, err) < 0) {
        job_mark(fd, '0');
        return -1;
    }
    mg_error e;
    job_index *ix = job_index_read_locked(cfg, &e);
    int rc = ix ? job_index_put(config_path(cfg, path, JOB_INDEX), ix, job, cfg->job_history,
                                job_prune_files, (void *)cfg, &e)
                : -1;
    job_index_free(ix);
    if (rc == 0)
        job_mark(fd, '0');
    else
        log_warn("jobs/index not updated (rebuilt at the next lock): %s", e.message);
    return 0;
}

/* Sets updated_at (and the status, when `status` >= 0) of `job` and commits it. */
static int job_update(const mg_config *cfg, int fd, json_t *job, int status, mg_error *err) {
    char now[40];
    job_now_iso(now);
    if (status >= 0)
        json_object_set_new(job, "status", json_string(job_status_name((job_status)status)));
    json_object_set_new(job, "updated_at", json_string(now));
    return job_commit(cfg, fd, job, err);
}

job_index *job_index_load(const mg_config *cfg, mg_error *err) {
    char path[MG_PATH_MAX];
    job_index *ix = job_index_read(config_path(cfg, path, JOB_INDEX), NULL);
    if (ix) return ix;
    int fd = job_lock(cfg, err);
    if (fd < 0) return NULL;
    ix = job_index_read_locked(cfg, err);
    fs_unlock(fd);
    return ix;
}

int job_index_rebuild(const mg_config *cfg, mg_error *err) {
    int fd = job_lock(cfg, err);
    if (fd < 0) return -1;
    int rc = job_rebuild_locked(cfg, err);
    if (rc == 0) job_mark(fd, '0');
    fs_unlock(fd);
    return rc;
}

int job_index_adopt(const mg_config *cfg, const char *job_id) {
    mg_error err;
    if (!job_id || !id_job_valid(job_id)) return 0;
    int fd = job_lock(cfg, &err);
    if (fd < 0) return 0;
    job_index *ix = job_index_read_locked(cfg, &err);
    json_t *job = ix && !job_index_find(ix, job_id) ? job_read(cfg, job_id, NULL) : NULL;
    int added = job && job_commit(cfg, fd, job, &err) == 0;
    if (added) log_info("job %s: taken into jobs/index", job_id);
    json_decref(job);
    job_index_free(ix);
    fs_unlock(fd);
    return added;
}

/* ---- the queue ---- */

/* 1 for a job that holds its model: unfinished and not being cancelled. */
static int job_holds_model(job_status s) {
    return !job_status_terminal(s) && s != JOB_CANCELLING;
}

/* Returns a new reference to the newest job of `model_id` in `ix` that holds its model, read
 * from its file, or NULL. */
static json_t *job_active_in(const mg_config *cfg, const job_index *ix, const char *model_id) {
    size_t mlen = strlen(model_id);
    for (size_t i = 0; ix && i < ix->count; i++) {
        const job_index_entry *e = &ix->entries[i];
        if (!job_holds_model(e->status) || e->model_len != mlen ||
            memcmp(e->model_id, model_id, mlen) != 0)
            continue;
        char id[ID_JOB_LEN + 1];
        memcpy(id, e->job_id, ID_JOB_LEN);
        id[ID_JOB_LEN] = '\0';
        json_t *job = job_read(cfg, id, NULL);
        if (job && job_holds_model(job_get_status(job))) return job;
        json_decref(job);
    }
    return NULL;
}

json_t *job_find_active(const mg_config *cfg, const char *model_id) {
    if (!model_id) return NULL;
    job_index *ix = job_index_load(cfg, NULL);
    json_t *job = job_active_in(cfg, ix, model_id);
    job_index_free(ix);
    return job;
}

/* The expected size in bytes of `model`: sizeBytes when positive, else sizeGb * 1e9. */
static json_int_t job_model_size(json_t *model) {
    json_t *bytes = json_object_get(model, "sizeBytes");
    if (json_is_integer(bytes) && json_integer_value(bytes) > 0) return json_integer_value(bytes);
    double gb = json_number_value(json_object_get(model, "sizeGb"));
    return gb > 0 && gb < 9e9 ? (json_int_t)(gb * 1e9 + 0.5) : 0; /* rounded */
}

/* A fresh job id whose file does not exist. 0, or -1 and err. */
static int job_fresh_id(const mg_config *cfg, char job_id[ID_JOB_LEN + 1], mg_error *err) {
    char path[MG_PATH_MAX];
    do {
        if (id_job_new(job_id) < 0)
            return mg_error_set(err, 500, "internal_error", NULL, "cannot create a job id");
    } while (access(job_path(cfg, path, job_id, ".json"), F_OK) == 0);
    return 0;
}

/* The extension of the file a job of `model` (borrowed) writes: from its download URL, or
 * from the installed file's path (verify). */
static void job_model_ext(json_t *model, char ext[16]) {
    const char *url = json_string_value(json_object_get(model, "downloadUrl"));
    const char *path = json_string_value(json_object_get(model, "path"));
    const char *base = path ? strrchr(path, '/') : NULL;
    const char *dot = base ? strrchr(base, '.') : NULL;
    size_t n = dot ? strlen(dot) : 0, alnum = 1;
    while (alnum < n && isalnum((unsigned char)dot[alnum])) alnum++;
    if (!url && n >= 2 && n <= 15 && alnum == n)
        snprintf(ext, 16, "%s", dot);
    else
        gallery_model_ext(url ? url : "", ext);
}

/* Builds a new queued job of `kind` for `model` (borrowed) with a fresh id. NULL and err. */
static json_t *job_new(const mg_config *cfg, json_t *model, const char *kind, mg_error *err) {
    char job_id[ID_JOB_LEN + 1], now[40], ext[16];
    if (job_fresh_id(cfg, job_id, err) < 0) return NULL;
    job_model_ext(model, ext);
    job_now_iso(now);
    json_int_t size = job_model_size(model);
    json_t *job = json_pack(
        "{s:s,s:s,s:s,s:s?,s:s?,s:s?,s:s,s:I,s:s,s:f,s:I,s:I,s:n,s:n,s:n,s:s,s:s,s:I}", "job_id",
        job_id, "model_id", json_string_value(json_object_get(model, "id")), "kind", kind,
        "name", json_string_value(json_object_get(model, "name")), "url",
        json_string_value(json_object_get(model, "downloadUrl")), "checksum",
        json_string_value(json_object_get(model, "checksum")), "ext", ext, "size", size,
        "status", "queued", "progress", 0.0, "downloaded", (json_int_t)0, "total", size, "error",
        "error_code", "diagnosis", "created_at", now, "updated_at", now, "created_ns",
        job_now_ns());
    json_t *gallery = json_object_get(model, "gallery");
    json_t *path = json_object_get(model, "path");
    json_t *mirrors = json_object_get(model, "mirrors");
    if (job && json_is_array(mirrors) && json_array_size(mirrors) > 0)
        json_object_set(job, "mirrors", mirrors);
    if (job && json_is_string(gallery)) json_object_set(job, "gallery", gallery);
    if (job && json_is_string(path) && strcmp(kind, "verify") == 0)
        json_object_set(job, "path", path);
    if (!job) mg_error_set(err, 500, "internal_error", NULL, "out of memory");
    return job;
}

const char *job_kind(json_t *job) {
    const char *k = json_string_value(json_object_get(job, "kind"));
    return k && *k ? k : "install";
}

json_t *job_enqueue(const mg_config *cfg, json_t *model, int *created, mg_error *err) {
    return job_enqueue_kind(cfg, model, "install", created, err);
}

json_t *job_enqueue_kind(const mg_config *cfg, json_t *model, const char *kind, int *created,
                         mg_error *err) {
    const char *model_id = json_string_value(json_object_get(model, "id"));
    if (created) *created = 0;
    if (!model_id || !id_model_valid(model_id, strlen(model_id))) {
        mg_error_set(err, 400, "invalid_model_id", "id", "invalid model id");
        return NULL;
    }
    int fd = job_lock(cfg, err);
    if (fd < 0) return NULL;
    job_index *ix = job_index_read_locked(cfg, err);
    json_t *job = ix ? job_active_in(cfg, ix, model_id) : NULL;
    if (ix && !job) {
        job = job_new(cfg, model, kind, err);
        if (job && job_commit(cfg, fd, job, err) < 0) {
            json_decref(job);
            job = NULL;
        }
        if (job && created) *created = 1;
    }
    job_index_free(ix);
    fs_unlock(fd);
    return job;
}

json_t *job_load(const mg_config *cfg, const char *job_id, mg_error *err) {
    if (!job_id || !id_job_valid(job_id)) {
        mg_error_set(err, 400, "invalid_job_id", "job_id",
                     "a job id is 16 lower-case hexadecimal digits");
        return NULL;
    }
    return job_read(cfg, job_id, err);
}

/* ---- markers: empty files jobs/<id>.cancel and jobs/<id>.pause ---- */

/* 1 when the marker `suffix` of `job_id` exists. */
static int job_marker_exists(const mg_config *cfg, const char *job_id, const char *suffix) {
    char path[MG_PATH_MAX];
    if (!job_id || !id_job_valid(job_id)) return 0;
    return access(job_path(cfg, path, job_id, suffix), F_OK) == 0;
}

/* Creates (`on`) or removes the marker `suffix` of `job_id` durably. 0, or -1 and err. */
static int job_marker_set(const mg_config *cfg, const char *job_id, const char *suffix, int on,
                          mg_error *err) {
    char path[MG_PATH_MAX];
    if (!job_id || !id_job_valid(job_id)) return 0;
    job_path(cfg, path, job_id, suffix);
    if (!on) {
        if (fs_unlink(path, NULL) == 0) fs_sync_parent(path);
        return 0;
    }
    int fd = fs_open(path, O_WRONLY | O_CREAT, 0644, err);
    if (fd < 0) return -1;
    fsync(fd);
    close(fd);
    fs_sync_parent(path);
    return 0;
}

int job_cancel_requested(const mg_config *cfg, const char *job_id) {
    return job_marker_exists(cfg, job_id, ".cancel");
}

void job_clear_cancel(const mg_config *cfg, const char *job_id) {
    job_marker_set(cfg, job_id, ".cancel", 0, NULL);
}

int job_save(const mg_config *cfg, json_t *job, int durable, mg_error *err) {
    int fd = job_lock(cfg, err);
    if (fd < 0) return -1;
    const char *job_id = json_string_value(json_object_get(job, "job_id"));
    job_status s = job_get_status(job);
    if (!job_status_terminal(s) && s != JOB_CANCELLING && job_cancel_requested(cfg, job_id))
        json_object_set_new(job, "status", json_string(job_status_name(JOB_CANCELLING)));
    else if (!job_status_terminal(s) && s != JOB_CANCELLING && job_pause_requested(cfg, job_id))
        json_object_set_new(job, "status", json_string(job_status_name(JOB_PAUSED)));
    int rc;
    if (durable) {
        rc = job_update(cfg, fd, job, -1, err);
    } else {
        char now[40];
        job_now_iso(now);
        json_object_set_new(job, "updated_at", json_string(now));
        rc = job_write(cfg, job, 0, err);
    }
    fs_unlock(fd);
    return rc;
}

/* A change of a job read under the queue lock (`fd`): `job` (borrowed, status `s`) may be
 * updated in place. 0, or -1 and err. */
typedef int (*job_step_fn)(const mg_config *cfg, int fd, json_t *job, job_status s,
                           const char *job_id, mg_error *err);

/* Reads job `job_id` under the queue lock and applies `step` to it. The job after the step
 * (a new reference), or NULL and err (400 for a malformed id, 404 for an unknown job, or the
 * step's own error). */
static json_t *job_locked_step(const mg_config *cfg, const char *job_id, job_step_fn step,
                               mg_error *err) {
    if (!job_id || !id_job_valid(job_id)) return job_load(cfg, job_id, err);
    int fd = job_lock(cfg, err);
    if (fd < 0) return NULL;
    json_t *job = job_read(cfg, job_id, err);
    int rc = job ? step(cfg, fd, job, job_get_status(job), job_id, err) : -1;
    fs_unlock(fd);
    if (rc < 0) {
        json_decref(job);
        return NULL;
    }
    return job;
}

/* 409 "job_finished" when `s` is a final status, else 0. */
static int job_finished_refusal(job_status s, const char *job_id, mg_error *err) {
    if (!job_status_terminal(s)) return 0;
    return mg_error_set(err, 409, "job_finished", "job_id", "job '%s' has already finished (%s)",
                        job_id, job_status_name(s));
}

static int job_cancel_step(const mg_config *cfg, int fd, json_t *job, job_status s,
                           const char *job_id, mg_error *err) {
    int rc = job_finished_refusal(s, job_id, err);
    if (rc == 0) rc = job_marker_set(cfg, job_id, ".cancel", 1, err);
    if (rc == 0 && s != JOB_CANCELLING) rc = job_update(cfg, fd, job, JOB_CANCELLING, err);
    return rc;
}

json_t *job_cancel(const mg_config *cfg, const char *job_id, mg_error *err) {
    return job_locked_step(cfg, job_id, job_cancel_step, err);
}

/* ---- pause and resume ---- */

int job_pause_requested(const mg_config *cfg, const char *job_id) {
    return job_marker_exists(cfg, job_id, ".pause");
}

void job_clear_pause(const mg_config *cfg, const char *job_id) {
    job_marker_set(cfg, job_id, ".pause", 0, NULL);
}

/* The refusal of pausing `job` (borrowed) in status `s`, or 0 when it may be paused. */
static int job_pause_refused(json_t *job, job_status s, const char *job_id, mg_error *err) {
    if (job_status_terminal(s)) return job_finished_refusal(s, job_id, err);
    if (strcmp(job_kind(job), "verify") == 0)
        return mg_error_set(err, 409, "job_not_pausable", "job_id",
                            "job '%s' verifies a file; only downloads can be paused (cancel it "
                            "instead)", job_id);
    if (s == JOB_VERIFYING || s == JOB_CANCELLING)
        return mg_error_set(err, 409, "job_not_pausable", "job_id",
                            "job '%s' is %s and cannot be paused now", job_id,
                            job_status_name(s));
    return 0;
}

static int job_pause_step(const mg_config *cfg, int fd, json_t *job, job_status s,
                          const char *job_id, mg_error *err) {
    if (s == JOB_PAUSED) return 0;
    int rc = job_pause_refused(job, s, job_id, err);
    if (rc == 0 && s == JOB_DOWNLOADING) rc = job_marker_set(cfg, job_id, ".pause", 1, err);
    if (rc == 0) rc = job_update(cfg, fd, job, JOB_PAUSED, err);
    return rc;
}

json_t *job_pause(const mg_config *cfg, const char *job_id, mg_error *err) {
    return job_locked_step(cfg, job_id, job_pause_step, err);
}

static int job_resume_step(const mg_config *cfg, int fd, json_t *job, job_status s,
                           const char *job_id, mg_error *err) {
    int rc = job_finished_refusal(s, job_id, err);
    if (rc == 0 && s == JOB_CANCELLING)
        rc = mg_error_set(err, 409, "job_cancelling", "job_id", "job '%s' is being cancelled",
                          job_id);
    if (rc == 0 && s == JOB_PAUSED) rc = job_marker_set(cfg, job_id, ".pause", 0, err);
    if (rc == 0 && s == JOB_PAUSED) rc = job_update(cfg, fd, job, JOB_QUEUED, err);
    return rc;
}

json_t *job_resume(const mg_config *cfg, const char *job_id, mg_error *err) {
    return job_locked_step(cfg, job_id, job_resume_step, err);
}

int job_settle_pause(const mg_config *cfg, json_t *job, mg_error *err) {
    const char *job_id = json_string_value(json_object_get(job, "job_id"));
    if (!job_id || !id_job_valid(job_id))
        return mg_error_set(err, 500, "internal_error", NULL, "job without a valid job_id");
    int fd = job_lock(cfg, err);
    if (fd < 0) return -1;
    json_t *disk = job_read(cfg, job_id, NULL);
    job_status s = disk ? job_get_status(disk) : JOB_PAUSED;
    if (job_status_terminal(s) || s == JOB_DOWNLOADING || s == JOB_VERIFYING) s = JOB_PAUSED;
    json_decref(disk);
    job_marker_set(cfg, job_id, ".pause", 0, NULL);
    int rc = job_update(cfg, fd, job, (int)s, err);
    fs_unlock(fd);
    return rc;
}

/* ---- the models with unfinished jobs ---- */

/* Adds `job_id` of `model_id` with `kind` and status `s` to `active` unless it has one. */
static void job_active_put(json_t *active, const char *model_id, const char *job_id,
                           const char *kind, job_status s) {
    if (!model_id || !job_id || json_object_get(active, model_id)) return;
    json_object_set_new(active, model_id,
                        json_pack("{s:s,s:s,s:s}", "job_id", job_id, "kind", kind, "status",
                                  job_status_name(s)));
}

json_t *job_active_models(const mg_config *cfg) {
    json_t *active = json_object();
    job_index *ix = job_index_load(cfg, NULL);
    for (size_t i = 0; ix && i < ix->count; i++) {
        const job_index_entry *e = &ix->entries[i];
        if (job_status_terminal(e->status)) continue;
        json_t *pub = json_loadb(e->json, e->json_len, 0, NULL);
        job_active_put(active, json_string_value(json_object_get(pub, "model_id")),
                       json_string_value(json_object_get(pub, "job_id")), job_kind(pub),
                       e->status);
        json_decref(pub);
    }
    job_index_free(ix);
    return active;
}

/* job_foreach visitor: collects the unfinished jobs into the object `ctx`. */
static void job_collect_active(json_t *job, void *ctx) {
    job_status s = job_get_status(job);
    if (job_status_terminal(s)) return;
    job_active_put(ctx, json_string_value(json_object_get(job, "model_id")),
                   json_string_value(json_object_get(job, "job_id")), job_kind(job), s);
}

int job_with_queue_lock(const mg_config *cfg, job_locked_fn fn, void *ctx, mg_error *err) {
    int fd = job_lock(cfg, err);
    if (fd < 0) return -1;
    json_t *active = json_object();
    job_foreach(cfg, job_collect_active, active);
    fn(ctx, active);
    json_decref(active);
    fs_unlock(fd);
    return 0;
}

int job_claim(const mg_config *cfg, json_t *job, mg_error *err) {
    const char *id = json_string_value(json_object_get(job, "job_id"));
    if (!id || !id_job_valid(id)) {
        mg_error_set(err, 400, "invalid_job_id", "job_id", "job without a valid job_id");
        return -1;
    }
    char job_id[ID_JOB_LEN + 1];
    snprintf(job_id, sizeof job_id, "%s", id);
    int fd = job_lock(cfg, err);
    if (fd < 0) return -1;
    int rc = 0;
    json_t *disk = job_read(cfg, job_id, err);
    job_status s = disk ? job_get_status(disk) : JOB_FAILED;
    if (!disk) {
        rc = -1;
    } else if (job_status_terminal(s) || s == JOB_PAUSED) {
        rc = 0;
    } else if (s == JOB_CANCELLING || job_cancel_requested(cfg, job_id)) {
        rc = job_update(cfg, fd, disk, JOB_CANCELLED, err);
        if (rc == 0) job_clear_cancel(cfg, job_id);
    } else {
        job_status run = strcmp(job_kind(disk), "verify") == 0 ? JOB_VERIFYING : JOB_DOWNLOADING;
        rc = job_update(cfg, fd, disk, run, err) < 0 ? -1 : 1;
    }
    fs_unlock(fd);
    if (disk) {
        json_object_update(job, disk);
        json_decref(disk);
    }
    return rc;
}

json_t *job_public(json_t *job) {
    static const char *const fields[] = {
        "job_id", "model_id", "kind",       "status",    "progress",   "downloaded",
        "total",  "error",    "error_code", "diagnosis", "created_at", "updated_at", "source_url"};
    json_t *out = json_object();
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        json_t *v = json_object_get(job, fields[i]);
        json_object_set_new(out, fields[i], v ? json_deep_copy(v) : json_null());
    }
    if (!json_is_string(json_object_get(out, "kind")))
        json_object_set_new(out, "kind", json_string("install"));
    redact_json(out); /* a job file of an older version may name a URL in full */
    return out;
}

json_t *job_view(const mg_config *cfg, json_t *job) {
    json_t *out = job_public(job);
    json_object_set_new(out, "node", json_string(cfg->node_name));
    return out;
}

/* ---- pages of the list ---- */

/* Writes the JSON object `text` (`len` bytes, from "{") with "node" added as its first
 * member. node_name needs no escaping (config_node_name_ok). */
static int job_page_object(const mg_config *cfg, const char *text, size_t len, job_write_fn fn,
                           void *ctx) {
    char head[CONFIG_NODE_MAX + 16];
    if (len < 2 || text[0] != '{') return fn(ctx, text, len);
    size_t i = 1;
    while (i < len - 1 && isspace((unsigned char)text[i])) i++;
    int empty = text[i] == '}'; /* "{}" */
    int n = snprintf(head, sizeof head, "{\"node\":\"%s\"%s", cfg->node_name, empty ? "" : ",");
    if (fn(ctx, head, (size_t)n) < 0) return -1;
    return fn(ctx, text + 1, len - 1);
}

/* Writes the public view of index entry `e`: its file's current state for a live job. */
static int job_page_entry(const mg_config *cfg, const job_index_entry *e, job_write_fn fn,
                          void *ctx) {
    if (job_status_live(e->status)) {
        char id[ID_JOB_LEN + 1];
        memcpy(id, e->job_id, ID_JOB_LEN);
        id[ID_JOB_LEN] = '\0';
        json_t *job = job_read(cfg, id, NULL);
        json_t *pub = job ? job_public(job) : NULL;
        char *text = pub ? json_dumps(pub, JSON_COMPACT) : NULL;
        json_decref(pub);
        json_decref(job);
        if (text) {
            int rc = job_page_object(cfg, text, strlen(text), fn, ctx);
            free(text);
            return rc;
        }
    }
    return job_page_object(cfg, e->json, e->json_len, fn, ctx);
}

int job_page_write(const mg_config *cfg, const job_index *ix, int status, size_t offset,
                   size_t limit, job_write_fn fn, void *ctx) {
    char head[128 + CONFIG_NODE_MAX];
    size_t total = job_index_count(ix, status);
    int n = snprintf(head, sizeof head,
                     "{\"node\":\"%s\",\"total\":%zu,\"offset\":%zu,\"limit\":%zu,\"jobs\":[",
                     cfg->node_name, total, offset, limit);
    if (fn(ctx, head, (size_t)n) < 0) return -1;
    for (size_t i = offset; i < total && i - offset < limit; i++) {
        if (i > offset && fn(ctx, ",", 1) < 0) return -1;
        if (job_page_entry(cfg, job_index_get(ix, status, i), fn, ctx) < 0) return -1;
    }
    return fn(ctx, "]}", 2);
}
