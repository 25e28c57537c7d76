/* test_cuda.c - the CUDA backend against references, on a GPU (skips with
 * exit 77 and the reason when there is none; built only with STTS_CUDA).
 *   kernels: GEMV (f32, bf16, int8 weights; 1-13 rows; relu/accumulate)
 *   against a double-precision reference on the same (dequantized)
 *   weights; LayerNorm, attention and embedding against the CPU backend's
 *   ops on the same inputs (embedding bit for bit); argmax and top-k
 *   log-softmax against a host scan, with planted ties and NaN.
 *   step programs: one recorded decoder-like step run as a persistent
 *   kernel (program.h) gives the same bits as its ops run as kernels, for
 *   every weight format and 1, 3 and 8 rows.
 *   bf16 activations: on a backend with mt_cuda_backend_set_bf16_activations,
 *   linear, linear + residual, LayerNorm and attention give the f32
 *   outputs of a backend without it rounded to bf16 (the residual add
 *   rounding the rounded product's sum).
 *   several weight rows a warp: the same bits as one row a warp, every
 *   format, 1-8 rows, bf16 activations or not.
 *   engine: on every tiny fixture model (tests/fixtures/mt), greedy and
 *   beam-4 ids of the GPU model identical to the CPU model's.
 *
 *   test_cuda --only a,b runs only those cases (sanitizer runs).
 *   test_cuda --demo MODEL_DIR TEXT_FILE OUT_PREFIX (scripts/device): the
 *   same comparison on every line of TEXT_FILE (eng_Latn -> jpn_Jpan, at
 *   most 64 new tokens as scripts/demo-model/evaluate.py), writing the GPU
 *   outputs to OUT_PREFIX-greedy.jsonl and OUT_PREFIX-beam4.jsonl.
 * STTS_TEST_SOURCE_DIR overrides the source tree (fixtures) built in. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cuda/cuda_backend.h"
#include "cuda/kernels.h"
#include "model.h"
#include "nllb.h"
#include "quant.h"
#include "test.h"

static mt_backend *gpu, *cpu;
static mt_exec *gx, *cx; /* one executor on each */
static void *stream;
static uint64_t rng = 88172645463325252ull;

static float urand(void) { /* uniform [-1, 1) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

static float *dev_of(const void *host, size_t bytes) {
    size_t n = (bytes + 3) / 4;
    float *d = gpu->ops->alloc(gpu, n);
    if (d && host) CHECK(gpu->ops->upload(gx, d, (const float *)host, bytes / 4) == STTS_OK);
    return d;
}

static void fetch(float *dst, const float *src, size_t n) { CHECK(gpu->ops->download(gx, dst, src, n) == STTS_OK); }

/* A weight from host f32 [rows][cols] on backend be in format fmt. */
static mt_weight *wnew(mt_backend *be, const float *host, int rows, int cols, mt_wfmt fmt) {
    mt_wpart part = {MT_DTYPE_F32, host, NULL, 0};
    mt_weight *w = NULL;
    stts_error e;
    stts_status st = be->ops->weight_new(be, &part, 1, rows, cols, fmt, 0, &w, &e);
    CHECK_MSG(st == STTS_OK, "weight_new: %s", e.msg);
    return w;
}

/* ---- GEMV (through the backend's linear op and weight handles) ---- */
static void linear_case(mt_wfmt fmt, int M, int K, int N, int flags) {
    float *W = malloc(sizeof(float) * (size_t)N * K), *Wd = malloc(sizeof(float) * (size_t)N * K);
    float *Wc = malloc(sizeof(float) * (size_t)N * K);
    float *x = malloc(sizeof(float) * (size_t)M * K), *b = malloc(sizeof(float) * (size_t)N);
    float *y0 = malloc(sizeof(float) * (size_t)M * N), *y = malloc(sizeof(float) * (size_t)M * N);
    for (size_t i = 0; i < (size_t)N * K; i++) W[i] = urand() * 0.05f;
    for (size_t i = 0; i < (size_t)M * K; i++) x[i] = urand();
    for (int i = 0; i < N; i++) b[i] = urand() * 0.1f;
    for (size_t i = 0; i < (size_t)M * N; i++) y0[i] = (flags & MT_LIN_ACCUM) ? urand() : NAN; /* NaN: unwritten shows */
    mt_weight *gw = wnew(gpu, W, N, K, fmt), *gb = wnew(gpu, b, 1, N, MT_WF_F32), *cw = wnew(cpu, W, N, K, fmt);
    stts_error e;
    if (!gw || !gb || !cw) return;
    /* the GPU's conversion is the CPU's: same dequantized weights, bit for bit */
    CHECK(gpu->ops->weight_read(gpu, gw, 0, N, Wd, &e) == STTS_OK);
    CHECK(cpu->ops->weight_read(cpu, cw, 0, N, Wc, &e) == STTS_OK);
    CHECK_MSG(memcmp(Wd, Wc, sizeof(float) * (size_t)N * K) == 0, "%s weights differ from the CPU backend's",
              mt_wfmt_name(fmt));
    float *dx = dev_of(x, sizeof(float) * (size_t)M * K), *dy = dev_of(y0, sizeof(float) * (size_t)M * N);
    CHECK(gpu->ops->linear(gx, dx, M, gw, gb, dy, flags) == STTS_OK);
    fetch(y, dy, (size_t)M * N);
    double worst = 0, scale = 1e-30;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = b[n];
            for (int k = 0; k < K; k++) s += (double)x[(size_t)m * K + k] * Wd[(size_t)n * K + k];
            if (flags & MT_LIN_RELU) s = s > 0 ? s : 0;
            if (flags & MT_LIN_ACCUM) s += y0[(size_t)m * N + n];
            double g = y[(size_t)m * N + n];
            double d = isnan(g) ? INFINITY : fabs(g - s);
            worst = fmax(worst, d);
            scale = fmax(scale, fabs(s));
        }
    CHECK_MSG(worst / scale < 2e-6, "%s M %d K %d N %d flags %d: max |err| / max |ref| = %.3g", mt_wfmt_name(fmt), M,
              K, N, flags, worst / scale);
    gpu->ops->weight_free(gpu, gw), gpu->ops->weight_free(gpu, gb), cpu->ops->weight_free(cpu, cw);
    gpu->ops->release(gpu, dx), gpu->ops->release(gpu, dy);
    free(W), free(Wd), free(Wc), free(x), free(b), free(y0), free(y);
}

static void test_linear(void) {
    /* N 37 and 1000 with K 1024: 4 warps per row (split K); N 4096: 2 warps per row (one wave of threads);
     * K 64 or N 16411: one warp per row */
    /* more than 8 rows go in groups of 8, a launch each: 13 = 8 + 5, 20 = 8 + 8 + 4
     * (the encoder's shape), 24 = 3 x 8 */
    const int Ms[] = {1, 2, 5, 8, 13, 20, 24}, Ks[] = {64, 1024}, Ns[] = {37, 1000};
    const mt_wfmt fmts[] = {MT_WF_F32, MT_WF_BF16, MT_WF_F16, MT_WF_I8};
    for (int f = 0; f < 4; f++) {
        for (int a = 0; a < 7; a++)
            for (int k = 0; k < 2; k++)
                for (int n = 0; n < 2; n++)
                    for (int fl = 0; fl < 3; fl++) linear_case(fmts[f], Ms[a], Ks[k], Ns[n], fl);
        linear_case(fmts[f], 3, 1024, 16411, MT_LIN_ACCUM);
        linear_case(fmts[f], 5, 1024, 4096, MT_LIN_RELU);
        linear_case(fmts[f], 1, 1024, 3072, 0);
        /* one row, 3072+ columns: two weight rows a warp (gemv_rpw_min_n),
         * a last block whose second rows are missing (3077 = 192 x 16 + 5) */
        linear_case(fmts[f], 1, 1024, 3077, MT_LIN_ACCUM);
    }
}

/* linear_scaled (the query scaling fused into the projection) gives the
 * bits of linear then scale_cols. */
static void test_linear_scaled(void) {
    enum { M = 3, K = 1024, N = 3072, Q = 1024 };
    float *w = malloc(sizeof(float) * N * K), *x = malloc(sizeof(float) * M * K), *bb = malloc(sizeof(float) * N);
    for (size_t i = 0; i < (size_t)N * K; i++) w[i] = urand() * 0.05f;
    for (int i = 0; i < M * K; i++) x[i] = urand();
    for (int i = 0; i < N; i++) bb[i] = urand();
    mt_weight *W = wnew(gpu, w, N, K, MT_WF_BF16), *B = wnew(gpu, bb, 1, N, MT_WF_F32);
    float *dx = dev_of(x, sizeof(float) * M * K), *y1 = dev_of(NULL, sizeof(float) * M * N);
    float *y2 = dev_of(NULL, sizeof(float) * M * N);
    CHECK(gpu->ops->linear_scaled != NULL);
    CHECK(gpu->ops->linear(gx, dx, M, W, B, y1, 0) == STTS_OK);
    CHECK(gpu->ops->scale_cols(gx, y1, M, Q, N, 0.125f) == STTS_OK);
    CHECK(gpu->ops->linear_scaled(gx, dx, M, W, B, y2, 0, Q, 0.125f) == STTS_OK);
    float *h1 = malloc(sizeof(float) * M * N), *h2 = malloc(sizeof(float) * M * N);
    fetch(h1, y1, (size_t)M * N);
    fetch(h2, y2, (size_t)M * N);
    CHECK_MSG(memcmp(h1, h2, sizeof(float) * M * N) == 0, "linear_scaled differs from linear + scale_cols");
    gpu->ops->weight_free(gpu, W), gpu->ops->weight_free(gpu, B);
    gpu->ops->release(gpu, dx), gpu->ops->release(gpu, y1), gpu->ops->release(gpu, y2);
    free(w), free(x), free(bb), free(h1), free(h2);
}

/* ln_linear (LayerNorm in the GEMV's prologue) gives the bits of layernorm
 * then linear / linear_scaled, normalized rows included; 1, 11 and 20 rows
 * (groups of 8, a launch each), split-K 4, 2 and 1 warps per row. */
static void ln_linear_case(int M, int K, int N, int flags, int cols, mt_wfmt fmt) {
    float *w = malloc(sizeof(float) * N * K), *x = malloc(sizeof(float) * M * K), *bb = malloc(sizeof(float) * N);
    float *g = malloc(sizeof(float) * K), *gb = malloc(sizeof(float) * K);
    for (size_t i = 0; i < (size_t)N * K; i++) w[i] = urand() * 0.05f;
    for (int i = 0; i < M * K; i++) x[i] = urand() * 3 + 0.5f;
    for (int i = 0; i < N; i++) bb[i] = urand();
    for (int i = 0; i < K; i++) g[i] = 1 + urand() * 0.2f, gb[i] = urand() * 0.1f;
    mt_weight *W = wnew(gpu, w, N, K, fmt), *B = wnew(gpu, bb, 1, N, MT_WF_F32);
    mt_weight *G = wnew(gpu, g, 1, K, MT_WF_F32), *GB = wnew(gpu, gb, 1, K, MT_WF_F32);
    float *dx = dev_of(x, sizeof(float) * M * K), *h1 = dev_of(NULL, sizeof(float) * M * K);
    float *h2 = dev_of(NULL, sizeof(float) * M * K);
    float *y1 = dev_of(NULL, sizeof(float) * M * N), *y2 = dev_of(NULL, sizeof(float) * M * N);
    CHECK(gpu->ops->ln_linear != NULL);
    CHECK(gpu->ops->layernorm(gx, dx, M, G, GB, 1e-5f, h1) == STTS_OK);
    if (cols) CHECK(gpu->ops->linear_scaled(gx, h1, M, W, B, y1, flags, cols, 0.125f) == STTS_OK);
    else CHECK(gpu->ops->linear(gx, h1, M, W, B, y1, flags) == STTS_OK);
    CHECK(gpu->ops->ln_linear(gx, dx, M, G, GB, 1e-5f, h2, W, B, y2, flags, cols, 0.125f) == STTS_OK);
    float *a = malloc(sizeof(float) * M * (K > N ? K : N)), *b = malloc(sizeof(float) * M * (K > N ? K : N));
    fetch(a, h1, (size_t)M * K);
    fetch(b, h2, (size_t)M * K);
    CHECK_MSG(memcmp(a, b, sizeof(float) * M * K) == 0, "ln_linear %d x %d x %d: normalized rows differ", M, K, N);
    fetch(a, y1, (size_t)M * N);
    fetch(b, y2, (size_t)M * N);
    CHECK_MSG(memcmp(a, b, sizeof(float) * M * N) == 0, "ln_linear %d x %d x %d (%s): outputs differ", M, K, N,
              mt_wfmt_name(fmt));
    gpu->ops->weight_free(gpu, W), gpu->ops->weight_free(gpu, B), gpu->ops->weight_free(gpu, G);
    gpu->ops->weight_free(gpu, GB);
    gpu->ops->release(gpu, dx), gpu->ops->release(gpu, h1), gpu->ops->release(gpu, h2);
    gpu->ops->release(gpu, y1), gpu->ops->release(gpu, y2);
    free(w), free(x), free(bb), free(g), free(gb), free(a), free(b);
}

static void test_ln_linear(void) {
    mt_cuda_ln_fold_force(0); /* these are the unfolded bits; test_ln_fold has the folded ones */
    ln_linear_case(1, 1024, 3072, 0, 1024, MT_WF_BF16);
    ln_linear_case(11, 1024, 1024, 0, 1024, MT_WF_F32);
    ln_linear_case(20, 1024, 4096, MT_LIN_RELU, 0, MT_WF_BF16); /* the encoder's fc1 shape: 8 + 8 + 4 rows */
    ln_linear_case(1, 1024, 4096, MT_LIN_RELU, 0, MT_WF_I8);
    ln_linear_case(1, 1024, 3085, MT_LIN_RELU, 0, MT_WF_BF16); /* two rows a warp, a partial last block */
    ln_linear_case(3, 256, 20000, 0, 0, MT_WF_F16);
    mt_cuda_ln_fold_force(-1);
}

