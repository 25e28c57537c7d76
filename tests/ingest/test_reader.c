/* test_reader.c - the line reader: lines split across reads at random
 * places, CRLF, a truncated last line, timeouts, over-long lines, a line over
 * 64 MiB through the whole front end (memory bounded by the line), and
 * following a file across truncation and rotation. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stts_ingest.h"
#include "chunked_writer.h"
#include "test.h"

static void test_random_chunks(void) {
    static char data[200000];
    size_t len = 0;
    int nlines = 0;
    static size_t lens[2000];
    for (int i = 0; i < 1000; i++) {
        size_t l = (size_t)((i * 7919) % 180);
        for (size_t k = 0; k < l; k++) data[len + k] = (char)('a' + (i + k) % 26);
        len += l;
        lens[nlines++] = l;
        if (i % 3 == 0) data[len++] = '\r';
        data[len++] = '\n';
    }
    memcpy(data + len, "tail without newline", 20);
    len += 20;
    lens[nlines++] = 20;
    for (unsigned seed = 1; seed <= 5; seed++) {
        int fds[2];
        CHECK(pipe(fds) == 0);
        writer_arg w = {fds[1], data, len, seed, 300};
        pthread_t th;
        pthread_create(&th, NULL, chunked_writer, &w);
        ingest_reader *r;
        CHECK(ingest_reader_new(fds[0], 0, &r, NULL) == STTS_OK);
        int got = 0, bad = 0;
        for (;;) {
            ingest_line ln;
            ingest_result res;
            CHECK(ingest_reader_next(r, seed % 2 ? 1000 : -1, &ln, &res, NULL) == STTS_OK);
            if (res == INGEST_EOF) break;
            if (res == INGEST_TIMEOUT) continue;
            if (got < nlines && (ln.len != lens[got] || ln.no != (uint64_t)got + 1)) bad++;
            if (got == nlines - 1) {
                CHECK(ln.flags == INGEST_LINE_TRUNCATED);
                CHECK(memcmp(ln.data, "tail without newline", 20) == 0);
            } else {
                CHECK(ln.flags == 0);
            }
            got++;
        }
        CHECK_EQ_INT(got, nlines);
        CHECK_EQ_INT(bad, 0);
        pthread_join(th, NULL);
        ingest_reader_free(r);
        close(fds[0]);
    }
}

static void test_timeout(void) {
    int fds[2];
    CHECK(pipe(fds) == 0);
    ingest_reader *r;
    CHECK(ingest_reader_new(fds[0], 0, &r, NULL) == STTS_OK);
    ingest_line ln;
    ingest_result res;
    uint64_t t0 = stts_now_ns();
    CHECK(ingest_reader_next(r, 40, &ln, &res, NULL) == STTS_OK);
    uint64_t dt = stts_now_ns() - t0;
    CHECK(res == INGEST_TIMEOUT);
    CHECK_MSG(dt >= 35000000ull, "returned after %llu ns", (unsigned long long)dt);
    CHECK(write(fds[1], "part", 4) == 4);
    CHECK(ingest_reader_next(r, 20, &ln, &res, NULL) == STTS_OK);
    CHECK(res == INGEST_TIMEOUT);   /* half a line is not a line */
    CHECK(write(fds[1], "ial\n", 4) == 4);
    CHECK(ingest_reader_next(r, 1000, &ln, &res, NULL) == STTS_OK);
    CHECK(res == INGEST_GOT_LINE && ln.len == 7 && memcmp(ln.data, "partial", 7) == 0);
    close(fds[1]);
    CHECK(ingest_reader_next(r, 1000, &ln, &res, NULL) == STTS_OK);
    CHECK(res == INGEST_EOF);
    ingest_reader_free(r);
    close(fds[0]);
}

/* ingest_reader_unread: the line just returned comes again (same bytes,
 * same number), once; a final unterminated line too; not a too-long one;
 * nothing before the first line or after EOF. (The pipe mode replays the
 * line the daemon did not take; it was lost.) */
