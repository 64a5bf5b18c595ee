/* segments.c - a large file fetched in parallel ranged requests into the partial, the chunks
 * in flight recorded in its meta (see segments.h). */
#include "segments.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "progress.h"
#include "ratelimit.h"

#define SEGMENTS_CHUNK_MIN (1LL << 20)
#define SEGMENTS_CHUNK_MAX (16LL << 20)
#define SEGMENTS_SAVE_MS 1000

int segments_wanted(const download_state *st) {
    return st->spec->cfg->download_segments > 1 &&
           st->spec->expected_size >= st->spec->cfg->segment_min_bytes / 2;
}

static int segments_count(const download_state *st) {
    int n = st->spec->cfg->download_segments;
    return n < 1 ? 1 : n > SEGMENTS_MAX ? SEGMENTS_MAX : n;
}

int64_t segments_prefix(const download_state *st) {
    int64_t prefix = st->seg_next;
    for (int i = 0; i < st->seg_n; i++) {
        const download_seg *g = &st->segs[i];
        if (g->active && g->pos < g->end && g->pos < prefix) prefix = g->pos;
    }
    return prefix;
}

/* The meta record of the chunks still missing bytes. New reference. */
static json_t *segments_json(const download_state *st) {
    json_t *parts = json_array();
    for (int i = 0; parts && i < st->seg_n; i++) {
        const download_seg *g = &st->segs[i];
        if (g->active && g->pos < g->end)
            json_array_append_new(parts, json_pack("[I,I,I]", (json_int_t)g->start,
                                                   (json_int_t)g->end, (json_int_t)g->pos));
    }
    return json_pack("{s:I,s:I,s:I,s:o}", "total", (json_int_t)st->seg_total, "next",
                     (json_int_t)st->seg_next, "chunk", (json_int_t)st->seg_chunk, "parts",
                     parts);
}

/* Writes the chunks to the meta. 0, or -1 with st->why and st->code. */
static int segments_save(download_state *st) {
    json_t *j = segments_json(st);
    int rc = j ? partial_set_segments(&st->part, j, st->why, sizeof st->why) : -1;
    json_decref(j);
    st->seg_saved_ms = progress_now_ms();
    if (rc < 0) snprintf(st->code, sizeof st->code, "io_error");
    return rc;
}

/* Gives slot `g` the next chunk in file order. 0 when none is left (the slot rests). */
static int segments_assign(download_state *st, download_seg *g) {
    g->active = 0;
    if (st->seg_next >= st->seg_total) return 0;
    g->start = g->pos = st->seg_next;
    g->end = st->seg_total - g->start > st->seg_chunk ? g->start + st->seg_chunk : st->seg_total;
    st->seg_next = g->end;
    g->active = 1;
    return 1;
}

/* Empties every slot (keeping its transfer handle) for `n` slots. */
static void segments_slots(download_state *st, int n) {
    for (int i = 0; i < SEGMENTS_MAX; i++) {
        download_seg *g = &st->segs[i];
        g->st = st;
        g->active = g->busy = 0;
    }
    st->seg_n = n;
}

int segments_plan(download_state *st, int64_t total) {
    if (!segments_wanted(st) || total < st->spec->cfg->segment_min_bytes) return 0;
    int n = segments_count(st);
    int64_t chunk = total / ((int64_t)n * 4);
    chunk = chunk < SEGMENTS_CHUNK_MIN ? SEGMENTS_CHUNK_MIN
            : chunk > SEGMENTS_CHUNK_MAX ? SEGMENTS_CHUNK_MAX : chunk;
    segments_slots(st, n);
    st->seg_total = st->total = total;
    st->seg_next = 0;
    st->seg_chunk = chunk;
    if (segments_save(st) < 0) return -1;
    log_info("%s: %lld bytes in %d parallel segments (chunks of %lld bytes)",
             st->spec->model_id, (long long)total, n, (long long)chunk);
    return 1;
}

