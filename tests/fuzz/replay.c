/* replay.c - runs a fuzz target without libFuzzer: every file named on the command line, or
 * found directly in a folder named there, is passed once to LLVMFuzzerTestOneInput. The
 * normal and the sanitizer builds link each target with it, so that the seeds and every kept
 * crash input (tests/fuzz/<target>/regressions/) are replayed by gcc builds too.
 * Exits 1 when no input was found (a misconfigured test), else 0; a broken invariant aborts. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Reads `path` whole; returns a malloc'd buffer of exactly *len bytes (at least 1 allocated)
 * the caller frees, or NULL. */
static uint8_t *replay_read(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *p = realloc(buf, cap);
            if (!p) break;
            buf = p;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    fclose(f);
    /* An exact-size copy, so that a read past the input's end is caught by ASan. */
    uint8_t *exact = buf ? malloc(n ? n : 1) : NULL;
    if (exact) memcpy(exact, buf, n);
    free(buf);
    *len = n;
    return exact;
}

static int replay_file(const char *path) {
    size_t len;
    uint8_t *data = replay_read(path, &len);
    if (!data) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        exit(1);
    }
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 1;
}

/* Replays the plain files of `dir` (dot-files skipped) in name order; returns the count. */
static int replay_dir(const char *dir) {
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort), count = 0;
    if (n < 0) return 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, list[i]->d_name);
        if (list[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode))
            count += replay_file(path);
        free(list[i]);
    }
    free(list);
    return count;
}

int main(int argc, char **argv) {
    int total = 0;
    LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) continue; /* an absent regressions folder is empty */
        int n = S_ISDIR(st.st_mode) ? replay_dir(argv[i]) : replay_file(argv[i]);
        printf("replayed %d input(s) from %s\n", n, argv[i]);
        total += n;
    }
    if (total == 0) {
        fprintf(stderr, "replay: no inputs found\n");
        return 1;
    }
    printf("%d input(s) replayed, every invariant held\n", total);
    return 0;
}
