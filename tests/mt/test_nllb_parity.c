/* test_nllb_parity.c - end-to-end parity with HF transformers on the tiny
 * random M2M100 fixtures (tests/fixtures/mt, made by
 * scripts/fixtures/make-mt-fixtures.py with transformers' generate): every
 * model format loads; source ids and detokenized text are identical;
 * encoder output and first-step logits agree within 1e-4 (scaled by the
 * value's magnitude above 1); greedy and beam-4 token ids and texts are
 * identical and the beam score agrees; batched translation gives the same. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"
#include "nllb.h"
#include "test.h"

static char fixdir[1024];

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static json_t *load_ref(const char *name) {
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", fixdir, name);
    json_error_t je;
    json_t *j = json_load_file(p, 0, &je);
    if (!j) fprintf(stderr, "%s: %s (line %d)\n", p, je.text, je.line);
    return j;
}

static int32_t *ids_of(json_t *a, int *n) {
    *n = (int)json_array_size(a);
    int32_t *v = malloc(sizeof(int32_t) * (*n > 0 ? *n : 1));
    for (int i = 0; i < *n; i++) v[i] = (int32_t)json_integer_value(json_array_get(a, (size_t)i));
    return v;
}

static int same_ids(const int32_t *a, int na, json_t *ref, const char *what, int k) {
    int n;
    int32_t *b = ids_of(ref, &n);
    int same = na == n && memcmp(a, b, sizeof(int32_t) * (size_t)n) == 0;
    if (!same) {
        fprintf(stderr, "case %d %s differ:\n  got:", k, what);
        for (int i = 0; i < na; i++) fprintf(stderr, " %d", a[i]);
        fprintf(stderr, "\n  ref:");
        for (int i = 0; i < n; i++) fprintf(stderr, " %d", b[i]);
        fprintf(stderr, "\n");
    }
    free(b);
    return same;
}

static double max_rel_diff(const float *got, json_t *ref, size_t n, double *max_abs) {
    double worst = 0;
    *max_abs = 0;
    if (json_array_size(ref) != n) return INFINITY;
    for (size_t i = 0; i < n; i++) {
        double r = json_real_value(json_array_get(ref, i));
        if (json_is_integer(json_array_get(ref, i))) r = (double)json_integer_value(json_array_get(ref, i));
        double d = fabs(got[i] - r);
        if (d > *max_abs) *max_abs = d;
        d /= fmax(1.0, fabs(r));
        if (d > worst) worst = d;
    }
    return worst;
}

typedef struct {
    double enc_abs, logit_abs, enc_rel, logit_rel, score;
    int greedy_ok, beam_ok, cases, enc_cases, logit_cases;
} stats;

/* every: test cases k with k % every == 0 (plus the last, the long input);
 * the f32 safetensors model runs all of them, the other forms a sample (the
 * same weights through another reader or dtype), to keep CI fast. */
