/* test_mt_io_gguf.c - converted model files (model.gguf, stream-tts convert):
 * - round trip: every fixture converted to f32/f16/bf16/int8 and opened
 *   again holds exactly the source tensors under the rule of each format
 *   (f32 bit-equal, f16 = the compiler's _Float16 rounding, bf16 =
 *   mt_f32_to_bf16, int8 = mt_quantize_row_i8 per row + "<name>.scale"),
 *   page-aligned;
 * - translation parity: a converted directory translates to exactly the ids
 *   of its HF directory (tiny fixtures, the demo model);
 * - bad files, built here byte by byte (independently of the writer):
 *   truncation at every header byte and at random points, wrong magic,
 *   version, format version and tag, offsets out of range, misaligned,
 *   overlapping, overflowing dims, duplicate names and keys, missing or
 *   misshapen scales: each a clear error naming what to do, never a crash;
 * - the rename rule: a process that has model.gguf mapped keeps valid bytes
 *   while convert replaces it; a failed write (file size limit) leaves the
 *   old files and no temporary file.
 * `test_mt_io_gguf --write-seeds DIR` writes the fuzzer's seed corpus. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint.h"
#include "io/convert.h"
#include "nllb.h"
#include "quant.h"
#include "test.h"

#define FIX STTS_SOURCE_DIR "/tests/fixtures/mt/"
#define DEMO STTS_SOURCE_DIR "/models/demo-en-ja"

static char tmproot[256];

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static void rm_rf(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        remove(p);
    }
    closedir(d);
    rmdir(dir);
}

static int convert(const char *src, const char *dst, const char *w) {
    mt_convert_params p = {w, NULL, NULL};
    stts_error e;
    stts_error_clear(&e);
    stts_status s = mt_convert_model(src, dst, &p, NULL, &e);
    if (s) fprintf(stderr, "convert %s -> %s (%s): %s\n", src, dst, w, e.msg);
    return s;
}

static int g_interleaved, g_interleaved_half; /* converted int8 / bf16 and f16 tensors found interleaved */

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long k = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)k + 1);
    *n = fread(b, 1, (size_t)k, f);
    fclose(f);
    return b;
}

static int emb_name(const char *n) {
    return !strcmp(n, "model.encoder.embed_tokens.weight") || !strcmp(n, "model.decoder.embed_tokens.weight") ||
           !strcmp(n, "lm_head.weight");
}

/* ---------- round trip ---------- */

static uint16_t ref_f16(float x) {
#ifdef __FLT16_MAX__
    __extension__ _Float16 h = (__extension__(_Float16)x);
    uint16_t u;
    memcpy(&u, &h, 2);
    return u;
#else
    return mt_convert_f32_to_f16(x);
#endif
}

