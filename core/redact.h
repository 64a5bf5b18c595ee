/* redact.h - hiding the secrets of URLs before they reach an answer or a log line.
 *
 * Every URL (a scheme, "://", and what follows up to a blank or quote) inside a text keeps
 * its scheme, host, port and path; its credentials and its query string (and fragment) are
 * replaced by three asterisks: https://user:pw@cdn.example/g.json?sig=abc comes out with
 * "***" in place of "user:pw" and of "sig=abc".
 *
 * The scan is by characters, not by a URL parser, so that a URL libcurl would refuse is
 * hidden too. */
#ifndef MG_REDACT_H
#define MG_REDACT_H

#include <jansson.h>
#include <stddef.h>

/* Writes `text` with every URL in it redacted into `out` (size n >= 1, always
 * NUL-terminated; cut short when it does not fit). Returns out. */
char *redact_text(char *out, size_t n, const char *text);

/* 1 when redact_text would change `text`. */
int redact_needed(const char *text);

/* Redacts, in place, every string value inside `doc` (borrowed; objects and arrays are
 * walked, keys are left alone). */
void redact_json(json_t *doc);

#endif
