/* kernels.cu - the CUDA kernels of the NLLB engine (see kernels.h): weight-
 * streaming GEMV for 1-8 rows in f32/bf16/f16/int8, LayerNorm, attention over
 * device K/V, embedding + precomputed sinusoids, the search's selection,
 * argmax and top-k.
 *
 * Decoding at batch 1-8 reads every weight once per step in ~110 dependent
 * kernels of a few microseconds, so latency, not bandwidth, sets the pace:
 * every kernel is launched to start while its predecessor runs (programmatic
 * dependent launch, below) and fetches what does not depend on it (the
 * GEMV's weight tile, the attention's old keys and values) before it waits.
 * Arithmetic is f32 with products and sums written as separate roundings
 * where the CPU backend does so (no FMA contraction in LayerNorm, embedding),
 * so the f32 path follows the CPU engine closely. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <float.h>
#include <mma.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "device_common.cuh"

static void ktrace_note_launch(const void *kernel);
static int gemv_xb_on(void);

/* The engine's A/B switches (STTS_CUDA_*, docs/ENGINE.md), each read once on
 * first use: env_flag is on unless the variable starts with '0' (or off
 * unless set to a non-'0' value, with dflt 0); env_int is its number. */
static int env_flag(const char *name, int dflt) {
    const char *e = getenv(name);
    return e && e[0] ? e[0] != '0' : dflt;
}
static int env_int(const char *name, int dflt) {
    const char *e = getenv(name);
    return e ? atoi(e) : dflt;
}
static __constant__ int g_gemv_xb; /* gemv_x_bf16 on (STTS_CUDA_XB), set with the others below */

static int pdl_enabled(void) {
    static int on = -1;
    if (on < 0) {
        on = env_flag("STTS_CUDA_PDL", 1);
        /* where kernels trigger their successors (device_common.cuh) */
        int late = !env_flag("STTS_CUDA_PDL_EARLY", 0);
        if (cudaMemcpyToSymbol(g_pdl_late, &late, sizeof late) != cudaSuccess) cudaGetLastError();
        int onepass = !env_flag("STTS_CUDA_LN_TWOPASS", 0);
        if (cudaMemcpyToSymbol(g_ln_onepass, &onepass, sizeof onepass) != cudaSuccess) cudaGetLastError();
        int xb = gemv_xb_on();
        if (cudaMemcpyToSymbol(g_gemv_xb, &xb, sizeof xb) != cudaSuccess) cudaGetLastError();
    }
    return on;
}

/* The first launch error since launch_status() last ran (a failed
 * cudaLaunchKernelEx is reported here as well as by cudaGetLastError). */
static thread_local cudaError_t launch_err = cudaSuccess;

template <typename... P, typename... A>
static void launch(cudaStream_t st, dim3 grid, dim3 block, size_t smem, void (*kernel)(P...), A... args) {
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute at[1];
    cfg.gridDim = grid, cfg.blockDim = block, cfg.dynamicSmemBytes = smem, cfg.stream = st;
    if (pdl_enabled()) {
        at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        at[0].val.programmaticStreamSerializationAllowed = 1;
        cfg.attrs = at, cfg.numAttrs = 1;
    }
    cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, ((P)args)...);
    if (e != cudaSuccess && launch_err == cudaSuccess) launch_err = e;
    if (e == cudaSuccess && mtk_ktrace_enabled()) ktrace_note_launch((const void *)kernel);
}

static int launch_status(void) {
    cudaError_t e = launch_err, g = cudaGetLastError();
    launch_err = cudaSuccess;
    return (int)(e != cudaSuccess ? e : g);
}

/* ---------------- the kernel trace (kernels.h: mtk_ktrace_*) ----------------
 * The device stamps in the order kernels ran; the host keeps the order it
 * submitted them (one stream: the same order), with a replayed graph's
 * kernels expanded from the list noted when it was captured. */
#define KTRACE_CAP (1u << 21)
struct ktrace_ent {
    const void *fn;
    int graph, pos; /* graph -1: launched directly */
};
static struct {
    int on; /* -1: not yet looked at */
    int capturing;
    ktrace_ent *seq;
    size_t nseq, capseq;
    const void **cap;
    int ncap, capcap;
    unsigned long long *d_t;
    unsigned *d_n;
    int on_positions; /* STTS_CUDA_KTRACE=2: ktrace_positions too */
} ktr = {-1, 0, NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0};

static void ktrace_push(const void *fn, int graph, int pos) {
    if (ktr.nseq == ktr.capseq) {
        size_t n = ktr.capseq ? 2 * ktr.capseq : 4096;
        ktrace_ent *p = (ktrace_ent *)realloc(ktr.seq, n * sizeof *p);
        if (!p) return;
        ktr.seq = p, ktr.capseq = n;
    }
    ktr.seq[ktr.nseq++] = {fn, graph, pos};
}

static void ktrace_note_launch(const void *kernel) {
    if (!ktr.capturing) {
        ktrace_push(kernel, -1, 0);
        return;
    }
    if (ktr.ncap == ktr.capcap) {
        int n = ktr.capcap ? 2 * ktr.capcap : 256;
        const void **p = (const void **)realloc(ktr.cap, (size_t)n * sizeof *p);
        if (!p) return;
        ktr.cap = p, ktr.capcap = n;
    }
    ktr.cap[ktr.ncap++] = kernel;
}

extern "C" int mtk_ktrace_enabled(void) {
    if (ktr.on < 0) {
        const char *e = getenv("STTS_CUDA_KTRACE");
        ktr.on = 0;
        if (e && (e[0] == '1' || e[0] == '2')) {
            ktr.on_positions = e[0] == '2';
            ktrace_dev kd = {NULL, NULL, KTRACE_CAP};
            if (cudaMalloc(&kd.t, KTRACE_CAP * sizeof(unsigned long long)) == cudaSuccess &&
                cudaMalloc(&kd.n, sizeof(unsigned)) == cudaSuccess && cudaMemset(kd.n, 0, sizeof(unsigned)) == cudaSuccess &&
                cudaMemcpyToSymbol(g_ktrace, &kd, sizeof kd) == cudaSuccess) {
                ktr.d_t = kd.t, ktr.d_n = kd.n, ktr.on = 1;
            } else {
                fprintf(stderr, "cuda ktrace: could not set up the trace buffers; tracing is off\n");
                cudaGetLastError();
            }
        }
    }
    return ktr.on;
}

extern "C" void mtk_ktrace_capture_begin(void) {
    ktr.capturing = 1;
    ktr.ncap = 0;
}

extern "C" int mtk_ktrace_capture_end(const void ***out) {
    ktr.capturing = 0;
    *out = NULL;
    if (ktr.ncap == 0) return 0;
    const void **ids = (const void **)malloc((size_t)ktr.ncap * sizeof *ids);
    if (!ids) return 0;
    memcpy(ids, ktr.cap, (size_t)ktr.ncap * sizeof *ids);
    *out = ids;
    return ktr.ncap;
}

extern "C" void mtk_ktrace_graph_launched(int graph, const void *const *ids, int n) {
    for (int i = 0; i < n; i++) ktrace_push(ids[i], graph, i);
}

/* A kernel's name, its template arguments shortened (the GEMV's rows,
 * weight layout, split and LayerNorm flag stay). */
static const char *ktrace_name(const void *fn) {
    const char *nm = NULL;
    if (cudaFuncGetName(&nm, fn) != cudaSuccess || !nm) {
        cudaGetLastError();
        return "?";
    }
    return nm;
}

/* STTS_CUDA_KTRACE=2: a graph's first KTRACE_POS kernels one by one (the
 * embedding and the first decoder layers: which op of a layer costs what,
 * where the per-kind sums above lump the QKV, cross-query and fc1 GEMVs
 * together), each its mean over replays of the time from its stamp to the
 * next kernel's. */
#define KTRACE_POS 20
static void ktrace_positions(int g, const unsigned long long *t, size_t m, long replays) {
    double sum[KTRACE_POS] = {0};
    const void *fn[KTRACE_POS] = {0};
    for (size_t i = 0; i + 1 < m; i++) {
        const ktrace_ent *e = &ktr.seq[i], *nx = &ktr.seq[i + 1];
        if (e->graph != g || e->pos >= KTRACE_POS || nx->graph != g || nx->pos != e->pos + 1) continue;
        sum[e->pos] += (double)(t[i + 1] - t[i]) / 1e3;
        fn[e->pos] = e->fn;
    }
    for (int p = 0; p < KTRACE_POS && fn[p]; p++)
        fprintf(stderr, "    graph %d kernel %2d: %6.2f us  %s\n", g, p, sum[p] / replays, ktrace_name(fn[p]));
}

extern "C" void mtk_ktrace_report(void) {
    if (ktr.on != 1) return;
    cudaDeviceSynchronize();
    unsigned n = 0;
    cudaMemcpy(&n, ktr.d_n, sizeof n, cudaMemcpyDeviceToHost);
    if (n > KTRACE_CAP) n = KTRACE_CAP;
    size_t m = n < ktr.nseq ? n : ktr.nseq;
    unsigned long long *t = (unsigned long long *)malloc((m ? m : 1) * sizeof *t);
    if (!t) return;
    cudaMemcpy(t, ktr.d_t, m * sizeof *t, cudaMemcpyDeviceToHost);
    fprintf(stderr, "cuda ktrace: %u kernels stamped, %zu submitted%s\n", n, ktr.nseq,
            n == ktr.nseq ? "" : " (counts differ: the pairing below is not reliable)");
    /* per graph: its length, replays, and per kernel kind the sum over the
     * graph of (next kernel's stamp - this one's), averaged over replays;
     * a graph's last kernel is paired with the next graph's first, which
     * includes the host's time between steps: reported apart */
    enum { MAXK = 64, MAXG = 256 };
    int gids[MAXG], ng = 0;
    gids[ng++] = -1;
    for (size_t i = 0; i < m; i++) {
        int g = ktr.seq[i].graph, j = 0;
        while (j < ng && gids[j] != g) j++;
        if (j == ng && ng < MAXG) gids[ng++] = g;
    }
    for (int gi = 0; gi < ng; gi++) {
        const int g = gids[gi];
        const void *fns[MAXK];
        double sum[MAXK];
        long cnt[MAXK];
        int nk = 0;
        long replays = 0;
        double total = 0, tail = 0;
        int len = 0;
        for (size_t i = 0; i + 1 < m; i++) {
            const ktrace_ent *e = &ktr.seq[i];
            if (e->graph != g) continue;
            if (g >= 0 && e->pos == 0) replays++;
            if (e->pos + 1 > len) len = e->pos + 1;
            double dt = (double)(t[i + 1] - t[i]) / 1e3;
            const ktrace_ent *nx = &ktr.seq[i + 1];
            if (g >= 0 && (nx->graph != g || nx->pos != e->pos + 1)) { /* the graph's last kernel */
                tail += dt;
                continue;
            }
            if (g < 0 && dt > 200.0) continue; /* direct launches: host gaps */
            int k = 0;
            while (k < nk && fns[k] != e->fn) k++;
            if (k == nk) {
                if (nk == MAXK) continue;
                fns[nk] = e->fn, sum[nk] = 0, cnt[nk] = 0, nk++;
            }
            sum[k] += dt, cnt[k]++, total += dt;
        }
        if (nk == 0) continue;
        if (g >= 0)
            fprintf(stderr, "cuda ktrace: graph %d, %d kernels, %ld replays: %.1f us per replay from its first kernel's "
                            "wait to its last one's (+ %.1f us last kernel + host until the next graph)\n",
                    g, len, replays, replays ? total / replays : 0, replays ? tail / replays : 0);
        else
            fprintf(stderr, "cuda ktrace: kernels launched directly (gaps over 200 us left out): %.1f us\n", total);
        for (int k = 0; k < nk; k++)
            fprintf(stderr, "  %8.2f us per %s (%ld kernels, %.2f us each)  %s\n",
                    g >= 0 && replays ? sum[k] / replays : sum[k], g >= 0 ? "replay" : "run", cnt[k],
                    sum[k] / (double)cnt[k], ktrace_name(fns[k]));
        if (ktr.on_positions && g >= 0 && replays >= 8) ktrace_positions(g, t, m, replays);
    }
    free(t);
    ktr.nseq = 0;
    cudaMemset(ktr.d_n, 0, sizeof(unsigned));
}

/* ---------------- GEMV: y = x W^T + b, weights streamed once ---------------- */

/* The weights go through shared memory: each block copies its tile (8 / S
 * consecutive rows, one contiguous piece of the matrix, at most
 * GEMV_TILE_BYTES) with cp.async before pdl_wait, i.e. while the previous
 * kernel still runs, and without holding registers for it (a first version
 * kept them in registers: 118 per thread with the LayerNorm prologue, two
 * blocks per SM, so the 384-block QKV and 512-block fc1 launches took two
 * waves and left no room for the next kernel to start early). After the
 * wait only the activations (L2), the arithmetic and the reductions remain
 * on the step's critical path. A row is split between S warps when it is
 * longer than an eighth of the tile (gemv_tile_bytes; every NLLB shape:
 * S = 1 for 1024 bf16 or int8 columns and for fc2's 4096 bf16, 2 for 1024
 * f32 and 4096 int8). */
/* (GEMV_TILE_BYTES: device_common.cuh) */
/* Dynamic shared memory above this asks for the opt-in (cudaFuncSetAttribute):
 * 48 KB is the default limit for static + dynamic, and the kernels' own
 * static arrays take up to ~1 KB of it. */
#define SMEM_OPT_IN (40 * 1024)

