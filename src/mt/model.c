/* model.c - building an nllb_model: from an HF checkpoint directory
 * (config via config.h, tensors via checkpoint.h, tokenizer via
 * tokenizer.h) or with deterministic random weights in memory. Every tensor
 * is looked up by its HF name (with the tied-embedding fallbacks), its shape
 * checked against the config, converted to f32 and stored in the layout
 * model.h describes. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "cuda/cuda_backend.h"
#include "model.h"

/* ---------- weight allocation (one block per tensor group) ---------- */

static stts_status alloc_lin(nllb_model *m, mt_lin *l, int out, int in, stts_error *err) {
    l->out = out;
    l->in = in;
    l->w = m->be->ops->alloc(m->be, (size_t)out * in);
    l->b = m->be->ops->alloc(m->be, (size_t)out);
    if (!l->w || !l->b)
        return stts_error_set(err, STTS_ERR_NOMEM, "out of memory allocating a %dx%d weight", out, in);
    m->weight_floats += (size_t)out * in + (size_t)out;
    return STTS_OK;
}

static stts_status alloc_ln(nllb_model *m, mt_ln *l, stts_error *err) {
    size_t d = (size_t)m->pub.d_model;
    l->g = m->be->ops->alloc(m->be, d);
    l->b = m->be->ops->alloc(m->be, d);
    if (!l->g || !l->b) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory allocating a LayerNorm");
    m->weight_floats += 2 * d;
    return STTS_OK;
}

static stts_status check_config(const nllb_config *c, stts_error *err) {
#define REQ(cond, ...) \
    do { \
        if (!(cond)) return stts_error_set(err, STTS_ERR_INVALID_ARG, __VA_ARGS__); \
    } while (0)
    REQ(c->d_model >= 4 && c->d_model <= 65536, "config: d_model %d is out of range (4..65536)", c->d_model);
    REQ(c->vocab_size > 0 && c->vocab_size <= 4000000, "config: vocab_size %d is out of range (1..4000000)",
        c->vocab_size);
    REQ(c->encoder_layers >= 0 && c->encoder_layers <= 256, "config: encoder_layers %d is out of range (0..256)",
        c->encoder_layers);
    REQ(c->decoder_layers >= 1 && c->decoder_layers <= 256, "config: decoder_layers %d is out of range (1..256)",
        c->decoder_layers);
    REQ(c->encoder_attention_heads > 0 && c->d_model % c->encoder_attention_heads == 0,
        "config: encoder_attention_heads %d does not divide d_model %d", c->encoder_attention_heads, c->d_model);
    REQ(c->decoder_attention_heads > 0 && c->d_model % c->decoder_attention_heads == 0,
        "config: decoder_attention_heads %d does not divide d_model %d", c->decoder_attention_heads, c->d_model);
    REQ(c->encoder_ffn_dim > 0 && c->encoder_ffn_dim <= 1 << 18,
        "config: encoder_ffn_dim %d is out of range (1..262144)", c->encoder_ffn_dim);
    REQ(c->decoder_ffn_dim > 0 && c->decoder_ffn_dim <= 1 << 18,
        "config: decoder_ffn_dim %d is out of range (1..262144)", c->decoder_ffn_dim);
    REQ(c->max_position_embeddings >= 2 && c->max_position_embeddings <= 1 << 16,
        "config: max_position_embeddings %d is out of range (2..65536)", c->max_position_embeddings);
    REQ(c->pad_token_id >= 0 && c->pad_token_id < c->vocab_size && c->eos_token_id >= 0 &&
            c->eos_token_id < c->vocab_size && c->decoder_start_token_id >= 0 &&
            c->decoder_start_token_id < c->vocab_size,
        "config: pad/eos/decoder_start token ids (%d/%d/%d) are outside the vocabulary (%d)", c->pad_token_id,
        c->eos_token_id, c->decoder_start_token_id, c->vocab_size);
    REQ(c->spm_size >= 0 && c->spm_size + 1 + NLLB_NUM_LANGS <= c->vocab_size,
        "the vocabulary (%d) has no room for the %d language codes after %d SentencePiece pieces", c->vocab_size,
        NLLB_NUM_LANGS, c->spm_size);
    /* </s>, the language token and one more: anything shorter cannot translate. */
    REQ(c->max_length == 0 || c->max_length >= 3,
        "generation config: max_length %d leaves no room to generate (at least 3)", c->max_length);
#undef REQ
    return STTS_OK;
}

