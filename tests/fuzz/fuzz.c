/* fuzz.c - helpers shared by the fuzz targets (see fuzz.h). */
#include "fuzz.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gallery.h"
#include "log.h"

void fuzz_fail(const char *file, int line, const char *what) {
    fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
    abort();
}

char *fuzz_cstring(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t len = nul ? (size_t)(nul - data) : size;
    char *s = malloc(len + 1);
    if (!s) abort();
    memcpy(s, data, len);
    s[len] = '\0';
    return s;
}

int fuzz_printable(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return 0;
    return 1;
}

void fuzz_quiet(void) { log_set_fd(-1); }

/* Removes the plain files of `dir`, then `dir`. */
static void fuzz_rmdir(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[512];
    while (d && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        unlink(path);
    }
    if (d) closedir(d);
    rmdir(dir);
}

search_index *fuzz_index(json_t *gallery, mg_error *err) {
    char dir[256], cache[300];
    snprintf(dir, sizeof dir, "%s/mg-fuzz-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(dir)) {
        mg_error_set(err, 500, "io_error", NULL, "cannot create a temporary folder");
        return NULL;
    }
    snprintf(cache, sizeof cache, "%s/gallery_cache.json", dir);
    search_index *idx = NULL;
    if (gallery_cache_write(cache, gallery, NULL, err) == 0) idx = search_index_load(cache, err);
    fuzz_rmdir(dir);
    return idx;
}
