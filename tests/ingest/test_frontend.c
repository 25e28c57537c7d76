/* test_frontend.c - the ingestion rules: which text of Claude Code's
 * stream-json is spoken, exactly once; notices; bad input with warnings that
 * name the line; counters; transcripts and Stop-hook payloads. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdlib.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "stts_ingest.h"
#include "test.h"

#define MAXS 64
typedef struct {
    char s[MAXS][512];
    char id[MAXS][64];
    text_kind kind[MAXS];
    char lang[MAXS][16];
    uint64_t line[MAXS], seq[MAXS], arrival[MAXS], emit[MAXS];
    int n;
    char warn[MAXS][400];
    uint64_t warn_line[MAXS];
    int nw;
} coll;

static void cb(void *u, const ingest_sentence *s) {
    coll *c = u;
    if (c->n >= MAXS) return;
    snprintf(c->s[c->n], sizeof c->s[0], "%s", s->text);
    snprintf(c->id[c->n], sizeof c->id[0], "%s", s->message_id);
    snprintf(c->lang[c->n], sizeof c->lang[0], "%s", s->lang ? s->lang : "");
    c->kind[c->n] = s->kind;
    c->line[c->n] = s->line_no;
    c->seq[c->n] = s->seq;
    c->arrival[c->n] = s->arrival_ns;
    c->emit[c->n] = s->emit_ns;
    c->n++;
}
static void wcb(void *u, uint64_t line, const char *msg) {
    coll *c = u;
    if (c->nw >= MAXS) return;
    snprintf(c->warn[c->nw], sizeof c->warn[0], "%s", msg);
    c->warn_line[c->nw++] = line;
}

static ingest_stats run_p(const ingest_params *p, const char *const *lines, coll *c) {
    memset(c, 0, sizeof *c);
    ingest_frontend *fe;
    CHECK(ingest_frontend_new(p, cb, wcb, c, &fe, NULL) == STTS_OK);
    uint64_t n = 0;
    for (; lines[n]; n++)
        CHECK(ingest_frontend_feed(fe, lines[n], strlen(lines[n]), n + 1, 1000 + n, 0, NULL) == STTS_OK);
    ingest_frontend_finish(fe, 1000 + n);
    ingest_stats st;
    ingest_frontend_stats(fe, &st);
    ingest_frontend_free(fe);
    for (int i = 1; i < c->n; i++) CHECK(c->seq[i] == c->seq[i - 1] + 1);
    return st;
}
static ingest_stats run(const char *const *lines, coll *c) {
    ingest_params p;
    ingest_default_params(&p);
    p.text.merge_short_chars = 0;
    return run_p(&p, lines, c);
}

/* Feeds tests/DIR/NAME line by line (lines split at '\n'). */
static ingest_stats run_in(const char *dir, const char *name, coll *c) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/%s/%s", STTS_SOURCE_DIR, dir, name);
    size_t len;
    char *data = test_read_file(path, &len);
    CHECK_MSG(data != NULL, "cannot read %s", path);
    const char *lines[64] = {0};
    int n = 0;
    for (char *p = data; data && *p && n < 63; n++) {
        lines[n] = p;
        char *nl = strchr(p, '\n');
        if (!nl) break;
        *nl = '\0';
        p = nl + 1;
    }
    ingest_stats st = run(lines, c);
    free(data);
    return st;
}
static ingest_stats run_file(const char *name, coll *c) { return run_in("data/front", name, c); }

static void joined(const coll *c, char *out, size_t cap) {
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < c->n && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s%s%s%s", i ? " | " : "", c->kind[i] ? "{" : "",
                              c->kind[i] ? text_kind_name(c->kind[i]) : "", c->kind[i] ? "}" : "", c->s[i]);
}
#define EXPECT(c, want) do { char j_[8192]; joined((c), j_, sizeof j_); CHECK_EQ_STR(j_, want); } while (0)

/* stream-json building blocks */
#define EV(x) "{\"type\":\"stream_event\",\"parent_tool_use_id\":null,\"event\":" x "}"
#define EVP(p, x) "{\"type\":\"stream_event\",\"parent_tool_use_id\":\"" p "\",\"event\":" x "}"
#define START(id) EV("{\"type\":\"message_start\",\"message\":{\"id\":\"" id "\"}}")
#define BSTART(i, t) EV("{\"type\":\"content_block_start\",\"index\":" #i ",\"content_block\":{\"type\":\"" t "\"}}")
#define DELTA(i, txt) EV("{\"type\":\"content_block_delta\",\"index\":" #i ",\"delta\":{\"type\":\"text_delta\",\"text\":\"" txt "\"}}")
#define BSTOP(i) EV("{\"type\":\"content_block_stop\",\"index\":" #i "}")
#define MSTOP EV("{\"type\":\"message_stop\"}")
#define ASSIST(id, txt) "{\"type\":\"assistant\",\"message\":{\"id\":\"" id "\",\"model\":\"claude\",\"content\":[{\"type\":\"text\",\"text\":\"" txt "\"}]},\"parent_tool_use_id\":null}"
#define RESULT(txt) "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"" txt "\"}"

static void test_partial_spoken_once(void) {
    const char *L[] = {START("m1"), BSTART(0, "text"), DELTA(0, "Hello wor"), DELTA(0, "ld. Second sen"),
                       DELTA(0, "tence here."), ASSIST("m1", "Hello world. Second sentence here."), BSTOP(0),
                       MSTOP, RESULT("Hello world. Second sentence here."), NULL};
    coll c;
    ingest_stats st = run(L, &c);
    EXPECT(&c, "Hello world. | Second sentence here.");
    CHECK_EQ_STR(c.id[0], "m1");
    CHECK_EQ_INT(c.line[0], 4);   /* "ld. " completed it */
    CHECK_EQ_INT(c.arrival[0], 1003);
    CHECK_EQ_INT(c.line[1], 7);   /* ended by content_block_stop */
    CHECK(c.emit[0] >= c.arrival[0]);
    CHECK_EQ_INT(st.duplicates, 1);
    CHECK_EQ_INT(st.stream_events, 7);
    CHECK_EQ_INT(st.results, 1);
    CHECK_EQ_INT(c.nw, 0);
}

static void test_non_partial_and_duplicates(void) {
    const char *L[] = {ASSIST("m1", "First answer here."), ASSIST("m1", "First answer here."),
                       ASSIST("m2", "Second answer here."), RESULT("Second answer here."), NULL};
    coll c;
    ingest_stats st = run(L, &c);
    EXPECT(&c, "First answer here. | Second answer here.");
    CHECK_EQ_STR(c.id[1], "m2");
    CHECK_EQ_INT(st.duplicates, 1);
}

/* Text blocks with citations: the API splits one sentence around each cited
 * span into several text blocks of one message; they are read as one
 * sentence (one line with all the blocks, a line per block, or streamed).
 * A block that ends a sentence, or one before a tool call, still ends there. */
#define TB(t) "{\"type\":\"text\",\"text\":\"" t "\"}"
#define TBC(t) "{\"type\":\"text\",\"text\":\"" t "\",\"citations\":[{\"type\":\"char_location\",\"cited_text\":\"x\"}]}"
#define ASSISTB(id, blocks) "{\"type\":\"assistant\",\"message\":{\"id\":\"" id "\",\"model\":\"claude\",\"content\":[" blocks "]},\"parent_tool_use_id\":null}"
static void test_citation_blocks(void) {
    const char *one[] = {ASSISTB("m1", TB("According to the docs, ") "," TBC("the sky is blue") "," TB(" and ") ","
                                       TBC("the grass is green") "," TB(". Next sentence here.")),
                         RESULT("x"), NULL};
    coll c;
    run(one, &c);
    EXPECT(&c, "According to the docs, the sky is blue and the grass is green. | Next sentence here.");
    const char *lines[] = {ASSISTB("m1", TB("According to the docs, ")), ASSISTB("m1", TBC("the sky is blue")),
                           ASSISTB("m1", TB(", they say.")), ASSISTB("m2", TB("A new message.")), NULL};
    run(lines, &c);
    EXPECT(&c, "According to the docs, the sky is blue, they say. | A new message.");
    const char *streamed[] = {START("m1"), BSTART(0, "text"), DELTA(0, "According to the docs, "), BSTOP(0),
                              BSTART(1, "text"), DELTA(1, "the sky is blue"), BSTOP(1),
                              BSTART(2, "text"), DELTA(2, " today. Then more."), BSTOP(2), MSTOP, NULL};
    run(streamed, &c);
    EXPECT(&c, "According to the docs, the sky is blue today. | Then more.");
    /* ends that stay ends: a finished sentence, a tool call between, a new message */
    const char *ends[] = {ASSISTB("m1", TB("First one.") "," TB("Second one")),
                          ASSISTB("m1", "{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"Bash\",\"input\":{}}"),
                          ASSISTB("m1", TB("third one")), ASSISTB("m2", TB("fourth one")), NULL};
    run(ends, &c);
    EXPECT(&c, "First one. | Second one | third one | fourth one");
}

/* Cited spans split a sentence into text blocks (test_citation_blocks). In
 * scripts written without spaces between words (Japanese, Chinese; Korean
 * particles; Thai) the seams have no space, and each block was said as a
 * sentence of its own ("東京の天気は" | "晴れ" | "です。"): the block ends
 * are no sentence ends when either side of the seam is such a script. */
static void test_citation_blocks_cjk(void) {
    coll c;
    run_file("citations_seams.jsonl", &c);
    EXPECT(&c, "東京の天気は晴れです。 | 서울의 날씨는 맑음입니다. | APIはRESTです。 | 大阪は雨でした。 | 次の文です。 | "
               "Use Python for scripts and Python for tests. | Run pytest first, then pytest again.");
    /* no continuation: the same line again after a block left open; an
     * English block without an end, then a Japanese one */
    const char *rep[] = {ASSISTB("m1", TB("Checking the value")), ASSISTB("m1", TB("Checking the value")),
                         ASSISTB("m1", TB("Change the parser")), ASSISTB("m1", TB("次は何をしますか？")), RESULT("x"), NULL};
    run(rep, &c);
    EXPECT(&c, "Checking the value | Change the parser | 次は何をしますか？");
}

/* A turn whose result line never came (killed CLI, cut capture): the next
 * turn's system/init starts a new turn anyway, so that turn's fallback
 * (its result text, its error notice) is neither lost nor repeated. */
#define INIT "{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"s1\"}"
static void test_missing_result(void) {
    const char *L[] = {INIT, ASSIST("m1", "First answer here."),            /* no result */
                       INIT, RESULT("Second answer here."),                 /* said only in its result */
                       INIT, ASSIST("m3", "Third answer here."), RESULT("Third answer here."),
                       INIT, ASSIST("m4", "Fourth answer here."), NULL};
    coll c;
    ingest_stats st = run(L, &c);
    EXPECT(&c, "First answer here. | Second answer here. | Third answer here. | Fourth answer here.");
    CHECK_EQ_INT(st.results, 2);
    CHECK_EQ_INT(c.nw, 1);   /* the missing result is said, once, at the line that showed it */
    CHECK(strstr(c.warn[0], "line 3: ") && strstr(c.warn[0], "result"));
    /* an error turn cut short must not silence the next turn's error */
    const char *E[] = {INIT, "{\"type\":\"assistant\",\"message\":{\"id\":\"e1\",\"model\":\"<synthetic>\",\"content\":"
                       "[{\"type\":\"text\",\"text\":\"API Error\"}]},\"error\":\"rate_limit\",\"parent_tool_use_id\":null}",
                       INIT, "{\"type\":\"result\",\"subtype\":\"error_during_execution\",\"is_error\":true}", NULL};
    run(E, &c);
    CHECK_EQ_INT(c.n, 2);
    CHECK_EQ_INT(c.kind[0], TEXT_NOTICE_ERROR);
    CHECK_EQ_INT(c.kind[1], TEXT_NOTICE_ERROR);
}

/* A second init comes when a background task finishes and the main agent
 * goes on (claude-stream-json.md §3), perhaps while a text block streams:
 * it ended the block (one sentence said as two pieces) and warned that the
 * turn had no result line. Mid-message, the next main-agent line decides:
 * the same message going on is no new turn; another message after an init
 * (the CLI killed mid-message) is, as an init after a finished message. */
#define TASK_DONE "{\"type\":\"system\",\"subtype\":\"task_notification\",\"session_id\":\"s1\",\"task_id\":\"bash_7\"," \
                  "\"status\":\"completed\",\"summary\":\"Background command completed\"}"
static void test_init_mid_block(void) {
    const char *L[] = {INIT, START("m1"), BSTART(0, "text"), DELTA(0, "While the bu"), DELTA(0, "ild runs, I will review "),
                       TASK_DONE, INIT, DELTA(0, "the parser changes."),
                       ASSIST("m1", "While the build runs, I will review the parser changes."), BSTOP(0), MSTOP,
                       RESULT("While the build runs, I will review the parser changes."), NULL};
    coll c;
    ingest_stats st = run(L, &c);
    EXPECT(&c, "While the build runs, I will review the parser changes.");
    CHECK_EQ_INT(c.nw, 0);
    CHECK_EQ_INT(st.results, 1);
    /* between two blocks of one message, too */
    const char *B[] = {INIT, START("m1"), BSTART(0, "text"), DELTA(0, "First block here."), BSTOP(0), INIT,
                       BSTART(1, "text"), DELTA(1, "Second block here."), BSTOP(1), MSTOP, RESULT("Second block here."),
                       INIT, ASSIST("m2", "Next turn."), RESULT("Next turn."), NULL};
    run(B, &c);
    EXPECT(&c, "First block here. | Second block here. | Next turn.");
    CHECK_EQ_INT(c.nw, 0);
    /* the CLI killed mid-block: the next message is a new turn, not a
     * retry of the cut one; warned at the init */
    const char *K[] = {INIT, START("m1"), BSTART(0, "text"), DELTA(0, "Cut short at "), INIT, START("m2"),
                       BSTART(0, "text"), DELTA(0, "Second turn here."), BSTOP(0), MSTOP, RESULT("Second turn here."), NULL};
    run(K, &c);
    EXPECT(&c, "Cut short at | Second turn here.");
    CHECK_EQ_INT(c.nw, 1);
    CHECK(strstr(c.warn[0], "line 5: ") && strstr(c.warn[0], "without a result line"));
    /* an init after a finished streamed message and no result: a new turn,
     * whose result (nothing else said in it) is its answer */
    const char *F[] = {INIT, START("m1"), BSTART(0, "text"), DELTA(0, "First answer here."), BSTOP(0), MSTOP,
                       TASK_DONE, INIT, RESULT("Second answer here."), NULL};
    run(F, &c);
    EXPECT(&c, "First answer here. | Second answer here.");
    CHECK_EQ_INT(c.nw, 1);
    CHECK(strstr(c.warn[0], "line 8: ") && strstr(c.warn[0], "without a result line"));
}

static void test_lost_deltas_suffix(void) {
    /* deltas stopped early: the assistant line supplies only the rest */
    const char *L[] = {START("m1"), BSTART(0, "text"), DELTA(0, "Hello wor"),
                       ASSIST("m1", "Hello world. And the rest of it."), BSTOP(0), MSTOP, NULL};
    coll c;
    run(L, &c);
    EXPECT(&c, "Hello world. | And the rest of it.");
    /* block started, no deltas at all (thinking budget set): the line is the source */
    const char *L2[] = {START("m2"), BSTART(0, "text"), ASSIST("m2", "Only the full line."), BSTOP(0), NULL};
    run(L2, &c);
    EXPECT(&c, "Only the full line.");
    /* assistant line after the stop: already spoken */
    const char *L3[] = {START("m3"), BSTART(0, "text"), DELTA(0, "Said once."), BSTOP(0), ASSIST("m3", "Said once."), NULL};
    run(L3, &c);
    EXPECT(&c, "Said once.");
    /* message_start lost: the deltas had no id, the full line must not repeat them */
    const char *L4[] = {BSTART(0, "text"), DELTA(0, "No start event here."), ASSIST("m4", "No start event here."), BSTOP(0), NULL};
    ingest_stats st = run(L4, &c);
    EXPECT(&c, "No start event here.");
    CHECK_EQ_INT(st.duplicates, 1);
    /* the complete line after the stop (and after message_stop, the order the
     * SDK documents), deltas lost: only the rest, never the start again */
    const char *L5[] = {START("m5"), BSTART(0, "text"), DELTA(0, "First one here. Sec"), BSTOP(0), MSTOP,
                        ASSIST("m5", "First one here. Second one here."), NULL};
    st = run(L5, &c);
    EXPECT(&c, "First one here. | Sec | ond one here.");
    CHECK_EQ_INT(st.duplicates, 1);
    /* one line holding the whole message while its second block is open: the
     * closed first block is not taken for the open one (which repeated its
     * start so far and was held, then dropped as a repeat) */
    const char *L6[] = {START("m6"), BSTART(0, "text"), DELTA(0, "Alpha is first."), BSTOP(0), BSTART(1, "text"),
                        DELTA(1, "Al"),
                        "{\"type\":\"assistant\",\"message\":{\"id\":\"m6\",\"content\":[{\"type\":\"text\",\"text\":"
                        "\"Alpha is first.\"},{\"type\":\"text\",\"text\":\"Alpha beta.\"}]}}",
                        BSTOP(1), MSTOP, NULL};
    run(L6, &c);
    EXPECT(&c, "Alpha is first. | Alpha beta.");
}