/* The shared embedding must be [vocab_size, d_model] as config.json says. */
static stts_status check_embedding_shape(const mt_checkpoint *ck, const nllb_config *c, stts_error *err) {
    static const char *const names[] = {"model.shared.weight", "model.encoder.embed_tokens.weight",
                                        "model.decoder.embed_tokens.weight", "lm_head.weight"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const mt_tensor *t = mt_checkpoint_find(ck, names[i]);
        if (!t) continue;
        if (t->ndim != 2 || t->shape[0] != c->vocab_size || t->shape[1] != c->d_model)
            return stts_error_set(err, STTS_ERR_FORMAT,
                                  "%s: tensor %s has shape [%lld, %lld] but config.json says vocab_size %d and "
                                  "d_model %d: the config and the weights are of different models",
                                  mt_checkpoint_path(ck), names[i], (long long)t->shape[0],
                                  (long long)(t->ndim > 1 ? t->shape[1] : 0), c->vocab_size, c->d_model);
        return STTS_OK;
    }
    return STTS_OK;   /* load_weights reports a missing embedding */
}

/* Weights of layers the config does not have mean the config and the
 * checkpoint disagree; transformers would warn, we refuse. */
static stts_status check_no_extra_layers(const mt_checkpoint *ck, const nllb_config *c, stts_error *err) {
    for (size_t i = 0; i < mt_checkpoint_count(ck); i++) {
        const char *name = mt_checkpoint_at(ck, i)->name;
        int layer = -1, is_dec = -1;
        if (sscanf(name, "model.encoder.layers.%d.", &layer) == 1) is_dec = 0;
        else if (sscanf(name, "model.decoder.layers.%d.", &layer) == 1) is_dec = 1;
        int have = is_dec ? c->decoder_layers : c->encoder_layers;
        if (is_dec >= 0 && layer >= have)
            return stts_error_set(err, STTS_ERR_FORMAT,
                                  "%s: tensor %s belongs to %s layer %d, but config.json says %s_layers %d: the "
                                  "config and the weights are of different models",
                                  mt_checkpoint_path(ck), name, is_dec ? "decoder" : "encoder", layer,
                                  is_dec ? "decoder" : "encoder", have);
    }
    return STTS_OK;
}

static stts_status model_alloc(nllb_model *m, const nllb_model_params *p, stts_error *err) {
    const nllb_config *c = &m->pub;
    stts_status st = check_config(c, err);
    if (st) return st;
    /* attention spans at most max_position_embeddings keys (sources are
     * truncated to it, decoding stops at it) */
    st = STTS_ERR_UNSUPPORTED;
    if (p->device != NLLB_DEVICE_CPU) {
        stts_error e2;
        st = mt_cuda_backend_new(c->max_position_embeddings + 2, &m->be, &e2);
        if (st && p->device == NLLB_DEVICE_CUDA) return stts_error_set(err, st, "--device cuda: %s", e2.msg);
    }
    if (st) st = mt_cpu_backend_new(p->threads, (int)p->simd, c->max_position_embeddings + 2, &m->be, err);
    if (st) return st;
    int d = c->d_model;
    m->embed_scale = c->scale_embedding ? sqrtf((float)d) : 1.0f;
    m->embed = m->be->ops->alloc(m->be, (size_t)c->vocab_size * d);
    if (!m->embed) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory for the %dx%d embedding", c->vocab_size, d);
    m->weight_floats += (size_t)c->vocab_size * d;
    m->lm_head = m->embed;
    m->enc = calloc((size_t)c->encoder_layers + 1, sizeof *m->enc);
    m->dec = calloc((size_t)c->decoder_layers, sizeof *m->dec);
    if (!m->enc || !m->dec) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    for (int i = 0; i < c->encoder_layers; i++) {
        mt_enc_layer *L = &m->enc[i];
        if ((st = alloc_ln(m, &L->ln_attn, err)) || (st = alloc_lin(m, &L->qkv, 3 * d, d, err)) ||
            (st = alloc_lin(m, &L->o, d, d, err)) || (st = alloc_ln(m, &L->ln_ffn, err)) ||
            (st = alloc_lin(m, &L->fc1, c->encoder_ffn_dim, d, err)) ||
            (st = alloc_lin(m, &L->fc2, d, c->encoder_ffn_dim, err)))
            return st;
    }
    for (int i = 0; i < c->decoder_layers; i++) {
        mt_dec_layer *L = &m->dec[i];
        if ((st = alloc_ln(m, &L->ln_self, err)) || (st = alloc_lin(m, &L->qkv, 3 * d, d, err)) ||
            (st = alloc_lin(m, &L->o, d, d, err)) || (st = alloc_ln(m, &L->ln_cross, err)) ||
            (st = alloc_lin(m, &L->cq, d, d, err)) || (st = alloc_lin(m, &L->ckv, 2 * d, d, err)) ||
            (st = alloc_lin(m, &L->co, d, d, err)) || (st = alloc_ln(m, &L->ln_ffn, err)) ||
            (st = alloc_lin(m, &L->fc1, c->decoder_ffn_dim, d, err)) ||
            (st = alloc_lin(m, &L->fc2, d, c->decoder_ffn_dim, err)))
            return st;
    }
    if ((st = alloc_ln(m, &m->enc_ln, err)) || (st = alloc_ln(m, &m->dec_ln, err))) return st;
    return STTS_OK;
}

