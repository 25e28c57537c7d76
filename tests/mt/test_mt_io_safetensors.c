/* test_mt_io_safetensors.c - safetensors reader: the tiny fixture's
 * tensors against Python-computed values (f32/f16/bf16/i64, scalar, empty,
 * 4-D), sharded checkpoints, one clear error per corrupted variant, the
 * in-memory API, and the f16 widening of all 65536 half values against an
 * independent ldexp-based reference. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>

#include "io/checkpoint_internal.h"
#include "test_mt_io_common.h"

static void test_tiny_file(void) {
    mt_checkpoint *ck = NULL;
    stts_error e = {0};
    CHECK_EQ_INT(mt_checkpoint_open(MTIO_FIX "tiny.safetensors", &ck, &e), STTS_OK);
    if (!ck) return;
    mtio_check_expected(ck, MTIO_FIX "tiny.expected.json");
    CHECK_EQ_STR(mt_checkpoint_path(ck), MTIO_FIX "tiny.safetensors");
    /* Header order is kept by mt_checkpoint_at. */
    CHECK_EQ_STR(mt_checkpoint_at(ck, 0)->name, "model.shared.weight");
    CHECK_EQ_STR(mt_checkpoint_at(ck, 0)->dtype_name, "F32");
    CHECK(mt_checkpoint_at(ck, mt_checkpoint_count(ck)) == NULL);
    CHECK(mt_checkpoint_find(ck, "model.shared") == NULL);
    CHECK(mt_checkpoint_find(ck, "") == NULL);
    CHECK(mt_checkpoint_find(ck, "__metadata__") == NULL);
    const mt_tensor *t = NULL;
    int64_t shp[2] = {8, 4}, bad[2] = {4, 8};
    CHECK_EQ_INT(mt_checkpoint_expect(ck, "model.shared.weight", 2, shp, &t, &e), STTS_OK);
    CHECK(t && t->numel == 32);
    CHECK_EQ_INT(mt_checkpoint_expect(ck, "model.shared.weight", 2, bad, &t, &e), STTS_ERR_FORMAT);
    CHECK(strstr(e.msg, "[8,4]") && strstr(e.msg, "[4,8]") && strstr(e.msg, "model.shared.weight"));
    CHECK_EQ_INT(mt_checkpoint_expect(ck, "lm_head.weight", 2, shp, &t, &e), STTS_ERR_FORMAT);
    CHECK(strstr(e.msg, "lm_head.weight") && strstr(e.msg, "missing"));
    int64_t three = 3;
    CHECK_EQ_INT(mt_checkpoint_expect(ck, "positions", 1, &three, &t, &e), STTS_ERR_UNSUPPORTED);
    CHECK(strstr(e.msg, "I64") != NULL);
    mt_checkpoint_close(ck);
    mt_checkpoint_close(NULL);
}

static void test_dir_and_mem(void) {
    /* A directory with only tiny files is not a model; the file itself is. */
    mt_checkpoint *ck = NULL;
    stts_error e = {0};
    CHECK_EQ_INT(mt_checkpoint_open(MTIO_FIX "sharded-bad-path/..", &ck, &e), STTS_ERR_NOT_FOUND);
    CHECK(strstr(e.msg, "model.safetensors") != NULL);
    CHECK_EQ_INT(mt_checkpoint_open(MTIO_FIX "nope.safetensors", &ck, &e), STTS_ERR_NOT_FOUND);
    CHECK(ck == NULL);
    size_t n = 0;
    char *buf = test_read_file(MTIO_FIX "tiny.safetensors", &n);
    CHECK(buf != NULL);
    CHECK_EQ_INT(mt_checkpoint_open_safetensors_mem(buf, n, &ck, &e), STTS_OK);
    if (ck) mtio_check_expected(ck, MTIO_FIX "tiny.expected.json");
    mt_checkpoint_close(ck);
    /* Every truncation of a valid file fails cleanly (or, never, succeeds with fewer tensors). */
    for (size_t k = 0; k < n; k++) {
        ck = NULL;
        stts_status s = mt_checkpoint_open_safetensors_mem(buf, k, &ck, &e);
        CHECK_MSG(s == STTS_ERR_FORMAT, "prefix %zu -> %s", k, stts_status_name(s));
        CHECK(ck == NULL);
    }
    free(buf);
}

