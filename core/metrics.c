/* metrics.c - counters shared between processes through a mapped file (see metrics.h).
 *
 * The file is METRICS_SLOTS slots of 256 bytes. Slot 0 is the header (its name is the
 * magic); each other slot is {value, used, name}: `used` becomes 1 (release) once `name`
 * is written, and slots are never freed, so a reader that sees used == 1 (acquire) sees the
 * whole name. A name's slot is found by open addressing from its FNV-1a hash. */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"

#define METRICS_SLOTS 1024
#define METRICS_MAGIC "mg-metrics 1"

typedef struct metrics_slot {
    uint64_t value;                     /* atomic */
    uint32_t used;                      /* atomic: 1 once name is complete */
    char name[METRICS_NAME_MAX + 1];
} metrics_slot;

_Static_assert(sizeof(metrics_slot) == 256, "a metrics slot is 256 bytes");

static struct {
    pthread_mutex_t mu; /* new slots within this process */
    metrics_slot *slots;
    char path[MG_PATH_MAX];
    int full_logged;
} metrics_g = {.mu = PTHREAD_MUTEX_INITIALIZER};

static size_t metrics_hash(const char *name) {
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return 1 + (size_t)(h % (METRICS_SLOTS - 1));
}

/* Makes `fd` a counters file of the right size with our header. The caller holds the flock.
 * 0, or -1. */
static int metrics_prepare(int fd) {
    struct stat st;
    metrics_slot head;
    size_t size = METRICS_SLOTS * sizeof head;
    if (fstat(fd, &st) != 0) return -1;
    if ((size_t)st.st_size == size && pread(fd, &head, sizeof head, 0) == (ssize_t)sizeof head &&
        strcmp(head.name, METRICS_MAGIC) == 0)
        return 0;
    memset(&head, 0, sizeof head);
    snprintf(head.name, sizeof head.name, "%s", METRICS_MAGIC);
    if (ftruncate(fd, 0) != 0 || ftruncate(fd, (off_t)size) != 0) return -1;
    return pwrite(fd, &head, sizeof head, 0) == (ssize_t)sizeof head ? 0 : -1;
}

int metrics_open(const mg_config *cfg, const char *rel, mg_error *err) {
    if (metrics_g.slots) return 0;
    char path[MG_PATH_MAX];
    config_path(cfg, path, rel);
    int fd = fs_open(path, O_RDWR | O_CREAT, 0644, err);
    if (fd < 0) return -1;
    if (flock(fd, LOCK_EX) != 0 || metrics_prepare(fd) != 0) {
        int e = errno;
        close(fd);
        return mg_error_set(err, 500, "io_error", NULL, "cannot use the counters file %s: %s",
                            path, strerror(e));
    }
    void *map = mmap(NULL, METRICS_SLOTS * sizeof(metrics_slot), PROT_READ | PROT_WRITE,
                     MAP_SHARED, fd, 0);
    flock(fd, LOCK_UN); /* explicitly: the mapping keeps the open file (and a flock) alive */
    close(fd);
    if (map == MAP_FAILED)
        return mg_error_set(err, 500, "io_error", NULL, "cannot map %s: %s", path,
                            strerror(errno));
    snprintf(metrics_g.path, sizeof metrics_g.path, "%s", path);
    metrics_g.slots = map;
    return 0;
}

void metrics_close(void) {
    if (metrics_g.slots) munmap(metrics_g.slots, METRICS_SLOTS * sizeof(metrics_slot));
    metrics_g.slots = NULL;
}

/* The slot holding `name`, or the first free slot of its probe sequence (*free_slot), or
 * NULL for both when the table is full. */
static metrics_slot *metrics_find(const char *name, metrics_slot **free_slot) {
    size_t i = metrics_hash(name);
    *free_slot = NULL;
    for (size_t n = 1; n < METRICS_SLOTS; n++, i = i + 1 < METRICS_SLOTS ? i + 1 : 1) {
        metrics_slot *s = &metrics_g.slots[i];
        if (!__atomic_load_n(&s->used, __ATOMIC_ACQUIRE)) {
            *free_slot = s;
            return NULL;
        }
        if (strcmp(s->name, name) == 0) return s;
    }
    return NULL;
}

/* Gives `name` a slot: under the process mutex and the file's flock, found again or
 * claimed. Returns the slot, or NULL. */
static metrics_slot *metrics_claim(const char *name) {
    metrics_slot *s = NULL, *free_slot = NULL;
    pthread_mutex_lock(&metrics_g.mu);
    int fd = fs_open(metrics_g.path, O_RDWR, 0, NULL);
    if (fd >= 0 && flock(fd, LOCK_EX) == 0) {
        s = metrics_find(name, &free_slot);
        if (!s && free_slot) {
            memset(free_slot->name, 0, sizeof free_slot->name);
            snprintf(free_slot->name, sizeof free_slot->name, "%s", name);
            __atomic_store_n(&free_slot->used, 1, __ATOMIC_RELEASE);
            s = free_slot;
        }
    }
    if (fd >= 0) close(fd);
    if (!s && !metrics_g.full_logged) {
        metrics_g.full_logged = 1;
        log_warn("counters file %s is full or unusable (%s); new samples are not counted",
                 metrics_g.path, fd < 0 ? strerror(errno) : "no free slot");
    }
    pthread_mutex_unlock(&metrics_g.mu);
    return s;
}

void metrics_add(const char *name, uint64_t n) {
    if (!metrics_g.slots || !name || strlen(name) > METRICS_NAME_MAX) return;
    metrics_slot *free_slot, *s = metrics_find(name, &free_slot);
    if (!s) s = metrics_claim(name);
    if (s) __atomic_fetch_add(&s->value, n, __ATOMIC_RELAXED);
}

void metrics_addf(uint64_t n, const char *fmt, ...) {
    char name[METRICS_NAME_MAX + 2];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (len > 0 && len <= METRICS_NAME_MAX) metrics_add(name, n);
}

void metrics_read(const mg_config *cfg, const char *rel, metrics_visit_fn fn, void *ctx) {
    char path[MG_PATH_MAX];
    size_t size = METRICS_SLOTS * sizeof(metrics_slot);
    int fd = open(config_path(cfg, path, rel), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0) return;
    if (fstat(fd, &st) != 0 || (size_t)st.st_size != size) {
        close(fd);
        return;
    }
    const metrics_slot *slots = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (slots == MAP_FAILED) return;
    if (strcmp(slots[0].name, METRICS_MAGIC) == 0) {
        for (size_t i = 1; i < METRICS_SLOTS; i++) {
            if (!__atomic_load_n(&slots[i].used, __ATOMIC_ACQUIRE)) continue;
            char name[METRICS_NAME_MAX + 1];
            memcpy(name, slots[i].name, sizeof name);
            name[METRICS_NAME_MAX] = '\0';
            fn(ctx, name, __atomic_load_n(&slots[i].value, __ATOMIC_RELAXED));
        }
    }
    munmap((void *)slots, size);
}
