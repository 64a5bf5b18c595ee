/* verify.h - re-hashing an installed model file (a verify job): SHA-256 of the whole file,
 * read in large blocks, with progress reports and stop checks between blocks. */
#ifndef MG_VERIFY_H
#define MG_VERIFY_H

#include <stdint.h>

#include "download.h"

typedef enum {
    VERIFY_OK,        /* the file matches the checksum */
    VERIFY_MISMATCH,  /* it does not: result.hex is what it holds */
    VERIFY_FAILED,    /* it cannot be read: result.error says why */
    VERIFY_CANCELLED, /* the cancel hook fired */
    VERIFY_STOPPED    /* the daemon stops: the job starts over at the next start */
} verify_outcome;

typedef struct verify_result {
    int64_t size;      /* bytes hashed */
    char hex[65];      /* the file's SHA-256 */
    char error[512];
} verify_result;

/* Hashes `path` (absolute) and compares with `checksum` ("sha256:<64 hex>"). The hooks are
 * download's: report(verifying, bytes hashed, file size) and should_stop (1 cancel, 2
 * shutdown; a pause request counts as nothing here). */
verify_outcome verify_run(const char *path, const char *checksum, const download_hooks *hooks,
                          verify_result *res);

#endif
