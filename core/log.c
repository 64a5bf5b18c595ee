/* log.c - timestamped one-line log records on stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static const char *log_component = "mg";

static int log_fd = STDERR_FILENO;

void log_set_component(const char *name) { log_component = name; }

void log_set_fd(int fd) { log_fd = fd; }

static void log_write(const char *level, const char *fmt, va_list ap) {
    char line[2048];
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int n = snprintf(line, sizeof line, "%s [%s] %s[%d]: ", stamp, level, log_component,
                     (int)getpid());
    if (n < 0 || (size_t)n >= sizeof line) return;
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    if (m < 0) return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2) len = sizeof line - 2;
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
