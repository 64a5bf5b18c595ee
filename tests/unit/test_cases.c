/* test_cases.c - the boundary tables of tests/data/cases/ against the code that applies
 * each rule: model validation (gallery_model_valid), search parameters (search_query_parse
 * and search_run on search_gallery.json), server.json settings (config_load), model and job
 * ids (id_model_valid, id_job_valid), file extensions (gallery_model_ext,
 * partial_ext_valid), and fit classes (machine_class, a search's fit and its fit filter).
 * Each row is just inside or just outside a bound; a failure names the table and line. */
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "config.h"
#include "gallery.h"
#include "id.h"
#include "job.h"
#include "machine.h"
#include "partial.h"
#include "registry.h"
#include "search.h"
#include "unit.h"

/* ---- model_valid.jsonl ---- */

/* Applies the case's "set" (keys with a dot reach into an object) and "unset" to `model`. */
static void apply_case(json_t *model, json_t *c) {
    const char *key;
    json_t *v, *item;
    size_t i;
    json_object_foreach(json_object_get(c, "set"), key, v) {
        const char *dot = strchr(key, '.');
        if (!dot) {
            json_object_set(model, key, v);
            continue;
        }
        char outer[64];
        snprintf(outer, sizeof outer, "%.*s", (int)(dot - key), key);
        json_t *obj = json_object_get(model, outer);
        if (json_is_object(obj)) json_object_set(obj, dot + 1, v);
    }
    json_array_foreach(json_object_get(c, "unset"), i, item)
        json_object_del(model, json_string_value(item));
}

UNIT_TEST(model_validation_table) {
    json_t *cases = unit_cases("model_valid.jsonl"), *c, *base = NULL;
    size_t i;
    int rows = 0;
    json_array_foreach(cases, i, c) {
        if (json_object_get(c, "base")) {
            base = json_object_get(c, "base");
            char reason[256] = "";
            if (!gallery_model_valid(base, reason, sizeof reason))
                unit_fail(__FILE__, __LINE__, "the base model is invalid: %s", reason);
            continue;
        }
        json_t *m = json_deep_copy(base);
        apply_case(m, c);
        char reason[256] = "";
        int valid = gallery_model_valid(m, reason, sizeof reason);
        int want = json_is_true(json_object_get(c, "valid"));
        const char *why = json_string_value(json_object_get(c, "reason"));
        if (valid != want)
            unit_fail(__FILE__, __LINE__, "%s: valid %d, expected %d (%s)",
                      unit_case_at("model_valid.jsonl", c), valid, want, reason);
        else if (!want && why && !strstr(reason, why))
            unit_fail(__FILE__, __LINE__, "%s: reason \"%s\" lacks \"%s\"",
                      unit_case_at("model_valid.jsonl", c), reason, why);
        json_decref(m);
        rows++;
    }
    CHECK(base != NULL);
    CHECK(rows > 80);
    json_decref(cases);
}

/* ---- search.jsonl ---- */

typedef struct sink {
    char *buf;
    size_t len;
} sink;

static int sink_write(void *ctx, const char *data, size_t len) {
    sink *s = ctx;
    char *p = realloc(s->buf, s->len + len + 1);
    if (!p) return -1;
    s->buf = p;
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    s->buf[s->len] = '\0';
    return 0;
}

