/* cuda_backend.cu - the CUDA implementation of mt_backend_ops (backend.h).
 * Weights: device copies in f32/bf16/f16/int8 (+ per-row f32 scales),
 * converted on the host once at load with the CPU backend's rules (quant.h
 * for bf16 and int8, round-to-nearest-even f16) and uploaded; never used in
 * place (the file is host memory). Activations: device memory. An executor
 * is one CUDA stream; every op is enqueued on it, and only download (and
 * upload) wait for it. Host arrays the ops take (ids, positions, per-row K/V
 * pointers and lengths) go to a small per-executor device array per call.
 *
 * Errors: each op returns the status of its launch; the first CUDA error of
 * an executor is kept (sticky: a failed kernel can leave the context
 * unusable) and every later op reports it. */
#include <cuda_runtime.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern "C" { /* the engine's C headers */
#include "backend.h"
#include "cpu/threadpool.h"
#include "quant.h"
}
#include "cuda/cuda_backend.h"
#include "cuda/kernels.h"
#include "cuda/program.h"

namespace {

struct cuda_weight {
    mt_weight h;
    void *d;       /* rows x cols elements of h.fmt */
    float *dscale; /* int8: [rows] */
    /* the LayerNorm (lnf_g, lnf_gb) that precedes this weight folded into
     * it (kernels.h mtk_ln_linear_folded): rc [2][rows], then scratch;
     * made at first use, under the backend's lnf_lock (see ln_fold_rc) */
    float *d_lnf;
    const void *lnf_g, *lnf_gb;
};

struct cuda_backend {
    mt_backend base;
    int max_kv;
    /* mt_cuda_backend_set_bf16_activations: HF's bf16 arithmetic (kernels.h
     * MTK_ACT_BF16) for every op, and f32 weights and the position table
     * rounded to bf16 values */
    int act_bf16;
    pthread_mutex_t lnf_lock; /* making a weight's folded LayerNorm vectors (ln_fold_rc) */
};

struct cuda_exec {
    mt_exec head;
    cudaStream_t st;
    cudaError_t sticky;
    void *d_args; /* per-call argument arrays (device) and their host staging */
    size_t args_cap;
    unsigned char *h_args;
    float *pos_table; /* sinusoids [pos_rows][pos_D] for one (D, rounding) pair */
    int pos_D, pos_round, pos_rows;
    mt_pool *pool;    /* host threads for parallel_for (the search's row statistics) */
    void *d_sel, *h_sel; /* select_topk results: device and pinned host, sel_cap bytes each */
    size_t sel_cap;
    void *d_sel_scratch; /* mtk_select_topk's per-row partial results, sel_scratch_cap bytes */
    size_t sel_scratch_cap;
    /* greedy ahead (select_map/select_ahead/select_collect/embed_fed): the
     * chosen ids stay in d_feed for the next step's embedding; each ticket's
     * (column, log-softmax) pairs go to pinned h_ahead[t] behind event
     * ev_ahead[t]. d_feed keeps its address while it is big enough, as
     * step graphs hold it. */
    int32_t *d_feed;
    int feed_cap, feed_rows;
    int32_t *d_map; /* column -> token id (the shortlist's map); map_n 0: identity */
    int map_n, map_cap;
    void *d_ahead, *h_ahead[2]; /* the last selection's (column, lp) pairs: device, and a pinned copy per ticket */
    int ahead_cap, ahead_rows[2], ahead_pending[2];
    cudaEvent_t ev_ahead[2];
    int step_ticket, step_sel_rows; /* a select_ahead recorded in this step: its ticket (-1: none) */
    int32_t *step_top;  /* a select_topk recorded in this step: where step_end puts its ids and values */
    float *step_lp;
    size_t step_sel_n;
    /* a recorded decoder step (step_begin .. step_end), see "step graphs" below */
    int recording, use_graphs;
    int ktrace_graphs; /* graphs captured so far (the kernel trace's graph numbers) */
    int use_program;  /* STTS_CUDA_PROGRAM=1: a graph's ops as step programs (program.h) */
    int prog_max_n;   /* STTS_CUDA_PROGRAM_MAX_N: GEMVs with more outputs stay kernels (0: no limit) */
    int prog_ops;     /* ops the last step ran in programs (mt_cuda_exec_program_ops) */
    struct rec *recs;
    int nrec, rec_cap;
    unsigned char *h_arena; /* the step's per-step arguments, uploaded in one copy */
    size_t arena_used, arena_cap;
    void *d_arena;
    size_t d_arena_cap;
    struct step_graph *graphs; /* [MAX_GRAPHS] */
    unsigned long tick;
    /* STTS_CUDA_TRACE=1: where a decode step's wall time goes on the host
     * side (printed when the executor is freed): the search's own work
     * after the ids came back, the recording, the upload and launch, and
     * launch -> ids back (the GPU's part plus the copy and the wake-up) */
    int trace;
    uint64_t t_ids, t_begin, t_end_in, t_launched;
    uint64_t tr_search[2], tr_record[2], tr_launch[2], tr_gpu[2]; /* [0]: steps of 1 row, [1]: more */
    int tr_steps[2], tr_searched[2];
};

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* ---- step graphs ----
 * Between step_begin and step_end the ops below only append a record: the
 * arguments that stay the same from step to step (buffers, weights, row
 * counts) in the record, the ones that change (token ids, positions, K/V
 * pointers and lengths, cache-write addresses) in a host argument block
 * ("arena") at an offset the record names. step_end uploads the arena in one
 * copy and, when the records are the same as a step seen before, replays
 * that step's CUDA graph (its kernels read their changing arguments from
 * the device arena, so one graph serves every step of the same shape);
 * otherwise it captures the records as a new graph (the least recently used
 * of MAX_GRAPHS is dropped). STTS_CUDA_GRAPHS=0 launches the records one by
 * one instead (same kernels, no graph). With STTS_CUDA_PROGRAM=1 a new
 * graph's records are first split into units (plan_units): runs of records
 * that one persistent step program runs (program.h), the rest kernels. */
enum { R_LINEAR, R_LN, R_SCALE, R_EMBED, R_ATTN, R_COPY, R_LN_LINEAR, R_SELECT, R_FOLD_APPLY };
#define MAX_GRAPHS 6
struct rec {
    int kind;
    int i[8];
    float f[2];
    const void *p[9];
    size_t n, off; /* copy length; arena offset of the changing arguments */
};
/* A graph's records in order, as units: a run of records that one step
 * program runs (prog), or records launched as kernels (prog NULL). */
struct step_unit {
    int first, count;
    mtk_program *prog;
};
struct step_graph {
    rec *recs;
    int nrec;
    step_unit *units;
    int nunits, prog_ops;
    void *d_arena; /* the arena the graph reads */
    cudaGraphExec_t exec;
    unsigned long used;
    const void **ktrace_ids; /* STTS_CUDA_KTRACE=1: the graph's kernels in order */
    int ktrace_n, ktrace_serial;
};

/* STTS_CUDA_PROGRAM_PROFILE=1 with STTS_CUDA_TRACE=1: each program's mean
 * time per op (stderr), when its graph is dropped. */
void units_profile(const step_graph *g) {
    static const char *kind[] = {"?", "gemv", "attention", "embed", "layernorm", "copy"};
    for (int u = 0; u < g->nunits; u++) {
        const step_unit *su = &g->units[u];
        if (!su->prog) continue;
        double *us = (double *)calloc(3 * (size_t)su->count, sizeof(double));
        int launches = us ? mtk_program_profile(su->prog, us) : 0;
        double all = 0;
        for (int i = 0; i < su->count && launches; i++) {
            const rec *r = &g->recs[su->first + i];
            int k = r->kind == R_LINEAR || r->kind == R_LN_LINEAR ? 1 : r->kind == R_ATTN ? 2 : r->kind == R_EMBED ? 3
                    : r->kind == R_LN ? 4 : 5;
            fprintf(stderr, "cuda profile: op %3d %-9s %s N %-6d K %-5d rows %d: %7.2f us (staging %5.2f, barrier wait %5.2f)\n",
                    i, kind[k], r->kind == R_LN_LINEAR ? "ln" : "  ", k == 1 ? r->i[3] : 0, k == 1 ? r->i[1] : 0,
                    k == 3 ? r->i[2] : r->i[0], us[3 * i], us[3 * i + 1], us[3 * i + 2]);
            all += us[3 * i];
        }
        if (launches) fprintf(stderr, "cuda profile: %d ops, %d launches: %.1f us per launch\n", su->count, launches, all);
        free(us);
    }
}

void graph_drop(step_graph *g) {
    if (g->exec) cudaGraphExecDestroy(g->exec);
    for (int u = 0; u < g->nunits; u++) mtk_program_free(g->units[u].prog);
    free(g->units);
    free(g->recs);
    free(g->ktrace_ids);
    memset(g, 0, sizeof *g);
}

cuda_exec *cx(mt_exec *x) { return (cuda_exec *)x; }
const cuda_weight *cw(const mt_weight *w) { return (const cuda_weight *)w; }

size_t wfmt_size(mt_wfmt f) { return f == MT_WF_F32 ? 4 : f == MT_WF_I8 ? 1 : 2; }
int kfmt(mt_wfmt f) {
    return f == MT_WF_BF16 ? MTK_W_BF16 : f == MT_WF_F16 ? MTK_W_F16 : f == MT_WF_I8 ? MTK_W_I8 : MTK_W_F32;
}

/* The backend's bf16-activation rule for this executor's ops. */
int act_of(const cuda_exec *c) { return ((const cuda_backend *)c->head.be)->act_bf16; }
int act_flags(const cuda_exec *c, int flags) { return act_of(c) ? flags | MTK_ACT_BF16 : flags; }

stts_status fail(cuda_exec *c, cudaError_t e) {
    if (e != cudaSuccess && c->sticky == cudaSuccess) c->sticky = e;
    return c->sticky == cudaSuccess ? STTS_OK : STTS_ERR_DEVICE;
}
stts_status check(cuda_exec *c, int e) { return fail(c, (cudaError_t)e); }

stts_status dev_error(stts_error *err, const char *what, cudaError_t e) {
    cudaGetLastError();
    if (e == cudaErrorMemoryAllocation) { /* say how much there was: other programs may hold the GPU */
        size_t fr = 0, tot = 0;
        if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) cudaGetLastError(), fr = tot = 0;
        return stts_error_set(err, STTS_ERR_NOMEM, "%s: %s (%s; the GPU has %.0f MB free of %.0f MB)", what,
                              cudaGetErrorString(e), cudaGetErrorName(e), fr / 1e6, tot / 1e6);
    }
    return stts_error_set(err, STTS_ERR_DEVICE, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

/* cudaMalloc for weights. STTS_CUDA_WEIGHT_LIMIT=N (tests: a GPU whose
 * memory other programs hold) makes every weight allocation of more than N
 * bytes fail as out of memory. */
static cudaError_t weight_malloc(void **p, size_t bytes) {
    const char *lim = getenv("STTS_CUDA_WEIGHT_LIMIT");
    if (lim && bytes > (size_t)strtoull(lim, NULL, 10)) return cudaErrorMemoryAllocation;
    return cudaMalloc(p, bytes);
}

/* ---- host conversions, the CPU backend's rules ---- */
float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, u;
    if (e == 0) {
        float f = (float)m * (1.0f / 16777216.0f); /* subnormal: m * 2^-24 */
        memcpy(&u, &f, 4);
        u |= sign;
    } else if (e == 31) {
        u = sign | 0x7f800000u | (m << 13);
    } else {
        u = sign | ((e + 112u) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) {
        float a;
        memcpy(&a, &ax, 4);
        return (uint16_t)(sign | (uint32_t)nearbyintf(a * 16777216.0f));
    }
    uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u);
    return (uint16_t)(sign | ((r - (112u << 23)) >> 13));
}

