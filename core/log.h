/* log.h - one-line log records on stderr: "2026-11-26T09:36:39Z [level] component: text".
 * Processes redirect stderr to run/<process>.log. */
#ifndef MG_LOG_H
#define MG_LOG_H

/* Sets the component name printed on every line (a static string, not copied). */
void log_set_component(const char *name);
/* Sends the records to `fd` (default STDERR_FILENO); -1 formats and drops them
 * (fuzz targets). */
void log_set_fd(int fd);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
