/* quant.c - int8 and bf16 weight rounding rules (see quant.h). */
#include "quant.h"

#include <math.h>
#include <string.h>

/* The pieces of the rule, shared by the reference and the vector path (which
 * runs them on the values its vectors leave over). */
static float absmax_from(const float *w, size_t i, size_t n, float amax) {
    for (; i < n; i++) {
        float a = fabsf(w[i]);
        if (a > amax) amax = a;
    }
    return amax;
}

static void codes_from(const float *w, size_t i, size_t n, float inv, int8_t *q) {
    for (; i < n; i++) {
        float v = nearbyintf(w[i] * inv);
        if (v > 127.0f) v = 127.0f;
        if (v < -127.0f) v = -127.0f;
        q[i] = (int8_t)v;
    }
}

/* Zeros (or a non-finite row, which a validated checkpoint never holds) get
 * all-zero codes rather than NaN scales. */
static int degenerate(float amax, size_t n, int8_t *q) {
    if (amax != 0.0f && isfinite(amax)) return 0;
    memset(q, 0, n);
    return 1;
}

float mt_quantize_row_i8_ref(const float *w, size_t n, int8_t *q) {
    float amax = absmax_from(w, 0, n, 0.0f);
    if (degenerate(amax, n, q)) return 0.0f;
    codes_from(w, 0, n, 127.0f / amax, q);
    return amax / 127.0f;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MT_QUANT_AVX2 1

/* The same rule, 32 values at a time. Bit-identical to the reference: the
 * maximum of |w| is exact in any order (max_ps with the running maximum as
 * the second operand skips a NaN, as the scalar comparison does), the
 * product is the same IEEE multiply, and round_ps to nearest is ties-to-even
 * like nearbyintf in the default mode. Loading a 600M checkpoint as int8
 * spends most of its start in this function (perf: 47% of a 23 s load with
 * the scalar rule), and every int8 decode step quantizes its activations. */
__attribute__((target("avx2"))) static float quantize_row_i8_avx2(const float *w, size_t n, int8_t *q) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 vmax = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(w + i), abs_mask), vmax);
    float lanes[8];
    _mm256_storeu_ps(lanes, vmax);
    float amax = absmax_from(w, i, n, absmax_from(lanes, 0, 8, 0.0f));
    if (degenerate(amax, n, q)) return 0.0f;
    float inv = 127.0f / amax;
    const __m256 vinv = _mm256_set1_ps(inv), hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
    /* packs interleave 128-bit lanes; this puts the 8 groups of 4 back in order */
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i v[4];
        for (int k = 0; k < 4; k++) {
            __m256 x = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(w + i + 8 * k), vinv),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            v[k] = _mm256_cvtps_epi32(_mm256_max_ps(_mm256_min_ps(x, hi), lo));
        }
        __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
        _mm256_storeu_si256((__m256i *)(q + i), _mm256_permutevar8x32_epi32(b, order));
    }
    codes_from(w, i, n, inv, q);
    return amax / 127.0f;
}
#endif

float mt_quantize_row_i8(const float *w, size_t n, int8_t *q) {
#ifdef MT_QUANT_AVX2
    /* Loader threads race to set it, all to the same value: relaxed atomics
     * keep that well defined (and quiet under TSan). */
    static int have_avx2 = -1;
    int h = __atomic_load_n(&have_avx2, __ATOMIC_RELAXED);
    if (h < 0) {
        h = __builtin_cpu_supports("avx2") ? 1 : 0;
        __atomic_store_n(&have_avx2, h, __ATOMIC_RELAXED);
    }
    if (h) return quantize_row_i8_avx2(w, n, q);
#endif
    return mt_quantize_row_i8_ref(w, n, q);
}

uint16_t mt_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* ---- the interleaved layout (quant.h), in bytes: a row of K values of es
 * bytes is Kb = K * es bytes, a multiple of 64 when interleaved ---- */
static size_t il_off(size_t Kb, int il, int r) { /* row r's first byte */
    return r < il ? (size_t)(r & ~3) * Kb + 64 * (size_t)(r & 3) : (size_t)r * Kb;
}

int mt_il_rows(int K, size_t es, int N) { return ((size_t)K * es) % 64 || N < 0 ? 0 : N & ~3; }

void mt_il_row_get(const void *W, int K, size_t es, int il, int r, void *dst) {
    const size_t Kb = (size_t)K * es;
    const char *w = (const char *)W + il_off(Kb, il, r);
    if (r >= il) {
        memcpy(dst, w, Kb);
        return;
    }
    for (size_t k = 0; k < Kb; k += 64) memcpy((char *)dst + k, w + 4 * k, 64); /* piece k / 64 of the group */
}

void mt_il_row_put(void *W, int K, size_t es, int il, int r, const void *src) {
    const size_t Kb = (size_t)K * es;
    char *w = (char *)W + il_off(Kb, il, r);
    if (r >= il) {
        memcpy(w, src, Kb);
        return;
    }
    for (size_t k = 0; k < Kb; k += 64) memcpy(w + 4 * k, (const char *)src + k, 64);
}

int mt_i8_interleave_rows(int K, int N) { return mt_il_rows(K, 1, N); }
void mt_i8_row_get(const int8_t *W, int K, int il, int r, int8_t *dst) { mt_il_row_get(W, K, 1, il, r, dst); }
void mt_i8_row_put(int8_t *W, int K, int il, int r, const int8_t *src) { mt_il_row_put(W, K, 1, il, r, src); }
