#!/usr/bin/env bash
# cuda-check.sh - one GPU-machine call for the CUDA backend (issue 11), run
# from the repository root with the carry folder .device/cuda made by
# scripts/device/cuda-prepare.sh. Logs go to $OUT; the last lines are a
# summary table.
#   1. kernels against references + GPU ids == CPU ids on tests/fixtures/mt
#      (test_cuda), then the same under compute-sanitizer memcheck
#   2. the demo model's 500 test sentences: GPU f32 ids == CPU f32 ids,
#      greedy and beam 4; GPU bf16 and int8 greedy vs GPU f32 (test_cuda --demo)
#   (test_cuda and bench_nllb also run with STTS_CUDA_PROGRAM=1: decode
#   steps as one persistent step program instead of kernels, for comparison)
#   3. HF transformers on the GPU on the same sentences (bf16 and fp32
#      greedy, fp32 beam 4): identical ids and char BLEU of each side
#   4. stream-tts translate --device cuda / auto smoke run
#   5. bench_nllb --device cuda --json (600M shape; f32, bf16, int8) and HF
#      bf16/fp32 timing of the same work on the same GPU in the same call
#   6. Nsight Compute on a few decode-step kernels (bf16)
#   8. bench_cuda_chain: the latency floor of a chain of dependent phases
#      (empty kernels, a vector round trip, a minimal GEMV; PDL and plain;
#      one persistent kernel with grid barriers), beside bench_nllb bf16
#   7. the CPU engine on the machine's 16-core host (bench_nllb --device cpu
#      --threads 16, f32 and int8, full vocabulary and 32000 shortlist rows)
#      and HF transformers fp32 on the same CPU (hf-cpu-timing-cfg.py)
# SKIP="memcheck hfdemo ncu ..." leaves steps out (names: memcheck demo cli
# bench hftiming hfdemo ncu cpu racecheck chain) when a call's device time is short.
set -uo pipefail
SKIP=" ${SKIP:-} "
skip() { [[ "$SKIP" == *" $1 "* ]]; }
C=.device/cuda
FINAL=${OUT:?}
OUT=/tmp/cuda-check   # logs here, packed into $FINAL/logs.tar.gz at the end (8 files come back at most)
rm -rf $OUT && mkdir -p $OUT
export LD_LIBRARY_PATH=$PWD/$C/lib PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export STTS_TEST_SOURCE_DIR=$PWD
summary=$OUT/summary.txt
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv | tee "$OUT/gpu.txt"
date -u | tee -a "$OUT/gpu.txt"

echo "== 8. the latency floor of dependent phases (bench_cuda_chain), beside bench_nllb bf16"
if ! skip chain && [ -x $C/bin/bench_cuda_chain ]; then
  for p in 96 24; do
    timeout 60 $C/bin/bench_cuda_chain --phases $p --reps 20 >"$OUT/chain-$p.log" 2>&1
    note "bench_cuda_chain --phases $p rc=$?"; cat "$OUT/chain-$p.log" | tee -a "$summary"
  done
  timeout 60 $C/bin/bench_nllb --device cuda --weights bf16 --reps 5 >"$OUT/chain-bench.log" 2>&1
  note "bench_nllb bf16 (same call) rc=$?"; grep -E "greedy|beam" "$OUT/chain-bench.log" | tee -a "$summary"
fi

echo "== 1. test_cuda (kernels, fixture parity)"
timeout 120 $C/bin/test_cuda >"$OUT/test_cuda.log" 2>&1
note "test_cuda rc=$? : $(tail -1 "$OUT/test_cuda.log")"
grep -E "CHECK failed|translations compared|backend" "$OUT/test_cuda.log" | head -20
STTS_CUDA_GRAPHS=0 timeout 120 $C/bin/test_cuda >"$OUT/test_cuda_nographs.log" 2>&1
note "test_cuda without step graphs rc=$? : $(tail -1 "$OUT/test_cuda_nographs.log")"
for i in 2 3; do # races between early-started kernels would show as runs that differ
  timeout 120 $C/bin/test_cuda >"$OUT/test_cuda_$i.log" 2>&1
  note "test_cuda again ($i) rc=$? : $(tail -1 "$OUT/test_cuda_$i.log")"