static void free_lin(mt_backend *be, mt_lin *l) {
    be->ops->release(be, l->w);
    be->ops->release(be, l->b);
}

static void free_ln(mt_backend *be, mt_ln *l) {
    be->ops->release(be, l->g);
    be->ops->release(be, l->b);
}

void nllb_model_free(nllb_model *m) {
    if (!m) return;
    mt_backend *be = m->be;
    if (be) {
        if (m->enc)
            for (int i = 0; i < m->pub.encoder_layers; i++) {
                mt_enc_layer *L = &m->enc[i];
                free_ln(be, &L->ln_attn), free_lin(be, &L->qkv), free_lin(be, &L->o);
                free_ln(be, &L->ln_ffn), free_lin(be, &L->fc1), free_lin(be, &L->fc2);
            }
        if (m->dec)
            for (int i = 0; i < m->pub.decoder_layers; i++) {
                mt_dec_layer *L = &m->dec[i];
                free_ln(be, &L->ln_self), free_lin(be, &L->qkv), free_lin(be, &L->o);
                free_ln(be, &L->ln_cross), free_lin(be, &L->cq), free_lin(be, &L->ckv), free_lin(be, &L->co);
                free_ln(be, &L->ln_ffn), free_lin(be, &L->fc1), free_lin(be, &L->fc2);
            }
        free_ln(be, &m->enc_ln);
        free_ln(be, &m->dec_ln);
        if (m->lm_head != m->embed) be->ops->release(be, m->lm_head);
        be->ops->release(be, m->embed);
        be->ops->destroy(be);
    }
    free(m->enc);
    free(m->dec);
    if (m->tok) mt_tokenizer_free(m->tok);
    pthread_mutex_destroy(&m->run_lock);
    free(m);
}

static nllb_model *model_new(void) {
    nllb_model *m = calloc(1, sizeof *m);
    if (m) pthread_mutex_init(&m->run_lock, NULL);
    return m;
}

/* ---------- random weights ---------- */

typedef struct {
    float *dst;
    size_t n;
    uint64_t seed;
    float lo, span;
} rnd_job;

#define RND_CHUNK (1u << 16)

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rnd_chunk(void *ctx, int i) {
    rnd_job *j = ctx;
    size_t a = (size_t)i * RND_CHUNK, b = a + RND_CHUNK < j->n ? a + RND_CHUNK : j->n;
    /* each chunk has its own stream: the same values for any thread count */
    uint64_t st = j->seed ^ ((uint64_t)i * 0xD1B54A32D192ED03ull);
    for (size_t k = a; k < b; k++) {
        uint64_t r = splitmix64(&st);
        j->dst[k] = j->lo + j->span * (float)(r >> 40) * (1.0f / 16777216.0f);
    }
}

