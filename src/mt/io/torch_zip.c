/* torch_zip.c - pytorch_model.bin reader: the zip archive torch.save writes
 * (since torch 1.6) holding <prefix>/data.pkl (the pickled state dict),
 * <prefix>/data/<key> (one raw little-endian storage per key),
 * <prefix>/byteorder and <prefix>/version.
 *
 * The zip layer reads the central directory (ZIP64 included: a 3.3B .bin is
 * ~17 GB) with bounds checks on every record, then each entry's local header;
 * entries are stored (torch's writer never compresses) or deflated (inflated
 * into owned memory, size-capped). The pickle layer (pickle.c) yields
 * tensors that are checked against their storage entry's real size;
 * contiguous tensors point into the mapped file, other layouts are copied. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "io/checkpoint_internal.h"
#include "io/pickle.h"

#define MAX_ENTRIES (1u << 20)
#define MAX_PKL_BYTES (256u << 20)

typedef struct {
    const char *name; /* points into the central directory (not NUL-terminated) */
    size_t name_len;
    const unsigned char *data; /* stored bytes, or inflated copy */
    uint64_t size;             /* uncompressed size */
    uint64_t csize;
    uint16_t method;
    uint32_t crc;
    int inflated;
} zentry;

typedef struct {
    const unsigned char *p;
    size_t n;
    const char *label;
    zentry *e;
    size_t ne;
    size_t *sorted; /* entry indices sorted by name */
} zip;

