/* test_nllb_model.c - the engine core without fixture files: a tiny model
 * with random weights built in memory, checked against an independent,
 * deliberately naive M2M100 forward pass written here in double precision
 * (full recomputation, no KV cache, no fused weights' tricks beyond reading
 * them), plus the kernels against a double reference at every SIMD level,
 * thread-count and batch invariance, beam scores recomputed from logits,
 * force_length, abort, truncation and bad arguments. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cpu/kernels.h"
#include "model.h"
#include "nllb.h"
#include "test.h"

static nllb_config tiny_config(void) {
    nllb_config c = nllb_config_600m();
    c.vocab_size = 600;
    c.spm_size = 300;
    c.d_model = 32;
    c.encoder_layers = 2;
    c.decoder_layers = 2;
    c.encoder_attention_heads = c.decoder_attention_heads = 4;
    c.encoder_ffn_dim = 48;
    c.decoder_ffn_dim = 40;
    c.max_position_embeddings = 64;
    c.max_length = 40;
    return c;
}

static void wf_reset(nllb_model *m);

static nllb_model *tiny_model(int threads, nllb_simd simd) {
    nllb_config c = tiny_config();
    nllb_model_params p = nllb_model_default_params();
    p.threads = threads;
    p.simd = simd;
    nllb_model *m = NULL;
    stts_error e;
    stts_status st = nllb_model_new_random(&c, 42, &p, &m, &e);
    CHECK_MSG(st == STTS_OK, "%s", e.msg);
    wf_reset(m); /* the reference reads this model's weights */
    return m;
}

/* ---------------- naive reference forward (double) ---------------- */

/* Weights as f32, read through the backend (weight_read), cached per handle. */
static struct {
    const mt_weight *w;
    float *f;
} g_wcache[512];
static int g_nw;
static nllb_model *g_wmodel;

static const float *wf(const mt_weight *w) {
    for (int i = 0; i < g_nw; i++)
        if (g_wcache[i].w == w) return g_wcache[i].f;
    CHECK(g_nw < 512);
    float *f = malloc(sizeof(float) * (size_t)w->rows * w->cols);
    stts_error e;
    CHECK(g_wmodel->be->ops->weight_read(g_wmodel->be, w, 0, w->rows, f, &e) == STTS_OK);
    g_wcache[g_nw].w = w;
    g_wcache[g_nw++].f = f;
    return f;
}

static void wf_reset(nllb_model *m) {
    for (int i = 0; i < g_nw; i++) free(g_wcache[i].f);
    g_nw = 0;
    g_wmodel = m;
}

static void ref_linear(const mt_lin *l, int row0, int rows, const double *x, double *y) {
    /* y[rows] = x W[row0..row0+rows)^T + b */
    for (int o = 0; o < rows; o++) {
        double s = wf(l->b)[row0 + o];
        for (int i = 0; i < l->in; i++) s += (double)wf(l->w)[(size_t)(row0 + o) * l->in + i] * x[i];
        y[o] = s;
    }
}

static void ref_ln(const mt_ln *l, int d, const double *x, double *y) {
    double mean = 0, var = 0;
    for (int i = 0; i < d; i++) mean += x[i];
    mean /= d;
    for (int i = 0; i < d; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= d;
    for (int i = 0; i < d; i++) y[i] = (x[i] - mean) / sqrt(var + 1e-5) * wf(l->g)[i] + wf(l->b)[i];
}

static void ref_embed(const nllb_model *m, int id, int index, double *x) {
    int d = m->pub.d_model, half = d / 2;
    double scale = m->pub.scale_embedding ? sqrt((double)d) : 1.0;
    double c = log(10000.0) / (half - 1);
    int pos = index + m->pub.pad_token_id + 1;
    for (int i = 0; i < d; i++) x[i] = wf(m->embed)[(size_t)id * d + i] * scale;
    if (id == m->pub.pad_token_id) return; /* pad tokens get the zero position row */
    for (int i = 0; i < half; i++) {
        x[i] += sin(pos * exp(-i * c));
        x[half + i] += cos(pos * exp(-i * c));
    }
}

/* softmax(q K^T / sqrt(hd)) V for one query over n keys (rows of width d) */
static void ref_attend(int d, int H, const double *q, const double *K, const double *Vv, int n, double *out) {
    int hd = d / H;
    double *sc = malloc((size_t)n * sizeof(double));
    for (int h = 0; h < H; h++) {
        double mx = -1e300, sum = 0;
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int i = 0; i < hd; i++) s += q[h * hd + i] / sqrt((double)hd) * K[(size_t)j * d + h * hd + i];
            sc[j] = s;
            if (s > mx) mx = s;
        }
        for (int j = 0; j < n; j++) sum += (sc[j] = exp(sc[j] - mx));
        for (int i = 0; i < hd; i++) {
            double o = 0;
            for (int j = 0; j < n; j++) o += sc[j] / sum * Vv[(size_t)j * d + h * hd + i];
            out[h * hd + i] = o;
        }
    }
    free(sc);
}

static void ref_ffn(const mt_lin *fc1, const mt_lin *fc2, const double *h, double *x) {
    double *f = malloc((size_t)fc1->out * sizeof(double)), *o = malloc((size_t)fc2->out * sizeof(double));
    ref_linear(fc1, 0, fc1->out, h, f);
    for (int i = 0; i < fc1->out; i++) f[i] = f[i] > 0 ? f[i] : 0;
    ref_linear(fc2, 0, fc2->out, f, o);
    for (int i = 0; i < fc2->out; i++) x[i] += o[i];
    free(f), free(o);
}

/* Encoder output [S][d] of src. */
static double *ref_encoder(const nllb_model *m, const int32_t *src, int S) {
    int d = m->pub.d_model, H = m->pub.encoder_attention_heads;
    double *x = calloc((size_t)S * d, sizeof(double)), *h = calloc((size_t)S * d, sizeof(double));
    double *q = calloc((size_t)S * d, sizeof(double)), *k = calloc((size_t)S * d, sizeof(double));
    double *v = calloc((size_t)S * d, sizeof(double)), *a = calloc((size_t)d, sizeof(double));
    double *o = calloc((size_t)d, sizeof(double));
    for (int t = 0; t < S; t++) ref_embed(m, src[t], t, x + (size_t)t * d);
    for (int l = 0; l < m->pub.encoder_layers; l++) {
        const mt_enc_layer *L = &m->enc[l];
        for (int t = 0; t < S; t++) {
            ref_ln(&L->ln_attn, d, x + (size_t)t * d, h + (size_t)t * d);
            ref_linear(&L->qkv, 0, d, h + (size_t)t * d, q + (size_t)t * d);
            ref_linear(&L->qkv, d, d, h + (size_t)t * d, k + (size_t)t * d);
            ref_linear(&L->qkv, 2 * d, d, h + (size_t)t * d, v + (size_t)t * d);
        }
        for (int t = 0; t < S; t++) {
            ref_attend(d, H, q + (size_t)t * d, k, v, S, a);
            ref_linear(&L->o, 0, d, a, o);
            for (int i = 0; i < d; i++) x[(size_t)t * d + i] += o[i];
        }
        for (int t = 0; t < S; t++) {
            ref_ln(&L->ln_ffn, d, x + (size_t)t * d, h + (size_t)t * d);
            ref_ffn(&L->fc1, &L->fc2, h + (size_t)t * d, x + (size_t)t * d);
        }
    }
    for (int t = 0; t < S; t++) ref_ln(&m->enc_ln, d, x + (size_t)t * d, h + (size_t)t * d);
    free(x), free(q), free(k), free(v), free(a), free(o);
    return h;
}