/* bytes from global to shared memory by the whole block: 16-byte cp.async
 * where both sides are 16-byte aligned, plain 8-byte copies otherwise (int8
 * rows are multiples of 8 bytes), and the last < 16 bytes plainly. */
__device__ __forceinline__ void copy_to_shared(unsigned char *dst, const unsigned char *src, size_t bytes) {
    if ((((uintptr_t)src | (uintptr_t)dst) & 15) == 0) {
        size_t body = bytes & ~(size_t)15;
        for (size_t o = threadIdx.x * 16; o < body; o += (size_t)blockDim.x * 16) cp_async16(dst + o, src + o);
        for (size_t o = body + threadIdx.x; o < bytes; o += blockDim.x) dst[o] = src[o];
    } else {
        for (size_t o = threadIdx.x * 8; o + 8 <= bytes; o += (size_t)blockDim.x * 8)
            *(uint2 *)(dst + o) = __ldg((const uint2 *)(src + o));
        for (size_t o = (bytes & ~(size_t)7) + threadIdx.x; o < bytes; o += blockDim.x) dst[o] = src[o];
    }
}

/* Rows of input staged as bf16 in shared memory: 2+ rows without a
 * LayerNorm prologue in the bf16-activation mode (every input is a bf16
 * value there, so the staging is exact). At 4 rows a bf16 fc2's 64 KB of f32
 * inputs beside its 64 KB tile left one block per SM; 32 KB leave two (the
 * host sizes shared memory by the same rule: gemv_smem). STTS_CUDA_XB=0
 * stages f32 (A/B). */
template <int R, bool LN>
__host__ __device__ __forceinline__ bool gemv_x_bf16_rule(int flags, int on) {
    return !LN && R > 1 && (flags & MTK_ACT_BF16) && on;
}
template <int R, bool LN>
__device__ __forceinline__ bool gemv_x_bf16(int flags) {
    return gemv_x_bf16_rule<R, LN>(flags, g_gemv_xb);
}

template <int R, typename WL, int S, bool LN, int P = 1>
__global__ void __launch_bounds__(GEMV_THREADS) gemv_kernel(const float *x, int K, const void *__restrict__ W,
                                                            const float *__restrict__ scales, int N,
                                                            const float *__restrict__ b, float *y, int flags,
                                                            int qcols, float qs, const ln_args ln) {
    static_assert(P == 1 || S == 1, "P rows per warp: whole rows per warp");
    constexpr int RB = 8 * P / S; /* rows per block (P > 1: warp w has rows w, w + 8, ...) */
    /* P > 1: the warp's P x R sums end in different lanes (warp_sum_scatter) */
    constexpr int PC = P * R <= 1 ? 1 : P * R <= 2 ? 2 : P * R <= 4 ? 4 : P * R <= 8 ? 8 : P * R <= 16 ? 16 : 32;
    static_assert(P == 1 || P * R <= 32, "P x R sums: at most one a lane");
    __shared__ float part[8][R];
    __shared__ double ln_sh[R * 16 > 32 ? R * 16 : 32];
    /* dynamic: the weight tile [RB][K] (16-byte aligned), for LN the gain
     * and bias [K] each, then the input rows [R][K] (normalized for LN) */
    extern __shared__ __align__(16) unsigned char gsm[];
    /* LN: the successor launches once the statistics are done (device_common.cuh,
     * pdl_trigger_late); a plain GEMV lets it launch at once: its successor
     * then has time to become resident and fetch its tile */
    if (LN) pdl_trigger_early();
    else pdl_launch_dependents();
    const int wib = (int)(threadIdx.x / WARP), lane = (int)(threadIdx.x % WARP);
    const int n0 = (int)blockIdx.x * RB, n = n0 + wib / S, split = wib % S;
    const int rows = N - n0 < RB ? N - n0 : RB;
    const size_t row_bytes = (size_t)K * WL::ELEM_BYTES;
    unsigned char *tile = gsm;
    float *lng = (float *)(gsm + (((size_t)RB * row_bytes + 15) & ~(size_t)15)), *lnb = lng + (LN ? K : 0), *xs = lnb + (LN ? K : 0);
    /* immutable inputs first: the tile, the row's scale and bias, the LayerNorm's parameters */
    copy_to_shared(tile, (const unsigned char *)W + (size_t)n0 * row_bytes, (size_t)rows * row_bytes);
    const bool fold = LN && ln.rc != nullptr; /* the LayerNorm folded into the weights (ln_args.rc) */
    float gr[GEMV_LN_J]; /* fold, one row: the gain in registers, g * x made before the barrier */
    if (LN && R == 1 && fold) {
#pragma unroll
        for (int j = 0; j < GEMV_LN_J; j++) {
            int i = (int)threadIdx.x + j * GEMV_THREADS;
            gr[j] = i < K ? __ldg(ln.g + i) : 0.0f;
        }
    } else if (LN) {
        copy_to_shared((unsigned char *)lng, (const unsigned char *)ln.g, (size_t)K * sizeof(float));
        copy_to_shared((unsigned char *)lnb, (const unsigned char *)ln.b, (size_t)K * sizeof(float));
    }
    /* the output this thread writes: lane 0 of the row's first warp (P = 1:
     * all R input rows of column n); P > 1: the lane warp_sum_scatter
     * leaves holding sum pj = p * R + r, for column n + 8 p, input row r */
    int pr = 0, pn = n;
    bool writer;
    if (P == 1) {
        writer = n < N && split == 0 && lane == 0;
    } else {
        const int pj = warp_sum_scatter_value<PC>(lane, writer);
        pr = pj % R, pn = n + 8 * (pj / R);
        writer = writer && pj < P * R && pn < N;
    }
    float sc = 1.0f, bias = 0.0f;
    float fr = 0.0f, fc = 0.0f; /* fold: rc[n], rc[N + n] */
    if (writer) {
        if (scales) sc = __ldg(scales + pn);
        if (b) bias = __ldg(b + pn);
        if (fold) fr = __ldg(ln.rc + pn), fc = __ldg(ln.rc + N + pn);
    }
    pdl_wait();
    float yo[R]; /* MTK_ACCUM: the residual, read once the previous kernel has written it */
#pragma unroll
    for (int r = 0; r < R; r++) yo[r] = 0.0f;
    if ((flags & MTK_ACCUM) && writer) {
        if (P == 1)
#pragma unroll
            for (int r = 0; r < R; r++) yo[r] = y[(size_t)r * N + n];
        else
            yo[0] = y[(size_t)pr * N + pn];
    }
    if (LN && R == 1) {
        /* one row: x into registers, read before the tile has arrived (its
         * loads overlap the copy), the shortest path for greedy decoding */
        float v[GEMV_LN_J];
#pragma unroll
        for (int j = 0; j < GEMV_LN_J; j++) {
            int i = (int)threadIdx.x + j * GEMV_THREADS;
            v[j] = i < K ? x[i] : 0.0f;
        }
        if (fold) {
            /* g * x for the dot products and the statistics' partial sums,
             * with no barrier between them: the one below publishes both */
            double sm = 0.0, sq = 0.0;
#pragma unroll
            for (int j = 0; j < GEMV_LN_J; j++) {
                int i = (int)threadIdx.x + j * GEMV_THREADS;
                if (i < K) xs[i] = v[j] * gr[j], sm += v[j], sq += (double)v[j] * v[j];
            }
            lnf_partials(sm, sq, ln_sh);
            cp_async_wait_all();
        } else {
            cp_async_wait_all();
            __syncthreads(); /* the gain and bias in shared memory */
            ln_row(v, K, lng, lnb, ln.eps, ln_sh, xs, ln.out, blockIdx.x == 0, (flags & MTK_ACT_BF16) != 0);
        }
    } else if (gemv_x_bf16<R, LN>(flags)) {
        /* bf16 inputs of 2+ rows staged as bf16 (gemv_x_bf16), through L2
         * only (__ldcg, after the wait: no stale L1 line) */
        uint16_t *xb = (uint16_t *)xs;
        const size_t n = (size_t)R * K;
        if (((uintptr_t)x & 15) == 0)
            for (size_t i = threadIdx.x * 4; i < n; i += (size_t)GEMV_THREADS * 4) {
                const float4 v = __ldcg((const float4 *)(x + i));
                __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
                *(uint2 *)(xb + i) = make_uint2(*(const uint32_t *)&lo, *(const uint32_t *)&hi);
            }
        else
            for (size_t i = threadIdx.x; i < n; i += GEMV_THREADS) {
                __nv_bfloat16 h = __float2bfloat16_rn(__ldcg(x + i));
                xb[i] = *(const uint16_t *)&h;
            }
        cp_async_wait_all(); /* the tile */
    } else {
        /* x through L2 only (cp.async.cg, after the wait: no stale L1 line),
         * all of it requested at once, instead of as each warp reaches it */
        copy_to_shared((unsigned char *)xs, (const unsigned char *)x, (size_t)R * K * sizeof(float));
        cp_async_wait_all();
        if (LN) {
            /* 2+ rows: normalized in place in shared memory, the rows'
             * reductions together (ln_rows). Holding all R rows in
             * registers (the one-row path) took 72 registers a thread at 4
             * rows, and beam 4 ran 5-7% slower on the H200 than in shared
             * memory; one row is 2% faster in registers. */
            __syncthreads(); /* the rows, gain and bias in shared memory */
            if (fold) lnf_rows<R>(xs, K, lng, ln_sh);
            else ln_rows<R>(xs, R, K, lng, lnb, ln.eps, ln_sh, ln.out, blockIdx.x == 0, (flags & MTK_ACT_BF16) != 0);
        }
    }
    __syncthreads(); /* the tile and the (normalized) rows visible to every warp */
    if (LN) pdl_trigger_late(); /* the successor launches during the dot products */
    float acc[R];
#pragma unroll
    for (int r = 0; r < R; r++) acc[r] = 0.0f;
    if constexpr (P > 1) {
        /* P weight rows a warp: each product in gemv_dot's order and each
         * sum in its shuffle tree, so the same bits as one row a warp */
        float pacc[PC];
#pragma unroll
        for (int i = 0; i < PC; i++) pacc[i] = 0.0f;
        const int np = n >= N ? 0 : (N - n + 7) / 8; /* the warp's rows below N */
        if (gemv_x_bf16<R, LN>(flags))
            gemv_dot_rows<WL, R, P, xbf16>(tile + (size_t)wib * row_bytes, 8 * row_bytes, np, (const uint16_t *)xs, K,
                                           lane, pacc);
        else
            gemv_dot_rows<WL, R, P, xf32>(tile + (size_t)wib * row_bytes, 8 * row_bytes, np, xs, K, lane, pacc);
        int pj = 0;
        warp_sum_scatter<PC, 16>(pacc, lane, pj);
        if (!writer) return;
        float a = pacc[0];
        if (fold) {
            float mf, rstd;
            lnf_stats(ln_sh + 16 * pr, K, ln.eps, mf, rstd);
            a = lnf_value(a, sc, fr, fc, mf, rstd), sc = 1.0f;
        }
        const float v = gemv_out(a, sc, bias, flags, pn, qcols, qs);
        y[(size_t)pr * N + pn] = (flags & MTK_ACCUM) ? residual_add(yo[0], v, flags) : v;
        return;
    }
    if (n < N) {
        /* x and y are plain pointers, not const __restrict__, and read with
         * plain loads, never __ldg: the compiler turns loads through a const
         * __restrict__ pointer into non-coherent ld.global.nc, which ptxas
         * may move above griddepcontrol.wait (the data is "read-only" to
         * it), so they would read the previous kernel's output before it is
         * written. Only the weights (and scales, biases, LayerNorm
         * parameters) are __restrict__/__ldg. Seen on the H200: greedy ids
         * wrong with PDL, right without it. */
        if (gemv_x_bf16<R, LN>(flags))
            gemv_dot<WL, R, xbf16>(tile + (size_t)(wib / S) * row_bytes, (const uint16_t *)xs, K, S, split, lane, acc);
        else
            gemv_dot<WL, R>(tile + (size_t)(wib / S) * row_bytes, xs, K, S, split, lane, acc);
    }
    if (S > 1) {
        if (lane == 0)
#pragma unroll
            for (int r = 0; r < R; r++) part[wib][r] = acc[r];
        __syncthreads();
        if (!writer) return;
#pragma unroll
        for (int r = 0; r < R; r++) {
            float t = part[wib][r];
            for (int i = 1; i < S; i++) t += part[wib + i][r];
            acc[r] = t;
        }
    } else if (!writer) {
        return;
    }
    if (fold) {
#pragma unroll
        for (int r = 0; r < R; r++) {
            float mf, rstd;
            lnf_stats(ln_sh + 16 * r, K, ln.eps, mf, rstd);
            acc[r] = lnf_value(acc[r], sc, fr, fc, mf, rstd);
        }
        sc = 1.0f;
    }
#pragma unroll
    for (int r = 0; r < R; r++) {
        float v = gemv_out(acc[r], sc, bias, flags, n, qcols, qs);
        float *yp = y + (size_t)r * N + n;
        if (flags & MTK_ACCUM) *yp = residual_add(yo[r], v, flags);
        else *yp = v;
    }
}

/* The GEMVs ask for the SM's whole L1/shared storage as shared memory
 * (cudaFuncAttributePreferredSharedMemoryCarveout 100): they read weights and
 * inputs through shared memory, not L1, and what counts under programmatic
 * dependent launch is how many blocks of the next kernel become resident
 * while this one runs. With the driver's choice Nsight Compute showed 4
 * blocks per SM for a 4-row GEMV's 32 KB, where 6 fit in 228 KB. H200,
 * 2026-11-30 (ab-env.sh, 2 rounds): int8 greedy 14.3 -> 13.6 ms, int8 +
 * 32000 rows 13.4 -> 12.7, bf16 14.0 -> 13.9, beam 4 0.3-0.5 ms less; the
 * same ids. STTS_CUDA_CARVEOUT=P sets another percentage (-1: the driver's
 * choice). */
