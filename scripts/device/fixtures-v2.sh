#!/usr/bin/env bash
# fixtures-v2.sh - remakes the engine's tiny parity fixtures alone (the
# committed tests/fixtures/mt/ came from this run): make-mt-fixtures.py with
# its brief training, so greedy and beam outputs are varied sequences that
# end with </s>. Carries .device/ as fixtures-and-demo.sh does.
set -uo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 LD_LIBRARY_PATH=$PWD/.device/lib
OUT=${OUT:?}
mkdir -p "$OUT/fx"
python3 scripts/fixtures/make-mt-fixtures.py --spm .device/fixture-spm.model --out "$OUT/fx/mt" \
  --lang-map .device/nllb-200-1.3B.special_tokens_map.json --data .device/data > "$OUT/fixtures.log" 2>&1
echo "fixtures rc=$?"
grep -E "brief|greedy on|cases|Nllb|Error|error" "$OUT/fixtures.log" | tail -30
(cd "$OUT/fx" && tar czf ../fixtures.tgz mt) && rm -rf "$OUT/fx"
