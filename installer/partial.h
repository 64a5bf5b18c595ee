/* partial.h - the hidden partial file of a download: models/.partial/{id}{ext}.part and its
 * sidecar .part.meta that says which download the bytes belong to. Only the model id and the
 * extension from the job file make these paths; never the URL.
 *
 * The meta is {url, checksum, validator, source, verified}: `validator` is the strong ETag
 * (else the Last-Modified date) of the response the bytes came from, sent as If-Range when
 * resuming from `source`, the URL that answered it (the job's url or a mirror; a meta
 * without it means url); `segments`, while a download runs in parallel segments, says which
 * byte ranges are still missing (segments.h);
 * `verified` ({size, ino, mtime_ns}) is written, durably, once the whole file matched its
 * checksum and just before it is renamed to models/llm/. The meta stays until the registry
 * entry is written, so a file whose registration failed, or that a crash left unregistered,
 * is recognised as the verified download (same inode, size and mtime: rename keeps them) and
 * registered without downloading it again. */
#ifndef MG_PARTIAL_H
#define MG_PARTIAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define PARTIAL_VALIDATOR_MAX 256

typedef struct partial {
    char part[MG_PATH_MAX];  /* models/.partial/{id}{ext}.part */
    char meta[MG_PATH_MAX];  /* models/.partial/{id}{ext}.part.meta */
    char final[MG_PATH_MAX]; /* models/llm/{id}{ext} */
    char rel[MG_PATH_MAX];   /* "models/llm/{id}{ext}", as the registry records it */
    int fd;                  /* -1 when closed */
    int64_t size;            /* bytes in the partial when opened */
    char url[2048];          /* what the meta names (set by partial_open) */
    char checksum[80];
    char validator[PARTIAL_VALIDATOR_MAX]; /* "" when unknown */
    char source[4096];       /* the URL the validator came from */
    json_t *segments;        /* owned: the chunks of a segmented download (segments.h) as
                                the meta records them, or NULL */
} partial;

/* 1 when `ext` is a safe extension: a dot and 1-15 letters or digits. */
int partial_ext_valid(const char *ext);

/* Fills the paths of model `id` (a valid model id) with extension `ext` (valid). */
void partial_paths(partial *p, const mg_config *cfg, const char *id, const char *ext);

/* Opens (creating) the partial for `url` and `checksum`. A partial whose meta names another
 * url or checksum is emptied first; the validator of a matching one is kept in
 * p->validator. Sets p->fd and p->size. 0, or -1 with a message in why. */
int partial_open(partial *p, const char *url, const char *checksum, char *why, size_t n);

/* Records `validator` (may be "") as the one the partial's bytes came with from `source`
 * (a URL). 0, or -1 with a message in why. */
int partial_set_validator(partial *p, const char *validator, const char *source, char *why,
                          size_t n);

/* Records `segments` (borrowed, may be NULL: one stream) in the meta. 0, or -1 with a
 * message in why. */
int partial_set_segments(partial *p, json_t *segments, char *why, size_t n);

/* Empties the open partial (and forgets its segments). 0, or -1 with a message in why. */
int partial_truncate(partial *p, char *why, size_t n);

/* Closes the partial and keeps it for a later resume. */
void partial_close(partial *p);

/* Closes the partial and removes it and its meta. */
void partial_discard(partial *p);

/* fsyncs the whole partial, records it as verified in the meta, renames it to its final
 * path and fsyncs models/llm/. The meta stays until partial_registered. 0, or -1 with a
 * message in why (the partial is then removed). */
int partial_commit(partial *p, char *why, size_t n);

/* When the meta says a download with `checksum` was verified and that very file is in
 * models/llm/ (or still at the partial's path, then moved there): 1 and its size in *size.
 * A stale verified meta is removed. 0 otherwise. */
int partial_recover(partial *p, const char *checksum, int64_t *size);

/* The registry entry of the final file is written: removes the meta. */
void partial_registered(partial *p);

#endif
