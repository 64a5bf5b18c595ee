/* test_search_index.c - a property test of the search index: on random galleries (fixed
 * seed) thousands of random queries must give exactly what a plain scan of the models gives
 * (total, ids and their order, each model's fit on a random machine, the `fit` filter, and
 * every facet, fit included), including unicode, punctuation, terms of
 * 1 and 2 bytes (below the index's trigram grain), upper case, and terms made of the end of
 * one field and the start of the next, which must never match across the two. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "gallery.h"
#include "search.h"
#include "unit.h"

#define GALLERIES 36
#define QUERIES 140

/* ---- a small deterministic random source ------------------------------------------ */

static uint64_t rng_state;

static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static size_t pick(size_t n) { return n ? (size_t)(rng() % n) : 0; }
static int chance(int percent) { return (int)pick(100) < percent; }

/* ---- random galleries ------------------------------------------------------------- */

static const char *pieces[] = {
    "qwen", "Qwen", "coder", "7b", "27B", "instruct", "chat", "llama", "Llama-3", "q4_k_m",
    "Q4_K_M", "gguf", "mistral", "v0.2", "x", "a", "ab", "abc", "b-c", "e.g.", "(beta)",
    "#12", "über", "Über", "日本語", "é", "Ωmega", "naïve", "c++", "50%", "a/b", "--", "..",
    "A", "Z9", "mini", "MiNi", "7", "0", "ß", "😀", "fr", "de", "en", "math", "tool-use",
};
#define NPIECES (sizeof pieces / sizeof pieces[0])

/* A random text of 1..`words` pieces joined by spaces or punctuation. */
static json_t *rand_text(int words) {
    char buf[512] = "";
    int n = 1 + (int)pick((size_t)words);
    for (int i = 0; i < n; i++) {
        static const char *joins[] = {" ", " ", "-", "_", "", ".", " / "};
        if (i) strcat(buf, joins[pick(7)]);
        strcat(buf, pieces[pick(NPIECES)]);
    }
    return json_string(buf);
}

static json_t *rand_list(int most, int words) {
    json_t *a = json_array();
    int n = (int)pick((size_t)most + 1);
    for (int i = 0; i < n; i++) json_array_append_new(a, rand_text(words));
    return a;
}

/* Sets `key` to `v`, or leaves it absent or null now and then. */
static void set_maybe(json_t *m, const char *key, json_t *v) {
    if (chance(8)) json_decref(v);
    else if (chance(5)) json_object_set_new(m, key, json_null()), json_decref(v);
    else json_object_set_new(m, key, v);
}

static json_t *rand_model(int i) {
    static const char *quants[] = {"Q4_K_M", "q4_k_m", "Q8_0", "F16", "IQ2_XS"};
    static const char *licenses[] = {"apache-2.0", "MIT", "mit", "llama3.1", "other"};
    static const char *families[] = {"qwen2.5", "Qwen2.5", "llama-3", "mistral", "über"};
    char id[64], date[40];
    snprintf(id, sizeof id, "%s-%d%s", pieces[pick(6)], i, chance(30) ? "-Q4.gguf" : "");
    for (char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.' || *p == '_'))
            *p = 'x';
    json_t *m = json_pack("{s:s, s:o, s:s, s:s, s:f}", "id", id, "name", rand_text(4),
                          "checksum", "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                          "downloadUrl", "https://example.com/m.gguf", "sizeGb",
                          0.1 + (double)pick(400) / 10);
    set_maybe(m, "description", rand_text(8));
    set_maybe(m, "tags", rand_list(4, 2));
    set_maybe(m, "categories", rand_list(3, 1));
    set_maybe(m, "languages", rand_list(3, 1));
    set_maybe(m, "quantization", json_string(quants[pick(5)]));
    set_maybe(m, "license", json_string(licenses[pick(5)]));
    set_maybe(m, "family", json_string(families[pick(5)]));
    set_maybe(m, "rating", json_real((double)pick(51) / 10));
    snprintf(date, sizeof date, chance(20) ? "2025-%02d-%02d" : "2025-%02d-%02dT10:00:00Z",
             1 + (int)pick(12), 1 + (int)pick(28));
    set_maybe(m, "updatedAt", json_string(chance(5) ? "someday" : date));
    int hw = (int)pick(4);
    set_maybe(m, "recommendedHardware",
              hw == 0   ? json_pack("{s:i}", "ramGb", 1 + (int)pick(64))
              : hw == 1 ? json_pack("{s:i}", "vramGb", (int)pick(25))
                        : json_pack("{s:i, s:i}", "ramGb", 1 + (int)pick(64), "vramGb",
                                    (int)pick(25)));
    return m;
}

/* ---- the plain scan: what the contract says ----------------------------------------- */

static void lower(char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'Z') s[i] = (char)(s[i] + 32);
}

