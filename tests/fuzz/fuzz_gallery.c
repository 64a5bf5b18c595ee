/* fuzz_gallery.c - a gallery document from any source (gallery_parse with
 * gallery_model_valid), then the cache it becomes and the search index built from that cache
 * (gallery_cache_write, search_index_load): the path every CDN gallery takes.
 *
 * Invariants: text without a "models" array is an "invalid_gallery" error; otherwise every
 * input model is either kept (in order, unchanged) or reported once as invalid with its index
 * and a printable reason; every kept model passes gallery_model_valid, has an id matching
 * ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$ (checked with a regular expression) that no other kept
 * model has, and installs with an extension that is a safe file name suffix; the validation
 * does not depend on the reason buffer; the result parses again to itself with nothing left
 * out; its cache loads into an index holding exactly the kept models, each still valid. */
#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "gallery.h"
#include "search.h"

static regex_t gallery_id_re;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_quiet();
    if (regcomp(&gallery_id_re, "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", REG_EXTENDED | REG_NOSUB))
        abort();
    return 0;
}

static void gallery_check_id(json_t *id) {
    FUZZ_CHECK(json_is_string(id));
    FUZZ_CHECK(strlen(json_string_value(id)) == json_string_length(id));
    FUZZ_CHECK(regexec(&gallery_id_re, json_string_value(id), 0, NULL, 0) == 0);
}

static void gallery_check_ext(json_t *model) {
    char ext[16];
    memset(ext, 'x', sizeof ext);
    gallery_model_ext(json_string_value(json_object_get(model, "downloadUrl")), ext);
    size_t n = strnlen(ext, sizeof ext);
    FUZZ_CHECK(n < sizeof ext && n >= 2 && ext[0] == '.');
    for (size_t i = 1; i < n; i++)
        FUZZ_CHECK(isdigit((unsigned char)ext[i]) || islower((unsigned char)ext[i]));
}

/* Validation gives the same answer whatever room the reason has. */
static void gallery_check_reason_room(json_t *model, int valid) {
    char one[1] = {'x'}, small[8];
    FUZZ_CHECK(gallery_model_valid(model, NULL, 0) == valid);
    FUZZ_CHECK(gallery_model_valid(model, one, sizeof one) == valid);
    FUZZ_CHECK(gallery_model_valid(model, small, sizeof small) == valid);
    if (!valid) FUZZ_CHECK(one[0] == '\0' && strlen(small) < sizeof small);
}

static void gallery_check_invalid(json_t *bad, json_t *input, size_t *next) {
    json_t *index = json_object_get(bad, "index"), *reason = json_object_get(bad, "reason");
    FUZZ_CHECK(json_is_integer(index));
    size_t i = (size_t)json_integer_value(index);
    FUZZ_CHECK(json_integer_value(index) >= (json_int_t)*next && i < json_array_size(input));
    FUZZ_CHECK(json_is_string(reason) && json_string_length(reason) > 0);
    FUZZ_CHECK(fuzz_printable(json_string_value(reason), json_string_length(reason)));
    json_t *id = json_object_get(bad, "id");
    json_t *input_id = json_object_get(json_array_get(input, i), "id");
    FUZZ_CHECK(json_is_null(id) || json_equal(id, input_id));
    *next = i + 1;
}

/* Walks the input models: each is the next kept model or the next invalid entry. */
static void gallery_check_split(json_t *input, json_t *kept, json_t *invalid) {
    size_t k = 0, b = 0, next = 0;
    json_t *seen = json_object();
    for (size_t i = 0; i < json_array_size(input); i++) {
        json_t *bad = json_array_get(invalid, b);
        json_t *model = json_array_get(input, i);
        if (bad && json_integer_value(json_object_get(bad, "index")) == (json_int_t)i) {
            gallery_check_invalid(bad, input, &next);
            b++;
            continue;
        }
        FUZZ_CHECK(json_equal(json_array_get(kept, k), model));
        FUZZ_CHECK(gallery_model_valid(model, NULL, 0) == 1);
        gallery_check_reason_room(model, 1);
        json_t *id = json_object_get(model, "id");
        gallery_check_id(id);
        FUZZ_CHECK(json_object_get(seen, json_string_value(id)) == NULL);
        json_object_set_new(seen, json_string_value(id), json_true());
        gallery_check_ext(model);
        k++;
    }
    json_decref(seen);
    FUZZ_CHECK(k == json_array_size(kept) && b == json_array_size(invalid));
}

/* The kept models, dumped and parsed again, are kept again and unchanged. */
static void gallery_check_roundtrip(json_t *g) {
    char *text = json_dumps(g, JSON_COMPACT | JSON_ENCODE_ANY);
    json_t *invalid = NULL;
    mg_error err;
    FUZZ_CHECK(text != NULL);
    json_t *again = gallery_parse(text, strlen(text), "fuzz (again)", &invalid, &err);
    free(text);
    FUZZ_CHECK(again != NULL && json_array_size(invalid) == 0);
    FUZZ_CHECK(json_equal(json_object_get(again, "models"), json_object_get(g, "models")));
    json_decref(again);
    json_decref(invalid);
}

/* The cache of `g` loads into an index of exactly its models, each still valid. */
static void gallery_check_index(json_t *g) {
    mg_error err;
    json_t *models = json_object_get(g, "models"), *m;
    size_t i;
    search_index *idx = fuzz_index(g, &err);
    if (!idx) fprintf(stderr, "index: %s\n", err.message);
    FUZZ_CHECK(idx != NULL);
    FUZZ_CHECK(search_index_count(idx) == json_array_size(models));
    json_array_foreach(models, i, m) {
        json_t *got = search_index_get(idx, json_string_value(json_object_get(m, "id")));
        FUZZ_CHECK(got != NULL);
        FUZZ_CHECK(json_equal(json_object_get(got, "id"), json_object_get(m, "id")));
        FUZZ_CHECK(json_equal(json_object_get(got, "downloadUrl"),
                              json_object_get(m, "downloadUrl")));
        FUZZ_CHECK(json_equal(json_object_get(got, "checksum"),
                              json_object_get(m, "checksum")));
        FUZZ_CHECK(gallery_model_valid(got, NULL, 0) == 1);
        json_decref(got);
    }
    search_index_free(idx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_t *invalid = NULL, *input, *model;
    mg_error err;
    size_t i;
    json_t *doc = json_loadb((const char *)data, size, JSON_ALLOW_NUL, NULL);
    json_t *g = gallery_parse((const char *)data, size, "fuzz", &invalid, &err);
    input = json_object_get(doc, "models");
    if (!g) {
        FUZZ_CHECK(invalid == NULL && strcmp(err.code, "invalid_gallery") == 0);
        FUZZ_CHECK(!json_is_array(input));
        json_decref(doc);
        return 0;
    }
    FUZZ_CHECK(json_is_array(input) && json_is_array(invalid));
    json_array_foreach(input, i, model)
        gallery_check_reason_room(model, gallery_model_valid(model, NULL, 0));
    gallery_check_split(input, json_object_get(g, "models"), invalid);
    gallery_check_roundtrip(g);
    gallery_check_index(g);
    json_decref(invalid);
    json_decref(g);
    json_decref(doc);
    return 0;
}
