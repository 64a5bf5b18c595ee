/* signature.h - Ed25519 signatures of gallery documents (OpenSSL EVP).
 *
 * A signed gallery source names a public key: base64 of the 32-byte raw Ed25519 key (44
 * characters). Its signature file holds base64 of the 64-byte signature (88 characters)
 * over the exact bytes of the gallery document; blanks around it (a trailing newline) are
 * ignored. Signing takes a private key in PEM (PKCS#8, as `openssl genpkey -algorithm
 * ed25519` writes it). Also built into mgctl (`mgctl gallery sign`). */
#ifndef MG_SIGNATURE_H
#define MG_SIGNATURE_H

#include <stddef.h>

#define SIGNATURE_KEY_BYTES 32
#define SIGNATURE_BYTES 64
#define SIGNATURE_KEY_B64 45 /* 44 characters + NUL */
#define SIGNATURE_B64 89     /* 88 characters + NUL */

/* Decodes a public key: exactly 44 base64 characters for 32 bytes. 0, or -1. */
int signature_key_decode(const char *b64, unsigned char key[SIGNATURE_KEY_BYTES]);

/* 1 when `sig` (`sig_len` bytes of text: base64 of 64 bytes, blanks around it allowed) is a
 * valid signature of `data` (`len` bytes) by `key`; 0 otherwise (malformed or wrong). */
int signature_verify(const unsigned char key[SIGNATURE_KEY_BYTES], const void *data,
                     size_t len, const char *sig, size_t sig_len);

/* Signs `len` bytes of `data` with the Ed25519 private key in PEM file `pem_path`: the
 * signature (base64) into sig and the public key (base64) into pub. 0, or -1 with a
 * message in why (size n). */
int signature_sign(const char *pem_path, const void *data, size_t len,
                   char sig[SIGNATURE_B64], char pub[SIGNATURE_KEY_B64], char *why, size_t n);

/* Writes a new Ed25519 private key to `pem_path` (PEM, mode 0600, refused when the file
 * exists) and its public key (base64) into pub. 0, or -1 with a message in why. */
int signature_keygen(const char *pem_path, char pub[SIGNATURE_KEY_B64], char *why, size_t n);

#endif
