#!/usr/bin/env python3
"""test_daemon_order.py STREAM_TTS SOURCE_DIR SHARED_DIR - `serve --order
newest` and `serve --cue`, from the metrics records:
 - newest: while session A's sentences wait (playback paused, the pipeline
   full), session B's prompt and sentences arrive; B is spoken before A's
   waiting sentences, A's rest after it; with the default arrival order the
   same input speaks all of A first (the reference);
 - cue: the cue notice is spoken exactly where the speaker changes session,
   never between two sentences of one session."""
import os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import Checks, Daemon, md, scratch, voice_or_skip, wait_for  # noqa: E402

BIN, SRC, SHARED = sys.argv[1:4]
VOICE = voice_or_skip(SHARED)
check = Checks()
CUE = "Another session."


def prompt(session):
    return {"session_id": session, "transcript_path": "/nonexistent", "cwd": "/tmp",
            "hook_event_name": "UserPromptSubmit", "prompt": "go"}


# Enough sentences of A that some wait in the daemon's own list once the paused
# pipeline is full (8 per text queue, then 60 s of synthesized audio: about 40
# of these sentences).
A = ["Alpha step %d is done." % i for i in range(1, 71)]
B = ["Bravo one is here.", "Bravo two follows."]
tmp = scratch("stts-daemon-order-")


def run(name, extra):
    """Feeds A (paused), then B once some of A waits; returns (records, how many of A waited)."""
    d = Daemon(BIN, VOICE, tmp, name, extra=["--gap-ms", "0"] + extra, pace=False)
    s = d.conn()
    d.ctl("pause")
    d.hook(prompt("sess-A"), s)
    for i, t in enumerate(A):
        d.hook(md("sess-A", "msg-A", i, t + "\n", i == len(A) - 1), s)
    # The speaker blocks on the full pipeline: the status's "pending" stops falling.
    last = [None, 0]

    def settled():
        p = d.status()["pending"]
        if p == last[0]:
            last[1] += 1
        else:
            last[0], last[1] = p, 0
        return p > 0 and last[1] >= 25   # unchanged for 25 polls (~0.5 s or more)
    wait_for(settled, "A's sentences waiting behind the paused pipeline")
    d.hook(prompt("sess-B"), s)
    for i, t in enumerate(B):
        d.hook(md("sess-B", "msg-B", i, t + "\n", i == len(B) - 1), s)
    # A's sentences still in the daemon's list now (at least): with --order
    # newest every one of them follows B (the speaker takes B's first).
    waiting = d.status()["pending"] - len(B)
    s.close()
    d.ctl("resume")
    recs = d.wait_records(len(A) + len(B) + (2 if "--cue" in extra else 0))
    d.close()
    return [(r.get("session"), r["source"]) for r in recs if not r.get("stopped")], waiting


# ---- arrival (the reference): all of A, then B ----------------------------------------------------
seq, waiting = run("arrival", [])
src = [t for _, t in seq]
check(waiting > 0, "some of A waited in the daemon: %d" % waiting)
check(src == A + B, "arrival order: %r" % src)

# ---- newest + cue -------------------------------------------------------------------------------------
seq, waiting = run("newest", ["--order", "newest", "--cue"])
src = [t for _, t in seq]
spoken = [t for t in src if t != CUE]
check(sorted(spoken) == sorted(A + B) and len(spoken) == len(A) + len(B), "each sentence once: %r" % spoken)
check([t for t in spoken if t in A] == A and [t for t in spoken if t in B] == B, "order within a session")
if all(t in spoken for t in B):
    first_b = spoken.index(B[0])
    a_after = [t for t in spoken[first_b:] if t in A]
    # B came while `waiting` of A's sentences were still in the daemon's list: those follow B.
    check(spoken[first_b:first_b + len(B)] == B, "B spoken as one block: %r" % spoken)
    check(len(a_after) >= waiting > 0, "B spoken before the %d of A still waiting; %d of A after B: %r"
          % (waiting, len(a_after), spoken))
# The cue: exactly at each change of session, never within one.
changes, cues_ok = 0, True
prev = None
for i, (sess, t) in enumerate(seq):
    if t == CUE:
        nxt = seq[i + 1][0] if i + 1 < len(seq) else None
        cues_ok &= prev is not None and nxt is not None and nxt != prev
        continue
    if prev is not None and sess != prev:
        changes += 1
        cues_ok &= i > 0 and seq[i - 1][1] == CUE
    prev = sess
check(changes == 2, "two changes of session (A -> B -> A): %d" % changes)
check(cues_ok and src.count(CUE) == changes, "a cue at each change and nowhere else: %r" % src)

sys.exit(check.finish())
