#!/usr/bin/env python3
"""train-demo-model.py - trains models/demo-en-ja: a small English-to-Japanese
M2M100 (NLLB's architecture) with NLLB's tokenizer conventions, so the engine,
the pipeline and the tests produce real Japanese where the real NLLB weights
cannot be downloaded. Needs torch + transformers + sentencepiece; about 5
minutes on one H100.

  scripts/demo-model/prepare-data.py ../shared/data/small_parallel_enja DATA
  scripts/demo-model/train-spm.sh DATA DATA/spm 8000          (Debian's spm_train)
  scripts/train-demo-model.py --data DATA --spm DATA/spm.model --out models/demo-en-ja

Recipe (fixed seeds): d_model 256, 3+3 layers, 4 heads, FFN 1024, dropout
0.1, label smoothing 0.1, AdamW (0.9, 0.98) at 1e-3 with 1000 warm-up steps
and inverse-square-root decay, 256 sentences a batch, bf16 autocast, 30
epochs (about 9 s each on an H100); the final weights are stored in fp16
(about 15 MB). --average-last N averages the last N epochs instead.
Trained on train only; dev picks nothing but is printed per epoch (greedy character BLEU) so the curve can be seen; test is never read.

Ids follow NLLB: <s>=0 <pad>=1 </s>=2 <unk>=3, spm piece k -> k+1, the 202
language codes at spm_size+1+i, <mask> after them, vocab padded by 2.
Source = [eng_Latn] tokens </s>; labels = [jpn_Jpan] tokens </s>; the decoder
input is labels shifted right behind </s> (decoder_start_token_id), exactly
what generate() with forced_bos_token_id=jpn_Jpan reproduces.
"""
import argparse
import json
import math
import os
import random
import shutil
import sys
import time

import sacrebleu
import sentencepiece as spm
import torch
from transformers import M2M100Config, M2M100ForConditionalGeneration

HERE = os.path.dirname(os.path.abspath(__file__))
LANG_MAP = os.path.join(HERE, "..", "..", "shared", "nllb", "nllb-200-1.3B.special_tokens_map.json")


class Layout:
    def __init__(self, sp, codes):
        self.sp = sp
        self.S = sp.get_piece_size()
        self.lang_id = {c: self.S + 1 + i for i, c in enumerate(codes)}
        self.vocab_size = self.S + 1 + len(codes) + 1 + 2

    def encode(self, text):
        return [3 if i == 0 else i + 1 for i in self.sp.encode(text, out_type=int)]

    def decode(self, ids):
        return self.sp.decode([i - 1 for i in ids if 4 <= i <= self.S])


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f]


def batches(pairs, bs, rng):
    # Sort within shuffled buckets so a batch holds similar lengths (less padding).
    idx = list(range(len(pairs)))
    rng.shuffle(idx)
    chunks = [idx[i:i + bs * 50] for i in range(0, len(idx), bs * 50)]
    out = []
    for c in chunks:
        c.sort(key=lambda i: len(pairs[i][0]))
        out += [c[i:i + bs] for i in range(0, len(c), bs)]
    rng.shuffle(out)
    return out


def collate(pairs, ids, device):
    src = [pairs[i][0] for i in ids]
    tgt = [pairs[i][1] for i in ids]
    S = max(map(len, src))
    T = max(map(len, tgt))
    x = torch.full((len(ids), S), 1, dtype=torch.long)
    y = torch.full((len(ids), T), -100, dtype=torch.long)
    for k, (s, t) in enumerate(zip(src, tgt)):
        x[k, :len(s)] = torch.tensor(s)
        y[k, :len(t)] = torch.tensor(t)
    return x.to(device), (x != 1).long().to(device), y.to(device)


