/* stts_app.h - the program's assembly, shared by the pipe mode (stream-tts)
 * and the daemon (stream-tts serve): which translation model to use and why,
 * loading it, the voice, the audio output, the language notices are said in,
 * and the process's signal handling (a dedicated thread that sigwaits).
 *
 * Nothing here prints: the caller reports what app_open chose (the getters)
 * and its errors (stts_error). */
#ifndef STTS_APP_H
#define STTS_APP_H

#include <signal.h>
#include <stddef.h>

#include "nllb.h"
#include "stts_audio.h"
#include "stts_common.h"
#include "stts_tts.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *model;        /* --model DIR; NULL = search (app_pick_model) */
    const char *src, *tgt;    /* NLLB codes */
    int translate;            /* 0: no model is loaded, the source language is spoken */
    int threads;              /* translation threads; 0 = all cores */
    int device;               /* an nllb_device; -1 (default): the engine's default */
    const char *weights;      /* --weights int8|bf16|f16|f32|auto (NULL: auto, the fastest on the device) */
    const char *shortlist;    /* --shortlist auto|none|FILE (NULL: auto) */
    const char *voice;
    double speed, pitch, volume_db;
    const char *user_dict;
    const char *tts_command;  /* external TTS command: the command backend */
    const char *output;       /* NULL: sound device; "-": raw PCM on fd 1; else a WAV file */
    const char *audio_device;
} app_params;

/* eng_Latn -> jpn_Jpan, translation on, speed 1. */
void app_default_params(app_params *p);

/* Both codes known to NLLB? The message names the flag (--src/--tgt). */
stts_status app_check_languages(const char *src, const char *tgt, stts_error *err);

/* The model directory: --model, $STREAM_TTS_MODEL, the installed
 * NLLB-200-distilled-600M under the XDG data folder, then the bundled demo
 * model (beside the executable, then in the source tree it was built from).
 * *why says which ("--model", "the bundled demo model", ...). */
stts_status app_pick_model(const char *flag_model, char *dir, size_t cap, const char **why, stts_error *err);

/* 1 when m is not NLLB-200 but a small demo model like models/demo-en-ja
 * (trained for English to Japanese only): its tokenizer is not NLLB-200's
 * 256000 pieces. */
int app_model_is_demo_files(const nllb_model *m);
/* When m is such a model and src -> tgt is not eng_Latn -> jpn_Jpan: writes
 * the warning (naming dir, the pair and scripts/fetch-model) to buf and
 * returns 1; else 0. */
int app_demo_pair_warning(const nllb_model *m, const char *dir, const char *src, const char *tgt, char *buf,
                          size_t cap);

typedef struct app app;

/* Loads the model (when translating), opens the voice and the audio output.
 * The output's rate is the voice's (one voice: nothing is converted); the
 * sink converts any other rate it is handed (stts_audio.h), the source-language
 * voice's included. STTS_ERR_INVALID_ARG means a bad flag
 * value (--weights, a --shortlist FILE that cannot be read or parsed, a
 * voice setting out of range): callers exit 2 for it, as for other bad
 * flags; any other code is a model, voice or device failure (exit 1). */
stts_status app_open(const app_params *p, app **out, stts_error *err);
/* Closes the sink (abort_audio: drop what is buffered instead of draining),
 * the voice and the model. The sink's close status is returned. */
stts_status app_close(app *a, int abort_audio, stts_error *err);

nllb_model *app_model(const app *a);          /* NULL when not translating */
tts_synth *app_synth(const app *a);
/* A voice of the source language that reads the sentences whose translation
 * failed (when translating and the languages differ), or NULL when there is
 * none: no voice for it, or espeak-ng is already the spoken voice (one
 * espeak-ng handle per process); the spoken voice reads them then. */
tts_synth *app_source_synth(const app *a);
audio_sink *app_sink(const app *a);
const char *app_model_dir(const app *a);      /* "" when not translating */
const char *app_model_why(const app *a);
/* The demo model (a property of its files: app_model_is_demo_files), however it was chosen. */
int app_model_is_demo(const app *a);
/* "" or, for the demo model chosen with --model or $STREAM_TTS_MODEL and
 * another pair than eng_Latn -> jpn_Jpan, why its translations will be
 * nonsense (app_demo_pair_warning); the caller says it once. The demo
 * model found by the search is refused for such a pair instead. */
const char *app_model_warning(const app *a);
double app_model_load_ms(const app *a);
const char *app_speak_lang(const app *a);     /* tgt when translating, else src */
int app_sink_is_raw(const app *a);            /* output "-": stdout carries audio */
int app_sink_is_file(const app *a);           /* a WAV file or raw PCM, not a sound device */
/* The LM-head shortlist chosen by --shortlist: an nllb_shortlist mode and,
 * for a FILE, its ids (owned by the app). */
int app_shortlist(const app *a, const int32_t **ids, int *n);
const char *app_device_name(const app *a);    /* "sound device", "WAV FILE", "raw PCM on stdout" */

/* Notices are said in the spoken language when the phrase table has it
 * (no translation needed); otherwise they stay English and are translated.
 * Writes the chosen NLLB code to buf unless current is not eng_Latn (an
 * explicit --notice-lang). Returns buf or current. */
const char *app_notice_lang(const char *current, const char *speak_lang, char *buf, size_t cap);

/* ---- signals ---------------------------------------------------------------- */
/* Blocks SIGINT and SIGTERM in the calling thread (call before any thread
 * starts, so every thread inherits the mask) and resets them from SIG_IGN
 * (a shell starts background jobs with SIGINT ignored; sigwait only sees
 * signals that are not ignored); SIGHUP too, unless it is ignored (nohup).
 * *old receives the previous mask. */
void app_signals_block(sigset_t *old);
/* "interrupt" (SIGINT), "hangup" (SIGHUP), "terminated" (the rest), for messages. */
const char *app_signal_word(int sig);
void app_signals_restore(const sigset_t *old);

typedef void (*app_signal_fn)(void *user, int sig);
typedef struct app_sigwatch app_sigwatch;
/* A thread that waits for SIGINT/SIGTERM (SIGHUP) and calls fn once (on that thread). */
stts_status app_sigwatch_start(app_signal_fn fn, void *user, app_sigwatch **out, stts_error *err);
/* Stops the thread (within 100 ms) and frees; returns the signal seen or 0. */
int app_sigwatch_stop(app_sigwatch *w);

#ifdef __cplusplus
}
#endif
#endif
