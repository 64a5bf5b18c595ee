/* test_verify_rate.c - installer/verify.c and installer/ratelimit.c without a daemon: a
 * verification hashes every byte (sizes around its 1 MiB block), tells a flipped byte, a
 * missing byte, an extra byte and a malformed checksum from a match, reports its progress
 * up to the file's size, stops for a cancel and for a shutdown; the shared rate lets the
 * bytes through no faster than the rate (an idle budget banks at most 0.1 s), a stop request
 * ends a wait, and the socket buffer follows the rate within its bounds. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ratelimit.h"
#include "unit.h"
#include "verify.h"

#define MiB (1024 * 1024)

/* ---- verify ---- */

typedef struct verify_probe {
    int reports;
    int64_t last_done, last_total;
    int stop_after;   /* should_stop calls before it answers `stop_with` (0: never) */
    int stop_with;
    int calls;
} verify_probe;

static void probe_report(void *ud, job_status st, int64_t done, int64_t total) {
    verify_probe *p = ud;
    CHECK_INT(st, JOB_VERIFYING);
    CHECK(done >= p->last_done);
    p->reports++;
    p->last_done = done;
    p->last_total = total;
}

static int probe_stop(void *ud) {
    verify_probe *p = ud;
    p->calls++;
    return p->stop_after && p->calls >= p->stop_after ? p->stop_with : 0;
}

/* Verifies `len` bytes of `data` written to a file against `checksum`. */
static verify_outcome verify_bytes(const char *data, size_t len, const char *checksum,
                                   verify_probe *p, verify_result *res) {
    const char *path = unit_path("model.gguf");
    CHECK_INT(unit_write_file(path, data, len), 0);
    p->reports = p->calls = 0;
    p->last_done = p->last_total = -1;
    download_hooks hooks = {.ud = p, .report = probe_report, .should_stop = probe_stop};
    return verify_run(path, checksum, &hooks, res);
}

UNIT_TEST(verify_matches_every_size) {
    static const size_t sizes[] = {0, 1, MiB - 1, MiB, MiB + 1, 3 * MiB + 7};
    char *data = unit_random_bytes(3 * MiB + 7, 7);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char hex[65], sum[80];
        unit_sha256_hex(data, sizes[i], hex);
        snprintf(sum, sizeof sum, "sha256:%s", hex);
        verify_probe p = {0};
        verify_result res;
        CHECK_INT(verify_bytes(data, sizes[i], sum, &p, &res), VERIFY_OK);
        CHECK_STR(res.hex, hex);
        CHECK_INT(res.size, (int64_t)sizes[i]);
        CHECK(p.reports >= 1);
        CHECK(p.last_total == (int64_t)sizes[i] && p.last_done <= (int64_t)sizes[i]);
        for (char *c = sum + 7; *c; c++) *c = (char)(*c >= 'a' ? *c - 32 : *c); /* upper case */
        CHECK_INT(verify_bytes(data, sizes[i], sum, &p, &res), VERIFY_OK);
    }
    free(data);
}

UNIT_TEST(verify_tells_a_damaged_file) {
    size_t len = 2 * MiB + 5;
    char *data = unit_random_bytes(len + 1, 11), hex[65], sum[80], got[65];
    unit_sha256_hex(data, len, hex);
    snprintf(sum, sizeof sum, "sha256:%s", hex);
    verify_probe p = {0};
    verify_result res;
    /* a flipped byte at the start, in the middle, at the end */
    size_t at[] = {0, MiB, len - 1};
    for (size_t i = 0; i < 3; i++) {
        data[at[i]] ^= 0x01;
        CHECK_INT(verify_bytes(data, len, sum, &p, &res), VERIFY_MISMATCH);
        CHECK_STR(res.hex, unit_sha256_hex(data, len, got));
        data[at[i]] ^= 0x01;
    }
    CHECK_INT(verify_bytes(data, len - 1, sum, &p, &res), VERIFY_MISMATCH); /* a byte short */
    CHECK_INT(res.size, (int64_t)(len - 1));
    CHECK_INT(verify_bytes(data, len + 1, sum, &p, &res), VERIFY_MISMATCH); /* a byte more */
    /* a checksum one hex digit short, or one more, never matches */
    char shorter[80], longer[80];
    snprintf(shorter, sizeof shorter, "sha256:%.63s", hex);
    snprintf(longer, sizeof longer, "sha256:%s0", hex);
    CHECK_INT(verify_bytes(data, len, shorter, &p, &res), VERIFY_MISMATCH);
    CHECK_INT(verify_bytes(data, len, longer, &p, &res), VERIFY_MISMATCH);
    CHECK_INT(verify_bytes(data, len, sum, &p, &res), VERIFY_OK);
    free(data);
}

