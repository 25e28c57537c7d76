/* cuda_backend.h - the CUDA backend of the NLLB engine (mt_backend on an
 * NVIDIA GPU) and the device probes the CLI and benchmarks use. Built with
 * -DSTTS_CUDA=ON; otherwise cuda_stub.c answers every call with
 * STTS_ERR_UNSUPPORTED, so callers need no #ifdef. The CUDA runtime is
 * linked statically and finds the driver (libcuda) at run time: a machine
 * without a driver gets an error from mt_cuda_probe, never a crash. */
#ifndef MT_CUDA_BACKEND_H
#define MT_CUDA_BACKEND_H

#include <stddef.h>

#include "backend.h"
#include "stts_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* STTS_OK when this build has CUDA and a usable device (driver present, a
 * GPU the sm_90 code runs on); else an error saying why. */
stts_status mt_cuda_probe(stts_error *err);
/* 1 when this build has the CUDA backend (0: cuda_stub.c): whether a failed
 * probe is worth saying when the CPU is taken by default. */
int mt_cuda_built(void);

/* The CUDA backend on device 0. max_kv bounds kv_len in attention. */
stts_status mt_cuda_backend_new(int max_kv, mt_backend **out, stts_error *err);

/* Device-to-device copy bandwidth in GB/s (bytes read + bytes written per
 * second) over a `bytes` buffer, best of reps; <= 0 on failure. */
double mt_cuda_d2d_bandwidth(size_t bytes, int reps);

/* An executor's stream (a cudaStream_t), for launching kernels.h kernels
 * in order with its ops (tests); NULL for other backends' executors. */
void *mt_cuda_exec_stream(mt_exec *x);

/* HF's bf16 arithmetic on a CUDA backend (kernels.h MTK_ACT_BF16):
 * activations rounded to bf16 where HF's bf16 model rounds them, and the
 * f32 vectors made afterwards (biases, LayerNorm parameters) and the
 * position table rounded to bf16 values, as that model holds them. The
 * model sets it for bf16 weights, before making any weight;
 * STTS_CUDA_BF16_ACTIVATIONS=0 keeps f32 activations (for comparison). No
 * effect on other backends. */
void mt_cuda_backend_set_bf16_activations(mt_backend *be, int on);

/* The LayerNorm folded into the Linear after it (cuda_backend.cu
 * ln_fold_rc), process-wide: 1 for every weight format (f32 too), 0 never,
 * -1 the default (int8 and f16; STTS_CUDA_LN_FOLD). Tests; no effect on
 * other backends. */
void mt_cuda_ln_fold_force(int mode);

/* How many of the last decode step's ops ran inside step programs
 * (program.h; 0 when the step ran as kernels, or for other backends). */
int mt_cuda_exec_program_ops(mt_exec *x);

/* Device memory in use on device 0 (total - free), bytes; 0 on failure. */
size_t mt_cuda_mem_used(void);

#ifdef __cplusplus
}
#endif

#endif
