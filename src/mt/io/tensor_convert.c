/* tensor_convert.c - dtype conversion of checkpoint tensors to float32
 * (f32 copy, f16 and bf16 widening; exact, including subnormals, inf, NaN).
 * Source data may be unaligned inside the mapped file, so it is read with
 * memcpy, which compilers turn into plain loads. */
#include <string.h>

#include "io/checkpoint_internal.h"

size_t mt_dtype_size(mt_dtype d) {
    switch (d) {
    case MT_DTYPE_F32: return 4;
    case MT_DTYPE_F16: return 2;
    case MT_DTYPE_BF16: return 2;
    case MT_DTYPE_I64: return 8;
    default: return 0;
    }
}

const char *mt_dtype_name(mt_dtype d) {
    switch (d) {
    case MT_DTYPE_F32: return "f32";
    case MT_DTYPE_F16: return "f16";
    case MT_DTYPE_BF16: return "bf16";
    case MT_DTYPE_I64: return "i64";
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

stts_status mt_tensor_to_f32(const mt_tensor *t, float *dst, size_t n, stts_error *err) {
    if (!t || (!dst && n)) return stts_error_set(err, STTS_ERR_INVALID_ARG, "mt_tensor_to_f32: NULL argument");
    if ((int64_t)n != t->numel)
        return stts_error_set(err, STTS_ERR_INVALID_ARG,
                              "mt_tensor_to_f32: tensor \"%.200s\" has %lld elements, caller asked for %zu", t->name,
                              (long long)t->numel, n);
    const unsigned char *src = t->data;
    switch (t->dtype) {
    case MT_DTYPE_F32:
        if (n) memcpy(dst, src, n * 4);
        return STTS_OK;
    case MT_DTYPE_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = f16_to_f32(h);
        }
        return STTS_OK;
    case MT_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = bits_to_f32((uint32_t)h << 16);
        }
        return STTS_OK;
    default:
        return stts_error_set(err, STTS_ERR_UNSUPPORTED,
                              "tensor \"%.200s\" has dtype %s, which cannot be converted to float (weights must be "
                              "float32, float16 or bfloat16)",
                              t->name, t->dtype_name ? t->dtype_name : mt_dtype_name(t->dtype));
    }
}
