/* cleanup.c - finding and removing leftovers (see cleanup.h). One scan of models/llm/,
 * models/.partial/ and the folders writers keep temporary files in builds the items; the
 * removal scans again under the queue lock and removes what it finds. */
#include "cleanup.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fs.h"
#include "id.h"
#include "job.h"
#include "log.h"
#include "registry.h"

#define CLEANUP_TEMP_AGE_S 3600 /* a temporary file this old is a leftover whoever made it */
#define CLEANUP_NAME_MAX 1024
#define CLEANUP_EXTRA_MAX (CLEANUP_NAME_MAX + 8) /* a relative name + ".meta" */

typedef enum {
    CLEANUP_PARTIAL,
    CLEANUP_UNREGISTERED,
    CLEANUP_ORPHAN_META,
    CLEANUP_TEMP
} cleanup_kind;

static const char *const cleanup_kind_names[] = {"partial", "unregistered", "orphan_meta", "temp"};

/* One item: its files (the real names, which may not be UTF-8) and what the answer says. */
typedef struct cleanup_item {
    cleanup_kind kind;
    char rel[CLEANUP_NAME_MAX];   /* relative to the data root */
    char extra[CLEANUP_EXTRA_MAX]; /* a second file removed with it (a partial's meta), or "" */
    long long bytes;
    long long age_s;
} cleanup_item;

typedef struct cleanup_scan_state {
    const mg_config *cfg;
    json_t *registry;   /* borrowed: the registry's "models" */
    json_t *active;     /* borrowed: model ids with unfinished jobs */
    cleanup_item *items;
    size_t n, cap;
    time_t now;
    int failed;         /* out of memory */
} cleanup_scan_state;

long cleanup_temp_pid(const char *name) {
    size_t len = strlen(name);
    const char *t = NULL;
    for (const char *p = strstr(name, ".tmp."); p; p = strstr(p + 1, ".tmp.")) t = p;
    if (t) { /* "<leaf>.tmp.<pid>" or "<leaf>.tmp.<pid>.<n>" */
        const char *d = t + 5;
        size_t k = strspn(d, "0123456789");
        if (k > 0 && k < 10 && (d[k] == '\0' || (d[k] == '.' && d[k + 1] &&
                                                 strspn(d + k + 1, "0123456789") ==
                                                     strlen(d + k + 1))))
            return strtol(d, NULL, 10);
    }
    if (name[0] == '.' && len > 5 && strcmp(name + len - 4, ".tmp") == 0) {
        const char *end = name + len - 4, *d = end; /* ".<job>.json.<pid>.tmp" */
        while (d > name && d[-1] >= '0' && d[-1] <= '9') d--;
        if (d < end && d > name && d[-1] == '.' && end - d < 10) return strtol(d, NULL, 10);
    }
    return 0;
}

/* 1 when the temporary file `name` modified at `mtime` is a leftover: its process is gone,
 * or it is older than any write takes. */
static int cleanup_temp_stale(const char *name, time_t mtime, time_t now) {
    long pid = cleanup_temp_pid(name);
    if (pid <= 0) return 0;
    if (now - mtime > CLEANUP_TEMP_AGE_S) return 1;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static void cleanup_add(cleanup_scan_state *s, cleanup_kind kind, const char *rel,
                        const char *extra, long long bytes, time_t mtime) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        cleanup_item *p = realloc(s->items, cap * sizeof *p);
        if (!p) {
            s->failed = 1;
            return;
        }
        s->items = p;
        s->cap = cap;
    }
    cleanup_item *it = &s->items[s->n++];
    it->kind = kind;
    snprintf(it->rel, sizeof it->rel, "%s", rel);
    snprintf(it->extra, sizeof it->extra, "%s", extra ? extra : "");
    it->bytes = bytes;
    it->age_s = s->now > mtime ? (long long)(s->now - mtime) : 0;
}

/* lstat of root/`dir`/`name` into *st; the relative path into rel. 0, or -1. */
static int cleanup_stat(const cleanup_scan_state *s, const char *dir, const char *name,
                        char rel[CLEANUP_NAME_MAX], struct stat *st) {
    char abs[MG_PATH_MAX];
    if (snprintf(rel, CLEANUP_NAME_MAX, "%s/%s", dir, name) >= CLEANUP_NAME_MAX) return -1;
    if (fs_join(abs, sizeof abs, s->cfg->root, rel) < 0 || lstat(abs, st) != 0) return -1;
    return S_ISREG(st->st_mode) || S_ISLNK(st->st_mode) ? 0 : -1;
}

/* Calls `fn` for each entry of root/`dir` but "." and "..". */
typedef void (*cleanup_entry_fn)(cleanup_scan_state *s, const char *dir, const char *name);

static void cleanup_each(cleanup_scan_state *s, const char *dir, cleanup_entry_fn fn) {
    char path[MG_PATH_MAX];
    struct dirent **list;
    int n = scandir(config_path(s->cfg, path, dir), &list, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0) fn(s, dir, name);
        free(list[i]);
    }
    if (n >= 0) free(list);
}

