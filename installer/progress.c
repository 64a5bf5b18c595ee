/* progress.c - progress messages, their rate, the snapshot of active jobs, and the thread
 * that publishes them to nchan, republishes the snapshot when nchan lost its buffer, and
 * publishes each active job's state again before it leaves nchan's buffer (see progress.h). */
#include "progress.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"

#define PROGRESS_URL "http://localhost/pub/progress"
#define PROGRESS_URL_ALT "http://localhost/pub/progress/alt" /* buffer 65: Redis mode */
#define PROGRESS_QUEUE_MAX 4096
#define PROGRESS_LOG_EVERY_MS 30000
#define PROGRESS_WINDOW_MS 2000
#define PROGRESS_CHECK_MS 500       /* channel check while jobs are active and all is quiet */
#define PROGRESS_BUFFER 64          /* nchan_message_buffer_length of the publisher */
#define PROGRESS_BUFFER_MS 3595000  /* a little under its nchan_message_timeout (1 h) */
#define PROGRESS_ANSWER_MAX 512
#define PROGRESS_REFRESH_MS 800     /* each downloading job's state at least this often (in
                                       Redis mode every active job's) */
#define PROGRESS_REFRESH_LEFT 8     /* one node: again when this few later messages would
                                       push it out of the buffer */

int64_t progress_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- messages and the meter ---- */

static json_t *progress_eta(const progress_state *ps) {
    if (strcmp(ps->status, "installed") == 0) return json_integer(0);
    if (strcmp(ps->status, "downloading") != 0 || ps->bytes_per_second <= 0 ||
        ps->total <= ps->downloaded)
        return json_null();
    int64_t left = ps->total - ps->downloaded;
    return json_integer((left + ps->bytes_per_second - 1) / ps->bytes_per_second);
}

json_t *progress_message(const progress_state *ps) {
    double progress = ps->progress;
    if (progress < 0) progress = 0;
    if (progress > 100) progress = 100;
    progress = (double)(int64_t)(progress * 10 + 0.5) / 10; /* one decimal */
    return json_pack("{s:s,s:s,s:s,s:s,s:f,s:I,s:I,s:I,s:o,s:s?,s:s?,s:s?}", "model_id",
                     ps->model_id, "job_id", ps->job_id, "kind", ps->kind ? ps->kind : "install",
                     "status", ps->status, "progress", progress, "downloaded",
                     (json_int_t)ps->downloaded, "total", (json_int_t)ps->total,
                     "bytes_per_second", (json_int_t)ps->bytes_per_second, "eta_s",
                     progress_eta(ps), "error", ps->error, "error_code", ps->error_code,
                     "source_url", ps->source_url);
}

json_t *progress_message_of(json_t *pub) {
    progress_state ps = {
        .model_id = json_string_value(json_object_get(pub, "model_id")),
        .job_id = json_string_value(json_object_get(pub, "job_id")),
        .kind = json_string_value(json_object_get(pub, "kind")),
        .status = json_string_value(json_object_get(pub, "status")),
        .progress = json_number_value(json_object_get(pub, "progress")),
        .downloaded = json_integer_value(json_object_get(pub, "downloaded")),
        .total = json_integer_value(json_object_get(pub, "total")),
        .error = json_string_value(json_object_get(pub, "error")),
        .error_code = json_string_value(json_object_get(pub, "error_code")),
        .source_url = json_string_value(json_object_get(pub, "source_url"))};
    if (!ps.model_id || !ps.job_id || !ps.status) return NULL;
    return progress_message(&ps);
}

void progress_meter_init(progress_meter *m) { memset(m, 0, sizeof *m); }

int progress_meter_due(const progress_meter *m, int64_t now, int64_t downloaded) {
    if (!m->last_ms) return 1;
    int64_t since = now - m->last_ms;
    return since >= PROGRESS_MAX_MS || (since >= PROGRESS_MIN_MS && downloaded != m->last_bytes);
}

int64_t progress_meter_mark(progress_meter *m, int64_t now, int64_t downloaded) {
    m->last_ms = now;
    m->last_bytes = downloaded;
    int slot = (m->head + m->count) % PROGRESS_SAMPLES;
    if (m->count == PROGRESS_SAMPLES) {
        m->head = (m->head + 1) % PROGRESS_SAMPLES;
        m->count--;
    }
    m->t[slot] = now;
    m->b[slot] = downloaded;
    m->count++;
    /* Drop samples older than the window (keep at least the newest two). */
    while (m->count > 2 && now - m->t[m->head] > PROGRESS_WINDOW_MS) {
        m->head = (m->head + 1) % PROGRESS_SAMPLES;
        m->count--;
    }
    int64_t dt = now - m->t[m->head], db = downloaded - m->b[m->head];
    if (dt <= 0 || db <= 0) return 0;
    return db * 1000 / dt;
}

