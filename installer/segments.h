/* segments.h - a large file fetched in parallel ranged requests.
 *
 * When a download's first answer to "Range: bytes=0-" is a 206 for a file of at least
 * segment_min_bytes (server.json, default 256 MiB), the download goes on in up to
 * download_segments (default 4, at most 16) worker slots. The file is cut into chunks
 * (a quarter of an even share, 1 to 16 MiB); each slot fetches one chunk at a time with
 * "Range: a-b" (and If-Range) and takes the next chunk in file order when done, so the
 * bytes before the first missing one (the contiguous prefix) grow steadily and the hashing
 * thread (hashpipe.h) consumes them while the transfer runs: no second read at the end.
 *
 * The partial's meta records the chunks in flight, {total, next, chunk, parts: [[start, end,
 * pos], ...]}, about every second and whenever the transfer stops, so that after a crash
 * (kill -9 included) every chunk resumes where it stood. A failure of any request ends the
 * attempt; download.c retries, backs off or moves to a mirror, and the next attempt resumes
 * every chunk. A 200 to a ranged request, a Content-Range that does not match, or another
 * validator from the same URL means the file changed: the download starts over. */
#ifndef MG_SEGMENTS_H
#define MG_SEGMENTS_H

#include "download_int.h"

/* 1 when `st` may go into segments: download_segments > 1 and the
 * gallery announces at least half of segment_min_bytes (the first request then asks for
 * "bytes=0-"; the real size decides). */
int segments_wanted(const download_state *st);

/* Plans the chunks of a file of `total` bytes (nothing downloaded yet) and records them in
 * the meta. 1 when the download goes on in segments, 0 when the file is too small, -1 with
 * st->why when the meta cannot be written. */
int segments_plan(download_state *st, int64_t total);

/* Takes the chunks the partial's meta records (a resume). 1 when the download goes on in
 * segments (st->pos is then the bytes already there), 0 otherwise. */
int segments_load(download_state *st);

/* Bytes from offset 0 that are all there. */
int64_t segments_prefix(const download_state *st);

/* One attempt: every slot fetches chunks until the file is whole (ATTEMPT_DONE) or a
 * request fails (another result, with st->why and st->code). */
attempt_result segments_attempt(download_state *st);

/* Forgets the segments (the partial is emptied or a stream takes over). */
void segments_reset(download_state *st);

/* Releases the transfers of the slots. */
void segments_release(download_state *st);

#endif
