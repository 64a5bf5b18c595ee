/* ratelimit.c - the shared download budget (see ratelimit.h): a virtual clock ("theoretical
 * arrival time") that each request of n bytes moves on by n / rate seconds. */
#include "ratelimit.h"

#include <pthread.h>
#include <time.h>

#define RATELIMIT_BURST_S 0.1   /* credit an idle budget may bank */
#define RATELIMIT_STEP_S 0.1    /* longest sleep between stop checks */

static struct {
    pthread_mutex_t mu;
    long long rate;
    double tat; /* monotonic seconds at which the budget is spent up to now */
} ratelimit_state = {PTHREAD_MUTEX_INITIALIZER, 0, 0};

static double ratelimit_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void ratelimit_set(long long bytes_per_second) {
    pthread_mutex_lock(&ratelimit_state.mu);
    if (bytes_per_second != ratelimit_state.rate) ratelimit_state.tat = 0;
    ratelimit_state.rate = bytes_per_second > 0 ? bytes_per_second : 0;
    pthread_mutex_unlock(&ratelimit_state.mu);
}

long long ratelimit_rate(void) {
    pthread_mutex_lock(&ratelimit_state.mu);
    long long r = ratelimit_state.rate;
    pthread_mutex_unlock(&ratelimit_state.mu);
    return r;
}

/* Reserves `n` bytes; returns the monotonic time at which they may go (<= now: at once). */
static double ratelimit_reserve(size_t n) {
    pthread_mutex_lock(&ratelimit_state.mu);
    double now = ratelimit_now(), at = now;
    if (ratelimit_state.rate > 0) {
        double start = ratelimit_state.tat;
        if (start < now - RATELIMIT_BURST_S) start = now - RATELIMIT_BURST_S;
        at = start;
        ratelimit_state.tat = start + (double)n / (double)ratelimit_state.rate;
    }
    pthread_mutex_unlock(&ratelimit_state.mu);
    return at;
}

int ratelimit_take(size_t n, int (*stop)(void *ud), void *ud) {
    double at = ratelimit_reserve(n);
    for (double now = ratelimit_now(); now < at; now = ratelimit_now()) {
        double left = at - now;
        if (left > RATELIMIT_STEP_S) left = RATELIMIT_STEP_S;
        struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        nanosleep(&ts, NULL);
        if (stop && stop(ud)) return 1;
    }
    return 0;
}

int ratelimit_socket_buffer(long long rate) {
    if (rate <= 0) return 0;
    long long b = rate / 16;
    if (b < 8192) b = 8192;
    if (b > 1 << 20) b = 1 << 20;
    return (int)b;
}
