/* test_backend_ops.c - every backend op x every weight format x every SIMD
 * level this CPU (and build) has, through the backend interface (backend.h),
 * against a scalar reference written here in double precision, in the
 * manner of ggml's test-backend-ops. The reference dequantizes the weights
 * itself (bf16 and f16 by the compiler's conversions, int8 by quant.h's
 * rule, which is the contract), so a wrong conversion in the backend fails.
 *
 * Tolerances (stated, per output y = sum_k x_k w_k):
 *   f32/bf16/f16 weights: |y - ref| <= 1e-5 * sum|x_k w_k| + 1e-6 (summation
 *     order only: the reference uses the same rounded weights);
 *   int8 (activations quantized per row): the error of rounding x to its
 *     int8 grid, |y - ref| <= sum|w_k| * s_x / 2 * 1.001 + 1e-5 * sum|x_k w_k|
 *     (s_x = max|x| / 127); and every level gives the scalar level's result
 *     (integer sums are exact) within 1e-6 relative;
 *   every format: a row computed alone equals the same row in a batch, bit
 *     for bit (batched and single translation agree);
 *   LayerNorm, attention, embedding: 1e-5 relative + 1e-6.
 * A level the CPU lacks is reported as skipped with the reason; STTS_SIMD
 * selects one level only (CI on another machine). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "nllb.h"
#include "quant.h"
#include "test.h"

static uint64_t g_rng = 0x1234567;
static float frand(void) { /* uniform [-1, 1) */
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

static const mt_wfmt FORMATS[] = {MT_WF_F32, MT_WF_BF16, MT_WF_F16, MT_WF_I8};

/* f32 -> f16 -> f32 by the hardware (F16C on x86-64, the compiler's _Float16
 * on arm64): independent of the backend's own conversion. */
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
static int have_f16_ref(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}
__attribute__((target("f16c"))) static float f16_round(float f) { return _cvtsh_ss(_cvtss_sh(f, 0)); }
#else
static int have_f16_ref(void) { return 1; }
static float f16_round(float f) { return __extension__(float)(_Float16)f; }
#endif

/* The reference's own dequantization of W [N][K]: what the format stores. */
static void ref_weights(mt_wfmt f, const float *W, int N, int K, float *out) {
    for (int n = 0; n < N; n++) {
        const float *w = W + (size_t)n * K;
        float *o = out + (size_t)n * K;
        if (f == MT_WF_I8) {
            int8_t *q = malloc((size_t)K);
            float s = mt_quantize_row_i8_ref(w, (size_t)K, q);
            for (int k = 0; k < K; k++) o[k] = (float)q[k] * s;
            free(q);
            continue;
        }
        for (int k = 0; k < K; k++) {
            if (f == MT_WF_BF16) {
                uint32_t u = (uint32_t)mt_f32_to_bf16(w[k]) << 16;
                memcpy(&o[k], &u, 4);
            } else if (f == MT_WF_F16) {
                o[k] = f16_round(w[k]);
            } else {
                o[k] = w[k];
            }
        }
    }
}

typedef struct {
    mt_backend *be;
    mt_exec *x;
    const char *level;
} rig;

static int rig_open(rig *r, int simd, int threads) {
    stts_error e;
    memset(r, 0, sizeof *r);
    stts_status st = mt_cpu_backend_new(threads, simd, 256, &r->be, &e);
    if (st == STTS_ERR_UNSUPPORTED) {
        printf("skip: %s\n", e.msg);
        return 0;
    }
    CHECK_MSG(st == STTS_OK, "%s", e.msg);
    if (st) return 0;
    CHECK(r->be->ops->exec_new(r->be, 0, &r->x, &e) == STTS_OK);
    r->level = r->be->desc;
    return r->x != NULL;
}

static void rig_close(rig *r) {
    if (r->x) r->be->ops->exec_free(r->x);
    if (r->be) r->be->ops->destroy(r->be);
}

