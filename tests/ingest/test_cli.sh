#!/usr/bin/env bash
# test_cli.sh STREAM_TTS SOURCE_DIR - the stream-tts front-end CLI: exact
# --dry-run output on the bundled sample, --json, streaming before EOF,
# transcript/hook/follow modes, bad input (exit 0 + warnings), bad flags
# (exit 2), unreadable input (exit 1), --help listing every flag.
set -u
BIN=$1; SRC=$2
T=$(mktemp -d); trap 'rm -rf "$T"; [ -n "${FPID:-}" ] && kill "$FPID" 2>/dev/null' EXIT
fail=0; pass=0
ok()  { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }
SAMPLE=$SRC/samples/session.jsonl
EXP=$SRC/tests/data/front/session.expected

# 1. exact stdout on the sample, nothing on stderr
"$BIN" --dry-run --input "$SAMPLE" >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && ok || bad "sample: exit $rc"
cmp -s "$T/out" "$EXP" && ok || { bad "sample output differs"; diff "$T/out" "$EXP" >&2; }
[ ! -s "$T/err" ] && ok || { bad "sample: stderr not empty"; cat "$T/err" >&2; }
# same from stdin
"$BIN" --dry-run <"$SAMPLE" >"$T/out2" 2>/dev/null && cmp -s "$T/out2" "$EXP" && ok || bad "stdin output differs"
"$BIN" --dry-run --input - <"$SAMPLE" >"$T/out3" 2>/dev/null && cmp -s "$T/out3" "$EXP" && ok || bad "--input - differs"

# 2. --json: one object per sentence, same texts, ordered, timestamps sane
"$BIN" --dry-run --json --input "$SAMPLE" >"$T/json" 2>/dev/null || bad "--json exit"
python3 - "$T/json" "$EXP" <<'PY' && ok || bad "--json content"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
want = open(sys.argv[2], encoding="utf-8").read().splitlines()
assert [r["text"] for r in rows] == want, "texts differ"
assert [r["seq"] for r in rows] == list(range(len(rows)))
for r in rows:
    assert set(r) == {"seq", "text", "kind", "lang", "message_id", "line", "arrival_ns", "emit_ns"}, r
    assert r["kind"] in ("speech", "code", "table", "tool", "error")
    assert (r["lang"] is None) == (r["kind"] == "speech"), r
    assert r["message_id"].startswith("msg_01"), r
    assert 0 < r["arrival_ns"] <= r["emit_ns"], r
    assert r["line"] >= 1
assert any(r["kind"] == "code" and r["text"] == "C code, 5 lines, omitted." for r in rows)
lines = [r["line"] for r in rows]
assert lines == sorted(lines)
PY

# 3. streaming: a sentence appears while the input is still open
mkfifo "$T/fifo"
"$BIN" --dry-run --input "$T/fifo" >"$T/live" 2>/dev/null &
LPID=$!
exec 7>"$T/fifo"
printf '%s\n' '{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"Spoken before the end of input."}]}}' >&7
for _ in $(seq 600); do [ -s "$T/live" ] && break; sleep 0.05; done  # the event, or 30 s
[ "$(cat "$T/live")" = "Spoken before the end of input." ] && ok || bad "no output before EOF: '$(cat "$T/live")'"
exec 7>&-
wait $LPID || bad "live run exit"

# 4. idle flush: a fragment comes out after --idle-flush-ms of silence
"$BIN" --dry-run --idle-flush-ms 200 --input "$T/fifo" >"$T/idle" 2>/dev/null &
LPID=$!
exec 7>"$T/fifo"
printf '%s\n' '{"type":"stream_event","event":{"type":"message_start","message":{"id":"m"}}}' \
  '{"type":"stream_event","event":{"type":"content_block_start","index":0,"content_block":{"type":"text"}}}' \
  '{"type":"stream_event","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me think about this "}}}' >&7
for _ in $(seq 600); do [ -s "$T/idle" ] && break; sleep 0.05; done  # the event, or 30 s
[ "$(cat "$T/idle")" = "Let me think about this" ] && ok || bad "idle flush: '$(cat "$T/idle")'"
exec 7>&-
wait $LPID

