/* test_download.c - installer/download.c against a real HTTP server in this process
 * (httpd.c): the bytes each case costs (a fresh file once, a resume exactly the missing
 * bytes, a verified file in place nothing, a stale partial thrown away and the file served
 * whole once), Range and If-Range, retries by status class, the backoff between attempts,
 * the retry series that only real progress restarts, stalls, the size cap at its boundary,
 * checksum mismatches, cancel and stop, refused URLs. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "download.h"
#include "httpd.h"
#include "log.h"
#include "partial.h"
#include "unit.h"

#define BODY_LEN (300 * 1024 + 17)
#define ETAG "\"v1\""
#define WRONG "sha256:0000000000000000000000000000000000000000000000000000000000000000"

typedef struct fixture {
    mg_config cfg;
    httpd *srv;
    char *body;
    char checksum[80];
    download_spec spec;
    char url[256];
} fixture;

/* What the hooks saw. */
typedef struct watch {
    int reports, verifying;
    int64_t last, max, total;
    int64_t stop_after;  /* > 0: should_stop answers `stop_with` once this many bytes are in */
    int stop_with;
} watch;

static void watch_report(void *ud, job_status status, int64_t downloaded, int64_t total) {
    watch *w = ud;
    w->reports++;
    if (status == JOB_VERIFYING) w->verifying++;
    w->last = downloaded;
    w->total = total;
    if (downloaded > w->max) w->max = downloaded;
}

static int watch_stop(void *ud) {
    watch *w = ud;
    return w->stop_after > 0 && w->last >= w->stop_after ? w->stop_with : 0;
}

/* Quick retries and stalls unless a test sets its own. */
static void tunables(const char *base_ms, const char *max, const char *stall_s) {
    setenv("MG_RETRY_BASE_MS", base_ms, 1);
    setenv("MG_RETRY_MAX", max, 1);
    setenv("MG_STALL_SECONDS", stall_s, 1);
}