void src_row_f32(const mt_wpart *p, size_t r, int cols, float *dst) {
    size_t o = r * (size_t)cols;
    if ((int)r < p->il && (p->dtype == MT_DTYPE_BF16 || p->dtype == MT_DTYPE_F16)) {
        /* a converted file's interleaved groups (quant.h): the row's 32-value pieces, one by one */
        const uint16_t *g = (const uint16_t *)p->data + (r & ~(size_t)3) * cols + 32 * (r & 3);
        for (int k = 0; k < cols; k++) {
            uint16_t h = g[4 * (k & ~31) + (k & 31)];
            dst[k] = p->dtype == MT_DTYPE_BF16 ? bf16_to_f32(h) : f16_to_f32(h);
        }
        return;
    }
    switch (p->dtype) {
    case MT_DTYPE_F32: memcpy(dst, (const float *)p->data + o, (size_t)cols * sizeof(float)); break;
    case MT_DTYPE_BF16:
        for (int i = 0; i < cols; i++) dst[i] = bf16_to_f32(((const uint16_t *)p->data)[o + i]);
        break;
    case MT_DTYPE_F16:
        for (int i = 0; i < cols; i++) dst[i] = f16_to_f32(((const uint16_t *)p->data)[o + i]);
        break;
    case MT_DTYPE_I8: {
        float s = p->scale[r];
        if ((int)r < p->il) { /* a converted file's interleaved groups (quant.h): 64-byte pieces 256 apart */
            const int8_t *g = (const int8_t *)p->data + (r & ~(size_t)3) * cols + 64 * (r & 3);
            for (int k = 0; k < cols; k += 64)
                for (int i = 0; i < 64; i++) dst[k + i] = (float)g[4 * k + i] * s;
            break;
        }
        for (int i = 0; i < cols; i++) dst[i] = (float)((const int8_t *)p->data)[o + i] * s;
        break;
    }
    default: memset(dst, 0, (size_t)cols * sizeof(float)); break;
    }
}

mt_dtype wfmt_dtype(mt_wfmt f) {
    return f == MT_WF_F32 ? MT_DTYPE_F32 : f == MT_WF_BF16 ? MT_DTYPE_BF16 : f == MT_WF_F16 ? MT_DTYPE_F16 : MT_DTYPE_I8;
}

/* One source row into the target format at dst (scale: int8's row scale). */
void conv_row(const mt_wpart *p, size_t r, int K, mt_wfmt fmt, void *dst, float *scale, float *row) {
    if (p->dtype == wfmt_dtype(fmt)) { /* same format: the bits as they are (int8: rows row-major on the device) */
        mt_il_row_get(p->data, K, wfmt_size(fmt), p->il, (int)r, dst); /* a memcpy unless interleaved */
        if (fmt == MT_WF_I8) *scale = p->scale[r];
        return;
    }
    src_row_f32(p, r, K, row);
    switch (fmt) {
    case MT_WF_F32: memcpy(dst, row, (size_t)K * sizeof(float)); break;
    case MT_WF_BF16:
        for (int i = 0; i < K; i++) ((uint16_t *)dst)[i] = mt_f32_to_bf16(row[i]);
        break;
    case MT_WF_F16:
        for (int i = 0; i < K; i++) ((uint16_t *)dst)[i] = f32_to_f16(row[i]);
        break;
    case MT_WF_I8: *scale = mt_quantize_row_i8(row, (size_t)K, (int8_t *)dst); break;
    }
}

/* ---- sinusoids, computed on the host exactly as the CPU backend does ---- */
float round_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = x & 0x80000000u, ax = x & 0x7fffffffu;
    if (ax >= 0x477ff000u) {
        x = ax > 0x7f800000u ? x : (sign | 0x7f800000u);
    } else if (ax < 0x38800000u) {
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

float round_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return f;
    x = (x + 0x7fffu + ((x >> 16) & 1u)) & 0xffff0000u;
    memcpy(&f, &x, 4);
    return f;
}

float pos_value(float v, int mode) { return mode == 1 ? round_f16(v) : mode == 2 ? round_bf16(v) : v; }

stts_status pos_table_for(cuda_exec *c, int max_kv, int D, int round, int rows) {
    if (c->pos_table && c->pos_D == D && c->pos_round == round && c->pos_rows >= rows) return STTS_OK;
    if (rows < max_kv + 4) rows = max_kv + 4;
    float *h = (float *)calloc((size_t)rows * D, sizeof(float));
    if (!h) return STTS_ERR_NOMEM;
    int half = D / 2;
    float negc = (float)(-(log(10000.0) / (double)(half - 1)));
    for (int p = 0; p < rows; p++) {
        float *o = h + (size_t)p * D, pf = (float)p;
        for (int i = 0; i < half; i++) {
            float f = expf((float)i * negc);
            float ang = pf * f;
            o[i] = pos_value(sinf(ang), round);
            o[half + i] = pos_value(cosf(ang), round);
        }
    }
    if (c->pos_table) {
        cudaStreamSynchronize(c->st);
        cudaFree(c->pos_table);
    }
    c->pos_table = NULL;
    stts_status st = fail(c, cudaMalloc(&c->pos_table, (size_t)rows * D * sizeof(float)));
    /* on this stream and waited for: a plain cudaMemcpy from pageable memory
     * may return before its DMA is done, and the legacy stream it uses does
     * not order this executor's non-blocking stream (test_cuda caught it) */
    if (!st) st = fail(c, cudaMemcpyAsync(c->pos_table, h, (size_t)rows * D * sizeof(float), cudaMemcpyHostToDevice, c->st));
    if (!st) st = fail(c, cudaStreamSynchronize(c->st));
    free(h);
    if (!st) c->pos_D = D, c->pos_round = round, c->pos_rows = rows;
    return st;
}

/* Device room for `bytes` of per-call arguments (h_args staging). The copy is
 * a pageable cudaMemcpyAsync, which returns once the bytes are staged, so
 * the host buffer can be refilled at once; stream order keeps the device
 * buffer's earlier readers first. */
unsigned char *args_room(cuda_exec *c, size_t bytes) {
    if (bytes > c->args_cap) {
        size_t n = bytes * 2;
        if (c->d_args) {
            cudaStreamSynchronize(c->st);
            cudaFree(c->d_args);
        }
        free(c->h_args);
        c->d_args = NULL;
        c->args_cap = 0;
        c->h_args = (unsigned char *)malloc(n);
        if (!c->h_args || fail(c, cudaMalloc(&c->d_args, n))) return NULL;
        c->args_cap = n;
    }
    return c->h_args;
}

stts_status args_send(cuda_exec *c, size_t bytes) {
    return fail(c, cudaMemcpyAsync(c->d_args, c->h_args, bytes, cudaMemcpyHostToDevice, c->st));
}

/* ---- backend: weights and memory ---- */
void be_destroy(mt_backend *be) {
    if (!be) return;
    cudaDeviceSynchronize();
    pthread_mutex_destroy(&((cuda_backend *)be)->lnf_lock);
    free(be);
}

void wfree(cuda_weight *w) {
    if (!w) return;
    if (w->d) cudaFree(w->d);
    if (w->dscale) cudaFree(w->dscale);
    if (w->d_lnf) cudaFree(w->d_lnf);
    free(w);
}

stts_status be_weight_new(mt_backend *be, const mt_wpart *parts, int nparts, int part_rows, int cols, mt_wfmt fmt,
                          int flags, mt_weight **out, stts_error *err) {
    (void)flags;
    *out = NULL;
    if (nparts < 1 || part_rows < 1 || cols < 1)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "weight: bad shape (%d parts of %d x %d)", nparts, part_rows,
                              cols);
    if (fmt < MT_WF_F32 || fmt > MT_WF_I8) return stts_error_set(err, STTS_ERR_INVALID_ARG, "weight: unknown format %d", (int)fmt);
    if (fmt != MT_WF_F32 && cols % 8 != 0)
        return stts_error_set(err, STTS_ERR_UNSUPPORTED, "weight: %d columns (the CUDA kernels need a multiple of 8)",
                              cols);
    for (int p = 0; p < nparts; p++) {
        mt_dtype d = parts[p].dtype;
        if (!parts[p].data || (d != MT_DTYPE_F32 && d != MT_DTYPE_F16 && d != MT_DTYPE_BF16 && d != MT_DTYPE_I8) ||
            (d == MT_DTYPE_I8 && !parts[p].scale))
            return stts_error_set(err, STTS_ERR_UNSUPPORTED, "weight: source dtype %s cannot be a weight",
                                  mt_dtype_name(d));
    }
    cuda_weight *w = (cuda_weight *)calloc(1, sizeof *w);
    if (!w) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory for a weight handle");
    int N = nparts * part_rows;
    size_t es = wfmt_size(fmt), rowb = (size_t)cols * es;
    w->h.fmt = fmt;
    w->h.rows = N;
    w->h.cols = cols;
    w->h.bytes = (size_t)N * rowb + (fmt == MT_WF_I8 ? (size_t)N * sizeof(float) : 0);
    cudaError_t e = weight_malloc(&w->d, (size_t)N * rowb);
    if (e == cudaSuccess && fmt == MT_WF_I8) e = weight_malloc((void **)&w->dscale, (size_t)N * sizeof(float));
    if (e != cudaSuccess) {
        wfree(w);
        return dev_error(err, "cudaMalloc of a weight", e);
    }
    /* convert in slices of ~16 MB on the host, upload each */
    int slice = (int)((16u << 20) / rowb);
    if (slice < 1) slice = 1;
    if (slice > N) slice = N;
    unsigned char *buf = (unsigned char *)malloc((size_t)slice * rowb);
    float *sc = (float *)malloc((size_t)N * sizeof(float)), *row = (float *)malloc((size_t)cols * sizeof(float));
    if (!buf || !sc || !row) {
        free(buf), free(sc), free(row), wfree(w);
        return stts_error_set(err, STTS_ERR_NOMEM, "out of memory converting a weight");
    }
    for (int r0 = 0; r0 < N && e == cudaSuccess; r0 += slice) {
        int r1 = r0 + slice < N ? r0 + slice : N;
        for (int r = r0; r < r1; r++) {
            unsigned char *dst = buf + (size_t)(r - r0) * rowb;
            conv_row(&parts[r / part_rows], (size_t)(r % part_rows), cols, fmt, dst, &sc[r], row);
            if (fmt == MT_WF_F32 && ((cuda_backend *)be)->act_bf16)
                for (int i = 0; i < cols; i++) ((float *)dst)[i] = round_bf16(((float *)dst)[i]);
        }
        e = cudaMemcpy((char *)w->d + (size_t)r0 * rowb, buf, (size_t)(r1 - r0) * rowb, cudaMemcpyHostToDevice);
    }
    if (e == cudaSuccess && fmt == MT_WF_I8)
        e = cudaMemcpy(w->dscale, sc, (size_t)N * sizeof(float), cudaMemcpyHostToDevice);
    /* a pageable cudaMemcpy may return before its DMA lands, and executors'
     * streams do not wait for the legacy stream: finish the upload here */
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    free(buf), free(sc), free(row);
    if (e != cudaSuccess) {
        wfree(w);
        return dev_error(err, "uploading a weight", e);
    }
    *out = &w->h;
    return STTS_OK;
}

