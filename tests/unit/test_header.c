/* test_header.c - HTTP response header lines, Content-Range and announced SHA-256 digests
 * (core/header.c) and the percent-decoding of path segments and query parameters
 * (core/percent.c): the forms
 * servers and clients send, and the malformed ones that must never move a download's resume
 * point or blame the catalogue for a damaged download. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "header.h"
#include "percent.h"
#include "unit.h"

/* Parses `value` as a Content-Range; returns 0 and fills start/end/total, or -1. */
static int range(const char *value, int64_t *start, int64_t *end, int64_t *total) {
    header_range r = {7, 7, 7};
    int rc = header_content_range(value, strlen(value), &r);
    *start = r.start;
    *end = r.end;
    *total = r.total;
    return rc;
}

UNIT_TEST(content_range_forms) {
    int64_t s, e, t;
    CHECK_INT(range("bytes 100-199/1000", &s, &e, &t), 0);
    CHECK_INT(s, 100);
    CHECK_INT(e, 199);
    CHECK_INT(t, 1000);
    /* unknown complete length: the resume point is still known */
    CHECK_INT(range("bytes 0-99/*", &s, &e, &t), 0);
    CHECK_INT(s, 0);
    CHECK_INT(e, 99);
    CHECK_INT(t, -1);
    /* the answer to an unsatisfiable range (416) */
    CHECK_INT(range("bytes */5000", &s, &e, &t), 0);
    CHECK_INT(s, -1);
    CHECK_INT(e, -1);
    CHECK_INT(t, 5000);
    CHECK_INT(range("BYTES\t 5-5/6", &s, &e, &t), 0);
    CHECK_INT(s, 5);
    CHECK_INT(range("bytes 9223372036854775806-9223372036854775806/9223372036854775807", &s, &e,
                    &t), 0);
    CHECK_INT(t, INT64_MAX);
}

UNIT_TEST(content_range_malformed) {
    static const char *bad[] = {
        "", "bytes", "bytes ", "bytes5-6/7", "items 1-2/3", "bytes 5-3/10", "bytes 0-10/10",
        "bytes -1-5/10", "bytes 1--5/10", "bytes +1-5/10", "bytes 1-2/3 ", "bytes 1-2/3x",
        "bytes 1-2", "bytes 1-/3", "bytes -2/3", "bytes */*", "bytes */", "bytes 1 -2/3",
        "bytes 9223372036854775808-9223372036854775809/*", "bytes 0-1/99999999999999999999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int64_t s, e, t;
        if (range(bad[i], &s, &e, &t) != -1) unit_fail(__FILE__, __LINE__, "accepted \"%s\"", bad[i]);
    }
    header_range r;
    CHECK_INT(header_content_range("bytes 1-2/3\0", 12, &r), -1); /* a NUL byte inside */
}

/* Splits `line`; returns 0 and the name and value as strings, or -1. */
static int split(const char *line, char name[64], char value[64]) {
    header_field f;
    if (header_split(line, strlen(line), &f) != 0) return -1;
    snprintf(name, 64, "%.*s", (int)f.name_len, f.name);
    snprintf(value, 64, "%.*s", (int)f.value_len, f.value);
    return 0;
}

UNIT_TEST(header_lines) {
    char name[64], value[64];
    CHECK_INT(split("Content-Range: bytes 1-2/3\r\n", name, value), 0);
    CHECK_STR(name, "Content-Range");
    CHECK_STR(value, "bytes 1-2/3");
    CHECK_INT(split("etag:\t \"abc\" \t\r\n", name, value), 0);
    CHECK_STR(name, "etag");
    CHECK_STR(value, "\"abc\"");
    CHECK_INT(split("X-Empty:\r\n", name, value), 0);
    CHECK_STR(value, "");
    CHECK_INT(split("Location: https://h/a:b\n", name, value), 0);
    CHECK_STR(value, "https://h/a:b");
    CHECK_INT(split("\r\n", name, value), -1);
    CHECK_INT(split(" folded: continuation\r\n", name, value), -1);
    CHECK_INT(split("Bad Name: x\r\n", name, value), -1);
    CHECK_INT(split(": no name\r\n", name, value), -1);
    CHECK_INT(split("HTTP/1.1 206 Partial Content\r\n", name, value), -1);
    CHECK(header_is_status("HTTP/1.1 206 Partial Content\r\n", 30));
    CHECK(header_is_status("HTTP/2 200\r\n", 12));
    CHECK(!header_is_status("HTTP", 4));
    header_field f;
    CHECK_INT(header_split("CONTENT-range: x", 16, &f), 0);
    CHECK(header_name_is(&f, "content-range"));
    CHECK(!header_name_is(&f, "content-rang"));
}

/* Decodes `in`; returns the decoded length, or -1. */
static long decode(const char *in, char out[64]) {
    size_t n = 0;
    return percent_decode(in, strlen(in), out, &n) == 0 ? (long)n : -1;
}