static int gemv_carveout(void) {
    static int v = -2;
    if (v == -2) {
        v = env_int("STTS_CUDA_CARVEOUT", 100);
        if (v > 100) v = 100;
    }
    return v;
}

static int gemv_xb_on(void) {
    static int v = -1;
    if (v < 0) v = env_flag("STTS_CUDA_XB", 1);
    return v;
}
/* gemv_x_bf16's rule on the host (the kernel's R and LN are run-time here) */
static bool gemv_xb_host(int R, bool LN, int flags) {
    int on = gemv_xb_on();
    return LN ? gemv_x_bf16_rule<2, true>(flags, on) : R > 1 ? gemv_x_bf16_rule<2, false>(flags, on) : false;
}

/* A one-row GEMV of whole rows (S = 1) with at least this many output
 * columns gives each warp two weight rows (gemv_dot_rows: the same bits), so
 * half as many blocks: fc1's LayerNorm GEMV had 512 blocks of 64 registers,
 * more than fit beside the previous kernel's under programmatic dependent
 * launch, and took 7.6-8.2 us where the QKV GEMV's 384 took ~4 (kernel
 * trace, 2026-11-30). H200, 2026-11-30 23:50 UTC (scripts/device/rpw-ab.sh,
 * 2 rounds, the same ids in every setting): bf16 greedy 13.9 -> 13.6 ms,
 * int8 greedy 13.7 -> 13.2; beam 4 (4 rows: unaffected) and the
 * 32000-row LM head unchanged. 3072 takes the QKV and fc1 GEMVs and the
 * LM head; STTS_CUDA_RPW_MIN_N=N sets another threshold, 0 turns it off. */
static int g_rpw_min_n = -1, g_rpw_rows_min_n = -1;
static int gemv_rpw_min_n(void) {
    if (g_rpw_min_n < 0) {
        g_rpw_min_n = env_int("STTS_CUDA_RPW_MIN_N", 3072);
        if (g_rpw_min_n < 0) g_rpw_min_n = 0;
    }
    return g_rpw_min_n;
}

/* Several input rows (beams, a batch): 4 weight rows a warp up to 4 input
 * rows, 2 up to 8 (gemv_dot_rows: the same bits), so each staged input
 * value is read and widened once for 4 (2) weight rows instead of once a
 * row. At 4 rows the LM head's inputs, read from shared memory once per
 * weight row, had bounded it at ~5x its bytes. From how many output
 * columns, by weight format (H200, 2026-12-02 17:13 UTC,
 * rpw-rows-check.sh, 2 rounds, the same ids everywhere): int8 from 1024,
 * i.e. every decoder GEMV of whole rows (beam 4 26.5-26.8 -> 20.1-20.2
 * ms; 22.7 with the LM head alone; + 32000 rows 19.8-20.0 -> 17.3); 16-bit
 * weights from 16384, the LM head alone (bf16 beam 4 20.5-20.8 -> 18.8;
 * from 1024 19.9, and + 32000 rows 15.9 -> 17.1: 4 rows a warp leave a
 * 1024-column GEMV 32 blocks of 64 KB tiles). STTS_CUDA_RPW_ROWS_MIN_N=N
 * sets one threshold for every format, 0 turns it off. */
static int gemv_rpw_rows_min_n(int elem_bytes) {
    if (g_rpw_rows_min_n < 0) {
        const char *e = getenv("STTS_CUDA_RPW_ROWS_MIN_N");
        g_rpw_rows_min_n = e ? (atoi(e) < 0 ? 0 : atoi(e)) : 0x7fffffff; /* 0x7fffffff: by format */
    }
    if (g_rpw_rows_min_n != 0x7fffffff) return g_rpw_rows_min_n;
    return elem_bytes == 1 ? 1024 : 16384;
}

extern "C" void mtk_gemv_rows_per_warp(int one_row_min_n, int rows_min_n) {
    g_rpw_min_n = one_row_min_n, g_rpw_rows_min_n = rows_min_n;
}

/* weight rows a warp: M = 0 one; M = 1 (gemv_launch_s's choice) two at one
 * input row, 4 up to 4 rows, 2 up to 8; whole rows only (S = 1) */
template <int R, bool LN, int S, int M>
__host__ __device__ constexpr int gemv_rows_per_warp() {
    return (M == 0 || S != 1) ? 1 : R == 1 ? 2 : R <= 4 ? 4 : 2;
}

template <typename WL, int S, bool LN, int M = 0>
static void gemv_launch_s(cudaStream_t st, const float *x, int R, int K, const void *W, const float *scales, int N,
                          const float *b, float *y, int flags, int qcols, float qs, const ln_args &ln) {
    const size_t xbytes = (size_t)(LN ? 2 : 0) * K * sizeof(float) +
                          (size_t)R * K * (gemv_xb_host(R, LN, flags) ? sizeof(uint16_t) : sizeof(float));
    if constexpr (M == 0 && S == 1) {
        const int thr = R == 1 ? gemv_rpw_min_n() : gemv_rpw_rows_min_n(WL::ELEM_BYTES);
        const size_t tile = (size_t)8 * (R == 1 ? 2 : R <= 4 ? 4 : 2) * K * WL::ELEM_BYTES; /* gemv_rows_per_warp */
        if (thr && N >= thr && tile + xbytes <= 200 * 1024) {
            gemv_launch_s<WL, S, LN, 1>(st, x, R, K, W, scales, N, b, y, flags, qcols, qs, ln);
            return;
        }
    }
    switch (R) {
#define CASE(n)                                                                                                   \
    case n: {                                                                                                     \
        constexpr int P = gemv_rows_per_warp<n, LN, S, M>(), rows_per_block = 8 * P / S;                          \
        auto kern = gemv_kernel<n, WL, S, LN, P>;                                                                 \
        dim3 block(GEMV_THREADS), grid((unsigned)((N + rows_per_block - 1) / rows_per_block));                    \
        const size_t smem = (((size_t)rows_per_block * K * WL::ELEM_BYTES + 15) & ~(size_t)15) + xbytes;          \
        if (smem > SMEM_OPT_IN) {                                                                                 \
            cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);   \
            if (e != cudaSuccess && launch_err == cudaSuccess) launch_err = e;                                   \
        }                                                                                                         \
        if (gemv_carveout() >= 0) {                                                                               \
            static int set_##n;                                                                                   \
            if (!set_##n) {                                                                                       \
                set_##n = 1;                                                                                      \
                if (cudaFuncSetAttribute(kern, cudaFuncAttributePreferredSharedMemoryCarveout, gemv_carveout()) !=  \
                    cudaSuccess)                                                                                  \
                    cudaGetLastError();                                                                           \
            }                                                                                                     \
        }                                                                                                         \
        launch(st, grid, block, smem, kern, x, K, W, scales, N, b, y, flags, qcols, qs, ln);                      \
        break;                                                                                                    \
    }
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
#undef CASE
    default:
        break;
    }
}

/* The most bytes of W one GEMV block stages, by weight format: 64 KB for
 * 16-bit weights, GEMV_TILE_BYTES (16 KB) for f32 and int8; or
 * STTS_CUDA_GEMV_TILE (16384-131072, every format) to compare. A 64 KB
 * tile gives a bf16 row of 4096 columns (fc2) a whole warp instead of a
 * quarter of a row in each of 4 warps: 128 blocks instead of 512, each
 * staging x once, no cross-warp sum. On the H200 (ab-env.sh, 2026-11-30)
 * bf16 greedy went 16.6-16.7 -> 15.8-15.9 ms and beam 4 32.8-32.9 ->
 * 31.7; int8 beam 4 went 28.9 -> 30.0 ms (its 4 KB rows, 4 staged input
 * rows of 16 KB beside the tile: fewer blocks per SM), so int8 and f32
 * (the parity format) keep 16 KB. */
static size_t gemv_tile_bytes(int elem_bytes) {
    static long env = -1;
    if (env < 0) {
        long v = env_int("STTS_CUDA_GEMV_TILE", 0);
        env = v >= 16384 && v <= 131072 ? v : 0;
    }
    if (env) return (size_t)env;
    return elem_bytes == 2 ? 65536 : GEMV_TILE_BYTES;
}

/* The split: the fewest warps per row (1, 2, 4, 8) that keep the block's
 * tile within gemv_tile_bytes(); a row longer than that is one block's tile
 * on its own (8 warps; up to the 227 KB of shared memory an SM has: f32
 * rows of 56k columns). */
template <typename WL>
static int gemv_split(int K) {
    size_t row = (size_t)K * WL::ELEM_BYTES;
    for (int S = 1; S < 8; S *= 2)
        if (row * (size_t)(8 / S) <= gemv_tile_bytes(WL::ELEM_BYTES)) return S;
    return 8;
}

extern "C" int mtk_gemv_split(int K, int wfmt) {
    switch (wfmt) {
    case MTK_W_F32: return gemv_split<wf32>(K);
    case MTK_W_BF16: return gemv_split<wbf16>(K);
    case MTK_W_F16: return gemv_split<wf16>(K);
    default: return gemv_split<wi8>(K);
    }
}

template <typename WL>
static void gemv_launch_ln(cudaStream_t st, const float *x, int R, int K, const void *W, const float *scales, int N,
                           const float *b, float *y, int flags, int qcols, float qs, const ln_args *ln) {
    ln_args none = {NULL, NULL, 0.0f, NULL, NULL};
    const ln_args &l = ln ? *ln : none;
#define GO(S_)                                                                                                     \
    do {                                                                                                           \
        if (ln) gemv_launch_s<WL, S_, true>(st, x, R, K, W, scales, N, b, y, flags, qcols, qs, l);                 \
        else gemv_launch_s<WL, S_, false>(st, x, R, K, W, scales, N, b, y, flags, qcols, qs, l);                   \
    } while (0)
    switch (gemv_split<WL>(K)) {
    case 1: GO(1); break;
    case 2: GO(2); break;
    case 4: GO(4); break;
    default: GO(8); break;
    }
#undef GO
}

extern "C" int mtk_linear(void *stream, const float *x, int M, int K, const void *W, int wfmt, const float *scales,
                          int N, const float *b, float *y, int flags) {
    return mtk_linear_scaled(stream, x, M, K, W, wfmt, scales, N, b, y, flags, 0, 1.0f);
}

/* ---------------- bf16 and int8 GEMM on tensor cores (the encoder's rows) ----------------
 * More rows than one GEMV launch takes (the encoder's 20+ tokens, big
 * batches) with bf16 weights in the bf16-activation mode (MTK_ACT_BF16:
 * every Linear's input is already a bf16 value, so converting it for the
 * tensor cores loses nothing): wmma 16x16x16 bf16 products with f32
 * accumulators, as HF's bf16 model computes them with cuBLAS (the order
 * of the sums differs from the GEMV's, so results may differ from it by
 * the last bit before the bf16 rounding). A block computes 32 rows x 16
 * columns: its 16 weight rows go to shared memory whole (cp.async, before
 * the wait), its 4 warps split K and their sums are added in warp order
 * (deterministic). The GEMV path took 3 launches of ~7-11 us per encoder
 * Linear (8 + 8 + 4 rows), ~1.9 ms of a bf16 sentence's ~15 on the H200;
 * this kernel ~16 us a Linear on average (2026-11-30: bf16 greedy 15.0 ->
 * 14.0 ms). STTS_CUDA_GEMM=0 keeps the GEMVs (mtk_gemm_enable). */
#define GEMM_BM 32
#define GEMM_BN 16
#define GEMM_WARPS 4
#define GEMM_KC 256 /* = 64 float4 columns: two rows per 128 threads (gemm_kernel's staging) */
#define GEMM_LDX (GEMM_KC + 8) /* a row of staged x: 16-byte multiple, shifted banks */

static int g_gemm_on = -1;
static unsigned long g_gemm_calls;

extern "C" void mtk_gemm_enable(int on) { g_gemm_on = on != 0; }
extern "C" unsigned long mtk_gemm_calls(void) { return g_gemm_calls; }

static int gemm_on(void) {
    if (g_gemm_on < 0) g_gemm_on = env_flag("STTS_CUDA_GEMM", 1);
    return g_gemm_on;
}

/* I8: int8 weights (weight-only, per-row scales; f32 activations). An
 * int8 value is exact in bf16 (8 significant bits), so the weight rows are
 * widened into shared memory as they are, and each activation is split
 * into two bf16 terms, hi = bf16(x) and lo = bf16(x - hi) (x to ~2^-17
 * relative, near the f32 GEMV's own rounding), both multiplied on the
 * tensor cores into the same f32 accumulator; the row scale comes in the
 * epilogue, as in the GEMV. The int8 encoder had run on GEMVs, 1.85 ms a
 * sentence against bf16's 0.9 on the H200. */
