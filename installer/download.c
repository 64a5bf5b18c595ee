/* download.c - one model download (see download.h): a libcurl transfer per attempt into the
 * partial file, the hashing thread following it, retries with exponential backoff, then the
 * checksum comparison and the move into models/llm/. */
#include "download_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hashpipe.h"
#include "header.h"
#include "log.h"
#include "metrics.h"
#include "mirror.h"
#include "partial.h"
#include "progress.h"
#include "ratelimit.h"
#include "segments.h"

#define DOWNLOAD_TICK_MS 50
#define DOWNLOAD_MAX_REWINDS 3


static long download_env(const char *name, long def, long min, long max) {
    const char *v = getenv(name);
    char *end;
    long n = v && *v ? strtol(v, &end, 10) : def;
    if (v && *v && *end) n = def;
    return n < min ? min : n > max ? max : n;
}

/* Writes the error code and the reason of a failure into st->code and st->why. */
void download_fail(download_state *st, const char *code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->why, sizeof st->why, fmt, ap);
    va_end(ap);
    snprintf(st->code, sizeof st->code, "%s", code);
}

int64_t download_limit(int64_t expected_size) {
    if (expected_size <= 0) return INT64_MAX;
    return expected_size + expected_size / 20 + (1 << 20);
}

/* ---- callbacks of the transfer ---- */

/* Calls the hooks: stop check always, progress report at most every DOWNLOAD_TICK_MS.
 * Returns 1 when the job must stop. */
