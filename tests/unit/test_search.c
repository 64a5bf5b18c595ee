/* test_search.c - the search index over the cache file and the search query: every
 * parameter alone and combined, malformed values, sorting with ties and missing keys,
 * paging, fit on a given machine (fields, filter, facet), and agreement with a brute-force
 * reference on a generated gallery. */
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cachefile.h"
#include "fs.h"
#include "gallery.h"
#include "search.h"
#include "sindex.h"
#include "unit.h"

static const char *data_path(const char *name) {
    static char path[1024];
    const char *dir = getenv("MG_TEST_DATA");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/data", name);
    return path;
}

/* Writes the cache of gallery file `name` into the test's directory; returns its path. */
static const char *make_cache(const char *name) {
    static char cache[600];
    snprintf(cache, sizeof cache, "%s/gallery_cache.json", unit_tmpdir());
    json_t *g = gallery_parse_file(name, NULL, NULL);
    CHECK(g != NULL);
    CHECK_INT(gallery_cache_write(cache, g, NULL, NULL), 0);
    json_decref(g);
    return cache;
}

static search_index *load_fixture(void) {
    mg_error err;
    search_index *idx = search_index_load(make_cache(data_path("search.json")), &err);
    CHECK(idx != NULL);
    if (!idx) fprintf(stderr, "%s\n", err.message);
    return idx;
}

typedef struct { char *buf; size_t len; int writes; } sink;

static int sink_write(void *ctx, const char *data, size_t len) {
    sink *s = ctx;
    s->buf = realloc(s->buf, s->len + len + 1);
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    s->buf[s->len] = '\0';
    s->writes++;
    return 0;
}

/* Runs the query string; returns the parsed answer, or NULL with err filled. */
static json_t *run(search_index *idx, const char *qs, mg_error *err) {
    search_query q;
    if (search_query_parse(&q, qs, err) != 0) return NULL;
    sink s = {0};
    int rc = search_run(idx, &q, sink_write, &s, err);
    search_query_free(&q);
    json_error_t jerr;
    json_t *answer = rc == 0 ? json_loadb(s.buf, s.len, 0, &jerr) : NULL;
    if (rc == 0 && !answer) unit_fail(__FILE__, __LINE__, "answer not JSON: %s", jerr.text);
    free(s.buf);
    return answer;
}

/* The ids of the answer to `qs`, comma-separated, then "|total". */
static const char *ids(search_index *idx, const char *qs) {
    static char out[2048];
    mg_error err;
    json_t *a = run(idx, qs, &err);
    if (!a) {
        snprintf(out, sizeof out, "error %s: %s", err.parameter, err.message);
        return out;
    }
    json_t *m;
    size_t i;
    out[0] = '\0';
    json_array_foreach(json_object_get(a, "models"), i, m) {
        if (i) strcat(out, ",");
        strncat(out, json_string_value(json_object_get(m, "id")), 100);
    }
    snprintf(out + strlen(out), sizeof out - strlen(out), "|%lld",
             (long long)json_integer_value(json_object_get(a, "total")));
    json_decref(a);
    return out;
}

/* The parameter a malformed query string is rejected for ("" when accepted). */
static const char *bad_param(const char *qs) {
    static mg_error err;
    search_query q;
    mg_error_clear(&err);
    if (search_query_parse(&q, qs, &err) == 0) {
        search_query_free(&q);
        return "";
    }
    if (err.status != 400 || strcmp(err.code, "invalid_parameter") != 0) return "wrong code";
    return err.parameter;
}

UNIT_TEST(index_counts_and_gets_models) {
    search_index *idx = load_fixture();
    if (!idx) return;
    CHECK_INT(search_index_count(idx), 6);
    json_t *m = search_index_get(idx, "Qwen-1.5b");
    CHECK_STR(json_string_value(json_object_get(m, "name")), "Qwen 1.5B");
    CHECK(json_is_object(json_object_get(m, "recommendedHardware")));
    json_decref(m);
    m = search_index_get(idx, "foxtrot");
    CHECK(json_is_true(json_object_get(json_object_get(m, "x-extra"), "kept")));
    json_decref(m);
    CHECK(search_index_get(idx, "qwen-1.5b") == NULL);
    CHECK(search_index_get(idx, "nope") == NULL);
    CHECK(search_index_get(idx, "") == NULL);
    search_index_free(idx);
}

UNIT_TEST(default_sort_is_rating_descending_ties_by_id_missing_last) {
    search_index *idx = load_fixture();
    if (!idx) return;
    CHECK_STR(ids(idx, ""), "echo-70b,alpha-7b,beta-27b,delta-embed,foxtrot,Qwen-1.5b|6");
    CHECK_STR(ids(idx, NULL), "echo-70b,alpha-7b,beta-27b,delta-embed,foxtrot,Qwen-1.5b|6");
    CHECK_STR(ids(idx, "sort=rating&order=asc"),
              "foxtrot,delta-embed,alpha-7b,beta-27b,echo-70b,Qwen-1.5b|6");
    search_index_free(idx);
}

UNIT_TEST(sort_by_size_name_updated) {
    search_index *idx = load_fixture();
    if (!idx) return;
    CHECK_STR(ids(idx, "sort=size"), "beta-27b,echo-70b,alpha-7b,foxtrot,Qwen-1.5b,delta-embed|6");
    CHECK_STR(ids(idx, "sort=size&order=asc"),
              "delta-embed,Qwen-1.5b,alpha-7b,foxtrot,echo-70b,beta-27b|6");
    /* name: ascending by default, case-insensitive, ties by id */
    CHECK_STR(ids(idx, "sort=name"), "alpha-7b,foxtrot,beta-27b,delta-embed,echo-70b,Qwen-1.5b|6");
    CHECK_STR(ids(idx, "sort=name&order=desc"),
              "Qwen-1.5b,echo-70b,delta-embed,beta-27b,alpha-7b,foxtrot|6");
    /* updated: dates compared (offsets applied), ties by id, missing last */
    CHECK_STR(ids(idx, "sort=updated"), "beta-27b,echo-70b,alpha-7b,Qwen-1.5b,delta-embed,foxtrot|6");
    CHECK_STR(ids(idx, "sort=updated&order=asc"),
              "Qwen-1.5b,alpha-7b,beta-27b,echo-70b,delta-embed,foxtrot|6");
    CHECK_STR(ids(idx, "order=asc"), "foxtrot,delta-embed,alpha-7b,beta-27b,echo-70b,Qwen-1.5b|6");
    search_index_free(idx);
}