stts_status be_weight_gather(mt_backend *be, const mt_weight *srch, const int32_t *ids, int n, mt_weight **out,
                             stts_error *err) {
    (void)be;
    const cuda_weight *src = cw(srch);
    *out = NULL;
    if (n < 1) return stts_error_set(err, STTS_ERR_INVALID_ARG, "weight gather: no rows");
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= src->h.rows)
            return stts_error_set(err, STTS_ERR_INVALID_ARG, "weight gather: row %d is outside 0..%d", ids[i],
                                  src->h.rows - 1);
    cuda_weight *w = (cuda_weight *)calloc(1, sizeof *w);
    if (!w) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory for a weight handle");
    size_t rowb = (size_t)src->h.cols * wfmt_size(src->h.fmt);
    w->h = src->h;
    w->h.rows = n;
    w->h.in_place = 0;
    w->h.bytes = (size_t)n * rowb + (w->h.fmt == MT_WF_I8 ? (size_t)n * sizeof(float) : 0);
    int32_t *d_ids = NULL;
    cudaError_t e = weight_malloc(&w->d, (size_t)n * rowb);
    if (e == cudaSuccess) e = cudaMalloc((void **)&d_ids, (size_t)n * sizeof(int32_t));
    if (e == cudaSuccess) e = cudaMemcpy(d_ids, ids, (size_t)n * sizeof(int32_t), cudaMemcpyHostToDevice);
    if (e == cudaSuccess) e = (cudaError_t)mtk_gather_rows(NULL, src->d, d_ids, n, rowb, w->d);
    if (e == cudaSuccess && w->h.fmt == MT_WF_I8) {
        e = cudaMalloc((void **)&w->dscale, (size_t)n * sizeof(float));
        if (e == cudaSuccess) e = (cudaError_t)mtk_gather_rows(NULL, src->dscale, d_ids, n, sizeof(float), w->dscale);
    }
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    if (d_ids) cudaFree(d_ids);
    if (e != cudaSuccess) {
        wfree(w);
        return dev_error(err, "gathering weight rows", e);
    }
    *out = &w->h;
    return STTS_OK;
}

stts_status be_weight_read(mt_backend *be, const mt_weight *wh, int row0, int rows, float *dst, stts_error *err) {
    (void)be;
    const cuda_weight *w = cw(wh);
    if (row0 < 0 || rows < 0 || row0 + rows > w->h.rows)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "weight read: rows %d..%d outside 0..%d", row0, row0 + rows,
                              w->h.rows);
    size_t K = (size_t)w->h.cols, rowb = K * wfmt_size(w->h.fmt);
    void *h = malloc((size_t)rows * rowb + 1);
    float *sc = (float *)malloc((size_t)rows * sizeof(float) + 1);
    if (!h || !sc) {
        free(h), free(sc);
        return stts_error_set(err, STTS_ERR_NOMEM, "out of memory reading a weight");
    }
    cudaError_t e = cudaMemcpy(h, (const char *)w->d + (size_t)row0 * rowb, (size_t)rows * rowb, cudaMemcpyDeviceToHost);
    if (e == cudaSuccess && w->h.fmt == MT_WF_I8)
        e = cudaMemcpy(sc, w->dscale + row0, (size_t)rows * sizeof(float), cudaMemcpyDeviceToHost);
    if (e == cudaSuccess) {
        mt_wpart p = {wfmt_dtype(w->h.fmt), h, sc, 0}; /* the device copy is row-major */
        for (int r = 0; r < rows; r++) src_row_f32(&p, (size_t)r, (int)K, dst + (size_t)r * K);
    }
    free(h), free(sc);
    return e == cudaSuccess ? STTS_OK : dev_error(err, "reading a weight", e);
}

void be_weight_free(mt_backend *be, mt_weight *wh) {
    (void)be;
    if (!wh) return;
    cudaDeviceSynchronize(); /* an executor may still be reading it */
    wfree((cuda_weight *)wh);
}

float *be_alloc(mt_backend *be, size_t n) {
    (void)be;
    void *p = NULL;
    if (cudaMalloc(&p, (n ? n : 1) * sizeof(float)) != cudaSuccess) {
        cudaGetLastError(); /* an allocation failure is reported by NULL */
        return NULL;
    }
    return (float *)p;
}

void be_release(mt_backend *be, float *p) {
    (void)be;
    if (!p) return;
    cudaDeviceSynchronize(); /* work still queued may use it */
    cudaFree(p);
}

/* ---- executors ---- */
stts_status be_exec_new(mt_backend *be, int threads, mt_exec **out, stts_error *err) {
    *out = NULL;
    if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;
    if (threads > 8) threads = 8; /* host work is a few rows of logits per step */
    cuda_exec *c = (cuda_exec *)calloc(1, sizeof *c);
    if (!c) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory for an executor");
    c->head.be = be;
    c->head.threads = threads;
    if (!(c->pool = mt_pool_new(threads))) {
        free(c);
        return stts_error_set(err, STTS_ERR_NOMEM, "cannot start %d host threads for an executor", threads);
    }
    const char *g = getenv("STTS_CUDA_GRAPHS");
    c->use_graphs = !(g && strcmp(g, "0") == 0);
    const char *pg = getenv("STTS_CUDA_PROGRAM"), *pn = getenv("STTS_CUDA_PROGRAM_MAX_N");
    /* off by default (slower than the kernels so far); programs do not
     * implement the bf16-activation mode */
    c->use_program = pg && strcmp(pg, "1") == 0 && !((cuda_backend *)be)->act_bf16;
    c->prog_max_n = pn ? atoi(pn) : 0;
    const char *tr = getenv("STTS_CUDA_TRACE");
    c->trace = tr && strcmp(tr, "1") == 0;
    if (!(c->graphs = (step_graph *)calloc(MAX_GRAPHS, sizeof(step_graph)))) {
        mt_pool_free(c->pool);
        free(c);
        return stts_error_set(err, STTS_ERR_NOMEM, "out of memory for an executor");
    }
    cudaError_t e = cudaStreamCreateWithFlags(&c->st, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        mt_pool_free(c->pool);
        free(c->graphs);
        free(c);
        return dev_error(err, "cudaStreamCreate", e);
    }
    *out = &c->head;
    return STTS_OK;
}

void be_exec_free(mt_exec *x) {
    cuda_exec *c = cx(x);
    if (!c) return;
    cudaStreamSynchronize(c->st);
    if (mtk_ktrace_enabled()) mtk_ktrace_report();
    for (int b = 0; c->trace && b < 2; b++) {
        if (!c->tr_steps[b]) continue;
        double n = c->tr_steps[b] * 1000.0;
        fprintf(stderr,
                "cuda trace: %d steps of %s; per step: search %.1f us, recording %.1f us, upload + launch %.1f us, "
                "launch -> ids back %.1f us\n",
                c->tr_steps[b], b ? "2+ rows" : "1 row",
                c->tr_searched[b] ? c->tr_search[b] / (c->tr_searched[b] * 1000.0) : 0.0, c->tr_record[b] / n,
                c->tr_launch[b] / n, c->tr_gpu[b] / n);
    }
    if (c->d_args) cudaFree(c->d_args);
    if (c->pos_table) cudaFree(c->pos_table);
    if (c->d_sel) cudaFree(c->d_sel);
    if (c->d_sel_scratch) cudaFree(c->d_sel_scratch);
    if (c->h_sel) cudaFreeHost(c->h_sel);
    if (c->d_feed) cudaFree(c->d_feed);
    if (c->d_map) cudaFree(c->d_map);
    if (c->d_ahead) cudaFree(c->d_ahead);
    for (int t = 0; t < 2; t++) {
        if (c->h_ahead[t]) cudaFreeHost(c->h_ahead[t]);
        if (c->ev_ahead[t]) cudaEventDestroy(c->ev_ahead[t]);
    }
    for (int g = 0; c->trace && g < MAX_GRAPHS; g++)
        if (c->graphs[g].exec) units_profile(&c->graphs[g]);
    for (int g = 0; g < MAX_GRAPHS; g++) graph_drop(&c->graphs[g]);
    free(c->graphs);
    free(c->recs);
    free(c->h_arena);
    if (c->d_arena) cudaFree(c->d_arena);
    cudaStreamDestroy(c->st);
    mt_pool_free(c->pool);
    free(c->h_args);
    free(c);
}

stts_status be_upload(mt_exec *x, float *dst, const float *src, size_t n) {
    cuda_exec *c = cx(x);
    stts_status st = fail(c, cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyHostToDevice, c->st));
    return st ? st : fail(c, cudaStreamSynchronize(c->st));
}

stts_status be_download(mt_exec *x, float *dst, const float *src, size_t n) {
    cuda_exec *c = cx(x);
    stts_status st = fail(c, cudaSuccess);
    if (!st) st = fail(c, cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToHost, c->st));
    if (!st) st = fail(c, cudaStreamSynchronize(c->st));
    return st;
}

/* Host work on downloaded data (the search's row statistics) on the
 * executor's host threads. */
struct pfor_job {
    void (*fn)(void *ctx, int i);
    void *ctx;
};

void pfor_chunk(void *arg, int chunk, int tid) {
    (void)tid;
    pfor_job *j = (pfor_job *)arg;
    j->fn(j->ctx, chunk);
}

stts_status be_parallel_for(mt_exec *x, int n, void (*fn)(void *ctx, int i), void *ctx) {
    if (n <= 1) {
        for (int i = 0; i < n; i++) fn(ctx, i);
        return STTS_OK;
    }
    pfor_job j = {fn, ctx};
    mt_pool_run(cx(x)->pool, n, pfor_chunk, &j);
    return STTS_OK;
}

rec *rec_add(cuda_exec *c, int kind) {
    if (c->nrec == c->rec_cap) {
        int n = c->rec_cap ? 2 * c->rec_cap : 256;
        rec *r = (rec *)realloc(c->recs, (size_t)n * sizeof(rec));
        if (!r) return NULL;
        c->recs = r, c->rec_cap = n;
    }
    rec *r = &c->recs[c->nrec++];
    memset(r, 0, sizeof *r); /* records are compared with memcmp */
    r->kind = kind;
    return r;
}

/* Room for `bytes` of changing arguments (16-byte aligned); NULL on no memory. */
unsigned char *arena_add(cuda_exec *c, size_t bytes, size_t *off) {
    size_t o = (c->arena_used + 15) & ~(size_t)15;
    if (o + bytes > c->arena_cap) {
        size_t n = c->arena_cap ? 2 * c->arena_cap : 65536;
        while (n < o + bytes) n *= 2;
        unsigned char *h = (unsigned char *)realloc(c->h_arena, n);
        if (!h) return NULL;
        c->h_arena = h, c->arena_cap = n;
    }
    c->arena_used = o + bytes;
    *off = o;
    return c->h_arena + o;
}

