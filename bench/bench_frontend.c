/* bench_frontend.c - throughput and latency of the front end (ingest +
 * clean + segment) on one core.
 *
 * Generates a synthetic stream-json session in memory: turns of partial
 * messages (text deltas of 1-14 characters carrying markdown, code blocks,
 * lists, tables, URLs and paths; the complete assistant lines; tool calls
 * with streamed input) and tool results of 2-200 KB. Then measures, on the
 * same bytes:
 *   front end   line split + ingest_frontend_feed for every line   (MB/s)
 *   peer 1      memchr line splitting only                          (MB/s)
 *   peer 2      line split + jansson json_loadb/json_decref per line (MB/s)
 * and the latency from handing in the line that completes a sentence to the
 * sentence callback (p50, p99, max).
 *
 * usage: bench_frontend [--mb N] [--reps N]      (default 128 MB, 3 reps; best rep reported) */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stts_ingest.h"

typedef struct {
    char *p;
    size_t len, cap;
} buf;

static void put(buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) { fprintf(stderr, "out of memory\n"); exit(1); }
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}
static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

static uint32_t rs = 88172645u;
static uint32_t rnd(void) {
    rs ^= rs << 13;
    rs ^= rs >> 17;
    rs ^= rs << 5;
    return rs;
}

/* JSON string body (without quotes) of s, escaped by jansson. */
static void put_json_string(buf *b, const char *s, size_t n) {
    json_t *j = json_stringn(s, n);
    char *t = json_dumps(j, JSON_ENCODE_ANY);
    put(b, t, strlen(t));
    free(t);
    json_decref(j);
}

static const char *const prose[] = {
    "I'll look at the failing test in `tests/parser/test_tokens.c` first. ",
    "The tokenizer drops the **last token** when the input ends without a newline. ",
    "See https://github.com/example/project/issues/1234 for the original report. ",
    "Version v2.4.1 fixed a similar bug, e.g. in /home/dev/project/src/lexer/scan.c at line 88. ",
    "This is expected: the cache holds 3.5 MB and evicts in batches of 16! ",
    "Should I also update the docs? ",
    "The build takes about 12.5 seconds on this machine, which is fine for now, and the tests pass. ",
    "\xE4\xBF\xAE\xE6\xAD\xA3\xE3\x81\x97\xE3\x81\xBE\xE3\x81\x97\xE3\x81\x9F\xE3\x80\x82",
};
static const char *const blocks[] = {
    "\n\n```c\nint main(void) {\n    return run(argc, argv);\n}\n```\n\n",
    "\n\n| Name | Size |\n|---|---|\n| alpha | 2 MB |\n| beta | 9 MB |\n\n",
    "\n\n- first item with `code`\n- second item with a [link](https://example.com/x)\n\n",
    "\n\n## Summary\n\n",
};

static void gen_text(buf *t) {
    t->len = 0;
    int n = 6 + (int)(rnd() % 20);
    for (int i = 0; i < n; i++) {
        const char *s = (rnd() % 6 == 0) ? blocks[rnd() % 4] : prose[rnd() % 8];
        puts_(t, s);
    }
    put(t, "", 0);
    t->p[t->len] = '\0';
}

