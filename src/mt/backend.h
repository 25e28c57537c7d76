/* backend.h - the compute seam of the NLLB engine. The model code
 * (model.c, forward.c, search.c) never touches SIMD, threads, devices or
 * weight bytes: it asks a backend for typed weight handles and calls ops on
 * an executor. The CPU backend (cpu/) is the first implementation; a CUDA
 * backend (cuda/) fills the same table with device buffers.
 *
 * Three kinds of object:
 *  - mt_backend: one per model; owns the immutable weights (mt_weight
 *    handles, created at load, read-only afterwards, so any number of
 *    executors read them at once) and hands out activation memory.
 *  - mt_weight: a backend-owned matrix (or vector) in a compute format
 *    (f32, f16, bf16, int8 + per-row f32 scales) and the backend's own
 *    layout. Above the backend only the public head (format, shape, bytes)
 *    is visible, never the data. The loader passes the checkpoint's source
 *    tensors (mt_wpart: dtype + host pointer, int8 with scales) and the
 *    requested format; a source already in the compute format that outlives
 *    the weight (MT_WSRC_PERSISTENT: the mapped file) is used in place, never
 *    copied (CPU); anything else is converted once with the rules of quant.h.
 *  - mt_exec: an executor (CPU: a thread pool and scratch; CUDA: a stream and
 *    its workspace). One per session, so sessions on one model run at once.
 *    Every compute op takes the executor and returns a status (a device can
 *    run out of memory, a kernel launch can fail).
 *
 * Conventions: activations are f32 buffers from alloc(), row-major; a
 * Linear weight keeps HF's [out][in] layout, y = x W^T + b. Memory from
 * alloc() is backend memory (device memory for CUDA); the host reads it only
 * through download() unless host_visible. */
#ifndef MT_BACKEND_H
#define MT_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "stts_common.h"

typedef struct mt_backend mt_backend;

/* Compute formats of weights (same order as the public nllb_weights minus auto). */
typedef enum { MT_WF_F32 = 1, MT_WF_BF16, MT_WF_F16, MT_WF_I8 } mt_wfmt;
const char *mt_wfmt_name(mt_wfmt f); /* "f32", "bf16", "f16", "int8" */

/* The public head of a backend's weight (each backend's weight struct starts
 * with it). Read-only for the model code. */
typedef struct {
    mt_wfmt fmt;
    int rows, cols;  /* [rows][cols]; a vector (bias, LayerNorm) is 1 x n */
    size_t bytes;    /* bytes one full pass reads (data + scales) */
    int in_place;    /* 1: the data is the source's memory (the mapped file) */
} mt_weight;

/* One source block of a weight: rows x cols host memory of a checkpoint
 * dtype (MT_DTYPE_F32/F16/BF16, or MT_DTYPE_I8 with scale[rows]),
 * row-major but for its first il rows, which may be in quant.h's
 * interleaved layout (a converted file's int8, bf16 or f16: mt_tensor.il). */
typedef struct {
    mt_dtype dtype;
    const void *data;
    const float *scale;
    int il;
} mt_wpart;

/* weight_new flags */
enum {
    MT_WSRC_PERSISTENT = 1, /* the sources outlive the weight: may be used in place */
    MT_WSRC_FILE_PAGES = 2  /* the sources are a read-only file mapping: when converted, the backend may
                               release their pages from the process (madvise DONTNEED; the page cache
                               keeps them), so resident memory holds one copy. Never for heap memory. */
};

/* An executor; each backend's executor struct starts with this head. */
typedef struct {
    mt_backend *be;
    int threads;
} mt_exec;

enum {
    MT_LIN_RELU = 1,   /* y = relu(x W^T + b) */
    MT_LIN_ACCUM = 2   /* y += x W^T + b (residual add fused) */
};

