/* partial.c - the hidden partial file of a download and its meta (see partial.h). */
#include "partial.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"

int partial_ext_valid(const char *ext) {
    size_t n = ext ? strlen(ext) : 0;
    if (n < 2 || n > 15 || ext[0] != '.') return 0;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)ext[i])) return 0;
    return 1;
}

void partial_paths(partial *p, const mg_config *cfg, const char *id, const char *ext) {
    char rel[MG_PATH_MAX];
    memset(p, 0, sizeof *p);
    p->fd = -1;
    snprintf(rel, sizeof rel, "models/.partial/%s%s.part", id, ext);
    config_path(cfg, p->part, rel);
    snprintf(rel, sizeof rel, "models/.partial/%s%s.part.meta", id, ext);
    config_path(cfg, p->meta, rel);
    snprintf(p->rel, sizeof p->rel, "models/llm/%s%s", id, ext);
    config_path(cfg, p->final, p->rel);
}

/* 1 when the meta file names this url and checksum. */
static int partial_meta_matches(const partial *p, const char *url, const char *checksum) {
    json_t *meta = json_load_file(p->meta, 0, NULL);
    const char *u = json_string_value(json_object_get(meta, "url"));
    const char *c = json_string_value(json_object_get(meta, "checksum"));
    int same = u && c && strcmp(u, url) == 0 && strcmp(c, checksum) == 0;
    json_decref(meta);
    return same;
}

static int partial_meta_write(const partial *p, const char *url, const char *checksum,
                              char *why, size_t n) {
    json_t *meta = json_pack("{s:s,s:s}", "url", url, "checksum", checksum);
    char *text = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
    json_decref(meta);
    mg_error err;
    int rc = text ? fs_write_atomic(p->meta, text, strlen(text), &err) : -1;
    if (rc < 0) snprintf(why, n, "cannot write %s: %s", p->meta, text ? err.message : "no memory");
    free(text);
    return rc;
}

int partial_open(partial *p, const char *url, const char *checksum, char *why, size_t n) {
    char dir[MG_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", p->part);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    mg_error err;
    if (fs_mkdirs(dir, 0755, &err) < 0) {
        snprintf(why, n, "%s", err.message);
        return -1;
    }
    if (!partial_meta_matches(p, url, checksum)) {
        fs_unlink(p->part, NULL);
        if (partial_meta_write(p, url, checksum, why, n) < 0) return -1;
    }
    p->fd = fs_open(p->part, O_RDWR | O_CREAT, 0644, &err);
    if (p->fd < 0 && errno == ELOOP) {
        /* a link planted where the partial goes: removed, never followed */
        log_warn("%s; removing the link and starting the download afresh", err.message);
        if (fs_unlink(p->part, &err) == 0)
            p->fd = fs_open(p->part, O_RDWR | O_CREAT, 0644, &err);
    }
    struct stat st;
    if (p->fd < 0 || fstat(p->fd, &st) < 0) {
        snprintf(why, n, "%s", p->fd < 0 ? err.message : strerror(errno));
        partial_close(p);
        return -1;
    }
    p->size = st.st_size;
    return 0;
}

int partial_truncate(partial *p, char *why, size_t n) {
    if (ftruncate(p->fd, 0) < 0) {
        snprintf(why, n, "cannot truncate %s: %s", p->part, strerror(errno));
        return -1;
    }
    p->size = 0;
    return 0;
}

void partial_close(partial *p) {
    if (p->fd >= 0) close(p->fd);
    p->fd = -1;
}

void partial_discard(partial *p) {
    partial_close(p);
    fs_unlink(p->part, NULL);
    fs_unlink(p->meta, NULL);
}

int partial_commit(partial *p, char *why, size_t n) {
    if (fsync(p->fd) < 0) {
        snprintf(why, n, "cannot write %s: %s", p->part,
                 errno == ENOSPC ? "disk full" : strerror(errno));
        partial_discard(p);
        return -1;
    }
    partial_close(p);
    mg_error err;
    if (fs_rename(p->part, p->final, &err) < 0) {
        snprintf(why, n, "cannot move the download into place: %s", err.message);
        partial_discard(p);
        return -1;
    }
    fs_sync_parent(p->final);
    fs_unlink(p->meta, NULL);
    return 0;
}
