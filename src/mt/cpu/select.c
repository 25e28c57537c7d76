/* select.c - chunk kernels of the CPU selection (select.h): the top k
 * columns of a chunk of logits, and the sum of their exponentials. Builds:
 * scalar, AVX2+FMA, AVX-512F on x86-64, NEON on arm64, compiled with target
 * attributes and picked by the backend's level (kernels.h).
 *
 * Top k: once k values are held, a column can only enter when it beats the
 * k-th, which after the first few hundred columns of a row of logits is
 * rare; the vector loop compares a whole register with that threshold and
 * hands the few columns that pass to the insertion. */
#include "select.h"

#include <math.h>

#include "kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SEL_X86 1
#include <immintrin.h>
#define TGT_AVX2 __attribute__((target("avx2,fma")))
#define TGT_AVX512 __attribute__((target("avx512f,avx2,fma")))
#endif
#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define SEL_NEON 1
#include <arm_neon.h>
#endif

/* Inserts column v into top[0..*n), kept in mt_sel_before order, growing it
 * up to k (the k-th falls out). The caller has checked that v belongs:
 * *n < k, or v is before top[k - 1]; x[v] is not NaN. */
static inline void sel_insert(const float *x, int *top, int *n, int k, int v) {
    int p = *n < k ? (*n)++ : k - 1;
    while (p > 0 && mt_sel_before(x, v, top[p - 1])) {
        top[p] = top[p - 1];
        p--;
    }
    top[p] = v;
}

/* The columns of [c0, c1) until k are held (NaN skipped); returns where it stopped. */
static inline int sel_fill(const float *x, int c0, int c1, int k, int *top, int *n) {
    int v = c0;
    for (; v < c1 && *n < k; v++)
        if (x[v] == x[v]) sel_insert(x, top, n, k, v);
    return v;
}

/* Scanning columns in ascending order, a column equal to the k-th came
 * after it, so only a strictly greater value enters (NaN compares false). */
static inline void sel_scalar_tail(const float *x, int v, int c1, int k, int *top, int *n) {
    for (; v < c1; v++)
        if (*n < k ? x[v] == x[v] : x[v] > x[top[k - 1]]) sel_insert(x, top, n, k, v);
}

static int topk_scalar(const float *x, int c0, int c1, int k, int *top) {
    int n = 0;
    sel_scalar_tail(x, c0, c1, k, top, &n);
    return n;
}

static double expsum_scalar(const float *x, int c0, int c1, float mx) {
    double s = 0.0;
    for (int v = c0; v < c1; v++)
        if (x[v] == x[v]) s += expf(x[v] - mx); /* NaN: left out, as the SIMD levels' clamp nearly does */
    return s;
}

/* exp(t) for t <= 0 as e = 2^n * p(r), n = round(t / ln 2), r = t - n ln 2
 * (ln 2 in two parts, Cody-Waite), p the Taylor polynomial of degree 7
 * (truncation 5e-9 relative on |r| <= ln2 / 2). t is clamped at -86 so
 * that 2^n stays a normal number (n >= -125) and the exponent add below is
 * exact; a NaN t gives exp(-86) there. */
#define SEL_LOG2E 1.44269504088896341f
#define SEL_LN2_HI 0.693145751953125f
#define SEL_LN2_LO 1.42860682030941723e-6f
#define SEL_T_MIN (-86.0f)

#ifdef SEL_X86
/* p = the degree-7 polynomial at r, Horner with fused multiply-adds, in
 * vectors of type T with intrinsics prefix P (_mm256, _mm512). */
#define SEL_POLY(T, P, p, r)                                   \
    T p = P##_set1_ps(1.0f / 5040.0f);                         \
    p = P##_fmadd_ps(p, r, P##_set1_ps(1.0f / 720.0f));        \
    p = P##_fmadd_ps(p, r, P##_set1_ps(1.0f / 120.0f));        \
    p = P##_fmadd_ps(p, r, P##_set1_ps(1.0f / 24.0f));         \
    p = P##_fmadd_ps(p, r, P##_set1_ps(1.0f / 6.0f));          \
    p = P##_fmadd_ps(p, r, P##_set1_ps(0.5f));                 \
    p = P##_fmadd_ps(p, r, P##_set1_ps(1.0f));                 \
    p = P##_fmadd_ps(p, r, P##_set1_ps(1.0f))