/* ---- the queue and the snapshot ---- */

typedef struct progress_item {
    char job_id[32];
    char status[16];
    char *text; /* owned JSON text */
    /* snapshot entries: when its latest message went out, and how many messages this
     * installer had published by then */
    int64_t sent_ms;
    uint64_t sent_seq;
} progress_item;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int running, stopping;
    int64_t deadline; /* when stopping: deliver until then */
    progress_item *items;
    size_t head, count, cap;
    progress_item *snap; /* the latest message of each active job, and its status */
    size_t snap_n, snap_cap;
    char *socket_path;
    char node[CONFIG_NODE_MAX + 1]; /* stamped on every message as "node" */
    int redis;        /* nchan keeps the channel in Redis: other nodes publish into it too */
    uint64_t seq;     /* messages delivered so far */
    /* Publisher thread only: delivery errors (rate-limited logging), and the times of the
     * last deliveries, which nchan's buffer should still hold. */
    int64_t last_log_ms, last_contact_ms;
    long failures;
    int failing, lost, alt;
    int64_t posted[PROGRESS_BUFFER];
    size_t posted_head, posted_n;
} progress_q = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static int progress_terminal(const char *status) {
    return strcmp(status, "installed") == 0 || strcmp(status, "failed") == 0 ||
           strcmp(status, "cancelled") == 0;
}

static progress_item *progress_at(size_t i) {
    return &progress_q.items[(progress_q.head + i) % progress_q.cap];
}

/* The snapshot entry of `job_id`, or NULL. The caller holds the lock. */
static progress_item *progress_snap_find(const char *job_id) {
    for (size_t i = 0; i < progress_q.snap_n; i++)
        if (strcmp(progress_q.snap[i].job_id, job_id) == 0) return &progress_q.snap[i];
    return NULL;
}

/* Keeps `text` (copied) as the latest state of `job_id`, or forgets the job when `status`
 * is terminal. The caller holds the lock. */
static void progress_snap_set(const char *job_id, const char *status, const char *text) {
    progress_item *it = progress_snap_find(job_id);
    if (progress_terminal(status)) {
        if (!it) return;
        free(it->text);
        *it = progress_q.snap[--progress_q.snap_n];
        return;
    }
    char *copy = strdup(text);
    if (!copy) return;
    if (!it && progress_q.snap_n == progress_q.snap_cap) {
        size_t cap = progress_q.snap_cap ? progress_q.snap_cap * 2 : 16;
        progress_item *p = cap <= PROGRESS_QUEUE_MAX
                               ? realloc(progress_q.snap, cap * sizeof *p)
                               : NULL;
        if (!p) {
            free(copy);
            return;
        }
        progress_q.snap = p;
        progress_q.snap_cap = cap;
    }
    if (!it) {
        it = &progress_q.snap[progress_q.snap_n++];
        snprintf(it->job_id, sizeof it->job_id, "%s", job_id);
    } else {
        free(it->text);
    }
    snprintf(it->status, sizeof it->status, "%s", status);
    it->text = copy;
    it->sent_ms = progress_now_ms(); /* queued now: goes out shortly */
    it->sent_seq = progress_q.seq;
}

/* Replaces the text of a queued message of the same job and status; 1 when done. The caller
 * holds the lock. */
static int progress_coalesce(const char *job_id, const char *status, char *text) {
    for (size_t i = progress_q.count; i-- > 0;) {
        progress_item *it = progress_at(i);
        if (strcmp(it->job_id, job_id) != 0) continue;
        if (strcmp(it->status, status) != 0 || progress_terminal(status)) return 0;
        free(it->text);
        it->text = text;
        return 1;
    }
    return 0;
}

