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
 * File layout (converted files): the int8 tensor keeps its HF name and
 * [out][in] shape; its scales are a separate f32 tensor of shape [out]
 * named "<name>.scale". Its bytes, and a bf16 or f16 matrix's, are in the
 * interleaved layout below (model file format 2; format 1 files are
 * row-major).
 *
 * The interleaved layout of an N x K matrix whose rows are a multiple of 64
 * bytes (int8: K % 64 == 0; bf16, f16: K % 32 == 0): the first il = N & ~3
 * rows in groups of 4 whose 64-byte pieces alternate (row 0's bytes 0-63,
 * row 1's 0-63, row 2's, row 3's, then row 0's 64-127, ...), the last N % 4
 * rows row-major after them. A group keeps the 4 rows' bytes it has in
 * row-major order, so sizes and offsets do not change; a kernel reading 4
 * rows at once walks one sequential stream instead of 4 streams a row apart
 * (kernels.h: ~1.4x the bytes per second on one core). */
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

/* Rows of an N x K matrix of es-byte values in the interleaved layout:
 * N & ~3 when K * es % 64 == 0, else 0 (all row-major). */
int mt_il_rows(int K, size_t es, int N);
/* Row r of W (its first il rows interleaved, the rest row-major; il from
 * mt_il_rows or 0) into / from K contiguous values of es bytes. */
void mt_il_row_get(const void *W, int K, size_t es, int il, int r, void *dst);
void mt_il_row_put(void *W, int K, size_t es, int il, int r, const void *src);
/* The same for int8 (es 1). */
int mt_i8_interleave_rows(int K, int N);
void mt_i8_row_get(const int8_t *W, int K, int il, int r, int8_t *dst);
void mt_i8_row_put(int8_t *W, int K, int il, int r, const int8_t *src);

/* Rounds an f32 to bf16 (round to nearest even; NaN stays NaN), the rule
 * for f32 -> bf16 weights everywhere in the engine. */
uint16_t mt_f32_to_bf16(float f);

#endif