static void check_converted(const char *src_dir, const char *w) {
    char out[512];
    snprintf(out, sizeof out, "%s/rt-%s", tmproot, w);
    rm_rf(out);
    CHECK_EQ_INT(convert(src_dir, out, w), STTS_OK);
    mt_checkpoint *a = NULL, *b = NULL;
    stts_error e;
    CHECK_EQ_INT(mt_checkpoint_open(src_dir, &a, &e), STTS_OK);
    CHECK_MSG(mt_checkpoint_open(out, &b, &e) == STTS_OK, "%s", e.msg);
    if (!a || !b) goto done;
    CHECK(strstr(mt_checkpoint_path(b), "model.gguf") != NULL);
    CHECK_EQ_STR(mt_checkpoint_weights(b), w);
    CHECK(mt_checkpoint_weights(a) == NULL);
    size_t expect_out = 0;
    for (size_t i = 0; i < mt_checkpoint_count(a); i++) {
        const mt_tensor *s = mt_checkpoint_at(a, i);
        const mt_tensor *t = mt_checkpoint_find(b, s->name);
        if (!t) { /* only a tied copy of the shared embedding may be left out */
            const mt_tensor *sh = mt_checkpoint_find(a, "model.shared.weight");
            CHECK_MSG(emb_name(s->name) && sh && sh->nbytes == s->nbytes && !memcmp(sh->data, s->data, s->nbytes),
                      "%s missing from the converted file", s->name);
            continue;
        }
        expect_out++;
        CHECK_EQ_INT(t->ndim, s->ndim);
        for (int d = 0; d < s->ndim; d++) CHECK_EQ_INT(t->shape[d], s->shape[d]);
        CHECK_MSG(((uintptr_t)t->data & 4095u) == 0, "%s is not page-aligned", t->name);
        float *f = malloc((size_t)s->numel * sizeof *f);
        CHECK_EQ_INT(mt_tensor_to_f32(s, f, (size_t)s->numel, &e), STTS_OK);
        int two_d = s->ndim == 2;
        if (!two_d || !strcmp(w, "f32")) {
            CHECK_EQ_INT(t->dtype, MT_DTYPE_F32);
            CHECK_MSG(memcmp(t->data, f, (size_t)s->numel * 4) == 0, "%s: f32 bytes differ", s->name);
        } else if (!strcmp(w, "f16") || !strcmp(w, "bf16")) {
            CHECK_EQ_INT(t->dtype, w[0] == 'f' ? MT_DTYPE_F16 : MT_DTYPE_BF16);
            /* format 2: the rows in the interleaved layout where K % 32 == 0 */
            const int N = (int)s->shape[0], K = (int)s->shape[1];
            CHECK_EQ_INT(t->il, mt_il_rows(K, 2, N));
            if (t->il) g_interleaved_half++;
            uint16_t *row = malloc((size_t)K * 2);
            int bad = 0;
            for (int r = 0; r < N && !bad; r++) {
                mt_il_row_get(t->data, K, 2, t->il, r, row);
                for (int k = 0; k < K && !bad; k++) {
                    uint16_t want = w[0] == 'f' ? ref_f16(f[(size_t)r * K + k]) : mt_f32_to_bf16(f[(size_t)r * K + k]);
                    if (row[k] != want) {
                        CHECK_MSG(row[k] == want, "%s[%d][%d]: %04x, expected %04x", s->name, r, k, row[k], want);
                        bad = 1;
                    }
                }
            }
            free(row);
        } else {
            CHECK_EQ_INT(t->dtype, MT_DTYPE_I8);
            expect_out++;
            const mt_tensor *sc = mt_checkpoint_scale(b, t);
            CHECK(sc != NULL);
            if (sc) {
                CHECK_EQ_INT(sc->dtype, MT_DTYPE_F32);
                CHECK_EQ_INT(sc->ndim, 1);
                CHECK_EQ_INT(sc->shape[0], s->shape[0]);
                /* format 2: the rows in quant.h's interleaved layout where the
                 * shape allows (K % 64 == 0), the codes mt_quantize_row_i8's */
                const int N = (int)s->shape[0], K = (int)s->shape[1];
                CHECK_EQ_INT(t->il, mt_i8_interleave_rows(K, N));
                if (t->il) g_interleaved++;
                int8_t *q = malloc((size_t)K), *want_bytes = malloc((size_t)N * K);
                int bad = 0;
                for (int r = 0; r < N && !bad; r++) {
                    float want = mt_quantize_row_i8(f + (size_t)r * K, (size_t)K, q), got;
                    memcpy(&got, (const char *)sc->data + 4 * (size_t)r, 4);
                    bad = memcmp(&got, &want, 4) != 0;
                    CHECK_MSG(!bad, "%s row %d: scale differs from mt_quantize_row_i8", s->name, r);
                    mt_i8_row_put(want_bytes, K, t->il, r, q);
                }
                CHECK_MSG(!bad && memcmp(want_bytes, t->data, (size_t)N * K) == 0,
                          "%s: codes differ from mt_quantize_row_i8's in the interleaved layout", s->name);
                free(q);
                free(want_bytes);
            }
        }
        free(f);
    }
    CHECK_EQ_INT(mt_checkpoint_count(b), expect_out);
done:
    mt_checkpoint_close(a);
    mt_checkpoint_close(b);
    rm_rf(out);
}

