/* api.c - the public entry points of include/nllb.h that are not model
 * construction (model.c): sessions, tokenize/detokenize, translate, the
 * lower-level encode and decoder-logits calls, languages and model facts.
 * Argument checking lives here so the forward pass and search can assume
 * valid input. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

/* ---------------- model facts ---------------- */

const nllb_config *nllb_model_config(const nllb_model *m) { return &m->pub; }

int nllb_model_is_eos(const nllb_model *m, int32_t id) {
    if (!m) return 0;
    if (id == m->pub.eos_token_id) return 1;
    for (int i = 0; i < m->cfg.n_gen_eos_ids; i++)
        if (id == m->cfg.gen_eos_ids[i]) return 1;
    return 0;
}
const char *nllb_model_backend(const nllb_model *m) { return m->be->desc; }
const char *nllb_model_device_note(const nllb_model *m) { return m->device_note; }
size_t nllb_model_weight_bytes(const nllb_model *m) { return m->weight_bytes; }

nllb_weights nllb_model_weights(const nllb_model *m) {
    switch (m->wfmt) {
    case MT_WF_F32: return NLLB_WEIGHTS_F32;
    case MT_WF_BF16: return NLLB_WEIGHTS_BF16;
    case MT_WF_F16: return NLLB_WEIGHTS_F16;
    default: return NLLB_WEIGHTS_INT8;
    }
}

static const char *const WEIGHT_NAMES[] = {"auto", "f32", "bf16", "f16", "int8"};

int nllb_weights_parse(const char *s) {
    for (int i = 0; s && i < 5; i++)
        if (!strcmp(s, WEIGHT_NAMES[i])) return i;
    return -1;
}

const char *nllb_weights_name(nllb_weights w) { return (int)w >= 0 && (int)w < 5 ? WEIGHT_NAMES[w] : "?"; }

int nllb_device_parse(const char *s) {
    if (!s) return -1;
    if (!strcmp(s, "auto")) return NLLB_DEVICE_AUTO;
    if (!strcmp(s, "cpu")) return NLLB_DEVICE_CPU;
    if (!strcmp(s, "cuda")) return NLLB_DEVICE_CUDA;
    return -1;
}

static const char *const SIMD_NAMES[] = {"auto", "scalar", "avx2", "avx512", "neon", "avx512vnni", "avxvnni"};
#define N_SIMD ((int)(sizeof SIMD_NAMES / sizeof *SIMD_NAMES))

int nllb_simd_parse(const char *s) {
    for (int i = 0; s && i < N_SIMD; i++)
        if (!strcmp(s, SIMD_NAMES[i])) return i;
    return -1;
}

const char *nllb_simd_name(nllb_simd s) { return (int)s >= 0 && (int)s < N_SIMD ? SIMD_NAMES[s] : "?"; }

static size_t lin_bytes(const mt_lin *l) { return l->w->bytes + l->b->bytes; }
static size_t ln_bytes(const mt_ln *l) { return l->g->bytes + l->b->bytes; }

size_t nllb_model_step_bytes_rows(const nllb_model *m, int lm_rows) {
    size_t b = ln_bytes(&m->dec_ln);
    for (int i = 0; i < m->pub.decoder_layers; i++) {
        const mt_dec_layer *L = &m->dec[i];
        /* self qkv + o, cross q + o, fc1 + fc2, 3 LayerNorms (cross K/V: once per sentence) */
        b += lin_bytes(&L->qkv) + lin_bytes(&L->o) + lin_bytes(&L->cq) + lin_bytes(&L->co) + lin_bytes(&L->fc1) +
             lin_bytes(&L->fc2) + ln_bytes(&L->ln_self) + ln_bytes(&L->ln_cross) + ln_bytes(&L->ln_ffn);
    }
    int V = m->pub.vocab_size;
    if (lm_rows <= 0 || lm_rows > V) lm_rows = V;
    return b + (size_t)((double)m->lm_head->bytes * lm_rows / V);
}

size_t nllb_model_step_bytes(const nllb_model *m) { return nllb_model_step_bytes_rows(m, 0); }

