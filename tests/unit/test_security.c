/* test_security.c - the core parts of "safe by default": URL redaction, escaped log lines,
 * file operations that refuse symbolic links, settings checked for length and kept when
 * broken, and the bounds of the search query. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fs.h"
#include "log.h"
#include "redact.h"
#include "search.h"
#include "unit.h"

/* ---- helpers ---------------------------------------------------------------------- */

static void setup(mg_config *cfg) {
    mg_error err;
    if (config_load(cfg, unit_tmpdir(), &err) != 0)
        unit_fail(__FILE__, __LINE__, "%s", err.message);
}

/* Writes `text` to the absolute `path` with plain stdio (as a person or an attacker would). */
static void put_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* The whole file at `path` (static buffer), or "" when unreadable. */
static const char *slurp(const char *path) {
    static char buf[65536];
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return buf;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* A path in the test's directory. */
static const char *tmp(char *out, const char *rel) {
    snprintf(out, MG_PATH_MAX, "%s/%s", unit_tmpdir(), rel);
    return out;
}

/* ---- redaction -------------------------------------------------------------------- */

UNIT_TEST(redact_hides_credentials_and_query) {
    char out[512];
    CHECK_STR(redact_text(out, sizeof out, "https://user:pw@cdn.example/gallery.json?sig=abc"),
              "https://***@cdn.example/gallery.json?***");
    CHECK_STR(redact_text(out, sizeof out, "https://cdn.example:8443/a/b.json"),
              "https://cdn.example:8443/a/b.json");
    CHECK_STR(redact_text(out, sizeof out, "http://tok@h/x#frag"), "http://***@h/x#***");
    CHECK_STR(redact_text(out, sizeof out, "https://h?only=query"), "https://h?***");
    CHECK_STR(redact_text(out, sizeof out, "no url here: a://"), "no url here: a://");
}

UNIT_TEST(redact_inside_sentences) {
    char out[512];
    CHECK_STR(redact_text(out, sizeof out,
                          "download failed: HTTP 404 from https://u:p@dl.example/m.gguf?t=1 "
                          "(mirror http://k@m.example/x?y), retrying"),
              "download failed: HTTP 404 from https://***@dl.example/m.gguf?*** "
              "(mirror http://***@m.example/x?***), retrying");
    CHECK_STR(redact_text(out, sizeof out, "\"https://a:b@c/d?e\""), "\"https://***@c/d?***\"");
    /* an unparsable URL is hidden all the same */
    CHECK_STR(redact_text(out, sizeof out, "https://us er@x"), "https://us er@x");
    CHECK_STR(redact_text(out, sizeof out, "https://[bad@host]/?q"), "https://***@host]/?***");
    /* cut short, never overflowing */
    char small[12];
    redact_text(small, sizeof small, "https://user:pw@cdn.example/");
    CHECK_INT(strlen(small), sizeof small - 1);
}

UNIT_TEST(redact_json_walks_strings) {
    json_t *doc = json_pack("{s:s, s:[{s:s, s:s}], s:i}", "url", "https://a:b@h/g.json?k=v",
                            "sources", "error", "https://h/x?token=1: HTTP 500", "name",
                            "default", "n", 3);
    redact_json(doc);
    CHECK_STR(json_string_value(json_object_get(doc, "url")), "https://***@h/g.json?***");
    json_t *src = json_array_get(json_object_get(doc, "sources"), 0);
    CHECK_STR(json_string_value(json_object_get(src, "error")), "https://h/x?***: HTTP 500");
    CHECK_STR(json_string_value(json_object_get(src, "name")), "default");
    CHECK(redact_needed("x https://u@h") && !redact_needed("https://h/p") && !redact_needed(NULL));
    json_decref(doc);
}

/* ---- log lines -------------------------------------------------------------------- */

UNIT_TEST(log_escape_controls) {
    char out[256];
    CHECK_STR(log_escape(out, sizeof out, "a\nb\rc\td\x01" "e\x7f"), "a\\nb\\rc\\td\\x01e\\x7f");
    CHECK_STR(log_escape(out, sizeof out, "csi \xc2\x9b[2J ok \xc3\xa9"),
              "csi \\u009b[2J ok \xc3\xa9");
    char small[6];
    CHECK_STR(log_escape(small, sizeof small, "ab\ncd"), "ab\\nc");
}

/* Runs log_warn with stderr sent to a file; returns what was written. */
static const char *log_capture(const char *id, const char *url) {
    char path[MG_PATH_MAX];
    tmp(path, "log.txt");
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDERR_FILENO);
    close(fd);
    log_warn("job 0123456789abcdef: %s failed: HTTP 404 from %s", id, url);
    dup2(saved, STDERR_FILENO);
    close(saved);
    return slurp(path);
}