static void test_round_trip(void) {
    static const char *const fx[] = {"tiny-f32-st", "tiny-f16-st", "tiny-bf16-st", "tiny-f32-pt"};
    static const char *const ws[] = {"f32", "f16", "bf16", "int8"};
    for (size_t i = 0; i < 4; i++) {
        char src[512];
        snprintf(src, sizeof src, FIX "%s", fx[i]);
        if (!exists(src)) continue;
        for (size_t j = 0; j < 4; j++) {
            test_current_ = fx[i];
            check_converted(src, ws[j]);
        }
    }
    test_current_ = "round_trip";
    /* converting a converted (int8) directory again keeps the same bytes */
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/again-a", tmproot);
    snprintf(b, sizeof b, "%s/again-b", tmproot);
    CHECK_EQ_INT(convert(FIX "tiny-f32-st", a, "int8"), STTS_OK);
    CHECK_EQ_INT(convert(a, b, "int8"), STTS_OK);
    char pa[600], pb[600];
    snprintf(pa, sizeof pa, "%s/model.gguf", a);
    snprintf(pb, sizeof pb, "%s/model.gguf", b);
    size_t na = 0, nb = 0;
    unsigned char *x = read_all(pa, &na), *y = read_all(pb, &nb);
    CHECK(x && y && na == nb && memcmp(x, y, na) == 0);
    free(x), free(y);
    /* an int8 directory converted to f32 holds q * scale */
    CHECK_EQ_INT(convert(a, b, "f32"), STTS_OK);
    mt_checkpoint *qa = NULL, *qb = NULL;
    stts_error e;
    CHECK_EQ_INT(mt_checkpoint_open(a, &qa, &e), STTS_OK);
    CHECK_EQ_INT(mt_checkpoint_open(b, &qb, &e), STTS_OK);
    /* any layout: q * scale, row by row */
    static const char *const names[] = {"model.encoder.layers.0.fc1.weight", "model.encoder.layers.0.fc2.weight"};
    for (int ni = 0; ni < 2; ni++) {
        const mt_tensor *q = qa ? mt_checkpoint_find(qa, names[ni]) : NULL;
        const mt_tensor *f = qb ? mt_checkpoint_find(qb, names[ni]) : NULL;
        CHECK(q && f && q->dtype == MT_DTYPE_I8 && f->dtype == MT_DTYPE_F32 && q->numel == f->numel);
        if (!q || !f) continue;
        const mt_tensor *sc = mt_checkpoint_scale(qa, q);
        const int N = (int)q->shape[0], K = (int)q->shape[1];
        CHECK_EQ_INT(q->il, mt_i8_interleave_rows(K, N));
        float *want = malloc((size_t)q->numel * sizeof *want);
        int8_t *row = malloc((size_t)K);
        for (int r = 0; r < N; r++) {
            float s;
            memcpy(&s, (const char *)sc->data + 4 * (size_t)r, 4);
            mt_i8_row_get((const int8_t *)q->data, K, q->il, r, row);
            for (int k = 0; k < K; k++) want[(size_t)r * K + k] = (float)row[k] * s;
        }
        CHECK_MSG(memcmp(want, f->data, (size_t)q->numel * 4) == 0, "%s: f32 from int8 is not q * scale", names[ni]);
        free(want);
        free(row);
        if (ni) continue;
        /* today's f32 conversion path says what an int8 tensor needs */
        float one[1];
        CHECK_EQ_INT(mt_tensor_to_f32(q, one, 1, &e), STTS_ERR_INVALID_ARG);
        float *buf2 = malloc((size_t)q->numel * sizeof *buf2);
        CHECK_EQ_INT(mt_tensor_to_f32(q, buf2, (size_t)q->numel, &e), STTS_ERR_UNSUPPORTED);
        CHECK(strstr(e.msg, "--weights bf16 or f32") != NULL);
        free(buf2);
    }
    CHECK_MSG(g_interleaved > 0, "no converted int8 tensor was in the interleaved layout (the tiny fixtures' fc2)");
    CHECK_MSG(g_interleaved_half > 0, "no converted bf16 / f16 tensor was in the interleaved layout");
    /* the version field of a real converted file corrupted: to 1 (the
     * row-major format, no longer read) and to 2 (read, but its files have
     * no source dtype) are both refused; before, 1 read the interleaved
     * int8 rows as row-major and translated garbage with exit 0 */
    size_t n1 = 0;
    unsigned char *img = read_all(pa, &n1);
    static const char key[] = "stts.format_version";
    unsigned char *kp = NULL;
    for (size_t i = 0; img && !kp && i + sizeof key < n1; i++)
        if (!memcmp(img + i, key, sizeof key - 1)) kp = img + i;
    CHECK(kp != NULL);
    for (int v = 1; kp && v <= 2; v++) {
        mt_checkpoint *c1 = NULL;
        kp[sizeof key - 1 + 4] = (unsigned char)v; /* after the key: u32 type, then the u32 value (little-endian) */
        CHECK_MSG(mt_checkpoint_open_gguf_mem(img, n1, &c1, &e) != STTS_OK &&
                      strstr(e.msg, v == 1 ? "another version of stream-tts" : "a corrupt header"),
                  "format %d: %s", v, e.msg);
        mt_checkpoint_close(c1);
    }
    free(img);
    mt_checkpoint_close(qa);
    mt_checkpoint_close(qb);
    rm_rf(a), rm_rf(b);
}