/* Logits [V] after the last of dec[0..T), recomputing the whole prefix. */
static double *ref_logits(const nllb_model *m, const int32_t *src, int S, const int32_t *dec, int T) {
    int d = m->pub.d_model, H = m->pub.decoder_attention_heads, V = m->pub.vocab_size;
    double *enc = ref_encoder(m, src, S);
    double *x = calloc((size_t)T * d, sizeof(double)), *h = calloc((size_t)T * d, sizeof(double));
    double *q = calloc((size_t)T * d, sizeof(double)), *k = calloc((size_t)T * d, sizeof(double));
    double *v = calloc((size_t)T * d, sizeof(double)), *a = calloc((size_t)d, sizeof(double));
    double *o = calloc((size_t)d, sizeof(double));
    double *ck = calloc((size_t)S * d, sizeof(double)), *cv = calloc((size_t)S * d, sizeof(double));
    for (int t = 0; t < T; t++) ref_embed(m, dec[t], t, x + (size_t)t * d);
    for (int l = 0; l < m->pub.decoder_layers; l++) {
        const mt_dec_layer *L = &m->dec[l];
        for (int t = 0; t < T; t++) {
            ref_ln(&L->ln_self, d, x + (size_t)t * d, h + (size_t)t * d);
            ref_linear(&L->qkv, 0, d, h + (size_t)t * d, q + (size_t)t * d);
            ref_linear(&L->qkv, d, d, h + (size_t)t * d, k + (size_t)t * d);
            ref_linear(&L->qkv, 2 * d, d, h + (size_t)t * d, v + (size_t)t * d);
        }
        for (int t = 0; t < T; t++) { /* causal: keys 0..t */
            ref_attend(d, H, q + (size_t)t * d, k, v, t + 1, a);
            ref_linear(&L->o, 0, d, a, o);
            for (int i = 0; i < d; i++) x[(size_t)t * d + i] += o[i];
        }
        for (int s = 0; s < S; s++) {
            ref_linear(&L->ckv, 0, d, enc + (size_t)s * d, ck + (size_t)s * d);
            ref_linear(&L->ckv, d, d, enc + (size_t)s * d, cv + (size_t)s * d);
        }
        for (int t = 0; t < T; t++) {
            ref_ln(&L->ln_cross, d, x + (size_t)t * d, h + (size_t)t * d);
            ref_linear(&L->cq, 0, d, h + (size_t)t * d, q + (size_t)t * d);
            ref_attend(d, H, q + (size_t)t * d, ck, cv, S, a);
            ref_linear(&L->co, 0, d, a, o);
            for (int i = 0; i < d; i++) x[(size_t)t * d + i] += o[i];
        }
        for (int t = 0; t < T; t++) {
            ref_ln(&L->ln_ffn, d, x + (size_t)t * d, h + (size_t)t * d);
            ref_ffn(&L->fc1, &L->fc2, h + (size_t)t * d, x + (size_t)t * d);
        }
    }
    ref_ln(&m->dec_ln, d, x + (size_t)(T - 1) * d, h);
    double *lg = malloc((size_t)V * sizeof(double));
    for (int vv = 0; vv < V; vv++) {
        double s = 0;
        for (int i = 0; i < d; i++) s += wf(m->lm_head)[(size_t)vv * d + i] * h[i];
        lg[vv] = s;
    }
    free(enc), free(x), free(h), free(q), free(k), free(v), free(a), free(o), free(ck), free(cv);
    return lg;
}

static const int32_t SRC[] = {301 + 46, 17, 250, 99, 4, 123, 2}; /* [eng_Latn-like id] tokens </s> */
#define NSRC ((int)(sizeof SRC / sizeof *SRC))

/* ---------------- tests ---------------- */

static void test_kernels_match_double_reference(void) {
    const int shapes[][3] = {{1, 64, 37}, {3, 100, 9}, {4, 32, 8}, {5, 17, 6}, {9, 48, 13}, {70, 40, 5}};
    int levels[] = {MT_KL_SCALAR, MT_KL_AVX2, MT_KL_AVX512, MT_KL_AVX512VNNI};
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        int M = shapes[si][0], K = shapes[si][1], N = shapes[si][2];
        float *x = malloc(sizeof(float) * M * K), *W = malloc(sizeof(float) * N * K), *b = malloc(sizeof(float) * N);
        float *y = malloc(sizeof(float) * M * N);
        for (int i = 0; i < M * K; i++) x[i] = (float)sin(i * 0.37) * 2.0f;
        for (int i = 0; i < N * K; i++) W[i] = (float)cos(i * 0.11) * 0.5f;
        for (int i = 0; i < N; i++) b[i] = (float)i * 0.1f - 0.3f;
        for (size_t li = 0; li < sizeof levels / sizeof *levels; li++) {
            int lv = mt_kernels_pick(levels[li]);
            for (int flags = 0; flags < 4; flags++) {
                for (int i = 0; i < M * N; i++) y[i] = 1.5f;
                /* two slices, as two threads would split it */
                mt_linear_rows(lv, x, M, K, W, N, b, y, flags, 0, 4 < N ? 4 : N);
                mt_linear_rows(lv, x, M, K, W, N, b, y, flags, 4 < N ? 4 : N, N);
                for (int mm = 0; mm < M; mm++)
                    for (int n = 0; n < N; n++) {
                        double s = b[n];
                        for (int k = 0; k < K; k++) s += (double)x[mm * K + k] * W[n * K + k];
                        if (flags & MT_LIN_RELU) s = s > 0 ? s : 0;
                        if (flags & MT_LIN_ACCUM) s += 1.5;
                        CHECK_NEAR(y[mm * N + n], s, 1e-4 * (1 + fabs(s)));
                    }
            }
            float dref = 0;
            for (int k = 0; k < K; k++) dref += x[k] * W[k];
            CHECK_NEAR(mt_dot(lv, x, W, K), dref, 1e-4 * K);
        }
        free(x), free(W), free(b), free(y);
    }
}

