/* device_common.cuh - device code shared by the CUDA kernels (kernels.cu)
 * and the decode-step program (program.cu): programmatic dependent launch,
 * the weight formats' unpacking, cp.async, block reductions, the LayerNorm
 * row arithmetic of the GEMV prologue and the embedding's element read.
 * Both files compute with these same helpers so that a step run as one
 * persistent program gives the same bits as the same ops run as kernels. */
#ifndef MT_CUDA_DEVICE_COMMON_CUH
#define MT_CUDA_DEVICE_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "kernels.h"

/* A GEMV block's weight tile (8 / S rows of one matrix): see gemv_kernel. */
#define GEMV_TILE_BYTES 16384

#define WARP 32

/* f32 -> nearest bf16 (ties to even) -> f32: the activation rounding of
 * bf16 models (kernels.h MTK_ACT_BF16) */
__device__ __forceinline__ float bf16_round(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }

/* ---------------- launches: programmatic dependent launch ----------------
 *
 * A decode step is ~130 dependent kernels of a few microseconds each; with
 * plain stream order every kernel starts only after the previous one has
 * drained, so each pays the launch and the DRAM latency of its first weight
 * loads in series. Every kernel of kernels.cu is launched with Hopper's programmatic
 * stream serialization (PDL, also captured into the step graphs): it may
 * start while its predecessor still runs, reads what no kernel writes (its
 * weights, scales, biases, LayerNorm parameters) into registers, and waits
 * (griddepcontrol.wait: the predecessor has completed and its writes are
 * visible) before it reads any activation or writes anything. Each kernel
 * lets its successor launch once all its own blocks have reached the
 * trigger (launch_dependents: at the top, or for the LayerNorm GEMV after
 * its statistics, pdl_trigger_late below); the
 * successor's blocks can only become resident once ours are, so waiting
 * blocks never keep a predecessor's blocks from running. Completion is transitive along the chain: a kernel
 * completes only after its own wait, i.e. after its predecessor completed.
 * STTS_CUDA_PDL=0 launches in plain stream order (the same kernels, for
 * comparison). */
__device__ __forceinline__ void pdl_launch_dependents(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;");
#endif
}
/* The kernel trace (STTS_CUDA_KTRACE=1, kernels.h mtk_ktrace_*): when t is
 * set, block (0, 0, 0)'s first thread of every kernel stamps %globaltimer as its
 * wait returns, i.e. when its predecessor has completed; consecutive stamps
 * are each kernel's share of the step's critical path. Read before the
 * wait (it changes only between runs), so an untraced kernel pays one
 * branch. Each translation unit has its own copy; kernels.cu sets its. */
struct ktrace_dev {
    unsigned long long *t;
    unsigned *n;
    unsigned cap;
};
static __device__ ktrace_dev g_ktrace;

/* Where a kernel lets its successor launch. Early (at its top) the
 * successor's blocks become resident and fetch their weights during the
 * whole kernel, but they slow its latency-bound middle: a chain of
 * LayerNorm + GEMV kernels took 5.2 us a kernel that way on the H200
 * against 3.3 us with the trigger after the statistics (bench_cuda_chain,
 * lngemv vs lngemvlate). In the engine the gain is smaller (kernel trace,
 * bf16: 5.13 -> 4.87 us per one-row LayerNorm GEMV, 12.3 -> 11.8 us at 4
 * rows), and a plain GEMV or the attention triggering late made their
 * successors start later (2.76 -> 3.26 us per plain GEMV): so only the
 * LayerNorm GEMV triggers late (pdl_trigger_late: after the statistics,
 * before the dot products), unless STTS_CUDA_PDL_EARLY=1. Every thread
 * of a block must pass the trigger (it counts for the block when all its
 * threads have executed it or exited). g_pdl_late: one copy per
 * translation unit, set by kernels.cu. */
static __constant__ int g_pdl_late;
/* The GEMV LayerNorm prologue takes both statistics in one block
 * reduction: sum x and sum x^2 in double, variance = sum x^2 - mean * sum x
 * (the LayerNorm kernels and the CPU take the mean first, then the squared
 * deviations: in double the two differ by ~1e-16 relative, far below what
 * the float mean and 1/std keep; the demo set's GPU f32 ids stay those of
 * the CPU on 500/500). One reduction instead of two: the one-row
 * LayerNorm GEMV 5.44 -> 4.88 us on the H200, bf16 greedy 15.7 -> 15.2 ms
 * (ab-env.sh, 2026-11-30). kernels.cu sets g_ln_onepass: 1 unless
 * STTS_CUDA_LN_TWOPASS=1 (the two-pass order, for comparison). */
