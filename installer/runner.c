/* runner.c - the thread of one job (see runner.h): install and update download through
 * download.c, verify re-hashes through verify.c; both end here with the registry entry and
 * the final status. */
#include "runner.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "download.h"
#include "log.h"
#include "mirror.h"
#include "metrics.h"
#include "partial.h"
#include "redact.h"
#include "registry.h"
#include "verify.h"

#define RUNNER_SAVE_MS 1000
#define RUNNER_CANCEL_CHECK_MS 500

static const char *runner_str(json_t *job, const char *key) {
    const char *s = json_string_value(json_object_get(job, key));
    return s ? s : "";
}

static double runner_percent(int64_t downloaded, int64_t total) {
    if (total <= 0) return 0;
    double p = 100.0 * (double)downloaded / (double)total;
    return p > 100 ? 100 : p;
}

/* Publishes the job's state as a progress message; `bps` bytes per second. */
static void runner_publish(runner *r, int64_t bps) {
    json_t *job = r->job;
    progress_state ps = {
        .model_id = r->model_id,
        .job_id = r->job_id,
        .kind = runner_str(job, "kind")[0] ? runner_str(job, "kind") : "install",
        .status = job_status_name(r->status),
        .progress = json_number_value(json_object_get(job, "progress")),
        .downloaded = json_integer_value(json_object_get(job, "downloaded")),
        .total = json_integer_value(json_object_get(job, "total")),
        .bytes_per_second = bps,
        .error = json_string_value(json_object_get(job, "error")),
        .error_code = json_string_value(json_object_get(job, "error_code")),
        .source_url = json_string_value(json_object_get(job, "source_url"))};
    progress_send(progress_message(&ps));
}

/* Sets the job's progress fields (and status, error and error code) in memory. */
static void runner_set(runner *r, job_status st, int64_t downloaded, int64_t total,
                       const char *error, const char *code) {
    r->status = st;
    json_object_set_new(r->job, "status", json_string(job_status_name(st)));
    json_object_set_new(r->job, "progress",
                        json_real(st == JOB_INSTALLED ? 100.0 : runner_percent(downloaded, total)));
    json_object_set_new(r->job, "downloaded", json_integer(downloaded));
    json_object_set_new(r->job, "total", json_integer(total));
    char shown[3 * 800 + 16];
    json_object_set_new(r->job, "error",
                        error ? json_string(redact_text(shown, sizeof shown, error)) : json_null());
    json_object_set_new(r->job, "error_code", code && *code ? json_string(code) : json_null());
    if (!json_object_get(r->job, "diagnosis"))
        json_object_set_new(r->job, "diagnosis", json_null());
}

static int runner_is(const runner *r, const char *kind) {
    return strcmp(job_kind(r->job), kind) == 0;
}

static void runner_save(runner *r, int durable) {
    mg_error err;
    if (job_save(&r->cfg, r->job, durable, &err) < 0)
        log_warn("job %s: cannot save: %s", r->job_id, err.message);
    r->last_save_ms = progress_now_ms();
}

/* download hook: progress and status changes (none once the job is being cancelled). */
static void runner_report(void *ud, job_status st, int64_t downloaded, int64_t total) {
    runner *r = ud;
    int64_t now = progress_now_ms();
    int changed = st != r->status;
    if (r->status == JOB_CANCELLING) return;
    if (!changed && !progress_meter_due(&r->meter, now, downloaded)) return;
    runner_set(r, st, downloaded, total, NULL, NULL);
    runner_publish(r, progress_meter_mark(&r->meter, now, downloaded));
    if (changed || now - r->last_save_ms >= RUNNER_SAVE_MS) runner_save(r, changed);
}

/* The job is being cancelled: says so once (status cancelling) before it stops. */
static void runner_cancelling(runner *r) {
    if (r->status == JOB_CANCELLING) return;
    runner_set(r, JOB_CANCELLING, json_integer_value(json_object_get(r->job, "downloaded")),
               json_integer_value(json_object_get(r->job, "total")), NULL, NULL);
    runner_publish(r, 0);
}

