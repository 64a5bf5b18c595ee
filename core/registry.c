/* registry.c - config/models.json, the registry of installed models, and the view that
 * joins it with what really lies in models/llm/ (installed, missing, unregistered).
 *
 * Reads hold a shared flock on config/.models.lock, read-modify-write cycles an exclusive
 * one, and every write goes through fs_write_atomic. A registry file that is not JSON is
 * never overwritten: every call that would write it fails with "registry_corrupt". */
#include "registry.h"

#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "id.h"
#include "job.h"
#include "log.h"

#define REGISTRY_FILE "config/models.json"
#define REGISTRY_LOCK "config/.models.lock"
#define REGISTRY_DIR "models/llm"
#define REGISTRY_PREFIX "models/llm/"

/* Takes the registry lock (shared or exclusive). Returns the fd, or -1 and err. */
static int registry_lock(const mg_config *cfg, int exclusive, mg_error *err) {
    char path[MG_PATH_MAX];
    char dir[MG_PATH_MAX];
    if (fs_mkdirs(config_path(cfg, dir, "config"), 0755, err) < 0) return -1;
    return fs_lock(config_path(cfg, path, REGISTRY_LOCK), exclusive, err);
}

/* Reads and parses the registry file; the caller holds the lock. Returns a new reference
 * ({"models": {}} when the file is absent), or NULL and err (see registry_parse). */
static json_t *registry_read(const mg_config *cfg, mg_error *err) {
    char path[MG_PATH_MAX];
    config_path(cfg, path, REGISTRY_FILE);
    size_t len = 0;
    mg_error rerr;
    char *text = fs_read_all(path, &len, &rerr);
    if (!text) {
        int e = errno;
        if (e == ENOENT) return json_pack("{s:{}}", "models");
        mg_error_set(err, 500, "registry_unreadable", NULL, "cannot read the registry %s: %s",
                     path, rerr.message);
        return NULL;
    }
    json_t *doc = registry_parse(text, len, path, err);
    free(text);
    return doc;
}

json_t *registry_parse(const char *text, size_t len, const char *source, mg_error *err) {
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, 0, &jerr);
    if (!doc) {
        mg_error_set(err, 500, "registry_corrupt", NULL,
                     "%s: not valid JSON at line %d, column %d: %s (the file was left as it "
                     "is; repair or remove it)",
                     source, jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    json_t *models = json_is_object(doc) ? json_object_get(doc, "models") : NULL;
    if (json_is_object(doc) && !models) {
        json_object_set_new(doc, "models", json_object());
        return doc;
    }
    if (!json_is_object(models)) {
        json_decref(doc);
        mg_error_set(err, 500, "registry_corrupt", NULL,
                     "%s: expected an object {\"models\": {...}} (the file was left as it "
                     "is; repair or remove it)",
                     source);
        return NULL;
    }
    return doc;
}

/* Writes `doc` (borrowed) atomically; the caller holds the exclusive lock. 0, or -1. */
static int registry_write(const mg_config *cfg, json_t *doc, mg_error *err) {
    char path[MG_PATH_MAX];
    config_path(cfg, path, REGISTRY_FILE);
    char *text = json_dumps(doc, JSON_INDENT(2));
    if (!text) return mg_error_set(err, 500, "internal_error", NULL, "out of memory");
    size_t len = strlen(text);
    char *buf = realloc(text, len + 2);
    if (!buf) {
        free(text);
        return mg_error_set(err, 500, "internal_error", NULL, "out of memory");
    }
    buf[len] = '\n';
    buf[len + 1] = '\0';
    int rc = fs_write_atomic(path, buf, len + 1, err);
    free(buf);
    return rc;
}

/* 1 when `name` is a plain file name a model may have in models/llm/: not empty, no "/",
 * no leading dot (partial downloads and temporary files are dot-files or live elsewhere). */
static int registry_name_ok(const char *name, size_t len) {
    if (len == 0 || name[0] == '.' || strlen(name) != len) return 0;
    return strchr(name, '/') == NULL;
}

int registry_entry_file(const mg_config *cfg, json_t *entry, char out[MG_PATH_MAX]) {
    json_t *p = json_object_get(entry, "path");
    if (!json_is_string(p)) return 0;
    const char *rel = json_string_value(p);
    size_t len = json_string_length(p);
    size_t plen = strlen(REGISTRY_PREFIX);
    if (len <= plen || strncmp(rel, REGISTRY_PREFIX, plen) != 0) return 0;
    if (!registry_name_ok(rel + plen, len - plen)) return 0;
    return fs_join(out, MG_PATH_MAX, cfg->root, rel) == 0;
}

/* 1 when `path` is (or links to) a regular file; its size in *size (may be NULL). */
static int registry_file_exists(const char *path, long long *size) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    if (size) *size = (long long)st.st_size;
    return 1;
}

