/* proto.c - the daemon protocol's reader and replies, and the socket path
 * rule (docs/PROTOCOL.md): newline-delimited JSON, one request per line,
 * {"v":1,"op":...}; one reply line per request. Request bytes come from any
 * local process of the same user: everything is checked, nothing trusted.
 * (The socket path rule is stts_client's.) */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stts_daemon.h"

static const char *const OPS[] = {"hook", "line", "end", "stop", "skip", "pause", "resume",
                                  "replay", "speed", "mute", "unmute", "status", "ping"};

const char *daemon_op_name(daemon_op op) {
    return (unsigned)op < sizeof OPS / sizeof OPS[0] ? OPS[op] : "?";
}

void daemon_request_clear(daemon_request *req) {
    if (req->root) json_decref(req->root);
    memset(req, 0, sizeof *req);
}

/* The message is formatted before the request (which a points into) is freed. */
static stts_status bad(daemon_request *req, stts_error *err, const char *fmt, const char *a) {
    stts_status st = stts_error_set(err, STTS_ERR_FORMAT, fmt, a);
    daemon_request_clear(req);
    return st;
}

/* An optional string field; -1 when present but not a non-empty string. */
static int opt_string(json_t *o, const char *key, const char **out, size_t *len) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return -1;
    *out = json_string_value(v);
    if (len) *len = json_string_length(v);
    return 0;
}

int daemon_json_whole(const json_t *v, json_int_t *out) {
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 1;
    }
    if (!json_is_real(v)) return 0;
    double d = json_real_value(v);
    if (!isfinite(d) || d != floor(d) || fabs(d) > 9007199254740992.0) return 0;
    *out = (json_int_t)d;
    return 1;
}

/* A MessageDisplay payload's "index", when it is a whole number, is a batch
 * number: 0..DAEMON_MAX_INDEX (a negative one once made a message that was
 * never spoken, and a huge one overflows the next expected index). */
int daemon_index_ok(json_t *payload) {
    json_t *ev = json_object_get(payload, "hook_event_name"), *idx = json_object_get(payload, "index");
    json_int_t i;
    if (!json_is_string(ev) || strcmp(json_string_value(ev), "MessageDisplay") != 0) return 1;
    if (json_is_real(idx)) {
        /* a whole number past 2^53 (1e300) is no json_int_t, and was taken
         * for a missing index (the next batch) instead of refused */
        double d = json_real_value(idx);
        if (isfinite(d) && d == floor(d) && (d < 0 || d > DAEMON_MAX_INDEX)) return 0;
    }
    if (!daemon_json_whole(idx, &i)) return 1;
    return i >= 0 && i <= DAEMON_MAX_INDEX;
}