size_t nllb_model_encode_bytes(const nllb_model *m) {
    size_t b = ln_bytes(&m->enc_ln);
    for (int i = 0; i < m->pub.encoder_layers; i++) {
        const mt_enc_layer *L = &m->enc[i];
        b += lin_bytes(&L->qkv) + lin_bytes(&L->o) + lin_bytes(&L->fc1) + lin_bytes(&L->fc2) + ln_bytes(&L->ln_attn) +
             ln_bytes(&L->ln_ffn);
    }
    for (int i = 0; i < m->pub.decoder_layers; i++) b += lin_bytes(&m->dec[i].ckv);
    return b;
}

int nllb_num_languages(void) { return NLLB_NUM_LANGS; }

const char *nllb_language_code(int i) { return i >= 0 && i < NLLB_NUM_LANGS ? mt_lang_code(i) : NULL; }

int nllb_model_lang_id(const nllb_model *m, const char *code) {
    if (!code) return -1;
    if (m->tok) return mt_tokenizer_lang_id(m->tok, code);
    for (int i = 0; i < NLLB_NUM_LANGS; i++)
        if (strcmp(mt_lang_code(i), code) == 0) return m->pub.spm_size + 1 + i;
    return -1;
}

/* ---------------- sessions ---------------- */

nllb_session_params nllb_session_default_params(void) {
    nllb_session_params p = {1, 1, 64};
    return p;
}

stts_status nllb_session_new(const nllb_model *m, const nllb_session_params *params, nllb_session **out,
                             stts_error *err) {
    *out = NULL;
    if (!m) return stts_error_set(err, STTS_ERR_INVALID_ARG, "nllb_session_new: model is NULL");
    nllb_session_params p = params ? *params : nllb_session_default_params();
    nllb_session *s = calloc(1, sizeof *s);
    if (!s) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory creating a session");
    s->m = m;
    s->be = m->be;
    stts_status st = m->be->ops->exec_new(m->be, 0, &s->x, err);
    if (st) {
        free(s);
        return st;
    }
    int beams = p.max_beams > 0 ? p.max_beams : 1, batch = p.max_batch > 0 ? p.max_batch : 1;
    int src = p.max_src_len > 0 ? p.max_src_len : 64;
    if (src > m->pub.max_position_embeddings) src = m->pub.max_position_embeddings;
    int len = m->pub.max_length < m->pub.max_position_embeddings ? m->pub.max_length : m->pub.max_position_embeddings;
    st = mt_session_reserve(s, batch * src, batch, batch * beams, len, err);
    if (st) {
        nllb_session_free(s);
        return st;
    }
    *out = s;
    return STTS_OK;
}

void nllb_session_free(nllb_session *s) {
    if (!s) return;
    mt_backend *be = s->be;
    float *bufs[] = {s->ex, s->eh, s->eqkv, s->eatt, s->eff, s->ckv, s->dx, s->dh, s->dq,
                     s->dqkv, s->datt, s->dff, s->logits, s->kc, s->vc};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        if (bufs[i]) be->ops->release(be, bufs[i]);
    free(s->logits_host);
    free(s->seg_start), free(s->seg_len), free(s->kp), free(s->vp), free(s->lens), free(s->pos), free(s->ids);
    free(s->search);
    if (s->sl_extra) be->ops->weight_free(be, s->sl_extra);
    free(s->sl_map);
    /* backend memory (device memory on a GPU): released by the backend */
    if (s->lbase) be->ops->release(be, s->lbase);
    if (s->lext) be->ops->release(be, s->lext);
    float *fold[] = {s->fold_m, s->fold_c, s->fold_nt, s->fold_scores};
    for (size_t i = 0; i < sizeof fold / sizeof *fold; i++)
        if (fold[i]) be->ops->release(be, fold[i]);
    if (s->x) be->ops->exec_free(s->x);
    free(s);
}

/* ---------------- tokenizer ---------------- */

