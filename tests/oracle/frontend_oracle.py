#!/usr/bin/env python3
"""frontend_oracle.py - an independent reference for which assistant text
stream-tts speaks. Written from the rules in docs/FRONTEND.md, not from the C
code (src/ingest, src/text); Python standard library only.

From a stream-json file (what `claude -p --output-format stream-json` writes,
the default input mode of `stream-tts`, default flags) it computes, in stream
order:
  spoken    texts whose words must all be spoken, in this order;
  uncertain texts the rules leave open (may be spoken or not, at most once);
  silent    texts that must never be spoken (tool calls and results,
            thinking, subagents, CLI error messages, a result of a turn
            that already spoke).
Each text is reduced by the cleaning rules (code, tables, comments, URLs,
paths, ...) to the words a listener hears. The comparison (check_frontend.py)
works on words, not sentences, so segmentation, merging and notice wording are
not part of this reference.

    frontend_oracle.py FILE.jsonl      prints {"spoken": [...], "uncertain": [...], "silent": [...]}
"""
import html
import json
import re
import sys

# --- cleaning rules (docs/FRONTEND.md "Cleaning rules") -----------------------

FENCE = re.compile(r"^\s*(?:>\s*)*(```|~~~)")
HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")
LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(?:\[[ xX]\]\s+)?")
QUOTE = re.compile(r"^\s*(?:>\s?)+")
RULE = re.compile(r"^\s*(?:(?:-\s*){3,}|(?:\*\s*){3,}|(?:_\s*){3,}|=+)\s*$")
TRAILER = re.compile(r"^\s*(?:Co-Authored-By:|.*Generated with \[Claude Code\])", re.I)
URL = re.compile(r"<?(?:https?|ftp)://([\w.-]+(?::\d+)?)[!-~]*?(?=[\s<>()\[\]`]|[^\x00-\x7f]|$|[.,;:!?]*(?:\s|$))>?",
                 re.A)
PATH = re.compile(r"(?:~|\.\.?)?/?[\w.~-]+(?:/[\w.~-]*)+", re.A)
WWW = re.compile(r"\bwww\.")


def strip_blocks(text):
    """Line level: drops fenced and indented code, tables, rules, trailers;
    removes heading, list and quote markers. Returns the prose lines."""
    text = re.sub(r"<system-reminder>.*?</system-reminder>", " ", text, flags=re.S)
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    out, fence, prev_blank, in_list, icode = [], None, True, False, False
    for line in text.split("\n"):
        m = FENCE.match(line)
        if fence:
            if m and m.group(1) == fence:
                fence = None
            continue
        if m:
            fence = m.group(1)
            continue
        blank = not line.strip()
        if not blank and line.startswith("    ") and (icode or (prev_blank and not in_list)):
            icode, prev_blank = True, False  # indented code after a blank line (not in a list): omitted
            continue
        icode = icode and blank
        if line.lstrip().startswith("|"):
            out.append(None)  # table row: "Table, N rows, omitted." (a notice)
            prev_blank = False
            continue
        if RULE.match(line) or TRAILER.match(line):
            out.append("")
            prev_blank = False
            continue
        in_list = bool(LIST.match(line)) or (in_list and not blank)
        line = QUOTE.sub("", line)
        line = HEADING.sub("", line)
        line = LIST.sub("", line)
        out.append(line)
        prev_blank = blank
    return "\n".join(l for l in out if l is not None)


def long_path_last(m):
    """Word layer: long paths (absolute, ~/, ./, or two or more separators)
    become their last component; one separator stays (src/main.c)."""
    core = m.group(0).rstrip(".")
    if re.fullmatch(r"[\d/.-]+", core):  # dates, fractions
        return m.group(0)
    if not (core.startswith(("/", "~/", "./", "../")) or core.count("/") >= 2):
        return m.group(0)
    return core.rstrip("/").rsplit("/", 1)[-1] + m.group(0)[len(core):]


