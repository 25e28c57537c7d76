/* stts_pipeline.h - the streaming pipeline: sentences in, translated speech
 * out, every stage on its own thread so sentence N+1 is translated and
 * synthesized while sentence N plays.
 *
 *   caller (ingest thread) --pipeline_push--> [text queue]
 *     -> translate thread (cache, script check, NLLB, sanity guard)
 *     -> [text queue] -> synth thread (TTS, PCM streamed chunk by chunk)
 *     -> [audio queue, bounded in seconds] -> player thread (audio sink,
 *        gaps, --max-lag skipping, playback marks) -> metrics
 *
 * Every queue is bounded: when input outruns speech, pipeline_push blocks,
 * so the reader stops reading (the pipe fills; nothing is buffered without
 * limit). Order is preserved because each stage is one thread reading one
 * FIFO; a sentence is spoken at most once, and exactly once unless --max-lag
 * skips it (announced) or the pipeline is cancelled.
 *
 * Thread safety: pipeline_push/finish from one producer thread;
 * pipeline_cancel, pipeline_status and pipeline_stats from any thread.
 * The model, synthesizer and sink are borrowed: the caller keeps them alive
 * until pipeline_free and uses none of them while the pipeline runs. */
#ifndef STTS_PIPELINE_H
#define STTS_PIPELINE_H

#include <stdint.h>
#include <stdio.h>

#include "nllb.h"
#include "stts_audio.h"
#include "stts_common.h"
#include "stts_ingest.h"
#include "stts_tts.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How a sentence's spoken text was obtained. */
typedef enum {
    PIPELINE_MT = 0,        /* translated by the engine */
    PIPELINE_MT_RETRY,      /* greedy output failed the guard; beam search passed */
    PIPELINE_CACHE,         /* repeated sentence: translation cache */
    PIPELINE_SAME_SCRIPT,   /* already written in the target language's script */
    PIPELINE_NOTICE,        /* a notice already in the target language */
    PIPELINE_UNTRANSLATED,  /* translation off (--no-translate) */
    PIPELINE_FALLBACK,      /* translation failed (engine error, or the guard twice): the source is
                               spoken untranslated, after a "translation failed" notice */
    PIPELINE_NOT_READ       /* in a language the model does not translate from (or translation is
                               off) and in a script the voice cannot read (it would spell it
                               letter by letter): a short notice is said instead */
} pipeline_how;
const char *pipeline_how_name(pipeline_how h);

typedef enum {
    PIPELINE_EV_PLAY = 0,   /* a sentence starts playing (for --echo) */
    PIPELINE_EV_LOG         /* something worth a line on stderr (skip, fallback, error) */
} pipeline_event_kind;

typedef struct {
    pipeline_event_kind kind;
    uint64_t seq;
    const char *source;     /* PLAY: the sentence as written */
    const char *spoken;     /* PLAY: what is spoken */
    pipeline_how how;       /* PLAY */
    const char *notice;     /* PLAY: said first (PIPELINE_FALLBACK: "Translation failed."), or NULL */
    const char *message;    /* LOG */
} pipeline_event;

typedef void (*pipeline_event_fn)(void *user, const pipeline_event *ev);

/* A translator other than the bundled engine (benchmarks use it to time a
 * full-size random-weight model while speaking real text). Returns the
 * translation (malloc'd) and, for the guard, its decoder ids (malloc'd, may
 * be NULL) and whether it stopped at the length limit. */
typedef stts_status (*pipeline_translate_fn)(void *user, const char *src, const char *src_lang,
                                              const char *tgt_lang, int num_beams, char **text, int32_t **ids,
                                              int *n_ids, int *hit_max, stts_error *err);