/* LayerNorm of one row in double (eps 1e-5): the references' normalized row. */
static void ref_layernorm(const float *x, int K, const float *g, const float *gb, double *out) {
    double mu = 0, var = 0;
    for (int k = 0; k < K; k++) mu += x[k];
    mu /= K;
    for (int k = 0; k < K; k++) var += (x[k] - mu) * (x[k] - mu);
    var /= K;
    for (int k = 0; k < K; k++) out[k] = (x[k] - mu) / sqrt(var + 1e-5) * g[k] + gb[k];
}

/* ---- the LayerNorm folded into the weights (kernels.h mtk_ln_linear_folded) ----
 * Through the backend's ln_linear with the fold forced on: the output
 * against a double-precision reference of LayerNorm then Linear on the
 * same dequantized weights, within a relative 2e-5 of the output's scale
 * (other sums than normalizing first; a lost mean term, a wrong gain, bias,
 * scale or row is off by orders more). x has a mean far from 0 (the fold subtracts
 * mean * rc after the products: cancellation shows here). Every weight
 * format, 1-11 rows (two launches at 11), the query scaling, ReLU, two
 * rows a warp with a partial last block. Also: the default leaves f32
 * unfolded (the parity format), and a weight whose LayerNorm changed is
 * not folded with the old one's vectors. */
static void ln_fold_case(int M, int K, int N, int flags, int cols, mt_wfmt fmt, float mean) {
    float *w = malloc(sizeof(float) * N * K), *wd = malloc(sizeof(float) * N * K), *x = malloc(sizeof(float) * M * K);
    float *bb = malloc(sizeof(float) * N), *g = malloc(sizeof(float) * K), *gb = malloc(sizeof(float) * K);
    float *y = malloc(sizeof(float) * M * N);
    for (size_t i = 0; i < (size_t)N * K; i++) w[i] = urand() * 0.05f;
    for (int i = 0; i < M * K; i++) x[i] = urand() * 3 + mean;
    for (int i = 0; i < N; i++) bb[i] = urand();
    for (int i = 0; i < K; i++) g[i] = 1 + urand() * 0.2f, gb[i] = urand() * 0.1f;
    mt_weight *W = wnew(gpu, w, N, K, fmt), *B = wnew(gpu, bb, 1, N, MT_WF_F32);
    mt_weight *G = wnew(gpu, g, 1, K, MT_WF_F32), *GB = wnew(gpu, gb, 1, K, MT_WF_F32);
    stts_error e;
    CHECK(gpu->ops->weight_read(gpu, W, 0, N, wd, &e) == STTS_OK);
    float *dx = dev_of(x, sizeof(float) * M * K), *dh = dev_of(NULL, sizeof(float) * M * K);
    float *dy = dev_of(NULL, sizeof(float) * M * N);
    mt_cuda_ln_fold_force(1);
    CHECK(gpu->ops->ln_linear(gx, dx, M, G, GB, 1e-5f, dh, W, B, dy, flags, cols, 0.125f) == STTS_OK);
    mt_cuda_ln_fold_force(-1);
    fetch(y, dy, (size_t)M * N);
    double *ln = malloc(sizeof(double) * K), worst = 0, scale = 1e-30;
    for (int m = 0; m < M; m++) {
        ref_layernorm(x + (size_t)m * K, K, g, gb, ln);
        for (int n = 0; n < N; n++) {
            double t = bb[n];
            for (int k = 0; k < K; k++) t += (double)wd[(size_t)n * K + k] * ln[k];
            if (flags & MT_LIN_RELU) t = t > 0 ? t : 0;
            if (n < cols) t *= 0.125;
            double got = y[(size_t)m * N + n];
            worst = fmax(worst, isnan(got) ? INFINITY : fabs(got - t));
            scale = fmax(scale, fabs(t));
        }
    }
    CHECK_MSG(worst / scale < 2e-5, "folded ln_linear %s M %d K %d N %d flags %d mean %g: max |err| / max |ref| = %.3g",
              mt_wfmt_name(fmt), M, K, N, flags, mean, worst / scale);
    gpu->ops->weight_free(gpu, W), gpu->ops->weight_free(gpu, B), gpu->ops->weight_free(gpu, G);
    gpu->ops->weight_free(gpu, GB);
    gpu->ops->release(gpu, dx), gpu->ops->release(gpu, dh), gpu->ops->release(gpu, dy);
    free(w), free(wd), free(x), free(bb), free(g), free(gb), free(y), free(ln);
}

/* With the default (f32: unfolded) and after the LayerNorm changed, the
 * folded and unfolded paths' outputs tell which one ran: equal bits mean
 * unfolded (the unfolded ln_linear is layernorm + linear to the bit). */
static void ln_fold_rules(void) {
    if (getenv("STTS_CUDA_LN_FOLD")) {
        printf("note: STTS_CUDA_LN_FOLD is set: the default fold rules not checked\n");
        return;
    }
    const int M = 1, K = 256, N = 512;
    float *w = malloc(sizeof(float) * N * K), *x = malloc(sizeof(float) * K), *g = malloc(sizeof(float) * K);
    float *gb = malloc(sizeof(float) * K), *a = malloc(sizeof(float) * N), *b = malloc(sizeof(float) * N);
    for (int i = 0; i < N * K; i++) w[i] = urand() * 0.05f;
    for (int i = 0; i < K; i++) x[i] = urand() * 3 + 20, g[i] = 1 + urand() * 0.2f, gb[i] = urand() * 0.1f;
    for (int f = 0; f < 2; f++) {
        mt_wfmt fmt = f ? MT_WF_I8 : MT_WF_F32;
        mt_weight *W = wnew(gpu, w, N, K, fmt), *G = wnew(gpu, g, 1, K, MT_WF_F32), *GB = wnew(gpu, gb, 1, K, MT_WF_F32);
        mt_weight *G2 = wnew(gpu, g, 1, K, MT_WF_F32);
        float *dx = dev_of(x, sizeof(float) * K), *dh = dev_of(NULL, sizeof(float) * K);
        float *d1 = dev_of(NULL, sizeof(float) * N), *d2 = dev_of(NULL, sizeof(float) * N);
        CHECK(gpu->ops->layernorm(gx, dx, M, G, GB, 1e-5f, dh) == STTS_OK);
        CHECK(gpu->ops->linear(gx, dh, M, W, NULL, d1, 0) == STTS_OK);
        CHECK(gpu->ops->ln_linear(gx, dx, M, G, GB, 1e-5f, dh, W, NULL, d2, 0, 0, 0.0f) == STTS_OK);
        fetch(a, d1, N);
        fetch(b, d2, N);
        int same = memcmp(a, b, sizeof(float) * N) == 0;
        CHECK_MSG(f ? !same : same, "default fold rule, %s: %s", mt_wfmt_name(fmt),
                  f ? "int8 ran unfolded" : "f32 ran folded");
        if (f) { /* folded with G; another LayerNorm (G2, same values) must not reuse G's vectors */
            CHECK(gpu->ops->ln_linear(gx, dx, M, G2, GB, 1e-5f, dh, W, NULL, d2, 0, 0, 0.0f) == STTS_OK);
            fetch(b, d2, N);
            CHECK_MSG(memcmp(a, b, sizeof(float) * N) == 0, "a weight's second LayerNorm ran folded");
        }
        gpu->ops->weight_free(gpu, W), gpu->ops->weight_free(gpu, G), gpu->ops->weight_free(gpu, GB);
        gpu->ops->weight_free(gpu, G2);
        gpu->ops->release(gpu, dx), gpu->ops->release(gpu, dh), gpu->ops->release(gpu, d1), gpu->ops->release(gpu, d2);
    }
    free(w), free(x), free(g), free(gb), free(a), free(b);
}

static void test_ln_fold(void) {
    ln_fold_case(1, 1024, 3072, 0, 1024, MT_WF_BF16, 0.5f); /* the QKV GEMV, query-scaled */
    ln_fold_case(1, 1024, 4096, MT_LIN_RELU, 0, MT_WF_I8, 0.5f); /* fc1 */
    ln_fold_case(1, 1024, 3085, MT_LIN_RELU, 0, MT_WF_I8, 30.0f); /* two rows a warp, partial block, far mean */
    ln_fold_case(2, 1024, 3072, 0, 1024, MT_WF_I8, 0.5f);         /* the prefill's 2 rows */
    ln_fold_case(4, 1024, 4096, MT_LIN_RELU, 0, MT_WF_BF16, -8.0f); /* beam 4 */
    ln_fold_case(11, 1024, 1024, 0, 512, MT_WF_F16, 0.5f);          /* 8 + 3 rows */
    ln_fold_case(3, 1024, 1000, 0, 0, MT_WF_F32, 2.0f);             /* split rows (f32), forced */
    ln_fold_case(1, 256, 777, 0, 0, MT_WF_I8, 0.0f);                /* K of 256: one value a thread */
    ln_fold_rules();
}

/* ---- the cross-attention folded (backend.h cross_fold_*) ----
 * Through the backend's ops: two layers prepared in one call (their own
 * weights, keys and values, at layer strides with room between), then each
 * layer's folded scores, softmax and projection of R rows against a
 * double-precision reference of the unfolded arithmetic (LayerNorm, query
 * projection and scaling, attention over S positions, output projection and
 * residual) on the same dequantized weights. Not the same order of sums,
 * so within a relative 2e-5 of the output's scale; a wrong head, position,
 * layer, scale or bias is off by orders more. */
enum { FOLD_L = 2 };
static void cross_fold_case(mt_wfmt fmt, int R, int S, int H, int hd) {
    const int D = H * hd, HS = H * S, L = FOLD_L;
    const float qs = 1.0f / sqrtf((float)hd);
    const size_t kv_layer = (size_t)(S + 3) * 2 * D, m_layer = (size_t)(HS + 8) * D, c_layer = (size_t)HS + 8;
    float *Wq = malloc(sizeof(float) * L * D * D), *Wo = malloc(sizeof(float) * L * D * D);
    float *Wqd = malloc(sizeof(float) * D * D), *Wod = malloc(sizeof(float) * D * D);
    float *bq = malloc(sizeof(float) * L * D), *bo = malloc(sizeof(float) * D), *g = malloc(sizeof(float) * D);
    float *gb = malloc(sizeof(float) * D), *kv = malloc(sizeof(float) * L * kv_layer);
    float *x = malloc(sizeof(float) * R * D), *y0 = malloc(sizeof(float) * R * D), *y = malloc(sizeof(float) * R * D);
    for (int i = 0; i < L * D * D; i++) Wq[i] = urand() * 0.2f, Wo[i] = urand() * 0.1f;
    for (int i = 0; i < L * D; i++) bq[i] = urand() * 0.1f;
    for (int i = 0; i < D; i++) bo[i] = urand() * 0.1f, g[i] = 1 + urand() * 0.2f, gb[i] = urand() * 0.1f;
    for (size_t i = 0; i < L * kv_layer; i++) kv[i] = urand();
    for (int i = 0; i < R * D; i++) x[i] = urand() * 2 + 0.3f, y0[i] = urand();
    mt_weight *gwq[FOLD_L], *gwo[FOLD_L], *gbq[FOLD_L];
    for (int l = 0; l < L; l++) {
        gwq[l] = wnew(gpu, Wq + (size_t)l * D * D, D, D, fmt), gwo[l] = wnew(gpu, Wo + (size_t)l * D * D, D, D, fmt);
        gbq[l] = wnew(gpu, bq + (size_t)l * D, 1, D, MT_WF_F32);
        if (!gwq[l] || !gwo[l] || !gbq[l]) return;
    }
    mt_weight *gbo = wnew(gpu, bo, 1, D, MT_WF_F32), *gg = wnew(gpu, g, 1, D, MT_WF_F32), *ggb = wnew(gpu, gb, 1, D, MT_WF_F32);
    if (!gbo || !gg || !ggb) return;
    stts_error e;
    float *dkv = dev_of(kv, sizeof(float) * L * kv_layer), *dx = dev_of(x, sizeof(float) * R * D);
    float *dy = dev_of(NULL, sizeof(float) * R * D), *dln = dev_of(NULL, sizeof(float) * R * D);
    float *dM = dev_of(NULL, sizeof(float) * L * m_layer), *dc = dev_of(NULL, sizeof(float) * L * c_layer);
    float *dN = dev_of(NULL, sizeof(float) * L * m_layer), *dsc = dev_of(NULL, sizeof(float) * R * HS);
    CHECK(gpu->ops->cross_fold_prepare(gx, L, dkv, dkv + D, 2 * D, kv_layer, S, H, (const mt_weight *const *)gwq,
                                       (const mt_weight *const *)gbq, qs, (const mt_weight *const *)gwo, dM, dc, dN,
                                       m_layer, c_layer) == STTS_OK);
    double *ln = malloc(sizeof(double) * D), *q = malloc(sizeof(double) * D), *o = malloc(sizeof(double) * D);
    double *p = malloc(sizeof(double) * S);
    for (int l = 0; l < L; l++) {
        CHECK(gpu->ops->upload(gx, dy, y0, (size_t)R * D) == STTS_OK);
        CHECK(gpu->ops->cross_fold_attend(gx, dx, R, gg, ggb, 1e-5f, dln, dM + l * m_layer, dc + l * c_layer,
                                          dN + l * m_layer, H, S, dsc, gbo, dy) == STTS_OK);
        fetch(y, dy, (size_t)R * D);
        CHECK(gpu->ops->weight_read(gpu, gwq[l], 0, D, Wqd, &e) == STTS_OK);
        CHECK(gpu->ops->weight_read(gpu, gwo[l], 0, D, Wod, &e) == STTS_OK);
        const float *kvl = kv + l * kv_layer, *bql = bq + (size_t)l * D;
        double worst = 0, scale = 1e-30;
        for (int r = 0; r < R; r++) {
            ref_layernorm(x + (size_t)r * D, D, g, gb, ln);
            for (int n = 0; n < D; n++) {
                double t = bql[n];
                for (int i = 0; i < D; i++) t += (double)Wqd[(size_t)n * D + i] * ln[i];
                q[n] = t * qs;
            }
            for (int h = 0; h < H; h++) {
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < S; j++) {
                    double t = 0;
                    for (int e2 = 0; e2 < hd; e2++) t += q[h * hd + e2] * kvl[(size_t)j * 2 * D + h * hd + e2];
                    p[j] = t, mx = fmax(mx, t);
                }
                for (int j = 0; j < S; j++) sum += (p[j] = exp(p[j] - mx));
                for (int e2 = 0; e2 < hd; e2++) {
                    double t = 0;
                    for (int j = 0; j < S; j++) t += p[j] / sum * kvl[(size_t)j * 2 * D + D + h * hd + e2];
                    o[h * hd + e2] = t;
                }
            }
            for (int n = 0; n < D; n++) {
                double t = bo[n] + y0[(size_t)r * D + n];
                for (int i = 0; i < D; i++) t += (double)Wod[(size_t)n * D + i] * o[i];
                worst = fmax(worst, isnan(y[(size_t)r * D + n]) ? INFINITY : fabs(y[(size_t)r * D + n] - t));
                scale = fmax(scale, fabs(t));
            }
        }
        CHECK_MSG(worst / scale < 2e-5, "cross fold %s R %d S %d H %d hd %d layer %d: max |err| / max |ref| = %.3g",
                  mt_wfmt_name(fmt), R, S, H, hd, l, worst / scale);
    }
    float *dev[] = {dkv, dx, dy, dln, dM, dc, dN, dsc};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) gpu->ops->release(gpu, dev[i]);
    for (int l = 0; l < L; l++)
        gpu->ops->weight_free(gpu, gwq[l]), gpu->ops->weight_free(gpu, gwo[l]), gpu->ops->weight_free(gpu, gbq[l]);
    gpu->ops->weight_free(gpu, gbo), gpu->ops->weight_free(gpu, gg), gpu->ops->weight_free(gpu, ggb);
    free(Wq), free(Wo), free(Wqd), free(Wod), free(bq), free(bo), free(g), free(gb), free(kv), free(x), free(y0);
    free(y), free(ln), free(q), free(o), free(p);
}

