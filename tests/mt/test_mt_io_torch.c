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
    char *buf = test_read_file(MTIO_FIX "crafted-torch.bin", &n);
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
    /* and what to do about it (it stopped at "(truncated download?)") */
    bad("bad-zip-truncated.bin", STTS_ERR_FORMAT, "truncated download?", "scripts/fetch-model downloads it again");
    bad("bad-zip-no-eocd.bin", STTS_ERR_FORMAT, "end-of-central-directory", NULL);
    bad("bad-zip-big-endian.bin", STTS_ERR_UNSUPPORTED, "byteorder", NULL);
    bad("bad-zip-no-pkl.bin", STTS_ERR_FORMAT, "data.pkl", NULL);
    bad("bad-zip-short-storage.bin", STTS_ERR_FORMAT, "archive/data/0", "fewer than its 32 float32 elements");
    bad("bad-pkl-view-outside.bin", STTS_ERR_FORMAT, "storage of 32 elements", NULL);
    bad("bad-pkl-broadcast.bin", STTS_ERR_UNSUPPORTED, "broadcast", "4611686018427387904 elements");
    bad("bad-pkl-global.bin", STTS_ERR_FORMAT, "os.system", "not allowed");
    bad("bad-pkl-opcode.bin", STTS_ERR_FORMAT, "opcode 0xff", NULL);
    bad("bad-pkl-truncated.bin", STTS_ERR_FORMAT, "data.pkl", NULL);
    bad("bad-pkl-missing-storage.bin", STTS_ERR_FORMAT, "archive/data/0", "missing");
    bad("bad-pkl-not-tensor.bin", STTS_ERR_FORMAT, "\"a\"", "not a tensor");
    /* Not a zip (a safetensors image, or a legacy pre-1.6 torch pickle). */
    size_t n = 0;
    char *buf = test_read_file(MTIO_FIX "tiny.safetensors", &n);
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

/* The torch-written fixtures of tests/fixtures/mt (transformers' save_pretrained
 * on the GPU machine): each <name>-pt/pytorch_model.bin must hold exactly the
 * tensors of <name>-st/model.safetensors, bit for bit, plus the tied aliases
 * safetensors drops (embed_tokens, lm_head), which must share
 * model.shared.weight's storage. */
static void compare_pt_st(const char *pt_path, const char *st_path, const char *what) {
    mt_checkpoint *pt = NULL, *st = NULL;
    stts_error e = {0};
    CHECK_MSG(mt_checkpoint_open(pt_path, &pt, &e) == STTS_OK, "%s: %s", pt_path, e.msg);
    CHECK_MSG(mt_checkpoint_open(st_path, &st, &e) == STTS_OK, "%s: %s", st_path, e.msg);
    if (pt && st) {
        CHECK(mt_checkpoint_count(st) > 0);
        for (size_t i = 0; i < mt_checkpoint_count(st); i++) {
            const mt_tensor *y = mt_checkpoint_at(st, i), *x = mt_checkpoint_find(pt, y->name);
            CHECK_MSG(x != NULL, "%s: %s only in safetensors", what, y->name);
            if (!x) continue;
            CHECK_MSG(x->dtype == y->dtype && x->ndim == y->ndim && x->numel == y->numel && x->nbytes == y->nbytes &&
                          memcmp(x->shape, y->shape, sizeof x->shape) == 0,
                      "%s: %s differs in dtype/shape", what, y->name);
            CHECK_MSG(x->nbytes == y->nbytes && memcmp(x->data, y->data, x->nbytes) == 0, "%s: %s bytes differ",
                      what, y->name);
        }
        const mt_tensor *shared = mt_checkpoint_find(pt, "model.shared.weight");
        CHECK(shared != NULL);
        for (size_t i = 0; shared && i < mt_checkpoint_count(pt); i++) {
            const mt_tensor *x = mt_checkpoint_at(pt, i);
            if (mt_checkpoint_find(st, x->name)) continue;
            CHECK_MSG(strstr(x->name, "embed_tokens") || strcmp(x->name, "lm_head.weight") == 0,
                      "%s: %s only in the .bin and not a tied alias", what, x->name);
            CHECK_MSG(x->data == shared->data && x->nbytes == shared->nbytes, "%s: %s does not share the storage of "
                      "model.shared.weight", what, x->name);
        }
    }
    mt_checkpoint_close(pt);
    mt_checkpoint_close(st);
}

static void test_lead_fixtures(void) {
    const char *root = STTS_SOURCE_DIR "/tests/fixtures/mt";
    DIR *d = opendir(root);
    int pairs = 0;
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            size_t len = strlen(de->d_name);
            if (len < 4 || strcmp(de->d_name + len - 3, "-pt") != 0) continue;
            char a[1024], b[1024];
            snprintf(a, sizeof a, "%s/%s/pytorch_model.bin", root, de->d_name);
            snprintf(b, sizeof b, "%s/%.*s-st/model.safetensors", root, (int)(len - 3), de->d_name);
            FILE *fb = fopen(b, "rb");
            if (!fb) continue;
            fclose(fb);
            compare_pt_st(a, b, de->d_name);
            pairs++;
        }
        closedir(d);
    }
    if (pairs == 0) {
        TEST_SKIP("no torch-written *-pt/*-st pairs in %s (scripts/fixtures/make-mt-fixtures.py)", root);
        return;
    }
    printf("note: %d torch-written .bin/.safetensors pairs compared bit for bit from %s\n", pairs, root);
}

int main(void) {
    TEST_RUN(test_crafted);
    TEST_RUN(test_mem_truncations);
    TEST_RUN(test_corrupted);
    TEST_RUN(test_lead_fixtures);
    return TEST_SUMMARY();
}