/* Looks at the cancel and pause markers every RUNNER_CANCEL_CHECK_MS (the main thread also
 * passes them on as they appear). */
static void runner_check_markers(runner *r) {
    int64_t now = progress_now_ms();
    if (atomic_load(&r->cancel) || now - r->last_cancel_check_ms < RUNNER_CANCEL_CHECK_MS) return;
    r->last_cancel_check_ms = now;
    if (job_cancel_requested(&r->cfg, r->job_id)) atomic_store(&r->cancel, 1);
    if (!atomic_load(&r->pause) && job_pause_requested(&r->cfg, r->job_id))
        atomic_store(&r->pause, 1);
}

/* download hook: `url` serves the bytes from now on; the job says so (redacted). */
static void runner_source(void *ud, const char *url) {
    runner *r = ud;
    char shown[MIRROR_URL_MAX];
    json_object_set_new(r->job, "source_url", json_string(redact_text(shown, sizeof shown, url)));
    log_info("job %s: %s comes from %s", r->job_id, r->model_id, shown);
}

/* download hook: 1 cancel, 2 shutdown, 3 pause, 0 go on. */
static int runner_should_stop(void *ud) {
    runner *r = ud;
    if (atomic_load(r->stopping)) return 2;
    runner_check_markers(r);
    if (atomic_load(&r->cancel)) {
        runner_cancelling(r);
        return 1;
    }
    return atomic_load(&r->pause) && !runner_is(r, "verify") ? 3 : 0;
}

/* Writes the registry entry of the installed (or updated) file, with the checksum and the
 * gallery it came from. 0, or -1 with a message in why. */
static int runner_register(runner *r, const download_result *res, char *why, size_t n) {
    char now[40];
    job_now_iso(now);
    json_t *entry = json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:b,s:s,s:s?}", "id", r->model_id,
                              "name",
                              runner_str(r->job, "name")[0] ? runner_str(r->job, "name")
                                                             : r->model_id,
                              "path", res->path, "size", (json_int_t)res->size, "installedAt",
                              now, "backend", "gallery", "active", 0, "checksum",
                              runner_str(r->job, "checksum"), "gallery",
                              json_string_value(json_object_get(r->job, "gallery")));
    mg_error err;
    int rc = entry ? registry_replace(&r->cfg, r->model_id, entry, &err) : -1;
    if (rc < 0) {
        size_t k = (size_t)snprintf(why, n, "cannot add %s to the registry: ", r->model_id);
        if (k < n) snprintf(why + k, n - k, "%.400s", entry ? err.message : "out of memory");
    }
    json_decref(entry);
    return rc;
}

/* Writes the final status durably (with `diagnosis` of a failure, may be NULL), publishes
 * the last message of the job and counts it. */
static void runner_finish_diag(runner *r, job_status st, int64_t size, const char *error,
                               const char *code, const char *diagnosis) {
    int64_t downloaded = json_integer_value(json_object_get(r->job, "downloaded"));
    int64_t total = json_integer_value(json_object_get(r->job, "total"));
    if (st == JOB_INSTALLED) downloaded = total = size;
    runner_set(r, st, downloaded, total, error, st == JOB_FAILED ? code : NULL);
    json_object_set_new(r->job, "diagnosis",
                        st == JOB_FAILED && diagnosis && *diagnosis ? json_string(diagnosis)
                                                                    : json_null());
    /* counted first, so that whoever sees the final status sees it counted */
    metrics_addf(1, "mg_jobs_finished_total{status=\"%s\"}", job_status_name(st));
    if (st == JOB_FAILED && !runner_is(r, "verify"))
        metrics_addf(1, "mg_download_failures_total{code=\"%s\"}", code ? code : "unknown");
    runner_save(r, 1);
    job_clear_cancel(&r->cfg, r->job_id); /* a late cancel or pause of a finished job is moot */
    job_clear_pause(&r->cfg, r->job_id);
    runner_publish(r, 0);
    if (st == JOB_FAILED) {
        log_warn("job %s: %s failed (%s): %s", r->job_id, r->model_id, code ? code : "?", error);
    } else {
        log_info("job %s: %s %s", r->job_id, r->model_id, job_status_name(st));
    }
}

