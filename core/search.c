/* search.c - the search index over cache/gallery_cache.json and the search query.
 *
 * Loading streams the cache one line (one model) at a time and keeps per model a compact
 * record: the byte span of its JSON text, its id, a lower-cased haystack for `query`
 * (id, name, description, tags, categories, each field between \x1f separators so a term
 * never spans two fields), and the numbers filters and sorts use (NAN when absent).
 *
 * The exact-match fields (categories, languages, tags, quantization, license) are inverted:
 * each distinct lower-cased value of a field is interned once (a hash table per field) and
 * keeps the set of models holding it, as a bitset over model indexes when it is common or
 * as a sorted posting list when it is rare (whichever is smaller, so a value never costs
 * more than 4 bytes per model holding it). A query looks each filter value up once (an
 * unknown value matches nothing), ANDs the sets, tests the numeric bounds and then the
 * `query` terms only on the models left, and walks the permutation of the requested
 * (sort, order) -- each pair is sorted once at load -- with one bit test per model. Answers
 * pread the model texts from the fd the index keeps open. */
#include "search.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SEARCH_SEP '\x1f'
#define SEARCH_NONE UINT32_MAX
#define SEARCH_SORTS 4
#define SEARCH_LIMIT_DEFAULT 100
#define SEARCH_LIMIT_MAX 1000
#define SEARCH_STR2(x) #x
#define SEARCH_STR(x) SEARCH_STR2(x)
#define SEARCH_OUT_MAX (4u << 20) /* answers above this go out in several writes */
/* A value held by at least 1/SEARCH_BITS_RATIO of the models keeps a bitset (n/8 bytes),
 * a rarer one a posting list (4 bytes per model). */
#define SEARCH_BITS_RATIO 32

#define SEARCH_BIT_GET(bits, i) (((bits)[(i) >> 6] >> ((i) & 63)) & 1u)
#define SEARCH_BIT_SET(bits, i) ((bits)[(i) >> 6] |= (uint64_t)1 << ((i) & 63))
#define SEARCH_BIT_CLEAR(bits, i) ((bits)[(i) >> 6] &= ~((uint64_t)1 << ((i) & 63)))

enum { SEARCH_L_CATEGORY, SEARCH_L_LANGUAGE, SEARCH_L_TAG, SEARCH_L_QUANT, SEARCH_L_LICENSE,
       SEARCH_LISTS };
enum { SEARCH_N_RATING, SEARCH_N_SIZE, SEARCH_N_RAM, SEARCH_N_VRAM, SEARCH_N_UPDATED,
       SEARCH_NUMS };

/* A span of one of the string buffers. */
typedef struct { uint32_t off, len; } search_span;

/* A growing byte buffer; offsets into it stay below 4 GiB. */
typedef struct { char *p; size_t len, cap; } search_buf;

typedef struct search_rec {
    uint64_t text_off;          /* the model's JSON text in the cache file */
    uint32_t text_len;
    search_span id;             /* in strs, original case */
    search_span hay;            /* in hays: \x1f id \x1f name \x1f description \x1f tags.. categories.. */
    search_span name;           /* in hays: the lower-cased name */
} search_rec;

/* One distinct (lower-cased) value of an exact-match field. */
typedef struct search_val {
    search_span str;            /* in the index's vstrs */
    uint32_t count;             /* models holding it */
    uint32_t at;                /* its first word in field.bits, or first entry in field.posts */
} search_val;

/* A model holding a value, recorded while loading (in model order). */
typedef struct { uint32_t rec, val; } search_occ;

/* The inverted index of one exact-match field. */
typedef struct search_field {
    search_val *vals;
    size_t nvals, capvals;
    uint32_t *slots;            /* open-addressing hash table: value index + 1, 0 = free */
    size_t nslots;              /* a power of two, at most half full */
    uint64_t *bits;             /* the bitsets of the common values, words each */
    uint32_t *posts;            /* the posting lists of the rare values, ascending */
    search_occ *occ;            /* loading only */
    size_t nocc, capocc;
} search_field;

struct search_index {
    int fd;
    struct stat st;
    search_rec *recs;           /* in file order, so hays are in record order too */
    double *num[SEARCH_NUMS];   /* [field][record], NAN when absent: one array per field so
                                   a numeric bound reads only its own numbers */
    size_t n, cap;
    search_buf strs, hays;      /* strs: the ids; hays: the query haystacks */
    search_buf vstrs;           /* the interned values of the exact-match fields */
    search_field field[SEARCH_LISTS];
    size_t words;               /* 64-bit words of a bitset over the models */
    uint32_t *perm[SEARCH_SORTS][2]; /* [sort][descending] */
    uint32_t *by_id;
};

/* ---- building records ------------------------------------------------------------- */

static int search_buf_reserve(search_buf *b, size_t more) {
    if (b->len + more <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + more) cap *= 2;
    if (cap > UINT32_MAX) return -1;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* Appends `len` bytes, lower-cased when `lower`; NUL and the separator become \x1e. */
static void search_buf_put(search_buf *b, const char *s, size_t len, int lower) {
    char *out = b->p + b->len;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0 || c == SEARCH_SEP) c = 0x1e;
        else if (lower && c < 128) c = (unsigned char)tolower(c);
        out[i] = (char)c;
    }
    b->len += len;
}