/* exp_512, exp_256: the exp above on vectors of W bits (RND: the rounding
 * intrinsic, which AVX-512 names differently). */
#define SEL_EXP_FN(W, RND)                                                                            \
    static inline __m##W exp_##W(__m##W t) {                                                        \
        t = _mm##W##_max_ps(t, _mm##W##_set1_ps(SEL_T_MIN)); /* NaN: the second operand */         \
        __m##W n = _mm##W##_##RND(_mm##W##_mul_ps(t, _mm##W##_set1_ps(SEL_LOG2E)),                   \
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);                   \
        __m##W r = _mm##W##_fnmadd_ps(n, _mm##W##_set1_ps(SEL_LN2_HI), t);                          \
        r = _mm##W##_fnmadd_ps(n, _mm##W##_set1_ps(SEL_LN2_LO), r);                                 \
        SEL_POLY(__m##W, _mm##W, p, r);                                                             \
        __m##W##i e = _mm##W##_slli_epi32(_mm##W##_cvtps_epi32(n), 23);                             \
        return _mm##W##_castsi##W##_ps(_mm##W##_add_epi32(_mm##W##_castps_si##W(p), e));            \
    }
TGT_AVX512 SEL_EXP_FN(512, roundscale_ps)
TGT_AVX2 SEL_EXP_FN(256, round_ps)

TGT_AVX512 static double expsum_avx512(const float *x, int c0, int c1, float mx) {
    __m512 m = _mm512_set1_ps(mx);
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    int v = c0;
    for (; v + 16 <= c1; v += 16) {
        __m512 e = exp_512(_mm512_sub_ps(_mm512_loadu_ps(x + v), m));
        a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
    }
    if (v < c1) { /* the tail through the same polynomial, masked */
        __mmask16 k = (__mmask16)((1u << (c1 - v)) - 1);
        __m512 e = exp_512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + v), m));
        e = _mm512_maskz_mov_ps(k, e);
        a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
}

TGT_AVX512 static int topk_avx512(const float *x, int c0, int c1, int k, int *top) {
    int n = 0, v = sel_fill(x, c0, c1, k, top, &n);
    if (n == k) {
        __m512 thr = _mm512_set1_ps(x[top[k - 1]]);
        for (; v + 16 <= c1; v += 16) {
            __mmask16 m = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + v), thr, _CMP_GT_OQ);
            if (!m) continue;
            for (; m; m &= (__mmask16)(m - 1)) {
                int c = v + __builtin_ctz(m);
                if (x[c] > x[top[k - 1]]) sel_insert(x, top, &n, k, c);
            }
            thr = _mm512_set1_ps(x[top[k - 1]]);
        }
    }
    sel_scalar_tail(x, v, c1, k, top, &n);
    return n;
}

TGT_AVX2 static double expsum_avx2(const float *x, int c0, int c1, float mx) {
    __m256 m = _mm256_set1_ps(mx);
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    int v = c0;
    for (; v + 8 <= c1; v += 8) {
        __m256 e = exp_256(_mm256_sub_ps(_mm256_loadu_ps(x + v), m));
        a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(a0, a1));
    double s = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    if (v < c1) { /* the tail through the same polynomial */
        float t[8] = {0}, e[8];
        int n = c1 - v;
        for (int i = 0; i < n; i++) t[i] = x[v + i] - mx;
        _mm256_storeu_ps(e, exp_256(_mm256_loadu_ps(t)));
        for (int i = 0; i < n; i++) s += e[i];
    }
    return s;
}

TGT_AVX2 static int topk_avx2(const float *x, int c0, int c1, int k, int *top) {
    int n = 0, v = sel_fill(x, c0, c1, k, top, &n);
    if (n == k) {
        __m256 thr = _mm256_set1_ps(x[top[k - 1]]);
        for (; v + 8 <= c1; v += 8) {
            unsigned m = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + v), thr, _CMP_GT_OQ));
            if (!m) continue;
            for (; m; m &= m - 1) {
                int c = v + __builtin_ctz(m);
                if (x[c] > x[top[k - 1]]) sel_insert(x, top, &n, k, c);
            }
            thr = _mm256_set1_ps(x[top[k - 1]]);
        }
    }
    sel_scalar_tail(x, v, c1, k, top, &n);
    return n;
}
#endif /* SEL_X86 */

