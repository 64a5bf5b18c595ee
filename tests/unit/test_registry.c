/* test_registry.c - config/models.json: load, add, list with statuses (installed, missing,
 * corrupt, unregistered under any file name, partial), replace after an update, the result
 * of a verification, remove, a corrupt file left untouched, and entries whose path leaves
 * models/llm/. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fs.h"
#include "registry.h"
#include "unit.h"

/* Loads a fresh config on the test's temporary data root. */
static void setup(mg_config *cfg) {
    mg_error err;
    if (config_load(cfg, unit_tmpdir(), &err) != 0) unit_fail(__FILE__, __LINE__, "%s", err.message);
}

/* Writes `text` to root/rel. */
static void put(const mg_config *cfg, const char *rel, const char *text) {
    char path[MG_PATH_MAX];
    FILE *f = fopen(config_path(cfg, path, rel), "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static int exists(const mg_config *cfg, const char *rel) {
    char path[MG_PATH_MAX];
    return access(config_path(cfg, path, rel), F_OK) == 0;
}

/* Adds an entry for `id` with `path` as a gallery install would. */
static int add(const mg_config *cfg, const char *id, const char *path) {
    mg_error err;
    json_t *e = json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:b}", "id", id, "name", id, "path", path,
                          "size", 5, "installedAt", "2026-11-26T09:36:39+00:00", "backend",
                          "gallery", "active", 0);
    int rc = registry_add(cfg, id, e, &err);
    json_decref(e);
    return rc;
}

static const char *status_of(json_t *list, const char *id) {
    return json_string_value(json_object_get(json_object_get(json_object_get(list, "models"), id),
                                             "status"));
}

UNIT_TEST(empty_registry) {
    mg_config cfg;
    mg_error err;
    setup(&cfg);
    json_t *doc = registry_load(&cfg, &err);
    CHECK(json_is_object(json_object_get(doc, "models")));
    CHECK_INT(json_object_size(json_object_get(doc, "models")), 0);
    json_t *list = registry_list(&cfg, NULL, &err);
    CHECK_INT(json_object_size(json_object_get(list, "models")), 0);
    CHECK(!registry_is_installed(&cfg, "x"));
    CHECK(!exists(&cfg, "config/models.json"));
    json_decref(doc);
    json_decref(list);
    config_free(&cfg);
}

UNIT_TEST(add_and_list_statuses) {
    mg_config cfg;
    mg_error err;
    setup(&cfg);
    CHECK_INT(add(&cfg, "alpha", "models/llm/alpha.gguf"), 0);
    CHECK_INT(add(&cfg, "beta", "models/llm/beta.gguf"), 0);
    put(&cfg, "models/llm/alpha.gguf", "hello");
    put(&cfg, "models/llm/gamma.bin", "abc");
    json_t *doc = registry_load(&cfg, &err);
    CHECK_INT(json_object_size(json_object_get(doc, "models")), 2);
    CHECK_STR(json_string_value(json_object_get(
                  json_object_get(json_object_get(doc, "models"), "alpha"), "backend")),
              "gallery");
    CHECK(json_object_get(json_object_get(json_object_get(doc, "models"), "alpha"), "status") ==
          NULL);
    json_decref(doc);

    json_t *list = registry_list(&cfg, NULL, &err);
    CHECK_INT(json_object_size(json_object_get(list, "models")), 3);
    CHECK_STR(status_of(list, "alpha"), "installed");
    CHECK_STR(status_of(list, "beta"), "missing");
    CHECK_STR(status_of(list, "gamma"), "unregistered");
    json_t *g = json_object_get(json_object_get(list, "models"), "gamma");
    CHECK_STR(json_string_value(json_object_get(g, "id")), "gamma");
    CHECK_STR(json_string_value(json_object_get(g, "path")), "models/llm/gamma.bin");
    CHECK_INT(json_integer_value(json_object_get(g, "size")), 3);
    CHECK(json_is_null(json_object_get(g, "name")));
    CHECK(json_is_null(json_object_get(g, "installedAt")));
    CHECK(json_is_null(json_object_get(g, "backend")));
    CHECK(json_is_false(json_object_get(g, "active")));
    CHECK(registry_is_installed(&cfg, "alpha"));
    CHECK(!registry_is_installed(&cfg, "beta"));
    CHECK(!registry_is_installed(&cfg, "gamma"));
    json_decref(list);

    /* Replacing an entry keeps one entry; the file on disk is plain pretty JSON. */
    CHECK_INT(add(&cfg, "alpha", "models/llm/alpha.gguf"), 0);
    char path[MG_PATH_MAX];
    json_t *raw = json_load_file(config_path(&cfg, path, "config/models.json"), 0, NULL);
    CHECK_INT(json_object_size(json_object_get(raw, "models")), 2);
    json_decref(raw);
    config_free(&cfg);
}

