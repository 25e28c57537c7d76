/* stts_text.h - the text stage: incremental markdown cleaning and sentence
 * segmentation, plus the phrase table for spoken notices.
 *
 * A text_stream receives the assistant's markdown in arbitrary pieces (a few
 * bytes per delta, split anywhere, even inside a UTF-8 sequence or a `**`) and
 * calls back once per speakable sentence, as soon as that sentence's end is
 * certain. The output never depends on how the input was split.
 * docs/FRONTEND.md lists every rule and where it is implemented.
 *
 * Thread safety: a text_stream is used by one thread at a time (no internal
 * locking); callbacks run on the calling thread, inside feed/end/tick.
 * The phrase functions are pure and thread-safe. */
#ifndef STTS_TEXT_H
#define STTS_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "stts_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a sentence is. Notices are short phrases the program says in place of
 * something it does not read out; their text comes from the phrase table. */
typedef enum {
    TEXT_SPEECH = 0,      /* words of the assistant, cleaned */
    TEXT_NOTICE_CODE,     /* "Python code, 12 lines, omitted." */
    TEXT_NOTICE_TABLE,    /* "Table, 3 rows, omitted." */
    TEXT_NOTICE_TOOL,     /* "Running: git status." */
    TEXT_NOTICE_ERROR,    /* "Claude Code could not log in." */
    TEXT_NOTICE_SECRET,   /* "Secret omitted." (after the sentence it was left out of) */
    TEXT_NOTICE_SKIP      /* "Skipping ahead." (the pipeline's --max-lag) */
} text_kind;

/* "speech", "code", "table", "tool", "error", "secret", "skip". */
const char *text_kind_name(text_kind k);

typedef struct {
    int read_tables;             /* 0: "Table, N rows, omitted."; 1: read each row */
    uint32_t max_sentence_chars; /* cut longer sentences at a clause boundary; 0 = no limit */
    uint32_t merge_short_chars;  /* sentences of at most this many characters wait for the
                                    next one (merged if it comes within idle_flush_ns); 0 = off */
    uint64_t idle_flush_ns;      /* flush a pending fragment after this much silence */
    const char *notice_lang;     /* NLLB code of notices (eng_Latn, jpn_Jpan); copied */
} text_params;

/* read_tables 0, max 200, merge 10, idle 1.5 s, notices in eng_Latn. */
void text_default_params(text_params *p);

typedef struct {
    const char *text;     /* UTF-8, NUL-terminated, no newline, trimmed; valid during the callback */
    size_t len;
    text_kind kind;
    const char *lang;     /* notices: NLLB code of the text; speech: NULL (the source language) */
    uint64_t arrival_ns;  /* arrival time of the input that completed the sentence */
} text_sentence;

typedef void (*text_sentence_fn)(void *user, const text_sentence *s);

typedef struct text_stream text_stream;

stts_status text_stream_new(const text_params *p, text_sentence_fn fn, void *user,
                            text_stream **out, stts_error *err);
void text_stream_free(text_stream *ts);

/* Appends markdown bytes (any split, any bytes: invalid UTF-8 is dropped).
 * arrival_ns is when these bytes arrived (stts_now_ns()). Fails only on
 * STTS_ERR_NOMEM. */
stts_status text_stream_feed(text_stream *ts, const char *s, size_t n, uint64_t arrival_ns,
                             stts_error *err);
/* End of a text block or message: everything pending is emitted (an open code
 * fence or table gets its notice) and the markdown state is reset. */
void text_stream_end(text_stream *ts, uint64_t now_ns);
/* Idle timer: when no input arrived for idle_flush_ns, the pending fragment
 * is emitted up to its last complete word; a held short sentence too. */
void text_stream_tick(text_stream *ts, uint64_t now_ns);
/* When tick should next be called to flush something (0: nothing pending). */
uint64_t text_stream_deadline(const text_stream *ts);
/* Emits a notice (tool/error) in order: pending text is ended first. */
void text_stream_notice(text_stream *ts, text_kind kind, const char *text, const char *lang,
                        uint64_t arrival_ns);
/* The same, said now, before the sentence the stream holds unfinished,
 * which stays pending: a stream cut mid-sentence whose retry streams it
 * again and completes it (ingest's keep_cut). */
void text_stream_notice_now(text_stream *ts, text_kind kind, const char *text, const char *lang,
                            uint64_t arrival_ns);
/* Drops the word being collected (letters fed after the last space, not
 * yet part of a sentence): the half word an interrupted turn's stream
 * stopped in ("Then I will upd"). 1 when it did. */
