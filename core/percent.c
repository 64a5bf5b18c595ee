/* percent.c - strict percent-decoding of URL path segments (see percent.h). */
#include "percent.h"

static int percent_hex(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int percent_decode(const char *in, size_t len, char *out, size_t *out_len) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] != '%') {
            out[o++] = in[i];
            continue;
        }
        if (i + 2 >= len) return -1;
        int hi = percent_hex((unsigned char)in[i + 1]);
        int lo = percent_hex((unsigned char)in[i + 2]);
        if (hi < 0 || lo < 0) return -1;
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[o] = '\0';
    *out_len = o;
    return 0;
}