static void test_sharded(void) {
    mt_checkpoint *ck = NULL;
    stts_error e = {0};
    CHECK_EQ_INT(mt_checkpoint_open(MTIO_FIX "sharded", &ck, &e), STTS_OK);
    if (ck) mtio_check_expected(ck, MTIO_FIX "tiny.expected.json");
    mt_checkpoint_close(ck);
    ck = NULL;
    CHECK_EQ_INT(mt_checkpoint_open(MTIO_FIX "sharded/model.safetensors.index.json", &ck, &e), STTS_OK);
    mt_checkpoint_close(ck);
    ck = NULL;
    CHECK_EQ_INT(mt_checkpoint_open(MTIO_FIX "sharded-bad-missing", &ck, &e), STTS_ERR_NOT_FOUND);
    CHECK(strstr(e.msg, "model-00003-of-00002.safetensors") != NULL);
    CHECK_EQ_INT(mt_checkpoint_open(MTIO_FIX "sharded-bad-path", &ck, &e), STTS_ERR_FORMAT);
    CHECK(strstr(e.msg, "same directory") && strstr(e.msg, "scalar"));
    CHECK(ck == NULL);
}

static void bad(const char *file, const char *s1, const char *s2) {
    char path[512];
    snprintf(path, sizeof path, MTIO_FIX "%s", file);
    mt_checkpoint *ck = (mt_checkpoint *)1;
    stts_error e = {0};
    stts_status s = mt_checkpoint_open(path, &ck, &e);
    CHECK_MSG(s == STTS_ERR_FORMAT || s == STTS_ERR_UNSUPPORTED, "%s -> %s", file, stts_status_name(s));
    CHECK_MSG(ck == NULL, "%s: handle not NULL", file);
    CHECK_MSG(strstr(e.msg, file) != NULL, "message \"%s\" does not name the file", e.msg);
    CHECK_MSG(strstr(e.msg, s1) != NULL, "%s: message \"%s\" lacks \"%s\"", file, e.msg, s1);
    if (s2) CHECK_MSG(strstr(e.msg, s2) != NULL, "%s: message \"%s\" lacks \"%s\"", file, e.msg, s2);
}

static void test_corrupted(void) {
    bad("bad-short.safetensors", "too short", NULL);
    bad("bad-truncated.safetensors", "data_offsets", "truncated");
    /* a cut file says what to do, not only "(truncated file?)" */
    bad("bad-truncated.safetensors", "truncated file?", "scripts/fetch-model downloads it again");
    bad("bad-header-len.safetensors", "header claims", "scripts/fetch-model downloads it again");
    bad("bad-header-huge.safetensors", "header claims", NULL);
    bad("bad-offsets-order.safetensors", "scalar", "[200, 196]");
    bad("bad-offsets-size.safetensors", "model.shared.weight", "120 bytes");
    bad("bad-offsets-outside.safetensors", "scalar", "100000");
    bad("bad-dtype.safetensors", "model.shared.weight", "Q7");
    bad("bad-ndim.safetensors", "empty", "5 dimensions");
    bad("bad-shape-neg.safetensors", "scalar", "shape[0]");
    bad("bad-shape-overflow.safetensors", "empty", "overflow");
    bad("bad-entry.safetensors", "scalar", "data_offsets");
    bad("bad-metadata.safetensors", "__metadata__", NULL);
    bad("bad-json.safetensors", "not valid JSON", NULL);
    bad("bad-notobject.safetensors", "JSON object", NULL);
    bad("bad-dup.safetensors", "not valid JSON", "duplicate");
}

/* Independent reference: value = (-1)^s * 2^(e-15) * (1 + m/1024), subnormal 2^-14 * m/1024. */
static float half_ref(uint16_t h) {
    int s = h >> 15, ex = (h >> 10) & 31, m = h & 1023;
    double v;
    if (ex == 31) v = m ? NAN : INFINITY;
    else if (ex == 0) v = ldexp(m / 1024.0, -14);
    else v = ldexp(1.0 + m / 1024.0, ex - 15);
    return (float)(s ? -v : v);
}

