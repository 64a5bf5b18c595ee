/* gallery_stream.c - a tokenizer over a gallery file that hands out the elements of its
 * "models" array one at a time (gallery_stream.h).
 *
 * The file is read in chunks into a buffer that keeps only the value being scanned. The
 * tokenizer knows strings, escapes and brackets, enough to find where a value ends; jansson
 * parses each value found (the other top-level values at open, each model on demand), which
 * checks the rest. Positions are byte offsets; an error's line and column are counted from
 * the start of the file only when one is reported, as jansson counts them (a column is the
 * number of characters read on the line), so that it names the place jansson would name for
 * the whole file. Open reads the file once to check the top level and find "models"; the
 * models are then read a second time from there. */
#include "gallery_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GS_CHUNK (256u * 1024)
#define GS_DEPTH_MAX 2048 /* jansson's own limit */

typedef struct gs_pos {
    unsigned long long off; /* file offset */
} gs_pos;

struct gallery_stream {
    int fd;
    char *path;
    char *buf;
    size_t pos, end, cap;   /* unread bytes are buf[pos, end) */
    size_t mark;            /* bytes from buf[mark] on are kept; SIZE_MAX: none */
    unsigned long long base; /* file offset of buf[0] */
    int eof;
    json_t *version, *generated;
    gs_pos models;          /* where the models array starts */
    size_t index;           /* of the next element */
    int done;               /* the array's ']' was read */
    char *text;             /* the last element's compact text */
    size_t text_cap;
};

/* ---- reading ---------------------------------------------------------------------- */

static int gs_io_error(gallery_stream *gs, mg_error *err) {
    return mg_error_set(err, 500, "io_error", NULL, "cannot read %s: %s", gs->path,
                        strerror(errno));
}

/* Reads more of the file. 1 when bytes came, 0 at the end, -1 on a read error. */
static int gs_fill(gallery_stream *gs) {
    size_t keep = gs->mark != SIZE_MAX ? gs->mark : gs->pos;
    memmove(gs->buf, gs->buf + keep, gs->end - keep);
    gs->base += keep;
    gs->end -= keep;
    gs->pos -= keep;
    if (gs->mark != SIZE_MAX) gs->mark = 0;
    if (gs->cap - gs->end < GS_CHUNK / 2) {
        char *b = realloc(gs->buf, gs->cap * 2);
        if (!b) return -1;
        gs->buf = b;
        gs->cap *= 2;
    }
    for (;;) {
        ssize_t r = read(gs->fd, gs->buf + gs->end, gs->cap - gs->end);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) gs->eof = 1;
        gs->end += (size_t)r;
        return r > 0;
    }
}

/* The next byte, not consumed; -1 at the end of the file, -2 on a read error. */
static int gs_peek(gallery_stream *gs) {
    while (gs->pos == gs->end) {
        if (gs->eof) return -1;
        int r = gs_fill(gs);
        if (r < 0) return -2;
    }
    return (unsigned char)gs->buf[gs->pos];
}

/* Consumes the byte gs_peek returned. */
static void gs_advance(gallery_stream *gs) { gs->pos++; }

static void gs_skip_ws(gallery_stream *gs) {
    int c;
    while ((c = gs_peek(gs)) == ' ' || c == '\t' || c == '\n' || c == '\r') gs_advance(gs);
}

static gs_pos gs_here(const gallery_stream *gs) { return (gs_pos){gs->base + gs->pos}; }

/* ---- errors ----------------------------------------------------------------------- */

/* The line and column of file offset `off` (the characters read on its line before it),
 * counted from the start of the file. Only for error messages. */
static void gs_linecol(gallery_stream *gs, unsigned long long off, int *line, int *col) {
    char buf[1 << 14];
    unsigned long long at = 0;
    *line = 1;
    *col = 0;
    while (at < off) {
        ssize_t n = pread(gs->fd, buf, off - at < sizeof buf ? (size_t)(off - at) : sizeof buf,
                          (off_t)at);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        for (ssize_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)buf[i];
            if (c == '\n') ++*line, *col = 0;
            else if ((c & 0xC0) != 0x80) ++*col; /* the first byte of a character */
        }
        at += (unsigned long long)n;
    }
}

