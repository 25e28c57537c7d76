#!/usr/bin/env python3
"""evaluate.py - our engine against HF transformers on the demo model's
500-sentence test set (docs/QUALITY.md has the numbers).

Step 1, here (needs the built stream-tts, Python stdlib only):
  evaluate.py translate --bin build/tools/stream-tts --model models/demo-en-ja \
      --shared ../shared --out engine-test.json
  runs `stream-tts translate --json` greedy and beam 4 (64 new tokens at most,
  as eval-hf.py) on test.en prepared like the training data.

Step 2, where sacrebleu is installed (the GPU machine here):
  evaluate.py score --hf tests/fixtures/demo/hf-test.json --engine engine-test.json \
      --shared ../shared
  compares ids with HF's outputs (greedy fp32, beam-4 fp32, greedy fp16 on GPU)
  and scores both sides with sacrebleu: BLEU with character tokenization
  (Japanese has no spaces) and chrF.
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def prepared_test(shared):
    spec = importlib.util.spec_from_file_location("prep", os.path.join(HERE, "prepare-data.py"))
    prep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prep)
    src = os.path.join(shared, "data", "small_parallel_enja")
    with open(os.path.join(src, "test.en"), encoding="utf-8") as f:
        en = [prep.detok_en(l) for l in f]
    with open(os.path.join(src, "test.ja"), encoding="utf-8") as f:
        ja = [prep.detok_ja(l) for l in f]
    return en, ja


def run_engine(binary, model, sents, beam):
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", delete=False) as f:
        f.write("\n".join(sents) + "\n")
        path = f.name
    try:
        with open(path, encoding="utf-8") as inp:
            out = subprocess.run([binary, "translate", "--model", model, "--src", "eng_Latn", "--tgt", "jpn_Jpan",
                                  "--beam", str(beam), "--max-len", "64", "--json",
                                  "--weights", "f32", "--shortlist", "none"], stdin=inp,
                                 capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(path)
    rows = [json.loads(l) for l in out.splitlines()]
    assert len(rows) == len(sents), (len(rows), len(sents))
    return [{"ids": r["ids"], "text": r["text"], "ms": r.get("ms")} for r in rows]


def cmd_translate(a):
    en, _ = prepared_test(a.shared)
    runs = {}
    for name, beam in (("greedy_fp32", 1), ("beam4_fp32", 4)):
        outs = run_engine(a.bin, a.model, en, beam)
        runs[name] = {"outputs": outs}
        print(f"{name}: {len(outs)} sentences, {sum(o['ms'] or 0 for o in outs) / len(outs):.1f} ms each")
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump({"model": a.model, "runs": runs}, f, ensure_ascii=False)


def cmd_score(a):
    import sacrebleu
    _, ref = prepared_test(a.shared)
    with open(a.hf, encoding="utf-8") as f:
        hf = json.load(f)["runs"]
    with open(a.engine, encoding="utf-8") as f:
        eng = json.load(f)["runs"]
    rows = []
    for name in ("greedy_fp32", "beam4_fp32"):
        h = hf[name]["outputs"]
        e = eng[name]["outputs"]
        diff = sum(1 for x, y in zip(h, e) if x["ids"] != y["ids"])
        hb = sacrebleu.corpus_bleu([o["text"] for o in h], [ref], tokenize="char").score
        eb = sacrebleu.corpus_bleu([o["text"] for o in e], [ref], tokenize="char").score
        hc = sacrebleu.corpus_chrf([o["text"] for o in h], [ref]).score
        ec = sacrebleu.corpus_chrf([o["text"] for o in e], [ref]).score
        rows.append((name, diff, hb, eb, hc, ec))
    if "greedy_fp16_gpu" in hf:
        h16 = hf["greedy_fp16_gpu"]["outputs"]
        e = eng["greedy_fp32"]["outputs"]
        diff16 = sum(1 for x, y in zip(h16, e) if x["ids"] != y["ids"])
        b16 = sacrebleu.corpus_bleu([o["text"] for o in h16], [ref], tokenize="char").score
        c16 = sacrebleu.corpus_chrf([o["text"] for o in h16], [ref]).score
        rows.append(("greedy_fp16_gpu (HF) vs our fp32", diff16, b16, float("nan"), c16, float("nan")))
    print(f"sacrebleu {sacrebleu.__version__}; 500 test sentences; BLEU tokenize=char; chrF defaults")
    print("| run | sentences whose ids differ | HF char BLEU | ours char BLEU | HF chrF | ours chrF |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:.2f} | {r[5]:.2f} |")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("translate")
    t.add_argument("--bin", required=True)
    t.add_argument("--model", required=True)
    t.add_argument("--shared", required=True)
    t.add_argument("--out", required=True)
    s = sub.add_parser("score")
    s.add_argument("--hf", required=True)
    s.add_argument("--engine", required=True)
    s.add_argument("--shared", required=True)
    a = ap.parse_args()
    (cmd_translate if a.cmd == "translate" else cmd_score)(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