done
STTS_CUDA_PDL=0 timeout 120 $C/bin/test_cuda >"$OUT/test_cuda_nopdl.log" 2>&1
note "test_cuda without programmatic dependent launch rc=$? : $(tail -1 "$OUT/test_cuda_nopdl.log")"
STTS_CUDA_PROGRAM=1 timeout 120 $C/bin/test_cuda >"$OUT/test_cuda_prog.log" 2>&1
note "test_cuda with step programs rc=$? : $(tail -1 "$OUT/test_cuda_prog.log")"
STTS_CUDA_AHEAD=0 timeout 120 $C/bin/test_cuda >"$OUT/test_cuda_noahead.log" 2>&1
note "test_cuda with greedy waiting for each step rc=$? : $(tail -1 "$OUT/test_cuda_noahead.log")"
STTS_PREFILL=0 timeout 120 $C/bin/test_cuda >"$OUT/test_cuda_noprefill.log" 2>&1
note "test_cuda with the forced step as a pass of its own (STTS_PREFILL=0) rc=$? : $(tail -1 "$OUT/test_cuda_noprefill.log")"
STTS_CUDA_GEMM=0 timeout 120 $C/bin/test_cuda >"$OUT/test_cuda_nogemm.log" 2>&1
note "test_cuda with the encoder on GEMVs rc=$? : $(tail -1 "$OUT/test_cuda_nogemm.log")"
for n in 0 1; do # the LayerNorm in every GEMV's prologue (0), as its own launch from one row on (1)
  STTS_CUDA_LN_SPLIT=$n timeout 120 $C/bin/test_cuda >"$OUT/test_cuda_lnsplit$n.log" 2>&1
  note "test_cuda with STTS_CUDA_LN_SPLIT=$n rc=$? : $(tail -1 "$OUT/test_cuda_lnsplit$n.log")"
done
for n in 0 1; do # one weight row a warp always (0), several for every GEMV of whole rows (1)
  STTS_CUDA_RPW_MIN_N=$n STTS_CUDA_RPW_ROWS_MIN_N=$n timeout 120 $C/bin/test_cuda >"$OUT/test_cuda_rpw$n.log" 2>&1
  note "test_cuda with STTS_CUDA_RPW_MIN_N=$n STTS_CUDA_RPW_ROWS_MIN_N=$n rc=$? : $(tail -1 "$OUT/test_cuda_rpw$n.log")"
done
# the LayerNorm folded into the weights never (0), for every format and row count (1: no row limit, or
# test_greedy_ahead's batches would fold some steps in one mode and not the other; 2026-12-02 15:55 UTC)
for n in 0 1; do
  STTS_CUDA_LN_FOLD=$n STTS_CUDA_LN_FOLD_ROWS=1000 timeout 120 $C/bin/test_cuda >"$OUT/test_cuda_lnfold$n.log" 2>&1
  note "test_cuda with STTS_CUDA_LN_FOLD=$n rc=$? : $(tail -1 "$OUT/test_cuda_lnfold$n.log")"
done
if ! skip memcheck && command -v compute-sanitizer >/dev/null; then
  timeout 150 compute-sanitizer --tool memcheck --print-limit 5 $C/bin/test_cuda >"$OUT/memcheck.log" 2>&1
  note "memcheck rc=$? : $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1)"
fi
if ! skip racecheck && command -v compute-sanitizer >/dev/null; then
  # the kernels that share memory between warps and wait on each other (the whole test_cuda does not finish)
  for tool in racecheck synccheck; do
    timeout 200 compute-sanitizer --tool $tool --print-limit 5 $C/bin/test_cuda --only test_program,test_attention,test_ln_linear \
      >"$OUT/$tool.log" 2>&1
    note "$tool (test_program, test_attention, test_ln_linear) rc=$? : $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/$tool.log" | tail -1) $(tail -1 "$OUT/$tool.log")"
  done
fi