static void run_model(const char *model_name, const char *ref_name, int batch_too, int every) {
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", fixdir, model_name);
    if (!exists(dir)) {
        TEST_SKIP("%s absent (scripts/fixtures/make-mt-fixtures.py makes it)", dir);
        return;
    }
    json_t *ref = load_ref(ref_name);
    CHECK(ref != NULL);
    if (!ref) return;
    stts_error e;
    nllb_model *m = NULL;
    stts_status st = nllb_model_load(dir, NULL, &m, &e);
    CHECK_MSG(st == STTS_OK, "%s: %s", model_name, e.msg);
    if (st) {
        json_decref(ref);
        return;
    }
    nllb_session *s = NULL;
    CHECK(nllb_session_new(m, NULL, &s, &e) == STTS_OK);
    const char *src_lang = json_string_value(json_object_get(ref, "src_lang"));
    const char *tgt_lang = json_string_value(json_object_get(ref, "tgt_lang"));
    int tgt_id = (int)json_integer_value(json_object_get(ref, "tgt_lang_id"));
    int max_new = (int)json_integer_value(json_object_get(ref, "max_new_tokens"));
    CHECK_EQ_INT(nllb_model_lang_id(m, tgt_lang), tgt_id);
    CHECK_EQ_INT(nllb_model_lang_id(m, src_lang), json_integer_value(json_object_get(ref, "src_lang_id")));
    int d = nllb_model_config(m)->d_model, V = nllb_model_config(m)->vocab_size;
    CHECK_EQ_INT(V, json_integer_value(json_object_get(ref, "vocab_size")));
    json_t *cases = json_object_get(ref, "cases");
    size_t nc = json_array_size(cases);
    CHECK(nc > 0);
    stats sx = {0};
    int32_t **srcs = calloc(nc, sizeof *srcs);
    int *lens = calloc(nc, sizeof *lens);
    float *logits = malloc(sizeof(float) * 2 * (size_t)V);
    for (size_t k = 0; k < nc; k++) {
        json_t *c = json_array_get(cases, k);
        const char *text = json_string_value(json_object_get(c, "text"));
        srcs[k] = ids_of(json_object_get(c, "src_ids"), &lens[k]);
        if (k % (size_t)every != 0 && k != nc - 1) continue;
        /* tokenizer, end to end */
        int32_t *tok = NULL;
        int nt = 0;
        CHECK(nllb_tokenize(m, text, src_lang, &tok, &nt, &e) == STTS_OK);
        CHECK(same_ids(tok, nt, json_object_get(c, "src_ids"), "source ids", (int)k));
        free(tok);
        char *detok = NULL;
        CHECK(nllb_detokenize(m, srcs[k], lens[k], &detok, &e) == STTS_OK);
        CHECK_EQ_STR(detok, json_string_value(json_object_get(c, "detok")));
        free(detok);
        /* encoder output and first decoder step logits */
        json_t *eo = json_object_get(c, "encoder_out");
        if (eo) {
            sx.enc_cases++;
            float *enc = malloc(sizeof(float) * (size_t)lens[k] * d);
            CHECK(nllb_encode(s, srcs[k], lens[k], enc, &e) == STTS_OK);
            double ab, rel = max_rel_diff(enc, eo, (size_t)lens[k] * d, &ab);
            sx.enc_abs = fmax(sx.enc_abs, ab);
            sx.enc_rel = fmax(sx.enc_rel, rel);
            free(enc);
        }
        json_t *dl = json_object_get(c, "dec_logits");
        if (dl) {
            sx.logit_cases++;
            int32_t dec[2] = {2, tgt_id};
            CHECK(nllb_decoder_logits(s, srcs[k], lens[k], dec, 2, logits, &e) == STTS_OK);
            double ab, rel = max_rel_diff(logits, dl, 2 * (size_t)V, &ab);
            sx.logit_abs = fmax(sx.logit_abs, ab);
            sx.logit_rel = fmax(sx.logit_rel, rel);
        }
        /* greedy and beam 4 */
        nllb_translate_params p = nllb_translate_default_params();
        p.max_new_tokens = max_new;
        nllb_result r;
        const int32_t *one[1] = {srcs[k]};
        CHECK(nllb_translate_ids(s, one, &lens[k], 1, tgt_id, &p, &r, &e) == STTS_OK);
        int g = same_ids(r.ids, r.n_ids, json_object_get(c, "greedy_ids"), "greedy ids", (int)k);
        CHECK(g);
        CHECK_EQ_STR(r.text, json_string_value(json_object_get(c, "greedy_text")));
        sx.greedy_ok += g;
        nllb_result_clear(&r);
        p.num_beams = 4;
        CHECK(nllb_translate_ids(s, one, &lens[k], 1, tgt_id, &p, &r, &e) == STTS_OK);
        int b = same_ids(r.ids, r.n_ids, json_object_get(c, "beam4_ids"), "beam-4 ids", (int)k);
        CHECK(b);
        CHECK_EQ_STR(r.text, json_string_value(json_object_get(c, "beam4_text")));
        double rs = json_real_value(json_object_get(c, "beam4_score"));
        sx.score = fmax(sx.score, fabs(r.score - rs));
        CHECK_NEAR(r.score, rs, 1e-4);
        sx.beam_ok += b;
        nllb_result_clear(&r);
        sx.cases++;
    }
    /* a reference written without these keys compared nothing and passed */
    CHECK_MSG(sx.cases > 0 && sx.enc_cases > 0 && sx.logit_cases > 0,
              "%s: %d cases, %d with encoder outputs, %d with logits in the reference", model_name, sx.cases,
              sx.enc_cases, sx.logit_cases);
    CHECK_MSG(sx.enc_rel <= 1e-4, "%s encoder max diff %g (abs %g)", model_name, sx.enc_rel, sx.enc_abs);
    CHECK_MSG(sx.logit_rel <= 1e-4, "%s logits max diff %g (abs %g)", model_name, sx.logit_rel, sx.logit_abs);
    printf("%-13s %3d cases: greedy %d/%d, beam-4 %d/%d identical; max |diff| encoder %.2g, logits %.2g "
           "(relative %.2g), beam score %.3g\n",
           model_name, sx.cases, sx.greedy_ok, sx.cases, sx.beam_ok, sx.cases, sx.enc_abs, sx.logit_abs,
           sx.logit_rel, sx.score);

    if (batch_too) { /* the whole set in one batched call, and through the text API */
        for (int beams = 1; beams <= 4; beams += 3) {
            nllb_translate_params p = nllb_translate_default_params();
            p.max_new_tokens = max_new;
            p.num_beams = beams;
            nllb_result *rr = calloc(nc, sizeof *rr);
            CHECK(nllb_translate_ids(s, (const int32_t *const *)srcs, lens, (int)nc, tgt_id, &p, rr, &e) ==
                  STTS_OK);
            int same = 0;
            for (size_t k = 0; k < nc; k++) {
                json_t *c = json_array_get(cases, k);
                same += same_ids(rr[k].ids, rr[k].n_ids, json_object_get(c, beams == 1 ? "greedy_ids" : "beam4_ids"),
                                 beams == 1 ? "batched greedy" : "batched beam-4", (int)k);
                nllb_result_clear(&rr[k]);
            }
            CHECK_EQ_INT(same, (int)nc);
            printf("%-13s batched (%zu sentences, %d beam%s): %d identical\n", model_name, nc, beams,
                   beams > 1 ? "s" : "", same);
            free(rr);
        }
        const char *texts[3];
        for (int k = 0; k < 3; k++) texts[k] = json_string_value(json_object_get(json_array_get(cases, (size_t)k + 1), "text"));
        nllb_result tr[3];
        nllb_translate_params p = nllb_translate_default_params();
        p.max_new_tokens = max_new;
        CHECK(nllb_translate(s, texts, 3, src_lang, tgt_lang, &p, tr, &e) == STTS_OK);
        for (int k = 0; k < 3; k++) {
            CHECK_EQ_STR(tr[k].text, json_string_value(json_object_get(json_array_get(cases, (size_t)k + 1), "greedy_text")));
            nllb_result_clear(&tr[k]);
        }
        CHECK(nllb_translate(s, texts, 1, src_lang, "xxx_Zzzz", &p, tr, &e) == STTS_ERR_NOT_FOUND);
        CHECK(strstr(e.msg, "xxx_Zzzz") != NULL && strstr(e.msg, "--list-languages") != NULL);
    }
    for (size_t k = 0; k < nc; k++) free(srcs[k]);
    free(srcs), free(lens), free(logits);
    nllb_session_free(s);
    nllb_model_free(m);
    json_decref(ref);
}