static void test_cross_fold(void) {
    CHECK(gpu->ops->cross_fold_max_s == MTK_FOLD_MAX_S && gpu->ops->cross_fold_max_rows >= 2);
    cross_fold_case(MT_WF_F32, 1, 20, 16, 64); /* the 600M shape's greedy step */
    cross_fold_case(MT_WF_BF16, 4, 7, 4, 16);
    cross_fold_case(MT_WF_I8, 3, 33, 4, 32);  /* two values a lane in the softmax */
    cross_fold_case(MT_WF_BF16, 9, 64, 2, 32); /* rows in two launches, the longest sentence folded */
    cross_fold_case(MT_WF_F16, 2, 1, 4, 16);  /* one position: every probability 1 */
    cross_fold_case(MT_WF_F32, 1, 5, 4, 16);  /* 20 scores a row: rows 16-byte aligned, not 32 */
    /* refused: a sentence longer than the fold takes */
    float *d = dev_of(NULL, 64);
    float z[16 * 16] = {0};
    const mt_weight *w[1] = {wnew(gpu, z, 16, 16, MT_WF_F32)};
    CHECK(gpu->ops->cross_fold_prepare(gx, 1, d, d, 32, 0, MTK_FOLD_MAX_S + 1, 4, w, NULL, 1.0f, w, d, d, d, 0, 0) ==
          STTS_ERR_INVALID_ARG);
    gpu->ops->weight_free(gpu, (mt_weight *)w[0]);
    gpu->ops->release(gpu, d);
}

/* A shortlist gather keeps each row's bytes (and int8 scale). */
static void test_gather(void) {
    enum { N = 300, K = 64, G = 7 };
    float *W = malloc(sizeof(float) * N * K), *a = malloc(sizeof(float) * G * K), *b = malloc(sizeof(float) * K);
    for (int i = 0; i < N * K; i++) W[i] = urand();
    const int32_t ids[G] = {0, 5, 6, 100, 101, 250, 299};
    for (int f = MT_WF_F32; f <= MT_WF_I8; f++) {
        mt_weight *w = wnew(gpu, W, N, K, (mt_wfmt)f), *g = NULL;
        stts_error e;
        if (!w) continue;
        CHECK_MSG(gpu->ops->weight_gather(gpu, w, ids, G, &g, &e) == STTS_OK, "gather: %s", e.msg);
        if (g) {
            CHECK(gpu->ops->weight_read(gpu, g, 0, G, a, &e) == STTS_OK);
            for (int i = 0; i < G; i++) {
                CHECK(gpu->ops->weight_read(gpu, w, ids[i], 1, b, &e) == STTS_OK);
                CHECK_MSG(memcmp(a + (size_t)i * K, b, sizeof(float) * K) == 0, "%s row %d", mt_wfmt_name((mt_wfmt)f), i);
            }
            gpu->ops->weight_free(gpu, g);
        }
        gpu->ops->weight_free(gpu, w);
    }
    free(W), free(a), free(b);
}

/* ---- ops against the CPU backend ---- */
static float *cpu_of(const float *h, size_t n) {
    float *p = cpu->ops->alloc(cpu, n);
    CHECK(cpu->ops->upload(cx, p, h, n) == STTS_OK);
    return p;
}

static double max_diff(const float *a, const float *b, size_t n, double *ref_max) {
    double w = 0;
    *ref_max = 1e-30;
    for (size_t i = 0; i < n; i++) {
        w = fmax(w, isnan(a[i]) || isnan(b[i]) ? INFINITY : fabs((double)a[i] - b[i]));
        *ref_max = fmax(*ref_max, fabs((double)b[i]));
    }
    return w;
}

static void test_layernorm(void) {
    const int Ds[] = {256, 1024};
    for (int t = 0; t < 2; t++) {
        int M = 5, D = Ds[t];
        size_t n = (size_t)M * D;
        float *x = malloc(sizeof(float) * n), *g = malloc(sizeof(float) * D), *b = malloc(sizeof(float) * D);
        float *yg = malloc(sizeof(float) * n);
        for (size_t i = 0; i < n; i++) x[i] = urand() * 3 + 0.5f;
        for (int i = 0; i < D; i++) g[i] = 1 + urand() * 0.1f, b[i] = urand() * 0.1f;
        mt_weight *cg = wnew(cpu, g, 1, D, MT_WF_F32), *cbb = wnew(cpu, b, 1, D, MT_WF_F32);
        mt_weight *gg = wnew(gpu, g, 1, D, MT_WF_F32), *gb = wnew(gpu, b, 1, D, MT_WF_F32);
        float *cxb = cpu_of(x, n), *cy = cpu->ops->alloc(cpu, n);
        CHECK(cpu->ops->layernorm(cx, cxb, M, cg, cbb, 1e-5f, cy) == STTS_OK);
        float *gxb = dev_of(x, 4 * n);
        CHECK(gpu->ops->layernorm(gx, gxb, M, gg, gb, 1e-5f, gxb) == STTS_OK); /* in place, as y may equal x */
        fetch(yg, gxb, n);
        double rm, d = max_diff(yg, cy, n, &rm);
        CHECK_MSG(d <= 2e-6 * rm, "D %d: max |gpu - cpu| %.3g", D, d);
        cpu->ops->weight_free(cpu, cg), cpu->ops->weight_free(cpu, cbb);
        gpu->ops->weight_free(gpu, gg), gpu->ops->weight_free(gpu, gb);
        cpu->ops->release(cpu, cxb), cpu->ops->release(cpu, cy), gpu->ops->release(gpu, gxb);
        free(x), free(g), free(b), free(yg);
    }
}

/* R rows of lengths 1, 17, 300, 1, 17, ... (R <= 32: arguments inline in
 * the launch; more: through a device array). fold: each row's last key and
 * value come from the query buffer's K/V columns through new_k/new_v (the
 * decoder's cache write folded into the attention), with the caches'
 * values at that position different beforehand; both caches must end equal. */
static void attention_case(int R, int fold) {
    enum { H = 4, HD = 64, D = H * HD, MAXL = 300 };
    int *lens = malloc(sizeof(int) * R);
    for (int r = 0; r < R; r++) lens[r] = r % 3 == 0 ? 1 : r % 3 == 1 ? 17 : MAXL;
    size_t kvn = (size_t)R * MAXL * D;
    float *q = malloc(sizeof(float) * R * 3 * D), *kv = malloc(sizeof(float) * 2 * kvn);
    for (size_t i = 0; i < (size_t)R * 3 * D; i++) q[i] = urand();
    for (size_t i = 0; i < 2 * kvn; i++) kv[i] = urand();
    float *cq = cpu_of(q, (size_t)R * 3 * D), *ckv = cpu_of(kv, 2 * kvn), *co = cpu->ops->alloc(cpu, (size_t)R * D);
    float *gq = dev_of(q, sizeof(float) * R * 3 * D), *gkv = dev_of(kv, sizeof(float) * 2 * kvn);
    float *go = dev_of(NULL, sizeof(float) * R * D);
    const float **ck = malloc(sizeof(float *) * R), **cv = malloc(sizeof(float *) * R);
    const float **gk = malloc(sizeof(float *) * R), **gv = malloc(sizeof(float *) * R);
    for (int r = 0; r < R; r++) {
        ck[r] = ckv + (size_t)r * MAXL * D, cv[r] = ckv + kvn + (size_t)r * MAXL * D;
        gk[r] = gkv + (size_t)r * MAXL * D, gv[r] = gkv + kvn + (size_t)r * MAXL * D;
    }
    mt_attn_args a = {R, H, HD, cq, 3 * D, ck, cv, lens, D, co, D, NULL, NULL, 0, 0};
    mt_attn_args b = {R, H, HD, gq, 3 * D, gk, gv, lens, D, go, D, NULL, NULL, 0, 0};
    if (fold) {
        a.new_k = cq + D, a.new_v = cq + 2 * D, a.new_stride = 3 * D;
        b.new_k = gq + D, b.new_v = gq + 2 * D, b.new_stride = 3 * D;
    }
    CHECK(cpu->ops->attention(cx, &a) == STTS_OK);
    CHECK(gpu->ops->attention(gx, &b) == STTS_OK);
    float *out = malloc(sizeof(float) * R * D);
    fetch(out, go, (size_t)R * D);
    double rm, d = max_diff(out, co, (size_t)R * D, &rm);
    CHECK_MSG(d <= 1e-5 * rm, "attention %d rows%s: max |gpu - cpu| %.3g of %.3g", R, fold ? " (cache write)" : "", d,
              rm);
    if (fold) {
        float *gcache = malloc(sizeof(float) * 2 * kvn);
        fetch(gcache, gkv, 2 * kvn);
        CHECK_MSG(memcmp(gcache, ckv, sizeof(float) * 2 * kvn) == 0, "attention %d rows: GPU caches == CPU caches", R);
        CHECK_MSG(memcmp(ckv + (size_t)(lens[0] - 1) * D, q + D, sizeof(float) * D) == 0,
                  "the new key is in row 0's cache");
        free(gcache);
    }
    cpu->ops->release(cpu, cq), cpu->ops->release(cpu, ckv), cpu->ops->release(cpu, co);
    gpu->ops->release(gpu, gq), gpu->ops->release(gpu, gkv), gpu->ops->release(gpu, go);
    free(q), free(kv), free(out), free(lens), free(ck), free(cv), free(gk), free(gv);
}

static void test_attention(void) {
    for (int fold = 0; fold <= 1; fold++) {
        attention_case(3, fold);
        attention_case(40, fold);
    }
}

/* The one-warp attention (kernels.cu attention_warp_kernel) gives the bits
 * of the 128-thread kernel, for head sizes 32, 64 and 128, lengths on both
 * sides of 32, 64 (the prefetch's cap) and 128 (the softmax sum's
 * thread groups), with and without the prefetch (old_kv 0, 1: all but the
 * last position; 2: all), the cache write folded in, and bf16 rounding:
 * outputs and caches compared byte for byte, the warp kernel checked to
 * have run. */
static void test_attention_warp_bits(void) {
    static const int lens_of[] = {1, 2, 17, 32, 33, 64, 65, 100, 128, 129, 200};
    enum { R = 11, MAXL = 200, H = 3 };
    const int hds[] = {64, 128, 32};
    for (int hi = 0; hi < 3; hi++) {
        const int HD = hds[hi], D = H * HD;
        size_t kvn = (size_t)R * MAXL * D, qn = (size_t)R * 3 * D;
        float *q = malloc(sizeof(float) * qn), *kv = malloc(sizeof(float) * 2 * kvn);
        for (size_t i = 0; i < qn; i++) q[i] = urand();
        for (size_t i = 0; i < 2 * kvn; i++) kv[i] = urand();
        float *dq = dev_of(q, sizeof(float) * qn);
        float *res[2][2] = {{NULL}}; /* [warp][out, caches] on the host */
        for (int old_kv = 0; old_kv <= 2; old_kv++)
            for (int fold = 0; fold <= 1; fold++)
                for (int act = 0; act <= 1; act++) {
                    if (old_kv == 2 && fold) continue; /* cross-attention: no cache write */
                    for (int w = 0; w < 2; w++) {
                        float *dkv = dev_of(kv, sizeof(float) * 2 * kvn), *dout = dev_of(NULL, sizeof(float) * R * D);
                        mtk_kv_rows in;
                        memset(&in, 0, sizeof in);
                        for (int r = 0; r < R; r++)
                            in.k[r] = dkv + (size_t)r * MAXL * D, in.v[r] = dkv + kvn + (size_t)r * MAXL * D,
                            in.len[r] = lens_of[r];
                        mtk_new_kv nkv = {fold ? dq + D : NULL, fold ? dq + 2 * D : NULL, 3 * D};
                        mtk_attention_warp_enable(w);
                        unsigned long before = mtk_attention_warp_calls();
                        CHECK(mtk_attention_inline(stream, R, H, HD, dq, 3 * D, &in, D, dout, D, MAXL, old_kv, &nkv,
                                                   act) == 0);
                        CHECK_MSG((mtk_attention_warp_calls() > before) == (w == 1), "hd %d: the %s kernel did not run",
                                  HD, w ? "one-warp" : "128-thread");
                        res[w][0] = realloc(res[w][0], sizeof(float) * R * D);
                        res[w][1] = realloc(res[w][1], sizeof(float) * 2 * kvn);
                        fetch(res[w][0], dout, (size_t)R * D);
                        fetch(res[w][1], dkv, 2 * kvn);
                        gpu->ops->release(gpu, dkv), gpu->ops->release(gpu, dout);
                    }
                    size_t first = 0;
                    while (first < (size_t)R * D && !memcmp(&res[0][0][first], &res[1][0][first], sizeof(float))) first++;
                    CHECK_MSG(first == (size_t)R * D,
                              "hd %d old_kv %d fold %d act %d: one-warp attention differs from the 128-thread kernel "
                              "at row %zu (length %d) element %zu: %.9g vs %.9g",
                              HD, old_kv, fold, act, first / D, lens_of[first / D % R], first % D,
                              first < (size_t)R * D ? res[1][0][first] : 0.0, first < (size_t)R * D ? res[0][0][first] : 0.0);
                    CHECK_MSG(!memcmp(res[0][1], res[1][1], sizeof(float) * 2 * kvn),
                              "hd %d old_kv %d fold %d: the caches differ", HD, old_kv, fold);
                }
        mtk_attention_warp_enable(1);
        for (int w = 0; w < 2; w++) free(res[w][0]), free(res[w][1]);
        gpu->ops->release(gpu, dq);
        free(q), free(kv);
    }
}

