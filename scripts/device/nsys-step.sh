#!/usr/bin/env bash
# nsys-step.sh - where a decode step's time goes on the GPU, in place (not
# kernel by kernel as Nsight Compute measures them): Nsight Systems traces
# bench_nllb (bf16, greedy and beam 4, graphs traced node by node), and for
# every kernel of the timed decode steps we take its duration and the time
# from its start to the next kernel's start (its cost on the step's critical
# path when kernels overlap under programmatic dependent launch), summed by
# kernel name. Run from the repository root with .device/cuda carried.
# Usage: bash .device/cuda/nsys-step.sh [WEIGHTS]
set -uo pipefail
C=.device/cuda
W=${1:-bf16}
OUT=${OUT:-/tmp/nsys-out}; mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PWD/$C/lib
NSYS=$(command -v nsys || ls /usr/local/cuda*/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
[ -n "$NSYS" ] || { echo "nsys-step: no nsys on this machine"; exit 0; }
"$NSYS" profile -o /tmp/step --force-overwrite true --trace cuda --cuda-graph-trace node \
  $C/bin/bench_nllb --device cuda --weights "$W" --reps 1 >"$OUT/nsys-profile.log" 2>&1
echo "nsys profile rc=$?"
"$NSYS" stats --report cuda_gpu_trace --format csv --output /tmp/step /tmp/step.nsys-rep >/dev/null 2>&1
f=$(ls /tmp/step*cuda_gpu_trace*.csv 2>/dev/null | head -1)
[ -n "$f" ] || { echo "nsys-step: no trace csv"; ls /tmp/step*; exit 0; }
python3 - "$f" <<'PY'
import csv, sys, re, collections
rows = list(csv.DictReader(open(sys.argv[1])))
ks = []
for r in rows:
    name = r.get('Name', '')
    if 'memcpy' in name.lower() or 'memset' in name.lower(): ks.append((int(r['Start (ns)']), int(r['Duration (ns)']), '[' + name + ']')); continue
    ks.append((int(r['Start (ns)']), int(r['Duration (ns)']), re.sub(r'\(.*', '', name).replace(' ', '')))
ks.sort()
# the decode steps: the last select_sum marks each step's end; take the
# steps of the last greedy run = the 24 steps before the beam run's encoder
sel = [i for i, k in enumerate(ks) if k[2].startswith('select_sum')]
print('kernels', len(ks), 'selects', len(sel))
def summary(lo, hi, label):
    by = collections.defaultdict(lambda: [0, 0.0, 0.0])
    for i in range(lo, hi):
        s, d, n = ks[i]
        nxt = ks[i + 1][0] if i + 1 < len(ks) else s + d
        by[n][0] += 1; by[n][1] += d / 1e3; by[n][2] += (nxt - s) / 1e3
    steps = max(1, sum(1 for i in range(lo, hi) if ks[i][2].startswith('select_sum')))
    tot = (ks[hi][0] - ks[lo][0]) / 1e3
    print(f'== {label}: {steps} steps, {tot:.1f} us from first to last start, {tot/steps:.1f} us per step')
    for n, (c, d, g) in sorted(by.items(), key=lambda kv: -kv[1][2]):
        print(f'  {n[:44]:44s} n/step={c/steps:6.1f} dur/step={d/steps:7.1f} us  start-to-next/step={g/steps:7.1f} us  mean dur={d/c:6.2f} us')
# steps: consecutive selects with ~100+ kernels between them; take the 2nd..9th of the first long run
if len(sel) > 10:
    summary(sel[1] + 1, sel[9] + 1, 'greedy steps 3-10 of the first run')
    # beam: find a later run of selects
    summary(sel[-9] + 1, sel[-1] + 1, 'last 8 steps of the trace')
PY
