/* header.c - HTTP response header lines: status line, "Name: value" split, Content-Range,
 * announced SHA-256 digests (see header.h). Strict where a wrong answer would corrupt a
 * resumed download or blame the wrong party for a checksum mismatch. */
#include "header.h"

#include <openssl/evp.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 tchar: the characters a field name may hold. */
static int header_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int header_blank(char c) { return c == ' ' || c == '\t'; }

int header_is_status(const char *line, size_t len) {
    return len >= 5 && memcmp(line, "HTTP/", 5) == 0;
}

int header_split(const char *line, size_t len, header_field *f) {
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    const char *colon = memchr(line, ':', len);
    if (!colon || colon == line) return -1;
    for (const char *p = line; p < colon; p++)
        if (!header_tchar((unsigned char)*p)) return -1;
    const char *v = colon + 1, *end = line + len;
    while (v < end && header_blank(*v)) v++;
    while (end > v && header_blank(end[-1])) end--;
    f->name = line;
    f->name_len = (size_t)(colon - line);
    f->value = v;
    f->value_len = (size_t)(end - v);
    return 0;
}

int header_name_is(const header_field *f, const char *name) {
    return strlen(name) == f->name_len && strncasecmp(f->name, name, f->name_len) == 0;
}

/* Reads the decimal number at *p (before `end`) into *out and moves *p past it. 0, or -1
 * when there is no digit or the number exceeds INT64_MAX. */
static int header_number(const char **p, const char *end, int64_t *out) {
    const char *s = *p;
    int64_t n = 0;
    if (s >= end || *s < '0' || *s > '9') return -1;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        int d = *s - '0';
        if (n > (INT64_MAX - d) / 10) return -1;
        n = n * 10 + d;
    }
    *p = s;
    *out = n;
    return 0;
}

/* Expects the character `c` at *p and moves past it. 0, or -1. */
static int header_expect(const char **p, const char *end, char c) {
    if (*p >= end || **p != c) return -1;
    (*p)++;
    return 0;
}

int header_content_range(const char *value, size_t len, header_range *r) {
    const char *p = value, *end = value + len;
    header_range out = {-1, -1, -1};
    if (len < 6 || strncasecmp(p, "bytes", 5) != 0 || !header_blank(p[5])) return -1;
    p += 5;
    while (p < end && header_blank(*p)) p++;
    if (p < end && *p == '*') {
        p++;
        if (header_expect(&p, end, '/') < 0 || header_number(&p, end, &out.total) < 0)
            return -1;
    } else {
        if (header_number(&p, end, &out.start) < 0 || header_expect(&p, end, '-') < 0 ||
            header_number(&p, end, &out.end) < 0 || header_expect(&p, end, '/') < 0)
            return -1;
        if (p < end && *p == '*') p++;
        else if (header_number(&p, end, &out.total) < 0) return -1;
        if (out.start > out.end || (out.total >= 0 && out.end >= out.total)) return -1;
    }
    if (p != end) return -1;
    *r = out;
    return 0;
}

/* ---- announced digests ---- */

static void header_hex(const unsigned char *d, size_t n, char *hex) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[2 * n] = '\0';
}

/* An entity tag of 64 hex digits: W/ and the quotes are optional. */
static int header_etag_sha256(const char *v, size_t len, char hex[65]) {
    if (len >= 2 && (v[0] == 'W' || v[0] == 'w') && v[1] == '/') v += 2, len -= 2;
    if (len >= 2 && v[0] == '"' && v[len - 1] == '"') v++, len -= 2;
    if (len != 64) return 0;
    for (size_t i = 0; i < 64; i++) {
        char c = v[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return 0;
        hex[i] = (char)(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
    }
    hex[64] = '\0';
    return 1;
}

/* 32 bytes in standard base64 (44 characters, one '='). */
static int header_base64_sha256(const char *v, size_t len, char hex[65]) {
    unsigned char in[45], out[36];
    if (len != 44 || v[43] != '=' || v[42] == '=') return 0;
    for (size_t i = 0; i < 43; i++) {
        char c = v[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return 0;
    }
    memcpy(in, v, 44);
    in[44] = '\0';
    if (EVP_DecodeBlock(out, in, 44) != 33) return 0;
    header_hex(out, 32, hex);
    return 1;
}

/* Looks through the comma-separated members of a digest field for `algo`=VALUE (name
 * case-insensitive, blanks around members allowed); `colons`: VALUE is :BASE64: (a
 * structured-field byte sequence). */
static int header_digest_member(const char *v, size_t len, int colons, char hex[65]) {
    const char *p = v, *end = v + len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *m = p, *mend = comma ? comma : end;
        while (m < mend && header_blank(*m)) m++;
        while (mend > m && header_blank(mend[-1])) mend--;
        size_t n = (size_t)(mend - m);
        if (n > 8 && strncasecmp(m, "sha-256=", 8) == 0) {
            const char *b = m + 8;
            size_t blen = n - 8;
            if (colons && (blen < 2 || b[0] != ':' || b[blen - 1] != ':')) return 0;
            if (colons) b++, blen -= 2;
            return header_base64_sha256(b, blen, hex);
        }
        p = comma ? comma + 1 : end;
    }
    return 0;
}

int header_sha256(const header_field *f, char hex[65]) {
    if (header_name_is(f, "x-linked-etag") || header_name_is(f, "etag"))
        return header_etag_sha256(f->value, f->value_len, hex);
    if (header_name_is(f, "repr-digest"))
        return header_digest_member(f->value, f->value_len, 1, hex);
    if (header_name_is(f, "digest"))
        return header_digest_member(f->value, f->value_len, 0, hex);
    return 0;
}
