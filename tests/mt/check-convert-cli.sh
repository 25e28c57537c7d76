#!/usr/bin/env bash
# check-convert-cli.sh STREAM_TTS SOURCE_DIR - `stream-tts convert` as a user
# runs it: a converted tiny fixture translates (--json ids) exactly like its
# HF directory through `stream-tts translate --model`; bad flags exit 2 and
# missing input exits 1, each with a message naming the problem.
set -uo pipefail
exe=$1; src=$2
fix="$src/tests/fixtures/mt/tiny-f32-st"
[ -d "$fix" ] || { echo "SKIPPED: $fix missing"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi; }

"$exe" convert "$fix" "$tmp/out" --weights f32 2>"$tmp/err"; rc=$?
check "convert exits 0" "[ $rc = 0 ]"
check "progress on stderr" "grep -q 'wrote .*model.gguf' '$tmp/err'"
check "output files" "[ -f '$tmp/out/model.gguf' ] && [ -f '$tmp/out/config.json' ] && [ -f '$tmp/out/generation_config.json' ] && [ -f '$tmp/out/sentencepiece.bpe.model' ]"
check "no temporary files left" "! ls -A '$tmp/out' | grep -q tmp"
printf 'Hello, world!\nWhere is the station?\nThe answer is 42, not 41.5.\n' > "$tmp/in"
"$exe" translate --model "$fix" --src eng_Latn --tgt jpn_Jpan --json --max-len 24 --threads 1 <"$tmp/in" >"$tmp/a" 2>/dev/null
"$exe" translate --model "$tmp/out" --src eng_Latn --tgt jpn_Jpan --json --max-len 24 --threads 1 <"$tmp/in" >"$tmp/b" 2>"$tmp/berr"
ids() { python3 -c 'import json,sys; [print(json.loads(l)["ids"]) for l in open(sys.argv[1])]' "$1"; }
check "translate --model OUT_DIR gives the HF directory's ids" "[ -s '$tmp/a' ] && [ \"\$(ids '$tmp/a')\" = \"\$(ids '$tmp/b')\" ]"

# Against HF transformers itself: each tiny fixture converted to its own
# dtype gives the greedy ids of tests/fixtures/mt/reference-*.json for every
# case that is one non-empty printable line (f32 compute, as the engine's
# parity test).
f32flags=""
"$exe" translate --help 2>/dev/null | grep -q -- '--weights' && f32flags="--weights f32 --shortlist none"
for pair in f32:tiny-f32-st f16:tiny-f16-st bf16:tiny-bf16-st f32:tiny-f32-pt; do
  w=${pair%%:*}; name=${pair#*:}; ref="$src/tests/fixtures/mt/reference-$w.json"
  [ -f "$ref" ] || continue
  "$exe" convert "$src/tests/fixtures/mt/$name" "$tmp/r" --weights $w --quiet
  python3 -c 'import json,sys; [print(c["text"]) for c in json.load(open(sys.argv[1]))["cases"] if c["text"] and c["text"].isprintable()]' "$ref" >"$tmp/rin"
  n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["max_new_tokens"])' "$ref")
  "$exe" translate --model "$tmp/r" $f32flags --src eng_Latn --tgt jpn_Jpan --json --max-len "$n" --threads 1 \
    <"$tmp/rin" >"$tmp/rout" 2>/dev/null
  check "$name converted to $w: greedy ids of HF transformers for every case" \
    "python3 -c 'import json,sys
ref=[c[\"greedy_ids\"] for c in json.load(open(sys.argv[1]))[\"cases\"] if c[\"text\"] and c[\"text\"].isprintable()]
got=[json.loads(l)[\"ids\"] for l in open(sys.argv[2])]
sys.exit(0 if got==ref and len(ref)>50 else 1)' '$ref' '$tmp/rout'"
done

# Once translate has --weights (the engine's int8/bf16 loader, issue 9): a
# converted int8/bf16 directory gives the ids of the HF directory quantized
# or rounded at load (one rule, quant.h), for every tiny fixture and the demo.
if "$exe" translate --help 2>/dev/null | grep -q -- '--weights'; then
  for m in "$src"/tests/fixtures/mt/tiny-*-st "$src/models/demo-en-ja"; do
    for w in bf16 int8; do
      "$exe" convert "$m" "$tmp/w" --weights $w --quiet
      "$exe" translate --model "$m" --weights $w --shortlist none --src eng_Latn --tgt jpn_Jpan --json \
        --max-len 24 --threads 1 <"$tmp/in" >"$tmp/a" 2>/dev/null
      "$exe" translate --model "$tmp/w" --weights $w --shortlist none --src eng_Latn --tgt jpn_Jpan --json \
        --max-len 24 --threads 1 <"$tmp/in" >"$tmp/b" 2>/dev/null
      check "$(basename "$m") converted to $w: ids of the HF directory loaded as $w" \
        "[ -s '$tmp/a' ] && [ \"\$(ids '$tmp/a')\" = \"\$(ids '$tmp/b')\" ]"
    done
  done
else
  echo "note: translate has no --weights yet: int8/bf16 parity through the CLI not run"
fi

"$exe" convert "$fix" "$tmp/x" --weights int4 2>"$tmp/err"; rc=$?
check "unknown --weights: exit 2 and names the value" "[ $rc = 2 ] && grep -q 'unknown --weights \"int4\"' '$tmp/err'"
"$exe" convert "$tmp/nonexistent" "$tmp/x" --weights int8 2>"$tmp/err"; rc=$?
check "missing input: exit 1 and names it" "[ $rc = 1 ] && grep -q '$tmp/nonexistent' '$tmp/err'"
"$exe" convert "$fix" 2>"$tmp/err"; rc=$?
check "missing OUT_DIR: exit 2" "[ $rc = 2 ] && grep -q 'OUT_DIR' '$tmp/err'"
cp "$tmp/out/model.gguf" "$tmp/model.gguf.bak"
truncate -s 5000 "$tmp/out/model.gguf"
"$exe" translate --model "$tmp/out" --src eng_Latn --tgt jpn_Jpan <"$tmp/in" >/dev/null 2>"$tmp/err"; rc=$?
check "truncated model.gguf: exit non-zero, says to re-run convert" "[ $rc != 0 ] && grep -q 're-run stream-tts convert' '$tmp/err'"
exit $fail