/* "not valid JSON" at the current position (the offending byte `c` consumed first). */
static int gs_syntax(gallery_stream *gs, int c, const char *what, mg_error *err) {
    if (c == -2) return gs_io_error(gs, err);
    char near[16];
    if (c == -1) {
        snprintf(near, sizeof near, "end of file");
    } else {
        gs_advance(gs);
        snprintf(near, sizeof near, c >= 0x20 && c < 0x7f ? "'%c'" : "byte 0x%02x", c);
    }
    int line, col;
    gs_linecol(gs, gs->base + gs->pos, &line, &col);
    return mg_error_set(err, 500, "invalid_gallery", NULL,
                        "%s: not valid JSON at line %d, column %d: %s near %s", gs->path, line,
                        col, what, near);
}

/* jansson's error for a value that starts at `at`, placed in the file. */
static int gs_value_error(gallery_stream *gs, gs_pos at, const json_error_t *jerr, mg_error *err) {
    int aline, acol;
    gs_linecol(gs, at.off, &aline, &acol);
    int line = aline + jerr->line - 1;
    int col = jerr->line <= 1 ? acol + jerr->column : jerr->column;
    return mg_error_set(err, 500, "invalid_gallery", NULL,
                        "%s: not valid JSON at line %d, column %d: %s", gs->path, line, col,
                        jerr->text);
}

/* ---- finding the end of a value --------------------------------------------------- */

static int gs_scan_string(gallery_stream *gs, mg_error *err) {
    gs_advance(gs); /* the opening quote */
    for (;;) {
        int c = gs_peek(gs);
        if (c < 0) return gs_syntax(gs, c, "premature end of input in a string", err);
        gs_advance(gs);
        if (c == '"') return 0;
        if (c == '\\') {
            c = gs_peek(gs);
            if (c < 0) return gs_syntax(gs, c, "premature end of input in a string", err);
            gs_advance(gs);
        }
    }
}

/* Scanner state of gs_scan_composite across buffer refills. */
typedef struct gs_scan {
    char stack[GS_DEPTH_MAX]; /* the closing bracket each open one needs */
    int depth, in_string, escaped;
} gs_scan;

/* Bytes the scanner stops at: 1 in a string ('"', '\\'), 2 outside ('"', brackets). */
static const unsigned char gs_class[256] = {
    ['"'] = 3, ['\\'] = 1, ['{'] = 2, ['}'] = 2, ['['] = 2, [']'] = 2,
};

/* Scans buffered bytes; 1 when the value ended, 0 when more bytes are needed, -1 on a
 * bracket that does not match (gs->pos then at it). Kept tight: it reads every model byte,
 * skipping over the bytes that change nothing. */
static int gs_scan_bytes(gallery_stream *gs, gs_scan *s) {
    const unsigned char *p = (const unsigned char *)gs->buf + gs->pos;
    const unsigned char *end = (const unsigned char *)gs->buf + gs->end;
    int rc = 0;
    while (p < end) {
        if (s->in_string) {
            if (s->escaped) {
                s->escaped = 0;
                p++;
                continue;
            }
            while (p < end && !(gs_class[*p] & 1)) p++;
            if (p == end) break;
            if (*p == '\\') s->escaped = 1;
            else s->in_string = 0;
            p++;
            continue;
        }
        while (p < end && !(gs_class[*p] & 2)) p++;
        if (p == end) break;
        unsigned char c = *p;
        if (c == '"') {
            s->in_string = 1;
        } else if (c == '{' || c == '[') {
            if (s->depth == GS_DEPTH_MAX) { rc = -1; break; }
            s->stack[s->depth++] = c == '{' ? '}' : ']';
        } else if (c != s->stack[s->depth - 1]) {
            rc = -1;
            break;
        } else if (--s->depth == 0) {
            rc = 1;
        }
        p++;
        if (rc) break;
    }
    gs->pos = (size_t)((const char *)p - gs->buf);
    return rc;
}

/* An object or array: strings skipped, brackets matched. */
static int gs_scan_composite(gallery_stream *gs, mg_error *err) {
    gs_scan s;
    s.depth = s.in_string = s.escaped = 0;
    for (;;) {
        int c = gs_peek(gs);
        if (c < 0)
            return gs_syntax(gs, c, s.in_string ? "premature end of input in a string"
                                    : s.depth && s.stack[s.depth - 1] == '}' ? "'}' expected"
                                                                             : "']' expected", err);
        int rc = gs_scan_bytes(gs, &s);
        if (rc == 1) return 0;
        if (rc < 0)
            return gs_syntax(gs, c = (unsigned char)gs->buf[gs->pos],
                             s.depth == GS_DEPTH_MAX ? "maximum parsing depth reached"
                             : s.stack[s.depth - 1] == '}' ? "'}' expected" : "']' expected", err);
    }
}