int rec_launch(cuda_exec *c, const rec *r, const unsigned char *A) {
    switch (r->kind) {
    case R_LINEAR:
        return mtk_linear_scaled(c->st, (const float *)r->p[0], r->i[0], r->i[1], r->p[1], r->i[2],
                                 (const float *)r->p[2], r->i[3], (const float *)r->p[3], (float *)r->p[4], r->i[4],
                                 r->i[5], r->f[0]);
    case R_LN:
        return mtk_layernorm(c->st, (const float *)r->p[0], r->i[0], r->i[1], (const float *)r->p[1],
                             (const float *)r->p[2], r->f[0], (float *)r->p[3], act_of(c));
    case R_SCALE: return mtk_scale_cols(c->st, (float *)r->p[0], r->i[0], r->i[1], r->i[2], r->f[0]);
    case R_EMBED: {
        int rows = r->i[2];
        const int32_t *ids = (const int32_t *)(A + r->off);
        return mtk_embed(c->st, r->p[0], r->i[0], (const float *)r->p[1], r->i[1], ids, (const int *)(ids + rows),
                         rows, r->f[0], r->i[3], (const float *)r->p[2], (float *)r->p[3], act_of(c),
                         (const int32_t *)r->p[4]);
    }
    case R_ATTN: {
        int rows = r->i[0];
        const float *const *k = (const float *const *)(A + r->off);
        mtk_new_kv nkv = {(const float *)r->p[2], (const float *)r->p[3], r->i[7]};
        return mtk_attention(c->st, rows, r->i[1], r->i[2], (const float *)r->p[0], r->i[3], k, k + rows,
                             (const int *)(k + 2 * rows), r->i[4], (float *)r->p[1], r->i[5], r->i[6],
                             r->n == 1   ? 2 /* the encoder's keys and values */
                             : r->n == 2 ? 0 /* rows after others that wrote their caches in the step before */
                                         : 1 /* recorded: a decode step's caches */,
                             &nkv, act_of(c));
    }
    case R_COPY: return mtk_copy_list(c->st, (const float *const *)(A + r->off), r->i[0], r->n);
    case R_SELECT:
        return mtk_select_topk(c->st, (const float *)r->p[0], r->i[0], r->i[1], r->i[2], (int32_t *)r->p[1],
                               (float *)r->p[2], (void *)r->p[3], (const int32_t *)r->p[4], (int32_t *)r->p[5]);
    case R_FOLD_APPLY:
        return mtk_cross_fold_apply(c->st, (const float *)r->p[0], r->i[0], r->i[1], r->i[2], (const float *)r->p[1],
                                    r->i[3], (const float *)r->p[2], (float *)r->p[3], r->i[4]);
    case R_LN_LINEAR:
        return mtk_ln_linear_folded(c->st, (const float *)r->p[0], r->i[0], r->i[1], (const float *)r->p[5],
                                    (const float *)r->p[6], r->f[1], (float *)r->p[7], r->p[1], r->i[2],
                                    (const float *)r->p[2], r->i[3], (const float *)r->p[3], (float *)r->p[4],
                                    r->i[4], r->i[5], r->f[0], (const float *)r->p[8]);
    }
    return (int)cudaErrorInvalidValue;
}

/* ---- step programs ----
 * A record as a program op (program.h), with its arena arguments resolved
 * to device addresses; *wfmt: a GEMV's weight format. 0: a kind programs
 * do not run. */
int rec_op(const rec *r, const unsigned char *A, mtk_prog_op *op, int *wfmt) {
    memset(op, 0, sizeof *op);
    *wfmt = -1;
    switch (r->kind) {
    case R_LINEAR:
    case R_LN_LINEAR: {
        if (r->kind == R_LN_LINEAR && r->p[8]) return 0; /* folded LayerNorms: programs do not have them */
        mtk_gemv_op &g = op->u.gemv;
        op->kind = MTK_OP_GEMV, op->rows = r->i[0];
        g.x = (const float *)r->p[0], g.K = r->i[1], g.W = r->p[1], *wfmt = r->i[2];
        g.scales = (const float *)r->p[2], g.N = r->i[3], g.b = (const float *)r->p[3], g.y = (float *)r->p[4];
        g.flags = r->i[4], g.qcols = r->i[5], g.qs = r->f[0];
        if (r->kind == R_LN_LINEAR)
            g.ln_g = (const float *)r->p[5], g.ln_b = (const float *)r->p[6], g.ln_eps = r->f[1],
            g.ln_out = (float *)r->p[7];
        return 1;
    }
    case R_ATTN: {
        mtk_attn_op &a = op->u.attn;
        const float *const *k = (const float *const *)(A + r->off);
        op->kind = MTK_OP_ATTN, op->rows = r->i[0];
        a.heads = r->i[1], a.head_dim = r->i[2], a.q = (const float *)r->p[0], a.q_stride = r->i[3];
        a.k = k, a.v = k + r->i[0], a.kv_len = (const int *)(k + 2 * r->i[0]), a.kv_stride = r->i[4];
        a.out = (float *)r->p[1], a.out_stride = r->i[5], a.max_kv = r->i[6];
        a.nkv.k = (const float *)r->p[2], a.nkv.v = (const float *)r->p[3], a.nkv.stride = r->i[7];
        return 1;
    }
    case R_EMBED: {
        if (r->p[4]) return 0; /* ids fed by the last selection: programs read ids from the arena only */
        mtk_embed_op &e = op->u.embed;
        const int32_t *ids = (const int32_t *)(A + r->off);
        op->kind = MTK_OP_EMBED, op->rows = r->i[2];
        e.table = r->p[0], e.fmt = r->i[0], e.tscales = (const float *)r->p[1], e.D = r->i[1], e.ids = ids;
        e.pos = (const int *)(ids + r->i[2]), e.scale = r->f[0], e.pad_idx = r->i[3];
        e.pos_table = (const float *)r->p[2], e.out = (float *)r->p[3];
        return 1;
    }
    case R_LN: {
        mtk_ln_op &l = op->u.ln;
        op->kind = MTK_OP_LN, op->rows = r->i[0];
        l.x = (const float *)r->p[0], l.D = r->i[1], l.g = (const float *)r->p[1], l.b = (const float *)r->p[2];
        l.eps = r->f[0], l.y = (float *)r->p[3];
        return 1;
    }
    case R_COPY:
        op->kind = MTK_OP_COPY, op->rows = 1;
        op->u.copy.pairs = (const float *const *)(A + r->off), op->u.copy.count = r->i[0], op->u.copy.n = r->n;
        return 1;
    }
    return 0;
}

/* Fewer ops than this gain nothing from a program over PDL kernels. */
#define PROG_MIN_OPS 4

/* Splits a new graph's records into units: each maximal run of records a
 * program accepts (one GEMV weight format per program) becomes a program,
 * the rest stay kernels. Made before the capture (program_new uploads). A
 * program that cannot be made leaves its records to kernels. */
stts_status plan_units(cuda_exec *c, step_graph *g, const unsigned char *A) {
    g->units = (step_unit *)calloc((size_t)c->nrec, sizeof(step_unit));
    mtk_prog_op *ops = (mtk_prog_op *)malloc((size_t)c->nrec * sizeof(mtk_prog_op));
    if (!g->units || !ops) {
        free(ops);
        return STTS_ERR_NOMEM;
    }
    for (int i = 0; i < c->nrec;) {
        int j = i, fmt = -1;
        while (c->use_program && j < c->nrec) {
            mtk_prog_op *op = &ops[j - i];
            int wf;
            if (!rec_op(&c->recs[j], A, op, &wf)) break;
            if (op->kind == MTK_OP_GEMV) {
                if ((fmt >= 0 && wf != fmt) || (c->prog_max_n > 0 && op->u.gemv.N > c->prog_max_n)) break;
                if (!mtk_program_accepts(op, wf)) break;
                fmt = wf;
            } else if (!mtk_program_accepts(op, 0)) {
                break;
            }
            j++;
        }
        step_unit *u = &g->units[g->nunits++];
        u->first = i;
        if (j - i >= PROG_MIN_OPS && mtk_program_new(ops, j - i, fmt < 0 ? MTK_W_F32 : fmt, &u->prog) == 0) {
            u->count = j - i;
            g->prog_ops += u->count;
            if (c->trace) {
                int blocks, slots;
                size_t smem;
                mtk_program_shape(u->prog, &blocks, &slots, &smem);
                fprintf(stderr, "cuda trace: step program of %d ops (records %d-%d of %d): %d blocks, %d slots, %zu "
                                "bytes of shared memory\n", u->count, i, j - 1, c->nrec, blocks, slots, smem);
            }
        } else {
            u->count = j - i > 1 ? j - i : 1; /* too short, or not made: kernels */
            u->prog = NULL;
        }
        i += u->count;
    }
    free(ops);
    return STTS_OK;
}

int units_launch(cuda_exec *c, const step_graph *g, const unsigned char *A) {
    int e = 0;
    for (int u = 0; !e && u < g->nunits; u++) {
        const step_unit *su = &g->units[u];
        if (su->prog) e = mtk_program_launch(c->st, su->prog);
        else
            for (int i = su->first; !e && i < su->first + su->count; i++) e = rec_launch(c, &c->recs[i], A);
    }
    return e;
}

/* A recorded op that found no host memory: the step is dropped at step_end. */
stts_status rec_nomem(cuda_exec *c) {
    c->recording = 2;
    return STTS_ERR_NOMEM;
}

void be_step_begin(mt_exec *x) {
    cuda_exec *c = cx(x);
    if (c->trace) c->t_begin = now_ns();
    c->recording = 1;
    c->nrec = 0;
    c->arena_used = 0;
    c->step_ticket = -1;
    c->step_top = NULL;
}

/* After a step that recorded a select_ahead: its pairs to the ticket's
 * pinned buffer, behind the ticket's event (no wait). */
stts_status ahead_copy_back(cuda_exec *c, int ticket, int rows) {
    size_t bytes = (size_t)rows * (sizeof(int32_t) + sizeof(float));
    if (fail(c, cudaMemcpyAsync(c->h_ahead[ticket], c->d_ahead, bytes, cudaMemcpyDeviceToHost, c->st)) ||
        fail(c, cudaEventRecord(c->ev_ahead[ticket], c->st)))
        return STTS_ERR_DEVICE;
    c->ahead_rows[ticket] = rows;
    c->ahead_pending[ticket] = 1;
    return STTS_OK;
}

stts_status step_end_run(cuda_exec *c, int discard);

stts_status be_step_end(mt_exec *x, int discard) {
    cuda_exec *c = cx(x);
    if (c->trace) c->t_end_in = now_ns();
    int ticket = c->step_ticket;
    int32_t *top = c->step_top;
    c->step_ticket = -1, c->step_top = NULL;
    stts_status st = step_end_run(c, discard);
    if (!st && !discard && ticket >= 0) st = ahead_copy_back(c, ticket, c->step_sel_rows);
    if (!st && !discard && top) { /* a recorded select_topk: its results, as select_topk returns them */
        size_t n = c->step_sel_n;
        st = fail(c, cudaMemcpyAsync(c->h_sel, c->d_sel, n * (sizeof(int32_t) + sizeof(float)),
                                     cudaMemcpyDeviceToHost, c->st));
        if (!st) st = fail(c, cudaStreamSynchronize(c->st));
        if (!st) {
            memcpy(top, c->h_sel, n * sizeof(int32_t));
            memcpy(c->step_lp, (const int32_t *)c->h_sel + n, n * sizeof(float));
        }
    }
    if (c->trace) c->t_launched = now_ns();
    return st;
}