# 5. bad input: warnings name lines, valid lines spoken once, exit 0
{ echo '{"type":"assistant","message":{"id":"a","content":[{"type":"text","text":"First valid line."}]}}'
  echo '{"type":"assistant","message":'
  printf '\x00\x01\xff garbage\n'
  echo '"just a string"'
  echo '{"type":"assistant","message":{"id":"b","content":[{"type":"text","text":"Second valid line."}]}}'
  printf '{"type":"assistant","message":{"id":"c","content":[{"type":"text","text":"Truncated last line."}]}}'
} >"$T/bad.jsonl"
"$BIN" --dry-run --input "$T/bad.jsonl" >"$T/bout" 2>"$T/berr"; rc=$?
[ $rc -eq 0 ] && ok || bad "bad input: exit $rc"
[ "$(cat "$T/bout")" = "$(printf 'First valid line.\nSecond valid line.\nTruncated last line.')" ] && ok || bad "bad input output: $(cat "$T/bout")"
for n in 2 3 4; do grep -q "^stream-tts: line $n: " "$T/berr" && ok || bad "no warning for line $n: $(cat "$T/berr")"; done
# the last line lacks its newline but is one whole object: nothing was cut
grep -q "^stream-tts: line 6: " "$T/berr" && bad "complete last line warned about: $(cat "$T/berr")" || ok

# 6. transcripts: --transcript, --hook, --follow
TR=$T/session.jsonl
{ echo '{"type":"user","message":{"role":"user","content":"first question"}}'
  echo '{"type":"assistant","message":{"id":"x1","content":[{"type":"text","text":"Old turn."}]}}'
  echo '{"type":"user","message":{"role":"user","content":[{"type":"text","text":"second question"}]}}'
  echo '{"type":"assistant","message":{"id":"x2","content":[{"type":"text","text":"The **last** turn is spoken."}]}}'
} >"$TR"
[ "$("$BIN" --dry-run --transcript "$TR" 2>&1)" = "The last turn is spoken." ] && ok || bad "--transcript"
# from a pipe (read twice: copied to a temporary file; it was "cannot rewind: Illegal seek")
[ "$(cat "$TR" | "$BIN" --dry-run --transcript /dev/stdin 2>&1)" = "The last turn is spoken." ] && ok ||
  bad "--transcript from a pipe: $(cat "$TR" | "$BIN" --dry-run --transcript /dev/stdin 2>&1)"
printf '{"session_id":"s","transcript_path":"%s","hook_event_name":"Stop","stop_hook_active":false}' "$TR" >"$T/payload"
[ "$("$BIN" --dry-run --hook <"$T/payload" 2>&1)" = "The last turn is spoken." ] && ok || bad "--hook"
echo 'not json' | "$BIN" --dry-run --hook >/dev/null 2>"$T/herr"; rc=$?
[ $rc -eq 1 ] && grep -q "hook payload" "$T/herr" && ok || bad "--hook with a bad payload: exit $rc"
"$BIN" --dry-run --follow "$TR" >"$T/fout" 2>"$T/ferr" &
FPID=$!
# Append only once it says it is following (its ready line), however slow the machine.
wait_for() { for _ in $(seq 600); do grep -q "$1" "$2" 2>/dev/null && return 0; kill -0 $FPID 2>/dev/null || break; sleep 0.05; done; return 1; }
wait_for "following .* from its end" "$T/ferr" && ok || bad "--follow: no ready line: '$(cat "$T/ferr")'"
echo '{"type":"assistant","message":{"id":"x3","content":[{"type":"text","text":"Appended while following."}]}}' >>"$TR"
wait_for "Appended while following." "$T/fout"
# a slash command Claude answers (its line, the isMeta expansion, the reply): the reply, once
{ echo '{"type":"user","message":{"role":"user","content":"<command-message>review is running</command-message>\n<command-name>/review</command-name>"}}'
  echo '{"type":"user","isMeta":true,"message":{"role":"user","content":[{"type":"text","text":"Review the pull request."}]}}'
  echo '{"type":"assistant","message":{"id":"x4","content":[{"type":"text","text":"The review is done."}]}}'
} >>"$TR"
wait_for "The review is done." "$T/fout"
[ "$(cat "$T/fout")" = "$(printf 'Appended while following.\nThe review is done.')" ] && ok || bad "--follow: '$(cat "$T/fout")'"
kill $FPID 2>/dev/null; wait $FPID 2>/dev/null; FPID=
# --transcript and --hook: that reply is the last turn (the one before it was said again)
[ "$("$BIN" --dry-run --transcript "$TR" 2>&1)" = "The review is done." ] && ok ||
  bad "--transcript after an answered slash command: $("$BIN" --dry-run --transcript "$TR" 2>&1)"
