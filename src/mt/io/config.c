/* config.c - reads an M2M100/NLLB checkpoint's HF config.json (and
 * generation_config.json when present) into mt_config, with HF's
 * M2M100Config defaults for absent keys and a range check on every value.
 * Errors name the file, the key, the value and what is allowed. */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/io_util.h"

#define MAX_CONFIG_BYTES (4u << 20) /* real configs are ~1 KB */

/* HF transformers' M2M100Config.__init__ defaults (plus PretrainedConfig's
 * tie_word_embeddings=True); NLLB's config.json sets most of them anyway. */
static void set_defaults(mt_config *c) {
    memset(c, 0, sizeof *c);
    c->vocab_size = 128112;
    c->d_model = 1024;
    c->encoder_layers = 12;
    c->decoder_layers = 12;
    c->encoder_attention_heads = 16;
    c->decoder_attention_heads = 16;
    c->encoder_ffn_dim = 4096;
    c->decoder_ffn_dim = 4096;
    c->max_position_embeddings = 1024;
    c->pad_token_id = 1;
    c->bos_token_id = 0;
    c->eos_token_id = 2;
    c->decoder_start_token_id = 2;
    c->scale_embedding = 1;
    c->tie_word_embeddings = 1;
    strcpy(c->activation_function, "relu");
    c->max_length = 0;
}

/* Reads an integer key. Absent or null keeps *out. JSON reals with an integral
 * value are accepted (some tools write 1024.0); booleans and strings are not. */
static stts_status get_int(json_t *root, const char *file, const char *key, long long lo, long long hi,
                           int *out, stts_error *err) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return STTS_OK;
    long long x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d >= -9e15 && d <= 9e15) || d != (double)(long long)d)
            return stts_error_set(err, STTS_ERR_FORMAT, "%s: key \"%s\" = %g is not an integer", file, key, d);
        x = (long long)d;
    } else {
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: key \"%s\" must be an integer (allowed: %lld..%lld)",
                              file, key, lo, hi);
    }
    if (x < lo || x > hi)
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: key \"%s\" = %lld is out of range (allowed: %lld..%lld)",
                              file, key, x, lo, hi);
    *out = (int)x;
    return STTS_OK;
}

/* Every id of an eos_token_id list (HF stops on any of them): at most 8
 * kept, each range-checked; a plain integer or absent key leaves *n as is. */
static stts_status get_id_list(json_t *root, const char *file, const char *key, int vocab, int *ids, int *n,
                               stts_error *err) {
    json_t *v = json_object_get(root, key);
    if (!v || !json_is_array(v)) return STTS_OK;
    int k = 0;
    for (size_t i = 0; i < json_array_size(v) && k < 8; i++) {
        json_t *e = json_array_get(v, i);
        json_int_t x = json_is_integer(e) ? json_integer_value(e) : -1;
        if (x < 0 || x >= vocab)
            return stts_error_set(err, STTS_ERR_FORMAT, "%s: key \"%s\" element %zu is not a token id in 0..%d",
                                  file, key, i, vocab - 1);
        ids[k++] = (int)x;
    }
    *n = k;
    return STTS_OK;
}

/* A token id key: an integer, or a non-empty list of integers (HF allows
 * eos_token_id: [2, ...]); the first element is used here (get_id_list keeps them all). Range-checked later
 * against vocab_size. */
static stts_status get_id(json_t *root, const char *file, const char *key, int *out, stts_error *err) {
    json_t *v = json_object_get(root, key);
    if (v && json_is_array(v)) {
        if (json_array_size(v) == 0)
            return stts_error_set(err, STTS_ERR_FORMAT, "%s: key \"%s\" is an empty list; expected a token id",
                                  file, key);
        json_t *tmp = json_object();
        if (!tmp) return stts_error_set(err, STTS_ERR_NOMEM, "%s: out of memory", file);
        json_object_set(tmp, key, json_array_get(v, 0));
        stts_status s = get_int(tmp, file, key, 0, INT32_MAX, out, err);
        json_decref(tmp);
        return s;
    }
    return get_int(root, file, key, 0, INT32_MAX, out, err);
}

