/* verify.c - re-hashing an installed model file (see verify.h). */
#include "verify.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "progress.h"

#define VERIFY_BLOCK (1 << 20)
#define VERIFY_TICK_MS 100

/* Reads and hashes the open file `fd` of `size` bytes into `md`, reporting as it goes.
 * VERIFY_OK when every byte was read. */
static verify_outcome verify_hash(int fd, int64_t size, EVP_MD_CTX *md, unsigned char *buf,
                                  const download_hooks *hooks, verify_result *res) {
    int64_t done = 0, last = 0;
    hooks->report(hooks->ud, JOB_VERIFYING, 0, size);
    for (;;) {
        int stop = hooks->should_stop(hooks->ud);
        if (stop == 1) return VERIFY_CANCELLED;
        if (stop == 2) return VERIFY_STOPPED;
        ssize_t n = read(fd, buf, VERIFY_BLOCK);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            snprintf(res->error, sizeof res->error, "cannot read the model file: %s",
                     strerror(errno));
            return VERIFY_FAILED;
        }
        if (n == 0) break;
        EVP_DigestUpdate(md, buf, (size_t)n);
        done += n;
        int64_t now = progress_now_ms();
        if (now - last >= VERIFY_TICK_MS) {
            last = now;
            hooks->report(hooks->ud, JOB_VERIFYING, done, size > done ? size : done);
        }
    }
    res->size = done;
    return VERIFY_OK;
}

static void verify_hex(const unsigned char *d, char hex[65]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[64] = '\0';
}

verify_outcome verify_run(const char *path, const char *checksum, const download_hooks *hooks,
                          verify_result *res) {
    memset(res, 0, sizeof *res);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(res->error, sizeof res->error, "cannot open the model file %s: %s", path,
                 strerror(errno));
        if (fd >= 0) close(fd);
        return VERIFY_FAILED;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *buf = malloc(VERIFY_BLOCK), digest[32];
    verify_outcome o = VERIFY_FAILED;
    if (!md || !buf || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        snprintf(res->error, sizeof res->error, "out of memory");
    else
        o = verify_hash(fd, (int64_t)st.st_size, md, buf, hooks, res);
    if (o == VERIFY_OK) {
        EVP_DigestFinal_ex(md, digest, NULL);
        verify_hex(digest, res->hex);
        if (strlen(checksum) != 71 || strcasecmp(res->hex, checksum + 7) != 0) o = VERIFY_MISMATCH;
    }
    free(buf);
    EVP_MD_CTX_free(md);
    close(fd);
    return o;
}