stts_status step_end_run(cuda_exec *c, int discard) {
    int was = c->recording;
    c->recording = 0;
    if (discard) return STTS_OK;
    if (was == 2) return STTS_ERR_NOMEM;
    if (fail(c, cudaSuccess)) return STTS_ERR_DEVICE;
    if (c->nrec == 0) return STTS_OK;
    if (c->arena_used > c->d_arena_cap) { /* graphs read the old arena: drop them */
        size_t n = c->arena_used * 2;
        if (c->d_arena) {
            cudaStreamSynchronize(c->st);
            cudaFree(c->d_arena);
            c->d_arena = NULL;
        }
        c->d_arena_cap = 0;
        for (int g = 0; g < MAX_GRAPHS; g++) graph_drop(&c->graphs[g]);
        if (fail(c, cudaMalloc(&c->d_arena, n))) return STTS_ERR_DEVICE;
        c->d_arena_cap = n;
    }
    const unsigned char *A = (const unsigned char *)c->d_arena;
    /* pageable source: the call returns once the bytes are staged, so the
     * host arena may be refilled for the next step at once */
    if (c->arena_used && fail(c, cudaMemcpyAsync(c->d_arena, c->h_arena, c->arena_used, cudaMemcpyHostToDevice, c->st)))
        return STTS_ERR_DEVICE;
    size_t rb = (size_t)c->nrec * sizeof(rec);
    step_graph *hit = NULL, *lru = NULL;
    for (int g = 0; c->use_graphs && g < MAX_GRAPHS; g++) {
        step_graph *q = &c->graphs[g];
        if (q->exec && q->nrec == c->nrec && q->d_arena == c->d_arena && memcmp(q->recs, c->recs, rb) == 0) hit = q;
        if (!lru || q->used < lru->used) lru = q;
    }
    c->prog_ops = 0;
    if (hit) {
        hit->used = ++c->tick;
        c->prog_ops = hit->prog_ops;
        if (hit->ktrace_n) mtk_ktrace_graph_launched(hit->ktrace_serial, hit->ktrace_ids, hit->ktrace_n);
        return fail(c, cudaGraphLaunch(hit->exec, c->st));
    }
    if (c->use_graphs && lru) {
        graph_drop(lru);
        cudaGraph_t graph = NULL;
        if (plan_units(c, lru, A)) {
            graph_drop(lru);
            return STTS_ERR_NOMEM;
        }
        int e = (int)cudaStreamBeginCapture(c->st, cudaStreamCaptureModeThreadLocal);
        if (mtk_ktrace_enabled()) mtk_ktrace_capture_begin();
        if (!e) e = units_launch(c, lru, A);
        cudaError_t ee = cudaStreamEndCapture(c->st, &graph);
        if (mtk_ktrace_enabled()) {
            free(lru->ktrace_ids);
            lru->ktrace_n = mtk_ktrace_capture_end(&lru->ktrace_ids);
            lru->ktrace_serial = ++c->ktrace_graphs;
        }
        if (!e) e = (int)ee;
        if (!e) e = (int)cudaGraphInstantiate(&lru->exec, graph, 0);
        if (graph) cudaGraphDestroy(graph);
        if (!e && (lru->recs = (rec *)malloc(rb ? rb : 1)) != NULL) {
            memcpy(lru->recs, c->recs, rb);
            lru->nrec = c->nrec;
            lru->d_arena = c->d_arena;
            lru->used = ++c->tick;
            c->prog_ops = lru->prog_ops;
            if (lru->ktrace_n) mtk_ktrace_graph_launched(lru->ktrace_serial, lru->ktrace_ids, lru->ktrace_n);
            return fail(c, cudaGraphLaunch(lru->exec, c->st));
        }
        /* capture failed: no graph for this step, the records launched one by one */
        graph_drop(lru);
        cudaGetLastError();
    }
    for (int i = 0; i < c->nrec; i++)
        if (check(c, rec_launch(c, &c->recs[i], A))) return STTS_ERR_DEVICE;
    return STTS_OK;
}

stts_status be_linear_scaled(mt_exec *x, const float *in, int M, const mt_weight *Wh, const mt_weight *bh, float *y,
                             int flags, int cols, float s) {
    cuda_exec *c = cx(x);
    const cuda_weight *w = cw(Wh);
    if (fail(c, cudaSuccess)) return STTS_ERR_DEVICE;
    if (M <= 0) return STTS_OK;
    if ((flags & MT_LIN_ACCUM) || cols < 0 || cols > w->h.rows) return STTS_ERR_INVALID_ARG;
    flags = act_flags(c, flags);
    if (c->recording) {
        rec *r = rec_add(c, R_LINEAR);
        if (!r) return rec_nomem(c);
        r->p[0] = in, r->i[0] = M, r->i[1] = w->h.cols, r->p[1] = w->d, r->i[2] = kfmt(w->h.fmt);
        r->p[2] = w->dscale, r->i[3] = w->h.rows, r->p[3] = bh ? cw(bh)->d : NULL, r->p[4] = y, r->i[4] = flags;
        r->i[5] = cols, r->f[0] = s;
        return STTS_OK;
    }
    return check(c, mtk_linear_scaled(c->st, in, M, w->h.cols, w->d, kfmt(w->h.fmt), w->dscale, w->h.rows,
                                      bh ? (const float *)cw(bh)->d : NULL, y, flags, cols, s));
}

/* ---- the LayerNorm folded into the weights after it ----
 * A LayerNorm + Linear pair's GEMV reduces the row's statistics before its
 * dot products can start: on the H200 a one-row LayerNorm GEMV took ~4.9
 * us on the step's critical path where a plain one took ~2.4 (kernel trace,
 * 2026-12-02), and a greedy step has 24 of them (QKV, fc1). Folded
 * (kernels.h mtk_ln_linear_folded), the products run on g * x while the
 * statistics are reduced; the LayerNorm's gain and bias pass through W
 * once per weight (rc). Not HF's bf16 roundings (the normalized row is no
 * longer rounded to bf16 before the products) and not the CPU's f32 bits,
 * so: never for f32 weights (the parity format); on for int8 and f16
 * (int8 greedy 11.85 -> 11.6 ms on the H200, the same ids on the demo set);
 * off for bf16 (HF's bf16 arithmetic: its greedy agreement with HF fell
 * from 485 to 478 of 500 folded, below the issue's 97%; docs/QUALITY.md).
 * At most kernels.cu's lnf_max_rows rows. STTS_CUDA_LN_FOLD=0 turns it
 * off, =1 on for every format (f32 too: A/B runs and tests, as
 * mt_cuda_ln_fold_force). */
#define LNF_BF16_DEFAULT 0
int g_lnf_force = -1;

int ln_fold_mode(void) {
    static int env = -2;
    if (g_lnf_force >= 0) return g_lnf_force;
    if (env == -2) {
        const char *e = getenv("STTS_CUDA_LN_FOLD");
        env = e && *e ? (strcmp(e, "0") != 0) : -1;
    }
    return env;
}

/* The weight's rc for this LayerNorm, made at its first use (NULL: run
 * unfolded: off, f32, another LayerNorm already folded into it, or no
 * memory). Weights are shared by executors on other threads: the vectors
 * are made under the backend's lock and published once complete (the
 * stream synchronized), so no executor reads them half made. */
const float *ln_fold_rc(cuda_exec *c, const cuda_weight *wc, const mt_weight *g, const mt_weight *gb) {
    const int mode = ln_fold_mode(), fmt = kfmt(wc->h.fmt);
    if (mode == 0 || (mode < 0 && (fmt == MTK_W_F32 || (act_of(c) && !LNF_BF16_DEFAULT)))) return NULL;
    cuda_weight *w = (cuda_weight *)wc;
    const void *gd = cw(g)->d, *bd = cw(gb)->d;
    cuda_backend *be = (cuda_backend *)c->head.be;
    pthread_mutex_lock(&be->lnf_lock);
    if (!w->d_lnf) {
        const int N = w->h.rows, K = w->h.cols;
        float *d = NULL;
        if (cudaMalloc((void **)&d, (size_t)(2 * N + 2 * K) * sizeof(float)) != cudaSuccess) {
            cudaGetLastError();
            d = NULL;
        } else if (mtk_ln_fold_prepare(c->st, w->d, fmt, w->dscale, N, K, (const float *)gd, (const float *)bd,
                                       d + 2 * (size_t)N, d) ||
                   cudaStreamSynchronize(c->st) != cudaSuccess) {
            cudaGetLastError();
            cudaFree(d);
            d = NULL;
        }
        if (d) w->d_lnf = d, w->lnf_g = gd, w->lnf_gb = bd;
    }
    const float *rc = w->d_lnf && w->lnf_g == gd && w->lnf_gb == bd ? w->d_lnf : NULL;
    pthread_mutex_unlock(&be->lnf_lock);
    return rc;
}

stts_status be_ln_linear(mt_exec *x, const float *in, int M, const mt_weight *g, const mt_weight *gb, float eps,
                         float *ln_out, const mt_weight *Wh, const mt_weight *bh, float *y, int flags, int cols,
                         float s) {
    cuda_exec *c = cx(x);
    const cuda_weight *w = cw(Wh);
    if (fail(c, cudaSuccess)) return STTS_ERR_DEVICE;
    if (M <= 0) return STTS_OK;
    if ((cols > 0 && (flags & MT_LIN_ACCUM)) || cols < 0 || cols > w->h.rows || g->cols != w->h.cols ||
        ln_out == in)
        return STTS_ERR_INVALID_ARG;
    flags = act_flags(c, flags);
    const float *rc = ln_fold_rc(c, w, g, gb);
    if (c->recording) {
        rec *r = rec_add(c, R_LN_LINEAR);
        if (!r) return rec_nomem(c);
        r->p[0] = in, r->i[0] = M, r->i[1] = w->h.cols, r->p[1] = w->d, r->i[2] = kfmt(w->h.fmt);
        r->p[2] = w->dscale, r->i[3] = w->h.rows, r->p[3] = bh ? cw(bh)->d : NULL, r->p[4] = y, r->i[4] = flags;
        r->i[5] = cols, r->f[0] = s, r->p[5] = cw(g)->d, r->p[6] = cw(gb)->d, r->f[1] = eps, r->p[7] = ln_out;
        r->p[8] = rc;
        return STTS_OK;
    }
    return check(c, mtk_ln_linear_folded(c->st, in, M, w->h.cols, (const float *)cw(g)->d, (const float *)cw(gb)->d,
                                         eps, ln_out, w->d, kfmt(w->h.fmt), w->dscale, w->h.rows,
                                         bh ? (const float *)cw(bh)->d : NULL, y, flags, cols, s, rc));
}

