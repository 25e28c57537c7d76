/* convert.c - writer of model.gguf (see convert.h, gguf.h and
 * docs/MODEL-FILES.md): plans the output tensors from a source checkpoint,
 * writes header, metadata, tensor infos and page-aligned data row by row
 * (the working set is one row, not one tensor), then the config and
 * tokenizer files, each to a temporary file that is fsync'ed and renamed. */
#define _POSIX_C_SOURCE 200809L
#include "io/convert.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "config.h"
#include "io/gguf.h"
#include "io/io_util.h"
#include "quant.h"
#include "stts_compat.h"

#define MAX_NAME 64 /* GGUF's limit on tensor names */
#define WBUF (1u << 20)

int mt_convert_weights_valid(const char *s) {
    return s && (!strcmp(s, "int8") || !strcmp(s, "bf16") || !strcmp(s, "f16") || !strcmp(s, "f32"));
}

/* Nearest-even f32 -> IEEE half. Subnormal halves: adding 0.5 (as a float)
 * lines the half's subnormal bits up with the float's low mantissa, so the
 * FPU does the rounding. */
uint16_t mt_convert_f32_to_f16(float in) {
    uint32_t f;
    memcpy(&f, &in, 4);
    uint32_t sign = (f >> 16) & 0x8000u;
    f &= 0x7fffffffu;
    if (f > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);       /* NaN */
    if (f >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);      /* >= 65520 rounds to inf */
    if (f < 0x38800000u) {                                        /* below 2^-14: half subnormal */
        float a, half = 0.5f;
        memcpy(&a, &f, 4);
        a += half;
        uint32_t u;
        memcpy(&u, &a, 4);
        return (uint16_t)(sign | (u - 0x3f000000u));
    }
    uint32_t odd = (f >> 13) & 1u;
    f += 0xc8000000u + 0xfffu + odd; /* rebias exponent (-112 << 23) and round */
    return (uint16_t)(sign | (f >> 13));
}

typedef enum { K_COPY, K_F32, K_F16, K_BF16, K_I8, K_SCALE } kind;

typedef struct {
    const char *name; /* points at the source tensor's name, or owned (scales) */
    char *owned;
    const mt_tensor *src, *src_scale; /* src_scale: the scales of an int8 source */
    kind k;
    uint32_t gtype;
    int ndim;
    int64_t shape[4];
    int64_t rows, cols;
    uint64_t nbytes, offset;
} plan;

/* ---- buffered writer with errno-aware errors ---- */

typedef struct {
    int fd;
    const char *path;
    unsigned char *buf;
    size_t n;
    uint64_t written;
    stts_error *err;
} wr;

static stts_status write_err(const char *path, int e, uint64_t done, stts_error *err) {
    if (e == ENOSPC || e == EDQUOT || e == EFBIG)
        return stts_error_set(err, STTS_ERR_IO,
                              "%s: %s after %llu bytes (%s); free space (the converted model needs about the "
                              "size of its weights) and re-run; the partial file was removed",
                              path, e == EFBIG ? "file too large for this file system or limit" : "disk full",
                              (unsigned long long)done, strerror(e));
    return stts_error_set(err, STTS_ERR_IO, "%s: write failed after %llu bytes: %s; the partial file was removed",
                          path, (unsigned long long)done, strerror(e));
}

