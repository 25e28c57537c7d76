/* cuda_stub.c - the CUDA backend's entry points in a build without CUDA
 * (-DSTTS_CUDA=OFF): every request for the GPU gets a clear error, so
 * `--device auto` falls back to the CPU and `--device cuda` says what to do. */
#include "cuda/cuda_backend.h"

stts_status mt_cuda_probe(stts_error *err) {
    return stts_error_set(err, STTS_ERR_UNSUPPORTED,
                          "this build has no CUDA backend (configure with -DSTTS_CUDA=ON, needs nvcc)");
}

int mt_cuda_built(void) { return 0; }

stts_status mt_cuda_backend_new(int max_kv, mt_backend **out, stts_error *err) {
    (void)max_kv;
    *out = 0;
    return mt_cuda_probe(err);
}

double mt_cuda_d2d_bandwidth(size_t bytes, int reps) {
    (void)bytes, (void)reps;
    return 0.0;
}

size_t mt_cuda_mem_used(void) { return 0; }

void *mt_cuda_exec_stream(mt_exec *x) {
    (void)x;
    return 0;
}

int mt_cuda_exec_program_ops(mt_exec *x) {
    (void)x;
    return 0;
}

void mt_cuda_backend_set_bf16_activations(mt_backend *be, int on) {
    (void)be, (void)on;
}

void mt_cuda_ln_fold_force(int mode) { (void)mode; }