UNIT_TEST(query_terms) {
    search_index *idx = load_fixture();
    if (!idx) return;
    CHECK_STR(ids(idx, "query=7b"), "alpha-7b,beta-27b,foxtrot|3");
    CHECK_STR(ids(idx, "query=qwen+coder"), "Qwen-1.5b|1");
    CHECK_STR(ids(idx, "query=qwen%20CODER"), "Qwen-1.5b|1");
    CHECK_STR(ids(idx, "query=%20%20qwen%09%09coder%20"), "Qwen-1.5b|1");
    CHECK_STR(ids(idx, "query=ALPHA"), "alpha-7b,foxtrot|2");
    CHECK_STR(ids(idx, "query=friendly"), "alpha-7b|1");        /* description */
    CHECK_STR(ids(idx, "query=embedding"), "delta-embed|1");    /* category */
    CHECK_STR(ids(idx, "query=coder"), "beta-27b,Qwen-1.5b|2"); /* tag */
    CHECK_STR(ids(idx, "query=multilingual"), "Qwen-1.5b|1");
    CHECK_STR(ids(idx, "query=q4_k_m"), "alpha-7b|1"); /* a tag; quantization is not searched */
    CHECK_STR(ids(idx, "query=mit"), "|0");             /* license is not searched */
    CHECK_STR(ids(idx, "query=assistant.llama"), "|0"); /* never across two fields */
    CHECK_STR(ids(idx, "query=chatgeneral"), "|0");
    CHECK_STR(ids(idx, "query=qwen%1Fcoder"), "|0");
    CHECK_STR(ids(idx, "query=zzz"), "|0");
    CHECK_STR(ids(idx, "query=+++"), "echo-70b,alpha-7b,beta-27b,delta-embed,foxtrot,Qwen-1.5b|6");
    search_index_free(idx);
}

UNIT_TEST(exact_filters) {
    search_index *idx = load_fixture();
    if (!idx) return;
    CHECK_STR(ids(idx, "category=CHAT"), "echo-70b,alpha-7b,foxtrot,Qwen-1.5b|4");
    CHECK_STR(ids(idx, "category=cha"), "|0");
    CHECK_STR(ids(idx, "category=chat%1Fgeneral"), "|0");
    CHECK_STR(ids(idx, "language=EN"), "alpha-7b,beta-27b,Qwen-1.5b|3");
    CHECK_STR(ids(idx, "language=e"), "|0");
    CHECK_STR(ids(idx, "tag=q4_k_m"), "alpha-7b|1");
    CHECK_STR(ids(idx, "tag=coder"), "beta-27b,Qwen-1.5b|2");
    CHECK_STR(ids(idx, "quantization=q4_k_m"), "alpha-7b,Qwen-1.5b|2");
    CHECK_STR(ids(idx, "quantization=Q4"), "|0");
    CHECK_STR(ids(idx, "license=mit"), "beta-27b|1");
    CHECK_STR(ids(idx, "license=APACHE-2.0"), "alpha-7b,delta-embed,Qwen-1.5b|3");
    search_index_free(idx);
}

UNIT_TEST(numeric_filters) {
    search_index *idx = load_fixture();
    if (!idx) return;
    CHECK_STR(ids(idx, "min_rating=4.5"), "echo-70b,alpha-7b,beta-27b|3");
    CHECK_STR(ids(idx, "min_rating=0"), "echo-70b,alpha-7b,beta-27b,delta-embed,foxtrot|5");
    CHECK_STR(ids(idx, "min_rating=6"), "|0");
    CHECK_STR(ids(idx, "min_size_gb=4.1"), "echo-70b,alpha-7b,beta-27b,foxtrot|4");
    CHECK_STR(ids(idx, "max_size_gb=4.1"), "alpha-7b,delta-embed,foxtrot,Qwen-1.5b|4");
    CHECK_STR(ids(idx, "min_size_gb=4.1&max_size_gb=4.1"), "alpha-7b,foxtrot|2");
    CHECK_STR(ids(idx, "max_ram_gb=8"), "alpha-7b,foxtrot,Qwen-1.5b|3");
    CHECK_STR(ids(idx, "max_ram_gb=0.5"), "|0");
    CHECK_STR(ids(idx, "max_vram_gb=0"), "foxtrot,Qwen-1.5b|2");
    CHECK_STR(ids(idx, "max_vram_gb=1000"), "alpha-7b,beta-27b,foxtrot,Qwen-1.5b|4");
    CHECK_STR(ids(idx, "min_rating=1e0"), "echo-70b,alpha-7b,beta-27b,delta-embed|4");
    search_index_free(idx);
}

UNIT_TEST(filters_combine_with_and) {
    search_index *idx = load_fixture();
    if (!idx) return;
    CHECK_STR(ids(idx, "category=chat&max_ram_gb=8&sort=name"), "alpha-7b,foxtrot,Qwen-1.5b|3");
    CHECK_STR(ids(idx, "query=7b&category=chat&min_rating=1"), "alpha-7b|1");
    CHECK_STR(ids(idx, "language=en&license=apache-2.0&tag=coder&quantization=Q4_K_M"),
              "Qwen-1.5b|1");
    CHECK_STR(ids(idx, "query=alpha&min_size_gb=1&max_size_gb=5&max_vram_gb=6&sort=size&order=asc"),
              "alpha-7b,foxtrot|2");
    search_index_free(idx);
}

