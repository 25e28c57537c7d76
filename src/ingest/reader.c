/* reader.c - complete lines from a file descriptor. One buffer holds the
 * unfinished line; each byte is scanned for '\n' once (memchr from where the
 * last scan stopped) and the buffer doubles when a line outgrows it, so a
 * line of n bytes costs O(n) time and at most about 2n memory. */
#define _POSIX_C_SOURCE 200809L
#include "stts_ingest.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK ((size_t)64 << 10)

struct ingest_reader {
    int fd;
    int own_fd;
    int follow;
    char *path;
    dev_t dev;
    ino_t ino;
    off_t pos;              /* bytes read from the followed file */
    /* The bytes just before pos when the followed file last ran dry: when
     * it grows again they must still be there, or it was rewritten in place
     * (truncated and written longer within one poll: reading on from pos
     * started mid-line, "plain text, not stream-json", and lost the turn). */
    char tail[32];
    size_t tail_len;
    off_t tail_pos;
    int dry;
    char *buf;
    size_t cap, start, end, scan;   /* unread bytes are [start,end); no '\n' in [start,scan) */
    size_t max_line;
    int eof, skipping;
    uint64_t line_no, rewinds;
    /* The line last returned, for ingest_reader_unread: its bytes stay in
     * buf until the next call; last_end is the end of the unread bytes
     * before a final unterminated line was returned (0: a '\n' line). */
    int can_unread;
    size_t last_start, last_end;
    /* Following: when the file last grew, and whether the unfinished line
     * was judged since (a whole JSON object with no '\n' after it yet). */
    uint64_t grew_ms;
    int judged;
};

/* A followed file's last line that stays without its '\n' for this long is
 * taken as it is when it is a whole JSON object (whitespace around it); a
 * writer that ends its lines makes no such line, and a half-written line
 * is no whole object, so nothing is taken early. */
#define FOLLOW_WHOLE_LINE_MS 1000

/* s[0,n) is one JSON object, braces balanced outside strings, nothing but
 * white space after its closing brace. Not a validation (the parser does
 * that): it tells a finished line from one still being written. */