/* Reads one [start, end, pos] of the meta into slot `g`. 0, or -1 when it is not sane. */
static int segments_load_part(download_state *st, json_t *part, download_seg *g) {
    json_int_t s = json_integer_value(json_array_get(part, 0));
    json_int_t e = json_integer_value(json_array_get(part, 1));
    json_int_t p = json_integer_value(json_array_get(part, 2));
    if (json_array_size(part) != 3 || s < 0 || s > p || p > e || e > st->seg_next) return -1;
    g->start = s;
    g->end = e;
    g->pos = p;
    g->active = p < e;
    return 0;
}

int segments_load(download_state *st) {
    json_t *j = st->part.segments, *parts = json_object_get(j, "parts"), *part;
    size_t i;
    if (!json_is_object(j)) return 0;
    st->seg_total = json_integer_value(json_object_get(j, "total"));
    st->seg_next = json_integer_value(json_object_get(j, "next"));
    st->seg_chunk = json_integer_value(json_object_get(j, "chunk"));
    int n = segments_count(st);
    if ((int)json_array_size(parts) > n) n = (int)json_array_size(parts);
    if (st->seg_total <= 0 || st->seg_next < 0 || st->seg_next > st->seg_total ||
        st->seg_chunk <= 0 || !json_is_array(parts) || n > SEGMENTS_MAX ||
        st->seg_total > st->limit)
        return segments_reset(st), -1;
    segments_slots(st, n);
    int64_t missing = 0;
    json_array_foreach(parts, i, part) {
        if (segments_load_part(st, part, &st->segs[i]) < 0) return segments_reset(st), -1;
        missing += st->segs[i].end - st->segs[i].pos;
    }
    st->pos = st->seg_next - missing;
    st->total = st->seg_total;
    if (st->pos < 0) return segments_reset(st), -1;
    log_info("%s: resuming %d segments, %lld of %lld bytes there", st->spec->model_id, n,
             (long long)st->pos, (long long)st->seg_total);
    return 1;
}

void segments_reset(download_state *st) {
    segments_slots(st, 0);
    st->seg_total = st->seg_next = st->seg_chunk = 0;
}

void segments_release(download_state *st) {
    for (int i = 0; i < SEGMENTS_MAX; i++) {
        download_seg *g = &st->segs[i];
        if (g->h && g->busy) curl_multi_remove_handle(st->multi, g->h);
        if (g->h) curl_easy_cleanup(g->h);
        curl_slist_free_all(g->headers);
        g->h = NULL;
        g->headers = NULL;
        g->busy = 0;
    }
}

/* ---- one slot's transfer ---- */

static size_t segments_on_header(char *line, size_t size, size_t n, void *ud) {
    download_seg *g = ud;
    size_t len = size * n;
    header_field f;
    if (header_is_status(line, len)) {
        download_resp_reset(&g->resp);
        return len;
    }
    if (header_split(line, len, &f) != 0) return len;
    download_announced(g->st, &f);
    download_resp_field(&g->resp, &f);
    return len;
}

/* Fails the attempt: the download starts over (the file changed or the server is wrong). */
static int segments_rewind(download_seg *g, const char *what) {
    download_state *st = g->st;
    download_fail(st, "bad_response", "%s (range %lld-%lld from %s)", what, (long long)g->pos,
                  (long long)g->end - 1, st->url);
    st->fail = ATTEMPT_REWIND;
    return -1;
}

/* Checks a slot's response before its first body byte is stored. 0, or -1 with st->fail. */
static int segments_check(download_seg *g) {
    download_state *st = g->st;
    long code = 0;
    g->checked = 1;
    curl_easy_getinfo(g->h, CURLINFO_RESPONSE_CODE, &code);
    if (code < 200 || code >= 300) return st->fail = ATTEMPT_HTTP, -1;
    if (code != 206)
        return segments_rewind(g, "the server sent the whole file to a ranged request: it "
                                  "changed upstream");
    if (g->resp.range_start != g->pos || g->resp.range_total != st->seg_total)
        return segments_rewind(g, "the server sent another range or file size");
    const char *v = download_resp_validator(&g->resp);
    if (download_same_source(st) && st->part.validator[0] && v[0] &&
        strcmp(v, st->part.validator) != 0)
        return segments_rewind(g, "the file changed upstream (another validator)");
    if (!download_same_source(st) &&
        partial_set_validator(&st->part, v, st->url, st->why, sizeof st->why) < 0) {
        snprintf(st->code, sizeof st->code, "io_error");
        return st->fail = ATTEMPT_FAIL, -1;
    }
    if (st->reported != st->cur && st->hooks->source) st->hooks->source(st->hooks->ud, st->url);
    st->reported = st->cur;
    return 0;
}