@torch.no_grad()
def translate(model, lay, sents, device, num_beams=1, bs=250, max_new=64):
    model.eval()
    out = []
    for i in range(0, len(sents), bs):
        enc = [[lay.lang_id["eng_Latn"]] + lay.encode(s) + [2] for s in sents[i:i + bs]]
        L = max(map(len, enc))
        x = torch.tensor([e + [1] * (L - len(e)) for e in enc], device=device)
        gen = model.generate(input_ids=x, attention_mask=(x != 1).long(), num_beams=num_beams,
                             do_sample=False, max_new_tokens=max_new,
                             forced_bos_token_id=lay.lang_id["jpn_Jpan"])
        out += [lay.decode(g.tolist()) for g in gen]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="prepare-data.py output (train/dev .en/.ja)")
    ap.add_argument("--spm", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--lang-map", default=LANG_MAP)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--average-last", type=int, default=1, help="average the last N epochs' weights")
    ap.add_argument("--max-seconds", type=float, default=420, help="stop early (still saving) past this")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with open(args.lang_map, encoding="utf-8") as f:
        codes = json.load(f)["additional_special_tokens"]
    sp = spm.SentencePieceProcessor(model_file=args.spm)
    lay = Layout(sp, codes)

    tr_en, tr_ja = read_lines(f"{args.data}/train.en"), read_lines(f"{args.data}/train.ja")
    dv_en, dv_ja = read_lines(f"{args.data}/dev.en"), read_lines(f"{args.data}/dev.ja")
    src_id, tgt_id = lay.lang_id["eng_Latn"], lay.lang_id["jpn_Jpan"]
    pairs = [([src_id] + lay.encode(e) + [2], [tgt_id] + lay.encode(j) + [2]) for e, j in zip(tr_en, tr_ja)]
    print(f"train pairs {len(pairs)}, vocab {lay.vocab_size}, device {device}", flush=True)

    cfg = M2M100Config(
        vocab_size=lay.vocab_size, d_model=256, encoder_layers=3, decoder_layers=3,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=1024, decoder_ffn_dim=1024,
        max_position_embeddings=256, scale_embedding=True, activation_function="relu", dropout=0.1,
        attention_dropout=0.1, activation_dropout=0.0, encoder_layerdrop=0.0, decoder_layerdrop=0.0,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2, tie_word_embeddings=True)
    model = M2M100ForConditionalGeneration(cfg).to(device)
    model.generation_config.max_length = 200
    nparams = sum(p.numel() for p in model.parameters())
    print(f"parameters {nparams} ({nparams * 2 / 1e6:.1f} MB in fp16)", flush=True)

    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=0.01)
    warm = 1000
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, math.sqrt(warm / (s + 1))))
    lossf = torch.nn.CrossEntropyLoss(label_smoothing=0.1, ignore_index=-100)
    rng = random.Random(args.seed)
    snaps = []
    t0 = time.time()
    step = 0
    for epoch in range(1, args.epochs + 1):
        model.train()
        tot, n = 0.0, 0
        for ids in batches(pairs, 256, rng):
            x, m, y = collate(pairs, ids, device)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=(device == "cuda")):
                logits = model(input_ids=x, attention_mask=m, labels=y).logits
            loss = lossf(logits.float().view(-1, logits.size(-1)), y.view(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            tot += loss.item()
            n += 1
        if epoch > args.epochs - args.average_last:
            snaps.append({k: v.detach().float().cpu().clone() for k, v in model.state_dict().items()})
        msg = f"epoch {epoch:3d} step {step:6d} loss {tot / n:.4f} {time.time() - t0:6.1f}s"
        # Dev score every epoch; greedy decoding draws no random numbers, so
        # it does not change the training run.
        hyp = translate(model, lay, dv_en, device)
        msg += f" dev chrBLEU {sacrebleu.corpus_bleu(hyp, [dv_ja], tokenize='char').score:.2f}"
        print(msg, flush=True)
        if time.time() - t0 > args.max_seconds:
            print(f"time budget reached after epoch {epoch}", flush=True)
            if not snaps:
                snaps.append({k: v.detach().float().cpu().clone() for k, v in model.state_dict().items()})
            break

    avg = {k: sum(s[k] for s in snaps) / len(snaps) for k in snaps[0]}
    model.load_state_dict(avg)
    hyp = translate(model, lay, dv_en, device)
    print(f"averaged {len(snaps)} snapshots: dev chrBLEU "
          f"{sacrebleu.corpus_bleu(hyp, [dv_ja], tokenize='char').score:.2f}", flush=True)

    os.makedirs(args.out, exist_ok=True)
    model = model.to("cpu").half()
    model.save_pretrained(args.out)
    shutil.copy(args.spm, os.path.join(args.out, "sentencepiece.bpe.model"))
    print("saved", args.out, sorted(os.listdir(args.out)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
