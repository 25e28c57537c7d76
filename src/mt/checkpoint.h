/* checkpoint.h - read-only access to the named tensors of an HF checkpoint
 * (model.safetensors, or pytorch_model.bin: a zip holding a pickled state
 * dict), without Python. Internal to the engine.
 *
 * Seam: src/mt/io/ implements it (mmap + validated headers); the model code
 * in src/mt/ looks tensors up by their HF names and converts them to its own
 * layout with mt_tensor_to_f32(). Every size and offset is validated against
 * the file before any tensor is handed out. */
#ifndef MT_CHECKPOINT_H
#define MT_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "stts_common.h"

/* MT_DTYPE_I8: int8 weights of converted model files, with a "<name>.scale"
 * f32 tensor beside them (quant.h); never found in HF checkpoints. */
typedef enum { MT_DTYPE_F32 = 0, MT_DTYPE_F16, MT_DTYPE_BF16, MT_DTYPE_I64, MT_DTYPE_OTHER, MT_DTYPE_I8 } mt_dtype;

typedef struct {
    const char *name;        /* HF state-dict key, e.g. "model.encoder.layers.0.fc1.weight" */
    mt_dtype dtype;
    int ndim;
    int64_t shape[4];
    const void *data;        /* points into the mapped file; contiguous, row-major */
    size_t nbytes;
    /* Added by src/mt/io: the file's own dtype name ("F32", "F16", "BF16",
     * "I64", "I32", "F64", ... for safetensors; "float32" ... for torch), so
     * errors about MT_DTYPE_OTHER tensors can say what they are. */
    const char *dtype_name;
    int64_t numel;           /* product of shape[0..ndim) (1 for a scalar) */
    /* Added by src/mt/io: the 2-D int8, bf16 and f16 tensors of a model
     * file of format 2, the rows stored in quant.h's interleaved layout
     * (mt_il_rows of the shape); 0: row-major (format 1, f32, HF files). */
    int il;
} mt_tensor;

typedef struct mt_checkpoint mt_checkpoint;

/* path: a model directory (model.gguf from `stream-tts convert` preferred,
 * then model.safetensors, then pytorch_model.bin) or one of those files
 * directly. A model.gguf must match the config.json beside it. */
stts_status mt_checkpoint_open(const char *path, mt_checkpoint **out, stts_error *err);
/* Parse an in-memory image (tests, fuzzers). The buffer must outlive the handle. */
stts_status mt_checkpoint_open_safetensors_mem(const void *buf, size_t n, mt_checkpoint **out, stts_error *err);
stts_status mt_checkpoint_open_torch_zip_mem(const void *buf, size_t n, mt_checkpoint **out, stts_error *err);
/* Added by src/mt/io: a model.gguf image (docs/MODEL-FILES.md), validated
 * like a file (int8 scales included; no config.json check). */
stts_status mt_checkpoint_open_gguf_mem(const void *buf, size_t n, mt_checkpoint **out, stts_error *err);
void mt_checkpoint_close(mt_checkpoint *ck);

size_t mt_checkpoint_count(const mt_checkpoint *ck);
const mt_tensor *mt_checkpoint_at(const mt_checkpoint *ck, size_t i);
const mt_tensor *mt_checkpoint_find(const mt_checkpoint *ck, const char *name); /* NULL if absent */
const char *mt_checkpoint_path(const mt_checkpoint *ck);
/* Added by src/mt/io, for converted files (model.gguf): the weight format
 * the file was written in, "f32", "f16", "bf16" or "int8"; NULL for an HF
 * checkpoint. In a converted file every 2-D tensor has that format (int8:
 * MT_DTYPE_I8) and every 1-D tensor is f32. */
const char *mt_checkpoint_weights(const mt_checkpoint *ck);
/* Added by src/mt/io, for converted files: the dtype of the embedding of
 * the checkpoint the file was converted from (MT_DTYPE_F32, MT_DTYPE_F16 or
 * MT_DTYPE_BF16), which decides the rounding of the position table as it
 * does for that checkpoint; -1 for an HF checkpoint (use the embedding's own
 * dtype) and for files of format 2, which assume the stored dtype. */
int mt_checkpoint_source_dtype(const mt_checkpoint *ck);
/* The per-row scales of an MT_DTYPE_I8 tensor: its "<name>.scale" tensor,
 * f32 of shape [t->shape[0]], finite and >= 0 (checked at open); NULL for
 * any other tensor. Dequantized weight = q * scale[row] (quant.h). */
const mt_tensor *mt_checkpoint_scale(const mt_checkpoint *ck, const mt_tensor *t);

/* Converts n elements (f32/f16/bf16) to float; errors if n != element count. */
stts_status mt_tensor_to_f32(const mt_tensor *t, float *dst, size_t n, stts_error *err);

/* Added by src/mt/io. Bytes per element of a dtype (0 for MT_DTYPE_OTHER;
 * the tensor's nbytes / numel gives it for any tensor). */
size_t mt_dtype_size(mt_dtype d);
const char *mt_dtype_name(mt_dtype d); /* "f32", "f16", "bf16", "i64", "other" */
/* Checks that t exists with this dtype class and shape (ndim entries of
 * shape); the error names the tensor, and what was expected and found.
 * Pass ck and name so a missing tensor gets a clear message too. */
stts_status mt_checkpoint_expect(const mt_checkpoint *ck, const char *name, int ndim, const int64_t *shape,
                                 const mt_tensor **out, stts_error *err);

/* Thread safety: a checkpoint is immutable after open; any number of threads
 * may call the lookup and conversion functions on it concurrently. */

#endif
