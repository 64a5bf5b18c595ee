/* test_job.c - the durable install queue: enqueue and its dedup (also across processes),
 * claim, cancel in every state, the public view, malformed ids, and jobs/index: its order,
 * pages with a status filter, the bounded history, and its repair (missing, damaged, a
 * writer that died half-way, job files that appeared outside the queue). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "id.h"
#include "job.h"
#include "job_index.h"
#include "unit.h"

static void setup(mg_config *cfg) {
    mg_error err;
    if (config_load(cfg, unit_tmpdir(), &err) != 0) unit_fail(__FILE__, __LINE__, "%s", err.message);
}

/* A gallery model (new reference). */
static json_t *model(const char *id) {
    char url[256];
    snprintf(url, sizeof url, "https://example.com/org/repo/resolve/main/%s.Q4_K_M.gguf", id);
    return json_pack("{s:s,s:s,s:s,s:s,s:f}", "id", id, "name", "A model", "downloadUrl", url,
                     "checksum",
                     "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                     "sizeGb", 1.5);
}

static json_t *enqueue(const mg_config *cfg, const char *id, int *created) {
    mg_error err;
    json_t *m = model(id);
    json_t *job = job_enqueue(cfg, m, created, &err);
    json_decref(m);
    if (!job) unit_fail(__FILE__, __LINE__, "job_enqueue: %s", err.message);
    return job;
}

/* job_write_fn into a FILE *. */
static int page_write(void *ctx, const char *data, size_t len) {
    return fwrite(data, 1, len, ctx) == len ? 0 : -1;
}

static const char *str(json_t *job, const char *key) {
    return json_string_value(json_object_get(job, key));
}

static int count_job_files(const mg_config *cfg) {
    char cmd[MG_PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "ls '%s/jobs' | grep -c '^[0-9a-f]*\\.json$'", cfg->root);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1) n = -1;
        pclose(p);
    }
    return n;
}

/* Sets the status of job `id` on disk. */
static void set_status(const mg_config *cfg, const char *id, const char *status) {
    mg_error err;
    json_t *job = job_load(cfg, id, &err);
    CHECK(job != NULL);
    if (!job) return;
    json_object_set_new(job, "status", json_string(status));
    CHECK_INT(job_save(cfg, job, 1, &err), 0);
    json_decref(job);
}

UNIT_TEST(status_names) {
    job_status s;
    CHECK_STR(job_status_name(JOB_VERIFYING), "verifying");
    CHECK_INT(job_status_parse("cancelled", &s), 0);
    CHECK_INT(s, JOB_CANCELLED);
    CHECK_INT(job_status_parse("bogus", &s), -1);
    CHECK(job_status_terminal(JOB_INSTALLED) && job_status_terminal(JOB_FAILED));
    CHECK(!job_status_terminal(JOB_QUEUED) && !job_status_terminal(JOB_DOWNLOADING));
    CHECK(!job_status_terminal(JOB_CANCELLING) && !job_status_terminal(JOB_PAUSED));
    CHECK_INT(job_status_parse("cancelling", &s), 0);
    CHECK_INT(s, JOB_CANCELLING);
    CHECK(job_status_live(JOB_CANCELLING) && !job_status_live(JOB_QUEUED));
    char now[40];
    job_now_iso(now);
    CHECK_INT(strlen(now), 25);
    CHECK_CONTAINS(now, "+00:00");
}