/* 1 when the lower-cased string `v` holds `t` (t[0..tlen)). */
static int str_holds(json_t *v, const char *t, size_t tlen) {
    if (!json_is_string(v)) return 0;
    size_t n = json_string_length(v);
    char *s = malloc(n + 1);
    memcpy(s, json_string_value(v), n);
    lower(s, n);
    int hit = memmem(s, n, t, tlen) != NULL;
    free(s);
    return hit;
}

static int any_holds(json_t *arr, const char *t, size_t tlen) {
    json_t *v;
    size_t i;
    json_array_foreach(arr, i, v) if (str_holds(v, t, tlen)) return 1;
    return 0;
}

static int term_matches(json_t *m, const char *t, size_t tlen) {
    return str_holds(json_object_get(m, "id"), t, tlen) ||
           str_holds(json_object_get(m, "name"), t, tlen) ||
           str_holds(json_object_get(m, "description"), t, tlen) ||
           any_holds(json_object_get(m, "tags"), t, tlen) ||
           any_holds(json_object_get(m, "categories"), t, tlen);
}

static int value_is(json_t *v, const char *want) {
    if (!json_is_string(v) || json_string_length(v) != strlen(want)) return 0;
    char *s = strdup(json_string_value(v));
    lower(s, strlen(s));
    int same = strcmp(s, want) == 0;
    free(s);
    return same;
}

static int field_has(json_t *v, const char *want) {
    if (!json_is_array(v)) return value_is(v, want);
    json_t *x;
    size_t i;
    json_array_foreach(v, i, x) if (value_is(x, want)) return 1;
    return 0;
}

static const char *field_keys[] = {"categories", "languages", "tags", "quantization", "license",
                                   "family"};

