/* sched.c - starting queued jobs in free slots, oldest first, finishing cancels of jobs that
 * do not run, announcing queued jobs, and reaping ended runners (see sched.h). */
#include "sched.h"

#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
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

static int sched_model_running(const sched *s, const char *model_id, size_t len) {
    for (int i = 0; i < SCHED_MAX_SLOTS; i++)
        if (s->slots[i] && strlen(s->slots[i]->model_id) == len &&
            memcmp(s->slots[i]->model_id, model_id, len) == 0)
            return 1;
    return 0;
}

/* jobs/index as it is now: the cached one while the file is unchanged. Borrowed, or NULL. */
static const job_index *sched_index(sched *s) {
    char path[MG_PATH_MAX];
    struct stat st;
    if (s->ix && stat(config_path(s->cfg, path, "jobs/index"), &st) == 0 &&
        job_index_is_current(s->ix, &st))
        return s->ix;
    mg_error err;
    job_index *ix = job_index_load(s->cfg, &err);
    if (!ix) {
        log_warn("cannot read the job index: %s", err.message);
        return s->ix;
    }
    job_index_free(s->ix);
    s->ix = ix;
    return ix;
}

void sched_note_job(sched *s, const char *job_id) {
    for (int i = 0; i < s->noted_n; i++)
        if (strcmp(s->noted[i], job_id) == 0) return;
    if (s->noted_n == SCHED_NOTED_MAX) {
        s->noted_overflow = 1;
        return;
    }
    snprintf(s->noted[s->noted_n++], sizeof s->noted[0], "%s", job_id);
}

/* Takes noted job files that jobs/index lacks into it (all of them: a rebuild, when more
 * were noted than remembered). */
static void sched_adopt(sched *s) {
    if (s->noted_overflow) {
        mg_error err;
        if (job_index_rebuild(s->cfg, &err) < 0) log_warn("%s", err.message);
    } else if (s->noted_n) {
        const job_index *ix = sched_index(s);
        for (int i = 0; ix && i < s->noted_n; i++)
            if (!job_index_find(ix, s->noted[i])) job_index_adopt(s->cfg, s->noted[i]);
    }
    s->noted_n = s->noted_overflow = 0;
}

/* Claims job `job_id` and starts it in a free slot; a job being cancelled ends cancelled
 * instead, its partial removed first (`cancelling`: the index says so) so that whoever sees
 * the status cancelled finds the partial gone. */
static void sched_start(sched *s, const char *job_id, int cancelling) {
    mg_error err;
    json_t *job = job_load(s->cfg, job_id, &err);
    if (job && cancelling) runner_discard_partial(s->cfg, job);
    int claimed = job ? job_claim(s->cfg, job, &err) : -1;
    if (claimed < 0) {
        log_warn("cannot claim job %s: %s", job_id, err.message);
    } else if (!claimed) {
        if (job_get_status(job) == JOB_CANCELLED) runner_cancelled_unclaimed(s->cfg, job);
    } else { /* with no free slot (a cancel that was not one) it waits for the next fill */
        for (int i = 0; i < SCHED_MAX_SLOTS; i++) {
            if (s->slots[i]) continue;
            s->slots[i] = runner_start(s->cfg, json_incref(job), &s->stopping,
                                       s->notify_fd);
            break;
        }
    }
    json_decref(job);
}

/* Publishes the state of a job that waits (queued, paused, or left running by a crash) once
 * per status, so that subscribers learn of it. */
static void sched_announce(const job_index_entry *e) {
    json_t *pub = json_loadb(e->json, e->json_len, 0, NULL);
    json_t *msg = pub ? progress_message_of(pub) : NULL;
    json_decref(pub);
    if (msg) progress_ensure(msg);
}

void sched_fill(sched *s) {
    if (atomic_load(&s->stopping)) return;
    sched_adopt(s);
    const job_index *ix = sched_index(s);
    for (size_t i = ix ? ix->count : 0; i-- > 0;) { /* oldest first */
        const job_index_entry *e = &ix->entries[i];
        char id[ID_JOB_LEN + 1];
        if (job_status_terminal(e->status)) continue;
        memcpy(id, e->job_id, ID_JOB_LEN);
        id[ID_JOB_LEN] = '\0';
        if (sched_running(s, id)) continue;
        if (e->status == JOB_CANCELLING) {
            sched_start(s, id, 1);
            continue;
        }
        sched_announce(e);
        if (e->status == JOB_PAUSED) continue;
        if (sched_busy(s) >= sched_limit(s) || sched_model_running(s, e->model_id, e->model_len))
            continue;
        sched_start(s, id, 0);
    }
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

void sched_pause(sched *s, const char *job_id) {
    for (int i = 0; i < SCHED_MAX_SLOTS; i++) {
        if (s->slots[i] && strcmp(s->slots[i]->job_id, job_id) == 0) {
            if (runner_pause(s->slots[i])) log_info("job %s: pause requested", job_id);
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
    job_index_free(s->ix);
    s->ix = NULL;
}