UNIT_TEST(enqueue_fields_and_dedup) {
    mg_config cfg;
    mg_error err;
    setup(&cfg);
    int created = -1;
    json_t *a = enqueue(&cfg, "alpha", &created);
    CHECK_INT(created, 1);
    CHECK(id_job_valid(str(a, "job_id")));
    CHECK_STR(str(a, "model_id"), "alpha");
    CHECK_STR(str(a, "name"), "A model");
    CHECK_CONTAINS(str(a, "url"), "https://example.com/");
    CHECK_CONTAINS(str(a, "checksum"), "sha256:");
    CHECK_STR(str(a, "ext"), ".gguf");
    CHECK_INT(json_integer_value(json_object_get(a, "size")), 1500000000LL);
    CHECK_INT(json_integer_value(json_object_get(a, "total")), 1500000000LL);
    CHECK_INT(json_integer_value(json_object_get(a, "downloaded")), 0);
    CHECK(json_is_number(json_object_get(a, "progress")));
    CHECK(json_number_value(json_object_get(a, "progress")) == 0);
    CHECK(json_is_null(json_object_get(a, "error")));
    CHECK_STR(str(a, "status"), "queued");
    CHECK_CONTAINS(str(a, "created_at"), "+00:00");
    CHECK_STR(str(a, "created_at"), str(a, "updated_at"));

    json_t *b = enqueue(&cfg, "alpha", &created);
    CHECK_INT(created, 0);
    CHECK_STR(str(b, "job_id"), str(a, "job_id"));
    CHECK_INT(count_job_files(&cfg), 1);

    json_t *loaded = job_load(&cfg, str(a, "job_id"), &err);
    CHECK(json_equal(loaded, a));
    json_t *active = job_find_active(&cfg, "alpha");
    CHECK_STR(str(active, "job_id"), str(a, "job_id"));
    CHECK(job_find_active(&cfg, "beta") == NULL);

    /* Once finished, a new install makes a new job. */
    set_status(&cfg, str(a, "job_id"), "failed");
    json_t *c = enqueue(&cfg, "alpha", &created);
    CHECK_INT(created, 1);
    CHECK(strcmp(str(c, "job_id"), str(a, "job_id")) != 0);
    CHECK_INT(count_job_files(&cfg), 2);

    /* sizeBytes wins over sizeGb. */
    json_t *m = model("beta");
    json_object_set_new(m, "sizeBytes", json_integer(1234));
    json_t *d = job_enqueue(&cfg, m, &created, &err);
    CHECK_INT(json_integer_value(json_object_get(d, "size")), 1234);
    json_decref(m);

    m = model("../evil");
    CHECK(job_enqueue(&cfg, m, &created, &err) == NULL);
    CHECK_INT(err.status, 400);
    json_decref(m);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(d);
    json_decref(loaded);
    json_decref(active);
    config_free(&cfg);
}

UNIT_TEST(enqueue_is_serialised_between_processes) {
    mg_config cfg;
    setup(&cfg);
    int fds[2];
    CHECK_INT(pipe(fds), 0);
    enum { N = 8 };
    for (int i = 0; i < N; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            mg_error err;
            int created = 0;
            json_t *m = model("same");
            json_t *job = job_enqueue(&cfg, m, &created, &err);
            char line[32];
            snprintf(line, sizeof line, "%d %s\n", created,
                     job ? json_string_value(json_object_get(job, "job_id")) : "none");
            if (write(fds[1], line, strlen(line)) < 0) _exit(2);
            _exit(job ? 0 : 1);
        }
    }
    close(fds[1]);
    for (int i = 0; i < N; i++) {
        int st = 0;
        wait(&st);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    FILE *f = fdopen(fds[0], "r");
    int created_total = 0, lines = 0;
    char first[32] = "", id[32];
    int created;
    while (f && fscanf(f, "%d %31s", &created, id) == 2) {
        created_total += created;
        if (!lines++) snprintf(first, sizeof first, "%s", id);
        CHECK_STR(id, first);
    }
    if (f) fclose(f);
    CHECK_INT(lines, N);
    CHECK_INT(created_total, 1);
    CHECK_INT(count_job_files(&cfg), 1);
    config_free(&cfg);
}

