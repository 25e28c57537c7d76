#!/usr/bin/env bash
# test_say_cli.sh STREAM_TTS VOICE_DIR - `stream-tts say` and `voices` end to
# end: WAV and raw output agree and have the voice's rate and a plausible
# length, --rate converts at the sink (same duration), labels show the dictionary reading, errors are one line with the
# right exit status (unknown language; no sound device with the fallback).
set -u
bin=$1
export STTS_VOICE_DIR=$2
[ -r "$2/mei_normal.htsvoice" ] || { echo "SKIPPED: $2/mei_normal.htsvoice missing: the voices are installed into ../shared/assets/voices (scripts/fetch-assets)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }

"$bin" say --output "$tmp/a.wav" "今日は良い天気です。" 2>"$tmp/err"
check "say --output wav exits 0" "[ $? = 0 ]"
check "wav is 48 kHz mono 16-bit" "[ \"\$(od -An -tu4 -j24 -N4 "$tmp/a.wav" | tr -d ' ')\" = 48000 ] && [ \"\$(od -An -tu2 -j22 -N2 "$tmp/a.wav" | tr -d ' ')\" = 1 ] && [ \"\$(od -An -tu2 -j34 -N2 "$tmp/a.wav" | tr -d ' ')\" = 16 ]"
size=$(stat -c %s "$tmp/a.wav")
check "wav holds 1.2-2.6 s of audio" "[ $size -gt $((44 + 2 * 48000 * 12 / 10)) ] && [ $size -lt $((44 + 2 * 48000 * 26 / 10)) ]"
"$bin" say --rate 16000 --output "$tmp/r16.wav" "今日は良い天気です。" 2>"$tmp/err"
check "say --rate 16000: exits 0, a 16 kHz WAV" "[ $? = 0 ] && [ \"\$(od -An -tu4 -j24 -N4 "$tmp/r16.wav" | tr -d ' ')\" = 16000 ]"
# The sink converts: a third of the 48 kHz frames, within 2 (same duration).
check "say --rate 16000: same duration as at 48 kHz" "[ \$(( ($size - 44) / 2 / 3 - ($(stat -c %s "$tmp/r16.wav") - 44) / 2 )) -le 2 ] && [ \$(( ($(stat -c %s "$tmp/r16.wav") - 44) / 2 - ($size - 44) / 2 / 3 )) -le 2 ]"
"$bin" say --rate 1000 --output "$tmp/r1.wav" "テスト" 2>"$tmp/err"
rc=$?
check "say --rate 1000: exit 1, one line with the range" "[ $rc = 1 ] && [ \$(wc -l <"$tmp/err") = 1 ] && grep -q '8000, 192000' "$tmp/err""
for r in 1e20 nan 8000.5; do
  "$bin" say --rate $r --output "$tmp/rx.wav" "テスト" 2>"$tmp/err"; rc=$?
  check "say --rate $r: exit 1, the value given and the range" "[ $rc = 1 ] && grep -q 'sample rate $r Hz out of range \\[8000, 192000\\]' "$tmp/err""
done
# a voice or dictionary that is a directory or a FIFO was "not found"
mkdir "$tmp/d.htsvoice"; mkfifo "$tmp/f.csv"
"$bin" say --voice "$tmp/d.htsvoice" --output "$tmp/rx.wav" "テスト" 2>"$tmp/err"; rc=$?
check "say --voice DIR: exit 1, 'is a directory'" "[ $rc = 1 ] && grep -q \"d.htsvoice' is a directory\" "$tmp/err""
timeout -k 2 20 "$bin" say --user-dict "$tmp/f.csv" --output "$tmp/rx.wav" "テスト" 2>"$tmp/err"; rc=$?
check "say --user-dict FIFO: exit 1, 'not a regular file'" "[ $rc = 1 ] && grep -q \"f.csv' is not a regular file\" "$tmp/err""
echo "今日は良い天気です。" | "$bin" say --output - >"$tmp/a.raw"
check "raw PCM on stdout = the WAV's samples (text from stdin)" "cmp -s <(tail -c +45 "$tmp/a.wav") "$tmp/a.raw""
# A NUL byte in the text on stdin cut it there: the words after it were never said.
printf 'テスト\0です' | "$bin" say --output "$tmp/nul.wav" 2>"$tmp/err"
"$bin" say --output "$tmp/sp.wav" "テスト です" 2>>"$tmp/err"
check "a NUL on stdin is read as a space (the words after it are said)" "cmp -s "$tmp/nul.wav" "$tmp/sp.wav""
# --output FILE.raw: a write error named "standard output", an open error gave no reason.
ln -s /dev/full "$tmp/full.raw"
"$bin" say --output "$tmp/full.raw" "テスト" 2>"$tmp/err"; rc=$?
check "raw file on a full disk: exit 1, the file named" "[ $rc = 1 ] && grep -q 'writing audio to $tmp/full.raw failed: No space left on device' "$tmp/err""
"$bin" say --output "$tmp/none/a.raw" "テスト" 2>"$tmp/err"; rc=$?
check "raw file in a missing folder: exit 1, the reason" "[ $rc = 1 ] && grep -q \"'$tmp/none/a.raw': No such file or directory\" "$tmp/err""
# an empty --tts-command: the default voice spoke instead, exit 0
"$bin" say --tts-command "" --output "$tmp/rx.wav" "テスト" 2>"$tmp/err"; rc=$?
check "say --tts-command '': exit 2, 'needs a command'" "[ $rc = 2 ] && grep -q -- '--tts-command needs a command' "$tmp/err""
# a misspelled espeak-ng --voice was told to "install espeak-ng-data"
"$bin" say --lang eng_Latn --voice zz-nope --output "$tmp/rx.wav" "hello" 2>"$tmp/err"; rc=$?
check "say --voice (espeak-ng, unknown): exit 1, where the voices are listed" "[ $rc = 1 ] && grep -q 'stream-tts voices --espeak' "$tmp/err" && ! grep -q 'install espeak-ng-data' "$tmp/err""
# a .htsvoice path that is not there: what to give instead
"$bin" say --voice "$tmp/none.htsvoice" --output "$tmp/rx.wav" "テスト" 2>"$tmp/err"; rc=$?
check "say --voice missing.htsvoice: exit 1, the file and where voices are listed" "[ $rc = 1 ] && grep -q \"none.htsvoice' not found\" "$tmp/err" && grep -q 'stream-tts voices' "$tmp/err""
"$bin" say --labels "GitHub" >"$tmp/lab"
check "labels read GitHub as g i cl t o h a b u" "[ \"\$(grep -o -- '-[a-zA-Z]*+' "$tmp/lab" | tr -d '+-' | tr '\n' ' ')\" = 'sil g i cl t o h a b u sil ' ]"
"$bin" voices >"$tmp/voices"
check "voices lists mei_normal and espeak-ng English" "grep -q '^openjtalk *jpn_Jpan *mei_normal' "$tmp/voices" && grep -q '^espeak-ng *eng_Latn *en-us' "$tmp/voices""
"$bin" say --lang ace_Arab "x" 2>"$tmp/err"
rc=$?
check "unknown language: exit 1, one line naming it" "[ $rc = 1 ] && [ \$(wc -l <"$tmp/err") = 1 ] && grep -q ace_Arab "$tmp/err""
mkdir -p "$tmp/home"
printf 'pcm.!default { type hw card 97 }\nctl.!default { type hw card 97 }\n' >"$tmp/home/.asoundrc"
HOME="$tmp/home" "$bin" say "テスト" 2>"$tmp/err"
rc=$?
check "no sound device: exit 1, one line with the --output fallback" "[ $rc = 1 ] && [ \$(wc -l <"$tmp/err") = 1 ] && grep -q -- '--output' "$tmp/err""
"$bin" say --output "$tmp/b.wav" "。。。" 2>"$tmp/err"
rc=$?
check "punctuation only: exit 1, 'nothing to say'" "[ $rc = 1 ] && grep -q 'nothing to say' "$tmp/err""
# "--flag=VALUE" as "--flag VALUE", and "--" before text that starts with a dash
"$bin" say --output="$tmp/eq.wav" --rate=16000 "テスト" 2>"$tmp/err"; rc=$?
check "say --output=F --rate=16000: exit 0, a 16 kHz WAV" "[ $rc = 0 ] && [ \"\$(od -An -tu4 -j24 -N4 "$tmp/eq.wav" | tr -d ' ')\" = 16000 ]"
"$bin" say --output "$tmp/dash.wav" -- "--help" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "say -- --help: the words are said, not the usage" "[ $rc = 0 ] && [ -s "$tmp/dash.wav" ] && ! grep -q usage "$tmp/out""
exit $fail