static stts_status need_tok(const nllb_model *m, stts_error *err) {
    if (m->tok) return STTS_OK;
    return stts_error_set(err, STTS_ERR_UNSUPPORTED,
                          "this model has no tokenizer (random weights): use the token-id entry points");
}

static stts_status lang_or_err(const nllb_model *m, const char *code, const char *what, int *id, stts_error *err) {
    *id = nllb_model_lang_id(m, code);
    if (*id < 0 || *id >= m->pub.vocab_size)
        return stts_error_set(err, STTS_ERR_NOT_FOUND,
                              "unknown %s language code \"%s\" (NLLB codes look like eng_Latn, jpn_Jpan; "
                              "see --list-languages)",
                              what, code ? code : "(null)");
    return STTS_OK;
}

stts_status nllb_tokenize(const nllb_model *m, const char *text, const char *src_lang, int32_t **ids, int *n,
                          stts_error *err) {
    *ids = NULL;
    *n = 0;
    stts_status st = need_tok(m, err);
    if (st) return st;
    int lang;
    if ((st = lang_or_err(m, src_lang, "source", &lang, err))) return st;
    int32_t *p = NULL;
    size_t k = 0;
    if ((st = mt_tokenizer_encode(m->tok, text ? text : "", &p, &k, err))) return st;
    int32_t *o = malloc((k + 2) * sizeof(int32_t));
    if (!o) {
        free(p);
        return stts_error_set(err, STTS_ERR_NOMEM, "out of memory tokenizing");
    }
    o[0] = lang;
    if (k) memcpy(o + 1, p, k * sizeof(int32_t));
    o[k + 1] = NLLB_ID_EOS;
    free(p);
    *ids = o;
    *n = (int)k + 2;
    return STTS_OK;
}

stts_status nllb_detokenize(const nllb_model *m, const int32_t *ids, int n, char **text, stts_error *err) {
    *text = NULL;
    stts_status st = need_tok(m, err);
    if (st) return st;
    return mt_tokenizer_decode(m->tok, ids, n > 0 ? (size_t)n : 0, text, err);
}

/* ---------------- translation ---------------- */

nllb_translate_params nllb_translate_default_params(void) {
    nllb_translate_params p;
    memset(&p, 0, sizeof p);
    p.num_beams = 1;
    p.length_penalty = 1.0f;
    return p;
}

void nllb_result_clear(nllb_result *r) {
    if (!r) return;
    free(r->text);
    free(r->ids);
    memset(r, 0, sizeof *r);
}

static stts_status check_ids(const nllb_model *m, const int32_t *ids, int n, const char *what, stts_error *err) {
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->pub.vocab_size)
            return stts_error_set(err, STTS_ERR_INVALID_ARG, "%s token %d at index %d is outside the vocabulary (%d)",
                                  what, ids[i], i, m->pub.vocab_size);
    return STTS_OK;
}

/* Lays the sources out as encoder rows (truncating to the model's positions,
 * keeping the final </s>) and runs the encoder. */
static stts_status prepare_sources(nllb_session *s, const int32_t *const *src, const int *lens, int n, int slots,
                                   int max_len, nllb_result *res, stts_error *err) {
    const nllb_model *m = s->m;
    int maxp = m->pub.max_position_embeddings, total = 0;
    for (int i = 0; i < n; i++) {
        if (!src[i] || lens[i] < 1)
            return stts_error_set(err, STTS_ERR_INVALID_ARG, "source %d is empty (it needs at least </s>)", i);
        stts_status st = check_ids(m, src[i], lens[i], "source", err);
        if (st) return st;
        total += lens[i] > maxp ? maxp : lens[i];
    }
    stts_status st = mt_session_reserve(s, total, n, slots, max_len, err);
    if (st) return st;
    int off = 0;
    for (int i = 0; i < n; i++) {
        int L = lens[i] > maxp ? maxp : lens[i];
        s->seg_start[i] = off;
        s->seg_len[i] = L;
        memcpy(s->ids + off, src[i], (size_t)L * sizeof(int32_t));
        if (L < lens[i]) s->ids[off + L - 1] = src[i][lens[i] - 1]; /* keep </s> last */
        if (res) {
            res[i].src_tokens = L;
            res[i].truncated = L < lens[i];
        }
        off += L;
    }
    return STTS_OK;
}

