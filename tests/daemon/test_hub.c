/* test_hub.c - the daemon's hub (src/daemon/hub.c) and protocol reader
 * (proto.c) in-process, without sockets or speech: hook payloads in, the
 * sentences the hub hands to the speaker out. Sequences that reached a
 * use-after-free or spoke a reply twice are kept here as regressions (run it
 * under ASan: scripts/test-sanitizers). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stts_daemon.h"
#include "test.h"

/* Every sentence as "session|message_id|text\n"; barge-ins as "session|STOP\n". */
static char out[1 << 16];
static size_t out_n;

static void on_sentence(void *user, const char *session, const ingest_sentence *s) {
    (void)user;
    out_n += (size_t)snprintf(out + out_n, sizeof out - out_n, "%s|%s|%s\n", session, s->message_id, s->text);
}

static void on_stop(void *user, const char *session) {
    (void)user;
    out_n += (size_t)snprintf(out + out_n, sizeof out - out_n, "%s|STOP\n", session);
}

static daemon_hub *hub_new(int notice_dedup_ms) {
    daemon_hub_params p;
    daemon_hub_default_params(&p);
    p.text.merge_short_chars = 0;   /* one sentence per line here */
    p.stop_grace_ms = 0;            /* a Stop is reconciled at once */
    (void)notice_dedup_ms;
    daemon_hub_callbacks cb = {on_sentence, on_stop};
    daemon_hub *h = NULL;
    stts_error err;
    stts_error_clear(&err);
    if (daemon_hub_new(&p, &cb, NULL, &h, &err) != STTS_OK) return NULL;
    out_n = 0;
    out[0] = '\0';
    return h;
}

/* One payload as the server hands it over: a request line through the
 * protocol reader first (which may refuse it), then the hub. */
static stts_status hook(daemon_hub *h, const char *payload, const char **what) {
    char line[4096];
    snprintf(line, sizeof line, "{\"v\":1,\"op\":\"hook\",\"payload\":%s}", payload);
    daemon_request rq;
    stts_error err;
    stts_error_clear(&err);
    const char *w = "";
    stts_status st = daemon_request_parse(line, strlen(line), &rq, &err);
    if (st == STTS_OK) {
        st = daemon_hub_hook(h, rq.payload, &w, &err);
        daemon_request_clear(&rq);
    }
    if (what) *what = w;
    return st;
}

static stts_status md(daemon_hub *h, const char *sid, const char *turn, const char *mid, long index,
                      const char *delta, int final) {
    char pl[2048];
    snprintf(pl, sizeof pl,
             "{\"session_id\":\"%s\",\"hook_event_name\":\"MessageDisplay\",\"turn_id\":\"%s\","
             "\"message_id\":\"%s\",\"index\":%ld,\"final\":%s,\"delta\":\"%s\"}",
             sid, turn, mid, index, final ? "true" : "false", delta);
    return hook(h, pl, NULL);
}

#if defined(__GNUC__)
__attribute__((unused))
#endif
static void ev(daemon_hub *h, const char *sid, const char *name, const char *more) {
    char pl[2048];
    snprintf(pl, sizeof pl, "{\"session_id\":\"%s\",\"hook_event_name\":\"%s\"%s%s}", sid, name,
             more ? "," : "", more ? more : "");
    CHECK(hook(h, pl, NULL) == STTS_OK);
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* index < 0 or absurdly large is refused with a message (protocol reader
 * and hub both); the sequence that freed the message being spoken (a
 * spoken message, then 63 created by refused-index batches, then one more)
 * now runs clean and the pending sentence keeps its message id. */
static void test_index_out_of_range(void) {
    daemon_hub *h = hub_new(-1);
    CHECK(h != NULL);
    if (!h) return;
    CHECK(md(h, "S", "t1", "m0", 0, "Text one without an end", 0) == STTS_OK);
    for (int i = 1; i < 64; i++) {
        char id[16];
        snprintf(id, sizeof id, "x%d", i);
        CHECK(md(h, "S", "t1", id, -1, "ignored\\n", 0) == STTS_ERR_FORMAT);
    }
    CHECK(md(h, "S", "t1", "m64", 0, "Next message.\\n", 0) == STTS_OK);
    CHECK(count(out, "S|m0|Text one without an end\n") == 1);
    CHECK(count(out, "S|m64|Next message.\n") == 1);
    CHECK(count(out, "ignored") == 0);
    /* The limit, and the reply text a client sees. */
    CHECK(md(h, "S", "t1", "m65", 1000000000000L, "Big.\\n", 0) == STTS_ERR_FORMAT);
    CHECK(md(h, "S", "t1", "m65", DAEMON_MAX_INDEX, "Big.\\n", 1) == STTS_OK);
    daemon_request rq;
    stts_error err;
    stts_error_clear(&err);
    const char *bad = "{\"v\":1,\"op\":\"hook\",\"payload\":{\"session_id\":\"S\",\"hook_event_name\":"
                      "\"MessageDisplay\",\"message_id\":\"m\",\"index\":-1,\"delta\":\"x\"}}";
    CHECK(daemon_request_parse(bad, strlen(bad), &rq, &err) == STTS_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "index") != NULL, "error: %s", err.msg);
    daemon_hub_free(h);
}

int main(void) {
    TEST_RUN(test_index_out_of_range);
    return TEST_SUMMARY();
}