static mt_weight *vec(rig *r, const float *v, int n) {
    mt_wpart p = {MT_DTYPE_F32, v, NULL, 0};
    mt_weight *w = NULL;
    stts_error e;
    CHECK(r->be->ops->weight_new(r->be, &p, 1, 1, n, MT_WF_F32, 0, &w, &e) == STTS_OK);
    return w;
}

/* ---- linear: shapes x parts x flags x bias, and gather ---- */
/* int8 twice: conv 0 hands the backend int8 rows (a converted file's,
 * used in place, row-major), conv 1 the f32 rows to quantize itself, into
 * its own layout (main forces the CPU's interleaved 4-row groups, where K %
 * 64 == 0): both must give the scalar level's bits. */
static void check_linear(rig *r, mt_wfmt f, int M, int K, int N, int nparts, float *scalar_out, int conv) {
    size_t nk = (size_t)N * K;
    float *W = malloc(nk * sizeof(float)), *Wd = malloc(nk * sizeof(float)), *x = malloc(sizeof(float) * M * K);
    float *b = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * M * N);
    for (size_t i = 0; i < nk; i++) W[i] = frand() * 0.5f;
    for (int i = 0; i < M * K; i++) x[i] = frand() * 2.0f;
    for (int i = 0; i < N; i++) b[i] = frand();
    ref_weights(f, W, N, K, Wd);
    /* sources: int8 parts from the quant rule (as a converted file holds
     * them), the others f32 (converted by the backend) */
    int pr = N / nparts;
    mt_wpart parts[4];
    int8_t *q = NULL;
    float *qs = NULL;
    if (f == MT_WF_I8) {
        q = malloc(nk);
        qs = malloc(sizeof(float) * N);
        for (int n = 0; n < N; n++) qs[n] = mt_quantize_row_i8_ref(W + (size_t)n * K, (size_t)K, q + (size_t)n * K);
    }
    for (int p = 0; p < nparts; p++) {
        if (f == MT_WF_I8 && !conv) parts[p] = (mt_wpart){MT_DTYPE_I8, q + (size_t)p * pr * K, qs + (size_t)p * pr, 0};
        else parts[p] = (mt_wpart){MT_DTYPE_F32, W + (size_t)p * pr * K, NULL, 0};
    }
    mt_weight *w = NULL;
    stts_error e;
    CHECK_MSG(r->be->ops->weight_new(r->be, parts, nparts, pr, K, f, conv ? 0 : MT_WSRC_PERSISTENT, &w, &e) == STTS_OK,
              "%s", e.msg);
    mt_weight *bw = vec(r, b, N);
    if (!w || !bw) return;
    /* a persistent source already in the compute format is used in place */
    CHECK_EQ_INT(w->in_place, !conv && (f == MT_WF_I8 || f == MT_WF_F32));
    /* weight_read gives what the reference dequantized */
    float *rd = malloc(nk * sizeof(float));
    CHECK(r->be->ops->weight_read(r->be, w, 0, N, rd, &e) == STTS_OK);
    int bad = 0;
    for (size_t i = 0; i < nk && !bad; i++) bad = rd[i] != Wd[i];
    CHECK_MSG(!bad, "%s %s%s: weight_read differs from the reference dequantization", r->level, mt_wfmt_name(f),
              conv ? " (converted)" : "");
    free(rd);
    for (int flags = 0; flags < 4; flags++)
        for (int with_b = 0; with_b < 2; with_b++) {
            for (int i = 0; i < M * N; i++) y[i] = 0.25f;
            CHECK(r->be->ops->linear(r->x, x, M, w, with_b ? bw : NULL, y, flags) == STTS_OK);
            double worst = 0;
            for (int m = 0; m < M; m++) {
                float amax = 0;
                for (int k = 0; k < K; k++) amax = fabsf(x[m * K + k]) > amax ? fabsf(x[m * K + k]) : amax;
                for (int n = 0; n < N; n++) {
                    double s = 0, mag = 0, wabs = 0;
                    for (int k = 0; k < K; k++) {
                        double t = (double)x[m * K + k] * Wd[(size_t)n * K + k];
                        s += t;
                        mag += fabs(t);
                        wabs += fabs(Wd[(size_t)n * K + k]);
                    }
                    double tol = 1e-5 * mag + 1e-6;
                    if (f == MT_WF_I8) tol += wabs * (amax / 127.0) / 2 * 1.001;
                    if (with_b) s += b[n];
                    if ((flags & MT_LIN_RELU) && s < 0) s = 0;
                    if (flags & MT_LIN_ACCUM) s += 0.25;
                    double d = fabs(y[m * N + n] - s);
                    if (d > tol) {
                        CHECK_MSG(0, "%s %s%s linear M%d K%d N%d parts %d flags %d: y[%d][%d] %.7g ref %.7g tol %.3g",
                                  r->level, mt_wfmt_name(f), conv ? " (converted)" : "", M, K, N, nparts, flags, m, n,
                                  y[m * N + n], s, tol);
                        goto done;
                    }
                    if (d / (tol + 1e-30) > worst) worst = d / tol;
                }
            }
            if (scalar_out) {
                /* int8: every level reproduces the scalar level's bits (exact
                 * integer sums, then the same float epilogue), in every
                 * flag/bias case: the vector epilogues must round as finish() */
                float *ref = scalar_out + (size_t)(flags * 2 + with_b) * M * N;
                if (ref[0] != ref[0]) memcpy(ref, y, sizeof(float) * M * N);
                else
                    for (int i = 0; i < M * N; i++)
                        if (memcmp(&y[i], &ref[i], sizeof(float)) != 0) {
                            CHECK_MSG(0, "%s int8%s M%d K%d N%d flags %d bias %d: y[%d] %.9g, scalar level %.9g",
                                      r->level, conv ? " (converted)" : "", M, K, N, flags, with_b, i, y[i], ref[i]);
                            break;
                        }
            }
        }
    /* batch invariance: each row alone gives the batched result exactly */
    {
        float *y1 = malloc(sizeof(float) * N);
        for (int m = 0; m < M; m++) {
            CHECK(r->be->ops->linear(r->x, x + (size_t)m * K, 1, w, bw, y1, 0) == STTS_OK);
            CHECK(r->be->ops->linear(r->x, x, M, w, bw, y, 0) == STTS_OK);
            if (memcmp(y1, y + (size_t)m * N, sizeof(float) * N) != 0) {
                CHECK_MSG(0, "%s %s M%d K%d N%d: row %d alone differs from the batch", r->level, mt_wfmt_name(f), M,
                          K, N, m);
                break;
            }
        }
        free(y1);
    }
    /* gather: rows of the weight in a new contiguous weight give the same columns */
    {
        int ids[6] = {0, 1, N / 2, N - 2, N - 1, 2}, n = N >= 4 ? 6 : 1; /* 4+ rows: a whole group gathered */
        mt_weight *g = NULL;
        CHECK(r->be->ops->weight_gather(r->be, w, ids, n, &g, &e) == STTS_OK);
        float *yg = malloc(sizeof(float) * M * n);
        CHECK(r->be->ops->linear(r->x, x, M, g, NULL, yg, 0) == STTS_OK);
        CHECK(r->be->ops->linear(r->x, x, M, w, NULL, y, 0) == STTS_OK);
        for (int m = 0; m < M; m++)
            for (int i = 0; i < n; i++)
                if (yg[m * n + i] != y[m * N + ids[i]]) {
                    CHECK_MSG(0, "%s %s gather: row %d differs", r->level, mt_wfmt_name(f), ids[i]);
                    m = M;
                    break;
                }
        free(yg);
        r->be->ops->weight_free(r->be, g);
        mt_weight *bad = NULL;
        CHECK_EQ_INT(r->be->ops->weight_gather(r->be, w, (int[]){N}, 1, &bad, &e), STTS_ERR_INVALID_ARG);
        CHECK(bad == NULL);
    }