UNIT_TEST(log_lines_cannot_be_forged) {
    const char *text = log_capture("evil\n2026-01-01T00:00:00Z [info] mg-installer[1]: job "
                                   "x: evil installed",
                                   "https://user:secret@dl.example/m.gguf?token=hunter2");
    CHECK(strchr(text, '\n') == text + strlen(text) - 1); /* one line */
    CHECK_CONTAINS(text, "evil\\n2026-01-01T00:00:00Z [info]");
    CHECK_CONTAINS(text, "https://***@dl.example/m.gguf?***");
    CHECK(strstr(text, "secret") == NULL && strstr(text, "hunter2") == NULL);
}

/* ---- files and links -------------------------------------------------------------- */

UNIT_TEST(fs_write_replaces_a_link_never_follows_it) {
    char target[MG_PATH_MAX], link[MG_PATH_MAX];
    mg_error err;
    tmp(target, "outside.txt");
    tmp(link, "file.json");
    put_file(target, "precious");
    CHECK_INT(symlink(target, link), 0);
    CHECK_INT(fs_write_atomic(link, "new", 3, &err), 0);
    CHECK_STR(slurp(target), "precious");
    struct stat st;
    CHECK(lstat(link, &st) == 0 && S_ISREG(st.st_mode));
    CHECK_STR(slurp(link), "new");
}

UNIT_TEST(fs_open_refuses_links) {
    char target[MG_PATH_MAX], link[MG_PATH_MAX];
    mg_error err;
    tmp(target, "outside.txt");
    tmp(link, "x.part");
    put_file(target, "precious");
    CHECK_INT(symlink(target, link), 0);
    errno = 0;
    CHECK_INT(fs_open(link, O_RDWR | O_CREAT, 0644, &err), -1);
    CHECK_INT(errno, ELOOP);
    CHECK_STR(err.code, "symlink_refused");
    CHECK_CONTAINS(err.message, "is a symbolic link; refusing to follow it");
    /* a dangling link is refused too (O_CREAT would create its target) */
    char dangling[MG_PATH_MAX], nowhere[MG_PATH_MAX];
    tmp(dangling, "y.part");
    CHECK_INT(symlink(tmp(nowhere, "created-outside"), dangling), 0);
    CHECK_INT(fs_open(dangling, O_WRONLY | O_CREAT, 0644, &err), -1);
    CHECK(access(nowhere, F_OK) != 0);
    /* removing the link removes the link only */
    CHECK_INT(fs_unlink(link, &err), 0);
    CHECK_STR(slurp(target), "precious");
    CHECK(access(link, F_OK) != 0);
    CHECK_STR(slurp(target), "precious");
}

UNIT_TEST(fs_refuses_linked_directories) {
    char outside[MG_PATH_MAX], linked[MG_PATH_MAX], path[MG_PATH_MAX], victim[MG_PATH_MAX];
    mg_error err;
    tmp(outside, "outside");
    CHECK_INT(mkdir(outside, 0755), 0);
    tmp(victim, "outside/victim.json");
    put_file(victim, "precious");
    tmp(linked, "root");
    CHECK_INT(symlink(outside, linked), 0);
    tmp(path, "root/victim.json");
    CHECK_INT(fs_write_atomic(path, "x", 1, &err), -1);
    CHECK_STR(err.code, "symlink_refused");
    CHECK_INT(fs_unlink(path, &err), -1);
    CHECK_INT(fs_lock(path, 1, &err), -1);
    tmp(path, "root/sub/dir");
    CHECK_INT(fs_mkdirs(path, 0755, &err), -1);
    CHECK_CONTAINS(err.message, "symbolic link");
    tmp(path, "outside/sub");
    CHECK(access(path, F_OK) != 0);
    CHECK_STR(slurp(victim), "precious");
}

