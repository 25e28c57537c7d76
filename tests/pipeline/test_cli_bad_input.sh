#!/usr/bin/env bash
# test_cli_bad_input.sh STREAM_TTS SOURCE_DIR - bad input at the command line
# and in files, through the stream-tts program: each case must end with a
# clear message naming the flag or file, a non-zero exit status, and neither
# a crash nor a hang (every run has a time limit). Needs no voice and no
# sound card: every case fails before synthesis, or runs --dry-run or
# `translate` with the bundled demo model.
set -u
BIN=$1; SRC=$2
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail=0; pass=0
ok()  { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }
export HOME=$T/home XDG_CONFIG_HOME= XDG_DATA_HOME= STREAM_TTS_MODEL=
mkdir -p "$HOME"
DEMO=$(cd "$SRC/models/demo-en-ja" && pwd)
echo "Where is the station?" >"$T/in.txt"
# expect NAME RC REGEX CMD...: CMD (stdin: in.txt, 20 s limit) exits RC and its stderr matches REGEX
# (an empty REGEX: anything).
expect() {
  local name=$1 want=$2 re=$3; shift 3
  timeout -k 5 20 "$@" <"$T/in.txt" >"$T/out" 2>"$T/err"; local rc=$?
  if [ $rc -eq "$want" ] && { [ -z "$re" ] || grep -Eq -- "$re" "$T/err"; }; then ok
  else bad "$name: exit $rc (want $want), stderr: $(head -c 400 "$T/err")"; fi
}

# 1. Numbers: NaN (which strtod accepts) is outside every range. A NaN
# --gap-ms made the WAV sink write silence forever.
for f in --gap-ms --max-lag --speed --pitch --volume; do
  expect "$f nan" 2 "$f expects a number" "$BIN" --input-format text --daemon never --no-translate --output "$T/x.wav" $f nan
done
printf 'gap-ms = nan\n' >"$T/nan.conf"
expect "config gap-ms = nan" 2 "gap-ms expects a number.*nan.conf" \
  "$BIN" --config "$T/nan.conf" --input-format text --daemon never --no-translate --output "$T/x.wav"
expect "serve --idle-exit nan" 2 "--idle-exit takes seconds" "$BIN" serve --idle-exit nan
expect "serve --idle-exit ''" 2 "--idle-exit takes seconds" "$BIN" serve --idle-exit ''

# 2. A model directory whose file is a FIFO or a directory: open() of a FIFO
# waited for a writer, so the load hung. (Files are linked, not copied.)
demo_copy() {  # demo_copy DIR: DIR holds links to the demo model's files
  local g; rm -rf "$1"; mkdir -p "$1"
  for g in "$DEMO"/*; do ln -s "$g" "$1/"; done
}
for f in config.json generation_config.json model.safetensors; do
  demo_copy "$T/m-fifo"; rm "$T/m-fifo/$f"; mkfifo "$T/m-fifo/$f"
  expect "model $f a FIFO" 1 "m-fifo/$f: a FIFO, where a regular file is expected" \
    "$BIN" translate --model "$T/m-fifo" --src eng_Latn --tgt jpn_Jpan
done
demo_copy "$T/m-dir"; rm "$T/m-dir/config.json"; mkdir "$T/m-dir/config.json"
expect "model config.json a directory" 1 "m-dir/config.json: a directory, where a regular file is expected" \
  "$BIN" translate --model "$T/m-dir" --src eng_Latn --tgt jpn_Jpan
demo_copy "$T/m-ok"
expect "model through links (control)" 0 "" "$BIN" translate --model "$T/m-ok" --src eng_Latn --tgt jpn_Jpan

# 3. Standard output that cannot be written (/dev/full): exit 1 and say so;
# these exited 0 with nothing written. translate stops at the first line.
expectout() {  # expectout NAME REGEX CMD...: like expect with stdout on /dev/full, exit 1
  local name=$1 re=$2; shift 2
  timeout -k 5 20 "$@" <"$T/in.txt" >/dev/full 2>"$T/err"; local rc=$?
  if [ $rc -eq 1 ] && grep -Eq -- "$re" "$T/err"; then ok
  else bad "$name > /dev/full: exit $rc (want 1), stderr: $(head -c 400 "$T/err")"; fi
}
expectout "translate" "writing to standard output failed: No space left on device" \
  "$BIN" translate --model "$DEMO" --src eng_Latn --tgt jpn_Jpan
expectout "translate --list-languages" "writing to standard output failed" "$BIN" translate --list-languages
expectout "--dry-run" "writing to standard output failed" "$BIN" --dry-run --input-format text
expectout "--dry-run --json" "writing to standard output failed" "$BIN" --dry-run --json --input-format text
expectout "--help" "writing to standard output failed" "$BIN" --help
expectout "voices" "writing to standard output failed" "$BIN" voices

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
