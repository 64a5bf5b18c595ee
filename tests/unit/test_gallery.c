/* test_gallery.c - gallery parsing and validation, the cache format and keeping the cache
 * in step with config/models_gallery.json. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fs.h"
#include "gallery.h"
#include "unit.h"

static const char *data_path(const char *name) {
    static char path[1024];
    const char *dir = getenv("MG_TEST_DATA");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/data", name);
    return path;
}

static json_t *parse_text(const char *text, json_t **invalid, mg_error *err) {
    return gallery_parse(text, strlen(text), "inline", invalid, err);
}

static const char *model_ids(json_t *gallery) {
    static char out[1024];
    json_t *m;
    size_t i;
    out[0] = '\0';
    json_array_foreach(json_object_get(gallery, "models"), i, m) {
        if (i) strcat(out, ",");
        strncat(out, json_string_value(json_object_get(m, "id")), 100);
    }
    return out;
}

UNIT_TEST(every_invalid_rule_is_reported) {
    json_t *invalid = NULL;
    mg_error err;
    json_t *g = gallery_parse_file(data_path("invalid_models.json"), &invalid, &err);
    CHECK(g != NULL);
    if (!g) return;
    char *expect = fs_read_all(data_path("invalid_models.expect"), NULL, NULL);
    CHECK(expect != NULL);
    size_t n = 0;
    for (char *line = strtok(expect, "\n"); line; line = strtok(NULL, "\n"), n++) {
        int index = atoi(line);
        const char *reason = strchr(line, '\t') + 1;
        json_t *entry = NULL, *e;
        size_t i;
        json_array_foreach(invalid, i, e)
            if (json_integer_value(json_object_get(e, "index")) == index) entry = e;
        if (!entry) {
            unit_fail(__FILE__, __LINE__, "model %d not reported invalid", index);
            continue;
        }
        CHECK_CONTAINS(json_string_value(json_object_get(entry, "reason")), reason);
    }
    CHECK_INT(json_array_size(invalid), n);
    CHECK_STR(model_ids(g), "m00,m40,m41,m42");
    /* whole objects: unknown fields and nulls are kept */
    json_t *m41 = json_array_get(json_object_get(g, "models"), 2);
    CHECK(json_is_array(json_object_get(m41, "x-extra")));
    json_t *m40 = json_array_get(json_object_get(g, "models"), 1);
    CHECK(json_is_null(json_object_get(m40, "recommendedHardware")));
    CHECK_STR(json_string_value(json_object_get(g, "version")), "1");
    CHECK_STR(json_string_value(json_object_get(g, "generatedAt")), "2026-01-01T00:00:00Z");
    free(expect);
    json_decref(invalid);
    json_decref(g);
}

UNIT_TEST(each_invalid_model_is_logged_once) {
    char log_path[512];
    snprintf(log_path, sizeof log_path, "%s/stderr.log", unit_tmpdir());
    fflush(stderr);
    int saved = dup(2);
    FILE *f = fopen(log_path, "w");
    dup2(fileno(f), 2);
    json_t *g = gallery_parse_file(data_path("invalid_models.json"), NULL, NULL);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fclose(f);
    char *log = fs_read_all(log_path, NULL, NULL);
    int lines = 0;
    for (const char *p = log; p && (p = strstr(p, " left out: ")); p++) lines++;
    CHECK_INT(lines, 41);
    CHECK_CONTAINS(log, "[warn]");
    CHECK_CONTAINS(log, "invalid_models.json: model 1 (id ../evil) left out: id must");
    CHECK_CONTAINS(log, "model 43 (id m00) left out: duplicate id (first used by model 0)");
    CHECK_CONTAINS(log, "model 5 (id (none)) left out");
    free(log);
    json_decref(g);
}

