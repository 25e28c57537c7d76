#!/usr/bin/env python3
"""test_daemon_spool_late.py STREAM_TTS SOURCE_DIR SHARED_DIR - a hook request
spooled while the daemon runs (the hook could not deliver it within its
budget) is replayed up to 0.5 s later, after requests that came straight in:
 - a UserPromptSubmit spooled before the reply it started, replayed while
   that reply is spoken, is stale: the reply is neither cut nor said twice
   (its Stop finds it), and the log says why;
 - the same prompt replayed before its reply came is still a barge-in: the
   previous reply's speech stops."""
import json, os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import Checks, Daemon, md, read, scratch, stop, voice_or_skip, wait_for  # noqa: E402

BIN, SRC, SHARED = sys.argv[1:4]
VOICE = voice_or_skip(SHARED)
check = Checks()
tmp = scratch("stts-daemon-spool-late-")


def prompt(session):
    return {"session_id": session, "transcript_path": "/nonexistent", "cwd": "/tmp",
            "hook_event_name": "UserPromptSubmit", "prompt": "go on"}


def spool(d, payload, ns):
    """Writes a request as `stream-tts hook` spools it, named by the time it was spooled."""
    sp = os.path.join(d.dir, "spool")
    os.makedirs(sp, mode=0o700, exist_ok=True)
    name = "%020d-%d.json" % (ns, os.getpid())
    t = os.path.join(sp, "." + name[:-5] + ".tmp")
    with open(t, "w") as f:
        f.write(json.dumps({"v": 1, "op": "hook", "payload": payload}) + "\n")
    os.rename(t, os.path.join(sp, name))
    return name


def drained(d, name):
    return "spool %s:" % name in read(d.err)


d = Daemon(BIN, VOICE, tmp, "late", extra=["--gap-ms", "0"])

# ---- 1. the prompt's hook spooled at T; its reply came straight in after T -----------------------
REPLY = ["The reply to the prompt starts here.", "It goes on for a second sentence.",
         "And it ends with a third one."]
t_prompt = time.time_ns()          # the UserPromptSubmit hook spools now ...
s = d.conn()
for i, t in enumerate(REPLY):      # ... then Claude answers, and these batches reach the daemon at once
    d.hook(md("S", "m2", i, t + "\n", i == len(REPLY) - 1, turn="turn-2"), s)
s.close()
# Playback of the reply has begun (the WAV is paced in real time): the spool
# file appears only now, so it is replayed after the batches whatever the timing.
wait_for(lambda: os.path.getsize(d.wav) > 44 + 48000, "the reply to start playing")
name = spool(d, prompt("S"), t_prompt)
wait_for(lambda: drained(d, name), "the spooled prompt replayed")
r = d.hook(stop("S", "\n".join(REPLY)))
# The Stop finds the reply it ends. Had the prompt been taken (the turn
# forgotten), it would find nothing and wait its grace, then say the whole
# reply again: any other event of the session ends that wait at once (a
# hook this daemon ignores), so by its reply the reply is queued again if it
# ever will be, and wait_records sees it. (A fixed 0.6 s sleep stood here,
# for the grace to pass; under load it may not have.)
check(r["done"] == "already spoken", "the Stop finds the reply spoken: %r" % r)
d.hook({"session_id": "S", "transcript_path": "/nonexistent", "cwd": "/tmp", "hook_event_name": "PreToolUse",
        "tool_name": "Bash", "tool_input": {"command": "true"}})
recs = d.wait_records(len(REPLY))
said = [r["source"] for r in recs if r.get("session") == "S"]
check(said == REPLY, "the reply spoken once, in order: %r" % said)
check(not any(r.get("stopped") for r in recs), "the reply not cut: %r" % [(r["source"], r.get("stopped")) for r in recs])
log = read(d.err)
check("stale" in log, "the log says the replayed prompt was stale: %s" % log[-800:])
n = len(recs)

# ---- 2. a prompt spooled and replayed before its reply: still a barge-in ---------------------------
LONG = ["This older reply is long enough to be talked over by the next prompt.",
        "Its second sentence should never be heard.", "Nor should its third one."]
d.hook(prompt("P"))
d.hook(md("P", "m1", 0, "\n".join(LONG) + "\n", True, turn="turn-1"))
size0 = os.path.getsize(d.wav)
wait_for(lambda: os.path.getsize(d.wav) > size0 + 48000, "the older reply to start playing")
name = spool(d, prompt("P"), time.time_ns())
wait_for(lambda: drained(d, name), "the second spooled prompt replayed")
wait_for(lambda: d.status()["queue"] == 0 and d.status()["pending"] == 0, "the older reply stopped")
# What was heard of the older reply is in the records once a sentence queued
# after it has been spoken (one queue, played in arrival order): had the
# prompt not stopped it, its last sentences come before this one. (A fixed
# 0.3 s sleep stood here, for their records to be written.)
SENTINEL = "Done."
d.hook(md("Q", "q1", 0, SENTINEL + "\n", True))
recs = d.wait_spoken(SENTINEL, "a later session's sentence spoken")[n:]
heard = [r["source"] for r in recs if not r.get("stopped")]
check(heard[-1:] == [SENTINEL], "the later sentence heard last: %r" % heard)
check(LONG[2] not in heard and LONG[1] not in heard, "the prompt replayed in time still stops the older reply: %r"
      % [(r["source"], r.get("stopped")) for r in recs])

check(d.close() == 0, "serve exit status")
sys.exit(check.finish())
