/* job_index.c - jobs/index: reading and parsing it, and writing a new one with one job put
 * in its place and the history pruned (see job_index.h). */
#include "job_index.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "id.h"

#define JOB_INDEX_HEADER "mg-jobs-index 1\n"

/* A growable byte buffer for the new file (owned by the writer). */
typedef struct job_index_buf {
    char *data;
    size_t len, cap;
    int failed; /* memory ran out */
} job_index_buf;

static void job_index_buf_add(job_index_buf *b, const char *data, size_t len) {
    if (b->failed) return;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + len) cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

/* ---- reading ---- */

/* Parses one line (without its '\n') into `e`. 0, or -1 when it is not an index line. */
static int job_index_parse_line(const char *line, size_t len, job_index_entry *e) {
    const char *end = line + len, *p = line;
    if (len < ID_JOB_LEN + 1 || line[ID_JOB_LEN] != ' ') return -1;
    e->job_id = line;
    p += ID_JOB_LEN + 1;
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    char word[24];
    if (!sp || (size_t)(sp - p) >= sizeof word) return -1;
    memcpy(word, p, (size_t)(sp - p));
    word[sp - p] = '\0';
    if (job_status_parse(word, &e->status) < 0) return -1;
    p = sp + 1;
    e->created_ns = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++) e->created_ns = e->created_ns * 10 + (*p - '0');
    if (p >= end || *p != ' ') return -1;
    e->model_id = ++p;
    sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp || !id_model_valid(p, (size_t)(sp - p))) return -1;
    e->model_len = (size_t)(sp - p);
    e->json = sp + 1;
    e->json_len = (size_t)(end - e->json);
    if (e->json_len < 2 || e->json[0] != '{' || end[-1] != '}') return -1;
    return 0;
}

/* Splits ix->text into entries. 0, or -1 when a line does not parse. */
static int job_index_parse(job_index *ix) {
    size_t hlen = strlen(JOB_INDEX_HEADER), lines = 0;
    if (ix->len < hlen || memcmp(ix->text, JOB_INDEX_HEADER, hlen) != 0) return -1;
    for (size_t i = hlen; i < ix->len; i++) lines += ix->text[i] == '\n';
    ix->entries = calloc(lines ? lines : 1, sizeof *ix->entries);
    if (!ix->entries) return -1;
    const char *p = ix->text + hlen, *end = ix->text + ix->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) return -1; /* a cut last line */
        job_index_entry *e = &ix->entries[ix->count];
        if (job_index_parse_line(p, (size_t)(nl - p), e) < 0) return -1;
        e->line = p;
        e->line_len = (size_t)(nl - p) + 1;
        ix->n_status[e->status]++;
        ix->count++;
        p = nl + 1;
    }
    return 0;
}

/* Fills the per-status tables of a parsed index. 0, or -1 when memory ran out. */
static int job_index_tables(job_index *ix) {
    size_t fill[JOB_STATUS_COUNT] = {0};
    for (int s = 0; s < JOB_STATUS_COUNT; s++) {
        ix->by_status[s] = malloc((ix->n_status[s] ? ix->n_status[s] : 1) * sizeof(size_t));
        if (!ix->by_status[s]) return -1;
    }
    for (size_t i = 0; i < ix->count; i++) {
        int s = ix->entries[i].status;
        ix->by_status[s][fill[s]++] = i;
    }
    return 0;
}

