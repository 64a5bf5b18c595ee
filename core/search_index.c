/* search_index.c - maps the search index file and the cache file it describes, read-only,
 * and checks the index before anything uses it: the header and its CRC, that it names the
 * cache file as it is now (size, inode, mtime), the CRC of the body, and every offset,
 * length, count and member it holds, so that a corrupted, truncated or foreign file is
 * refused (and rebuilt by the caller), never trusted. Many processes map the same file:
 * its pages are shared. */
#include "search_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "gallery.h"
#include "machine.h"

/* ---- mapping ---------------------------------------------------------------------- */

/* Maps the whole file at `path` (at least `min` bytes), its fstat in *st and, when `fd` is
 * not NULL, its fd in *fd (the caller closes it). NULL with errno on failure. */
static const char *search_map_file(const char *path, struct stat *st, size_t min, int *fd) {
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0) return NULL;
    void *map = MAP_FAILED;
    int e = EINVAL;
    if (fstat(f, st) != 0) {
        e = errno;
    } else if (st->st_size > 0 && (size_t)st->st_size >= min) {
        map = mmap(NULL, (size_t)st->st_size, PROT_READ, MAP_SHARED, f, 0);
        e = errno;
    }
    if (fd && map != MAP_FAILED) *fd = f;
    else close(f);
    errno = e;
    return map == MAP_FAILED ? NULL : map;
}

void search_index_free(search_index *idx) {
    if (!idx) return;
    if (idx->map) munmap((void *)idx->map, idx->map_len);
    if (idx->text) munmap((void *)idx->text, idx->text_len);
    free(idx->need_ram);
    free(idx->need_vram);
    free(idx);
}

/* ---- checking --------------------------------------------------------------------- */

/* 1 when [off, off + len) lies within `size` bytes. */
static int search_within(uint64_t off, uint64_t len, uint64_t size) {
    return off <= size && len <= size - off;
}

static int search_check_header(const sindex_header *h, size_t size) {
    uLong crc = crc32(0L, (const Bytef *)h, (uInt)offsetof(sindex_header, header_crc));
    if (memcmp(h->magic, SINDEX_MAGIC, sizeof h->magic) != 0 || h->version != SINDEX_VERSION ||
        h->header_size != sizeof *h || h->file_size != size || h->header_crc != (uint32_t)crc)
        return -1;
    for (int s = 0; s < SX_COUNT; s++)
        if (h->sect[s].off % 8 || h->sect[s].off < sizeof *h ||
            !search_within(h->sect[s].off, h->sect[s].len, size))
            return -1;
    uint64_t n = h->n;
    if (h->sect[SX_RECS].len != n * sizeof(sindex_rec) ||
        h->sect[SX_NUMS].len != n * SINDEX_NUMS * sizeof(double) ||
        h->sect[SX_PERMS].len != n * SINDEX_PERMS * sizeof(uint32_t) ||
        h->sect[SX_RANKS].len != n * SINDEX_SORTS * 2 * sizeof(uint32_t) ||
        h->sect[SX_ENTRIES].len % sizeof(sindex_entry) || h->sect[SX_ORDER].len % 4)
        return -1;
    uint64_t nents = h->sect[SX_ENTRIES].len / sizeof(sindex_entry);
    for (int d = 0; d < SD_COUNT; d++) {
        if (!search_within(h->dict[d].first, h->dict[d].count, nents)) return -1;
        if (d >= SD_VALUES && !search_within(h->dict[d].order, h->dict[d].count,
                                             h->sect[SX_ORDER].len / 4))
            return -1;
    }
    return 0;
}