done:
    r->be->ops->weight_free(r->be, w);
    r->be->ops->weight_free(r->be, bw);
    free(W), free(Wd), free(x), free(b), free(y), free(q), free(qs);
}

static void check_layernorm(rig *r) {
    const int M = 3, D = 77;
    float x[3 * 77], g[77], b[77], y[3 * 77];
    for (int i = 0; i < M * D; i++) x[i] = frand() * 3 + 0.5f;
    for (int i = 0; i < D; i++) g[i] = 1 + frand() * 0.1f, b[i] = frand() * 0.1f;
    mt_weight *gw = vec(r, g, D), *bw = vec(r, b, D);
    CHECK(r->be->ops->layernorm(r->x, x, M, gw, bw, 1e-5f, y) == STTS_OK);
    for (int m = 0; m < M; m++) {
        double mean = 0, var = 0;
        for (int i = 0; i < D; i++) mean += x[m * D + i];
        mean /= D;
        for (int i = 0; i < D; i++) var += (x[m * D + i] - mean) * (x[m * D + i] - mean);
        var /= D;
        for (int i = 0; i < D; i++) {
            double ref = (x[m * D + i] - mean) / sqrt(var + 1e-5) * g[i] + b[i];
            CHECK_NEAR(y[m * D + i], ref, 1e-5 * fabs(ref) + 1e-6);
        }
    }
    r->be->ops->weight_free(r->be, gw);
    r->be->ops->weight_free(r->be, bw);
}

