/* forward.c - the M2M100 forward pass on backend ops, exactly as HF
 * transformers' modeling_m2m_100.py computes it:
 *   x = embed(ids) * sqrt(d) (scale_embedding) + sinusoid(positions from 2)
 *   pre-LN layers: x += Attn(LN(x)); [decoder: x += CrossAttn(LN(x), enc)];
 *                  x += fc2(relu(fc1(LN(x))))
 *   final LayerNorm after each stack; logits = x E^T (tied, no bias).
 * q = (x Wq^T + bq) * head_dim^-0.5 (scaled after the bias). No embedding
 * LayerNorm. The decoder runs one token per step with a KV cache; cross
 * attention K/V are computed once per sentence (mt_encode). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#define LN_EPS 1e-5f

/* A failed backend op ends the pass with a message naming it. */
#define OP(call) \
    do { \
        stts_status st_ = (call); \
        if (st_) return op_failed(s, st_, #call, err); \
    } while (0)

static stts_status op_failed(const nllb_session *s, stts_status st, const char *what, stts_error *err) {
    return stts_error_set(err, st, "backend %s failed (%s)", s->be->desc, what);
}

static float *grow(mt_backend *be, float *old, size_t n) {
    if (old) be->ops->release(be, old);
    return be->ops->alloc(be, n ? n : 1);
}

stts_status mt_session_reserve(nllb_session *s, int tokens, int sents, int slots, int len, stts_error *err) {
    const nllb_model *m = s->m;
    mt_backend *be = s->be;
    const size_t d = (size_t)m->pub.d_model, V = (size_t)m->pub.vocab_size;
    const size_t ffe = (size_t)m->pub.encoder_ffn_dim, ffd = (size_t)m->pub.decoder_ffn_dim;
    const size_t Le = (size_t)m->pub.encoder_layers, Ld = (size_t)m->pub.decoder_layers;
    (void)Le;
    if (tokens < 1) tokens = 1;
    if (sents < 1) sents = 1;
    if (slots < 1) slots = 1;
    if (len < 1) len = 1;
    int ok = 1;
    if (tokens > s->cap_tokens) {
        size_t T = (size_t)tokens;
        s->ex = grow(be, s->ex, T * d);
        s->eh = grow(be, s->eh, T * d);
        s->eqkv = grow(be, s->eqkv, T * 3 * d);
        s->eatt = grow(be, s->eatt, T * d);
        s->eff = grow(be, s->eff, T * ffe);
        s->ckv = grow(be, s->ckv, Ld * T * 2 * d);
        ok = s->ex && s->eh && s->eqkv && s->eatt && s->eff && s->ckv;
        if (ok) s->cap_tokens = tokens;
    }
    if (ok && sents > s->cap_sents) {
        free(s->seg_start);
        free(s->seg_len);
        s->seg_start = malloc((size_t)sents * sizeof(int));
        s->seg_len = malloc((size_t)sents * sizeof(int));
        ok = s->seg_start && s->seg_len;
        if (ok) s->cap_sents = sents;
    }
    if (ok && (slots > s->cap_slots || len > s->cap_len)) {
        int ns = slots > s->cap_slots ? slots : s->cap_slots;
        int nl = len > s->cap_len ? len : s->cap_len;
        /* activation rows for twice the slots: a prefill (mt_decode_prefill)
         * runs two positions of every slot in one pass */
        size_t R = (size_t)ns, R2 = 2 * R;
        s->dx = grow(be, s->dx, R2 * d);
        s->dh = grow(be, s->dh, R2 * d);
        s->dqkv = grow(be, s->dqkv, R2 * 3 * d);
        s->dq = grow(be, s->dq, R2 * d);
        s->datt = grow(be, s->datt, R2 * d);
        s->dff = grow(be, s->dff, R2 * ffd);
        s->logits = grow(be, s->logits, R * V); /* a shortlist's logits are fewer */
        s->kc = grow(be, s->kc, Ld * R * (size_t)nl * d);
        s->vc = grow(be, s->vc, Ld * R * (size_t)nl * d);
        ok = s->dx && s->dh && s->dqkv && s->dq && s->datt && s->dff && s->logits && s->kc && s->vc;
        if (ok && !be->ops->host_visible) {
            free(s->logits_host);
            ok = (s->logits_host = malloc(R * V * sizeof(float))) != NULL;
        }
        if (ok) {
            s->cap_slots = ns;
            s->cap_len = nl;
        }
    }
    if (ok) {
        int rows = s->cap_tokens > 2 * s->cap_slots ? s->cap_tokens : 2 * s->cap_slots;
        free(s->kp);
        free(s->vp);
        free(s->lens);
        free(s->pos);
        free(s->ids);
        s->kp = malloc((size_t)rows * sizeof *s->kp);
        s->vp = malloc((size_t)rows * sizeof *s->vp);
        s->lens = malloc((size_t)rows * sizeof(int));
        s->pos = malloc((size_t)rows * sizeof(int));
        s->ids = malloc((size_t)rows * sizeof(int32_t));
        ok = s->kp && s->vp && s->lens && s->pos && s->ids;
    }
    if (!ok) {
        /* Capacities of failed buffers are unknown now: reset so the next call retries. */
        s->cap_tokens = s->cap_slots = s->cap_len = s->cap_sents = 0;
        return stts_error_set(err, STTS_ERR_NOMEM,
                              "out of memory reserving the translation session (%d source tokens, %d decoder rows "
                              "of %d positions)",
                              tokens, slots, len);
    }
    return STTS_OK;
}

/* y = x W^T + b, then the first cols of each output row times q (the query
 * scaling), fused where the backend can; the same bits either way. */
static stts_status linear_q(nllb_session *s, const float *in, int M, const mt_weight *W, const mt_weight *b, float *y,
                            int cols, float q) {
    const mt_backend_ops *op = s->be->ops;
    if (op->linear_scaled) return op->linear_scaled(s->x, in, M, W, b, y, 0, cols, q);
    stts_status st = op->linear(s->x, in, M, W, b, y, 0);
    return st ? st : op->scale_cols(s->x, y, M, cols, W->rows, q);
}

/* ln_out = LayerNorm(in), then y = ln_out W^T + b (query-scaled when cols
 * > 0), fused where the backend can; the same bits either way. */
static stts_status ln_linear(nllb_session *s, const float *in, int M, const mt_ln *ln, float *ln_out,
                             const mt_weight *W, const mt_weight *b, float *y, int flags, int cols, float q) {
    const mt_backend_ops *op = s->be->ops;
    if (op->ln_linear) return op->ln_linear(s->x, in, M, ln->g, ln->b, LN_EPS, ln_out, W, b, y, flags, cols, q);
    stts_status st = op->layernorm(s->x, in, M, ln->g, ln->b, LN_EPS, ln_out);
    if (st) return st;
    return cols > 0 ? linear_q(s, ln_out, M, W, b, y, cols, q) : op->linear(s->x, ln_out, M, W, b, y, flags);
}

static int position_of(const nllb_model *m, int32_t id, int index) {
    /* HF create_position_ids_from_input_ids: pad tokens get padding_idx (a zero
     * row), others index + padding_idx + 1. */
    int pad = m->pub.pad_token_id;
    return id == pad ? pad : index + pad + 1;
}

stts_status mt_encode(nllb_session *s, const int32_t *ids, int n_sents, int T, float *enc_out, stts_error *err) {
    s->fold_valid = 0; /* the folded cross-attention was of the sentences before */
    const nllb_model *m = s->m;
    mt_exec *be = s->x;
    const mt_backend_ops *op = s->be->ops;
    const int d = m->pub.d_model, H = m->pub.encoder_attention_heads, hd = d / H;
    const float qscale = 1.0f / sqrtf((float)hd);

    for (int i = 0; i < n_sents; i++)
        for (int j = 0; j < s->seg_len[i]; j++) {
            int r = s->seg_start[i] + j;
            s->pos[r] = position_of(m, ids[r], j);
        }
    OP(op->embed(be, m->embed, ids, s->pos, T, m->embed_scale, m->pub.pad_token_id, m->pos_round, s->ex));

    /* every row of sentence i attends to the sentence's own rows */
    for (int i = 0; i < n_sents; i++)
        for (int j = 0; j < s->seg_len[i]; j++) {
            int r = s->seg_start[i] + j;
            s->kp[r] = s->eqkv + (size_t)s->seg_start[i] * 3 * d + d;
            s->vp[r] = s->eqkv + (size_t)s->seg_start[i] * 3 * d + 2 * d;
            s->lens[r] = s->seg_len[i];
        }
    mt_attn_args aa = {T, H, hd, s->eqkv, 3 * d, s->kp, s->vp, s->lens, 3 * d, s->eatt, d, NULL, NULL, 0, 0};

    for (int l = 0; l < m->pub.encoder_layers; l++) {
        const mt_enc_layer *L = &m->enc[l];
        OP(op->layernorm(be, s->ex, T, L->ln_attn.g, L->ln_attn.b, LN_EPS, s->eh));
        OP(linear_q(s, s->eh, T, L->qkv.w, L->qkv.b, s->eqkv, d, qscale));
        OP(op->attention(be, &aa));
        OP(op->linear(be, s->eatt, T, L->o.w, L->o.b, s->ex, MT_LIN_ACCUM));
        OP(op->layernorm(be, s->ex, T, L->ln_ffn.g, L->ln_ffn.b, LN_EPS, s->eh));
        OP(op->linear(be, s->eh, T, L->fc1.w, L->fc1.b, s->eff, MT_LIN_RELU));
        OP(op->linear(be, s->eff, T, L->fc2.w, L->fc2.b, s->ex, MT_LIN_ACCUM));
    }
    OP(op->layernorm(be, s->ex, T, m->enc_ln.g, m->enc_ln.b, LN_EPS, s->eh));
    if (enc_out) OP(op->download(be, enc_out, s->eh, (size_t)T * d));
    /* cross-attention K/V of every decoder layer, once per sentence */
    for (int l = 0; l < m->pub.decoder_layers; l++) {
        const mt_dec_layer *L = &m->dec[l];
        OP(op->linear(be, s->eh, T, L->ckv.w, L->ckv.b, s->ckv + (size_t)l * s->cap_tokens * 2 * d, 0));
    }
    return STTS_OK;
}

static float *kv_row(const nllb_session *s, float *base, int layer, int slot, int t) {
    size_t d = (size_t)s->m->pub.d_model;
    return base + (((size_t)layer * s->cap_slots + (size_t)slot) * s->cap_len + (size_t)t) * d;
}

stts_status mt_kv_copy_slot(nllb_session *s, int dst, int src, int len, stts_error *err) {
    if (dst == src || len <= 0) return STTS_OK;
    size_t n = (size_t)len * s->m->pub.d_model;
    const int L = s->m->pub.decoder_layers;
    if (s->be->ops->copy_many && L <= 64) { /* one launch for every layer's keys and values */
        const float *pairs[4 * 64];
        for (int l = 0; l < L; l++) {
            pairs[4 * l] = kv_row(s, s->kc, l, dst, 0), pairs[4 * l + 1] = kv_row(s, s->kc, l, src, 0);
            pairs[4 * l + 2] = kv_row(s, s->vc, l, dst, 0), pairs[4 * l + 3] = kv_row(s, s->vc, l, src, 0);
        }
        OP(s->be->ops->copy_many(s->x, pairs, 2 * L, n));
        return STTS_OK;
    }
    for (int l = 0; l < L; l++) {
        OP(s->be->ops->copy(s->x, kv_row(s, s->kc, l, dst, 0), kv_row(s, s->kc, l, src, 0), n));
        OP(s->be->ops->copy(s->x, kv_row(s, s->vc, l, dst, 0), kv_row(s, s->vc, l, src, 0), n));
    }
    return STTS_OK;
}

static stts_status decode_step(nllb_session *s, int R, const int32_t *tok, const int *from_row, const int *slot,
                               const int *sent, int t, const int *rt, int lr0, int want_logits, stts_error *err);

/* Whether the model's cross-attention may run folded (backend.h
 * cross_fold_*): not with f32 weights, whose results are to be HF's to the
 * bit (the fold sums in another order), unless STTS_CROSS_FOLD=1 asks for
 * it anyway (tests: the folded path against the plain one at f32);
 * STTS_CROSS_FOLD=0 never folds (A/B). */
static int fold_forced = -1; /* mt_cross_fold_force */
void mt_cross_fold_force(int mode) { fold_forced = mode < 0 ? -1 : mode != 0; }

static int fold_wanted(const nllb_model *m) {
    static int env = -2;
    if (fold_forced >= 0) return fold_forced;
    if (env == -2) {
        const char *e = getenv("STTS_CROSS_FOLD");
        env = e && e[0] ? e[0] != '0' : -1;
    }
    return env >= 0 ? env : m->wfmt != MT_WF_F32;
}

/* Called before a step's bracket (the preparation is per sentence, not a
 * part of the recorded step): sets s->fold_now when this step's
 * cross-attention runs folded, with the sentence's M, c and Nt made if they
 * are not there yet. Only for rows that all read one sentence of at most
 * cross_fold_max_s positions, and at most cross_fold_max_rows rows (greedy
 * and its prefill): each sentence has its own M and Nt, and they grow with
 * its length. */
static stts_status fold_for_step(nllb_session *s, int R, const int *sent, stts_error *err) {
    const nllb_model *m = s->m;
    const mt_backend_ops *op = s->be->ops;
    s->fold_now = 0;
    if (!op->cross_fold_prepare || !op->cross_fold_attend || R < 1 || R > op->cross_fold_max_rows ||
        !fold_wanted(m))
        return STTS_OK;
    for (int r = 1; r < R; r++)
        if (sent[r] != sent[0]) return STTS_OK;
    const int S = s->seg_len[sent[0]], H = m->pub.decoder_attention_heads, L = m->pub.decoder_layers;
    const size_t d = (size_t)m->pub.d_model;
    /* rows of H*S floats: 16-byte copies; 32 layers: the op's limit (backend.h) */
    if (S < 1 || S > op->cross_fold_max_s || (H * S) % 4 || L > 32 || s->fold_nomem) return STTS_OK;
    size_t rows = (size_t)2 * s->cap_slots; /* a prefill's two positions a slot */
    if (S > s->fold_cap_s || rows * H * s->fold_cap_s > s->fold_scores_n) {
        int cap = (S + 15) / 16 * 16;
        if (cap > op->cross_fold_max_s) cap = op->cross_fold_max_s;
        if (cap < s->fold_cap_s) cap = s->fold_cap_s;
        size_t hs = (size_t)H * cap;
        s->fold_m = grow(s->be, s->fold_m, L * hs * d);
        s->fold_c = grow(s->be, s->fold_c, L * hs);
        s->fold_nt = grow(s->be, s->fold_nt, L * hs * d);
        s->fold_scores = grow(s->be, s->fold_scores, rows * hs);
        s->fold_valid = 0;
        if (!s->fold_m || !s->fold_c || !s->fold_nt || !s->fold_scores) {
            /* the fold is an optimization: without memory for it (a full
             * GPU) the session keeps the three passes, and stops asking */
            float **bufs[] = {&s->fold_m, &s->fold_c, &s->fold_nt, &s->fold_scores};
            for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
                if (*bufs[i]) s->be->ops->release(s->be, *bufs[i]), *bufs[i] = NULL;
            s->fold_cap_s = 0, s->fold_scores_n = 0, s->fold_nomem = 1;
            return STTS_OK;
        }
        s->fold_cap_s = cap, s->fold_scores_n = rows * hs;
    }
    if (!s->fold_valid || s->fold_sent != sent[0]) {
        const mt_weight *wq[32], *bq[32], *wo[32];
        for (int l = 0; l < L; l++) wq[l] = m->dec[l].cq.w, bq[l] = m->dec[l].cq.b, wo[l] = m->dec[l].co.w;
        const float qscale = 1.0f / sqrtf((float)(d / (size_t)H));
        const size_t ls = (size_t)H * s->fold_cap_s;
        const float *k = s->ckv + (size_t)s->seg_start[sent[0]] * 2 * d;
        OP(op->cross_fold_prepare(s->x, L, k, k + d, (int)(2 * d), (size_t)s->cap_tokens * 2 * d, S, H, wq, bq,
                                  qscale, wo, s->fold_m, s->fold_c, s->fold_nt, ls * d, ls));
        s->fold_valid = 1, s->fold_sent = sent[0], s->fold_s = S;
    }
    s->fold_now = 1;
    return STTS_OK;
}

/* One decoder step, bracketed for backends that record a step and replay it
 * (step_begin/step_end: CUDA graphs). */
/* The step's selection, inside the bracket so that a recording backend
 * runs it as part of the step: select_ahead with ticket sel_ticket >= 0, or
 * select_topk of k > 0 into top/lp. */
typedef struct {
    int ticket, k;
    int32_t *top;
    float *lp;
} step_select;

static stts_status step_bracket(nllb_session *s, int R, const int32_t *tok, const int *from_row, const int *slot,
                                const int *sent, int t, int want_logits, const step_select *sel, stts_error *err) {
    const mt_backend_ops *op = s->be->ops;
    const int V = s->sl ? s->sl_n : s->m->pub.vocab_size;
    stts_status st = fold_for_step(s, R, sent, err);
    if (st) return st;
    if (op->step_begin) op->step_begin(s->x);
    st = decode_step(s, R, tok, from_row, slot, sent, t, NULL, 0, want_logits, err);
    if (!st && sel && sel->ticket >= 0 && (st = op->select_ahead(s->x, s->logits, R, V, sel->ticket)))
        st = stts_error_set(err, st, "backend %s failed (selecting the best of %d logits)", s->be->desc, V);
    if (!st && sel && sel->k > 0 && (st = op->select_topk(s->x, s->logits, R, V, sel->k, sel->top, sel->lp)))
        st = stts_error_set(err, st, "backend %s failed (selecting the top %d of %d logits)", s->be->desc, sel->k, V);
    if (!op->step_begin) return st;
    stts_status se = op->step_end(s->x, st != STTS_OK);
    if (!st && se) st = op_failed(s, se, "step_end", err);
    return st;
}

stts_status mt_decode_step(nllb_session *s, int R, const int32_t *tok, const int *slot, const int *sent, int t,
                           int want_logits, stts_error *err) {
    return step_bracket(s, R, tok, NULL, slot, sent, t, want_logits, NULL, err);
}

stts_status mt_decode_step_select(nllb_session *s, int R, const int32_t *tok, const int *slot, const int *sent, int t,
                                  int k, int32_t *top, float *lp, stts_error *err) {
    if (!s->be->ops->select_topk || k < 1 || k > s->be->ops->select_max_k)
        return stts_error_set(err, STTS_ERR_UNSUPPORTED, "backend %s cannot select the top %d logits", s->be->desc,
                              k);
    step_select sel = {-1, k, top, lp};
    return step_bracket(s, R, tok, NULL, slot, sent, t, 1, &sel, err);
}

stts_status mt_decode_step_ahead(nllb_session *s, int R, const int32_t *tok, const int *from_row, const int *slot,
                                 const int *sent, int t, int sel_ticket, stts_error *err) {
    const mt_backend_ops *op = s->be->ops;
    if (!op->embed_fed || !op->select_ahead)
        return stts_error_set(err, STTS_ERR_UNSUPPORTED, "backend %s cannot keep a step's choice for the next step",
                              s->be->desc);
    step_select sel = {sel_ticket, 0, NULL, NULL};
    return step_bracket(s, R, tok, tok ? NULL : from_row, slot, sent, t, sel_ticket >= 0, &sel, err);
}

/* tok: the rows' input ids (host); or from_row: each row's id is the one the
 * backend's last select_ahead chose for that row (greedy ahead), and the
 * position assumes a non-pad id (the backend applies the pad rule).
 * rt (NULL: every row at t): row r's position index (a prefill's rows of
 * two positions). With want_logits, the logits of rows [lr0, R) only, into
 * s->logits from its first row. */
static stts_status decode_step(nllb_session *s, int R, const int32_t *tok, const int *from_row, const int *slot,
                               const int *sent, int t, const int *rt, int lr0, int want_logits, stts_error *err) {
    const nllb_model *m = s->m;
    mt_exec *be = s->x;
    const mt_backend_ops *op = s->be->ops;
    const int d = m->pub.d_model, H = m->pub.decoder_attention_heads, hd = d / H;
    const float qscale = 1.0f / sqrtf((float)hd);

    if (tok) {
        for (int r = 0; r < R; r++) s->pos[r] = position_of(m, tok[r], rt ? rt[r] : t);
        OP(op->embed(be, m->embed, tok, s->pos, R, m->embed_scale, m->pub.pad_token_id, m->pos_round, s->dx));
    } else {
        for (int r = 0; r < R; r++) s->pos[r] = position_of(m, m->pub.pad_token_id + 1 /* not pad */, t);
        OP(op->embed_fed(be, m->embed, from_row, s->pos, R, m->embed_scale, m->pub.pad_token_id, m->pos_round,
                         s->dx));
    }

    for (int l = 0; l < m->pub.decoder_layers; l++) {
        const mt_dec_layer *L = &m->dec[l];
        /* self-attention over the row's cache, this token included */
        OP(ln_linear(s, s->dx, R, &L->ln_self, s->dh, L->qkv.w, L->qkv.b, s->dqkv, 0, d, qscale));
        for (int r = 0; r < R; r++) {
            s->kp[r] = kv_row(s, s->kc, l, slot[r], 0);
            s->vp[r] = kv_row(s, s->vc, l, slot[r], 0);
            s->lens[r] = (rt ? rt[r] : t) + 1;
        }
        /* this token's key and value go from the projection into the cache
         * inside the attention (new_k/new_v), not by a copy before it */
        mt_attn_args sa = {R, H, hd, s->dqkv, 3 * d, s->kp, s->vp, s->lens, d, s->datt, d,
                           s->dqkv + d, s->dqkv + 2 * d, 3 * d, 0};
        OP(op->attention(be, &sa));
        OP(op->linear(be, s->datt, R, L->o.w, L->o.b, s->dx, MT_LIN_ACCUM));

        /* cross-attention over the sentence's encoder K/V (folded into its
         * projections where fold_for_step said so: two passes, not three) */
        if (s->fold_now) {
            const size_t ls = (size_t)H * s->fold_cap_s;
            OP(op->cross_fold_attend(be, s->dx, R, L->ln_cross.g, L->ln_cross.b, LN_EPS, s->dh,
                                     s->fold_m + (size_t)l * ls * d, s->fold_c + (size_t)l * ls,
                                     s->fold_nt + (size_t)l * ls * d, H, s->fold_s, s->fold_scores, L->co.b, s->dx));
        } else {
            OP(ln_linear(s, s->dx, R, &L->ln_cross, s->dh, L->cq.w, L->cq.b, s->dq, 0, d, qscale));
            const float *ckv = s->ckv + (size_t)l * s->cap_tokens * 2 * d;
            for (int r = 0; r < R; r++) {
                s->kp[r] = ckv + (size_t)s->seg_start[sent[r]] * 2 * d;
                s->vp[r] = s->kp[r] + d;
                s->lens[r] = s->seg_len[sent[r]];
            }
            mt_attn_args ca = {R, H, hd, s->dq, d, s->kp, s->vp, s->lens, 2 * d, s->datt, d, NULL, NULL, 0, 1};
            OP(op->attention(be, &ca));
            OP(op->linear(be, s->datt, R, L->co.w, L->co.b, s->dx, MT_LIN_ACCUM));
        }

        OP(ln_linear(s, s->dx, R, &L->ln_ffn, s->dh, L->fc1.w, L->fc1.b, s->dff, MT_LIN_RELU, 0, 0.0f));
        OP(op->linear(be, s->dff, R, L->fc2.w, L->fc2.b, s->dx, MT_LIN_ACCUM));
    }
    if (!want_logits) return STTS_OK;
    /* the final LayerNorm and the LM head of the rows whose logits count */
    const float *hx = s->dx + (size_t)lr0 * d;
    float *hh = s->dh + (size_t)lr0 * d;
    R -= lr0;
    OP(op->layernorm(be, hx, R, m->dec_ln.g, m->dec_ln.b, LN_EPS, hh));
    if (!s->sl) {
        OP(op->linear(be, hh, R, m->lm_head, NULL, s->logits, 0));
    } else if (!s->sl_extra) {
        OP(op->linear(be, hh, R, s->sl->head, NULL, s->logits, 0));
    } else { /* the cached block and this call's source rows, side by side */
        int nb = s->sl->n, ne = s->sl_extra->rows;
        OP(op->linear(be, hh, R, s->sl->head, NULL, s->lbase, 0));
        OP(op->linear(be, hh, R, s->sl_extra, NULL, s->lext, 0));
        for (int r = 0; r < R; r++) {
            OP(op->copy(be, s->logits + (size_t)r * s->sl_n, s->lbase + (size_t)r * nb, (size_t)nb));
            OP(op->copy(be, s->logits + (size_t)r * s->sl_n + nb, s->lext + (size_t)r * ne, (size_t)ne));
        }
    }
    return STTS_OK;
}

stts_status mt_decode_prefill(nllb_session *s, int R, const int32_t *tok0, const int32_t *tok1, const int *slot,
                              const int *sent, int k, int32_t *top, float *lp, int ticket, stts_error *err) {
    const mt_backend_ops *op = s->be->ops;
    if (!s->be->prefill_ok || R < 1 || R > s->cap_slots)
        return stts_error_set(err, STTS_ERR_UNSUPPORTED, "backend %s cannot run two positions of a slot in one pass",
                              s->be->desc);
    /* rows [0, R): position 0; rows [R, 2R): position 1 of the same slots.
     * Row R + r must see row r's new key and value: the CPU's attention
     * writes every row's into the caches before it reads any, CUDA's runs
     * the rows that share a cache in two launches (backend.h prefill_ok). */
    int *rows = malloc((size_t)8 * R * sizeof(int)); /* once per sentence */
    if (!rows) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory for the decoder's first pass");
    int32_t *tok = (int32_t *)rows;
    int *sl2 = rows + 2 * R, *se2 = rows + 4 * R, *rt = rows + 6 * R;
    for (int r = 0; r < R; r++) {
        tok[r] = tok0[r], tok[R + r] = tok1[r];
        sl2[r] = sl2[R + r] = slot[r];
        se2[r] = se2[R + r] = sent[r];
        rt[r] = 0, rt[R + r] = 1;
    }
    const int V = s->sl ? s->sl_n : s->m->pub.vocab_size;
    const int sel = ticket < 0 && k > 0 && op->select_topk && k <= op->select_max_k;
    stts_status st = fold_for_step(s, 2 * R, se2, err);
    if (st) {
        free(rows);
        return st;
    }
    if (op->step_begin) op->step_begin(s->x);
    st = decode_step(s, 2 * R, tok, NULL, sl2, se2, 1, rt, R, 1, err);
    if (!st && sel && (st = op->select_topk(s->x, s->logits, R, V, k, top, lp)))
        st = stts_error_set(err, st, "backend %s failed (selecting the top %d of %d logits)", s->be->desc, k, V);
    if (!st && ticket >= 0 && (st = op->select_ahead(s->x, s->logits, R, V, ticket)))
        st = stts_error_set(err, st, "backend %s failed (selecting the best of %d logits)", s->be->desc, V);
    if (op->step_begin) {
        stts_status se = op->step_end(s->x, st != STTS_OK);
        if (!st && se) st = op_failed(s, se, "step_end", err);
    }
    free(rows);
    return st;
}

stts_status mt_logits_host(nllb_session *s, int R, const float **out, stts_error *err) {
    *out = s->logits;
    if (s->be->ops->host_visible) return STTS_OK;
    int V = s->sl ? s->sl_n : s->m->pub.vocab_size;
    OP(s->be->ops->download(s->x, s->logits_host, s->logits, (size_t)R * V));
    *out = s->logits_host;
    return STTS_OK;
}
