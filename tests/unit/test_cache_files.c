/* test_cache_files.c - the files derived from the cache (its gzip copy and its search index):
 * written with it, recorded in the meta, derived again when missing, changed or corrupted
 * (without rewriting the cache), and repaired on a reader's request under the cache lock. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "config.h"
#include "fs.h"
#include "gallery.h"
#include "search.h"
#include "unit.h"

static const char *data_path(const char *name) {
    static char path[1024];
    const char *dir = getenv("MG_TEST_DATA");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/data", name);
    return path;
}

typedef struct env {
    mg_config cfg;
    char source[MG_PATH_MAX], cache[MG_PATH_MAX], index[MG_PATH_MAX], gzip[MG_PATH_MAX];
    char lock[MG_PATH_MAX];
} env;

static void env_init(env *e, const char *sub) {
    char root[600];
    snprintf(root, sizeof root, "%s/%s", unit_tmpdir(), sub);
    mg_error err;
    CHECK_INT(config_load(&e->cfg, root, &err), 0);
    config_path(&e->cfg, e->source, "config/models_gallery.json");
    config_path(&e->cfg, e->cache, "cache/gallery_cache.json");
    config_path(&e->cfg, e->lock, "cache/.lock");
    gallery_index_path(e->cache, e->index, sizeof e->index);
    gallery_gzip_path(e->cache, e->gzip, sizeof e->gzip);
    size_t len;
    char *text = fs_read_all(data_path("search.json"), &len, NULL);
    CHECK_INT(fs_write_atomic(e->source, text, len, NULL), 0);
    free(text);
}

static ino_t inode(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* 1 when the gzip file at `gz` holds exactly the bytes of `plain`. */
static int gunzips_to(const char *gz, const char *plain) {
    size_t len;
    char *want = fs_read_all(plain, &len, NULL);
    gzFile f = gzopen(gz, "rb");
    char *got = malloc(len + 16);
    int n = f && want && got ? gzread(f, got, (unsigned)len + 16) : -1;
    int same = n >= 0 && (size_t)n == len && memcmp(got, want, len) == 0;
    if (f) gzclose(f);
    free(want);
    free(got);
    return same;
}

/* 1 when the meta records the current stat of `path` under `key`. */
static int meta_names(env *e, const char *key, const char *path) {
    json_t *m = gallery_cache_meta(&e->cfg), *rec = json_object_get(m, key);
    struct stat st;
    int ok = stat(path, &st) == 0 &&
             json_integer_value(json_object_get(rec, "ino")) == (json_int_t)st.st_ino &&
             json_integer_value(json_object_get(rec, "size")) == (json_int_t)st.st_size;
    json_decref(m);
    return ok;
}

static int index_works(env *e) {
    search_index *idx = search_index_load(e->cache, NULL);
    int ok = idx && search_index_count(idx) == 6;
    search_index_free(idx);
    return ok;
}

UNIT_TEST(cache_is_written_with_its_derived_files) {
    env e;
    env_init(&e, "a");
    CHECK_INT(gallery_cache_ensure(&e.cfg, NULL), 0);
    CHECK(gunzips_to(e.gzip, e.cache));
    CHECK(index_works(&e));
    CHECK(meta_names(&e, "cache", e.cache));
    CHECK(meta_names(&e, "index", e.index));
    CHECK(meta_names(&e, "gzip", e.gzip));
    config_free(&e.cfg);
}

