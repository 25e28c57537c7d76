/* cpu_backend.c - the CPU implementation of the engine's backend ops
 * (backend.h). Weights: f32/bf16/f16/int8 handles, used in place from the
 * mapped checkpoint when it already holds the compute format, else converted
 * once (quant.h's rules) on the backend's load pool. Executors: one thread
 * pool + scratch each (one per session), so sessions run at once; kernels
 * picked at run time (kernels.c). Linear layers split the output rows of W
 * over the threads (each thread streams its own slice of the weights);
 * int8 quantizes the activation rows first (quant.h's rule) and multiplies
 * every row of x with each 4-row block of W while it is in L1; with 8 or
 * more rows (the encoder) bf16/f16 weights take a blocked path on scalar
 * and NEON levels: a slice of W is widened to f32 once into a per-thread
 * tile and every row of x is multiplied with it (compute-bound GEMM instead
 * of repeated GEMV); x86's half kernel widens its own panels.
 * Attention splits (row, head) pairs; the small row-wise ops (LayerNorm,
 * embedding) run on the calling thread. */
#define _GNU_SOURCE
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend.h"
#include "kernels.h"
#include "quant.h"
#include "select.h"
#include "threadpool.h"

#define MAX_PARTS 4

typedef struct {
    mt_weight h;
    int nparts, part_rows;
    const void *data[MAX_PARTS];   /* part p's rows */
    const float *scale[MAX_PARTS]; /* int8: part p's row scales */
    void *owned;                   /* converted storage (NULL when in place) */
    int il;                        /* int8, bf16, f16: each part's first il rows are interleaved (kernels.h), 0: row-major */
} cpu_weight;

typedef struct {
    mt_backend base;
    mt_pool *load_pool; /* weight conversion at load */
    int level;
    int max_kv;
    mt_backend_ops ops_search_selects; /* STTS_CPU_SELECT=search: cpu_ops without select_topk */
} cpu_backend;

/* STTS_CPU_PROFILE=1: each executor times its ops (wall clock of the
 * calling thread, so a pool run counts its slowest chunk and the fork/join)
 * by kind and by phase (decode of one row: greedy; of 2-8 rows: beams or
 * several sentences; encode: more), and prints the
 * table to stderr when it is freed: where a step's or an encoder's time
 * goes, without a profiler on the machine. */
enum { PROF_QUANT, PROF_LINEAR, PROF_LAYERNORM, PROF_ATTENTION, PROF_EMBED, PROF_COPY, PROF_SELECT, PROF_N };
static const char *const PROF_NAMES[PROF_N] = {"quantize x (int8)", "linear", "layernorm", "attention", "embed",
                                               "copy", "select"};

typedef struct {
    mt_exec head;
    mt_pool *pool;
    int level;
    float **scratch;    /* per thread: ATTN_GROUP_MAX x max_kv attention scores */
    float **tile;       /* per thread: widened W slice of the blocked path */
    size_t tile_n;
    int8_t *xq;         /* int8 activations [M][K] */
    float *xs;          /* their row scales */
    size_t xq_n, xs_n;
    int *sel_top;       /* select_topk: each chunk's top k columns [rows][chunks][k] */
    double *sel_sum;    /* each chunk's exponential sum, then its count of columns in sel_top [rows][chunks] */
    size_t sel_top_n, sel_sum_n;
    float *pos_tab;     /* sinusoidal position rows [pos_n][pos_d], filled on first use (pos_have) */
    unsigned char *pos_have;
    int pos_n, pos_d, pos_round;
    int profile;                          /* STTS_CPU_PROFILE */
    uint64_t prof_ns[PROF_N][3], prof_calls[PROF_N][3]; /* [kind][phase: prof_phase] */
    uint32_t prof_hist[PROF_N][3][40];    /* calls by duration, in powers of two of ns */
} cpu_exec;

static const char *const PROF_PHASES[3] = {"decode 1", "decode n", "encode"};
static int prof_phase(int rows) { return rows > 8 ? 2 : rows > 1; }

static uint64_t prof_begin(const cpu_exec *x) { return x->profile ? stts_now_ns() : 0; }
static void prof_end(cpu_exec *x, int kind, int rows, uint64_t t0) {
    if (!x->profile) return;
    int enc = prof_phase(rows);
    uint64_t d = stts_now_ns() - t0;
    x->prof_ns[kind][enc] += d;
    x->prof_calls[kind][enc]++;
    int b = (int)log2((double)(d | 1)); /* bucket b: [2^b, 2^(b+1)) ns */
    x->prof_hist[kind][enc][b < 40 ? b : 39]++;
}

/* The median call's duration (the upper bound of its power-of-two bucket):
 * the sum is skewed by first touches (a KV-cache page faulted in on a
 * warm-up's first step took 8 ms on the dev VM, ~1 us afterwards). */
static double prof_median_us(const cpu_exec *x, int k, int e) {
    uint64_t seen = 0, half = (x->prof_calls[k][e] + 1) / 2;
    for (int b = 0; b < 40; b++)
        if ((seen += x->prof_hist[k][e][b]) >= half) return (double)(2ull << b) / 1e3;
    return 0.0;
}

static void prof_print(const cpu_exec *x) {
    uint64_t all = 0;
    for (int k = 0; k < PROF_N; k++) all += x->prof_ns[k][0] + x->prof_ns[k][1] + x->prof_ns[k][2];
    fprintf(stderr, "cpu profile (%s, %d threads): %.3f ms in ops\n", x->head.be->desc, x->head.threads, all / 1e6);
    for (int e = 0; e < 3; e++)
        for (int k = 0; k < PROF_N; k++)
            if (x->prof_calls[k][e])
                fprintf(stderr, "  %-8s %-18s %8llu calls %10.3f ms %8.2f us/call (median < %.1f) %5.1f%%\n",
                        PROF_PHASES[e], PROF_NAMES[k], (unsigned long long)x->prof_calls[k][e],
                        x->prof_ns[k][e] / 1e6, x->prof_ns[k][e] / 1e3 / (double)x->prof_calls[k][e],
                        prof_median_us(x, k, e), all ? 100.0 * x->prof_ns[k][e] / all : 0.0);
    if (x->profile < 2) return;
    /* STTS_CPU_PROFILE=2: each kind's calls and time by duration (where a
     * mean far above the median comes from) */
    for (int e = 0; e < 3; e++)
        for (int k = 0; k < PROF_N; k++) {
            if (!x->prof_calls[k][e]) continue;
            fprintf(stderr, "  %-8s %-18s by duration:", PROF_PHASES[e], PROF_NAMES[k]);
            for (int b = 0; b < 40; b++)
                if (x->prof_hist[k][e][b])
                    fprintf(stderr, " <%.1fus:%u", (double)(2ull << b) / 1e3, x->prof_hist[k][e][b]);
            fputc('\n', stderr);
        }
}

/* Below this many multiply-adds a call runs on the calling thread: waking
 * the pool costs more than the work (tiny test models, LayerNorm-sized ops). */
#define PAR_MIN_MACS 65536
#define ATTN_PAR_MIN_MACS 8192
/* Heads per attention task at most (scratch: ATTN_GROUP_MAX x max_kv scores). */
#define ATTN_GROUP_MAX 16
/* Row-wise work (LayerNorm, quantizing x) goes to the pool from this many
 * values (rows x columns) times threads, never for one row: below it,
 * waking the pool costs more than the work saves. The rule was 8 rows (the
 * encoder's 25 LayerNorms and 84 quantizations had run on one of 16
 * threads: ~3 of its 14 ms, with the scalar LayerNorm of then). Measured
 * 2026-12-02 with the vector LayerNorm and quantizer, on the encoder's 20
 * rows: the 2-core VM at 2 threads, 20 x 1024 LayerNorms 8-9 us a call on
 * the calling thread against 16-25 on the pool, the encoder 11.2 against
 * 11.65 ms (3 alternating rounds); the 16-core host at 16 threads, the pool
 * as fast or faster (the encoder 4.1-4.8 ms either way). So the bar falls as
 * threads rise: 65536 values at 2 threads, 8192 at 16 (the encoder's rows
 * stay on the pool there). STTS_CPU_ROWS_PAR=N sets another bar (values x
 * threads / 2; 0: the pool from 2 rows), for A/B runs. */
