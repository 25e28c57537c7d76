/* cuda_backend.cu - the CUDA implementation of mt_backend_ops (backend.h):
 * buffers in device memory, every op enqueued on one stream, host copies at
 * upload/download only. The model code (forward.c) and the search are the
 * same as on the CPU; host arrays the ops take (ids, positions, per-row K/V
 * pointers and lengths) are copied to small device arrays per call.
 *
 * Errors: the ops of this seam return nothing, so the first CUDA error is
 * kept (sticky) and every later op is skipped; download then fills its
 * output with NaN, which the search treats as a failed step. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_backend.h"
#include "cuda/kernels.h"

namespace {

struct cuda_backend {
    mt_backend base;
    cudaStream_t st;
    int max_kv;
    cudaError_t sticky;
    /* per-call argument arrays (device) and their host staging */
    void *d_args;
    size_t args_cap;
    unsigned char *h_args;
    /* sinusoid table [pos_rows][pos_D] for one (D, rounding) pair */
    float *pos_table;
    int pos_D, pos_round, pos_rows;
};

cuda_backend *cb(mt_backend *be) { return (cuda_backend *)be; }

bool ok(cuda_backend *c, cudaError_t e) {
    if (e != cudaSuccess && c->sticky == cudaSuccess) c->sticky = e;
    return c->sticky == cudaSuccess;
}
bool ok(cuda_backend *c, int e) { return ok(c, (cudaError_t)e); }

/* Device room for `bytes` of per-call arguments; the host staging is copied
 * with a pageable cudaMemcpyAsync, which returns once the bytes are staged,
 * so the host buffer can be reused at once. */
void *args_room(cuda_backend *c, size_t bytes) {
    if (bytes > c->args_cap) {
        size_t n = bytes * 2;
        if (c->d_args) cudaFree(c->d_args);
        free(c->h_args);
        c->d_args = NULL;
        c->h_args = (unsigned char *)malloc(n);
        c->args_cap = 0;
        if (!c->h_args || !ok(c, cudaMalloc(&c->d_args, n))) return NULL;
        c->args_cap = n;
    }
    return c->h_args;
}

bool args_send(cuda_backend *c, size_t bytes) {
    return ok(c, cudaMemcpyAsync(c->d_args, c->h_args, bytes, cudaMemcpyHostToDevice, c->st));
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

bool pos_table_for(cuda_backend *c, int D, int round, int rows) {
    if (c->pos_table && c->pos_D == D && c->pos_round == round && c->pos_rows >= rows) return true;
    if (rows < c->max_kv + 4) rows = c->max_kv + 4;
    float *h = (float *)calloc((size_t)rows * D, sizeof(float));
    if (!h) return ok(c, cudaErrorMemoryAllocation);
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
    if (c->pos_table) cudaFree(c->pos_table);
    c->pos_table = NULL;
    bool good = ok(c, cudaMalloc(&c->pos_table, (size_t)rows * D * sizeof(float))) &&
                ok(c, cudaMemcpy(c->pos_table, h, (size_t)rows * D * sizeof(float), cudaMemcpyHostToDevice));
    free(h);
    if (good) c->pos_D = D, c->pos_round = round, c->pos_rows = rows;
    return good;
}

/* ---- ops ---- */
void be_destroy(mt_backend *be) {
    cuda_backend *c = cb(be);
    if (!c) return;
    if (c->st) cudaStreamSynchronize(c->st);
    if (c->d_args) cudaFree(c->d_args);
    if (c->pos_table) cudaFree(c->pos_table);
    if (c->st) cudaStreamDestroy(c->st);
    free(c->h_args);
    free(c);
}

float *be_alloc(mt_backend *be, size_t n) {
    void *p = NULL;
    if (cudaMalloc(&p, n * sizeof(float)) != cudaSuccess) {
        cudaGetLastError(); /* an allocation failure is reported by NULL, not sticky */
        return NULL;
    }
    (void)be;
    return (float *)p;
}

void be_release(mt_backend *be, float *p) {
    cuda_backend *c = cb(be);
    if (!p) return;
    cudaStreamSynchronize(c->st); /* work still queued may use it */
    cudaFree(p);
}

void be_upload(mt_backend *be, float *dst, const float *src, size_t n) {
    cuda_backend *c = cb(be);
    if (!ok(c, cudaSuccess)) return;
    ok(c, cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyHostToDevice, c->st));
    ok(c, cudaStreamSynchronize(c->st));
}

void be_download(mt_backend *be, float *dst, const float *src, size_t n) {
    cuda_backend *c = cb(be);
    if (ok(c, cudaSuccess)) {
        ok(c, cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToHost, c->st));
        ok(c, cudaStreamSynchronize(c->st));
    }
    if (c->sticky != cudaSuccess)
        for (size_t i = 0; i < n; i++) dst[i] = NAN;
}

/* Host-side work (weight initialisation of random models, search row
 * statistics on downloaded logits): run in order on the calling thread. */
void be_parallel_for(mt_backend *be, int n, void (*fn)(void *ctx, int i), void *ctx) {
    (void)be;
    for (int i = 0; i < n; i++) fn(ctx, i);
}

void be_linear(mt_backend *be, const float *x, int M, int K, const float *W, int N, const float *b, float *y,
               int flags) {
    cuda_backend *c = cb(be);
    if (!ok(c, cudaSuccess)) return;
    ok(c, mtk_linear(c->st, x, M, K, W, MTK_W_F32, NULL, N, b, y, flags));
}

void be_layernorm(mt_backend *be, const float *x, int M, int D, const float *g, const float *b, float eps, float *y) {
    cuda_backend *c = cb(be);
    if (!ok(c, cudaSuccess)) return;
    ok(c, mtk_layernorm(c->st, x, M, D, g, b, eps, y));
}