static void test_unread(void) {
    char path[] = "/tmp/stts_reader_XXXXXX";
    int fd = mkstemp(path);
    static const char text[] = "first\r\nsecond\nlast";
    CHECK(write(fd, text, sizeof text - 1) == (ssize_t)sizeof text - 1);
    lseek(fd, 0, SEEK_SET);
    ingest_reader *r;
    CHECK(ingest_reader_new(fd, 0, &r, NULL) == STTS_OK);
    ingest_line ln;
    ingest_result res;
    CHECK(ingest_reader_unread(r) == -1);   /* nothing returned yet */
    CHECK(ingest_reader_next(r, -1, &ln, &res, NULL) == STTS_OK);
    CHECK(res == INGEST_GOT_LINE && ln.no == 1 && ln.len == 5 && !memcmp(ln.data, "first", 5));
    CHECK(ingest_reader_unread(r) == 0);
    CHECK(ingest_reader_unread(r) == -1);   /* once */
    CHECK(ingest_reader_next(r, -1, &ln, &res, NULL) == STTS_OK);
    CHECK(res == INGEST_GOT_LINE && ln.no == 1 && ln.len == 5 && !memcmp(ln.data, "first", 5));
    CHECK(ingest_reader_next(r, -1, &ln, &res, NULL) == STTS_OK);
    CHECK(res == INGEST_GOT_LINE && ln.no == 2 && ln.len == 6 && !memcmp(ln.data, "second", 6));
    CHECK(ingest_reader_next(r, -1, &ln, &res, NULL) == STTS_OK);
    CHECK(res == INGEST_GOT_LINE && ln.no == 3 && ln.len == 4 && ln.flags == INGEST_LINE_TRUNCATED);
    CHECK(ingest_reader_unread(r) == 0);
    CHECK(ingest_reader_next(r, -1, &ln, &res, NULL) == STTS_OK);
    CHECK(res == INGEST_GOT_LINE && ln.no == 3 && ln.len == 4 && !memcmp(ln.data, "last", 4) &&
          ln.flags == INGEST_LINE_TRUNCATED);
    CHECK(ingest_reader_next(r, -1, &ln, &res, NULL) == STTS_OK);
    CHECK(res == INGEST_EOF);
    CHECK(ingest_reader_unread(r) == -1);   /* EOF returned no line */
    ingest_reader_free(r);
    close(fd);
    unlink(path);
    /* a too-long line's bytes are gone: it cannot come back */
    char path2[] = "/tmp/stts_reader_XXXXXX";
    fd = mkstemp(path2);
    static char big[300000]; /* past the first read: a line found whole in one read is returned whole */
    memset(big, 'x', sizeof big);
    CHECK(write(fd, big, sizeof big) == (ssize_t)sizeof big);
    CHECK(write(fd, "\nok\n", 4) == 4);
    lseek(fd, 0, SEEK_SET);
    CHECK(ingest_reader_new(fd, 1024, &r, NULL) == STTS_OK);
    CHECK(ingest_reader_next(r, -1, &ln, &res, NULL) == STTS_OK);
    CHECK(res == INGEST_GOT_LINE && ln.flags == INGEST_LINE_TOO_LONG);
    CHECK(ingest_reader_unread(r) == -1);
    CHECK(ingest_reader_next(r, -1, &ln, &res, NULL) == STTS_OK);
    CHECK(res == INGEST_GOT_LINE && ln.len == 2 && !memcmp(ln.data, "ok", 2));
    ingest_reader_free(r);
    close(fd);
    unlink(path2);
}

static void test_too_long(void) {
    char path[] = "/tmp/stts_reader_XXXXXX";
    int fd = mkstemp(path);
    static char big[300000];
    memset(big, 'x', sizeof big);
    CHECK(write(fd, big, sizeof big) == (ssize_t)sizeof big);
    CHECK(write(fd, "\nok\n", 4) == 4);
    CHECK(write(fd, big, 5000) == 5000);   /* too long and unterminated */
    lseek(fd, 0, SEEK_SET);
    ingest_reader *r;
    CHECK(ingest_reader_new(fd, 1024, &r, NULL) == STTS_OK);
    ingest_line ln;
    ingest_result res;
    CHECK(ingest_reader_next(r, -1, &ln, &res, NULL) == STTS_OK);
    CHECK(res == INGEST_GOT_LINE && ln.no == 1 && ln.len == 0 && ln.flags == INGEST_LINE_TOO_LONG);
    CHECK(ingest_reader_buffer_size(r) <= 256 * 1024);   /* did not keep the long line */
    CHECK(ingest_reader_next(r, -1, &ln, &res, NULL) == STTS_OK);
    CHECK(res == INGEST_GOT_LINE && ln.no == 2 && ln.len == 2 && ln.flags == 0);
    CHECK(ingest_reader_next(r, -1, &ln, &res, NULL) == STTS_OK);
    CHECK(res == INGEST_GOT_LINE && ln.no == 3 && ln.len == 0 &&
          ln.flags == (INGEST_LINE_TOO_LONG | INGEST_LINE_TRUNCATED));
    CHECK(ingest_reader_next(r, -1, &ln, &res, NULL) == STTS_OK);
    CHECK(res == INGEST_EOF);
    ingest_reader_free(r);
    close(fd);
    unlink(path);
    CHECK(ingest_reader_new(-1, 0, &r, NULL) == STTS_ERR_INVALID_ARG);
}

