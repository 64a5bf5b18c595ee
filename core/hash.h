/* hash.h - FNV-1a, the 32-bit string hash of the core's open-addressing tables: the gallery's
 * ids while a document is validated, the index's keys while it is built. Not for anything an
 * attacker could aim collisions at to slow a long-running process: both tables live for one
 * build of trusted size and grow at half full. */
#ifndef MG_HASH_H
#define MG_HASH_H

#include <stddef.h>
#include <stdint.h>

/* The FNV-1a hash of `len` bytes of `s`. */
static inline uint32_t hash_fnv1a(const char *s, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

#endif