/* Any value: its end is found, nothing is checked beyond the tokens' shapes. */
static int gs_scan_value(gallery_stream *gs, mg_error *err) {
    int c = gs_peek(gs);
    if (c == '"') return gs_scan_string(gs, err);
    if (c == '{' || c == '[') return gs_scan_composite(gs, err);
    if (c < 0 || c == ',' || c == ':' || c == ']' || c == '}')
        return gs_syntax(gs, c, "unexpected token", err);
    while ((c = gs_peek(gs)) >= 0 && !strchr(",:]} \t\r\n", c) && c != 0) gs_advance(gs);
    return c == -2 ? gs_io_error(gs, err) : 0;
}

/* Copies the JSON text s[0..len) into `out` (room for len bytes) without the whitespace
 * outside strings; returns the length. For valid JSON the result means the same: tokens are
 * always separated by punctuation, never by whitespace alone. */
static size_t gs_compact(const char *s, size_t len, char *out) {
    size_t o = 0;
    int in_string = 0, escaped = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            out[o++] = c;
            if (escaped) escaped = 0;
            else if (c == '\\') escaped = 1;
            else if (c == '"') in_string = 0;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
        in_string = c == '"';
        out[o++] = c;
    }
    return o;
}

/* The compact text of the value just parsed (buf[mark, pos)) into gs->text. */
static int gs_keep_text(gallery_stream *gs, size_t *len) {
    size_t n = gs->pos - gs->mark;
    if (n > gs->text_cap) {
        char *t = realloc(gs->text, n);
        if (!t) return -1;
        gs->text = t;
        gs->text_cap = n;
    }
    *len = gs_compact(gs->buf + gs->mark, n, gs->text);
    return 0;
}

/* Scans a value and parses it with jansson. New reference, or NULL and err. When the scan
 * fails, jansson is asked about the bytes read so far: an error it finds before their end
 * comes first in the file, so it is the one reported. */
static json_t *gs_parse_value(gallery_stream *gs, size_t *text_len, mg_error *err) {
    gs_pos at = gs_here(gs);
    gs->mark = gs->pos;
    json_error_t jerr;
    size_t len;
    json_t *v = NULL;
    if (gs_scan_value(gs, err) == 0) {
        v = json_loadb(gs->buf + gs->mark, gs->pos - gs->mark, JSON_DECODE_ANY | JSON_ALLOW_NUL,
                       &jerr);
        if (!v) gs_value_error(gs, at, &jerr, err);
        if (v && text_len && gs_keep_text(gs, text_len) != 0) {
            json_decref(v);
            v = NULL;
            mg_error_set(err, 500, "out_of_memory", NULL, "out of memory reading %s", gs->path);
        }
    } else if ((len = gs->pos - gs->mark) > 0 &&
               !(v = json_loadb(gs->buf + gs->mark, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr)) &&
               (size_t)jerr.position < len) {
        gs_value_error(gs, at, &jerr, err);
    } else {
        json_decref(v);
        v = NULL;
    }
    gs->mark = SIZE_MAX;
    return v;
}

/* ---- the top level ---------------------------------------------------------------- */

/* A top-level "models" array left out of the proxy: where it is in the file, and where its
 * placeholder "[k]" is in the proxy. */
typedef struct gs_cut {
    gs_pos start;               /* at the '[' */
    gs_pos end;                 /* just after the ']' */
    int proxy_line, proxy_col;  /* the proxy position just before the placeholder */
    int width;                  /* the placeholder's length */
} gs_cut;

/* The proxy: the file's text with each top-level "models" array replaced by "[k]", small
 * enough for jansson to parse whole, so that jansson itself checks the top level. */
typedef struct gs_proxy {
    char *text;
    size_t len, cap;
    int line, col;              /* proxy position after the last byte */
    gs_cut *cuts;
    size_t ncuts, capcuts;
    size_t key_at;              /* where the last string at depth 1 started */
    int key_models;             /* that string was "models" */
    int value_models;           /* and a ':' followed it */
} gs_proxy;

static int gs_proxy_put(gs_proxy *px, const char *s, size_t n) {
    if (px->len + n > px->cap) {
        size_t cap = px->cap ? px->cap * 2 : 4096;
        while (cap < px->len + n) cap *= 2;
        char *t = realloc(px->text, cap);
        if (!t) return -1;
        px->text = t;
        px->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') px->line++, px->col = 0;
        else if ((c & 0xC0) != 0x80) px->col++;
    }
    memcpy(px->text + px->len, s, n);
    px->len += n;
    return 0;
}

