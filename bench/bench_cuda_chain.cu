/* bench_cuda_chain.cu - the latency floor of a decode step's chain of
 * dependent operations on this GPU, measured without the engine.
 *
 * A greedy decode step of the 600M model is ~100 operations in a row, each
 * waiting for the previous one's output (docs/PERFORMANCE.md: ~6.7 us each
 * on the H200, against ~0.5 us of memory traffic). Bytes give one floor
 * (bench_nllb's floor_ms_per_step); this program gives the other: what one
 * dependent phase costs when it does (almost) nothing, so that a step's time
 * can be compared with phases x that cost + bytes / bandwidth.
 *
 * Each case is a chain of P phases over 128 blocks of 256 threads (the
 * shape of a 1024-row GEMV with 8 rows per block), replayed as one CUDA
 * graph, best of several replays:
 *   empty   kernels that only wait for their predecessor and write 4 bytes;
 *   vector  each kernel reads the 1024-float vector its predecessor wrote
 *           (through L2), reduces it per block, and writes its 8 of the next
 *           vector: the data round trip every GEMV makes;
 *   gemv    vector + a 16 KB bf16 weight tile per block, fetched into shared
 *           memory before the wait, and 8 dot products of 1024: the
 *           engine's GEMV without its LayerNorm prologue;
 *   lngemv  gemv with the engine's LayerNorm prologue (device_common.cuh's
 *           ln_row: the statistics in double, two block reductions);
 *   lngemvf1/lngemvd1 the same with both statistics (sum, sum of squares)
 *           in one block reduction, in float / in double;
 *   lngemvlate lngemv whose successor may launch only after the statistics;
 * each with programmatic dependent launch (PDL, as the engine launches) and
 * in plain stream order; and
 *   barrier one cooperative kernel (one block per SM) running the vector
 *           phase P times with a grid-wide barrier between phases: the
 *           floor of a persistent "megakernel" step.
 * Every case checks its result against the host's arithmetic, so a phase
 * that skipped its work would fail rather than look fast.
 *
 * usage: bench_cuda_chain [--phases P] [--reps N] [--json] */
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "device_common.cuh" /* the engine's LayerNorm prologue (ln_row), for the lngemv cases */

#define THREADS GEMV_THREADS
#define BLOCKS 128
#define ROWS_PER_BLOCK 8
#define N (BLOCKS * ROWS_PER_BLOCK) /* vector length = GEMV rows = columns */

#define CK(call)                                                                                      \
    do {                                                                                              \
        cudaError_t e_ = (call);                                                                      \
        if (e_ != cudaSuccess) {                                                                      \
            fprintf(stderr, "bench_cuda_chain: %s failed: %s (%s:%d)\n", #call, cudaGetErrorString(e_), \
                    __FILE__, __LINE__);                                                              \
            exit(1);                                                                                  \
        }                                                                                             \
    } while (0)

__device__ __forceinline__ float block_sumf(float v, float *sh) {
    for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads();
    if (threadIdx.x % 32 == 0) sh[threadIdx.x / 32] = v;
    __syncthreads();
    float t = 0.0f;
    for (int i = 0; i < THREADS / 32; i++) t += sh[i];
    return t;
}

/* The next vector's 8 values of this block from the previous vector's sum:
 * a dependency on every element, cheap to check on the host. */
__device__ __forceinline__ float next_val(float sum, int row) { return sum * (1.0f / N) + (float)(row % 7) * 0.125f; }

__global__ void __launch_bounds__(THREADS) k_empty(unsigned *ctr) {
    pdl_launch_dependents();
    pdl_wait();
    if (blockIdx.x == 0 && threadIdx.x == 0) *ctr += 1;
}

__global__ void __launch_bounds__(THREADS) k_vector(const float *x, float *y) {
    __shared__ float sh[THREADS / 32];
    pdl_launch_dependents();
    pdl_wait();
    float v = 0.0f;
    for (int i = threadIdx.x; i < N; i += THREADS) v += __ldcg(x + i);
    float s = block_sumf(v, sh);
    if (threadIdx.x < ROWS_PER_BLOCK) {
        int row = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x;
        y[row] = next_val(s, row);
    }
}