UNIT_TEST(paging_and_echo) {
    search_index *idx = load_fixture();
    if (!idx) return;
    CHECK_STR(ids(idx, "limit=2&offset=1"), "alpha-7b,beta-27b|6");
    CHECK_STR(ids(idx, "limit=2&offset=5"), "Qwen-1.5b|6");
    CHECK_STR(ids(idx, "offset=6"), "|6");
    CHECK_STR(ids(idx, "offset=1000000"), "|6");
    CHECK_STR(ids(idx, "category=chat&limit=1&offset=1"), "alpha-7b|4");
    CHECK_STR(ids(idx, "category=chat&offset=9"), "|4");
    mg_error err;
    json_t *a = run(idx, "limit=2&offset=1", &err);
    CHECK_INT(json_integer_value(json_object_get(a, "limit")), 2);
    CHECK_INT(json_integer_value(json_object_get(a, "offset")), 1);
    json_decref(a);
    a = run(idx, "", &err);
    CHECK_INT(json_integer_value(json_object_get(a, "limit")), 100);
    CHECK_INT(json_integer_value(json_object_get(a, "offset")), 0);
    /* whole model objects, as in the gallery */
    json_t *g = gallery_parse_file(data_path("search.json"), NULL, NULL);
    json_t *m, *mine;
    size_t i, j;
    json_array_foreach(json_object_get(a, "models"), i, m) {
        json_array_foreach(json_object_get(g, "models"), j, mine)
            if (json_equal(json_object_get(m, "id"), json_object_get(mine, "id")))
                CHECK(json_equal(m, mine));
    }
    json_decref(g);
    json_decref(a);
    a = run(idx, "limit=1000", &err);
    CHECK_INT(json_integer_value(json_object_get(a, "limit")), 1000);
    json_decref(a);
    search_index_free(idx);
}

UNIT_TEST(repeated_unknown_empty_and_encoded_parameters) {
    search_index *idx = load_fixture();
    if (!idx) return;
    CHECK_STR(ids(idx, "limit=5&limit=1"), "echo-70b|6");
    CHECK_STR(ids(idx, "category=code&category=embedding"), "delta-embed|1");
    CHECK_STR(ids(idx, "foo=bar&sort_by=x&&=&x"), "echo-70b,alpha-7b,beta-27b,delta-embed,foxtrot,Qwen-1.5b|6");
    /* an empty text filter is ignored (an empty number, page, sort or order is malformed:
     * see malformed_values_name_their_parameter) */
    CHECK_STR(ids(idx, "query=&category=&language=&tag=&quantization=&license="),
              "echo-70b,alpha-7b,beta-27b,delta-embed,foxtrot,Qwen-1.5b|6");
    CHECK_STR(ids(idx, "category"), "echo-70b,alpha-7b,beta-27b,delta-embed,foxtrot,Qwen-1.5b|6");
    CHECK_STR(ids(idx, "query&tag&license=&sort=size&limit=2"), "beta-27b,echo-70b|6");
    CHECK_STR(ids(idx, "category=chat&category="), "echo-70b,alpha-7b,beta-27b,delta-embed,foxtrot,Qwen-1.5b|6");
    CHECK_STR(ids(idx, "cat%65gory=embedding"), "delta-embed|1");
    CHECK_STR(ids(idx, "license=apache%2d2.0&limit=1"), "alpha-7b|3");
    CHECK_STR(ids(idx, "query=100%"), "|0"); /* a bad escape stays literal */
    /* the last value wins, and an empty limit is malformed */
    CHECK_STR(ids(idx, "limit=2&limit="), "error limit: limit must be an integer from 1 to 1000, got an empty value");
    CHECK_STR(ids(idx, "limit=&limit=2"), "echo-70b,alpha-7b|6");
    search_index_free(idx);
}

