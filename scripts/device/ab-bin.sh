#!/usr/bin/env bash
# ab-bin.sh [rounds] - one GPU-machine call comparing two builds of the
# engine: .device/cuda/bin/bench_nllb (this tree) against bench_nllb_base
# (another commit's, copied in beside it by hand), alternating runs so both
# see the same machine: bf16 and int8, full LM head and 32000 rows, greedy
# and beam 4. Correctness is test_cuda's and cuda-check.sh's part.
set -uo pipefail
C=.device/cuda
export LD_LIBRARY_PATH=$PWD/$C/lib
ROUNDS=${1:-2}
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader
date -u
for r in $(seq "$ROUNDS"); do
  for b in bench_nllb_base bench_nllb; do
    for sl in 0 32000; do
      echo "== round $r, $b, shortlist $sl"
      timeout 120 $C/bin/$b --device cuda --weights bf16,int8 --shortlist-rows $sl --reps 5 2>&1 |
        grep -E "greedy|beam" | sed -E 's/ms\/step.*//'
    done
  done
done