UNIT_TEST(verify_missing_file_fails) {
    verify_probe p = {0};
    download_hooks hooks = {.ud = &p, .report = probe_report, .should_stop = probe_stop};
    verify_result res;
    CHECK_INT(verify_run(unit_path("no-such-file.gguf"), "sha256:00", &hooks, &res),
              VERIFY_FAILED);
    CHECK(strstr(res.error, "no-such-file.gguf") != NULL);
}

UNIT_TEST(verify_stops_for_cancel_and_shutdown) {
    size_t len = 4 * MiB;
    char *data = unit_random_bytes(len, 3), hex[65], sum[80];
    snprintf(sum, sizeof sum, "sha256:%s", unit_sha256_hex(data, len, hex));
    verify_result res;
    verify_probe cancel = {.stop_after = 2, .stop_with = 1};
    CHECK_INT(verify_bytes(data, len, sum, &cancel, &res), VERIFY_CANCELLED);
    CHECK_INT(cancel.calls, 2); /* it asks between blocks, and stops at the first yes */
    verify_probe shutdown = {.stop_after = 3, .stop_with = 2};
    CHECK_INT(verify_bytes(data, len, sum, &shutdown, &res), VERIFY_STOPPED);
    verify_probe pause = {.stop_after = 1, .stop_with = 3}; /* a pause is nothing here */
    CHECK_INT(verify_bytes(data, len, sum, &pause, &res), VERIFY_OK);
    free(data);
}

/* ---- ratelimit ---- */

static int stop_at_deadline(void *ud) { return unit_now_ms() >= *(long long *)ud; }

/* Milliseconds to take `total` bytes in pieces of `piece` at `rate`. */
static long long rate_take_ms(long long rate, size_t total, size_t piece) {
    ratelimit_set(0);
    ratelimit_set(rate);
    long long t0 = unit_now_ms();
    for (size_t done = 0; done < total; done += piece)
        CHECK_INT(ratelimit_take(piece, NULL, NULL), 0);
    return unit_now_ms() - t0;
}

UNIT_TEST(rate_bounds_the_bytes) {
    ratelimit_set(0);
    CHECK_INT(ratelimit_rate(), 0);
    /* unlimited: at once */
    long long t0 = unit_now_ms();
    for (int i = 0; i < 1000; i++) CHECK_INT(ratelimit_take(1 << 20, NULL, NULL), 0);
    CHECK(unit_now_ms() - t0 < 200);
    /* 1 MB/s: 600 kB take 0.49 s (0.6 s less the 0.1 s an idle budget banks, less the last
     * piece's 10 ms), never less */
    long long ms = rate_take_ms(1000000, 600000, 10000);
    CHECK(ms >= 480);
    CHECK(ms < 2000);
    CHECK_INT(ratelimit_rate(), 1000000);
    /* a budget left idle for a second still banks 0.1 s only */
    usleep(1000000);
    t0 = unit_now_ms();
    for (int i = 0; i < 30; i++) CHECK_INT(ratelimit_take(10000, NULL, NULL), 0);
    CHECK(unit_now_ms() - t0 >= 180);
    /* at 2 MB/s: 0.3 s less the 0.1 s banked, less the last piece's 5 ms */
    ms = rate_take_ms(2000000, 600000, 10000);
    CHECK(ms >= 185);
    CHECK(ms < 1000);
    ratelimit_set(-5);
    CHECK_INT(ratelimit_rate(), 0);
}

UNIT_TEST(rate_wait_ends_on_stop) {
    ratelimit_set(0);
    ratelimit_set(1000);
    long long deadline = unit_now_ms() + 300, t0 = unit_now_ms();
    CHECK_INT(ratelimit_take(10000, NULL, NULL), 0); /* at once: 10 s of budget spent ahead */
    CHECK_INT(ratelimit_take(100, stop_at_deadline, &deadline), 1);
    long long ms = unit_now_ms() - t0;
    CHECK(ms >= 290);
    CHECK(ms < 1500);
    ratelimit_set(0);
}

UNIT_TEST(rate_socket_buffer) {
    CHECK_INT(ratelimit_socket_buffer(0), 0);
    CHECK_INT(ratelimit_socket_buffer(-1), 0);
    CHECK_INT(ratelimit_socket_buffer(1000), 8192);
    CHECK_INT(ratelimit_socket_buffer(16 * 8192), 8192);
    CHECK_INT(ratelimit_socket_buffer(16 * 8192 + 16), 8193);
    CHECK_INT(ratelimit_socket_buffer(16LL << 20), 1 << 20);
    CHECK_INT(ratelimit_socket_buffer(1LL << 40), 1 << 20);
}
