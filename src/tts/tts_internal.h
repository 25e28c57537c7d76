/* tts_internal.h - what the backends (jtalk.c, espeak.c, command.c) share
 * with the front door (tts.c): the output path every sample goes through
 * (stop flag, callback; samples stay at the voice's rate, the sink converts),
 * the text helpers, and the backend descriptor each backend file exports.
 * tts.c knows the backends only through its table of descriptors; the
 * backends know tts.c only through the services below. Not installed; not
 * part of the public API. */
#ifndef STTS_TTS_INTERNAL_H
#define STTS_TTS_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "stts_tts.h"

/* Where a backend puts samples. tts_out_emit returns non-zero when synthesis
 * must end (stop flag set or the callback asked to stop); the backend then
 * returns STTS_ERR_CANCELLED (use tts_out_cancelled for the message). */
typedef struct tts_out tts_out;
int tts_out_emit(tts_out *o, const int16_t *pcm, size_t n);
int tts_out_should_stop(tts_out *o);
stts_status tts_out_cancelled(tts_out *o, stts_error *err);

typedef struct {
    stts_status (*synthesize)(void *impl, const char *text, tts_out *o, stts_error *err);
    stts_status (*labels)(void *impl, const char *text, char **out, stts_error *err); /* may be NULL */
    void (*close)(void *impl);
    /* Rate factor for the next utterance (0.25-4); NULL: fixed at open. */
    stts_status (*set_speed)(void *impl, double speed, stts_error *err);
} tts_ops;

/* Each opener fills *ops, *impl, the native sample rate and a voice name. */
typedef struct {
    const tts_ops *ops;
    void *impl;
    int rate;
    char voice[256];
} tts_opened;

/* A speech backend as tts.c sees it. A new engine is a new file that
 * exports one of these, plus one line in tts.c's table (and a tts_backend
 * value in stts_tts.h). A backend built without its library still exports
 * its descriptor; its open says what is missing. */
typedef struct {
    tts_backend id;
    const char *name;        /* tts_backend_label: "openjtalk" */
    const char *title;       /* for messages: "Open JTalk" */
    const char *langs;       /* NLLB codes it speaks, space-separated; NULL: any (open checks) */
    /* Scripts (the tags of NLLB codes: "Latn", "Hang") its voices read
     * besides their own language's, space-separated; NULL: any (a command
     * that is not ours: unknown, so trusted). See tts_reads_lang. */
    const char *also_reads;
    /* How strongly it claims a TTS_BACKEND_AUTO request: 0 not at all; the
     * highest claim wins, ties go to the earlier table entry. */
    int (*probe)(const tts_params *p);
    /* Fills *ops, *impl, the native sample rate and a voice name. */
    stts_status (*open)(const tts_params *p, tts_opened *o, stts_error *err);
    /* Its voices (NULL: none to list); sets *stopped when fn asked to stop. */
    stts_status (*list)(tts_voice_fn fn, void *user, int *stopped, stts_error *err);
} tts_backend_desc;

extern const tts_backend_desc tts_jtalk_backend;    /* jtalk.c */
extern const tts_backend_desc tts_espeak_backend;   /* espeak.c */
extern const tts_backend_desc tts_command_backend;  /* command.c */

/* Text helpers (tts.c). tts_clean_text copies text dropping what no backend
 * can say and what breaks Open JTalk's front end (control characters,
 * characters outside the BMP such as emoji, variation selectors, joiners,
 * private use); returns malloc'd text or NULL on invalid UTF-8 / no memory
 * (err says which). tts_has_speakable: any letter, digit or CJK character. */
char *tts_clean_text(const char *text, stts_error *err);
int tts_has_speakable(const char *text);
/* Length of the next piece of at most max bytes, cut after sentence marks,
 * then clause marks, then spaces, else at a UTF-8 boundary. */
size_t tts_next_piece(const char *text, size_t len, size_t max);
/* words.c: identifiers, file names, paths (and for ja ISO dates and times)
 * rewritten as words: useState -> "use State". out must hold TTS_WORDS_CAP(len)
 * bytes; returns the new length (NUL-terminated). */
#define TTS_WORDS_CAP(len) (8 * (len) + 16)
/* keep (may be NULL): 1 when a camelCase-looking token is a known word (a
 * dictionary entry such as StreamTTS in a user dictionary) to read whole. */
typedef int (*tts_keep_fn)(void *user, const char *tok, size_t n);
size_t tts_words(const char *in, size_t len, int ja, tts_keep_fn keep, void *keep_user, char *out);

#endif
