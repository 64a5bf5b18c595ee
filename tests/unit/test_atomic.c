/* test_atomic.c - every durable file is replaced atomically: the registry, the gallery cache,
 * its meta, its gzip copy and its search index, job files (status changes and progress
 * updates), jobs/index and a partial download's meta. For each: every write makes a new
 * inode (temp file + rename, never the file rewritten in place); a write that fails half-way
 * (RLIMIT_FSIZE) leaves the previous version byte for byte and no temporary file; and
 * writers in two processes are serialised (nothing lost) while a reader in a third never
 * sees a torn file. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "gallery.h"
#include "id.h"
#include "job.h"
#include "job_index.h"
#include "log.h"
#include "partial.h"
#include "registry.h"
#include "search.h"
#include "unit.h"

#define CHECKSUM "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static mg_config cfg;

static void setup(void) {
    mg_error err;
    if (config_load(&cfg, unit_tmpdir(), &err) != 0)
        unit_fail(__FILE__, __LINE__, "%s", err.message);
    log_set_fd(open(unit_path("log"), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
}

/* A string of `n` 'x' (caller frees). */
static char *pad(size_t n) {
    char *s = malloc(n + 1);
    memset(s, 'x', n);
    s[n] = '\0';
    return s;
}

/* ---- the durable files, each with a writer of version `v` padded by `extra` bytes ---- */

typedef struct durable {
    const char *name;
    const char *rel;   /* the file under the data root */
    const char *dir;   /* its folder, where no temporary file may stay */
    int (*write)(int v, size_t extra, mg_error *err);
} durable;

static int write_registry(int v, size_t extra, mg_error *err) {
    char *p = pad(extra);
    json_t *e = json_pack("{s:s,s:s+,s:s,s:i,s:s,s:s,s:b}", "id", "m", "name", "version ", p,
                          "path", "models/llm/m.gguf", "size", v, "installedAt",
                          "2026-01-01T00:00:00+00:00", "backend", "gallery", "active", 0);
    int rc = registry_add(&cfg, "m", e, err);
    json_decref(e);
    free(p);
    return rc;
}

static int write_cache(int v, size_t extra, mg_error *err) {
    char *p = pad(extra), path[MG_PATH_MAX];
    json_t *g = json_pack("{s:i,s:s,s:[{s:s,s:s,s:s,s:s,s:f,s:s}]}", "version", v, "generatedAt",
                          "2026-01-01T00:00:00Z", "models", "id", "m", "name", "M", "checksum",
                          CHECKSUM, "downloadUrl", "https://example.com/m.gguf", "sizeGb",
                          (double)v, "description", p);
    json_t *meta = json_pack("{s:i}", "test_version", v);
    int rc = gallery_cache_write(config_path(&cfg, path, "cache/gallery_cache.json"), g, meta, err);
    json_decref(g);
    json_decref(meta);
    free(p);
    return rc;
}

static char job_id[ID_JOB_LEN + 1];

/* The job of these tests, created on first use. New reference. */
static json_t *the_job(mg_error *err) {
    if (job_id[0]) return job_load(&cfg, job_id, err);
    json_t *m = json_pack("{s:s,s:s,s:s,s:s,s:f}", "id", "m", "name", "M", "downloadUrl",
                          "https://example.com/m.gguf", "checksum", CHECKSUM, "sizeGb", 1.0);
    int created;
    json_t *job = job_enqueue(&cfg, m, &created, err);
    json_decref(m);
    if (job)
        snprintf(job_id, sizeof job_id, "%s", json_string_value(json_object_get(job, "job_id")));
    return job;
}

static int write_job(int v, size_t extra, int durable_write, mg_error *err) {
    json_t *job = the_job(err);
    if (!job) return -1;
    char *p = pad(extra);
    json_object_set_new(job, "downloaded", json_integer(v));
    json_object_set_new(job, "error", json_string(p));
    int rc = job_save(&cfg, job, durable_write, err);
    json_decref(job);
    free(p);
    return rc;
}

static int write_job_status(int v, size_t extra, mg_error *err) {
    return write_job(v, extra, 1, err);
}

static int write_job_progress(int v, size_t extra, mg_error *err) {
    return write_job(v, extra, 0, err);
}

static partial part;

static int write_partial_meta(int v, size_t extra, mg_error *err) {
    char why[512], validator[PARTIAL_VALIDATOR_MAX];
    if (part.fd < 0 && part.part[0] == '\0') {
        partial_paths(&part, &cfg, "m", ".gguf");
        char *url = pad(1500); /* room for a long URL: the meta can be big */
        memcpy(url, "https://example.com/", 20);
        int rc = partial_open(&part, url, CHECKSUM, why, sizeof why);
        free(url);
        if (rc < 0) return mg_error_set(err, 500, "io_error", NULL, "%s", why);
    }
    char *y = pad(extra < 200 ? extra : 200);
    snprintf(validator, sizeof validator, "\"%d-%s\"", v, y);
    free(y);
    if (partial_set_validator(&part, validator, "https://example.com/", why, sizeof why) < 0)
        return mg_error_set(err, 500, "io_error", NULL, "%s", why);
    return 0;
}

