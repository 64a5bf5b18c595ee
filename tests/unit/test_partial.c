/* test_partial.c - installer/partial.c: the partial file and its meta. A partial is resumed
 * only when its meta names the same URL and checksum (and was not already verified); the
 * validator is kept with it; commit records the verified file's identity and moves it into
 * models/llm/; recovery takes that very file (same inode, size, mtime) and nothing else; a
 * link where the partial goes is removed, never followed. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "partial.h"
#include "unit.h"

#define SUM_A "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SUM_B "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define URL_A "https://example.com/a.gguf"
#define URL_B "https://example.com/b.gguf"

static mg_config cfg;

static void setup(partial *p) {
    mg_error err;
    if (config_load(&cfg, unit_tmpdir(), &err) != 0)
        unit_fail(__FILE__, __LINE__, "%s", err.message);
    log_set_fd(open(unit_path("log"), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    partial_paths(p, &cfg, "m", ".gguf");
}

static void teardown(partial *p) {
    partial_close(p);
    config_free(&cfg);
    log_set_fd(2);
}

/* Opens the partial for url/checksum and appends `data` to it. */
static void open_and_write(partial *p, const char *url, const char *sum, const char *data) {
    char why[512] = "";
    if (partial_open(p, url, sum, why, sizeof why) != 0) unit_fail(__FILE__, __LINE__, "%s", why);
    if (data && p->fd >= 0)
        CHECK_INT(pwrite(p->fd, data, strlen(data), p->size), (ssize_t)strlen(data));
}

static json_t *meta(const partial *p) {
    return json_load_file(p->meta, 0, NULL);
}

static const char *meta_str(const partial *p, const char *key) {
    static char out[2100];
    json_t *m = meta(p);
    const char *v = m ? json_string_value(json_object_get(m, key)) : "(no meta)";
    snprintf(out, sizeof out, "%s", v ? v : "(not a string)");
    json_decref(m);
    return out;
}

UNIT_TEST(paths_come_from_id_and_extension) {
    partial p;
    setup(&p);
    CHECK_STR(p.part, unit_path("models/.partial/m.gguf.part"));
    CHECK_STR(p.meta, unit_path("models/.partial/m.gguf.part.meta"));
    CHECK_STR(p.final, unit_path("models/llm/m.gguf"));
    CHECK_STR(p.rel, "models/llm/m.gguf");
    CHECK_INT(p.fd, -1);
    teardown(&p);
}

UNIT_TEST(new_partial_is_empty_with_a_meta) {
    partial p;
    setup(&p);
    open_and_write(&p, URL_A, SUM_A, NULL);
    CHECK(p.fd >= 0);
    CHECK_INT(p.size, 0);
    CHECK_STR(p.validator, "");
    CHECK_STR(meta_str(&p, "url"), URL_A);
    CHECK_STR(meta_str(&p, "checksum"), SUM_A);
    CHECK_STR(meta_str(&p, "validator"), "");
    json_t *m = meta(&p);
    CHECK(!json_is_object(json_object_get(m, "verified")));
    json_decref(m);
    teardown(&p);
}

/* The same download resumes: its bytes and validator are kept. */
UNIT_TEST(same_url_and_checksum_resume) {
    partial p;
    char why[512];
    setup(&p);
    open_and_write(&p, URL_A, SUM_A, "0123456789");
    CHECK_INT(partial_set_validator(&p, "\"etag-1\"", URL_A, why, sizeof why), 0);
    partial_close(&p);
    open_and_write(&p, URL_A, SUM_A, NULL);
    CHECK_INT(p.size, 10);
    CHECK_STR(p.validator, "\"etag-1\"");
    teardown(&p);
}

/* Another URL, another checksum, a meta that is not JSON or not an object, no meta at all,
 * or a meta already verified: the bytes are not this download's; the partial starts empty. */
