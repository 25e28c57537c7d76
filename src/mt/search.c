/* search.c - greedy and beam search over the decoder, reproducing HF
 * transformers' generate() for M2M100 (generation/utils.py):
 *   greedy (_sample, do_sample=False): argmax of the processed logits (first
 *     index on ties); stop at eos or max_length.
 *   beam (_beam_search, the vectorised version): running scores start at
 *     [0, -1e9, ...]; per step log_softmax + running score, top 2*num_beams
 *     over beams x vocabulary; candidates ending in eos (or reaching
 *     max_length) among the first num_beams become finished with score
 *     sum / (generated length ^ length_penalty); the best num_beams others
 *     keep running; the -1e9 masking arithmetic, the early-stop heuristic
 *     (early_stopping False: best running score / current length vs the
 *     worst finished) and the stop conditions follow HF step by step.
 * Logits processors used by NLLB: forced BOS (the target language) at
 * length 1; its logits are never needed, so that step skips the LM head.
 * With a shortlist (s->sl) the logits are over its ids only (column c is
 * token s->sl_map[c]: the cached ids ascending, then the call's extra source
 * ids ascending; exact ties between logits go to the lower column); the
 * softmax is over the shortlist.
 * Per step only the top k columns of each row and their log-softmax values
 * are used (select_top): a backend with select_topk (CUDA) computes them
 * where the logits are, so the logits never cross to the host; otherwise
 * they are computed here from the host-visible (CPU) logits.
 * All buffers are allocated before the token loop. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#define NEG_1E9 (-1.0e9f)
#define MAX_BEAMS 64

/* ---- per-row statistics: max, log-sum-exp and the top k indices by logit ---- */
typedef struct {
    const float *logits;
    int V, k;
    float *mx, *lse;
    int *top; /* [rows][k] */
} stats_job;

static void row_stats(void *ctx, int r) {
    stats_job *j = ctx;
    const float *x = j->logits + (size_t)r * j->V;
    int k = j->k, *top = j->top + (size_t)r * k, n = 0;
    float mx = -INFINITY;
    for (int v = 0; v < j->V; v++) {
        float xv = x[v];
        if (xv > mx) mx = xv;
        /* keep top k sorted by value desc; equal values keep the lower index first */
        if (n < k || xv > x[top[n - 1]]) {
            int p = n < k ? n++ : k - 1;
            while (p > 0 && xv > x[top[p - 1]]) {
                top[p] = top[p - 1];
                p--;
            }
            top[p] = v;
        }
    }
    double s = 0.0;
    for (int v = 0; v < j->V; v++) s += expf(x[v] - mx);
    j->mx[r] = mx;
    j->lse[r] = (float)log(s);
}

/* log_softmax as torch computes it: (x - max) - log(sum(exp(x - max))) */
static inline float logprob(const float *x, int v, float mx, float lse) { return (x[v] - mx) - lse; }

/* Any id of the eos list stops a hypothesis, not only the first. */
static int is_eos(const mt_search_cfg *c, int32_t t) {
    if (t == c->eos) return 1;
    for (int i = 0; i < c->n_eos_more; i++)
        if (t == c->eos_more[i]) return 1;
    return 0;
}

/* Per row of the step's logits: the top k columns and their log-softmax
 * values (host arrays top[R][k], lp[R][k]), on the host from the logits
 * (the CPU backend reads them in place; others download them). A backend
 * that selects does it inside the step instead (step_select_top). */
typedef struct {
    const float *logits;
    int V, k;
    float *mx, *lse, *lp;
    int *top;
} select_job;

static void row_select(void *ctx, int r) {
    select_job *j = ctx;
    stats_job sj = {j->logits, j->V, j->k, j->mx, j->lse, j->top};
    row_stats(&sj, r);
    const float *x = j->logits + (size_t)r * j->V;
    for (int q = 0; q < j->k; q++)
        j->lp[(size_t)r * j->k + q] = logprob(x, j->top[(size_t)r * j->k + q], j->mx[r], j->lse[r]);
}