/* Picks the call's LM head: the cached shortlist, plus the source ids it
 * lacks as a per-call extra block, and the column -> id map. */
static stts_status shortlist_begin(nllb_session *s, const nllb_translate_params *p, int32_t tgt,
                                   const int32_t *const *src, const int *lens, int n, int rows, stts_error *err) {
    const nllb_model *m = s->m;
    mt_backend *be = s->be;
    s->sl = NULL;
    if (s->sl_extra) {
        be->ops->weight_free(be, s->sl_extra);
        s->sl_extra = NULL;
    }
    if (p->shortlist == NLLB_SHORTLIST_NONE) return STTS_OK;
    const mt_shortlist *sl = NULL;
    stts_status st;
    if (p->shortlist == NLLB_SHORTLIST_AUTO) st = mt_shortlist_auto(m, tgt, &sl, err);
    else if (p->shortlist == NLLB_SHORTLIST_IDS) st = mt_shortlist_ids(m, p->shortlist_ids, p->n_shortlist_ids, &sl, err);
    else st = stts_error_set(err, STTS_ERR_INVALID_ARG, "shortlist mode %d is not none, auto or ids", (int)p->shortlist);
    if (st || !sl) return st;
    /* source ids the list lacks (the sentence's names are copied through) */
    int total = 0;
    for (int i = 0; i < n; i++) total += lens[i];
    int32_t *extra = malloc(sizeof(int32_t) * (size_t)(total + 1));
    if (!extra) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory for a shortlist");
    int ne = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < lens[i]; j++)
            if (!mt_shortlist_has(sl, src[i][j])) {
                int dup = 0;
                for (int k = 0; k < ne && !dup; k++) dup = extra[k] == src[i][j];
                if (!dup) extra[ne++] = src[i][j];
            }
    for (int i = 1; i < ne; i++) /* ascending (few) */
        for (int k = i; k > 0 && extra[k] < extra[k - 1]; k--) {
            int32_t t = extra[k];
            extra[k] = extra[k - 1], extra[k - 1] = t;
        }
    int width = sl->n + ne;
    if (width > s->sl_cap) {
        free(s->sl_map);
        s->sl_cap = 0;
        if (!(s->sl_map = malloc(sizeof(int32_t) * (size_t)width))) st = STTS_ERR_NOMEM;
        else s->sl_cap = width;
    }
    if (!st && ne) {
        st = be->ops->weight_gather(be, m->lm_head, extra, ne, &s->sl_extra, err);
        size_t nb = (size_t)rows * sl->n, nx = (size_t)rows * ne;
        if (!st && nb > s->lbase_n) {
            be->ops->release(be, s->lbase);
            s->lbase_n = (s->lbase = be->ops->alloc(be, nb)) ? nb : 0;
            if (!s->lbase) st = STTS_ERR_NOMEM;
        }
        if (!st && nx > s->lext_n) {
            be->ops->release(be, s->lext);
            s->lext_n = (s->lext = be->ops->alloc(be, nx)) ? nx : 0;
            if (!s->lext) st = STTS_ERR_NOMEM;
        }
    }
    if (!st) {
        memcpy(s->sl_map, sl->ids, sizeof(int32_t) * (size_t)sl->n);
        memcpy(s->sl_map + sl->n, extra, sizeof(int32_t) * (size_t)ne);
        s->sl_n = width;
        s->sl = sl;
    }
    free(extra);
    if (st == STTS_ERR_NOMEM) stts_error_set(err, st, "out of memory for a shortlist");
    return st;
}