int download_tick(download_state *st, job_status status, int force) {
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

/* Copies the value of header field `f` into out; a value that does not fit is no validator
 * (empty). */
static void download_header_copy(const header_field *f, char *out, size_t n) {
    size_t k = f->value_len < n ? f->value_len : 0;
    memcpy(out, f->value, k);
    out[k] = '\0';
}

void download_resp_reset(download_resp *r) {
    r->range_start = r->range_total = -1;
    r->etag[0] = r->modified[0] = '\0';
}

void download_resp_field(download_resp *r, const header_field *f) {
    header_range range;
    if (header_name_is(f, "content-range")) {
        if (header_content_range(f->value, f->value_len, &range) == 0) {
            r->range_start = range.start;
            r->range_total = range.total;
        }
    } else if (header_name_is(f, "etag")) {
        download_header_copy(f, r->etag, sizeof r->etag);
    } else if (header_name_is(f, "last-modified")) {
        download_header_copy(f, r->modified, sizeof r->modified);
    }
}

const char *download_resp_validator(const download_resp *r) {
    if (r->etag[0] == '"') return r->etag;
    return r->modified;
}

/* Keeps the SHA-256 the header field `f` announces, once each. */
void download_announced(download_state *st, const header_field *f) {
    char hex[65];
    if (st->n_announced >= DOWNLOAD_ANNOUNCED_MAX || !header_sha256(f, hex)) return;
    for (int i = 0; i < st->n_announced; i++)
        if (strcmp(st->announced[i], hex) == 0) return;
    memcpy(st->announced[st->n_announced++], hex, sizeof hex);
}

/* Keeps what the checks need from the response header: the Content-Range, the validators
 * (ETag, Last-Modified) and the announced SHA-256 digests of the last response (a redirect
 * or an interim response starts over). */
static size_t download_on_header(char *line, size_t size, size_t n, void *ud) {
    download_state *st = ud;
    size_t len = size * n;
    header_field f;
    if (header_is_status(line, len)) {
        download_resp_reset(&st->resp);
        st->n_announced = 0;
        return len;
    }
    if (header_split(line, len, &f) != 0) return len;
    download_announced(st, &f);
    download_resp_field(&st->resp, &f);
    return len;
}

/* 1 when the partial's validator came from the URL of the current attempt. */
int download_same_source(const download_state *st) {
    return strcmp(st->part.source, st->url) == 0;
}

/* Empties the partial and restarts hashing from byte 0. 0, or -1 with st->why. */
int download_rewind(download_state *st) {
    hashpipe_cancel(&st->hp);
    segments_reset(st);
    if (partial_truncate(&st->part, st->why, sizeof st->why) < 0) {
        snprintf(st->code, sizeof st->code, "io_error");
        return -1;
    }
    st->offset = st->pos = 0;
    if (hashpipe_start(&st->hp, st->part.fd, 0) < 0) {
        download_fail(st, "internal_error", "cannot start hashing: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* A 200 answer to a resume: the file changed upstream (If-Range) or Range is not supported;
 * the body is the whole file, so the partial starts over. 0, or -1 with st->fail. */
static int download_restart_whole(download_state *st) {
    if (st->part.validator[0] && strcmp(st->part.validator, download_resp_validator(&st->resp)) != 0)
        log_info("%s: the file changed upstream (validator %s, was %s); downloading it again "
                 "from the start",
                 st->spec->model_id, download_resp_validator(&st->resp), st->part.validator);
    else
        log_info("%s: the server ignored the Range request; downloading from the start",
                 st->spec->model_id);
    if (download_rewind(st) < 0) {
        st->fail = ATTEMPT_FAIL;
        return -1;
    }
    return 0;
}

/* Checks a 206 answer to a resume: the range it starts at and, when the server ignores
 * If-Range, that the validator is the one the partial's bytes came with. */
static int download_check_range(download_state *st) {
    if (st->resp.range_start != st->offset) {
        download_fail(st, "bad_response", "the server sent a range from byte %lld instead of %lld",
                      (long long)st->resp.range_start, (long long)st->offset);
        st->fail = ATTEMPT_REWIND;
        return -1;
    }
    const char *v = download_resp_validator(&st->resp);
    if (download_same_source(st) && st->part.validator[0] && v[0] &&
        strcmp(v, st->part.validator) != 0) {
        download_fail(st, "bad_response", "the file changed upstream (validator %s, was %s)", v,
                      st->part.validator);
        st->fail = ATTEMPT_REWIND;
        return -1;
    }
    return 0;
}

/* A 206 to "Range: bytes=0-" for a large file: the download goes on in segments (the
 * first answer is dropped before its body). 0 to go on, -1 with st->fail. */
static int download_check_split(download_state *st, long code) {
    if (st->offset != 0 || code != 206 || st->resp.range_start != 0 || st->resp.range_total <= 0 ||
        !segments_wanted(st))
        return 0;
    int planned = segments_plan(st, st->resp.range_total);
    if (planned == 0) return 0;
    st->fail = planned > 0 ? ATTEMPT_SPLIT : ATTEMPT_FAIL;
    return -1;
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
    if (st->offset > 0 && code == 206 && download_check_range(st) < 0) return -1;
    if (st->offset > 0 && code != 206 && download_restart_whole(st) < 0) return -1;
    if ((st->offset == 0 || !download_same_source(st)) &&
        partial_set_validator(&st->part, download_resp_validator(&st->resp), st->url, st->why,
                              sizeof st->why) < 0) {
        snprintf(st->code, sizeof st->code, "io_error");
        st->fail = ATTEMPT_FAIL;
        return -1;
    }
    if (st->reported != st->cur && st->hooks->source) st->hooks->source(st->hooks->ud, st->url);
    st->reported = st->cur;
    curl_easy_getinfo(st->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    if (cl >= 0) st->total = st->offset + cl;
    if (cl >= 0 && st->total > st->limit) {
        download_fail(st, "too_large",
                      "download is larger than expected: the server announces %lld bytes, the "
                      "gallery %lld (at most %lld accepted)",
                      (long long)st->total, (long long)st->spec->expected_size,
                      (long long)st->limit);
        st->fail = ATTEMPT_FAIL;
        return -1;
    }
    return download_check_split(st, code);
}

int download_store_at(download_state *st, const char *data, size_t len, int64_t off) {
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(st->part.fd, data + done, len - done, off + (int64_t)done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0 || errno == ENOSPC || errno == EDQUOT)
                download_fail(st, "disk_full", "disk full: no space left to download %s",
                              st->spec->model_id);
            else
                download_fail(st, "io_error", "cannot write %s: %s", st->part.part,
                              strerror(errno));
            st->fail = ATTEMPT_FAIL;
            return -1;
        }
        done += (size_t)w;
    }
    return 0;
}

/* ratelimit_take's stop check while a buffer waits for its share: the hooks as usual. */
int download_rate_wait(void *ud) {
    download_state *st = ud;
    return download_tick(st, JOB_DOWNLOADING, 0);
}

static size_t download_on_body(char *data, size_t size, size_t n, void *ud) {
    download_state *st = ud;
    size_t len = size * n;
    if (!st->checked && download_check(st) < 0) return 0;
    if (st->rate > 0 && ratelimit_take(len, download_rate_wait, st)) return 0;
    if (st->pos + (int64_t)len > st->limit) {
        download_fail(st, "too_large",
                      "download is larger than expected: more than %lld bytes arrived, the "
                      "gallery announces %lld",
                      (long long)st->limit, (long long)st->spec->expected_size);
        st->fail = ATTEMPT_FAIL;
        return 0;
    }
    if (download_store_at(st, data, len, st->pos) < 0) return 0;
    st->pos += (int64_t)len;
    metrics_add("mg_download_bytes_total", (uint64_t)len);
    hashpipe_feed(&st->hp, st->pos);
    return len;
}

/* ---- one attempt ---- */

/* CURLOPT_SOCKOPTFUNCTION under a rate limit: a small receive buffer, so that what the
 * kernel takes in ahead of the budget stays small. */
static int download_sockopt(void *ud, curl_socket_t fd, curlsocktype purpose) {
    download_state *st = ud;
    int buf = ratelimit_socket_buffer(st->rate);
    if (purpose == CURLSOCKTYPE_IPCXN && buf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    return CURL_SOCKOPT_OK;
}

/* The receive buffer of libcurl: smaller under a rate limit (about 1/20 s of it), so the
 * downloads that share the rate take turns in small steps. */
static long download_buffer_size(const download_state *st) {
    if (st->rate <= 0) return DOWNLOAD_BUFFER;
    long long b = st->rate / 20;
    return b < 16384 ? 16384 : b > DOWNLOAD_BUFFER ? DOWNLOAD_BUFFER : (long)b;
}

void download_handle_setup(download_state *st, CURL *c) {
    const char *protocols = st->spec->cfg->allow_http ? "http,https" : "https";
    long speed = st->min_speed > 1L << 30 ? 1L << 30 : (long)st->min_speed;
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protocols);
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, download_buffer_size(st));
    if (st->rate > 0) {
        curl_easy_setopt(c, CURLOPT_SOCKOPTFUNCTION, download_sockopt);
        curl_easy_setopt(c, CURLOPT_SOCKOPTDATA, st);
    }
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, speed);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, st->stall_s);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "mg-installer/1.0");
}