UNIT_TEST(malformed_values_name_their_parameter) {
    static const char *numeric[] = {"min_rating", "min_size_gb", "max_size_gb", "max_ram_gb",
                                    "max_vram_gb", NULL};
    static const char *bad_numbers[] = {"abc", "nan", "NaN", "inf", "-inf", "1e999", "-1",
                                        "-0.5", "0x10", "%201", "1%20", "1,5", "1.2.3", "+",
                                        "e5", "1%00", "%00", NULL};
    char qs[128];
    for (int i = 0; numeric[i]; i++)
        for (int j = 0; bad_numbers[j]; j++) {
            snprintf(qs, sizeof qs, "%s=%s", numeric[i], bad_numbers[j]);
            if (strcmp(bad_param(qs), numeric[i]) != 0)
                unit_fail(__FILE__, __LINE__, "%s: got parameter \"%s\"", qs, bad_param(qs));
        }
    CHECK_STR(bad_param("min_rating=6"), "");
    CHECK_STR(bad_param("min_rating=0"), "");
    CHECK_STR(bad_param("min_rating=-0"), "");
    CHECK_STR(bad_param("max_ram_gb=1e3"), "");
    static const char *bad_limits[] = {"0", "1001", "1.5", "abc", "-1", "1e2", "%2B5", "99999999999999999999",
                                       " 5", NULL};
    for (int j = 0; bad_limits[j]; j++) {
        snprintf(qs, sizeof qs, "limit=%s", bad_limits[j]);
        CHECK_STR(bad_param(qs), "limit");
    }
    CHECK_STR(bad_param("limit=1"), "");
    CHECK_STR(bad_param("limit=1000"), "");
    CHECK_STR(bad_param("limit=0010"), "");
    static const char *bad_offsets[] = {"-1", "1.5", "x", "99999999999999999999", NULL};
    for (int j = 0; bad_offsets[j]; j++) {
        snprintf(qs, sizeof qs, "offset=%s", bad_offsets[j]);
        CHECK_STR(bad_param(qs), "offset");
    }
    CHECK_STR(bad_param("offset=0"), "");
    CHECK_STR(bad_param("sort=Rating"), "sort");
    CHECK_STR(bad_param("sort=popularity"), "sort");
    CHECK_STR(bad_param("sort=name%00"), "sort");
    CHECK_STR(bad_param("order=ASC"), "order");
    CHECK_STR(bad_param("order=up"), "order");
    CHECK_STR(bad_param("min_size_gb=5&max_size_gb=2"), "min_size_gb");
    CHECK_STR(bad_param("max_size_gb=2&min_size_gb=5"), "min_size_gb");
    CHECK_STR(bad_param("min_size_gb=2&max_size_gb=2"), "");
    CHECK_STR(bad_param("category=%00"), "category");
    CHECK_STR(bad_param("query=a%00b"), "query");
    CHECK_STR(bad_param("license=mit%00"), "license");
    CHECK_STR(bad_param("limit=abc&offset=2"), "limit");
    CHECK_STR(bad_param("limit=abc&limit=5"), ""); /* the last value wins */
    mg_error err;
    search_query q;
    CHECK_INT(search_query_parse(&q, "min_rating=%FF%FE", &err), -1);
    CHECK_CONTAINS(err.message, "min_rating must be a finite number >= 0");
    CHECK_INT(err.status, 400);
    /* an empty number, page, sort or order is malformed ("x=", a bare "x", the last of a
     * repeated one); empty text filters are not */
    static const char *no_empty[] = {"min_rating", "min_size_gb", "max_size_gb", "max_ram_gb",
                                     "max_vram_gb", "limit", "offset", "sort", "order", NULL};
    for (int i = 0; no_empty[i]; i++) {
        const char *forms[] = {"%s=", "%s", "query=x&%s=&tag=y", "%s=1&%s=", NULL};
        for (int f = 0; forms[f]; f++) {
            snprintf(qs, sizeof qs, forms[f], no_empty[i], no_empty[i]);
            if (strcmp(bad_param(qs), no_empty[i]) != 0)
                unit_fail(__FILE__, __LINE__, "%s: got parameter \"%s\"", qs, bad_param(qs));
        }
    }
    CHECK_STR(bad_param("min_rating="), "min_rating");
    CHECK_STR(bad_param("min_size_gb="), "min_size_gb");
    CHECK_STR(bad_param("max_size_gb="), "max_size_gb");
    CHECK_STR(bad_param("max_ram_gb="), "max_ram_gb");
    CHECK_STR(bad_param("max_vram_gb="), "max_vram_gb");
    CHECK_STR(bad_param("limit="), "limit");
    CHECK_STR(bad_param("offset="), "offset");
    CHECK_STR(bad_param("sort="), "sort");
    CHECK_STR(bad_param("order="), "order");
    CHECK_STR(bad_param("min_rating=&min_rating=4"), ""); /* the last value wins */
    CHECK_STR(bad_param("query=&category=&language=&tag=&quantization=&license="), "");
    CHECK_INT(search_query_parse(&q, "min_rating=", &err), -1);
    CHECK_STR(err.message, "min_rating must be a number, got an empty value");
    CHECK_INT(err.status, 400);
    CHECK_INT(search_query_parse(&q, "max_vram_gb", &err), -1);
    CHECK_STR(err.message, "max_vram_gb must be a number, got an empty value");
    CHECK_INT(search_query_parse(&q, "limit=", &err), -1);
    CHECK_STR(err.message, "limit must be an integer from 1 to 1000, got an empty value");
    CHECK_INT(search_query_parse(&q, "offset=", &err), -1);
    CHECK_STR(err.message, "offset must be an integer >= 0, got an empty value");
    CHECK_INT(search_query_parse(&q, "sort=", &err), -1);
    CHECK_STR(err.message, "sort must be one of rating, size, name, updated, got an empty value");
    CHECK_INT(search_query_parse(&q, "order=", &err), -1);
    CHECK_STR(err.message, "order must be asc or desc, got an empty value");
}

UNIT_TEST(query_parse_fields) {
    search_query q;
    mg_error err;
    CHECK_INT(search_query_parse(&q, "query=Qwen+CODER&category=Chat&min_rating=4&sort=name", &err), 0);
    CHECK_STR(q.terms, "qwen coder");
    CHECK_STR(q.category, "chat");
    CHECK(q.language == NULL);
    CHECK(q.min_rating == 4.0);
    CHECK(isnan(q.max_size_gb));
    CHECK_INT(q.sort, SEARCH_SORT_NAME);
    CHECK_INT(q.descending, 0);
    CHECK_INT(q.limit, 100);
    search_query_free(&q);
    CHECK_INT(search_query_parse(&q, "sort=updated", &err), 0);
    CHECK_INT(q.descending, 1);
    search_query_free(&q);
    CHECK_INT(search_query_parse(&q, "sort=name&order=desc", &err), 0);
    CHECK_INT(q.descending, 1);
    search_query_free(&q);
}

UNIT_TEST(answer_is_written_in_few_pieces) {
    search_index *idx = load_fixture();
    if (!idx) return;
    search_query q;
    CHECK_INT(search_query_parse(&q, "", NULL), 0);
    sink s = {0};
    CHECK_INT(search_run(idx, &q, sink_write, &s, NULL), 0);
    CHECK_INT(s.writes, 1);
    CHECK(strncmp(s.buf, "{\"total\":6,\"offset\":0,\"limit\":100,\"models\":[{\"id\":\"echo-70b\"", 58) == 0);
    free(s.buf);
    search_query_free(&q);
    search_index_free(idx);
}

