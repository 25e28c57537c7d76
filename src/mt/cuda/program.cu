/* program.cu - a decode step's ops in one persistent, cooperative kernel
 * (see program.h for why).
 *
 * Shape of a launch: one or two blocks of PROG_THREADS per SM (a
 * cooperative launch, so all are resident and may wait for each other; the
 * launch fails rather than deadlocks when they do not fit). Op i runs on
 * every block at once, each taking its share (GEMV: weight tiles b, b + G,
 * ...; attention: (head, row) items, two per block; rows for embedding and
 * LayerNorm), then all blocks meet at a grid barrier (a counter in global
 * memory) before op i + 1 reads what op i wrote.
 *
 * Weight stream: the GEMV tiles a block will compute, in program order, are
 * one stream per block. Each tile (8 / S rows, a contiguous piece of the
 * matrix, <= 16 KB) is copied with cp.async into the next free slot of a
 * shared-memory ring as soon as a slot is free, whichever op it belongs
 * to: while a block finishes op i and waits at the barrier, its tiles of
 * ops i + 1, i + 2, ... are already in flight, so the barriers and the
 * small ops (attention, LayerNorm) overlap the DRAM stream. Weights are
 * immutable, so reading them early is always safe.
 *
 * Coherence: blocks read what other SMs wrote in this same launch, and L1
 * is not coherent between SMs, so activations, caches and arena data are
 * read with ld.global.cg (__ldcg, L2) and the barrier fences. Only weights,
 * scales, biases, LayerNorm parameters and the op list use cached loads.
 *
 * Measured on the H200 (docs/PERFORMANCE.md): bit-identical to the kernels,
 * but slower (bf16 greedy 0.97 ms a step against 0.68): with 8-16 warps an
 * SM every op is a chain of latencies (barrier ~1.2 us, input staging
 * from L2 ~1.4 us, each tile's dot products ~2.5 us), so it is off by
 * default (STTS_CUDA_PROGRAM=1 turns it on). */
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "device_common.cuh"
#include "program.h"

#define PROG_THREADS 256
#define PROG_MAX_SLOTS 8
#define PROG_ATT_THREADS 128 /* one attention item per half block: the layout of attention_kernel */
/* A ring slot: the weight tile, then its rows' biases and int8 scales (8
 * floats each), fetched with it: read after the dot products, they would
 * add a DRAM round trip to every tile. */
#define SLOT_BYTES (GEMV_TILE_BYTES + 64)

static_assert(sizeof(mtk_prog_op) % 4 == 0, "the op list is copied to shared memory in 4-byte words");

struct mtk_program {
    mtk_prog_op *d_ops;
    unsigned *d_sync; /* [0]: barrier arrivals, [1]: blocks done (the last one resets both) */
    int n, blocks, slots;
    size_t smem;
    unsigned long long *d_prof; /* STTS_CUDA_PROGRAM_PROFILE=1: [3n + 1] cycles per op (mtk_program_profile) */
    size_t ops_at; /* the op list's offset in dynamic shared memory */
    void (*kernel)(const mtk_prog_op *, int, unsigned *, int, unsigned long long *, unsigned);
};

/* ---------------- grid barrier ---------------- */

/* Every block arrives once per barrier; the k-th barrier of a launch
 * releases when the counter reaches k * G. The fences make the block's
 * writes visible before its arrival and order the reads after it. */
__device__ __forceinline__ void grid_barrier(unsigned *count, unsigned target) {
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        atomicAdd(count, 1u);
        unsigned v;
        do {
            asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(count) : "memory");
        } while (v < target);
        __threadfence();
    }
    __syncthreads();
}

/* ---------------- the weight stream ---------------- */

__device__ __forceinline__ void cp_async_commit(void) { asm volatile("cp.async.commit_group;" ::: "memory"); }
__device__ __forceinline__ void cp_async4(void *smem, const void *gmem) {
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(s), "l"(gmem) : "memory");
}

/* The block's position in its weight stream; every thread holds the same
 * values (the stream is a function of the op list and the block index). */
struct wstream {
    int op, t;        /* next tile to issue: op index (n: none left), tile index */
    int issued, used; /* tiles issued to the ring, tiles computed */
};