UNIT_TEST(claim) {
    mg_config cfg;
    mg_error err;
    setup(&cfg);
    int created;
    json_t *a = enqueue(&cfg, "alpha", &created);
    CHECK_INT(job_claim(&cfg, a, &err), 1);
    CHECK_STR(str(a, "status"), "downloading");
    json_t *disk = job_load(&cfg, str(a, "job_id"), &err);
    CHECK_STR(str(disk, "status"), "downloading");
    json_decref(disk);

    /* A job left verifying by a crashed daemon is claimable again. */
    set_status(&cfg, str(a, "job_id"), "verifying");
    CHECK_INT(job_claim(&cfg, a, &err), 1);
    CHECK_STR(str(a, "status"), "downloading");

    /* Terminal jobs are not. */
    set_status(&cfg, str(a, "job_id"), "installed");
    CHECK_INT(job_claim(&cfg, a, &err), 0);
    CHECK_STR(str(a, "status"), "installed");

    /* A queued job with a cancel marker becomes cancelled instead. */
    json_t *b = enqueue(&cfg, "beta", &created);
    char path[MG_PATH_MAX], rel[64];
    snprintf(rel, sizeof rel, "jobs/%s.cancel", str(b, "job_id"));
    FILE *f = fopen(config_path(&cfg, path, rel), "w");
    if (f) fclose(f);
    CHECK(job_cancel_requested(&cfg, str(b, "job_id")));
    CHECK_INT(job_claim(&cfg, b, &err), 0);
    CHECK_STR(str(b, "status"), "cancelled");
    CHECK(!job_cancel_requested(&cfg, str(b, "job_id")));
    json_decref(a);
    json_decref(b);
    config_free(&cfg);
}

UNIT_TEST(cancel_each_state) {
    mg_config cfg;
    mg_error err;
    setup(&cfg);
    int created;
    /* Queued: cancelling with the marker; the installer confirms (claim turns it cancelled). */
    json_t *a = enqueue(&cfg, "alpha", &created);
    json_t *c = job_cancel(&cfg, str(a, "job_id"), &err);
    CHECK_STR(str(c, "status"), "cancelling");
    CHECK(job_cancel_requested(&cfg, str(a, "job_id")));
    json_t *disk = job_load(&cfg, str(a, "job_id"), &err);
    CHECK_STR(str(disk, "status"), "cancelling");
    json_decref(disk);
    json_decref(c);
    /* a job being cancelled does not hold its model: a new install makes a new job */
    CHECK(job_find_active(&cfg, "alpha") == NULL);
    json_t *again = enqueue(&cfg, "alpha", &created);
    CHECK_INT(created, 1);
    CHECK(strcmp(str(again, "job_id"), str(a, "job_id")) != 0);
    CHECK_INT(job_claim(&cfg, a, &err), 0);
    CHECK_STR(str(a, "status"), "cancelled");
    CHECK(!job_cancel_requested(&cfg, str(a, "job_id")));
    json_t *active = job_find_active(&cfg, "alpha");
    CHECK_STR(str(active, "job_id"), str(again, "job_id"));
    json_decref(active);
    json_decref(again);

    /* Terminal: 409. */
    CHECK(job_cancel(&cfg, str(a, "job_id"), &err) == NULL);
    CHECK_INT(err.status, 409);
    CHECK_STR(err.code, "job_finished");

    /* Running: the marker and cancelling; a progress save of the runner keeps cancelling. */
    json_t *b = enqueue(&cfg, "beta", &created);
    CHECK_INT(job_claim(&cfg, b, &err), 1);
    c = job_cancel(&cfg, str(b, "job_id"), &err);
    CHECK_STR(str(c, "status"), "cancelling");
    CHECK(job_cancel_requested(&cfg, str(b, "job_id")));
    json_decref(c);
    c = job_cancel(&cfg, str(b, "job_id"), &err); /* twice is fine */
    CHECK(c != NULL);
    json_decref(c);
    CHECK_STR(str(b, "status"), "downloading");
    CHECK_INT(job_save(&cfg, b, 0, &err), 0);
    CHECK_STR(str(b, "status"), "cancelling");
    disk = job_load(&cfg, str(b, "job_id"), &err);
    CHECK_STR(str(disk, "status"), "cancelling");
    json_decref(disk);
    job_clear_cancel(&cfg, str(b, "job_id"));
    CHECK(!job_cancel_requested(&cfg, str(b, "job_id")));

    /* Unknown and malformed ids. */
    CHECK(job_cancel(&cfg, "0123456789abcdef", &err) == NULL);
    CHECK_INT(err.status, 404);
    CHECK(job_cancel(&cfg, "../x", &err) == NULL);
    CHECK_INT(err.status, 400);
    json_decref(a);
    json_decref(b);
    config_free(&cfg);
}