#define ROWS_PAR_MIN_VALUES 65536
static long rows_par_min(void) {
    static long v = -1; /* read once; a benign race between executors sets the same value */
    long r = __atomic_load_n(&v, __ATOMIC_RELAXED);
    if (r < 0) {
        const char *e = getenv("STTS_CPU_ROWS_PAR");
        r = e && *e ? atol(e) : ROWS_PAR_MIN_VALUES;
        if (r < 0) r = 0;
        __atomic_store_n(&v, r, __ATOMIC_RELAXED);
    }
    return r;
}
static int rows_to_pool(const cpu_exec *x, int M, int K) {
    return x->head.threads > 1 && M >= 2 && (long)M * K * x->head.threads >= 2 * rows_par_min();
}
/* Rows of x from which non-f32 weights take the blocked (widen once) path. */
#define GEMM_MIN_ROWS 8

const char *mt_wfmt_name(mt_wfmt f) {
    switch (f) {
    case MT_WF_F32: return "f32";
    case MT_WF_BF16: return "bf16";
    case MT_WF_F16: return "f16";
    case MT_WF_I8: return "int8";
    }
    return "?";
}

static size_t wfmt_size(mt_wfmt f) { return f == MT_WF_F32 ? 4 : f == MT_WF_I8 ? 1 : 2; }

/* Converted int8 storage: rows x cols codes, then the f32 row scales at a
 * 64-byte aligned offset. */
static size_t i8_scale_off(int rows, int cols) { return ((size_t)rows * cols + 63) & ~(size_t)63; }

/* Floats to allocate for a converted weight of this head. */
static size_t owned_floats(const mt_weight *h) {
    if (h->fmt == MT_WF_I8) return (i8_scale_off(h->rows, h->cols) + (size_t)h->rows * sizeof(float)) / 4;
    return ((size_t)h->rows * h->cols * wfmt_size(h->fmt) + 3) / 4;
}

static float *cpu_alloc(mt_backend *be, size_t n) {
    (void)be;
    size_t bytes = n * sizeof(float);
    if (bytes == 0) bytes = 64;
    /* Large buffers (weights, KV caches) on 2 MB boundaries with huge pages
     * asked for: fewer TLB misses while streaming hundreds of MB per step. */
    size_t align = bytes >= (4u << 20) ? (2u << 20) : 64;
    bytes = (bytes + align - 1) / align * align;
    void *p = NULL;
    if (posix_memalign(&p, align, bytes) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    if (align > 64) madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}

static void cpu_release(mt_backend *be, float *p) {
    (void)be;
    free(p);
}

static stts_status cpu_copy(mt_exec *x, float *dst, const float *src, size_t n) {
    (void)x;
    if (dst != src && n) memmove(dst, src, n * sizeof(float));
    return STTS_OK;
}

static void cpu_destroy(mt_backend *be) {
    cpu_backend *c = (cpu_backend *)be;
    if (!c) return;
    mt_pool_free(c->load_pool);
    free(c);
}

/* ---- weights ---- */

/* Row r of part data as f32 (any source dtype; int8's first il rows
 * interleaved, quant.h). */
static void src_row_f32(mt_dtype dt, const void *data, const float *scale, int il, size_t r, int cols, float *dst) {
    size_t o = r * (size_t)cols;
    if (dt == MT_DTYPE_I8 && (int)r < il) { /* 64-byte pieces 256 bytes apart */
        const int8_t *g = (const int8_t *)data + (r & ~(size_t)3) * cols + 64 * (r & 3);
        float s = scale[r];
        for (int k = 0; k < cols; k += 64)
            for (int i = 0; i < 64; i++) dst[k + i] = (float)g[4 * k + i] * s;
        return;
    }
    if ((dt == MT_DTYPE_BF16 || dt == MT_DTYPE_F16) && (int)r < il) { /* 32-value pieces 128 values apart */
        const uint16_t *g = (const uint16_t *)data + (r & ~(size_t)3) * cols + 32 * (r & 3);
        for (int k = 0; k < cols; k += 32) src_row_f32(dt, g + 4 * (size_t)k, NULL, 0, 0, 32, dst + k);
        return;
    }
    switch (dt) {
    case MT_DTYPE_F32: memcpy(dst, (const float *)data + o, (size_t)cols * sizeof(float)); break;
    case MT_DTYPE_BF16: { /* a shift, inline: the compiler vectorizes it (the blocked path widens per call) */
        const uint16_t *h = (const uint16_t *)data + o;
        for (int i = 0; i < cols; i++) {
            uint32_t u = (uint32_t)h[i] << 16;
            memcpy(dst + i, &u, sizeof u); /* not through a uint32_t pointer: dst is float memory */
        }
        break;
    }
    case MT_DTYPE_F16:
#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
        /* the hardware conversion (exact, like mt_f16_to_f32), vectorized */
        for (int i = 0; i < cols; i++) dst[i] = (float)((const __fp16 *)data)[o + i];
#else
        for (int i = 0; i < cols; i++) dst[i] = mt_f16_to_f32(((const uint16_t *)data)[o + i]);
#endif
        break;
    case MT_DTYPE_I8: {
        float s = scale[r];
        for (int i = 0; i < cols; i++) dst[i] = (float)((const int8_t *)data)[o + i] * s;
        break;
    }
    default: memset(dst, 0, (size_t)cols * sizeof(float)); break;
    }
}

static mt_dtype wfmt_dtype(mt_wfmt f) {
    return f == MT_WF_F32 ? MT_DTYPE_F32 : f == MT_WF_BF16 ? MT_DTYPE_BF16 : f == MT_WF_F16 ? MT_DTYPE_F16 : MT_DTYPE_I8;
}

/* f32 -> f16 (round to nearest even; overflow to inf) */
static uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) { /* subnormal half */
        float a;
        memcpy(&a, &ax, 4);
        return (uint16_t)(sign | (uint32_t)nearbyintf(a * 16777216.0f));
    }
    uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u);
    return (uint16_t)(sign | ((r - (112u << 23)) >> 13));
}

/* Row r (global) of a weight as f32. */
static void wrow_f32(const cpu_weight *w, int r, float *dst) {
    int p = r / w->part_rows, lr = r % w->part_rows;
    src_row_f32(wfmt_dtype(w->h.fmt), w->data[p], w->scale[p], w->il, (size_t)lr, w->h.cols, dst);
}

/* The int8 layout of a converted weight (its interleaved rows, kernels.h):
 * interleaved where the level's kernels stream it faster and the shape
 * allows, so that they read each 4-row block as one sequence.
 * STTS_CPU_I8_LAYOUT=rows|interleaved overrides the level's choice (to
 * compare, and so that the op harness runs every level's kernels on both).
 * The linear op splits its work at multiples of 4 rows within a part, so
 * parts of several blocks must be whole groups. */
static int layout_force(const char *var) { /* 0 rows, 1 interleaved, 2 the level's choice */
    const char *e = getenv(var);
    return e && !strcmp(e, "rows") ? 0 : e && !strcmp(e, "interleaved") ? 1 : 2;
}