static stts_status select_top(nllb_session *s, int R, int V, int k, int *top, float *lp, float *mx, float *lse,
                              stts_error *err) {
    const float *lg = NULL;
    stts_status st = mt_logits_host(s, R, &lg, err);
    if (st) return st;
    select_job j = {lg, V, k, mx, lse, lp, top};
    return s->be->ops->parallel_for(s->x, R, row_select, &j);
}

/* One decoder step and, unless forced, its selection of k: on the backend
 * inside the step where it selects (CUDA: in the step's graph), else
 * select_top after the step. */
static stts_status step_select_top(nllb_session *s, int R, const int32_t *tok, const int *slot, const int *sent,
                                   int t, int forced, int V, int k, int *top, float *lp, float *mx, float *lse,
                                   stts_error *err) {
    const mt_backend_ops *op = s->be->ops;
    if (!forced && op->select_topk && k <= op->select_max_k)
        return mt_decode_step_select(s, R, tok, slot, sent, t, k, (int32_t *)top, lp, err);
    stts_status st = mt_decode_step(s, R, tok, slot, sent, t, !forced, err);
    if (!st && !forced) st = select_top(s, R, V, k, top, lp, mx, lse, err);
    return st;
}

/* The forced step (cur 1) and the next (cur 2) as one pass of two rows a
 * slot (mt_decode_prefill), where the backend can and the search needs
 * both: cur 1's token is forced, not an end, and cur 2 is within the
 * length. Its selection is cur 2's; cur 1's bookkeeping then runs as for a
 * forced step without a decode, and cur 2 takes the selection made.
 * STTS_PREFILL=0 runs the two steps (comparisons). */
static int use_prefill(const nllb_session *s, const mt_search_cfg *c, int cur, int L) {
    const char *e = getenv("STTS_PREFILL");
    return s->be->prefill_ok && cur == 1 && c->bos_forced >= 0 && !is_eos(c, c->bos_forced) && cur + 1 < L &&
           !(e && strcmp(e, "0") == 0);
}

/* mt_decode_prefill and its selection of k (select_top where the backend
 * does not select). Rows: tok0 at position 0, bos at position 1, per slot. */
static stts_status prefill_select_top(nllb_session *s, int R, const int32_t *tok0, int32_t bos, const int *slot,
                                      const int *sent, int V, int k, int *top, float *lp, float *mx, float *lse,
                                      int32_t *tok1, stts_error *err) {
    const mt_backend_ops *op = s->be->ops;
    const int sel = op->select_topk && k <= op->select_max_k;
    for (int r = 0; r < R; r++) tok1[r] = bos;
    stts_status st = mt_decode_prefill(s, R, tok0, tok1, slot, sent, sel ? k : 0, (int32_t *)top, lp, -1, err);
    if (!st && !sel) st = select_top(s, R, V, k, top, lp, mx, lse, err);
    return st;
}

/* cur 2 after a prefill: its rows must be the prefill's position-1 rows
 * (the forced step keeps every row in its slot, in order). */
static stts_status prefill_rows_match(int R, const int32_t *tok, const int *slot, int pre_R, const int *pre_slot,
                                      int32_t bos, stts_error *err) {
    int ok = R == pre_R;
    for (int r = 0; ok && r < R; r++) ok = tok[r] == bos && slot[r] == pre_slot[r];
    return ok ? STTS_OK
              : stts_error_set(err, STTS_ERR_INTERNAL, "search: the rows after the forced step are not the prefill's");
}

static int aborted(const mt_search_cfg *c) {
    return c->p && c->p->abort_flag && atomic_load(c->p->abort_flag) != 0;
}

/* Sorts idx[0..n) by val desc, ties by lower idx (stable insertion sort; n is small). */
static void sort_desc(const float *val, int *idx, int n) {
    for (int i = 1; i < n; i++) {
        int t = idx[i], p = i;
        while (p > 0 && (val[t] > val[idx[p - 1]] || (val[t] == val[idx[p - 1]] && t < idx[p - 1]))) {
            idx[p] = idx[p - 1];
            p--;
        }
        idx[p] = t;
    }
}

