/* test_mt_io_config.c - config.json / generation_config.json reader:
 * the real NLLB configs in ../shared/nllb, HF M2M100Config defaults for
 * absent keys, and a clear error (file + key + value) for every bad value. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "test.h"

static stts_status parse(const char *json, const char *gen, mt_config *c, stts_error *e) {
    return mt_config_parse(json, strlen(json), gen, gen ? strlen(gen) : 0, c, e);
}

static void test_real_600m(void) {
    size_t n;
    char *j = test_read_file(STTS_SHARED_DIR "/nllb/nllb-200-distilled-600M.config.json", &n);
    if (!j) {
        TEST_SKIP("%s missing (the shared/ folder beside the checkout)", STTS_SHARED_DIR "/nllb/nllb-200-distilled-600M.config.json");
        return;
    }
    mt_config c;
    stts_error e = {0};
    CHECK_EQ_INT(mt_config_parse(j, n, NULL, 0, &c, &e), STTS_OK);
    CHECK_EQ_INT(c.vocab_size, 256206);
    CHECK_EQ_INT(c.d_model, 1024);
    CHECK_EQ_INT(c.encoder_layers, 12);
    CHECK_EQ_INT(c.decoder_layers, 12);
    CHECK_EQ_INT(c.encoder_attention_heads, 16);
    CHECK_EQ_INT(c.decoder_attention_heads, 16);
    CHECK_EQ_INT(c.encoder_ffn_dim, 4096);
    CHECK_EQ_INT(c.decoder_ffn_dim, 4096);
    CHECK_EQ_INT(c.max_position_embeddings, 1024);
    CHECK_EQ_INT(c.pad_token_id, 1);
    CHECK_EQ_INT(c.bos_token_id, 0);
    CHECK_EQ_INT(c.eos_token_id, 2);
    CHECK_EQ_INT(c.decoder_start_token_id, 2);
    CHECK_EQ_INT(c.scale_embedding, 1);
    CHECK_EQ_INT(c.tie_word_embeddings, 1);
    CHECK_EQ_STR(c.activation_function, "relu");
    CHECK_EQ_INT(c.max_length, 0); /* neither file sets it */
    CHECK_EQ_INT(c.gen_decoder_start_token_id, 2);
    CHECK_EQ_INT(c.gen_eos_token_id, 2);
    free(j);
}

static void test_real_1_3b_dir(void) {
    /* A model directory laid out as HF ships it: config.json + generation_config.json. */
    char dir[] = "/tmp/mtio-cfg-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char a[256], b[256], cmd[1024];
    snprintf(a, sizeof a, "%s/config.json", dir);
    snprintf(b, sizeof b, "%s/generation_config.json", dir);
    snprintf(cmd, sizeof cmd,
             "cp '%s/nllb/nllb-200-1.3B.config.json' '%s' && "
             "cp '%s/nllb/nllb-200-1.3B.generation_config.json' '%s'",
             STTS_SHARED_DIR, a, STTS_SHARED_DIR, b);
    CHECK_EQ_INT(system(cmd), 0);
    mt_config c;
    stts_error e = {0};
    CHECK_EQ_INT(mt_config_load_dir(dir, &c, &e), STTS_OK);
    CHECK_EQ_INT(c.d_model, 1024);
    CHECK_EQ_INT(c.encoder_layers, 24);
    CHECK_EQ_INT(c.decoder_ffn_dim, 8192);
    CHECK_EQ_INT(c.max_length, 200);
    CHECK_EQ_INT(c.gen_eos_token_id, 2);
    /* generation_config.json values win over config.json. */
    FILE *f = fopen(b, "w");
    fputs("{\"max_length\": 77, \"eos_token_id\": [5, 2], \"decoder_start_token_id\": 7}", f);
    fclose(f);
    CHECK_EQ_INT(mt_config_load_dir(dir, &c, &e), STTS_OK);
    CHECK_EQ_INT(c.max_length, 77);
    CHECK_EQ_INT(c.gen_eos_token_id, 5);
    /* every id of the list is kept: any of them stops generation */
    CHECK_EQ_INT(c.n_gen_eos_ids, 2);
    CHECK_EQ_INT(c.gen_eos_ids[0], 5);
    CHECK_EQ_INT(c.gen_eos_ids[1], 2);
    CHECK_EQ_INT(c.gen_decoder_start_token_id, 7);
    CHECK_EQ_INT(c.eos_token_id, 2);
    /* Broken generation config: error names that file. */
    f = fopen(b, "w");
    fputs("{\"max_length\": -3}", f);
    fclose(f);
    CHECK_EQ_INT(mt_config_load_dir(dir, &c, &e), STTS_ERR_FORMAT);
    CHECK(strstr(e.msg, "generation_config.json") && strstr(e.msg, "max_length") && strstr(e.msg, "-3"));
    /* Empty files (an interrupted download): said so, not "invalid JSON at line 1, column 0". */
    f = fopen(b, "w");
    fclose(f);
    CHECK_EQ_INT(mt_config_load_dir(dir, &c, &e), STTS_ERR_FORMAT);
    CHECK_MSG(strstr(e.msg, "generation_config.json: the file is empty") != NULL, "%s", e.msg);
    /* Without it, the directory still loads. */
    unlink(b);
    CHECK_EQ_INT(mt_config_load_dir(dir, &c, &e), STTS_OK);
    CHECK_EQ_INT(c.max_length, 200); /* from config.json */
    f = fopen(a, "w");
    fclose(f);
    CHECK_EQ_INT(mt_config_load_dir(dir, &c, &e), STTS_ERR_FORMAT);
    CHECK_MSG(strstr(e.msg, "config.json: the file is empty") && strstr(e.msg, "scripts/fetch-model"), "%s", e.msg);
    unlink(a);
    CHECK_EQ_INT(mt_config_load_dir(dir, &c, &e), STTS_ERR_NOT_FOUND);
    CHECK(strstr(e.msg, "config.json") != NULL);
    rmdir(dir);
    CHECK_EQ_INT(mt_config_load_dir("/nonexistent/model", &c, &e), STTS_ERR_NOT_FOUND);
}

