/* convert.h - `stream-tts convert`'s library half: an HF model directory (or
 * an already converted one) to a directory holding model.gguf in one weight
 * format plus config.json, generation_config.json and
 * sentencepiece.bpe.model, loadable by mt_checkpoint_open without any
 * conversion (docs/MODEL-FILES.md).
 *
 * Every output file is written under a temporary name in the output
 * directory, fsync'ed, then renamed over the old one, so a process that has
 * the old model.gguf mapped keeps a valid mapping and a crash leaves either
 * the old or the new file, never a half-written one. */
#ifndef MT_IO_CONVERT_H
#define MT_IO_CONVERT_H

#include <stddef.h>
#include <stdint.h>

#include "stts_common.h"

/* Called after each tensor is written (done of total) and once per
 * finished phase with tensor NULL; for progress output only. */
typedef void (*mt_convert_progress_fn)(void *user, size_t done, size_t total, const char *tensor);

typedef struct {
    const char *weights;            /* "int8", "bf16", "f16" or "f32" */
    mt_convert_progress_fn progress; /* may be NULL */
    void *user;
} mt_convert_params;

typedef struct {
    size_t tensors_in;      /* tensors in the source checkpoint */
    size_t tensors_out;     /* tensors in model.gguf (int8 scales included) */
    size_t quantized;       /* 2-D tensors written in the requested format */
    size_t tied_dropped;    /* byte-identical copies of the shared embedding left out */
    size_t skipped;         /* non-float tensors (integer buffers) left out */
    uint64_t file_bytes;    /* size of model.gguf */
} mt_convert_stats;

/* 1 if s names a weight format ("int8", "bf16", "f16", "f32"). */
int mt_convert_weights_valid(const char *s);

/* Converts model_dir into out_dir (created if absent; its parent must
 * exist). out_dir may equal model_dir: the new files replace the old ones by
 * rename, and model.gguf then shadows the HF weights file (still there).
 * On failure no temporary file is left and the old files are untouched.
 * stats may be NULL. */
stts_status mt_convert_model(const char *model_dir, const char *out_dir, const mt_convert_params *params,
                             mt_convert_stats *stats, stts_error *err);

/* The f32 -> f16 rounding of converted files (nearest, ties to even;
 * overflow to inf; NaN stays NaN), exposed for tests. */
uint16_t mt_convert_f32_to_f16(float f);

#endif
