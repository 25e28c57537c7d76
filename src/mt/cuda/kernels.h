/* kernels.h - the CUDA kernels of the NLLB engine behind a plain C API
 * (host launchers; every pointer is device memory unless it says host).
 * The launchers only enqueue work on `stream` (a cudaStream_t passed as
 * void *, so C code needs no CUDA header); they return 0 or a cudaError_t
 * code from the launch. Shapes follow backend.h: row-major, Linear weights
 * in HF's [out][in] layout, activations f32.
 *
 * Weight formats of the GEMV kernels: f32 (parity), bf16 and f16 (uint16
 * bit patterns, rounded from f32 at load as quant.h / the CPU backend do)
 * and int8 with one f32 scale per output row (quant.h: w = q * scale;
 * weight-only: activations stay f32). The GEMV streams
 * each weight row once for up to MTK_GEMV_MAX_ROWS activation rows; more
 * rows are processed in groups of that many. */
#ifndef MT_CUDA_KERNELS_H
#define MT_CUDA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MTK_GEMV_MAX_ROWS 8

enum { MTK_W_F32 = 0, MTK_W_BF16 = 1, MTK_W_I8 = 2, MTK_W_F16 = 3 };
enum { MTK_RELU = 1, MTK_ACCUM = 2 }; /* same bits as MT_LIN_RELU / MT_LIN_ACCUM */
/* The bf16-activation rule (MTK_ACT_BF16 in a GEMV's flags, act_bf16 for
 * the other kernels): outputs rounded to bf16 (nearest, ties to even)
 * where HF transformers' bf16 model rounds them: every Linear's output
 * (bias and ReLU included), every residual add (of the rounded product),
 * every LayerNorm (the GEMV's prologue too), the attention's output, the
 * embedding after its scaling and after the position add. The CUDA backend
 * uses it for bf16 models, so that they follow HF's bf16 arithmetic. */
enum { MTK_ACT_BF16 = 4 };

/* y[M][N] (=, relu, +=) x[M][K] W[N][K]^T + b[N]. W's element type is
 * wfmt; scales [N] only for MTK_W_I8; b may be NULL. K must be a multiple
 * of 8 (every NLLB shape is). */
int mtk_linear(void *stream, const float *x, int M, int K, const void *W, int wfmt, const float *scales, int N,
               const float *b, float *y, int flags);

/* More than MTK_GEMV_MAX_ROWS rows of bf16 weights with MTK_ACT_BF16 go to
 * a tensor-core GEMM (kernels.cu) unless disabled: mtk_gemm_enable(0), or
 * STTS_CUDA_GEMM=0 in the environment. mtk_gemm_calls: launches so far
 * (tests check the path they mean to cover ran). */
void mtk_gemm_enable(int on);
/* Weight rows a warp in the GEMV (tests, A/B): from one_row_min_n output
 * columns two at one input row, from rows_min_n several at 2-8 rows (the
 * same bits either way); 0 never, -1 back to the defaults (the latter's by
 * weight format) or the environment (STTS_CUDA_RPW_MIN_N,
 * STTS_CUDA_RPW_ROWS_MIN_N). */
void mtk_gemv_rows_per_warp(int one_row_min_n, int rows_min_n);
unsigned long mtk_gemm_calls(void);

/* Attention with head sizes 32, 64 and 128 runs one warp per (head, row)
 * (kernels.cu attention_warp_kernel, the same bits as the 128-thread
 * kernel) unless disabled: mtk_attention_warp_enable(0), or
 * STTS_CUDA_ATT_WARP=0. mtk_attention_warp_calls: its launches so far. */
void mtk_attention_warp_enable(int on);
unsigned long mtk_attention_warp_calls(void);

/* mtk_linear, then y[m][0..qcols) *= qs (rounded as mtk_scale_cols does:
 * the query scaling fused into its projection); not with MTK_ACCUM. */
int mtk_linear_scaled(void *stream, const float *x, int M, int K, const void *W, int wfmt, const float *scales, int N,
                      const float *b, float *y, int flags, int qcols, float qs);

/* ln_out = LayerNorm(x) (g, gb, eps; mtk_layernorm's bits) and y =
 * mtk_linear_scaled(ln_out, ...) in one launch per 8 rows: each block
 * normalizes the rows as it loads them; ln_out (not x) is written for other
 * readers. */
/* The number of warps a GEMV kernel gives each row of K columns in format
 * wfmt (1, 2, 4, 8): the split decides the dot products' summation order
 * (the step program runs a GEMV only where its split is the same). */
int mtk_gemv_split(int K, int wfmt);

int mtk_ln_linear(void *stream, const float *x, int M, int K, const float *g, const float *gb, float eps,
                  float *ln_out, const void *W, int wfmt, const float *scales, int N, const float *b, float *y,
                  int flags, int qcols, float qs);