UNIT_TEST(missing_or_changed_derived_files_are_derived_again) {
    env e;
    env_init(&e, "b");
    CHECK_INT(gallery_cache_ensure(&e.cfg, NULL), 0);
    ino_t cache = inode(e.cache);
    unlink(e.index);
    CHECK_INT(gallery_cache_ensure(&e.cfg, NULL), 0);
    CHECK(index_works(&e));
    CHECK(meta_names(&e, "index", e.index));
    CHECK_INT(inode(e.cache), cache); /* the cache itself is not rewritten */
    CHECK_INT(fs_write_atomic(e.gzip, "junk", 4, NULL), 0);
    CHECK_INT(gallery_cache_ensure(&e.cfg, NULL), 0);
    CHECK(gunzips_to(e.gzip, e.cache));
    CHECK(meta_names(&e, "gzip", e.gzip));
    CHECK_INT(inode(e.cache), cache);
    /* an index of another cache put in its place */
    env other;
    env_init(&other, "b2");
    CHECK_INT(gallery_cache_ensure(&other.cfg, NULL), 0);
    size_t len;
    char *foreign = fs_read_all(other.index, &len, NULL);
    CHECK_INT(fs_write_atomic(e.index, foreign, len, NULL), 0);
    free(foreign);
    CHECK(!index_works(&e));
    CHECK_INT(gallery_cache_ensure(&e.cfg, NULL), 0);
    CHECK(index_works(&e));
    config_free(&other.cfg);
    config_free(&e.cfg);
}

UNIT_TEST(remote_mode_derives_the_files_of_an_existing_cache) {
    env e;
    env_init(&e, "c");
    json_t *g = gallery_parse_file(e.source, NULL, NULL);
    CHECK_INT(gallery_cache_write(e.cache, g, NULL, NULL), 0);
    json_decref(g);
    e.cfg.gallery_url = strdup("https://cdn.example/gallery.json");
    unlink(e.index);
    unlink(e.gzip);
    CHECK_INT(gallery_cache_ensure(&e.cfg, NULL), 0);
    CHECK(index_works(&e));
    CHECK(gunzips_to(e.gzip, e.cache));
    config_free(&e.cfg);
}

UNIT_TEST(repair_rebuilds_a_corrupted_index_in_place) {
    env e;
    env_init(&e, "d");
    CHECK_INT(gallery_cache_ensure(&e.cfg, NULL), 0);
    struct stat before;
    stat(e.index, &before);
    /* corrupted without its stat changing (same size, mtime put back) */
    FILE *f = fopen(e.index, "r+b");
    fseek(f, (long)before.st_size / 2, SEEK_SET);
    fputc(0x5a ^ fgetc(f), f);
    fclose(f);
    struct timespec times[2] = {before.st_atim, before.st_mtim};
    utimensat(AT_FDCWD, e.index, times, 0);
    CHECK(!index_works(&e));
    CHECK_INT(gallery_cache_ensure(&e.cfg, NULL), 0); /* ensure cannot tell: same stat */
    CHECK(!index_works(&e));
    struct stat bad;
    stat(e.index, &bad);
    /* another process holds the lock: a reader that can wait is told so at once */
    int lock = fs_lock(e.lock, 1, NULL);
    mg_error err;
    CHECK_INT(gallery_cache_repair(&e.cfg, &bad, 0, &err), 1);
    fs_unlock(lock);
    CHECK_INT(gallery_cache_repair(&e.cfg, &bad, 0, &err), 0);
    CHECK(index_works(&e));
    CHECK(meta_names(&e, "index", e.index));
    /* replaced meanwhile: nothing rewritten */
    ino_t now = inode(e.index);
    CHECK_INT(gallery_cache_repair(&e.cfg, &bad, 1, &err), 0);
    CHECK_INT(inode(e.index), now);
    config_free(&e.cfg);
}

UNIT_TEST(repair_of_a_broken_cache_rebuilds_from_the_source) {
    env e;
    env_init(&e, "e");
    CHECK_INT(gallery_cache_ensure(&e.cfg, NULL), 0);
    CHECK_INT(fs_write_atomic(e.cache, "{\"broken", 8, NULL), 0);
    unlink(e.index);
    struct stat bad;
    memset(&bad, 0, sizeof bad);
    mg_error err;
    CHECK_INT(gallery_cache_repair(&e.cfg, &bad, 1, &err), 0);
    CHECK(index_works(&e));
    config_free(&e.cfg);
}
