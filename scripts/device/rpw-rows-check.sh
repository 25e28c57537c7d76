#!/usr/bin/env bash
# rpw-rows-check.sh - one GPU-machine call for several weight rows a warp
# at 2-8 input rows (kernels.cu gemv_rpw_rows_min_n, gemv_dot_rows) and the
# int8 widening without I2F (device_common.cuh wi8): test_cuda (default, and
# with the path for every GEMV), the demo set's ids from the new binary
# (default, path off) and from the previous one (bin/*_old, when
# cuda-prepare's folder has them: the same bits are expected everywhere),
# bench_nllb alternating old / new / new with the path off / new with the
# path from 1024 columns, and a kernel trace of the beam steps. Run from the
# repository root with .device/cuda carried. ROUNDS (2).
set -uo pipefail
C=.device/cuda
export LD_LIBRARY_PATH=$PWD/$C/lib STTS_TEST_SOURCE_DIR=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader
date -u
echo "== test_cuda (default)"
timeout 200 $C/bin/test_cuda 2>&1 | grep -iE "fail|passed|differ" | head -20
echo "== test_cuda (STTS_CUDA_RPW_ROWS_MIN_N=1: several rows a warp in every GEMV of 2-8 rows)"
STTS_CUDA_RPW_ROWS_MIN_N=1 timeout 200 $C/bin/test_cuda 2>&1 | grep -iE "fail|passed|differ" | head -20
. "$(dirname "$0")/bench-lib.sh" # bench LABEL BINARY [ENV...], same_ids A B WHAT
run_demo() { # tag binary env...
  local tag=$1 bin=$2; shift 2
  env "$@" timeout 200 $C/bin/$bin --demo models/demo-en-ja $C/data/test.en /tmp/rr-$tag 2>&1 | grep -E "^demo (greedy|beam)"
}
run_demo new test_cuda
run_demo off test_cuda STTS_CUDA_RPW_ROWS_MIN_N=0
[ -x $C/bin/test_cuda_old ] && run_demo old test_cuda_old
for f in /tmp/rr-new*; do
  for t in off old; do
    g=${f/rr-new/rr-$t}; [ -f "$g" ] || continue
    same_ids "$f" "$g" "new vs $t: ${f#/tmp/rr-new}"
  done
done
for r in $(seq "${ROUNDS:-2}"); do
  echo "== round $r"
  [ -x $C/bin/bench_nllb_old ] && bench old bench_nllb_old
  bench new bench_nllb
  bench off bench_nllb STTS_CUDA_RPW_ROWS_MIN_N=0
  bench from1024 bench_nllb STTS_CUDA_RPW_ROWS_MIN_N=1024
done
for w in int8 bf16; do
  echo "== kernel trace, $w, beam steps (4 rows), full LM head"
  STTS_CUDA_KTRACE=1 timeout 120 $C/bin/bench_nllb --device cuda --weights $w --reps 3 2>&1 |
    awk '/ktrace: graph/{p = ($0 ~ / 137 kernels/ || $0 ~ / 89 kernels/)} p' | head -24
done
date -u