int registry_stem(const char *name, char out[ID_MODEL_MAX + 1]) {
    const char *dot = strrchr(name, '.');
    size_t len = dot && dot != name ? (size_t)(dot - name) : strlen(name);
    if (!id_model_valid(name, len)) return -1;
    memcpy(out, name, len);
    out[len] = '\0';
    return 0;
}

/* 1 when some entry of `models` (borrowed) has the path models/llm/`name`. */
static int registry_path_registered(json_t *models, const char *name) {
    const char *key;
    json_t *entry;
    size_t plen = strlen(REGISTRY_PREFIX);
    json_object_foreach(models, key, entry) {
        const char *p = json_string_value(json_object_get(entry, "path"));
        if (p && strncmp(p, REGISTRY_PREFIX, plen) == 0 && strcmp(p + plen, name) == 0)
            return 1;
    }
    return 0;
}

/* Lists the plain files of models/llm/ in name order. Returns the count and a malloc'd
 * array in *out (free each entry and the array), or -1 when the folder cannot be read
 * (an absent folder counts as empty). */
static int registry_scan(const mg_config *cfg, struct dirent ***out) {
    char dir[MG_PATH_MAX];
    config_path(cfg, dir, REGISTRY_DIR);
    int n = scandir(dir, out, NULL, alphasort);
    if (n < 0 && errno == ENOENT) {
        *out = NULL;
        return 0;
    }
    return n;
}

static void registry_scan_free(struct dirent **list, int n) {
    for (int i = 0; i < n; i++) free(list[i]);
    free(list);
}

int registry_utf8(const char *name, char *out, size_t n) {
    const unsigned char *p = (const unsigned char *)name;
    size_t o = 0;
    int valid = 1;
    while (*p && o + 4 < n) {
        int len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3
                  : (*p & 0xf8) == 0xf0 ? 4 : 0;
        int ok = len > 0 && !(len == 2 && *p < 0xc2) && !(len == 4 && *p > 0xf4);
        for (int i = 1; ok && i < len; i++) ok = (p[i] & 0xc0) == 0x80;
        if (ok && len == 3) ok = !(*p == 0xe0 && p[1] < 0xa0) && !(*p == 0xed && p[1] >= 0xa0);
        if (ok && len == 4) ok = !(*p == 0xf0 && p[1] < 0x90) && !(*p == 0xf4 && p[1] >= 0x90);
        if (ok) {
            memcpy(out + o, p, (size_t)len);
            o += (size_t)len;
            p += len;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3); /* U+FFFD */
            o += 3;
            p++;
            valid = 0;
        }
    }
    out[o] = '\0';
    return valid && !*p;
}

/* A list item without a registry entry (an unregistered file or a partial download):
 * every field of an entry's item, null where there is nothing to say. New reference. */
