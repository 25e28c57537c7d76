#!/usr/bin/env python3
"""check_frontend.py STREAM_TTS SOURCE_DIR [TRIALS] [SEED] - compares
`stream-tts --dry-run --json` with the independent oracle
(frontend_oracle.py, written from docs/FRONTEND.md) on the golden transcripts
(tests/data/front/*.jsonl, samples/session.jsonl, tests/oracle/cases/*.jsonl)
and on TRIALS (default 200)
random streams built from seed SEED (default 1; the seed of a failing trial
is printed, and its stream kept in /tmp for a rerun).

On words (segmentation, merging and notice wording are not compared), the
speech sentences (kind "speech") must:
  - cover the oracle's spoken text: every word, in order;
  - contain no word found only in silent text (tool calls and results,
    thinking, subagents, CLI errors, results of a turn that spoke);
  - say nothing twice: no word more often than the spoken and uncertain
    text hold it.
Random streams take their spoken words and their silent words from two
disjoint vocabularies, so the exclusion check is exact there. Exit 0 when
all agree, 1 otherwise (each disagreement printed)."""
import collections
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import frontend_oracle as oracle  # noqa: E402

BIN, SRC = sys.argv[1], sys.argv[2]
TRIALS = int(sys.argv[3]) if len(sys.argv) > 3 else 200
SEED = int(sys.argv[4]) if len(sys.argv) > 4 else 1


def c_speech(path):
    p = subprocess.run([BIN, "--dry-run", "--json", "--input", path], capture_output=True, timeout=60)
    if p.returncode != 0:
        return None, f"stream-tts exit {p.returncode}: {p.stderr.decode(errors='replace')[-400:]}"
    rows = [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()]
    return [r["text"] for r in rows if r["kind"] == "speech"], None


def compare(name, path):
    """Returns a list of disagreements between the C output and the oracle."""
    with open(path, "rb") as f:
        ref = oracle.run(f.read())
    speech, err = c_speech(path)
    if err:
        return [f"{name}: {err}"]
    got = [w for s in speech for w in oracle.words(s)]
    must = [w for t in ref["spoken"] for w in oracle.words(t)]
    maybe = [w for t in ref["uncertain"] for w in oracle.words(t)]
    problems = []
    # every spoken word, in order (a subsequence of what was said)
    i = 0
    for k, w in enumerate(must):
        while i < len(got) and got[i] != w:
            i += 1
        if i == len(got):
            ctx = " ".join(must[max(0, k - 6):k + 6])
            problems.append(f"{name}: spoken word {k} '{w}' missing or out of order (oracle: ...{ctx}...)")
            break
        i += 1
    # nothing from silent text
    allowed = collections.Counter(must) + collections.Counter(maybe)
    forbidden = {w for t in ref["silent"] for w in oracle.words(t)} - set(allowed)
    leaked = sorted({w for w in got if w in forbidden})
    if leaked:
        problems.append(f"{name}: words only in tool results/thinking/subagents/errors were spoken: {leaked[:12]}")
    # nothing twice
    extra = {w: n for w, n in collections.Counter(got).items() if n > allowed[w] and w not in forbidden}
    if extra:
        problems.append(f"{name}: said more often than written (word: said/written): "
                        + ", ".join(f"{w}: {n}/{allowed[w]}" for w, n in sorted(extra.items())[:12]))
    if problems:
        problems.append(f"{name}: C speech was: {speech}")
    return problems


# --- random streams -------------------------------------------------------------

def load_session_class():
    p = os.path.join(SRC, "tests/data/front/make-transcripts.py")
    spec = importlib.util.spec_from_file_location("make_transcripts", p)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m.Session


SPOKEN = ("parser cache table index window socket thread buffer module option value result request "
          "answer branch commit change build release format number string letter record column summary "
          "reason problem feature library program system signal output input server client stream engine "
          "writer reader folder document manager handler monitor schedule pattern").split()
SILENT = ("zebra quokka narwhal wombat axolotl platypus ocelot tapir gecko lemur marmot dingo ibex yak "
          "kudu oryx okapi bongo serval caracal jerboa pangolin").split()
JA = ["テストが失敗しています。", "原因を調べます。", "修正しました！", "全部通りました。", "次は何をしますか？"]


def sentence(rng, vocab, n=None):
    n = n or rng.randint(3, 12)
    ws = [rng.choice(vocab) for _ in range(n)]
    ws[0] = ws[0].capitalize()
    return " ".join(ws) + rng.choice([".", ".", "!", "?"])


