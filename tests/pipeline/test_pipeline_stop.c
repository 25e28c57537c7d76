/* test_pipeline_stop.c - stop, skip and replay against a sound device, with
 * the device and the voice faked in this file (their functions stand in for
 * src/audio and src/tts at link time: the static libraries' objects are
 * then never pulled in). The fake device keeps every sample written until
 * audio_drain "plays" it; audio_abort discards what it holds, as a real
 * ring buffer does, and a write blocked on a full ring returns CANCELLED.
 * The fake voice makes 4 x 2048 samples per sentence, every sample the
 * sentence's number x 100, so what was heard is counted per sentence.
 *
 * The races are held open without timing: a write of the sentence playing
 * is blocked (a full ring), and the device's abort waits, before it
 * discards, until the player either wrote the next sentence (the race lost:
 * that audio is discarded with the stopped one) or holds for the abort
 * (pipeline_params.test_on_hold). Label "pipeline": also run under TSan. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stts_pipeline.h"
#include "test.h"

enum { CHUNK = 2048, CHUNKS = 4, PER_SENTENCE = CHUNK * CHUNKS };

/* ---- the fake device ---------------------------------------------------- */

struct audio_sink {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int16_t *ring;           /* written, not yet played */
    size_t n_ring, cap_ring;
    long heard[16];          /* samples played (drained), per sentence value / 100 */
    unsigned epoch;          /* bumped by each abort */
    /* Blocks the block_nth write of sentence block_value: a full ring (the
     * write is under way: an abort ends it), or with block_before a write
     * not yet begun (the thread was descheduled: an abort does not touch it). */
    int block_value, block_nth, block_before, writes_of_block, blocked, release;
    /* abort: 0 discards at once; 1 (the next abort only) first lets the
     * blocked write finish normally and waits until a write of wait_value
     * began or the player holds for the abort, then discards. */
    int abort_mode, wait_value, saw_wait_value, held, aborts;
    /* abort_mode 1: pushed from inside the abort (a sentence queued while the stop runs) */
    pipeline *push_pl;
    int push_value;
    uint64_t marks;
    /* marks_wait: a mark is passed only once drained (a device still playing
     * what was written); else at once */
    int marks_wait;
    uint64_t marks_drained;   /* marks up to this one are passed */
    int writes_of[16];        /* writes per sentence value / 100 */
    int silences_after[16];   /* silences written after the last write of sentence k (its gap) */
    int last_value;
};

static struct audio_sink g_sink = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void sink_reset(void) {
    pthread_mutex_lock(&g_sink.mu);
    free(g_sink.ring);
    g_sink.ring = NULL;
    g_sink.n_ring = g_sink.cap_ring = 0;
    memset(g_sink.heard, 0, sizeof g_sink.heard);
    g_sink.block_value = g_sink.block_nth = g_sink.block_before = 0;
    g_sink.writes_of_block = g_sink.blocked = g_sink.release = 0;
    g_sink.abort_mode = g_sink.wait_value = g_sink.saw_wait_value = g_sink.held = g_sink.aborts = 0;
    g_sink.push_pl = NULL;
    g_sink.push_value = 0;
    g_sink.marks_wait = 0;
    g_sink.marks_drained = g_sink.marks;
    memset(g_sink.writes_of, 0, sizeof g_sink.writes_of);
    memset(g_sink.silences_after, 0, sizeof g_sink.silences_after);
    g_sink.last_value = 0;
    pthread_mutex_unlock(&g_sink.mu);
}

static void ring_add(struct audio_sink *s, const int16_t *pcm, size_t n) {
    if (s->n_ring + n > s->cap_ring) {
        s->cap_ring = (s->n_ring + n) * 2;
        s->ring = realloc(s->ring, s->cap_ring * sizeof *s->ring);
    }
    memcpy(s->ring + s->n_ring, pcm, n * sizeof *pcm);
    s->n_ring += n;
}

