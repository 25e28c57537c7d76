#!/usr/bin/env bash
# beam-trace.sh - one GPU-machine call: where a beam-4 decode step's time
# goes. bench_nllb under the kernel trace (STTS_CUDA_KTRACE=2: per kernel
# kind, and the first kernels of each step graph one by one), for each
# weight format in WEIGHTS (bf16 int8), full LM head and SHORTLIST rows,
# then the plain timings. Run from the repository root with .device/cuda
# carried (scripts/device/cuda-prepare.sh).
set -uo pipefail
C=.device/cuda
export LD_LIBRARY_PATH=$PWD/$C/lib
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader
date -u
for w in ${WEIGHTS:-bf16 int8}; do
  for sl in 0 ${SHORTLIST:-}; do
    echo "== kernel trace, $w, shortlist rows $sl"
    STTS_CUDA_KTRACE=2 timeout 120 $C/bin/bench_nllb --device cuda --weights $w --shortlist-rows $sl --reps 3 2>&1 |
      grep -E "ktrace|us per|graph .* kernel" | head -${LINES_PER:-150}
  done
done
for r in 1 2; do
  timeout 120 $C/bin/bench_nllb --device cuda --weights bf16,int8 --shortlist-rows 0 --reps 5 --json 2>&1 | grep '^{' |
    python3 -c "import json,sys
for l in sys.stdin:
    d=json.loads(l); print('round $r', d['weights'], d['shortlist_rows'], d['search'], 'sentence', d['ms_per_sentence'], 'step', d['ms_per_step'], 'encode', d['encode_ms'])"
done
date -u
