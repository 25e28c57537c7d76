/* nllb-check.c - compares our engine with reference outputs that HF
 * transformers wrote for a model directory (scripts/fixtures/make-600m-reference.py):
 * decoder logits at every position of a forced decoder input, and greedy
 * ids. Used on the GPU machine, where transformers is, at full NLLB size.
 *
 *   nllb-check MODEL_DIR REF_DIR [--threads N]
 *
 * REF_DIR/reference.json: {"tgt_lang_id", "max_new_tokens", "cases": [{"src_ids",
 * "dec_ids", "logits_file" (raw little-endian f32, len(dec_ids) x vocab),
 * "greedy_ids"}]}. Prints the largest absolute logit difference per case
 * and whether the greedy ids agree; exit 1 when ids differ or a logit is
 * off by more than 1e-3. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "nllb.h"

static int32_t *ids_of(json_t *a, int *n) {
    *n = (int)json_array_size(a);
    int32_t *v = malloc(sizeof *v * (size_t)(*n ? *n : 1));
    for (int i = 0; v && i < *n; i++) v[i] = (int32_t)json_integer_value(json_array_get(a, (size_t)i));
    return v;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: nllb-check MODEL_DIR REF_DIR [--threads N]\n");
        return 2;
    }
    nllb_model_params mp = nllb_model_default_params();
    if (argc >= 5 && strcmp(argv[3], "--threads") == 0) mp.threads = atoi(argv[4]);
    stts_error err;
    nllb_model *m = NULL;
    uint64_t t = stts_now_ns();
    if (nllb_model_load(argv[1], &mp, &m, &err) != STTS_OK) {
        fprintf(stderr, "nllb-check: %s\n", err.msg);
        return 1;
    }
    printf("loaded %s in %.0f ms (%s)\n", argv[1], (double)(stts_now_ns() - t) / 1e6, nllb_model_backend(m));
    char path[4096];
    snprintf(path, sizeof path, "%s/reference.json", argv[2]);
    json_error_t je;
    json_t *ref = json_load_file(path, 0, &je);
    if (!ref) {
        fprintf(stderr, "nllb-check: %s:%d: %s\n", path, je.line, je.text);
        return 1;
    }
    nllb_session *s = NULL;
    if (nllb_session_new(m, NULL, &s, &err) != STTS_OK) {
        fprintf(stderr, "nllb-check: %s\n", err.msg);
        return 1;
    }
    int vocab = nllb_model_config(m)->vocab_size;
    int32_t tgt = (int32_t)json_integer_value(json_object_get(ref, "tgt_lang_id"));
    int max_new = (int)json_integer_value(json_object_get(ref, "max_new_tokens"));
    json_t *cases = json_object_get(ref, "cases");
    int bad = 0;
    double worst = 0;
    for (size_t c = 0; c < json_array_size(cases); c++) {
        json_t *cs = json_array_get(cases, c);
        int n_src, n_dec, n_greedy;
        int32_t *src = ids_of(json_object_get(cs, "src_ids"), &n_src);
        int32_t *dec = ids_of(json_object_get(cs, "dec_ids"), &n_dec);
        int32_t *greedy = ids_of(json_object_get(cs, "greedy_ids"), &n_greedy);
        size_t nl = (size_t)n_dec * (size_t)vocab;
        float *ours = malloc(nl * sizeof *ours), *theirs = malloc(nl * sizeof *theirs);
        snprintf(path, sizeof path, "%s/%s", argv[2], json_string_value(json_object_get(cs, "logits_file")));
        FILE *f = fopen(path, "rb");
        if (!ours || !theirs || !f || fread(theirs, sizeof *theirs, nl, f) != nl) {
            fprintf(stderr, "nllb-check: cannot read %s (%zu floats expected)\n", path, nl);
            return 1;
        }
        fclose(f);
        if (nllb_decoder_logits(s, src, n_src, dec, n_dec, ours, &err) != STTS_OK) {
            fprintf(stderr, "nllb-check: %s\n", err.msg);
            return 1;
        }
        double maxd = 0, maxref = 0;
        for (size_t i = 0; i < nl; i++) {
            double d = fabs((double)ours[i] - (double)theirs[i]);
            if (d > maxd) maxd = d;
            if (fabs(theirs[i]) > maxref) maxref = fabs(theirs[i]);
        }
        nllb_translate_params tp = nllb_translate_default_params();
        tp.max_new_tokens = max_new;
        nllb_result r;
        memset(&r, 0, sizeof r);
        const int32_t *srcs[1] = {src};
        int lens[1] = {n_src};
        if (nllb_translate_ids(s, srcs, lens, 1, tgt, &tp, &r, &err) != STTS_OK) {
            fprintf(stderr, "nllb-check: %s\n", err.msg);
            return 1;
        }
        int same = r.n_ids == n_greedy && memcmp(r.ids, greedy, sizeof *greedy * (size_t)n_greedy) == 0;
        printf("case %zu: %d source tokens, %d decoder positions: max |logit diff| %.3g (max |logit| %.3g); "
               "greedy %d tokens %s\n", c, n_src, n_dec, maxd, maxref, n_greedy, same ? "identical" : "DIFFER");
        if (!same || maxd > 1e-3) bad = 1;
        if (maxd > worst) worst = maxd;
        nllb_result_clear(&r);
        free(src); free(dec); free(greedy); free(ours); free(theirs);
    }
    printf("worst max |logit diff| %.3g; %s\n", worst, bad ? "FAILED" : "all greedy ids identical");
    json_decref(ref);
    nllb_session_free(s);
    nllb_model_free(m);
    return bad;
}
