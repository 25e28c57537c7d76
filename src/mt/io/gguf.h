/* gguf.h - the constants of stream-tts's converted model file (model.gguf,
 * a GGUF version 3 container; docs/MODEL-FILES.md), shared by its reader
 * (gguf.c) and its writer (convert.c). Not used outside src/mt/io. */
#ifndef MT_IO_GGUF_H
#define MT_IO_GGUF_H

#include <stddef.h>
#include <stdint.h>

#define MTIO_GGUF_FILE "model.gguf"
#define MTIO_GGUF_VERSION 3u
/* Our own layout version inside the container: bump it whenever what a
 * tensor means changes (names, scales, rounding rule), so an old file is
 * refused with "re-run stream-tts convert" instead of misread. */
/* 3: as 2, plus MTIO_KEY_SOURCE_DTYPE (required), which the position
 * rounding follows (a converted file computes what its HF directory
 * computes). 2 (still read): int8, bf16 and f16 matrices in quant.h's
 * interleaved layout; the source dtype is assumed to be the stored
 * embedding's (f32 for int8). 1 (row-major throughout) is no longer read:
 * its files differ from 2 only in byte order, so a corrupted version field
 * could not be told from a real one. */
#define MTIO_FORMAT_VERSION 3u
#define MTIO_FORMAT_VERSION_MIN 2u
/* Every tensor starts on a 4096-byte boundary of the file (page-aligned on
 * x86 and most Linux arm64 systems; SIMD loads never straddle a page). The
 * writer has used no other value, so the reader requires it: a corrupted
 * alignment would otherwise shift every tensor. */
#define MTIO_GGUF_ALIGNMENT 4096u
#define MTIO_GGUF_ARCH "m2m_100"

/* Metadata keys (GGUF key-value pairs). */
#define MTIO_KEY_ARCH "general.architecture"          /* string "m2m_100" */
#define MTIO_KEY_ALIGNMENT "general.alignment"        /* uint32 */
#define MTIO_KEY_FORMAT_VERSION "stts.format_version" /* uint32 MTIO_FORMAT_VERSION */
#define MTIO_KEY_WEIGHTS "stts.weights"               /* string "f32" | "f16" | "bf16" | "int8" */
#define MTIO_KEY_CONFIG_SIZE "stts.source.config_size" /* uint64: bytes of config.json */
#define MTIO_KEY_CONFIG_HASH "stts.source.config_fnv1a64" /* uint64: FNV-1a 64 of config.json */
/* string "f32" | "f16" | "bf16" (format 3): the dtype of the source
 * checkpoint's embedding, the one the HF directory's model code rounds its
 * sinusoidal positions to (transformers computes in the checkpoint's dtype) */
#define MTIO_KEY_SOURCE_DTYPE "stts.source.dtype"

/* GGUF metadata value types (spec: gguf_metadata_value_type). */
enum {
    MTIO_GV_U8 = 0, MTIO_GV_I8, MTIO_GV_U16, MTIO_GV_I16, MTIO_GV_U32, MTIO_GV_I32, MTIO_GV_F32, MTIO_GV_BOOL,
    MTIO_GV_STRING, MTIO_GV_ARRAY, MTIO_GV_U64, MTIO_GV_I64, MTIO_GV_F64
};

/* GGML tensor types this reader accepts (spec: ggml_type ids). */
#define MTIO_GT_F32 0u
#define MTIO_GT_F16 1u
#define MTIO_GT_I8 24u
#define MTIO_GT_BF16 30u

/* FNV-1a 64 of a byte string: ties model.gguf to the config.json it was
 * converted with (catches a mismatched pair, not an attacker). */
static inline uint64_t mtio_fnv1a64(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

#endif
