#!/usr/bin/env bash
# check-convert-cli.sh STREAM_TTS SOURCE_DIR - `stream-tts convert` as a user
# runs it: a converted model translates (--json ids and scores) exactly like
# its HF directory through `stream-tts translate --model`, for every source
# dtype and every --weights; bad flags exit 2 and
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

# A converted directory computes exactly what its HF directory computes
# with the same --weights: ids AND scores, greedy on the 500 demo test
# sentences and beam 4 on their first 100, for every source dtype (the tiny
# f32/f16/bf16 fixtures, the demo's f16) and every --weights. The position
# table's rounding follows the source dtype (stts.source.dtype); before it was
# recorded, an f16 source converted to int8 gave other ids (finding 1 of the
# 2026-12-03 CLI review: 3 sentences had not shown it).
in500="$src/tests/fixtures/demo/test-500.en"
for m in "$src"/tests/fixtures/mt/tiny-f32-st "$src"/tests/fixtures/mt/tiny-f16-st "$src"/tests/fixtures/mt/tiny-bf16-st \
         "$src/models/demo-en-ja"; do
  for w in f32 f16 bf16 int8; do
    "$exe" convert "$m" "$tmp/w" --weights $w --quiet
    for beam in 1 4; do
      n=500; [ $beam = 1 ] || n=100
      head -n $n "$in500" >"$tmp/in$n"
      fl="--weights $w --shortlist none --src eng_Latn --tgt jpn_Jpan --json --max-len 32 --threads 1 --beam $beam"
      "$exe" translate --model "$m" $fl <"$tmp/in$n" >"$tmp/a" 2>/dev/null
      "$exe" translate --model "$tmp/w" $fl <"$tmp/in$n" >"$tmp/b" 2>/dev/null
      if python3 - "$tmp/a" "$tmp/b" "$n" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
bad = [i for i in range(max(len(a), len(b)))
       if i >= len(a) or i >= len(b) or a[i]["ids"] != b[i]["ids"] or a[i]["score"] != b[i]["score"]]
if len(a) == int(sys.argv[3]) and not bad:
    sys.exit(0)
print("  %d of %d lines differ in ids or score" % (len(bad), len(a)))
if bad:
    i = bad[0]
    g = lambda r, k: r[i][k] if i < len(r) else None
    print("  line %d: HF dir %s %r, converted %s %r" % (i + 1, g(a, "ids"), g(a, "score"), g(b, "ids"), g(b, "score")))
sys.exit(1)
PY
      then echo "ok: $(basename "$m") converted to $w, beam $beam: ids and scores of the HF directory on $n lines"
      else echo "FAIL: $(basename "$m") converted to $w, beam $beam: not the HF directory's ids and scores"; fail=1
      fi
    done
  done
done

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
cp "$tmp/model.gguf.bak" "$tmp/out/model.gguf"

# A header field corrupted in place: refused with what is wrong (exit 1),
# never a translation of shifted or misordered bytes with exit 0. The
# alignment 4096 -> 32 or 256 and the format version 3 -> 1 or 2 loaded
# garbage before (2026-12-03 CLI review, finding 2).
"$exe" convert "$fix" "$tmp/c" --weights bf16 --quiet
cp "$tmp/c/model.gguf" "$tmp/c.bak"
patch_u32() { # FILE KEY VALUE: the u32 value of metadata KEY
  python3 - "$@" <<'PY'
import struct, sys
p, key, v = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
b = bytearray(open(p, "rb").read(1 << 16))
i = b.index(key) + len(key) + 4            # the key, its u32 type, then the value
f = open(p, "r+b"); f.seek(i); f.write(struct.pack("<I", v)); f.close()
PY
}
for c in "general.alignment 32 always writes 4096" "general.alignment 256 always writes 4096" \
         "general.alignment 1048576 always writes 4096" "stts.format_version 1 another version of stream-tts" \
         "stts.format_version 2 a corrupt header"; do
  set -- $c; key=$1; val=$2; shift 2; want="$*"
  cp "$tmp/c.bak" "$tmp/c/model.gguf"
  patch_u32 "$tmp/c/model.gguf" "$key" "$val"
  "$exe" translate --model "$tmp/c" --src eng_Latn --tgt jpn_Jpan <"$tmp/in" >"$tmp/o" 2>"$tmp/err"; rc=$?
  check "$key corrupted to $val: exit 1, '$want', re-run convert" \
    "[ $rc = 1 ] && [ ! -s '$tmp/o' ] && grep -q '$want' '$tmp/err' && grep -q 're-run stream-tts convert' '$tmp/err'"
done
exit $fail