UNIT_TEST(partials_listed_without_a_job_dot_files_never) {
    mg_config cfg;
    mg_error err;
    setup(&cfg);
    put(&cfg, "models/.partial/delta.gguf.part", "xx");
    put(&cfg, "models/.partial/delta.gguf.part.meta", "{}");
    put(&cfg, "models/.partial/busy.gguf.part", "xxx");
    put(&cfg, "models/llm/.delta.gguf.part", "xx");
    put(&cfg, "models/llm/.hidden", "xx");
    char dir[MG_PATH_MAX];
    mkdir(config_path(&cfg, dir, "models/llm/subdir.gguf"), 0755);
    json_t *active = json_pack("{s:{}}", "busy");
    json_t *list = registry_list(&cfg, active, &err);
    json_t *models = json_object_get(list, "models");
    CHECK_INT(json_object_size(models), 1);
    CHECK_STR(status_of(list, "delta"), "partial");
    json_t *d = json_object_get(models, "delta");
    CHECK_STR(json_string_value(json_object_get(d, "path")), "models/.partial/delta.gguf.part");
    CHECK_INT(json_integer_value(json_object_get(d, "size")), 2);
    json_decref(list);
    json_decref(active);
    config_free(&cfg);
}

UNIT_TEST(unregistered_files_of_any_name) {
    mg_config cfg;
    mg_error err;
    setup(&cfg);
    put(&cfg, "models/llm/-bad.gguf", "xx");
    put(&cfg, "models/llm/My Model (copy).gguf", "abc");
    put(&cfg, "models/llm/Gr\xc3\xb6\xc3\x9f" "e.gguf", "a");
    put(&cfg, "models/llm/latin1-\xe4.bin", "a");
    put(&cfg, "models/llm/ok.gguf", "a");
    put(&cfg, "models/llm/ok.bin", "ab");
    json_t *list = registry_list(&cfg, NULL, &err);
    json_t *models = json_object_get(list, "models");
    CHECK_INT(json_object_size(models), 6);
    json_t *m = json_object_get(models, "My Model (copy).gguf");
    CHECK_STR(json_string_value(json_object_get(m, "status")), "unregistered");
    CHECK(json_is_false(json_object_get(m, "id_valid")));
    CHECK_STR(json_string_value(json_object_get(m, "path")), "models/llm/My Model (copy).gguf");
    CHECK(json_is_false(json_object_get(json_object_get(models, "-bad.gguf"), "id_valid")));
    CHECK(json_object_get(models, "Gr\xc3\xb6\xc3\x9f" "e.gguf") != NULL);
    m = json_object_get(models, "latin1-\xef\xbf\xbd.bin");
    CHECK_STR(json_string_value(json_object_get(m, "path")), "models/llm/latin1-\xef\xbf\xbd.bin");
    /* two files with one stem: the first by name keeps the id, the other its whole name */
    CHECK(json_is_true(json_object_get(json_object_get(models, "ok"), "id_valid")));
    CHECK_STR(json_string_value(json_object_get(json_object_get(models, "ok"), "path")),
              "models/llm/ok.bin");
    CHECK_STR(json_string_value(json_object_get(json_object_get(models, "ok.gguf"), "path")),
              "models/llm/ok.gguf");
    json_decref(list);
    config_free(&cfg);
}

