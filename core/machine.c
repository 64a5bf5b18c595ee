/* machine.c - the machine profile and the fit of a model on it (see machine.h). */
#include "machine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define MACHINE_GB 1e9
#define MACHINE_PROBE_S 60          /* GPUs and total RAM are probed at most this often */

static const char *const machine_fit_names[MACHINE_FIT_COUNT] = {"full_gpu", "partial_gpu",
                                                                 "cpu", "too_large"};

const char *machine_fit_name(machine_fit_class c) {
    return (int)c >= 0 && (int)c < MACHINE_FIT_COUNT ? machine_fit_names[c] : "too_large";
}

int machine_fit_parse(const char *name, size_t len, machine_fit_class *out) {
    for (int i = 0; i < MACHINE_FIT_COUNT; i++) {
        if (strlen(machine_fit_names[i]) == len && memcmp(name, machine_fit_names[i], len) == 0) {
            *out = (machine_fit_class)i;
            return 0;
        }
    }
    return -1;
}

/* ---- detection ---- */

/* Reads MemTotal and MemAvailable (bytes) from /proc/meminfo; 0 when unknown. */
static void machine_meminfo(int64_t *total, int64_t *available) {
    char line[256];
    *total = *available = 0;
    FILE *f = fopen("/proc/meminfo", "re");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        long long kb;
        if (sscanf(line, "MemTotal: %lld kB", &kb) == 1) *total = (int64_t)kb * 1024;
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1) *available = (int64_t)kb * 1024;
    }
    fclose(f);
}

/* Reads the first line of `dir`/`name` into out (trailing blanks cut). 0, or -1. */
static int machine_read_line(const char *dir, const char *name, char *out, size_t n) {
    char path[MG_PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) return -1;
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    char *ok = fgets(out, (int)n, f);
    fclose(f);
    if (!ok) return -1;
    size_t len = strlen(out);
    while (len && (out[len - 1] == '\n' || out[len - 1] == ' ' || out[len - 1] == '\r'))
        out[--len] = '\0';
    return len ? 0 : -1;
}

static void machine_add_gpu(machine_profile *m, const char *name, int64_t vram) {
    if (m->ngpus >= MACHINE_GPUS_MAX || vram < 0) return;
    snprintf(m->gpus[m->ngpus].name, MACHINE_GPU_NAME_MAX, "%.127s", name);
    m->gpus[m->ngpus].vram_bytes = vram;
    m->ngpus++;
}

/* 1 for "card<digits>" (not the connectors "card0-DP-1"). */
static int machine_card_name(const char *s) {
    if (strncmp(s, "card", 4) != 0 || !s[4]) return 0;
    return strspn(s + 4, "0123456789") == strlen(s + 4);
}

/* The name of the GPU whose sysfs device folder is `dev`: product_name, else the driver's
 * name and the card. */
static void machine_gpu_name(const char *dev, const char *card, char *out, size_t n) {
    char link[MG_PATH_MAX], target[MG_PATH_MAX];
    if (machine_read_line(dev, "product_name", out, n) == 0) return;
    ssize_t k = -1;
    if (snprintf(link, sizeof link, "%s/driver", dev) < (int)sizeof link)
        k = readlink(link, target, sizeof target - 1);
    if (k > 0) {
        target[k] = '\0';
        const char *base = strrchr(target, '/');
        snprintf(out, n, "%.64s (%.32s)", base ? base + 1 : target, card);
    } else {
        snprintf(out, n, "GPU (%.32s)", card);
    }
}

void machine_gpus_sysfs(const char *sysfs, machine_profile *m) {
    char dir[MG_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/class/drm", sysfs);
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        char dev[MG_PATH_MAX], value[64], name[MACHINE_GPU_NAME_MAX];
        int fits = snprintf(dev, sizeof dev, "%s/%s/device", dir, list[i]->d_name) <
                   (int)sizeof dev;
        if (fits && machine_card_name(list[i]->d_name) &&
            machine_read_line(dev, "mem_info_vram_total", value, sizeof value) == 0) {
            char *end;
            long long vram = strtoll(value, &end, 10);
            machine_gpu_name(dev, list[i]->d_name, name, sizeof name);
            if (*end == '\0' && vram > 0) machine_add_gpu(m, name, vram);
        }
        free(list[i]);
    }
    if (n >= 0) free(list);
}

/* The path of `prog` on the PATH into out. 0, or -1 when it is not there. */
static int machine_which(const char *prog, char *out, size_t n) {
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s", path && *path ? path : "/usr/bin:/bin");
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, n, "%s/%s", d, prog);
        if (access(out, X_OK) == 0) return 0;
    }
    return -1;
}

/* Parses one "name, MiB" line of nvidia-smi's CSV. */
static void machine_nvidia_line(machine_profile *m, char *line) {
    char *comma = strrchr(line, ',');
    if (!comma) return;
    *comma = '\0';
    char *end;
    double mib = strtod(comma + 1, &end);
    while (*end == ' ' || *end == '\n' || *end == '\r') end++;
    if (*end || !(mib > 0)) return;
    machine_add_gpu(m, line, (int64_t)(mib * 1048576.0));
}

