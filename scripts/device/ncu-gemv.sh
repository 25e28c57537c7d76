#!/usr/bin/env bash
# ncu-gemv.sh - Nsight Compute on the decode GEMVs of one and of four rows
# (bf16, bench_nllb greedy and beam 4): duration, memory throughput, warp
# stall reasons, occupancy, per kernel; to see why a 4-row GEMV costs ~3x a
# 1-row one on the H200. Logs to $OUT. Run from the repository root with
# .device/cuda carried (scripts/device/cuda-prepare.sh).
set -uo pipefail
C=.device/cuda
export LD_LIBRARY_PATH=$PWD/$C/lib
O=${OUT:-/tmp}
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
[ -n "$NCU" ] || { echo "ncu-gemv: no ncu"; exit 0; }
for r in 1 4; do
  timeout 200 "$NCU" --clock-control none --kernel-name-base demangled --kernel-name "regex:gemv_kernel<.int.$r," \
    --launch-skip 300 --launch-count 24 \
    --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section Occupancy \
    --section LaunchStats --section SchedulerStats \
    $C/bin/bench_nllb --device cuda --weights bf16 --reps 1 --steps 24 >"$O/ncu-gemv$r.log" 2>&1
  echo "ncu rows $r rc=$?"
done
