#!/usr/bin/env bash
# test_reliability.sh STREAM_TTS SOURCE_DIR SHARED_DIR - faults injected into
# real stream-tts runs, and what the user hears (the WAV) and sees (stderr,
# metrics) afterwards; docs/RELIABILITY.md describes each case.
#   1. kill -9 at several moments: the WAV's header covers the audio on disk
#      (all but < 0.5 s), sox reads it, every metrics line is whole JSON;
#   2. the audio output is lost mid-sentence and comes back (STTS_FAULT);
#   3. translation out of memory for one sentence, synthesis failure for another;
#   4. the model files truncated and replaced under a running process;
#   5. the output disk fills (tiny tmpfs; skipped without mount rights), and
#      a metrics file that cannot be written (/dev/full).
# Waits are on events (file growth, metrics lines, stderr lines), polled every
# 20 ms with a generous limit, never fixed sleeps.
set -u
BIN=$1; SRC=$2; SHARED=$3
T=$(mktemp -d); MNT=""
cleanup() { [ -n "$MNT" ] && umount "$MNT" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail=0; pass=0; skipped=0
ok()  { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }
skip() { echo "SKIPPED: $*"; skipped=$((skipped + 1)); }
SAMPLE=$SRC/samples/session.jsonl
VOICE=$SHARED/assets/voices/mei_normal.htsvoice
[ -f "$VOICE" ] || { echo "SKIPPED: no voice at $VOICE (scripts/fetch-assets)"; exit 77; }
command -v soxi >/dev/null || { echo "SKIPPED: soxi (sox) is not installed"; exit 77; }
export HOME=$T/home XDG_CONFIG_HOME= XDG_DATA_HOME= STREAM_TTS_MODEL= STTS_FAULT=
mkdir -p "$HOME"
RUN=("$BIN" --voice "$VOICE" --no-status)
SANITIZED=0; grep -qa "__asan_init\|__tsan_init" "$BIN" && SANITIZED=1

# wait_for SECONDS CMD...: polls CMD every 20 ms; 1 on time-out.
wait_for() {
  local limit=$1; shift
  local end=$(( $(date +%s%N) + limit * 1000000000 ))
  until "$@"; do
    [ "$(date +%s%N)" -gt "$end" ] && return 1
    sleep 0.02
  done
}
lines_ge() { [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]; }
size_ge() { [ -f "$1" ] && [ "$(stat -c %s "$1")" -ge "$2" ]; }
grep_q() { grep -q "$1" "$2" 2>/dev/null; }
ms_since_ge() { [ $(( ($(date +%s%N) - $1) / 1000000 )) -ge "$2" ]; }

# check_wav WAV MAX_BEHIND_BYTES: header sizes are consistent, cover the data
# on disk within MAX_BEHIND_BYTES, and sox decodes exactly what the header says.
check_wav() {
  local frames want
  want=$(python3 - "$1" "$2" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
assert len(b) >= 44 and b[:4] == b"RIFF" and b[8:12] == b"WAVE" and b[36:40] == b"data", "not a WAV header"
riff, data = struct.unpack("<I", b[4:8])[0], struct.unpack("<I", b[40:44])[0]
on_disk = len(b) - 44
assert riff == 36 + data, (riff, data)
assert data % 2 == 0 and data <= on_disk, ("header claims more than on disk", data, on_disk)
assert on_disk - data <= int(sys.argv[2]), ("header behind the data by", on_disk - data)
print(data // 2)   # the frames the header says
PY
) || return 1
  frames=$(soxi -s "$1" 2>/dev/null) || return 1
  [ "$frames" = "$want" ] || { echo "soxi says $frames frames, header $want" >&2; return 1; }
  sox "$1" -n stat 2>/dev/null || [ "$frames" = 0 ] || return 1
}
# every metrics line parses as JSON and ends with a newline
check_metrics() {
  python3 - "$1" <<'PY'
import json, sys
raw = open(sys.argv[1], "rb").read()
assert raw == b"" or raw.endswith(b"\n"), "last metrics line is not whole"
for l in raw.decode("utf-8").splitlines():
    json.loads(l)
PY
}

RATE=48000
HALF_S=$((RATE * 2 / 2 + 2048 * 2))   # 0.5 s of s16 mono + one write slice

# ---- 1. kill -9 at several moments -----------------------------------------------
# Paced like a device (--pace realtime), so every moment is reached while the
# run is still going. Each run is killed as soon as its own moment is seen
# (polled every 20 ms). The four later moments (1.5 s to ~15 s of audio in)
# are reached by four runs going at once, each in its own HOME: one after the
# other, the test spent most of a minute waiting for the audio of the
# sample's first sentences. The two at start-up run alone, where a poll of
# four runs would be too coarse for them.
MOMENTS=(ready first-audio mid-first one-line mid-third three-lines)
pids=(); s0=(); gone=()
# reached N: run N is at its moment (mid-third: 0.5 s after the second metrics line)
reached() {
  local n=$1 W=$T/k$1.wav M=$T/k$1.jsonl E=$T/k$1.err
  case ${MOMENTS[$((n - 1))]} in
    ready)       grep_q "ready in" "$E" ;;
    first-audio) size_ge "$W" 45 ;;
    mid-first)   size_ge "$W" $((44 + RATE * 2 * 3 / 2)) ;;   # 1.5 s into sentence 0
    one-line)    lines_ge "$M" 1 ;;
    mid-third)   if [ -z "${s0[$n]:-}" ]; then lines_ge "$M" 2 && s0[$n]=$(stat -c %s "$W"); return 1; fi
                 size_ge "$W" $((s0[n] + RATE)) ;;
    three-lines) lines_ge "$M" 3 ;;
  esac
}
# kill_at_moments N...: starts runs N... at once, kills each at its moment (120 s at most), checks what it left
kill_at_moments() {
  local n left=$# end=$(( $(date +%s%N) + 120 * 1000000000 ))
  for n in "$@"; do
    mkdir -p "$T/home$n"
    HOME=$T/home$n "${RUN[@]}" --input "$SAMPLE" --output "$T/k$n.wav" --metrics "$T/k$n.jsonl" --pace realtime \
      >/dev/null 2>"$T/k$n.err" &
    pids[$n]=$!
  done
  while [ $left -gt 0 ] && [ "$(date +%s%N)" -le "$end" ]; do
    for n in "$@"; do
      [ -n "${gone[$n]:-}" ] && continue
      if reached "$n"; then kill -9 "${pids[$n]}"; gone[$n]=1; left=$((left - 1)); fi
    done
    [ $left -gt 0 ] && sleep 0.02
  done
  for n in "$@"; do
    local moment=${MOMENTS[$((n - 1))]} W=$T/k$n.wav M=$T/k$n.jsonl
    [ -n "${gone[$n]:-}" ] || { kill -9 "${pids[$n]}"; bad "kill -9 at $moment: the moment never came ($(tail -2 "$T/k$n.err"))"; }
    wait "${pids[$n]}" 2>/dev/null
    check_wav "$W" "$HALF_S" && ok || bad "kill -9 at $moment: WAV header does not cover the data"
    check_metrics "$M" && ok || bad "kill -9 at $moment: a metrics line is not whole JSON"
    echo "kill -9 at $moment: $(stat -c %s "$W") bytes, header $(soxi -s "$W" 2>/dev/null) frames, $(wc -l <"$M") metrics lines"
  done
}
kill_at_moments 1
kill_at_moments 2
kill_at_moments 3 4 5 6