/* Checks one search case; `idx` holds search_gallery.json. */
static void search_case(search_index *idx, json_t *c) {
    const char *at = unit_case_at("search.jsonl", c);
    const char *qs = json_string_value(json_object_get(c, "qs"));
    json_int_t status = json_integer_value(json_object_get(c, "status"));
    search_query q;
    mg_error err;
    mg_error_clear(&err);
    int rc = search_query_parse(&q, qs, &err);
    if (rc == 0) search_query_set_machine(&q, 4e9, 4e9); /* the stack's machine */
    if (status && status != 200) {
        const char *param = json_string_value(json_object_get(c, "parameter"));
        if (rc == 0) {
            search_query_free(&q);
            unit_fail(__FILE__, __LINE__, "%s: accepted, expected %lld naming %s", at,
                      (long long)status, param);
        } else if (err.status != status || strcmp(err.code, "invalid_parameter") != 0 ||
                   strcmp(err.parameter, param ? param : "") != 0) {
            unit_fail(__FILE__, __LINE__, "%s: %d %s naming \"%s\", expected %lld naming %s", at,
                      err.status, err.code, err.parameter, (long long)status, param);
        }
        return;
    }
    if (rc != 0) {
        unit_fail(__FILE__, __LINE__, "%s: refused: %d %s (%s)", at, err.status, err.parameter,
                  err.message);
        return;
    }
    sink s = {0};
    rc = search_run(idx, &q, sink_write, &s, &err);
    search_query_free(&q);
    json_t *answer = rc == 0 ? json_loadb(s.buf, s.len, 0, NULL) : NULL;
    free(s.buf);
    if (!answer) {
        unit_fail(__FILE__, __LINE__, "%s: no answer (%s)", at, rc ? err.message : "not JSON");
        return;
    }
    json_t *ids = json_array(), *m;
    size_t i;
    json_array_foreach(json_object_get(answer, "models"), i, m)
        json_array_append(ids, json_object_get(m, "id"));
    static const char *const keys[] = {"total", "limit", "offset"};
    for (int k = 0; k < 3; k++) {
        json_t *want = json_object_get(c, keys[k]);
        if (want && !json_equal(want, json_object_get(answer, keys[k])))
            unit_fail(__FILE__, __LINE__, "%s: %s is %lld, expected %lld", at, keys[k],
                      (long long)json_integer_value(json_object_get(answer, keys[k])),
                      (long long)json_integer_value(want));
    }
    if (!json_equal(ids, json_object_get(c, "ids"))) {
        char *got = json_dumps(ids, JSON_COMPACT);
        char *want = json_dumps(json_object_get(c, "ids"), JSON_COMPACT);
        unit_fail(__FILE__, __LINE__, "%s: ids %s, expected %s", at, got, want);
        free(got);
        free(want);
    }
    json_decref(ids);
    json_decref(answer);
}

UNIT_TEST(search_parameter_table) {
    char cache[1024];
    mg_error err;
    snprintf(cache, sizeof cache, "%s", unit_path("gallery_cache.json"));
    json_t *g = gallery_parse_file(unit_data_path("cases/search_gallery.json"), NULL, &err);
    CHECK(g != NULL);
    CHECK_INT(json_array_size(json_object_get(g, "models")), 7);
    CHECK_INT(gallery_cache_write(cache, g, NULL, &err), 0);
    json_decref(g);
    search_index *idx = search_index_load(cache, &err);
    CHECK(idx != NULL);
    json_t *cases = unit_cases("search.jsonl"), *c;
    size_t i;
    json_array_foreach(cases, i, c) if (idx) search_case(idx, c);
    CHECK(json_array_size(cases) > 60);
    json_decref(cases);
    search_index_free(idx);
}

/* ---- fit.jsonl ---- */

/* The model of fit case `c`: the base model (borrowed) without its size and hardware, with
 * the case's, named "fit-<line>". New reference. */
static json_t *fit_model(json_t *base, json_t *c) {
    json_t *m = json_deep_copy(base);
    json_object_del(m, "sizeGb");
    json_object_del(m, "recommendedHardware");
    json_object_update(m, json_object_get(c, "model"));
    char id[32];
    snprintf(id, sizeof id, "fit-%lld", (long long)json_integer_value(json_object_get(c, "line")));
    json_object_set_new(m, "id", json_string(id));
    return m;
}

/* The ids of the models a search of `qs` on the machine of case `c` answers, each with
 * ":<fit>:<fit_estimated>" (a new reference), or NULL. */
static json_t *fit_search(search_index *idx, json_t *c, const char *qs) {
    json_t *machine = json_object_get(c, "machine");
    search_query q;
    mg_error err;
    if (search_query_parse(&q, qs, &err) != 0) return NULL;
    search_query_set_machine(&q, json_number_value(json_object_get(machine, "ram_gb")) * 1e9,
                             json_number_value(json_object_get(machine, "vram_gb")) * 1e9);
    sink s = {0};
    int rc = search_run(idx, &q, sink_write, &s, &err);
    search_query_free(&q);
    json_t *answer = rc == 0 ? json_loadb(s.buf, s.len, 0, NULL) : NULL, *m;
    free(s.buf);
    if (!answer) return NULL;
    json_t *ids = json_object();
    size_t i;
    json_array_foreach(json_object_get(answer, "models"), i, m) {
        char v[64];
        snprintf(v, sizeof v, "%s:%s", json_string_value(json_object_get(m, "fit")),
                 json_is_true(json_object_get(m, "fit_estimated")) ? "true" : "false");
        json_object_set_new(ids, json_string_value(json_object_get(m, "id")), json_string(v));
    }
    json_decref(answer);
    return ids;
}

