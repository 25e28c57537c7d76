/* bench_util.h - what the NLLB benchmarks share: strict integer flags (a
 * typo such as "--shortlist-rows 32k" is an error, never a silent 0, which
 * would mean the full vocabulary) and the test shortlist both benchmarks
 * measure with, so that their figures describe the same LM head. Header-only:
 * each benchmark is one C file. */
#ifndef STTS_BENCH_UTIL_H
#define STTS_BENCH_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "nllb.h"

/* *out = the decimal integer v, in [lo, hi]; else a message naming the flag, -1. */
static inline int bench_int_flag(const char *prog, const char *flag, const char *v, int lo, int hi, int *out) {
    char *end = NULL;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || end == v || *end != '\0' || errno == ERANGE || x < lo || x > hi) {
        fprintf(stderr, "%s: %s takes an integer in %d..%d (got \"%s\")\n", prog, flag, lo, hi, v ? v : "");
        return -1;
    }
    *out = (int)x;
    return 0;
}

/* The benchmarks' LM-head shortlist of `rows` ids: the special and language
 * ids first (the search forces and stops on them), then rows spread evenly
 * over the SentencePiece vocabulary. The real one (shortlist auto) picks by
 * script; only the row count matters for speed. NULL when rows <= 0 or out
 * of memory; the caller frees it. */
static inline int32_t *bench_shortlist_ids(const nllb_config *cfg, int rows) {
    if (rows <= 0) return NULL;
    int32_t *sl = (int32_t *)malloc(sizeof(int32_t) * (size_t)rows);
    if (!sl) return NULL;
    int k = 0;
    for (int i = 0; i < 4 && k < rows; i++) sl[k++] = i;
    for (int i = 0; i <= 202 && k < rows; i++) sl[k++] = cfg->spm_size + 1 + i;
    int fill = rows - k;
    for (int i = 0; i < fill; i++) sl[k++] = 4 + (int)((long long)i * (cfg->spm_size - 4) / fill);
    return sl;
}

#endif
