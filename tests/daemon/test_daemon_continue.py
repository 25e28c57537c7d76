#!/usr/bin/env python3
"""test_daemon_continue.py STREAM_TTS SOURCE_DIR SHARED_DIR - `serve
--on-prompt continue`: a prompt stops nothing, and a turn's batch that comes
after its Stop and after the next prompt (hooks are separate processes) is
not said again. The daemon once forgot the turn at that prompt without
closing it: the late batch was taken for a new message and said a second
time, and the next turn's words could follow it twice. Also a Stop that came
before every batch of its message (said whole) with the batches after the
prompt. And a copy of a turn's Stop that comes after the next prompt and the
next turn's first batch, which begins as the old reply did: it was taken for
the new turn's Stop, said the old reply's rest in the middle of the new turn
and closed the new message, whose own rest was lost. Each sentence must be
spoken exactly once, in order. Also a prompt during a tool call (before the
turn's Stop) and a late batch of that turn after the next turn's first batch:
it made the old turn current again and closed the new one (its rest ignored,
said again by its Stop); a copy of an old batch is not said, a message never
seen is said once. And a copy of the prompt (the same prompt_id) after the
reply's batches: it forgot the turn, and the reply's Stop said it again.
And a prompt queued while a message streams, then the next turn's first
batch before that message's end: the words the old turn's text stage held
(a line ending no sentence yet) were dropped there, and its final batch,
coming after, ignored; both are said, once, in order."""
import os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import Checks, Daemon, md, scratch, stop, voice_or_skip, wait_for  # noqa: E402

BIN, SRC, SHARED = sys.argv[1:4]
VOICE = voice_or_skip(SHARED)
check = Checks()
tmp = scratch("stts-daemon-continue-")


def prompt(session, pid):
    return {"session_id": session, "transcript_path": "/nonexistent", "cwd": "/tmp",
            "hook_event_name": "UserPromptSubmit", "prompt_id": pid, "prompt": "go on"}


def with_prompt(payload, pid):
    payload = dict(payload)
    payload["prompt_id"] = pid
    return payload


A = ["The first turn begins with this sentence.", "Its last sentence reached the stop hook first."]
B = ["The second turn is spoken once.", "And so is its end."]
C = ["A stop hook came before every batch.", "Its batches came after the next prompt."]
D = ["Sure, I will look at the parser first.", "The parser was fixed and the tests pass."]
E = ["Sure, I will look at the parser first.", "The tests ran again and all of them passed."]
F = ["The tool call is running now.", "It is still the first turn."]
F2 = "A message of the first turn that came late."
G = ["The next turn starts while the first one ends.", "Its end is said once too."]
H = ["A prompt hook registered twice sends this turn's prompt twice.", "The copy must not cut or reset it."]
Q = ["The queued prompt came while this reply streamed.", "The fix is to change the parser",
     "The next turn begins before the old message ends.", "The old message ends after all.",
     "And the next turn ends as well."]
Z = "This last answer closes the test."   # the anchor: spoken after everything above

d = Daemon(BIN, VOICE, tmp, "continue", extra=["--gap-ms", "0", "--stop-grace", "0", "--on-prompt", "continue"],
           pace=False)
s = d.conn()
# Session a: the last batch of turn 1 after its Stop and after the next prompt.
d.hook(prompt("a", "p1"), s)
d.hook(with_prompt(md("a", "m1", 0, A[0] + "\n", False, turn="t1"), "p1"), s)
d.hook(with_prompt(stop("a", A[0] + "\n" + A[1]), "p1"), s)          # says A[1], the rest
r = d.hook(prompt("a", "p2"), s)
check(r["done"] == "new turn", "a prompt after the Stop, --on-prompt continue: %r" % r)
late = d.hook(with_prompt(md("a", "m1", 1, A[1], True, turn="t1"), "p1"), s)
d.hook(with_prompt(md("a", "m2", 0, B[0] + "\n", False, turn="t2"), "p2"), s)
d.hook(with_prompt(md("a", "m2", 1, B[1], True, turn="t2"), "p2"), s)
d.hook(with_prompt(stop("a", "\n".join(B)), "p2"), s)
# Session b: the Stop before its message's batches (said whole), then the
# prompt, then the batches (made before it: the first prompt's id).
d.hook(prompt("b", "q1"), s)
d.hook(with_prompt(stop("b", "\n".join(C)), "q1"), s)
d.hook(prompt("b", "q2"), s)
late_b = [d.hook(with_prompt(md("b", "n1", i, t + ("" if i else "\n"), i == 1, turn="u1"), "q1"), s)
          for i, t in enumerate(C)]