# ---- 2. the audio output is lost mid-sentence and comes back -------------------------
# Part 1 (the first turns) is fed; 2.5 s of audio in, the output "disappears"
# (STTS_FAULT: file sinks fail like a device, through the same path) until
# the test creates the file STTS_FAULT_AUDIO_BACK names, once every sentence
# of part 1 is through. Meanwhile sentences are dropped at once (the producer
# is not held); after the longest retry back-off (2 s), part 2 is fed and
# must be heard.
# (Part 1 ends at a message boundary; part 2 is one more message of one
# sentence: it was the sample's next turn, 3 sentences played in real time,
# which proved nothing more.)
head -n 197 "$SAMPLE" >"$T/part1.jsonl"; sed -n 198,261p "$SAMPLE" >"$T/part2.jsonl"
printf '%s\n' '{"type":"assistant","message":{"id":"msg_back","type":"message","role":"assistant","content":[{"type":"text","text":"The sound works again."}]},"parent_tool_use_id":null,"session_id":"2b7d9c1e-aaaa-4bbb-8ccc-0123456789ab"}' >"$T/back.jsonl"
cat "$T/part1.jsonl" "$T/back.jsonl" >"$T/both.jsonl"
n1=$("$BIN" --dry-run --input "$T/part1.jsonl" | wc -l)
nall=$("$BIN" --dry-run --input "$T/both.jsonl" | wc -l)
# Sections 3-5: the sample's first 60 lines (5 sentences, ~20 s of speech).
head -n 60 "$SAMPLE" >"$T/short.jsonl"
mkfifo "$T/fifo2"
STTS_FAULT=audio_fail_after_ms:2500,audio_down_ms:0 STTS_FAULT_AUDIO_BACK=$T/back "${RUN[@]}" --input "$T/fifo2" --output "$T/dev.wav" \
  --metrics "$T/dev.jsonl" --pace realtime >/dev/null 2>"$T/dev.err" &
