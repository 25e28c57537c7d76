/* cpu_backend.c - the CPU implementation of the engine's backend ops
 * (backend.h): a persistent thread pool, SIMD kernels picked at run time,
 * per-thread attention scratch sized once. Linear layers split the output
 * rows of W evenly over the threads (each thread streams its own slice of
 * the weights); attention splits (row, head) pairs; the small row-wise ops
 * (LayerNorm, embedding) run on the calling thread. */
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
#include "threadpool.h"

typedef struct {
    mt_backend base;
    mt_pool *pool;
    int level;
    int max_kv;
    float **scratch; /* per thread: max_kv attention scores */
} cpu_backend;

/* Below this many multiply-adds a call runs on the calling thread: waking
 * the pool costs more than the work (tiny test models, LayerNorm-sized ops). */
#define PAR_MIN_MACS 65536

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

static void cpu_copy(mt_backend *be, float *dst, const float *src, size_t n) {
    (void)be;
    if (dst != src && n) memmove(dst, src, n * sizeof(float));
}

static void cpu_destroy(mt_backend *be) {
    cpu_backend *c = (cpu_backend *)be;
    if (!c) return;
    mt_pool_free(c->pool);
    if (c->scratch)
        for (int i = 0; i < c->base.threads; i++) free(c->scratch[i]);
    free(c->scratch);
    free(c);
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

static void cpu_parallel_for(mt_backend *be, int n, void (*fn)(void *ctx, int i), void *ctx) {
    cpu_backend *c = (cpu_backend *)be;
    pfor_job j = {fn, ctx};
    mt_pool_run(c->pool, n, pfor_chunk, &j);
}

/* ---- linear ---- */
typedef struct {
    int level;
    const float *x, *W, *b;
    float *y;
    int M, K, N, flags, rows; /* rows of W per chunk */
} lin_job;

static void lin_chunk(void *arg, int chunk, int tid) {
    (void)tid;
    lin_job *j = arg;
    int n0 = chunk * j->rows, n1 = n0 + j->rows < j->N ? n0 + j->rows : j->N;
    mt_linear_rows(j->level, j->x, j->M, j->K, j->W, j->N, j->b, j->y, j->flags, n0, n1);
}

static void cpu_linear(mt_backend *be, const float *x, int M, int K, const float *W, int N, const float *b,
                       float *y, int flags) {
    cpu_backend *c = (cpu_backend *)be;
    if ((long long)M * K * N < PAR_MIN_MACS || c->base.threads == 1) {
        mt_linear_rows(c->level, x, M, K, W, N, b, y, flags, 0, N);
        return;
    }
    /* chunks of ~256 KB of W (a multiple of the kernels' 4-row block),
     * claimed dynamically by the threads */
    int rows = (int)((256 * 1024) / ((size_t)K * sizeof(float)));
    rows = rows < 4 ? 4 : rows / 4 * 4;
    lin_job j = {c->level, x, W, b, y, M, K, N, flags, rows};
    mt_pool_run(c->pool, (N + rows - 1) / rows, lin_chunk, &j);
}

/* ---- LayerNorm: mean and biased variance in double, as exact as f32 allows ---- */
static void cpu_layernorm(mt_backend *be, const float *x, int M, int D, const float *g, const float *b, float eps,
                          float *y) {
    (void)be;
    for (int m = 0; m < M; m++) {
        const float *xr = x + (size_t)m * D;
        float *yr = y + (size_t)m * D;
        double s = 0.0;
        for (int i = 0; i < D; i++) s += xr[i];
        double mean = s / D, v = 0.0;
        for (int i = 0; i < D; i++) {
            double d = xr[i] - mean;
            v += d * d;
        }
        float rstd = (float)(1.0 / sqrt(v / D + (double)eps));
        float mf = (float)mean;
        for (int i = 0; i < D; i++) yr[i] = (xr[i] - mf) * rstd * g[i] + b[i];
    }
}

/* ---- attention ---- */
typedef struct {
    cpu_backend *c;
    const mt_attn_args *a;
} attn_job;

static void attn_one(cpu_backend *c, const mt_attn_args *a, int task, float *sc) {
    int r = task / a->heads, h = task % a->heads, hd = a->head_dim;
    const float *q = a->q + (size_t)r * a->q_stride + (size_t)h * hd;
    const float *k = a->k[r] + (size_t)h * hd, *v = a->v[r] + (size_t)h * hd;
    int n = a->kv_len[r];
    float mx = -INFINITY;
    for (int j = 0; j < n; j++) {
        sc[j] = mt_dot(c->level, q, k + (size_t)j * a->kv_stride, hd);
        if (sc[j] > mx) mx = sc[j];
    }
    double sum = 0.0;
    for (int j = 0; j < n; j++) {
        sc[j] = expf(sc[j] - mx);
        sum += sc[j];
    }
    float inv = (float)(1.0 / sum);
    float *o = a->out + (size_t)r * a->out_stride + (size_t)h * hd;
    memset(o, 0, (size_t)hd * sizeof(float));
    /* softmax first, then the weighted sum (torch: softmax, then bmm). */
    for (int j = 0; j < n; j++) mt_axpy(c->level, sc[j] * inv, v + (size_t)j * a->kv_stride, o, hd);
}

static void attn_chunk(void *arg, int chunk, int tid) {
    attn_job *j = arg;
    attn_one(j->c, j->a, chunk, j->c->scratch[tid]);
}

static void cpu_attention(mt_backend *be, const mt_attn_args *a) {
    cpu_backend *c = (cpu_backend *)be;
    attn_job j = {c, a};
    int tasks = a->rows * a->heads;
    long long work = 0;
    for (int r = 0; r < a->rows; r++) work += a->kv_len[r];
    work *= (long long)a->heads * a->head_dim * 2;
    if (work < PAR_MIN_MACS || c->base.threads == 1) {
        for (int t = 0; t < tasks; t++) attn_one(c, a, t, c->scratch[0]);
        return;
    }
    mt_pool_run(c->pool, tasks, attn_chunk, &j);
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

static void cpu_embed(mt_backend *be, const float *table, int D, const int32_t *ids, const int *pos, int rows,
                      float scale, int pad_idx, int pos_round, float *out) {
    (void)be;
    int half = D / 2;
    float negc = (float)(-(log(10000.0) / (double)(half - 1)));
    for (int r = 0; r < rows; r++) {
        const float *e = table + (size_t)ids[r] * D;
        float *o = out + (size_t)r * D;
        for (int i = 0; i < D; i++) o[i] = e[i] * scale;
        if (pos[r] == pad_idx) continue; /* the padding row of the table is zero */
        float p = (float)pos[r];
        for (int i = 0; i < half; i++) {
            float f = expf((float)i * negc);
            float ang = p * f;
            o[i] += pos_value(sinf(ang), pos_round);
            o[half + i] += pos_value(cosf(ang), pos_round);
        }
        /* odd D: the last column is a zero pad */
    }
}

static void cpu_scale_cols(mt_backend *be, float *x, int rows, int D, int stride, float s) {
    (void)be;
    for (int r = 0; r < rows; r++) {
        float *xr = x + (size_t)r * stride;
        for (int i = 0; i < D; i++) xr[i] *= s;
    }
}

static void cpu_upload(mt_backend *be, float *dst, const float *src, size_t n) { cpu_copy(be, dst, src, n); }

static const mt_backend_ops cpu_ops = {
    .name = "cpu",
    .destroy = cpu_destroy,
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
};

stts_status mt_cpu_backend_new(int threads, int simd, int max_kv, mt_backend **out, stts_error *err) {
    *out = NULL;
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    if (threads > 256) return stts_error_set(err, STTS_ERR_INVALID_ARG, "threads %d is out of range (1..256)", threads);
    if (max_kv < 1) max_kv = 1;
    cpu_backend *c = calloc(1, sizeof *c);
    if (!c) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory creating the CPU backend");
    c->base.ops = &cpu_ops;
    c->base.threads = threads;
    /* simd: 0 auto, 1 scalar, 2 avx2, 3 avx512 (the nllb_simd values) */
    c->level = mt_kernels_pick(simd);
    c->max_kv = max_kv;
    c->scratch = calloc((size_t)threads, sizeof *c->scratch);
    if (!c->scratch) goto nomem;
    for (int i = 0; i < threads; i++)
        if (!(c->scratch[i] = malloc((size_t)max_kv * sizeof(float)))) goto nomem;
    c->pool = mt_pool_new(threads);
    if (!c->pool) goto nomem;
    snprintf(c->base.desc, sizeof c->base.desc, "cpu %s x%d", mt_kernels_name(c->level), threads);
    *out = &c->base;
    return STTS_OK;
nomem:
    cpu_destroy(&c->base);
    return stts_error_set(err, STTS_ERR_NOMEM, "out of memory or threads creating the CPU backend (%d threads)",
                          threads);
}
