/* format.c - mgctl's human output: sizes, durations, fields of answers and plain tables. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgctl.h"

char *ctl_bytes(double bytes, char *out, size_t n) {
    static const char *const units[] = {"B", "KB", "MB", "GB", "TB", "PB"};
    int u = 0;
    while (bytes >= 1000 && u < 5) {
        bytes /= 1000;
        u++;
    }
    snprintf(out, n, u == 0 ? "%.0f %s" : bytes < 10 ? "%.2f %s" : "%.1f %s", bytes, units[u]);
    return out;
}

char *ctl_duration(long long s, char *out, size_t n) {
    if (s < 0) s = 0;
    if (s >= 3600)
        snprintf(out, n, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(out, n, "%lld:%02lld", s / 60, s % 60);
    return out;
}

const char *ctl_str(json_t *obj, const char *key, const char *def) {
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : def;
}

/* The display width of `s`: its UTF-8 characters (continuation bytes do not count). */
static int ctl_width(const char *s) {
    int w = 0;
    for (; *s; s++) w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

void ctl_table(const char *const *heads, int cols, const char **cells, int nrows) {
    int *width = calloc((size_t)cols, sizeof *width);
    if (!width) return;
    for (int c = 0; c < cols; c++) width[c] = ctl_width(heads[c]);
    for (int r = 0; r < nrows; r++)
        for (int c = 0; c < cols; c++) {
            int w = ctl_width(cells[r * cols + c] ? cells[r * cols + c] : "");
            if (w > width[c]) width[c] = w;
        }
    for (int r = -1; r < nrows; r++) {
        for (int c = 0; c < cols; c++) {
            const char *s = r < 0 ? heads[c] : cells[r * cols + c] ? cells[r * cols + c] : "";
            int pad = c == cols - 1 ? 0 : width[c] - ctl_width(s) + 2;
            printf("%s%*s", s, pad, "");
        }
        putchar('\n');
    }
    free(width);
}