static void test_forward_matches_naive_reference(void) {
    nllb_model *m = tiny_model(2, NLLB_SIMD_AUTO);
    if (!m) return;
    stts_error e;
    nllb_session *s = NULL;
    CHECK(nllb_session_new(m, NULL, &s, &e) == STTS_OK);
    int d = m->pub.d_model, V = m->pub.vocab_size;
    /* encoder */
    float *enc = malloc(sizeof(float) * NSRC * d);
    CHECK(nllb_encode(s, SRC, NSRC, enc, &e) == STTS_OK);
    double *renc = ref_encoder(m, SRC, NSRC);
    double maxd = 0;
    for (int i = 0; i < NSRC * d; i++) maxd = fmax(maxd, fabs(enc[i] - renc[i]));
    CHECK_MSG(maxd < 1e-4, "encoder max diff %g", maxd);
    /* incremental decoder vs full recomputation, at every position */
    const int32_t dec[] = {2, 301 + 79, 44, 1 /* pad inside */, 77, 12};
    const int T = 6;
    float *lg = malloc(sizeof(float) * T * V);
    CHECK(nllb_decoder_logits(s, SRC, NSRC, dec, T, lg, &e) == STTS_OK);
    for (int t = 1; t <= T; t++) {
        double *rl = ref_logits(m, SRC, NSRC, dec, t);
        maxd = 0;
        for (int v = 0; v < V; v++) maxd = fmax(maxd, fabs(lg[(size_t)(t - 1) * V + v] - rl[v]));
        CHECK_MSG(maxd < 2e-4, "decoder logits at step %d: max diff %g", t, maxd);
        free(rl);
    }
    free(enc), free(renc), free(lg);
    nllb_session_free(s);
    nllb_model_free(m);
}

static void translate1(nllb_session *s, int beams, int max_new, nllb_result *r) {
    stts_error e;
    nllb_translate_params p = nllb_translate_default_params();
    p.num_beams = beams;
    p.max_new_tokens = max_new;
    const int32_t *src[1] = {SRC};
    int n = NSRC;
    CHECK_MSG(nllb_translate_ids(s, src, &n, 1, 301 + 79, &p, r, &e) == STTS_OK, "%s", e.msg);
}

static void test_threads_and_simd_invariance(void) {
    nllb_model *a = tiny_model(1, NLLB_SIMD_SCALAR), *b = tiny_model(2, NLLB_SIMD_AUTO);
    if (!a || !b) return;
    stts_error e;
    nllb_session *sa, *sb;
    CHECK(nllb_session_new(a, NULL, &sa, &e) == STTS_OK);
    CHECK(nllb_session_new(b, NULL, &sb, &e) == STTS_OK);
    nllb_result ra, rb;
    translate1(sa, 4, 20, &ra);
    translate1(sb, 4, 20, &rb);
    CHECK_EQ_INT(ra.n_ids, rb.n_ids);
    for (int i = 0; i < ra.n_ids && i < rb.n_ids; i++) CHECK_EQ_INT(ra.ids[i], rb.ids[i]);
    CHECK_NEAR(ra.score, rb.score, 1e-4);
    nllb_result_clear(&ra), nllb_result_clear(&rb);
    nllb_session_free(sa), nllb_session_free(sb);
    nllb_model_free(a), nllb_model_free(b);
}

/* greedy and beam through the incremental path agree with choices made on
 * the naive reference's logits, and the beam score is sum(logp)/len */
static void test_search_against_reference(void) {
    nllb_model *m = tiny_model(2, NLLB_SIMD_AUTO);
    if (!m) return;
    stts_error e;
    nllb_session *s;
    CHECK(nllb_session_new(m, NULL, &s, &e) == STTS_OK);
    int V = m->pub.vocab_size;
    nllb_result g;
    translate1(s, 1, 12, &g);
    CHECK(g.n_ids >= 3);
    CHECK_EQ_INT(g.ids[0], 2);
    CHECK_EQ_INT(g.ids[1], 301 + 79);
    double gsum = 0;
    for (int t = 2; t < g.n_ids; t++) {
        double *rl = ref_logits(m, SRC, NSRC, g.ids, t);
        int best = 0;
        double mx = rl[0], se = 0;
        for (int v = 1; v < V; v++)
            if (rl[v] > rl[best]) best = v, mx = rl[v];
        for (int v = 0; v < V; v++) se += exp(rl[v] - mx);
        CHECK_EQ_INT(g.ids[t], best);
        gsum += rl[g.ids[t]] - mx - log(se);
        free(rl);
    }
    CHECK_NEAR(g.score, gsum, 1e-3);
    /* beam: its score is the sum of the chosen tokens' log-probs over the generated length */
    nllb_result b;
    translate1(s, 4, 12, &b);
    CHECK(b.n_ids >= 3);
    double bsum = 0;
    for (int t = 2; t < b.n_ids; t++) {
        double *rl = ref_logits(m, SRC, NSRC, b.ids, t);
        double mx = rl[0], se = 0;
        for (int v = 1; v < V; v++) mx = fmax(mx, rl[v]);
        for (int v = 0; v < V; v++) se += exp(rl[v] - mx);
        bsum += rl[b.ids[t]] - mx - log(se);
        free(rl);
    }
    CHECK_NEAR(b.score, bsum / (b.n_ids - 1), 1e-3);
    nllb_result_clear(&g), nllb_result_clear(&b);
    nllb_session_free(s);
    nllb_model_free(m);
}


/* ---------------- a literal transcription of HF's _beam_search ----------------
 * Batch 1, early_stopping False, one eos: tensors as plain arrays, top-k by
 * full scans (descending, lower flat index first on ties), every -1e9 mask
 * added as HF adds it, logits recomputed for every beam prefix through
 * nllb_decoder_logits (no KV-cache reuse, no per-row top-k shortcut, no slot
 * juggling). The engine's optimised search must give the same ids and score. */
static void topk_scan(const float *v, int n, int k, int *out) {
    char *used = calloc((size_t)n, 1);
    for (int q = 0; q < k; q++) {
        int best = -1;
        for (int i = 0; i < n; i++)
            if (!used[i] && (best < 0 || v[i] > v[best])) best = i;
        used[best] = 1;
        out[q] = best;
    }
    free(used);
}

