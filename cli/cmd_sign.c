/* cmd_sign.c - mgctl's `gallery` command (its status is in cmd_gallery.c) and gallery signing,
 * run by the gallery's operator where the private key is (no server involved):
 * `mgctl gallery keygen KEY.pem` makes an Ed25519 key and prints its public key for
 * server.json; `mgctl gallery sign --key KEY.pem FILE [--out SIG]` writes the signature of
 * FILE's exact bytes (default FILE.sig) and prints the public key. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgctl.h"
#include "signature.h"

#define CTL_SIGN_MAX (256L * 1024 * 1024) /* largest gallery file signed */

/* Reads the whole of `path`. malloc'd bytes and *len, or NULL (printed). */
static char *ctl_sign_read(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long size = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && size <= CTL_SIGN_MAX &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)size + 1)) &&
        fread(buf, 1, (size_t)size, f) == (size_t)size) {
        fclose(f);
        *len = (size_t)size;
        return buf;
    }
    fprintf(stderr, "mgctl: cannot read %s: %s\n", path,
            size > CTL_SIGN_MAX ? "larger than 256 MiB" : strerror(errno ? errno : EIO));
    if (f) fclose(f);
    free(buf);
    return NULL;
}

/* Writes `text` and a newline to `path` (replacing it through a temporary file). */
static int ctl_sign_write(const char *path, const char *text) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int ok = f && fprintf(f, "%s\n", text) > 0;
    if (f && fclose(f) != 0) ok = 0;
    if (ok && rename(tmp, path) == 0) return 0;
    fprintf(stderr, "mgctl: cannot write %s: %s\n", path, strerror(errno));
    remove(tmp);
    return -1;
}

static int ctl_gallery_sign(const ctl *c, int argc, char **argv) {
    const char *key = NULL, *out = NULL, *file = NULL, *v;
    char outbuf[4096], sig[SIGNATURE_B64], pub[SIGNATURE_KEY_B64], why[512];
    for (int i = 0; i < argc; i++) {
        int r;
        if ((r = ctl_opt(argc, argv, &i, "--key", &v)) != 0) {
            if (r < 0) return ctl_usage_error("--key needs a file");
            key = v;
        } else if ((r = ctl_opt(argc, argv, &i, "--out", &v)) != 0) {
            if (r < 0) return ctl_usage_error("--out needs a file");
            out = v;
        } else if (argv[i][0] == '-' || file) {
            return ctl_usage_error("gallery sign: unexpected %s", argv[i]);
        } else {
            file = argv[i];
        }
    }
    if (!key || !file) return ctl_usage_error("gallery sign needs --key KEY.pem and a FILE");
    if (!out) snprintf(outbuf, sizeof outbuf, "%s.sig", file), out = outbuf;
    size_t len = 0;
    char *data = ctl_sign_read(file, &len);
    if (!data) return CTL_ERROR;
    int rc = signature_sign(key, data, len, sig, pub, why, sizeof why);
    free(data);
    if (rc < 0) {
        fprintf(stderr, "mgctl: %s\n", why);
        return CTL_ERROR;
    }
    if (ctl_sign_write(out, sig) < 0) return CTL_ERROR;
    if (c->json) {
        json_t *o = json_pack("{s:s,s:s,s:s}", "signature_file", out, "signature", sig,
                              "public_key", pub);
        ctl_print_json(o);
        json_decref(o);
    } else {
        printf("signed %s (%zu bytes): %s\npublic_key: %s\n", file, len, out, pub);
    }
    return CTL_OK;
}

static int ctl_gallery_keygen(const ctl *c, int argc, char **argv) {
    char pub[SIGNATURE_KEY_B64], why[512];
    if (argc != 1 || argv[0][0] == '-')
        return ctl_usage_error("gallery keygen needs one FILE for the private key");
    if (signature_keygen(argv[0], pub, why, sizeof why) < 0) {
        fprintf(stderr, "mgctl: %s\n", why);
        return CTL_ERROR;
    }
    if (c->json) {
        json_t *o = json_pack("{s:s,s:s}", "private_key_file", argv[0], "public_key", pub);
        ctl_print_json(o);
        json_decref(o);
    } else {
        printf("private key: %s (keep it secret)\npublic_key: %s\n", argv[0], pub);
    }
    return CTL_OK;
}

int ctl_cmd_gallery(const ctl *c, int argc, char **argv) {
    if (argc >= 1 && strcmp(argv[0], "sign") == 0) return ctl_gallery_sign(c, argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "keygen") == 0)
        return ctl_gallery_keygen(c, argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "status") == 0)
        return ctl_cmd_gallery_status(c, argc - 1, argv + 1);
    return ctl_usage_error("gallery takes status, sign or keygen");
}