#ifdef SEL_NEON
static inline float32x4_t exp_neon(float32x4_t t) {
    t = vmaxnmq_f32(t, vdupq_n_f32(SEL_T_MIN)); /* maxNum: a NaN t gives -86, as on x86 */
    float32x4_t n = vrndnq_f32(vmulq_f32(t, vdupq_n_f32(SEL_LOG2E)));
    float32x4_t r = vfmsq_f32(t, n, vdupq_n_f32(SEL_LN2_HI));
    r = vfmsq_f32(r, n, vdupq_n_f32(SEL_LN2_LO));
    float32x4_t p = vdupq_n_f32(1.0f / 5040.0f);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 720.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    int32x4_t e = vshlq_n_s32(vcvtq_s32_f32(n), 23);
    return vreinterpretq_f32_s32(vaddq_s32(vreinterpretq_s32_f32(p), e));
}

static double expsum_neon(const float *x, int c0, int c1, float mx) {
    float32x4_t m = vdupq_n_f32(mx);
    float64x2_t a0 = vdupq_n_f64(0.0), a1 = vdupq_n_f64(0.0);
    int v = c0;
    for (; v + 4 <= c1; v += 4) {
        float32x4_t e = exp_neon(vsubq_f32(vld1q_f32(x + v), m));
        a0 = vaddq_f64(a0, vcvt_f64_f32(vget_low_f32(e)));
        a1 = vaddq_f64(a1, vcvt_high_f64_f32(e));
    }
    double s = vaddvq_f64(vaddq_f64(a0, a1));
    if (v < c1) {
        float t[4] = {0}, e[4];
        int n = c1 - v;
        for (int i = 0; i < n; i++) t[i] = x[v + i] - mx;
        vst1q_f32(e, exp_neon(vld1q_f32(t)));
        for (int i = 0; i < n; i++) s += e[i];
    }
    return s;
}

static int topk_neon(const float *x, int c0, int c1, int k, int *top) {
    int n = 0, v = sel_fill(x, c0, c1, k, top, &n);
    if (n == k) {
        float32x4_t thr = vdupq_n_f32(x[top[k - 1]]);
        for (; v + 4 <= c1; v += 4) {
            if (!vmaxvq_u32(vcgtq_f32(vld1q_f32(x + v), thr))) continue;
            for (int c = v; c < v + 4; c++)
                if (x[c] > x[top[k - 1]]) sel_insert(x, top, &n, k, c);
            thr = vdupq_n_f32(x[top[k - 1]]);
        }
    }
    sel_scalar_tail(x, v, c1, k, top, &n);
    return n;
}
#endif /* SEL_NEON */

int mt_sel_topk_chunk(int level, const float *x, int c0, int c1, int k, int *top) {
#ifdef SEL_NEON
    if (level == MT_KL_NEON) return topk_neon(x, c0, c1, k, top);
#endif
#ifdef SEL_X86
    if (level == MT_KL_AVX512 || level == MT_KL_AVX512VNNI) return topk_avx512(x, c0, c1, k, top);
    if (level == MT_KL_AVX2 || level == MT_KL_AVXVNNI) return topk_avx2(x, c0, c1, k, top);
#endif
    (void)level;
    return topk_scalar(x, c0, c1, k, top);
}

double mt_sel_expsum_chunk(int level, const float *x, int c0, int c1, float mx) {
#ifdef SEL_NEON
    if (level == MT_KL_NEON) return expsum_neon(x, c0, c1, mx);
#endif
#ifdef SEL_X86
    if (level == MT_KL_AVX512 || level == MT_KL_AVX512VNNI) return expsum_avx512(x, c0, c1, mx);
    if (level == MT_KL_AVX2 || level == MT_KL_AVXVNNI) return expsum_avx2(x, c0, c1, mx);
#endif
    (void)level;
    return expsum_scalar(x, c0, c1, mx);
}