static stts_status set_result(nllb_result *r, const int32_t *ids, int n, float score, stts_error *err) {
    r->ids = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    if (!r->ids) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory for a translation result");
    memcpy(r->ids, ids, (size_t)n * sizeof(int32_t));
    r->n_ids = n;
    r->score = score;
    return STTS_OK;
}

/* Token id of logits column v. */
static inline int32_t col_id(const nllb_session *s, int v) { return s->sl ? s->sl_map[v] : v; }

static inline int logits_width(const nllb_session *s) { return s->sl ? s->sl_n : s->m->pub.vocab_size; }

/* ------------------------------------------------------------------ greedy */
static stts_status greedy(nllb_session *s, int N, const mt_search_cfg *c, nllb_result *res, stts_error *err) {
    const int V = logits_width(s), L = c->max_length;
    int32_t *seq = malloc((size_t)N * L * sizeof(int32_t));
    float *score = calloc((size_t)N, sizeof(float));
    int *active = malloc((size_t)N * sizeof(int)), *slot = malloc((size_t)N * sizeof(int));
    int *top = malloc((size_t)N * sizeof(int));
    float *mx = malloc((size_t)N * sizeof(float)), *lse = malloc((size_t)N * sizeof(float));
    float *lp = malloc((size_t)N * sizeof(float));
    int32_t *tok = malloc((size_t)N * sizeof(int32_t)), *tok1 = malloc((size_t)N * sizeof(int32_t));
    int *len = malloc((size_t)N * sizeof(int)), *pre_slot = malloc((size_t)N * sizeof(int));
    int pre_R = -1; /* rows of a prefill at cur 1 (its selection waits in top/lp for cur 2) */
    stts_status st = STTS_OK;
    if (!seq || !score || !active || !slot || !top || !mx || !lse || !lp || !tok || !tok1 || !len || !pre_slot) {
        st = stts_error_set(err, STTS_ERR_NOMEM, "out of memory for greedy search");
        goto out;
    }
    int R = N;
    for (int i = 0; i < N; i++) {
        seq[(size_t)i * L] = c->start;
        len[i] = 1;
        active[i] = i;
    }
    for (int cur = 1; R > 0 && cur < L; cur++) {
        if (aborted(c)) {
            st = stts_error_set(err, STTS_ERR_CANCELLED, "translation cancelled");
            goto out;
        }
        for (int r = 0; r < R; r++) {
            tok[r] = seq[(size_t)active[r] * L + cur - 1];
            slot[r] = active[r];
        }
        int forced = (cur == 1 && c->bos_forced >= 0);
        if (use_prefill(s, c, cur, L)) {
            if ((st = prefill_select_top(s, R, tok, c->bos_forced, slot, active, V, 1, top, lp, mx, lse, tok1, err)))
                goto out;
            memcpy(pre_slot, slot, (size_t)R * sizeof(int));
            pre_R = R;
        } else if (cur == 2 && pre_R >= 0) {
            if ((st = prefill_rows_match(R, tok, slot, pre_R, pre_slot, c->bos_forced, err))) goto out;
        } else if ((st = step_select_top(s, R, tok, slot, active, cur - 1, forced, V, 1, top, lp, mx, lse, err))) {
            goto out;
        }
        int w = 0;
        for (int r = 0; r < R; r++) {
            int i = active[r];
            int32_t next = forced ? c->bos_forced : col_id(s, top[r]);
            if (!forced) score[i] += lp[r];
            seq[(size_t)i * L + cur] = next;
            len[i] = cur + 1;
            if (c->p && c->p->on_token) c->p->on_token(c->p->user, i, cur, next);
            if (!(is_eos(c, next) || cur + 1 >= L)) active[w++] = i;
        }
        R = w;
    }
    for (int i = 0; i < N && !st; i++) st = set_result(&res[i], seq + (size_t)i * L, len[i], score[i], err);
out:
    free(seq), free(score), free(active), free(slot), free(top), free(mx), free(lse), free(lp), free(tok), free(len);
    free(tok1), free(pre_slot);
    return st;
}

