/* unit.c - runs the registered unit tests, one temporary directory each. */
#include "unit.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>
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

char *unit_sha256_hex(const void *data, size_t len, char hex[65]) {
    unsigned char d[32];
    unsigned int n = 0;
    EVP_Digest(data, len, d, &n, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    return hex;
}

char *unit_random_bytes(size_t len, unsigned seed) {
    char *buf = malloc(len ? len : 1);
    unsigned long long x = 0x9e3779b97f4a7c15ULL ^ seed;
    for (size_t i = 0; buf && i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (char)(x >> 24);
    }
    return buf;
}

int unit_write_file(const char *path, const void *data, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    ssize_t w = len ? write(fd, data, len) : 0;
    close(fd);
    return w == (ssize_t)len ? 0 : -1;
}

char *unit_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    for (size_t r; buf && (r = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += r;
        if (n == cap) {
            char *bigger = realloc(buf, 2 * cap + 1);
            if (!bigger) { free(buf); buf = NULL; break; }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

const char *unit_path(const char *rel) {
    static char bufs[4][1024];
    static int next;
    char *out = bufs[next++ % 4];
    snprintf(out, sizeof bufs[0], "%s/%s", unit_dir, rel);
    return out;
}

static int unit_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

const char *unit_dir_list(const char *dir) {
    static char out[4096];
    char *names[256];
    int n = 0;
    DIR *d = opendir(dir);
    if (!d) return "(none)";
    for (struct dirent *e; (e = readdir(d)) != NULL && n < 256;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], unit_cmp);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        size_t used = strlen(out);
        snprintf(out + used, sizeof out - used, "%s%s", i ? " " : "", names[i]);
        free(names[i]);
    }
    return out;
}

long long unit_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *unit_data_path(const char *rel) {
    static char path[1024];
    const char *dir = getenv("MG_TEST_DATA");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/data", rel);
    return path;
}

/* Returns a new reference to `v` with every {"$repeat": ...} object expanded. */
static json_t *unit_expand(json_t *v) {
    json_t *rep = json_object_get(v, "$repeat");
    if (rep) {
        json_int_t n = json_integer_value(json_object_get(v, "times"));
        if (!json_is_string(rep) || json_is_true(json_object_get(v, "array"))) {
            json_t *arr = json_array();
            for (json_int_t i = 0; i < n; i++) json_array_append_new(arr, unit_expand(rep));
            return arr;
        }
        const char *pre = json_string_value(json_object_get(v, "prefix"));
        const char *suf = json_string_value(json_object_get(v, "suffix"));
        size_t unit = json_string_length(rep), a = pre ? strlen(pre) : 0, b = suf ? strlen(suf) : 0;
        char *buf = malloc(a + unit * (size_t)n + b + 1);
        memcpy(buf, pre ? pre : "", a);
        for (json_int_t i = 0; i < n; i++)
            memcpy(buf + a + unit * (size_t)i, json_string_value(rep), unit);
        memcpy(buf + a + unit * (size_t)n, suf ? suf : "", b + 1);
        json_t *out = json_stringn(buf, a + unit * (size_t)n + b);
        free(buf);
        return out;
    }
    if (json_is_object(v)) {
        json_t *out = json_object(), *item;
        const char *key;
        json_object_foreach(v, key, item) json_object_set_new(out, key, unit_expand(item));
        return out;
    }
    if (json_is_array(v)) {
        json_t *out = json_array(), *item;
        size_t i;
        json_array_foreach(v, i, item) json_array_append_new(out, unit_expand(item));
        return out;
    }
    return json_incref(v);
}

json_t *unit_cases(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "cases/%s", name);
    char *text = unit_read_file(unit_data_path(rel), NULL);
    json_t *out = json_array();
    if (!text) {
        unit_fail(__FILE__, __LINE__, "cannot read the case table %s", unit_data_path(rel));
        return out;
    }
    int line = 0;
    for (char *p = text, *next; p && *p; p = next) {
        next = strchr(p, '\n');
        if (next) *next++ = '\0';
        line++;
        while (*p == ' ' || *p == '\t') p++;
        if (!*p || *p == '#') continue;
        json_error_t jerr;
        json_t *c = json_loads(p, JSON_ALLOW_NUL, &jerr);
        if (!json_is_object(c)) {
            unit_fail(__FILE__, __LINE__, "%s:%d is not a JSON object: %s", name, line, jerr.text);
            json_decref(c);
            continue;
        }
        json_t *x = unit_expand(c);
        json_decref(c);
        json_object_set_new(x, "line", json_integer(line));
        json_array_append_new(out, x);
    }
    free(text);
    return out;
}

const char *unit_case_at(const char *table, json_t *c) {
    static char at[128];
    snprintf(at, sizeof at, "%s:%lld", table,
             (long long)json_integer_value(json_object_get(c, "line")));
    return at;
}

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