static int stop_write(void *ctx, const char *data, size_t len) {
    (void)ctx, (void)data, (void)len;
    return -1;
}

UNIT_TEST(writer_stopping_is_an_error) {
    search_index *idx = load_fixture();
    if (!idx) return;
    search_query q;
    mg_error err;
    CHECK_INT(search_query_parse(&q, "", NULL), 0);
    CHECK_INT(search_run(idx, &q, stop_write, NULL, &err), -1);
    search_query_free(&q);
    search_index_free(idx);
}

/* Flips one byte of `path` at `off` in place (same size, new mtime). */
static void flip_byte(const char *path, long off) {
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (!f) return;
    fseek(f, off, SEEK_SET);
    int c = fgetc(f);
    fseek(f, off, SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
}

UNIT_TEST(index_refuses_missing_stale_and_corrupted_files) {
    mg_error err;
    char index[700], copy[720];
    CHECK(search_index_load("/nonexistent/cache.json", &err) == NULL);
    CHECK_STR(err.code, "index_missing");
    CHECK_INT(err.status, 404);
    /* a cache file without an index beside it */
    CHECK(search_index_load(data_path("search.json"), &err) == NULL);
    CHECK_STR(err.code, "index_missing");
    const char *cache = make_cache(data_path("search.json"));
    gallery_index_path(cache, index, sizeof index);
    size_t len, ilen;
    char *text = fs_read_all(cache, &len, NULL), *itext = fs_read_all(index, &ilen, NULL);
    CHECK(text && itext);
    if (!text || !itext) return;
    /* the cache rewritten with the same bytes: the index names the old file */
    fs_write_atomic(cache, text, len, NULL);
    CHECK(search_index_load(cache, &err) == NULL);
    CHECK_STR(err.code, "index_stale");
    cachefile_stats st;
    CHECK_INT(cachefile_derive(cache, &st, &err), 0);
    CHECK_INT(st.models, 6);
    search_index *idx = search_index_load(cache, &err);
    CHECK(idx != NULL);
    CHECK_STR(ids(idx, "query=qwen"), "Qwen-1.5b|1");
    search_index_free(idx);
    /* each of these is refused, never used */
    snprintf(copy, sizeof copy, "%s.good", index);
    rename(index, copy);
    itext = (free(itext), fs_read_all(copy, &ilen, NULL));
    long offsets[] = {0, 20, (long)sizeof(sindex_header) + 3, (long)ilen / 2, (long)ilen - 1};
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        fs_write_atomic(index, itext, ilen, NULL);
        flip_byte(index, offsets[i]);
        CHECK(search_index_load(cache, &err) == NULL);
        CHECK_STR(err.code, "index_invalid");
    }
    fs_write_atomic(index, itext, ilen - 8, NULL); /* truncated */
    CHECK(search_index_load(cache, &err) == NULL);
    CHECK_STR(err.code, "index_invalid");
    fs_write_atomic(index, "", 0, NULL);
    CHECK(search_index_load(cache, &err) == NULL);
    fs_write_atomic(index, itext, ilen, NULL);
    idx = search_index_load(cache, &err);
    CHECK(idx != NULL);
    search_index_free(idx);
    /* a cache file that is not in cache format has no index derived */
    fs_write_atomic(cache, text, len - 4, NULL); /* without the closing "]}" */
    CHECK_INT(cachefile_derive(cache, &st, &err), -1);
    CHECK_CONTAINS(err.message, "not in gallery cache format");
    CHECK_INT(cachefile_derive(data_path("search.json"), &st, &err), -1);
    free(text);
    free(itext);
}

UNIT_TEST(index_of_empty_gallery) {
    char path[600];
    snprintf(path, sizeof path, "%s/c.json", unit_tmpdir());
    json_t *g = gallery_parse("{\"models\":[]}", 13, "x", NULL, NULL);
    CHECK_INT(gallery_cache_write(path, g, NULL, NULL), 0);
    json_decref(g);
    search_index *idx = search_index_load(path, NULL);
    CHECK(idx != NULL);
    CHECK_INT(search_index_count(idx), 0);
    CHECK_STR(ids(idx, "query=x"), "|0");
    CHECK_STR(ids(idx, ""), "|0");
    search_index_free(idx);
}

UNIT_TEST(replaced_cache_never_mixes) {
    search_index *idx = load_fixture();
    if (!idx) return;
    const char *cache = make_cache(data_path("search.json"));
    struct stat st;
    stat(cache, &st);
    CHECK_INT(search_index_is_current(idx, &st), 0); /* rewritten: a new file */
    json_t *g = gallery_parse_file(data_path("invalid_models.json"), NULL, NULL);
    gallery_cache_write(cache, g, NULL, NULL);
    json_decref(g);
    CHECK_STR(ids(idx, "sort=name&limit=2"), "alpha-7b,foxtrot|6");
    search_index *fresh = search_index_load(cache, NULL);
    stat(cache, &st);
    CHECK_INT(search_index_is_current(fresh, &st), 1);
    CHECK_INT(search_index_is_current(idx, &st), 0);
    CHECK_STR(ids(fresh, "sort=name&limit=2"), "m00,m40|4");
    search_index_free(fresh);
    search_index_free(idx);
}

/* ---- exact filters over rare and common values --------------------------------------- */

/* Model i of a 300-model gallery: common values (bitsets in the index) and rare ones
 * (posting lists), duplicates in one model, mixed case, non-ASCII, absent and null fields. */
