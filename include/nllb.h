/* nllb.h - the NLLB-200 (M2M100) translation engine of stream-tts: load an
 * HF checkpoint directory, translate sentences between NLLB language codes
 * (eng_Latn, jpn_Jpan, ...) with greedy or beam search, computing exactly
 * what HF transformers' M2M100ForConditionalGeneration.generate() computes.
 *
 * Objects:
 *   nllb_model   - immutable after load: config, weights, tokenizer, language
 *                  table, compute backend (CPU: thread pool + SIMD kernels).
 *   nllb_session - per-thread working state: KV caches, activations, search
 *                  state. Created from a model; grows (outside the token loop)
 *                  when a call needs more room than it has.
 *
 * Thread-safety rule: a model may be shared by any number of threads once
 * nllb_model_load()/nllb_model_new_random() has returned; a session must be
 * used by one thread at a time. Each session has its own executor (on the
 * CPU: its own thread pool of nllb_model_params.threads threads and its own
 * scratch), so calls on different sessions of one model run at the same time
 * over one copy of the weights. Library code never prints and never exits;
 * failures return a status and fill the caller's stts_error. */
#ifndef NLLB_H
#define NLLB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "stts_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nllb_model nllb_model;
typedef struct nllb_session nllb_session;

/* Kernel level of the CPU backend. AUTO picks the best the CPU supports
 * (checked at run time; the environment variable
 * STTS_SIMD=scalar|avx2|avxvnni|avx512|avx512vnni|neon overrides AUTO); the others
 * force a level (tests, benchmarks): a level the CPU or the build lacks
 * makes the load fail with a message naming it. AVX512_VNNI is AVX-512F +
 * BW + VNNI: int8 dot products with vpdpbusd (the same exact sums as the
 * other levels). AVX_VNNI is AVX2 + the 256-bit VEX vpdpbusd (Intel Alder Lake
 * and later client CPUs, which have no AVX-512; Zen 5): the same int8 sums,
 * the AVX2 kernels for the other formats. */
typedef enum {
    NLLB_SIMD_AUTO = 0,
    NLLB_SIMD_SCALAR,
    NLLB_SIMD_AVX2,
    NLLB_SIMD_AVX512,
    NLLB_SIMD_NEON,
    NLLB_SIMD_AVX512_VNNI,
    NLLB_SIMD_AVX_VNNI
} nllb_simd;

/* Compute format of the weight matrices (embedding/LM head and every Linear;
 * biases and LayerNorm stay f32). F32 reproduces HF transformers exactly;
 * BF16/F16 round each weight (round to nearest even); INT8 quantizes each
 * row symmetrically (per-row scale, max|w|/127) and the activations per row
 * on the fly. AUTO = the fastest on the device (int8 on a CPU). A tensor
 * the file already holds in the compute format is used in place from the
 * mapped file; anything else is converted once at load. */
typedef enum {
    NLLB_WEIGHTS_AUTO = 0,
    NLLB_WEIGHTS_F32,
    NLLB_WEIGHTS_BF16,
    NLLB_WEIGHTS_F16,
    NLLB_WEIGHTS_INT8
} nllb_weights;

/* Compute device. AUTO = the GPU when nllb_cuda_probe succeeds (a build
 * with -DSTTS_CUDA=ON, an NVIDIA driver and a Hopper GPU) and the model fits
 * in it, else the CPU (nllb_model_device_note says why when a GPU was
 * there); CUDA without a usable GPU, or without room for the model on it,
 * fails to load with the reason. */
typedef enum { NLLB_DEVICE_AUTO = 0, NLLB_DEVICE_CPU, NLLB_DEVICE_CUDA } nllb_device;

typedef struct {
    int threads;        /* compute threads per session, 1..256; 0 = the online cores (at most 256) */
    nllb_simd simd;     /* NLLB_SIMD_AUTO */
    nllb_weights weights; /* default params: F32 (HF-exact); a zeroed struct: AUTO */
    nllb_device device;   /* NLLB_DEVICE_AUTO */
} nllb_model_params;
nllb_model_params nllb_model_default_params(void);
/* Parse "auto", "f32", "bf16", "f16", "int8" / "auto", "cpu", "cuda"
 * (-1 when unknown). */
int nllb_weights_parse(const char *s);
const char *nllb_weights_name(nllb_weights w);
int nllb_device_parse(const char *s);
/* Parse "auto", "scalar", "avx2", "avx512", "avx512vnni", "neon", "avxvnni" (-1 when
 * unknown); nllb_simd_name is the inverse. */
int nllb_simd_parse(const char *s);
const char *nllb_simd_name(nllb_simd s);
/* STTS_OK when NLLB_DEVICE_CUDA can be used here; else why not (no CUDA in
 * this build, no driver, no GPU, an unsupported GPU). */
