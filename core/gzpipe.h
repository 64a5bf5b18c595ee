/* gzpipe.h - writes a gzip file from bytes handed over in pieces, compressing on a thread of
 * its own so that the compression overlaps the caller's work (zlib). */
#ifndef MG_GZPIPE_H
#define MG_GZPIPE_H

#include <stddef.h>

#include "mg_error.h"

typedef struct gzpipe gzpipe;

/* Starts compressing at zlib `level` into `fd` (open for writing; it stays the caller's).
 * Returns an owned pipe (end it with gzpipe_finish or gzpipe_abort), or NULL and err. */
gzpipe *gzpipe_start(int fd, int level, mg_error *err);

/* Hands `len` bytes over (copied). 0, or -1 once compressing or writing failed. */
int gzpipe_write(gzpipe *g, const void *data, size_t len);

/* Compresses what is left, writes the gzip trailer, stops the thread and frees `g`. Does
 * not fsync. 0, or -1 and err. */
int gzpipe_finish(gzpipe *g, mg_error *err);

/* Stops the thread and frees `g`; the output is incomplete. */
void gzpipe_abort(gzpipe *g);

#endif