static void runner_finish(runner *r, job_status st, int64_t size, const char *error,
                          const char *code) {
    runner_finish_diag(r, st, size, error, code, NULL);
}

/* Reads what the download needs from the job file. 0, or -1 with a message in why. */
static int runner_spec(runner *r, download_spec *spec, char *why, size_t n) {
    memset(spec, 0, sizeof *spec);
    spec->cfg = &r->cfg;
    spec->model_id = r->model_id;
    spec->url = runner_str(r->job, "url");
    spec->checksum = runner_str(r->job, "checksum");
    spec->ext = runner_str(r->job, "ext");
    spec->expected_size = json_integer_value(json_object_get(r->job, "size"));
    if (!id_model_valid(r->model_id, strlen(r->model_id)))
        return snprintf(why, n, "invalid model id in the job file"), -1;
    if (!*spec->url) return snprintf(why, n, "the job has no download URL"), -1;
    if (strncmp(spec->checksum, "sha256:", 7) != 0 || strlen(spec->checksum) != 71 ||
        strspn(spec->checksum + 7, "0123456789abcdefABCDEF") != 64)
        return snprintf(why, n, "invalid checksum in the job file: '%s'", spec->checksum), -1;
    if (!partial_ext_valid(spec->ext)) spec->ext = ".gguf";
    return 0;
}

/* Test hook (documented in README): with MG_TEST_KILL_AFTER_RENAME naming a file that
 * exists, the file is removed and the daemon killed (SIGKILL) right after a verified download
 * was moved into models/llm/, before its registry entry is written. */
static void runner_test_kill_after_rename(void) {
    const char *flag = getenv("MG_TEST_KILL_AFTER_RENAME");
    if (!flag || !*flag || unlink(flag) != 0) return;
    log_warn("MG_TEST_KILL_AFTER_RENAME: killing the daemon after the rename");
    raise(SIGKILL);
}

/* Registers the verified file in models/llm/ and ends the job installed, or failed with
 * registry_error (the file and its verified meta stay for the next attempt). */
static void runner_install(runner *r, const download_spec *spec, const download_result *res) {
    char why[512];
    partial p;
    if (runner_register(r, res, why, sizeof why) < 0) {
        char msg[800];
        snprintf(msg, sizeof msg, "%.500s; the verified file stays in %.200s and the next "
                 "%s registers it", why, res->path, runner_is(r, "update") ? "update" : "install");
        runner_finish(r, JOB_FAILED, 0, msg, "registry_error");
        return;
    }
    partial_paths(&p, &r->cfg, r->model_id, spec->ext);
    partial_registered(&p);
    runner_finish(r, JOB_INSTALLED, res->size, NULL, NULL);
}

/* 1 when the registry already holds what the job would install: for an install, an entry
 * whose file exists; for an update, an intact entry with the job's checksum. That is a
 * crash after the registry write and before the final status: nothing to download. */
static int runner_done_already(runner *r) {
    if (!runner_is(r, "update")) return registry_is_installed(&r->cfg, r->model_id);
    json_t *entry = registry_get(&r->cfg, r->model_id, NULL);
    char abs[MG_PATH_MAX];
    const char *file = entry && registry_entry_file(&r->cfg, entry, abs) ? abs : NULL;
    int done = entry &&
               strcmp(runner_str(entry, "checksum"), runner_str(r->job, "checksum")) == 0 &&
               strcmp(registry_entry_status(entry, file), "installed") == 0;
    json_decref(entry);
    return done;
}

/* The download stopped for a pause: the partial stays; the job ends paused (or queued, or
 * cancelling, when a resume or a cancel came meanwhile: the file decides). */
