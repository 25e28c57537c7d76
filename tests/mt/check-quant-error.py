#!/usr/bin/env python3
"""check-quant-error.py NLLB_QUANT_ERROR MODEL_DIR - runs tools/nllb-check's
nllb-quant-error on the demo model and checks each weight format's logit
error against f32 at teacher-forced positions (docs/QUALITY.md has the full
run). Bounds are ~3x the measured medians (bf16 3.3e-3, int8 2.1e-2 on
2026-11-29), and each lossy format must differ from f32 at all: a format
that silently fell back to f32 fails here, as does a kernel that drifts."""
import json
import subprocess
import sys

tool, model = sys.argv[1], sys.argv[2]
p = subprocess.run([tool, "--model", model, "--sources", "8", "--positions", "8", "--threads", "2",
                    "--weights", "f16,bf16,int8"], capture_output=True, text=True, timeout=300)
sys.stderr.write(p.stderr)
if p.returncode != 0:
    sys.exit(f"nllb-quant-error exited {p.returncode}")
res = {r["weights"]: r for r in map(json.loads, p.stdout.splitlines())}
fails = []
# The demo model's file is f16: f16 compute uses it in place, bit for bit the f32 path's input.
if res["f16"]["rel_err_max"] != 0:
    fails.append(f"f16 differs from f32 on an f16 file: {res['f16']['rel_err_max']:.3g}")
for w, lo, hi, top1 in (("bf16", 1e-4, 1e-2, 0.97), ("int8", 1e-3, 6e-2, 0.90)):
    r = res[w]
    if not lo < r["rel_err_median"] < hi:
        fails.append(f"{w}: median relative logit error {r['rel_err_median']:.3g} outside ({lo:g}, {hi:g})")
    if r["top1_agree"] < top1 * r["positions"]:
        fails.append(f"{w}: arg-max agrees at {r['top1_agree']}/{r['positions']} positions (< {top1:.0%})")
for f in fails:
    print("FAIL:", f)
print("check-quant-error:", "ok" if not fails else f"{len(fails)} failures")
sys.exit(1 if fails else 0)