stts_status be_linear(mt_exec *x, const float *in, int M, const mt_weight *Wh, const mt_weight *bh, float *y,
                      int flags) {
    cuda_exec *c = cx(x);
    const cuda_weight *w = cw(Wh);
    if (fail(c, cudaSuccess)) return STTS_ERR_DEVICE;
    if (M <= 0) return STTS_OK;
    flags = act_flags(c, flags);
    if (c->recording) {
        rec *r = rec_add(c, R_LINEAR);
        if (!r) return rec_nomem(c);
        r->p[0] = in, r->i[0] = M, r->i[1] = w->h.cols, r->p[1] = w->d, r->i[2] = kfmt(w->h.fmt);
        r->p[2] = w->dscale, r->i[3] = w->h.rows, r->p[3] = bh ? cw(bh)->d : NULL, r->p[4] = y, r->i[4] = flags;
        return STTS_OK;
    }
    return check(c, mtk_linear(c->st, in, M, w->h.cols, w->d, kfmt(w->h.fmt), w->dscale, w->h.rows,
                               bh ? (const float *)cw(bh)->d : NULL, y, flags));
}

/* The most rows a step folds its cross-attention for: greedy and its
 * prefill. At 4 rows (beam 4) the folded step was slower on the H200
 * (826 against 756 us a step in the kernel trace, 2026-12-02 12:20 UTC):
 * the softmax takes 8 rounds of a block's warps there, and the f32 M rows
 * stage 4 f32 input rows where the bf16 query GEMV stages bf16. */
#define FOLD_MAX_ROWS 2

/* The cross-attention folded (backend.h cross_fold_*, kernels.h
 * mtk_cross_fold_*): the scores are an ln_linear whose weights are the
 * session's f32 M, recorded as any other; the softmax and weighted sum are
 * one more record. */
stts_status be_cross_fold_prepare(mt_exec *x, int layers, const float *k, const float *v, int kv_stride,
                                  size_t kv_layer, int S, int H, const mt_weight *const *Wq,
                                  const mt_weight *const *bq, float qs, const mt_weight *const *Wo, float *M, float *cc,
                                  float *Nt, size_t m_layer, size_t c_layer) {
    cuda_exec *c = cx(x);
    if (fail(c, cudaSuccess)) return STTS_ERR_DEVICE;
    if (c->recording || S < 1 || S > MTK_FOLD_MAX_S || H < 1 || layers < 1 || layers > MTK_FOLD_MAX_LAYERS)
        return STTS_ERR_INVALID_ARG;
    mtk_fold_weights w;
    memset(&w, 0, sizeof w);
    const int D = Wq[0]->cols, qf = kfmt(Wq[0]->fmt), of = kfmt(Wo[0]->fmt);
    for (int l = 0; l < layers; l++) {
        const cuda_weight *q = cw(Wq[l]), *o = cw(Wo[l]);
        if (q->h.rows != D || q->h.cols != D || o->h.rows != D || o->h.cols != D || D % H ||
            kfmt(q->h.fmt) != qf || kfmt(o->h.fmt) != of)
            return STTS_ERR_INVALID_ARG;
        w.wq[l] = q->d, w.qsc[l] = q->dscale, w.wo[l] = o->d, w.osc[l] = o->dscale;
        w.bq[l] = bq && bq[l] ? (const float *)cw(bq[l])->d : NULL;
    }
    return check(c, mtk_cross_fold_prepare(c->st, layers, k, v, kv_stride, kv_layer, S, H, D / H, &w, qf, of, qs, M,
                                           cc, Nt, m_layer, c_layer));
}

stts_status be_cross_fold_attend(mt_exec *x, const float *in, int R, const mt_weight *g, const mt_weight *gb,
                                 float eps, float *ln_out, const float *M, const float *cc, const float *Nt, int H,
                                 int S, float *scores, const mt_weight *bo, float *y) {
    cuda_exec *c = cx(x);
    if (fail(c, cudaSuccess)) return STTS_ERR_DEVICE;
    if (R <= 0) return STTS_OK;
    const int D = g->cols, HS = H * S;
    if (S < 1 || S > MTK_FOLD_MAX_S || H < 1 || ln_out == in) return STTS_ERR_INVALID_ARG;
    const int sflags = act_flags(c, 0), yflags = act_flags(c, MT_LIN_ACCUM);
    const float *bod = bo ? (const float *)cw(bo)->d : NULL;
    if (c->recording) {
        rec *r = rec_add(c, R_LN_LINEAR);
        if (!r) return rec_nomem(c);
        r->p[0] = in, r->i[0] = R, r->i[1] = D, r->p[1] = M, r->i[2] = MTK_W_F32, r->p[2] = NULL, r->i[3] = HS;
        r->p[3] = cc, r->p[4] = scores, r->i[4] = sflags, r->i[5] = 0, r->f[0] = 0.0f, r->p[5] = cw(g)->d;
        r->p[6] = cw(gb)->d, r->f[1] = eps, r->p[7] = ln_out;
        if (!(r = rec_add(c, R_FOLD_APPLY))) return rec_nomem(c);
        r->p[0] = scores, r->i[0] = R, r->i[1] = H, r->i[2] = S, r->p[1] = Nt, r->i[3] = D, r->p[2] = bod;
        r->p[3] = y, r->i[4] = yflags;
        return STTS_OK;
    }
    if (check(c, mtk_ln_linear(c->st, in, R, D, (const float *)cw(g)->d, (const float *)cw(gb)->d, eps, ln_out, M,
                               MTK_W_F32, NULL, HS, cc, scores, sflags, 0, 0.0f)))
        return STTS_ERR_DEVICE;
    return check(c, mtk_cross_fold_apply(c->st, scores, R, H, S, Nt, D, bod, y, yflags));
}

stts_status be_layernorm(mt_exec *x, const float *in, int M, const mt_weight *g, const mt_weight *b, float eps,
                         float *y) {
    cuda_exec *c = cx(x);
    if (fail(c, cudaSuccess)) return STTS_ERR_DEVICE;
    if (c->recording) {
        rec *r = rec_add(c, R_LN);
        if (!r) return rec_nomem(c);
        r->p[0] = in, r->i[0] = M, r->i[1] = g->cols, r->p[1] = cw(g)->d, r->p[2] = cw(b)->d, r->f[0] = eps;
        r->p[3] = y;
        return STTS_OK;
    }
    return check(c, mtk_layernorm(c->st, in, M, g->cols, (const float *)cw(g)->d, (const float *)cw(b)->d, eps, y,
                                  act_of(c)));
}

/* Rows that share a cache (a prefill: positions 0 and 1 of one slot, with
 * their new keys and values) cannot run in one launch: a block would read
 * the position another block is writing. The rows up to the first one whose
 * cache an earlier row also writes go first; the rest follow in a launch of
 * their own that reads nothing before it waits (after_write). */
static int first_shared_cache_row(const mt_attn_args *a) {
    if (!a->new_k) return a->rows;
    for (int h = 1; h < a->rows; h++)
        for (int j = 0; j < h; j++)
            if (a->k[j] == a->k[h]) return h;
    return a->rows;
}

static stts_status attention_rows(mt_exec *x, const mt_attn_args *a, int after_write);

static stts_status attention_waves(mt_exec *x, const mt_attn_args *a, int after_write) {
    const int h = first_shared_cache_row(a);
    if (h == a->rows) return attention_rows(x, a, after_write);
    mt_attn_args w1 = *a, w2 = *a;
    w1.rows = h;
    w2.rows = a->rows - h;
    w2.q = a->q + (size_t)h * a->q_stride;
    w2.k = a->k + h, w2.v = a->v + h, w2.kv_len = a->kv_len + h;
    w2.out = a->out + (size_t)h * a->out_stride;
    w2.new_k = a->new_k + (size_t)h * a->new_stride, w2.new_v = a->new_v + (size_t)h * a->new_stride;
    stts_status st = attention_rows(x, &w1, after_write);
    return st ? st : attention_waves(x, &w2, 1);
}

stts_status be_attention(mt_exec *x, const mt_attn_args *a) { return attention_waves(x, a, 0); }

static stts_status attention_rows(mt_exec *x, const mt_attn_args *a, int after_write) {
    cuda_exec *c = cx(x);
    int max_kv = ((cuda_backend *)x->be)->max_kv;
    if (fail(c, cudaSuccess)) return STTS_ERR_DEVICE;
    if (a->rows <= 0) return STTS_OK;
    size_t R = (size_t)a->rows, pb = R * sizeof(float *);
    for (size_t r = 0; r < R; r++)
        if (a->kv_len[r] < 1 || a->kv_len[r] > max_kv) return STTS_ERR_INVALID_ARG;
    if (c->recording) {
        size_t off;
        unsigned char *h = arena_add(c, 2 * pb + R * sizeof(int), &off);
        rec *rr = h ? rec_add(c, R_ATTN) : NULL;
        if (!rr) return rec_nomem(c);
        memcpy(h, a->k, pb);
        memcpy(h + pb, a->v, pb);
        memcpy(h + 2 * pb, a->kv_len, R * sizeof(int));
        rr->i[0] = a->rows, rr->i[1] = a->heads, rr->i[2] = a->head_dim, rr->p[0] = a->q, rr->i[3] = a->q_stride;
        rr->i[4] = a->kv_stride, rr->p[1] = a->out, rr->i[5] = a->out_stride, rr->i[6] = max_kv, rr->off = off;
        rr->p[2] = a->new_k, rr->p[3] = a->new_v, rr->i[7] = a->new_stride;
        /* read back as mtk_attention's old_kv: 2 (1 here) the encoder's keys,
         * 0 (2 here) nothing before the wait, 1 (0 here) a decode step's caches */
        rr->n = after_write ? 2 : (size_t)(a->kv_static != 0);
        return STTS_OK;
    }
    mtk_new_kv nkv = {a->new_k, a->new_v, a->new_stride};
    if (a->new_k && !a->new_v) return STTS_ERR_INVALID_ARG;
    if (a->rows <= MTK_INLINE_ROWS) { /* decode steps: arguments in the launch, no copy */
        mtk_kv_rows in;
        memset(&in, 0, sizeof in);
        for (size_t r = 0; r < R; r++) in.k[r] = a->k[r], in.v[r] = a->v[r], in.len[r] = a->kv_len[r];
        return check(c, mtk_attention_inline(c->st, a->rows, a->heads, a->head_dim, a->q, a->q_stride, &in,
                                             a->kv_stride, a->out, a->out_stride, max_kv, 0, &nkv, act_of(c)));
    }
    unsigned char *h = args_room(c, 2 * pb + R * sizeof(int));
    if (!h) return c->sticky ? STTS_ERR_DEVICE : STTS_ERR_NOMEM;
    memcpy(h, a->k, pb);
    memcpy(h + pb, a->v, pb);
    memcpy(h + 2 * pb, a->kv_len, R * sizeof(int));
    stts_status st = args_send(c, 2 * pb + R * sizeof(int));
    if (st) return st;
    unsigned char *d = (unsigned char *)c->d_args;
    return check(c, mtk_attention(c->st, a->rows, a->heads, a->head_dim, a->q, a->q_stride, (const float *const *)d,
                                  (const float *const *)(d + pb), (const int *)(d + 2 * pb), a->kv_stride, a->out,
                                  a->out_stride, max_kv, 0, &nkv, act_of(c)));
}

