/* fs.h - file helpers every durable write goes through: atomic replace (temp file, fsync,
 * rename, fsync of the directory), advisory locks (flock), whole-file reads, and the
 * operations that must never go through a symbolic link.
 *
 * Writes, renames, unlinks and mkdirs take the absolute path of a file under the data root
 * (whose path config_load resolved, so it holds no link) and walk it from "/" one component
 * at a time with O_DIRECTORY|O_NOFOLLOW, then act with openat/renameat/unlinkat/mkdirat on
 * the directory fd they opened themselves: a symbolic link anywhere on the way, or at the
 * file itself where it would be opened, is refused with a readable error ("... is a symbolic
 * link; refusing to follow it"). Reads follow links as usual. */
#ifndef MG_FS_H
#define MG_FS_H

#include <stddef.h>
#include <sys/types.h>

#include "mg_error.h"

/* Creates `path` and its missing parents with `mode`, following no link. 0, or -1 and err. */
int fs_mkdirs(const char *path, mode_t mode, mg_error *err);

/* As fs_mkdirs but following links: only for the data root itself, before it is resolved. */
int fs_mkdirs_follow(const char *path, mode_t mode, mg_error *err);

/* Replaces `path` with `len` bytes of `data` atomically: writes `path`.tmp.<pid>.<n>, fsyncs
 * it, renames it over `path`, fsyncs the directory. A crash leaves the old or the new file.
 * A link at `path` is replaced, never followed. */
int fs_write_atomic(const char *path, const void *data, size_t len, mg_error *err);

/* Opens `path` with `flags` (O_NOFOLLOW and O_CLOEXEC added) and `mode`. The fd (caller
 * closes), or -1 with errno set and err filled. */
int fs_open(const char *path, int flags, mode_t mode, mg_error *err);

/* Removes the file or link `path` (a link itself, never its target). 0, or -1 with errno set
 * (ENOENT when there was nothing) and err filled. */
int fs_unlink(const char *path, mg_error *err);

/* Renames `from` to `to` (a link at `to` is replaced); refuses when `from` is a link.
 * 0, or -1 with errno set and err filled. */
int fs_rename(const char *from, const char *to, mg_error *err);

/* A replace written in pieces: fs_atomic_open creates `path`.tmp.<pid>.<n> (its path into
 * `tmp`, PATH_MAX bytes; no link followed) and returns its fd, or -1 and err.
 * fs_atomic_commit fsyncs and closes the fd and renames the temp file over `path` (as
 * fs_rename; the caller fsyncs the directory once it has renamed everything); fs_atomic_abort
 * closes the fd and removes the temp file. */
int fs_atomic_open(const char *path, char *tmp, mg_error *err);
int fs_atomic_commit(int fd, const char *tmp, const char *path, mg_error *err);
void fs_atomic_abort(int fd, const char *tmp);

/* As fs_lock, but returns -2 at once when another holds the lock. */
int fs_lock_try(const char *lock_path, int exclusive, mg_error *err);

/* Reads a whole file. Returns a malloc'd, NUL-terminated buffer the caller frees, and its
 * length in *len (may be NULL); NULL with errno set and err filled on failure. */
char *fs_read_all(const char *path, size_t *len, mg_error *err);

/* Takes an exclusive (or shared) flock on `lock_path`, creating it (never through a link).
 * Returns the fd to pass to fs_unlock, or -1 and err. Blocks until the lock is held. */
int fs_lock(const char *lock_path, int exclusive, mg_error *err);
void fs_unlock(int fd);

/* Joins `root` and `rel` into `out` (size `n`). Returns 0, or -1 when it does not fit. */
int fs_join(char *out, size_t n, const char *root, const char *rel);

/* fsyncs the directory that holds `path`. */
int fs_sync_parent(const char *path);

#endif
