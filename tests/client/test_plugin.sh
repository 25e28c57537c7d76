#!/usr/bin/env bash
# test_plugin.sh STREAM_TTS SOURCE_DIR VERSION - the Claude Code plugin folder
# of the repository: plugin.json and hooks/hooks.json are valid JSON of the
# documented shapes, the plugin's version is the project's, its hooks are
# exactly the entries install-hooks writes (events, matchers, timeouts; only
# the command differs), every command is exec form under ${CLAUDE_PLUGIN_ROOT}
# and exists executable; and libexec/stream-tts-hook hands a payload to the
# hook client (spooled here: no daemon) printing nothing, exit 0.
set -u
BIN=$(readlink -f "$1"); SRC=$2; VER=$3
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail=0; pass=0
ok()  { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }

HOME=$T/h "$BIN" install-hooks --settings "$T/settings.json" --command /opt/x/stream-tts >/dev/null 2>&1 && ok || bad "install-hooks"
python3 - "$SRC" "$VER" "$T/settings.json" <<'PY' && ok || bad "plugin JSON"
import json, os, sys
src, ver, settings = sys.argv[1:4]
p = json.load(open(os.path.join(src, ".claude-plugin/plugin.json")))
assert p["name"] == "stream-tts" and p["version"] == ver, p
h = json.load(open(os.path.join(src, "hooks/hooks.json")))
assert isinstance(h.get("description"), str) and isinstance(h["hooks"], dict)
cmds = set()
for ev, groups in h["hooks"].items():
    for g in groups:
        for x in g["hooks"]:
            assert x["type"] == "command" and isinstance(x.get("args"), list), x   # exec form, no shell
            assert "if" not in x and "async" not in x, x
            assert x["command"].startswith("${CLAUDE_PLUGIN_ROOT}/"), x
            cmds.add(x["command"])
            x["command"], x["args"] = "/opt/x/stream-tts", ["hook"]
want = json.load(open(settings))["hooks"]
assert h["hooks"] == want, "plugin hooks differ from install-hooks:\n%s\n%s" % (h["hooks"], want)
for c in cmds:
    f = os.path.join(src, c.replace("${CLAUDE_PLUGIN_ROOT}/", ""))
    assert os.access(f, os.X_OK), f + " is not executable"
assert not os.path.exists(os.path.join(src, "bin")), "bin/ would join the Bash tool's PATH"
PY

export STREAM_TTS_SOCKET=$T/run/socket STREAM_TTS_DAEMON=/bin/true
P='{"session_id":"S","hook_event_name":"Stop","last_assistant_message":"Done."}'
echo "$P" | STREAM_TTS_BIN=$BIN "$SRC/libexec/stream-tts-hook" >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && ok || bad "wrapper exit $rc"
[ ! -s "$T/out" ] && ok || bad "wrapper printed on stdout"
f=$(ls "$T/run/spool"/*.json 2>/dev/null | head -1)
[ -n "$f" ] && [ "$(cat "$f")" = "{\"v\":1,\"op\":\"hook\",\"payload\":$P}" ] && ok || bad "wrapper did not reach the hook client"
# Nothing installed anywhere it looks: still exit 0, nothing on stdout.
if [ ! -x /usr/local/bin/stream-tts ] && [ ! -x /usr/bin/stream-tts ]; then
  echo "$P" | env -u STREAM_TTS_BIN PATH=/nonexistent HOME=$T/nohome /bin/sh "$SRC/libexec/stream-tts-hook" >"$T/out" 2>"$T/err"; rc=$?
  [ $rc -eq 0 ] && [ ! -s "$T/out" ] && grep -q "not installed" "$T/err" && ok || bad "wrapper without stream-tts: rc $rc"
fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
