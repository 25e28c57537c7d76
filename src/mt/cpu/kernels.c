/* kernels.c - dot-product kernels for y = x W^T + b with W in HF's [out][in]
 * layout: each output row of W is streamed once per block of x rows, which is
 * what batch-1 decoding (x has 1..8 rows, W is hundreds of MB) is bound by.
 * Builds: scalar, AVX2+FMA, AVX-VNNI and AVX-512 VNNI (int8 only), AVX-512F on x86-64,
 * NEON (+ sdot, + smmla) on arm64, compiled with target attributes so the binary runs
 * on any CPU of its architecture; mt_kernels_best() chooses at run time. */
#include "kernels.h"

#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MT_X86 1
#include <cpuid.h>
#include <immintrin.h>
/* F16C (CPUID.1:ECX bit 29): clang's __builtin_cpu_supports has no "f16c". */
static int has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}
#define TGT_AVX2 __attribute__((target("avx2,fma,f16c")))
#define TGT_AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))
#define TGT_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define TGT_AVXVNNI __attribute__((target("avxvnni,avx2,fma,f16c")))
/* AVX-VNNI (CPUID.(7,1):EAX bit 4), read directly: clang's
 * __builtin_cpu_supports does not know it in every version. */
static int has_avxvnni(void) {
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4));
}
#endif
#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define MT_NEON 1
#include <arm_neon.h>
#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1 << 13)
#endif
#define CPU_HAS_DOT() ((getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0)
#define CPU_HAS_I8MM() ((getauxval(AT_HWCAP2) & HWCAP2_I8MM) != 0)
#elif defined(__APPLE__)
/* macOS has no getauxval; it names each feature in sysctl (macOS 12 and
 * later; an older one reports neither and gets the plain NEON kernels). */
#include <sys/sysctl.h>
static int apple_cpu_has(const char *name) {
    int v = 0;
    size_t n = sizeof v;
    return sysctlbyname(name, &v, &n, NULL, 0) == 0 && v != 0;
}
#define CPU_HAS_DOT() apple_cpu_has("hw.optional.arm.FEAT_DotProd")
#define CPU_HAS_I8MM() apple_cpu_has("hw.optional.arm.FEAT_I8MM")
#else
#define CPU_HAS_DOT() 0 /* no way to ask: the plain NEON kernels */
#define CPU_HAS_I8MM() 0
#endif
#define TGT_DOT __attribute__((target("arch=armv8.2-a+dotprod")))
#define TGT_I8MM __attribute__((target("arch=armv8.2-a+dotprod+i8mm")))
static int g_has_dot = -1; /* sdot (ARMv8.2 dot product), checked once */
static int has_dot(void) {
    if (g_has_dot < 0) g_has_dot = CPU_HAS_DOT();
    return g_has_dot;
}
/* smmla (the int8 matrix multiply of ARMv8.6, optional from 8.2: Apple M2
 * and later, Graviton 3, Neoverse V1/N2); STTS_ARM_NO_I8MM=1 takes the sdot
 * path instead (tests, comparisons) */
static int g_has_i8mm = -1;
static int has_i8mm(void) {
    if (g_has_i8mm < 0) {
        const char *off = getenv("STTS_ARM_NO_I8MM");
        g_has_i8mm = has_dot() && CPU_HAS_I8MM() && !(off && *off == '1');
    }
    return g_has_i8mm;
}
#endif

int mt_kernels_best(void) {
    int best = MT_KL_SCALAR;
#ifdef MT_NEON
    best = MT_KL_NEON; /* every arm64 CPU has NEON */
    (void)has_dot();
    (void)has_i8mm();
#endif
#ifdef MT_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c())
        best = MT_KL_AVX2;
    /* AVX-VNNI ranks above AVX2 and below AVX-512: it is the best level only
     * on CPUs without AVX-512F (Intel client CPUs since Alder Lake) */
    if (best == MT_KL_AVX2 && has_avxvnni() && !__builtin_cpu_supports("avx512f")) return MT_KL_AVXVNNI;
    if (best == MT_KL_AVX2 && __builtin_cpu_supports("avx512f")) best = MT_KL_AVX512;
    if (best == MT_KL_AVX512 && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512vnni"))
        best = MT_KL_AVX512VNNI;
#endif
    return best;
}

/* Levels in the order they include each other (the enum's values are the
 * public nllb_simd's, where NEON came before VNNI). */
static int rank(int level) {
    switch (level) {
    case MT_KL_SCALAR: return 1;
    case MT_KL_AVX2:
    case MT_KL_NEON: return 2;
    case MT_KL_AVXVNNI: return 3;
    case MT_KL_AVX512: return 4;
    case MT_KL_AVX512VNNI: return 5;
    default: return 0;
    }
}

static int is_arm(int level) { return level == MT_KL_NEON; }

int mt_kernels_pick(int want) {
    int best = mt_kernels_best();
    if (want > 0 && mt_kernels_supported(want) && rank(want) < rank(best)) best = want;
    return best;
}

int mt_kernels_supported(int level) {
    if (level == MT_KL_SCALAR) return 1;
    int best = mt_kernels_best();
    if (rank(level) == 0 || is_arm(level) != is_arm(best)) return 0;
#ifdef MT_X86
    if (level == MT_KL_AVXVNNI && !has_avxvnni()) return 0; /* AVX-512 CPUs without it */
#endif
    return rank(level) <= rank(best);
}

const char *mt_kernels_name(int level) {
    switch (level) {
    case MT_KL_AVX512VNNI: return "avx512vnni";
    case MT_KL_AVXVNNI: return "avxvnni";
    case MT_KL_AVX512: return "avx512";
    case MT_KL_NEON:
#ifdef MT_NEON
        return has_dot() ? "neon+dotprod" : "neon";
#else
        return "neon";
#endif
    case MT_KL_AVX2: return "avx2";
    default: return "scalar";
    }
}

static inline float finish(float acc, const float *b, int n, float old, int flags) {
    float v = acc + (b ? b[n] : 0.0f);
    if (flags & MT_LIN_RELU) v = v > 0.0f ? v : 0.0f;
    if (flags & MT_LIN_ACCUM) v = old + v;
    return v;
}

/* Rows of W beyond n1 are never read: pointers of a partial block repeat the
 * last valid row and their results are dropped. */
static inline void wrows(const float *W, int K, int n, int n1, const float *w[4], int *nw) {
    *nw = n1 - n < 4 ? n1 - n : 4;
    for (int i = 0; i < 4; i++) w[i] = W + (size_t)(n + (i < *nw ? i : *nw - 1)) * K;
}

/* Blocks of x rows re-read each W block from cache; 64 rows of x (64 x 16 KB
 * at K = 4096) stay in L2 while W streams once per block. */
#define MCHUNK 64

/* Register blocks are named variables (a00 ... a33), never small arrays
 * with loops over them: GCC's -O2 does not unroll such loops, and the
 * arrays then live on the stack (a store and a reload per multiply-add).
 * The AVX2 int8 kernel's 2-row loop and the VNNI 4 x 4 block were written
 * that way: 2 rows cost 2.4x one row, and the VNNI encoder ran ~4x below
 * its peak on the 16-core host. */

#ifdef MT_X86
/* Software prefetch of the weight stream. A block's 4 rows are contiguous
 * (rows n..n+3 of W, 4 * K elements), and the k loop walks them at 4 x its
 * step, so "block + PF_AHEAD + 4 * k * elem" stays PF_AHEAD bytes ahead of
 * the loads. One core's hardware prefetcher alone fetched 9.6 GB/s of an
 * int8 LM head on the 2-core dev VM (4 interleaved streams); with this 14.7
 * GB/s (the two-thread read probe: ~18.5 GB/s per core). Prefetches never
 * fault, so running past the matrix's end is harmless. */
#define PF_AHEAD 4096
#define PF_LINES(base, off, lines)                                                        \
    do {                                                                                  \
        const char *pf_ = (const char *)(base) + PF_AHEAD + (off);                        \
        for (int pl_ = 0; pl_ < (lines); pl_++) _mm_prefetch(pf_ + 64 * pl_, _MM_HINT_T0); \
    } while (0)
#endif

/* ---------------- scalar ---------------- */
static void lin_scalar(const float *x, int M, int K, const float *W, int N, const float *b, float *y, int flags,
                       int n0, int n1) {
    for (int mb = 0; mb < M; mb += MCHUNK) {
        int me = mb + MCHUNK < M ? mb + MCHUNK : M;
        for (int n = n0; n < n1; n += 4) {
            const float *w[4];
            int nw;
            wrows(W, K, n, n1, w, &nw);
            for (int m = mb; m < me; m++) {
                const float *xr = x + (size_t)m * K;
                float acc[4] = {0, 0, 0, 0};
                for (int k = 0; k < K; k++) {
                    float xv = xr[k];
                    acc[0] += w[0][k] * xv;
                    acc[1] += w[1][k] * xv;
                    acc[2] += w[2][k] * xv;
                    acc[3] += w[3][k] * xv;
                }
                float *yr = y + (size_t)m * N;
                for (int i = 0; i < nw; i++) yr[n + i] = finish(acc[i], b, n + i, yr[n + i], flags);
            }
        }
    }
}

static float dot_scalar(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static void axpy_scalar(float a, const float *x, float *y, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

#ifdef MT_X86
/* ---------------- AVX2 + FMA ---------------- */
TGT_AVX2 static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

TGT_AVX2 static void lin_avx2(const float *x, int M, int K, const float *W, int N, const float *b, float *y,
                              int flags, int n0, int n1) {
    const int Kv = K & ~7;
    for (int mb = 0; mb < M; mb += MCHUNK) {
        int me = mb + MCHUNK < M ? mb + MCHUNK : M;
        for (int n = n0; n < n1; n += 4) {
            const float *w[4];
            int nw;
            wrows(W, K, n, n1, w, &nw);
            int m = mb;
            for (; m + 2 <= me; m += 2) { /* 2 x rows x 4 W rows: 8 accumulators */
                const float *x0 = x + (size_t)m * K, *x1 = x0 + K;
                __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00;
                __m256 a10 = a00, a11 = a00, a12 = a00, a13 = a00;
                for (int k = 0; k < Kv; k += 8) {
                    PF_LINES(w[0], (size_t)k * 16, 2); /* 4 rows x 8 floats */
                    __m256 v0 = _mm256_loadu_ps(x0 + k), v1 = _mm256_loadu_ps(x1 + k);
                    __m256 w0 = _mm256_loadu_ps(w[0] + k), w1 = _mm256_loadu_ps(w[1] + k);
                    a00 = _mm256_fmadd_ps(w0, v0, a00);
                    a10 = _mm256_fmadd_ps(w0, v1, a10);
                    a01 = _mm256_fmadd_ps(w1, v0, a01);
                    a11 = _mm256_fmadd_ps(w1, v1, a11);
                    __m256 w2 = _mm256_loadu_ps(w[2] + k), w3 = _mm256_loadu_ps(w[3] + k);
                    a02 = _mm256_fmadd_ps(w2, v0, a02);
                    a12 = _mm256_fmadd_ps(w2, v1, a12);
                    a03 = _mm256_fmadd_ps(w3, v0, a03);
                    a13 = _mm256_fmadd_ps(w3, v1, a13);
                }
                float r0[4] = {hsum256(a00), hsum256(a01), hsum256(a02), hsum256(a03)};
                float r1[4] = {hsum256(a10), hsum256(a11), hsum256(a12), hsum256(a13)};
                for (int k = Kv; k < K; k++)
                    for (int i = 0; i < 4; i++) {
                        r0[i] += w[i][k] * x0[k];
                        r1[i] += w[i][k] * x1[k];
                    }
                float *y0 = y + (size_t)m * N, *y1 = y0 + N;
                for (int i = 0; i < nw; i++) {
                    y0[n + i] = finish(r0[i], b, n + i, y0[n + i], flags);
                    y1[n + i] = finish(r1[i], b, n + i, y1[n + i], flags);
                }
            }
            for (; m < me; m++) { /* one x row x 4 W rows (batch-1 decode) */
                const float *x0 = x + (size_t)m * K;
                __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                for (int k = 0; k < Kv; k += 8) {
                    PF_LINES(w[0], (size_t)k * 16, 2); /* 4 rows x 8 floats */
                    __m256 v0 = _mm256_loadu_ps(x0 + k);
                    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w[0] + k), v0, a0);
                    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w[1] + k), v0, a1);
                    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w[2] + k), v0, a2);
                    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w[3] + k), v0, a3);
                }
                float r[4] = {hsum256(a0), hsum256(a1), hsum256(a2), hsum256(a3)};
                for (int k = Kv; k < K; k++)
                    for (int i = 0; i < 4; i++) r[i] += w[i][k] * x0[k];
                float *y0 = y + (size_t)m * N;
                for (int i = 0; i < nw; i++) y0[n + i] = finish(r[i], b, n + i, y0[n + i], flags);
            }
        }
    }
}

