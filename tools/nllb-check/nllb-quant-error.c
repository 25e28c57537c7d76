/* nllb-quant-error.c - how far bf16 and int8 weights move the decoder's
 * logits from f32, at teacher-forced positions, on one model: the
 * NLLB-200-distilled-600M shape with deterministic random weights (default),
 * or a model folder (HF layout or converted) where the real weights are.
 *
 *   nllb-quant-error [--model DIR] [--weights bf16,int8] [--sources N]
 *                    [--src-len L] [--positions P] [--threads T] [--seed S]
 *
 * Each format's model is built from the same f32 source (same seed, or the
 * same files), so the only difference is the weight format and the kernels
 * that go with it. For each format, per position: the relative error of the
 * logit vector (||q - f|| / ||f||), the largest absolute difference against
 * the largest f32 logit, and whether the arg-max (the greedy choice) and the
 * top 5 agree; where the arg-max differs, the f32 margin between its best
 * two logits says how close the call was. One JSON object per format on
 * stdout, a readable summary on stderr. docs/QUALITY.md has the results.
 *
 * The decoder input is forced: decoder start, target language, then random
 * ids, so every position is a real decoder step over a real KV cache, as in
 * nllb-check. Random weights are uniform, without the outlier channels of
 * trained models, so these errors are a lower bound for real weights. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nllb.h"

typedef struct {
    const char *model_dir; /* NULL: the 600M shape with random weights */
    const char *formats;
    int sources, src_len, positions, threads;
    uint64_t seed;
} opts;

