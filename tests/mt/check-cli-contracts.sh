#!/usr/bin/env bash
# check-cli-contracts.sh STREAM_TTS SOURCE_DIR [BENCH_NLLB] - what --help and
# the docs promise about flags shared by translate, the main command and
# bench_nllb (the 2026-12-03 CLI review, findings 3, 4, 5, 6, 8, 9, 10, 11):
# - --device left out is auto, and says why it runs on the CPU as auto given
#   does (CUDA build: no usable GPU; build without CUDA: an NVIDIA driver is
#   loaded), and --help says what auto does in this build;
# - --threads: 0..256 everywhere, 0 = all cores, checked when parsed;
# - a configuration line without a value, and a bad language code there,
#   reported with file:line;
# - STTS_SIMD naming a level the CPU lacks: the variable and the levels it has;
# - NUL bytes on translate's stdin are warned about;
# - a tokenizer smaller than the weights' vocabulary (another model's) is refused;
# - bench_nllb --help exits 0, an unknown flag or bad value is one line.
set -uo pipefail
exe=$1; src=$2; bench=${3:-}
model="$src/tests/fixtures/mt/tiny-f32-st"
[ -d "$model" ] || { echo "SKIPPED: $model missing"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export HOME="$tmp/home"; mkdir -p "$HOME"; unset XDG_CONFIG_HOME STTS_SIMD STREAM_TTS_MODEL
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi; }
cpu_lines() { grep -c 'running on the CPU' "$1"; }
tr_run() { echo "Hello." | "$exe" translate --model "$model" --threads 1 "$@" >"$tmp/out" 2>"$tmp/err"; }
# the main command: loads the model and the voice, reads no input, writes a WAV
main_run() { "$exe" --model "$model" --output "$tmp/o.wav" --daemon never --no-warmup --threads 1 "$@" \
               </dev/null >"$tmp/out" 2>"$tmp/err"; }

# ---- finding 3: --device left at its default (auto) ----
"$exe" translate --help >"$tmp/thelp" 2>&1; "$exe" --help >"$tmp/mhelp" 2>&1   # (grep -q on a pipe: SIGPIPE)
if grep -q 'no CUDA in this build' "$tmp/thelp"; then
  check "build without CUDA: main --help says what auto does here" "grep -q 'no CUDA in this build' '$tmp/mhelp'"
  STTS_TEST_NVIDIA_DRIVER="$tmp/none" tr_run; rc=$?
  check "no CUDA, no GPU driver: translate's default says nothing about the device" "[ $rc = 0 ] && [ \$(cpu_lines '$tmp/err') = 0 ]"
  STTS_TEST_NVIDIA_DRIVER=/dev/null tr_run; rc=$?
  check "no CUDA, an NVIDIA driver: translate's default says why on one line" \
    "[ $rc = 0 ] && [ \$(cpu_lines '$tmp/err') = 1 ] && grep -q 'NVIDIA driver is loaded, but this build has no CUDA' '$tmp/err'"
  STTS_TEST_NVIDIA_DRIVER=/dev/null main_run; rc=$?
  check "no CUDA, an NVIDIA driver: the main command's default says why on one line" \
    "[ $rc = 0 ] && [ \$(cpu_lines '$tmp/err') = 1 ] && grep -q 'NVIDIA driver is loaded' '$tmp/err'"
  STTS_TEST_NVIDIA_DRIVER="$tmp/none" tr_run --device auto; rc=$?
  check "no CUDA: --device auto given says why on one line" "[ $rc = 0 ] && [ \$(cpu_lines '$tmp/err') = 1 ]"
else
  # a CUDA build: hide every GPU, as on a machine without one
  check "CUDA build: translate --help says auto falls back with one line" \
    "grep -q 'one line on stderr saying why' '$tmp/thelp' && grep -q 'one line on stderr saying why' '$tmp/mhelp'"
  CUDA_VISIBLE_DEVICES=-1 tr_run; rc=$?
  check "CUDA build, no usable GPU: translate's default says why on one line" "[ $rc = 0 ] && [ \$(cpu_lines '$tmp/err') = 1 ]"
  CUDA_VISIBLE_DEVICES=-1 main_run; rc=$?
  check "CUDA build, no usable GPU: the main command's default says why on one line" \
    "[ $rc = 0 ] && [ \$(cpu_lines '$tmp/err') = 1 ]"
  CUDA_VISIBLE_DEVICES=-1 tr_run --device auto; rc=$?
  check "CUDA build, no usable GPU: --device auto says why on one line" "[ $rc = 0 ] && [ \$(cpu_lines '$tmp/err') = 1 ]"
fi
export STTS_TEST_NVIDIA_DRIVER="$tmp/none" CUDA_VISIBLE_DEVICES=-1   # the rest runs on the CPU, quietly

# ---- finding 5: one --threads range ----
echo "Hello." | "$exe" translate --model "$model" --threads 0 >"$tmp/out" 2>"$tmp/err"; rc=$?
check "translate --threads 0 = all cores (as the main command)" "[ $rc = 0 ] && [ -s '$tmp/out' ]"
tr_run --threads 257; rc=$?
check "translate --threads 257: exit 2, the range 0..256" "[ $rc = 2 ] && grep -q -- '--threads needs an integer in 0..256' '$tmp/err'"
main_run --threads 1024; rc=$?
check "main --threads 1024: exit 2 when parsed, the range 0 to 256" \
  "[ $rc = 2 ] && grep -q -- '--threads expects a whole number from 0 to 256' '$tmp/err' && ! grep -q 'model ' '$tmp/err'"
