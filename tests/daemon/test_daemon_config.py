#!/usr/bin/env python3
"""test_daemon_config.py STREAM_TTS SOURCE_DIR SHARED_DIR - `stream-tts serve`
reads the user's configuration file (the main command's,
$HOME/.config/stream-tts/config), flags given to serve win; a daemon started
by a hook that cannot speak says why (serve.log, serve.failed, then the next
hook's hook.log), keeps the requests spooled, and the next start speaks them
in order; one spooled over 60 s ago is dropped. A configuration error leaves
serve.failed too."""
import json, os, shutil, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import Checks, Daemon, md, read, scratch, stop, voice_or_skip, wait_for  # noqa: E402

BIN, SRC, SHARED = sys.argv[1:4]
VOICE = voice_or_skip(SHARED)
check = Checks()


def write_config(home, text):
    os.makedirs(os.path.join(home, ".config", "stream-tts"), exist_ok=True)
    with open(os.path.join(home, ".config", "stream-tts", "config"), "w") as f:
        f.write(text)


tmp = scratch("stts-daemon-config-")

# ---- 1. the configuration file is read; a flag wins over it ---------------------------------
home = os.path.join(tmp, "home")
cfg_wav = os.path.join(tmp, "from-config.wav")
cfg_metrics = os.path.join(tmp, "config-metrics.jsonl")   # overridden by --metrics below
write_config(home, "# the main command's settings\nvoice = %s\noutput = %s  # a file: no sound card needed\n"
             "metrics = %s\ninput-format = stream-json\ngap-ms = 0\n" % (VOICE, cfg_wav, cfg_metrics))
env = dict(os.environ, HOME=home)
env.pop("XDG_CONFIG_HOME", None)
env.pop("STREAM_TTS_SOCKET", None)
sock = os.path.join(tmp, "cfg", "socket")
flag_metrics = os.path.join(tmp, "flag-metrics.jsonl")
err = os.path.join(tmp, "cfg.err")
p = subprocess.Popen([BIN, "serve", "--socket", sock, "--metrics", flag_metrics, "--idle-exit", "0"],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(err, "w"), env=env)
try:
    wait_for(lambda: "ready in" in read(err) or p.poll() is not None, "serve ready")
    check(p.poll() is None, "serve with only --socket and a configuration file: %s" % read(err))
    if p.poll() is None:
        check(cfg_wav in read(err), "the configuration's output is used: %s" % read(err)[-400:])
        check("mei_normal" in read(err), "the configuration's voice is used: %s" % read(err)[-400:])
        r = subprocess.run([BIN, "ctl", "--socket", sock, "status", "--json"], capture_output=True, text=True,
                           env=env, timeout=120)
        st = json.loads(r.stdout) if r.returncode == 0 else {}
        check(st.get("device", "").endswith("from-config.wav") or cfg_wav in st.get("device", ""),
              "status device: %r" % st.get("device"))
        h = subprocess.run([BIN, "hook", "--socket", sock], capture_output=True, text=True, timeout=120,
                           input=json.dumps(md("cfg", "m1", 0, "The configuration file chose this voice.\n", True)),
                           env=dict(env, STREAM_TTS_HOOK_BUDGET_MS="5000"))
        check(h.returncode == 0, "hook: %r" % h.stderr)
        wait_for(lambda: read(flag_metrics).count("\n") >= 1, "a metrics record in the --metrics file")
        check("The configuration file chose this voice." in read(flag_metrics), "spoken: %s" % read(flag_metrics))
        check(not os.path.exists(cfg_metrics), "the --metrics flag won over the file's metrics key")
        # The launcher runs ctl itself (a copy alone in a folder, with no full
        # program beside it to exec) and behaves as the full program's ctl.
        launcher = os.path.join(os.path.dirname(BIN), "stream-tts-launcher")
        if os.path.exists(launcher):
            alone = os.path.join(tmp, "alone")
            os.makedirs(alone, exist_ok=True)
            shutil.copy(launcher, os.path.join(alone, "stream-tts"))
            for args in (["status", "--json"], ["pause"], ["resume"], ["bogus"], ["replay", "99"],
                         ["--socket", os.path.join(tmp, "none", "socket"), "status"]):
                full_args = args if args[0] == "--socket" else ["--socket", sock] + args
                a = subprocess.run([BIN, "ctl"] + full_args, capture_output=True, text=True, env=env, timeout=120)
                b = subprocess.run([os.path.join(alone, "stream-tts"), "ctl"] + full_args, capture_output=True,
                                   text=True, env=env, timeout=120)
                if args[0] == "status":   # lag, pid... may differ between two calls: compare the keys
                    same = a.returncode == b.returncode == 0 and sorted(json.loads(a.stdout)) == sorted(
                        json.loads(b.stdout)) and json.loads(b.stdout)["pid"] == p.pid
                else:
                    same = (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr)
                check(same, "ctl %s: full %d %r %r, launcher %d %r %r" % (
                    " ".join(args), a.returncode, a.stdout, a.stderr, b.returncode, b.stdout, b.stderr))
        else:
            print("note: no stream-tts-launcher beside %s; the launcher's ctl is not checked" % BIN)
