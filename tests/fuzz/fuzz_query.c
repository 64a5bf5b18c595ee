/* fuzz_query.c - the search query string (search_query_parse) and the search it drives
 * (search_run over an index of tests/data/search.json).
 *
 * Parse invariants: a malformed query is a 400 "invalid_parameter" naming a parameter that
 * was given, with a message free of control characters; a parsed one has limit 1-1000,
 * offset >= 0, numbers unset or finite and >= 0, min_size_gb <= max_size_gb, and holds exactly
 * the last value given for sort, order, limit, offset and the exact filters (lower-cased), as
 * an independent reading of the query string finds them, and the distinct words of query
 * within its bounds; parsing is deterministic.
 * Search invariants: the answer is JSON with the query's offset and limit, a page of
 * min(limit, total - offset) models, each an indexed model that satisfies every exact filter
 * and numeric bound; without free-text terms, total equals a brute-force count. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "gallery.h"
#include "machine.h"
#include "search.h"

static search_index *query_idx;
static json_t *query_models; /* the indexed models, for the brute-force count */

static const char *const query_params[] = {
    "query", "category", "language", "tag", "quantization", "license", "min_rating",
    "min_size_gb", "max_size_gb", "max_ram_gb", "max_vram_gb", "sort", "order", "limit",
    "offset", "family", "fit", NULL};
static const char *const query_sorts[] = {"rating", "size", "name", "updated", NULL};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    mg_error err;
    json_t *g;
    (void)argc;
    (void)argv;
    fuzz_quiet();
    g = gallery_parse_file(MG_FUZZ_DATA "/search.json", NULL, &err);
    query_idx = g ? fuzz_index(g, &err) : NULL;
    if (!query_idx) {
        fprintf(stderr, "fuzz_query: %s\n", err.message);
        abort();
    }
    query_models = json_incref(json_object_get(g, "models"));
    json_decref(g);
    return 0;
}

/* ---- an independent reading of the query string ----------------------------------- */

static int query_hex(int c) {
    return isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
}