/* A stream cut mid-block (an "error" event, or the next message_start
 * before the block's stop) is retried by the CLI: the new message streams the
 * same text again from its start. It was said twice ("Hello world." twice);
 * only what goes beyond the cut text is new. A different answer is said in
 * full; normal messages are unaffected. */
static void test_retried_stream_said_once(void) {
    const char *L[] = {START("m1"), BSTART(0, "text"), DELTA(0, "Hello world. This is the "),
                       EV("{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}"),
                       "{\"type\":\"system\",\"subtype\":\"api_retry\",\"attempt\":1}",
                       START("m2"), BSTART(0, "text"), DELTA(0, "Hello wor"), DELTA(0, "ld. This is the full"),
                       DELTA(0, " answer."), ASSIST("m2", "Hello world. This is the full answer."), BSTOP(0), MSTOP,
                       RESULT("Hello world. This is the full answer."), NULL};
    coll c;
    run(L, &c);
    /* the cut sentence waits for the retry to complete it (it was said in
     * two pieces, "This is the" | "full answer."); the error is said now */
    EXPECT(&c, "Hello world. | {error}The request failed with an API error. | This is the full answer.");
    /* cut without an error event, mid-word; the retry streams it again: the
     * word whole ("Delta ep" | "silon zeta." before) */
    const char *L1[] = {START("m1"), BSTART(0, "text"), DELTA(0, "Alpha beta gamma. Delta ep"),
                        START("m2"), BSTART(0, "text"), DELTA(0, "Alpha beta gamma. Delta epsilon zeta."),
                        ASSIST("m2", "Alpha beta gamma. Delta epsilon zeta."), BSTOP(0), MSTOP,
                        RESULT("Alpha beta gamma. Delta epsilon zeta."), NULL};
    run(L1, &c);
    EXPECT(&c, "Alpha beta gamma. | Delta epsilon zeta.");
    /* ... a thinking block first in the retried message (extended thinking) */
    const char *L1t[] = {START("m1"), BSTART(0, "text"), DELTA(0, "Alpha beta gamma. Delta ep"),
                         START("m2"), BSTART(0, "thinking"), BSTOP(0), BSTART(1, "text"),
                         DELTA(1, "Alpha beta gamma. Delta epsilon zeta."), BSTOP(1), MSTOP, NULL};
    run(L1t, &c);
    EXPECT(&c, "Alpha beta gamma. | Delta epsilon zeta.");
    /* ... and never retried: the cut sentence is said at the turn's end */
    const char *L1n[] = {START("m1"), BSTART(0, "text"), DELTA(0, "Alpha beta gamma. Delta ep"),
                         EV("{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}"),
                         "{\"type\":\"result\",\"subtype\":\"error_during_execution\",\"is_error\":true}", NULL};
    run(L1n, &c);
    EXPECT(&c, "Alpha beta gamma. | {error}The request failed with an API error. | Delta ep");
    /* cut without an error event; the retry answers differently: all of it,
     * and the cut's unfinished "And", never said, gives way to it (it was
     * said on its own) */
    const char *L2[] = {START("m1"), BSTART(0, "text"), DELTA(0, "First try says this. And"),
                        START("m2"), BSTART(0, "text"), DELTA(0, "Second try differs."), BSTOP(0), MSTOP, NULL};
    run(L2, &c);
    EXPECT(&c, "First try says this. | Second try differs.");
    /* the retry shares the first sentence, then words it otherwise (a fresh
     * sample): the shared sentence once, the cut's half sentence not at all
     * ("The tests pass on Linux." twice and "The macOS job is sti" before) */
    const char *L2d[] = {START("m1"), BSTART(0, "text"), DELTA(0, "The tests pass on Linux. "),
                         DELTA(0, "The macOS job is sti"),
                         "{\"type\":\"system\",\"subtype\":\"api_retry\",\"attempt\":1}",
                         START("m2"), BSTART(0, "text"), DELTA(0, "The tes"), DELTA(0, "ts pass on Lin"),
                         DELTA(0, "ux. On macOS, the job is still running."),
                         ASSIST("m2", "The tests pass on Linux. On macOS, the job is still running."), BSTOP(0), MSTOP,
                         RESULT("The tests pass on Linux. On macOS, the job is still running."), NULL};
    run(L2d, &c);
    EXPECT(&c, "The tests pass on Linux. | On macOS, the job is still running.");
    /* a stream stalled mid-block and the CLI's non-streaming fallback: the
     * answer again as a complete line under a new id (#24663) */
    const char *L2f[] = {START("m1"), BSTART(0, "text"), DELTA(0, "First sentence is complete. The answer is for"),
                         DELTA(0, "ty"), "{\"type\":\"system\",\"subtype\":\"api_retry\",\"attempt\":1}",
                         ASSIST("m2", "First sentence is complete. The answer is forty-two."),
                         RESULT("First sentence is complete. The answer is forty-two."), NULL};
    run(L2f, &c);
    EXPECT(&c, "First sentence is complete. | The answer is forty-two.");
    /* ... stalled in a tool block after a finished text block: the fallback's
     * copy of that block is not said again */
    const char *L2g[] = {START("m1"), BSTART(0, "text"), DELTA(0, "I found the bug in the parser."),
                         ASSIST("m1", "I found the bug in the parser."), BSTOP(0),
                         EV("{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"Edit\"}}"),
                         ASSIST("m2", "I found the bug in the parser."), START("m3"), BSTART(0, "text"), DELTA(0, "Fixed it."),
                         ASSIST("m3", "Fixed it."), BSTOP(0), MSTOP, RESULT("Fixed it."), NULL};
    run(L2g, &c);
    EXPECT(&c, "I found the bug in the parser. | Fixed it.");
    /* ... a message of two text blocks cut in its second, streamed again:
     * the first was matched with the retry's first, not with the cut one */
    const char *L2h[] = {START("m1"), BSTART(0, "text"), DELTA(0, "Block one is done."), BSTOP(0),
                         BSTART(1, "text"), DELTA(1, "Block two is cu"),
                         START("m2"), BSTART(0, "text"), DELTA(0, "Block one is done."), BSTOP(0),
                         BSTART(1, "text"), DELTA(1, "Block two is cut no more."), BSTOP(1), MSTOP, NULL};
    run(L2h, &c);
    EXPECT(&c, "Block one is done. | Block two is cut no more.");
    /* a message after the retry that starts like the cut one is new: said */
    const char *L2i[] = {START("m1"), BSTART(0, "text"), DELTA(0, "Same start. Then cu"),
                         START("m2"), BSTART(0, "text"), DELTA(0, "Same start. Then cut no more."), BSTOP(0), MSTOP,
                         START("m3"), BSTART(0, "text"), DELTA(0, "Same start. Another message."), BSTOP(0), MSTOP, NULL};
    run(L2i, &c);
    EXPECT(&c, "Same start. | Then cut no more. | Same start. | Another message.");
    /* the retry says less than was cut: nothing new */
    const char *L3[] = {START("m1"), BSTART(0, "text"), DELTA(0, "Short answer. Extra words"),
                        EV("{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}"),
                        START("m2"), BSTART(0, "text"), DELTA(0, "Short answer."), BSTOP(0), MSTOP, NULL};
    run(L3, &c);
    EXPECT(&c, "Short answer. | {error}The request failed with an API error. | Extra words");
    /* closed blocks of two messages with the same start are both said */
    const char *L4[] = {START("m1"), BSTART(0, "text"), DELTA(0, "Same start."), BSTOP(0), MSTOP,
                        START("m2"), BSTART(0, "text"), DELTA(0, "Same start. And more."), BSTOP(0), MSTOP, NULL};
    run(L4, &c);
    EXPECT(&c, "Same start. | Same start. | And more.");
}

static void test_result_rules(void) {
    coll c;
    /* nothing spoken in the turn: the result text is the answer */
    const char *L[] = {"{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"s\"}",
                       RESULT("Only in the result."), ASSIST("m1", "Next turn text."), RESULT("Next turn text."), NULL};
    run(L, &c);
    EXPECT(&c, "Only in the result. | Next turn text.");
    CHECK_EQ_STR(c.id[0], "turn-1");
    CHECK_EQ_STR(c.id[1], "m1");
    /* error result announced; result text not read out */
    const char *L2[] = {"{\"is_error\":true,\"result\":\"API Error: 500 internal\",\"subtype\":\"success\",\"type\":\"result\"}",
                        "{\"type\":\"result\",\"subtype\":\"error_max_turns\",\"is_error\":false}",
                        "{\"type\":\"result\",\"subtype\":\"error_during_execution\",\"is_error\":true,\"errors\":[\"x\"]}",
                        "{\"type\":\"result\",\"subtype\":\"error_max_budget_usd\",\"is_error\":true}", NULL};
    run(L2, &c);
    EXPECT(&c, "{error}The request failed with an API error. | {error}Stopped: the maximum number of turns was reached. | "
               "{error}The request stopped with an error. | {error}Stopped: the budget limit was reached.");
    CHECK_EQ_STR(c.lang[0], "eng_Latn");
}

static void test_api_error_message(void) {
    const char *L[] = {"{\"type\":\"assistant\",\"message\":{\"id\":\"e1\",\"model\":\"<synthetic>\",\"content\":[{\"type\":\"text\","
                       "\"text\":\"Not logged in \\u00b7 Please run /login\"}]},\"error\":\"authentication_failed\","
                       "\"is_api_error_message\":true,\"parent_tool_use_id\":null}",
                       "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":true,\"result\":\"Not logged in\"}",
                       "{\"type\":\"assistant\",\"message\":{\"id\":\"e2\",\"model\":\"<synthetic>\",\"content\":[{\"type\":\"text\","
                       "\"text\":\"| Context | 10% |\"}]},\"parent_tool_use_id\":null}",
                       "{\"type\":\"assistant\",\"message\":{\"id\":\"e3\",\"model\":\"<synthetic>\",\"content\":[{\"type\":\"text\","
                       "\"text\":\"API Error: rate limited\"}]},\"error\":\"rate_limit\",\"parent_tool_use_id\":null}", NULL};
    coll c;
    run(L, &c);
    /* one notice for the turn, the /context table output is not speech */
    EXPECT(&c, "{error}Claude Code could not log in. | {error}Claude Code hit a rate limit.");
    /* /context alone in a turn: its result repeats the table; silent too */
    const char *C[] = {"{\"type\":\"assistant\",\"message\":{\"id\":\"c1\",\"model\":\"<synthetic>\",\"content\":[{\"type\":"
                       "\"text\",\"text\":\"Total: 12k tokens used of 200k.\"}]},\"parent_tool_use_id\":null}",
                       "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"Total: 12k tokens used "
                       "of 200k.\",\"num_turns\":0}", NULL};
    run(C, &c);
    CHECK_EQ_INT(c.n, 0);
}

/* The error notice from what the CLI says of the failure: the notice came
 * from subtype / terminal_reason only, so a usage limit, a failed login
 * (api_error_status 401) and an overload were all "an API error", and the
 * structured-output retries "an error"; a usage-limit result with is_error
 * false said nothing. One notice per failure. */
#define SYNTH(id, err, text) "{\"type\":\"assistant\",\"message\":{\"id\":\"" id "\",\"type\":\"message\",\"role\":" \
    "\"assistant\",\"model\":\"<synthetic>\",\"content\":[{\"type\":\"text\",\"text\":\"" text "\"}],\"stop_reason\":" \
    "\"stop_sequence\"},\"parent_tool_use_id\":null" err "}"
#define ERRRES(sub, iserr, rest) "{\"type\":\"result\",\"subtype\":\"" sub "\",\"is_error\":" iserr ",\"num_turns\":1" rest "}"
static void test_error_notices_from_cli(void) {
    static const struct { const char *l1, *l2, *want; } cases[] = {
        /* 1.0.x: the usage limit as a <synthetic> message, then the result (success, is_error true) */
        {SYNTH("u1", "", "Claude AI usage limit reached|1751317200"),
         ERRRES("success", "true", ",\"result\":\"Claude AI usage limit reached|1751317200\""), "{error}Claude Code hit a rate limit."},
        /* the same with is_error false: still the notice, once */
        {SYNTH("u2", "", "Claude AI usage limit reached|1751317200"),
         ERRRES("success", "false", ",\"result\":\"Claude AI usage limit reached|1751317200\""), "{error}Claude Code hit a rate limit."},
        {INIT, ERRRES("success", "false", ",\"result\":\"Claude AI usage limit reached|1755806400\""), "{error}Claude Code hit a rate limit."},
        /* the result alone, with the HTTP status */
        {INIT, ERRRES("success", "true", ",\"result\":\"API Error: 401 {}\",\"terminal_reason\":\"api_error\",\"api_error_status\":401"),
         "{error}Claude Code could not log in."},
        {INIT, ERRRES("success", "true", ",\"result\":\"API Error: 403 {}\",\"terminal_reason\":\"api_error\",\"api_error_status\":403"),
         "{error}Claude Code could not log in."},
        {INIT, ERRRES("success", "true", ",\"result\":\"API Error: 429 {}\",\"terminal_reason\":\"api_error\",\"api_error_status\":429"),
         "{error}Claude Code hit a rate limit."},
        {INIT, ERRRES("success", "true", ",\"result\":\"API Error: 529 {}\",\"terminal_reason\":\"api_error\",\"api_error_status\":529"),
         "{error}The request failed with an API error."},
        /* an error message with error "unknown": its text's status; the result's is no second notice */
        {SYNTH("o1", ",\"error\":\"unknown\",\"is_api_error_message\":true",
               "API Error: 529 {\\\"type\\\":\\\"error\\\",\\\"error\\\":{\\\"type\\\":\\\"overloaded_error\\\"}}"),
         ERRRES("success", "true", ",\"result\":\"API Error: 529\",\"terminal_reason\":\"api_error\",\"api_error_status\":529"),
         "{error}The request failed with an API error."},
        {INIT, ERRRES("error_max_structured_output_retries", "true",
                      ",\"errors\":[\"Failed to provide valid structured output after 5 attempts\"]"),
         "{error}Stopped: the structured output did not match the schema."},
        /* the model's own words about a limit are read, not taken for one */
        {ASSIST("m1", "Claude AI usage limit reached is what the banner says when you run out."),
         RESULT("Claude AI usage limit reached is what the banner says when you run out."),
         "Claude AI usage limit reached is what the banner says when you run out."},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *L[] = {cases[k].l1, cases[k].l2, NULL};
        coll c;
        run(L, &c);
        EXPECT(&c, cases[k].want);
        CHECK_MSG(c.nw == 0, "case %zu: %d warnings", k, c.nw);
    }
    char buf[160];
    const char *lu;
    text_phrase_format("jpn_Jpan", TEXT_PH_ERR_STRUCTURED, NULL, 0, buf, sizeof buf, &lu);
    CHECK_EQ_STR(lu, "jpn_Jpan");
}

/* The spoken blocks remembered so that re-emitted lines (a resumed
 * session) are not said again: 1024 once, so a long session said its first
 * answer twice. Now up to 65536, the oldest forgotten first: every
 * re-emitted line within them is silent, one past them is said again, and
 * the table that finds them stays right as old ones leave it. */
typedef struct {
    long said, bad;
    unsigned char *got;   /* per answer number: times said */
    long n;
} seen_count;
static void seen_cb(void *u, const ingest_sentence *s) {
    seen_count *c = u;
    long k;
    if (sscanf(s->text, "Answer %ld is here.", &k) == 1 && k >= 0 && k < c->n) {
        c->got[k]++;
        c->said++;
    } else {
        c->bad++;
    }
}
static void test_seen_long_session(void) {
    enum { N = 70000, MAX = 65536 };
    ingest_params p;
    ingest_default_params(&p);
    p.text.merge_short_chars = 0;
    seen_count c = {0, 0, calloc(N, 1), N};
    ingest_frontend *fe;
    CHECK(ingest_frontend_new(&p, seen_cb, NULL, &c, &fe, NULL) == STTS_OK);
    char line[256];
    uint64_t ln = 0;
    for (long k = 0; k < N; k++) {
        snprintf(line, sizeof line, ASSIST("m%ld", "Answer %ld is here."), k, k);
        ln++;
        ingest_frontend_feed(fe, line, strlen(line), ln, ln, 0, NULL);
    }
    CHECK_MSG(c.said == N && c.bad == 0, "first pass: %ld said, %ld other", c.said, c.bad);
    /* re-emitted: the last MAX are remembered (checked first: said again,
     * a forgotten one is remembered anew and pushes the oldest out), the
     * first N - MAX forgotten */
    for (long k = N - 1; k >= 0; k -= 7) {
        snprintf(line, sizeof line, ASSIST("m%ld", "Answer %ld is here."), k, k);
        ln++;
        ingest_frontend_feed(fe, line, strlen(line), ln, ln, 0, NULL);
    }
    ingest_frontend_finish(fe, ln);
    ingest_frontend_free(fe);
    long twice_old = 0, twice_new = 0, missing = 0;
    for (long k = 0; k < N; k++) {
        if (!c.got[k]) missing++;
        if (c.got[k] > 1 && k < N - MAX) twice_old++;
        if (c.got[k] > 1 && k >= N - MAX) twice_new++;
    }
    long old_reemitted = 0;
    for (long k = N - 1; k >= 0; k -= 7) old_reemitted += k < N - MAX;
    CHECK_MSG(missing == 0 && twice_new == 0, "%ld never said, %ld remembered ones said twice", missing, twice_new);
    CHECK_MSG(twice_old == old_reemitted, "forgotten ones said again: %ld of %ld", twice_old, old_reemitted);
    free(c.got);
}