static void test_f32_safetensors(void) { run_model("tiny-f32-st", "reference-f32.json", 1, 1); }
static void test_f32_pytorch_bin(void) { run_model("tiny-f32-pt", "reference-f32.json", 0, 7); }
static void test_f16_safetensors(void) { run_model("tiny-f16-st", "reference-f16.json", 0, 1); }
static void test_f16_pytorch_bin(void) { run_model("tiny-f16-pt", "reference-f16.json", 0, 7); }
static void test_bf16_safetensors(void) {
    char p[1200];
    snprintf(p, sizeof p, "%s/reference-bf16.json", fixdir);
    /* committed with the fixtures (scripts/device/fixtures-and-demo.sh): missing is a failure */
    CHECK_MSG(exists(p), "%s is missing", p);
    if (exists(p)) run_model("tiny-bf16-st", "reference-bf16.json", 0, 3);
}

/* A config that disagrees with the tensors: the error names the tensor and
 * both shapes; a truncated weights file is refused, not read past its end. */
static void test_bad_model_dirs(void) {
    char tmp[] = "/tmp/stts-badmodel-XXXXXX", cmd[4096], path[1200];
    if (!mkdtemp(tmp)) return;
    snprintf(cmd, sizeof cmd, "cp %s/tiny-f32-st/* %s/ && sed -i 's/\"decoder_ffn_dim\": 128/\"decoder_ffn_dim\": 96/' %s/config.json",
             fixdir, tmp, tmp);
    CHECK(system(cmd) == 0);
    nllb_model *m = NULL;
    stts_error e;
    CHECK(nllb_model_load(tmp, NULL, &m, &e) == STTS_ERR_FORMAT);
    CHECK(m == NULL);
    CHECK_MSG(strstr(e.msg, "model.decoder.layers.0.fc1.weight") && strstr(e.msg, "[128, 64]") &&
                  strstr(e.msg, "[96, 64]"),
              "message: %s", e.msg);
    /* fewer layers in the config than in the weights: refused, naming a tensor */
    snprintf(cmd, sizeof cmd, "cp %s/tiny-f32-st/config.json %s/ && sed -i 's/\"decoder_layers\": 2/\"decoder_layers\": 1/' "
             "%s/config.json", fixdir, tmp, tmp);
    CHECK(system(cmd) == 0);
    CHECK(nllb_model_load(tmp, NULL, &m, &e) == STTS_ERR_FORMAT);
    CHECK_MSG(strstr(e.msg, "model.decoder.layers.1.") && strstr(e.msg, "decoder_layers 1"), "message: %s", e.msg);
    /* a config far larger than the weights: a mismatch, not an allocation failure */
    snprintf(cmd, sizeof cmd, "cp %s/tiny-f32-st/config.json %s/ && sed -i 's/\"d_model\": 64/\"d_model\": 32768/' "
             "%s/config.json", fixdir, tmp, tmp);
    CHECK(system(cmd) == 0);
    CHECK(nllb_model_load(tmp, NULL, &m, &e) == STTS_ERR_FORMAT);
    CHECK_MSG(strstr(e.msg, "model.shared.weight") && strstr(e.msg, "d_model 32768"), "message: %s", e.msg);
    /* the weights file cut in half */
    snprintf(cmd, sizeof cmd, "cp %s/tiny-f32-st/config.json %s/ && truncate -s 200000 %s/model.safetensors", fixdir,
             tmp, tmp);
    CHECK(system(cmd) == 0);
    CHECK(nllb_model_load(tmp, NULL, &m, &e) != STTS_OK);
    CHECK(m == NULL);
    CHECK_MSG(strstr(e.msg, "model.safetensors") != NULL, "message: %s", e.msg);
    const char *names[] = {"config.json", "generation_config.json", "sentencepiece.bpe.model", "model.safetensors"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(path, sizeof path, "%s/%s", tmp, names[i]);
        remove(path);
    }
    rmdir(tmp);
}