static uint64_t le(const unsigned char *p, int k) {
    uint64_t v = 0;
    for (int i = k - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static int name_cmp(const zentry *a, const char *name, size_t len) {
    size_t m = a->name_len < len ? a->name_len : len;
    int c = memcmp(a->name, name, m);
    if (c) return c;
    return a->name_len < len ? -1 : a->name_len > len ? 1 : 0;
}

static void sort_entries(const zentry *e, size_t *idx, size_t *tmp, size_t n) {
    if (n < 2) return;
    size_t h = n / 2;
    sort_entries(e, idx, tmp, h);
    sort_entries(e, idx + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = name_cmp(&e[idx[j]], e[idx[i]].name, e[idx[i]].name_len) < 0 ? idx[j++] : idx[i++];
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
}

static zentry *zip_find(const zip *z, const char *name, size_t len) {
    size_t lo = 0, hi = z->ne;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = name_cmp(&z->e[z->sorted[mid]], name, len);
        if (c == 0) return &z->e[z->sorted[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static stts_status zfail(const zip *z, stts_error *err, const char *what) {
    return stts_error_set(err, STTS_ERR_FORMAT, "%s: %s", z->label, what);
}

/* Finds the central directory (classic or ZIP64) and reads every entry. */
static stts_status zip_open(zip *z, stts_error *err) {
    const unsigned char *p = z->p;
    size_t n = z->n;
    if (n < 22 || memcmp(p, "PK", 2) != 0)
        return zfail(z, err, "not a zip archive (pytorch_model.bin files from torch < 1.6 use a legacy format: "
                             "re-save them with a newer torch, or use model.safetensors)");
    /* End of central directory: the last signature whose comment ends at EOF. */
    size_t eocd = SIZE_MAX;
    size_t lo = n > 22 + 65535 ? n - 22 - 65535 : 0;
    for (size_t i = n - 22 + 1; i-- > lo;) {
        if (le(p + i, 4) == 0x06054b50 && i + 22 + le(p + i + 20, 2) == n) {
            eocd = i;
            break;
        }
    }
    if (eocd == SIZE_MAX) return zfail(z, err, "no zip end-of-central-directory record (truncated download?); scripts/fetch-model downloads it "
                             "again");
    uint64_t count = le(p + eocd + 10, 2), cd_size = le(p + eocd + 12, 4), cd_off = le(p + eocd + 16, 4);
    if (eocd >= 20 && le(p + eocd - 20, 4) == 0x07064b50) { /* ZIP64 locator */
        uint64_t z64 = le(p + eocd - 20 + 8, 8);
        if (z64 > eocd - 20 || eocd - 20 - z64 < 56 || le(p + z64, 4) != 0x06064b50)
            return zfail(z, err, "bad ZIP64 end-of-central-directory record");
        count = le(p + z64 + 32, 8);
        cd_size = le(p + z64 + 40, 8);
        cd_off = le(p + z64 + 48, 8);
    }
    if (cd_off > n || cd_size > n - cd_off) return zfail(z, err, "central directory lies outside the file");
    if (count > MAX_ENTRIES || count > cd_size / 46) return zfail(z, err, "implausible zip entry count");
    z->e = calloc(count ? count : 1, sizeof *z->e);
    z->sorted = malloc((count ? count : 1) * sizeof *z->sorted);
    size_t *tmp = malloc((count ? count : 1) * sizeof *tmp);
    if (!z->e || !z->sorted || !tmp) {
        free(tmp);
        return stts_error_set(err, STTS_ERR_NOMEM, "%s: out of memory", z->label);
    }
    const unsigned char *c = p + cd_off, *end = p + cd_off + cd_size;
    for (uint64_t k = 0; k < count; k++) {
        if (end - c < 46 || le(c, 4) != 0x02014b50) {
            free(tmp);
            return zfail(z, err, "corrupt central directory entry");
        }
        zentry *e = &z->e[k];
        uint16_t flags = (uint16_t)le(c + 8, 2);
        e->method = (uint16_t)le(c + 10, 2);
        e->crc = (uint32_t)le(c + 16, 4);
        e->csize = le(c + 20, 4);
        e->size = le(c + 24, 4);
        size_t nl = (size_t)le(c + 28, 2), xl = (size_t)le(c + 30, 2), cl = (size_t)le(c + 32, 2);
        uint64_t loff = le(c + 42, 4);
        if ((size_t)(end - c) - 46 < nl + xl + cl) {
            free(tmp);
            return zfail(z, err, "central directory entry runs past the directory");
        }
        e->name = (const char *)c + 46;
        e->name_len = nl;
        /* ZIP64 extended information: 64-bit sizes/offset for fields set to ~0. */
        const unsigned char *x = c + 46 + nl, *xend = x + xl;
        while (xend - x >= 4) {
            uint16_t id = (uint16_t)le(x, 2), len = (uint16_t)le(x + 2, 2);
            if (xend - x - 4 < len) break;
            if (id == 0x0001) {
                const unsigned char *q = x + 4, *qe = x + 4 + len;
                if (e->size == 0xffffffffu && qe - q >= 8) e->size = le(q, 8), q += 8;
                if (e->csize == 0xffffffffu && qe - q >= 8) e->csize = le(q, 8), q += 8;
                if (loff == 0xffffffffu && qe - q >= 8) loff = le(q, 8), q += 8;
            }
            x += 4 + len;
        }
        c += 46 + nl + xl + cl;
        if (flags & 1) {
            free(tmp);
            return zfail(z, err, "encrypted zip entries are not supported");
        }
        if (loff > n || n - loff < 30 || le(p + loff, 4) != 0x04034b50) {
            free(tmp);
            return zfail(z, err, "zip local header lies outside the file or is corrupt");
        }
        size_t lnl = (size_t)le(p + loff + 26, 2), lxl = (size_t)le(p + loff + 28, 2);
        uint64_t data_off = loff + 30 + lnl + lxl;
        if (lnl != nl || data_off > n || memcmp(p + loff + 30, e->name, nl) != 0) {
            free(tmp);
            return zfail(z, err, "zip local header does not match the central directory");
        }
        if (e->csize > n - data_off) {
            char msg[160];
            snprintf(msg, sizeof msg, "zip entry of %llu bytes runs past the end of the file (truncated download?); "
                     "scripts/fetch-model downloads it again",
                     (unsigned long long)e->csize);
            free(tmp);
            return zfail(z, err, msg);
        }
        e->data = p + data_off;
        if (e->method == 0 && e->csize != e->size) {
            free(tmp);
            return zfail(z, err, "stored zip entry with different compressed and uncompressed sizes");
        }
        if (e->method != 0 && e->method != 8) {
            free(tmp);
            return zfail(z, err, "zip entry uses a compression method other than stored or deflate");
        }
        z->sorted[k] = (size_t)k;
    }
    z->ne = (size_t)count;
    sort_entries(z->e, z->sorted, tmp, z->ne);
    free(tmp);
    return STTS_OK;
}

static uint32_t crc_of(const unsigned char *p, uint64_t n) {
    uLong c = crc32(0L, Z_NULL, 0);
    while (n) {
        uInt k = (uInt)(n > (1u << 30) ? (1u << 30) : n);
        c = crc32(c, p, k);
        p += k;
        n -= k;
    }
    return (uint32_t)c;
}

/* Makes e->data the uncompressed bytes: deflated entries are inflated into a
 * buffer the checkpoint owns (deflate cannot exceed ~1032:1). */
static stts_status entry_bytes(mt_checkpoint *ck, const zip *z, zentry *e, stts_error *err) {
    if (e->method == 0 || e->inflated) return STTS_OK;
    if (e->size > e->csize * 1032 + 1024 || e->size > SIZE_MAX - 1)
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: entry %.*s claims an impossible inflated size", z->label,
                              (int)(e->name_len > 200 ? 200 : e->name_len), e->name);
    unsigned char *out = malloc((size_t)e->size + 1);
    if (!out) return stts_error_set(err, STTS_ERR_NOMEM, "%s: out of memory inflating an entry", z->label);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
        free(out);
        return stts_error_set(err, STTS_ERR_INTERNAL, "%s: zlib init failed", z->label);
    }
    /* zlib counts in uInt: feed and drain in chunks so >4 GB entries work. */
    const unsigned char *in = e->data;
    uint64_t in_left = e->csize, out_done = 0;
    int rc = Z_OK;
    while (rc == Z_OK) {
        if (zs.avail_in == 0 && in_left) {
            zs.next_in = (unsigned char *)in;
            zs.avail_in = (uInt)(in_left > (1u << 30) ? (1u << 30) : in_left);
            in += zs.avail_in;
            in_left -= zs.avail_in;
        }
        uint64_t room = e->size + 1 - out_done; /* one spare byte detects overlong data */
        zs.next_out = out + out_done;
        zs.avail_out = (uInt)(room > (1u << 30) ? (1u << 30) : room);
        uInt before = zs.avail_out;
        rc = inflate(&zs, Z_NO_FLUSH);
        out_done += before - zs.avail_out;
        if (rc == Z_BUF_ERROR && zs.avail_in == 0 && in_left == 0) break;
        if (rc == Z_OK && out_done > e->size) break;
    }
    inflateEnd(&zs);
    if (rc != Z_STREAM_END || out_done != e->size || crc_of(out, e->size) != e->crc) {
        free(out);
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: entry %.*s does not inflate to its declared size",
                              z->label, (int)(e->name_len > 200 ? 200 : e->name_len), e->name);
    }
    stts_status s = mtio_ck_keep(ck, out, (size_t)e->size, 0, err);
    if (s) return s;
    e->data = out;
    e->inflated = 1;
    return STTS_OK;
}

static int contiguous(const pv *t) {
    int64_t want = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != want) return 0;
        want *= t->shape[i];
    }
    return 1;
}

/* Copies a strided view into a new row-major buffer owned by ck. */
static stts_status gather(mt_checkpoint *ck, const pv *t, const unsigned char *base, size_t es, const void **out,
                          stts_error *err) {
    size_t nb = (size_t)t->numel * es;
    unsigned char *dst = malloc(nb ? nb : 1);
    if (!dst) return stts_error_set(err, STTS_ERR_NOMEM, "%s: out of memory copying a strided tensor", ck->path);
    int64_t idx[4] = {0, 0, 0, 0};
    for (int64_t k = 0; k < t->numel; k++) {
        int64_t off = t->offset;
        for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
        memcpy(dst + (size_t)k * es, base + (size_t)off * es, es);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
    stts_status s = mtio_ck_keep(ck, dst, nb, 0, err);
    if (s) return s;
    *out = dst;
    return STTS_OK;
}

static stts_status add_tensor(mt_checkpoint *ck, zip *z, const char *prefix, size_t plen, const pv *key,
                              const pv *t, stts_error *err) {
    int nlen = (int)(key->len > 200 ? 200 : key->len);
    const pv *st = t->storage;
    char ename[400];
    int m = snprintf(ename, sizeof ename, "%.*sdata/%.*s", (int)plen, prefix, (int)st->key_len, st->key);
    zentry *e = m > 0 && (size_t)m < sizeof ename ? zip_find(z, ename, (size_t)m) : NULL;
    if (!e)
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: tensor \"%.*s\": storage entry %s is missing from the zip",
                              z->label, nlen, key->s, ename);
    stts_status s = entry_bytes(ck, z, e, err);
    if (s) return s;
    if ((uint64_t)st->numel > e->size / st->elsize)
        return stts_error_set(err, STTS_ERR_FORMAT,
                              "%s: tensor \"%.*s\": storage %s holds %llu bytes, fewer than its %lld %s elements "
                              "(truncated?)",
                              z->label, nlen, key->s, ename, (unsigned long long)e->size, (long long)st->numel,
                              st->dtype_name);
    const void *data = e->data + (size_t)t->offset * st->elsize;
    if (t->numel && !contiguous(t) && (s = gather(ck, t, e->data, st->elsize, &data, err))) return s;
    if (!t->numel) data = e->data;
    return mtio_ck_add(ck, key->s, key->len, st->dtype, st->dtype_name, t->ndim, t->shape, t->numel, data,
                       (size_t)t->numel * st->elsize, err);
}

stts_status mtio_parse_torch_zip(mt_checkpoint *ck, const void *buf, size_t n, const char *label,
                                 stts_error *err) {
    zip z = {buf, n, label, NULL, 0, NULL};
    mtio_pickle *vm = NULL;
    pv *root = NULL;
    stts_status s = zip_open(&z, err);
    if (s) goto out;
    /* The archive prefix: the one top-level folder that holds data.pkl. */
    zentry *pkl = NULL;
    for (size_t i = 0; i < z.ne && !pkl; i++) {
        zentry *e = &z.e[i];
        const char *slash = memchr(e->name, '/', e->name_len);
        if (slash && (size_t)(e->name + e->name_len - slash) == 9 && memcmp(slash, "/data.pkl", 9) == 0) pkl = e;
    }
    if (!pkl) {
        s = zfail(&z, err, "no <archive>/data.pkl entry: not a torch.save checkpoint");
        goto out;
    }
    size_t plen = pkl->name_len - 8; /* "<prefix>/" */
    const char *prefix = pkl->name;
    if (plen > 200) {
        s = zfail(&z, err, "archive folder name too long");
        goto out;
    }
    char bname[256];
    snprintf(bname, sizeof bname, "%.*sbyteorder", (int)plen, prefix);
    zentry *bo = zip_find(&z, bname, strlen(bname));
    if (bo) {
        if ((s = entry_bytes(ck, &z, bo, err))) goto out;
        if (!(bo->size == 6 && memcmp(bo->data, "little", 6) == 0)) {
            s = stts_error_set(err, STTS_ERR_UNSUPPORTED, "%s: byteorder is not \"little\" (big-endian checkpoint)",
                               label);
            goto out;
        }
    }
    if (pkl->size > MAX_PKL_BYTES) {
        s = zfail(&z, err, "data.pkl is implausibly large");
        goto out;
    }
    if ((s = entry_bytes(ck, &z, pkl, err))) goto out;
    if (crc_of(pkl->data, pkl->size) != pkl->crc) {
        s = zfail(&z, err, "data.pkl fails its CRC check (corrupt download?)");
        goto out;
    }
    if ((s = mtio_pickle_load(pkl->data, (size_t)pkl->size, label, &vm, &root, err))) goto out;
    if (root->kind != PV_DICT) {
        s = zfail(&z, err, "data.pkl does not hold a dict (expected a flat state dict of tensors)");
        goto out;
    }
    for (size_t i = 0; i + 1 < root->n; i += 2) {
        const pv *k = root->items[i], *v = root->items[i + 1];
        if (k->kind != PV_STR || k->len == 0 || memchr(k->s, '\0', k->len)) {
            s = zfail(&z, err, "state dict key is not a non-empty string");
            goto out;
        }
        if (v->kind != PV_TENSOR) {
            s = stts_error_set(err, STTS_ERR_FORMAT, "%s: state dict entry \"%.*s\" is not a tensor", label,
                               (int)(k->len > 200 ? 200 : k->len), k->s);
            goto out;
        }
        if ((s = add_tensor(ck, &z, prefix, plen, k, v, err))) goto out;
    }
out:
    mtio_pickle_free(vm);
    free(z.e);
    free(z.sorted);
    return s;
}