/* Queues `text` (owned) of `job_id` with `status`. The caller holds the lock. */
static void progress_enqueue(const char *job_id, const char *status, char *text) {
    if (progress_coalesce(job_id, status, text)) return;
    if (progress_q.count == progress_q.cap) { /* full: drop the oldest */
        free(progress_at(0)->text);
        progress_q.head = (progress_q.head + 1) % progress_q.cap;
        progress_q.count--;
    }
    progress_item *it = progress_at(progress_q.count++);
    snprintf(it->job_id, sizeof it->job_id, "%s", job_id);
    snprintf(it->status, sizeof it->status, "%s", status);
    it->text = text;
    pthread_cond_signal(&progress_q.cv);
}

/* 1 when the snapshot holds a message of `job_id` with `status`. The caller holds the lock. */
static int progress_snap_same(const char *job_id, const char *status) {
    progress_item *it = progress_snap_find(job_id);
    return it && strcmp(it->status, status) == 0;
}

/* Queues `msg` (stolen) with this node's name; with `only_new`, only when the snapshot lacks
 * its job or holds it with another status. */
static void progress_submit(json_t *msg, int only_new) {
    const char *job_id = json_string_value(json_object_get(msg, "job_id"));
    const char *status = json_string_value(json_object_get(msg, "status"));
    char node[CONFIG_NODE_MAX + 1];
    pthread_mutex_lock(&progress_q.mu);
    memcpy(node, progress_q.node, sizeof node);
    pthread_mutex_unlock(&progress_q.mu);
    json_object_set_new(msg, "node", json_string(node));
    char *text = json_dumps(msg, JSON_COMPACT);
    pthread_mutex_lock(&progress_q.mu);
    if (!job_id || !status || !text || !progress_q.running || progress_q.stopping ||
        (only_new && progress_snap_same(job_id, status))) {
        free(text);
    } else {
        progress_snap_set(job_id, status, text);
        progress_enqueue(job_id, status, text);
    }
    pthread_mutex_unlock(&progress_q.mu);
    json_decref(msg);
}

void progress_send(json_t *msg) { progress_submit(msg, 0); }

void progress_ensure(json_t *msg) { progress_submit(msg, 1); }

int progress_has(const char *job_id) {
    pthread_mutex_lock(&progress_q.mu);
    int has = progress_snap_find(job_id) != NULL;
    pthread_mutex_unlock(&progress_q.mu);
    return has;
}

/* Queues a copy of the snapshot entry `it` again. The caller holds the lock. */
static void progress_requeue(const progress_item *it) {
    char *text = strdup(it->text);
    if (text) progress_enqueue(it->job_id, it->status, text);
}

/* Queues the snapshot again. Returns how many messages. */
static size_t progress_republish(void) {
    pthread_mutex_lock(&progress_q.mu);
    size_t n = progress_q.snap_n;
    for (size_t i = 0; i < n; i++) progress_requeue(&progress_q.snap[i]);
    pthread_mutex_unlock(&progress_q.mu);
    return n;
}

/* 1 when the snapshot entry `it` goes out again by time: every entry in Redis mode, a
 * downloading job's always (a download waiting to retry says nothing by itself; clients take
 * a silent download for lost progress). */
static int progress_refresh_timed(const progress_item *it) {
    return progress_q.redis || strcmp(it->status, "downloading") == 0;
}

/* 1 when the snapshot entry `it` is due to go out again at `now`. In Redis mode other nodes
 * publish into the channel as well, so time decides: every PROGRESS_REFRESH_MS. Alone, this
 * installer counts: before PROGRESS_BUFFER later messages have pushed it out of nchan's
 * buffer, but not more often than by time either (more active jobs than the buffer holds
 * would push each other out forever). The caller holds the lock. */
static int progress_refresh_due(const progress_item *it, int64_t now) {
    if (now - it->sent_ms < PROGRESS_REFRESH_MS) return 0;
    return progress_refresh_timed(it) ||
           progress_q.seq - it->sent_seq >= PROGRESS_BUFFER - PROGRESS_REFRESH_LEFT;
}

/* Queues again the snapshot entries that are due. Returns how many. The caller holds the
 * lock. */
static size_t progress_refresh(int64_t now) {
    size_t n = 0;
    for (size_t i = 0; i < progress_q.snap_n; i++) {
        progress_item *it = &progress_q.snap[i];
        if (!progress_refresh_due(it, now)) continue;
        progress_requeue(it);
        n++;
        it->sent_ms = now;
        it->sent_seq = progress_q.seq;
    }
    return n;
}

/* When the next snapshot entry is due by time; INT64_MAX when none is. The caller holds the
 * lock. */