static void test_embed(void) {
    enum { V = 50, D = 64, R = 40 }; /* > MTK_INLINE_ROWS: the device-array path too */
    float *tab = malloc(sizeof(float) * V * D);
    for (int i = 0; i < V * D; i++) tab[i] = urand();
    int32_t ids[R] = {0, 3, 49, 7, 7, 1};
    int pos[R] = {2, 3, 1, 250, 1025, 1}; /* 1 = pad: no position term */
    for (int r = 6; r < R; r++) ids[r] = (r * 7) % V, pos[r] = r + 2;
    float *co = cpu->ops->alloc(cpu, R * D), *go = dev_of(NULL, sizeof(float) * R * D);
    float *out = malloc(sizeof(float) * R * D);
    for (int f = MT_WF_F32; f <= MT_WF_I8; f++) {
        mt_weight *ct = wnew(cpu, tab, V, D, (mt_wfmt)f), *gt = wnew(gpu, tab, V, D, (mt_wfmt)f);
        if (!ct || !gt) continue;
        for (int round = 0; round < 3; round++) {
            for (int rows = 6; rows <= R; rows += R - 6) { /* 6: inline arguments; 40: device arrays */
                CHECK(cpu->ops->embed(cx, ct, ids, pos, rows, 8.0f, 1, round, co) == STTS_OK);
                CHECK(gpu->ops->embed(gx, gt, ids, pos, rows, 8.0f, 1, round, go) == STTS_OK);
                fetch(out, go, (size_t)rows * D);
                CHECK_MSG(memcmp(out, co, sizeof(float) * rows * D) == 0,
                          "embed (%s table, pos_round %d, %d rows) not bit-identical", mt_wfmt_name((mt_wfmt)f), round,
                          rows);
            }
        }
        cpu->ops->weight_free(cpu, ct), gpu->ops->weight_free(gpu, gt);
    }
    cpu->ops->release(cpu, co), gpu->ops->release(gpu, go);
    free(tab), free(out);
}

/* ---- argmax and top-k ---- */
static void test_argmax_topk(void) {
    enum { R = 3, V = 256206, K = 8 };
    float *l = malloc(sizeof(float) * R * V);
    for (size_t i = 0; i < (size_t)R * V; i++) l[i] = urand() * 10;
    l[0 * V + 200000] = 50; /* row 0: max near the end */
    l[1 * V + 77] = l[1 * V + 5] = 40; /* row 1: a tie, the lower id wins */
    l[2 * V + 3] = NAN, l[2 * V + 9] = 30, l[2 * V + 100] = NAN; /* row 2: NaN never wins */
    float *dl = dev_of(l, sizeof(float) * R * V), *did = dev_of(NULL, 4 * R);
    float *dv = dev_of(NULL, sizeof(float) * R * K), *di = dev_of(NULL, 4 * R * K);
    CHECK(mtk_argmax(stream, dl, R, V, (int32_t *)did) == 0);
    int32_t ids[R], ti[R * K];
    float tv[R * K];
    fetch((float *)ids, did, R);
    CHECK_EQ_INT(ids[0], 200000);
    CHECK_EQ_INT(ids[1], 5);
    CHECK_EQ_INT(ids[2], 9);
    /* top-k only on rows without NaN (softmax of a NaN row is NaN) */
    CHECK(mtk_topk_logsoftmax(stream, dl, 2, V, K, dv, (int32_t *)di) == 0);
    fetch(tv, dv, 2 * K);
    fetch((float *)ti, di, 2 * K);
    for (int r = 0; r < 2; r++) {
        const float *row = l + (size_t)r * V;
        double mx = -INFINITY, s = 0;
        for (int i = 0; i < V; i++) mx = fmax(mx, row[i]);
        for (int i = 0; i < V; i++) s += exp(row[i] - mx);
        double lse = mx + log(s);
        int prev = -1;
        for (int c = 0; c < K; c++) {
            int best = -1; /* next best after the previous pick: (value desc, id asc) */
            for (int i = 0; i < V; i++) {
                int taken = 0;
                for (int t = 0; t < c; t++) taken |= ti[r * K + t] == i;
                if (taken) continue;
                if (best < 0 || row[i] > row[best] || (row[i] == row[best] && i < best)) best = i;
            }
            CHECK_MSG(ti[r * K + c] == best, "row %d rank %d: id %d, expected %d", r, c, ti[r * K + c], best);
            CHECK_MSG(fabs(tv[r * K + c] - (row[best] - lse)) < 1e-4, "row %d rank %d: %g vs %g", r, c,
                      tv[r * K + c], row[best] - lse);
            prev = best;
        }
        (void)prev;
    }
    CHECK_EQ_INT(ti[K], 5);
    CHECK_EQ_INT(ti[K + 1], 77);
    gpu->ops->release(gpu, dl), gpu->ops->release(gpu, did), gpu->ops->release(gpu, dv), gpu->ops->release(gpu, di);
    free(l);
}

/* ---- the search's selection op (select_topk) against the CPU search's
 * host arithmetic: ids exact, log-softmax within an ulp or two. Row widths:
 * the full NLLB vocabulary (the kernels cut it into 126 chunks), a shortlist
 * of 32000, one column more than a chunk (a one-column last chunk), and
 * fewer columns than k (the remaining ranks: id 0, -inf) ---- */
static void select_case(int V, int R) {
    float *l = malloc(sizeof(float) * (size_t)R * V);
    for (size_t i = 0; i < (size_t)R * V; i++) l[i] = urand() * 10;
    if (V > 600) {
        l[0 * V + V - 6000 % V] = 50;
        l[1 * V + 77] = l[1 * V + 5] = l[1 * V + 517] = 40; /* ties across threads and within one */
        l[2 * V + 0] = l[2 * V + V - 1] = 12;              /* a tie between the first and last chunk */
    }
    float *dl = dev_of(l, sizeof(float) * (size_t)R * V);
    CHECK(gpu->ops->select_topk != NULL);
    for (int k = 1; k <= 16; k += 7) {
        int32_t top[4 * 16];
        float lp[4 * 16];
        CHECK(gpu->ops->select_topk(gx, dl, R, V, k < V ? k : V, top, lp) == STTS_OK);
        int kk = k < V ? k : V;
        for (int r = 0; r < R; r++) {
            const float *x = l + (size_t)r * V;
            float mx = -INFINITY;
            for (int i = 0; i < V; i++) mx = x[i] > mx ? x[i] : mx;
            double s = 0;
            for (int i = 0; i < V; i++)
                if (x[i] == x[i]) s += expf(x[i] - mx);
            float lse = (float)log(s);
            for (int c = 0; c < kk; c++) {
                int best = -1;
                for (int i = 0; i < V; i++) {
                    int taken = 0;
                    for (int t = 0; t < c; t++) taken |= top[r * kk + t] == i;
                    if (!taken && x[i] == x[i] && (best < 0 || x[i] > x[best])) best = i;
                }
                float want = (x[best] - mx) - lse;
                CHECK_MSG(top[r * kk + c] == best, "select V %d k %d row %d rank %d: id %d, expected %d", V, kk, r,
                          c, top[r * kk + c], best);
                CHECK_MSG(fabsf(lp[r * kk + c] - want) <= 2e-6f * fmaxf(1.0f, fabsf(want)),
                          "select V %d k %d row %d rank %d: %.9g vs %.9g", V, kk, r, c, lp[r * kk + c], want);
            }
        }
        if (V > 600 && k > 1) CHECK(top[k] == 5 && top[k + 1] == 77 && top[k + 2] == 517);
        if (V > 600 && k > 1) CHECK(top[2 * k] == 0 && top[2 * k + 1] == V - 1);
    }
    gpu->ops->release(gpu, dl);
    free(l);
}

static void test_select(void) {
    select_case(256206, 3);
    select_case(32000, 4);
    select_case(2049, 3);
    select_case(9, 2);
}

/* ---- the engine: GPU ids == CPU ids on the fixture models ---- */
/* ---- step programs (program.h): a recorded step that runs as one
 * persistent kernel gives the same bits as its ops launched as kernels ----
 * One decoder-like step (embedding, LayerNorm + QKV with the query scaling,
 * self-attention writing its caches, output projection + residual,
 * LayerNorm + fc1 + ReLU, fc2 + residual, LayerNorm, a 3000-row head),
 * three steps in a row (the first captures the graph, the next replay it
 * with new ids, positions and cache lengths), on two executors: one with
 * programs, one with STTS_CUDA_PROGRAM=0. fc2's 4096 columns give the
 * GEMV splits (f32 8 warps a row, int8 2); the head's 375+ tiles make
 * every block loop and the ring wrap. bf16/f16 kernels give a row of 4096
 * one warp (64 KB tiles, kernels.cu gemv_tile_bytes), an order of sums a
 * program's 16 KB slots cannot reproduce: there fc2 runs as a kernel, and
 * the step's last ops after it (LayerNorm, head: fewer than PROG_MIN_OPS)
 * too, so 5 of the 8 ops run in a program. */
enum { PG_D = 256, PG_H = 4, PG_HD = 64, PG_FF = 4096, PG_V = 3000, PG_L = 16 };

typedef struct {
    float *dx, *dh, *dqkv, *datt, *dff, *logits, *kc, *vc;
} pg_bufs;

static void pg_bufs_new(pg_bufs *b, int R, const float *kv0) {
    b->dx = dev_of(NULL, sizeof(float) * R * PG_D), b->dh = dev_of(NULL, sizeof(float) * R * PG_D);
    b->dqkv = dev_of(NULL, sizeof(float) * R * 3 * PG_D), b->datt = dev_of(NULL, sizeof(float) * R * PG_D);
    b->dff = dev_of(NULL, sizeof(float) * R * PG_FF), b->logits = dev_of(NULL, sizeof(float) * R * PG_V);
    b->kc = dev_of(kv0, sizeof(float) * R * PG_L * PG_D), b->vc = dev_of(kv0, sizeof(float) * R * PG_L * PG_D);
}

static void pg_bufs_free(pg_bufs *b) {
    float *p[] = {b->dx, b->dh, b->dqkv, b->datt, b->dff, b->logits, b->kc, b->vc};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++) gpu->ops->release(gpu, p[i]);
}

typedef struct {
    mt_weight *emb, *ln1g, *ln1b, *qkv, *qkvb, *o, *ob, *ln2g, *ln2b, *fc1, *fc1b, *fc2, *fc2b, *lnfg, *lnfb, *head;
} pg_model;

static void pg_step(mt_exec *x, const pg_model *m, pg_bufs *b, int R, int t) {
    const mt_backend_ops *op = gpu->ops;
    int32_t ids[8];
    int pos[8], lens[8];
    const float *kp[8], *vp[8];
    for (int r = 0; r < R; r++) {
        ids[r] = (int32_t)((t * 7 + r * 13 + 5) % PG_V), pos[r] = 2 + t + r, lens[r] = 1 + r + t;
        kp[r] = b->kc + (size_t)r * PG_L * PG_D, vp[r] = b->vc + (size_t)r * PG_L * PG_D;
    }
    op->step_begin(x);
    CHECK(op->embed(x, m->emb, ids, pos, R, 16.0f, 1, 0, b->dx) == STTS_OK);
    CHECK(op->ln_linear(x, b->dx, R, m->ln1g, m->ln1b, 1e-5f, b->dh, m->qkv, m->qkvb, b->dqkv, 0, PG_D, 0.125f) ==
          STTS_OK);
    mt_attn_args a = {R,        PG_H, PG_HD, b->dqkv, 3 * PG_D, kp, vp, lens, PG_D, b->datt, PG_D, b->dqkv + PG_D,
                      b->dqkv + 2 * PG_D, 3 * PG_D, 0};
    CHECK(op->attention(x, &a) == STTS_OK);
    CHECK(op->linear(x, b->datt, R, m->o, m->ob, b->dx, MT_LIN_ACCUM) == STTS_OK);
    CHECK(op->ln_linear(x, b->dx, R, m->ln2g, m->ln2b, 1e-5f, b->dh, m->fc1, m->fc1b, b->dff, MT_LIN_RELU, 0, 0.0f) ==
          STTS_OK);
    CHECK(op->linear(x, b->dff, R, m->fc2, m->fc2b, b->dx, MT_LIN_ACCUM) == STTS_OK);
    CHECK(op->layernorm(x, b->dx, R, m->lnfg, m->lnfb, 1e-5f, b->dh) == STTS_OK);
    CHECK(op->linear(x, b->dh, R, m->head, NULL, b->logits, 0) == STTS_OK);
    CHECK(op->step_end(x, 0) == STTS_OK);
}

