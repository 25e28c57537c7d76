#!/usr/bin/env bash
# cpu-floors.sh - one GPU-machine call for the CPU engine on that machine's
# 16-core host: bench_nllb --device cpu with both floors (bytes and the
# kernel's arithmetic), int8 and bf16 with a 32000-row shortlist and f32 in
# full, and bf16 with and without the widened panels (STTS_CPU_HALF_PANEL=4,
# kernels.c half_panel_rows), alternating. Run from the repository root with
# .device/cuda carried (scripts/device/cuda-prepare.sh). Full output in
# $OUT/cpu-floors.log; the per-mode lines on stdout.
set -uo pipefail
C=.device/cuda
export LD_LIBRARY_PATH=$PWD/$C/lib
LOG=${OUT:-/tmp}/cpu-floors.log
T=${THREADS:-16}
{
  nproc; grep -m1 'model name' /proc/cpuinfo; uptime
  echo "== int8 + 32000 rows, bf16 + 32000 rows"
  timeout 200 $C/bin/bench_nllb --device cpu --threads "$T" --weights int8,bf16 --shortlist-rows 32000 --reps 3
  for r in 1 2; do
    for p in 0 4; do
      echo "== round $r, bf16 + 32000 rows, STTS_CPU_HALF_PANEL=$p"
      STTS_CPU_HALF_PANEL=$p timeout 120 $C/bin/bench_nllb --device cpu --threads "$T" --weights bf16 --shortlist-rows 32000 --reps 3
    done
  done
  echo "== f32, full vocabulary"
  timeout 200 $C/bin/bench_nllb --device cpu --threads "$T" --weights f32 --reps 2
  uptime
} > "$LOG" 2>&1
grep -E "^==|model name|^[0-9]+$|weights \(|greedy|beam 4|arithmetic|best probe|load average" "$LOG" |
  sed -E 's/ +/ /g' | cut -c1-230