def clean(text):
    """Markdown of one text block -> the words a listener hears, as text."""
    text = strip_blocks(text)
    text = re.sub(r"\[\^[^\]\s]+\]", " ", text)                       # footnote markers
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)            # [text](url), images: alt
    text = re.sub(r"!?\[([^\]]*)\]\[[^\]]*\]", r"\1", text)           # [text][ref]
    text = URL.sub(lambda m: " " + WWW.sub("", m.group(1)) + " ", text)  # autolinks, bare URLs: domain
    text = re.sub(r"</?[A-Za-z][^<>]*>", " ", text)                    # HTML tags
    text = html.unescape(text)                                        # entities
    text = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)                # backslash escapes
    text = text.replace("`", " ")                                     # inline code: words verbatim
    return " ".join(PATH.sub(long_path_last, text).split())


# --- words --------------------------------------------------------------------

CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"
TOKEN = re.compile(rf"[{CJK}]|[^\W_{CJK}]+")


def words(text):
    """Case-folded words; a CJK character (Hangul syllables too: a particle
    joins its noun where cited spans split a sentence) is a word of its own
    (long CJK sentences are cut anywhere), camelCase splits at its humps (an
    identifier may be read as separate words)."""
    out = []
    for t in TOKEN.findall(text):
        for p in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+|[^\W\d_A-Za-z]+|.", t):
            out.append(p.lower())
    return out


# --- which text (docs/FRONTEND.md "Ingestion rules") ---------------------------

SILENT_SUBTYPE_ERROR = re.compile(r"^error")


# A text block stopping mid-sentence is continued by the next text block of
# its message (cited spans) when the seam has a space or punctuation, or is in
# a script written without spaces; such a block is no repeated line.
UNSPACED = re.compile("[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u2e80-\u9fff\uac00-\ud7af"
                      "\uf900-\ufaff\uff00-\uffef\U00020000-\U0003ffff]")
SENT_END = "\n.!?\u3002\uff01\uff1f\uff0e\u2026"


def ends_mid(t):
    t = t.rstrip(" \t").rstrip("*_`)]\"'")
    return bool(t) and t[-1] not in "\n\r.!?:;\u3002\uff01\uff1f\uff0e\u2026"


def open_unspaced(t, before):
    """Does the sentence left open at t's end hold an unspaced script?"""
    flag = before
    for ch in t:
        if ch in SENT_END:
            flag = False
        elif UNSPACED.match(ch):
            flag = True
    return flag


def continues(prev, unspaced, nxt):
    if not nxt:
        return False
    if prev[-1:] in (" ", "\t") or nxt[0] in " \t\n,.;:!?)]":
        return True
    if prev and UNSPACED.match(prev[-1]):
        return True
    return unspaced and bool(UNSPACED.match(nxt[0]))


def minus_words(ws, said):
    """ws without the words of said, taken in order (a subsequence): what a
    result holds beyond the block said before it."""
    out, j = [], 0
    for w in ws:
        if j < len(said) and w == said[j]:
            j += 1
        else:
            out.append(w)
    return out


def pieces(blk):
    """A block with a lost line at blk[2]: (before, fragments, after), the
    word cut at the gap going to the fragments."""
    pre, post = blk[0][:blk[2]], blk[0][blk[2]:]
    frag = ""
    if re.search(r"\w$", pre) and re.match(r"\w", post):
        a, b = re.search(r"\w+$", pre), re.match(r"\w+", post)
        frag = a.group(0) + " " + b.group(0)
        pre, post = pre[:a.start()], post[b.end():]
    return pre, frag, post