/* One warp's dot product of a bf16 row of the shared-memory tile with xs,
 * summed over the warp (every lane gets it). */
__device__ __forceinline__ float tile_row_dot(const __nv_bfloat16 *wr, const float *xs, int lane) {
    float acc = 0.0f;
    for (int i = lane * 8; i < N; i += 32 * 8) {
        uint4 u = *(const uint4 *)(wr + i);
        const __nv_bfloat162 *p = (const __nv_bfloat162 *)&u;
        for (int j = 0; j < 4; j++) {
            float2 f = __bfloat1622float2(p[j]);
            acc += f.x * xs[i + 2 * j] + f.y * xs[i + 2 * j + 1];
        }
    }
    for (int o = 16; o > 0; o /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    return acc;
}

/* 8 warps, one row each: dot(W[row], x) over N bf16 weights from the tile */
__global__ void __launch_bounds__(THREADS) k_gemv(const float *x, const __nv_bfloat16 *__restrict__ W, float *y) {
    __shared__ __align__(16) __nv_bfloat16 tile[ROWS_PER_BLOCK * N];
    __shared__ __align__(16) float xs[N];
    pdl_launch_dependents();
    const uint4 *src = (const uint4 *)(W + (size_t)blockIdx.x * ROWS_PER_BLOCK * N);
    for (int i = threadIdx.x; i < ROWS_PER_BLOCK * N / 8; i += THREADS) {
        unsigned s = (unsigned)__cvta_generic_to_shared((uint4 *)tile + i);
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(s), "l"(src + i) : "memory");
    }
    pdl_wait();
    for (int i = threadIdx.x * 4; i < N; i += THREADS * 4) {
        unsigned s = (unsigned)__cvta_generic_to_shared(xs + i);
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(s), "l"(x + i) : "memory");
    }
    asm volatile("cp.async.commit_group;\n\tcp.async.wait_group 0;" ::: "memory");
    __syncthreads();
    const int w = threadIdx.x / 32, lane = threadIdx.x % 32;
    const float acc = tile_row_dot(tile + w * N, xs, lane);
    if (lane == 0) y[blockIdx.x * ROWS_PER_BLOCK + w] = acc * (1.0f / N);
}

/* k_gemv with the engine's LayerNorm prologue (gemv_kernel's one-row
 * path: x into registers, ln_row's two block reductions in double, the
 * normalized row into shared memory, block 0 writing it out); FAST: the
 * statistics as one block reduction of (sum, sum of squares) in float,
 * the variant a bf16 or int8 model could use. */
/* MODE 0: ln_row as the engine; 1: one float reduction of (sum, sum of
 * squares); 2: one double reduction of the same; 3: ln_row, but the next
 * kernel may launch only once the statistics are done (launch_dependents
 * after them instead of at the top). */