static double num_of(json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* The fit class of `m` on the machine of `q`, from the contract's words: the need is
 * recommendedHardware (vramGb for the GPU, ramGb otherwise; either stands in for the other)
 * or 1.2 x sizeGb + 0.5 GB; full_gpu (0) within VRAM, partial_gpu (1) within VRAM + RAM with
 * some VRAM, cpu (2) within RAM without, too_large (3). *est: estimated. */
static int ref_fit(json_t *m, const search_query *q, int *est) {
    json_t *hw = json_object_get(m, "recommendedHardware");
    double ram = num_of(hw, "ramGb"), vram = num_of(hw, "vramGb"), size = num_of(m, "sizeGb");
    int has_ram = ram > 0, has_vram = vram > 0; /* NAN compares false */
    double need_ram, need_vram;
    *est = !has_ram && !has_vram;
    if (*est) {
        need_ram = need_vram = size > 0 ? size * 1e9 * 1.2 + 0.5e9 : 0;
    } else {
        need_ram = (has_ram ? ram : vram) * 1e9;
        need_vram = (has_vram ? vram : ram) * 1e9;
    }
    if (q->vram_bytes > 0) {
        if (need_vram <= q->vram_bytes) return 0;
        return need_ram <= q->vram_bytes + q->ram_bytes ? 1 : 3;
    }
    return need_ram <= q->ram_bytes ? 2 : 3;
}

static const char *const ref_fit_names[] = {"full_gpu", "partial_gpu", "cpu", "too_large"};

/* 1 when `m` matches every filter of `q` but the facet `skip` (0-5 the value fields, 6 fit;
 * -1 none). */
static int ref_match(json_t *m, const search_query *q, int skip) {
    int est;
    if (skip != 6 && q->fit_mask && !(q->fit_mask >> ref_fit(m, q, &est) & 1)) return 0;
    const char *exact[] = {q->category, q->language, q->tag, q->quantization, q->license, q->family};
    for (int f = 0; f < 6; f++)
        if (f != skip && exact[f] && !field_has(json_object_get(m, field_keys[f]), exact[f]))
            return 0;
    json_t *hw = json_object_get(m, "recommendedHardware");
    double r = num_of(m, "rating"), sz = num_of(m, "sizeGb");
    if (!isnan(q->min_rating) && !(r >= q->min_rating)) return 0;
    if (!isnan(q->min_size_gb) && !(sz >= q->min_size_gb)) return 0;
    if (!isnan(q->max_size_gb) && !(sz <= q->max_size_gb)) return 0;
    if (!isnan(q->max_ram_gb) && !(num_of(hw, "ramGb") <= q->max_ram_gb)) return 0;
    if (!isnan(q->max_vram_gb) && !(num_of(hw, "vramGb") <= q->max_vram_gb)) return 0;
    for (const char *s = q->terms ? q->terms : ""; *s;) {
        while (*s == ' ' || (*s >= '\t' && *s <= '\r')) s++;
        size_t n = 0;
        while (s[n] && !(s[n] == ' ' || (s[n] >= '\t' && s[n] <= '\r'))) n++;
        if (n && !term_matches(m, s, n)) return 0;
        s += n;
    }
    return 1;
}

static double ref_date(json_t *v) {
    struct tm tm = {0};
    int n = 0;
    const char *s = json_string_value(v);
    if (!s || sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3) return NAN;
    if (s[n] == 'T' && sscanf(s + n, "T%2d:%2d:%2dZ", &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 3)
        return NAN;
    if (s[n] && s[n] != 'T') return NAN;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (double)timegm(&tm);
}

typedef struct { json_t *m; double key; char *name; const char *id; } ref_row;
static int ref_sort, ref_desc;

static int ref_cmp(const void *pa, const void *pb) {
    const ref_row *a = pa, *b = pb;
    int c = 0;
    if (ref_sort == SEARCH_SORT_NAME) {
        c = strcmp(a->name, b->name);
    } else if (isnan(a->key) || isnan(b->key)) {
        if (!isnan(a->key) || !isnan(b->key)) return isnan(a->key) ? 1 : -1;
    } else {
        c = (a->key > b->key) - (a->key < b->key);
    }
    if (ref_desc) c = -c;
    return c ? c : strcmp(a->id, b->id);
}

/* The reference answer: "id,id,...|total". */
static char *ref_search(json_t *models, const search_query *q) {
    size_t n = json_array_size(models), k = 0;
    ref_row *rows = calloc(n + 1, sizeof *rows);
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(models, i);
        if (!ref_match(m, q, -1)) continue;
        ref_row *r = &rows[k++];
        r->m = m;
        r->id = json_string_value(json_object_get(m, "id"));
        r->name = strdup(json_string_value(json_object_get(m, "name")));
        lower(r->name, strlen(r->name));
        r->key = q->sort == SEARCH_SORT_RATING ? num_of(m, "rating")
                 : q->sort == SEARCH_SORT_SIZE ? num_of(m, "sizeGb")
                 : q->sort == SEARCH_SORT_UPDATED ? ref_date(json_object_get(m, "updatedAt")) : 0;
    }
    ref_sort = q->sort;
    ref_desc = q->descending;
    qsort(rows, k, sizeof *rows, ref_cmp);
    size_t cap = 64 + 200 * (size_t)q->limit, len = 0;
    char *out = malloc(cap);
    out[0] = '\0';
    for (size_t i = (size_t)q->offset; i < k && i < (size_t)(q->offset + q->limit); i++) {
        int est, c = ref_fit(rows[i].m, q, &est);
        len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? "," : "", rows[i].id);
        if (q->fit_known)
            len += (size_t)snprintf(out + len, cap - len, ":%s%s", ref_fit_names[c],
                                    est ? "~" : "");
    }
    snprintf(out + len, cap - len, "|%zu", k);
    for (size_t i = 0; i < k; i++) free(rows[i].name);
    free(rows);
    return out;
}

/* ---- the index's answers ---------------------------------------------------------- */

typedef struct { char *buf; size_t len; } sink;

static int sink_write(void *ctx, const char *data, size_t len) {
    sink *s = ctx;
    s->buf = realloc(s->buf, s->len + len + 1);
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    s->buf[s->len] = '\0';
    return 0;
}

