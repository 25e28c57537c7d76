#!/usr/bin/env python3
"""prepare-data.py - turns the tokenized, lowercased small_parallel_enja corpus
into natural text, the form stream-tts will see at run time:

  English: "i can 't tell who will arrive first ."  ->  "I can't tell who will arrive first."
  Japanese: "誰 が 一番 に 着 く か ..."              ->  "誰が一番に着くか..."

English sentence case is restored (first letter, the pronoun I, and a list of
names, places, languages, days and months that are unambiguous in this corpus).
Standard library only. Usage:
  prepare-data.py SRC_DIR OUT_DIR     (SRC_DIR = ../shared/data/small_parallel_enja)
writes OUT_DIR/{train,dev,test}.{en,ja}.
"""
import os
import re
import sys

# Words capitalized wherever they appear. "may", "march", "bill", "will" are
# left alone: in this corpus they are mostly common words.
PROPER = """tom mary john jim bob ken jane mike lucy betty paul nancy alice susan fred jack meg
emi taro hanako tony judy kate lisa linda george henry smith brown jones white lincoln
japan tokyo kyoto osaka hokkaido kobe nara london paris america england britain france germany
italy spain china korea india canada australia africa europe asia hawaii boston chicago
california washington english japanese american french german italian spanish chinese korean
british european african canadian australian indian sunday monday tuesday wednesday thursday
friday saturday january february april june july august september october november december
christmas mr mrs ms dr""".split()
PROPER_RE = re.compile(r"\b(" + "|".join(PROPER) + r")\b")
MULTI = {"new york": "New York", "los angeles": "Los Angeles", "mt. fuji": "Mt. Fuji",
         "san francisco": "San Francisco", "united states": "United States"}


def detok_en(line: str) -> str:
    s = " " + line.strip() + " "
    s = s.replace(" `` ", ' "').replace(" '' ", '" ')
    # Clitics the tokenizer split off: "can 't", "it 's", "o 'clock".
    s = re.sub(r" '(t|s|m|ll|ve|d|re|clock)\b", r"'\1", s)
    s = re.sub(r" n't\b", "n't", s)
    s = re.sub(r" ([.,!?;:%])", r"\1", s)
    s = re.sub(r"\$ ", "$", s)
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"\bi\b", "I", s)
    s = re.sub(r"\bi'(m|ll|ve|d)\b", r"I'\1", s)
    s = PROPER_RE.sub(lambda m: m.group(1).capitalize(), s)
    for k, v in MULTI.items():
        s = s.replace(k, v)
    if s:
        s = s[0].upper() + s[1:]
    return s


def detok_ja(line: str) -> str:
    toks = line.strip().split()
    out = ""
    for t in toks:
        # Keep one space only between two Latin/digit tokens ("CD プレーヤー" has none).
        if out and re.match(r"[A-Za-z0-9]", t) and re.search(r"[A-Za-z0-9]$", out):
            out += " "
        out += t
    return out


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    src, dst = sys.argv[1], sys.argv[2]
    os.makedirs(dst, exist_ok=True)
    for split in ("train", "dev", "test"):
        for lang, fn in (("en", detok_en), ("ja", detok_ja)):
            with open(os.path.join(src, f"{split}.{lang}"), encoding="utf-8") as f, \
                 open(os.path.join(dst, f"{split}.{lang}"), "w", encoding="utf-8") as g:
                for line in f:
                    g.write(fn(line) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
