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
    for o, c in (("<system-reminder>", "</system-reminder>"), ("<!--", "-->")):
        # unclosed: at a line start to the end of the block; a comment
        # opened mid-line to the end of its paragraph
        i = text.find(o)
        if i >= 0 and text.find(c, i) < 0:
            if not text[:i].strip(" \t") or text[:i].rstrip(" \t").endswith("\n"):
                text = text[:i]
            elif o == "<!--":
                j = text.find("\n\n", i)
                text = text[:i] + (text[j:] if j >= 0 else "")
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


def gap_word(k):
    """A marker word standing for the k-th lost line in a block's text."""
    t = ""
    while True:
        t = chr(97 + k % 26) + t
        k //= 26
        if not k:
            return "qqgap" + t + "qq"


def holds(text, parts, at_start):
    """Does text hold the streamed parts of a block (what came between lost
    lines) in order, the first one at its start when at_start (a block's
    complete line), or anywhere (a result, which may start with the
    message's earlier blocks)? Returns where the first part begins, or None.
    The concatenated text_deltas of a block are its complete text (the
    format's rule), so a line or result holding them is that block."""
    pos, start = 0, None
    for k, p in enumerate(parts):
        if k == 0 and not at_start:
            p = p.lstrip()
        if not p:
            continue
        if k == 0 and at_start:
            if not text.startswith(p):
                return None
            pos, start = len(p), 0
            continue
        i = text.find(p, pos)
        if i < 0:
            return None
        if start is None:
            start = i
        pos = i + len(p)
    return 0 if start is None else start


def unclosed(t):
    """Where a construct still open at t's end starts (a tag, an HTML
    comment, a system-reminder, a fence, inline code, a link), or None: a
    lost line inside one leaves it broken, and how broken markup reads (to
    the end of its paragraph or block, or as text) is no part of this model."""
    at = []
    for o, c in (("<system-reminder>", "</system-reminder>"), ("<!--", "-->"), ("<thinking>", "</thinking>")):
        i = t.rfind(o)
        if i >= 0 and t.find(c, i) < 0:
            at.append(i)
    i = t.rfind("<")
    if i >= 0 and ">" not in t[i:]:
        at.append(i)
    f = [m.start() for m in re.finditer(r"^\s*(```|~~~)", t, re.M)]
    if len(f) % 2:
        at.append(f[-1])
    line = t[t.rfind("\n") + 1:]
    if line.count("`") % 2:
        at.append(len(t) - len(line) + line.rfind("`"))
    i = t.rfind("](")
    if i >= 0 and ")" not in t[i:]:
        at.append(max(0, t.rfind("[", 0, i)))
    i = t.rfind("&")
    if i >= 0 and re.fullmatch(r"&#?\w*", t[i:]):
        at.append(i)
    return min(at) if at else None


def unopened(t):
    """Where a construct closed in t but opened before it (in a lost line)
    ends: what reads up to there is broken markup too (see unclosed)."""
    end = []
    for o, c in (("<system-reminder>", "</system-reminder>"), ("<!--", "-->"), ("<thinking>", "</thinking>"),
                 ("<", ">"), ("[", "]")):
        i = t.find(c)
        if i >= 0 and not (0 <= t.find(o) < i):
            end.append(i + len(c))
    line = t.split("\n", 1)[0]
    if line.count("`") % 2:
        end.append(line.find("`") + 1)
    if not end:
        return None
    e = max(end)
    m = re.match(r"\([^)\s]*\)?", t[e:])  # a link's target
    return e + (m.end() if m else 0)


class Block:
    """A main-agent text block streamed in partial mode."""

    def __init__(self, mid, index, lost_start):
        self.mid, self.index = mid, index
        self.parts = ["", ""] if lost_start else [""]  # text between lost lines
        self.state = "open"    # open; stopped (a gap, its complete line awaited); done
        self.filled = False    # its complete text is known (its line, or the result)
        self.given_up = False  # said around its gaps, the lost words never came
        self.said = []         # the words said for it

    def text(self):
        return "".join(self.parts)

    def gapped(self):
        """Text streamed after a lost line (nothing after it: no gap)."""
        return any(self.parts[1:])

    def lose(self):
        if len(self.parts) == 1 or self.parts[-1]:
            self.parts.append("")


LOST_NOT_DELTA = re.compile(rb'"type"\s*:\s*"(user|system|result|rate_limit_event|assistant|tool_result)"')
LOST_NOT_ANSWER = re.compile(rb'"type"\s*:\s*"(user|system|result|rate_limit_event|stream_event|tool_result)"')
LOST_SUB = re.compile(rb'"parent_tool_use_id"\s*:\s*"')