TGT_AVX2 static float dot_avx2(const float *a, const float *b, int n) {
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    float s = hsum256(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

TGT_AVX2 static void axpy_avx2(float a, const float *x, float *y, int n) {
    __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

/* Four keys at once, each with dot_avx2's own chain (one accumulator, the
 * same FMAs in the same order, the same horizontal sum): the same bits as
 * four dot_avx2 calls, with four independent chains to hide the FMA
 * latency that one 64-value dot (8 dependent FMAs) waits on. */
TGT_AVX2 static void dot4_avx2(const float *a, const float *b, size_t stride, float *out, int n) {
    const float *b0 = b, *b1 = b + stride, *b2 = b + 2 * stride, *b3 = b + 3 * stride;
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 av = _mm256_loadu_ps(a + i);
        c0 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b0 + i), c0);
        c1 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b1 + i), c1);
        c2 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b2 + i), c2);
        c3 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b3 + i), c3);
    }
    float s0 = hsum256(c0), s1 = hsum256(c1), s2 = hsum256(c2), s3 = hsum256(c3);
    for (int t = i; t < n; t++) s0 += a[t] * b0[t];
    for (int t = i; t < n; t++) s1 += a[t] * b1[t];
    for (int t = i; t < n; t++) s2 += a[t] * b2[t];
    for (int t = i; t < n; t++) s3 += a[t] * b3[t];
    out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

/* y += a[0] x_0, then a[1] x_1, ... (cnt <= 4 terms): each lane gets the
 * FMAs axpy_avx2 would give it, in the same order, with y loaded and
 * stored once instead of once per term. */
TGT_AVX2 static void axpy4_avx2(const float *a, const float *x, size_t stride, int cnt, float *y, int n) {
    __m256 av[4];
    for (int t = 0; t < cnt; t++) av[t] = _mm256_set1_ps(a[t]);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 acc = _mm256_loadu_ps(y + i);
        for (int t = 0; t < cnt; t++) acc = _mm256_fmadd_ps(av[t], _mm256_loadu_ps(x + t * stride + i), acc);
        _mm256_storeu_ps(y + i, acc);
    }
    for (; i < n; i++)
        for (int t = 0; t < cnt; t++) y[i] += a[t] * x[t * stride + i];
}

/* ---------------- AVX-512F ---------------- */
TGT_AVX512 static void lin_avx512(const float *x, int M, int K, const float *W, int N, const float *b, float *y,
                                  int flags, int n0, int n1) {
    const int Kv = K & ~15;
    for (int mb = 0; mb < M; mb += MCHUNK) {
        int me = mb + MCHUNK < M ? mb + MCHUNK : M;
        for (int n = n0; n < n1; n += 4) {
            const float *w[4];
            int nw;
            wrows(W, K, n, n1, w, &nw);
            int m = mb;
            for (; m + 4 <= me; m += 4) { /* 4 x rows x 4 W rows: 16 named accumulators (registers) */
                const float *x0 = x + (size_t)m * K, *x1 = x0 + K, *x2 = x1 + K, *x3 = x2 + K;
                __m512 z = _mm512_setzero_ps();
                __m512 a00 = z, a01 = z, a02 = z, a03 = z, a10 = z, a11 = z, a12 = z, a13 = z;
                __m512 a20 = z, a21 = z, a22 = z, a23 = z, a30 = z, a31 = z, a32 = z, a33 = z;
                for (int k = 0; k < Kv; k += 16) {
                    PF_LINES(w[0], (size_t)k * 16, 4); /* 4 rows x 16 floats */
                    __m512 w0 = _mm512_loadu_ps(w[0] + k), w1 = _mm512_loadu_ps(w[1] + k);
                    __m512 w2 = _mm512_loadu_ps(w[2] + k), w3 = _mm512_loadu_ps(w[3] + k);
                    __m512 v = _mm512_loadu_ps(x0 + k);
                    a00 = _mm512_fmadd_ps(w0, v, a00), a01 = _mm512_fmadd_ps(w1, v, a01);
                    a02 = _mm512_fmadd_ps(w2, v, a02), a03 = _mm512_fmadd_ps(w3, v, a03);
                    v = _mm512_loadu_ps(x1 + k);
                    a10 = _mm512_fmadd_ps(w0, v, a10), a11 = _mm512_fmadd_ps(w1, v, a11);
                    a12 = _mm512_fmadd_ps(w2, v, a12), a13 = _mm512_fmadd_ps(w3, v, a13);
                    v = _mm512_loadu_ps(x2 + k);
                    a20 = _mm512_fmadd_ps(w0, v, a20), a21 = _mm512_fmadd_ps(w1, v, a21);
                    a22 = _mm512_fmadd_ps(w2, v, a22), a23 = _mm512_fmadd_ps(w3, v, a23);
                    v = _mm512_loadu_ps(x3 + k);
                    a30 = _mm512_fmadd_ps(w0, v, a30), a31 = _mm512_fmadd_ps(w1, v, a31);
                    a32 = _mm512_fmadd_ps(w2, v, a32), a33 = _mm512_fmadd_ps(w3, v, a33);
                }
                float r[4][4] = {
                    {_mm512_reduce_add_ps(a00), _mm512_reduce_add_ps(a01), _mm512_reduce_add_ps(a02),
                     _mm512_reduce_add_ps(a03)},
                    {_mm512_reduce_add_ps(a10), _mm512_reduce_add_ps(a11), _mm512_reduce_add_ps(a12),
                     _mm512_reduce_add_ps(a13)},
                    {_mm512_reduce_add_ps(a20), _mm512_reduce_add_ps(a21), _mm512_reduce_add_ps(a22),
                     _mm512_reduce_add_ps(a23)},
                    {_mm512_reduce_add_ps(a30), _mm512_reduce_add_ps(a31), _mm512_reduce_add_ps(a32),
                     _mm512_reduce_add_ps(a33)}};
                const float *xr[4] = {x0, x1, x2, x3};
                for (int j = 0; j < 4; j++) {
                    for (int k = Kv; k < K; k++)
                        for (int i = 0; i < 4; i++) r[j][i] += w[i][k] * xr[j][k];
                    float *yr = y + (size_t)(m + j) * N;
                    for (int i = 0; i < nw; i++) yr[n + i] = finish(r[j][i], b, n + i, yr[n + i], flags);
                }
            }
            for (; m < me; m++) { /* one x row x 4 W rows (batch-1 decode) */
                const float *x0 = x + (size_t)m * K;
                __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                for (int k = 0; k < Kv; k += 16) {
                    PF_LINES(w[0], (size_t)k * 16, 4); /* 4 rows x 16 floats */
                    __m512 v0 = _mm512_loadu_ps(x0 + k);
                    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w[0] + k), v0, a0);
                    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w[1] + k), v0, a1);
                    a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w[2] + k), v0, a2);
                    a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w[3] + k), v0, a3);
                }
                float r[4] = {_mm512_reduce_add_ps(a0), _mm512_reduce_add_ps(a1), _mm512_reduce_add_ps(a2),
                              _mm512_reduce_add_ps(a3)};
                for (int k = Kv; k < K; k++)
                    for (int i = 0; i < 4; i++) r[i] += w[i][k] * x0[k];
                float *y0 = y + (size_t)m * N;
                for (int i = 0; i < nw; i++) y0[n + i] = finish(r[i], b, n + i, y0[n + i], flags);
            }
        }
    }
}
#endif /* MT_X86 */

#ifdef MT_NEON
/* ---------------- NEON (arm64) ---------------- */
static inline float hsum_neon(float32x4_t v) { return vaddvq_f32(v); }

static void lin_neon(const float *x, int M, int K, const float *W, int N, const float *b, float *y, int flags, int n0,
                     int n1) {
    const int Kv = K & ~3;
    for (int n = n0; n < n1; n += 4) {
        const float *w[4];
        int nw;
        wrows(W, K, n, n1, w, &nw);
        for (int m = 0; m < M; m++) {
            const float *x0 = x + (size_t)m * K;
            float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
            for (int k = 0; k < Kv; k += 4) {
                float32x4_t v0 = vld1q_f32(x0 + k);
                a0 = vfmaq_f32(a0, vld1q_f32(w[0] + k), v0);
                a1 = vfmaq_f32(a1, vld1q_f32(w[1] + k), v0);
                a2 = vfmaq_f32(a2, vld1q_f32(w[2] + k), v0);
                a3 = vfmaq_f32(a3, vld1q_f32(w[3] + k), v0);
            }
            float r[4] = {hsum_neon(a0), hsum_neon(a1), hsum_neon(a2), hsum_neon(a3)};
            for (int k = Kv; k < K; k++)
                for (int i = 0; i < 4; i++) r[i] += w[i][k] * x0[k];
            float *y0 = y + (size_t)m * N;
            for (int i = 0; i < nw; i++) y0[n + i] = finish(r[i], b, n + i, y0[n + i], flags);
        }
    }
}

