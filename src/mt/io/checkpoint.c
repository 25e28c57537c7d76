/* checkpoint.c - the mt_checkpoint handle: opening a model directory or file
 * (model.gguf written by stream-tts convert, model.safetensors,
 * model.safetensors.index.json + shards, or pytorch_model.bin), the tensor
 * table and name lookup. The formats themselves are parsed in gguf.c,
 * safetensors.c and torch_zip.c. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/checkpoint_internal.h"
#include "io/gguf.h"
#include "quant.h"
#include "io/io_util.h"

#define MAX_INDEX_JSON_BYTES (64u << 20)
#define MAX_SHARDS 4096

mt_checkpoint *mtio_ck_new(const char *path) {
    mt_checkpoint *ck = calloc(1, sizeof *ck);
    if (!ck) return NULL;
    ck->source_dtype = -1;
    ck->path = strdup(path ? path : "(memory)");
    if (!ck->path) {
        free(ck);
        return NULL;
    }
    return ck;
}

static void region_release(const mtio_region *r) {
    if (r->mapped)
        mtio_unmap(r->data, r->n);
    else
        free((void *)r->data);
}

stts_status mtio_ck_keep(mt_checkpoint *ck, const void *data, size_t n, int mapped, stts_error *err) {
    mtio_region r = {data, n, mapped};
    if (ck->nregions == ck->cap_regions) {
        size_t cap = ck->cap_regions ? ck->cap_regions * 2 : 4;
        mtio_region *p = realloc(ck->regions, cap * sizeof *p);
        if (!p) {
            region_release(&r);
            return stts_error_set(err, STTS_ERR_NOMEM, "%s: out of memory", ck->path);
        }
        ck->regions = p;
        ck->cap_regions = cap;
    }
    ck->regions[ck->nregions++] = r;
    return STTS_OK;
}

int64_t mtio_numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] != 0 && n > INT64_MAX / shape[i]) return -1;
        n *= shape[i];
    }
    return n;
}

stts_status mtio_ck_add(mt_checkpoint *ck, const char *name, size_t name_len, mt_dtype dtype,
                        const char *dtype_name, int ndim, const int64_t *shape, int64_t numel, const void *data,
                        size_t nbytes, stts_error *err) {
    if (ndim < 0 || ndim > 4)
        return stts_error_set(err, STTS_ERR_UNSUPPORTED, "%s: tensor \"%.*s\" has %d dimensions (at most 4 allowed)",
                              ck->path, (int)(name_len > 200 ? 200 : name_len), name, ndim);
    if (ck->n == ck->cap) {
        size_t cap = ck->cap ? ck->cap * 2 : 64;
        mt_tensor *p = realloc(ck->tensors, cap * sizeof *p);
        if (!p) return stts_error_set(err, STTS_ERR_NOMEM, "%s: out of memory", ck->path);
        ck->tensors = p;
        ck->cap = cap;
    }
    char *nm = malloc(name_len + 1);
    if (!nm) return stts_error_set(err, STTS_ERR_NOMEM, "%s: out of memory", ck->path);
    memcpy(nm, name, name_len);
    nm[name_len] = '\0';
    mt_tensor *t = &ck->tensors[ck->n++];
    memset(t, 0, sizeof *t);
    t->name = nm;
    t->dtype = dtype;
    t->dtype_name = dtype_name;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = numel;
    t->data = data;
    t->nbytes = nbytes;
    return STTS_OK;
}

/* Merge sort by name (stable, reentrant: no global state, unlike qsort). */
static void sort_indices(const mt_tensor *t, size_t *idx, size_t *tmp, size_t n) {
    if (n < 2) return;
    size_t h = n / 2;
    sort_indices(t, idx, tmp, h);
    sort_indices(t, idx + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = strcmp(t[idx[j]].name, t[idx[i]].name) < 0 ? idx[j++] : idx[i++];
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
}

stts_status mtio_ck_finish(mt_checkpoint *ck, const char *label, stts_error *err) {
    free(ck->sorted);
    ck->sorted = malloc((ck->n ? ck->n : 1) * sizeof *ck->sorted);
    size_t *tmp = malloc((ck->n ? ck->n : 1) * sizeof *tmp);
    if (!ck->sorted || !tmp) {
        free(tmp);
        return stts_error_set(err, STTS_ERR_NOMEM, "%s: out of memory", label);
    }
    for (size_t i = 0; i < ck->n; i++) ck->sorted[i] = i;
    sort_indices(ck->tensors, ck->sorted, tmp, ck->n);
    free(tmp);
    for (size_t i = 1; i < ck->n; i++)
        if (strcmp(ck->tensors[ck->sorted[i - 1]].name, ck->tensors[ck->sorted[i]].name) == 0)
            return stts_error_set(err, STTS_ERR_FORMAT, "%s: tensor \"%.200s\" occurs more than once", label,
                                  ck->tensors[ck->sorted[i]].name);
    return STTS_OK;
}

void mt_checkpoint_close(mt_checkpoint *ck) {
    if (!ck) return;
    for (size_t i = 0; i < ck->n; i++) free((void *)ck->tensors[i].name);
    free(ck->tensors);
    free(ck->sorted);
    for (size_t i = 0; i < ck->nregions; i++) region_release(&ck->regions[i]);
    free(ck->regions);
    free(ck->weights);
    free(ck->path);
    free(ck);
}

size_t mt_checkpoint_count(const mt_checkpoint *ck) { return ck ? ck->n : 0; }

const mt_tensor *mt_checkpoint_at(const mt_checkpoint *ck, size_t i) {
    return ck && i < ck->n ? &ck->tensors[i] : NULL;
}

const mt_tensor *mt_checkpoint_find(const mt_checkpoint *ck, const char *name) {
    if (!ck || !name || !ck->sorted) return NULL;
    size_t lo = 0, hi = ck->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ck->tensors[ck->sorted[mid]].name, name);
        if (c == 0) return &ck->tensors[ck->sorted[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *mt_checkpoint_path(const mt_checkpoint *ck) { return ck ? ck->path : NULL; }

typedef stts_status (*parse_fn)(mt_checkpoint *, const void *, size_t, const char *, stts_error *);

static stts_status open_mem(const void *buf, size_t n, parse_fn fn, const char *label, mt_checkpoint **out,
                            stts_error *err) {
    if (!out || (!buf && n)) return stts_error_set(err, STTS_ERR_INVALID_ARG, "mt_checkpoint_open: NULL argument");
    *out = NULL;
    mt_checkpoint *ck = mtio_ck_new(label);
    if (!ck) return stts_error_set(err, STTS_ERR_NOMEM, "%s: out of memory", label);
    stts_status s = fn(ck, buf, n, ck->path, err);
    if (!s) s = mtio_ck_finish(ck, ck->path, err);
    if (s) {
        mt_checkpoint_close(ck);
        return s;
    }
    *out = ck;
    return STTS_OK;
}

stts_status mt_checkpoint_open_safetensors_mem(const void *buf, size_t n, mt_checkpoint **out, stts_error *err) {
    return open_mem(buf, n, mtio_parse_safetensors, "model.safetensors (memory)", out, err);
}

stts_status mt_checkpoint_open_torch_zip_mem(const void *buf, size_t n, mt_checkpoint **out, stts_error *err) {
    return open_mem(buf, n, mtio_parse_torch_zip, "pytorch_model.bin (memory)", out, err);
}

/* gguf: the tensor table, then the int8 scales (which need the name index). */
static stts_status parse_gguf_checked(mt_checkpoint *ck, const void *buf, size_t n, const char *label,
                                      stts_error *err) {
    stts_status s = mtio_parse_gguf(ck, buf, n, label, err);
    if (!s) s = mtio_ck_finish(ck, label, err);
    if (!s) s = mtio_gguf_check_scales(ck, label, err);
    return s;
}

stts_status mt_checkpoint_open_gguf_mem(const void *buf, size_t n, mt_checkpoint **out, stts_error *err) {
    return open_mem(buf, n, parse_gguf_checked, MTIO_GGUF_FILE " (memory)", out, err);
}

const char *mt_checkpoint_weights(const mt_checkpoint *ck) { return ck ? ck->weights : NULL; }
int mt_checkpoint_source_dtype(const mt_checkpoint *ck) { return ck ? ck->source_dtype : -1; }

const mt_tensor *mt_checkpoint_scale(const mt_checkpoint *ck, const mt_tensor *t) {
    if (!ck || !t || t->dtype != MT_DTYPE_I8) return NULL;
    size_t n = strlen(t->name);
    char *name = malloc(n + sizeof MT_QUANT_SCALE_SUFFIX);
    if (!name) return NULL;
    memcpy(name, t->name, n);
    memcpy(name + n, MT_QUANT_SCALE_SUFFIX, sizeof MT_QUANT_SCALE_SUFFIX);
    const mt_tensor *sc = mt_checkpoint_find(ck, name);
    free(name);
    return sc; /* shape and dtype were validated at open */
}

/* A model.gguf is tied to the config.json it was converted with: the one
 * beside it must be that file (a config edited or copied from another model
 * after conversion would silently mislabel the weights). */
static stts_status check_sibling_config(const mt_checkpoint *ck, const char *file, stts_error *err) {
    char *dir = strdup(file);
    if (!dir) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    char *cfg = mtio_path_join(dir, "config.json");
    free(dir);
    if (!cfg) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    char *text = NULL;
    size_t n = 0;
    stts_error e2;
    stts_status s = mtio_read_file(cfg, 64u << 20, &text, &n, &e2);
    if (s == STTS_ERR_NOT_FOUND) s = STTS_OK; /* the config reader reports a missing config.json */
    else if (s)
        s = stts_error_set(err, s, "%s", e2.msg);
    else if ((uint64_t)n != ck->config_size || mtio_fnv1a64(text, n) != ck->config_hash)
        s = stts_error_set(err, STTS_ERR_FORMAT,
                           "%s was converted from a different config.json than %s (%zu bytes now, %llu when "
                           "converted); re-run stream-tts convert on the original model directory",
                           file, cfg, n, (unsigned long long)ck->config_size);
    free(text);
    free(cfg);
    return s;
}

/* Maps one file and parses it into ck (the mapping is owned by ck). */
static stts_status add_file(mt_checkpoint *ck, const char *path, parse_fn fn, stts_error *err) {
    const void *data = NULL;
    size_t n = 0;
    stts_status s = mtio_map_file(path, &data, &n, err);
    if (s) return s;
    if ((s = mtio_ck_keep(ck, data, n, 1, err))) return s;
    return fn(ck, data, n, path, err);
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* model.safetensors.index.json (or pytorch_model.bin.index.json):
 * {"metadata": {...}, "weight_map": {tensor: shard file}}. Every shard is
 * mapped and parsed; each tensor the index names must be in the shard it
 * names. Shard names may not leave the directory. */
static stts_status add_sharded(mt_checkpoint *ck, const char *index_path, stts_error *err) {
    int torch = ends_with(index_path, ".bin.index.json");
    const char *ext = torch ? ".bin" : ".safetensors";
    parse_fn fn = torch ? mtio_parse_torch_zip : mtio_parse_safetensors;
    char *text = NULL;
    size_t n = 0;
    stts_status s = mtio_read_file(index_path, MAX_INDEX_JSON_BYTES, &text, &n, err);
    if (s) return s;
    json_error_t je;
    json_t *root = json_loadb(text, n, 0, &je);
    free(text);
    if (!root)
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: invalid JSON at line %d, column %d: %s", index_path,
                              je.line, je.column, je.text);
    char *dir = strdup(index_path);
    json_t *shards = json_array();
    if (!dir || !shards) {
        s = stts_error_set(err, STTS_ERR_NOMEM, "%s: out of memory", index_path);
        goto out;
    }
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    json_t *wm = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
    if (!json_is_object(wm) || json_object_size(wm) == 0) {
        s = stts_error_set(err, STTS_ERR_FORMAT, "%s: expected a non-empty \"weight_map\" object", index_path);
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(wm, key, v) {
        const char *f = json_is_string(v) ? json_string_value(v) : NULL;
        if (!f || !*f || strchr(f, '/') || strcmp(f, ".") == 0 || strcmp(f, "..") == 0 || !ends_with(f, ext)) {
            s = stts_error_set(err, STTS_ERR_FORMAT,
                               "%s: weight_map[\"%.200s\"] must name a %s file in the same directory", index_path,
                               key, ext);
            goto out;
        }
        size_t i, k = json_array_size(shards);
        for (i = 0; i < k; i++)
            if (strcmp(json_string_value(json_array_get(shards, i)), f) == 0) break;
        if (i == k) {
            if (k >= MAX_SHARDS) {
                s = stts_error_set(err, STTS_ERR_FORMAT, "%s: more than %d shards", index_path, MAX_SHARDS);
                goto out;
            }
            json_array_append(shards, v);
        }
    }
    for (size_t i = 0; i < json_array_size(shards); i++) {
        char *p = mtio_path_join(dir, json_string_value(json_array_get(shards, i)));
        if (!p) {
            s = stts_error_set(err, STTS_ERR_NOMEM, "%s: out of memory", index_path);
            goto out;
        }
        size_t before = ck->n;
        s = add_file(ck, p, fn, err);
        if (s == STTS_ERR_NOT_FOUND)
            stts_error_set(err, s, "%s: shard %s is missing (listed in %s; an incomplete download?)", p,
                           json_string_value(json_array_get(shards, i)), index_path);
        /* Each tensor of this shard must be listed in the index under this shard. */
        for (size_t t = before; !s && t < ck->n; t++) {
            json_t *w = json_object_get(wm, ck->tensors[t].name);
            if (!w || strcmp(json_string_value(w), json_string_value(json_array_get(shards, i))) != 0)
                s = stts_error_set(err, STTS_ERR_FORMAT, "%s: tensor \"%.200s\" is not listed for this shard in %s",
                                   p, ck->tensors[t].name, index_path);
        }
        free(p);
        if (s) goto out;
    }
    if ((s = mtio_ck_finish(ck, index_path, err))) goto out;
    json_object_foreach(wm, key, v) {
        if (!mt_checkpoint_find(ck, key)) {
            s = stts_error_set(err, STTS_ERR_FORMAT, "%s: tensor \"%.200s\" is listed in the index but not in %s",
                               index_path, key, json_string_value(v));
            goto out;
        }
    }
out:
    json_decref(shards);
    json_decref(root);
    free(dir);
    return s;
}

stts_status mt_checkpoint_open(const char *path, mt_checkpoint **out, stts_error *err) {
    if (!path || !out) return stts_error_set(err, STTS_ERR_INVALID_ARG, "mt_checkpoint_open: NULL argument");
    *out = NULL;
    char *file = NULL;
    int is_dir = mtio_is_dir(path);
    if (is_dir < 0) return stts_error_set(err, STTS_ERR_NOT_FOUND, "%s: no such file or directory", path);
    if (is_dir) {
        static const char *const names[] = {MTIO_GGUF_FILE, "model.safetensors", "model.safetensors.index.json",
                                            "pytorch_model.bin", "pytorch_model.bin.index.json"};
        for (size_t i = 0; i < sizeof names / sizeof names[0] && !file; i++) {
            char *p = mtio_path_join(path, names[i]);
            if (!p) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
            if (mtio_is_dir(p) == 0)
                file = p;
            else
                free(p);
        }
        if (!file)
            return stts_error_set(err, STTS_ERR_NOT_FOUND,
                                  "%s: no model.gguf, model.safetensors, pytorch_model.bin or their sharded "
                                  "*.index.json (scripts/fetch-model downloads a model)",
                                  path);
    } else {
        file = strdup(path);
        if (!file) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    }
    mt_checkpoint *ck = mtio_ck_new(file);
    stts_status s;
    if (!ck) {
        free(file);
        return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    }
    if (ends_with(file, ".index.json")) {
        s = add_sharded(ck, file, err);
    } else {
        /* Decide by content (a zip starts with "PK\3\4"), or by the .bin
         * name, so a legacy or broken .bin gets the torch reader's error. */
        const void *data = NULL;
        size_t n = 0;
        s = mtio_map_file(file, &data, &n, err);
        if (!s) s = mtio_ck_keep(ck, data, n, 1, err);
        int gguf = !s && ((n >= 4 && memcmp(data, "GGUF", 4) == 0) || ends_with(file, ".gguf"));
        if (!s && gguf) {
            s = parse_gguf_checked(ck, data, n, file, err);
            if (!s) s = check_sibling_config(ck, file, err);
        } else if (!s) {
            int zip = (n >= 4 && memcmp(data, "PK\x03\x04", 4) == 0) || ends_with(file, ".bin");
            s = (zip ? mtio_parse_torch_zip : mtio_parse_safetensors)(ck, data, n, file, err);
            if (!s) s = mtio_ck_finish(ck, file, err);
        }
    }
    free(file);
    if (s) {
        mt_checkpoint_close(ck);
        return s;
    }
    *out = ck;
    return STTS_OK;
}

stts_status mt_checkpoint_expect(const mt_checkpoint *ck, const char *name, int ndim, const int64_t *shape,
                                 const mt_tensor **out, stts_error *err) {
    const mt_tensor *t = mt_checkpoint_find(ck, name);
    if (!t)
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: tensor \"%s\" is missing", mt_checkpoint_path(ck), name);
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        char want[128] = "", got[128] = "";
        size_t a = 0, b = 0;
        for (int i = 0; i < ndim && i < 4; i++)
            a += (size_t)snprintf(want + a, sizeof want - a, "%s%lld", i ? "," : "", (long long)shape[i]);
        for (int i = 0; i < t->ndim; i++)
            b += (size_t)snprintf(got + b, sizeof got - b, "%s%lld", i ? "," : "", (long long)t->shape[i]);
        return stts_error_set(err, STTS_ERR_FORMAT,
                              "%s: tensor \"%s\" has shape [%s], expected [%s] from config.json",
                              mt_checkpoint_path(ck), name, got, want);
    }
    if (t->dtype != MT_DTYPE_F32 && t->dtype != MT_DTYPE_F16 && t->dtype != MT_DTYPE_BF16)
        return stts_error_set(err, STTS_ERR_UNSUPPORTED,
                              "%s: tensor \"%s\" has dtype %s; only float32, float16 and bfloat16 weights are "
                              "supported",
                              mt_checkpoint_path(ck), name, t->dtype_name ? t->dtype_name : "?");
    if (out) *out = t;
    return STTS_OK;
}