static stts_status run_ids(nllb_session *s, const int32_t *const *src, const int *lens, int n, int32_t tgt,
                           const nllb_translate_params *pp, nllb_result *res, stts_error *err) {
    const nllb_model *m = s->m;
    nllb_translate_params p = pp ? *pp : nllb_translate_default_params();
    if (n < 0 || (n > 0 && (!src || !lens || !res)))
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "translate: bad batch arguments");
    if (tgt < 0 || tgt >= m->pub.vocab_size)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "target language id %d is outside the vocabulary", tgt);
    if (p.num_beams < 1) p.num_beams = 1;
    mt_search_cfg c;
    memset(&c, 0, sizeof c);
    c.num_beams = p.num_beams;
    c.length_penalty = p.length_penalty;
    c.early_stopping = p.early_stopping;
    c.start = m->pub.decoder_start_token_id;
    c.eos = m->pub.eos_token_id;
    c.eos_more = m->cfg.gen_eos_ids + 1;
    c.n_eos_more = m->cfg.n_gen_eos_ids > 1 ? m->cfg.n_gen_eos_ids - 1 : 0;
    c.pad = m->pub.pad_token_id;
    c.bos_forced = tgt;
    c.p = &p;
    c.max_length = p.max_new_tokens > 0 ? 1 + p.max_new_tokens : p.max_length > 0 ? p.max_length : m->pub.max_length;
    /* the config's default never exceeds the positions; an explicit request that does is an error below */
    if (p.max_new_tokens <= 0 && p.max_length <= 0 && c.max_length > m->pub.max_position_embeddings)
        c.max_length = m->pub.max_position_embeddings;
    if (p.force_length > 0) {
        c.max_length = p.force_length + 2; /* start, language, force_length tokens */
        c.eos = -1;
        c.n_eos_more = 0;
    }
    if (c.max_length > m->pub.max_position_embeddings)
        return stts_error_set(err, STTS_ERR_INVALID_ARG,
                              "max length %d exceeds the model's max_position_embeddings %d", c.max_length,
                              m->pub.max_position_embeddings);
    for (int i = 0; i < n; i++) memset(&res[i], 0, sizeof res[i]);
    if (n == 0) return STTS_OK;
    stts_status st = prepare_sources(s, src, lens, n, n * c.num_beams, c.max_length, res, err);
    if (!st) st = shortlist_begin(s, &p, tgt, src, lens, n, n * c.num_beams, err);
    if (!st) {
        int total = s->seg_start[n - 1] + s->seg_len[n - 1];
        st = mt_encode(s, s->ids, n, total, NULL, err);
        if (!st) st = mt_search(s, n, &c, res, err);
    }
    if (st)
        for (int i = 0; i < n; i++) nllb_result_clear(&res[i]);
    return st;
}

stts_status nllb_translate_ids(nllb_session *s, const int32_t *const *src_ids, const int *src_lens, int n,
                               int32_t tgt_lang_id, const nllb_translate_params *params, nllb_result *results,
                               stts_error *err) {
    if (!s) return stts_error_set(err, STTS_ERR_INVALID_ARG, "translate: session is NULL");
    stts_status st = run_ids(s, src_ids, src_lens, n, tgt_lang_id, params, results, err);
    if (st || !s->m->tok) return st;
    for (int i = 0; i < n; i++)
        if ((st = nllb_detokenize(s->m, results[i].ids, results[i].n_ids, &results[i].text, err))) {
            for (int k = 0; k < n; k++) nllb_result_clear(&results[k]);
            return st;
        }
    return STTS_OK;
}

stts_status nllb_translate(nllb_session *s, const char *const *texts, int n, const char *src_lang,
                           const char *tgt_lang, const nllb_translate_params *params, nllb_result *results,
                           stts_error *err) {
    if (!s) return stts_error_set(err, STTS_ERR_INVALID_ARG, "translate: session is NULL");
    const nllb_model *m = s->m;
    stts_status st = need_tok(m, err);
    int tgt, srcid;
    if (st || (st = lang_or_err(m, tgt_lang, "target", &tgt, err)) ||
        (st = lang_or_err(m, src_lang, "source", &srcid, err)))
        return st;
    if (n < 0 || (n > 0 && (!texts || !results)))
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "translate: bad batch arguments");
    int32_t **ids = calloc((size_t)(n > 0 ? n : 1), sizeof *ids);
    int *lens = calloc((size_t)(n > 0 ? n : 1), sizeof *lens);
    if (!ids || !lens) {
        free(ids), free(lens);
        return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n && !st; i++) st = nllb_tokenize(m, texts[i], src_lang, &ids[i], &lens[i], err);
    if (!st) st = nllb_translate_ids(s, (const int32_t *const *)ids, lens, n, tgt, params, results, err);
    for (int i = 0; i < n; i++) free(ids[i]);
    free(ids), free(lens);
    return st;
}

