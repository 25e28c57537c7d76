/* fuzz_text_stream.c - libFuzzer target for the cleaner + segmenter. The
 * first bytes pick options and a split pattern; the rest is markdown. Checks:
 * every sentence is valid UTF-8, trimmed, one line, and within the length
 * limit where one applies; and the sentences do not depend on the split
 * (whole input vs. pieces, no timer). A third run adds idle ticks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stts_text.h"

typedef struct {
    const text_params *p;
    char *out;
    size_t len, cap;
} sink;

static void cb(void *u, const text_sentence *s) {
    sink *k = u;
    if (s->len != strlen(s->text)) abort();
    if (stts_utf8_valid_prefix((const unsigned char *)s->text, s->len) != s->len) abort();
    if (s->len == 0 || s->text[0] == ' ' || s->text[s->len - 1] == ' ' || memchr(s->text, '\n', s->len)) abort();
    if (s->kind == TEXT_SPEECH && k->p->max_sentence_chars && !k->p->merge_short_chars) {
        size_t chars = 0;
        for (size_t i = 0; i < s->len; i++) chars += ((unsigned char)s->text[i] & 0xC0) != 0x80;
        if (chars > k->p->max_sentence_chars) abort();
    }
    if (!k->out) return;
    if (k->len + s->len + 2 > k->cap) {
        k->cap = (k->len + s->len + 2) * 2;
        k->out = realloc(k->out, k->cap);
    }
    memcpy(k->out + k->len, s->text, s->len);
    k->len += s->len;
    k->out[k->len++] = '\x1e';
}

static void run(const text_params *p, const uint8_t *data, size_t size, unsigned split, int ticks, sink *k) {
    text_stream *ts;
    if (text_stream_new(p, cb, k, &ts, NULL) != STTS_OK) abort();
    uint64_t t = 0;
    size_t i = 0;
    while (i < size) {
        size_t n = split ? 1 + (split + i) % 17 : size;
        if (n > size - i) n = size - i;
        text_stream_feed(ts, (const char *)data + i, n, t, NULL);
        if (ticks) {
            t += (split & 1) ? 150 : 10;
            if ((i + split) % 5 == 0) text_stream_tick(ts, t);
        }
        i += n;
    }
    text_stream_end(ts, t);
    text_stream_free(ts);
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
    unsigned split = data[2] | 1u;
    data += 3;
    size -= 3;
    sink whole = {&p, malloc(64), 0, 64}, pieces = {&p, malloc(64), 0, 64}, timed = {&p, NULL, 0, 0};
    run(&p, data, size, 0, 0, &whole);
    run(&p, data, size, split, 0, &pieces);
    if (whole.len != pieces.len || memcmp(whole.out, pieces.out, whole.len) != 0) abort();
    run(&p, data, size, split, 1, &timed);
    free(whole.out);
    free(pieces.out);
    return 0;
}