static char *index_search(const search_index *idx, const search_query *q) {
    sink s = {0};
    if (search_run(idx, q, sink_write, &s, NULL) != 0) return strdup("error");
    json_t *a = json_loadb(s.buf, s.len, 0, NULL);
    free(s.buf);
    size_t cap = 64 + 200 * (size_t)q->limit, len = 0;
    char *out = malloc(cap);
    out[0] = '\0';
    json_t *m;
    size_t i;
    json_array_foreach(json_object_get(a, "models"), i, m) {
        len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? "," : "",
                                json_string_value(json_object_get(m, "id")));
        if (json_object_get(m, "fit"))
            len += (size_t)snprintf(out + len, cap - len, ":%s%s",
                                    json_string_value(json_object_get(m, "fit")),
                                    json_is_true(json_object_get(m, "fit_estimated")) ? "~" : "");
    }
    snprintf(out + len, cap - len, "|%lld", (long long)json_integer_value(json_object_get(a, "total")));
    json_decref(a);
    return out;
}

/* ---- facets ------------------------------------------------------------------------- */

static void lower_copy(json_t *v, char *out, size_t n) {
    snprintf(out, n, "%s", json_string_value(v));
    lower(out, strlen(out));
}

/* Adds the distinct values of `v` in one model to the counts object. */
static void ref_count_values(json_t *v, json_t *counts) {
    json_t *seen = json_object(), *items = json_is_array(v) ? v : NULL, *x;
    size_t i, n = items ? json_array_size(items) : 1;
    for (i = 0; i < n; i++) {
        x = items ? json_array_get(items, i) : v;
        if (!json_is_string(x) || json_string_length(x) == 0) continue;
        char low[512];
        lower_copy(x, low, sizeof low);
        if (json_object_get(seen, low)) continue;
        json_object_set_new(seen, low, json_true());
        json_object_set_new(counts, low,
                            json_integer(json_integer_value(json_object_get(counts, low)) + 1));
    }
    json_decref(seen);
}

static int facet_cmp(const void *pa, const void *pb) {
    json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
    json_int_t ca = json_integer_value(json_object_get(a, "count"));
    json_int_t cb = json_integer_value(json_object_get(b, "count"));
    if (ca != cb) return ca > cb ? -1 : 1;
    return strcmp(json_string_value(json_object_get(a, "value")),
                  json_string_value(json_object_get(b, "value")));
}

/* The reference facet `f`: [{value, count}] sorted, at most `limit`. New reference. */
static json_t *ref_facet(json_t *models, const search_query *q, int f, size_t limit) {
    json_t *counts = json_object(), *m, *v;
    size_t i;
    const char *k;
    json_array_foreach(models, i, m)
        if (ref_match(m, q, f)) ref_count_values(json_object_get(m, field_keys[f]), counts);
    size_t n = json_object_size(counts), j = 0;
    json_t **items = calloc(n + 1, sizeof *items);
    json_object_foreach(counts, k, v) items[j++] = json_pack("{s:s, s:O}", "value", k, "count", v);
    qsort(items, n, sizeof *items, facet_cmp);
    json_t *out = json_array();
    for (j = 0; j < n; j++) {
        if (j < limit) json_array_append(out, items[j]);
        json_decref(items[j]);
    }
    free(items);
    json_decref(counts);
    return out;
}

/* The reference fit facet: the classes of the models matching every filter but fit, on the
 * machine of `q` (none without one). New reference. */
static json_t *ref_fit_facet(json_t *models, const search_query *q, size_t limit) {
    json_t *counts = json_object(), *m;
    size_t i;
    json_array_foreach(models, i, m) {
        int est;
        if (!q->fit_known || !ref_match(m, q, 6)) continue;
        const char *name = ref_fit_names[ref_fit(m, q, &est)];
        json_object_set_new(counts, name,
                            json_integer(json_integer_value(json_object_get(counts, name)) + 1));
    }
    size_t n = json_object_size(counts), j = 0;
    json_t **items = calloc(n + 1, sizeof *items), *v;
    const char *k;
    json_object_foreach(counts, k, v) items[j++] = json_pack("{s:s, s:O}", "value", k, "count", v);
    qsort(items, n, sizeof *items, facet_cmp);
    json_t *out = json_array();
    for (j = 0; j < n; j++) {
        if (j < limit) json_array_append(out, items[j]);
        json_decref(items[j]);
    }
    free(items);
    json_decref(counts);
    return out;
}

