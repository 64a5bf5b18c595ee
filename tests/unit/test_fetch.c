/* test_fetch.c - the parts of fetch.c and sources.c that need no HTTP server: URL and header
 * checks, option defaults, refusals before any connection, the source list from server.json,
 * merging with clashes, and the status / refresh-request files. */
#include <stdlib.h>
#include <unistd.h>

#include <curl/curl.h>

#include "fetch.h"
#include "fs.h"
#include "sources.h"
#include "unit.h"

static const char *test_model_fmt =
    "{\"id\":\"%s\",\"name\":\"%s\",\"checksum\":\"sha256:"
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
    "\"downloadUrl\":\"https://example.org/%s.gguf\",\"sizeGb\":1.5}";

/* Writes `text` to dir/rel. */
static void test_write(const char *dir, const char *rel, const char *text) {
    char path[MG_PATH_MAX];
    fs_join(path, sizeof path, dir, rel);
    CHECK_INT(fs_write_atomic(path, text, strlen(text), NULL), 0);
}

/* A data root in the test's temporary directory with `server_json` (or none). */
static int test_root(mg_config *cfg, const char *server_json) {
    unsetenv("MG_GALLERY_URL");
    unsetenv("MG_ALLOW_HTTP");
    char dir[MG_PATH_MAX];
    fs_join(dir, sizeof dir, unit_tmpdir(), "config");
    fs_mkdirs(dir, 0755, NULL);
    if (server_json) test_write(unit_tmpdir(), "config/server.json", server_json);
    mg_error err;
    int rc = config_load(cfg, unit_tmpdir(), &err);
    if (rc != 0) fprintf(stderr, "config_load: %s\n", err.message);
    return rc;
}

UNIT_TEST(test_is_url) {
    CHECK(fetch_is_url("https://cdn.example.org/g.json"));
    CHECK(fetch_is_url("http://127.0.0.1:8000/g.json"));
    CHECK(fetch_is_url("ftp://x/y"));
    CHECK(!fetch_is_url("/srv/gallery.json"));
    CHECK(!fetch_is_url("config/models_gallery.json"));
    CHECK(!fetch_is_url("c:/x"));
    CHECK(!fetch_is_url(""));
    CHECK(!fetch_is_url(NULL));
}

UNIT_TEST(test_url_check) {
    mg_error err;
    CHECK_INT(fetch_url_check("https://cdn.example.org/g.json", 0, &err), 0);
    CHECK_INT(fetch_url_check("http://cdn.example.org/g.json", 1, &err), 0);
    CHECK_INT(fetch_url_check("http://cdn.example.org/g.json", 0, &err), -1);
    CHECK_STR(err.code, "invalid_url");
    CHECK_CONTAINS(err.message, "allow_http");
    CHECK_INT(fetch_url_check("file:///etc/passwd", 1, &err), -1);
    CHECK_CONTAINS(err.message, "file");
    CHECK_INT(fetch_url_check("ftp://example.org/g.json", 1, &err), -1);
    CHECK_INT(fetch_url_check("not a url", 1, &err), -1);
    CHECK_INT(fetch_url_check("/local/path.json", 1, &err), -1);
    CHECK_INT(fetch_url_check(NULL, 1, &err), -1);
}

UNIT_TEST(test_header_clean) {
    char out[FETCH_HEADER_MAX];
    CHECK_INT(fetch_header_clean(out, sizeof out, "  \"abc\"\r\n", 9), 0);
    CHECK_STR(out, "\"abc\"");
    CHECK_INT(fetch_header_clean(out, sizeof out, "W/\"x\"", 5), 0);
    CHECK_STR(out, "W/\"x\"");
    CHECK_INT(fetch_header_clean(out, sizeof out, "a\r\nX-Evil: 1", 12), -1);
    CHECK_STR(out, "");
    CHECK_INT(fetch_header_clean(out, sizeof out, "   ", 3), -1);
    CHECK_INT(fetch_header_clean(out, sizeof out, NULL, 0), -1);
    char big[FETCH_HEADER_MAX + 10];
    memset(big, 'a', sizeof big);
    CHECK_INT(fetch_header_clean(out, sizeof out, big, sizeof big), -1);
}

