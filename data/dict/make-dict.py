#!/usr/bin/env python3
"""make-dict.py - turns terms.txt (software terms with katakana readings and
accents) into software-terms.csv, the naist-jdic format user dictionary
that src/tts compiles with Open JTalk's mecab-dict-index at build time.

Open JTalk's text2mecab turns ASCII into full-width characters before
mecab sees the text, so surfaces are written full-width. Each term gets
the spellings people type: as given, lower case, upper case, capitalized
capitalized, Title Case (units keep their exact case: MB is not mb). Run it after editing
terms.txt:  data/dict/make-dict.py  (the CSV is committed)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SMALL = set("ァィゥェォャュョヮ")
KATAKANA = set(chr(c) for c in range(0x30A1, 0x30FB)) | {"ー"}
CLASSES = {  # left/right context id (naist-jdic), POS fields
    "n": (1345, "名詞,一般,*,*"),
    "p": (1348, "名詞,固有名詞,一般,*"),
    "u": (1360, "名詞,接尾,助数詞,*"),
}
COST = 2000  # below naist-jdic's 3000-13000: our reading wins for the whole word


def fullwidth(s):
    return "".join("\u3000" if c == " " else chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s)


def morae(kana):
    return sum(1 for c in kana if c not in SMALL)


def default_accent(kana):
    # Loanword rule: nucleus on the third mora from the end, moved forward
    # off moras that cannot carry it (ー, ッ, ン).
    m = [c for c in kana if c not in SMALL]
    i = max(len(m) - 3, 0)
    while i > 0 and m[i] in "ーッン":
        i -= 1
    return i + 1


def main():
    out, seen, terms = [], set(), 0
    with open(os.path.join(HERE, "terms.txt"), encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) < 2:
                sys.exit(f"terms.txt:{lineno}: need SURFACE<TAB>KATAKANA")
            surface, kana = cols[0], cols[1]
            acc = cols[2] if len(cols) > 2 and cols[2] else ""
            cls = cols[3] if len(cols) > 3 and cols[3] else "n"
            if cls not in CLASSES:
                sys.exit(f"terms.txt:{lineno}: class must be n, p or u")
            if not kana or any(c not in KATAKANA for c in kana):
                sys.exit(f"terms.txt:{lineno}: reading '{kana}' must be katakana only")
            n = morae(kana)
            a = int(acc) if acc else default_accent(kana)
            if not 0 <= a <= n:
                sys.exit(f"terms.txt:{lineno}: accent {a} outside 0..{n}")
            terms += 1
            spellings = [surface] if cls == "u" else [surface, surface.lower(), surface.upper(),
                                                      surface[:1].upper() + surface[1:].lower(),
                                                      " ".join(w[:1].upper() + w[1:] for w in surface.split(" "))]
            cid, pos = CLASSES[cls]
            for s in spellings:
                fw = fullwidth(s)
                if fw in seen:
                    continue
                seen.add(fw)
                out.append(f"{fw},{cid},{cid},{COST},{pos},*,*,{fw},{kana},{kana},{a}/{n},C1")
    with open(os.path.join(HERE, "software-terms.csv"), "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    print(f"make-dict: {terms} terms, {len(out)} entries -> software-terms.csv")


if __name__ == "__main__":
    main()
