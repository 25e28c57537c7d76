/* gguf.c - reader of stream-tts's converted model file, model.gguf: a GGUF
 * version 3 container (header, metadata key-values, tensor infos, padding
 * to general.alignment, tensor data) holding the HF tensors under their HF
 * names in f32/f16/bf16, or int8 with an f32 "<name>.scale" per row
 * (quant.h). docs/MODEL-FILES.md describes every field.
 *
 * Untrusted bytes: every count, string length, type, dimension, offset and
 * size is checked against the buffer (with overflow checks) before
 * anything is allocated from it or handed out; the tensors point into the
 * caller's buffer (the mapping). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/checkpoint_internal.h"
#include "io/gguf.h"
#include "quant.h"

#define MAX_KV 1024            /* we write 6; a bound keeps the duplicate check cheap */
#define MAX_TENSORS (1u << 20) /* NLLB-3.3B has ~1.5k tensors (+ scales) */
#define MAX_NAME 256           /* GGUF's own limit is 64; HF names are < 80 */
#define MAX_STRING (1u << 20)
#define FIX "re-run stream-tts convert to write it again"

typedef struct {
    const unsigned char *p;
    size_t n, pos;
    const char *label;
    stts_error *err;
} rd;

static stts_status truncated(rd *r, const char *what) {
    return stts_error_set(r->err, STTS_ERR_FORMAT,
                          "%s: truncated: the file ends at byte %zu, inside %s (an interrupted copy or "
                          "conversion?); " FIX,
                          r->label, r->n, what);
}

static stts_status rd_bytes(rd *r, size_t k, const unsigned char **out, const char *what) {
    if (k > r->n - r->pos) return truncated(r, what);
    *out = r->p + r->pos;
    r->pos += k;
    return STTS_OK;
}

static stts_status rd_u32(rd *r, uint32_t *v, const char *what) {
    const unsigned char *b = NULL;
    stts_status s = rd_bytes(r, 4, &b, what);
    if (s) return s;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return STTS_OK;
}

static stts_status rd_u64(rd *r, uint64_t *v, const char *what) {
    const unsigned char *b = NULL;
    stts_status s = rd_bytes(r, 8, &b, what);
    if (s) return s;
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) x = x << 8 | b[i];
    *v = x;
    return STTS_OK;
}

/* gguf_string_t: u64 length + bytes (no NUL). */
static stts_status rd_str(rd *r, const char **s, size_t *len, size_t max, const char *what) {
    uint64_t n;
    stts_status st = rd_u64(r, &n, what);
    if (st) return st;
    if (n > r->n - r->pos) return truncated(r, what);
    if (n > max)
        return stts_error_set(r->err, STTS_ERR_FORMAT, "%s: %s is %llu bytes long (at most %zu allowed); " FIX,
                              r->label, what, (unsigned long long)n, max);
    *s = (const char *)r->p + r->pos;
    *len = (size_t)n;
    r->pos += (size_t)n;
    return STTS_OK;
}

static size_t scalar_size(uint32_t t) {
    switch (t) {
    case MTIO_GV_U8: case MTIO_GV_I8: case MTIO_GV_BOOL: return 1;
    case MTIO_GV_U16: case MTIO_GV_I16: return 2;
    case MTIO_GV_U32: case MTIO_GV_I32: case MTIO_GV_F32: return 4;
    case MTIO_GV_U64: case MTIO_GV_I64: case MTIO_GV_F64: return 8;
    default: return 0;
    }
}