job_index *job_index_read(const char *path, mg_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            mg_error_set(err, 500, "job_index_missing", NULL, "%s does not exist", path);
        else
            mg_error_set(err, 500, "job_index_damaged", NULL, "cannot open %s: %s", path,
                         strerror(errno));
        return NULL;
    }
    job_index *ix = calloc(1, sizeof *ix);
    if (!ix || fstat(fd, &ix->st) != 0 || !(ix->text = malloc((size_t)ix->st.st_size + 1))) {
        close(fd);
        job_index_free(ix);
        mg_error_set(err, 500, "internal_error", NULL, "cannot read %s", path);
        return NULL;
    }
    ssize_t n = 0;
    while (ix->len < (size_t)ix->st.st_size &&
           (n = read(fd, ix->text + ix->len, (size_t)ix->st.st_size - ix->len)) > 0)
        ix->len += (size_t)n;
    close(fd);
    ix->text[ix->len] = '\0';
    if (n < 0 || job_index_parse(ix) < 0 || job_index_tables(ix) < 0) {
        job_index_free(ix);
        mg_error_set(err, 500, "job_index_damaged", NULL, "%s is damaged", path);
        return NULL;
    }
    return ix;
}

void job_index_free(job_index *ix) {
    if (!ix) return;
    for (int s = 0; s < JOB_STATUS_COUNT; s++) free(ix->by_status[s]);
    free(ix->entries);
    free(ix->text);
    free(ix);
}

int job_index_is_current(const job_index *ix, const struct stat *st) {
    return ix && ix->st.st_dev == st->st_dev && ix->st.st_ino == st->st_ino &&
           ix->st.st_size == st->st_size && ix->st.st_mtim.tv_sec == st->st_mtim.tv_sec &&
           ix->st.st_mtim.tv_nsec == st->st_mtim.tv_nsec;
}

size_t job_index_count(const job_index *ix, int status) {
    if (status < 0) return ix->count;
    return status < JOB_STATUS_COUNT ? ix->n_status[status] : 0;
}

const job_index_entry *job_index_get(const job_index *ix, int status, size_t i) {
    if (i >= job_index_count(ix, status)) return NULL;
    return &ix->entries[status < 0 ? i : ix->by_status[status][i]];
}

const job_index_entry *job_index_find(const job_index *ix, const char *job_id) {
    if (!ix || !job_id || strlen(job_id) != ID_JOB_LEN) return NULL;
    for (size_t i = 0; i < ix->count; i++)
        if (memcmp(ix->entries[i].job_id, job_id, ID_JOB_LEN) == 0) return &ix->entries[i];
    return NULL;
}

/* ---- writing ---- */

long long job_index_created_ns(json_t *job) {
    json_t *ns = json_object_get(job, "created_ns");
    if (json_is_integer(ns) && json_integer_value(ns) > 0) return json_integer_value(ns);
    const char *at = json_string_value(json_object_get(job, "created_at"));
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!at || !strptime(at, "%Y-%m-%dT%H:%M:%S", &tm)) return 0;
    time_t t = timegm(&tm);
    return t > 0 ? (long long)t * 1000000000LL : 0;
}

/* The index line of `job` (borrowed): malloc'd, length in *len; NULL when the job has no
 * valid ids or memory ran out. */
static char *job_index_line(json_t *job, size_t *len) {
    const char *job_id = json_string_value(json_object_get(job, "job_id"));
    const char *model_id = json_string_value(json_object_get(job, "model_id"));
    if (!job_id || !id_job_valid(job_id) || !model_id ||
        !id_model_valid(model_id, strlen(model_id)))
        return NULL;
    json_t *pub = job_public(job);
    char *text = json_dumps(pub, JSON_COMPACT);
    json_decref(pub);
    char *line = NULL;
    int n = text ? asprintf(&line, "%s %s %lld %s %s\n", job_id,
                            job_status_name(job_get_status(job)), job_index_created_ns(job),
                            model_id, text)
                 : -1;
    free(text);
    if (n < 0) return NULL;
    *len = (size_t)n;
    return line;
}

/* The new file being built: keeps `keep` finished entries, newest first. */
typedef struct job_index_out {
    job_index_buf buf;
    long keep, finished;
    job_index_prune_fn on_prune;
    void *ctx;
} job_index_out;

