/* test_mt_io_common.h - helpers shared by the engine I/O tests: file
 * checking a checkpoint against a fixture's expected.json
 * (name -> dtype, shape, f32 bit patterns or int64 values, written by
 * scripts/fixtures/make-io-fixtures.py with Python's struct). */
#ifndef TEST_MT_IO_COMMON_H
#define TEST_MT_IO_COMMON_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "test.h"

#define MTIO_FIX STTS_SOURCE_DIR "/tests/fixtures/mtio/"

static inline mt_dtype mtio_dtype_of(const char *s) {
    if (!strcmp(s, "F32")) return MT_DTYPE_F32;
    if (!strcmp(s, "F16")) return MT_DTYPE_F16;
    if (!strcmp(s, "BF16")) return MT_DTYPE_BF16;
    if (!strcmp(s, "I64")) return MT_DTYPE_I64;
    return MT_DTYPE_OTHER;
}

/* Checks ck holds exactly the tensors of expected_path, with their dtypes,
 * shapes and values (bit-exact after mt_tensor_to_f32). */
static inline void mtio_check_expected(const mt_checkpoint *ck, const char *expected_path) {
    json_error_t je;
    json_t *root = json_load_file(expected_path, 0, &je);
    CHECK_MSG(root != NULL, "%s: %s", expected_path, je.text);
    if (!root) return;
    CHECK_EQ_INT(mt_checkpoint_count(ck), json_object_size(root));
    const char *name;
    json_t *v;
    json_object_foreach(root, name, v) {
        const mt_tensor *t = mt_checkpoint_find(ck, name);
        CHECK_MSG(t != NULL, "tensor %s missing", name);
        if (!t) continue;
        CHECK_EQ_STR(t->name, name);
        mt_dtype dt = mtio_dtype_of(json_string_value(json_object_get(v, "dtype")));
        CHECK_MSG(t->dtype == dt, "%s: dtype %d, expected %d", name, (int)t->dtype, (int)dt);
        json_t *shape = json_object_get(v, "shape");
        CHECK_EQ_INT(t->ndim, json_array_size(shape));
        int64_t numel = 1;
        for (size_t i = 0; i < json_array_size(shape) && i < 4; i++) {
            CHECK_EQ_INT(t->shape[i], json_integer_value(json_array_get(shape, i)));
            numel *= json_integer_value(json_array_get(shape, i));
        }
        CHECK_EQ_INT(t->numel, numel);
        CHECK_EQ_INT(t->nbytes, (size_t)numel * mt_dtype_size(dt));
        json_t *vals = json_object_get(v, "values");
        CHECK_EQ_INT(json_array_size(vals), numel);
        if (dt == MT_DTYPE_I64) {
            for (int64_t i = 0; i < numel; i++) {
                int64_t x;
                memcpy(&x, (const char *)t->data + 8 * i, 8);
                CHECK_EQ_INT(x, json_integer_value(json_array_get(vals, (size_t)i)));
            }
            stts_error e = {0};
            float dummy[8];
            CHECK_EQ_INT(mt_tensor_to_f32(t, dummy, (size_t)numel, &e), STTS_ERR_UNSUPPORTED);
            CHECK(strstr(e.msg, name) != NULL);
            continue;
        }
        float *f = malloc(((size_t)numel + 1) * sizeof *f);
        stts_error e = {0};
        CHECK_EQ_INT(mt_tensor_to_f32(t, f, (size_t)numel, &e), STTS_OK);
        for (int64_t i = 0; i < numel; i++) {
            uint32_t bits;
            memcpy(&bits, &f[i], 4);
            uint32_t want = (uint32_t)json_integer_value(json_array_get(vals, (size_t)i));
            CHECK_MSG(bits == want, "%s[%lld]: bits %08x, expected %08x", name, (long long)i, bits, want);
        }
        /* Asking for the wrong count is an error, not an overrun. */
        CHECK_EQ_INT(mt_tensor_to_f32(t, f, (size_t)numel + 1, &e), STTS_ERR_INVALID_ARG);
        free(f);
    }
    json_decref(root);
}

#endif
