/* checkpoint_internal.h - what the checkpoint readers of src/mt/io share:
 * the mt_checkpoint handle (tensors, the regions they point into) and the
 * format parsers that fill it. Not used outside src/mt/io. */
#ifndef MT_IO_CHECKPOINT_INTERNAL_H
#define MT_IO_CHECKPOINT_INTERNAL_H

#include "checkpoint.h"

typedef struct {
    const void *data;
    size_t n;
    int mapped; /* 1: munmap on close; 0: free() on close */
} mtio_region;

struct mt_checkpoint {
    char *path;
    mtio_region *regions; /* mmaps and owned buffers the tensors point into */
    size_t nregions, cap_regions;
    mt_tensor *tensors;   /* names are owned (malloc'ed) by the handle */
    size_t n, cap;
    size_t *sorted;       /* tensor indices sorted by name, for mt_checkpoint_find */
    /* Converted files (model.gguf) only: the weight format tag ("f32",
     * "f16", "bf16", "int8"; NULL for HF checkpoints) and the size and
     * FNV-1a 64 of the config.json the file was converted with. */
    char *weights;
    uint64_t config_size, config_hash;
    /* The source's embedding dtype (MT_DTYPE_F32/F16/BF16) a format 3 file
     * records; -1 for HF checkpoints and older converted files. */
    int source_dtype;
};

mt_checkpoint *mtio_ck_new(const char *path);
/* Takes ownership of a region (mapped or malloc'ed); frees it on failure. */
stts_status mtio_ck_keep(mt_checkpoint *ck, const void *data, size_t n, int mapped, stts_error *err);
/* Appends a tensor (name copied; name_len bytes, no NUL needed). */
stts_status mtio_ck_add(mt_checkpoint *ck, const char *name, size_t name_len, mt_dtype dtype,
                        const char *dtype_name, int ndim, const int64_t *shape, int64_t numel, const void *data,
                        size_t nbytes, stts_error *err);
/* Builds the name index; a name that occurs twice is an error. */
stts_status mtio_ck_finish(mt_checkpoint *ck, const char *label, stts_error *err);

/* Format parsers: append the tensors of an in-memory image to ck; pointers
 * go into buf, which must outlive ck. label names the file in errors. */
stts_status mtio_parse_safetensors(mt_checkpoint *ck, const void *buf, size_t n, const char *label,
                                   stts_error *err);
/* model.gguf (gguf.c): also sets ck->weights and the config fields, and
 * checks every int8 tensor's "<name>.scale" once the names are indexed. */
stts_status mtio_parse_gguf(mt_checkpoint *ck, const void *buf, size_t n, const char *label, stts_error *err);
stts_status mtio_gguf_check_scales(const mt_checkpoint *ck, const char *label, stts_error *err);
stts_status mtio_parse_torch_zip(mt_checkpoint *ck, const void *buf, size_t n, const char *label,
                                 stts_error *err);

/* Overflow-checked numel of a shape; -1 when it does not fit in int64. */
int64_t mtio_numel(int ndim, const int64_t *shape);

/* The portable f16 widening (mt_tensor_to_f32 uses F16C where the CPU has
 * it); exposed so tests cover it on every machine. */
void mtio_f16_to_f32_scalar(const unsigned char *src, float *dst, size_t n);

#endif