static void test_f16_rounding(void) {
    static const float v[] = {0.0f, -0.0f, 1.0f, 65504.0f, 65519.0f, 65520.0f, 1e9f, -1e9f, 0x1p-14f, 0x1p-24f,
                              0x1p-25f, 0x1.8p-25f, 0x1p-26f, 1.00048828125f, 1.000732421875f, 3.14159f};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        CHECK_MSG(mt_convert_f32_to_f16(v[i]) == ref_f16(v[i]), "%a: %04x vs %04x", (double)v[i],
                  mt_convert_f32_to_f16(v[i]), ref_f16(v[i]));
    uint32_t x = 12345;
    for (int i = 0; i < 1000000; i++) {
        x = x * 1664525u + 1013904223u;
        float f;
        uint32_t u = x;
        memcpy(&f, &u, 4);
        if (f != f) continue;
        if (mt_convert_f32_to_f16(f) != ref_f16(f)) {
            CHECK_MSG(0, "%a: %04x vs %04x", (double)f, mt_convert_f32_to_f16(f), ref_f16(f));
            break;
        }
    }
    CHECK((mt_convert_f32_to_f16(__builtin_nanf("")) & 0x7c00) == 0x7c00 && (mt_convert_f32_to_f16(__builtin_nanf("")) & 0x3ff));
}

/* ---------- translation parity ---------- */

static const char *const sentences[] = {"Hello.", "Hello, world!", "I can't tell who will arrive first.",
                                        "Many animals have been destroyed by men.", "Where is the station?",
                                        "It's 3:45 pm on 2024-05-06.", "Please bear this fact in mind.",
                                        "The answer is 42, not 41.5.", "She went to the market yesterday.",
                                        "I don't know what to do."};

static void check_parity(const char *src, const char *w) {
    char out[512];
    snprintf(out, sizeof out, "%s/par-%s", tmproot, w);
    rm_rf(out);
    CHECK_EQ_INT(convert(src, out, w), STTS_OK);
    nllb_model_params mp = nllb_model_default_params();
    mp.threads = 1;
    nllb_model *ma = NULL, *mb = NULL;
    nllb_session *sa = NULL, *sb = NULL;
    stts_error e;
    CHECK_MSG(nllb_model_load(src, &mp, &ma, &e) == STTS_OK, "%s", e.msg);
    CHECK_MSG(nllb_model_load(out, &mp, &mb, &e) == STTS_OK, "%s", e.msg);
    if (ma && mb) {
        CHECK_EQ_INT(nllb_session_new(ma, NULL, &sa, &e), STTS_OK);
        CHECK_EQ_INT(nllb_session_new(mb, NULL, &sb, &e), STTS_OK);
    }
    if (sa && sb) {
        nllb_translate_params tp = nllb_translate_default_params();
        tp.max_new_tokens = 24;
        for (size_t i = 0; i < sizeof sentences / sizeof *sentences; i++) {
            nllb_result ra, rb;
            memset(&ra, 0, sizeof ra);
            memset(&rb, 0, sizeof rb);
            CHECK_EQ_INT(nllb_translate(sa, &sentences[i], 1, "eng_Latn", "jpn_Jpan", &tp, &ra, &e), STTS_OK);
            CHECK_EQ_INT(nllb_translate(sb, &sentences[i], 1, "eng_Latn", "jpn_Jpan", &tp, &rb, &e), STTS_OK);
            int same = ra.n_ids == rb.n_ids && ra.n_ids > 0 && memcmp(ra.ids, rb.ids, sizeof(int32_t) * (size_t)ra.n_ids) == 0;
            CHECK_MSG(same, "%s (%s): \"%s\": %s vs %s", src, w, sentences[i], ra.text ? ra.text : "?",
                      rb.text ? rb.text : "?");
            nllb_result_clear(&ra);
            nllb_result_clear(&rb);
        }
    }
    nllb_session_free(sa);
    nllb_session_free(sb);
    nllb_model_free(ma);
    nllb_model_free(mb);
    rm_rf(out);
}

static void test_parity(void) {
    if (exists(FIX "tiny-f32-st")) {
        check_parity(FIX "tiny-f32-st", "f32");
        check_parity(FIX "tiny-f32-pt", "f32");
        check_parity(FIX "tiny-f16-st", "f16");
        check_parity(FIX "tiny-bf16-st", "bf16");
    }
    /* the demo model is f16 on disk: f16 is lossless; f32 too, the values
     * being the same, and the file records the source dtype (f16) that the
     * position rounding follows (check-convert-cli.sh compares every format
     * on 500 sentences, scores included) */
    check_parity(DEMO, "f16");
    check_parity(DEMO, "f32");
}