template <bool I8>
__global__ void __launch_bounds__(GEMM_WARPS * WARP) gemm_kernel(const float *x, int M, int K,
                                                                 const void *__restrict__ Wv, int N,
                                                                 const float *__restrict__ scales,
                                                                 const float *__restrict__ b, float *y, int flags,
                                                                 int qcols, float qs) {
    using namespace nvcuda;
    __shared__ __align__(32) __nv_bfloat16 xs[GEMM_BM * GEMM_LDX];
    __shared__ __align__(32) __nv_bfloat16 xl[I8 ? GEMM_BM * GEMM_LDX : 16]; /* the lo terms (I8) */
    __shared__ __align__(32) float part[GEMM_WARPS][GEMM_BM * GEMM_BN];
    /* dynamic: the block's 16 weight rows [GEMM_BN][K + 8], fetched whole
     * with cp.async before the wait (they are immutable), so that the
     * products after it read only shared memory */
    extern __shared__ __align__(32) unsigned char gemm_sm[];
    __nv_bfloat16 *ws = (__nv_bfloat16 *)gemm_sm;
    const int ldw = K + 8;
    const int warp = (int)threadIdx.x / WARP, m0 = (int)blockIdx.y * GEMM_BM, n0 = (int)blockIdx.x * GEMM_BN;
    const int rows = M - m0 < GEMM_BM ? M - m0 : GEMM_BM;
    if constexpr (I8) { /* 16 int8 values a thread at a time, widened as they are */
        const int8_t *wq = (const int8_t *)Wv + (size_t)n0 * K;
        const int cpr = K / 16;
        for (int i = (int)threadIdx.x; i < GEMM_BN * cpr; i += (int)blockDim.x) {
            const int r = i / cpr, c = (i - r * cpr) * 16;
            const uint4 u = __ldg((const uint4 *)(wq + (size_t)r * K + c));
            const uint32_t v[4] = {u.x, u.y, u.z, u.w};
            __nv_bfloat162 *d = (__nv_bfloat162 *)(ws + (size_t)r * ldw + c);
#pragma unroll
            for (int j = 0; j < 8; j++) {
                const uint32_t h = v[j / 2] >> (16 * (j % 2));
                d[j] = __floats2bfloat162_rn((float)(int8_t)(h & 0xffu), (float)(int8_t)((h >> 8) & 0xffu));
            }
        }
    } else {
        const __nv_bfloat16 *wb = (const __nv_bfloat16 *)Wv + (size_t)n0 * K;
        const int cpr = K / 8; /* 16-byte chunks per weight row */
        for (int i = (int)threadIdx.x; i < GEMM_BN * cpr; i += (int)blockDim.x) {
            const int r = i / cpr, c = (i - r * cpr) * 8;
            cp_async16(ws + (size_t)r * ldw + c, wb + (size_t)r * K + c);
        }
    }
    pdl_launch_dependents();
    pdl_wait();
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> c0, c1;
    wmma::fill_fragment(c0, 0.0f);
    wmma::fill_fragment(c1, 0.0f);
    /* x in rounds of GEMM_KC columns: thread t holds float4 column t % 64
     * of rows t / 64, + 2, ... (16 loads in flight at once: a loop that
     * waited for each L2 load in turn made the first version 3x slower than
     * the GEMVs it replaced), and the next round's loads are issued before
     * this round's products, so their latency overlaps them */
    const int cc = (int)threadIdx.x % 64, rb = (int)threadIdx.x / 64;
    float4 v[GEMM_BM / 2];
    auto load_round = [&](int k0) {
        const int c4 = (K - k0 < GEMM_KC ? K - k0 : GEMM_KC) / 4;
#pragma unroll
        for (int j = 0; j < GEMM_BM / 2; j++) {
            const int r = rb + 2 * j;
            v[j] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (r < rows && cc < c4) v[j] = *(const float4 *)(x + (size_t)(m0 + r) * K + k0 + cc * 4); /* after the wait */
        }
    };
    load_round(0);
    for (int k0 = 0; k0 < K; k0 += GEMM_KC) {
        const int kc = K - k0 < GEMM_KC ? K - k0 : GEMM_KC;
        __syncthreads(); /* the previous round's fragments are loaded */
#pragma unroll
        for (int j = 0; j < GEMM_BM / 2; j++) {
            __nv_bfloat162 *d = (__nv_bfloat162 *)(xs + (rb + 2 * j) * GEMM_LDX + cc * 4);
            d[0] = __floats2bfloat162_rn(v[j].x, v[j].y);
            d[1] = __floats2bfloat162_rn(v[j].z, v[j].w);
            if constexpr (I8) { /* x - hi is exact in f32 */
                __nv_bfloat162 *l = (__nv_bfloat162 *)(xl + (rb + 2 * j) * GEMM_LDX + cc * 4);
                l[0] = __floats2bfloat162_rn(v[j].x - __low2float(d[0]), v[j].y - __high2float(d[0]));
                l[1] = __floats2bfloat162_rn(v[j].z - __low2float(d[1]), v[j].w - __high2float(d[1]));
            }
        }
        if (k0 == 0 && !I8) cp_async_wait_all();
        __syncthreads();
        if (k0 + GEMM_KC < K) load_round(k0 + GEMM_KC);
#pragma unroll 4
        for (int kk = warp * 16; kk < kc; kk += GEMM_WARPS * 16) {
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> bw;
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a0, a1;
            wmma::load_matrix_sync(bw, ws + k0 + kk, (unsigned)ldw); /* B(k, n) = W[n0 + n][k0 + kk + k] */
            wmma::load_matrix_sync(a0, xs + kk, GEMM_LDX);
            wmma::load_matrix_sync(a1, xs + 16 * GEMM_LDX + kk, GEMM_LDX);
            wmma::mma_sync(c0, a0, bw, c0);
            wmma::mma_sync(c1, a1, bw, c1);
            if constexpr (I8) {
                wmma::load_matrix_sync(a0, xl + kk, GEMM_LDX);
                wmma::load_matrix_sync(a1, xl + 16 * GEMM_LDX + kk, GEMM_LDX);
                wmma::mma_sync(c0, a0, bw, c0);
                wmma::mma_sync(c1, a1, bw, c1);
            }
        }
    }
    wmma::store_matrix_sync(&part[warp][0], c0, GEMM_BN, wmma::mem_row_major);
    wmma::store_matrix_sync(&part[warp][16 * GEMM_BN], c1, GEMM_BN, wmma::mem_row_major);
    __syncthreads();
    for (int i = (int)threadIdx.x; i < rows * GEMM_BN; i += (int)blockDim.x) {
        const int r = i / GEMM_BN, c = i % GEMM_BN, n = n0 + c;
        float acc = part[0][i];
#pragma unroll
        for (int w = 1; w < GEMM_WARPS; w++) acc += part[w][i];
        float v = gemv_out(acc, I8 ? __ldg(scales + n) : 1.0f, b ? __ldg(b + n) : 0.0f, flags, n, qcols, qs);
        float *yp = y + (size_t)(m0 + r) * N + n;
        if (flags & MTK_ACCUM) *yp = residual_add(*yp, v, flags);
        else *yp = v;
    }
}

static int linear_impl(void *stream, const float *x, int M, int K, const void *W, int wfmt, const float *scales,
                       int N, const float *b, float *y, int flags, int qcols, float qs, const ln_args *lnp) {
    cudaStream_t st = (cudaStream_t)stream;
    if (K % 8 != 0 || (qcols > 0 && (flags & MTK_ACCUM))) return (int)cudaErrorInvalidValue;
    const int gemm_bf16 = wfmt == MTK_W_BF16 && (flags & MTK_ACT_BF16);
    const int gemm_i8 = wfmt == MTK_W_I8 && !(flags & MTK_ACT_BF16) && scales && K <= 4096; /* smem: + the lo terms */
    if ((gemm_bf16 || gemm_i8) && !lnp && M > MTK_GEMV_MAX_ROWS && K % 64 == 0 && N % GEMM_BN == 0 &&
        M <= 65535 * GEMM_BM && K <= 6144 && gemm_on()) {
        dim3 grid((unsigned)(N / GEMM_BN), (unsigned)((M + GEMM_BM - 1) / GEMM_BM));
        size_t smem = (size_t)GEMM_BN * (K + 8) * 2;
        static int opted; /* static + dynamic above 48 KB needs the opt-in: asked once, for the largest K */
        if (!opted) {
            cudaError_t e = cudaFuncSetAttribute(gemm_kernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                 GEMM_BN * (6144 + 8) * 2);
            if (e == cudaSuccess)
                e = cudaFuncSetAttribute(gemm_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         GEMM_BN * (4096 + 8) * 2);
            if (e != cudaSuccess) return (int)e;
            opted = 1;
        }
        if (gemm_i8)
            launch(st, grid, GEMM_WARPS * WARP, smem, gemm_kernel<true>, x, M, K, W, N, scales, b, y, flags, qcols,
                   qs);
        else
            launch(st, grid, GEMM_WARPS * WARP, smem, gemm_kernel<false>, x, M, K, W, N, scales, b, y, flags, qcols,
                   qs);
        g_gemm_calls++;
        return launch_status();
    }
    /* rows per launch: up to MTK_GEMV_MAX_ROWS, as many as shared memory
     * holds beside the tile (the input rows are staged there: NLLB-3.3B's
     * fc2 has 8192 columns, 32 KB a row) */
    const size_t eb = wfmt == MTK_W_F32 ? 4 : wfmt == MTK_W_I8 ? 1 : 2, row = (size_t)K * eb;
    const size_t tmax = gemv_tile_bytes((int)eb), tile = row > tmax ? row : tmax, budget = 200 * 1024;
    const size_t fixed = tile + 15 + (lnp ? 2 * (size_t)K * sizeof(float) : 0), per = (size_t)K * sizeof(float);
    if (fixed + per > budget) return (int)cudaErrorInvalidValue;
    int G = (int)((budget - fixed) / per);
    if (G > MTK_GEMV_MAX_ROWS) G = MTK_GEMV_MAX_ROWS;
    for (int m0 = 0; m0 < M; m0 += G) {
        int R = M - m0 < G ? M - m0 : G;
        const float *xg = x + (size_t)m0 * K;
        float *yg = y + (size_t)m0 * N;
        ln_args lg, *ln = NULL;
        if (lnp) lg = *lnp, lg.out += (size_t)m0 * K, ln = &lg;
        if (wfmt == MTK_W_F32) gemv_launch_ln<wf32>(st, xg, R, K, W, NULL, N, b, yg, flags, qcols, qs, ln);
        else if (wfmt == MTK_W_BF16) gemv_launch_ln<wbf16>(st, xg, R, K, W, NULL, N, b, yg, flags, qcols, qs, ln);
        else if (wfmt == MTK_W_F16) gemv_launch_ln<wf16>(st, xg, R, K, W, NULL, N, b, yg, flags, qcols, qs, ln);
        else gemv_launch_ln<wi8>(st, xg, R, K, W, scales, N, b, yg, flags, qcols, qs, ln);
    }
    return launch_status();
}

extern "C" int mtk_linear_scaled(void *stream, const float *x, int M, int K, const void *W, int wfmt,
                                 const float *scales, int N, const float *b, float *y, int flags, int qcols, float qs) {
    return linear_impl(stream, x, M, K, W, wfmt, scales, N, b, y, flags, qcols, qs, NULL);
}

/* A LayerNorm with the GEMV prologue's arithmetic (ln_row: its thread
 * layout and summation order, g_ln_onepass), one block per row: what the
 * prologue computes, as a launch of its own (mtk_ln_linear's split). */
__global__ void __launch_bounds__(GEMV_THREADS) ln_prologue_kernel(const float *x, int K, const float *g,
                                                                   const float *b, float eps, float *y, int rnd) {
    pdl_launch_dependents();
    pdl_wait();
    __shared__ double sh[32];
    const float *xr = x + (size_t)blockIdx.x * K;
    float *yr = y + (size_t)blockIdx.x * K;
    float v[GEMV_LN_J];
#pragma unroll
    for (int j = 0; j < GEMV_LN_J; j++) {
        int i = (int)threadIdx.x + j * GEMV_THREADS;
        v[j] = i < K ? xr[i] : 0.0f;
    }
    ln_row(v, K, g, b, eps, sh, yr, NULL, false, rnd != 0);
}

/* Decode-size LayerNorm + Linear pairs of at least this many rows run as two
 * launches (ln_prologue_kernel, then the plain GEMV: the same bits) instead
 * of the GEMV with the LayerNorm in its prologue, where every block of the
 * GEMV reduced all rows' statistics again. Measured on the H200 (2026-11-30,
 * bf16, alternating runs in one call): beam 4 30.1 -> 29.0 ms, but greedy
 * 14.0 -> 16.7 ms when one row is split too (the extra launch boundary costs
 * more than one row's reduction), so 2 by default. STTS_CUDA_LN_SPLIT=N
 * overrides (0: never). The encoder's (more rows) keep the prologue. */
static int g_ln_split = -1;
static int ln_split(int M) {
    if (g_ln_split < 0) g_ln_split = env_int("STTS_CUDA_LN_SPLIT", 2);
    return g_ln_split > 0 && M >= g_ln_split && M <= MTK_GEMV_MAX_ROWS;
}

/* The most rows a folded LayerNorm GEMV takes: greedy steps and their
 * prefill. More rows run unfolded (split as ln_split says): at 4 rows
 * (beam 4) the folded GEMV stages 4 f32 rows of g * x and reduces 4 rows'
 * statistics in every block, where the split path normalizes once and
 * stages bf16; int8 beam 4 went 26.8-27.2 -> 29.1-29.3 ms folded, greedy
 * gained 0.2-0.25 ms (H200, 2026-12-02 15:38 UTC, lnfold-check.sh).
 * STTS_CUDA_LN_FOLD_ROWS=N (A/B runs). */
static int lnf_max_rows(void) {
    static int v = -1;
    if (v < 0) v = env_int("STTS_CUDA_LN_FOLD_ROWS", 2);
    return v;
}