static void fixture_init(fixture *f, size_t len) {
    mg_error err;
    memset(f, 0, sizeof *f);
    if (config_load(&f->cfg, unit_tmpdir(), &err) != 0)
        unit_fail(__FILE__, __LINE__, "%s", err.message);
    f->cfg.allow_http = 1;
    f->body = unit_random_bytes(len, (unsigned)len);
    char hex[65];
    snprintf(f->checksum, sizeof f->checksum, "sha256:%s", unit_sha256_hex(f->body, len, hex));
    f->srv = httpd_start(f->body, len, ETAG);
    CHECK(f->srv != NULL);
    snprintf(f->url, sizeof f->url, "%s", httpd_url(f->srv, "/m.gguf"));
    unlink(unit_path("models/llm/m.gguf")); /* a test's cases share its directory */
    unlink(unit_path("models/.partial/m.gguf.part"));
    unlink(unit_path("models/.partial/m.gguf.part.meta"));
    f->spec = (download_spec){.cfg = &f->cfg, .model_id = "m", .url = f->url,
                              .checksum = f->checksum, .ext = ".gguf",
                              .expected_size = (int64_t)len};
    tunables("10", "6", "15");
    log_set_fd(open(unit_path("log"), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
}

static void fixture_free(fixture *f) {
    httpd_stop(f->srv);
    free(f->body);
    config_free(&f->cfg);
    log_set_fd(2);
}

static download_outcome run(fixture *f, watch *w, download_result *res) {
    watch none = {0};
    if (!w) w = &none;
    download_hooks hooks = {.ud = w, .report = watch_report, .should_stop = watch_stop};
    return download_run(&f->spec, &hooks, res);
}

static const char *part_path(void) { return unit_path("models/.partial/m.gguf.part"); }
static const char *meta_path(void) { return unit_path("models/.partial/m.gguf.part.meta"); }
static const char *final_path(void) { return unit_path("models/llm/m.gguf"); }

/* Plants a partial holding `data` (`len` bytes) whose meta names url, checksum, validator. */
static void plant(const char *data, size_t len, const char *url, const char *checksum,
                  const char *validator) {
    json_t *doc = json_pack("{s:s,s:s,s:s}", "url", url, "checksum", checksum, "validator",
                            validator);
    char *meta = json_dumps(doc, JSON_COMPACT);
    CHECK_INT(unit_write_file(part_path(), data, len), 0);
    CHECK_INT(unit_write_file(meta_path(), meta, strlen(meta)), 0);
    free(meta);
    json_decref(doc);
}

/* The installed file holds exactly the fixture's body. */
static void check_installed(fixture *f, const download_result *res, size_t len) {
    size_t n = 0;
    char *got = unit_read_file(final_path(), &n);
    CHECK(got != NULL);
    CHECK_INT(n, len);
    CHECK(got && n == len && memcmp(got, f->body, len) == 0);
    free(got);
    CHECK_INT(res->size, len);
    CHECK_STR(res->path, "models/llm/m.gguf");
    CHECK_STR(res->code, "");
    CHECK(access(part_path(), F_OK) != 0);
}

static void check_nothing_left(void) {
    CHECK(access(part_path(), F_OK) != 0);
    CHECK(access(meta_path(), F_OK) != 0);
    CHECK(access(final_path(), F_OK) != 0);
}

UNIT_TEST(fresh_download_is_served_once_and_verified) {
    fixture f;
    fixture_init(&f, BODY_LEN);
    watch w = {0};
    download_result res;
    CHECK_INT(run(&f, &w, &res), DOWNLOAD_OK);
    check_installed(&f, &res, BODY_LEN);
    CHECK_INT(res.recovered, 0);
    httpd_request log[HTTPD_LOG_MAX];
    CHECK_INT(httpd_log(f.srv, log), 1);
    CHECK_STR(log[0].range, "");
    CHECK_INT(log[0].status, 200);
    CHECK_INT(httpd_bytes(f.srv), BODY_LEN);
    CHECK(w.verifying >= 1);
    CHECK_INT(w.last, BODY_LEN);
    CHECK_INT(w.total, BODY_LEN);
    /* the meta records the verified file until the registry entry is written */
    char *meta = unit_read_file(meta_path(), NULL);
    CHECK_CONTAINS(meta, "\"verified\":{");
    CHECK_CONTAINS(meta, f.checksum);
    free(meta);
    fixture_free(&f);
}

UNIT_TEST(resume_asks_for_exactly_the_missing_bytes) {
    fixture f;
    fixture_init(&f, BODY_LEN);
    size_t kept = 100000;
    plant(f.body, kept, f.url, f.checksum, ETAG);
    download_result res;
    CHECK_INT(run(&f, NULL, &res), DOWNLOAD_OK);
    check_installed(&f, &res, BODY_LEN);
    httpd_request log[HTTPD_LOG_MAX];
    CHECK_INT(httpd_log(f.srv, log), 1);
    CHECK_STR(log[0].range, "bytes=100000-");
    CHECK_STR(log[0].if_range, ETAG);
    CHECK_INT(log[0].status, 206);
    CHECK_INT(httpd_bytes(f.srv), BODY_LEN - kept);
    fixture_free(&f);
}

UNIT_TEST(resume_without_validator_sends_no_if_range) {
    fixture f;
    fixture_init(&f, BODY_LEN);
    plant(f.body, 4096, f.url, f.checksum, "");
    download_result res;
    CHECK_INT(run(&f, NULL, &res), DOWNLOAD_OK);
    check_installed(&f, &res, BODY_LEN);
    httpd_request log[HTTPD_LOG_MAX];
    CHECK_INT(httpd_log(f.srv, log), 1);
    CHECK_STR(log[0].range, "bytes=4096-");
    CHECK_STR(log[0].if_range, "");
    CHECK_INT(httpd_bytes(f.srv), BODY_LEN - 4096);
    fixture_free(&f);
}

/* A partial whose meta names another checksum, another URL, or that has no meta, holds
 * bytes of another download: thrown away, the file served whole exactly once. The planted
 * bytes are the right ones, so only the bytes counted tell a wrong resume apart. */
UNIT_TEST(stale_partial_is_thrown_away_and_served_whole_once) {
    static const struct { const char *what; int other_url, other_sum, no_meta; } cases[] = {
        {"other checksum", 0, 1, 0}, {"other url", 1, 0, 0}, {"no meta", 0, 0, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fixture f;
        fixture_init(&f, BODY_LEN);
        char other_url[300];
        snprintf(other_url, sizeof other_url, "%s?v=2", f.url);
        plant(f.body, 65536, cases[i].other_url ? other_url : f.url,
              cases[i].other_sum ? WRONG : f.checksum, ETAG);
        if (cases[i].no_meta) unlink(meta_path());
        download_result res;
        CHECK_INT(run(&f, NULL, &res), DOWNLOAD_OK);
        check_installed(&f, &res, BODY_LEN);
        httpd_request log[HTTPD_LOG_MAX];
        int n = httpd_log(f.srv, log);
        if (n != 1 || log[0].range[0] || httpd_bytes(f.srv) != BODY_LEN)
            unit_fail(__FILE__, __LINE__, "%s: %d requests, Range \"%s\", %lld bytes",
                      cases[i].what, n, n ? log[0].range : "", (long long)httpd_bytes(f.srv));
        char *meta = unit_read_file(meta_path(), NULL);
        CHECK_CONTAINS(meta, f.url);
        CHECK_CONTAINS(meta, f.checksum);
        free(meta);
        fixture_free(&f);
    }
}

UNIT_TEST(verified_file_in_place_costs_nothing) {
    fixture f;
    fixture_init(&f, BODY_LEN);
    download_result res;
    CHECK_INT(run(&f, NULL, &res), DOWNLOAD_OK);
    httpd_reset(f.srv);
    /* the registry write failed or a crash came: the meta still names the verified file */
    CHECK_INT(run(&f, NULL, &res), DOWNLOAD_OK);
    CHECK_INT(res.recovered, 1);
    CHECK_INT(res.size, BODY_LEN);
    CHECK_STR(res.path, "models/llm/m.gguf");
    httpd_request log[HTTPD_LOG_MAX];
    CHECK_INT(httpd_log(f.srv, log), 0);
    CHECK_INT(httpd_bytes(f.srv), 0);
    fixture_free(&f);
}

UNIT_TEST(verified_meta_of_a_changed_file_is_dropped) {
    fixture f;
    fixture_init(&f, BODY_LEN);
    download_result res;
    CHECK_INT(run(&f, NULL, &res), DOWNLOAD_OK);
    httpd_reset(f.srv);
    /* another file of the same size took its place: another inode */
    char *copy = unit_read_file(final_path(), NULL);
    unlink(final_path());
    CHECK_INT(unit_write_file(final_path(), copy, BODY_LEN), 0);
    free(copy);
    CHECK_INT(run(&f, NULL, &res), DOWNLOAD_OK);
    CHECK_INT(res.recovered, 0);
    CHECK_INT(httpd_bytes(f.srv), BODY_LEN);
    check_installed(&f, &res, BODY_LEN);
    fixture_free(&f);
}

UNIT_TEST(dropped_connection_resumes_where_it_broke) {
    fixture f;
    fixture_init(&f, BODY_LEN);
    httpd_script(f.srv, &(httpd_step){.drop_after = 123457});
    download_result res;
    CHECK_INT(run(&f, NULL, &res), DOWNLOAD_OK);
    check_installed(&f, &res, BODY_LEN);
    httpd_request log[HTTPD_LOG_MAX];
    CHECK_INT(httpd_log(f.srv, log), 2);
    CHECK_STR(log[0].range, "");
    CHECK_INT(log[0].bytes, 123457);
    CHECK_STR(log[1].range, "bytes=123457-");
    CHECK_STR(log[1].if_range, ETAG);
    CHECK_INT(httpd_bytes(f.srv), BODY_LEN);
    fixture_free(&f);
}

/* Which statuses are retried: 408, 429 and 5xx; any other 4xx fails at once. */
UNIT_TEST(statuses_retried_or_failed_at_once) {
    static const struct { int status, retried; } cases[] = {
        {400, 0}, {401, 0}, {403, 0}, {404, 0}, {407, 0}, {408, 1}, {409, 0}, {410, 0},
        {428, 0}, {429, 1}, {430, 0}, {499, 0}, {500, 1}, {502, 1}, {503, 1}, {599, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fixture f;
        fixture_init(&f, 1000);
        tunables("1", "3", "15");
        for (int k = 0; k < 3; k++) httpd_script(f.srv, &(httpd_step){.status = cases[i].status});
        download_result res;
        download_outcome o = run(&f, NULL, &res);
        char code[32], msg[64];
        snprintf(code, sizeof code, "http_%d", cases[i].status);
        snprintf(msg, sizeof msg, "HTTP %d from ", cases[i].status);
        httpd_request log[HTTPD_LOG_MAX];
        int n = httpd_log(f.srv, log);
        if (o != DOWNLOAD_FAILED || n != (cases[i].retried ? 3 : 1) || strcmp(res.code, code) != 0)
            unit_fail(__FILE__, __LINE__, "status %d: outcome %d, %d requests, code %s",
                      cases[i].status, o, n, res.code);
        CHECK_CONTAINS(res.error, msg);
        if (cases[i].retried) CHECK_CONTAINS(res.error, "gave up after 3 attempts");
        CHECK(access(final_path(), F_OK) != 0);
        fixture_free(&f);
    }
}

UNIT_TEST(not_found_fails_at_once_and_leaves_nothing) {
    fixture f;
    fixture_init(&f, BODY_LEN);
    httpd_script(f.srv, &(httpd_step){.status = 404});
    download_result res;
    CHECK_INT(run(&f, NULL, &res), DOWNLOAD_FAILED);
    CHECK_STR(res.code, "http_404");
    CHECK_CONTAINS(res.error, "download failed: HTTP 404 from http://127.0.0.1:");
    check_nothing_left();
    fixture_free(&f);
}

/* Backoff: the base, then doubling (MG_RETRY_BASE_MS 300: 300, 600, 1200 ms). */
UNIT_TEST(backoff_doubles_from_the_base) {
    fixture f;
    fixture_init(&f, 1000);
    tunables("300", "6", "15");
    for (int k = 0; k < 3; k++) httpd_script(f.srv, &(httpd_step){.status = 503});
    download_result res;
    CHECK_INT(run(&f, NULL, &res), DOWNLOAD_OK);
    httpd_request log[HTTPD_LOG_MAX];
    CHECK_INT(httpd_log(f.srv, log), 4);
    for (int k = 1; k < 4; k++) {
        int64_t gap = log[k].at_ms - log[k - 1].at_ms, want = 300LL << (k - 1);
        if (gap < want || gap > want * 18 / 10)
            unit_fail(__FILE__, __LINE__, "gap before attempt %d: %lld ms, expected %lld ms", k + 1,
                      (long long)gap, (long long)want);
    }
    fixture_free(&f);
}

/* Only an attempt that brought data at the minimum speed starts a fresh retry series:
 * with 3 attempts, 503 / a fast partial answer / 503 / the file succeeds. */
UNIT_TEST(progress_restarts_the_retry_series) {
    fixture f;
    fixture_init(&f, BODY_LEN);
    tunables("1", "3", "15");
    httpd_script(f.srv, &(httpd_step){.status = 503});
    httpd_script(f.srv, &(httpd_step){.drop_after = 200000});
    httpd_script(f.srv, &(httpd_step){.status = 503});
    download_result res;
    CHECK_INT(run(&f, NULL, &res), DOWNLOAD_OK);
    check_installed(&f, &res, BODY_LEN);
    httpd_request log[HTTPD_LOG_MAX];
    CHECK_INT(httpd_log(f.srv, log), 4);
    CHECK_STR(log[3].range, "bytes=200000-");
    CHECK_INT(httpd_bytes(f.srv), BODY_LEN);
    fixture_free(&f);
}

/* Bytes trickling in under min_download_speed: every attempt is cut off after the stall time
 * and none restarts the series, so the job fails "stalled" after the retry budget. */
UNIT_TEST(trickle_uses_up_the_retry_budget_as_stalled) {
    fixture f;
    fixture_init(&f, BODY_LEN);
    tunables("1", "3", "1");
    f.cfg.min_download_speed = 100000;
    for (int k = 0; k < 4; k++)
        httpd_script(f.srv, &(httpd_step){.trickle_ms = 50, .trickle_bytes = 200});
    int64_t t0 = unit_now_ms();
    download_result res;
    CHECK_INT(run(&f, NULL, &res), DOWNLOAD_FAILED);
    int64_t took = unit_now_ms() - t0;
    CHECK_STR(res.code, "stalled");
    CHECK_CONTAINS(res.error, "download stalled");
    CHECK_CONTAINS(res.error, "gave up after 3 attempts");
    httpd_request log[HTTPD_LOG_MAX];
    CHECK_INT(httpd_log(f.srv, log), 3);
    CHECK(log[1].range[0] != '\0'); /* the trickled bytes are kept */
    if (took < 2500 || took > 8000)
        unit_fail(__FILE__, __LINE__, "3 attempts of a 1 s stall budget took %lld ms",
                  (long long)took);
    fixture_free(&f);
}

/* A connection that sends nothing at all is cut off after the stall time too. */
UNIT_TEST(silent_server_is_a_stall) {
    fixture f;
    fixture_init(&f, BODY_LEN);
    tunables("1", "2", "1");
    for (int k = 0; k < 2; k++)
        httpd_script(f.srv, &(httpd_step){.trickle_ms = 4000, .trickle_bytes = 1});
    download_result res;
    CHECK_INT(run(&f, NULL, &res), DOWNLOAD_FAILED);
    CHECK_STR(res.code, "stalled");
    httpd_request log[HTTPD_LOG_MAX];
    CHECK_INT(httpd_log(f.srv, log), 2);
    fixture_free(&f);
}

UNIT_TEST(checksum_mismatch_names_both_digests_and_removes_the_partial) {
    fixture f;
    fixture_init(&f, BODY_LEN);
    char right[80];
    snprintf(right, sizeof right, "%s", f.checksum);
    f.spec.checksum = WRONG;
    download_result res;
    CHECK_INT(run(&f, NULL, &res), DOWNLOAD_FAILED);
    CHECK_STR(res.code, "checksum_mismatch");
    CHECK_CONTAINS(res.error, WRONG);
    CHECK_CONTAINS(res.error, right);
    check_nothing_left();
    CHECK_INT(httpd_bytes(f.srv), BODY_LEN);
    fixture_free(&f);
}

/* Upper-case hex in the gallery's checksum is the same digest. */
UNIT_TEST(checksum_compare_ignores_hex_case) {
    fixture f;
    fixture_init(&f, 5000);
    for (char *p = f.checksum + 7; *p; p++) *p = (char)toupper((unsigned char)*p);
    download_result res;
    CHECK_INT(run(&f, NULL, &res), DOWNLOAD_OK);
    check_installed(&f, &res, 5000);
    fixture_free(&f);
}

/* A resumed partial whose kept bytes are bad: downloaded once more from byte 0. */
UNIT_TEST(bad_kept_bytes_are_downloaded_again_once) {
    fixture f;
    fixture_init(&f, BODY_LEN);
    char *bad = unit_random_bytes(50000, 7);
    plant(bad, 50000, f.url, f.checksum, ETAG);
    free(bad);
    download_result res;
    CHECK_INT(run(&f, NULL, &res), DOWNLOAD_OK);
    check_installed(&f, &res, BODY_LEN);
    httpd_request log[HTTPD_LOG_MAX];
    CHECK_INT(httpd_log(f.srv, log), 2);
    CHECK_STR(log[0].range, "bytes=50000-");
    CHECK_STR(log[1].range, "");
    CHECK_INT(httpd_bytes(f.srv), BODY_LEN - 50000 + BODY_LEN);
    fixture_free(&f);
}

/* A server that ignores Range sends 200 with the whole file: taken from byte 0, once. */
UNIT_TEST(range_ignored_takes_the_whole_answer) {
    fixture f;
    fixture_init(&f, BODY_LEN);
    char *junk = unit_random_bytes(70000, 3);
    plant(junk, 70000, f.url, f.checksum, ETAG);
    free(junk);
    httpd_script(f.srv, &(httpd_step){.ignore_range = 1});
    download_result res;
    CHECK_INT(run(&f, NULL, &res), DOWNLOAD_OK);
    check_installed(&f, &res, BODY_LEN);
    httpd_request log[HTTPD_LOG_MAX];
    CHECK_INT(httpd_log(f.srv, log), 1);
    CHECK_INT(log[0].status, 200);
    CHECK_INT(httpd_bytes(f.srv), BODY_LEN);
    fixture_free(&f);
}

/* The file changed upstream: If-Range gets the new file whole in the same request. */
UNIT_TEST(if_range_with_an_old_validator_gets_the_new_file) {
    fixture f;
    fixture_init(&f, BODY_LEN);
    plant(f.body, 80000, f.url, f.checksum, "\"v0\"");
    download_result res;
    CHECK_INT(run(&f, NULL, &res), DOWNLOAD_OK);
    check_installed(&f, &res, BODY_LEN);
    httpd_request log[HTTPD_LOG_MAX];
    CHECK_INT(httpd_log(f.srv, log), 1);
    CHECK_STR(log[0].if_range, "\"v0\"");
    CHECK_INT(log[0].status, 200);
    CHECK_INT(httpd_bytes(f.srv), BODY_LEN);
    char *meta = unit_read_file(meta_path(), NULL);
    CHECK_CONTAINS(meta, "\"validator\":\"\\\"v1\\\"\"");
    free(meta);
    fixture_free(&f);
}

/* If-Range needs a strong validator: with a weak ETag the resume names Last-Modified. */
UNIT_TEST(weak_etag_is_no_validator) {
    static const char *date = "Tue, 01 Jan 2030 00:00:00 GMT";
    fixture f;
    fixture_init(&f, BODY_LEN);
    httpd_script(f.srv, &(httpd_step){.drop_after = 100000, .etag_header = "W/\"weak\"",
                                      .last_modified = date});
    httpd_script(f.srv, &(httpd_step){.etag_header = "W/\"weak\"", .last_modified = date});
    download_result res;
    CHECK_INT(run(&f, NULL, &res), DOWNLOAD_OK);
    check_installed(&f, &res, BODY_LEN);
    httpd_request log[HTTPD_LOG_MAX];
    CHECK_INT(httpd_log(f.srv, log), 2);
    CHECK_STR(log[1].range, "bytes=100000-");
    CHECK_STR(log[1].if_range, date);
    fixture_free(&f);
}

/* Redirects: five are followed, a sixth fails the job at once. */
UNIT_TEST(five_redirects_followed_not_six) {
    for (int hops = 5; hops <= 6; hops++) {
        fixture f;
        fixture_init(&f, 5000);
        for (int k = 0; k < hops; k++) httpd_script(f.srv, &(httpd_step){.location = "/next.gguf"});
        download_result res;
        download_outcome o = run(&f, NULL, &res);
        httpd_request log[HTTPD_LOG_MAX];
        int n = httpd_log(f.srv, log);
        if (hops == 5) {
            CHECK_INT(o, DOWNLOAD_OK);
            CHECK_INT(n, 6);
            check_installed(&f, &res, 5000);
        } else {
            CHECK_INT(o, DOWNLOAD_FAILED);
            CHECK_INT(n, 6);
            CHECK_STR(res.code, "network_error");
            CHECK_CONTAINS(res.error, "more than 5 redirects");
        }
        fixture_free(&f);
    }
}

/* A 206 that does not start where the partial ends is dropped at its first byte (the server,
 * sending slowly, gets no further than a few pieces); the file is fetched whole. */
UNIT_TEST(range_from_the_wrong_byte_starts_over) {
    fixture f;
    fixture_init(&f, BODY_LEN);
    plant(f.body, 60000, f.url, f.checksum, ETAG);
    httpd_script(f.srv, &(httpd_step){.range_shift = 10, .trickle_ms = 20, .trickle_bytes = 4096});
    download_result res;
    CHECK_INT(run(&f, NULL, &res), DOWNLOAD_OK);
    check_installed(&f, &res, BODY_LEN);
    httpd_request log[HTTPD_LOG_MAX];
    CHECK_INT(httpd_log(f.srv, log), 2);
    CHECK_INT(log[0].status, 206);
    CHECK(log[0].bytes < 50000);
    CHECK_STR(log[1].range, "");
    CHECK_INT(log[1].bytes, BODY_LEN);
    fixture_free(&f);
}

/* A partial that is already whole: the server says 416 with the length, nothing is sent. */
UNIT_TEST(whole_partial_answered_416_is_verified_without_bytes) {
    fixture f;
    fixture_init(&f, BODY_LEN);
    plant(f.body, BODY_LEN, f.url, f.checksum, ETAG);
    download_result res;
    CHECK_INT(run(&f, NULL, &res), DOWNLOAD_OK);
    check_installed(&f, &res, BODY_LEN);
    httpd_request log[HTTPD_LOG_MAX];
    CHECK_INT(httpd_log(f.srv, log), 1);
    CHECK_INT(log[0].status, 416);
    CHECK_INT(httpd_bytes(f.srv), 0);
    fixture_free(&f);
}

UNIT_TEST(limit_is_five_percent_and_a_mebibyte_over) {
    CHECK_INT(download_limit(0), INT64_MAX);
    CHECK_INT(download_limit(-5), INT64_MAX);
    CHECK_INT(download_limit(1), 1 + 0 + 1048576);
    CHECK_INT(download_limit(19), 19 + 0 + 1048576);
    CHECK_INT(download_limit(20), 20 + 1 + 1048576);
    CHECK_INT(download_limit(1000), 1000 + 50 + 1048576);
    CHECK_INT(download_limit(4000000000LL), 4000000000LL + 200000000LL + 1048576);
}

/* The size cap at its boundary: a body of exactly the limit is taken, one byte more is
 * refused, announced (Content-Length) or streamed without a length. */
UNIT_TEST(size_cap_boundary) {
    static const struct { int extra, no_length; download_outcome want; } cases[] = {
        {0, 0, DOWNLOAD_OK}, {1, 0, DOWNLOAD_FAILED}, {0, 1, DOWNLOAD_OK}, {1, 1, DOWNLOAD_FAILED}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fixture f;
        int64_t announced = 1000, len = download_limit(announced) + cases[i].extra;
        fixture_init(&f, (size_t)len);
        f.spec.expected_size = announced;
        if (cases[i].no_length) httpd_script(f.srv, &(httpd_step){.no_length = 1});
        watch w = {0};
        download_result res;
        download_outcome o = run(&f, &w, &res);
        if (o != cases[i].want)
            unit_fail(__FILE__, __LINE__, "case %zu (%lld bytes): outcome %d, %s", i,
                      (long long)len, o, res.error);
        if (cases[i].want == DOWNLOAD_OK) {
            check_installed(&f, &res, (size_t)len);
        } else {
            CHECK_STR(res.code, "too_large");
            CHECK_CONTAINS(res.error, "larger than expected");
            CHECK(w.max <= download_limit(announced));
            check_nothing_left();
        }
        fixture_free(&f);
    }
}

/* Content-Length over the limit: refused before a byte is stored. */
UNIT_TEST(announced_too_large_stores_nothing) {
    fixture f;
    fixture_init(&f, BODY_LEN);
    f.spec.expected_size = 1000;
    httpd_script(f.srv, &(httpd_step){.announce = 5000000});
    watch w = {0};
    download_result res;
    CHECK_INT(run(&f, &w, &res), DOWNLOAD_FAILED);
    CHECK_STR(res.code, "too_large");
    CHECK_CONTAINS(res.error, "the server announces 5000000 bytes");
    CHECK_INT(w.max, 0);
    check_nothing_left();
    fixture_free(&f);
}

UNIT_TEST(cancel_removes_the_partial_and_stop_keeps_it) {
    for (int stop = 1; stop <= 2; stop++) {
        fixture f;
        fixture_init(&f, BODY_LEN);
        httpd_script(f.srv, &(httpd_step){.trickle_ms = 20, .trickle_bytes = 8192});
        watch w = {.stop_after = 16384, .stop_with = stop};
        download_result res;
        download_outcome o = run(&f, &w, &res);
        CHECK_INT(o, stop == 1 ? DOWNLOAD_CANCELLED : DOWNLOAD_STOPPED);
        CHECK(access(final_path(), F_OK) != 0);
        struct stat st;
        if (stop == 1) {
            check_nothing_left();
        } else {
            CHECK(stat(part_path(), &st) == 0 && st.st_size >= 16384 && st.st_size < BODY_LEN);
            CHECK(access(meta_path(), F_OK) == 0);
        }
        CHECK(httpd_bytes(f.srv) < BODY_LEN);
        fixture_free(&f);
    }
}

UNIT_TEST(urls_refused_before_any_request) {
    static const struct { const char *url; int allow_http; const char *says; } cases[] = {
        {"http://127.0.0.1:1/m.gguf", 0, "plain http download refused"},
        {"ftp://127.0.0.1/m.gguf", 1, "must be http(s)"},
        {"file:///etc/passwd", 1, "must be http(s)"},
        {"not a url", 1, "invalid download URL"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fixture f;
        fixture_init(&f, 1000);
        f.cfg.allow_http = cases[i].allow_http;
        f.spec.url = cases[i].url;
        download_result res;
        CHECK_INT(run(&f, NULL, &res), DOWNLOAD_FAILED);
        CHECK_STR(res.code, "url_refused");
        CHECK_CONTAINS(res.error, cases[i].says);
        check_nothing_left();
        fixture_free(&f);
    }
}