UNIT_TEST(fs_rename_refuses_a_link_source) {
    char target[MG_PATH_MAX], link[MG_PATH_MAX], dest[MG_PATH_MAX];
    mg_error err;
    tmp(target, "outside.txt");
    put_file(target, "precious");
    CHECK_INT(symlink(target, tmp(link, "m.part")), 0);
    CHECK_INT(fs_rename(link, tmp(dest, "m.gguf"), &err), -1);
    CHECK_STR(err.code, "symlink_refused");
    CHECK(access(dest, F_OK) != 0);
    /* a regular file moves over a link at the destination, replacing the link */
    char real[MG_PATH_MAX];
    put_file(tmp(real, "real.part"), "model");
    CHECK_INT(symlink(target, dest), 0);
    CHECK_INT(fs_rename(real, dest, &err), 0);
    CHECK_STR(slurp(dest), "model");
    CHECK_STR(slurp(target), "precious");
}

/* ---- settings --------------------------------------------------------------------- */

/* Writes server.json of `cfg`'s root. */
static void put_server(const mg_config *cfg, const char *text) {
    char path[MG_PATH_MAX];
    put_file(config_path(cfg, path, "config/server.json"), text);
}

UNIT_TEST(config_refuses_overlong_and_malformed_settings) {
    mg_config cfg, probe;
    mg_error err;
    setup(&cfg);
    size_t n = 5000;
    char *doc = malloc(n + 100), *p = malloc(n + 1);
    memset(p, 'a', n);
    p[n] = '\0';
    snprintf(doc, n + 100, "{\"galleries\": [{\"name\": \"x\", \"path\": \"%s\"}]}", p);
    put_server(&cfg, doc);
    CHECK_INT(config_load(&probe, cfg.root, &err), -1);
    CHECK_CONTAINS(err.message, "galleries[0] must be a source whose path is 1 to 1024");
    static const char *bad[] = {
        "{\"api_token\": \"has space\"}",
        "{\"api_token\": 5}",
        "{\"server_names\": [\"evil.example/path\"]}",
        "{\"server_names\": [\"host:99999\"]}",
        "{\"server_names\": \"models.lan\"}",
        "{\"allowed_origins\": [\"https://ok.example/\"]}",
        "{\"allowed_origins\": [\"ftp://x.example\"]}",
        "{\"gallery_cache_ttl_s\": 0}",
        "[1, 2]",
        "{\"gallery_url\": \"https://x\\u0000y\"}",
        NULL};
    for (int i = 0; bad[i]; i++) {
        put_server(&cfg, bad[i]);
        mg_error_clear(&err);
        if (config_load(&probe, cfg.root, &err) == 0) {
            unit_fail(__FILE__, __LINE__, "accepted %s", bad[i]);
            config_free(&probe);
        }
        CHECK_CONTAINS(err.message, "server.json");
    }
    put_server(&cfg, "{\"server_names\": [\"Models.LAN\", \"box:8080\", \"[::1]:9\"], "
                     "\"allowed_origins\": [\"https://Dash.example:8443\"]}");
    CHECK_INT(config_load(&probe, cfg.root, &err), 0);
    CHECK_STR(json_string_value(json_array_get(probe.server_names, 0)), "models.lan");
    CHECK_STR(json_string_value(json_array_get(probe.allowed_origins, 0)),
              "https://dash.example:8443");
    config_free(&probe);
    free(doc);
    free(p);
    config_free(&cfg);
}

UNIT_TEST(config_path_never_aborts) {
    mg_config cfg;
    setup(&cfg);
    char out[MG_PATH_MAX], *rel = malloc(MG_PATH_MAX + 10);
    memset(rel, 'r', MG_PATH_MAX + 9);
    rel[MG_PATH_MAX + 9] = '\0';
    CHECK_STR(config_path(&cfg, out, rel), "");
    free(rel);
    config_free(&cfg);
}