typedef struct {
    char text[4][128];
    int n, warnings;
} hcoll;
static void hcb(void *u, const ingest_sentence *s) {
    hcoll *c = u;
    if (c->n < 4) snprintf(c->text[c->n], sizeof c->text[0], "%s", s->text);
    c->n++;
}
static void hwarn(void *u, uint64_t line, const char *msg) {
    (void)line;
    fprintf(stderr, "warning: %s\n", msg);
    ((hcoll *)u)->warnings++;
}

/* A tool result of 65 MiB on one line, between two spoken lines. */
static void test_huge_line(void) {
    char path[] = "/tmp/stts_huge_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w+b");
    const size_t payload = ((size_t)65 << 20) + 12345;
    fputs("{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"content\":[{\"type\":\"text\",\"text\":\"Before the big one.\"}]}}\n", f);
    fputs("{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t\",\"content\":\"", f);
    static char chunk[1 << 16];
    for (size_t i = 0; i < sizeof chunk; i++) chunk[i] = (char)('a' + i % 26);
    for (size_t left = payload; left;) {
        size_t k = left < sizeof chunk ? left : sizeof chunk;
        fwrite(chunk, 1, k, f);
        left -= k;
    }
    fputs("\"}]}}\n", f);
    fputs("{\"type\":\"assistant\",\"message\":{\"id\":\"m2\",\"content\":[{\"type\":\"text\",\"text\":\"After the big one.\"}]}}\n", f);
    fflush(f);
    lseek(fd, 0, SEEK_SET);
    hcoll c = {0};
    ingest_frontend *fe;
    CHECK(ingest_frontend_new(NULL, hcb, hwarn, &c, &fe, NULL) == STTS_OK);
    ingest_reader *r;
    CHECK(ingest_reader_new(fd, 0, &r, NULL) == STTS_OK);
    size_t longest = 0;
    for (;;) {
        ingest_line ln;
        ingest_result res;
        CHECK(ingest_reader_next(r, -1, &ln, &res, NULL) == STTS_OK);
        if (res != INGEST_GOT_LINE) break;
        if (ln.len > longest) longest = ln.len;
        CHECK(ingest_frontend_feed(fe, ln.data, ln.len, ln.no, stts_now_ns(), ln.flags, NULL) == STTS_OK);
    }
    ingest_frontend_finish(fe, stts_now_ns());
    CHECK(longest > payload);
    CHECK_MSG(ingest_reader_buffer_size(r) <= 2 * longest + (256 << 10), "buffer %zu for a %zu-byte line",
              ingest_reader_buffer_size(r), longest);
    CHECK_EQ_INT(c.n, 2);
    CHECK_EQ_STR(c.text[0], "Before the big one.");
    CHECK_EQ_STR(c.text[1], "After the big one.");
    CHECK_EQ_INT(c.warnings, 0);
    ingest_stats st;
    ingest_frontend_stats(fe, &st);
    CHECK_EQ_INT(st.lines, 3);
    CHECK_EQ_INT(st.bad_lines, 0);
    ingest_frontend_free(fe);
    ingest_reader_free(r);
    fclose(f);
    unlink(path);
}

static void append(const char *path, const char *s, const char *mode) {
    FILE *f = fopen(path, mode);
    CHECK(f != NULL);
    if (!f) return;
    fputs(s, f);
    fclose(f);
}

static int next_line(ingest_reader *r, char *out, size_t cap) {
    for (int tries = 0; tries < 40; tries++) {
        ingest_line ln;
        ingest_result res;
        if (ingest_reader_next(r, 50, &ln, &res, NULL) != STTS_OK) return 0;
        if (res == INGEST_GOT_LINE) {
            snprintf(out, cap, "%.*s", (int)ln.len, ln.data);
            return 1;
        }
    }
    return 0;
}

