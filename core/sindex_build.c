/* sindex_build.c - builds the search index file (layout in sindex.h) one model at a time.
 *
 * While models come in, the haystacks go straight to the file and every other part stays in
 * compact growing structures: a set per key that is a sorted list while it is rare and turns
 * into a bitset once that is smaller (models arrive in order, so a member is appended, and a
 * key seen twice in one model is recognised by the set's last member). At the end the sets
 * are written in key order, each as a bitset or a list (whichever the final count makes
 * smaller), followed by the keys, the dict entries, the sort permutations and the header. */
#include "sindex_build.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "hash.h"
#include "sindex.h"

#define SB_OUT_BUF (1u << 20)
#define SB_LIST_MIN 4          /* first list capacity */
#define SB_BITS_MIN 64         /* a list turns into a bitset no earlier than this */

/* ---- buffered output with a running CRC ------------------------------------------- */

typedef struct sb_out {
    int fd;
    char *buf;
    size_t len;
    uint64_t pos;   /* file offset of the next byte */
    uLong crc;      /* of everything after the header */
    int err;        /* errno of the first failed write, or 0 */
} sb_out;

static void sb_out_flush(sb_out *o) {
    size_t done = 0;
    while (done < o->len && !o->err) {
        ssize_t w = write(o->fd, o->buf + done, o->len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) o->err = errno;
        else done += (size_t)w;
    }
    o->len = 0;
}

static void sb_put(sb_out *o, const void *data, size_t len) {
    const char *p = data;
    o->crc = crc32_z(o->crc, data, len);
    o->pos += len;
    while (len > 0) {
        if (o->len == SB_OUT_BUF) sb_out_flush(o);
        size_t n = SB_OUT_BUF - o->len < len ? SB_OUT_BUF - o->len : len;
        memcpy(o->buf + o->len, p, n);
        o->len += n;
        p += n;
        len -= n;
    }
}

static void sb_align(sb_out *o) {
    static const char zero[8];
    if (o->pos % 8) sb_put(o, zero, 8 - o->pos % 8);
}

/* ---- growing byte buffers --------------------------------------------------------- */

typedef struct sb_buf {
    char *p;
    size_t len, cap;
} sb_buf;