typedef struct {
    const char *src_lang;        /* NLLB code of the input (eng_Latn) */
    const char *tgt_lang;        /* NLLB code spoken (jpn_Jpan) */
    int translate;               /* 0: speak the source text */
    const nllb_model *model;     /* required when translate, unless translate_fn is set */
    const char *model_langs;     /* the languages the model was trained on, comma-separated NLLB
                                    codes (the demo model: "eng_Latn,jpn_Jpan"); NULL: every code
                                    it has. A sentence in another script is translated from its own
                                    language only when the model knows it (guard_source_lang).
                                    Not copied: it must outlive the pipeline */
    pipeline_translate_fn translate_fn;  /* optional: used instead of the engine */
    void *translate_user;
    int num_beams;               /* 1 = greedy (the guard retries with 4) */
    int force_length;            /* benchmarks: decode exactly this many tokens */
    int shortlist;               /* nllb_shortlist of the engine's LM head (0: full vocabulary) */
    const int32_t *shortlist_ids; /* NLLB_SHORTLIST_IDS: the ids */
    int n_shortlist_ids;
    int guard;                   /* 1: sanity guard with retry and fallback */
    int protect;                 /* 1 (default): identifiers, paths, numbers reach the translation verbatim */
    int cache_entries;           /* LRU translation cache size; 0 = off */
    tts_synth *synth;            /* required */
    tts_synth *source_synth;     /* optional: a voice for src_lang (any rate), reading the sentences
                                    whose translation failed (PIPELINE_FALLBACK); NULL: synth reads them */
    audio_sink *sink;            /* required; any rate: it converts the voice's (items carry their rate) */
    double gap_ms;               /* silence between sentences */
    double max_lag_s;            /* > 0: skip older unspoken audio beyond this backlog, and sentences
                                    emitted longer ago than this with a newer one waiting (announced) */
    const char *notice_lang;     /* language the front end writes notices in (NULL: tgt_lang);
                                    the --max-lag "Skipping ahead." notice uses it too */
    int text_queue;              /* sentences between stages */
    double audio_queue_s;        /* synthesized audio held ahead of playback */
    int warmup;                  /* 1: one translation and synthesis before start */
    FILE *metrics;               /* JSON lines, one per sentence, each one write() to fileno(metrics)
                                    (open it O_APPEND); NULL = none */
    int sink_is_file;            /* metrics say "output":"file" (writes, not playback) or "device" */
    pipeline_event_fn on_event;  /* called from pipeline threads; may be NULL */
    void *user;
    /* Test hooks. */
    int simulate_realtime;       /* player waits out each sentence as a device would */
    unsigned test_delay_max_us;  /* random delay before each stage's work on an item */
    uint64_t test_seed;
    /* Called on the player thread (pipeline locks held: it may only signal)
     * when it holds, before writing more, for a stop's or skip's device abort
     * to finish (tests/pipeline/test_pipeline_stop.c holds that window open). */
    void (*test_on_hold)(void *user);
    void *test_hold_user;
} pipeline_params;

/* eng_Latn -> jpn_Jpan, greedy, guard on, cache 256, gap 150 ms, no lag
 * limit, 8 sentences per queue, 60 s of audio ahead, warm-up on. */
void pipeline_default_params(pipeline_params *p);

typedef struct pipeline pipeline;

/* Checks the parameters, warms up (when asked) and starts the threads. */
stts_status pipeline_start(const pipeline_params *p, pipeline **out, stts_error *err);
/* Hands one sentence in (copied). Blocks while the first queue is full.
 * STTS_ERR_CANCELLED after pipeline_cancel. */
stts_status pipeline_push(pipeline *pl, const ingest_sentence *s, stts_error *err);
/* End of input: waits until everything pushed has been spoken and the sink
 * drained, then joins the threads. STTS_ERR_CANCELLED if cancelled meanwhile. */
stts_status pipeline_finish(pipeline *pl, stts_error *err);
/* Same, for one session of the daemon: its metrics records carry "session",
 * and pipeline_stop can drop its sentences alone. session is copied. */
stts_status pipeline_push_session(pipeline *pl, const ingest_sentence *s, const char *session, stts_error *err);

