/* search_run.c - answers searches and facet counts from a mapped search index.
 *
 * A query becomes a bitset over the models, narrowed step by step, cheapest first: the exact
 * filters (the value's set, looked up once; an unknown value matches nothing), the numeric
 * bounds, then each `query` term:
 *
 *   1 or 2 bytes          the set of its unigram or bigram: exact
 *   3+ word bytes         every token holding it, found through the tokens' trigrams and
 *                         checked on the token itself; the union of their sets is exact,
 *                         since a run of word bytes only ever occurs inside one token
 *   anything else         the sets of its bigrams and of the whole tokens inside it narrow
 *                         the candidates, which are then checked on their haystack
 *
 * Grams never cross a field, and the haystack separates fields with NUL bytes that terms
 * never hold, so a term never matches across two fields. The `fit` filter comes last, on
 * the words with models left: each model's memory need (derived from its indexed ramGb,
 * vramGb and sizeGb when the index was opened) is compared with the machine of the query, a
 * word of 64 models at a time (the class depends on the machine, so it is not in the index). The
 * page is then read from the permutation of the requested sort (walking it with a bit test
 * per model), or, when the matches are few, by sorting their ranks. Answers copy the model
 * texts from the mapped cache file, each with its fit added before the closing brace. */
#include "search_int.h"

#include <math.h>
#include <stdarg.h>
#ifdef __x86_64__
#include <immintrin.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine.h"

#define SEARCH_LIMIT_DEFAULT 100
#define SEARCH_OUT_MAX (4u << 20) /* answers above this go out in several writes */
#define SEARCH_TERM_MAX 1024      /* longer terms are checked on the haystack alone */

const char *const search_facet_names[SEARCH_FACETS] = {"category", "language", "tag",
                                                       "quantization", "license", "family",
                                                       "fit"};

/* ---- bitsets ---------------------------------------------------------------------- */

static void search_bits_all(const search_index *idx, uint64_t *bits) {
    if (!idx->words) return;
    memset(bits, 0xff, idx->words * sizeof *bits);
    if (idx->n % 64) bits[idx->words - 1] = ((uint64_t)1 << (idx->n % 64)) - 1;
}

static void search_bits_zero(const search_index *idx, uint64_t *bits) {
    memset(bits, 0, idx->words * sizeof *bits);
}

SEARCH_POPCNT static size_t search_bits_count(const search_index *idx, const uint64_t *bits) {
    size_t n = 0;
    for (size_t w = 0; w < idx->words; w++) n += (size_t)__builtin_popcountll(bits[w]);
    return n;
}

static int search_bits_any(const search_index *idx, const uint64_t *bits) {
    for (size_t w = 0; w < idx->words; w++)
        if (bits[w]) return 1;
    return 0;
}

/* bits &= the set of `e`. */
static void search_and_entry(const search_index *idx, const sindex_entry *e, uint64_t *bits) {
    if (e->kind == SINDEX_BITS) {
        const uint64_t *s = search_entry_bits(idx, e);
        for (size_t w = 0; w < idx->words; w++) bits[w] &= s[w];
        return;
    }
    const uint32_t *l = search_entry_list(idx, e);
    size_t w = 0;
    for (uint32_t i = 0; i < e->count;) {
        size_t lw = l[i] >> 6;
        uint64_t keep = 0;
        for (; i < e->count && (l[i] >> 6) == lw; i++) keep |= (uint64_t)1 << (l[i] & 63);
        while (w < lw) bits[w++] = 0;
        bits[w++] &= keep;
    }
    while (w < idx->words) bits[w++] = 0;
}

/* bits |= the set of `e`. */
static void search_or_entry(const search_index *idx, const sindex_entry *e, uint64_t *bits) {
    if (e->kind == SINDEX_BITS) {
        const uint64_t *s = search_entry_bits(idx, e);
        for (size_t w = 0; w < idx->words; w++) bits[w] |= s[w];
        return;
    }
    const uint32_t *l = search_entry_list(idx, e);
    for (uint32_t i = 0; i < e->count; i++) bits[l[i] >> 6] |= (uint64_t)1 << (l[i] & 63);
}