/* The LayerNorm folded into the weights (no bf16 rounding of the
 * normalized rows before the products, other sums than mtk_ln_linear; the
 * CUDA backend decides where, cuda_backend.cu): with rc [2][N] from
 * mtk_ln_fold_prepare for these W, g and gb,
 *   y = ((g * x) W^T - mean(x) rc[0]) / std(x) + rc[1] + b
 * so that a block's dot products need not wait for the row's statistics.
 * ln_out is not written (backend.h ln_linear: its contents afterwards are
 * unspecified). */
int mtk_ln_linear_folded(void *stream, const float *x, int M, int K, const float *g, const float *gb, float eps,
                         float *ln_out, const void *W, int wfmt, const float *scales, int N, const float *b, float *y,
                         int flags, int qcols, float qs, const float *rc);
/* rc[0][n] = sum_k W[n][k] g[k], rc[1][n] = sum_k W[n][k] gb[k] (the int8
 * row scale applied); tmp: device scratch of 2K floats. */
int mtk_ln_fold_prepare(void *stream, const void *W, int wfmt, const float *scales, int N, int K, const float *g,
                        const float *gb, float *tmp, float *rc);

/* y[M][D] = LayerNorm(x) * g + b (biased variance); y may equal x. */
int mtk_layernorm(void *stream, const float *x, int M, int D, const float *g, const float *b, float eps, float *y,
                  int act_bf16);

/* mt_attn_args' new_k/new_v: the last position's keys and values, written
 * into the caches by the attention kernel (k NULL: none). */
typedef struct {
    const float *k, *v;
    int stride;
} mtk_new_kv;

/* Multi-head attention as mt_attn_args, with the per-row key/value pointers
 * and lengths in device arrays k[rows], v[rows], kv_len[rows]; max_kv bounds
 * every kv_len (shared memory for the scores). old_kv: every position but
 * each row's last was written before the previous kernel (a decode step's
 * caches and the encoder's keys): those are read before the kernel waits
 * for its predecessor (programmatic dependent launch); 2: every position,
 * the last too (cross-attention over the encoder's keys and values). */
int mtk_attention(void *stream, int rows, int heads, int head_dim, const float *q, int q_stride,
                  const float *const *k, const float *const *v, const int *kv_len, int kv_stride, float *out,
                  int out_stride, int max_kv, int old_kv, const mtk_new_kv *nkv, int act_bf16);

/* The cross-attention folded into its projections (kernels.cu; forward.c
 * decides where): for one sentence's S <= MTK_FOLD_MAX_S encoder positions
 * (keys k, values v: rows at kv_stride floats), heads x head_dim = D, the
 * query projection Wq [D][D] (+ bq, times the query scaling qs) and the
 * output projection Wo [D][D] (formats and int8 scales as mtk_linear), per
 * decoder layer:
 *   M[h*S + j][i]  = qs sum_e k[j][h*hd + e] Wq[h*hd + e][i]   ([H*S][D])
 *   c[h*S + j]     = qs sum_e bq[h*hd + e] k[j][h*hd + e]      (bq may be NULL)
 *   Nt[n][h*S + j] = sum_e Wo[n][h*hd + e] v[j][h*hd + e]      ([D][H*S])
 * so that a row's scores are LN(x) M^T + c (an mtk_ln_linear with f32
 * weights M), and its attention output projected is mtk_cross_fold_apply. */
#define MTK_FOLD_MAX_S 64
/* Every layer's in one launch: layer l's keys and values at k, v + l *
 * kv_layer, its M and Nt at + l * m_layer, its c at + l * c_layer, its
 * weights from w (one weight format per projection across layers). */
#define MTK_FOLD_MAX_LAYERS 32
typedef struct {
    const void *wq[MTK_FOLD_MAX_LAYERS], *wo[MTK_FOLD_MAX_LAYERS];
    const float *qsc[MTK_FOLD_MAX_LAYERS], *osc[MTK_FOLD_MAX_LAYERS], *bq[MTK_FOLD_MAX_LAYERS];
} mtk_fold_weights;
int mtk_cross_fold_prepare(void *stream, int layers, const float *k, const float *v, int kv_stride, size_t kv_layer,
                           int S, int heads, int head_dim, const mtk_fold_weights *w, int qfmt, int ofmt, float qs,
                           float *M, float *c, float *Nt, size_t m_layer, size_t c_layer);
/* y[r][D] (=, += with MTK_ACCUM) sum_c Nt[n][c] p[r][c] + bo[n], where p[r]
 * is scores[r][H*S] with a softmax over each head's S values (flags:
 * MTK_ACCUM, MTK_ACT_BF16). heads * S must be a multiple of 4. */
int mtk_cross_fold_apply(void *stream, const float *scores, int rows, int heads, int S, const float *Nt, int D,
                         const float *bo, float *y, int flags);
/* Launches of mtk_cross_fold_apply so far (graph captures count once; tests
 * check the folded path ran). */
unsigned long mtk_cross_fold_apply_calls(void);

