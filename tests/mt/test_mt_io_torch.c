/* test_mt_io_torch.c - pytorch_model.bin reader (zip + pickle): a
 * torch.save-layout fixture made without torch (stored, deflated, ZIP64) against
 * Python-computed values, tied weights, storage offsets, a transposed
 * (non-contiguous) tensor, bit-for-bit equality with the same tensors as
 * safetensors, one clear error per corrupted variant (never executing a
 * pickle global), and - when the lead's torch-written fixtures exist in
 * tests/fixtures/mt/ - every .bin against its .safetensors twin. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>

#include "test_mt_io_common.h"

static void same_tensors(const mt_checkpoint *a, const mt_checkpoint *b, const char *what) {
    CHECK_MSG(mt_checkpoint_count(a) == mt_checkpoint_count(b), "%s: %zu vs %zu tensors", what,
              mt_checkpoint_count(a), mt_checkpoint_count(b));
    for (size_t i = 0; i < mt_checkpoint_count(a); i++) {
        const mt_tensor *x = mt_checkpoint_at(a, i), *y = mt_checkpoint_find(b, x->name);
        CHECK_MSG(y != NULL, "%s: %s missing", what, x->name);
        if (!y) continue;
        CHECK_MSG(x->dtype == y->dtype && x->ndim == y->ndim && x->numel == y->numel && x->nbytes == y->nbytes,
                  "%s: %s differs in dtype/shape", what, x->name);
        for (int d = 0; d < x->ndim && d < y->ndim; d++) CHECK_EQ_INT(x->shape[d], y->shape[d]);
        CHECK_MSG(x->nbytes == y->nbytes && memcmp(x->data, y->data, x->nbytes) == 0, "%s: %s bytes differ", what,
                  x->name);
    }
}

static void test_crafted(void) {
    mt_checkpoint *ck = NULL, *st = NULL, *df = NULL;
    stts_error e = {0};
    CHECK_EQ_INT(mt_checkpoint_open(MTIO_FIX "crafted-torch.bin", &ck, &e), STTS_OK);
    if (!ck) {
        fprintf(stderr, "%s\n", e.msg);
        return;
    }
    mtio_check_expected(ck, MTIO_FIX "crafted-torch.expected.json");
    /* State-dict order is kept. */
    CHECK_EQ_STR(mt_checkpoint_at(ck, 0)->name, "model.shared.weight");
    CHECK_EQ_STR(mt_checkpoint_at(ck, 0)->dtype_name, "float32");
    /* Tied weights share the mapped storage: no copy. */
    CHECK(mt_checkpoint_find(ck, "lm_head.weight")->data == mt_checkpoint_find(ck, "model.shared.weight")->data);
    CHECK((const char *)mt_checkpoint_find(ck, "view.rows2_3")->data ==
          (const char *)mt_checkpoint_find(ck, "model.shared.weight")->data + 32);
    CHECK_EQ_INT(mt_checkpoint_open(MTIO_FIX "crafted-torch.safetensors", &st, &e), STTS_OK);
    if (st) same_tensors(ck, st, "crafted .bin vs .safetensors");
    CHECK_EQ_INT(mt_checkpoint_open(MTIO_FIX "crafted-deflate.bin", &df, &e), STTS_OK);
    if (df) {
        mtio_check_expected(df, MTIO_FIX "crafted-torch.expected.json");
        same_tensors(df, ck, "deflated vs stored");
    }
    mt_checkpoint *sh = NULL;
    CHECK_EQ_INT(mt_checkpoint_open(MTIO_FIX "sharded-torch", &sh, &e), STTS_OK);
    if (sh) mtio_check_expected(sh, MTIO_FIX "crafted-torch.expected.json");
    mt_checkpoint_close(sh);
    mt_checkpoint *z64 = NULL;
    CHECK_EQ_INT(mt_checkpoint_open(MTIO_FIX "crafted-zip64.bin", &z64, &e), STTS_OK);
    if (z64) same_tensors(z64, ck, "ZIP64 vs classic zip");
    mt_checkpoint_close(z64);
    mt_checkpoint_close(ck);
    mt_checkpoint_close(st);
    mt_checkpoint_close(df);
}

static void test_mem_truncations(void) {
    size_t n = 0;
    char *buf = mtio_slurp(MTIO_FIX "crafted-torch.bin", &n);
    CHECK(buf != NULL);
    if (!buf) return;
    stts_error e = {0};
    mt_checkpoint *ck = NULL;
    CHECK_EQ_INT(mt_checkpoint_open_torch_zip_mem(buf, n, &ck, &e), STTS_OK);
    if (ck) mtio_check_expected(ck, MTIO_FIX "crafted-torch.expected.json");
    mt_checkpoint_close(ck);
    /* Every prefix and every single-byte flip ends in OK or a clean error. */
    for (size_t k = 0; k < n; k++) {
        ck = NULL;
        stts_status s = mt_checkpoint_open_torch_zip_mem(buf, k, &ck, &e);
        CHECK_MSG(s == STTS_ERR_FORMAT, "prefix %zu -> %s", k, stts_status_name(s));
        mt_checkpoint_close(ck);
    }
    for (size_t k = 0; k < n; k++) {
        buf[k] ^= 0x5a;
        ck = NULL;
        stts_status s = mt_checkpoint_open_torch_zip_mem(buf, n, &ck, &e);
        CHECK_MSG(s == STTS_OK || s == STTS_ERR_FORMAT || s == STTS_ERR_UNSUPPORTED, "flip %zu -> %s", k,
                  stts_status_name(s));
        mt_checkpoint_close(ck);
        buf[k] ^= 0x5a;
    }
    free(buf);
}