stts_status nllb_cuda_probe(stts_error *err);
/* 1 when this build has the CUDA backend (-DSTTS_CUDA=ON), else 0. */
int nllb_cuda_built(void);

/* The architecture of a model (what config.json says). */
typedef struct {
    int vocab_size, d_model;
    int encoder_layers, decoder_layers;
    int encoder_attention_heads, decoder_attention_heads;
    int encoder_ffn_dim, decoder_ffn_dim;
    int max_position_embeddings;
    int pad_token_id, eos_token_id, decoder_start_token_id;
    int scale_embedding;
    int max_length;     /* generation_config.json max_length (0: unset -> 200) */
    int spm_size;       /* SentencePiece pieces; language i has id spm_size + 1 + i */
} nllb_config;
/* NLLB-200-distilled-600M's architecture (shared/nllb/...600M.config.json). */
nllb_config nllb_config_600m(void);

/* Loads DIR (config.json, optional generation_config.json,
 * sentencepiece.bpe.model, model.safetensors or pytorch_model.bin; f32, f16,
 * bf16 or int8 (+ ".scale") weights, used in place when they are in the
 * requested format, else converted once). Every tensor's shape is checked
 * against the config; errors name the file or tensor. params may be NULL
 * (nllb_model_default_params(): f32, HF-exact). */
stts_status nllb_model_load(const char *dir, const nllb_model_params *params, nllb_model **out,
                            stts_error *err);
/* A model with deterministic pseudo-random weights (same seed -> same
 * weights on any machine and thread count), built in memory with no files
 * and no tokenizer (text entry points return STTS_ERR_UNSUPPORTED; the id
 * entry points work). For benchmarks at full size. */
stts_status nllb_model_new_random(const nllb_config *cfg, uint64_t seed, const nllb_model_params *params,
                                  nllb_model **out, stts_error *err);
void nllb_model_free(nllb_model *model);
/* 1 when decoding ends at token id: config.json's eos_token_id or any id of
 * generation_config.json's eos_token_id (an id or a list); a sequence whose
 * last id is none of them stopped at the length limit. */
int nllb_model_is_eos(const nllb_model *model, int32_t id);

const nllb_config *nllb_model_config(const nllb_model *model);
/* e.g. "cpu avx512 x2": backend, kernel level, threads. */
const char *nllb_model_backend(const nllb_model *model);
/* Why a NLLB_DEVICE_AUTO model runs on the CPU: in a CUDA build, the
 * probe's reason (no driver, no GPU) or "the GPU could not hold the model
 * (...out of memory...)"; in a build without CUDA, only when the machine
 * has an NVIDIA driver (a GPU this build cannot use). "" when it runs where
 * AUTO meant it to. */
const char *nllb_model_device_note(const nllb_model *model);
/* The weight format in use (F32, BF16, F16 or INT8; never AUTO). */
nllb_weights nllb_model_weights(const nllb_model *model);
/* Bytes of weights held, in their compute format (in place or converted). */
size_t nllb_model_weight_bytes(const nllb_model *model);
/* Bytes one decoder step must read: decoder layers (without the cross
 * attention K/V projections, applied once per sentence) + final LayerNorm
 * + LM head. The bandwidth floor of a step is this over the memory's read
 * bandwidth. */
size_t nllb_model_step_bytes(const nllb_model *model);
/* Bytes the encoder pass reads once per sentence (encoder + cross K/V weights). */
size_t nllb_model_encode_bytes(const nllb_model *model);

/* Languages: the 202 NLLB codes in vocabulary order. */
int nllb_num_languages(void);
const char *nllb_language_code(int i);          /* NULL when out of range */
/* Token id of a language code in this model, or -1 when not an NLLB code. */
int nllb_model_lang_id(const nllb_model *model, const char *code);

/* ---- sessions ---- */
typedef struct {
    int max_batch;      /* sentences per call to reserve for (grows on demand) */
    int max_beams;      /* beams to reserve for */
    int max_src_len;    /* source tokens per sentence to reserve for */
} nllb_session_params;
nllb_session_params nllb_session_default_params(void);
stts_status nllb_session_new(const nllb_model *model, const nllb_session_params *params, nllb_session **out,
                             stts_error *err);
void nllb_session_free(nllb_session *s);

/* ---- translation ---- */
/* Called once per decoding step and sentence with the newest token. Greedy:
 * the token is final. Beam search: it is the newest token of the currently
 * best running beam, which later steps may abandon (provisional). */
typedef void (*nllb_token_cb)(void *user, int sentence, int step, int32_t token);

/* Target-vocabulary shortlist of the LM head. NONE: the full vocabulary
 * (HF-exact). AUTO: the pieces the target language's output can contain
 * (its script(s), Latin, digits, punctuation, symbols) + special and
 * language ids; the full vocabulary when the target's script is not known or
 * the model has no tokenizer. IDS: shortlist_ids (+ special and language
 * ids). Every source id of the call is added. The rows are gathered once per
 * (model, target language / id list) and cached in the model. */