static int ln_linear_impl(void *stream, const float *x, int M, int K, const float *g, const float *gb, float eps,
                          float *ln_out, const void *W, int wfmt, const float *scales, int N, const float *b, float *y,
                          int flags, int qcols, float qs, const float *rc) {
    if (!g || !gb || !ln_out || ln_out == x) return (int)cudaErrorInvalidValue;
    if (K > GEMV_THREADS * GEMV_LN_J) { /* wider than the prologue's registers: two launches */
        int e = mtk_layernorm(stream, x, M, K, g, gb, eps, ln_out, (flags & MTK_ACT_BF16) != 0);
        return e ? e : linear_impl(stream, ln_out, M, K, W, wfmt, scales, N, b, y, flags, qcols, qs, NULL);
    }
    if (rc && M <= lnf_max_rows()) { /* folded: no statistics before the dot products, so no split either */
        ln_args ln = {g, gb, eps, ln_out, rc};
        return linear_impl(stream, x, M, K, W, wfmt, scales, N, b, y, flags, qcols, qs, &ln);
    }
    if (M > 0 && ln_split(M)) {
        launch((cudaStream_t)stream, M, GEMV_THREADS, 0, ln_prologue_kernel, x, K, g, gb, eps, ln_out,
               (flags & MTK_ACT_BF16) != 0 ? 1 : 0);
        int e = launch_status();
        return e ? e : linear_impl(stream, ln_out, M, K, W, wfmt, scales, N, b, y, flags, qcols, qs, NULL);
    }
    ln_args ln = {g, gb, eps, ln_out, NULL};
    return linear_impl(stream, x, M, K, W, wfmt, scales, N, b, y, flags, qcols, qs, &ln);
}

extern "C" int mtk_ln_linear(void *stream, const float *x, int M, int K, const float *g, const float *gb, float eps,
                             float *ln_out, const void *W, int wfmt, const float *scales, int N, const float *b,
                             float *y, int flags, int qcols, float qs) {
    return ln_linear_impl(stream, x, M, K, g, gb, eps, ln_out, W, wfmt, scales, N, b, y, flags, qcols, qs, NULL);
}

extern "C" int mtk_ln_linear_folded(void *stream, const float *x, int M, int K, const float *g, const float *gb,
                                    float eps, float *ln_out, const void *W, int wfmt, const float *scales, int N,
                                    const float *b, float *y, int flags, int qcols, float qs, const float *rc) {
    return ln_linear_impl(stream, x, M, K, g, gb, eps, ln_out, W, wfmt, scales, N, b, y, flags, qcols, qs, rc);
}

extern "C" int mtk_ln_fold_prepare(void *stream, const void *W, int wfmt, const float *scales, int N, int K,
                                   const float *g, const float *gb, float *tmp, float *rc) {
    cudaStream_t st = (cudaStream_t)stream;
    if (cudaMemcpyAsync(tmp, g, (size_t)K * sizeof(float), cudaMemcpyDeviceToDevice, st) != cudaSuccess ||
        cudaMemcpyAsync(tmp + K, gb, (size_t)K * sizeof(float), cudaMemcpyDeviceToDevice, st) != cudaSuccess)
        return (int)cudaGetLastError();
    /* rows g and b through the GEMV itself: rc = [g; b] W^T, scale included */
    return linear_impl(stream, tmp, 2, K, W, wfmt, scales, N, NULL, rc, 0, 0, 1.0f, NULL);
}

/* ---------------- LayerNorm (mean and variance in double, as the CPU) ---------------- */

__global__ void layernorm_kernel(const float *x, int D, const float *g, const float *b, float eps, float *y, int act) {
    pdl_launch_dependents();
    pdl_wait();
    __shared__ double sh[32];
    const float *xr = x + (size_t)blockIdx.x * D;
    float *yr = y + (size_t)blockIdx.x * D;
    double s = 0.0;
    for (int i = threadIdx.x; i < D; i += blockDim.x) s += xr[i];
    double mean = block_sum(s, sh) / D;
    double v = 0.0;
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        double d = (double)xr[i] - mean;
        v += d * d;
    }
    v = block_sum(v, sh);
    float rstd = (float)(1.0 / sqrt(v / D + (double)eps));
    float mf = (float)mean;
    __syncthreads(); /* y may equal x: every read above is done */
    for (int i = threadIdx.x; i < D; i += blockDim.x)
        yr[i] = act ? bf16_round(ln_val(xr[i], mf, rstd, g[i], b[i])) : ln_val(xr[i], mf, rstd, g[i], b[i]);
}

/* The same arithmetic in the same order with the row read once into
 * registers (D <= 256 * LN_REG): one pass over memory instead of three
 * (ln_reg_row, shared with the step program). */
__global__ void __launch_bounds__(256) layernorm_reg_kernel(const float *x, int D, const float *g, const float *b,
                                                            float eps, float *y, int act) {
    pdl_launch_dependents();
    pdl_wait();
    __shared__ double sh[32];
    ln_reg_row(x + (size_t)blockIdx.x * D, D, g, b, eps, y + (size_t)blockIdx.x * D, sh, act != 0);
}

extern "C" int mtk_layernorm(void *stream, const float *x, int M, int D, const float *g, const float *b, float eps,
                             float *y, int act_bf16) {
    if (M <= 0) return 0;
    if (D <= 256 * LN_REG) launch((cudaStream_t)stream, M, 256, 0, layernorm_reg_kernel, x, D, g, b, eps, y, act_bf16);
    else launch((cudaStream_t)stream, M, 256, 0, layernorm_kernel, x, D, g, b, eps, y, act_bf16);
    return launch_status();
}

/* ---------------- attention: one block per (head, row) ---------------- */

#define ATT_THREADS 128
/* Keys and values of the first ATT_PRE positions of a (head, row) are
 * copied into shared memory before pdl_wait: during a decode step every
 * position but the last was written by earlier steps (self-attention) or
 * by the encoder (cross-attention), so the copy overlaps the previous
 * kernel and the DRAM round trips leave the critical path. The last
 * position (this step's key and value) and any beyond ATT_PRE are read
 * after the wait. Rows in shared memory are padded to hd + 4 floats so
 * that the threads' 16-byte reads of different keys hit different banks. */
#define ATT_PRE 64

/* One attention score: the query (shared memory) . one key, in one fixed
 * order (16-byte loads where aligned). Both attention kernels use it, which
 * is part of why they give the same bits. Keys may have been written this
 * step: plain loads, no __ldg (gemv_kernel). */
__device__ __forceinline__ float att_score(const float *qs, const float *kj, int hd, bool vec) {
    float d = 0.0f;
    if (vec) {
#pragma unroll 4
        for (int i = 0; i < hd; i += 4) {
            float4 kv = *(const float4 *)(kj + i);
            d = fmaf(qs[i], kv.x, d);
            d = fmaf(qs[i + 1], kv.y, d);
            d = fmaf(qs[i + 2], kv.z, d);
            d = fmaf(qs[i + 3], kv.w, d);
        }
    } else {
        for (int i = 0; i < hd; i++) d = fmaf(qs[i], kj[i], d);
    }
    return d;
}

/* Decode-size attention is latency-bound (a handful of keys per head), so
 * each thread computes whole dot products (one key each, 16-byte loads in
 * flight together) and the weighted sum over values is split between
 * ATT_THREADS / head_dim groups of keys, added in group order at the end. */
template <bool INL>
__global__ void __launch_bounds__(ATT_THREADS) attention_kernel(int hd, const float *q, int q_stride,
                                                                 const float *const *kp, const float *const *vp,
                                                                 const int *kv_len, const mtk_kv_rows inl,
                                                                 int kv_stride, float *out, int out_stride,
                                                                 int pre_cap, int all_old, const mtk_new_kv nkv,
                                                                 int act) {
    /* [pre_cap][hd + 4] keys, [pre_cap][hd + 4] values, [max_kv] scores,
     * [hd] query, [ATT_THREADS] partial outputs */
    extern __shared__ __align__(16) float att_sm[];
    __shared__ float red[32];
    __shared__ double redd[32];
    pdl_launch_dependents();
    /* the arguments (kernel parameters or the step's argument block, which
     * was uploaded before the step's first kernel) and the old positions */
    const int h = blockIdx.x, r = blockIdx.y, n = INL ? inl.len[r] : kv_len[r];
    const float *k = (INL ? inl.k[r] : kp[r]) + (size_t)h * hd, *v = (INL ? inl.v[r] : vp[r]) + (size_t)h * hd;
    const bool vec = ((hd | kv_stride) & 3) == 0 && ((uintptr_t)k & 15) == 0 && ((uintptr_t)v & 15) == 0;
    const int ps = hd + 4;
    /* positions copied before the wait: all of them when every one was
     * written before the step (all_old: cross-attention), else all but the
     * last (this step's, which a folded cache write brings below) */
    int npre = vec ? min(all_old ? n : n - 1, pre_cap) : 0;
    float *ks = att_sm, *vs = ks + (size_t)pre_cap * ps, *sc = vs + (size_t)pre_cap * ps;
    {
        const int cpr = hd / 4; /* 16-byte chunks per row */
        for (int c = threadIdx.x; c < npre * cpr; c += blockDim.x) {
            int j = c / cpr, i = (c % cpr) * 4;
            cp_async16(ks + (size_t)j * ps + i, k + (size_t)j * kv_stride + i);
            cp_async16(vs + (size_t)j * ps + i, v + (size_t)j * kv_stride + i);
        }
    }
    pdl_wait();
    if (nkv.k) {
        /* the decoder's cache write folded in (mt_attn_args.new_k): this
         * block's (head, row) slice of the last position, from the QKV
         * projection into the caches. Where that position has a row in
         * shared memory it goes there too, so the dot products and the
         * weighted sum never wait for a read back of what was just written
         * (one L2 round trip fewer on the step's critical path); otherwise
         * the __syncthreads below makes the block's own writes visible to
         * its reads of that position. */
        size_t src = (size_t)r * nkv.stride + (size_t)h * hd, dst = (size_t)(n - 1) * kv_stride;
        const bool to_smem = vec && npre == n - 1 && n - 1 < pre_cap;
        for (int i = threadIdx.x; i < hd; i += blockDim.x) {
            float kn = nkv.k[src + i], vn = nkv.v[src + i];
            ((float *)k)[dst + i] = kn;
            ((float *)v)[dst + i] = vn;
            if (to_smem) ks[(size_t)(n - 1) * ps + i] = kn, vs[(size_t)(n - 1) * ps + i] = vn;
        }
        if (to_smem) npre = n;
    }
    float *qs = sc + n, *part = qs + hd;
    const float *qr = q + (size_t)r * q_stride + (size_t)h * hd;
    for (int i = threadIdx.x; i < hd; i += blockDim.x) qs[i] = qr[i];
    cp_async_wait_all();
    __syncthreads();
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        const float *kj = j < npre ? ks + (size_t)j * ps : k + (size_t)j * kv_stride;
        sc[j] = att_score(qs, kj, hd, vec);
    }
    __syncthreads();
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < n; j += blockDim.x) mx = fmaxf(mx, sc[j]);
    mx = block_max(mx, red);
    double sum = 0.0;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        float e = expf(sc[j] - mx);
        sc[j] = e;
        sum += e;
    }
    sum = block_sum(sum, redd);
    float inv = (float)(1.0 / sum);
    if (hd <= (int)blockDim.x) {
        int G = (int)blockDim.x / hd, i = (int)threadIdx.x % hd, g = (int)threadIdx.x / hd;
        float o = 0.0f;
        if (g < G) {
#pragma unroll 4
            for (int j = g; j < n; j += G)
                o = fmaf(sc[j] * inv, j < npre ? vs[(size_t)j * ps + i] : v[(size_t)j * kv_stride + i], o);
        }
        part[threadIdx.x] = o;
        __syncthreads();
        if (g == 0) {
            float t = part[i];
            for (int u = 1; u < G; u++) t += part[u * hd + i];
            out[(size_t)r * out_stride + (size_t)h * hd + i] = act ? bf16_round(t) : t;
        }
    } else {
        for (int i = threadIdx.x; i < hd; i += blockDim.x) {
            float o = 0.0f;
            for (int j = 0; j < n; j++)
                o = fmaf(sc[j] * inv, j < npre ? vs[(size_t)j * ps + i] : v[(size_t)j * kv_stride + i], o);
            out[(size_t)r * out_stride + (size_t)h * hd + i] = act ? bf16_round(o) : o;
        }
    }
}

/* The same attention in one warp per (head, row), for head sizes of 32,
 * 64 and 128 (NLLB's 64): no block barriers or shared-memory reductions on
 * the step's critical path (attention_kernel's 128 threads pay seven
 * __syncthreads and two block reductions for a few dozen keys), and the
 * same bits as attention_kernel. Lane l takes the keys attention_kernel's
 * thread l, l + 32, l + 64 and l + 96 took (the same dot products, each in
 * its order); the softmax sum keeps that kernel's order exactly: per
 * 32-key "warp" c of the 128 threads, each thread's keys t, t + 128, ...
 * in sequence, the same xor tree, then the warps' sums in order (a warp
 * without keys adds an exact 0); the weighted sum keeps its G =
 * ATT_THREADS / hd interleaved groups of keys, added in group order. */
