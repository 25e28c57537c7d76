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
    # The daemon hands the pipeline one sentence ahead of the one playing:
    # B follows those two (the pipeline took ~40 of A's before, B came 41st)
    check(first_b <= 2, "B right after the 2 of A in the pipeline: %d of A before it" % first_b)
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

# ---- --order session: two replies streaming at once are not interleaved; a notification goes first ----
# A's first sentences fill the paused pipeline (2 taken) and one waits; then
# B's and A's batches alternate. Arrival order would say A3 B1 A4 B2 ...; by
# session, A keeps the speaker while it has sentences waiting, then B. C's
# permission prompt, queued in the middle, is said first of what waits (after
# the 2 in the pipeline), and A goes on after it. (The speaker switches when
# its session has nothing waiting at the moment it takes: a session whose
# next sentence has not come yet gives way.)
d = Daemon(BIN, VOICE, tmp, "session", extra=["--gap-ms", "0", "--order", "session"], pace=False)
s = d.conn()
d.ctl("pause")
SA = ["Alpha part %d is being said." % i for i in range(1, 6)]
SB = ["Bravo part %d is being said." % i for i in range(1, 6)]
PERM = "Claude needs your permission to use Bash."
d.hook(prompt("sess-A"), s)
d.hook(prompt("sess-B"), s)
for i in range(3):
    d.hook(md("sess-A", "msg-A", i, SA[i] + "\n", False), s)
wait_for(lambda: d.status()["pending"] == 1, "the pipeline full (2 taken), A3 waiting")
for i in range(len(SB)):
    d.hook(md("sess-B", "msg-B", i, SB[i] + "\n", i == len(SB) - 1), s)
    if i == 1:
        d.hook({"session_id": "sess-C", "hook_event_name": "Notification", "message": PERM,
                "notification_type": "permission_prompt", "transcript_path": "/nonexistent", "cwd": "/tmp"}, s)
    if i + 3 < len(SA):
        d.hook(md("sess-A", "msg-A", i + 3, SA[i + 3] + "\n", i + 3 == len(SA) - 1), s)
s.close()
d.ctl("resume")
recs = d.wait_records(len(SA) + len(SB) + 1)
d.close()
said = [r["source"] for r in recs if not r.get("stopped")]
check(said == SA[:2] + [PERM] + SA[2:] + SB, "--order session: A whole, the prompt first of what waited, "
      "then B: %r" % said)

# ---- ctl speed reaches the queued sentences ----------------------------------------------------------
# A reply queued (paused), then `ctl speed 2`: all but the 2 sentences already
# in the pipeline are made at the new speed (the pipeline had synthesized the
# whole backlog, and none of it changed).
d = Daemon(BIN, VOICE, tmp, "speed", extra=["--gap-ms", "0"], pace=False)
s = d.conn()
d.ctl("pause")
d.hook(prompt("sess-S"), s)
S = ["Sierra sentence number %d is here." % i for i in range(10, 20)]
for i, t in enumerate(S):
    d.hook(md("sess-S", "msg-S", i, t + "\n", i == len(S) - 1), s)
s.close()
wait_for(lambda: d.status()["pending"] == len(S) - 2, "the reply queued behind the 2 in the pipeline")
# both of those made (at speed 1) before the change: their audio waits (~3.6 s each)
wait_for(lambda: d.status()["lag"] >= 5.0, "the 2 sentences in the pipeline synthesized")
d.ctl("speed", "2")
d.ctl("resume")
recs = [r for r in d.wait_records(len(S)) if not r.get("stopped")]
d.close()
ms = [r["audio_ms"] for r in recs]
check(len(ms) == len(S) and max(ms[2:]) < 0.7 * min(ms[:2]),
      "speed 2 from the third sentence on: audio ms %r" % [round(x) for x in ms])