UNIT_TEST(invalid_entry_names_index_and_id) {
    json_t *invalid = NULL;
    json_t *g = gallery_parse_file(data_path("invalid_models.json"), &invalid, NULL);
    json_t *e = json_array_get(invalid, 0);
    CHECK_INT(json_integer_value(json_object_get(e, "index")), 1);
    CHECK_STR(json_string_value(json_object_get(e, "id")), "../evil");
    /* a model without a string id is reported with id null */
    json_t *e4 = json_array_get(invalid, 3);
    CHECK_INT(json_integer_value(json_object_get(e4, "index")), 4);
    CHECK(json_is_null(json_object_get(e4, "id")));
    json_decref(invalid);
    json_decref(g);
}

UNIT_TEST(duplicate_ids_keep_the_first) {
    const char *text =
        "{\"version\":\"1\",\"models\":["
        "{\"id\":\"a\",\"name\":\"First\",\"checksum\":\"sha256:"
        "0000000000000000000000000000000000000000000000000000000000000000\","
        "\"downloadUrl\":\"https://h/a.gguf\",\"sizeGb\":1},"
        "{\"id\":\"a\",\"name\":\"Second\",\"checksum\":\"sha256:"
        "0000000000000000000000000000000000000000000000000000000000000000\","
        "\"downloadUrl\":\"https://h/a.gguf\",\"sizeGb\":1}]}";
    json_t *invalid = NULL;
    json_t *g = parse_text(text, &invalid, NULL);
    CHECK_INT(json_array_size(json_object_get(g, "models")), 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(g, "models"), 0),
                                                "name")), "First");
    CHECK_INT(json_array_size(invalid), 1);
    json_t *e = json_array_get(invalid, 0);
    CHECK_INT(json_integer_value(json_object_get(e, "index")), 1);
    CHECK_STR(json_string_value(json_object_get(e, "id")), "a");
    CHECK_CONTAINS(json_string_value(json_object_get(e, "reason")), "duplicate id");
    CHECK(json_is_null(json_object_get(g, "generatedAt")));
    json_decref(invalid);
    json_decref(g);
}

UNIT_TEST(id_with_nul_byte_is_invalid) {
    const char *text =
        "{\"models\":[{\"id\":\"a\\u0000b\",\"name\":\"x\",\"checksum\":\"sha256:"
        "0000000000000000000000000000000000000000000000000000000000000000\","
        "\"downloadUrl\":\"https://h/a.gguf\",\"sizeGb\":1}]}";
    json_t *invalid = NULL;
    json_t *g = parse_text(text, &invalid, NULL);
    CHECK(g != NULL);
    CHECK_INT(json_array_size(json_object_get(g, "models")), 0);
    CHECK_CONTAINS(json_string_value(json_object_get(json_array_get(invalid, 0), "reason")),
                   "id must");
    json_decref(invalid);
    json_decref(g);
}

UNIT_TEST(not_json_names_file_line_and_column) {
    mg_error err;
    mg_error_clear(&err);
    json_t *invalid = (json_t *)1;
    json_t *g = gallery_parse_file(data_path("not_json.json"), &invalid, &err);
    CHECK(g == NULL);
    CHECK(invalid == NULL);
    CHECK_CONTAINS(err.message, "not_json.json: not valid JSON at line 3, column");
    CHECK_STR(err.code, "invalid_gallery");
    g = gallery_parse("", 0, "empty.json", NULL, &err);
    CHECK(g == NULL);
    CHECK_CONTAINS(err.message, "empty.json: not valid JSON at line");
}

UNIT_TEST(json_without_models_array_is_an_error) {
    mg_error err;
    json_t *g = gallery_parse_file(data_path("no_models.json"), NULL, &err);
    CHECK(g == NULL);
    CHECK_CONTAINS(err.message, "no_models.json");
    CHECK_CONTAINS(err.message, "models");
    g = parse_text("[1,2]", NULL, &err);
    CHECK(g == NULL);
}

