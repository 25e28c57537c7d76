/* quant.h - the one int8 weight quantization rule of the engine, shared by
 * the loader (quantizing f32/f16/bf16 checkpoints at load), `stream-tts
 * convert` (writing int8 model files) and every backend (CPU, CUDA), so a
 * converted file and a checkpoint quantized at load give identical weights.
 *
 * Rule: per output row (one row of a Linear weight [out][in], or one row of
 * the embedding table), symmetric: scale = max|w| / 127, q = w / scale
 * rounded to nearest, ties to even (nearbyintf in the default rounding
 * mode), clamped to [-127, 127]; -128 is never produced, so a negation
 * cannot overflow in the integer kernels. A row of zeros has scale 0 and
 * q = 0. Dequantized value: q * scale.
 *
 * File layout (converted files, and the engine's own layout): the int8
 * tensor keeps its HF name and [out][in] row-major shape; its scales are a
 * separate f32 tensor of shape [out] named "<name>.scale". */
#ifndef MT_QUANT_H
#define MT_QUANT_H

#include <stddef.h>
#include <stdint.h>

/* Suffix of the per-row scale tensor's name in converted files. */
#define MT_QUANT_SCALE_SUFFIX ".scale"

/* Quantizes one row of n floats into q[n]; returns its scale. Uses AVX2
 * where the CPU has it, bit-identical to the reference (test_backend_ops). */
float mt_quantize_row_i8(const float *w, size_t n, int8_t *q);
/* The rule in plain C, one value at a time: the reference for tests. */
float mt_quantize_row_i8_ref(const float *w, size_t n, int8_t *q);

/* Rounds an f32 to bf16 (round to nearest even; NaN stays NaN), the rule
 * for f32 -> bf16 weights everywhere in the engine. */
uint16_t mt_f32_to_bf16(float f);

#endif