static __constant__ int g_ln_onepass;
__device__ __forceinline__ void pdl_trigger_early(void) {
    if (!g_pdl_late) pdl_launch_dependents();
}
__device__ __forceinline__ void pdl_trigger_late(void) {
    if (g_pdl_late) pdl_launch_dependents();
}

__device__ __forceinline__ void pdl_wait(void) {
    const bool stamp = threadIdx.x == 0 && blockIdx.x == 0 && blockIdx.y == 0 && blockIdx.z == 0 && g_ktrace.t != NULL;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
    if (stamp) {
        unsigned long long now;
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
        unsigned i = atomicAdd(g_ktrace.n, 1u);
        if (i < g_ktrace.cap) g_ktrace.t[i] = now;
    }
}

/* 8 consecutive weights of a row as raw bytes (read from the GEMV's shared-
 * memory tile) and unpack(), which widens them to floats; for int8 the
 * per-row scale is applied after the dot product. */
struct f32x8 {
    float4 a, b;
};
struct wf32 {
    typedef f32x8 raw;
    enum { ELEM_BYTES = 4 };
    static __device__ __forceinline__ void unpack(const raw &u, float w[8]) {
        w[0] = u.a.x, w[1] = u.a.y, w[2] = u.a.z, w[3] = u.a.w, w[4] = u.b.x, w[5] = u.b.y, w[6] = u.b.z, w[7] = u.b.w;
    }
};
/* 16-bit formats: 8 weights in 16 bytes, widened two at a time by Pair */
template <typename Pair>
struct w16 {
    typedef uint4 raw;
    enum { ELEM_BYTES = 2 };
    static __device__ __forceinline__ void unpack(const raw &u, float w[8]) {
        uint32_t v[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
        for (int i = 0; i < 4; i++) Pair::widen(v[i], w + 2 * i);
    }
};
struct bf16_pair {
    static __device__ __forceinline__ void widen(uint32_t v, float w[2]) {
        w[0] = __uint_as_float(v << 16);
        w[1] = __uint_as_float(v & 0xffff0000u);
    }
};
struct f16_pair {
    static __device__ __forceinline__ void widen(uint32_t v, float w[2]) {
        __half2 h = *(const __half2 *)&v;
        float2 f = __half22float2(h);
        w[0] = f.x;
        w[1] = f.y;
    }
};
typedef w16<bf16_pair> wbf16;
typedef w16<f16_pair> wf16;
struct wi8 {
    typedef uint2 raw;
    enum { ELEM_BYTES = 1 };
    static __device__ __forceinline__ void unpack(const raw &u, float w[8]) {
        uint32_t v[2] = {u.x, u.y};
#pragma unroll
        for (int i = 0; i < 2; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) w[4 * i + j] = (float)(int8_t)((v[i] >> (8 * j)) & 0xffu);
    }
};

/* ---------------- cp.async ---------------- */

__device__ __forceinline__ void cp_async16(void *smem, const void *gmem) {
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_wait_all(void) {
    asm volatile("cp.async.commit_group;\n\tcp.async.wait_group 0;" ::: "memory");
}

/* ---------------- block reductions ---------------- */

template <typename T>
__device__ T block_sum(T v, T *sh) {
    int lane = threadIdx.x % WARP, w = threadIdx.x / WARP, nw = (blockDim.x + WARP - 1) / WARP;
    for (int o = WARP / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads(); /* sh may still be read by a previous reduction */
    if (lane == 0) sh[w] = v;
    __syncthreads();
    T t = 0;
    for (int i = 0; i < nw; i++) t += sh[i];
    return t;
}

__device__ __forceinline__ float block_max(float v, float *sh) {
    int lane = threadIdx.x % WARP, w = threadIdx.x / WARP, nw = (blockDim.x + WARP - 1) / WARP;
    for (int o = WARP / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    float t = -INFINITY;
    for (int i = 0; i < nw; i++) t = fmaxf(t, sh[i]);
    return t;
}

/* LayerNorm of the GEMV's input rows in its prologue (mtk_ln_linear):
 * every block computes the rows' mean and 1/std in double with
 * layernorm_kernel's thread layout (256 threads; both statistics in one
 * reduction, see g_ln_onepass), writes the normalized rows to shared memory for its dot products,
 * and block 0 writes them to out for the other readers. The LayerNorm's
 * gain and bias are loaded before the wait, like the weights. */
struct ln_args {
    const float *g, *b;
    float eps;
    float *out;
    /* The LayerNorm folded into the weights (NULL: normalize first):
     * rc[n] = sum_k W[n][k] g[k] and rc[N + n] = sum_k W[n][k] b[k] (the
     * int8 row scale included), so that
     *   LN(x) W^T = ((x . (g W_n)) - mean * rc[n]) * rstd + rc[N + n]:
     * the dot products run on g * x while the statistics are reduced, and
     * only the epilogue needs them (mtk_ln_linear_folded). */
    const float *rc;
};

__device__ __forceinline__ float ln_val(float x, float mf, float rstd, float g, float b) {
    return __fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(x, mf), rstd), g), b);
}

#define GEMV_THREADS 256
#define GEMV_LN_J 8 /* columns per thread in the LayerNorm prologue: K <= 256 * 8 */

/* One row of the GEMV's LayerNorm prologue: v[j] is column threadIdx.x + j *
 * GEMV_THREADS (layernorm_kernel's layout; the same sums in the same
 * order); the normalized values go to dst (shared memory) and, where
 * write_out (one block), to out for the other readers. dst may be where v was read from: each
 * thread writes only its own columns. */
__device__ __forceinline__ void ln_row(const float v[GEMV_LN_J], int K, const float *lng, const float *lnb, float eps,
                                       double *sh /* [32] */, float *dst, float *out, bool write_out, bool rnd) {
    double mean, var;
    if (g_ln_onepass) {
        double sm = 0.0, sq = 0.0;
#pragma unroll
        for (int j = 0; j < GEMV_LN_J; j++)
            if ((int)threadIdx.x + j * GEMV_THREADS < K) sm += v[j], sq += (double)v[j] * v[j];
        for (int o = WARP / 2; o > 0; o /= 2)
            sm += __shfl_xor_sync(0xffffffffu, sm, o), sq += __shfl_xor_sync(0xffffffffu, sq, o);
        const int w = (int)threadIdx.x / WARP, nw = GEMV_THREADS / WARP;
        __syncthreads(); /* sh may still be read by a previous reduction */
        if (threadIdx.x % WARP == 0) sh[w] = sm, sh[16 + w] = sq;
        __syncthreads();
        double ts = 0.0, tq = 0.0;
        for (int i = 0; i < nw; i++) ts += sh[i], tq += sh[16 + i];
        mean = ts / K;
        var = fmax(tq - mean * ts, 0.0);
    } else {
        double sm = 0.0;
#pragma unroll
        for (int j = 0; j < GEMV_LN_J; j++)
            if ((int)threadIdx.x + j * GEMV_THREADS < K) sm += v[j];
        mean = block_sum(sm, sh) / K;
        var = 0.0;
#pragma unroll
        for (int j = 0; j < GEMV_LN_J; j++)
            if ((int)threadIdx.x + j * GEMV_THREADS < K) {
                double d = (double)v[j] - mean;
                var += d * d;
            }
        var = block_sum(var, sh);
    }
    float rstd = (float)(1.0 / sqrt(var / K + (double)eps)), mf = (float)mean;
#pragma unroll
    for (int j = 0; j < GEMV_LN_J; j++) {
        int i = (int)threadIdx.x + j * GEMV_THREADS;
        if (i < K) {
            float o = ln_val(v[j], mf, rstd, lng[i], lnb[i]);
            if (rnd) o = bf16_round(o);
            dst[i] = o;
            if (write_out) out[i] = o;
        }
    }
}

/* ---- the LayerNorm folded into the GEMV (ln_args.rc) ----
 * The statistics are ln_row's one-pass ones (per thread in column order,
 * then the warps' partial sums in warp order); the dot products and the
 * epilogue are other sums than normalizing first (within f32 rounding of
 * them: test_cuda's test_ln_fold). The normalized rows are never made, so
 * ln_out is not written: block 0 writing them cost its block (and so the
 * launch, which its successor waits for whole) ~1 us on the H200. */

/* A row's per-thread sums reduced over the warp; lane 0 stores them at
 * sh[w] and sh[8 + w] (sh: the row's 16 doubles). */
__device__ __forceinline__ void lnf_partials(double sm, double sq, double *sh) {
    for (int o = WARP / 2; o > 0; o /= 2)
        sm += __shfl_xor_sync(0xffffffffu, sm, o), sq += __shfl_xor_sync(0xffffffffu, sq, o);
    const int w = (int)threadIdx.x / WARP;
    if (threadIdx.x % WARP == 0) sh[w] = sm, sh[8 + w] = sq;
}

/* The row's mean and 1/std from its 8 warps' partials (after a barrier). */
__device__ __forceinline__ void lnf_stats(const double *sh, int K, float eps, float &mf, float &rstd) {
    double ts = 0.0, tq = 0.0;
    for (int i = 0; i < GEMV_THREADS / WARP; i++) ts += sh[i], tq += sh[8 + i];
    const double mean = ts / K, var = fmax(tq - mean * ts, 0.0);
    rstd = (float)(1.0 / sqrt(var / K + (double)eps)), mf = (float)mean;
}

/* Output n's Linear value (before bias) from its dot product with g * x. */
__device__ __forceinline__ float lnf_value(float acc, float sc, float r, float c, float mf, float rstd) {
    return fmaf(fmaf(acc, sc, -mf * r), rstd, c);
}

/* R rows staged in shared memory (f32) become g * x in place; each row's
 * sums go to sh + 16 r (lnf_partials). Before a barrier. */
template <int R>
__device__ __forceinline__ void lnf_rows(float *xs, int K, const float *g, double *sh) {
    const int tid = (int)threadIdx.x;
#pragma unroll
    for (int r = 0; r < R; r++) {
        double sm = 0.0, sq = 0.0;
#pragma unroll
        for (int j = 0; j < GEMV_LN_J; j++) {
            int c = tid + j * GEMV_THREADS;
            if (c < K) {
                float v = xs[(size_t)r * K + c];
                sm += v, sq += (double)v * v;
                xs[(size_t)r * K + c] = v * g[c];
            }
        }
        lnf_partials(sm, sq, sh + 16 * r);
    }
}

/* A LayerNorm row read once into registers (D <= 256 * LN_REG, a block of
 * 256 threads): mean and variance in double as the CPU, the output with
 * separate roundings; yr may equal xr. x is read through L2 (__ldcg): in
 * the step program other SMs wrote it in the same launch. */
#define LN_REG 16
__device__ __forceinline__ void ln_reg_row(const float *xr, int D, const float *g, const float *b, float eps, float *yr,
                                           double *sh, bool rnd) {
    float v[LN_REG];
    double s = 0.0;
#pragma unroll
    for (int j = 0; j < LN_REG; j++) {
        int i = (int)threadIdx.x + j * 256;
        v[j] = i < D ? __ldcg(xr + i) : 0.0f;
        if (i < D) s += v[j];
    }
    double mean = block_sum(s, sh) / D;
    double var = 0.0;
#pragma unroll
    for (int j = 0; j < LN_REG; j++) {
        int i = (int)threadIdx.x + j * 256;
        if (i < D) {
            double d = (double)v[j] - mean;
            var += d * d;
        }
    }
    var = block_sum(var, sh);
    float rstd = (float)(1.0 / sqrt(var / D + (double)eps));
    float mf = (float)mean;
#pragma unroll
    for (int j = 0; j < LN_REG; j++) {
        int i = (int)threadIdx.x + j * 256;
        if (i < D) {
            float o = ln_val(v[j], mf, rstd, g[i], b[i]);
            yr[i] = rnd ? bf16_round(o) : o;
        }
    }
}

/* LayerNorm of R rows staged in shared memory, in place (m real ones; a
 * block of GEMV_THREADS), with ln_row's arithmetic and summation order but
 * the rows' block reductions done together: one pair of barriers per
 * statistic for all rows instead of per row (the step program measured
 * ~1.7 us per row one by one at 4 rows). out (all rows) is written where
 * write_out. The gain and bias are requested first, so their loads are in
 * flight during the statistics. */
template <int R>
__device__ __forceinline__ void ln_rows(float *xs, int m, int K, const float *g, const float *gb, float eps,
                                        double *sh /* [2R][8] */, float *out, bool write_out, bool rnd) {
    const int tid = (int)threadIdx.x, lane = tid % WARP, w = tid / WARP, nw = GEMV_THREADS / WARP;
    float gv[GEMV_LN_J], bv[GEMV_LN_J]; /* requested first: in flight during the statistics */
#pragma unroll
    for (int j = 0; j < GEMV_LN_J; j++) {
        int c = tid + j * GEMV_THREADS;
        gv[j] = c < K ? g[c] : 0.0f, bv[j] = c < K ? gb[c] : 0.0f;
    }
    double st[R], mean[R];
#pragma unroll
    for (int r = 0; r < R; r++) {
        st[r] = 0.0;
#pragma unroll
        for (int j = 0; j < GEMV_LN_J; j++) {
            int c = tid + j * GEMV_THREADS;
            if (r < m && c < K) st[r] += xs[(size_t)r * K + c];
        }
    }
    if (g_ln_onepass) { /* both statistics in one reduction (g_ln_onepass; sh has [2R][8] here) */
        double sq[R];
#pragma unroll
        for (int r = 0; r < R; r++) {
            sq[r] = 0.0;
#pragma unroll
            for (int j = 0; j < GEMV_LN_J; j++) {
                int c = tid + j * GEMV_THREADS;
                if (r < m && c < K) {
                    double x = xs[(size_t)r * K + c];
                    sq[r] += x * x;
                }
            }
#pragma unroll
            for (int o = WARP / 2; o > 0; o /= 2)
                st[r] += __shfl_xor_sync(0xffffffffu, st[r], o), sq[r] += __shfl_xor_sync(0xffffffffu, sq[r], o);
        }
        __syncthreads(); /* sh free */
        if (lane == 0)
#pragma unroll
            for (int r = 0; r < R; r++) sh[r * 8 + w] = st[r], sh[(R + r) * 8 + w] = sq[r];
        __syncthreads();
#pragma unroll
        for (int r = 0; r < R; r++) {
            double ts = 0, tq = 0;
            for (int q = 0; q < nw; q++) ts += sh[r * 8 + q], tq += sh[(R + r) * 8 + q];
            mean[r] = ts / K;
            st[r] = fmax(tq - mean[r] * ts, 0.0);
        }
    }
    for (int pass = g_ln_onepass ? 2 : 0; pass < 2; pass++) {
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int o = WARP / 2; o > 0; o /= 2) st[r] += __shfl_xor_sync(0xffffffffu, st[r], o);
        __syncthreads(); /* sh free */
        if (lane == 0)
#pragma unroll
            for (int r = 0; r < R; r++) sh[r * 8 + w] = st[r];
        __syncthreads();
#pragma unroll
        for (int r = 0; r < R; r++) {
            double t = 0;
            for (int q = 0; q < nw; q++) t += sh[r * 8 + q];
            st[r] = t;
        }
        if (pass == 0) {
#pragma unroll
            for (int r = 0; r < R; r++) {
                mean[r] = st[r] / K;
                st[r] = 0.0;
#pragma unroll
                for (int j = 0; j < GEMV_LN_J; j++) {
                    int c = tid + j * GEMV_THREADS;
                    if (r < m && c < K) {
                        double d = (double)xs[(size_t)r * K + c] - mean[r];
                        st[r] += d * d;
                    }
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < R; r++) {
        if (r >= m) break;
        const float rstd = (float)(1.0 / sqrt(st[r] / K + (double)eps)), mf = (float)mean[r];
#pragma unroll
        for (int j = 0; j < GEMV_LN_J; j++) {
            int c = tid + j * GEMV_THREADS;
            if (c < K) {
                float o = ln_val(xs[(size_t)r * K + c], mf, rstd, gv[j], bv[j]);
                if (rnd) o = bf16_round(o);
                xs[(size_t)r * K + c] = o;
                if (write_out) out[(size_t)r * K + c] = o;
            }
        }
    }
}

/* Waits until at most n of this thread's newest cp.async groups are pending
 * (the instruction takes an immediate). */
__device__ __forceinline__ void cp_async_wait_pending(int n) {
    switch (n) {
    case 0: asm volatile("cp.async.wait_group 0;" ::: "memory"); break;
    case 1: asm volatile("cp.async.wait_group 1;" ::: "memory"); break;
    case 2: asm volatile("cp.async.wait_group 2;" ::: "memory"); break;
    case 3: asm volatile("cp.async.wait_group 3;" ::: "memory"); break;
    case 4: asm volatile("cp.async.wait_group 4;" ::: "memory"); break;
    case 5: asm volatile("cp.async.wait_group 5;" ::: "memory"); break;
    case 6: asm volatile("cp.async.wait_group 6;" ::: "memory"); break;
    default: asm volatile("cp.async.wait_group 7;" ::: "memory"); break;
    }
}

/* ---------------- GEMV arithmetic ---------------- */

/* How a GEMV reads its staged input rows: s + the 8 products of w[] with
 * 8 consecutive values of a row, in column order. f32 rows (xf32), or bf16
 * rows (xbf16: the bf16-activation mode, where every input is a bf16
 * value, so widening is exact and the products are the same bits from half
 * the shared memory). Each keeps the loads and fmaf order the GEMV had
 * before the two shared this loop, so their code did not change. */
struct xf32 {
    typedef float elem;
    static __device__ __forceinline__ float fma8(const float w[8], const float *p, float s) {
        const float4 a = ((const float4 *)p)[0], c = ((const float4 *)p)[1];
        s = fmaf(w[0], a.x, s);
        s = fmaf(w[1], a.y, s);
        s = fmaf(w[2], a.z, s);
        s = fmaf(w[3], a.w, s);
        s = fmaf(w[4], c.x, s);
        s = fmaf(w[5], c.y, s);
        s = fmaf(w[6], c.z, s);
        return fmaf(w[7], c.w, s);
    }
    static __device__ __forceinline__ void load8(const float *p, float x[8]) {
        const float4 a = ((const float4 *)p)[0], c = ((const float4 *)p)[1];
        x[0] = a.x, x[1] = a.y, x[2] = a.z, x[3] = a.w, x[4] = c.x, x[5] = c.y, x[6] = c.z, x[7] = c.w;
    }
};
struct xbf16 {
    typedef uint16_t elem;
    static __device__ __forceinline__ float fma8(const float w[8], const uint16_t *p, float s) {
        const uint4 u = *(const uint4 *)p;
        const uint32_t h[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
        for (int q = 0; q < 4; q++) {
            s = fmaf(w[2 * q], __uint_as_float(h[q] << 16), s);
            s = fmaf(w[2 * q + 1], __uint_as_float(h[q] & 0xffff0000u), s);
        }
        return s;
    }
    static __device__ __forceinline__ void load8(const uint16_t *p, float x[8]) {
        const uint4 u = *(const uint4 *)p;
        const uint32_t h[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
        for (int q = 0; q < 4; q++) x[2 * q] = __uint_as_float(h[q] << 16), x[2 * q + 1] = __uint_as_float(h[q] & 0xffff0000u);
    }
};

/* One weight row (8 consecutive weights at a time from trow, a shared-
 * memory tile) times R input rows (xs, K values each, shared memory, read
 * through XL): the lanes of warp `split` of the row's S warps take every
 * S * 256th group of 8 columns, accumulate with fmaf in column order, and
 * the warp's sum goes to acc[r] (every lane). gemv_kernel and the step
 * program both use it, so they give the same bits. */
template <typename WL, int R, typename XL = xf32>
__device__ __forceinline__ void gemv_dot(const unsigned char *trow, const typename XL::elem *xs, int K, int S, int split,
                                         int lane, float acc[R]) {
#pragma unroll 4
    for (int k = (split * WARP + lane) * 8; k < K; k += S * WARP * 8) {
        float w[8];
        WL::unpack(*(const typename WL::raw *)(trow + (size_t)k * WL::ELEM_BYTES), w);
#pragma unroll
        for (int r = 0; r < R; r++) acc[r] = XL::fma8(w, xs + (size_t)r * K + k, acc[r]);
    }
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int o = WARP / 2; o > 0; o /= 2) acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], o);
}

/* P weight rows a warp (whole rows: S = 1), rows trow + p * pstride for
 * p < np (the rest of P left at zero), times R input rows: each (row,
 * input) product in gemv_dot's order (8 columns a lane at a time, fmaf in
 * column order), so the same bits, with each input value read from shared
 * memory and widened once for all P rows instead of once per row (at 4
 * input rows those reads, not the weight bytes, bounded the LM head: 326 us
 * a beam-4 step on the H200 against ~60 us of int8 bytes). acc[p * R + r]. */
template <typename WL, int R, int P, typename XL>
__device__ __forceinline__ void gemv_dot_rows(const unsigned char *trow, size_t pstride, int np,
                                              const typename XL::elem *xs, int K, int lane, float *acc) {
#pragma unroll 2
    for (int k = lane * 8; k < K; k += WARP * 8) {
        float x[R][8];
#pragma unroll
        for (int r = 0; r < R; r++) XL::load8(xs + (size_t)r * K + k, x[r]);
#pragma unroll
        for (int p = 0; p < P; p++) {
            if (p >= np) break;
            float w[8];
            WL::unpack(*(const typename WL::raw *)(trow + p * pstride + (size_t)k * WL::ELEM_BYTES), w);
#pragma unroll
            for (int r = 0; r < R; r++)
#pragma unroll
                for (int i = 0; i < 8; i++) acc[p * R + r] = fmaf(w[i], x[r][i], acc[p * R + r]);
        }
    }
}

/* The warp sums of C values a lane (C a power of two, at most 32) in the
 * xor butterfly's tree (offsets 16, 8, ..., 1: the sums gemv_dot's
 * shuffles make, the same bits), as a reduce-scatter: at each of the first
 * log2 C offsets a lane keeps the half of its values its offset bit picks
 * and receives the partner's copy of that half, so C values cost C - 1
 * shuffles (+ one a remaining offset) instead of 5 C. Afterwards a[0] is
 * the sum of value *j, which the lanes differing only in the offsets below
 * 32 / C share (warp_sum_scatter_lane below names one of them). */
template <int C, int O>
__device__ __forceinline__ void warp_sum_scatter(float *a, int lane, int &j) {
    if constexpr (O > 0) {
        if constexpr (C > 1) {
            const bool hi = (lane & O) != 0;
#pragma unroll
            for (int i = 0; i < C / 2; i++) {
                const float send = hi ? a[i] : a[i + C / 2], keep = hi ? a[i + C / 2] : a[i];
                a[i] = keep + __shfl_xor_sync(0xffffffffu, send, O);
            }
            if (hi) j += C / 2;
            warp_sum_scatter<C / 2, O / 2>(a, lane, j);
        } else {
            a[0] += __shfl_xor_sync(0xffffffffu, a[0], O);
            warp_sum_scatter<1, O / 2>(a, lane, j);
        }
    }
}
/* the value a lane holds after warp_sum_scatter<C, 16>, and whether it is
 * the one lane of those holding it that writes it (the lowest) */
template <int C>
__device__ __forceinline__ int warp_sum_scatter_value(int lane, bool &writer) {
    int j = 0, c = C;
#pragma unroll
    for (int o = 16; o > 0 && c > 1; o /= 2, c /= 2)
        if (lane & o) j += c / 2;
    writer = (lane & (32 / C - 1)) == 0;
    return j;
}

/* Output column n of one row from its dot product: int8 scale and bias
 * (one fma), ReLU, the bf16 rounding of MTK_ACT_BF16, the query scaling
 * (rounded as mtk_scale_cols does). */
__device__ __forceinline__ float gemv_out(float acc, float sc, float bias, int flags, int n, int qcols, float qs) {
    float v = fmaf(acc, sc, bias);
    if (flags & MTK_RELU) v = fmaxf(v, 0.0f);
    if (flags & MTK_ACT_BF16) v = bf16_round(v);
    if (n < qcols) v = __fmul_rn(v, qs);
    return v;
}

/* The residual add of an MTK_ACCUM output: old + v, rounded to bf16 again
 * in the bf16-activation mode (HF's bf16 model adds in bf16). Every kernel
 * that writes a Linear's output into the residual stream uses it, so the
 * GEMVs, the two-rows-a-warp path and the encoder's GEMM cannot drift
 * apart in how they round. */
__device__ __forceinline__ float residual_add(float old, float v, int flags) {
    return (flags & MTK_ACT_BF16) ? bf16_round(old + v) : old + v;
}

/* ---------------- embedding ---------------- */

__device__ __forceinline__ float table_elem(const void *t, int fmt, const float *sc, size_t row, int D, int i) {
    size_t o = row * (size_t)D + (size_t)i;
    switch (fmt) {
    case MTK_W_BF16: return __uint_as_float((uint32_t)((const uint16_t *)t)[o] << 16);
    case MTK_W_F16: return __half2float(((const __half *)t)[o]);
    case MTK_W_I8: return (float)((const int8_t *)t)[o] * sc[row];
    default: return ((const float *)t)[o];
    }
}

#endif