/* embed and embed_fed: ids[r] is row r's token id, or with feed its row in
 * the last selection (the id is feed[ids[r]] on the device); ids and pos
 * are validated by the caller. */
stts_status embed_launch(cuda_exec *c, const cuda_weight *t, const int32_t *ids, const int *pos, int rows,
                         float scale, int pad_idx, int pos_round, float *out, const int32_t *feed) {
    int max_pos = 0;
    for (int r = 0; r < rows; r++) max_pos = pos[r] > max_pos ? pos[r] : max_pos;
    const cuda_backend *cb = (const cuda_backend *)c->head.be;
    stts_status st = pos_table_for(c, cb->max_kv, t->h.cols, cb->act_bf16 ? 2 : pos_round, max_pos + 1);
    if (st) return st;
    size_t ib = (size_t)rows * sizeof(int32_t);
    if (c->recording) {
        size_t off;
        unsigned char *h = arena_add(c, 2 * ib, &off);
        rec *r = h ? rec_add(c, R_EMBED) : NULL;
        if (!r) return rec_nomem(c);
        memcpy(h, ids, ib);
        memcpy(h + ib, pos, (size_t)rows * sizeof(int));
        r->p[0] = t->d, r->i[0] = kfmt(t->h.fmt), r->p[1] = t->dscale, r->i[1] = t->h.cols, r->i[2] = rows;
        r->f[0] = scale, r->i[3] = pad_idx, r->p[2] = c->pos_table, r->p[3] = out, r->off = off, r->p[4] = feed;
        return STTS_OK;
    }
    if (!feed && rows <= MTK_INLINE_ROWS) {
        mtk_embed_rows in;
        memset(&in, 0, sizeof in);
        for (int r = 0; r < rows; r++) in.ids[r] = ids[r], in.pos[r] = pos[r];
        return check(c, mtk_embed_inline(c->st, t->d, kfmt(t->h.fmt), t->dscale, t->h.cols, &in, rows, scale, pad_idx,
                                         c->pos_table, out, act_of(c)));
    }
    unsigned char *h = args_room(c, 2 * ib);
    if (!h) return c->sticky ? STTS_ERR_DEVICE : STTS_ERR_NOMEM;
    memcpy(h, ids, ib);
    memcpy(h + ib, pos, (size_t)rows * sizeof(int));
    if ((st = args_send(c, 2 * ib))) return st;
    unsigned char *d = (unsigned char *)c->d_args;
    return check(c, mtk_embed(c->st, t->d, kfmt(t->h.fmt), t->dscale, t->h.cols, (const int32_t *)d,
                              (const int *)(d + ib), rows, scale, pad_idx, c->pos_table, out, act_of(c), feed));
}

stts_status be_embed(mt_exec *x, const mt_weight *tw, const int32_t *ids, const int *pos, int rows, float scale,
                     int pad_idx, int pos_round, float *out) {
    cuda_exec *c = cx(x);
    const cuda_weight *t = cw(tw);
    if (fail(c, cudaSuccess)) return STTS_ERR_DEVICE;
    if (rows <= 0) return STTS_OK;
    for (int r = 0; r < rows; r++)
        if (ids[r] < 0 || ids[r] >= t->h.rows || pos[r] < 0) return STTS_ERR_INVALID_ARG;
    return embed_launch(c, t, ids, pos, rows, scale, pad_idx, pos_round, out, NULL);
}

stts_status be_scale_cols(mt_exec *x, float *buf, int rows, int D, int stride, float s) {
    cuda_exec *c = cx(x);
    if (fail(c, cudaSuccess)) return STTS_ERR_DEVICE;
    if (c->recording) {
        rec *r = rec_add(c, R_SCALE);
        if (!r) return rec_nomem(c);
        r->p[0] = buf, r->i[0] = rows, r->i[1] = D, r->i[2] = stride, r->f[0] = s;
        return STTS_OK;
    }
    return check(c, mtk_scale_cols(c->st, buf, rows, D, stride, s));
}

stts_status be_copy(mt_exec *x, float *dst, const float *src, size_t n) {
    cuda_exec *c = cx(x);
    if (fail(c, cudaSuccess)) return STTS_ERR_DEVICE;
    if (c->recording) {
        /* consecutive copies of one length share a launch, unless one
         * touches what an earlier one of the group writes or reads */
        rec *last = c->nrec ? &c->recs[c->nrec - 1] : NULL;
        int join = last && last->kind == R_COPY && last->n == n && last->i[0] < 65535 &&
                   last->off + (size_t)last->i[0] * 2 * sizeof(float *) == c->arena_used;
        for (int i = 0; join && i < last->i[0]; i++) {
            const float *const *pr = (const float *const *)(c->h_arena + last->off) + 2 * i;
            const float *d = pr[0], *sr = pr[1];
            if ((src < d + n && d < src + n) || (dst < d + n && d < dst + n) || (dst < sr + n && sr < dst + n))
                join = 0;
        }
        size_t off;
        unsigned char *h = arena_add(c, 2 * sizeof(float *), &off);
        if (!h) return rec_nomem(c);
        memcpy(h, &dst, sizeof(float *));
        memcpy(h + sizeof(float *), &src, sizeof(float *));
        if (join && off == last->off + (size_t)last->i[0] * 2 * sizeof(float *)) {
            last->i[0]++;
            return STTS_OK;
        }
        rec *r = rec_add(c, R_COPY);
        if (!r) return rec_nomem(c);
        r->i[0] = 1, r->n = n, r->off = off;
        return STTS_OK;
    }
    return fail(c, cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, c->st));
}

/* The beam reorder's cache copies (every layer's keys and values of one
 * slot) as one mtk_copy_list launch: the pairs go through the per-call
 * argument buffer. In a recording, the copies are recorded one by one. */
stts_status be_copy_many(mt_exec *x, const float *const *pairs, int count, size_t n) {
    cuda_exec *c = cx(x);
    if (fail(c, cudaSuccess)) return STTS_ERR_DEVICE;
    if (count <= 0 || n == 0) return STTS_OK;
    if (c->recording || count > 65535) {
        for (int i = 0; i < count; i++) {
            stts_status st = be_copy(x, (float *)pairs[2 * i], pairs[2 * i + 1], n);
            if (st) return st;
        }
        return STTS_OK;
    }
    size_t bytes = (size_t)count * 2 * sizeof(float *);
    unsigned char *h = args_room(c, bytes);
    if (!h) return c->sticky ? STTS_ERR_DEVICE : STTS_ERR_NOMEM;
    memcpy(h, pairs, bytes);
    stts_status st = args_send(c, bytes);
    if (st) return st;
    return check(c, mtk_copy_list(c->st, (const float *const *)c->d_args, count, n));
}

/* The selection's device scratch for rows x V, k (grown, never shrunk). */
stts_status sel_scratch_for(cuda_exec *c, int rows, int V, int k) {
    size_t need = mtk_select_scratch_bytes(rows, V, k);
    if (need <= c->sel_scratch_cap) return STTS_OK;
    if (c->d_sel_scratch) {
        cudaStreamSynchronize(c->st);
        cudaFree(c->d_sel_scratch);
        c->d_sel_scratch = NULL;
    }
    c->sel_scratch_cap = 0;
    if (fail(c, cudaMalloc(&c->d_sel_scratch, need * 2))) return STTS_ERR_DEVICE;
    c->sel_scratch_cap = need * 2;
    return STTS_OK;
}

/* The search's selection on the device: only k ids and scores per row
 * come back (one small copy into pinned memory, one wait). */
stts_status be_select_topk(mt_exec *x, const float *logits, int rows, int V, int k, int32_t *top, float *lp) {
    cuda_exec *c = cx(x);
    if (fail(c, cudaSuccess)) return STTS_ERR_DEVICE;
    if (rows <= 0) return STTS_OK;
    if (k < 1 || k > MTK_SELECT_MAX_K || k > V) return STTS_ERR_INVALID_ARG;
    size_t n = (size_t)rows * k, bytes = n * (sizeof(int32_t) + sizeof(float));
    stts_status sst = sel_scratch_for(c, rows, V, k);
    if (sst) return sst;
    if (bytes > c->sel_cap) {
        if (c->d_sel) {
            cudaStreamSynchronize(c->st);
            cudaFree(c->d_sel);
            c->d_sel = NULL;
        }
        if (c->h_sel) cudaFreeHost(c->h_sel);
        c->h_sel = NULL;
        c->sel_cap = 0;
        if (fail(c, cudaMalloc(&c->d_sel, bytes * 2)) || fail(c, cudaMallocHost(&c->h_sel, bytes * 2)))
            return STTS_ERR_DEVICE;
        c->sel_cap = bytes * 2;
    }
    int32_t *d_idx = (int32_t *)c->d_sel;
    float *d_lp = (float *)(d_idx + n);
    if (c->recording) {
        /* part of the recorded step, behind its LM head in the step's graph
         * (no graph-to-kernel boundary); step_end fills top and lp */
        rec *r = rec_add(c, R_SELECT);
        if (!r) return rec_nomem(c);
        r->p[0] = logits, r->i[0] = rows, r->i[1] = V, r->i[2] = k, r->p[1] = d_idx, r->p[2] = d_lp;
        r->p[3] = c->d_sel_scratch;
        c->step_top = top, c->step_lp = lp, c->step_sel_n = n;
        return STTS_OK;
    }
    stts_status st = check(c, mtk_select_topk(c->st, logits, rows, V, k, d_idx, d_lp, c->d_sel_scratch, NULL, NULL));
    if (!st) st = fail(c, cudaMemcpyAsync(c->h_sel, c->d_sel, bytes, cudaMemcpyDeviceToHost, c->st));
    if (!st) st = fail(c, cudaStreamSynchronize(c->st));
    if (st) return st;
    if (c->trace && c->t_launched > c->t_begin && c->t_begin > c->t_ids) { /* a recorded step, ids fetched */
        uint64_t t = now_ns();
        int b = rows > 1;
        /* a gap over 300 us is a sentence's start (the encoder ran in it), not the search's work */
        if (c->t_ids && c->t_begin - c->t_ids < 300000) c->tr_search[b] += c->t_begin - c->t_ids, c->tr_searched[b]++;
        c->tr_record[b] += c->t_end_in - c->t_begin;
        c->tr_launch[b] += c->t_launched - c->t_end_in;
        c->tr_gpu[b] += t - c->t_launched;
        c->tr_steps[b]++;
        c->t_ids = t;
    }
    memcpy(top, c->h_sel, n * sizeof(int32_t));
    memcpy(lp, (const int32_t *)c->h_sel + n, n * sizeof(float));
    return STTS_OK;
}

