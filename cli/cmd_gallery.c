/* cmd_gallery.c - mgctl's gallery commands: search, show, preflight, the state of the
 * gallery sources (gallery status), and the server's machine (system). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgctl.h"

/* The search parameters mgctl passes on, as options --name (underscores as dashes). */
static const char *const ctl_search_params[] = {
    "category", "language", "tag", "quantization", "license", "family", "fit", "sort", "order",
    "limit", "offset", "min_rating", "min_size_gb", "max_size_gb", "max_ram_gb", "max_vram_gb"};

#define CTL_NSEARCH (sizeof ctl_search_params / sizeof *ctl_search_params)

/* Adds the option at argv[*i] to the query. 0, or CTL_USAGE. */
static int ctl_search_option(int argc, char **argv, int *i, char *q, size_t n) {
    for (size_t k = 0; k < CTL_NSEARCH; k++) {
        char opt[40];
        const char *v;
        snprintf(opt, sizeof opt, "--%s", ctl_search_params[k]);
        for (char *p = opt + 2; *p; p++) if (*p == '_') *p = '-';
        int r = ctl_opt(argc, argv, i, opt, &v);
        if (r < 0) return ctl_usage_error("%s needs a value", opt);
        if (r > 0) {
            ctl_query_add(q, n, ctl_search_params[k], v);
            return 0;
        }
    }
    return ctl_usage_error("search: unknown option %s", argv[*i]);
}

static void ctl_search_print(json_t *body) {
    json_t *models = json_object_get(body, "models"), *m;
    size_t i, n = json_array_size(models);
    const char *heads[] = {"ID", "SIZE", "RATING", "FIT", "NAME"};
    const char **cells = calloc(n * 5 + 1, sizeof *cells);
    char (*texts)[2][32] = calloc(n + 1, sizeof *texts);
    if (!cells || !texts) return;
    json_array_foreach(models, i, m) {
        json_t *rating = json_object_get(m, "rating");
        ctl_bytes(json_number_value(json_object_get(m, "sizeGb")) * 1e9, texts[i][0], 32);
        snprintf(texts[i][1], 32, json_is_number(rating) ? "%.1f" : "-", json_number_value(rating));
        cells[i * 5] = ctl_str(m, "id", "?");
        cells[i * 5 + 1] = texts[i][0];
        cells[i * 5 + 2] = texts[i][1];
        cells[i * 5 + 3] = ctl_str(m, "fit", "-");
        cells[i * 5 + 4] = ctl_str(m, "name", "");
    }
    if (n) ctl_table(heads, 5, cells, (int)n);
    printf("%zu of %lld models\n", n,
           (long long)json_integer_value(json_object_get(body, "total")));
    free(cells);
    free(texts);
}

int ctl_cmd_search(const ctl *c, int argc, char **argv) {
    char q[6144] = "", terms[2048] = "", path[8192];
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) == 0) {
            if (ctl_search_option(argc, argv, &i, q, sizeof q) != 0) return CTL_USAGE;
        } else {
            size_t used = strlen(terms);
            snprintf(terms + used, sizeof terms - used, "%s%s", used ? " " : "", argv[i]);
        }
    }
    if (*terms) ctl_query_add(q, sizeof q, "query", terms);
    snprintf(path, sizeof path, "/api/models/gallery/search%s%s", *q ? "?" : "", q);
    return ctl_get_print(c, path, ctl_search_print);
}

/* The gallery model `id` (a new reference), or NULL and *rc. */
static json_t *ctl_find_model(const ctl *c, const char *id, int *rc) {
    char q[512] = "", path[1024];
    ctl_query_add(q, sizeof q, "query", id);
    ctl_query_add(q, sizeof q, "limit", "1000");
    snprintf(path, sizeof path, "/api/models/gallery/search?%s", q);
    ctl_answer a;
    json_t *found = NULL, *m;
    size_t i;
    *rc = ctl_request(c, "GET", path, &a);
    json_array_foreach(json_object_get(a.body, "models"), i, m) {
        if (strcmp(ctl_str(m, "id", ""), id) == 0) found = json_incref(m);
    }
    ctl_answer_free(&a);
    if (!found && *rc == CTL_OK) {
        fprintf(stderr, "mgctl: no model with id %s in the gallery\n", id);
        *rc = CTL_NOT_FOUND;
    }
    return found;
}

