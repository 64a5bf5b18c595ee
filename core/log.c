/* log.c - timestamped one-line log records on stderr, redacted and escaped (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "redact.h"

#define LOG_LINE_MAX 2048

static const char *log_component = "mg";

static int log_fd = STDERR_FILENO;

void log_set_component(const char *name) { log_component = name; }

void log_set_fd(int fd) { log_fd = fd; }

/* The escape of byte `c` (and, for a C1 control, its UTF-8 continuation `next`) into esc
 * (8 bytes); 0 when it needs none. Sets *used to the input bytes it stands for. */
static size_t log_escape_one(unsigned char c, unsigned char next, char esc[8], size_t *used) {
    *used = 1;
    if (c == '\n') return (size_t)snprintf(esc, 8, "\\n");
    if (c == '\r') return (size_t)snprintf(esc, 8, "\\r");
    if (c == '\t') return (size_t)snprintf(esc, 8, "\\t");
    if (c < 0x20 || c == 0x7f) return (size_t)snprintf(esc, 8, "\\x%02x", c);
    if (c == 0xc2 && next >= 0x80 && next <= 0x9f) {
        *used = 2;
        return (size_t)snprintf(esc, 8, "\\u%04x", next);
    }
    return 0;
}

char *log_escape(char *out, size_t n, const char *text) {
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)(text ? text : "");
    while (*p) {
        char esc[8];
        size_t used, k = log_escape_one(p[0], p[1], esc, &used);
        const char *piece = k ? esc : (const char *)p;
        if (!k) k = 1;
        if (o + k >= n) break;
        memcpy(out + o, piece, k);
        o += k;
        p += used;
    }
    out[o] = '\0';
    return out;
}

static void log_write(const char *level, const char *fmt, va_list ap) {
    char text[LOG_LINE_MAX], redacted[LOG_LINE_MAX], line[LOG_LINE_MAX + 128];
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    vsnprintf(text, sizeof text, fmt, ap);
    redact_text(redacted, sizeof redacted, text);
    int n = snprintf(line, sizeof line, "%s [%s] %s[%d]: ", stamp, level, log_component,
                     (int)getpid());
    if (n < 0 || (size_t)n >= sizeof line - 2) return;
    log_escape(line + n, sizeof line - (size_t)n - 1, redacted);
    size_t len = strlen(line);
    line[len++] = '\n';
    /* One write() per record keeps lines whole when several processes share the file. */
    if (log_fd < 0) return;
    ssize_t w = write(log_fd, line, len);
    (void)w;
}

#define LOG_FN(fn, level)                 \
    void fn(const char *fmt, ...) {       \
        va_list ap;                       \
        va_start(ap, fmt);                \
        log_write(level, fmt, ap);        \
        va_end(ap);                       \
    }
LOG_FN(log_info, "info")
LOG_FN(log_warn, "warn")
LOG_FN(log_error, "error")
