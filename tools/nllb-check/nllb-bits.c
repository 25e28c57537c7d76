/* nllb-bits.c - fingerprints of the engine's arithmetic: FNV-1a hashes of
 * the encoder's output and of the decoder's teacher-forced logits, for each
 * weight format x SIMD level x thread count this CPU runs.
 *
 *   nllb-bits [--model DIR]
 *
 * For changes that must not move a bit (a kernel restructured, a loop
 * reordered with the same per-value arithmetic): run it on the commit
 * before and after and diff the outputs. Without --model it builds a small
 * random model whose head size (18) and widths (72, 128) are not multiples
 * of the vector widths, so the kernels' tails are covered; with --model DIR
 * (the demo model, a fixture) a trained one. Sources of 1-600 tokens, so
 * the positions pass the engine's 256-row position table growth. Not a
 * test: the hashes depend on the compiler and libm (expf, sinf), so they
 * are compared between builds on one machine, never committed. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nllb.h"

static uint64_t fnv(const void *p, size_t n, uint64_t h) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static int run(nllb_model *m, const char *tag) {
    const nllb_config *c = nllb_model_config(m);
    nllb_session *s;
    stts_error e;
    if (nllb_session_new(m, NULL, &s, &e) != STTS_OK) {
        fprintf(stderr, "nllb-bits: %s\n", e.msg);
        return 1;
    }
    static const int lens[] = {1, 2, 3, 5, 7, 20, 600};
    uint64_t he = 1469598103934665603ull, hl = he;
    int rc = 0;
    for (int li = 0; li < 7 && !rc; li++) {
        int n = lens[li], nd = 5 + li * 4;
        if (n > c->max_position_embeddings) n = c->max_position_embeddings;
        int32_t *src = malloc((size_t)n * sizeof *src), dec[40];
        float *enc = malloc((size_t)n * c->d_model * sizeof(float));
        float *lg = malloc((size_t)nd * c->vocab_size * sizeof(float));
        if (!src || !enc || !lg) {
            fprintf(stderr, "nllb-bits: out of memory\n");
            rc = 1;
        } else {
            /* ids from 4 up, clear of the special ids, below the language codes */
            int span = c->spm_size > 8 ? c->spm_size - 4 : 1;
            for (int i = 0; i < n; i++) src[i] = 4 + (i * 7919 + li * 31) % span;
            src[n - 1] = c->eos_token_id;
            dec[0] = c->decoder_start_token_id;
            for (int i = 1; i < nd; i++) dec[i] = 4 + (i * 104729 + li) % span;
            if (nllb_encode(s, src, n, enc, &e) != STTS_OK ||
                nllb_decoder_logits(s, src, n, dec, nd, lg, &e) != STTS_OK) {
                fprintf(stderr, "nllb-bits: %s: %s\n", tag, e.msg);
                rc = 1;
            } else {
                he = fnv(enc, (size_t)n * c->d_model * sizeof(float), he);
                hl = fnv(lg, (size_t)nd * c->vocab_size * sizeof(float), hl);
            }
        }
        free(src);
        free(enc);
        free(lg);
    }
    if (!rc) printf("%-24s encoder %016llx logits %016llx\n", tag, (unsigned long long)he, (unsigned long long)hl);
    nllb_session_free(s);
    return rc;
}

int main(int argc, char **argv) {
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) {
            dir = argv[++i];
        } else {
            fprintf(stderr, "usage: nllb-bits [--model DIR]\n");
            return 2;
        }
    }
    static const char *const simds[] = {"scalar", "avx2", "avxvnni", "avx512", "avx512vnni", "neon"};
    static const char *const formats[] = {"f32", "bf16", "f16", "int8"};
    for (size_t si = 0; si < sizeof simds / sizeof *simds; si++)
        for (size_t wi = 0; wi < sizeof formats / sizeof *formats; wi++)
            for (int threads = 1; threads <= 2; threads++) {
                nllb_model_params p = nllb_model_default_params();
                p.simd = (nllb_simd)nllb_simd_parse(simds[si]);
                p.weights = (nllb_weights)nllb_weights_parse(formats[wi]);
                p.threads = threads;
                p.device = NLLB_DEVICE_CPU;
                nllb_model *m;
                stts_error e;
                stts_status st;
                if (dir) {
                    st = nllb_model_load(dir, &p, &m, &e);
                } else {
                    nllb_config c = nllb_config_600m();
                    c.d_model = 72;
                    c.encoder_attention_heads = c.decoder_attention_heads = 4;
                    c.encoder_ffn_dim = c.decoder_ffn_dim = 128;
                    c.encoder_layers = c.decoder_layers = 2;
                    c.vocab_size = 1000;
                    c.spm_size = 700;
                    st = nllb_model_new_random(&c, 7, &p, &m, &e);
                }
                if (st != STTS_OK) { /* a level this CPU lacks: skipped, said once */
                    if (wi == 0 && threads == 1) printf("%-24s skipped: %s\n", simds[si], e.msg);
                    continue;
                }
                char tag[64];
                snprintf(tag, sizeof tag, "%s/%s/%dt", simds[si], formats[wi], threads);
                int rc = run(m, tag);
                nllb_model_free(m);
                if (rc) return 1;
            }
    return 0;
}