pid=$!
exec 7<>"$T/fifo2"
cat "$T/part1.jsonl" >&7
if wait_for 60 grep_q "audio output failed" "$T/dev.err"; then
  t_fail=$(date +%s%N)
  wait_for 120 lines_ge "$T/dev.jsonl" "$n1"
  t_drained=$(date +%s%N)
  : >"$T/back"
  wait_for 60 ms_since_ge "$t_drained" 2500
  cat "$T/back.jsonl" >&7
fi
exec 7>&-
wait $pid; rc=$?
[ $rc -eq 1 ] && ok || bad "device loss: exit $rc, want 1 (sentences lost)"
[ "$(grep -c "audio output failed" "$T/dev.err")" -eq 1 ] && grep -q "injected fault.*still reading input" "$T/dev.err" \
  && ok || bad "device loss: want one line saying so: $(cat "$T/dev.err")"
[ "$(grep -c "audio output works again" "$T/dev.err")" -eq 1 ] && ok || bad "device loss: no 'works again' line"
python3 - "$T/dev.jsonl" "$n1" "$nall" "$(( (${t_drained:-0} - ${t_fail:-0}) / 1000000 ))" "$T/dev.wav" "$SANITIZED" <<'PY' \
  && ok || bad "device loss: metrics/WAV"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
n1, nall, drain_ms = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
assert [r["seq"] for r in rows] == list(range(nall)), ("every sentence once, in order", len(rows), nall)
lost = [r for r in rows if r.get("error") == "audio"]
# the failure is in the sentence playing 2.5 s into the audio (150 ms gaps)
t, at = 0.0, None
for r in rows:
    if t + r["audio_ms"] / 1000 > 2.5: at = r["seq"]; break
    t += r["audio_ms"] / 1000 + 0.150
# (the fault fires on the write that would cross 2.5 s: up to one 43 ms
# slice early, so possibly in the sentence before)
assert lost and lost[0]["seq"] in (at - 1, at), (lost[0]["seq"], at)
# the lost ones are one run; everything after it was heard
first, last = lost[0]["seq"], lost[-1]["seq"]
assert all(r.get("error") == "audio" for r in rows[first:last + 1])
assert last < n1, "part 2 was fed after the output came back"
heard = [r for r in rows if not r.get("error")]
assert all(r["t_first_out_ms"] is not None for r in heard)
heard = [r for r in heard if r["seq"] > last]
assert heard, "nothing heard after the output came back"
# Not held by the dead output: the lost sentences went by faster than they
# would have played (a pipeline held by the dead output, paced in real time,
# takes at least their duration: so the bound needs no margin for load;
# measured 0.9-3.9 s for 35.8-51.3 s of speech).
lost_audio_ms = sum(r["audio_ms"] for r in lost[1:])
print(f"device loss: {len(lost)} sentences lost ({lost_audio_ms/1000:.1f} s of speech) in {drain_ms} ms; "
      f"{len(heard)} heard after it came back")
# (timings mean nothing in a sanitizer build, many times slower)
if sys.argv[6] == "0":
    assert drain_ms < lost_audio_ms, (drain_ms, lost_audio_ms)
