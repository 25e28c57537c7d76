# bench-lib.sh - sourced by the GPU-machine A/B scripts (C: the carried
# folder, .device/cuda). bench LABEL BINARY [ENV=VALUE...]: bench_nllb
# (or a previous build's, bin/bench_nllb_old) with bf16 and int8 weights,
# full LM head and 32000 rows, one line per weight format and search mode:
# LABEL weights rows search, ms a sentence, a step, the encoder.
bench() {
  local label=$1 bin=$2; shift 2
  for sl in 0 32000; do
    env "$@" timeout 120 "$C/bin/$bin" --device cuda --weights bf16,int8 --shortlist-rows $sl --reps 5 --json 2>&1 |
      grep '^{' | LABEL="$label" python3 -c "import json, os, sys
for l in sys.stdin:
    d = json.loads(l)
    print(os.environ['LABEL'], d['weights'], d['shortlist_rows'], d['search'], 'sentence', d['ms_per_sentence'],
          'step', d['ms_per_step'], 'encode', d['encode_ms'])"
  done
}
# same_ids A B WHAT: whether two files of a demo run's ids are byte-identical
same_ids() {
  if cmp -s "$1" "$2"; then echo "== same ids, $3"; else echo "== IDS DIFFER, $3"; fi
}
