/* torch_zip.c - pytorch_model.bin reader (zip + pickle). Work in progress:
 * until the zip/pickle parser lands, .bin checkpoints are refused clearly. */
#include "io/checkpoint_internal.h"

stts_status mtio_parse_torch_zip(mt_checkpoint *ck, const void *buf, size_t n, const char *label,
                                 stts_error *err) {
    (void)ck;
    (void)buf;
    (void)n;
    return stts_error_set(err, STTS_ERR_UNSUPPORTED,
                          "%s: pytorch_model.bin is not readable yet; use model.safetensors", label);
}
