/* stts_ingest.h - the ingest stage: reading Claude Code's output line by line
 * and turning it into a stream of speakable sentences (the "front end" =
 * ingest + the text stage's cleaning and segmentation).
 *
 *   ingest_reader    complete lines from a file descriptor (any length, memory
 *                    bounded by the longest line), with a wait-with-timeout so
 *                    the caller can run the idle timer; can follow a growing
 *                    file across truncation and rotation.
 *   ingest_frontend  one line at a time (stream-json or transcript JSONL) in,
 *                    sentences out through a callback, each with its message
 *                    id, sequence number, kind and timestamps.
 *
 * Which text is spoken (once), what is announced, and why: docs/FRONTEND.md.
 *
 * Thread safety: a reader or a front end is used by one thread at a time; use
 * one per thread. Callbacks run on the calling thread inside feed/tick/finish.
 * Library code never prints: warnings go to the warn callback. */
#ifndef STTS_INGEST_H
#define STTS_INGEST_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "stts_common.h"
#include "stts_text.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- line reader ---------------------------------------------------------- */
typedef struct ingest_reader ingest_reader;

enum {
    INGEST_LINE_TRUNCATED = 1,  /* the input ended without a final '\n' */
    INGEST_LINE_TOO_LONG = 2    /* longer than max_line: its bytes were dropped (len 0) */
};

typedef struct {
    const char *data;   /* the line without '\n' or "\r\n"; valid until the next call */
    size_t len;
    uint64_t no;        /* 1-based line number */
    unsigned flags;     /* INGEST_LINE_* */
} ingest_line;

typedef enum { INGEST_GOT_LINE, INGEST_TIMEOUT, INGEST_EOF } ingest_result;

#define INGEST_DEFAULT_MAX_LINE ((size_t)256 << 20)   /* 256 MiB */

/* Reads from fd (not closed by the reader). max_line 0 = the default. */
stts_status ingest_reader_new(int fd, size_t max_line, ingest_reader **out, stts_error *err);
/* Follows a file that grows (tail -F): starts at its end when from_end, else
 * at its start; never reports EOF; after truncation it reads again from the
 * start, after rotation (a new file at path) it opens the new file. */
stts_status ingest_reader_follow(const char *path, int from_end, size_t max_line,
                                 ingest_reader **out, stts_error *err);
void ingest_reader_free(ingest_reader *r);
/* Where in the followed file the next line is read from (its start, for
 * ingest_reader_follow(from_end): the bytes before it came before us). */
uint64_t ingest_reader_follow_offset(const ingest_reader *r);
/* Waits up to timeout_ms (<0: forever) for the next complete line.
 * INGEST_GOT_LINE fills *line; INGEST_TIMEOUT: nothing yet; INGEST_EOF: end.
 * A last line without '\n' is returned once with INGEST_LINE_TRUNCATED.
 * Fails (STTS_ERR_IO/NOMEM) only when the input cannot be read. */
stts_status ingest_reader_next(ingest_reader *r, int timeout_ms, ingest_line *line,
                               ingest_result *res, stts_error *err);
/* Gives the line the last call returned back: the next call returns it
 * again (same bytes, same number). Only directly after a call that returned
 * INGEST_GOT_LINE, once; not for a line dropped as too long. 0, or -1 when
 * there is nothing to give back. (The pipe mode: a line the daemon did not
 * take is spoken in-process.) */
int ingest_reader_unread(ingest_reader *r);
/* Bytes currently buffered (memory is about max(longest line, 64 KiB) x 2). */
size_t ingest_reader_buffer_size(const ingest_reader *r);
/* Number of times a followed file was truncated or replaced. */
uint64_t ingest_reader_rewinds(const ingest_reader *r);