static float dot_neon(const float *a, const float *b, int n) {
    float32x4_t acc = vdupq_n_f32(0);
    int i = 0;
    for (; i + 4 <= n; i += 4) acc = vfmaq_f32(acc, vld1q_f32(a + i), vld1q_f32(b + i));
    float s = hsum_neon(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static void axpy_neon(float a, const float *x, float *y, int n) {
    float32x4_t av = vdupq_n_f32(a);
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_f32(vld1q_f32(y + i), av, vld1q_f32(x + i)));
    for (; i < n; i++) y[i] += a * x[i];
}
#endif /* MT_NEON */

void mt_linear_rows(int level, const float *x, int M, int K, const float *W, int N, const float *b, float *y,
                    int flags, int n0, int n1) {
    if (n1 <= n0 || M <= 0) return;
#ifdef MT_NEON
    if (level == MT_KL_NEON) {
        lin_neon(x, M, K, W, N, b, y, flags, n0, n1);
        return;
    }
#endif
#ifdef MT_X86
    if (level == MT_KL_AVX512 || level == MT_KL_AVX512VNNI) {
        lin_avx512(x, M, K, W, N, b, y, flags, n0, n1);
        return;
    }
    if (level == MT_KL_AVX2 || level == MT_KL_AVXVNNI) {
        lin_avx2(x, M, K, W, N, b, y, flags, n0, n1);
        return;
    }
#endif
    (void)level;
    lin_scalar(x, M, K, W, N, b, y, flags, n0, n1);
}

float mt_dot(int level, const float *a, const float *b, int n) {
#ifdef MT_NEON
    if (level == MT_KL_NEON) return dot_neon(a, b, n);
#endif
#ifdef MT_X86
    if (level >= MT_KL_AVX2) return dot_avx2(a, b, n);
#endif
    (void)level;
    return dot_scalar(a, b, n);
}

void mt_axpy(int level, float a, const float *x, float *y, int n) {
#ifdef MT_NEON
    if (level == MT_KL_NEON) {
        axpy_neon(a, x, y, n);
        return;
    }
#endif
#ifdef MT_X86
    if (level >= MT_KL_AVX2) {
        axpy_avx2(a, x, y, n);
        return;
    }
#endif
    (void)level;
    axpy_scalar(a, x, y, n);
}

/* ---- LayerNorm of one row ----
 * Mean and biased variance in double over 16 interleaved partial sums
 * (element i goes to sum i % 16; the sums combine as (s[l] + s[4 + l]) +
 * (s[8 + l] + s[12 + l]) per l, then (u0 + u1) + (u2 + u3); a tail of D %
 * 16 is added last, in order). One chain of 1024 dependent double adds took
 * ~9 us a row, 4 chains ~0.75 us (latency: 256 adds of 4 cycles a pass);
 * 16 keep the adder busy. The order moves a sum by ~1e-16 relative, far
 * below what the float mean and 1/std keep. Scalar and AVX2 follow the same
 * order and operations (no FMA: kernels.c builds with -ffp-contract=off),
 * so every level gives the same bits. */
static double ln_combine16(const double *s) {
    double u[4];
    for (int l = 0; l < 4; l++) u[l] = (s[l] + s[4 + l]) + (s[8 + l] + s[12 + l]);
    return (u[0] + u[1]) + (u[2] + u[3]);
}

static void layernorm_row_scalar(const float *x, int D, const float *g, const float *b, float eps, float *y) {
    double s[16] = {0};
    int i = 0;
    for (; i + 16 <= D; i += 16)
        for (int j = 0; j < 16; j++) s[j] += x[i + j];
    double sum = ln_combine16(s);
    for (; i < D; i++) sum += x[i];
    double mean = sum / D;
    for (int j = 0; j < 16; j++) s[j] = 0;
    for (i = 0; i + 16 <= D; i += 16)
        for (int j = 0; j < 16; j++) {
            double d = x[i + j] - mean;
            s[j] += d * d;
        }
    double v = ln_combine16(s);
    for (; i < D; i++) {
        double d = x[i] - mean;
        v += d * d;
    }
    float rstd = (float)(1.0 / sqrt(v / D + (double)eps));
    float mf = (float)mean;
    for (i = 0; i < D; i++) y[i] = (x[i] - mf) * rstd * g[i] + b[i];
}

#ifdef MT_X86
TGT_AVX2 static double ln_combine_avx2(__m256d a0, __m256d a1, __m256d a2, __m256d a3) {
    double u[4];
    _mm256_storeu_pd(u, _mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
    return (u[0] + u[1]) + (u[2] + u[3]);
}

TGT_AVX2 static void layernorm_row_avx2(const float *x, int D, const float *g, const float *b, float eps, float *y) {
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 16 <= D; i += 16) {
        a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm_loadu_ps(x + i)));
        a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)));
        a2 = _mm256_add_pd(a2, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 8)));
        a3 = _mm256_add_pd(a3, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 12)));
    }
    double sum = ln_combine_avx2(a0, a1, a2, a3);
    int tail = i;
    for (; i < D; i++) sum += x[i];
    double mean = sum / D;
    const __m256d m = _mm256_set1_pd(mean);
    a0 = a1 = a2 = a3 = _mm256_setzero_pd();
    for (i = 0; i < tail; i += 16) {
        __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i)), m);
        __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)), m);
        __m256d d2 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 8)), m);
        __m256d d3 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 12)), m);
        a0 = _mm256_add_pd(a0, _mm256_mul_pd(d0, d0));
        a1 = _mm256_add_pd(a1, _mm256_mul_pd(d1, d1));
        a2 = _mm256_add_pd(a2, _mm256_mul_pd(d2, d2));
        a3 = _mm256_add_pd(a3, _mm256_mul_pd(d3, d3));
    }
    double v = ln_combine_avx2(a0, a1, a2, a3);
    for (; i < D; i++) {
        double d = x[i] - mean;
        v += d * d;
    }
    float rstd = (float)(1.0 / sqrt(v / D + (double)eps));
    float mf = (float)mean;
    const __m256 mv = _mm256_set1_ps(mf), rv = _mm256_set1_ps(rstd);
    for (i = 0; i + 8 <= D; i += 8) {
        __m256 t = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv), rv), _mm256_loadu_ps(g + i));
        _mm256_storeu_ps(y + i, _mm256_add_ps(t, _mm256_loadu_ps(b + i)));
    }
    for (; i < D; i++) y[i] = (x[i] - mf) * rstd * g[i] + b[i];
}
#endif

void mt_layernorm_row(int level, const float *x, int D, const float *g, const float *b, float eps, float *y) {
#ifdef MT_X86
    if (level >= MT_KL_AVX2) {
        layernorm_row_avx2(x, D, g, b, eps, y);
        return;
    }
#endif
    (void)level;
    layernorm_row_scalar(x, D, g, b, eps, y);
}

void mt_dot4(int level, const float *a, const float *b, size_t stride, int cnt, int n, float *out) {
#ifdef MT_X86
    if (level >= MT_KL_AVX2 && cnt == 4) {
        dot4_avx2(a, b, stride, out, n);
        return;
    }
#endif
    for (int t = 0; t < cnt; t++) out[t] = mt_dot(level, a, b + t * stride, n);
}

void mt_axpy4(int level, const float *a, const float *x, size_t stride, int cnt, float *y, int n) {
#ifdef MT_X86
    if (level >= MT_KL_AVX2) {
        axpy4_avx2(a, x, stride, cnt, y, n);
        return;
    }
#endif
    for (int t = 0; t < cnt; t++) mt_axpy(level, a[t], x + t * stride, y, n);
}

/* ======================= bf16, f16 and int8 weights =======================
 * Same shape as the f32 kernels: rows [n0, n1) of W, 4 rows per block, every
 * x row against the block while it is in L1. bf16/f16 widen to f32 and
 * accumulate in f32 lanes; int8 multiplies int8 activations (quantized per
 * row by the caller with quant.h's rule) with int8 weights into exact int32
 * sums, then y = sum * x_scale * w_scale. */

static inline float bf16_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float f16_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, ex = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
    if (ex == 0) {
        if (man == 0) u = sign;
        else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400u));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (ex == 31) u = sign | 0x7f800000u | (man << 13);
    else u = sign | ((ex + 127 - 15) << 23) | (man << 13);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float mt_bf16_to_f32(uint16_t h) { return bf16_f32(h); }
float mt_f16_to_f32(uint16_t h) { return f16_f32(h); }

typedef float (*half_cvt)(uint16_t);

/* bf16/f16 weights in the interleaved layout (kernels.h): int8's, with the
 * 64-byte pieces holding 32 values, so K % 32 == 0; row r of a group starts
 * 32 (r & 3) values into it, column k sits at k + 3 (k & ~31) from there. */
static inline const uint16_t *h_row(const uint16_t *W, int K, int il, int r) {
    return r < il ? W + (size_t)(r & ~3) * K + 32 * (r & 3) : W + (size_t)r * K;
}
#define H_KP(k, ilv) ((k) + ((ilv) ? 3 * ((k) & ~31) : 0))

static void lin_half_scalar(half_cvt cv, const float *x, int M, int K, const uint16_t *W, int il, int ldy,
                            const float *b, float *y, int flags, int n0, int n1) {
    for (int n = n0; n < n1; n += 4) {
        int nw = n1 - n < 4 ? n1 - n : 4;
        for (int m = 0; m < M; m++) {
            const float *xr = x + (size_t)m * K;
            float *yr = y + (size_t)m * ldy;
            for (int i = 0; i < nw; i++) {
                const uint16_t *w = h_row(W, K, il, n + i);
                const int ilv = n + i < il;
                float acc = 0.0f;
                for (int k = 0; k < K; k++) acc += cv(w[H_KP(k, ilv)]) * xr[k];
                yr[n + i] = finish(acc, b, n + i, yr[n + i], flags);
            }
        }
    }
}

/* int8 weights in the interleaved layout (quant.h: the first `il` rows, a
 * multiple of 4, in groups of 4 rows whose 64-byte pieces alternate, K a
 * multiple of 64). A group occupies the same 4 K bytes as in row-major
 * order, so only the offsets inside it change: row r of a group starts at
 * byte 64 (r & 3) of the group, and its column k sits at k + 3 (k & ~63)
 * from there (quant.c's mt_i8_row_get/put, the definition). Every kernel
 * reads through these two, so one kernel serves both layouts with the same
 * arithmetic (the same bits). */
static inline const int8_t *i8_row(const int8_t *W, int K, int il, int r) {
    return r < il ? W + (size_t)(r & ~3) * K + 64 * (r & 3) : W + (size_t)r * K;
}
#define I8_KP(k, ilv) ((k) + ((ilv) ? 3 * ((k) & ~63) : 0))


/* Where the interleaved layout was measured faster (bench_i8_kernel, its two
 * layouts alternating, one core of the Zen 5 dev VM, 2026-12-01): the VNNI
 * kernels read 4 rows at once at every row count, one stream instead of 4:
 * AVX-512 VNNI at 1 row 24.7 -> 30 GB/s (K 1024) and 23 -> 34 (K 4096), at 4
 * rows 25 -> 30 and 20 -> 26; AVX-VNNI alike. The AVX2 kernels gain at one
 * row (24 -> 29, 19 -> 28) but lose at 3-4 rows (their pairs of W rows read
 * 2 lines of every 4: 18 -> 13-16 GB/s), so they keep row-major order until
 * that kernel changes; NEON is unmeasured (no arm64 hardware here) and keeps
 * it too. Every kernel reads both layouts. */
int mt_i8_layout_prefers_interleaved(int level) { return level == MT_KL_AVX512VNNI || level == MT_KL_AVXVNNI; }

/* bf16 and f16 (bench_i8_kernel --bf16, the same VM and method): faster at
 * every x86 level and row count, one row 22-26 -> 28-32 GB/s (AVX2 and
 * AVX-512), 4 rows 12.5-16.5 -> 17-20.5; NEON unmeasured, row-major. */
int mt_half_layout_prefers_interleaved(int level) { return level >= MT_KL_AVX2 && level != MT_KL_NEON; }

static void lin_i8_scalar(const int8_t *xq, const float *xs, int M, int K, const int8_t *W, const float *ws, int il,
                          int ldy, const float *b, float *y, int flags, int n0, int n1) {
    for (int n = n0; n < n1; n++) {
        const int8_t *w = i8_row(W, K, il, n);
        const int ilv = n < il;
        for (int m = 0; m < M; m++) {
            const int8_t *q = xq + (size_t)m * K;
            int32_t acc = 0;
            for (int k = 0; k < K; k++) acc += (int32_t)w[I8_KP(k, ilv)] * q[k];
            float *yr = y + (size_t)m * ldy;
            yr[n] = finish((float)acc * (xs[m] * ws[n]), b, n, yr[n], flags);
        }
    }
}

#ifdef MT_X86
/* 8 bf16 -> 8 f32 (shift into the high half) / 8 f16 -> 8 f32 (F16C) */
TGT_AVX2 static inline __m256 ld_bf16(const uint16_t *p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}
TGT_AVX2 static inline __m256 ld_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