/* One multi-head attention over rows: row r's query (q + r*q_stride, head h
 * at h*head_dim, already scaled) attends to kv_len[r] keys at k[r] + j*kv_stride
 * (+ h*head_dim) and values at v[r] + j*kv_stride; the result goes to
 * out + r*out_stride. Covers encoder self-attention (every row of a sentence
 * points at the sentence's K/V), decoder self-attention (the row's cache) and
 * cross-attention (the sentence's encoder K/V). The k/v pointer arrays and
 * kv_len are host memory; the pointers point into backend memory.
 *
 * new_k/new_v (optional, NULL: the caches already hold every position): row
 * r's key and value for its last position, kv_len[r] - 1, are at new_k +
 * r*new_stride and new_v + r*new_stride (heads * head_dim floats each); the
 * op first writes them into the caches (k[r], v[r] at that position, which
 * must then be writable backend memory) and attends over them. This is the
 * decoder's cache write folded into its attention: on a GPU one dependent
 * kernel per layer fewer, where a separate copy would run between them. */
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
    const float *new_k, *new_v;
    int new_stride;
    /* 1: every key and value was written before this step (cross-attention
     * over the encoder's): a GPU may fetch them all before it waits for
     * the step's previous op. 0 makes no such promise. */
    int kv_static;
} mt_attn_args;

