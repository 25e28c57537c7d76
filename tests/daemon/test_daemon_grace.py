#!/usr/bin/env python3
"""test_daemon_grace.py STREAM_TTS SOURCE_DIR SHARED_DIR - a Stop that comes
before its message's MessageDisplay batches (their order is not documented;
hooks are separate processes) must not speak the message twice: the daemon
holds such a Stop for the grace (serve --stop-grace, default 250 ms) and
reconciles it with the batches that came meanwhile. With --stop-grace 0 the
Stop speaks at once, and its batches, later, are found in its text and not
spoken again (they once were: the message twice). A Stop whose batches never
come is spoken once, after the grace."""
import os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import Checks, Daemon, md, scratch, stop, voice_or_skip  # noqa: E402

BIN, SRC, SHARED = sys.argv[1:4]
VOICE = voice_or_skip(SHARED)
check = Checks()


T = ["The stop hook overtook this message.", "Its batches arrived a moment later."]
U = ["This answer only reached the stop hook."]
Z = "This last answer closes the test."          # the anchor of "nothing else spoken" (below)
tmp = scratch("stts-daemon-grace-")


def run(name, grace):
    # A grace long enough that a loaded machine delivers the late batches within it.
    d = Daemon(BIN, VOICE, tmp, name, extra=["--gap-ms", "0", "--stop-grace", str(grace)], pace=False)
    s = d.conn()
    r1 = d.hook(stop("g", " ".join(T)), s)           # Stop first ...
    for i, t in enumerate(T):                        # ... then the batches of the same message
        d.hook(md("g", "msg-g", i, t + "\n", i == len(T) - 1), s)
    r2 = d.hook(stop("h", U[0]), s)                  # a Stop whose batches never come
    r3 = d.hook(stop("g", " ".join(T), active=True), s)   # the continuation: nothing again
    # Nothing more may come. What could come late is a Stop's words said at
    # its grace's end (the daemon's only timer here), or the continuation's:
    # so the anchor is one more Stop, of a session of its own, whose batches
    # never come. It waits the same grace as every Stop above and comes
    # after them, so its words are queued no earlier than anything they say
    # at theirs (in the same pass of the daemon's loop at the latest): once
    # it is spoken and nothing is queued, whatever was said wrongly is in the
    # records. (A fixed 0.5 s sleep stood here, after the first three were
    # spoken and before the continuation, whose speech it never looked at.)
    r4 = d.hook(stop("z", Z), s)
    recs = d.wait_spoken(Z, "the last Stop spoken")
    s.close()
    d.close()
    return [r["source"] for r in recs if not r.get("stopped")], r1, r2, r3, r4


src, r1, r2, r3, r4 = run("nograce", 0)
check(src.count(T[0]) == 1 and src.count(T[1]) == 1, "no grace: batches after the Stop not said again: %r" % src)
check(src == [T[0], T[1], U[0], Z], "no grace: nothing else spoken: %r" % src)
check(r3["done"] == "already spoken", "no grace: continuation: %r" % r3)
src, r1, r2, r3, r4 = run("grace", 2000)
check([t for t in src if t in T] == T, "with the grace each sentence once, in order: %r" % src)
check(src.count(U[0]) == 1, "a Stop without batches spoken once after the grace: %r" % src)
check(r1["done"].startswith("spoken from last_assistant_message") and "grace" in r1["done"], "Stop reply: %r" % r1)
check(r3["done"] == "already spoken", "continuation: %r" % r3)
check(r4["done"].startswith("spoken from last_assistant_message") and "grace" in r4["done"], "last Stop: %r" % r4)
check(sorted(src) == sorted(T + U + [Z]), "nothing else spoken: %r" % src)

sys.exit(check.finish())