#define LIN_HALF_AVX2(NAME, LD, CV) \
    TGT_AVX2 static void NAME(const float *x, int M, int K, const uint16_t *W, int il, int ldy, const float *b, float *y, \
                              int flags, int n0, int n1) { \
        const int Kv = K & ~7; \
        for (int n = n0; n < n1; n += 4) { \
            int nw = n1 - n < 4 ? n1 - n : 4; \
            const int ilv = n < il; \
            const uint16_t *w[4]; \
            for (int i = 0; i < 4; i++) w[i] = h_row(W, K, il, n + (i < nw ? i : nw - 1)); \
            int m = 0; \
            for (; m + 2 <= M; m += 2) { /* 2 x rows share each widened W vector */ \
                const float *x0 = x + (size_t)m * K, *x1 = x0 + K; \
                __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0; \
                for (int k = 0; k < Kv; k += 8) { \
                    PF_LINES(w[0], (size_t)k * 8, 1); /* 4 rows x 8 halves */ \
                    __m256 v0 = _mm256_loadu_ps(x0 + k), v1 = _mm256_loadu_ps(x1 + k), t; \
                    t = LD(w[0] + H_KP(k, ilv)), a0 = _mm256_fmadd_ps(t, v0, a0), b0 = _mm256_fmadd_ps(t, v1, b0); \
                    t = LD(w[1] + H_KP(k, ilv)), a1 = _mm256_fmadd_ps(t, v0, a1), b1 = _mm256_fmadd_ps(t, v1, b1); \
                    t = LD(w[2] + H_KP(k, ilv)), a2 = _mm256_fmadd_ps(t, v0, a2), b2 = _mm256_fmadd_ps(t, v1, b2); \
                    t = LD(w[3] + H_KP(k, ilv)), a3 = _mm256_fmadd_ps(t, v0, a3), b3 = _mm256_fmadd_ps(t, v1, b3); \
                } \
                float r[4] = {hsum256(a0), hsum256(a1), hsum256(a2), hsum256(a3)}; \
                float q[4] = {hsum256(b0), hsum256(b1), hsum256(b2), hsum256(b3)}; \
                for (int k = Kv; k < K; k++) \
                    for (int i = 0; i < 4; i++) { \
                        r[i] += CV(w[i][H_KP(k, ilv)]) * x0[k]; \
                        q[i] += CV(w[i][H_KP(k, ilv)]) * x1[k]; \
                    } \
                float *y0 = y + (size_t)m * ldy, *y1 = y0 + ldy; \
                for (int i = 0; i < nw; i++) { \
                    y0[n + i] = finish(r[i], b, n + i, y0[n + i], flags); \
                    y1[n + i] = finish(q[i], b, n + i, y1[n + i], flags); \
                } \
            } \
            for (; m < M; m++) { \
                const float *x0 = x + (size_t)m * K; \
                __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0; \
                for (int k = 0; k < Kv; k += 8) { \
                    PF_LINES(w[0], (size_t)k * 8, 1); /* 4 rows x 8 halves */ \
                    __m256 v0 = _mm256_loadu_ps(x0 + k); \
                    a0 = _mm256_fmadd_ps(LD(w[0] + H_KP(k, ilv)), v0, a0); \
                    a1 = _mm256_fmadd_ps(LD(w[1] + H_KP(k, ilv)), v0, a1); \
                    a2 = _mm256_fmadd_ps(LD(w[2] + H_KP(k, ilv)), v0, a2); \
                    a3 = _mm256_fmadd_ps(LD(w[3] + H_KP(k, ilv)), v0, a3); \
                } \
                float r[4] = {hsum256(a0), hsum256(a1), hsum256(a2), hsum256(a3)}; \
                for (int k = Kv; k < K; k++) \
                    for (int i = 0; i < 4; i++) r[i] += CV(w[i][H_KP(k, ilv)]) * x0[k]; \
                float *y0 = y + (size_t)m * ldy; \
                for (int i = 0; i < nw; i++) y0[n + i] = finish(r[i], b, n + i, y0[n + i], flags); \
            } \
        } \
    }
LIN_HALF_AVX2(lin_bf16_avx2, ld_bf16, bf16_f32)
LIN_HALF_AVX2(lin_f16_avx2, ld_f16, f16_f32)

/* The same at the AVX-512 levels, in lin_avx512's order: each (x row, W
 * row) pair sums 16-lane products over K, then _mm512_reduce_add_ps, then
 * the tail. f16 weights are widened exactly, so an f16 model gives the
 * bits of the same model loaded as f32 on every level (test_quant_error
 * asserts it); with the AVX2 kernel above on an AVX-512 CPU the two
 * differed by ~5e-7 relative (8-lane sums against lin_avx512's 16). */
TGT_AVX512 static inline __m512 ld16_bf16(const uint16_t *p) {
    __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}