static void literal_beam(nllb_session *s, const nllb_model *m, const int32_t *src, int nsrc, int32_t bos, int B,
                         int L, float lp, int32_t *out_ids, int *out_n, float *out_score) {
    const int V = m->pub.vocab_size, K = 2 * B, eos = 2;
    int32_t *run = calloc((size_t)B * L, sizeof(int32_t)), *seq = calloc((size_t)B * L, sizeof(int32_t));
    int32_t *trun = calloc((size_t)K * L, sizeof(int32_t)), *tmp = calloc((size_t)(B + K) * L, sizeof(int32_t));
    int *seqlen = calloc((size_t)B, sizeof(int)), *tmplen = calloc((size_t)(B + K), sizeof(int));
    float *acc = malloc(sizeof(float) * (size_t)B * V), *lg = malloc(sizeof(float) * (size_t)L * V);
    float rs[16], bsc[16], tv[32], rv[32], mv[48];
    int fin[16], hits[32], tk[48], mfin[48];
    stts_error e;
    for (int b = 0; b < B; b++) {
        run[(size_t)b * L] = 2;
        seq[(size_t)b * L] = 2;
        seqlen[b] = 1;
        rs[b] = b ? -1.0e9f : 0.0f;
        bsc[b] = -1.0e9f;
        fin[b] = 0;
    }
    int heur = 1, cur = 1;
    for (;;) {
        for (int b = 0; b < B; b++) {
            CHECK(nllb_decoder_logits(s, src, nsrc, run + (size_t)b * L, cur, lg, &e) == STTS_OK);
            const float *x = lg + (size_t)(cur - 1) * V;
            float mx = x[0];
            for (int v = 1; v < V; v++) mx = x[v] > mx ? x[v] : mx;
            double sum = 0;
            for (int v = 0; v < V; v++) sum += expf(x[v] - mx);
            float lse = (float)log(sum);
            for (int v = 0; v < V; v++) {
                float l = (x[v] - mx) - lse;
                if (cur == 1) l = v == bos ? 0.0f : -INFINITY; /* ForcedBOSTokenLogitsProcessor */
                acc[(size_t)b * V + v] = l + rs[b];
            }
        }
        int top[32];
        topk_scan(acc, B * V, K, top);
        for (int q = 0; q < K; q++) {
            int b = top[q] / V, t = top[q] % V;
            tv[q] = acc[top[q]];
            memcpy(trun + (size_t)q * L, run + (size_t)b * L, sizeof(int32_t) * (size_t)L);
            trun[(size_t)q * L + cur] = t;
            hits[q] = t == eos || cur + 1 >= L;
        }
        for (int q = 0; q < K; q++) rv[q] = tv[q] + (hits[q] ? -1.0e9f : -0.0f);
        int nx[16];
        topk_scan(rv, K, B, nx);
        for (int b = 0; b < B; b++) {
            memcpy(run + (size_t)b * L, trun + (size_t)nx[b] * L, sizeof(int32_t) * (size_t)L);
            rs[b] = rv[nx[b]];
        }
        for (int b = 0; b < B; b++) {
            mv[b] = bsc[b];
            mfin[b] = fin[b];
            memcpy(tmp + (size_t)b * L, seq + (size_t)b * L, sizeof(int32_t) * (size_t)L);
            tmplen[b] = seqlen[b];
        }
        for (int q = 0; q < K; q++) {
            int did = hits[q] && q < B;
            float v = tv[q] / (float)pow((double)(cur + 1 - 1), (double)lp);
            v += (!heur) ? -1.0e9f : -0.0f;
            v += (!did) ? -1.0e9f : -0.0f;
            mv[B + q] = v;
            mfin[B + q] = did;
            memcpy(tmp + (size_t)(B + q) * L, trun + (size_t)q * L, sizeof(int32_t) * (size_t)L);
            tmplen[B + q] = cur + 1;
        }
        topk_scan(mv, B + K, B, tk);
        for (int b = 0; b < B; b++) {
            bsc[b] = mv[tk[b]];
            fin[b] = mfin[tk[b]];
            memcpy(seq + (size_t)b * L, tmp + (size_t)tk[b] * L, sizeof(int32_t) * (size_t)L);
            seqlen[b] = tmplen[tk[b]];
        }
        cur++;
        float best = rs[0] / (float)pow((double)(cur - 1), (double)lp), worst = bsc[0];
        for (int b = 1; b < B; b++) worst = bsc[b] < worst ? bsc[b] : worst;
        int any = 0, allhit = 1;
        for (int b = 0; b < B; b++) any |= best > (fin[b] ? worst : -1.0e9f);
        for (int q = 0; q < K; q++) allhit &= hits[q];
        heur = heur && any;
        if (!heur || allhit) break;
    }
    *out_n = seqlen[0];
    memcpy(out_ids, seq, sizeof(int32_t) * (size_t)seqlen[0]);
    *out_score = bsc[0];
    free(run), free(seq), free(trun), free(tmp), free(seqlen), free(tmplen), free(acc), free(lg);
}

static void test_beam_matches_literal_hf_transcription(void) {
    nllb_model *m = tiny_model(2, NLLB_SIMD_AUTO);
    if (!m) return;
    /* make </s> a frequent choice (scale its tied embedding row), so beams
     * finish at different lengths and the early-stop rules are exercised */
    {   /* a new f32 embedding through the backend, row 2 doubled */
        int V = m->pub.vocab_size, d = m->pub.d_model;
        float *t = malloc(sizeof(float) * (size_t)V * d);
        stts_error e0;
        CHECK(m->be->ops->weight_read(m->be, m->embed, 0, V, t, &e0) == STTS_OK);
        for (int i = 0; i < d; i++) t[2 * d + i] *= 2.0f;
        mt_wpart part = {MT_DTYPE_F32, t, NULL, 0};
        mt_weight *w = NULL;
        CHECK(m->be->ops->weight_new(m->be, &part, 1, V, d, MT_WF_F32, 0, &w, &e0) == STTS_OK);
        m->be->ops->weight_free(m->be, m->embed);
        m->embed = m->lm_head = w;
        free(t);
    }
    int early = 0;
    stts_error e;
    nllb_session *s;
    CHECK(nllb_session_new(m, NULL, &s, &e) == STTS_OK);
    const int32_t s1[] = {347, 5, 6, 7, 2}, s2[] = {347, 2}, s3[] = {347, 200, 201, 202, 203, 204, 205, 2};
    const int32_t *srcs[3] = {s1, s2, s3};
    int lens[3] = {5, 2, 8}, distinct = 0;
    const float lps[2] = {1.0f, 0.6f};
    const int beam_sizes[3] = {2, 5, 9}; /* 9: more candidates (B x 2B) than 2 * 64 */
    int searches = 0;
    for (int li = 0; li < 2; li++)
        for (int bi = 0; bi < 3; bi++)
            for (int k = 0; k < 3; k++) {
                int B = beam_sizes[bi];
                searches++;
                int32_t ids[64];
                int n;
                float sc;
                literal_beam(s, m, srcs[k], lens[k], 380, B, 14, lps[li], ids, &n, &sc);
                nllb_translate_params p = nllb_translate_default_params();
                p.num_beams = B;
                p.max_length = 14;
                p.length_penalty = lps[li];
                nllb_result r;
                CHECK(nllb_translate_ids(s, &srcs[k], &lens[k], 1, 380, &p, &r, &e) == STTS_OK);
                CHECK_EQ_INT(r.n_ids, n);
                int same = r.n_ids == n;
                for (int i = 0; same && i < n; i++) same = r.ids[i] == ids[i];
                CHECK_MSG(same, "beam %d, length_penalty %.1f, source %d: ids differ", B, lps[li], k);
                CHECK_NEAR(r.score, sc, 1e-6);
                for (int i = 3; i < r.n_ids; i++) distinct |= r.ids[i] != r.ids[2];
                early += r.n_ids < 14;
                nllb_result_clear(&r);
            }
    CHECK(distinct); /* the outputs are real token sequences, not one token repeated */
    CHECK(early > 0);  /* some finished with </s> before max_length */
    printf("literal beam transcription: %d searches identical, %d ended with </s> early\n", searches, early);
    nllb_session_free(s);
    nllb_model_free(m);
}