static void gs_proxy_free(gs_proxy *px) {
    free(px->text);
    free(px->cuts);
}

/* The file position of proxy position (line, col) as jansson reports them. */
static void gs_proxy_map(gallery_stream *gs, const gs_proxy *px, int line, int col,
                         int *out_line, int *out_col) {
    const gs_cut *last = NULL;
    int removed = 0, sline, scol, eline = 0, ecol = 0;
    *out_line = line;
    *out_col = col;
    for (size_t i = 0; i < px->ncuts; i++) {
        const gs_cut *k = &px->cuts[i];
        if (line < k->proxy_line || (line == k->proxy_line && col <= k->proxy_col)) break;
        gs_linecol(gs, k->start.off, &sline, &scol);
        if (line == k->proxy_line && col < k->proxy_col + k->width) {
            *out_line = sline; /* inside the placeholder: at the '[' */
            *out_col = scol + 1;
            return;
        }
        gs_linecol(gs, k->end.off, &eline, &ecol);
        removed += eline - sline;
        last = k;
    }
    if (!last) return;
    if (line == last->proxy_line) {
        *out_line = eline;
        *out_col = ecol + (col - last->proxy_col - last->width);
    } else {
        *out_line = line + removed;
    }
}

/* Tracks strings, brackets and keys of the copied text, one byte `c` at a time. */
static void gs_proxy_track(gs_proxy *px, gs_scan *s, int c) {
    int top_object = s->depth == 1 && s->stack[0] == '}';
    if (s->in_string) {
        if (s->escaped) s->escaped = 0;
        else if (c == '\\') s->escaped = 1;
        else if (c == '"') {
            s->in_string = 0;
            if (top_object)
                px->key_models = px->len - px->key_at == 8 &&
                                 memcmp(px->text + px->key_at, "\"models\"", 8) == 0;
        }
        return;
    }
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') return;
    if (top_object && c == ':') px->value_models = px->key_models;
    else if (top_object) px->value_models = 0;
    if (c == '"') {
        s->in_string = 1;
        px->key_at = px->len - 1;
        px->key_models = 0;
    } else if (c == '{' || c == '[') {
        if (s->depth < GS_DEPTH_MAX) s->stack[s->depth] = c == '{' ? '}' : ']';
        s->depth++;
    } else if ((c == '}' || c == ']') && s->depth > 0) {
        s->depth--;
    }
}

/* Scans a models array at the read position past the proxy, leaving "[k]" there. */
static int gs_proxy_cut(gallery_stream *gs, gs_proxy *px, mg_error *err) {
    if (px->ncuts == px->capcuts) {
        size_t cap = px->capcuts ? px->capcuts * 2 : 4;
        gs_cut *cuts = realloc(px->cuts, cap * sizeof *cuts);
        if (!cuts) return mg_error_set(err, 500, "out_of_memory", NULL, "out of memory");
        px->cuts = cuts;
        px->capcuts = cap;
    }
    gs_cut *k = &px->cuts[px->ncuts];
    k->start = gs_here(gs);
    if (gs_scan_composite(gs, err) != 0) return -1;
    k->end = gs_here(gs);
    k->proxy_line = px->line;
    k->proxy_col = px->col;
    char holder[32];
    k->width = snprintf(holder, sizeof holder, "[%zu]", px->ncuts);
    px->ncuts++;
    px->value_models = 0;
    return gs_proxy_put(px, holder, (size_t)k->width) == 0 ? 0 : -1;
}

/* Reads the whole file into the proxy. 0; -1 and err when a models array does not end (or
 * on a read error). */
static int gs_proxy_read(gallery_stream *gs, gs_proxy *px, mg_error *err) {
    gs_scan s;
    memset(&s, 0, sizeof s);
    px->line = 1;
    for (;;) {
        int c = gs_peek(gs);
        if (c == -2) return gs_io_error(gs, err);
        if (c == -1) return 0;
        if (c == '[' && !s.in_string && px->value_models && s.depth == 1 && s.stack[0] == '}') {
            if (gs_proxy_cut(gs, px, err) != 0) return -1;
            continue;
        }
        gs_advance(gs);
        char b = (char)c;
        if (gs_proxy_put(px, &b, 1) != 0)
            return mg_error_set(err, 500, "out_of_memory", NULL, "out of memory reading %s", gs->path);
        gs_proxy_track(px, &s, c);
    }
}

