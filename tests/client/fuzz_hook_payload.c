/* fuzz_hook_payload.c - libFuzzer target for the hook client's payload
 * check (client_hook_request): any bytes as stdin. An accepted payload
 * becomes one line without a newline that parses as {"v":1,"op":"hook",
 * "payload":P} with P equal, as JSON, to the input (its unpaired surrogate
 * escapes read as \ufffd). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stts_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *line;
    size_t n;
    char ev[16];
    stts_error e;
    if (client_hook_request((const char *)data, size, &line, &n, ev, sizeof ev, &e) != STTS_OK) {
        if (line) abort();
        return 0;
    }
    if (strlen(line) != n || memchr(line, '\n', n) || strlen(ev) >= sizeof ev) abort();
    /* as the client and the daemon read them: a huge integer is JSON too,
     * \u0000 is allowed and an unpaired surrogate escape reads as \ufffd */
    json_t *req = json_loadb(line, n, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
    char *fixed = malloc(size ? size : 1);
    if (!fixed) abort();
    memcpy(fixed, data, size);
    client_json_fix_surrogates(fixed, size);
    json_t *in = json_loadb(fixed, size, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
    free(fixed);
    if (!json_is_object(req) || !json_is_object(in)) abort();
    if (json_number_value(json_object_get(req, "v")) != 1.0) abort();
    const char *op = json_string_value(json_object_get(req, "op"));
    if (!op || strcmp(op, "hook") != 0 || json_object_size(req) != 3) abort();
    if (!json_equal(json_object_get(req, "payload"), in)) abort();
    json_decref(req);
    json_decref(in);
    free(line);
    return 0;
}
