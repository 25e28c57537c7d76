#!/usr/bin/env bash
# cpu-check.sh - the CPU engine on the GPU machine's 16-core host (issue 9),
# where the dev VM cannot go: AVX-512 and AVX-512 VNNI (the dev VM has AVX2
# only). Run from the repository root with .device/cuda carried (made by
# scripts/device/cuda-prepare.sh with CPU_CHECK=1, which adds the engine's
# CPU tests and, when /tmp/oldwt/build has one, the previous bench_nllb).
#   1. test_backend_ops at every level this CPU has (avx512vnni included),
#      test_nllb_model, and the parity and quality tests with the
#      kernel level forced to each of avx2, avx512, avx512vnni
#   2. bench_nllb --device cpu --threads 16: int8 + 32000 rows and f32, at
#      the best level (VNNI), at --simd avx512 (the AVX2 int8 kernel), and
#      the previous binary (bench_nllb_old) for the same work
# Logs go to $OUT (summary.txt and logs.tar.gz).
set -uo pipefail
C=.device/cuda
FINAL=${OUT:?}
OUT=/tmp/cpu-check
rm -rf $OUT && mkdir -p $OUT
export LD_LIBRARY_PATH=$PWD/$C/lib STTS_TEST_SOURCE_DIR=$PWD
# the engine's tests find their fixtures at the source path built into them
[ -e /work/main ] || { mkdir -p /work && ln -s "$PWD" /work/main; }
summary=$OUT/summary.txt
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }
lscpu | grep -E "Model name|^CPU\(s\)" | tee -a "$summary"
grep -o -w 'avx512f\|avx512bw\|avx512vl\|avx512_vnni\|avx512_bf16\|amx_int8' /proc/cpuinfo | sort -u | tr '\n' ' ' | tee -a "$summary"
echo | tee -a "$summary"
date -u | tee -a "$summary"

echo "== 1. tests"
timeout 120 $C/bin/test_backend_ops >"$OUT/backend_ops.log" 2>&1
note "test_backend_ops rc=$? : $(grep -c '^cpu ' "$OUT/backend_ops.log") level/thread runs: $(grep '^cpu ' "$OUT/backend_ops.log" | cut -d: -f1 | sort -u | tr '\n' ',') $(tail -1 "$OUT/backend_ops.log")"
grep -E "CHECK failed|skip" "$OUT/backend_ops.log" | sort | uniq -c | head -8 | tee -a "$summary"
for lv in avx2 avxvnni avx512 avx512vnni; do
  for t in test_nllb_model test_nllb_parity test_weights_quality; do
    [ -x $C/bin/$t ] || continue
    STTS_SIMD=$lv timeout 200 $C/bin/$t >"$OUT/$t-$lv.log" 2>&1
    note "$t STTS_SIMD=$lv rc=$? : $(tail -1 "$OUT/$t-$lv.log")"
    grep -E "CHECK failed" "$OUT/$t-$lv.log" | head -3 | tee -a "$summary"
  done
done

echo "== 2. bench_nllb --device cpu --threads 16"
b() { # label, binary, args...
  local label=$1 bin=$2
  shift 2
  timeout 200 "$bin" --device cpu --threads 16 --reps 3 --json "$@" >"$OUT/bench-$label.log" 2>&1
  note "bench $label rc=$?"
  grep '^{' "$OUT/bench-$label.log" | sed "s/^/$label /" >>"$summary"
  grep -E '^(backend|probe|encode|greedy|beam)' "$OUT/bench-$label.log" | head -12
}
b int8-sl-vnni $C/bin/bench_nllb --weights int8 --shortlist-rows 32000
b int8-sl-avx512 $C/bin/bench_nllb --weights int8 --shortlist-rows 32000 --simd avx512
[ -x $C/bin/bench_nllb_old ] && b int8-sl-old $C/bin/bench_nllb_old --weights int8 --shortlist-rows 32000
STTS_CPU_PROFILE=1 b int8-sl-profile $C/bin/bench_nllb --weights int8 --shortlist-rows 32000
grep -A12 '^cpu profile' "$OUT/bench-int8-sl-profile.log" | tee -a "$summary"
b int8-full-vnni $C/bin/bench_nllb --weights int8
b f32-full $C/bin/bench_nllb --weights f32
b bf16-sl $C/bin/bench_nllb --weights bf16 --shortlist-rows 32000
tar czf "$FINAL/cpu-logs.tar.gz" -C $OUT . && cp "$summary" "$FINAL/cpu-summary.txt"
echo "================ summary"
cat "$summary"
