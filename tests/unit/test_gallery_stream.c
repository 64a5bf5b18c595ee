/* test_gallery_stream.c - reading a gallery file one model at a time: the models, version and
 * generatedAt come out as jansson reads the whole file, and a file that is not JSON is
 * reported at the line and column jansson names (checked on thousands of random
 * corruptions of valid galleries); the streamed rebuild keeps each model's own text. */
#include <stdint.h>
#include <stdlib.h>

#include "config.h"
#include "fs.h"
#include "gallery.h"
#include "gallery_stream.h"
#include "unit.h"

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static size_t pick(size_t n) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return n ? (size_t)(rng_state % n) : 0;
}

static const char *bases[] = {
    "{\"version\": \"1\",\n \"models\": [\n  {\"id\": \"a\", \"name\": \"A\", \"tags\": [\"x\", \"y\"]},\n"
    "  {\"id\": \"b\", \"n\": [1, 2.5, -3e2, true, false, null], \"s\": \"q\\\"\\\\\\u00e9\\n\"}\n ],\n"
    " \"generatedAt\": \"2026-01-01\"\n}\n",
    "{\"models\":[{\"id\":\"\xc3\xbc\",\"o\":{\"p\":{\"q\":[[],{}]}}},42,\"str\",[1,[2,[3]]]],"
    "\"version\":{\"major\":2}}",
    "  {\n\t\"a\": [1, {\"b\": \"}]{[\"}],\n\t\"models\": [ ],\n\t\"version\": 3 }  \n",
    "{\"models\": [{\"id\": \"x\", \"d\": \"\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\"}, {\"id\": \"y\"}], "
    "\"models\": [{\"id\": \"z\", \"k\": {\"\": \"\"}}]}\r\n",
};

static const char inserts[] = "{}[],:\"\\ x1-.e\n\tnu\x01\xff";

/* A copy of `base` with one random change. Caller frees. */
static char *corrupt(const char *base, size_t *len) {
    size_t n = strlen(base), at = pick(n + 1);
    char *out = malloc(n + 2);
    int kind = (int)pick(3);
    char c = inserts[pick(sizeof inserts - 1)];
    if (kind == 0 && at < n) { /* delete */
        memcpy(out, base, at);
        memcpy(out + at, base + at + 1, n - at - 1);
        *len = n - 1;
    } else if (kind == 1 && at < n) { /* replace */
        memcpy(out, base, n);
        out[at] = c;
        *len = n;
    } else { /* insert */
        memcpy(out, base, at);
        out[at] = c;
        memcpy(out + at + 1, base + at, n - at);
        *len = n + 1;
    }
    return out;
}

/* Writes a file (no fsync: thousands of them). */
static void put(const char *path, const char *text, size_t len) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fwrite(text, 1, len, f);
    fclose(f);
}

/* Reads `path` with the stream: "ok" with the same models, version and generatedAt as
 * `doc` (jansson's reading of the whole file), or the error message. */
static char *stream_read(const char *path, json_t *doc) {
    mg_error err;
    mg_error_clear(&err);
    gallery_stream *gs = gallery_stream_open(path, NULL, &err);
    if (!gs) return strdup(err.message);
    json_t *models = json_object_get(doc, "models"), *m;
    int same = json_equal(gallery_stream_version(gs),
                          json_object_get(doc, "version") ? json_object_get(doc, "version") : json_null()) &&
               json_equal(gallery_stream_generated(gs),
                          json_object_get(doc, "generatedAt") ? json_object_get(doc, "generatedAt") : json_null());
    size_t i, count = 0;
    const char *text;
    size_t tlen;
    int rc;
    while ((rc = gallery_stream_next(gs, &m, &i, &text, &tlen, &err)) == 1) {
        json_t *back = json_loadb(text, tlen, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        same &= i == count && json_equal(m, json_array_get(models, i)) && json_equal(back, m);
        json_decref(back);
        json_decref(m);
        count++;
    }
    gallery_stream_close(gs);
    if (rc < 0) return strdup(err.message);
    return strdup(same && count == json_array_size(models) ? "ok" : "different models");
}

/* What the stream must say for `text`: "ok", or "line L, column C" of jansson's error. */
static void expected(const char *text, size_t len, json_t **doc, char *out, size_t n) {
    json_error_t jerr;
    *doc = json_loadb(text, len, JSON_ALLOW_NUL, &jerr);
    if (!*doc) snprintf(out, n, "line %d, column %d:", jerr.line, jerr.column);
    else if (!json_is_array(json_object_get(*doc, "models"))) snprintf(out, n, "not a gallery");
    else snprintf(out, n, "ok");
}

UNIT_TEST(stream_reads_like_jansson_and_reports_its_errors) {
    char path[600];
    snprintf(path, sizeof path, "%s/g.json", unit_tmpdir());
    int cases = 0, errors = 0, failures = 0;
    for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++) {
        for (int k = -1; k < 1500 && failures < 5; k++, cases++) {
            size_t len = strlen(bases[b]);
            char *text = k < 0 ? strdup(bases[b]) : corrupt(bases[b], &len);
            put(path, text, len);
            json_t *doc;
            char want[64];
            expected(text, len, &doc, want, sizeof want);
            char *got = stream_read(path, doc);
            int ok = strcmp(want, "ok") == 0 ? strcmp(got, "ok") == 0 : strstr(got, want) != NULL;
            if (!ok) {
                unit_fail(__FILE__, __LINE__, "%.*s\n    stream: %s\n    expected: %s", (int)len,
                          text, got, want);
                failures++;
            }
            errors += strcmp(want, "ok") != 0;
            json_decref(doc);
            free(got);
            free(text);
        }
    }
    CHECK(errors > 1000);
    fprintf(stderr, "  %d documents, %d not JSON or not galleries\n", cases, errors);
}

