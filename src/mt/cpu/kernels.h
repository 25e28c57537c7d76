/* kernels.h - the CPU backend's SIMD kernels, in three builds of the same
 * code (scalar, AVX2+FMA, AVX-512F) selected at run time. Each function
 * works on a slice of the output so the backend can split it over threads.
 * Internal to src/mt/cpu. */
#ifndef MT_CPU_KERNELS_H
#define MT_CPU_KERNELS_H

enum { MT_KL_SCALAR = 1, MT_KL_AVX2 = 2, MT_KL_AVX512 = 3 };

/* The best level this CPU runs, not above `want` (0 = no cap). */
int mt_kernels_pick(int want);
const char *mt_kernels_name(int level);

/* Rows [n0, n1) of y[M][N] (=, relu, +=) x[M][K] W[N][K]^T + b (flags as
 * MT_LIN_*; b may be NULL). Dot products accumulate in f32 lanes. */
void mt_linear_rows(int level, const float *x, int M, int K, const float *W, int N, const float *b, float *y,
                    int flags, int n0, int n1);
/* dot(a, b) over n (attention scores). */
float mt_dot(int level, const float *a, const float *b, int n);
/* y += a * x over n. */
void mt_axpy(int level, float a, const float *x, float *y, int n);

#endif
