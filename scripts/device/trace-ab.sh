#!/usr/bin/env bash
# trace-ab.sh [VAR=VALUE ...] - one GPU-machine call comparing the CUDA
# engine's default against each given environment setting (one setting per
# argument; "A=1,B=2" sets two at once): bench_nllb --device cuda (bf16 and
# int8, full LM head and 32000 rows, greedy and beam 4) alternating the
# settings for ROUNDS rounds (default 2), then for each setting a kernel
# trace (STTS_CUDA_KTRACE=2: per kernel kind and a step's first kernels one
# by one) of bf16 saved whole to $OUT/trace-<n>.txt. No correctness checks:
# use ab-env.sh or cuda-check.sh for those. Run from the repository root
# with .device/cuda carried (scripts/device/cuda-prepare.sh).
set -uo pipefail
C=.device/cuda
export LD_LIBRARY_PATH=$PWD/$C/lib STTS_TEST_SOURCE_DIR=$PWD
O=${OUT:-/tmp}
ROUNDS=${ROUNDS:-2}
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader
date -u
modes=(default "$@")
envs_of() { [ "$1" = default ] && return; tr ',' '\n' <<<"$1"; }
for r in $(seq "$ROUNDS"); do
  for mode in "${modes[@]}"; do
    mapfile -t envs < <(envs_of "$mode")
    for sl in 0 32000; do
      echo "== round $r, $mode, shortlist $sl"
      env "${envs[@]}" timeout 120 $C/bin/bench_nllb --device cuda --weights bf16,int8 --shortlist-rows $sl --reps 5 2>&1 |
        grep -E "greedy|beam" | sed -E 's/ +/ /g' | cut -c1-100
    done
  done
done
i=0
for mode in "${modes[@]}"; do
  mapfile -t envs < <(envs_of "$mode")
  echo "== kernel trace, bf16, full LM head ($mode): $O/trace-$i.txt"
  env "${envs[@]}" STTS_CUDA_KTRACE=2 timeout 180 $C/bin/bench_nllb --device cuda --weights bf16 --reps 3 \
    > "$O/trace-$i.txt" 2>&1
  grep -E "us per (replay|run)" "$O/trace-$i.txt" | head -30
  i=$((i + 1))
done