UNIT_TEST(test_options_defaults_and_env) {
    fetch_options opt;
    unsetenv("MG_FETCH_TIMEOUT_S");
    unsetenv("MG_FETCH_CONNECT_TIMEOUT_S");
    unsetenv("MG_FETCH_MAX_BYTES");
    fetch_options_init(&opt, 0);
    CHECK_INT(opt.timeout_s, 60);
    CHECK_INT(opt.connect_timeout_s, 5);
    CHECK_INT(opt.max_redirects, 5);
    CHECK_INT(opt.max_bytes, 64LL * 1024 * 1024);
    CHECK_INT(opt.allow_http, 0);
    CHECK(opt.etag == NULL && opt.last_modified == NULL && opt.cancel == NULL);
    setenv("MG_FETCH_TIMEOUT_S", "3", 1);
    setenv("MG_FETCH_CONNECT_TIMEOUT_S", "junk", 1);
    setenv("MG_FETCH_MAX_BYTES", "1000", 1);
    fetch_options_init(&opt, 1);
    CHECK_INT(opt.timeout_s, 3);
    CHECK_INT(opt.connect_timeout_s, 5);
    CHECK_INT(opt.max_bytes, 1000);
    CHECK_INT(opt.allow_http, 1);
    unsetenv("MG_FETCH_TIMEOUT_S");
    unsetenv("MG_FETCH_CONNECT_TIMEOUT_S");
    unsetenv("MG_FETCH_MAX_BYTES");
}

UNIT_TEST(test_fetch_refuses_before_connecting) {
    fetch_result res;
    mg_error err;
    fetch_result_init(&res);
    fetch_options opt;
    fetch_options_init(&opt, 0);
    CHECK(fetch_gallery("http://127.0.0.1:9/g.json", &opt, &res, &err) == NULL);
    CHECK_STR(err.code, "invalid_url");
    CHECK_INT(res.http_status, 0);
    CHECK(fetch_gallery("file:///etc/hostname", NULL, &res, &err) == NULL);
    CHECK_STR(err.code, "invalid_url");
    fetch_result_clear(&res);
}

UNIT_TEST(test_fetch_connection_refused) {
    fetch_result res;
    mg_error err;
    fetch_options opt;
    fetch_options_init(&opt, 1);
    opt.etag = "\"v1\"";
    fetch_result_init(&res);
    /* Port 9 (discard) on loopback: nothing listens in the test environment. */
    size_t len = 1;
    char *body = fetch_body("http://127.0.0.1:9/g.json", &opt, &res, &len, &err);
    CHECK(body == NULL);
    CHECK_STR(err.code, "fetch_failed");
    CHECK_INT(err.status, 502);
    CHECK_INT(res.http_status, 0);
    CHECK_INT(res.not_modified, 0);
    CHECK_INT(len, 0);
    free(body);
    fetch_result_clear(&res);
}

UNIT_TEST(test_fetch_cancelled) {
    fetch_result res;
    mg_error err;
    fetch_options opt;
    atomic_int stop = 1;
    fetch_options_init(&opt, 1);
    opt.cancel = &stop;
    fetch_result_init(&res);
    CHECK(fetch_body("http://127.0.0.1:9/g.json", &opt, &res, NULL, &err) == NULL);
    CHECK(strcmp(err.code, "cancelled") == 0 || strcmp(err.code, "fetch_failed") == 0);
    fetch_result_clear(&res);
}

UNIT_TEST(test_load_gallery_path) {
    char good[2048], m1[512], m2[512];
    snprintf(m1, sizeof m1, test_model_fmt, "alpha", "Alpha", "alpha");
    snprintf(m2, sizeof m2, test_model_fmt, "beta", "Beta", "beta");
    snprintf(good, sizeof good, "{\"version\":\"1\",\"models\":[%s,%s,{\"id\":\"bad\"}]}", m1,
             m2);
    test_write(unit_tmpdir(), "good.json", good);
    test_write(unit_tmpdir(), "none.json", "{\"version\":\"1\",\"models\":[{\"id\":\"bad\"}]}");
    test_write(unit_tmpdir(), "broken.json", "{\"models\": [");
    char path[MG_PATH_MAX];
    fetch_result res;
    mg_error err;
    fetch_result_init(&res);
    fs_join(path, sizeof path, unit_tmpdir(), "good.json");
    json_t *g = load_gallery(path, NULL, &res, &err);
    CHECK(g != NULL);
    CHECK_INT(json_array_size(json_object_get(g, "models")), 2);
    CHECK_INT(json_array_size(res.invalid), 1);
    CHECK_INT(res.http_status, 0);
    json_decref(g);
    fs_join(path, sizeof path, unit_tmpdir(), "none.json");
    CHECK(load_gallery(path, NULL, &res, &err) == NULL);
    CHECK_STR(err.code, "no_valid_model");
    CHECK_INT(json_array_size(res.invalid), 1);
    fs_join(path, sizeof path, unit_tmpdir(), "broken.json");
    CHECK(load_gallery(path, NULL, NULL, &err) == NULL);
    CHECK_CONTAINS(err.message, "line");
    CHECK(load_gallery("/nonexistent/gallery.json", NULL, NULL, &err) == NULL);
    fetch_result_clear(&res);
}