static size_t segments_on_body(char *data, size_t size, size_t n, void *ud) {
    download_seg *g = ud;
    download_state *st = g->st;
    size_t len = size * n;
    if (!g->checked && segments_check(g) < 0) return 0;
    if (st->rate > 0 && ratelimit_take(len, download_rate_wait, st)) return 0;
    if (g->pos + (int64_t)len > g->end) {
        segments_rewind(g, "the server sent more bytes than the range asked for");
        return 0;
    }
    if (download_store_at(st, data, len, g->pos) < 0) return 0;
    g->pos += (int64_t)len;
    st->pos += (int64_t)len;
    metrics_add("mg_download_bytes_total", (uint64_t)len);
    hashpipe_feed(&st->hp, segments_prefix(st));
    return len;
}

/* Starts the request of slot `g` for the rest of its chunk. 0, or -1. */
static int segments_start(download_state *st, download_seg *g) {
    if (!g->h) {
        if (!(g->h = curl_easy_init())) return -1;
        download_handle_setup(st, g->h);
        curl_easy_setopt(g->h, CURLOPT_ERRORBUFFER, g->errbuf);
        curl_easy_setopt(g->h, CURLOPT_HEADERFUNCTION, segments_on_header);
        curl_easy_setopt(g->h, CURLOPT_HEADERDATA, g);
        curl_easy_setopt(g->h, CURLOPT_WRITEFUNCTION, segments_on_body);
        curl_easy_setopt(g->h, CURLOPT_WRITEDATA, g);
    }
    char range[48];
    snprintf(range, sizeof range, "%lld-%lld", (long long)g->pos, (long long)g->end - 1);
    curl_easy_setopt(g->h, CURLOPT_URL, st->url);
    curl_easy_setopt(g->h, CURLOPT_RANGE, range);
    curl_slist_free_all(g->headers);
    g->headers = NULL;
    if (st->part.validator[0] && download_same_source(st)) {
        char line[PARTIAL_VALIDATOR_MAX + 16];
        snprintf(line, sizeof line, "If-Range: %s", st->part.validator);
        g->headers = curl_slist_append(NULL, line);
    }
    curl_easy_setopt(g->h, CURLOPT_HTTPHEADER, g->headers);
    g->checked = 0;
    g->resp.range_start = g->resp.range_total = -1;
    g->errbuf[0] = '\0';
    if (curl_multi_add_handle(st->multi, g->h) != CURLM_OK) return -1;
    g->busy = 1;
    return 0;
}

/* Classifies the end of slot `g`'s request. ATTEMPT_DONE when its chunk is whole. */
static attempt_result segments_finished(download_state *st, download_seg *g, CURLcode rc) {
    long code = 0;
    if (st->stop) return ATTEMPT_STOP;
    if (st->fail == ATTEMPT_FAIL || st->fail == ATTEMPT_REWIND || st->fail == ATTEMPT_RETRY)
        return st->fail;
    curl_easy_getinfo(g->h, CURLINFO_RESPONSE_CODE, &code);
    if (rc != CURLE_OK && st->fail != ATTEMPT_HTTP) {
        memcpy(st->errbuf, g->errbuf, sizeof st->errbuf);
        return download_curl_error(st, rc);
    }
    if (code == 206 && g->pos == g->end) return ATTEMPT_DONE;
    if (code == 206) {
        download_fail(st, "network_error", "download failed: a range ended early at byte %lld "
                      "(%s)", (long long)g->pos, st->url);
        return ATTEMPT_RETRY;
    }
    if (code >= 200 && code < 300) {
        segments_rewind(g, "the server answered a ranged request without a range");
        return ATTEMPT_REWIND;
    }
    char http[32];
    snprintf(http, sizeof http, "http_%ld", code);
    download_fail(st, http, "download failed: HTTP %ld from %s", code, st->url);
    if (code == 416) return ATTEMPT_REWIND;
    return (code >= 500 || code == 408 || code == 429) ? ATTEMPT_RETRY : ATTEMPT_FAIL;
}

