/* id.h - validation of model ids and job ids, the only strings that ever become path parts.
 *
 * A model id matches ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$ (so no "/", no "..", no NUL, no
 * leading dot); a job id is 16 lower-case hex digits. */
#ifndef MG_ID_H
#define MG_ID_H

#include <stddef.h>

#define ID_MODEL_MAX 128
#define ID_JOB_LEN 16

/* 1 when `id` (of length `len`, which may contain NUL bytes) is a valid model id. */
int id_model_valid(const char *id, size_t len);
/* 1 when the NUL-terminated `id` is a valid job id. */
int id_job_valid(const char *id);
/* Writes a new random job id (ID_JOB_LEN hex digits + NUL) into out. 0, or -1. */
int id_job_new(char out[ID_JOB_LEN + 1]);

#endif