static int download_setup(download_state *st) {
    CURL *c = st->curl = curl_easy_init();
    st->multi = curl_multi_init();
    if (!c || !st->multi) return -1;
    download_handle_setup(st, c);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, st->errbuf);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, download_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, st);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, download_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, st);
    return 0;
}

/* 1 when no byte arrived for the stall time: the attempt ends and is retried. */
int download_stalled(download_state *st) {
    int64_t now = progress_now_ms();
    if (st->pos != st->moved_pos) {
        st->moved_pos = st->pos;
        st->moved_ms = now;
        return 0;
    }
    if (now - st->moved_ms < st->stall_s * 1000) return 0;
    download_fail(st, "stalled", "download stalled: no data for %ld s from %s", st->stall_s,
                  st->url);
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
attempt_result download_curl_error(download_state *st, CURLcode rc) {
    const char *detail = st->errbuf[0] ? st->errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_OPERATION_TIMEDOUT && strstr(detail, "too slow"))
        download_fail(st, "stalled", "download stalled: under %lld bytes/s for %ld s (%s) from %s",
                      st->min_speed, st->stall_s, detail, st->url);
    else if (rc == CURLE_UNSUPPORTED_PROTOCOL)
        download_fail(st, "url_refused",
                      "download failed: %s leads to a protocol that is not allowed (%s)%s",
                      st->url, detail,
                      st->spec->cfg->allow_http ? "" : "; plain http needs allow_http");
    else if (rc == CURLE_TOO_MANY_REDIRECTS)
        download_fail(st, "network_error", "download failed: more than 5 redirects from %s",
                      st->url);
    else
        download_fail(st, "network_error", "download failed: %s (%s)", detail, st->url);
    return download_transient(rc) ? ATTEMPT_RETRY : ATTEMPT_FAIL;
}