UNIT_TEST(model_valid_alone) {
    char reason[160];
    json_t *m = json_pack("{s:s, s:s, s:s, s:s, s:f}", "id", "x", "name", "X", "checksum",
                          "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
                          "downloadUrl", "https://example.com/x", "sizeGb", 0.001);
    CHECK_INT(gallery_model_valid(m, reason, sizeof reason), 1);
    json_object_set_new(m, "sizeGb", json_real(0.0));
    CHECK_INT(gallery_model_valid(m, reason, sizeof reason), 0);
    CHECK_STR(reason, "sizeGb must be a number greater than 0");
    json_object_set_new(m, "sizeGb", json_integer(2));
    json_object_set_new(m, "downloadUrl", json_string("https://example.com/x y"));
    CHECK_INT(gallery_model_valid(m, reason, sizeof reason), 0);
    CHECK_STR(reason, "downloadUrl must be an absolute http(s) URL");
    json_object_set_new(m, "downloadUrl", json_string("file:///etc/passwd"));
    CHECK_INT(gallery_model_valid(m, reason, sizeof reason), 0);
    json_decref(m);
    CHECK_INT(gallery_model_valid(NULL, reason, sizeof reason), 0);
}

UNIT_TEST(mirrors_are_urls) {
    char reason[160];
    json_t *m = json_pack("{s:s, s:s, s:s, s:s, s:f, s:[s,s]}", "id", "x", "name", "X",
                          "checksum",
                          "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
                          "downloadUrl", "https://example.com/x", "sizeGb", 0.001, "mirrors",
                          "https://a.example/x", "http://b.example:8081/x");
    CHECK_INT(gallery_model_valid(m, reason, sizeof reason), 1);
    json_object_set_new(m, "mirrors", json_null());
    CHECK_INT(gallery_model_valid(m, reason, sizeof reason), 1);
    const char *bad[] = {"\"https://a.example/x\"", "[\"ftp://a.example/x\"]", "[1]",
                         "[\"https://a.example/x y\"]", "{}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_object_set_new(m, "mirrors", json_loads(bad[i], JSON_DECODE_ANY, NULL));
        CHECK_INT(gallery_model_valid(m, reason, sizeof reason), 0);
        CHECK_STR(reason, "mirrors must be an array of at most 16 absolute http(s) URLs");
    }
    json_t *many = json_array();
    for (int i = 0; i < 17; i++) json_array_append_new(many, json_string("https://a.example/x"));
    json_object_set_new(m, "mirrors", many);
    CHECK_INT(gallery_model_valid(m, reason, sizeof reason), 0);
    json_array_remove(many, 0);
    CHECK_INT(gallery_model_valid(m, reason, sizeof reason), 1);
    json_decref(m);
}

