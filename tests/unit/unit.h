/* unit.h - a minimal test harness: UNIT_TEST(name) functions, CHECK* assertions that report
 * file:line and go on, and a main that runs them and prints "N passed, N failed". */
#ifndef MG_UNIT_H
#define MG_UNIT_H

#include <stdio.h>
#include <string.h>

typedef void (*unit_fn)(void);
void unit_register(const char *name, unit_fn fn);
void unit_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A fresh empty temporary directory for the current test; removed at exit. */
const char *unit_tmpdir(void);

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
