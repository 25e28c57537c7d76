/* model.c - building an nllb_model: from an HF checkpoint directory
 * (config via config.h, tensors via checkpoint.h, tokenizer via
 * tokenizer.h) or with deterministic random weights in memory. Every tensor
 * is looked up by its HF name (with the tied-embedding fallbacks), its shape
 * checked against the config and handed to the backend with the requested
 * compute format (backend.h: in place from the mapped file when the file
 * already holds that format, else converted once). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "cuda/cuda_backend.h"
#include "model.h"
#include "quant.h"

/* Padding rows allowed after <mask> (see model_load_on). */
#define NLLB_MAX_PAD_ROWS 1024

/* ---------- weights (handles made by the backend) ---------- */

/* A vector (bias, LayerNorm) from host f32: always f32, always copied (small). */
static stts_status make_vec(nllb_model *m, mt_weight **out, const float *host, int n, stts_error *err) {
    mt_wpart part = {MT_DTYPE_F32, host, NULL, 0};
    stts_status st = m->be->ops->weight_new(m->be, &part, 1, 1, n, MT_WF_F32, 0, out, err);
    if (!st) m->weight_bytes += (*out)->bytes;
    return st;
}

/* A matrix of nparts stacked source blocks in the model's format. */
static stts_status make_mat(nllb_model *m, mt_weight **out, const mt_wpart *parts, int nparts, int part_rows, int cols,
                            int flags, stts_error *err) {
    stts_status st = m->be->ops->weight_new(m->be, parts, nparts, part_rows, cols, m->wfmt, flags, out, err);
    if (!st) m->weight_bytes += (*out)->bytes;
    return st;
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

/* STTS_SIMD=scalar|avx2|avxvnni|avx512|avx512vnni|neon forces a kernel level when
 * the params say auto (tests, benchmarks); an unknown name is an error. */
static stts_status nllb_simd_from_env(int *simd, stts_error *err) {
    const char *v = getenv("STTS_SIMD");
    if (!v || !*v || !strcmp(v, "auto")) return STTS_OK;
    int s = nllb_simd_parse(v);
    if (s < 0)
        return stts_error_set(err, STTS_ERR_UNSUPPORTED,
                              "STTS_SIMD=%s: the engine knows auto, scalar, avx2, avxvnni, avx512, avx512vnni, neon (no %s kernels)",
                              v, v);
    *simd = s;
    return STTS_OK;
}

static mt_wfmt resolve_format(nllb_weights w, int gpu) {
    switch (w) {
    case NLLB_WEIGHTS_F32: return MT_WF_F32;
    case NLLB_WEIGHTS_BF16: return MT_WF_BF16;
    case NLLB_WEIGHTS_F16: return MT_WF_F16;
    case NLLB_WEIGHTS_INT8: return MT_WF_I8;
    default: return gpu ? MT_WF_BF16 : MT_WF_I8; /* auto: the fastest on the device */
    }
}

stts_status nllb_cuda_probe(stts_error *err) { return mt_cuda_probe(err); }
int nllb_cuda_built(void) { return mt_cuda_built(); }

/* An NVIDIA driver is loaded (a GPU a build without CUDA leaves unused).
 * STTS_TEST_NVIDIA_DRIVER names another file to look for (tests). */
static int nvidia_driver_present(void) {
    const char *p = getenv("STTS_TEST_NVIDIA_DRIVER");
    return access(p && *p ? p : "/proc/driver/nvidia/version", F_OK) == 0;
}

static stts_status model_alloc(nllb_model *m, const nllb_model_params *p, stts_error *err) {
    const nllb_config *c = &m->pub;
    stts_status st = check_config(c, err);
    if (st) return st;
    if ((int)p->weights < NLLB_WEIGHTS_AUTO || (int)p->weights > NLLB_WEIGHTS_INT8)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "weight format %d is not one of auto, f32, bf16, f16, int8",
                              (int)p->weights);
    if ((int)p->device < NLLB_DEVICE_AUTO || (int)p->device > NLLB_DEVICE_CUDA)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "device %d is not one of auto, cpu, cuda", (int)p->device);
    /* attention spans at most max_position_embeddings keys (sources are
     * truncated to it, decoding stops at it) */
    int max_kv = c->max_position_embeddings + 2;
    if (p->device != NLLB_DEVICE_CPU) {
        /* CUDA asked for: its error is the load's; AUTO: the CPU when there is no usable GPU */
        stts_error e2;
        st = p->device == NLLB_DEVICE_CUDA || mt_cuda_probe(&e2) == STTS_OK ? mt_cuda_backend_new(max_kv, &m->be, &e2)
                                                                              : STTS_ERR_NOT_FOUND;
        if (st && p->device == NLLB_DEVICE_CUDA) return stts_error_set(err, st, "device cuda: %s", e2.msg);
    }
    if (!m->be) {
        int simd = (int)p->simd, from_env = 0;
        if (simd == NLLB_SIMD_AUTO) {
            if ((st = nllb_simd_from_env(&simd, err))) return st;
            from_env = simd != NLLB_SIMD_AUTO;
        }
        st = mt_cpu_backend_new(p->threads, simd, max_kv, &m->be, err);
        if (st == STTS_ERR_UNSUPPORTED && from_env) {
            /* name where the level came from: a variable set long ago and
             * forgotten reads like a bug of the program otherwise */
            char why[STTS_ERROR_MAX];
            snprintf(why, sizeof why, "%s", err->msg);
            return stts_error_set(err, st, "STTS_SIMD=%s (environment): %s; unset STTS_SIMD or set it to one of those",
                                  getenv("STTS_SIMD"), why);
        }
        if (st) return st;
    }
    m->wfmt = resolve_format(p->weights, m->be->ops->host_visible == 0);
    /* a bf16 model on the GPU computes as HF's bf16 model does (activations
     * rounded to bf16: docs/ENGINE.md), set before any weight is made */
    if (m->wfmt == MT_WF_BF16) mt_cuda_backend_set_bf16_activations(m->be, 1);
    m->embed_scale = c->scale_embedding ? sqrtf((float)c->d_model) : 1.0f;
    m->enc = calloc((size_t)c->encoder_layers + 1, sizeof *m->enc);
    m->dec = calloc((size_t)c->decoder_layers, sizeof *m->dec);
    if (!m->enc || !m->dec) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    return STTS_OK;
}