static const durable durables[] = {
    {"registry", "config/models.json", "config", write_registry},
    {"gallery cache", "cache/gallery_cache.json", "cache", write_cache},
    {"gallery cache meta", "cache/gallery_cache.meta.json", "cache", write_cache},
    {"gallery cache gzip copy", "cache/gallery_cache.json.gz", "cache", write_cache},
    {"search index", "cache/gallery_cache.index", "cache", write_cache},
    {"job file (status change)", NULL, "jobs", write_job_status},
    {"job file (progress)", NULL, "jobs", write_job_progress},
    {"jobs/index", "jobs/index", "jobs", write_job_status},
    {"partial meta", "models/.partial/m.gguf.part.meta", "models/.partial", write_partial_meta},
};
#define DURABLES (sizeof durables / sizeof durables[0])

static void durable_reset(void) {
    job_id[0] = '\0';
    if (part.part[0]) partial_close(&part);
    memset(&part, 0, sizeof part);
    part.fd = -1;
}

static const char *durable_path(const durable *d) {
    static char path[MG_PATH_MAX];
    char rel[64];
    if (d->rel) return config_path(&cfg, path, d->rel);
    snprintf(rel, sizeof rel, "jobs/%s.json", job_id);
    return config_path(&cfg, path, rel);
}

static ino_t inode_of(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* ---- every write a new inode ---- */

UNIT_TEST(every_write_replaces_the_file) {
    setup();
    for (size_t i = 0; i < DURABLES; i++) {
        const durable *d = &durables[i];
        mg_error err;
        durable_reset();
        ino_t seen[4];
        for (int v = 1; v <= 4; v++) {
            if (d->write(v, 10, &err) != 0) {
                unit_fail(__FILE__, __LINE__, "%s: write %d failed: %s", d->name, v, err.message);
                break;
            }
            seen[v - 1] = inode_of(durable_path(d));
            CHECK(seen[v - 1] != 0);
            if (v > 1 && seen[v - 1] == seen[v - 2])
                unit_fail(__FILE__, __LINE__, "%s: write %d kept inode %lu: rewritten in place",
                          d->name, v, (unsigned long)seen[v - 1]);
        }
        char dir[MG_PATH_MAX];
        const char *left = unit_dir_list(config_path(&cfg, dir, d->dir));
        if (strstr(left, "tmp"))
            unit_fail(__FILE__, __LINE__, "%s: temporary files left in %s: %s", d->name, d->dir,
                      left);
    }
    durable_reset();
    config_free(&cfg);
}

/* ---- a write that fails half-way ---- */

/* Runs d->write with a file-size limit of `limit` bytes (SIGXFSZ ignored: writes fail EFBIG). */
static int write_limited(const durable *d, int v, size_t extra, rlim_t limit, mg_error *err) {
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = limit;
    void (*was)(int) = signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim);
    int rc = d->write(v, extra, err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, was);
    return rc;
}

UNIT_TEST(failed_write_keeps_the_previous_version_and_no_temp_file) {
    setup();
    for (size_t i = 0; i < DURABLES; i++) {
        const durable *d = &durables[i];
        mg_error err;
        durable_reset();
        if (strcmp(d->rel ? d->rel : "", "jobs/index") == 0) continue; /* its own test below */
        CHECK_INT(d->write(1, 10, &err), 0);
        CHECK_INT(d->write(2, 20, &err), 0);
        size_t before_len = 0;
        char *before = unit_read_file(durable_path(d), &before_len), dir[MG_PATH_MAX];
        char listing[4096];
        snprintf(listing, sizeof listing, "%s", unit_dir_list(config_path(&cfg, dir, d->dir)));
        /* the next version is far bigger than the limit, which is above the current size */
        size_t extra = d->write == write_partial_meta ? 200 : 200000;
        rlim_t limit = (rlim_t)before_len + 64;
        mg_error_clear(&err);
        int rc = write_limited(d, 3, extra, limit, &err);
        size_t after_len = 0;
        char *after = unit_read_file(durable_path(d), &after_len);
        if (rc == 0)
            unit_fail(__FILE__, __LINE__, "%s: a write over the size limit succeeded", d->name);
        if (!after || after_len != before_len || memcmp(after, before, before_len) != 0)
            unit_fail(__FILE__, __LINE__, "%s: the previous version is gone (%zu bytes, was %zu)",
                      d->name, after ? after_len : 0, before_len);
        const char *now = unit_dir_list(config_path(&cfg, dir, d->dir));
        if (strcmp(now, listing) != 0)
            unit_fail(__FILE__, __LINE__, "%s: %s holds \"%s\" after the failed write, was \"%s\"",
                      d->name, d->dir, now, listing);
        free(before);
        free(after);
        /* and the next write works again */
        if (d->write(4, 10, &err) != 0)
            unit_fail(__FILE__, __LINE__, "%s: write after the failure: %s", d->name, err.message);
    }
    durable_reset();
    config_free(&cfg);
}