UNIT_TEST(test_sources_default_local) {
    mg_config cfg;
    sources_list list;
    if (test_root(&cfg, NULL) != 0) { CHECK(0); return; }
    CHECK_INT(sources_remote_mode(&cfg), 0);
    sources_load(&cfg, &list, NULL);
    CHECK_INT(list.count, 1);
    CHECK_STR(list.items[0].name, "default");
    CHECK(list.items[0].url == NULL);
    CHECK_CONTAINS(list.items[0].path, "/config/models_gallery.json");
    CHECK_STR(list.items[0].error, "");
    sources_free(&list);
    config_free(&cfg);
}

UNIT_TEST(test_sources_gallery_url) {
    mg_config cfg;
    sources_list list;
    if (test_root(&cfg, "{\"gallery_url\": \"https://cdn.example.org/g.json\"}") != 0)
        { CHECK(0); return; }
    CHECK_INT(sources_remote_mode(&cfg), 1);
    sources_load(&cfg, &list, NULL);
    CHECK_INT(list.count, 1);
    CHECK_STR(list.items[0].name, "default");
    CHECK_STR(list.items[0].url, "https://cdn.example.org/g.json");
    CHECK(list.items[0].path == NULL);
    sources_free(&list);
    config_free(&cfg);
    /* plain http without allow_http: listed, with the reason */
    if (test_root(&cfg, "{\"gallery_url\": \"http://cdn.example.org/g.json\"}") != 0)
        { CHECK(0); return; }
    sources_load(&cfg, &list, NULL);
    CHECK_CONTAINS(list.items[0].error, "allow_http");
    sources_free(&list);
    config_free(&cfg);
}

UNIT_TEST(test_sources_galleries_list) {
    mg_config cfg;
    sources_list list;
    const char *json =
        "{\"allow_http\": true, \"galleries\": ["
        "{\"name\": \"main\", \"url\": \"https://cdn.example.org/g.json\"},"
        "{\"name\": \"lab\", \"path\": \"config/lab.json\"},"
        "{\"name\": \"abs\", \"path\": \"/srv/g.json\"},"
        "{\"name\": \"main\", \"url\": \"https://other.example.org/g.json\"},"
        "{\"name\": \"../x\", \"url\": \"https://x.example.org/g.json\"},"
        "{\"name\": \"both\", \"url\": \"https://x.example.org/\", \"path\": \"p.json\"},"
        "{\"name\": \"neither\"},"
        "{\"name\": \"ftp\", \"url\": \"ftp://x.example.org/g.json\"},"
        "7]}";
    if (test_root(&cfg, json) != 0) { CHECK(0); return; }
    CHECK_INT(sources_remote_mode(&cfg), 1);
    sources_load(&cfg, &list, NULL);
    CHECK_INT(list.count, 9);
    CHECK_STR(list.items[0].name, "main");
    CHECK_STR(list.items[0].error, "");
    CHECK_STR(list.items[1].name, "lab");
    CHECK_CONTAINS(list.items[1].path, "/config/lab.json");
    CHECK(list.items[1].path[0] == '/');
    CHECK_STR(list.items[2].path, "/srv/g.json");
    CHECK_CONTAINS(list.items[3].error, "earlier source");
    CHECK_CONTAINS(list.items[4].error, "name must be");
    CHECK_CONTAINS(list.items[5].error, "exactly one");
    CHECK_CONTAINS(list.items[6].error, "exactly one");
    CHECK_CONTAINS(list.items[7].error, "not allowed");
    CHECK_CONTAINS(list.items[8].error, "must be an object");
    CHECK_STR(list.items[8].name, "galleries[8]");
    sources_free(&list);
    config_free(&cfg);
}

/* A gallery holding models with the given ids (the name is "<id> from <tag>"). */
static json_t *test_gallery(const char *tag, const char *ids[]) {
    json_t *models = json_array();
    for (int i = 0; ids[i]; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s from %s", ids[i], tag);
        json_array_append_new(models, json_pack("{s:s, s:s, s:f}", "id", ids[i], "name", name,
                                                "sizeGb", 1.0));
    }
    return json_pack("{s:s, s:s, s:o}", "version", tag, "generatedAt", "2026-01-01", "models",
                     models);
}

