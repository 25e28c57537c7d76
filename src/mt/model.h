/* model.h - the engine's internal model and session structures, shared by
 * model.c (load, random init, validation), forward.c (encoder, decoder
 * step), search.c (greedy, beam) and api.c (the public nllb.h entry points).
 *
 * Weights are backend-owned handles (mt_weight, backend.h) in the model's
 * format (f32/bf16/f16/int8, HF [out][in] layout); the model code never sees
 * their bytes. Biases and LayerNorm parameters are f32 vectors (1 x n).
 *   embed [V][d] (shared by both embeddings and the tied LM head);
 *   per layer, Q/K/V fused into one [3d][d] matrix (three source tensors,
 *   one weight: one streamed pass, one thread-pool dispatch); the decoder's
 *   cross-attention K/V fused [2d][d] (applied once per sentence to the
 *   encoder output).
 * Session layout: KV caches [layer][slot][max_len][d] for self-attention,
 * cross K/V [layer][src token][2d] per batch; decoder rows address caches by
 * slot so finished rows drop out and beams are reordered without moving
 * data except on a fork. */
#ifndef MT_MODEL_H
#define MT_MODEL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "config.h"
#include "nllb.h"
#include "tokenizer.h"

typedef struct {
    mt_weight *g, *b;
} mt_ln;

typedef struct {
    mt_weight *w, *b; /* w [out][in], b 1 x [out] */
    int out, in;
} mt_lin;

typedef struct {
    mt_ln ln_attn;
    mt_lin qkv, o;
    mt_ln ln_ffn;
    mt_lin fc1, fc2;
} mt_enc_layer;

typedef struct {
    mt_ln ln_self;
    mt_lin qkv, o;
    mt_ln ln_cross;
    mt_lin cq, ckv, co;
    mt_ln ln_ffn;
    mt_lin fc1, fc2;
} mt_dec_layer;

struct nllb_model {
    nllb_config pub;
    mt_config cfg;
    mt_tokenizer *tok;  /* NULL for random models */
    mt_backend *be;
    mt_wfmt wfmt;       /* the compute format of the matrices */
    struct mt_checkpoint *ck; /* kept open while weights are used in place from its mapping */
    mt_weight *embed;   /* [V][d] */
    mt_weight *lm_head; /* == embed when tied */
    mt_enc_layer *enc;
    mt_dec_layer *dec;
    mt_ln enc_ln, dec_ln;
    float embed_scale;
    int pos_round;      /* sinusoids rounded like HF's table in the checkpoint dtype: 0 f32, 1 f16, 2 bf16 */
    size_t weight_bytes;
    /* why a NLLB_DEVICE_AUTO load runs on the CPU though a GPU is there
     * (the GPU could not hold the model); "" otherwise */
    char device_note[STTS_ERROR_MAX + 64];
    /* LM-head shortlists, one per target language, built on first use */
    pthread_mutex_t sl_lock;
    struct mt_shortlist *shortlists;
};

/* A target-vocabulary shortlist: the LM-head rows ids[0..n) (ascending)
 * gathered into their own contiguous weight. */
typedef struct mt_shortlist {
    struct mt_shortlist *next;
    int32_t key;        /* target language id (auto), or -1 for a caller's list */
    uint64_t hash;      /* of the id set (caller's lists) */
    int32_t *ids;
    int n;
    /* a caller's list as it was given (unsorted, duplicates kept), so that
     * the next call with the same list finds this one without sorting it
     * again (32K ids: ~1.3 ms of qsort, per sentence, on the GPU's path) */
    int32_t *given;
    int n_given;
    uint64_t given_hash;
    mt_weight *head;
} mt_shortlist;

struct nllb_session {
    const nllb_model *m;
    mt_backend *be;
    mt_exec *x;       /* this session's executor (threads, scratch): sessions run at once */
    /* LM head of the current call: NULL = the full vocabulary; else the
     * cached shortlist sl, plus sl_extra (this call's source ids that sl
     * lacks, gathered per call). Logits column c is token sl_map[c]. */
    const mt_shortlist *sl;
    mt_weight *sl_extra;
    int32_t *sl_map;
    int sl_n, sl_cap;
    float *lbase, *lext; /* [R][sl->n], [R][extra] when sl_extra is set */
    size_t lbase_n, lext_n;
    /* capacities (grown by mt_session_reserve, never inside the token loop) */
    int cap_tokens;   /* encoder rows (sum of source lengths) */
    int cap_slots;    /* decoder rows / KV-cache slots */
    int cap_len;      /* decoder positions per slot */
    int cap_sents;
    /* encoder */
    float *ex, *eh, *eqkv, *eatt, *eff; /* [T][d], [T][d], [T][3d], [T][d], [T][ffn] */
    float *ckv;                         /* [layers][T][2d] */
    int *seg_start, *seg_len;           /* per sentence, into the encoder rows */
    /* decoder */
    float *dx, *dh, *dqkv, *dq, *datt, *dff; /* [R][d], [R][d], [R][3d], [R][d], [R][d], [R][ffn] */
    float *logits;                           /* [R][V] */
    float *logits_host;                      /* [R][V] malloc'ed, only when the backend is not host visible */
    float *kc, *vc;                          /* [layers][slots][cap_len][d] */
    /* per-row attention arguments */
    const float **kp, **vp;
    int *lens, *pos;
    int32_t *ids;
    /* search scratch (host) */
    void *search;
    size_t search_bytes;
    /* the cross-attention folded (backend.h cross_fold_*; forward.c
     * fold_for_step): every decoder layer's M, c and Nt for one sentence,
     * laid out for fold_cap_s positions a head, and the scores of a step */
    float *fold_m, *fold_c, *fold_nt, *fold_scores;
    size_t fold_scores_n;
    int fold_cap_s;
    int fold_nomem;                    /* the buffers could not be had: never fold in this session */
    int fold_valid, fold_sent, fold_s; /* the sentence they hold (mt_encode clears fold_valid) */
    int fold_now;                      /* the step being run uses them */
};