/* Classifies the end of an attempt by the status code when there is one. */
static attempt_result download_classify(download_state *st, CURLcode rc) {
    long code = 0;
    if (st->stop) return ATTEMPT_STOP;
    if (st->fail == ATTEMPT_FAIL || st->fail == ATTEMPT_REWIND || st->fail == ATTEMPT_RETRY ||
        st->fail == ATTEMPT_SPLIT)
        return st->fail;
    if (rc == CURLE_RANGE_ERROR) {
        download_fail(st, "bad_response", "the server does not resume downloads (no byte ranges)");
        return ATTEMPT_REWIND;
    }
    if (rc != CURLE_OK && st->fail != ATTEMPT_HTTP) return download_curl_error(st, rc);
    curl_easy_getinfo(st->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code == 416 && st->offset > 0) {
        if (st->resp.range_total == st->offset) return ATTEMPT_DONE; /* the partial is whole */
        download_fail(st, "bad_response", "the server cannot resume at byte %lld",
                      (long long)st->offset);
        return ATTEMPT_REWIND;
    }
    if (code >= 200 && code < 300) return ATTEMPT_DONE;
    char http[32];
    snprintf(http, sizeof http, "http_%ld", code);
    download_fail(st, http, "download failed: HTTP %ld from %s", code, st->url);
    return (code >= 500 || code == 408 || code == 429) ? ATTEMPT_RETRY : ATTEMPT_FAIL;
}

/* Sets the request headers of an attempt: If-Range with the partial's validator when it
 * resumes. */
static void download_headers(download_state *st) {
    curl_slist_free_all(st->headers);
    st->headers = NULL;
    if (st->offset > 0 && st->part.validator[0] && download_same_source(st)) {
        char line[PARTIAL_VALIDATOR_MAX + 16];
        snprintf(line, sizeof line, "If-Range: %s", st->part.validator);
        st->headers = curl_slist_append(NULL, line);
    }
    curl_easy_setopt(st->curl, CURLOPT_HTTPHEADER, st->headers);
}