/* ---------------- shortlist files ---------------- */

stts_status nllb_shortlist_parse(const char *data, size_t size, int vocab_size, const char *name, int32_t **ids,
                                 int *n, stts_error *err) {
    *ids = NULL;
    *n = 0;
    int32_t *v = NULL;
    int cap = 0, cnt = 0, line = 0;
    char buf[256];
    stts_status st = STTS_OK;
    size_t off = 0;
    /* A UTF-8 byte-order mark (Windows editors write one; CRLF is taken
     * too) made line 1 "not a token id" with the mark invisible in the
     * message. */
    if (size >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) off = 3;
    while (!st && off < size) {
        line++;
        const char *nl = memchr(data + off, '\n', size - off);
        size_t len = nl ? (size_t)(nl - (data + off)) : size - off;
        if (len > sizeof buf - 2) {   /* what fgets into 256 bytes took for one line with its newline */
            st = stts_error_set(err, STTS_ERR_FORMAT, "%s:%d: line too long (one token id per line)", name, line);
            break;
        }
        memcpy(buf, data + off, len);
        buf[len] = 0;
        off += len + (nl ? 1 : 0);
        if (memchr(buf, 0, len)) {   /* a binary file, or a number cut short by a NUL: never read as ids */
            st = stts_error_set(err, STTS_ERR_FORMAT, "%s:%d: a NUL byte: not a text file of token ids", name, line);
            break;
        }
        char *p = buf;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\r' || *p == 0 || *p == '#') continue;
        char *end;
        errno = 0;
        long id = strtol(p, &end, 10);
        int overflow = errno == ERANGE;
        while (*end == ' ' || *end == '\t' || *end == '\r') end++;
        if (end == p || *end || (*p != '-' && (*p < '0' || *p > '9'))) {
            st = stts_error_set(err, STTS_ERR_FORMAT, "%s:%d: \"%.40s\" is not a token id (one number per line)", name,
                                line, strtok(p, "\r"));
            break;
        }
        if (overflow || id < 0 || id >= vocab_size) {
            /* the number as written: strtol's clamp showed 99999999999999999999
             * as 9223372036854775807 */
            st = stts_error_set(err, STTS_ERR_FORMAT, "%s:%d: token id %.40s is outside the vocabulary (0..%d)", name,
                                line, strtok(p, " \t\r"), vocab_size - 1);
            break;
        }
        if (cnt == cap) {
            int nc = cap ? cap * 2 : 1024;
            int32_t *nv = cap <= INT_MAX / 2 ? realloc(v, sizeof(int32_t) * (size_t)nc) : NULL;
            if (!nv) {
                st = stts_error_set(err, STTS_ERR_NOMEM, "out of memory reading %s", name);
                break;
            }
            v = nv, cap = nc;
        }
        v[cnt++] = (int32_t)id;
    }
    if (!st && cnt == 0)
        st = stts_error_set(err, STTS_ERR_FORMAT, "shortlist %s has no token ids (one id per line expected)", name);
    if (st) {
        free(v);
        return st;
    }
    *ids = v;
    *n = cnt;
    return STTS_OK;
}

