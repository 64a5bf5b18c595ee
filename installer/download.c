/* download.c - one model download (see download.h): a libcurl transfer per attempt into the
 * partial file, the hashing thread following it, retries with exponential backoff, then the
 * checksum comparison and the move into models/llm/. */
#include "download.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "hashpipe.h"
#include "header.h"
#include "log.h"
#include "partial.h"
#include "progress.h"

#define DOWNLOAD_BUFFER (512L * 1024)
#define DOWNLOAD_TICK_MS 50
#define DOWNLOAD_MAX_REWINDS 3

typedef enum {
    ATTEMPT_DONE,    /* the partial holds the whole body */
    ATTEMPT_RETRY,   /* transient: back off and resume */
    ATTEMPT_FAIL,    /* permanent: st->why says why */
    ATTEMPT_STOP,    /* cancel or shutdown (st->stop) */
    ATTEMPT_REWIND,  /* start again from byte 0 at once */
    ATTEMPT_HTTP     /* an error status: classified after the transfer */
} attempt_result;

typedef struct download_state {
    const download_spec *spec;
    const download_hooks *hooks;
    CURL *curl;
    CURLM *multi;
    partial part;
    hashpipe hp;
    int64_t pos;          /* bytes in the partial */
    int64_t offset;       /* bytes in the partial when the attempt started */
    int64_t total;        /* expected size of the whole file; 0 unknown */
    int64_t limit;        /* largest body accepted */
    int64_t range_start;  /* Content-Range of the last response: first byte, or -1 */
    int64_t range_total;  /* its complete length, or -1 */
    int checked;          /* the status of the response was checked */
    attempt_result fail;  /* set by a callback that stopped the transfer, else DONE */
    int stop;             /* 1 cancel, 2 shutdown */
    int transient;        /* the last failure was a transient one */
    int64_t last_tick;
    int64_t t_start, t_transferred, t_hashed; /* phase times (ms), for the log */
    int64_t moved_ms;     /* when the partial last grew (stall detection) */
    int64_t moved_pos;
    long retry_base_ms, stall_s;
    int retry_max;
    char why[512];
    char errbuf[CURL_ERROR_SIZE];
} download_state;

static long download_env(const char *name, long def, long min, long max) {
    const char *v = getenv(name);
    char *end;
    long n = v && *v ? strtol(v, &end, 10) : def;
    if (v && *v && *end) n = def;
    return n < min ? min : n > max ? max : n;
}

/* Writes the reason of a failure into st->why. */
static void download_why(download_state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void download_why(download_state *st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->why, sizeof st->why, fmt, ap);
    va_end(ap);
}

int64_t download_limit(int64_t expected_size) {
    if (expected_size <= 0) return INT64_MAX;
    return expected_size + expected_size / 10 + (1 << 20);
}

/* ---- callbacks of the transfer ---- */

/* Calls the hooks: stop check always, progress report at most every DOWNLOAD_TICK_MS.
 * Returns 1 when the job must stop. */
static int download_tick(download_state *st, job_status status, int force) {
    int s = st->hooks->should_stop(st->hooks->ud);
    if (s) {
        st->stop = s;
        return 1;
    }
    int64_t now = progress_now_ms();
    if (force || now - st->last_tick >= DOWNLOAD_TICK_MS) {
        st->last_tick = now;
        st->hooks->report(st->hooks->ud, status, st->pos, st->total > 0 ? st->total : 0);
    }
    return 0;
}

/* Keeps what the checks need from the response header: the Content-Range of the last
 * response (a redirect or an interim response starts over). */
static size_t download_on_header(char *line, size_t size, size_t n, void *ud) {
    download_state *st = ud;
    size_t len = size * n;
    header_field f;
    header_range r;
    if (header_is_status(line, len)) {
        st->range_start = st->range_total = -1;
    } else if (header_split(line, len, &f) == 0 && header_name_is(&f, "content-range") &&
               header_content_range(f.value, f.value_len, &r) == 0) {
        st->range_start = r.start;
        st->range_total = r.total;
    }
    return len;
}

