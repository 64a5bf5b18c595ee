/* test_progress.c - installer/progress.c without nchan: when a message is due (100 ms after
 * the last when bytes moved, a second after it anyway), the rate over the last ~2 s, and the
 * message itself (its fields, the percentage with one decimal within 0-100, eta_s) from the
 * table tests/data/cases/progress.jsonl. */
#include <math.h>

#include "progress.h"
#include "unit.h"

static int64_t num(json_t *c, const char *key) {
    return (int64_t)json_integer_value(json_object_get(c, key));
}

static void due_case(json_t *c) {
    progress_meter m;
    progress_meter_init(&m);
    if (num(c, "last_ms")) progress_meter_mark(&m, num(c, "last_ms"), num(c, "last_bytes"));
    int due = progress_meter_due(&m, num(c, "now"), num(c, "downloaded"));
    if (due != json_is_true(json_object_get(c, "due")))
        unit_fail(__FILE__, __LINE__, "%s: due %d", unit_case_at("progress.jsonl", c), due);
}

static json_t *message(const char *status, double progress, int64_t total, int64_t done,
                       int64_t bps) {
    progress_state ps = {.model_id = "m", .job_id = "0123456789abcdef", .status = status,
                         .progress = progress, .total = total, .downloaded = done,
                         .bytes_per_second = bps};
    return progress_message(&ps);
}

static void eta_case(json_t *c) {
    json_t *msg = message(json_string_value(json_object_get(c, "status")), 0, num(c, "total"),
                          num(c, "downloaded"), num(c, "bps"));
    json_t *want = json_object_get(c, "eta"), *got = json_object_get(msg, "eta_s");
    if (!json_equal(want, got))
        unit_fail(__FILE__, __LINE__, "%s: eta_s %s%lld", unit_case_at("progress.jsonl", c),
                  json_is_null(got) ? "null " : "", (long long)json_integer_value(got));
    json_decref(msg);
}

static void progress_case(json_t *c) {
    json_t *msg = message("downloading", json_number_value(json_object_get(c, "progress")), 0,
                          0, 0);
    double got = json_number_value(json_object_get(msg, "progress"));
    double want = json_number_value(json_object_get(c, "sent"));
    if (fabs(got - want) > 1e-9)
        unit_fail(__FILE__, __LINE__, "%s: progress %g", unit_case_at("progress.jsonl", c), got);
    json_decref(msg);
}

UNIT_TEST(progress_table) {
    json_t *cases = unit_cases("progress.jsonl"), *c;
    size_t i;
    json_array_foreach(cases, i, c) {
        if (json_object_get(c, "due")) due_case(c);
        else if (json_object_get(c, "eta")) eta_case(c);
        else progress_case(c);
    }
    CHECK(json_array_size(cases) >= 20);
    json_decref(cases);
}

UNIT_TEST(message_fields) {
    progress_state ps = {.model_id = "m", .job_id = "0123456789abcdef", .kind = NULL,
                         .status = "failed", .progress = 12.3, .total = 100, .downloaded = 12,
                         .bytes_per_second = 7, .error = "boom", .error_code = "http_404"};
    json_t *msg = progress_message(&ps);
    json_t *want = json_pack("{s:s,s:s,s:s,s:s,s:f,s:i,s:i,s:i,s:n,s:s,s:s,s:n}", "model_id",
                             "m", "job_id", "0123456789abcdef", "kind", "install", "status",
                             "failed", "progress", 12.3, "downloaded", 12, "total", 100,
                             "bytes_per_second", 7, "eta_s", "error", "boom", "error_code",
                             "http_404", "source_url");
    CHECK(json_equal(msg, want));
    json_decref(want);
    json_decref(msg);
    json_t *pub = json_pack("{s:s,s:s,s:s,s:s,s:f,s:i,s:i,s:n,s:n}", "model_id", "m", "job_id",
                            "0123456789abcdef", "kind", "verify", "status", "installed",
                            "progress", 100.0, "downloaded", 5, "total", 5, "error",
                            "error_code");
    json_object_set_new(pub, "source_url", json_string("https://mirror.example/m.gguf"));
    msg = progress_message_of(pub);
    CHECK_STR(json_string_value(json_object_get(msg, "kind")), "verify");
    CHECK_STR(json_string_value(json_object_get(msg, "source_url")),
              "https://mirror.example/m.gguf");
    CHECK_INT(json_integer_value(json_object_get(msg, "eta_s")), 0);
    CHECK(json_is_null(json_object_get(msg, "error")));
    CHECK_INT(json_integer_value(json_object_get(msg, "bytes_per_second")), 0);
    json_decref(msg);
    json_object_del(pub, "status");
    CHECK(progress_message_of(pub) == NULL);
    json_decref(pub);
}

/* The rate is bytes per second over the samples of the last ~2 s (at least two kept). */
UNIT_TEST(rate_over_the_last_two_seconds) {
    progress_meter m;
    progress_meter_init(&m);
    CHECK_INT(progress_meter_mark(&m, 1000, 0), 0);
    CHECK_INT(progress_meter_mark(&m, 1500, 500), 1000);
    CHECK_INT(progress_meter_mark(&m, 2000, 1000), 1000);
    CHECK_INT(progress_meter_mark(&m, 3000, 5000), 2500);   /* 5000 B over 2 s */
    CHECK_INT(progress_meter_mark(&m, 3100, 5000), 4500 * 1000 / 1600); /* from 1500 ms on */
    CHECK_INT(progress_meter_mark(&m, 6000, 5000), 0);      /* nothing for 3 s */
    CHECK_INT(progress_meter_mark(&m, 6500, 6000), 1000 * 1000 / 500);
    for (int k = 1; k <= 100; k++) progress_meter_mark(&m, 6500 + 10 * k, 6000 + 100 * k);
    CHECK_INT(progress_meter_mark(&m, 7510, 16100), 10000);  /* 32 samples kept at most */
}
