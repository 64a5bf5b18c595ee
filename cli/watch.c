/* watch.c - following a job until it ends: the progress stream (EventSource over libcurl:
 * "data: {message}" lines) for live progress, and the job itself (GET) whenever the stream
 * has been quiet for a while or cannot be read, so a missed message never leaves mgctl
 * waiting. Only the job itself ends the wait: a final message on the stream (which replays
 * older messages first, say the "paused" before a resume) makes mgctl read the job at once.
 * Progress is drawn on stderr: a bar that redraws itself on a terminal, or plain
 * lines (at most one a second, and one at each change of status). */
#include <curl/curl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mgctl.h"

#define CTL_POLL_MS 250       /* the loop's step */
#define CTL_QUIET_MS 1500     /* read the job when no message came for this long */
#define CTL_LINE_MS 1000      /* plain lines at most this often */
#define CTL_BAR_WIDTH 24
#define CTL_UNREACHABLE_POLLS 20 /* polls without an answer before giving up */

typedef struct ctl_watch_state {
    const ctl *c;
    const char *job_id;
    ctl_progress mode;       /* bar, plain or none */
    char line[4096];         /* the stream's current line */
    size_t line_len;
    json_t *last;            /* the newest state of the job (a message or the job), owned */
    int64_t last_msg_ms, last_poll_ms, last_line_ms;
    char last_status[32];
    int drawn;               /* a bar is on the screen */
    int unreachable;         /* polls in a row that got no answer */
    int done;                /* the job itself says it ended or paused */
    int check;               /* a message said so: read the job now */
} ctl_watch_state;

static int64_t ctl_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int ctl_finished(const char *status) {
    return strcmp(status, "installed") == 0 || strcmp(status, "failed") == 0 ||
           strcmp(status, "cancelled") == 0 || strcmp(status, "paused") == 0;
}

/* "downloading  42.5%  123.4 MB / 290.0 MB  12.3 MB/s  0:12 left" into out. */
static void ctl_describe(json_t *m, char *out, size_t n) {
    char done[32], total[32], speed[32], eta[32];
    double pct = json_number_value(json_object_get(m, "progress"));
    json_t *bps = json_object_get(m, "bytes_per_second"), *left = json_object_get(m, "eta_s");
    int k = snprintf(out, n, "%-11s %5.1f%%  %s / %s", ctl_str(m, "status", "?"), pct,
                     ctl_bytes((double)json_integer_value(json_object_get(m, "downloaded")), done,
                               sizeof done),
                     ctl_bytes((double)json_integer_value(json_object_get(m, "total")), total,
                               sizeof total));
    if (k < 0 || (size_t)k >= n) return;
    if (json_is_number(bps) && json_number_value(bps) > 0)
        k += snprintf(out + k, n - (size_t)k, "  %s/s",
                      ctl_bytes(json_number_value(bps), speed, sizeof speed));
    if ((size_t)k < n && json_is_integer(left) &&
        strcmp(ctl_str(m, "status", ""), "downloading") == 0)
        snprintf(out + k, n - (size_t)k, "  %s left",
                 ctl_duration(json_integer_value(left), eta, sizeof eta));
}