echo "== 2. demo model: GPU f32 vs CPU f32, 500 sentences"
skip demo || timeout 200 $C/bin/test_cuda --demo models/demo-en-ja $C/data/test.en "$OUT/ours" >"$OUT/demo.log" 2>&1
note "demo rc=$?"; grep -E "^demo" "$OUT/demo.log" | tee -a "$summary"; grep DIFF "$OUT/demo.log" | head -5
# bf16 models again with f32 activations (STTS_CUDA_BF16_ACTIVATIONS=0; by default a bf16 model rounds its
# activations to bf16 as HF's bf16 model does), for comparison
skip demo || STTS_CUDA_BF16_ACTIVATIONS=0 timeout 200 $C/bin/test_cuda --demo models/demo-en-ja $C/data/test.en \
  "$OUT/ours-f32act" >"$OUT/demo-f32act.log" 2>&1
note "demo, bf16 with f32 activations rc=$?"; grep -E "GPU bf16" "$OUT/demo-f32act.log" | sed 's/^/f32act /' | tee -a "$summary"

echo "== 4. CLI"
[ -x $C/bin/stream-tts ] || SKIP="$SKIP cli "
skip cli || echo "The weather is nice today." | timeout 30 $C/bin/stream-tts translate --model models/demo-en-ja --src eng_Latn \
  --tgt jpn_Jpan --device auto --json 2>&1 | tee -a "$summary"
skip cli || echo "The weather is nice today." | timeout 30 $C/bin/stream-tts translate --model models/demo-en-ja --src eng_Latn \
  --tgt jpn_Jpan --device cuda 2>&1 | tee -a "$summary"
# a converted int8 / bf16 model (model file format 2: rows in interleaved groups, put back in row-major
# order on upload) gives the HF directory's ids in that format on the GPU, beam 4 and greedy
if ! skip cli; then
  for wf in int8 bf16; do
    timeout 60 $C/bin/stream-tts convert models/demo-en-ja /tmp/demo-$wf --weights $wf --quiet >>"$OUT/convert.log" 2>&1
    note "convert demo to $wf rc=$?"
    for beam in 1 4; do
      for m in models/demo-en-ja /tmp/demo-$wf; do
        head -200 $C/data/test.en | timeout 120 $C/bin/stream-tts translate --model $m --src eng_Latn --tgt jpn_Jpan \
          --device cuda --weights $wf --shortlist none --beam $beam --json 2>>"$OUT/convert.log" |
          grep -o '"ids":\[[^]]*\]' >"$OUT/$wf-$beam-$(basename $m).txt"
      done
      if [ -s "$OUT/$wf-$beam-demo-$wf.txt" ] && cmp -s "$OUT/$wf-$beam-demo-en-ja.txt" "$OUT/$wf-$beam-demo-$wf.txt"; then
        note "converted $wf on the GPU, beam $beam: $(wc -l <"$OUT/$wf-$beam-demo-$wf.txt") lines identical to the HF directory's $wf"
      else
        note "converted $wf on the GPU, beam $beam: DIFFERS from the HF directory's $wf (or empty)"
      fi
    done
  done
fi

echo "== 5. bench_nllb --device cuda (600M shape) and HF on the same GPU"
if ! skip bench; then
timeout 200 $C/bin/bench_nllb --device cuda --weights bf16,int8,f32 --reps 5 >"$OUT/bench.log" 2>&1
note "bench rc=$?"; cat "$OUT/bench.log"
timeout 200 $C/bin/bench_nllb --device cuda --weights bf16,int8,f32 --reps 5 --json >"$OUT/bench-json.log" 2>&1
note "bench json rc=$?"; grep '^{' "$OUT/bench-json.log" >>"$summary"
timeout 120 $C/bin/bench_nllb --device cuda --weights bf16,int8 --shortlist-rows 32000 --reps 5 --json \
  >"$OUT/bench-sl.log" 2>&1
note "bench shortlist rc=$?"; grep '^{' "$OUT/bench-sl.log" >>"$summary"
STTS_CUDA_GRAPHS=0 timeout 100 $C/bin/bench_nllb --device cuda --weights bf16 --reps 5 --json >"$OUT/bench-nographs.log" 2>&1
note "bench without step graphs rc=$?"; grep '^{' "$OUT/bench-nographs.log" | sed 's/^/nographs /' >>"$summary"
STTS_CUDA_PDL=0 timeout 100 $C/bin/bench_nllb --device cuda --weights bf16,int8 --reps 5 --json >"$OUT/bench-nopdl.log" 2>&1
note "bench without programmatic dependent launch rc=$?"; grep '^{' "$OUT/bench-nopdl.log" | sed 's/^/nopdl /' >>"$summary"
STTS_CUDA_PROGRAM=1 timeout 100 $C/bin/bench_nllb --device cuda --weights bf16,int8 --reps 5 --json >"$OUT/bench-prog.log" 2>&1
note "bench with step programs rc=$?"; grep '^{' "$OUT/bench-prog.log" | sed 's/^/program /' >>"$summary"
STTS_CUDA_PROGRAM=1 STTS_CUDA_PROGRAM_MAX_N=65536 timeout 100 $C/bin/bench_nllb --device cuda --weights bf16,int8 --reps 5 \
  --json >"$OUT/bench-proghead.log" 2>&1