static void test_aborted(void) {
    const char *L[] = {"{\"type\":\"assistant\",\"message\":{\"id\":\"a1\",\"model\":\"claude\",\"content\":[{\"type\":\"text\","
                       "\"text\":\"I will refactor the par\"}]},\"aborted\":true,\"parent_tool_use_id\":null}",
                       "{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"[Request interrupted by user]\"}]}}", NULL};
    coll c;
    run(L, &c);
    /* the half word "par" of the interrupted text is not spoken */
    EXPECT(&c, "I will refactor the");
    /* a text stopped after punctuation loses nothing */
    const char *L2[] = {"{\"type\":\"assistant\",\"message\":{\"id\":\"a2\",\"model\":\"claude\",\"content\":[{\"type\":\"text\","
                        "\"text\":\"Done with it.\"}]},\"aborted\":true,\"parent_tool_use_id\":null}", NULL};
    run(L2, &c);
    EXPECT(&c, "Done with it.");
    /* partial mode: the half word was streamed already; the aborted line
     * drops it from the text stage (it was said: "Then I will upd"), as in
     * non-partial mode; so when the line holds more of it than streamed */
    const char *L3[] = {START("a3"), BSTART(0, "text"), DELTA(0, "I will refactor the parser. Then I will upd"),
                        "{\"type\":\"assistant\",\"message\":{\"id\":\"a3\",\"model\":\"claude\",\"content\":[{\"type\":"
                        "\"text\",\"text\":\"I will refactor the parser. Then I will upd\"}]},\"aborted\":true,"
                        "\"parent_tool_use_id\":null}", NULL};
    run(L3, &c);
    EXPECT(&c, "I will refactor the parser. | Then I will");
    const char *L4[] = {START("a4"), BSTART(0, "text"), DELTA(0, "First part. Then I"),
                        "{\"type\":\"assistant\",\"message\":{\"id\":\"a4\",\"model\":\"claude\",\"content\":[{\"type\":"
                        "\"text\",\"text\":\"First part. Then I will upd\"}]},\"aborted\":true,\"parent_tool_use_id\":null}",
                        NULL};
    run(L4, &c);
    EXPECT(&c, "First part. | Then I will");
}

/* A turn the user interrupted ends in an error result (a real 2.1.220
 * capture: error_during_execution, terminal_reason "aborted_streaming"): no
 * "stopped with an error" notice, the user stopped it. Another cause named
 * by the result (max turns) is still said. */
static void test_interrupt_no_error_notice(void) {
    const char *L[] = {ASSIST("i1", "Pipes connect programs."),
                       "{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"[Request interrupted by user]\"}]},\"parent_tool_use_id\":null}",
                       "{\"type\":\"result\",\"subtype\":\"error_during_execution\",\"is_error\":true,"
                       "\"terminal_reason\":\"aborted_streaming\",\"errors\":[\"[ede_diagnostic] result_type=user\"]}",
                       ASSIST("i2", "alive"), RESULT("alive"), NULL};
    coll c;
    ingest_stats st = run(L, &c);
    EXPECT(&c, "Pipes connect programs. | alive");
    CHECK_EQ_INT(st.interrupted, 1);
    /* terminal_reason alone (no interrupt line) */
    const char *L2[] = {ASSIST("i3", "Working on it."),
                        "{\"type\":\"result\",\"subtype\":\"error_during_execution\",\"is_error\":true,"
                        "\"terminal_reason\":\"aborted_tools\"}", NULL};
    run(L2, &c);
    EXPECT(&c, "Working on it.");
    /* an error without an interrupt is said, as before */
    const char *L3[] = {ASSIST("i4", "Working on it."),
                        "{\"type\":\"result\",\"subtype\":\"error_during_execution\",\"is_error\":true}", NULL};
    run(L3, &c);
    {
        char j[1024];
        joined(&c, j, sizeof j);
        CHECK(strstr(j, "Working on it. | {error}") == j);
    }
    const char *L4[] = {ASSIST("i5", "Working on it."),
                        "{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"[Request interrupted by user]\"}]},\"parent_tool_use_id\":null}",
                        "{\"type\":\"result\",\"subtype\":\"error_max_turns\",\"is_error\":true}", NULL};
    run(L4, &c);
    {
        char j[1024];
        joined(&c, j, sizeof j);
        CHECK(strstr(j, "Working on it. | {error}") == j);
    }
    /* a 2.1.220 line type of the session's goal: no "unknown line type" */
    const char *L5[] = {"{\"type\":\"active_goal\",\"value\":null}", ASSIST("i6", "Fine."), NULL};
    run(L5, &c);
    EXPECT(&c, "Fine.");
    CHECK_EQ_INT(c.nw, 0);
}

/* A reply cut by the output token limit mid-word ("a complete rewr") goes
 * on in the next message after Claude Code's own "Output token limit hit"
 * prompt: one sentence, the word whole, in partial and non-partial mode. */
static void test_token_limit_continuation(void) {
    const char *L[] = {ASSIST("t1", "Here is the report. The parser needs a complete rewr"),
                       "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"Output token limit hit. Resume "
                       "directly. Pick up mid-thought if that is where the cut happened.\"},\"parent_tool_use_id\":null}",
                       ASSIST("t2", "ite of the tokenizer. That is all."), RESULT("That is all."), NULL};
    coll c;
    run(L, &c);
    EXPECT(&c, "Here is the report. | The parser needs a complete rewrite of the tokenizer. | That is all.");
    const char *L2[] = {START("t3"), BSTART(0, "text"), DELTA(0, "Here is the report. The parser needs a complete rewr"),
                        ASSIST("t3", "Here is the report. The parser needs a complete rewr"), BSTOP(0),
                        EV("{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"}}"), MSTOP,
                        "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"Output token limit hit. Resume "
                        "directly.\"},\"parent_tool_use_id\":null}",
                        START("t4"), BSTART(0, "text"), DELTA(0, "ite of the tokenizer. That is all."),
                        ASSIST("t4", "ite of the tokenizer. That is all."), BSTOP(0), MSTOP, RESULT("That is all."), NULL};
    run(L2, &c);
    EXPECT(&c, "Here is the report. | The parser needs a complete rewrite of the tokenizer. | That is all.");
    /* a message that ends mid-sentence for another reason still ends at the next message */
    const char *L3[] = {ASSIST("t5", "First block"), ASSIST("t6", "second block."), RESULT("second block."), NULL};
    run(L3, &c);
    EXPECT(&c, "First block | second block.");
}

static void test_subagents(void) {
    const char *L[] = {EVP("toolu_1", "{\"type\":\"message_start\",\"message\":{\"id\":\"s1\"}}"),
                       EVP("toolu_1", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\"}}"),
                       EVP("toolu_1", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Sub says hi.\"}}"),
                       "{\"type\":\"assistant\",\"message\":{\"id\":\"s1\",\"content\":[{\"type\":\"text\",\"text\":\"Sub says hi.\"}]},\"parent_tool_use_id\":\"toolu_1\"}",
                       EVP("toolu_1", "{\"type\":\"content_block_stop\",\"index\":0}"),
                       ASSIST("m1", "Main says hello."), NULL};
    coll c;
    ingest_stats st = run(L, &c);
    EXPECT(&c, "Main says hello.");
    CHECK_EQ_INT(st.subagent_skipped, 5);
    ingest_params p;
    ingest_default_params(&p);
    p.speak_subagents = 1;
    run_p(&p, L, &c);
    EXPECT(&c, "Sub says hi. | Main says hello.");
    CHECK_EQ_STR(c.id[0], "s1");
}

/* Both subagent markers in both modes: a transcript given to --input spoke
 * its sidechain (isSidechain) text; a stream-json capture given to
 * --transcript took a subagent's prompt (a user text line with
 * parent_tool_use_id) for the user's last prompt, dropping the main reply's
 * start and speaking the subagent. Each also says once that the file looks
 * like the other format. */
#define TRLINE(type, side, content) "{\"parentUuid\":null,\"isSidechain\":" side ",\"userType\":\"external\"," \
    "\"sessionId\":\"s\",\"version\":\"2.1.230\",\"type\":\"" type "\",\"message\":" content ",\"uuid\":\"u\"}"
static void write_file(const char *path, const char *text);
/* The last turn of the transcript at path, as --transcript speaks it, into c
 * (merge_short: the text stage's merge of short sentences, 0 = off). */
static void last_turn(const char *path, int merge_short, coll *c) {
    memset(c, 0, sizeof *c);
    ingest_params p;
    ingest_default_params(&p);
    p.transcript = 1;
    if (!merge_short) p.text.merge_short_chars = 0;
    ingest_frontend *fe;
    stts_error err;
    CHECK(ingest_frontend_new(&p, cb, wcb, c, &fe, NULL) == STTS_OK);
    CHECK(ingest_transcript_last_turn(fe, path, &err) == STTS_OK);
    ingest_frontend_free(fe);
}

static void test_subagent_markers_both_modes(void) {
    const char *T[] = {TRLINE("user", "false", "{\"role\":\"user\",\"content\":\"where is the loader?\"}"),
                       TRLINE("assistant", "false", "{\"id\":\"m1\",\"content\":[{\"type\":\"text\",\"text\":\"I will use an agent.\"}]}"),
                       TRLINE("user", "true", "{\"role\":\"user\",\"content\":\"Find the config loader.\"}"),
                       TRLINE("assistant", "true", "{\"id\":\"s1\",\"content\":[{\"type\":\"text\",\"text\":\"The loader is in config.c.\"}]}"),
                       TRLINE("assistant", "false", "{\"id\":\"m2\",\"content\":[{\"type\":\"text\",\"text\":\"It is in config.c.\"}]}"),
                       NULL};
    coll c;
    ingest_stats st = run(T, &c);   /* as stream-json (--input) */
    EXPECT(&c, "I will use an agent. | It is in config.c.");
    CHECK_EQ_INT(st.subagent_skipped, 1);
    CHECK_EQ_INT(c.nw, 1);
    CHECK(strstr(c.warn[0], "line 1: ") && strstr(c.warn[0], "transcript") && strstr(c.warn[0], "--transcript"));
    /* a stream-json capture read as a transcript */
    char path[64];
    snprintf(path, sizeof path, "/tmp/stts_sub_%d.jsonl", (int)getpid());
    write_file(path, INIT "\n" ASSIST("m1", "I will ask a research agent.") "\n"
               "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
               "\"Find the parse function.\"}]},\"parent_tool_use_id\":\"toolu_1\",\"session_id\":\"s\"}\n"
               "{\"type\":\"assistant\",\"message\":{\"id\":\"s1\",\"content\":[{\"type\":\"text\",\"text\":"
               "\"Searching the tree.\"}]},\"parent_tool_use_id\":\"toolu_1\"}\n"
               ASSIST("m2", "The parser is in parse.py.") "\n" RESULT("The parser is in parse.py.") "\n");
    const char *sub_prompt = "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"Find it.\"},"
                             "\"parent_tool_use_id\":\"toolu_1\"}";
    CHECK(!ingest_transcript_is_prompt(sub_prompt, strlen(sub_prompt)));
    last_turn(path, 0, &c);
    EXPECT(&c, "I will ask a research agent. | The parser is in parse.py.");
    CHECK_EQ_INT(c.nw, 1);
    CHECK(strstr(c.warn[0], "line 6: ") && strstr(c.warn[0], "stream-json") && strstr(c.warn[0], "--input"));
    unlink(path);
}

/* A background agent goes on after its turn's result; its lines then (and a
 * partial stream of them) made the next turn's system/init warn that the
 * previous turn had no result, which it had. */
static void test_background_agent_after_result(void) {
    const char *L[] = {INIT, ASSIST("m1", "Started the agent."), RESULT("Started the agent."),
                       "{\"type\":\"assistant\",\"message\":{\"id\":\"s1\",\"content\":[{\"type\":\"text\",\"text\":\"Sub work.\"}]},\"parent_tool_use_id\":\"toolu_1\"}",
                       EVP("toolu_1", "{\"type\":\"message_start\",\"message\":{\"id\":\"s2\"}}"),
                       "{\"type\":\"system\",\"subtype\":\"task_notification\",\"task_id\":\"t1\",\"status\":\"completed\",\"summary\":\"Sub work.\"}",
                       INIT, ASSIST("m2", "The agent is done."), RESULT("The agent is done."), NULL};
    coll c;
    ingest_params p;
    ingest_default_params(&p);
    p.text.merge_short_chars = 0;
    for (int sub = 0; sub < 2; sub++) {
        p.speak_subagents = sub;
        run_p(&p, L, &c);
        EXPECT(&c, sub ? "Started the agent. | Sub work. | The agent is done." : "Started the agent. | The agent is done.");
        CHECK_MSG(c.nw == 0, "speak_subagents %d: %s", sub, c.warn[0]);
    }
}

/* Twelve subagents streaming at once (parallel Task agents), their lines
 * interleaved: each one's text is said whole and once. */
static void test_many_parallel_subagents(void) {
    enum { AG = 12, STEPS = 6 };
    static char buf[AG * STEPS][400];
    const char *L[AG * STEPS + 1];
    int n = 0;
    for (int step = 0; step < STEPS; step++)
        for (int k = 0; k < AG; k++) {
            char *b = buf[n];
            const char *tpl[STEPS] = {
                "{\"type\":\"stream_event\",\"parent_tool_use_id\":\"toolu_%d\",\"event\":{\"type\":\"message_start\",\"message\":{\"id\":\"s%d\"}}}",
                "{\"type\":\"stream_event\",\"parent_tool_use_id\":\"toolu_%d\",\"event\":{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\"}}}",
                "{\"type\":\"stream_event\",\"parent_tool_use_id\":\"toolu_%d\",\"event\":{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Agent %d starts he\"}}}",
                "{\"type\":\"stream_event\",\"parent_tool_use_id\":\"toolu_%d\",\"event\":{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"re and ends here.\"}}}",
                "{\"type\":\"assistant\",\"parent_tool_use_id\":\"toolu_%d\",\"message\":{\"id\":\"s%d\",\"content\":[{\"type\":\"text\",\"text\":\"Agent %d starts here and ends here.\"}]}}",
                "{\"type\":\"stream_event\",\"parent_tool_use_id\":\"toolu_%d\",\"event\":{\"type\":\"content_block_stop\",\"index\":0}}"};
            snprintf(b, sizeof buf[0], tpl[step], k, k, k);
            L[n++] = b;
        }
    L[n] = NULL;
    ingest_params p;
    ingest_default_params(&p);
    p.speak_subagents = 1;
    coll c;
    ingest_stats st = run_p(&p, L, &c);
    CHECK_EQ_INT(c.n, AG);
    for (int k = 0; k < AG && k < c.n; k++) {
        char want[64];
        snprintf(want, sizeof want, "Agent %d starts here and ends here.", k);
        CHECK_EQ_STR(c.s[k], want);
    }
    CHECK_EQ_INT(st.duplicates, AG);
}

static void test_thinking(void) {
    const char *L[] = {START("m1"), BSTART(0, "thinking"),
                       EV("{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Secret plan here.\"}}"),
                       "{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"Secret plan here.\",\"signature\":\"x\"}]},\"parent_tool_use_id\":null}",
                       BSTOP(0), BSTART(1, "text"), DELTA(1, "Visible answer."), ASSIST("m1", "Visible answer."), BSTOP(1), NULL};
    coll c;
    run(L, &c);
    EXPECT(&c, "Visible answer.");
    ingest_params p;
    ingest_default_params(&p);
    p.speak_thinking = 1;
    run_p(&p, L, &c);
    EXPECT(&c, "Secret plan here. | Visible answer.");
}

#define TOOL(id, name, input) "{\"type\":\"assistant\",\"message\":{\"id\":\"t\",\"content\":[{\"type\":\"tool_use\",\"id\":\"" id "\",\"name\":\"" name "\",\"input\":" input "}]},\"parent_tool_use_id\":null}"