/* Positions the stream on the first element of the models array starting at `at`. */
static int gs_rewind(gallery_stream *gs, gs_pos at, mg_error *err) {
    if (lseek(gs->fd, (off_t)at.off, SEEK_SET) < 0) return gs_io_error(gs, err);
    gs->base = at.off;
    gs->pos = gs->end = 0;
    gs->eof = gs->done = 0;
    gs->index = 0;
    gs->mark = SIZE_MAX;
    int c = gs_peek(gs);
    if (c != '[') return gs_syntax(gs, c, "the file changed while it was read:", err);
    gs_advance(gs);
    return 0;
}

/* Parses every element of cut `k`. 0, or -1 and err at the first that is not JSON. */
static int gs_check_cut(gallery_stream *gs, const gs_cut *k, mg_error *err) {
    if (gs_rewind(gs, k->start, err) != 0) return -1;
    json_t *element;
    size_t index;
    int rc;
    while ((rc = gallery_stream_next(gs, &element, &index, NULL, NULL, err)) == 1)
        json_decref(element);
    return rc;
}

/* 1 when file position `a` comes before (line, col). */
static int gs_before(gallery_stream *gs, gs_pos a, int line, int col) {
    int aline, acol;
    gs_linecol(gs, a.off, &aline, &acol);
    return aline < line || (aline == line && acol < col);
}

/* An error at (line, col) of the file, unless one of the cuts before it holds an earlier one
 * (jansson reads the whole file in order). */
static int gs_first_error(gallery_stream *gs, const gs_proxy *px, int line, int col,
                          mg_error *err) {
    for (size_t i = 0; i < px->ncuts && gs_before(gs, px->cuts[i].start, line, col); i++)
        if (gs_check_cut(gs, &px->cuts[i], err) != 0) return -1;
    return -2;
}

/* Parses the proxy with jansson: the top level checked, version and generatedAt kept, the
 * models array chosen (the last "models" key wins, as in jansson). */
static int gs_proxy_parse(gallery_stream *gs, gs_proxy *px, mg_error *err) {
    json_error_t jerr;
    json_t *doc = json_loadb(px->text ? px->text : "", px->len, JSON_ALLOW_NUL, &jerr);
    if (!doc) {
        int line, col;
        gs_proxy_map(gs, px, jerr.line, jerr.column, &line, &col);
        if (gs_first_error(gs, px, line, col, err) == -1) return -1;
        return mg_error_set(err, 500, "invalid_gallery", NULL,
                            "%s: not valid JSON at line %d, column %d: %s", gs->path, line, col,
                            jerr.text);
    }
    json_t *models = json_object_get(doc, "models");
    json_t *k = json_array_get(models, 0);
    int ok = json_is_array(models) && json_array_size(models) == 1 && json_is_integer(k) &&
             json_integer_value(k) >= 0 && (size_t)json_integer_value(k) < px->ncuts;
    if (ok) {
        gs->models = px->cuts[json_integer_value(k)].start;
        gs->version = json_incref(json_object_get(doc, "version"));
        gs->generated = json_incref(json_object_get(doc, "generatedAt"));
    }
    json_decref(doc);
    if (!ok)
        return mg_error_set(err, 500, "invalid_gallery", NULL,
                            "%s: not a gallery (an object with a \"models\" array)", gs->path);
    for (size_t i = 0; px->ncuts > 1 && i < px->ncuts; i++) /* rare: "models" twice */
        if (gs_check_cut(gs, &px->cuts[i], err) != 0) return -1;
    return 0;
}

/* The first read: the proxy made and parsed, or the first error of the file found. */
static int gs_prescan(gallery_stream *gs, mg_error *err) {
    gs_proxy px;
    memset(&px, 0, sizeof px);
    int rc = gs_proxy_read(gs, &px, err);
    if (rc != 0 && strcmp(err->code, "invalid_gallery") == 0) {
        /* a models array that does not end: an earlier error is the one to report */
        mg_error scan = *err;
        json_error_t jerr;
        json_t *doc = json_loadb(px.text ? px.text : "", px.len, JSON_ALLOW_NUL, &jerr);
        if (!doc && (size_t)jerr.position < px.len) {
            int line, col;
            gs_proxy_map(gs, &px, jerr.line, jerr.column, &line, &col);
            if (gs_first_error(gs, &px, line, col, err) != -1)
                mg_error_set(err, 500, "invalid_gallery", NULL,
                             "%s: not valid JSON at line %d, column %d: %s", gs->path, line, col,
                             jerr.text);
        } else {
            px.ncuts++; /* the unfinished one too */
            if (gs_first_error(gs, &px, INT32_MAX, 0, err) != -1) *err = scan;
        }
        json_decref(doc);
    } else if (rc == 0) {
        rc = gs_proxy_parse(gs, &px, err);
    }
    gs_proxy_free(&px);
    return rc;
}

