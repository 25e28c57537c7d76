/* fuzz_torch_zip.c - libFuzzer target: the pytorch_model.bin reader (zip
 * central directory, ZIP64, deflate, pickle VM) on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    mt_checkpoint *ck = NULL;
    stts_error e;
    if (mt_checkpoint_open_torch_zip_mem(buf, size, &ck, &e) == STTS_OK) {
        for (size_t i = 0; i < mt_checkpoint_count(ck); i++) {
            const mt_tensor *t = mt_checkpoint_at(ck, i);
            if (mt_checkpoint_find(ck, t->name) != t) abort();
            if (t->numel <= (1 << 16)) {
                /* Touch every byte (in the input, or in an inflated/gathered copy). */
                float *f = malloc(((size_t)t->numel + 1) * sizeof *f);
                if (f) mt_tensor_to_f32(t, f, (size_t)t->numel, &e);
                free(f);
                volatile uint8_t sink = 0;
                for (size_t k = 0; k < t->nbytes; k++) sink ^= ((const uint8_t *)t->data)[k];
                (void)sink;
            }
        }
        mt_checkpoint_close(ck);
    }
    free(buf);
    return 0;
}