check "translate and main --help give the same range" \
  "grep -q -- '--threads N .*0\.\.256' '$tmp/thelp' && grep -q -- '--threads N .*0\.\.256' '$tmp/mhelp'"
if [ -n "$bench" ] && [ -x "$bench" ]; then
  "$bench" --threads 257 >"$tmp/out" 2>"$tmp/err"; rc=$?
  check "bench_nllb --threads 257: exit 2, the range 0..256" "[ $rc = 2 ] && grep -q '0\.\.256' '$tmp/err'"
fi

# ---- findings 6 and 11: the configuration file ----
for key in weights device daemon tgt output; do
  printf '%s\n' "$key" >"$tmp/cfg"
  "$exe" --config "$tmp/cfg" --model "$model" --dry-run </dev/null >"$tmp/out" 2>"$tmp/err"; rc=$?
  check "config line '$key' without a value: exit 2, file:line, how to write it" \
    "[ $rc = 2 ] && grep -q \"'$key' needs a value in the configuration file $tmp/cfg:1: write '$key = VALUE'\" '$tmp/err'"
done
printf '# mine\ntgt = xxx_Yyyy\n' >"$tmp/cfg"
"$exe" --config "$tmp/cfg" --model "$model" --output "$tmp/o.wav" --daemon never </dev/null >"$tmp/out" 2>"$tmp/err"; rc=$?
check "config 'tgt = xxx_Yyyy': exit 2, the code and file:line" \
  "[ $rc = 2 ] && grep -q \"unknown language code 'xxx_Yyyy' for --tgt.*$tmp/cfg:2\" '$tmp/err'"

# ---- finding 8: STTS_SIMD naming a level this CPU lacks ----
case $(uname -m) in x86_64|i?86) lacking=neon ;; *) lacking=avx2 ;; esac
STTS_SIMD=$lacking tr_run; rc=$?
check "STTS_SIMD=$lacking: exit 1, names the variable and the levels this CPU has" \
  "[ $rc = 1 ] && grep -q 'STTS_SIMD=$lacking (environment)' '$tmp/err' && grep -q 'which has: auto, scalar' '$tmp/err' && grep -q 'unset STTS_SIMD' '$tmp/err'"
STTS_SIMD=$lacking main_run; rc=$?
check "STTS_SIMD=$lacking on the main command: the same message" "[ $rc = 1 ] && grep -q 'STTS_SIMD=$lacking (environment)' '$tmp/err'"

# ---- finding 10: NUL bytes on translate's stdin ----
printf 'Hello\000world.\nFine.\n' | "$exe" translate --model "$model" --threads 1 >"$tmp/out" 2>"$tmp/err"; rc=$?
check "a NUL byte on stdin: translated as a space, warned with line and byte" \
  "[ $rc = 0 ] && [ \$(wc -l <'$tmp/out') = 2 ] && grep -q 'line 1 holds a NUL byte (byte 6)' '$tmp/err' && ! grep -q 'line 2' '$tmp/err'"

# ---- finding 4: the tokenizer of another (smaller) model ----
demo="$src/models/demo-en-ja"
if [ -d "$demo" ]; then
  cp -r "$demo" "$tmp/mixed"; cp "$model/sentencepiece.bpe.model" "$tmp/mixed/"
  tr_run_m() { echo "Hello." | "$exe" translate --model "$1" --threads 1 >"$tmp/out" 2>"$tmp/err"; }
  tr_run_m "$tmp/mixed"; rc=$?
  check "demo weights with a 1000-piece tokenizer: exit 1, names the tokenizer file, says it is another model's" \
    "[ $rc = 1 ] && [ ! -s '$tmp/out' ] && grep -q '$tmp/mixed/sentencepiece.bpe.model: the tokenizer has 1000 SentencePiece pieces' '$tmp/err' && grep -q 'belongs to another model' '$tmp/err'"
  tr_run_m "$demo"; rc=$?
  check "the demo with its own tokenizer still loads" "[ $rc = 0 ] && [ -s '$tmp/out' ]"
fi

# ---- finding 9: bench_nllb's own flags ----
if [ -n "$bench" ] && [ -x "$bench" ]; then
  "$bench" --help >"$tmp/out" 2>"$tmp/err"; rc=$?
  check "bench_nllb --help: exit 0, usage on stdout with every --simd level" \
    "[ $rc = 0 ] && grep -q 'auto|scalar|avx2|avxvnni|avx512|avx512vnni|neon' '$tmp/out' && [ ! -s '$tmp/err' ]"
  "$bench" --bogus 1 >"$tmp/out" 2>"$tmp/err"; rc=$?
  check "bench_nllb --bogus: exit 2, one line naming it" "[ $rc = 2 ] && [ \$(wc -l <'$tmp/err') = 1 ] && grep -q \"'--bogus'\" '$tmp/err'"
  "$bench" --shortlist-rows x >"$tmp/out" 2>"$tmp/err"; rc=$?
  check "bench_nllb --shortlist-rows x: exit 2, one line" "[ $rc = 2 ] && [ \$(wc -l <'$tmp/err') = 1 ]"
fi
exit $fail
