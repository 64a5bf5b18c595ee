/* answer_cache.h - a worker's few most recent facet answers, by query string. Facet counts
 * read every value's set of models, so a repeated request (a UI asks the same facets each
 * time a filter is chosen) is answered from here. Answers belong to one index generation and
 * are dropped with it. */
#ifndef MG_ANSWER_CACHE_H
#define MG_ANSWER_CACHE_H

#include <stddef.h>

#define ACACHE_SLOTS 32
#define ACACHE_ANSWER_MAX (64 * 1024) /* larger answers are not kept */

typedef struct acache_slot {
    char *key;                  /* owned query string, NULL when free */
    char *data;                 /* owned answer */
    size_t len;
    unsigned long long used;    /* the tick of its last use */
} acache_slot;

typedef struct acache {
    unsigned long gen;          /* the index generation the answers belong to */
    unsigned long long tick;
    acache_slot slot[ACACHE_SLOTS];
} acache;

/* The answer kept for `key` in generation `gen`, or NULL. Borrowed: valid until the next
 * acache_put or acache_free. */
const acache_slot *acache_get(acache *c, unsigned long gen, const char *key);

/* Keeps a copy of `len` bytes of `data` for `key` in generation `gen`, replacing the least
 * recently used answer (all of them when the generation changed). */
void acache_put(acache *c, unsigned long gen, const char *key, const char *data, size_t len);

void acache_free(acache *c);

#endif
