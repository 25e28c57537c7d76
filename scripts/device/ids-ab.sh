#!/usr/bin/env bash
# ids-ab.sh [VAR=VALUE[,VAR=VALUE] ...] - one GPU-machine call: test_cuda and
# the demo set (test_cuda --demo: GPU f32 vs CPU f32, bf16 and int8 vs f32)
# with the default settings and with each given setting ("A=1,B=2" sets two
# at once), then the demo outputs of each setting compared file by file with
# the default's (identical files: the same ids for every sentence). No
# timing: trace-ab.sh times the same settings. Run from the repository root
# with .device/cuda carried (scripts/device/cuda-prepare.sh).
set -uo pipefail
C=.device/cuda
export LD_LIBRARY_PATH=$PWD/$C/lib STTS_TEST_SOURCE_DIR=$PWD
O=${OUT:-/tmp}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
date -u
modes=(default "$@")
envs_of() { [ "$1" = default ] && return; tr ',' '\n' <<<"$1"; }
i=0
for mode in "${modes[@]}"; do
  mapfile -t envs < <(envs_of "$mode")
  echo "== setting $i: $mode"
  env "${envs[@]}" timeout 150 $C/bin/test_cuda >"$O/test_cuda-$i.log" 2>&1
  echo "test_cuda rc=$? : $(tail -1 "$O/test_cuda-$i.log")"
  grep -E "CHECK failed" "$O/test_cuda-$i.log" | head -5
  [ "${IDS_DEMO:-1}" = 0 ] && { i=$((i + 1)); continue; }
  env "${envs[@]}" timeout 200 $C/bin/test_cuda --demo models/demo-en-ja $C/data/test.en "$O/demo-$i" \
    >"$O/demo-$i.log" 2>&1
  echo "demo rc=$?"; grep -E "^demo (greedy|beam)" "$O/demo-$i.log"
  if [ $i -gt 0 ]; then
    for f in "$O"/demo-0-*.jsonl; do
      g=${f/demo-0-/demo-$i-}
      if cmp -s "$f" "$g"; then echo "same ids as the default: ${f##*/demo-0-}"; else echo "IDS DIFFER from the default: ${f##*/demo-0-}"; fi
    done
  fi
  i=$((i + 1))
done