__device__ __forceinline__ void ws_next_op(wstream &ws, const mtk_prog_op *ops, int n, int from) {
    const int b = (int)blockIdx.x;
    for (ws.op = from; ws.op < n; ws.op++)
        if (ops[ws.op].kind == MTK_OP_GEMV && b < ops[ws.op].u.gemv.tiles) {
            ws.t = b;
            return;
        }
}

/* Copies the block's next tiles into free ring slots, one cp.async group
 * per tile (empty groups for threads with nothing to copy keep every
 * thread's group count equal). */
template <typename WL>
__device__ __forceinline__ void ws_fill(wstream &ws, const mtk_prog_op *ops, int n, unsigned char *ring, int slots) {
    while (ws.op < n && ws.issued - ws.used < slots) {
        const mtk_gemv_op &g = ops[ws.op].u.gemv;
        const size_t row_bytes = (size_t)g.K * WL::ELEM_BYTES;
        const int rb = 8 / g.split, n0 = ws.t * rb, rows = g.N - n0 < rb ? g.N - n0 : rb;
        const size_t bytes = (size_t)rows * row_bytes; /* a multiple of 16: mtk_program_accepts */
        const unsigned char *src = (const unsigned char *)g.W + (size_t)n0 * row_bytes;
        unsigned char *dst = ring + (size_t)(ws.issued % slots) * SLOT_BYTES;
        for (size_t o = threadIdx.x * 16; o < bytes; o += PROG_THREADS * 16) cp_async16(dst + o, src + o);
        const int tx = (int)threadIdx.x;
        if (g.b && tx < rows) cp_async4(dst + GEMV_TILE_BYTES + 4 * tx, g.b + n0 + tx);
        if (g.scales && tx >= 8 && tx < 8 + rows) cp_async4(dst + GEMV_TILE_BYTES + 4 * tx, g.scales + n0 + tx - 8);
        cp_async_commit();
        ws.issued++;
        ws.t += (int)gridDim.x;
        if (ws.t >= g.tiles) ws_next_op(ws, ops, n, ws.op + 1);
    }
}

/* ---------------- ops ---------------- */

/* GEMV (gemv_kernel's arithmetic): the block stages the input rows in
 * shared memory once (normalized there for the LayerNorm prologue), then
 * computes each of its tiles from the ring. */
template <typename WL, int R>
__device__ void op_gemv(const mtk_prog_op *ops, int n, int i, wstream &ws, unsigned char *ring, int slots,
                        float *xs, bool timer, long long &t_staged) {
    __shared__ float part[8][R];
    __shared__ double ln_sh[R * 16]; /* ln_rows: [2R][8] */
    const mtk_gemv_op &g = ops[i].u.gemv;
    const int b = (int)blockIdx.x, m = ops[i].rows, K = g.K, N = g.N, S = g.split, rb = 8 / S;
    if (b >= g.tiles) return;
    const int k4 = K / 4;
    for (int e = threadIdx.x; e < R * k4; e += PROG_THREADS) {
        int r = e / k4;
        ((float4 *)xs)[e] = r < m ? __ldcg((const float4 *)g.x + e) : make_float4(0.f, 0.f, 0.f, 0.f);
    }
    if (g.ln_g) {
        __syncthreads();
        ln_rows<R>(xs, m, K, g.ln_g, g.ln_b, g.ln_eps, ln_sh, g.ln_out, b == 0, false);
    }
    const int wib = (int)(threadIdx.x / WARP), lane = (int)(threadIdx.x % WARP), split = wib % S;
    const size_t row_bytes = (size_t)K * WL::ELEM_BYTES;
    if (timer) {
        __syncthreads();
        t_staged = clock64();
    }
    for (int t = b; t < g.tiles; t += (int)gridDim.x) {
        cp_async_wait_pending(ws.issued - ws.used - 1);
        __syncthreads(); /* the tile (every thread's part of it) and the rows */
        const unsigned char *tile = ring + (size_t)(ws.used % slots) * SLOT_BYTES;
        const int col = t * rb + wib / S;
        const bool writer = col < N && split == 0 && lane == 0;
        float acc[R], yo[R];
#pragma unroll
        for (int r = 0; r < R; r++) { /* the residual's loads in flight during the dot products */
            acc[r] = 0.0f;
            yo[r] = writer && r < m && (g.flags & MTK_ACCUM) ? __ldcg(g.y + (size_t)r * N + col) : 0.0f;
        }
        if (col < N) gemv_dot<WL, R>(tile + (size_t)(wib / S) * row_bytes, xs, K, S, split, lane, acc);
        if (S > 1) {
            if (lane == 0)
#pragma unroll
                for (int r = 0; r < R; r++) part[wib][r] = acc[r];
            __syncthreads();
            if (split == 0)
#pragma unroll
                for (int r = 0; r < R; r++) {
                    float s = part[wib][r];
                    for (int q = 1; q < S; q++) s += part[wib + q][r];
                    acc[r] = s;
                }
        }
        if (writer) {
            const float *extra = (const float *)(tile + GEMV_TILE_BYTES);
            const float sc = g.scales ? extra[8 + wib / S] : 1.0f, bias = g.b ? extra[wib / S] : 0.0f;
#pragma unroll
            for (int r = 0; r < R; r++) {
                if (r >= m) break;
                float v = gemv_out(acc[r], sc, bias, g.flags, col, g.qcols, g.qs);
                g.y[(size_t)r * N + col] = (g.flags & MTK_ACCUM) ? yo[r] + v : v;
            }
        }
        __syncthreads(); /* the slot and part[] free again */
        ws.used++;
        ws_fill<WL>(ws, ops, n, ring, slots);
    }
}