/* |bits & the set of `e`|. */
SEARCH_POPCNT static uint32_t search_count_entry(const search_index *idx, const sindex_entry *e,
                                                 const uint64_t *bits) {
    uint32_t n = 0;
    if (e->kind == SINDEX_BITS) {
        const uint64_t *s = search_entry_bits(idx, e);
        uint64_t a = 0, b = 0, c = 0, d = 0; /* four sums: the popcounts overlap */
        size_t w = 0;
        for (; w + 4 <= idx->words; w += 4) {
            a += (uint64_t)__builtin_popcountll(bits[w] & s[w]);
            b += (uint64_t)__builtin_popcountll(bits[w + 1] & s[w + 1]);
            c += (uint64_t)__builtin_popcountll(bits[w + 2] & s[w + 2]);
            d += (uint64_t)__builtin_popcountll(bits[w + 3] & s[w + 3]);
        }
        for (; w < idx->words; w++) a += (uint64_t)__builtin_popcountll(bits[w] & s[w]);
        return (uint32_t)(a + b + c + d);
    }
    const uint32_t *l = search_entry_list(idx, e);
    for (uint32_t i = 0; i < e->count; i++) n += (uint32_t)(bits[l[i] >> 6] >> (l[i] & 63) & 1);
    return n;
}

/* ---- the plan --------------------------------------------------------------------- */

typedef struct search_term {
    const char *s;
    size_t len;
    int verify;                 /* its candidates must be checked on the haystack */
} search_term;

/* What a query compares, looked up once. */
typedef struct search_plan {
    const sindex_entry *exact[SINDEX_FIELDS]; /* the value filtered on, or NULL */
    int unknown[SINDEX_FIELDS];               /* the filter names a value no model holds */
    int exact_any;                            /* some exact filter is set */
    int numbers;                              /* some numeric bound is set */
    int fit;                                  /* the fit filter is set */
    search_term *terms;
    size_t nterms;
    uint64_t *bits, *tmp;                     /* two bitsets over the models */
} search_plan;

static void search_plan_free(search_plan *p) {
    free(p->terms);
    free(p->bits);
}

static int search_plan_terms(search_plan *p, const char *text) {
    if (!text) return 0;
    if (!(p->terms = malloc((strlen(text) / 2 + 1) * sizeof *p->terms))) return -1;
    for (const char *s = text; *s;) {
        while (*s && sindex_is_space((unsigned char)*s)) s++;
        size_t n = 0;
        while (s[n] && !sindex_is_space((unsigned char)s[n])) n++;
        int seen = 0;
        for (size_t i = 0; i < p->nterms && n; i++)
            seen |= p->terms[i].len == n && memcmp(p->terms[i].s, s, n) == 0;
        if (n && !seen) p->terms[p->nterms++] = (search_term){s, n, 0};
        s += n;
    }
    return 0;
}

static int search_plan_init(search_plan *p, const search_index *idx, const search_query *q) {
    memset(p, 0, sizeof *p);
    const char *values[SINDEX_FIELDS] = {q->category, q->language, q->tag, q->quantization,
                                         q->license, q->family};
    for (int f = 0; f < SINDEX_FIELDS; f++) {
        if (!values[f]) continue;
        p->exact_any = 1;
        p->exact[f] = search_dict_find(idx, SD_VALUES + f, values[f], strlen(values[f]));
        p->unknown[f] = p->exact[f] == NULL;
    }
    p->numbers = !isnan(q->min_rating) || !isnan(q->min_size_gb) || !isnan(q->max_size_gb) ||
                 !isnan(q->max_ram_gb) || !isnan(q->max_vram_gb);
    p->fit = q->fit_mask != 0;
    if (search_plan_terms(p, q->terms) != 0) return -1;
    p->bits = malloc((2 * idx->words + 1) * sizeof *p->bits);
    p->tmp = p->bits ? p->bits + idx->words : NULL;
    return p->bits ? 0 : -1;
}

/* 1 when the plan restricts the models at all. */
static int search_plan_filters(const search_plan *p) {
    return p->exact_any || p->numbers || p->nterms > 0 || p->fit;
}

/* ---- narrowing -------------------------------------------------------------------- */

/* ANDs every exact filter but the one of field `skip` (-1: none) into bits. */
static void search_apply_exact(const search_index *idx, const search_plan *p, int skip,
                               uint64_t *bits) {
    for (int f = 0; f < SINDEX_FIELDS; f++) {
        if (f == skip) continue;
        if (p->unknown[f]) search_bits_zero(idx, bits);
        else if (p->exact[f]) search_and_entry(idx, p->exact[f], bits);
    }
}

/* The bits of the `count` (<= 64) numbers at `v` that are >= (min) or <= (max) `bound`
 * (NAN is neither): two compares per instruction with SSE2. */
