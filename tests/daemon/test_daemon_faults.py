#!/usr/bin/env python3
"""test_daemon_faults.py STREAM_TTS SOURCE_DIR SHARED_DIR - faults in
`stream-tts serve`, which runs the pipe mode's pipeline (src/app): a sentence
whose translation fails (out of memory injected through STTS_FAULT, see
docs/RELIABILITY.md) is spoken untranslated after a "translation failed"
notice in the listener's language; the sentences after it are translated;
each sentence has exactly one metrics record."""
import os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import Checks, Daemon, scratch, stop, voice_or_skip  # noqa: E402

BIN, SRC, SHARED = sys.argv[1:4]
VOICE = voice_or_skip(SHARED)
check = Checks()


tmp = scratch("stts-daemon-faults-")
env = dict(os.environ, STTS_FAULT="translate_oom_seq:1")
d = Daemon(BIN, VOICE, tmp, "oom", env=env, pace=False)
text = "The build passed on the first try. Then I looked at the parser. The tests are green."
d.hook(stop("s1", text))
rows = d.wait_records(3)
d.close()
err = open(d.err, encoding="utf-8").read()
check(len(rows) == 3, "three sentences, three records: %s" % rows)
check([r["seq"] for r in rows] == sorted(set(r["seq"] for r in rows)), "each sentence once, in order: %s" % rows)
bad = [r for r in rows if r.get("error") == "translation"]
check(len(bad) == 1, "exactly one failed translation: %s" % rows)
if len(rows) == 3 and len(bad) == 1:
    r = bad[0]
    check(r["seq"] == 1 and r["source"] == "Then I looked at the parser.", r)
    check(r["how"] == "fallback-source" and r["untranslated"] is True and r["spoken"] == r["source"], r)
    check(r["notice"] == "翻訳できませんでした。", "the notice in the listener's language: %s" % r)
    check(r["audio_ms"] > 1500 and r["t_first_out_ms"] is not None, "notice and sentence are heard: %s" % r)
    others = [x for x in rows if x is not r]
    check(all(x["how"] == "mt" and "error" not in x and "untranslated" not in x and x["audio_ms"] > 0
              for x in others), "the other sentences are translated: %s" % others)
check("sentence 1: translation failed (out of memory (injected fault))" in err, err[-600:])
if check.failed:
    print(err[-2000:], file=sys.stderr)
sys.exit(check.finish())