/* Reductions over one half block (PROG_ATT_THREADS threads, named barrier
 * id): block_max / block_sum's order for a 128-thread block. */
__device__ __forceinline__ void half_sync(int id) {
    asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(PROG_ATT_THREADS) : "memory");
}
__device__ __forceinline__ float half_max(float v, float *sh, int id) {
    const int t = (int)threadIdx.x % PROG_ATT_THREADS, lane = t % WARP, w = t / WARP;
    for (int o = WARP / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    half_sync(id);
    if (lane == 0) sh[w] = v;
    half_sync(id);
    float r = -INFINITY;
    for (int q = 0; q < PROG_ATT_THREADS / WARP; q++) r = fmaxf(r, sh[q]);
    return r;
}
__device__ __forceinline__ double half_sum(double v, double *sh, int id) {
    const int t = (int)threadIdx.x % PROG_ATT_THREADS, lane = t % WARP, w = t / WARP;
    for (int o = WARP / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    half_sync(id);
    if (lane == 0) sh[w] = v;
    half_sync(id);
    double r = 0;
    for (int q = 0; q < PROG_ATT_THREADS / WARP; q++) r += sh[q];
    return r;
}

/* Attention (attention_kernel's arithmetic and thread layout): items
 * (head, row), two per block at a time, one per half. */
__device__ void op_attn(const mtk_prog_op *op, float *sm) {
    __shared__ float red[2][32];
    __shared__ double redd[2][32];
    const mtk_attn_op &a = op->u.attn;
    const int half = (int)threadIdx.x / PROG_ATT_THREADS, tid = (int)threadIdx.x % PROG_ATT_THREADS;
    const int hd = a.head_dim, items = a.heads * op->rows, bar = 1 + half;
    float *sc = sm + (size_t)half * (a.max_kv + hd + PROG_ATT_THREADS), *qs = sc + a.max_kv, *part = qs + hd;
    for (int it = 2 * (int)blockIdx.x + half; it < items; it += 2 * (int)gridDim.x) {
        const int h = it % a.heads, r = it / a.heads;
        const int n = __ldcg(a.kv_len + r);
        const float *k = (const float *)__ldcg((const unsigned long long *)(a.k + r)) + (size_t)h * hd;
        const float *v = (const float *)__ldcg((const unsigned long long *)(a.v + r)) + (size_t)h * hd;
        if (a.nkv.k) { /* this step's key and value into the caches (attention_kernel's new_k) */
            size_t src = (size_t)r * a.nkv.stride + (size_t)h * hd, dst = (size_t)(n - 1) * a.kv_stride;
            for (int i = tid; i < hd; i += PROG_ATT_THREADS) {
                ((float *)k)[dst + i] = __ldcg(a.nkv.k + src + i);
                ((float *)v)[dst + i] = __ldcg(a.nkv.v + src + i);
            }
        }
        const float *qr = a.q + (size_t)r * a.q_stride + (size_t)h * hd;
        for (int i = tid; i < hd; i += PROG_ATT_THREADS) qs[i] = __ldcg(qr + i);
        half_sync(bar);
        const bool vec = ((hd | a.kv_stride) & 3) == 0 && ((uintptr_t)k & 15) == 0;
        for (int j = tid; j < n; j += PROG_ATT_THREADS) {
            const float *kj = k + (size_t)j * a.kv_stride;
            float d = 0.0f;
            if (vec) {
#pragma unroll 4
                for (int i = 0; i < hd; i += 4) {
                    float4 kv = __ldcg((const float4 *)(kj + i));
                    d = fmaf(qs[i], kv.x, d);
                    d = fmaf(qs[i + 1], kv.y, d);
                    d = fmaf(qs[i + 2], kv.z, d);
                    d = fmaf(qs[i + 3], kv.w, d);
                }
            } else {
                for (int i = 0; i < hd; i++) d = fmaf(qs[i], __ldcg(kj + i), d);
            }
            sc[j] = d;
        }
        half_sync(bar);
        float mx = -INFINITY;
        for (int j = tid; j < n; j += PROG_ATT_THREADS) mx = fmaxf(mx, sc[j]);
        mx = half_max(mx, red[half], bar);
        double sum = 0.0;
        for (int j = tid; j < n; j += PROG_ATT_THREADS) {
            float e = expf(sc[j] - mx);
            sc[j] = e;
            sum += e;
        }
        sum = half_sum(sum, redd[half], bar);
        const float inv = (float)(1.0 / sum);
        const int G = PROG_ATT_THREADS / hd, i = tid % hd, grp = tid / hd;
        float o = 0.0f;
        if (grp < G) {
#pragma unroll 4
            for (int j = grp; j < n; j += G) o = fmaf(sc[j] * inv, __ldcg(v + (size_t)j * a.kv_stride + i), o);
        }
        part[tid] = o;
        half_sync(bar);
        if (grp == 0) {
            float t = part[i];
            for (int u = 1; u < G; u++) t += part[u * hd + i];
            a.out[(size_t)r * a.out_stride + (size_t)h * hd + i] = t;
        }
        half_sync(bar); /* sc, qs, part free for the next item */
    }
}

/* Embedding (embed_kernel's arithmetic): one row per block. */
__device__ void op_embed(const mtk_prog_op *op) {
    const mtk_embed_op &e = op->u.embed;
    for (int r = (int)blockIdx.x; r < op->rows; r += (int)gridDim.x) {
        const int p = __ldcg(e.pos + r);
        const size_t id = (size_t)__ldcg(e.ids + r);
        const float *pt = p == e.pad_idx ? NULL : e.pos_table + (size_t)p * e.D;
        float *o = e.out + (size_t)r * e.D;
        for (int i = threadIdx.x; i < e.D; i += PROG_THREADS) {
            float v = __fmul_rn(table_elem(e.table, e.fmt, e.tscales, id, e.D, i), e.scale);
            if (pt) v = __fadd_rn(v, pt[i]);
            o[i] = v;
        }
    }
}

/* LayerNorm (layernorm_reg_kernel's arithmetic): one row per block. */
__device__ void op_ln(const mtk_prog_op *op) {
    __shared__ double sh[32];
    const mtk_ln_op &l = op->u.ln;
    for (int r = (int)blockIdx.x; r < op->rows; r += (int)gridDim.x)
        ln_reg_row(l.x + (size_t)r * l.D, l.D, l.g, l.b, l.eps, l.y + (size_t)r * l.D, sh, false);
}

__device__ void op_copy(const mtk_prog_op *op) {
    const mtk_copy_op &c = op->u.copy;
    const size_t total = (size_t)c.count * c.n;
    for (size_t e = (size_t)blockIdx.x * PROG_THREADS + threadIdx.x; e < total; e += (size_t)gridDim.x * PROG_THREADS) {
        const size_t q = e / c.n, i = e % c.n;
        float *d = (float *)__ldcg((const unsigned long long *)(c.pairs + 2 * q));
        const float *s = (const float *)__ldcg((const unsigned long long *)(c.pairs + 2 * q + 1));
        d[i] = __ldcg(s + i);
    }
}

/* ---------------- the kernel ---------------- */

/* Dynamic shared memory: the ring (slots x SLOT_BYTES), then one
 * region shared by the ops in turn (a GEMV's input rows, the attention's
 * scores). */
template <typename WL, int R>
__global__ void __launch_bounds__(PROG_THREADS, 2)
    program_kernel(const mtk_prog_op *gops, int n, unsigned *sync, int slots, unsigned long long *prof,
                   unsigned region_bytes) {
    extern __shared__ __align__(16) unsigned char psm[];
    unsigned char *ring = psm;
    float *region = (float *)(psm + (size_t)slots * SLOT_BYTES);
    /* the op list in shared memory (its last bytes): every field read on
     * the ops' paths is then a shared load, not an L2 round trip queued
     * behind the weight stream */
    mtk_prog_op *ops = (mtk_prog_op *)(psm + region_bytes);
    for (size_t w = threadIdx.x; w < (size_t)n * sizeof(mtk_prog_op) / 4; w += PROG_THREADS)
        ((uint32_t *)ops)[w] = ((const uint32_t *)gops)[w];
    __syncthreads();
    wstream ws;
    ws.issued = ws.used = 0, ws.t = 0;
    ws_next_op(ws, ops, n, 0);
    ws_fill<WL>(ws, ops, n, ring, slots);
    /* profile: block 0's view, op i = from passing barrier i to passing
     * barrier i + 1 (its slowest block and the barrier) */
    const bool timer = prof && blockIdx.x == 0, t0 = timer && threadIdx.x == 0;
    long long t_prev = timer ? clock64() : 0, t_staged = 0, t_done = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0) {
            if (t0) t_done = clock64();
            grid_barrier(sync, (unsigned)i * gridDim.x);
            if (t0) { /* [i]: the op, [n + 1 + i]: its staging, [2n + 1 + i]: its wait at the barrier */
                long long t = clock64();
                prof[i - 1] += (unsigned long long)(t - t_prev);
                if (t_staged) prof[n + i] += (unsigned long long)(t_staged - t_prev);
                prof[2 * n + i] += (unsigned long long)(t - t_done);
                t_prev = t, t_staged = 0;
            }
        }
        if (i == n - 1) pdl_launch_dependents(); /* the search's kernels may start to launch */
        switch (ops[i].kind) {
        case MTK_OP_GEMV: op_gemv<WL, R>(ops, n, i, ws, ring, slots, region, timer, t_staged); break;
        case MTK_OP_ATTN: op_attn(&ops[i], region); break;
        case MTK_OP_EMBED: op_embed(&ops[i]); break;
        case MTK_OP_LN: op_ln(&ops[i]); break;
        case MTK_OP_COPY: op_copy(&ops[i]); break;
        }
    }
    /* the last block out resets the counters for the next launch (every
     * block has passed every barrier once it counts itself out) */
    __syncthreads();
    if (t0) prof[n - 1] += (unsigned long long)(clock64() - t_prev), prof[n] += 1;
    if (threadIdx.x == 0) {
        __threadfence();
        if (atomicAdd(sync + 1, 1u) == gridDim.x - 1) {
            sync[0] = 0;
            sync[1] = 0;
            __threadfence();
        }
    }
}