/* Joins the strings of the array `key` of `m` with ", " into out. */
static const char *ctl_list(json_t *m, const char *key, char *out, size_t n) {
    json_t *v;
    size_t i;
    out[0] = '\0';
    json_array_foreach(json_object_get(m, key), i, v) {
        size_t used = strlen(out);
        if (json_is_string(v)) snprintf(out + used, n - used, "%s%s", used ? ", " : "",
                                        json_string_value(v));
    }
    return out[0] ? out : "-";
}

static void ctl_show_print(json_t *m, json_t *entry, json_t *pre) {
    char buf[1024], size[32];
    json_t *hw = json_object_get(m, "recommendedHardware");
    printf("%-13s %s\n%-13s %s\n", "id", ctl_str(m, "id", "?"), "name", ctl_str(m, "name", ""));
    printf("%-13s %s\n", "size",
           ctl_bytes(json_number_value(json_object_get(m, "sizeGb")) * 1e9, size, sizeof size));
    printf("%-13s %s\n%-13s %s\n", "quantization", ctl_str(m, "quantization", "-"), "license",
           ctl_str(m, "license", "-"));
    printf("%-13s %s\n", "categories", ctl_list(m, "categories", buf, sizeof buf));
    printf("%-13s %s\n", "languages", ctl_list(m, "languages", buf, sizeof buf));
    printf("%-13s %s\n", "tags", ctl_list(m, "tags", buf, sizeof buf));
    if (json_is_object(hw))
        printf("%-13s RAM %g GB, VRAM %g GB\n", "hardware",
               json_number_value(json_object_get(hw, "ramGb")),
               json_number_value(json_object_get(hw, "vramGb")));
    if (pre)
        printf("%-13s %s%s\n", "fit", ctl_str(pre, "fit", "?"),
               json_is_true(json_object_get(pre, "fit_estimated")) ? " (estimated from the size)"
                                                                  : "");
    printf("%-13s %s\n", "installed", entry ? ctl_str(entry, "status", "?") : "no");
    printf("%-13s %s\n%-13s %s\n", "checksum", ctl_str(m, "checksum", "-"), "url",
           ctl_str(m, "downloadUrl", "-"));
    printf("%-13s %s\n", "description", ctl_str(m, "description", "-"));
}

int ctl_cmd_show(const ctl *c, int argc, char **argv) {
    char path[512], id[400];
    if (argc != 1) return ctl_usage_error("show takes one model id");
    int rc;
    json_t *m = ctl_find_model(c, argv[0], &rc);
    if (!m) return rc;
    ctl_answer inst, pre;
    ctl_escape(argv[0], id, sizeof id);
    snprintf(path, sizeof path, "/api/models/gallery/%s/preflight", id);
    int prc = ctl_request_quiet(c, "GET", path, &pre);
    ctl_request_quiet(c, "GET", "/api/models/installed", &inst);
    json_t *entry = json_object_get(json_object_get(inst.body, "models"), argv[0]);
    json_t *pf = prc == CTL_OK ? pre.body : NULL;
    if (c->json) {
        json_t *out = json_pack("{s:O,s:O?,s:O?}", "model", m, "installed", entry, "preflight", pf);
        ctl_print_json(out);
        json_decref(out);
    } else {
        ctl_show_print(m, entry, pf);
    }
    ctl_answer_free(&inst);
    ctl_answer_free(&pre);
    json_decref(m);
    return CTL_OK;
}

/* The integer `key` of `obj` as a size ("1.23 GB") into out. */
static const char *ctl_size_of(json_t *obj, const char *key, char *out, size_t n) {
    return ctl_bytes((double)json_integer_value(json_object_get(obj, key)), out, n);
}

static void ctl_preflight_print(json_t *p) {
    char need[32], free_[32], mem[32];
    printf("%s: %s\n", ctl_str(p, "model_id", "?"),
           json_is_true(json_object_get(p, "ok")) ? "can be installed here" : "not now");
    printf("  disk   needs %s, %s free%s\n",
           ctl_size_of(p, "needs_bytes", need, sizeof need),
           ctl_size_of(p, "free_bytes", free_, sizeof free_),
           json_is_true(json_object_get(p, "disk_ok")) ? "" : " (not enough)");
    printf("  fit    %s (needs about %s of memory%s)\n", ctl_str(p, "fit", "?"),
           ctl_size_of(p, "needs_memory_bytes", mem, sizeof mem),
           json_is_true(json_object_get(p, "fit_estimated")) ? ", estimated from the size" : "");
    json_t *r;
    size_t i;
    json_array_foreach(json_object_get(p, "reasons"), i, r)
        printf("  - %s (%s)\n", ctl_str(r, "message", ""), ctl_str(r, "code", ""));
}

