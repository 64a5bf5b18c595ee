/* fuzz_header.c - HTTP response header lines, Content-Range and announced SHA-256 digests
 * (core/header.c, what the installer's download runs on every header line a server sends). The input is split into
 * lines as libcurl hands them over; each line, and each line's bytes taken as a bare value,
 * are parsed. Invariants: a field's name is a non-empty RFC 9110 token and its value lies
 * inside the line without surrounding blanks; a Content-Range parse never yields start > end,
 * a negative position or end >= total, prints back to text that parses to the same range,
 * and agrees with an independent regular-expression reading of the grammar; an announced
 * digest comes only from the four fields that announce one, as 64 lower-case hex digits, and
 * an entity tag's is its own digits. */
#include <errno.h>
#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "header.h"

static regex_t header_re;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    if (regcomp(&header_re,
                "^[Bb][Yy][Tt][Ee][Ss][ \t]+(([0-9]+)-([0-9]+)/([0-9]+|[*])|[*]/([0-9]+))$",
                REG_EXTENDED) != 0)
        abort();
    return 0;
}

/* The number of the regex group `m` in `s`; -1 when it is not a number that fits. */
static int64_t header_group(const char *s, regmatch_t m) {
    char buf[64];
    if (m.rm_so < 0 || s[m.rm_so] == '*') return -1;
    while (m.rm_eo - m.rm_so > 1 && s[m.rm_so] == '0') m.rm_so++; /* leading zeros */
    size_t n = (size_t)(m.rm_eo - m.rm_so);
    if (n >= sizeof buf) return -2; /* more than 63 digits: beyond INT64_MAX */
    memcpy(buf, s + m.rm_so, n);
    buf[n] = '\0';
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    return errno == ERANGE ? -2 : (int64_t)v;
}

/* What the grammar says of `value`: 0 and *r when it is a valid Content-Range, else -1. */
static int header_oracle(const char *value, size_t len, header_range *r) {
    regmatch_t m[6];
    if (memchr(value, '\0', len)) return -1;
    char *s = strndup(value, len);
    if (!s) abort();
    int rc = -1;
    if (regexec(&header_re, s, 6, m, 0) == 0) {
        if (m[5].rm_so >= 0) {
            r->start = r->end = -1;
            r->total = header_group(s, m[5]);
            rc = r->total >= 0 ? 0 : -1;
        } else {
            r->start = header_group(s, m[2]);
            r->end = header_group(s, m[3]);
            r->total = header_group(s, m[4]);
            int overflow = r->start == -2 || r->end == -2 || r->total == -2;
            rc = !overflow && r->start <= r->end && (r->total < 0 || r->end < r->total) ? 0 : -1;
        }
    }
    free(s);
    return rc;
}

static void header_check_range(const char *value, size_t len) {
    header_range r, o, again;
    int rc = header_content_range(value, len, &r);
    FUZZ_CHECK(rc == header_oracle(value, len, &o));
    if (rc != 0) return;
    FUZZ_CHECK(r.start == o.start && r.end == o.end && r.total == o.total);
    if (r.start < 0) {
        FUZZ_CHECK(r.start == -1 && r.end == -1 && r.total >= 0);
    } else {
        FUZZ_CHECK(r.start <= r.end);
        FUZZ_CHECK(r.total == -1 || r.end < r.total);
    }
    char text[96];
    if (r.start < 0)
        snprintf(text, sizeof text, "bytes */%" PRId64, r.total);
    else if (r.total < 0)
        snprintf(text, sizeof text, "bytes %" PRId64 "-%" PRId64 "/*", r.start, r.end);
    else
        snprintf(text, sizeof text, "bytes %" PRId64 "-%" PRId64 "/%" PRId64, r.start, r.end,
                 r.total);
    FUZZ_CHECK(header_content_range(text, strlen(text), &again) == 0);
    FUZZ_CHECK(again.start == r.start && again.end == r.end && again.total == r.total);
}

static int header_is_tchar(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void header_check_digest(const header_field *f) {
    char hex[65];
    if (!header_sha256(f, hex)) return;
    int etag = header_name_is(f, "etag") || header_name_is(f, "x-linked-etag");
    FUZZ_CHECK(etag || header_name_is(f, "repr-digest") || header_name_is(f, "digest"));
    FUZZ_CHECK(strlen(hex) == 64 && strspn(hex, "0123456789abcdef") == 64);
    if (!etag) return;
    const char *v = f->value;
    size_t n = f->value_len;
    if (n >= 2 && (v[0] == 'W' || v[0] == 'w') && v[1] == '/') v += 2, n -= 2;
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') v++, n -= 2;
    FUZZ_CHECK(n == 64 && strncasecmp(v, hex, 64) == 0);
}

static void header_check_line(const char *line, size_t len) {
    header_field f;
    FUZZ_CHECK(header_is_status(line, len) == (len >= 5 && memcmp(line, "HTTP/", 5) == 0));
    if (header_split(line, len, &f) != 0) return;
    FUZZ_CHECK(f.name == line && f.name_len > 0 && f.name_len < len);
    for (size_t i = 0; i < f.name_len; i++) FUZZ_CHECK(header_is_tchar((unsigned char)line[i]));
    FUZZ_CHECK(line[f.name_len] == ':');
    FUZZ_CHECK(f.value >= line + f.name_len + 1 && f.value + f.value_len <= line + len);
    if (f.value_len > 0) {
        FUZZ_CHECK(f.value[0] != ' ' && f.value[0] != '\t');
        FUZZ_CHECK(f.value[f.value_len - 1] != ' ' && f.value[f.value_len - 1] != '\t');
        FUZZ_CHECK(f.value[f.value_len - 1] != '\n');
    }
    header_check_digest(&f);
    int is_cr = f.name_len == 13 && strncasecmp(line, "content-range", 13) == 0;
    FUZZ_CHECK(header_name_is(&f, "content-range") == is_cr);
    if (is_cr) header_check_range(f.value, f.value_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        /* A copy of exactly the line, so that a read past it is caught. */
        char *line = malloc(len ? len : 1);
        if (!line) abort();
        memcpy(line, p, len);
        header_check_line(line, len);
        header_check_range(line, len);
        free(line);
        p += len;
    }
    return 0;
}