UNIT_TEST(config_reload_keeps_the_last_good_settings) {
    mg_config cfg, copy;
    mg_error err;
    setup(&cfg);
    put_server(&cfg, "{\"api_token\": \"t0ken\", \"max_parallel_downloads\": 3}");
    CHECK_INT(config_reload(&cfg, &err), 0);
    CHECK_STR(cfg.api_token, "t0ken");
    CHECK_INT(cfg.state, CONFIG_FRESH);
    put_server(&cfg, "{\"api_token\": ");
    CHECK_INT(config_reload(&cfg, &err), -1);
    CHECK_INT(cfg.state, CONFIG_STALE);
    CHECK_STR(cfg.api_token, "t0ken");
    CHECK_INT(cfg.max_parallel_downloads, 3);
    CHECK_CONTAINS(cfg.problem, "server.json");
    CHECK_INT(config_copy(&copy, &cfg), 0);
    CHECK(copy.api_token != cfg.api_token);
    CHECK_STR(copy.api_token, "t0ken");
    CHECK_INT(copy.state, CONFIG_STALE);
    config_free(&copy);
    put_server(&cfg, "{}");
    CHECK_INT(config_reload(&cfg, &err), 0);
    CHECK_INT(cfg.state, CONFIG_FRESH);
    CHECK(cfg.api_token == NULL);
    config_free(&cfg);
}

UNIT_TEST(config_broken_at_start_gives_defaults_marked) {
    mg_config cfg, probe;
    mg_error err;
    setup(&cfg);
    put_server(&cfg, "not json");
    CHECK_INT(config_load_or_defaults(&probe, cfg.root, &err), 1);
    CHECK_INT(probe.state, CONFIG_DEFAULTS);
    CHECK_STR(probe.root, cfg.root);
    CHECK_CONTAINS(probe.problem, "server.json");
    CHECK_INT(config_reload(&probe, &err), -1);
    CHECK_INT(probe.state, CONFIG_DEFAULTS);
    config_free(&probe);
    config_free(&cfg);
}

/* ---- search bounds ---------------------------------------------------------------- */

/* Parses "query=<terms>" where terms is `n` words "w0 w1 ..." (each repeated `rep` times). */
static int parse_words(int n, int rep, search_query *q, mg_error *err) {
    char qs[8192] = "query=";
    for (int r = 0; r < rep; r++)
        for (int i = 0; i < n; i++)
            snprintf(qs + strlen(qs), sizeof qs - strlen(qs), "%sw%d", strlen(qs) > 6 ? "+" : "",
                     i);
    return search_query_parse(q, qs, err);
}

UNIT_TEST(search_query_bounds) {
    search_query q;
    mg_error err;
    CHECK_INT(parse_words(32, 1, &q, &err), 0);
    search_query_free(&q);
    CHECK_INT(parse_words(33, 1, &q, &err), -1);
    CHECK_INT(err.status, 400);
    CHECK_STR(err.code, "invalid_parameter");
    CHECK_STR(err.parameter, "query");
    /* repeats do not count: 32 distinct terms said 8 times each */
    CHECK_INT(parse_words(32, 8, &q, &err), 0);
    CHECK_INT(strlen(q.terms), strlen("w0 w1 w2 w3 w4 w5 w6 w7 w8 w9") + 22 * 4);
    search_query_free(&q);
    char qs[200] = "query=ok+";
    memset(qs + strlen(qs), 'x', 65);
    CHECK_INT(search_query_parse(&q, qs, &err), -1);
    CHECK_STR(err.parameter, "query");
    CHECK_CONTAINS(err.message, "64 bytes");
    qs[strlen(qs) - 1] = '\0'; /* 64 bytes: fine */
    CHECK_INT(search_query_parse(&q, qs, &err), 0);
    search_query_free(&q);
    CHECK_INT(search_query_parse(&q, "query=Qwen+qwen+QWEN%20coder", &err), 0);
    CHECK_STR(q.terms, "qwen coder");
    search_query_free(&q);
    CHECK_INT(search_query_parse(&q, "query=+++", &err), 0);
    CHECK(q.terms == NULL);
    search_query_free(&q);
}