static json_t *registry_bare_item(const char *key, const char *status, const char *path,
                                  long long size, int id_valid) {
    return json_pack("{s:s,s:n,s:s,s:I,s:n,s:n,s:b,s:s,s:n,s:n,s:n,s:b}", "id", key, "name",
                     "path", path, "size", (json_int_t)size, "installedAt", "backend", "active",
                     0, "status", status, "checksum", "gallery", "verifiedAt", "id_valid",
                     id_valid);
}

/* The item of the entry `key` (borrowed `entry`) with `status`: the entry's fields the
 * answer shows, each present (null when the entry lacks it). New reference. */
static json_t *registry_entry_item(const char *key, json_t *entry, const char *status) {
    static const char *const fields[] = {"name",     "path",    "size",       "installedAt",
                                         "backend",  "active",  "checksum",   "gallery",
                                         "verifiedAt"};
    json_t *item = json_pack("{s:s}", "id", key);
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        json_t *v = json_object_get(entry, fields[i]);
        json_object_set_new(item, fields[i], v ? json_deep_copy(v) : json_null());
    }
    if (!json_is_boolean(json_object_get(item, "active")))
        json_object_set_new(item, "active", json_false());
    json_object_set_new(item, "status", json_string(status));
    json_object_set_new(item, "id_valid", json_true());
    return item;
}

/* The key of an unregistered file `name` in `out_models`: its stem when that is a valid id
 * not used yet, else the whole (displayable) name when not used yet. 1 and *id_valid, or 0
 * when both are taken. */
static int registry_unregistered_key(const char *name, json_t *out_models, char *key, size_t n,
                                     int *id_valid) {
    char stem[ID_MODEL_MAX + 1];
    if (registry_stem(name, stem) == 0 && !json_object_get(out_models, stem)) {
        snprintf(key, n, "%s", stem);
        *id_valid = 1;
        return 1;
    }
    registry_utf8(name, key, n);
    *id_valid = id_model_valid(key, strlen(key));
    return !json_object_get(out_models, key);
}

/* Adds to `out_models` an "unregistered" entry for every file of models/llm/ that no entry
 * of `models` names. */
static void registry_add_unregistered(const mg_config *cfg, json_t *models, json_t *out_models) {
    struct dirent **list;
    int n = registry_scan(cfg, &list);
    if (n < 0) {
        log_warn("registry: cannot list %s/%s: %s", cfg->root, REGISTRY_DIR, strerror(errno));
        return;
    }
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        char key[4 * 256], shown[4 * 256], rel[MG_PATH_MAX], abs[MG_PATH_MAX];
        long long size = 0;
        int id_valid = 0;
        if (!registry_name_ok(name, strlen(name)) || registry_path_registered(models, name))
            continue;
        snprintf(rel, sizeof rel, "%s%s", REGISTRY_PREFIX, name);
        if (fs_join(abs, sizeof abs, cfg->root, rel) < 0 || !registry_file_exists(abs, &size))
            continue;
        if (!registry_unregistered_key(name, out_models, key, sizeof key, &id_valid)) continue;
        registry_utf8(rel, shown, sizeof shown);
        json_object_set_new(out_models, key,
                            registry_bare_item(key, "unregistered", shown, size, id_valid));
    }
    registry_scan_free(list, n);
}

int registry_partial_id(const char *name, char out[ID_MODEL_MAX + 1]) {
    size_t len = strlen(name);
    char base[NAME_MAX + 1];
    if (len <= 5 || strcmp(name + len - 5, ".part") != 0 || name[0] == '.') return -1;
    snprintf(base, sizeof base, "%.*s", (int)(len - 5), name);
    return registry_stem(base, out);
}

/* Adds a "partial" entry for each partial download whose model has no key in `out_models`
 * and no unfinished job in `active` (borrowed, may be NULL). */
