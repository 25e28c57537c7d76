/* test_golden.c - golden transcripts (tests/data/front/NAME.jsonl, written by
 * make-transcripts.py) against hand-checked sentence lists (NAME.expected), and
 * the re-chunking property: the same transcript with its text deltas split
 * and merged at random places, written through a pipe in random-size pieces,
 * yields the identical sentence list. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "stts_ingest.h"
#include "chunked_writer.h"
#include "test.h"

#define DATA STTS_SOURCE_DIR "/tests/data/front/"

typedef struct {
    const char *jsonl, *expected;
    int subagents, tools, tables;
    const char *lang;
} golden;

static const golden cases[] = {
    {DATA "text_only.jsonl", DATA "text_only.expected", 0, 0, 0, NULL},
    {DATA "partial_tools.jsonl", DATA "partial_tools.expected", 0, 0, 0, NULL},
    {DATA "partial_tools.jsonl", DATA "partial_tools.tools.expected", 0, 1, 0, NULL},
    {DATA "subagents_errors.jsonl", DATA "subagents_errors.expected", 0, 0, 0, NULL},
    {DATA "subagents_errors.jsonl", DATA "subagents_errors.all.expected", 1, 1, 0, NULL},
    {DATA "code_tables.jsonl", DATA "code_tables.expected", 0, 0, 0, NULL},
    {DATA "code_tables.jsonl", DATA "code_tables.jpn.expected", 0, 0, 1, "jpn_Jpan"},
    {DATA "japanese.jsonl", DATA "japanese.expected", 0, 0, 0, NULL},
    {STTS_SOURCE_DIR "/samples/session.jsonl", DATA "session.expected", 0, 0, 0, NULL},
};

typedef struct {
    char *buf;
    size_t len, cap;
    int warnings;
} out_t;

static void put(out_t *o, const char *s, size_t n) {
    if (o->len + n + 1 > o->cap) {
        o->cap = (o->len + n + 1) * 2;
        o->buf = realloc(o->buf, o->cap);
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}
static void cb(void *u, const ingest_sentence *s) {
    put(u, s->text, s->len);
    put(u, "\n", 1);
}
static void wcb(void *u, uint64_t line, const char *msg) {
    (void)line;
    fprintf(stderr, "warning: %s\n", msg);
    ((out_t *)u)->warnings++;
}

/* Runs a transcript held in memory through a pipe (written in random pieces)
 * and the front end; returns the sentences, one per line. */
static out_t run_bytes(const golden *g, const char *data, size_t len, unsigned seed) {
    out_t o = {0};
    put(&o, "", 0);
    ingest_params p;
    ingest_default_params(&p);
    p.speak_subagents = g->subagents;
    p.announce_tools = g->tools;
    p.text.read_tables = g->tables;
    if (g->lang) p.text.notice_lang = g->lang;
    ingest_frontend *fe;
    CHECK(ingest_frontend_new(&p, cb, wcb, &o, &fe, NULL) == STTS_OK);
    int fds[2];
    CHECK(pipe(fds) == 0);
    writer_arg w = {fds[1], data, len, seed, 97};
    pthread_t th;
    pthread_create(&th, NULL, chunked_writer, &w);
    ingest_reader *r;
    CHECK(ingest_reader_new(fds[0], 0, &r, NULL) == STTS_OK);
    for (;;) {
        ingest_line ln;
        ingest_result res;
        CHECK(ingest_reader_next(r, -1, &ln, &res, NULL) == STTS_OK);
        if (res != INGEST_GOT_LINE) break;
        ingest_frontend_feed(fe, ln.data, ln.len, ln.no, 0, ln.flags, NULL);
    }
    ingest_frontend_finish(fe, 0);
    pthread_join(th, NULL);
    close(fds[0]);
    ingest_reader_free(r);
    ingest_frontend_free(fe);
    return o;
}

