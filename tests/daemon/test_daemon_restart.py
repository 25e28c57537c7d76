#!/usr/bin/env python3
"""test_daemon_restart.py STREAM_TTS SOURCE_DIR SHARED_DIR - a hook whose
request reaches a daemon that is stopping (SIGTERM, an idle exit: its socket
is gone and its connections are closed unread) does not lose it: the
connection closed before any reply tells the hook the request was not taken,
and the hook starts the next daemon (which waits for the stopping one's lock)
and hands it the request, which is spoken once. Before, the hook logged
"sent, but ... Connection reset by peer" and the reply was never spoken.

The daemon is stopped (SIGSTOP) while the hook connects, then gets SIGTERM
and SIGCONT; its poll loop may still take the request before it sees the
signal (then the hook had its reply, and SIGTERM drops speech by design):
such a round proves nothing and is run again, up to 8 times.
A start beside a live daemon that is stuck (its listen queue full) still
exits 3 at once: it waits for the lock only while nobody answers."""
import json, os, signal, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import Checks, Daemon, read, scratch, stop, voice_or_skip, wait_for  # noqa: E402

BIN, SRC, SHARED = sys.argv[1:4]
VOICE = voice_or_skip(SHARED)
check = Checks()
TEXT = "This reply reached a daemon that was stopping."


def ctl_status(env, sock):
    r = subprocess.run([BIN, "ctl", "--socket", sock, "status", "--json"], capture_output=True, text=True, env=env,
                       timeout=60)
    return json.loads(r.stdout) if r.returncode == 0 else None


def attempt(n):
    """One round; False when the stopping daemon took the request itself."""
    tmp = scratch("stts-daemon-restart-%d-" % n)
    # The daemon the hook starts reads the user's configuration (HOME=tmp, as
    # the Daemon class sets it); the first daemon's flags win over it.
    next_metrics = os.path.join(tmp, "next.jsonl")
    os.makedirs(os.path.join(tmp, ".config", "stream-tts"))
    with open(os.path.join(tmp, ".config", "stream-tts", "config"), "w") as f:
        f.write("voice = %s\noutput = %s\nmetrics = %s\n" % (VOICE, os.path.join(tmp, "next.wav"), next_metrics))
    d = Daemon(BIN, VOICE, tmp, "first", pace=False)
    env = dict(d.env, STREAM_TTS_SOCKET=d.sock, STREAM_TTS_HOOK_BUDGET_MS="5000")
    env.pop("XDG_CONFIG_HOME", None)
    env.pop("STREAM_TTS_DAEMON", None)
    hook_log = os.path.join(d.dir, "hook.log")
    os.kill(d.p.pid, signal.SIGSTOP)   # it reads nothing until its SIGTERM
    hook = subprocess.Popen([BIN, "hook"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    hook.stdin.write(json.dumps(stop("R", TEXT)).encode())
    hook.stdin.close()
    # The hook's connection waits in the daemon's listen queue: /proc/net/unix
    # lists it under the socket's path beside the listener.
    wait_for(lambda: read("/proc/net/unix").count(" " + d.sock + "\n") >= 2 or hook.poll() is not None,
             "the hook to connect")
    os.kill(d.p.pid, signal.SIGTERM)
    os.kill(d.p.pid, signal.SIGCONT)
    check(d.p.wait(60) == 0, "the first daemon exits 0 on SIGTERM")
    out, err = hook.stdout.read(), hook.stderr.read()   # to EOF, as Claude Code reads them
    hook.wait(60)
    check(hook.returncode == 0 and out == b"" and err == b"", "hook: rc %s, out %r, err %r" % (hook.returncode, out, err))
    log = read(hook_log)
    if not log:
        print("round %d: the stopping daemon took the request before its SIGTERM; again" % n)
        return False
    try:
        wait_for(lambda: TEXT in read(next_metrics), "the reply spoken by the next daemon", deadline=60)
    except AssertionError:
        check(False, "the reply is spoken by the next daemon: hook.log: %s\nserve.log: %s\nspool: %s" %
              (log, read(os.path.join(d.dir, "serve.log"))[-3000:], os.listdir(os.path.join(d.dir, "spool"))))
        return True
    st = wait_for(lambda: ctl_status(env, d.sock), "the next daemon's status")
    wait_for(lambda: (ctl_status(env, d.sock) or {}).get("queue") == 0, "speech done")
    check(read(next_metrics).count(TEXT) == 1, "spoken once: %s" % read(next_metrics))
    check(TEXT not in read(d.metrics), "not by the daemon that was stopping")
    check("sent, but" not in log, "hook.log: %s" % log)
    os.kill(st["pid"], signal.SIGTERM)
    wait_for(lambda: not os.path.exists("/proc/%d" % st["pid"]) or
             read(os.path.join(d.dir, "serve.log")).endswith("exited\n"), "the next daemon to exit")
    return True


for n in range(8):
    if attempt(n):
        break
else:
    check(False, "8 rounds, and the stopping daemon took the request each time")

# A start beside a live daemon that is stuck (stopped, its listen queue full)
# still says at once that another daemon runs: it waits for the lock only
# while nobody is there (its probe does not block on the full queue).
import socket, time  # noqa: E402
tmp = scratch("stts-daemon-restart-busy-")
d = Daemon(BIN, VOICE, tmp, "busy", pace=False)
os.kill(d.p.pid, signal.SIGSTOP)
queued = []
for i in range(1000):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.setblocking(False)
    try:
        c.connect(d.sock)
    except BlockingIOError:
        c.close()
        break
    queued.append(c)
t = time.monotonic()
try:
    r = subprocess.run([BIN, "serve", "--socket", d.sock, "--voice", VOICE, "--output", os.path.join(tmp, "x.wav")],
                       capture_output=True, text=True, env=d.env, timeout=30)
    check(r.returncode == 3 and "already running" in r.stderr, "second serve: %s %r" % (r.returncode, r.stderr))
except subprocess.TimeoutExpired:
    check(False, "a second serve beside a stuck daemon hung (30 s)")
check(time.monotonic() - t < 10, "it said so in %.1f s" % (time.monotonic() - t))
# `stream-tts ctl` (what a user runs to see what is wrong) beside that daemon
# says so and exits 1; its blocking connect waited for a place in the full
# queue forever.
for args in (["status"], ["stop"]):
    t = time.monotonic()
    try:
        r = subprocess.run([BIN, "ctl", "--socket", d.sock] + args, capture_output=True, text=True, env=d.env,
                           timeout=30)
        check(r.returncode == 1 and "accepts no connection" in r.stderr, "ctl %s: %s %r" % (args[0], r.returncode,
                                                                                          r.stderr))
    except subprocess.TimeoutExpired:
        check(False, "ctl %s beside a stuck daemon hung (30 s)" % args[0])
    check(time.monotonic() - t < 15, "ctl %s said so in %.1f s" % (args[0], time.monotonic() - t))
os.kill(d.p.pid, signal.SIGCONT)
for c in queued:
    c.close()
check(d.close() == 0, "the stuck daemon exits 0 on SIGTERM")
sys.exit(check.finish())
