/* tensor_convert.c - dtype conversion of checkpoint tensors to float32
 * (f32 copy, f16 and bf16 widening; exact, including subnormals, inf, NaN).
 * Source data may be unaligned inside the mapped file, so it is read with
 * memcpy, which compilers turn into plain loads. */
#include <string.h>

#include "io/checkpoint_internal.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define MTIO_HAVE_F16C_PATH 1
#endif

size_t mt_dtype_size(mt_dtype d) {
    switch (d) {
    case MT_DTYPE_F32: return 4;
    case MT_DTYPE_F16: return 2;
    case MT_DTYPE_BF16: return 2;
    case MT_DTYPE_I64: return 8;
    case MT_DTYPE_I8: return 1;
    default: return 0;
    }
}

const char *mt_dtype_name(mt_dtype d) {
    switch (d) {
    case MT_DTYPE_F32: return "f32";
    case MT_DTYPE_F16: return "f16";
    case MT_DTYPE_BF16: return "bf16";
    case MT_DTYPE_I64: return "i64";
    case MT_DTYPE_I8: return "i8";
    default: return "other";
    }
}

static inline float bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* IEEE half to float: shift exponent+mantissa into place and rescale by
 * 2^112 (fixes the exponent bias and turns half subnormals into normal
 * floats exactly); inf/NaN keep an all-ones exponent. Branch-free for the
 * common case so the loop vectorizes. */
static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t em = h & 0x7fffu;
    float mag = bits_to_f32(em << 13) * 0x1p112f;
    uint32_t m;
    memcpy(&m, &mag, 4);
    if (em >= 0x7c00u) m = 0x7f800000u | ((em & 0x3ffu) << 13);
    return bits_to_f32(m | sign);
}

void mtio_f16_to_f32_scalar(const unsigned char *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        dst[i] = f16_to_f32(h);
    }
}

#ifdef MTIO_HAVE_F16C_PATH
/* x86 F16C (every AVX2 CPU has it): 8 halves per instruction, exact like the
 * scalar path except that signalling NaNs come out quiet. */
__attribute__((target("avx,f16c"))) static void f16_to_f32_f16c(const unsigned char *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + 2 * i))));
    mtio_f16_to_f32_scalar(src + 2 * i, dst + i, n - i);
}

static int have_f16c(void) {
    static int cached = -1; /* benign race: every thread computes the same value */
    if (cached < 0) {
        unsigned a, b, c, d;
        int f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
        cached = f16c && __builtin_cpu_supports("avx"); /* avx: also checks the OS saves YMM state */
    }
    return cached;
}
#endif

stts_status mt_tensor_to_f32(const mt_tensor *t, float *dst, size_t n, stts_error *err) {
    if (!t || (!dst && n)) return stts_error_set(err, STTS_ERR_INVALID_ARG, "mt_tensor_to_f32: NULL argument");
    if ((int64_t)n != t->numel)
        return stts_error_set(err, STTS_ERR_INVALID_ARG,
                              "mt_tensor_to_f32: tensor \"%.200s\" has %lld elements, caller asked for %zu", t->name,
                              (long long)t->numel, n);
    if (t->il && t->dtype != MT_DTYPE_I8) /* rows in quant.h's interleaved groups: the weight loader reads those */
        return stts_error_set(err, STTS_ERR_UNSUPPORTED,
                              "tensor \"%.200s\" stores its rows interleaved (model file format 2), which this "
                              "reader does not take; load it as a weight",
                              t->name);
    const unsigned char *src = t->data;
    switch (t->dtype) {
    case MT_DTYPE_F32:
        if (n) memcpy(dst, src, n * 4);
        return STTS_OK;
    case MT_DTYPE_F16:
#ifdef MTIO_HAVE_F16C_PATH
        if (have_f16c()) {
            f16_to_f32_f16c(src, dst, n);
            return STTS_OK;
        }
#endif
        mtio_f16_to_f32_scalar(src, dst, n);
        return STTS_OK;
    case MT_DTYPE_BF16: {
        size_t i0 = 0;
#ifdef __SSE2__
        /* Interleaving zero halves below the bf16 halves gives the f32 bits (x86-64 baseline). */
        const __m128i zero = _mm_setzero_si128();
        for (; i0 + 8 <= n; i0 += 8) {
            __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(src + 2 * i0));
            _mm_storeu_si128((__m128i *)(void *)(dst + i0), _mm_unpacklo_epi16(zero, h));
            _mm_storeu_si128((__m128i *)(void *)(dst + i0 + 4), _mm_unpackhi_epi16(zero, h));
        }
#endif
        for (size_t i = i0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = bits_to_f32((uint32_t)h << 16);
        }
        return STTS_OK;
    }
    case MT_DTYPE_I8:
        /* its scales are a separate tensor: the loader dequantizes with mt_checkpoint_scale */
        return stts_error_set(err, STTS_ERR_UNSUPPORTED,
                              "tensor \"%.200s\" is int8 (a model converted with --weights int8), which this "
                              "loader cannot read; convert with --weights bf16 or f32 instead",
                              t->name);
    default:
        return stts_error_set(err, STTS_ERR_UNSUPPORTED,
                              "tensor \"%.200s\" has dtype %s, which cannot be converted to float (weights must be "
                              "float32, float16 or bfloat16)",
                              t->name, t->dtype_name ? t->dtype_name : mt_dtype_name(t->dtype));
    }
}
