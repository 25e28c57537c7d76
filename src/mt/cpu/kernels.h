/* kernels.h - the CPU backend's SIMD kernels, in builds of the same code
 * (scalar, AVX2+FMA+F16C, AVX-512F on x86-64; NEON with sdot where present
 * on arm64) selected at run time, for f32, bf16,
 * f16 and int8 weights. Each function works on a slice [n0, n1) of the
 * output columns so the backend can split it over threads; ldy is y's row
 * stride (a weight stacked from parts writes each part's columns).
 * Internal to src/mt/cpu. */
#ifndef MT_CPU_KERNELS_H
#define MT_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* = nllb_simd values. On x86-64 the levels are ordered scalar < avx2 <
 * avxvnni < avx512 < avx512vnni (mt_kernels_pick); each includes the ones
 * before it, except that avx512 does not need AVX-VNNI (Skylake-X, Ice Lake
 * have none): a CPU runs avxvnni only when it has the feature. */
enum { MT_KL_SCALAR = 1, MT_KL_AVX2 = 2, MT_KL_AVX512 = 3, MT_KL_NEON = 4, MT_KL_AVX512VNNI = 5, MT_KL_AVXVNNI = 6 };

/* The best level this CPU runs. */
int mt_kernels_best(void);
/* The best level this CPU runs, not above `want` (0 = no cap). */
int mt_kernels_pick(int want);
/* 1 when this CPU and build run `level`. */
int mt_kernels_supported(int level);
const char *mt_kernels_name(int level);

/* Rows [n0, n1) of y[M][N] (=, relu, +=) x[M][K] W[N][K]^T + b (flags as
 * MT_LIN_*; b may be NULL; N is also y's row stride). Dot products
 * accumulate in f32 lanes. */
void mt_linear_rows(int level, const float *x, int M, int K, const float *W, int N, const float *b, float *y,
                    int flags, int n0, int n1);
/* The same with bf16 (is_bf16 1) or f16 (0) weights, widened to f32. W's
 * first il rows may be interleaved as int8's below, with 64-byte pieces of
 * 32 values (K % 32 == 0, il % 4 == 0, n0 % 4 == 0 when n0 < il). */
void mt_linear_rows_half(int level, int is_bf16, const float *x, int M, int K, const uint16_t *W, int il, int ldy,
                         const float *b, float *y, int flags, int n0, int n1);
/* int8 weights W[N][K] with per-row scales ws, int8 activations xq[M][K]
 * with per-row scales xs (quant.h's rule): exact int32 dot products, then
 * y = dot * xs[m] * ws[n] (+ b, flags).
 *
 * W's first `il` rows may be in quant.h's interleaved layout (il 0: all
 * rows row-major), so that a kernel reading 4 rows at once walks one
 * sequential stream. One core streamed 22 GB/s of a 4-row-at-once
 * row-major matrix and 31 GB/s of the interleaved one (the Zen 5 dev VM;
 * two cores 34-39 against 53-57). Requires K % 64 == 0, il % 4 == 0 and,
 * when n0 < il, n0 % 4 == 0 (mt_i8_interleave_rows gives il). */
void mt_linear_rows_i8(int level, const int8_t *xq, const float *xs, int M, int K, const int8_t *W, const float *ws,
                       int il, int ldy, const float *b, float *y, int flags, int n0, int n1);
/* 1 if the level's int8 / bf16 and f16 kernels stream the interleaved
 * layout faster. */
int mt_i8_layout_prefers_interleaved(int level);
int mt_half_layout_prefers_interleaved(int level);
float mt_bf16_to_f32(uint16_t h);
float mt_f16_to_f32(uint16_t h);
/* dot(a, b) over n (attention scores). */
float mt_dot(int level, const float *a, const float *b, int n);
/* y += a * x over n. */
void mt_axpy(int level, float a, const float *x, float *y, int n);
/* y = LayerNorm(x) * g + b over one row of D (mean and variance in double,
 * the same bits at every level). */
void mt_layernorm_row(int level, const float *x, int D, const float *g, const float *b, float eps, float *y);
/* out[t] = mt_dot(level, a, b + t * stride, n) for t < cnt (cnt <= 4), the
 * same bits, several keys per call (the attention's scores). */
void mt_dot4(int level, const float *a, const float *b, size_t stride, int cnt, int n, float *out);
/* mt_axpy(level, a[t], x + t * stride, y, n) for t = 0 .. cnt - 1 (cnt <= 4),
 * the same bits, y read and written once. */
void mt_axpy4(int level, const float *a, const float *x, size_t stride, int cnt, float *y, int n);

#endif
