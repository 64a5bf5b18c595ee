/* test_metrics.c - the shared counters file: processes (and threads) adding to the same and
 * to new names at once lose no count and make no duplicate slot, names too long are ignored,
 * and a file that is not ours is started afresh. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "metrics.h"
#include "unit.h"

#define REL "run/test.metrics"

typedef struct seen {
    char names[64][METRICS_NAME_MAX + 1];
    uint64_t values[64];
    int n;
} seen;

static void collect(void *ctx, const char *name, uint64_t value) {
    seen *s = ctx;
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0) unit_fail(__FILE__, __LINE__, "two slots: %s", name);
    if (s->n == 64) return;
    snprintf(s->names[s->n], sizeof s->names[0], "%s", name);
    s->values[s->n++] = value;
}

static uint64_t value_of(const seen *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0) return s->values[i];
    return 0;
}

static void *adder(void *arg) {
    (void)arg;
    for (int i = 0; i < 1000; i++) metrics_add("threads_total", 1);
    return NULL;
}

UNIT_TEST(processes_and_threads_add_up) {
    mg_config cfg;
    mg_error err;
    CHECK_INT(config_load(&cfg, unit_tmpdir(), &err), 0);
    enum { PROCS = 6, ADDS = 2000 };
    for (int p = 0; p < PROCS; p++) {
        if (fork() == 0) {
            if (metrics_open(&cfg, REL, &err) != 0) _exit(1);
            for (int i = 0; i < ADDS; i++) {
                metrics_add("shared_total", 1);
                metrics_addf(2, "per_label_total{n=\"%d\"}", i % 5);
            }
            _exit(0);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int st = 0;
        wait(&st);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    CHECK_INT(metrics_open(&cfg, REL, &err), 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, adder, NULL);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    char longname[METRICS_NAME_MAX + 10];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    metrics_add(longname, 1);

    seen s = {.n = 0};
    metrics_read(&cfg, REL, collect, &s);
    CHECK_INT(s.n, 7);
    CHECK_INT(value_of(&s, "shared_total"), PROCS * ADDS);
    CHECK_INT(value_of(&s, "per_label_total{n=\"3\"}"), PROCS * ADDS / 5 * 2);
    CHECK_INT(value_of(&s, "threads_total"), 4000);
    metrics_close();
    config_free(&cfg);
}

UNIT_TEST(foreign_file_is_started_afresh) {
    mg_config cfg;
    mg_error err;
    CHECK_INT(config_load(&cfg, unit_tmpdir(), &err), 0);
    char path[MG_PATH_MAX];
    FILE *f = fopen(config_path(&cfg, path, "run/other.metrics"), "w");
    if (f) {
        fputs("not a counters file", f);
        fclose(f);
    }
    seen s = {.n = 0};
    metrics_read(&cfg, "run/other.metrics", collect, &s);
    CHECK_INT(s.n, 0);
    metrics_read(&cfg, "run/absent.metrics", collect, &s);
    CHECK_INT(s.n, 0);
    if (fork() == 0) {
        if (metrics_open(&cfg, "run/other.metrics", &err) != 0) _exit(1);
        metrics_add("fresh_total", 5);
        _exit(0);
    }
    int st = 0;
    wait(&st);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    metrics_read(&cfg, "run/other.metrics", collect, &s);
    CHECK_INT(s.n, 1);
    CHECK_INT(value_of(&s, "fresh_total"), 5);
    config_free(&cfg);
}
