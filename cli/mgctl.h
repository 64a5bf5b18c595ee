/* mgctl.h - the command-line client of the Model Gallery API: what its parts share.
 *
 * main.c parses the options and runs one command; api.c sends requests (libcurl) and turns
 * answers into JSON or a readable error; watch.c follows a job on the progress stream and
 * draws its progress; format.c prints sizes, times and tables; cmd_*.c are the commands. */
#ifndef MGCTL_H
#define MGCTL_H

#include <jansson.h>
#include <stdio.h>

/* Exit codes scripts can rely on (README, `mgctl --help`). */
enum {
    CTL_OK = 0,          /* done */
    CTL_ERROR = 1,       /* any other error the server reported (400, 5xx, ...) */
    CTL_USAGE = 2,       /* wrong command line */
    CTL_UNREACHABLE = 3, /* no answer from the server, or not the API */
    CTL_NOT_FOUND = 4,   /* no such model, job or entry (404) */
    CTL_CONFLICT = 5,    /* refused for the state things are in (409): already installed, up
                            to date, finished; a preflight that is not ok */
    CTL_JOB_FAILED = 6,  /* the job ended failed (a mismatch, a download error) */
    CTL_JOB_STOPPED = 7, /* the job ended cancelled, or was paused, while waiting */
    CTL_DENIED = 8,      /* 401 or 403: a token is needed or wrong, or the origin refused */
    CTL_NO_SPACE = 9     /* 507: not enough disk space */
};

typedef enum { CTL_PROGRESS_AUTO, CTL_PROGRESS_BAR, CTL_PROGRESS_PLAIN, CTL_PROGRESS_NONE }
    ctl_progress;

typedef struct ctl {
    const char *url;      /* base URL, no trailing slash (owned by argv or the environment) */
    const char *token;    /* api_token, or NULL */
    int json;             /* --json: print answers as JSON */
    int wait;             /* 0 with --no-wait */
    ctl_progress progress;
    int timeout_s;        /* per request (not for waiting on a job) */
} ctl;

/* ---- api.c ---- */

/* An answer: the HTTP status (0: none) and the parsed JSON body (owned, may be NULL). */
typedef struct ctl_answer {
    long status;
    json_t *body;
} ctl_answer;

/* Sends `method` `path` (with its query, already encoded) and parses the JSON answer into
 * *ans (free with ctl_answer_free). Returns the exit code the answer maps to: CTL_OK for
 * 2xx; otherwise prints the server's error message (or why there was none) to stderr. */
int ctl_request(const ctl *c, const char *method, const char *path, ctl_answer *ans);
/* As ctl_request, printing nothing. */
int ctl_request_quiet(const ctl *c, const char *method, const char *path, ctl_answer *ans);
void ctl_answer_free(ctl_answer *ans);

/* The exit code of an HTTP status. */
int ctl_exit_of(long status);

/* Appends "&key=value" (value percent-encoded) to the query `q` (size n). */
void ctl_query_add(char *q, size_t n, const char *key, const char *value);

/* Percent-encodes `s` as a path segment into out (size n). */
void ctl_escape(const char *s, char *out, size_t n);

/* Prints `body` (borrowed) as indented JSON on stdout. */
void ctl_print_json(json_t *body);

/* GETs `path` and prints the answer's body: as JSON with --json, else with `print` (which
 * borrows it). Returns the exit code, as ctl_request. */
int ctl_get_print(const ctl *c, const char *path, void (*print)(json_t *body));

/* ---- watch.c ---- */

/* Follows job `job_id` (reading the progress stream, and the job itself when the stream is
 * quiet) until it ends or pauses, drawing progress as c->progress says on stderr. Prints
 * the outcome (the job as JSON with --json). Returns CTL_OK (installed), CTL_JOB_FAILED,
 * CTL_JOB_STOPPED, or the exit code of a request that failed. */
int ctl_watch(const ctl *c, const char *job_id);

/* ---- format.c ---- */

/* "1.23 GB", "512.0 MB", "12 KB", "17 B" into out (size n); returns out. */
char *ctl_bytes(double bytes, char *out, size_t n);
/* "1:02:03", "2:03", "0:07" into out (size n); returns out. */
char *ctl_duration(long long seconds, char *out, size_t n);
/* Makes every string in `v` (borrowed; changed in place) safe to print on a terminal: each
 * control character (C0, DEL, C1; newlines and tabs too) becomes '?', so that a gallery's
 * text can neither drive the terminal nor forge lines. For human output only: --json prints
 * the answer as it came (JSON escapes them). */
void ctl_printable(json_t *v);
/* The string `key` of `obj` (borrowed), or `def`. */
const char *ctl_str(json_t *obj, const char *key, const char *def);
/* Prints the rows of a table: `cols` headers, then each row's cells (row-major, `nrows`
 * rows), columns padded to their widest cell; the last column is not padded. */
void ctl_table(const char *const *heads, int cols, const char **cells, int nrows);

/* ---- commands (cmd_gallery.c, cmd_jobs.c, cmd_models.c, cmd_sign.c) ----
 * Each takes the arguments after the command name and returns the exit code. */
int ctl_cmd_search(const ctl *c, int argc, char **argv);
int ctl_cmd_show(const ctl *c, int argc, char **argv);
int ctl_cmd_preflight(const ctl *c, int argc, char **argv);
int ctl_cmd_system(const ctl *c, int argc, char **argv);
int ctl_cmd_install(const ctl *c, int argc, char **argv);
int ctl_cmd_jobs(const ctl *c, int argc, char **argv);
int ctl_cmd_cancel(const ctl *c, int argc, char **argv);
int ctl_cmd_pause(const ctl *c, int argc, char **argv);
int ctl_cmd_resume(const ctl *c, int argc, char **argv);
int ctl_cmd_ls(const ctl *c, int argc, char **argv);
int ctl_cmd_rm(const ctl *c, int argc, char **argv);
int ctl_cmd_update(const ctl *c, int argc, char **argv);
int ctl_cmd_verify(const ctl *c, int argc, char **argv);
int ctl_cmd_cleanup(const ctl *c, int argc, char **argv);
int ctl_cmd_gallery(const ctl *c, int argc, char **argv);
/* gallery status (cmd_gallery.c); ctl_cmd_gallery (cmd_sign.c) dispatches to it. */
int ctl_cmd_gallery_status(const ctl *c, int argc, char **argv);

/* The value of option `name` at argv[*i] ("--name=v" or "--name v", moving *i past it):
 * 1 and *value, 0 when argv[*i] is not that option, -1 when its value is missing. */
int ctl_opt(int argc, char **argv, int *i, const char *name, const char **value);

/* Prints "mgctl: <message>" on stderr and returns CTL_USAGE. */
int ctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Waits for the job of an answer that queued one (202 {job_id, ...}) unless c->wait is 0,
 * then prints what happened. `verb` says what it does ("installing"). Returns the exit code. */
int ctl_follow(const ctl *c, json_t *accepted, const char *verb);

#endif