/* ---------- bad files, built by hand ---------- */

typedef struct {
    const char *name;
    uint32_t type, nd;
    uint64_t dims[5];
    uint64_t offset;
} tb_t;

typedef struct {
    const char *magic;
    uint32_t version, fmt, align;
    const char *weights, *arch;
    const char *src_dtype; /* NULL: no "stts.source.dtype" (format 2) */
    int no_fmt, no_align, dup_key;
    size_t extra; /* bytes appended after the last tensor */
    uint64_t nt_claim; /* 0: the real count */
    int nt;
    tb_t t[8];
    float fill; /* value written into every data byte group */
} tb;

typedef struct {
    unsigned char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *d, size_t k) {
    if (b->n + k > b->cap) {
        b->cap = (b->n + k) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, k);
    b->n += k;
}
static void put32(buf *b, uint32_t v) {
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    put(b, x, 4);
}
static void put64(buf *b, uint64_t v) {
    unsigned char x[8];
    for (int i = 0; i < 8; i++) x[i] = (unsigned char)(v >> (8 * i));
    put(b, x, 8);
}
static void putstr(buf *b, const char *s) {
    put64(b, strlen(s));
    put(b, s, strlen(s));
}

static size_t tb_size(uint32_t type) { return type == 0 ? 4 : type == 24 ? 1 : 2; }

/* A valid int8 file (format 3, packed as the writer packs: each tensor at
 * the next multiple of 4096): "a.weight" [4][8] int8, its scale [4],
 * "ln.weight" [8] f32. */
static tb tb_valid(void) {
    tb t;
    memset(&t, 0, sizeof t);
    t.magic = "GGUF";
    t.version = 3;
    t.fmt = 3;
    t.align = 4096;
    t.weights = "int8";
    t.arch = "m2m_100";
    t.src_dtype = "f16";
    t.nt = 3;
    t.t[0] = (tb_t){"a.weight", 24, 2, {8, 4}, 0};
    t.t[1] = (tb_t){"a.weight.scale", 0, 1, {4}, 4096};
    t.t[2] = (tb_t){"ln.weight", 0, 1, {8}, 8192};
    t.fill = 0.25f;
    return t;
}

static size_t tb_build(const tb *t, unsigned char **out, size_t *header_end) {
    buf b = {0};
    put(&b, t->magic, 4);
    put32(&b, t->version);
    put64(&b, t->nt_claim ? t->nt_claim : (uint64_t)t->nt);
    put64(&b, (uint64_t)(7 - t->no_fmt - t->no_align - !t->src_dtype + t->dup_key));
    putstr(&b, "general.architecture"), put32(&b, 8), putstr(&b, t->arch);
    if (!t->no_align) putstr(&b, "general.alignment"), put32(&b, 4), put32(&b, t->align);
    if (t->src_dtype) putstr(&b, "stts.source.dtype"), put32(&b, 8), putstr(&b, t->src_dtype);
    if (!t->no_fmt) putstr(&b, "stts.format_version"), put32(&b, 4), put32(&b, t->fmt);
    putstr(&b, "stts.weights"), put32(&b, 8), putstr(&b, t->weights);
    putstr(&b, "stts.source.config_size"), put32(&b, 10), put64(&b, 0);
    if (t->dup_key) putstr(&b, "stts.weights"), put32(&b, 8), putstr(&b, t->weights);
    putstr(&b, "stts.source.config_fnv1a64"), put32(&b, 10), put64(&b, 0);
    uint64_t end = 0;
    for (int i = 0; i < t->nt; i++) {
        const tb_t *x = &t->t[i];
        putstr(&b, x->name);
        put32(&b, x->nd);
        uint64_t ne = 1;
        for (uint32_t d = 0; d < x->nd; d++) put64(&b, x->dims[d]), ne *= x->dims[d];
        put32(&b, x->type);
        put64(&b, x->offset);
        if (x->nd <= 4 && ne < (1u << 20) && x->offset < (1u << 20) && x->offset + ne * tb_size(x->type) > end)
            end = x->offset + ne * tb_size(x->type);
    }
    if (header_end) *header_end = b.n;
    while (b.n % t->align) put(&b, "", 1);
    size_t data = b.n;
    for (uint64_t k = 0; k < end + t->extra; k += 4) put(&b, &t->fill, 4);
    b.n = data + end + t->extra;
    /* int8 codes: any bytes are valid; keep them small */
    *out = b.p;
    return b.n;
}

