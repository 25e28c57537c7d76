/* fuzz_hub.c - libFuzzer target for the daemon's hub (src/daemon/hub.c): the
 * input's lines (at most 64) as a sequence of requests to a fresh hub, in the
 * mode the first byte picks (bit 0: --on-prompt continue; bit 1: no Stop
 * grace); hook payloads, pipe lines and ends are acted on, then every timer
 * is run. Hostile sequences (Stops of unknown or old prompts by the dozen,
 * batches of closed turns, ids of any length...) must not crash or leak.
 * fuzz_protocol fuzzes the reader of one line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stts_daemon.h"

static void on_sentence(void *user, const char *session, const ingest_sentence *s) {
    (void)user;
    (void)session;
    if (!s->text) abort();
}

static void on_stop(void *user, const char *session) {
    (void)user;
    (void)session;
}

static void hub_sequence(const uint8_t *data, size_t size) {
    if (!size) return;
    daemon_hub_params p;
    daemon_hub_default_params(&p);
    p.stop_on_prompt = !(data[0] & 1);
    p.stop_grace_ms = data[0] & 2 ? 0 : 250;
    daemon_hub_callbacks cb = {on_sentence, on_stop};
    daemon_hub *h = NULL;
    stts_error err;
    stts_error_clear(&err);
    if (daemon_hub_new(&p, &cb, NULL, &h, &err) != STTS_OK) return;
    const char *s = (const char *)data + 1, *end = (const char *)data + size;
    for (int n = 0; s < end && n < 64; n++) {
        const char *e = memchr(s, '\n', (size_t)(end - s));
        if (!e) e = end;
        daemon_request rq;
        stts_error_clear(&err);
        if (daemon_request_parse(s, (size_t)(e - s), &rq, &err) == STTS_OK) {
            const char *what = NULL;
            if (rq.op == DAEMON_OP_HOOK) {
                if (daemon_hub_hook(h, rq.payload, &what, &err) == STTS_OK && !what) abort();
            } else if (rq.op == DAEMON_OP_LINE) {
                daemon_hub_line(h, rq.session, rq.line, rq.line_len, &err);
            } else if (rq.op == DAEMON_OP_END && rq.session) {
                daemon_hub_end(h, rq.session);
            }
            daemon_request_clear(&rq);
        }
        s = e + 1;
    }
    daemon_hub_tick(h, stts_now_ns() + 10000000000ull);
    daemon_hub_free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hub_sequence(data, size);
    return 0;
}