static void test_f16_exhaustive(void) {
    static uint16_t h[65536];
    static float fast[65536], portable[65536];
    for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    mt_tensor t = {0};
    t.name = "all_halves";
    t.dtype = MT_DTYPE_F16;
    t.ndim = 1;
    t.shape[0] = 65536;
    t.numel = 65536;
    t.data = h;
    t.nbytes = sizeof h;
    stts_error e = {0};
    int bad_n = 0;
    /* mt_tensor_to_f32 (F16C where the CPU has it) and the portable path */
    CHECK_EQ_INT(mt_tensor_to_f32(&t, fast, 65536, &e), STTS_OK);
    mtio_f16_to_f32_scalar((const unsigned char *)h, portable, 65536);
    for (int pass = 0; pass < 2; pass++) {
        const float *f = pass ? portable : fast;
        for (int i = 0; i < 65536; i++) {
            float r = half_ref((uint16_t)i);
            int ok = isnan(r) ? isnan(f[i]) : (memcmp(&r, &f[i], 4) == 0);
            if (isnan(r) && ok) { /* NaN sign and payload are kept (F16C may set the quiet bit) */
                uint32_t b;
                memcpy(&b, &f[i], 4);
                ok = (b >> 31) == (uint32_t)(i >> 15) && ((b >> 13) & 511) == (uint32_t)(i & 511);
            }
            if (!ok && bad_n++ < 5) CHECK_MSG(0, "pass %d: half %04x -> %a, expected %a", pass, i, f[i], r);
        }
    }
    CHECK_EQ_INT(bad_n, 0);
    /* bf16 is the high half of f32: all 65536 patterns (vector path + tail). */
    t.dtype = MT_DTYPE_BF16;
    CHECK_EQ_INT(mt_tensor_to_f32(&t, fast, 65536, &e), STTS_OK);
    for (int i = 0; i < 65536; i++) {
        uint32_t bits;
        memcpy(&bits, &fast[i], 4);
        if (bits != (uint32_t)i << 16 && bad_n++ < 5) CHECK_MSG(0, "bf16 %04x -> %08x", i, bits);
    }
    CHECK_EQ_INT(bad_n, 0);
    /* Unaligned source (odd address, as in a mapped file) and an odd length. */
    static unsigned char raw[2 * 37 + 1];
    memcpy(raw + 1, h + 15360, 2 * 37);
    float u[37];
    t.data = raw + 1;
    t.numel = t.shape[0] = 37;
    CHECK_EQ_INT(mt_tensor_to_f32(&t, u, 37, &e), STTS_OK);
    for (int i = 0; i < 37; i++) CHECK(memcmp(&u[i], &fast[15360 + i], 4) == 0);
    t.dtype = MT_DTYPE_F16;
    CHECK_EQ_INT(mt_tensor_to_f32(&t, u, 37, &e), STTS_OK);
    for (int i = 0; i < 37; i++) CHECK(memcmp(&u[i], &portable[15360 + i], 4) == 0);
    /* Short tensors take only the scalar tail. */
    uint16_t b[3] = {0x3f80, 0xc2f7, 0x7fc0};
    float out[3];
    t.dtype = MT_DTYPE_BF16;
    t.data = b;
    t.numel = 3;
    t.shape[0] = 3;
    CHECK_EQ_INT(mt_tensor_to_f32(&t, out, 3, &e), STTS_OK);
    CHECK(out[0] == 1.0f && out[1] == -123.5f && isnan(out[2]));
    t.dtype = MT_DTYPE_OTHER;
    t.dtype_name = "F64";
    CHECK_EQ_INT(mt_tensor_to_f32(&t, out, 3, &e), STTS_ERR_UNSUPPORTED);
    CHECK(strstr(e.msg, "F64") && strstr(e.msg, "all_halves"));
}

/* The transformers-written fixtures (tests/fixtures/mt/NAME-st): every tensor
 * of every file opens through the directory path and converts; the dtype of
 * the weights matches the folder name (f32, f16, bf16). */
static void test_hf_written(void) {
    const char *root = STTS_SOURCE_DIR "/tests/fixtures/mt";
    DIR *d = opendir(root);
    int dirs = 0;
    while (d) {
        struct dirent *de = readdir(d);
        if (!de) break;
        size_t len = strlen(de->d_name);
        if (len < 4 || strcmp(de->d_name + len - 3, "-st") != 0) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", root, de->d_name);
        mt_dtype want = strstr(de->d_name, "bf16") ? MT_DTYPE_BF16 : strstr(de->d_name, "f16") ? MT_DTYPE_F16
                                                                                                : MT_DTYPE_F32;
        mt_checkpoint *ck = NULL;
        stts_error e = {0};
        CHECK_MSG(mt_checkpoint_open(path, &ck, &e) == STTS_OK, "%s: %s", path, e.msg);
        CHECK(mt_checkpoint_count(ck) > 0);
        for (size_t i = 0; i < mt_checkpoint_count(ck); i++) {
            const mt_tensor *t = mt_checkpoint_at(ck, i);
            CHECK_MSG(t->dtype == want, "%s: %s is %s", de->d_name, t->name, t->dtype_name);
            float *f = malloc((size_t)t->numel * sizeof *f + 1);
            CHECK_EQ_INT(mt_tensor_to_f32(t, f, (size_t)t->numel, &e), STTS_OK);
            for (int64_t k = 0; k < t->numel; k++) CHECK_MSG(isfinite(f[k]), "%s: %s[%lld]", de->d_name, t->name,
                                                             (long long)k);
            free(f);
        }
        mt_checkpoint_close(ck);
        dirs++;
    }
    if (d) closedir(d);
    if (dirs == 0) {
        TEST_SKIP("no transformers-written *-st checkpoints in %s (scripts/fixtures/make-mt-fixtures.py)", root);
        return;
    }
    printf("note: %d transformers-written safetensors checkpoints read from %s\n", dirs, root);
}

int main(void) {
    TEST_RUN(test_tiny_file);
    TEST_RUN(test_dir_and_mem);
    TEST_RUN(test_sharded);
    TEST_RUN(test_corrupted);
    TEST_RUN(test_f16_exhaustive);
    TEST_RUN(test_hf_written);
    return TEST_SUMMARY();
}
