/* stts_tts.h - speech synthesis for stream-tts: one interface over three
 * backends, delivering 16-bit mono PCM in small chunks while synthesis runs.
 *
 *  - Open JTalk, linked in-process (jpn_Jpan): dictionary and HTS voice are
 *    loaded once by tts_open(); each tts_synthesize() runs only text analysis
 *    and synthesis, and hands out audio frame by frame as the vocoder makes
 *    it (one HTS frame = fperiod samples, 5 ms for the shipped voices). A
 *    reading dictionary of software terms (data/dict/) is loaded by default.
 *  - espeak-ng via libespeak-ng (every other NLLB language that has a voice).
 *  - An external command (sh -c CMD): text on stdin, a WAV file on stdout.
 *
 * Errors: tts_open() checks that the language has a voice, that the voice
 * and dictionaries load, and fails with one sentence saying what to do, so a
 * pipeline learns at startup, not mid-stream.
 *
 * Thread safety: a tts_synth is used by one thread at a time (one handle per
 * thread is fine; several Open JTalk handles may synthesize concurrently).
 * espeak-ng keeps global state in the library, so at most one espeak-ng
 * handle may be open per process (tts_open says so if a second is asked
 * for). The stop flag may be set from any thread. */
#ifndef STTS_TTS_H
#define STTS_TTS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "stts_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TTS_BACKEND_AUTO = 0,   /* jpn_Jpan -> Open JTalk, else espeak-ng; command if params.command */
    TTS_BACKEND_OPENJTALK,
    TTS_BACKEND_ESPEAK,
    TTS_BACKEND_COMMAND
} tts_backend;

typedef struct {
    const char *lang;        /* NLLB code, e.g. "jpn_Jpan" (default), "eng_Latn" */
    tts_backend backend;     /* AUTO by default */
    /* Open JTalk: a .htsvoice path, or a voice name ("mei_normal",
     * "tohoku-f01-neutral") looked up in the voice directories (see
     * tts_voice_dirs). espeak-ng: an espeak voice name overriding the
     * table. NULL: the default voice for the language. */
    const char *voice;
    double speed;            /* speaking rate factor, 1.0 normal, (0.25, 4] */
    double pitch;            /* pitch shift in semitones, [-24, 24] */
    double volume_db;        /* gain in dB, [-40, 20]; 0 leaves the voice as is */
    /* No output rate here: chunks come at the voice's native rate
     * (tts_sample_rate) and the audio sink converts (stts_audio.h). */
    /* Open JTalk only. dict_dir: the naist-jdic system dictionary (NULL =
     * Debian's /var/lib/mecab/dic/open-jtalk/naist-jdic). builtin_dict: load
     * the software-terms reading dictionary built from data/dict (default 1).
     * user_dict: NULL or a comma-separated list of extra dictionaries, each a
     * compiled mecab .dic or a naist-jdic format .csv (compiled on open into
     * $XDG_CACHE_HOME/stream-tts/, reused while unchanged). */
    const char *dict_dir;
    int builtin_dict;
    const char *user_dict;
    /* Open JTalk: synthesize each breath group (text up to a pause, e.g. at
     * 、) in its own HTS pass, so the first audio waits for the first
     * group's parameters, not the whole sentence's (default 1). The labels
     * keep the whole-sentence context; 0 gives one pass per sentence, the
     * same samples as the open_jtalk program. */
    int low_latency;
    /* Command backend: a shell command that reads UTF-8 text on stdin and
     * writes a RIFF WAV (PCM 16-bit, any rate, mono or stereo) on stdout. */
    const char *command;
    /* Command backend: how long the start-up probe may take before the
     * command is killed and tts_open fails (0: the default, 10000 ms). A
     * command that never writes a WAV header or never exits must not hang.
     * Synthesis: a command silent (no text taken, no audio written) for 3
     * times this, or lingering as long after closing its output, is killed
     * and the sentence fails. */
    int probe_timeout_ms;
} tts_params;

typedef struct tts_synth tts_synth;

/* Receives the next n samples (mono int16 at tts_sample_rate(), the voice's
 * native rate: pass it to audio_write with them). Return 0 to
 * continue, non-zero to stop synthesis (tts_synthesize then returns
 * STTS_ERR_CANCELLED). Called on the synthesizing thread. */
typedef int (*tts_chunk_fn)(void *user, const int16_t *pcm, size_t n);

void tts_default_params(tts_params *p);

/* Loads dictionary and voice; fails if the language has no voice. */
stts_status tts_open(const tts_params *p, tts_synth **out, stts_error *err);
void tts_close(tts_synth *s);

int tts_sample_rate(const tts_synth *s);       /* the voice's native rate in Hz */
tts_backend tts_backend_of(const tts_synth *s);
const char *tts_voice_name(const tts_synth *s); /* what was loaded, for logs */

/* Synthesizes one utterance (UTF-8; long text is cut into pieces at
 * sentence and clause marks, never into a fixed buffer). Chunks go to cb as
 * they are produced; `stop` (may be NULL), when it becomes non-zero, ends
 * synthesis within one vocoder frame with STTS_ERR_CANCELLED. Text with
 * nothing speakable (empty, punctuation only, emoji only) returns
 * STTS_ERR_INVALID_ARG with no audio; invalid UTF-8 returns STTS_ERR_FORMAT. */
stts_status tts_synthesize(tts_synth *s, const char *text, tts_chunk_fn cb, void *user,
                           const atomic_int *stop, stts_error *err);

/* Changes the speech rate factor (0.25-4) for the next utterances; not
 * while tts_synthesize runs. STTS_ERR_UNSUPPORTED for the command backend. */
stts_status tts_set_speed(tts_synth *s, double speed, stts_error *err);

/* Open JTalk only: the full-context labels the front end makes for text,
 * one per line, in a malloc'd string the caller frees. For tests and
 * debugging the reading dictionary (`stream-tts say --labels`). */
stts_status tts_labels(tts_synth *s, const char *text, char **out, stts_error *err);

/* 1 when the voice reads text of that NLLB language's script: its own
 * language's, or one its engine also reads (Open JTalk: Han and Latin;
 * espeak-ng: Latin, Hangul, Devanagari); 0 when it would spell it letter by
 * letter or drop it. An unknown code or a command backend: 1. */
int tts_reads_lang(const tts_synth *s, const char *nllb_code);

/* The espeak-ng voice for an NLLB code, or NULL when there is none. */
const char *tts_espeak_voice_for(const char *nllb_code);

/* Voice listing. `name` is what to pass as params.voice; `detail` is a path
 * or an espeak identifier. Return non-zero from the callback to stop. */
typedef struct {
    tts_backend backend;
    const char *lang;      /* NLLB code */
    const char *name;
    const char *detail;
} tts_voice_info;
typedef int (*tts_voice_fn)(void *user, const tts_voice_info *v);
/* TTS_BACKEND_AUTO lists all backends. */
stts_status tts_list_voices(tts_backend which, tts_voice_fn fn, void *user, stts_error *err);

/* The directories searched for Open JTalk voice names, in order, joined by
 * ':' into buf: $STTS_VOICE_DIR, $XDG_DATA_HOME/stream-tts/voices (or
 * ~/.local/share/stream-tts/voices), /usr/local/share/stream-tts/voices,
 * /usr/share/stream-tts/voices, then the development checkout's
 * ../shared/assets/voices when it exists. Returns buf. */
const char *tts_voice_dirs(char *buf, size_t size);

const char *tts_backend_label(tts_backend b);  /* "openjtalk", "espeak-ng", "command" */

#ifdef __cplusplus
}
#endif
#endif