finally:
    if p.poll() is None:
        p.terminate()
        p.wait(120)
check(os.path.getsize(cfg_wav) > 44 + 16000, "audio in the configuration's output file")

# A bad key in the file: a clear error naming the file.
write_config(home, "no-such-flag = 1\n")
r = subprocess.run([BIN, "serve", "--socket", sock, "--idle-exit", "0"], capture_output=True, text=True, env=env,
                   timeout=120)
check(r.returncode == 2 and "no-such-flag" in r.stderr and "configuration file" in r.stderr,
      "bad configuration key: %d %s" % (r.returncode, r.stderr))
# ... left in serve.failed too, so hooks hold off starting daemons and say why in hook.log.
cfg_failed = os.path.join(tmp, "cfg", "serve.failed")
check("no-such-flag" in read(cfg_failed), "serve.failed after a configuration error: %r" % read(cfg_failed))
h = subprocess.run([BIN, "hook", "--socket", sock], capture_output=True, text=True, timeout=120,
                   input=json.dumps(stop("cfg", "Not spoken now.")), env=dict(env, STREAM_TTS_HOOK_BUDGET_MS="2000"))
hl = read(os.path.join(tmp, "cfg", "hook.log"))
check(h.returncode == 0 and h.stdout == "" and "not started again" in hl and "no-such-flag" in hl,
      "hook.log gives the configuration error: %s" % hl[-600:])
os.unlink(cfg_failed)

# ---- 2. a hook-started daemon that cannot speak ---------------------------------------------------
home2 = os.path.join(tmp, "home2")
write_config(home2, "voice = %s\noutput = %s\n" % (VOICE, os.path.join(tmp, "no-such-dir", "x.wav")))
env2 = dict(os.environ, HOME=home2, STREAM_TTS_HOOK_BUDGET_MS="2000")
env2.pop("XDG_CONFIG_HOME", None)
env2.pop("STREAM_TTS_SOCKET", None)
env2.pop("STREAM_TTS_DAEMON", None)
sdir = os.path.join(tmp, "fail")
sock2 = os.path.join(sdir, "socket")
T = ["The first request waits in the spool.", "The second request waits behind it."]


def hook(i):
    r = subprocess.run([BIN, "hook", "--socket", sock2], input=json.dumps(md("sp", "m", i, T[i] + "\n", i == 1)),
                       capture_output=True, text=True, env=env2, timeout=120)
    check(r.returncode == 0 and r.stdout == "", "hook exit/stdout: %d %r" % (r.returncode, r.stdout))


def spooled():
    d = os.path.join(sdir, "spool")
    return sorted(f for f in os.listdir(d) if f.endswith(".json")) if os.path.isdir(d) else []


hook(0)   # starts `serve --socket`, which reads home2's file and fails
failed_file = os.path.join(sdir, "serve.failed")