TGT_AVX512 static inline __m512 ld16_f16(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

#define LIN_HALF_AVX512(NAME, LD, CV) \
    TGT_AVX512 static void NAME(const float *x, int M, int K, const uint16_t *W, int il, int ldy, const float *b, float *y, \
                                int flags, int n0, int n1) { \
        const int Kv = K & ~15; \
        for (int n = n0; n < n1; n += 4) { \
            int nw = n1 - n < 4 ? n1 - n : 4; \
            const int ilv = n < il; \
            const uint16_t *w[4]; \
            for (int i = 0; i < 4; i++) w[i] = h_row(W, K, il, n + (i < nw ? i : nw - 1)); \
            int m = 0; \
            for (; m + 2 <= M; m += 2) { /* 2 x rows share each widened W vector */ \
                const float *x0 = x + (size_t)m * K, *x1 = x0 + K; \
                __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0; \
                for (int k = 0; k < Kv; k += 16) { \
                    PF_LINES(w[0], (size_t)k * 8, 2); /* 4 rows x 16 halves */ \
                    __m512 v0 = _mm512_loadu_ps(x0 + k), v1 = _mm512_loadu_ps(x1 + k), t; \
                    t = LD(w[0] + H_KP(k, ilv)), a0 = _mm512_fmadd_ps(t, v0, a0), b0 = _mm512_fmadd_ps(t, v1, b0); \
                    t = LD(w[1] + H_KP(k, ilv)), a1 = _mm512_fmadd_ps(t, v0, a1), b1 = _mm512_fmadd_ps(t, v1, b1); \
                    t = LD(w[2] + H_KP(k, ilv)), a2 = _mm512_fmadd_ps(t, v0, a2), b2 = _mm512_fmadd_ps(t, v1, b2); \
                    t = LD(w[3] + H_KP(k, ilv)), a3 = _mm512_fmadd_ps(t, v0, a3), b3 = _mm512_fmadd_ps(t, v1, b3); \
                } \
                float r[4] = {_mm512_reduce_add_ps(a0), _mm512_reduce_add_ps(a1), _mm512_reduce_add_ps(a2), \
                              _mm512_reduce_add_ps(a3)}; \
                float q[4] = {_mm512_reduce_add_ps(b0), _mm512_reduce_add_ps(b1), _mm512_reduce_add_ps(b2), \
                              _mm512_reduce_add_ps(b3)}; \
                for (int k = Kv; k < K; k++) \
                    for (int i = 0; i < 4; i++) { \
                        r[i] += CV(w[i][H_KP(k, ilv)]) * x0[k]; \
                        q[i] += CV(w[i][H_KP(k, ilv)]) * x1[k]; \
                    } \
                float *y0 = y + (size_t)m * ldy, *y1 = y0 + ldy; \
                for (int i = 0; i < nw; i++) { \
                    y0[n + i] = finish(r[i], b, n + i, y0[n + i], flags); \
                    y1[n + i] = finish(q[i], b, n + i, y1[n + i], flags); \
                } \
            } \
            for (; m < M; m++) { \
                const float *x0 = x + (size_t)m * K; \
                __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0; \
                for (int k = 0; k < Kv; k += 16) { \
                    PF_LINES(w[0], (size_t)k * 8, 2); /* 4 rows x 16 halves */ \
                    __m512 v0 = _mm512_loadu_ps(x0 + k); \
                    a0 = _mm512_fmadd_ps(LD(w[0] + H_KP(k, ilv)), v0, a0); \
                    a1 = _mm512_fmadd_ps(LD(w[1] + H_KP(k, ilv)), v0, a1); \
                    a2 = _mm512_fmadd_ps(LD(w[2] + H_KP(k, ilv)), v0, a2); \
                    a3 = _mm512_fmadd_ps(LD(w[3] + H_KP(k, ilv)), v0, a3); \
                } \
                float r[4] = {_mm512_reduce_add_ps(a0), _mm512_reduce_add_ps(a1), _mm512_reduce_add_ps(a2), \
                              _mm512_reduce_add_ps(a3)}; \
                for (int k = Kv; k < K; k++) \
                    for (int i = 0; i < 4; i++) r[i] += CV(w[i][H_KP(k, ilv)]) * x0[k]; \
                float *y0 = y + (size_t)m * ldy; \
                for (int i = 0; i < nw; i++) y0[n + i] = finish(r[i], b, n + i, y0[n + i], flags); \
            } \
        } \
    }
LIN_HALF_AVX512(lin_bf16_avx512, ld16_bf16, bf16_f32)
LIN_HALF_AVX512(lin_f16_avx512, ld16_f16, f16_f32)

/* bf16/f16 weights against many rows of x (off by default: half_panel_rows):
 * widening each W vector per pair of x rows, as above, costs more than the
 * FMAs it feeds (the encoder ran 2.4x slower in bf16 than in f32 on AVX2),
 * so a block's 4 rows are widened once per HALF_KC columns into an f32 panel
 * that every x row then reads from L1. Each row's accumulators live in
 * acc[] between panels and see the same FMAs in the same order as in
 * lin_bf16_avx2/lin_f16_avx2, so the results are the same bits. */
#define HALF_KC 512
TGT_AVX2 static void lin_half_panel_avx2(int is_bf16, const float *x, int M, int K, const uint16_t *W, int ldy,
                                         const float *b, float *y, int flags, int n0, int n1) {
    const int Kv = K & ~7;
    float wf[4][HALF_KC] __attribute__((aligned(32)));
    __m256 acc[MCHUNK][4];
    for (int n = n0; n < n1; n += 4) {
        int nw = n1 - n < 4 ? n1 - n : 4;
        const uint16_t *w[4];
        for (int i = 0; i < 4; i++) w[i] = W + (size_t)(n + (i < nw ? i : nw - 1)) * K;
        for (int mb = 0; mb < M; mb += MCHUNK) {
            int me = mb + MCHUNK < M ? mb + MCHUNK : M;
            for (int m = 0; m < me - mb; m++)
                for (int i = 0; i < 4; i++) acc[m][i] = _mm256_setzero_ps();
            for (int k0 = 0; k0 < Kv; k0 += HALF_KC) {
                int kl = Kv - k0 < HALF_KC ? Kv - k0 : HALF_KC;
                for (int i = 0; i < 4; i++) {
                    const uint16_t *src = w[i] + k0;
                    if (is_bf16)
                        for (int k = 0; k < kl; k += 8) {
                            if ((k & 31) == 0) _mm_prefetch((const char *)(src + k) + PF_AHEAD, _MM_HINT_T0);
                            _mm256_store_ps(wf[i] + k, ld_bf16(src + k));
                        }
                    else
                        for (int k = 0; k < kl; k += 8) {
                            if ((k & 31) == 0) _mm_prefetch((const char *)(src + k) + PF_AHEAD, _MM_HINT_T0);
                            _mm256_store_ps(wf[i] + k, ld_f16(src + k));
                        }
                }
                int m = mb;
                for (; m + 2 <= me; m += 2) {
                    const float *x0 = x + (size_t)m * K + k0, *x1 = x0 + K;
                    __m256 *p = acc[m - mb], *q = acc[m - mb + 1];
                    __m256 a0 = p[0], a1 = p[1], a2 = p[2], a3 = p[3], c0 = q[0], c1 = q[1], c2 = q[2], c3 = q[3];
                    for (int k = 0; k < kl; k += 8) {
                        __m256 v0 = _mm256_loadu_ps(x0 + k), v1 = _mm256_loadu_ps(x1 + k), t;
                        t = _mm256_load_ps(wf[0] + k), a0 = _mm256_fmadd_ps(t, v0, a0), c0 = _mm256_fmadd_ps(t, v1, c0);
                        t = _mm256_load_ps(wf[1] + k), a1 = _mm256_fmadd_ps(t, v0, a1), c1 = _mm256_fmadd_ps(t, v1, c1);
                        t = _mm256_load_ps(wf[2] + k), a2 = _mm256_fmadd_ps(t, v0, a2), c2 = _mm256_fmadd_ps(t, v1, c2);
                        t = _mm256_load_ps(wf[3] + k), a3 = _mm256_fmadd_ps(t, v0, a3), c3 = _mm256_fmadd_ps(t, v1, c3);
                    }
                    p[0] = a0, p[1] = a1, p[2] = a2, p[3] = a3, q[0] = c0, q[1] = c1, q[2] = c2, q[3] = c3;
                }
                for (; m < me; m++) {
                    const float *x0 = x + (size_t)m * K + k0;
                    __m256 *p = acc[m - mb];
                    __m256 a0 = p[0], a1 = p[1], a2 = p[2], a3 = p[3];
                    for (int k = 0; k < kl; k += 8) {
                        __m256 v0 = _mm256_loadu_ps(x0 + k);
                        a0 = _mm256_fmadd_ps(_mm256_load_ps(wf[0] + k), v0, a0);
                        a1 = _mm256_fmadd_ps(_mm256_load_ps(wf[1] + k), v0, a1);
                        a2 = _mm256_fmadd_ps(_mm256_load_ps(wf[2] + k), v0, a2);
                        a3 = _mm256_fmadd_ps(_mm256_load_ps(wf[3] + k), v0, a3);
                    }
                    p[0] = a0, p[1] = a1, p[2] = a2, p[3] = a3;
                }
            }
            for (int m = mb; m < me; m++) {
                const float *x0 = x + (size_t)m * K;
                float r[4];
                for (int i = 0; i < 4; i++) r[i] = hsum256(acc[m - mb][i]);
                for (int k = Kv; k < K; k++)
                    for (int i = 0; i < 4; i++) r[i] += (is_bf16 ? bf16_f32(w[i][k]) : f16_f32(w[i][k])) * x0[k];
                float *y0 = y + (size_t)m * ldy;
                for (int i = 0; i < nw; i++) y0[n + i] = finish(r[i], b, n + i, y0[n + i], flags);
            }
        }
    }
}

TGT_AVX2 static inline int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* |w| * (x * sign w): maddubs's unsigned x signed pairs never saturate
 * (|w| <= 128, |x| <= 127: 2 * 128 * 127 < 32767); madd with ones widens. */
TGT_AVX2 static inline __m256i dot32_i8(__m256i acc, __m256i w, __m256i x, __m256i ones) {
    __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
}

TGT_AVX2 static void lin_i8_avx2(const int8_t *xq, const float *xs, int M, int K, const int8_t *W, const float *ws,
                                 int il, int ldy, const float *b, float *y, int flags, int n0, int n1) {
    const int Kv = K & ~31;
    const __m256i ones = _mm256_set1_epi16(1);
    for (int n = n0; n < n1; n += 4) {
        int nw = n1 - n < 4 ? n1 - n : 4;
        const int ilv = n < il;
        const int8_t *w[4];
        for (int i = 0; i < 4; i++) w[i] = i8_row(W, K, il, n + (i < nw ? i : nw - 1));
        int m = 0;
        for (; m + 2 <= M; m += 2) { /* 2 x rows share each loaded W vector and its |w| */
            const int8_t *q0 = xq + (size_t)m * K, *q1 = q0 + K;
            /* 8 named accumulators (registers: see MCHUNK) */
            __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
            for (int k = 0; k < Kv; k += 32) {
                PF_LINES(w[0], (size_t)k * 4, 2); /* 4 rows x 32 bytes */
                __m256i v0 = _mm256_loadu_si256((const __m256i *)(q0 + k));
                __m256i v1 = _mm256_loadu_si256((const __m256i *)(q1 + k));
#define I8_2ROWS(i)                                                                                        \
    do {                                                                                                   \
        __m256i wv = _mm256_loadu_si256((const __m256i *)(w[i] + I8_KP(k, ilv))), aw = _mm256_sign_epi8(wv, wv); \
        a##i = _mm256_add_epi32(a##i, _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(v0, wv)), ones)); \
        c##i = _mm256_add_epi32(c##i, _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(v1, wv)), ones)); \
    } while (0)
                I8_2ROWS(0);
                I8_2ROWS(1);
                I8_2ROWS(2);
                I8_2ROWS(3);
#undef I8_2ROWS
            }
            __m256i a[4] = {a0, a1, a2, a3}, c[4] = {c0, c1, c2, c3};
            int32_t r0[4], r1[4];
            for (int i = 0; i < 4; i++) r0[i] = hsum_i32(a[i]), r1[i] = hsum_i32(c[i]);
            for (int k = Kv; k < K; k++)
                for (int i = 0; i < 4; i++) {
                    r0[i] += (int32_t)w[i][I8_KP(k, ilv)] * q0[k];
                    r1[i] += (int32_t)w[i][I8_KP(k, ilv)] * q1[k];
                }
            float *y0 = y + (size_t)m * ldy, *y1 = y0 + ldy;
            for (int i = 0; i < nw; i++) {
                y0[n + i] = finish((float)r0[i] * (xs[m] * ws[n + i]), b, n + i, y0[n + i], flags);
                y1[n + i] = finish((float)r1[i] * (xs[m + 1] * ws[n + i]), b, n + i, y1[n + i], flags);
            }
        }
        /* One row of x streams W at one core's pace. Rows of 4 KB and more
         * (fc2's 4096 columns) stream faster on the hardware prefetcher
         * alone: two cores at once on the 2-core dev VM (bench_i8_kernel's
         * loop, 3 rounds) 15.1 GB/s each against 12.8 with the software
         * prefetch, while rows of 1 KB need it (6-8 GB/s without). */
        const int pf = K < 4096;
        for (; m < M; m++) {
            const int8_t *q = xq + (size_t)m * K;
            __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
            for (int k = 0; k < Kv; k += 32) {
                if (pf) PF_LINES(w[0], (size_t)k * 4, 2); /* 4 rows x 32 bytes */
                __m256i v = _mm256_loadu_si256((const __m256i *)(q + k));
                const int kp = I8_KP(k, ilv);
                a0 = dot32_i8(a0, _mm256_loadu_si256((const __m256i *)(w[0] + kp)), v, ones);
                a1 = dot32_i8(a1, _mm256_loadu_si256((const __m256i *)(w[1] + kp)), v, ones);
                a2 = dot32_i8(a2, _mm256_loadu_si256((const __m256i *)(w[2] + kp)), v, ones);
                a3 = dot32_i8(a3, _mm256_loadu_si256((const __m256i *)(w[3] + kp)), v, ones);
            }
            int32_t r[4] = {hsum_i32(a0), hsum_i32(a1), hsum_i32(a2), hsum_i32(a3)};
            for (int k = Kv; k < K; k++)
                for (int i = 0; i < 4; i++) r[i] += (int32_t)w[i][I8_KP(k, ilv)] * q[k];
            float *yr = y + (size_t)m * ldy;
            for (int i = 0; i < nw; i++)
                yr[n + i] = finish((float)r[i] * (xs[m] * ws[n + i]), b, n + i, yr[n + i], flags);
        }
    }
}

/* 3 or 4 rows of x (beam search's steps): each pair of W rows is read once,
 * against every row of x in one pass over k. lin_i8_avx2's pair loop reads
 * a 4-row block of W from memory in its first pass over x and from L1 in
 * its second, so for half the time no weight bytes were on their way: at 4
 * rows one core streamed 7.5 GB/s of weights where one row streams 12.6
 * (bench_i8_kernel, the 16-core host, AVX2). Integer sums are exact, so the
 * results are the same bits as every other level's. A third row repeats
 * the second (its sums are not stored). */
TGT_AVX2 static void lin_i8_avx2_rows4(const int8_t *xq, const float *xs, int M, int K, const int8_t *W,
                                       const float *ws, int il, int ldy, const float *b, float *y, int flags, int n0,
                                       int n1) {
    const int Kv = K & ~31;
    const __m256i ones = _mm256_set1_epi16(1);
    const int8_t *q0 = xq, *q1 = xq + K, *q2 = xq + 2 * (size_t)K, *q3 = M > 3 ? xq + 3 * (size_t)K : q2;
    for (int n = n0; n < n1; n += 2) {
        const int nw = n1 - n < 2 ? 1 : 2;
        const int ilv = n < il;
        const int8_t *w0 = i8_row(W, K, il, n), *w1 = i8_row(W, K, il, n + nw - 1);
        /* a: W row n against x rows 0-3, c: W row n + 1 (named: see MCHUNK) */
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
        for (int k = 0; k < Kv; k += 32) {
            /* 2 rows x 32 bytes, 8 KB ahead: PF_AHEAD alone is half a pair
             * of fc2's 4096-byte rows, and the stream then ran at 29-33
             * GMAC/s against 41-43 (bench_i8_kernel, 16-core host, 4 rows) */
            /* interleaved: a group's first pair fetches the whole group's
             * stream ahead (4 lines of 256-byte pieces: 2 a step), so that
             * its second pair finds its lines in cache */
            if (!ilv) PF_LINES(w0, 4096 + (size_t)k * 2, 1);
            else if (!(n & 3)) PF_LINES(w0, 4096 + (size_t)k * 4, 2);
            const __m256i wa = _mm256_loadu_si256((const __m256i *)(w0 + I8_KP(k, ilv)));
            const __m256i wb = _mm256_loadu_si256((const __m256i *)(w1 + I8_KP(k, ilv)));
            const __m256i aa = _mm256_sign_epi8(wa, wa), ab = _mm256_sign_epi8(wb, wb);
#define I8_XROW(i, q)                                                                                            \
    do {                                                                                                         \
        __m256i v = _mm256_loadu_si256((const __m256i *)((q) + k));                                              \
        a##i = _mm256_add_epi32(a##i, _mm256_madd_epi16(_mm256_maddubs_epi16(aa, _mm256_sign_epi8(v, wa)), ones)); \
        c##i = _mm256_add_epi32(c##i, _mm256_madd_epi16(_mm256_maddubs_epi16(ab, _mm256_sign_epi8(v, wb)), ones)); \
    } while (0)
            I8_XROW(0, q0);
            I8_XROW(1, q1);
            I8_XROW(2, q2);
            I8_XROW(3, q3);
#undef I8_XROW
        }
        const __m256i av[4] = {a0, a1, a2, a3}, cv[4] = {c0, c1, c2, c3};
        const int8_t *q[4] = {q0, q1, q2, q3};
        for (int m = 0; m < M; m++) {
            int32_t r0 = hsum_i32(av[m]), r1 = hsum_i32(cv[m]);
            for (int k = Kv; k < K; k++) {
                r0 += (int32_t)w0[I8_KP(k, ilv)] * q[m][k];
                r1 += (int32_t)w1[I8_KP(k, ilv)] * q[m][k];
            }
            float *ym = y + (size_t)m * ldy;
            ym[n] = finish((float)r0 * (xs[m] * ws[n]), b, n, ym[n], flags);
            if (nw > 1) ym[n + 1] = finish((float)r1 * (xs[m] * ws[n + 1]), b, n + 1, ym[n + 1], flags);
        }
    }
}

/* ---------------- AVX-512 VNNI (int8) ----------------
 * vpdpbusd multiplies unsigned by signed bytes and adds groups of 4 into
 * int32 lanes: 64 multiply-adds per instruction, against AVX2's 32 in four
 * (sign, sign, maddubs, madd + add). The weights become the unsigned side
 * as w + 128 (one xor with 0x80 per loaded vector, shared by every x row);
 * sum_k (w_k + 128) x_k = sum_k w_k x_k + 128 sum_k x_k, so each x row's
 * sum, taken once per call, is subtracted. No product or 4-sum can saturate
 * (255 * 127 * 4 < 2^31) and every sum is exact, so the results are the
 * same bits as the other levels'. 4 W rows x 4 x rows = 16 accumulators. */
TGT_VNNI static inline int32_t vnni_row_sum(const int8_t *q, int Kv) {
    const __m512i ones = _mm512_set1_epi8(1);
    __m512i s = _mm512_setzero_si512();
    for (int k = 0; k < Kv; k += 64) s = _mm512_dpbusd_epi32(s, ones, _mm512_loadu_si512((const void *)(q + k)));
    return _mm512_reduce_add_epi32(s);
}

/* The sums of 4 accumulators' lanes, in one pass (~9 instructions, where 4
 * separate reductions take ~36: per 4 x 4 block at K = 1024 that was a
 * third as many instructions as its 256 vpdpbusd). Integer sums: exact in
 * any order. */
TGT_VNNI static inline void vnni_hsum4(__m512i a0, __m512i a1, __m512i a2, __m512i a3, int32_t out[4]) {
    __m512i s01 = _mm512_add_epi32(_mm512_unpacklo_epi32(a0, a1), _mm512_unpackhi_epi32(a0, a1));
    __m512i s23 = _mm512_add_epi32(_mm512_unpacklo_epi32(a2, a3), _mm512_unpackhi_epi32(a2, a3));
    __m512i s = _mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23), _mm512_unpackhi_epi64(s01, s23));
    __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
    __m128i q = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    _mm_storeu_si128((__m128i *)out, q); /* a0, a1, a2, a3 */
}