static void test_follow(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/stts_follow_%d.jsonl", (int)getpid());
    append(path, "old line, not spoken\n", "w");
    ingest_reader *r;
    CHECK(ingest_reader_follow(path, 1, 0, &r, NULL) == STTS_OK);
    char buf[128];
    ingest_line ln;
    ingest_result res;
    CHECK(ingest_reader_next(r, 30, &ln, &res, NULL) == STTS_OK);
    CHECK(res == INGEST_TIMEOUT);   /* no EOF while following */
    append(path, "first new line\nsecond ", "a");
    CHECK(next_line(r, buf, sizeof buf) && strcmp(buf, "first new line") == 0);
    CHECK(ingest_reader_next(r, 30, &ln, &res, NULL) == STTS_OK && res == INGEST_TIMEOUT);
    append(path, "half\n", "a");
    CHECK(next_line(r, buf, sizeof buf) && strcmp(buf, "second half") == 0);
    /* truncated and rewritten shorter */
    append(path, "after truncation\n", "w");
    CHECK(next_line(r, buf, sizeof buf) && strcmp(buf, "after truncation") == 0);
    CHECK_EQ_INT(ingest_reader_rewinds(r), 1);
    /* rotated: a new file renamed over the old name */
    char tmp[80];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    append(tmp, "from the rotated file, which is long enough to be bigger\n", "w");
    CHECK(rename(tmp, path) == 0);
    CHECK(next_line(r, buf, sizeof buf) && strcmp(buf, "from the rotated file, which is long enough to be bigger") == 0);
    CHECK_EQ_INT(ingest_reader_rewinds(r), 2);
    /* rewritten in place, longer, between two looks (truncated and written
     * again within one poll): the size never went below what was read, so
     * only the bytes before it tell; it was read on from the old offset,
     * mid-line */
    CHECK(ingest_reader_next(r, 30, &ln, &res, NULL) == STTS_OK && res == INGEST_TIMEOUT);
    append(path, "a rewritten first line that is longer than the old file was\nits second line\n", "w");
    CHECK(next_line(r, buf, sizeof buf) && strcmp(buf, "a rewritten first line that is longer than the old file was") == 0);
    CHECK(next_line(r, buf, sizeof buf) && strcmp(buf, "its second line") == 0);
    CHECK_EQ_INT(ingest_reader_rewinds(r), 3);
    /* and plain appends after it read on (the bytes before them unchanged) */
    CHECK(ingest_reader_next(r, 30, &ln, &res, NULL) == STTS_OK && res == INGEST_TIMEOUT);
    append(path, "appended\n", "a");
    CHECK(next_line(r, buf, sizeof buf) && strcmp(buf, "appended") == 0);
    CHECK_EQ_INT(ingest_reader_rewinds(r), 3);
    /* a last line that never gets its '\n': a whole JSON object is taken
     * once it has sat for a second (it was never said); a half-written one
     * never is, and the '\n' that may still come makes only an empty line */
    append(path, "{\"type\":\"x\",\"t\":\"a } \\\" b\"}", "a");
    uint64_t t0 = stts_now_ns();
    int got = 0;
    for (int tries = 0; tries < 200 && !got; tries++)
        got = ingest_reader_next(r, 50, &ln, &res, NULL) == STTS_OK && res == INGEST_GOT_LINE;
    CHECK(got && ln.len == strlen("{\"type\":\"x\",\"t\":\"a } \\\" b\"}") &&
          memcmp(ln.data, "{\"type\":\"x\",", 12) == 0);
    CHECK(stts_now_ns() - t0 >= 900000000ull);   /* not before the line sat */
    append(path, "\n{\"type\":\"y\",\"t\":\"half", "a");
    CHECK(next_line(r, buf, sizeof buf) && strcmp(buf, "") == 0);
    t0 = stts_now_ns();
    got = 0;
    while (!got && stts_now_ns() - t0 < 1500000000ull)
        got = ingest_reader_next(r, 50, &ln, &res, NULL) == STTS_OK && res == INGEST_GOT_LINE;
    CHECK(!got);   /* the half-written line waits */
    append(path, " done\"}\n", "a");
    CHECK(next_line(r, buf, sizeof buf) && strcmp(buf, "{\"type\":\"y\",\"t\":\"half done\"}") == 0);
    ingest_reader_free(r);
    unlink(path);
    stts_error err;
    CHECK(ingest_reader_follow("/nonexistent/dir/t.jsonl", 1, 0, &r, &err) == STTS_ERR_IO);
    CHECK(strstr(err.msg, "/nonexistent/dir/t.jsonl") != NULL);
}

int main(void) {
    TEST_RUN(test_random_chunks);
    TEST_RUN(test_timeout);
    TEST_RUN(test_unread);
    TEST_RUN(test_too_long);
    TEST_RUN(test_huge_line);
    TEST_RUN(test_follow);
    return TEST_SUMMARY();
}