/* fold 1: each row's last key and value come through new_k/new_v (the
 * decoder's cache write folded into the attention) with that cache position
 * poisoned beforehand: the output must be the same, and the cache must hold
 * the new key and value afterwards. */
/* H heads of 16, rows with 1, 20 and L keys. Small cases run on the calling
 * thread; larger ones (L = 150) go to the pool in tasks of several heads
 * (H = 20: groups of 10, H = 6: of 6), which must not change a result. */
static void check_attention(rig *r, int fold, int H, int L) {
    enum { R = 3, HD = 16 };
    const int D = H * HD;
    float *q = malloc(sizeof(float) * R * D), *kv = malloc(sizeof(float) * L * 2 * D), *out = malloc(sizeof(float) * R * D);
    float *kv0 = malloc(sizeof(float) * L * 2 * D), *nkv = malloc(sizeof(float) * R * 2 * D);
    double *sc = malloc(sizeof(double) * L);
    for (int i = 0; i < R * D; i++) q[i] = frand();
    for (int i = 0; i < L * 2 * D; i++) kv0[i] = kv[i] = frand();
    const float *kp[R], *vp[R];
    int lens[R] = {1, 20, L};
    for (int i = 0; i < R; i++) kp[i] = kv, vp[i] = kv + D;
    mt_attn_args a = {R, H, HD, q, D, kp, vp, lens, 2 * D, out, D, NULL, NULL, 0, 0};
    if (fold) {
        for (int row = 0; row < R; row++) { /* rows share the cache, at different last positions */
            float *last = kv + (size_t)(lens[row] - 1) * 2 * D;
            memcpy(nkv + (size_t)row * 2 * D, last, sizeof(float) * 2 * D);
            for (int i = 0; i < 2 * D; i++) last[i] = 1e30f;
        }
        a.new_k = nkv, a.new_v = nkv + D, a.new_stride = 2 * D;
    }
    CHECK(r->be->ops->attention(r->x, &a) == STTS_OK);
    if (fold) CHECK_MSG(memcmp(kv, kv0, sizeof(float) * L * 2 * D) == 0, "the cache holds the new keys and values");
    free(kv);
    kv = kv0;
    for (int row = 0; row < R; row++)
        for (int h = 0; h < H; h++) {
            double mx = -1e300, sum = 0;
            for (int j = 0; j < lens[row]; j++) {
                double s = 0;
                for (int i = 0; i < HD; i++) s += (double)q[row * D + h * HD + i] * kv[j * 2 * D + h * HD + i];
                sc[j] = s;
                mx = s > mx ? s : mx;
            }
            for (int j = 0; j < lens[row]; j++) sum += (sc[j] = exp(sc[j] - mx));
            for (int i = 0; i < HD; i++) {
                double o = 0;
                for (int j = 0; j < lens[row]; j++) o += sc[j] / sum * kv[j * 2 * D + D + h * HD + i];
                CHECK_NEAR(out[row * D + h * HD + i], o, 1e-5 * fabs(o) + 1e-6);
            }
        }
    free(q), free(kv), free(out), free(nkv), free(sc);
}