/* finish() for 4 outputs n..n+3 of one x row at once: the same operations
 * in the same order as the scalar finish (r * (xs * ws), + b or + 0.0f,
 * max with +0 for ReLU (maxps returns +0 for NaN and for -0, as the scalar
 * compare does), old + v), so the bits do not change. SSE2 only (the x86-64
 * baseline), so the AVX-VNNI kernel inlines it too. The scalar epilogue
 * (16 conversions, multiplies and branches per 4 x 4 block) cost a third of
 * the block's time at 20 rows of x. */
static inline void vnni_finish4(__m128i r, float xsm, const float *ws4, const float *b4, float *y4, int flags) {
    __m128 v = _mm_mul_ps(_mm_cvtepi32_ps(r), _mm_mul_ps(_mm_set1_ps(xsm), _mm_loadu_ps(ws4)));
    v = _mm_add_ps(v, b4 ? _mm_loadu_ps(b4) : _mm_setzero_ps());
    if (flags & MT_LIN_RELU) v = _mm_max_ps(v, _mm_setzero_ps());
    if (flags & MT_LIN_ACCUM) v = _mm_add_ps(_mm_loadu_ps(y4), v);
    _mm_storeu_ps(y4, v);
}

/* vnni_hsum4 without the store: the 4 sums as a vector. */
TGT_VNNI static inline __m128i vnni_hsum4v(__m512i a0, __m512i a1, __m512i a2, __m512i a3) {
    __m512i s01 = _mm512_add_epi32(_mm512_unpacklo_epi32(a0, a1), _mm512_unpackhi_epi32(a0, a1));
    __m512i s23 = _mm512_add_epi32(_mm512_unpacklo_epi32(a2, a3), _mm512_unpackhi_epi32(a2, a3));
    __m512i s = _mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23), _mm512_unpackhi_epi64(s01, s23));
    __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/* The 4 x 4 block's multiply-adds over [0, Kv): 4 W rows (ks 4: one
 * interleaved group, ks 1: row-major rows) by 4 x rows from q (K apart),
 * the 16 sums out in acc. Its own function, never inlined: inside
 * lin_i8_vnni GCC 12 kept 2 of the 16 accumulators on the stack and copied
 * the others register to register on every step (16 moves and 2 spills per
 * 16 vpdpbusd), and the 20-row product ran at ~250 GMAC/s on cached weights
 * where this loop alone runs at ~340 on a Zen 5 core. The call and the 16
 * stores cost ~1% of a block at K = 1024. */
TGT_VNNI __attribute__((noinline)) static void vnni_block44(const int8_t *w0p, const int8_t *w1p, const int8_t *w2p,
                                                            const int8_t *w3p, size_t ks, const int8_t *q, int K,
                                                            int Kv, __m512i acc[16]) {
    const __m512i flip = _mm512_set1_epi8((char)0x80), z = _mm512_setzero_si512();
    __m512i a00 = z, a01 = z, a02 = z, a03 = z, a10 = z, a11 = z, a12 = z, a13 = z;
    __m512i a20 = z, a21 = z, a22 = z, a23 = z, a30 = z, a31 = z, a32 = z, a33 = z;
    const int8_t *q1 = q + K, *q2 = q1 + K, *q3 = q2 + K;
    for (int k = 0; k < Kv; k += 64) {
        PF_LINES(w0p, (size_t)k * 4, 4); /* 4 rows x 64 bytes (interleaved: the next 256) */
        const size_t kp = (size_t)k * ks;
        const __m512i w0 = _mm512_xor_si512(_mm512_loadu_si512((const void *)(w0p + kp)), flip);
        const __m512i w1 = _mm512_xor_si512(_mm512_loadu_si512((const void *)(w1p + kp)), flip);
        const __m512i w2 = _mm512_xor_si512(_mm512_loadu_si512((const void *)(w2p + kp)), flip);
        const __m512i w3 = _mm512_xor_si512(_mm512_loadu_si512((const void *)(w3p + kp)), flip);
        __m512i v = _mm512_loadu_si512((const void *)(q + k));
        a00 = _mm512_dpbusd_epi32(a00, w0, v), a01 = _mm512_dpbusd_epi32(a01, w1, v);
        a02 = _mm512_dpbusd_epi32(a02, w2, v), a03 = _mm512_dpbusd_epi32(a03, w3, v);
        v = _mm512_loadu_si512((const void *)(q1 + k));
        a10 = _mm512_dpbusd_epi32(a10, w0, v), a11 = _mm512_dpbusd_epi32(a11, w1, v);
        a12 = _mm512_dpbusd_epi32(a12, w2, v), a13 = _mm512_dpbusd_epi32(a13, w3, v);
        v = _mm512_loadu_si512((const void *)(q2 + k));
        a20 = _mm512_dpbusd_epi32(a20, w0, v), a21 = _mm512_dpbusd_epi32(a21, w1, v);
        a22 = _mm512_dpbusd_epi32(a22, w2, v), a23 = _mm512_dpbusd_epi32(a23, w3, v);
        v = _mm512_loadu_si512((const void *)(q3 + k));
        a30 = _mm512_dpbusd_epi32(a30, w0, v), a31 = _mm512_dpbusd_epi32(a31, w1, v);
        a32 = _mm512_dpbusd_epi32(a32, w2, v), a33 = _mm512_dpbusd_epi32(a33, w3, v);
    }
    acc[0] = a00, acc[1] = a01, acc[2] = a02, acc[3] = a03, acc[4] = a10, acc[5] = a11, acc[6] = a12, acc[7] = a13;
    acc[8] = a20, acc[9] = a21, acc[10] = a22, acc[11] = a23, acc[12] = a30, acc[13] = a31, acc[14] = a32;
    acc[15] = a33;
}

/* One x row by 4 W rows over [0, Kv) (the batch-1 decode step: the
 * weight stream). Not inlined, like vnni_block44: inside lin_i8_vnni GCC
 * copied the 4 accumulators out and back on every step. Interleaved
 * groups are one sequential stream the hardware prefetcher follows;
 * row-major rows are 4 streams, which get software prefetches. */
TGT_VNNI __attribute__((noinline)) static void vnni_block41(const int8_t *w0p, const int8_t *w1p, const int8_t *w2p,
                                                            const int8_t *w3p, int ilv, const int8_t *q, int Kv,
                                                            __m512i acc[4]) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const size_t ks = ilv ? 4 : 1;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (int k = 0; k < Kv; k += 64) {
        if (!ilv) PF_LINES(w0p, (size_t)k * 4, 4);
        const size_t kp = (size_t)k * ks;
        const __m512i v = _mm512_loadu_si512((const void *)(q + k));
        a0 = _mm512_dpbusd_epi32(a0, _mm512_xor_si512(_mm512_loadu_si512((const void *)(w0p + kp)), flip), v);
        a1 = _mm512_dpbusd_epi32(a1, _mm512_xor_si512(_mm512_loadu_si512((const void *)(w1p + kp)), flip), v);
        a2 = _mm512_dpbusd_epi32(a2, _mm512_xor_si512(_mm512_loadu_si512((const void *)(w2p + kp)), flip), v);
        a3 = _mm512_dpbusd_epi32(a3, _mm512_xor_si512(_mm512_loadu_si512((const void *)(w3p + kp)), flip), v);
    }
    acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
}

TGT_VNNI static void lin_i8_vnni(const int8_t *xq, const float *xs, int M, int K, const int8_t *W, const float *ws,
                                 int il, int ldy, const float *b, float *y, int flags, int n0, int n1) {
    const int Kv = K & ~63;
    int32_t corr[MCHUNK]; /* 128 * sum of each x row over [0, Kv) */
    for (int mb = 0; mb < M; mb += MCHUNK) {
        const int me = mb + MCHUNK < M ? mb + MCHUNK : M;
        for (int m = mb; m < me; m++) corr[m - mb] = 128 * vnni_row_sum(xq + (size_t)m * K, Kv);
        for (int n = n0; n < n1; n += 4) {
            int nw = n1 - n < 4 ? n1 - n : 4;
            /* interleaved: the group's 4 rows are one sequential stream of 256
             * bytes per step (ks 4), which the hardware prefetcher follows on
             * its own; row-major: 4 streams 1 row apart, which it does not */
            const int ilv = n < il, ks = ilv ? 4 : 1;
            const int8_t *w[4];
            for (int i = 0; i < 4; i++) w[i] = i8_row(W, K, il, n + (i < nw ? i : nw - 1));
            int m = mb;
            for (; m + 4 <= me; m += 4) { /* 4 x rows share each loaded W vector (the encoder, beams) */
                const int8_t *q = xq + (size_t)m * K;
                __m512i acc[16];
                vnni_block44(w[0], w[1], w[2], w[3], ks, q, K, Kv, acc);
                const __m512i a00 = acc[0], a01 = acc[1], a02 = acc[2], a03 = acc[3];
                const __m512i a10 = acc[4], a11 = acc[5], a12 = acc[6], a13 = acc[7];
                const __m512i a20 = acc[8], a21 = acc[9], a22 = acc[10], a23 = acc[11];
                const __m512i a30 = acc[12], a31 = acc[13], a32 = acc[14], a33 = acc[15];
                if (Kv == K && nw == 4) { /* whole blocks (every Linear of NLLB): the vector epilogue */
                    const float *bn = b ? b + n : NULL;
                    float *y0 = y + (size_t)m * ldy + n;
                    vnni_finish4(_mm_sub_epi32(vnni_hsum4v(a00, a01, a02, a03), _mm_set1_epi32(corr[m - mb])),
                                 xs[m], ws + n, bn, y0, flags);
                    vnni_finish4(_mm_sub_epi32(vnni_hsum4v(a10, a11, a12, a13), _mm_set1_epi32(corr[m + 1 - mb])),
                                 xs[m + 1], ws + n, bn, y0 + ldy, flags);
                    vnni_finish4(_mm_sub_epi32(vnni_hsum4v(a20, a21, a22, a23), _mm_set1_epi32(corr[m + 2 - mb])),
                                 xs[m + 2], ws + n, bn, y0 + 2 * (size_t)ldy, flags);
                    vnni_finish4(_mm_sub_epi32(vnni_hsum4v(a30, a31, a32, a33), _mm_set1_epi32(corr[m + 3 - mb])),
                                 xs[m + 3], ws + n, bn, y0 + 3 * (size_t)ldy, flags);
                    continue;
                }
                int32_t rs[4][4];
                vnni_hsum4(a00, a01, a02, a03, rs[0]);
                vnni_hsum4(a10, a11, a12, a13, rs[1]);
                vnni_hsum4(a20, a21, a22, a23, rs[2]);
                vnni_hsum4(a30, a31, a32, a33, rs[3]);
                for (int j = 0; j < 4; j++) {
                    const int8_t *qj = q + (size_t)j * K;
                    int32_t *r = rs[j];
                    for (int i = 0; i < 4; i++) r[i] -= corr[m + j - mb];
                    for (int k = Kv; k < K; k++) /* row-major only: interleaved rows have K % 64 == 0 */
                        for (int i = 0; i < 4; i++) r[i] += (int32_t)w[i][k] * qj[k];
                    float *yr = y + (size_t)(m + j) * ldy;
                    for (int i = 0; i < nw; i++)
                        yr[n + i] = finish((float)r[i] * (xs[m + j] * ws[n + i]), b, n + i, yr[n + i], flags);
                }
            }
            for (; m < me; m++) { /* one x row x 4 W rows (batch-1 decode) */
                const int8_t *q = xq + (size_t)m * K;
                __m512i acc[4];
                vnni_block41(w[0], w[1], w[2], w[3], ilv, q, Kv, acc);
                const __m512i a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
                if (Kv == K && nw == 4) {
                    vnni_finish4(_mm_sub_epi32(vnni_hsum4v(a0, a1, a2, a3), _mm_set1_epi32(corr[m - mb])), xs[m],
                                 ws + n, b ? b + n : NULL, y + (size_t)m * ldy + n, flags);
                    continue;
                }
                int32_t r[4];
                vnni_hsum4(a0, a1, a2, a3, r);
                for (int i = 0; i < 4; i++) r[i] -= corr[m - mb];
                for (int k = Kv; k < K; k++)
                    for (int i = 0; i < 4; i++) r[i] += (int32_t)w[i][k] * q[k];
                float *yr = y + (size_t)m * ldy;
                for (int i = 0; i < nw; i++)
                    yr[n + i] = finish((float)r[i] * (xs[m] * ws[n + i]), b, n + i, yr[n + i], flags);
            }
        }
    }
}

