/* pickle.h - a minimal, safe pickle VM for the state dicts torch.save
 * writes (protocol 2; the few protocol 3/4 opcodes that are harmless are
 * accepted too). It builds plain values (None, bool, int, float, str/bytes,
 * tuple, list, dict) and exactly three kinds of objects through an
 * allow-list of globals: collections.OrderedDict, storages (torch.*Storage
 * via BINPERSID persistent ids) and tensors (torch._utils._rebuild_tensor_v2
 * and _rebuild_parameter). Any other global or opcode is an error; nothing
 * is ever executed. Internal to src/mt/io. */
#ifndef MT_IO_PICKLE_H
#define MT_IO_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "stts_common.h"

typedef enum {
    PV_NONE, PV_BOOL, PV_INT, PV_FLOAT, PV_STR, PV_BYTES, PV_TUPLE, PV_LIST, PV_DICT,
    PV_GLOBAL, PV_STORAGE, PV_TENSOR
} pv_kind;

typedef struct pv pv;
struct pv {
    pv_kind kind;
    int64_t i;              /* PV_INT, PV_BOOL; PV_GLOBAL: which global */
    double f;               /* PV_FLOAT */
    const char *s;          /* PV_STR/PV_BYTES: points into the pickle bytes */
    size_t len;
    pv **items;             /* tuple/list items; dict: key0, val0, key1, val1, ... */
    size_t n, cap;
    /* PV_STORAGE (from a persistent id, and PV_GLOBAL of a storage type) */
    mt_dtype dtype;
    const char *dtype_name; /* "float32", "float16", ... */
    size_t elsize;
    const char *key;        /* storage key ("0", "1", ...), points into the pickle */
    size_t key_len;
    int64_t numel;
    /* PV_TENSOR */
    pv *storage;
    int64_t offset;
    int ndim;
    int64_t shape[4], stride[4];
};

typedef struct mtio_pickle mtio_pickle;

/* Runs the pickle in buf[0..n); on success *root is the unpickled object,
 * valid until mtio_pickle_free (strings point into buf, which must outlive
 * it). label names the file in errors. */
stts_status mtio_pickle_load(const unsigned char *buf, size_t n, const char *label, mtio_pickle **out, pv **root,
                             stts_error *err);
void mtio_pickle_free(mtio_pickle *p);

#endif