static uint64_t rng_next(uint64_t *s) { /* splitmix64: deterministic everywhere */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static stts_status load(const opts *o, nllb_weights w, nllb_model **m, stts_error *err) {
    nllb_model_params mp = nllb_model_default_params();
    mp.weights = w;
    mp.threads = o->threads;
    if (o->model_dir) return nllb_model_load(o->model_dir, &mp, m, err);
    nllb_config cfg = nllb_config_600m();
    return nllb_model_new_random(&cfg, o->seed, &mp, m, err);
}

/* Teacher-forced logits of every case, [sources][positions][vocab]. */
static stts_status run_all(const opts *o, nllb_model *m, int32_t *const *src, int32_t *const *dec, float *out,
                           stts_error *err) {
    nllb_session_params sp = nllb_session_default_params();
    sp.max_src_len = o->src_len;
    nllb_session *s = NULL;
    stts_status st = nllb_session_new(m, &sp, &s, err);
    size_t V = (size_t)nllb_model_config(m)->vocab_size;
    for (int i = 0; !st && i < o->sources; i++)
        st = nllb_decoder_logits(s, src[i], o->src_len, dec[i], o->positions, out + (size_t)i * o->positions * V,
                                 err);
    nllb_session_free(s);
    return st;
}

static int argmax(const float *x, size_t n) {
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return (int)b;
}

/* The ids of the k largest values, best first (k small). */
static void topk(const float *x, size_t n, int k, int *ids) {
    for (int j = 0; j < k; j++) ids[j] = -1;
    for (size_t i = 0; i < n; i++) {
        int j = k;
        while (j > 0 && (ids[j - 1] < 0 || x[i] > x[ids[j - 1]])) j--;
        if (j == k) continue;
        memmove(ids + j + 1, ids + j, (size_t)(k - 1 - j) * sizeof *ids);
        ids[j] = (int)i;
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int usage(void) {
    fprintf(stderr, "usage: nllb-quant-error [--model DIR] [--weights bf16,int8,f16] [--sources N] [--src-len L]\n"
                    "                        [--positions P] [--threads T] [--seed S]\n"
                    "  without --model: the NLLB-200-distilled-600M shape with random weights (seed S)\n");
    return 2;
}

int main(int argc, char **argv) {
    opts o = {NULL, "bf16,int8", 4, 20, 8, 0, 2024};
    for (int i = 1; i < argc; i += 2) { /* --flag value pairs */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return usage();
        if (!strcmp(a, "--model")) o.model_dir = v;
        else if (!strcmp(a, "--weights")) o.formats = v;
        else if (!strcmp(a, "--sources")) o.sources = atoi(v);
        else if (!strcmp(a, "--src-len")) o.src_len = atoi(v);
        else if (!strcmp(a, "--positions")) o.positions = atoi(v);
        else if (!strcmp(a, "--threads")) o.threads = atoi(v);
        else if (!strcmp(a, "--seed")) o.seed = strtoull(v, NULL, 10);
        else return usage();
    }
    if (o.sources < 1 || o.src_len < 3 || o.positions < 3 || o.threads < 0) return usage();

    stts_error err;
    nllb_model *m = NULL;
    if (load(&o, NLLB_WEIGHTS_F32, &m, &err) != STTS_OK) {
        fprintf(stderr, "nllb-quant-error: %s\n", err.msg);
        return 1;
    }
    const nllb_config *cfg = nllb_model_config(m);
    size_t V = (size_t)cfg->vocab_size;
    int lang = nllb_model_lang_id(m, "jpn_Jpan"), eng = nllb_model_lang_id(m, "eng_Latn");
    if (lang < 0 || eng < 0) {
        fprintf(stderr, "nllb-quant-error: the model has no jpn_Jpan/eng_Latn language ids\n");
        return 1;
    }
    /* Sources: [eng_Latn] random pieces </s>; decoder: start, jpn_Jpan, random pieces. */
    uint64_t rs = o.seed ^ 0x51ull;
    int lo = 4, hi = cfg->spm_size > 8 ? cfg->spm_size : (int)V - 210;
    int32_t **src = calloc((size_t)o.sources, sizeof *src), **dec = calloc((size_t)o.sources, sizeof *dec);
    for (int i = 0; i < o.sources; i++) {
        src[i] = malloc((size_t)o.src_len * sizeof **src);
        dec[i] = malloc((size_t)o.positions * sizeof **dec);
        src[i][0] = eng;
        for (int t = 1; t < o.src_len - 1; t++) src[i][t] = lo + (int32_t)(rng_next(&rs) % (uint64_t)(hi - lo));
        src[i][o.src_len - 1] = cfg->eos_token_id;
        dec[i][0] = cfg->decoder_start_token_id;
        dec[i][1] = lang;
        for (int t = 2; t < o.positions; t++) dec[i][t] = lo + (int32_t)(rng_next(&rs) % (uint64_t)(hi - lo));
    }
    size_t n_pos = (size_t)o.sources * o.positions;
    float *ref = malloc(n_pos * V * sizeof *ref), *got = malloc(n_pos * V * sizeof *got);
    if (!ref || !got) {
        fprintf(stderr, "nllb-quant-error: out of memory for %zu x %zu logits\n", n_pos, V);
        return 1;
    }
    uint64_t t0 = stts_now_ns();
    if (run_all(&o, m, src, dec, ref, &err) != STTS_OK) {
        fprintf(stderr, "nllb-quant-error: f32: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "nllb-quant-error: %s, f32 reference: %d sources x %d positions in %.1f s (%s)\n",
            o.model_dir ? o.model_dir : "600M shape, random weights", o.sources, o.positions,
            (double)(stts_now_ns() - t0) / 1e9, nllb_model_backend(m));
    nllb_model_free(m);

    int rc = 0;
    char *list = strdup(o.formats);
    for (char *save = NULL, *f = strtok_r(list, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
        int w = nllb_weights_parse(f);
        if (w < 0 || w == NLLB_WEIGHTS_AUTO) {
            fprintf(stderr, "nllb-quant-error: unknown weight format '%s' (bf16, f16, int8, f32)\n", f);
            rc = 2;
            break;
        }
        t0 = stts_now_ns();
        if (load(&o, (nllb_weights)w, &m, &err) != STTS_OK || run_all(&o, m, src, dec, got, &err) != STTS_OK) {
            fprintf(stderr, "nllb-quant-error: %s: %s\n", f, err.msg);
            rc = 1;
            break;
        }
        double secs = (double)(stts_now_ns() - t0) / 1e9;
        double *rel = malloc(n_pos * sizeof *rel), *margin = malloc(n_pos * sizeof *margin);
        double worst_abs = 0, ref_max = 0, tight_flip = 0;
        int top1 = 0, top5 = 0, flips = 0;
        for (size_t p = 0; p < n_pos; p++) {
            const float *r = ref + p * V, *g = got + p * V;
            double dd = 0, rr = 0;
            for (size_t v = 0; v < V; v++) {
                double d = (double)g[v] - r[v];
                dd += d * d;
                rr += (double)r[v] * r[v];
                if (fabs(d) > worst_abs) worst_abs = fabs(d);
                if (fabs(r[v]) > ref_max) ref_max = fabs(r[v]);
            }
            rel[p] = rr > 0 ? sqrt(dd / rr) : 0;
            int tr[5], tg[5];
            topk(r, V, 5, tr);
            topk(g, V, 5, tg);
            /* The f32 gap between the best two logits: how much error a
             * position can take before the greedy choice flips. */
            margin[p] = (double)r[tr[0]] - r[tr[1]];
            if (argmax(r, V) == argmax(g, V)) top1++;
            else {
                if (!flips || margin[p] > tight_flip) tight_flip = margin[p];
                flips++;
            }
            int same = 1;
            for (int k = 0; k < 5; k++) same &= tr[k] == tg[k];
            top5 += same;
        }
        qsort(rel, n_pos, sizeof *rel, cmp_double);
        qsort(margin, n_pos, sizeof *margin, cmp_double);
        printf("{\"model\":\"%s\",\"weights\":\"%s\",\"positions\":%zu,\"rel_err_median\":%.3e,\"rel_err_max\":%.3e,"
               "\"max_abs_diff\":%.4g,\"max_abs_logit\":%.4g,\"top1_agree\":%d,\"top5_same_order\":%d,"
               "\"largest_flipped_margin\":%.4g,\"f32_margin_median\":%.4g,\"seconds\":%.1f,\"backend\":\"%s\"}\n",
               o.model_dir ? o.model_dir : "random-600m", f, n_pos, rel[n_pos / 2], rel[n_pos - 1], worst_abs,
               ref_max, top1, top5, flips ? tight_flip : 0.0, margin[n_pos / 2], secs, nllb_model_backend(m));
        fprintf(stderr,
                "nllb-quant-error: %-5s relative error median %.2e max %.2e; max |diff| %.3g (max |logit| %.3g); "
                "arg-max same %d/%zu (median f32 top-2 gap %.3g), top 5 same %d/%zu\n",
                f, rel[n_pos / 2], rel[n_pos - 1], worst_abs, ref_max, top1, n_pos, margin[n_pos / 2], top5, n_pos);
        if (flips)
            fprintf(stderr, "nllb-quant-error: %-5s the flipped arg-max had an f32 margin of at most %.3g\n", f,
                    tight_flip);
        free(rel);
        free(margin);
        nllb_model_free(m);
        m = NULL;
    }
    free(list);
    for (int i = 0; i < o.sources; i++) free(src[i]), free(dec[i]);
    free(src), free(dec), free(ref), free(got);
    return rc;
}