static float *pg_rand(size_t n, float scale) {
    float *h = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) h[i] = urand() * scale;
    return h;
}

static int pg_same(mt_exec *xa, const float *a, mt_exec *xb, const float *b, size_t n, const char *what, mt_wfmt fmt,
                   int R, int t) {
    float *ha = malloc(sizeof(float) * n), *hb = malloc(sizeof(float) * n);
    /* each through its own executor: its stream runs the step */
    CHECK(gpu->ops->download(xa, ha, a, n) == STTS_OK);
    CHECK(gpu->ops->download(xb, hb, b, n) == STTS_OK);
    size_t first = n, count = 0;
    for (size_t i = 0; i < n; i++)
        if (memcmp(&ha[i], &hb[i], sizeof(float)) != 0) first = first < n ? first : i, count++;
    int same = count == 0;
    CHECK_MSG(same, "program vs kernels, format %d, %d rows, step %d: %s differ in %zu of %zu (first [%zu]: %.9g vs %.9g)",
              (int)fmt, R, t, what, count, n, first, first < n ? ha[first] : 0.0, first < n ? hb[first] : 0.0);
    free(ha), free(hb);
    return same;
}

static void program_case(mt_exec *xp, mt_exec *xk, mt_wfmt fmt, int R) {
    pg_model m;
    float *h;
    const float s1 = 1.0f / 16.0f, s2 = 1.0f / 64.0f;
#define W(field, rows, cols, f, sc) (h = pg_rand((size_t)(rows) * (cols), sc), m.field = wnew(gpu, h, rows, cols, f), free(h))
    W(emb, PG_V, PG_D, fmt, s1);
    W(qkv, 3 * PG_D, PG_D, fmt, s1), W(qkvb, 1, 3 * PG_D, MT_WF_F32, s1);
    W(o, PG_D, PG_D, fmt, s1), W(ob, 1, PG_D, MT_WF_F32, s1);
    W(fc1, PG_FF, PG_D, fmt, s1), W(fc1b, 1, PG_FF, MT_WF_F32, s1);
    W(fc2, PG_D, PG_FF, fmt, s2), W(fc2b, 1, PG_D, MT_WF_F32, s1);
    W(head, PG_V, PG_D, fmt, s1);
    W(ln1b, 1, PG_D, MT_WF_F32, 0.1f), W(ln2b, 1, PG_D, MT_WF_F32, 0.1f), W(lnfb, 1, PG_D, MT_WF_F32, 0.1f);
#undef W
    float *g = malloc(sizeof(float) * PG_D);
    for (int i = 0; i < PG_D; i++) g[i] = 1.0f + 0.25f * urand();
    m.ln1g = wnew(gpu, g, 1, PG_D, MT_WF_F32), m.ln2g = wnew(gpu, g, 1, PG_D, MT_WF_F32);
    m.lnfg = wnew(gpu, g, 1, PG_D, MT_WF_F32);
    free(g);
    float *kv0 = pg_rand((size_t)R * PG_L * PG_D, 1.0f);
    pg_bufs bp, bk;
    pg_bufs_new(&bp, R, kv0);
    pg_bufs_new(&bk, R, kv0);
    free(kv0);
    for (int t = 0; t < 3; t++) {
        pg_step(xp, &m, &bp, R, t);
        pg_step(xk, &m, &bk, R, t);
        const int want_ops = fmt == MT_WF_BF16 || fmt == MT_WF_F16 ? 5 : 8;
        CHECK_MSG(mt_cuda_exec_program_ops(xp) == want_ops, "format %d, %d rows, step %d: %d of 8 ops in a program, expected %d",
                  (int)fmt, R, t, mt_cuda_exec_program_ops(xp), want_ops);
        CHECK(mt_cuda_exec_program_ops(xk) == 0);
        int ok = pg_same(xp, bp.logits, xk, bk.logits, (size_t)R * PG_V, "logits", fmt, R, t);
        ok &= pg_same(xp, bp.dx, xk, bk.dx, (size_t)R * PG_D, "residual", fmt, R, t);
        ok &= pg_same(xp, bp.kc, xk, bk.kc, (size_t)R * PG_L * PG_D, "key cache", fmt, R, t);
        ok &= pg_same(xp, bp.vc, xk, bk.vc, (size_t)R * PG_L * PG_D, "value cache", fmt, R, t);
        if (!ok) break;
    }
    pg_bufs_free(&bp);
    pg_bufs_free(&bk);
    mt_weight *ws[] = {m.emb, m.ln1g, m.ln1b, m.qkv, m.qkvb, m.o, m.ob, m.ln2g, m.ln2b,
                       m.fc1, m.fc1b, m.fc2, m.fc2b, m.lnfg, m.lnfb, m.head};
    for (size_t i = 0; i < sizeof ws / sizeof *ws; i++) gpu->ops->weight_free(gpu, ws[i]);
}

static void test_program(void) {
    stts_error e;
    mt_exec *xp = NULL, *xk = NULL;
    /* both executors with step graphs (programs are made at capture, so a
     * run with STTS_CUDA_GRAPHS=0 tests them too), one with programs */
    const char *names[2] = {"STTS_CUDA_PROGRAM", "STTS_CUDA_GRAPHS"};
    char *keep[2];
    for (int i = 0; i < 2; i++) keep[i] = getenv(names[i]) ? strdup(getenv(names[i])) : NULL;
    setenv("STTS_CUDA_GRAPHS", "1", 1);
    setenv("STTS_CUDA_PROGRAM", "1", 1);
    CHECK(gpu->ops->exec_new(gpu, 0, &xp, &e) == STTS_OK);
    setenv("STTS_CUDA_PROGRAM", "0", 1);
    CHECK(gpu->ops->exec_new(gpu, 0, &xk, &e) == STTS_OK);
    for (int i = 0; i < 2; i++) {
        if (keep[i]) setenv(names[i], keep[i], 1);
        else unsetenv(names[i]);
        free(keep[i]);
    }
    if (!xp || !xk) return;
    const mt_wfmt fmts[] = {MT_WF_F32, MT_WF_BF16, MT_WF_F16, MT_WF_I8};
    const int rows[] = {1, 3, 8};
    mt_cuda_ln_fold_force(0); /* programs run unfolded LayerNorms only */
    for (size_t f = 0; f < 4; f++)
        for (size_t r = 0; r < 3; r++) program_case(xp, xk, fmts[f], rows[r]);
    mt_cuda_ln_fold_force(-1);
    gpu->ops->exec_free(xp);
    gpu->ops->exec_free(xk);
}

/* ---- the bf16-activation rule (kernels.h MTK_ACT_BF16): each
 * kernel's output is its f32 output rounded to bf16 (nearest, ties to
 * even), and a residual add rounds the rounded product's sum ---- */
static float host_bf16(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&v, &u, 4);
    return v;
}

static int all_rounded(const float *got, const float *want_f32, size_t n, const char *what) {
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        float w = host_bf16(want_f32[i]);
        if (memcmp(&got[i], &w, 4) != 0 && bad++ == 0) first = i;
    }
    CHECK_MSG(bad == 0, "bf16 activations, %s: %zu of %zu differ from the rounded f32 output (first [%zu]: %.9g vs %.9g)",
              what, bad, n, first, bad ? got[first] : 0.0, bad ? host_bf16(want_f32[first]) : 0.0);
    return bad == 0;
}

/* ---- the tensor-core GEMM (kernels.cu gemm_kernel<false>): more than 8
 * rows of bf16 weights in the bf16-activation mode, against a double
 * reference (each output within one bf16 step of the reference: the f32
 * sums may round either way at a bf16 boundary), with the GEMV path
 * (mtk_gemm_enable(0)) held to the same bound ---- */
static double bf16_step(double v) {
    int e;
    frexp(fabs(v) > 1e-30 ? v : 1e-30, &e);
    return ldexp(1.0, e - 8);
}

static void gemm_case(int M, int K, int N, int flags, int qcols) {
    const float qs = 0.125f;
    float *W = malloc(sizeof(float) * (size_t)N * K), *Wd = malloc(sizeof(float) * (size_t)N * K);
    float *x = malloc(sizeof(float) * (size_t)M * K), *b = malloc(sizeof(float) * (size_t)N);
    float *y0 = malloc(sizeof(float) * (size_t)M * N), *y = malloc(sizeof(float) * (size_t)M * N);
    uint16_t *wb = malloc(sizeof(uint16_t) * (size_t)N * K);
    for (size_t i = 0; i < (size_t)N * K; i++) W[i] = urand() * 0.05f;
    for (size_t i = 0; i < (size_t)M * K; i++) x[i] = host_bf16(urand());
    for (int i = 0; i < N; i++) b[i] = host_bf16(urand() * 0.1f);
    for (size_t i = 0; i < (size_t)M * N; i++) y0[i] = (flags & MTK_ACCUM) ? host_bf16(urand()) : NAN;
    mt_weight *gw = wnew(gpu, W, N, K, MT_WF_BF16);
    stts_error e;
    if (!gw) return;
    CHECK(gpu->ops->weight_read(gpu, gw, 0, N, Wd, &e) == STTS_OK);
    for (size_t i = 0; i < (size_t)N * K; i++) {
        uint32_t u;
        memcpy(&u, &Wd[i], 4);
        wb[i] = (uint16_t)(u >> 16); /* Wd holds bf16 values: the top half is exact */
    }
    /* through the kernel API: the backend's linear op would need a
     * bf16-activation backend */
    float *dx = dev_of(x, sizeof(float) * (size_t)M * K), *db = dev_of(b, sizeof(float) * (size_t)N);
    float *dw = dev_of(wb, sizeof(uint16_t) * (size_t)N * K);
    for (int path = 0; path < 2; path++) {
        float *dy = dev_of(y0, sizeof(float) * (size_t)M * N);
        mtk_gemm_enable(path == 0);
        unsigned long before = mtk_gemm_calls();
        CHECK(mtk_linear_scaled(stream, dx, M, K, dw, MTK_W_BF16, NULL, N, db, dy, flags | MTK_ACT_BF16, qcols, qs) ==
              0);
        CHECK_MSG((mtk_gemm_calls() > before) == (path == 0), "M %d K %d N %d: the %s path did not run", M, K, N,
                  path ? "GEMV" : "GEMM");
        fetch(y, dy, (size_t)M * N);
        double worst = 0;
        size_t bad = 0;
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                double s = b[n], sabs = fabs(b[n]);
                for (int k = 0; k < K; k++) {
                    double t = (double)x[(size_t)m * K + k] * Wd[(size_t)n * K + k];
                    s += t, sabs += fabs(t);
                }
                if (flags & MTK_RELU) s = s > 0 ? s : 0;
                double v = host_bf16((float)s), inner;
                if (n < qcols) v = (float)((float)v * qs);
                inner = v;
                if (flags & MTK_ACCUM) v = host_bf16((float)(y0[(size_t)m * N + n] + (float)v));
                double g = y[(size_t)m * N + n], d = isnan(g) ? INFINITY : fabs(g - v);
                /* one bf16 step of the product (the f32 sum may round either way at a boundary), one of the
                 * residual add, and the f32 sum's own error near zero */
                double lim = 1.001 * bf16_step(inner) + 1e-6 * sabs * (n < qcols ? qs : 1.0);
                if (flags & MTK_ACCUM) lim += 1.001 * bf16_step(v);
                if (d > lim) bad++;
                worst = fmax(worst, d / bf16_step(v));
            }
        CHECK_MSG(bad == 0, "%s M %d K %d N %d flags %d qcols %d: %zu outputs off by more than a bf16 step (worst %.2f)",
                  path ? "GEMV" : "GEMM", M, K, N, flags, qcols, bad, worst);
        gpu->ops->release(gpu, dy);
    }
    mtk_gemm_enable(1);
    gpu->ops->weight_free(gpu, gw);
    gpu->ops->release(gpu, dx), gpu->ops->release(gpu, db), gpu->ops->release(gpu, dw);
    free(W), free(Wd), free(x), free(b), free(y0), free(y), free(wb);
}

/* The int8 GEMM (gemm_kernel<true>: int8 weights widened exactly to bf16,
 * f32 activations as two bf16 terms) and the int8 GEMV it replaces, against
 * a double reference of the same int8 weights and scales: f32 activations,
 * so the bound is the sums' own error (the split leaves x to ~2^-17, the
 * tensor cores' f32 accumulation and the GEMV's f32 sums ~2^-20 of the sum
 * of |terms|), plus an ulp of the result. A wrong scale, a lost lo term or
 * a swapped byte is off by orders more. */