static void search_buf_sep(search_buf *b) { b->p[b->len++] = SEARCH_SEP; }

/* Appends the string `v` (if it is one), lower-cased, followed by a separator. */
static void search_put_field(search_buf *b, json_t *v) {
    if (json_is_string(v)) search_buf_put(b, json_string_value(v), json_string_length(v), 1);
    search_buf_sep(b);
}

/* Appends each string of the array `v` followed by a separator. */
static void search_put_items(search_buf *b, json_t *v) {
    json_t *item;
    size_t i;
    json_array_foreach(v, i, item) search_put_field(b, item);
}

/* Room a model's strings need in either buffer (an upper bound). */
static size_t search_model_need(json_t *model) {
    static const char *keys[] = {"id", "name", "description", "quantization", "license", NULL};
    static const char *arrays[] = {"tags", "categories", "languages", NULL};
    size_t need = 32;
    for (int i = 0; keys[i]; i++) need += 2 * (json_string_length(json_object_get(model, keys[i])) + 1);
    for (int i = 0; arrays[i]; i++) {
        json_t *item;
        size_t j;
        json_array_foreach(json_object_get(model, arrays[i]), j, item)
            need += 2 * (json_string_length(item) + 1);
    }
    return need;
}

/* ---- the inverted index of the exact-match fields -------------------------------- */

static uint32_t search_hash(const char *s, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* The index of value s[0..len) (lower-cased) in field `f`, or SEARCH_NONE. */
static uint32_t search_val_find(const search_index *idx, const search_field *f, const char *s,
                                size_t len) {
    if (!f->nslots) return SEARCH_NONE;
    size_t mask = f->nslots - 1;
    for (size_t at = search_hash(s, len) & mask;; at = (at + 1) & mask) {
        uint32_t slot = f->slots[at];
        if (!slot) return SEARCH_NONE;
        const search_val *v = &f->vals[slot - 1];
        if (v->str.len == len && memcmp(idx->vstrs.p + v->str.off, s, len) == 0) return slot - 1;
    }
}

/* Doubles the hash table of `f` (or makes the first one). */
/* Makes room for one more element in `items` (*cap elements of `size` bytes, `used` in use),
 * doubling it from `first`. Returns the array to use from now on (owned by the caller, as
 * `items` was), or NULL when out of memory, `items` then still valid and unchanged. */
static void *search_reserve(void *items, size_t *cap, size_t used, size_t size, size_t first) {
    if (used < *cap) return items;
    size_t n = *cap ? *cap * 2 : first;
    void *p = realloc(items, n * size);
    if (p) *cap = n;
    return p;
}

static int search_slots_grow(const search_index *idx, search_field *f) {
    size_t nslots = f->nslots ? f->nslots * 2 : 16, mask = nslots - 1;
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < f->nvals; i++) {
        search_span sp = f->vals[i].str;
        size_t at = search_hash(idx->vstrs.p + sp.off, sp.len) & mask;
        while (slots[at]) at = (at + 1) & mask;
        slots[at] = (uint32_t)i + 1;
    }
    free(f->slots);
    f->slots = slots;
    f->nslots = nslots;
    return 0;
}

/* Records that model `rec` holds the string `v` (lower-cased) in field `f`, interning the
 * value when it is new. Strings that are empty or not strings are no value. 0, or -1. */
static int search_val_add(search_index *idx, search_field *f, uint32_t rec, json_t *v) {
    if (!json_is_string(v) || json_string_length(v) == 0) return 0;
    size_t len = json_string_length(v);
    const char *s = json_string_value(v);
    search_buf *b = &idx->vstrs;
    if (search_buf_reserve(b, len) != 0) return -1;
    char *low = b->p + b->len; /* lower-cased at the end of vstrs, kept only when new */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        low[i] = (char)(c < 128 ? tolower(c) : c);
    }
    uint32_t val = search_val_find(idx, f, low, len);
    if (val == SEARCH_NONE) {
        if (f->nvals == UINT32_MAX - 1) return -1;
        if ((f->nvals + 1) * 2 > f->nslots && search_slots_grow(idx, f) != 0) return -1;
        search_val *vals = search_reserve(f->vals, &f->capvals, f->nvals, sizeof *vals, 16);
        if (!vals) return -1;
        f->vals = vals;
        val = (uint32_t)f->nvals++;
        f->vals[val] = (search_val){{(uint32_t)b->len, (uint32_t)len}, 0, 0};
        b->len += len;
        size_t mask = f->nslots - 1, at = search_hash(low, len) & mask;
        while (f->slots[at]) at = (at + 1) & mask;
        f->slots[at] = val + 1;
    }
    /* a value twice in one model ("tags": ["a", "A"]) counts once */
    for (size_t i = f->nocc; i > 0 && f->occ[i - 1].rec == rec; i--)
        if (f->occ[i - 1].val == val) return 0;
    search_occ *occ = search_reserve(f->occ, &f->capocc, f->nocc, sizeof *occ, 1024);
    if (!occ) return -1;
    f->occ = occ;
    f->occ[f->nocc++] = (search_occ){rec, val};
    f->vals[val].count++;
    return 0;
}