static int i8_layout_rows(int level, int nparts, int part_rows, int cols) {
    static int force = -1;
    if (force < 0) force = layout_force("STTS_CPU_I8_LAYOUT");
    int il = force == 2 ? mt_i8_layout_prefers_interleaved(level) : force;
    if (!il || (nparts > 1 && (part_rows & 3))) return 0;
    return mt_i8_interleave_rows(cols, part_rows);
}

/* The same for a converted bf16 or f16 weight: 64-byte pieces are 32
 * values (K % 32 == 0); STTS_CPU_HALF_LAYOUT overrides. */
static int half_layout_rows(int level, int nparts, int part_rows, int cols) {
    static int force = -1;
    if (force < 0) force = layout_force("STTS_CPU_HALF_LAYOUT");
    int il = force == 2 ? mt_half_layout_prefers_interleaved(level) : force;
    if (!il || (nparts > 1 && (part_rows & 3)) || (cols & 31)) return 0;
    return part_rows & ~3;
}

typedef struct {
    cpu_weight *w;
    const mt_wpart *parts;
    int rows_per_chunk;
    float **rowbuf; /* per thread */
    long drop_src;  /* > 0: the source is the mapped file: release its pages (of this size) once read */
} conv_job;

/* Drops the whole pages inside [p, p + n) of a read-only file mapping from
 * this process: they stay in the page cache, and resident memory holds the
 * converted weight only, not the source too (the source is not read again). */
static void drop_pages(const void *p, size_t n, long pg) {
    if (pg <= 0) return;
    uintptr_t a = ((uintptr_t)p + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
    uintptr_t e = ((uintptr_t)p + n) & ~((uintptr_t)pg - 1);
    if (e > a) madvise((void *)a, e - a, MADV_DONTNEED);
}

static void conv_chunk(void *arg, int chunk, int tid) {
    conv_job *j = arg;
    cpu_weight *w = j->w;
    int K = w->h.cols, N = w->h.rows;
    int r0 = chunk * j->rows_per_chunk, r1 = r0 + j->rows_per_chunk < N ? r0 + j->rows_per_chunk : N;
    float *row = j->rowbuf[tid];
    for (int r = r0; r < r1; r++) {
        int p = r / w->part_rows, lr = r % w->part_rows;
        const mt_wpart *sp = &j->parts[p];
        size_t o = (size_t)r * K;
        if (w->h.fmt == MT_WF_I8 && sp->dtype == MT_DTYPE_I8) { /* int8 to int8: the codes, in this layout */
            int8_t *q = (int8_t *)(row + K);
            mt_i8_row_get((const int8_t *)sp->data, K, sp->il, lr, q);
            mt_i8_row_put((int8_t *)w->owned + (size_t)p * w->part_rows * K, K, w->il, lr, q);
            ((float *)((int8_t *)w->owned + i8_scale_off(N, K)))[r] = sp->scale[lr];
            continue;
        }
        if (w->h.fmt == MT_WF_F32 || sp->dtype != MT_DTYPE_F32)
            src_row_f32(sp->dtype, sp->data, sp->scale, sp->il, (size_t)lr, K, row);
        const float *src = sp->dtype == MT_DTYPE_F32 ? (const float *)sp->data + (size_t)lr * K : row;
        switch (w->h.fmt) {
        case MT_WF_F32: memcpy((float *)w->owned + o, row, (size_t)K * sizeof(float)); break;
        case MT_WF_BF16:
        case MT_WF_F16: {
            /* an interleaved row is made beside (the row buffer's tail: K 16-bit values), then placed */
            uint16_t *h = (uint16_t *)w->owned + o, *tmp = (uint16_t *)(row + K);
            if (lr < w->il) h = tmp;
            if (w->h.fmt == MT_WF_BF16)
                for (int i = 0; i < K; i++) h[i] = mt_f32_to_bf16(src[i]);
            else
                for (int i = 0; i < K; i++) h[i] = f32_to_f16(src[i]);
            if (lr < w->il) mt_il_row_put((uint16_t *)w->owned + (size_t)p * w->part_rows * K, K, 2, w->il, lr, tmp);
            break;
        }
        case MT_WF_I8: {
            float *scales = (float *)((int8_t *)w->owned + i8_scale_off(N, K));
            if (lr < w->il) { /* this part's block: quantize beside, then place the row */
                int8_t *q = (int8_t *)(row + K);
                scales[r] = mt_quantize_row_i8(src, (size_t)K, q);
                mt_i8_row_put((int8_t *)w->owned + (size_t)p * w->part_rows * K, K, w->il, lr, q);
            } else {
                scales[r] = mt_quantize_row_i8(src, (size_t)K, (int8_t *)w->owned + o);
            }
            break;
        }
        }
    }
    if (j->drop_src && r1 > r0) { /* this chunk's source rows (within one part: chunks never need more) */
        for (int r = r0; r < r1;) {
            int p = r / w->part_rows, lr = r % w->part_rows;
            int e = (p + 1) * w->part_rows < r1 ? (p + 1) * w->part_rows : r1;
            size_t es = mt_dtype_size(j->parts[p].dtype);
            drop_pages((const char *)j->parts[p].data + (size_t)lr * K * es, (size_t)(e - r) * K * es, j->drop_src);
            r = e;
        }
    }
}

static void weight_set_parts(cpu_weight *w) {
    size_t es = wfmt_size(w->h.fmt), K = (size_t)w->h.cols;
    for (int p = 0; p < w->nparts; p++) {
        w->data[p] = (const char *)w->owned + (size_t)p * w->part_rows * K * es;
        if (w->h.fmt == MT_WF_I8)
            w->scale[p] = (const float *)((const int8_t *)w->owned + i8_scale_off(w->h.rows, (int)K)) + (size_t)p * w->part_rows;
    }
}

static stts_status cpu_weight_new(mt_backend *be, const mt_wpart *parts, int nparts, int part_rows, int cols,
                                  mt_wfmt fmt, int flags, mt_weight **out, stts_error *err) {
    cpu_backend *c = (cpu_backend *)be;
    *out = NULL;
    if (nparts < 1 || nparts > MAX_PARTS || part_rows < 1 || cols < 1)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "weight: bad shape (%d parts of %d x %d)", nparts, part_rows,
                              cols);
    if (fmt < MT_WF_F32 || fmt > MT_WF_I8) return stts_error_set(err, STTS_ERR_INVALID_ARG, "weight: unknown format %d", (int)fmt);
    for (int p = 0; p < nparts; p++) {
        mt_dtype d = parts[p].dtype;
        if (!parts[p].data || (d != MT_DTYPE_F32 && d != MT_DTYPE_F16 && d != MT_DTYPE_BF16 && d != MT_DTYPE_I8) ||
            (d == MT_DTYPE_I8 && !parts[p].scale))
            return stts_error_set(err, STTS_ERR_UNSUPPORTED, "weight: source dtype %s cannot be a weight",
                                  mt_dtype_name(d));
    }
    cpu_weight *w = calloc(1, sizeof *w);
    if (!w) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory for a weight handle");
    w->h.fmt = fmt;
    w->h.rows = nparts * part_rows;
    w->h.cols = cols;
    w->nparts = nparts;
    w->part_rows = part_rows;
    size_t n = (size_t)w->h.rows * cols;
    w->h.bytes = n * wfmt_size(fmt) + (fmt == MT_WF_I8 ? (size_t)w->h.rows * sizeof(float) : 0);
    int in_place = (flags & MT_WSRC_PERSISTENT) != 0;
    for (int p = 0; p < nparts; p++) in_place &= parts[p].dtype == wfmt_dtype(fmt);
    for (int p = 0; p < nparts; p++) { /* a converted file's int8, bf16, f16: row-major or interleaved */
        int il = parts[p].il;
        if (il && (il < 0 || il > part_rows || (il & 3) || ((size_t)cols * mt_dtype_size(parts[p].dtype)) % 64 ||
                   parts[p].dtype == MT_DTYPE_F32))
            return free(w), stts_error_set(err, STTS_ERR_INVALID_ARG,
                                           "weight: %d interleaved %s rows do not fit %d x %d", il,
                                           mt_dtype_name(parts[p].dtype), part_rows, cols);
    }
    /* in place in either order (the kernels read both): one order for every
     * part, and the linear op's 4-row splits inside a part's groups; else
     * convert */
    for (int p = 0; p < nparts; p++)
        in_place &= parts[p].il == parts[0].il && (!parts[p].il || nparts == 1 || !(part_rows & 3));
    if (in_place) {
        w->h.in_place = 1;
        w->il = parts[0].il;
        for (int p = 0; p < nparts; p++) {
            w->data[p] = parts[p].data;
            w->scale[p] = parts[p].scale;
        }
        *out = &w->h;
        return STTS_OK;
    }
    if (fmt == MT_WF_I8) w->il = i8_layout_rows(c->level, nparts, part_rows, cols);
    else if (fmt == MT_WF_BF16 || fmt == MT_WF_F16) w->il = half_layout_rows(c->level, nparts, part_rows, cols);
    w->owned = cpu_alloc(be, owned_floats(&w->h));
    if (!w->owned) {
        int rows = w->h.rows;
        free(w);
        return stts_error_set(err, STTS_ERR_NOMEM, "out of memory for a %d x %d %s weight (%.1f MB)", rows, cols,
                              mt_wfmt_name(fmt), (double)n * wfmt_size(fmt) / 1e6);
    }
    int threads = mt_pool_threads(c->load_pool);
    float *bufs[256] = {0};
    int ok = 1;
    /* per thread: a row as f32, then its int8 codes or 16-bit values */
    for (int t = 0; t < threads && ok; t++) ok = (bufs[t] = malloc((size_t)cols * (sizeof(float) + 2))) != NULL;
    if (ok) {
        int rpc = (int)((1u << 20) / ((size_t)cols * 4));
        if (rpc < 1) rpc = 1;
        conv_job j = {w, parts, rpc, bufs, (flags & MT_WSRC_FILE_PAGES) ? sysconf(_SC_PAGESIZE) : 0};
        mt_pool_run(c->load_pool, (w->h.rows + rpc - 1) / rpc, conv_chunk, &j);
    }
    for (int t = 0; t < threads; t++) free(bufs[t]);
    if (!ok) {
        free(w->owned);
        free(w);
        return stts_error_set(err, STTS_ERR_NOMEM, "out of memory converting a weight");
    }
    weight_set_parts(w);
    *out = &w->h;
    return STTS_OK;
}