static int sb_buf_reserve(sb_buf *b, size_t more) {
    if (b->len + more <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int sb_buf_put(sb_buf *b, const void *data, size_t len) {
    if (sb_buf_reserve(b, len) != 0) return -1;
    memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

/* Makes room for one more element in `*items` (*cap of `size` bytes, `used` in use). */
static int sb_grow(void **items, size_t *cap, size_t used, size_t size) {
    if (used < *cap) return 0;
    size_t n = *cap ? *cap * 2 : 64;
    void *p = realloc(*items, n * size);
    if (!p) return -1;
    *items = p;
    *cap = n;
    return 0;
}

/* ---- growing sets of models ------------------------------------------------------- */

typedef struct sb_set {
    uint32_t count;
    uint32_t last;      /* the last member added (valid when count > 0) */
    uint32_t cap;       /* list: room in members; bitset: words */
    uint32_t bits;      /* 1: u.words is a bitset */
    union {
        uint32_t *list;
        uint64_t *words;
    } u;
} sb_set;

static int sb_set_to_bits(sb_set *s, uint32_t m) {
    uint32_t words = (m >> 6) + 1;
    words = words < 16 ? 16 : words * 2;
    uint64_t *w = calloc(words, sizeof *w);
    if (!w) return -1;
    for (uint32_t i = 0; i < s->count; i++) w[s->u.list[i] >> 6] |= (uint64_t)1 << (s->u.list[i] & 63);
    free(s->u.list);
    s->u.words = w;
    s->cap = words;
    s->bits = 1;
    return 0;
}

static int sb_set_bit(sb_set *s, uint32_t m) {
    if ((m >> 6) >= s->cap) {
        uint32_t words = s->cap * 2 > (m >> 6) + 1 ? s->cap * 2 : (m >> 6) + 1;
        uint64_t *w = realloc(s->u.words, (size_t)words * sizeof *w);
        if (!w) return -1;
        memset(w + s->cap, 0, (size_t)(words - s->cap) * sizeof *w);
        s->u.words = w;
        s->cap = words;
    }
    s->u.words[m >> 6] |= (uint64_t)1 << (m & 63);
    return 0;
}

/* Adds model `m` (never below the last one added). 0, or -1 when out of memory. */
static int sb_set_add(sb_set *s, uint32_t m) {
    if (s->count && s->last == m) return 0;
    if (!s->bits && s->count == s->cap) {
        if (s->count >= SB_BITS_MIN && sindex_dense(s->count, (uint64_t)m + 1)) {
            if (sb_set_to_bits(s, m) != 0) return -1;
        } else {
            uint32_t cap = s->cap ? s->cap * 2 : SB_LIST_MIN;
            uint32_t *l = realloc(s->u.list, (size_t)cap * sizeof *l);
            if (!l) return -1;
            s->u.list = l;
            s->cap = cap;
        }
    }
    if (s->bits) {
        if (sb_set_bit(s, m) != 0) return -1;
    } else {
        s->u.list[s->count] = m;
    }
    s->count++;
    s->last = m;
    return 0;
}

static void sb_set_free(sb_set *s) {
    if (s->bits) free(s->u.words);
    else free(s->u.list);
}

/* ---- dicts under construction: keys with their sets ------------------------------- */

typedef struct sb_key {
    uint32_t off, len, hash;
} sb_key;

typedef struct sb_dict {
    sb_buf keys;        /* key bytes */
    sb_key *ents;
    sb_set *sets;
    size_t n, cap;
    uint32_t *slots;    /* hash table: entry + 1, 0 free (not used by unigrams, bigrams) */
    size_t nslots;
    uint32_t *sorted;   /* at the end: the entries in key order */
} sb_dict;

static int sb_dict_rehash(sb_dict *d) {
    size_t nslots = d->nslots ? d->nslots * 2 : 64, mask = nslots - 1;
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < d->n; i++) {
        size_t at = d->ents[i].hash & mask;
        while (slots[at]) at = (at + 1) & mask;
        slots[at] = (uint32_t)i + 1;
    }
    free(d->slots);
    d->slots = slots;
    d->nslots = nslots;
    return 0;
}

/* Appends a new key; returns its entry, or -1 when out of memory. */
static long sb_dict_append(sb_dict *d, const char *key, size_t len, uint32_t hash) {
    size_t cap = d->cap;
    if (d->n >= UINT32_MAX - 1 || d->keys.len + len > UINT32_MAX) return -1;
    if (sb_grow((void **)&d->ents, &cap, d->n, sizeof *d->ents) != 0) return -1;
    if (cap != d->cap) {
        sb_set *sets = realloc(d->sets, cap * sizeof *sets);
        if (!sets) return -1;
        d->sets = sets;
        d->cap = cap;
    }
    if (sb_buf_put(&d->keys, key, len) != 0) return -1;
    d->ents[d->n] = (sb_key){(uint32_t)(d->keys.len - len), (uint32_t)len, hash};
    memset(&d->sets[d->n], 0, sizeof d->sets[d->n]);
    return (long)d->n++;
}

/* The entry of `key` in a hashed dict, added when new; -1 when out of memory. */
static long sb_dict_get(sb_dict *d, const char *key, size_t len) {
    uint32_t hash = hash_fnv1a(key, len);
    if ((d->n + 1) * 2 > d->nslots && sb_dict_rehash(d) != 0) return -1;
    size_t mask = d->nslots - 1, at = hash & mask;
    for (; d->slots[at]; at = (at + 1) & mask) {
        const sb_key *k = &d->ents[d->slots[at] - 1];
        if (k->hash == hash && k->len == len && memcmp(d->keys.p + k->off, key, len) == 0)
            return (long)d->slots[at] - 1;
    }
    long e = sb_dict_append(d, key, len, hash);
    if (e >= 0) d->slots[at] = (uint32_t)e + 1;
    return e;
}

static void sb_dict_free(sb_dict *d) {
    for (size_t i = 0; i < d->n; i++) sb_set_free(&d->sets[i]);
    free(d->keys.p);
    free(d->ents);
    free(d->sets);
    free(d->slots);
    free(d->sorted);
}

/* ---- the builder ------------------------------------------------------------------ */

typedef struct sb_span {
    uint32_t off, len;
} sb_span;

struct sindex_builder {
    sb_out out;
    uint32_t n;
    size_t cap;
    sindex_rec *recs;
    double *nums[SINDEX_NUMS];
    sb_span *names;         /* per model, its lower-cased name in `name_bytes` */
    sb_buf ids, name_bytes;
    sb_dict dict[SD_COUNT]; /* SD_TRI is made from the tokens at the end */
    uint32_t uni[256];      /* byte -> entry + 1 of dict[SD_UNI] */
    uint32_t *bi;           /* byte pair -> entry + 1 of dict[SD_BI] */
    sb_buf low;             /* scratch: one lower-cased string */
    uint64_t hay_len;
};

static const char *sb_value_keys[SINDEX_FIELDS] = {"categories", "languages", "tags",
                                                   "quantization", "license", "family"};

static int sb_oom(mg_error *err) {
    return mg_error_set(err, 500, "out_of_memory", NULL, "out of memory building the search index");
}

sindex_builder *sindex_builder_new(int fd, mg_error *err) {
    sindex_builder *b = calloc(1, sizeof *b);
    if (b) b->bi = calloc(65536, sizeof *b->bi);
    if (b) b->out.buf = malloc(SB_OUT_BUF);
    if (!b || !b->bi || !b->out.buf) {
        sindex_builder_free(b);
        sb_oom(err);
        return NULL;
    }
    b->out.fd = fd;
    b->out.crc = crc32(0L, Z_NULL, 0);
    sindex_header zero;
    memset(&zero, 0, sizeof zero);
    sb_put(&b->out, &zero, sizeof zero); /* the header comes last, over this */
    b->out.crc = crc32(0L, Z_NULL, 0);
    return b;
}

void sindex_builder_free(sindex_builder *b) {
    if (!b) return;
    free(b->out.buf);
    free(b->recs);
    for (int k = 0; k < SINDEX_NUMS; k++) free(b->nums[k]);
    free(b->names);
    free(b->ids.p);
    free(b->name_bytes.p);
    for (int d = 0; d < SD_COUNT; d++) sb_dict_free(&b->dict[d]);
    free(b->bi);
    free(b->low.p);
    free(b);
}

/* Copies s[0..len) lower-cased into b->low. */
static int sb_lower(sindex_builder *b, const char *s, size_t len) {
    b->low.len = 0;
    if (sb_buf_reserve(&b->low, len + 1) != 0) return -1;
    for (size_t i = 0; i < len; i++) b->low.p[i] = (char)sindex_lower((unsigned char)s[i]);
    b->low.len = len;
    return 0;
}

static int sb_add_uni(sindex_builder *b, unsigned char c, uint32_t m) {
    if (!b->uni[c]) {
        char key = (char)c;
        long e = sb_dict_append(&b->dict[SD_UNI], &key, 1, 0);
        if (e < 0) return -1;
        b->uni[c] = (uint32_t)e + 1;
    }
    return sb_set_add(&b->dict[SD_UNI].sets[b->uni[c] - 1], m);
}

static int sb_add_bi(sindex_builder *b, const char *pair, uint32_t m) {
    unsigned slot = (unsigned)(unsigned char)pair[0] << 8 | (unsigned char)pair[1];
    if (!b->bi[slot]) {
        long e = sb_dict_append(&b->dict[SD_BI], pair, 2, 0);
        if (e < 0) return -1;
        b->bi[slot] = (uint32_t)e + 1;
    }
    return sb_set_add(&b->dict[SD_BI].sets[b->bi[slot] - 1], m);
}

static int sb_add_key(sb_dict *d, const char *key, size_t len, uint32_t m) {
    long e = sb_dict_get(d, key, len);
    return e < 0 ? -1 : sb_set_add(&d->sets[e], m);
}

/* The grams and tokens of the lower-cased field in b->low. */
static int sb_add_grams(sindex_builder *b, uint32_t m) {
    const unsigned char *s = (const unsigned char *)b->low.p;
    size_t len = b->low.len;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == 0 || sindex_is_space(s[i])) continue;
        if (sb_add_uni(b, s[i], m) != 0) return -1;
        if (i + 1 < len && s[i + 1] != 0 && !sindex_is_space(s[i + 1]) &&
            sb_add_bi(b, (const char *)s + i, m) != 0)
            return -1;
    }
    for (size_t i = 0; i < len;) {
        if (!sindex_is_word(s[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < len && sindex_is_word(s[j])) j++;
        if (sb_add_key(&b->dict[SD_TOKEN], (const char *)s + i, j - i, m) != 0) return -1;
        i = j;
    }
    return 0;
}

/* One haystack field: the string `v` (anything else adds nothing). */
static int sb_add_text(sindex_builder *b, json_t *v, uint32_t m) {
    if (!json_is_string(v)) return 0;
    if (sb_lower(b, json_string_value(v), json_string_length(v)) != 0) return -1;
    sb_put(&b->out, b->low.p, b->low.len);
    sb_put(&b->out, "", 1);
    b->hay_len += b->low.len + 1;
    return sb_add_grams(b, m);
}

static int sb_add_texts(sindex_builder *b, json_t *arr, uint32_t m) {
    json_t *item;
    size_t i;
    json_array_foreach(arr, i, item) if (sb_add_text(b, item, m) != 0) return -1;
    return 0;
}

/* A value of an exact-match field: a non-empty string, or each of an array's. */
static int sb_add_values(sindex_builder *b, sb_dict *d, json_t *v, uint32_t m) {
    if (json_is_array(v)) {
        json_t *item;
        size_t i;
        json_array_foreach(v, i, item) if (sb_add_values(b, d, item, m) != 0) return -1;
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) == 0) return 0;
    if (sb_lower(b, json_string_value(v), json_string_length(v)) != 0) return -1;
    return sb_add_key(d, b->low.p, b->low.len, m);
}

static double sb_number(json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* ISO-8601 date or date-time ("2025-01-31", "2025-01-31T10:00:00Z", "+02:00" offsets,
 * fractions ignored) as seconds since the epoch; NAN when it is not one. */
static double sb_date(json_t *v) {
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

static int sb_reserve_model(sindex_builder *b) {
    if (b->n < b->cap) return 0;
    size_t cap = b->cap ? b->cap * 2 : 1024;
    sindex_rec *r = realloc(b->recs, cap * sizeof *r);
    if (!r) return -1;
    b->recs = r;
    sb_span *names = realloc(b->names, cap * sizeof *names);
    if (!names) return -1;
    b->names = names;
    for (int k = 0; k < SINDEX_NUMS; k++) {
        double *num = realloc(b->nums[k], cap * sizeof *num);
        if (!num) return -1;
        b->nums[k] = num;
    }
    b->cap = cap;
    return 0;
}

/* The numbers filters and sorts use. */
static void sb_add_numbers(sindex_builder *b, json_t *model, uint32_t m) {
    json_t *hw = json_object_get(model, "recommendedHardware");
    b->nums[SN_RATING][m] = sb_number(model, "rating");
    b->nums[SN_SIZE][m] = sb_number(model, "sizeGb");
    b->nums[SN_RAM][m] = sb_number(hw, "ramGb");
    b->nums[SN_VRAM][m] = sb_number(hw, "vramGb");
    b->nums[SN_UPDATED][m] = sb_date(json_object_get(model, "updatedAt"));
}

/* The id (original case) and the lower-cased name, kept for the sorts. */
static int sb_add_names(sindex_builder *b, json_t *model, uint32_t m) {
    json_t *id = json_object_get(model, "id"), *name = json_object_get(model, "name");
    size_t idlen = json_string_length(id), namelen = json_string_length(name);
    if (b->ids.len + idlen > UINT32_MAX || b->name_bytes.len + namelen > UINT32_MAX) return -1;
    b->recs[m].id_off = (uint32_t)b->ids.len;
    b->recs[m].id_len = (uint32_t)idlen;
    if (sb_buf_put(&b->ids, json_string_value(id) ? json_string_value(id) : "", idlen) != 0)
        return -1;
    b->names[m] = (sb_span){(uint32_t)b->name_bytes.len, (uint32_t)namelen};
    if (sb_buf_reserve(&b->name_bytes, namelen) != 0) return -1;
    const char *s = json_string_value(name);
    for (size_t i = 0; i < namelen; i++)
        b->name_bytes.p[b->name_bytes.len++] = (char)sindex_lower((unsigned char)s[i]);
    return 0;
}

static int sb_add_model(sindex_builder *b, json_t *model, uint32_t m) {
    if (sb_add_names(b, model, m) != 0) return -1;
    sb_add_numbers(b, model, m);
    static const char *texts[] = {"id", "name", "description"};
    for (int i = 0; i < 3; i++)
        if (sb_add_text(b, json_object_get(model, texts[i]), m) != 0) return -1;
    if (sb_add_texts(b, json_object_get(model, "tags"), m) != 0 ||
        sb_add_texts(b, json_object_get(model, "categories"), m) != 0)
        return -1;
    for (int f = 0; f < SINDEX_FIELDS; f++)
        if (sb_add_values(b, &b->dict[SD_VALUES + f], json_object_get(model, sb_value_keys[f]),
                          m) != 0)
            return -1;
    return 0;
}

int sindex_builder_add(sindex_builder *b, json_t *model, uint64_t text_off, size_t text_len,
                       mg_error *err) {
    if (b->n >= UINT32_MAX / 2 || text_len > UINT32_MAX)
        return mg_error_set(err, 500, "index_error", NULL, "the gallery is too large to index");
    if (sb_reserve_model(b) != 0) return sb_oom(err);
    uint32_t m = b->n;
    sindex_rec *r = &b->recs[m];
    memset(r, 0, sizeof *r);
    r->text_off = text_off;
    r->text_len = (uint32_t)text_len;
    r->hay_off = b->hay_len;
    if (sb_add_model(b, model, m) != 0) return sb_oom(err);
    if (b->hay_len - r->hay_off > UINT32_MAX)
        return mg_error_set(err, 500, "index_error", NULL, "a model's text is too large to index");
    b->recs[m].hay_len = (uint32_t)(b->hay_len - b->recs[m].hay_off);
    b->n++;
    if (b->out.err)
        return mg_error_set(err, b->out.err == ENOSPC ? 507 : 500, "io_error", NULL,
                            "cannot write the search index: %s", strerror(b->out.err));
    return 0;
}

/* ---- sorting ---------------------------------------------------------------------- */

typedef struct sb_sort {
    const sindex_builder *b;
    int sort; /* 0..3 as search_sort, or -1: by id */
} sb_sort;

static const int sb_sort_num[SINDEX_SORTS] = {SN_RATING, SN_SIZE, -1, SN_UPDATED};

static int sb_cmp_bytes(const char *a, size_t alen, const char *b, size_t blen) {
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

static int sb_cmp_id(const sindex_builder *b, uint32_t x, uint32_t y) {
    const sindex_rec *a = &b->recs[x], *c = &b->recs[y];
    return sb_cmp_bytes(b->ids.p + a->id_off, a->id_len, b->ids.p + c->id_off, c->id_len);
}

/* Compares the sort keys of two models that both have one. */
static int sb_cmp_key(const sindex_builder *b, int sort, uint32_t x, uint32_t y) {
    if (sort == 2) {
        const sb_span *a = &b->names[x], *c = &b->names[y];
        return sb_cmp_bytes(b->name_bytes.p + a->off, a->len, b->name_bytes.p + c->off, c->len);
    }
    const double *num = b->nums[sb_sort_num[sort]];
    return (num[x] > num[y]) - (num[x] < num[y]);
}

static int sb_cmp(const void *pa, const void *pb, void *arg) {
    const sb_sort *s = arg;
    uint32_t x = *(const uint32_t *)pa, y = *(const uint32_t *)pb;
    int c = s->sort >= 0 ? sb_cmp_key(s->b, s->sort, x, y) : 0;
    return c ? c : sb_cmp_id(s->b, x, y);
}

static int sb_has_key(const sindex_builder *b, int sort, uint32_t m) {
    return sort == 2 || !isnan(b->nums[sb_sort_num[sort]][m]);
}

/* Fills asc and desc with the models in `sort` ascending and descending: by key, ties by
 * id ascending, models without the key last by id in both. */
static void sb_sort_pair(const sindex_builder *b, int sort, uint32_t *asc, uint32_t *desc) {
    size_t np = 0, nm = 0, n = b->n;
    for (uint32_t m = 0; m < n; m++) {
        if (sb_has_key(b, sort, m)) asc[np++] = m;
        else desc[nm++] = m;
    }
    sb_sort keyed = {b, sort}, by_id = {b, -1};
    qsort_r(asc, np, sizeof *asc, sb_cmp, &keyed);
    qsort_r(desc, nm, sizeof *desc, sb_cmp, &by_id);
    memcpy(asc + np, desc, nm * sizeof *asc);
    /* descending: the runs of equal keys in reverse, each run still by id */
    size_t out = 0;
    for (size_t end = np; end > 0;) {
        size_t start = end - 1;
        while (start > 0 && sb_cmp_key(b, sort, asc[start - 1], asc[end - 1]) == 0) start--;
        memcpy(desc + out, asc + start, (end - start) * sizeof *desc);
        out += end - start;
        end = start;
    }
    memcpy(desc + np, asc + np, nm * sizeof *desc);
}

/* Writes SX_PERMS and SX_RANKS. */
static int sb_write_perms(sindex_builder *b, sindex_header *h) {
    size_t n = b->n ? b->n : 1;
    uint32_t *perm = malloc(SINDEX_PERMS * n * sizeof *perm), *rank = malloc(n * sizeof *rank);
    if (!perm || !rank) {
        free(perm);
        free(rank);
        return -1;
    }
    for (int s = 0; s < SINDEX_SORTS; s++)
        sb_sort_pair(b, s, perm + (size_t)(s * 2) * n, perm + (size_t)(s * 2 + 1) * n);
    uint32_t *by_id = perm + (size_t)SINDEX_BY_ID * n;
    for (uint32_t m = 0; m < b->n; m++) by_id[m] = m;
    sb_sort id_order = {b, -1};
    qsort_r(by_id, b->n, sizeof *by_id, sb_cmp, &id_order);
    sb_align(&b->out);
    h->sect[SX_PERMS].off = b->out.pos;
    for (int p = 0; p < SINDEX_PERMS; p++) sb_put(&b->out, perm + (size_t)p * n, b->n * sizeof *perm);
    h->sect[SX_PERMS].len = b->out.pos - h->sect[SX_PERMS].off;
    sb_align(&b->out);
    h->sect[SX_RANKS].off = b->out.pos;
    for (int p = 0; p < SINDEX_SORTS * 2; p++) {
        for (uint32_t i = 0; i < b->n; i++) rank[perm[(size_t)p * n + i]] = i;
        sb_put(&b->out, rank, b->n * sizeof *rank);
    }
    h->sect[SX_RANKS].len = b->out.pos - h->sect[SX_RANKS].off;
    free(perm);
    free(rank);
    return 0;
}

/* ---- writing the dicts ------------------------------------------------------------ */

static int sb_cmp_keys(const void *pa, const void *pb, void *arg) {
    const sb_dict *d = arg;
    const sb_key *a = &d->ents[*(const uint32_t *)pa], *b = &d->ents[*(const uint32_t *)pb];
    return sb_cmp_bytes(d->keys.p + a->off, a->len, d->keys.p + b->off, b->len);
}

static int sb_dict_sort(sb_dict *d) {
    d->sorted = malloc((d->n ? d->n : 1) * sizeof *d->sorted);
    if (!d->sorted) return -1;
    for (size_t i = 0; i < d->n; i++) d->sorted[i] = (uint32_t)i;
    qsort_r(d->sorted, d->n, sizeof *d->sorted, sb_cmp_keys, d);
    return 0;
}

/* The trigram dict being written: (trigram << 32 | token position) pairs, sorted. */
typedef struct sb_tri {
    uint64_t *pairs;
    size_t n, cap;
} sb_tri;

static int sb_tri_make(const sb_dict *tokens, sb_tri *t) {
    for (size_t pos = 0; pos < tokens->n; pos++) {
        const sb_key *k = &tokens->ents[tokens->sorted[pos]];
        const unsigned char *s = (const unsigned char *)tokens->keys.p + k->off;
        for (size_t i = 0; i + 3 <= k->len; i++) {
            if (sb_grow((void **)&t->pairs, &t->cap, t->n, sizeof *t->pairs) != 0) return -1;
            uint64_t tri = (uint64_t)s[i] << 16 | (uint64_t)s[i + 1] << 8 | s[i + 2];
            t->pairs[t->n++] = tri << 32 | pos;
        }
    }
    return 0;
}

static int sb_cmp_u64(const void *pa, const void *pb) {
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
    return (a > b) - (a < b);
}

/* Removes repeated pairs (a trigram twice in one token). */
static void sb_tri_unique(sb_tri *t) {
    if (t->n == 0) return;
    qsort(t->pairs, t->n, sizeof *t->pairs, sb_cmp_u64);
    size_t out = 0;
    for (size_t i = 0; i < t->n; i++)
        if (out == 0 || t->pairs[out - 1] != t->pairs[i]) t->pairs[out++] = t->pairs[i];
    t->n = out;
}

/* All entries of the file, in the order of SX_ENTRIES. */
typedef struct sb_entries {
    sindex_entry *e;
    size_t n, cap;
} sb_entries;

static sindex_entry *sb_entry_new(sb_entries *es) {
    if (sb_grow((void **)&es->e, &es->cap, es->n, sizeof *es->e) != 0) return NULL;
    sindex_entry *e = &es->e[es->n++];
    memset(e, 0, sizeof *e);
    return e;
}

/* Writes set `s` as a bitset or a list, whichever is smaller for `n` models. */
static void sb_write_set(sb_out *o, const sb_set *s, uint32_t n, uint64_t *scratch,
                         sindex_entry *e) {
    size_t words = ((size_t)n + 63) / 64;
    e->count = s->count;
    if (sindex_dense(s->count, n)) {
        e->kind = SINDEX_BITS;
        if (s->bits) {
            size_t have = s->cap < words ? s->cap : words;
            memcpy(scratch, s->u.words, have * sizeof *scratch);
            memset(scratch + have, 0, (words - have) * sizeof *scratch);
        } else {
            memset(scratch, 0, words * sizeof *scratch);
            for (uint32_t i = 0; i < s->count; i++)
                scratch[s->u.list[i] >> 6] |= (uint64_t)1 << (s->u.list[i] & 63);
        }
        sb_align(o);
        e->set_off = o->pos;
        sb_put(o, scratch, words * sizeof *scratch);
        return;
    }
    e->kind = SINDEX_LIST;
    e->set_off = o->pos;
    if (!s->bits) {
        sb_put(o, s->u.list, (size_t)s->count * sizeof *s->u.list);
        return;
    }
    for (size_t w = 0; w < s->cap && w < words; w++)
        for (uint64_t x = s->u.words[w]; x; x &= x - 1) {
            uint32_t m = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(x));
            sb_put(o, &m, sizeof m);
        }
}

/* Writes the sets of every dict into SX_SETS, making their entries (keys come later). */
static int sb_write_sets(sindex_builder *b, sindex_header *h, sb_tri *tri, sb_entries *es) {
    size_t words = ((size_t)b->n + 63) / 64;
    uint64_t *scratch = malloc((words ? words : 1) * sizeof *scratch);
    if (!scratch) return -1;
    sb_align(&b->out);
    uint64_t base = h->sect[SX_SETS].off = b->out.pos;
    for (int d = 0; d < SD_COUNT; d++) {
        h->dict[d].first = es->n;
        if (d == SD_TRI) {
            for (size_t i = 0; i < tri->n;) {
                sindex_entry *e = sb_entry_new(es);
                if (!e) break;
                uint64_t g = tri->pairs[i] >> 32;
                e->kind = SINDEX_TOKENS;
                e->key_off = (uint32_t)g; /* the trigram, until sb_write_keys */
                e->set_off = b->out.pos - base;
                for (; i < tri->n && tri->pairs[i] >> 32 == g; i++, e->count++) {
                    uint32_t pos = (uint32_t)tri->pairs[i];
                    sb_put(&b->out, &pos, sizeof pos);
                }
            }
        } else {
            const sb_dict *dd = &b->dict[d];
            for (size_t i = 0; i < dd->n; i++) {
                sindex_entry *e = sb_entry_new(es);
                if (!e) break;
                sb_write_set(&b->out, &dd->sets[dd->sorted[i]], b->n, scratch, e);
                e->set_off -= base;
            }
        }
        h->dict[d].count = es->n - h->dict[d].first;
    }
    h->sect[SX_SETS].len = b->out.pos - base;
    free(scratch);
    size_t want = 0;
    for (int d = 0; d < SD_COUNT; d++) want += d == SD_TRI ? 0 : b->dict[d].n;
    return es->n >= want ? 0 : -1;
}

/* The key of a value as a JSON string (for facet answers). Caller frees. */
static char *sb_json_key(const char *key, size_t len) {
    json_t *s = json_stringn(key, len);
    char *text = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    json_decref(s);
    return text;
}

/* Writes SX_STRS: every key (value dicts: then its JSON form), filling the entries. */
static int sb_write_keys(sindex_builder *b, sindex_header *h, sb_entries *es) {
    sb_align(&b->out);
    uint64_t base = h->sect[SX_STRS].off = b->out.pos;
    for (int d = 0; d < SD_COUNT; d++) {
        if (h->dict[d].count == 0) continue;
        sindex_entry *e = es->e + h->dict[d].first;
        for (size_t i = 0; i < h->dict[d].count; i++, e++) {
            if (b->out.pos - base > UINT32_MAX - 16) return -1;
            if (d == SD_TRI) {
                char g[3] = {(char)(e->key_off >> 16), (char)(e->key_off >> 8), (char)e->key_off};
                e->key_off = (uint32_t)(b->out.pos - base);
                e->key_len = 3;
                sb_put(&b->out, g, 3);
                continue;
            }
            const sb_dict *dd = &b->dict[d];
            const sb_key *k = &dd->ents[dd->sorted[i]];
            e->key_off = (uint32_t)(b->out.pos - base);
            e->key_len = k->len;
            sb_put(&b->out, dd->keys.p + k->off, k->len);
            if (d < SD_VALUES) continue;
            char *json = sb_json_key(dd->keys.p + k->off, k->len);
            if (!json) return -1;
            e->json_len = (uint32_t)strlen(json);
            sb_put(&b->out, json, e->json_len);
            free(json);
        }
    }
    h->sect[SX_STRS].len = b->out.pos - base;
    return 0;
}

/* Context of sb_cmp_order: the entries of one value dict. */
static int sb_cmp_order(const void *pa, const void *pb, void *arg) {
    const sindex_entry *e = arg;
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    if (e[a].count != e[b].count) return e[a].count > e[b].count ? -1 : 1;
    return (a > b) - (a < b); /* entries are in key order */
}

/* Writes SX_ORDER: each value dict's entries by count descending, then key. */
static int sb_write_order(sindex_builder *b, sindex_header *h, const sb_entries *es) {
    sb_align(&b->out);
    h->sect[SX_ORDER].off = b->out.pos;
    uint64_t at = 0;
    for (int d = SD_VALUES; d < SD_COUNT; d++) {
        size_t n = h->dict[d].count;
        uint32_t *order = malloc((n ? n : 1) * sizeof *order);
        if (!order) return -1;
        for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
        if (n) qsort_r(order, n, sizeof *order, sb_cmp_order, (void *)(es->e + h->dict[d].first));
        h->dict[d].order = at;
        sb_put(&b->out, order, n * sizeof *order);
        at += n;
        free(order);
    }
    h->sect[SX_ORDER].len = b->out.pos - h->sect[SX_ORDER].off;
    return 0;
}

/* Writes a section from memory. */
static void sb_section(sindex_builder *b, sindex_header *h, int sect, const void *data,
                       size_t len) {
    sb_align(&b->out);
    h->sect[sect].off = b->out.pos;
    sb_put(&b->out, data, len);
    h->sect[sect].len = len;
}

/* Everything after the haystacks. */
static int sb_write_body(sindex_builder *b, sindex_header *h) {
    h->sect[SX_HAY] = (sindex_span){sizeof *h, b->hay_len};
    sb_section(b, h, SX_IDS, b->ids.p, b->ids.len);
    sb_section(b, h, SX_RECS, b->recs, (size_t)b->n * sizeof *b->recs);
    sb_align(&b->out);
    h->sect[SX_NUMS].off = b->out.pos;
    for (int k = 0; k < SINDEX_NUMS; k++) sb_put(&b->out, b->nums[k], (size_t)b->n * sizeof(double));
    h->sect[SX_NUMS].len = b->out.pos - h->sect[SX_NUMS].off;
    if (sb_write_perms(b, h) != 0) return -1;
    for (int d = 0; d < SD_COUNT; d++)
        if (d != SD_TRI && sb_dict_sort(&b->dict[d]) != 0) return -1;
    sb_tri tri = {0};
    sb_entries es = {0};
    int rc = sb_tri_make(&b->dict[SD_TOKEN], &tri);
    if (rc == 0) {
        sb_tri_unique(&tri);
        rc = sb_write_sets(b, h, &tri, &es);
    }
    free(tri.pairs);
    if (rc == 0) rc = sb_write_keys(b, h, &es);
    if (rc == 0) sb_section(b, h, SX_ENTRIES, es.e, es.n * sizeof *es.e);
    if (rc == 0) rc = sb_write_order(b, h, &es);
    free(es.e);
    return rc;
}

/* Writes the header over the placeholder at the start of the file. */
static int sb_write_header(sindex_builder *b, sindex_header *h, const struct stat *cache_st) {
    memcpy(h->magic, SINDEX_MAGIC, sizeof h->magic);
    h->version = SINDEX_VERSION;
    h->header_size = sizeof *h;
    h->file_size = b->out.pos;
    h->body_crc = (uint32_t)b->out.crc;
    h->n = b->n;
    h->cache_size = (uint64_t)cache_st->st_size;
    h->cache_ino = (uint64_t)cache_st->st_ino;
    h->cache_mtime_ns = (int64_t)cache_st->st_mtim.tv_sec * 1000000000LL + cache_st->st_mtim.tv_nsec;
    h->header_crc = (uint32_t)crc32(0L, (const Bytef *)h, (uInt)offsetof(sindex_header, header_crc));
    sb_out_flush(&b->out);
    if (b->out.err) return -1;
    ssize_t w = pwrite(b->out.fd, h, sizeof *h, 0);
    if (w != (ssize_t)sizeof *h) b->out.err = w < 0 ? errno : EIO;
    return b->out.err ? -1 : 0;
}

int sindex_builder_finish(sindex_builder *b, const struct stat *cache_st, mg_error *err) {
    sindex_header h;
    memset(&h, 0, sizeof h);
    if (sb_write_body(b, &h) != 0) return sb_oom(err);
    if (sb_write_header(b, &h, cache_st) != 0)
        return mg_error_set(err, b->out.err == ENOSPC ? 507 : 500, "io_error", NULL,
                            "cannot write the search index: %s", strerror(b->out.err));
    return 0;
}
