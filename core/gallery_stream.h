/* gallery_stream.h - reads a gallery file one model at a time.
 *
 * A tokenizer finds the top-level keys of the document and the extent of each element of its
 * "models" array; jansson parses each element (and the other top-level values) on its own,
 * so memory holds one model, never the whole document. A syntax error anywhere is reported as
 * jansson reports one for the whole file: "<path>: not valid JSON at line L, column C: ...". */
#ifndef MG_GALLERY_STREAM_H
#define MG_GALLERY_STREAM_H

#include <jansson.h>
#include <stddef.h>
#include <sys/stat.h>

#include "mg_error.h"

typedef struct gallery_stream gallery_stream;

/* Opens the gallery file at `path` and reads it through once to check its top level and to
 * find "version", "generatedAt" and "models" (the last of a repeated key wins, as jansson
 * does). Its fstat goes to *st (when not NULL). Returns an owned stream (close with
 * gallery_stream_close), or NULL and err: 404 "io_error" when missing, 500
 * "invalid_gallery" when it is not JSON (with line and column) or has no "models" array. */
gallery_stream *gallery_stream_open(const char *path, struct stat *st, mg_error *err);

/* The document's "version" and "generatedAt" (borrowed; JSON null when absent). */
json_t *gallery_stream_version(const gallery_stream *gs);
json_t *gallery_stream_generated(const gallery_stream *gs);

/* The next element of "models": 1 with a new reference in *element (any JSON value) and its
 * position in the array in *index; 0 after the last; -1 and err when the file is not JSON
 * there (or cannot be read). When `text` is not NULL, *text and *text_len get the element's
 * own bytes without the whitespace between tokens: its compact JSON text, as written in the
 * file (borrowed, valid until the next call). */
int gallery_stream_next(gallery_stream *gs, json_t **element, size_t *index, const char **text,
                        size_t *text_len, mg_error *err);

void gallery_stream_close(gallery_stream *gs);

#endif