/* ----------------------------------------------------- greedy, one step ahead
 * For a backend with greedy_ahead (CUDA): step cur is submitted before the
 * host has step cur - 1's choices. Its rows' input ids stay on the device
 * (select_ahead keeps them, embed_fed reads them), so the host's round trip
 * (copy back, wake-up, recording, upload, launch) runs while the device
 * computes instead of between two steps. The rows of step cur are those not
 * known finished after step cur - 2; a row that finished at cur - 1 rides
 * along in step cur and its result there is dropped. The price: when the
 * last row finishes, the step submitted behind it is wasted device work that
 * nobody waits for. Ids, scores and on_token calls are greedy()'s. */
static stts_status greedy_ahead(nllb_session *s, int N, const mt_search_cfg *c, nllb_result *res, stts_error *err) {
    const mt_backend_ops *op = s->be->ops;
    const int L = c->max_length;
    int32_t *seq = malloc((size_t)N * L * sizeof(int32_t));
    float *score = calloc((size_t)N, sizeof(float));
    int *len = malloc((size_t)N * sizeof(int));
    unsigned char *done = calloc((size_t)N, 1);
    int *rows[2] = {malloc((size_t)N * sizeof(int)), malloc((size_t)N * sizeof(int))}; /* a step's rows, by cur & 1 */
    int *from = malloc((size_t)N * sizeof(int)), *top = malloc((size_t)N * sizeof(int));
    int32_t *tok = malloc((size_t)N * sizeof(int32_t)), *tok1 = malloc((size_t)N * sizeof(int32_t));
    float *lp = malloc((size_t)N * sizeof(float));
    int nrows[2] = {0, 0};
    stts_status st = STTS_OK;
    if (!seq || !score || !len || !done || !rows[0] || !rows[1] || !from || !top || !tok || !tok1 || !lp) {
        st = stts_error_set(err, STTS_ERR_NOMEM, "out of memory for greedy search");
        goto out;
    }
    for (int i = 0; i < N; i++) seq[(size_t)i * L] = c->start, len[i] = 1;
    if ((st = op->select_map(s->x, s->sl ? s->sl_map : NULL, s->sl ? s->sl_n : 0))) {
        st = stts_error_set(err, st, "backend %s failed (the shortlist's column map)", s->be->desc);
        goto out;
    }
    int prev_sel = 0; /* step cur - 1 has a selection in flight (ticket (cur - 1) & 1) */
    int cur = 1;
    for (; cur < L; cur++) {
        if (aborted(c)) {
            st = stts_error_set(err, STTS_ERR_CANCELLED, "translation cancelled");
            goto out;
        }
        int *rw = rows[cur & 1], *pr = rows[(cur - 1) & 1], R = 0;
        if (cur == 1)
            for (int i = 0; i < N; i++) rw[R++] = i;
        else
            for (int r = 0; r < nrows[(cur - 1) & 1]; r++)
                if (!done[pr[r]]) from[R] = r, rw[R++] = pr[r];
        if (R == 0) break; /* every row finished; step cur - 1's results are not needed */
        int forced = (cur == 1 && c->bos_forced >= 0);
        if (use_prefill(s, c, cur, L)) {
            /* the forced step and step 2 in one pass; step 2's choices stay
             * on the device under ticket 0 for step 3, as a step 2 submitted
             * on its own would leave them */
            for (int r = 0; r < R; r++) tok[r] = seq[(size_t)rw[r] * L], tok1[r] = c->bos_forced;
            if ((st = mt_decode_prefill(s, R, tok, tok1, rw, rw, 0, NULL, NULL, 2 & 1, err))) goto out;
            for (int r = 0; r < R; r++) {
                int i = rw[r];
                rows[2 & 1][r] = i;
                seq[(size_t)i * L + 1] = c->bos_forced;
                len[i] = 2;
                if (c->p && c->p->on_token) c->p->on_token(c->p->user, i, 1, c->bos_forced);
            }
            nrows[1 & 1] = nrows[2 & 1] = R;
            prev_sel = 1;
            cur = 2; /* the loop goes on with step 3 */
            continue;
        }
        if (!prev_sel)
            for (int r = 0; r < R; r++) tok[r] = seq[(size_t)rw[r] * L + cur - 1];
        if ((st = mt_decode_step_ahead(s, R, prev_sel ? NULL : tok, from, rw, rw, cur - 1, forced ? -1 : cur & 1,
                                       err)))
            goto out;
        nrows[cur & 1] = R;
        /* the results of step cur - 1 (or of this forced step, known now) */
        int pc = forced ? cur : cur - 1, pn = forced ? R : prev_sel ? nrows[(cur - 1) & 1] : 0;
        const int *prw = forced ? rw : pr;
        if (prev_sel && (st = op->select_collect(s->x, (cur - 1) & 1, pn, (int32_t *)top, lp))) {
            st = stts_error_set(err, st, "backend %s failed (collecting a step's choices)", s->be->desc);
            goto out;
        }
        for (int r = 0; r < pn; r++) {
            int i = prw[r];
            if (done[i]) continue; /* finished a step earlier: this result is dropped */
            int32_t next = forced ? c->bos_forced : col_id(s, top[r]);
            if (!forced) score[i] += lp[r];
            seq[(size_t)i * L + pc] = next;
            len[i] = pc + 1;
            if (c->p && c->p->on_token) c->p->on_token(c->p->user, i, pc, next);
            if (is_eos(c, next) || pc + 1 >= L) done[i] = 1;
        }
        prev_sel = !forced;
    }
    /* the last submitted step (cur - 1), unless none of its rows is still running */
    if (prev_sel) {
        const int *pr = rows[(cur - 1) & 1];
        int pn = nrows[(cur - 1) & 1], live = 0;
        for (int r = 0; r < pn; r++) live |= !done[pr[r]];
        if (live && (st = op->select_collect(s->x, (cur - 1) & 1, pn, (int32_t *)top, lp))) {
            st = stts_error_set(err, st, "backend %s failed (collecting a step's choices)", s->be->desc);
            goto out;
        }
        for (int r = 0; live && r < pn; r++) {
            int i = pr[r];
            if (done[i]) continue;
            int32_t next = col_id(s, top[r]);
            score[i] += lp[r];
            seq[(size_t)i * L + cur - 1] = next;
            len[i] = cur;
            if (c->p && c->p->on_token) c->p->on_token(c->p->user, i, cur - 1, next);
            done[i] = 1;
        }
    }
    for (int i = 0; i < N && !st; i++) st = set_result(&res[i], seq + (size_t)i * L, len[i], score[i], err);
out:
    free(seq), free(score), free(len), free(done), free(rows[0]), free(rows[1]), free(from), free(top), free(tok),
        free(tok1), free(lp);
    return st;
}