/* ---- select_topk: the search's selection ----
 * Against the search's own rule written here (search.c's row_stats): the
 * top k columns by value, equal values lower column first, exactly; the
 * log-softmax (x - max) - log(sum in double of exp(x - max)) within 4e-6
 * (the SIMD levels' exp is their own polynomial, about one ulp). Widths
 * around the 8192-column chunk, ties, the search's -1e9 masks, and a NaN
 * (never chosen). The same bits on 1 and 3 threads: the chunks, not the
 * threads, fix the order of the sums. */
static void ref_select(const float *x, int V, int k, int *top, float *lp) {
    int n = 0;
    float mx = -INFINITY;
    for (int v = 0; v < V; v++) {
        if (x[v] != x[v]) continue;
        if (x[v] > mx) mx = x[v];
        if (n < k || x[v] > x[top[n - 1]]) {
            int p = n < k ? n++ : k - 1;
            while (p > 0 && x[v] > x[top[p - 1]]) {
                top[p] = top[p - 1];
                p--;
            }
            top[p] = v;
        }
    }
    double s = 0.0;
    for (int v = 0; v < V; v++)
        if (x[v] == x[v]) s += exp((double)x[v] - mx);
    for (int q = 0; q < k; q++) lp[q] = (float)((double)x[top[q]] - mx - log(s));
}

static void check_select(rig *r) {
    static const int widths[] = {1, 5, 17, 100, 8191, 8192, 8193, 20000, 40001};
    static const int ks[] = {1, 2, 8, 64};
    mt_exec *x3 = NULL;
    stts_error e;
    CHECK(r->be->ops->exec_new(r->be, 3, &x3, &e) == STTS_OK);
    CHECK(r->be->ops->select_topk != NULL && r->be->ops->select_max_k >= 64);
    if (!x3 || !r->be->ops->select_topk) return;
    for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++) {
        for (int kind = 0; kind < 3; kind++) {
            const int V = widths[wi], R = 3;
            float *x = malloc(sizeof(float) * R * V);
            for (int i = 0; i < R * V; i++) {
                float f = frand() * 12.0f;
                x[i] = kind == 1 ? roundf(f * 2.0f) / 2.0f : f; /* kind 1: many equal values */
            }
            if (kind == 2) { /* masks as the search writes them, and one NaN */
                for (int i = 0; i < R * V; i += 3) x[i] = -1.0e9f;
                x[V / 2] = NAN;
            }
            for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++) {
                int k = ks[ki] < V ? ks[ki] : V;
                if (kind == 2 && k > V / 2) continue; /* enough values that are not masked or NaN */
                int32_t *top = malloc(sizeof(int32_t) * R * k), *top3 = malloc(sizeof(int32_t) * R * k);
                int *rt = malloc(sizeof(int) * k);
                float *lp = malloc(sizeof(float) * R * k), *lp3 = malloc(sizeof(float) * R * k);
                float *rl = malloc(sizeof(float) * k);
                CHECK(r->be->ops->select_topk(r->x, x, R, V, k, top, lp) == STTS_OK);
                CHECK(r->be->ops->select_topk(x3, x, R, V, k, top3, lp3) == STTS_OK);
                CHECK_MSG(memcmp(top, top3, sizeof(int32_t) * R * k) == 0 && memcmp(lp, lp3, sizeof(float) * R * k) == 0,
                          "V=%d k=%d kind %d: 1 and 3 threads differ", V, k, kind);
                for (int row = 0; row < R; row++) {
                    ref_select(x + (size_t)row * V, V, k, rt, rl);
                    for (int q = 0; q < k; q++) {
                        CHECK_MSG(top[row * k + q] == rt[q], "V=%d k=%d kind %d row %d: rank %d is column %d, not %d",
                                  V, k, kind, row, q, top[row * k + q], rt[q]);
                        CHECK_NEAR(lp[row * k + q], rl[q], 4e-6);
                    }
                }
                free(top), free(top3), free(rt), free(lp), free(lp3), free(rl);
            }
            free(x);
        }
    }
    /* k above the op's limit is refused (the search then selects itself) */
    float one = 0.0f;
    int32_t t1;
    float l1;
    CHECK(r->be->ops->select_topk(r->x, &one, 1, 1, r->be->ops->select_max_k + 1, &t1, &l1) != STTS_OK);
    r->be->ops->exec_free(x3);
}