/* A checkpoint that already holds the compute format is used in place from
 * its mapping (no second copy); other formats are converted once. */
static void test_weights_in_place(void) {
    static const struct {
        const char *dir;
        nllb_weights w;
        int in_place;
    } cases[] = {{"tiny-f32-st", NLLB_WEIGHTS_F32, 1}, {"tiny-f32-pt", NLLB_WEIGHTS_F32, 1},
                 {"tiny-bf16-st", NLLB_WEIGHTS_BF16, 1}, {"tiny-f16-st", NLLB_WEIGHTS_F16, 1},
                 {"tiny-f32-st", NLLB_WEIGHTS_INT8, 0}, {"tiny-bf16-st", NLLB_WEIGHTS_F32, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char dir[1200];
        snprintf(dir, sizeof dir, "%s/%s", fixdir, cases[i].dir);
        nllb_model_params p = nllb_model_default_params();
        p.weights = cases[i].w;
        nllb_model *m = NULL;
        stts_error e;
        CHECK_MSG(nllb_model_load(dir, &p, &m, &e) == STTS_OK, "%s: %s", cases[i].dir, e.msg);
        if (!m) continue;
        CHECK_MSG(m->embed->in_place == cases[i].in_place && m->dec[0].qkv.w->in_place == cases[i].in_place &&
                      m->enc[0].fc2.w->in_place == cases[i].in_place,
                  "%s as %s", cases[i].dir, nllb_weights_name(cases[i].w));
        nllb_model_free(m);
    }
}

int main(void) {
    snprintf(fixdir, sizeof fixdir, "%s/tests/fixtures/mt", STTS_SOURCE_DIR);
    char p[1200];
    snprintf(p, sizeof p, "%s/reference-f32.json", fixdir);
    if (!exists(p)) TEST_SKIP_ALL("no fixtures in %s (scripts/fixtures/make-mt-fixtures.py makes them)", fixdir);
    TEST_RUN(test_f32_safetensors);
    TEST_RUN(test_f32_pytorch_bin);
    TEST_RUN(test_f16_safetensors);
    TEST_RUN(test_f16_pytorch_bin);
    TEST_RUN(test_bf16_safetensors);
    TEST_RUN(test_bad_model_dirs);
    TEST_RUN(test_weights_in_place);
    return TEST_SUMMARY();
}