/* jobs/index is bigger than a job file: the job is saved, the index write fails, and the
 * index stays as it was, readable, with no temporary file. */
UNIT_TEST(failed_index_write_keeps_the_previous_index) {
    setup();
    mg_error err;
    for (int i = 0; i < 40; i++) {
        char id[32];
        snprintf(id, sizeof id, "model-%02d", i);
        json_t *m = json_pack("{s:s,s:s,s:s,s:s,s:f}", "id", id, "name", "M", "downloadUrl",
                              "https://example.com/m.gguf", "checksum", CHECKSUM, "sizeGb", 1.0);
        int created;
        json_decref(job_enqueue(&cfg, m, &created, &err));
        json_decref(m);
    }
    durable_reset();
    CHECK_INT(write_job_status(1, 10, &err), 0);
    char path[MG_PATH_MAX], dir[MG_PATH_MAX], listing[8192];
    size_t len = 0, job_len = 0;
    char *before = unit_read_file(config_path(&cfg, path, "jobs/index"), &len);
    const durable *job_status = &durables[0];
    while (job_status->write != write_job_status) job_status++;
    free(unit_read_file(durable_path(job_status), &job_len));
    CHECK(len > job_len + 2000);
    snprintf(listing, sizeof listing, "%s", unit_dir_list(config_path(&cfg, dir, "jobs")));
    rlim_t limit = (rlim_t)(job_len + 1000);
    CHECK_INT(write_limited(job_status, 2, 100, limit, &err), 0);
    size_t after_len = 0;
    char *after = unit_read_file(path, &after_len);
    CHECK(after && after_len == len && memcmp(after, before, len) == 0);
    CHECK_STR(unit_dir_list(dir), listing);
    job_index *ix = job_index_load(&cfg, &err);
    CHECK(ix != NULL);
    if (ix) CHECK_INT(ix->count, 41);
    job_index_free(ix);
    free(before);
    free(after);
    config_free(&cfg);
}

/* ---- two writers and a reader in three processes ---- */

/* Forks a child that runs fn(arg) and exits with its result. */
static pid_t spawn(int (*fn)(int), int arg) {
    pid_t pid = fork();
    if (pid == 0) _exit(fn(arg));
    return pid;
}

static int wait_ok(pid_t pid) {
    int status = 0;
    return waitpid(pid, &status, 0) == pid && WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

#define WRITES 25

static int registry_writer(int who) {
    for (int i = 0; i < WRITES; i++) {
        char id[32];
        mg_error err;
        snprintf(id, sizeof id, "w%d-%02d", who, i);
        json_t *e = json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:b}", "id", id, "name", id, "path",
                              "models/llm/x.gguf", "size", i, "installedAt",
                              "2026-01-01T00:00:00+00:00", "backend", "gallery", "active", 0);
        int rc = registry_add(&cfg, id, e, &err);
        json_decref(e);
        if (rc != 0) return 1;
    }
    return 0;
}

/* Reads until the file `stop` appears; exits 1 when a read ever failed. */
static int registry_reader(int unused) {
    (void)unused;
    int reads = 0;
    while (access(unit_path("stop"), F_OK) != 0 || reads < 10) {
        mg_error err;
        json_t *doc = registry_load(&cfg, &err);
        if (!doc) return 1;
        json_decref(doc);
        reads++;
    }
    return 0;
}

UNIT_TEST(registry_writers_are_serialised_and_readers_see_whole_files) {
    setup();
    pid_t reader = spawn(registry_reader, 0);
    pid_t a = spawn(registry_writer, 1), b = spawn(registry_writer, 2);
    CHECK_INT(wait_ok(a), 0);
    CHECK_INT(wait_ok(b), 0);
    unit_write_file(unit_path("stop"), "", 0);
    CHECK_INT(wait_ok(reader), 0);
    mg_error err;
    json_t *doc = registry_load(&cfg, &err);
    CHECK_INT(json_object_size(json_object_get(doc, "models")), 2 * WRITES);
    json_decref(doc);
    char dir[MG_PATH_MAX];
    CHECK_STR(unit_dir_list(config_path(&cfg, dir, "config")), ".models.lock models.json");
    config_free(&cfg);
}