static void fill_rnd(nllb_model *m, float *dst, size_t n, uint64_t *tensor_seq, float lo, float hi) {
    rnd_job j = {dst, n, *tensor_seq, lo, hi - lo};
    uint64_t t = *tensor_seq;
    *tensor_seq = splitmix64(&t);
    int chunks = (int)((n + RND_CHUNK - 1) / RND_CHUNK);
    if (m->be->ops->host_visible) {
        m->be->ops->parallel_for(m->be, chunks, rnd_chunk, &j);
        return;
    }
    /* device memory: fill on the host, then upload (same values) */
    float *h = malloc(n * sizeof(float));
    if (!h) return; /* the weights stay unset; random models are for benchmarks */
    j.dst = h;
    for (int i = 0; i < chunks; i++) rnd_chunk(&j, i);
    m->be->ops->upload(m->be, dst, h, n);
    free(h);
}

static void rnd_lin(nllb_model *m, mt_lin *l, uint64_t *seq) {
    /* uniform(+-0.0346): std 0.02 like HF's init_std */
    fill_rnd(m, l->w, (size_t)l->out * l->in, seq, -0.0346f, 0.0346f);
    fill_rnd(m, l->b, (size_t)l->out, seq, -0.02f, 0.02f);
}

static void rnd_ln(nllb_model *m, mt_ln *l, uint64_t *seq) {
    fill_rnd(m, l->g, (size_t)m->pub.d_model, seq, 0.9f, 1.1f);
    fill_rnd(m, l->b, (size_t)m->pub.d_model, seq, -0.05f, 0.05f);
}

nllb_config nllb_config_600m(void) {
    nllb_config c;
    memset(&c, 0, sizeof c);
    c.vocab_size = 256206;
    c.d_model = 1024;
    c.encoder_layers = c.decoder_layers = 12;
    c.encoder_attention_heads = c.decoder_attention_heads = 16;
    c.encoder_ffn_dim = c.decoder_ffn_dim = 4096;
    c.max_position_embeddings = 1024;
    c.pad_token_id = 1;
    c.eos_token_id = 2;
    c.decoder_start_token_id = 2;
    c.scale_embedding = 1;
    c.max_length = 200;
    c.spm_size = 256000;
    return c;
}

nllb_model_params nllb_model_default_params(void) {
    nllb_model_params p = {0, NLLB_SIMD_AUTO, NLLB_DEVICE_CPU};
    return p;
}

stts_status nllb_cuda_probe(stts_error *err) { return mt_cuda_probe(err); }

int nllb_device_parse(const char *name) {
    if (!name) return -1;
    if (!strcmp(name, "cpu")) return NLLB_DEVICE_CPU;
    if (!strcmp(name, "auto")) return NLLB_DEVICE_AUTO;
    if (!strcmp(name, "cuda")) return NLLB_DEVICE_CUDA;
    return -1;
}

stts_status nllb_model_new_random(const nllb_config *cfg, uint64_t seed, const nllb_model_params *params,
                                  nllb_model **out, stts_error *err) {
    *out = NULL;
    if (!cfg) return stts_error_set(err, STTS_ERR_INVALID_ARG, "nllb_model_new_random: cfg is NULL");
    nllb_model_params p = params ? *params : nllb_model_default_params();
    nllb_model *m = model_new();
    if (!m) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    m->pub = *cfg;
    if (m->pub.max_length <= 0) m->pub.max_length = 200;
    stts_status st = model_alloc(m, &p, err);
    if (st) {
        nllb_model_free(m);
        return st;
    }
    uint64_t seq = seed ^ 0x6E6C6C6200000000ull;
    fill_rnd(m, m->embed, (size_t)cfg->vocab_size * cfg->d_model, &seq, -0.0346f, 0.0346f);
    for (int i = 0; i < cfg->encoder_layers; i++) {
        mt_enc_layer *L = &m->enc[i];
        rnd_ln(m, &L->ln_attn, &seq), rnd_lin(m, &L->qkv, &seq), rnd_lin(m, &L->o, &seq);
        rnd_ln(m, &L->ln_ffn, &seq), rnd_lin(m, &L->fc1, &seq), rnd_lin(m, &L->fc2, &seq);
    }
    for (int i = 0; i < cfg->decoder_layers; i++) {
        mt_dec_layer *L = &m->dec[i];
        rnd_ln(m, &L->ln_self, &seq), rnd_lin(m, &L->qkv, &seq), rnd_lin(m, &L->o, &seq);
        rnd_ln(m, &L->ln_cross, &seq), rnd_lin(m, &L->cq, &seq), rnd_lin(m, &L->ckv, &seq);
        rnd_lin(m, &L->co, &seq), rnd_ln(m, &L->ln_ffn, &seq), rnd_lin(m, &L->fc1, &seq);
        rnd_lin(m, &L->fc2, &seq);
    }
    rnd_ln(m, &m->enc_ln, &seq);
    rnd_ln(m, &m->dec_ln, &seq);
    /* mirror the config into mt_config for code that reads it */
    m->cfg.vocab_size = cfg->vocab_size;
    m->cfg.d_model = cfg->d_model;
    m->cfg.max_length = m->pub.max_length;
    m->cfg.gen_decoder_start_token_id = cfg->decoder_start_token_id;
    m->cfg.gen_eos_token_id = cfg->eos_token_id;
    *out = m;
    return STTS_OK;
}

