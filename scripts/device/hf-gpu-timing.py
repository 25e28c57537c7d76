#!/usr/bin/env python3
"""hf-gpu-timing.py CONFIG_JSON - the peer of `bench_nllb --device cuda`: HF
transformers on the same GPU doing the same work (encode a 20-token source,
then exactly 24 forced decode steps at batch 1; greedy and beam 4) with an
NLLB-200-distilled-600M-shaped model of random weights, in bf16 and fp32.
Median of 5 after 2 warm-ups, CUDA-synchronized wall clock. One JSON line
per run (hf_ms_per_sentence)."""
import json
import statistics
import sys
import time

import torch
from transformers import M2M100Config, M2M100ForConditionalGeneration

cfg = M2M100Config.from_dict(json.load(open(sys.argv[1])))
torch.manual_seed(0)
with torch.device("cuda"):
    model = M2M100ForConditionalGeneration(cfg).eval()
src = torch.tensor([[256047] + list(range(1000, 1018)) + [2]], device="cuda")   # 20 tokens
for dtype in (torch.bfloat16, torch.float32):
    model = model.to(dtype)
    for beams in (1, 4):
        times = []
        for rep in range(7):
            torch.cuda.synchronize()
            t = time.perf_counter()
            with torch.no_grad():
                out = model.generate(src, num_beams=beams, do_sample=False, min_new_tokens=25, max_new_tokens=25,
                                     forced_bos_token_id=256079)
            torch.cuda.synchronize()
            times.append((time.perf_counter() - t) * 1000)
        assert out.shape[1] == 26, out.shape
        print(json.dumps({"peer": f"HF transformers {torch.__version__}", "dtype": str(dtype).split(".")[-1],
                          "beams": beams, "hf_ms_per_sentence": statistics.median(times[2:]),
                          "runs_ms": [round(x, 2) for x in times], "gpu": torch.cuda.get_device_name(0)}),
              flush=True)