static void registry_add_partials(const mg_config *cfg, json_t *active, json_t *out_models) {
    char dir[MG_PATH_MAX];
    struct dirent **list;
    int n = scandir(config_path(cfg, dir, "models/.partial"), &list, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        char id[ID_MODEL_MAX + 1], rel[MG_PATH_MAX], abs[MG_PATH_MAX];
        long long size = 0;
        snprintf(rel, sizeof rel, "models/.partial/%s", name);
        if (registry_partial_id(name, id) == 0 && !json_object_get(out_models, id) &&
            !json_object_get(active, id) && fs_join(abs, sizeof abs, cfg->root, rel) == 0 &&
            registry_file_exists(abs, &size))
            json_object_set_new(out_models, id, registry_bare_item(id, "partial", rel, size, 1));
        free(list[i]);
    }
    if (n >= 0) free(list);
}

json_t *registry_load(const mg_config *cfg, mg_error *err) {
    int fd = registry_lock(cfg, 0, err);
    if (fd < 0) return NULL;
    json_t *doc = registry_read(cfg, err);
    fs_unlock(fd);
    return doc;
}

int registry_add(const mg_config *cfg, const char *id, json_t *entry, mg_error *err) {
    if (!id || !id_model_valid(id, strlen(id)))
        return mg_error_set(err, 400, "invalid_model_id", "id", "invalid model id");
    if (!json_is_object(entry))
        return mg_error_set(err, 500, "internal_error", NULL, "registry entry is not an object");
    int fd = registry_lock(cfg, 1, err);
    if (fd < 0) return -1;
    int rc = -1;
    json_t *doc = registry_read(cfg, err);
    if (doc) {
        json_object_set_new(json_object_get(doc, "models"), id, json_deep_copy(entry));
        rc = registry_write(cfg, doc, err);
        json_decref(doc);
    }
    fs_unlock(fd);
    return rc;
}

/* Unlinks the regular file `path` and syncs its folder; 1 when it was removed. */
/* 1 when `path` is a regular file or a symbolic link, which is never followed: a link is
 * removed whether or not its target exists or is readable by this user. */
static int registry_removable(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0 && (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode));
}

static int registry_unlink(const char *path) {
    if (!registry_removable(path)) return 0;
    mg_error err;
    if (fs_unlink(path, &err) != 0) {
        log_warn("registry: %s", err.message);
        return 0;
    }
    fs_sync_parent(path);
    return 1;
}

/* Removes every model file of models/llm/ whose stem is `id`; 1 when one was removed. */
static int registry_unlink_stem(const mg_config *cfg, const char *id) {
    struct dirent **list;
    int n = registry_scan(cfg, &list);
    int removed = 0;
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        char stem[ID_MODEL_MAX + 1], rel[MG_PATH_MAX], abs[MG_PATH_MAX];
        if (!registry_name_ok(name, strlen(name)) || registry_stem(name, stem) < 0) continue;
        if (strcmp(stem, id) != 0) continue;
        snprintf(rel, sizeof rel, "%s%s", REGISTRY_PREFIX, name);
        if (fs_join(abs, sizeof abs, cfg->root, rel) == 0 && registry_unlink(abs)) removed = 1;
    }
    if (n >= 0) registry_scan_free(list, n);
    return removed;
}

/* Removes the entry `id` of `doc` (borrowed), writes the registry, then removes the file the
 * entry named when it lies in models/llm/. The caller holds the exclusive lock. Returns 1
 * when a file was removed, 0 when not, -1 and err when the registry could not be written. */
static int registry_remove_entry(const mg_config *cfg, json_t *doc, const char *id,
                                 mg_error *err) {
    json_t *models = json_object_get(doc, "models");
    char abs[MG_PATH_MAX];
    int has_file = registry_entry_file(cfg, json_object_get(models, id), abs);
    json_object_del(models, id);
    if (registry_write(cfg, doc, err) < 0) return -1;
    return has_file && registry_unlink(abs);
}