static void test_defaults(void) {
    mt_config c;
    stts_error e = {0};
    /* An empty object gets HF M2M100Config's defaults. */
    CHECK_EQ_INT(parse("{}", NULL, &c, &e), STTS_OK);
    CHECK_EQ_INT(c.vocab_size, 128112);
    CHECK_EQ_INT(c.d_model, 1024);
    CHECK_EQ_INT(c.encoder_layers, 12);
    CHECK_EQ_INT(c.encoder_ffn_dim, 4096);
    CHECK_EQ_INT(c.max_position_embeddings, 1024);
    CHECK_EQ_INT(c.pad_token_id, 1);
    CHECK_EQ_INT(c.decoder_start_token_id, 2);
    CHECK_EQ_INT(c.scale_embedding, 1);
    CHECK_EQ_INT(c.tie_word_embeddings, 1);
    /* A tiny fixture config; null means "absent"; 64.0 is an integer. */
    CHECK_EQ_INT(parse("{\"vocab_size\": 1210, \"d_model\": 64.0, \"encoder_layers\": 2, \"decoder_layers\": 2,"
                       "\"encoder_attention_heads\": 4, \"decoder_attention_heads\": 4, \"encoder_ffn_dim\": 128,"
                       "\"decoder_ffn_dim\": 128, \"scale_embedding\": false, \"bos_token_id\": null,"
                       "\"tie_word_embeddings\": true, \"max_position_embeddings\": 256}",
                       NULL, &c, &e),
                 STTS_OK);
    CHECK_EQ_INT(c.vocab_size, 1210);
    CHECK_EQ_INT(c.d_model, 64);
    CHECK_EQ_INT(c.decoder_ffn_dim, 128);
    CHECK_EQ_INT(c.scale_embedding, 0);
    CHECK_EQ_INT(c.bos_token_id, 0);
    CHECK_EQ_INT(c.max_position_embeddings, 256);
}

static void expect_error(const char *json, const char *gen, stts_status code, const char *s1, const char *s2) {
    mt_config c;
    memset(&c, 0x5a, sizeof c);
    mt_config before = c;
    stts_error e = {0};
    stts_status s = parse(json, gen, &c, &e);
    CHECK_MSG(s == code, "%s -> %s (%s)", json, stts_status_name(s), e.msg);
    CHECK_MSG(strstr(e.msg, s1) != NULL, "message \"%s\" lacks \"%s\"", e.msg, s1);
    if (s2) CHECK_MSG(strstr(e.msg, s2) != NULL, "message \"%s\" lacks \"%s\"", e.msg, s2);
    CHECK_MSG(memcmp(&c, &before, sizeof c) == 0, "config modified on error");
}