UNIT_TEST(anything_else_starts_empty) {
    static const struct {
        const char *what, *url, *sum, *meta_text;
        int no_meta, verified;
    } cases[] = {
        {"other url", URL_B, SUM_A, NULL, 0, 0},
        {"other checksum", URL_A, SUM_B, NULL, 0, 0},
        {"url differs in case", "https://example.com/A.gguf", SUM_A, NULL, 0, 0},
        {"meta not JSON", URL_A, SUM_A, "{\"url\":", 0, 0},
        {"meta not an object", URL_A, SUM_A, "[\"" URL_A "\",\"" SUM_A "\"]", 0, 0},
        {"meta without checksum", URL_A, SUM_A, "{\"url\":\"" URL_A "\"}", 0, 0},
        {"no meta", URL_A, SUM_A, NULL, 1, 0},
        {"verified meta", URL_A, SUM_A, NULL, 0, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        partial p;
        char why[512];
        setup(&p);
        unlink(p.part);
        unlink(p.meta);
        open_and_write(&p, URL_A, SUM_A, "0123456789");
        CHECK_INT(partial_set_validator(&p, "\"etag-1\"", URL_A, why, sizeof why), 0);
        partial_close(&p);
        if (cases[i].no_meta) unlink(p.meta);
        if (cases[i].meta_text)
            unit_write_file(p.meta, cases[i].meta_text, strlen(cases[i].meta_text));
        if (cases[i].verified) {
            const char *v = "{\"url\":\"" URL_A "\",\"checksum\":\"" SUM_A "\",\"validator\":\"\","
                            "\"verified\":{\"size\":10,\"ino\":1,\"mtime_ns\":1}}";
            unit_write_file(p.meta, v, strlen(v));
        }
        open_and_write(&p, cases[i].url, cases[i].sum, NULL);
        struct stat st;
        if (p.size != 0 || stat(p.part, &st) != 0 || st.st_size != 0 || p.validator[0])
            unit_fail(__FILE__, __LINE__, "%s: the partial kept %lld bytes, validator \"%s\"",
                      cases[i].what, (long long)p.size, p.validator);
        CHECK_STR(meta_str(&p, "url"), cases[i].url);
        CHECK_STR(meta_str(&p, "checksum"), cases[i].sum);
        CHECK_STR(meta_str(&p, "validator"), "");
        teardown(&p);
    }
}

UNIT_TEST(validator_is_recorded_only_when_it_changes) {
    partial p;
    char why[512];
    struct stat a, b, c;
    setup(&p);
    open_and_write(&p, URL_A, SUM_A, NULL);
    CHECK_INT(partial_set_validator(&p, "\"v1\"", URL_A, why, sizeof why), 0);
    CHECK_STR(meta_str(&p, "validator"), "\"v1\"");
    stat(p.meta, &a);
    CHECK_INT(partial_set_validator(&p, "\"v1\"", URL_A, why, sizeof why), 0);
    stat(p.meta, &b);
    CHECK_INT(b.st_ino, a.st_ino); /* unchanged: not written again */
    CHECK_INT(partial_set_validator(&p, "Tue, 01 Jan 2030 00:00:00 GMT", URL_A, why, sizeof why),
              0);
    stat(p.meta, &c);
    CHECK(c.st_ino != b.st_ino);
    CHECK_STR(meta_str(&p, "validator"), "Tue, 01 Jan 2030 00:00:00 GMT");
    teardown(&p);
}

UNIT_TEST(truncate_empties_and_discard_removes_both) {
    partial p;
    char why[512];
    setup(&p);
    open_and_write(&p, URL_A, SUM_A, "abcdef");
    CHECK_INT(partial_truncate(&p, why, sizeof why), 0);
    struct stat st;
    CHECK(fstat(p.fd, &st) == 0 && st.st_size == 0);
    CHECK_INT(p.size, 0);
    partial_discard(&p);
    CHECK_INT(p.fd, -1);
    CHECK(access(p.part, F_OK) != 0);
    CHECK(access(p.meta, F_OK) != 0);
    teardown(&p);
}

/* Commit: fsync, the verified identity in the meta, the file in models/llm/. */
UNIT_TEST(commit_moves_the_file_and_records_it_verified) {
    partial p;
    char why[512];
    setup(&p);
    open_and_write(&p, URL_A, SUM_A, "the whole model");
    CHECK_INT(partial_commit(&p, why, sizeof why), 0);
    CHECK_INT(p.fd, -1);
    CHECK(access(p.part, F_OK) != 0);
    struct stat st;
    CHECK(stat(p.final, &st) == 0 && st.st_size == 15);
    json_t *m = meta(&p), *v = json_object_get(m, "verified");
    CHECK(json_is_object(v));
    CHECK_INT(json_integer_value(json_object_get(v, "size")), 15);
    CHECK_INT(json_integer_value(json_object_get(v, "ino")), st.st_ino);
    CHECK_INT(json_integer_value(json_object_get(v, "mtime_ns")),
              (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec);
    CHECK_STR(json_string_value(json_object_get(m, "checksum")), SUM_A);
    json_decref(m);
    /* recovered: that very file */
    int64_t size = 0;
    CHECK_INT(partial_recover(&p, SUM_A, &size), 1);
    CHECK_INT(size, 15);
    CHECK(access(p.meta, F_OK) == 0);
    partial_registered(&p);
    CHECK(access(p.meta, F_OK) != 0);
    CHECK_INT(partial_recover(&p, SUM_A, &size), 0);
    CHECK(access(p.final, F_OK) == 0); /* registered: the file stays */
    teardown(&p);
}

/* A verified meta is taken only for the same checksum and the very same file; otherwise it
 * is dropped (the file itself is left alone). */
UNIT_TEST(recover_takes_only_the_very_file) {
    static const char *changes[] = {"other checksum", "touched", "replaced",
                                    "grown",          "gone",    "a link"};
    for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++) {
        partial p;
        char why[512];
        setup(&p);
        unlink(p.final);
        open_and_write(&p, URL_A, SUM_A, "the whole model");
        CHECK_INT(partial_commit(&p, why, sizeof why), 0);
        const char *sum = SUM_A;
        if (strcmp(changes[i], "other checksum") == 0) sum = SUM_B;
        if (strcmp(changes[i], "touched") == 0) {
            struct timespec t[2] = {{0, UTIME_NOW}, {1000, 0}};
            utimensat(AT_FDCWD, p.final, t, 0);
        }
        if (strcmp(changes[i], "replaced") == 0) {
            unlink(p.final);
            unit_write_file(p.final, "the whole model", 15);
        }
        if (strcmp(changes[i], "grown") == 0) {
            int fd = open(p.final, O_WRONLY | O_APPEND);
            CHECK_INT(write(fd, "!", 1), 1);
            close(fd);
        }
        if (strcmp(changes[i], "gone") == 0) unlink(p.final);
        if (strcmp(changes[i], "a link") == 0) {
            rename(p.final, unit_path("elsewhere"));
            CHECK_INT(symlink(unit_path("elsewhere"), p.final), 0);
        }
        int64_t size = -1;
        if (partial_recover(&p, sum, &size) != 0)
            unit_fail(__FILE__, __LINE__, "%s: recovered (%lld bytes)", changes[i],
                      (long long)size);
        if (access(p.meta, F_OK) == 0)
            unit_fail(__FILE__, __LINE__, "%s: the stale meta was kept", changes[i]);
        teardown(&p);
    }
}

/* A crash between the verified meta and the rename: the file is still the partial. */
UNIT_TEST(recover_finishes_a_rename_a_crash_interrupted) {
    partial p;
    char why[512];
    setup(&p);
    open_and_write(&p, URL_A, SUM_A, "the whole model");
    CHECK_INT(partial_commit(&p, why, sizeof why), 0);
    CHECK_INT(rename(p.final, p.part), 0); /* as if the rename never happened */
    int64_t size = 0;
    CHECK_INT(partial_recover(&p, SUM_A, &size), 1);
    CHECK_INT(size, 15);
    CHECK(access(p.final, F_OK) == 0);
    CHECK(access(p.part, F_OK) != 0);
    teardown(&p);
}

/* A link planted where the partial goes is removed, and its target never written. */
UNIT_TEST(link_at_the_partial_is_removed_not_followed) {
    partial p;
    setup(&p);
    unit_write_file(unit_path("target"), "keep me", 7);
    const char *m = "{\"url\":\"" URL_A "\",\"checksum\":\"" SUM_A "\",\"validator\":\"\"}";
    unit_write_file(p.meta, m, strlen(m));
    CHECK_INT(symlink(unit_path("target"), p.part), 0);
    open_and_write(&p, URL_A, SUM_A, "new bytes");
    struct stat st;
    CHECK(lstat(p.part, &st) == 0 && S_ISREG(st.st_mode));
    CHECK_INT(p.size, 0);
    char *t = unit_read_file(unit_path("target"), NULL);
    CHECK_STR(t, "keep me");
    free(t);
    teardown(&p);
}
