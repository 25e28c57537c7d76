#!/usr/bin/env bash
# test_cli_startup_signals.sh STREAM_TTS SOURCE_DIR - SIGINT and SIGTERM while
# the program is still starting up (model load, voice): the signal waited
# until start-up was over, so a Ctrl-C during a load of seconds did nothing
# for seconds. Now it stops the program at once: the main command exits
# 128 + the signal with "stopped (...) while starting up" and no output file
# written; serve exits 0 as on any stop, its socket removed. Slow start-ups:
# STTS_FAULT=model_load_delay_ms (a TEST-ONLY load of a minute,
# docs/RELIABILITY.md) and a --tts-command whose start-up probe hangs.
# Needs no voice and no sound card: the signal comes before either is used.
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
BOUND_MS=3000   # the load would take 60 s; the probe 10 s

# wait_for FILE PID: until FILE exists (the program is in the slow part), 30 s at most.
wait_for() {
  for _ in $(seq 600); do [ -e "$1" ] && return 0; kill -0 "$2" 2>/dev/null || return 1; sleep 0.05; done
  return 1
}
# signal_it NAME SIG PID HELD: waits for HELD, sends SIG, waits for PID; sets rc and ms.
signal_it() {
  local name=$1 sig=$2 pid=$3 held=$4
  if ! wait_for "$held" "$pid"; then
    bad "$name: never reached the slow start-up: $(head -c 400 "$T/err")"
    kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rc=-1; ms=0; return 1
  fi
  local t0; t0=$(date +%s%N)
  kill -"$sig" "$pid"
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done   # 15 s, then it is killed
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  kill -KILL "$pid" 2>/dev/null
  wait "$pid"; rc=$?
}

# 1. The main command, during the model load.
for sig in INT TERM; do
  want=$([ $sig = INT ] && echo 130 || echo 143)
  word=$([ $sig = INT ] && echo interrupt || echo terminated)
  rm -f "$T/gate.held" "$T/out.wav" "$T/m.jsonl"
  STTS_FAULT=model_load_delay_ms:60000 STTS_FAULT_GATE="$T/gate" \
    "$BIN" --input-format text --daemon never --model "$DEMO" --output "$T/out.wav" --metrics "$T/m.jsonl" \
    <"$T/in.txt" >"$T/out" 2>"$T/err" &
  signal_it "main, SIG$sig during the model load" $sig $! "$T/gate.held" || continue
  echo "main, SIG$sig during the model load: exit $rc after ${ms} ms"
  [ $rc -eq "$want" ] && [ $ms -lt $BOUND_MS ] && ok \
    || bad "main, SIG$sig during the model load: exit $rc after ${ms} ms (want $want within $BOUND_MS ms)"
  grep -q "^stream-tts: stopped ($word) while starting up$" "$T/err" && ok \
    || bad "main, SIG$sig during the model load: stderr: $(head -c 400 "$T/err")"
  [ ! -e "$T/out.wav" ] && [ ! -e "$T/m.jsonl" ] && [ ! -s "$T/out" ] && ok \
    || bad "main, SIG$sig during the model load: output written ($(ls "$T"))"
done

# 2. The main command, during a voice's start-up probe that hangs (the
# command backend waits up to 10 s for it). No fault hook: the command
# itself says when it runs, and its pid, to end it after the test.
rm -f "$T/probe.held" "$T/out.wav"
"$BIN" --input-format text --daemon never --no-translate --output "$T/out.wav" \
  --tts-command "echo \$\$ >$T/probe.pid; touch $T/probe.held; exec sleep 30" <"$T/in.txt" >/dev/null 2>"$T/err" &
if signal_it "main, SIGINT during the voice's probe" INT $! "$T/probe.held"; then
  echo "main, SIGINT during the voice's probe: exit $rc after ${ms} ms"
  [ $rc -eq 130 ] && [ $ms -lt $BOUND_MS ] && grep -q "stopped (interrupt) while starting up" "$T/err" && ok \
    || bad "main, SIGINT during the voice's probe: exit $rc after ${ms} ms, stderr: $(head -c 400 "$T/err")"
  [ ! -e "$T/out.wav" ] && ok || bad "main, SIGINT during the voice's probe: $T/out.wav written"
fi
[ -s "$T/probe.pid" ] && kill "$(cat "$T/probe.pid")" 2>/dev/null

# 3. serve, during the model load: a stop as any other (exit 0, socket
# removed), without waiting for the load.
rm -f "$T/gate.held"
mkdir -p "$T/d"
STTS_FAULT=model_load_delay_ms:60000 STTS_FAULT_GATE="$T/gate" \
  "$BIN" serve --socket "$T/d/sock" --model "$DEMO" --output "$T/d.wav" >/dev/null 2>"$T/err" &
if signal_it "serve, SIGTERM during the model load" TERM $! "$T/gate.held"; then
  echo "serve, SIGTERM during the model load: exit $rc after ${ms} ms"
  [ $rc -eq 0 ] && [ $ms -lt $BOUND_MS ] && ok \
    || bad "serve, SIGTERM during the model load: exit $rc after ${ms} ms (want 0 within $BOUND_MS ms)"
  [ ! -e "$T/d/sock" ] && grep -q "stopping (terminated)" "$T/d/serve.log" && grep -q "exited while starting up" "$T/d/serve.log" \
    && [ ! -e "$T/d.wav" ] && ok || bad "serve, SIGTERM during the model load: serve.log: $(tail -c 400 "$T/d/serve.log")"
fi

# 4. Control: the fault hook only delays. A short delay, no signal: the
# load ends and start-up goes on to the voice (a missing one, so it stops there).
STTS_FAULT=model_load_delay_ms:200 timeout -k 5 60 "$BIN" --input-format text --daemon never --model "$DEMO" \
  --voice "$T/none.htsvoice" --output "$T/c.wav" <"$T/in.txt" >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "none.htsvoice" "$T/err" && ! grep -q "starting up" "$T/err" && ok \
  || bad "control, a 200 ms delay: exit $rc, stderr: $(head -c 400 "$T/err")"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
