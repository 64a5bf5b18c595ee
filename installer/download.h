/* download.h - one model download: from the job's URL into the hidden partial file, resumed
 * with Range (and If-Range, so a file that changed upstream starts over), retried with
 * backoff, never more than 5 % + 1 MiB over the announced size, hashed (SHA-256) while
 * streaming, verified against the checksum and moved into models/llm/ only when whole and
 * right. A verified file a failed registration or a crash left in models/llm/ is taken as
 * it is (partial.h).
 *
 * Error codes (download_result.code, the job's error_code): checksum_mismatch, http_<status>
 * (http_404, http_503 after the retries, ...), stalled, disk_full, too_large, network_error,
 * url_refused, bad_response, io_error, internal_error. The runner adds registry_error and
 * invalid_job. */
#ifndef MG_DOWNLOAD_H
#define MG_DOWNLOAD_H

#include <stdint.h>

#include "config.h"
#include "job.h"

typedef enum {
    DOWNLOAD_OK,        /* models/llm/{id}{ext} is in place */
    DOWNLOAD_FAILED,    /* result.error says why; the partial is removed */
    DOWNLOAD_CANCELLED, /* the cancel hook fired; the partial is removed */
    DOWNLOAD_STOPPED,   /* the daemon stops; the partial stays for a resume */
    DOWNLOAD_PAUSED     /* the job was paused; the partial stays for a resume */
} download_outcome;

/* What the caller learns while the download runs. */
typedef struct download_hooks {
    void *ud;
    /* Called about every 100 ms and at each change of status (downloading, verifying). */
    void (*report)(void *ud, job_status status, int64_t downloaded, int64_t total);
    /* Returns 0 to go on, 1 to cancel the job, 2 to stop for a shutdown, 3 to pause the job.
     * Called often. */
    int (*should_stop)(void *ud);
    /* Called (may be NULL) when a URL starts to serve bytes: `url` is borrowed. */
    void (*source)(void *ud, const char *url);
} download_hooks;

typedef struct download_spec {
    const mg_config *cfg;     /* borrowed: data root and allow_http */
    const char *model_id;     /* a valid model id */
    const char *url;          /* the gallery's downloadUrl: names the partial */
    const char *const *urls;  /* borrowed: the URLs to fetch from, in order (downloadUrl and
                                 mirrors after url_rewrites, mirror.h); NULL: url alone */
    int n_urls;
    const char *checksum;     /* "sha256:<64 hex>" */
    const char *ext;          /* a valid extension, see partial_ext_valid */
    int64_t expected_size;    /* bytes the gallery announces; 0: unknown */
} download_spec;

typedef struct download_result {
    int64_t size;             /* bytes of the installed file */
    char path[MG_PATH_MAX];   /* its path relative to the data root */
    char error[512];          /* why it failed */
    char code[32];            /* the error code of a failure, "" otherwise */
    char diagnosis[24];       /* of a checksum_mismatch: "catalogue_stale" when the server
                                 announced the SHA-256 of what arrived, else
                                 "corrupt_download"; "" otherwise */
    int recovered;            /* 1: a verified earlier download was taken, nothing fetched */
} download_result;

/* Runs the whole download (blocking). A URL that fails (connection, 5xx, 404, stall) hands
 * over to the next of spec->urls, which resumes the partial (the checksum verifies the
 * whole). server.json's min_download_speed (cfg) is the speed an
 * attempt must average to count as progress: attempts that stay below it (or are cut off
 * by libcurl's low-speed limit at that speed) use up the MG_RETRY_MAX attempts and the job
 * fails "stalled"; trickling bytes do not restart the series. Under max_download_rate
 * (ratelimit.h) every received buffer waits for its share of the rate before it is stored,
 * and the stall speed is at most half of an even share. Tunables from the environment:
 * MG_RETRY_BASE_MS (first backoff, default 500), MG_RETRY_MAX (attempts, default 6),
 * MG_STALL_SECONDS (how long an attempt may stay under that speed, default 15). */
download_outcome download_run(const download_spec *spec, const download_hooks *hooks,
                              download_result *res);

/* The largest body accepted for an expected size: 5 % + 1 MiB over it (INT64_MAX when
 * unknown). */
int64_t download_limit(int64_t expected_size);

#endif
