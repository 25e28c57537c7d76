/* bench_i8_kernel - the CPU engine's int8 linear kernel (kernels.c,
 * mt_linear_rows_i8) on one thread at 1, 4 and 20 rows of x (greedy, beam
 * 4, a 20-token encoder), K 1024 and 4096, with its weights cached (64
 * rows, reused: the rate bench_nllb's arithmetic floor takes) and streamed
 * (96 MB, each 4-row block used once per call, as the engine's Linear
 * layers read them), in both weight layouts (kernels.h: row-major, and the
 * interleaved one the engine converts to). The gap between cached and
 * streamed says how much of a phase's time is the weight stream rather than
 * the arithmetic.
 *
 *   bench_i8_kernel [--simd scalar|avx2|avxvnni|avx512|avx512vnni|neon] [--bf16]
 *
 * --bf16: the bf16 kernel instead (mt_linear_rows_half; its weights twice
 * the bytes of int8's, the same two layouts).
 *
 * Pin it to one core (taskset -c N) for stable figures. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu/kernels.h"
#include "nllb.h"
#include "quant.h"

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

int main(int argc, char **argv) {
    int want = 0, bf16 = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--simd") && i + 1 < argc && nllb_simd_parse(argv[i + 1]) > 0) want = nllb_simd_parse(argv[++i]);
        else if (!strcmp(argv[i], "--bf16")) bf16 = 1;
        else {
            fprintf(stderr, "usage: bench_i8_kernel [--simd scalar|avx2|avxvnni|avx512|avx512vnni|neon] [--bf16]\n");
            return 2;
        }
    }
    const size_t es = bf16 ? 2 : 1;
    const int level = mt_kernels_pick(want);
    static const int Ms[] = {1, 4, 20}, Ks[] = {1024, 4096};
    printf("%s linear kernel, level %s, one thread; GMAC/s best of 7, the two layouts alternating\n",
           bf16 ? "bf16" : "int8", mt_kernels_name(level));
    for (int ki = 0; ki < 2; ki++)
        for (int mi = 0; mi < 3; mi++) {
            const int M = Ms[mi], K = Ks[ki];
            const size_t N = (size_t)(96u << 20) / ((size_t)K * es); /* rows of the streamed matrix */
            /* 64-byte aligned as the engine's weights (cpu_alloc): malloc's
             * 16-byte offset made every 64-byte load touch two lines */
            int8_t *W = aligned_alloc(64, N * K * es), *xq = aligned_alloc(64, (size_t)M * K);
            float *xf = malloc((size_t)M * K * sizeof(float));
            float *ws = malloc(N * sizeof(float)), *xs = malloc((size_t)M * sizeof(float));
            float *y = calloc((size_t)M * N, sizeof(float));
            if (!W || !xq || !ws || !xs || !y || !xf) {
                fprintf(stderr, "bench_i8_kernel: out of memory\n");
                return 1;
            }
            for (size_t i = 0; i < N * K * es; i++) W[i] = (int8_t)((i * 13) % 255 - 127);
            if (bf16) /* finite bf16 values */
                for (size_t i = 0; i < N * K; i++) ((uint16_t *)W)[i] = (uint16_t)(0x3c00 + (i * 13) % 255);
            for (int i = 0; i < M * K; i++) xf[i] = (float)((i * 37) % 201 - 100) * 0.01f;
            for (int i = 0; i < M * K; i++) xq[i] = (int8_t)((i * 37) % 201 - 100);
            for (size_t i = 0; i < N; i++) ws[i] = 0.01f;
            for (int i = 0; i < M; i++) xs[i] = 0.01f;
            double cached[2] = {0, 0}, streamed[2] = {0, 0};
            for (int rep = 0; rep < 7; rep++)
                for (int lay = 0; lay < 2; lay++) { /* the bytes' layout does not change the rate of a random matrix */
                    const int il64 = lay ? mt_i8_interleave_rows(K, 64) : 0;
                    const int il = lay ? mt_i8_interleave_rows(K, (int)N) : 0;
                    const int it = (int)(2e8 / ((double)M * K * 64)) + 1;
                    double t0 = now_ms();
                    for (int i = 0; i < it; i++) {
                        if (bf16) mt_linear_rows_half(level, 1, xf, M, K, (const uint16_t *)W, il64, 64, NULL, y, 0, 0, 64);
                        else mt_linear_rows_i8(level, xq, xs, M, K, W, ws, il64, 64, NULL, y, 0, 0, 64);
                    }
                    double g = (double)it * M * K * 64 / ((now_ms() - t0) * 1e6);
                    if (g > cached[lay]) cached[lay] = g;
                    t0 = now_ms();
                    if (bf16) mt_linear_rows_half(level, 1, xf, M, K, (const uint16_t *)W, il, (int)N, NULL, y, 0, 0, (int)N);
                    else mt_linear_rows_i8(level, xq, xs, M, K, W, ws, il, (int)N, NULL, y, 0, 0, (int)N);
                    g = (double)M * K * N / ((now_ms() - t0) * 1e6);
                    if (g > streamed[lay]) streamed[lay] = g;
                }
            for (int lay = 0; lay < 2; lay++)
                printf("  %-11s M %2d, K %4d: cached %6.1f GMAC/s, streamed %6.1f GMAC/s (%5.1f GB/s of weights), "
                       "streamed / cached %.2f\n",
                       lay ? "interleaved" : "row-major", M, K, cached[lay], streamed[lay], streamed[lay] * es / M,
                       streamed[lay] / cached[lay]);
            free(W), free(xq), free(ws), free(xs), free(y), free(xf);
        }
    return 0;
}