static void gemm_i8_case(int M, int K, int N, int flags, int qcols) {
    const float qs = 0.125f;
    float *W = malloc(sizeof(float) * (size_t)N * K), *ws = malloc(sizeof(float) * (size_t)N);
    float *x = malloc(sizeof(float) * (size_t)M * K), *b = malloc(sizeof(float) * (size_t)N);
    float *y0 = malloc(sizeof(float) * (size_t)M * N), *y = malloc(sizeof(float) * (size_t)M * N);
    int8_t *q = malloc((size_t)N * K);
    for (size_t i = 0; i < (size_t)N * K; i++) W[i] = urand() * 0.05f;
    for (int n = 0; n < N; n++) ws[n] = mt_quantize_row_i8(W + (size_t)n * K, (size_t)K, q + (size_t)n * K);
    for (size_t i = 0; i < (size_t)M * K; i++) x[i] = urand() * 3.0f; /* not bf16 values: the lo terms matter */
    for (int i = 0; i < N; i++) b[i] = urand() * 0.1f;
    for (size_t i = 0; i < (size_t)M * N; i++) y0[i] = (flags & MTK_ACCUM) ? urand() : NAN;
    float *dx = dev_of(x, sizeof(float) * (size_t)M * K), *db = dev_of(b, sizeof(float) * (size_t)N);
    float *dq = dev_of(q, (size_t)N * K), *dws = dev_of(ws, sizeof(float) * (size_t)N);
    for (int path = 0; path < 2; path++) {
        float *dy = dev_of(y0, sizeof(float) * (size_t)M * N);
        mtk_gemm_enable(path == 0);
        unsigned long before = mtk_gemm_calls();
        CHECK(mtk_linear_scaled(stream, dx, M, K, dq, MTK_W_I8, dws, N, db, dy, flags, qcols, qs) == 0);
        CHECK_MSG((mtk_gemm_calls() > before) == (path == 0), "int8 M %d K %d N %d: the %s path did not run", M, K,
                  N, path ? "GEMV" : "GEMM");
        fetch(y, dy, (size_t)M * N);
        double worst = 0;
        size_t bad = 0;
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                double s = 0, sabs = 0;
                for (int k = 0; k < K; k++) {
                    double t = (double)x[(size_t)m * K + k] * q[(size_t)n * K + k];
                    s += t, sabs += fabs(t);
                }
                s = s * ws[n] + b[n];
                sabs = sabs * ws[n] + fabs(b[n]);
                if (flags & MTK_RELU) s = s > 0 ? s : 0;
                if (n < qcols) s *= qs, sabs *= qs;
                if (flags & MTK_ACCUM) s += y0[(size_t)m * N + n], sabs += fabs(y0[(size_t)m * N + n]);
                double g = y[(size_t)m * N + n], d = isnan(g) ? INFINITY : fabs(g - s);
                double lim = 2e-5 * sabs + 1e-6 * fabs(s) + 1e-30;
                if (d > lim) bad++;
                worst = fmax(worst, d / lim);
            }
        CHECK_MSG(bad == 0, "int8 %s M %d K %d N %d flags %d qcols %d: %zu outputs off by more than the f32 sums' error "
                            "(worst %.2f of the bound)",
                  path ? "GEMV" : "GEMM", M, K, N, flags, qcols, bad, worst);
        gpu->ops->release(gpu, dy);
    }
    mtk_gemm_enable(1);
    gpu->ops->release(gpu, dx), gpu->ops->release(gpu, db), gpu->ops->release(gpu, dq), gpu->ops->release(gpu, dws);
    free(W), free(ws), free(x), free(b), free(y0), free(y), free(q);
}

static void test_gemm(void) {
    /* 70 rows: three row blocks, the last partial; K 320: a last round of 64 columns */
    const int Ms[] = {9, 20, 33, 70}, Ks[] = {64, 320, 1024}, Ns[] = {16, 3072};
    for (int a = 0; a < 4; a++)
        for (int k = 0; k < 3; k++)
            for (int n = 0; n < 2; n++)
                for (int fl = 0; fl < 3; fl++) gemm_case(Ms[a], Ks[k], Ns[n], fl, 0);
    gemm_case(20, 4096, 1024, MTK_ACCUM, 0); /* the encoder's fc2 */
    gemm_case(20, 1024, 3072, 0, 1024);      /* the encoder's QKV with the query scaling */
    gemm_case(20, 1024, 4096, MTK_RELU, 0);  /* fc1 */
    for (int a = 0; a < 4; a++)
        for (int k = 0; k < 3; k++)
            for (int fl = 0; fl < 3; fl++) gemm_i8_case(Ms[a], Ks[k], 3072, fl, 0);
    gemm_i8_case(20, 4096, 1024, MTK_ACCUM, 0);
    gemm_i8_case(20, 1024, 3072, 0, 1024);
    gemm_i8_case(20, 1024, 4096, MTK_RELU, 0);
}

/* A second GPU backend that rounds activations to bf16 (HF's bf16
 * arithmetic; gpu has no such rule whatever the environment says), and an
 * executor on it. 0 when either could not be made (a failed CHECK). */
static int bf16_act_backend(mt_backend **hb, mt_exec **hx) {
    stts_error e;
    *hb = NULL, *hx = NULL;
    const char *was = getenv("STTS_CUDA_BF16_ACTIVATIONS");
    char *keep = was ? strdup(was) : NULL;
    unsetenv("STTS_CUDA_BF16_ACTIVATIONS");
    CHECK(mt_cuda_backend_new(1100, hb, &e) == STTS_OK);
    if (*hb) mt_cuda_backend_set_bf16_activations(*hb, 1);
    if (keep) setenv("STTS_CUDA_BF16_ACTIVATIONS", keep, 1);
    free(keep);
    if (!*hb) return 0;
    CHECK(hb[0]->ops->exec_new(*hb, 0, hx, &e) == STTS_OK);
    return *hx != NULL;
}

static void test_bf16_activations(void) {
    enum { M = 3, K = 256, N = 200, H = 4, HD = 64, L = 9 };
    /* a second backend with the rule (the executor's backend, gpu, has
     * none); biases and LayerNorm parameters already bf16 values, so that
     * both backends hold the same weights and only the outputs differ */
    mt_backend *hb;
    mt_exec *hx;
    if (!bf16_act_backend(&hb, &hx)) return;
    mt_backend *be[2] = {gpu, hb};
    mt_exec *ex[2] = {gx, hx};
    float *W = pg_rand((size_t)N * K, 0.05f), *x = pg_rand((size_t)M * K, 1.0f), *b = pg_rand(N, 0.1f);
    float *y0 = pg_rand((size_t)M * N, 1.0f), *g = malloc(sizeof(float) * K), *gbh = pg_rand(K, 0.1f);
    for (int i = 0; i < K; i++) g[i] = host_bf16(1.0f + 0.2f * urand()), gbh[i] = host_bf16(gbh[i]);
    for (int i = 0; i < N; i++) b[i] = host_bf16(b[i]);
    /* inputs that are bf16 values, as every Linear input is in this mode:
     * the GEMV stages 2+ such rows as bf16 (gemv_x_bf16), exactly */
    for (int i = 0; i < M * K; i++) x[i] = host_bf16(x[i]);
    float *q = pg_rand((size_t)M * H * HD, 1.0f), *kv = pg_rand((size_t)2 * M * L * H * HD, 1.0f);
    float *out[2][4];
    const size_t n[4] = {(size_t)M * N, (size_t)M * N, (size_t)M * K, (size_t)M * H * HD};
    for (int mode = 0; mode < 2; mode++) {
        mt_backend *B = be[mode];
        mt_exec *X = ex[mode];
        mt_weight *gw = wnew(B, W, N, K, MT_WF_BF16), *gb = wnew(B, b, 1, N, MT_WF_F32);
        mt_weight *lg = wnew(B, g, 1, K, MT_WF_F32), *lb = wnew(B, gbh, 1, K, MT_WF_F32);
        float *dx = B->ops->alloc(B, (size_t)M * K), *dy = B->ops->alloc(B, (size_t)M * N);
        float *dacc = B->ops->alloc(B, (size_t)M * N), *dl = B->ops->alloc(B, (size_t)M * K);
        float *dq = B->ops->alloc(B, (size_t)M * H * HD), *dkv = B->ops->alloc(B, (size_t)2 * M * L * H * HD);
        float *dao = B->ops->alloc(B, (size_t)M * H * HD);
        CHECK(B->ops->upload(X, dx, x, (size_t)M * K) == STTS_OK);
        CHECK(B->ops->upload(X, dacc, y0, (size_t)M * N) == STTS_OK);
        CHECK(B->ops->upload(X, dq, q, (size_t)M * H * HD) == STTS_OK);
        CHECK(B->ops->upload(X, dkv, kv, (size_t)2 * M * L * H * HD) == STTS_OK);
        const float *kp[M], *vp[M];
        int lens[M];
        for (int r = 0; r < M; r++)
            kp[r] = dkv + (size_t)r * L * H * HD, vp[r] = dkv + (size_t)(M + r) * L * H * HD, lens[r] = 3 + 3 * r;
        mt_attn_args aa = {M, H, HD, dq, H * HD, kp, vp, lens, H * HD, dao, H * HD, NULL, NULL, 0, 0};
        CHECK(B->ops->linear(X, dx, M, gw, gb, dy, 0) == STTS_OK);
        CHECK(B->ops->linear(X, dx, M, gw, gb, dacc, MT_LIN_ACCUM) == STTS_OK);
        CHECK(B->ops->layernorm(X, dx, M, lg, lb, 1e-5f, dl) == STTS_OK);
        CHECK(B->ops->attention(X, &aa) == STTS_OK);
        const float *src[4] = {dy, dacc, dl, dao};
        for (int i = 0; i < 4; i++) {
            out[mode][i] = malloc(sizeof(float) * n[i]);
            CHECK(B->ops->download(X, out[mode][i], src[i], n[i]) == STTS_OK);
        }
        B->ops->weight_free(B, gw), B->ops->weight_free(B, gb), B->ops->weight_free(B, lg), B->ops->weight_free(B, lb);
        float *rel[] = {dx, dy, dacc, dl, dq, dkv, dao};
        for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) B->ops->release(B, rel[i]);
    }
    all_rounded(out[1][0], out[0][0], n[0], "linear");
    float *want = malloc(sizeof(float) * n[1]);
    for (size_t i = 0; i < n[1]; i++) want[i] = y0[i] + host_bf16(out[0][0][i]);
    all_rounded(out[1][1], want, n[1], "linear + residual");
    all_rounded(out[1][2], out[0][2], n[2], "layernorm");
    all_rounded(out[1][3], out[0][3], n[3], "attention");
    CHECK_MSG(memcmp(out[1][0], out[0][0], sizeof(float) * n[0]) != 0, "the rule changed no linear output");
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < 4; i++) free(out[m][i]);
    hb->ops->exec_free(hx);
    hb->ops->destroy(hb);
    free(W), free(x), free(b), free(y0), free(g), free(gbh), free(q), free(kv), free(want);
}

static const char *source_dir(void) {
    const char *d = getenv("STTS_TEST_SOURCE_DIR");
    return d && *d ? d : STTS_SOURCE_DIR;
}

/* tests/fixtures/mt/REF_NAME (HF reference outputs of the fixture models),
 * with its language pair; NULL (a failed check) when it cannot be read. */
static json_t *fixture_ref(const char *ref_name, const char **src, const char **tgt) {
    char ref[1024];
    snprintf(ref, sizeof ref, "%s/tests/fixtures/mt/%s", source_dir(), ref_name);
    json_error_t je;
    json_t *j = json_load_file(ref, 0, &je);
    CHECK_MSG(j != NULL, "%s: %s", ref, je.text);
    if (!j) return NULL;
    *src = json_string_value(json_object_get(j, "src_lang"));
    *tgt = json_string_value(json_object_get(j, "tgt_lang"));
    return j;
}

/* fold: the cross-attention folded (mt_cross_fold_force(1)) on the GPU:
 * greedy steps and beam steps of at most 2 live rows run folded, and the
 * ids must still be the CPU's (other sums, the same choices on these
 * models; each folded step is checked to have run). */
static void engine_model(const char *model, const char *ref_name, int fold, int ln_fold) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/mt/%s", source_dir(), model);
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        fprintf(stderr, "note: %s absent, not tested\n", dir);
        return;
    }
    const char *src, *tgt;
    json_t *j = fixture_ref(ref_name, &src, &tgt);
    if (!j) return;
    nllb_model *m[2] = {NULL, NULL};
    nllb_session *s[2] = {NULL, NULL};
    stts_error e;
    for (int d = 0; d < 2; d++) {
        nllb_model_params mp = nllb_model_default_params();
        mp.device = d ? NLLB_DEVICE_CUDA : NLLB_DEVICE_CPU;
        mp.weights = NLLB_WEIGHTS_F32;
        mp.threads = 1;
        nllb_session_params sp = nllb_session_default_params();
        sp.max_beams = 4;
        CHECK_MSG(nllb_model_load(dir, &mp, &m[d], &e) == STTS_OK, "%s: %s", model, e.msg);
        if (m[d]) CHECK(nllb_session_new(m[d], &sp, &s[d], &e) == STTS_OK);
    }
    if (m[1]) CHECK_MSG(strncmp(nllb_model_backend(m[1]), "cuda", 4) == 0, "backend %s", nllb_model_backend(m[1]));
    json_t *cases = json_object_get(j, "cases");
    int compared = 0;
    mt_cross_fold_force(fold);
    if (ln_fold) mt_cuda_ln_fold_force(1);
    const unsigned long folds0 = mtk_cross_fold_apply_calls();
    for (size_t k = 0; s[0] && s[1] && k < json_array_size(cases); k++) {
        const char *text = json_string_value(json_object_get(json_array_get(cases, k), "text"));
        for (int beams = 1; beams <= 4; beams += 3) {
            nllb_translate_params tp = nllb_translate_default_params();
            tp.num_beams = beams;
            tp.max_new_tokens = (int)json_integer_value(json_object_get(j, "max_new_tokens"));
            nllb_result r[2];
            const char *texts[1] = {text};
            int okk = 1;
            for (int d = 0; d < 2; d++) {
                stts_status st = nllb_translate(s[d], texts, 1, src, tgt, &tp, &r[d], &e);
                CHECK_MSG(st == STTS_OK, "%s case %zu: %s", model, k, e.msg);
                okk &= st == STTS_OK;
            }
            if (!okk) continue;
            int same = r[0].n_ids == r[1].n_ids && memcmp(r[0].ids, r[1].ids, sizeof(int32_t) * r[0].n_ids) == 0;
            CHECK_MSG(same, "%s case %zu beams %d: GPU ids differ from CPU ids", model, k, beams);
            compared++;
            nllb_result_clear(&r[0]);
            nllb_result_clear(&r[1]);
        }
    }
    mt_cross_fold_force(-1);
    mt_cuda_ln_fold_force(-1);
    if (fold) CHECK_MSG(mtk_cross_fold_apply_calls() > folds0, "%s: the folded cross-attention never ran", model);
    printf("%s: %d translations compared (greedy and beam 4%s%s)\n", model, compared,
           fold ? ", the cross-attention folded" : "", ln_fold ? ", the LayerNorms folded" : "");
    for (int d = 0; d < 2; d++) {
        nllb_session_free(s[d]);
        nllb_model_free(m[d]);
    }
    json_decref(j);
}

