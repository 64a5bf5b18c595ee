/* fs.c - durable file operations: atomic replace, flock, mkdir -p, whole-file reads. */
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

int fs_mkdirs(const char *path, mode_t mode, mg_error *err) {
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return mg_error_set(err, 500, "path_too_long", NULL, "path too long: %s", path);
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

int fs_write_atomic(const char *path, const void *data, size_t len, mg_error *err) {
    static atomic_uint fs_tmp_counter;
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d.%u", path, (int)getpid(),
                 atomic_fetch_add(&fs_tmp_counter, 1)) >= (int)sizeof tmp)
        return mg_error_set(err, 500, "path_too_long", NULL, "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return mg_error_set(err, 500, "io_error", NULL, "cannot create %s: %s", tmp,
                            strerror(errno));
    if (fs_write_fd(fd, data, len) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return mg_error_set(err, e == ENOSPC ? 507 : 500, "io_error", NULL,
                            "cannot write %s: %s", path, strerror(e));
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return mg_error_set(err, 500, "io_error", NULL, "cannot replace %s: %s", path,
                            strerror(e));
    }
    fs_sync_parent(path);
    return 0;
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
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return mg_error_set(err, 500, "io_error", NULL, "cannot open lock %s: %s", lock_path,
                            strerror(errno));
    while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0) {
        if (errno == EINTR) continue;
        int e = errno;
        close(fd);
        return mg_error_set(err, 500, "io_error", NULL, "cannot lock %s: %s", lock_path,
                            strerror(e));
    }
    return fd;
}

void fs_unlock(int fd) {
    if (fd >= 0) close(fd); /* closing the last fd releases the flock */
}
