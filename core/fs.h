/* fs.h - file helpers every durable write goes through: atomic replace (temp file, fsync,
 * rename, fsync of the directory), advisory locks (flock) and whole-file reads. */
#ifndef MG_FS_H
#define MG_FS_H

#include <stddef.h>
#include <sys/types.h>

#include "mg_error.h"

/* Creates `path` and its missing parents with `mode`. 0 on success, -1 and err otherwise. */
int fs_mkdirs(const char *path, mode_t mode, mg_error *err);

/* Replaces `path` with `len` bytes of `data` atomically: writes `path`.tmp.<pid>.<n>, fsyncs
 * it, renames it over `path`, fsyncs the directory. A crash leaves the old or the new file. */
int fs_write_atomic(const char *path, const void *data, size_t len, mg_error *err);

/* Reads a whole file. Returns a malloc'd, NUL-terminated buffer the caller frees, and its
 * length in *len (may be NULL); NULL with errno set and err filled on failure. */
char *fs_read_all(const char *path, size_t *len, mg_error *err);

/* Takes an exclusive (or shared) flock on `lock_path`, creating it. Returns the fd to pass
 * to fs_unlock, or -1 and err. Blocks until the lock is held. */
int fs_lock(const char *lock_path, int exclusive, mg_error *err);
void fs_unlock(int fd);

/* Joins `root` and `rel` into `out` (size `n`). Returns 0, or -1 when it does not fit. */
int fs_join(char *out, size_t n, const char *root, const char *rel);

/* fsyncs the directory that holds `path`. */
int fs_sync_parent(const char *path);

#endif