/* The slot of transfer `h`. */
static download_seg *segments_of(download_state *st, CURL *h) {
    for (int i = 0; i < st->seg_n; i++)
        if (st->segs[i].h == h) return &st->segs[i];
    return NULL;
}

/* Reads the ended transfers: a whole chunk takes the next one. ATTEMPT_DONE to go on. */
static attempt_result segments_collect(download_state *st) {
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(st->multi, &left)) != NULL) {
        download_seg *g = msg->msg == CURLMSG_DONE ? segments_of(st, msg->easy_handle) : NULL;
        if (!g) continue;
        CURLcode rc = msg->data.result;
        curl_multi_remove_handle(st->multi, g->h);
        g->busy = 0;
        attempt_result r = segments_finished(st, g, rc);
        if (r != ATTEMPT_DONE) return r;
        if (segments_assign(st, g) && segments_start(st, g) < 0) {
            download_fail(st, "internal_error", "cannot start a transfer");
            return ATTEMPT_FAIL;
        }
    }
    return ATTEMPT_DONE;
}

static int segments_busy(const download_state *st) {
    for (int i = 0; i < st->seg_n; i++)
        if (st->segs[i].busy) return 1;
    return 0;
}

/* Starts every slot on its chunk (or the next one). ATTEMPT_DONE, or ATTEMPT_FAIL. */
static attempt_result segments_start_all(download_state *st) {
    for (int i = 0; i < st->seg_n; i++) {
        download_seg *g = &st->segs[i];
        if (!g->active && !segments_assign(st, g)) continue;
        if (segments_start(st, g) < 0) {
            download_fail(st, "internal_error", "cannot start a transfer");
            return ATTEMPT_FAIL;
        }
    }
    return ATTEMPT_DONE;
}

attempt_result segments_attempt(download_state *st) {
    st->fail = ATTEMPT_DONE;
    st->errbuf[0] = '\0';
    st->moved_pos = st->pos;
    st->moved_ms = progress_now_ms();
    attempt_result res = segments_start_all(st);
    while (res == ATTEMPT_DONE && segments_busy(st)) {
        int running;
        if (curl_multi_perform(st->multi, &running) != CURLM_OK) {
            download_fail(st, "internal_error", "libcurl failed");
            res = ATTEMPT_FAIL;
        } else if ((res = segments_collect(st)) != ATTEMPT_DONE || !segments_busy(st)) {
            break;
        } else if (download_tick(st, JOB_DOWNLOADING, 0)) {
            res = ATTEMPT_STOP;
        } else if (download_stalled(st)) {
            res = ATTEMPT_RETRY;
        } else if (progress_now_ms() - st->seg_saved_ms >= SEGMENTS_SAVE_MS &&
                   segments_save(st) < 0) {
            res = ATTEMPT_FAIL;
        } else {
            curl_multi_poll(st->multi, NULL, 0, 100, NULL);
        }
    }
    for (int i = 0; i < st->seg_n; i++)
        if (st->segs[i].busy) {
            curl_multi_remove_handle(st->multi, st->segs[i].h);
            st->segs[i].busy = 0;
        }
    if (res != ATTEMPT_REWIND && segments_save(st) < 0 && res == ATTEMPT_DONE)
        res = ATTEMPT_FAIL;
    if (res == ATTEMPT_DONE) hashpipe_feed(&st->hp, st->seg_total);
    return res;
}
