/* job.c - the durable install queue: jobs/{job_id}.json written atomically, creation,
 * claiming and cancellation serialised by the exclusive flock jobs/.lock, and the cancel
 * marker jobs/{job_id}.cancel the installer watches for running jobs.
 *
 * Besides the public fields a job file holds what the installer needs (name, url, checksum,
 * ext, size) and "created_ns", the creation time in nanoseconds that orders jobs created
 * within the same second. */
#include "job.h"

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
#include "log.h"
#include "redact.h"

#define JOB_DIR "jobs"
#define JOB_LOCK "jobs/.lock"
#define JOB_PRUNE_AGE_S (7 * 24 * 3600)

static const char *const job_status_names[] = {"queued",    "downloading", "verifying",
                                               "installed", "failed",      "cancelled"};

const char *job_status_name(job_status s) {
    if ((int)s < 0 || (size_t)s >= sizeof job_status_names / sizeof *job_status_names)
        return "failed";
    return job_status_names[s];
}

int job_status_parse(const char *name, job_status *out) {
    for (size_t i = 0; name && i < sizeof job_status_names / sizeof *job_status_names; i++) {
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

/* Takes the queue lock (creating jobs/ if needed). Returns the fd, or -1 and err. */
static int job_lock(const mg_config *cfg, mg_error *err) {
    char dir[MG_PATH_MAX], lock[MG_PATH_MAX];
    if (fs_mkdirs(config_path(cfg, dir, JOB_DIR), 0755, err) < 0) return -1;
    return fs_lock(config_path(cfg, lock, JOB_LOCK), 1, err);
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

/* Sets updated_at (and the status, when `status` >= 0) of `job` and writes it. */
static int job_update(const mg_config *cfg, json_t *job, int status, int durable, mg_error *err) {
    char now[40];
    job_now_iso(now);
    if (status >= 0)
        json_object_set_new(job, "status", json_string(job_status_name((job_status)status)));
    json_object_set_new(job, "updated_at", json_string(now));
    return job_write(cfg, job, durable, err);
}

/* Calls `fn` for each job file in jobs/ (file names "<job_id>.json" only), with the parsed
 * job and its file's mtime. `fn` returns nonzero to stop. Unreadable files are skipped. */
typedef int (*job_visit_fn)(const mg_config *cfg, json_t *job, time_t mtime, void *ctx);

static void job_foreach(const mg_config *cfg, job_visit_fn fn, void *ctx) {
    char dir[MG_PATH_MAX];
    DIR *d = opendir(config_path(cfg, dir, JOB_DIR));
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char id[ID_JOB_LEN + 1], path[MG_PATH_MAX];
        const char *name = de->d_name;
        if (strlen(name) != ID_JOB_LEN + 5 || strcmp(name + ID_JOB_LEN, ".json") != 0) continue;
        memcpy(id, name, ID_JOB_LEN);
        id[ID_JOB_LEN] = '\0';
        if (!id_job_valid(id)) continue;
        struct stat st;
        if (stat(job_path(cfg, path, id, ".json"), &st) != 0) continue;
        json_t *job = job_read(cfg, id, NULL);
        if (!job) continue;
        int stop = fn(cfg, job, st.st_mtime, ctx);
        json_decref(job);
        if (stop) break;
    }
    closedir(d);
}

/* 1 when `a` was created after `b` (created_at, then created_ns, then job_id). */
static int job_newer(json_t *a, json_t *b) {
    const char *ca = json_string_value(json_object_get(a, "created_at"));
    const char *cb = json_string_value(json_object_get(b, "created_at"));
    int c = strcmp(ca ? ca : "", cb ? cb : "");
    if (c != 0) return c > 0;
    json_int_t na = json_integer_value(json_object_get(a, "created_ns"));
    json_int_t nb = json_integer_value(json_object_get(b, "created_ns"));
    if (na != nb) return na > nb;
    const char *ia = json_string_value(json_object_get(a, "job_id"));
    const char *ib = json_string_value(json_object_get(b, "job_id"));
    return strcmp(ia ? ia : "", ib ? ib : "") > 0;
}

struct job_find_ctx {
    const char *model_id;
    json_t *found; /* newest non-terminal job of model_id (owned) */
    int prune;     /* delete terminal job files older than JOB_PRUNE_AGE_S */
};

static void job_prune_file(const mg_config *cfg, json_t *job) {
    char path[MG_PATH_MAX];
    const char *job_id = json_string_value(json_object_get(job, "job_id"));
    if (!job_id || !id_job_valid(job_id)) return;
    fs_unlink(job_path(cfg, path, job_id, ".cancel"), NULL);
    fs_unlink(job_path(cfg, path, job_id, ".json"), NULL);
}

static int job_find_visit(const mg_config *cfg, json_t *job, time_t mtime, void *ctx) {
    struct job_find_ctx *f = ctx;
    int terminal = job_status_terminal(job_get_status(job));
    if (terminal) {
        if (f->prune && mtime < time(NULL) - JOB_PRUNE_AGE_S) job_prune_file(cfg, job);
        return 0;
    }
    const char *model_id = json_string_value(json_object_get(job, "model_id"));
    if (!model_id || strcmp(model_id, f->model_id) != 0) return 0;
    if (!f->found || job_newer(job, f->found)) {
        json_decref(f->found);
        f->found = json_incref(job);
    }
    return 0;
}

json_t *job_find_active(const mg_config *cfg, const char *model_id) {
    struct job_find_ctx f = {model_id, NULL, 0};
    if (!model_id) return NULL;
    job_foreach(cfg, job_find_visit, &f);
    return f.found;
}

/* The expected size in bytes of `model`: sizeBytes when an integer, else sizeGb * 1e9. */
static json_int_t job_model_size(json_t *model) {
    json_t *bytes = json_object_get(model, "sizeBytes");
    if (json_is_integer(bytes) && json_integer_value(bytes) >= 0) return json_integer_value(bytes);
    double gb = json_number_value(json_object_get(model, "sizeGb"));
    return gb > 0 && gb < 9e9 ? (json_int_t)(gb * 1e9 + 0.5) : 0; /* rounded */
}

/* Builds a new queued job for `model` (borrowed) with a fresh id. NULL and err on failure. */
static json_t *job_new(const mg_config *cfg, json_t *model, mg_error *err) {
    char job_id[ID_JOB_LEN + 1], path[MG_PATH_MAX], now[40], ext[16];
    do {
        if (id_job_new(job_id) < 0) {
            mg_error_set(err, 500, "internal_error", NULL, "cannot create a job id");
            return NULL;
        }
    } while (access(job_path(cfg, path, job_id, ".json"), F_OK) == 0);
    const char *url = json_string_value(json_object_get(model, "downloadUrl"));
    const char *name = json_string_value(json_object_get(model, "name"));
    const char *checksum = json_string_value(json_object_get(model, "checksum"));
    gallery_model_ext(url ? url : "", ext);
    job_now_iso(now);
    json_int_t size = job_model_size(model);
    return json_pack("{s:s,s:s,s:s?,s:s?,s:s?,s:s,s:I,s:s,s:f,s:I,s:I,s:n,s:s,s:s,s:I}",
                     "job_id", job_id, "model_id",
                     json_string_value(json_object_get(model, "id")), "name", name, "url", url,
                     "checksum", checksum, "ext", ext, "size", size, "status", "queued",
                     "progress", 0.0, "downloaded", (json_int_t)0, "total", size, "error",
                     "created_at", now, "updated_at", now, "created_ns", job_now_ns());
}

json_t *job_enqueue(const mg_config *cfg, json_t *model, int *created, mg_error *err) {
    const char *model_id = json_string_value(json_object_get(model, "id"));
    if (created) *created = 0;
    if (!model_id || !id_model_valid(model_id, strlen(model_id))) {
        mg_error_set(err, 400, "invalid_model_id", "id", "invalid model id");
        return NULL;
    }
    int fd = job_lock(cfg, err);
    if (fd < 0) return NULL;
    struct job_find_ctx f = {model_id, NULL, 1};
    job_foreach(cfg, job_find_visit, &f);
    json_t *job = f.found;
    if (!job) {
        job = job_new(cfg, model, err);
        if (job && job_write(cfg, job, 1, err) < 0) {
            json_decref(job);
            job = NULL;
        }
        if (job && created) *created = 1;
    }
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

static int job_list_visit(const mg_config *cfg, json_t *job, time_t mtime, void *ctx) {
    (void)cfg;
    (void)mtime;
    json_array_append(ctx, job);
    return 0;
}

static int job_list_cmp(const void *a, const void *b) {
    json_t *ja = *(json_t *const *)a, *jb = *(json_t *const *)b;
    if (job_newer(ja, jb)) return -1;
    if (job_newer(jb, ja)) return 1;
    return 0;
}

json_t *job_list(const mg_config *cfg, mg_error *err) {
    (void)err;
    json_t *all = json_array();
    job_foreach(cfg, job_list_visit, all);
    size_t n = json_array_size(all);
    json_t **items = n ? malloc(n * sizeof *items) : NULL;
    if (n && !items) {
        json_decref(all);
        mg_error_set(err, 500, "internal_error", NULL, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) items[i] = json_incref(json_array_get(all, i));
    if (n > 1) qsort(items, n, sizeof *items, job_list_cmp);
    json_array_clear(all);
    for (size_t i = 0; i < n; i++) json_array_append_new(all, items[i]);
    free(items);
    return all;
}

int job_save(const mg_config *cfg, json_t *job, int durable, mg_error *err) {
    int fd = job_lock(cfg, err);
    if (fd < 0) return -1;
    int rc = job_update(cfg, job, -1, durable, err);
    fs_unlock(fd);
    return rc;
}

int job_cancel_requested(const mg_config *cfg, const char *job_id) {
    char path[MG_PATH_MAX];
    if (!job_id || !id_job_valid(job_id)) return 0;
    return access(job_path(cfg, path, job_id, ".cancel"), F_OK) == 0;
}

void job_clear_cancel(const mg_config *cfg, const char *job_id) {
    char path[MG_PATH_MAX];
    if (!job_id || !id_job_valid(job_id)) return;
    if (fs_unlink(job_path(cfg, path, job_id, ".cancel"), NULL) == 0) fs_sync_parent(path);
}

/* Creates the cancel marker of `job_id` durably. 0, or -1 and err. */
static int job_mark_cancel(const mg_config *cfg, const char *job_id, mg_error *err) {
    char path[MG_PATH_MAX];
    job_path(cfg, path, job_id, ".cancel");
    int fd = fs_open(path, O_WRONLY | O_CREAT, 0644, err);
    if (fd < 0) return -1;
    fsync(fd);
    close(fd);
    fs_sync_parent(path);
    return 0;
}

json_t *job_cancel(const mg_config *cfg, const char *job_id, mg_error *err) {
    if (!job_id || !id_job_valid(job_id)) return job_load(cfg, job_id, err);
    int fd = job_lock(cfg, err);
    if (fd < 0) return NULL;
    json_t *job = job_read(cfg, job_id, err);
    job_status s = job ? job_get_status(job) : JOB_FAILED;
    int rc = 0;
    if (!job) {
        rc = -1;
    } else if (job_status_terminal(s)) {
        rc = mg_error_set(err, 409, "job_finished", "job_id", "job '%s' has already finished (%s)",
                          job_id, job_status_name(s));
    } else if (s == JOB_QUEUED) {
        rc = job_update(cfg, job, JOB_CANCELLED, 1, err);
        job_clear_cancel(cfg, job_id);
    } else {
        rc = job_mark_cancel(cfg, job_id, err);
    }
    fs_unlock(fd);
    if (rc < 0) {
        json_decref(job);
        return NULL;
    }
    return job;
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
    if (!disk) {
        rc = -1;
    } else if (!job_status_terminal(job_get_status(disk))) {
        if (job_cancel_requested(cfg, job_id)) {
            rc = job_update(cfg, disk, JOB_CANCELLED, 1, err);
            if (rc == 0) job_clear_cancel(cfg, job_id);
        } else {
            rc = job_update(cfg, disk, JOB_DOWNLOADING, 1, err) < 0 ? -1 : 1;
        }
    }
    fs_unlock(fd);
    if (disk) {
        json_object_update(job, disk);
        json_decref(disk);
    }
    return rc;
}

json_t *job_public(json_t *job) {
    static const char *const fields[] = {"job_id",     "model_id", "status",
                                         "progress",   "downloaded", "total",
                                         "error",      "created_at", "updated_at"};
    json_t *out = json_object();
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        json_t *v = json_object_get(job, fields[i]);
        json_object_set_new(out, fields[i], v ? json_deep_copy(v) : json_null());
    }
    redact_json(out); /* a job file of an older version may name a URL in full */
    return out;
}