/* A string field, or each string of an array field. */
static int search_vals_add(search_index *idx, int list, uint32_t rec, json_t *v) {
    search_field *f = &idx->field[list];
    if (!json_is_array(v)) return search_val_add(idx, f, rec, v);
    json_t *item;
    size_t i;
    json_array_foreach(v, i, item) if (search_val_add(idx, f, rec, item) != 0) return -1;
    return 0;
}

static int search_val_is_bits(const search_index *idx, const search_val *v) {
    return (uint64_t)v->count * SEARCH_BITS_RATIO >= idx->n;
}

/* Once every model is in: gives each value its bitset or posting list. 0, or -1. */
static int search_fields_build(search_index *idx) {
    idx->words = (idx->n + 63) / 64;
    for (int l = 0; l < SEARCH_LISTS; l++) {
        search_field *f = &idx->field[l];
        size_t nbits = 0, nposts = 0;
        for (size_t i = 0; i < f->nvals; i++) {
            search_val *v = &f->vals[i];
            if (search_val_is_bits(idx, v)) {
                v->at = (uint32_t)(nbits * idx->words);
                nbits++;
            } else {
                nposts += v->count;
                v->at = (uint32_t)nposts; /* the end: filled backwards below */
            }
        }
        if (nbits * idx->words > UINT32_MAX) return -1;
        f->bits = calloc(nbits * idx->words + 1, sizeof *f->bits);
        f->posts = malloc((nposts + 1) * sizeof *f->posts);
        if (!f->bits || !f->posts) return -1;
        for (size_t i = f->nocc; i > 0; i--) {
            search_occ o = f->occ[i - 1];
            search_val *v = &f->vals[o.val];
            if (search_val_is_bits(idx, v)) SEARCH_BIT_SET(f->bits + v->at, o.rec);
            else f->posts[--v->at] = o.rec;
        }
        free(f->occ);
        f->occ = NULL;
        f->nocc = f->capocc = 0;
        if (f->nvals) {
            search_val *vals = realloc(f->vals, f->nvals * sizeof *vals);
            if (vals) f->vals = vals, f->capvals = f->nvals;
        }
    }
    return 0;
}

static void search_fields_free(search_index *idx) {
    for (int l = 0; l < SEARCH_LISTS; l++) {
        search_field *f = &idx->field[l];
        free(f->vals);
        free(f->slots);
        free(f->bits);
        free(f->posts);
        free(f->occ);
    }
}

static double search_number(json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* ISO-8601 date or date-time ("2025-01-31", "2025-01-31T10:00:00Z", "+02:00" offsets,
 * fractions ignored) as seconds since the epoch; NAN when it is not one. */
static double search_parse_date(json_t *v) {
    if (!json_is_string(v)) return NAN;
    const char *s = json_string_value(v);
    struct tm tm = {0};
    int n = 0, hh = 0, mm = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3 || n != 10)
        return NAN;
    const char *p = s + n;
    long offset = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        int k = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &k) != 2 || k != 5) return NAN;
        p += 1 + k;
        if (*p == ':') {
            if (sscanf(p + 1, "%2d%n", &tm.tm_sec, &k) != 1 || k != 2) return NAN;
            p += 1 + k;
        }
        if (*p == '.') for (p++; isdigit((unsigned char)*p); p++) {}
        if (*p == 'Z' || *p == 'z') p++;
        else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1, k2 = 0;
            if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &k2) != 2 || k2 != 5) return NAN;
            offset = sign * (hh * 3600L + mm * 60L);
            p += 1 + k2;
        }
    }
    if (*p || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31)
        return NAN;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (double)(timegm(&tm) - offset);
}

/* The haystack `query` terms are looked for in. */
static void search_put_hay(search_buf *h, search_rec *r, json_t *model) {
    r->hay.off = (uint32_t)h->len;
    search_buf_sep(h);
    search_put_field(h, json_object_get(model, "id"));
    r->name.off = (uint32_t)h->len;
    search_put_field(h, json_object_get(model, "name"));
    r->name.len = (uint32_t)(h->len - r->name.off - 1);
    search_put_field(h, json_object_get(model, "description"));
    search_put_items(h, json_object_get(model, "tags"));
    search_put_items(h, json_object_get(model, "categories"));
    r->hay.len = (uint32_t)(h->len - r->hay.off);
}