/* Empties the partial and restarts hashing from byte 0. 0, or -1 with st->why. */
static int download_rewind(download_state *st) {
    hashpipe_cancel(&st->hp);
    if (partial_truncate(&st->part, st->why, sizeof st->why) < 0) return -1;
    st->offset = st->pos = 0;
    if (hashpipe_start(&st->hp, st->part.fd, 0) < 0) {
        download_why(st, "cannot start hashing: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Checks the response before its first body byte is stored. 0 to go on, -1 with st->fail. */
static int download_check(download_state *st) {
    long code = 0;
    curl_off_t cl = -1;
    st->checked = 1;
    curl_easy_getinfo(st->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code < 200 || code >= 300) {
        st->fail = ATTEMPT_HTTP;
        return -1;
    }
    if (st->offset > 0 && code == 206 && st->range_start != st->offset) {
        download_why(st, "the server sent a range from byte %lld instead of %lld",
                 (long long)st->range_start, (long long)st->offset);
        st->fail = ATTEMPT_REWIND;
        return -1;
    }
    if (st->offset > 0 && code != 206) {
        log_info("%s: the server ignored the Range request; downloading from the start",
                 st->spec->model_id);
        if (download_rewind(st) < 0) {
            st->fail = ATTEMPT_FAIL;
            return -1;
        }
    }
    curl_easy_getinfo(st->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    if (cl >= 0) st->total = st->offset + cl;
    if (cl >= 0 && st->total > st->limit) {
        download_why(st,
                 "download is larger than expected: the server announces %lld bytes, the "
                 "gallery %lld",
                 (long long)st->total, (long long)st->spec->expected_size);
        st->fail = ATTEMPT_FAIL;
        return -1;
    }
    return 0;
}

static size_t download_on_body(char *data, size_t size, size_t n, void *ud) {
    download_state *st = ud;
    size_t len = size * n, done = 0;
    if (!st->checked && download_check(st) < 0) return 0;
    if (st->pos + (int64_t)len > st->limit) {
        download_why(st,
                 "download is larger than expected: more than %lld bytes arrived, the gallery "
                 "announces %lld",
                 (long long)st->limit, (long long)st->spec->expected_size);
        st->fail = ATTEMPT_FAIL;
        return 0;
    }
    while (done < len) {
        ssize_t w = pwrite(st->part.fd, data + done, len - done, st->pos + (int64_t)done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0 || errno == ENOSPC || errno == EDQUOT)
                download_why(st, "disk full: no space left to download %s",
                             st->spec->model_id);
            else
                download_why(st, "cannot write %s: %s", st->part.part,
                         strerror(errno));
            st->fail = ATTEMPT_FAIL;
            return 0;
        }
        done += (size_t)w;
    }
    st->pos += (int64_t)len;
    hashpipe_feed(&st->hp, st->pos);
    return len;
}

/* ---- one attempt ---- */

static int download_setup(download_state *st) {
    const char *protocols = st->spec->cfg->allow_http ? "http,https" : "https";
    CURL *c = st->curl = curl_easy_init();
    st->multi = curl_multi_init();
    if (!c || !st->multi) return -1;
    curl_easy_setopt(c, CURLOPT_URL, st->spec->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protocols);
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, DOWNLOAD_BUFFER);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, st->stall_s);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "mg-installer/1.0");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, st->errbuf);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, download_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, st);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, download_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, st);
    return 0;
}

/* 1 when no byte arrived for the stall time: the attempt ends and is retried. */
static int download_stalled(download_state *st) {
    int64_t now = progress_now_ms();
    if (st->pos != st->moved_pos) {
        st->moved_pos = st->pos;
        st->moved_ms = now;
        return 0;
    }
    if (now - st->moved_ms < st->stall_s * 1000) return 0;
    download_why(st, "download stalled: no data for %ld s from %s", st->stall_s, st->spec->url);
    st->fail = ATTEMPT_RETRY;
    return 1;
}

/* Runs the transfer in a multi loop that wakes at least every 100 ms for the hooks. */
static CURLcode download_perform(download_state *st) {
    CURLcode rc = CURLE_OK;
    int running = 1;
    curl_multi_add_handle(st->multi, st->curl);
    while (running) {
        if (curl_multi_perform(st->multi, &running) != CURLM_OK) {
            rc = CURLE_OUT_OF_MEMORY;
            break;
        }
        if (!running || download_tick(st, JOB_DOWNLOADING, 0) || download_stalled(st)) break;
        curl_multi_poll(st->multi, NULL, 0, 100, NULL);
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(st->multi, &left)) != NULL)
        if (msg->msg == CURLMSG_DONE) rc = msg->data.result;
    curl_multi_remove_handle(st->multi, st->curl);
    return rc;
}

static int download_transient(CURLcode rc) {
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
}

/* Turns a libcurl failure into an attempt result and a message in st->why. */
static attempt_result download_curl_error(download_state *st, CURLcode rc) {
    const char *detail = st->errbuf[0] ? st->errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_OPERATION_TIMEDOUT && strstr(detail, "too slow"))
        download_why(st, "download stalled (%s) from %s", detail, st->spec->url);
    else if (rc == CURLE_UNSUPPORTED_PROTOCOL)
        download_why(st,
                 "download failed: %s leads to a protocol that is not allowed (%s)%s",
                 st->spec->url, detail,
                 st->spec->cfg->allow_http ? "" : "; plain http needs allow_http");
    else if (rc == CURLE_TOO_MANY_REDIRECTS)
        download_why(st, "download failed: more than 5 redirects from %s",
                 st->spec->url);
    else
        download_why(st, "download failed: %s (%s)", detail, st->spec->url);
    return download_transient(rc) ? ATTEMPT_RETRY : ATTEMPT_FAIL;
}