UNIT_TEST(model_ext_from_url_path) {
    char ext[16];
    gallery_model_ext("https://h/a/model.Q4_K_M.gguf", ext);
    CHECK_STR(ext, ".gguf");
    gallery_model_ext("https://h/ggml-base.en.bin?download=true", ext);
    CHECK_STR(ext, ".bin");
    gallery_model_ext("https://h/a/MODEL.GGUF", ext);
    CHECK_STR(ext, ".gguf");
    gallery_model_ext("https://h/a/model", ext);
    CHECK_STR(ext, ".gguf");
    gallery_model_ext("https://h/a/model.Q4_K_M", ext);
    CHECK_STR(ext, ".gguf");
    gallery_model_ext("https://h/a/model.verylongext", ext);
    CHECK_STR(ext, ".gguf");
    gallery_model_ext("https://h/a.b/.hidden", ext);
    CHECK_STR(ext, ".gguf");
    gallery_model_ext("https://h/a/m.bin%2F..%2Fx", ext);
    CHECK_STR(ext, ".gguf");
    gallery_model_ext("not a url", ext);
    CHECK_STR(ext, ".gguf");
    gallery_model_ext(NULL, ext);
    CHECK_STR(ext, ".gguf");
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

UNIT_TEST(cache_round_trip) {
    char cache[512], meta_path[512];
    snprintf(cache, sizeof cache, "%s/gallery_cache.json", unit_tmpdir());
    snprintf(meta_path, sizeof meta_path, "%s/gallery_cache.meta.json", unit_tmpdir());
    json_t *g = gallery_parse_file(data_path("search.json"), NULL, NULL);
    json_t *meta = json_pack("{s:s}", "note", "kept");
    CHECK_INT(gallery_cache_write(cache, g, meta, NULL), 0);
    size_t len = 0;
    char *text = fs_read_all(cache, &len, NULL);
    CHECK(text != NULL);
    if (!text) return;
    CHECK_INT(count_lines(text), 6 + 2);
    const char *head = "{\"version\":\"1\",\"generatedAt\":\"2026-01-01T00:00:00Z\","
                       "\"models\":[\n{\"id\":\"alpha-7b\",\"name\":";
    CHECK(strncmp(text, head, strlen(head)) == 0);
    CHECK_CONTAINS(text, "\"x-extra\":{\"kept\":true}}\n]}\n");
    json_t *back = json_loads(text, 0, NULL);
    CHECK(json_equal(back, g));
    json_t *m = json_load_file(meta_path, 0, NULL);
    CHECK_STR(json_string_value(json_object_get(m, "note")), "kept");
    CHECK_INT(json_integer_value(json_object_get(json_object_get(m, "cache"), "size")), len);
    struct stat st;
    stat(cache, &st);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(m, "cache"), "mtime_ns")),
              (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec);
    CHECK_INT(json_integer_value(json_object_get(m, "models")), 6);
    CHECK(json_is_string(json_object_get(m, "built_at")));
    CHECK(json_object_get(meta, "cache") == NULL); /* the caller's meta is not changed */
    json_decref(m);
    json_decref(back);
    free(text);
    json_decref(meta);
    json_decref(g);
}

UNIT_TEST(cache_of_empty_gallery_is_json) {
    char cache[512];
    snprintf(cache, sizeof cache, "%s/c.json", unit_tmpdir());
    json_t *g = parse_text("{\"version\":\"1\",\"models\":[]}", NULL, NULL);
    CHECK_INT(gallery_cache_write(cache, g, NULL, NULL), 0);
    json_t *back = json_load_file(cache, 0, NULL);
    CHECK(json_equal(back, g));
    json_decref(back);
    json_decref(g);
}

/* ---- gallery_cache_ensure --------------------------------------------------------- */

typedef struct { mg_config cfg; char source[MG_PATH_MAX], cache[MG_PATH_MAX], meta[MG_PATH_MAX]; } env;

static void env_init(env *e) {
    mg_error err;
    CHECK_INT(config_load(&e->cfg, unit_tmpdir(), &err), 0);
    config_path(&e->cfg, e->source, "config/models_gallery.json");
    config_path(&e->cfg, e->cache, "cache/gallery_cache.json");
    config_path(&e->cfg, e->meta, "cache/gallery_cache.meta.json");
}

static void put_file(const char *path, const char *text) {
    CHECK_INT(fs_write_atomic(path, text, strlen(text), NULL), 0);
}

static void copy_file(const char *from, const char *to) {
    size_t len = 0;
    char *text = fs_read_all(from, &len, NULL);
    CHECK(text != NULL);
    CHECK_INT(fs_write_atomic(to, text, len, NULL), 0);
    free(text);
}

static json_t *load_cache(env *e) { return json_load_file(e->cache, 0, NULL); }

static ino_t inode(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? st.st_ino : 0;
}

