/* fuzz_mt_config.c - libFuzzer target: config.json + generation_config.json
 * parsing. The input is split at the first NUL: before it config.json, after
 * it generation_config.json (absent if there is no NUL). A config that
 * parses must satisfy every documented invariant. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t n1 = nul ? (size_t)(nul - data) : size;
    char *a = malloc(n1 + 1), *b = NULL;
    size_t n2 = 0;
    if (!a) return 0;
    memcpy(a, data, n1);
    a[n1] = 0;
    if (nul) {
        n2 = size - n1 - 1;
        b = malloc(n2 + 1);
        if (!b) {
            free(a);
            return 0;
        }
        memcpy(b, nul + 1, n2);
        b[n2] = 0;
    }
    mt_config c;
    stts_error e;
    if (mt_config_parse(a, n1, b, n2, &c, &e) == STTS_OK) {
        if (c.vocab_size <= 0 || c.d_model <= 0 || c.d_model % c.encoder_attention_heads ||
            c.d_model % c.decoder_attention_heads || c.encoder_layers <= 0 || c.decoder_layers <= 0 ||
            c.pad_token_id < 0 || c.pad_token_id >= c.vocab_size || c.eos_token_id >= c.vocab_size ||
            c.gen_eos_token_id < 0 || c.gen_eos_token_id >= c.vocab_size || c.gen_decoder_start_token_id < 0 ||
            c.gen_decoder_start_token_id >= c.vocab_size || c.max_length < 0 || c.max_position_embeddings <= 0)
            abort();
    }
    free(a);
    free(b);
    return 0;
}