int ctl_cmd_preflight(const ctl *c, int argc, char **argv) {
    char path[512], id[400];
    if (argc != 1) return ctl_usage_error("preflight takes one model id");
    ctl_escape(argv[0], id, sizeof id);
    snprintf(path, sizeof path, "/api/models/gallery/%s/preflight", id);
    ctl_answer a;
    int rc = ctl_request(c, "GET", path, &a);
    if (rc == CTL_OK) {
        if (c->json) ctl_print_json(a.body);
        else ctl_preflight_print(a.body);
        if (!json_is_true(json_object_get(a.body, "ok"))) rc = CTL_CONFLICT;
    }
    ctl_answer_free(&a);
    return rc;
}

static void ctl_system_print(json_t *s) {
    char a[32], b[32];
    json_t *g, *disk = json_object_get(s, "disk");
    size_t i;
    printf("RAM        %s (%s available)\n", ctl_size_of(s, "ram_bytes", a, sizeof a),
           ctl_size_of(s, "ram_available_bytes", b, sizeof b));
    printf("CPU cores  %lld\n", (long long)json_integer_value(json_object_get(s, "cpu_cores")));
    if (!json_array_size(json_object_get(s, "gpus"))) printf("GPU        none\n");
    json_array_foreach(json_object_get(s, "gpus"), i, g)
        printf("GPU        %s, %s VRAM\n", ctl_str(g, "name", "?"),
               ctl_size_of(g, "vram_bytes", a, sizeof a));
    printf("disk       %s free of %s\n", ctl_size_of(disk, "free_bytes", a, sizeof a),
           ctl_size_of(disk, "total_bytes", b, sizeof b));
}

int ctl_cmd_system(const ctl *c, int argc, char **argv) {
    (void)argv;
    if (argc != 0) return ctl_usage_error("system takes no arguments");
    return ctl_get_print(c, "/api/models/system", ctl_system_print);
}

/* The integer `key` of `obj` as text into out, or "-" when it is null. */
static const char *ctl_int_of(json_t *obj, const char *key, char *out, size_t n) {
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v)) return "-";
    snprintf(out, n, "%lld", (long long)json_integer_value(v));
    return out;
}

/* One row a source: name, models, signature (null: "-", no key or not checked yet), last
 * success, url or path. Then the error of each source that has one. */
static void ctl_gallery_sources_print(json_t *sources) {
    const char *heads[] = {"SOURCE", "MODELS", "SIGNATURE", "LAST SUCCESS", "FROM"};
    size_t i, n = json_array_size(sources);
    const char **cells = calloc(n * 5 + 1, sizeof *cells);
    char (*count)[24] = calloc(n + 1, sizeof *count);
    json_t *s;
    if (!cells || !count) goto out;
    json_array_foreach(sources, i, s) {
        const char *row[] = {ctl_str(s, "name", "?"), ctl_int_of(s, "model_count", count[i], 24),
                             ctl_str(s, "signature", "-"), ctl_str(s, "last_success", "-"),
                             ctl_str(s, "url", ctl_str(s, "path", "-"))};
        memcpy(cells + i * 5, row, sizeof row);
    }
    if (n) ctl_table(heads, 5, cells, (int)n);
    json_array_foreach(sources, i, s) {
        if (ctl_str(s, "error", NULL))
            printf("%s: %s\n", ctl_str(s, "name", "?"), ctl_str(s, "error", ""));
    }
out:
    free(cells);
    free(count);
}

/* "mode M[, serving N models (fallback)][, next refresh T]"; serving and the next refresh
 * are null in local mode. Then the sources. */
static void ctl_gallery_status_print(json_t *st) {
    json_t *serving = json_object_get(st, "serving");
    const char *next = ctl_str(st, "next_refresh_at", NULL);
    printf("mode %s", ctl_str(st, "mode", "?"));
    if (json_is_object(serving))
        printf(", serving %lld models%s",
               (long long)json_integer_value(json_object_get(serving, "models")),
               json_is_true(json_object_get(serving, "fallback")) ? " (fallback)" : "");
    if (next) printf(", next refresh %s", next);
    putchar('\n');
    ctl_gallery_sources_print(json_object_get(st, "sources"));
}

int ctl_cmd_gallery_status(const ctl *c, int argc, char **argv) {
    (void)argv;
    if (argc != 0) return ctl_usage_error("gallery status takes no arguments");
    return ctl_get_print(c, "/api/models/gallery/status", ctl_gallery_status_print);
}
