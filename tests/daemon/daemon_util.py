"""daemon_util.py - shared by the daemon tests: start `stream-tts serve` on a
private socket with a WAV sink paced in real time, talk the protocol, wait
on events (a ready line, a socket, metrics records) with generous deadlines
so a loaded or sanitized run passes; never a fixed sleep to synchronise."""
import atexit, json, os, shutil, signal, socket, subprocess, sys, time

DEADLINE = float(os.environ.get("STTS_TEST_DEADLINE", "180"))


def wait_for(cond, what, deadline=DEADLINE):
    t = time.monotonic()
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() - t > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (deadline, what))
        time.sleep(0.02)


def recv_line(s, tolerate_reset=False):
    """Bytes from s up to and including the first newline, or what came
    before EOF; with tolerate_reset, a connection the daemon reset or closed
    while we were sending or reading ends the read instead of raising (a
    refused connection's reply may already be in the buffer)."""
    buf = b""
    try:
        while not buf.endswith(b"\n"):
            k = s.recv(65536)
            if not k:
                break
            buf += k
    except OSError:
        if not tolerate_reset:
            raise
    return buf


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


_running = []
_tmpdirs = []


def cleanup(failed):
    """Kills daemons left running; on failure shows their stderr; removes the scratch folders."""
    for d in _running:
        if d.p.poll() is None:
            d.p.kill()
            d.p.wait()
        if failed:
            sys.stderr.write("--- %s stderr:\n%s\n" % (d.err, read(d.err)[-3000:]))
    for t in _tmpdirs:
        shutil.rmtree(t, ignore_errors=True)


def scratch(prefix):
    import tempfile
    t = tempfile.mkdtemp(prefix=prefix)
    _tmpdirs.append(t)
    return t


_crashed = []
_hook = sys.excepthook


def _excepthook(*a):
    _crashed.append(1)
    _hook(*a)


sys.excepthook = _excepthook
atexit.register(lambda: cleanup(bool(_crashed)))


class Daemon:
    def __init__(self, binary, voice, tmp, name, extra=(), env=None, pace=True):
        self.dir = os.path.join(tmp, name)
        self.sock = os.path.join(self.dir, "socket")
        self.wav = os.path.join(tmp, name + ".wav")
        self.metrics = os.path.join(tmp, name + ".jsonl")
        self.err = os.path.join(tmp, name + ".err")
        self.binary = binary
        self.env = dict(env or os.environ)
        self.env["HOME"] = tmp
        self.env.pop("STREAM_TTS_SOCKET", None)
        cmd = [binary, "serve", "--socket", self.sock, "--voice", voice, "--output", self.wav,
               "--metrics", self.metrics, "--idle-exit", "0"] + (["--pace", "realtime"] if pace else []) + list(extra)
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=open(self.err, "w"), env=self.env, close_fds=True)
        _running.append(self)
        wait_for(lambda: "ready in" in read(self.err) or self.p.poll() is not None, "serve ready")
        assert self.p.poll() is None, "serve exited: " + read(self.err)

    def conn(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(DEADLINE)
        s.connect(self.sock)
        return s

    def hold_pipes(self, n=64):
        """n connections that stay, each opened as a pipe client does (a ping answered): the daemon's
        slots for long-lived clients, held."""
        held = []
        for k in range(n):
            c = self.conn()
            c.sendall(b'{"v":1,"op":"ping"}\n')
            line = recv_line(c)
            if not json.loads(line).get("ok"):
                raise AssertionError("pipe %d's ping: %r" % (k, line))
            held.append(c)
        return held

    def req(self, obj, s=None):
        own = s is None
        s = s or self.conn()
        line = obj if isinstance(obj, (bytes, bytearray)) else (json.dumps(obj) + "\n").encode()
        s.sendall(line)
        buf = recv_line(s)
        if own:
            s.close()
        return json.loads(buf) if buf else None

    def hook(self, payload, s=None):
        r = self.req({"v": 1, "op": "hook", "payload": payload}, s)
        assert r and r["ok"], r
        return r

    def status(self):
        return self.req({"v": 1, "op": "status"})

    def records(self):
        """The metrics file's complete lines. The daemon may be writing the
        next one: a last line without its newline is left for a later read
        (parsing it failed once in CI under ASan: "Expecting ',' delimiter")."""
        return [json.loads(l) for l in read(self.metrics).split("\n")[:-1] if l.strip()]

    def wait_records(self, n, what="metrics records"):
        """Waits until n records are written and nothing is queued."""
        def done():
            st = self.status()
            return len(self.records()) >= n and st["queue"] == 0 and st["pending"] == 0
        wait_for(done, "%d %s" % (n, what))
        return self.records()

    def wait_spoken(self, text, what=None):
        """Waits until a record of text is written and nothing is queued;
        returns the records. The daemon's one queue plays in arrival order
        (the default --order), so every sentence queued before text, or with
        it (timers due in the same pass of the daemon's loop may queue theirs
        just after it), has its record by then: a check that something was
        NOT said is anchored on a sentence (a sentinel) queued no earlier
        than any wrong one would have been, instead of on a fixed sleep that
        passes whether or not it came."""
        def done():
            st = self.status()
            return any(r.get("source") == text for r in self.records()) and st["queue"] == 0 and st["pending"] == 0
        wait_for(done, what or "%r spoken" % text)
        return self.records()

    def ctl(self, *args):
        t = time.monotonic()
        r = subprocess.run([self.binary, "ctl", "--socket", self.sock] + list(args), capture_output=True, text=True,
                           env=self.env, timeout=DEADLINE)
        return r, (time.monotonic() - t) * 1000

    def close(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.p.kill()
                raise AssertionError("serve did not exit on SIGTERM")
        return self.p.returncode


def md(session, message_id, index, delta, final, turn="turn-1"):
    return {"session_id": session, "transcript_path": "/nonexistent", "cwd": "/tmp",
            "hook_event_name": "MessageDisplay", "turn_id": turn, "message_id": message_id,
            "index": index, "final": final, "delta": delta}


def stop(session, last, active=False, event="Stop"):
    return {"session_id": session, "transcript_path": "/nonexistent", "cwd": "/tmp", "hook_event_name": event,
            "stop_hook_active": active, "last_assistant_message": last, "background_tasks": [], "session_crons": []}


def voice_or_skip(shared):
    """The Japanese voice every daemon test speaks with, or exit 77 (CTest's skip) without it."""
    voice = os.path.join(shared, "assets/voices/mei_normal.htsvoice")
    if not os.path.exists(voice):
        print("SKIPPED: voice %s not found (scripts/fetch-assets)" % voice)
        sys.exit(77)
    return voice


class Checks:
    """check(cond, what) counts; a failure prints what. finish() prints the
    counts, cleans up (showing the daemons' stderr on failure) and returns
    the exit status."""

    def __init__(self):
        self.passed = self.failed = 0

    def __call__(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL:", what, file=sys.stderr)
        return cond

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        cleanup(self.failed > 0)
        return 1 if self.failed else 0