static attempt_result download_attempt(download_state *st) {
    st->offset = st->pos;
    st->resp.range_start = st->resp.range_total = -1;
    st->checked = 0;
    st->fail = ATTEMPT_DONE;
    st->errbuf[0] = '\0';
    st->moved_pos = st->pos;
    st->moved_ms = progress_now_ms();
    st->url = st->urls[st->cur];
    if (st->seg_n > 0) return segments_attempt(st);
    curl_easy_setopt(st->curl, CURLOPT_URL, st->url);
    /* CURLOPT_RANGE rather than RESUME_FROM: a 200 answer (Range ignored, or If-Range saw a
     * changed file) is then taken as the whole file instead of failing the attempt. */
    char range[32];
    snprintf(range, sizeof range, "%lld-", (long long)st->offset);
    curl_easy_setopt(st->curl, CURLOPT_RANGE,
                     st->offset > 0 || segments_wanted(st) ? range : NULL);
    download_headers(st);
    if (st->offset > 0)
        log_info("%s: resuming at byte %lld from %s", st->spec->model_id, (long long)st->offset,
                 st->url);
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

/* 1 when an attempt that started at `t0` with the partial at `before` averaged at least the
 * minimum speed (over one second at least): progress that starts a fresh retry series. */
static int download_progressed(const download_state *st, int64_t before, int64_t t0) {
    int64_t ms = progress_now_ms() - t0;
    if (ms < 1000) ms = 1000;
    return st->pos > before && (st->pos - before) * 1000 >= (int64_t)st->min_speed * ms;
}

/* The job fails after the last retry: the message and code of the last failure. */
static download_outcome download_give_up(download_state *st, int failures) {
    char last[sizeof st->why], code[sizeof st->code];
    snprintf(last, sizeof last, "%s", st->why);
    snprintf(code, sizeof code, "%s", st->code[0] ? st->code : "network_error");
    download_fail(st, code, "%s (gave up after %d attempts)", last, failures);
    st->transient = 1;
    return DOWNLOAD_FAILED;
}

/* The outcome of a stop asked for by the hooks. */
static download_outcome download_stopped(const download_state *st) {
    return st->stop == 1   ? DOWNLOAD_CANCELLED
           : st->stop == 3 ? DOWNLOAD_PAUSED
                           : DOWNLOAD_STOPPED;
}

/* The URLs not failed for good in this download. */
static int download_live(const download_state *st) {
    int n = 0;
    for (int i = 0; i < st->n_urls; i++) n += !st->dead[i];
    return n;
}

/* Moves to the next live URL after the current one, preferring a host that is not being
 * skipped (mirror.h). 1 when the URL changed, 0 when no other is left. */
static int download_switch(download_state *st) {
    int pick = -1;
    for (int pass = 0; pass < 2 && pick < 0; pass++)
        for (int k = 1; k < st->n_urls && pick < 0; k++) {
            int i = (st->cur + k) % st->n_urls;
            if (!st->dead[i] && (pass == 1 || !mirror_host_skipped(st->urls[i]))) pick = i;
        }
    if (pick < 0) return 0;
    log_warn("%s: %s; going on with %s from byte %lld", st->spec->model_id, st->why,
             st->urls[pick], (long long)st->pos);
    st->cur = pick;
    st->url = st->urls[pick];
    return 1;
}

/* The first URL to try: the first whose host is not being skipped, else the first. */
static void download_first_url(download_state *st) {
    st->cur = 0;
    for (int i = 0; i < st->n_urls; i++)
        if (!mirror_host_skipped(st->urls[i])) {
            st->cur = i;
            break;
        }
    st->url = st->urls[st->cur];
}

/* 1 when a permanent failure belongs to the URL (an HTTP error, a network error), so that
 * a mirror may still serve the file. */
static int download_url_failure(const download_state *st) {
    return strncmp(st->code, "http_", 5) == 0 || strcmp(st->code, "network_error") == 0;
}

/* Transfers until the partial holds the whole body (DOWNLOAD_OK; the hashing thread is still
 * running), or another outcome with st->why. A failed URL hands over to the next mirror,
 * which resumes the partial; the retry budget is MG_RETRY_MAX attempts per live URL, and the
 * backoff runs once every URL failed in turn. */
static download_outcome download_transfer(download_state *st) {
    int failures = 0, rewinds = 0;
    st->transient = 0;
    for (;;) {
        int64_t before = st->pos, t0 = progress_now_ms();
        attempt_result r = download_attempt(st);
        if (r == ATTEMPT_DONE) {
            mirror_host_ok(st->url);
            return DOWNLOAD_OK;
        }
        if (r == ATTEMPT_STOP) return download_stopped(st);
        if (r == ATTEMPT_SPLIT) continue; /* the next attempt runs the segments */
        if (r == ATTEMPT_FAIL) {
            if (!download_url_failure(st)) return DOWNLOAD_FAILED;
            mirror_host_failed(st->url);
            st->dead[st->cur] = 1;
            if (!download_switch(st)) return DOWNLOAD_FAILED;
            continue;
        }
        if (r == ATTEMPT_REWIND) {
            log_info("%s: %s; starting again from byte 0", st->spec->model_id, st->why);
            if (++rewinds > DOWNLOAD_MAX_REWINDS || download_rewind(st) < 0)
                return DOWNLOAD_FAILED;
            continue;
        }
        mirror_host_failed(st->url);
        int live = download_live(st), was = st->cur;
        if (download_progressed(st, before, t0)) failures = 0; /* a fresh series */
        if (++failures >= st->retry_max * live) return download_give_up(st, failures);
        if (download_switch(st) && st->cur > was) continue; /* the next mirror, at once */
        log_warn("%s: %s; retry %d of %d", st->spec->model_id, st->why, failures,
                 st->retry_max * live - 1);
        if (download_backoff(st, (failures + live - 1) / live)) return download_stopped(st);
    }
}

/* ---- the whole download ---- */

/* Refuses URLs that are not http(s), and http without allow_http. 0, or -1 with st->why. */
static int download_check_url(download_state *st, const char *url) {
    CURLU *u = curl_url();
    char *scheme = NULL;
    int rc = 0;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        download_fail(st, "url_refused", "invalid download URL: %s", url);
        rc = -1;
    } else if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0) {
        download_fail(st, "url_refused", "download URL must be http(s): %s", url);
        rc = -1;
    } else if (strcmp(scheme, "http") == 0 && !st->spec->cfg->allow_http) {
        download_fail(st, "url_refused",
                      "plain http download refused: %s (set allow_http in config/server.json "
                      "to permit it)",
                      url);
        rc = -1;
    }
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
}