typedef struct {
    const char *name;
    void (*destroy)(mt_backend *be);

    /* ---- weights (immutable once made; made before any executor runs) ----
     * A weight of nparts blocks of part_rows rows each, stacked (Q/K/V fused
     * into one [3d][d] matrix from three tensors), cols wide, in format fmt. */
    stts_status (*weight_new)(mt_backend *be, const mt_wpart *parts, int nparts, int part_rows, int cols, mt_wfmt fmt,
                              int flags, mt_weight **out, stts_error *err);
    /* A new weight of rows ids[0..n) of src, contiguous, same format
     * (the LM-head shortlist: gathered once, never per step). */
    stts_status (*weight_gather)(mt_backend *be, const mt_weight *src, const int32_t *ids, int n, mt_weight **out,
                                 stts_error *err);
    /* Rows [row0, row0 + rows) of w dequantized to host f32 (tests, tools). */
    stts_status (*weight_read)(mt_backend *be, const mt_weight *w, int row0, int rows, float *dst, stts_error *err);
    void (*weight_free)(mt_backend *be, mt_weight *w);

    /* ---- executors ---- threads 0 = the backend's default */
    stts_status (*exec_new)(mt_backend *be, int threads, mt_exec **out, stts_error *err);
    void (*exec_free)(mt_exec *x);

    /* ---- activation memory: n floats; NULL on failure ---- */
    float *(*alloc)(mt_backend *be, size_t n);
    void (*release)(mt_backend *be, float *p);

    /* ---- ops on an executor ---- */
    /* Host <-> backend copies (CPU: memcpy). */
    stts_status (*upload)(mt_exec *x, float *dst, const float *src, size_t n);
    stts_status (*download)(mt_exec *x, float *dst, const float *src, size_t n);
    /* Runs fn(ctx, i) for i in [0, n) on the executor's host threads (host
     * work such as the search's per-row statistics). */
    stts_status (*parallel_for)(mt_exec *x, int n, void (*fn)(void *ctx, int i), void *ctx);
    /* y[M][W->rows] (=, relu, +=) x[M][W->cols] W^T + b (b: 1 x W->rows, may be NULL). */
    stts_status (*linear)(mt_exec *x, const float *in, int M, const mt_weight *W, const mt_weight *b, float *y,
                          int flags);
    /* y[M][D] = LayerNorm(x) * g + b (D = g->cols; biased variance, eps). y may equal x. */
    stts_status (*layernorm)(mt_exec *x, const float *in, int M, const mt_weight *g, const mt_weight *b, float eps,
                             float *y);
    stts_status (*attention)(mt_exec *x, const mt_attn_args *a);
    /* out[r] = table[ids[r]] * scale + sinusoid(pos[r]) (D = table->cols; HF
     * M2M100 layout: sin half then cos half; pos == pad_idx -> zero vector;
     * an int8/bf16 table row is dequantized). pos_round: the sinusoid values
     * rounded through f16 (1) or bf16 (2) first, as HF holds the table in a
     * half-precision checkpoint's dtype; 0 = f32. ids and pos are host memory. */
    stts_status (*embed)(mt_exec *x, const mt_weight *table, const int32_t *ids, const int *pos, int rows,
                         float scale, int pad_idx, int pos_round, float *out);
    /* x[r] *= s over rows of width D at stride (query scaling). */
    stts_status (*scale_cols)(mt_exec *x, float *buf, int rows, int D, int stride, float s);
    /* n floats, backend to backend (KV-cache writes and beam reorder). */
    stts_status (*copy)(mt_exec *x, float *dst, const float *src, size_t n);
    /* 1: backend memory is host memory (the search reads logits in place). */
    int host_visible;
    /* Search selection on the backend, so that logits never cross to the
     * host: per row r of logits[rows][V] (backend memory), the k largest
     * columns, best first (equal values: lower column first), into
     * top[r*k + q], and their log-softmax values into lp[r*k + q], computed
     * as the search computes them on the host: (x - max) - (float)log(sum
     * in double of expf(x - max)). top and lp are host memory. NULL (the CPU
     * backend) or k > select_max_k: the search computes them itself from
     * host-visible or downloaded logits. Called between step_begin and
     * step_end, it is part of the recorded step (after its LM head), and
     * top and lp, which must stay valid until then, are filled by step_end. */
    stts_status (*select_topk)(mt_exec *x, const float *logits, int rows, int V, int k, int32_t *top, float *lp);
    int select_max_k;
    /* Optional (NULL: every op runs when called). Brackets one decoder
     * step: between step_begin and step_end the backend may only record the
     * ops (what changes per step, such as ids, positions, K/V pointers and
     * lengths, going into one small argument block) and run them all at
     * step_end, e.g. as one replayed CUDA graph. Nothing computed inside may
     * be read before step_end. step_end(x, 1) drops the recording (error
     * path) and returns STTS_OK. */
    void (*step_begin)(mt_exec *x);
    stts_status (*step_end)(mt_exec *x, int discard);
    /* Optional: linear (flags without MT_LIN_ACCUM), then the first cols
     * columns of each output row times s, rounded as scale_cols rounds (the
     * query scaling fused into its projection: one pass fewer). NULL: the
     * model calls linear, then scale_cols. */
    stts_status (*linear_scaled)(mt_exec *x, const float *in, int M, const mt_weight *W, const mt_weight *b, float *y,
                                 int flags, int cols, float s);
    /* Optional: y = linear_scaled(LayerNorm(in) (g, gb, eps), ...) (cols 0:
     * plain linear) in one pass where the backend can (the LayerNorm in the
     * GEMV's prologue): the same bits as layernorm then linear_scaled, or,
     * where the backend folds the LayerNorm into W (CUDA, int8 and f16
     * weights: cuda_backend.cu ln_fold_rc), within rounding of them. ln_out
     * (!= in) is the backend's scratch for the normalized rows: its contents
     * afterwards are unspecified. NULL: the model calls them in turn. */
    stts_status (*ln_linear)(mt_exec *x, const float *in, int M, const mt_weight *g, const mt_weight *gb, float eps,
                             float *ln_out, const mt_weight *W, const mt_weight *b, float *y, int flags, int cols,
                             float s);
    /* Optional: count copies of n floats, pairs[2i] = dst and pairs[2i + 1]
     * = src (a host array of backend pointers; no copy overlaps another), in
     * one launch where the backend can: the beam reorder copies a slot's
     * keys and values in every layer, 2 x layers copies that would each be a
     * separate device copy. Outside step_begin/step_end. NULL: the model
     * calls copy for each. */
    stts_status (*copy_many)(mt_exec *x, const float *const *pairs, int count, size_t n);

    /* ---- greedy ahead of its results (optional, all four or none) ----
     * A device backend's greedy search need not wait for a step's choice
     * before it submits the next step: the choice stays on the device and
     * the next step's embedding reads it there, so the host's round trip
     * (copy back, wake-up, recording, upload, launch) overlaps the device's
     * work instead of sitting between two steps. search.c's greedy_ahead
     * uses these when greedy_ahead (struct mt_backend) is set.
     *
     * select_map: column c of the logits the next select_ahead calls see is
     * token ids[c] (the shortlist's map; ids NULL: column c is token c).
     * select_ahead: select_topk with k = 1 on rows of logits[rows][V]; the
     * chosen token id of row r stays on the device for embed_fed, and the
     * (column, log-softmax) pairs go to host memory under ticket (0 or 1)
     * without a wait; called between step_begin and step_end it is part of the
 * recorded step (after its LM head). select_collect: waits for that ticket's pairs and
     * copies them into top[rows], lp[rows]; the same values select_topk
     * would have returned.
     * embed_fed: embed whose row r takes the id the last select_ahead chose
     * for its row from_row[r]; pos[r] is the position for a non-pad id (a
     * pad id gets pad_idx, as forward.c's position rule). */
    stts_status (*select_map)(mt_exec *x, const int32_t *ids, int n);
    stts_status (*select_ahead)(mt_exec *x, const float *logits, int rows, int V, int ticket);
    stts_status (*select_collect)(mt_exec *x, int ticket, int rows, int32_t *top, float *lp);
    stts_status (*embed_fed)(mt_exec *x, const mt_weight *table, const int *from_row, const int *pos, int rows,
                             float scale, int pad_idx, int pos_round, float *out);

    /* ---- the cross-attention folded into its projections (optional, both or none) ----
     * A decode step's cross-attention is three dependent passes (the query's
     * LayerNorm Linear, the attention, the output projection), over keys
     * and values that are fixed for the sentence. Folding the query
     * projection into the keys and the output projection into the values
     * leaves two: scores = LN(x) M^T + c, then y += softmax(scores) Nt^T + bo
     * (docs/ENGINE.md "The cross-attention folded"). Not the same bits as the
     * three passes (the sums run in another order), so forward.c uses it
     * only where exact parity is not asked for (not f32 weights).
     * cross_fold_prepare: for one sentence of S <= cross_fold_max_s
     * positions, every one of `layers` (<= 32) decoder layers at once: layer l's
     * keys at k + l * kv_layer and values at v + l * kv_layer (rows at
     * kv_stride floats), H heads, its query projection Wq[l], bq[l] (may be
     * NULL) times qs and output projection Wo[l] -> M + l * m_layer ([H*S][d]),
     * c + l * c_layer ([H*S]), Nt + l * m_layer ([d][H*S]) (backend buffers).
     * Outside step_begin/step_end.
     * cross_fold_attend: ln_out = LayerNorm(in) (g, gb, eps), scores [R][H*S]
     * = ln_out M^T + c, y[R][d] += softmax per head of the scores, times
     * Nt^T, + bo. H * S must be a multiple of 4. */
    stts_status (*cross_fold_prepare)(mt_exec *x, int layers, const float *k, const float *v, int kv_stride,
                                      size_t kv_layer, int S, int H, const mt_weight *const *Wq,
                                      const mt_weight *const *bq, float qs, const mt_weight *const *Wo, float *M,
                                      float *c, float *Nt, size_t m_layer, size_t c_layer);
    stts_status (*cross_fold_attend)(mt_exec *x, const float *in, int R, const mt_weight *g, const mt_weight *gb,
                                     float eps, float *ln_out, const float *M, const float *c, const float *Nt, int H,
                                     int S, float *scores, const mt_weight *bo, float *y);
    /* the most positions and rows a fold takes (longer sentences and more
     * rows: the three passes) */
    int cross_fold_max_s, cross_fold_max_rows;
} mt_backend_ops;

struct mt_backend {
    const mt_backend_ops *ops;
    int threads;      /* default executor threads */
    char desc[64];    /* "cpu avx2 x2" */
    int greedy_ahead; /* 1: greedy runs a step ahead (the four ops above; CUDA unless STTS_CUDA_AHEAD=0) */
    /* 1: a step's rows may be two positions of one slot (mt_decode_prefill),
     * each attending to the other's new key and value: the CPU writes every
     * row's before any row reads; CUDA runs such rows' attention in two
     * launches (attention_waves). */
    int prefill_ok;
};

/* The CPU backend. threads 0 = online cores; simd: the nllb_simd values (int
 * to keep this header free of the public one); a level this CPU lacks is an
 * error naming it. max_kv bounds kv_len in attention (per-thread score
 * scratch is sized once per executor). */
stts_status mt_cpu_backend_new(int threads, int simd, int max_kv, mt_backend **out, stts_error *err);

#endif
