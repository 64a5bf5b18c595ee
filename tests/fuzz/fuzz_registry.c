/* fuzz_registry.c - the registry file config/models.json (registry_parse) and the paths its
 * entries name (registry_entry_file, what listing, the installed check and DELETE use).
 *
 * Invariants: text that is not a JSON object with an object "models" (or none) is a 500
 * "registry_corrupt" error naming the file; a parsed registry always has a "models" object
 * and writes back (as registry_write does) to text that parses to the same document; an
 * entry's path only ever resolves to a plain, non-hidden file name directly under
 * <root>/models/llm/ -- never "..", another folder, an absolute path or a NUL byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"
#include "registry.h"

#define REGISTRY_ROOT "/srv/mg-fuzz-root"
#define REGISTRY_DIR REGISTRY_ROOT "/models/llm/"

static mg_config registry_cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_quiet();
    snprintf(registry_cfg.root, sizeof registry_cfg.root, "%s", REGISTRY_ROOT);
    return 0;
}

static void registry_check_entry(json_t *entry) {
    char out[MG_PATH_MAX];
    json_t *path = json_object_get(entry, "path");
    if (!registry_entry_file(&registry_cfg, entry, out)) return;
    size_t dlen = strlen(REGISTRY_DIR);
    FUZZ_CHECK(json_is_string(path));
    FUZZ_CHECK(strncmp(out, REGISTRY_DIR, dlen) == 0);
    const char *name = out + dlen;
    FUZZ_CHECK(name[0] != '\0' && name[0] != '.');
    FUZZ_CHECK(strchr(name, '/') == NULL);
    /* the file named is the one the entry's path names, byte for byte */
    FUZZ_CHECK(strlen(json_string_value(path)) == json_string_length(path));
    FUZZ_CHECK(strcmp(json_string_value(path) + strlen("models/llm/"), name) == 0);
}

static void registry_check_roundtrip(json_t *doc) {
    char *text = json_dumps(doc, JSON_INDENT(2));
    mg_error err;
    FUZZ_CHECK(text != NULL);
    json_t *again = registry_parse(text, strlen(text), "fuzz (again)", &err);
    FUZZ_CHECK(again != NULL && json_equal(again, doc));
    json_decref(again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mg_error err;
    const char *key;
    json_t *entry;
    mg_error_clear(&err);
    json_t *doc = registry_parse((const char *)data, size, "config/models.json", &err);
    if (!doc) {
        FUZZ_CHECK(err.status == 500 && strcmp(err.code, "registry_corrupt") == 0);
        FUZZ_CHECK(strncmp(err.message, "config/models.json: ", 20) == 0);
        return 0;
    }
    FUZZ_CHECK(json_is_object(doc) && json_is_object(json_object_get(doc, "models")));
    json_object_foreach(json_object_get(doc, "models"), key, entry) registry_check_entry(entry);
    registry_check_entry(doc); /* any object may stand for an entry */
    registry_check_roundtrip(doc);
    json_decref(doc);
    return 0;
}