/* 1 when the last response announced the SHA-256 `hex`. */
static int download_was_announced(const download_state *st, const char *hex) {
    for (int i = 0; i < st->n_announced; i++)
        if (strcmp(st->announced[i], hex) == 0) return 1;
    return 0;
}

/* The job fails with checksum_mismatch and a diagnosis: the server announced the digest of
 * what arrived (the catalogue is stale), or not (the download is damaged). */
static download_outcome download_mismatch(download_state *st, const char *want,
                                          const char *hex) {
    if (download_was_announced(st, hex)) {
        snprintf(st->diagnosis, sizeof st->diagnosis, "catalogue_stale");
        download_fail(st, "checksum_mismatch",
                      "checksum mismatch: expected sha256:%s, got sha256:%s, which is what the "
                      "server announces for this file: it changed upstream and the gallery's "
                      "checksum is out of date",
                      want, hex);
    } else {
        snprintf(st->diagnosis, sizeof st->diagnosis, "corrupt_download");
        download_fail(st, "checksum_mismatch",
                      "checksum mismatch: expected sha256:%s, got sha256:%s; the server does "
                      "not announce that digest, so the download is damaged or not the file "
                      "the gallery names",
                      want, hex);
    }
    return DOWNLOAD_FAILED;
}

/* Downloads and verifies into the open partial. DOWNLOAD_OK when the digest matches. */
static download_outcome download_verified(download_state *st) {
    int resumed = st->pos > 0;
    for (;;) {
        if (hashpipe_start(&st->hp, st->part.fd, st->seg_n ? segments_prefix(st) : st->pos) <
            0) {
            download_fail(st, "internal_error", "cannot start hashing: %s", strerror(errno));
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
            download_fail(st, "io_error", "cannot read back %s: %s", st->part.part,
                          strerror(errno));
            return DOWNLOAD_FAILED;
        }
        const char *want = st->spec->checksum + 7;
        if (strcasecmp(hex, want) == 0) return DOWNLOAD_OK;
        if (!resumed) return download_mismatch(st, want, hex);
        /* The bytes kept from an earlier run may be bad (a crash of the machine): once, start
         * over from nothing before blaming the file. */
        log_warn("%s: the resumed download does not match its checksum; downloading it again",
                 st->spec->model_id);
        resumed = 0;
        segments_reset(st);
        if (partial_truncate(&st->part, st->why, sizeof st->why) < 0) return DOWNLOAD_FAILED;
        st->pos = 0;
        st->total = st->spec->expected_size;
    }
}

static void download_release(download_state *st) {
    hashpipe_cancel(&st->hp);
    segments_release(st);
    if (st->multi) curl_multi_cleanup(st->multi);
    if (st->curl) curl_easy_cleanup(st->curl);
    curl_slist_free_all(st->headers);
}

static void download_init(download_state *st, const download_spec *spec,
                          const download_hooks *hooks) {
    memset(st, 0, sizeof *st);
    st->spec = spec;
    st->hooks = hooks;
    st->urls = spec->n_urls > 0 ? spec->urls : &spec->url;
    st->n_urls = spec->n_urls > 0 ? spec->n_urls : 1;
    if (st->n_urls > MIRROR_URLS_MAX) st->n_urls = MIRROR_URLS_MAX;
    st->url = st->urls[0];
    st->reported = -1;
    st->part.fd = -1;
    st->total = spec->expected_size > 0 ? spec->expected_size : 0;
    st->limit = download_limit(spec->expected_size);
    st->min_speed = spec->cfg->min_download_speed > 0 ? spec->cfg->min_download_speed : 1024;
    st->rate = ratelimit_rate();
    if (st->rate > 0) { /* a download may not get more than its share: half of it is progress */
        int n = spec->cfg->max_parallel_downloads > 0 ? spec->cfg->max_parallel_downloads : 1;
        long long share = st->rate / (2LL * n);
        if (share < 1) share = 1;
        if (share < st->min_speed) st->min_speed = share;
    }
    st->retry_base_ms = download_env("MG_RETRY_BASE_MS", 500, 1, 60000);
    st->retry_max = (int)download_env("MG_RETRY_MAX", 6, 1, 100);
    st->stall_s = download_env("MG_STALL_SECONDS", 15, 1, 3600);
    partial_paths(&st->part, spec->cfg, spec->model_id, spec->ext);
}

