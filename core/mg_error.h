/* mg_error.h - errors returned as values: a status hint plus a sentence a user can read.
 *
 * Every core function that can fail takes an `mg_error *` (may be NULL) and returns -1 or
 * NULL after filling it. The caller owns the struct (usually on its stack). */
#ifndef MG_ERROR_H
#define MG_ERROR_H

typedef struct mg_error {
    int status;          /* HTTP status the error maps to (400, 404, 409, 500, 507, ...) */
    char code[48];       /* machine-readable code, e.g. "invalid_parameter" */
    char parameter[64];  /* the parameter at fault, or "" */
    char message[512];   /* human-readable sentence */
} mg_error;

/* Fills `err` (no-op when err is NULL). `parameter` may be NULL. Always returns -1 so that
 * `return mg_error_set(...)` reads naturally. */
int mg_error_set(mg_error *err, int status, const char *code, const char *parameter,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Clears `err` to "no error". */
void mg_error_clear(mg_error *err);

#endif
