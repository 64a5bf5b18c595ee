/* fuzz.h - what every fuzz target shares: the libFuzzer entry points, FUZZ_CHECK for the
 * invariants a target asserts (a broken one aborts, so libFuzzer keeps the input as a crash
 * and the replay driver fails), and small input helpers. */
#ifndef MG_FUZZ_H
#define MG_FUZZ_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_error.h"
#include "search.h"

/* Called once per input by libFuzzer (or by replay.c); always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Called once before the first input (every target defines it). */
int LLVMFuzzerInitialize(int *argc, char ***argv);

void fuzz_fail(const char *file, int line, const char *what) __attribute__((noreturn));

#define FUZZ_CHECK(cond)                                                  \
    do {                                                                  \
        if (!(cond)) fuzz_fail(__FILE__, __LINE__, #cond);                \
    } while (0)

/* A malloc'd copy of the input cut at its first NUL byte, NUL-terminated (caller frees);
 * aborts when memory runs out. */
char *fuzz_cstring(const uint8_t *data, size_t size);

/* 1 when `s` (of `len` bytes) holds no control character (< 0x20 or 0x7f): text that can go
 * into a log line or a JSON message without forging lines. */
int fuzz_printable(const char *s, size_t len);

/* Silences the core's log records (they are still formatted). */
void fuzz_quiet(void);

/* Writes `gallery` (borrowed, as gallery_parse returns it) as a cache file into a fresh
 * temporary folder (under /dev/shm when it exists), loads a search index from it and removes
 * the folder again (the index keeps its fd open). Returns an owned index, or NULL and err. */
search_index *fuzz_index(json_t *gallery, mg_error *err);

#endif