/* Form-decodes s[0..len): '+' is a space, "%XX" a byte, anything else itself. */
static char *query_decode(const char *s, size_t len, size_t *out_len) {
    char *out = malloc(len + 1);
    size_t n = 0;
    if (!out) abort();
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && len - i >= 3 && query_hex((unsigned char)s[i + 1]) >= 0 &&
            query_hex((unsigned char)s[i + 2]) >= 0) {
            out[n++] = (char)(query_hex((unsigned char)s[i + 1]) * 16 +
                              query_hex((unsigned char)s[i + 2]));
            i += 2;
        } else {
            out[n++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

/* The decoded value of the last `name=` in `qs` (a bare `name` is ""), malloc'd with its
 * length in *len; NULL when the parameter is absent. */
static char *query_last(const char *qs, const char *name, size_t *len) {
    char *found = NULL;
    for (const char *p = qs; *p;) {
        size_t plen = strcspn(p, "&"), klen, vlen = 0;
        const char *eq = memchr(p, '=', plen);
        char *key = query_decode(p, eq ? (size_t)(eq - p) : plen, &klen);
        if (klen == strlen(name) && memcmp(key, name, klen) == 0) {
            free(found);
            found = eq ? query_decode(eq + 1, plen - (size_t)(eq - p) - 1, &vlen)
                       : query_decode("", 0, &vlen);
            *len = vlen;
        }
        free(key);
        p += plen;
        if (*p == '&') p++;
    }
    return found;
}

/* ---- the parse -------------------------------------------------------------------- */

/* 1 when `word` (n bytes) is one of the blank-separated words of `text`, ASCII case folded. */
static int query_has_word(const char *text, size_t tlen, const char *word, size_t n) {
    for (size_t i = 0; i < tlen;) {
        while (i < tlen && isspace((unsigned char)text[i])) i++;
        size_t k = 0;
        while (i + k < tlen && !isspace((unsigned char)text[i + k])) k++;
        if (k == n && strncasecmp(text + i, word, n) == 0) return 1;
        i += k;
    }
    return 0;
}

/* The free-text terms: NULL exactly when `query` is absent or blank; else its distinct words,
 * lower-cased, once each, joined by single spaces, within SEARCH_TERMS_MAX and
 * SEARCH_TERM_BYTES_MAX. */
static void query_check_terms(const char *qs, const char *terms) {
    size_t len = 0, n = 0;
    char *v = query_last(qs, "query", &len);
    if (!terms) {
        for (size_t i = 0; v && i < len; i++) FUZZ_CHECK(isspace((unsigned char)v[i]));
        free(v);
        return;
    }
    FUZZ_CHECK(v != NULL && *terms && terms[0] != ' ' && !strstr(terms, "  "));
    FUZZ_CHECK(terms[strlen(terms) - 1] != ' ');
    for (const char *t = terms; *t; n++) {
        size_t k = strcspn(t, " ");
        FUZZ_CHECK(k <= SEARCH_TERM_BYTES_MAX && query_has_word(v, len, t, k));
        for (size_t i = 0; i < k; i++) FUZZ_CHECK(!isupper((unsigned char)t[i]));
        FUZZ_CHECK(!query_has_word(t + k, strlen(t + k), t, k)); /* once each */
        t += k + (t[k] == ' ');
    }
    FUZZ_CHECK(n <= SEARCH_TERMS_MAX);
    free(v);
}

static void query_check_integer(const char *qs, const char *name, long got, long def) {
    size_t len;
    char *v = query_last(qs, name, &len);
    if (!v) {
        FUZZ_CHECK(got == def);
        return;
    }
    FUZZ_CHECK(len > 0 && strspn(v, "0123456789") == len);
    FUZZ_CHECK(strtol(v, NULL, 10) == got);
    free(v);
}

static void query_check_sort(const char *qs, const search_query *q) {
    size_t len;
    char *v = query_last(qs, "sort", &len);
    int want = SEARCH_SORT_RATING;
    if (v) {
        for (want = 0; query_sorts[want]; want++)
            if (strlen(query_sorts[want]) == len && memcmp(v, query_sorts[want], len) == 0) break;
        FUZZ_CHECK(query_sorts[want] != NULL);
        free(v);
    }
    FUZZ_CHECK((int)q->sort == want);
    v = query_last(qs, "order", &len);
    if (v) {
        int asc = len == 3 && memcmp(v, "asc", 3) == 0;
        int desc = len == 4 && memcmp(v, "desc", 4) == 0;
        FUZZ_CHECK(asc || desc);
        FUZZ_CHECK(q->descending == desc);
        free(v);
    } else {
        FUZZ_CHECK(q->descending == (q->sort != SEARCH_SORT_NAME));
    }
}

/* An exact filter holds the lower-cased last value, or NULL when it was absent or empty. */
static void query_check_text(const char *qs, const char *name, const char *got) {
    size_t len;
    char *v = query_last(qs, name, &len);
    if (!v || len == 0) {
        FUZZ_CHECK(got == NULL);
    } else {
        FUZZ_CHECK(got != NULL && strlen(got) == len);
        for (size_t i = 0; i < len; i++)
            FUZZ_CHECK(got[i] == ((unsigned char)v[i] < 128 ? tolower((unsigned char)v[i])
                                                            : v[i]));
    }
    free(v);
}

static void query_check_number(const char *qs, const char *name, double got) {
    size_t len;
    char *v = query_last(qs, name, &len);
    if (!v) {
        FUZZ_CHECK(isnan(got));
        return;
    }
    FUZZ_CHECK(isfinite(got) && got >= 0);
    FUZZ_CHECK(strlen(v) == len && strtod(v, NULL) == got);
    free(v);
}

static void query_check_parsed(const char *qs, const search_query *q) {
    FUZZ_CHECK(q->limit >= 1 && q->limit <= 1000);
    FUZZ_CHECK(q->offset >= 0);
    query_check_integer(qs, "limit", q->limit, 100);
    query_check_integer(qs, "offset", q->offset, 0);
    query_check_sort(qs, q);
    query_check_text(qs, "category", q->category);
    query_check_text(qs, "language", q->language);
    query_check_text(qs, "tag", q->tag);
    query_check_text(qs, "quantization", q->quantization);
    query_check_text(qs, "license", q->license);
    query_check_number(qs, "min_rating", q->min_rating);
    query_check_number(qs, "min_size_gb", q->min_size_gb);
    query_check_number(qs, "max_size_gb", q->max_size_gb);
    query_check_number(qs, "max_ram_gb", q->max_ram_gb);
    query_check_number(qs, "max_vram_gb", q->max_vram_gb);
    FUZZ_CHECK(!(q->min_size_gb > q->max_size_gb));
    query_check_terms(qs, q->terms);
}

static void query_check_error(const char *qs, const mg_error *err) {
    size_t len;
    int known = 0;
    FUZZ_CHECK(err->status == 400);
    FUZZ_CHECK(strcmp(err->code, "invalid_parameter") == 0);
    for (int i = 0; query_params[i]; i++) known |= strcmp(err->parameter, query_params[i]) == 0;
    FUZZ_CHECK(known);
    char *v = query_last(qs, err->parameter, &len);
    FUZZ_CHECK(v != NULL); /* the parameter named was given */
    free(v);
    FUZZ_CHECK(err->message[0] && fuzz_printable(err->message, strlen(err->message)));
}

/* ---- the search ------------------------------------------------------------------- */

/* 1 when the string `v`, or a string of the array `v`, lower-cased equals `want`. */
static int query_has_value(json_t *v, const char *want) {
    json_t *item;
    size_t i;
    if (json_is_string(v))
        return json_string_length(v) == strlen(want) &&
               strncasecmp(json_string_value(v), want, strlen(want)) == 0;
    json_array_foreach(v, i, item) if (query_has_value(item, want)) return 1;
    return 0;
}

/* 1 when `num` (a JSON number or not) passes the bound: at least `lo` / at most `hi`. */
static int query_in_bound(json_t *num, double bound, int is_min) {
    if (isnan(bound)) return 1;
    if (!json_is_number(num)) return 0;
    double v = json_number_value(num);
    return is_min ? v >= bound : v <= bound;
}

/* 1 when `m` satisfies every filter of `q` except the free-text terms. */
/* The number `key` of `obj`, or NAN. */
static double query_number(json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* The fit class of model `m` on the query's machine (none: no memory at all). */
static machine_fit_class query_fit(const search_query *q, json_t *m) {
    json_t *hw = json_object_get(m, "recommendedHardware");
    int estimated;
    return machine_class_gb(query_number(hw, "ramGb"), query_number(hw, "vramGb"),
                            query_number(m, "sizeGb"), (double)q->ram_bytes / 1e9,
                            (double)q->vram_bytes / 1e9, &estimated);
}

static int query_model_matches(const search_query *q, json_t *m) {
    const char *keys[] = {"categories", "languages", "tags", "quantization", "license", "family"};
    const char *vals[] = {q->category, q->language,     q->tag,
                          q->quantization, q->license, q->family};
    json_t *hw = json_object_get(m, "recommendedHardware");
    for (int i = 0; i < 6; i++)
        if (vals[i] && !query_has_value(json_object_get(m, keys[i]), vals[i])) return 0;
    if (q->fit_mask && !(q->fit_mask >> query_fit(q, m) & 1)) return 0;
    return query_in_bound(json_object_get(m, "rating"), q->min_rating, 1) &&
           query_in_bound(json_object_get(m, "sizeGb"), q->min_size_gb, 1) &&
           query_in_bound(json_object_get(m, "sizeGb"), q->max_size_gb, 0) &&
           query_in_bound(json_object_get(hw, "ramGb"), q->max_ram_gb, 0) &&
           query_in_bound(json_object_get(hw, "vramGb"), q->max_vram_gb, 0);
}

static int query_write(void *ctx, const char *data, size_t len) {
    return fwrite(data, 1, len, ctx) == len ? 0 : -1;
}

static void query_check_search(const search_query *q) {
    char *text = NULL;
    size_t len = 0, i, expect = 0;
    mg_error err;
    json_t *m;
    FILE *f = open_memstream(&text, &len);
    if (!f) abort();
    int rc = search_run(query_idx, q, query_write, f, &err);
    fclose(f);
    FUZZ_CHECK(rc == 0);
    json_t *ans = json_loadb(text, len, 0, NULL);
    free(text);
    FUZZ_CHECK(json_is_object(ans));
    json_int_t total = json_integer_value(json_object_get(ans, "total"));
    json_t *models = json_object_get(ans, "models");
    FUZZ_CHECK(json_is_integer(json_object_get(ans, "total")) && total >= 0);
    FUZZ_CHECK((size_t)total <= search_index_count(query_idx));
    FUZZ_CHECK(json_integer_value(json_object_get(ans, "offset")) == q->offset);
    FUZZ_CHECK(json_integer_value(json_object_get(ans, "limit")) == q->limit);
    FUZZ_CHECK(json_is_array(models));
    size_t page = total > q->offset ? (size_t)(total - q->offset) : 0;
    FUZZ_CHECK(json_array_size(models) == (page < (size_t)q->limit ? page : (size_t)q->limit));
    json_array_foreach(models, i, m) {
        const char *id = json_string_value(json_object_get(m, "id"));
        json_t *indexed = id ? search_index_get(query_idx, id) : NULL;
        FUZZ_CHECK(indexed != NULL && json_equal(indexed, m));
        json_decref(indexed);
        FUZZ_CHECK(query_model_matches(q, m));
    }
    json_array_foreach(query_models, i, m) expect += (size_t)query_model_matches(q, m);
    FUZZ_CHECK(q->terms ? (size_t)total <= expect : (size_t)total == expect);
    json_decref(ans);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *qs = fuzz_cstring(data, size);
    search_query q, again;
    mg_error err, err2;
    mg_error_clear(&err);
    int rc = search_query_parse(&q, qs, &err);
    FUZZ_CHECK(rc == 0 || rc == -1);
    FUZZ_CHECK(search_query_parse(&again, qs, &err2) == rc);
    if (rc == 0) {
        query_check_parsed(qs, &q);
        query_check_search(&q);
        search_query_free(&q);
        search_query_free(&again);
    } else {
        query_check_error(qs, &err);
        FUZZ_CHECK(strcmp(err.parameter, err2.parameter) == 0);
        FUZZ_CHECK(strcmp(err.message, err2.message) == 0);
    }
    free(qs);
    return 0;
}
