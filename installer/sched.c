/* sched.c - starting queued jobs in free slots, oldest first, and reaping ended runners. */
#include "sched.h"

#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "progress.h"

int sched_init(sched *s, const mg_config *cfg) {
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
    atomic_init(&s->stopping, 0);
    s->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return s->notify_fd < 0 ? -1 : 0;
}

static int sched_limit(const sched *s) {
    int n = s->cfg->max_parallel_downloads;
    return n < 1 ? 1 : n > SCHED_MAX_SLOTS ? SCHED_MAX_SLOTS : n;
}

static int sched_busy(const sched *s) {
    int n = 0;
    for (int i = 0; i < SCHED_MAX_SLOTS; i++) n += s->slots[i] != NULL;
    return n;
}

int sched_running(const sched *s, const char *job_id) {
    for (int i = 0; i < SCHED_MAX_SLOTS; i++)
        if (s->slots[i] && strcmp(s->slots[i]->job_id, job_id) == 0) return 1;
    return 0;
}

static int sched_model_running(const sched *s, const char *model_id) {
    for (int i = 0; i < SCHED_MAX_SLOTS; i++)
        if (s->slots[i] && strcmp(s->slots[i]->model_id, model_id) == 0) return 1;
    return 0;
}

/* Claims `job` (borrowed) and starts it in a free slot. */
static void sched_start(sched *s, json_t *job) {
    mg_error err;
    int claimed = job_claim(s->cfg, job, &err);
    if (claimed < 0) {
        log_warn("cannot claim a job: %s", err.message);
        return;
    }
    if (!claimed) {
        if (job_get_status(job) == JOB_CANCELLED) runner_cancelled_unclaimed(s->cfg, job);
        return;
    }
    for (int i = 0; i < SCHED_MAX_SLOTS; i++) {
        if (s->slots[i]) continue;
        s->slots[i] = runner_start(s->cfg, json_incref(job), &s->stopping, s->notify_fd);
        return;
    }
}

void sched_fill(sched *s) {
    if (atomic_load(&s->stopping) || sched_busy(s) >= sched_limit(s)) return;
    mg_error err;
    json_t *jobs = job_list(s->cfg, &err); /* newest first */
    if (!jobs) {
        log_warn("cannot list jobs: %s", err.message);
        return;
    }
    for (size_t i = json_array_size(jobs); i-- > 0 && sched_busy(s) < sched_limit(s);) {
        json_t *job = json_array_get(jobs, i);
        job_status st = job_get_status(job);
        const char *id = json_string_value(json_object_get(job, "job_id"));
        const char *model = json_string_value(json_object_get(job, "model_id"));
        if (job_status_terminal(st) || !id || !model || sched_running(s, id) ||
            sched_model_running(s, model))
            continue;
        sched_start(s, job);
    }
    json_decref(jobs);
}

int sched_reap(sched *s) {
    uint64_t n;
    ssize_t r = read(s->notify_fd, &n, sizeof n);
    (void)r;
    int reaped = 0;
    for (int i = 0; i < SCHED_MAX_SLOTS; i++) {
        runner *rn = s->slots[i];
        if (!rn || !atomic_load(&rn->finished)) continue;
        runner_join(rn, -1);
        runner_free(rn);
        s->slots[i] = NULL;
        reaped++;
    }
    return reaped;
}

void sched_cancel(sched *s, const char *job_id) {
    for (int i = 0; i < SCHED_MAX_SLOTS; i++) {
        if (s->slots[i] && strcmp(s->slots[i]->job_id, job_id) == 0) {
            if (runner_cancel(s->slots[i])) log_info("job %s: cancel requested", job_id);
        }
    }
}

void sched_shutdown(sched *s, int timeout_ms) {
    atomic_store(&s->stopping, 1);
    int64_t end = progress_now_ms() + timeout_ms;
    for (int i = 0; i < SCHED_MAX_SLOTS; i++) {
        runner *rn = s->slots[i];
        if (!rn) continue;
        int64_t left = end - progress_now_ms();
        if (runner_join(rn, left > 0 ? (int)left : 0) == 0) {
            runner_free(rn);
            s->slots[i] = NULL;
        } else {
            log_warn("job %s: still stopping at exit", rn->job_id);
        }
    }
}