static int check_facets(json_t *models, const search_index *idx, const search_query *q,
                        size_t limit, const char *qs) {
    sink s = {0};
    CHECK_INT(search_facets(idx, q, (long)limit, sink_write, &s, NULL), 0);
    json_t *a = json_loadb(s.buf, s.len, 0, NULL);
    free(s.buf);
    int ok = a != NULL;
    char *want_total = ref_search(models, q);
    long long total = atoll(strrchr(want_total, '|') + 1);
    free(want_total);
    if (ok && json_integer_value(json_object_get(a, "total")) != total) ok = 0;
    for (int f = 0; ok && f < 6; f++) {
        json_t *want = ref_facet(models, q, f, limit);
        json_t *got = json_object_get(json_object_get(a, "facets"), search_facet_names[f]);
        if (!json_equal(want, got)) {
            char *w = json_dumps(want, 0), *g = json_dumps(got, 0);
            unit_fail(__FILE__, __LINE__, "facet %s of ?%s: %.300s, expected %.300s",
                      search_facet_names[f], qs, g ? g : "(none)", w);
            free(w);
            free(g);
            ok = 0;
        }
        json_decref(want);
    }
    json_t *want_fit = ref_fit_facet(models, q, limit);
    if (ok && !json_equal(want_fit, json_object_get(json_object_get(a, "facets"), "fit"))) {
        char *w = json_dumps(want_fit, 0);
        char *g = json_dumps(json_object_get(json_object_get(a, "facets"), "fit"), 0);
        unit_fail(__FILE__, __LINE__, "facet fit of ?%s: %.300s, expected %.300s", qs,
                  g ? g : "(none)", w);
        free(w);
        free(g);
        ok = 0;
    }
    json_decref(want_fit);
    json_decref(a);
    return ok;
}

/* ---- random queries ------------------------------------------------------------------- */

/* Appends s[0..n) percent-encoded. */
static void url_put(char *qs, size_t cap, const char *s, size_t n) {
    size_t len = strlen(qs);
    for (size_t i = 0; i < n && len + 4 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_')
            qs[len++] = (char)c;
        else
            len += (size_t)snprintf(qs + len, cap - len, "%%%02X", c);
    }
    qs[len] = '\0';
}

/* A random string field of a random model (`texts` only: the fields terms look at). */
static json_t *rand_field(json_t *models, int texts) {
    json_t *m = json_array_get(models, pick(json_array_size(models)));
    static const char *keys[] = {"id", "name", "description", "tags", "categories",
                                 "languages", "quantization", "license", "family"};
    json_t *v = json_object_get(m, keys[pick(texts ? 5 : 9)]);
    if (json_is_array(v)) v = json_array_get(v, pick(json_array_size(v)));
    return json_is_string(v) ? v : NULL;
}

/* One term: a piece, a substring of a field (often 1 or 2 bytes), or the end of one field
 * joined to the start of the next (which must only match within a field). */
static void rand_term(json_t *models, char *out, size_t cap) {
    int kind = (int)pick(5);
    json_t *v = rand_field(models, 1);
    if (kind == 0 || !v) {
        snprintf(out, cap, "%s", pieces[pick(NPIECES)]);
        return;
    }
    const char *s = json_string_value(v);
    size_t n = strlen(s);
    if (kind == 4) {
        json_t *m = json_array_get(models, pick(json_array_size(models)));
        const char *id = json_string_value(json_object_get(m, "id"));
        const char *name = json_string_value(json_object_get(m, "name"));
        size_t a = strlen(id), take = 1 + pick(3);
        snprintf(out, cap, "%s%.*s", id + (a > take ? a - take : 0), (int)(1 + pick(3)), name);
        return;
    }
    size_t len = kind == 1 ? 1 : kind == 2 ? 2 : 3 + pick(6);
    size_t at = pick(n > len ? n - len + 1 : 1);
    snprintf(out, cap, "%.*s", (int)(len < n - at ? len : n - at), s + at);
}

