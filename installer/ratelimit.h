/* ratelimit.h - max_download_rate: one budget of bytes per second shared by every download
 * of the daemon. Each download asks for the bytes it just received before it stores them
 * (and so before it reads more); requests are served in the order they come, each at the
 * time the rate allows, so downloads that run together share the rate evenly and the total
 * over any window of W seconds stays under rate x (W + 0.1 s) plus one buffer. */
#ifndef MG_RATELIMIT_H
#define MG_RATELIMIT_H

#include <stddef.h>

/* Sets the rate in bytes per second for all downloads together; 0: unlimited. Thread-safe;
 * takes effect for the next request. */
void ratelimit_set(long long bytes_per_second);

/* The rate in effect (0: unlimited). */
long long ratelimit_rate(void);

/* Waits until `n` bytes fit the rate, calling `stop(ud)` at least every 100 ms while it
 * waits. 0 when the bytes may go on, 1 when `stop` returned non-zero. */
int ratelimit_take(size_t n, int (*stop)(void *ud), void *ud);

/* The receive buffer a download should ask its socket for under `rate` (0: leave the
 * system's default): small enough that the bytes the kernel takes ahead of the budget stay
 * a small part of a second's worth. */
int ratelimit_socket_buffer(long long rate);

#endif