static stts_status cpu_weight_gather(mt_backend *be, const mt_weight *srch, const int32_t *ids, int n, mt_weight **out,
                                     stts_error *err) {
    const cpu_weight *src = (const cpu_weight *)srch;
    *out = NULL;
    if (n < 1) return stts_error_set(err, STTS_ERR_INVALID_ARG, "weight gather: no rows");
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= src->h.rows)
            return stts_error_set(err, STTS_ERR_INVALID_ARG, "weight gather: row %d is outside 0..%d", ids[i],
                                  src->h.rows - 1);
    cpu_weight *w = calloc(1, sizeof *w);
    if (!w) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory for a weight handle");
    size_t es = wfmt_size(src->h.fmt), K = (size_t)src->h.cols;
    w->h.fmt = src->h.fmt;
    w->h.rows = n;
    w->h.cols = src->h.cols;
    w->nparts = 1;
    w->part_rows = n;
    w->h.bytes = (size_t)n * K * es + (w->h.fmt == MT_WF_I8 ? (size_t)n * sizeof(float) : 0);
    w->owned = cpu_alloc(be, owned_floats(&w->h));
    if (!w->owned) {
        free(w);
        return stts_error_set(err, STTS_ERR_NOMEM, "out of memory gathering %d weight rows", n);
    }
    int level = ((const cpu_backend *)be)->level;
    if (w->h.fmt == MT_WF_I8) w->il = i8_layout_rows(level, 1, n, (int)K);
    else if (w->h.fmt == MT_WF_BF16 || w->h.fmt == MT_WF_F16) w->il = half_layout_rows(level, 1, n, (int)K);
    char *tmp = malloc(K * es); /* a row, between the two layouts (quant.h) */
    if (!tmp) {
        free(w->owned);
        free(w);
        return stts_error_set(err, STTS_ERR_NOMEM, "out of memory gathering %d weight rows", n);
    }
    for (int i = 0; i < n; i++) {
        int p = ids[i] / src->part_rows, lr = ids[i] % src->part_rows;
        mt_il_row_get(src->data[p], (int)K, es, src->il, lr, tmp); /* either layout on either side */
        mt_il_row_put(w->owned, (int)K, es, w->il, i, tmp);
        if (w->h.fmt == MT_WF_I8) ((float *)((int8_t *)w->owned + i8_scale_off(n, (int)K)))[i] = src->scale[p][lr];
    }
    free(tmp);
    weight_set_parts(w);
    *out = &w->h;
    return STTS_OK;
}

static stts_status cpu_weight_read(mt_backend *be, const mt_weight *wh, int row0, int rows, float *dst,
                                   stts_error *err) {
    (void)be;
    const cpu_weight *w = (const cpu_weight *)wh;
    if (row0 < 0 || rows < 0 || row0 + rows > w->h.rows)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "weight read: rows %d..%d outside 0..%d", row0, row0 + rows,
                              w->h.rows);
    for (int r = 0; r < rows; r++) wrow_f32(w, row0 + r, dst + (size_t)r * w->h.cols);
    return STTS_OK;
}

static void cpu_weight_free(mt_backend *be, mt_weight *wh) {
    (void)be;
    cpu_weight *w = (cpu_weight *)wh;
    if (!w) return;
    free(w->owned);
    free(w);
}

/* Bias / LayerNorm vectors are made f32 by the model; any other format is read through. */
static const float *vec_f32(const mt_weight *wh) {
    return wh ? (const float *)((const cpu_weight *)wh)->data[0] : NULL;
}

/* ---- executors ---- */

static void cpu_exec_free(mt_exec *xh) {
    cpu_exec *x = (cpu_exec *)xh;
    if (!x) return;
    if (x->profile) prof_print(x);
    mt_pool_free(x->pool);
    for (int i = 0; i < x->head.threads; i++) {
        if (x->scratch) free(x->scratch[i]);
        if (x->tile) free(x->tile[i]);
    }
    free(x->scratch);
    free(x->tile);
    free(x->xq);
    free(x->xs);
    free(x->pos_tab);
    free(x->pos_have);
    free(x->sel_top);
    free(x->sel_sum);
    free(x);
}

static stts_status cpu_exec_new(mt_backend *be, int threads, mt_exec **out, stts_error *err) {
    cpu_backend *c = (cpu_backend *)be;
    *out = NULL;
    if (threads <= 0) threads = be->threads;
    if (threads > 256)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "--threads %d is out of range (0 = all cores, 1..256)", threads);
    cpu_exec *x = calloc(1, sizeof *x);
    if (!x) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory creating an executor");
    x->head.be = be;
    x->head.threads = threads;
    x->level = c->level;
    const char *prof = getenv("STTS_CPU_PROFILE");
    x->profile = prof && *prof ? atoi(prof) : 0;
    x->scratch = calloc((size_t)threads, sizeof *x->scratch);
    x->tile = calloc((size_t)threads, sizeof *x->tile);
    if (!x->scratch || !x->tile) goto nomem;
    for (int i = 0; i < threads; i++)
        if (!(x->scratch[i] = malloc((size_t)ATTN_GROUP_MAX * c->max_kv * sizeof(float)))) goto nomem;
    x->pool = mt_pool_new(threads);
    if (!x->pool) goto nomem;
    *out = &x->head;
    return STTS_OK;