/* Classifies the end of an attempt by the status code when there is one. */
static attempt_result download_classify(download_state *st, CURLcode rc) {
    long code = 0;
    if (st->stop) return ATTEMPT_STOP;
    if (st->fail == ATTEMPT_FAIL || st->fail == ATTEMPT_REWIND || st->fail == ATTEMPT_RETRY)
        return st->fail;
    if (rc == CURLE_RANGE_ERROR) {
        download_why(st, "the server does not resume downloads (no byte ranges)");
        return ATTEMPT_REWIND;
    }
    if (rc != CURLE_OK && st->fail != ATTEMPT_HTTP) return download_curl_error(st, rc);
    curl_easy_getinfo(st->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code == 416 && st->offset > 0) {
        if (st->range_total == st->offset) return ATTEMPT_DONE; /* the partial is whole */
        download_why(st, "the server cannot resume at byte %lld",
                 (long long)st->offset);
        return ATTEMPT_REWIND;
    }
    if (code >= 200 && code < 300) return ATTEMPT_DONE;
    download_why(st, "download failed: HTTP %ld from %s", code, st->spec->url);
    return (code >= 500 || code == 408 || code == 429) ? ATTEMPT_RETRY : ATTEMPT_FAIL;
}

static attempt_result download_attempt(download_state *st) {
    st->offset = st->pos;
    st->range_start = st->range_total = -1;
    st->checked = 0;
    st->fail = ATTEMPT_DONE;
    st->errbuf[0] = '\0';
    st->moved_pos = st->pos;
    st->moved_ms = progress_now_ms();
    curl_easy_setopt(st->curl, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)st->offset);
    if (st->offset > 0)
        log_info("%s: resuming at byte %lld", st->spec->model_id, (long long)st->offset);
    CURLcode rc = download_perform(st);
    return download_classify(st, rc);
}

/* Sleeps the backoff before attempt `n` (1-based retry count) in short steps, reporting and
 * checking for a stop. 1 when the job must stop. */
static int download_backoff(download_state *st, int n) {
    int64_t ms = st->retry_base_ms;
    for (int i = 1; i < n && ms < 30000; i++) ms *= 2;
    if (ms > 30000) ms = 30000;
    int64_t end = progress_now_ms() + ms;
    for (int64_t now; (now = progress_now_ms()) < end;) {
        if (download_tick(st, JOB_DOWNLOADING, 0)) return 1;
        usleep((useconds_t)((end - now > 100 ? 100 : end - now) * 1000));
    }
    return 0;
}

/* Transfers until the partial holds the whole body (DOWNLOAD_OK; the hashing thread is still
 * running), or another outcome with st->why. */
static download_outcome download_transfer(download_state *st) {
    int failures = 0, rewinds = 0;
    st->transient = 0;
    for (;;) {
        int64_t before = st->pos;
        attempt_result r = download_attempt(st);
        if (r == ATTEMPT_DONE) return DOWNLOAD_OK;
        if (r == ATTEMPT_STOP) return st->stop == 1 ? DOWNLOAD_CANCELLED : DOWNLOAD_STOPPED;
        if (r == ATTEMPT_FAIL) return DOWNLOAD_FAILED;
        if (r == ATTEMPT_REWIND) {
            log_info("%s: %s; starting again from byte 0", st->spec->model_id, st->why);
            if (++rewinds > DOWNLOAD_MAX_REWINDS || download_rewind(st) < 0)
                return DOWNLOAD_FAILED;
            continue;
        }
        if (st->pos > before) failures = 0; /* progress was made: a fresh series */
        if (++failures >= st->retry_max) {
            char last[sizeof st->why];
            snprintf(last, sizeof last, "%s", st->why);
            download_why(st, "%s (gave up after %d attempts)", last, failures);
            st->transient = 1;
            return DOWNLOAD_FAILED;
        }
        log_warn("%s: %s; retry %d of %d", st->spec->model_id, st->why, failures,
                 st->retry_max - 1);
        if (download_backoff(st, failures))
            return st->stop == 1 ? DOWNLOAD_CANCELLED : DOWNLOAD_STOPPED;
    }
}

/* ---- the whole download ---- */

/* Refuses URLs that are not http(s), and http without allow_http. 0, or -1 with st->why. */
static int download_check_url(download_state *st) {
    CURLU *u = curl_url();
    char *scheme = NULL;
    int rc = 0;
    if (!u || curl_url_set(u, CURLUPART_URL, st->spec->url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        download_why(st, "invalid download URL: %s", st->spec->url);
        rc = -1;
    } else if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0) {
        download_why(st, "download URL must be http(s): %s", st->spec->url);
        rc = -1;
    } else if (strcmp(scheme, "http") == 0 && !st->spec->cfg->allow_http) {
        download_why(st,
                 "plain http download refused: %s (set allow_http in config/server.json to "
                 "permit it)",
                 st->spec->url);
        rc = -1;
    }
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
}

