#!/usr/bin/env python3
"""hf-demo-gpu.py MODEL DATA_DIR LANG_MAP OURS_PREFIX - the demo model's 500
test sentences (DATA_DIR/test.en, test.ja: scripts/demo-model/prepare-data.py
output) with HF transformers on the GPU (greedy in bf16 and fp32, beam 4 in
fp32; batch 1, at most 64 new tokens, as scripts/demo-model/eval-hf.py)
against our engine's GPU outputs (test_cuda --demo ... OURS_PREFIX): how many
ids are identical in each direction of comparison, the sentences where they
differ (both texts), and the character BLEU of each side against test.ja.
Each HF dtype loads the checkpoint afresh (no bf16 -> fp32 round trip).
Ours in bf16 rounds its activations as HF's bf16 model does (the default);
where OURS_PREFIX-f32act-bf16-greedy.jsonl exists (test_cuda --demo run with
STTS_CUDA_BF16_ACTIVATIONS=0: bf16 weights, f32 activations), HF bf16 greedy
is compared with it too. The disagreements are split by which side kept the
f32 result. HF_DEMO_EXTRA="NAME=FILE,..." compares HF bf16 greedy with more
of our bf16 greedy outputs (test_cuda --demo files of other settings, e.g.
the cross-attention unfolded: STTS_CROSS_FOLD=0)."""
import json
import os
import sys

import sacrebleu
import sentencepiece as spm
import torch
from transformers import M2M100ForConditionalGeneration

model_dir, data, lang_map, prefix = sys.argv[1:5]
codes = json.load(open(lang_map))["additional_special_tokens"]
sp = spm.SentencePieceProcessor(model_file=os.path.join(model_dir, "sentencepiece.bpe.model"))
S = sp.get_piece_size()
src_id, tgt_id = S + 1 + codes.index("eng_Latn"), S + 1 + codes.index("jpn_Jpan")
enc = lambda t: [src_id] + [3 if i == 0 else i + 1 for i in sp.encode(t, out_type=int)] + [2]
dec = lambda ids: sp.decode([i - 1 for i in ids if 4 <= i <= S])
src = [l.rstrip("\n") for l in open(os.path.join(data, "test.en"), encoding="utf-8")]
ref = [l.rstrip("\n") for l in open(os.path.join(data, "test.ja"), encoding="utf-8")]
ours = {k: [json.loads(l) for l in open(f"{prefix}-{k}.jsonl")] for k in ("greedy", "beam4", "bf16-greedy", "int8-greedy")}
if os.path.exists(f"{prefix}-f32act-bf16-greedy.jsonl"):
    ours["f32act-bf16-greedy"] = [json.loads(l) for l in open(f"{prefix}-f32act-bf16-greedy.jsonl")]
extra = [e.split("=", 1) for e in os.environ.get("HF_DEMO_EXTRA", "").split(",") if "=" in e]
for k, path in extra:
    ours[k] = [json.loads(l) for l in open(path)]
bleu = lambda hyp: sacrebleu.corpus_bleu(hyp, [ref], tokenize="char").score
for k, v in ours.items():
    print(f"ours (GPU) {k}: char BLEU {bleu([o['text'] for o in v]):.2f}")
for name, dtype, beams, mine in (("greedy_bf16", torch.bfloat16, 1, "bf16-greedy"),
                                 ("greedy_fp32", torch.float32, 1, "greedy"), ("beam4_fp32", torch.float32, 4, "beam4")):
    m = M2M100ForConditionalGeneration.from_pretrained(model_dir, dtype=dtype).cuda().eval()
    outs = []
    with torch.no_grad():
        for s in src:
            g = m.generate(torch.tensor([enc(s)], device="cuda"), num_beams=beams, do_sample=False,
                           max_new_tokens=64, forced_bos_token_id=tgt_id, length_penalty=1.0, early_stopping=False)
            outs.append(g[0].tolist())
    mine_v = ours[mine]
    same = sum(a == b["ids"] for a, b in zip(outs, mine_v))
    print(f"HF GPU {name}: char BLEU {bleu([dec(o) for o in outs]):.2f}; ids identical to ours (GPU {mine}): "
          f"{same}/{len(src)} = {100.0 * same / len(src):.1f}%")
    for other in ("bf16-greedy", "f32act-bf16-greedy", *[k for k, _ in extra]) if name == "greedy_bf16" else ():
        if other not in ours:
            continue
        v, f32 = ours[other], ours["greedy"]
        same = sum(a == b["ids"] for a, b in zip(outs, v))
        diff = [i for i in range(len(src)) if outs[i] != v[i]["ids"]]
        ours_f32 = sum(v[i]["ids"] == f32[i]["ids"] for i in diff)
        hf_f32 = sum(outs[i] == f32[i]["ids"] for i in diff)
        print(f"HF GPU {name} vs ours (GPU {other}): {same}/{len(src)} = {100.0 * same / len(src):.1f}% identical; of the "
              f"{len(diff)} differences ours == f32 on {ours_f32}, HF == f32 on {hf_f32}, neither on "
              f"{len(diff) - ours_f32 - hf_f32}")
    json.dump(outs, open(f"{prefix}-hf-{name}.json", "w"))
    shown = 0
    for i, (a, b) in enumerate(zip(outs, mine_v)):
        if a != b["ids"] and shown < 8:
            shown += 1
            print(f"  line {i + 1}: HF \"{dec(a)}\" | ours \"{b['text']}\"")
