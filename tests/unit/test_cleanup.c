/* test_cleanup.c - leftovers (core/cleanup.c): which files are items of which kind, that a
 * registered model, an unfinished job's partial and a live writer's temporary file never
 * are, and that the removal takes exactly the items (unregistered files only when asked). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "config.h"
#include "job.h"
#include "registry.h"
#include "unit.h"

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

/* Sets the modification time of root/rel `age_s` seconds back. */
static void age(const mg_config *cfg, const char *rel, long age_s) {
    char path[MG_PATH_MAX];
    struct timeval tv[2];
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= age_s;
    tv[1] = tv[0];
    CHECK_INT(utimes(config_path(cfg, path, rel), tv), 0);
}

/* The pid of a process that has ended. */
static long dead_pid(void) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    waitpid(pid, NULL, 0);
    return (long)pid;
}

/* The item of `list` ({"items": [...]}) with `path`, or NULL. Borrowed. */
static json_t *item(json_t *list, const char *path) {
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(list, "items"), i, it) {
        if (strcmp(json_string_value(json_object_get(it, "path")), path) == 0) return it;
    }
    return NULL;
}

static const char *kind(json_t *list, const char *path) {
    return json_string_value(json_object_get(item(list, path), "kind"));
}

UNIT_TEST(temp_names) {
    CHECK_INT(cleanup_temp_pid("models.json.tmp.1234.7"), 1234);
    CHECK_INT(cleanup_temp_pid("index.tmp.99"), 99);
    CHECK_INT(cleanup_temp_pid(".0123456789abcdef.json.4321.tmp"), 4321);
    CHECK_INT(cleanup_temp_pid("a.tmp.x.tmp.55.1"), 55);
    CHECK_INT(cleanup_temp_pid("model.tmp.gguf"), 0);
    CHECK_INT(cleanup_temp_pid("x.tmp.12a"), 0);
    CHECK_INT(cleanup_temp_pid("x.tmp."), 0);
    CHECK_INT(cleanup_temp_pid(".tmp"), 0);
    CHECK_INT(cleanup_temp_pid("plain.gguf"), 0);
}

/* A data root with one of each kind, and files that are never items. */
static void plant(mg_config *cfg, char job_tmp[64]) {
    mg_error err;
    char rel[128];
    json_t *entry = json_pack("{s:s,s:s,s:i}", "id", "alpha", "path", "models/llm/alpha.gguf",
                              "size", 5);
    CHECK_INT(registry_add(cfg, "alpha", entry, &err), 0);
    json_decref(entry);
    put(cfg, "models/llm/alpha.gguf", "hello");              /* registered */
    put(cfg, "models/llm/stray model.bin", "0123456789");     /* unregistered */
    put(cfg, "models/.partial/beta.gguf.part", "123");        /* partial, no job */
    put(cfg, "models/.partial/beta.gguf.part.meta", "{}");
    put(cfg, "models/.partial/gamma.gguf.part", "1234");      /* partial of a queued job */
    put(cfg, "models/.partial/delta.gguf.part.meta", "{\"url\":1}"); /* orphan meta */
    put(cfg, "models/.partial/junk.txt", "j");                 /* stray file: temp */
    snprintf(rel, sizeof rel, "config/models.json.tmp.%ld.3", dead_pid());
    put(cfg, rel, "dead writer");                              /* temp: writer gone */
    snprintf(rel, sizeof rel, "cache/gallery_cache.json.tmp.%d.1", (int)getpid());
    put(cfg, rel, "live writer");                              /* live and recent: not */
    snprintf(job_tmp, 64, "jobs/.0123456789abcdef.json.%d.tmp", (int)getpid());
    put(cfg, job_tmp, "old");
    age(cfg, job_tmp, 7200);                                   /* live but old: temp */
    json_t *m = json_pack("{s:s,s:s,s:s,s:s,s:f}", "id", "gamma", "name", "G", "downloadUrl",
                          "https://example.com/gamma.gguf", "checksum",
                          "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                          "sizeGb", 1.0);
    int created;
    json_decref(job_enqueue(cfg, m, &created, &err));
    json_decref(m);
}

UNIT_TEST(scan_and_remove) {
    mg_config cfg;
    mg_error err;
    char job_tmp[64], live[128];
    if (config_load(&cfg, unit_tmpdir(), &err) != 0)
        unit_fail(__FILE__, __LINE__, "%s", err.message);
    plant(&cfg, job_tmp);
    snprintf(live, sizeof live, "cache/gallery_cache.json.tmp.%d.1", (int)getpid());
    json_t *list = cleanup_scan(&cfg, &err);
    CHECK(list != NULL);
    CHECK_INT(json_array_size(json_object_get(list, "items")), 6);
    CHECK_STR(kind(list, "models/llm/stray model.bin"), "unregistered");
    CHECK_STR(kind(list, "models/.partial/beta.gguf.part"), "partial");
    CHECK_INT(json_integer_value(json_object_get(item(list, "models/.partial/beta.gguf.part"),
                                                 "bytes")),
              5);
    CHECK_STR(kind(list, "models/.partial/delta.gguf.part.meta"), "orphan_meta");
    CHECK_STR(kind(list, "models/.partial/junk.txt"), "temp");
    CHECK_STR(kind(list, job_tmp), "temp");
    CHECK(json_integer_value(json_object_get(item(list, job_tmp), "age_s")) >= 7199);
    CHECK(item(list, "models/llm/alpha.gguf") == NULL);
    CHECK(item(list, "models/.partial/gamma.gguf.part") == NULL);
    CHECK(item(list, live) == NULL);
    CHECK_INT(json_integer_value(json_object_get(list, "bytes")), 10 + 5 + 9 + 1 + 3 + 11);
    json_t *temp = NULL;
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(list, "items"), i, it) {
        if (strncmp(json_string_value(json_object_get(it, "path")), "config/", 7) == 0) temp = it;
    }
    CHECK_STR(json_string_value(json_object_get(temp, "kind")), "temp");
    json_decref(list);

    /* without include=unregistered: everything but the unregistered file */
    json_t *done = cleanup_run(&cfg, 0, &err);
    CHECK_INT(json_array_size(json_object_get(done, "items")), 5);
    CHECK_INT(json_array_size(json_object_get(done, "failed")), 0);
    CHECK_INT(json_integer_value(json_object_get(done, "bytes")), 5 + 9 + 1 + 3 + 11);
    json_decref(done);
    CHECK(!exists(&cfg, "models/.partial/beta.gguf.part"));
    CHECK(!exists(&cfg, "models/.partial/beta.gguf.part.meta"));
    CHECK(!exists(&cfg, "models/.partial/delta.gguf.part.meta"));
    CHECK(!exists(&cfg, job_tmp));
    CHECK(exists(&cfg, "models/llm/stray model.bin"));
    CHECK(exists(&cfg, "models/llm/alpha.gguf"));
    CHECK(exists(&cfg, "models/.partial/gamma.gguf.part"));
    CHECK(exists(&cfg, live));
    CHECK(exists(&cfg, "config/models.json"));

    done = cleanup_run(&cfg, 1, &err);
    CHECK_INT(json_array_size(json_object_get(done, "items")), 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(done, "items"), 0),
                                                "path")),
              "models/llm/stray model.bin");
    json_decref(done);
    CHECK(!exists(&cfg, "models/llm/stray model.bin"));
    list = cleanup_scan(&cfg, &err);
    CHECK_INT(json_array_size(json_object_get(list, "items")), 0);
    CHECK_INT(json_integer_value(json_object_get(list, "bytes")), 0);
    json_decref(list);
    config_free(&cfg);
}