/* ---------------- AVX-VNNI (int8, 256-bit) ----------------
 * The VNNI kernel above at half its width, for CPUs with the VEX-encoded
 * vpdpbusd and no AVX-512 (Intel client CPUs since Alder Lake): the same
 * unsigned-weights trick and correction, 4 W rows x 4 x rows in 16
 * accumulators, then vnni_finish4. Exact integer sums: the same bits. */
TGT_AVXVNNI static inline int32_t avxvnni_row_sum(const int8_t *q, int Kv) {
    const __m256i ones = _mm256_set1_epi8(1);
    __m256i s = _mm256_setzero_si256();
    for (int k = 0; k < Kv; k += 32) s = _mm256_dpbusd_avx_epi32(s, ones, _mm256_loadu_si256((const __m256i *)(q + k)));
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    return _mm_cvtsi128_si32(_mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1)));
}

/* The lane sums of 4 accumulators: [sum a0, sum a1, sum a2, sum a3]. */
TGT_AVXVNNI static inline __m128i avxvnni_hsum4(__m256i a0, __m256i a1, __m256i a2, __m256i a3) {
    __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1)); /* the two halves */
}

/* One x row's 4 sums (correction subtracted) into y: the vector epilogue
 * for whole blocks, else the K tail and finish() one by one. */
TGT_AVXVNNI static inline void avxvnni_out4(__m128i r, const int8_t *const w[4], const int8_t *q, int Kv, int K, int nw,
                                            float xsm, const float *ws, const float *b, float *yr, int n, int flags) {
    if (Kv == K && nw == 4) {
        vnni_finish4(r, xsm, ws + n, b ? b + n : NULL, yr + n, flags);
        return;
    }
    int32_t rr[4];
    _mm_storeu_si128((__m128i *)rr, r);
    for (int k = Kv; k < K; k++)
        for (int i = 0; i < 4; i++) rr[i] += (int32_t)w[i][k] * q[k];
    for (int i = 0; i < nw; i++) yr[n + i] = finish((float)rr[i] * (xsm * ws[n + i]), b, n + i, yr[n + i], flags);
}

#define AVXVNNI_LD(p) _mm256_loadu_si256((const __m256i *)(p))
#define AVXVNNI_DP(a, w, v) a = _mm256_dpbusd_avx_epi32(a, w, v)
/* The multi-row block: 4 W rows by 2 x rows (q, q + K), 8 sums out in acc.
 * 2 x rows, not 4 as at AVX-512: without AVX-512 there are 16 vector
 * registers, and 16 accumulators + 4 W vectors + x + the flip constant
 * spilled on every step (the 20-row product ran at ~112 GMAC/s on one Zen
 * 5 core, the 1-row loop's rate). Its own function, not inlined, for the
 * register allocation's sake (see vnni_block44). */
TGT_AVXVNNI __attribute__((noinline)) static void avxvnni_block42(const int8_t *w0p, const int8_t *w1p,
                                                                  const int8_t *w2p, const int8_t *w3p, int ilv,
                                                                  const int8_t *q, int K, int Kv, __m256i acc[8]) {
    const __m256i flip = _mm256_set1_epi8((char)0x80), z = _mm256_setzero_si256();
    __m256i a00 = z, a01 = z, a02 = z, a03 = z, a10 = z, a11 = z, a12 = z, a13 = z;
    const int8_t *q1 = q + K;
    for (int k = 0; k < Kv; k += 32) {
        PF_LINES(w0p, (size_t)k * 4, 2); /* 4 rows x 32 bytes (interleaved: the next 128) */
        const int kp = I8_KP(k, ilv);
        const __m256i w0 = _mm256_xor_si256(AVXVNNI_LD(w0p + kp), flip);
        const __m256i w1 = _mm256_xor_si256(AVXVNNI_LD(w1p + kp), flip);
        const __m256i w2 = _mm256_xor_si256(AVXVNNI_LD(w2p + kp), flip);
        const __m256i w3 = _mm256_xor_si256(AVXVNNI_LD(w3p + kp), flip);
        __m256i v = AVXVNNI_LD(q + k);
        AVXVNNI_DP(a00, w0, v), AVXVNNI_DP(a01, w1, v), AVXVNNI_DP(a02, w2, v), AVXVNNI_DP(a03, w3, v);
        v = AVXVNNI_LD(q1 + k);
        AVXVNNI_DP(a10, w0, v), AVXVNNI_DP(a11, w1, v), AVXVNNI_DP(a12, w2, v), AVXVNNI_DP(a13, w3, v);
    }
    acc[0] = a00, acc[1] = a01, acc[2] = a02, acc[3] = a03, acc[4] = a10, acc[5] = a11, acc[6] = a12, acc[7] = a13;
}

TGT_AVXVNNI static void lin_i8_avxvnni(const int8_t *xq, const float *xs, int M, int K, const int8_t *W,
                                       const float *ws, int il, int ldy, const float *b, float *y, int flags, int n0,
                                       int n1) {
    const int Kv = K & ~31;
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    int32_t corr[MCHUNK]; /* 128 * sum of each x row over [0, Kv) */
    for (int mb = 0; mb < M; mb += MCHUNK) {
        const int me = mb + MCHUNK < M ? mb + MCHUNK : M;
        for (int m = mb; m < me; m++) corr[m - mb] = 128 * avxvnni_row_sum(xq + (size_t)m * K, Kv);
        for (int n = n0; n < n1; n += 4) {
            int nw = n1 - n < 4 ? n1 - n : 4;
            const int ilv = n < il;
            const int8_t *w[4];
            for (int i = 0; i < 4; i++) w[i] = i8_row(W, K, il, n + (i < nw ? i : nw - 1));
            int m = mb;
            for (; m + 2 <= me; m += 2) { /* 2 x rows share each loaded W vector (the encoder, beams) */
                const int8_t *q = xq + (size_t)m * K, *q1 = q + K;
                __m256i acc[8];
                avxvnni_block42(w[0], w[1], w[2], w[3], ilv, q, K, Kv, acc);
                float *y0 = y + (size_t)m * ldy;
                avxvnni_out4(_mm_sub_epi32(avxvnni_hsum4(acc[0], acc[1], acc[2], acc[3]), _mm_set1_epi32(corr[m - mb])),
                             w, q, Kv, K, nw, xs[m], ws, b, y0, n, flags);
                avxvnni_out4(_mm_sub_epi32(avxvnni_hsum4(acc[4], acc[5], acc[6], acc[7]),
                                           _mm_set1_epi32(corr[m + 1 - mb])),
                             w, q1, Kv, K, nw, xs[m + 1], ws, b, y0 + ldy, n, flags);
            }
            for (; m < me; m++) { /* one x row x 4 W rows (batch-1 decode) */
                const int8_t *q = xq + (size_t)m * K;
                __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
                for (int k = 0; k < Kv; k += 32) {
                    if (!ilv) PF_LINES(w[0], (size_t)k * 4, 2);
                    const int kp = I8_KP(k, ilv);
                    __m256i v = AVXVNNI_LD(q + k);
                    AVXVNNI_DP(a0, _mm256_xor_si256(AVXVNNI_LD(w[0] + kp), flip), v);
                    AVXVNNI_DP(a1, _mm256_xor_si256(AVXVNNI_LD(w[1] + kp), flip), v);
                    AVXVNNI_DP(a2, _mm256_xor_si256(AVXVNNI_LD(w[2] + kp), flip), v);
                    AVXVNNI_DP(a3, _mm256_xor_si256(AVXVNNI_LD(w[3] + kp), flip), v);
                }
                avxvnni_out4(_mm_sub_epi32(avxvnni_hsum4(a0, a1, a2, a3), _mm_set1_epi32(corr[m - mb])), w, q, Kv, K,
                             nw, xs[m], ws, b, y + (size_t)m * ldy, n, flags);
            }
        }
    }
}
#undef AVXVNNI_LD
#undef AVXVNNI_DP
#endif /* MT_X86 */