/* ---------------- host ---------------- */

static size_t wsize(int wfmt) { return wfmt == MTK_W_F32 ? 4 : wfmt == MTK_W_I8 ? 1 : 2; }

static int device_ok(void) {
    static int ok = -1;
    if (ok < 0) {
        int dev = 0, coop = 0, major = 0;
        ok = cudaGetDevice(&dev) == cudaSuccess &&
             cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev) == cudaSuccess &&
             cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess && coop &&
             major >= 9;
    }
    return ok;
}

/* The GEMV split (gemv_split's rule): the fewest warps per row that keep
 * 8 / S rows within one tile; 0 when one row is longer than a tile. */
static int split_of(size_t row_bytes) {
    for (int S = 1; S <= 8; S *= 2)
        if (row_bytes * (size_t)(8 / S) <= GEMV_TILE_BYTES) return S;
    return 0;
}

extern "C" int mtk_program_accepts(const mtk_prog_op *op, int wfmt) {
    if (!device_ok() || op->rows < 1) return 0;
    switch (op->kind) {
    case MTK_OP_GEMV: {
        const mtk_gemv_op &g = op->u.gemv;
        size_t row = (size_t)g.K * wsize(wfmt);
        return op->rows <= MTK_GEMV_MAX_ROWS && g.K > 0 && g.K % 8 == 0 && g.N > 0 && row % 16 == 0 &&
               split_of(row) > 0 && split_of(row) == mtk_gemv_split(g.K, wfmt) && ((uintptr_t)g.W & 15) == 0 && ((uintptr_t)g.x & 15) == 0 &&
               (!g.ln_g || g.K <= GEMV_THREADS * GEMV_LN_J) && !(g.qcols > 0 && (g.flags & MTK_ACCUM)) &&
               (g.scales != NULL) == (wfmt == MTK_W_I8);
    }
    case MTK_OP_ATTN:
        return op->u.attn.head_dim > 0 && op->u.attn.head_dim <= PROG_ATT_THREADS && op->u.attn.max_kv > 0 &&
               op->u.attn.heads > 0;
    case MTK_OP_EMBED: return op->u.embed.D > 0;
    case MTK_OP_LN: return op->u.ln.D > 0 && op->u.ln.D <= 256 * LN_REG;
    case MTK_OP_COPY: return op->u.copy.count > 0 && op->u.copy.n > 0;
    }
    return 0;
}