static stts_status get_bool(json_t *root, const char *file, const char *key, int *out, stts_error *err) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return STTS_OK;
    if (json_is_boolean(v)) {
        *out = json_is_true(v) ? 1 : 0;
        return STTS_OK;
    }
    if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
        *out = (int)json_integer_value(v);
        return STTS_OK;
    }
    return stts_error_set(err, STTS_ERR_FORMAT, "%s: key \"%s\" must be true or false", file, key);
}

static stts_status load_json(const char *text, size_t n, const char *file, json_t **out, stts_error *err) {
    json_error_t je;
    json_t *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: invalid JSON at line %d, column %d: %s", file, je.line,
                              je.column, je.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: expected a JSON object at the top level", file);
    }
    *out = root;
    return STTS_OK;
}

static stts_status check_id(const char *file, const char *key, int id, int vocab, stts_error *err) {
    if (id < 0 || id >= vocab)
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: key \"%s\" = %d is outside the vocabulary (0..%d)", file,
                              key, id, vocab - 1);
    return STTS_OK;
}

static stts_status parse_named(const char *config_json, size_t n, const char *cfg_file, const char *gen_json,
                               size_t gen_n, const char *gen_file, mt_config *cfg, stts_error *err) {
    if (!config_json || !cfg) return stts_error_set(err, STTS_ERR_INVALID_ARG, "mt_config_parse: NULL argument");
    mt_config c;
    set_defaults(&c);
    json_t *root = NULL;
    stts_status s = load_json(config_json, n, cfg_file, &root, err);
    if (s) return s;

    json_t *mt = json_object_get(root, "model_type");
    if (mt && !json_is_null(mt)) {
        const char *t = json_is_string(mt) ? json_string_value(mt) : NULL;
        if (!t || strcmp(t, "m2m_100") != 0) {
            s = stts_error_set(err, STTS_ERR_UNSUPPORTED,
                               "%s: key \"model_type\" = %s%s%s is not supported (allowed: \"m2m_100\", the "
                               "architecture of every dense NLLB-200 model)",
                               cfg_file, t ? "\"" : "", t ? t : "(not a string)", t ? "\"" : "");
            goto out;
        }
    }
    const long long big = 1 << 20;
    /* The engine's own limits (check_config in src/mt/model.c): a value
     * past them passed here and was refused there as "config: encoder_layers
     * 1024 is out of range (0..256)", naming neither the file nor what this
     * check had just allowed (1..1024). */
    if ((s = get_int(root, cfg_file, "vocab_size", 4, 4000000, &c.vocab_size, err)) ||
        (s = get_int(root, cfg_file, "d_model", 4, 65536, &c.d_model, err)) ||
        (s = get_int(root, cfg_file, "encoder_layers", 1, 256, &c.encoder_layers, err)) ||
        (s = get_int(root, cfg_file, "decoder_layers", 1, 256, &c.decoder_layers, err)) ||
        (s = get_int(root, cfg_file, "encoder_attention_heads", 1, 4096, &c.encoder_attention_heads, err)) ||
        (s = get_int(root, cfg_file, "decoder_attention_heads", 1, 4096, &c.decoder_attention_heads, err)) ||
        (s = get_int(root, cfg_file, "encoder_ffn_dim", 1, 1 << 18, &c.encoder_ffn_dim, err)) ||
        (s = get_int(root, cfg_file, "decoder_ffn_dim", 1, 1 << 18, &c.decoder_ffn_dim, err)) ||
        (s = get_int(root, cfg_file, "max_position_embeddings", 2, 65536, &c.max_position_embeddings, err)) ||
        (s = get_id(root, cfg_file, "pad_token_id", &c.pad_token_id, err)) ||
        (s = get_id(root, cfg_file, "bos_token_id", &c.bos_token_id, err)) ||
        (s = get_id(root, cfg_file, "eos_token_id", &c.eos_token_id, err)) ||
        (s = get_id(root, cfg_file, "decoder_start_token_id", &c.decoder_start_token_id, err)) ||
        (s = get_bool(root, cfg_file, "scale_embedding", &c.scale_embedding, err)) ||
        (s = get_bool(root, cfg_file, "tie_word_embeddings", &c.tie_word_embeddings, err)) ||
        (s = get_int(root, cfg_file, "max_length", 0, big, &c.max_length, err)))
        goto out;

    json_t *act = json_object_get(root, "activation_function");
    if (act && !json_is_null(act)) {
        if (!json_is_string(act)) {
            s = stts_error_set(err, STTS_ERR_FORMAT, "%s: key \"activation_function\" must be a string", cfg_file);
            goto out;
        }
        const char *a = json_string_value(act);
        if (strcmp(a, "relu") != 0) {
            s = stts_error_set(err, STTS_ERR_UNSUPPORTED,
                               "%s: key \"activation_function\" = \"%.64s\" is not supported (allowed: \"relu\", "
                               "as in every NLLB-200 checkpoint)",
                               cfg_file, a);
            goto out;
        }
        strcpy(c.activation_function, "relu");
    }
    if (c.d_model % c.encoder_attention_heads != 0) {
        s = stts_error_set(err, STTS_ERR_FORMAT,
                           "%s: key \"d_model\" = %d is not divisible by \"encoder_attention_heads\" = %d", cfg_file,
                           c.d_model, c.encoder_attention_heads);
        goto out;
    }
    if (c.d_model % c.decoder_attention_heads != 0) {
        s = stts_error_set(err, STTS_ERR_FORMAT,
                           "%s: key \"d_model\" = %d is not divisible by \"decoder_attention_heads\" = %d", cfg_file,
                           c.d_model, c.decoder_attention_heads);
        goto out;
    }
    if ((s = check_id(cfg_file, "pad_token_id", c.pad_token_id, c.vocab_size, err)) ||
        (s = check_id(cfg_file, "bos_token_id", c.bos_token_id, c.vocab_size, err)) ||
        (s = check_id(cfg_file, "eos_token_id", c.eos_token_id, c.vocab_size, err)) ||
        (s = check_id(cfg_file, "decoder_start_token_id", c.decoder_start_token_id, c.vocab_size, err)))
        goto out;
    /* Sinusoidal positions start at padding_idx + 1: the table must fit an int. */
    if ((long long)c.max_position_embeddings + c.pad_token_id + 1 > INT32_MAX) {
        s = stts_error_set(err, STTS_ERR_FORMAT, "%s: max_position_embeddings + pad_token_id is too large",
                           cfg_file);
        goto out;
    }

    /* generation_config.json: HF's GenerationConfig takes these from the model
     * config when the file (or a key) is absent. */
    c.gen_decoder_start_token_id = c.decoder_start_token_id;
    c.gen_eos_token_id = c.eos_token_id;
    c.gen_eos_ids[0] = c.eos_token_id;
    c.n_gen_eos_ids = 1;
    if (gen_json) {
        json_t *g = NULL;
        if ((s = load_json(gen_json, gen_n, gen_file, &g, err))) goto out;
        if ((s = get_int(g, gen_file, "max_length", 0, big, &c.max_length, err)) ||
            (s = get_id(g, gen_file, "decoder_start_token_id", &c.gen_decoder_start_token_id, err)) ||
            (s = get_id(g, gen_file, "eos_token_id", &c.gen_eos_token_id, err)) ||
            (s = check_id(gen_file, "decoder_start_token_id", c.gen_decoder_start_token_id, c.vocab_size, err)) ||
            (s = check_id(gen_file, "eos_token_id", c.gen_eos_token_id, c.vocab_size, err)) ||
            (s = get_id_list(g, gen_file, "eos_token_id", c.vocab_size, c.gen_eos_ids, &c.n_gen_eos_ids, err))) {
            json_decref(g);
            goto out;
        }
        if (c.n_gen_eos_ids == 0) { c.gen_eos_ids[0] = c.gen_eos_token_id; c.n_gen_eos_ids = 1; }
        json_decref(g);
    }
    *cfg = c;
    s = STTS_OK;
out:
    json_decref(root);
    return s;
}