static int search_add_model(search_index *idx, json_t *model, uint64_t off, size_t len) {
    json_t *id = json_object_get(model, "id");
    if (!json_is_string(id) || len > UINT32_MAX) return -1;
    if (idx->n == idx->cap) {
        size_t cap = idx->cap ? idx->cap * 2 : 1024;
        search_rec *r = realloc(idx->recs, cap * sizeof *r);
        if (!r) return -1;
        idx->recs = r;
        for (int k = 0; k < SEARCH_NUMS; k++) {
            double *num = realloc(idx->num[k], cap * sizeof *num);
            if (!num) return -1;
            idx->num[k] = num;
        }
        idx->cap = cap;
    }
    size_t need = search_model_need(model);
    if (search_buf_reserve(&idx->strs, need) != 0 || search_buf_reserve(&idx->hays, need) != 0)
        return -1;
    search_rec *r = &idx->recs[idx->n++];
    search_buf *b = &idx->strs;
    r->text_off = off;
    r->text_len = (uint32_t)len;
    r->id.off = (uint32_t)b->len;
    r->id.len = (uint32_t)json_string_length(id);
    search_buf_put(b, json_string_value(id), r->id.len, 0);
    search_put_hay(&idx->hays, r, model);
    static const char *lists[SEARCH_LISTS] = {"categories", "languages", "tags",
                                              "quantization", "license"};
    for (int l = 0; l < SEARCH_LISTS; l++)
        if (search_vals_add(idx, l, (uint32_t)(idx->n - 1), json_object_get(model, lists[l])) != 0)
            return -1;
    json_t *hw = json_object_get(model, "recommendedHardware");
    size_t i = idx->n - 1;
    idx->num[SEARCH_N_RATING][i] = search_number(model, "rating");
    idx->num[SEARCH_N_SIZE][i] = search_number(model, "sizeGb");
    idx->num[SEARCH_N_RAM][i] = search_number(hw, "ramGb");
    idx->num[SEARCH_N_VRAM][i] = search_number(hw, "vramGb");
    idx->num[SEARCH_N_UPDATED][i] = search_parse_date(json_object_get(model, "updatedAt"));
    return 0;
}

/* ---- sorting ---------------------------------------------------------------------- */

typedef struct { const search_index *idx; int sort, desc; } search_sort_ctx;