static uint32_t rs = 2463534242u;
static uint32_t rnd(void) {
    rs ^= rs << 13;
    rs ^= rs >> 17;
    rs ^= rs << 5;
    return rs;
}

static int is_text_delta(json_t *o) {
    json_t *ev = json_object_get(o, "event");
    json_t *d = json_object_get(ev, "delta");
    const char *t = json_string_value(json_object_get(d, "type"));
    return t && strcmp(t, "text_delta") == 0;
}

static void emit_line(out_t *o, json_t *obj) {
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    put(o, s, strlen(s));
    put(o, "\n", 1);
    free(s);
}

/* The same transcript with each run of text deltas merged and re-split at
 * random code point boundaries. */
static out_t rechunk(const char *data) {
    out_t o = {0};
    put(&o, "", 0);
    json_t *tmpl = NULL;
    out_t text = {0};
    put(&text, "", 0);
    const char *p = data;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        json_t *obj = json_loadb(p, n, 0, NULL);
        int td = obj && is_text_delta(obj);
        if (td) {
            json_t *d = json_object_get(json_object_get(obj, "event"), "delta");
            const char *t = json_string_value(json_object_get(d, "text"));
            put(&text, t, strlen(t));
            if (!tmpl) tmpl = json_deep_copy(obj);
        }
        /* flush the collected text unless the next line continues it (and we choose to merge) */
        const char *q = nl ? nl + 1 : p + n;
        int next_td = 0;
        if (*q) {
            const char *nl2 = strchr(q, '\n');
            json_t *nx = json_loadb(q, nl2 ? (size_t)(nl2 - q) : strlen(q), 0, NULL);
            next_td = nx && is_text_delta(nx);
            json_decref(nx);
        }
        if (tmpl && !(next_td && rnd() % 3)) {
            size_t i = 0;
            while (i < text.len) {
                size_t k = 1 + rnd() % 12;
                if (k > text.len - i) k = text.len - i;
                while (i + k < text.len && ((unsigned char)text.buf[i + k] & 0xC0) == 0x80) k++;
                json_t *c = json_deep_copy(tmpl);
                json_object_set_new(json_object_get(json_object_get(c, "event"), "delta"), "text",
                                    json_stringn(text.buf + i, k));
                emit_line(&o, c);
                json_decref(c);
                i += k;
            }
            json_decref(tmpl);
            tmpl = NULL;
            text.len = 0;
        }
        if (!td) {
            put(&o, p, n);
            put(&o, "\n", 1);
        }
        json_decref(obj);
        p = nl ? nl + 1 : p + n;
    }
    free(text.buf);
    return o;
}

static void test_goldens(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const golden *g = &cases[i];
        size_t len, elen;
        char *data = test_read_file(g->jsonl, &len);
        char *want = test_read_file(g->expected, &elen);
        CHECK_MSG(data && want, "cannot read %s or %s", g->jsonl, g->expected);
        if (!data || !want) continue;
        out_t got = run_bytes(g, data, len, 7);
        CHECK_MSG(strcmp(got.buf, want) == 0, "%s (%s):\n--- got ---\n%s--- expected ---\n%s", g->jsonl, g->expected,
                  got.buf, want);
        CHECK_EQ_INT(got.warnings, 0);
        for (unsigned trial = 0; trial < 15; trial++) {
            out_t re = rechunk(data);
            out_t got2 = run_bytes(g, re.buf, re.len, trial * 31 + 1);
            CHECK_MSG(strcmp(got2.buf, want) == 0, "%s re-chunked (trial %u) differs:\n--- got ---\n%s", g->jsonl, trial,
                      got2.buf);
            int differs = strcmp(got2.buf, want) != 0;
            free(re.buf);
            free(got2.buf);
            if (differs) break;
        }
        free(got.buf);
        free(data);
        free(want);
    }
}

int main(void) {
    TEST_RUN(test_goldens);
    return TEST_SUMMARY();
}