/* Draws the state `m` (borrowed) as the mode says. */
static void ctl_draw(ctl_watch_state *w, json_t *m) {
    char text[256], bar[CTL_BAR_WIDTH + 1];
    const char *status = ctl_str(m, "status", "?");
    int changed = strcmp(status, w->last_status) != 0;
    int64_t now = ctl_now_ms();
    snprintf(w->last_status, sizeof w->last_status, "%s", status);
    if (w->mode == CTL_PROGRESS_NONE) return;
    ctl_describe(m, text, sizeof text);
    if (w->mode == CTL_PROGRESS_PLAIN) {
        if (!changed && now - w->last_line_ms < CTL_LINE_MS) return;
        w->last_line_ms = now;
        fprintf(stderr, "%s\n", text);
        return;
    }
    double pct = json_number_value(json_object_get(m, "progress"));
    int fill = (int)(pct / 100.0 * CTL_BAR_WIDTH + 0.5);
    for (int i = 0; i < CTL_BAR_WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[CTL_BAR_WIDTH] = '\0';
    fprintf(stderr, "\r[%s] %s\033[K", bar, text);
    w->drawn = 1;
}

/* Takes `m` (a progress message or the job; stolen) as the newest state. */
static void ctl_take(ctl_watch_state *w, json_t *m) {
    json_decref(w->last);
    w->last = m;
    ctl_draw(w, m);
}

/* One line of the event stream. */
static void ctl_stream_line(ctl_watch_state *w, const char *line) {
    if (strncmp(line, "data:", 5) != 0) return;
    json_t *m = json_loads(line + 5 + (line[5] == ' '), 0, NULL);
    if (!w->c->json) ctl_printable(m);
    if (json_is_object(m) && strcmp(ctl_str(m, "job_id", ""), w->job_id) == 0) {
        w->last_msg_ms = ctl_now_ms();
        w->check |= ctl_finished(ctl_str(m, "status", ""));
        ctl_take(w, m);
    } else {
        json_decref(m);
    }
}

static size_t ctl_stream_body(char *p, size_t size, size_t n, void *ud) {
    ctl_watch_state *w = ud;
    size_t k = size * n;
    for (size_t i = 0; i < k; i++) {
        if (p[i] == '\n') {
            w->line[w->line_len] = '\0';
            if (w->line_len && w->line[w->line_len - 1] == '\r') w->line[w->line_len - 1] = '\0';
            ctl_stream_line(w, w->line);
            w->line_len = 0;
        } else if (w->line_len + 1 < sizeof w->line) {
            w->line[w->line_len++] = p[i];
        }
    }
    return k;
}

/* The stream's handle, or NULL. `hdrs` freed by the caller. */
static CURL *ctl_stream_open(ctl_watch_state *w, struct curl_slist **hdrs) {
    char url[4096], auth[512];
    CURL *h = curl_easy_init();
    if (!h) return NULL;
    snprintf(url, sizeof url, "%s/api/models/ws/progress", w->c->url);
    *hdrs = curl_slist_append(NULL, "Accept: text/event-stream");
    if (w->c->token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", w->c->token);
        *hdrs = curl_slist_append(*hdrs, auth);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, ctl_stream_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "mgctl/1.0");
    return h;
}

/* Reads the job itself; 0, or the exit code of a request that failed for good (a server
 * that does not answer is given about 30 s: it may be restarting). */
static int ctl_poll(ctl_watch_state *w) {
    char path[128];
    ctl_answer a;
    w->last_poll_ms = ctl_now_ms();
    snprintf(path, sizeof path, "/api/models/jobs/%s", w->job_id);
    int quiet = w->unreachable < CTL_UNREACHABLE_POLLS;
    int rc = quiet ? ctl_request_quiet(w->c, "GET", path, &a)
                   : ctl_request(w->c, "GET", path, &a);
    w->unreachable = rc == CTL_UNREACHABLE ? w->unreachable + 1 : 0;
    if (rc == CTL_OK) {
        w->done = ctl_finished(ctl_str(a.body, "status", ""));
        ctl_take(w, json_incref(a.body));
    }
    w->check = 0;
    ctl_answer_free(&a);
    if (rc == CTL_OK || (rc == CTL_UNREACHABLE && quiet)) return 0;
    if (quiet) { /* say why */
        ctl_request(w->c, "GET", path, &a);
        ctl_answer_free(&a);
    }
    return rc;
}

/* Runs the stream and the polls until the job ends. 0, or an exit code. */
static int ctl_watch_loop(ctl_watch_state *w) {
    struct curl_slist *hdrs = NULL;
    CURL *h = ctl_stream_open(w, &hdrs);
    CURLM *m = curl_multi_init();
    int running = 1, rc = 0;
    if (h && m) curl_multi_add_handle(m, h);
    rc = ctl_poll(w);
    while (!rc && !w->done) {
        if (h && m && running) {
            curl_multi_perform(m, &running);
            curl_multi_poll(m, NULL, 0, CTL_POLL_MS, NULL);
        } else {
            usleep(CTL_POLL_MS * 1000);
        }
        int64_t now = ctl_now_ms();
        if (w->check ||
            (now - w->last_msg_ms >= CTL_QUIET_MS && now - w->last_poll_ms >= CTL_QUIET_MS))
            rc = ctl_poll(w);
    }
    if (h && m) curl_multi_remove_handle(m, h);
    curl_multi_cleanup(m);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    return rc;
}

/* What the end of the job means, printed; the exit code. */
static int ctl_outcome(ctl_watch_state *w) {
    json_t *j = w->last;
    const char *status = ctl_str(j, "status", "?"), *model = ctl_str(j, "model_id", "?");
    if (w->drawn) fputc('\n', stderr);
    if (strcmp(status, "installed") == 0) return CTL_OK;
    if (strcmp(status, "failed") == 0) {
        const char *diag = ctl_str(j, "diagnosis", NULL);
        fprintf(stderr, "mgctl: %s failed: %s (%s%s%s)\n", model, ctl_str(j, "error", "no reason"),
                ctl_str(j, "error_code", "unknown"), diag ? ", diagnosis " : "", diag ? diag : "");
        return CTL_JOB_FAILED;
    }
    if (strcmp(status, "paused") == 0)
        fprintf(stderr, "mgctl: %s is paused (mgctl resume %s continues it)\n", model, w->job_id);
    else
        fprintf(stderr, "mgctl: %s was cancelled\n", model);
    return CTL_JOB_STOPPED;
}

int ctl_watch(const ctl *c, const char *job_id) {
    ctl_watch_state w;
    memset(&w, 0, sizeof w);
    w.c = c;
    w.job_id = job_id;
    w.mode = c->progress == CTL_PROGRESS_AUTO ? (isatty(STDERR_FILENO) ? CTL_PROGRESS_BAR
                                                                       : CTL_PROGRESS_PLAIN)
                                              : c->progress;
    int rc = ctl_watch_loop(&w);
    if (!rc) rc = ctl_outcome(&w);
    if (c->json && w.last) {
        char path[128];
        ctl_answer a;
        snprintf(path, sizeof path, "/api/models/jobs/%s", job_id);
        if (ctl_request(c, "GET", path, &a) == CTL_OK) ctl_print_json(a.body);
        ctl_answer_free(&a);
    }
    json_decref(w.last);
    return rc;
}