static int job_writer(int who) {
    for (int i = 0; i < WRITES; i++) {
        char id[32];
        mg_error err;
        snprintf(id, sizeof id, "w%d-%02d", who, i);
        json_t *m = json_pack("{s:s,s:s,s:s,s:s,s:f}", "id", id, "name", id, "downloadUrl",
                              "https://example.com/m.gguf", "checksum", CHECKSUM, "sizeGb", 1.0);
        int created = 0;
        json_t *job = job_enqueue(&cfg, m, &created, &err);
        json_decref(m);
        if (!job || !created) return 1;
        /* progress updates of that job, as the installer makes them */
        for (int k = 1; k <= 3 && job; k++) {
            json_object_set_new(job, "downloaded", json_integer(k));
            if (job_save(&cfg, job, 0, &err) != 0) return 1;
        }
        json_decref(job);
    }
    return 0;
}

static int job_reader(int unused) {
    (void)unused;
    int reads = 0;
    while (access(unit_path("stop"), F_OK) != 0 || reads < 10) {
        mg_error err;
        job_index *ix = job_index_load(&cfg, &err);
        if (!ix) return 1;
        for (size_t i = 0; i < ix->count; i++) {
            char id[ID_JOB_LEN + 1];
            memcpy(id, ix->entries[i].job_id, ID_JOB_LEN);
            id[ID_JOB_LEN] = '\0';
            json_t *job = job_load(&cfg, id, &err);
            if (!job) return 2;
            json_decref(job);
        }
        job_index_free(ix);
        reads++;
    }
    return 0;
}

UNIT_TEST(job_writers_are_serialised_and_readers_see_whole_files) {
    setup();
    pid_t reader = spawn(job_reader, 0);
    pid_t a = spawn(job_writer, 1), b = spawn(job_writer, 2);
    CHECK_INT(wait_ok(a), 0);
    CHECK_INT(wait_ok(b), 0);
    unit_write_file(unit_path("stop"), "", 0);
    CHECK_INT(wait_ok(reader), 0);
    mg_error err;
    job_index *ix = job_index_load(&cfg, &err);
    CHECK(ix != NULL);
    if (ix) CHECK_INT(ix->count, 2 * WRITES);
    job_index_free(ix);
    char dir[MG_PATH_MAX];
    CHECK(strstr(unit_dir_list(config_path(&cfg, dir, "jobs")), "tmp") == NULL);
    config_free(&cfg);
}

/* Two processes change the gallery source and rebuild the cache: the cache and its meta
 * stay a pair (a last rebuild changes nothing) and hold the last source. */
static int cache_writer(int who) {
    for (int i = 0; i < 12; i++) {
        char text[512];
        int n = snprintf(text, sizeof text,
                         "{\"version\":1,\"generatedAt\":\"2026\",\"models\":[{\"id\":\"w%d-%02d\","
                         "\"name\":\"M\",\"checksum\":\"%s\",\"downloadUrl\":"
                         "\"https://example.com/m.gguf\",\"sizeGb\":%d}]}",
                         who, i, CHECKSUM, who * 100 + i + 1);
        char path[MG_PATH_MAX], tmp[MG_PATH_MAX + 16];
        config_path(&cfg, path, "config/models_gallery.json");
        snprintf(tmp, sizeof tmp, "%s.%d", path, who);
        mg_error err;
        if (unit_write_file(tmp, text, (size_t)n) != 0 || rename(tmp, path) != 0) return 1;
        if (gallery_cache_ensure(&cfg, &err) != 0) return 2;
    }
    return 0;
}

UNIT_TEST(cache_writers_are_serialised) {
    setup();
    mg_error err;
    CHECK_INT(cache_writer(0), 0);
    pid_t a = spawn(cache_writer, 1), b = spawn(cache_writer, 2);
    CHECK_INT(wait_ok(a), 0);
    CHECK_INT(wait_ok(b), 0);
    char cache[MG_PATH_MAX], dir[MG_PATH_MAX];
    config_path(&cfg, cache, "cache/gallery_cache.json");
    ino_t ino = inode_of(cache);
    CHECK_INT(gallery_cache_ensure(&cfg, &err), 0);
    CHECK_INT(inode_of(cache), ino); /* the meta matched the cache and the source */
    json_t *src =
        gallery_parse_file(config_path(&cfg, dir, "config/models_gallery.json"), NULL, &err);
    search_index *idx = search_index_load(cache, &err);
    CHECK(src && idx);
    if (src && idx) {
        json_t *first = json_array_get(json_object_get(src, "models"), 0);
        const char *want = json_string_value(json_object_get(first, "id"));
        json_t *m = search_index_get(idx, want);
        CHECK(m != NULL);
        json_decref(m);
        CHECK_INT(search_index_count(idx), 1);
    }
    json_decref(src);
    search_index_free(idx);
    CHECK(strstr(unit_dir_list(config_path(&cfg, dir, "cache")), "tmp") == NULL);
    config_free(&cfg);
}
