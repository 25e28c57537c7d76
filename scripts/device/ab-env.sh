#!/usr/bin/env bash
# ab-env.sh VAR=VALUE [rounds] - one GPU-machine call comparing the CUDA
# engine with and without one environment setting (e.g. STTS_CUDA_PDL_EARLY=1),
# alternating runs of the same binaries so that both see the same machine:
# correctness first (test_cuda, the demo set), then bench_nllb --device cuda
# (bf16 and int8, full LM head and 32000 rows) in each setting, then the
# kernel trace (STTS_CUDA_KTRACE=1) of bf16 in each setting. Run from the
# repository root with .device/cuda carried (scripts/device/cuda-prepare.sh).
set -uo pipefail
C=.device/cuda
export LD_LIBRARY_PATH=$PWD/$C/lib STTS_TEST_SOURCE_DIR=$PWD
SET=${1:?usage: ab-env.sh VAR=VALUE [rounds]}
ROUNDS=${2:-2}
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader
date -u
for mode in default "$SET"; do
  envs=(); [ "$mode" = default ] || envs=("$mode")
  echo "== correctness ($mode)"
  env "${envs[@]}" timeout 120 $C/bin/test_cuda 2>&1 | tail -1
  out=/tmp/ab-ours-$( [ "$mode" = default ] && echo default || echo set )
  env "${envs[@]}" timeout 200 $C/bin/test_cuda --demo models/demo-en-ja $C/data/test.en $out 2>&1 | grep -E "^demo (greedy|beam)"
done
# the demo outputs of both settings, file by file (identical: the same ids)
for f in /tmp/ab-ours-default*; do
  g=${f/ab-ours-default/ab-ours-set}
  if cmp -s "$f" "$g"; then echo "== same ids: ${f#/tmp/ab-ours-default}"; else echo "== ids differ: ${f#/tmp/ab-ours-default}"; fi
done
for r in $(seq "$ROUNDS"); do
  for mode in default "$SET"; do
    envs=(); [ "$mode" = default ] || envs=("$mode")
    for sl in 0 32000; do
      echo "== round $r, $mode, shortlist $sl"
      env "${envs[@]}" timeout 120 $C/bin/bench_nllb --device cuda --weights bf16,int8 --shortlist-rows $sl --reps 5 2>&1 |
        grep -E "greedy|beam"
    done
  done
done
# AB_TRACE=0: no kernel trace (a shorter output when several A/Bs share a call)
[ "${AB_TRACE:-1}" = 0 ] && exit 0
for mode in default "$SET"; do
  envs=(); [ "$mode" = default ] || envs=("$mode")
  echo "== kernel trace, bf16, full LM head ($mode)"
  env "${envs[@]}" STTS_CUDA_KTRACE=1 timeout 120 $C/bin/bench_nllb --device cuda --weights bf16 --reps 3 2>&1 |
    grep -E "ktrace: (graph [24],|kernels launched)|us per (replay|run)" | head -40
done