UNIT_TEST(ensure_builds_cache_and_meta) {
    env e;
    env_init(&e);
    copy_file(data_path("invalid_models.json"), e.source);
    mg_error err;
    CHECK_INT(gallery_cache_ensure(&e.cfg, &err), 0);
    json_t *c = load_cache(&e);
    CHECK_STR(model_ids(c), "m00,m40,m41,m42");
    json_t *m = gallery_cache_meta(&e.cfg);
    CHECK(m != NULL);
    CHECK_INT(json_integer_value(json_object_get(m, "models")), 4);
    CHECK_INT(json_array_size(json_object_get(m, "invalid")), 41);
    CHECK(json_is_null(json_object_get(m, "error")));
    json_t *src = json_object_get(m, "source");
    CHECK_STR(json_string_value(json_object_get(src, "path")), e.source);
    struct stat st;
    stat(e.source, &st);
    CHECK_INT(json_integer_value(json_object_get(src, "size")), st.st_size);
    /* a second call changes nothing */
    ino_t before = inode(e.cache), meta_before = inode(e.meta);
    CHECK_INT(gallery_cache_ensure(&e.cfg, &err), 0);
    CHECK_INT(inode(e.cache), before);
    CHECK_INT(inode(e.meta), meta_before);
    json_decref(m);
    json_decref(c);
    config_free(&e.cfg);
}

UNIT_TEST(ensure_rebuilds_on_source_change) {
    env e;
    env_init(&e);
    copy_file(data_path("search.json"), e.source);
    CHECK_INT(gallery_cache_ensure(&e.cfg, NULL), 0);
    json_t *c = load_cache(&e);
    CHECK_INT(json_array_size(json_object_get(c, "models")), 6);
    json_decref(c);
    copy_file(data_path("invalid_models.json"), e.source);
    CHECK_INT(gallery_cache_ensure(&e.cfg, NULL), 0);
    c = load_cache(&e);
    CHECK_STR(model_ids(c), "m00,m40,m41,m42");
    json_decref(c);
    config_free(&e.cfg);
}

UNIT_TEST(ensure_rewrites_corrupted_or_foreign_cache) {
    env e;
    env_init(&e);
    copy_file(data_path("search.json"), e.source);
    CHECK_INT(gallery_cache_ensure(&e.cfg, NULL), 0);
    put_file(e.cache, "{\"garbage\": true}\n");
    CHECK_INT(gallery_cache_ensure(&e.cfg, NULL), 0);
    json_t *c = load_cache(&e);
    CHECK_INT(json_array_size(json_object_get(c, "models")), 6);
    json_decref(c);
    /* a foreign cache with no meta */
    put_file(e.cache, "not json at all");
    unlink(e.meta);
    CHECK_INT(gallery_cache_ensure(&e.cfg, NULL), 0);
    c = load_cache(&e);
    CHECK_INT(json_array_size(json_object_get(c, "models")), 6);
    json_decref(c);
    /* a corrupted meta */
    put_file(e.meta, "{{{");
    CHECK_INT(gallery_cache_ensure(&e.cfg, NULL), 0);
    json_t *m = gallery_cache_meta(&e.cfg);
    CHECK(m != NULL);
    json_decref(m);
    /* the cache removed */
    unlink(e.cache);
    CHECK_INT(gallery_cache_ensure(&e.cfg, NULL), 0);
    CHECK(access(e.cache, F_OK) == 0);
    config_free(&e.cfg);
}

UNIT_TEST(ensure_keeps_last_good_cache_when_source_is_not_json) {
    env e;
    env_init(&e);
    copy_file(data_path("search.json"), e.source);
    CHECK_INT(gallery_cache_ensure(&e.cfg, NULL), 0);
    ino_t good = inode(e.cache);
    copy_file(data_path("not_json.json"), e.source);
    mg_error err;
    mg_error_clear(&err);
    CHECK_INT(gallery_cache_ensure(&e.cfg, &err), 0);
    CHECK_INT(inode(e.cache), good);
    json_t *m = gallery_cache_meta(&e.cfg);
    CHECK_CONTAINS(json_string_value(json_object_get(m, "error")),
                   "models_gallery.json: not valid JSON at line 3, column");
    json_decref(m);
    /* still usable on the next call, without a rebuild */
    ino_t meta_ino = inode(e.meta);
    CHECK_INT(gallery_cache_ensure(&e.cfg, &err), 0);
    CHECK_INT(inode(e.meta), meta_ino);
    /* fixed source: rebuilt, error cleared */
    copy_file(data_path("invalid_models.json"), e.source);
    CHECK_INT(gallery_cache_ensure(&e.cfg, &err), 0);
    json_t *c = load_cache(&e);
    CHECK_STR(model_ids(c), "m00,m40,m41,m42");
    m = gallery_cache_meta(&e.cfg);
    CHECK(json_is_null(json_object_get(m, "error")));
    json_decref(m);
    json_decref(c);
    config_free(&e.cfg);
}