# Session c: a copy of turn 1's Stop after the next prompt and after turn 2's
# first batch (the same first sentence as turn 1's reply).
d.hook(prompt("c", "r1"), s)
d.hook(with_prompt(md("c", "k1", 0, D[0] + "\n", False, turn="v1"), "r1"), s)
d.hook(with_prompt(md("c", "k1", 1, D[1], True, turn="v1"), "r1"), s)
d.hook(with_prompt(stop("c", "\n".join(D)), "r1"), s)
d.hook(prompt("c", "r2"), s)
d.hook(with_prompt(md("c", "k2", 0, E[0] + "\n", False, turn="v2"), "r2"), s)
stale = d.hook(with_prompt(stop("c", "\n".join(D)), "r1"), s)
check(stale["done"] == "ignored (a Stop of the turn before the last prompt)", "the old turn's Stop again: %r" % stale)
d.hook(with_prompt(md("c", "k2", 1, E[1], True, turn="v2"), "r2"), s)
d.hook(with_prompt(stop("c", "\n".join(E)), "r2"), s)
# Session e: a prompt before turn 1's Stop (during a tool call), turn 2's
# first batch, then late batches of turn 1: a copy of one said, a message
# never seen.
d.hook(prompt("e", "s1"), s)
d.hook(with_prompt(md("e", "g1", 0, F[0] + "\n", False, turn="w1"), "s1"), s)
d.hook(with_prompt(md("e", "g1", 1, F[1], True, turn="w1"), "s1"), s)
d.hook(prompt("e", "s2"), s)
d.hook(with_prompt(md("e", "g2", 0, G[0] + "\n", False, turn="w2"), "s2"), s)
copy_e = d.hook(with_prompt(md("e", "g1", 1, F[1], True, turn="w1"), "s1"), s)
check(copy_e["done"] == "ignored (message already complete)", "a copy of turn 1's batch after turn 2 began: %r" % copy_e)
new_e = d.hook(with_prompt(md("e", "g1b", 0, F2, True, turn="w1"), "s1"), s)
d.hook(with_prompt(md("e", "g2", 1, G[1], True, turn="w2"), "s2"), s)
d.hook(with_prompt(stop("e", "\n".join(G)), "s2"), s)
# Session f: a copy of the prompt after its reply's batches, then the Stop.
d.hook(prompt("f", "x1"), s)
d.hook(with_prompt(md("f", "h1", 0, H[0] + "\n", False, turn="y1"), "x1"), s)
d.hook(with_prompt(md("f", "h1", 1, H[1], True, turn="y1"), "x1"), s)
copy_f = d.hook(prompt("f", "x1"), s)
check(copy_f["done"] == "duplicate (a copy of a prompt acted on)", "a copy of the prompt: %r" % copy_f)
d.hook(with_prompt(stop("f", "\n".join(H)), "x1"), s)
# Session q: a prompt queued while m1 streams (its second line ends no
# sentence), the next turn's first batch, then m1's final batch, late.
d.hook(prompt("q", "z1"), s)
d.hook(with_prompt(md("q", "q1", 0, Q[0] + "\n" + Q[1] + "\n", False, turn="zt1"), "z1"), s)
r = d.hook(prompt("q", "z2"), s)
check(r["done"] == "turn still running", "a prompt while a message streams: %r" % r)
d.hook(with_prompt(md("q", "q2", 0, Q[2] + "\n", False, turn="zt2"), "z2"), s)
late_q = d.hook(with_prompt(md("q", "q1", 1, Q[3], True, turn="zt1"), "z1"), s)
d.hook(with_prompt(md("q", "q2", 1, Q[4], True, turn="zt2"), "z2"), s)
d.hook(with_prompt(stop("q", Q[2] + "\n" + Q[4]), "z2"), s)
# The anchor: a Stop of a session of its own, spoken at once (no grace), so
# it is queued after every sentence the requests above made (the daemon
# answers a request once it has acted on it); a late batch held for a
# "missing" one (1 s) would still come before the next turn's batch, which
# releases it.
d.hook(stop("z", Z), s)
wait_for(lambda: any(x["source"] == Z for x in d.records()) and d.status()["queue"] == 0
         and d.status()["pending"] == 0, "the anchor spoken")
said = [x["source"] for x in d.records() if not x.get("stopped")]
check(said == A + B + C + D + E + F + [G[0], F2, G[1]] + H + Q + [Z],
      "each sentence once, in order: %r (late batches: %r, %r, %r; the old Stop: %r; turn 1's message never seen: %r)"
      % (said, late, late_b, late_q, stale, new_e))
check(not any(x.get("stopped") for x in d.records()), "nothing stopped: %r" % d.records())
s.close()
check(d.close() == 0, "serve exits 0 on SIGTERM")
sys.exit(check.finish())
