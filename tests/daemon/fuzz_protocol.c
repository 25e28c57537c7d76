/* fuzz_protocol.c - libFuzzer target for the daemon's protocol reader: any
 * bytes as one request line must parse or be refused with a message, never
 * crash or leak; a refused line's reply is valid JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stts_daemon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    daemon_request rq;
    stts_error err;
    stts_error_clear(&err);
    if (daemon_request_parse((const char *)data, size, &rq, &err) == STTS_OK) {
        /* What the server reads of an accepted request. */
        if (rq.op == DAEMON_OP_HOOK && !rq.payload) abort();
        /* A batch number out of range never reaches the hub. */
        if (rq.op == DAEMON_OP_HOOK && !daemon_index_ok(rq.payload)) abort();
        if (rq.op == DAEMON_OP_LINE && (!rq.line || !rq.session)) abort();
        if (rq.op == DAEMON_OP_REPLAY && (rq.n < 1 || rq.n > 16)) abort();
        if (rq.op == DAEMON_OP_SPEED && !(rq.x >= 0.25 && rq.x <= 4)) abort();
        (void)daemon_op_name(rq.op);
        daemon_request_clear(&rq);
    } else {
        if (!err.msg[0] || rq.root) abort();
        char *r = daemon_reply_error(err.msg);
        json_error_t je;
        json_t *j = r ? json_loads(r, 0, &je) : NULL;
        if (r && !j) abort();
        json_decref(j);
        free(r);
    }
    return 0;
}
