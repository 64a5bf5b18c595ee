/* download.h - one model download: from the job's URL into the hidden partial file, resumed
 * with Range, retried with backoff, hashed (SHA-256) while streaming, verified against the
 * checksum and moved into models/llm/ only when whole and right. */
#ifndef MG_DOWNLOAD_H
#define MG_DOWNLOAD_H

#include <stdint.h>

#include "config.h"
#include "job.h"

typedef enum {
    DOWNLOAD_OK,        /* models/llm/{id}{ext} is in place */
    DOWNLOAD_FAILED,    /* result.error says why; the partial is removed */
    DOWNLOAD_CANCELLED, /* the cancel hook fired; the partial is removed */
    DOWNLOAD_STOPPED    /* the daemon stops; the partial stays for a resume */
} download_outcome;

/* What the caller learns while the download runs. */
typedef struct download_hooks {
    void *ud;
    /* Called about every 100 ms and at each change of status (downloading, verifying). */
    void (*report)(void *ud, job_status status, int64_t downloaded, int64_t total);
    /* Returns 0 to go on, 1 to cancel the job, 2 to stop for a shutdown. Called often. */
    int (*should_stop)(void *ud);
} download_hooks;

typedef struct download_spec {
    const mg_config *cfg;     /* borrowed: data root and allow_http */
    const char *model_id;     /* a valid model id */
    const char *url;          /* the gallery's downloadUrl */
    const char *checksum;     /* "sha256:<64 hex>" */
    const char *ext;          /* a valid extension, see partial_ext_valid */
    int64_t expected_size;    /* bytes the gallery announces; 0: unknown */
} download_spec;

typedef struct download_result {
    int64_t size;             /* bytes of the installed file */
    char path[MG_PATH_MAX];   /* its path relative to the data root */
    char error[512];          /* why it failed */
} download_result;

/* Runs the whole download (blocking). Tunables from the environment: MG_RETRY_BASE_MS
 * (first backoff, default 500), MG_RETRY_MAX (attempts, default 6), MG_STALL_SECONDS (a
 * transfer under 1 KiB/s for that long is a stall, default 15). */
download_outcome download_run(const download_spec *spec, const download_hooks *hooks,
                              download_result *res);

/* The largest body accepted for an expected size (INT64_MAX when unknown). */
int64_t download_limit(int64_t expected_size);

#endif
