/* header.c - HTTP response header lines: status line, "Name: value" split, Content-Range
 * (see header.h). Strict where a wrong answer would corrupt a resumed download. */
#include "header.h"

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