/* ---------- loading a checkpoint ---------- */

typedef struct {
    nllb_model *m;
    const mt_checkpoint *ck;
    float *tmp; /* host staging for non-host-visible backends */
    size_t tmp_n;
} loader;

/* HF saves M2M100ForConditionalGeneration keys with "model."; a bare
 * M2M100Model has them without. */
static const mt_tensor *find(const mt_checkpoint *ck, const char *name) {
    const mt_tensor *t = mt_checkpoint_find(ck, name);
    if (!t && strncmp(name, "model.", 6) == 0) t = mt_checkpoint_find(ck, name + 6);
    return t;
}

static stts_status load_into(loader *ld, const mt_tensor *t, const char *name, float *dst, int64_t d0, int64_t d1,
                             stts_error *err) {
    int ndim = d1 > 0 ? 2 : 1;
    if (t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1)) {
        char got[96] = "";
        size_t o = 0;
        for (int i = 0; i < t->ndim && i < 4 && o < sizeof got - 24; i++)
            o += (size_t)snprintf(got + o, sizeof got - o, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        if (ndim == 2)
            return stts_error_set(err, STTS_ERR_FORMAT,
                                  "%s: tensor %s has shape [%s], the config needs [%lld, %lld]",
                                  mt_checkpoint_path(ld->ck), name, got, (long long)d0, (long long)d1);
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: tensor %s has shape [%s], the config needs [%lld]",
                              mt_checkpoint_path(ld->ck), name, got, (long long)d0);
    }
    size_t n = (size_t)d0 * (size_t)(ndim == 2 ? d1 : 1);
    mt_backend *be = ld->m->be;
    stts_error e2;
    stts_error_clear(&e2);
    float *target = dst;
    if (!be->ops->host_visible) {
        if (n > ld->tmp_n) {
            free(ld->tmp);
            ld->tmp = malloc(n * sizeof(float));
            ld->tmp_n = ld->tmp ? n : 0;
            if (!ld->tmp) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory converting %s", name);
        }
        target = ld->tmp;
    }
    stts_status st = mt_tensor_to_f32(t, target, n, &e2);
    if (st) return stts_error_set(err, st, "%s: tensor %s: %s", mt_checkpoint_path(ld->ck), name, e2.msg);
    if (target != dst) be->ops->upload(be, dst, target, n);
    return STTS_OK;
}

static stts_status load_named(loader *ld, const char *name, float *dst, int64_t d0, int64_t d1, stts_error *err) {
    const mt_tensor *t = find(ld->ck, name);
    if (!t)
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: tensor %s is missing", mt_checkpoint_path(ld->ck), name);
    return load_into(ld, t, name, dst, d0, d1, err);
}

static stts_status load_ln(loader *ld, const char *prefix, mt_ln *l, stts_error *err) {
    char n[160];
    int d = ld->m->pub.d_model;
    stts_status st;
    snprintf(n, sizeof n, "%s.weight", prefix);
    if ((st = load_named(ld, n, l->g, d, 0, err))) return st;
    snprintf(n, sizeof n, "%s.bias", prefix);
    return load_named(ld, n, l->b, d, 0, err);
}

/* Loads projections prefix.{p}_proj (count of them) stacked into one matrix
 * (q, k, v -> [3d][d]; k, v -> [2d][d]) or a plain linear (fc1, out_proj). */
static stts_status load_stack(loader *ld, const char *prefix, const char *const *parts, int count, mt_lin *l,
                              stts_error *err) {
    char n[200];
    stts_status st;
    int rows = l->out / count;
    for (int i = 0; i < count; i++) {
        snprintf(n, sizeof n, "%s%s.weight", prefix, parts[i]);
        if ((st = load_named(ld, n, l->w + (size_t)i * rows * l->in, rows, l->in, err))) return st;
        snprintf(n, sizeof n, "%s%s.bias", prefix, parts[i]);
        if ((st = load_named(ld, n, l->b + (size_t)i * rows, rows, 0, err))) return st;
    }
    return STTS_OK;
}

