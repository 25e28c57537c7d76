#!/usr/bin/env python3
"""test_daemon_stop_race.py STREAM_TTS SOURCE_DIR SHARED_DIR - a stop (ctl
stop, Esc's control, a prompt's barge-in, a mute) that comes while serve's
speaker has taken a sentence from its queue and not yet pushed it into the
pipeline: that sentence was in neither place the stop looked, and was spoken
after the stop. The window (microseconds) is held open by the test-only seam
STTS_FAULT=serve_hold_seq:N with STTS_FAULT_GATE=FILE: the speaker creates
FILE.held once it holds sentence N, and goes on when FILE exists. The stop
must silence everything queued before it, that sentence included, and what
is queued after it is spoken, once."""
import os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import Checks, Daemon, md, scratch, stop, voice_or_skip, wait_for  # noqa: E402

BIN, SRC, SHARED = sys.argv[1:4]
VOICE = voice_or_skip(SHARED)
check = Checks()

BEFORE = ["The first sentence was already playing when the stop came.",
          "The second sentence was on its way to the pipeline.",
          "The third sentence was still waiting in the queue."]
AFTER = "This sentence came after the stop and is heard once."

tmp = scratch("stts-daemon-stop-race-")
for op, req in (("stop", {"v": 1, "op": "stop", "session": "race"}),
                ("stop-all", {"v": 1, "op": "stop"}),
                ("mute", {"v": 1, "op": "mute", "session": "race"})):
    gate = os.path.join(tmp, op + ".gate")
    env = dict(os.environ, STTS_FAULT="serve_hold_seq:1", STTS_FAULT_GATE=gate)
    # Not paced: the window is held open by the gate, not by playback.
    d = Daemon(BIN, VOICE, tmp, op, extra=["--gap-ms", "0", "--stop-grace", "0"], env=env, pace=False)
    d.hook(stop("race", " ".join(BEFORE)))
    wait_for(lambda: os.path.exists(gate + ".held"), "%s: the speaker holding the second sentence" % op)
    r = d.req(req)
    check(r and r["ok"], "%s: %r" % (op, r))
    if op == "mute":
        d.req({"v": 1, "op": "unmute", "session": "race"})
    d.hook(stop("race", AFTER))   # a new reply of the session, queued after the stop
    open(gate, "w").close()       # the speaker goes on
    wait_for(lambda: any(x["source"] == AFTER for x in d.records()) and d.status()["queue"] == 0,
             "%s: the sentence after the stop" % op)
    recs = [x for x in d.records() if x.get("session") == "race"]
    heard = [x["source"] for x in recs if not x.get("stopped")]
    check(BEFORE[1] not in heard, "%s: the sentence in the speaker's hand was spoken after the stop: %r" % (op, heard))
    check(BEFORE[2] not in heard, "%s: a queued sentence was spoken after the stop: %r" % (op, heard))
    check(heard.count(AFTER) == 1, "%s: the sentence after the stop, once: %r" % (op, heard))
    check(d.close() == 0, "%s: daemon exit" % op)

# Words still pending in the hub's text stage when the stop came (a line
# that ends no sentence; Esc: nothing more of it comes) were said when they
# were flushed: by the idle timer 1.5 s later, or here by the SessionEnd.
d = Daemon(BIN, VOICE, tmp, "pending", extra=["--gap-ms", "0"], pace=False)
d.hook(md("cut", "m1", 0, "The first sentence is complete.\nThe fix is to change the parser\n", False))
r = d.req({"v": 1, "op": "stop", "session": "cut"})
check(r and r["ok"], "stop: %r" % r)
d.hook({"session_id": "cut", "hook_event_name": "SessionEnd", "reason": "other"})
d.hook(stop("marker", "The marker sentence comes last."))
wait_for(lambda: any(x["source"] == "The marker sentence comes last." for x in d.records())
         and d.status()["queue"] == 0, "pending: the marker sentence")
srcs = [x["source"] for x in d.records() if not x.get("stopped")]
check("The fix is to change the parser" not in srcs, "pending words said after the stop: %r" % srcs)
check(d.close() == 0, "pending: daemon exit")

sys.exit(check.finish())
