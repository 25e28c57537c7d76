#!/usr/bin/env python3
"""make-transcripts.py - writes the front end's golden stream-json transcripts
(tests/data/front/*.jsonl) and the bundled sample (samples/session.jsonl).

They are written by hand here, not captured: each models the shapes described
in ../shared/docs/claude-stream-json.md (partial-message order: start, deltas,
the complete assistant line, stop; several key orders and separators; subagent
lines; CLI error messages; error results; lines after the result). Deltas are
split at deterministic pseudo-random places, often mid-word and mid-markdown.
The expected sentence lists (*.expected) are written by hand, not generated.

Run: python3 tests/data/front/make-transcripts.py   (from the repository root)
"""
import json
import os
import random
import uuid as uuidlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class Session:
    def __init__(self, name, partial, seed, sid, style="compact", version="2.1.220"):
        self.name, self.partial, self.rng = name, partial, random.Random(seed)
        self.sid, self.style, self.version = sid, style, version
        self.lines, self.n = [], 0

    def uid(self):
        self.n += 1
        return str(uuidlib.UUID(int=self.rng.getrandbits(128)))

    def emit(self, obj, result_first=False):
        if result_first:  # 2.1.220+: a result starts with is_error, type near the end
            obj = dict(sorted(obj.items(), key=lambda kv: kv[0] != "is_error"))
        if self.style == "spaced":
            self.lines.append(json.dumps(obj, ensure_ascii=self.n % 2 == 0))
        else:
            self.lines.append(json.dumps(obj, separators=(",", ":"), ensure_ascii=False))

    def init(self):
        self.emit({"type": "system", "subtype": "init", "cwd": "/home/dev/proj", "session_id": self.sid,
                   "tools": ["Bash", "Read", "Edit", "Write", "Grep", "Glob", "Task"], "mcp_servers": [],
                   "model": "claude-sonnet-4-5", "permissionMode": "default", "apiKeySource": "none",
                   "claude_code_version": self.version, "output_style": "default", "uuid": self.uid()})

    def env(self, parent):
        return {"parent_tool_use_id": parent, "session_id": self.sid, "uuid": self.uid()}

    def chunks(self, text):
        out, i = [], 0
        while i < len(text):
            k = self.rng.randint(1, 14)
            out.append(text[i:i + k])
            i += k
        return out

    def ev(self, event, parent=None, extra=None):
        obj = {"type": "stream_event", "event": event}
        obj.update(self.env(parent))
        if extra:
            obj.update(extra)
        self.emit(obj)

    def message(self, blocks, parent=None, msg_id=None, flags=None, model="claude-sonnet-4-5", lost_deltas=()):
        """blocks: list of ("text", str) | ("thinking", str) | ("tool", name, input_dict, tool_id)."""
        msg_id = msg_id or "msg_01" + "".join(self.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789") for _ in range(22))
        if self.partial:
            self.ev({"type": "message_start", "message": {"id": msg_id, "type": "message", "role": "assistant",
                     "model": model, "content": [], "stop_reason": None,
                     "usage": {"input_tokens": 3, "output_tokens": 1}}}, parent, {"ttft_ms": 812})
        stop_reason = "end_turn"
        for i, b in enumerate(blocks):
            kind = b[0]
            if kind == "tool":
                stop_reason = "tool_use"
                _, name, inp, tid = b
                block = {"type": "tool_use", "id": tid, "name": name, "input": inp}
            elif kind == "thinking":
                block = {"type": "thinking", "thinking": b[1], "signature": "EqQBCkYIBxgCKkD" + str(i)}
            else:
                block = {"type": "text", "text": b[1]}
            if self.partial:
                start = dict(block)
                if kind == "tool":
                    start["input"] = {}
                elif kind == "thinking":
                    start["thinking"] = ""
                else:
                    start["text"] = ""
                self.ev({"type": "content_block_start", "index": i, "content_block": start}, parent)
                if kind == "tool":
                    js = json.dumps(b[2])
                    self.ev({"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": ""}}, parent)
                    for c in self.chunks(js):
                        self.ev({"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": c}}, parent)
                elif kind == "thinking":
                    for c in self.chunks(b[1]):
                        self.ev({"type": "content_block_delta", "index": i, "delta": {"type": "thinking_delta", "thinking": c}}, parent)
                    self.emit({"type": "system", "subtype": "thinking_tokens", "estimated_tokens": 40, "session_id": self.sid})
                    self.ev({"type": "content_block_delta", "index": i, "delta": {"type": "signature_delta", "signature": "abc"}}, parent)
                else:
                    for j, c in enumerate(self.chunks(b[1])):
                        if i in lost_deltas and j > 2:
                            break  # deltas lost: the assistant line must supply the rest
                        self.ev({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": c}}, parent)
            obj = {"type": "assistant", "message": {"id": msg_id, "type": "message", "role": "assistant", "model": model,
                                                    "content": [block], "stop_reason": None, "stop_sequence": None,
                                                    "usage": {"input_tokens": 3, "output_tokens": 9}}}
            obj.update(self.env(parent))
            if flags:
                obj.update(flags)
            self.emit(obj)
            if self.partial:
                self.ev({"type": "content_block_stop", "index": i}, parent)
        if self.partial:
            self.ev({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                     "usage": {"output_tokens": 42}}, parent)
            self.ev({"type": "message_stop"}, parent)
        return msg_id

    def tool_result(self, tid, content, parent=None, is_error=False):
        obj = {"type": "user", "message": {"role": "user", "content": [
            {"tool_use_id": tid, "type": "tool_result", "content": content, "is_error": is_error}]}}
        obj.update(self.env(parent))
        obj["tool_use_result"] = {"stdout": content if isinstance(content, str) else "", "stderr": "", "interrupted": False}
        self.emit(obj)

    def result(self, text, subtype="success", is_error=False, extra=None):
        obj = {"type": "result", "subtype": subtype, "is_error": is_error, "duration_ms": 12034,
               "duration_api_ms": 11020, "num_turns": 3, "session_id": self.sid, "total_cost_usd": 0.0421,
               "usage": {"input_tokens": 1200, "output_tokens": 340}, "permission_denials": [], "uuid": self.uid()}
        if text is not None:
            obj["result"] = text
        if extra:
            obj.update(extra)
        self.emit(obj, result_first=self.version >= "2.1.220")

    def raw(self, line):
        self.lines.append(line)

    def write(self, path):
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            for l in self.lines:
                f.write(l + "\n")


def text_only():
    s = Session("text_only", partial=False, seed=1, sid="6c1f0d4e-1111-4a2b-9c3d-000000000001", version="2.1.70")
    s.init()
    s.message([("text", "I'll explain how the cache works.\n\nThe cache keeps the **last 64 entries** in memory. "
                        "Each entry is keyed by its path, e.g. `src/cache/store.c`, and expires after 5.5 seconds.\n\n"
                        "## Why it is fast\n\n- Lookups are O(1).\n- Evictions happen in batches of 16.\n"
                        "- The hash is FNV-1a, see https://en.wikipedia.org/wiki/Fowler-Noll-Vo_hash_function for details.\n\n"
                        "That's the whole design. Done!")])
    s.result("That's the whole design. Done!")
    s.message([("text", "Sure. Version v2.3.1 fixed the race; Mr. Smith reported it on the tracker vs. the mailing list.")])
    s.result("Sure. Version v2.3.1 fixed the race.")
    return s


def partial_tools():
    s = Session("partial_tools", partial=True, seed=2, sid="6c1f0d4e-2222-4a2b-9c3d-000000000002")
    s.init()
    s.message([("thinking", "The user wants the failing test fixed. Let me look at the test first."),
               ("text", "Let me check the failing test first."),
               ("tool", "Bash", {"command": "ctest --test-dir build -R test_parser --output-on-failure", "description": "Run the parser test"}, "toolu_01A")])
    s.tool_result("toolu_01A", "Test #3: test_parser ... ***Failed\nexpected 3, got 2\n" + "log line\n" * 40)
    s.message([("text", "The test expects **3** tokens but the parser returns 2, because the tokenizer drops the trailing `;`."),
               ("tool", "Edit", {"file_path": "/home/dev/proj/src/parser/tokenize.c", "old_string": "i < n - 1", "new_string": "i < n"}, "toolu_01B")])
    s.tool_result("toolu_01B", "The file /home/dev/proj/src/parser/tokenize.c has been updated.")
    s.message([("tool", "Bash", {"command": "ctest --test-dir build -R test_parser"}, "toolu_01C")])
    s.tool_result("toolu_01C", "100% tests passed, 0 tests failed out of 1")
    s.message([("text", "Fixed. The loop in `tokenize.c` stopped one character early, so the last token was lost.\n\n"
                        "All tests pass now.")])
    s.emit({"type": "rate_limit_event", "rate_limit_info": {"status": "allowed"}, "session_id": s.sid})
    s.result("Fixed. The loop in tokenize.c stopped one character early, so the last token was lost.\n\nAll tests pass now.")
    s.emit({"type": "system", "subtype": "hook_response", "hook_name": "Stop", "session_id": s.sid})
    return s


def subagents_errors():
    s = Session("subagents_errors", partial=True, seed=3, sid="6c1f0d4e-3333-4a2b-9c3d-000000000003", style="spaced", version="2.1.104")
    s.init()
    s.message([("text", "I'll ask a subagent to survey the repository."),
               ("tool", "Task", {"description": "Survey the repository layout", "prompt": "List the modules.", "subagent_type": "Explore"}, "toolu_02A")])
    s.emit({"type": "system", "subtype": "task_started", "task_id": "t1", "tool_use_id": "toolu_02A", "description": "Survey", "session_id": s.sid})
    u = {"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": "List the modules."}]}}
    u.update(s.env("toolu_02A"))
    s.emit(u)
    s.message([("text", "The repository has three modules: core, net and ui. This subagent text must stay silent."),
               ("tool", "Glob", {"pattern": "**/*.c"}, "toolu_02B")], parent="toolu_02A")
    s.tool_result("toolu_02B", "src/core/a.c\nsrc/net/b.c", parent="toolu_02A")
    s.message([("text", "Modules: core, net, ui.")], parent="toolu_02A")
    s.tool_result("toolu_02A", [{"type": "text", "text": "Modules: core, net, ui."}])
    s.emit({"type": "system", "subtype": "task_notification", "status": "completed", "summary": "Modules: core, net, ui.", "session_id": s.sid})
    s.message([("text", "The subagent found three modules: core, net and ui.")], lost_deltas=(0,))
    s.result("The subagent found three modules: core, net and ui.")
    # second turn: the CLI fails to authenticate (no stream events precede it)
    s.partial = False
    s.message([("text", "Failed to authenticate. API Error: 401 {\"type\":\"error\",\"error\":{\"type\":\"authentication_error\"}}")],
              model="<synthetic>", flags={"error": "authentication_failed", "is_api_error_message": True})
    s.result("Failed to authenticate. API Error: 401", is_error=True, extra={"terminal_reason": "api_error"})
    # third turn: interrupted mid-word, then max turns
    s.partial = True
    s.message([("text", "I am going to refactor the whole module, starting with the par")], flags={"aborted": True})
    s.emit({"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": "[Request interrupted by user]"}]}, "parent_tool_use_id": None, "session_id": s.sid})
    s.result(None, subtype="error_max_turns", is_error=False)
    s.emit({"type": "system", "subtype": "task_summary", "detail": None, "session_id": s.sid})
    return s


