#!/usr/bin/env bash
# parity-600m.sh - the GPU-machine run for the engine at full size and the
# demo model's scores. Carried in .device/: bin/nllb-check and bin/bench_nllb
# built here (Release), lib/ with libsentencepiece.so.0 and libjansson.so.4
# from Debian (the machine has no Debian packages), the 600M config, the
# fixture spm model, engine-test.json (our outputs on the demo test set) and
# shared/data/small_parallel_enja/test.* .
set -uo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 LD_LIBRARY_PATH=$PWD/.device/lib
OUT=${OUT:?}
lscpu | grep -E "Model name|^CPU\(s\)|Flags" | cut -c1-200
echo "== demo model: sacrebleu scores, HF vs our engine"
python3 scripts/demo-model/evaluate.py score --hf tests/fixtures/demo/hf-test.json --engine .device/engine-test.json \
  --shared .device/shared 2>&1 | tee "$OUT/quality.md"
echo "== 600M-shaped random model: HF reference"
python3 scripts/fixtures/make-600m-reference.py --config .device/nllb-200-distilled-600M.config.json \
  --spm .device/fixture-spm.model --out /tmp/m600 2>&1 | grep -v Warning | tail -6
echo "== our engine vs HF at full size"
.device/bin/nllb-check /tmp/m600 /tmp/m600 --threads 16 2>&1 | tee "$OUT/parity600m.txt"
echo "== side by side on this machine's CPU, 2 threads: HF transformers, then ours"
python3 scripts/fixtures/hf-cpu-timing.py /tmp/m600 2 2>&1 | grep -v -i warn | tee "$OUT/hf-cpu.txt"
.device/bin/bench_nllb --threads 2 2>&1 | tail -25 | tee "$OUT/bench-2t.txt"