UNIT_TEST(public_fields) {
    mg_config cfg;
    setup(&cfg);
    int created;
    json_t *a = enqueue(&cfg, "alpha", &created);
    json_t *p = job_public(a);
    const char *want[] = {"job_id",     "model_id",  "kind",       "status",
                          "progress",   "downloaded", "total",     "error",
                          "error_code", "diagnosis", "created_at", "updated_at",
                          "source_url"};
    CHECK_INT(json_object_size(p), 13);
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        CHECK(json_object_get(p, want[i]) != NULL);
    CHECK_STR(str(p, "kind"), "install");
    CHECK(json_is_null(json_object_get(p, "error_code")));
    CHECK(json_is_null(json_object_get(p, "diagnosis")));
    CHECK(json_is_null(json_object_get(p, "source_url")));
    CHECK(json_object_get(p, "url") == NULL);
    CHECK(json_object_get(p, "checksum") == NULL);
    json_decref(p);
    /* A job file from before version 2 gets kind "install" and nulls. */
    json_object_del(a, "kind");
    json_object_del(a, "error_code");
    p = job_public(a);
    CHECK_STR(str(p, "kind"), "install");
    CHECK(json_is_null(json_object_get(p, "error_code")));
    json_decref(p);
    json_decref(a);
    config_free(&cfg);
}

/* The job ids of the index, newest first, joined by spaces (into out). */
static const char *index_ids(const mg_config *cfg, int status, char *out, size_t n) {
    mg_error err;
    job_index *ix = job_index_load(cfg, &err);
    out[0] = '\0';
    for (size_t i = 0; ix && i < job_index_count(ix, status); i++) {
        size_t len = strlen(out);
        snprintf(out + len, n - len, "%s%.16s", len ? " " : "",
                 job_index_get(ix, status, i)->job_id);
    }
    if (!ix) unit_fail(__FILE__, __LINE__, "job_index_load: %s", err.message);
    job_index_free(ix);
    return out;
}