static void bad(const char *file, stts_status code, const char *s1, const char *s2) {
    char path[512];
    snprintf(path, sizeof path, MTIO_FIX "%s", file);
    mt_checkpoint *ck = (mt_checkpoint *)1;
    stts_error e = {0};
    stts_status s = mt_checkpoint_open(path, &ck, &e);
    CHECK_MSG(s == code, "%s -> %s: %s", file, stts_status_name(s), e.msg);
    CHECK_MSG(ck == NULL, "%s: handle not NULL", file);
    CHECK_MSG(strstr(e.msg, file) != NULL, "message \"%s\" does not name the file", e.msg);
    CHECK_MSG(strstr(e.msg, s1) != NULL, "%s: message \"%s\" lacks \"%s\"", file, e.msg, s1);
    if (s2) CHECK_MSG(strstr(e.msg, s2) != NULL, "%s: message \"%s\" lacks \"%s\"", file, e.msg, s2);
}

static void test_corrupted(void) {
    bad("bad-zip-truncated.bin", STTS_ERR_FORMAT, "end-of-central-directory", "truncated");
    bad("bad-zip-no-eocd.bin", STTS_ERR_FORMAT, "end-of-central-directory", NULL);
    bad("bad-zip-big-endian.bin", STTS_ERR_UNSUPPORTED, "byteorder", NULL);
    bad("bad-zip-no-pkl.bin", STTS_ERR_FORMAT, "data.pkl", NULL);
    bad("bad-zip-short-storage.bin", STTS_ERR_FORMAT, "archive/data/0", "fewer than its 32 float32 elements");
    bad("bad-pkl-view-outside.bin", STTS_ERR_FORMAT, "storage of 32 elements", NULL);
    bad("bad-pkl-global.bin", STTS_ERR_FORMAT, "os.system", "not allowed");
    bad("bad-pkl-opcode.bin", STTS_ERR_FORMAT, "opcode 0xff", NULL);
    bad("bad-pkl-truncated.bin", STTS_ERR_FORMAT, "data.pkl", NULL);
    bad("bad-pkl-missing-storage.bin", STTS_ERR_FORMAT, "archive/data/0", "missing");
    bad("bad-pkl-not-tensor.bin", STTS_ERR_FORMAT, "\"a\"", "not a tensor");
    /* Not a zip (a safetensors image, or a legacy pre-1.6 torch pickle). */
    size_t n = 0;
    char *buf = mtio_slurp(MTIO_FIX "tiny.safetensors", &n);
    mt_checkpoint *ck = NULL;
    stts_error e = {0};
    CHECK_EQ_INT(mt_checkpoint_open_torch_zip_mem(buf, n, &ck, &e), STTS_ERR_FORMAT);
    CHECK(ck == NULL && strstr(e.msg, "not a zip archive") && strstr(e.msg, "legacy"));
    free(buf);
    static const unsigned char legacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8,
                                           0x50, 0x19, 0x2e, 0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e, 0x80, 0x02, 0x7d};
    CHECK_EQ_INT(mt_checkpoint_open_torch_zip_mem(legacy, sizeof legacy, &ck, &e), STTS_ERR_FORMAT);
    CHECK(strstr(e.msg, "legacy") != NULL);
}

/* The lead's torch-written fixtures: every tests/fixtures/mt/<dir>/ holding
 * both pytorch_model.bin and model.safetensors must load to the same tensors. */
static void test_lead_fixtures(void) {
    const char *root = STTS_SOURCE_DIR "/tests/fixtures/mt";
    DIR *d = opendir(root);
    int pairs = 0;
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.') continue;
            char a[1024], b[1024];
            snprintf(a, sizeof a, "%s/%s/pytorch_model.bin", root, de->d_name);
            snprintf(b, sizeof b, "%s/%s/model.safetensors", root, de->d_name);
            FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
            if (fa) fclose(fa);
            if (fb) fclose(fb);
            if (!fa) continue;
            mt_checkpoint *x = NULL, *y = NULL;
            stts_error e = {0};
            CHECK_MSG(mt_checkpoint_open(a, &x, &e) == STTS_OK, "%s: %s", a, e.msg);
            if (x && fb) {
                CHECK_MSG(mt_checkpoint_open(b, &y, &e) == STTS_OK, "%s: %s", b, e.msg);
                if (y) same_tensors(x, y, de->d_name);
                pairs++;
            }
            mt_checkpoint_close(x);
            mt_checkpoint_close(y);
        }
        closedir(d);
    }
    printf("note: %d torch-written .bin/.safetensors pairs compared from %s\n", pairs, root);
}

int main(void) {
    TEST_RUN(test_crafted);
    TEST_RUN(test_mem_truncations);
    TEST_RUN(test_corrupted);
    TEST_RUN(test_lead_fixtures);
    return TEST_SUMMARY();
}
