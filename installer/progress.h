/* progress.h - live progress: the contract's progress message, its rate (a meter per job) and
 * a publisher thread that POSTs messages to nchan (http://localhost/pub/progress over the unix
 * socket run/nchan.sock). Publishing never blocks a download and never fails it: messages are
 * queued (a newer message of a job with the same status replaces the queued one) and delivery
 * errors are logged, rate-limited.
 *
 * The publisher keeps the latest message of every active job (the snapshot) and republishes
 * it when nchan lost what it buffered: after a failed delivery, or when the channel holds
 * fewer messages than were published into it within its buffer's lifetime (nginx or Redis
 * restarted; seen in the answer to a POST, or to a GET of the channel every 500 ms while
 * jobs are active). It also publishes each entry again before it can leave nchan's buffer
 * of 64: alone, after 56 later messages of its own (at most every 800 ms); in Redis mode,
 * where other nodes publish into the same channel, every 800 ms. So a new subscriber, on any node, gets every active
 * job's state from nchan's buffer, or within a second. A downloading job's state goes out
 * at least every 800 ms in any case (also while it waits to retry), so that a client can
 * take silence for lost progress. Every message carries "node". */
#ifndef MG_PROGRESS_H
#define MG_PROGRESS_H

#include <jansson.h>
#include <stdint.h>

#define PROGRESS_MIN_MS 100   /* at most one message per job every 100 ms */
#define PROGRESS_MAX_MS 1000  /* at least one message per running job every second */
#define PROGRESS_SAMPLES 32

/* Milliseconds of the monotonic clock. */
int64_t progress_now_ms(void);

/* Starts the publisher thread for the nchan socket at `socket_path` (copied); messages carry
 * `node` (copied); `redis`: nginx keeps the channel in Redis (redis_url). 0, or -1. */
int progress_start(const char *socket_path, const char *node, int redis);

/* The node name that messages carry from now on (copied; server.json was reloaded). */
void progress_set_node(const char *node);

/* Queues `msg` (a progress message; the reference is stolen) for publishing, and keeps it
 * as its job's latest state while the status is not terminal. */
void progress_send(json_t *msg);

/* progress_send, unless the snapshot has a message of that job with the same status already
 * (it is dropped then). */
void progress_ensure(json_t *msg);

/* 1 when the snapshot has a message of `job_id`. */
int progress_has(const char *job_id);

/* Delivers what is queued for up to `flush_ms`, then stops the thread. */
void progress_stop(int flush_ms);

/* The rate of one job: when to publish, and bytes per second over the last ~2 s. */
typedef struct progress_meter {
    int64_t last_ms;          /* when the last message went out; 0: never */
    int64_t last_bytes;       /* its downloaded count */
    int64_t t[PROGRESS_SAMPLES], b[PROGRESS_SAMPLES];
    int head, count;
} progress_meter;

void progress_meter_init(progress_meter *m);

/* 1 when a message is due at `now` for `downloaded` bytes: 100 ms after the last when bytes
 * moved, a second after it anyway. */
int progress_meter_due(const progress_meter *m, int64_t now, int64_t downloaded);

/* Records that a message goes out now, and returns bytes per second over the last ~2 s. */
int64_t progress_meter_mark(progress_meter *m, int64_t now, int64_t downloaded);

/* What a progress message says about a job. */
typedef struct progress_state {
    const char *model_id, *job_id, *kind, *status;
    double progress;
    int64_t downloaded, total, bytes_per_second;
    const char *error, *error_code; /* NULL: null */
    const char *source_url;         /* the URL serving the bytes (redacted); NULL: null */
} progress_state;

/* Returns a new progress message (contract format plus kind, eta_s, error_code and
 * source_url): eta_s is the seconds left at the current rate while downloading, 0 once
 * installed, else null. */
json_t *progress_message(const progress_state *ps);

/* Returns a new progress message for the public view of a job (borrowed), or NULL. */
json_t *progress_message_of(json_t *pub);

#endif