/* Checks case `c` through a search of `idx` (which holds its model): the answer's fit, and
 * the fit filter keeps the model for its class only. */
static void fit_case_search(search_index *idx, json_t *c, const char *id, const char *at) {
    const char *want = json_string_value(json_object_get(c, "fit"));
    char expect[64], qs[128];
    snprintf(expect, sizeof expect, "%s:%s", want,
             json_is_true(json_object_get(c, "estimated")) ? "true" : "false");
    for (int k = 0; k < MACHINE_FIT_COUNT; k++) {
        const char *name = machine_fit_name((machine_fit_class)k);
        snprintf(qs, sizeof qs, "limit=1000&fit=%s", name);
        json_t *ids = fit_search(idx, c, qs);
        const char *got = json_string_value(json_object_get(ids, id));
        int kept = got != NULL, should = strcmp(name, want) == 0;
        if (!ids)
            unit_fail(__FILE__, __LINE__, "%s: the search %s failed", at, qs);
        else if (kept != should)
            unit_fail(__FILE__, __LINE__, "%s: fit=%s %s the model", at, name,
                      kept ? "keeps" : "drops");
        else if (kept && strcmp(got, expect) != 0)
            unit_fail(__FILE__, __LINE__, "%s: the search answers %s, expected %s", at, got,
                      expect);
        json_decref(ids);
    }
}

UNIT_TEST(fit_table) {
    mg_error err;
    json_t *g = gallery_parse_file(unit_data_path("cases/search_gallery.json"), NULL, &err);
    CHECK(g != NULL);
    if (!g) return;
    json_t *base = json_incref(json_array_get(json_object_get(g, "models"), 0));
    json_t *cases = unit_cases("fit.jsonl"), *c, *models = json_array();
    size_t i;
    char reason[256];
    json_array_foreach(cases, i, c) {
        json_t *m = fit_model(base, c);
        if (gallery_model_valid(m, reason, sizeof reason)) json_array_append(models, m);
        /* the preflight's way: the need of the model on the machine's bytes */
        const char *at = unit_case_at("fit.jsonl", c);
        json_t *machine = json_object_get(c, "machine");
        machine_need need = machine_need_of_model(m);
        machine_fit_class cls =
            machine_class(json_number_value(json_object_get(machine, "ram_gb")) * 1e9,
                          json_number_value(json_object_get(machine, "vram_gb")) * 1e9, &need);
        const char *want = json_string_value(json_object_get(c, "fit"));
        if (strcmp(machine_fit_name(cls), want) != 0 ||
            need.estimated != json_is_true(json_object_get(c, "estimated")))
            unit_fail(__FILE__, __LINE__, "%s: %s (estimated %d), expected %s", at,
                      machine_fit_name(cls), need.estimated, want);
        json_decref(m);
    }
    char cache[1024];
    snprintf(cache, sizeof cache, "%s", unit_path("fit_cache.json"));
    json_object_set_new(g, "models", models);
    CHECK_INT(gallery_cache_write(cache, g, NULL, &err), 0);
    search_index *idx = search_index_load(cache, &err);
    CHECK(idx != NULL);
    int searched = 0;
    json_array_foreach(cases, i, c) {
        json_t *m = fit_model(base, c);
        if (idx && gallery_model_valid(m, reason, sizeof reason)) {
            char at[64];
            snprintf(at, sizeof at, "%s", unit_case_at("fit.jsonl", c));
            fit_case_search(idx, c, json_string_value(json_object_get(m, "id")), at);
            searched++;
        }
        json_decref(m);
    }
    CHECK(json_array_size(cases) > 25);
    CHECK(searched > 20);
    search_index_free(idx);
    json_decref(cases);
    json_decref(base);
    json_decref(g);
}

/* ---- settings.jsonl ---- */

