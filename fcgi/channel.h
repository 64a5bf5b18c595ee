/* channel.h - whether the progress channel can take subscribers now: with redis_url, nchan
 * keeps it in Redis and refuses publishers and new subscribers (503) while Redis cannot be
 * reached. Asked of nchan itself (a GET of the channel on its publisher socket,
 * run/nchan.sock), so the answer is nchan's view, not a guess. */
#ifndef MG_CHANNEL_H
#define MG_CHANNEL_H

#include <stddef.h>

#include "config.h"

/* How long a check waits for nchan. */
#define CHANNEL_TIMEOUT_MS 500

/* 1 when the channel works: always without redis_url (it lives in nginx, which answered this
 * request); with it, when nchan answers the GET with 200 or 404 (no channel yet) in time.
 * 0 otherwise, with a sentence for users in why (size n). */
int channel_ok(const mg_config *cfg, char *why, size_t n);

#endif