template <bool INL, int HD>
__global__ void __launch_bounds__(WARP) attention_warp_kernel(int hd_unused, const float *q, int q_stride,
                                                              const float *const *kp, const float *const *vp,
                                                              const int *kv_len, const mtk_kv_rows inl,
                                                              int kv_stride, float *out, int out_stride, int pre_cap,
                                                              int all_old, const mtk_new_kv nkv, int act) {
    constexpr int G = ATT_THREADS / HD, DL = HD / WARP, NW = ATT_THREADS / WARP;
    extern __shared__ __align__(16) float att_sm[];
    (void)hd_unused;
    pdl_launch_dependents();
    const int lane = (int)threadIdx.x;
    const int h = blockIdx.x, r = blockIdx.y, n = INL ? inl.len[r] : kv_len[r];
    const float *k = (INL ? inl.k[r] : kp[r]) + (size_t)h * HD, *v = (INL ? inl.v[r] : vp[r]) + (size_t)h * HD;
    const bool vec = (kv_stride & 3) == 0 && ((uintptr_t)k & 15) == 0 && ((uintptr_t)v & 15) == 0;
    const int ps = HD + 4;
    int npre = vec ? min(all_old ? n : n - 1, pre_cap) : 0;
    float *ks = att_sm, *vs = ks + (size_t)pre_cap * ps, *sc = vs + (size_t)pre_cap * ps;
    {
        constexpr int cpr = HD / 4;
        for (int c = lane; c < npre * cpr; c += WARP) {
            int j = c / cpr, i = (c % cpr) * 4;
            cp_async16(ks + (size_t)j * ps + i, k + (size_t)j * kv_stride + i);
            cp_async16(vs + (size_t)j * ps + i, v + (size_t)j * kv_stride + i);
        }
    }
    pdl_wait();
    float *qs = sc + n;
    const float *qr = q + (size_t)r * q_stride + (size_t)h * HD;
    if (nkv.k) {
        size_t src = (size_t)r * nkv.stride + (size_t)h * HD, dst = (size_t)(n - 1) * kv_stride;
        const bool to_smem = vec && npre == n - 1 && n - 1 < pre_cap;
        /* every load first (the new key and value, the query), then the
         * stores: one L2 round trip, not two */
        float kn[DL], vn[DL], qv[DL];
#pragma unroll
        for (int m = 0; m < DL; m++) {
            const int i = lane + m * WARP;
            kn[m] = nkv.k[src + i], vn[m] = nkv.v[src + i], qv[m] = qr[i];
        }
#pragma unroll
        for (int m = 0; m < DL; m++) {
            const int i = lane + m * WARP;
            ((float *)k)[dst + i] = kn[m];
            ((float *)v)[dst + i] = vn[m];
            if (to_smem) ks[(size_t)(n - 1) * ps + i] = kn[m], vs[(size_t)(n - 1) * ps + i] = vn[m];
            qs[i] = qv[m];
        }
        if (to_smem) npre = n;
    } else {
#pragma unroll
        for (int m = 0; m < DL; m++) qs[lane + m * WARP] = qr[lane + m * WARP];
    }
    cp_async_wait_all();
    __syncwarp(); /* the query, the prefetched keys and values, this step's key and value, for every lane */
    float mx = -INFINITY;
    for (int j = lane; j < n; j += WARP) {
        const float *kj = j < npre ? ks + (size_t)j * ps : k + (size_t)j * kv_stride;
        const float d = att_score(qs, kj, HD, vec);
        sc[j] = d;
        mx = fmaxf(mx, d);
    }
    for (int o = WARP / 2; o > 0; o /= 2) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    __syncwarp(); /* every score written */
    double sum = 0.0;
#pragma unroll
    for (int c = 0; c < NW; c++) {
        if (c * WARP >= n) break; /* this 32-key group and all later ones are empty: they add an exact 0 */
        double t = 0.0;
        for (int j = c * WARP + lane; j < n; j += ATT_THREADS) {
            float e = expf(sc[j] - mx);
            sc[j] = e;
            t += e;
        }
        for (int o = WARP / 2; o > 0; o /= 2) t += __shfl_xor_sync(0xffffffffu, t, o);
        sum += t;
    }
    const float inv = (float)(1.0 / sum);
    __syncwarp(); /* every exp written */
#pragma unroll
    for (int m = 0; m < DL; m++) {
        const int i = lane + m * WARP;
        float o[G];
#pragma unroll
        for (int g = 0; g < G; g++) {
            o[g] = 0.0f;
#pragma unroll 4
            for (int j = g; j < n; j += G)
                o[g] = fmaf(sc[j] * inv, j < npre ? vs[(size_t)j * ps + i] : v[(size_t)j * kv_stride + i], o[g]);
        }
        float t = o[0];
#pragma unroll
        for (int g = 1; g < G; g++) t += o[g];
        out[(size_t)r * out_stride + (size_t)h * HD + i] = act ? bf16_round(t) : t;
    }
}

/* One warp per (head, row) where the head size allows (attention_warp_kernel);
 * mtk_attention_warp_enable(0) or STTS_CUDA_ATT_WARP=0: the 128-thread
 * kernel everywhere (the comparison; tests check both give the same bits). */
static int g_att_warp = -1;
static unsigned long g_att_warp_calls;
extern "C" void mtk_attention_warp_enable(int on) { g_att_warp = on != 0; }
extern "C" unsigned long mtk_attention_warp_calls(void) { return g_att_warp_calls; }
static int att_warp_on(void) {
    if (g_att_warp < 0) g_att_warp = env_flag("STTS_CUDA_ATT_WARP", 1);
    return g_att_warp;
}

template <bool INL>
static int attention_launch(cudaStream_t st, int rows, int heads, int head_dim, const float *q, int q_stride,
                            const float *const *k, const float *const *v, const int *kv_len, const mtk_kv_rows *inl,
                            int kv_stride, float *out, int out_stride, int max_kv, int old_kv,
                            const mtk_new_kv *nkv, int act_bf16) {
    if (rows <= 0) return 0;
    /* the prefetch only for a decode step's attention (old_kv: every position
     * but the last written before the step) and where a padded row of keys
     * fits the reads' pattern (head_dim <= 128) */
    int pre_cap = old_kv && head_dim % 4 == 0 && head_dim <= 128 ? (max_kv < ATT_PRE ? max_kv : ATT_PRE) : 0;
    size_t smem = (2 * (size_t)pre_cap * (head_dim + 4) + (size_t)max_kv + (size_t)head_dim + ATT_THREADS) *
                  sizeof(float);
    if (smem > SMEM_OPT_IN) {
        cudaError_t e =
            cudaFuncSetAttribute(attention_kernel<INL>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) return (int)e;
    }
    dim3 grid((unsigned)heads, (unsigned)rows);
    static const mtk_kv_rows none = {};
    static const mtk_new_kv no_new = {};
    if (att_warp_on() && (head_dim == 32 || head_dim == 64 || head_dim == 128)) {
        void (*kern)(int, const float *, int, const float *const *, const float *const *, const int *,
                     const mtk_kv_rows, int, float *, int, int, int, const mtk_new_kv, int) =
            head_dim == 64    ? attention_warp_kernel<INL, 64>
            : head_dim == 128 ? attention_warp_kernel<INL, 128>
                              : attention_warp_kernel<INL, 32>;
        if (smem > SMEM_OPT_IN) {
            cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
            if (e != cudaSuccess) return (int)e;
        }
        g_att_warp_calls++;
        launch(st, grid, WARP, smem, kern, head_dim, q, q_stride, k, v, kv_len, inl ? *inl : none, kv_stride, out,
               out_stride, pre_cap, old_kv == 2 ? 1 : 0, nkv ? *nkv : no_new, act_bf16);
        return launch_status();
    }
    launch(st, grid, ATT_THREADS, smem, attention_kernel<INL>, head_dim, q, q_stride, k, v, kv_len, inl ? *inl : none,
           kv_stride, out, out_stride, pre_cap, old_kv == 2 ? 1 : 0, nkv ? *nkv : no_new, act_bf16);
    return launch_status();
}

extern "C" int mtk_attention(void *stream, int rows, int heads, int head_dim, const float *q, int q_stride,
                             const float *const *k, const float *const *v, const int *kv_len, int kv_stride,
                             float *out, int out_stride, int max_kv, int old_kv, const mtk_new_kv *nkv, int act_bf16) {
    return attention_launch<false>((cudaStream_t)stream, rows, heads, head_dim, q, q_stride, k, v, kv_len, NULL,
                                   kv_stride, out, out_stride, max_kv, old_kv, nkv, act_bf16);
}

extern "C" int mtk_attention_inline(void *stream, int rows, int heads, int head_dim, const float *q, int q_stride,
                                    const mtk_kv_rows *a, int kv_stride, float *out, int out_stride, int max_kv,
                                    int old_kv, const mtk_new_kv *nkv, int act_bf16) {
    if (rows > MTK_INLINE_ROWS) return (int)cudaErrorInvalidValue;
    return attention_launch<true>((cudaStream_t)stream, rows, heads, head_dim, q, q_stride, NULL, NULL, NULL, a,
                                  kv_stride, out, out_stride, max_kv, old_kv, nkv, act_bf16);
}

/* ---------------- embedding + positions ---------------- */

/* feed (not NULL): ids[r] is a row of the last selection, whose chosen id
 * is feed[ids[r]] (greedy ahead: the id never went to the host); a pad id
 * takes the pad position, as forward.c's position rule. */
template <bool INL>
__global__ void embed_kernel(const void *table, int fmt, const float *tsc, int D, const int32_t *ids, const int *pos,
                             const mtk_embed_rows inl, float scale, int pad_idx, const float *pos_table, float *out,
                             int act, const int32_t *feed) {
    pdl_launch_dependents();
    pdl_wait();
    int r = blockIdx.x;
    float *o = out + (size_t)r * D;
    int p = INL ? inl.pos[r] : pos[r];
    int idv = INL ? inl.ids[r] : ids[r];
    if (feed) {
        idv = feed[idv];
        if (idv == pad_idx) p = pad_idx;
    }
    size_t id = (size_t)idv;
    const float *pt = p == pad_idx ? NULL : pos_table + (size_t)p * D;
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        float v = __fmul_rn(table_elem(table, fmt, tsc, id, D, i), scale);
        if (act) v = bf16_round(v);
        if (pt) v = __fadd_rn(v, pt[i]);
        o[i] = act ? bf16_round(v) : v;
    }
}

extern "C" int mtk_embed(void *stream, const void *table, int tfmt, const float *tscales, int D, const int32_t *ids,
                         const int *pos, int rows, float scale, int pad_idx, const float *pos_table, float *out,
                         int act_bf16, const int32_t *feed) {
    if (rows <= 0) return 0;
    static const mtk_embed_rows none = {};
    launch((cudaStream_t)stream, rows, 256, 0, embed_kernel<false>, table, tfmt, tscales, D, ids, pos, none, scale,
           pad_idx, pos_table, out, act_bf16, feed);
    return launch_status();
}

extern "C" int mtk_embed_inline(void *stream, const void *table, int tfmt, const float *tscales, int D,
                                const mtk_embed_rows *a, int rows, float scale, int pad_idx, const float *pos_table,
                                float *out, int act_bf16) {
    if (rows <= 0) return 0;
    if (rows > MTK_INLINE_ROWS) return (int)cudaErrorInvalidValue;
    launch((cudaStream_t)stream, rows, 256, 0, embed_kernel<true>, table, tfmt, tscales, D, (const int32_t *)NULL,
           (const int *)NULL, *a, scale, pad_idx, pos_table, out, act_bf16, (const int32_t *)NULL);
    return launch_status();
}

__global__ void gather_kernel(const uint32_t *src, const int32_t *ids, size_t row_words, uint32_t *dst) {
    pdl_launch_dependents();
    pdl_wait();
    const uint32_t *s = src + (size_t)ids[blockIdx.x] * row_words;
    uint32_t *d = dst + (size_t)blockIdx.x * row_words;
    for (size_t i = threadIdx.x; i < row_words; i += blockDim.x) d[i] = s[i];
}

extern "C" int mtk_gather_rows(void *stream, const void *src, const int32_t *ids, int n, size_t row_bytes, void *dst) {
    if (n <= 0) return 0;
    if (row_bytes % 4) return (int)cudaErrorInvalidValue;
    launch((cudaStream_t)stream, n, 256, 0, gather_kernel, (const uint32_t *)src, ids, row_bytes / 4, (uint32_t *)dst);
    return launch_status();
}

/* pairs[2i] = dst, pairs[2i + 1] = src of copy i (n floats each), read on
 * the device: a recorded step's cache writes, whose addresses change per
 * step, replay from one graph. One block row per copy. */
__global__ void copy_list_kernel(const float *const *pairs, size_t n) {
    pdl_launch_dependents();
    pdl_wait();
    float *d = (float *)pairs[2 * blockIdx.y];
    const float *s = pairs[2 * blockIdx.y + 1];
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        d[i] = s[i];
}

extern "C" int mtk_copy_list(void *stream, const float *const *pairs, int count, size_t n) {
    if (count <= 0 || n == 0) return 0;
    if (count > 65535) return (int)cudaErrorInvalidValue;
    unsigned bx = (unsigned)((n + 255) / 256);
    if (bx > 1024) bx = 1024;
    launch((cudaStream_t)stream, dim3(bx, (unsigned)count), 256, 0, copy_list_kernel, pairs, n);
    return launch_status();
}

__global__ void scale_kernel(float *x, int D, int stride, float s) {
    pdl_launch_dependents();
    pdl_wait();
    float *xr = x + (size_t)blockIdx.x * stride;
    for (int i = threadIdx.x; i < D; i += blockDim.x) xr[i] = __fmul_rn(xr[i], s);
}

