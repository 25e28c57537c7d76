#!/usr/bin/env bash
# train-spm.sh DATA_DIR OUT_PREFIX [VOCAB] - trains the demo model's
# SentencePiece BPE model with Debian's spm_train on both sides of the
# prepared corpus (prepare-data.py output). NLLB's spm model uses the same
# specials (unk=0, bos=1, eos=2, no pad), which the NLLB id layout relies on.
set -euo pipefail
data=$1; out=$2; vocab=${3:-8000}
cat "$data/train.en" "$data/train.ja" > "$out.corpus.txt"
spm_train --input="$out.corpus.txt" --model_prefix="$out" --vocab_size="$vocab" \
  --model_type=bpe --character_coverage=0.9995 --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 \
  --input_sentence_size=200000 --shuffle_input_sentence=true --seed_sentencepiece_size=200000 \
  --num_threads=2 --minloglevel=1
rm -f "$out.corpus.txt"