nomem:
    cpu_exec_free(&x->head);
    return stts_error_set(err, STTS_ERR_NOMEM, "out of memory or threads creating an executor (%d threads)", threads);
}

/* ---- parallel_for ---- */
typedef struct {
    void (*fn)(void *ctx, int i);
    void *ctx;
} pfor_job;

static void pfor_chunk(void *arg, int chunk, int tid) {
    (void)tid;
    pfor_job *j = arg;
    j->fn(j->ctx, chunk);
}

static stts_status cpu_parallel_for(mt_exec *xh, int n, void (*fn)(void *ctx, int i), void *ctx) {
    cpu_exec *x = (cpu_exec *)xh;
    pfor_job j = {fn, ctx};
    mt_pool_run(x->pool, n, pfor_chunk, &j);
    return STTS_OK;
}

/* ---- linear ---- */
typedef struct {
    cpu_exec *x;
    const cpu_weight *w;
    const float *in, *b;
    float *y;
    int M, flags, rows; /* rows of W per chunk */
    int blocked;
} lin_job;

/* Columns [n0, n1) that lie in one part: W rows local to the part. */
static void lin_piece(const lin_job *j, int tid, int p, int a, int e) {
    const cpu_weight *w = j->w;
    int K = w->h.cols, N = w->h.rows, base = p * w->part_rows;
    const float *b = j->b ? j->b + base : NULL;
    float *y = j->y + base;
    int lv = j->x->level;
    if (j->blocked) {
        /* widen rows [a, e) once, multiply every row of x with them */
        float *tile = j->x->tile[tid];
        for (int r = a; r < e; r++) wrow_f32(w, base + r, tile + (size_t)(r - a) * K);
        mt_linear_rows(lv, j->in, j->M, K, tile, N, b ? b + a : NULL, y + a, j->flags, 0, e - a);
        return;
    }
    switch (w->h.fmt) {
    case MT_WF_F32: mt_linear_rows(lv, j->in, j->M, K, (const float *)w->data[p], N, b, y, j->flags, a, e); break;
    case MT_WF_BF16:
    case MT_WF_F16:
        mt_linear_rows_half(lv, w->h.fmt == MT_WF_BF16, j->in, j->M, K, (const uint16_t *)w->data[p], w->il, N, b, y,
                            j->flags, a, e);
        break;
    case MT_WF_I8:
        mt_linear_rows_i8(lv, j->x->xq, j->x->xs, j->M, K, (const int8_t *)w->data[p], w->scale[p], w->il, N, b, y,
                          j->flags, a, e);
        break;
    }
}

static void lin_range(const lin_job *j, int tid, int n0, int n1) {
    int pr = j->w->part_rows;
    while (n0 < n1) {
        int p = n0 / pr, pe = (p + 1) * pr < n1 ? (p + 1) * pr : n1;
        lin_piece(j, tid, p, n0 - p * pr, pe - p * pr);
        n0 = pe;
    }
}

static void lin_chunk(void *arg, int chunk, int tid) {
    lin_job *j = arg;
    int N = j->w->h.rows;
    int n0 = chunk * j->rows, n1 = n0 + j->rows < N ? n0 + j->rows : N;
    lin_range(j, tid, n0, n1);
}

/* x's rows to int8 with quant.h's rule, one row per chunk */
typedef struct {
    const float *in;
    int8_t *xq;
    float *xs;
    int K;
} quant_job;

static void quant_chunk(void *arg, int m, int tid) {
    (void)tid;
    const quant_job *j = arg;
    j->xs[m] = mt_quantize_row_i8(j->in + (size_t)m * j->K, (size_t)j->K, j->xq + (size_t)m * j->K);
}

static stts_status cpu_linear(mt_exec *xh, const float *in, int M, const mt_weight *Wh, const mt_weight *bh, float *y,
                              int flags) {
    cpu_exec *x = (cpu_exec *)xh;
    const cpu_weight *w = (const cpu_weight *)Wh;
    int K = w->h.cols, N = w->h.rows;
    if (M <= 0) return STTS_OK;
    /* bf16/f16 with many rows, scalar and NEON: widen a slice once, then the
     * f32 kernel (the same per-lane order as the half kernels at these
     * levels, so results do not depend on how many rows are batched). On
     * x86 (AVX2 and up) the half kernel widens its own 4-row panels for 4+
     * rows (kernels.c, lin_half_panel_avx2: SIMD widening, the same bits),
     * which the scalar widening here made 2.4x slower than f32. int8 always
     * multiplies quantized rows (exact integer sums: batch-invariant too);
     * its kernel keeps each 4-row block of W in L1 across all rows of x. */
    int blocked = M >= GEMM_MIN_ROWS && (w->h.fmt == MT_WF_BF16 || w->h.fmt == MT_WF_F16) &&
                  (x->level == MT_KL_SCALAR || x->level == MT_KL_NEON);
    size_t es = blocked ? 4 : wfmt_size(w->h.fmt);
    /* chunks of at most ~256 KB of W (a multiple of the kernels' 4-row
     * block), claimed dynamically by the threads, and at least 4 per
     * thread: with 256 KB alone a 1 MB int8 matrix (the attention
     * projections) was 4 chunks, so 12 of 16 threads sat out a third of a
     * decode step's ops; 4 per thread also evens out a slow core. */
    int rows = (int)((256 * 1024) / ((size_t)K * es));
    int per_thread = (N + 4 * x->head.threads - 1) / (4 * x->head.threads);
    if (per_thread < rows) rows = per_thread;
    rows = rows < 4 ? 4 : (rows + 3) / 4 * 4;
    if (blocked && x->tile_n < (size_t)rows * K) {
        for (int t = 0; t < x->head.threads; t++) {
            free(x->tile[t]);
            if (!(x->tile[t] = malloc((size_t)rows * K * sizeof(float)))) {
                x->tile_n = 0;
                return STTS_ERR_NOMEM;
            }
        }
        x->tile_n = (size_t)rows * K;
    }
    if (w->h.fmt == MT_WF_I8 && !blocked) {
        /* activations to int8 per row (quant.h's rule), once per call */
        if (x->xq_n < (size_t)M * K) {
            free(x->xq);
            if (!(x->xq = malloc((size_t)M * K))) {
                x->xq_n = 0;
                return STTS_ERR_NOMEM;
            }
            x->xq_n = (size_t)M * K;
        }
        if (x->xs_n < (size_t)M) {
            free(x->xs);
            if (!(x->xs = malloc((size_t)M * sizeof(float)))) {
                x->xs_n = 0;
                return STTS_ERR_NOMEM;
            }
            x->xs_n = (size_t)M;
        }
        uint64_t tq = prof_begin(x);
        quant_job qj = {in, x->xq, x->xs, K};
        if (rows_to_pool(x, M, K)) mt_pool_run(x->pool, M, quant_chunk, &qj);
        else
            for (int m = 0; m < M; m++) quant_chunk(&qj, m, 0);
        prof_end(x, PROF_QUANT, M, tq);
    }
    uint64_t t0 = prof_begin(x);
    lin_job j = {x, w, in, vec_f32(bh), y, M, flags, rows, blocked};
    if ((long long)M * K * N < PAR_MIN_MACS || x->head.threads == 1) {
        /* one thread: still in tile-sized slices on the blocked path */
        for (int n0 = 0; n0 < N; n0 += rows) lin_range(&j, 0, n0, n0 + rows < N ? n0 + rows : N);
    } else {
        mt_pool_run(x->pool, (N + rows - 1) / rows, lin_chunk, &j);
    }
    prof_end(x, PROF_LINEAR, M, t0);
    return STTS_OK;
}