/* Three sources of 5, 2 and 9 tokens (eng_Latn 347 ... </s>) for the
 * batch tests below. */
static const int32_t src3_a[] = {347, 5, 6, 7, 2}, src3_b[] = {347, 2},
                     src3_c[] = {347, 200, 201, 202, 203, 204, 205, 206, 2};
static const int32_t *const src3[3] = {src3_a, src3_b, src3_c};
static int src3_lens[3] = {5, 2, 9};

/* a and b hold the same ids, and scores within tol (0: the same bits). */
static void check_same_result(const nllb_result *a, const nllb_result *b, double tol) {
    CHECK_EQ_INT(a->n_ids, b->n_ids);
    for (int k = 0; k < a->n_ids && k < b->n_ids; k++) CHECK_EQ_INT(a->ids[k], b->ids[k]);
    if (tol > 0) CHECK_NEAR(a->score, b->score, tol);
    else CHECK(memcmp(&a->score, &b->score, sizeof(float)) == 0);
}

static void test_batch_equals_single(void) {
    nllb_model *m = tiny_model(2, NLLB_SIMD_AUTO);
    if (!m) return;
    stts_error e;
    nllb_session *s;
    CHECK(nllb_session_new(m, NULL, &s, &e) == STTS_OK);
    for (int beams = 1; beams <= 3; beams += 2) {
        nllb_translate_params p = nllb_translate_default_params();
        p.num_beams = beams;
        p.max_new_tokens = 15;
        nllb_result rb[3], r1;
        CHECK(nllb_translate_ids(s, src3, src3_lens, 3, 380, &p, rb, &e) == STTS_OK);
        for (int i = 0; i < 3; i++) {
            CHECK(nllb_translate_ids(s, &src3[i], &src3_lens[i], 1, 380, &p, &r1, &e) == STTS_OK);
            check_same_result(&r1, &rb[i], 1e-5);
            nllb_result_clear(&r1);
            nllb_result_clear(&rb[i]);
        }
    }
    nllb_session_free(s);
    nllb_model_free(m);
}

/* The forced language step and the first chosen step as one pass of two
 * rows (mt_decode_prefill, the CPU's default) give the bits of the two
 * steps: the same ids and the same scores to the last bit, greedy and beam,
 * one sentence and several, and at the lengths where the search may not
 * run both steps (1 and 2 new tokens); f32, bf16 and int8 weights, at the
 * scalar level and the best one of this CPU (each kernel's 2-row path
 * against its 1-row path). */
static void prefill_same_bits(nllb_weights wfmt, nllb_simd simd);
static void test_prefill_same_bits(void) {
    const nllb_weights fm[] = {NLLB_WEIGHTS_F32, NLLB_WEIGHTS_BF16, NLLB_WEIGHTS_INT8};
    for (size_t i = 0; i < sizeof fm / sizeof fm[0]; i++) {
        prefill_same_bits(fm[i], NLLB_SIMD_SCALAR);
        prefill_same_bits(fm[i], NLLB_SIMD_AUTO);
    }
}

static void prefill_same_bits(nllb_weights wfmt, nllb_simd simd) {
    nllb_config c = tiny_config();
    nllb_model_params mp = nllb_model_default_params();
    mp.threads = 2;
    mp.simd = simd;
    mp.weights = wfmt;
    nllb_model *m = NULL;
    stts_error e;
    CHECK_MSG(nllb_model_new_random(&c, 42, &mp, &m, &e) == STTS_OK, "%s", e.msg);
    if (!m) return;
    CHECK(nllb_model_weights(m) == wfmt);
    nllb_session *s;
    CHECK(nllb_session_new(m, NULL, &s, &e) == STTS_OK);
    const int maxnew[] = {1, 2, 3, 15};
    for (int beams = 1; beams <= 3; beams += 2)
        for (int n = 1; n <= 3; n += 2)
            for (size_t q = 0; q < sizeof maxnew / sizeof maxnew[0]; q++) {
                nllb_translate_params p = nllb_translate_default_params();
                p.num_beams = beams;
                p.max_new_tokens = maxnew[q];
                nllb_result a[3], b[3];
                unsetenv("STTS_PREFILL");
                CHECK(nllb_translate_ids(s, src3, src3_lens, n, 380, &p, a, &e) == STTS_OK);
                setenv("STTS_PREFILL", "0", 1);
                CHECK(nllb_translate_ids(s, src3, src3_lens, n, 380, &p, b, &e) == STTS_OK);
                unsetenv("STTS_PREFILL");
                for (int i = 0; i < n; i++) {
                    check_same_result(&a[i], &b[i], 0.0);
                    nllb_result_clear(&a[i]);
                    nllb_result_clear(&b[i]);
                }
            }
    nllb_session_free(s);
    nllb_model_free(m);
}

/* A caller's shortlist (NLLB_SHORTLIST_IDS) is cached by the list as given,
 * so the sort happens once per list: the same list again, the same ids in a
 * new buffer, in another order or with duplicates all give the same
 * translation; a list changed in place between calls is taken as changed
 * (never the stale cache); a bad id is reported even after a good list was
 * cached. A set holding every token the full vocabulary chose gives the same
 * greedy ids (each step's arg-max is in the set). */