static json_t *exact_model(int i) {
    char id[32], hex[65];
    snprintf(id, sizeof id, "m%03d", i);
    snprintf(hex, sizeof hex, "%064x", (unsigned)i);
    json_t *tags = json_pack("[s, s]", i % 2 ? "Odd" : "even", "all");
    char t[32];
    snprintf(t, sizeof t, "t%d", i % 97);     /* 3-4 models each: rare */
    json_array_append_new(tags, json_string(t));
    if (i == 7 || i == 250) json_array_append_new(tags, json_string("RARE"));
    if (i == 7) json_array_append_new(tags, json_string("rare")); /* twice in one model */
    if (i % 50 == 0) json_array_append_new(tags, json_string("\xc3\x9c" "ber")); /* "Über" */
    json_t *m = json_pack("{s:s, s:s, s:s+, s:s, s:f, s:o}", "id", id, "name", id,
                          "checksum", "sha256:", hex, "downloadUrl", "https://example.com/m.gguf",
                          "sizeGb", 1.0 + i % 10, "tags", tags);
    if (i % 3 == 0) json_object_set_new(m, "languages", json_pack("[s, s]", "EN", i % 9 ? "de" : "ja"));
    else if (i % 3 == 1) json_object_set_new(m, "languages", json_null());
    if (i % 4) json_object_set_new(m, "license", json_string(i % 100 == 1 ? "WTFPL" : "mit"));
    if (i % 5 != 2) json_object_set_new(m, "quantization", json_string(i % 5 ? "Q4_K_M" : "Q8_0"));
    json_object_set_new(m, "categories", json_pack("[s]", i < 10 ? "Vision" : "chat"));
    json_object_set_new(m, "rating", json_real((i % 50) / 10.0));
    return m;
}

/* 1 when model `m` passes the exact filter `want` (NULL: none) on `field`. */
static int exact_ok(json_t *m, const char *field, const char *want) {
    if (!want) return 1;
    json_t *v = json_object_get(m, field);
    json_t *item;
    size_t i;
    if (json_is_string(v)) return strcasecmp(json_string_value(v), want) == 0;
    json_array_foreach(v, i, item)
        if (json_is_string(item) && strcasecmp(json_string_value(item), want) == 0) return 1;
    return 0;
}

UNIT_TEST(exact_filters_rare_and_common_values_agree_with_reference) {
    char path[600];
    snprintf(path, sizeof path, "%s/exact.json", unit_tmpdir());
    json_t *models = json_array();
    for (int i = 0; i < 300; i++) json_array_append_new(models, exact_model(i));
    json_t *g = json_pack("{s:s, s:s, s:o}", "version", "1", "generatedAt",
                          "2025-01-01T00:00:00Z", "models", models);
    CHECK_INT(json_dump_file(g, path, 0), 0);
    json_decref(g);
    search_index *idx = search_index_load(make_cache(path), NULL);
    CHECK(idx != NULL);
    if (!idx) return;
    CHECK_INT(search_index_count(idx), 300);
    /* category, language, tag, quantization, license, min_rating */
    static const struct { const char *v[5]; double min_rating; } cases[] = {
        {{NULL, NULL, "rare", NULL, NULL}, NAN},        /* a posting list, a duplicate */
        {{NULL, NULL, "Rare", NULL, "mit"}, NAN},       /* posting list AND bitset */
        {{NULL, NULL, "t7", NULL, NULL}, NAN},
        {{NULL, NULL, "t7", NULL, "MIT"}, NAN},
        {{NULL, NULL, "t7", NULL, "wtfpl"}, NAN},       /* posting list AND posting list */
        {{"vision", NULL, "t7", NULL, NULL}, NAN},      /* two rare sets */
        {{"vision", NULL, NULL, NULL, NULL}, NAN},
        {{NULL, "JA", NULL, NULL, NULL}, NAN},
        {{NULL, "de", "odd", "q4_k_m", "mit"}, NAN},   /* four common sets */
        {{NULL, "en", "t5", NULL, NULL}, 2},
        {{NULL, NULL, "\xc3\x9c" "ber", NULL, NULL}, NAN}, /* non-ASCII: exact bytes */
        {{NULL, NULL, "\xc3\xbc" "ber", NULL, NULL}, NAN}, /* ... not folded */
        {{NULL, NULL, NULL, NULL, "wtfpl"}, NAN},
        {{NULL, NULL, NULL, "Q8_0", NULL}, 4.5},
        {{NULL, NULL, "all", NULL, NULL}, NAN},
        {{NULL, NULL, "al", NULL, NULL}, NAN},         /* exact, not a prefix */
        {{"chat", "en", "even", "q4_k_m", "mit"}, 0},
        {{NULL, "none", NULL, NULL, NULL}, NAN},       /* unknown values */
        {{NULL, NULL, "rare", NULL, "gpl"}, NAN},
    };
    static const char *params[5] = {"category", "language", "tag", "quantization", "license"};
    static const char *fields[5] = {"categories", "languages", "tags", "quantization", "license"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char qs[512] = "sort=name&limit=1000", want[4096] = "";
        for (int f = 0; f < 5; f++)
            if (cases[c].v[f])
                snprintf(qs + strlen(qs), sizeof qs - strlen(qs), "&%s=%s", params[f],
                         cases[c].v[f]);
        if (!isnan(cases[c].min_rating))
            snprintf(qs + strlen(qs), sizeof qs - strlen(qs), "&min_rating=%g",
                     cases[c].min_rating);
        size_t total = 0;
        for (int i = 0; i < 300; i++) {
            json_t *m = exact_model(i);
            int ok = isnan(cases[c].min_rating) ||
                     json_real_value(json_object_get(m, "rating")) >= cases[c].min_rating;
            for (int f = 0; f < 5 && ok; f++) ok = exact_ok(m, fields[f], cases[c].v[f]);
            if (ok) {
                if (total++) strcat(want, ",");
                strcat(want, json_string_value(json_object_get(m, "id")));
            }
            json_decref(m);
        }
        snprintf(want + strlen(want), sizeof want - strlen(want), "|%zu", total);
        const char *got = ids(idx, qs);
        if (strcmp(got, want) != 0)
            unit_fail(__FILE__, __LINE__, "%s: got %s, want %s", qs, got, want);
    }
    CHECK_STR(ids(idx, "tag=rare&sort=name"), "m007,m250|2");
    CHECK_STR(ids(idx, "tag=rare&sort=name&offset=1"), "m250|2");
    CHECK_STR(ids(idx, "tag=t7&limit=2&offset=1&sort=name&order=desc"), "m201,m104|4");
    CHECK_STR(ids(idx, "category=vision&tag=t7&language=en"), "|0");
    search_index_free(idx);
}

