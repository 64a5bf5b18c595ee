/* unit.h - a minimal test harness: UNIT_TEST(name) functions, CHECK* assertions that report
 * file:line and go on, and a main that runs them and prints "N passed, N failed". */
#ifndef MG_UNIT_H
#define MG_UNIT_H

#include <jansson.h>
#include <stdio.h>
#include <string.h>

typedef void (*unit_fn)(void);
void unit_register(const char *name, unit_fn fn);
void unit_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A fresh empty temporary directory for the current test; removed at exit. */
const char *unit_tmpdir(void);

/* ---- helpers for file and download tests ---- */

/* The lower-case hex SHA-256 of `len` bytes of `data` into hex (65 bytes). Returns hex. */
char *unit_sha256_hex(const void *data, size_t len, char hex[65]);
/* `len` bytes of a fixed pseudo-random sequence seeded by `seed` (caller frees). */
char *unit_random_bytes(size_t len, unsigned seed);
/* Writes `len` bytes to `path` (created or truncated). 0, or -1. */
int unit_write_file(const char *path, const void *data, size_t len);
/* Reads the whole file at `path` (caller frees; NUL-terminated), its size in *len (may be
 * NULL). NULL when it cannot be read. */
char *unit_read_file(const char *path, size_t *len);
/* `path` joined under the test's directory, in one of a few rotating static buffers. */
const char *unit_path(const char *rel);
/* The names in directory `dir` (not . and ..), sorted, joined by one space, into a static
 * buffer ("" when empty, "(none)" when it cannot be read). */
const char *unit_dir_list(const char *dir);
/* The case table tests/data/cases/<name> (see tests/data/cases/README.md): one JSON object
 * per line, blank lines and '#' comments skipped, each case given "line" (its line number)
 * and every {"$repeat": v, "times": n} expanded (a string: prefix + v n times + suffix; any
 * other value, or a string with "array": true: an array of n copies). Returns a new
 * reference to the array of cases; a line that is not a JSON object fails the test and is
 * left out. */
json_t *unit_cases(const char *name);
/* "<table>:<line>" of a case, for messages (static buffer). */
const char *unit_case_at(const char *table, json_t *c);

/* Milliseconds of the monotonic clock. */
long long unit_now_ms(void);
/* The unit test's data directory (tests/data, or $MG_TEST_DATA) joined with `rel`. */
const char *unit_data_path(const char *rel);

#define UNIT_TEST(name)                                                         \
    static void name(void);                                                     \
    __attribute__((constructor)) static void name##_register(void) {            \
        unit_register(#name, name);                                             \
    }                                                                           \
    static void name(void)

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond)) unit_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);         \
    } while (0)
#define CHECK_INT(a, b)                                                         \
    do {                                                                        \
        long long a_ = (long long)(a), b_ = (long long)(b);                     \
        if (a_ != b_)                                                           \
            unit_fail(__FILE__, __LINE__, "%s == %lld, expected %lld", #a, a_, b_); \
    } while (0)
#define CHECK_STR(a, b)                                                         \
    do {                                                                        \
        const char *a_ = (a), *b_ = (b);                                        \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                  \
            unit_fail(__FILE__, __LINE__, "%s == \"%s\", expected \"%s\"", #a,  \
                      a_ ? a_ : "(null)", b_ ? b_ : "(null)");                  \
    } while (0)
#define CHECK_CONTAINS(hay, needle)                                             \
    do {                                                                        \
        const char *h_ = (hay), *n_ = (needle);                                 \
        if (!h_ || !strstr(h_, n_))                                             \
            unit_fail(__FILE__, __LINE__, "%s == \"%s\" lacks \"%s\"", #hay,    \
                      h_ ? h_ : "(null)", n_);                                  \
    } while (0)

#endif