UNIT_TEST(ensure_fails_when_source_bad_and_no_cache) {
    env e;
    env_init(&e);
    copy_file(data_path("not_json.json"), e.source);
    mg_error err;
    mg_error_clear(&err);
    CHECK_INT(gallery_cache_ensure(&e.cfg, &err), -1);
    CHECK_CONTAINS(err.message, "models_gallery.json: not valid JSON at line 3, column");
    CHECK(access(e.cache, F_OK) != 0);
    mg_error_clear(&err);
    CHECK_INT(gallery_cache_ensure(&e.cfg, &err), -1); /* recorded: same answer */
    CHECK_CONTAINS(err.message, "not valid JSON at line 3");
    copy_file(data_path("no_models.json"), e.source);
    CHECK_INT(gallery_cache_ensure(&e.cfg, &err), -1);
    CHECK_CONTAINS(err.message, "models");
    config_free(&e.cfg);
}

UNIT_TEST(ensure_seeds_missing_source_from_repository) {
    env e;
    env_init(&e);
    CHECK(access(e.source, F_OK) != 0);
    mg_error err;
    CHECK_INT(gallery_cache_ensure(&e.cfg, &err), 0);
    CHECK(access(e.source, F_OK) == 0);
    json_t *c = load_cache(&e);
    CHECK(json_array_size(json_object_get(c, "models")) >= 20);
    json_t *m = gallery_cache_meta(&e.cfg);
    CHECK_INT(json_array_size(json_object_get(m, "invalid")), 0);
    json_decref(m);
    json_decref(c);
    config_free(&e.cfg);
}

UNIT_TEST(ensure_in_url_mode_only_needs_a_cache) {
    env e;
    env_init(&e);
    copy_file(data_path("search.json"), e.source);
    e.cfg.gallery_url = strdup("https://cdn.example.com/gallery.json");
    CHECK_INT(gallery_cache_ensure(&e.cfg, NULL), 0); /* no cache yet: built from local */
    json_t *c = load_cache(&e);
    CHECK_INT(json_array_size(json_object_get(c, "models")), 6);
    json_decref(c);
    copy_file(data_path("invalid_models.json"), e.source);
    ino_t before = inode(e.cache);
    CHECK_INT(gallery_cache_ensure(&e.cfg, NULL), 0); /* the local file is not the source */
    CHECK_INT(inode(e.cache), before);
    config_free(&e.cfg);
}

UNIT_TEST(bundled_gallery_is_all_valid) {
    char path[1200];
    snprintf(path, sizeof path, "%s/../../config/models_gallery.json", data_path(""));
    json_t *invalid = NULL;
    mg_error err;
    json_t *g = gallery_parse_file(path, &invalid, &err);
    CHECK(g != NULL);
    CHECK_INT(json_array_size(json_object_get(g, "models")), 20);
    CHECK_INT(json_array_size(invalid), 0);
    json_t *m;
    size_t i;
    json_array_foreach(json_object_get(g, "models"), i, m) {
        CHECK(json_is_null(json_object_get(m, "rating")));
        CHECK(json_is_integer(json_object_get(m, "sizeBytes")));
    }
    json_decref(invalid);
    json_decref(g);
}