static void test_tools(void) {
    const char *L[] = {TOOL("a", "Bash", "{\"command\":\"git status --short\\nmore\",\"description\":\"x\"}"),
                       TOOL("b", "Edit", "{\"file_path\":\"/home/me/proj/README.md\",\"old_string\":\"{}\"}"),
                       TOOL("c", "Read", "{\"file_path\":\"src/main.c\"}"),
                       TOOL("d", "Grep", "{\"pattern\":\"TODO\"}"),
                       TOOL("e", "Glob", "{\"pattern\":\"**/*.py\"}"),
                       TOOL("f", "WebFetch", "{\"url\":\"https://docs.python.org/3/library/json.html\"}"),
                       TOOL("g", "Task", "{\"description\":\"Find the bug\",\"prompt\":\"...\"}"),
                       TOOL("h", "TodoWrite", "{\"todos\":[]}"),
                       TOOL("i", "mcp__github__create_issue", "{\"title\":\"x\"}"),
                       TOOL("a", "Bash", "{\"command\":\"git status --short\"}"),
                       TOOL("j", "Write", "{}"), NULL};
    coll c;
    run(L, &c);
    CHECK_EQ_INT(c.n, 0);   /* silent by default */
    ingest_params p;
    ingest_default_params(&p);
    p.announce_tools = 1;
    run_p(&p, L, &c);
    EXPECT(&c, "{tool}Running: git status --short. | {tool}Editing README.md. | {tool}Reading main.c. | "
               "{tool}Searching for TODO. | {tool}Looking for files matching *.py. | {tool}Fetching docs.python.org. | "
               "{tool}Starting a subagent: Find the bug. | {tool}Updating the to-do list. | "
               "{tool}Using the create issue tool. | {tool}Using the Write tool.");
    CHECK_EQ_STR(c.lang[0], "eng_Latn");
    /* partial mode: announced once although the stop event comes after the full line */
    const char *L2[] = {START("m9"), BSTART(0, "tool_use"),
                        EV("{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"command\\\": \\\"ls\"}}"),
                        EV("{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" -la\\\"}\"}}"),
                        BSTOP(0), NULL};
    /* here no full line arrives: the streamed input is used */
    const char *L2b[] = {START("m9"), EV("{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"tz\",\"name\":\"Bash\"}}"),
                         L2[2], L2[3], TOOL("tz", "Bash", "{\"command\":\"ls -la\"}"), BSTOP(0), NULL};
    run_p(&p, L2b, &c);
    EXPECT(&c, "{tool}Running: ls -la.");
    const char *L2c[] = {START("m9"), EV("{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"ty\",\"name\":\"Bash\"}}"),
                         L2[2], L2[3], BSTOP(0), NULL};
    run_p(&p, L2c, &c);
    EXPECT(&c, "{tool}Running: ls -la.");
    /* a key in a command or a search pattern is never read; the secret notice
     * is not glued into the announcement (nor cut to "Secret" by its 8 words);
     * patterns are otherwise read as written */
    const char *L4[] = {TOOL("s1", "Bash", "{\"command\":\"mysql -u root --password hunter2hunter2 -e \\\"select 1\\\"\"}"),
                        TOOL("s2", "Grep", "{\"pattern\":\"sk-ant-api03-Xy7kP2mQ9vL4nR8sT1wZ5bC3dF6gH0jK\"}"),
                        TOOL("s3", "Grep", "{\"pattern\":\"API_KEY=sk-ant-api03-Xy7kP2mQ9vL4nR8sT1wZ5bC3dF6gH0jK\"}"),
                        TOOL("s4", "Grep", "{\"pattern\":\"def __init__\\\\(self\"}"),
                        TOOL("s5", "Glob", "{\"pattern\":\"src/**/*_test.go\"}"), NULL};
    run_p(&p, L4, &c);
    EXPECT(&c, "{tool}Running: mysql -u root --password -e \"select 1\". | {tool}Using the Grep tool. | "
               "{tool}Searching for API_KEY. | {tool}Searching for def __init__\\(self. | "
               "{tool}Looking for files matching src/**/*_test.go.");
    /* a long non-ASCII pattern is cut at a character boundary, not inside one */
    const char *L5[] = {TOOL("u1", "Grep", "{\"pattern\":\"" "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"
                        "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"
                        "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"
                        "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"
                        "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"
                        "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"
                        "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"
                        "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"
                        "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"
                        "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\"}"), NULL};
    run_p(&p, L5, &c);
    CHECK_EQ_INT(c.n, 1);
    CHECK(stts_utf8_valid_prefix((const unsigned char *)c.s[0], strlen(c.s[0])) == strlen(c.s[0]));
    /* Japanese notices */
    p.text.notice_lang = "jpn_Jpan";
    const char *L3[] = {TOOL("k", "Edit", "{\"file_path\":\"/a/b/README.md\"}"), NULL};
    run_p(&p, L3, &c);
    EXPECT(&c, "{tool}README.md\xE3\x82\x92\xE7\xB7\xA8\xE9\x9B\x86\xE3\x81\x97\xE3\x81\xA6\xE3\x81\x84\xE3\x81\xBE\xE3\x81\x99\xE3\x80\x82");
    CHECK_EQ_STR(c.lang[0], "jpn_Jpan");
}

static void test_bad_input(void) {
    const char *L[] = {ASSIST("m1", "Before the bad lines."),
                       "{\"type\":\"assistant\",\"message\":{\"id\":",       /* 2: truncated JSON */
                       "[1, 2, 3]",                                         /* 3: not an object */
                       "\x01\x02\xff\xfe garbage \x80",                     /* 4: binary garbage */
                       "{\"no_type\":1}",                                   /* 5: no type */
                       "{\"type\":\"assistant\"}",                          /* 6: no message */
                       "{\"type\":\"stream_event\"}",                       /* 7: no event */
                       "{\"type\":\"brand_new_type\",\"x\":1}",             /* 8: unknown */
                       "{\"type\":\"brand_new_type\",\"x\":2}",             /* 9: unknown, not re-reported */
                       "{\"type\":\"assistant\",\"message\":{\"id\":\"m2\",\"content\":[{\"type\":\"text\",\"text\":\"Caf\xc3\xa9 \xff\xfe ok here.\"}]}}",   /* 10: invalid UTF-8 in a string */
                       "   ",                                               /* 11: blank */
                       "{\"type\":42}",                                     /* 12: type not a string */
                       "{\"type\":\"assistant\",\"message\":{\"id\":\"m3\",\"content\":[{\"type\":\"text\",\"text\":\"nul \\u0000 inside.\"}]}}",
                       ASSIST("m4", "After the bad lines."), NULL};
    coll c;
    ingest_stats st = run(L, &c);
    EXPECT(&c, "Before the bad lines. | Caf\xc3\xa9 ok here. | nul inside. | After the bad lines.");
    CHECK_EQ_INT(st.bad_lines, 5);
    CHECK_EQ_INT(st.missing_fields, 2);
    CHECK_EQ_INT(st.unknown_types, 2);
    CHECK_EQ_INT(st.invalid_utf8, 1);   /* line 4 is not JSON at all: only that is reported */
    CHECK_EQ_INT(st.lines, 14);
    /* each warning names its line */
    uint64_t want[] = {2, 3, 4, 5, 6, 7, 8, 10, 12};
    CHECK_EQ_INT(c.nw, 9);
    for (int i = 0; i < c.nw && i < 9; i++) {
        char pre[32];
        snprintf(pre, sizeof pre, "line %llu: ", (unsigned long long)want[i]);
        CHECK_EQ_INT(c.warn_line[i], want[i]);
        CHECK_MSG(strncmp(c.warn[i], pre, strlen(pre)) == 0, "warning %d: %s", i, c.warn[i]);
    }
    CHECK(strstr(c.warn[0], "not valid JSON") != NULL);
    CHECK(strstr(c.warn[1], "not a JSON object") != NULL);
    CHECK(strstr(c.warn[2], "not valid JSON") != NULL);
    CHECK(strstr(c.warn[6], "brand_new_type") != NULL);
    CHECK(strstr(c.warn[7], "line 10: invalid UTF-8 at byte") != NULL);
}

/* Large tool-result lines are recognised without parsing (speed); nothing
 * else may be: an assistant line quoting the same tokens inside its text is
 * spoken, and a truncated tool result still gets its warning. (A malformed
 * line that still looks like a complete tool-result object is skipped
 * without one: it would never be spoken either way.) */
static char *big_line(const char *head, const char *tail, size_t pad) {
    size_t n = strlen(head) + pad + strlen(tail) + 1;
    char *b = malloc(n);
    strcpy(b, head);
    memset(b + strlen(head), 'x', pad);
    strcpy(b + strlen(head) + pad, tail);
    return b;
}

