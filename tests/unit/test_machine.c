/* test_machine.c - the machine profile and the fit classes (core/machine.c): needs from
 * recommendedHardware and from the file size, every class on profiles with and without a
 * GPU, GPUs found in a fake sysfs tree and from a fake nvidia-smi on the PATH, and
 * server.json's machine settings replacing what was detected. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "machine.h"
#include "unit.h"

/* A profile with `ram_gb` of RAM and `vram_gb` of VRAM (GB = 1e9 bytes). */
static machine_profile profile(double ram_gb, double vram_gb) {
    machine_profile m;
    memset(&m, 0, sizeof m);
    m.ram_bytes = (int64_t)(ram_gb * 1e9);
    m.vram_bytes = (int64_t)(vram_gb * 1e9);
    return m;
}

static const char *fit(const machine_profile *m, double ram_gb, double vram_gb, double size_gb) {
    machine_need n = machine_need_of(ram_gb, vram_gb, size_gb);
    return machine_fit_name(machine_fit(m, &n));
}

UNIT_TEST(need_from_hardware_or_size) {
    machine_need n = machine_need_of(8, 6, 4);
    CHECK_INT(n.estimated, 0);
    CHECK_INT((long long)n.ram_bytes, 8000000000LL);
    CHECK_INT((long long)n.vram_bytes, 6000000000LL);
    n = machine_need_of(8, 0, 4); /* vramGb 0: the GPU needs what the RAM needs */
    CHECK_INT((long long)n.vram_bytes, 8000000000LL);
    n = machine_need_of(NAN, 6, 4);
    CHECK_INT((long long)n.ram_bytes, 6000000000LL);
    n = machine_need_of(NAN, NAN, 4); /* 1.2 x size + 0.5 GB */
    CHECK_INT(n.estimated, 1);
    CHECK_INT((long long)n.ram_bytes, 5300000000LL);
    CHECK_INT((long long)n.vram_bytes, 5300000000LL);
    json_t *model = json_pack("{s:f,s:{s:i,s:i}}", "sizeGb", 4.0, "recommendedHardware",
                              "ramGb", 16, "vramGb", 10);
    n = machine_need_of_model(model);
    CHECK_INT(n.estimated, 0);
    CHECK_INT((long long)n.vram_bytes, 10000000000LL);
    json_decref(model);
    model = json_pack("{s:f,s:{s:s}}", "sizeGb", 1.0, "recommendedHardware", "gpu", "any");
    n = machine_need_of_model(model);
    CHECK_INT(n.estimated, 1);
    CHECK_INT((long long)n.ram_bytes, 1700000000LL);
    json_decref(model);
}

UNIT_TEST(fit_classes) {
    machine_profile gpu = profile(16, 8), cpu = profile(16, 0);
    CHECK_STR(fit(&gpu, 12, 6, NAN), "full_gpu");
    CHECK_STR(fit(&gpu, 12, 8, NAN), "full_gpu");   /* needs <= VRAM */
    CHECK_STR(fit(&gpu, 12, 10, NAN), "partial_gpu");
    CHECK_STR(fit(&gpu, 24, 10, NAN), "partial_gpu"); /* <= VRAM + RAM */
    CHECK_STR(fit(&gpu, 25, 10, NAN), "too_large");
    CHECK_STR(fit(&cpu, 12, 6, NAN), "cpu");
    CHECK_STR(fit(&cpu, 16, 6, NAN), "cpu");
    CHECK_STR(fit(&cpu, 17, 6, NAN), "too_large");
    CHECK_STR(fit(&gpu, NAN, NAN, 5), "full_gpu");  /* 6.5 GB estimated */
    CHECK_STR(fit(&gpu, NAN, NAN, 7), "partial_gpu");
    CHECK_STR(fit(&cpu, NAN, NAN, 12), "cpu");  /* 14.9 GB */
    CHECK_STR(fit(&cpu, NAN, NAN, 14), "too_large");
    machine_fit_class c;
    CHECK_INT(machine_fit_parse("partial_gpu", 11, &c), 0);
    CHECK_INT(c, MACHINE_FIT_PARTIAL_GPU);
    CHECK_INT(machine_fit_parse("gpu", 3, &c), -1);
    CHECK_INT(machine_fit_parse("cpu ", 4, &c), -1);
}

