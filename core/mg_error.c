/* mg_error.c - filling and clearing mg_error values. */
#include "mg_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int mg_error_set(mg_error *err, int status, const char *code, const char *parameter,
                 const char *fmt, ...) {
    if (!err) return -1;
    err->status = status;
    snprintf(err->code, sizeof err->code, "%s", code ? code : "internal_error");
    snprintf(err->parameter, sizeof err->parameter, "%s", parameter ? parameter : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

void mg_error_clear(mg_error *err) {
    if (err) memset(err, 0, sizeof *err);
}
