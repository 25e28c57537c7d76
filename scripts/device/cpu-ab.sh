#!/usr/bin/env bash
# cpu-ab.sh - A/B of CPU engine builds on the GPU machine's quiet 16-core
# host, when the 2-core dev VM is too noisy to tell a few percent apart.
# Prepare here (the previous build's bench_nllb as bench_nllb_base):
#   scripts/device/cpu-ab.sh --prepare BASE_BENCH_BINARY   -> .device/cpu-ab.tar.xz
# then on the device (run tool, carry [".device/cpu-ab.tar.xz"]):
#   python3 scripts/device/unpack.py .device/cpu-ab.tar.xz .device && bash scripts/device/cpu-ab.sh
# Runs the engine's CPU tests on that CPU, then ROUNDS rounds of
# bench_nllb int8 + 32000 rows on 2 pinned cores (--threads 2) and on 16,
# alternating the base binary, this tree's, and this tree's with each
# setting in SETTINGS (VAR=VALUE, space-separated). Summary in $OUT.
# WEIGHTS=bf16 (default int8) benches that format; SL=0 (default 32000) the
# shortlist rows (0: the full vocabulary); BASE=0 leaves the base
# binary out (when the settings alone are the comparison); TESTS=0 skips the
# tests (a second run in the same call).
set -uo pipefail
if [ "${1:-}" = --prepare ]; then
  base=${2:?base bench_nllb}
  D=.device/cpu-ab
  rm -rf $D && mkdir -p $D/bin $D/lib
  cp build/bench/bench_nllb "$D/bin/"
  cp "$base" "$D/bin/bench_nllb_base"
  cp build/tests/mt/test_backend_ops build/tests/mt/test_nllb_model build/tests/mt/test_weights_quality "$D/bin/"
  ldd build/bench/bench_nllb build/tests/mt/test_weights_quality | awk '/=> \//{print $3}' | sort -u |
    grep -v -E 'libc\.so|libm\.so|ld-linux' | while read -r so; do cp -L "$so" "$D/lib/"; done
  XZ_OPT="-6 -T2" tar -C .device -cJf .device/cpu-ab.tar.xz cpu-ab && du -sh .device/cpu-ab.tar.xz
  exit 0
fi
D=.device/cpu-ab
export LD_LIBRARY_PATH=$PWD/$D/lib STTS_TEST_SOURCE_DIR=$PWD
[ -e /work/main ] || { mkdir -p /work && ln -s "$PWD" /work/main; }
S=${OUT:-/tmp}/cpu-ab-summary.txt
: >"$S"
note() { echo "$*" | tee -a "$S"; }
note "$(lscpu | grep -E 'Model name|^CPU\(s\)' | tr -s ' ')"
note "$(grep -o -w 'avx512f\|avx512_vnni\|avx512_bf16\|amx_int8' /proc/cpuinfo | sort -u | tr '\n' ' ') $(date -u)"
for t in test_backend_ops test_nllb_model test_weights_quality; do
  [ "${TESTS:-1}" = 0 ] && break
  timeout 200 $D/bin/$t >/tmp/$t.log 2>&1
  note "$t rc=$? $(tail -1 /tmp/$t.log)"
  grep -E "CHECK failed" /tmp/$t.log | head -3 | tee -a "$S"
done
ROUNDS=${ROUNDS:-3}
SETTINGS=${SETTINGS:-}
one() { # label cpus threads binary [env...]
  local label=$1 cpus=$2 th=$3 bin=$4
  shift 4
  env "$@" taskset -c "$cpus" timeout 120 $D/bin/$bin --device cpu --threads "$th" --weights "${WEIGHTS:-int8}" --shortlist-rows "${SL:-32000}" \
    --reps 5 --json 2>/dev/null | grep '^{' | python3 -c '
import json,sys
for l in sys.stdin:
    j=json.loads(l); print("%-5s %-28s %-6s %8.1f ms  step %6.3f ms (%.2fx floor)  encode %6.2f ms  probe %.1f GB/s  huge %s MB" % (j["weights"], sys.argv[1], j["search"], j["ms_per_sentence"], j["ms_per_step"], j["step_over_floor"], j["encode_ms"], j["probe_gbps"], j.get("anon_huge_mb","-")))' "$label" | tee -a "$S"
}
for r in $(seq "$ROUNDS"); do
  for cfg in "2 0,1" "16 0-15"; do
    set -- $cfg
    [ "${BASE:-1}" = 0 ] || one "base t$1" "$2" "$1" bench_nllb_base
    one "new t$1" "$2" "$1" bench_nllb
    for s in $SETTINGS; do one "new $s t$1" "$2" "$1" bench_nllb "$s"; done
  done
done