stts_status audio_write(audio_sink *s, const int16_t *pcm, size_t n, int rate, stts_error *err) {
    (void)rate;
    if (n == 0) return STTS_OK;
    pthread_mutex_lock(&s->mu);
    unsigned e = s->epoch;
    if (s->block_value && pcm[0] == s->block_value && ++s->writes_of_block == s->block_nth) {
        s->blocked = 1;
        pthread_cond_broadcast(&s->cv);
        while (!s->release && (s->block_before || s->epoch == e)) pthread_cond_wait(&s->cv, &s->mu);
        s->blocked = 0;
        if (s->block_before) e = s->epoch;   /* the write begins only now */
    }
    if (s->epoch != e) {   /* aborted while it waited for room */
        pthread_mutex_unlock(&s->mu);
        return stts_error_set(err, STTS_ERR_CANCELLED, "audio aborted");
    }
    ring_add(s, pcm, n);
    if (s->wait_value && pcm[0] == s->wait_value) s->saw_wait_value = 1;
    if (pcm[0] > 0 && pcm[0] / 100 < 16) {
        s->last_value = pcm[0] / 100;
        s->writes_of[s->last_value]++;
    } else if (pcm[0] == 0 && s->last_value) {
        s->silences_after[s->last_value]++;
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return STTS_OK;
}

stts_status audio_silence(audio_sink *s, double ms, stts_error *err) {
    static const int16_t zeros[160];
    for (double t = 0; t < ms; t += 10)
        if (audio_write(s, zeros, 160, 16000, err) != STTS_OK) return err->code;
    return STTS_OK;
}

stts_status audio_drain(audio_sink *s, stts_error *err) {
    (void)err;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_ring; i++)
        if (s->ring[i] > 0 && s->ring[i] / 100 < 16) s->heard[s->ring[i] / 100]++;
    s->n_ring = 0;
    s->marks_drained = s->marks;
    pthread_mutex_unlock(&s->mu);
    return STTS_OK;
}

