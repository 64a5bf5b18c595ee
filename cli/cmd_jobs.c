/* cmd_jobs.c - mgctl's job commands: install (and waiting on any queued job), the job list,
 * one job (jobs show), cancel, pause and resume. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgctl.h"

int ctl_follow(const ctl *c, json_t *accepted, const char *done) {
    const char *job_id = ctl_str(accepted, "job_id", NULL);
    const char *model = ctl_str(accepted, "model_id", "?");
    if (!job_id) {
        fprintf(stderr, "mgctl: the answer names no job\n");
        return CTL_UNREACHABLE;
    }
    if (!c->wait) {
        if (c->json) ctl_print_json(accepted);
        else printf("%s: job %s %s\n", model, job_id, ctl_str(accepted, "status", "queued"));
        return CTL_OK;
    }
    if (!c->json && c->progress != CTL_PROGRESS_NONE)
        fprintf(stderr, "%s: job %s (%s)\n", model, job_id, ctl_str(accepted, "kind", "install"));
    int rc = ctl_watch(c, job_id);
    if (rc == CTL_OK && !c->json) printf("%s %s\n", model, done);
    return rc;
}

/* POSTs `path` and follows the job it queues. */
static int ctl_post_job(const ctl *c, const char *path, const char *done) {
    ctl_answer a;
    int rc = ctl_request(c, "POST", path, &a);
    if (rc == CTL_OK) rc = ctl_follow(c, a.body, done);
    ctl_answer_free(&a);
    return rc;
}

/* A single id argument, escaped for a path, into out. 0, or CTL_USAGE. */
static int ctl_one_id(int argc, char **argv, const char *cmd, char *out, size_t n) {
    if (argc != 1 || argv[0][0] == '-') return ctl_usage_error("%s takes one id", cmd);
    ctl_escape(argv[0], out, n);
    return 0;
}

int ctl_cmd_install(const ctl *c, int argc, char **argv) {
    char id[400], path[512];
    if (ctl_one_id(argc, argv, "install", id, sizeof id)) return CTL_USAGE;
    snprintf(path, sizeof path, "/api/models/gallery/%s/install", id);
    return ctl_post_job(c, path, "installed");
}

static void ctl_jobs_print(json_t *body) {
    json_t *jobs = json_object_get(body, "jobs"), *j;
    size_t i, n = json_array_size(jobs);
    const char *heads[] = {"JOB", "MODEL", "KIND", "STATUS", "PROGRESS", "UPDATED", "ERROR"};
    const char **cells = calloc(n * 7 + 1, sizeof *cells);
    char (*pct)[16] = calloc(n + 1, sizeof *pct);
    if (!cells || !pct) return;
    json_array_foreach(jobs, i, j) {
        snprintf(pct[i], 16, "%.1f%%", json_number_value(json_object_get(j, "progress")));
        const char *row[] = {ctl_str(j, "job_id", "?"), ctl_str(j, "model_id", "?"),
                             ctl_str(j, "kind", "install"), ctl_str(j, "status", "?"), pct[i],
                             ctl_str(j, "updated_at", ""), ctl_str(j, "error_code", "")};
        memcpy(cells + i * 7, row, sizeof row);
    }
    if (n) ctl_table(heads, 7, cells, (int)n);
    printf("%zu of %lld jobs\n", n, (long long)json_integer_value(json_object_get(body, "total")));
    free(cells);
    free(pct);
}

/* One job as "name value" lines; source only once a URL has served bytes, error only when
 * the job has one. */
