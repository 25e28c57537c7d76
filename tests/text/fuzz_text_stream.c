/* fuzz_text_stream.c - libFuzzer target for the cleaner + segmenter: the
 * first bytes pick options and a split pattern, the rest is markdown fed in
 * pieces; ticks at random times. Checks that every sentence is valid UTF-8,
 * trimmed, without newlines, and within the length limit where one applies. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stts_text.h"

static void cb(void *u, const text_sentence *s) {
    const text_params *p = u;
    if (s->len != strlen(s->text)) abort();
    if (stts_utf8_valid_prefix((const unsigned char *)s->text, s->len) != s->len) abort();
    if (s->len == 0 || s->text[0] == ' ' || s->text[s->len - 1] == ' ' || memchr(s->text, '\n', s->len)) abort();
    if (s->kind == TEXT_SPEECH && p->max_sentence_chars && !p->merge_short_chars) {
        size_t chars = 0;
        for (size_t i = 0; i < s->len; i++) chars += ((unsigned char)s->text[i] & 0xC0) != 0x80;
        if (chars > p->max_sentence_chars) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    text_params p;
    text_default_params(&p);
    p.read_tables = data[0] & 1;
    p.merge_short_chars = (data[0] & 2) ? 10 : 0;
    p.max_sentence_chars = (data[0] & 4) ? 20 + data[1] % 64 : 200;
    p.notice_lang = (data[0] & 8) ? "jpn_Jpan" : "eng_Latn";
    p.idle_flush_ns = 100;
    unsigned split = data[2];
    data += 3;
    size -= 3;
    text_stream *ts;
    if (text_stream_new(&p, cb, &p, &ts, NULL) != STTS_OK) return 0;
    uint64_t t = 0;
    size_t i = 0;
    while (i < size) {
        size_t k = 1 + (split + i) % 17;
        if (k > size - i) k = size - i;
        text_stream_feed(ts, (const char *)data + i, k, t, NULL);
        t += (split & 1) ? 150 : 10;
        if ((i + split) % 5 == 0) text_stream_tick(ts, t);
        i += k;
    }
    text_stream_end(ts, t);
    text_stream_free(ts);
    return 0;
}