void audio_abort(audio_sink *s) {
    pthread_mutex_lock(&s->mu);
    s->aborts++;
    if (s->abort_mode == 1) {
        s->abort_mode = 0;
        s->release = 1;   /* the write in progress got its room just before the abort */
        pthread_cond_broadcast(&s->cv);
        if (s->push_pl) {
            pipeline *pl = s->push_pl;
            s->push_pl = NULL;
            char text[8];
            snprintf(text, sizeof text, "%d", s->push_value);
            ingest_sentence in = {.text = text, .len = strlen(text), .kind = TEXT_SPEECH, .message_id = "m",
                                  .seq = (uint64_t)s->push_value};
            stts_error err;
            pthread_mutex_unlock(&s->mu);
            CHECK_EQ_INT(pipeline_push(pl, &in, &err), STTS_OK);
            pthread_mutex_lock(&s->mu);
        }
        while (!s->saw_wait_value && !s->held) pthread_cond_wait(&s->cv, &s->mu);
    }
    s->epoch++;
    s->n_ring = 0;   /* what the device held is gone */
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

stts_status audio_mark(audio_sink *s, uint64_t *id, stts_error *err) {
    (void)err;
    pthread_mutex_lock(&s->mu);
    *id = ++s->marks;
    pthread_mutex_unlock(&s->mu);
    return STTS_OK;
}

int audio_mark_query(audio_sink *s, uint64_t id, uint64_t *handed_ns, uint64_t *played_ns) {
    pthread_mutex_lock(&s->mu);
    int passed = !s->marks_wait || id <= s->marks_drained;
    pthread_mutex_unlock(&s->mu);
    *handed_ns = *played_ns = stts_now_ns();
    return passed;
}

/* The player holds before writing more until a stop's abort is done. */
static void on_hold(void *user) {
    struct audio_sink *s = user;
    pthread_mutex_lock(&s->mu);
    s->held = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* ---- the fake voice ------------------------------------------------------ */

struct tts_synth { int unused; };
static struct tts_synth g_voice;
static pthread_mutex_t g_vmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_vcv = PTHREAD_COND_INITIALIZER;
static unsigned g_synthesized;   /* bit k: sentence "k" fully synthesized */

int tts_sample_rate(const tts_synth *s) { (void)s; return 16000; }
int tts_reads_lang(const tts_synth *s, const char *code) { (void)s; (void)code; return 1; }
stts_status tts_set_speed(tts_synth *s, double speed, stts_error *err) { (void)s; (void)speed; (void)err; return STTS_OK; }

stts_status tts_synthesize(tts_synth *s, const char *text, tts_chunk_fn cb, void *user, const atomic_int *stop,
                           stts_error *err) {
    (void)s;
    int v = atoi(text);
    int16_t buf[CHUNK];
    for (int i = 0; i < CHUNK; i++) buf[i] = (int16_t)(v * 100);
    for (int k = 0; k < CHUNKS; k++) {
        if ((stop && atomic_load(stop)) || cb(user, buf, CHUNK))
            return stts_error_set(err, STTS_ERR_CANCELLED, "stopped");
    }
    pthread_mutex_lock(&g_vmu);
    g_synthesized |= 1u << v;
    pthread_cond_broadcast(&g_vcv);
    pthread_mutex_unlock(&g_vmu);
    return STTS_OK;
}

static void wait_synthesized(int v) {
    pthread_mutex_lock(&g_vmu);
    while (!(g_synthesized & (1u << v))) pthread_cond_wait(&g_vcv, &g_vmu);
    pthread_mutex_unlock(&g_vmu);
}

/* ---- helpers --------------------------------------------------------------- */

/* The pipeline's log lines (PIPELINE_EV_LOG), joined. */
static pthread_mutex_t g_logmu = PTHREAD_MUTEX_INITIALIZER;
static char g_log[4096];

static void on_event(void *user, const pipeline_event *ev) {
    (void)user;
    if (ev->kind != PIPELINE_EV_LOG) return;
    pthread_mutex_lock(&g_logmu);
    size_t n = strlen(g_log);
    snprintf(g_log + n, sizeof g_log - n, "%s\n", ev->message);
    pthread_mutex_unlock(&g_logmu);
}

static int logged(const char *what) {
    pthread_mutex_lock(&g_logmu);
    int yes = strstr(g_log, what) != NULL;
    pthread_mutex_unlock(&g_logmu);
    return yes;
}

static pipeline *start(void) {
    sink_reset();
    pthread_mutex_lock(&g_vmu);
    g_synthesized = 0;
    pthread_mutex_unlock(&g_vmu);
    pipeline_params p;
    pipeline_default_params(&p);
    p.translate = 0;
    p.warmup = 0;
    p.gap_ms = 20;
    p.synth = &g_voice;
    p.sink = &g_sink;
    p.test_on_hold = on_hold;
    p.on_event = on_event;
    pthread_mutex_lock(&g_logmu);
    g_log[0] = '\0';
    pthread_mutex_unlock(&g_logmu);
    p.test_hold_user = &g_sink;
    pipeline *pl = NULL;
    stts_error err;
    CHECK_EQ_INT(pipeline_start(&p, &pl, &err), STTS_OK);
    return pl;
}

static void push(pipeline *pl, int v, const char *session) {
    char text[8];
    snprintf(text, sizeof text, "%d", v);
    ingest_sentence in = {.text = text, .len = strlen(text), .kind = TEXT_SPEECH, .message_id = "m", .seq = (uint64_t)v};
    stts_error err;
    CHECK_EQ_INT(pipeline_push_session(pl, &in, session, &err), STTS_OK);
}

/* Holds the nth write of sentence value (before it begins, with before 1;
 * else inside it, as a full device ring would). */
static void hold_write(int value, int nth, int before) {
    pthread_mutex_lock(&g_sink.mu);
    g_sink.block_value = value;
    g_sink.block_nth = nth;
    g_sink.block_before = before;
    pthread_mutex_unlock(&g_sink.mu);
}

/* Lets the held write go ahead. */
static void release_write(void) {
    pthread_mutex_lock(&g_sink.mu);
    g_sink.release = 1;
    pthread_cond_broadcast(&g_sink.cv);
    pthread_mutex_unlock(&g_sink.mu);
}

/* Waits until the player is blocked in the write set up by block_value/nth. */
static void wait_blocked(void) {
    pthread_mutex_lock(&g_sink.mu);
    while (!g_sink.blocked) pthread_cond_wait(&g_sink.cv, &g_sink.mu);
    pthread_mutex_unlock(&g_sink.mu);
}

/* Finishes; every sentence pushed or replayed has been resolved then. */
static void finish(pipeline *pl) {
    stts_error err;
    CHECK_EQ_INT(pipeline_finish(pl, &err), STTS_OK);
    pipeline_stats st;
    pipeline_get_stats(pl, &st);
    CHECK_EQ_INT(st.queued, 0);
    CHECK_NEAR(st.lag_s, 0.0, 1e-9);
    pipeline_free(pl);
}

/* ---- the cases -------------------------------------------------------------- */

/* A stop of session a while its sentence 1 plays; sentence 2, of session b,
 * waits fully synthesized behind it. The player gets to sentence 2 while
 * the stop's abort is still on its way to the device: before, the abort then
 * discarded sentence 2's first slice (and, on a real device, the write in
 * progress failed and lost the rest of it with "audio output failed"). */
static void stop_spares_the_next_sentence(void) {
    pipeline *pl = start();
    pthread_mutex_lock(&g_sink.mu);
    g_sink.block_value = 100;   /* sentence 1's second slice: it has started to play */
    g_sink.block_nth = 2;
    g_sink.abort_mode = 1;
    g_sink.wait_value = 200;
    pthread_mutex_unlock(&g_sink.mu);
    push(pl, 1, "a");
    push(pl, 2, "b");
    wait_synthesized(2);
    wait_blocked();
    CHECK_EQ_INT(pipeline_stop(pl, "a"), 1);
    finish(pl);
    CHECK(g_sink.aborts >= 1);
    CHECK_EQ_INT(g_sink.heard[1], 0);              /* the stopped sentence: nothing after the stop */
    CHECK_EQ_INT(g_sink.heard[2], PER_SENTENCE);   /* the other one: whole */
}

/* Stop everything; sentence 2 is pushed while the stop is under way (from
 * the device's abort: a session's speaker pushes while the poll loop stops).
 * It was queued after the stop's marks: spoken whole. */
static void stop_spares_a_sentence_pushed_during_it(void) {
    pipeline *pl = start();
    pthread_mutex_lock(&g_sink.mu);
    g_sink.block_value = 100;
    g_sink.block_nth = 2;
    g_sink.abort_mode = 1;
    g_sink.wait_value = 200;
    g_sink.push_pl = pl;
    g_sink.push_value = 2;
    pthread_mutex_unlock(&g_sink.mu);
    push(pl, 1, NULL);
    wait_blocked();
    CHECK_EQ_INT(pipeline_stop(pl, NULL), 1);
    finish(pl);
    CHECK_EQ_INT(g_sink.heard[1], 0);
    CHECK_EQ_INT(g_sink.heard[2], PER_SENTENCE);
}

/* A stop while the first slice of sentence 1 is being written (its played
 * count still 0): before, no abort was made, and that slice played after the
 * stop. */
static void stop_during_first_write(void) {
    pipeline *pl = start();
    hold_write(100, 1, 0);
    push(pl, 1, NULL);
    wait_blocked();
    CHECK_EQ_INT(pipeline_stop(pl, NULL), 1);
    pthread_mutex_lock(&g_sink.mu);   /* the device takes the write now, if nothing aborted it */
    g_sink.release = 1;
    pthread_cond_broadcast(&g_sink.cv);
    pthread_mutex_unlock(&g_sink.mu);
    push(pl, 2, NULL);
    finish(pl);
    CHECK_EQ_INT(g_sink.heard[1], 0);
    CHECK_EQ_INT(g_sink.heard[2], PER_SENTENCE);
    /* The write the stop's abort ended is no failure of the output. */
    CHECK_MSG(!logged("audio output failed") && !logged("works again"), "%s", g_log);
}

/* Skip: the next sentence (queued before the skip) is spoken whole. */
static void skip_spares_the_next_sentence(void) {
    pipeline *pl = start();
    pthread_mutex_lock(&g_sink.mu);
    g_sink.block_value = 100;
    g_sink.block_nth = 2;
    g_sink.abort_mode = 1;
    g_sink.wait_value = 200;
    pthread_mutex_unlock(&g_sink.mu);
    push(pl, 1, NULL);
    push(pl, 2, NULL);
    wait_synthesized(2);
    wait_blocked();
    CHECK_EQ_INT(pipeline_skip(pl), 1);
    finish(pl);
    CHECK_EQ_INT(g_sink.heard[1], 0);
    CHECK_EQ_INT(g_sink.heard[2], PER_SENTENCE);
}

static void *stop_thread(void *arg) {
    CHECK_EQ_INT(pipeline_stop(arg, NULL), 1);
    return NULL;
}

/* The stop lands between the player's last look at the stop token and its
 * next write: the stop's abort has come and gone when the write begins.
 * Before, that slice (up to 2048 samples) played after the stop. */
static void stop_before_a_write_begins(void) {
    pipeline *pl = start();
    hold_write(100, 2, 1);
    push(pl, 1, NULL);
    wait_blocked();
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, stop_thread, pl), 0);
    pthread_mutex_lock(&g_sink.mu);
    while (!g_sink.aborts) pthread_cond_wait(&g_sink.cv, &g_sink.mu);
    g_sink.release = 1;   /* the write goes ahead after the abort */
    pthread_cond_broadcast(&g_sink.cv);
    pthread_mutex_unlock(&g_sink.mu);
    pthread_join(th, NULL);
    push(pl, 2, NULL);
    finish(pl);
    CHECK_EQ_INT(g_sink.heard[1], 0);
    CHECK_EQ_INT(g_sink.heard[2], PER_SENTENCE);
}