static void job_index_emit(job_index_out *o, const char *line, size_t len, job_status st,
                           const char *job_id) {
    if (job_status_terminal(st) && ++o->finished > o->keep) {
        char id[ID_JOB_LEN + 1];
        memcpy(id, job_id, ID_JOB_LEN);
        id[ID_JOB_LEN] = '\0';
        if (o->on_prune) o->on_prune(o->ctx, id);
        return;
    }
    job_index_buf_add(&o->buf, line, len);
}

/* Writes o->buf to `path` through a temporary file (no link followed). 0, or -1 and err. */
static int job_index_store(const char *path, job_index_out *o, mg_error *err) {
    char tmp[4200];
    if (o->buf.failed) return mg_error_set(err, 500, "internal_error", NULL, "out of memory");
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    fs_unlink(tmp, NULL); /* a leftover of a writer that died, or a planted link */
    int fd = fs_open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644, err);
    if (fd < 0) return -1;
    size_t done = 0;
    while (done < o->buf.len) {
        ssize_t w = write(fd, o->buf.data + done, o->buf.len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += (size_t)w;
    }
    int e = errno, ok = done == o->buf.len;
    if (close(fd) != 0 && ok) ok = 0, e = errno;
    if (ok && fs_rename(tmp, path, err) == 0) return 0;
    fs_unlink(tmp, NULL);
    if (!ok) mg_error_set(err, 500, "io_error", NULL, "cannot write %s: %s", path, strerror(e));
    return -1;
}

static void job_index_out_init(job_index_out *o, long keep, job_index_prune_fn fn, void *ctx) {
    memset(o, 0, sizeof *o);
    o->keep = keep;
    o->on_prune = fn;
    o->ctx = ctx;
    job_index_buf_add(&o->buf, JOB_INDEX_HEADER, strlen(JOB_INDEX_HEADER));
}

/* 1 when a job created at `ns` with id `id` sorts before (is newer than) entry `e`. */
static int job_index_before(long long ns, const char *id, const job_index_entry *e) {
    if (ns != e->created_ns) return ns > e->created_ns;
    return memcmp(id, e->job_id, ID_JOB_LEN) > 0;
}

int job_index_put(const char *path, const job_index *old, json_t *job, long keep_finished,
                  job_index_prune_fn on_prune, void *ctx, mg_error *err) {
    job_index_out o;
    size_t len = 0;
    char *line = job ? job_index_line(job, &len) : NULL;
    if (job && !line)
        return mg_error_set(err, 500, "internal_error", NULL, "cannot index a job");
    const char *id = job ? json_string_value(json_object_get(job, "job_id")) : NULL;
    long long ns = job ? job_index_created_ns(job) : 0;
    job_status st = job ? job_get_status(job) : JOB_QUEUED;
    job_index_out_init(&o, keep_finished, on_prune, ctx);
    for (size_t i = 0; old && i < old->count; i++) {
        const job_index_entry *e = &old->entries[i];
        if (id && memcmp(e->job_id, id, ID_JOB_LEN) == 0) continue;
        if (line && job_index_before(ns, id, e)) {
            job_index_emit(&o, line, len, st, id);
            free(line);
            line = NULL;
        }
        job_index_emit(&o, e->line, e->line_len, e->status, e->job_id);
    }
    if (line) job_index_emit(&o, line, len, st, id);
    free(line);
    int rc = job_index_store(path, &o, err);
    free(o.buf.data);
    return rc;
}

int job_index_write_all(const char *path, json_t *jobs, long keep_finished,
                        job_index_prune_fn on_prune, void *ctx, mg_error *err) {
    job_index_out o;
    job_index_out_init(&o, keep_finished, on_prune, ctx);
    size_t i;
    json_t *job;
    json_array_foreach(jobs, i, job) {
        size_t len = 0;
        char *line = job_index_line(job, &len);
        if (!line) continue;
        job_index_emit(&o, line, len, job_get_status(job),
                       json_string_value(json_object_get(job, "job_id")));
        free(line);
    }
    int rc = job_index_store(path, &o, err);
    free(o.buf.data);
    return rc;
}