typedef void (*prog_fn)(const mtk_prog_op *, int, unsigned *, int, unsigned long long *, unsigned);

static prog_fn pick(int wfmt, int R) {
#define ROWS(WL)                                                                                                   \
    return R <= 1 ? program_kernel<WL, 1> : R <= 2 ? program_kernel<WL, 2> : R <= 4 ? program_kernel<WL, 4>       \
                                                                                    : program_kernel<WL, 8>
    switch (wfmt) {
    case MTK_W_F32: ROWS(wf32);
    case MTK_W_BF16: ROWS(wbf16);
    case MTK_W_F16: ROWS(wf16);
    default: ROWS(wi8);
    }
#undef ROWS
}

extern "C" int mtk_program_new(const mtk_prog_op *ops, int n, int wfmt, mtk_program **out) {
    *out = NULL;
    if (n < 1) return (int)cudaErrorInvalidValue;
    mtk_prog_op *h = (mtk_prog_op *)malloc((size_t)n * sizeof *h);
    if (!h) return (int)cudaErrorMemoryAllocation;
    memcpy(h, ops, (size_t)n * sizeof *h);
    /* the shared region: the largest GEMV input (R rows of K) or attention
     * scratch (two halves of scores, query and partial outputs) */
    int R = 1, maxrows = 1;
    size_t region = 0;
    for (int i = 0; i < n; i++) {
        if (!mtk_program_accepts(&h[i], wfmt)) {
            free(h);
            return (int)cudaErrorInvalidValue;
        }
        if (h[i].kind == MTK_OP_GEMV) maxrows = h[i].rows > maxrows ? h[i].rows : maxrows;
    }
    while (R < maxrows) R *= 2;
    for (int i = 0; i < n; i++) {
        size_t need = 0;
        if (h[i].kind == MTK_OP_GEMV) {
            mtk_gemv_op &g = h[i].u.gemv;
            g.split = split_of((size_t)g.K * wsize(wfmt));
            int rb = 8 / g.split;
            g.tiles = (g.N + rb - 1) / rb;
            need = (size_t)R * g.K * sizeof(float);
        } else if (h[i].kind == MTK_OP_ATTN) {
            need = 2 * ((size_t)h[i].u.attn.max_kv + h[i].u.attn.head_dim + PROG_ATT_THREADS) * sizeof(float);
        }
        region = need > region ? need : region;
    }
    region = (region + 15) & ~(size_t)15;
    int dev = 0, sms = 0, optin = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (!e) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    if (!e) e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
    /* blocks per SM (STTS_CUDA_PROGRAM_BPS=1 or 2, default 2: on the H200
     * two blocks of 8 warps streamed the LM head 1.4x faster than one, the
     * layers' ops about as fast), then as many ring slots as fit beside the
     * region, the op list and the static arrays */
    const char *be = getenv("STTS_CUDA_PROGRAM_BPS");
    int bps = be && atoi(be) >= 1 && atoi(be) <= 2 ? atoi(be) : 2;
    const size_t statics = 4096, op_bytes = ((size_t)n * sizeof *h + 15) & ~(size_t)15;
    long room = (long)(optin / bps) - (long)region - (long)op_bytes - (long)statics;
    if (room < (long)SLOT_BYTES && bps > 1) { /* 8 rows of 4096: one block per SM */
        bps = 1;
        room = (long)optin - (long)region - (long)op_bytes - (long)statics;
    }
    int slots = room > 0 ? (int)(room / SLOT_BYTES) : 0;
    if (slots > PROG_MAX_SLOTS) slots = PROG_MAX_SLOTS;
    const char *se = getenv("STTS_CUDA_PROGRAM_SLOTS"); /* experiments: fewer ring slots */
    if (se && atoi(se) >= 1 && atoi(se) < slots) slots = atoi(se);
    if (!e && slots < 1) e = cudaErrorInvalidValue;
    mtk_program *p = NULL;
    if (!e) {
        p = (mtk_program *)calloc(1, sizeof *p);
        if (!p) e = cudaErrorMemoryAllocation;
    }
    if (!e) {
        p->n = n, p->slots = slots, p->ops_at = (size_t)slots * SLOT_BYTES + region;
        p->smem = p->ops_at + op_bytes;
        p->kernel = pick(wfmt, R);
        e = cudaFuncSetAttribute(p->kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)p->smem);
    }
    int per_sm = 0;
    if (!e) e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, p->kernel, PROG_THREADS, p->smem);
    if (!e && per_sm < bps) e = cudaErrorInvalidConfiguration;
    if (!e) {
        p->blocks = sms * bps;
        e = cudaMalloc((void **)&p->d_ops, (size_t)n * sizeof *h);
    }
    if (!e) e = cudaMalloc((void **)&p->d_sync, 2 * sizeof(unsigned));
    if (!e) e = cudaMemset(p->d_sync, 0, 2 * sizeof(unsigned));
    const char *pe = getenv("STTS_CUDA_PROGRAM_PROFILE");
    if (!e && pe && strcmp(pe, "1") == 0) {
        e = cudaMalloc((void **)&p->d_prof, (3 * (size_t)n + 1) * sizeof(unsigned long long));
        if (!e) e = cudaMemset(p->d_prof, 0, (3 * (size_t)n + 1) * sizeof(unsigned long long));
    }
    if (!e) e = cudaMemcpy(p->d_ops, h, (size_t)n * sizeof *h, cudaMemcpyHostToDevice);
    free(h);
    if (e) {
        mtk_program_free(p);
        cudaGetLastError();
        return (int)e;
    }
    *out = p;
    return 0;
}