static void test_shortlist_ids_cache(void) {
    nllb_model *m = tiny_model(2, NLLB_SIMD_AUTO);
    if (!m) return;
    stts_error e;
    nllb_session *s;
    CHECK(nllb_session_new(m, NULL, &s, &e) == STTS_OK);
    const int32_t *src[1] = {SRC};
    int n = NSRC;
    nllb_translate_params p = nllb_translate_default_params();
    p.max_new_tokens = 12;
    nllb_result full, r;
    CHECK(nllb_translate_ids(s, src, &n, 1, 380, &p, &full, &e) == STTS_OK);
    if (full.n_ids < 3) {
        CHECK_MSG(0, "the tiny model stopped after %d ids", full.n_ids);
        nllb_result_clear(&full);
        nllb_session_free(s);
        nllb_model_free(m);
        return;
    }
    /* the chosen tokens plus every tenth id, in descending order, twice */
    int32_t list[256], copy[256], perm[256];
    int nl = 0;
    for (int i = 0; i < full.n_ids; i++) list[nl++] = full.ids[i];
    for (int id = 590; id >= 0 && nl < 200; id -= 10) list[nl++] = id, list[nl++] = id;
    memcpy(copy, list, sizeof(int32_t) * (size_t)nl);
    for (int i = 0; i < nl; i++) perm[i] = list[nl - 1 - i];
    p.shortlist = NLLB_SHORTLIST_IDS;
    const int32_t *lists[4] = {list, list, copy, perm};
    for (int k = 0; k < 4; k++) {
        p.shortlist_ids = lists[k];
        p.n_shortlist_ids = nl;
        CHECK(nllb_translate_ids(s, src, &n, 1, 380, &p, &r, &e) == STTS_OK);
        CHECK_EQ_INT(r.n_ids, full.n_ids);
        for (int i = 0; i < r.n_ids && i < full.n_ids; i++) CHECK_EQ_INT(r.ids[i], full.ids[i]);
        nllb_result_clear(&r);
    }
    /* the same buffer, changed in place: the first ordinary piece the full
     * vocabulary chose (not special, not a language id, not in the source)
     * is gone from the set, so the output differs there */
    int j = 2;
    while (j < full.n_ids) {
        int in_src = 0;
        for (int i = 0; i < NSRC; i++) in_src |= SRC[i] == full.ids[j];
        if (full.ids[j] > 3 && full.ids[j] <= 300 && !in_src) break;
        j++;
    }
    CHECK_MSG(j < full.n_ids, "no ordinary piece in the tiny model's output: pick another source");
    if (j < full.n_ids) {
        int32_t gone = full.ids[j];
        for (int i = 0; i < nl; i++)
            if (list[i] == gone) list[i] = 1; /* <pad>: in every set anyway */
        p.shortlist_ids = list;
        CHECK(nllb_translate_ids(s, src, &n, 1, 380, &p, &r, &e) == STTS_OK);
        CHECK_MSG(r.n_ids <= j || r.ids[j] != gone, "a stale shortlist chose the removed id %d at %d", gone, j);
        nllb_result_clear(&r);
    }
    /* a bad id after good lists were cached */
    int32_t bad[3] = {5, 600, 7};
    p.shortlist_ids = bad;
    p.n_shortlist_ids = 3;
    CHECK(nllb_translate_ids(s, src, &n, 1, 380, &p, &r, &e) == STTS_ERR_INVALID_ARG);
    CHECK_MSG(strstr(e.msg, "600") && strstr(e.msg, "entry 2"), "%s", e.msg);
    nllb_result_clear(&full);
    nllb_session_free(s);
    nllb_model_free(m);
}

static void count_tokens(void *user, int sentence, int step, int32_t token) {
    (void)sentence, (void)step, (void)token;
    int *n = user;
    (*n)++;
}

static void test_force_length_callback_abort(void) {
    nllb_model *m = tiny_model(2, NLLB_SIMD_AUTO);
    if (!m) return;
    stts_error e;
    nllb_session *s;
    CHECK(nllb_session_new(m, NULL, &s, &e) == STTS_OK);
    const int32_t *src[1] = {SRC};
    int n = NSRC, calls = 0;
    for (int beams = 1; beams <= 4; beams += 3) {
        nllb_translate_params p = nllb_translate_default_params();
        p.num_beams = beams;
        p.force_length = 9;
        p.on_token = count_tokens;
        p.user = &calls;
        calls = 0;
        nllb_result r;
        CHECK(nllb_translate_ids(s, src, &n, 1, 380, &p, &r, &e) == STTS_OK);
        CHECK_EQ_INT(r.n_ids, 11); /* start, language, 9 tokens */
        CHECK_EQ_INT(calls, 10);   /* language + 9 */
        nllb_result_clear(&r);
    }
    atomic_int stop;
    atomic_init(&stop, 1);
    nllb_translate_params p = nllb_translate_default_params();
    p.abort_flag = &stop;
    nllb_result r;
    CHECK(nllb_translate_ids(s, src, &n, 1, 380, &p, &r, &e) == STTS_ERR_CANCELLED);
    CHECK(r.ids == NULL);
    nllb_session_free(s);
    nllb_model_free(m);
}

static void test_bad_input_and_truncation(void) {
    nllb_model *m = tiny_model(1, NLLB_SIMD_AUTO);
    if (!m) return;
    stts_error e;
    nllb_session *s;
    CHECK(nllb_session_new(m, NULL, &s, &e) == STTS_OK);
    nllb_result r;
    const int32_t bad[] = {347, 100000, 2};
    const int32_t *src[1] = {bad};
    int n = 3;
    CHECK(nllb_translate_ids(s, src, &n, 1, 380, NULL, &r, &e) == STTS_ERR_INVALID_ARG);
    CHECK(strstr(e.msg, "100000") != NULL);
    CHECK(nllb_translate_ids(s, src, &n, 1, -5, NULL, &r, &e) == STTS_ERR_INVALID_ARG);
    n = 0;
    CHECK(nllb_translate_ids(s, src, &n, 1, 380, NULL, &r, &e) == STTS_ERR_INVALID_ARG);
    /* unknown language codes; a model without tokenizer refuses text */
    CHECK_EQ_INT(nllb_model_lang_id(m, "xxx_Yyyy"), -1);
    CHECK_EQ_INT(nllb_model_lang_id(m, "eng_Latn"), 300 + 1 + 46);
    CHECK_EQ_INT(nllb_model_lang_id(m, "jpn_Jpan"), 300 + 1 + 78);
    const char *txt[1] = {"hello"};
    CHECK(nllb_translate(s, txt, 1, "eng_Latn", "jpn_Jpan", NULL, &r, &e) == STTS_ERR_UNSUPPORTED);
    /* max length beyond the positions */
    nllb_translate_params p = nllb_translate_default_params();
    p.max_length = 1000;
    const int32_t ok[] = {347, 5, 2};
    src[0] = ok;
    n = 3;
    CHECK(nllb_translate_ids(s, src, &n, 1, 380, &p, &r, &e) == STTS_ERR_INVALID_ARG);
    CHECK(strstr(e.msg, "max_position_embeddings") != NULL);
    /* a source longer than the positions is truncated, keeping </s>, and flagged */
    int L = 100;
    int32_t *lng = malloc(sizeof(int32_t) * L);
    lng[0] = 347;
    for (int i = 1; i < L - 1; i++) lng[i] = 10 + i;
    lng[L - 1] = 2;
    src[0] = lng;
    p = nllb_translate_default_params();
    p.max_new_tokens = 4;
    CHECK(nllb_translate_ids(s, src, &L, 1, 380, &p, &r, &e) == STTS_OK);
    CHECK_EQ_INT(r.truncated, 1);
    CHECK_EQ_INT(r.src_tokens, 64);
    nllb_result_clear(&r);
    free(lng);
    /* bad configs name the key */
    nllb_config c = tiny_config();
    c.d_model = 30; /* 4 heads do not divide 30 */
    nllb_model *m2 = NULL;
    CHECK(nllb_model_new_random(&c, 1, NULL, &m2, &e) == STTS_ERR_INVALID_ARG);
    CHECK(strstr(e.msg, "heads") != NULL);
    CHECK(m2 == NULL);
    /* missing model directory */
    CHECK(nllb_model_load("/nonexistent/model", NULL, &m2, &e) != STTS_OK);
    CHECK(m2 == NULL);
    CHECK(e.msg[0] != 0);
    nllb_session_free(s);
    nllb_model_free(m);
}

static void test_languages(void) {
    CHECK_EQ_INT(nllb_num_languages(), 202);
    CHECK_EQ_STR(nllb_language_code(46), "eng_Latn");
    CHECK_EQ_STR(nllb_language_code(78), "jpn_Jpan");
    CHECK(nllb_language_code(202) == NULL);
    CHECK(nllb_language_code(-1) == NULL);
}