def code_tables():
    s = Session("code_tables", partial=True, seed=4, sid="6c1f0d4e-4444-4a2b-9c3d-000000000004")
    s.init()
    code = "\n".join("    x_%d = compute(%d)  # step %d" % (i, i, i) for i in range(30))
    s.message([("text", "Here is the new function:\n\n```python\ndef run():\n" + code + "\n    return x_29\n```\n\n"
                        "It computes the steps in order. Compare the two approaches:\n\n"
                        "| Approach | Time | Memory |\n|:---|---:|---:|\n| naive | 120 ms | 2 MB |\n| cached | 8 ms | 9 MB |\n\n"
                        "The cached one is **15x faster**. A shell example:\n\n~~~bash\nmake -j8 && ./run --fast\n~~~\n\n"
                        "And an indented snippet:\n\n    int main(void) { return 0; }\n    /* end */\n\n"
                        "That is all for now.")])
    s.result("That is all for now.")
    return s


def japanese():
    s = Session("japanese", partial=True, seed=5, sid="6c1f0d4e-5555-4a2b-9c3d-000000000005")
    s.init()
    s.message([("text", "はい。テストが失敗している原因を調べます。\n\n"
                        "原因は`parser.c`の境界チェックでした！修正後、全てのテストが通りました。"
                        "詳細はhttps://example.com/docs/parserを参照してください。\n\n"
                        "- 修正したファイル: 1つ\n- 追加したテスト: 2つ\n\n"
                        "他に何かありますか？")])
    s.result("他に何かありますか？")
    return s


