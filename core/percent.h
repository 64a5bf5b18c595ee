/* percent.h - strict percent-decoding of URL path segments (RFC 3986), with no FastCGI or
 * libcurl dependency so that the router and the fuzz targets share one decoder. */
#ifndef MG_PERCENT_H
#define MG_PERCENT_H

#include <stddef.h>

/* Percent-decodes `len` bytes of `in` into `out` (room for len + 1 bytes; NUL-terminated,
 * though the result may itself hold NUL bytes from %00) and sets *out_len (never above len).
 * '+' stays '+'. -1 when a '%' is not followed by two hex digits; `out` is then undefined. */
int percent_decode(const char *in, size_t len, char *out, size_t *out_len);

#endif
