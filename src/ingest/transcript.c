/* transcript.c - speaking a Claude Code transcript file (the JSONL of an
 * interactive session) per turn: the last turn for a Stop hook. Claude Code
 * writes a turn when it ends, so this path speaks per turn, not per sentence. */
#define _POSIX_C_SOURCE 200809L
#include "stts_ingest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

stts_status ingest_transcript_last_turn(ingest_frontend *fe, const char *path, stts_error *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return stts_error_set(err, STTS_ERR_IO, "cannot open transcript '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {   /* read() would say "Is a directory", naming no file */
        close(fd);
        return stts_error_set(err, STTS_ERR_IO, "cannot read transcript '%s': it is a directory; give the "
                              "session's .jsonl file (~/.claude/projects/<project>/<session>.jsonl)", path);
    }
    if (fstat(fd, &sb) == 0 && !S_ISREG(sb.st_mode) && lseek(fd, 0, SEEK_CUR) < 0) {
        /* a pipe (--transcript /dev/stdin, <(...)): read twice below, so
         * copied to a temporary file first ("cannot rewind: Illegal seek") */
        FILE *tf = tmpfile();
        int tfd = tf ? dup(fileno(tf)) : -1;
        if (tf) fclose(tf);   /* unlinked already; the dup keeps it */
        char b[65536];
        ssize_t k = 0;
        while (tfd >= 0 && (k = read(fd, b, sizeof b)) != 0) {
            if (k < 0 && errno == EINTR) continue;
            if (k < 0 || write(tfd, b, (size_t)k) != k) { k = -1; break; }
        }
        int e = errno ? errno : EIO;
        close(fd);
        if (tfd < 0 || k < 0 || lseek(tfd, 0, SEEK_SET) != 0) {
            if (tfd >= 0) close(tfd);
            return stts_error_set(err, STTS_ERR_IO, "cannot read transcript '%s' into a temporary file: %s", path,
                                  strerror(tfd < 0 ? errno : e));
        }
        fd = tfd;
    }
    /* pass 1: where does the last turn start? At the last prompt, or at a
     * later slash command that Claude answered (a reply before the next
     * prompt): the reply before it was said again with the command's */
    ingest_reader *r = NULL;
    stts_status st = ingest_reader_new(fd, 0, &r, err);
    uint64_t last_prompt = 0, command = 0;
    ingest_line ln;
    ingest_result res;
    while (st == STTS_OK) {
        st = ingest_reader_next(r, -1, &ln, &res, err);
        if (st != STTS_OK || res == INGEST_EOF) break;
        switch (ingest_transcript_line_kind(ln.data, ln.len)) {
        case INGEST_TRANSCRIPT_PROMPT: last_prompt = ln.no; command = 0; break;
        case INGEST_TRANSCRIPT_COMMAND: command = ln.no; break;
        case INGEST_TRANSCRIPT_REPLY:
            if (command) last_prompt = command;
            command = 0;
            break;
        default: break;
        }
    }
    ingest_reader_free(r);
    r = NULL;
    if (st == STTS_OK && lseek(fd, 0, SEEK_SET) != 0)
        st = stts_error_set(err, STTS_ERR_IO, "cannot rewind transcript '%s': %s", path, strerror(errno));
    /* pass 2: feed the lines of that turn */
    if (st == STTS_OK) st = ingest_reader_new(fd, 0, &r, err);
    while (st == STTS_OK) {
        st = ingest_reader_next(r, -1, &ln, &res, err);
        if (st != STTS_OK || res == INGEST_EOF) break;
        if (ln.no <= last_prompt) continue;
        st = ingest_frontend_feed(fe, ln.data, ln.len, ln.no, stts_now_ns(), ln.flags, err);
    }
    ingest_reader_free(r);
    close(fd);
    if (st == STTS_OK) ingest_frontend_finish(fe, stts_now_ns());
    return st;
}

/* Read as ingest_reader_next would, but from a byte range: the lines that
 * end before upto, each fed while the frontend is muted. */
stts_status ingest_transcript_record(ingest_frontend *fe, const char *path, uint64_t upto, stts_error *err) {
    enum { RECORD_MAX = 64 << 20 };   /* bytes of history taken in: a long session's last 64 MiB */
    int fd = open(path, O_RDONLY);
    if (fd < 0) return stts_error_set(err, STTS_ERR_IO, "cannot open transcript '%s': %s", path, strerror(errno));
    uint64_t from = upto > RECORD_MAX ? upto - RECORD_MAX : 0;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    stts_status st = buf ? STTS_OK : stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    int skip = from > 0;   /* mid-line: the first line is not whole */
    uint64_t at = from, line_no = 0;
    ingest_frontend_mute(fe, 1);
    while (st == STTS_OK && at < upto) {
        if (len == cap) {
            /* a line longer than the buffer: grown up to the range's size */
            char *g = cap < RECORD_MAX ? realloc(buf, cap * 2) : NULL;
            if (!g) { skip = 1; len = 0; continue; }   /* dropped; the rest of it skipped */
            buf = g;
            cap *= 2;
        }
        size_t want = cap - len;
        if ((uint64_t)want > upto - at) want = (size_t)(upto - at);
        ssize_t k = pread(fd, buf + len, want, (off_t)at);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;   /* shorter than upto now (truncated meanwhile): what there is */
        at += (uint64_t)k;
        len += (size_t)k;
        size_t start = 0;
        for (char *nl; (nl = memchr(buf + start, '\n', len - start)) != NULL;) {
            size_t e = (size_t)(nl - buf);
            if (!skip) st = ingest_frontend_feed(fe, buf + start, e - start, ++line_no, stts_now_ns(), 0, err);
            skip = 0;
            start = e + 1;
            if (st != STTS_OK) break;
        }
        memmove(buf, buf + start, len - start);
        len -= start;
    }
    ingest_frontend_finish(fe, stts_now_ns());   /* muted: what it held is dropped, not said */
    ingest_frontend_mute(fe, 0);
    free(buf);
    close(fd);
    return st;
}