/* ---- LayerNorm (kernels.c: mt_layernorm_row) ---- */
typedef struct {
    const float *x, *g, *b;
    float *y;
    int D, level;
    float eps;
} ln_job;

static void ln_chunk(void *arg, int row, int tid) {
    (void)tid;
    const ln_job *j = arg;
    mt_layernorm_row(j->level, j->x + (size_t)row * j->D, j->D, j->g, j->b, j->eps, j->y + (size_t)row * j->D);
}

static stts_status cpu_layernorm_run(mt_exec *xh, const float *x, int M, const mt_weight *gw, const mt_weight *bw,
                                     float eps, float *y) {
    cpu_exec *c = (cpu_exec *)xh;
    ln_job j = {x, vec_f32(gw), vec_f32(bw), y, gw->cols, c->level, eps};
    if (rows_to_pool(c, M, gw->cols)) {
        mt_pool_run(c->pool, M, ln_chunk, &j);
        return STTS_OK;
    }
    for (int m = 0; m < M; m++) ln_chunk(&j, m, 0);
    return STTS_OK;
}

static stts_status cpu_layernorm(mt_exec *xh, const float *x, int M, const mt_weight *gw, const mt_weight *bw,
                                 float eps, float *y) {
    uint64_t t0 = prof_begin((cpu_exec *)xh);
    stts_status st = cpu_layernorm_run(xh, x, M, gw, bw, eps, y);
    prof_end((cpu_exec *)xh, PROF_LAYERNORM, M, t0);
    return st;
}

/* ---- attention ----
 *
 * A task is one row and a group of consecutive heads. Keys and values of
 * one position are contiguous across heads (kv_stride apart per position),
 * so a task walks them position by position, each head's slice in turn:
 * one head at a time read 256 bytes every 4 KB, a pattern the hardware
 * prefetcher does not follow, and a decode step's attention (its caches
 * pushed out of cache by the weights every step) waited on ~70K scattered
 * line misses: 13% of a step on the 2-core VM. Each head's arithmetic is
 * the one-head loop's (the same dots, exps, sum and axpys in the same
 * order), so grouping never changes a bit. */

typedef struct {
    cpu_exec *c;
    const mt_attn_args *a;
    int group; /* heads per task */
} attn_job;

/* Prefetches the group's slice [off, off + bytes) of one position. */
static inline void attn_prefetch(const float *p, size_t bytes) {
    for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch((const char *)p + o);
}

static void attn_group(cpu_exec *c, const mt_attn_args *a, int r, int h0, int G, float *sc) {
    const int hd = a->head_dim, n = a->kv_len[r], ahead = 2;
    const size_t off = (size_t)h0 * hd, bytes = (size_t)G * hd * sizeof(float), ks = (size_t)a->kv_stride;
    const float *q = a->q + (size_t)r * a->q_stride + off;
    const float *k = a->k[r] + off, *v = a->v[r] + off;
    float *o = a->out + (size_t)r * a->out_stride + off;
    float mx[ATTN_GROUP_MAX], inv[ATTN_GROUP_MAX];
    for (int g = 0; g < G; g++) mx[g] = -INFINITY;
    /* Positions go 4 at a time (mt_dot4, mt_axpy4: the one-key kernels'
     * bits): a 20-token encoder layer's attention was 12,800 calls of 64
     * multiply-adds each, ~7% of the encoder's time on the VNNI VM. */
    for (int j = 0; j < ahead * 4 && j < n; j++) attn_prefetch(k + (size_t)j * ks, bytes);
    for (int j = 0; j < n; j += 4) {
        int cnt = n - j < 4 ? n - j : 4;
        for (int t = 0; t < cnt; t++)
            if (j + ahead * 4 + t < n) attn_prefetch(k + (size_t)(j + ahead * 4 + t) * ks, bytes);
        const float *kj = k + (size_t)j * ks;
        for (int g = 0; g < G; g++) {
            float d[4];
            mt_dot4(c->level, q + (size_t)g * hd, kj + (size_t)g * hd, ks, cnt, hd, d);
            for (int t = 0; t < cnt; t++) {
                sc[(size_t)g * n + j + t] = d[t];
                if (d[t] > mx[g]) mx[g] = d[t];
            }
        }
    }
    for (int j = 0; j < ahead * 4 && j < n; j++) attn_prefetch(v + (size_t)j * ks, bytes);
    for (int g = 0; g < G; g++) {
        float *s = sc + (size_t)g * n;
        double sum = 0.0;
        for (int j = 0; j < n; j++) {
            s[j] = expf(s[j] - mx[g]);
            sum += s[j];
        }
        inv[g] = (float)(1.0 / sum);
    }
    memset(o, 0, bytes);
    /* softmax first, then the weighted sum (torch: softmax, then bmm). */
    for (int j = 0; j < n; j += 4) {
        int cnt = n - j < 4 ? n - j : 4;
        for (int t = 0; t < cnt; t++)
            if (j + ahead * 4 + t < n) attn_prefetch(v + (size_t)(j + ahead * 4 + t) * ks, bytes);
        const float *vj = v + (size_t)j * ks;
        for (int g = 0; g < G; g++) {
            float p[4];
            for (int t = 0; t < cnt; t++) p[t] = sc[(size_t)g * n + j + t] * inv[g];
            mt_axpy4(c->level, p, vj + (size_t)g * hd, ks, cnt, o + (size_t)g * hd, hd);
        }
    }
}

static void attn_chunk(void *arg, int chunk, int tid) {
    attn_job *j = arg;
    int groups = j->a->heads / j->group;
    attn_group(j->c, j->a, chunk / groups, chunk % groups * j->group, j->group, j->c->scratch[tid]);
}

/* Heads per task: the most (a divisor of heads, <= ATTN_GROUP_MAX) that
 * still gives every thread a task. */
static int attn_group_size(int rows, int heads, int threads) {
    int best = 1;
    for (int G = 1; G <= heads && G <= ATTN_GROUP_MAX; G++)
        if (heads % G == 0 && (long long)rows * (heads / G) >= threads) best = G;
    return best;
}

static stts_status cpu_attention_run(mt_exec *xh, const mt_attn_args *a) {
    cpu_exec *c = (cpu_exec *)xh;
    if (a->new_k) /* the cache write (backend.h): k[r]/v[r] are the caller's writable caches */
        for (int r = 0; r < a->rows; r++) {
            size_t at = (size_t)(a->kv_len[r] - 1) * a->kv_stride, n = (size_t)a->heads * a->head_dim;
            memcpy((float *)a->k[r] + at, a->new_k + (size_t)r * a->new_stride, n * sizeof(float));
            memcpy((float *)a->v[r] + at, a->new_v + (size_t)r * a->new_stride, n * sizeof(float));
        }
    long long work = 0;
    for (int r = 0; r < a->rows; r++) work += a->kv_len[r];
    work *= (long long)a->heads * a->head_dim * 2;
    /* a lower bar than linear's: a decode step's attention (16 heads, a
     * few dozen keys: ~50K multiply-adds) took 16 us on one of 16 threads,
     * latency-bound on each head's keys; spread over the pool, ~4 us */
    int threads = work < ATTN_PAR_MIN_MACS ? 1 : c->head.threads;
    attn_job j = {c, a, attn_group_size(a->rows, a->heads, threads)};
    int tasks = a->rows * (a->heads / j.group);
    if (threads == 1 || tasks == 1) {
        for (int t = 0; t < tasks; t++) attn_chunk(&j, t, 0);
        return STTS_OK;
    }
    mt_pool_run(c->pool, tasks, attn_chunk, &j);
    return STTS_OK;
}

