/* quant.c - int8 and bf16 weight rounding rules (see quant.h). */
#include "quant.h"

#include <math.h>
#include <string.h>

float mt_quantize_row_i8(const float *w, size_t n, int8_t *q) {
    float amax = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(w[i]);
        if (a > amax) amax = a;
    }
    if (amax == 0.0f || !isfinite(amax)) {
        /* zeros (or a non-finite row, which a validated checkpoint never
         * holds): all-zero codes rather than NaN scales */
        memset(q, 0, n);
        return 0.0f;
    }
    float scale = amax / 127.0f, inv = 127.0f / amax;
    for (size_t i = 0; i < n; i++) {
        float v = nearbyintf(w[i] * inv);
        if (v > 127.0f) v = 127.0f;
        if (v < -127.0f) v = -127.0f;
        q[i] = (int8_t)v;
    }
    return scale;
}

uint16_t mt_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
