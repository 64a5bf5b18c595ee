/* fs.c - durable file operations: atomic replace, flock, mkdir -p, whole-file reads, and the
 * link-refusing walk that every write, rename and unlink goes through (see fs.h). */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_join(char *out, size_t n, const char *root, const char *rel) {
    int w = snprintf(out, n, "%s/%s", root, rel);
    return (w < 0 || (size_t)w >= n) ? -1 : 0;
}

/* ---- the walk ----------------------------------------------------------------------- */

#define FS_DIR_FLAGS (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/* Fills err for a failed step at `name` (in directory `dfd`) of `path`; a link is named as
 * such. Keeps errno. Returns -1. */
static int fs_fail(int dfd, const char *name, const char *path, const char *what,
                   mg_error *err) {
    int e = errno;
    struct stat st;
    if ((e == ELOOP || e == ENOTDIR || e == EMLINK) &&
        fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
        mg_error_set(err, 500, "symlink_refused", NULL,
                     "cannot %s %s: %s is a symbolic link; refusing to follow it", what, path,
                     name);
        e = ELOOP;
    } else {
        mg_error_set(err, e == ENOSPC ? 507 : 500, "io_error", NULL, "cannot %s %s: %s", what,
                     path, strerror(e));
    }
    errno = e;
    return -1;
}

/* Opens the directory `path` (its first `len` bytes) one component at a time, following no
 * link, creating missing components with `mode` when `create`. The fd (O_PATH), or -1 with
 * errno and err. */
static int fs_dir_open(const char *path, size_t len, int create, mode_t mode, mg_error *err) {
    int fd = open(path[0] == '/' ? "/" : ".", FS_DIR_FLAGS);
    if (fd < 0) return fs_fail(AT_FDCWD, "/", path, "open", err);
    for (size_t i = 0; i < len;) {
        while (i < len && path[i] == '/') i++;
        size_t n = 0;
        while (i + n < len && path[i + n] != '/') n++;
        if (n == 0) break;
        char name[NAME_MAX + 1];
        if (n > NAME_MAX) {
            close(fd);
            errno = ENAMETOOLONG;
            return fs_fail(AT_FDCWD, "", path, "open", err);
        }
        memcpy(name, path + i, n);
        name[n] = '\0';
        i += n;
        if (strcmp(name, ".") == 0) continue;
        int next = openat(fd, name, FS_DIR_FLAGS);
        if (next < 0 && errno == ENOENT && create) {
            if (mkdirat(fd, name, mode) != 0 && errno != EEXIST) {
                fs_fail(fd, name, path, "create", err);
                close(fd);
                return -1;
            }
            next = openat(fd, name, FS_DIR_FLAGS);
        }
        if (next < 0) {
            fs_fail(fd, name, path, create ? "create" : "open", err);
            close(fd);
            return -1;
        }
        close(fd);
        fd = next;
    }
    return fd;
}

/* Opens the directory that holds `path` and points *leaf at the last component. */
static int fs_parent_open(const char *path, const char **leaf, mg_error *err) {
    const char *slash = strrchr(path, '/');
    *leaf = slash ? slash + 1 : path;
    if (!**leaf || strcmp(*leaf, ".") == 0 || strcmp(*leaf, "..") == 0) {
        errno = EINVAL;
        return mg_error_set(err, 500, "io_error", NULL, "%s does not name a file", path);
    }
    return fs_dir_open(path, slash ? (size_t)(slash - path) + (slash == path) : 0, 0, 0, err);
}