static stts_status load_weights(loader *ld, stts_error *err) {
    nllb_model *m = ld->m;
    const nllb_config *c = &m->pub;
    stts_status st;
    /* The shared embedding: transformers may save only one of the tied copies. */
    static const char *const emb_names[] = {"model.shared.weight", "model.encoder.embed_tokens.weight",
                                            "model.decoder.embed_tokens.weight", "lm_head.weight"};
    const mt_tensor *emb = NULL;
    const char *emb_name = NULL;
    for (size_t i = 0; i < sizeof emb_names / sizeof *emb_names && !emb; i++)
        if ((emb = find(ld->ck, emb_names[i]))) emb_name = emb_names[i];
    if (!emb)
        return stts_error_set(err, STTS_ERR_FORMAT,
                              "%s: no embedding tensor (model.shared.weight or a tied copy) in the checkpoint",
                              mt_checkpoint_path(ld->ck));
    if ((st = load_into(ld, emb, emb_name, m->embed, c->vocab_size, c->d_model, err))) return st;
    /* transformers loads a half-precision checkpoint in its dtype, and builds
     * the sinusoidal table in that dtype too: the positions it adds are the
     * f32 values rounded to f16/bf16. Do the same, for parity. */
    m->pos_round = emb->dtype == MT_DTYPE_F16 ? 1 : emb->dtype == MT_DTYPE_BF16 ? 2 : 0;
    if (!m->cfg.tie_word_embeddings) {
        const mt_tensor *lm = find(ld->ck, "lm_head.weight");
        if (lm && lm != emb) {
            m->lm_head = m->be->ops->alloc(m->be, (size_t)c->vocab_size * c->d_model);
            if (!m->lm_head) {
                m->lm_head = m->embed;
                return stts_error_set(err, STTS_ERR_NOMEM, "out of memory for the untied LM head");
            }
            m->weight_floats += (size_t)c->vocab_size * c->d_model;
            if ((st = load_into(ld, lm, "lm_head.weight", m->lm_head, c->vocab_size, c->d_model, err))) return st;
        }
    }
    static const char *const qkv[] = {"q_proj", "k_proj", "v_proj"};
    static const char *const kv[] = {"k_proj", "v_proj"};
    static const char *const q[] = {"q_proj"};
    static const char *const o[] = {"out_proj"};
    static const char *const fc1[] = {"fc1"};
    static const char *const fc2[] = {"fc2"};
    char p[160], p2[200];
    for (int i = 0; i < c->encoder_layers; i++) {
        mt_enc_layer *L = &m->enc[i];
        snprintf(p, sizeof p, "model.encoder.layers.%d.", i);
        snprintf(p2, sizeof p2, "%sself_attn.", p);
        if ((st = load_stack(ld, p2, qkv, 3, &L->qkv, err)) || (st = load_stack(ld, p2, o, 1, &L->o, err)) ||
            (st = load_stack(ld, p, fc1, 1, &L->fc1, err)) || (st = load_stack(ld, p, fc2, 1, &L->fc2, err)))
            return st;
        snprintf(p2, sizeof p2, "%sself_attn_layer_norm", p);
        if ((st = load_ln(ld, p2, &L->ln_attn, err))) return st;
        snprintf(p2, sizeof p2, "%sfinal_layer_norm", p);
        if ((st = load_ln(ld, p2, &L->ln_ffn, err))) return st;
    }
    for (int i = 0; i < c->decoder_layers; i++) {
        mt_dec_layer *L = &m->dec[i];
        snprintf(p, sizeof p, "model.decoder.layers.%d.", i);
        snprintf(p2, sizeof p2, "%sself_attn.", p);
        if ((st = load_stack(ld, p2, qkv, 3, &L->qkv, err)) || (st = load_stack(ld, p2, o, 1, &L->o, err)))
            return st;
        snprintf(p2, sizeof p2, "%sencoder_attn.", p);
        if ((st = load_stack(ld, p2, q, 1, &L->cq, err)) || (st = load_stack(ld, p2, kv, 2, &L->ckv, err)) ||
            (st = load_stack(ld, p2, o, 1, &L->co, err)))
            return st;
        if ((st = load_stack(ld, p, fc1, 1, &L->fc1, err)) || (st = load_stack(ld, p, fc2, 1, &L->fc2, err)))
            return st;
        snprintf(p2, sizeof p2, "%sself_attn_layer_norm", p);
        if ((st = load_ln(ld, p2, &L->ln_self, err))) return st;
        snprintf(p2, sizeof p2, "%sencoder_attn_layer_norm", p);
        if ((st = load_ln(ld, p2, &L->ln_cross, err))) return st;
        snprintf(p2, sizeof p2, "%sfinal_layer_norm", p);
        if ((st = load_ln(ld, p2, &L->ln_ffn, err))) return st;
    }
    if ((st = load_ln(ld, "model.encoder.layer_norm", &m->enc_ln, err)) ||
        (st = load_ln(ld, "model.decoder.layer_norm", &m->dec_ln, err)))
        return st;
    return STTS_OK;
}