static int search_cmp_span(const char *base, search_span a, search_span b) {
    size_t n = a.len < b.len ? a.len : b.len;
    int c = memcmp(base + a.off, base + b.off, n);
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

static const int search_sort_num[SEARCH_SORTS] = {SEARCH_N_RATING, SEARCH_N_SIZE, -1,
                                                  SEARCH_N_UPDATED};

static int search_cmp(const void *pa, const void *pb, void *arg) {
    const search_sort_ctx *c = arg;
    uint32_t ia = *(const uint32_t *)pa, ib = *(const uint32_t *)pb;
    const search_rec *a = &c->idx->recs[ia], *b = &c->idx->recs[ib];
    int r = 0;
    if (c->sort == SEARCH_SORT_NAME) {
        r = search_cmp_span(c->idx->hays.p, a->name, b->name);
    } else if (c->sort >= 0) {
        const double *num = c->idx->num[search_sort_num[c->sort]];
        double x = num[ia], y = num[ib];
        if (isnan(x) || isnan(y)) {
            if (!isnan(x) || !isnan(y)) return isnan(x) ? 1 : -1; /* missing last */
        } else {
            r = (x > y) - (x < y);
        }
    }
    if (r && c->desc) r = -r;
    return r ? r : search_cmp_span(c->idx->strs.p, a->id, b->id);
}

static uint32_t *search_sorted(const search_index *idx, int sort, int desc) {
    uint32_t *p = malloc((idx->n ? idx->n : 1) * sizeof *p);
    if (!p) return NULL;
    for (size_t i = 0; i < idx->n; i++) p[i] = (uint32_t)i;
    search_sort_ctx c = {idx, sort, desc};
    qsort_r(p, idx->n, sizeof *p, search_cmp, &c);
    return p;
}

static int search_sort_all(search_index *idx) {
    for (int s = 0; s < SEARCH_SORTS; s++)
        for (int d = 0; d < 2; d++)
            if (!(idx->perm[s][d] = search_sorted(idx, s, d))) return -1;
    idx->by_id = search_sorted(idx, -1, 0);
    return idx->by_id ? 0 : -1;
}

/* ---- loading ---------------------------------------------------------------------- */

void search_index_free(search_index *idx) {
    if (!idx) return;
    if (idx->fd >= 0) close(idx->fd);
    for (int s = 0; s < SEARCH_SORTS; s++)
        for (int d = 0; d < 2; d++) free(idx->perm[s][d]);
    free(idx->by_id);
    free(idx->recs);
    for (int k = 0; k < SEARCH_NUMS; k++) free(idx->num[k]);
    free(idx->strs.p);
    free(idx->hays.p);
    free(idx->vstrs.p);
    search_fields_free(idx);
    free(idx);
}

/* The first line must be {"version":...,"generatedAt":...,"models":[ */
static int search_header_ok(const char *line, size_t len) {
    static const char tail[] = "\"models\":[";
    size_t t = sizeof tail - 1;
    if (len < t + 1 || line[0] != '{' || memcmp(line + len - t, tail, t) != 0) return 0;
    char *doc = malloc(len + 3);
    if (!doc) return 0;
    memcpy(doc, line, len);
    memcpy(doc + len, "]}", 3);
    json_t *j = json_loadb(doc, len + 2, JSON_ALLOW_NUL, NULL);
    int ok = json_is_array(json_object_get(j, "models"));
    json_decref(j);
    free(doc);
    return ok;
}

/* Reads the model lines after the header; 0 when the file ends with "]}". */
static int search_load_lines(search_index *idx, FILE *f, uint64_t off, char **line,
                             size_t *cap) {
    ssize_t got;
    while ((got = getline(line, cap, f)) > 0) {
        size_t len = (size_t)got, full = len;
        const char *s = *line;
        if (s[len - 1] == '\n') len--;
        if (len == 2 && memcmp(s, "]}", 2) == 0) return getc(f) == EOF ? 0 : -1;
        if (len && s[len - 1] == ',') len--;
        json_t *model = json_loadb(s, len, JSON_ALLOW_NUL, NULL);
        int rc = json_is_object(model) ? search_add_model(idx, model, off, len) : -1;
        json_decref(model);
        if (rc != 0) return -1;
        off += full;
    }
    return -1;
}

static int search_load_file(search_index *idx) {
    int fd2 = dup(idx->fd);
    FILE *f = fd2 >= 0 ? fdopen(fd2, "r") : NULL;
    if (!f) {
        if (fd2 >= 0) close(fd2);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got = getline(&line, &cap, f);
    int rc = -1;
    if (got > 1 && line[got - 1] == '\n' && search_header_ok(line, (size_t)got - 1))
        rc = search_load_lines(idx, f, (uint64_t)got, &line, &cap);
    free(line);
    fclose(f);
    return rc;
}

/* Gives back the slack of the growing arrays. */
static void search_shrink(search_index *idx) {
    search_buf *bufs[] = {&idx->strs, &idx->hays, &idx->vstrs};
    for (int i = 0; i < 3; i++) {
        char *p = realloc(bufs[i]->p, bufs[i]->len ? bufs[i]->len : 1);
        if (p) bufs[i]->p = p, bufs[i]->cap = bufs[i]->len;
    }
    search_rec *r = realloc(idx->recs, (idx->n ? idx->n : 1) * sizeof *r);
    if (r) idx->recs = r;
    for (int k = 0; k < SEARCH_NUMS; k++) {
        double *num = realloc(idx->num[k], (idx->n ? idx->n : 1) * sizeof *num);
        if (num) idx->num[k] = num;
    }
}

search_index *search_index_load(const char *cache_path, mg_error *err) {
    search_index *idx = calloc(1, sizeof *idx);
    if (!idx) {
        mg_error_set(err, 500, "out_of_memory", NULL, "out of memory");
        return NULL;
    }
    idx->fd = open(cache_path, O_RDONLY | O_CLOEXEC);
    if (idx->fd < 0 || fstat(idx->fd, &idx->st) != 0) {
        mg_error_set(err, errno == ENOENT ? 404 : 500, "gallery_unavailable", NULL,
                     "cannot open %s: %s", cache_path, strerror(errno));
        search_index_free(idx);
        return NULL;
    }
    if (search_load_file(idx) != 0) {
        mg_error_set(err, 500, "gallery_unavailable", NULL, "%s: not in gallery cache format",
                     cache_path);
        search_index_free(idx);
        return NULL;
    }
    search_shrink(idx);
    if (search_fields_build(idx) != 0 || search_sort_all(idx) != 0) {
        mg_error_set(err, 500, "out_of_memory", NULL, "out of memory indexing %s", cache_path);
        search_index_free(idx);
        return NULL;
    }
    return idx;
}

size_t search_index_count(const search_index *idx) { return idx ? idx->n : 0; }

int search_index_is_current(const search_index *idx, const struct stat *st) {
    return idx && st && idx->st.st_dev == st->st_dev && idx->st.st_ino == st->st_ino &&
           idx->st.st_size == st->st_size &&
           idx->st.st_mtim.tv_sec == st->st_mtim.tv_sec &&
           idx->st.st_mtim.tv_nsec == st->st_mtim.tv_nsec;
}

/* Copies the model text of record `r` to `out` (room for r->text_len). 0, or -1. */
static int search_read_text(const search_index *idx, const search_rec *r, char *out) {
    size_t done = 0;
    while (done < r->text_len) {
        ssize_t got = pread(idx->fd, out + done, r->text_len - done,
                            (off_t)(r->text_off + done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return -1;
        done += (size_t)got;
    }
    return 0;
}

json_t *search_index_get(const search_index *idx, const char *id) {
    if (!idx || !id) return NULL;
    size_t lo = 0, hi = idx->n, n = strlen(id);
    search_span key = {0, (uint32_t)n};
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const search_rec *r = &idx->recs[idx->by_id[mid]];
        size_t m = r->id.len < key.len ? r->id.len : key.len;
        int c = memcmp(idx->strs.p + r->id.off, id, m);
        if (!c) c = (r->id.len > key.len) - (r->id.len < key.len);
        if (c == 0) {
            char *text = malloc(r->text_len ? r->text_len : 1);
            json_t *model = NULL;
            if (text && search_read_text(idx, r, text) == 0)
                model = json_loadb(text, r->text_len, JSON_ALLOW_NUL, NULL);
            free(text);
            return model;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

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
                                      "offset", NULL};
enum { SP_QUERY, SP_CATEGORY, SP_LANGUAGE, SP_TAG, SP_QUANT, SP_LICENSE, SP_MIN_RATING,
       SP_MIN_SIZE, SP_MAX_SIZE, SP_MAX_RAM, SP_MAX_VRAM, SP_SORT, SP_ORDER, SP_LIMIT,
       SP_OFFSET, SP_COUNT };

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
    q->terms = q->category = q->language = q->tag = q->quantization = q->license = NULL;
}

/* ---- running a query -------------------------------------------------------------- */

typedef struct { const char *s; size_t len; } search_needle;

/* What a search compares, prepared once per query. */
typedef struct search_plan {
    search_needle *terms;
    size_t nterms;
    const search_val *exact[SEARCH_LISTS]; /* the values filtered on, smallest first */
    int exact_list[SEARCH_LISTS];          /* ... and their fields */
    int nexact;
    int numbers;               /* a numeric bound is set */
    int never;                 /* a value that cannot match anything */
    int filtered;
} search_plan;

/* Looks the filter value `v` of field `list` up; an unknown value matches nothing. */
static void search_plan_exact(search_plan *p, const search_index *idx, int list,
                              const char *v) {
    if (!v) return;
    p->filtered = 1;
    uint32_t val = search_val_find(idx, &idx->field[list], v, strlen(v));
    if (val == SEARCH_NONE) {
        p->never = 1;
        return;
    }
    const search_val *sv = &idx->field[list].vals[val];
    int i = p->nexact++;
    for (; i > 0 && p->exact[i - 1]->count > sv->count; i--) {
        p->exact[i] = p->exact[i - 1];
        p->exact_list[i] = p->exact_list[i - 1];
    }
    p->exact[i] = sv;
    p->exact_list[i] = list;
}

static int search_plan_terms(search_plan *p, const char *text) {
    if (!text) return 0;
    size_t cap = strlen(text) / 2 + 1;
    if (!(p->terms = malloc(cap * sizeof *p->terms))) return -1;
    for (const char *s = text; *s;) {
        while (*s && isspace((unsigned char)*s)) s++;
        size_t n = 0;
        while (s[n] && !isspace((unsigned char)s[n])) n++;
        if (n) {
            if (memchr(s, SEARCH_SEP, n)) p->never = 1;
            p->terms[p->nterms++] = (search_needle){s, n};
            p->filtered = 1;
        }
        s += n;
    }
    return 0;
}

static void search_plan_free(search_plan *p) { free(p->terms); }

static int search_plan_init(search_plan *p, const search_index *idx, const search_query *q) {
    memset(p, 0, sizeof *p);
    const char *lists[SEARCH_LISTS] = {q->category, q->language, q->tag, q->quantization,
                                       q->license};
    for (int i = 0; i < SEARCH_LISTS; i++) search_plan_exact(p, idx, i, lists[i]);
    if (search_plan_terms(p, q->terms) != 0) return -1;
    if (!isnan(q->min_rating) || !isnan(q->min_size_gb) || !isnan(q->max_size_gb) ||
        !isnan(q->max_ram_gb) || !isnan(q->max_vram_gb))
        p->filtered = p->numbers = 1;
    return 0;
}

/* Sets `bits` to the models holding `v` of field `list` (first filter) or ANDs them in. */
static void search_exact_bits(const search_index *idx, int list, const search_val *v,
                              uint64_t *bits, int first) {
    const search_field *f = &idx->field[list];
    size_t words = idx->words;
    if (search_val_is_bits(idx, v)) {
        const uint64_t *vb = f->bits + v->at;
        if (first) memcpy(bits, vb, words * sizeof *bits);
        else for (size_t w = 0; w < words; w++) bits[w] &= vb[w];
        return;
    }
    /* a posting list: keep the listed models that are still candidates */
    const uint32_t *post = f->posts + v->at;
    if (first) {
        memset(bits, 0, words * sizeof *bits);
        for (uint32_t i = 0; i < v->count; i++) SEARCH_BIT_SET(bits, post[i]);
        return;
    }
    size_t w = 0;
    for (uint32_t i = 0; i < v->count; i++) {
        size_t pw = post[i] >> 6;
        uint64_t keep = 0;
        for (; i < v->count && (post[i] >> 6) == pw; i++) keep |= (uint64_t)1 << (post[i] & 63);
        i--;
        while (w < pw) bits[w++] = 0;
        bits[w++] &= keep;
    }
    while (w < words) bits[w++] = 0;
}

/* The record whose haystack holds byte `off` of hays (records are in hays order). */
static size_t search_rec_at(const search_index *idx, size_t off) {
    size_t lo = 0, hi = idx->n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (idx->recs[mid].hay.off <= off) lo = mid;
        else hi = mid;
    }
    return lo;
}

/* Marks in `bits` (zeroed) the records whose haystack holds `t`: one pass over all
 * haystacks, which lie back to back; a hit never spans two since `t` has no separator. */
static void search_term_bits(const search_index *idx, search_needle t, uint64_t *bits) {
    const char *hay = idx->hays.p, *end = hay + idx->hays.len, *at = hay;
    while (at < end) {
        const char *hit = memmem(at, (size_t)(end - at), t.s, t.len);
        if (!hit) break;
        size_t r = search_rec_at(idx, (size_t)(hit - hay));
        SEARCH_BIT_SET(bits, r);
        at = hay + idx->recs[r].hay.off + idx->recs[r].hay.len;
    }
}

/* Clears in `bits` the candidates whose haystack lacks `t`; returns how many are left. */
static size_t search_term_narrow(const search_index *idx, search_needle t, uint64_t *bits) {
    size_t left = 0;
    for (size_t w = 0; w < idx->words; w++) {
        for (uint64_t x = bits[w]; x; x &= x - 1) {
            size_t i = w * 64 + (size_t)__builtin_ctzll(x);
            const search_rec *r = &idx->recs[i];
            if (memmem(idx->hays.p + r->hay.off, r->hay.len, t.s, t.len)) left++;
            else SEARCH_BIT_CLEAR(bits, i);
        }
    }
    return left;
}

/* Clears in `bits` the candidates whose number `num` is not >= (min) or <= (max) `bound`
 * (a missing number, NAN, is neither); returns how many are left. */
static size_t search_bound_narrow(const search_index *idx, const double *num, double bound,
                                  int min, uint64_t *bits) {
    size_t left = 0;
    for (size_t w = 0; w < idx->words; w++) {
        uint64_t keep = bits[w];
        for (uint64_t x = keep; x; x &= x - 1) {
            int b = __builtin_ctzll(x);
            double v = num[w * 64 + (size_t)b];
            if (!(min ? v >= bound : v <= bound)) keep &= ~((uint64_t)1 << b);
        }
        bits[w] = keep;
        left += (size_t)__builtin_popcountll(keep);
    }
    return left;
}

/* Applies the numeric bounds of `q` to `bits`; returns how many candidates are left. */
static size_t search_numbers_narrow(const search_index *idx, const search_query *q,
                                    uint64_t *bits) {
    const struct { double bound; int num, min; } bounds[] = {
        {q->min_rating, SEARCH_N_RATING, 1}, {q->min_size_gb, SEARCH_N_SIZE, 1},
        {q->max_size_gb, SEARCH_N_SIZE, 0},  {q->max_ram_gb, SEARCH_N_RAM, 0},
        {q->max_vram_gb, SEARCH_N_VRAM, 0},
    };
    size_t left = (size_t)-1;
    for (size_t k = 0; k < sizeof bounds / sizeof bounds[0] && left != 0; k++)
        if (!isnan(bounds[k].bound))
            left = search_bound_narrow(idx, idx->num[bounds[k].num], bounds[k].bound,
                                       bounds[k].min, bits);
    return left;
}

static size_t search_popcount(const uint64_t *bits, size_t words) {
    size_t n = 0;
    for (size_t w = 0; w < words; w++) n += (size_t)__builtin_popcountll(bits[w]);
    return n;
}

/* Fills `bits` with the records matching the plan, in file order; returns their count.
 * Cheapest first: the exact filters (set operations), the numeric bounds, then each term
 * -- by one scan of all haystacks while many candidates are left, else candidate by
 * candidate. */
static size_t search_filter(const search_index *idx, const search_query *q,
                            const search_plan *p, uint64_t *bits, uint64_t *tmp) {
    size_t words = idx->words, total;
    for (int i = 0; i < p->nexact; i++)
        search_exact_bits(idx, p->exact_list[i], p->exact[i], bits, i == 0);
    if (p->nexact == 0) {
        memset(bits, 0xff, words * sizeof *bits);
        if (idx->n % 64) bits[words - 1] = ((uint64_t)1 << (idx->n % 64)) - 1;
    }
    if (p->numbers) total = search_numbers_narrow(idx, q, bits);
    else total = p->nexact ? search_popcount(bits, words) : idx->n;
    for (size_t t = 0; t < p->nterms && total > 0; t++) {
        if (total < idx->n / 8) {
            total = search_term_narrow(idx, p->terms[t], bits);
            continue;
        }
        memset(tmp, 0, words * sizeof *tmp);
        search_term_bits(idx, p->terms[t], tmp);
        for (size_t w = 0; w < words; w++) bits[w] &= tmp[w];
        total = search_popcount(bits, words);
    }
    return total;
}

/* The answer being assembled, written out in large pieces. */
typedef struct search_out {
    char *buf;
    size_t len, cap;
    search_write_fn write;
    void *ctx;
    int failed;
} search_out;

static int search_out_flush(search_out *o) {
    if (o->len && !o->failed && o->write(o->ctx, o->buf, o->len) != 0) o->failed = 1;
    o->len = 0;
    return o->failed ? -1 : 0;
}

/* Makes room for `n` more bytes; returns where they go, or NULL. */
static char *search_out_room(search_out *o, size_t n) {
    if (o->len + n > o->cap) {
        if (o->len && search_out_flush(o) != 0) return NULL;
        if (n > o->cap) {
            char *b = realloc(o->buf, n);
            if (!b) return NULL;
            o->buf = b;
            o->cap = n;
        }
    }
    return o->buf + o->len;
}

static int search_out_put(search_out *o, const char *s, size_t n) {
    char *at = search_out_room(o, n);
    if (!at) return -1;
    memcpy(at, s, n);
    o->len += n;
    return 0;
}

static int search_out_model(search_out *o, const search_index *idx, const search_rec *r,
                            int first) {
    if (!first && search_out_put(o, ",", 1) != 0) return -1;
    char *at = search_out_room(o, r->text_len);
    if (!at || search_read_text(idx, r, at) != 0) return -1;
    o->len += r->text_len;
    return 0;
}

/* Collects into `hits` the records on the requested page; returns the total, or
 * (size_t)-1 when out of memory. */
static size_t search_collect(const search_index *idx, const search_query *q,
                             const search_plan *p, const uint32_t *perm, uint32_t *hits,
                             size_t *nhits) {
    size_t off = (size_t)q->offset, lim = (size_t)q->limit, seen = 0;
    *nhits = 0;
    if (!p->filtered) {
        for (size_t i = off; i < idx->n && *nhits < lim; i++) hits[(*nhits)++] = perm[i];
        return idx->n;
    }
    if (p->never || idx->n == 0) return 0;
    size_t words = idx->words;
    uint64_t *bits = malloc(2 * words * sizeof *bits);
    if (!bits) return (size_t)-1;
    size_t total = search_filter(idx, q, p, bits, bits + words);
    for (size_t i = 0; i < idx->n && *nhits < lim && seen < total; i++) {
        if (!SEARCH_BIT_GET(bits, perm[i])) continue;
        if (seen++ >= off) hits[(*nhits)++] = perm[i];
    }
    free(bits);
    return total;
}

/* Writes the answer for the page `hits` through `o`. 0, or -1 (o->failed: the writer). */
static int search_write_answer(const search_index *idx, const search_query *q,
                               const uint32_t *hits, size_t nhits, size_t total,
                               search_out *o) {
    char head[128];
    int hn = snprintf(head, sizeof head, "{\"total\":%zu,\"offset\":%ld,\"limit\":%ld,\"models\":[",
                      total, q->offset, q->limit);
    int rc = search_out_put(o, head, (size_t)hn);
    for (size_t i = 0; rc == 0 && i < nhits; i++)
        rc = search_out_model(o, idx, &idx->recs[hits[i]], i == 0);
    if (rc == 0) rc = search_out_put(o, "]}", 2);
    if (rc == 0) rc = search_out_flush(o);
    return rc;
}

/* A buffer for the whole answer when it is not huge, so that it goes out in one write. */
static size_t search_answer_size(const search_index *idx, const uint32_t *hits, size_t nhits) {
    size_t need = 160;
    for (size_t i = 0; i < nhits; i++) need += idx->recs[hits[i]].text_len + 1;
    return need < SEARCH_OUT_MAX ? need : SEARCH_OUT_MAX;
}

int search_run(const search_index *idx, const search_query *q, search_write_fn write,
               void *ctx, mg_error *err) {
    search_plan plan;
    size_t lim = q->limit > 0 ? (size_t)q->limit : SEARCH_LIMIT_DEFAULT, nhits = 0;
    size_t total = (size_t)-1;
    int s = (int)q->sort >= 0 && (int)q->sort < SEARCH_SORTS ? (int)q->sort : SEARCH_SORT_RATING;
    uint32_t *hits = malloc(lim * sizeof *hits);
    search_out o = {.write = write, .ctx = ctx};
    if (search_plan_init(&plan, idx, q) == 0 && hits)
        total = search_collect(idx, q, &plan, idx->perm[s][q->descending ? 1 : 0], hits, &nhits);
    int rc = -1;
    if (total != (size_t)-1) {
        o.cap = search_answer_size(idx, hits, nhits);
        o.buf = malloc(o.cap);
        if (o.buf) rc = search_write_answer(idx, q, hits, nhits, total, &o);
    }
    int no_memory = !o.buf;
    search_plan_free(&plan);
    free(hits);
    free(o.buf);
    if (rc == 0) return 0;
    if (o.failed)
        return mg_error_set(err, 500, "write_failed", NULL, "the answer could not be written");
    if (no_memory) return mg_error_set(err, 500, "out_of_memory", NULL, "out of memory");
    return mg_error_set(err, 500, "io_error", NULL, "cannot read the gallery cache");
}
