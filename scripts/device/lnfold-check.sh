#!/usr/bin/env bash
# lnfold-check.sh - one GPU-machine call for the LayerNorm folded into the
# Linear after it (kernels.h mtk_ln_linear_folded; cuda_backend.cu
# ln_fold_rc): test_cuda in three settings (STTS_CUDA_LN_FOLD=0: never;
# the default: int8 and f16; =1: every format, bf16 and f32 too), the demo
# set in each (GPU f32 == CPU f32 must hold in the first two; under =1 f32
# folds too and may move), HF transformers bf16 greedy against our bf16
# outputs unfolded (default) and folded (=1), bench_nllb alternating the
# three settings, and a kernel trace of int8 and bf16 folded and not. Run
# from the repository root with .device/cuda carried
# (scripts/device/cuda-prepare.sh). ROUNDS (2), HF (1: the HF comparison).
set -uo pipefail
C=.device/cuda
export LD_LIBRARY_PATH=$PWD/$C/lib STTS_TEST_SOURCE_DIR=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader
date -u
# MODES: the settings compared ("default" = none); the first is "off"
read -r -a MODES <<< "${MODES:-STTS_CUDA_LN_FOLD=0 default STTS_CUDA_LN_FOLD=1}"
tag() { case "$1" in default) echo default ;; STTS_CUDA_LN_FOLD=0) echo off ;; STTS_CUDA_LN_FOLD=1) echo all ;; *) echo "${1//[^A-Za-z0-9]/_}" ;; esac; }
for mode in "${MODES[@]}"; do
  envs=(); [ "$mode" = default ] || envs=("$mode")
  echo "== test_cuda ($mode): failures named"
  env "${envs[@]}" timeout 150 $C/bin/test_cuda 2>&1 | grep -iE "fail|passed|folded" | head -20
  env "${envs[@]}" timeout 200 $C/bin/test_cuda --demo models/demo-en-ja $C/data/test.en /tmp/lnf-$(tag "$mode") 2>&1 |
    grep -E "^demo (greedy|beam)"
done
for f in /tmp/lnf-off*; do
  for t in $(for m in "${MODES[@]}"; do tag "$m"; done); do
    [ "$t" = off ] && continue
    g=${f/lnf-off/lnf-$t}
    if cmp -s "$f" "$g"; then echo "== same ids, off vs $t: ${f#/tmp/lnf-off}"; else echo "== ids differ, off vs $t: ${f#/tmp/lnf-off}"; fi
  done
done
python3 - $(for m in "${MODES[@]}"; do [ "$(tag "$m")" = off ] || tag "$m"; done) <<'PY'
import json, sys
def ids(p): return [json.loads(l).get("ids") for l in open(p)]
for w in ("bf16", "int8"):
    for t in sys.argv[1:]:
        try:
            a, b = ids(f"/tmp/lnf-off-{w}-greedy.jsonl"), ids(f"/tmp/lnf-{t}-{w}-greedy.jsonl")
            f = ids("/tmp/lnf-off-greedy.jsonl")
        except OSError as e:
            print("no file", e); continue
        print(f"{w} greedy, unfolded vs {t}: {sum(x == y for x, y in zip(a, b))}/{len(a)} identical; "
              f"== f32: unfolded {sum(x == y for x, y in zip(a, f))}, {t} {sum(x == y for x, y in zip(b, f))}")
PY
echo "== test_ln_fold under compute-sanitizer memcheck"
command -v compute-sanitizer >/dev/null &&
  timeout 120 compute-sanitizer --tool memcheck --print-limit 5 $C/bin/test_cuda --only test_ln_fold 2>&1 | tail -3
for r in $(seq "${ROUNDS:-2}"); do
  for mode in "${MODES[@]}"; do
    envs=(); [ "$mode" = default ] || envs=("$mode")
    for sl in 0 32000; do
      env "${envs[@]}" timeout 120 $C/bin/bench_nllb --device cuda --weights bf16,int8 --shortlist-rows $sl --reps 5 --json 2>&1 |
        grep '^{' | python3 -c "import json,sys
for l in sys.stdin:
    d=json.loads(l); print('round $r', '$mode', d['weights'], d['shortlist_rows'], d['search'], 'sentence', d['ms_per_sentence'], 'step', d['ms_per_step'], 'encode', d['encode_ms'])"
    done
  done
done
for mode in ${TRACE_MODES:-STTS_CUDA_LN_FOLD=0 STTS_CUDA_LN_FOLD=1}; do
  for w in ${TRACE_WEIGHTS:-int8 bf16}; do
    echo "== kernel trace, $w, full LM head ($mode)"
    envs=(); [ "$mode" = default ] || envs=("$mode")
    env "${envs[@]}" STTS_CUDA_KTRACE=1 timeout 120 $C/bin/bench_nllb --device cuda --weights $w --reps 3 2>&1 |
      grep -E "ktrace: graph [24],|us per replay" | head -16
  done
done
if [ "${HF:-1}" = 1 ]; then
  echo "== HF bf16 greedy vs ours: unfolded (default) and folded (STTS_CUDA_LN_FOLD=1)"
  HF_DEMO_EXTRA="lnfold-bf16-greedy=/tmp/lnf-all-bf16-greedy.jsonl" timeout 240 python3 $C/hf-demo-gpu.py \
    models/demo-en-ja $C/data $C/data/nllb-200-1.3B.special_tokens_map.json /tmp/lnf-default 2>&1 |
    grep -v -iE "warn|max_new_tokens|Loading weights"
fi
date -u