extern "C" int mtk_program_launch(void *stream, const mtk_program *p) {
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute at[1];
    cfg.gridDim = dim3((unsigned)p->blocks), cfg.blockDim = dim3(PROG_THREADS), cfg.dynamicSmemBytes = p->smem;
    cfg.stream = (cudaStream_t)stream;
    at[0].id = cudaLaunchAttributeCooperative; /* all blocks resident: the barriers need it */
    at[0].val.cooperative = 1;
    cfg.attrs = at, cfg.numAttrs = 1;
    return (int)cudaLaunchKernelEx(&cfg, p->kernel, (const mtk_prog_op *)p->d_ops, p->n, p->d_sync,
                                   p->slots, p->d_prof, (unsigned)p->ops_at);
}

extern "C" void mtk_program_free(mtk_program *p) {
    if (!p) return;
    if (p->d_ops) cudaFree(p->d_ops);
    if (p->d_sync) cudaFree(p->d_sync);
    if (p->d_prof) cudaFree(p->d_prof);
    free(p);
}

extern "C" void mtk_program_shape(const mtk_program *p, int *blocks, int *slots, size_t *smem) {
    if (blocks) *blocks = p->blocks;
    if (slots) *slots = p->slots;
    if (smem) *smem = p->smem;
}

extern "C" int mtk_program_profile(const mtk_program *p, double *us) {
    if (!p->d_prof) return 0;
    const size_t n = (size_t)p->n, cnt = 3 * n + 1;
    unsigned long long *h = (unsigned long long *)malloc(cnt * sizeof *h);
    int dev = 0, khz = 0;
    if (!h || cudaMemcpy(h, p->d_prof, cnt * sizeof *h, cudaMemcpyDeviceToHost) != cudaSuccess ||
        cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, dev) != cudaSuccess ||
        h[n] == 0 || khz <= 0) {
        free(h);
        return 0;
    }
    int launches = (int)h[n];
    for (size_t i = 0; i < n; i++) {
        double d = (double)launches * (khz / 1000.0);
        us[3 * i] = (double)h[i] / d, us[3 * i + 1] = (double)h[n + 1 + i] / d, us[3 * i + 2] = (double)h[2 * n + 1 + i] / d;
    }
    free(h);
    return launches;
}