/* A stale temporary file in any folder. */
static void cleanup_temp_entry(cleanup_scan_state *s, const char *dir, const char *name) {
    char rel[CLEANUP_NAME_MAX];
    struct stat st;
    if (cleanup_stat(s, dir, name, rel, &st) == 0 && cleanup_temp_stale(name, st.st_mtime, s->now))
        cleanup_add(s, CLEANUP_TEMP, rel, NULL, (long long)st.st_size, st.st_mtime);
}

/* 1 when an entry of the registry names models/llm/`name`. */
static int cleanup_registered(const cleanup_scan_state *s, const char *name) {
    const char *key;
    json_t *entry;
    json_object_foreach(s->registry, key, entry) {
        const char *p = json_string_value(json_object_get(entry, "path"));
        if (p && strncmp(p, "models/llm/", 11) == 0 && strcmp(p + 11, name) == 0) return 1;
    }
    return 0;
}

/* A file of models/llm/: a stale temporary one, or an unregistered model file. */
static void cleanup_llm_entry(cleanup_scan_state *s, const char *dir, const char *name) {
    char rel[CLEANUP_NAME_MAX], id[ID_MODEL_MAX + 1];
    struct stat st;
    if (cleanup_stat(s, dir, name, rel, &st) < 0) return;
    if (cleanup_temp_pid(name) > 0) {
        if (cleanup_temp_stale(name, st.st_mtime, s->now))
            cleanup_add(s, CLEANUP_TEMP, rel, NULL, (long long)st.st_size, st.st_mtime);
        return;
    }
    if (name[0] == '.' || cleanup_registered(s, name)) return;
    if (registry_stem(name, id) == 0 && json_object_get(s->active, id)) return;
    cleanup_add(s, CLEANUP_UNREGISTERED, rel, NULL, (long long)st.st_size, st.st_mtime);
}

/* 1 when `name` ends with `suffix`. */
static int cleanup_ends(const char *name, const char *suffix) {
    size_t n = strlen(name), k = strlen(suffix);
    return n > k && strcmp(name + n - k, suffix) == 0;
}

/* A partial download and its meta. */
static void cleanup_part(cleanup_scan_state *s, const char *dir, const char *name,
                         const char *rel, const struct stat *st) {
    char id[ID_MODEL_MAX + 1], meta[CLEANUP_EXTRA_MAX], abs[MG_PATH_MAX];
    struct stat ms;
    if (registry_partial_id(name, id) == 0 && json_object_get(s->active, id)) return;
    long long bytes = (long long)st->st_size;
    snprintf(meta, sizeof meta, "%s/%s.meta", dir, name);
    int has_meta = fs_join(abs, sizeof abs, s->cfg->root, meta) == 0 && lstat(abs, &ms) == 0 &&
                   S_ISREG(ms.st_mode);
    if (has_meta) bytes += (long long)ms.st_size;
    cleanup_add(s, registry_partial_id(name, id) == 0 ? CLEANUP_PARTIAL : CLEANUP_TEMP, rel,
                has_meta ? meta : NULL, bytes, st->st_mtime);
}

/* A meta without its partial. */
static void cleanup_meta(cleanup_scan_state *s, const char *dir, const char *name,
                         const char *rel, const struct stat *st) {
    char part[NAME_MAX + 1], id[ID_MODEL_MAX + 1], abs[MG_PATH_MAX], prel[CLEANUP_NAME_MAX];
    struct stat ps;
    snprintf(part, sizeof part, "%.*s", (int)(strlen(name) - 5), name);
    int known = registry_partial_id(part, id) == 0;
    if (known && json_object_get(s->active, id)) return;
    if (snprintf(prel, sizeof prel, "%s/%s", dir, part) < (int)sizeof prel &&
        fs_join(abs, sizeof abs, s->cfg->root, prel) == 0 && lstat(abs, &ps) == 0)
        return; /* counted with its partial */
    cleanup_add(s, known ? CLEANUP_ORPHAN_META : CLEANUP_TEMP, rel, NULL, (long long)st->st_size,
                st->st_mtime);
}

/* A file of models/.partial/. */
static void cleanup_partial_entry(cleanup_scan_state *s, const char *dir, const char *name) {
    char rel[CLEANUP_NAME_MAX];
    struct stat st;
    if (cleanup_stat(s, dir, name, rel, &st) < 0) return;
    if (cleanup_temp_pid(name) > 0) {
        if (cleanup_temp_stale(name, st.st_mtime, s->now))
            cleanup_add(s, CLEANUP_TEMP, rel, NULL, (long long)st.st_size, st.st_mtime);
    } else if (cleanup_ends(name, ".part") && S_ISREG(st.st_mode)) {
        cleanup_part(s, dir, name, rel, &st);
    } else if (cleanup_ends(name, ".part.meta") && S_ISREG(st.st_mode)) {
        cleanup_meta(s, dir, name, rel, &st);
    } else {
        cleanup_add(s, CLEANUP_TEMP, rel, NULL, (long long)st.st_size, st.st_mtime);
    }
}