static stts_status cpu_attention(mt_exec *xh, const mt_attn_args *a) {
    uint64_t t0 = prof_begin((cpu_exec *)xh);
    stts_status st = cpu_attention_run(xh, a);
    prof_end((cpu_exec *)xh, PROF_ATTENTION, a->rows, t0);
    return st;
}

/* ---- embedding + sinusoidal positions (HF M2M100SinusoidalPositionalEmbedding:
 * f32 math as torch does it: freq_i = exp(i * -(ln 1e4 / (half - 1))),
 * angle = pos * freq_i, [sin(angle_0..half) | cos(angle_0..half) | 0 if odd]) ---- */
/* f32 -> f16 -> f32 and f32 -> bf16 -> f32, round to nearest even (as torch's .to()) */
static float round_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = x & 0x80000000u, ax = x & 0x7fffffffu;
    if (ax >= 0x477ff000u) { /* rounds to >= 65536: inf (nan stays nan) */
        x = ax > 0x7f800000u ? x : (sign | 0x7f800000u);
    } else if (ax < 0x38800000u) { /* below 2^-14: half subnormals, quantum 2^-24 */
        float a;
        memcpy(&a, &ax, 4);
        a = rintf(a * 16777216.0f) * (1.0f / 16777216.0f);
        memcpy(&x, &a, 4);
        x |= sign;
    } else {
        x = (ax + 0xfffu + ((ax >> 13) & 1u)) & ~0x1fffu;
        x |= sign;
    }
    memcpy(&f, &x, 4);
    return f;
}

static float round_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return f; /* nan */
    x = (x + 0x7fffu + ((x >> 16) & 1u)) & 0xffff0000u;
    memcpy(&f, &x, 4);
    return f;
}

static inline float pos_value(float v, int mode) {
    return mode == 1 ? round_f16(v) : mode == 2 ? round_bf16(v) : v;
}

/* Position p's sinusoids (rounded as pos_round asks) into the first
 * 2 * (D / 2) values of row: stored (add 0, the cached table) or added to
 * what row holds (add 1). Odd D: the last column is a zero pad, untouched. */
static void pos_row(int p, int D, int pos_round, int add, float *row) {
    int half = D / 2;
    float negc = (float)(-(log(10000.0) / (double)(half - 1)));
    for (int i = 0; i < half; i++) {
        float f = expf((float)i * negc);
        float ang = (float)p * f, s = pos_value(sinf(ang), pos_round), c = pos_value(cosf(ang), pos_round);
        row[i] = add ? row[i] + s : s;
        row[half + i] = add ? row[half + i] + c : c;
    }
}

/* The row of position p from the executor's table, computed on first use:
 * a decode step spent ~10 us in 1024 sinf/cosf/expf for its one row, the
 * encoder ~0.2 ms for 20; the same row comes back every sentence. NULL when
 * the table cannot grow (the caller computes the row itself). */
static const float *pos_cached(cpu_exec *x, int p, int D, int pos_round) {
    if (x->pos_d != D || x->pos_round != pos_round) { /* another model shape: start over */
        free(x->pos_tab);
        free(x->pos_have);
        x->pos_tab = NULL, x->pos_have = NULL, x->pos_n = 0;
        x->pos_d = D, x->pos_round = pos_round;
    }
    if (p < 0 || p >= 4096) return NULL; /* past NLLB's 1026 positions: computed in place */
    if (p >= x->pos_n) {
        int n = x->pos_n ? x->pos_n : 256;
        while (n <= p) n *= 2;
        float *t = realloc(x->pos_tab, (size_t)n * D * sizeof(float));
        if (!t) return NULL;
        x->pos_tab = t;
        unsigned char *h = realloc(x->pos_have, (size_t)n);
        if (!h) return NULL;
        memset(h + x->pos_n, 0, (size_t)(n - x->pos_n));
        x->pos_have = h, x->pos_n = n;
    }
    float *row = x->pos_tab + (size_t)p * D;
    if (!x->pos_have[p]) {
        pos_row(p, D, pos_round, 0, row);
        x->pos_have[p] = 1;
    }
    return row;
}

static stts_status cpu_embed_run(mt_exec *xh, const mt_weight *tw, const int32_t *ids, const int *pos, int rows,
                                 float scale, int pad_idx, int pos_round, float *out) {
    cpu_exec *x = (cpu_exec *)xh;
    const cpu_weight *t = (const cpu_weight *)tw;
    const int D = tw->cols;
    for (int r = 0; r < rows; r++) {
        float *o = out + (size_t)r * D;
        wrow_f32(t, ids[r], o); /* dequantizes int8 / widens bf16, f16 */
        for (int i = 0; i < D; i++) o[i] *= scale;
        if (pos[r] == pad_idx) continue; /* the padding row of the table is zero */
        const float *pr = pos_cached(x, pos[r], D, pos_round);
        if (pr)
            for (int i = 0; i < D / 2 * 2; i++) o[i] += pr[i]; /* odd D: the last column stays as it is */
        else
            pos_row(pos[r], D, pos_round, 1, o);
    }
    return STTS_OK;
}

static stts_status cpu_embed(mt_exec *xh, const mt_weight *tw, const int32_t *ids, const int *pos, int rows,
                             float scale, int pad_idx, int pos_round, float *out) {
    uint64_t t0 = prof_begin((cpu_exec *)xh);
    stts_status st = cpu_embed_run(xh, tw, ids, pos, rows, scale, pad_idx, pos_round, out);
    prof_end((cpu_exec *)xh, PROF_EMBED, rows, t0);
    return st;
}

static stts_status cpu_scale_cols(mt_exec *xh, float *x, int rows, int D, int stride, float s) {
    (void)xh;
    for (int r = 0; r < rows; r++) {
        float *xr = x + (size_t)r * stride;
        for (int i = 0; i < D; i++) xr[i] *= s;
    }
    return STTS_OK;
}

/* ---- select_topk: the search's selection (select.h) ----
 * Two passes over each row, both split into MT_SEL_CHUNK-column chunks over
 * the pool: each chunk's top k (the row's top k are among them, merged on
 * the calling thread; the row's max is the first), then each chunk's sum
 * of exp(x - max), added in chunk order. The values are the search's
 * (search.c, row_stats): lp = (x - max) - (float)log(sum in double). */
#define SEL_MAX_K 256
/* Below this many logits in all a call runs on the calling thread. */
#define SEL_PAR_MIN 65536

typedef struct {
    cpu_exec *x;
    const float *logits;
    int V, k, nch;
    const float *mx; /* [rows]: pass 2 */
} sel_job;

static void sel_top_chunk(void *arg, int t, int tid) {
    (void)tid;
    sel_job *j = arg;
    int r = t / j->nch, c = t % j->nch, c0 = c * MT_SEL_CHUNK, c1 = c0 + MT_SEL_CHUNK < j->V ? c0 + MT_SEL_CHUNK : j->V;
    int *slot = j->x->sel_top + (size_t)t * (j->k + 1); /* [0]: count, then the columns */
    slot[0] = mt_sel_topk_chunk(j->x->level, j->logits + (size_t)r * j->V, c0, c1, j->k, slot + 1);
}

static void sel_sum_chunk(void *arg, int t, int tid) {
    (void)tid;
    sel_job *j = arg;
    int r = t / j->nch, c = t % j->nch, c0 = c * MT_SEL_CHUNK, c1 = c0 + MT_SEL_CHUNK < j->V ? c0 + MT_SEL_CHUNK : j->V;
    j->x->sel_sum[t] = mt_sel_expsum_chunk(j->x->level, j->logits + (size_t)r * j->V, c0, c1, j->mx[r]);
}

