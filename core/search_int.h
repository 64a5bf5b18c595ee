/* search_int.h - the mapped search index as search_index.c (mapping, checking) hands it to
 * search_run.c (queries, facets). Internal to core/: users see only search.h. */
#ifndef MG_SEARCH_INT_H
#define MG_SEARCH_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "search.h"
#include "sindex.h"

/* Counting bits: one POPCNT instruction where the CPU has it (the clone is chosen when the
 * program loads), libgcc's loop elsewhere. */
#if defined(__x86_64__) && !defined(__POPCNT__)
#define SEARCH_POPCNT __attribute__((target_clones("popcnt", "default")))
#else
#define SEARCH_POPCNT
#endif

struct search_index {
    const char *map;            /* the index file, mapped read-only */
    size_t map_len;
    const char *text;           /* the cache file it describes, mapped read-only */
    size_t text_len;
    struct stat cache_st;       /* the cache file as mapped */
    size_t n, words;            /* models; 64-bit words of a bitset over them */
    const sindex_rec *recs;
    const char *hay, *ids, *strs, *sets;
    const double *num[SINDEX_NUMS];
    const uint32_t *perm[SINDEX_PERMS];
    const uint32_t *rank[SINDEX_SORTS * 2];
    double *need_ram, *need_vram; /* owned: each model's memory need in GB (machine.h),
                                     derived from the numbers when the index is opened */
    const sindex_entry *dict[SD_COUNT]; /* each dict's first entry */
    size_t dict_n[SD_COUNT];
    const uint32_t *order[SD_COUNT];    /* value dicts: entries by count, then key */
};

/* The entry of `key` in dict `d`, or NULL. */
const sindex_entry *search_dict_find(const search_index *idx, int d, const char *key,
                                     size_t len);

/* The key bytes of entry `e` (borrowed from the mapping). */
static inline const char *search_entry_key(const search_index *idx, const sindex_entry *e) {
    return idx->strs + e->key_off;
}

static inline const uint64_t *search_entry_bits(const search_index *idx, const sindex_entry *e) {
    return (const uint64_t *)(const void *)(idx->sets + e->set_off);
}

static inline const uint32_t *search_entry_list(const search_index *idx, const sindex_entry *e) {
    return (const uint32_t *)(const void *)(idx->sets + e->set_off);
}

#endif
