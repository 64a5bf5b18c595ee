/* progress.c - progress messages, their rate, and the thread that publishes them to nchan. */
#include "progress.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define PROGRESS_URL "http://localhost/pub/progress"
#define PROGRESS_QUEUE_MAX 4096
#define PROGRESS_LOG_EVERY_MS 30000
#define PROGRESS_WINDOW_MS 2000

int64_t progress_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- messages and the meter ---- */

json_t *progress_message(const char *model_id, const char *job_id, const char *status,
                         double progress, int64_t downloaded, int64_t total,
                         int64_t bytes_per_second, const char *error) {
    if (progress < 0) progress = 0;
    if (progress > 100) progress = 100;
    progress = (double)(int64_t)(progress * 10 + 0.5) / 10; /* one decimal */
    return json_pack("{s:s,s:s,s:s,s:f,s:I,s:I,s:I,s:s?}", "model_id", model_id, "job_id",
                     job_id, "status", status, "progress", progress, "downloaded",
                     (json_int_t)downloaded, "total", (json_int_t)total, "bytes_per_second",
                     (json_int_t)bytes_per_second, "error", error);
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

/* ---- the publisher thread ---- */

typedef struct progress_item {
    char job_id[32];
    char status[16];
    char *text; /* owned JSON text */
} progress_item;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int running, stopping;
    int64_t deadline; /* when stopping: deliver until then */
    progress_item *items;
    size_t head, count, cap;
    char *socket_path;
    /* Delivery errors, for rate-limited logging (publisher thread only). */
    int64_t last_log_ms;
    long failures;
    int failing;
} progress_q = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static int progress_terminal(const char *status) {
    return strcmp(status, "installed") == 0 || strcmp(status, "failed") == 0 ||
           strcmp(status, "cancelled") == 0;
}

static progress_item *progress_at(size_t i) {
    return &progress_q.items[(progress_q.head + i) % progress_q.cap];
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

void progress_send(json_t *msg) {
    const char *job_id = json_string_value(json_object_get(msg, "job_id"));
    const char *status = json_string_value(json_object_get(msg, "status"));
    char *text = json_dumps(msg, JSON_COMPACT);
    if (!job_id || !status || !text) {
        free(text);
        json_decref(msg);
        return;
    }
    pthread_mutex_lock(&progress_q.mu);
    if (!progress_q.running || progress_q.stopping) {
        free(text);
    } else if (!progress_coalesce(job_id, status, text)) {
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
    pthread_mutex_unlock(&progress_q.mu);
    json_decref(msg);
}

static size_t progress_discard(char *data, size_t size, size_t n, void *ud) {
    (void)data;
    (void)ud;
    return size * n;
}

static CURL *progress_handle(struct curl_slist *headers) {
    CURL *c = curl_easy_init();
    if (!c) return NULL;
    curl_easy_setopt(c, CURLOPT_URL, PROGRESS_URL);
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, progress_q.socket_path);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, progress_discard);
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
    if (!progress_q.failing || now - progress_q.last_log_ms >= PROGRESS_LOG_EVERY_MS) {
        log_warn("progress: cannot publish to nchan at %s: %s (%ld messages lost so far)",
                 progress_q.socket_path, why, progress_q.failures);
        progress_q.last_log_ms = now;
    }
    progress_q.failing = 1;
}

static void progress_post(CURL *c, const char *text) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    char why[128];
    if (rc != CURLE_OK)
        snprintf(why, sizeof why, "%s", curl_easy_strerror(rc));
    else
        snprintf(why, sizeof why, "HTTP %ld", code);
    progress_note(rc == CURLE_OK && code >= 200 && code < 300, why);
}

/* Takes the next message to deliver (caller frees), or NULL when the thread must end. */
static char *progress_next(void) {
    pthread_mutex_lock(&progress_q.mu);
    while (!progress_q.count && !progress_q.stopping)
        pthread_cond_wait(&progress_q.cv, &progress_q.mu);
    char *text = NULL;
    if (progress_q.count &&
        (!progress_q.stopping || progress_now_ms() < progress_q.deadline)) {
        text = progress_at(0)->text;
        progress_q.head = (progress_q.head + 1) % progress_q.cap;
        progress_q.count--;
    }
    pthread_mutex_unlock(&progress_q.mu);
    return text;
}

static void *progress_main(void *arg) {
    (void)arg;
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Accept: application/json");
    CURL *c = progress_handle(headers);
    char *text;
    while ((text = progress_next()) != NULL) {
        if (c) progress_post(c, text);
        free(text);
    }
    if (c) curl_easy_cleanup(c);
    curl_slist_free_all(headers);
    return NULL;
}

int progress_start(const char *socket_path) {
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
    free(progress_q.items);
    free(progress_q.socket_path);
    progress_q.items = NULL;
    progress_q.socket_path = NULL;
    progress_q.count = 0;
    progress_q.running = 0;
}
