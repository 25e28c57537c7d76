/* kernels.c - dot-product kernels for y = x W^T + b with W in HF's [out][in]
 * layout: each output row of W is streamed once per block of x rows, which is
 * what batch-1 decoding (x has 1..8 rows, W is hundreds of MB) is bound by.
 * Three builds: scalar, AVX2+FMA and AVX-512F, compiled with target
 * attributes so the binary runs on any x86-64 (and elsewhere, scalar only);
 * mt_kernels_pick() chooses with __builtin_cpu_supports at run time. */
#include "kernels.h"

#include <stddef.h>

#include "backend.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MT_X86 1
#include <immintrin.h>
#define TGT_AVX2 __attribute__((target("avx2,fma")))
#define TGT_AVX512 __attribute__((target("avx512f,avx2,fma")))
#endif

int mt_kernels_pick(int want) {
    int best = MT_KL_SCALAR;
#ifdef MT_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = MT_KL_AVX2;
    if (best == MT_KL_AVX2 && __builtin_cpu_supports("avx512f")) best = MT_KL_AVX512;
#endif
    if (want > 0 && want < best) best = want;
    return best;
}

const char *mt_kernels_name(int level) {
    switch (level) {
    case MT_KL_AVX512: return "avx512";
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

void mt_linear_rows(int level, const float *x, int M, int K, const float *W, int N, const float *b, float *y,
                    int flags, int n0, int n1) {
    if (n1 <= n0 || M <= 0) return;
#ifdef MT_X86
    if (level == MT_KL_AVX512) {
        lin_avx512(x, M, K, W, N, b, y, flags, n0, n1);
        return;
    }
    if (level == MT_KL_AVX2) {
        lin_avx2(x, M, K, W, N, b, y, flags, n0, n1);
        return;
    }
#endif
    (void)level;
    lin_scalar(x, M, K, W, N, b, y, flags, n0, n1);
}

float mt_dot(int level, const float *a, const float *b, int n) {
#ifdef MT_X86
    if (level >= MT_KL_AVX2) return dot_avx2(a, b, n);
#endif
    (void)level;
    return dot_scalar(a, b, n);
}

void mt_axpy(int level, float a, const float *x, float *y, int n) {
#ifdef MT_X86
    if (level >= MT_KL_AVX2) {
        axpy_avx2(a, x, y, n);
        return;
    }
#endif
    (void)level;
    axpy_scalar(a, x, y, n);
}
