#!/usr/bin/env python3
"""eval-protect.py - identifiers through translation (docs/QUALITY.md).

With the demo model (or --model DIR), runs `stream-tts translate --json` with
and without --protect on
  1. tests/data/protect/identifiers.tsv: sentences with identifiers, paths,
     flags, numbers; a sentence passes when every listed identifier appears
     verbatim in its translation;
  2. the plain test set (../shared/data/small_parallel_enja/test.{en,ja},
     prepared like the demo model's training data): character BLEU (corpus
     BLEU-4 over characters, white space ignored: sacrebleu's tokenize="char").
--check (CTest test_protect, bounded: about 100 + k translations, 10-30 s on
2 busy cores): exit 1 unless >= 95 % of identifier sentences keep every
identifier with --protect and the plain set's BLEU with --protect is not
lower. In --check mode only the k plain sentences that --protect changes are
translated (--show-protected finds them); the others' outputs are the
committed greedy outputs of tests/fixtures/demo/hf-test.json, which equal
ours token for token (docs/QUALITY.md; test_demo_model checks 100 in CI).
Python standard library only."""
import argparse
import collections
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def translate(binary, model, sents, protect):
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", delete=False) as f:
        f.write("\n".join(sents) + "\n")
        path = f.name
    try:
        args = [binary, "translate", "--model", model, "--src", "eng_Latn", "--tgt", "jpn_Jpan", "--max-len", "64",
                "--json"] + (["--protect"] if protect else [])
        with open(path, encoding="utf-8") as inp:
            out = subprocess.run(args, stdin=inp, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(path)
    rows = [json.loads(l) for l in out.splitlines()]
    assert len(rows) == len(sents), (len(rows), len(sents))
    return rows


def char_bleu(hyps, refs):
    """Corpus BLEU-4 on characters (white space dropped), sacrebleu's exp smoothing."""
    match, total = [0] * 4, [0] * 4
    hl = rl = 0
    for h, r in zip(hyps, refs):
        h = [c for c in h if not c.isspace()]
        r = [c for c in r if not c.isspace()]
        hl += len(h)
        rl += len(r)
        for n in range(1, 5):
            hc = collections.Counter(tuple(h[i:i + n]) for i in range(len(h) - n + 1))
            rc = collections.Counter(tuple(r[i:i + n]) for i in range(len(r) - n + 1))
            match[n - 1] += sum(min(c, rc[g]) for g, c in hc.items())
            total[n - 1] += max(len(h) - n + 1, 0)
    if hl == 0:
        return 0.0
    logp, smooth = 0.0, 1.0
    for n in range(4):
        if total[n] == 0:
            return 0.0
        if match[n] == 0:
            smooth *= 2
            p = 1.0 / (smooth * total[n])
        else:
            p = match[n] / total[n]
        logp += math.log(p) / 4
    bp = 1.0 if hl > rl else math.exp(1 - rl / hl)
    return 100 * bp * math.exp(logp)


def prepared_test(shared):
    spec = importlib.util.spec_from_file_location("prep", os.path.join(HERE, "demo-model", "prepare-data.py"))
    prep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prep)
    src = os.path.join(shared, "data", "small_parallel_enja")
    with open(os.path.join(src, "test.en"), encoding="utf-8") as f:
        en = [prep.detok_en(l) for l in f]
    with open(os.path.join(src, "test.ja"), encoding="utf-8") as f:
        ja = [prep.detok_ja(l) for l in f]
    return en, ja


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "tools", "stream-tts"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "demo-en-ja"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    t0 = time.time()
    for need in (a.bin, os.path.join(a.model, "config.json"),
                 os.path.join(a.shared, "data", "small_parallel_enja", "test.en")):
        if not os.path.exists(need):
            print(f"SKIPPED: {need} is missing", file=sys.stderr)
            sys.exit(77)
    rows = []
    with open(os.path.join(ROOT, "tests", "data", "protect", "identifiers.tsv"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            s, ids = line.rstrip("\n").split("\t")
            rows.append((s, ids.split(" ")))
    sents = [s for s, _ in rows]
    res = {}
    for prot in ((True,) if a.check else (False, True)):
        out = translate(a.bin, a.model, sents, prot)
        kept = sum(all(i in o["text"] for i in ids) for (_, ids), o in zip(rows, out))
        res[prot] = kept / len(rows)
        print(f"identifier sentences ({len(rows)}), {'with' if prot else 'without'} --protect: "
              f"{kept} keep every identifier verbatim ({100 * kept / len(rows):.1f} %)")
    en, ja = prepared_test(a.shared)
    if a.check:
        with open(os.path.join(ROOT, "tests", "fixtures", "demo", "hf-test.json"), encoding="utf-8") as f:
            base = [o["text"] for o in json.load(f)["runs"]["greedy_fp32"]["outputs"]]
        shown = subprocess.run([a.bin, "translate", "--tgt", "jpn_Jpan", "--show-protected"], input="\n".join(en) + "\n",
                               capture_output=True, text=True, check=True).stdout.split("\n")[:len(en)]
        idx = [i for i, (x, y) in enumerate(zip(en, shown)) if x != y]
        prot = list(base)
        if idx:
            for i, o in zip(idx, translate(a.bin, a.model, [en[i] for i in idx], True)):
                prot[i] = o["text"]
        b0, b1 = char_bleu(base, ja), char_bleu(prot, ja)
        touched = len(idx)
        changed = sum(1 for x, y in zip(base, prot) if x != y)
        # The comparison above holds by construction if --show-protected
        # stops marking anything (idx empty: prot == base): the set is known
        # to hold a sentence it protects (QUALITY.md), and a few sentences it
        # leaves alone must come out of `translate --protect` as HF's.
        rest = [i for i in range(len(en)) if i not in set(idx)][:3]
        same = sum(o["text"] == base[i] for i, o in zip(rest, translate(a.bin, a.model, [en[i] for i in rest], True)))
    else:
        plain = translate(a.bin, a.model, en, False)
        protd = translate(a.bin, a.model, en, True)
        b0 = char_bleu([o["text"] for o in plain], ja)
        b1 = char_bleu([o["text"] for o in protd], ja)
        touched = sum(1 for o in protd if o.get("protected"))
        changed = sum(1 for x, y in zip(plain, protd) if x["text"] != y["text"])
    print(f"plain test set ({len(en)}): char BLEU {b0:.2f} without, {b1:.2f} with --protect "
          f"({touched} sentences protected, {changed} outputs changed)")
    print(f"time: {time.time() - t0:.1f} s")
    if a.check:
        ok = res[True] >= 0.95 and b1 >= b0 - 1e-9 and touched >= 1 and same == len(rest)
        if not ok:
            print(f"FAIL: want >= 95 % kept, no BLEU loss, at least one plain sentence protected ({touched}) "
                  f"and unprotected sentences as HF's ({same} of {len(rest)})", file=sys.stderr)
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