stts_status nllb_shortlist_read(const nllb_model *m, const char *path, int32_t **ids, int *n, stts_error *err) {
    *ids = NULL;
    *n = 0;
    /* Opened without blocking: open() of a FIFO with no writer waited for
     * one. A pipe that has a writer (--shortlist <(...)) is then read as
     * usual; one without reads as empty. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return stts_error_set(err, STTS_ERR_IO, "shortlist %s: cannot open it: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || S_ISDIR(sb.st_mode)) {
        close(fd);
        return stts_error_set(err, STTS_ERR_IO, "shortlist %s: a directory, where a file of token ids is expected",
                              path);
    }
    int fl = fcntl(fd, F_GETFL);
    FILE *f = fl >= 0 && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        int e = errno;
        close(fd);
        return stts_error_set(err, STTS_ERR_IO, "shortlist %s: cannot read it: %s", path, strerror(e));
    }
    /* A shortlist is at most one short line per vocabulary entry: anything
     * far larger is not one, and is not read into memory. */
    enum { MAX_BYTES = 64 << 20 };
    char *data = malloc(MAX_BYTES / 64);
    size_t size = 0, cap = MAX_BYTES / 64;
    stts_status st = data ? STTS_OK : stts_error_set(err, STTS_ERR_NOMEM, "out of memory reading %s", path);
    while (!st) {
        if (size == cap) {
            if (cap >= MAX_BYTES) {
                st = stts_error_set(err, STTS_ERR_FORMAT, "shortlist %s is over %d MiB: not a list of token ids", path,
                                    MAX_BYTES >> 20);
                break;
            }
            char *nd = realloc(data, cap * 2);
            if (!nd) {
                st = stts_error_set(err, STTS_ERR_NOMEM, "out of memory reading %s", path);
                break;
            }
            data = nd, cap *= 2;
        }
        size_t k = fread(data + size, 1, cap - size, f);
        size += k;
        if (k == 0) break;
    }
    if (!st && ferror(f)) st = stts_error_set(err, STTS_ERR_IO, "shortlist %s: read error: %s", path, strerror(errno));
    fclose(f);
    if (!st) st = nllb_shortlist_parse(data, size, m->pub.vocab_size, path, ids, n, err);
    free(data);
    return st;
}

/* ---------------- lower level ---------------- */

stts_status nllb_encode(nllb_session *s, const int32_t *src_ids, int n, float *out, stts_error *err) {
    if (!s || !src_ids || n < 1 || !out) return stts_error_set(err, STTS_ERR_INVALID_ARG, "nllb_encode: bad arguments");
    if (n > s->m->pub.max_position_embeddings)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "nllb_encode: %d tokens exceed max_position_embeddings %d", n,
                              s->m->pub.max_position_embeddings);
    const int32_t *src[1] = {src_ids};
    stts_status st = prepare_sources(s, src, &n, 1, 1, 1, NULL, err);
    if (!st) st = mt_encode(s, s->ids, 1, n, out, err);
    return st;
}

stts_status nllb_decoder_logits(nllb_session *s, const int32_t *src_ids, int n_src, const int32_t *dec_ids,
                                int n_dec, float *logits, stts_error *err) {
    if (!s || !src_ids || n_src < 1 || !dec_ids || n_dec < 1 || !logits)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "nllb_decoder_logits: bad arguments");
    const nllb_model *m = s->m;
    if (n_src > m->pub.max_position_embeddings || n_dec > m->pub.max_position_embeddings)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "nllb_decoder_logits: sequence longer than max_position_embeddings %d",
                              m->pub.max_position_embeddings);
    stts_status st = check_ids(m, dec_ids, n_dec, "decoder", err);
    if (st) return st;
    const int32_t *src[1] = {src_ids};
    st = prepare_sources(s, src, &n_src, 1, 1, n_dec, NULL, err);
    if (!st) st = mt_encode(s, s->ids, 1, n_src, NULL, err);
    s->sl = NULL; /* full vocabulary */
    int slot = 0, sent = 0;
    size_t V = (size_t)m->pub.vocab_size;
    for (int t = 0; t < n_dec && !st; t++) {
        st = mt_decode_step(s, 1, &dec_ids[t], &slot, &sent, t, 1, err);
        const float *lg = NULL;
        if (!st) st = mt_logits_host(s, 1, &lg, err);
        if (!st) memcpy(logits + (size_t)t * V, lg, V * sizeof(float));
    }
    return st;
}