static void rand_query(json_t *models, char *qs, size_t cap) {
    static const char *params[] = {"category", "language", "tag", "quantization", "license",
                                   "family"};
    static const char *sorts[] = {"rating", "size", "name", "updated"};
    char term[128];
    qs[0] = '\0';
    int terms = (int)pick(4);
    if (terms) strcat(qs, "query=");
    for (int t = 0; t < terms; t++) {
        rand_term(models, term, sizeof term);
        if (t) strcat(qs, "+");
        url_put(qs, cap, term, strlen(term));
    }
    for (int f = 0; f < 6; f++) {
        if (!chance(12)) continue;
        json_t *v = rand_field(models, 0);
        const char *value = v && chance(85) ? json_string_value(v) : "nothing-like-this";
        snprintf(qs + strlen(qs), cap - strlen(qs), "&%s=", params[f]);
        url_put(qs, cap, value, strlen(value));
    }
    if (chance(15)) snprintf(qs + strlen(qs), cap - strlen(qs), "&min_rating=%.1f", (double)pick(50) / 10);
    if (chance(10)) snprintf(qs + strlen(qs), cap - strlen(qs), "&max_size_gb=%d", (int)pick(40));
    if (chance(10)) snprintf(qs + strlen(qs), cap - strlen(qs), "&max_ram_gb=%d", (int)pick(64));
    if (chance(10)) snprintf(qs + strlen(qs), cap - strlen(qs), "&max_vram_gb=%d", (int)pick(24));
    if (chance(60)) snprintf(qs + strlen(qs), cap - strlen(qs), "&sort=%s", sorts[pick(4)]);
    if (chance(40)) snprintf(qs + strlen(qs), cap - strlen(qs), "&order=%s", chance(50) ? "asc" : "desc");
    if (chance(50)) snprintf(qs + strlen(qs), cap - strlen(qs), "&limit=%d", 1 + (int)pick(30));
    if (chance(40)) snprintf(qs + strlen(qs), cap - strlen(qs), "&offset=%d", (int)pick(40));
    if (chance(25)) {
        static const char *const fits[] = {"full_gpu", "partial_gpu", "cpu", "too_large"};
        strcat(qs, "&fit=");
        for (int i = 0, n = 1 + (int)pick(3); i < n; i++)
            snprintf(qs + strlen(qs), cap - strlen(qs), "%s%s", i ? "," : "", fits[pick(4)]);
    }
}

/* A random machine for `q` most of the time: 1-64 GB of RAM, no GPU or 1-24 GB of VRAM. */
static void rand_machine(search_query *q) {
    if (!chance(70)) return;
    double ram = (1 + (double)pick(64)) * 1e9;
    search_query_set_machine(q, ram, chance(40) ? 0 : (1 + (double)pick(24)) * 1e9);
}

/* ---- the property ------------------------------------------------------------------- */

static int check_gallery(int g, size_t *queries) {
    size_t n = g == 0 ? 0 : g == 1 ? 1 : 63 + pick(g % 3 == 0 ? 700 : 160);
    json_t *models = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(models, rand_model((int)i));
    json_t *gallery = json_pack("{s:s, s:o}", "version", "1", "models", models);
    char path[600];
    snprintf(path, sizeof path, "%s/g%d.json", unit_tmpdir(), g);
    mg_error err;
    CHECK_INT(gallery_cache_write(path, gallery, NULL, &err), 0);
    search_index *idx = search_index_load(path, &err);
    CHECK(idx != NULL);
    int failures = 0;
    for (int k = 0; idx && k < QUERIES && failures < 3; k++) {
        char qs[2048];
        rand_query(models, qs, sizeof qs);
        search_query q;
        if (search_query_parse(&q, qs, &err) != 0) continue; /* e.g. a term too long */
        rand_machine(&q);
        char *want = ref_search(models, &q), *got = index_search(idx, &q);
        if (strcmp(want, got) != 0) {
            unit_fail(__FILE__, __LINE__, "gallery %d, ?%s: got %.400s, expected %.400s", g, qs,
                      got, want);
            failures++;
        }
        if (k % 4 == 0 && !check_facets(models, idx, &q, 1 + pick(8), qs)) failures++;
        (*queries)++;
        free(want);
        free(got);
        search_query_free(&q);
    }
    search_index_free(idx);
    json_decref(gallery);
    return failures;
}

UNIT_TEST(index_answers_what_a_scan_answers) {
    rng_state = 0x9E3779B97F4A7C15ull;
    size_t queries = 0;
    int failures = 0;
    for (int g = 0; g < GALLERIES && failures < 6; g++) failures += check_gallery(g, &queries);
    CHECK(queries > 4000);
    fprintf(stderr, "  %zu random queries over %d random galleries\n", queries, GALLERIES);
}