UNIT_TEST(test_merge_first_wins) {
    const char *a_ids[] = {"x", "y", NULL}, *b_ids[] = {"y", "z", NULL};
    json_t *a = test_gallery("A", a_ids), *b = test_gallery("B", b_ids), *clashes = NULL;
    json_t *parts = json_pack("[{s:s, s:o}, {s:s, s:o}]", "name", "a", "gallery", a, "name", "b",
                              "gallery", b);
    json_t *m = sources_merge(parts, &clashes);
    json_t *models = json_object_get(m, "models");
    CHECK_INT(json_array_size(models), 3);
    CHECK_STR(json_string_value(json_object_get(m, "version")), "A");
    const char *want_id[] = {"x", "y", "z"}, *want_src[] = {"a", "a", "b"};
    for (size_t i = 0; i < 3 && i < json_array_size(models); i++) {
        json_t *model = json_array_get(models, i);
        CHECK_STR(json_string_value(json_object_get(model, "id")), want_id[i]);
        CHECK_STR(json_string_value(json_object_get(model, "gallery")), want_src[i]);
    }
    CHECK_STR(json_string_value(json_object_get(json_array_get(models, 1), "name")),
              "y from A");
    CHECK_INT(json_array_size(clashes), 1);
    json_t *c = json_array_get(clashes, 0);
    CHECK_STR(json_string_value(json_object_get(c, "id")), "y");
    CHECK_STR(json_string_value(json_object_get(c, "kept")), "a");
    CHECK_STR(json_string_value(json_object_get(c, "dropped")), "b");
    /* the inputs are not tagged by the merge */
    CHECK(json_object_get(json_array_get(json_object_get(a, "models"), 0), "gallery") == NULL);
    json_decref(m);
    json_decref(clashes);
    json_decref(parts);
}

UNIT_TEST(test_merge_empty_and_tag) {
    json_t *parts = json_array(), *clashes = NULL;
    json_t *m = sources_merge(parts, &clashes);
    CHECK_INT(json_array_size(json_object_get(m, "models")), 0);
    CHECK(json_is_null(json_object_get(m, "version")));
    CHECK_INT(json_array_size(clashes), 0);
    json_decref(m);
    json_decref(clashes);
    json_decref(parts);
    const char *ids[] = {"p", "q", NULL};
    json_t *g = test_gallery("T", ids);
    sources_tag_models(g, "default");
    CHECK_STR(json_string_value(json_object_get(
                  json_array_get(json_object_get(g, "models"), 1), "gallery")),
              "default");
    json_decref(g);
}

UNIT_TEST(test_status_and_request) {
    mg_config cfg;
    mg_error err;
    if (test_root(&cfg, "{\"gallery_url\": \"https://cdn.example.org/g.json\"}") != 0)
        { CHECK(0); return; }
    /* no status file yet: made from the configuration */
    json_t *st = sources_status(&cfg, &err);
    CHECK(st != NULL);
    CHECK_STR(json_string_value(json_object_get(st, "mode")), "remote");
    json_t *src = json_array_get(json_object_get(st, "sources"), 0);
    CHECK_STR(json_string_value(json_object_get(src, "name")), "default");
    CHECK_STR(json_string_value(json_object_get(src, "url")), "https://cdn.example.org/g.json");
    CHECK(json_is_null(json_object_get(src, "path")));
    CHECK(json_is_null(json_object_get(src, "last_attempt")));
    CHECK(json_is_null(json_object_get(st, "last_request_id")));
    json_decref(st);
    /* a request file */
    long long id = 0;
    CHECK_INT(sources_request_refresh(&cfg, &id, &err), 0);
    CHECK(id > 0);
    char path[MG_PATH_MAX];
    json_t *req = json_load_file(config_path(&cfg, path, SOURCES_REQUEST_REL), 0, NULL);
    CHECK_INT(json_integer_value(json_object_get(req, "request_id")), id);
    json_decref(req);
    /* the refresher's file is answered as it is */
    test_write(cfg.root, SOURCES_STATUS_REL,
               "{\"mode\": \"remote\", \"last_request_id\": 42, \"sources\": []}");
    st = sources_status(&cfg, &err);
    CHECK_INT(json_integer_value(json_object_get(st, "last_request_id")), 42);
    json_decref(st);
    config_free(&cfg);
    /* local mode: made from the configuration, keeping the handled request id */
    if (test_root(&cfg, "{}") != 0) { CHECK(0); return; }
    st = sources_status(&cfg, &err);
    CHECK_STR(json_string_value(json_object_get(st, "mode")), "local");
    CHECK_INT(json_integer_value(json_object_get(st, "last_request_id")), 42);
    src = json_array_get(json_object_get(st, "sources"), 0);
    CHECK_CONTAINS(json_string_value(json_object_get(src, "path")), "models_gallery.json");
    json_decref(st);
    config_free(&cfg);
}

UNIT_TEST(test_store_path) {
    mg_config cfg;
    if (test_root(&cfg, NULL) != 0) { CHECK(0); return; }
    char path[MG_PATH_MAX];
    CHECK_CONTAINS(sources_store_path(&cfg, "main", path), "/cache/sources/main.json");
    config_free(&cfg);
}

__attribute__((constructor)) static void test_fetch_global_init(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
}
