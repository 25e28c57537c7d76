/* nllb_ids.c - prints the token ids a tiny random model (deterministic
 * weights, the same on every machine) translates three fixed sources to,
 * greedy and beam 4, with f32, bf16, f16 and int8 weights. scripts/test-arm64
 * runs the x86 build natively and the arm64 build under qemu-user and
 * compares the outputs: the NEON kernels must choose the same tokens as the
 * x86 ones. */
#include <stdio.h>
#include <string.h>

#include "nllb.h"

int main(void) {
    nllb_config c = nllb_config_600m();
    c.vocab_size = 600;
    c.spm_size = 300;
    c.d_model = 64;
    c.encoder_layers = c.decoder_layers = 2;
    c.encoder_attention_heads = c.decoder_attention_heads = 4;
    c.encoder_ffn_dim = 96;
    c.decoder_ffn_dim = 80;
    c.max_position_embeddings = 64;
    c.max_length = 40;
    static const nllb_weights fm[] = {NLLB_WEIGHTS_F32, NLLB_WEIGHTS_BF16, NLLB_WEIGHTS_F16, NLLB_WEIGHTS_INT8};
    static const int32_t s1[] = {347, 5, 6, 7, 2}, s2[] = {347, 2}, s3[] = {347, 200, 201, 202, 203, 204, 205, 2};
    const int32_t *srcs[3] = {s1, s2, s3};
    int lens[3] = {5, 2, 8};
    for (size_t f = 0; f < sizeof fm / sizeof *fm; f++) {
        nllb_model_params mp = nllb_model_default_params();
        mp.weights = fm[f];
        mp.threads = 2;
        nllb_model *m = NULL;
        nllb_session *s = NULL;
        stts_error e;
        if (nllb_model_new_random(&c, 7, &mp, &m, &e) || nllb_session_new(m, NULL, &s, &e)) {
            fprintf(stderr, "nllb_ids: %s\n", e.msg);
            return 1;
        }
        /* which kernels ran (scripts/test-arm64 checks it is NEON, not scalar) */
        if (f == 0) fprintf(stderr, "nllb_ids: backend %s\n", nllb_model_backend(m));
        for (int beams = 1; beams <= 4; beams += 3)
            for (int i = 0; i < 3; i++) {
                nllb_translate_params tp = nllb_translate_default_params();
                tp.num_beams = beams;
                tp.max_new_tokens = 20;
                nllb_result r;
                if (nllb_translate_ids(s, &srcs[i], &lens[i], 1, 301 + 79, &tp, &r, &e)) {
                    fprintf(stderr, "nllb_ids: %s\n", e.msg);
                    return 1;
                }
                printf("%s beam%d src%d:", nllb_weights_name(fm[f]), beams, i);
                for (int k = 0; k < r.n_ids; k++) printf(" %d", r.ids[k]);
                printf("\n");
                nllb_result_clear(&r);
            }
        nllb_session_free(s);
        nllb_model_free(m);
    }
    return 0;
}
