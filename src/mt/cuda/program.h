/* program.h - a recorded decode step's ops run by one persistent kernel
 * (program.cu), instead of one kernel per op.
 *
 * A step of the 600M model is ~100 dependent ops of ~0.5 us of work each;
 * as kernels, each pays a launch, a ramp-up and a drain (~6.7 us per op on
 * the H200 even with PDL and graphs). A program runs them all in one
 * cooperative launch of one or two blocks per SM: the blocks meet at a
 * grid-wide barrier between ops, and every block streams the weight tiles
 * of its coming GEMV work into a ring of shared-memory slots ahead of time,
 * across op boundaries. The ops compute with the kernels' own arithmetic
 * (device_common.cuh): a program gives the same bits as the same ops
 * launched as kernels (test_cuda checks it for every weight format).
 *
 * Status: correct, but slower than the kernels on the H200 (see
 * program.cu), so the CUDA backend uses it only with STTS_CUDA_PROGRAM=1;
 * its per-op profile (STTS_CUDA_PROGRAM_PROFILE=1) shows where a step's
 * time goes op by op.
 *
 * Pointers are device memory, and every op's arguments are fixed when the
 * program is made (a graph's records; what changes per step is read from
 * device memory the ops point to). */
#ifndef MT_CUDA_PROGRAM_H
#define MT_CUDA_PROGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { MTK_OP_GEMV = 1, MTK_OP_ATTN, MTK_OP_EMBED, MTK_OP_LN, MTK_OP_COPY };

/* mtk_ln_linear / mtk_linear_scaled: y[rows][N] (=, relu, +=)
 * LN?(x)[rows][K] W^T + b, the first qcols columns times qs. ln_g NULL: no
 * LayerNorm (ln_b, ln_eps, ln_out unused). split and tiles are filled by
 * mtk_program_new. */
typedef struct {
    const float *x;
    int K;
    const void *W;
    const float *scales;
    int N;
    const float *b;
    float *y;
    int flags, qcols;
    float qs;
    const float *ln_g, *ln_b;
    float ln_eps;
    float *ln_out;
    int split, tiles;
} mtk_gemv_op;

/* mtk_attention of a decode step (old_kv), rows = the op's rows. */
typedef struct {
    int heads, head_dim;
    const float *q;
    int q_stride;
    const float *const *k;
    const float *const *v;
    const int *kv_len;
    int kv_stride;
    float *out;
    int out_stride, max_kv;
    mtk_new_kv nkv;
} mtk_attn_op;

/* mtk_embed (ids and pos: device arrays of rows). */
typedef struct {
    const void *table;
    int fmt;
    const float *tscales;
    int D;
    const int32_t *ids;
    const int *pos;
    float scale;
    int pad_idx;
    const float *pos_table;
    float *out;
} mtk_embed_op;

/* mtk_layernorm. */
typedef struct {
    const float *x;
    int D;
    const float *g, *b;
    float eps;
    float *y;
} mtk_ln_op;

/* mtk_copy_list. */
typedef struct {
    const float *const *pairs;
    int count;
    size_t n;
} mtk_copy_op;

typedef struct {
    int kind, rows;
    union {
        mtk_gemv_op gemv;
        mtk_attn_op attn;
        mtk_embed_op embed;
        mtk_ln_op ln;
        mtk_copy_op copy;
    } u;
} mtk_prog_op;

typedef struct mtk_program mtk_program;

/* Whether a program of GEMV weight format wfmt can run op (its kind and
 * shape limits: rows <= MTK_GEMV_MAX_ROWS, rows of at most 16 KB, 16-byte
 * aligned rows and inputs, LayerNorm rows of at most 2048, head_dim <= 128;
 * and the device: cooperative launch on sm_90). 0: run it as a kernel. */
int mtk_program_accepts(const mtk_prog_op *op, int wfmt);

/* A program of n ops (every GEMV in format wfmt), uploaded to the device
 * (synchronous; not while a stream is being captured). 0 or a cudaError_t
 * code; *out NULL on error. */
int mtk_program_new(const mtk_prog_op *ops, int n, int wfmt, mtk_program **out);

/* Enqueues the program on stream (capturable into a graph). Launches of one
 * program must not overlap: it keeps its barrier counter in its own memory
 * (one program per recorded step graph, replayed on one stream). */
int mtk_program_launch(void *stream, const mtk_program *p);

void mtk_program_free(mtk_program *p);

/* Blocks, shared-memory ring slots and bytes of the launch (tests, traces). */
void mtk_program_shape(const mtk_program *p, int *blocks, int *slots, size_t *smem);

/* STTS_CUDA_PROGRAM_PROFILE=1 when the program was made: per op i, the
 * mean times per launch seen by block 0: us[3i] the op from barrier to
 * barrier, us[3i + 1] its GEMV input staging (and LayerNorm), us[3i + 2]
 * its wait at the barrier after it (the slowest block and the barrier
 * itself). Returns the launches counted (0: no profile). */
int mtk_program_profile(const mtk_program *p, double *us);

#ifdef __cplusplus
}
#endif

#endif