UNIT_TEST(corrupt_when_size_differs_or_verification_failed) {
    mg_config cfg;
    mg_error err;
    setup(&cfg);
    CHECK_INT(add(&cfg, "alpha", "models/llm/alpha.gguf"), 0);
    put(&cfg, "models/llm/alpha.gguf", "hello");
    json_t *list = registry_list(&cfg, NULL, &err);
    CHECK_STR(status_of(list, "alpha"), "installed");
    json_decref(list);
    put(&cfg, "models/llm/alpha.gguf", "hello!");
    list = registry_list(&cfg, NULL, &err);
    CHECK_STR(status_of(list, "alpha"), "corrupt");
    json_decref(list);
    put(&cfg, "models/llm/alpha.gguf", "hell"); /* a byte short: cut off */
    list = registry_list(&cfg, NULL, &err);
    CHECK_STR(status_of(list, "alpha"), "corrupt");
    json_decref(list);
    put(&cfg, "models/llm/alpha.gguf", "");
    list = registry_list(&cfg, NULL, &err);
    CHECK_STR(status_of(list, "alpha"), "corrupt");
    json_decref(list);
    put(&cfg, "models/llm/alpha.gguf", "hello");
    CHECK_INT(registry_set_verified(&cfg, "alpha", 0, &err), 0);
    list = registry_list(&cfg, NULL, &err);
    CHECK_STR(status_of(list, "alpha"), "corrupt");
    json_t *a = json_object_get(json_object_get(list, "models"), "alpha");
    CHECK(json_is_string(json_object_get(a, "verifiedAt")));
    CHECK(json_object_get(a, "corrupt") == NULL); /* the status says it */
    json_decref(list);
    a = registry_get(&cfg, "alpha", &err);
    CHECK(json_is_true(json_object_get(a, "corrupt")));
    json_decref(a);
    CHECK_INT(registry_set_verified(&cfg, "alpha", 1, &err), 0);
    list = registry_list(&cfg, NULL, &err);
    CHECK_STR(status_of(list, "alpha"), "installed");
    json_decref(list);
    a = registry_get(&cfg, "alpha", &err);
    CHECK(json_object_get(a, "corrupt") == NULL);
    json_decref(a);
    CHECK_INT(registry_set_verified(&cfg, "nope", 1, &err), -1);
    CHECK_INT(err.status, 404);
    CHECK_STR(err.code, "not_installed");
    config_free(&cfg);
}

UNIT_TEST(replace_keeps_active_and_removes_the_old_file) {
    mg_config cfg;
    mg_error err;
    setup(&cfg);
    CHECK_INT(add(&cfg, "alpha", "models/llm/alpha.gguf"), 0);
    put(&cfg, "models/llm/alpha.gguf", "hello");
    put(&cfg, "models/llm/alpha.bin", "hello, world");
    json_t *doc = registry_load(&cfg, &err);
    json_t *e = json_object_get(json_object_get(doc, "models"), "alpha");
    json_object_set_new(e, "active", json_true());
    json_incref(e);
    json_decref(doc);
    CHECK_INT(registry_add(&cfg, "alpha", e, &err), 0);
    json_decref(e);
    json_t *next = json_pack("{s:s,s:s,s:s,s:i,s:b,s:s}", "id", "alpha", "name", "Alpha 2", "path",
                             "models/llm/alpha.bin", "size", 12, "active", 0, "checksum",
                             "sha256:00");
    CHECK_INT(registry_replace(&cfg, "alpha", next, &err), 0);
    json_decref(next);
    CHECK(!exists(&cfg, "models/llm/alpha.gguf"));
    CHECK(exists(&cfg, "models/llm/alpha.bin"));
    json_t *got = registry_get(&cfg, "alpha", &err);
    CHECK(json_is_true(json_object_get(got, "active")));
    CHECK_STR(json_string_value(json_object_get(got, "checksum")), "sha256:00");
    CHECK_STR(json_string_value(json_object_get(got, "name")), "Alpha 2");
    json_decref(got);
    CHECK(registry_get(&cfg, "beta", &err) == NULL);
    CHECK_INT(err.status, 404);
    config_free(&cfg);
}

UNIT_TEST(remove_entry_and_file) {
    mg_config cfg;
    mg_error err;
    setup(&cfg);
    CHECK_INT(add(&cfg, "alpha", "models/llm/alpha.gguf"), 0);
    put(&cfg, "models/llm/alpha.gguf", "hello");
    int entry = -1, file = -1;
    CHECK_INT(registry_remove(&cfg, "alpha", &entry, &file, &err), 0);
    CHECK_INT(entry, 1);
    CHECK_INT(file, 1);
    CHECK(!exists(&cfg, "models/llm/alpha.gguf"));
    json_t *list = registry_list(&cfg, NULL, &err);
    CHECK_INT(json_object_size(json_object_get(list, "models")), 0);
    json_decref(list);

    /* An entry without its file: the entry goes, no file. */
    CHECK_INT(add(&cfg, "beta", "models/llm/beta.gguf"), 0);
    CHECK_INT(registry_remove(&cfg, "beta", &entry, &file, &err), 0);
    CHECK_INT(entry, 1);
    CHECK_INT(file, 0);

    /* An unregistered file: every regular file with that stem goes. */
    put(&cfg, "models/llm/gamma.gguf", "x");
    put(&cfg, "models/llm/gamma.bin", "x");
    put(&cfg, "models/llm/gamma2.gguf", "x");
    CHECK_INT(registry_remove(&cfg, "gamma", &entry, &file, &err), 0);
    CHECK_INT(entry, 0);
    CHECK_INT(file, 1);
    CHECK(!exists(&cfg, "models/llm/gamma.gguf"));
    CHECK(!exists(&cfg, "models/llm/gamma.bin"));
    CHECK(exists(&cfg, "models/llm/gamma2.gguf"));
    config_free(&cfg);
}