def daemon_gone():
    """The daemon holds serve.lock (flock) until its process ends."""
    import fcntl
    try:
        fd = os.open(os.path.join(sdir, "serve.lock"), os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


wait_for(lambda: os.path.exists(failed_file) and not os.path.exists(sock2) and daemon_gone(),
         "the started daemon to fail and exit")
why = read(failed_file)
check("no-such-dir" in why, "serve.failed says why: %r" % why)
# ... and where to fix it: the daemon got only --socket, so "--output FILE.wav"
# cannot be followed; its settings are the configuration file's.
cfg2 = os.path.join(home2, ".config", "stream-tts", "config")
check(cfg2 in why and "output = " in why, "serve.failed names the configuration file to fix: %r" % why)
check("cannot start speaking" in read(os.path.join(sdir, "serve.log")) and "no-such-dir" in read(
    os.path.join(sdir, "serve.log")), "serve.log says why: %s" % read(os.path.join(sdir, "serve.log"))[-600:])
# The hook gives the daemon serve.log as its stderr too: each line once, not a second
# time through stderr.
for line in ("cannot start speaking", "listening on"):
    check(read(os.path.join(sdir, "serve.log")).count(line) == 1,
          "serve.log says '%s' once: %s" % (line, read(os.path.join(sdir, "serve.log"))[-1200:]))
check(len(spooled()) == 1, "the first request kept in the spool: %r" % spooled())
hook(1)   # within the hold-off: not started again, the reason in hook.log, spooled
hl = read(os.path.join(sdir, "hook.log"))
check("not started again" in hl and "no-such-dir" in hl and cfg2 in hl, "hook.log says why: %s" % hl[-600:])
check(len(spooled()) == 2, "both requests spooled: %r" % spooled())

# A request spooled long ago (a permission prompt from 10 minutes back) is
# dropped with a log line, not spoken.
old_name = "%020d-%d.json" % (time.time_ns() - 600 * 10**9, 1)
with open(os.path.join(sdir, "spool", ".old"), "w") as f:
    f.write(json.dumps({"v": 1, "op": "hook", "payload": {
        "session_id": "sp", "hook_event_name": "Notification", "notification_type": "permission_prompt",
        "message": "Claude needs your permission to use Bash"}}) + "\n")
os.rename(os.path.join(sdir, "spool", ".old"), os.path.join(sdir, "spool", old_name))

# The next start (a working output) speaks both, in order, and clears serve.failed.
d = Daemon(BIN, VOICE, tmp, "fail", extra=["--gap-ms", "0"], env=env2)
recs = d.wait_records(2)
check([r["source"] for r in recs] == T, "spooled requests spoken in order: %r" % [r["source"] for r in recs])
check(not spooled(), "spool emptied: %r" % spooled())
check("spool %s: dropped" % old_name in read(d.err), "the stale request's log line: %s" % read(d.err)[-800:])
check(not os.path.exists(failed_file), "serve.failed removed once the daemon speaks")
check(d.close() == 0, "daemon exit")

# ---- 3. "output = -" (raw PCM on stdout, for `stream-tts ... | player`) in the file ---------------
# A daemon a hook starts has serve.log as its stdout: it spoke raw audio into its
# log, nothing was heard and nothing said why. It refuses now, saying so.
home4 = os.path.join(tmp, "home4")
write_config(home4, "voice = %s\noutput = -\n" % VOICE)
env4 = dict(env2, HOME=home4)
sdir4 = os.path.join(tmp, "rawout")
sock4 = os.path.join(sdir4, "socket")
r = subprocess.run([BIN, "hook", "--socket", sock4], input=json.dumps(stop("raw", "Raw audio would go to the log.")),
                   capture_output=True, text=True, env=env4, timeout=120)
check(r.returncode == 0 and r.stdout == "", "hook exit/stdout: %d %r" % (r.returncode, r.stdout))
failed4 = os.path.join(sdir4, "serve.failed")
try:
    wait_for(lambda: os.path.exists(failed4), "the started daemon to refuse output '-'", deadline=30)
except AssertionError:
    pass
why4 = read(failed4)
check("output '-'" in why4 and "serve.log" in why4 and os.path.join(home4, ".config") in why4,
      "serve.failed says output '-' goes to the log: %r" % why4)
log4 = open(os.path.join(sdir4, "serve.log"), "rb").read() if os.path.exists(os.path.join(sdir4, "serve.log")) else b""
check(b"ready in" not in log4 and len(log4) < 8192, "no audio written into serve.log (%d bytes)" % len(log4))
st4 = subprocess.run([BIN, "ctl", "--socket", sock4, "status", "--json"], capture_output=True, text=True, env=env4,
                     timeout=60)
if st4.returncode == 0:   # a daemon that took output '-': not left behind
    os.kill(json.loads(st4.stdout)["pid"], 15)

# The configuration file's notice-lang is honoured by serve (it was ignored:
# notices always followed the spoken language); a --notice-lang flag wins.
tmp3 = scratch("stts-daemon-notice-")
write_config(tmp3, "notice-lang = eng_Latn\n")
env3 = dict(os.environ)
env3.pop("XDG_CONFIG_HOME", None)
code_msg = "Here it is.\n\n```python\nprint(1)\nprint(2)\n```\n"
for name, extra, want in (("nl-config", [], "Python code, 2 lines, omitted."),
                          ("nl-flag", ["--notice-lang", "jpn_Jpan"], "Pythonのコード、2行、省略します。")):
    d = Daemon(BIN, VOICE, tmp3, name, extra=["--gap-ms", "0"] + extra, env=env3, pace=False)
    d.hook(stop("s-" + name, code_msg))
    recs = d.wait_records(2)
    code = [r for r in recs if r["kind"] == "code"]
    check(len(code) == 1 and code[0]["source"] == want and code[0]["audio_ms"] > 0,
          "%s: the code notice is written in the chosen language: %r" % (name, recs))
    check(d.close() == 0, "%s: daemon exit" % name)

# ---- 4. serve.log rotated by another process -----------------------------------------------------
# Two daemons overlap while one exits, and both rotate serve.log past its
# 1 MiB cap. One that found the log over the cap after the other had rotated
# it (a new, small serve.log at the path) did not rotate it again, rightly,
# but kept writing into serve.log.1 for good, past the cap. It opens the new
# serve.log now.
d = Daemon(BIN, VOICE, tmp, "logrot", pace=False)
log = os.path.join(d.dir, "serve.log")
with open(log, "a") as f:
    f.write(("x" * 99 + "\n") * 11000)   # over the cap: the daemon's own log file is full
os.rename(log, log + ".1")              # what the other process's rotation did ...
with open(log, "w") as f:
    f.write("the other daemon's line\n")  # ... and the line it began the new log with
r = d.req({"v": 1, "op": "stop", "session": "rotated-elsewhere"})
check(r and r["ok"], "stop: %r" % r)
check("stop rotated-elsewhere" in read(log), "the daemon writes to the new serve.log: %r" % read(log)[-300:])
check("stop rotated-elsewhere" not in read(log + ".1"), "nothing more goes into serve.log.1")
check(d.close() == 0, "logrot: daemon exit")

# serve --echo prints each sentence as it starts playing (it was accepted and
# printed nothing); an empty Notification message is answered as not spoken
# (it was "spoken", and nothing was said).
sock = os.path.join(tmp, "echo", "socket")
out = os.path.join(tmp, "echo.out")
env = dict(os.environ, HOME=tmp)
env.pop("STREAM_TTS_SOCKET", None)
with open(out, "w") as fo:
    p = subprocess.Popen([BIN, "serve", "--socket", sock, "--voice", VOICE, "--output", os.path.join(tmp, "echo.wav"),
                          "--idle-exit", "0", "--echo"], stdout=fo, stderr=subprocess.DEVNULL, env=env)
wait_for(lambda: os.path.exists(sock), "serve --echo listening")
ds = Daemon.__new__(Daemon)   # the helpers' requests, on that daemon's socket (its stdout is the point here)
ds.sock = sock
wait_for(lambda: (ds.status() or {}).get("state") == "ready", "serve --echo ready")
r = ds.hook({"session_id": "E", "transcript_path": "/nonexistent", "cwd": "/tmp", "hook_event_name": "MessageDisplay",
             "turn_id": "t", "message_id": "m", "index": 0, "final": True, "delta": "The sky is blue.\n"})
wait_for(lambda: "The sky is blue." in read(out), "the echo line")
for m in ("", "   "):
    r = ds.hook({"session_id": "E", "transcript_path": "/nonexistent", "cwd": "/tmp", "hook_event_name": "Notification",
                 "message": m, "notification_type": "permission_prompt"})
    check(r and r["done"] == "not spoken (empty message)", "empty notification %r: %r" % (m, r))
p.terminate()
p.wait(30)
check("The sky is blue." in read(out), "serve --echo printed the sentence: %r" % read(out)[-200:])

sys.exit(check.finish())
