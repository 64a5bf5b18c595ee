/* search.c - the search query: parsing the raw query string of GET .../search (and of
 * .../facets) into a search_query as the contract's parameter table says. The index and
 * answering queries are search_index.c and search_run.c. */
#include "search.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine.h"

#define SEARCH_LIMIT_DEFAULT 100
#define SEARCH_LIMIT_MAX 1000
#define SEARCH_STR2(x) #x
#define SEARCH_STR(x) SEARCH_STR2(x)

/* ---- the query string ------------------------------------------------------------- */

static int search_hex(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..len) ('+' is a space; a bad escape stays as it is). Returns a new
 * NUL-terminated string (caller frees), its length in *out_len. */
static char *search_unescape(const char *s, size_t len, size_t *out_len) {
    char *out = malloc(len + 1);
    size_t n = 0;
    if (!out) return NULL;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '+') out[n++] = ' ';
        else if (s[i] == '%' && i + 2 < len &&
                 (hi = search_hex((unsigned char)s[i + 1])) >= 0 &&
                 (lo = search_hex((unsigned char)s[i + 2])) >= 0) {
            out[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else out[n++] = s[i];
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

static const char *search_params[] = {"query", "category", "language", "tag", "quantization",
                                      "license", "min_rating", "min_size_gb", "max_size_gb",
                                      "max_ram_gb", "max_vram_gb", "sort", "order", "limit",
                                      "offset", "family", "fit", NULL};
enum { SP_QUERY, SP_CATEGORY, SP_LANGUAGE, SP_TAG, SP_QUANT, SP_LICENSE, SP_MIN_RATING,
       SP_MIN_SIZE, SP_MAX_SIZE, SP_MAX_RAM, SP_MAX_VRAM, SP_SORT, SP_ORDER, SP_LIMIT,
       SP_OFFSET, SP_FAMILY, SP_FIT, SP_COUNT };

typedef struct { char *v[SP_COUNT]; size_t len[SP_COUNT]; } search_raw;

/* Splits the query string; the last value of a repeated parameter wins. */
static int search_split(const char *qs, search_raw *raw) {
    const char *p = qs ? qs : "";
    while (*p) {
        size_t plen = strcspn(p, "&");
        const char *eq = memchr(p, '=', plen);
        size_t klen = eq ? (size_t)(eq - p) : plen, kn, vn = 0;
        char *key = search_unescape(p, klen, &kn);
        if (!key) return -1;
        for (int i = 0; search_params[i]; i++) {
            if (strlen(search_params[i]) != kn || memcmp(key, search_params[i], kn) != 0)
                continue;
            char *val = eq ? search_unescape(eq + 1, plen - klen - 1, &vn) : strdup("");
            if (!val) { free(key); return -1; }
            free(raw->v[i]);
            raw->v[i] = val;
            raw->len[i] = vn;
        }
        free(key);
        p += plen;
        if (*p == '&') p++;
    }
    return 0;
}

/* A printable excerpt of a user value for messages. */
static void search_excerpt(const char *v, size_t len, char out[48]) {
    size_t n = 0;
    for (size_t i = 0; i < len && n < 40; i++)
        out[n++] = (v[i] >= 0x20 && v[i] < 0x7f && v[i] != '"' && v[i] != '\\') ? v[i] : '?';
    if (len > 40) out[n++] = '.', out[n++] = '.', out[n++] = '.';
    out[n] = '\0';
}

static int search_bad(mg_error *err, const char *param, const char *v, size_t len,
                      const char *what) {
    char ex[48];
    search_excerpt(v, len, ex);
    return mg_error_set(err, 400, "invalid_parameter", param, "%s must be %s (got \"%s\")",
                        param, what, ex);
}

/* A parameter given with an empty value ("min_rating=" or a bare "min_rating"). Empty text
 * filters are ignored; an empty number, page, sort or order is malformed. */
static int search_empty(mg_error *err, const char *param, const char *what) {
    return mg_error_set(err, 400, "invalid_parameter", param, "%s must be %s, got an empty value",
                        param, what);
}

/* A finite, non-negative decimal number. */
static int search_parse_number(const char *v, size_t len, const char *param, double *out,
                               mg_error *err) {
    const char *what = "a finite number >= 0";
    if (strlen(v) != len || strspn(v, "0123456789.eE+-") != len)
        return search_bad(err, param, v, len, what);
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end || !isfinite(d) || d < 0) return search_bad(err, param, v, len, what);
    *out = d;
    return 0;
}

static int search_parse_integer(const char *v, size_t len, const char *param, long lo,
                                long hi, long *out, mg_error *err) {
    char what[64];
    snprintf(what, sizeof what, "an integer from %ld to %ld", lo, hi);
    if (strlen(v) != len || strspn(v, "0123456789") != len)
        return search_bad(err, param, v, len, what);
    errno = 0;
    long n = strtol(v, NULL, 10);
    if (errno || n < lo || n > hi) return search_bad(err, param, v, len, what);
    *out = n;
    return 0;
}

/* A text filter: lower-cased copy, or 400 for a value holding a NUL byte. */
static int search_parse_text(char **slot, const char *v, size_t len, const char *param,
                             mg_error *err) {
    if (strlen(v) != len)
        return search_bad(err, param, v, len, "text without NUL bytes");
    *slot = strdup(v);
    if (!*slot) return mg_error_set(err, 500, "out_of_memory", NULL, "out of memory");
    for (char *p = *slot; *p; p++)
        if ((unsigned char)*p < 128) *p = (char)tolower((unsigned char)*p);
    return 0;
}

/* Rewrites the lower-cased query text `*text` as its distinct terms joined by single
 * spaces, after checking the bounds. 0, or -1 and err 400 naming query. */
static int search_parse_terms(char **text, mg_error *err) {
    const char *term[SEARCH_TERMS_MAX];
    size_t len[SEARCH_TERMS_MAX], n = 0;
    for (const char *s = *text; *s;) {
        while (*s && isspace((unsigned char)*s)) s++;
        size_t k = 0;
        while (s[k] && !isspace((unsigned char)s[k])) k++;
        if (k > SEARCH_TERM_BYTES_MAX)
            return search_bad(err, "query", s, k,
                              "terms of at most " SEARCH_STR(SEARCH_TERM_BYTES_MAX) " bytes");
        size_t i = 0;
        while (i < n && !(len[i] == k && memcmp(term[i], s, k) == 0)) i++;
        if (k && i == n) {
            if (n == SEARCH_TERMS_MAX)
                return mg_error_set(err, 400, "invalid_parameter", "query",
                                    "query must have at most %d distinct terms",
                                    SEARCH_TERMS_MAX);
            term[n] = s;
            len[n++] = k;
        }
        s += k;
    }
    char *out = malloc(strlen(*text) + 1), *o = out;
    if (!out) return mg_error_set(err, 500, "out_of_memory", NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (i) *o++ = ' ';
        memcpy(o, term[i], len[i]);
        o += len[i];
    }
    *o = '\0';
    free(*text);
    *text = n ? out : NULL;
    if (!n) free(out);
    return 0;
}

static int search_parse_sort(search_query *q, const search_raw *raw, mg_error *err) {
    static const char *sorts[] = {"rating", "size", "name", "updated", NULL};
    const char *v = raw->v[SP_SORT];
    if (v && !raw->len[SP_SORT])
        return search_empty(err, "sort", "one of rating, size, name, updated");
    if (v) {
        int i = 0;
        while (sorts[i] && strcmp(sorts[i], v) != 0) i++;
        if (!sorts[i] || strlen(v) != raw->len[SP_SORT])
            return search_bad(err, "sort", v, raw->len[SP_SORT],
                              "one of rating, size, name, updated");
        q->sort = (search_sort)i;
    }
    q->descending = q->sort != SEARCH_SORT_NAME;
    v = raw->v[SP_ORDER];
    if (v && !raw->len[SP_ORDER]) return search_empty(err, "order", "asc or desc");
    if (v) {
        if (strlen(v) != raw->len[SP_ORDER] || (strcmp(v, "asc") != 0 && strcmp(v, "desc") != 0))
            return search_bad(err, "order", v, raw->len[SP_ORDER], "asc or desc");
        q->descending = strcmp(v, "desc") == 0;
    }
    return 0;
}

/* `fit`: a comma list of fit classes (lower-case; empty items ignored) into q->fit_mask. */
static int search_parse_fit(search_query *q, const char *v, size_t len, mg_error *err) {
    for (size_t i = 0; i < len;) {
        size_t n = 0;
        while (i + n < len && v[i + n] != ',') n++;
        machine_fit_class c;
        if (n && machine_fit_parse(v + i, n, &c) != 0)
            return search_bad(err, "fit", v, len,
                              "a comma list of full_gpu, partial_gpu, cpu, too_large");
        if (n) q->fit_mask |= 1u << c;
        i += n + 1;
    }
    return 0;
}

static int search_parse_values(search_query *q, const search_raw *raw, mg_error *err) {
    char **texts[] = {&q->terms, &q->category, &q->language, &q->tag, &q->quantization,
                      &q->license};
    double *nums[] = {&q->min_rating, &q->min_size_gb, &q->max_size_gb, &q->max_ram_gb,
                      &q->max_vram_gb};
    for (int i = SP_QUERY; i <= SP_LICENSE; i++)
        if (raw->v[i] && raw->len[i] &&
            search_parse_text(texts[i - SP_QUERY], raw->v[i], raw->len[i], search_params[i],
                              err) != 0)
            return -1;
    if (q->terms && search_parse_terms(&q->terms, err) != 0) return -1;
    if (raw->v[SP_FAMILY] && raw->len[SP_FAMILY] &&
        search_parse_text(&q->family, raw->v[SP_FAMILY], raw->len[SP_FAMILY], "family", err) != 0)
        return -1;
    for (int i = SP_MIN_RATING; i <= SP_MAX_VRAM; i++) {
        if (!raw->v[i]) continue;
        if (!raw->len[i]) return search_empty(err, search_params[i], "a number");
        if (search_parse_number(raw->v[i], raw->len[i], search_params[i],
                                nums[i - SP_MIN_RATING], err) != 0)
            return -1;
    }
    if (raw->v[SP_LIMIT] && !raw->len[SP_LIMIT])
        return search_empty(err, "limit", "an integer from 1 to 1000");
    if (raw->v[SP_LIMIT] &&
        search_parse_integer(raw->v[SP_LIMIT], raw->len[SP_LIMIT], "limit", 1,
                             SEARCH_LIMIT_MAX, &q->limit, err) != 0)
        return -1;
    if (raw->v[SP_OFFSET] && !raw->len[SP_OFFSET])
        return search_empty(err, "offset", "an integer >= 0");
    if (raw->v[SP_OFFSET] &&
        search_parse_integer(raw->v[SP_OFFSET], raw->len[SP_OFFSET], "offset", 0,
                             1000000000L, &q->offset, err) != 0)
        return -1;
    if (raw->v[SP_FIT] && search_parse_fit(q, raw->v[SP_FIT], raw->len[SP_FIT], err) != 0)
        return -1;
    if (q->min_size_gb > q->max_size_gb)
        return mg_error_set(err, 400, "invalid_parameter", "min_size_gb",
                            "min_size_gb (%g) must not be above max_size_gb (%g)",
                            q->min_size_gb, q->max_size_gb);
    return search_parse_sort(q, raw, err);
}

int search_query_parse(search_query *q, const char *query_string, mg_error *err) {
    search_raw raw;
    memset(&raw, 0, sizeof raw);
    memset(q, 0, sizeof *q);
    q->min_rating = q->min_size_gb = q->max_size_gb = q->max_ram_gb = q->max_vram_gb = NAN;
    q->sort = SEARCH_SORT_RATING;
    q->descending = 1;
    q->limit = SEARCH_LIMIT_DEFAULT;
    q->offset = 0;
    int rc = search_split(query_string, &raw) == 0
                 ? search_parse_values(q, &raw, err)
                 : mg_error_set(err, 500, "out_of_memory", NULL, "out of memory");
    for (int i = 0; i < SP_COUNT; i++) free(raw.v[i]);
    if (rc != 0) search_query_free(q);
    return rc;
}

void search_query_free(search_query *q) {
    if (!q) return;
    free(q->terms);
    free(q->category);
    free(q->language);
    free(q->tag);
    free(q->quantization);
    free(q->license);
    free(q->family);
    q->terms = q->category = q->language = q->tag = q->quantization = q->license = NULL;
    q->family = NULL;
}

void search_query_set_machine(search_query *q, double ram_bytes, double vram_bytes) {
    q->fit_known = 1;
    q->ram_bytes = ram_bytes;
    q->vram_bytes = vram_bytes;
}

int search_facet_limit_parse(const char *query_string, long *limit, mg_error *err) {
    static const char key[] = "facet_limit";
    char *value = NULL;
    size_t vlen = 0;
    *limit = SEARCH_FACET_LIMIT_DEFAULT;
    for (const char *p = query_string ? query_string : ""; *p;) {
        size_t plen = strcspn(p, "&"), klen = strcspn(p, "=&"), kn;
        char *k = search_unescape(p, klen, &kn);
        if (!k) break;
        if (kn == sizeof key - 1 && memcmp(k, key, kn) == 0) {
            free(value);
            value = klen < plen ? search_unescape(p + klen + 1, plen - klen - 1, &vlen)
                                : strdup("");
            if (!value) vlen = 0;
        }
        free(k);
        p += plen + (p[plen] == '&');
    }
    int rc = 0;
    if (value && vlen == 0)
        rc = search_empty(err, "facet_limit", "an integer from 1 to 1000");
    else if (value)
        rc = search_parse_integer(value, vlen, "facet_limit", 1, SEARCH_FACET_LIMIT_MAX, limit,
                                  err);
    free(value);
    return rc;
}