static void test_errors(void) {
    expect_error("{\"d_model\": 1000}", NULL, STTS_ERR_FORMAT, "d_model", "divisible");
    expect_error("{\"d_model\": 64, \"decoder_attention_heads\": 5, \"encoder_attention_heads\": 4}", NULL,
                 STTS_ERR_FORMAT, "decoder_attention_heads", "5");
    expect_error("{\"vocab_size\": -5}", NULL, STTS_ERR_FORMAT, "vocab_size", "-5");
    expect_error("{\"vocab_size\": 99999999999}", NULL, STTS_ERR_FORMAT, "vocab_size", "99999999999");
    expect_error("{\"encoder_layers\": 0}", NULL, STTS_ERR_FORMAT, "encoder_layers", "allowed");
    /* past the engine's limits: refused here, with the file and key (the
     * engine refused them later as "config: ... out of range", no file) */
    expect_error("{\"encoder_layers\": 1024}", NULL, STTS_ERR_FORMAT, "config.json: key \"encoder_layers\" = 1024",
                 "1..256");
    expect_error("{\"max_position_embeddings\": 1048576}", NULL, STTS_ERR_FORMAT, "config.json",
                 "max_position_embeddings\" = 1048576 is out of range (allowed: 2..65536)");
    expect_error("{\"decoder_ffn_dim\": 1048576}", NULL, STTS_ERR_FORMAT, "config.json", "1..262144");
    expect_error("{\"encoder_ffn_dim\": \"4096\"}", NULL, STTS_ERR_FORMAT, "encoder_ffn_dim", "integer");
    expect_error("{\"d_model\": 12.5}", NULL, STTS_ERR_FORMAT, "d_model", "12.5");
    expect_error("{\"d_model\": true}", NULL, STTS_ERR_FORMAT, "d_model", NULL);
    expect_error("{\"vocab_size\": 100, \"eos_token_id\": 100}", NULL, STTS_ERR_FORMAT, "eos_token_id",
                 "vocabulary");
    expect_error("{\"pad_token_id\": -1}", NULL, STTS_ERR_FORMAT, "pad_token_id", NULL);
    expect_error("{\"scale_embedding\": \"yes\"}", NULL, STTS_ERR_FORMAT, "scale_embedding", NULL);
    expect_error("{\"activation_function\": \"gelu\"}", NULL, STTS_ERR_UNSUPPORTED, "activation_function", "gelu");
    expect_error("{\"model_type\": \"nllb_moe\"}", NULL, STTS_ERR_UNSUPPORTED, "model_type", "nllb_moe");
    expect_error("{\"d_model\": 64,}", NULL, STTS_ERR_FORMAT, "config.json", "line 1");
    expect_error("[1]", NULL, STTS_ERR_FORMAT, "config.json", "object");
    expect_error("{\"d_model\": 64, \"d_model\": 128}", NULL, STTS_ERR_FORMAT, "config.json", "duplicate");
    expect_error("{}", "{\"eos_token_id\": []}", STTS_ERR_FORMAT, "generation_config.json", "eos_token_id");
    expect_error("{}", "{\"decoder_start_token_id\": 999999}", STTS_ERR_FORMAT, "generation_config.json",
                 "decoder_start_token_id");
    expect_error("{}", "not json", STTS_ERR_FORMAT, "generation_config.json", NULL);
    mt_config c;
    stts_error e = {0};
    CHECK_EQ_INT(mt_config_parse(NULL, 0, NULL, 0, &c, &e), STTS_ERR_INVALID_ARG);
    /* Not NUL-terminated: only n bytes are read. */
    CHECK_EQ_INT(mt_config_parse("{\"d_model\": 64}xxxx", 15, NULL, 0, &c, &e), STTS_OK);
    CHECK_EQ_INT(c.d_model, 64);
}

int main(void) {
    TEST_RUN(test_real_600m);
    TEST_RUN(test_real_1_3b_dir);
    TEST_RUN(test_defaults);
    TEST_RUN(test_errors);
    return TEST_SUMMARY();
}