/* Replay requests repeated: at most 16 copies wait at once; the request
 * that would pass that adds nothing and says so. Before, each request added
 * up to 16 copies with no overall bound (memory, and minutes of repeats). */
static void replay_is_bounded(void) {
    pipeline *pl = start();
    hold_write(200, 2, 0);   /* sentence 2 plays (its second write held): 1 is in the history */
    push(pl, 1, NULL);
    push(pl, 2, NULL);
    wait_blocked();
    stts_error err;
    stts_error_clear(&err);
    int total = 0;
    for (int k = 0; k < 16; k++) total += pipeline_replay(pl, 1, &err);
    CHECK_EQ_INT(total, 16);
    CHECK_EQ_INT(pipeline_replay(pl, 1, &err), -1);
    CHECK_MSG(strstr(err.msg, "16 sentences are already waiting") && strstr(err.msg, "wait until"), "%s", err.msg);
    release_write();
    finish(pl);
    CHECK_EQ_INT(g_sink.heard[1], 17 * PER_SENTENCE);   /* once, then 16 times again */
    CHECK_EQ_INT(g_sink.heard[2], PER_SENTENCE);
}

/* A replay while the player starts a sentence (taken from the list, its
 * first write under way, so nothing counted as played yet): the copy goes
 * after it. Before, it went in front of the sentence the player held, and
 * the player, done with that one, unlinked the copy with it: never said,
 * never freed, and its audio counted as queued for good. */