UNIT_TEST(remove_unknown_is_404) {
    mg_config cfg;
    mg_error err;
    setup(&cfg);
    int entry = -1, file = -1;
    CHECK_INT(registry_remove(&cfg, "nope", &entry, &file, &err), -1);
    CHECK_INT(err.status, 404);
    CHECK_STR(err.code, "not_found");
    CHECK_STR(err.message, "model 'nope' is neither registered nor present in models/llm");
    CHECK_INT(entry, 0);
    CHECK_INT(file, 0);
    CHECK_INT(registry_remove(&cfg, "../etc", NULL, NULL, &err), -1);
    CHECK_INT(err.status, 400);
    config_free(&cfg);
}

UNIT_TEST(corrupt_registry_is_preserved) {
    mg_config cfg;
    mg_error err;
    setup(&cfg);
    const char *bad = "{\"models\": {\n  \"a\": {,}\n}\n";
    put(&cfg, "config/models.json", bad);
    CHECK(registry_load(&cfg, &err) == NULL);
    CHECK_INT(err.status, 500);
    CHECK_STR(err.code, "registry_corrupt");
    CHECK_CONTAINS(err.message, "config/models.json");
    CHECK_CONTAINS(err.message, "line 2");
    CHECK_CONTAINS(err.message, "column");
    CHECK(registry_list(&cfg, NULL, &err) == NULL);
    CHECK_STR(err.code, "registry_corrupt");
    CHECK_INT(add(&cfg, "alpha", "models/llm/alpha.gguf"), -1);
    CHECK_INT(registry_remove(&cfg, "a", NULL, NULL, &err), -1);
    CHECK_STR(err.code, "registry_corrupt");
    char path[MG_PATH_MAX];
    char *now = fs_read_all(config_path(&cfg, path, "config/models.json"), NULL, NULL);
    CHECK_STR(now, bad);
    free(now);

    /* JSON of the wrong shape is refused the same way. */
    put(&cfg, "config/models.json", "[1, 2]");
    CHECK_INT(add(&cfg, "alpha", "models/llm/alpha.gguf"), -1);
    now = fs_read_all(config_path(&cfg, path, "config/models.json"), NULL, NULL);
    CHECK_STR(now, "[1, 2]");
    free(now);
    config_free(&cfg);
}

UNIT_TEST(path_traversal_entries_are_missing) {
    mg_config cfg;
    mg_error err;
    setup(&cfg);
    put(&cfg, "config/victim.gguf", "secret");
    put(&cfg, "models/llm/real.gguf", "x");
    CHECK_INT(add(&cfg, "up", "models/llm/../../config/victim.gguf"), 0);
    CHECK_INT(add(&cfg, "abs", "/etc/passwd"), 0);
    CHECK_INT(add(&cfg, "other", "config/victim.gguf"), 0);
    CHECK_INT(add(&cfg, "dot", "models/llm/./real.gguf"), 0);
    json_t *list = registry_list(&cfg, NULL, &err);
    CHECK_STR(status_of(list, "up"), "missing");
    CHECK_STR(status_of(list, "abs"), "missing");
    CHECK_STR(status_of(list, "other"), "missing");
    CHECK_STR(status_of(list, "dot"), "missing");
    CHECK_STR(status_of(list, "real"), "unregistered");
    json_decref(list);
    CHECK(!registry_is_installed(&cfg, "up"));
    int entry = -1, file = -1;
    CHECK_INT(registry_remove(&cfg, "up", &entry, &file, &err), 0);
    CHECK_INT(entry, 1);
    CHECK_INT(file, 0);
    CHECK_INT(registry_remove(&cfg, "other", &entry, &file, &err), 0);
    CHECK_INT(file, 0);
    CHECK(exists(&cfg, "config/victim.gguf"));
    config_free(&cfg);
}

UNIT_TEST(registered_file_under_other_name_not_unregistered) {
    mg_config cfg;
    mg_error err;
    setup(&cfg);
    CHECK_INT(add(&cfg, "alpha", "models/llm/alpha-v2.gguf"), 0);
    put(&cfg, "models/llm/alpha-v2.gguf", "12345");
    json_t *list = registry_list(&cfg, NULL, &err);
    CHECK_INT(json_object_size(json_object_get(list, "models")), 1);
    CHECK_STR(status_of(list, "alpha"), "installed");
    json_decref(list);
    config_free(&cfg);
}
