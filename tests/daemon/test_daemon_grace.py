#!/usr/bin/env python3
"""test_daemon_grace.py STREAM_TTS SOURCE_DIR SHARED_DIR - a Stop that comes
before its message's MessageDisplay batches (their order is not documented;
hooks are separate processes) must not speak the message twice: the daemon
holds such a Stop for the grace (serve --stop-grace, default 250 ms) and
reconciles it with the batches that came meanwhile. With --stop-grace 0 the
Stop speaks at once, and its batches, later, are found in its text and not
spoken again (they once were: the message twice). A Stop whose batches never
come is spoken once, after the grace."""
import os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import Checks, Daemon, md, scratch, stop, voice_or_skip, wait_for  # noqa: E402

BIN, SRC, SHARED = sys.argv[1:4]
VOICE = voice_or_skip(SHARED)
check = Checks()


T = ["The stop hook overtook this message.", "Its batches arrived a moment later."]
U = ["This answer only reached the stop hook."]
tmp = scratch("stts-daemon-grace-")


def run(name, grace):
    # A grace long enough that a loaded machine delivers the late batches within it.
    d = Daemon(BIN, VOICE, tmp, name, extra=["--gap-ms", "0", "--stop-grace", str(grace)], pace=False)
    s = d.conn()
    r1 = d.hook(stop("g", " ".join(T)), s)           # Stop first ...
    for i, t in enumerate(T):                        # ... then the batches of the same message
        d.hook(md("g", "msg-g", i, t + "\n", i == len(T) - 1), s)
    r2 = d.hook(stop("h", U[0]), s)                  # a Stop whose batches never come
    t0 = time.monotonic()
    n = len(T) + len(U)
    recs = d.wait_records(n)
    waited = time.monotonic() - t0
    time.sleep(0.5)                                  # nothing more may come
    recs = d.records()
    r3 = d.hook(stop("g", " ".join(T), active=True), s)   # the continuation: nothing again
    s.close()
    d.close()
    return [r["source"] for r in recs if not r.get("stopped")], r1, r2, r3, waited


src, r1, r2, r3, _ = run("nograce", 0)
check(src.count(T[0]) == 1 and src.count(T[1]) == 1, "no grace: batches after the Stop not said again: %r" % src)
src, r1, r2, r3, waited = run("grace", 2000)
check([t for t in src if t in T] == T, "with the grace each sentence once, in order: %r" % src)
check(src.count(U[0]) == 1, "a Stop without batches spoken once after the grace: %r" % src)
check(r1["done"].startswith("spoken from last_assistant_message") and "grace" in r1["done"], "Stop reply: %r" % r1)
check(r3["done"] == "already spoken", "continuation: %r" % r3)
check(len(src) == len(T) + len(U), "nothing else spoken: %r" % src)

sys.exit(check.finish())