/* -------------------------------------------------------------------- beam */
typedef struct {
    int32_t *run, *run2; /* [B][L] running sequences (double buffer) */
    float *rs;           /* [B] running scores */
    int *slot;           /* [B] KV slot of each running beam */
    int32_t *fin, *fin2; /* [B][L] finished sequences */
    int *flen, *flen2;
    float *fs, *fs2;
    unsigned char *ff, *ff2; /* is_sent_finished */
    int heur;                /* is_early_stop_heuristic_unsatisfied */
    int done;
} beam_sent;

static stts_status beam(nllb_session *s, int N, const mt_search_cfg *c, nllb_result *res, stts_error *err) {
    const int V = logits_width(s), VF = s->m->pub.vocab_size, L = c->max_length, B = c->num_beams, K = 2 * B;
    stts_status st = STTS_OK;
    float *cval = NULL;
    int *cbeam = NULL;
    int32_t *ctok = NULL;
    beam_sent *bs = calloc((size_t)N, sizeof *bs);
    size_t rows = (size_t)N * B;
    int32_t *tok = malloc(rows * sizeof(int32_t)), *tok1 = malloc(rows * sizeof(int32_t));
    int *slot = malloc(rows * sizeof(int)), *sent = malloc(rows * sizeof(int));
    int *pre_slot = malloc(rows * sizeof(int)), pre_R = -1; /* a prefill at cur 1 (greedy's) */
    int *top = malloc(rows * K * sizeof(int));
    float *mx = malloc(rows * sizeof(float)), *lse = malloc(rows * sizeof(float));
    float *lp = malloc(rows * K * sizeof(float));
    int *rowbase = malloc((size_t)N * sizeof(int));
    int ok = bs && tok && tok1 && pre_slot && slot && sent && top && mx && lse && lp && rowbase;
    for (int i = 0; ok && i < N; i++) {
        beam_sent *b = &bs[i];
        b->run = malloc((size_t)B * L * sizeof(int32_t));
        b->run2 = malloc((size_t)B * L * sizeof(int32_t));
        b->fin = malloc((size_t)B * L * sizeof(int32_t));
        b->fin2 = malloc((size_t)B * L * sizeof(int32_t));
        b->rs = malloc((size_t)B * sizeof(float));
        b->slot = malloc((size_t)B * sizeof(int));
        b->flen = calloc((size_t)B, sizeof(int));
        b->flen2 = calloc((size_t)B, sizeof(int));
        b->fs = malloc((size_t)B * sizeof(float));
        b->fs2 = malloc((size_t)B * sizeof(float));
        b->ff = calloc((size_t)B, 1);
        b->ff2 = calloc((size_t)B, 1);
        ok = b->run && b->run2 && b->fin && b->fin2 && b->rs && b->slot && b->flen && b->flen2 && b->fs && b->fs2 &&
             b->ff && b->ff2;
        if (!ok) break;
        for (int k = 0; k < B; k++) {
            b->run[(size_t)k * L] = c->start;
            b->rs[k] = k == 0 ? 0.0f : NEG_1E9; /* only beam 0 is live at first */
            b->slot[k] = i * B + k;
            b->fs[k] = NEG_1E9;
            b->flen[k] = 0;
        }
        b->heur = 1;
    }
    if (!ok) {
        st = stts_error_set(err, STTS_ERR_NOMEM, "out of memory for beam search");
        goto out;
    }

    /* candidates: up to 2B per beam (B * 2B), ranked into the top 2B */
    cval = malloc(sizeof(float) * (size_t)B * K);
    cbeam = malloc(sizeof(int) * (size_t)B * K);
    ctok = malloc(sizeof(int32_t) * (size_t)B * K);
    if (!cval || !cbeam || !ctok) {
        st = stts_error_set(err, STTS_ERR_NOMEM, "out of memory for beam search");
        goto out;
    }
    float rv[2 * MAX_BEAMS], fv[3 * MAX_BEAMS];
    int hit[2 * MAX_BEAMS], order[3 * MAX_BEAMS];
    int cur = 1;
    for (;;) {
        if (aborted(c)) {
            st = stts_error_set(err, STTS_ERR_CANCELLED, "translation cancelled");
            goto out;
        }
        /* a. rows of the live sentences */
        int R = 0;
        for (int i = 0; i < N; i++) {
            if (bs[i].done) continue;
            rowbase[i] = R;
            for (int k = 0; k < B; k++, R++) {
                tok[R] = bs[i].run[(size_t)k * L + cur - 1];
                slot[R] = bs[i].slot[k];
                sent[R] = i;
            }
        }
        if (R == 0) break;
        int forced = (cur == 1 && c->bos_forced >= 0);
        int kk = K < V ? K : V;
        if (use_prefill(s, c, cur, L)) {
            if ((st = prefill_select_top(s, R, tok, c->bos_forced, slot, sent, V, kk, top, lp, mx, lse, tok1, err)))
                goto out;
            memcpy(pre_slot, slot, (size_t)R * sizeof(int));
            pre_R = R;
        } else if (cur == 2 && pre_R >= 0) {
            if ((st = prefill_rows_match(R, tok, slot, pre_R, pre_slot, c->bos_forced, err))) goto out;
        } else if ((st = step_select_top(s, R, tok, slot, sent, cur - 1, forced, V, kk, top, lp, mx, lse, err))) {
            goto out;
        }
        for (int i = 0; i < N; i++) {
            beam_sent *b = &bs[i];
            if (b->done) continue;
            int r0 = rowbase[i];
            /* b. c. top 2B continuations over beams x vocabulary */
            int nc = 0;
            if (forced) {
                /* forced BOS: every token but bos is -inf; B finite candidates */
                for (int k = 0; k < B; k++) {
                    cval[nc] = 0.0f + b->rs[k];
                    cbeam[nc] = k;
                    ctok[nc] = c->bos_forced;
                    nc++;
                }
            } else {
                for (int k = 0; k < B; k++) {
                    for (int q = 0; q < kk; q++) {
                        int v = top[(size_t)(r0 + k) * kk + q];
                        cval[nc] = lp[(size_t)(r0 + k) * kk + q] + b->rs[k];
                        cbeam[nc] = k;
                        ctok[nc] = col_id(s, v);
                        nc++;
                    }
                }
            }
            /* the top K by value desc, ties by flat index (beam * V + token):
             * insertion into a sorted list of at most K */
            int nk = 0;
            for (int q = 0; q < nc; q++) {
                long long fq = (long long)cbeam[q] * VF + ctok[q];
                int p = nk < K ? nk : K;
                while (p > 0) {
                    int u = order[p - 1];
                    long long fu = (long long)cbeam[u] * VF + ctok[u];
                    if (cval[q] > cval[u] || (cval[q] == cval[u] && fq < fu)) {
                        if (p < K) order[p] = u;
                        p--;
                    } else
                        break;
                }
                if (p < K) order[p] = q;
                if (nk < K) nk++;
            }
            float tv[2 * MAX_BEAMS];
            int tb[2 * MAX_BEAMS];
            int32_t tt[2 * MAX_BEAMS];
            for (int q = 0; q < K; q++) {
                if (q < nk) {
                    tv[q] = cval[order[q]];
                    tb[q] = cbeam[order[q]];
                    tt[q] = ctok[order[q]];
                } else { /* -inf fillers (HF's topk returns them when fewer are finite) */
                    tv[q] = -INFINITY;
                    tb[q] = 0;
                    tt[q] = 0;
                }
            }
            /* d. which candidates hit a stopping criterion */
            for (int q = 0; q < K; q++) hit[q] = is_eos(c, tt[q]) || (cur + 1 >= L);
            /* e. next running beams: best B that did not stop */
            for (int q = 0; q < K; q++) {
                rv[q] = hit[q] ? tv[q] + NEG_1E9 : tv[q];
                order[q] = q;
            }
            sort_desc(rv, order, K);
            int parent[MAX_BEAMS];
            for (int k = 0; k < B; k++) {
                int q = order[k];
                parent[k] = tb[q];
                memcpy(b->run2 + (size_t)k * L, b->run + (size_t)tb[q] * L, (size_t)cur * sizeof(int32_t));
                b->run2[(size_t)k * L + cur] = tt[q];
            }
            float nrs[MAX_BEAMS];
            for (int k = 0; k < B; k++) nrs[k] = rv[order[k]];
            /* f. finished beams: merge old finished with newly finished top-B candidates */
            float denom = (float)pow((double)cur, (double)c->length_penalty); /* cur + 1 - prompt len 1 */
            int full = 1;
            for (int k = 0; k < B; k++) full &= b->ff[k];
            for (int k = 0; k < B; k++) fv[k] = b->fs[k];
            for (int q = 0; q < K; q++) {
                float v = tv[q] / denom;
                if (c->early_stopping && full) v += NEG_1E9;
                if (!b->heur) v += NEG_1E9;
                int did = hit[q] && q < B;
                if (!did) v += NEG_1E9;
                fv[B + q] = v;
            }
            for (int q = 0; q < B + K; q++) order[q] = q;
            sort_desc(fv, order, B + K);
            for (int k = 0; k < B; k++) {
                int q = order[k];
                if (q < B) {
                    memcpy(b->fin2 + (size_t)k * L, b->fin + (size_t)q * L, (size_t)b->flen[q] * sizeof(int32_t));
                    b->flen2[k] = b->flen[q];
                    b->ff2[k] = b->ff[q];
                } else {
                    int cq = q - B;
                    memcpy(b->fin2 + (size_t)k * L, b->run + (size_t)tb[cq] * L, (size_t)cur * sizeof(int32_t));
                    b->fin2[(size_t)k * L + cur] = tt[cq];
                    b->flen2[k] = cur + 1;
                    b->ff2[k] = (unsigned char)(hit[cq] && cq < B);
                }
                b->fs2[k] = fv[q];
            }
            /* swap buffers */
            int32_t *t32 = b->fin;
            b->fin = b->fin2, b->fin2 = t32;
            int *ti = b->flen;
            b->flen = b->flen2, b->flen2 = ti;
            float *tf = b->fs;
            b->fs = b->fs2, b->fs2 = tf;
            unsigned char *tu = b->ff;
            b->ff = b->ff2, b->ff2 = tu;
            t32 = b->run;
            b->run = b->run2, b->run2 = t32;
            memcpy(b->rs, nrs, (size_t)B * sizeof(float));
            /* g. KV caches follow their beams: a parent's slot goes to its first
             * child; further children get the slots nobody continues, copied. */
            int claimed[MAX_BEAMS] = {0}, nslot[MAX_BEAMS], need[MAX_BEAMS];
            for (int k = 0; k < B; k++) {
                need[k] = claimed[parent[k]];
                if (!need[k]) {
                    claimed[parent[k]] = 1;
                    nslot[k] = b->slot[parent[k]];
                }
            }
            int fr = 0;
            for (int k = 0; k < B; k++) {
                if (!need[k]) continue;
                while (claimed[fr]) fr++;
                claimed[fr] = 1;
                nslot[k] = b->slot[fr];
                if ((st = mt_kv_copy_slot(s, nslot[k], b->slot[parent[k]], cur, err))) goto out;
            }
            memcpy(b->slot, nslot, (size_t)B * sizeof(int));
            if (c->p && c->p->on_token) c->p->on_token(c->p->user, i, cur, b->run[cur]);
        }
        cur++;
        /* early-stop heuristic and per-sentence completion */
        int any_live = 0;
        for (int i = 0; i < N; i++) {
            beam_sent *b = &bs[i];
            if (b->done) continue;
            float best = b->rs[0] / (float)pow((double)(cur - 1), (double)c->length_penalty);
            float worst = b->fs[0];
            for (int k = 1; k < B; k++)
                if (b->fs[k] < worst) worst = b->fs[k];
            int improve = 0, allf = 1;
            for (int k = 0; k < B; k++) {
                improve |= best > (b->ff[k] ? worst : NEG_1E9);
                allf &= b->ff[k];
            }
            b->heur = b->heur && improve;
            if (!b->heur || (c->early_stopping && allf)) b->done = 1;
            else any_live = 1;
        }
        if (!any_live || cur >= L) break;
    }
    for (int i = 0; i < N && !st; i++) {
        beam_sent *b = &bs[i];
        if (b->ff[0]) st = set_result(&res[i], b->fin, b->flen[0], b->fs[0], err);
        else st = set_result(&res[i], b->run, cur, b->rs[0], err); /* unreachable in HF's rules */
    }
out:
    if (bs)
        for (int i = 0; i < N; i++) {
            beam_sent *b = &bs[i];
            free(b->run), free(b->run2), free(b->fin), free(b->fin2), free(b->rs), free(b->slot);
            free(b->flen), free(b->flen2), free(b->fs), free(b->fs2), free(b->ff), free(b->ff2);
        }
    free(bs), free(tok), free(slot), free(sent), free(top), free(mx), free(lse), free(lp), free(rowbase);
    free(tok1), free(pre_slot);
    free(cval), free(cbeam), free(ctok);
    return st;
}

stts_status mt_search(nllb_session *s, int n_sents, const mt_search_cfg *c, nllb_result *res, stts_error *err) {
    if (c->num_beams < 1 || c->num_beams > MAX_BEAMS)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "num_beams %d is out of range (1..%d)", c->num_beams,
                              MAX_BEAMS);
    if (c->max_length < 2)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "max_length %d leaves no room to generate (>= 2)",
                              c->max_length);
    if (c->num_beams == 1)
        return s->be->greedy_ahead && s->be->ops->select_ahead ? greedy_ahead(s, n_sents, c, res, err)
                                                                : greedy(s, n_sents, c, res, err);
    return beam(s, n_sents, c, res, err);
}