static void free_w(mt_backend *be, mt_weight *w) {
    if (w) be->ops->weight_free(be, w);
}

static void free_lin(mt_backend *be, mt_lin *l) {
    free_w(be, l->w);
    free_w(be, l->b);
}

static void free_ln(mt_backend *be, mt_ln *l) {
    free_w(be, l->g);
    free_w(be, l->b);
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
        if (m->lm_head != m->embed) free_w(be, m->lm_head);
        free_w(be, m->embed);
        for (mt_shortlist *sl = m->shortlists, *nx; sl; sl = nx) {
            nx = sl->next;
            free_w(be, sl->head);
            free(sl->ids);
            free(sl->given);
            free(sl);
        }
        be->ops->destroy(be);
    }
    if (m->ck) mt_checkpoint_close(m->ck);
    free(m->enc);
    free(m->dec);
    if (m->tok) mt_tokenizer_free(m->tok);
    pthread_mutex_destroy(&m->sl_lock);
    free(m);
}

static nllb_model *model_new(void) {
    nllb_model *m = calloc(1, sizeof *m);
    if (m) pthread_mutex_init(&m->sl_lock, NULL);
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

typedef struct {
    nllb_model *m;
    mt_exec *x;      /* runs the fill in parallel */
    float *tmp;      /* host f32 staging, the largest tensor */
    uint64_t seq;
} rnd_ctx;

static void fill_rnd(rnd_ctx *r, float *dst, size_t n, float lo, float hi) {
    rnd_job j = {dst, n, r->seq, lo, hi - lo};
    uint64_t t = r->seq;
    r->seq = splitmix64(&t);
    int chunks = (int)((n + RND_CHUNK - 1) / RND_CHUNK);
    r->m->be->ops->parallel_for(r->x, chunks, rnd_chunk, &j);
}

static stts_status rnd_lin(rnd_ctx *r, mt_lin *l, int out, int in, stts_error *err) {
    l->out = out;
    l->in = in;
    /* uniform(+-0.0346): std 0.02 like HF's init_std */
    fill_rnd(r, r->tmp, (size_t)out * in, -0.0346f, 0.0346f);
    mt_wpart part = {MT_DTYPE_F32, r->tmp, NULL, 0};
    stts_status st = make_mat(r->m, &l->w, &part, 1, out, in, 0, err);
    if (st) return st;
    fill_rnd(r, r->tmp, (size_t)out, -0.02f, 0.02f);
    return make_vec(r->m, &l->b, r->tmp, out, err);
}

static stts_status rnd_ln(rnd_ctx *r, mt_ln *l, stts_error *err) {
    int d = r->m->pub.d_model;
    fill_rnd(r, r->tmp, (size_t)d, 0.9f, 1.1f);
    stts_status st = make_vec(r->m, &l->g, r->tmp, d, err);
    if (st) return st;
    fill_rnd(r, r->tmp, (size_t)d, -0.05f, 0.05f);
    return make_vec(r->m, &l->b, r->tmp, d, err);
}

static stts_status rnd_weights(nllb_model *m, uint64_t seed, stts_error *err) {
    const nllb_config *cfg = &m->pub;
    int d = cfg->d_model;
    size_t big = (size_t)cfg->vocab_size * d, f = (size_t)(cfg->encoder_ffn_dim > cfg->decoder_ffn_dim
                                                                ? cfg->encoder_ffn_dim
                                                                : cfg->decoder_ffn_dim) * d;
    if (f > big) big = f;
    if ((size_t)3 * d * d > big) big = (size_t)3 * d * d;
    rnd_ctx r = {m, NULL, malloc(big * sizeof(float)), seed ^ 0x6E6C6C6200000000ull};
    stts_status st = r.tmp ? m->be->ops->exec_new(m->be, 0, &r.x, err)
                           : stts_error_set(err, STTS_ERR_NOMEM, "out of memory building random weights");
    if (st) goto out;
    fill_rnd(&r, r.tmp, (size_t)cfg->vocab_size * d, -0.0346f, 0.0346f);
    mt_wpart part = {MT_DTYPE_F32, r.tmp, NULL, 0};
    if ((st = make_mat(m, &m->embed, &part, 1, cfg->vocab_size, d, 0, err))) goto out;
    m->lm_head = m->embed;
    for (int i = 0; i < cfg->encoder_layers && !st; i++) {
        mt_enc_layer *L = &m->enc[i];
        if ((st = rnd_ln(&r, &L->ln_attn, err)) || (st = rnd_lin(&r, &L->qkv, 3 * d, d, err)) ||
            (st = rnd_lin(&r, &L->o, d, d, err)) || (st = rnd_ln(&r, &L->ln_ffn, err)) ||
            (st = rnd_lin(&r, &L->fc1, cfg->encoder_ffn_dim, d, err)) ||
            (st = rnd_lin(&r, &L->fc2, d, cfg->encoder_ffn_dim, err)))
            goto out;
    }
    for (int i = 0; i < cfg->decoder_layers; i++) {
        mt_dec_layer *L = &m->dec[i];
        if ((st = rnd_ln(&r, &L->ln_self, err)) || (st = rnd_lin(&r, &L->qkv, 3 * d, d, err)) ||
            (st = rnd_lin(&r, &L->o, d, d, err)) || (st = rnd_ln(&r, &L->ln_cross, err)) ||
            (st = rnd_lin(&r, &L->cq, d, d, err)) || (st = rnd_lin(&r, &L->ckv, 2 * d, d, err)) ||
            (st = rnd_lin(&r, &L->co, d, d, err)) || (st = rnd_ln(&r, &L->ln_ffn, err)) ||
            (st = rnd_lin(&r, &L->fc1, cfg->decoder_ffn_dim, d, err)) ||
            (st = rnd_lin(&r, &L->fc2, d, cfg->decoder_ffn_dim, err)))
            goto out;
    }
    if ((st = rnd_ln(&r, &m->enc_ln, err))) goto out;
    st = rnd_ln(&r, &m->dec_ln, err);
out:
    if (r.x) m->be->ops->exec_free(r.x);
    free(r.tmp);
    return st;
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
    nllb_model_params p = {0, NLLB_SIMD_AUTO, NLLB_WEIGHTS_F32, NLLB_DEVICE_AUTO};
    return p;
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
    if ((st = rnd_weights(m, seed, err))) {
        nllb_model_free(m);
        return st;
    }
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
    float *tmp; /* host f32 staging of biases and LayerNorm vectors */
    size_t tmp_n;
    int src_flags; /* weight_new flags for tensors of this checkpoint */
} loader;

/* HF saves M2M100ForConditionalGeneration keys with "model."; a bare
 * M2M100Model has them without. */
static const mt_tensor *find(const mt_checkpoint *ck, const char *name) {
    const mt_tensor *t = mt_checkpoint_find(ck, name);
    if (!t && strncmp(name, "model.", 6) == 0) t = mt_checkpoint_find(ck, name + 6);
    return t;
}

static stts_status check_shape(loader *ld, const mt_tensor *t, const char *name, int64_t d0, int64_t d1,
                               stts_error *err) {
    int ndim = d1 > 0 ? 2 : 1;
    if (t->ndim == ndim && t->shape[0] == d0 && (ndim == 1 || t->shape[1] == d1)) return STTS_OK;
    char got[96] = "";
    size_t o = 0;
    for (int i = 0; i < t->ndim && i < 4 && o < sizeof got - 24; i++)
        o += (size_t)snprintf(got + o, sizeof got - o, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (ndim == 2)
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: tensor %s has shape [%s], the config needs [%lld, %lld]",
                              mt_checkpoint_path(ld->ck), name, got, (long long)d0, (long long)d1);
    return stts_error_set(err, STTS_ERR_FORMAT, "%s: tensor %s has shape [%s], the config needs [%lld]",
                          mt_checkpoint_path(ld->ck), name, got, (long long)d0);
}

/* A matrix tensor as a weight source: f32/f16/bf16 as they are, int8 with
 * its "<name>.scale" tensor (quant.h). */
static stts_status matrix_part(loader *ld, const mt_tensor *t, const char *name, int64_t d0, int64_t d1,
                               mt_wpart *part, stts_error *err) {
    stts_status st = check_shape(ld, t, name, d0, d1, err);
    if (st) return st;
    part->dtype = t->dtype;
    part->data = t->data;
    part->scale = NULL;
    part->il = t->il; /* 0 but for a converted file's int8, bf16, f16 */
    if (t->dtype == MT_DTYPE_F32 || t->dtype == MT_DTYPE_F16 || t->dtype == MT_DTYPE_BF16) return STTS_OK;
    if (t->dtype == MT_DTYPE_I8) {
        char sn[256];
        snprintf(sn, sizeof sn, "%s%s", t->name, MT_QUANT_SCALE_SUFFIX);
        const mt_tensor *sc = mt_checkpoint_find(ld->ck, sn);
        if (!sc || sc->dtype != MT_DTYPE_F32 || sc->ndim != 1 || sc->shape[0] != d0)
            return stts_error_set(err, STTS_ERR_FORMAT,
                                  "%s: int8 tensor %s needs an f32 tensor %s of shape [%lld] (its row scales)",
                                  mt_checkpoint_path(ld->ck), name, sn, (long long)d0);
        part->scale = sc->data;
        return STTS_OK;
    }
    return stts_error_set(err, STTS_ERR_FORMAT, "%s: tensor %s has dtype %s; weights must be f32, f16, bf16 or int8",
                          mt_checkpoint_path(ld->ck), name, t->dtype_name ? t->dtype_name : mt_dtype_name(t->dtype));
}

static stts_status need_tmp(loader *ld, size_t n, stts_error *err) {
    if (n <= ld->tmp_n) return STTS_OK;
    free(ld->tmp);
    ld->tmp = malloc(n * sizeof(float));
    ld->tmp_n = ld->tmp ? n : 0;
    return ld->tmp ? STTS_OK : stts_error_set(err, STTS_ERR_NOMEM, "out of memory loading the model");
}

/* A vector tensor converted to f32 into dst. */
static stts_status load_vec_into(loader *ld, const char *name, float *dst, int64_t n, stts_error *err) {
    const mt_tensor *t = find(ld->ck, name);
    if (!t) return stts_error_set(err, STTS_ERR_FORMAT, "%s: tensor %s is missing", mt_checkpoint_path(ld->ck), name);
    stts_status st = check_shape(ld, t, name, n, 0, err);
    if (st) return st;
    stts_error e2;
    stts_error_clear(&e2);
    if ((st = mt_tensor_to_f32(t, dst, (size_t)n, &e2)))
        return stts_error_set(err, st, "%s: tensor %s: %s", mt_checkpoint_path(ld->ck), name, e2.msg);
    return STTS_OK;
}

static stts_status load_ln(loader *ld, const char *prefix, mt_ln *l, stts_error *err) {
    char n[160];
    int d = ld->m->pub.d_model;
    stts_status st;
    if ((st = need_tmp(ld, (size_t)d, err))) return st;
    snprintf(n, sizeof n, "%s.weight", prefix);
    if ((st = load_vec_into(ld, n, ld->tmp, d, err)) || (st = make_vec(ld->m, &l->g, ld->tmp, d, err))) return st;
    snprintf(n, sizeof n, "%s.bias", prefix);
    if ((st = load_vec_into(ld, n, ld->tmp, d, err)) || (st = make_vec(ld->m, &l->b, ld->tmp, d, err))) return st;
    return STTS_OK;
}

/* Loads projections prefix.{p}_proj (count of them) stacked into one weight
 * (q, k, v -> [3d][d]; k, v -> [2d][d]) or a plain linear (fc1, out_proj):
 * the source tensors are handed to the backend as parts, in place from the
 * mapping when they are in the compute format. */
static stts_status load_stack(loader *ld, const char *prefix, const char *const *parts, int count, int out, int in,
                              mt_lin *l, stts_error *err) {
    char n[200];
    stts_status st;
    int rows = out / count;
    mt_wpart src[4];
    l->out = out;
    l->in = in;
    if ((st = need_tmp(ld, (size_t)out, err))) return st;
    for (int i = 0; i < count; i++) {
        snprintf(n, sizeof n, "%s%s.weight", prefix, parts[i]);
        const mt_tensor *t = find(ld->ck, n);
        if (!t) return stts_error_set(err, STTS_ERR_FORMAT, "%s: tensor %s is missing", mt_checkpoint_path(ld->ck), n);
        if ((st = matrix_part(ld, t, n, rows, in, &src[i], err))) return st;
        snprintf(n, sizeof n, "%s%s.bias", prefix, parts[i]);
        if ((st = load_vec_into(ld, n, ld->tmp + (size_t)i * rows, rows, err))) return st;
    }
    if ((st = make_mat(ld->m, &l->w, src, count, rows, in, ld->src_flags, err))) return st;
    return make_vec(ld->m, &l->b, ld->tmp, out, err);
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
                              "%s: no embedding tensor (model.shared.weight or a tied copy) in the checkpoint%s",
                              mt_checkpoint_path(ld->ck),
                              mt_checkpoint_weights(ld->ck) ? "; re-run stream-tts convert on the Hugging Face model "
                                                              "directory" : "");
    mt_wpart part;
    if ((st = matrix_part(ld, emb, emb_name, c->vocab_size, c->d_model, &part, err)) ||
        (st = make_mat(m, &m->embed, &part, 1, c->vocab_size, c->d_model, ld->src_flags, err)))
        return st;
    m->lm_head = m->embed;
    /* transformers loads a half-precision checkpoint in its dtype, and builds
     * the sinusoidal table in that dtype too: the positions it adds are the
     * f32 values rounded to f16/bf16. Do the same, for parity. A converted
     * file stores the embedding in the format asked for, so it records the
     * source's dtype, and computes what its HF directory computes. */
    int pos_dtype = mt_checkpoint_source_dtype(ld->ck);
    if (pos_dtype < 0) pos_dtype = (int)emb->dtype; /* HF checkpoints; format 2 files assume their stored dtype */
    m->pos_round = pos_dtype == MT_DTYPE_F16 ? 1 : pos_dtype == MT_DTYPE_BF16 ? 2 : 0;
    if (!m->cfg.tie_word_embeddings) {
        const mt_tensor *lm = find(ld->ck, "lm_head.weight");
        if (lm && lm != emb) {
            mt_weight *w = NULL;
            if ((st = matrix_part(ld, lm, "lm_head.weight", c->vocab_size, c->d_model, &part, err)) ||
                (st = make_mat(m, &w, &part, 1, c->vocab_size, c->d_model, ld->src_flags, err)))
                return st;
            m->lm_head = w;
        }
    }
    static const char *const qkv[] = {"q_proj", "k_proj", "v_proj"};
    static const char *const kv[] = {"k_proj", "v_proj"};
    static const char *const q[] = {"q_proj"};
    static const char *const o[] = {"out_proj"};
    static const char *const fc1[] = {"fc1"};
    static const char *const fc2[] = {"fc2"};
    char p[160], p2[200];
    const int d = c->d_model;
    for (int i = 0; i < c->encoder_layers; i++) {
        mt_enc_layer *L = &m->enc[i];
        snprintf(p, sizeof p, "model.encoder.layers.%d.", i);
        snprintf(p2, sizeof p2, "%sself_attn.", p);
        if ((st = load_stack(ld, p2, qkv, 3, 3 * d, d, &L->qkv, err)) ||
            (st = load_stack(ld, p2, o, 1, d, d, &L->o, err)) ||
            (st = load_stack(ld, p, fc1, 1, c->encoder_ffn_dim, d, &L->fc1, err)) ||
            (st = load_stack(ld, p, fc2, 1, d, c->encoder_ffn_dim, &L->fc2, err)))
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
        if ((st = load_stack(ld, p2, qkv, 3, 3 * d, d, &L->qkv, err)) ||
            (st = load_stack(ld, p2, o, 1, d, d, &L->o, err)))
            return st;
        snprintf(p2, sizeof p2, "%sencoder_attn.", p);
        if ((st = load_stack(ld, p2, q, 1, d, d, &L->cq, err)) || (st = load_stack(ld, p2, kv, 2, 2 * d, d, &L->ckv, err)) ||
            (st = load_stack(ld, p2, o, 1, d, d, &L->co, err)))
            return st;
        if ((st = load_stack(ld, p, fc1, 1, c->decoder_ffn_dim, d, &L->fc1, err)) ||
            (st = load_stack(ld, p, fc2, 1, d, c->decoder_ffn_dim, &L->fc2, err)))
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

static stts_status model_load_on(const char *dir, const nllb_model_params *params, nllb_model **out,
                                 stts_error *err) {
    nllb_model_params p = *params;
    nllb_model *m = model_new();
    if (!m) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    mt_checkpoint *ck = NULL;
    loader ld = {m, NULL, NULL, 0, MT_WSRC_PERSISTENT};
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
    /* NLLB's layout puts the language codes and <mask> at the end of the
     * tokenizer's ids and only padding after them: 2 rows in every NLLB-200
     * model (and the repository's demo and tiny ones); a vocabulary rounded
     * up to a multiple of up to 1024 would have fewer than 1024. More means
     * the tokenizer is smaller than the one the weights were trained with:
     * its language codes fall on ordinary pieces of the model, and the
     * translation is nonsense with exit 0 (2026-12-03 review, finding 4). */
    if (c->vocab_size - mt_tokenizer_num_tokens(m->tok) >= NLLB_MAX_PAD_ROWS) {
        st = stts_error_set(err, STTS_ERR_FORMAT,
                            "%s: the tokenizer has %d SentencePiece pieces, so its language codes and <mask> end at "
                            "id %d, but config.json's vocab_size is %d: %d embedding rows no token would reach (NLLB "
                            "models have 2); the tokenizer belongs to another model: use the sentencepiece.bpe.model "
                            "that came with these weights",
                            path, c->spm_size, mt_tokenizer_num_tokens(m->tok) - 1, c->vocab_size,
                            c->vocab_size - mt_tokenizer_num_tokens(m->tok));
        goto fail;
    }
    /* The checkpoint is opened (headers only) before anything is allocated,
     * so a config that does not match the weights is reported as that, not
     * as an allocation failure of the config's sizes. */
    if ((st = mt_checkpoint_open(dir, &ck, err))) goto fail;
    if ((st = check_embedding_shape(ck, c, err))) goto fail;
    if ((st = model_alloc(m, &p, err))) goto fail;
    ld.ck = ck;
    /* safetensors tensors are slices of the mapped file (torch zips may
     * hold inflated heap copies): their pages may be released once converted */
    const char *cp = mt_checkpoint_path(ck);
    size_t cpl = cp ? strlen(cp) : 0;
    if (cpl >= 12 && strcmp(cp + cpl - 12, ".safetensors") == 0) ld.src_flags |= MT_WSRC_FILE_PAGES;
    if ((st = load_weights(&ld, err))) goto fail;
    if ((st = check_no_extra_layers(ck, c, err))) goto fail;
    free(ld.tmp);
    m->ck = ck; /* weights may point into its mapping: closed with the model */
    *out = m;
    return STTS_OK;
fail:
    free(ld.tmp);
    if (ck) mt_checkpoint_close(ck);
    nllb_model_free(m);
    return st;
}

/* AUTO with a usable GPU loads there; when the GPU cannot hold the model
 * (its memory taken by other programs, a device error while uploading) the
 * load is done again on the CPU, and nllb_model_device_note says why: a
 * program asked for "wherever it runs" keeps running. CUDA asked for by
 * name fails with the GPU's error instead. */
stts_status nllb_model_load(const char *dir, const nllb_model_params *params, nllb_model **out, stts_error *err) {
    *out = NULL;
    if (!dir) return stts_error_set(err, STTS_ERR_INVALID_ARG, "nllb_model_load: dir is NULL");
    nllb_model_params p = params ? *params : nllb_model_default_params();
    if (p.device != NLLB_DEVICE_AUTO) return model_load_on(dir, &p, out, err);
    stts_error eg;
    if (nllb_cuda_probe(&eg) != STTS_OK) {
        p.device = NLLB_DEVICE_CPU;
        stts_status st = model_load_on(dir, &p, out, err);
        /* a build with CUDA on a machine without a usable GPU (no driver,
         * no GPU, too old a GPU): the CPU, and why (issue 11: one line on
         * stderr). A build without CUDA runs on the CPU by its making: said
         * only where a GPU is left unused (decided 2026-12-03: a line on
         * every run of a CPU-only build on a machine without a GPU would
         * say nothing the user can act on). */
        if (st == STTS_OK && mt_cuda_built())
            snprintf((*out)->device_note, sizeof (*out)->device_note, "%s", eg.msg);
        else if (st == STTS_OK && nvidia_driver_present())
            snprintf((*out)->device_note, sizeof (*out)->device_note, "an NVIDIA driver is loaded, but %s", eg.msg);
        return st;
    }
    p.device = NLLB_DEVICE_CUDA;
    stts_status st = model_load_on(dir, &p, out, &eg);
    if (st != STTS_ERR_NOMEM && st != STTS_ERR_DEVICE) {
        if (st) *err = eg;
        return st;
    }
    p.device = NLLB_DEVICE_CPU;
    if ((st = model_load_on(dir, &p, out, err))) return st;
    snprintf((*out)->device_note, sizeof (*out)->device_note, "the GPU could not hold the model (%s)", eg.msg);
    return STTS_OK;
}
