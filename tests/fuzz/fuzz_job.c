/* fuzz_job.c - a job file jobs/<job_id>.json as the API and the installer read it
 * (job_parse, then job_get_status, job_status_name/parse and job_public).
 *
 * Invariants: text that is not a JSON object is a 500 "job_corrupt" error naming the file; a
 * parsed job's status is always one of the known statuses (unreadable ones count as failed)
 * and its name parses back to it; the public view has every public field of the contract,
 * each the file's value (URLs in it redacted, redact.h) or null (kind: the file's string,
 * else "install"); a parsed job dumps (as job_save does) to text that parses to the same
 * job. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "job.h"
#include "redact.h"

static const char *const job_fields[] = {"job_id",     "model_id",   "status",    "progress",
                                          "downloaded", "total",      "error",     "error_code",
                                          "diagnosis",  "created_at", "updated_at"};
#define JOB_NFIELDS (sizeof job_fields / sizeof *job_fields)

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}

static void job_check_status(json_t *job) {
    job_status s = job_get_status(job), back;
    FUZZ_CHECK(job_status_name(s) != NULL);
    FUZZ_CHECK(job_status_parse(job_status_name(s), &back) == 0 && back == s);
    const char *name = json_string_value(json_object_get(job, "status"));
    if (job_status_parse(name, &back) == 0)
        FUZZ_CHECK(back == s && strcmp(name, job_status_name(s)) == 0);
    else
        FUZZ_CHECK(s == JOB_FAILED);
    if (s == JOB_INSTALLED || s == JOB_FAILED || s == JOB_CANCELLED)
        FUZZ_CHECK(job_status_terminal(s));
    if (s == JOB_QUEUED || s == JOB_DOWNLOADING || s == JOB_VERIFYING)
        FUZZ_CHECK(!job_status_terminal(s));
}

static void job_check_public(json_t *job) {
    json_t *pub = job_public(job);
    FUZZ_CHECK(json_is_object(pub));
    for (size_t i = 0; i < JOB_NFIELDS; i++) {
        json_t *v = json_object_get(job, job_fields[i]), *p = json_object_get(pub, job_fields[i]);
        json_t *shown = v ? json_deep_copy(v) : NULL;
        redact_json(shown);
        FUZZ_CHECK(p != NULL);
        FUZZ_CHECK(v ? json_equal(p, shown) : json_is_null(p));
        json_decref(shown);
    }
    /* kind: the file's when it is a string, else "install" (files from before version 2) */
    json_t *kind = json_object_get(job, "kind"), *pkind = json_object_get(pub, "kind");
    if (json_is_string(kind)) {
        json_t *shown = json_deep_copy(kind);
        redact_json(shown);
        FUZZ_CHECK(json_equal(pkind, shown));
        json_decref(shown);
    } else
        FUZZ_CHECK(json_is_string(pkind) && strcmp(json_string_value(pkind), "install") == 0);
    json_decref(pub);
}

static void job_check_roundtrip(json_t *job) {
    char *text = json_dumps(job, JSON_COMPACT);
    mg_error err;
    FUZZ_CHECK(text != NULL);
    json_t *again = job_parse(text, strlen(text), "fuzz (again)", &err);
    FUZZ_CHECK(again != NULL && json_equal(again, job));
    json_decref(again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mg_error err;
    mg_error_clear(&err);
    json_t *job = job_parse((const char *)data, size, "jobs/0123456789abcdef.json", &err);
    if (!job) {
        FUZZ_CHECK(err.status == 500 && strcmp(err.code, "job_corrupt") == 0);
        FUZZ_CHECK(strncmp(err.message, "jobs/0123456789abcdef.json: ", 28) == 0);
        return 0;
    }
    FUZZ_CHECK(json_is_object(job));
    job_check_status(job);
    job_check_public(job);
    job_check_roundtrip(job);
    json_decref(job);
    return 0;
}