/* ---- front end ---------------------------------------------------------------- */
typedef struct {
    text_params text;        /* cleaning/segmentation options and the notice language */
    int speak_subagents;     /* 0: lines with parent_tool_use_id (or isSidechain) are silent */
    int announce_tools;      /* 0: tool calls are silent; 1: "Running: git status." */
    int speak_thinking;      /* 0: thinking is never spoken */
    int transcript;          /* 1: input is a Claude Code transcript JSONL, not stream-json */
    int input_format;        /* INGEST_INPUT_*: stream-json (default), plain text or markdown lines */
} ingest_params;

/* What the lines are (--input-format). Text and markdown lines are spoken as
 * they come (markdown cleaned; plain text read literally, no markup). */
enum { INGEST_INPUT_STREAM_JSON = 0, INGEST_INPUT_TEXT, INGEST_INPUT_MARKDOWN };

void ingest_default_params(ingest_params *p);

typedef struct {
    const char *text;        /* UTF-8, cleaned, one line, NUL-terminated; valid in the callback */
    size_t len;
    text_kind kind;          /* TEXT_SPEECH or a notice */
    const char *lang;        /* notices: NLLB code of text; speech: NULL (source language) */
    const char *message_id;  /* message.id, or "turn-N" when the line had none */
    uint64_t seq;            /* 0, 1, 2, ... in emission order */
    uint64_t line_no;        /* input line that completed the sentence */
    uint64_t arrival_ns;     /* when that line arrived (stts_now_ns clock) */
    uint64_t emit_ns;        /* when the sentence was handed to the callback */
    unsigned flags;          /* INGEST_SENT_*: how the daemon's queue treats it */
} ingest_sentence;

/* ingest_sentence.flags. The daemon's queue and the replay history used to
 * recognise these by their message ids ("notification", "cue"); a flag says
 * it where the sentence is made, and the ids stay what the metrics show. */
enum {
    /* Not reply text but the session's state (a Notification's message, a
     * StopFailure): perhaps a permission prompt waiting for the user, so
     * never skipped as lag (--max-lag). */
    INGEST_SENT_ASIDE = 1u << 0,
    /* The daemon's own connective ("Another session."): no sentence of
     * anyone's, so never said again by replay. */
    INGEST_SENT_NO_REPLAY = 1u << 1,
};

typedef void (*ingest_sentence_fn)(void *user, const ingest_sentence *s);
/* A skipped or repaired line: msg names the problem ("line 12: ..."). */
typedef void (*ingest_warn_fn)(void *user, uint64_t line_no, const char *msg);

typedef struct {
    uint64_t lines;             /* lines fed */
    uint64_t bytes;             /* bytes fed */
    uint64_t bad_lines;         /* skipped: not JSON, not an object, no type, too long */
    uint64_t invalid_utf8;      /* lines whose invalid UTF-8 was replaced */
    uint64_t truncated;         /* last line without newline that is not one whole JSON value */
    uint64_t unknown_types;     /* lines of a type (or event type) not handled */
    uint64_t missing_fields;    /* known type but a needed field missing or mistyped */
    uint64_t subagent_skipped;  /* subagent lines not spoken */
    uint64_t duplicates;        /* text blocks not spoken because already spoken */
    uint64_t stream_events;     /* stream_event lines */
    uint64_t results;           /* result lines (turns) */
    uint64_t sentences;         /* speech sentences emitted */
    uint64_t notices;           /* notices emitted */
    uint64_t tool_results_skipped; /* large tool-result lines recognised without parsing */
    uint64_t structured_skipped; /* results not spoken because they were structured output */
    uint64_t interrupted;        /* error results of turns the user interrupted: no error notice */
    uint64_t plain_text_lines;  /* stream-json input: lines that look like plain text (reported once) */
} ingest_stats;

typedef struct ingest_frontend ingest_frontend;

stts_status ingest_frontend_new(const ingest_params *p, ingest_sentence_fn fn, ingest_warn_fn warn,
                                void *user, ingest_frontend **out, stts_error *err);
void ingest_frontend_free(ingest_frontend *fe);
/* One input line (without its '\n'), its number, its arrival time and the
 * reader's INGEST_LINE_* flags. Bad lines are warned about and skipped;
 * the only failure is STTS_ERR_NOMEM. */
