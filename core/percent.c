/* percent.c - strict percent-decoding of URL path segments and query strings (see
 * percent.h). */
#include "percent.h"

#include <stdlib.h>
#include <string.h>

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

/* 1 when the encoded key `k` (`klen` bytes) decodes to `name`; `buf` has room for it. */
static int percent_key_is(const char *k, size_t klen, const char *name, char *buf) {
    size_t n;
    return percent_decode(k, klen, buf, &n) == 0 && n == strlen(name) && memcmp(buf, name, n) == 0;
}

int percent_query_get(const char *qs, const char *name, char **out, size_t *out_len) {
    const char *value = NULL;
    size_t vlen = 0;
    char *buf = malloc(strlen(qs) + 1);
    *out = NULL;
    if (!buf) return -2;
    for (const char *p = qs; *p;) {
        size_t plen = strcspn(p, "&");
        const char *eq = memchr(p, '=', plen);
        size_t klen = eq ? (size_t)(eq - p) : plen;
        if (percent_key_is(p, klen, name, buf)) {
            value = eq ? eq + 1 : "";
            vlen = eq ? plen - klen - 1 : 0;
        }
        p += plen + (p[plen] == '&');
    }
    if (!value || percent_decode(value, vlen, buf, out_len) != 0) {
        free(buf);
        return value ? -1 : 0;
    }
    *out = buf;
    return 1;
}
