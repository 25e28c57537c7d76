#!/usr/bin/env python3
"""test_daemon_peercred.py STREAM_TTS SOURCE_DIR SHARED_DIR - another user
is refused: the socket folder is 0700 and the socket 0600, and even with
both opened up (as this test does on purpose) the daemon's SO_PEERCRED check
answers a client of another uid with an error and speaks nothing. Runs the
client as 'nobody' through setpriv, so it needs root (else: skip)."""
import os, shutil, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import Daemon, cleanup, md, scratch, voice_or_skip  # noqa: E402

BIN, SRC, SHARED = sys.argv[1:4]
if os.geteuid() != 0 or not shutil.which("setpriv"):
    print("SKIPPED: needs root and setpriv to run a client under another uid")
    sys.exit(77)
VOICE = voice_or_skip(SHARED)
fails = 0
tmp = scratch("stts-peercred-")
d = Daemon(BIN, VOICE, tmp, "pc")
mode_dir = os.stat(d.dir).st_mode & 0o777
mode_sock = os.stat(d.sock).st_mode & 0o777
if (mode_dir, mode_sock) != (0o700, 0o600):
    print("FAIL: socket folder %o, socket %o (want 700, 600)" % (mode_dir, mode_sock), file=sys.stderr)
    fails += 1
CLIENT = r'''
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("CONNECT", e.errno); sys.exit(0)
try:   # the daemon may answer and close before the request is sent
    s.sendall((json.dumps({"v":1,"op":"hook","payload":json.loads(sys.argv[2])}) + "\n").encode())
except OSError:
    pass
print("REPLY", s.makefile().readline().strip())
'''
payload = __import__("json").dumps(md("intruder", "mi", 0, "Another user must not be heard.\n", True))
run = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", CLIENT, d.sock, payload]
os.chmod(tmp, 0o755)
r = subprocess.run(run, capture_output=True, text=True, timeout=60)
if "CONNECT 13" not in r.stdout:   # EACCES: the 0700 folder keeps others out
    print("FAIL: another uid reached the socket through a 0700 folder: %r %r" % (r.stdout, r.stderr), file=sys.stderr)
    fails += 1
os.chmod(d.dir, 0o755)
os.chmod(d.sock, 0o666)
r = subprocess.run(run, capture_output=True, text=True, timeout=60)
rep = __import__("json").loads(r.stdout.split("REPLY", 1)[1]) if "REPLY" in r.stdout else {}
if rep.get("ok") is not False or "own user" not in rep.get("error", ""):
    print("FAIL: another uid was not refused by the peer check: %r %r" % (r.stdout, r.stderr), file=sys.stderr)
    fails += 1
st = d.status()
if st["sessions"] or st["queue"]:
    print("FAIL: the refused request left state: %r" % st, file=sys.stderr)
    fails += 1
d.close()
print("%d passed, %d failed" % (4 - fails, fails))
cleanup(fails > 0)
sys.exit(1 if fails else 0)