/* Restartable controls, from any thread; the pipeline keeps running.
 * Every sentence carries a stop token: stopping sets it, and the stage that
 * holds the sentence drops it at its next step (translation and synthesis
 * abort, playback ends at the next slice, the device's buffer is dropped);
 * every waiting thread is woken.
 * pipeline_stop: every sentence of session (NULL: all) not yet fully played
 * is dropped; returns once the player has let go of the one playing (at
 * most 1 s); returns how many were dropped. A sentence already skipped by
 * --max-lag keeps that outcome (not dropped, not counted): each sentence is
 * exactly one of played, skipped, stopped in the statistics and metrics.
 * Later pushes play normally.
 * pipeline_skip: the sentence playing now only; 1 if there was one. When
 * the player has begun the next one but the device still plays the end of
 * the one before (the next one's start not yet heard), that end is cut and
 * the next one starts again from its first sample.
 * pipeline_pause: the player holds before its next slice (a sound device
 * still plays what it has buffered); resuming continues from the next
 * sample, none lost or repeated.
 * pipeline_replay: the last n played sentences (up to 16 kept; one stopped
 * or skipped part-way counts, whole; the daemon's "cue" and the skip notices
 * do not) play again, right after the current one; returns how many. At most 16 replayed
 * copies wait at once: a request that would pass that adds nothing and
 * returns -1 with err saying so (what waits, and what to do). */
int pipeline_stop(pipeline *pl, const char *session);
int pipeline_skip(pipeline *pl);
void pipeline_pause(pipeline *pl, int paused);
int pipeline_paused(pipeline *pl);
int pipeline_replay(pipeline *pl, int n, stts_error *err);
/* Speech rate factor for sentences synthesized from now on (the synth
 * thread applies it before its next sentence; see tts_set_speed). The
 * caller's speed is the one the voice was opened with until then. */
void pipeline_set_speed(pipeline *pl, double speed);
/* Stops for good, from any thread (pipeline_stop for everything plus a
 * permanent cancel): audio is aborted, synthesis and translation
 * stop at their next step, queued sentences are dropped, blocked calls
 * return STTS_ERR_CANCELLED. Idempotent. */
void pipeline_cancel(pipeline *pl);
/* Joins the threads if needed (cancelling first if not finished) and frees. */
void pipeline_free(pipeline *pl);

typedef struct {
    uint64_t pushed, translated, synthesized, played, skipped, fallbacks, retries, cache_hits;
    uint64_t same_script, synth_errors, translate_errors;
    uint64_t not_read;            /* PIPELINE_NOT_READ: a notice said instead */
    char output_error[256];       /* the audio output is failing now: why ("" when it works) */
    uint64_t stopped;             /* dropped by pipeline_stop/skip */
    uint64_t audio_errors;        /* sentences (partly) lost to a failing audio output */
    double warmup_ms;             /* warm-up translation + synthesis */
    double lag_s;                 /* audio waiting to be played, now */
    int queued;                   /* sentences between push and playback */
    /* Percentiles over resolved sentences (ms); -1 when none. */
    double translate_p50, translate_p95;       /* translation compute */
    double synth_first_p50, synth_first_p95;   /* synthesis start -> first chunk */
    double ready_first_out_p50, ready_first_out_p95; /* emitted -> first sample out, device idle */
    uint64_t idle_samples;                     /* sentences in the line above */
} pipeline_stats;

void pipeline_get_stats(pipeline *pl, pipeline_stats *st);
/* Sentences pushed and not yet resolved (played, skipped or dropped): what
 * a feeder that holds its own queue looks at before handing the next one
 * over (the daemon keeps one in hand: its controls and order then apply to
 * the rest). Cheap: one lock. */
int pipeline_in_flight(pipeline *pl);
/* The same for one session's sentences (pushed with pipeline_push_session,
 * not yet freed): a pipe client's `end` waits for its own speech only. */
int pipeline_session_in_flight(pipeline *pl, const char *session);
/* Multi-line summary for stderr at exit. */
void pipeline_print_summary(pipeline *pl, FILE *f);
/* One-line status for a terminal ("queued 3  lag 2.1 s  mt 41 ms  tts 7 ms"). */
void pipeline_status_line(pipeline *pl, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
