#!/usr/bin/env python3
"""test_daemon_pipe.py STREAM_TTS SOURCE_DIR SHARED_DIR - the pipe mode
through a running daemon (--daemon auto|always|never): the sample session
piped to `stream-tts` is spoken by the daemon (every speech sentence once,
in order, under a pipe-* session); --daemon always without a daemon is a
clear error; the daemon killed mid-stream: the pipe client finishes the
input in-process (its own --output/--metrics)."""
import json, os, signal, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import Checks, Daemon, md, read, scratch, voice_or_skip, wait_for  # noqa: E402

BIN, SRC, SHARED = sys.argv[1:4]
VOICE = voice_or_skip(SHARED)
SAMPLE = os.path.join(SRC, "samples/session.jsonl")
check = Checks()


tmp = scratch("stts-pipe-")
env = dict(os.environ, HOME=tmp, XDG_CONFIG_HOME="", XDG_DATA_HOME="", STREAM_TTS_MODEL="")
dry = [json.loads(l) for l in subprocess.run([BIN, "--dry-run", "--json", "--input", SAMPLE], capture_output=True,
                                             text=True, env=env, check=True).stdout.splitlines()]
speech = [r["text"] for r in dry if r["kind"] == "speech"]

# --daemon always, none listening.
env["STREAM_TTS_SOCKET"] = os.path.join(tmp, "none", "socket")
r = subprocess.run([BIN, "--daemon", "always", "--input", SAMPLE, "--voice", VOICE], capture_output=True, text=True,
                   env=env, timeout=120)
check(r.returncode == 1 and "no stream-tts daemon is listening" in r.stderr, "always without daemon: %d %s" % (r.returncode, r.stderr))

# auto, with a daemon: the daemon speaks it.
d = Daemon(BIN, VOICE, tmp, "pd", extra=["--gap-ms", "0"], pace=False)   # as fast as it can
env["STREAM_TTS_SOCKET"] = d.sock
r = subprocess.run([BIN, "--input", SAMPLE, "--voice", VOICE], capture_output=True, text=True, env=env, timeout=600)
check(r.returncode == 0 and "speaking through the daemon" in r.stderr, "pipe via daemon: %d %s" % (r.returncode, r.stderr))
recs = d.records()
got = [x["source"] for x in recs if x["kind"] == "speech"]
check(got == speech, "daemon spoke %d of %d speech sentences, in order: %r" % (len(got), len(speech), got[:3]))
check(len(recs) == len(dry), "%d records for %d sentences" % (len(recs), len(dry)))
check(recs and all(x["session"].startswith("pipe-") for x in recs), "pipe session ids")
# never: in-process even with a daemon listening (its own output). The
# sample's first 60 lines (5 sentences): where it speaks is the point, the
# whole sample was spoken above.
short = os.path.join(tmp, "short.jsonl")
with open(short, "wb") as f:
    f.writelines(open(SAMPLE, "rb").readlines()[:60])
r = subprocess.run([BIN, "--daemon", "never", "--input", short, "--voice", VOICE, "--output",
                    os.path.join(tmp, "never.wav")], capture_output=True, text=True, env=env, timeout=600)
check(r.returncode == 0 and "through the daemon" not in r.stderr and os.path.getsize(os.path.join(tmp, "never.wav")) > 44,
      "--daemon never: %d %s" % (r.returncode, r.stderr[-300:]))
check(d.close() == 0, "daemon exit")

# The daemon killed mid-stream: the client goes on in-process. (Not paced:
# the kill comes once the daemon has spoken a sentence, whatever its pace.)
d = Daemon(BIN, VOICE, tmp, "pk", extra=["--gap-ms", "0"], pace=False)
env["STREAM_TTS_SOCKET"] = d.sock
lines = open(SAMPLE, "rb").read().splitlines(keepends=True)


def dry_speech(data):
    out = subprocess.run([BIN, "--dry-run", "--json"], input=data, capture_output=True, env=env, check=True).stdout
    return [r["text"] for r in map(json.loads, out.decode().splitlines()) if r["kind"] == "speech"]


# The line the client sends first after the kill is the one the daemon does
# not take: it must be spoken in-process (it was lost). Split where that
# line has speech of its own.
half = len(lines) // 2
while half < len(lines) - 1 and not dry_speech(lines[half]):
    half += 1
fb_wav, fb_m = os.path.join(tmp, "fb.wav"), os.path.join(tmp, "fb.jsonl")
c = subprocess.Popen([BIN, "--daemon", "always", "--voice", VOICE, "--output", fb_wav, "--metrics", fb_m],
                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "c.err"), "w"),
                     env=env)