/* Points the index's arrays into the mapping (after search_check_header). */
static void search_point(search_index *idx, const sindex_header *h) {
    const char *m = idx->map;
    idx->n = h->n;
    idx->words = (idx->n + 63) / 64;
    idx->recs = (const sindex_rec *)(const void *)(m + h->sect[SX_RECS].off);
    idx->hay = m + h->sect[SX_HAY].off;
    idx->ids = m + h->sect[SX_IDS].off;
    idx->strs = m + h->sect[SX_STRS].off;
    idx->sets = m + h->sect[SX_SETS].off;
    for (int k = 0; k < SINDEX_NUMS; k++)
        idx->num[k] = (const double *)(const void *)(m + h->sect[SX_NUMS].off) + (size_t)k * idx->n;
    for (int p = 0; p < SINDEX_PERMS; p++)
        idx->perm[p] = (const uint32_t *)(const void *)(m + h->sect[SX_PERMS].off) + (size_t)p * idx->n;
    for (int p = 0; p < SINDEX_SORTS * 2; p++)
        idx->rank[p] = (const uint32_t *)(const void *)(m + h->sect[SX_RANKS].off) + (size_t)p * idx->n;
    const sindex_entry *ents = (const sindex_entry *)(const void *)(m + h->sect[SX_ENTRIES].off);
    const uint32_t *order = (const uint32_t *)(const void *)(m + h->sect[SX_ORDER].off);
    for (int d = 0; d < SD_COUNT; d++) {
        idx->dict[d] = ents + h->dict[d].first;
        idx->dict_n[d] = h->dict[d].count;
        idx->order[d] = d >= SD_VALUES ? order + h->dict[d].order : NULL;
    }
}

/* A list of `count` members, strictly ascending, each below `bound`. */
static int search_check_list(const uint32_t *l, uint32_t count, uint64_t bound) {
    for (uint32_t i = 0; i < count; i++)
        if (l[i] >= bound || (i && l[i] <= l[i - 1])) return -1;
    return 0;
}

/* A bitset over the models with exactly `count` bits, none past the last model. */
SEARCH_POPCNT static int search_check_bits(const search_index *idx, const uint64_t *w,
                                           uint32_t count) {
    uint64_t bits = 0;
    for (size_t i = 0; i < idx->words; i++) bits += (uint64_t)__builtin_popcountll(w[i]);
    if (idx->n % 64 && (w[idx->words - 1] >> (idx->n % 64))) return -1;
    return bits == count ? 0 : -1;
}