UNIT_TEST(stream_of_missing_and_empty_files) {
    mg_error err;
    CHECK(gallery_stream_open("/nonexistent/g.json", NULL, &err) == NULL);
    CHECK_INT(err.status, 404);
    char path[600];
    snprintf(path, sizeof path, "%s/empty.json", unit_tmpdir());
    fs_write_atomic(path, "", 0, NULL);
    CHECK(gallery_stream_open(path, NULL, &err) == NULL);
    CHECK_CONTAINS(err.message, "empty.json: not valid JSON at line 1, column 0");
    fs_write_atomic(path, "[1, 2]", 6, NULL);
    CHECK(gallery_stream_open(path, NULL, &err) == NULL);
    CHECK_CONTAINS(err.message, "not a gallery");
}

/* The rebuild writes each model's own text, compacted, with its source tag. */
UNIT_TEST(rebuild_keeps_each_models_text) {
    mg_config cfg;
    mg_error err;
    CHECK_INT(config_load(&cfg, unit_tmpdir(), &err), 0);
    char source[MG_PATH_MAX], cache[MG_PATH_MAX];
    config_path(&cfg, source, "config/models_gallery.json");
    config_path(&cfg, cache, "cache/gallery_cache.json");
    const char *text =
        "{\"models\": [\n"
        " {\"id\": \"m1\", \"name\": \"One two\", \"checksum\": \"sha256:" 
        "0000000000000000000000000000000000000000000000000000000000000000\",\n"
        "  \"downloadUrl\": \"https://h/m1.gguf\", \"sizeGb\": 1.50, \"note\": \"a  b\\u00e9\"},\n"
        " {\"id\": \"m2\", \"name\": \"x\", \"checksum\": \"sha256:"
        "1111111111111111111111111111111111111111111111111111111111111111\",\n"
        "  \"downloadUrl\": \"https://h/m2.gguf\", \"sizeGb\": 2, \"gallery\": \"mine\"}\n"
        "], \"generatedAt\": \"late\", \"version\": 7}\n";
    fs_write_atomic(source, text, strlen(text), NULL);
    CHECK_INT(gallery_cache_ensure(&cfg, &err), 0);
    char *got = fs_read_all(cache, NULL, NULL);
    CHECK_STR(got,
              "{\"version\":7,\"generatedAt\":\"late\",\"models\":[\n"
              "{\"id\":\"m1\",\"name\":\"One two\",\"checksum\":\"sha256:"
              "0000000000000000000000000000000000000000000000000000000000000000\","
              "\"downloadUrl\":\"https://h/m1.gguf\",\"sizeGb\":1.50,\"note\":\"a  b\\u00e9\","
              "\"gallery\":\"default\"},\n"
              "{\"id\":\"m2\",\"name\":\"x\",\"checksum\":\"sha256:"
              "1111111111111111111111111111111111111111111111111111111111111111\","
              "\"downloadUrl\":\"https://h/m2.gguf\",\"sizeGb\":2,\"gallery\":\"default\"}\n"
              "]}\n");
    free(got);
    config_free(&cfg);
}
