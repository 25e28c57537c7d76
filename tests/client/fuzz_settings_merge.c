/* fuzz_settings_merge.c - libFuzzer target for the settings.json merge of
 * `stream-tts install-hooks`: any bytes as the user's file. A refused file
 * yields no text; an accepted one yields a JSON object holding all of our 7
 * entries, which merges again to no change and uninstalls to none of ours. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stts_client.h"

#define CMD "/usr/local/bin/stream-tts"

static int ours(const char *t) {
    int n = 0;
    for (const char *p = t; (p = strstr(p, "\"" CMD "\"")); p++) n++;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    stts_error e;
    client_settings_in in = {"fuzz.json", (const char *)data, size, CMD, 0};
    client_settings_out o;
    stts_status st = client_settings_merge(&in, &o, &e);
    in.uninstall = 1;
    client_settings_out un;
    stts_status su = client_settings_merge(&in, &un, &e);
    if ((st == STTS_OK) != (su == STTS_OK)) abort(); /* both read the same file */
    free(un.text);
    if (st != STTS_OK) {
        if (o.text) abort();
        return 0;
    }
    json_t *j = json_loads(o.text, 0, NULL);
    if (!json_is_object(j)) abort();
    json_decref(j);
    /* The command string may also appear in the user's own values. */
    if (ours(o.text) < 7) abort();
    client_settings_in again = {"out.json", o.text, strlen(o.text), CMD, 0};
    client_settings_out o2;
    if (client_settings_merge(&again, &o2, &e) != STTS_OK || o2.changed || strcmp(o2.text, o.text) != 0) abort();
    free(o2.text);
    again.uninstall = 1;
    client_settings_out u;
    if (client_settings_merge(&again, &u, &e) != STTS_OK || u.removed < 7) abort();
    client_settings_in check = {"u.json", u.text, strlen(u.text), CMD, 1};
    client_settings_out u2;
    if (client_settings_merge(&check, &u2, &e) != STTS_OK || u2.changed) abort();
    free(u2.text);
    free(u.text);
    free(o.text);
    return 0;
}