static uint64_t search_bound_word(const double *v, size_t count, double bound, int min) {
    uint64_t keep = 0;
    size_t j = 0;
#ifdef __SSE2__
    __m128d b = _mm_set1_pd(bound);
    for (; j + 2 <= count; j += 2) {
        __m128d x = _mm_loadu_pd(v + j);
        __m128d c = min ? _mm_cmpge_pd(x, b) : _mm_cmple_pd(x, b); /* ordered: NAN fails */
        keep |= (uint64_t)_mm_movemask_pd(c) << j;
    }
#endif
    for (; j < count; j++) keep |= (uint64_t)(min ? v[j] >= bound : v[j] <= bound) << j;
    return keep;
}

#ifdef __x86_64__
/* The same, four compares per instruction, on CPUs with AVX2 (search_apply_bound asks). */
__attribute__((target("avx2"))) static uint64_t search_bound_word_avx2(const double *v,
                                                                      size_t count,
                                                                      double bound, int min) {
    __m256d b = _mm256_set1_pd(bound);
    uint64_t keep = 0;
    size_t j = 0;
    for (; j + 4 <= count; j += 4) {
        __m256d x = _mm256_loadu_pd(v + j);
        __m256d c = min ? _mm256_cmp_pd(x, b, _CMP_GE_OQ) : _mm256_cmp_pd(x, b, _CMP_LE_OQ);
        keep |= (uint64_t)_mm256_movemask_pd(c) << j;
    }
    for (; j < count; j++) keep |= (uint64_t)(min ? v[j] >= bound : v[j] <= bound) << j;
    return keep;
}
#endif

/* The bits of the `count` (<= 64) numbers at `v` that are >= (min) or <= (max) `bound`: with
 * AVX2 where the CPU has it. */
static uint64_t search_bound(const double *v, size_t count, double bound, int min) {
#ifdef __x86_64__
    if (__builtin_cpu_supports("avx2")) return search_bound_word_avx2(v, count, bound, min);
#endif
    return search_bound_word(v, count, bound, min);
}

/* Clears the models whose number is not >= (min) or <= (max) `bound`; NAN is neither. Each
 * word with candidates is compared whole, 64 numbers in a row. */
static void search_apply_bound(const search_index *idx, const double *num, double bound,
                               int min, uint64_t *bits) {
    for (size_t w = 0; w < idx->words; w++) {
        if (!bits[w]) continue;
        size_t count = idx->n - w * 64 < 64 ? idx->n - w * 64 : 64;
        bits[w] &= search_bound(num + w * 64, count, bound, min);
    }
}

static void search_apply_numbers(const search_index *idx, const search_query *q,
                                 uint64_t *bits) {
    const struct { double bound; int num, min; } bounds[] = {
        {q->min_rating, SN_RATING, 1}, {q->min_size_gb, SN_SIZE, 1},
        {q->max_size_gb, SN_SIZE, 0},  {q->max_ram_gb, SN_RAM, 0},
        {q->max_vram_gb, SN_VRAM, 0},
    };
    for (size_t k = 0; k < sizeof bounds / sizeof bounds[0]; k++)
        if (!isnan(bounds[k].bound))
            search_apply_bound(idx, idx->num[bounds[k].num], bounds[k].bound, bounds[k].min, bits);
}

/* The fit class of model `m` on the machine of `q`; *estimated: from its size. */
static inline machine_fit_class search_fit_of(const search_index *idx, const search_query *q,
                                              size_t m, int *estimated) {
    return machine_class_gb(idx->num[SN_RAM][m], idx->num[SN_VRAM][m], idx->num[SN_SIZE][m],
                            q->ram_bytes / 1e9, q->vram_bytes / 1e9, estimated);
}

/* The models of word `w` (bits) in each fit class on the machine of `q`, from the derived
 * needs, with the bound compares of the numeric filters (a whole word at a time). */
static void search_fit_word(const search_index *idx, const search_query *q, size_t w,
                            uint64_t cls[MACHINE_FIT_COUNT]) {
    size_t count = idx->n - w * 64 < 64 ? idx->n - w * 64 : 64;
    uint64_t all = count == 64 ? ~(uint64_t)0 : ((uint64_t)1 << count) - 1;
    double r = q->ram_bytes / 1e9, v = q->vram_bytes / 1e9;
    memset(cls, 0, MACHINE_FIT_COUNT * sizeof *cls);
    if (v > 0) {
        uint64_t vram = search_bound(idx->need_vram + w * 64, count, v, 0);
        uint64_t both = search_bound(idx->need_ram + w * 64, count, v + r, 0);
        cls[MACHINE_FIT_FULL_GPU] = vram;
        cls[MACHINE_FIT_PARTIAL_GPU] = ~vram & both & all;
        cls[MACHINE_FIT_TOO_LARGE] = ~vram & ~both & all;
    } else {
        uint64_t ram = search_bound(idx->need_ram + w * 64, count, r, 0);
        cls[MACHINE_FIT_CPU] = ram;
        cls[MACHINE_FIT_TOO_LARGE] = ~ram & all;
    }
}