static const char *value_type_name(uint32_t t) {
    static const char *const names[] = {"uint8", "int8",   "uint16", "int16",  "uint32", "int32", "float32",
                                        "bool",  "string", "array",  "uint64", "int64",  "float64"};
    return t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

/* Skips a value of type t (arrays of scalars or strings; nested arrays are
 * not written by us and refused). */
static stts_status skip_value(rd *r, uint32_t t, const char *key, int depth) {
    size_t sz = scalar_size(t);
    const unsigned char *b = NULL;
    if (sz) return rd_bytes(r, sz, &b, "a metadata value");
    if (t == MTIO_GV_STRING) {
        const char *s;
        size_t n;
        return rd_str(r, &s, &n, MAX_STRING, "a metadata string");
    }
    if (t == MTIO_GV_ARRAY && depth == 0) {
        uint32_t et;
        uint64_t count;
        stts_status s = rd_u32(r, &et, "a metadata array type");
        if (!s) s = rd_u64(r, &count, "a metadata array length");
        if (s) return s;
        size_t esz = scalar_size(et);
        if (!esz && et != MTIO_GV_STRING)
            return stts_error_set(r->err, STTS_ERR_FORMAT, "%s: metadata \"%.200s\" is an array of %s (%u); " FIX,
                                  r->label, key, value_type_name(et), et);
        /* each element takes at least 1 (scalar) or 8 (string) bytes */
        if (count > (r->n - r->pos) / (esz ? esz : 8)) return truncated(r, "a metadata array");
        if (esz) return rd_bytes(r, (size_t)count * esz, &b, "a metadata array");
        for (uint64_t i = 0; i < count; i++)
            if ((s = skip_value(r, et, key, 1))) return s;
        return STTS_OK;
    }
    return stts_error_set(r->err, STTS_ERR_FORMAT, "%s: metadata \"%.200s\" has unknown value type %u; " FIX,
                          r->label, key, t);
}

typedef struct {
    const char *name;
    size_t name_len;
    uint32_t type;
    int ndim;
    int64_t shape[4]; /* row-major, outermost first (GGUF's dims reversed) */
    uint64_t offset, nbytes;
} tinfo;

static int cmp_offset(const void *a, const void *b) {
    const tinfo *x = *(const tinfo *const *)a, *y = *(const tinfo *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static const char *weights_tensor_type(const char *w, uint32_t *type) {
    if (!strcmp(w, "f32")) *type = MTIO_GT_F32;
    else if (!strcmp(w, "f16")) *type = MTIO_GT_F16;
    else if (!strcmp(w, "bf16")) *type = MTIO_GT_BF16;
    else if (!strcmp(w, "int8")) *type = MTIO_GT_I8;
    else return NULL;
    return w;
}

/* Reads one expected key's value; type must be `want`. */
static stts_status key_type(rd *r, const char *key, uint32_t got, uint32_t want) {
    if (got == want) return STTS_OK;
    return stts_error_set(r->err, STTS_ERR_FORMAT, "%s: metadata \"%s\" is a %s, expected a %s; " FIX, r->label,
                          key, value_type_name(got), value_type_name(want));
}

stts_status mtio_parse_gguf(mt_checkpoint *ck, const void *buf, size_t n, const char *label, stts_error *err) {
    rd r = {buf, n, 0, label, err};
    const unsigned char *magic;
    uint32_t version;
    uint64_t nt, nkv;
    stts_status s;
    if (n < 4) return truncated(&r, "the 4-byte magic");
    if (memcmp(buf, "GGUF", 4) != 0)
        return stts_error_set(err, STTS_ERR_FORMAT,
                              "%s: not a GGUF file (the first bytes are not \"GGUF\"); " FIX, label);
    if ((s = rd_bytes(&r, 4, &magic, "the magic")) || (s = rd_u32(&r, &version, "the header (version)")))
        return s;
    if (version != MTIO_GGUF_VERSION)
        return stts_error_set(err, STTS_ERR_UNSUPPORTED,
                              "%s: GGUF version %u; this stream-tts reads version %u only; " FIX, label, version,
                              MTIO_GGUF_VERSION);
    if ((s = rd_u64(&r, &nt, "the header (tensor count)")) || (s = rd_u64(&r, &nkv, "the header (metadata count)")))
        return s;
    if (nkv > MAX_KV)
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: %llu metadata entries (at most %d); " FIX, label,
                              (unsigned long long)nkv, MAX_KV);
    /* a tensor info takes at least 8+1+4+8+4+8 bytes */
    if (nt > MAX_TENSORS || nt > (n - r.pos) / 33)
        return stts_error_set(err, STTS_ERR_FORMAT,
                              "%s: the header claims %llu tensors, more than the file can hold (truncated or corrupt); " FIX, label,
                              (unsigned long long)nt);

    const char *keys[MAX_KV];
    size_t key_lens[MAX_KV];
    const char *arch = NULL, *weights = NULL, *src_dtype = NULL;
    size_t arch_len = 0, weights_len = 0, src_dtype_len = 0;
    uint32_t alignment = 0, fmt = 0;
    int have_fmt = 0, have_align = 0, have_cfg_size = 0, have_cfg_hash = 0;
    uint64_t cfg_size = 0, cfg_hash = 0;
    for (uint64_t i = 0; i < nkv; i++) {
        const char *key;
        size_t klen;
        uint32_t t;
        if ((s = rd_str(&r, &key, &klen, MAX_NAME, "a metadata key"))) return s;
        if (klen == 0 || memchr(key, 0, klen))
            return stts_error_set(err, STTS_ERR_FORMAT, "%s: metadata key %llu is empty or holds a NUL byte; " FIX,
                                  label, (unsigned long long)i);
        for (uint64_t j = 0; j < i; j++)
            if (key_lens[j] == klen && memcmp(keys[j], key, klen) == 0)
                return stts_error_set(err, STTS_ERR_FORMAT, "%s: metadata key \"%.*s\" occurs twice; " FIX, label,
                                      (int)klen, key);
        keys[i] = key;
        key_lens[i] = klen;
        if ((s = rd_u32(&r, &t, "a metadata value type"))) return s;
        char k[MAX_NAME + 1];
        memcpy(k, key, klen);
        k[klen] = '\0';
        size_t start = r.pos;
        if ((s = skip_value(&r, t, k, 0))) return s;
        rd v = {r.p, r.pos, start, label, err}; /* the value's bytes, already bounds-checked */
        uint64_t x;
        if (!strcmp(k, MTIO_KEY_ARCH)) {
            if ((s = key_type(&r, k, t, MTIO_GV_STRING)) || (s = rd_str(&v, &arch, &arch_len, MAX_STRING, k)))
                return s;
        } else if (!strcmp(k, MTIO_KEY_WEIGHTS)) {
            if ((s = key_type(&r, k, t, MTIO_GV_STRING)) ||
                (s = rd_str(&v, &weights, &weights_len, MAX_STRING, k)))
                return s;
        } else if (!strcmp(k, MTIO_KEY_ALIGNMENT)) {
            if ((s = key_type(&r, k, t, MTIO_GV_U32)) || (s = rd_u32(&v, &alignment, k))) return s;
            have_align = 1;
        } else if (!strcmp(k, MTIO_KEY_SOURCE_DTYPE)) {
            if ((s = key_type(&r, k, t, MTIO_GV_STRING)) ||
                (s = rd_str(&v, &src_dtype, &src_dtype_len, MAX_STRING, k)))
                return s;
        } else if (!strcmp(k, MTIO_KEY_FORMAT_VERSION)) {
            if ((s = key_type(&r, k, t, MTIO_GV_U32)) || (s = rd_u32(&v, &fmt, k))) return s;
            have_fmt = 1;
        } else if (!strcmp(k, MTIO_KEY_CONFIG_SIZE)) {
            if ((s = key_type(&r, k, t, MTIO_GV_U64)) || (s = rd_u64(&v, &x, k))) return s;
            cfg_size = x;
            have_cfg_size = 1;
        } else if (!strcmp(k, MTIO_KEY_CONFIG_HASH)) {
            if ((s = key_type(&r, k, t, MTIO_GV_U64)) || (s = rd_u64(&v, &x, k))) return s;
            cfg_hash = x;
            have_cfg_hash = 1;
        }
    }
    /* Ours, and this version of ours, before the tensors are looked at. */
    if (!have_fmt)
        return stts_error_set(err, STTS_ERR_FORMAT,
                              "%s: a GGUF file, but not one written by stream-tts convert (no \"%s\"); run "
                              "stream-tts convert on the Hugging Face model directory",
                              label, MTIO_KEY_FORMAT_VERSION);
    if (fmt < MTIO_FORMAT_VERSION_MIN || fmt > MTIO_FORMAT_VERSION)
        return stts_error_set(err, STTS_ERR_UNSUPPORTED,
                              "%s: written by another version of stream-tts (model file format %u; this build "
                              "reads formats %u to %u); " FIX,
                              label, fmt, MTIO_FORMAT_VERSION_MIN, MTIO_FORMAT_VERSION);
    if (!arch || arch_len != strlen(MTIO_GGUF_ARCH) || memcmp(arch, MTIO_GGUF_ARCH, arch_len) != 0)
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: \"%s\" must be \"%s\" (got \"%.*s\"); " FIX, label,
                              MTIO_KEY_ARCH, MTIO_GGUF_ARCH, arch ? (int)(arch_len > 64 ? 64 : arch_len) : 6,
                              arch ? arch : "absent");
    char wtag[8] = "";
    uint32_t wtype = 0;
    if (weights && weights_len < sizeof wtag) {
        memcpy(wtag, weights, weights_len);
        wtag[weights_len] = '\0';
    }
    if (!weights || weights_len >= sizeof wtag || memchr(weights, 0, weights_len) || !weights_tensor_type(wtag, &wtype))
        return stts_error_set(err, STTS_ERR_FORMAT,
                              "%s: weight format tag \"%s\" is %s%.*s%s, expected f32, f16, bf16 or int8; " FIX,
                              label, MTIO_KEY_WEIGHTS, weights ? "\"" : "absent",
                              weights ? (int)(weights_len > 32 ? 32 : weights_len) : 0, weights ? weights : "",
                              weights ? "\"" : "");
    if (!have_cfg_size || !have_cfg_hash)
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: \"%s\" or \"%s\" is missing; " FIX, label,
                              MTIO_KEY_CONFIG_SIZE, MTIO_KEY_CONFIG_HASH);
    /* The writer has only ever used one alignment: any other value (GGUF's
     * default 32 when the key is absent) would shift every tensor. */
    if (!have_align || alignment != MTIO_GGUF_ALIGNMENT) {
        char got[32] = "absent";
        if (have_align) snprintf(got, sizeof got, "%u", alignment);
        return stts_error_set(err, STTS_ERR_FORMAT,
                              "%s: \"%s\" is %s, but stream-tts convert always writes %u (a corrupt header); " FIX,
                              label, MTIO_KEY_ALIGNMENT, got, MTIO_GGUF_ALIGNMENT);
    }
    /* Format 3 records the source dtype; format 2 files have no such key:
     * its presence or absence tells a corrupted version field. */
    int sdt = -1;
    if (src_dtype) {
        if (src_dtype_len == 3 && !memcmp(src_dtype, "f32", 3)) sdt = MT_DTYPE_F32;
        else if (src_dtype_len == 3 && !memcmp(src_dtype, "f16", 3)) sdt = MT_DTYPE_F16;
        else if (src_dtype_len == 4 && !memcmp(src_dtype, "bf16", 4)) sdt = MT_DTYPE_BF16;
        else
            return stts_error_set(err, STTS_ERR_FORMAT, "%s: \"%s\" is \"%.*s\", expected f32, f16 or bf16; " FIX,
                                  label, MTIO_KEY_SOURCE_DTYPE, (int)(src_dtype_len > 32 ? 32 : src_dtype_len),
                                  src_dtype);
    }
    if (fmt >= 3 && sdt < 0)
        return stts_error_set(err, STTS_ERR_FORMAT,
                              "%s: model file format %u without \"%s\" (a corrupt header); " FIX, label, fmt,
                              MTIO_KEY_SOURCE_DTYPE);
    if (fmt < 3 && sdt >= 0)
        return stts_error_set(err, STTS_ERR_FORMAT,
                              "%s: \"%s\" says format %u, whose files have no \"%s\" (a corrupt header); " FIX,
                              label, MTIO_KEY_FORMAT_VERSION, fmt, MTIO_KEY_SOURCE_DTYPE);
    /* every converted model has hundreds of tensors: 0 is a corrupt count */
    if (nt == 0)
        return stts_error_set(err, STTS_ERR_FORMAT,
                              "%s: the header claims 0 tensors (a corrupt header or an empty model); " FIX, label);

    tinfo *ti = calloc(nt ? (size_t)nt : 1, sizeof *ti);
    tinfo **by_off = calloc(nt ? (size_t)nt : 1, sizeof *by_off);
    if (!ti || !by_off) {
        free(ti);
        free(by_off);
        return stts_error_set(err, STTS_ERR_NOMEM, "%s: out of memory", label);
    }
    for (size_t i = 0; i < nt && !s; i++) {
        tinfo *t = &ti[i];
        uint32_t nd;
        uint64_t dims[4];
        if ((s = rd_str(&r, &t->name, &t->name_len, MAX_NAME, "a tensor name"))) break;
        if (t->name_len == 0 || memchr(t->name, 0, t->name_len)) {
            s = stts_error_set(err, STTS_ERR_FORMAT, "%s: tensor %zu has an empty name or one holding a NUL; " FIX,
                               label, i);
            break;
        }
        int nl = (int)t->name_len;
        if ((s = rd_u32(&r, &nd, "a tensor's dimension count"))) break;
        if (nd < 1 || nd > 4) {
            s = stts_error_set(err, STTS_ERR_FORMAT, "%s: tensor \"%.*s\" has %u dimensions (1..4 allowed); " FIX,
                               label, nl, t->name, nd);
            break;
        }
        t->ndim = (int)nd;
        for (uint32_t d = 0; d < nd && !s; d++) {
            if ((s = rd_u64(&r, &dims[d], "a tensor's dimensions"))) break;
            if (dims[d] == 0 || dims[d] > (uint64_t)INT64_MAX)
                s = stts_error_set(err, STTS_ERR_FORMAT, "%s: tensor \"%.*s\": dimension %u = %llu is out of range; " FIX,
                                   label, nl, t->name, d, (unsigned long long)dims[d]);
        }
        if (s) break;
        for (uint32_t d = 0; d < nd; d++) t->shape[nd - 1 - d] = (int64_t)dims[d]; /* innermost first on disk */
        if ((s = rd_u32(&r, &t->type, "a tensor's type")) || (s = rd_u64(&r, &t->offset, "a tensor's offset")))
            break;
        size_t esz = t->type == MTIO_GT_F32 ? 4 : t->type == MTIO_GT_F16 || t->type == MTIO_GT_BF16 ? 2
                     : t->type == MTIO_GT_I8 ? 1 : 0;
        if (!esz) {
            s = stts_error_set(err, STTS_ERR_UNSUPPORTED,
                               "%s: tensor \"%.*s\" has GGML type %u (F32=0, F16=1, I8=24, BF16=30 are read); " FIX,
                               label, nl, t->name, t->type);
            break;
        }
        if (t->type != MTIO_GT_F32 && t->type != wtype) {
            s = stts_error_set(err, STTS_ERR_FORMAT,
                               "%s: tensor \"%.*s\" has GGML type %u, which a \"%s\" file does not hold (wrong "
                               "format tag?); " FIX,
                               label, nl, t->name, t->type, wtag);
            break;
        }
        if (t->type == MTIO_GT_I8 && nd != 2) {
            s = stts_error_set(err, STTS_ERR_FORMAT, "%s: int8 tensor \"%.*s\" must be 2-D [out][in]; " FIX, label,
                               nl, t->name);
            break;
        }
        int64_t numel = mtio_numel(t->ndim, t->shape);
        if (numel < 0 || (uint64_t)numel > UINT64_MAX / esz) {
            s = stts_error_set(err, STTS_ERR_FORMAT, "%s: tensor \"%.*s\": its dimensions overflow; " FIX, label, nl,
                               t->name);
            break;
        }
        t->nbytes = (uint64_t)numel * esz;
        if (t->offset % alignment)
            s = stts_error_set(err, STTS_ERR_FORMAT,
                               "%s: tensor \"%.*s\": offset %llu is not a multiple of the alignment %u; " FIX, label,
                               nl, t->name, (unsigned long long)t->offset, alignment);
        by_off[i] = t;
    }
    size_t data_start = 0;
    if (!s) {
        uint64_t ds = ((uint64_t)r.pos + alignment - 1) / alignment * alignment;
        if (ds > n)
            s = truncated(&r, "the padding before the tensor data");
        else
            data_start = (size_t)ds;
    }
    uint64_t data_len = (uint64_t)n - data_start;
    for (size_t i = 0; i < nt && !s; i++) {
        const tinfo *t = &ti[i];
        if (t->offset > data_len || t->nbytes > data_len - t->offset)
            s = stts_error_set(err, STTS_ERR_FORMAT,
                               "%s: tensor \"%.*s\": bytes %llu..%llu of the data section, which has %llu bytes "
                               "(truncated file?); " FIX,
                               label, (int)t->name_len, t->name, (unsigned long long)t->offset,
                               (unsigned long long)(t->offset + t->nbytes), (unsigned long long)data_len);
    }
    if (!s && nt > 1) {
        qsort(by_off, (size_t)nt, sizeof *by_off, cmp_offset);
        for (size_t i = 1; i < nt && !s; i++)
            if (by_off[i - 1]->offset + by_off[i - 1]->nbytes > by_off[i]->offset)
                s = stts_error_set(err, STTS_ERR_FORMAT, "%s: tensors \"%.*s\" and \"%.*s\" overlap; " FIX, label,
                                   (int)by_off[i - 1]->name_len, by_off[i - 1]->name, (int)by_off[i]->name_len,
                                   by_off[i]->name);
    }
    /* The writer packs the tensors: the first at 0, each next one at the
     * first multiple of the alignment after the previous one's end, and the
     * file ends with the last. A header whose offsets or sizes say anything
     * else was not written by it (or was corrupted since). */
    uint64_t expect = 0;
    for (size_t i = 0; i < nt && !s; i++) {
        const tinfo *t = by_off[i];
        if (t->offset != expect)
            s = stts_error_set(err, STTS_ERR_FORMAT,
                               "%s: tensor \"%.*s\" starts at byte %llu of the data section, where stream-tts "
                               "convert puts the %s tensor at byte %llu (a corrupt header); " FIX,
                               label, (int)t->name_len, t->name, (unsigned long long)t->offset,
                               i ? "next" : "first", (unsigned long long)expect);
        uint64_t end = t->offset + t->nbytes;
        if (i + 1 == nt && !s && end != data_len)
            s = stts_error_set(err, STTS_ERR_FORMAT,
                               "%s: the data section has %llu bytes but its last tensor \"%.*s\" ends at byte "
                               "%llu (a corrupt header, or bytes appended to the file); " FIX,
                               label, (unsigned long long)data_len, (int)t->name_len, t->name,
                               (unsigned long long)end);
        expect = (end + alignment - 1) / alignment * alignment;
    }
    for (size_t i = 0; i < nt && !s; i++) {
        const tinfo *t = &ti[i];
        mt_dtype dt = t->type == MTIO_GT_F32 ? MT_DTYPE_F32 : t->type == MTIO_GT_F16 ? MT_DTYPE_F16
                      : t->type == MTIO_GT_BF16 ? MT_DTYPE_BF16 : MT_DTYPE_I8;
        const char *dn = t->type == MTIO_GT_F32 ? "F32" : t->type == MTIO_GT_F16 ? "F16"
                         : t->type == MTIO_GT_BF16 ? "BF16" : "I8";
        s = mtio_ck_add(ck, t->name, t->name_len, dt, dn, t->ndim, t->shape, mtio_numel(t->ndim, t->shape),
                        (const unsigned char *)buf + data_start + t->offset, (size_t)t->nbytes, err);
        /* format 2 writes int8, bf16 and f16 matrices interleaved where the
         * shape allows (the rows and columns fit an int: checked by the
         * model's shapes before any kernel reads them) */
        if (!s && dt != MT_DTYPE_F32 && t->ndim == 2 && t->shape[0] <= INT32_MAX &&
            t->shape[1] <= INT32_MAX)
            ck->tensors[ck->n - 1].il = mt_il_rows((int)t->shape[1], mt_dtype_size(dt), (int)t->shape[0]);
    }
    free(ti);
    free(by_off);
    if (s) return s;
    free(ck->weights);
    ck->weights = malloc(strlen(wtag) + 1);
    if (!ck->weights) return stts_error_set(err, STTS_ERR_NOMEM, "%s: out of memory", label);
    strcpy(ck->weights, wtag);
    ck->config_size = cfg_size;
    ck->config_hash = cfg_hash;
    ck->source_dtype = sdt;
    return STTS_OK;
}

