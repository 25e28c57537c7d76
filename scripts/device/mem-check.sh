#!/usr/bin/env bash
# mem-check.sh - GPU memory on the GPU machine: what the CUDA context holds
# and how the per-thread stack limit moves it (ctx-mem), the kernels' stack
# frames (cuobjdump, where the machine has it), and bench_nllb's memory by
# part (context, model, a session of 8 rows x 200 positions) with the
# engine's stack limit (256 bytes) and with the CUDA default (1024). Run from
# the repository root with .device/cuda carried (scripts/device/cuda-prepare.sh).
set -uo pipefail
C=.device/cuda
export LD_LIBRARY_PATH=$PWD/$C/lib
echo "== ctx-mem"
$C/bin/ctx-mem
CUOBJ=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -1)
if [ -n "$CUOBJ" ]; then
  echo "== kernels' stack frames (bench_nllb), largest first"
  $CUOBJ --dump-resource-usage $C/bin/bench_nllb 2>/dev/null |
    awk '/Function/{f=$2} /STACK:/{match($0,/STACK:[0-9]+/); s=substr($0,RSTART+6,RLENGTH-6); print s, f}' |
    sort -n -r | head -5
else
  echo "== no cuobjdump on this machine"
fi
for s in default 1024; do
  echo "== GPU memory, bf16, stack limit $s"
  if [ $s = default ]; then env=(); else env=(STTS_CUDA_STACK=$s); fi
  env "${env[@]}" timeout 120 $C/bin/bench_nllb --device cuda --weights bf16 --reps 2 2>&1 | grep -iE "GPU memory|greedy|beam"
done