static stts_status wr_flush(wr *w) {
    size_t off = 0;
    while (off < w->n) {
        ssize_t r = write(w->fd, w->buf + off, w->n - off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return write_err(w->path, r < 0 ? errno : ENOSPC, w->written + off, w->err);
        off += (size_t)r;
    }
    w->written += w->n;
    w->n = 0;
    return STTS_OK;
}

static stts_status wr_put(wr *w, const void *p, size_t k) {
    const unsigned char *b = p;
    while (k) {
        size_t c = WBUF - w->n < k ? WBUF - w->n : k;
        memcpy(w->buf + w->n, b, c);
        w->n += c;
        b += c;
        k -= c;
        if (w->n == WBUF) {
            stts_status s = wr_flush(w);
            if (s) return s;
        }
    }
    return STTS_OK;
}

static stts_status wr_u32(wr *w, uint32_t v) {
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    return wr_put(w, b, 4);
}

static stts_status wr_u64(wr *w, uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    return wr_put(w, b, 8);
}

static stts_status wr_str(wr *w, const char *s) {
    stts_status st = wr_u64(w, strlen(s));
    return st ? st : wr_put(w, s, strlen(s));
}

static stts_status wr_zeros(wr *w, uint64_t k) {
    static const unsigned char z[4096];
    while (k) {
        size_t c = k > sizeof z ? sizeof z : (size_t)k;
        stts_status s = wr_put(w, z, c);
        if (s) return s;
        k -= c;
    }
    return STTS_OK;
}

static uint64_t wr_pos(const wr *w) { return w->written + w->n; }

/* ---- temporary files, renamed into place at the end ---- */

typedef struct {
    char *tmp, *final;
} staged;

static char *tmp_name(const char *dir, const char *name) {
    size_t k = strlen(name) + 48;
    char *leaf = malloc(k);
    if (!leaf) return NULL;
    snprintf(leaf, k, ".%s.%ld.tmp", name, (long)getpid());
    char *p = mtio_path_join(dir, leaf);
    free(leaf);
    return p;
}

static stts_status open_tmp(const char *path, int *fd, stts_error *err) {
    *fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (*fd < 0)
        return stts_error_set(err, STTS_ERR_IO, "%s: cannot create: %s (is the output directory writable?)", path,
                              strerror(errno));
    return STTS_OK;
}

static stts_status sync_close(int fd, const char *path, stts_error *err) {
    int r = fsync(fd);
    int e = errno;
    if (close(fd) != 0 && r == 0) {
        r = -1;
        e = errno;
    }
    if (r != 0) return write_err(path, e, 0, err);
    return STTS_OK;
}

/* Writes bytes to a staged temp file (config.json, tokenizer). */
static stts_status stage_bytes(const char *tmp, const void *data, size_t n, stts_error *err) {
    int fd;
    stts_status s = open_tmp(tmp, &fd, err);
    if (s) return s;
    const unsigned char *p = data;
    size_t off = 0;
    while (off < n) {
        ssize_t r = write(fd, p + off, n - off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : ENOSPC;
            close(fd);
            return write_err(tmp, e, off, err);
        }
        off += (size_t)r;
    }
    return sync_close(fd, tmp, err);
}

/* ---- planning ---- */

static int is_emb_name(const char *n) {
    static const char *const names[] = {"model.shared.weight", "model.encoder.embed_tokens.weight",
                                        "model.decoder.embed_tokens.weight", "lm_head.weight"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        if (!strcmp(n, names[i])) return 1;
        if (!strncmp(names[i], "model.", 6) && !strcmp(n, names[i] + 6)) return 1;
    }
    return 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The tensor an int8 source's "<name>.scale" belongs to, or NULL. */
static const mt_tensor *scale_owner(const mt_checkpoint *ck, const mt_tensor *t) {
    if (!ends_with(t->name, MT_QUANT_SCALE_SUFFIX)) return NULL;
    size_t n = strlen(t->name) - strlen(MT_QUANT_SCALE_SUFFIX);
    char buf[MAX_NAME * 4 + 1];
    if (n >= sizeof buf) return NULL;
    memcpy(buf, t->name, n);
    buf[n] = '\0';
    const mt_tensor *o = mt_checkpoint_find(ck, buf);
    return o && o->dtype == MT_DTYPE_I8 ? o : NULL;
}

static int same_bytes(const mt_tensor *a, const mt_tensor *b) {
    if (a->dtype != b->dtype || a->ndim != b->ndim || a->nbytes != b->nbytes) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return memcmp(a->data, b->data, a->nbytes) == 0;
}

static uint64_t align_up(uint64_t x) { return (x + MTIO_GGUF_ALIGNMENT - 1) / MTIO_GGUF_ALIGNMENT * MTIO_GGUF_ALIGNMENT; }

/* What the converted file records as its source dtype (MTIO_KEY_SOURCE_DTYPE):
 * the HF checkpoint's embedding dtype, which its loader rounds the positions
 * to; a converted source passes its own on (a format 2 one: its stored
 * dtype, which is what it computes with; int8 counts as f32). */
static const char *source_dtype(const mt_checkpoint *ck, const mt_tensor *emb) {
    int d = mt_checkpoint_source_dtype(ck);
    if (d < 0) d = emb ? (int)emb->dtype : MT_DTYPE_F32;
    return d == MT_DTYPE_F16 ? "f16" : d == MT_DTYPE_BF16 ? "bf16" : "f32";
}

static stts_status make_plan(const mt_checkpoint *ck, const char *w, plan **out, size_t *nout, mt_convert_stats *st,
                             const char **src_dtype, stts_error *err) {
    size_t n = mt_checkpoint_count(ck);
    plan *p = calloc(2 * n + 1, sizeof *p);
    if (!p) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    *out = p;
    size_t k = 0;
    /* the embedding the loader uses: the first of its names present */
    const mt_tensor *emb = NULL;
    static const char *const emb_names[] = {"model.shared.weight", "model.encoder.embed_tokens.weight",
                                            "model.decoder.embed_tokens.weight", "lm_head.weight",
                                            "shared.weight", "encoder.embed_tokens.weight",
                                            "decoder.embed_tokens.weight"};
    for (size_t i = 0; i < sizeof emb_names / sizeof *emb_names && !emb; i++) emb = mt_checkpoint_find(ck, emb_names[i]);
    *src_dtype = source_dtype(ck, emb);
    for (size_t i = 0; i < n; i++) {
        const mt_tensor *t = mt_checkpoint_at(ck, i);
        if (scale_owner(ck, t)) continue; /* written with its int8 tensor */
        if (t->dtype != MT_DTYPE_F32 && t->dtype != MT_DTYPE_F16 && t->dtype != MT_DTYPE_BF16 &&
            t->dtype != MT_DTYPE_I8) {
            st->skipped++;
            continue;
        }
        /* tied copies of the embedding: the loader reads the first one only */
        if (emb && t != emb && is_emb_name(t->name) && same_bytes(t, emb)) {
            st->tied_dropped++;
            continue;
        }
        *nout = k;
        if (strlen(t->name) + (t->ndim == 2 ? strlen(MT_QUANT_SCALE_SUFFIX) : 0) > MAX_NAME) {
            return stts_error_set(err, STTS_ERR_UNSUPPORTED,
                                  "%s: tensor name \"%.200s\" is longer than GGUF's %d bytes (with \"%s\")",
                                  mt_checkpoint_path(ck), t->name, MAX_NAME, MT_QUANT_SCALE_SUFFIX);
        }
        plan *q = &p[k++];
        q->name = t->name;
        q->src = t;
        q->src_scale = t->dtype == MT_DTYPE_I8 ? mt_checkpoint_scale(ck, t) : NULL;
        if (t->ndim == 0) {
            q->ndim = 1;
            q->shape[0] = 1;
        } else {
            q->ndim = t->ndim;
            memcpy(q->shape, t->shape, sizeof q->shape);
        }
        q->cols = q->shape[q->ndim - 1];
        q->rows = q->cols ? t->numel / q->cols : 0;
        int two_d = t->ndim == 2;
        if (two_d) st->quantized++;
        if (two_d && !strcmp(w, "int8")) {
            q->k = t->dtype == MT_DTYPE_I8 ? K_COPY : K_I8;
            q->gtype = MTIO_GT_I8;
            q->nbytes = (uint64_t)t->numel;
            plan *sc = &p[k++];
            *nout = k;
            size_t ln = strlen(t->name) + sizeof MT_QUANT_SCALE_SUFFIX;
            sc->owned = malloc(ln);
            if (!sc->owned) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
            snprintf(sc->owned, ln, "%s%s", t->name, MT_QUANT_SCALE_SUFFIX);
            sc->name = sc->owned;
            sc->src = t;
            sc->src_scale = q->src_scale;
            sc->k = K_SCALE;
            sc->gtype = MTIO_GT_F32;
            sc->ndim = 1;
            sc->shape[0] = t->shape[0];
            sc->rows = 1;
            sc->cols = t->shape[0];
            sc->nbytes = (uint64_t)t->shape[0] * 4;
            continue;
        }
        mt_dtype want = !two_d || !strcmp(w, "f32") ? MT_DTYPE_F32 : !strcmp(w, "f16") ? MT_DTYPE_F16 : MT_DTYPE_BF16;
        q->gtype = want == MT_DTYPE_F32 ? MTIO_GT_F32 : want == MT_DTYPE_F16 ? MTIO_GT_F16 : MTIO_GT_BF16;
        q->k = t->dtype == want ? K_COPY : want == MT_DTYPE_F32 ? K_F32 : want == MT_DTYPE_F16 ? K_F16 : K_BF16;
        q->nbytes = (uint64_t)t->numel * mt_dtype_size(want);
    }
    *nout = k;
    uint64_t off = 0;
    for (size_t i = 0; i < k; i++) {
        p[i].offset = off;
        off = align_up(off + p[i].nbytes);
    }
    return STTS_OK;
}

/* One source row as f32 (an int8 source is dequantized with its scale; a
 * format 2 source's interleaved rows are gathered first, into tmp: a row
 * of the source's bytes). */
static stts_status src_row(const plan *q, int64_t r, float *dst, void *tmp, stts_error *err) {
    const mt_tensor *t = q->src;
    size_t esz = mt_dtype_size(t->dtype);
    const void *bytes = (const unsigned char *)t->data + (size_t)r * (size_t)q->cols * esz;
    if (r < t->il) {
        mt_il_row_get(t->data, (int)q->cols, esz, t->il, (int)r, tmp);
        bytes = tmp;
    }
    if (t->dtype == MT_DTYPE_I8) {
        float sc;
        memcpy(&sc, (const unsigned char *)q->src_scale->data + 4 * r, 4);
        const int8_t *qr = bytes;
        for (int64_t j = 0; j < q->cols; j++) dst[j] = (float)qr[j] * sc;
        return STTS_OK;
    }
    mt_tensor row = *t;
    row.data = bytes;
    row.ndim = 1;
    row.shape[0] = q->cols;
    row.numel = q->cols;
    row.nbytes = (size_t)q->cols * esz;
    row.il = 0;
    return mt_tensor_to_f32(&row, dst, (size_t)q->cols, err);
}

/* Writes one tensor's data. Matrices of int8, bf16 and f16 go in quant.h's
 * interleaved order where the shape allows (model file format 2): rows in
 * groups of 4 are gathered in rows4, then written as one group. obuf holds
 * 8 output rows (rows4, then the group) and a source row (src_row's tmp). */
static stts_status write_tensor(wr *w, const plan *q, float *row, void *obuf, float *scales, stts_error *err) {
    stts_status s = STTS_OK;
    if (q->k == K_SCALE) {
        if (q->src_scale) return wr_put(w, q->src_scale->data, q->src_scale->nbytes);
        return wr_put(w, scales, (size_t)q->cols * 4);
    }
    const size_t es = q->gtype == MTIO_GT_I8 ? 1 : q->gtype == MTIO_GT_F32 ? 4 : 2, K = (size_t)q->cols;
    const int il = q->ndim == 2 && es < 4 && q->rows <= INT32_MAX ? mt_il_rows((int)K, es, (int)q->rows) : 0;
    if (q->k == K_COPY && q->src->il == il) return wr_put(w, q->src->data, q->src->nbytes);
    char *rows4 = obuf, *grp = rows4 + 4 * K * es, *tmp = grp + 4 * K * es;
    for (int64_t r = 0; r < q->rows && !s; r++) {
        char *out = r < il ? rows4 + (size_t)(r & 3) * K * es : rows4;
        if (q->k == K_COPY) { /* the same format, another byte order */
            mt_il_row_get(q->src->data, (int)K, es, q->src->il, (int)r, out);
        } else {
            if ((s = src_row(q, r, row, tmp, err))) return s;
            switch (q->k) {
            case K_F32: memcpy(out, row, K * 4); break;
            case K_F16:
                for (size_t j = 0; j < K; j++) ((uint16_t *)(void *)out)[j] = mt_convert_f32_to_f16(row[j]);
                break;
            case K_BF16:
                for (size_t j = 0; j < K; j++) ((uint16_t *)(void *)out)[j] = mt_f32_to_bf16(row[j]);
                break;
            case K_I8: scales[r] = mt_quantize_row_i8(row, K, (int8_t *)out); break;
            default: break;
            }
        }
        if (r >= il) s = wr_put(w, out, K * es);
        else if ((r & 3) == 3) {
            for (int i = 0; i < 4; i++) mt_il_row_put(grp, (int)K, es, 4, i, rows4 + (size_t)i * K * es);
            s = wr_put(w, grp, 4 * K * es);
        }
    }
    return s;
}

static stts_status write_gguf(const char *tmp, const plan *p, size_t np, const char *weights, const char *src_dtype,
                              uint64_t cfg_size, uint64_t cfg_hash, const mt_convert_params *prm,
                              uint64_t *file_bytes, stts_error *err) {
    /* the largest row and row count, for the scratch buffers */
    int64_t max_cols = 1, max_rows = 1;
    for (size_t i = 0; i < np; i++) {
        if (p[i].cols > max_cols) max_cols = p[i].cols;
        if (p[i].rows > max_rows) max_rows = p[i].rows;
    }
    int fd;
    stts_status s = open_tmp(tmp, &fd, err);
    if (s) return s;
    wr w = {fd, tmp, malloc(WBUF), 0, 0, err};
    float *row = malloc((size_t)max_cols * sizeof *row);
    void *obuf = malloc((size_t)max_cols * 36); /* 8 rows of up to 4 bytes a value and a source row (write_tensor) */
    float *scales = malloc((size_t)max_rows * sizeof *scales);
    if (!w.buf || !row || !obuf || !scales) {
        s = stts_error_set(err, STTS_ERR_NOMEM, "out of memory for conversion buffers");
        goto out;
    }
    /* header */
    const uint64_t nkv = 7;
    if ((s = wr_put(&w, "GGUF", 4)) || (s = wr_u32(&w, MTIO_GGUF_VERSION)) || (s = wr_u64(&w, np)) ||
        (s = wr_u64(&w, nkv)))
        goto out;
    if ((s = wr_str(&w, MTIO_KEY_ARCH)) || (s = wr_u32(&w, MTIO_GV_STRING)) || (s = wr_str(&w, MTIO_GGUF_ARCH)) ||
        (s = wr_str(&w, MTIO_KEY_ALIGNMENT)) || (s = wr_u32(&w, MTIO_GV_U32)) ||
        (s = wr_u32(&w, MTIO_GGUF_ALIGNMENT)) || (s = wr_str(&w, MTIO_KEY_FORMAT_VERSION)) ||
        (s = wr_u32(&w, MTIO_GV_U32)) || (s = wr_u32(&w, MTIO_FORMAT_VERSION)) || (s = wr_str(&w, MTIO_KEY_WEIGHTS)) ||
        (s = wr_u32(&w, MTIO_GV_STRING)) || (s = wr_str(&w, weights)) || (s = wr_str(&w, MTIO_KEY_CONFIG_SIZE)) ||
        (s = wr_u32(&w, MTIO_GV_U64)) || (s = wr_u64(&w, cfg_size)) || (s = wr_str(&w, MTIO_KEY_CONFIG_HASH)) ||
        (s = wr_u32(&w, MTIO_GV_U64)) || (s = wr_u64(&w, cfg_hash)) || (s = wr_str(&w, MTIO_KEY_SOURCE_DTYPE)) ||
        (s = wr_u32(&w, MTIO_GV_STRING)) || (s = wr_str(&w, src_dtype)))
        goto out;
    for (size_t i = 0; i < np; i++) {
        if ((s = wr_str(&w, p[i].name)) || (s = wr_u32(&w, (uint32_t)p[i].ndim))) goto out;
        for (int d = p[i].ndim - 1; d >= 0; d--) /* GGUF lists dimensions innermost first */
            if ((s = wr_u64(&w, (uint64_t)p[i].shape[d]))) goto out;
        if ((s = wr_u32(&w, p[i].gtype)) || (s = wr_u64(&w, p[i].offset))) goto out;
    }
    uint64_t data_start = align_up(wr_pos(&w));
    uint64_t total = data_start + (np ? p[np - 1].offset + p[np - 1].nbytes : 0);
    /* Reserve the whole file first: a full disk fails now, not after minutes. */
    int fe = stts_preallocate(fd, (off_t)total);   /* posix_fallocate; macOS has none */
    if (fe == ENOSPC || fe == EFBIG || fe == EDQUOT) {
        s = write_err(tmp, fe, 0, err);
        goto out;
    }
    if ((s = wr_zeros(&w, data_start - wr_pos(&w)))) goto out;
    for (size_t i = 0; i < np; i++) {
        if ((s = wr_zeros(&w, data_start + p[i].offset - wr_pos(&w)))) goto out;
        if ((s = write_tensor(&w, &p[i], row, obuf, scales, err))) goto out;
        if (prm->progress) prm->progress(prm->user, i + 1, np, p[i].name);
    }
    if ((s = wr_flush(&w))) goto out;
    if (wr_pos(&w) != total) {
        s = stts_error_set(err, STTS_ERR_INTERNAL, "%s: wrote %llu bytes, planned %llu", tmp,
                           (unsigned long long)wr_pos(&w), (unsigned long long)total);
        goto out;
    }
    *file_bytes = total;
out:
    free(w.buf);
    free(row);
    free(obuf);
    free(scales);
    if (s) {
        close(fd);
        return s;
    }
    return sync_close(fd, tmp, err);
}

static stts_status read_opt(const char *dir, const char *name, int required, char **data, size_t *n,
                            stts_error *err) {
    char *p = mtio_path_join(dir, name);
    if (!p) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    stts_status s = mtio_read_file(p, 256u << 20, data, n, err);
    if (s == STTS_ERR_NOT_FOUND && !required) {
        *data = NULL;
        s = STTS_OK;
    } else if (s == STTS_ERR_NOT_FOUND) {
        s = stts_error_set(err, s, "%s: missing (a model directory needs config.json, sentencepiece.bpe.model and "
                                   "the weights; scripts/fetch-model downloads one)",
                           p);
    }
    free(p);
    return s;
}

stts_status mt_convert_model(const char *model_dir, const char *out_dir, const mt_convert_params *params,
                             mt_convert_stats *stats, stts_error *err) {
    if (!model_dir || !out_dir || !params)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "mt_convert_model: NULL argument");
    if (!mt_convert_weights_valid(params->weights))
        return stts_error_set(err, STTS_ERR_INVALID_ARG,
                              "unknown weight format \"%s\": use int8, bf16, f16 or f32",
                              params->weights ? params->weights : "(null)");
    mt_convert_stats st0;
    memset(&st0, 0, sizeof st0);
    mt_config cfg;
    /* a valid config before minutes of work; it also says what is wrong with
     * the folder (missing, a file), which "not a model directory" did not */
    stts_status s = mt_config_load_dir(model_dir, &cfg, err);
    if (s) return s;
    enum { F_SPM, F_GEN, F_CFG, F_GGUF, NF };
    static const char *const names[NF] = {"sentencepiece.bpe.model", "generation_config.json", "config.json",
                                          MTIO_GGUF_FILE};
    char *data[3] = {NULL, NULL, NULL};
    size_t len[3] = {0, 0, 0};
    staged sg[NF];
    memset(sg, 0, sizeof sg);
    int created[NF] = {0};
    mt_checkpoint *ck = NULL;
    plan *p = NULL;
    size_t np = 0;
    const char *src_dtype = "f32";
    if ((s = read_opt(model_dir, names[F_SPM], 1, &data[F_SPM], &len[F_SPM], err)) ||
        (s = read_opt(model_dir, names[F_GEN], 0, &data[F_GEN], &len[F_GEN], err)) ||
        (s = read_opt(model_dir, names[F_CFG], 1, &data[F_CFG], &len[F_CFG], err)))
        goto out;
    if ((s = mt_checkpoint_open(model_dir, &ck, err))) goto out;
    st0.tensors_in = mt_checkpoint_count(ck);
    if ((s = make_plan(ck, params->weights, &p, &np, &st0, &src_dtype, err))) goto out;
    st0.tensors_out = np;
    if (mtio_is_dir(out_dir) < 0 && mkdir(out_dir, 0755) != 0) {
        s = stts_error_set(err, STTS_ERR_IO, "%s: cannot create the output directory: %s", out_dir,
                           strerror(errno));
        goto out;
    }
    if (mtio_is_dir(out_dir) != 1) {
        s = stts_error_set(err, STTS_ERR_IO, "%s: exists and is not a directory", out_dir);
        goto out;
    }
    for (int i = 0; i < NF; i++) {
        sg[i].tmp = tmp_name(out_dir, names[i]);
        sg[i].final = mtio_path_join(out_dir, names[i]);
        if (!sg[i].tmp || !sg[i].final) {
            s = stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    created[F_GGUF] = 1;
    if ((s = write_gguf(sg[F_GGUF].tmp, p, np, params->weights, src_dtype, len[F_CFG], mtio_fnv1a64(data[F_CFG], len[F_CFG]),
                        params, &st0.file_bytes, err)))
        goto out;
    for (int i = 0; i < 3; i++) {
        if (!data[i]) continue;
        created[i] = 1;
        if ((s = stage_bytes(sg[i].tmp, data[i], len[i], err))) goto out;
    }
    /* All written and synced: rename, model.gguf last (the config check
     * refuses a new config.json beside an old model.gguf if we die between). */
    for (int i = 0; i < NF; i++) {
        if (!created[i]) continue;
        if (rename(sg[i].tmp, sg[i].final) != 0) {
            s = stts_error_set(err, STTS_ERR_IO, "%s: cannot rename to %s: %s", sg[i].tmp, sg[i].final,
                               strerror(errno));
            goto out;
        }
        created[i] = 0;
    }
    /* a generation_config.json left from an older conversion would override the new config */
    if (!data[F_GEN] && mtio_is_dir(sg[F_GEN].final) == 0 && strcmp(model_dir, out_dir) != 0) unlink(sg[F_GEN].final);
    int dfd = open(out_dir, O_RDONLY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* make the renames durable */
        close(dfd);
    }
    if (stats) *stats = st0;
out:
    for (int i = 0; i < NF; i++) {
        if (created[i] && sg[i].tmp) unlink(sg[i].tmp);
        free(sg[i].tmp);
        free(sg[i].final);
    }
    for (size_t i = 0; p && i < np; i++) free(p[i].owned);
    free(p);
    if (ck) mt_checkpoint_close(ck);
    for (int i = 0; i < 3; i++) free(data[i]);
    return s;
}