/* Writes `text` to dir/rel, creating the folders. */
static void put(const char *dir, const char *rel, const char *text) {
    char path[MG_PATH_MAX], cmd[MG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\"", path);
    CHECK_INT(system(cmd), 0);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

UNIT_TEST(gpus_from_sysfs_and_nvidia_smi) {
    char sys[MG_PATH_MAX], bin[MG_PATH_MAX], path[2 * MG_PATH_MAX];
    snprintf(sys, sizeof sys, "%s/sys", unit_tmpdir());
    put(sys, "class/drm/card0/device/mem_info_vram_total", "17163091968\n");
    put(sys, "class/drm/card0/device/product_name", "Radeon Test\n");
    put(sys, "class/drm/card0-DP-1/device/mem_info_vram_total", "1\n"); /* a connector */
    put(sys, "class/drm/card1/device/vendor", "0x8086\n");              /* no VRAM */
    machine_profile m;
    memset(&m, 0, sizeof m);
    machine_gpus_sysfs(sys, &m);
    CHECK_INT(m.ngpus, 1);
    CHECK_STR(m.gpus[0].name, "Radeon Test");
    CHECK_INT(m.gpus[0].vram_bytes, 17163091968LL);

    snprintf(bin, sizeof bin, "%s/bin", unit_tmpdir());
    put(bin, "nvidia-smi",
        "#!/bin/sh\nprintf 'NVIDIA GeForce RTX 4090, 24564\\nNVIDIA T4, 15360\\n'\n");
    snprintf(path, sizeof path, "%s/nvidia-smi", bin);
    chmod(path, 0755);
    char *old = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    snprintf(path, sizeof path, "%s:/usr/bin:/bin", bin);
    setenv("PATH", path, 1);
    machine_gpus_nvidia(&m);
    if (old) setenv("PATH", old, 1);
    free(old);
    CHECK_INT(m.ngpus, 3);
    CHECK_STR(m.gpus[1].name, "NVIDIA GeForce RTX 4090");
    CHECK_INT(m.gpus[1].vram_bytes, 24564LL * 1048576);
    CHECK_STR(m.gpus[2].name, "NVIDIA T4");
}

UNIT_TEST(profile_and_overrides) {
    mg_config cfg;
    mg_error err;
    char sys[MG_PATH_MAX];
    snprintf(sys, sizeof sys, "%s/empty-sys", unit_tmpdir());
    setenv("MG_SYSFS_ROOT", sys, 1); /* no GPU here, whatever the machine has */
    setenv("PATH", "/nonexistent", 1);
    if (config_load(&cfg, unit_tmpdir(), &err) != 0)
        unit_fail(__FILE__, __LINE__, "%s", err.message);
    machine_profile m;
    machine_detect(&cfg, &m);
    CHECK(m.ram_bytes > 0);
    CHECK(m.ram_available_bytes > 0 && m.ram_available_bytes <= m.ram_bytes);
    CHECK(m.cpu_cores >= 1);
    CHECK(m.disk_free_bytes > 0 && m.disk_total_bytes >= m.disk_free_bytes);
    CHECK_INT(m.ngpus, 0);
    CHECK_INT(m.vram_bytes, 0);
    json_t *j = machine_json(&m);
    CHECK(json_is_array(json_object_get(j, "gpus")));
    CHECK(json_is_integer(json_object_get(json_object_get(j, "disk"), "free_bytes")));
    CHECK(json_is_null(json_object_get(json_object_get(j, "configured"), "ram_gb")));
    json_decref(j);

    cfg.machine_ram_gb = 32;
    cfg.machine_vram_gb = 12;
    machine_detect(&cfg, &m);
    CHECK_INT(m.ram_bytes, 32000000000LL);
    CHECK_INT(m.vram_bytes, 12000000000LL);
    CHECK_INT(m.ngpus, 1);
    CHECK(m.ram_available_bytes <= m.ram_bytes);
    j = machine_json(&m);
    CHECK_INT(json_integer_value(json_object_get(json_array_get(json_object_get(j, "gpus"), 0),
                                                 "vram_bytes")),
              12000000000LL);
    CHECK(json_real_value(json_object_get(json_object_get(j, "configured"), "vram_gb")) == 12.0);
    json_decref(j);
    cfg.machine_vram_gb = 0; /* "no GPU" */
    machine_detect(&cfg, &m);
    CHECK_INT(m.ngpus, 0);
    config_free(&cfg);
}
