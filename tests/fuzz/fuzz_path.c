/* fuzz_path.c - percent-decoding of URL path segments (percent_decode, what the router runs
 * on every segment of every request path). Invariants: the decoded text is never longer than
 * its input and is NUL-terminated; decoding succeeds exactly when every '%' starts "%XX"
 * with two hex digits; text without '%' comes back unchanged; re-encoding the result as %XX
 * triplets and decoding again gives the same bytes. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "percent.h"

/* 1 when every '%' of `in` is followed by two hex digits (the rule, stated independently). */
static int path_well_formed(const char *in, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (in[i] != '%') continue;
        if (len - i < 3 || !isxdigit((unsigned char)in[i + 1]) ||
            !isxdigit((unsigned char)in[i + 2]))
            return 0;
        i += 2;
    }
    return 1;
}

/* Encodes every byte of `in` as %XX into a malloc'd buffer of 3 * len bytes. */
static char *path_encode_all(const char *in, size_t len) {
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(3 * len + 1);
    if (!out) abort();
    for (size_t i = 0; i < len; i++) {
        out[3 * i] = '%';
        out[3 * i + 1] = hex[(unsigned char)in[i] >> 4];
        out[3 * i + 2] = hex[(unsigned char)in[i] & 15];
    }
    return out;
}

static void path_check_roundtrip(const char *dec, size_t dlen) {
    char *enc = path_encode_all(dec, dlen);
    char *again = malloc(3 * dlen + 1);
    size_t alen = (size_t)-1;
    if (!again) abort();
    FUZZ_CHECK(percent_decode(enc, 3 * dlen, again, &alen) == 0);
    FUZZ_CHECK(alen == dlen && memcmp(again, dec, dlen) == 0);
    free(again);
    free(enc);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *in = (const char *)data;
    char *out = malloc(size + 1); /* exactly the room the contract of percent_decode asks */
    size_t olen = (size_t)-1;
    if (!out) abort();
    int rc = percent_decode(in, size, out, &olen);
    FUZZ_CHECK((rc == 0) == path_well_formed(in, size));
    if (rc == 0) {
        FUZZ_CHECK(olen <= size);
        FUZZ_CHECK(out[olen] == '\0');
        if (!memchr(in, '%', size)) FUZZ_CHECK(olen == size && memcmp(out, in, size) == 0);
        path_check_roundtrip(out, olen);
    }
    free(out);
    return 0;
}