/* Clears the models whose fit class is not in the fit filter. */
static void search_apply_fit(const search_index *idx, const search_query *q, uint64_t *bits) {
    uint64_t cls[MACHINE_FIT_COUNT];
    for (size_t w = 0; w < idx->words; w++) {
        if (!bits[w]) continue;
        search_fit_word(idx, q, w, cls);
        uint64_t keep = 0;
        for (int c = 0; c < MACHINE_FIT_COUNT; c++)
            if (q->fit_mask >> c & 1) keep |= cls[c];
        bits[w] &= keep;
    }
}

/* A term of 3 or more word bytes: ANDs the union of the sets of the tokens holding it. */
static void search_word_term(const search_index *idx, const search_term *t, uint64_t *bits,
                             uint64_t *tmp) {
    const sindex_entry *shortest = NULL;
    for (size_t i = 0; i + 3 <= t->len; i++) {
        const sindex_entry *e = search_dict_find(idx, SD_TRI, t->s + i, 3);
        if (!e) {
            search_bits_zero(idx, bits);
            return;
        }
        if (!shortest || e->count < shortest->count) shortest = e;
    }
    const uint32_t *tokens = search_entry_list(idx, shortest);
    const sindex_entry *match = NULL;
    size_t matches = 0;
    for (uint32_t i = 0; i < shortest->count; i++) {
        const sindex_entry *tok = &idx->dict[SD_TOKEN][tokens[i]];
        if (tok->key_len < t->len || !memmem(search_entry_key(idx, tok), tok->key_len, t->s, t->len))
            continue;
        if (matches == 1) {
            search_bits_zero(idx, tmp);
            search_or_entry(idx, match, tmp);
        }
        if (matches >= 1) search_or_entry(idx, tok, tmp);
        match = tok;
        matches++;
    }
    if (matches == 0) {
        search_bits_zero(idx, bits);
    } else if (matches == 1) {
        search_and_entry(idx, match, bits);
    } else {
        for (size_t w = 0; w < idx->words; w++) bits[w] &= tmp[w];
    }
}

static int search_indexed(unsigned char c) { return c != 0 && !sindex_is_space(c); }

/* Any other term: ANDs the sets of its bigrams and of the whole tokens inside it; the
 * candidates left are checked on their haystack later. */