c.stdin.write(b"".join(lines[:half]))
c.stdin.flush()
wait_for(lambda: len(d.records()) >= 1, "the daemon to speak the first half")
d.p.send_signal(signal.SIGKILL)
d.p.wait()
c.stdin.write(b"".join(lines[half:]))
c.stdin.close()
rc = c.wait(600)
err = read(os.path.join(tmp, "c.err"))
check(rc == 0 and "speaking in-process from here on" in err, "fallback: %d %s" % (rc, err[-500:]))
fb = [json.loads(l) for l in read(fb_m).splitlines()]
fb_speech = [x["source"] for x in fb if x["kind"] == "speech"]
# From the next line on: the first sentence may be the rest of one the daemon
# had begun; the others are the session's last sentences, in order.
tail = fb_speech[1:]
check(fb_speech and fb_speech[-1] == speech[-1] and tail == speech[len(speech) - len(tail):],
      "in-process part is the tail of the session: %r" % fb_speech[:3])
# Exactly the lines from the one the daemon did not take: its sentences first.
want = dry_speech(b"".join(lines[half:]))
check(fb_speech == want, "in-process from the line the daemon did not take: %r ... against %r ..." %
      (fb_speech[:2], want[:2]))
check("from the line it did not take" in err, "the fallback says it replays the line: %s" % err[-300:])

# A pipe client killed mid-stream (no "end"): its session ends when its
# connection closes. It once stayed forever, and with it the claim on Claude
# Code's session: resumed interactively, that session's hooks were never
# spoken again ("ignored (a pipe client speaks this session)").
d = Daemon(BIN, VOICE, tmp, "pg", pace=False)
s = d.conn()
for l in [{"type": "system", "subtype": "init", "session_id": "C9"},
          {"type": "assistant", "message": {"id": "msg_1", "role": "assistant", "content": [
              {"type": "text", "text": "Pipe words here."}]}, "parent_tool_use_id": None, "session_id": "C9"}]:
    r = d.req({"v": 1, "op": "line", "session": "pipe-gone", "line": json.dumps(l)}, s)
    check(r and r["ok"], "line: %r" % r)
s.close()
wait_for(lambda: "pipe-gone" not in d.status()["sessions"], "the pipe session to end with its connection", 20)
wait_for(lambda: "left without" in read(d.err), "the log line", 20)
d.hook({"session_id": "C9", "hook_event_name": "SessionStart", "source": "resume"})
r = d.hook(md("C9", "m1", 0, "Interactive reply.", True, "t2"))
check(r["done"] == "spoken", "resumed session's MessageDisplay after a killed pipe: %r" % r)
check(d.close() == 0, "daemon exit")

# Text and markdown input is not sent to the daemon (it reads stream-json
# lines: such input was never said, and the run exited 0): --daemon always
# refuses it clearly, auto speaks it in-process.
d = Daemon(BIN, VOICE, tmp, "pt", pace=False)
env["STREAM_TTS_SOCKET"] = d.sock
r = subprocess.run([BIN, "--daemon", "always", "--input-format", "text"], input="Plain text here.\n",
                   capture_output=True, text=True, env=env, timeout=120)
check(r.returncode == 2 and "stream-json input only" in r.stderr, "always + text: %d %s" % (r.returncode, r.stderr))
r = subprocess.run([BIN, "--input-format", "markdown", "--voice", VOICE, "--output", os.path.join(tmp, "md.wav")],
                   input="Some **markdown** here.\n", capture_output=True, text=True, env=env, timeout=120)
check(r.returncode == 0 and "through the daemon" not in r.stderr and os.path.getsize(os.path.join(tmp, "md.wav")) > 44,
      "markdown in-process: %d %s" % (r.returncode, r.stderr[-300:]))
check(not d.records(), "nothing sent to the daemon: %r" % d.records())
check(d.close() == 0, "daemon exit")

# A pipe client's end waits for its own speech only: another session's long
# reply (paced, ~20 s) after it held `claude -p ... | stream-tts` until it
# was over.
d = Daemon(BIN, VOICE, tmp, "pw")   # paced: speech takes its real time
env["STREAM_TTS_SOCKET"] = d.sock
one = os.path.join(tmp, "one.jsonl")
with open(one, "w") as f:
    for l in [{"type": "system", "subtype": "init", "session_id": "P1"},
              {"type": "assistant", "message": {"id": "m1", "role": "assistant", "content": [
                  {"type": "text", "text": "Pipe reply is short."}]}, "session_id": "P1"},
              {"type": "result", "subtype": "success", "result": "Pipe reply is short.", "session_id": "P1"}]:
        f.write(json.dumps(l) + "\n")
import time  # noqa: E402
t0 = time.monotonic()
pc = subprocess.Popen([BIN, "--input", one, "--voice", VOICE], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                      env=env, text=True)
wait_for(lambda: d.status()["queue"] > 0 or d.records(), "the pipe's sentence queued", 60)
LONG = " ".join("Bravo sentence number %d is said here." % i for i in range(1, 11))
d.hook(md("B", "mB", 0, LONG, True))
out = pc.communicate(timeout=120)[1]
took = time.monotonic() - t0
still = d.status()["queue"]   # B's paced reply (~20 s) is still being spoken
recs = d.wait_records(11)
check(pc.returncode == 0 and still >= 3 and any(x["source"] == "Pipe reply is short." for x in recs),
      "the pipe client left after its own speech (%.1f s) while %d of the other session's sentences waited (%s)"
      % (took, still, out[-200:]))
check(d.close() == 0, "daemon exit")
sys.exit(check.finish())