static void runner_paused(runner *r) {
    mg_error err;
    int64_t downloaded = json_integer_value(json_object_get(r->job, "downloaded"));
    int64_t total = json_integer_value(json_object_get(r->job, "total"));
    runner_set(r, JOB_PAUSED, downloaded, total, NULL, NULL);
    if (job_settle_pause(&r->cfg, r->job, &err) < 0)
        log_warn("job %s: cannot save the pause: %s", r->job_id, err.message);
    r->status = job_get_status(r->job);
    runner_publish(r, 0);
    log_info("job %s: %s paused at %lld bytes (%s now)", r->job_id, r->model_id,
             (long long)downloaded, job_status_name(r->status));
}

static void runner_download(runner *r) {
    download_spec spec;
    download_result res;
    char why[512];
    memset(&res, 0, sizeof res);
    if (runner_spec(r, &spec, why, sizeof why) < 0) {
        runner_finish(r, JOB_FAILED, 0, why, "invalid_job");
        return;
    }
    if (runner_done_already(r)) {
        partial p;
        partial_paths(&p, &r->cfg, r->model_id, spec.ext);
        partial_registered(&p);
        runner_finish(r, JOB_INSTALLED, spec.expected_size, NULL, NULL);
        return;
    }
    mirror_list urls;
    if (mirror_list_build(&urls, &r->cfg, spec.url, json_object_get(r->job, "mirrors"), why,
                          sizeof why) < 0) {
        runner_finish(r, JOB_FAILED, 0, why, "invalid_job");
        return;
    }
    spec.urls = (const char *const *)urls.urls;
    spec.n_urls = urls.n;
    log_info("job %s: %s %s from %s (%d URLs)", r->job_id,
             runner_is(r, "update") ? "updating" : "installing", r->model_id, spec.url, urls.n);
    download_hooks hooks = {r, runner_report, runner_should_stop, runner_source};
    download_outcome o = download_run(&spec, &hooks, &res);
    mirror_list_free(&urls);
    switch (o) {
    case DOWNLOAD_OK:
        if (!res.recovered) runner_test_kill_after_rename();
        runner_install(r, &spec, &res);
        break;
    case DOWNLOAD_FAILED:
        runner_finish_diag(r, JOB_FAILED, 0, res.error, res.code, res.diagnosis);
        break;
    case DOWNLOAD_CANCELLED:
        runner_finish(r, JOB_CANCELLED, 0, NULL, NULL);
        break;
    case DOWNLOAD_PAUSED:
        runner_paused(r);
        break;
    case DOWNLOAD_STOPPED:
        runner_save(r, 0);
        log_info("job %s: stopped; it resumes at the next start", r->job_id);
        break;
    }
}

/* Ends a verify job by its outcome: the registry records the result first. */
static void runner_verified(runner *r, verify_outcome o, const verify_result *res,
                            const char *rel) {
    mg_error err;
    char msg[800];
    const char *checksum = runner_str(r->job, "checksum");
    if ((o == VERIFY_OK || o == VERIFY_MISMATCH) &&
        registry_set_verified(&r->cfg, r->model_id, o == VERIFY_OK, &err) < 0)
        log_warn("job %s: cannot record the verification: %s", r->job_id, err.message);
    if (o == VERIFY_OK) {
        runner_finish(r, JOB_INSTALLED, res->size, NULL, NULL);
    } else if (o == VERIFY_MISMATCH) {
        snprintf(msg, sizeof msg, "checksum mismatch: %.200s holds sha256:%s, its entry records "
                 "%.80s; the file is damaged (update or reinstall the model)", rel, res->hex,
                 checksum);
        runner_finish_diag(r, JOB_FAILED, 0, msg, "checksum_mismatch", "corrupt_download");
    } else if (o == VERIFY_FAILED) {
        runner_finish(r, JOB_FAILED, 0, res->error, "io_error");
    } else if (o == VERIFY_CANCELLED) {
        runner_finish(r, JOB_CANCELLED, 0, NULL, NULL);
    } else {
        runner_save(r, 0);
        log_info("job %s: stopped; the verification starts over at the next start", r->job_id);
    }
}