/* forward.c (every backend failure is returned with err naming the op) */
stts_status mt_session_reserve(nllb_session *s, int tokens, int sents, int slots, int len, stts_error *err);
/* Encodes sentences seg_start[i]..+seg_len[i] of ids (already in s->seg_*):
 * fills s->ckv (cross K/V of every decoder layer); enc_out (host, may be NULL)
 * receives the final encoder states [T][d]. */
stts_status mt_encode(nllb_session *s, const int32_t *ids, int n_sents, int total, float *enc_out, stts_error *err);
/* One decoder step for R rows: token tok[r] at position index t, KV slot
 * slot[r], source sentence sent[r]. With want_logits, s->logits[R][V]
 * (V = the shortlist's size when s->sl is set). */
stts_status mt_decode_step(nllb_session *s, int R, const int32_t *tok, const int *slot, const int *sent, int t,
                           int want_logits, stts_error *err);
/* mt_decode_step with logits, then the backend's select_topk of k on them
 * (the same values select_topk returns) as part of the step: a backend
 * that records steps runs the selection inside the step's graph. */
stts_status mt_decode_step_select(nllb_session *s, int R, const int32_t *tok, const int *slot, const int *sent, int t,
                                  int k, int32_t *top, float *lp, stts_error *err);
/* A step of greedy ahead (backend.h): the rows' ids are tok (host), or with
 * tok NULL the ids the backend's last select_ahead chose for rows
 * from_row[r] (position index t as for a non-pad id; the backend gives a
 * pad id the pad position). sel_ticket >= 0: the step computes logits and
 * ends with select_ahead(ticket) on them; < 0: no logits (forced step). */
stts_status mt_decode_step_ahead(nllb_session *s, int R, const int32_t *tok, const int *from_row, const int *slot,
                                 const int *sent, int t, int sel_ticket, stts_error *err);
/* The forced step and the next one in one pass (backend prefill_ok): for
 * each of R slots, tok0[r] at position index 0 and tok1[r] at 1 (the
 * decoder's start and the forced language token, both known before the
 * pass), in 2R rows that read the weights once. The logits are those of the
 * position-1 rows (s->logits[R][V]); k > 0 on a selecting backend: their
 * top k into top/lp as mt_decode_step_select, else the caller selects from
 * the logits; ticket >= 0 (greedy ahead): select_ahead on them instead.
 * The same ids as the two steps (the CPU: the same bits, every kernel
 * computes each row alone); one decoder pass fewer per sentence. */
stts_status mt_decode_prefill(nllb_session *s, int R, const int32_t *tok0, const int32_t *tok1, const int *slot,
                              const int *sent, int k, int32_t *top, float *lp, int ticket, stts_error *err);
/* Copies KV-cache rows [0, len) of slot src to slot dst in every layer. */
/* Where the cross-attention folds (backend.h cross_fold_*): -1 as forward.c
 * decides (not f32 weights; STTS_CROSS_FOLD), 0 never, 1 wherever the
 * backend can, f32 too (tests: one process, both ways). */
void mt_cross_fold_force(int mode);
stts_status mt_kv_copy_slot(nllb_session *s, int dst, int src, int len, stts_error *err);
/* Host view of s->logits rows (backend memory when host visible). */
stts_status mt_logits_host(nllb_session *s, int R, const float **out, stts_error *err);

/* shortlist.c: cached in the model (under sl_lock), built on first use.
 * auto: *out NULL (full vocabulary) when the target's script is unknown or
 * the model has no tokenizer. ids: errors name the bad entry. */
stts_status mt_shortlist_auto(const nllb_model *m, int32_t tgt_id, const mt_shortlist **out, stts_error *err);
stts_status mt_shortlist_ids(const nllb_model *m, const int32_t *ids, int n, const mt_shortlist **out,
                             stts_error *err);
int mt_shortlist_has(const mt_shortlist *sl, int32_t id);

/* search.c */
typedef struct {
    int num_beams, max_length, eos, bos_forced, start, pad;
    const int *eos_more;   /* further ids that also stop (an eos_token_id list) */
    int n_eos_more;
    float length_penalty;
    int early_stopping;
    const nllb_translate_params *p;
} mt_search_cfg;
stts_status mt_search(nllb_session *s, int n_sents, const mt_search_cfg *c, nllb_result *res, stts_error *err);

#endif
