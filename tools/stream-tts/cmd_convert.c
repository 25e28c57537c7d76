/* cmd_convert.c - `stream-tts convert MODEL_DIR OUT_DIR --weights FORMAT`:
 * writes a converted model directory (model.gguf + config + tokenizer,
 * docs/MODEL-FILES.md) that `--model` loads without conversion. The work is
 * mt_convert_model (src/mt/io/convert.c); this file parses flags and prints
 * progress on stderr. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "io/convert.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: stream-tts convert MODEL_DIR OUT_DIR [--weights int8|bf16|f16|f32] [--quiet]\n"
            "Converts an NLLB-200 model directory (as downloaded from the Hugging Face hub, or one written by\n"
            "this command) into OUT_DIR/model.gguf plus config.json, generation_config.json and\n"
            "sentencepiece.bpe.model, which `--model OUT_DIR` maps without converting anything.\n"
            "  --weights F  format of the 2-D weights (default int8: per-row scales; bf16, f16, f32);\n"
            "               biases and layer norms stay f32\n"
            "  --quiet      no progress on stderr\n"
            "Files are written beside the old ones and renamed into place, so a running stream-tts keeps its\n"
            "mapping; OUT_DIR may be MODEL_DIR (model.gguf then takes precedence over the HF weights).\n");
}

typedef struct {
    int quiet;
    int last_pct;
    struct timespec t0;
} progress;

static double since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void on_progress(void *user, size_t done, size_t total, const char *tensor) {
    progress *p = user;
    if (p->quiet || !total) return;
    int pct = (int)(100 * done / total);
    if (pct / 10 == p->last_pct / 10 && done != total) return;
    p->last_pct = pct;
    fprintf(stderr, "stream-tts convert: %3d%% (%zu/%zu tensors, %.1f s) %s\n", pct, done, total, since(&p->t0),
            tensor ? tensor : "");
}

static int convert_main(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *weights = "int8";
    progress pr = {0, -10, {0, 0}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--weights")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "stream-tts convert: --weights needs a value: int8, bf16, f16 or f32\n");
                return 2;
            }
            weights = argv[++i];
            if (!mt_convert_weights_valid(weights)) {
                fprintf(stderr, "stream-tts convert: unknown --weights \"%s\": use int8, bf16, f16 or f32\n",
                        weights);
                return 2;
            }
        } else if (!strcmp(a, "--quiet")) {
            pr.quiet = 1;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "stream-tts convert: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!in) {
            in = a;
        } else if (!out) {
            out = a;
        } else {
            fprintf(stderr, "stream-tts convert: unexpected argument '%s' (MODEL_DIR and OUT_DIR already given)\n",
                    a);
            return 2;
        }
    }
    if (!in || !out) {
        fprintf(stderr, "stream-tts convert: MODEL_DIR and OUT_DIR are required\n");
        usage(stderr);
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &pr.t0);
    if (!pr.quiet) fprintf(stderr, "stream-tts convert: %s -> %s (weights %s)\n", in, out, weights);
    mt_convert_params prm = {weights, on_progress, &pr};
    mt_convert_stats st;
    stts_error err;
    stts_error_clear(&err);
    stts_status s = mt_convert_model(in, out, &prm, &st, &err);
    if (s) {
        fprintf(stderr, "stream-tts convert: %s\n", err.msg);
        return s == STTS_ERR_INVALID_ARG ? 2 : 1;
    }
    if (!pr.quiet)
        fprintf(stderr,
                "stream-tts convert: wrote %s/model.gguf: %llu bytes, %zu tensors (%zu 2-D in %s, %zu tied "
                "embedding copies left out, %zu non-float skipped) in %.1f s\n",
                out, (unsigned long long)st.file_bytes, st.tensors_out, st.quantized, weights, st.tied_dropped,
                st.skipped, since(&pr.t0));
    return 0;
}

/* Both "--flag VALUE" and "--flag=VALUE", as on the main command. */
int cmd_convert(int argc, char **argv) {
    static const char *const value_flags[] = {"--weights", NULL};
    return cli_run_split(argc, argv, value_flags, convert_main);
}