static void gen(buf *out, size_t target) {
    buf text = {0}, tmp = {0};
    int msg = 0, tool = 0;
    puts_(out, "{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"bench\",\"tools\":[\"Bash\",\"Read\"]}\n");
    while (out->len < target) {
        char id[32];
        snprintf(id, sizeof id, "msg_%08d", ++msg);
        puts_(out, "{\"type\":\"stream_event\",\"event\":{\"type\":\"message_start\",\"message\":{\"id\":\"");
        puts_(out, id);
        puts_(out, "\"}},\"parent_tool_use_id\":null,\"session_id\":\"bench\"}\n");
        puts_(out, "{\"type\":\"stream_event\",\"event\":{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}},\"parent_tool_use_id\":null,\"session_id\":\"bench\"}\n");
        gen_text(&text);
        for (size_t i = 0; i < text.len;) {
            size_t k = 1 + rnd() % 14;
            if (k > text.len - i) k = text.len - i;
            while (i + k < text.len && ((unsigned char)text.p[i + k] & 0xC0) == 0x80) k++;
            puts_(out, "{\"type\":\"stream_event\",\"event\":{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":");
            put_json_string(out, text.p + i, k);
            puts_(out, "}},\"parent_tool_use_id\":null,\"session_id\":\"bench\"}\n");
            i += k;
        }
        puts_(out, "{\"type\":\"assistant\",\"message\":{\"id\":\"");
        puts_(out, id);
        puts_(out, "\",\"model\":\"claude\",\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":");
        put_json_string(out, text.p, text.len);
        puts_(out, "}]},\"parent_tool_use_id\":null,\"session_id\":\"bench\"}\n");
        puts_(out, "{\"type\":\"stream_event\",\"event\":{\"type\":\"content_block_stop\",\"index\":0},\"parent_tool_use_id\":null,\"session_id\":\"bench\"}\n");
        /* a tool call and its (large) result */
        char tid[32];
        snprintf(tid, sizeof tid, "toolu_%08d", ++tool);
        puts_(out, "{\"type\":\"stream_event\",\"event\":{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"");
        puts_(out, tid);
        puts_(out, "\",\"name\":\"Bash\",\"input\":{}}},\"parent_tool_use_id\":null}\n");
        const char *parts[] = {"{\\\"command\\\": ", "\\\"make -j2 ", "&& ctest\\\"}"};
        for (int i = 0; i < 3; i++) {
            puts_(out, "{\"type\":\"stream_event\",\"event\":{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"");
            puts_(out, parts[i]);
            puts_(out, "\"}},\"parent_tool_use_id\":null}\n");
        }
        puts_(out, "{\"type\":\"assistant\",\"message\":{\"id\":\"");
        puts_(out, id);
        puts_(out, "\",\"content\":[{\"type\":\"tool_use\",\"id\":\"");
        puts_(out, tid);
        puts_(out, "\",\"name\":\"Bash\",\"input\":{\"command\":\"make -j2 && ctest\"}}]},\"parent_tool_use_id\":null}\n");
        puts_(out, "{\"type\":\"stream_event\",\"event\":{\"type\":\"content_block_stop\",\"index\":1},\"parent_tool_use_id\":null}\n");
        puts_(out, "{\"type\":\"stream_event\",\"event\":{\"type\":\"message_stop\"},\"parent_tool_use_id\":null}\n");
        tmp.len = 0;
        size_t rl = 2000 + rnd() % 200000;
        while (tmp.len < rl) puts_(&tmp, "[ 42%] Building C object src/text/CMakeFiles/stts_text.dir/stream.c.o\n\tok \"quoted\"\n");
        puts_(out, "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":[{\"tool_use_id\":\"");
        puts_(out, tid);
        puts_(out, "\",\"type\":\"tool_result\",\"content\":");
        put_json_string(out, tmp.p, tmp.len);
        puts_(out, ",\"is_error\":false}]},\"parent_tool_use_id\":null,\"session_id\":\"bench\"}\n");
        if (msg % 4 == 0)
            puts_(out, "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"done\",\"session_id\":\"bench\"}\n");
    }
    free(text.p);
    free(tmp.p);
}

static uint64_t *lat;
static size_t nlat, caplat, nsent;

static void on_sentence(void *user, const ingest_sentence *s) {
    (void)user;
    nsent++;
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 4096;
        lat = realloc(lat, caplat * sizeof *lat);
    }
    lat[nlat++] = s->emit_ns - s->arrival_ns;
}
static void on_warn(void *user, uint64_t line, const char *msg) {
    (void)user;
    (void)line;
    fprintf(stderr, "warning: %s\n", msg);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    size_t mb = 128;
    int reps = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--mb") == 0 && i + 1 < argc) mb = (size_t)atol(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else { fprintf(stderr, "usage: bench_frontend [--mb N] [--reps N]\n"); return 2; }
    }
    buf in = {0};
    gen(&in, mb << 20);
    size_t lines = 0;
    for (size_t i = 0; i < in.len; i++) lines += in.p[i] == '\n';
    double best_fe = 1e30, best_split = 1e30, best_json = 1e30;
    ingest_stats st = {0};
    for (int r = 0; r < reps; r++) {
        /* peer 1: memchr line splitting */
        uint64_t t0 = stts_now_ns();
        size_t cnt = 0;
        for (const char *p = in.p, *e = in.p + in.len; p < e;) {
            const char *nl = memchr(p, '\n', (size_t)(e - p));
            if (!nl) break;
            cnt += (size_t)(nl - p) > 0;
            p = nl + 1;
        }
        double dt = (double)(stts_now_ns() - t0) / 1e9;
        if (cnt == 0) return 1;
        if (dt < best_split) best_split = dt;
        /* peer 2: jansson parse of every line */
        t0 = stts_now_ns();
        for (const char *p = in.p, *e = in.p + in.len; p < e;) {
            const char *nl = memchr(p, '\n', (size_t)(e - p));
            json_t *j = json_loadb(p, (size_t)(nl - p), JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
            json_decref(j);
            p = nl + 1;
        }
        dt = (double)(stts_now_ns() - t0) / 1e9;
        if (dt < best_json) best_json = dt;
        /* the front end */
        nlat = nsent = 0;
        ingest_frontend *fe;
        if (ingest_frontend_new(NULL, on_sentence, on_warn, NULL, &fe, NULL) != STTS_OK) return 1;
        t0 = stts_now_ns();
        uint64_t no = 0;
        for (const char *p = in.p, *e = in.p + in.len; p < e;) {
            const char *nl = memchr(p, '\n', (size_t)(e - p));
            ingest_frontend_feed(fe, p, (size_t)(nl - p), ++no, stts_now_ns(), 0, NULL);
            p = nl + 1;
        }
        ingest_frontend_finish(fe, stts_now_ns());
        dt = (double)(stts_now_ns() - t0) / 1e9;
        ingest_frontend_stats(fe, &st);
        ingest_frontend_free(fe);
        if (dt < best_fe) best_fe = dt;
    }
    qsort(lat, nlat, sizeof *lat, cmp_u64);
    double mbytes = (double)in.len / 1e6;
    printf("input: %.1f MB, %zu lines, %llu stream events, %llu sentences + %llu notices\n", mbytes, lines,
           (unsigned long long)st.stream_events, (unsigned long long)st.sentences, (unsigned long long)st.notices);
    printf("%-44s %10s %14s\n", "pass (one core, best of reps)", "MB/s", "time vs peer");
    printf("%-44s %10.0f %14s\n", "front end (split + ingest + clean + segment)", mbytes / best_fe, "-");
    printf("%-44s %10.0f %13.2fx\n", "peer: jansson json_loadb per line", mbytes / best_json, best_fe / best_json);
    printf("%-44s %10.0f %13.0fx\n", "peer: memchr line split only", mbytes / best_split, best_fe / best_split);
    if (nlat) {
        printf("latency, line handed in -> sentence callback (%zu sentences, last rep):\n", nlat);
        printf("  p50 %.2f us   p99 %.2f us   max %.2f us\n", (double)lat[nlat / 2] / 1e3,
               (double)lat[(size_t)((double)nlat * 0.99)] / 1e3, (double)lat[nlat - 1] / 1e3);
    }
    free(in.p);
    free(lat);
    return 0;
}