template <int MODE>
__global__ void __launch_bounds__(THREADS) k_lngemv(const float *x, const __nv_bfloat16 *__restrict__ W,
                                                    const float *__restrict__ g, const float *__restrict__ b,
                                                    float *lnout, float *y) {
    __shared__ __align__(16) __nv_bfloat16 tile[ROWS_PER_BLOCK * N];
    __shared__ __align__(16) float xs[N];
    __shared__ __align__(16) float lg[N], lb[N];
    __shared__ double sh[32];
    __shared__ float2 shf[THREADS / 32];
    __shared__ double2 shd2[THREADS / 32];
    if (MODE != 3) pdl_launch_dependents();
    const uint4 *src = (const uint4 *)(W + (size_t)blockIdx.x * ROWS_PER_BLOCK * N);
    for (int i = threadIdx.x; i < ROWS_PER_BLOCK * N / 8; i += THREADS) cp_async16((uint4 *)tile + i, src + i);
    for (int i = threadIdx.x * 4; i < N; i += THREADS * 4) cp_async16(lg + i, g + i), cp_async16(lb + i, b + i);
    pdl_wait();
    float v[GEMV_LN_J];
#pragma unroll
    for (int j = 0; j < GEMV_LN_J; j++) {
        int i = (int)threadIdx.x + j * THREADS;
        v[j] = i < N ? x[i] : 0.0f;
    }
    cp_async_wait_all();
    __syncthreads();
    if (MODE == 0 || MODE == 3) {
        ln_row(v, N, lg, lb, 1e-5f, sh, xs, lnout, blockIdx.x == 0, false);
        if (MODE == 3) pdl_launch_dependents();
    } else if (MODE == 2) {
        double2 a = make_double2(0.0, 0.0);
#pragma unroll
        for (int j = 0; j < GEMV_LN_J; j++)
            if ((int)threadIdx.x + j * THREADS < N) a.x += v[j], a.y += (double)v[j] * v[j];
        for (int o = 16; o > 0; o /= 2)
            a.x += __shfl_xor_sync(0xffffffffu, a.x, o), a.y += __shfl_xor_sync(0xffffffffu, a.y, o);
        if (threadIdx.x % 32 == 0) shd2[threadIdx.x / 32] = a;
        __syncthreads();
        double2 t = make_double2(0.0, 0.0);
        for (int i = 0; i < THREADS / 32; i++) t.x += shd2[i].x, t.y += shd2[i].y;
        const double mean = t.x / N;
        const float rstd = (float)(1.0 / sqrt(t.y / N - mean * mean + 1e-5)), mf = (float)mean;
#pragma unroll
        for (int j = 0; j < GEMV_LN_J; j++) {
            int i = (int)threadIdx.x + j * THREADS;
            if (i < N) {
                float o = ln_val(v[j], mf, rstd, lg[i], lb[i]);
                xs[i] = o;
                if (blockIdx.x == 0) lnout[i] = o;
            }
        }
    } else {
        float2 a = make_float2(0.0f, 0.0f);
#pragma unroll
        for (int j = 0; j < GEMV_LN_J; j++)
            if ((int)threadIdx.x + j * THREADS < N) a.x += v[j], a.y += v[j] * v[j];
        for (int o = 16; o > 0; o /= 2)
            a.x += __shfl_xor_sync(0xffffffffu, a.x, o), a.y += __shfl_xor_sync(0xffffffffu, a.y, o);
        if (threadIdx.x % 32 == 0) shf[threadIdx.x / 32] = a;
        __syncthreads();
        float2 t = make_float2(0.0f, 0.0f);
        for (int i = 0; i < THREADS / 32; i++) t.x += shf[i].x, t.y += shf[i].y;
        const float mean = t.x * (1.0f / N), rstd = rsqrtf(fmaxf(t.y * (1.0f / N) - mean * mean, 0.0f) + 1e-5f);
#pragma unroll
        for (int j = 0; j < GEMV_LN_J; j++) {
            int i = (int)threadIdx.x + j * THREADS;
            if (i < N) {
                float o = (v[j] - mean) * rstd * lg[i] + lb[i];
                xs[i] = o;
                if (blockIdx.x == 0) lnout[i] = o;
            }
        }
    }
    __syncthreads();
    const int w = threadIdx.x / 32, lane = threadIdx.x % 32;
    const float acc = tile_row_dot(tile + w * N, xs, lane);
    /* + 1: LayerNorm makes the row's mean 0, so each phase's value is 1
     * (W = 1 sums the normalized row: 0 up to rounding) */
    if (lane == 0) y[blockIdx.x * ROWS_PER_BLOCK + w] = acc * (1.0f / N) + 1.0f + (float)((blockIdx.x * ROWS_PER_BLOCK + w) % 5);
}