static void replay_while_a_sentence_starts(void) {
    pipeline *pl = start();
    hold_write(200, 1, 0);   /* sentence 2's first write is held: 1 is in the history */
    push(pl, 1, NULL);
    push(pl, 2, NULL);
    wait_blocked();
    stts_error err;
    CHECK_EQ_INT(pipeline_replay(pl, 1, &err), 1);
    release_write();
    finish(pl);
    CHECK_EQ_INT(g_sink.heard[1], 2 * PER_SENTENCE);
    CHECK_EQ_INT(g_sink.heard[2], PER_SENTENCE);
}

static void *cancel_thread(void *arg) {
    pipeline_cancel(arg);
    return NULL;
}

/* Cancel (Ctrl-C, the daemon exiting) lands just before a write begins:
 * the slice is written after cancel's aborts, and the sink's close then
 * plays what it holds (audio_close drains). Before, that slice was heard
 * after the cancel. */
static void cancel_before_a_write_begins(void) {
    pipeline *pl = start();
    hold_write(100, 2, 1);
    push(pl, 1, NULL);
    wait_blocked();
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, cancel_thread, pl), 0);
    pthread_join(th, NULL);   /* cancel does not wait for the player */
    release_write();
    pipeline_free(pl);   /* joins the player */
    stts_error err;
    audio_drain(&g_sink, &err);   /* what audio_close does */
    CHECK_EQ_INT(g_sink.heard[1], 0);
}

