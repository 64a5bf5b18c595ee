/* redact.c - credentials and query strings of URLs in texts and JSON documents replaced
 * by "***" (see redact.h). */
#include "redact.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* 1 when `c` ends a URL inside a text: blanks, quotes, angle brackets, control bytes. */
static int redact_url_end(unsigned char c) {
    return c <= 0x20 || c == 0x7f || c == '"' || c == '\'' || c == '<' || c == '>' ||
           c == '`';
}

/* Where the scheme of the "://" at `sep` starts, or NULL when no scheme precedes it. */
static const char *redact_scheme_start(const char *text, const char *sep) {
    const char *s = sep;
    while (s > text && (isalnum((unsigned char)s[-1]) || s[-1] == '+' || s[-1] == '-' ||
                        s[-1] == '.'))
        s--;
    while (s < sep && !isalpha((unsigned char)*s)) s++;
    return s < sep ? s : NULL;
}

typedef struct redact_out {
    char *p;
    size_t n, len;
} redact_out;

static void redact_put(redact_out *o, const char *s, size_t len) {
    size_t room = o->n - 1 - o->len;
    if (len > room) len = room;
    memcpy(o->p + o->len, s, len);
    o->len += len;
    o->p[o->len] = '\0';
}

/* Length of the URL tail after a query/fragment mark that is trailing punctuation of the
 * sentence around it (kept visible: "(see https://x/y?t=1)." keeps ")."). */
static size_t redact_trailing(const char *s, size_t len) {
    size_t k = 0;
    while (k < len && strchr(").,;:!", s[len - 1 - k])) k++;
    return k;
}

/* Copies the URL starting at `url` (authority begins at `auth`) redacted; returns the
 * first byte after it. */
static const char *redact_one(redact_out *o, const char *url, const char *auth) {
    const char *end = auth;
    while (*end && !redact_url_end((unsigned char)*end)) end++;
    size_t alen = strcspn(auth, "/?#");
    if (auth + alen > end) alen = (size_t)(end - auth);
    const char *at = NULL;
    for (const char *c = auth; c < auth + alen; c++)
        if (*c == '@') at = c;
    redact_put(o, url, (size_t)(auth - url));
    if (at) {
        redact_put(o, "***", 3);
        redact_put(o, at, (size_t)(auth + alen - at));
    } else {
        redact_put(o, auth, alen);
    }
    const char *rest = auth + alen;
    size_t plen = strcspn(rest, "?#");
    if (rest + plen >= end) {
        redact_put(o, rest, (size_t)(end - rest));
        return end;
    }
    redact_put(o, rest, plen);
    const char *mark = rest + plen;
    size_t keep = redact_trailing(mark + 1, (size_t)(end - mark - 1));
    redact_put(o, mark, 1);
    redact_put(o, "***", 3);
    redact_put(o, end - keep, keep);
    return end;
}

char *redact_text(char *out, size_t n, const char *text) {
    redact_out o = {out, n, 0};
    out[0] = '\0';
    const char *p = text ? text : "";
    for (;;) {
        const char *sep = strstr(p, "://");
        const char *url = sep ? redact_scheme_start(p, sep) : NULL;
        if (!sep) {
            redact_put(&o, p, strlen(p));
            return out;
        }
        if (!url) {
            redact_put(&o, p, (size_t)(sep + 3 - p));
            p = sep + 3;
            continue;
        }
        redact_put(&o, p, (size_t)(url - p));
        p = redact_one(&o, url, sep + 3);
    }
}

/* Room for the redaction of a text of `len` bytes: each "***" replaces at least nothing
 * and needs a "://" (3 bytes) of its own, so the text at most triples. */
static size_t redact_room(size_t len) { return 3 * len + 16; }

int redact_needed(const char *text) {
    if (!text || !strstr(text, "://")) return 0;
    size_t n = redact_room(strlen(text));
    char *buf = malloc(n);
    if (!buf) return 1;
    redact_text(buf, n, text);
    int changed = strcmp(buf, text) != 0;
    free(buf);
    return changed;
}

void redact_json(json_t *doc) {
    if (json_is_string(doc)) {
        const char *s = json_string_value(doc);
        if (!redact_needed(s)) return;
        size_t n = redact_room(strlen(s));
        char *buf = malloc(n);
        if (!buf) {
            json_string_set(doc, "***");
            return;
        }
        json_string_set(doc, redact_text(buf, n, s));
        free(buf);
        return;
    }
    size_t i;
    json_t *v;
    const char *k;
    if (json_is_array(doc))
        json_array_foreach(doc, i, v) redact_json(v);
    else if (json_is_object(doc))
        json_object_foreach(doc, k, v) redact_json(v);
}
