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

/* The length of the control character at `s` (UTF-8): 1 for C0 and DEL, 2 for C1 (U+0080 to
 * U+009F), 0 for anything else. */
static size_t ctl_control_len(const unsigned char *s) {
    if (*s < 0x20 || *s == 0x7f) return 1;
    if (s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f) return 2;
    return 0;
}

/* Rewrites the string value `v` with '?' for each control character, when it has any. */
static void ctl_printable_string(json_t *v) {
    const unsigned char *s = (const unsigned char *)json_string_value(v);
    size_t len = json_string_length(v), i = 0, k, o = 0;
    while (i < len && !ctl_control_len(s + i)) i++;
    if (i == len) return;
    char *out = malloc(len + 1);
    if (!out) return;
    for (i = 0; i < len; i += k ? k : 1) {
        k = ctl_control_len(s + i);
        out[o++] = k ? '?' : (char)s[i];
    }
    json_string_setn(v, out, o);
    free(out);
}

void ctl_printable(json_t *v) {
    const char *key;
    json_t *item;
    size_t i;
    if (json_is_string(v)) {
        ctl_printable_string(v);
    } else if (json_is_object(v)) {
        json_object_foreach(v, key, item) ctl_printable(item);
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item) ctl_printable(item);
    }
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