extern "C" int mtk_scale_cols(void *stream, float *x, int rows, int D, int stride, float s) {
    if (rows <= 0) return 0;
    launch((cudaStream_t)stream, rows, 256, 0, scale_kernel, x, D, stride, s);
    return launch_status();
}

/* ---------------- argmax and top-k ---------------- */

/* (value, index) pairs: larger value wins, then lower index; NaN never wins. */
__device__ __forceinline__ bool better(float v, int i, float bv, int bi) {
    return v > bv || (v == bv && i < bi && i >= 0) || (bi < 0 && v == v);
}

__device__ void block_argmax(float &bv, int &bi, float *shv, int *shi) {
    int lane = threadIdx.x % WARP, w = threadIdx.x / WARP, nw = blockDim.x / WARP;
    for (int o = WARP / 2; o > 0; o /= 2) {
        float ov = __shfl_xor_sync(0xffffffffu, bv, o);
        int oi = __shfl_xor_sync(0xffffffffu, bi, o);
        if (better(ov, oi, bv, bi)) bv = ov, bi = oi;
    }
    __syncthreads();
    if (lane == 0) shv[w] = bv, shi[w] = bi;
    __syncthreads();
    bv = -INFINITY, bi = -1;
    for (int i = 0; i < nw; i++)
        if (better(shv[i], shi[i], bv, bi)) bv = shv[i], bi = shi[i];
}

__global__ void argmax_kernel(const float *logits, int V, int32_t *ids) {
    pdl_launch_dependents();
    pdl_wait();
    __shared__ float shv[32];
    __shared__ int shi[32];
    const float *l = logits + (size_t)blockIdx.x * V;
    float bv = -INFINITY;
    int bi = -1;
    for (int i = threadIdx.x; i < V; i += blockDim.x)
        if (better(l[i], i, bv, bi)) bv = l[i], bi = i;
    block_argmax(bv, bi, shv, shi);
    if (threadIdx.x == 0) ids[blockIdx.x] = bi < 0 ? 0 : bi;
}

extern "C" int mtk_argmax(void *stream, const float *logits, int rows, int V, int32_t *ids) {
    if (rows <= 0) return 0;
    launch((cudaStream_t)stream, rows, 1024, 0, argmax_kernel, logits, V, ids);
    return launch_status();
}

__global__ void topk_kernel(const float *logits, int V, int k, float *val, int32_t *idx) {
    pdl_launch_dependents();
    pdl_wait();
    __shared__ float shv[32];
    __shared__ int shi[32];
    __shared__ double shd[32];
    __shared__ int chosen[16];
    const float *l = logits + (size_t)blockIdx.x * V;
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, l[i]);
    mx = block_max(mx, shv);
    double s = 0.0;
    for (int i = threadIdx.x; i < V; i += blockDim.x) s += exp((double)l[i] - (double)mx);
    s = block_sum(s, shd);
    float lse = (float)((double)mx + log(s));
    for (int c = 0; c < k; c++) {
        float bv = -INFINITY;
        int bi = -1;
        for (int i = threadIdx.x; i < V; i += blockDim.x) {
            bool taken = false;
            for (int t = 0; t < c; t++) taken |= chosen[t] == i;
            if (!taken && better(l[i], i, bv, bi)) bv = l[i], bi = i;
        }
        block_argmax(bv, bi, shv, shi);
        if (threadIdx.x == 0) {
            chosen[c] = bi;
            val[(size_t)blockIdx.x * k + c] = bi < 0 ? -INFINITY : bv - lse;
            idx[(size_t)blockIdx.x * k + c] = bi;
        }
        __syncthreads();
    }
}

/* The search's selection (backend.h select_topk): per row the k largest
 * logits (ties: lower column) and their log-softmax values computed as the
 * CPU search computes them: lse = (float)log(sum in double of expf(x - mx)),
 * lp = (x - mx) - lse. expf is taken as the correctly rounded float of a
 * double exp (glibc's expf is correctly rounded; CUDA's float expf is not).
 *
 * A row of the full vocabulary is 256206 logits: one block per row (the
 * first version) spent ~0.1 ms per step on one SM in the double exps. The
 * row is now cut into SEL_BLOCKS chunks of SEL_CHUNK, one block each, in two
 * kernels: select_part keeps each chunk's top k (block_topk); select_sum
 * takes the row's max from the chunks' bests, sums its chunk's exps, and the
 * row's last block to finish (atomic count) adds the chunks' sums in chunk
 * order (deterministic) and merges the chunks' lists (block_topk again).
 * The double sum's order differs from the CPU's; its float log does not in
 * practice (test_cuda: within 2 ulps). */
#define SEL_THREADS 512
#define SEL_MAX_K 16
#define SEL_CHUNK 2048
#define SEL_MAX_BLOCKS 128
#define SEL_SUM_E ((SEL_MAX_BLOCKS * SEL_MAX_K + SEL_THREADS - 1) / SEL_THREADS)

static int sel_blocks(int V) {
    int b = (V + SEL_CHUNK - 1) / SEL_CHUNK;
    return b < 1 ? 1 : b > SEL_MAX_BLOCKS ? SEL_MAX_BLOCKS : b;
}

struct sel_scratch {
    int *count;   /* [rows] blocks of select_sum done */
    double *psum; /* [rows][B] */
    float *pv;    /* [rows][B][k] */
    int *pi;      /* [rows][B][k], -1: none */
};

static sel_scratch sel_layout(void *base, int rows, int V, int k) {
    size_t B = (size_t)sel_blocks(V), R = (size_t)rows, o = 0;
    unsigned char *p = (unsigned char *)base;
    sel_scratch s;
    s.count = (int *)(p + o), o += (R * sizeof(int) + 15) & ~(size_t)15;
    s.psum = (double *)(p + o), o += R * B * sizeof(double);
    s.pv = (float *)(p + o), o += R * B * (size_t)k * sizeof(float);
    s.pi = (int *)(p + o), o += R * B * (size_t)k * sizeof(int);
    return s;
}

extern "C" size_t mtk_select_scratch_bytes(int rows, int V, int k) {
    size_t B = (size_t)sel_blocks(V), R = (size_t)(rows > 0 ? rows : 0);
    return ((R * sizeof(int) + 15) & ~(size_t)15) + R * B * sizeof(double) + 2 * R * B * (size_t)k * 4;
}

#define SEL_WARPS (SEL_THREADS / WARP)
#define SEL_MERGE ((SEL_WARPS * SEL_MAX_K + WARP - 1) / WARP) /* warp candidates per lane of the merge */

/* Arg-max under better() across a warp; every lane gets the result. better
 * is a strict total order on present candidates (NaNs are never loaded), so
 * the butterfly gives all lanes the same winner. */
__device__ __forceinline__ void warp_argmax(float &bv, int &bi) {
    for (int o = WARP / 2; o > 0; o /= 2) {
        float ov = __shfl_xor_sync(0xffffffffu, bv, o);
        int oi = __shfl_xor_sync(0xffffffffu, bi, o);
        if (better(ov, oi, bv, bi)) bv = ov, bi = oi;
    }
}

/* The block's k best of E candidates per thread (index -1: none), best
 * first, into outv/outi (shared or global; written by thread 0 of warp 0).
 * Each warp takes its own k best in k rounds of warp_argmax (shuffles, no
 * barrier), then warp 0 merges the SEL_WARPS x k in k more rounds: one
 * barrier in all. It replaced k rounds of block-wide arg-max (four barriers
 * each) over per-thread sorted lists that lived in local memory (dynamic
 * indexing): 47 us per beam-4 step for k = 8 on the H200. The candidates'
 * indices are distinct, so the winner is removed by its index. */
/* One round: the warp's best remaining candidate (every lane gets it),
 * then removed from the lane that held it. */
template <int E>
__device__ __forceinline__ void warp_take_best(const float (&v)[E], int (&id)[E], float &bv, int &bi) {
    bv = -INFINITY, bi = -1;
#pragma unroll
    for (int e = 0; e < E; e++)
        if (id[e] >= 0 && better(v[e], id[e], bv, bi)) bv = v[e], bi = id[e];
    warp_argmax(bv, bi);
#pragma unroll
    for (int e = 0; e < E; e++)
        if (bi >= 0 && id[e] == bi) id[e] = -1;
}

template <int E>
__device__ void block_topk(float (&v)[E], int (&id)[E], int k, float *shv /* [SEL_WARPS * k] */, int *shi,
                           float *outv, int *outi) {
    const int lane = (int)threadIdx.x % WARP, w = (int)threadIdx.x / WARP;
    float bv;
    int bi;
    for (int c = 0; c < k; c++) {
        warp_take_best<E>(v, id, bv, bi);
        if (lane == 0) shv[w * k + c] = bv, shi[w * k + c] = bi;
    }
    __syncthreads();
    if (w != 0) return;
    const int nc = SEL_WARPS * k;
    float cv[SEL_MERGE];
    int ci[SEL_MERGE];
#pragma unroll
    for (int j = 0; j < SEL_MERGE; j++) {
        int q = lane + j * WARP;
        cv[j] = q < nc ? shv[q] : -INFINITY, ci[j] = q < nc ? shi[q] : -1;
    }
    for (int c = 0; c < k; c++) {
        warp_take_best<SEL_MERGE>(cv, ci, bv, bi);
        if (lane == 0) outv[c] = bv, outi[c] = bi;
    }
}

/* E columns a thread: chunk <= E * SEL_THREADS (E 4 up to 262144 logits a
 * row, 16 up to 1048576: mtk_select_topk). */
template <int E>
__global__ void __launch_bounds__(SEL_THREADS) select_part(const float *logits, int V, int k, int chunk,
                                                             sel_scratch sc) {
    __shared__ float shv[SEL_WARPS * SEL_MAX_K];
    __shared__ int shi[SEL_WARPS * SEL_MAX_K];
    pdl_launch_dependents();
    pdl_wait();
    const int B = gridDim.x, b = blockIdx.x, r = blockIdx.y;
    const float *l = logits + (size_t)r * V;
    const int i0 = b * chunk, i1 = min(V, i0 + chunk);
    if (b == 0 && threadIdx.x == 0) sc.count[r] = 0; /* select_sum runs after this kernel */
    float v[E];
    int id[E];
#pragma unroll
    for (int e = 0; e < E; e++) {
        int i = i0 + (int)threadIdx.x + e * SEL_THREADS;
        v[e] = i < i1 ? l[i] : -INFINITY;
        id[e] = i < i1 && v[e] == v[e] ? i : -1; /* NaN never wins */
    }
    block_topk<E>(v, id, k, shv, shi, sc.pv + ((size_t)r * B + b) * k, sc.pi + ((size_t)r * B + b) * k);
}

