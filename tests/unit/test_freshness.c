/* test_freshness.c - the gallery cache follows config/models_gallery.json however the file
 * changes: replaced by rename, rewritten in place with the same size (same inode, only the
 * content and mtime differ), or rewritten in place within the same second. Each time the
 * next gallery_cache_ensure serves the new content, and when nothing changed it rewrites
 * nothing (the cache keeps its inode). A cache changed in place under its meta (same inode
 * and size) is rebuilt. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "gallery.h"
#include "log.h"
#include "unit.h"

static mg_config cfg;

static void setup(void) {
    mg_error err;
    if (config_load(&cfg, unit_tmpdir(), &err) != 0)
        unit_fail(__FILE__, __LINE__, "%s", err.message);
    log_set_fd(open(unit_path("log"), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
}

/* A one-model gallery whose rating is `rating` ("4.5": the text's size does not change). */
static char *gallery_text(const char *rating) {
    char *t = NULL;
    if (asprintf(&t,
                 "{\"version\":1,\"generatedAt\":\"2026\",\"models\":[{\"id\":\"m\",\"name\":"
                 "\"M\",\"checksum\":\"sha256:0123456789abcdef0123456789abcdef0123456789abcdef"
                 "0123456789abcdef\",\"downloadUrl\":\"https://example.com/m.gguf\","
                 "\"sizeGb\":1,\"rating\":%s}]}",
                 rating) < 0)
        return NULL;
    return t;
}

/* Rewrites the source in place (same inode), then sets its mtime `mtime_s` seconds on from
 * what it was (0: leaves it as the write made it). */
static void rewrite_in_place(const char *path, const char *rating, int mtime_s) {
    struct stat before;
    stat(path, &before);
    char *t = gallery_text(rating);
    int fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0 && write(fd, t, strlen(t)) == (ssize_t)strlen(t));
    close(fd);
    free(t);
    if (mtime_s) {
        struct timespec ts[2] = {{0, UTIME_OMIT}, before.st_mtim};
        ts[1].tv_sec += mtime_s;
        utimensat(AT_FDCWD, path, ts, 0);
    }
}

/* The rating the cache serves. */
static double cached_rating(void) {
    char path[MG_PATH_MAX];
    json_t *c = json_load_file(config_path(&cfg, path, "cache/gallery_cache.json"), 0, NULL);
    double r = json_number_value(json_object_get(json_array_get(json_object_get(c, "models"), 0),
                                                 "rating"));
    json_decref(c);
    return r;
}

static ino_t cache_inode(void) {
    char path[MG_PATH_MAX];
    struct stat st;
    return stat(config_path(&cfg, path, "cache/gallery_cache.json"), &st) == 0 ? st.st_ino : 0;
}

UNIT_TEST(cache_follows_every_kind_of_change) {
    setup();
    mg_error err;
    char src[MG_PATH_MAX];
    config_path(&cfg, src, "config/models_gallery.json");
    char *t = gallery_text("4.5");
    CHECK_INT(unit_write_file(src, t, strlen(t)), 0);
    free(t);
    CHECK_INT(gallery_cache_ensure(&cfg, &err), 0);
    CHECK(cached_rating() == 4.5);
    ino_t ino = cache_inode();
    CHECK_INT(gallery_cache_ensure(&cfg, &err), 0);
    CHECK_INT(cache_inode(), ino); /* nothing changed: nothing rewritten */

    struct stat a, b;
    stat(src, &a);
    rewrite_in_place(src, "4.7", 2); /* same size, same inode, a later mtime */
    stat(src, &b);
    CHECK_INT(b.st_ino, a.st_ino);
    CHECK_INT(b.st_size, a.st_size);
    CHECK_INT(gallery_cache_ensure(&cfg, &err), 0);
    CHECK(cached_rating() == 4.7);

    rewrite_in_place(src, "4.9", 0); /* again, at once */
    CHECK_INT(gallery_cache_ensure(&cfg, &err), 0);
    CHECK(cached_rating() == 4.9);

    t = gallery_text("3.0"); /* replaced by rename */
    CHECK_INT(unit_write_file(unit_path("new.json"), t, strlen(t)), 0);
    free(t);
    CHECK_INT(rename(unit_path("new.json"), src), 0);
    CHECK_INT(gallery_cache_ensure(&cfg, &err), 0);
    CHECK(cached_rating() == 3.0);
    config_free(&cfg);
}

UNIT_TEST(cache_rewritten_in_place_is_rebuilt) {
    setup();
    mg_error err;
    char src[MG_PATH_MAX], cache[MG_PATH_MAX];
    config_path(&cfg, src, "config/models_gallery.json");
    config_path(&cfg, cache, "cache/gallery_cache.json");
    char *t = gallery_text("4.5");
    CHECK_INT(unit_write_file(src, t, strlen(t)), 0);
    free(t);
    CHECK_INT(gallery_cache_ensure(&cfg, &err), 0);
    CHECK(cached_rating() == 4.5);
    /* the cache changed under the meta: same inode, same size, a later mtime */
    size_t len = 0;
    char *text = unit_read_file(cache, &len), *at = text ? strstr(text, "4.5") : NULL;
    CHECK(at != NULL);
    if (!at) return;
    at[2] = '1';
    struct stat before, after;
    stat(cache, &before);
    int fd = open(cache, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0 && write(fd, text, len) == (ssize_t)len);
    close(fd);
    free(text);
    struct timespec ts[2] = {{0, UTIME_OMIT}, before.st_mtim};
    ts[1].tv_sec += 2;
    utimensat(AT_FDCWD, cache, ts, 0);
    stat(cache, &after);
    CHECK_INT(after.st_ino, before.st_ino);
    CHECK_INT(after.st_size, before.st_size);
    CHECK(cached_rating() == 4.1);
    CHECK_INT(gallery_cache_ensure(&cfg, &err), 0);
    CHECK(cached_rating() == 4.5); /* rebuilt from the source */
    config_free(&cfg);
}
