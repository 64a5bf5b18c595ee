/* test_nodes.c - the settings of several nodes in config/server.json: node_name (default the
 * host name) and redis_url (only what nginx.conf can hold as it is). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "unit.h"

static void nodes_put_server(const mg_config *cfg, const char *text) {
    char path[MG_PATH_MAX];
    config_path(cfg, path, "config/server.json");
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* Loads `text` as server.json; 0 with *cfg to free, or -1 with err. */
static int nodes_load(const char *text, mg_config *cfg, mg_error *err) {
    mg_config root;
    mg_error_clear(err);
    CHECK(config_load_or_defaults(&root, unit_tmpdir(), err) >= 0); /* the previous file */
    nodes_put_server(&root, text);
    int rc = config_load(cfg, root.root, err);
    config_free(&root);
    return rc;
}

UNIT_TEST(node_name_defaults_to_the_host_name) {
    mg_config cfg;
    mg_error err;
    CHECK_INT(nodes_load("{}", &cfg, &err), 0);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    host[CONFIG_NODE_MAX] = '\0';
    if (config_node_name_ok(host)) CHECK_STR(cfg.node_name, host);
    CHECK(config_node_name_ok(cfg.node_name));
    CHECK(cfg.redis_url == NULL);
    config_free(&cfg);
}

UNIT_TEST(node_name_and_redis_url_accepted) {
    static const char *const ok[][3] = {
        {"{\"node_name\": \"a\", \"redis_url\": \"redis://127.0.0.1:6379\"}", "a",
         "redis://127.0.0.1:6379"},
        {"{\"node_name\": \"node-2.eu_west\", \"redis_url\": \"redis://redis.lan\"}",
         "node-2.eu_west", "redis://redis.lan"},
        {"{\"redis_url\": \"redis://:s3cret-pw@10.0.0.5:6380/2\"}", NULL,
         "redis://:s3cret-pw@10.0.0.5:6380/2"},
        {"{\"redis_url\": \"redis://[::1]:6379/\"}", NULL, "redis://[::1]:6379/"},
        {"{\"redis_url\": null, \"node_name\": null}", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        mg_config cfg;
        mg_error err;
        if (nodes_load(ok[i][0], &cfg, &err) != 0) {
            unit_fail(__FILE__, __LINE__, "refused %s: %s", ok[i][0], err.message);
            continue;
        }
        if (ok[i][1]) CHECK_STR(cfg.node_name, ok[i][1]);
        if (ok[i][2])
            CHECK_STR(cfg.redis_url, ok[i][2]);
        else
            CHECK(cfg.redis_url == NULL);
        mg_config copy;
        CHECK_INT(config_copy(&copy, &cfg), 0);
        CHECK_STR(copy.node_name, cfg.node_name);
        CHECK(!cfg.redis_url || (copy.redis_url != cfg.redis_url &&
                                 strcmp(copy.redis_url, cfg.redis_url) == 0));
        config_free(&copy);
        config_free(&cfg);
    }
}

UNIT_TEST(node_name_and_redis_url_refused) {
    static const char *const bad[][2] = {
        {"{\"node_name\": \"\"}", "node_name"},
        {"{\"node_name\": \"-a\"}", "node_name"},
        {"{\"node_name\": \"a b\"}", "node_name"},
        {"{\"node_name\": \"a/b\"}", "node_name"},
        {"{\"node_name\": "
         "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
         "node_name"}, /* 65 */
        {"{\"node_name\": 5}", "node_name"},
        {"{\"redis_url\": \"http://127.0.0.1:6379\"}", "redis_url"},
        {"{\"redis_url\": \"rediss://127.0.0.1:6379\"}", "redis_url"},
        {"{\"redis_url\": \"redis://\"}", "redis_url"},
        {"{\"redis_url\": \"redis://host:6379/0?x=1\"}", "redis_url"},
        {"{\"redis_url\": \"redis://host:6379/0#f\"}", "redis_url"},
        {"{\"redis_url\": \"redis://host:6379/abc\"}", "redis_url"},
        {"{\"redis_url\": \"redis://user:pw@host\"}", "redis_url"},
        {"{\"redis_url\": \"redis://host:99999\"}", "redis_url"},
        {"{\"redis_url\": \"redis://ho st\"}", "redis_url"},
        {"{\"redis_url\": \"redis://host;include /etc/passwd\"}", "redis_url"},
        {"{\"redis_url\": \"redis://:p\\\"w@host\"}", "redis_url"},
        {"{\"redis_url\": \"redis://:p$w@host\"}", "redis_url"},
        {"{\"redis_url\": \"redis://host}\"}", "redis_url"},
        {"{\"redis_url\": \"redis://host\\nx\"}", "redis_url"},
        {"{\"redis_url\": 6379}", "redis_url"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        mg_config cfg;
        mg_error err;
        if (nodes_load(bad[i][0], &cfg, &err) == 0) {
            unit_fail(__FILE__, __LINE__, "accepted %s", bad[i][0]);
            config_free(&cfg);
            continue;
        }
        CHECK_STR(err.code, "invalid_config");
        CHECK_STR(err.parameter, bad[i][1]);
        CHECK_CONTAINS(err.message, "server.json");
    }
}

UNIT_TEST(node_name_ok_rules) {
    CHECK(config_node_name_ok("a"));
    CHECK(config_node_name_ok("0.b_c-d"));
    CHECK(!config_node_name_ok(""));
    CHECK(!config_node_name_ok(".a"));
    CHECK(!config_node_name_ok("a:b"));
    CHECK(!config_node_name_ok("\xc3\xa4"));
}
