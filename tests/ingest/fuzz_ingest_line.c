/* fuzz_ingest_line.c - libFuzzer target for the line handler: the input is
 * split at '\n' into lines fed to a front end (stream-json or transcript
 * mode, all speaking options on or off by the first byte), with ticks.
 * Every sentence must be valid, trimmed UTF-8 without newlines. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stts_ingest.h"

static void cb(void *u, const ingest_sentence *s) {
    (void)u;
    if (s->len != strlen(s->text) || s->len == 0) abort();
    if (stts_utf8_valid_prefix((const unsigned char *)s->text, s->len) != s->len) abort();
    if (memchr(s->text, '\n', s->len) || !s->message_id) abort();
    if (s->kind != TEXT_SPEECH && !s->lang) abort();
}
static void warn(void *u, uint64_t line, const char *msg) {
    (void)u;
    (void)line;
    if (!msg || strncmp(msg, "line ", 5) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    ingest_params p;
    ingest_default_params(&p);
    uint8_t f = data[0];
    p.speak_subagents = f & 1;
    p.announce_tools = (f >> 1) & 1;
    p.speak_thinking = (f >> 2) & 1;
    p.transcript = (f >> 3) & 1;
    p.text.read_tables = (f >> 4) & 1;
    p.text.notice_lang = (f >> 5) & 1 ? "jpn_Jpan" : "eng_Latn";
    p.text.idle_flush_ns = 1000;
    ingest_frontend *fe;
    if (ingest_frontend_new(&p, cb, warn, NULL, &fe, NULL) != STTS_OK) return 0;
    const char *s = (const char *)data + 1, *end = (const char *)data + size;
    uint64_t no = 0, t = 0;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
        ingest_frontend_feed(fe, s, n, ++no, t, nl ? 0 : INGEST_LINE_TRUNCATED, NULL);
        t += (f & 0x40) ? 2000 : 10;
        if (no % 3 == 0) ingest_frontend_tick(fe, t);
        s += n + (nl ? 1 : 0);
    }
    ingest_frontend_finish(fe, t);
    ingest_frontend_free(fe);
    return 0;
}