def markdown(rng):
    """A text block mixing prose (spoken words) with constructs whose
    content must not be read (silent words)."""
    parts = []
    for _ in range(rng.randint(1, 5)):
        k = rng.randrange(15)
        if k == 0:
            parts.append("## " + sentence(rng, SPOKEN, 4).rstrip(".!?"))
        elif k == 1:
            parts.append("\n".join("- " + sentence(rng, SPOKEN, 5) for _ in range(rng.randint(1, 3))))
        elif k == 2:
            parts.append("```python\n" + "\n".join(" ".join(rng.choices(SILENT, k=4)) for _ in range(3)) + "\n```")
        elif k == 3:
            parts.append("| a | b |\n| --- | --- |\n| " + rng.choice(SILENT) + " | " + rng.choice(SILENT) + " |")
        elif k == 4:
            w = rng.sample(SPOKEN, 3)
            parts.append(f"The **{w[0]}** uses `{w[1]}` and [the {w[2]}](https://{rng.choice(SILENT)}.example.org/x).")
        elif k == 5:
            parts.append(sentence(rng, SPOKEN) + " <!-- " + " ".join(rng.choices(SILENT, k=3)) + " -->")
        elif k == 6:
            parts.append("> " + sentence(rng, SPOKEN))
        elif k == 7:
            parts.append("It is in /home/" + rng.choice(SILENT) + "/src/" + rng.choice(SPOKEN) + ".c now, e.g. at 3.5 seconds.")
        elif k == 8:
            parts.append(rng.choice(JA) + rng.choice(JA))
        elif k == 9:
            w = rng.sample(SPOKEN, 4)
            parts.append(f"<system-reminder>{' '.join(rng.choices(SILENT, k=3))}</system-reminder>The <b>{w[0]}</b> "
                         f"&amp; {w[1]}[^1] vs. \\*{w[2]}\\* and _{w[3]}_ i.e. done.")
        elif k == 10:
            parts.append(sentence(rng, SPOKEN) + "\n\nCo-Authored-By: " + rng.choice(SILENT).capitalize() + " <a@b.c>")
        else:
            parts.append(" ".join(sentence(rng, SPOKEN) for _ in range(rng.randint(1, 3))))
    return "\n\n".join(parts)


def random_stream(Session, seed):
    rng = random.Random(seed)
    s = Session("random", partial=rng.random() < 0.7, seed=seed, sid="rand-%d" % seed)
    s.init()
    for turn in range(rng.randint(1, 3)):
        spoke, last = False, ""
        for m in range(rng.randint(1, 3)):
            blocks = []
            if rng.random() < 0.4:
                blocks.append(("thinking", sentence(rng, SILENT)))
            for _ in range(rng.randint(0, 2)):
                blocks.append(("text", markdown(rng)))
                spoke = True
            tid = "toolu_%d_%d_%d" % (seed, turn, m)
            if rng.random() < 0.5:
                blocks.append(("tool", "Bash", {"command": " ".join(rng.choices(SILENT, k=3))}, tid))
            if not blocks:
                continue
            texts = [b[1] for b in blocks if b[0] == "text"]
            if texts:
                last = texts[-1]
            lost = (len(blocks) - 1,) if s.partial and blocks[-1][0] == "text" and rng.random() < 0.2 else ()
            mid = s.message(blocks, lost_deltas=lost)
            if not s.partial and rng.random() < 0.2:  # the same assistant line again (resumed session)
                s.message([b for b in blocks if b[0] == "text"] or blocks, msg_id=mid)
            if blocks[-1][0] == "tool":
                if rng.random() < 0.3:  # a subagent's own lines
                    s.message([("text", sentence(rng, SILENT))], parent=tid)
                s.tool_result(tid, " ".join(rng.choices(SILENT, k=8)))
        # a turn that spoke: its result is its last text block (never said
        # again), or other words (never said); a silent turn: the result is the answer
        if not spoke:
            s.result(sentence(rng, SPOKEN))
        else:
            s.result(last if rng.random() < 0.7 else "Summary: " + sentence(rng, SPOKEN))
    if s.partial and rng.random() < 0.3:
        sdk_order(s.lines)
    if rng.random() < CUT_SHARE:
        for _ in range(1 if rng.random() < 0.7 else 2):
            cut_line(rng, s.lines)
    return s


# A fraction of the random streams lose lines as the CLI loses them: a long
# line cut short (anthropics/claude-code#3359, #2904), which the front end
# sees as a broken line. Which line and where it is cut are random.
CUT_SHARE = 0.6


def cut_line(rng, lines):
    i = rng.randrange(1, len(lines))
    if len(lines[i]) > 2:
        lines[i] = lines[i][:rng.randrange(1, len(lines[i]) - 1)]


def sdk_order(lines):
    """The order the Agent SDK documents: a message's complete assistant
    lines after its message_stop (the CLI writes each before its block's
    content_block_stop)."""
    out, held = [], {}
    for l in lines:
        o = json.loads(l)
        par = o.get("parent_tool_use_id")
        if o.get("type") == "assistant" and par in held:
            held[par].append(l)
            continue
        out.append(l)
        if o.get("type") == "stream_event":
            et = (o.get("event") or {}).get("type")
            if et == "message_start":
                held[par] = []
            elif et == "message_stop":
                out += held.pop(par, [])
    for h in held.values():
        out += h
    lines[:] = out


def main():
    problems = []
    data = os.path.join(SRC, "tests/data/front")
    goldens = sorted(os.path.join(data, f) for f in os.listdir(data) if f.endswith(".jsonl"))
    goldens.append(os.path.join(SRC, "samples/session.jsonl"))
    cases = os.path.join(SRC, "tests/oracle/cases")  # hand-made streams of the front end's own cases
    goldens += sorted(os.path.join(cases, f) for f in os.listdir(cases) if f.endswith(".jsonl"))
    for g in goldens:
        problems += compare(os.path.relpath(g, SRC), g)
    Session = load_session_class()
    tmp = tempfile.mkdtemp(prefix="stts-oracle-")
    bad_trials = 0
    for t in range(TRIALS):
        seed = SEED * 100003 + t
        path = os.path.join(tmp, "random-%d.jsonl" % seed)
        random_stream(Session, seed).write(path)
        p = compare("random seed %d (%s)" % (seed, path), path)
        if p:
            bad_trials += 1
            problems += p
        else:
            os.unlink(path)
    if not problems:
        os.rmdir(tmp)
    for p in problems:
        print("DISAGREE: " + p)
    print(f"oracle vs stream-tts: {len(goldens)} goldens, {TRIALS} random streams (seed {SEED}): "
          f"{len(problems)} disagreements, {bad_trials} random streams differ")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
