#!/usr/bin/env bash
# trace-modes.sh - one GPU-machine call: the kernel trace (STTS_CUDA_KTRACE=1,
# kernels.cu) of bench_nllb --device cuda for each weight format and LM head
# (bf16 / int8, full and 32000 rows), greedy and beam 4 in the same process,
# each trace saved whole to $OUT/trace-<weights>-<rows>.txt for reading
# here, and the plain timing of the same settings first (no trace). Run from
# the repository root with .device/cuda carried (scripts/device/cuda-prepare.sh).
set -uo pipefail
C=.device/cuda
export LD_LIBRARY_PATH=$PWD/$C/lib STTS_TEST_SOURCE_DIR=$PWD
O=${OUT:-/tmp}
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader
date -u
for w in bf16 int8; do
  for rows in 0 32000; do
    echo "== $w, shortlist rows $rows"
    timeout 120 $C/bin/bench_nllb --device cuda --weights $w --shortlist-rows $rows --reps 3 2>&1 |
      grep -E "greedy|beam" | sed -E 's/ +/ /g' | cut -c1-120
    STTS_CUDA_KTRACE=${KTRACE:-1} timeout 180 $C/bin/bench_nllb --device cuda --weights $w --shortlist-rows $rows \
      --reps 3 > "$O/trace-$w-$rows.txt" 2>&1
  done
done
