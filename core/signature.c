/* signature.c - Ed25519 signatures of gallery documents with OpenSSL EVP (see signature.h). */
#include "signature.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char signature_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Decodes exactly `want` bytes from base64 text `s` (`len` characters, blanks around it
 * allowed, padding required). 0, or -1. */
static int signature_b64_decode(const char *s, size_t len, unsigned char *out, size_t want) {
    unsigned char buf[128];
    while (len && strchr(" \t\r\n", s[len - 1])) len--;
    while (len && strchr(" \t\r\n", s[0])) s++, len--;
    size_t chars = (want + 2) / 3 * 4, pad = (3 - want % 3) % 3;
    if (len != chars || chars > sizeof buf) return -1;
    for (size_t i = 0; i < len; i++) {
        int is_pad = i >= len - pad && s[i] == '=';
        if (!is_pad && (s[i] == '=' || !strchr(signature_alphabet, s[i]))) return -1;
    }
    if (EVP_DecodeBlock(buf, (const unsigned char *)s, (int)len) != (int)(chars / 4 * 3))
        return -1;
    memcpy(out, buf, want);
    return 0;
}

int signature_key_decode(const char *b64, unsigned char key[SIGNATURE_KEY_BYTES]) {
    return b64 ? signature_b64_decode(b64, strlen(b64), key, SIGNATURE_KEY_BYTES) : -1;
}

int signature_verify(const unsigned char key[SIGNATURE_KEY_BYTES], const void *data,
                     size_t len, const char *sig, size_t sig_len) {
    unsigned char raw[SIGNATURE_BYTES];
    if (signature_b64_decode(sig, sig_len, raw, sizeof raw) < 0) return 0;
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key,
                                                 SIGNATURE_KEY_BYTES);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = pkey && ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
             EVP_DigestVerify(ctx, raw, sizeof raw, data, len) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return ok;
}

/* The public key of `pkey` as base64 into pub. 0, or -1. */
static int signature_public_b64(EVP_PKEY *pkey, char pub[SIGNATURE_KEY_B64]) {
    unsigned char raw[SIGNATURE_KEY_BYTES];
    size_t n = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(pkey, raw, &n) != 1 || n != sizeof raw) return -1;
    EVP_EncodeBlock((unsigned char *)pub, raw, (int)n);
    return 0;
}

/* Reads an Ed25519 private key from `path`. New key, or NULL with why. */
static EVP_PKEY *signature_read_key(const char *path, char *why, size_t n) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(why, n, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    EVP_PKEY *pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    ERR_clear_error();
    if (!pkey || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519) {
        snprintf(why, n, "%s is not an Ed25519 private key in PEM (make one with `mgctl gallery "
                 "keygen FILE` or `openssl genpkey -algorithm ed25519 -out FILE`)", path);
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey;
}

int signature_sign(const char *pem_path, const void *data, size_t len,
                   char sig[SIGNATURE_B64], char pub[SIGNATURE_KEY_B64], char *why, size_t n) {
    unsigned char raw[SIGNATURE_BYTES];
    size_t raw_len = sizeof raw;
    EVP_PKEY *pkey = signature_read_key(pem_path, why, n);
    if (!pkey) return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
             EVP_DigestSign(ctx, raw, &raw_len, data, len) == 1 && raw_len == sizeof raw &&
             signature_public_b64(pkey, pub) == 0;
    if (ok) EVP_EncodeBlock((unsigned char *)sig, raw, (int)raw_len);
    else snprintf(why, n, "signing with %s failed", pem_path);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return ok ? 0 : -1;
}

int signature_keygen(const char *pem_path, char pub[SIGNATURE_KEY_B64], char *why, size_t n) {
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!pkey || signature_public_b64(pkey, pub) < 0) {
        EVP_PKEY_free(pkey);
        return snprintf(why, n, "cannot make an Ed25519 key"), -1;
    }
    int fd = open(pem_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600), ok = 0;
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        snprintf(why, n, "cannot create %s: %s", pem_path, strerror(errno));
        if (fd >= 0) close(fd);
    } else {
        ok = PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) == 1;
        if (fclose(f) != 0) ok = 0;
        if (!ok) {
            snprintf(why, n, "cannot write %s", pem_path);
            unlink(pem_path);
        }
    }
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return ok ? 0 : -1;
}
