/* cmd_models.c - mgctl's commands on installed models: ls, rm, update (one, or --all that
 * have one), verify, cleanup. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgctl.h"

static void ctl_ls_print(json_t *body) {
    json_t *models = json_object_get(body, "models"), *m;
    const char *key;
    size_t n = json_object_size(models), i = 0;
    const char *heads[] = {"ID", "STATUS", "SIZE", "UPDATE", "PATH"};
    const char **cells = calloc(n * 5 + 1, sizeof *cells);
    char (*size)[32] = calloc(n + 1, sizeof *size);
    if (!cells || !size) return;
    json_object_foreach(models, key, m) {
        ctl_bytes((double)json_integer_value(json_object_get(m, "size")), size[i], 32);
        const char *row[] = {key, ctl_str(m, "status", "?"), size[i],
                             json_is_true(json_object_get(m, "update_available")) ? "available"
                                                                                 : "-",
                             ctl_str(m, "path", "")};
        memcpy(cells + i++ * 5, row, sizeof row);
    }
    if (n) ctl_table(heads, 5, cells, (int)n);
    else printf("no models\n");
    free(cells);
    free(size);
}

int ctl_cmd_ls(const ctl *c, int argc, char **argv) {
    (void)argv;
    if (argc != 0) return ctl_usage_error("ls takes no arguments");
    return ctl_get_print(c, "/api/models/installed", ctl_ls_print);
}

/* The path /api/models/{id}{suffix} of the one id argument. 0, or CTL_USAGE. */
static int ctl_model_path(int argc, char **argv, const char *cmd, const char *suffix,
                          char *path, size_t n) {
    char id[400];
    if (argc != 1 || argv[0][0] == '-') return ctl_usage_error("%s takes one model id", cmd);
    ctl_escape(argv[0], id, sizeof id);
    snprintf(path, n, "/api/models/%s%s", id, suffix);
    return 0;
}

int ctl_cmd_rm(const ctl *c, int argc, char **argv) {
    char path[512];
    if (ctl_model_path(argc, argv, "rm", "", path, sizeof path)) return CTL_USAGE;
    ctl_answer a;
    int rc = ctl_request(c, "DELETE", path, &a);
    if (rc == CTL_OK && c->json) ctl_print_json(a.body);
    else if (rc == CTL_OK)
        printf("%s deleted%s\n", argv[0],
               json_is_true(json_object_get(a.body, "file_removed")) ? " (its file removed)" : "");
    ctl_answer_free(&a);
    return rc;
}

/* POSTs /api/models/{id}/{action} and follows the job. */
static int ctl_model_job(const ctl *c, const char *id, const char *action, const char *done) {
    char path[512], esc[400];
    ctl_escape(id, esc, sizeof esc);
    snprintf(path, sizeof path, "/api/models/%s/%s", esc, action);
    ctl_answer a;
    int rc = ctl_request(c, "POST", path, &a);
    if (rc == CTL_OK) rc = ctl_follow(c, a.body, done);
    ctl_answer_free(&a);
    return rc;
}

/* update --all: every entry with update_available, one after the other. The first
 * failure's exit code, or CTL_OK (also when there was nothing to update). */
static int ctl_update_all(const ctl *c) {
    ctl_answer a;
    int rc = ctl_request(c, "GET", "/api/models/installed", &a), first = CTL_OK, count = 0;
    const char *key;
    json_t *m;
    json_object_foreach(json_object_get(a.body, "models"), key, m) {
        if (!json_is_true(json_object_get(m, "update_available"))) continue;
        count++;
        int r = ctl_model_job(c, key, "update", "updated");
        if (r != CTL_OK && first == CTL_OK) first = r;
    }
    ctl_answer_free(&a);
    if (rc == CTL_OK && count == 0 && !c->json) printf("every model is up to date\n");
    return rc != CTL_OK ? rc : first;
}

int ctl_cmd_update(const ctl *c, int argc, char **argv) {
    if (argc == 1 && strcmp(argv[0], "--all") == 0) return ctl_update_all(c);
    if (argc != 1 || argv[0][0] == '-')
        return ctl_usage_error("update takes one model id or --all");
    return ctl_model_job(c, argv[0], "update", "updated");
}

int ctl_cmd_verify(const ctl *c, int argc, char **argv) {
    if (argc != 1 || argv[0][0] == '-') return ctl_usage_error("verify takes one model id");
    return ctl_model_job(c, argv[0], "verify", "verified: the file matches its checksum");
}

static void ctl_cleanup_print(json_t *body, int dry) {
    json_t *it;
    size_t i;
    char b[32];
    json_array_foreach(json_object_get(body, "items"), i, it)
        printf("%-12s %10s  %s\n", ctl_str(it, "kind", "?"),
               ctl_bytes((double)json_integer_value(json_object_get(it, "bytes")), b, sizeof b),
               ctl_str(it, "path", ""));
    json_array_foreach(json_object_get(body, "failed"), i, it)
        fprintf(stderr, "mgctl: could not remove %s: %s\n", ctl_str(it, "path", "?"),
                ctl_str(it, "error", "?"));
    printf("%s %s in %zu item%s\n", dry ? "would free" : "freed",
           ctl_bytes((double)json_integer_value(json_object_get(body, "bytes")), b, sizeof b),
           json_array_size(json_object_get(body, "items")),
           json_array_size(json_object_get(body, "items")) == 1 ? "" : "s");
}

int ctl_cmd_cleanup(const ctl *c, int argc, char **argv) {
    int dry = 0, unregistered = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0) dry = 1;
        else if (strcmp(argv[i], "--include-unregistered") == 0) unregistered = 1;
        else return ctl_usage_error("cleanup: unknown argument %s", argv[i]);
    }
    ctl_answer a;
    int rc = ctl_request(c, dry ? "GET" : "POST",
                         unregistered && !dry ? "/api/models/cleanup?include=unregistered"
                                              : "/api/models/cleanup",
                         &a);
    if (rc == CTL_OK && c->json) ctl_print_json(a.body);
    else if (rc == CTL_OK) ctl_cleanup_print(a.body, dry);
    ctl_answer_free(&a);
    return rc;
}