import struct
b = open(sys.argv[5], "rb").read()
secs = struct.unpack("<I", b[40:44])[0] / 2 / 48000
want = 2.5 + sum(r["audio_ms"] for r in heard) / 1000 + 0.150 * len(heard)
assert abs(secs - want) < 0.1, (secs, want)
PY
check_wav "$T/dev.wav" 0 && ok || bad "device loss: final WAV header"

# ---- 3. translation out of memory / synthesis fails, one sentence each ----------------
STTS_FAULT=translate_oom_seq:1,synth_fail_seq:3 "${RUN[@]}" --input "$T/short.jsonl" --output "$T/f.wav" \
  --metrics "$T/f.jsonl" --echo >"$T/f.out" 2>"$T/f.err"; rc=$?
[ $rc -eq 0 ] && ok || bad "stage faults: exit $rc"
grep -q "sentence 1: translation failed (out of memory (injected fault))" "$T/f.err" && ok \
  || bad "stage faults: no translation-failure line: $(cat "$T/f.err")"
grep -q "sentence 3: synthesis failed: injected fault" "$T/f.err" && ok || bad "stage faults: no synthesis-failure line"
# the source is read by a voice of its language (espeak-ng for English), said at start
grep -q "a sentence that cannot be translated is read untranslated by .* (espeak-ng)" "$T/f.err" && ok \
  || bad "stage faults: no source-language voice line: $(cat "$T/f.err")"
src1=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[1])["source"])' "$T/f.jsonl")
grep -qxF "翻訳できませんでした。 $src1" "$T/f.out" && ok || bad "stage faults: --echo lacks notice + source: $(cat "$T/f.out")"
nshort=$("$BIN" --dry-run --input "$T/short.jsonl" | wc -l)
python3 - "$T/f.jsonl" "$nshort" <<'PY' && ok || bad "stage faults: metrics"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
assert len(rows) == int(sys.argv[2]) and len(rows) >= 5
r1, r3 = rows[1], rows[3]
assert r1["error"] == "translation" and r1["how"] == "fallback-source" and r1["spoken"] == r1["source"], r1
assert r1["t_first_out_ms"] is not None, "a failed translation is still spoken (untranslated)"
# ... after a notice in the listener's language, in the same record (said once)
assert r1["untranslated"] is True and r1["notice"] == "翻訳できませんでした。", r1
assert r1["audio_ms"] > 1500, r1
assert [r["seq"] for r in rows] == list(range(len(rows))), "each sentence once, in order"
assert all("untranslated" not in r and "notice" not in r for i, r in enumerate(rows) if i != 1)
assert r3["error"] == "synthesis" and r3["audio_ms"] == 0 and r3["t_first_out_ms"] is None, r3
others = [r for i, r in enumerate(rows) if i not in (1, 3)]
assert all("error" not in r and r["t_first_out_ms"] is not None for r in others), "the next sentences continue"
assert rows[2]["how"] == "mt", "translation works again after the failure"
PY
# The fallback is read by two voices at their own rates (Open JTalk 48 kHz, espeak-ng 22.05 kHz) and
# the sink converts: its duration is the notice + 0.25 s + the source, each as said alone.
"$BIN" say --voice "$VOICE" --output "$T/fb-notice.wav" "翻訳できませんでした。" 2>/dev/null \
  && "$BIN" say --lang eng_Latn --output "$T/fb-source.wav" "$src1" 2>/dev/null \
  && python3 - "$T/f.jsonl" "$T/fb-notice.wav" "$T/fb-source.wav" <<'PY' && ok || bad "stage faults: the fallback's duration"
import json, struct, sys
def secs(f):
    b = open(f, "rb").read()
    return struct.unpack("<I", b[40:44])[0] / 2 / struct.unpack("<I", b[24:28])[0]
got = json.loads(open(sys.argv[1], encoding="utf-8").readlines()[1])["audio_ms"] / 1000
want = secs(sys.argv[2]) + 0.25 + secs(sys.argv[3])
assert abs(got - want) < 0.03, (got, want)
PY