static void test_large_tool_results_fast_path(void) {
    char *tool = big_line("{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":[{\"tool_use_id\":\"t1\","
                          "\"type\" : \"tool_result\",\"content\":\"",
                          "\"}]},\"parent_tool_use_id\":null}", 20000);
    /* Keys in another order, the tokens quoted inside the assistant's own text. */
    char *quoting = big_line("{\"message\":{\"id\":\"m2\",\"content\":[{\"type\":\"text\",\"text\":\"It printed "
                             "\\\"type\\\":\\\"user\\\" and \\\"type\\\":\\\"tool_result\\\" here.\"}]},"
                             "\"padding\":\"",
                             "\",\"type\":\"assistant\",\"parent_tool_use_id\":null}", 5000);
    /* Cut short in transit (the CLI's known 4000/8000-character truncation):
     * no closing brace, so it is parsed, fails, and is reported. */
    char *broken = big_line("{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"tool_result\",\"content\":\"",
                            "", 8000);
    const char *L[] = {ASSIST("m1", "Before."), tool, quoting, broken, ASSIST("m3", "After."), NULL};
    coll c;
    ingest_stats st = run(L, &c);
    CHECK_EQ_INT(st.tool_results_skipped, 1);
    CHECK_EQ_INT(st.bad_lines, 1);
    CHECK_EQ_INT(c.nw, 1);
    CHECK_EQ_INT(c.warn_line[0], 4);
    CHECK_EQ_INT(c.n, 3);
    CHECK_EQ_STR(c.s[0], "Before.");
    CHECK_EQ_STR(c.s[1], "It printed \"type\":\"user\" and \"type\":\"tool_result\" here.");
    CHECK_EQ_STR(c.s[2], "After.");
    free(tool);
    free(quoting);
    free(broken);
}

/* A writer that cuts a string between the halves of a UTF-16 surrogate pair:
 * jansson rejects the lone escape; the rest of the text must survive. An
 * escaped backslash before "uD83D" is text and stays. */
static void test_lone_surrogates(void) {
    const char *L[] = {ASSIST("m1", "Launch \\ud83d now."),
                       ASSIST("m2", "Paired \\ud83d\\ude80 emoji and \\ude80 a lone low half."),
                       ASSIST("m3", "Literal \\\\ud83d is text."), NULL};
    coll c;
    ingest_stats st = run(L, &c);
    EXPECT(&c, "Launch now. | Paired emoji and a lone low half. | Literal \\ud83d is text.");
    CHECK_EQ_INT(st.bad_lines, 0);
    CHECK_EQ_INT(c.nw, 2);
    CHECK(strstr(c.warn[0], "line 1: 1 unpaired UTF-16 surrogate escape replaced") != NULL);
    CHECK(strstr(c.warn[1], "line 2: 1 unpaired") != NULL);
}

/* A surrogate pair split across two text_delta lines (the first ends in
 * the high half, the next begins with the low one) lost the character, and
 * the complete line (the character whole) then differed from what streamed:
 * the whole block was said again. The halves are joined (U+20BB7, a kanji
 * of a name), and the complete line is known as said. A half never
 * completed (the next delta does not start with a low half, or the block
 * stops) is dropped, and a low half at another block's start is not joined
 * (the block that stopped mid-sentence goes on into it, as before). */
static void test_split_surrogate_pair(void) {
    const char *L[] = {START("m1"), BSTART(0, "text"), DELTA(0, "The shop \\ud842"),
                       DELTA(0, "\\udfb7\xe9\x87\x8e\xe5\xae\xb6 is in Tokyo. Lone \\ud83d"), DELTA(0, " half here. End \\ud83d"),
                       BSTOP(0), BSTART(1, "text"), DELTA(1, "\\ude00Next block."), BSTOP(1),
                       ASSISTB("m1", TB("The shop \\ud842\\udfb7\xe9\x87\x8e\xe5\xae\xb6 is in Tokyo. Lone  half here. End ") ","
                               TB("\\ude00Next block.")),
                       MSTOP, NULL};
    coll c;
    ingest_stats st = run(L, &c);
    EXPECT(&c, "The shop \xf0\xa0\xae\xb7\xe9\x87\x8e\xe5\xae\xb6 is in Tokyo. | Lone half here. | End Next block.");
    CHECK_EQ_INT(st.bad_lines, 0);
    CHECK_EQ_INT(st.duplicates, 2);   /* the complete line's two blocks */
}

/* A last line without its newline is warned about (and counted) only when
 * it is not one whole JSON object: a transcript may simply end so, and
 * every --transcript of such a session warned that the line "may be cut
 * short" after saying it whole. */
static void test_truncated_and_too_long_flags(void) {
    coll c;
    memset(&c, 0, sizeof c);
    ingest_frontend *fe;
    CHECK(ingest_frontend_new(NULL, cb, wcb, &c, &fe, NULL) == STTS_OK);
    const char *a = ASSIST("m1", "Complete last line here.");
    ingest_frontend_feed(fe, "", 0, 1, 0, INGEST_LINE_TOO_LONG, NULL);
    ingest_frontend_feed(fe, a, strlen(a), 2, 0, INGEST_LINE_TRUNCATED, NULL);
    ingest_frontend_finish(fe, 0);
    EXPECT(&c, "Complete last line here.");
    CHECK_EQ_INT(c.nw, 1);
    CHECK(strstr(c.warn[0], "line 1: line longer than the limit") != NULL);
    ingest_stats st;
    ingest_frontend_stats(fe, &st);
    CHECK_EQ_INT(st.truncated, 0);
    CHECK_EQ_INT(st.bad_lines, 1);
    ingest_frontend_free(fe);
    /* really cut short: warned, counted, and its text not guessed at */
    memset(&c, 0, sizeof c);
    CHECK(ingest_frontend_new(NULL, cb, wcb, &c, &fe, NULL) == STTS_OK);
    ingest_frontend_feed(fe, a, strlen(a), 1, 0, 0, NULL);
    ingest_frontend_feed(fe, a, strlen(a) - 9, 2, 0, INGEST_LINE_TRUNCATED, NULL);
    ingest_frontend_finish(fe, 0);
    EXPECT(&c, "Complete last line here.");
    CHECK(c.nw >= 1);
    CHECK(strstr(c.warn[0], "line 2: input ended without a newline") != NULL);
    ingest_frontend_stats(fe, &st);
    CHECK_EQ_INT(st.truncated, 1);
    ingest_frontend_free(fe);
}

/* A complete text block that ends without a sentence end ("All 42 pass",
 * "Done": a transcript line, or a non-partial line) is held open for a
 * cited span's continuation; when none comes within the idle flush time
 * it is said whole. The idle flush kept its last word back as unfinished
 * until the next line (`--follow` said "pass" at the next prompt, and a
 * one-word reply not at all until then). */
static void test_open_block_ends_when_idle(void) {
    const char *cases[][2] = {{ASSIST("m1", "All 42 pass"), "All 42 pass"}, {ASSIST("m2", "Done"), "Done"},
                              {ASSIST("m3", "東京の天気は晴れです"), "東京の天気は晴れです"}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        coll c;
        memset(&c, 0, sizeof c);
        ingest_frontend *fe;
        CHECK(ingest_frontend_new(NULL, cb, wcb, &c, &fe, NULL) == STTS_OK);
        ingest_frontend_feed(fe, cases[k][0], strlen(cases[k][0]), 1, 1000000000ull, 0, NULL);
        CHECK_MSG(ingest_frontend_deadline(fe) == 2500000000ull, "case %zu: deadline %llu", k,
                  (unsigned long long)ingest_frontend_deadline(fe));
        ingest_frontend_tick(fe, 2000000000ull);
        CHECK_MSG(c.n == 0, "case %zu: said before the idle time", k);
        ingest_frontend_tick(fe, 2500000000ull);
        CHECK_MSG(c.n == 1 && strcmp(c.s[0], cases[k][1]) == 0, "case %zu: %d said, '%s'", k, c.n, c.n ? c.s[0] : "");
        CHECK_EQ_INT(ingest_frontend_deadline(fe), 0);
        ingest_frontend_free(fe);
    }
}

static void test_idle_flush_through_frontend(void) {
    coll c;
    memset(&c, 0, sizeof c);
    ingest_frontend *fe;
    CHECK(ingest_frontend_new(NULL, cb, wcb, &c, &fe, NULL) == STTS_OK);
    const char *L[] = {START("m1"), BSTART(0, "text"), DELTA(0, "Thinking about the answer ")};
    for (int i = 0; i < 3; i++) ingest_frontend_feed(fe, L[i], strlen(L[i]), (uint64_t)i + 1, 1000000000ull, 0, NULL);
    CHECK_EQ_INT(ingest_frontend_deadline(fe), 2500000000ull);
    ingest_frontend_tick(fe, 2000000000ull);
    CHECK_EQ_INT(c.n, 0);
    ingest_frontend_tick(fe, 2600000000ull);
    CHECK_EQ_INT(c.n, 1);
    CHECK_EQ_STR(c.s[0], "Thinking about the answer");
    CHECK_EQ_INT(c.line[0], 3);
    CHECK_EQ_STR(c.id[0], "m1");
    CHECK_EQ_INT(ingest_frontend_deadline(fe), 0);
    ingest_frontend_free(fe);
}

/* A slow consumer is not silent input: when the sentence callback blocks
 * (the pipeline's queue is full) longer than the idle-flush time while the
 * next lines are already waiting, ingest_frontend_pump must read them
 * before deciding that the input went idle, so a half-written sentence is
 * not cut at a word boundary. (Seen as extra sentences under ASan on a
 * loaded machine.) */
static void slow_cb(void *u, const ingest_sentence *s) {
    cb(u, s);
    struct timespec t = {0, 300000000};  /* 3x the idle-flush time below */
    nanosleep(&t, NULL);
}
static void test_idle_flush_not_while_consumer_blocks(void) {
    coll c;
    memset(&c, 0, sizeof c);
    ingest_params p;
    ingest_default_params(&p);
    p.text.idle_flush_ns = 100000000ull;  /* 100 ms */
    p.text.merge_short_chars = 0;
    ingest_frontend *fe;
    CHECK(ingest_frontend_new(&p, slow_cb, wcb, &c, &fe, NULL) == STTS_OK);
    int fds[2];
    CHECK(pipe(fds) == 0);
    const char *L[] = {START("m1"), BSTART(0, "text"), DELTA(0, "First sentence here. Then a second one is wri"),
                       DELTA(0, "tten in two pieces. "), BSTOP(0)};
    for (int i = 0; i < 5; i++) {
        CHECK(write(fds[1], L[i], strlen(L[i])) == (ssize_t)strlen(L[i]));
        CHECK(write(fds[1], "\n", 1) == 1);
    }
    close(fds[1]);
    ingest_reader *r = NULL;
    CHECK(ingest_reader_new(fds[0], 0, &r, NULL) == STTS_OK);
    CHECK(ingest_frontend_pump(fe, r, NULL, NULL) == STTS_OK);
    CHECK_EQ_INT(c.n, 2);
    CHECK_EQ_STR(c.s[0], "First sentence here.");
    CHECK_EQ_STR(c.s[1], "Then a second one is written in two pieces.");
    ingest_reader_free(r);
    ingest_frontend_free(fe);
    close(fds[0]);
}

static void test_key_order_and_whitespace(void) {
    const char *L[] = {"{ \"uuid\": \"u\", \"parent_tool_use_id\": null, \"message\": { \"content\": [ { \"text\": \"Spaced \\u00e9 out\\ud83d\\ude00 line.\", \"type\": \"text\" } ], \"id\": \"m1\" }, \"type\": \"assistant\" }\r",
                       "{\"_t\":123,\"event\":{\"delta\":{\"text\":\"Prefixed key order.\",\"type\":\"text_delta\"},\"index\":0,\"type\":\"content_block_delta\"},\"type\":\"stream_event\"}",
                       NULL};
    coll c;
    run(L, &c);
    EXPECT(&c, "Spaced \xc3\xa9 out line. | Prefixed key order.");
    CHECK_EQ_INT(c.nw, 0);
}

/* ---- transcripts ---- */
static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

#define TU(text) "{\"type\":\"user\",\"isSidechain\":false,\"message\":{\"role\":\"user\",\"content\":\"" text "\"},\"uuid\":\"x\"}\n"
#define TMETA(text) "{\"type\":\"user\",\"isSidechain\":false,\"isMeta\":true,\"message\":{\"role\":\"user\",\"content\":" \
    "[{\"type\":\"text\",\"text\":\"" text "\"}]},\"uuid\":\"m\"}\n"
#define TA(id, text) "{\"type\":\"assistant\",\"isSidechain\":false,\"message\":{\"id\":\"" id "\",\"content\":[{\"type\":\"text\",\"text\":\"" text "\"}]}}\n"

static void test_transcript_last_turn(void) {
    char path[] = "/tmp/stts_transcript_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    write_file(path,
               "{\"type\":\"summary\",\"summary\":\"Old\",\"leafUuid\":\"l\"}\n"
               TU("first prompt") TA("a1", "Old answer.")
               TU("second prompt")
               TA("a2", "New answer part one.")
               "{\"type\":\"assistant\",\"isSidechain\":false,\"message\":{\"id\":\"a2\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"Bash\",\"input\":{}}]}}\n"
               "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t\",\"content\":\"ok\"}]}}\n"
               "{\"type\":\"assistant\",\"isSidechain\":true,\"message\":{\"id\":\"s\",\"content\":[{\"type\":\"text\",\"text\":\"Sidechain text.\"}]}}\n"
               "{\"type\":\"user\",\"isMeta\":true,\"message\":{\"role\":\"user\",\"content\":\"meta\"}}\n"
               "{\"type\":\"assistant\",\"isApiErrorMessage\":true,\"message\":{\"id\":\"e\",\"model\":\"<synthetic>\",\"content\":[{\"type\":\"text\",\"text\":\"API Error\"}]}}\n"
               "{\"type\":\"file-history-snapshot\",\"snapshot\":{}}\n"
               /* session metadata, and a line type of a later CLI: no warning (c.nw below) */
               "{\"type\":\"custom-title\",\"customTitle\":\"x\"}\n{\"type\":\"ai-title\",\"aiTitle\":\"y\"}\n"
               "{\"type\":\"last-prompt\",\"lastPrompt\":\"z\"}\n{\"type\":\"some-new-meta\",\"v\":1}\n"
               TA("a3", "New answer part two.")
               TA("a3", "New answer part two."));   /* resumed: same message again; and no final newline issue */
    coll c;
    last_turn(path, 1, &c);
    EXPECT(&c, "New answer part one. | {error}Claude Code reported an error. | New answer part two.");
    CHECK_EQ_INT(c.nw, 0);
    CHECK(ingest_transcript_is_prompt(TU("hello"), strlen(TU("hello")) - 1));
    CHECK(!ingest_transcript_is_prompt(TU("[Request interrupted by user]"), strlen(TU("[Request interrupted by user]")) - 1));
    /* a last prompt with half an emoji (a lone surrogate escape) is still the
     * prompt: the turn before it is not spoken again */
    write_file(path, TU("first prompt") TA("a1", "Old answer.") TU("broken emoji \\ud83d here")
                     TA("a2", "New answer."));
    CHECK(ingest_transcript_is_prompt(TU("broken \\ud83d"), strlen(TU("broken \\ud83d")) - 1));
    last_turn(path, 1, &c);
    EXPECT(&c, "New answer.");
    /* a prompt that is only a pasted image starts the last turn too */
    write_file(path, TU("first prompt") TA("a1", "Old answer.")
                     "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":"
                     "{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}}]},\"uuid\":\"x\"}\n"
                     TA("a2", "The screenshot shows an error."));
    last_turn(path, 1, &c);
    EXPECT(&c, "The screenshot shows an error.");
    stts_error err;
    CHECK(ingest_transcript_last_turn(NULL, "/nonexistent/x.jsonl", &err) == STTS_ERR_IO);
    CHECK(strstr(err.msg, "/nonexistent/x.jsonl") != NULL);
    unlink(path);
}

/* Which user lines of a transcript start the last turn: a finished
 * background task's notification does, also when stored with isMeta (the
 * reply before it was said again with the task's); Claude Code's "Output
 * token limit hit" continuation prompt, a local slash command and a `!`
 * shell line do not (the reply was lost, or none was said); a slash command
 * that Claude answers (a prompt command, a skill) does. Fed whole, as
 * --follow does, each reply is said once. */
static void test_transcript_turn_boundaries(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/stts_tb_%d.jsonl", (int)getpid());
    static const struct { const char *file, *want; } cases[] = {
        {TU("build it") TA("b1", "Starting the build now.")
         "{\"type\":\"user\",\"isMeta\":true,\"origin\":{\"kind\":\"task-notification\"},\"message\":{\"role\":"
         "\"user\",\"content\":\"<task-notification>done</task-notification>\"},\"uuid\":\"y\"}\n"
         TA("b2", "The build finished cleanly."),
         "The build finished cleanly."},
        {TU("report") TA("c1", "Here is the report. The parser needs a complete rewr")
         TU("Output token limit hit. Resume directly.") TA("c2", "ite of the tokenizer."),
         "Here is the report. | The parser needs a complete rewrite of the tokenizer."},
        {TU("explain") TA("d1", "It works like this.")
         TU("<command-name>/cost</command-name>") TU("<local-command-stdout>Total cost: $0.01</local-command-stdout>")
         TU("<bash-input>ls</bash-input>") TU("<bash-stdout>a b</bash-stdout>"),
         "It works like this."},
        /* a prompt command Claude answers (/review, a .claude/commands file):
         * the command line, its isMeta expansion, then the reply, which is
         * the last turn; the reply before it was said again */
        {TU("why does test_empty fail?") TA("e1", "The test expects None.")
         TU("<command-message>review is running\u2026</command-message>\\n<command-name>/review</command-name>\\n"
            "<command-args>42</command-args>")
         TMETA("You are an expert code reviewer. Review pull request 42.")
         TA("e2", "Pull request 42 looks good."), "Pull request 42 looks good."},
        /* a skill run as a slash command, answered in several lines */
        {TU("what does the parser do?") TA("f1", "It builds a tree.")
         TU("<command-message>dev:reflect</command-message>\\n<command-name>/dev:reflect</command-name>")
         TMETA("Base directory for this skill: /home/ana/.claude/skills/reflect")
         TA("f2", "I will reflect now.")
         "{\"type\":\"assistant\",\"isSidechain\":false,\"message\":{\"id\":\"f2\",\"content\":[{\"type\":\"tool_use\","
         "\"id\":\"t\",\"name\":\"Read\",\"input\":{}}]}}\n"
         "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t\","
         "\"content\":\"ok\"}]}}\n"
         TA("f3", "The fix went well."), "I will reflect now. | The fix went well."},
        /* a local command with a <synthetic> message ("No response
         * requested."), then the user's next command: no reply, no turn */
        {TU("explain") TA("g1", "It works like this.")
         TMETA("Caveat: The messages below were generated by the user while running local commands.")
         TU("<command-name>/model</command-name>\\n<command-message>model</command-message>")
         TU("<local-command-stdout>Set model to opus</local-command-stdout>")
         "{\"type\":\"assistant\",\"isSidechain\":false,\"message\":{\"id\":\"g2\",\"model\":\"<synthetic>\",\"content\":"
         "[{\"type\":\"text\",\"text\":\"No response requested.\"}]}}\n"
         TU("<command-name>/cost</command-name>") TU("<local-command-stdout>Total cost: $0.01</local-command-stdout>"),
         "It works like this."},
        /* an answered command, then a local one: the answer is the last turn */
        {TU("first") TA("h1", "Old reply.")
         TU("<command-name>/init</command-name>\\n<command-message>init</command-message>")
         TMETA("Please analyze this codebase and create a CLAUDE.md file.")
         TA("h2", "I created CLAUDE.md.")
         TU("<command-name>/cost</command-name>") TU("<local-command-stdout>Total cost: $0.01</local-command-stdout>"),
         "I created CLAUDE.md."},
        /* a command whose answer is an API error: the error, not the reply before */
        {TU("first") TA("i1", "Old reply.")
         TU("<command-name>/review</command-name>") TMETA("Review the pull request.")
         "{\"type\":\"assistant\",\"isSidechain\":false,\"isApiErrorMessage\":true,\"message\":{\"id\":\"i2\","
         "\"model\":\"<synthetic>\",\"content\":[{\"type\":\"text\",\"text\":\"API Error: 500\"}]}}\n",
         "{error}Claude Code reported an error."},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        write_file(path, cases[k].file);
        coll c;
        last_turn(path, 0, &c);
        EXPECT(&c, cases[k].want);
    }
    unlink(path);
    /* --follow feeds every line: the reply before the command and the
     * command's reply, once each */
    const char *F[] = {"{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"why?\"}}",
                       "{\"type\":\"assistant\",\"message\":{\"id\":\"a1\",\"content\":[{\"type\":\"text\",\"text\":\"Because it is empty\"}]}}",
                       "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"<command-name>/review</command-name>\"}}",
                       "{\"type\":\"user\",\"isMeta\":true,\"message\":{\"role\":\"user\",\"content\":\"Review it.\"}}",
                       "{\"type\":\"assistant\",\"message\":{\"id\":\"a2\",\"content\":[{\"type\":\"text\",\"text\":\"Looks good.\"}]}}",
                       "{\"type\":\"assistant\",\"message\":{\"id\":\"a2\",\"content\":[{\"type\":\"text\",\"text\":\"Looks good.\"}]}}",
                       NULL};
    ingest_params p;
    ingest_default_params(&p);
    p.transcript = 1;
    p.text.merge_short_chars = 0;
    coll c;
    run_p(&p, F, &c);
    EXPECT(&c, "Because it is empty | Looks good.");
    CHECK_EQ_INT(c.nw, 0);
    /* the kinds the turn search goes by */
    CHECK(ingest_transcript_line_kind(F[0], strlen(F[0])) == INGEST_TRANSCRIPT_PROMPT);
    CHECK(ingest_transcript_line_kind(F[1], strlen(F[1])) == INGEST_TRANSCRIPT_REPLY);
    CHECK(ingest_transcript_line_kind(F[2], strlen(F[2])) == INGEST_TRANSCRIPT_COMMAND);
    CHECK(ingest_transcript_line_kind(F[3], strlen(F[3])) == INGEST_TRANSCRIPT_OTHER);
}

/* Claude Code's synthetic user lines (claude-stream-json.md §5: "Tool
 * loaded.", a compaction summary with isSynthetic) are no prompts: in a
 * transcript they started a new "last turn", so --transcript said only what
 * followed the last of them and lost the turn's earlier text. */
static void test_transcript_synthetic_users(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/data/front/transcript_synthetic_users.jsonl", STTS_SOURCE_DIR);
    coll c;
    last_turn(path, 0, &c);
    EXPECT(&c, "I will load the tool first. | The tool is ready now. | Continuing after the summary.");
    CHECK_EQ_INT(c.nw, 0);
}

static void test_hook_payload(void) {
    const char *ok = "{\"session_id\":\"s\",\"transcript_path\":\"/home/u/.claude/projects/p/s.jsonl\",\"hook_event_name\":\"Stop\",\"stop_hook_active\":false}";
    char *path = NULL;
    stts_error err;
    CHECK(ingest_hook_transcript_path(ok, strlen(ok), &path, &err) == STTS_OK);
    CHECK_EQ_STR(path, "/home/u/.claude/projects/p/s.jsonl");
    free(path);
    CHECK(ingest_hook_transcript_path("{\"session_id\":1}", 16, &path, &err) == STTS_ERR_FORMAT);
    CHECK(strstr(err.msg, "transcript_path") != NULL);
    CHECK(ingest_hook_transcript_path("not json", 8, &path, &err) == STTS_ERR_FORMAT);
    CHECK(path == NULL);
}

/* A background task's new turn repeats the answer already spoken in its
 * result: never spoken twice, whatever the turn bookkeeping says (markup and
 * spacing differences do not matter). A result with new text still speaks. */
static void test_result_already_spoken(void) {
    const char *L[] = {
        "{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"s\"}",
        ASSIST("m1", "The build **passed**. All 12 tests are green."), RESULT("The build passed. All 12 tests are green."),
        "{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"s\"}",
        "{\"type\":\"system\",\"subtype\":\"task_notification\",\"status\":\"completed\",\"summary\":\"x\"}",
        "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result_index\":1,"
        "\"origin\":{\"kind\":\"task-notification\"},\"result\":\"The build passed.\\n\\nAll 12 tests are green.\"}",
        RESULT("All 12 tests are green."),
        RESULT("A new answer that was never said."), NULL};
    coll c;
    ingest_stats st = run(L, &c);
    EXPECT(&c, "The build passed. | All 12 tests are green. | A new answer that was never said.");
    CHECK(st.duplicates >= 2);
    /* partial mode too */
    const char *P[] = {START("m1"), BSTART(0, "text"), DELTA(0, "Done: I fixed "), DELTA(0, "`main.c`."), BSTOP(0), MSTOP,
                       RESULT("Done: I fixed `main.c`."), RESULT("Done: I fixed main.c"), NULL};
    run(P, &c);
    EXPECT(&c, "Done: I fixed main.c.");
}

/* The no-text fallback is suppressed only by whole sentences already spoken:
 * "Yes." is not inside "yesterday", nor "Done" inside "Done with it."; a
 * repeat of whole sentences (one, several, across blocks) is still silent. */
static void test_result_whole_sentences(void) {
    const char *L[] = {
        ASSIST("m1", "I checked yesterday's logs and everything looks fine."), RESULT("x"),
        RESULT("Yes."),                          /* a later turn that said nothing: its answer */
        ASSIST("m2", "Done with it. Did it work? Yes! Great."), RESULT("x"),
        RESULT("Done"), RESULT("did it work"), RESULT("Did it work? Yes!"),
        RESULT("it work? Yes"),
        "{\"type\":\"assistant\",\"message\":{\"id\":\"m3\",\"content\":[{\"type\":\"text\",\"text\":\"First block\"},"
        "{\"type\":\"text\",\"text\":\"second block\"}]},\"parent_tool_use_id\":null}", RESULT("x"),
        RESULT("First block\\n\\nsecond block"), RESULT("block second"),
        "{\"type\":\"assistant\",\"message\":{\"id\":\"m4\",\"content\":[{\"type\":\"text\",\"text\":\"\u0647\u0644 \u0623\u0646\u062a \u0645\u0633\u062a\u0639\u062f\u061f \u0646\u0639\u0645\"}]},\"parent_tool_use_id\":null}", RESULT("x"),
        RESULT("\u0646\u0639\u0645"), NULL};
    coll c;
    ingest_stats st = run(L, &c);
    EXPECT(&c, "I checked yesterday's logs and everything looks fine. | Yes. | Done with it. | Did it work? | Yes! | "
               "Great. | Done | it work? | Yes | First block | second block | block second | "
               "\xD9\x87\xD9\x84 \xD8\xA3\xD9\x86\xD8\xAA \xD9\x85\xD8\xB3\xD8\xAA\xD8\xB9\xD8\xAF\xD8\x9F | "
               "\xD9\x86\xD8\xB9\xD9\x85");
    CHECK_EQ_INT(st.duplicates, 4);
}

/* Structured output: the result text is JSON for a program, never read out;
 * the StructuredOutput tool call is not announced either. */
static void test_structured_output(void) {
    ingest_params p;
    ingest_default_params(&p);
    p.text.merge_short_chars = 0;
    p.announce_tools = 1;
    const char *L[] = {
        "{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\","
        "\"name\":\"StructuredOutput\",\"input\":{\"ok\":true}}]},\"parent_tool_use_id\":null}",
        "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"{\\\"ok\\\": true}\"}",
        /* a later turn: structured_output in the result */
        "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"ok\","
        "\"structured_output\":{\"ok\":true}}",
        /* no structured_output field, but the text is a JSON object */
        RESULT("  {\\\"name\\\": \\\"x\\\", \\\"n\\\": [1, 2]}"),
        /* JSON-looking but not JSON: spoken */
        RESULT("[1] is the first reference."), NULL};
    coll c;
    ingest_stats st = run_p(&p, L, &c);
    EXPECT(&c, "1 is the first reference.");   /* spoken (markdown drops the brackets) */
    CHECK_EQ_INT(st.structured_skipped, 3);
}

/* A number jansson cannot hold as an integer (beyond 64 bits) or at all
 * (1e999) must not cost the line: its text is spoken, and a result whose
 * text is JSON with such a number is still recognised as structured output. */
static void test_big_numbers(void) {
    const char *L[] = {
        "{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"content\":[{\"type\":\"text\",\"text\":\"Twenty-five factorial is large.\"},"
        "{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"Bash\",\"input\":{\"n\":15511210043330985984000000}}]},\"parent_tool_use_id\":null}",
        "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"x\",\"usage\":{\"n\":1e999}}",
        "{\"type\":\"assistant\",\"message\":{\"id\":\"m2\",\"content\":[{\"type\":\"text\",\"text\":\"Still 1e999 here.\"}]},"
        "\"parent_tool_use_id\":null,\"big\":-1e999,\"s\":\"1e999 \\\" 2e999\"}",
        "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"\"}",
        RESULT("{\\\"answer\\\": 15511210043330985984000000}"),
        RESULT("{\\\"answer\\\": 1e999}"), NULL};
    coll c;
    ingest_stats st = run(L, &c);
    EXPECT(&c, "Twenty-five factorial is large. | Still 1e999 here.");
    CHECK_EQ_INT(st.bad_lines, 0);
    CHECK_EQ_INT(st.structured_skipped, 2);
    CHECK_EQ_INT(c.nw, 2);
    CHECK(strstr(c.warn[0], "line 2: 1 number out of range replaced by 0") != NULL);
    CHECK(strstr(c.warn[1], "line 3: 1 number out of range") != NULL);
    /* the hook payload too */
    const char *hp = "{\"n\":123456789012345678901234567890,\"transcript_path\":\"/t/s.jsonl\"}";
    char *path = NULL;
    CHECK(ingest_hook_transcript_path(hp, strlen(hp), &path, NULL) == STTS_OK);
    CHECK(path && strcmp(path, "/t/s.jsonl") == 0);
    free(path);
}

/* Partial mode: a text block repeating an earlier block of the same message
 * is spoken once; a block that only starts the same is spoken in full. */
static void test_identical_blocks_partial(void) {
    const char *L[] = {START("m1"), BSTART(0, "text"), DELTA(0, "Checking the "), DELTA(0, "logs now."), BSTOP(0),
                       BSTART(1, "tool_use"), BSTOP(1),
                       BSTART(2, "text"), DELTA(2, "Checking the "), DELTA(2, "logs now."),
                       ASSIST("m1", "Checking the logs now."), BSTOP(2),
                       BSTART(3, "text"), DELTA(3, "Checking the "), DELTA(3, "tests too."), BSTOP(3),
                       BSTART(4, "text"), DELTA(4, "Checking"), BSTOP(4), MSTOP,
                       START("m2"), BSTART(0, "text"), DELTA(0, "Checking the logs now."), BSTOP(0), MSTOP, NULL};
    coll c;
    run(L, &c);
    EXPECT(&c, "Checking the logs now. | Checking the tests too. | Checking | Checking the logs now.");
}

/* The complete line of a streamed block that differs from what streamed by
 * a character in its middle (a replaced byte, a character the stream lost):
 * the same block, said once, not whole again. A block differing by more is
 * new and read. */
static void test_block_changed_in_middle(void) {
    const char *L[] = {START("m1"), BSTART(0, "text"), DELTA(0, "The build of the caf\\ufffd menu finished "),
                       DELTA(0, "without errors today."), BSTOP(0), MSTOP,
                       ASSIST("m1", "The build of the caf\u00e9 menu finished without errors today."), NULL};
    coll c;
    run(L, &c);
    CHECK_EQ_INT(c.n, 1);
    /* the turn's result holding the block as the complete line has it */
    const char *R[] = {START("m1"), BSTART(0, "text"), DELTA(0, "The build of the caf\\ufffd menu finished "),
                       DELTA(0, "without errors today."), BSTOP(0), MSTOP,
                       RESULT("The build of the caf\u00e9 menu finished without errors today."), NULL};
    run(R, &c);
    CHECK_EQ_INT(c.n, 1);
    const char *M[] = {START("m1"), BSTART(0, "text"), DELTA(0, "The build of the backend finished "),
                       DELTA(0, "without errors today."), BSTOP(0), MSTOP,
                       ASSIST("m1", "The build of the frontend and the docs finished without errors today."), NULL};
    run(M, &c);
    EXPECT(&c, "The build of the backend finished without errors today. | The build of the frontend and the docs finished without errors today.");
}

/* --input-format text/markdown, and plain text on a stream-json input. */
static void test_input_formats(void) {
    ingest_params p;
    ingest_default_params(&p);
    p.text.merge_short_chars = 0;
    p.input_format = INGEST_INPUT_TEXT;
    const char *T[] = {"# Not a heading, *not* emphasis.", "", "    Indented is not code.", NULL};
    coll c;
    run_p(&p, T, &c);
    EXPECT(&c, "# Not a heading, *not* emphasis. | Indented is not code.");
    p.input_format = INGEST_INPUT_MARKDOWN;
    const char *M[] = {"# Title", "Some **bold** text.", NULL};
    run_p(&p, M, &c);
    EXPECT(&c, "Title | Some bold text.");
    /* invalid UTF-8 is dropped, the text around it kept, and said once, with the line */
    const char *U[] = {"Fine line.", "Caf\xe9 is good and \xff\xfe ok.", "Also caf\xe9 here.", NULL};
    for (int f = 0; f < 2; f++) {
        p.input_format = f ? INGEST_INPUT_MARKDOWN : INGEST_INPUT_TEXT;
        ingest_stats su = run_p(&p, U, &c);
        EXPECT(&c, "Fine line. | Caf is good and ok. | Also caf here.");
        CHECK_EQ_INT(su.invalid_utf8, 2);
        CHECK_EQ_INT(c.nw, 1);
        CHECK_EQ_INT(c.warn_line[0], 2);
        CHECK_MSG(strstr(c.warn[0], "line 2: invalid UTF-8 at byte 4") != NULL, "%s", c.warn[0]);
    }
    /* a file or printf ending without a newline: read whole, nothing warned */
    for (int f = 0; f < 2; f++) {
        p.input_format = f ? INGEST_INPUT_MARKDOWN : INGEST_INPUT_TEXT;
        memset(&c, 0, sizeof c);
        ingest_frontend *fe;
        CHECK(ingest_frontend_new(&p, cb, wcb, &c, &fe, NULL) == STTS_OK);
        ingest_frontend_feed(fe, "First line here.", 16, 1, 0, 0, NULL);
        ingest_frontend_feed(fe, "No newline at the end", 21, 2, 0, INGEST_LINE_TRUNCATED, NULL);
        ingest_frontend_finish(fe, 0);
        EXPECT(&c, "First line here. | No newline at the end");
        CHECK_EQ_INT(c.nw, 0);
        ingest_stats sn;
        ingest_frontend_stats(fe, &sn);
        CHECK_EQ_INT(sn.truncated, 0);
        ingest_frontend_free(fe);
    }
    p.input_format = INGEST_INPUT_STREAM_JSON;
    const char *J[] = {"Hello there, this is not JSON.", "Nor is this.", "{broken", ASSIST("m1", "Spoken."), NULL};
    ingest_stats st = run_p(&p, J, &c);
    EXPECT(&c, "Spoken.");
    CHECK_EQ_INT(st.plain_text_lines, 2);
    CHECK_EQ_INT(c.nw, 2);   /* the plain-text advice once, the broken JSON line once */
    CHECK(strstr(c.warn[0], "--input-format text") && strstr(c.warn[0], "--output-format stream-json"));
    CHECK(strstr(c.warn[1], "line 3: not valid JSON"));
}

/* The idle flush is for silence in the input, not for a slow consumer: when
 * the sentence callback takes longer than idle_flush_ns, the next line that is
 * already waiting is read before anything pending is flushed, so no sentence
 * is cut at a delta boundary. */
static int g_slow_calls;
static void slow_cb2(void *u, const ingest_sentence *s) {
    cb(u, s);
    struct timespec t = {0, 60000000};   /* 60 ms > the 10 ms idle flush */
    if (g_slow_calls++ == 0) nanosleep(&t, NULL);
}
static void test_slow_consumer_no_idle_cut(void) {
    const char *L[] = {START("m1"), BSTART(0, "text"), DELTA(0, "First sentence here. Second part"),
                       DELTA(0, " continues here."), BSTOP(0), MSTOP, NULL};
    int fds[2];
    CHECK(pipe(fds) == 0);
    for (int i = 0; L[i]; i++) {
        CHECK(write(fds[1], L[i], strlen(L[i])) == (ssize_t)strlen(L[i]));
        CHECK(write(fds[1], "\n", 1) == 1);
    }
    close(fds[1]);
    ingest_params p;
    ingest_default_params(&p);
    p.text.merge_short_chars = 0;
    p.text.idle_flush_ns = 10000000ull;
    coll c;
    memset(&c, 0, sizeof c);
    g_slow_calls = 0;
    ingest_frontend *fe;
    ingest_reader *r;
    CHECK(ingest_frontend_new(&p, slow_cb2, wcb, &c, &fe, NULL) == STTS_OK);
    CHECK(ingest_reader_new(fds[0], 0, &r, NULL) == STTS_OK);
    volatile sig_atomic_t stop = 0;
    CHECK(ingest_frontend_pump(fe, r, &stop, NULL) == STTS_OK);
    ingest_reader_free(r);
    ingest_frontend_free(fe);
    close(fds[0]);
    EXPECT(&c, "First sentence here. | Second part continues here.");
}

/* A UTF-8 byte order mark before a line (a file saved on Windows, several
 * such files concatenated) is not JSON: the line is read, not taken for
 * plain text. Also for a transcript's prompt and a hook payload. */
static void test_bom(void) {
    const char *L[] = {"\xEF\xBB\xBF" ASSIST("m1", "First line with a mark."), ASSIST("m2", "Second line."),
                       "\xEF\xBB\xBF" ASSIST("m3", "Concatenated file."), RESULT("Concatenated file."), NULL};
    coll c;
    ingest_stats st = run(L, &c);
    EXPECT(&c, "First line with a mark. | Second line. | Concatenated file.");
    CHECK_EQ_INT(c.nw, 0);
    CHECK_EQ_INT(st.bad_lines, 0);
    const char *prompt = "\xEF\xBB\xBF" "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"hi\"}}";
    CHECK(ingest_transcript_is_prompt(prompt, strlen(prompt)));
    const char *hook = "\xEF\xBB\xBF{\"transcript_path\":\"/t.jsonl\"}";
    char *path = NULL;
    CHECK(ingest_hook_transcript_path(hook, strlen(hook), &path, NULL) == STTS_OK);
    CHECK(path && strcmp(path, "/t.jsonl") == 0);
    free(path);
}

/* Claude Code 2.1.74 wrote an event into the middle of a line when it came
 * while the line was being written (anthropics/claude-code#49640): the
 * line's start and the whole event with its newline, then the rest of the
 * line. The two halves are read as one line; the event is handled too. */
#define RATE "{\"type\":\"rate_limit_event\",\"rate_limit_info\":{\"status\":\"allowed_warning\",\"resetsAt\":1760000000},\"uuid\":\"u\"}"
static void test_split_line(void) {
    const char *L[] = {"{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"content\":[{\"type\":\"text\",\"text\":\"The loop stops " RATE,
                       "one character early. I fixed it.\"}]},\"parent_tool_use_id\":null}",
                       ASSIST("m2", "Tests pass."), RESULT("Tests pass."), NULL};
    coll c;
    ingest_stats st = run(L, &c);
    EXPECT(&c, "The loop stops one character early. | I fixed it. | Tests pass.");
    CHECK_EQ_INT(c.nw, 1);
    CHECK_EQ_INT(c.warn_line[0], 2);
    CHECK_MSG(strstr(c.warn[0], "lines 1 to 2") != NULL, "%s", c.warn[0]);
    CHECK_EQ_INT(st.bad_lines, 0);
    CHECK_EQ_INT(st.plain_text_lines, 0);

    /* partial mode: the deltas spoke it; the rejoined line adds nothing, and
     * the stream events around it go on as usual */
    const char *P[] = {START("m1"), BSTART(0, "text"), DELTA(0, "Hello there. "), DELTA(0, "More text."),
                       "{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"content\":[{\"type\":\"text\",\"text\":\"Hello there. More" RATE,
                       " text.\"}]},\"parent_tool_use_id\":null}", BSTOP(0), MSTOP, RESULT("Hello there. More text."), NULL};
    st = run(P, &c);
    EXPECT(&c, "Hello there. | More text.");
    CHECK_EQ_INT(c.nw, 1);
    CHECK_EQ_INT(st.duplicates, 1);

    /* two events written into one line: three pieces */
    const char *T3[] = {"{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"content\":[{\"type\":\"text\",\"text\":\"One, " RATE,
                        "two, " RATE, "three.\"}]}}", NULL};
    st = run(T3, &c);
    EXPECT(&c, "One, two, three.");
    CHECK_EQ_INT(c.nw, 1);
    CHECK_MSG(strstr(c.warn[0], "line 3: lines 1 to 3") != NULL, "%s", c.warn[0]);

    /* a start whose rest never comes: one warning under its own number; a
     * line cut short is held for its rest, and text that does not complete
     * it is named in its warning; other lines as usual */
    const char *B[] = {"{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"content\":[{\"type\":\"text\",\"text\":\"Lost " RATE,
                       ASSIST("m2", "Next line."),
                       "{\"type\":\"assistant\",\"message\":{\"id\":",   /* 3: broken, not merely cut short */
                       "plain words here",                                  /* 4 */
                       "{\"type\":\"assistant\",\"message\":{\"id\":\"m3\",\"content\":[{\"type\":\"text\",\"text\":\"Cut",
                       "not its end", ASSIST("m4", "Last line."),
                       "{\"type\":\"assistant\",\"mess", NULL};          /* 8: cut short at the end */
    st = run(B, &c);
    EXPECT(&c, "Next line. | Last line.");
    CHECK_EQ_INT(c.nw, 5);
    uint64_t want[] = {1, 3, 4, 5, 8};
    for (int i = 0; i < c.nw && i < 5; i++) CHECK_EQ_INT(c.warn_line[i], want[i]);
    CHECK_MSG(strstr(c.warn[0], "rest of it did not follow") != NULL, "%s", c.warn[0]);
    CHECK_MSG(strstr(c.warn[1], "not valid JSON") != NULL, "%s", c.warn[1]);
    CHECK_MSG(strstr(c.warn[2], "plain text") != NULL, "%s", c.warn[2]);
    CHECK_MSG(strstr(c.warn[3], "line 6 did not complete it") != NULL, "%s", c.warn[3]);
    CHECK_MSG(strstr(c.warn[4], "not valid JSON") != NULL, "%s", c.warn[4]);
    CHECK_EQ_INT(st.bad_lines, 6);
}

/* Partial mode, a text_delta line lost (cut short, broken, over the length
 * limit): the deltas after it continued mid-word from elsewhere, "The quick
 * bro" + "ps over" was read "The quick brops over", and the block's complete
 * line after its stop was said again in full. Now the deltas after the loss
 * wait for the complete line, which fills the gap (before the stop, the
 * CLI's order, or after it, the SDK's); without one they follow after a word
 * break and the late line is not said again. */
#define LOSTD "{\"type\":\"stream_event\",\"parent_tool_use_id\":null,\"event\":{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_"
#define FOX "The quick brown fox jumps over the lazy dog. Then it sleeps."
static void test_lost_delta_line_gap(void) {
    coll c;
    const char *cli[] = {START("m1"), BSTART(0, "text"), DELTA(0, "The quick bro"), LOSTD,
                         DELTA(0, "ps over the lazy dog. Then it sleeps."), ASSIST("m1", FOX), BSTOP(0), MSTOP,
                         RESULT(FOX), NULL};
    ingest_stats st = run(cli, &c);
    EXPECT(&c, "The quick brown fox jumps over the lazy dog. | Then it sleeps.");
    CHECK_EQ_INT(st.bad_lines, 1);
    const char *sdk[] = {START("m1"), BSTART(0, "text"), DELTA(0, "The quick bro"), LOSTD,
                         DELTA(0, "ps over the lazy dog. Then it sleeps."), BSTOP(0), MSTOP, ASSIST("m1", FOX),
                         RESULT(FOX), NULL};
    run(sdk, &c);
    EXPECT(&c, "The quick brown fox jumps over the lazy dog. | Then it sleeps.");
    /* no complete line: a word break at the gap, nothing glued, nothing lost that came */
    const char *none[] = {START("m1"), BSTART(0, "text"), DELTA(0, "The quick bro"), LOSTD,
                          DELTA(0, "ps over the lazy dog. Then it sleeps."), BSTOP(0), MSTOP, RESULT("Other text."), NULL};
    run(none, &c);
    EXPECT(&c, "The quick bro ps over the lazy dog. | Then it sleeps.");
    /* ... but the result holds the block's text (the turn's last): it fills the gap */
    const char *res[] = {START("m1"), BSTART(0, "text"), DELTA(0, "The quick bro"), LOSTD,
                         DELTA(0, "ps over the lazy dog. Then it sleeps."), BSTOP(0), MSTOP, RESULT(FOX), NULL};
    st = run(res, &c);
    EXPECT(&c, "The quick brown fox jumps over the lazy dog. | Then it sleeps.");
    CHECK_EQ_INT(st.duplicates, 1);
    /* the next block starts before the late line (SDK order, a tool call):
     * the held text is said then, and the late line is not said again */
    const char *late[] = {START("m1"), BSTART(0, "text"), DELTA(0, "The quick bro"), LOSTD,
                          DELTA(0, "ps over the lazy dog. Then it sleeps."), BSTOP(0),
                          EV("{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"Bash\"}}"),
                          BSTOP(1), MSTOP, ASSIST("m1", FOX), RESULT(FOX), NULL};
    st = run(late, &c);
    EXPECT(&c, "The quick bro ps over the lazy dog. | Then it sleeps.");
    CHECK_EQ_INT(st.duplicates, 1);
    /* a delta that never came, no broken line to show it: the words around
     * the gap are glued (nothing tells), but the complete line after the
     * stop is not said again; a block that only shares a start and an end
     * with it is said */
    const char *trace[] = {START("m1"), BSTART(0, "text"), DELTA(0, "The quick bro"),
                           DELTA(0, "ps over the lazy dog. Then it sleeps."), BSTOP(0), MSTOP, ASSIST("m1", FOX),
                           ASSIST("m1", "The quick check is done. Then it sleeps."), RESULT(FOX), NULL};
    st = run(trace, &c);
    EXPECT(&c, "The quick brops over the lazy dog. | Then it sleeps. | The quick check is done. | Then it sleeps.");
    CHECK_EQ_INT(st.duplicates, 1);
    /* a lost line, then the stream is cut and retried: the retry says the
     * rest once (the held text was said, then all of the retry again) */
    const char *retry[] = {START("m1"), BSTART(0, "text"), DELTA(0, "The quick bro"), LOSTD, DELTA(0, "ps over"),
                           EV("{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}"),
                           START("m2"), BSTART(0, "text"), DELTA(0, "The quick brown fox jumps over the lazy dog."),
                           DELTA(0, " Then it sleeps."), ASSIST("m2", FOX), BSTOP(0), MSTOP, RESULT(FOX), NULL};
    run(retry, &c);
    EXPECT(&c, "{error}The request failed with an API error. | The quick brown fox jumps over the lazy dog. | Then it sleeps.");
    /* the lost line was the block's complete line (a long line cut short):
     * nothing is held, and the block still ends at its stop, not at the next
     * event (which may come only after a tool ran) */
    const char *cutline[] = {START("m1"), BSTART(0, "text"), DELTA(0, "Let me run the tests:"),
                             "{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"content\":[{\"type\":\"text\",\"text\":\"Let me ru",
                             BSTOP(0), MSTOP, RESULT("x"), NULL};
    run(cutline, &c);
    EXPECT(&c, "Let me run the tests:");
    CHECK_EQ_INT(c.line[0], 5);
    /* held text after a stop, and then silence (the CLI runs a tool): given
     * up at the idle flush, not kept until the next line */
    {
        const char *h[] = {START("m1"), BSTART(0, "text"), DELTA(0, "The quick bro"), LOSTD,
                           DELTA(0, "ps over the lazy dog. Then it sleeps."), BSTOP(0), MSTOP, NULL};
        memset(&c, 0, sizeof c);
        ingest_frontend *f2;
        CHECK(ingest_frontend_new(NULL, cb, wcb, &c, &f2, NULL) == STTS_OK);
        uint64_t t0 = 1000000000ull;
        for (uint64_t i = 0; h[i]; i++) ingest_frontend_feed(f2, h[i], strlen(h[i]), i + 1, t0 + i, 0, NULL);
        uint64_t dl = ingest_frontend_deadline(f2);
        CHECK(dl > t0 && dl <= t0 + 7 + 1500000000ull);
        ingest_frontend_tick(f2, t0 + 100);   /* not yet */
        CHECK_EQ_INT(c.n, 0);
        ingest_frontend_tick(f2, dl);
        EXPECT(&c, "The quick bro ps over the lazy dog. | Then it sleeps.");
        ingest_frontend_free(f2);
    }
    /* a broken line that cannot have been this speaker's delta (a tool
     * result cut short, a subagent's delta) holds nothing back: the main
     * agent's next sentence is said at its own delta, not at the line */
    const char *other_sp[] = {START("m1"), BSTART(0, "text"), DELTA(0, "First sentence here. "),
                              "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"content\":\"long out",
                              DELTA(0, "Second sentence here. Thi"),
                              "{\"type\":\"stream_event\",\"parent_tool_use_id\":\"toolu_9\",\"event\":{\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"sub wo",
                              DELTA(0, "rd one."), ASSIST("m1", "First sentence here. Second sentence here. Third one."),
                              BSTOP(0), NULL};
    run(other_sp, &c);
    EXPECT(&c, "First sentence here. | Second sentence here. | Third one.");
    CHECK_EQ_INT(c.line[1], 5);
    CHECK_EQ_INT(c.line[2], 9);
    /* a line over the length limit is a lost line too */
    memset(&c, 0, sizeof c);
    ingest_frontend *fe;
    CHECK(ingest_frontend_new(NULL, cb, wcb, &c, &fe, NULL) == STTS_OK);
    const char *tl[] = {START("m1"), BSTART(0, "text"), DELTA(0, "Hello big wor"), "", DELTA(0, "ain."),
                        ASSIST("m1", "Hello big world, hello again."), BSTOP(0), NULL};
    for (uint64_t i = 0; tl[i]; i++)
        ingest_frontend_feed(fe, tl[i], strlen(tl[i]), i + 1, 0, i == 3 ? INGEST_LINE_TOO_LONG : 0, NULL);
    ingest_frontend_finish(fe, 0);
    EXPECT(&c, "Hello big world, hello again.");
    ingest_frontend_free(fe);
    /* a broken line that was no delta of the block costs nothing: the line fills the gap with what was held */
    const char *other[] = {START("m1"), BSTART(0, "text"), DELTA(0, "First part, "), "{\"type\":\"rate_limit_ev",
                           DELTA(0, "second part."), ASSIST("m1", "First part, second part."), BSTOP(0), NULL};
    run(other, &c);
    EXPECT(&c, "First part, second part.");
}

/* claude -p --output-format json --verbose writes the whole session as one
 * JSON array of messages (result last): it was skipped as "not a JSON
 * object" and nothing was said. Its elements are read as lines. An array
 * of something else is still a bad line. */
static void test_json_output_array(void) {
    const char *L[] = {"[" INIT "," ASSIST("m1", "Hello from json mode.") ",{\"type\":\"user\",\"message\":{\"content\":"
                       "[{\"type\":\"tool_result\",\"tool_use_id\":\"t\",\"content\":\"secret output\"}]}},"
                       ASSIST("m2", "Done now.") "," RESULT("Done now.") "]",
                       "[1, 2]", "[{\"type\":\"result\"}, 3]", NULL};
    coll c;
    ingest_stats st = run(L, &c);
    EXPECT(&c, "Hello from json mode. | Done now.");
    CHECK_EQ_INT(st.results, 1);
    CHECK_EQ_INT(st.bad_lines, 2);
    CHECK_EQ_INT(c.nw, 2);
}

/* Claude Code writes a text block "(no content)" as a placeholder (a
 * message's empty first chunk in transcripts): it was read out. A sentence
 * that merely contains the words is read. */

/* A turn's last assistant line cut short by the CLI (lines cut at 4000/8000
 * characters: anthropics/claude-code#3359, #2904) after the turn had said
 * something: the final answer is then only in the result, which was silent
 * because the turn "had text". Now the result is said when a line that may
 * have been the main agent's assistant text was lost this turn and the
 * result was not already spoken; a streamed turn whose assistant line was
 * cut, and a turn that lost an earlier line, still say each sentence once. */
static void test_lost_assistant_line_result(void) {
    coll c;
    run_file("lost_final_line.jsonl", &c);
    EXPECT(&c, "Let me look at the files. | There are three files in the folder. | The build is clean. | "
               "The second turn streams. | Every word arrives as deltas. | Nothing was lost at the end.");
}

/* A text block that lost a delta line (cut short) and then its complete
 * assistant line too (cut short as well): the block's words are only in the
 * turn's result. The result was said whole ("lost final answer"), after the
 * block's words around the gap had been said: most of the block twice. Now
 * the result stands in for the block's complete line: it fills the gap (the
 * lost words in place) or adds the missing end; nothing twice, nothing lost.
 * tests/oracle/cases/lost_delta_and_line.jsonl: SDK order (the line after
 * the stop), CLI order (before it), a lost last delta. */
static void test_lost_delta_and_line(void) {
    coll c;
    ingest_stats st = run_in("oracle/cases", "lost_delta_and_line.jsonl", &c);
    EXPECT(&c, "Let me check the logs. | The quick brown fox jumps over the lazy dog. | Then it sleeps in the sun. | "
               "Every test passes on the first try now. | The flaky one was a race. | "
               "The build is green. | Nothing else changed.");
    CHECK_EQ_INT(st.bad_lines, 6);
    CHECK_EQ_INT(st.results, 3);
#define CUTA(id, txt) "{\"type\":\"assistant\",\"message\":{\"id\":\"" id "\",\"content\":[{\"type\":\"text\",\"text\":\"" txt
    /* the last delta lost mid-word, then the line after the stop: the
     * result's rest is said, from the start of the word cut */
    const char *mid[] = {START("m1"), BSTART(0, "text"), DELTA(0, "The quick bro"), LOSTD, BSTOP(0), MSTOP,
                         CUTA("m1", "The quick br"), RESULT("The quick brown fox."), NULL};
    run(mid, &c);
    EXPECT(&c, "The quick bro | brown fox.");
    /* the result right after the stop (no message_stop): the same sentence goes on */
    const char *mid2[] = {START("m1"), BSTART(0, "text"), DELTA(0, "The quick bro"), LOSTD, BSTOP(0),
                          CUTA("m1", "The quick br"), RESULT("The quick brown fox."), NULL};
    run(mid2, &c);
    EXPECT(&c, "The quick brown fox.");
    /* a result holding only the block's start (anthropics/claude-code#78686)
     * or the block but for a middle part never streamed: nothing again */
    const char *part[] = {START("m1"), BSTART(0, "text"), DELTA(0, "First sentence here. Second one."), BSTOP(0), MSTOP,
                          CUTA("m1", "First"), RESULT("First sentence here."), NULL};
    st = run(part, &c);
    EXPECT(&c, "First sentence here. | Second one.");
    CHECK_EQ_INT(st.duplicates, 1);
    const char *middle[] = {START("m1"), BSTART(0, "text"), DELTA(0, "First sentence here. "), DELTA(0, "Third one is here."),
                            BSTOP(0), MSTOP, CUTA("m1", "First"), RESULT("First sentence here. Second. Third one is here."), NULL};
    run(middle, &c);
    EXPECT(&c, "First sentence here. | Third one is here.");
    /* white space at the ends of the block (held "\n") is not compared with the result's */
    const char *ws[] = {START("m1"), BSTART(0, "text"), DELTA(0, "\\n\\nHello wor"), LOSTD, DELTA(0, " again.\\n"), BSTOP(0),
                        MSTOP, CUTA("m1", "Hel"), RESULT("Hello world again."), NULL};
    run(ws, &c);
    EXPECT(&c, "Hello world again.");
    /* two delta lines lost in the block: the result still fills it */
    const char *two[] = {START("m1"), BSTART(0, "text"), DELTA(0, "The quick bro"), LOSTD, DELTA(0, "ps over the la"), LOSTD,
                         DELTA(0, "dog."), BSTOP(0), MSTOP, CUTA("m1", "The"), RESULT("The quick brown fox jumps over the lazy dog."), NULL};
    run(two, &c);
    EXPECT(&c, "The quick brown fox jumps over the lazy dog.");
    /* the block's first delta lost (nothing fed before the gap), a result of
     * the whole message, its blocks joined: only this block's rest is new */
    const char *cite[] = {START("m1"), BSTART(0, "text"), DELTA(0, "The sky is "), BSTOP(0), BSTART(1, "text"),
                          DELTA(1, "blue"), BSTOP(1), BSTART(2, "text"), LOSTD, DELTA(2, "e docs say. Grass is green."),
                          BSTOP(2), MSTOP, CUTA("m1", ", th"), RESULT("The sky is blue, the docs say. Grass is green."), NULL};
    run(cite, &c);
    EXPECT(&c, "The sky is blue, the docs say. | Grass is green.");
    /* a result that is another text is still said (the lost line's answer) */
    const char *other[] = {START("m1"), BSTART(0, "text"), DELTA(0, "Let me look."), BSTOP(0), MSTOP,
                           CUTA("m2", "The answer"), RESULT("The answer is 42."), NULL};
    run(other, &c);
    EXPECT(&c, "Let me look. | The answer is 42.");
#undef CUTA
}

/* A message_start line lost (cut short, or never written) after an earlier
 * message of the turn: the next message's blocks streamed under the old
 * message's id, so its complete assistant line (another id) was taken for a
 * new message and said again whole. After message_stop a block starts a new
 * message whose id is not known yet; the first line naming an id supplies it.
 * CLI order (the line before the stop) and SDK order (after message_stop);
 * the first message of a turn likewise. */
static void test_lost_message_start(void) {
    coll c;
    const char *cut = "{\"type\":\"stream_event\",\"parent_tool_use_id\":null,\"event\":{\"type\":\"message_st";
    const char *cli[] = {START("m1"), BSTART(0, "text"), DELTA(0, "First message."), ASSIST("m1", "First message."),
                         BSTOP(0), MSTOP, cut, BSTART(0, "text"), DELTA(0, "Second message "), DELTA(0, "is here."),
                         ASSIST("m2", "Second message is here."), BSTOP(0), MSTOP, RESULT("Second message is here."), NULL};
    ingest_stats st = run(cli, &c);
    EXPECT(&c, "First message. | Second message is here.");
    CHECK_EQ_INT(st.bad_lines, 1);
    CHECK(strcmp(c.id[1], "m2") == 0);
    const char *sdk[] = {START("m1"), BSTART(0, "text"), DELTA(0, "First message."), BSTOP(0), MSTOP,
                         ASSIST("m1", "First message."), BSTART(0, "text"), DELTA(0, "Second message "),
                         DELTA(0, "is here."), BSTOP(0), MSTOP, ASSIST("m2", "Second message is here."),
                         RESULT("Second message is here."), NULL};
    run(sdk, &c);
    EXPECT(&c, "First message. | Second message is here.");
    /* the turn's first message_start lost, SDK order */
    const char *first[] = {BSTART(0, "text"), DELTA(0, "Only message "), DELTA(0, "here."), BSTOP(0), MSTOP,
                           ASSIST("m1", "Only message here."), RESULT("Only message here."), NULL};
    run(first, &c);
    EXPECT(&c, "Only message here.");
    /* and one block of it lost its deltas: the line still adds the rest */
    const char *rest[] = {START("m1"), BSTART(0, "text"), DELTA(0, "First message."), BSTOP(0), MSTOP,
                          BSTART(0, "text"), DELTA(0, "Second message "), BSTOP(0), MSTOP,
                          ASSIST("m2", "Second message is here."), RESULT("Second message is here."), NULL};
    run(rest, &c);
    EXPECT(&c, "First message. | Second message | is here.");
    /* its message_stop lost too: the block index going back to 0 tells */
    const char *both[] = {START("m1"), BSTART(0, "text"), DELTA(0, "First message."), ASSIST("m1", "First message."),
                          BSTOP(0), BSTART(1, "text"), DELTA(1, "Next block."), ASSIST("m1", "Next block."), BSTOP(1), cut,
                          BSTART(0, "text"), DELTA(0, "Second message "), DELTA(0, "is here."),
                          ASSIST("m2", "Second message is here."), BSTOP(0), MSTOP, RESULT("Second message is here."), NULL};
    run(both, &c);
    EXPECT(&c, "First message. | Next block. | Second message is here.");
}

/* A delta line lost in a message's second text block, while that block was
 * held (a later block waits while it repeats an earlier one of the message):
 * the loss left no gap, the block was fed glued around it ("s two clear
 * problems."), and its complete line after the stop (SDK order) matched no
 * streamed block and was said again whole. The held block keeps the gap too:
 * what came before it is said when the hold ends, the line fills the rest. */
static void test_lost_delta_in_held_block(void) {
    coll c;
    const char *lost2 = "{\"type\":\"stream_event\",\"parent_tool_use_id\":null,\"event\":{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_";
    const char *sdk[] = {START("m1"), BSTART(0, "text"), DELTA(0, "Looking at the parser."), BSTOP(0), BSTART(1, "text"),
                         lost2, DELTA(1, "s two clear problems."), BSTOP(1), MSTOP, ASSIST("m1", "Looking at the parser."),
                         ASSIST("m1", "It has two clear problems."), RESULT("It has two clear problems."), NULL};
    ingest_stats st = run(sdk, &c);
    EXPECT(&c, "Looking at the parser. | It has two clear problems.");
    CHECK_EQ_INT(st.bad_lines, 1);
    /* CLI order, the loss after the block's start was said */
    const char *cli[] = {START("m1"), BSTART(0, "text"), DELTA(0, "Looking at the parser."), ASSIST("m1", "Looking at the parser."),
                         BSTOP(0), BSTART(1, "text"), DELTA(1, "Look"), lost2, DELTA(1, "problems."),
                         ASSIST("m1", "Look, two clear problems."), BSTOP(1), MSTOP, RESULT("x"), NULL};
    run(cli, &c);
    EXPECT(&c, "Looking at the parser. | Look, two clear problems.");
    /* SDK order, the first block lost two delta lines and the next block
     * started before its line came: what came is said (fragments at the
     * gaps, a word break at each), and its line, which holds it, is not
     * said again */
    const char *two[] = {START("m1"), BSTART(0, "text"), LOSTD, DELTA(0, "g at t"), LOSTD, DELTA(0, "ser module now."),
                         BSTOP(0), BSTART(1, "text"), DELTA(1, "It has two."), BSTOP(1), MSTOP,
                         ASSIST("m1", "Looking at the parser module now."), ASSIST("m1", "It has two."), RESULT("It has two."), NULL};
    run(two, &c);
    EXPECT(&c, "g at t ser module now. | It has two.");
    /* a block's start and its first delta lost: the deltas that come are
     * held for its complete line, before the stop (CLI) or after it (SDK) */
    const char *bstart = "{\"type\":\"stream_event\",\"parent_tool_use_id\":null,\"event\":{\"type\":\"content_block_st";
    const char *nostart[] = {START("m1"), bstart, LOSTD, DELTA(0, "g at the parser module now."),
                             ASSIST("m1", "Looking at the parser module now."), BSTOP(0), MSTOP, RESULT("x"), NULL};
    run(nostart, &c);
    EXPECT(&c, "Looking at the parser module now.");
    const char *nostart2[] = {START("m1"), bstart, LOSTD, DELTA(0, "g at the parser module now."), BSTOP(0), MSTOP,
                              ASSIST("m1", "Looking at the parser module now."), RESULT("x"), NULL};
    run(nostart2, &c);
    EXPECT(&c, "Looking at the parser module now.");
    /* SDK order, two blocks of a message each lost a delta line (the first
     * its first one): each late line is its own block's, none said again */
    const char *lost0 = "{\"type\":\"stream_event\",\"parent_tool_use_id\":null,\"event\":{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_";
    const char *both[] = {START("m1"), BSTART(0, "text"), lost0, DELTA(0, "g at the parser module now."), BSTOP(0),
                          BSTART(1, "text"), DELTA(1, "It h"), lost2, DELTA(1, "two clear problems."), BSTOP(1), MSTOP,
                          ASSIST("m1", "Looking at the parser module now."), ASSIST("m1", "It has two clear problems."),
                          RESULT("It has two clear problems."), NULL};
    run(both, &c);
    EXPECT(&c, "g at the parser module now. | It has two clear problems.");
    /* a message's start and its block's start both lost (after message_stop) */
    const char *mstart = "{\"type\":\"stream_event\",\"parent_tool_use_id\":null,\"event\":{\"type\":\"message_st";
    const char *starts[] = {START("m1"), BSTART(0, "text"), DELTA(0, "First one."), BSTOP(0), MSTOP, ASSIST("m1", "First one."),
                            mstart, bstart, DELTA(0, "Second message "), DELTA(0, "is here."), BSTOP(0), MSTOP,
                            ASSIST("m2", "Second message is here."), RESULT("Second message is here."), NULL};
    run(starts, &c);
    EXPECT(&c, "First one. | Second message is here.");
    /* no complete line: what came is said, with a word break at the gap */
    const char *none[] = {START("m1"), BSTART(0, "text"), DELTA(0, "Looking at the parser."), BSTOP(0), BSTART(1, "text"),
                          DELTA(1, "Look"), lost2, DELTA(1, "ing again."), BSTOP(1), MSTOP, NULL};
    run(none, &c);
    EXPECT(&c, "Looking at the parser. | Look ing again.");
}

/* A block's content_block_stop lost (a line cut short) after a delta line
 * lost: message_stop stops the block, so its complete line after it (SDK
 * order) fills the gap; before, the gap was given up at message_stop and
 * the lost words never said. The next block's start stops it likewise, and
 * its line is not said again. Two lost lines with little text after the
 * last (under 8 bytes) and nothing fed before the first: the late line
 * holds every piece that came, in order, so it is the block's and not said
 * again (it was, whole, after the glued pieces); the pieces get a word
 * break each. */
static void test_lost_stop_and_pieces(void) {
    coll c;
    const char *stop = "{\"type\":\"stream_event\",\"parent_tool_use_id\":null,\"event\":{\"type\":\"content_block_sto";
    const char *sdk[] = {START("m1"), BSTART(0, "text"), DELTA(0, "The quick bro"), LOSTD,
                         DELTA(0, "ps over the lazy dog. Then it sleeps."), stop, MSTOP, ASSIST("m1", FOX), RESULT(FOX), NULL};
    ingest_stats st = run(sdk, &c);
    EXPECT(&c, "The quick brown fox jumps over the lazy dog. | Then it sleeps.");
    CHECK_EQ_INT(st.bad_lines, 2);
    const char *next[] = {START("m1"), BSTART(0, "text"), DELTA(0, "First block here."), stop, BSTART(1, "text"),
                          DELTA(1, "Second one."), BSTOP(1), MSTOP, ASSIST("m1", "First block here."),
                          ASSIST("m1", "Second one."), RESULT("Second one."), NULL};
    run(next, &c);
    EXPECT(&c, "First block here. | Second one.");
    const char *pieces[] = {START("m1"), BSTART(0, "text"), LOSTD, DELTA(0, "g at the pars"), LOSTD, DELTA(0, "le."), BSTOP(0),
                            BSTART(1, "text"), DELTA(1, "Next one."), BSTOP(1), MSTOP,
                            ASSIST("m1", "Looking at the parser module."), ASSIST("m1", "Next one."), RESULT("Next one."), NULL};
    run(pieces, &c);
    EXPECT(&c, "g at the pars le. | Next one.");
    /* the first delta line lost and the last deltas never came (no trace),
     * SDK order: the line after the stop holds what came (8 bytes or more),
     * not at its end, and fills the gap; it was said as it came and then
     * whole */
    const char *tail[] = {START("m1"), BSTART(0, "text"), LOSTD, DELTA(0, "t the parser"), BSTOP(0), MSTOP,
                          ASSIST("m1", "Looking at the parser module now."), RESULT("Looking at the parser module now."), NULL};
    run(tail, &c);
    EXPECT(&c, "Looking at the parser module now.");
    /* the last deltas never came (no trace), SDK order: the late line adds
     * the rest; in a turn that lost a line (a tool call's, cut short) the
     * result, that block, is not taken for one it goes on from (its rest
     * was said again) */
    const char *grown[] = {START("m0"), BSTART(0, "tool_use"), BSTOP(0), MSTOP,
                           "{\"type\":\"assistant\",\"message\":{\"id\":\"m0\",\"content\":[{\"type\":\"tool_use\",\"input\":{\"a",
                           START("m1"), BSTART(0, "text"), DELTA(0, "The quick bro"), BSTOP(0), MSTOP, ASSIST("m1", FOX),
                           RESULT(FOX), NULL};
    run(grown, &c);
    EXPECT(&c, "The quick bro | wn fox jumps over the lazy dog. | Then it sleeps.");
}

/* A result that holds only the start of the last message (anthropics/
 * claude-code#78686: the rest of the final answer missing, cut mid-sentence)
 * in a turn that lost a line (its tool call's long line cut short): the
 * result was said, its start a second time, because it does not end at a
 * sentence boundary. A result of 32 normalized bytes or more that starts at
 * a sentence boundary of what was spoken and is found there whole is
 * spoken already; short ones still need both ends ("Done" is said after
 * "Done with it."). */
static void test_result_truncated_start(void) {
    const char *L[] = {
        ASSIST("m1", "Here is the long answer with many words. It goes on and on for a while."),
        "{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"Edit\",\"input\":{\"old",
        RESULT("Here is the long answer with many words. It goes on an"), NULL};
    coll c;
    ingest_stats st = run(L, &c);
    EXPECT(&c, "Here is the long answer with many words. | It goes on and on for a while.");
    CHECK_EQ_INT(st.duplicates, 1);
}

static void test_no_content_placeholder(void) {
    const char *L[] = {ASSIST("m1", "(no content)"), ASSIST("m1", "Real answer here."),
                       ASSIST("m2", "The file had (no content) at all."), RESULT("The file had (no content) at all."), NULL};
    coll c;
    run(L, &c);
    EXPECT(&c, "Real answer here. | The file had (no content) at all.");
    const char *T[] = {"{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"Do it\"}}",
                       "{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"model\":\"claude\",\"content\":[{\"type\":\"text\",\"text\":\"(no content)\"}]}}",
                       "{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"model\":\"claude\",\"content\":[{\"type\":\"text\",\"text\":\"Done.\"}]}}", NULL};
    ingest_params p;
    ingest_default_params(&p);
    p.transcript = 1;
    run_p(&p, T, &c);
    EXPECT(&c, "Done.");
    /* a turn that ends on a tool call, then an empty final message: its
     * result is the placeholder too, and the result fallback (nothing said
     * this turn) read it out ("(no content)", translated into an invented
     * sentence); white space around it is still the placeholder */
    const char *R[] = {"{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"model\":\"claude\",\"content\":[{\"type\":"
                       "\"tool_use\",\"id\":\"t1\",\"name\":\"Bash\",\"input\":{\"command\":\"touch x\"}}]},\"parent_tool_use_id\":null}",
                       "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":[{\"tool_use_id\":\"t1\",\"type\":"
                       "\"tool_result\",\"content\":\"\"}]},\"parent_tool_use_id\":null}",
                       ASSIST("m2", "\\n(no content)"), RESULT("(no content)\\n"),
                       ASSIST("m3", "Next turn."), RESULT("Next turn."), RESULT(" (no content)\\n"), NULL};
    run(R, &c);
    EXPECT(&c, "Next turn.");
    CHECK(ingest_is_placeholder("(no content)", 12));
    CHECK(ingest_is_placeholder("\n\t(no content) \r\n", 17));
    CHECK(!ingest_is_placeholder("(no content) here", 17));
    CHECK(!ingest_is_placeholder("(no content", 11));
    CHECK(!ingest_is_placeholder("   ", 3));
    CHECK(!ingest_is_placeholder(NULL, 0));
}

int main(void) {
    TEST_RUN(test_interrupt_no_error_notice);
    TEST_RUN(test_token_limit_continuation);
    TEST_RUN(test_transcript_turn_boundaries);
    TEST_RUN(test_slow_consumer_no_idle_cut);
    TEST_RUN(test_result_already_spoken);
    TEST_RUN(test_result_whole_sentences);
    TEST_RUN(test_structured_output);
    TEST_RUN(test_big_numbers);
    TEST_RUN(test_identical_blocks_partial);
    TEST_RUN(test_block_changed_in_middle);
    TEST_RUN(test_input_formats);
    TEST_RUN(test_partial_spoken_once);
    TEST_RUN(test_non_partial_and_duplicates);
    TEST_RUN(test_lost_deltas_suffix);
    TEST_RUN(test_citation_blocks);
    TEST_RUN(test_citation_blocks_cjk);
    TEST_RUN(test_missing_result);
    TEST_RUN(test_init_mid_block);
    TEST_RUN(test_result_rules);
    TEST_RUN(test_api_error_message);
    TEST_RUN(test_error_notices_from_cli);
    TEST_RUN(test_aborted);
    TEST_RUN(test_seen_long_session);
    TEST_RUN(test_subagents);
    TEST_RUN(test_subagent_markers_both_modes);
    TEST_RUN(test_many_parallel_subagents);
    TEST_RUN(test_thinking);
    TEST_RUN(test_tools);
    TEST_RUN(test_bad_input);
    TEST_RUN(test_truncated_and_too_long_flags);
    TEST_RUN(test_large_tool_results_fast_path);
    TEST_RUN(test_lone_surrogates);
    TEST_RUN(test_split_surrogate_pair);
    TEST_RUN(test_idle_flush_through_frontend);
    TEST_RUN(test_open_block_ends_when_idle);
    TEST_RUN(test_idle_flush_not_while_consumer_blocks);
    TEST_RUN(test_key_order_and_whitespace);
    TEST_RUN(test_transcript_last_turn);
    TEST_RUN(test_hook_payload);
    TEST_RUN(test_bom);
    TEST_RUN(test_split_line);
    TEST_RUN(test_retried_stream_said_once);
    TEST_RUN(test_lost_delta_line_gap);
    TEST_RUN(test_background_agent_after_result);
    TEST_RUN(test_json_output_array);
    TEST_RUN(test_no_content_placeholder);
    TEST_RUN(test_lost_assistant_line_result);
    TEST_RUN(test_lost_delta_and_line);
    TEST_RUN(test_lost_message_start);
    TEST_RUN(test_lost_delta_in_held_block);
    TEST_RUN(test_lost_stop_and_pieces);
    TEST_RUN(test_result_truncated_start);
    TEST_RUN(test_transcript_synthetic_users);
    return TEST_SUMMARY();
}
