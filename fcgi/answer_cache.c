/* answer_cache.c - a small least-recently-used table of facet answers (answer_cache.h). */
#include "answer_cache.h"

#include <stdlib.h>
#include <string.h>

static void acache_drop(acache_slot *s) {
    free(s->key);
    free(s->data);
    memset(s, 0, sizeof *s);
}

void acache_free(acache *c) {
    for (int i = 0; i < ACACHE_SLOTS; i++) acache_drop(&c->slot[i]);
}

const acache_slot *acache_get(acache *c, unsigned long gen, const char *key) {
    if (c->gen != gen) return NULL;
    for (int i = 0; i < ACACHE_SLOTS; i++) {
        acache_slot *s = &c->slot[i];
        if (s->key && strcmp(s->key, key) == 0) {
            s->used = ++c->tick;
            return s;
        }
    }
    return NULL;
}

void acache_put(acache *c, unsigned long gen, const char *key, const char *data, size_t len) {
    if (len > ACACHE_ANSWER_MAX) return;
    if (c->gen != gen) {
        acache_free(c);
        c->gen = gen;
    }
    acache_slot *victim = &c->slot[0];
    for (int i = 0; i < ACACHE_SLOTS && victim->key; i++)
        if (!c->slot[i].key || c->slot[i].used < victim->used) victim = &c->slot[i];
    acache_drop(victim);
    victim->key = strdup(key);
    victim->data = malloc(len ? len : 1);
    if (!victim->key || !victim->data) {
        acache_drop(victim);
        return;
    }
    memcpy(victim->data, data, len);
    victim->len = len;
    victim->used = ++c->tick;
}