/* A stop after the last sentence was written whole (the device still
 * plays its end; its marks not yet passed, so the player still holds it
 * for its metrics): nothing was waiting to be said, and the stop says so.
 * Before, it counted that sentence as dropped ("1 sentences dropped" from
 * ctl stop after every reply), while its metrics said played. */
static void stop_after_the_last_sentence_counts_nothing(void) {
    pipeline *pl = start();
    pthread_mutex_lock(&g_sink.mu);
    g_sink.marks_wait = 1;
    pthread_mutex_unlock(&g_sink.mu);
    push(pl, 1, NULL);
    pthread_mutex_lock(&g_sink.mu);   /* written whole, and its gap after it */
    while (g_sink.writes_of[1] < CHUNKS || !g_sink.silences_after[1]) pthread_cond_wait(&g_sink.cv, &g_sink.mu);
    pthread_mutex_unlock(&g_sink.mu);
    CHECK_EQ_INT(pipeline_stop(pl, NULL), 0);
    finish(pl);
}

/* Skip just after the player began sentence 2 while the device still plays
 * the end of sentence 1 (2's start mark not passed: the player writes ahead
 * of the ear by the device's buffer). The listener skips what they hear, the
 * end of 1; 2 is then said whole, from its start. Before, 2 was dropped:
 * never heard, and 1's end cut as well. */
static void skip_while_the_one_before_plays_out(void) {
    pipeline *pl = start();
    pthread_mutex_lock(&g_sink.mu);
    g_sink.marks_wait = 1;
    g_sink.block_value = 200;
    g_sink.block_nth = 2;
    pthread_mutex_unlock(&g_sink.mu);
    push(pl, 1, NULL);
    push(pl, 2, NULL);
    wait_blocked();
    CHECK_EQ_INT(pipeline_skip(pl), 1);
    finish(pl);
    CHECK_EQ_INT(g_sink.heard[1], 0);              /* its end, still in the device, was cut */
    CHECK_EQ_INT(g_sink.heard[2], PER_SENTENCE);   /* whole, once */
    CHECK_MSG(!logged("audio output failed"), "%s", g_log);
}

int main(void) {
    TEST_RUN(stop_spares_the_next_sentence);
    TEST_RUN(stop_spares_a_sentence_pushed_during_it);
    TEST_RUN(stop_during_first_write);
    TEST_RUN(skip_spares_the_next_sentence);
    TEST_RUN(stop_before_a_write_begins);
    TEST_RUN(replay_is_bounded);
    TEST_RUN(replay_while_a_sentence_starts);
    TEST_RUN(cancel_before_a_write_begins);
    TEST_RUN(stop_after_the_last_sentence_counts_nothing);
    TEST_RUN(skip_while_the_one_before_plays_out);
    free(g_sink.ring);
    return TEST_SUMMARY();
}
