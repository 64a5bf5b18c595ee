/* unit.c - runs the registered unit tests, one temporary directory each. */
#include "unit.h"

#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#define UNIT_MAX 256

static struct { const char *name; unit_fn fn; } unit_tests[UNIT_MAX];
static int unit_count, unit_failures_now;
static char unit_dir[256];

void unit_register(const char *name, unit_fn fn) {
    if (unit_count < UNIT_MAX) {
        unit_tests[unit_count].name = name;
        unit_tests[unit_count].fn = fn;
        unit_count++;
    }
}

void unit_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "  FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    unit_failures_now++;
}

const char *unit_tmpdir(void) { return unit_dir; }

static void unit_rmrf(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void) {
    int passed = 0, failed = 0;
    for (int i = 0; i < unit_count; i++) {
        snprintf(unit_dir, sizeof unit_dir, "/tmp/mg-unit-XXXXXX");
        if (!mkdtemp(unit_dir)) { perror("mkdtemp"); return 2; }
        unit_failures_now = 0;
        unit_tests[i].fn();
        unit_rmrf(unit_dir);
        printf("%s %s\n", unit_failures_now ? "FAIL" : "ok  ", unit_tests[i].name);
        if (unit_failures_now) failed++; else passed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