UNIT_TEST(percent_decoding) {
    char out[64];
    CHECK_INT(decode("a%41b%c3%a9", out), 5);
    CHECK_STR(out, "aAb\xc3\xa9");
    CHECK_INT(decode("a+b", out), 3);
    CHECK_STR(out, "a+b");
    CHECK_INT(decode("a%2Fb", out), 3);
    CHECK_STR(out, "a/b");
    CHECK_INT(decode("%00", out), 1);
    CHECK_INT(out[0], 0);
    CHECK_INT(decode("", out), 0);
    CHECK_INT(decode("%", out), -1);
    CHECK_INT(decode("%4", out), -1);
    CHECK_INT(decode("a%zz", out), -1);
    CHECK_INT(decode("%4g", out), -1);
    CHECK_INT(decode("100%", out), -1);
}

/* percent_query_get of `name` in `qs`: its return value; the value into out ("" if none). */
static int query(const char *qs, const char *name, char out[64]) {
    char *v = NULL;
    size_t n = 0;
    int rc = percent_query_get(qs, name, &v, &n);
    out[0] = '\0';
    if (rc == 1 && n < 64) memcpy(out, v, n + 1);
    if (rc != 1 && v) return 99; /* *out must be NULL unless found */
    free(v);
    return rc;
}

UNIT_TEST(query_parameters) {
    char out[64];
    CHECK_INT(query("status=queued&limit=5", "limit", out), 1);
    CHECK_STR(out, "5");
    CHECK_INT(query("limit=1&limit=2", "limit", out), 1); /* the last one wins */
    CHECK_STR(out, "2");
    CHECK_INT(query("li%6dit=7", "limit", out), 1); /* keys compared decoded */
    CHECK_STR(out, "7");
    CHECK_INT(query("limit", "limit", out), 1); /* a key alone: the empty value */
    CHECK_STR(out, "");
    CHECK_INT(query("status=a%20b", "status", out), 1);
    CHECK_STR(out, "a b");
    CHECK_INT(query("limits=1&xlimit=2&=3", "limit", out), 0);
    CHECK_INT(query("", "limit", out), 0);
    CHECK_INT(query("l%zzimit=1", "limit", out), 0); /* a key that does not decode */
    CHECK_INT(query("limit=%4", "limit", out), -1);
    CHECK_INT(query("limit=%41&limit=%zz", "limit", out), -1); /* the last one counts */
    CHECK_INT(query("a=1&&limit=3&", "limit", out), 1);
    CHECK_STR(out, "3");
}

/* header_sha256 on one "Name: value" line; the digest into hex, or "" when none. */
static int announced(const char *line, char hex[65]) {
    header_field f;
    hex[0] = '\0';
    if (header_split(line, strlen(line), &f) != 0) return -1;
    return header_sha256(&f, hex);
}

#define SHA_HEX "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA_B64 "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="

UNIT_TEST(announced_sha256) {
    char hex[65];
    /* Hugging Face names LFS files by their SHA-256 */
    CHECK_INT(announced("X-Linked-Etag: \"" SHA_HEX "\"\r\n", hex), 1);
    CHECK_STR(hex, SHA_HEX);
    CHECK_INT(announced("ETag: W/\"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA49599"
                        "1B7852B855\"", hex), 1);
    CHECK_STR(hex, SHA_HEX);
    CHECK_INT(announced("etag: " SHA_HEX, hex), 1);
    /* RFC 9530 and RFC 3230 digests, among other algorithms */
    CHECK_INT(announced("Repr-Digest: sha-512=:AAAA:, sha-256=:" SHA_B64 ":", hex), 1);
    CHECK_STR(hex, SHA_HEX);
    CHECK_INT(announced("Digest: MD5=HUXZLQLMuI/KZ5KDcJPcOA==, SHA-256=" SHA_B64, hex), 1);
    CHECK_STR(hex, SHA_HEX);
    /* not a SHA-256 announcement */
    CHECK_INT(announced("ETag: \"5f3-1a2b\"", hex), 0);
    CHECK_INT(announced("ETag: \"" SHA_HEX "0\"", hex), 0);
    CHECK_INT(announced("ETag: \"g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991"
                        "b7852b855\"", hex), 0);
    CHECK_INT(announced("Repr-Digest: sha-256=" SHA_B64, hex), 0);        /* no colons */
    CHECK_INT(announced("Repr-Digest: sha-256=:47DEQpj8HBSa:", hex), 0);  /* too short */
    CHECK_INT(announced("Digest: SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSu==", hex), 0);
    CHECK_INT(announced("Digest: SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hS*FU=", hex), 0);
    CHECK_INT(announced("Content-Digest: sha-256=:" SHA_B64 ":", hex), 0); /* of the part sent */
    CHECK_INT(announced("Content-Length: 64", hex), 0);
}