/* nllb_config_600m() is what the real 600M config.json says (shared/nllb). */
static void test_600m_config_matches_hf_file(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/nllb/nllb-200-distilled-600M.config.json", STTS_SHARED_DIR);
    FILE *f = fopen(path, "rb");
    if (!f) {
        TEST_SKIP("%s absent (the shared/ folder beside the checkout)", path);
        return;
    }
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    mt_config c;
    stts_error e;
    CHECK_MSG(mt_config_parse(buf, n, NULL, 0, &c, &e) == STTS_OK, "%s", e.msg);
    nllb_config r = nllb_config_600m();
    CHECK_EQ_INT(c.vocab_size, r.vocab_size);
    CHECK_EQ_INT(c.d_model, r.d_model);
    CHECK_EQ_INT(c.encoder_layers, r.encoder_layers);
    CHECK_EQ_INT(c.decoder_layers, r.decoder_layers);
    CHECK_EQ_INT(c.encoder_attention_heads, r.encoder_attention_heads);
    CHECK_EQ_INT(c.decoder_attention_heads, r.decoder_attention_heads);
    CHECK_EQ_INT(c.encoder_ffn_dim, r.encoder_ffn_dim);
    CHECK_EQ_INT(c.decoder_ffn_dim, r.decoder_ffn_dim);
    CHECK_EQ_INT(c.max_position_embeddings, r.max_position_embeddings);
    CHECK_EQ_INT(c.pad_token_id, r.pad_token_id);
    CHECK_EQ_INT(c.decoder_start_token_id, r.decoder_start_token_id);
    CHECK_EQ_INT(c.scale_embedding, r.scale_embedding);
}

/* generation_config eos_token_id lists: any id of the list stops, in greedy
 * and in beam search (HF's stopping rule), not only the first one. */
static void test_eos_list_any_id_stops(void) {
    nllb_model *m = tiny_model(1, NLLB_SIMD_AUTO);
    if (!m) return;
    stts_error e;
    nllb_session *s;
    CHECK(nllb_session_new(m, NULL, &s, &e) == STTS_OK);
    nllb_result g;
    translate1(s, 1, 12, &g);
    CHECK(g.n_ids >= 5);
    int stop = g.ids[3], n_before = g.n_ids, want = 4;
    for (int i = 2; i < 4; i++)
        if (g.ids[i] == stop) { want = i + 1; break; }
    nllb_result_clear(&g);
    CHECK(stop != m->pub.eos_token_id);
    CHECK(nllb_model_is_eos(m, m->pub.eos_token_id) && !nllb_model_is_eos(m, stop));
    /* the list [eos, stop]: the greedy path reaches stop at index 3 and ends there */
    m->cfg.gen_eos_ids[0] = m->pub.eos_token_id;
    m->cfg.gen_eos_ids[1] = stop;
    m->cfg.n_gen_eos_ids = 2;
    CHECK(nllb_model_is_eos(m, stop));   /* what the pipeline's guard asks (guard_hit_max) */
    translate1(s, 1, 12, &g);
    CHECK_MSG(g.n_ids == want && g.ids[want - 1] == stop, "stopped after %d ids (unlisted: %d), wanted %d", g.n_ids,
              n_before, want);
    nllb_result_clear(&g);
    /* beam: no hypothesis continues past a listed id */
    translate1(s, 4, 12, &g);
    for (int i = 0; i + 1 < g.n_ids; i++) CHECK_MSG(g.ids[i] != stop || i < 2, "beam went on after listed eos at %d", i);
    nllb_result_clear(&g);
    nllb_session_free(s);
    nllb_model_free(m);
}

/* Two sessions of one model translate at the same time: each one's token
 * callback waits (bounded) until the other is inside its own translation;
 * with a model-wide run lock this would time out. Results equal the
 * sequential ones. */
typedef struct {
    nllb_session *s;
    atomic_int *mine, *other;
    int timed_out;
    nllb_result r;
} conc_arg;