# ---- --max-lag skips an old backlog, never another session's notification ------------------------------
# A's reply waits (paused) until it is older than the limit; B's permission
# prompt comes in the middle of it, so that it too is older than the limit
# with newer sentences behind it when playback resumes. The pipeline's own
# lag rule skipped B's prompt with A's backlog ("skipped 15 older
# sentences"); the daemon applies it to its queue now, and notices are never
# skipped.
import time  # noqa: E402
d = Daemon(BIN, VOICE, tmp, "lag", extra=["--gap-ms", "0", "--max-lag", "1"], pace=False)
s = d.conn()
d.ctl("pause")
d.hook(prompt("sess-L"), s)
L = ["Lima sentence number %d is here." % i for i in range(10, 22)]
NOTE = "Claude needs your permission to use Bash."
for i, t in enumerate(L):
    if i == 6:
        d.hook({"session_id": "sess-N", "hook_event_name": "Notification", "message": NOTE,
                "notification_type": "permission_prompt", "transcript_path": "/nonexistent", "cwd": "/tmp"}, s)
    d.hook(md("sess-L", "msg-L", i, t + "\n", i == len(L) - 1), s)
wait_for(lambda: d.status()["pending"] == len(L) + 1 - 2, "the reply and the prompt queued")
time.sleep(1.5)   # older than --max-lag now, each of them
s.close()
d.ctl("resume")
recs = d.wait_spoken(L[-1])
d.close()
said = [r["source"] for r in recs if not r.get("stopped") and not r.get("skipped")]
check(NOTE in said, "the other session's permission prompt is said: %r" % said)
check(any(t in ("Skipping ahead.", "少し先に進みます。") for t in said) and len([t for t in said if t in L]) < len(L),
      "the old backlog skipped, announced: %r" % said)

# ---- replay: the cue is no sentence; a sentence cut by stop is kept; muted speech stays unheard ---------
d = Daemon(BIN, VOICE, tmp, "replay", extra=["--cue", "--gap-ms", "0"])   # paced: a stop lands mid-sentence
d.hook(md("sess-A", "mA", 0, "Alpha said first.\n", True))
d.wait_spoken("Alpha said first.")
d.hook(md("sess-B", "mB", 0, "Bravo said second.\n", True))
d.wait_spoken("Bravo said second.")
n0 = len(d.records())
d.ctl("replay", "2")
rep = d.wait_records(n0 + 2)[n0:]
check([r["source"] for r in rep] == ["Alpha said first.", "Bravo said second."] and all(r.get("replay") for r in rep),
      "replay 2 says the two sentences, not the cue: %r" % [r["source"] for r in rep])
LONGB = "Bravo is a long sentence that the user cuts before it ends, then wants to hear again."
d.hook(md("sess-B", "mB2", 0, LONGB + "\n", True))
wait_for(lambda: d.status()["lag"] > 0 and d.status()["queue"] == 1, "the long sentence playing")
time.sleep(0.8)
d.ctl("stop")
# The player writes the cut sentence's record after "stop" is answered: count
# from after it, or that record would be taken for the replay's (a CI flake).
wait_for(lambda: any(r.get("source") == LONGB and r.get("stopped") for r in d.records()), "the cut sentence's record")
n1 = len(d.records())
d.ctl("replay")
rep = d.wait_records(n1 + 1)[n1:]
check([r["source"] for r in rep] == [LONGB], "replay after a stop says the sentence cut: %r" % [r["source"] for r in rep])
d.ctl("mute", "sess-B")   # the last two sentences are B's (the cut one and its replay)
n2 = len(d.records())
d.ctl("replay", "2")
rep = [r for r in d.wait_records(n2 + 2)[n2:]]
heard = [r["source"] for r in rep if not r.get("stopped")]
check(len(rep) == 2 and not heard, "a muted session's sentences are not replayed: %r" % [r["source"] for r in rep])
d.ctl("mute")
r, _ = d.ctl("replay")
check("every session is muted" in r.stdout, "replay under mute-all: %s" % r.stdout)
d.close()

sys.exit(check.finish())