[ "$("$BIN" --dry-run --hook <"$T/payload" 2>&1)" = "The review is done." ] && ok ||
  bad "--hook after an answered slash command: $("$BIN" --dry-run --hook <"$T/payload" 2>&1)"

# 6b. --follow of a session under way: a line half written at the start is read whole once
# its end comes (its end alone read as plain text, the reply lost); the earlier turns are not
# said again when written again (a resumed session; a rewrite that replaces the file); a reply
# without a sentence end is said whole within the idle time, not at the next line.
TF=$T/live.jsonl
A_OLD='{"type":"assistant","message":{"id":"y1","content":[{"type":"text","text":"Old answer here."}]}}'
A_HALF='{"type":"assistant","message":{"id":"y2","content":[{"type":"text","text":"Being written now."}]}}'
A_WORD='{"type":"assistant","message":{"id":"y3","content":[{"type":"text","text":"One word"}]}}'
A_NEW='{"type":"assistant","message":{"id":"y4","content":[{"type":"text","text":"After the rewrite."}]}}'
U='{"type":"user","message":{"role":"user","content":"a question"}}'
{ echo "$U"; echo "$A_OLD"; echo "$U"; printf '%s' "${A_HALF:0:40}"; } >"$TF"
"$BIN" --dry-run --follow "$TF" >"$T/f2out" 2>"$T/f2err" &
FPID=$!
wait_for "following .* from its end" "$T/f2err" && ok || bad "--follow (6b): no ready line: '$(cat "$T/f2err")'"
echo "${A_HALF:40}" >>"$TF"
wait_for "Being written now." "$T/f2out" && ok || bad "--follow: the line half written at the start was lost: $(cat "$T/f2err")"
{ echo "$A_OLD"; echo "$U"; echo "$A_WORD"; } >>"$TF"   # re-emitted, then a reply without a sentence end
wait_for "One word" "$T/f2out" && ok || bad "--follow: 'One word' not said without a next line"
cp "$TF" "$T/live.new"; echo "$U" >>"$T/live.new"; echo "$A_NEW" >>"$T/live.new"; mv "$T/live.new" "$TF"
wait_for "After the rewrite." "$T/f2out"
[ "$(cat "$T/f2out")" = "$(printf 'Being written now.\nOne word\nAfter the rewrite.')" ] && ok ||
  bad "--follow of a session under way: '$(cat "$T/f2out")'"
grep -q "plain text" "$T/f2err" && bad "--follow: a warning about plain text: $(cat "$T/f2err")" || ok
# SIGTERM: the sentence not ended yet is printed before the exit (128 + 15), not lost
echo '{"type":"assistant","message":{"id":"y5","content":[{"type":"text","text":"Last words. Cut off here"}]}}' >>"$TF"
wait_for "Last words." "$T/f2out"
kill -TERM $FPID; wait $FPID; rc=$?; FPID=
[ $rc -eq 143 ] && [ "$(tail -1 "$T/f2out")" = "Cut off here" ] && grep -q "stopped (terminated)" "$T/f2err" && ok ||
  bad "--dry-run --follow on SIGTERM: exit $rc, last line '$(tail -1 "$T/f2out")'"