static int64_t progress_refresh_next(void) {
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < progress_q.snap_n; i++)
        if (progress_refresh_timed(&progress_q.snap[i]) &&
            progress_q.snap[i].sent_ms + PROGRESS_REFRESH_MS < next)
            next = progress_q.snap[i].sent_ms + PROGRESS_REFRESH_MS;
    return next;
}

/* A message of `job_id` was delivered: counts it, notes it in the job's snapshot entry, and
 * queues again the entries that would otherwise leave nchan's buffer. */
static void progress_sent(const char *job_id) {
    pthread_mutex_lock(&progress_q.mu);
    progress_q.seq++;
    progress_item *it = progress_snap_find(job_id);
    if (it) {
        it->sent_ms = progress_now_ms();
        it->sent_seq = progress_q.seq;
    }
    progress_refresh(progress_now_ms());
    pthread_mutex_unlock(&progress_q.mu);
}

/* ---- the publisher thread ---- */

typedef struct progress_answer {
    char data[PROGRESS_ANSWER_MAX];
    size_t len;
} progress_answer;

static size_t progress_collect(char *data, size_t size, size_t n, void *ud) {
    progress_answer *a = ud;
    size_t len = size * n, room = sizeof a->data - 1 - a->len;
    size_t k = len < room ? len : room;
    memcpy(a->data + a->len, data, k);
    a->len += k;
    a->data[a->len] = '\0';
    return len;
}

static CURL *progress_handle(struct curl_slist *headers) {
    CURL *c = curl_easy_init();
    if (!c) return NULL;
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, progress_q.socket_path);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, progress_collect);
    return c;
}

/* Logs a delivery failure at most every 30 s, and the recovery once. */
static void progress_note(int ok, const char *why) {
    int64_t now = progress_now_ms();
    if (ok) {
        if (progress_q.failing)
            log_info("progress: publishing to nchan works again (%ld messages lost)",
                     progress_q.failures);
        progress_q.failing = 0;
        progress_q.failures = 0;
        return;
    }
    progress_q.failures++;
    progress_q.lost = 1;
    if (!progress_q.failing || now - progress_q.last_log_ms >= PROGRESS_LOG_EVERY_MS) {
        log_warn("progress: cannot publish to nchan at %s: %s (%ld messages lost so far)",
                 progress_q.socket_path, why, progress_q.failures);
        progress_q.last_log_ms = now;
    }
    progress_q.failing = 1;
}

/* How many of the messages delivered into the channel it should still buffer. */
static size_t progress_expected(void) {
    int64_t now = progress_now_ms();
    size_t n = 0;
    for (size_t i = 0; i < progress_q.posted_n; i++)
        n += now - progress_q.posted[(progress_q.posted_head + i) % PROGRESS_BUFFER] <
             PROGRESS_BUFFER_MS;
    return n;
}

static void progress_delivered(void) {
    size_t at = (progress_q.posted_head + progress_q.posted_n) % PROGRESS_BUFFER;
    if (progress_q.posted_n == PROGRESS_BUFFER)
        progress_q.posted_head = (progress_q.posted_head + 1) % PROGRESS_BUFFER;
    else
        progress_q.posted_n++;
    progress_q.posted[at] = progress_now_ms();
}

/* Compares what the channel holds (`messages`, from nchan's answer) with what it should and
 * republishes the snapshot when something was lost. */
static void progress_verify(long messages) {
    size_t expected = progress_expected();
    if (!progress_q.lost && messages >= (long)expected) return;
    progress_q.lost = 0;
    progress_q.posted_n = 0;
    size_t n = progress_republish();
    if (n)
        log_info("progress: nchan holds %ld of %zu messages; republished the state of %zu "
                 "active jobs",
                 messages, expected, n);
}

/* The "messages" count of a channel info answer (nchan, Accept: application/json). */
static long progress_messages(const progress_answer *a) {
    json_t *info = json_loadb(a->data, a->len, 0, NULL);
    long n = (long)json_integer_value(json_object_get(info, "messages"));
    json_decref(info);
    return n;
}

/* One request to the publisher: `text` is POSTed (in Redis mode every other one to the
 * location whose buffer is one longer: see nginx.conf.in), or with NULL the channel is read
 * (GET). Checks the channel's message count in the answer. 1 when `text` was delivered. */