int text_stream_drop_word(text_stream *ts);
/* Drops the unfinished sentence (the words fed since the last sentence end,
 * never said) and resets the markdown state; complete sentences held to be
 * merged still go out. A cut stream retried with other words replaces it
 * (ingest's retry_diverged). */
void text_stream_discard_pending(text_stream *ts, uint64_t now_ns);
/* Counters: invalid UTF-8 bytes dropped so far. */
uint64_t text_stream_invalid_bytes(const text_stream *ts);
/* 1 while a fenced code block (``` or ~~~) is open, as of the lines fed so
 * far: the daemon asks it when the batch before the text it feeds next is
 * missing (src/daemon/hub.c, release_held). */
int text_stream_in_code_block(const text_stream *ts);

/* Cleans a short string in one go (no segmentation): markup removed, URLs to
 * their domain, long paths to their last component, emoji and controls
 * dropped, whitespace collapsed. Used for tool-announcement arguments.
 * Writes at most cap-1 bytes plus NUL (cut at a character boundary); returns
 * the length written. */
size_t text_clean_short(const char *in, size_t n, char *out, size_t cap);
/* The same; *secret (if not NULL) says whether a secret was left out (its
 * notice is never part of the short text). */
size_t text_clean_short_secret(const char *in, size_t n, char *out, size_t cap, int *secret);

/* ---- Notice phrases, keyed by NLLB language code (English is the fallback) */
typedef enum {
    TEXT_PH_CODE_LANG_N,    /* {a} code, {n} lines, omitted. */
    TEXT_PH_CODE_LANG_1,    /* {a} code, one line, omitted. */
    TEXT_PH_CODE_N,         /* Code block, {n} lines, omitted. */
    TEXT_PH_CODE_1,         /* Code block, one line, omitted. */
    TEXT_PH_TABLE_N,        /* Table, {n} rows, omitted. */
    TEXT_PH_TABLE_1,        /* Table, one row, omitted. */
    TEXT_PH_TOOL_RUN,       /* Running: {a}. */
    TEXT_PH_TOOL_READ,      /* Reading {a}. */
    TEXT_PH_TOOL_EDIT,      /* Editing {a}. */
    TEXT_PH_TOOL_WRITE,     /* Writing {a}. */
    TEXT_PH_TOOL_GREP,      /* Searching for {a}. */
    TEXT_PH_TOOL_GLOB,      /* Looking for files matching {a}. */
    TEXT_PH_TOOL_LIST,      /* Listing {a}. */
    TEXT_PH_TOOL_FETCH,     /* Fetching {a}. */
    TEXT_PH_TOOL_WEBSEARCH, /* Searching the web for {a}. */
    TEXT_PH_TOOL_AGENT,     /* Starting a subagent: {a}. */
    TEXT_PH_TOOL_TODO,      /* Updating the to-do list. */
    TEXT_PH_TOOL_OTHER,     /* Using the {a} tool. */
    TEXT_PH_ERR_GENERIC,    /* Claude Code reported an error. */
    TEXT_PH_ERR_AUTH,
    TEXT_PH_ERR_RATE_LIMIT,
    TEXT_PH_ERR_BILLING,
    TEXT_PH_ERR_MODEL,
    TEXT_PH_ERR_API,
    TEXT_PH_ERR_MAX_TURNS,
    TEXT_PH_ERR_BUDGET,
    TEXT_PH_ERR_EXECUTION,
    TEXT_PH_ERR_STRUCTURED, /* error_max_structured_output_retries */
    TEXT_PH_SECRET,         /* Secret omitted. */
    TEXT_PH_SKIPPING,       /* Skipping ahead. */
    TEXT_PH_TRANSLATION_FAILED, /* Translation failed. (before a sentence spoken untranslated) */
    TEXT_PH_NOT_READ,       /* A sentence in another language was not read. (neither the model nor the voice could) */
    TEXT_PH__COUNT
} text_phrase_id;

/* Formats phrase id in language lang (NULL or unknown: eng_Latn), replacing
 * {a} with a and {n} with n. Returns the length (truncated to cap-1) and
 * stores the language actually used in *lang_used (may be NULL). */
size_t text_phrase_format(const char *lang, text_phrase_id id, const char *a, long n,
                          char *out, size_t cap, const char **lang_used);
/* The languages that have a phrase table (NULL-terminated list). */
const char *const *text_phrase_languages(void);
/* Display name for a code-fence info string ("py" -> "Python"); "" if none. */
size_t text_code_language_name(const char *info, size_t n, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
