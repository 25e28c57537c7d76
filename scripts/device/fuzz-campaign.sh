#!/usr/bin/env bash
# fuzz-campaign.sh DIR SECONDS - the fuzzing campaign of docs/RELIABILITY.md
# on a many-core machine that has none of our Debian packages (the device
# machine): every target but fuzz_jtalk_text (its dictionary is too big to
# carry; it runs on the build machine) in parallel, one process per core.
# DIR (made by scripts/device/fuzz-pack) holds
#   bin/   the campaign binaries (ASan+UBSan+libFuzzer, assertions on, -O2)
#   bin0/  the CI build of the same targets (Debug -O0), used for the merge
#   lib/   every shared library they need, glibc and its loader included, so
#          they run whatever the machine's own libraries are
#   corpus/<target>/  the committed tests/fuzz-corpus
# Each process gets a fresh random seed. A fast target runs once with
# -runs=10000000; a slow one runs as several seeds at once on copies of the
# same corpus until the deadline (its executions are the sum over its seeds,
# each seed's line is kept). When a slot's job ends early the slot goes on
# with a slow target. At the end the new inputs of each target are merged
# (-merge=1, CI's binary) into a copy of its corpus, and only the files the
# merge added come back.
# Writes to $OUT: stats.tsv (one line per seed run: target, date, seed,
# runs, executions, cov, ft, seconds, rc), new-corpus.tar.gz, crashes.tar.gz
# (empty when nothing was found), logs.tar.gz (the last lines of each log),
# merge.txt.
set -uo pipefail
D=$(cd "$1" && pwd); total=${2:-300}
OUT=${OUT:-/tmp/fuzz-out}; mkdir -p "$OUT"
W=$(mktemp -d /tmp/fuzzc.XXXX)
LD=("$D/lib/ld-linux-x86-64.so.2" --library-path "$D/lib")
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
start=$(date +%s); deadline=$((start + total))
slow=(fuzz_text_stream fuzz_ingest_line fuzz_settings_merge)

job() { # slot job_no target runs(0 = until the deadline)
  local slot=$1 n=$2 t=$3 runs=$4 left seed dir log rc
  left=$((deadline - $(date +%s)))
  [ "$left" -ge 5 ] || return 1
  seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
  dir=$W/work/$t/s$slot-$n; log=$W/logs/$t.s$slot-$n.log
  mkdir -p "$dir" "$W/logs" "$W/crash"
  cp -r "$D/corpus/$t/." "$dir/"
  local lim=(-max_total_time="$left"); [ "$runs" != 0 ] && lim+=(-runs="$runs")
  local t0; t0=$(date +%s)
  "${LD[@]}" "$D/bin/$t" -seed="$seed" "${lim[@]}" -print_final_stats=1 -rss_limit_mb=4096 \
    -artifact_prefix="$W/crash/$t.s$slot-$n." "$dir" >"$log" 2>&1
  rc=$?
  local ex cov ft dl
  ex=$(grep -oE 'number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
  dl=$(grep -E '^#[0-9]+.*DONE' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' <<<"$dl" | grep -oE '[0-9]+' || echo '?')
  ft=$(grep -oE 'ft: [0-9]+' <<<"$dl" | grep -oE '[0-9]+' || echo '?')
  printf '%s\t%s\tseed=%s\truns=%s\texecs=%s\tcov=%s\tft=%s\tsecs=%s\trc=%s\n' "$t" \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$seed" "$runs" "$ex" "$cov" "$ft" $(($(date +%s) - t0)) "$rc" >>"$W/stats.tsv"
  return 0
}
slot() { # slot_no job... ; each job target:runs; then the slow targets in turn until the deadline
  local s=$1 n=0 j; shift
  for j in "$@"; do n=$((n + 1)); job "$s" "$n" "${j%%:*}" "${j##*:}" || return 0; done
  while :; do n=$((n + 1)); job "$s" "$n" "${slow[$(((s + n) % 3))]}" 0 || return 0; done
}
cores=$(nproc); echo "fuzz-campaign: $cores cores, $total s, $(date -u)"
# 16 slots for 16 cores (fewer cores: the plan still runs, oversubscribed).
slot 1 fuzz_hook_payload:10000000 fuzz_mt_config:10000000 fuzz_gguf:10000000 &
slot 2 fuzz_torch_zip:10000000 fuzz_shortlist:10000000 &
slot 3 fuzz_protocol:10000000 &
slot 4 fuzz_safetensors:0 & slot 5 fuzz_safetensors:0 &
for s in 6 7 8 9; do slot $s fuzz_settings_merge:0 & done
for s in 10 11 12 13; do slot $s fuzz_ingest_line:0 & done
for s in 14 15 16; do slot $s fuzz_text_stream:0 & done
wait
echo "fuzz-campaign: fuzzing done $(date -u)"
cp "$W/stats.tsv" "$OUT/stats.tsv"
# Merge each target's new inputs into a copy of its corpus with CI's binary.
mkdir -p "$W/merged" "$W/new"
for t in $(ls "$W/work"); do
  ( cp -r "$D/corpus/$t" "$W/merged/$t"
    "${LD[@]}" "$D/bin0/$t" -merge=1 -rss_limit_mb=4096 "$W/merged/$t" "$W/work/$t"/* >"$W/logs/$t.merge.log" 2>&1
    echo "$t rc=$? $(grep -E 'MERGE-OUTER: [0-9]+ new files' "$W/logs/$t.merge.log")" >>"$W/merge.txt"
    mkdir -p "$W/new/$t"
    for f in "$W/merged/$t"/*; do [ -e "$D/corpus/$t/$(basename "$f")" ] || cp "$f" "$W/new/$t/"; done ) &
done
wait
cp "$W/merge.txt" "$OUT/merge.txt"
tar -C "$W/new" -czf "$OUT/new-corpus.tar.gz" .
tar -C "$W/crash" -czf "$OUT/crashes.tar.gz" .
mkdir -p "$W/tails"; for f in "$W"/logs/*.log; do tail -30 "$f" >"$W/tails/$(basename "$f")"; done
tar -C "$W/tails" -czf "$OUT/logs.tar.gz" .
cat "$OUT/stats.tsv" "$OUT/merge.txt"; ls -la "$OUT"; echo "fuzz-campaign: end $(date -u)"