static stts_status open_tb(const tb *t, stts_error *e) {
    unsigned char *p;
    size_t n = tb_build(t, &p, NULL);
    mt_checkpoint *ck = NULL;
    stts_status s = mt_checkpoint_open_gguf_mem(p, n, &ck, e);
    mt_checkpoint_close(ck);
    free(p);
    return s;
}

#define BAD(mutation, want)                                                                          \
    do {                                                                                             \
        tb t_ = tb_valid();                                                                          \
        mutation;                                                                                    \
        stts_error e_;                                                                               \
        stts_error_clear(&e_);                                                                       \
        stts_status s_ = open_tb(&t_, &e_);                                                          \
        CHECK_MSG(s_ != STTS_OK && strstr(e_.msg, want) && strstr(e_.msg, "model.gguf"),             \
                  "%s: status %d, message \"%s\" (expected \"%s\")", #mutation, (int)s_, e_.msg, want); \
    } while (0)

static void test_bad_files(void) {
    tb ok = tb_valid();
    stts_error e;
    CHECK_MSG(open_tb(&ok, &e) == STTS_OK, "the valid hand-built file: %s", e.msg);
    /* format 2 (before stts.source.dtype) is still read */
    tb ok2 = tb_valid();
    ok2.fmt = 2;
    ok2.src_dtype = NULL;
    CHECK_MSG(open_tb(&ok2, &e) == STTS_OK, "a format 2 file: %s", e.msg);
    BAD(t_.magic = "GGUX", "not a GGUF file");
    BAD(t_.version = 2, "GGUF version 2");
    BAD(t_.version = 4, "re-run stream-tts convert");
    BAD(t_.fmt = 4, "another version of stream-tts");
    BAD(t_.fmt = 0, "another version of stream-tts");
    /* format 1 (row-major) is no longer read: its files differ from format
     * 2 in byte order alone, so a version field corrupted to 1 was misread */
    BAD(t_.fmt = 1, "another version of stream-tts");
    /* a version corrupted within the formats read: the source dtype key
     * that format 3 requires and format 2 never has tells it */
    BAD(t_.fmt = 2, "whose files have no \"stts.source.dtype\"");
    BAD(t_.src_dtype = NULL, "without \"stts.source.dtype\"");
    BAD(t_.src_dtype = "f8", "expected f32, f16 or bf16");
    BAD(t_.no_fmt = 1, "not one written by stream-tts convert");
    BAD(t_.weights = "int4", "weight format tag");
    BAD(t_.weights = "f32", "wrong format tag");
    BAD(t_.arch = "llama", "m2m_100");
    /* the writer's alignment only: a smaller one shifted every tensor and
     * loaded garbage (2026-12-03 review, finding 2) */
    BAD(t_.align = 48, "always writes 4096");
    BAD(t_.align = 32, "always writes 4096");
    BAD(t_.align = 256, "always writes 4096");
    BAD(t_.align = 1u << 20, "always writes 4096");
    BAD(t_.no_align = 1, "\"general.alignment\" is absent");
    BAD(t_.nt = 0, "claims 0 tensors");
    /* offsets as the writer packs them, and nothing after the last tensor */
    BAD(t_.t[2].offset = 3 * 4096, "stream-tts convert puts the next tensor at byte 8192");
    BAD(t_.extra = 4096, "bytes appended");
    BAD(t_.dup_key = 1, "occurs twice");
    BAD(t_.nt_claim = 1u << 30, "more than the file can hold");
    BAD(t_.t[2].offset = 1u << 20, "data section");
    BAD(t_.t[2].offset = 8192 + 96, "not a multiple of the alignment");
    BAD((t_.t[1].dims[0] = 2048, t_.t[1].offset = 0, t_.t[0].offset = 4096), "overlap");
    BAD((t_.t[2].dims[0] = 1ull << 62, t_.t[2].nd = 2, t_.t[2].dims[1] = 1ull << 62), "overflow");
    BAD(t_.t[2].dims[0] = 0, "out of range");
    BAD((t_.t[2].nd = 5, t_.t[2].dims[4] = 1), "dimensions");
    BAD(t_.t[2].type = 2, "GGML type 2");
    BAD(t_.t[2].type = 1, "wrong format tag");
    BAD(t_.t[2].name = "a.weight", "occurs more than once");
    BAD(t_.t[1].name = "b.weight.scale", "has no scale tensor");
    BAD(t_.t[1].dims[0] = 3, "must be F32 of shape [4]");
    BAD(t_.t[0].nd = 1, "must be 2-D");
    BAD(t_.fill = -1.0f, "scales are finite");
    BAD(t_.t[0].name = "", "empty name");
}

static void test_truncation(void) {
    tb ok = tb_valid();
    unsigned char *p;
    size_t hdr = 0, n = tb_build(&ok, &p, &hdr);
    /* every cut inside header, metadata and tensor infos, and at random
     * points of the data: refused, saying it is truncated */
    uint32_t x = 7;
    for (size_t cut = 0; cut < n; cut++) {
        if (cut > hdr + 8) {
            x = x * 1664525u + 1013904223u;
            if (x % 8) continue;
        }
        unsigned char *q = malloc(cut ? cut : 1);
        memcpy(q, p, cut);
        mt_checkpoint *ck = NULL;
        stts_error e;
        stts_error_clear(&e);
        stts_status s = mt_checkpoint_open_gguf_mem(q, cut, &ck, &e);
        CHECK_MSG(s != STTS_OK && (strstr(e.msg, "truncated") || strstr(e.msg, "data section")),
                  "cut at %zu of %zu: %d \"%s\"", cut, n, (int)s, e.msg);
        mt_checkpoint_close(ck);
        free(q);
    }
    free(p);
    /* a truncated converted file in a model directory: the loader names the
     * file and says to convert again */
    char out[512], path[600];
    snprintf(out, sizeof out, "%s/trunc", tmproot);
    rm_rf(out);
    CHECK_EQ_INT(convert(FIX "tiny-f32-st", out, "int8"), STTS_OK);
    snprintf(path, sizeof path, "%s/model.gguf", out);
    struct stat st;
    CHECK(stat(path, &st) == 0);
    CHECK(truncate(path, st.st_size - 100) == 0);
    nllb_model *m = NULL;
    stts_error e;
    CHECK(nllb_model_load(out, NULL, &m, &e) != STTS_OK);
    CHECK_MSG(strstr(e.msg, path) && strstr(e.msg, "re-run stream-tts convert"), "%s", e.msg);
    nllb_model_free(m);
    rm_rf(out);
}

static void test_config_mismatch(void) {
    char out[512], cfg[600];
    snprintf(out, sizeof out, "%s/cfg", tmproot);
    rm_rf(out);
    CHECK_EQ_INT(convert(FIX "tiny-f32-st", out, "f32"), STTS_OK);
    snprintf(cfg, sizeof cfg, "%s/config.json", out);
    FILE *f = fopen(cfg, "a");
    fputs(" ", f);
    fclose(f);
    mt_checkpoint *ck = NULL;
    stts_error e;
    CHECK(mt_checkpoint_open(out, &ck, &e) == STTS_ERR_FORMAT);
    CHECK_MSG(strstr(e.msg, "different config.json") && strstr(e.msg, "re-run stream-tts convert"), "%s", e.msg);
    mt_checkpoint_close(ck);
    rm_rf(out);
}

/* ---------- the rename rule ---------- */

static int count_tmp(const char *dir) {
    DIR *d = opendir(dir);
    int k = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp")) k++;
    if (d) closedir(d);
    return k;
}

static void test_replace_while_mapped(void) {
    char out[512];
    snprintf(out, sizeof out, "%s/live", tmproot);
    rm_rf(out);
    CHECK_EQ_INT(convert(FIX "tiny-f32-st", out, "f32"), STTS_OK);
    mt_checkpoint *ck = NULL;
    stts_error e;
    CHECK_EQ_INT(mt_checkpoint_open(out, &ck, &e), STTS_OK);
    if (!ck) return;
    const mt_tensor *t = mt_checkpoint_find(ck, "model.shared.weight");
    CHECK(t != NULL);
    unsigned char *copy = malloc(t->nbytes);
    memcpy(copy, t->data, t->nbytes);
    /* in place: the directory converts itself (its model.gguf is the source) */
    CHECK_EQ_INT(convert(out, out, "bf16"), STTS_OK);
    CHECK_MSG(memcmp(copy, t->data, t->nbytes) == 0, "the old mapping changed under a running reader");
    CHECK_EQ_INT(count_tmp(out), 0);
    mt_checkpoint *ck2 = NULL;
    CHECK_EQ_INT(mt_checkpoint_open(out, &ck2, &e), STTS_OK);
    CHECK_EQ_STR(mt_checkpoint_weights(ck2), "bf16");
    mt_checkpoint_close(ck2);
    mt_checkpoint_close(ck);

    /* a write that fails (file size limit: EFBIG, as a full disk gives
     * ENOSPC) reports it, removes its temporary file, keeps the old files */
    char gg[600];
    snprintf(gg, sizeof gg, "%s/model.gguf", out);
    size_t n0 = 0;
    unsigned char *before = read_all(gg, &n0);
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {100000, 100000};
        setrlimit(RLIMIT_FSIZE, &rl);
        mt_convert_params p = {"f32", NULL, NULL};
        stts_error e2;
        stts_status s = mt_convert_model(FIX "tiny-f32-st", out, &p, NULL, &e2);
        if (write(fds[1], e2.msg, strlen(e2.msg)) < 0) _exit(3);
        _exit(s == STTS_ERR_IO ? 0 : 1);
    }
    close(fds[1]);
    char msg[600] = "";
    ssize_t k = read(fds[0], msg, sizeof msg - 1);
    msg[k > 0 ? k : 0] = 0;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", msg);
    CHECK_MSG(strstr(msg, "file too large") && strstr(msg, "partial file was removed"), "%s", msg);
    CHECK_EQ_INT(count_tmp(out), 0);
    size_t n1 = 0;
    unsigned char *after = read_all(gg, &n1);
    CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0);
    free(before), free(after), free(copy);
    rm_rf(out);
}