gallery_stream *gallery_stream_open(const char *path, struct stat *st, mg_error *err) {
    gallery_stream *gs = calloc(1, sizeof *gs);
    if (gs) {
        gs->fd = -1;
        gs->path = strdup(path);
        gs->buf = malloc(GS_CHUNK);
        gs->cap = GS_CHUNK;
        gs->mark = SIZE_MAX;
    }
    if (!gs || !gs->path || !gs->buf) {
        gallery_stream_close(gs);
        mg_error_set(err, 500, "out_of_memory", NULL, "out of memory reading %s", path);
        return NULL;
    }
    gs->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat own;
    if (gs->fd < 0 || fstat(gs->fd, st ? st : &own) != 0) {
        mg_error_set(err, errno == ENOENT ? 404 : 500, "io_error", NULL, "cannot open %s: %s",
                     path, strerror(errno));
        gallery_stream_close(gs);
        return NULL;
    }
    if (gs_prescan(gs, err) != 0 || gs_rewind(gs, gs->models, err) != 0) {
        gallery_stream_close(gs);
        return NULL;
    }
    if (!gs->version) gs->version = json_null();
    if (!gs->generated) gs->generated = json_null();
    return gs;
}

json_t *gallery_stream_version(const gallery_stream *gs) { return gs->version; }
json_t *gallery_stream_generated(const gallery_stream *gs) { return gs->generated; }

/* What follows an element is neither ',' nor ']': jansson is shown "[0 " and the bytes from
 * there, so that the error names the whole offending token as jansson does. */
static int gs_separator_error(gallery_stream *gs, int c, mg_error *err) {
    size_t n = c < 0 ? 0 : gs->end - gs->pos;
    char *mini = n ? malloc(n + 3) : NULL;
    json_error_t jerr;
    json_t *v = NULL;
    if (mini) {
        memcpy(mini, "[0 ", 3);
        memcpy(mini + 3, gs->buf + gs->pos, n);
        v = json_loadb(mini, n + 3, JSON_ALLOW_NUL, &jerr);
    }
    int known = mini && !v && (size_t)jerr.position < n + 3;
    json_decref(v);
    free(mini);
    if (!known) return gs_syntax(gs, c, "']' expected", err);
    int here_line, here_col;
    gs_linecol(gs, gs->base + gs->pos, &here_line, &here_col);
    int line = here_line + jerr.line - 1;
    int col = jerr.line == 1 ? here_col + jerr.column - 3 : jerr.column;
    return mg_error_set(err, 500, "invalid_gallery", NULL,
                        "%s: not valid JSON at line %d, column %d: %s", gs->path, line, col,
                        jerr.text);
}

int gallery_stream_next(gallery_stream *gs, json_t **element, size_t *index, const char **text,
                        size_t *text_len, mg_error *err) {
    *element = NULL;
    if (gs->done) return 0;
    gs_skip_ws(gs);
    int c = gs_peek(gs);
    if (c == ']' && gs->index == 0) {
        gs_advance(gs);
        gs->done = 1;
        return 0;
    }
    size_t len = 0;
    json_t *v = gs_parse_value(gs, text ? &len : NULL, err);
    if (!v) return -1;
    if (text) {
        *text = gs->text;
        *text_len = len;
    }
    gs_skip_ws(gs);
    c = gs_peek(gs);
    if (c == ',') {
        gs_advance(gs);
        gs_skip_ws(gs);
        if ((c = gs_peek(gs)) == ']') {
            json_decref(v);
            return gs_syntax(gs, c, "unexpected token", err);
        }
    } else if (c == ']') {
        gs_advance(gs);
        gs->done = 1;
    } else {
        json_decref(v);
        return gs_separator_error(gs, c, err);
    }
    *element = v;
    *index = gs->index++;
    return 1;
}

void gallery_stream_close(gallery_stream *gs) {
    if (!gs) return;
    if (gs->fd >= 0) close(gs->fd);
    json_decref(gs->version);
    json_decref(gs->generated);
    free(gs->path);
    free(gs->buf);
    free(gs->text);
    free(gs);
}