/* Compares the setting `key` of `cfg` with `want`; 0 when equal. */
static int setting_differs(const mg_config *cfg, const char *key, json_t *want, char *got,
                           size_t n) {
    if (strcmp(key, "job_history") == 0) {
        snprintf(got, n, "%ld", cfg->job_history);
        return cfg->job_history != json_integer_value(want);
    }
    if (strcmp(key, "min_download_speed") == 0) {
        snprintf(got, n, "%lld", cfg->min_download_speed);
        return cfg->min_download_speed != json_integer_value(want);
    }
    if (strcmp(key, "max_parallel_downloads") == 0) {
        snprintf(got, n, "%d", cfg->max_parallel_downloads);
        return cfg->max_parallel_downloads != json_integer_value(want);
    }
    if (strcmp(key, "gallery_cache_ttl_s") == 0) {
        snprintf(got, n, "%ld", cfg->gallery_cache_ttl_s);
        return cfg->gallery_cache_ttl_s != json_integer_value(want);
    }
    if (strcmp(key, "max_download_rate") == 0) {
        snprintf(got, n, "%lld", cfg->max_download_rate);
        return cfg->max_download_rate != json_integer_value(want);
    }
    if (strcmp(key, "machine.ram_gb") == 0 || strcmp(key, "machine.vram_gb") == 0) {
        double d = key[8] == 'r' ? cfg->machine_ram_gb : cfg->machine_vram_gb;
        snprintf(got, n, "%g", d);
        return json_is_null(want) ? !isnan(d) : d != json_number_value(want);
    }
    if (strcmp(key, "allow_http") == 0) {
        snprintf(got, n, "%d", cfg->allow_http);
        return cfg->allow_http != json_is_true(want);
    }
    const char *s = strcmp(key, "api_token") == 0     ? cfg->api_token
                    : strcmp(key, "gallery_url") == 0 ? cfg->gallery_url
                    : strcmp(key, "node_name") == 0   ? cfg->node_name
                    : strcmp(key, "redis_url") == 0   ? cfg->redis_url
                                                      : "(unknown setting)";
    snprintf(got, n, "%.60s", s ? s : "null");
    if (!s || !json_is_string(want)) return !(s == NULL && json_is_null(want));
    return strcmp(s, json_string_value(want)) != 0;
}

static void settings_case(json_t *c) {
    const char *at = unit_case_at("settings.jsonl", c);
    char path[1024];
    mkdir(unit_path("config"), 0755);
    snprintf(path, sizeof path, "%s", unit_path("config/server.json"));
    char *text = json_dumps(json_object_get(c, "set"), JSON_COMPACT);
    CHECK_INT(unit_write_file(path, text, strlen(text)), 0);
    free(text);
    mg_config cfg;
    mg_error err;
    mg_error_clear(&err);
    int rc = config_load(&cfg, unit_tmpdir(), &err);
    int ok = json_is_true(json_object_get(c, "ok"));
    if (rc != 0) {
        const char *param = json_string_value(json_object_get(c, "parameter"));
        if (ok)
            unit_fail(__FILE__, __LINE__, "%s: refused: %s", at, err.message);
        else if (strcmp(err.code, "invalid_config") != 0 || strcmp(err.parameter, param) != 0 ||
                 !strstr(err.message, param))
            unit_fail(__FILE__, __LINE__, "%s: %s naming \"%s\" (%s), expected %s", at, err.code,
                      err.parameter, err.message, param);
        return;
    }
    if (!ok) unit_fail(__FILE__, __LINE__, "%s: accepted", at);
    const char *key;
    json_t *want;
    json_object_foreach(json_object_get(c, "expect"), key, want) {
        char got[80];
        if (setting_differs(&cfg, key, want, got, sizeof got))
            unit_fail(__FILE__, __LINE__, "%s: %s is %s", at, key, got);
    }
    config_free(&cfg);
}

UNIT_TEST(settings_table) {
    unsetenv("MG_GALLERY_URL");
    unsetenv("MG_API_TOKEN");
    unsetenv("MG_ALLOW_HTTP");
    json_t *cases = unit_cases("settings.jsonl"), *c;
    size_t i;
    json_array_foreach(cases, i, c) settings_case(c);
    CHECK(json_array_size(cases) > 50);
    json_decref(cases);
}

/* ---- ids.jsonl and ext.jsonl ---- */

UNIT_TEST(id_table) {
    json_t *cases = unit_cases("ids.jsonl"), *c;
    size_t i;
    json_array_foreach(cases, i, c) {
        json_t *id = json_object_get(c, "id");
        int job = strcmp(json_string_value(json_object_get(c, "kind")), "job") == 0;
        int valid = job ? id_job_valid(json_string_value(id))
                        : id_model_valid(json_string_value(id), json_string_length(id));
        if (valid != json_is_true(json_object_get(c, "valid")))
            unit_fail(__FILE__, __LINE__, "%s: valid %d", unit_case_at("ids.jsonl", c), valid);
    }
    CHECK(json_array_size(cases) > 25);
    json_decref(cases);
}