static void search_other_term(const search_index *idx, search_term *t, uint64_t *bits) {
    const unsigned char *s = (const unsigned char *)t->s;
    t->verify = 1;
    for (size_t i = 0; i + 2 <= t->len; i++) {
        if (!search_indexed(s[i]) || !search_indexed(s[i + 1])) continue;
        const sindex_entry *e = search_dict_find(idx, SD_BI, t->s + i, 2);
        if (!e) {
            search_bits_zero(idx, bits);
            return;
        }
        search_and_entry(idx, e, bits);
    }
    for (size_t i = 0; i < t->len;) {
        if (!sindex_is_word(s[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < t->len && sindex_is_word(s[j])) j++;
        if (i > 0 && j < t->len) { /* bounded by other bytes on both sides: a whole token */
            const sindex_entry *e = search_dict_find(idx, SD_TOKEN, t->s + i, j - i);
            if (!e) {
                search_bits_zero(idx, bits);
                return;
            }
            search_and_entry(idx, e, bits);
        }
        i = j;
    }
}

static void search_apply_term(const search_index *idx, search_term *t, uint64_t *bits,
                              uint64_t *tmp) {
    int words = t->len <= SEARCH_TERM_MAX, indexed = 1;
    for (size_t i = 0; i < t->len; i++) {
        words &= sindex_is_word((unsigned char)t->s[i]);
        indexed &= search_indexed((unsigned char)t->s[i]);
    }
    if (indexed && t->len <= 2) {
        const sindex_entry *e = search_dict_find(idx, t->len == 1 ? SD_UNI : SD_BI, t->s, t->len);
        if (e) search_and_entry(idx, e, bits);
        else search_bits_zero(idx, bits);
    } else if (words) {
        search_word_term(idx, t, bits, tmp);
    } else {
        search_other_term(idx, t, bits);
    }
}

/* Clears the candidates whose haystack lacks a term that needs checking. */
static void search_verify(const search_index *idx, const search_plan *p, uint64_t *bits) {
    for (size_t w = 0; w < idx->words; w++) {
        for (uint64_t x = bits[w]; x; x &= x - 1) {
            size_t m = w * 64 + (size_t)__builtin_ctzll(x);
            const sindex_rec *r = &idx->recs[m];
            for (size_t t = 0; t < p->nterms; t++) {
                if (!p->terms[t].verify) continue;
                if (memmem(idx->hay + r->hay_off, r->hay_len, p->terms[t].s, p->terms[t].len))
                    continue;
                bits[w] &= ~((uint64_t)1 << (m & 63));
                break;
            }
        }
    }
}

/* ANDs every term into bits, verifying those that need it at the end. */
static void search_apply_terms(const search_index *idx, search_plan *p, uint64_t *bits) {
    int verify = 0;
    for (size_t t = 0; t < p->nterms; t++) {
        if (!search_bits_any(idx, bits)) return;
        search_apply_term(idx, &p->terms[t], bits, p->tmp);
        verify |= p->terms[t].verify;
    }
    if (verify) search_verify(idx, p, bits);
}

/* The models matching the numeric bounds and the terms (not the exact filters). */
static void search_base(const search_index *idx, const search_query *q, search_plan *p,
                        uint64_t *bits) {
    search_bits_all(idx, bits);
    if (p->numbers) search_apply_numbers(idx, q, bits);
    search_apply_terms(idx, p, bits);
}

/* The models matching every filter, in p->bits; returns how many. */
static size_t search_filter(const search_index *idx, const search_query *q, search_plan *p) {
    search_bits_all(idx, p->bits);
    search_apply_exact(idx, p, -1, p->bits);
    if (p->numbers && search_bits_any(idx, p->bits)) search_apply_numbers(idx, q, p->bits);
    search_apply_terms(idx, p, p->bits);
    if (p->fit) search_apply_fit(idx, q, p->bits);
    return search_bits_count(idx, p->bits);
}

/* ---- the page --------------------------------------------------------------------- */

static int search_cmp_u32(const void *pa, const void *pb) {
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    return (a > b) - (a < b);
}

/* The page from the ranks of the `total` matches: sorted, then sliced. */
static size_t search_page_by_rank(const search_index *idx, const uint64_t *bits, size_t total,
                                  int p, size_t off, size_t lim, uint32_t *hits) {
    uint32_t *ranks = malloc((total ? total : 1) * sizeof *ranks);
    if (!ranks) return (size_t)-1;
    size_t k = 0;
    for (size_t w = 0; w < idx->words; w++)
        for (uint64_t x = bits[w]; x; x &= x - 1)
            ranks[k++] = idx->rank[p][w * 64 + (size_t)__builtin_ctzll(x)];
    qsort(ranks, k, sizeof *ranks, search_cmp_u32);
    size_t nhits = 0;
    for (size_t i = off; i < k && nhits < lim; i++) hits[nhits++] = idx->perm[p][ranks[i]];
    free(ranks);
    return nhits;
}

/* The page by walking the permutation, one bit test per model. */
static size_t search_page_by_walk(const search_index *idx, const uint64_t *bits, size_t total,
                                  int p, size_t off, size_t lim, uint32_t *hits) {
    const uint32_t *perm = idx->perm[p];
    size_t nhits = 0, seen = 0;
    for (size_t i = 0; i < idx->n && nhits < lim && seen < total; i++) {
        uint32_t m = perm[i];
        if (!(bits[m >> 6] >> (m & 63) & 1)) continue;
        if (seen++ >= off) hits[nhits++] = m;
    }
    return nhits;
}

/* Fills `hits` with the page; returns its length, or (size_t)-1 when out of memory. */
static size_t search_page(const search_index *idx, const search_query *q, const search_plan *p,
                          size_t total, uint32_t *hits) {
    int sort = (int)q->sort >= 0 && (int)q->sort < SINDEX_SORTS ? (int)q->sort : 0;
    int perm = sort * 2 + (q->descending ? 1 : 0);
    size_t off = (size_t)q->offset, lim = q->limit > 0 ? (size_t)q->limit : SEARCH_LIMIT_DEFAULT;
    if (!search_plan_filters(p)) {
        size_t nhits = 0;
        for (size_t i = off; i < idx->n && nhits < lim; i++) hits[nhits++] = idx->perm[perm][i];
        return nhits;
    }
    if (total == 0 || off >= total) return 0;
    /* walking sees about (off + lim) * n / total models; sorting costs total * log(total) */
    double walk = (double)(off + lim) * (double)idx->n / (double)total;
    double sort_cost = 4.0 * (double)total * (log2((double)total) + 1) + (double)idx->words;
    if (walk > (double)idx->n) walk = (double)idx->n;
    if (sort_cost < walk) return search_page_by_rank(idx, p->bits, total, perm, off, lim, hits);
    return search_page_by_walk(idx, p->bits, total, perm, off, lim, hits);
}

/* ---- writing answers -------------------------------------------------------------- */

/* The answer being assembled: copied and written out in large pieces (`write`), or handed
 * over piece by piece (`piece`), model texts as pointers into the mapped cache file. */
typedef struct search_out {
    char *buf;
    size_t len, cap;
    search_write_fn write;
    search_piece_fn piece;
    void *ctx;
    int failed;
} search_out;

static int search_out_flush(search_out *o) {
    if (o->len && !o->failed && o->write(o->ctx, o->buf, o->len) != 0) o->failed = 1;
    o->len = 0;
    return o->failed ? -1 : 0;
}

/* Hands over `n` bytes that the receiver may keep a pointer to (`stable`) or must copy. */
static int search_out_piece(search_out *o, const char *s, size_t n, int stable) {
    if (!o->failed && o->piece(o->ctx, s, n, stable) != 0) o->failed = 1;
    return o->failed ? -1 : 0;
}

static int search_out_put(search_out *o, const char *s, size_t n) {
    if (o->piece) return search_out_piece(o, s, n, 0);
    while (n > 0) {
        if (o->len == o->cap && search_out_flush(o) != 0) return -1;
        size_t k = o->cap - o->len < n ? o->cap - o->len : n;
        memcpy(o->buf + o->len, s, k);
        o->len += k;
        s += k;
        n -= k;
    }
    return 0;
}

static int search_out_printf(search_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int search_out_printf(search_out *o, const char *fmt, ...) {
    char text[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return search_out_put(o, text, n > 0 ? (size_t)n : 0);
}

/* Room for the whole answer when it is not huge, so that it goes out in one write. */
static int search_out_init(search_out *o, size_t need, search_write_fn write, void *ctx) {
    memset(o, 0, sizeof *o);
    o->cap = need < SEARCH_OUT_MAX ? need : SEARCH_OUT_MAX;
    o->buf = malloc(o->cap);
    o->write = write;
    o->ctx = ctx;
    return o->buf ? 0 : -1;
}

/* Writes `len` bytes of a model's text (from the mapping). */
static int search_out_text(search_out *o, const char *text, size_t len) {
    return o->piece ? search_out_piece(o, text, len, 1) : search_out_put(o, text, len);
}

/* Writes model `m`: its text, with ,"fit":...,"fit_estimated":... before the closing brace
 * when the query has a machine. */
static int search_write_model(const search_index *idx, const search_query *q, uint32_t m,
                              search_out *o) {
    const sindex_rec *r = &idx->recs[m];
    const char *text = idx->text + r->text_off;
    size_t len = r->text_len;
    if (!q->fit_known || len < 2 || text[len - 1] != '}') return search_out_text(o, text, len);
    int est;
    machine_fit_class c = search_fit_of(idx, q, m, &est);
    int rc = search_out_text(o, text, len - 1);
    if (rc == 0)
        rc = search_out_printf(o, "%s\"fit\":\"%s\",\"fit_estimated\":%s}",
                               len > 2 ? "," : "", machine_fit_name(c), est ? "true" : "false");
    return rc;
}

static int search_write_page(const search_index *idx, const search_query *q,
                             const uint32_t *hits, size_t nhits, size_t total, search_out *o) {
    int rc = search_out_printf(o, "{\"total\":%zu,\"offset\":%ld,\"limit\":%ld,\"models\":[",
                               total, q->offset, q->limit);
    for (size_t i = 0; rc == 0 && i < nhits; i++) {
        if (i) rc = search_out_put(o, ",", 1);
        if (rc == 0) rc = search_write_model(idx, q, hits[i], o);
    }
    if (rc == 0) rc = search_out_put(o, "]}", 2);
    if (rc == 0 && !o->piece) rc = search_out_flush(o);
    return rc;
}

/* The error of an answer that was not written: the writer stopped, or memory ran out. */
static int search_fail(const search_out *o, mg_error *err) {
    if (o->failed)
        return mg_error_set(err, 500, "write_failed", NULL, "the answer could not be written");
    return mg_error_set(err, 500, "out_of_memory", NULL, "out of memory");
}

/* Finds the page of `q` and writes it through `o` (prepared by the caller, its buffer sized
 * here in copying mode). 0, or -1 and err. */
static int search_answer(const search_index *idx, const search_query *q, search_out *o,
                         mg_error *err) {
    search_plan plan;
    size_t lim = q->limit > 0 ? (size_t)q->limit : SEARCH_LIMIT_DEFAULT, nhits = (size_t)-1;
    uint32_t *hits = malloc(lim * sizeof *hits);
    size_t total = 0;
    int rc = -1;
    if (search_plan_init(&plan, idx, q) == 0 && hits) {
        total = search_plan_filters(&plan) ? search_filter(idx, q, &plan) : idx->n;
        nhits = search_page(idx, q, &plan, total, hits);
    }
    if (nhits != (size_t)-1 && !o->piece) {
        size_t need = 160;
        for (size_t i = 0; i < nhits; i++) need += idx->recs[hits[i]].text_len + 1 + 48;
        o->cap = need < SEARCH_OUT_MAX ? need : SEARCH_OUT_MAX;
        if (!(o->buf = malloc(o->cap))) nhits = (size_t)-1;
    }
    if (nhits != (size_t)-1) rc = search_write_page(idx, q, hits, nhits, total, o);
    search_plan_free(&plan);
    free(hits);
    free(o->buf);
    return rc == 0 ? 0 : search_fail(o, err);
}

int search_run(const search_index *idx, const search_query *q, search_write_fn write,
               void *ctx, mg_error *err) {
    search_out o = {.write = write, .ctx = ctx};
    return search_answer(idx, q, &o, err);
}

int search_run_pieces(const search_index *idx, const search_query *q, search_piece_fn piece,
                      void *ctx, mg_error *err) {
    search_out o = {.piece = piece, .ctx = ctx};
    return search_answer(idx, q, &o, err);
}

/* ---- facets ----------------------------------------------------------------------- */

typedef struct search_fcount {
    uint32_t count, entry;
} search_fcount;

static int search_cmp_fcount(const void *pa, const void *pb) {
    const search_fcount *a = pa, *b = pb;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    return (a->entry > b->entry) - (a->entry < b->entry); /* entries are in value order */
}

/* Writes one facet's values: from the stored counts when `mask` is NULL (every model
 * counts), else counted over `mask`. */
static int search_write_facet(const search_index *idx, int d, const uint64_t *mask,
                              size_t limit, search_fcount *counts, search_out *o) {
    const sindex_entry *ents = idx->dict[d];
    size_t n = 0;
    if (!mask) {
        for (size_t i = 0; i < idx->dict_n[d] && n < limit; i++, n++)
            counts[n] = (search_fcount){ents[idx->order[d][i]].count, idx->order[d][i]};
    } else {
        for (size_t i = 0; i < idx->dict_n[d]; i++) {
            uint32_t c = search_count_entry(idx, &ents[i], mask);
            if (c) counts[n++] = (search_fcount){c, (uint32_t)i};
        }
        qsort(counts, n, sizeof *counts, search_cmp_fcount);
        if (n > limit) n = limit;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const sindex_entry *e = &ents[counts[i].entry];
        rc = search_out_put(o, i ? ",{\"value\":" : "{\"value\":", i ? 10 : 9);
        if (rc == 0) rc = search_out_put(o, search_entry_key(idx, e) + e->key_len, e->json_len);
        if (rc == 0) rc = search_out_printf(o, ",\"count\":%u}", counts[i].count);
    }
    return rc;
}

/* The mask of facet field `f` in `mask`: the base without the facet's own filter. NULL when
 * nothing restricts it (every model counts). */
static const uint64_t *search_facet_mask(const search_index *idx, const search_plan *p,
                                         const search_query *q, int f, const uint64_t *base,
                                         uint64_t *mask) {
    int others = p->fit;
    for (int g = 0; g < SINDEX_FIELDS; g++) others |= g != f && (p->exact[g] || p->unknown[g]);
    if (!others && !p->numbers && p->nterms == 0) return NULL;
    memcpy(mask, base, idx->words * sizeof *mask);
    search_apply_exact(idx, p, f, mask);
    if (p->fit) search_apply_fit(idx, q, mask);
    return mask;
}

/* Counts the fit classes of the models in `mask` (every model when NULL) into counts. */
static void search_count_fit(const search_index *idx, const search_query *q,
                             const uint64_t *mask, uint32_t counts[MACHINE_FIT_COUNT]) {
    uint64_t cls[MACHINE_FIT_COUNT];
    memset(counts, 0, MACHINE_FIT_COUNT * sizeof *counts);
    if (!q->fit_known) return;
    for (size_t w = 0; w < idx->words; w++) {
        if (mask && !mask[w]) continue;
        search_fit_word(idx, q, w, cls);
        for (int c = 0; c < MACHINE_FIT_COUNT; c++)
            counts[c] += (uint32_t)__builtin_popcountll(mask ? cls[c] & mask[w] : cls[c]);
    }
}

/* Writes the fit facet from `counts`: by count descending, then value; at most `limit`. */
static int search_write_fit(const uint32_t counts[MACHINE_FIT_COUNT], size_t limit,
                            search_out *o) {
    int order[MACHINE_FIT_COUNT], n = 0, rc = 0;
    for (int c = 0; c < MACHINE_FIT_COUNT; c++) {
        if (!counts[c]) continue;
        int at = n++;
        while (at > 0 && (counts[order[at - 1]] < counts[c] ||
                          (counts[order[at - 1]] == counts[c] &&
                           strcmp(machine_fit_name(order[at - 1]), machine_fit_name(c)) > 0))) {
            order[at] = order[at - 1];
            at--;
        }
        order[at] = c;
    }
    for (int i = 0; rc == 0 && i < n && (size_t)i < limit; i++)
        rc = search_out_printf(o, "%s{\"value\":\"%s\",\"count\":%u}", i ? "," : "",
                               machine_fit_name((machine_fit_class)order[i]), counts[order[i]]);
    return rc;
}

static int search_write_facets(const search_index *idx, search_plan *p, const search_query *q,
                               size_t total, size_t limit, uint64_t *mask,
                               const uint32_t fit[MACHINE_FIT_COUNT], search_out *o) {
    size_t most = 1;
    for (int f = 0; f < SINDEX_FIELDS; f++)
        if (idx->dict_n[SD_VALUES + f] > most) most = idx->dict_n[SD_VALUES + f];
    search_fcount *counts = malloc(most * sizeof *counts);
    if (!counts) return -1;
    int rc = search_out_printf(o, "{\"total\":%zu,\"facets\":{", total);
    for (int f = 0; rc == 0 && f < SINDEX_FIELDS; f++) {
        const uint64_t *m = search_facet_mask(idx, p, q, f, p->bits, mask);
        rc = search_out_printf(o, "%s\"%s\":[", f ? "," : "", search_facet_names[f]);
        if (rc == 0) rc = search_write_facet(idx, SD_VALUES + f, m, limit, counts, o);
        if (rc == 0) rc = search_out_put(o, "]", 1);
    }
    free(counts);
    if (rc == 0) rc = search_out_printf(o, ",\"%s\":[", search_facet_names[SINDEX_FIELDS]);
    if (rc == 0) rc = search_write_fit(fit, limit, o);
    if (rc == 0) rc = search_out_put(o, "]}}", 3);
    if (rc == 0) rc = search_out_flush(o);
    return rc;
}

/* The models matching every filter but fit (numbers, terms, exact) into `mask`, their fit
 * classes counted into `fit`, then the fit filter applied too. */
static void search_facet_total(const search_index *idx, const search_query *q,
                               search_plan *p, uint64_t *mask,
                               uint32_t fit[MACHINE_FIT_COUNT]) {
    search_base(idx, q, p, p->bits);
    memcpy(mask, p->bits, idx->words * sizeof *mask);
    search_apply_exact(idx, p, -1, mask);
    int restricted = p->exact_any || p->numbers || p->nterms > 0;
    search_count_fit(idx, q, restricted ? mask : NULL, fit);
    if (p->fit) search_apply_fit(idx, q, mask);
}

int search_facets(const search_index *idx, const search_query *q, long facet_limit,
                  search_write_fn write, void *ctx, mg_error *err) {
    search_plan plan;
    search_out o = {0};
    size_t limit = facet_limit > 0 ? (size_t)facet_limit : SEARCH_FACET_LIMIT_DEFAULT;
    uint64_t *mask = NULL;
    uint32_t fit[MACHINE_FIT_COUNT];
    int rc = -1;
    if (search_plan_init(&plan, idx, q) == 0 &&
        (mask = malloc((idx->words + 1) * sizeof *mask)) != NULL &&
        search_out_init(&o, 64 * 1024, write, ctx) == 0) {
        search_facet_total(idx, q, &plan, mask, fit);
        size_t total = search_bits_count(idx, mask);
        rc = search_write_facets(idx, &plan, q, total, limit, mask, fit, &o);
    }
    search_plan_free(&plan);
    free(mask);
    free(o.buf);
    return rc == 0 ? 0 : search_fail(&o, err);
}