/* Row r's top k from its chunks' lists, into top (n of them); returns n. */
static int sel_merge(const sel_job *j, int r, int32_t *top) {
    const float *x = j->logits + (size_t)r * j->V;
    int n = 0, k = j->k;
    for (int c = 0; c < j->nch; c++) {
        const int *slot = j->x->sel_top + ((size_t)r * j->nch + c) * (k + 1);
        for (int q = 0; q < slot[0]; q++) {
            int v = slot[1 + q];
            if (n == k && !mt_sel_before(x, v, top[k - 1])) break; /* the chunk's list is in order */
            int p = n < k ? n++ : k - 1;
            while (p > 0 && mt_sel_before(x, v, top[p - 1])) {
                top[p] = top[p - 1];
                p--;
            }
            top[p] = v;
        }
    }
    return n;
}

static stts_status cpu_select_topk_run(cpu_exec *x, const float *logits, int rows, int V, int k, int32_t *top,
                                       float *lp) {
    if (rows <= 0) return STTS_OK;
    if (k < 1 || k > SEL_MAX_K || k > V) return STTS_ERR_INVALID_ARG;
    int nch = (V + MT_SEL_CHUNK - 1) / MT_SEL_CHUNK, tasks = rows * nch;
    if (x->sel_top_n < (size_t)tasks * (k + 1)) {
        free(x->sel_top);
        if (!(x->sel_top = malloc((size_t)tasks * (k + 1) * sizeof(int)))) {
            x->sel_top_n = 0;
            return STTS_ERR_NOMEM;
        }
        x->sel_top_n = (size_t)tasks * (k + 1);
    }
    if (x->sel_sum_n < (size_t)tasks + rows) {
        free(x->sel_sum);
        if (!(x->sel_sum = malloc(((size_t)tasks + rows) * sizeof(double)))) {
            x->sel_sum_n = 0;
            return STTS_ERR_NOMEM;
        }
        x->sel_sum_n = (size_t)tasks + rows;
    }
    float *mx = (float *)(x->sel_sum + tasks); /* [rows] floats in the spare tail */
    sel_job j = {x, logits, V, k, nch, mx};
    int par = (long long)rows * V >= SEL_PAR_MIN && x->head.threads > 1 && tasks > 1;
    if (par) mt_pool_run(x->pool, tasks, sel_top_chunk, &j);
    else
        for (int t = 0; t < tasks; t++) sel_top_chunk(&j, t, 0);
    for (int r = 0; r < rows; r++) {
        int32_t *tr = top + (size_t)r * k;
        int n = sel_merge(&j, r, tr);
        mx[r] = n ? logits[(size_t)r * V + tr[0]] : -INFINITY;
        /* fewer than k values that are not NaN: the lowest other columns */
        for (int v = 0; n < k && v < V; v++) {
            int seen = 0;
            for (int q = 0; q < n && !seen; q++) seen = tr[q] == v;
            if (!seen) tr[n++] = v;
        }
    }
    if (par) mt_pool_run(x->pool, tasks, sel_sum_chunk, &j);
    else
        for (int t = 0; t < tasks; t++) sel_sum_chunk(&j, t, 0);
    for (int r = 0; r < rows; r++) {
        double sum = 0.0;
        for (int c = 0; c < nch; c++) sum += x->sel_sum[(size_t)r * nch + c];
        float lse = (float)log(sum);
        const float *xr = logits + (size_t)r * V;
        for (int q = 0; q < k; q++) lp[(size_t)r * k + q] = (xr[top[(size_t)r * k + q]] - mx[r]) - lse;
    }
    return STTS_OK;
}

static stts_status cpu_select_topk(mt_exec *xh, const float *logits, int rows, int V, int k, int32_t *top,
                                   float *lp) {
    cpu_exec *x = (cpu_exec *)xh;
    uint64_t t0 = prof_begin(x);
    stts_status st = cpu_select_topk_run(x, logits, rows, V, k, top, lp);
    prof_end(x, PROF_SELECT, rows, t0);
    return st;
}

static stts_status cpu_upload(mt_exec *xh, float *dst, const float *src, size_t n) { return cpu_copy(xh, dst, src, n); }

static const mt_backend_ops cpu_ops = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .weight_new = cpu_weight_new,
    .weight_gather = cpu_weight_gather,
    .weight_read = cpu_weight_read,
    .weight_free = cpu_weight_free,
    .exec_new = cpu_exec_new,
    .exec_free = cpu_exec_free,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .upload = cpu_upload,
    .download = cpu_upload,
    .parallel_for = cpu_parallel_for,
    .linear = cpu_linear,
    .layernorm = cpu_layernorm,
    .attention = cpu_attention,
    .embed = cpu_embed,
    .scale_cols = cpu_scale_cols,
    .copy = cpu_copy,
    .host_visible = 1,
    .select_topk = cpu_select_topk,
    .select_max_k = SEL_MAX_K,
};

stts_status mt_cpu_backend_new(int threads, int simd, int max_kv, mt_backend **out, stts_error *err) {
    *out = NULL;
    if (threads <= 0) { /* all cores, up to the pool's limit (a 384-core host still runs) */
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 256 ? 256 : n > 0 ? (int)n : 1;
    }
    if (threads > 256)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "--threads %d is out of range (0 = all cores, 1..256)", threads);
    if (max_kv < 1) max_kv = 1;
    /* simd: 0 auto, 1 scalar, 2 avx2, 3 avx512, 4 neon, 5 avx512vnni, 6 avxvnni (the nllb_simd values); a
     * forced level this CPU (or this build) lacks is an error, never a
     * silent fallback, so a test or benchmark measures what it names */
    int best = mt_kernels_best();
    if (simd < 0 || simd > MT_KL_AVXVNNI)
        return stts_error_set(err, STTS_ERR_UNSUPPORTED,
                              "SIMD level %d is not one of auto, scalar, avx2, avxvnni, avx512, avx512vnni, neon", simd);
    if (simd > 0 && !mt_kernels_supported(simd)) {
        /* the levels this CPU and build do have, weakest first: what to use instead */
        static const int order[] = {MT_KL_SCALAR, MT_KL_AVX2, MT_KL_AVXVNNI, MT_KL_AVX512, MT_KL_AVX512VNNI, MT_KL_NEON};
        char have[128] = "";
        for (size_t k = 0; k < sizeof order / sizeof *order; k++)
            if (mt_kernels_supported(order[k]))
                snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", have[0] ? ", " : "",
                         mt_kernels_name(order[k]));
        return stts_error_set(err, STTS_ERR_UNSUPPORTED,
                              "SIMD level %s is not available on this CPU or build, which has: auto, %s",
                              mt_kernels_name(simd), have);
    }
    cpu_backend *c = calloc(1, sizeof *c);
    if (!c) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory creating the CPU backend");
    c->base.ops = &cpu_ops;
    /* STTS_CPU_SELECT=search: the search selects on the host itself (its
     * one-thread loop; A/B comparisons of select_topk with one binary) */
    const char *sel = getenv("STTS_CPU_SELECT");
    if (sel && !strcmp(sel, "search")) {
        c->ops_search_selects = cpu_ops;
        c->ops_search_selects.select_topk = NULL;
        c->ops_search_selects.select_max_k = 0;
        c->base.ops = &c->ops_search_selects;
    }
    c->base.threads = threads;
    c->base.prefill_ok = 1; /* cpu_attention writes every row's key and value before it reads */
    c->level = simd > 0 ? simd : best;
    c->max_kv = max_kv;
    c->load_pool = mt_pool_new(threads);
    if (!c->load_pool) {
        free(c);
        return stts_error_set(err, STTS_ERR_NOMEM, "out of memory or threads creating the CPU backend (%d threads)",
                              threads);
    }
    snprintf(c->base.desc, sizeof c->base.desc, "cpu %s x%d", mt_kernels_name(c->level), threads);
    *out = &c->base;
    return STTS_OK;
}