/* bf16 and f16 weights give, at every level, the bits of an f32 weight
 * holding the same values (the half kernels keep the f32 kernel's order):
 * an f16 checkpoint loaded as f16 or as f32 translates the same. A level
 * whose f32 path fell to another kernel than its half path (an AVX-VNNI f32
 * linear ran the scalar kernel) fails here. */
static void check_half_as_f32(rig *r) {
    static const int shapes[][3] = {{1, 1024, 12}, {3, 100, 9}, {20, 256, 16}};
    for (int fi = 0; fi < 2; fi++) {
        mt_wfmt f = fi ? MT_WF_F16 : MT_WF_BF16;
        if (f == MT_WF_F16 && !have_f16_ref()) continue;
        for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
            const int M = shapes[si][0], K = shapes[si][1], N = shapes[si][2];
            float *W = malloc(sizeof(float) * N * K), *Wd = malloc(sizeof(float) * N * K);
            float *x = malloc(sizeof(float) * M * K), *y0 = malloc(sizeof(float) * M * N), *y1 = malloc(sizeof(float) * M * N);
            for (int i = 0; i < N * K; i++) W[i] = frand();
            for (int i = 0; i < M * K; i++) x[i] = frand();
            ref_weights(f, W, N, K, Wd);
            mt_wpart ph = {MT_DTYPE_F32, W, NULL, 0}, pf = {MT_DTYPE_F32, Wd, NULL, 0};
            mt_weight *wh = NULL, *wf = NULL;
            stts_error e;
            CHECK(r->be->ops->weight_new(r->be, &ph, 1, N, K, f, 0, &wh, &e) == STTS_OK);
            CHECK(r->be->ops->weight_new(r->be, &pf, 1, N, K, MT_WF_F32, 0, &wf, &e) == STTS_OK);
            if (wh && wf) {
                CHECK(r->be->ops->linear(r->x, x, M, wh, NULL, y0, 0) == STTS_OK);
                CHECK(r->be->ops->linear(r->x, x, M, wf, NULL, y1, 0) == STTS_OK);
                CHECK_MSG(memcmp(y0, y1, sizeof(float) * M * N) == 0, "%s %s M%d K%d N%d: not the f32 weight's bits",
                          r->level, mt_wfmt_name(f), M, K, N);
            }
            if (wh) r->be->ops->weight_free(r->be, wh);
            if (wf) r->be->ops->weight_free(r->be, wf);
            free(W), free(Wd), free(x), free(y0), free(y1);
        }
    }
}

/* D 128: a converted int8 table in the CPU's interleaved layout (rows 0-7
 * in groups, 8-10 row-major) */