void be_attention(mt_backend *be, const mt_attn_args *a) {
    cuda_backend *c = cb(be);
    if (!ok(c, cudaSuccess) || a->rows <= 0) return;
    size_t R = (size_t)a->rows;
    size_t bytes = 2 * R * sizeof(float *) + R * sizeof(int);
    unsigned char *h = (unsigned char *)args_room(c, bytes);
    if (!h) return;
    int max_len = 0;
    for (size_t r = 0; r < R; r++) max_len = a->kv_len[r] > max_len ? a->kv_len[r] : max_len;
    if (max_len > c->max_kv) {
        ok(c, cudaErrorInvalidValue);
        return;
    }
    memcpy(h, a->k, R * sizeof(float *));
    memcpy(h + R * sizeof(float *), a->v, R * sizeof(float *));
    memcpy(h + 2 * R * sizeof(float *), a->kv_len, R * sizeof(int));
    if (!args_send(c, bytes)) return;
    unsigned char *d = (unsigned char *)c->d_args;
    ok(c, mtk_attention(c->st, a->rows, a->heads, a->head_dim, a->q, a->q_stride, (const float *const *)d,
                        (const float *const *)(d + R * sizeof(float *)), (const int *)(d + 2 * R * sizeof(float *)),
                        a->kv_stride, a->out, a->out_stride, c->max_kv));
}

void be_embed(mt_backend *be, const float *table, int D, const int32_t *ids, const int *pos, int rows, float scale,
              int pad_idx, int pos_round, float *out) {
    cuda_backend *c = cb(be);
    if (!ok(c, cudaSuccess) || rows <= 0) return;
    int max_pos = 0;
    for (int r = 0; r < rows; r++) max_pos = pos[r] > max_pos ? pos[r] : max_pos;
    if (!pos_table_for(c, D, pos_round, max_pos + 1)) return;
    size_t bytes = (size_t)rows * (sizeof(int32_t) + sizeof(int));
    unsigned char *h = (unsigned char *)args_room(c, bytes);
    if (!h) return;
    memcpy(h, ids, (size_t)rows * sizeof(int32_t));
    memcpy(h + (size_t)rows * sizeof(int32_t), pos, (size_t)rows * sizeof(int));
    if (!args_send(c, bytes)) return;
    unsigned char *d = (unsigned char *)c->d_args;
    ok(c, mtk_embed(c->st, table, D, (const int32_t *)d, (const int *)(d + (size_t)rows * sizeof(int32_t)), rows,
                    scale, pad_idx, c->pos_table, out));
}

void be_scale_cols(mt_backend *be, float *x, int rows, int D, int stride, float s) {
    cuda_backend *c = cb(be);
    if (!ok(c, cudaSuccess)) return;
    ok(c, mtk_scale_cols(c->st, x, rows, D, stride, s));
}

void be_copy(mt_backend *be, float *dst, const float *src, size_t n) {
    cuda_backend *c = cb(be);
    if (!ok(c, cudaSuccess)) return;
    ok(c, cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, c->st));
}

const mt_backend_ops cuda_ops = {
    "cuda",        be_destroy,   be_alloc,     be_release,    be_upload, be_download, be_parallel_for,
    be_linear,     be_layernorm, be_attention, be_embed,      be_scale_cols, be_copy,
    0 /* host_visible */
};

} // namespace

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
    if ((e = cudaGetDeviceProperties(&p, 0)) != cudaSuccess)
        return stts_error_set(err, STTS_ERR_DEVICE, "cannot read CUDA device 0's properties: %s",
                              cudaGetErrorString(e));
    if (p.major != 9)
        return stts_error_set(err, STTS_ERR_UNSUPPORTED,
                              "CUDA device 0 (%s) has compute capability %d.%d; this build's kernels are for 9.0 "
                              "(Hopper): rebuild with CMAKE_CUDA_ARCHITECTURES for it, or use --device cpu",
                              p.name, p.major, p.minor);
    return STTS_OK;
}

extern "C" stts_status mt_cuda_backend_new(int max_kv, mt_backend **out, stts_error *err) {
    *out = NULL;
    stts_status st = mt_cuda_probe(err);
    if (st) return st;
    cudaError_t e = cudaSetDevice(0);
    if (e != cudaSuccess)
        return stts_error_set(err, STTS_ERR_DEVICE, "cudaSetDevice(0): %s", cudaGetErrorString(e));
    cuda_backend *c = (cuda_backend *)calloc(1, sizeof *c);
    if (!c) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    c->base.ops = &cuda_ops;
    c->base.threads = 1;
    c->max_kv = max_kv;
    if ((e = cudaStreamCreateWithFlags(&c->st, cudaStreamNonBlocking)) != cudaSuccess) {
        free(c);
        return stts_error_set(err, STTS_ERR_DEVICE, "cudaStreamCreate: %s", cudaGetErrorString(e));
    }
    cudaDeviceProp p;
    cudaGetDeviceProperties(&p, 0);
    snprintf(c->base.desc, sizeof c->base.desc, "cuda %.40s f32", p.name);
    *out = &c->base;
    return STTS_OK;
}

extern "C" double mt_cuda_d2d_bandwidth(size_t bytes, int reps) {
    void *a = NULL, *b = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    double best = 0.0;
    if (cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&b, bytes) != cudaSuccess ||
        cudaEventCreate(&e0) != cudaSuccess || cudaEventCreate(&e1) != cudaSuccess)
        goto done;
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
done:
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

extern "C" void *mt_cuda_backend_stream(mt_backend *be) {
    if (!be || be->ops != &cuda_ops) return NULL;
    return (void *)cb(be)->st;
}
