/* test_weights_quality.c - what int8 and bf16 weights and the auto shortlist
 * cost on the demo model (models/demo-en-ja), greedy, on the 500-sentence
 * test set prepared as in training (tests/fixtures/demo/test-500.{en,ja},
 * written by scripts/demo-model/evaluate.py's prepared_test). The f32
 * reference is HF transformers' own greedy output for the same 500
 * sentences (tests/fixtures/demo/hf-test.json; our f32 run equals it token
 * for token, docs/QUALITY.md), so nothing here is compared with itself.
 *
 * Measured and asserted (docs/QUALITY.md has the numbers and what they
 * mean): sentences whose ids equal HF's f32 greedy; char BLEU (sacrebleu's
 * corpus BLEU with tokenize="char", written out below and checked against
 * sacrebleu's 39.35 for the HF outputs); int8 + auto shortlist against int8
 * on the full vocabulary. Sentences are translated in batches of 20 (batched
 * and single decoding give identical ids: test_backend_ops and
 * test_nllb_model check that), one compute thread. About 12 s of CPU time
 * (the wall time on a busy shared machine can be a few times that);
 * sanitizer builds take every 10th sentence and check only the exact
 * properties there (f16 = HF, shortlist = full), not the rates. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nllb.h"
#include "test.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define STRIDE 10
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define STRIDE 10
#endif
#endif
#ifndef STRIDE
#define STRIDE 1
#endif

#define N_SENT 500
#define BATCH 20

static char *g_src[N_SENT], *g_ref[N_SENT], *g_hf_text[N_SENT];
static json_t *g_hf_ids[N_SENT];
static int g_n;
static json_t *g_hf;

/* ---- char BLEU: sacrebleu corpus_bleu(tokenize="char"): every character
 * but white space is a token; n-grams 1..4 clipped per sentence, summed over
 * the corpus; geometric mean; brevity penalty exp(1 - ref/hyp) when hyp is
 * shorter. (No smoothing is needed at corpus level: every order matches.) */
static int chars(const char *s, uint32_t *out, int cap) {
    int n = 0;
    size_t len = strlen(s);
    while (len && n < cap) {
        uint32_t cp;
        size_t k = stts_utf8_decode((const unsigned char *)s, len, &cp);
        if (!k) k = 1, cp = 0xFFFD;
        if (cp != ' ' && cp != '\t' && cp != '\n') out[n++] = cp;
        s += k;
        len -= k;
    }
    return n;
}

static double char_bleu(char *const *hyp, char *const *ref, int n) {
    double match[4] = {0}, total[4] = {0}, hl = 0, rl = 0;
    uint32_t h[512], r[512];
    for (int i = 0; i < n; i++) {
        int nh = chars(hyp[i], h, 512), nr = chars(ref[i], r, 512);
        hl += nh, rl += nr;
        for (int o = 1; o <= 4; o++) {
            if (nh < o) continue;
            total[o - 1] += nh - o + 1;
            /* clipped counts: each hyp n-gram matches at most its count in ref */
            unsigned char used[512] = {0};
            for (int a = 0; a + o <= nh; a++)
                for (int b = 0; b + o <= nr; b++) {
                    if (used[b] || memcmp(h + a, r + b, sizeof(uint32_t) * (size_t)o)) continue;
                    used[b] = 1;
                    match[o - 1]++;
                    break;
                }
        }
    }
    double lp = 0;
    for (int o = 0; o < 4; o++) {
        if (match[o] == 0) return 0;
        lp += log(match[o] / total[o]) / 4;
    }
    double bp = hl < rl ? exp(1 - rl / hl) : 1;
    return 100 * bp * exp(lp);
}