static void check_embed(rig *r, mt_wfmt f, int D) {
    enum { V = 11, DMAX = 128 };
    float T[V * DMAX], Td[V * DMAX], out[3 * DMAX];
    for (int i = 0; i < V * D; i++) T[i] = frand() * 0.1f;
    ref_weights(f, T, V, D, Td);
    mt_wpart p = {MT_DTYPE_F32, T, NULL, 0};
    mt_weight *w = NULL;
    stts_error e;
    CHECK(r->be->ops->weight_new(r->be, &p, 1, V, D, f, 0, &w, &e) == STTS_OK);
    if (!w) return;
    const int32_t ids[3] = {3, 1, 10};
    const int pos[3] = {2, 1, 7}; /* pad_idx 1: zero position row */
    CHECK(r->be->ops->embed(r->x, w, ids, pos, 3, 2.0f, 1, 0, out) == STTS_OK);
    int half = D / 2;
    for (int row = 0; row < 3; row++)
        for (int i = 0; i < D; i++) {
            double ref = (double)Td[ids[row] * D + i] * 2.0;
            if (pos[row] != 1) {
                double fr = exp((i % half) * -(log(10000.0) / (half - 1)));
                ref += i < half ? sin(pos[row] * fr) : cos(pos[row] * fr);
            }
            CHECK_NEAR(out[row * D + i], ref, 1e-5 * fabs(ref) + 1e-6);
        }
    r->be->ops->weight_free(r->be, w);
}

static void check_small_ops(rig *r) {
    float a[12], b[12];
    for (int i = 0; i < 12; i++) a[i] = (float)i;
    CHECK(r->be->ops->scale_cols(r->x, a, 3, 2, 4, 0.5f) == STTS_OK);
    for (int i = 0; i < 12; i++) CHECK(a[i] == ((i % 4) < 2 ? i * 0.5f : (float)i));
    CHECK(r->be->ops->copy(r->x, b, a, 12) == STTS_OK);
    CHECK(memcmp(a, b, sizeof a) == 0);
}

static const int SHAPES[][4] = {/* M, K, N, parts */
                                {1, 64, 12, 1},  {1, 100, 9, 3}, {2, 33, 20, 2}, {4, 256, 16, 1},  {5, 17, 6, 3},
                                {8, 48, 24, 3},  {9, 96, 13, 1}, {70, 40, 8, 2}, {1, 1024, 300, 3},
                                {6, 1100, 10, 2} /* K over two of the half kernels' 512-column panels */,
                                {7, 200, 9, 1} /* 4 + 3 rows, 64-byte int8 vectors and a tail */,
                                {70, 192, 6, 1} /* past the 64-row chunk of x rows */,
                                {3, 1000, 7, 1} /* 3 rows in one pass (AVX2 int8), an odd N, a K tail */};
#define NSHAPES (sizeof SHAPES / sizeof *SHAPES)
static float *g_i8ref[NSHAPES];
static int g_simd, g_threads, g_ran;

/* One SIMD level and thread count: every op, every format. */
static void every_op(void) {
    rig r;
    if (!rig_open(&r, g_simd, g_threads)) return;
    g_ran++;
    for (size_t fi = 0; fi < sizeof FORMATS / sizeof *FORMATS; fi++) {
        if (FORMATS[fi] == MT_WF_F16 && !have_f16_ref()) {
            printf("skip f16: this CPU has no F16C for the reference conversion\n");
            continue;
        }
        for (size_t s = 0; s < NSHAPES; s++) {
            g_rng = 1000 + s; /* same data at every level */
            check_linear(&r, FORMATS[fi], SHAPES[s][0], SHAPES[s][1], SHAPES[s][2], SHAPES[s][3],
                         FORMATS[fi] == MT_WF_I8 ? g_i8ref[s] : NULL, 0);
            if (FORMATS[fi] == MT_WF_I8) {
                g_rng = 1000 + s;
                check_linear(&r, FORMATS[fi], SHAPES[s][0], SHAPES[s][1], SHAPES[s][2], SHAPES[s][3], g_i8ref[s], 1);
            }
        }
        check_embed(&r, FORMATS[fi], 24);
        check_embed(&r, FORMATS[fi], 128);
    }
    check_half_as_f32(&r);
    check_layernorm(&r);
    check_attention(&r, 0, 4, 37);
    check_attention(&r, 1, 4, 37);
    check_attention(&r, 0, 20, 150);
    check_attention(&r, 1, 6, 150);
    check_small_ops(&r);
    check_select(&r);
    printf("%s: linear (%zu shapes x 4 formats x 8 flag/bias cases, gather, read), layernorm, attention, embed, "
           "scale, copy, select\n",
           r.level, NSHAPES);
    rig_close(&r);
}