stts_status daemon_request_parse(const char *line, size_t len, daemon_request *req, stts_error *err) {
    memset(req, 0, sizeof *req);
    if (len > DAEMON_MAX_LINE)
        return stts_error_set(err, STTS_ERR_FORMAT, "request of %zu bytes refused: at most %zu bytes per line", len,
                              DAEMON_MAX_LINE);
    json_error_t je;
    /* JSON_REJECT_DUPLICATES: one meaning per key; JSON_ALLOW_NUL keeps
     * lengths honest for strings with \u0000; JSON_DECODE_INT_AS_REAL: a
     * hook payload may hold integers beyond 64 bits (the hook client
     * forwards it byte for byte), so every number reads as a real and the
     * whole-number fields go through daemon_json_whole. */
    const size_t flags = JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL;
    req->root = json_loadb(line, len, flags, &je);
    if (!req->root && strstr(je.text, "invalid Unicode")) {
        /* An unpaired surrogate escape (half an emoji, as JavaScript writes
         * it) in a hook payload from a client that did not repair it (an
         * older one, its spool): \ufffd instead of losing the event. */
        char *fixed = malloc(len ? len : 1);
        if (fixed) {
            memcpy(fixed, line, len);
            if (client_json_fix_surrogates(fixed, len)) req->root = json_loadb(fixed, len, flags, &je);
            free(fixed);
        }
    }
    if (!req->root)
        return stts_error_set(err, STTS_ERR_FORMAT, "request is not JSON (column %d: %s); send one JSON object per line",
                              je.column, je.text);
    if (!json_is_object(req->root)) return bad(req, err, "request is not a JSON object%s", "");
    json_t *v = json_object_get(req->root, "v");
    json_int_t vv;
    if (!daemon_json_whole(v, &vv) || vv != DAEMON_PROTOCOL_VERSION)
        return bad(req, err, "request has no \"v\":1 (protocol version)%s; see docs/PROTOCOL.md", "");
    const char *op = NULL;
    if (opt_string(req->root, "op", &op, NULL) || !op) return bad(req, err, "request has no \"op\" string%s", "");
    size_t k = 0;
    while (k < sizeof OPS / sizeof OPS[0] && strcmp(OPS[k], op) != 0) k++;
    if (k == sizeof OPS / sizeof OPS[0]) return bad(req, err, "unknown op '%.64s'; see docs/PROTOCOL.md", op);
    req->op = (daemon_op)k;
    req->n = 1;
    size_t slen = 0;
    if (opt_string(req->root, "session", &req->session, &slen)) return bad(req, err, "\"session\" must be a string%s", "");
    /* A \u0000 inside would cut the id short (JSON_ALLOW_NUL): "a\u0000b"
     * was session "a", another client's. */
    if (req->session && (!*req->session || slen > 256 || strlen(req->session) != slen))
        return bad(req, err, "\"session\" must be 1 to 256 bytes, without \\u0000%s", "");
    switch (req->op) {
    case DAEMON_OP_HOOK:
        req->payload = json_object_get(req->root, "payload");
        if (!json_is_object(req->payload)) return bad(req, err, "hook request needs \"payload\": the hook's JSON object%s", "");
        if (!daemon_index_ok(req->payload))
            return bad(req, err, "MessageDisplay \"index\" must be a whole number from 0 to %s", DAEMON_MAX_INDEX_STR);
        break;
    case DAEMON_OP_LINE:
        if (!req->session) return bad(req, err, "line request needs \"session\"%s", "");
        if (opt_string(req->root, "line", &req->line, &req->line_len) || !req->line)
            return bad(req, err, "line request needs \"line\": one stream-json line as a string%s", "");
        break;
    case DAEMON_OP_END: {
        if (!req->session) return bad(req, err, "end request needs \"session\"%s", "");
        json_t *w = json_object_get(req->root, "wait");
        if (w && !json_is_boolean(w)) return bad(req, err, "\"wait\" must be true or false%s", "");
        req->wait = json_is_true(w);
        break;
    }
    case DAEMON_OP_REPLAY: {
        json_t *n = json_object_get(req->root, "n");
        json_int_t nv = 1;
        if (n && (!daemon_json_whole(n, &nv) || nv < 1 || nv > 16))
            return bad(req, err, "replay \"n\" must be a whole number from 1 to 16%s", "");
        req->n = (int)nv;
        break;
    }
    case DAEMON_OP_SPEED: {
        json_t *x = json_object_get(req->root, "x");
        if (!json_is_number(x) || !isfinite(json_number_value(x)) || json_number_value(x) < 0.25 ||
            json_number_value(x) > 4)
            return bad(req, err, "speed needs \"x\": a number from 0.25 to 4%s", "");
        req->x = json_number_value(x);
        break;
    }
    default:
        break;
    }
    return STTS_OK;
}

static char *dump_line(json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(o);
    if (!s) return NULL;
    size_t n = strlen(s);
    char *r = realloc(s, n + 2);
    if (!r) { free(s); return NULL; }
    r[n] = '\n';
    r[n + 1] = '\0';
    return r;
}

char *daemon_reply_error(const char *msg) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "v", json_integer(DAEMON_PROTOCOL_VERSION));
    json_object_set_new(o, "ok", json_false());
    json_t *m = json_string(msg);   /* NULL for invalid UTF-8 (a cut op name) */
    json_object_set_new(o, "error", m ? m : json_string("request refused"));
    return dump_line(o);
}

char *daemon_reply_ok(json_t *obj) {
    json_t *o = json_object();
    if (!o) { json_decref(obj); return NULL; }
    json_object_set_new(o, "v", json_integer(DAEMON_PROTOCOL_VERSION));
    json_object_set_new(o, "ok", json_true());
    if (obj) json_object_update(o, obj);
    json_decref(obj);
    return dump_line(o);
}