/* Up to MTK_INLINE_ROWS rows of per-row arguments passed by value in the
 * kernel's parameters (no host-to-device copy per call: decode steps). */
#define MTK_INLINE_ROWS 32
typedef struct {
    const float *k[MTK_INLINE_ROWS];
    const float *v[MTK_INLINE_ROWS];
    int len[MTK_INLINE_ROWS];
} mtk_kv_rows;
typedef struct {
    int32_t ids[MTK_INLINE_ROWS];
    int pos[MTK_INLINE_ROWS];
} mtk_embed_rows;

/* mtk_attention with rows <= MTK_INLINE_ROWS and the per-row arguments in a
 * host struct (copied into the launch). */
int mtk_attention_inline(void *stream, int rows, int heads, int head_dim, const float *q, int q_stride,
                         const mtk_kv_rows *a, int kv_stride, float *out, int out_stride, int max_kv, int old_kv,
                         const mtk_new_kv *nkv, int act_bf16);
/* mtk_embed with rows <= MTK_INLINE_ROWS and ids/pos in a host struct. */
int mtk_embed_inline(void *stream, const void *table, int tfmt, const float *tscales, int D, const mtk_embed_rows *a,
                     int rows, float scale, int pad_idx, const float *pos_table, float *out, int act_bf16);

/* out[r] = table[ids[r]] * scale + pos_table[pos[r]] (pos == pad_idx: no
 * position term). table rows in format tfmt (int8: tscales per row) are
 * widened/dequantized first. pos_table [positions][D] is precomputed on the
 * host with the CPU backend's formula and rounding, so both give the same
 * bits. feed (device, may be NULL): ids[r] is an index into feed, whose
 * value is the id (mtk_select_topk's feed: greedy ahead), and a pad id
 * there takes position pad_idx. */
int mtk_embed(void *stream, const void *table, int tfmt, const float *tscales, int D, const int32_t *ids,
              const int *pos, int rows, float scale, int pad_idx, const float *pos_table, float *out, int act_bf16,
              const int32_t *feed);

/* dst row i = src row ids[i] (row_bytes each, a multiple of 4), n rows. */
int mtk_gather_rows(void *stream, const void *src, const int32_t *ids, int n, size_t row_bytes, void *dst);

/* count copies of n floats; pairs (device) = {dst0, src0, dst1, src1, ...}. */
int mtk_copy_list(void *stream, const float *const *pairs, int count, size_t n);

/* x[r][0..D) *= s for rows at stride. */
int mtk_scale_cols(void *stream, float *x, int rows, int D, int stride, float s);

/* ids[r] = argmax over logits[r][0..V) (lowest index on ties, as the CPU
 * search; NaN never wins). */
int mtk_argmax(void *stream, const float *logits, int rows, int V, int32_t *ids);

/* Per row: the k (<= 16) largest log-softmax values of logits[r][0..V) and
 * their ids, best first (ties: lower id first) -> val[r][k], idx[r][k]. */
int mtk_topk_logsoftmax(void *stream, const float *logits, int rows, int V, int k, float *val, int32_t *idx);

/* The search's selection (backend.h select_topk), k <= MTK_SELECT_MAX_K:
 * per row the k largest logits (ties: lower column), best first, ->
 * idx[r][k], and their log-softmax values with the CPU search's arithmetic
 * -> lp[r][k]. */
#define MTK_SELECT_MAX_K 16
/* feed (device, may be NULL): feed[r] = the best column's token id (map[col],
 * or col with map NULL), for the next step's mtk_embed to read. */
int mtk_select_topk(void *stream, const float *logits, int rows, int V, int k, int32_t *idx, float *lp,
                    void *scratch, const int32_t *map, int32_t *feed);
/* Device scratch mtk_select_topk needs for rows x V, k (one per stream: the
 * call keeps per-row counters in it until its kernels finish). */
size_t mtk_select_scratch_bytes(int rows, int V, int k);

/* The kernel trace (STTS_CUDA_KTRACE=1): every kernel stamps the time its
 * wait for its predecessor returned (device_common.cuh); the host keeps the
 * order in which kernels were submitted, graphs included, so each stamp is
 * matched with its kernel. mtk_ktrace_report prints, per step graph, each
 * kernel kind's share of the graph's critical path (stderr). A debugging
 * tool: not for concurrent executors. */
int mtk_ktrace_enabled(void);
/* Between these two, launches are being captured into a graph: they are
 * noted as the graph's, not as run. Returns the captured count and a
 * malloc'd list of kernel ids (*out; the caller frees it). */
void mtk_ktrace_capture_begin(void);
int mtk_ktrace_capture_end(const void ***out);
/* A graph of n captured kernels (ids from capture_end) was launched. */
void mtk_ktrace_graph_launched(int graph, const void *const *ids, int n);
/* Waits for the device, then prints the report and resets the trace. */
void mtk_ktrace_report(void);

#ifdef __cplusplus
}
#endif

#endif
