#!/usr/bin/env bash
# cuda-prepare.sh [DEST] - builds the CUDA backend here (nvcc, sm_90, static
# cudart) and fills the carry folder for one GPU-machine call of
# cuda-check.sh: binaries, the Debian .so files they link (the GPU machine
# has none), this folder's scripts, and the demo test set (../shared does not
# travel). DEST defaults to /work/main/.device/cuda (the lead's checkout is
# what a `run` call sends; .device/ is git-ignored there), and DEST.tar.xz
# is the same folder compressed (the tree and the folder together are over
# the 64 MiB a call carries). Then:
#   run command="python3 scripts/device/unpack.py .device/cuda.tar.xz .device && bash .device/cuda/cuda-check.sh"
#       carry=[".device/cuda.tar.xz"] timeout_s=600
set -euo pipefail
cd "$(dirname "$0")/../.."
DEST=${1:-/work/main/.device/cuda}
B=build-cuda
export PATH=/usr/local/cuda/bin:$PATH
# sm_90 code without its PTX: the binaries are half the size (the call carries 64 MiB in all)
nice cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DSTTS_WERROR=ON -DSTTS_CUDA=ON -DSTTS_REQUIRE_OPENJTALK=OFF \
  -DCMAKE_CUDA_COMPILER="$(command -v nvcc)" -DSTTS_CUDA_ARCHS=90-real >/dev/null
nice cmake --build $B -j2 --target test_cuda bench_nllb bench_cuda_chain
# stream-tts (the CLI smoke run) needs the Open JTalk build; go on without it
nice cmake --build $B -j2 --target stream-tts || echo "cuda-prepare: stream-tts not built (CLI smoke run skipped)"
rm -rf "$DEST"
mkdir -p "$DEST/bin" "$DEST/lib" "$DEST/data"
cp $B/tests/mt/test_cuda $B/bench/bench_nllb $B/bench/bench_cuda_chain "$DEST/bin/"
# the context-memory probe (what the CUDA context itself holds, and which limits move it)
nvcc -arch=sm_90 -O2 -cudart static -o "$DEST/bin/ctx-mem" scripts/device/ctx-mem.cu
# the CLI smoke run only when asked (CUDA_PREPARE_CLI=1): stream-tts and the
# audio libraries it links are ~24 MB of the 64 MiB a device call carries
if [ "${CUDA_PREPARE_CLI:-0}" = 1 ] && [ $B/tools/stream-tts -nt $B/tests/mt/test_cuda ]; then
  cp $B/tools/stream-tts "$DEST/bin/"
fi
# CPU_CHECK=1: the engine's CPU tests for cpu-check.sh (from the Release build
# in build/), and the previous bench_nllb when /tmp/oldwt/build has one (a
# worktree of the commit to compare with)
if [ "${CPU_CHECK:-0}" = 1 ]; then
  nice cmake --build build -j2 --target test_backend_ops test_nllb_model test_nllb_parity test_weights_quality
  cp build/tests/mt/test_backend_ops build/tests/mt/test_nllb_model build/tests/mt/test_nllb_parity \
    build/tests/mt/test_weights_quality "$DEST/bin/"
  [ -x /tmp/oldwt/build/bench/bench_nllb ] && cp /tmp/oldwt/build/bench/bench_nllb "$DEST/bin/bench_nllb_old"
fi
strip --strip-debug "$DEST"/bin/*
# every shared library but the C/C++ runtime the GPU machine has itself
for b in "$DEST"/bin/*; do ldd "$b"; done | awk '/=> \//{print $3}' | sort -u |
  grep -vE '/(libc|libm|libpthread|libdl|librt|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so' |
  while read -r so; do cp -L "$so" "$DEST/lib/"; done
cp scripts/device/cuda-check.sh scripts/device/cpu-check.sh scripts/device/ab-env.sh scripts/device/fold-check.sh scripts/device/lnfold-check.sh scripts/device/rpw-rows-check.sh scripts/device/beam-ln-ab.sh scripts/device/bench-lib.sh scripts/device/beam-trace.sh scripts/device/nsys-step.sh scripts/device/hf-gpu-timing.py scripts/device/hf-demo-gpu.py scripts/device/hf-cpu-timing-cfg.py "$DEST/"
# the demo test set as the engine's tests and HF's reference see it (natural text)
python3 scripts/demo-model/prepare-data.py ../shared/data/small_parallel_enja /tmp/cuda-prep-data >/dev/null
cp /tmp/cuda-prep-data/test.en /tmp/cuda-prep-data/test.ja "$DEST/data/"
cp ../shared/nllb/nllb-200-distilled-600M.config.json ../shared/nllb/nllb-200-1.3B.special_tokens_map.json "$DEST/data/"
du -sh "$DEST"
# what a call carries: the folder compressed (scripts/device/unpack.py there)
XZ_OPT="-6 -T2" tar -C "$(dirname "$DEST")" -cJf "$DEST.tar.xz" "$(basename "$DEST")"
du -sh "$DEST.tar.xz"
