/* backend.h - the compute seam of the NLLB engine. The model code
 * (forward.c) never touches SIMD, threads or devices: it calls the ops of an
 * mt_backend on buffers the backend allocated. The CPU backend (cpu/) is the
 * first implementation; a CUDA backend (cuda/) fills the same table with
 * device buffers, and the model code stays as it is.
 *
 * Conventions: matrices are row-major; a weight W of a Linear layer keeps
 * HF's [out][in] layout, so y = x W^T + b is one dot product per output
 * (streams W once per call, which is what batch-1 decoding is bound by).
 * Buffers are float (f32 compute); weights are uploaded once at load.
 * Thread-safety: one call at a time per backend (the model serialises). */
#ifndef MT_BACKEND_H
#define MT_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "stts_common.h"

typedef struct mt_backend mt_backend;

enum {
    MT_LIN_RELU = 1,   /* y = relu(x W^T + b) */
    MT_LIN_ACCUM = 2   /* y += x W^T + b (residual add fused) */
};

/* One multi-head attention over rows: row r's query (q + r*q_stride, head h
 * at h*head_dim, already scaled) attends to kv_len[r] keys at k[r] + j*kv_stride
 * (+ h*head_dim) and values at v[r] + j*kv_stride; the result goes to
 * out + r*out_stride. Covers encoder self-attention (every row of a sentence
 * points at the sentence's K/V), decoder self-attention (the row's cache) and
 * cross-attention (the sentence's encoder K/V). */
typedef struct {
    int rows, heads, head_dim;
    const float *q;
    int q_stride;
    const float *const *k;
    const float *const *v;
    const int *kv_len;
    int kv_stride;
    float *out;
    int out_stride;
} mt_attn_args;

typedef struct {
    const char *name;
    void (*destroy)(mt_backend *be);
    /* n floats of backend memory (weights, activations); NULL on failure. */
    float *(*alloc)(mt_backend *be, size_t n);
    void (*release)(mt_backend *be, float *p);
    /* Host <-> backend copies (CPU: memcpy). */
    void (*upload)(mt_backend *be, float *dst, const float *src, size_t n);
    void (*download)(mt_backend *be, float *dst, const float *src, size_t n);
    /* Runs fn(ctx, i) for i in [0, n) on the backend's workers (weight
     * initialisation, conversions): the only generic parallel hook. */
    void (*parallel_for)(mt_backend *be, int n, void (*fn)(void *ctx, int i), void *ctx);

    /* y[M][N] (=, relu, +=) x[M][K] W[N][K]^T + b[N] (b may be NULL). */
    void (*linear)(mt_backend *be, const float *x, int M, int K, const float *W, int N, const float *b,
                   float *y, int flags);
    /* y[M][D] = LayerNorm(x) * g + b (biased variance, eps). y may equal x. */
    void (*layernorm)(mt_backend *be, const float *x, int M, int D, const float *g, const float *b, float eps,
                      float *y);
    void (*attention)(mt_backend *be, const mt_attn_args *a);
    /* out[r] = table[ids[r]] * scale + sinusoid(pos[r]) (HF M2M100 layout:
     * sin half then cos half; pos == pad_idx -> zero vector). pos_round:
     * the sinusoid values rounded through f16 (1) or bf16 (2) first, as HF
     * holds the table in a half-precision checkpoint's dtype; 0 = f32. */
    void (*embed)(mt_backend *be, const float *table, int D, const int32_t *ids, const int *pos, int rows,
                  float scale, int pad_idx, int pos_round, float *out);
    /* x[r] *= s over rows of width D at stride (query scaling). */
    void (*scale_cols)(mt_backend *be, float *x, int rows, int D, int stride, float s);
    /* n floats, backend to backend (KV-cache writes and beam reorder). */
    void (*copy)(mt_backend *be, float *dst, const float *src, size_t n);
    /* 1: backend memory is host memory (the search reads logits in place). */
    int host_visible;
} mt_backend_ops;

struct mt_backend {
    const mt_backend_ops *ops;
    int threads;
    char desc[64];  /* "cpu avx512 x2" */
};

/* The CPU backend. threads 0 = online cores; simd see nllb_simd (int to keep
 * this header free of the public one). max_kv bounds kv_len in attention
 * (per-thread score scratch is sized once here). */
stts_status mt_cpu_backend_new(int threads, int simd, int max_kv, mt_backend **out, stts_error *err);

#endif