/* ---- several weight rows a warp (mtk_gemv_rows_per_warp) ----
 * The GEMV gives a warp 2 or 4 weight rows at once (gemv_dot_rows: each
 * input value read once for all of them, the sums reduce-scattered over
 * the lanes) from some number of output columns: one row a warp
 * everywhere, the default thresholds and the path for every GEMV must give
 * the same bits, for every format, 1-8 input rows, with and without bf16
 * activations (2+ rows then staged as bf16), plain, ReLU and accumulated
 * outputs, and a last block whose warps lack some of their rows. The
 * arithmetic itself is held to the double reference by test_linear (its
 * 16411-column cases take the path by default). */
static void rows_per_warp_case(mt_backend *B, mt_exec *X, int bf16_act, mt_wfmt fmt, int M, int K, int N,
                               int flags, int ln) {
    float *W = pg_rand((size_t)N * K, 0.05f), *x = pg_rand((size_t)M * K, 1.0f), *b = pg_rand(N, 0.1f);
    float *y0 = pg_rand((size_t)M * N, 1.0f), *g = pg_rand(K, 0.2f), *gb = pg_rand(K, 0.1f), *y[3];
    for (int i = 0; i < K; i++) g[i] += 1.0f;
    if (bf16_act) {
        for (size_t i = 0; i < (size_t)M * K; i++) x[i] = host_bf16(x[i]);
        for (size_t i = 0; i < (size_t)M * N; i++) y0[i] = host_bf16(y0[i]);
        for (int i = 0; i < N; i++) b[i] = host_bf16(b[i]);
        for (int i = 0; i < K; i++) g[i] = host_bf16(g[i]), gb[i] = host_bf16(gb[i]);
    }
    if (!(flags & MT_LIN_ACCUM))
        for (size_t i = 0; i < (size_t)M * N; i++) y0[i] = NAN; /* an output left unwritten shows */
    mt_weight *gw = wnew(B, W, N, K, fmt), *gbias = wnew(B, b, 1, N, MT_WF_F32);
    mt_weight *lg = wnew(B, g, 1, K, MT_WF_F32), *lb = wnew(B, gb, 1, K, MT_WF_F32);
    float *dx = B->ops->alloc(B, (size_t)M * K), *dy = B->ops->alloc(B, (size_t)M * N);
    float *dl = B->ops->alloc(B, (size_t)M * K);
    if (!gw || !gbias || !lg || !lb || !dx || !dy || !dl) return;
    CHECK(B->ops->upload(X, dx, x, (size_t)M * K) == STTS_OK);
    const int thr[3][2] = {{0, 0}, {-1, -1}, {1, 1}}; /* never, the defaults, always */
    if (ln) mt_cuda_ln_fold_force(ln == 2);
    for (int t = 0; t < 3; t++) {
        y[t] = malloc(sizeof(float) * (size_t)M * N);
        CHECK(B->ops->upload(X, dy, y0, (size_t)M * N) == STTS_OK);
        mtk_gemv_rows_per_warp(thr[t][0], thr[t][1]);
        if (ln) CHECK(B->ops->ln_linear(X, dx, M, lg, lb, 1e-5f, dl, gw, gbias, dy, flags, 0, 1.0f) == STTS_OK);
        else CHECK(B->ops->linear(X, dx, M, gw, gbias, dy, flags) == STTS_OK);
        CHECK(B->ops->download(X, y[t], dy, (size_t)M * N) == STTS_OK);
    }
    mtk_gemv_rows_per_warp(-1, -1);
    mt_cuda_ln_fold_force(-1);
    static const char *const lnn[] = {"", " after a LayerNorm", " after a folded LayerNorm"};
    for (int t = 1; t < 3; t++)
        CHECK_MSG(memcmp(y[0], y[t], sizeof(float) * (size_t)M * N) == 0,
                  "%s%s%s M %d K %d N %d flags %d: %s rows a warp differ from one row a warp", mt_wfmt_name(fmt),
                  bf16_act ? " (bf16 activations)" : "", lnn[ln], M, K, N, flags,
                  t == 1 ? "the default" : "always several");
    for (size_t i = 0; i < (size_t)M * N; i++)
        if (isnan(y[0][i])) {
            CHECK_MSG(0, "%s M %d N %d: output %zu not written", mt_wfmt_name(fmt), M, N, i);
            break;
        }
    B->ops->weight_free(B, gw), B->ops->weight_free(B, gbias), B->ops->weight_free(B, lg), B->ops->weight_free(B, lb);
    B->ops->release(B, dx), B->ops->release(B, dy), B->ops->release(B, dl);
    free(W), free(x), free(b), free(y0), free(g), free(gb), free(y[0]), free(y[1]), free(y[2]);
}

static void test_rows_per_warp(void) {
    mt_backend *hb;
    mt_exec *hx;
    const mt_wfmt fmts[] = {MT_WF_F32, MT_WF_BF16, MT_WF_F16, MT_WF_I8};
    const int flags[] = {0, MT_LIN_RELU, MT_LIN_ACCUM};
    for (int f = 0; f < 4; f++)
        for (int M = 1; M <= 8; M++) {
            /* 16411 = 16384 + 27: over the default thresholds, a last block of 27 rows */
            rows_per_warp_case(gpu, gx, 0, fmts[f], M, 1024, 16411, flags[M % 3], 0);
            rows_per_warp_case(gpu, gx, 0, fmts[f], M, 64, 1000 + M, flags[(M + 1) % 3], 0);
            /* the LayerNorm in the GEMV (2 rows folded; more where STTS_CUDA_LN_SPLIT=0 says) */
            rows_per_warp_case(gpu, gx, 0, fmts[f], M, 1024, 3077, flags[(M + 2) % 3], 1 + M % 2);
        }
    if (!bf16_act_backend(&hb, &hx)) return;
    for (int M = 1; M <= 8; M++) {
        rows_per_warp_case(hb, hx, 1, MT_WF_BF16, M, 1024, 16411, flags[M % 3], 0);
        rows_per_warp_case(hb, hx, 1, MT_WF_I8, M, 1024, 16411, flags[(M + 2) % 3], 0);
        rows_per_warp_case(hb, hx, 1, MT_WF_BF16, M, 1024, 37, flags[(M + 1) % 3], 0);
        rows_per_warp_case(hb, hx, 1, MT_WF_I8, M, 1024, 3077, flags[M % 3], 1 + M % 2);
    }
    hb->ops->exec_free(hx);
    hb->ops->destroy(hb);
}

static void test_engine(void) {
    engine_model("tiny-f32-st", "reference-f32.json", 0, 0);
    engine_model("tiny-f16-st", "reference-f16.json", 0, 0);
    engine_model("tiny-bf16-st", "reference-bf16.json", 0, 0);
    engine_model("tiny-f32-pt", "reference-f32.json", 0, 0);
    engine_model("tiny-f16-pt", "reference-f16.json", 0, 0);
    engine_model("tiny-f32-st", "reference-f32.json", 1, 0);
    engine_model("tiny-bf16-st", "reference-bf16.json", 1, 0);
    /* the LayerNorms folded (f32 forced: the same choices, other sums), alone and with the cross-attention */
    engine_model("tiny-f32-st", "reference-f32.json", 0, 1);
    engine_model("tiny-bf16-st", "reference-bf16.json", 1, 1);
}

/* A GPU whose memory other programs hold (STTS_CUDA_WEIGHT_LIMIT: weight
 * allocations over N bytes fail as out of memory): --device auto loads on
 * the CPU and says why (nllb_model_device_note), translating as the CPU
 * does; --device cuda fails with an out-of-memory error that says how much
 * the GPU had. N = 0 fails the first weight; N = 65536 lets the fixture's
 * layers (d 64) onto the GPU but not its 308 KB embedding, so a half-loaded
 * GPU model is freed before the CPU load. */
static void test_auto_fallback(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/mt/tiny-f32-st", source_dir());
    const char *src, *tgt;
    json_t *j = fixture_ref("reference-f32.json", &src, &tgt);
    if (!j) return;
    const char *text = json_string_value(json_object_get(json_array_get(json_object_get(j, "cases"), 0), "text"));
    nllb_model_params mp = nllb_model_default_params();
    mp.weights = NLLB_WEIGHTS_F32;
    mp.threads = 1;
    stts_error e;
    nllb_model *ref = NULL;
    mp.device = NLLB_DEVICE_CPU;
    CHECK_MSG(nllb_model_load(dir, &mp, &ref, &e) == STTS_OK, "cpu: %s", e.msg);
    CHECK(ref && nllb_model_device_note(ref)[0] == '\0');
    const char *limits[] = {"0", "65536"};
    for (int i = 0; i < 2 && ref; i++) {
        setenv("STTS_CUDA_WEIGHT_LIMIT", limits[i], 1);
        nllb_model *m = NULL;
        mp.device = NLLB_DEVICE_CUDA;
        stts_status st = nllb_model_load(dir, &mp, &m, &e);
        CHECK_MSG(st == STTS_ERR_NOMEM && !m, "cuda, limit %s: status %d (%s)", limits[i], (int)st, st ? e.msg : "");
        CHECK_MSG(st == STTS_OK || (strstr(e.msg, "out of memory") && strstr(e.msg, "MB free of")), "cuda: %s", e.msg);
        mp.device = NLLB_DEVICE_AUTO;
        st = nllb_model_load(dir, &mp, &m, &e);
        unsetenv("STTS_CUDA_WEIGHT_LIMIT");
        CHECK_MSG(st == STTS_OK && m, "auto, limit %s: %s", limits[i], st ? e.msg : "");
        if (!m) continue;
        CHECK_MSG(strncmp(nllb_model_backend(m), "cpu", 3) == 0, "auto fell back to %s", nllb_model_backend(m));
        CHECK_MSG(strstr(nllb_model_device_note(m), "could not hold the model") &&
                      strstr(nllb_model_device_note(m), "out of memory"),
                  "note: \"%s\"", nllb_model_device_note(m));
        /* and it translates as the CPU model does */
        nllb_session *s[2] = {NULL, NULL};
        nllb_session_params sp = nllb_session_default_params();
        nllb_model *ms[2] = {ref, m};
        nllb_result r[2];
        int ok = 1;
        for (int d = 0; d < 2; d++) {
            const char *texts[1] = {text};
            nllb_translate_params tp = nllb_translate_default_params();
            ok &= nllb_session_new(ms[d], &sp, &s[d], &e) == STTS_OK &&
                  nllb_translate(s[d], texts, 1, src, tgt, &tp, &r[d], &e) == STTS_OK;
        }
        CHECK_MSG(ok, "translate: %s", e.msg);
        if (ok) {
            CHECK(r[0].n_ids > 0 && r[0].n_ids == r[1].n_ids &&
                  memcmp(r[0].ids, r[1].ids, sizeof(int32_t) * r[0].n_ids) == 0);
            nllb_result_clear(&r[0]);
            nllb_result_clear(&r[1]);
        }
        nllb_session_free(s[0]);
        nllb_session_free(s[1]);
        nllb_model_free(m);
    }
    /* without the limit, auto is the GPU again, with no note */
    nllb_model *g = NULL;
    mp.device = NLLB_DEVICE_AUTO;
    CHECK_MSG(nllb_model_load(dir, &mp, &g, &e) == STTS_OK, "auto: %s", e.msg);
    if (g) CHECK(strncmp(nllb_model_backend(g), "cuda", 4) == 0 && nllb_model_device_note(g)[0] == '\0');
    nllb_model_free(g);
    nllb_model_free(ref);
    json_decref(j);
}

/* Greedy one step ahead (search.c greedy_ahead; the default on CUDA): a
 * batch of every fixture sentence at once, so rows finish at different
 * steps and ride along one step after they did, against the same batch on
 * the CPU (ids) and on a second CUDA model with STTS_CUDA_AHEAD=0 (ids and
 * scores bit for bit, every on_token call the same), with the full
 * vocabulary and an auto shortlist (the column map on the device), and at
 * a max length that ends rows mid-sentence. */
typedef struct {
    int n;
    int32_t rec[4096][3];
} token_log;

static void log_token(void *user, int sentence, int step, int32_t token) {
    token_log *l = user;
    if (l->n < 4096) l->rec[l->n][0] = sentence, l->rec[l->n][1] = step, l->rec[l->n][2] = token;
    l->n++;
}

static int cmp_rec(const void *a, const void *b) { return memcmp(a, b, 3 * sizeof(int32_t)); }

