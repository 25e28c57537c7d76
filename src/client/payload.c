/* payload.c - turns a Claude Code hook payload (the JSON object a hook reads
 * on stdin) into the daemon's "hook" request line. The payload is checked
 * (one JSON object, valid UTF-8, bounded) but forwarded byte for byte (an
 * unpaired surrogate escape aside, which becomes \ufffd): the
 * daemon owns every decision about the event, so the client adds nothing and
 * reinterprets nothing (numbers, escapes and key order stay as sent). */
#define _POSIX_C_SOURCE 200809L   /* strnlen */
#include "stts_client.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
}

/* The value of the 4 hex digits at p (p[0..4) must exist), or -1. */
static long hex4(const char *p) {
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hexval(p[i]);
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

size_t client_json_fix_surrogates(char *s, size_t n) {
    size_t fixed = 0, bs = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\') { bs++; continue; }
        /* An escape only after an odd run of backslashes ("\\\\uD83D" is text). */
        if (s[i] == 'u' && bs % 2 == 1 && i + 5 <= n) {
            long v = hex4(s + i + 1);
            if (v >= 0xD800 && v <= 0xDFFF) {
                long w = v <= 0xDBFF && i + 11 <= n && s[i + 5] == '\\' && s[i + 6] == 'u' ? hex4(s + i + 7) : -1;
                if (w >= 0xDC00 && w <= 0xDFFF) {
                    i += 10;   /* a pair: kept */
                } else {
                    memcpy(s + i + 1, "fffd", 4);
                    fixed++;
                    i += 4;
                }
            }
        }
        bs = 0;
    }
    return fixed;
}

stts_status client_hook_request(const char *payload, size_t n, char **line, size_t *len,
                                char *event, size_t event_cap, stts_error *err) {
    *line = NULL;
    *len = 0;
    if (event && event_cap) event[0] = '\0';
    if (n > CLIENT_PAYLOAD_MAX)
        return stts_error_set(err, STTS_ERR_FORMAT, "hook payload of %zu bytes is over the %u-byte limit; not forwarded",
                              n, CLIENT_PAYLOAD_MAX);
    while (n > 0 && is_ws(payload[0])) { payload++; n--; }
    while (n > 0 && is_ws(payload[n - 1])) n--;
    if (n == 0)
        return stts_error_set(err, STTS_ERR_FORMAT, "empty hook payload on stdin; stream-tts hook expects the JSON "
                              "object Claude Code sends to a hook");
    /* JSON text never holds a raw NUL, and jansson would stop reading at one
     * (the fuzzer found `{"s":0<NUL>}` accepted): refuse it rather than
     * forward bytes past what was checked. */
    if (memchr(payload, '\0', n))
        return stts_error_set(err, STTS_ERR_FORMAT, "hook payload holds a NUL byte at offset %zu; not JSON, not "
                              "forwarded", (size_t)((const char *)memchr(payload, '\0', n) - payload));
    static const char head[] = "{\"v\":1,\"op\":\"hook\",\"payload\":";
    size_t hl = sizeof head - 1;
    char *out = malloc(hl + n + 2);
    if (!out) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory for a %zu-byte hook payload", n);
    memcpy(out, head, hl);
    memcpy(out + hl, payload, n);
    out[hl + n] = '}';
    out[hl + n + 1] = '\0';
    /* Claude Code is JavaScript: JSON.stringify writes a string's unpaired
     * surrogate (an emoji cut in half in a prompt or a title) as a \uD83D
     * escape, and a NUL as \u0000. jansson refuses both, and the whole
     * event was lost (a prompt's barge-in, a Stop's reply): the surrogate
     * becomes \ufffd (same length) and NUL is allowed, as the daemon reads it. */
    client_json_fix_surrogates(out + hl, n);
    json_error_t je;
    json_t *root = json_loadb(out + hl, n, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &je);   /* a huge integer is still JSON */
    if (!root) {
        free(out);
        return stts_error_set(err, STTS_ERR_FORMAT, "hook payload is not JSON: %s at line %d column %d",
                              je.text, je.line, je.column);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        free(out);
        return stts_error_set(err, STTS_ERR_FORMAT, "hook payload is JSON but not an object");
    }
    if (event && event_cap) {
        const char *ev = json_string_value(json_object_get(root, "hook_event_name"));
        if (ev) {
            size_t l = strnlen(ev, event_cap - 1);
            memcpy(event, ev, l);
            event[l] = '\0';
        }
    }
    json_decref(root);
    /* In valid JSON a raw CR or LF can only be whitespace between tokens
     * (strings must escape them), so a space keeps the value unchanged. */
    for (size_t i = hl; i < hl + n; i++)
        if (out[i] == '\n' || out[i] == '\r') out[i] = ' ';
    *line = out;
    *len = hl + n + 1;
    return STTS_OK;
}