# 7. bad flags: exit 2, message on stderr, nothing on stdout
for args in "--bogus" "--dry-run --idle-flush-ms abc" "--dry-run --input" "--dry-run --notice-lang english" \
            "--json" "--dry-run --input a --transcript b" "--dry-run extra" "--dry-run --max-sentence-chars 5" \
            "--dry-run --merge-short-chars -1" "--dry-run --follow" "--dry-run --input-format html" \
            "--dry-run --input-format text --transcript x.jsonl"; do
  # shellcheck disable=SC2086
  "$BIN" $args </dev/null >"$T/fo" 2>"$T/fe"; rc=$?
  [ $rc -eq 2 ] && [ ! -s "$T/fo" ] && grep -q "^stream-tts: " "$T/fe" && ok || bad "'$args': exit $rc, stderr '$(cat "$T/fe")'"
done
"$BIN" --dry-run --input "$T/missing.jsonl" >/dev/null 2>"$T/me"; rc=$?
[ $rc -eq 1 ] && grep -q "missing.jsonl" "$T/me" && ok || bad "missing input: exit $rc"
# a directory given as the input or transcript: named, with what to give instead
mkdir -p "$T/adir"
for flag in --input --transcript; do
  "$BIN" --dry-run $flag "$T/adir" >/dev/null 2>"$T/de"; rc=$?
  [ $rc -eq 1 ] && grep -q "adir'.*directory" "$T/de" && ok || bad "$flag DIR: exit $rc, stderr '$(cat "$T/de")'"
done

# 8. --help documents every flag
"$BIN" --help >"$T/help"; rc=$?
[ $rc -eq 0 ] && ok || bad "--help exit $rc"
for f in --input --transcript --hook --follow --max-line-mib --speak-subagents --announce-tools --speak-thinking \
         --read-tables --notice-lang --input-format --idle-flush-ms --max-sentence-chars --merge-short-chars --dry-run --json --stats --help; do
  grep -Eq -- "(^|[^a-z-])$f([^a-z-]|\$)" "$T/help" && ok || bad "--help lacks $f"   # whole flags: --input is not --input-format
done
"$BIN" --dry-run --stats --input "$SAMPLE" 2>&1 >/dev/null | grep -q "lines (.* bytes), 0 bad" && ok || bad "--stats"

# 9. plain text piped in: said once on stderr with the fix; --input-format text|markdown speak it
printf 'Hello, this is plain text.\nA second line.\n' | "$BIN" --dry-run >"$T/po" 2>"$T/pe"; rc=$?
[ $rc -eq 0 ] && [ ! -s "$T/po" ] && [ "$(grep -c 'plain text' "$T/pe")" = 1 ] && grep -q -- '--input-format text' "$T/pe" \
  && ok || bad "plain text detection: exit $rc, stderr '$(cat "$T/pe")'"
printf 'Use *stars* and # signs.\n\nNext paragraph.\n' | "$BIN" --dry-run --input-format text >"$T/po" 2>"$T/pe"
[ "$(cat "$T/po")" = "$(printf 'Use *stars* and # signs.\nNext paragraph.')" ] && [ ! -s "$T/pe" ] && ok || bad "--input-format text: '$(cat "$T/po")'"
printf '# Title\nSome **bold** text.\n' | "$BIN" --dry-run --input-format=markdown >"$T/po" 2>&1
[ "$(cat "$T/po")" = "$(printf 'Title\nSome bold text.')" ] && ok || bad "--input-format markdown: '$(cat "$T/po")'"
printf 'input-format = text\n' >"$T/if.conf"
printf 'Use *stars* here.\n' | "$BIN" --config "$T/if.conf" --dry-run >"$T/po" 2>&1
[ "$(cat "$T/po")" = "Use *stars* here." ] && ok || bad "input-format in the configuration file: '$(cat "$T/po")'"
"$BIN" --dry-run --input-format stream-json --input "$SAMPLE" >"$T/po" 2>/dev/null && cmp -s "$T/po" "$EXP" && ok \
  || bad "--input-format stream-json differs from the default"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