static void test_greedy_ahead(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/mt/tiny-f32-st", source_dir());
    const char *src, *tgt;
    json_t *j = fixture_ref("reference-f32.json", &src, &tgt);
    if (!j) return;
    json_t *cases = json_object_get(j, "cases");
    enum { M_CPU, M_AHEAD, M_PLAIN, M_N };
    nllb_model *m[M_N] = {NULL};
    nllb_session *s[M_N] = {NULL};
    stts_error e;
    for (int d = 0; d < M_N; d++) {
        nllb_model_params mp = nllb_model_default_params();
        mp.device = d == M_CPU ? NLLB_DEVICE_CPU : NLLB_DEVICE_CUDA;
        mp.weights = NLLB_WEIGHTS_F32;
        mp.threads = 1;
        if (d == M_PLAIN) setenv("STTS_CUDA_AHEAD", "0", 1);
        CHECK_MSG(nllb_model_load(dir, &mp, &m[d], &e) == STTS_OK, "%s", e.msg);
        unsetenv("STTS_CUDA_AHEAD");
        nllb_session_params sp = nllb_session_default_params();
        if (m[d]) CHECK(nllb_session_new(m[d], &sp, &s[d], &e) == STTS_OK);
    }
    CHECK(m[M_AHEAD] && m[M_AHEAD]->be->greedy_ahead == 1);
    CHECK(m[M_PLAIN] && m[M_PLAIN]->be->greedy_ahead == 0);
    size_t N = json_array_size(cases);
    const char **texts = calloc(N, sizeof *texts);
    for (size_t k = 0; k < N; k++) texts[k] = json_string_value(json_object_get(json_array_get(cases, k), "text"));
    static token_log logs[M_N];
    int mnt = (int)json_integer_value(json_object_get(j, "max_new_tokens"));
    int compared = 0, lengths_seen = 0;
    for (int pass = 0; s[M_CPU] && s[M_AHEAD] && s[M_PLAIN] && pass < 4; pass++) {
        nllb_translate_params tp = nllb_translate_default_params();
        tp.max_new_tokens = pass & 1 ? 3 : mnt; /* 3: rows end by length, some right after the language token */
        tp.shortlist = pass & 2 ? NLLB_SHORTLIST_AUTO : NLLB_SHORTLIST_NONE;
        nllb_result *r[M_N];
        int ok = 1;
        for (int d = 0; d < M_N; d++) {
            r[d] = calloc(N, sizeof(nllb_result));
            logs[d].n = 0;
            tp.on_token = log_token, tp.user = &logs[d];
            stts_status st = nllb_translate(s[d], texts, (int)N, src, tgt, &tp, r[d], &e);
            CHECK_MSG(st == STTS_OK, "pass %d model %d: %s", pass, d, e.msg);
            ok &= st == STTS_OK;
        }
        for (size_t k = 0; ok && k < N; k++) {
            int same = r[M_CPU][k].n_ids == r[M_AHEAD][k].n_ids &&
                       memcmp(r[M_CPU][k].ids, r[M_AHEAD][k].ids, sizeof(int32_t) * r[M_CPU][k].n_ids) == 0;
            CHECK_MSG(same, "pass %d sentence %zu: GPU (ahead) ids differ from CPU ids", pass, k);
            same = r[M_PLAIN][k].n_ids == r[M_AHEAD][k].n_ids &&
                   memcmp(r[M_PLAIN][k].ids, r[M_AHEAD][k].ids, sizeof(int32_t) * r[M_PLAIN][k].n_ids) == 0;
            CHECK_MSG(same, "pass %d sentence %zu: GPU ids ahead and not ahead differ", pass, k);
            CHECK_MSG(memcmp(&r[M_PLAIN][k].score, &r[M_AHEAD][k].score, sizeof(float)) == 0,
                      "pass %d sentence %zu: score %.9g ahead, %.9g not", pass, k, r[M_AHEAD][k].score,
                      r[M_PLAIN][k].score);
            CHECK_MSG(fabsf(r[M_CPU][k].score - r[M_AHEAD][k].score) <= 1e-4f * (1 + fabsf(r[M_CPU][k].score)),
                      "pass %d sentence %zu: score %.9g GPU, %.9g CPU", pass, k, r[M_AHEAD][k].score,
                      r[M_CPU][k].score);
            lengths_seen |= 1 << (r[M_AHEAD][k].n_ids < 31 ? r[M_AHEAD][k].n_ids : 31);
            compared++;
        }
        /* the same on_token calls (sentence, step, token), whatever their order */
        CHECK(logs[M_AHEAD].n == logs[M_PLAIN].n && logs[M_AHEAD].n <= 4096);
        if (logs[M_AHEAD].n == logs[M_PLAIN].n && logs[M_AHEAD].n <= 4096) {
            qsort(logs[M_AHEAD].rec, (size_t)logs[M_AHEAD].n, sizeof logs[0].rec[0], cmp_rec);
            qsort(logs[M_PLAIN].rec, (size_t)logs[M_PLAIN].n, sizeof logs[0].rec[0], cmp_rec);
            CHECK(memcmp(logs[M_AHEAD].rec, logs[M_PLAIN].rec, (size_t)logs[M_AHEAD].n * sizeof logs[0].rec[0]) == 0);
        }
        for (int d = 0; d < M_N; d++) {
            for (size_t k = 0; k < N; k++) nllb_result_clear(&r[d][k]);
            free(r[d]);
        }
    }
    /* the batch must have had rows of different lengths for the ride-along path to run */
    int kinds = 0;
    for (int b = 0; b < 32; b++) kinds += (lengths_seen >> b) & 1;
    CHECK_MSG(kinds >= 3, "only %d different output lengths in the batches", kinds);
    printf("greedy ahead: %d translations in batches of %zu compared\n", compared, N);
    free(texts);
    for (int d = 0; d < M_N; d++) {
        nllb_session_free(s[d]);
        nllb_model_free(m[d]);
    }
    json_decref(j);
}

/* The demo model's test set: GPU f32 ids == CPU f32 ids, greedy and beam 4;
 * GPU bf16 and int8 greedy written too, with their agreement with f32. */
enum { D_CPU, D_GPU, D_BF16, D_I8, D_N };

static int write_out(FILE *f, const nllb_result *r, int same) {
    json_t *o = json_object(), *ids = json_array();
    for (int i = 0; i < r->n_ids; i++) json_array_append_new(ids, json_integer(r->ids[i]));
    json_object_set_new(o, "ids", ids);
    json_object_set_new(o, "text", json_string(r->text ? r->text : ""));
    json_object_set_new(o, "same_as_ref", json_boolean(same));
    char *txt = json_dumps(o, JSON_COMPACT);
    int rc = fprintf(f, "%s\n", txt ? txt : "{}");
    free(txt);
    json_decref(o);
    return rc;
}

static int demo(const char *model, const char *text_file, const char *prefix) {
    FILE *in = fopen(text_file, "r");
    if (!in) {
        fprintf(stderr, "test_cuda: cannot open %s\n", text_file);
        return 1;
    }
    static const char *const names[D_N] = {"cpu-f32", "gpu-f32", "gpu-bf16", "gpu-int8"};
    nllb_model *m[D_N] = {NULL};
    nllb_session *s[D_N] = {NULL};
    stts_error e;
    for (int d = 0; d < D_N; d++) {
        nllb_model_params mp = nllb_model_default_params();
        mp.device = d == D_CPU ? NLLB_DEVICE_CPU : NLLB_DEVICE_CUDA;
        mp.weights = d == D_BF16 ? NLLB_WEIGHTS_BF16 : d == D_I8 ? NLLB_WEIGHTS_INT8 : NLLB_WEIGHTS_F32;
        nllb_session_params sp = nllb_session_default_params();
        sp.max_beams = 4;
        if (nllb_model_load(model, &mp, &m[d], &e) != STTS_OK || nllb_session_new(m[d], &sp, &s[d], &e) != STTS_OK) {
            fprintf(stderr, "test_cuda: %s (%s): %s\n", model, names[d], e.msg);
            return 1;
        }
    }
    printf("demo: %s on %s vs %s\n", model, nllb_model_backend(m[D_GPU]), nllb_model_backend(m[D_CPU]));
    /* outputs: gpu f32 greedy, gpu f32 beam 4, gpu bf16 greedy, gpu int8 greedy */
    static const char *const files[4] = {"greedy", "beam4", "bf16-greedy", "int8-greedy"};
    FILE *out[4];
    for (int k = 0; k < 4; k++) {
        char path[1200];
        snprintf(path, sizeof path, "%s-%s.jsonl", prefix, files[k]);
        if (!(out[k] = fopen(path, "w"))) {
            fprintf(stderr, "test_cuda: cannot write %s\n", path);
            return 1;
        }
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lines = 0, same_g = 0, same_b = 0, same_bf = 0, same_i8 = 0;
    double ms[D_N][2] = {{0}};
    while ((n = getline(&line, &cap, in)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        lines++;
        const char *texts[1] = {line};
        for (int b = 0; b < 2; b++) {
            nllb_translate_params tp = nllb_translate_default_params();
            tp.num_beams = b ? 4 : 1;
            tp.max_new_tokens = 64;
            nllb_result r[D_N];
            memset(r, 0, sizeof r);
            int nd = b ? 2 : D_N; /* beam 4: f32 on both devices */
            for (int d = 0; d < nd; d++) {
                uint64_t t0 = stts_now_ns();
                if (nllb_translate(s[d], texts, 1, "eng_Latn", "jpn_Jpan", &tp, &r[d], &e) != STTS_OK) {
                    fprintf(stderr, "line %d (%s): %s\n", lines, names[d], e.msg);
                    return 1;
                }
                ms[d][b] += (double)(stts_now_ns() - t0) / 1e6;
            }
#define SAME(a, c) (r[a].n_ids == r[c].n_ids && memcmp(r[a].ids, r[c].ids, sizeof(int32_t) * r[a].n_ids) == 0)
            int same = SAME(D_CPU, D_GPU);
            if (!same)
                printf("DIFF %s line %d: gpu \"%s\" cpu \"%s\"\n", b ? "beam4" : "greedy", lines, r[D_GPU].text,
                       r[D_CPU].text);
            if (b) {
                same_b += same;
                write_out(out[1], &r[D_GPU], same);
            } else {
                same_g += same;
                write_out(out[0], &r[D_GPU], same);
                int sb = SAME(D_GPU, D_BF16), si = SAME(D_GPU, D_I8);
                same_bf += sb, same_i8 += si;
                write_out(out[2], &r[D_BF16], sb);
                write_out(out[3], &r[D_I8], si);
            }
#undef SAME
            for (int d = 0; d < nd; d++) nllb_result_clear(&r[d]);
        }
    }
    for (int k = 0; k < 4; k++) fclose(out[k]);
    printf("demo greedy: %d/%d identical GPU f32 vs CPU f32 (GPU %.1f ms, CPU %.1f ms in all)\n", same_g, lines,
           ms[D_GPU][0], ms[D_CPU][0]);
    printf("demo beam4: %d/%d identical GPU f32 vs CPU f32 (GPU %.1f ms, CPU %.1f ms in all)\n", same_b, lines,
           ms[D_GPU][1], ms[D_CPU][1]);
    printf("demo greedy: GPU bf16 identical to GPU f32 on %d/%d (%.1f%%), %.1f ms in all\n", same_bf, lines,
           100.0 * same_bf / (lines ? lines : 1), ms[D_BF16][0]);
    printf("demo greedy: GPU int8 identical to GPU f32 on %d/%d (%.1f%%), %.1f ms in all\n", same_i8, lines,
           100.0 * same_i8 / (lines ? lines : 1), ms[D_I8][0]);
    free(line);
    fclose(in);
    for (int d = 0; d < D_N; d++) {
        nllb_session_free(s[d]);
        nllb_model_free(m[d]);
    }
    return same_g != lines || same_b != lines || lines == 0;
}

/* test_cuda --only a,b: only these cases (compute-sanitizer runs, where
 * the whole program takes too long). */
static const char *only_cases;

static int wanted(const char *name) {
    if (!only_cases) return 1;
    size_t n = strlen(name);
    for (const char *p = only_cases; (p = strstr(p, name)) != NULL; p += n)
        if ((p == only_cases || p[-1] == ',') && (p[n] == '\0' || p[n] == ',')) return 1;
    return 0;
}
#define RUN(fn) do { if (wanted(#fn)) TEST_RUN(fn); } while (0)

static const char *const CASES[] = {"test_linear", "test_linear_scaled", "test_ln_linear", "test_gather",
                                    "test_layernorm", "test_attention", "test_attention_warp_bits", "test_embed", "test_argmax_topk",
                                    "test_select", "test_program", "test_bf16_activations", "test_engine",
                                    "test_greedy_ahead", "test_gemm", "test_auto_fallback", "test_cross_fold",
                                    "test_ln_fold", "test_rows_per_warp"};

/* Every name --only lists must be a case (CASES: the RUN lines of main, in
 * order): a misspelt one would otherwise run nothing and pass. */
static int only_names_known(void) {
    const char *p = only_cases;
    while (*p) {
        size_t n = strcspn(p, ",");
        int known = 0;
        for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++)
            known |= strlen(CASES[i]) == n && strncmp(CASES[i], p, n) == 0;
        if (!known) {
            fprintf(stderr, "test_cuda --only: no case named \"%.*s\" (cases:", (int)n, p);
            for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) fprintf(stderr, " %s", CASES[i]);
            fprintf(stderr, ")\n");
            return 0;
        }
        p += n + (p[n] == ',');
    }
    return 1;
}

int main(int argc, char **argv) {
    stts_error e;
    if (argc == 3 && strcmp(argv[1], "--only") == 0) {
        only_cases = argv[2];
        if (!only_names_known()) return 2;
    }
    if (mt_cuda_probe(&e) != STTS_OK) TEST_SKIP_ALL("no GPU for the CUDA backend tests: %s", e.msg);
    if (argc == 5 && strcmp(argv[1], "--demo") == 0) return demo(argv[2], argv[3], argv[4]);
    if (mt_cuda_backend_new(1100, &gpu, &e) != STTS_OK || gpu->ops->exec_new(gpu, 0, &gx, &e) != STTS_OK) {
        fprintf(stderr, "CUDA backend: %s\n", e.msg);
        return 1;
    }
    if (mt_cpu_backend_new(1, 0, 1100, &cpu, &e) != STTS_OK || cpu->ops->exec_new(cpu, 1, &cx, &e) != STTS_OK) {
        fprintf(stderr, "CPU backend: %s\n", e.msg);
        return 1;
    }
    stream = mt_cuda_exec_stream(gx);
    printf("backend: %s\n", gpu->desc);
    RUN(test_linear);
    RUN(test_linear_scaled);
    RUN(test_ln_linear);
    RUN(test_gather);
    RUN(test_layernorm);
    RUN(test_attention);
    RUN(test_attention_warp_bits);
    RUN(test_embed);
    RUN(test_argmax_topk);
    RUN(test_select);
    RUN(test_program);
    RUN(test_bf16_activations);
    RUN(test_engine);
    RUN(test_greedy_ahead);
    RUN(test_gemm);
    RUN(test_auto_fallback);
    RUN(test_cross_fold);
    RUN(test_ln_fold);
    RUN(test_rows_per_warp);
    gpu->ops->exec_free(gx);
    cpu->ops->exec_free(cx);
    gpu->ops->destroy(gpu);
    cpu->ops->destroy(cpu);
    return TEST_SUMMARY();
}
