#!/usr/bin/env bash
# beam-ln-ab.sh - one GPU-machine call: the LayerNorm GEMVs of beam steps
# (4 rows) now that several weight rows a warp take the LayerNorm too:
# test_cuda (default, STTS_CUDA_LN_SPLIT=0, the fold at every row count),
# the demo set's ids in each setting against the default's, bench_nllb
# alternating the previous binary (bin/bench_nllb_old, if carried) and the
# settings in MODES, and the int8 LM head's kernel time old vs new
# (one row: the int8 widening without I2F). Run from the repository root
# with .device/cuda carried. ROUNDS (2); MODES: settings separated by
# spaces, a setting's variables by commas (A=1,B=2).
set -uo pipefail
C=.device/cuda
export LD_LIBRARY_PATH=$PWD/$C/lib STTS_TEST_SOURCE_DIR=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader
date -u
read -r -a MODES <<< "${MODES:-default STTS_CUDA_LN_SPLIT=0 STTS_CUDA_LN_FOLD_ROWS=8}"
. "$(dirname "$0")/bench-lib.sh" # bench LABEL BINARY [ENV...], same_ids A B WHAT
tag() { echo "${1//[^A-Za-z0-9]/_}"; }
for mode in "${MODES[@]}"; do
  envs=(); [ "$mode" = default ] || IFS=, read -r -a envs <<< "$mode"
  echo "== test_cuda ($mode)"
  env "${envs[@]}" timeout 200 $C/bin/test_cuda 2>&1 | grep -iE "fail|passed|differ" | head -12
  env "${envs[@]}" timeout 200 $C/bin/test_cuda --demo models/demo-en-ja $C/data/test.en /tmp/bl-$(tag "$mode") 2>&1 |
    grep -E "^demo (greedy|beam)"
done
for f in /tmp/bl-default*; do
  for m in "${MODES[@]}"; do
    t=$(tag "$m"); [ "$t" = default ] && continue
    g=${f/bl-default/bl-$t}
    same_ids "$f" "$g" "default vs $t: ${f#/tmp/bl-default}"
  done
done
for r in $(seq "${ROUNDS:-2}"); do
  echo "== round $r"
  [ -x $C/bin/bench_nllb_old ] && bench old bench_nllb_old
  for mode in "${MODES[@]}"; do
    envs=(); [ "$mode" = default ] || IFS=, read -r -a envs <<< "$mode"
    bench "$mode" bench_nllb "${envs[@]}"
  done
done
for b in bench_nllb_old bench_nllb; do
  [ -x $C/bin/$b ] || continue
  echo "== $b: int8 greedy, the LM head (one row) and the LayerNorm GEMVs"
  STTS_CUDA_KTRACE=1 timeout 120 $C/bin/$b --device cuda --weights int8 --reps 3 2>&1 |
    awk '/ktrace: graph/{p = ($0 ~ / 89 kernels, 92/)} p' | grep -E "graph|Li1E3wi8" | head -6
done
date -u
