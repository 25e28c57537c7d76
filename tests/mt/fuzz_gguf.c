/* fuzz_gguf.c - libFuzzer target: the model.gguf reader (converted model
 * files, src/mt/io/gguf.c) on arbitrary bytes; every tensor handed out must
 * lie inside the input, int8 tensors must have their validated scales, and
 * every float tensor must convert. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "quant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* A private copy, so ASan sees reads past the end of the input. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    mt_checkpoint *ck = NULL;
    stts_error e;
    if (mt_checkpoint_open_gguf_mem(buf, size, &ck, &e) == STTS_OK) {
        if (!mt_checkpoint_weights(ck)) abort();
        int sd = mt_checkpoint_source_dtype(ck); /* format 3: one of these; format 2: -1 */
        if (sd != -1 && sd != MT_DTYPE_F32 && sd != MT_DTYPE_F16 && sd != MT_DTYPE_BF16) abort();
        for (size_t i = 0; i < mt_checkpoint_count(ck); i++) {
            const mt_tensor *t = mt_checkpoint_at(ck, i);
            if (mt_checkpoint_find(ck, t->name) != t) abort();
            if ((const uint8_t *)t->data < buf || t->nbytes > size ||
                (const uint8_t *)t->data + t->nbytes > buf + size)
                abort();
            if (t->nbytes != (size_t)t->numel * mt_dtype_size(t->dtype)) abort();
            /* the interleaved layout (formats 2, 3) fits the tensor: every row readable inside it */
            if (t->il < 0 || (t->il && (t->ndim != 2 || t->il > t->shape[0] || (t->il & 3) ||
                                        ((size_t)t->shape[1] * mt_dtype_size(t->dtype)) % 64)))
                abort();
            if (t->il && t->numel <= (1 << 16)) {
                void *row = malloc((size_t)t->shape[1] * mt_dtype_size(t->dtype));
                for (int64_t r = 0; row && r < t->shape[0]; r++)
                    mt_il_row_get(t->data, (int)t->shape[1], mt_dtype_size(t->dtype), t->il, (int)r, row);
                free(row);
            }
            if (t->dtype == MT_DTYPE_I8) {
                const mt_tensor *sc = mt_checkpoint_scale(ck, t);
                if (!sc || sc->dtype != MT_DTYPE_F32 || sc->ndim != 1 || sc->shape[0] != t->shape[0]) abort();
                continue;
            }
            if (t->numel <= (1 << 16)) {
                float *f = malloc(((size_t)t->numel + 1) * sizeof *f);
                if (f) mt_tensor_to_f32(t, f, (size_t)t->numel, &e);
                free(f);
            }
        }
        mt_checkpoint_close(ck);
    }
    free(buf);
    return 0;
}
