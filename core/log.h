/* log.h - one-line log records on stderr: "2026-11-26T09:36:39Z [level] component: text".
 * Processes redirect stderr to run/<process>.log.
 *
 * Every record is made safe before it is written, whatever its arguments hold: URLs lose
 * their credentials and query strings (redact_text) and control characters are escaped
 * (log_escape), so an id, a URL or a server message can never forge a line. */
#ifndef MG_LOG_H
#define MG_LOG_H

#include <stddef.h>

/* Sets the component name printed on every line (a static string, not copied). */
void log_set_component(const char *name);
/* Sends the records to `fd` (default STDERR_FILENO); -1 formats and drops them
 * (fuzz targets). */
void log_set_fd(int fd);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes `text` into `out` (size n >= 1, always NUL-terminated, cut short when it does not
 * fit) with control characters escaped: \n, \r, \t, and \xNN for the other C0 bytes, DEL
 * and the UTF-8 encoded C1 controls (U+0080-U+009F, written \u0080). Returns out. */
char *log_escape(char *out, size_t n, const char *text);

#endif
