/* transcript.c - speaking a Claude Code transcript file (the JSONL of an
 * interactive session) per turn: the last turn for a Stop hook. Claude Code
 * writes a turn when it ends, so this path speaks per turn, not per sentence. */
#define _POSIX_C_SOURCE 200809L
#include "stts_ingest.h"

#include <errno.h>
#include <fcntl.h>
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
    /* pass 1: where does the last turn start? */
    ingest_reader *r = NULL;
    stts_status st = ingest_reader_new(fd, 0, &r, err);
    uint64_t last_prompt = 0;
    ingest_line ln;
    ingest_result res;
    while (st == STTS_OK) {
        st = ingest_reader_next(r, -1, &ln, &res, err);
        if (st != STTS_OK || res == INGEST_EOF) break;
        if (ingest_transcript_is_prompt(ln.data, ln.len)) last_prompt = ln.no;
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
