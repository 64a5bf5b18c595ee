/* rebuild.h - rebuilds the cache from a gallery file without holding the gallery in memory:
 * a reader thread parses and checks one model at a time (gallery_stream.c, gallery.c) while
 * the calling thread writes the cache, its gzip copy and its search index (cachefile.c). */
#ifndef MG_REBUILD_H
#define MG_REBUILD_H

#include <jansson.h>
#include <sys/stat.h>

#include "cachefile.h"
#include "mg_error.h"

/* Rebuilds the cache at `cache_path` from the gallery file `source`, tagging each kept model
 * with "gallery": `name` (a valid model id). The source's fstat goes to *source_st, what was
 * written to *out, and a new reference to the [{index, id, reason}] of the models left out
 * (not logged) to *invalid. 0, or -1 and err; when the source is at fault (missing,
 * unreadable, not JSON, not a gallery) `src_err` says why too (its message non-empty), and
 * nothing was written. The caller holds the cache lock. */
int rebuild_from_file(const char *source, const char *cache_path, const char *name,
                      struct stat *source_st, cachefile_stats *out, json_t **invalid,
                      mg_error *src_err, mg_error *err);

#endif