/* ---- agreement with a brute-force reference on a generated gallery ---------------- */

static double num(json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static int in_list(json_t *v, const char *want) {
    json_t *item;
    size_t i;
    if (json_is_string(v)) return strcasecmp(json_string_value(v), want) == 0;
    json_array_foreach(v, i, item) if (strcasecmp(json_string_value(item), want) == 0) return 1;
    return 0;
}

static int ref_match(json_t *m, const char *category, const char *term, double min_rating,
                     double max_ram) {
    if (category && !in_list(json_object_get(m, "categories"), category)) return 0;
    if (!isnan(min_rating) && !(num(m, "rating") >= min_rating)) return 0;
    if (!isnan(max_ram) && !(num(json_object_get(m, "recommendedHardware"), "ramGb") <= max_ram))
        return 0;
    if (term) {
        const char *fields[] = {"id", "name", "description"};
        int hit = 0;
        for (int i = 0; i < 3; i++) {
            json_t *v = json_object_get(m, fields[i]);
            if (json_is_string(v) && strcasestr(json_string_value(v), term)) hit = 1;
        }
        json_t *item;
        size_t i;
        json_array_foreach(json_object_get(m, "tags"), i, item)
            if (strcasestr(json_string_value(item), term)) hit = 1;
        json_array_foreach(json_object_get(m, "categories"), i, item)
            if (strcasestr(json_string_value(item), term)) hit = 1;
        if (!hit) return 0;
    }
    return 1;
}

/* Checks the order of an answer's models for sort key `key` (a model field). */
static void check_order(json_t *models, const char *key, int desc) {
    json_t *prev = NULL, *m;
    size_t i;
    json_array_foreach(models, i, m) {
        if (prev) {
            double a = num(prev, key), b = num(m, key);
            const char *ia = json_string_value(json_object_get(prev, "id"));
            const char *ib = json_string_value(json_object_get(m, "id"));
            int ok;
            if (isnan(a)) ok = isnan(b) && strcmp(ia, ib) < 0;
            else if (isnan(b)) ok = 1;
            else if (a == b) ok = strcmp(ia, ib) < 0;
            else ok = desc ? a > b : a < b;
            if (!ok) {
                unit_fail(__FILE__, __LINE__, "%s order broken at %zu (%s, %s)", key, i, ia, ib);
                return;
            }
        }
        prev = m;
    }
}

UNIT_TEST(generated_gallery_agrees_with_reference) {
    char gen[1200], gallery[600], cmd[2000];
    snprintf(gen, sizeof gen, "%s/../../bench/gen_gallery.py", data_path(""));
    snprintf(gallery, sizeof gallery, "%s/gen.json", unit_tmpdir());
    snprintf(cmd, sizeof cmd, "python3 '%s' 3000 --seed 7 --invalid 30 > '%s'", gen, gallery);
    if (system(cmd) != 0) {
        printf("  (python3 unavailable: skipped)\n");
        return;
    }
    json_t *invalid = NULL;
    json_t *g = gallery_parse_file(gallery, &invalid, NULL);
    CHECK(g != NULL);
    CHECK_INT(json_array_size(invalid), 30);
    json_t *models = json_object_get(g, "models");
    const char *cache = make_cache(gallery);
    search_index *idx = search_index_load(cache, NULL);
    CHECK(idx != NULL);
    if (!idx) return;
    CHECK_INT(search_index_count(idx), 2970);
    struct { const char *qs, *category, *term; double min_rating, max_ram; } cases[] = {
        {"category=code", "code", NULL, NAN, NAN},
        {"query=7b", NULL, "7b", NAN, NAN},
        {"query=Qwen&min_rating=4", NULL, "qwen", 4, NAN},
        {"max_ram_gb=10&category=CHAT", "chat", NULL, NAN, 10},
        {"min_rating=4.9", NULL, NULL, 4.9, NAN},
    };
    char qs[256];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t want = 0;
        json_t *m;
        size_t i;
        json_array_foreach(models, i, m)
            want += ref_match(m, cases[c].category, cases[c].term, cases[c].min_rating,
                              cases[c].max_ram);
        snprintf(qs, sizeof qs, "%s&limit=1000&sort=size", cases[c].qs);
        json_t *a = run(idx, qs, NULL);
        CHECK_INT(json_integer_value(json_object_get(a, "total")), want);
        json_array_foreach(json_object_get(a, "models"), i, m)
            if (!ref_match(m, cases[c].category, cases[c].term, cases[c].min_rating,
                           cases[c].max_ram))
                unit_fail(__FILE__, __LINE__, "%s: %s should not match", cases[c].qs,
                          json_string_value(json_object_get(m, "id")));
        check_order(json_object_get(a, "models"), "sizeGb", 1);
        json_decref(a);
    }
    /* full orders, paged */
    for (int desc = 0; desc < 2; desc++) {
        json_t *all = json_array();
        for (int off = 0; off < 3000; off += 1000) {
            snprintf(qs, sizeof qs, "sort=rating&order=%s&limit=1000&offset=%d",
                     desc ? "desc" : "asc", off);
            json_t *a = run(idx, qs, NULL);
            json_array_extend(all, json_object_get(a, "models"));
            json_decref(a);
        }
        CHECK_INT(json_array_size(all), 2970);
        check_order(all, "rating", desc);
        json_decref(all);
    }
    search_index_free(idx);
    json_decref(invalid);
    json_decref(g);
}