/* Fills `s` with the items of the data root, `active` (borrowed) the models with jobs. */
static int cleanup_collect(cleanup_scan_state *s, const mg_config *cfg, json_t *active,
                           mg_error *err) {
    memset(s, 0, sizeof *s);
    json_t *doc = registry_load(cfg, err);
    if (!doc) return -1;
    s->cfg = cfg;
    s->registry = json_object_get(doc, "models");
    s->active = active;
    s->now = time(NULL);
    cleanup_each(s, "models/llm", cleanup_llm_entry);
    cleanup_each(s, "models/.partial", cleanup_partial_entry);
    static const char *const temp_dirs[] = {"config", "cache", "jobs"};
    for (size_t i = 0; i < sizeof temp_dirs / sizeof *temp_dirs; i++)
        cleanup_each(s, temp_dirs[i], cleanup_temp_entry);
    json_decref(doc);
    if (s->failed) return mg_error_set(err, 500, "internal_error", NULL, "out of memory");
    return 0;
}

/* The answer's view of `it`: {"kind", "path", "bytes", "age_s"}. New reference. */
static json_t *cleanup_item_json(const cleanup_item *it) {
    char shown[4 * CLEANUP_NAME_MAX];
    registry_utf8(it->rel, shown, sizeof shown);
    return json_pack("{s:s,s:s,s:I,s:I}", "kind", cleanup_kind_names[it->kind], "path", shown,
                     "bytes", (json_int_t)it->bytes, "age_s", (json_int_t)it->age_s);
}

json_t *cleanup_scan(const mg_config *cfg, mg_error *err) {
    cleanup_scan_state s;
    json_t *active = job_active_models(cfg);
    int rc = cleanup_collect(&s, cfg, active, err);
    json_decref(active);
    if (rc < 0) {
        free(s.items);
        return NULL;
    }
    json_t *items = json_array();
    long long bytes = 0;
    for (size_t i = 0; i < s.n; i++) {
        json_array_append_new(items, cleanup_item_json(&s.items[i]));
        bytes += s.items[i].bytes;
    }
    free(s.items);
    return json_pack("{s:o,s:I}", "items", items, "bytes", (json_int_t)bytes);
}

/* ---- removal ---- */

typedef struct cleanup_run_state {
    const mg_config *cfg;
    int include_unregistered;
    json_t *removed, *failed;
    long long bytes;
    mg_error err;
    int rc;
} cleanup_run_state;

/* Removes root/`rel`. 0, or -1 with a message in err. */
static int cleanup_unlink(const mg_config *cfg, const char *rel, mg_error *err) {
    char abs[MG_PATH_MAX];
    if (fs_join(abs, sizeof abs, cfg->root, rel) < 0)
        return mg_error_set(err, 500, "io_error", NULL, "path too long");
    if (fs_unlink(abs, err) < 0 && errno != ENOENT) return -1;
    fs_sync_parent(abs);
    return 0;
}

static void cleanup_remove_item(cleanup_run_state *r, const cleanup_item *it) {
    mg_error err;
    if (cleanup_unlink(r->cfg, it->rel, &err) < 0 ||
        (it->extra[0] && cleanup_unlink(r->cfg, it->extra, &err) < 0)) {
        json_t *j = cleanup_item_json(it);
        json_object_set_new(j, "error", json_string(err.message));
        json_array_append_new(r->failed, j);
        log_warn("cleanup: %s", err.message);
        return;
    }
    json_array_append_new(r->removed, cleanup_item_json(it));
    r->bytes += it->bytes;
    log_info("cleanup: removed %s %s (%lld bytes)", cleanup_kind_names[it->kind], it->rel,
             it->bytes);
}

/* job_with_queue_lock callback: scans with the jobs as they are and removes. */
static void cleanup_locked(void *ctx, json_t *active) {
    cleanup_run_state *r = ctx;
    cleanup_scan_state s;
    r->rc = cleanup_collect(&s, r->cfg, active, &r->err);
    for (size_t i = 0; r->rc == 0 && i < s.n; i++)
        if (s.items[i].kind != CLEANUP_UNREGISTERED || r->include_unregistered)
            cleanup_remove_item(r, &s.items[i]);
    free(s.items);
}

json_t *cleanup_run(const mg_config *cfg, int include_unregistered, mg_error *err) {
    cleanup_run_state r = {cfg, include_unregistered, json_array(), json_array(), 0, {0}, 0};
    mg_error_clear(&r.err);
    if (job_with_queue_lock(cfg, cleanup_locked, &r, err) < 0 || r.rc < 0) {
        if (r.rc < 0 && err) *err = r.err;
        json_decref(r.removed);
        json_decref(r.failed);
        return NULL;
    }
    return json_pack("{s:o,s:I,s:o}", "items", r.removed, "bytes", (json_int_t)r.bytes,
                     "failed", r.failed);
}