# ---- 4. model files truncated / replaced under a running process ----------------------
# The engine converts every weight into its own memory at load and unmaps the
# file, so neither a rename over it (what fetch-model and convert do) nor a
# truncation in place reaches a running process: it keeps translating.
# (The short input, then the sample's next turn after the truncation.)
cat "$T/short.jsonl" "$T/part2.jsonl" >"$T/both4.jsonl"
nall4=$("$BIN" --dry-run --input "$T/both4.jsonl" | wc -l)
cp -r "$SRC/models/demo-en-ja" "$T/model"
mkfifo "$T/fifo4"
"${RUN[@]}" --model "$T/model" --input "$T/fifo4" --output "$T/m4.wav" --metrics "$T/m4.jsonl" >/dev/null 2>"$T/m4.err" &
pid=$!
exec 7<>"$T/fifo4"
cat "$T/short.jsonl" >&7
if wait_for 60 lines_ge "$T/m4.jsonl" 1; then
  cp "$T/model/model.safetensors" "$T/model/new.safetensors" && mv "$T/model/new.safetensors" "$T/model/model.safetensors"
  : >"$T/model/model.safetensors"                        # truncated in place
  : >"$T/model/sentencepiece.bpe.model"
  cat "$T/part2.jsonl" >&7
fi
exec 7>&-
wait $pid; rc=$?
[ $rc -eq 0 ] && ok || bad "model truncated under the process: exit $rc $(tail -3 "$T/m4.err")"
python3 - "$T/m4.jsonl" "$nall4" <<'PY' && ok || bad "model truncated: metrics"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
assert len(rows) == int(sys.argv[2]), len(rows)
late = [r for r in rows[len(rows) // 2:] if r["kind"] == "speech"]
assert late and all(r["how"] in ("mt", "cache", "mt-beam-retry") and "error" not in r for r in late), late[:2]
PY
# A new process on the truncated file: a clear error naming it, not a crash.
"${RUN[@]}" --model "$T/model" --input "$T/short.jsonl" --output "$T/m5.wav" >/dev/null 2>"$T/m5.err"; rc=$?
[ $rc -eq 1 ] && grep -q "model.safetensors\|sentencepiece" "$T/m5.err" && ok \
  || bad "truncated model at start: exit $rc, $(cat "$T/m5.err")"

# The Open JTalk dictionaries stay mapped: a user dictionary truncated in place
# under a running process raises SIGBUS on its next use. stream-tts then says
# which file and what to do, and exits 1 (instead of a bare "Bus error").
DIC=$(dirname "$BIN")/../data/stts-terms.dic
if [ -f "$DIC" ]; then
  cp "$DIC" "$T/terms.dic"; mkfifo "$T/fifo4b"
  "${RUN[@]}" --user-dict "$T/terms.dic" --input "$T/fifo4b" --output "$T/b.wav" --metrics "$T/b.jsonl" >/dev/null 2>"$T/b.err" &
  pid=$!
  exec 7<>"$T/fifo4b"
  cat "$T/short.jsonl" >&7
  wait_for 60 lines_ge "$T/b.jsonl" 1 || bad "SIGBUS: the run never spoke"
  : >"$T/terms.dic"
  cat "$T/part2.jsonl" >&7
  exec 7>&-
  wait $pid; rc=$?
  [ $rc -eq 1 ] && grep -q "terms.dic was truncated or rewritten in place.*SIGBUS.*renaming it over" "$T/b.err" && ok \
    || bad "SIGBUS: exit $rc, $(tail -2 "$T/b.err")"
  check_wav "$T/b.wav" "$HALF_S" && check_metrics "$T/b.jsonl" && ok || bad "SIGBUS: WAV/metrics left unusable"
else
  bad "SIGBUS: no built-in dictionary at $DIC (the build makes it: a missing one is a build fault)"
fi

# ---- 5. the output disk fills --------------------------------------------------------
MNT=$T/tiny; mkdir -p "$MNT"
# The short input: ~20 s of speech, twice what the disk holds; its first two
# sentences (8.5 s) fit, its last three do not.
nsample=$("$BIN" --dry-run --input "$T/short.jsonl" | wc -l)
# A 1 MiB tmpfs: mounted here when allowed (root), else in a user and mount
# namespace of its own (unshare -rm, as test_install.sh), where the run
# writes and its WAV is copied out for the checks.
if mount -t tmpfs -o size=1m tmpfs "$MNT" 2>/dev/null; then
  umount "$MNT"; NS=()
elif unshare -rm true 2>/dev/null; then
  NS=(unshare -rm)
else
  NS=(none)
fi
if [ "${NS[0]:-}" != none ]; then
  "${NS[@]}" bash -c 'm=$1; copy=$2; shift 2; mount -t tmpfs -o size=1m tmpfs "$m" || exit 99
    "$@"; rc=$?; cp "$m/full.wav" "$copy"; umount "$m"; exit $rc' _ "$MNT" "$T/full.wav" \
    "${RUN[@]}" --input "$T/short.jsonl" --output "$MNT/full.wav" --metrics "$T/full.jsonl" >/dev/null 2>"$T/full.err"; rc=$?
  [ $rc -eq 1 ] && ok || bad "disk full: exit $rc, want 1 (99: the tmpfs could not be mounted)"
  [ "$(grep -c "No space left on device" "$T/full.err")" -ge 1 ] && grep -q "could not be written to $MNT/full.wav" "$T/full.err" \
    && [ "$(grep -c "audio output failed" "$T/full.err")" -eq 1 ] && ok || bad "disk full: messages: $(cat "$T/full.err")"
  check_wav "$T/full.wav" 0 && ok || bad "disk full: the WAV header does not match what was written"
  python3 - "$T/full.jsonl" "$nsample" <<'PY' && ok || bad "disk full: metrics lost"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
assert [r["seq"] for r in rows] == list(range(int(sys.argv[2]))), "a metrics line for every sentence"
assert rows[0].get("error") is None and rows[-1]["error"] == "audio"
PY
  echo "disk full: $(stat -c %s "$T/full.wav") bytes written, header $(soxi -s "$T/full.wav") frames"
  # 5b. Space comes back: a WAV on disk is written again (it stayed failed for good, and a daemon
  # writing one went silent for the rest of its life). The disk is full but 64 KiB when the first
  # line comes; the filler goes 1.5 s later; the second line comes 3 s after the first.
  "${NS[@]}" bash -c 'm=$1; copy=$2; shift 2; mount -t tmpfs -o size=1m tmpfs "$m" || exit 99
    head -c $((1024 * 1024 - 65536)) /dev/zero >"$m/filler" 2>/dev/null
    (sleep 1.5; rm -f "$m/filler") &
    { echo "This sentence is spoken while the disk is full."; sleep 3
      echo "This one is written after the space came back."; } | "$@"; rc=$?
    wait; cp "$m/back.wav" "$copy"; umount "$m"; exit $rc' _ "$MNT" "$T/back.wav" \
    "${RUN[@]}" --input - --input-format text --output "$MNT/back.wav" --metrics "$T/back.jsonl" >/dev/null 2>"$T/back.err"; rc=$?
  [ $rc -eq 1 ] && grep -q "audio output failed at sentence 0" "$T/back.err" \
    && grep -q "audio output works again; speaking from sentence 1" "$T/back.err" && ok \
    || bad "disk full, then space: exit $rc, $(cat "$T/back.err")"
  check_wav "$T/back.wav" 0 && ok || bad "disk full, then space: the WAV header does not match what was written"
  python3 - "$T/back.jsonl" "$T/back.wav" <<'PY' && ok || bad "disk full, then space: the second sentence is not in the WAV"
import json, struct, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
assert [r.get("error") for r in rows] == ["audio", None], rows
data = struct.unpack("<I", open(sys.argv[2], "rb").read()[40:44])[0]
assert data / 2 / 48000 >= 0.9 * rows[1]["audio_ms"] / 1000, (data, rows[1]["audio_ms"])
PY
else
  skip "disk full: neither mount -t tmpfs nor unshare -rm is permitted here"
fi
"${RUN[@]}" --input "$T/short.jsonl" --output "$T/mf.wav" --metrics /dev/full >/dev/null 2>"$T/mf.err"; rc=$?
[ "$(grep -c "cannot write the metrics line.*No space left on device" "$T/mf.err")" -eq 1 ] && ok \
  || bad "metrics on a full disk: want one line: $(cat "$T/mf.err")"
check_wav "$T/mf.wav" 0 && [ $rc -eq 0 ] && ok || bad "metrics on a full disk: the audio should be unharmed (exit $rc)"

echo "$pass passed, $fail failed, $skipped skipped"
[ $fail -eq 0 ] || exit 1
[ $skipped -eq 0 ] || exit 77   # a part not run is a skip, which scripts/check-skips judges
