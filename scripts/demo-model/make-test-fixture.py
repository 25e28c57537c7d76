#!/usr/bin/env python3
"""make-test-fixture.py - tests/fixtures/demo/hf-greedy-100.jsonl: the first
100 sentences of the test set (prepared like the training data) with HF
transformers' greedy fp32 output for the demo model (ids and text, from
hf-test.json made by eval-hf.py). test_demo_model checks our engine against it.

  make-test-fixture.py ../shared tests/fixtures/demo/hf-test.json tests/fixtures/demo/hf-greedy-100.jsonl
"""
import importlib.util
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("ev", os.path.join(HERE, "evaluate.py"))
ev = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ev)

shared, hf_path, out = sys.argv[1:4]
en, _ = ev.prepared_test(shared)
with open(hf_path, encoding="utf-8") as f:
    runs = json.load(f)["runs"]
with open(out, "w", encoding="utf-8") as f:
    for i in range(100):
        g = runs["greedy_fp32"]["outputs"][i]
        b = runs["beam4_fp32"]["outputs"][i]
        f.write(json.dumps({"source": en[i], "greedy_ids": g["ids"], "greedy_text": g["text"],
                            "beam4_ids": b["ids"], "beam4_text": b["text"]}, ensure_ascii=False) + "\n")