/* ---- the answer in pieces ------------------------------------------------------------ */

typedef struct { sink all; int stable, unstable; } piece_sink;

static int piece_write(void *ctx, const char *data, size_t len, int stable) {
    piece_sink *p = ctx;
    p->stable += stable;
    p->unstable += !stable;
    return sink_write(&p->all, data, len);
}

static int stop_piece(void *ctx, const char *data, size_t len, int stable) {
    (void)stable;
    return stop_write(ctx, data, len);
}

UNIT_TEST(answer_in_pieces_is_the_same_answer) {
    search_index *idx = load_fixture();
    if (!idx) return;
    const char *queries[] = {"", "query=7b&sort=name", "category=nothing", "limit=2&offset=3",
                             "query=qwen", NULL};
    for (int i = 0; queries[i]; i++) {
        search_query q;
        CHECK_INT(search_query_parse(&q, queries[i], NULL), 0);
        sink whole = {0};
        piece_sink pieces = {{0}, 0, 0};
        CHECK_INT(search_run(idx, &q, sink_write, &whole, NULL), 0);
        CHECK_INT(search_run_pieces(idx, &q, piece_write, &pieces, NULL), 0);
        CHECK_STR(pieces.all.buf, whole.buf);
        json_t *a = json_loads(whole.buf, 0, NULL);
        /* each model's text is handed over as it is in the mapped cache, never copied */
        CHECK_INT(pieces.stable, json_array_size(json_object_get(a, "models")));
        json_decref(a);
        free(whole.buf);
        free(pieces.all.buf);
        search_query_free(&q);
    }
    search_query q;
    CHECK_INT(search_query_parse(&q, "", NULL), 0);
    mg_error err;
    CHECK_INT(search_run_pieces(idx, &q, stop_piece, NULL, &err), -1);
    CHECK_STR(err.code, "write_failed");
    search_query_free(&q);
    search_index_free(idx);
}

/* Runs `qs` on a machine of `ram_gb` / `vram_gb`; the parsed answer, or NULL and err. */
static json_t *run_on(search_index *idx, const char *qs, double ram_gb, double vram_gb,
                      int facets, mg_error *err) {
    search_query q;
    if (search_query_parse(&q, qs, err) != 0) return NULL;
    search_query_set_machine(&q, ram_gb * 1e9, vram_gb * 1e9);
    sink s = {0};
    int rc = facets ? search_facets(idx, &q, 50, sink_write, &s, err)
                    : search_run(idx, &q, sink_write, &s, err);
    search_query_free(&q);
    json_t *answer = rc == 0 ? json_loadb(s.buf, s.len, 0, NULL) : NULL;
    CHECK(rc != 0 || answer != NULL);
    free(s.buf);
    return answer;
}

static const char *fit_of(json_t *answer, const char *id) {
    json_t *m;
    size_t i;
    json_array_foreach(json_object_get(answer, "models"), i, m) {
        if (strcmp(json_string_value(json_object_get(m, "id")), id) == 0)
            return json_string_value(json_object_get(m, "fit"));
    }
    return NULL;
}

UNIT_TEST(fit_fields_filter_and_facet) {
    search_index *idx = load_fixture();
    mg_error err;
    /* without a machine: the models as in the gallery */
    json_t *a = run(idx, "", &err);
    CHECK(json_object_get(json_array_get(json_object_get(a, "models"), 0), "fit") == NULL);
    json_decref(a);
    /* 16 GB RAM, 8 GB VRAM */
    a = run_on(idx, "limit=1000", 16, 8, 0, &err);
    CHECK_STR(fit_of(a, "alpha-7b"), "full_gpu");
    CHECK_STR(fit_of(a, "beta-27b"), "too_large");
    CHECK_STR(fit_of(a, "echo-70b"), "too_large");
    CHECK_STR(fit_of(a, "delta-embed"), "full_gpu");
    json_t *m;
    size_t i;
    json_array_foreach(json_object_get(a, "models"), i, m) {
        int est = strcmp(json_string_value(json_object_get(m, "id")), "delta-embed") == 0;
        CHECK(json_is_boolean(json_object_get(m, "fit_estimated")));
        CHECK_INT(json_is_true(json_object_get(m, "fit_estimated")), est);
        CHECK(json_object_get(m, "name") != NULL); /* the rest of the model is intact */
    }
    json_decref(a);
    a = run_on(idx, "fit=too_large", 16, 8, 0, &err);
    CHECK_INT(json_integer_value(json_object_get(a, "total")), 2);
    json_decref(a);
    a = run_on(idx, "fit=cpu,,too_large&sort=name", 16, 0, 0, &err);
    CHECK_INT(json_integer_value(json_object_get(a, "total")), 6);
    CHECK_STR(fit_of(a, "alpha-7b"), "cpu");
    json_decref(a);
    a = run_on(idx, "fit=", 16, 8, 0, &err); /* empty: ignored */
    CHECK_INT(json_integer_value(json_object_get(a, "total")), 6);
    json_decref(a);
    /* 30 GB RAM, 4 GB VRAM: three split between GPU and RAM, three whole on the GPU */
    a = run_on(idx, "fit=partial_gpu", 30, 4, 1, &err);
    CHECK_INT(json_integer_value(json_object_get(a, "total")), 3);
    char *fit = json_dumps(json_object_get(json_object_get(a, "facets"), "fit"), JSON_COMPACT);
    CHECK_STR(fit, "[{\"value\":\"full_gpu\",\"count\":3},{\"value\":\"partial_gpu\","
                   "\"count\":3}]");
    free(fit);
    json_decref(a);
    search_index_free(idx);
    CHECK_STR(bad_param("fit=gpu"), "fit");
    CHECK_STR(bad_param("fit=cpu,FULL_GPU"), "fit");
    CHECK_STR(bad_param("fit=cpu%00"), "fit");
}
