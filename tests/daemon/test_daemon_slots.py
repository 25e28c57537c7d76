#!/usr/bin/env python3
"""test_daemon_slots.py STREAM_TTS SOURCE_DIR SHARED_DIR - the user can
always reach the daemon:
 - with its 64 connections for clients that stay all held (64 pipe clients),
   `ctl` is answered at once from a reserve of one-request slots (it waited
   in the listen queue until a pipe ended, and gave up after 10 s); a hook
   is served there too; what would keep a reserve connection (ping, line,
   end) is refused, and a reserve connection is closed after its one request
   or 5 s after it was accepted, however it trickles its bytes."""
import json, os, socket, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import Checks, Daemon, md, read, recv_line, scratch, voice_or_skip, wait_for  # noqa: E402

BIN, SRC, SHARED = sys.argv[1:4]
VOICE = voice_or_skip(SHARED)
check = Checks()
tmp = scratch("stts-daemon-slots-")


def log(d):
    return read(d.err) + read(os.path.join(d.dir, "serve.log"))


def closed_after_reply(s):
    """The reply line, and whether the daemon then closed the connection."""
    buf = recv_line(s, tolerate_reset=True)
    rest = recv_line(s, tolerate_reset=True)
    return buf, rest == b""


# ---- 1. 64 pipe clients hold every slot that stays ------------------------------------------------
d = Daemon(BIN, VOICE, tmp, "slots", pace=False)
pipes = []
for k in range(64):
    c = d.conn()
    c.sendall(b'{"v":1,"op":"ping"}\n')
    check(json.loads(recv_line(c))["ok"], "pipe %d's ping" % k)
    pipes.append(c)
# ... each with a session (a pipe client's line), so they are what `stream-tts pipe` leaves open
for k, c in enumerate(pipes[:4]):
    line = json.dumps({"type": "system", "subtype": "init", "session_id": "pipe-%d" % k})
    c.sendall((json.dumps({"v": 1, "op": "line", "session": "p%d" % k, "line": line}) + "\n").encode())
    check(json.loads(recv_line(c))["ok"], "pipe %d's line" % k)

# ctl: answered from the reserve (it waited in the listen queue and gave up after 10 s)
r, ms = d.ctl("status")
check(r.returncode == 0 and "state ready" in r.stdout, "ctl status with 64 pipes open: %s %s" % (r.stdout, r.stderr))
print("ctl status with every slot that stays held: %.0f ms" % ms)
for cmd in (["pause"], ["mute", "p1"], ["unmute"], ["resume"], ["stop"]):
    r, _ = d.ctl(*cmd)
    check(r.returncode == 0, "ctl %s with 64 pipes open: %s %s" % (cmd, r.stdout, r.stderr))
check("64 connections open: new ones get one control or hook request each" in log(d), "said once in the log")

# a hook is served in the reserve, and its sentence said
s = d.conn()
s.sendall((json.dumps({"v": 1, "op": "hook", "payload": md("h", "mh", 0, "Heard past the pipes.\n", True)})
           + "\n").encode())
buf, gone = closed_after_reply(s)
s.close()
check(buf.endswith(b"\n") and json.loads(buf)["ok"] and json.loads(buf)["done"] == "spoken" and gone,
      "a hook in the reserve: served, then the connection closed: %r %r" % (buf, gone))
d.wait_spoken("Heard past the pipes.")

# what would keep a reserve connection is refused (a pipe client's ping: it speaks in-process at once)
for rq in ({"v": 1, "op": "ping"}, {"v": 1, "op": "line", "session": "x", "line": "{}"},
           {"v": 1, "op": "end", "session": "x", "wait": True}):
    s = d.conn()
    s.sendall((json.dumps(rq) + "\n").encode())
    buf, gone = closed_after_reply(s)
    s.close()
    rep = json.loads(buf) if buf.endswith(b"\n") else {}
    check(rep.get("ok") is False and "connections for clients that stay (pipes) are all in use" in rep.get("error", "")
          and gone, "%s refused in the reserve: %r %r" % (rq["op"], buf, gone))

# one request a reserve connection: the second is not read, and the connection is closed
s = d.conn()
s.sendall(b'{"v":1,"op":"status"}\n{"v":1,"op":"status"}\n')
buf, gone = closed_after_reply(s)
s.close()
check(json.loads(buf)["ok"] and gone, "one request, then closed: %r %r" % (buf, gone))

# a reserve connection cannot be kept by trickling bytes: closed 5 s after it was accepted (a byte
# every 0.3 s, never 5 s quiet, once kept a connection for good). The daemon may close it while a
# byte is on its way: then the reply can be lost to the reset, and the log says it.
said = read(d.err).count("nothing received for 5 s in the middle of a request")
t0 = time.monotonic()
s = d.conn()
got, reset = b"", False
while time.monotonic() - t0 < 30:
    try:
        s.sendall(b" ")
        s.settimeout(0.3)
        k = s.recv(4096)
        got += k
        if not k or got.endswith(b"\n"):
            break
    except socket.timeout:
        continue
    except OSError:
        reset = True
        break
took = time.monotonic() - t0
s.close()
s = d.conn()   # ... a request on a fresh connection, so the log line is surely written
s.sendall(b'{"v":1,"op":"status"}\n')
recv_line(s)
s.close()
check((b"nothing received for 5 s in the middle of a request" in got or reset) and 4 <= took < 30
      and read(d.err).count("nothing received for 5 s in the middle of a request") == said + 1,
      "a trickling reserve connection closed after %.1f s: %r (reset: %s)" % (took, got, reset))

# the pipes were left alone: they still make requests
for k, c in enumerate(pipes[:4]):
    c.sendall(b'{"v":1,"op":"ping"}\n')
    check(json.loads(recv_line(c))["ok"], "pipe %d still served" % k)
for c in pipes:
    c.close()
# and once the daemon has seen them go, a connection stays again
def stays():
    s = d.conn()
    try:
        for _ in range(2):
            s.sendall(b'{"v":1,"op":"ping"}\n')
            buf = recv_line(s)
            if not (buf.endswith(b"\n") and json.loads(buf)["ok"]):
                return False
        return True
    except OSError:   # refused in the reserve, and closed
        return False
    finally:
        s.close()


wait_for(stays, "a connection that stays, after the pipes left")
check(d.close() == 0, "serve exits cleanly")

sys.exit(check.finish())