/* Opens the partial and runs the download into it; the file is in models/llm/ when OK. */
static download_outcome download_into_partial(download_state *st) {
    for (int i = 0; i < st->n_urls; i++)
        if (download_check_url(st, st->urls[i]) < 0) return DOWNLOAD_FAILED;
    download_first_url(st);
    if (download_setup(st) < 0) {
        download_fail(st, "internal_error", "cannot start libcurl");
        return DOWNLOAD_FAILED;
    }
    if (partial_open(&st->part, st->spec->url, st->spec->checksum, st->why, sizeof st->why) <
        0) {
        snprintf(st->code, sizeof st->code, "io_error");
        return DOWNLOAD_FAILED;
    }
    st->pos = st->part.size;
    if (segments_load(st) < 0) {
        log_warn("%s: the meta's segments are not sane; downloading from the start",
                 st->spec->model_id);
        if (partial_truncate(&st->part, st->why, sizeof st->why) < 0) {
            snprintf(st->code, sizeof st->code, "io_error");
            return DOWNLOAD_FAILED;
        }
        st->pos = 0;
    }
    st->t_start = progress_now_ms();
    download_tick(st, JOB_DOWNLOADING, 1);
    download_outcome o = download_verified(st);
    hashpipe_cancel(&st->hp);
    if (o == DOWNLOAD_OK && partial_commit(&st->part, st->why, sizeof st->why) < 0) {
        snprintf(st->code, sizeof st->code, "%s",
                 strstr(st->why, "disk full") ? "disk_full" : "io_error");
        return DOWNLOAD_FAILED;
    }
    if (o == DOWNLOAD_OK)
        log_info("%s: %lld bytes verified and installed in %.2f s (transfer %.2f s, hash tail "
                 "%.2f s, fsync+rename %.2f s)",
                 st->spec->model_id, (long long)st->pos, (progress_now_ms() - st->t_start) / 1e3,
                 (st->t_transferred - st->t_start) / 1e3, (st->t_hashed - st->t_transferred) / 1e3,
                 (progress_now_ms() - st->t_hashed) / 1e3);
    return o;
}

download_outcome download_run(const download_spec *spec, const download_hooks *hooks,
                              download_result *res) {
    download_state st;
    memset(res, 0, sizeof *res);
    download_init(&st, spec, hooks);
    int64_t size = 0;
    if (partial_recover(&st.part, spec->checksum, &size)) {
        log_info("%s: models/llm holds the verified download from an earlier attempt (%lld "
                 "bytes); nothing to download",
                 spec->model_id, (long long)size);
        res->size = size;
        res->recovered = 1;
        snprintf(res->path, sizeof res->path, "%s", st.part.rel);
        return DOWNLOAD_OK;
    }
    download_outcome o = download_into_partial(&st);
    if (o == DOWNLOAD_STOPPED || o == DOWNLOAD_PAUSED || (o == DOWNLOAD_FAILED && st.transient))
        partial_close(&st.part); /* kept: a later run resumes it */
    else if (o != DOWNLOAD_OK)
        partial_discard(&st.part);
    download_release(&st);
    if (o == DOWNLOAD_OK) {
        res->size = st.pos;
        snprintf(res->path, sizeof res->path, "%s", st.part.rel);
    }
    snprintf(res->error, sizeof res->error, "%s", st.why);
    snprintf(res->code, sizeof res->code, "%s", o == DOWNLOAD_FAILED ? st.code : "");
    snprintf(res->diagnosis, sizeof res->diagnosis, "%s", o == DOWNLOAD_FAILED ? st.diagnosis : "");
    return o;
}