static int progress_request(CURL *c, const char *text) {
    progress_answer a = {.len = 0};
    a.data[0] = '\0';
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
    int alt = text && progress_q.redis && progress_q.alt;
    curl_easy_setopt(c, CURLOPT_URL, alt ? PROGRESS_URL_ALT : PROGRESS_URL);
    if (text)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
    else
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    progress_q.last_contact_ms = progress_now_ms();
    int ok = rc == CURLE_OK && ((code >= 200 && code < 300) || (!text && code == 404));
    if (text) { /* a failed channel check says nothing about lost messages */
        char why[128];
        if (rc != CURLE_OK)
            snprintf(why, sizeof why, "%s", curl_easy_strerror(rc));
        else
            snprintf(why, sizeof why, "HTTP %ld", code);
        progress_note(ok, why);
    }
    if (!ok) return 0;
    if (text) {
        progress_delivered();
        progress_q.alt = !progress_q.alt;
    }
    progress_verify(code == 404 ? 0 : progress_messages(&a));
    return text != NULL;
}

/* Takes the next message to deliver (caller frees) into *text and its job into job_id, or
 * sets *check when the channel is due for a check. Snapshot entries due by time are queued
 * again meanwhile. 0 when the thread must end. */
static int progress_next(char **text, char job_id[32], int *check) {
    *text = NULL;
    *check = 0;
    pthread_mutex_lock(&progress_q.mu);
    while (!progress_q.count && !progress_q.stopping) {
        int64_t due = progress_q.last_contact_ms + PROGRESS_CHECK_MS;
        if (!progress_q.snap_n) {
            pthread_cond_wait(&progress_q.cv, &progress_q.mu);
            continue;
        }
        if (progress_refresh(progress_now_ms())) continue;
        if (progress_refresh_next() < due) due = progress_refresh_next();
        if (progress_now_ms() >= due) {
            *check = 1;
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t wait = due - progress_now_ms();
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (long)(wait % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&progress_q.cv, &progress_q.mu, &ts);
    }
    if (progress_q.count && (!progress_q.stopping || progress_now_ms() < progress_q.deadline)) {
        *text = progress_at(0)->text;
        memcpy(job_id, progress_at(0)->job_id, 32);
        progress_q.head = (progress_q.head + 1) % progress_q.cap;
        progress_q.count--;
    }
    int go_on = *text || *check;
    pthread_mutex_unlock(&progress_q.mu);
    return go_on;
}

static void *progress_main(void *arg) {
    (void)arg;
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Accept: application/json");
    CURL *c = progress_handle(headers);
    char *text, job_id[32];
    int check;
    while (progress_next(&text, job_id, &check)) {
        if (c && progress_request(c, text)) progress_sent(job_id);
        free(text);
        if (!c) progress_q.last_contact_ms = progress_now_ms();
    }
    if (c) curl_easy_cleanup(c);
    curl_slist_free_all(headers);
    return NULL;
}

void progress_set_node(const char *node) {
    pthread_mutex_lock(&progress_q.mu);
    snprintf(progress_q.node, sizeof progress_q.node, "%s", node);
    pthread_mutex_unlock(&progress_q.mu);
}

int progress_start(const char *socket_path, const char *node, int redis) {
    progress_set_node(node);
    progress_q.redis = redis;
    progress_q.cap = PROGRESS_QUEUE_MAX;
    progress_q.items = calloc(progress_q.cap, sizeof *progress_q.items);
    progress_q.socket_path = strdup(socket_path);
    if (!progress_q.items || !progress_q.socket_path) return -1;
    if (pthread_create(&progress_q.thread, NULL, progress_main, NULL) != 0) return -1;
    progress_q.running = 1;
    return 0;
}

void progress_stop(int flush_ms) {
    if (!progress_q.running) return;
    pthread_mutex_lock(&progress_q.mu);
    progress_q.stopping = 1;
    progress_q.deadline = progress_now_ms() + flush_ms;
    pthread_cond_signal(&progress_q.cv);
    pthread_mutex_unlock(&progress_q.mu);
    pthread_join(progress_q.thread, NULL);
    for (size_t i = 0; i < progress_q.count; i++) free(progress_at(i)->text);
    for (size_t i = 0; i < progress_q.snap_n; i++) free(progress_q.snap[i].text);
    free(progress_q.items);
    free(progress_q.snap);
    free(progress_q.socket_path);
    progress_q.items = progress_q.snap = NULL;
    progress_q.socket_path = NULL;
    progress_q.count = progress_q.snap_n = progress_q.snap_cap = 0;
    progress_q.running = 0;
}
