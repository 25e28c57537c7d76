#!/usr/bin/env python3
"""eval-hf.py - HF transformers' side of the demo model's evaluation: translates
the 500-sentence test set with `generate` and scores it, so our engine's
output can be compared token for token (scripts/demo-model/compare.py).

  eval-hf.py --model models/demo-en-ja --data DATA --out hf-test.json

Runs greedy and beam-4 in float32 on the CPU, one sentence at a time (no
padding, the engine's own setting), and greedy in float16 on the GPU when
there is one. Writes every output (ids and text) and the scores: sacrebleu
BLEU with character tokenization (Japanese has no spaces) and chrF.
"""
import argparse
import json
import os
import sys
import time

import sacrebleu
import sentencepiece as spm
import torch
from transformers import M2M100ForConditionalGeneration

HERE = os.path.dirname(os.path.abspath(__file__))
LANG_MAP = os.path.join(HERE, "..", "..", "..", "shared", "nllb", "nllb-200-1.3B.special_tokens_map.json")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--lang-map", default=LANG_MAP)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    args = ap.parse_args()
    with open(args.lang_map, encoding="utf-8") as f:
        codes = json.load(f)["additional_special_tokens"]
    sp = spm.SentencePieceProcessor(model_file=os.path.join(args.model, "sentencepiece.bpe.model"))
    S = sp.get_piece_size()
    src_id, tgt_id = S + 1 + codes.index("eng_Latn"), S + 1 + codes.index("jpn_Jpan")

    def enc(t):
        return [src_id] + [3 if i == 0 else i + 1 for i in sp.encode(t, out_type=int)] + [2]

    def dec(ids):
        return sp.decode([i - 1 for i in ids if 4 <= i <= S])

    with open(os.path.join(args.data, "test.en"), encoding="utf-8") as f:
        src = [l.rstrip("\n") for l in f]
    with open(os.path.join(args.data, "test.ja"), encoding="utf-8") as f:
        ref = [l.rstrip("\n") for l in f]

    torch.set_num_threads(max(1, min(16, os.cpu_count() or 1)))
    runs = {}
    m32 = M2M100ForConditionalGeneration.from_pretrained(args.model).float().eval()
    plans = [("greedy_fp32", m32, "cpu", 1), ("beam4_fp32", m32, "cpu", 4)]
    if torch.cuda.is_available():
        m16 = M2M100ForConditionalGeneration.from_pretrained(args.model).half().cuda().eval()
        plans.append(("greedy_fp16_gpu", m16, "cuda", 1))
    for name, model, device, beams in plans:
        t0 = time.time()
        outs = []
        with torch.no_grad():
            for s in src:
                x = torch.tensor([enc(s)], device=device)
                g = model.generate(x, num_beams=beams, do_sample=False, max_new_tokens=args.max_new_tokens,
                                   forced_bos_token_id=tgt_id, length_penalty=1.0, early_stopping=False)
                ids = g[0].tolist()
                outs.append({"ids": ids, "text": dec(ids)})
        hyp = [o["text"] for o in outs]
        bleu = sacrebleu.corpus_bleu(hyp, [ref], tokenize="char").score
        chrf = sacrebleu.corpus_chrf(hyp, [ref]).score
        runs[name] = {"bleu_char": bleu, "chrf": chrf, "seconds": time.time() - t0, "outputs": outs}
        print(f"{name}: char BLEU {bleu:.2f} chrF {chrf:.2f} ({time.time() - t0:.1f}s)", flush=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"model": args.model, "sacrebleu": sacrebleu.__version__, "runs": runs}, f,
                  ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
