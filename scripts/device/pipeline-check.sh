#!/usr/bin/env bash
# pipeline-check.sh - one GPU-machine call for issue 11's pipeline figure:
# "sentence ready -> first sample out" over samples/session.jsonl with the
# 600M-shaped model on the GPU (bf16, then int8), Open JTalk in-process and
# a WAV sink, and the same run with the model on the host's CPU for
# contrast. Needs the pack made by scripts/device/pipeline-prepare.sh
# (carry .device/pipeline). Logs and a summary go to $OUT.
set -uo pipefail
: "${OUT:?}"
P=/tmp/stts-pipeline
rm -rf $P && mkdir -p $P
# the GPU machine may lack xz(1); Python's lzma reads the pack as well
python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" .device/pipeline/pack.tar.xz $P
P=$P/p
export LD_LIBRARY_PATH=$P/lib
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
date -u | tee -a "$OUT/gpu.txt"
nproc | tee -a "$OUT/gpu.txt"
run_one() { # label, then bench_pipeline's arguments
  local label=$1
  shift
  echo "== $label: bench_pipeline $*"
  timeout 280 $P/bin/bench_pipeline --voice $P/voice/mei_normal.htsvoice --dict $P/dict \
    --sample samples/session.jsonl --demo-model models/demo-en-ja "$@" >"$OUT/$label.log" 2>&1
  echo "rc=$?" >>"$OUT/$label.log"
  grep -E "rc=|bench_pipeline:|model|sentence ready|translation|synthesis start|handed" "$OUT/$label.log"
}
run_one gpu-bf16 --device cuda --weights bf16
run_one gpu-int8 --device cuda --weights int8
run_one gpu-bf16-sl32k --device cuda --weights bf16 --shortlist-rows 32000
run_one cpu16-int8-sl32k --device cpu --weights int8 --shortlist-rows 32000 --threads 16