typedef enum { NLLB_SHORTLIST_NONE = 0, NLLB_SHORTLIST_AUTO, NLLB_SHORTLIST_IDS } nllb_shortlist;

typedef struct {
    int num_beams;          /* 1 = greedy (HF _sample without sampling) */
    float length_penalty;   /* 1.0 (HF default): score = sum log p / length^lp */
    int early_stopping;     /* 0 = HF False (NLLB's setting), 1 = True */
    int max_length;         /* decoder length incl. the start token; 0 = generation_config (200) */
    int max_new_tokens;     /* > 0: overrides max_length = 1 + max_new_tokens (HF semantics) */
    int force_length;       /* > 0: ignore </s> and generate exactly force_length tokens after the
                               target-language token (benchmarks) */
    nllb_token_cb on_token; /* optional */
    void *user;
    const atomic_int *abort_flag; /* optional: nonzero -> stop before the next step, STTS_ERR_CANCELLED */
    nllb_shortlist shortlist;     /* NLLB_SHORTLIST_NONE */
    const int32_t *shortlist_ids; /* IDS: the list (any order, duplicates allowed) */
    int n_shortlist_ids;
} nllb_translate_params;
/* Reads a shortlist file: token ids, one per line (blank lines and lines
 * starting with '#' skipped). Errors name the file and line: not a number,
 * out of range (0..vocab_size-1 of model), no ids. *ids malloc'ed. */
stts_status nllb_shortlist_read(const nllb_model *model, const char *path, int32_t **ids, int *n, stts_error *err);
/* The same from memory (size bytes, any content: fuzzed), ids checked
 * against 0..vocab_size-1; name is what errors call the input. A NUL byte
 * is an error. */
stts_status nllb_shortlist_parse(const char *data, size_t size, int vocab_size, const char *name, int32_t **ids,
                                 int *n, stts_error *err);
/* Bytes one decoder step reads with an LM head of lm_rows rows (0 = all). */
size_t nllb_model_step_bytes_rows(const nllb_model *model, int lm_rows);
nllb_translate_params nllb_translate_default_params(void);

typedef struct {
    char *text;         /* detokenized output (NULL for a model without tokenizer) */
    int32_t *ids;       /* the decoder sequence as HF generate returns it: </s>, target
                           language, tokens..., </s> (no </s> when max length was hit) */
    int n_ids;
    float score;        /* beam: HF sequences_scores (sum of log-probs / generated length^lp);
                           greedy: sum of the log-probs of the generated tokens */
    int src_tokens;     /* source length used, with language code and </s> */
    int truncated;      /* 1: source longer than max_position_embeddings, cut (warning) */
} nllb_result;
void nllb_result_clear(nllb_result *r);

/* Translates n sentences (a batch, decoded together) from src_lang to
 * tgt_lang (NLLB codes). results[0..n) are filled (caller clears them with
 * nllb_result_clear). Empty text is translated as HF would ([src_lang, </s>]);
 * the CLI maps an empty line to an empty line without calling the engine.
 * params may be NULL (defaults). */
stts_status nllb_translate(nllb_session *s, const char *const *texts, int n, const char *src_lang,
                           const char *tgt_lang, const nllb_translate_params *params, nllb_result *results,
                           stts_error *err);
/* Same from token ids: src_ids[i] is a full source sequence ([lang] tokens
 * </s>), tgt_lang_id the forced first token. */
stts_status nllb_translate_ids(nllb_session *s, const int32_t *const *src_ids, const int *src_lens, int n,
                               int32_t tgt_lang_id, const nllb_translate_params *params, nllb_result *results,
                               stts_error *err);

/* ---- lower-level entry points (tests, tools) ---- */
/* Source ids for text: [src_lang] pieces </s> (malloc'ed, caller frees). */
stts_status nllb_tokenize(const nllb_model *model, const char *text, const char *src_lang, int32_t **ids,
                          int *n, stts_error *err);
/* Text of ids, skipping special tokens and language codes (malloc'ed). */
stts_status nllb_detokenize(const nllb_model *model, const int32_t *ids, int n, char **text, stts_error *err);
/* Encoder output for one source sequence: out[n * d_model]
 * (n <= max_position_embeddings; no truncation at this level). */
stts_status nllb_encode(nllb_session *s, const int32_t *src_ids, int n, float *out, stts_error *err);
/* Runs the decoder (with its KV cache, one step per token) over dec_ids for
 * one source sequence; logits[n_dec * vocab_size] receives the LM-head
 * output after each decoder token (the decoder step entry point). */
stts_status nllb_decoder_logits(nllb_session *s, const int32_t *src_ids, int n_src, const int32_t *dec_ids,
                                int n_dec, float *logits, stts_error *err);

#ifdef __cplusplus
}
#endif
#endif