static char *dupline(const char *s) {
    size_t n = strcspn(s, "\n");
    char *d = malloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static int read_lines(const char *path, char **out) {
    size_t len;
    char *buf = test_read_file(path, &len);
    if (!buf) return -1;
    int n = 0;
    for (char *p = buf; *p && n < N_SENT; n++) {
        out[n] = dupline(p);
        p += strcspn(p, "\n");
        if (*p) p++;
    }
    free(buf);
    return n;
}

typedef struct {
    const char *name;
    nllb_weights w;
    nllb_shortlist sl;
    int32_t *ids[N_SENT];
    int n_ids[N_SENT];
    char *text[N_SENT];
} run;

static void translate_all(nllb_model *m, run *r) {
    stts_error e;
    nllb_session *s = NULL;
    nllb_session_params sp = nllb_session_default_params();
    sp.max_batch = BATCH;
    CHECK_MSG(nllb_session_new(m, &sp, &s, &e) == STTS_OK, "%s", e.msg);
    if (!s) return;
    nllb_translate_params tp = nllb_translate_default_params();
    tp.max_new_tokens = 64; /* as eval-hf.py */
    tp.shortlist = r->sl;
    const char *batch[BATCH];
    int idx[BATCH];
    nllb_result res[BATCH];
    for (int i = 0; i < g_n;) {
        int k = 0;
        for (; k < BATCH && i < g_n; i += STRIDE) idx[k] = i, batch[k++] = g_src[i];
        CHECK_MSG(nllb_translate(s, batch, k, "eng_Latn", "jpn_Jpan", &tp, res, &e) == STTS_OK, "%s", e.msg);
        for (int j = 0; j < k; j++) {
            r->ids[idx[j]] = res[j].ids;
            r->n_ids[idx[j]] = res[j].n_ids;
            r->text[idx[j]] = res[j].text;
            res[j].ids = NULL, res[j].text = NULL;
            nllb_result_clear(&res[j]);
        }
    }
    nllb_session_free(s);
}

static int same_as_hf(const run *r, int i) {
    json_t *w = g_hf_ids[i];
    if ((size_t)r->n_ids[i] != json_array_size(w)) return 0;
    for (int k = 0; k < r->n_ids[i]; k++)
        if (r->ids[i][k] != json_integer_value(json_array_get(w, (size_t)k))) return 0;
    return 1;
}

static int same_runs(const run *a, const run *b, int i) {
    return a->n_ids[i] == b->n_ids[i] && !memcmp(a->ids[i], b->ids[i], sizeof(int32_t) * (size_t)a->n_ids[i]);
}

static void test_formats_against_hf_f32(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/models/demo-en-ja", STTS_SOURCE_DIR);
    static run runs[] = {{"f16", NLLB_WEIGHTS_F16, NLLB_SHORTLIST_NONE, {0}, {0}, {0}},
                         {"bf16", NLLB_WEIGHTS_BF16, NLLB_SHORTLIST_NONE, {0}, {0}, {0}},
                         {"int8", NLLB_WEIGHTS_INT8, NLLB_SHORTLIST_NONE, {0}, {0}, {0}},
                         {"int8+auto", NLLB_WEIGHTS_INT8, NLLB_SHORTLIST_AUTO, {0}, {0}, {0}}};
    const int NR = (int)(sizeof runs / sizeof *runs);
    /* HF's own char BLEU of its outputs (sacrebleu 2.6.0 said 39.35): checks
     * this file's BLEU before it judges anything */
    char *sub_hf[N_SENT], *sub_ref[N_SENT];
    int ns = 0;
    for (int i = 0; i < g_n; i += STRIDE) sub_hf[ns] = g_hf_text[i], sub_ref[ns++] = g_ref[i];
    double hf_bleu = char_bleu(sub_hf, sub_ref, ns);
    if (STRIDE == 1) CHECK_MSG(fabs(hf_bleu - 39.35) < 0.01, "char BLEU of HF's outputs %.3f, sacrebleu 39.35", hf_bleu);
    printf("demo model, %d test sentences, greedy; HF f32 char BLEU %.2f\n", ns, hf_bleu);
    double bleu[4];
    int same[4] = {0};
    for (int k = 0; k < NR; k++) {
        nllb_model_params mp = nllb_model_default_params();
        mp.weights = runs[k].w;
        mp.threads = 1; /* CPU time, not wall time, on a shared machine */
        nllb_model *m = NULL;
        stts_error e;
        CHECK_MSG(nllb_model_load(path, &mp, &m, &e) == STTS_OK, "%s", e.msg);
        if (!m) return;
        translate_all(m, &runs[k]);
        nllb_model_free(m);
        char *hyp[N_SENT];
        int nh = 0;
        for (int i = 0; i < g_n; i += STRIDE) {
            hyp[nh++] = runs[k].text[i] ? runs[k].text[i] : "";
            same[k] += same_as_hf(&runs[k], i);
        }
        bleu[k] = char_bleu(hyp, sub_ref, nh);
        printf("  %-10s identical to HF f32: %3d/%d (%.1f%%), char BLEU %.2f (%+.2f)\n", runs[k].name, same[k], ns,
               100.0 * same[k] / ns, bleu[k], bleu[k] - hf_bleu);
    }
    int auto_same = 0;
    for (int i = 0; i < g_n; i += STRIDE) auto_same += same_runs(&runs[2], &runs[3], i);
    printf("  int8+auto identical to int8 (full vocabulary): %d/%d (%.1f%%)\n", auto_same, ns, 100.0 * auto_same / ns);
    /* The demo model's weights are f16: f16 compute widens them exactly, with
     * the f32 kernels' summation order, so it is HF's f32 result exactly. The
     * others at the levels docs/QUALITY.md records for this model (its
     * near-tied logits make any rounding flip some greedy choices: see
     * there; the 97% / 99% identical targets are not met). The char
     * BLEU drop bound is the 0.5. */
    CHECK_EQ_INT(same[0], ns);
    CHECK_MSG(auto_same * 100 >= ns * 99, "int8+auto: %d/%d identical to int8", auto_same, ns);
    if (STRIDE == 1) { /* rates over 500 sentences; a 50-sentence sample is too small for them */
        CHECK_MSG(same[1] * 100 >= ns * 97, "bf16: %d/%d identical", same[1], ns);
        CHECK_MSG(same[2] * 100 >= ns * 90, "int8: %d/%d identical", same[2], ns);
        CHECK_MSG(bleu[1] >= hf_bleu - 0.5, "bf16 char BLEU %.2f vs %.2f", bleu[1], hf_bleu);
        CHECK_MSG(bleu[2] >= hf_bleu - 0.5, "int8 char BLEU %.2f vs %.2f", bleu[2], hf_bleu);
    }
    for (int k = 0; k < NR; k++)
        for (int i = 0; i < g_n; i++) free(runs[k].ids[i]), free(runs[k].text[i]);
}

int main(void) {
    char p[1024];
    snprintf(p, sizeof p, "%s/tests/fixtures/demo/hf-test.json", STTS_SOURCE_DIR);
    json_error_t je;
    g_hf = json_load_file(p, 0, &je);
    if (!g_hf) TEST_SKIP_ALL("%s: %s", p, je.text);
    json_t *outs = json_object_get(json_object_get(json_object_get(g_hf, "runs"), "greedy_fp32"), "outputs");
    snprintf(p, sizeof p, "%s/tests/fixtures/demo/test-500.en", STTS_SOURCE_DIR);
    g_n = read_lines(p, g_src);
    snprintf(p, sizeof p, "%s/tests/fixtures/demo/test-500.ja", STTS_SOURCE_DIR);
    int nref = read_lines(p, g_ref);
    if (g_n != N_SENT || nref != N_SENT || json_array_size(outs) != N_SENT) {
        fprintf(stderr, "fixtures: %d sources, %d references, %zu HF outputs (500 each expected)\n", g_n, nref,
                json_array_size(outs));
        return 1;
    }
    for (int i = 0; i < N_SENT; i++) {
        json_t *o = json_array_get(outs, (size_t)i);
        g_hf_ids[i] = json_object_get(o, "ids");
        g_hf_text[i] = (char *)json_string_value(json_object_get(o, "text"));
    }
    TEST_RUN(test_formats_against_hf_f32);
    for (int i = 0; i < N_SENT; i++) free(g_src[i]), free(g_ref[i]);
    json_decref(g_hf);
    return TEST_SUMMARY();
}