int registry_remove(const mg_config *cfg, const char *id, int *entry_removed,
                    int *file_removed, mg_error *err) {
    int had_entry = 0, had_file = 0;
    if (entry_removed) *entry_removed = 0;
    if (file_removed) *file_removed = 0;
    if (!id || !id_model_valid(id, strlen(id)))
        return mg_error_set(err, 400, "invalid_model_id", "id", "invalid model id");
    int fd = registry_lock(cfg, 1, err);
    if (fd < 0) return -1;
    json_t *doc = registry_read(cfg, err);
    if (doc && json_object_get(json_object_get(doc, "models"), id)) {
        had_entry = 1;
        had_file = registry_remove_entry(cfg, doc, id, err);
    } else if (doc) {
        had_file = registry_unlink_stem(cfg, id);
    }
    fs_unlock(fd);
    if (!doc || had_file < 0) {
        json_decref(doc);
        return -1;
    }
    json_decref(doc);
    if (entry_removed) *entry_removed = had_entry;
    if (file_removed) *file_removed = had_file;
    if (!had_entry && !had_file)
        return mg_error_set(err, 404, "not_found", "id",
                            "model '%s' is neither registered nor present in models/llm", id);
    return 0;
}

int registry_remove_partial(const mg_config *cfg, const char *id) {
    char dir[MG_PATH_MAX];
    struct dirent **list;
    int n = scandir(config_path(cfg, dir, "models/.partial"), &list, NULL, alphasort);
    int removed = 0;
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        char got[ID_MODEL_MAX + 1], base[NAME_MAX + 1], abs[MG_PATH_MAX];
        size_t len = strlen(name);
        int meta = len > 5 && strcmp(name + len - 5, ".meta") == 0;
        snprintf(base, sizeof base, "%.*s", (int)(meta ? len - 5 : len), name);
        if (registry_partial_id(base, got) == 0 && strcmp(got, id) == 0 &&
            snprintf(abs, sizeof abs, "%s/%s", dir, name) < (int)sizeof abs &&
            fs_unlink(abs, NULL) == 0) {
            removed |= !meta;
            fs_sync_parent(abs);
        }
        free(list[i]);
    }
    if (n >= 0) free(list);
    return removed;
}

const char *registry_entry_status(json_t *entry, const char *abs) {
    long long size = 0;
    if (!abs || !registry_file_exists(abs, &size)) return "missing";
    json_t *want = json_object_get(entry, "size");
    if (json_is_true(json_object_get(entry, "corrupt"))) return "corrupt";
    if (json_is_integer(want) && json_integer_value(want) != size) return "corrupt";
    return "installed";
}

json_t *registry_list(const mg_config *cfg, json_t *active, mg_error *err) {
    json_t *doc = registry_load(cfg, err);
    if (!doc) return NULL;
    json_t *models = json_object_get(doc, "models");
    json_t *out_models = json_object();
    const char *key;
    json_t *entry;
    json_object_foreach(models, key, entry) {
        if (!json_is_object(entry)) continue;
        char abs[MG_PATH_MAX];
        int named = registry_entry_file(cfg, entry, abs);
        const char *status = registry_entry_status(entry, named ? abs : NULL);
        json_object_set_new(out_models, key, registry_entry_item(key, entry, status));
    }
    registry_add_unregistered(cfg, models, out_models);
    registry_add_partials(cfg, active, out_models);
    json_decref(doc);
    return json_pack("{s:o}", "models", out_models);
}

json_t *registry_get(const mg_config *cfg, const char *id, mg_error *err) {
    json_t *doc = registry_load(cfg, err);
    if (!doc) return NULL;
    json_t *entry = json_object_get(json_object_get(doc, "models"), id);
    json_t *copy = json_is_object(entry) ? json_deep_copy(entry) : NULL;
    json_decref(doc);
    if (!copy)
        mg_error_set(err, 404, "not_installed", "id", "%s is not installed (no registry entry)",
                     id);
    return copy;
}