/* fsyncs the directory behind the O_PATH fd `dfd`. */
static int fs_sync_dirfd(int dfd) {
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* ---- operations --------------------------------------------------------------------- */

int fs_mkdirs(const char *path, mode_t mode, mg_error *err) {
    int fd = fs_dir_open(path, strlen(path), 1, mode, err);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

int fs_mkdirs_follow(const char *path, mode_t mode, mg_error *err) {
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return mg_error_set(err, 500, "path_too_long", NULL, "path too long: %.200s...", path);
    for (char *p = buf + 1; ; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return mg_error_set(err, 500, "io_error", NULL, "cannot create %s: %s", buf,
                                strerror(errno));
        *p = saved;
        if (saved == '\0') break;
    }
    return 0;
}

int fs_sync_parent(const char *path) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = '\0';
    else if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int fs_open(const char *path, int flags, mode_t mode, mg_error *err) {
    const char *leaf;
    int dfd = fs_parent_open(path, &leaf, err);
    if (dfd < 0) return -1;
    int fd = openat(dfd, leaf, flags | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) fs_fail(dfd, leaf, path, (flags & O_CREAT) ? "create" : "open", err);
    int e = errno;
    close(dfd);
    errno = e;
    return fd;
}

int fs_unlink(const char *path, mg_error *err) {
    const char *leaf;
    int dfd = fs_parent_open(path, &leaf, err);
    if (dfd < 0) return -1;
    int rc = unlinkat(dfd, leaf, 0);
    if (rc != 0) fs_fail(dfd, leaf, path, "remove", err);
    int e = errno;
    close(dfd);
    errno = e;
    return rc;
}

int fs_rename(const char *from, const char *to, mg_error *err) {
    const char *from_leaf, *to_leaf;
    int src = fs_parent_open(from, &from_leaf, err);
    if (src < 0) return -1;
    int dst = fs_parent_open(to, &to_leaf, err);
    int rc = -1;
    struct stat st;
    if (dst < 0) {
        /* err filled */
    } else if (fstatat(src, from_leaf, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        fs_fail(src, from_leaf, from, "rename", err);
    } else if (S_ISLNK(st.st_mode)) {
        errno = ELOOP;
        mg_error_set(err, 500, "symlink_refused", NULL,
                     "cannot rename %s: it is a symbolic link; refusing to move it", from);
    } else if ((rc = renameat(src, from_leaf, dst, to_leaf)) != 0) {
        fs_fail(dst, to_leaf, to, "rename to", err);
    }
    int e = errno;
    close(src);
    if (dst >= 0) close(dst);
    errno = e;
    return rc;
}

static int fs_write_fd(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Creates the temporary file `tmp` in `dfd` (a leftover of an earlier process with the
 * same name is removed first). The fd, or -1. */
static int fs_tmp_create(int dfd, const char *tmp) {
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST && unlinkat(dfd, tmp, 0) == 0)
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    return fd;
}

/* Writes `data` into the new temporary `tmp` of `dfd` and renames it over `leaf`. */
static int fs_replace_in(int dfd, const char *tmp, const char *leaf, const char *path,
                         const void *data, size_t len, mg_error *err) {
    int fd = fs_tmp_create(dfd, tmp);
    if (fd < 0) return fs_fail(dfd, tmp, path, "create a temporary file for", err);
    if (fs_write_fd(fd, data, len) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlinkat(dfd, tmp, 0);
        return mg_error_set(err, e == ENOSPC ? 507 : 500, "io_error", NULL,
                            "cannot write %s: %s", path, strerror(e));
    }
    close(fd);
    if (renameat(dfd, tmp, dfd, leaf) != 0) {
        int e = errno;
        unlinkat(dfd, tmp, 0);
        return mg_error_set(err, 500, "io_error", NULL, "cannot replace %s: %s", path,
                            strerror(e));
    }
    fs_sync_dirfd(dfd);
    return 0;
}

int fs_write_atomic(const char *path, const void *data, size_t len, mg_error *err) {
    static atomic_uint fs_tmp_counter;
    const char *leaf;
    char tmp[NAME_MAX + 1];
    int dfd = fs_parent_open(path, &leaf, err);
    if (dfd < 0) return -1;
    int rc;
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d.%u", leaf, (int)getpid(),
                 atomic_fetch_add(&fs_tmp_counter, 1)) >= (int)sizeof tmp)
        rc = mg_error_set(err, 500, "path_too_long", NULL, "file name too long: %s", path);
    else
        rc = fs_replace_in(dfd, tmp, leaf, path, data, len, err);
    close(dfd);
    return rc;
}

static atomic_uint fs_atomic_counter;

int fs_atomic_open(const char *path, char *tmp, mg_error *err) {
    const char *leaf;
    int dfd = fs_parent_open(path, &leaf, err);
    if (dfd < 0) return -1;
    char name[NAME_MAX + 1];
    int fd = -1;
    if (snprintf(name, sizeof name, "%s.tmp.%d.%u", leaf, (int)getpid(),
                 atomic_fetch_add(&fs_atomic_counter, 1)) >= (int)sizeof name ||
        snprintf(tmp, PATH_MAX, "%.*s%s", (int)(leaf - path), path, name) >= PATH_MAX)
        mg_error_set(err, 500, "path_too_long", NULL, "file name too long: %s", path);
    else if ((fd = fs_tmp_create(dfd, name)) < 0)
        fs_fail(dfd, name, path, "create a temporary file for", err);
    close(dfd);
    return fd;
}

int fs_atomic_commit(int fd, const char *tmp, const char *path, mg_error *err) {
    if (fsync(fd) != 0) {
        int e = errno;
        fs_atomic_abort(fd, tmp);
        return mg_error_set(err, e == ENOSPC ? 507 : 500, "io_error", NULL,
                            "cannot write %s: %s", path, strerror(e));
    }
    close(fd);
    if (fs_rename(tmp, path, err) != 0) {
        fs_unlink(tmp, NULL);
        return -1;
    }
    return 0;
}

void fs_atomic_abort(int fd, const char *tmp) {
    if (fd >= 0) close(fd);
    fs_unlink(tmp, NULL);
}

char *fs_read_all(const char *path, size_t *len, mg_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        mg_error_set(err, e == ENOENT ? 404 : 500, "io_error", NULL, "cannot open %s: %s",
                     path, strerror(e));
        errno = e;
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (!buf) break;
        if (n == cap) {
            char *bigger = realloc(buf, cap * 2 + 1);
            if (!bigger) { free(buf); buf = NULL; break; }
            buf = bigger;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            mg_error_set(err, 500, "io_error", NULL, "cannot read %s: %s", path, strerror(e));
            errno = e;
            return NULL;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    if (!buf) {
        mg_error_set(err, 500, "out_of_memory", NULL, "out of memory reading %s", path);
        errno = ENOMEM;
        return NULL;
    }
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

int fs_lock(const char *lock_path, int exclusive, mg_error *err) {
    int fd = fs_open(lock_path, O_RDWR | O_CREAT, 0644, err);
    if (fd < 0) return -1;
    while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0) {
        if (errno == EINTR) continue;
        int e = errno;
        close(fd);
        return mg_error_set(err, 500, "io_error", NULL, "cannot lock %s: %s", lock_path,
                            strerror(e));
    }
    return fd;
}

int fs_lock_try(const char *lock_path, int exclusive, mg_error *err) {
    int fd = fs_open(lock_path, O_RDWR | O_CREAT, 0644, err);
    if (fd < 0) return -1;
    while (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
        if (errno == EINTR) continue;
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK) return -2;
        return mg_error_set(err, 500, "io_error", NULL, "cannot lock %s: %s", lock_path,
                            strerror(e));
    }
    return fd;
}

void fs_unlock(int fd) {
    if (fd >= 0) close(fd); /* closing the last fd releases the flock */
}