static void conc_cb(void *user, int sentence, int step, int32_t tok) {
    (void)sentence, (void)tok;
    conc_arg *a = user;
    if (step != 2) return;
    atomic_store(a->mine, 1);
    for (int i = 0; i < 10000 && !atomic_load(a->other); i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    if (!atomic_load(a->other)) a->timed_out = 1;
}

static void *conc_main(void *p) {
    conc_arg *a = p;
    nllb_translate_params tp = nllb_translate_default_params();
    tp.num_beams = 2;
    tp.max_new_tokens = 12;
    tp.on_token = conc_cb;
    tp.user = a;
    const int32_t *src[1] = {SRC};
    int n = NSRC;
    stts_error e;
    if (nllb_translate_ids(a->s, src, &n, 1, 301 + 79, &tp, &a->r, &e) != STTS_OK) a->r.n_ids = -1;
    return NULL;
}

static void test_sessions_run_concurrently(void) {
    nllb_model *m = tiny_model(2, NLLB_SIMD_AUTO);
    if (!m) return;
    stts_error e;
    nllb_session *s1, *s2;
    CHECK(nllb_session_new(m, NULL, &s1, &e) == STTS_OK);
    CHECK(nllb_session_new(m, NULL, &s2, &e) == STTS_OK);
    nllb_result ref;
    translate1(s1, 2, 12, &ref);
    atomic_int f1 = 0, f2 = 0;
    conc_arg a = {s1, &f1, &f2, 0, {0}}, b = {s2, &f2, &f1, 0, {0}};
    pthread_t t1, t2;
    CHECK(pthread_create(&t1, NULL, conc_main, &a) == 0);
    CHECK(pthread_create(&t2, NULL, conc_main, &b) == 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CHECK_MSG(!a.timed_out && !b.timed_out, "the two sessions did not run at the same time");
    conc_arg *both[2] = {&a, &b};
    for (int k = 0; k < 2; k++) {
        CHECK_EQ_INT(both[k]->r.n_ids, ref.n_ids);
        for (int i = 0; i < ref.n_ids && i < both[k]->r.n_ids; i++) CHECK_EQ_INT(both[k]->r.ids[i], ref.ids[i]);
        nllb_result_clear(&both[k]->r);
    }
    nllb_result_clear(&ref);
    nllb_session_free(s1), nllb_session_free(s2);
    nllb_model_free(m);
}

/* Weight format, device and SIMD level: bad or unavailable choices are
 * errors naming them; every format loads and translates. */
static void test_params_formats_devices(void) {
    nllb_config c = tiny_config();
    nllb_model_params p = nllb_model_default_params();
    nllb_model *m = NULL;
    stts_error e;
    p.device = NLLB_DEVICE_CUDA;
    stts_error pe;
    if (nllb_cuda_probe(&pe) != STTS_OK) { /* no CUDA build, driver or GPU: an error naming the device */
        stts_status st = nllb_model_new_random(&c, 1, &p, &m, &e);
        CHECK((st == STTS_ERR_UNSUPPORTED || st == STTS_ERR_NOT_FOUND) && !m);
        CHECK(strstr(e.msg, "cuda") != NULL);
    }
    p = nllb_model_default_params();
    p.weights = (nllb_weights)9;
    CHECK(nllb_model_new_random(&c, 1, &p, &m, &e) == STTS_ERR_INVALID_ARG && !m);
    CHECK(nllb_weights_parse("int8") == NLLB_WEIGHTS_INT8 && nllb_weights_parse("q4") == -1);
    CHECK(nllb_device_parse("cuda") == NLLB_DEVICE_CUDA && nllb_device_parse("gpu") == -1);
    p = nllb_model_default_params();
    if (!mt_kernels_supported(MT_KL_AVX512)) { /* forcing a level the CPU lacks is an error, not a fallback */
        p.simd = NLLB_SIMD_AVX512;
        CHECK(nllb_model_new_random(&c, 1, &p, &m, &e) == STTS_ERR_UNSUPPORTED && !m);
        CHECK(strstr(e.msg, "avx512") != NULL);
        p.simd = NLLB_SIMD_AUTO;
    }
    setenv("STTS_SIMD", "sse9", 1);
    CHECK(nllb_model_new_random(&c, 1, &p, &m, &e) == STTS_ERR_UNSUPPORTED && !m);
    CHECK(strstr(e.msg, "STTS_SIMD") != NULL);
    setenv("STTS_SIMD", "scalar", 1);
    CHECK(nllb_model_new_random(&c, 1, &p, &m, &e) == STTS_OK);
    if (m) CHECK(strstr(nllb_model_backend(m), "scalar") != NULL);
    nllb_model_free(m);
    m = NULL;
    unsetenv("STTS_SIMD");
    const nllb_weights fm[] = {NLLB_WEIGHTS_F32, NLLB_WEIGHTS_BF16, NLLB_WEIGHTS_F16, NLLB_WEIGHTS_INT8,
                               NLLB_WEIGHTS_AUTO};
    size_t f32_bytes = 0;
    for (size_t i = 0; i < sizeof fm / sizeof *fm; i++) {
        p.weights = fm[i];
        CHECK_MSG(nllb_model_new_random(&c, 42, &p, &m, &e) == STTS_OK, "%s", e.msg);
        if (!m) continue;
        CHECK(nllb_model_weights(m) == (fm[i] == NLLB_WEIGHTS_AUTO ? NLLB_WEIGHTS_INT8 : fm[i]));
        if (i == 0) f32_bytes = nllb_model_step_bytes(m);
        else CHECK(nllb_model_step_bytes(m) < f32_bytes * 6 / 10); /* the LM head and matrices shrink */
        nllb_session *s;
        CHECK(nllb_session_new(m, NULL, &s, &e) == STTS_OK);
        nllb_result r;
        translate1(s, 1, 10, &r);
        CHECK(r.n_ids >= 3);
        nllb_result_clear(&r);
        nllb_session_free(s);
        nllb_model_free(m);
        m = NULL;
    }
}

/* --shortlist files (nllb_shortlist_parse, the bytes nllb_shortlist_read
 * reads): what parses, and each rejection naming the line. The NUL case is a
 * regression: fgets-based reading took "12<NUL>34" as the id 12. */
#define S(lit) lit, sizeof(lit) - 1   /* a literal and its length (NULs included) */
static void test_shortlist_parse(void) {
    static const struct {
        const char *data;
        size_t size;
        int vocab, n;          /* n < 0: an error containing want */
        int32_t first, last;
        const char *want;
    } cases[] = {
        {S("# ids\n2\n3\n\n 17 \n"), 300, 3, 2, 17, NULL},
        {S("12\r\n299\r\n"), 300, 2, 12, 299, NULL},
        {S("5\n7"), 300, 2, 5, 7, NULL},                      /* no final newline */
        {S("12\n300\n"), 300, -1, 0, 0, "x:2: token id 300 is outside the vocabulary (0..299)"},
        {S("12\nthirteen\n"), 300, -1, 0, 0, "x:2: \"thirteen\" is not a token id"},
        {S("-5\n"), 300, -1, 0, 0, "x:1: token id -5 is outside"},
        {S("12\0" "34\n"), 300, -1, 0, 0, "x:1: a NUL byte"},
        {S("1\n\0\n"), 300, -1, 0, 0, "x:2: a NUL byte"},
        {S("# nothing\n\n"), 300, -1, 0, 0, "shortlist x has no token ids"},
        {S(""), 300, -1, 0, 0, "has no token ids"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int32_t *ids = NULL;
        int n = 0;
        stts_error e;
        stts_error_clear(&e);
        stts_status st = nllb_shortlist_parse(cases[i].data, cases[i].size, cases[i].vocab, "x", &ids, &n, &e);
        if (cases[i].n < 0) {
            CHECK_MSG(st == STTS_ERR_FORMAT && !ids && n == 0 && strstr(e.msg, cases[i].want), "case %zu: %s", i, e.msg);
        } else {
            CHECK_MSG(st == STTS_OK && n == cases[i].n, "case %zu: %s", i, e.msg);
            if (st == STTS_OK && n > 0) {
                CHECK_EQ_INT(ids[0], cases[i].first);
                CHECK_EQ_INT(ids[n - 1], cases[i].last);
            }
        }
        free(ids);
    }
    /* line length: 254 characters and a newline is the longest line */
    char line[300];
    memset(line, ' ', sizeof line);
    line[253] = '7';
    line[254] = '\n';
    int32_t *ids = NULL;
    int n = 0;
    stts_error e;
    CHECK(nllb_shortlist_parse(line, 255, 300, "x", &ids, &n, &e) == STTS_OK && n == 1 && ids[0] == 7);
    free(ids);
    ids = NULL;
    line[254] = '7';
    line[255] = '\n';
    CHECK(nllb_shortlist_parse(line, 256, 300, "x", &ids, &n, &e) == STTS_ERR_FORMAT && strstr(e.msg, "line too long"));
}
#undef S

int main(void) {
    TEST_RUN(test_eos_list_any_id_stops);
    TEST_RUN(test_kernels_match_double_reference);
    TEST_RUN(test_sessions_run_concurrently);
    TEST_RUN(test_params_formats_devices);
    TEST_RUN(test_forward_matches_naive_reference);
    TEST_RUN(test_threads_and_simd_invariance);
    TEST_RUN(test_search_against_reference);
    TEST_RUN(test_beam_matches_literal_hf_transcription);
    TEST_RUN(test_batch_equals_single);
    TEST_RUN(test_prefill_same_bits);
    TEST_RUN(test_force_length_callback_abort);
    TEST_RUN(test_bad_input_and_truncation);
    TEST_RUN(test_languages);
    TEST_RUN(test_600m_config_matches_hf_file);
    TEST_RUN(test_shortlist_parse);
    TEST_RUN(test_shortlist_ids_cache);
    wf_reset(NULL);
    return TEST_SUMMARY();
}