/* Changes the entry `id` through `fn(cfg, old, models, ctx, err)` under the exclusive lock:
 * `old` is the entry (borrowed; NULL when there is none), `models` the registry's object to
 * change; fn returns 0 to write the registry, or -1 and err. 0, or -1 and err. */
typedef int (*registry_edit_fn)(const mg_config *cfg, json_t *old, json_t *models, void *ctx,
                                mg_error *err);

static int registry_edit(const mg_config *cfg, const char *id, registry_edit_fn fn, void *ctx,
                         mg_error *err) {
    if (!id || !id_model_valid(id, strlen(id)))
        return mg_error_set(err, 400, "invalid_model_id", "id", "invalid model id");
    int fd = registry_lock(cfg, 1, err);
    if (fd < 0) return -1;
    int rc = -1;
    json_t *doc = registry_read(cfg, err);
    if (doc) {
        json_t *models = json_object_get(doc, "models");
        json_t *old = json_object_get(models, id);
        rc = fn(cfg, json_is_object(old) ? old : NULL, models, ctx, err);
        if (rc == 0) rc = registry_write(cfg, doc, err);
        json_decref(doc);
    }
    fs_unlock(fd);
    return rc;
}

struct registry_replace_ctx {
    const char *id;
    json_t *entry;
    char old_file[MG_PATH_MAX]; /* the earlier entry's file, when it is another one */
};

static int registry_replace_fn(const mg_config *cfg, json_t *old, json_t *models, void *ctx,
                               mg_error *err) {
    struct registry_replace_ctx *c = ctx;
    char now_file[MG_PATH_MAX];
    json_t *copy = json_deep_copy(c->entry);
    if (!copy) return mg_error_set(err, 500, "internal_error", NULL, "out of memory");
    if (old && json_object_get(old, "active"))
        json_object_set(copy, "active", json_object_get(old, "active"));
    if (old && registry_entry_file(cfg, old, c->old_file) &&
        registry_entry_file(cfg, copy, now_file) && strcmp(c->old_file, now_file) == 0)
        c->old_file[0] = '\0';
    json_object_set_new(models, c->id, copy);
    return 0;
}

int registry_replace(const mg_config *cfg, const char *id, json_t *entry, mg_error *err) {
    struct registry_replace_ctx c = {id, entry, ""};
    if (!json_is_object(entry))
        return mg_error_set(err, 500, "internal_error", NULL, "registry entry is not an object");
    if (registry_edit(cfg, id, registry_replace_fn, &c, err) < 0) return -1;
    if (c.old_file[0] && registry_unlink(c.old_file))
        log_info("registry: %s replaced by its update; removed %s", id, c.old_file);
    return 0;
}

static int registry_verified_fn(const mg_config *cfg, json_t *old, json_t *models, void *ctx,
                                mg_error *err) {
    (void)cfg;
    (void)models;
    char now[40];
    if (!old) return mg_error_set(err, 404, "not_installed", "id", "the model is not installed");
    job_now_iso(now);
    json_object_set_new(old, "verifiedAt", json_string(now));
    if (*(int *)ctx)
        json_object_del(old, "corrupt");
    else
        json_object_set_new(old, "corrupt", json_true());
    return 0;
}

int registry_set_verified(const mg_config *cfg, const char *id, int ok, mg_error *err) {
    return registry_edit(cfg, id, registry_verified_fn, &ok, err);
}

int registry_is_installed(const mg_config *cfg, const char *id) {
    mg_error err;
    json_t *doc = registry_load(cfg, &err);
    if (!doc) return 0;
    json_t *entry = json_object_get(json_object_get(doc, "models"), id);
    char abs[MG_PATH_MAX];
    int ok = json_is_object(entry) && registry_entry_file(cfg, entry, abs) &&
             registry_file_exists(abs, NULL);
    json_decref(doc);
    return ok;
}