class Oracle:
    def __init__(self):
        self.out = []           # (class, text) in stream order
        self.turn_spoke = False
        self.streamed = {}      # message.id -> {index: [text, stopped, gap, filled, message.id]}
        self.open_index = {}    # message.id -> index of the open text block
        self.seen = set()       # (message.id, text) spoken from assistant lines
        self.open = None        # (message.id, text, unspaced): the last block said stopped mid-sentence
        self.turn_lost = False  # a line lost this turn may have been the main agent's assistant text
        self.last_text = ""
        self.pending = None     # a block said around a lost line, its complete line not come yet
        self.cur = None         # the message streaming (its message_start may be lost)
        self.msg_done = False   # its message_stop came

    def add(self, cls, text):
        if cls == "spoken" and text.strip():
            self.turn_spoke = True  # a notice ("Python code, 3 lines, omitted.") is speech too
            self.last_text = text   # the last text block said (a lost line's result repeats it)
        self.out.append((cls, text))

    def line(self, obj):
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            return
        t = obj["type"]
        sub = obj.get("parent_tool_use_id") is not None  # a subagent: silent (speak_subagents off)
        if t == "stream_event":
            self.event(obj.get("event"), sub)
        elif t == "assistant":
            self.assistant(obj, sub)
        elif t == "user":
            self.silent_content(obj.get("message"))
        elif t == "result":
            self.result(obj)

    def event(self, ev, sub):
        if not isinstance(ev, dict):
            return
        et = ev.get("type")
        if et == "message_start":
            m = ev.get("message") or {}
            self.cur = m.get("id")
            self.msg_done = False
            self.pending = None  # given up: the words at the gap stay fragments
        elif et == "content_block_start":
            self.pending = None
            if self.msg_done:
                # a block after message_stop: the next message's start was lost,
                # its id comes with its first assistant line
                self.cur = ("unknown", len(self.out))
                self.msg_done = False
            b = ev.get("content_block") or {}
            if b.get("type") == "text" and not sub:
                self.streamed.setdefault(self.cur, {})[ev.get("index")] = [b.get("text") or "", False, None, False, self.cur]
                self.open_index[self.cur] = ev.get("index")
        elif et == "content_block_delta":
            d = ev.get("delta") or {}
            if d.get("type") == "text_delta":
                if sub:
                    self.add("silent", d.get("text", ""))
                else:
                    blk = self.streamed.setdefault(self.cur, {}).setdefault(ev.get("index"), ["", False, None, False, self.cur])
                    blk[0] += d.get("text", "")
            elif d.get("type") == "thinking_delta":
                self.add("silent", d.get("thinking", ""))
            elif d.get("type") == "input_json_delta":
                self.add("silent", d.get("partial_json", ""))
        elif et == "content_block_stop":
            blk = self.streamed.get(self.cur, {}).get(ev.get("index"))
            if blk and not blk[1] and not sub:
                blk[1] = True
                self.say(blk)
            self.open_index.pop(self.cur, None)
        elif et == "message_stop":
            self.msg_done = True
            for idx, blk in sorted(self.streamed.get(self.cur, {}).items(), key=lambda kv: str(kv[0])):
                if not blk[1] and not sub:
                    blk[1] = True
                    self.say(blk)

    def assistant(self, obj, sub):
        m = obj.get("message")
        if not isinstance(m, dict):
            return
        mid = m.get("id")
        cur = self.cur
        if isinstance(cur, tuple) and cur in self.streamed and mid not in self.streamed and not sub:
            self.streamed[mid] = self.streamed.pop(cur)  # the lost message_start's id
            if cur in self.open_index:
                self.open_index[mid] = self.open_index.pop(cur)
            if self.pending is not None and self.pending[4] == cur:
                self.pending[4] = mid
            self.cur = mid
        err = obj.get("is_api_error_message") or obj.get("isApiErrorMessage") or \
            (m.get("model") == "<synthetic>")
        for b in m.get("content") or []:
            if not isinstance(b, dict):
                continue
            bt = b.get("type")
            if bt == "thinking":
                self.add("silent", b.get("thinking", ""))
            elif bt == "tool_use":
                self.add("silent", json.dumps(b.get("input")))
            elif bt == "text":
                text = b.get("text", "")
                if sub or err:
                    self.add("silent", text)  # subagent; CLI error message (a notice, never read out)
                    continue
                blocks = self.streamed.get(mid)
                idx = self.open_index.get(mid)
                gapped = blocks.get(idx) if blocks is not None and idx is not None else None
                if not (gapped and gapped[2] is not None and not gapped[3]):
                    gapped = self.pending if self.pending and self.pending[4] == mid else None
                if gapped is not None:
                    # the complete line of a block that lost a line: it fills the gap
                    gapped[3] = True
                    self.pending = None
                    self.add("uncertain", " ".join(minus_words(words(clean(text)), words(clean(" ".join(pieces(gapped)[0::2]))))))
                    continue
                if blocks is not None:
                    # Partial mode: the line for the open block adds only a missing suffix.
                    idx = self.open_index.get(mid)
                    blk = blocks.get(idx) if idx is not None else None
                    if blk and not blk[1] and text.startswith(blk[0]):
                        blk[0] = text
                    elif any(text == v[0] for v in blocks.values()):
                        pass  # the same text again
                    else:
                        self.add("uncertain", text)
                    continue
                o = self.open if self.open and self.open[0] == mid else None
                cont = bool(o) and continues(o[1], o[2], text)
                if (mid, text) in self.seen and not (cont and text != o[1]):
                    continue  # already spoken (repeated line, resumed session)
                self.seen.add((mid, text))
                self.add("spoken", text)
                self.open = (mid, text, open_unspaced(text, cont and o[2])) if ends_mid(text) else None
            else:
                self.open = None

    def silent_content(self, m):
        if not isinstance(m, dict):
            return
        c = m.get("content")
        if isinstance(c, str):
            self.add("silent", c)
            return
        for b in c or []:
            if isinstance(b, dict):
                for k in ("content", "text"):
                    v = b.get(k)
                    if isinstance(v, str):
                        self.add("silent", v)
                    elif isinstance(v, list):
                        self.silent_content({"content": v})

    def result(self, obj):
        text = obj.get("result")
        is_err = obj.get("is_error") or SILENT_SUBTYPE_ERROR.match(str(obj.get("subtype", "")))
        if isinstance(text, str):
            if not is_err and self.pending is not None:
                # the last block lost a line and its complete line never came: the result is it
                self.add("uncertain", " ".join(minus_words(words(clean(text)), words(clean(self.last_text)))))
            elif not is_err and self.turn_spoke and self.turn_lost:
                # its last line lost: said unless already spoken; when it goes on
                # from the last block said, that block's words are not said again
                ws, said = words(clean(text)), words(clean(self.last_text))
                self.add("uncertain", " ".join(ws[len(said):] if said and ws[:len(said)] == said else ws))
            elif is_err or self.turn_spoke:
                self.add("silent", text)  # error: a notice; a turn that spoke: never again
            else:
                self.add("spoken", text)  # the answer of a turn that said nothing
        self.turn_spoke = False
        self.turn_lost = False
        self.open = None
        self.pending = None

    def say(self, blk):
        """A streamed block at its stop: around a lost line (a gap) the words
        at the gap are fragments (uncertain), the rest is spoken."""
        if blk[2] is None or blk[3] or blk[2] == len(blk[0]):
            self.add("spoken", blk[0])
            return
        pre, frag, post = pieces(blk)
        self.add("spoken", pre)
        self.add("uncertain", frag)
        self.add("spoken", post)
        self.last_text = pre + " " + post
        self.pending = blk

    def lost(self, raw):
        """A line that failed to parse: a text_delta of the open main-agent
        text block perhaps (no other line type named, not a subagent's), which
        makes a gap in it; or a main-agent assistant line while no main text
        block streamed."""
        idx = self.open_index.get(self.cur)
        if idx is not None:
            blk = self.streamed.get(self.cur, {}).get(idx)
            if blk and blk[2] is None and not re.search(
                    rb'"type"\s*:\s*"(user|system|result|rate_limit_event|assistant|tool_result)"', raw) \
                    and not re.search(rb'"parent_tool_use_id"\s*:\s*"[^"]*"', raw):
                blk[2] = len(blk[0])
            return
        if re.search(rb'"type"\s*:\s*"(user|system|result|rate_limit_event|stream_event|tool_result)"', raw):
            return
        if re.search(rb'"parent_tool_use_id"\s*:\s*"', raw):
            return
        self.turn_lost = True


def run(data):
    o = Oracle()
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8", errors="replace"))
        except ValueError:
            o.lost(raw)
            continue  # malformed: warned about and skipped
        o.line(obj)
    res = {"spoken": [], "uncertain": [], "silent": []}
    for cls, text in o.out:
        c = clean(text) if cls != "silent" else text
        if c.strip():
            res[cls].append(c)
    return res


if __name__ == "__main__":
    with open(sys.argv[1], "rb") as f:
        json.dump(run(f.read()), sys.stdout, ensure_ascii=False, indent=1)
    print()
