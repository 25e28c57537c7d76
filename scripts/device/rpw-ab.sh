#!/usr/bin/env bash
# rpw-ab.sh - one GPU-machine call for the one-row GEMV with two weight
# rows per warp (STTS_CUDA_RPW_MIN_N, kernels.cu gemv_rpw_min_n) and the
# merged gemv_dot: test_cuda with two rows a warp for every one-row GEMV,
# the A/B of the setting at two thresholds (ab-env.sh), the per-kernel trace
# of one greedy layer in each setting, and this tree's bench_nllb against
# bench_nllb_base (another commit's, copied in by hand; ab-bin.sh). Full
# output in $OUT/rpw-ab.log; a summary on stdout.
set -uo pipefail
C=.device/cuda
export LD_LIBRARY_PATH=$PWD/$C/lib STTS_TEST_SOURCE_DIR=$PWD
LOG=${OUT:-/tmp}/rpw-ab.log
{
  echo "== test_cuda, two rows a warp from N = 1"
  STTS_CUDA_RPW_MIN_N=1 timeout 120 $C/bin/test_cuda 2>&1 | tail -3
  for n in 0 3072 4096; do
    echo "== kernel trace, first layer, bf16 greedy, STTS_CUDA_RPW_MIN_N=$n"
    STTS_CUDA_RPW_MIN_N=$n STTS_CUDA_KTRACE=2 timeout 120 $C/bin/bench_nllb --device cuda --weights bf16 --reps 3 2>&1 |
      grep -E "graph [0-9]+ kernel" | head -12
  done
  AB_TRACE=0 bash scripts/device/ab-env.sh STTS_CUDA_RPW_MIN_N=3072 2
  AB_TRACE=0 bash scripts/device/ab-env.sh STTS_CUDA_RPW_MIN_N=4096 1
  bash scripts/device/ab-bin.sh 2
} > "$LOG" 2>&1
grep -E "^==|tests? (passed|failed)|graph [0-9]+ kernel|greedy|beam|same ids|differ" "$LOG" |
  sed -E 's/ +/ /g; s/ms\/step.*//' | cut -c1-150
