/* safetensors.c - parser of the safetensors format (HF's weight files):
 *   [u64 little-endian N][N bytes of JSON header][data section]
 * The header maps tensor names to {"dtype", "shape", "data_offsets": [begin,
 * end]} (offsets relative to the data section) plus an optional
 * "__metadata__" object of strings. Everything is validated before a tensor
 * is handed out: header length vs file size, known dtype, ndim <= 4, shape
 * values, begin <= end <= data size, end - begin == numel * dtype size. */
#include <jansson.h>
#include <string.h>

#include "io/checkpoint_internal.h"

/* What to do about a file cut short (an interrupted download): the
 * messages said "(truncated file?)" and stopped there. */
#define REFETCH "; scripts/fetch-model downloads it again"

/* The reference implementation refuses headers above 100 MB; so do we. */
#define MAX_HEADER_BYTES (100u << 20)

typedef struct {
    const char *name;
    mt_dtype dtype;
    size_t size;
} st_dtype;

static const st_dtype st_dtypes[] = {
    {"F32", MT_DTYPE_F32, 4},     {"F16", MT_DTYPE_F16, 2},         {"BF16", MT_DTYPE_BF16, 2},
    {"I64", MT_DTYPE_I64, 8},     {"F64", MT_DTYPE_OTHER, 8},       {"I32", MT_DTYPE_OTHER, 4},
    {"U32", MT_DTYPE_OTHER, 4},   {"I16", MT_DTYPE_OTHER, 2},       {"U16", MT_DTYPE_OTHER, 2},
    {"I8", MT_DTYPE_OTHER, 1},    {"U8", MT_DTYPE_OTHER, 1},        {"BOOL", MT_DTYPE_OTHER, 1},
    {"U64", MT_DTYPE_OTHER, 8},   {"F8_E4M3", MT_DTYPE_OTHER, 1},   {"F8_E5M2", MT_DTYPE_OTHER, 1},
};

static stts_status get_u64(json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return STTS_ERR_FORMAT;
    *out = (uint64_t)json_integer_value(v);
    return STTS_OK;
}

static stts_status parse_entry(mt_checkpoint *ck, const char *label, const char *name, json_t *e,
                               const unsigned char *data, uint64_t data_len, stts_error *err) {
    if (!json_is_object(e))
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: header entry \"%.200s\" is not an object", label, name);
    json_t *jd = json_object_get(e, "dtype"), *js = json_object_get(e, "shape"),
           *jo = json_object_get(e, "data_offsets");
    if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo))
        return stts_error_set(err, STTS_ERR_FORMAT,
                              "%s: tensor \"%.200s\" needs \"dtype\" (string), \"shape\" (list) and "
                              "\"data_offsets\" (list)",
                              label, name);
    const st_dtype *dt = NULL;
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(json_string_value(jd), st_dtypes[i].name) == 0) dt = &st_dtypes[i];
    if (!dt)
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: tensor \"%.200s\" has unknown dtype \"%.32s\"", label, name,
                              json_string_value(jd));
    size_t ndim = json_array_size(js);
    if (ndim > 4)
        return stts_error_set(err, STTS_ERR_UNSUPPORTED, "%s: tensor \"%.200s\" has %zu dimensions (at most 4)",
                              label, name, ndim);
    int64_t shape[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < ndim; i++) {
        uint64_t d;
        if (get_u64(json_array_get(js, i), &d) || d > (uint64_t)INT64_MAX)
            return stts_error_set(err, STTS_ERR_FORMAT,
                                  "%s: tensor \"%.200s\": shape[%zu] is not a non-negative integer", label, name, i);
        shape[i] = (int64_t)d;
    }
    int64_t numel = mtio_numel((int)ndim, shape);
    if (numel < 0 || (uint64_t)numel > UINT64_MAX / dt->size)
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: tensor \"%.200s\": shape overflows", label, name);
    uint64_t begin, end;
    if (json_array_size(jo) != 2 || get_u64(json_array_get(jo, 0), &begin) || get_u64(json_array_get(jo, 1), &end))
        return stts_error_set(err, STTS_ERR_FORMAT,
                              "%s: tensor \"%.200s\": data_offsets must be [begin, end] with non-negative integers",
                              label, name);
    if (begin > end || end > data_len)
        return stts_error_set(err, STTS_ERR_FORMAT,
                              "%s: tensor \"%.200s\": data_offsets [%llu, %llu] are not inside the %llu-byte data "
                              "section (truncated file?)" REFETCH,
                              label, name, (unsigned long long)begin, (unsigned long long)end,
                              (unsigned long long)data_len);
    uint64_t nbytes = (uint64_t)numel * dt->size;
    if (end - begin != nbytes)
        return stts_error_set(err, STTS_ERR_FORMAT,
                              "%s: tensor \"%.200s\": data_offsets span %llu bytes but %s x %lld elements need %llu",
                              label, name, (unsigned long long)(end - begin), dt->name, (long long)numel,
                              (unsigned long long)nbytes);
    return mtio_ck_add(ck, name, strlen(name), dt->dtype, dt->name, (int)ndim, shape, numel, data + begin,
                       (size_t)nbytes, err);
}

stts_status mtio_parse_safetensors(mt_checkpoint *ck, const void *buf, size_t n, const char *label,
                                   stts_error *err) {
    const unsigned char *p = buf;
    if (n < 8)
        return stts_error_set(err, STTS_ERR_FORMAT,
                              "%s: %zu bytes is too short for a safetensors file (8-byte header length missing)",
                              label, n);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | p[i];
    if (hlen > n - 8)
        return stts_error_set(err, STTS_ERR_FORMAT,
                              "%s: header claims %llu bytes but only %zu follow the length field (truncated or not "
                              "a safetensors file)" REFETCH,
                              label, (unsigned long long)hlen, n - 8);
    if (hlen > MAX_HEADER_BYTES)
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: header of %llu bytes exceeds the %u-byte limit", label,
                              (unsigned long long)hlen, MAX_HEADER_BYTES);
    if (hlen < 2 || p[8] != '{')
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: header does not start with a JSON object", label);
    json_error_t je;
    json_t *root = json_loadb((const char *)p + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: header is not valid JSON (byte %d: %s)", label,
                              je.position, je.text);
    stts_status s = STTS_OK;
    if (!json_is_object(root)) {
        s = stts_error_set(err, STTS_ERR_FORMAT, "%s: header is not a JSON object", label);
        goto out;
    }
    const unsigned char *data = p + 8 + hlen;
    uint64_t data_len = (uint64_t)n - 8 - hlen;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(v)) {
                s = stts_error_set(err, STTS_ERR_FORMAT, "%s: \"__metadata__\" must be an object", label);
                goto out;
            }
            continue;
        }
        if ((s = parse_entry(ck, label, key, v, data, data_len, err))) goto out;
    }
out:
    json_decref(root);
    return s;
}