UNIT_TEST(extension_table) {
    json_t *cases = unit_cases("ext.jsonl"), *c;
    size_t i;
    json_array_foreach(cases, i, c) {
        const char *url = json_string_value(json_object_get(c, "url"));
        const char *at = unit_case_at("ext.jsonl", c);
        if (url) {
            char ext[16];
            gallery_model_ext(url, ext);
            const char *want = json_string_value(json_object_get(c, "want"));
            if (strcmp(ext, want) != 0)
                unit_fail(__FILE__, __LINE__, "%s: %s, expected %s", at, ext, want);
            continue;
        }
        int valid = partial_ext_valid(json_string_value(json_object_get(c, "ext")));
        if (valid != json_is_true(json_object_get(c, "valid")))
            unit_fail(__FILE__, __LINE__, "%s: valid %d", at, valid);
    }
    json_decref(cases);
}

UNIT_TEST(registry_path_table) {
    mg_config cfg;
    mg_error err;
    if (config_load(&cfg, unit_tmpdir(), &err) != 0)
        unit_fail(__FILE__, __LINE__, "%s", err.message);
    json_t *cases = unit_cases("registry_paths.jsonl"), *c;
    size_t i;
    json_array_foreach(cases, i, c) {
        char out[MG_PATH_MAX];
        json_t *entry = json_pack("{s:O}", "path", json_object_get(c, "path"));
        int ok = registry_entry_file(&cfg, entry, out);
        if (ok != json_is_true(json_object_get(c, "ok")))
            unit_fail(__FILE__, __LINE__, "%s: ok %d", unit_case_at("registry_paths.jsonl", c),
                      ok);
        else if (ok && strcmp(out, unit_path(json_string_value(json_object_get(c, "path")))) != 0)
            unit_fail(__FILE__, __LINE__, "%s: %s", unit_case_at("registry_paths.jsonl", c), out);
        json_decref(entry);
    }
    json_decref(cases);
    config_free(&cfg);
}

/* ---- job_states.jsonl ---- */

/* A new job of `kind` ("install" when NULL) of model `id` saved with `status`. New
 * reference. */