/* ---- greedy ahead (backend.h) ---- */
stts_status be_select_map(mt_exec *x, const int32_t *ids, int n) {
    cuda_exec *c = cx(x);
    if (fail(c, cudaSuccess)) return STTS_ERR_DEVICE;
    if (!ids || n <= 0) {
        c->map_n = 0;
        return STTS_OK;
    }
    if (n > c->map_cap) {
        if (c->d_map) {
            cudaStreamSynchronize(c->st); /* a selection may still read it */
            cudaFree(c->d_map);
            c->d_map = NULL;
        }
        c->map_cap = 0;
        if (fail(c, cudaMalloc(&c->d_map, (size_t)n * sizeof(int32_t)))) return STTS_ERR_DEVICE;
        c->map_cap = n;
    }
    /* pageable: returns once staged; stream order keeps earlier selections first */
    if (fail(c, cudaMemcpyAsync(c->d_map, ids, (size_t)n * sizeof(int32_t), cudaMemcpyHostToDevice, c->st)))
        return STTS_ERR_DEVICE;
    c->map_n = n;
    return STTS_OK;
}

stts_status be_select_ahead(mt_exec *x, const float *logits, int rows, int V, int ticket) {
    cuda_exec *c = cx(x);
    if (fail(c, cudaSuccess)) return STTS_ERR_DEVICE;
    if (rows <= 0 || V < 1 || ticket < 0 || ticket > 1 || (c->map_n && V > c->map_n)) return STTS_ERR_INVALID_ARG;
    stts_status st = sel_scratch_for(c, rows, V, 1);
    if (st) return st;
    if (rows > c->feed_cap || rows > c->ahead_cap) {
        /* graphs hold d_feed's and d_ahead's addresses: new ones get new
         * graphs (their records differ); the old graphs never match again */
        cudaStreamSynchronize(c->st);
        int n = rows > 256 ? 2 * rows : 256;
        if (c->d_feed) cudaFree(c->d_feed);
        if (c->d_ahead) cudaFree(c->d_ahead);
        c->d_feed = NULL, c->d_ahead = NULL, c->feed_cap = c->ahead_cap = 0;
        for (int t = 0; t < 2; t++) {
            if (c->h_ahead[t]) cudaFreeHost(c->h_ahead[t]);
            c->h_ahead[t] = NULL;
            c->ahead_pending[t] = 0;
        }
        size_t b = (size_t)n * (sizeof(int32_t) + sizeof(float));
        if (fail(c, cudaMalloc(&c->d_feed, (size_t)n * sizeof(int32_t))) || fail(c, cudaMalloc(&c->d_ahead, b)))
            return STTS_ERR_DEVICE;
        for (int t = 0; t < 2; t++) {
            if (fail(c, cudaMallocHost(&c->h_ahead[t], b))) return STTS_ERR_DEVICE;
            if (!c->ev_ahead[t] && fail(c, cudaEventCreateWithFlags(&c->ev_ahead[t], cudaEventDisableTiming)))
                return STTS_ERR_DEVICE;
        }
        c->feed_cap = c->ahead_cap = n;
    }
    int32_t *d_idx = (int32_t *)c->d_ahead;
    float *d_lp = (float *)(d_idx + rows);
    const int32_t *map = c->map_n ? c->d_map : NULL;
    c->feed_rows = rows;
    /* Inside a step the selection is one more recorded op: it joins the
     * step's graph behind the LM head (programmatic dependent launch, no
     * graph-to-kernel boundary), and step_end copies its pairs back. The
     * pinned buffer of a ticket is refilled only behind its last copy
     * (stream order), and the host reads it only after this copy's event. */
    if (c->recording) {
        rec *r = rec_add(c, R_SELECT);
        if (!r) return rec_nomem(c);
        r->p[0] = logits, r->i[0] = rows, r->i[1] = V, r->i[2] = 1, r->p[1] = d_idx, r->p[2] = d_lp;
        r->p[3] = c->d_sel_scratch, r->p[4] = map, r->p[5] = c->d_feed;
        c->step_ticket = ticket, c->step_sel_rows = rows;
        return STTS_OK;
    }
    st = check(c, mtk_select_topk(c->st, logits, rows, V, 1, d_idx, d_lp, c->d_sel_scratch, map, c->d_feed));
    return st ? st : ahead_copy_back(c, ticket, rows);
}

stts_status be_select_collect(mt_exec *x, int ticket, int rows, int32_t *top, float *lp) {
    cuda_exec *c = cx(x);
    if (fail(c, cudaSuccess)) return STTS_ERR_DEVICE;
    if (ticket < 0 || ticket > 1 || !c->ahead_pending[ticket] || rows != c->ahead_rows[ticket])
        return STTS_ERR_INVALID_ARG;
    if (fail(c, cudaEventSynchronize(c->ev_ahead[ticket]))) return STTS_ERR_DEVICE;
    c->ahead_pending[ticket] = 0;
    memcpy(top, c->h_ahead[ticket], (size_t)rows * sizeof(int32_t));
    memcpy(lp, (const int32_t *)c->h_ahead[ticket] + rows, (size_t)rows * sizeof(float));
    return STTS_OK;
}

stts_status be_embed_fed(mt_exec *x, const mt_weight *tw, const int *from_row, const int *pos, int rows, float scale,
                         int pad_idx, int pos_round, float *out) {
    cuda_exec *c = cx(x);
    if (fail(c, cudaSuccess)) return STTS_ERR_DEVICE;
    if (rows <= 0) return STTS_OK;
    for (int r = 0; r < rows; r++)
        if (from_row[r] < 0 || from_row[r] >= c->feed_rows || pos[r] < 0) return STTS_ERR_INVALID_ARG;
    return embed_launch(c, cw(tw), (const int32_t *)from_row, pos, rows, scale, pad_idx, pos_round, out, c->d_feed);
}

const mt_backend_ops cuda_ops = {
    "cuda",        be_destroy,   be_weight_new, be_weight_gather, be_weight_read, be_weight_free,
    be_exec_new,   be_exec_free, be_alloc,      be_release,       be_upload,      be_download,
    be_parallel_for, be_linear,  be_layernorm,  be_attention,     be_embed,       be_scale_cols,
    be_copy,
    0, /* host_visible */
    be_select_topk, MTK_SELECT_MAX_K,
    be_step_begin, be_step_end,
    be_linear_scaled, be_ln_linear,
    be_copy_many,
    be_select_map, be_select_ahead, be_select_collect, be_embed_fed,
    be_cross_fold_prepare, be_cross_fold_attend, MTK_FOLD_MAX_S, FOLD_MAX_ROWS
};

} // namespace

extern "C" int mt_cuda_built(void) { return 1; }

extern "C" stts_status mt_cuda_probe(stts_error *err) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return stts_error_set(err, STTS_ERR_NOT_FOUND,
                              "no usable CUDA driver/device: %s (%s); use --device cpu, or install the NVIDIA "
                              "driver",
                              cudaGetErrorString(e), cudaGetErrorName(e));
    }
    if (n < 1) return stts_error_set(err, STTS_ERR_NOT_FOUND, "the CUDA driver reports no GPU; use --device cpu");
    cudaDeviceProp p;
    if ((e = cudaGetDeviceProperties(&p, 0)) != cudaSuccess) return dev_error(err, "CUDA device 0's properties", e);
    if (p.major != 9)
        return stts_error_set(err, STTS_ERR_UNSUPPORTED,
                              "CUDA device 0 (%s) has compute capability %d.%d; this build's kernels are for 9.0 "
                              "(Hopper): rebuild with CMAKE_CUDA_ARCHITECTURES for it, or use --device cpu",
                              p.name, p.major, p.minor);
    return STTS_OK;
}

/* The context reserves stack for every thread the GPU can hold: the default
 * 1 KB a thread is 277 MB on an H200 (132 SMs x 2048 threads), more than the
 * KV caches of 8 rows x 200 positions. Our kernels' frames are at most 48
 * bytes (cuobjdump --dump-resource-usage), and the driver grows the limit by
 * itself for a launch that needs more (cuCtxSetLimit), so ask for 256: 208
 * MB less (scripts/device/mem-check.sh measures it). STTS_CUDA_STACK=N
 * overrides. Called by whatever makes the context first (the backend, the
 * bandwidth probe), so that what bench_nllb calls the context is ours. */
static void context_limits(void) {
    const char *sl = getenv("STTS_CUDA_STACK");
    if (cudaDeviceSetLimit(cudaLimitStackSize, sl ? (size_t)atol(sl) : 256) != cudaSuccess) cudaGetLastError();
}

extern "C" stts_status mt_cuda_backend_new(int max_kv, mt_backend **out, stts_error *err) {
    *out = NULL;
    stts_status st = mt_cuda_probe(err);
    if (st) return st;
    cudaError_t e = cudaSetDevice(0);
    if (e != cudaSuccess) return dev_error(err, "cudaSetDevice(0)", e);
    cuda_backend *c = (cuda_backend *)calloc(1, sizeof *c);
    if (!c) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    c->base.ops = &cuda_ops;
    c->base.threads = 1;
    c->max_kv = max_kv;
    pthread_mutex_init(&c->lnf_lock, NULL);
    cudaDeviceProp p;
    cudaGetDeviceProperties(&p, 0);
    snprintf(c->base.desc, sizeof c->base.desc, "cuda %.40s", p.name);
    context_limits();
    const char *ah = getenv("STTS_CUDA_AHEAD"); /* 0: greedy waits for each step's choice (A/B runs) */
    c->base.greedy_ahead = !(ah && strcmp(ah, "0") == 0);
    c->base.prefill_ok = 1; /* rows that share a cache run in waves (attention_waves) */
    *out = &c->base;
    return STTS_OK;
}

extern "C" void mt_cuda_ln_fold_force(int mode) { g_lnf_force = mode < 0 ? -1 : mode != 0; }

extern "C" void mt_cuda_backend_set_bf16_activations(mt_backend *be, int on) {
    if (!be || be->ops != &cuda_ops) return;
    const char *e = getenv("STTS_CUDA_BF16_ACTIVATIONS");
    ((cuda_backend *)be)->act_bf16 = on && !(e && strcmp(e, "0") == 0);
}

extern "C" int mt_cuda_exec_program_ops(mt_exec *x) {
    if (!x || !x->be || x->be->ops != &cuda_ops) return 0;
    return cx(x)->prog_ops;
}

extern "C" void *mt_cuda_exec_stream(mt_exec *x) {
    if (!x || !x->be || x->be->ops != &cuda_ops) return NULL;
    return (void *)cx(x)->st;
}

extern "C" double mt_cuda_d2d_bandwidth(size_t bytes, int reps) {
    void *a = NULL, *b = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    double best = 0.0;
    context_limits();
    if (cudaMalloc(&a, bytes) == cudaSuccess && cudaMalloc(&b, bytes) == cudaSuccess &&
        cudaEventCreate(&e0) == cudaSuccess && cudaEventCreate(&e1) == cudaSuccess) {
        cudaMemset(a, 0x3c, bytes); /* not zeros: some paths are faster on zeros */
        cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
        for (int i = 0; i < reps; i++) {
            cudaEventRecord(e0);
            cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice);
            cudaEventRecord(e1);
            cudaEventSynchronize(e1);
            float ms = 0.0f;
            if (cudaEventElapsedTime(&ms, e0, e1) != cudaSuccess || ms <= 0.0f) continue;
            double gbs = 2.0 * (double)bytes / (ms * 1e6);
            if (gbs > best) best = gbs;
        }
    }
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    if (a) cudaFree(a);
    if (b) cudaFree(b);
    cudaGetLastError();
    return best;
}

extern "C" size_t mt_cuda_mem_used(void) {
    size_t fr = 0, tot = 0;
    if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return tot - fr;
}