stts_status mt_config_parse(const char *config_json, size_t n, const char *gen_json, size_t gen_n, mt_config *cfg,
                            stts_error *err) {
    return parse_named(config_json, n, "config.json", gen_json, gen_n, "generation_config.json", cfg, err);
}

stts_status mt_config_load_dir(const char *dir, mt_config *cfg, stts_error *err) {
    if (!dir || !cfg) return stts_error_set(err, STTS_ERR_INVALID_ARG, "mt_config_load_dir: NULL argument");
    char *cpath = mtio_path_join(dir, "config.json");
    char *gpath = mtio_path_join(dir, "generation_config.json");
    char *ctext = NULL, *gtext = NULL;
    size_t cn = 0, gn = 0;
    stts_status s;
    if (!cpath || !gpath) {
        s = stts_error_set(err, STTS_ERR_NOMEM, "mt_config_load_dir: out of memory");
        goto out;
    }
    /* The folder itself first: a missing one was reported as "DIR/config.json
     * not found", and a file given for the folder (--model .../config.json)
     * as ".../config.json/config.json not found". */
    struct stat dst;
    if (stat(dir, &dst) != 0) {
        int e = errno;
        s = stts_error_set(err, e == ENOENT || e == ENOTDIR ? STTS_ERR_NOT_FOUND : STTS_ERR_IO,
                           "model directory %s %s%s (give the folder that holds config.json, "
                           "sentencepiece.bpe.model and the weights; scripts/fetch-model downloads one)",
                           dir, e == ENOENT || e == ENOTDIR ? "does not exist" : "cannot be read: ",
                           e == ENOENT || e == ENOTDIR ? "" : strerror(e));
        goto out;
    }
    if (!S_ISDIR(dst.st_mode)) {
        s = stts_error_set(err, STTS_ERR_NOT_FOUND,
                           "model directory %s is a file, not a directory (give the folder that holds config.json, "
                           "sentencepiece.bpe.model and the weights)",
                           dir);
        goto out;
    }
    s = mtio_read_file(cpath, MAX_CONFIG_BYTES, &ctext, &cn, err);
    if (s == STTS_ERR_NOT_FOUND) {
        s = stts_error_set(err, STTS_ERR_NOT_FOUND,
                           "%s not found: a model directory needs the HF config.json (scripts/fetch-model "
                           "downloads one)",
                           cpath);
        goto out;
    }
    if (s) goto out;
    /* An empty file (an interrupted download) was "invalid JSON at line 1,
     * column 0: '[' or '{' expected near end of file". */
    if (cn == 0) {
        s = stts_error_set(err, STTS_ERR_FORMAT,
                           "%s: the file is empty (an interrupted download?); scripts/fetch-model downloads it again",
                           cpath);
        goto out;
    }
    s = mtio_read_file(gpath, MAX_CONFIG_BYTES, &gtext, &gn, err);
    if (s == STTS_ERR_NOT_FOUND) {
        gtext = NULL; /* optional */
        stts_error_clear(err);
    } else if (s) {
        goto out;
    } else if (gn == 0) {
        s = stts_error_set(err, STTS_ERR_FORMAT,
                           "%s: the file is empty (an interrupted download?); scripts/fetch-model downloads it again, "
                           "or remove it (it is optional)",
                           gpath);
        goto out;
    }
    s = parse_named(ctext, cn, cpath, gtext, gn, gpath, cfg, err);
out:
    free(cpath);
    free(gpath);
    free(ctext);
    free(gtext);
    return s;
}