def sample():
    s = Session("session", partial=True, seed=6, sid="2b7d9c1e-aaaa-4bbb-8ccc-0123456789ab")
    s.init()
    s.message([("thinking", "The user asked to add a --verbose flag and document it."),
               ("text", "I'll add the `--verbose` flag to the CLI and document it. First, let me look at how options are parsed."),
               ("tool", "Read", {"file_path": "/home/dev/weather-cli/src/options.c"}, "toolu_S1")])
    s.tool_result("toolu_S1", "     1\t/* options.c */\n     2\t#include <getopt.h>\n" + "     9\tstatic int verbose;\n" * 30)
    s.message([("text", "Options are parsed with `getopt_long` in **options.c**. I'll add the flag there:\n\n"
                        "```c\nstatic const struct option longopts[] = {\n    {\"verbose\", no_argument, NULL, 'v'},\n"
                        "    {\"units\", required_argument, NULL, 'u'},\n    {0, 0, 0, 0},\n};\n```\n\n"
                        "The short form is `-v`, e.g. `weather -v Berlin`."),
               ("tool", "Edit", {"file_path": "/home/dev/weather-cli/src/options.c", "old_string": "a", "new_string": "b"}, "toolu_S2")])
    s.tool_result("toolu_S2", "The file /home/dev/weather-cli/src/options.c has been updated.")
    s.message([("tool", "Bash", {"command": "make -j2 && ./weather -v Berlin"}, "toolu_S3")])
    s.tool_result("toolu_S3", "cc -O2 -c src/options.c\nFetching https://api.open-meteo.com/v1/forecast ...\nBerlin: 11.5 C, light rain")
    s.message([("text", "It builds and the flag works. Here is what changed:\n\n"
                        "1. Added `--verbose` (short `-v`) to the option table.\n"
                        "2. Verbose mode prints each request URL before sending it.\n"
                        "3. Updated the usage text in /home/dev/weather-cli/src/usage.c.\n\n"
                        "| Flag | Short | Effect |\n|---|---|---|\n| --verbose | -v | log requests |\n| --units | -u | metric or imperial |\n\n"
                        "The requests go to https://api.open-meteo.com/v1/forecast, which needs no API key. "
                        "Response times were around 0.35 seconds on average.\n\n"
                        "Should I also add a `--quiet` flag?")])
    s.result("Should I also add a --quiet flag?")
    s.message([("text", "OK. I'll add `--quiet` as well, and make it conflict with `--verbose` so that both cannot be given at once. "
                        "I will keep the flag handling in one place, because the two options interact: quiet suppresses warnings, "
                        "verbose adds request logs, and the combination would be confusing for anyone reading the output later."),
               ("tool", "Edit", {"file_path": "/home/dev/weather-cli/src/options.c", "old_string": "c", "new_string": "d"}, "toolu_S4")])
    s.tool_result("toolu_S4", "The file /home/dev/weather-cli/src/options.c has been updated.")
    s.message([("text", "Done. Both flags are in place:\n\n"
                        "- `--quiet` hides warnings.\n- `--verbose` logs requests.\n- Giving both is an error with a clear message.\n\n"
                        "> Note: the README still needs an update.\n\n"
                        "I've updated **README.md** too. Anything else?")])
    s.result("I've updated README.md too. Anything else?")
    s.message([("text", "Good question. The retry logic lives in `src/net/fetch.c` and works like this:\n\n"
                        "## How retries work\n\n"
                        "When a request fails with a timeout, the client waits 0.5 seconds and tries again. "
                        "Each further attempt doubles the wait, up to 8 seconds. After five failed attempts it gives up "
                        "and prints the last error, e.g. `connection reset by peer`.\n\n"
                        "Errors that cannot be fixed by waiting (a 404, or a malformed city name) are not retried. "
                        "That keeps the tool responsive!\n\n"
                        "There are two things I would change:\n\n"
                        "- The wait should include some random jitter, so that many clients do not retry in lockstep.\n"
                        "- The limit of five attempts should be configurable with `--retries N`.\n\n"
                        "Want me to implement either of these?")])
    s.result("Want me to implement either of these?")
    return s


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    for make in (text_only, partial_tools, subagents_errors, code_tables, japanese):
        sess = make()
        sess.write(os.path.join(here, sess.name + ".jsonl"))
    sample().write(os.path.join(ROOT, "samples", "session.jsonl"))


if __name__ == "__main__":
    main()
