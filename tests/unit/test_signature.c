/* test_signature.c - Ed25519 gallery signatures: the RFC 8032 test vector verifies; a key
 * made and used by signature_keygen / signature_sign verifies its own bytes only; malformed
 * keys and signatures are refused. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "signature.h"
#include "unit.h"

/* RFC 8032, 7.1, TEST 1 (the empty message), in base64. */
#define RFC_KEY "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
#define RFC_SIG                                                                      \
    "5VZDAMNgrHKQhuLMgG6CioSHfx645dl02HPgZSJJAVVfuIIVkKM7rMYeOXAc+bRr0lv18FlbviRlUUFDjnoQCw=="

UNIT_TEST(rfc8032_vector) {
    unsigned char key[SIGNATURE_KEY_BYTES];
    CHECK_INT(signature_key_decode(RFC_KEY, key), 0);
    CHECK_INT(signature_verify(key, "", 0, RFC_SIG, strlen(RFC_SIG)), 1);
    CHECK_INT(signature_verify(key, RFC_SIG "\n", 0, RFC_SIG "\n", strlen(RFC_SIG) + 1), 1);
    CHECK_INT(signature_verify(key, "x", 1, RFC_SIG, strlen(RFC_SIG)), 0);
}

UNIT_TEST(malformed_keys_and_signatures) {
    unsigned char key[SIGNATURE_KEY_BYTES];
    const char *keys[] = {"", "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                          "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo==",
                          "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPc*URo=", NULL};
    for (int i = 0; i < 5; i++) CHECK_INT(signature_key_decode(keys[i], key), -1);
    CHECK_INT(signature_key_decode(RFC_KEY, key), 0);
    static const char padded_first[] = "=VZDAMNgrHKQhuLMgG6CioSHfx645dl02HPgZSJJAVVf"
                                       "uIIVkKM7rMYeOXAc+bRr0lv18FlbviRlUUFDjnoQCw==";
    const char *sigs[] = {"", "5VZD", RFC_SIG "AAAA", padded_first};
    for (int i = 0; i < 4; i++)
        CHECK_INT(signature_verify(key, "", 0, sigs[i], strlen(sigs[i])), 0);
}

UNIT_TEST(sign_then_verify) {
    char pem[4200], pub[SIGNATURE_KEY_B64], pub2[SIGNATURE_KEY_B64], sig[SIGNATURE_B64], why[512];
    unsigned char key[SIGNATURE_KEY_BYTES];
    const char *doc = "{\"version\":1,\"models\":[]}\n";
    snprintf(pem, sizeof pem, "%s/key.pem", unit_tmpdir());
    CHECK_INT(signature_keygen(pem, pub, why, sizeof why), 0);
    struct stat st;
    CHECK(stat(pem, &st) == 0 && (st.st_mode & 077) == 0);
    CHECK_INT(signature_keygen(pem, pub2, why, sizeof why), -1); /* never overwritten */
    CHECK_INT(signature_sign(pem, doc, strlen(doc), sig, pub2, why, sizeof why), 0);
    CHECK_STR(pub2, pub);
    CHECK_INT((int)strlen(sig), 88);
    CHECK_INT(signature_key_decode(pub, key), 0);
    CHECK_INT(signature_verify(key, doc, strlen(doc), sig, strlen(sig)), 1);
    CHECK_INT(signature_verify(key, doc, strlen(doc) - 1, sig, strlen(sig)), 0); /* one byte */
    sig[10] = sig[10] == 'A' ? 'B' : 'A';
    CHECK_INT(signature_verify(key, doc, strlen(doc), sig, strlen(sig)), 0);
    CHECK_INT(signature_sign("/nonexistent/key.pem", doc, 1, sig, pub2, why, sizeof why), -1);
    CHECK_CONTAINS(why, "/nonexistent/key.pem");
}
