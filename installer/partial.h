/* partial.h - the hidden partial file of a download: models/.partial/{id}{ext}.part and its
 * sidecar .part.meta ({url, checksum}) that says which download the bytes belong to. Only the
 * model id and the extension from the job file make these paths; never the URL. */
#ifndef MG_PARTIAL_H
#define MG_PARTIAL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef struct partial {
    char part[MG_PATH_MAX];  /* models/.partial/{id}{ext}.part */
    char meta[MG_PATH_MAX];  /* models/.partial/{id}{ext}.part.meta */
    char final[MG_PATH_MAX]; /* models/llm/{id}{ext} */
    char rel[MG_PATH_MAX];   /* "models/llm/{id}{ext}", as the registry records it */
    int fd;                  /* -1 when closed */
    int64_t size;            /* bytes in the partial when opened */
} partial;

/* 1 when `ext` is a safe extension: a dot and 1-15 letters or digits. */
int partial_ext_valid(const char *ext);

/* Fills the paths of model `id` (a valid model id) with extension `ext` (valid). */
void partial_paths(partial *p, const mg_config *cfg, const char *id, const char *ext);

/* Opens (creating) the partial for `url` and `checksum`. A partial whose meta names another
 * url or checksum is emptied first. Sets p->fd and p->size. 0, or -1 with a message in why. */
int partial_open(partial *p, const char *url, const char *checksum, char *why, size_t n);

/* Empties the open partial. 0, or -1 with a message in why. */
int partial_truncate(partial *p, char *why, size_t n);

/* Closes the partial and keeps it for a later resume. */
void partial_close(partial *p);

/* Closes the partial and removes it and its meta. */
void partial_discard(partial *p);

/* fsyncs the whole partial, renames it to its final path, fsyncs models/llm/ and removes the
 * meta. 0, or -1 with a message in why (the partial is then removed). */
int partial_commit(partial *p, char *why, size_t n);

#endif