/* Runs `exe` with the query arguments and reads its output through a pipe. */
static void machine_nvidia_run(machine_profile *m, const char *exe) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) dup2(null, STDERR_FILENO);
        execl(exe, "nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits",
              (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = pid > 0 ? fdopen(fds[0], "r") : NULL;
    char line[512];
    while (f && fgets(line, sizeof line, f)) machine_nvidia_line(m, line);
    if (f) fclose(f);
    else close(fds[0]);
    if (pid > 0) waitpid(pid, NULL, 0);
}

void machine_gpus_nvidia(machine_profile *m) {
    char exe[MG_PATH_MAX];
    if (machine_which("nvidia-smi", exe, sizeof exe) == 0) machine_nvidia_run(m, exe);
}

/* What detection found, kept per process for MACHINE_PROBE_S. */
static struct {
    pthread_mutex_t mu;
    time_t at;
    machine_profile m; /* ram_bytes, cpu_cores, gpus, vram_bytes */
} machine_cache = {PTHREAD_MUTEX_INITIALIZER, 0, {0}};

static void machine_probe(machine_profile *m) {
    int64_t avail;
    memset(m, 0, sizeof *m);
    machine_meminfo(&m->ram_bytes, &avail);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    m->cpu_cores = cores > 0 ? (int)cores : 1;
    const char *sysfs = getenv("MG_SYSFS_ROOT"); /* tests point it at a fake tree */
    machine_gpus_sysfs(sysfs && *sysfs ? sysfs : "/sys", m);
    machine_gpus_nvidia(m);
    for (int i = 0; i < m->ngpus; i++) m->vram_bytes += m->gpus[i].vram_bytes;
}

/* The cached detection (probed again when older than MACHINE_PROBE_S). */
static void machine_detected(machine_profile *m) {
    time_t now = time(NULL);
    pthread_mutex_lock(&machine_cache.mu);
    if (!machine_cache.at || now - machine_cache.at >= MACHINE_PROBE_S || now < machine_cache.at) {
        machine_probe(&machine_cache.m);
        machine_cache.at = now;
    }
    *m = machine_cache.m;
    pthread_mutex_unlock(&machine_cache.mu);
}

/* Applies server.json's machine settings. */
static void machine_override(const mg_config *cfg, machine_profile *m) {
    m->ram_gb_configured = cfg->machine_ram_gb;
    m->vram_gb_configured = cfg->machine_vram_gb;
    if (isfinite(cfg->machine_ram_gb)) m->ram_bytes = (int64_t)(cfg->machine_ram_gb * MACHINE_GB);
    if (isfinite(cfg->machine_vram_gb)) {
        m->vram_bytes = (int64_t)(cfg->machine_vram_gb * MACHINE_GB);
        m->ngpus = 0;
        if (m->vram_bytes > 0) machine_add_gpu(m, "configured (server.json machine.vram_gb)",
                                               m->vram_bytes);
    }
}

void machine_memory(const mg_config *cfg, machine_profile *m) {
    machine_detected(m);
    m->disk_free_bytes = m->disk_total_bytes = -1;
    machine_override(cfg, m);
}

void machine_detect(const mg_config *cfg, machine_profile *m) {
    int64_t total, avail;
    machine_memory(cfg, m);
    machine_meminfo(&total, &avail);
    m->ram_available_bytes = avail < m->ram_bytes ? avail : m->ram_bytes;
    char dir[MG_PATH_MAX];
    struct statvfs vfs;
    if (statvfs(config_path(cfg, dir, "models"), &vfs) == 0) {
        m->disk_free_bytes = (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
        m->disk_total_bytes = (int64_t)vfs.f_blocks * (int64_t)vfs.f_frsize;
    } else {
        log_warn("statvfs %s: %s", dir, strerror(errno));
    }
}

static json_t *machine_gb_or_null(double gb) { return isfinite(gb) ? json_real(gb) : json_null(); }

json_t *machine_json(const machine_profile *m) {
    json_t *gpus = json_array();
    for (int i = 0; i < m->ngpus; i++)
        json_array_append_new(gpus, json_pack("{s:s,s:I}", "name", m->gpus[i].name, "vram_bytes",
                                              (json_int_t)m->gpus[i].vram_bytes));
    json_t *disk = json_pack("{s:I,s:I}", "free_bytes", (json_int_t)m->disk_free_bytes,
                             "total_bytes", (json_int_t)m->disk_total_bytes);
    return json_pack("{s:I,s:I,s:i,s:o,s:I,s:o,s:{s:o,s:o}}", "ram_bytes",
                     (json_int_t)m->ram_bytes, "ram_available_bytes",
                     (json_int_t)m->ram_available_bytes, "cpu_cores", m->cpu_cores, "gpus",
                     gpus, "vram_bytes", (json_int_t)m->vram_bytes, "disk", disk, "configured",
                     "ram_gb", machine_gb_or_null(m->ram_gb_configured), "vram_gb",
                     machine_gb_or_null(m->vram_gb_configured));
}

/* ---- fit ---- */

machine_need machine_need_of(double ram_gb, double vram_gb, double size_gb) {
    machine_need n;
    machine_need_gb(ram_gb, vram_gb, size_gb, &n.ram_bytes, &n.vram_bytes, &n.estimated);
    n.ram_bytes *= MACHINE_GB;
    n.vram_bytes *= MACHINE_GB;
    return n;
}

/* The number `key` of `obj` (borrowed), or NAN. */
static double machine_number(json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

machine_need machine_need_of_model(json_t *model) {
    json_t *hw = json_object_get(model, "recommendedHardware");
    return machine_need_of(machine_number(hw, "ramGb"), machine_number(hw, "vramGb"),
                           machine_number(model, "sizeGb"));
}

machine_fit_class machine_fit(const machine_profile *m, const machine_need *need) {
    return machine_class((double)m->ram_bytes, (double)m->vram_bytes, need);
}

machine_fit_class machine_class(double ram, double vram, const machine_need *need) {
    return machine_class_of(need->ram_bytes, need->vram_bytes, ram, vram);
}