stts_status ingest_frontend_feed(ingest_frontend *fe, const char *line, size_t len, uint64_t line_no,
                                 uint64_t arrival_ns, unsigned flags, stts_error *err);
/* Idle timer: call when ingest_frontend_deadline() has passed (or any time). */
void ingest_frontend_tick(ingest_frontend *fe, uint64_t now_ns);
/* When tick should next run (stts_now_ns clock); 0 when nothing is pending. */
uint64_t ingest_frontend_deadline(const ingest_frontend *fe);
/* End of input: everything pending is emitted. */
void ingest_frontend_finish(ingest_frontend *fe, uint64_t now_ns);
void ingest_frontend_stats(const ingest_frontend *fe, ingest_stats *out);
/* While on, lines are taken in (what was said is remembered) but no
 * sentence is delivered and no warning given. */
void ingest_frontend_mute(ingest_frontend *fe, int on);
/* Feeds every line of r into fe, as it arrives, until end of input, running
 * the idle timer while the input is silent, then finishes fe. stop (may be
 * NULL) is looked at least every 250 ms: when it becomes nonzero the pump
 * stops early (fe is still finished). Fails only when the input cannot be
 * read (STTS_ERR_IO) or on out of memory. */
stts_status ingest_frontend_pump(ingest_frontend *fe, ingest_reader *r, volatile sig_atomic_t *stop,
                                 stts_error *err);

/* Is text Claude Code's "(no content)" placeholder, white space around it
 * aside? Claude Code writes it for a message without text (an empty first
 * chunk in transcripts, /clear's synthetic message, a turn that ends on a
 * tool call, then its result and Stop's last_assistant_message). It is not
 * the model's words and is never spoken: every path that speaks assistant
 * text (the front end's assistant lines and result fallback, the daemon's
 * hook batches and Stop fallback) asks this one function. */
int ingest_is_placeholder(const char *text, size_t len);

/* ---- transcripts ---------------------------------------------------------------- */
/* Is this transcript line a user prompt (the start of a turn)? Tool results,
 * meta lines, sidechains and interruption markers are not. */
int ingest_transcript_is_prompt(const char *line, size_t len);
/* What a transcript line is for finding turns: */
enum {
    INGEST_TRANSCRIPT_OTHER = 0,
    INGEST_TRANSCRIPT_PROMPT,    /* a user prompt: a turn starts (ingest_transcript_is_prompt) */
    INGEST_TRANSCRIPT_COMMAND,   /* a slash command the user typed (<command-name>): a turn starts
                                  * there only if Claude answers it (a prompt command, a skill), i.e.
                                  * a REPLY comes before the next PROMPT; a local command (/cost,
                                  * /model, /compact) is answered by its output alone */
    INGEST_TRANSCRIPT_REPLY      /* a main-agent assistant line from the model (or an API error
                                  * message), not a <synthetic> local-command output */
};
int ingest_transcript_line_kind(const char *line, size_t len);
/* Speaks the last turn of a transcript file through fe (which must have
 * transcript=1): finds the last prompt, then feeds the lines after it. */
stts_status ingest_transcript_last_turn(ingest_frontend *fe, const char *path, stts_error *err);
/* The transcript's lines before byte upto (at most its last 64 MiB), taken
 * in as already said: nothing is spoken or warned about, but the blocks are
 * remembered, so `--follow` does not say them again when the session is
 * resumed (its messages written again) or the file is read again from its
 * start (truncated, replaced). */
stts_status ingest_transcript_record(ingest_frontend *fe, const char *path, uint64_t upto, stts_error *err);
/* The transcript_path of a Stop-hook payload (JSON on stdin). Returns a
 * malloc'd string the caller frees. */
stts_status ingest_hook_transcript_path(const char *payload, size_t len, char **path, stts_error *err);

#ifdef __cplusplus
}
#endif
#endif