static void test_bad_arguments(void) {
    mt_convert_params p = {"int4", NULL, NULL};
    stts_error e;
    CHECK_EQ_INT(mt_convert_model(FIX "tiny-f32-st", "/tmp/x", &p, NULL, &e), STTS_ERR_INVALID_ARG);
    CHECK(strstr(e.msg, "int4") && strstr(e.msg, "int8, bf16, f16 or f32"));
    p.weights = "int8";
    CHECK_EQ_INT(mt_convert_model("/nonexistent/model", "/tmp/x", &p, NULL, &e), STTS_ERR_NOT_FOUND);
    CHECK(strstr(e.msg, "/nonexistent/model") != NULL);
    char out[512];
    snprintf(out, sizeof out, "%s/no-parent/out", tmproot);
    CHECK_EQ_INT(mt_convert_model(FIX "tiny-f32-st", out, &p, NULL, &e), STTS_ERR_IO);
    CHECK(strstr(e.msg, "cannot create the output directory") != NULL);
}

static int write_seeds(const char *dir) {
    mkdir(dir, 0755);
    tb v[4] = {tb_valid(), tb_valid(), tb_valid(), tb_valid()};
    v[1].weights = "f16";
    v[1].nt = 2;
    v[1].t[0] = (tb_t){"a.weight", 1, 2, {8, 4}, 0};
    v[1].t[1] = (tb_t){"ln.weight", 0, 1, {8}, 4096};
    v[2].weights = "bf16";
    v[2].nt = 2;
    v[2].t[0] = (tb_t){"a.weight", 30, 2, {8, 4}, 0};
    v[2].t[1] = (tb_t){"ln.weight", 0, 1, {8}, 4096};
    v[3].weights = "f32";
    v[3].nt = 1;
    v[3].t[0] = (tb_t){"x", 0, 3, {2, 2, 2}, 0};
    for (int i = 0; i < 4; i++) {
        unsigned char *p;
        size_t n = tb_build(&v[i], &p, NULL);
        char path[1024];
        snprintf(path, sizeof path, "%s/seed-%d.gguf", dir, i);
        FILE *f = fopen(path, "wb");
        if (!f) return 1;
        fwrite(p, 1, n, f);
        fclose(f);
        free(p);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--write-seeds")) return write_seeds(argv[2]);
    snprintf(tmproot, sizeof tmproot, "/tmp/stts-gguf-XXXXXX");
    if (!mkdtemp(tmproot)) return 1;
    if (!exists(FIX "tiny-f32-st") || !exists(DEMO "/model.safetensors"))
        TEST_SKIP_ALL("tests/fixtures/mt or models/demo-en-ja is missing");
    TEST_RUN(test_f16_rounding);
    TEST_RUN(test_round_trip);
    TEST_RUN(test_parity);
    TEST_RUN(test_bad_files);
    TEST_RUN(test_truncation);
    TEST_RUN(test_config_mismatch);
    TEST_RUN(test_replace_while_mapped);
    TEST_RUN(test_bad_arguments);
    rm_rf(tmproot);
    return TEST_SUMMARY();
}
