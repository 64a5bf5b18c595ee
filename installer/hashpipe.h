/* hashpipe.h - SHA-256 of a file that grows while it is written, computed in a thread of its
 * own so that hashing overlaps the transfer. The writer appends to the file and tells the
 * pipe how many bytes are there; the hashing thread reads them back (page cache) and starts
 * their writeback early (sync_file_range) so the final fsync is short. */
#ifndef MG_HASHPIPE_H
#define MG_HASHPIPE_H

#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>

typedef struct hashpipe {
    int fd;                 /* borrowed: the file being written (read with pread) */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t avail;          /* bytes of the file ready to hash (under mu) */
    int64_t hashed;         /* bytes hashed so far (under mu) */
    int closing;            /* no more bytes will come (under mu) */
    int abort;              /* stop now (under mu) */
    int waiting;            /* the thread sleeps on cv (under mu) */
    int err;                /* errno of a failed read, or 0 (under mu) */
    int running;
    EVP_MD_CTX *md;
    unsigned char *buf;
} hashpipe;

/* Starts hashing `fd` from offset 0; `avail` bytes are there already. 0, or -1 (errno). */
int hashpipe_start(hashpipe *hp, int fd, int64_t avail);

/* Tells the pipe that the file now holds `avail` bytes. Cheap; call after every write. */
void hashpipe_feed(hashpipe *hp, int64_t avail);

/* Waits until every fed byte is hashed, writes the lower-case hex digest (64 digits + NUL)
 * into hex and releases the pipe. 0, or -1 when reading the file failed (errno set). */
int hashpipe_finish(hashpipe *hp, char hex[65]);

/* Stops the thread without a digest and releases the pipe. Safe on a pipe not running. */
void hashpipe_cancel(hashpipe *hp);

#endif