/* Downloads and verifies into the open partial. DOWNLOAD_OK when the digest matches. */
static download_outcome download_verified(download_state *st) {
    int resumed = st->pos > 0;
    for (;;) {
        if (hashpipe_start(&st->hp, st->part.fd, st->pos) < 0) {
            download_why(st, "cannot start hashing: %s", strerror(errno));
            return DOWNLOAD_FAILED;
        }
        download_outcome o = download_transfer(st);
        if (o != DOWNLOAD_OK) return o;
        if (st->total <= 0 || st->total < st->pos) st->total = st->pos;
        st->t_transferred = progress_now_ms();
        download_tick(st, JOB_VERIFYING, 1);
        char hex[65];
        int hashed = hashpipe_finish(&st->hp, hex);
        st->t_hashed = progress_now_ms();
        if (hashed < 0) {
            download_why(st, "cannot read back %s: %s", st->part.part,
                     strerror(errno));
            return DOWNLOAD_FAILED;
        }
        const char *want = st->spec->checksum + 7;
        if (strcasecmp(hex, want) == 0) return DOWNLOAD_OK;
        if (!resumed) {
            download_why(st, "checksum mismatch: expected sha256:%s, got sha256:%s",
                     want, hex);
            return DOWNLOAD_FAILED;
        }
        /* The bytes kept from an earlier run may be bad (a crash of the machine): once, start
         * over from nothing before blaming the file. */
        log_warn("%s: the resumed download does not match its checksum; downloading it again",
                 st->spec->model_id);
        resumed = 0;
        if (partial_truncate(&st->part, st->why, sizeof st->why) < 0) return DOWNLOAD_FAILED;
        st->pos = 0;
        st->total = st->spec->expected_size;
    }
}

static void download_release(download_state *st) {
    hashpipe_cancel(&st->hp);
    if (st->multi) curl_multi_cleanup(st->multi);
    if (st->curl) curl_easy_cleanup(st->curl);
}

download_outcome download_run(const download_spec *spec, const download_hooks *hooks,
                              download_result *res) {
    download_state st;
    memset(&st, 0, sizeof st);
    memset(res, 0, sizeof *res);
    st.spec = spec;
    st.hooks = hooks;
    st.part.fd = -1;
    st.total = spec->expected_size > 0 ? spec->expected_size : 0;
    st.limit = download_limit(spec->expected_size);
    st.retry_base_ms = download_env("MG_RETRY_BASE_MS", 500, 1, 60000);
    st.retry_max = (int)download_env("MG_RETRY_MAX", 6, 1, 100);
    st.stall_s = download_env("MG_STALL_SECONDS", 15, 1, 3600);
    download_outcome o = DOWNLOAD_FAILED;
    partial_paths(&st.part, spec->cfg, spec->model_id, spec->ext);
    if (download_check_url(&st) < 0) goto out;
    if (download_setup(&st) < 0) {
        download_why(&st, "cannot start libcurl");
        goto out;
    }
    if (partial_open(&st.part, spec->url, spec->checksum, st.why, sizeof st.why) < 0) goto out;
    st.pos = st.part.size;
    st.t_start = progress_now_ms();
    download_tick(&st, JOB_DOWNLOADING, 1);
    o = download_verified(&st);
    hashpipe_cancel(&st.hp);
    if (o == DOWNLOAD_OK && partial_commit(&st.part, st.why, sizeof st.why) < 0)
        o = DOWNLOAD_FAILED;
    if (o == DOWNLOAD_OK)
        log_info("%s: %lld bytes verified and installed in %.2f s (transfer %.2f s, hash tail "
                 "%.2f s, fsync+rename %.2f s)",
                 spec->model_id, (long long)st.pos, (progress_now_ms() - st.t_start) / 1e3,
                 (st.t_transferred - st.t_start) / 1e3, (st.t_hashed - st.t_transferred) / 1e3,
                 (progress_now_ms() - st.t_hashed) / 1e3);
out:
    if (o == DOWNLOAD_STOPPED || (o == DOWNLOAD_FAILED && st.transient))
        partial_close(&st.part); /* kept: a later run resumes it */
    else if (o != DOWNLOAD_OK)
        partial_discard(&st.part);
    download_release(&st);
    if (o == DOWNLOAD_OK) {
        res->size = st.pos;
        snprintf(res->path, sizeof res->path, "%s", st.part.rel);
    }
    snprintf(res->error, sizeof res->error, "%s", st.why);
    return o;
}
