/* sindex.h - the layout of the search index file (cache/gallery_cache.index), shared by its
 * builder (sindex_build.c) and its reader (search_index.c).
 *
 * The file is built once, by whoever writes the cache, and mapped read-only by every reader.
 * It describes exactly one cache file (its size, inode and mtime are in the header) and holds:
 *
 *   records   per model: the byte span of its JSON text in the cache file, of its haystack
 *             and of its id
 *   haystack  per model, the lower-cased id, name, description, tags and categories, each
 *             followed by a NUL byte (a query term never holds one, so never spans two)
 *   numbers   rating, sizeGb, ramGb, vramGb, updatedAt (seconds) per model; NAN when absent
 *   perms     the models in each (sort, order) and by id; ranks: the inverse of each sort
 *   dicts     sorted keys, each with the set of models (or tokens) holding it:
 *               unigrams, bigrams   every byte and byte pair inside one field (no whitespace)
 *               tokens              maximal runs of word bytes ([a-z0-9] and bytes >= 0x80)
 *               trigrams            of the tokens: which tokens hold each trigram
 *               six value dicts     category, language, tag, quantization, license, family
 *             a set is a bitset over the models when that is smaller, else a sorted list
 *
 * Everything a reader uses is checked when it maps the file (sizes, spans, sortedness, the
 * CRC-32 of the body); a file that fails is rebuilt, never used. Integers are in the host's
 * byte order: the file is a cache for this machine, not an exchange format. */
#ifndef MG_SINDEX_H
#define MG_SINDEX_H

#include <stdint.h>

#define SINDEX_MAGIC "MGSINDEX"
#define SINDEX_VERSION 1u

/* Sections of the file, each 8-byte aligned. */
enum {
    SX_RECS,    /* sindex_rec[n] */
    SX_HAY,     /* haystack bytes */
    SX_IDS,     /* id bytes, original case */
    SX_NUMS,    /* double[SINDEX_NUMS][n] */
    SX_PERMS,   /* uint32_t[SINDEX_PERMS][n]: sort * 2 + descending, then by id */
    SX_RANKS,   /* uint32_t[SINDEX_SORTS * 2][n]: a model's position in each sort */
    SX_STRS,    /* dict keys (value dicts: followed by the key as a JSON string) */
    SX_ENTRIES, /* sindex_entry[], each dict a sorted run */
    SX_ORDER,   /* uint32_t[]: per value dict, its entries by count descending, then key */
    SX_SETS,    /* bitsets (uint64_t words) and sorted uint32_t lists */
    SX_COUNT
};

/* Dicts. The value dicts come last, in the order of search_facet_names. */
enum {
    SD_UNI, SD_BI, SD_TOKEN, SD_TRI,
    SD_CATEGORY, SD_LANGUAGE, SD_TAG, SD_QUANT, SD_LICENSE, SD_FAMILY,
    SD_COUNT
};
#define SD_VALUES SD_CATEGORY
#define SINDEX_FIELDS (SD_COUNT - SD_VALUES)

enum { SN_RATING, SN_SIZE, SN_RAM, SN_VRAM, SN_UPDATED, SINDEX_NUMS };
#define SINDEX_SORTS 4
#define SINDEX_PERMS (SINDEX_SORTS * 2 + 1)
#define SINDEX_BY_ID (SINDEX_SORTS * 2)

/* Set kinds. */
enum { SINDEX_BITS = 1, SINDEX_LIST = 2, SINDEX_TOKENS = 3 };

typedef struct sindex_span {
    uint64_t off, len;
} sindex_span;

typedef struct sindex_dict {
    uint64_t first, count; /* entries [first, first + count) of SX_ENTRIES */
    uint64_t order;        /* value dicts: first of its `count` uint32_t in SX_ORDER */
} sindex_dict;

typedef struct sindex_header {
    char magic[8];
    uint32_t version, header_size;
    uint64_t file_size;
    uint32_t body_crc;     /* zlib crc32 of bytes [header_size, file_size) */
    uint32_t n;            /* models */
    /* the cache file this index describes, as fstat shows it after it was written */
    uint64_t cache_size, cache_ino;
    int64_t cache_mtime_ns;
    sindex_span sect[SX_COUNT];
    sindex_dict dict[SD_COUNT];
    uint32_t header_crc;   /* crc32 of the header up to this field */
    uint32_t pad;
} sindex_header;

typedef struct sindex_rec {
    uint64_t text_off;     /* the model's JSON text in the cache file */
    uint64_t hay_off;      /* its haystack in SX_HAY */
    uint32_t text_len, hay_len;
    uint32_t id_off, id_len; /* its id in SX_IDS */
} sindex_rec;

typedef struct sindex_entry {
    uint64_t set_off;      /* in SX_SETS */
    uint32_t key_off, key_len; /* in SX_STRS */
    uint32_t json_len;     /* value dicts: the key as a JSON string, right after the key */
    uint32_t count;        /* members of the set */
    uint32_t kind;         /* SINDEX_BITS, SINDEX_LIST or SINDEX_TOKENS */
    uint32_t pad;
} sindex_entry;

/* Bytes a query term never holds: it is split at them (the C locale's isspace). Grams
 * holding one are not indexed. */
static inline int sindex_is_space(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Bytes of tokens: lower-case ASCII letters and digits, and every byte of a multi-byte
 * UTF-8 character. */
static inline int sindex_is_word(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* ASCII lower case, other bytes unchanged: the folding of every case-insensitive match. */
static inline unsigned char sindex_lower(unsigned char c) {
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* A set of `count` members over `n` models is a bitset when that is not larger than the
 * list. */
static inline int sindex_dense(uint64_t count, uint64_t n) {
    return count * 32 >= n && count > 0;
}

#endif