/* A verify job: re-hashes the installed file the job names with progress. */
static void runner_verify(runner *r) {
    char abs[MG_PATH_MAX];
    const char *checksum = runner_str(r->job, "checksum");
    json_t *where = json_pack("{s:s}", "path", runner_str(r->job, "path"));
    int ok = where && registry_entry_file(&r->cfg, where, abs);
    json_decref(where);
    if (!ok || strncmp(checksum, "sha256:", 7) != 0 || strlen(checksum) != 71) {
        runner_finish(r, JOB_FAILED, 0, "the job names no model file under models/llm/ or no "
                      "sha256 checksum", "invalid_job");
        return;
    }
    log_info("job %s: verifying %s (%s)", r->job_id, r->model_id, runner_str(r->job, "path"));
    download_hooks hooks = {r, runner_report, runner_should_stop, NULL};
    verify_result res;
    verify_outcome o = verify_run(abs, checksum, &hooks, &res);
    runner_verified(r, o, &res, runner_str(r->job, "path"));
}

static void runner_run(runner *r) {
    if (runner_is(r, "verify"))
        runner_verify(r);
    else
        runner_download(r);
}

static void *runner_main(void *arg) {
    runner *r = arg;
    runner_run(r);
    atomic_store(&r->finished, 1);
    uint64_t one = 1;
    ssize_t w = write(r->notify_fd, &one, sizeof one);
    (void)w;
    return NULL;
}

runner *runner_start(const mg_config *cfg, json_t *job, const atomic_int *stopping,
                     int notify_fd) {
    runner *r = calloc(1, sizeof *r);
    if (!r) goto fail;
    if (config_copy(&r->cfg, cfg) < 0) {
        log_error("out of memory starting a job");
        free(r);
        r = NULL;
        goto fail;
    }
    snprintf(r->job_id, sizeof r->job_id, "%s", runner_str(job, "job_id"));
    snprintf(r->model_id, sizeof r->model_id, "%s", runner_str(job, "model_id"));
    r->job = job;
    r->stopping = stopping;
    r->notify_fd = notify_fd;
    r->status = JOB_QUEUED; /* so that the first report publishes "downloading" */
    progress_meter_init(&r->meter);
    if (pthread_create(&r->thread, NULL, runner_main, r) != 0) {
        log_error("cannot start a thread: %s", strerror(errno));
        config_free(&r->cfg);
        free(r);
        r = NULL;
        goto fail;
    }
    return r;
fail:
    json_decref(job);
    return NULL;
}

int runner_cancel(runner *r) { return atomic_exchange(&r->cancel, 1) == 0; }

int runner_pause(runner *r) { return atomic_exchange(&r->pause, 1) == 0; }

int runner_join(runner *r, int timeout_ms) {
    if (timeout_ms < 0) return pthread_join(r->thread, NULL) == 0 ? 0 : -1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return pthread_timedjoin_np(r->thread, NULL, &ts) == 0 ? 0 : -1;
}

void runner_free(runner *r) {
    if (!r) return;
    json_decref(r->job);
    config_free(&r->cfg);
    free(r);
}

void runner_discard_partial(const mg_config *cfg, json_t *job) {
    const char *model_id = runner_str(job, "model_id");
    const char *ext = runner_str(job, "ext");
    if (!id_model_valid(model_id, strlen(model_id))) return;
    partial p;
    partial_paths(&p, cfg, model_id, partial_ext_valid(ext) ? ext : ".gguf");
    partial_discard(&p);
}

void runner_cancelled_unclaimed(const mg_config *cfg, json_t *job) {
    runner_discard_partial(cfg, job); /* usually gone already: see sched.c */
    json_t *pub = job_public(job);
    json_t *msg = progress_message_of(pub);
    json_decref(pub);
    if (msg) progress_send(msg);
    metrics_add("mg_jobs_finished_total{status=\"cancelled\"}", 1);
    log_info("job %s: %s cancelled before it ran", runner_str(job, "job_id"),
             runner_str(job, "model_id"));
}
