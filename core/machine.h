/* machine.h - the machine profile (RAM, CPU cores, GPUs and their VRAM, free disk of the
 * models folder) and how well a model fits it.
 *
 * RAM comes from /proc/meminfo; GPUs from sysfs (/sys/class/drm/card*: amdgpu's
 * mem_info_vram_total) and from `nvidia-smi` when it is on the PATH; disk from statvfs of
 * models/. server.json's machine {ram_gb, vram_gb} replaces what was detected. GB means 10^9
 * bytes everywhere, as in sizeGb.
 *
 * Fit classes: full_gpu (the model's need fits the VRAM), partial_gpu (some VRAM, and the
 * need fits VRAM + RAM), cpu (no GPU memory, the need fits the RAM), too_large. The need is
 * recommendedHardware (vramGb for the GPU, ramGb otherwise) when present, else an estimate
 * from the file size: 1.2 x size + 0.5 GB (the weights, the context's cache, buffers). */
#ifndef MG_MACHINE_H
#define MG_MACHINE_H

#include <jansson.h>
#include <stdint.h>

#include "config.h"

#define MACHINE_GPUS_MAX 16
#define MACHINE_GPU_NAME_MAX 128

typedef struct machine_gpu {
    char name[MACHINE_GPU_NAME_MAX];
    int64_t vram_bytes;
} machine_gpu;

typedef struct machine_profile {
    int64_t ram_bytes;           /* total RAM (or machine.ram_gb) */
    int64_t ram_available_bytes; /* MemAvailable, at most ram_bytes */
    int cpu_cores;               /* online CPUs */
    machine_gpu gpus[MACHINE_GPUS_MAX];
    int ngpus;
    int64_t vram_bytes;          /* the GPUs' VRAM together (or machine.vram_gb) */
    int64_t disk_free_bytes;     /* of models/, for an unprivileged user; -1 unknown */
    int64_t disk_total_bytes;
    double ram_gb_configured;    /* machine.ram_gb, or NAN */
    double vram_gb_configured;   /* machine.vram_gb, or NAN */
} machine_profile;

/* Fills `m` for the data root of `cfg`: detection (GPUs are probed at most once a minute
 * per process) with server.json's overrides applied. */
void machine_detect(const mg_config *cfg, machine_profile *m);

/* As machine_detect without the disk and the available RAM, cached per process for a
 * second: what fit needs, cheap enough for every search. */
void machine_memory(const mg_config *cfg, machine_profile *m);

/* Returns a new reference to the GET /api/models/system answer for `m`. */
json_t *machine_json(const machine_profile *m);

/* Probes the GPUs under the sysfs root `sysfs` ("/sys") into `m` (appending). Exposed for
 * the unit tests, which point it at a folder of their own. */
void machine_gpus_sysfs(const char *sysfs, machine_profile *m);

/* Appends the GPUs `nvidia-smi` reports when it is on the PATH. */
void machine_gpus_nvidia(machine_profile *m);

typedef enum {
    MACHINE_FIT_FULL_GPU,
    MACHINE_FIT_PARTIAL_GPU,
    MACHINE_FIT_CPU,
    MACHINE_FIT_TOO_LARGE
} machine_fit_class;

#define MACHINE_FIT_COUNT 4

/* "full_gpu", "partial_gpu", "cpu", "too_large". */
const char *machine_fit_name(machine_fit_class c);
/* The class named by `len` bytes at `name`. 0 and *out, or -1. */
int machine_fit_parse(const char *name, size_t len, machine_fit_class *out);

/* What a model needs, in bytes. */
typedef struct machine_need {
    double ram_bytes;   /* to run from RAM (and VRAM + RAM when split) */
    double vram_bytes;  /* to run wholly on the GPU */
    int estimated;      /* 1: from the file size, no recommendedHardware numbers */
} machine_need;

/* The need of a model from recommendedHardware.ramGb / vramGb (NAN when absent) and its
 * sizeGb (NAN when unknown: then nothing is needed and the class is estimated). */
machine_need machine_need_of(double ram_gb, double vram_gb, double size_gb);

/* The same from a gallery model object (borrowed). */
machine_need machine_need_of_model(json_t *model);

/* The class of `need` on `m`. */
machine_fit_class machine_fit(const machine_profile *m, const machine_need *need);

/* The same on a machine of `ram_bytes` of RAM and `vram_bytes` of VRAM. */
machine_fit_class machine_class(double ram_bytes, double vram_bytes, const machine_need *need);

/* The need in GB of a model with recommendedHardware.ramGb / vramGb and sizeGb (NAN when
 * absent): *need_ram, *need_vram and *estimated as in machine_need. Inline: searches compute
 * it for every model. */
static inline void machine_need_gb(double ram_gb, double vram_gb, double size_gb,
                                   double *need_ram, double *need_vram, int *estimated) {
    int has_ram = ram_gb > 0 && ram_gb < 1e300, has_vram = vram_gb > 0 && vram_gb < 1e300;
    *estimated = !has_ram && !has_vram;
    if (*estimated) {
        *need_ram = *need_vram = size_gb > 0 && size_gb < 1e300 ? size_gb * 1.2 + 0.5 : 0;
    } else {
        *need_ram = has_ram ? ram_gb : vram_gb;
        *need_vram = has_vram ? vram_gb : ram_gb;
    }
}

/* The class of a need (any unit) on a machine of `ram` of RAM and `vram` of VRAM (the same
 * unit). */
static inline machine_fit_class machine_class_of(double need_ram, double need_vram, double ram,
                                                 double vram) {
    if (vram > 0)
        return need_vram <= vram         ? MACHINE_FIT_FULL_GPU
               : need_ram <= vram + ram ? MACHINE_FIT_PARTIAL_GPU
                                        : MACHINE_FIT_TOO_LARGE;
    return need_ram <= ram ? MACHINE_FIT_CPU : MACHINE_FIT_TOO_LARGE;
}

/* Both in one step: the class of a model on a machine of `ram` GB and `vram` GB. */
static inline machine_fit_class machine_class_gb(double ram_gb, double vram_gb, double size_gb,
                                                 double ram, double vram, int *estimated) {
    double need_ram, need_vram;
    machine_need_gb(ram_gb, vram_gb, size_gb, &need_ram, &need_vram, estimated);
    return machine_class_of(need_ram, need_vram, ram, vram);
}

#endif