stts_status nllb_model_load(const char *dir, const nllb_model_params *params, nllb_model **out, stts_error *err) {
    *out = NULL;
    if (!dir) return stts_error_set(err, STTS_ERR_INVALID_ARG, "nllb_model_load: dir is NULL");
    nllb_model_params p = params ? *params : nllb_model_default_params();
    nllb_model *m = model_new();
    if (!m) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    mt_checkpoint *ck = NULL;
    loader ld = {m, NULL, NULL, 0};
    stts_status st = mt_config_load_dir(dir, &m->cfg, err);
    if (st) goto fail;
    if (strcmp(m->cfg.activation_function, "relu") != 0 && m->cfg.activation_function[0]) {
        st = stts_error_set(err, STTS_ERR_UNSUPPORTED, "%s/config.json: activation_function \"%s\" is not supported (relu)",
                            dir, m->cfg.activation_function);
        goto fail;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/sentencepiece.bpe.model", dir);
    if ((st = mt_tokenizer_load(path, &m->tok, err))) goto fail;
    nllb_config *c = &m->pub;
    c->vocab_size = m->cfg.vocab_size;
    c->d_model = m->cfg.d_model;
    c->encoder_layers = m->cfg.encoder_layers;
    c->decoder_layers = m->cfg.decoder_layers;
    c->encoder_attention_heads = m->cfg.encoder_attention_heads;
    c->decoder_attention_heads = m->cfg.decoder_attention_heads;
    c->encoder_ffn_dim = m->cfg.encoder_ffn_dim;
    c->decoder_ffn_dim = m->cfg.decoder_ffn_dim;
    c->max_position_embeddings = m->cfg.max_position_embeddings;
    c->pad_token_id = m->cfg.pad_token_id;
    c->eos_token_id = m->cfg.gen_eos_token_id;
    c->decoder_start_token_id = m->cfg.gen_decoder_start_token_id;
    c->scale_embedding = m->cfg.scale_embedding;
    c->max_length = m->cfg.max_length > 0 ? m->cfg.max_length : 200;
    c->spm_size = mt_tokenizer_spm_size(m->tok);
    if (mt_tokenizer_num_tokens(m->tok) > c->vocab_size) {
        st = stts_error_set(err, STTS_ERR_FORMAT,
                            "%s: the tokenizer has %d tokens (with language codes and <mask>) but config.json "
                            "vocab_size is %d",
                            path, mt_tokenizer_num_tokens(m->tok), c->vocab_size);
        goto fail;
    }
    /* The checkpoint is opened (headers only) before anything is allocated,
     * so a config that does not match the weights is reported as that, not
     * as an allocation failure of the config's sizes. */
    if ((st = mt_checkpoint_open(dir, &ck, err))) goto fail;
    if ((st = check_embedding_shape(ck, c, err))) goto fail;
    if ((st = model_alloc(m, &p, err))) goto fail;
    ld.ck = ck;
    if ((st = load_weights(&ld, err))) goto fail;
    if ((st = check_no_extra_layers(ck, c, err))) goto fail;
    free(ld.tmp);
    mt_checkpoint_close(ck);
    *out = m;
    return STTS_OK;
fail:
    free(ld.tmp);
    if (ck) mt_checkpoint_close(ck);
    nllb_model_free(m);
    return st;
}
