/* header.h - HTTP response header lines as libcurl hands them to a header callback (one line,
 * usually with its CRLF): the status line, "Name: value" fields and the Content-Range value.
 * Pure functions over byte spans: no I/O, no allocation, no NUL terminator needed. */
#ifndef MG_HEADER_H
#define MG_HEADER_H

#include <stddef.h>
#include <stdint.h>

typedef struct header_field {
    const char *name;   /* borrowed from the line */
    size_t name_len;
    const char *value;  /* borrowed from the line, without surrounding blanks and line end */
    size_t value_len;
} header_field;

typedef struct header_range {
    int64_t start, end; /* first and last byte of the part sent; both -1 for the form that
                         * answers an unsatisfiable range (an asterisk, a slash, LENGTH) */
    int64_t total;      /* complete length, -1 when the server sent "*" */
} header_range;

/* 1 when `line` starts a response ("HTTP/..."): fields seen before it belonged to an earlier
 * response (a redirect, a 100 Continue). */
int header_is_status(const char *line, size_t len);

/* Splits a "Name: value" line. 0 and *f, or -1 when the line is no field: no colon, an empty
 * name or one with characters outside the RFC 9110 token set (so also a folded continuation
 * line), the blank line that ends the header. */
int header_split(const char *line, size_t len, header_field *f);

/* 1 when the name of `f` is `name` (ASCII case-insensitive). */
int header_name_is(const header_field *f, const char *name);

/* Parses a Content-Range value (RFC 9110 14.4): "bytes FIRST-LAST/LENGTH",
 * "bytes FIRST-LAST/" followed by an asterisk (length unknown), or "bytes ", an asterisk and
 * "/LENGTH" (unsatisfiable range). 0 and *r with 0 <= start <= end and, when the
 * length is known, end < total; -1 for anything else (another unit, signs, numbers beyond
 * INT64_MAX, FIRST > LAST, LAST >= LENGTH, characters after the value). */
int header_content_range(const char *value, size_t len, header_range *r);

/* The SHA-256 of the whole file that the field `f` announces, as 64 lower-case hex digits
 * and a NUL into `hex`: an X-Linked-Etag or ETag whose value, without a W/ prefix and the
 * quotes, is 64 hex digits (Hugging Face names LFS files so); a Repr-Digest member
 * sha-256=:BASE64: (RFC 9530); a Digest member SHA-256=BASE64 (RFC 3230). 1 when it
 * announces one, 0 otherwise (other fields, other algorithms, malformed values). */
int header_sha256(const header_field *f, char hex[65]);

#endif
