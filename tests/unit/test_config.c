/* test_config.c - server.json settings added in version 2 of the download sources:
 * url_rewrites (valid rules kept in order, each malformed rule an error that names it). */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "fs.h"
#include "unit.h"

/* Writes config/server.json with `text` and loads it. 0, or -1 with err. */
static int load(mg_config *cfg, const char *text, mg_error *err) {
    char dir[MG_PATH_MAX], path[MG_PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/config", unit_tmpdir());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/server.json", dir);
    if (fs_write_atomic(path, text, strlen(text), err) < 0) return -1;
    return config_load(cfg, unit_tmpdir(), err);
}

UNIT_TEST(url_rewrites_are_kept_in_order) {
    mg_config cfg;
    mg_error err;
    CHECK_INT(load(&cfg, "{\"url_rewrites\": [{\"prefix\": \"https://huggingface.co/\", "
                         "\"replace\": \"https://mirror.example/hf/\"}, {\"prefix\": "
                         "\"http://a/\", \"replace\": \"http://b/\"}]}", &err), 0);
    CHECK_INT(json_array_size(cfg.url_rewrites), 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(cfg.url_rewrites, 1), "replace")),
              "http://b/");
    mg_config copy;
    CHECK_INT(config_copy(&copy, &cfg), 0);
    CHECK(copy.url_rewrites != cfg.url_rewrites);
    CHECK_INT(json_array_size(copy.url_rewrites), 2);
    config_free(&copy);
    config_free(&cfg);
    CHECK_INT(load(&cfg, "{\"url_rewrites\": null}", &err), 0);
    CHECK(cfg.url_rewrites == NULL);
    config_free(&cfg);
}

UNIT_TEST(malformed_url_rewrites_name_the_rule) {
    static const struct { const char *text, *key; } cases[] = {
        {"{\"url_rewrites\": {}}", "url_rewrites"},
        {"{\"url_rewrites\": [1]}", "url_rewrites[0]"},
        {"{\"url_rewrites\": [{\"prefix\": \"https://a/\"}]}", "url_rewrites[0]"},
        {"{\"url_rewrites\": [{\"prefix\": \"https://a/\", \"replace\": \"https://b/\"}, "
         "{\"prefix\": \"\", \"replace\": \"https://b/\"}]}", "url_rewrites[1]"},
        {"{\"url_rewrites\": [{\"prefix\": \"https://a/\", \"replace\": \"ftp://b/\"}]}",
         "url_rewrites[0]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mg_config cfg;
        mg_error err;
        CHECK_INT(load(&cfg, cases[i].text, &err), -1);
        CHECK_STR(err.code, "invalid_config");
        CHECK_STR(err.parameter, cases[i].key);
        CHECK_CONTAINS(err.message, "server.json");
    }
}