static json_t *job_in(const mg_config *cfg, const char *id, const char *status,
                      const char *kind) {
    mg_error err;
    int created;
    json_t *m = json_pack("{s:s,s:s,s:s,s:s,s:f,s:s,s:i}", "id", id, "name", "M", "downloadUrl",
                          "https://example.com/m.gguf", "checksum",
                          "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                          "sizeGb", 1.0, "path", "models/llm/m.gguf", "sizeBytes", 1000);
    json_t *job = job_enqueue_kind(cfg, m, kind ? kind : "install", &created, &err);
    json_decref(m);
    if (!job) return NULL;
    json_object_set_new(job, "status", json_string(status));
    if (job_save(cfg, job, 1, &err) != 0) unit_fail(__FILE__, __LINE__, "%s", err.message);
    return job;
}

static const char *status_on_disk(const mg_config *cfg, json_t *job) {
    static char out[32];
    mg_error err;
    json_t *disk = job_load(cfg, json_string_value(json_object_get(job, "job_id")), &err);
    const char *s = disk ? json_string_value(json_object_get(disk, "status")) : NULL;
    snprintf(out, sizeof out, "%s", s ? s : "?");
    json_decref(disk);
    return out;
}

typedef json_t *(*job_pause_fn)(const mg_config *cfg, const char *job_id, mg_error *err);

/* The "pause" or "resume" column of case `c` through `fn` on a new job; with `fn` NULL, the
 * "pause_resume" column: a pause, then a resume. */
static void job_pause_case(const mg_config *cfg, json_t *c, int n, const char *column,
                           job_pause_fn fn) {
    const char *at = unit_case_at("job_states.jsonl", c);
    const char *status = json_string_value(json_object_get(c, "status"));
    json_t *want = json_object_get(c, column);
    char id[32];
    mg_error err;
    if (!want) return;
    snprintf(id, sizeof id, "%s-%d", column, n);
    json_t *job = job_in(cfg, id, status, json_string_value(json_object_get(c, "kind")));
    const char *job_id = json_string_value(json_object_get(job, "job_id"));
    mg_error_clear(&err);
    json_t *got = fn ? fn(cfg, job_id, &err) : job_pause(cfg, job_id, &err);
    if (!fn && got) {
        json_decref(got);
        got = job_resume(cfg, job_id, &err);
    }
    const char *code = json_string_value(json_object_get(want, "error"));
    const char *now = json_is_string(want) ? json_string_value(want)
                      : code ? status : json_string_value(json_object_get(want, "status"));
    int marker = json_is_true(json_object_get(want, "marker"));
    if (code && (got || err.status != 409 || strcmp(err.code, code) != 0 ||
                 strcmp(err.parameter, "job_id") != 0))
        unit_fail(__FILE__, __LINE__, "%s: %s gave %d %s, expected 409 %s", at, column,
                  got ? 200 : err.status, got ? "" : err.code, code);
    else if (!code && (!got || strcmp(json_string_value(json_object_get(got, "status")), now)))
        unit_fail(__FILE__, __LINE__, "%s: %s answered %s (%s), expected %s", at, column,
                  got ? json_string_value(json_object_get(got, "status")) : "nothing",
                  got ? "" : err.message, now);
    if (strcmp(status_on_disk(cfg, job), now) != 0)
        unit_fail(__FILE__, __LINE__, "%s: %s saved %s, expected %s", at, column,
                  status_on_disk(cfg, job), now);
    if (job_pause_requested(cfg, job_id) != marker)
        unit_fail(__FILE__, __LINE__, "%s: after %s the pause marker is %s", at, column,
                  marker ? "missing" : "there");
    json_decref(got);
    json_decref(job);
}

static void job_state_case(const mg_config *cfg, json_t *c, int n) {
    const char *at = unit_case_at("job_states.jsonl", c);
    const char *status = json_string_value(json_object_get(c, "status"));
    const char *kind = json_string_value(json_object_get(c, "kind"));
    json_t *want_cancel = json_object_get(c, "cancel");
    char id[32];
    mg_error err;
    /* cancel */
    snprintf(id, sizeof id, "cancel-%d", n);
    json_t *job = job_in(cfg, id, status, kind);
    const char *job_id = json_string_value(json_object_get(job, "job_id"));
    mg_error_clear(&err);
    json_t *got = job_cancel(cfg, job_id, &err);
    if (json_is_integer(want_cancel)) {
        if (got || err.status != 409 || strcmp(err.code, "job_finished") != 0 ||
            strcmp(err.parameter, "job_id") != 0 || job_cancel_requested(cfg, job_id))
            unit_fail(__FILE__, __LINE__, "%s: cancel gave %d %s", at, err.status, err.code);
    } else if (!got || strcmp(json_string_value(json_object_get(got, "status")),
                              json_string_value(want_cancel)) != 0) {
        unit_fail(__FILE__, __LINE__, "%s: cancel failed: %s", at, err.message);
    }
    const char *now = json_is_string(want_cancel) ? json_string_value(want_cancel) : status;
    if (strcmp(status_on_disk(cfg, job), now) != 0)
        unit_fail(__FILE__, __LINE__, "%s: %s on disk after the cancel", at,
                  status_on_disk(cfg, job));
    json_decref(got);
    /* a claim after the cancel */
    int rc = job_claim(cfg, job, &err);
    const char *after = json_string_value(json_object_get(c, "claim_after_cancel"));
    if (rc != 0 || strcmp(status_on_disk(cfg, job), after) != 0)
        unit_fail(__FILE__, __LINE__, "%s: claim after cancel: %d, %s", at, rc,
                  status_on_disk(cfg, job));
    json_decref(job);
    /* a claim */
    snprintf(id, sizeof id, "claim-%d", n);
    job = job_in(cfg, id, status, kind);
    rc = job_claim(cfg, job, &err);
    const char *claimed = json_string_value(json_object_get(c, "claimed"));
    if (rc != json_integer_value(json_object_get(c, "claim")) ||
        strcmp(status_on_disk(cfg, job), claimed) != 0 ||
        strcmp(json_string_value(json_object_get(job, "status")), claimed) != 0)
        unit_fail(__FILE__, __LINE__, "%s: claim %d, %s", at, rc, status_on_disk(cfg, job));
    json_decref(job);
    job_pause_case(cfg, c, n, "pause", job_pause);
    job_pause_case(cfg, c, n, "resume", job_resume);
    job_pause_case(cfg, c, n, "pause_resume", NULL);
}

UNIT_TEST(job_state_table) {
    mg_config cfg;
    mg_error err;
    if (config_load(&cfg, unit_tmpdir(), &err) != 0)
        unit_fail(__FILE__, __LINE__, "%s", err.message);
    json_t *cases = unit_cases("job_states.jsonl"), *c;
    size_t i;
    json_array_foreach(cases, i, c) job_state_case(&cfg, c, (int)i);
    CHECK_INT(json_array_size(cases), 13);
    json_decref(cases);
    config_free(&cfg);
}
