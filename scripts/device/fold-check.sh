#!/usr/bin/env bash
# fold-check.sh - one GPU-machine call for the folded cross-attention
# (backend.h cross_fold_*; on by default for bf16/int8/f16 weights): its
# op test, the demo set with and without it (GPU f32 == CPU f32 must hold in
# both; bf16/int8 ids may move), HF transformers bf16 greedy against both
# settings' bf16 outputs, then bench_nllb alternating both settings and a
# kernel trace of each (ab-env.sh STTS_CROSS_FOLD=0). Run from the
# repository root with .device/cuda carried (scripts/device/cuda-prepare.sh).
set -uo pipefail
C=.device/cuda
export LD_LIBRARY_PATH=$PWD/$C/lib STTS_TEST_SOURCE_DIR=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
echo "== test_cuda, every case (failures named)"
timeout 150 $C/bin/test_cuda 2>&1 | grep -iE "fail|passed" | head -20
echo "== bench_nllb --json, greedy bf16/int8: the first step (prefill + the fold's preparation) and the rest"
for mode in default STTS_CROSS_FOLD=0; do
  envs=(); [ "$mode" = default ] || envs=("$mode")
  env "${envs[@]}" timeout 100 $C/bin/bench_nllb --device cuda --weights bf16,int8 --reps 5 --json 2>&1 | grep '^{' |
    python3 -c "import json,sys
for l in sys.stdin:
    d=json.loads(l); print('$mode', d['weights'], d['search'], 'sentence', d['ms_per_sentence'], 'step', d['ms_per_step'], 'first step', d['first_step_ms'], 'encode', d['encode_ms'])"
done
echo "== test_cross_fold under compute-sanitizer memcheck"
command -v compute-sanitizer >/dev/null &&
  timeout 120 compute-sanitizer --tool memcheck --print-limit 5 $C/bin/test_cuda --only test_cross_fold 2>&1 | tail -3
AB_TRACE=${AB_TRACE:-1} bash $C/ab-env.sh STTS_CROSS_FOLD=0 "${ROUNDS:-2}"
echo "== HF bf16 greedy vs ours, fold on (default) and off"
HF_DEMO_EXTRA="nofold-bf16-greedy=/tmp/ab-ours-set-bf16-greedy.jsonl" timeout 240 python3 $C/hf-demo-gpu.py \
  models/demo-en-ja $C/data $C/data/nllb-200-1.3B.special_tokens_map.json /tmp/ab-ours-default 2>&1 |
  grep -v -iE "warn|max_new_tokens|Loading weights"
[ "${HFTIMING:-1}" = 1 ] && timeout 150 python3 $C/hf-gpu-timing.py $C/data/nllb-200-distilled-600M.config.json 2>&1 |
  grep -v -i warn | tail -8
date -u