UNIT_TEST(save_progress_and_index_order) {
    mg_config cfg;
    mg_error err;
    setup(&cfg);
    int created;
    json_t *a = enqueue(&cfg, "alpha", &created);
    json_t *b = enqueue(&cfg, "beta", &created);
    json_t *c = enqueue(&cfg, "gamma", &created);
    char want[64], got[256];
    snprintf(want, sizeof want, "%s %s %s", str(c, "job_id"), str(b, "job_id"), str(a, "job_id"));
    CHECK_STR(index_ids(&cfg, -1, got, sizeof got), want);
    /* Progress-only saves do not touch the index; a page reads a live job from its file. */
    CHECK_INT(job_claim(&cfg, b, &err), 1);
    json_object_set_new(b, "progress", json_real(42.5));
    json_object_set_new(b, "downloaded", json_integer(42));
    CHECK_INT(job_save(&cfg, b, 0, &err), 0);
    job_index *ix = job_index_load(&cfg, &err);
    const job_index_entry *e = job_index_find(ix, str(b, "job_id"));
    CHECK(e && e->status == JOB_DOWNLOADING);
    CHECK(e && strstr(e->json, "\"downloaded\":0") != NULL);
    json_t *page = NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK_INT(job_page_write(&cfg, ix, JOB_DOWNLOADING, 0, 10, page_write, f), 0);
    fclose(f);
    page = json_loadb(text, len, 0, NULL);
    CHECK_INT(json_integer_value(json_object_get(page, "total")), 1);
    json_t *j = json_array_get(json_object_get(page, "jobs"), 0);
    CHECK_INT(json_integer_value(json_object_get(j, "downloaded")), 42);
    CHECK_STR(str(j, "node"), cfg.node_name);
    CHECK(json_number_value(json_object_get(j, "progress")) == 42.5);
    json_decref(page);
    free(text);
    job_index_free(ix);

    /* No temporary files are left behind: three jobs and the index. */
    char cmd[MG_PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s/jobs' | grep -vc '^\\.lock$') -eq 4", cfg.root);
    CHECK_INT(system(cmd), 0);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    config_free(&cfg);
}

UNIT_TEST(invalid_and_unknown_ids) {
    mg_config cfg;
    mg_error err;
    setup(&cfg);
    const char *bad[] = {"", "xyz", "0123456789ABCDEF", "0123456789abcde", "../../etc/passwd",
                         "0123456789abcdef0", "0123456789abcdeg"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(job_load(&cfg, bad[i], &err) == NULL);
        CHECK_INT(err.status, 400);
        CHECK_STR(err.code, "invalid_job_id");
    }
    CHECK(job_load(&cfg, NULL, &err) == NULL);
    CHECK_INT(err.status, 400);
    CHECK(job_load(&cfg, "0123456789abcdef", &err) == NULL);
    CHECK_INT(err.status, 404);
    CHECK_STR(err.code, "job_not_found");
    config_free(&cfg);
}

/* Ends job `id` with `status` as the installer would (claimed, then a durable save). */
static void finish(const mg_config *cfg, const char *id, const char *status) {
    mg_error err;
    json_t *job = job_load(cfg, id, &err);
    CHECK(job != NULL);
    if (!job) return;
    json_object_set_new(job, "status", json_string(status));
    CHECK_INT(job_save(cfg, job, 1, &err), 0);
    json_decref(job);
}

UNIT_TEST(history_is_bounded) {
    mg_config cfg;
    setup(&cfg);
    cfg.job_history = 3;
    char ids[6][ID_JOB_LEN + 1], path[MG_PATH_MAX], rel[128], got[256];
    const char *models[6] = {"m0", "m1", "m2", "m3", "m4", "m5"};
    for (int i = 0; i < 6; i++) {
        int created;
        json_t *j = enqueue(&cfg, models[i], &created);
        snprintf(ids[i], sizeof ids[i], "%s", str(j, "job_id"));
        json_decref(j);
    }
    /* five finish, oldest first; the youngest stays queued */
    for (int i = 0; i < 5; i++) finish(&cfg, ids[i], i % 2 ? "failed" : "installed");
    CHECK_INT(count_job_files(&cfg), 4);
    for (int i = 0; i < 2; i++) {
        snprintf(rel, sizeof rel, "jobs/%s.json", ids[i]);
        CHECK(access(config_path(&cfg, path, rel), F_OK) != 0);
    }
    char want[128];
    snprintf(want, sizeof want, "%s %s %s %s", ids[5], ids[4], ids[3], ids[2]);
    CHECK_STR(index_ids(&cfg, -1, got, sizeof got), want);
    snprintf(want, sizeof want, "%s %s", ids[4], ids[2]);
    CHECK_STR(index_ids(&cfg, JOB_INSTALLED, got, sizeof got), want);
    CHECK_STR(index_ids(&cfg, JOB_QUEUED, got, sizeof got), ids[5]);
    config_free(&cfg);
}

UNIT_TEST(pages) {
    mg_config cfg;
    mg_error err;
    setup(&cfg);
    char ids[5][ID_JOB_LEN + 1];
    const char *models[5] = {"p0", "p1", "p2", "p3", "p4"};
    for (int i = 0; i < 5; i++) {
        int created;
        json_t *j = enqueue(&cfg, models[i], &created);
        snprintf(ids[i], sizeof ids[i], "%s", str(j, "job_id"));
        json_decref(j);
        if (i % 2 == 0) finish(&cfg, ids[i], "failed");
    }
    job_index *ix = job_index_load(&cfg, &err);
    char *text = NULL;
    size_t len = 0;
    snprintf(cfg.node_name, sizeof cfg.node_name, "n1"); /* the page and each job name it */
    FILE *f = open_memstream(&text, &len);
    CHECK_INT(job_page_write(&cfg, ix, JOB_FAILED, 1, 1, page_write, f), 0);
    fclose(f);
    json_t *page = json_loadb(text, len, 0, NULL);
    CHECK_INT(json_integer_value(json_object_get(page, "total")), 3);
    CHECK_INT(json_integer_value(json_object_get(page, "offset")), 1);
    CHECK_INT(json_integer_value(json_object_get(page, "limit")), 1);
    json_t *jobs = json_object_get(page, "jobs");
    CHECK_INT(json_array_size(jobs), 1);
    CHECK_STR(str(json_array_get(jobs, 0), "job_id"), ids[2]);
    CHECK_STR(str(json_array_get(jobs, 0), "status"), "failed");
    CHECK_STR(str(json_array_get(jobs, 0), "kind"), "install");
    CHECK_STR(str(json_array_get(jobs, 0), "node"), "n1");
    CHECK_STR(str(page, "node"), "n1");
    json_decref(page);
    free(text);
    /* past the end: no jobs, the total still counted */
    text = NULL;
    f = open_memstream(&text, &len);
    CHECK_INT(job_page_write(&cfg, ix, -1, 7, 100, page_write, f), 0);
    fclose(f);
    CHECK_STR(text, "{\"node\":\"n1\",\"total\":5,\"offset\":7,\"limit\":100,\"jobs\":[]}");
    free(text);
    job_index_free(ix);
    config_free(&cfg);
}

/* Writes `s` to jobs/index. */
static void write_index(const mg_config *cfg, const char *s) {
    char path[MG_PATH_MAX];
    FILE *f = fopen(config_path(cfg, path, "jobs/index"), "w");
    if (f) {
        fputs(s, f);
        fclose(f);
    }
}

UNIT_TEST(index_repairs_itself) {
    mg_config cfg;
    mg_error err;
    setup(&cfg);
    int created;
    json_t *a = enqueue(&cfg, "alpha", &created);
    json_t *b = enqueue(&cfg, "beta", &created);
    char want[64], got[256], path[MG_PATH_MAX];
    snprintf(want, sizeof want, "%s %s", str(b, "job_id"), str(a, "job_id"));
    /* missing */
    unlink(config_path(&cfg, path, "jobs/index"));
    CHECK_STR(index_ids(&cfg, -1, got, sizeof got), want);
    /* damaged: not ours, or a cut line */
    write_index(&cfg, "garbage\n");
    CHECK_STR(index_ids(&cfg, -1, got, sizeof got), want);
    write_index(&cfg, "mg-jobs-index 1\n0123456789abcdef queued 1 x {");
    CHECK_STR(index_ids(&cfg, -1, got, sizeof got), want);
    /* a writer that died between the job file and the index: the next lock holder repairs */
    write_index(&cfg, "mg-jobs-index 1\n");
    FILE *f = fopen(config_path(&cfg, path, "jobs/.lock"), "r+");
    if (f) {
        fputc('1', f);
        fclose(f);
    }
    CHECK_STR(index_ids(&cfg, -1, got, sizeof got), "");
    json_t *found = job_find_active(&cfg, "alpha"); /* no lock: still the stale index */
    CHECK(found == NULL);
    json_t *again = enqueue(&cfg, "alpha", &created); /* the lock repairs it first */
    CHECK_INT(created, 0);
    CHECK_STR(str(again, "job_id"), str(a, "job_id"));
    CHECK_STR(index_ids(&cfg, -1, got, sizeof got), want);
    /* a job file that appeared outside the queue is adopted */
    json_t *c = json_deep_copy(a);
    json_object_set_new(c, "job_id", json_string("00000000deadbeef"));
    json_object_set_new(c, "created_ns", json_integer(1));
    CHECK_INT(job_save(&cfg, c, 0, &err), 0);
    CHECK(job_index_adopt(&cfg, "00000000deadbeef") == 1);
    CHECK(job_index_adopt(&cfg, "00000000deadbeef") == 0);
    char want2[96];
    snprintf(want2, sizeof want2, "%s 00000000deadbeef", want);
    CHECK_STR(index_ids(&cfg, -1, got, sizeof got), want2);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(again);
    config_free(&cfg);
}

UNIT_TEST(kinds_and_active_models) {
    mg_config cfg;
    mg_error err;
    setup(&cfg);
    int created;
    json_t *m = model("alpha");
    json_object_set_new(m, "gallery", json_string("default"));
    json_t *u = job_enqueue_kind(&cfg, m, "update", &created, &err);
    CHECK_INT(created, 1);
    CHECK_STR(str(u, "kind"), "update");
    CHECK_STR(str(u, "gallery"), "default");
    CHECK_STR(job_kind(u), "update");
    /* one unfinished job per model, whatever its kind */
    json_t *i = job_enqueue(&cfg, m, &created, &err);
    CHECK_INT(created, 0);
    CHECK_STR(str(i, "job_id"), str(u, "job_id"));
    json_decref(i);
    json_decref(m);
    json_t *v = json_pack("{s:s,s:s,s:s,s:s,s:i}", "id", "beta", "name", "Beta", "checksum",
                          "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                          "path", "models/llm/beta.bin", "sizeBytes", 1234);
    json_t *vj = job_enqueue_kind(&cfg, v, "verify", &created, &err);
    CHECK_STR(str(vj, "path"), "models/llm/beta.bin");
    CHECK_STR(str(vj, "ext"), ".bin");
    CHECK_INT(json_integer_value(json_object_get(vj, "size")), 1234);
    CHECK(json_is_null(json_object_get(vj, "url")));
    /* a verify job is claimed into verifying */
    CHECK_INT(job_claim(&cfg, vj, &err), 1);
    CHECK_STR(str(vj, "status"), "verifying");
    json_t *active = job_active_models(&cfg);
    CHECK_INT(json_object_size(active), 2);
    CHECK_STR(str(json_object_get(active, "alpha"), "kind"), "update");
    CHECK_STR(str(json_object_get(active, "beta"), "status"), "verifying");
    json_decref(active);
    /* a job without a kind (an older file) is an install */
    json_t *old = json_pack("{s:s}", "job_id", "x");
    CHECK_STR(job_kind(old), "install");
    json_decref(old);
    json_decref(v);
    json_decref(vj);
    json_decref(u);
    config_free(&cfg);
}

/* job_with_queue_lock callback: copies the active set into ctx. */
static void take_active(void *ctx, json_t *active) {
    *(json_t **)ctx = json_deep_copy(active);
}

UNIT_TEST(pause_and_resume) {
    mg_config cfg;
    mg_error err;
    setup(&cfg);
    int created;
    /* queued: paused at once, no marker; never claimed; resume queues it again */
    json_t *a = enqueue(&cfg, "alpha", &created);
    char aid[ID_JOB_LEN + 1];
    snprintf(aid, sizeof aid, "%s", str(a, "job_id"));
    json_t *p = job_pause(&cfg, aid, &err);
    CHECK_STR(str(p, "status"), "paused");
    CHECK(!job_pause_requested(&cfg, aid));
    json_decref(p);
    CHECK_INT(job_claim(&cfg, a, &err), 0);
    CHECK_STR(str(a, "status"), "paused");
    p = job_pause(&cfg, aid, &err); /* twice is fine */
    CHECK_STR(str(p, "status"), "paused");
    json_decref(p);
    /* a paused job still holds its model; it counts as active */
    json_t *same = enqueue(&cfg, "alpha", &created);
    CHECK_INT(created, 0);
    json_decref(same);
    json_t *locked = NULL;
    CHECK_INT(job_with_queue_lock(&cfg, take_active, &locked, &err), 0);
    CHECK_STR(str(json_object_get(locked, "alpha"), "status"), "paused");
    json_decref(locked);
    json_t *r = job_resume(&cfg, aid, &err);
    CHECK_STR(str(r, "status"), "queued");
    json_decref(r);
    r = job_resume(&cfg, aid, &err); /* a queued job: as it is */
    CHECK_STR(str(r, "status"), "queued");
    json_decref(r);

    /* running: the marker; the runner's saves keep it paused; settling writes paused */
    CHECK_INT(job_claim(&cfg, a, &err), 1);
    p = job_pause(&cfg, aid, &err);
    CHECK_STR(str(p, "status"), "paused");
    CHECK(job_pause_requested(&cfg, aid));
    json_decref(p);
    CHECK_STR(str(a, "status"), "downloading");
    CHECK_INT(job_save(&cfg, a, 0, &err), 0);
    CHECK_STR(str(a, "status"), "paused");
    json_object_set_new(a, "downloaded", json_integer(4096));
    CHECK_INT(job_settle_pause(&cfg, a, &err), 0);
    CHECK(!job_pause_requested(&cfg, aid));
    json_t *disk = job_load(&cfg, aid, &err);
    CHECK_STR(str(disk, "status"), "paused");
    CHECK_INT(json_integer_value(json_object_get(disk, "downloaded")), 4096);
    json_decref(disk);

    /* a resume that came before the runner stopped wins */
    json_t *again = job_resume(&cfg, aid, &err);
    json_decref(again);
    CHECK_INT(job_claim(&cfg, a, &err), 1);
    json_decref(job_pause(&cfg, aid, &err));
    json_decref(job_resume(&cfg, aid, &err));
    CHECK_INT(job_settle_pause(&cfg, a, &err), 0);
    CHECK_STR(str(a, "status"), "queued");

    /* refusals */
    set_status(&cfg, aid, "verifying");
    CHECK(job_pause(&cfg, aid, &err) == NULL);
    CHECK_INT(err.status, 409);
    CHECK_STR(err.code, "job_not_pausable");
    set_status(&cfg, aid, "installed");
    CHECK(job_pause(&cfg, aid, &err) == NULL);
    CHECK_STR(err.code, "job_finished");
    CHECK(job_resume(&cfg, aid, &err) == NULL);
    CHECK_STR(err.code, "job_finished");
    json_t *b = enqueue(&cfg, "beta", &created);
    json_decref(job_cancel(&cfg, str(b, "job_id"), &err));
    CHECK(job_resume(&cfg, str(b, "job_id"), &err) == NULL);
    CHECK_STR(err.code, "job_cancelling");
    CHECK(job_pause(&cfg, str(b, "job_id"), &err) == NULL);
    CHECK_STR(err.code, "job_not_pausable");
    CHECK(job_pause(&cfg, "0123456789abcdef", &err) == NULL);
    CHECK_INT(err.status, 404);
    CHECK(job_resume(&cfg, "nope", &err) == NULL);
    CHECK_INT(err.status, 400);
    json_decref(b);
    json_decref(a);
    config_free(&cfg);
}

UNIT_TEST(mirrors_go_with_the_job) {
    mg_config cfg;
    mg_error err;
    setup(&cfg);
    json_t *m = model("mirrored");
    json_object_set_new(m, "mirrors", json_pack("[s,s]", "https://a.example/m.gguf",
                                                "https://b.example/m.gguf"));
    json_t *job = job_enqueue(&cfg, m, NULL, &err);
    CHECK(job != NULL);
    json_t *mirrors = json_object_get(job, "mirrors");
    CHECK_INT(json_array_size(mirrors), 2);
    CHECK_STR(json_string_value(json_array_get(mirrors, 1)), "https://b.example/m.gguf");
    json_t *p = job_public(job);
    CHECK(json_object_get(p, "mirrors") == NULL);
    json_decref(p);
    json_decref(job);
    json_decref(m);
    config_free(&cfg);
}