#ifdef MT_NEON
static inline float32x4_t ld_bf16_neon(const uint16_t *p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
static inline float32x4_t ld_f16_neon(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

#define LIN_HALF_NEON(NAME, LD, CV) \
    static void NAME(const float *x, int M, int K, const uint16_t *W, int il, int ldy, const float *b, float *y, \
                     int flags, int n0, int n1) { \
        const int Kv = K & ~3; \
        for (int n = n0; n < n1; n += 4) { \
            int nw = n1 - n < 4 ? n1 - n : 4; \
            const int ilv = n < il; \
            const uint16_t *w[4]; \
            for (int i = 0; i < 4; i++) w[i] = h_row(W, K, il, n + (i < nw ? i : nw - 1)); \
            for (int m = 0; m < M; m++) { \
                const float *x0 = x + (size_t)m * K; \
                float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0; \
                for (int k = 0; k < Kv; k += 4) { \
                    float32x4_t v0 = vld1q_f32(x0 + k); \
                    a0 = vfmaq_f32(a0, LD(w[0] + H_KP(k, ilv)), v0); \
                    a1 = vfmaq_f32(a1, LD(w[1] + H_KP(k, ilv)), v0); \
                    a2 = vfmaq_f32(a2, LD(w[2] + H_KP(k, ilv)), v0); \
                    a3 = vfmaq_f32(a3, LD(w[3] + H_KP(k, ilv)), v0); \
                } \
                float r[4] = {vaddvq_f32(a0), vaddvq_f32(a1), vaddvq_f32(a2), vaddvq_f32(a3)}; \
                for (int k = Kv; k < K; k++) \
                    for (int i = 0; i < 4; i++) r[i] += CV(w[i][H_KP(k, ilv)]) * x0[k]; \
                float *y0 = y + (size_t)m * ldy; \
                for (int i = 0; i < nw; i++) y0[n + i] = finish(r[i], b, n + i, y0[n + i], flags); \
            } \
        } \
    }
LIN_HALF_NEON(lin_bf16_neon, ld_bf16_neon, bf16_f32)
LIN_HALF_NEON(lin_f16_neon, ld_f16_neon, f16_f32)

/* int8 x int8 -> int32: sdot where the CPU has it, else widening multiplies
 * (vmull_s8) with pairwise accumulation; both exact, so both equal the
 * scalar kernel. */
TGT_DOT static void lin_i8_dot(const int8_t *xq, const float *xs, int M, int K, const int8_t *W, const float *ws, int il,
                               int ldy, const float *b, float *y, int flags, int n0, int n1) {
    const int Kv = K & ~15;
    for (int n = n0; n < n1; n += 4) {
        int nw = n1 - n < 4 ? n1 - n : 4;
        const int ilv = n < il;
        const int8_t *w[4];
        for (int i = 0; i < 4; i++) w[i] = i8_row(W, K, il, n + (i < nw ? i : nw - 1));
        for (int m = 0; m < M; m++) {
            const int8_t *q = xq + (size_t)m * K;
            int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
            for (int k = 0; k < Kv; k += 16) {
                const int kp = I8_KP(k, ilv);
                int8x16_t v = vld1q_s8(q + k);
                a0 = vdotq_s32(a0, vld1q_s8(w[0] + kp), v);
                a1 = vdotq_s32(a1, vld1q_s8(w[1] + kp), v);
                a2 = vdotq_s32(a2, vld1q_s8(w[2] + kp), v);
                a3 = vdotq_s32(a3, vld1q_s8(w[3] + kp), v);
            }
            int32_t r[4] = {vaddvq_s32(a0), vaddvq_s32(a1), vaddvq_s32(a2), vaddvq_s32(a3)};
            for (int k = Kv; k < K; k++)
                for (int i = 0; i < 4; i++) r[i] += (int32_t)w[i][I8_KP(k, ilv)] * q[k];
            float *yr = y + (size_t)m * ldy;
            for (int i = 0; i < nw; i++)
                yr[n + i] = finish((float)r[i] * (xs[m] * ws[n + i]), b, n + i, yr[n + i], flags);
        }
    }
}

/* Two or more rows of x (the encoder, beams) with smmla: one instruction
 * multiplies a 2 x 8 block of x rows by an 8 x 2 block of W rows (32
 * multiply-adds, twice sdot's 16), the operands being two 8-byte halves
 * zipped into one vector. A block of 2 x rows x 4 W rows keeps two 2 x 2
 * accumulators; each loaded W vector serves both x rows. Integer sums in any
 * order are exact, so the results are the scalar level's bits. An odd last
 * x row goes to the sdot kernel. */
TGT_I8MM static void lin_i8_mmla(const int8_t *xq, const float *xs, int M, int K, const int8_t *W, const float *ws,
                                 int il, int ldy, const float *b, float *y, int flags, int n0, int n1) {
    const int Kv = K & ~15, M2 = M & ~1;
    for (int n = n0; n < n1; n += 4) {
        int nw = n1 - n < 4 ? n1 - n : 4;
        const int ilv = n < il;
        const int8_t *w[4];
        for (int i = 0; i < 4; i++) w[i] = i8_row(W, K, il, n + (i < nw ? i : nw - 1));
        for (int m = 0; m < M2; m += 2) {
            const int8_t *q0 = xq + (size_t)m * K, *q1 = q0 + K;
            /* [x0.w0 x0.w1 x1.w0 x1.w1], the same for w2, w3; the low and high
             * 8 bytes of each 16 in separate accumulators, added at the end:
             * 4 independent smmla chains a step instead of 2 chains of 2
             * dependent ones (exact integer sums: the same bits). Not timed:
             * no arm64 machine here (only qemu, which checks the bits). */
            int32x4_t c01 = vdupq_n_s32(0), c23 = c01, d01 = c01, d23 = c01;
            for (int k = 0; k < Kv; k += 16) {
                const int kp = I8_KP(k, ilv);
                int64x2_t x0 = vreinterpretq_s64_s8(vld1q_s8(q0 + k)), x1 = vreinterpretq_s64_s8(vld1q_s8(q1 + k));
                int64x2_t v0 = vreinterpretq_s64_s8(vld1q_s8(w[0] + kp)), v1 = vreinterpretq_s64_s8(vld1q_s8(w[1] + kp));
                int64x2_t v2 = vreinterpretq_s64_s8(vld1q_s8(w[2] + kp)), v3 = vreinterpretq_s64_s8(vld1q_s8(w[3] + kp));
                int8x16_t xlo = vreinterpretq_s8_s64(vzip1q_s64(x0, x1)), xhi = vreinterpretq_s8_s64(vzip2q_s64(x0, x1));
                c01 = vmmlaq_s32(c01, xlo, vreinterpretq_s8_s64(vzip1q_s64(v0, v1)));
                d01 = vmmlaq_s32(d01, xhi, vreinterpretq_s8_s64(vzip2q_s64(v0, v1)));
                c23 = vmmlaq_s32(c23, xlo, vreinterpretq_s8_s64(vzip1q_s64(v2, v3)));
                d23 = vmmlaq_s32(d23, xhi, vreinterpretq_s8_s64(vzip2q_s64(v2, v3)));
            }
            c01 = vaddq_s32(c01, d01), c23 = vaddq_s32(c23, d23);
            int32_t r[2][4];
            vst1q_s32(r[0], vcombine_s32(vget_low_s32(c01), vget_low_s32(c23)));
            vst1q_s32(r[1], vcombine_s32(vget_high_s32(c01), vget_high_s32(c23)));
            for (int j = 0; j < 2; j++) {
                const int8_t *q = j ? q1 : q0;
                for (int k = Kv; k < K; k++)
                    for (int i = 0; i < 4; i++) r[j][i] += (int32_t)w[i][I8_KP(k, ilv)] * q[k];
                float *yr = y + (size_t)(m + j) * ldy;
                for (int i = 0; i < nw; i++)
                    yr[n + i] = finish((float)r[j][i] * (xs[m + j] * ws[n + i]), b, n + i, yr[n + i], flags);
            }
        }
    }
    if (M2 < M) lin_i8_dot(xq + (size_t)M2 * K, xs + M2, 1, K, W, ws, il, ldy, b, y + (size_t)M2 * ldy, flags, n0, n1);
}

static void lin_i8_neon(const int8_t *xq, const float *xs, int M, int K, const int8_t *W, const float *ws, int il,
                        int ldy, const float *b, float *y, int flags, int n0, int n1) {
    const int Kv = K & ~15;
    for (int n = n0; n < n1; n++) {
        const int8_t *w = i8_row(W, K, il, n);
        const int ilv = n < il;
        for (int m = 0; m < M; m++) {
            const int8_t *q = xq + (size_t)m * K;
            int32x4_t acc = vdupq_n_s32(0);
            for (int k = 0; k < Kv; k += 16) {
                int8x16_t wv = vld1q_s8(w + I8_KP(k, ilv)), v = vld1q_s8(q + k);
                int16x8_t lo = vmull_s8(vget_low_s8(wv), vget_low_s8(v));
                int16x8_t hi = vmull_high_s8(wv, v);
                acc = vpadalq_s16(acc, lo);
                acc = vpadalq_s16(acc, hi);
            }
            int32_t r = vaddvq_s32(acc);
            for (int k = Kv; k < K; k++) r += (int32_t)w[I8_KP(k, ilv)] * q[k];
            float *yr = y + (size_t)m * ldy;
            yr[n] = finish((float)r * (xs[m] * ws[n]), b, n, yr[n], flags);
        }
    }
}
#endif /* MT_NEON */

#ifdef MT_X86
/* Rows of x from which the AVX2 half kernels widen W into panels
 * (lin_half_panel_avx2); 0: never, the default. The panel was written when
 * the alternative for many rows was a scalar widening in the backend; against
 * the pair kernels (lin_bf16_avx2, lin_f16_avx2: each W vector widened once
 * per pair of x rows) it is slower at every row count measured: bench_nllb's
 * arithmetic probe on the 2-core AMD EPYC VM (AVX2, 2026-12-01), 2 threads,
 * bf16: 4 rows 28-29 GMAC/s with panels against 58-59 without, 20 rows 43-46
 * against 57-60; beam 4's bf16 step (32000 rows) 34.5 -> 24.4 ms. The same
 * bits either way. STTS_CPU_HALF_PANEL=N turns the panel on from N rows (to
 * compare on other CPUs). */
static int half_panel_rows(void) {
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("STTS_CPU_HALF_PANEL");
        int r = e ? atoi(e) : 0;
        v = r > 0 ? r : 0;
    }
    return v;
}
#endif

void mt_linear_rows_half(int level, int is_bf16, const float *x, int M, int K, const uint16_t *W, int il, int ldy,
                         const float *b, float *y, int flags, int n0, int n1) {
    if (n1 <= n0 || M <= 0) return;
#ifdef MT_NEON
    if (level == MT_KL_NEON) {
        if (is_bf16) lin_bf16_neon(x, M, K, W, il, ldy, b, y, flags, n0, n1);
        else lin_f16_neon(x, M, K, W, il, ldy, b, y, flags, n0, n1);
        return;
    }
#endif
#ifdef MT_X86
    if (level == MT_KL_AVX512 || level == MT_KL_AVX512VNNI) {
        if (is_bf16) lin_bf16_avx512(x, M, K, W, il, ldy, b, y, flags, n0, n1);
        else lin_f16_avx512(x, M, K, W, il, ldy, b, y, flags, n0, n1);
        return;
    }
    if (level >= MT_KL_AVX2) {
        if (!il && half_panel_rows() && M >= half_panel_rows()) /* the panel reads row-major W only */
            lin_half_panel_avx2(is_bf16, x, M, K, W, ldy, b, y, flags, n0, n1);
        else if (is_bf16) lin_bf16_avx2(x, M, K, W, il, ldy, b, y, flags, n0, n1);
        else lin_f16_avx2(x, M, K, W, il, ldy, b, y, flags, n0, n1);
        return;
    }
#endif
    (void)level;
    lin_half_scalar(is_bf16 ? bf16_f32 : f16_f32, x, M, K, W, il, ldy, b, y, flags, n0, n1);
}

void mt_linear_rows_i8(int level, const int8_t *xq, const float *xs, int M, int K, const int8_t *W, const float *ws,
                       int il, int ldy, const float *b, float *y, int flags, int n0, int n1) {
    if (n1 <= n0 || M <= 0) return;
#ifdef MT_NEON
    if (level == MT_KL_NEON) {
        if (M >= 2 && has_i8mm()) lin_i8_mmla(xq, xs, M, K, W, ws, il, ldy, b, y, flags, n0, n1);
        else if (has_dot()) lin_i8_dot(xq, xs, M, K, W, ws, il, ldy, b, y, flags, n0, n1);
        else lin_i8_neon(xq, xs, M, K, W, ws, il, ldy, b, y, flags, n0, n1);
        return;
    }
#endif
#ifdef MT_X86
    if (level == MT_KL_AVX512VNNI) {
        lin_i8_vnni(xq, xs, M, K, W, ws, il, ldy, b, y, flags, n0, n1);
        return;
    }
    if (level == MT_KL_AVXVNNI) {
        lin_i8_avxvnni(xq, xs, M, K, W, ws, il, ldy, b, y, flags, n0, n1);
        return;
    }
    if (level >= MT_KL_AVX2) {
        if (M == 3 || M == 4) lin_i8_avx2_rows4(xq, xs, M, K, W, ws, il, ldy, b, y, flags, n0, n1);
        else lin_i8_avx2(xq, xs, M, K, W, ws, il, ldy, b, y, flags, n0, n1);
        return;
    }
#endif
    (void)level;
    lin_i8_scalar(xq, xs, M, K, W, ws, il, ldy, b, y, flags, n0, n1);
}