note "bench with step programs, the LM head as a kernel rc=$?"; grep '^{' "$OUT/bench-proghead.log" | sed 's/^/program-headkernel /' >>"$summary"
fi
skip hftiming || timeout 150 python3 $C/hf-gpu-timing.py $C/data/nllb-200-distilled-600M.config.json 2>&1 | grep -v -i warn |
  tee "$OUT/hf-timing.log"; grep '^{' "$OUT/hf-timing.log" >>"$summary"

echo "== 3. HF on the GPU vs ours, demo test set"
skip hfdemo || timeout 240 python3 $C/hf-demo-gpu.py models/demo-en-ja $C/data $C/data/nllb-200-1.3B.special_tokens_map.json \
  "$OUT/ours" 2>&1 | grep -v -iE "warn|max_new_tokens|Loading weights" | tee "$OUT/hf-demo.log"
grep -E "BLEU|identical" "$OUT/hf-demo.log" >>"$summary"

echo "== 6. ncu: decode-step kernels, bf16 weights"
if ! skip ncu && command -v ncu >/dev/null; then
  # one whole decode step (~130 kernels) after the warm-up, each kernel
  # alone (ncu serializes them): where a step's GPU time goes, by kernel
  timeout 120 ncu --clock-control none --launch-skip 1500 --launch-count 120 --section SpeedOfLight \
    $C/bin/bench_nllb --device cuda --weights bf16 --reps 1 --steps 24 >"$OUT/ncu.log" 2>&1
  note "ncu rc=$?"
  awk '/^  [a-zA-Z_].*\(.*Context/ {name=$0; sub(/^ +(void )?/, "", name); sub(/\(.*/, "", name); gsub(/ /, "", name)} /Duration/ {d=$NF; gsub(/,/, "", d); if ($(NF-1) == "ms") d *= 1000;
       if ($(NF-1) == "ns") d /= 1000; n[name]++; t[name] += d; all += d}
       /DRAM Throughput/ {dr[name] += $NF}
       END {for (k in n) printf "ncu %-40s n=%3d total=%8.1f us mean=%6.2f us dram=%5.1f%%\n", k, n[k], t[k], t[k]/n[k], dr[k]/n[k];
            printf "ncu all kernels: %.1f us\n", all}' "$OUT/ncu.log" | sort -t= -k3 -nr | tee -a "$summary"
fi
echo "== 7. the CPU engine on this host (16 threads) and HF fp32 on the same CPU"
if ! skip cpu; then
  lscpu | grep -E "Model name|^CPU\(s\)|Flags" | cut -c1-200 >"$OUT/cpu.txt"
  for sl in 0 32000; do
    timeout 150 $C/bin/bench_nllb --device cpu --threads 16 --weights f32,int8 --shortlist-rows $sl --reps 3 --json \
      >"$OUT/bench-cpu-sl$sl.log" 2>&1
    note "bench cpu shortlist $sl rc=$?"; cat "$OUT/bench-cpu-sl$sl.log"; grep '^{' "$OUT/bench-cpu-sl$sl.log" >>"$summary"
  done
  timeout 150 python3 $C/hf-cpu-timing-cfg.py $C/data/nllb-200-distilled-600M.config.json 16 2>&1 | grep -v -i warn |
    tee "$OUT/hf-cpu-timing.log"; grep '^{' "$OUT/hf-cpu-timing.log" >>"$summary"
fi
tar czf "$FINAL/logs.tar.gz" -C $OUT . && cp "$summary" "$FINAL/"
echo "================ summary"
cat "$summary"
