#!/usr/bin/env python3
"""hf-cpu-timing-cfg.py CONFIG_JSON [THREADS] - the peer of `bench_nllb
--device cpu` on the GPU machine's host (no model files travel there): HF
transformers fp32 on the CPU doing the same work as bench_nllb (encode a
20-token source, then exactly 24 forced decode steps at batch 1; greedy and
beam 4) with an NLLB-200-distilled-600M-shaped model of random weights built
from the config. Median of 3 after a warm-up. One JSON line per run."""
import json
import statistics
import sys
import time

import torch
from transformers import M2M100Config, M2M100ForConditionalGeneration

cfg = M2M100Config.from_dict(json.load(open(sys.argv[1])))
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 16
torch.set_num_threads(threads)
torch.manual_seed(0)
model = M2M100ForConditionalGeneration(cfg).float().eval()
src = torch.tensor([[256047] + list(range(1000, 1018)) + [2]])   # 20 tokens
for beams in (1, 4):
    times = []
    for rep in range(4):
        t = time.perf_counter()
        with torch.no_grad():
            out = model.generate(src, num_beams=beams, do_sample=False, min_new_tokens=25, max_new_tokens=25,
                                 forced_bos_token_id=256079)
        times.append((time.perf_counter() - t) * 1000)
    assert out.shape[1] == 26, out.shape
    print(json.dumps({"peer": f"HF transformers {torch.__version__}", "device": "cpu", "dtype": "float32",
                      "threads": threads, "beams": beams, "hf_ms_per_sentence": statistics.median(times[1:]),
                      "runs_ms": [round(x, 2) for x in times]}), flush=True)