static void ctl_job_print(json_t *j) {
    char done[32], total[32];
    const char *err = ctl_str(j, "error", NULL), *diag = ctl_str(j, "diagnosis", NULL);
    const char *source = ctl_str(j, "source_url", NULL);
    printf("%-9s %s\n%-9s %s\n", "job", ctl_str(j, "job_id", "?"), "model",
           ctl_str(j, "model_id", "?"));
    printf("%-9s %s\n%-9s %s\n", "kind", ctl_str(j, "kind", "install"), "status",
           ctl_str(j, "status", "?"));
    printf("%-9s %.1f%%  %s / %s\n", "progress",
           json_number_value(json_object_get(j, "progress")),
           ctl_bytes((double)json_integer_value(json_object_get(j, "downloaded")), done,
                     sizeof done),
           ctl_bytes((double)json_integer_value(json_object_get(j, "total")), total,
                     sizeof total));
    if (source) printf("%-9s %s\n", "source", source);
    printf("%-9s %s\n", "node", ctl_str(j, "node", "-"));
    printf("%-9s %s\n%-9s %s\n", "created", ctl_str(j, "created_at", "-"), "updated",
           ctl_str(j, "updated_at", "-"));
    if (err)
        printf("%-9s %s (%s%s%s)\n", "error", err, ctl_str(j, "error_code", "unknown"),
               diag ? ", diagnosis " : "", diag ? diag : "");
}

/* jobs show ID: GET /api/models/jobs/{id}. */
static int ctl_jobs_show(const ctl *c, int argc, char **argv) {
    char id[400], path[512];
    if (ctl_one_id(argc, argv, "jobs show", id, sizeof id)) return CTL_USAGE;
    snprintf(path, sizeof path, "/api/models/jobs/%s", id);
    return ctl_get_print(c, path, ctl_job_print);
}

int ctl_cmd_jobs(const ctl *c, int argc, char **argv) {
    char q[512] = "", path[1024];
    if (argc >= 1 && strcmp(argv[0], "show") == 0) return ctl_jobs_show(c, argc - 1, argv + 1);
    static const char *const opts[] = {"status", "limit", "offset"};
    for (int i = 0; i < argc; i++) {
        int hit = 0;
        for (int k = 0; k < 3 && !hit; k++) {
            char opt[16];
            const char *v;
            snprintf(opt, sizeof opt, "--%s", opts[k]);
            int r = ctl_opt(argc, argv, &i, opt, &v);
            if (r < 0) return ctl_usage_error("%s needs a value", opt);
            if (r > 0) ctl_query_add(q, sizeof q, opts[k], v);
            hit = r > 0;
        }
        if (!hit) return ctl_usage_error("jobs: unknown argument %s", argv[i]);
    }
    snprintf(path, sizeof path, "/api/models/jobs%s%s", *q ? "?" : "", q);
    return ctl_get_print(c, path, ctl_jobs_print);
}

/* A change of one job (`method` on /api/models/jobs/{id}[suffix]); prints its status. */
static int ctl_job_change(const ctl *c, int argc, char **argv, const char *cmd,
                          const char *method, const char *suffix) {
    char id[400], path[512];
    if (ctl_one_id(argc, argv, cmd, id, sizeof id)) return CTL_USAGE;
    snprintf(path, sizeof path, "/api/models/jobs/%s%s", id, suffix);
    ctl_answer a;
    int rc = ctl_request(c, method, path, &a);
    if (rc == CTL_OK && c->json) ctl_print_json(a.body);
    else if (rc == CTL_OK)
        printf("%s: job %s %s\n", ctl_str(a.body, "model_id", "?"), argv[0],
               ctl_str(a.body, "status", "?"));
    ctl_answer_free(&a);
    return rc;
}

int ctl_cmd_cancel(const ctl *c, int argc, char **argv) {
    return ctl_job_change(c, argc, argv, "cancel", "DELETE", "");
}

int ctl_cmd_pause(const ctl *c, int argc, char **argv) {
    return ctl_job_change(c, argc, argv, "pause", "POST", "/pause");
}

int ctl_cmd_resume(const ctl *c, int argc, char **argv) {
    char id[400], path[512];
    if (ctl_one_id(argc, argv, "resume", id, sizeof id)) return CTL_USAGE;
    snprintf(path, sizeof path, "/api/models/jobs/%s/resume", id);
    return ctl_post_job(c, path, "installed");
}