/* phases of k_vector's work in one launch, a grid barrier between them */
__global__ void __launch_bounds__(THREADS) k_barrier(float *buf0, float *buf1, int phases, unsigned *count) {
    __shared__ float sh[THREADS / 32];
    for (int p = 0; p < phases; p++) {
        const float *x = p % 2 ? buf1 : buf0;
        float *y = p % 2 ? buf0 : buf1;
        float v = 0.0f;
        for (int i = threadIdx.x; i < N; i += THREADS) v += __ldcg(x + i);
        float s = block_sumf(v, sh);
        for (int row = blockIdx.x * THREADS + threadIdx.x; row < N; row += gridDim.x * THREADS)
            __stcg(y + row, next_val(s, row));
        /* the barrier: every block's writes visible before any block reads */
        __syncthreads();
        if (threadIdx.x == 0) {
            __threadfence();
            unsigned target = (unsigned)(p + 1) * gridDim.x;
            atomicAdd(count, 1u);
            while (*(volatile unsigned *)count < target) {
            }
            __threadfence();
        }
        __syncthreads();
    }
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

template <typename... P, typename... A>
static void launch(cudaStream_t st, int pdl, dim3 grid, void (*kernel)(P...), A... args) {
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute at[1];
    cfg.gridDim = grid, cfg.blockDim = dim3(THREADS), cfg.stream = st;
    if (pdl) {
        at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        at[0].val.programmaticStreamSerializationAllowed = 1;
        cfg.attrs = at, cfg.numAttrs = 1;
    }
    CK(cudaLaunchKernelEx(&cfg, kernel, ((P)args)...));
}

enum { C_EMPTY, C_VECTOR, C_GEMV, C_LNGEMV, C_LNGEMV_F1, C_LNGEMV_D1, C_LNGEMV_LATE };
static const char *const CASE_NAMES[] = {"empty", "vector", "gemv", "lngemv", "lngemvf1", "lngemvd1", "lngemvlate"};

/* the host's value of the last vector after P vector phases from x0 */
static void host_vector_chain(const float *x0, int phases, float *out) {
    float *a = (float *)malloc(sizeof(float) * N), *b = (float *)malloc(sizeof(float) * N);
    memcpy(a, x0, sizeof(float) * N);
    for (int p = 0; p < phases; p++) {
        double s = 0;
        for (int i = 0; i < N; i++) s += a[i];
        for (int r = 0; r < N; r++) b[r] = (float)(s / N) + (float)(r % 7) * 0.125f;
        float *t = a;
        a = b, b = t;
    }
    memcpy(out, a, sizeof(float) * N);
    free(a), free(b);
}

static int close_enough(const float *got, const float *want, double tol) {
    for (int i = 0; i < N; i++)
        if (!(fabs((double)got[i] - want[i]) <= tol * (1 + fabs((double)want[i])))) {
            fprintf(stderr, "bench_cuda_chain: element %d is %g, expected %g\n", i, got[i], want[i]);
            return 0;
        }
    return 1;
}

int main(int argc, char **argv) {
    int phases = 96, reps = 20, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--phases") && i + 1 < argc) phases = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json")) json = 1;
        else {
            fprintf(stderr, "usage: bench_cuda_chain [--phases P] [--reps N] [--json]\n");
            return 2;
        }
    }
    if (phases < 2 || phases > 100000 || reps < 1) {
        fprintf(stderr, "bench_cuda_chain: --phases must be 2..100000 and --reps >= 1\n");
        return 2;
    }
    int dev = 0, sms = 0, coop = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev)) {
        printf("skip: bench_cuda_chain needs a CUDA device and driver\n");
        return 0;
    }
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, dev));
    CK(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev));

    float *x0 = (float *)malloc(sizeof(float) * N), *want = (float *)malloc(sizeof(float) * N);
    float *got = (float *)malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++) x0[i] = (float)((i * 37) % 101) / 101.0f;
    float *d_buf[2];
    unsigned *d_ctr;
    __nv_bfloat16 *d_w;
    /* one weight matrix per phase, as a step reads new weights each op:
     * 2 MB each, beyond L2 after a few dozen */
    size_t wn = (size_t)phases * N * N;
    CK(cudaMalloc(&d_buf[0], sizeof(float) * N));
    CK(cudaMalloc(&d_buf[1], sizeof(float) * N));
    CK(cudaMalloc(&d_ctr, sizeof(unsigned)));
    float *d_g, *d_b, *d_lnout;
    CK(cudaMalloc(&d_g, sizeof(float) * N));
    CK(cudaMalloc(&d_b, sizeof(float) * N));
    CK(cudaMalloc(&d_lnout, sizeof(float) * N));
    {
        float *h = (float *)malloc(sizeof(float) * N);
        for (int i = 0; i < N; i++) h[i] = 1.0f;
        CK(cudaMemcpy(d_g, h, sizeof(float) * N, cudaMemcpyHostToDevice));
        for (int i = 0; i < N; i++) h[i] = 0.0f;
        CK(cudaMemcpy(d_b, h, sizeof(float) * N, cudaMemcpyHostToDevice));
        free(h);
    }
    CK(cudaMalloc(&d_w, wn * sizeof(__nv_bfloat16)));
    {
        /* W = 1 everywhere: each gemv phase is the vector's sum / N, like
         * the vector phase without the row term */
        __nv_bfloat16 *h = (__nv_bfloat16 *)malloc((size_t)N * N * sizeof(__nv_bfloat16));
        for (size_t i = 0; i < (size_t)N * N; i++) h[i] = __float2bfloat16(1.0f);
        for (int p = 0; p < phases; p++)
            CK(cudaMemcpy(d_w + (size_t)p * N * N, h, (size_t)N * N * sizeof(__nv_bfloat16), cudaMemcpyHostToDevice));
        free(h);
    }
    cudaStream_t st;
    CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    if (!json)
        printf("bench_cuda_chain: %s, %d SMs; %d dependent phases over %d blocks of %d threads, one graph, best of %d "
               "replays\n",
               prop.name, sms, phases, BLOCKS, THREADS, reps);
    int failed = 0;
    for (int c = C_EMPTY; c <= C_LNGEMV_LATE; c++)
        for (int pdl = 1; pdl >= 0; pdl--) {
            CK(cudaMemcpy(d_buf[0], x0, sizeof(float) * N, cudaMemcpyHostToDevice));
            CK(cudaMemset(d_ctr, 0, sizeof(unsigned)));
            cudaGraph_t g;
            cudaGraphExec_t ge;
            CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
            for (int p = 0; p < phases; p++) {
                float *x = d_buf[p % 2], *y = d_buf[1 - p % 2];
                if (c == C_EMPTY) launch(st, pdl, dim3(BLOCKS), k_empty, d_ctr);
                else if (c == C_VECTOR) launch(st, pdl, dim3(BLOCKS), k_vector, x, y);
                else if (c == C_GEMV) launch(st, pdl, dim3(BLOCKS), k_gemv, x, d_w + (size_t)p * N * N, y);
                else if (c == C_LNGEMV)
                    launch(st, pdl, dim3(BLOCKS), k_lngemv<0>, x, d_w + (size_t)p * N * N, d_g, d_b, d_lnout, y);
                else if (c == C_LNGEMV_F1)
                    launch(st, pdl, dim3(BLOCKS), k_lngemv<1>, x, d_w + (size_t)p * N * N, d_g, d_b, d_lnout, y);
                else if (c == C_LNGEMV_D1)
                    launch(st, pdl, dim3(BLOCKS), k_lngemv<2>, x, d_w + (size_t)p * N * N, d_g, d_b, d_lnout, y);
                else launch(st, pdl, dim3(BLOCKS), k_lngemv<3>, x, d_w + (size_t)p * N * N, d_g, d_b, d_lnout, y);
            }
            CK(cudaStreamEndCapture(st, &g));
            CK(cudaGraphInstantiate(&ge, g, 0));
            double best = 1e30;
            for (int r = 0; r < reps + 2; r++) {
                if (c != C_EMPTY) CK(cudaMemcpy(d_buf[0], x0, sizeof(float) * N, cudaMemcpyHostToDevice));
                CK(cudaStreamSynchronize(st));
                double t0 = now_us();
                CK(cudaGraphLaunch(ge, st));
                CK(cudaStreamSynchronize(st));
                double t = now_us() - t0;
                if (r >= 2 && t < best) best = t;
            }
            /* the check: the last run's result */
            int ok = 1;
            if (c == C_EMPTY) {
                unsigned ctr = 0;
                CK(cudaMemcpy(&ctr, d_ctr, sizeof ctr, cudaMemcpyDeviceToHost));
                ok = ctr == (unsigned)phases * (unsigned)(reps + 2);
                if (!ok) fprintf(stderr, "bench_cuda_chain: empty chain counted %u, expected %d\n", ctr, phases * (reps + 2));
            } else {
                CK(cudaMemcpy(got, d_buf[phases % 2], sizeof(float) * N, cudaMemcpyDeviceToHost));
                if (c == C_VECTOR) host_vector_chain(x0, phases, want);
                else if (c >= C_LNGEMV) {
                    for (int i = 0; i < N; i++) want[i] = 1.0f + (float)(i % 5);
                } else {
                    double s = 0;
                    for (int i = 0; i < N; i++) s += x0[i];
                    for (int i = 0; i < N; i++) want[i] = (float)(s / N); /* a mean stays the mean */
                }
                ok = close_enough(got, want, 1e-3);
            }
            failed |= !ok;
            double per = best / phases;
            if (json)
                printf("{\"case\":\"%s\",\"pdl\":%s,\"phases\":%d,\"us_per_chain\":%.2f,\"us_per_phase\":%.3f,"
                       "\"ok\":%s}\n",
                       CASE_NAMES[c], pdl ? "true" : "false", phases, best, per, ok ? "true" : "false");
            else
                printf("  %-7s %-9s %9.1f us per chain  %6.2f us per phase%s\n", CASE_NAMES[c],
                       pdl ? "PDL" : "plain", best, per, ok ? "" : "  RESULT WRONG");
            CK(cudaGraphExecDestroy(ge));
            CK(cudaGraphDestroy(g));
        }
    if (coop) {
        /* one block per SM, cooperative (all resident: the barrier needs it) */
        int blocks = sms;
        double best = 1e30;
        for (int r = 0; r < reps + 2; r++) {
            CK(cudaMemcpy(d_buf[0], x0, sizeof(float) * N, cudaMemcpyHostToDevice));
            CK(cudaMemset(d_ctr, 0, sizeof(unsigned)));
            CK(cudaStreamSynchronize(st));
            void *args[] = {&d_buf[0], &d_buf[1], &phases, &d_ctr};
            double t0 = now_us();
            CK(cudaLaunchCooperativeKernel((void *)k_barrier, dim3(blocks), dim3(THREADS), args, 0, st));
            CK(cudaStreamSynchronize(st));
            double t = now_us() - t0;
            if (r >= 2 && t < best) best = t;
        }
        CK(cudaMemcpy(got, d_buf[phases % 2], sizeof(float) * N, cudaMemcpyDeviceToHost));
        host_vector_chain(x0, phases, want);
        int ok = close_enough(got, want, 1e-3);
        failed |= !ok;
        if (json)
            printf("{\"case\":\"barrier\",\"pdl\":false,\"phases\":%d,\"blocks\":%d,\"us_per_chain\":%.2f,"
                   "\"us_per_phase\":%.3f,\"ok\":%s}\n",
                   phases, blocks, best, best / phases, ok ? "true" : "false");
        else
            printf("  barrier %-9s %9.1f us per chain  %6.2f us per phase (%d blocks, one launch)%s\n", "grid", best,
                   best / phases, blocks, ok ? "" : "  RESULT WRONG");
    }
    cudaFree(d_buf[0]), cudaFree(d_buf[1]), cudaFree(d_ctr), cudaFree(d_w);
    cudaFree(d_g), cudaFree(d_b), cudaFree(d_lnout);
    free(x0), free(want), free(got);
    return failed;
}