stts_status mtio_gguf_check_scales(const mt_checkpoint *ck, const char *label, stts_error *err) {
    char name[MAX_NAME + sizeof MT_QUANT_SCALE_SUFFIX];
    for (size_t i = 0; i < ck->n; i++) {
        const mt_tensor *t = &ck->tensors[i];
        if (t->dtype != MT_DTYPE_I8) continue;
        snprintf(name, sizeof name, "%s" MT_QUANT_SCALE_SUFFIX, t->name);
        const mt_tensor *sc = mt_checkpoint_find(ck, name);
        if (!sc)
            return stts_error_set(err, STTS_ERR_FORMAT, "%s: int8 tensor \"%s\" has no scale tensor \"%s\"; " FIX,
                                  label, t->name, name);
        if (sc->dtype != MT_DTYPE_F32 || sc->ndim != 1 || sc->shape[0] != t->shape[0])
            return stts_error_set(err, STTS_ERR_FORMAT,
                                  "%s: scale tensor \"%s\" must be F32 of shape [%lld] (one per row of \"%s\"), "
                                  "found %s with %d dimension(s) [%lld...]; " FIX,
                                  label, name, (long long)t->shape[0], t->name, sc->dtype_name, sc->ndim,
                                  (long long)sc->shape[0]);
        for (int64_t k = 0; k < sc->numel; k++) {
            float f;
            memcpy(&f, (const unsigned char *)sc->data + 4 * k, 4);
            if (!(f >= 0.0f) || !isfinite(f))
                return stts_error_set(err, STTS_ERR_FORMAT,
                                      "%s: scale tensor \"%s\" row %lld is %g (scales are finite and >= 0); " FIX,
                                      label, name, (long long)k, (double)f);
        }
    }
    return STTS_OK;
}
