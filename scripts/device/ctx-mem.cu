// ctx-mem.cu - what a CUDA context costs in device memory on this GPU, and
// which limits move it: cudaMemGetInfo's "used" after the context is made,
// after a first kernel launch, and after each limit is lowered. A probe for
// the GPU machine (scripts/device/mem-check.sh), not part of the engine.
#include <cstdio>
#include <cuda_runtime.h>

__global__ void touch(int *p) { if (p) p[threadIdx.x] = threadIdx.x; }

static double used_mb() {
    size_t fr = 0, tot = 0;
    cudaMemGetInfo(&fr, &tot);
    return (double)(tot - fr) / 1e6;
}

int main() {
    cudaFree(0);
    size_t stack = 0, heap = 0, fifo = 0;
    cudaDeviceGetLimit(&stack, cudaLimitStackSize);
    cudaDeviceGetLimit(&heap, cudaLimitMallocHeapSize);
    cudaDeviceGetLimit(&fifo, cudaLimitPrintfFifoSize);
    printf("ctx-mem: context made: %.1f MB used (stack %zu B/thread, heap %zu B, printf fifo %zu B)\n", used_mb(),
           stack, heap, fifo);
    touch<<<1, 32>>>(nullptr);
    cudaDeviceSynchronize();
    printf("ctx-mem: after a first kernel: %.1f MB\n", used_mb());
    const size_t stacks[] = {512, 256, 64, 0};
    for (size_t s : stacks) {
        cudaError_t e = cudaDeviceSetLimit(cudaLimitStackSize, s);
        touch<<<1, 32>>>(nullptr);
        cudaDeviceSynchronize();
        size_t got = 0;
        cudaDeviceGetLimit(&got, cudaLimitStackSize);
        printf("ctx-mem: stack limit %zu (%s, now %zu): %.1f MB\n", s, cudaGetErrorName(e), got, used_mb());
    }
    cudaError_t e = cudaDeviceSetLimit(cudaLimitMallocHeapSize, 0);
    printf("ctx-mem: heap 0 (%s): %.1f MB\n", cudaGetErrorName(e), used_mb());
    e = cudaDeviceSetLimit(cudaLimitPrintfFifoSize, 0);
    printf("ctx-mem: printf fifo 0 (%s): %.1f MB\n", cudaGetErrorName(e), used_mb());
    return 0;
}
