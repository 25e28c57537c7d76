/* config.h - the hyper-parameters of an M2M100/NLLB checkpoint, read from
 * its HF config.json (and generation_config.json when present). Internal to
 * the engine (src/mt); the public API is include/nllb.h.
 *
 * Seam: src/mt/io/ fills this struct; the model code in src/mt/ only reads it. */
#ifndef MT_CONFIG_H
#define MT_CONFIG_H

#include "stts_common.h"

typedef struct {
    int vocab_size;               /* rows of model.shared.weight (padded, 256206 in NLLB) */
    int d_model;
    int encoder_layers, decoder_layers;
    int encoder_attention_heads, decoder_attention_heads;
    int encoder_ffn_dim, decoder_ffn_dim;
    int max_position_embeddings;  /* sinusoidal table has this + padding_idx + 1 rows */
    int pad_token_id, bos_token_id, eos_token_id, decoder_start_token_id;
    int scale_embedding;          /* 1: token embeddings times sqrt(d_model) */
    int tie_word_embeddings;      /* 1 (default): lm_head shares model.shared.weight */
    char activation_function[16]; /* "relu" in every NLLB checkpoint */
    /* generation_config.json (defaults from config.json when the file is absent) */
    int max_length;               /* total decoder length incl. the start token; 0 = unset */
    int gen_decoder_start_token_id;
    int gen_eos_token_id;
    /* every id of a generation eos_token_id list (HF stops on any of them);
     * gen_eos_ids[0] == gen_eos_token_id */
    int gen_eos_ids[8];
    int n_gen_eos_ids;
} mt_config;

/* Reads DIR/config.json and, if present, DIR/generation_config.json. Every
 * value is range-checked (positive sizes, heads dividing d_model, ids inside
 * the vocabulary); errors name the file and the key. */
stts_status mt_config_load_dir(const char *dir, mt_config *cfg, stts_error *err);
/* Same, from JSON text (used by tests and fuzzers). gen_json may be NULL. */
stts_status mt_config_parse(const char *config_json, size_t n, const char *gen_json, size_t gen_n,
                            mt_config *cfg, stts_error *err);

#endif
