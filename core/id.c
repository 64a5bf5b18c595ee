/* id.c - model id and job id validation; job id generation. */
#include "id.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

static int id_model_char(unsigned char c) {
    return isalnum(c) || c == '.' || c == '_' || c == '-';
}

int id_model_valid(const char *id, size_t len) {
    if (!id || len == 0 || len > ID_MODEL_MAX) return 0;
    if (!isalnum((unsigned char)id[0])) return 0;
    for (size_t i = 1; i < len; i++)
        if (!id_model_char((unsigned char)id[i])) return 0;
    return 1;
}

int id_job_valid(const char *id) {
    if (!id || strlen(id) != ID_JOB_LEN) return 0;
    for (size_t i = 0; i < ID_JOB_LEN; i++)
        if (!isdigit((unsigned char)id[i]) && !(id[i] >= 'a' && id[i] <= 'f')) return 0;
    return 1;
}

int id_job_new(char out[ID_JOB_LEN + 1]) {
    unsigned char raw[ID_JOB_LEN / 2];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) return -1;
    for (size_t i = 0; i < sizeof raw; i++) snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return 0;
}