__global__ void __launch_bounds__(SEL_THREADS) select_sum(const float *logits, int V, int k, int chunk,
                                                            sel_scratch sc, int32_t *idx, float *lp,
                                                            const int32_t *map, int32_t *feed) {
    __shared__ float shv[32];
    __shared__ double shd[32];
    __shared__ int last;
    __shared__ float wv[SEL_WARPS * SEL_MAX_K], topv[SEL_MAX_K];
    __shared__ int wi[SEL_WARPS * SEL_MAX_K], topi[SEL_MAX_K];
    pdl_launch_dependents();
    pdl_wait();
    const int B = gridDim.x, b = blockIdx.x, r = blockIdx.y;
    const float *l = logits + (size_t)r * V;
    const float *pv = sc.pv + (size_t)r * B * k;
    const int *pi = sc.pi + (size_t)r * B * k;
    float m = -INFINITY;
    for (int j = threadIdx.x; j < B; j += blockDim.x)
        if (pi[(size_t)j * k] >= 0) m = fmaxf(m, pv[(size_t)j * k]);
    const float mx = block_max(m, shv);
    const int i0 = b * chunk, i1 = min(V, i0 + chunk);
    double s = 0.0;
    for (int i = i0 + (int)threadIdx.x; i < i1; i += blockDim.x) s += (double)(float)exp((double)__fsub_rn(l[i], mx));
    s = block_sum(s, shd);
    if (threadIdx.x == 0) {
        sc.psum[(size_t)r * B + b] = s;
        __threadfence();
        last = atomicAdd(&sc.count[r], 1) == B - 1;
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    /* the blocks' partial sums, read in parallel: one thread adding 126
     * L2 reads in a loop waited on each in turn (~10 us of a step) */
    double part = 0.0;
    for (int j = threadIdx.x; j < B; j += blockDim.x) part += __ldcg(sc.psum + (size_t)r * B + j);
    const double tot = block_sum(part, shd);
    /* the chunks' lists: B x k <= SEL_MAX_BLOCKS * SEL_MAX_K candidates, SEL_SUM_E a thread */
    const int nc = B * k;
    float v[SEL_SUM_E];
    int id[SEL_SUM_E];
#pragma unroll
    for (int e = 0; e < SEL_SUM_E; e++) {
        int j = (int)threadIdx.x + e * SEL_THREADS;
        v[e] = j < nc ? __ldcg(pv + j) : -INFINITY, id[e] = j < nc ? __ldcg(pi + j) : -1;
    }
    block_topk<SEL_SUM_E>(v, id, k, wv, wi, topv, topi);
    if (threadIdx.x != 0) return;
    const float lse = (float)log(tot);
    for (int c = 0; c < k; c++) {
        const int bi = topi[c];
        idx[(size_t)r * k + c] = bi < 0 ? 0 : bi;
        lp[(size_t)r * k + c] = bi < 0 ? -INFINITY : __fsub_rn(__fsub_rn(topv[c], mx), lse);
        if (c == 0 && feed) {
            int col = bi < 0 ? 0 : bi;
            feed[r] = map ? map[col] : col;
        }
    }
}

extern "C" int mtk_select_topk(void *stream, const float *logits, int rows, int V, int k, int32_t *idx, float *lp,
                               void *scratch, const int32_t *map, int32_t *feed) {
    if (rows <= 0) return 0;
    if (k < 1 || k > SEL_MAX_K || V < 1 || rows > 65535 || !scratch) return (int)cudaErrorInvalidValue;
    int B = sel_blocks(V), chunk = (V + B - 1) / B;
    sel_scratch sc = sel_layout(scratch, rows, V, k);
    cudaStream_t st = (cudaStream_t)stream;
    if (chunk <= 4 * SEL_THREADS)
        launch(st, dim3((unsigned)B, (unsigned)rows), SEL_THREADS, 0, select_part<4>, logits, V, k, chunk, sc);
    else if (chunk <= 16 * SEL_THREADS)
        launch(st, dim3((unsigned)B, (unsigned)rows), SEL_THREADS, 0, select_part<16>, logits, V, k, chunk, sc);
    else
        return (int)cudaErrorInvalidValue; /* over 1048576 logits a row */
    launch(st, dim3((unsigned)B, (unsigned)rows), SEL_THREADS, 0, select_sum, logits, V, k, chunk, sc, idx, lp, map,
           feed);
    return launch_status();
}

extern "C" int mtk_topk_logsoftmax(void *stream, const float *logits, int rows, int V, int k, float *val,
                                   int32_t *idx) {
    if (rows <= 0) return 0;
    if (k < 1 || k > 16) return (int)cudaErrorInvalidValue;
    launch((cudaStream_t)stream, rows, 1024, 0, topk_kernel, logits, V, k, val, idx);
    return launch_status();
}

/* ---------------- the cross-attention folded into its projections ----------------
 * (kernels.h mtk_cross_fold_*; docs/ENGINE.md "The cross-attention folded").
 * A decode step's cross-attention is three dependent launches: the query's
 * LayerNorm GEMV, the attention over the sentence's S encoder positions,
 * the output projection. The keys and values are fixed for the sentence,
 * so the query projection folds into the keys (M = qs K_h Wq_h: a score is
 * one dot product with LN(x)) and the output projection into the values
 * (Nt = Wo_h V_h^T: the output is a weighted sum of those columns). The
 * step then runs the scores as a LayerNorm GEMV over H * S rows and the
 * softmax and the weighted sum as one more launch (cross_fold_apply_kernel):
 * two dependent launches instead of three. */

#define FOLD_THREADS 128

/* Every layer in one launch, blockIdx.z = 2 * layer + part. Part 0:
 * M[h*S + j][i] = qs sum_e k[j][h*hd + e] Wq[h*hd + e][i] and c[h*S + j] =
 * qs sum_e bq[h*hd + e] k[j][h*hd + e], a thread per column i; part 1:
 * Nt[n][h*S + j] = sum_e Wo[n][h*hd + e] v[j][h*hd + e], a thread per row n.
 * The head's keys (or values) sit in shared memory, every thread reading
 * the same element at once (a broadcast); each thread's weights are loaded
 * FOLD_BATCH at a time, independent loads in flight together (one at a
 * time, a head's 64 dependent L2 round trips made the launch ~40 us). Once
 * per sentence, before its first step. */
#define FOLD_BATCH 16
template <int SB>
__global__ void __launch_bounds__(FOLD_THREADS) cross_fold_prepare_kernel(
    const float *k, const float *v, int kv_stride, size_t kv_layer, int S, int hd, const mtk_fold_weights w, int qfmt,
    int ofmt, float qs, float *M, float *c, float *Nt, size_t m_layer, size_t c_layer) {
    extern __shared__ float fsm[]; /* [S][hd] */
    pdl_launch_dependents();
    pdl_wait();
    const int h = (int)blockIdx.y, D = (int)gridDim.y * hd, HS = (int)gridDim.y * S, l = (int)blockIdx.z / 2;
    const int t = (int)(blockIdx.x * FOLD_THREADS + threadIdx.x);
    const bool folds_q = (blockIdx.z & 1) == 0;
    const float *src = (folds_q ? k : v) + (size_t)l * kv_layer;
    for (int e = threadIdx.x; e < S * hd; e += FOLD_THREADS) {
        int j = e / hd, i = e % hd;
        fsm[e] = src[(size_t)j * kv_stride + (size_t)h * hd + i];
    }
    __syncthreads();
    const float *bq = w.bq[l];
    if (folds_q && blockIdx.x == 0 && (int)threadIdx.x < S) {
        float s = 0.0f;
        for (int e = 0; bq && e < hd; e++) s = fmaf(__ldg(bq + h * hd + e), fsm[threadIdx.x * hd + e], s);
        c[(size_t)l * c_layer + h * S + (int)threadIdx.x] = s * qs;
    }
    if (t >= D) return;
    float acc[SB];
#pragma unroll
    for (int j = 0; j < SB; j++) acc[j] = 0.0f;
    for (int e0 = 0; e0 < hd; e0 += FOLD_BATCH) {
        float wv[FOLD_BATCH];
#pragma unroll
        for (int u = 0; u < FOLD_BATCH; u++) {
            const int e = e0 + u;
            /* Wq[h*hd + e][t] (column t of the head's rows) or Wo[t][h*hd + e] */
            wv[u] = e >= hd ? 0.0f
                    : folds_q ? table_elem(w.wq[l], qfmt, w.qsc[l], (size_t)h * hd + e, D, t)
                              : table_elem(w.wo[l], ofmt, w.osc[l], (size_t)t, D, h * hd + e);
        }
#pragma unroll
        for (int u = 0; u < FOLD_BATCH; u++) {
            if (e0 + u >= hd) break;
#pragma unroll
            for (int j = 0; j < SB; j++)
                if (j < S) acc[j] = fmaf(fsm[j * hd + e0 + u], wv[u], acc[j]);
        }
    }
    if (folds_q) {
        float *Ml = M + (size_t)l * m_layer;
#pragma unroll
        for (int j = 0; j < SB; j++)
            if (j < S) Ml[(size_t)(h * S + j) * D + t] = acc[j] * qs;
    } else {
        float *Nl = Nt + (size_t)l * m_layer;
#pragma unroll
        for (int j = 0; j < SB; j++)
            if (j < S) Nl[(size_t)t * HS + h * S + j] = acc[j];
    }
}

extern "C" int mtk_cross_fold_prepare(void *stream, int layers, const float *k, const float *v, int kv_stride,
                                      size_t kv_layer, int S, int heads, int head_dim, const mtk_fold_weights *w,
                                      int qfmt, int ofmt, float qs, float *M, float *c, float *Nt, size_t m_layer,
                                      size_t c_layer) {
    if (S < 1 || S > MTK_FOLD_MAX_S || heads < 1 || head_dim < 1 || heads > 65535 || layers < 1 ||
        layers > MTK_FOLD_MAX_LAYERS)
        return (int)cudaErrorInvalidValue;
    const int D = heads * head_dim;
    size_t smem = (size_t)S * head_dim * sizeof(float);
    dim3 grid((unsigned)((D + FOLD_THREADS - 1) / FOLD_THREADS), (unsigned)heads, (unsigned)(2 * layers));
    void (*kern)(const float *, const float *, int, size_t, int, int, const mtk_fold_weights, int, int, float, float *,
                 float *, float *, size_t, size_t) =
        S <= 16 ? cross_fold_prepare_kernel<16> : S <= 32 ? cross_fold_prepare_kernel<32> : cross_fold_prepare_kernel<64>;
    if (smem > SMEM_OPT_IN) {
        cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) return (int)e;
    }
    launch((cudaStream_t)stream, grid, FOLD_THREADS, smem, kern, k, v, kv_stride, kv_layer, S, head_dim, *w, qfmt, ofmt,
           qs, M, c, Nt, m_layer, c_layer);
    return launch_status();
}

/* y[r][n] (+)= sum_c Nt[n][c] p[r][c] + bo[n], p[r] the softmax of
 * scores[r] in groups of S (one group per head). As a GEMV: a block's 8
 * rows of Nt (one warp each) are staged before the wait; after it, the
 * block stages the rows' scores, takes each group's softmax (a warp per
 * group: max, exp, sum by shuffles) and the dot products. In the
 * bf16-activation mode the probabilities are rounded to bf16 as HF's bf16
 * model rounds them, and the output as gemv_out and residual_add round. */
template <int R>
__global__ void __launch_bounds__(GEMV_THREADS) cross_fold_apply_kernel(const float *scores, int H, int S,
                                                                        const float *__restrict__ Nt, int D,
                                                                        const float *__restrict__ bo, float *y,
                                                                        int flags) {
    extern __shared__ __align__(16) unsigned char asm_[];
    pdl_launch_dependents();
    const int HS = H * S, wib = (int)(threadIdx.x / WARP), lane = (int)(threadIdx.x % WARP);
    const int n0 = (int)blockIdx.x * 8, n = n0 + wib, rows = D - n0 < 8 ? D - n0 : 8;
    float *tile = (float *)asm_, *ps = tile + (((size_t)8 * HS + 3) & ~(size_t)3);
    copy_to_shared((unsigned char *)tile, (const unsigned char *)(Nt + (size_t)n0 * HS), (size_t)rows * HS * sizeof(float));
    const bool writer = n < D && lane == 0;
    const float bias = writer && bo ? __ldg(bo + n) : 0.0f;
    pdl_wait();
    float yo[R];
#pragma unroll
    for (int r = 0; r < R; r++) yo[r] = writer && (flags & MTK_ACCUM) ? y[(size_t)r * D + n] : 0.0f;
    copy_to_shared((unsigned char *)ps, (const unsigned char *)scores, (size_t)R * HS * sizeof(float));
    cp_async_wait_all();
    __syncthreads();
    for (int g = wib; g < R * H; g += GEMV_THREADS / WARP) { /* group g: row g / H, head g % H */
        float *p = ps + (size_t)g * S;
        float a = lane < S ? p[lane] : -INFINITY, b = lane + WARP < S ? p[lane + WARP] : -INFINITY;
        float mx = fmaxf(a, b);
        for (int o = WARP / 2; o > 0; o /= 2) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
        a = lane < S ? expf(a - mx) : 0.0f;
        b = lane + WARP < S ? expf(b - mx) : 0.0f;
        float sum = a + b;
        for (int o = WARP / 2; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, o);
        const float inv = 1.0f / sum;
        a *= inv, b *= inv;
        if (flags & MTK_ACT_BF16) a = bf16_round(a), b = bf16_round(b);
        if (lane < S) p[lane] = a;
        if (lane + WARP < S) p[lane + WARP] = b;
    }
    __syncthreads();
    if (n >= D) return;
    const float *w = tile + (size_t)wib * HS;
    float acc[R];
#pragma unroll
    for (int r = 0; r < R; r++) acc[r] = 0.0f;
    for (int cc = lane; cc < HS; cc += WARP) {
        const float wv = w[cc];
#pragma unroll
        for (int r = 0; r < R; r++) acc[r] = fmaf(wv, ps[(size_t)r * HS + cc], acc[r]);
    }
#pragma unroll
    for (int r = 0; r < R; r++)
        for (int o = WARP / 2; o > 0; o /= 2) acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], o);
    if (!writer) return;
#pragma unroll
    for (int r = 0; r < R; r++) {
        float v = gemv_out(acc[r], 1.0f, bias, flags, n, 0, 0.0f);
        float *yp = y + (size_t)r * D + n;
        *yp = (flags & MTK_ACCUM) ? residual_add(yo[r], v, flags) : v;
    }
}

static unsigned long g_fold_apply_calls;
extern "C" unsigned long mtk_cross_fold_apply_calls(void) { return g_fold_apply_calls; }

extern "C" int mtk_cross_fold_apply(void *stream, const float *scores, int rows, int heads, int S, const float *Nt,
                                    int D, const float *bo, float *y, int flags) {
    if (rows <= 0) return 0;
    const int HS = heads * S;
    if (S < 1 || S > MTK_FOLD_MAX_S || heads < 1 || D < 1 || HS % 4) return (int)cudaErrorInvalidValue;
    g_fold_apply_calls++;
    cudaStream_t st = (cudaStream_t)stream;
    for (int r0 = 0; r0 < rows; r0 += MTK_GEMV_MAX_ROWS) {
        const int R = rows - r0 < MTK_GEMV_MAX_ROWS ? rows - r0 : MTK_GEMV_MAX_ROWS;
        size_t smem = ((((size_t)8 * HS + 3) & ~(size_t)3) + (size_t)R * HS) * sizeof(float);
        void (*kern)(const float *, int, int, const float *, int, const float *, float *, int) = NULL;
        switch (R) {
        case 1: kern = cross_fold_apply_kernel<1>; break;
        case 2: kern = cross_fold_apply_kernel<2>; break;
        case 3: kern = cross_fold_apply_kernel<3>; break;
        case 4: kern = cross_fold_apply_kernel<4>; break;
        case 5: kern = cross_fold_apply_kernel<5>; break;
        case 6: kern = cross_fold_apply_kernel<6>; break;
        case 7: kern = cross_fold_apply_kernel<7>; break;
        default: kern = cross_fold_apply_kernel<8>; break;
        }
        if (smem > SMEM_OPT_IN) {
            cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
            if (e != cudaSuccess) return (int)e;
        }
        launch(st, dim3((unsigned)((D + 7) / 8)), GEMV_THREADS, smem, kern, scores + (size_t)r0 * HS, heads, S, Nt, D,
               bo, y + (size_t)r0 * D, flags);
    }
    return launch_status();
}
