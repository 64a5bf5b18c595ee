/* test_hashpipe.c - installer/hashpipe.c: the SHA-256 of a file that grows while it is
 * hashed equals the digest of the whole file, for sizes around the pipe's 1 MiB read size,
 * fed in uneven pieces, starting with bytes already there; a file shorter than what was fed
 * is an error, never a digest; cancelling is safe at any point. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "hashpipe.h"
#include "unit.h"

#define MiB (1024 * 1024)

/* Writes `len` bytes of data to a new file in pieces of pseudo-random size, feeding the pipe
 * after each, with `already` bytes written before the pipe starts. Returns 0 and the hex
 * digest, or -1. */
static int hash_growing(const char *data, size_t len, size_t already, char hex[65]) {
    int fd = open(unit_path("grow"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    if (already > len) already = len;
    CHECK_INT(write(fd, data, already), (ssize_t)already);
    hashpipe hp;
    CHECK_INT(hashpipe_start(&hp, fd, (int64_t)already), 0);
    size_t off = already;
    unsigned x = 12345;
    while (off < len) {
        x = x * 1103515245u + 12345u;
        size_t n = 1 + (x >> 8) % 300000;
        if (n > len - off) n = len - off;
        CHECK_INT(pwrite(fd, data + off, n, (off_t)off), (ssize_t)n);
        off += n;
        hashpipe_feed(&hp, (int64_t)off);
    }
    int rc = hashpipe_finish(&hp, hex);
    close(fd);
    return rc;
}

UNIT_TEST(digest_of_a_growing_file_equals_the_whole_files) {
    static const size_t sizes[] = {0,   1,       63,      64,      65,
                                   MiB - 1, MiB, MiB + 1, 2 * MiB, 3 * MiB + 4321};
    char *data = unit_random_bytes(3 * MiB + 4321, 9);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char want[65], got[65] = "";
        unit_sha256_hex(data, sizes[i], want);
        if (hash_growing(data, sizes[i], 0, got) != 0 || strcmp(got, want) != 0)
            unit_fail(__FILE__, __LINE__, "%zu bytes: digest %s, expected %s", sizes[i], got, want);
    }
    free(data);
}

UNIT_TEST(bytes_already_there_are_hashed_first) {
    static const size_t already[] = {1, 4096, MiB, MiB + 7, 2 * MiB};
    size_t len = 2 * MiB + 99;
    char *data = unit_random_bytes(len, 4);
    char want[65];
    unit_sha256_hex(data, len, want);
    for (size_t i = 0; i < sizeof already / sizeof already[0]; i++) {
        char got[65] = "";
        if (hash_growing(data, len, already[i], got) != 0 || strcmp(got, want) != 0)
            unit_fail(__FILE__, __LINE__, "%zu bytes there at the start: digest %s, expected %s",
                      already[i], got, want);
    }
    free(data);
}

UNIT_TEST(known_digests) {
    char hex[65];
    CHECK_INT(hash_growing("", 0, 0, hex), 0);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK_INT(hash_growing("abc", 3, 0, hex), 0);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* Fed more bytes than the file holds (it was truncated under the pipe): an error. */
UNIT_TEST(short_file_is_an_error_not_a_digest) {
    int fd = open(unit_path("short"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    char *data = unit_random_bytes(5000, 1);
    CHECK_INT(write(fd, data, 5000), 5000);
    hashpipe hp;
    CHECK_INT(hashpipe_start(&hp, fd, 5000), 0);
    hashpipe_feed(&hp, 9000);
    char hex[65] = "";
    errno = 0;
    CHECK_INT(hashpipe_finish(&hp, hex), -1);
    CHECK(errno != 0);
    close(fd);
    free(data);
}

UNIT_TEST(cancel_is_safe_at_any_point) {
    int fd = open(unit_path("c"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    char *data = unit_random_bytes(3 * MiB, 2);
    CHECK_INT(write(fd, data, 3 * MiB), 3 * MiB);
    hashpipe hp;
    memset(&hp, 0, sizeof hp);
    hashpipe_cancel(&hp); /* never started */
    CHECK_INT(hashpipe_start(&hp, fd, 3 * MiB), 0);
    hashpipe_cancel(&hp); /* while hashing */
    hashpipe_cancel(&hp); /* twice */
    CHECK_INT(hashpipe_start(&hp, fd, 0), 0);
    hashpipe_cancel(&hp); /* while waiting for bytes */
    /* and a pipe started again hashes from byte 0 */
    char hex[65], want[65];
    CHECK_INT(hashpipe_start(&hp, fd, MiB), 0);
    hashpipe_feed(&hp, 3 * MiB);
    CHECK_INT(hashpipe_finish(&hp, hex), 0);
    CHECK_STR(hex, unit_sha256_hex(data, 3 * MiB, want));
    close(fd);
    free(data);
}
