/* download_int.h - the state of one download (download.c), shared with the parallel
 * segments (segments.c). Not for other modules. */
#ifndef MG_DOWNLOAD_INT_H
#define MG_DOWNLOAD_INT_H

#include <curl/curl.h>
#include <stdint.h>

#include "download.h"
#include "hashpipe.h"
#include "header.h"
#include "mirror.h"
#include "partial.h"

#define DOWNLOAD_BUFFER (512L * 1024)
#define DOWNLOAD_ANNOUNCED_MAX 4 /* SHA-256 digests one response may announce */
#define SEGMENTS_MAX 16

struct download_state;

/* What a response's header says about its range and the file's version: the whole download
 * (download.c) and each segment (segments.c) keep one. */
typedef struct download_resp {
    int64_t range_start;  /* Content-Range: first byte, or -1 when absent */
    int64_t range_total;  /* its complete length, or -1 */
    char etag[PARTIAL_VALIDATOR_MAX];  /* validators, "" when absent */
    char modified[PARTIAL_VALIDATOR_MAX];
} download_resp;

/* Forgets the previous response: no range, no validators. */
void download_resp_reset(download_resp *r);
/* Keeps the header field `f` (borrowed) when it is Content-Range, ETag or Last-Modified. */
void download_resp_field(download_resp *r, const header_field *f);
/* The validator for If-Range: a strong ETag, else Last-Modified ("" when neither). Borrowed
 * from `r`. */
const char *download_resp_validator(const download_resp *r);

/* One worker slot of a segmented download: its current chunk [start, end) and its own
 * transfer. */
typedef struct download_seg {
    struct download_state *st; /* borrowed: the download */
    CURL *h;                   /* owned, NULL until first used */
    struct curl_slist *headers;
    int64_t start, end, pos;   /* the chunk; pos: next byte to write */
    int active;                /* 1: the slot holds a chunk */
    int busy;                  /* 1: its transfer is in the multi handle */
    int checked;               /* the response was checked */
    download_resp resp;        /* what its response said */
    char errbuf[CURL_ERROR_SIZE];
} download_seg;

typedef enum {
    ATTEMPT_DONE,    /* the partial holds the whole body */
    ATTEMPT_RETRY,   /* transient: back off and resume */
    ATTEMPT_FAIL,    /* permanent: st->why says why */
    ATTEMPT_STOP,    /* cancel or shutdown (st->stop) */
    ATTEMPT_REWIND,  /* start again from byte 0 at once */
    ATTEMPT_HTTP,    /* an error status: classified after the transfer */
    ATTEMPT_SPLIT    /* the file is large and ranges work: go on in segments (segments.h) */
} attempt_result;

typedef struct download_state {
    const download_spec *spec;
    const download_hooks *hooks;
    const char *const *urls; /* borrowed: the job's URLs (spec->urls, or spec->url alone) */
    int n_urls;
    int cur;              /* the URL of the current attempt */
    const char *url;      /* urls[cur] */
    char dead[MIRROR_URLS_MAX]; /* 1: the URL failed for good (404, ...) in this download */
    int reported;         /* the URL last reported through hooks->source, -1 none */
    CURL *curl;
    CURLM *multi;
    struct curl_slist *headers; /* If-Range of the current attempt */
    partial part;
    hashpipe hp;
    int64_t pos;          /* bytes in the partial */
    int64_t offset;       /* bytes in the partial when the attempt started */
    int64_t total;        /* expected size of the whole file; 0 unknown */
    int64_t limit;        /* largest body accepted */
    download_resp resp;   /* what the last response said */
    char announced[DOWNLOAD_ANNOUNCED_MAX][65]; /* SHA-256s the last response announced */
    int n_announced;
    int checked;          /* the status of the response was checked */
    attempt_result fail;  /* set by a callback that stopped the transfer, else DONE */
    int stop;             /* 1 cancel, 2 shutdown, 3 pause */
    int transient;        /* the last failure was a transient one */
    int64_t last_tick;
    int64_t t_start, t_transferred, t_hashed; /* phase times (ms), for the log */
    int64_t moved_ms;     /* when the partial last grew (stall detection) */
    int64_t moved_pos;
    long retry_base_ms, stall_s;
    long long min_speed;  /* bytes per second an attempt must average */
    int retry_max;
    char why[512];
    char code[32];        /* error code of the last failure */
    char diagnosis[24];   /* of a checksum mismatch */
    long long rate;       /* max_download_rate when the download started; 0 unlimited */
    char errbuf[CURL_ERROR_SIZE];
    /* parallel segments (segments.h); seg_n 0: one stream */
    int seg_n;            /* worker slots, each with its current chunk */
    int64_t seg_total;    /* the file's size */
    int64_t seg_next;     /* first byte not given to a slot yet */
    int64_t seg_chunk;    /* bytes per chunk */
    int64_t seg_saved_ms; /* when the slots were last written to the meta */
    download_seg segs[SEGMENTS_MAX];
} download_state;

/* Writes the error code and the reason of a failure into st->code and st->why. */
void download_fail(download_state *st, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Calls the hooks: stop check always, progress report at most every 50 ms (always with
 * `force`). 1 when the job must stop (st->stop set). */
int download_tick(download_state *st, job_status status, int force);

/* Keeps the SHA-256 that header field `f` announces (once each). */
void download_announced(download_state *st, const header_field *f);

/* 1 when the partial's validator came from the URL of the current attempt. */
int download_same_source(const download_state *st);

/* Sets the options every transfer of `st` shares on `c`: protocols, redirects, buffer,
 * timeouts, stall speed, user agent. */
void download_handle_setup(download_state *st, CURL *c);

/* Writes `len` bytes at offset `off` of the partial. 0, or -1 with st->fail. */
int download_store_at(download_state *st, const char *data, size_t len, int64_t off);

/* ratelimit_take's stop check (ud: the download). */
int download_rate_wait(void *ud);

/* 1 when no byte arrived for the stall time (st->fail set to ATTEMPT_RETRY). */
int download_stalled(download_state *st);

/* Turns a libcurl failure into an attempt result and a message in st->why. */
attempt_result download_curl_error(download_state *st, CURLcode rc);

/* Empties the partial and restarts hashing from byte 0. 0, or -1 with st->why. */
int download_rewind(download_state *st);

#endif