/* The JSON form of a value key is a JSON string of exactly the key. */
static int search_check_json_key(const char *key, uint32_t len, const char *json, uint32_t jlen) {
    json_t *v = json_loadb(json, jlen, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    int ok = json_is_string(v) && json_string_length(v) == len &&
             memcmp(json_string_value(v), key, len) == 0;
    json_decref(v);
    return ok ? 0 : -1;
}

static int search_check_entry(const search_index *idx, int d, const sindex_entry *e,
                              uint64_t strs_len, uint64_t sets_len) {
    if (!search_within(e->key_off, (uint64_t)e->key_len + e->json_len, strs_len)) return -1;
    if ((d >= SD_VALUES) != (e->json_len > 0)) return -1;
    if (d == SD_TRI) {
        if (e->kind != SINDEX_TOKENS || e->set_off % 4 ||
            !search_within(e->set_off, (uint64_t)e->count * 4, sets_len))
            return -1;
        return search_check_list(search_entry_list(idx, e), e->count, idx->dict_n[SD_TOKEN]);
    }
    if (e->count == 0 || e->count > idx->n) return -1;
    if (e->kind == SINDEX_BITS)
        return e->set_off % 8 || !search_within(e->set_off, idx->words * 8, sets_len) ||
                       search_check_bits(idx, search_entry_bits(idx, e), e->count)
                   ? -1 : 0;
    if (e->kind != SINDEX_LIST || e->set_off % 4 ||
        !search_within(e->set_off, (uint64_t)e->count * 4, sets_len))
        return -1;
    return search_check_list(search_entry_list(idx, e), e->count, idx->n);
}

/* Every entry of every dict, keys strictly ascending within a dict. */
static int search_check_dicts(const search_index *idx, const sindex_header *h) {
    for (int d = 0; d < SD_COUNT; d++) {
        const sindex_entry *e = idx->dict[d];
        for (size_t i = 0; i < idx->dict_n[d]; i++) {
            if (search_check_entry(idx, d, &e[i], h->sect[SX_STRS].len, h->sect[SX_SETS].len))
                return -1;
            if (d >= SD_VALUES &&
                search_check_json_key(search_entry_key(idx, &e[i]), e[i].key_len,
                                      search_entry_key(idx, &e[i]) + e[i].key_len,
                                      e[i].json_len) != 0)
                return -1;
            if (i == 0) continue;
            size_t a = e[i - 1].key_len, b = e[i].key_len;
            int c = memcmp(search_entry_key(idx, &e[i - 1]), search_entry_key(idx, &e[i]),
                           a < b ? a : b);
            if (c > 0 || (c == 0 && a >= b)) return -1;
        }
    }
    return 0;
}

/* `count` values forming a permutation of 0..count-1 (`seen`: room for count bits). */
static int search_check_perm(const uint32_t *p, size_t count, uint64_t *seen) {
    memset(seen, 0, (count + 63) / 64 * 8);
    for (size_t i = 0; i < count; i++) {
        if (p[i] >= count || (seen[p[i] >> 6] >> (p[i] & 63) & 1)) return -1;
        seen[p[i] >> 6] |= (uint64_t)1 << (p[i] & 63);
    }
    return 0;
}

static int search_check_perms(const search_index *idx) {
    size_t most = idx->n;
    for (int d = SD_VALUES; d < SD_COUNT; d++) most = idx->dict_n[d] > most ? idx->dict_n[d] : most;
    uint64_t *seen = malloc((most + 63) / 64 * 8 + 8);
    int rc = seen ? 0 : -1;
    for (int p = 0; rc == 0 && p < SINDEX_PERMS; p++)
        rc = search_check_perm(idx->perm[p], idx->n, seen);
    for (int p = 0; rc == 0 && p < SINDEX_SORTS * 2; p++)
        rc = search_check_perm(idx->rank[p], idx->n, seen);
    for (int d = SD_VALUES; rc == 0 && d < SD_COUNT; d++)
        rc = search_check_perm(idx->order[d], idx->dict_n[d], seen);
    free(seen);
    return rc;
}

static int search_check_recs(const search_index *idx, const sindex_header *h) {
    for (size_t i = 0; i < idx->n; i++) {
        const sindex_rec *r = &idx->recs[i];
        if (!search_within(r->text_off, r->text_len, idx->text_len) || r->text_len == 0 ||
            !search_within(r->hay_off, r->hay_len, h->sect[SX_HAY].len) ||
            !search_within(r->id_off, r->id_len, h->sect[SX_IDS].len))
            return -1;
    }
    return 0;
}

/* The CRC-32 of `len` bytes at `off` of `fd`, read with pread: computing it through the
 * mapping would bring the whole file into this process's resident set. */
static uint32_t search_file_crc(int fd, uint64_t off, uint64_t len) {
    static __thread char buf[1 << 16];
    uLong crc = crc32(0L, Z_NULL, 0);
    while (len > 0) {
        ssize_t got = pread(fd, buf, len < sizeof buf ? (size_t)len : sizeof buf, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return ~(uint32_t)crc; /* cannot match */
        crc = crc32_z(crc, (const Bytef *)buf, (size_t)got);
        off += (uint64_t)got;
        len -= (uint64_t)got;
    }
    return (uint32_t)crc;
}

/* The checks that read the whole body. The pages the structural checks touched are given
 * back afterwards (they stay in the page cache; a query faults in what it reads). */
static int search_check_body(search_index *idx, const sindex_header *h, int fd) {
    if (search_file_crc(fd, h->header_size, h->file_size - h->header_size) != h->body_crc)
        return -1;
    int rc = search_check_dicts(idx, h) == 0 && search_check_recs(idx, h) == 0 &&
                     search_check_perms(idx) == 0
                 ? 0 : -1;
    madvise((void *)idx->map, idx->map_len, MADV_DONTNEED);
    return rc;
}

/* ---- opening ---------------------------------------------------------------------- */

static search_index *search_fail(search_index *idx, mg_error *err, int status, const char *code,
                                 const char *what, const char *path) {
    mg_error_set(err, status, code, NULL, "%s: %s", path, what);
    search_index_free(idx);
    return NULL;
}

/* 1 when `st` is the cache file `h` describes. */
static int search_names_cache(const sindex_header *h, const struct stat *st) {
    return h->cache_size == (uint64_t)st->st_size && h->cache_ino == (uint64_t)st->st_ino &&
           h->cache_mtime_ns == (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

/* Derives each model's memory need (GB) from its ramGb, vramGb and sizeGb, so that the fit
 * filter compares whole words of models at once. 0, or -1 when memory ran out. */
static int search_derive_needs(search_index *idx) {
    idx->need_ram = malloc((idx->n + 1) * sizeof *idx->need_ram);
    idx->need_vram = malloc((idx->n + 1) * sizeof *idx->need_vram);
    if (!idx->need_ram || !idx->need_vram) return -1;
    for (size_t m = 0; m < idx->n; m++) {
        int est;
        machine_need_gb(idx->num[SN_RAM][m], idx->num[SN_VRAM][m], idx->num[SN_SIZE][m],
                        &idx->need_ram[m], &idx->need_vram[m], &est);
    }
    return 0;
}

search_index *search_index_open(const char *index_path, const char *cache_path, mg_error *err) {
    search_index *idx = calloc(1, sizeof *idx);
    if (!idx) return search_fail(idx, err, 500, "out_of_memory", "out of memory", index_path);
    struct stat st;
    int fd = -1;
    idx->map = search_map_file(index_path, &st, sizeof(sindex_header), &fd);
    if (!idx->map)
        return search_fail(idx, err, errno == ENOENT ? 404 : 500,
                           errno == ENOENT ? "index_missing" : "index_invalid",
                           errno == ENOENT ? "no search index" : "not a search index",
                           index_path);
    idx->map_len = (size_t)st.st_size;
    const sindex_header *h = (const sindex_header *)(const void *)idx->map;
    const char *why = NULL;
    int status = 500;
    if (search_check_header(h, idx->map_len) != 0) {
        why = "not a search index of this version";
    } else if (!(idx->text = search_map_file(cache_path, &idx->cache_st, 0, NULL)) ||
               !search_names_cache(h, &idx->cache_st)) {
        why = "the search index is not the one of the cache file";
        status = 409;
    } else {
        idx->text_len = (size_t)idx->cache_st.st_size;
        search_point(idx, h);
        if (search_check_body(idx, h, fd) != 0) why = "the search index is corrupted";
    }
    close(fd);
    if (why)
        return search_fail(idx, err, status, status == 409 ? "index_stale" : "index_invalid",
                           why, index_path);
    if (search_derive_needs(idx) != 0)
        return search_fail(idx, err, 500, "out_of_memory", "out of memory", index_path);
    return idx;
}

search_index *search_index_load(const char *cache_path, mg_error *err) {
    char index_path[4096];
    gallery_index_path(cache_path, index_path, sizeof index_path);
    return search_index_open(index_path, cache_path, err);
}

size_t search_index_count(const search_index *idx) { return idx ? idx->n : 0; }

int search_index_is_current(const search_index *idx, const struct stat *st) {
    return idx && st && idx->cache_st.st_dev == st->st_dev && idx->cache_st.st_ino == st->st_ino &&
           idx->cache_st.st_size == st->st_size &&
           idx->cache_st.st_mtim.tv_sec == st->st_mtim.tv_sec &&
           idx->cache_st.st_mtim.tv_nsec == st->st_mtim.tv_nsec;
}

/* ---- lookups ---------------------------------------------------------------------- */

static int search_cmp_key(const char *a, size_t alen, const char *b, size_t blen) {
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

const sindex_entry *search_dict_find(const search_index *idx, int d, const char *key,
                                     size_t len) {
    const sindex_entry *e = idx->dict[d];
    size_t lo = 0, hi = idx->dict_n[d];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = search_cmp_key(search_entry_key(idx, &e[mid]), e[mid].key_len, key, len);
        if (c == 0) return &e[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

json_t *search_index_get(const search_index *idx, const char *id) {
    if (!idx || !id) return NULL;
    const uint32_t *by_id = idx->perm[SINDEX_BY_ID];
    size_t lo = 0, hi = idx->n, len = strlen(id);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const sindex_rec *r = &idx->recs[by_id[mid]];
        int c = search_cmp_key(idx->ids + r->id_off, r->id_len, id, len);
        if (c == 0) return json_loadb(idx->text + r->text_off, r->text_len, JSON_ALLOW_NUL, NULL);
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}