static int whole_json_object(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) i++;
    if (i >= n || s[i] != '{') return 0;
    int depth = 0, in_str = 0;
    for (; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
            continue;
        }
        if (c == '"') in_str = 1;
        else if (c == '{' || c == '[') depth++;
        else if ((c == '}' || c == ']') && --depth == 0) break;
    }
    if (i >= n) return 0;
    for (i++; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

static stts_status alloc_reader(size_t max_line, ingest_reader **out, stts_error *err) {
    ingest_reader *r = calloc(1, sizeof *r);
    if (!r) return stts_error_set(err, STTS_ERR_NOMEM, "ingest_reader: out of memory");
    r->cap = CHUNK;
    r->buf = malloc(r->cap);
    if (!r->buf) {
        free(r);
        return stts_error_set(err, STTS_ERR_NOMEM, "ingest_reader: out of memory");
    }
    r->max_line = max_line ? max_line : INGEST_DEFAULT_MAX_LINE;
    r->fd = -1;
    *out = r;
    return STTS_OK;
}

stts_status ingest_reader_new(int fd, size_t max_line, ingest_reader **out, stts_error *err) {
    if (!out || fd < 0) return stts_error_set(err, STTS_ERR_INVALID_ARG, "ingest_reader_new: bad fd %d", fd);
    stts_status st = alloc_reader(max_line, out, err);
    if (st == STTS_OK) (*out)->fd = fd;
    return st;
}

stts_status ingest_reader_follow(const char *path, int from_end, size_t max_line, ingest_reader **out,
                                 stts_error *err) {
    if (!out || !path) return stts_error_set(err, STTS_ERR_INVALID_ARG, "ingest_reader_follow: no path");
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return stts_error_set(err, STTS_ERR_IO, "cannot open '%s' to follow: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return stts_error_set(err, STTS_ERR_IO, "cannot stat '%s': %s", path, strerror(errno));
    }
    stts_status st = alloc_reader(max_line, out, err);
    if (st != STTS_OK) { close(fd); return st; }
    ingest_reader *r = *out;
    r->path = strdup(path);
    if (!r->path) { close(fd); ingest_reader_free(r); *out = NULL; return stts_error_set(err, STTS_ERR_NOMEM, "out of memory"); }
    r->fd = fd;
    r->own_fd = 1;
    r->follow = 1;
    r->dev = sb.st_dev;
    r->ino = sb.st_ino;
    if (from_end) {
        /* Only what is written from now on. A line being written as we
         * start (its '\n' not there yet) is read from its start: its end
         * alone was read as a line of plain text ("not Claude Code
         * stream-json") and the reply in it lost. */
        r->pos = lseek(fd, 0, SEEK_END);
        if (r->pos < 0) r->pos = 0;
        off_t at = r->pos;
        char b[4096];
        while (at > 0 && r->pos - at < (off_t)r->max_line) {
            size_t n = at < (off_t)sizeof b ? (size_t)at : sizeof b;
            if (pread(fd, b, n, at - (off_t)n) != (ssize_t)n) { at = r->pos; break; }
            size_t k = n;
            while (k > 0 && b[k - 1] != '\n') k--;
            if (k > 0) { at = at - (off_t)n + (off_t)k; break; }
            at -= (off_t)n;
        }
        if (r->pos - at >= (off_t)r->max_line) at = r->pos;   /* a line that long is skipped anyway */
        if (at != r->pos && lseek(fd, at, SEEK_SET) == at) r->pos = at;
    }
    return STTS_OK;
}

uint64_t ingest_reader_follow_offset(const ingest_reader *r) { return r && r->pos > 0 ? (uint64_t)r->pos : 0; }

void ingest_reader_free(ingest_reader *r) {
    if (!r) return;
    if (r->own_fd && r->fd >= 0) close(r->fd);
    free(r->path);
    free(r->buf);
    free(r);
}

size_t ingest_reader_buffer_size(const ingest_reader *r) { return r->cap; }
uint64_t ingest_reader_rewinds(const ingest_reader *r) { return r->rewinds; }

static uint64_t now_ms(void) { return stts_now_ns() / 1000000ull; }

/* A followed file: was it truncated or replaced since we last looked? */
static int check_rotation(ingest_reader *r) {
    struct stat sb;
    if (stat(r->path, &sb) != 0) return 0;   /* gone for now (mid-rotation): keep the old fd */
    if (sb.st_dev != r->dev || sb.st_ino != r->ino) {
        int fd = open(r->path, O_RDONLY);
        if (fd < 0) return 0;
        close(r->fd);
        r->fd = fd;
        r->dev = sb.st_dev;
        r->ino = sb.st_ino;
    } else if (sb.st_size >= r->pos) {
        return 0;
    } else if (lseek(r->fd, 0, SEEK_SET) != 0) {
        return 0;
    }
    r->pos = 0;
    r->start = r->end = r->scan = 0;   /* a partial line of the old file is gone */
    r->skipping = 0;
    r->dry = 0;
    r->rewinds++;
    return 1;
}

/* The followed file ran dry at pos: its last bytes, to check when it grows. */
static void note_tail(ingest_reader *r) {
    if (r->dry) return;
    r->dry = 1;
    r->tail_pos = r->pos;
    r->tail_len = r->pos < (off_t)sizeof r->tail ? (size_t)r->pos : sizeof r->tail;
    if (r->tail_len && pread(r->fd, r->tail, r->tail_len, r->tail_pos - (off_t)r->tail_len) != (ssize_t)r->tail_len)
        r->tail_len = 0;
}

/* It grew: are the bytes before the growth those it had? If not it was
 * rewritten, and is read again from its start (1). */
static int rewritten(ingest_reader *r) {
    r->dry = 0;
    char now[sizeof r->tail];
    if (!r->tail_len || (pread(r->fd, now, r->tail_len, r->tail_pos - (off_t)r->tail_len) == (ssize_t)r->tail_len &&
                         memcmp(now, r->tail, r->tail_len) == 0))
        return 0;
    if (lseek(r->fd, 0, SEEK_SET) != 0) return 0;
    r->pos = 0;
    r->start = r->end = r->scan = 0;
    r->skipping = 0;
    r->rewinds++;
    return 1;
}

int ingest_reader_unread(ingest_reader *r) {
    if (!r || !r->can_unread) return -1;
    r->can_unread = 0;
    r->line_no--;
    if (r->last_end) { /* the final line without '\n': its bytes again, then EOF again */
        r->start = r->last_start;
        r->end = r->scan = r->last_end;
        r->judged = 0;   /* following: taken again at the next call */
        return 0;
    }
    r->start = r->scan = r->last_start; /* the '\n' after it is found again */
    return 0;
}

stts_status ingest_reader_next(ingest_reader *r, int timeout_ms, ingest_line *line, ingest_result *res,
                               stts_error *err) {
    uint64_t deadline = timeout_ms >= 0 ? now_ms() + (uint64_t)timeout_ms : 0;
    r->can_unread = 0;
    for (;;) {
        char *nl = r->scan < r->end ? memchr(r->buf + r->scan, '\n', r->end - r->scan) : NULL;
        if (nl) {
            size_t len = (size_t)(nl - (r->buf + r->start));
            line->data = r->buf + r->start;
            line->no = ++r->line_no;
            line->flags = 0;
            if (r->skipping) {   /* the end of a line that was too long */
                r->skipping = 0;
                line->flags = INGEST_LINE_TOO_LONG;
                len = 0;
            } else if (len > 0 && line->data[len - 1] == '\r') {
                len--;
            }
            line->len = len;
            r->can_unread = !(line->flags & INGEST_LINE_TOO_LONG);
            r->last_start = r->start;
            r->last_end = 0;
            r->start = r->scan = (size_t)(nl - r->buf) + 1;
            *res = INGEST_GOT_LINE;
            return STTS_OK;
        }
        r->scan = r->end;
        if (r->skipping || r->end - r->start > r->max_line) {   /* drop it, remember to report it */
            r->skipping = 1;
            r->start = r->end = r->scan = 0;
        }
        if (r->eof) {
            if (r->end > r->start || r->skipping) {
                line->data = r->buf + r->start;
                line->len = r->skipping ? 0 : r->end - r->start;
                if (line->len > 0 && line->data[line->len - 1] == '\r') line->len--;
                line->no = ++r->line_no;
                line->flags = INGEST_LINE_TRUNCATED | (r->skipping ? INGEST_LINE_TOO_LONG : 0);
                r->can_unread = !r->skipping;
                r->last_start = r->start;
                r->last_end = r->end;
                r->start = r->end = r->scan = 0;
                r->skipping = 0;
                *res = INGEST_GOT_LINE;
                return STTS_OK;
            }
            *res = INGEST_EOF;
            return STTS_OK;
        }
        /* make room: slide the partial line to the front, or grow */
        if (r->start > 0 && (r->start >= r->cap / 2 || r->end == r->cap)) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->scan -= r->start;
            r->start = 0;
        }
        if (r->cap - r->end < CHUNK / 2) {
            size_t ncap = r->cap * 2;
            char *nb = realloc(r->buf, ncap);
            if (!nb) return stts_error_set(err, STTS_ERR_NOMEM, "ingest_reader: out of memory for a %zu-byte line", r->end - r->start);
            r->buf = nb;
            r->cap = ncap;
        }
        if (!r->follow && timeout_ms >= 0) {
            uint64_t t = now_ms();
            int wait = t >= deadline ? 0 : (int)(deadline - t);
            struct pollfd pfd = {r->fd, POLLIN, 0};
            int pr = poll(&pfd, 1, wait);
            if (pr < 0 && errno != EINTR)
                return stts_error_set(err, STTS_ERR_IO, "cannot wait for input: %s", strerror(errno));
            if (pr <= 0) { *res = INGEST_TIMEOUT; return STTS_OK; }
        }
        size_t want = r->cap - r->end;
        if (r->skipping && want > CHUNK) want = CHUNK;
        ssize_t got = read(r->fd, r->buf + r->end, want);
        if (got < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) { *res = INGEST_TIMEOUT; return STTS_OK; }
            return stts_error_set(err, STTS_ERR_IO, "cannot read input: %s", strerror(errno));
        }
        if (got == 0) {
            if (!r->follow) { r->eof = 1; continue; }
            if (check_rotation(r)) continue;   /* read the new content at once */
            note_tail(r);
            uint64_t t = now_ms();
            if (r->end > r->start && !r->skipping && !r->judged && t - r->grew_ms >= FOLLOW_WHOLE_LINE_MS) {
                r->judged = 1;
                if (whole_json_object(r->buf + r->start, r->end - r->start)) {
                    /* the last line, never ended: said, as at the end of a file */
                    line->data = r->buf + r->start;
                    line->len = r->end - r->start;
                    line->no = ++r->line_no;
                    line->flags = 0;
                    r->can_unread = 1;
                    r->last_start = r->start;
                    r->last_end = r->end;
                    r->start = r->end = r->scan = 0;
                    *res = INGEST_GOT_LINE;
                    return STTS_OK;
                }
            }
            if (timeout_ms >= 0 && t >= deadline) { *res = INGEST_TIMEOUT; return STTS_OK; }
            uint64_t nap = timeout_ms < 0 ? 100 : deadline - t;
            if (nap > 100) nap = 100;
            struct timespec ts = {0, (long)nap * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        if (r->follow && r->dry && r->tail_pos == r->pos && rewritten(r)) continue;   /* the new bytes: read again */
        r->end += (size_t)got;
        r->pos += got;
        r->grew_ms = now_ms();
        r->judged = 0;
    }
}
