/* percent.h - strict percent-decoding of URL path segments and query strings (RFC 3986),
 * with no FastCGI or libcurl dependency so that the router, the routes and the fuzz targets
 * share one decoder. */
#ifndef MG_PERCENT_H
#define MG_PERCENT_H

#include <stddef.h>

/* Percent-decodes `len` bytes of `in` into `out` (room for len + 1 bytes; NUL-terminated,
 * though the result may itself hold NUL bytes from %00) and sets *out_len (never above len).
 * '+' stays '+'. -1 when a '%' is not followed by two hex digits; `out` is then undefined. */
int percent_decode(const char *in, size_t len, char *out, size_t *out_len);

/* The value of the last parameter `name` of the query string `qs` ("a=1&b=2"; keys are
 * compared decoded, a key that does not decode never matches, "k" alone has the value "").
 * 1 and *out, the decoded value (caller frees; NUL-terminated, *out_len bytes, which may
 * hold NUL from %00); 0 when absent; -1 when its value does not decode; -2 when memory ran
 * out. *out is NULL unless 1. */
int percent_query_get(const char *qs, const char *name, char **out, size_t *out_len);

#endif