class Oracle:
    """Stream order model. Partial mode: a main-agent text block is said
    once, as its complete text when that reached us: its text_deltas, or,
    when a line was lost while it streamed (a gap), its complete assistant
    line (before its stop or after it, until the next block, message or
    result gives it up), else the turn's result when that holds it; without
    either, what streamed is said with the words cut at each gap as
    fragments (may be said or not, never glued into one word)."""

    def __init__(self):
        self.out = []           # (class, text, cleaned) in stream order
        self.turn_spoke = False
        self.msgs = {}          # message.id -> [Block] (partial mode, main agent)
        self.open_blk = None    # the main agent's open text block
        self.pending = None     # a stopped block with a gap, its complete line awaited
        self.lost_between = False  # a line lost while no main block was open (a block start perhaps)
        self.seen = set()       # (message.id, text) spoken from assistant lines
        self.open = None        # (message.id, text, unspaced): the last block said stopped mid-sentence
        self.turn_lost = False  # a line lost this turn may have been the main agent's assistant text
        self.last_text = ""     # the last text block said (raw)
        self.last_block = None  # and its Block (partial mode)
        self.cur = ("unknown", 0)  # the message streaming (its message_start may be lost)
        self.msg_done = False   # its message_stop came
        self.last_index = -1
        self.nunknown = 0
        self.said_texts = set()  # text blocks said whole (a result repeating one is not said again)

    def add(self, cls, text, cleaned=False):
        if cls == "spoken" and text.strip():
            self.turn_spoke = True  # a notice ("Python code, 3 lines, omitted.") is speech too
            if not cleaned:
                self.said_texts.add(text.strip())
                self.last_text = text   # the last text block said (a lost line's result repeats it)
                self.last_block = None
        self.out.append((cls, text, cleaned))

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

    # -- partial mode blocks -----------------------------------------------------

    def say_whole(self, blk, text):
        blk.state, blk.filled = "done", True
        blk.parts = [text]
        self.add("spoken", text)
        blk.said = words(clean(text))
        self.last_text, self.last_block = text, blk

    def give_up(self, blk):
        """Said as streamed; the words cut at each gap are fragments."""
        if blk is None or blk.state == "done":
            return
        if self.pending is blk:
            self.pending = None
        if not blk.gapped():
            self.say_whole(blk, blk.text())
            blk.filled = False
            return
        blk.state, blk.given_up = "done", True
        marked, mid, broken, extra = "", {}, None, []
        for k, p in enumerate(blk.parts):
            if k:
                if broken is None:
                    broken = unclosed(marked)
                e = unopened(p)
                if e is not None:
                    extra += words(p[:e]) + words(clean(p[:e]))
                    p = " " + p[e:]
                line = marked[marked.rfind("\n") + 1:]
                if len(line.strip()) <= 3 or line.lstrip().startswith(("|", "#", ">")):
                    # lost at a line's start (a list, heading, table or trailer
                    # marker perhaps): how the rest of that line reads is open
                    head = p.split("\n", 1)[0]
                    extra += words(head) + words(clean(head))
                    p = " " + p[len(head):]
                if re.search(r"\S$", marked) and re.match(r"\S", p):
                    # a token cut in two: its parts, as a listener may hear them
                    extra += words(re.search(r"\S+$", marked).group(0)) + words(re.match(r"\S+", p).group(0))
                # (nothing before it: the first word may be the end of one)
                mid[gap_word(k)] = (not marked or bool(re.search(r"\w$", marked))) and bool(re.match(r"\w", p))
                # at a line's end, not its start (a fence, table or list marker stays one)
                head = marked.rstrip("\n")
                if head.strip():
                    marked = head + " " + gap_word(k) + " " + marked[len(head):]
                else:
                    marked = gap_word(k) + "\n\n" + marked
            marked += p
        if broken is not None:
            # a lost line inside markup: from its start on, anything may be said
            extra += words(marked[broken:]) + words(clean(marked[broken:]))
            marked = marked[:broken]
        ws = words(clean(marked))
        frag = set()
        for i, w in enumerate(ws):
            if w in mid:
                if mid[w]:
                    frag.update((i - 1, i + 1))
                frag.add(i)
        run_cls, run = None, []
        for i, w in enumerate(ws):
            if w in mid:
                continue
            cls = "uncertain" if i in frag else "spoken"
            if cls != run_cls and run:
                self.add(run_cls, " ".join(run), True)
                run = []
            run_cls = cls
            run.append(w)
            blk.said.append(w)
        if run:
            self.add(run_cls, " ".join(run), True)
        extra = [w for w in extra if w not in mid]
        if extra:
            self.add("uncertain", " ".join(extra), True)
            blk.said += extra
        self.last_text, self.last_block = blk.text(), blk

    def stop(self, blk):
        if blk.state != "open":
            return
        if blk.filled or not blk.gapped():
            self.say_whole(blk, blk.text())
        else:
            blk.state = "stopped"
            self.pending = blk

    def close_open(self):
        """A block whose content_block_stop was lost ends as at its stop."""
        if self.open_blk is not None:
            self.stop(self.open_blk)
            self.open_blk = None

    def new_block(self, index, lost_start):
        if self.msg_done or (isinstance(index, (int, float)) and self.last_index >= 0 and index <= self.last_index):
            # a block after message_stop (or an index going back): the next
            # message's start was lost, its id comes with its first assistant line
            self.nunknown += 1
            self.cur = ("unknown", self.nunknown)
            self.msg_done = False
        blk = Block(self.cur, index, lost_start)
        self.msgs.setdefault(self.cur, []).append(blk)
        return blk

    def event(self, ev, sub):
        if not isinstance(ev, dict):
            return
        et = ev.get("type")
        if et == "content_block_delta":
            d = ev.get("delta") or {}
            if d.get("type") == "text_delta":
                if sub:
                    self.add("silent", d.get("text", ""))
                    return
                if self.open_blk is None:
                    # deltas without their block's start (lost): after a lost line,
                    # a gap at the block's start
                    self.give_up(self.pending)
                    self.open_blk = self.new_block(ev.get("index"), self.lost_between)
                    self.lost_between = False
                self.open_blk.parts[-1] += d.get("text", "")
            elif d.get("type") == "thinking_delta":
                self.add("silent", d.get("thinking", ""))
            elif d.get("type") == "input_json_delta":
                self.add("silent", d.get("partial_json", ""))
            return
        if sub:
            return
        if et == "message_start":
            self.close_open()
            self.give_up(self.pending)
            m = ev.get("message") or {}
            self.cur = m.get("id")
            self.msg_done = False
            self.last_index = -1
            self.lost_between = False
        elif et == "content_block_start":
            self.close_open()
            self.give_up(self.pending)  # the next block: the last one's line did not come
            self.lost_between = False
            b = ev.get("content_block") or {}
            idx = ev.get("index")
            if b.get("type") == "text":
                self.open_blk = self.new_block(idx, False)
                self.open_blk.parts[0] = b.get("text") or ""
            elif self.msg_done or (isinstance(idx, (int, float)) and self.last_index >= 0 and idx <= self.last_index):
                self.nunknown += 1
                self.cur = ("unknown", self.nunknown)
                self.msg_done = False
            if isinstance(idx, (int, float)):
                self.last_index = idx
        elif et == "content_block_stop":
            self.close_open()
        elif et == "message_stop":
            self.close_open()  # its content_block_stop lost: the block stops here
            self.msg_done = True

    def adopt(self, mid):
        cur = self.cur
        if isinstance(cur, tuple) and cur in self.msgs and mid not in self.msgs:
            for b in self.msgs[cur]:
                b.mid = mid
            self.msgs[mid] = self.msgs.pop(cur)
            self.cur = mid

    def partial_line(self, mid, text):
        """The complete line of a text block of a message that streamed.
        Returns False when it is no streamed block's (said as a line)."""
        blocks = self.msgs.get(mid)
        blk = self.open_blk if self.open_blk is not None and self.open_blk.mid == mid else None
        if blk is not None:
            # the line of the open block (before its stop): its complete text
            if holds(text, blk.parts, True) is not None:
                blk.parts, blk.filled = [text], True
            elif text != blk.text():
                self.add("uncertain", " ".join(minus_words(words(clean(text)), words(clean(blk.text())))))
            return True
        p = self.pending if self.pending is not None and self.pending.mid == mid else None
        if p is not None and holds(text, p.parts, True) is not None:
            self.pending = None
            self.say_whole(p, text)  # after its stop (SDK order): fills the gap
            return True
        for d in blocks:
            if d.state == "done" and (text == d.text() or text == d.parts[0] and d.filled):
                return True  # said already
        for d in blocks:
            if d.state == "done" and d.given_up and holds(text, d.parts, True) is not None:
                # said around its gaps already: the lost words may follow
                self.add("uncertain", " ".join(minus_words(words(clean(text)), d.said)))
                return True
        for d in blocks:
            t = d.text()
            if d.state == "done" and not d.given_up and t and len(text) > len(t) and text.startswith(t):
                # its last deltas never came, nor a broken line: the rest, the
                # word cut at the block's end a fragment
                rest = text[len(t):]
                if not t.endswith("\n"):
                    # the rest of a line begun in the block: how it reads alone
                    # (a table row's end, a word's end) is open
                    head = rest.split("\n", 1)[0]
                    self.add("uncertain", " ".join(words(head) + words(clean(head))), True)
                    rest = rest[len(head):]
                self.add("spoken", rest)
                d.parts = [text]
                self.last_text, self.last_block = text, d
                return True
        self.give_up(self.pending)
        return False

    def assistant(self, obj, sub):
        m = obj.get("message")
        if not isinstance(m, dict):
            return
        mid = m.get("id")
        if not sub:
            self.adopt(mid)
        err = obj.get("is_api_error_message") or obj.get("isApiErrorMessage") or \
            (m.get("model") == "<synthetic>")
        content = m.get("content") or []
        for bi, b in enumerate(content):
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
                if obj.get("aborted") is True and bi == len(content) - 1 and text[-1:].isascii() and \
                        text[-1:].isalnum():
                    # FRONTEND.md "aborted": the half word the turn stopped in
                    # is not said, in either mode
                    cut = re.sub(r"\S+$", "", text).rstrip()
                    self.add("silent", text[len(cut):].strip())
                    blk = self.open_blk
                    if blk is not None and blk.mid == mid and blk.text() == text:
                        blk.parts, blk.filled = [cut], True  # streamed: said at its stop without it
                        continue
                    text = cut
                if mid in self.msgs and self.partial_line(mid, text):
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
        blk = self.pending or (self.open_blk if self.open_blk is not None and self.open_blk.gapped()
                               and not self.open_blk.filled else None)
        if blk is not None and isinstance(text, str) and not is_err and blk.parts[0].strip():
            # the last block lost a line and its complete line never came: the
            # result holds the turn's last text block, so it is that line
            at = holds(text, blk.parts, False)
            if at is not None:
                if self.open_blk is blk:
                    self.open_blk = None
                self.pending = None
                self.say_whole(blk, text[at:])
                blk = None
        self.close_open()
        if blk is not None:
            self.give_up(blk)
            if isinstance(text, str) and not is_err and holds(text, blk.parts, False) is not None:
                self.add("uncertain", " ".join(minus_words(words(clean(text)), blk.said)))
                text = None
        if isinstance(text, str):
            if not is_err and self.turn_spoke and self.turn_lost:
                self.lost_answer(text)
            elif is_err or self.turn_spoke:
                self.add("silent", text)  # error: a notice; a turn that spoke: never again
            else:
                self.add("spoken", text)  # the answer of a turn that said nothing
        self.turn_spoke = False
        self.turn_lost = False
        self.open = None
        self.last_text, self.last_block = "", None

    def lost_answer(self, text):
        """A turn whose lost line may have been its last assistant text line:
        the result (the turn's last text block) is said unless it is the last
        block said (or its start); one that goes on from it gives the rest."""
        r, last = text.strip(), self.last_text.strip()
        lb = self.last_block
        if (last and last.startswith(r)) or r in self.said_texts:
            return
        if last and r.startswith(last):
            rest = r[len(last):]
            m = re.match(r"\w+", rest) if re.search(r"\w$", last) else None
            if m:
                self.add("uncertain", m.group(0) + " " + re.search(r"\w+$", last).group(0) + m.group(0))
                rest = rest[m.end():]
            self.add("spoken", rest)
            return
        if lb is not None and lb.given_up and holds(text, lb.parts, False) is not None:
            self.add("uncertain", " ".join(minus_words(words(clean(text)), lb.said)))
            return
        self.add("spoken", text)

    def lost(self, raw):
        """A line that failed to parse: a text_delta of the open main-agent
        text block perhaps (no other line type named, not a subagent's), which
        makes a gap in it; between blocks, the next block's start perhaps; or
        a main-agent assistant line while no main text block streamed."""
        delta = not LOST_NOT_DELTA.search(raw) and not LOST_SUB.search(raw)
        if self.open_blk is not None:
            if delta:
                self.open_blk.lose()
            return
        if delta:
            self.lost_between = True
        if LOST_NOT_ANSWER.search(raw) or LOST_SUB.search(raw):
            return
        self.turn_lost = True

    def finish(self):
        self.close_open()
        self.give_up(self.pending)


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
    o.finish()
    res = {"spoken": [], "uncertain": [], "silent": []}
    for cls, text, cleaned in o.out:
        c = clean(text) if cls != "silent" and not cleaned else text
        if c.strip():
            res[cls].append(c)
    return res


if __name__ == "__main__":
    with open(sys.argv[1], "rb") as f:
        json.dump(run(f.read()), sys.stdout, ensure_ascii=False, indent=1)
    print()
