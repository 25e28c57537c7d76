#!/usr/bin/env bash
# fixtures-and-demo.sh - the GPU-machine run that makes the engine's parity
# fixtures and trains the demo model (the machine has torch/transformers but
# no internet, and ../shared does not travel there: the caller carries
# .device/ with the prepared corpus, both spm models and the language map:
#   scripts/demo-model/prepare-data.py ../shared/data/small_parallel_enja .device/data
#   scripts/demo-model/train-spm.sh .device/data .device/demo-spm 8000
#   scripts/fixtures/train-fixture-spm.sh .device/fixture-spm
#   cp ../shared/nllb/nllb-200-1.3B.special_tokens_map.json .device/
# Results go to $OUT: fixtures.tgz, demo.tgz, logs, hf-test.json.
set -uo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
OUT=${OUT:?}
LM=.device/nllb-200-1.3B.special_tokens_map.json
python3 -c "import torch, transformers, sentencepiece, sacrebleu, safetensors; print('torch', torch.__version__, 'transformers', transformers.__version__, 'spm', sentencepiece.__version__, 'sacrebleu', sacrebleu.__version__, 'cuda', torch.cuda.is_available())"

echo "== fixtures"
mkdir -p "$OUT/fx"
python3 scripts/fixtures/make-mt-fixtures.py --spm .device/fixture-spm.model --out "$OUT/fx/mt" --lang-map $LM --data .device/data \
  > "$OUT/fixtures.log" 2>&1; echo "fixtures rc=$?"; tail -8 "$OUT/fixtures.log"
(cd "$OUT/fx" && tar czf ../fixtures.tgz mt) && rm -rf "$OUT/fx"

echo "== demo model"
mkdir -p "$OUT/demo"
python3 scripts/train-demo-model.py --data .device/data --spm .device/demo-spm.model --out "$OUT/demo/demo-en-ja" \
  --lang-map $LM --max-seconds "${TRAIN_SECONDS:-300}" > "$OUT/train.log" 2>&1; echo "train rc=$?"
grep -E "epoch|averaged|parameters|saved|Error|error" "$OUT/train.log" | tail -20
(cd "$OUT/demo" && tar czf ../demo.tgz demo-en-ja) && ls -la "$OUT/demo/demo-en-ja"

echo "== HF evaluation on the test set"
timeout "${EVAL_SECONDS:-200}" python3 scripts/demo-model/eval-hf.py --model "$OUT/demo/demo-en-ja" --data .device/data \
  --out "$OUT/hf-test.json" --lang-map $LM 2>&1 | grep -v Warning | tail -5
rm -rf "$OUT/demo"
ls -la "$OUT"