/* quant.h's rule as the engine runs it (vectorized where the CPU allows)
 * against its plain-C reference, bit for bit: every length around the
 * vector widths, exact ties (k + 0.5 after scaling), zeros and -0, one
 * large value among tiny ones, an all-zero row. */
static void quantize_rule_matches_reference(void) {
    enum { MAXN = 300 };
    float w[MAXN];
    int8_t q[MAXN + 1], r[MAXN + 1];
    for (int n = 1; n <= MAXN; n += (n < 70 ? 1 : 23)) {
        for (int kind = 0; kind < 4; kind++) {
            for (int i = 0; i < n; i++) {
                switch (kind) {
                case 0: w[i] = frand(); break;
                case 1: w[i] = (float)((int)(frand() * 127.0f)) + 0.5f; break; /* ties with scale 1 */
                case 2: w[i] = (i % 3 == 0) ? -0.0f : frand() * 1e-30f; break;
                default: w[i] = 0.0f;
                }
            }
            if (kind == 1) w[n / 2] = 127.0f; /* amax 127: scale exactly 1, so the .5s stay ties */
            if (kind == 2) w[n - 1] = -3.0f;
            memset(q, 0x55, sizeof q);
            memset(r, 0x55, sizeof r);
            float sq = mt_quantize_row_i8(w, (size_t)n, q), sr = mt_quantize_row_i8_ref(w, (size_t)n, r);
            CHECK_MSG(memcmp(&sq, &sr, sizeof sq) == 0, "n=%d kind %d: scale %g vs reference %g", n, kind, sq, sr);
            CHECK_MSG(memcmp(q, r, (size_t)n) == 0 && q[n] == 0x55, "n=%d kind %d: codes differ from the reference",
                      n, kind);
        }
    }
}

int main(void) {
    /* the backend's own int8, bf16 and f16 conversions (check_linear's conv
     * 1 and every half weight, embed) in the interleaved layout at every
     * level, whichever the level prefers: every kernel reads both layouts;
     * the in-place int8 and f32 sources are row-major */
    setenv("STTS_CPU_I8_LAYOUT", "interleaved", 0);
    setenv("STTS_CPU_HALF_LAYOUT", "interleaved", 0);
    TEST_RUN(quantize_rule_matches_reference);
    static const struct {
        int simd;
        const char *name;
    } levels[] = {{NLLB_SIMD_SCALAR, "scalar"},
                  {NLLB_SIMD_AVX2, "avx2"},
                  {NLLB_SIMD_AVX_VNNI, "avxvnni"},
                  {NLLB_SIMD_AVX512, "avx512"},
                  {NLLB_SIMD_AVX512_VNNI, "avx512vnni"},
                  {NLLB_SIMD_NEON, "neon"}};
    const char *only = getenv("STTS_SIMD");
    for (size_t s = 0; s < NSHAPES; s++) {
        g_i8ref[s] = malloc(sizeof(float) * 8 * SHAPES[s][0] * SHAPES[s][2]); /* 4 flags x bias or not */
        for (int c = 0; c < 8; c++) g_i8ref[s][(size_t)c * SHAPES[s][0] * SHAPES[s][2]] = NAN;
    }
    for (size_t li = 0; li < sizeof levels / sizeof *levels; li++) {
        if (only && *only && strcmp(only, "auto") && strcmp(only, levels[li].name)) continue;
        for (g_threads = 1; g_threads <= 2; g_threads++) {
            g_simd = levels[li].simd;
            TEST_RUN(every_op);
        }
    }
    for (size_t s = 0; s < NSHAPES; s++) free(g_i8ref[s]);
    if (!g_ran) TEST_SKIP_ALL("STTS_SIMD=%s names no level this CPU has", only ? only : "");
    return TEST_SUMMARY();
}
