/* pipeline.c - the streaming pipeline's threads and queues (see
 * include/stts_pipeline.h for the picture, docs/ARCHITECTURE.md for why).
 *
 * One item travels the whole way: pushed by the caller, given its spoken
 * text by the translate thread, its PCM by the synth thread, played by the
 * player thread, then written to the metrics and freed. Each item is owned
 * by exactly one stage at a time, except that the synth and player threads
 * share the item being synthesized: the player streams its PCM while the
 * synth thread is still appending (under pl->amu), which is what gets the
 * first sample out a few milliseconds after synthesis starts. */
#define _POSIX_C_SOURCE 200809L
#include "stts_pipeline.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "protect.h"
#include "guard.h"

enum { HISTORY = 16 };   /* sentences kept for pipeline_replay (scripts/soak REPLAY_HISTORY) */
/* Replayed copies waiting or playing at once: each holds its PCM, so a
 * client repeating requests would otherwise grow the audio list without
 * bound (and the listener would hear minutes of repeats). One full history. */
enum { REPLAY_WAITING_MAX = HISTORY };

/* ---- items ---------------------------------------------------------------- */

typedef struct item {
    struct item *next;
    struct item *live_prev, *live_next;   /* pl->live: every item from push to free */
    /* The stop token: set by pipeline_stop/skip/cancel, it ends this item's
     * translation and synthesis at their next step and its playback at the
     * next slice; every stage drops the item when it sees it. */
    atomic_int drop;
    int stopped;             /* dropped while (or before) playing: metrics say so */
    /* Written to its end (guarded by amu): played, though the player may hold
     * it a while for its playback marks. A stop still cuts what the device
     * holds of it, but does not count it as dropped. */
    int ended;
    /* pipeline_skip found the sentence before still being heard (this one
     * written ahead of the ear, not yet audible): the player starts this one
     * again from its first sample. Guarded by amu. */
    int rewind;
    int replay;              /* a copy of an earlier sentence (pipeline_replay) */
    uint64_t seq;
    char *session;           /* NULL in pipe mode */
    char *message_id;
    unsigned flags;          /* INGEST_SENT_* */
    text_kind kind;
    char *source;
    char *notice_lang;       /* notices: the language of source; NULL for speech */
    char *spoken;
    pipeline_how how;
    /* Skipped (--max-lag). Each sentence has one outcome: played, skipped,
     * stopped or lost; a skip decided first stands, so a stop leaves a
     * skipped sentence alone (mark_and_wake) and is not counted for it.
     * Atomic: the stop reads it from another thread. */
    atomic_int skipped;
    const char *error;       /* NULL, or the stage that failed: "translation", "synthesis", "audio" */
    const char *notice;      /* said before a fallback sentence (pl->fail_notice, not owned), else NULL */
    uint64_t t_input, t_emit, t_push, t_tr_start, t_tr_end;
    uint64_t t_syn_start, t_first_chunk, t_syn_end;
    uint64_t t_play_start, t_first_out, t_play_end;
    /* Audio, guarded by pl->amu while the item is on the audio list. */
    int16_t *pcm;
    int rate;                /* Hz of pcm: the voice's native rate (the sink converts) */
    /* A fallback item is read by two voices: the notice by the spoken one,
     * the source text by a source-language voice that may run at another
     * rate. From sample rate2_from on, pcm is at rate2 (0: one rate). The
     * sink is still the one place that converts; the player hands it each
     * run with its own rate. */
    int rate2;
    size_t rate2_from;
    size_t n_pcm, cap_pcm, played;
    int synth_done, synth_failed;
    uint64_t mark_start, mark_end;
    int marked;
} item;

static void item_free(item *it) {
    if (!it) return;
    free(it->session);
    free(it->message_id);
    free(it->source);
    free(it->notice_lang);
    free(it->spoken);
    free(it->pcm);
    free(it);
}

/* ---- bounded FIFO of items between text stages ------------------------------ */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    item *head, *tail;
    int count, cap, closed;
} tqueue;

static void tq_init(tqueue *q, int cap) {
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_cond_init(&q->not_full, NULL);
    q->head = q->tail = NULL;
    q->count = 0;
    q->cap = cap > 0 ? cap : 1;
    q->closed = 0;
}

static void tq_destroy(tqueue *q) {
    for (item *it = q->head, *n; it; it = n) { n = it->next; item_free(it); }   /* live list ignored: freeing all */
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
}

struct pipeline {
    pipeline_params p;
    char src_lang[32], tgt_lang[32];
    atomic_int cancelled;     /* also the stop flag of synthesis and translation */
    int finished, joined;
    uint64_t t0;

    tqueue q_text, q_spoken;  /* push -> translate -> synth */

    /* audio list (synth -> player), guarded by amu */
    pthread_mutex_t amu;
    pthread_cond_t a_data, a_space;
    item *a_head, *a_tail;
    /* Measured in time, not samples: items may come at different rates
     * (each at its voice's own; only the sink converts). See span_ns. */
    uint64_t queued_ns, cap_ns;
    int a_closed;

    /* played items waiting for their playback marks, guarded by the player */
    item *done_head, *done_tail;
    uint64_t last_play_end;

    int sink_down;            /* player: the sink's last write failed */
    int skip_pending;         /* player: skipped sentences not yet announced */
    int metrics_failed;       /* player: a metrics write failed (said once) */

    int16_t *skip_pcm;        /* "Skipping ahead." pre-synthesized for --max-lag */
    int skip_rate;            /* its rate */
    /* Notice phrases without arguments in a language other than the target,
     * translated once at start-up (warm_up) and kept: source -> spoken. */
    char *notice_src[TEXT_PH__COUNT], *notice_tr[TEXT_PH__COUNT];
    size_t skip_n;
    /* "Translation failed." in the listener's language, said before a
     * sentence spoken untranslated (PIPELINE_FALLBACK). */
    char *fail_notice;
    /* "A sentence in another language was not read." in the spoken
     * language, said instead of a sentence neither the model nor the voice
     * can read (PIPELINE_NOT_READ). */
    char *not_read_notice;
    /* The sentence translate_item saw last was PIPELINE_NOT_READ, said as
     * the notice: of this session and message (translate thread only). */
    int last_not_read;
    char last_nr_session[128], last_nr_message[128];

    nllb_session *session;
    mt_cache *cache;

    pthread_t th_translate, th_synth, th_play;
    int started;

    /* Every live item, so a stop can reach the ones in transit between
     * stages as well as the queued ones (guarded by live_mu). */
    pthread_mutex_t live_mu;
    item *live;
    int paused;               /* guarded by amu: the player holds before its next slice */
    /* The item whose samples the player wrote last (or is writing): what the
     * device may still hold. A stop or skip that drops it aborts the device;
     * NULL once that item is freed. Guarded by amu. */
    item *w_item;
    /* The item the player has taken from the head of the audio list (it may
     * still wait for samples, or be in its first write, with nothing counted
     * as played): pipeline_replay puts copies after it, never in front of
     * it. NULL between items. Guarded by amu. */
    item *cur;
    /* Device aborts of stops and skips under way (guarded by amu). The
     * player writes nothing of a next item while one is: audio_abort
     * discards whatever the device holds when it acts, so a sentence begun
     * meanwhile would lose its first slice. */
    int aborting;
    _Atomic double speed;     /* requested by pipeline_set_speed; the synth thread applies it */
    double speed_applied;     /* synth thread only */
    /* The last sentences played, for pipeline_replay (guarded by amu). */
    item *history[16];
    int n_history;
    int replay_waiting;       /* replayed copies not yet finished (guarded by amu) */

    pthread_mutex_t smu;      /* stats and percentiles */
    pipeline_stats st;
    double *d_translate, *d_synth_first, *d_ready_out;
    size_t n_translate, n_synth_first, n_ready_out, cap_translate, cap_synth_first, cap_ready_out;
    double last_translate_ms, last_synth_ms;
    int in_flight;            /* pushed but not yet resolved */
};

static int is_cancelled(pipeline *pl) { return atomic_load(&pl->cancelled) != 0; }
static int is_dropped(const item *it) { return atomic_load(&it->drop) != 0; }

static void live_add(pipeline *pl, item *it) {
    pthread_mutex_lock(&pl->live_mu);
    it->live_prev = NULL;
    it->live_next = pl->live;
    if (pl->live) pl->live->live_prev = it;
    pl->live = it;
    pthread_mutex_unlock(&pl->live_mu);
}

/* Unlinks and frees an item that was pushed (or replayed). */
static void live_free(pipeline *pl, item *it) {
    pthread_mutex_lock(&pl->live_mu);
    if (it->live_prev) it->live_prev->live_next = it->live_next;
    else if (pl->live == it) pl->live = it->live_next;
    if (it->live_next) it->live_next->live_prev = it->live_prev;
    pthread_mutex_unlock(&pl->live_mu);
    item_free(it);
}

/* An item dropped before reaching the player: counted, not spoken. */
static void drop_item(pipeline *pl, item *it) {
    pthread_mutex_lock(&pl->smu);
    pl->st.stopped++;
    pl->in_flight--;
    pthread_mutex_unlock(&pl->smu);
    live_free(pl, it);
}

/* --max-lag: a sentence emitted longer ago than the limit, with a newer one
 * already waiting behind it in queue q, is skipped by the stage that finds it,
 * before any translation or synthesis is spent on it; so the pipeline keeps up
 * with input of any speed, and the newest sentence is still said. The player
 * announces the skips. */
static int is_stale(pipeline *pl, const item *it, tqueue *q) {
    if (pl->p.max_lag_s <= 0 || stts_now_ns() - it->t_emit <= (uint64_t)(pl->p.max_lag_s * 1e9)) return 0;
    pthread_mutex_lock(&q->mu);
    int newer = q->head != NULL;
    pthread_mutex_unlock(&q->mu);
    return newer;
}

static int tq_push(pipeline *pl, tqueue *q, item *it) {
    pthread_mutex_lock(&q->mu);
    while (q->count >= q->cap && !is_cancelled(pl)) pthread_cond_wait(&q->not_full, &q->mu);
    if (is_cancelled(pl)) { pthread_mutex_unlock(&q->mu); return -1; }
    it->next = NULL;
    if (q->tail) q->tail->next = it; else q->head = it;
    q->tail = it;
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

/* NULL when the queue is closed and empty, or on cancel. */
static item *tq_pop(pipeline *pl, tqueue *q) {
    pthread_mutex_lock(&q->mu);
    while (!q->head && !q->closed && !is_cancelled(pl)) pthread_cond_wait(&q->not_empty, &q->mu);
    item *it = NULL;
    if (!is_cancelled(pl) && q->head) {
        it = q->head;
        q->head = it->next;
        if (!q->head) q->tail = NULL;
        q->count--;
        pthread_cond_signal(&q->not_full);
    }
    pthread_mutex_unlock(&q->mu);
    return it;
}

static void tq_close(tqueue *q) {
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}

static void tq_wake(tqueue *q) {
    pthread_mutex_lock(&q->mu);
    pthread_cond_broadcast(&q->not_empty);
    pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->mu);
}

/* ---- small helpers ------------------------------------------------------------ */

const char *pipeline_how_name(pipeline_how h) {
    switch (h) {
    case PIPELINE_MT: return "mt";
    case PIPELINE_MT_RETRY: return "mt-beam-retry";
    case PIPELINE_CACHE: return "cache";
    case PIPELINE_SAME_SCRIPT: return "same-script";
    case PIPELINE_NOTICE: return "notice";
    case PIPELINE_UNTRANSLATED: return "untranslated";
    case PIPELINE_FALLBACK: return "fallback-source";
    case PIPELINE_NOT_READ: return "not-read";
    }
    return "?";
}

void pipeline_default_params(pipeline_params *p) {
    memset(p, 0, sizeof *p);
    p->src_lang = "eng_Latn";
    p->tgt_lang = "jpn_Jpan";
    p->translate = 1;
    p->num_beams = 1;
    p->guard = 1;
    p->cache_entries = 256;
    p->gap_ms = 150;
    p->text_queue = 8;
    p->audio_queue_s = 60;
    p->warmup = 1;
    p->protect = 1;
    p->test_seed = 1;
}

static void sleep_ns(uint64_t ns) {
    struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* Test hook: a random pause before a stage works on an item. */
static void test_delay(pipeline *pl, uint64_t *rng) {
    if (!pl->p.test_delay_max_us) return;
    *rng ^= *rng << 13; *rng ^= *rng >> 7; *rng ^= *rng << 17;
    sleep_ns((*rng % pl->p.test_delay_max_us) * 1000ull);
}

static void emit_log(pipeline *pl, uint64_t seq, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void emit_log(pipeline *pl, uint64_t seq, const char *fmt, ...) {
    if (!pl->p.on_event) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pipeline_event ev = {.kind = PIPELINE_EV_LOG, .seq = seq, .message = msg};
    pl->p.on_event(pl->p.user, &ev);
}

static int push_double(double **a, size_t *n, size_t *cap, double v) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        double *na = realloc(*a, nc * sizeof *na);
        if (!na) return -1;
        *a = na;
        *cap = nc;
    }
    (*a)[(*n)++] = v;
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a copy (the arrays stay in arrival order). */
static double percentile(const double *a, size_t n, double q) {
    if (n == 0) return -1;
    double *c = malloc(n * sizeof *c);
    if (!c) return -1;
    memcpy(c, a, n * sizeof *c);
    qsort(c, n, sizeof *c, cmp_double);
    size_t k = (size_t)ceil(q * (double)n);
    double v = c[k ? k - 1 : 0];
    free(c);
    return v;
}

static double ms(uint64_t a, uint64_t b) { return b >= a ? (double)(b - a) / 1e6 : 0.0; }

/* ---- translate stage ------------------------------------------------------------- */

/* Translates src with the engine. Returns a malloc'd string, or NULL with
 * *hit_max etc. describing the result; ids copied for the guard. */
static char *engine_translate(pipeline *pl, item *cur, const char *src, const char *src_lang, int num_beams,
                              int32_t **ids_out, int *n_ids, int *hit_max, stts_error *err) {
    const nllb_model *m = pl->p.model;
    int32_t *src_ids = NULL;
    int n_src = 0;
    *ids_out = NULL;
    *n_ids = 0;
    *hit_max = 0;
    if (pl->p.translate_fn) {
        char *text = NULL;
        if (pl->p.translate_fn(pl->p.translate_user, src, src_lang, pl->tgt_lang, num_beams, &text, ids_out,
                               n_ids, hit_max, err) != STTS_OK)
            return NULL;
        return text;
    }
    if (nllb_tokenize(m, src, src_lang, &src_ids, &n_src, err) != STTS_OK) return NULL;
    nllb_translate_params tp = nllb_translate_default_params();
    tp.num_beams = num_beams;
    /* A sentence's translation is rarely over twice its source tokens; the
     * cap bounds the cost of a looping decoder before the guard sees it. */
    tp.max_new_tokens = 2 * n_src + 10;
    const nllb_config *cfg = nllb_model_config(m);
    int limit = (cfg->max_length > 0 ? cfg->max_length : 200) - 1;
    if (tp.max_new_tokens > limit) tp.max_new_tokens = limit;
    if (pl->p.force_length > 0) tp.force_length = pl->p.force_length;
    tp.shortlist = (nllb_shortlist)pl->p.shortlist;
    tp.shortlist_ids = pl->p.shortlist_ids;
    tp.n_shortlist_ids = pl->p.n_shortlist_ids;
    tp.abort_flag = cur ? &cur->drop : &pl->cancelled;
    nllb_result r;
    memset(&r, 0, sizeof r);
    const int32_t *const srcs[1] = {src_ids};
    int lens[1] = {n_src};
    stts_status st = nllb_translate_ids(pl->session, srcs, lens, 1, nllb_model_lang_id(m, pl->tgt_lang), &tp, &r, err);
    free(src_ids);
    if (st != STTS_OK) { nllb_result_clear(&r); return NULL; }
    char *text = r.text ? strdup(r.text) : strdup("");
    *hit_max = guard_hit_max(m, r.ids, r.n_ids);
    *ids_out = r.ids;
    *n_ids = r.n_ids;
    r.ids = NULL;
    nllb_result_clear(&r);
    return text;
}

/* Whether the model translates from code: in its trained list when one is
 * given, else a language id it has (the engine), or any (translate_fn). */
static int model_knows(const pipeline *pl, const char *code) {
    if (pl->p.model_langs) {
        size_t n = strlen(code);
        for (const char *c = pl->p.model_langs; c && *c; c = strchr(c, ',') ? strchr(c, ',') + 1 : NULL)
            if (!strncmp(c, code, n) && (c[n] == ',' || c[n] == '\0')) return 1;
        return 0;
    }
    return pl->p.translate_fn || nllb_model_lang_id(pl->p.model, code) >= 0;
}

/* PIPELINE_NOT_READ: the notice said instead of it (who: "the model nor
 * the voice reads", "the voice does not read"). A reply all in such a
 * language would say the notice once per sentence: the sentences of the
 * same message right after one whose notice was said are silent (another
 * session's, or a later message's, get their own notice). Translate thread
 * only. */
static void not_read(pipeline *pl, item *it, const char *lang, const char *who) {
    const char *ses = it->session ? it->session : "", *msg = it->message_id ? it->message_id : "";
    int again = pl->last_not_read && !strcmp(pl->last_nr_session, ses) && !strcmp(pl->last_nr_message, msg);
    if (!again) {
        snprintf(pl->last_nr_session, sizeof pl->last_nr_session, "%s", ses);
        snprintf(pl->last_nr_message, sizeof pl->last_nr_message, "%s", msg);
    }
    emit_log(pl, it->seq, "sentence %llu: written in %s, which %s; %s", (unsigned long long)it->seq, lang, who,
             again ? "not said (the notice was said before it)" : "a notice said instead");
    /* "" makes no audio and no "Skipping ahead." (skipped would) */
    it->spoken = strdup(again ? "" : pl->not_read_notice ? pl->not_read_notice : "");
    it->how = PIPELINE_NOT_READ;
    pthread_mutex_lock(&pl->smu);
    pl->st.not_read++;
    pthread_mutex_unlock(&pl->smu);
}

static void translate_item(pipeline *pl, item *it) {
    const char *src = it->source;
    if (it->notice_lang && strcmp(it->notice_lang, pl->tgt_lang) == 0) {
        it->spoken = strdup(src);
        it->how = PIPELINE_NOTICE;
        return;
    }
    if (it->notice_lang) {
        for (int k = 0; k < TEXT_PH__COUNT; k++)
            if (pl->notice_src[k] && pl->notice_tr[k] && strcmp(pl->notice_src[k], src) == 0) {
                it->spoken = strdup(pl->notice_tr[k]);
                it->how = PIPELINE_NOTICE;
                return;
            }
    }
    /* The language the sentence is written in, when its script tells
     * another one than the source's (Chinese, Korean, Russian to an
     * English-source pipeline); NULL: the source language. */
    const char *seen = guard_source_lang(src, pl->src_lang);
    if (!pl->p.translate) {
        /* espeak-ng's English voice spelled a Japanese sentence out as
         * "Japanese letter, Japanese letter" for seconds */
        if (seen && !tts_reads_lang(pl->p.synth, seen)) { not_read(pl, it, seen, "the voice does not read"); return; }
        it->spoken = strdup(src);
        it->how = PIPELINE_UNTRANSLATED;
        return;
    }
    /* Tokenized as its own language when the model has it; the demo model,
     * which has not, keeps the source's. */
    const char *src_lang = pl->src_lang;
    int seen_known = seen && strcmp(seen, pl->tgt_lang) != 0 && model_knows(pl, seen);
    if (seen_known) src_lang = seen;
    /* Chinese to a Japanese listener (or Japanese to a Chinese one) is not in
     * the target, but a model without that language would only garble it:
     * then it is read as written, as it was before the two were told apart. */
    int shares_han = seen && !seen_known && strchr(pl->tgt_lang, '_') &&
                     (!strncmp(seen, "zho_", 4) || !strcmp(seen, "jpn_Jpan")) &&
                     (!strcmp(strchr(pl->tgt_lang, '_'), "_Jpan") || !strncmp(pl->tgt_lang, "zho_", 4));
    if (shares_han || guard_already_in_target(src, pl->src_lang, pl->tgt_lang)) {
        it->spoken = strdup(src);
        it->how = PIPELINE_SAME_SCRIPT;
        pthread_mutex_lock(&pl->smu);
        pl->st.same_script++;
        pthread_mutex_unlock(&pl->smu);
        return;
    }
    /* A language the model does not translate from (Korean, Arabic to the
     * demo model): fed to it as the source language, it came back as an
     * invented sentence ("今しかない。" for "all tests passed"). Read as
     * written when the voice for untranslated sentences can, else a notice. */
    if (seen && !seen_known && strcmp(seen, pl->tgt_lang) != 0) {
        tts_synth *v = pl->p.source_synth ? pl->p.source_synth : pl->p.synth;
        if (!tts_reads_lang(v, seen)) { not_read(pl, it, seen, "neither the model nor the voice reads"); return; }
        emit_log(pl, it->seq, "sentence %llu: written in %s, which the model does not translate from; "
                 "speaking the source", (unsigned long long)it->seq, seen);
        it->spoken = strdup(src);
        it->how = PIPELINE_FALLBACK;
        pthread_mutex_lock(&pl->smu);
        pl->st.fallbacks++;
        pthread_mutex_unlock(&pl->smu);
        return;
    }
    const char *hit = pl->cache ? mt_cache_get(pl->cache, src) : NULL;
    if (hit) {
        it->spoken = strdup(hit);
        it->how = PIPELINE_CACHE;
        pthread_mutex_lock(&pl->smu);
        pl->st.cache_hits++;
        pthread_mutex_unlock(&pl->smu);
        return;
    }
    stts_error err;
    stts_error_clear(&err);
    int beams = pl->p.num_beams > 0 ? pl->p.num_beams : 1;
    /* identifiers, paths and numbers go through as stand-ins and come back verbatim */
    protect_map pm = {0};
    char *prot = NULL;
    int protected_ = pl->p.protect && pl->p.force_length <= 0 ? protect_apply(src, pl->tgt_lang, &pm, &prot) : 0;
    const char *mt_in = protected_ > 0 ? prot : src;
    for (int attempt = 0; attempt < 2; attempt++) {
        int32_t *ids = NULL;
        int n_ids = 0, hit_max = 0;
        char *out = NULL;
        if (stts_fault("translate_oom_seq") == (long)it->seq)   /* TEST-ONLY fault injection */
            stts_error_set(&err, STTS_ERR_NOMEM, "out of memory (injected fault)");
        else
            out = engine_translate(pl, it, mt_in, src_lang, beams, &ids, &n_ids, &hit_max, &err);
        if (!out) {
            if (is_cancelled(pl) || is_dropped(it)) { protect_clear(&pm); free(prot); return; }
            emit_log(pl, it->seq, "sentence %llu: translation failed (%s); speaking the source",
                     (unsigned long long)it->seq, err.msg);
            it->error = "translation";
            pthread_mutex_lock(&pl->smu);
            pl->st.translate_errors++;
            pthread_mutex_unlock(&pl->smu);
            break;
        }
        char why[128] = "";
        int bad = pl->p.guard && pl->p.force_length <= 0 &&
                  guard_check(mt_in, out, ids, n_ids, hit_max, src_lang, pl->tgt_lang, why, sizeof why);
        free(ids);
        if (!bad && protected_ > 0) {
            char *back = protect_restore(out, &pm);
            free(out);
            if (!back) { protect_clear(&pm); free(prot); return; }   /* out of memory: it->spoken stays NULL */
            out = back;
        }
        if (!bad) {
            protect_clear(&pm);
            free(prot);
            it->spoken = out;
            it->how = attempt ? PIPELINE_MT_RETRY : PIPELINE_MT;
            if (pl->cache) mt_cache_put(pl->cache, src, out);
            if (attempt) {
                pthread_mutex_lock(&pl->smu);
                pl->st.retries++;
                pthread_mutex_unlock(&pl->smu);
            }
            return;
        }
        emit_log(pl, it->seq, "sentence %llu: %s translation rejected (%s): \"%s\"", (unsigned long long)it->seq,
                 beams > 1 ? "beam-search" : "greedy", why, out);
        free(out);
        if (beams >= 4) break;
        beams = 4;   /* the retry: beam search escapes most greedy loops */
    }
    protect_clear(&pm);
    free(prot);
    it->spoken = strdup(src);
    it->how = PIPELINE_FALLBACK;
    pthread_mutex_lock(&pl->smu);
    pl->st.fallbacks++;
    pthread_mutex_unlock(&pl->smu);
    emit_log(pl, it->seq, "sentence %llu: speaking the source text instead", (unsigned long long)it->seq);
}

static void *translate_main(void *arg) {
    pipeline *pl = arg;
    uint64_t rng = pl->p.test_seed * 0x9E3779B97F4A7C15ull + 1;
    item *it;
    while ((it = tq_pop(pl, &pl->q_text))) {
        if (is_dropped(it)) { pl->last_not_read = 0; drop_item(pl, it); continue; }
        test_delay(pl, &rng);
        it->t_tr_start = stts_now_ns();
        if (is_stale(pl, it, &pl->q_text)) {
            it->skipped = 1;
            it->spoken = strdup("");
            pl->last_not_read = 0;
        } else {
            translate_item(pl, it);
            pl->last_not_read = it->how == PIPELINE_NOT_READ;
        }
        it->t_tr_end = stts_now_ns();
        if (!it->spoken && is_dropped(it) && !is_cancelled(pl)) { drop_item(pl, it); continue; }
        if (!it->spoken) {   /* cancelled, or out of memory */
            if (!is_cancelled(pl)) {
                emit_log(pl, it->seq, "out of memory in the translate stage; stopping");
                pipeline_cancel(pl);   /* or the producer would block on a full queue forever */
            }
            live_free(pl, it);
            break;
        }
        pthread_mutex_lock(&pl->smu);
        pl->st.translated++;
        pl->last_translate_ms = ms(it->t_tr_start, it->t_tr_end);
        if (!it->skipped && (it->how == PIPELINE_MT || it->how == PIPELINE_MT_RETRY || it->how == PIPELINE_FALLBACK))
            push_double(&pl->d_translate, &pl->n_translate, &pl->cap_translate, pl->last_translate_ms);
        pthread_mutex_unlock(&pl->smu);
        if (tq_push(pl, &pl->q_spoken, it) != 0) { live_free(pl, it); break; }
    }
    tq_close(&pl->q_spoken);
    return NULL;
}

/* ---- synth stage -------------------------------------------------------------------- */

typedef struct {
    pipeline *pl;
    item *it;
} chunk_ctx;

/* Nanoseconds spanned by an item's first k samples. The audio queue is
 * accounted with differences of this, which telescope: adding and removing
 * in any slices leaves no rounding drift, whatever each item's rate. */
static uint64_t samples_ns(size_t k, int rate) { return rate > 0 ? (uint64_t)k * 1000000000ull / (uint64_t)rate : 0; }
static uint64_t span_ns(const item *it, size_t k) {
    if (it->rate2 > 0 && k > it->rate2_from)
        return samples_ns(it->rate2_from, it->rate) + samples_ns(k - it->rate2_from, it->rate2);
    return samples_ns(k, it->rate);
}

/* The rate of sample k, and where its run of one rate ends (exclusive). */
static int rate_at(const item *it, size_t k) { return it->rate2 > 0 && k >= it->rate2_from ? it->rate2 : it->rate; }
static size_t run_end(const item *it, size_t k) {
    return it->rate2 > 0 && k < it->rate2_from ? it->rate2_from : it->n_pcm;
}

static int on_chunk(void *user, const int16_t *pcm, size_t n) {
    chunk_ctx *c = user;
    pipeline *pl = c->pl;
    item *it = c->it;
    pthread_mutex_lock(&pl->amu);
    if (!it->t_first_chunk) it->t_first_chunk = stts_now_ns();
    if (it->n_pcm + n > it->cap_pcm) {
        size_t nc = it->cap_pcm ? it->cap_pcm * 2 : 16384;
        while (nc < it->n_pcm + n) nc *= 2;
        int16_t *np = realloc(it->pcm, nc * sizeof *np);
        if (!np) { pthread_mutex_unlock(&pl->amu); return 1; }
        it->pcm = np;
        it->cap_pcm = nc;
    }
    memcpy(it->pcm + it->n_pcm, pcm, n * sizeof *pcm);
    pl->queued_ns += span_ns(it, it->n_pcm + n) - span_ns(it, it->n_pcm);
    it->n_pcm += n;
    pthread_cond_broadcast(&pl->a_data);
    /* Back-pressure: hold synthesis while enough audio waits to be played. */
    while (pl->queued_ns > pl->cap_ns && !is_cancelled(pl) && !is_dropped(it))
        pthread_cond_wait(&pl->a_space, &pl->amu);
    int stop = is_cancelled(pl) || is_dropped(it);
    pthread_mutex_unlock(&pl->amu);
    return stop;
}

/* A sentence whose translation failed (PIPELINE_FALLBACK): the notice in
 * the listener's language, a pause, then the source text read by a voice of
 * the source language when the caller gave one (p.source_synth), else by the
 * spoken voice. One item, one metrics record: nothing is said twice. */
static stts_status synth_fallback(pipeline *pl, item *it, chunk_ctx *ctx, stts_error *err) {
    if (pl->fail_notice && pl->fail_notice[0]) {
        pthread_mutex_lock(&pl->amu);   /* read by the player once audio is there */
        it->notice = pl->fail_notice;
        pthread_mutex_unlock(&pl->amu);
        stts_status st = tts_synthesize(pl->p.synth, pl->fail_notice, on_chunk, ctx, &it->drop, err);
        if (st == STTS_ERR_CANCELLED) return st;
        if (st != STTS_OK) {
            emit_log(pl, it->seq, "sentence %llu: the translation-failed notice could not be said: %s",
                     (unsigned long long)it->seq, err->msg);
            stts_error_clear(err);
        } else {
            static const int16_t zeros[1024];
            size_t gap = (size_t)(0.25 * it->rate);   /* a pause between notice and sentence */
            while (gap > 0) {
                size_t n = gap < 1024 ? gap : 1024;
                if (on_chunk(ctx, zeros, n)) return stts_error_set(err, STTS_ERR_CANCELLED, "stopped");
                gap -= n;
            }
        }
    }
    tts_synth *v = pl->p.source_synth ? pl->p.source_synth : pl->p.synth;
    if (tts_sample_rate(v) != it->rate) {   /* the source voice's samples keep their own rate */
        pthread_mutex_lock(&pl->amu);
        it->rate2 = tts_sample_rate(v);
        it->rate2_from = it->n_pcm;
        pthread_mutex_unlock(&pl->amu);
    }
    return tts_synthesize(v, it->spoken, on_chunk, ctx, &it->drop, err);
}

static void *synth_main(void *arg) {
    pipeline *pl = arg;
    uint64_t rng = pl->p.test_seed * 0xD1B54A32D192ED03ull + 2;
    item *it;
    while ((it = tq_pop(pl, &pl->q_spoken))) {
        if (is_dropped(it) && !is_cancelled(pl)) { drop_item(pl, it); continue; }
        test_delay(pl, &rng);
        pthread_mutex_lock(&pl->amu);
        while (pl->queued_ns > pl->cap_ns && !is_cancelled(pl) && !is_dropped(it))
            pthread_cond_wait(&pl->a_space, &pl->amu);
        if (is_cancelled(pl)) { pthread_mutex_unlock(&pl->amu); live_free(pl, it); break; }
        if (is_dropped(it)) { pthread_mutex_unlock(&pl->amu); drop_item(pl, it); continue; }
        it->next = NULL;
        /* The buffer is tagged with the rate the voice makes; nothing
         * converts it before the sink. */
        it->rate = tts_sample_rate(pl->p.synth);
        if (pl->a_tail) pl->a_tail->next = it; else pl->a_head = it;
        pl->a_tail = it;
        pthread_cond_broadcast(&pl->a_data);
        pthread_mutex_unlock(&pl->amu);

        double want = atomic_load(&pl->speed);
        if (want > 0 && want != pl->speed_applied) {   /* pipeline_set_speed: from this sentence on */
            stts_error serr;
            if (tts_set_speed(pl->p.synth, want, &serr) != STTS_OK)
                emit_log(pl, it->seq, "speed %.2f not applied: %s", want, serr.msg);
            if (pl->p.source_synth) tts_set_speed(pl->p.source_synth, want, &serr);
            pl->speed_applied = want;
        }
        it->t_syn_start = stts_now_ns();
        chunk_ctx ctx = {pl, it};
        stts_error err;
        stts_error_clear(&err);
        stts_status st;
        if (it->skipped || is_stale(pl, it, &pl->q_spoken)) {
            pthread_mutex_lock(&pl->amu);
            it->skipped = 1;
            it->synth_done = 1;
            pthread_cond_broadcast(&pl->a_data);
            pthread_mutex_unlock(&pl->amu);
            continue;   /* the player owns it now */
        }
        if (stts_fault("synth_fail_seq") == (long)it->seq)   /* TEST-ONLY fault injection */
            st = stts_error_set(&err, STTS_ERR_INTERNAL, "injected fault");
        else if (it->how == PIPELINE_FALLBACK)
            st = synth_fallback(pl, it, &ctx, &err);
        else
            st = tts_synthesize(pl->p.synth, it->spoken, on_chunk, &ctx, &it->drop, &err);
        uint64_t t_end = stts_now_ns();
        int failed = st != STTS_OK && st != STTS_ERR_CANCELLED && st != STTS_ERR_INVALID_ARG;
        if (failed) {
            emit_log(pl, it->seq, "sentence %llu: synthesis failed: %s", (unsigned long long)it->seq, err.msg);
            pthread_mutex_lock(&pl->smu);
            pl->st.synth_errors++;
            pthread_mutex_unlock(&pl->smu);
        }
        /* Once synth_done is set the player may finish and free the item:
         * take what the statistics need first. */
        pthread_mutex_lock(&pl->amu);
        uint64_t t_start = it->t_syn_start, t_first = it->t_first_chunk;
        it->t_syn_end = t_end;
        it->synth_done = 1;
        it->synth_failed = st != STTS_OK;
        if (failed) it->error = "synthesis";
        it = NULL;
        pthread_cond_broadcast(&pl->a_data);
        pthread_mutex_unlock(&pl->amu);
        pthread_mutex_lock(&pl->smu);
        pl->st.synthesized++;
        if (t_first) {
            pl->last_synth_ms = ms(t_start, t_first);
            push_double(&pl->d_synth_first, &pl->n_synth_first, &pl->cap_synth_first, pl->last_synth_ms);
        }
        pthread_mutex_unlock(&pl->smu);
        if (is_cancelled(pl)) break;
    }
    pthread_mutex_lock(&pl->amu);
    pl->a_closed = 1;
    pthread_cond_broadcast(&pl->a_data);
    pthread_mutex_unlock(&pl->amu);
    return NULL;
}

/* ---- player stage ---------------------------------------------------------------------- */

/* One JSON line per item, built in memory and handed to the kernel in one
 * write(): a crash or kill never leaves half a line, and with O_APPEND
 * several writers never interleave inside a line. */
static void write_metrics(pipeline *pl, item *it, int idle) {
    if (!pl->p.metrics) return;
    char *line = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&line, &len);
    if (!f) return;
    /* json_dumps would need jansson here; the strings are escaped by hand
     * (quotes, backslashes and control characters; UTF-8 passes through). */
    fprintf(f, "{\"seq\":%llu,\"message_id\":\"", (unsigned long long)it->seq);
    const char *strs[4] = {it->message_id, it->source, it->spoken, it->session};
    for (int k = 0; k < (it->session ? 4 : 3); k++) {
        if (k == 1) fprintf(f, "\",\"kind\":\"%s\",\"how\":\"%s\",\"source\":\"", text_kind_name(it->kind),
                            pipeline_how_name(it->how));
        if (k == 2) fputs("\",\"spoken\":\"", f);
        if (k == 3) fputs("\",\"session\":\"", f);
        for (const unsigned char *s = (const unsigned char *)(strs[k] ? strs[k] : ""); *s; s++) {
            if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
            else if (*s < 0x20) fprintf(f, "\\u%04x", *s);
            else fputc(*s, f);
        }
    }
    fprintf(f, "\",\"skipped\":%s,\"idle\":%s,\"audio_ms\":%.3f", it->skipped ? "true" : "false",
            idle ? "true" : "false", (double)span_ns(it, it->n_pcm) / 1e6);
    /* Only when set, so pipe mode's records keep their keys. */
    if (it->stopped) fprintf(f, ",\"stopped\":true,\"played_ms\":%.3f", (double)span_ns(it, it->played) / 1e6);
    if (it->replay) fputs(",\"replay\":true", f);
    if (it->how == PIPELINE_FALLBACK) {   /* spoken untranslated, after the notice (if it was said) */
        fputs(",\"untranslated\":true,\"notice\":", f);
        if (it->notice) {
            fputc('"', f);
            for (const unsigned char *s = (const unsigned char *)it->notice; *s; s++) {
                if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
                else if (*s < 0x20) fprintf(f, "\\u%04x", *s);
                else fputc(*s, f);
            }
            fputc('"', f);
        } else {
            fputs("null", f);
        }
    }
    const struct { const char *k; uint64_t v; } ts[] = {
        {"t_input_ms", it->t_input}, {"t_emit_ms", it->t_emit}, {"t_translated_ms", it->t_tr_end},
        {"t_first_chunk_ms", it->t_first_chunk}, {"t_first_out_ms", it->t_first_out},
        {"t_play_end_ms", it->t_play_end}};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        if (ts[i].v) fprintf(f, ",\"%s\":%.3f", ts[i].k, ((double)ts[i].v - (double)pl->t0) / 1e6);
        else fprintf(f, ",\"%s\":null", ts[i].k);
    }
    fprintf(f, ",\"translate_ms\":%.3f,\"synth_first_ms\":%.3f", ms(it->t_tr_start, it->t_tr_end),
            it->t_first_chunk ? ms(it->t_syn_start, it->t_first_chunk) : -1.0);
    if (it->t_first_out) fprintf(f, ",\"ready_to_first_out_ms\":%.3f", ms(it->t_emit, it->t_first_out));
    fprintf(f, ",\"output\":\"%s\"", pl->p.sink_is_file ? "file" : "device");
    if (it->error) fprintf(f, ",\"error\":\"%s\"", it->error);
    fputs("}\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) { free(line); return; }
    int fd = fileno(pl->p.metrics);
    ssize_t k = -1;
    int e = 0;
    if (fd >= 0) {
        fflush(pl->p.metrics);
        struct stat sb;
        off_t before = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) ? sb.st_size : -1;
        while ((k = write(fd, line, len)) < 0 && errno == EINTR) {}
        e = k < 0 ? errno : ENOSPC;
        /* A short write (disk full) would leave half a line: take it back. */
        if (k >= 0 && (size_t)k < len && before >= 0 && ftruncate(fd, before) != 0) {}
    } else {
        k = fwrite(line, 1, len, pl->p.metrics) == len && fflush(pl->p.metrics) == 0 ? (ssize_t)len : -1;
        e = EIO;
    }
    if ((k < 0 || (size_t)k != len) && !pl->metrics_failed) {
        pl->metrics_failed = 1;
        emit_log(pl, it->seq, "cannot write the metrics line of sentence %llu: %s (later lines are still tried)",
                 (unsigned long long)it->seq, strerror(e));
    }
    free(line);
}

/* Metrics of a played (or skipped) item; frees it. Runs on the player thread. */
static void finish_item(pipeline *pl, item *it) {
    /* "Idle": nothing was playing when the sentence became ready, so its
     * ready -> first-sample time is processing latency, not queueing. */
    int idle = !it->skipped && it->t_first_out && pl->last_play_end <= it->t_emit;
    if (!it->skipped && it->t_play_end) pl->last_play_end = it->t_play_end;
    write_metrics(pl, it, idle);
    pthread_mutex_lock(&pl->smu);
    if (it->skipped) pl->st.skipped++;
    else if (it->stopped) pl->st.stopped++;
    else if (it->t_first_out) pl->st.played++;
    if (it->error && strcmp(it->error, "audio") == 0) pl->st.audio_errors++;
    if (idle) {
        push_double(&pl->d_ready_out, &pl->n_ready_out, &pl->cap_ready_out, ms(it->t_emit, it->t_first_out));
        pl->st.idle_samples++;
    }
    pl->in_flight--;
    pthread_mutex_unlock(&pl->smu);
    pthread_mutex_lock(&pl->amu);   /* a stop reads it under amu: never a freed item */
    if (pl->w_item == it) pl->w_item = NULL;
    if (it->replay) pl->replay_waiting--;
    pthread_mutex_unlock(&pl->amu);
    live_free(pl, it);
}

/* Resolves playback marks of played items, in order; with force, whatever
 * is unresolved takes the current time (after a drain, or on cancel). */
static void resolve_done(pipeline *pl, int force) {
    while (pl->done_head) {
        item *it = pl->done_head;
        if (it->marked) {
            uint64_t h0 = 0, p0 = 0, h1 = 0, p1 = 0;
            int ok0 = audio_mark_query(pl->p.sink, it->mark_start, &h0, &p0);
            int ok1 = audio_mark_query(pl->p.sink, it->mark_end, &h1, &p1);
            if (!(ok0 && ok1) && !force) break;
            uint64_t now = stts_now_ns();
            it->t_first_out = ok0 ? h0 : now;
            it->t_play_end = ok1 ? p1 : now;
        }
        pl->done_head = it->next;
        if (!pl->done_head) pl->done_tail = NULL;
        finish_item(pl, it);
    }
}

static void done_append(pipeline *pl, item *it) {
    it->next = NULL;
    if (pl->done_tail) pl->done_tail->next = it; else pl->done_head = it;
    pl->done_tail = it;
}

/* Writes n samples, pacing like a device when simulate_realtime is set.
 * A failing sink is said once per outage (and once when it works again);
 * meanwhile writes fail fast, so the pipeline keeps reading its input. */
static int play_samples(pipeline *pl, const item *it, const int16_t *pcm, size_t n, int rate, uint64_t seq) {
    stts_error err;
    stts_error_clear(&err);
    stts_status st = audio_write(pl->p.sink, pcm, n, rate, &err);
    if (st == STTS_ERR_CANCELLED) return -1;   /* ended by a stop's, skip's or cancel's abort: no output failure */
    if (st != STTS_OK) {
        if (!is_cancelled(pl) && !pl->sink_down) {
            pl->sink_down = 1;
            pthread_mutex_lock(&pl->smu);   /* for pipeline_get_stats: a daemon's status says it */
            snprintf(pl->st.output_error, sizeof pl->st.output_error, "%.250s", err.msg);
            pthread_mutex_unlock(&pl->smu);
            emit_log(pl, seq, "audio output failed at sentence %llu: %s; still reading input, speech is dropped "
                     "until the output works again", (unsigned long long)seq, err.msg);
        }
        return -1;
    }
    if (pl->sink_down) {
        pl->sink_down = 0;
        pthread_mutex_lock(&pl->smu);
        pl->st.output_error[0] = '\0';
        pthread_mutex_unlock(&pl->smu);
        emit_log(pl, seq, "audio output works again; speaking from sentence %llu on", (unsigned long long)seq);
    }
    /* Paced by the samples' own rate: their duration is the same at any
     * rate the sink converts them to. */
    if (pl->p.simulate_realtime && rate > 0) {
        uint64_t left = (uint64_t)n * 1000000000ull / (uint64_t)rate;
        while (left > 0 && !is_cancelled(pl) && !(it && is_dropped(it))) {   /* short slices keep stop prompt */
            uint64_t step = left < 5000000ull ? left : 5000000ull;
            sleep_ns(step);
            left -= step;
        }
    }
    return is_cancelled(pl) || (it && is_dropped(it)) ? -1 : 0;
}

/* --max-lag: before starting a sentence, drop the oldest fully synthesized
 * unspoken ones while the audio waiting exceeds the limit. Called with amu
 * held; returns how many were skipped (moved to the done list). */
static int skip_backlog(pipeline *pl) {
    if (pl->p.max_lag_s <= 0) return 0;
    int skipped = 0;
    /* Skipped upstream (stale): nothing to play. */
    while (pl->a_head && pl->a_head->skipped && pl->a_head->synth_done) {
        item *it = pl->a_head;
        pl->a_head = it->next;
        if (!pl->a_head) pl->a_tail = NULL;
        done_append(pl, it);
        skipped++;
    }
    double limit = pl->p.max_lag_s * 1e9;
    while (pl->a_head && pl->a_head->next && pl->a_head->synth_done && pl->a_head->played == 0 &&
           !is_dropped(pl->a_head) && (double)pl->queued_ns > limit) {   /* a stopped one stays stopped */
        item *it = pl->a_head;
        pl->a_head = it->next;
        pl->queued_ns -= span_ns(it, it->n_pcm);
        it->skipped = 1;
        done_append(pl, it);
        skipped++;
    }
    if (skipped) pthread_cond_broadcast(&pl->a_space);
    return skipped;
}

/* Keeps a copy of a played sentence for pipeline_replay. */
static void remember(pipeline *pl, const item *it) {
    /* the daemon's own notices between sentences ("Another session.",
     * "Skipping ahead.") are no sentences to say again: `replay 2` said the
     * cue and the last sentence, not the two last sentences */
    if (it->n_pcm == 0 || it->kind == TEXT_NOTICE_SKIP || (it->flags & INGEST_SENT_NO_REPLAY)) return;
    item *h = calloc(1, sizeof *h);
    if (!h) return;
    h->pcm = malloc(it->n_pcm * sizeof *h->pcm);
    h->source = strdup(it->source ? it->source : "");
    h->spoken = strdup(it->spoken ? it->spoken : "");
    h->message_id = strdup(it->message_id ? it->message_id : "");
    h->session = it->session ? strdup(it->session) : NULL;
    if (!h->pcm || !h->source || !h->spoken || !h->message_id || (it->session && !h->session)) {
        item_free(h);
        return;
    }
    memcpy(h->pcm, it->pcm, it->n_pcm * sizeof *h->pcm);
    h->rate = it->rate;
    h->rate2 = it->rate2;
    h->rate2_from = it->rate2_from;
    h->n_pcm = h->cap_pcm = it->n_pcm;
    h->seq = it->seq;
    h->kind = it->kind;
    h->flags = it->flags;
    h->how = it->how;
    pthread_mutex_lock(&pl->amu);
    if (pl->n_history == HISTORY) {
        item_free(pl->history[0]);
        memmove(pl->history, pl->history + 1, (HISTORY - 1) * sizeof pl->history[0]);
        pl->n_history--;
    }
    pl->history[pl->n_history++] = h;
    pthread_mutex_unlock(&pl->amu);
}

/* The head item was stopped: once synthesis is done with it, it leaves the
 * audio list (its unplayed samples with it) for the done list. Called and
 * returns with amu held; nonzero when the pipeline was cancelled meanwhile. */
static int stop_playing(pipeline *pl, item *it) {
    while (!it->synth_done && !is_cancelled(pl)) pthread_cond_wait(&pl->a_data, &pl->amu);
    if (is_cancelled(pl)) return 1;
    pl->queued_ns -= span_ns(it, it->n_pcm) - span_ns(it, it->played);
    pl->a_head = it->next;
    if (!pl->a_head) pl->a_tail = NULL;
    pl->cur = NULL;
    if (it->skipped) pl->skip_pending++;   /* skipped just before the stop reached it: one outcome, skipped */
    else it->stopped = 1;
    if (it->played == 0) it->marked = 0;
    pthread_cond_broadcast(&pl->a_space);
    pthread_mutex_unlock(&pl->amu);
    /* heard in part: a replay after the stop or skip says it whole (it
     * replayed the sentence before it, the one cut never kept) */
    if (it->stopped && it->played > 0) remember(pl, it);
    done_append(pl, it);
    resolve_done(pl, 0);
    pthread_mutex_lock(&pl->amu);
    return 0;
}

/* One line for the sentences skipped since the last one heard, and (audible)
 * the "Skipping ahead." notice before the next one. */
static void announce_skips(pipeline *pl, uint64_t next_seq, int audible) {
    if (!pl->skip_pending) return;
    int n = pl->skip_pending;
    pl->skip_pending = 0;
    emit_log(pl, next_seq, "behind by more than %.1f s: skipped %d older sentence%s", pl->p.max_lag_s, n,
             n == 1 ? "" : "s");
    if (audible && pl->skip_pcm) {
        stts_error err;
        play_samples(pl, NULL, pl->skip_pcm, pl->skip_n, pl->skip_rate, next_seq);
        audio_silence(pl->p.sink, pl->p.gap_ms, &err);
    }
}

static void *play_main(void *arg) {
    pipeline *pl = arg;
    uint64_t rng = pl->p.test_seed * 0x94D049BB133111EBull + 3;
    enum { SLICE = 2048 };
    int16_t buf[SLICE];
    stts_error err;
    pthread_mutex_lock(&pl->amu);
    for (;;) {
        while (!pl->a_head && !pl->a_closed && !is_cancelled(pl)) pthread_cond_wait(&pl->a_data, &pl->amu);
        if (is_cancelled(pl) || (!pl->a_head && pl->a_closed)) break;
        pl->cur = NULL;   /* nothing taken yet: --max-lag may skip the head */
        int skipped = skip_backlog(pl);
        if (skipped) {
            pl->skip_pending += skipped;   /* announced before the next sentence heard */
            pthread_mutex_unlock(&pl->amu);
            resolve_done(pl, 0);
            pthread_mutex_lock(&pl->amu);
            continue;
        }
        item *it = pl->a_head;
        pl->cur = it;   /* from here on a replay goes after it */
        /* Wait for the first samples (or the end of a silent item). */
        while (it->n_pcm == 0 && !it->synth_done && !is_cancelled(pl) && !is_dropped(it))
            pthread_cond_wait(&pl->a_data, &pl->amu);
        if (is_cancelled(pl)) break;
        if (is_dropped(it)) {   /* stopped before a sample was played */
            if (stop_playing(pl, it)) break;
            continue;
        }
        if (it->skipped) {   /* found stale by the synth stage meanwhile */
            pl->a_head = it->next;
            if (!pl->a_head) pl->a_tail = NULL;
            pl->cur = NULL;
            pl->skip_pending++;
            pthread_mutex_unlock(&pl->amu);
            done_append(pl, it);
            resolve_done(pl, 0);
            pthread_mutex_lock(&pl->amu);
            continue;
        }
        if (pl->aborting) {
            /* A stop or skip is aborting the device (for an item before this
             * one): write nothing until it has, or it would discard this
             * item's first slice too. Then look again from the top. */
            if (pl->p.test_on_hold) pl->p.test_on_hold(pl->p.test_hold_user);
            pthread_cond_wait(&pl->a_data, &pl->amu);
            continue;
        }
        int have_audio = it->n_pcm > 0;
        /* Set before the first write, under amu: a stop from here on sees
         * that this item's audio may be in the device. */
        if (have_audio) pl->w_item = it;
        pthread_mutex_unlock(&pl->amu);
        test_delay(pl, &rng);
        if (have_audio) {
            announce_skips(pl, it->seq, 1);
            int again = it->t_play_start != 0;   /* started again after a skip (rewind): said once */
            if (!again) it->t_play_start = stts_now_ns();
            if (pl->p.on_event && !again) {
                pipeline_event ev = {.kind = PIPELINE_EV_PLAY, .seq = it->seq, .source = it->source,
                                     .spoken = it->spoken, .how = it->how, .notice = it->notice};
                pl->p.on_event(pl->p.user, &ev);
            }
            if (audio_mark(pl->p.sink, &it->mark_start, &err) == STTS_OK) it->marked = 1;
        }
        /* Stream the item's PCM as the synth thread appends it. A sink that
         * fails mid-sentence drops the rest of the item, but the item is only
         * released once synthesis is done with it. */
        int sink_failed = 0;
        pthread_mutex_lock(&pl->amu);
        for (;;) {
            /* Paused: hold before the next slice, so resuming continues
             * from the very next sample. */
            while (pl->paused && !is_cancelled(pl) && !is_dropped(it) && !it->rewind)
                pthread_cond_wait(&pl->a_data, &pl->amu);
            if (is_cancelled(pl) || is_dropped(it) || it->rewind) break;
            size_t avail = run_end(it, it->played) - it->played;
            if (avail == 0) {
                if (it->synth_done) break;
                pthread_cond_wait(&pl->a_data, &pl->amu);
                continue;
            }
            size_t n = avail < SLICE ? avail : SLICE;
            int rc = 0;
            if (!sink_failed) {
                memcpy(buf, it->pcm + it->played, n * sizeof *buf);
                int rate = rate_at(it, it->played);
                pthread_mutex_unlock(&pl->amu);
                rc = play_samples(pl, it, buf, n, rate, it->seq);
                pthread_mutex_lock(&pl->amu);
            }
            pl->queued_ns -= span_ns(it, it->played + n) - span_ns(it, it->played);
            it->played += n;
            pthread_cond_broadcast(&pl->a_space);
            if (rc != 0 && (is_cancelled(pl) || is_dropped(it) || it->rewind)) break;
            if (rc != 0) sink_failed = 1;
        }
        if (is_cancelled(pl)) break;   /* the item stays listed; pipeline_free releases it */
        if (it->rewind && !is_dropped(it)) {
            /* Skipped while the one before was still heard: what the device
             * holds (that one's end, this one's beginning) is discarded, and
             * this one starts again from its first sample. The player aborts
             * too, as for a stop: a slice may have been written after the
             * skip's abort. */
            pthread_mutex_unlock(&pl->amu);
            audio_abort(pl->p.sink);
            pthread_mutex_lock(&pl->amu);
            pl->queued_ns += span_ns(it, it->played);   /* its samples wait again */
            it->played = 0;
            it->marked = 0;
            it->rewind = 0;
            continue;   /* from the top: after the skip's abort (aborting), this item again */
        }
        if (is_dropped(it)) {
            if (it->played > 0) {
                /* The stop's abort may have come between the drop check above
                 * and a write (that slice then plays after it): the player, the
                 * one writer, discards what the device holds before it writes
                 * anything else. */
                pthread_mutex_unlock(&pl->amu);
                audio_abort(pl->p.sink);
                pthread_mutex_lock(&pl->amu);
            }
            if (have_audio && it->marked) audio_mark(pl->p.sink, &it->mark_end, &err);
            else it->marked = 0;
            if (stop_playing(pl, it)) break;
            continue;
        }
        pl->a_head = it->next;
        if (!pl->a_head) pl->a_tail = NULL;
        pl->cur = NULL;
        it->ended = 1;
        pthread_mutex_unlock(&pl->amu);
        if (sink_failed && !it->error) it->error = "audio";
        if (have_audio && !sink_failed) {
            if (audio_mark(pl->p.sink, &it->mark_end, &err) != STTS_OK) it->marked = 0;
            audio_silence(pl->p.sink, pl->p.gap_ms, &err);
            remember(pl, it);
        } else {
            it->marked = 0;
        }
        done_append(pl, it);
        resolve_done(pl, 0);
        pthread_mutex_lock(&pl->amu);
    }
    pthread_mutex_unlock(&pl->amu);
    /* Cancelled: a slice whose write began just after cancel's abort would
     * still be played when the sink is closed (audio_close drains). The
     * player, the one writer, discards what the device holds as it leaves. */
    if (is_cancelled(pl)) audio_abort(pl->p.sink);
    if (!is_cancelled(pl)) announce_skips(pl, 0, 0);
    if (!is_cancelled(pl)) audio_drain(pl->p.sink, &err);
    resolve_done(pl, 1);
    return NULL;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static int discard_chunk(void *user, const int16_t *pcm, size_t n) {
    (void)user; (void)pcm; (void)n;
    return 0;
}

typedef struct { int16_t *pcm; size_t n, cap; } pcm_buf;

static int collect_chunk(void *user, const int16_t *pcm, size_t n) {
    pcm_buf *b = user;
    if (b->n + n > b->cap) {
        size_t nc = (b->n + n) * 2;
        int16_t *np = realloc(b->pcm, nc * sizeof *np);
        if (!np) return 1;
        b->pcm = np;
        b->cap = nc;
    }
    memcpy(b->pcm + b->n, pcm, n * sizeof *pcm);
    b->n += n;
    return 0;
}

/* Loads caches and code paths before the first real sentence, so it is as
 * fast as the rest; also prepares the --max-lag notice. */
static stts_status warm_up(pipeline *pl, stts_error *err) {
    uint64_t t = stts_now_ns();
    const char *nl = pl->p.notice_lang ? pl->p.notice_lang : pl->tgt_lang;
    char buf[256];
    const char *lu = NULL;
    /* Notices in another language than the one spoken (no phrase table for
     * it): each phrase without arguments is translated now, once, and kept. */
    if (pl->p.translate && pl->p.force_length <= 0) {
        for (int k = 0; k < TEXT_PH__COUNT; k++) {
            text_phrase_format(nl, (text_phrase_id)k, "\x01", -987654, buf, sizeof buf, &lu);
            if (!buf[0] || strcmp(lu, pl->tgt_lang) == 0 || strchr(buf, '\x01') || strstr(buf, "-987654")) continue;
            int32_t *ids = NULL;
            int n = 0, hit = 0;
            char *out = engine_translate(pl, NULL, buf, pl->src_lang, 1, &ids, &n, &hit, err);
            free(ids);
            if (!out) return err->code ? err->code : STTS_ERR_INTERNAL;
            pl->notice_src[k] = strdup(buf);
            pl->notice_tr[k] = out;
            if (!pl->notice_src[k]) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
        }
    }
    /* The --max-lag notice, in the notice language (translated when that is not the spoken one). */
    text_phrase_format(nl, TEXT_PH_SKIPPING, NULL, 0, buf, sizeof buf, &lu);
    char *skip_text = strdup(pl->notice_tr[TEXT_PH_SKIPPING] && strcmp(lu, pl->tgt_lang) != 0
                                 ? pl->notice_tr[TEXT_PH_SKIPPING] : buf);
    if (!skip_text) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    int warmed = 0;
    for (int k = 0; k < TEXT_PH__COUNT; k++) warmed |= pl->notice_tr[k] != NULL;
    if (pl->p.translate && !warmed) {
        /* nothing translated above: one translation still warms the engine */
        int32_t *ids = NULL;
        int n = 0, hit = 0;
        char *out = engine_translate(pl, NULL, "Skipping ahead.", pl->src_lang, 1, &ids, &n, &hit, err);
        free(ids);
        if (!out) { free(skip_text); return err->code ? err->code : STTS_ERR_INTERNAL; }
        free(out);
    }
    stts_status st;
    if (pl->p.max_lag_s > 0) {
        pcm_buf b = {0};
        st = tts_synthesize(pl->p.synth, skip_text, collect_chunk, &b, NULL, err);
        pl->skip_pcm = b.pcm;
        pl->skip_n = b.n;
        pl->skip_rate = tts_sample_rate(pl->p.synth);
    } else {
        st = tts_synthesize(pl->p.synth, skip_text, discard_chunk, NULL, NULL, err);
    }
    free(skip_text);
    if (st != STTS_OK) return st;
    pl->st.warmup_ms = ms(t, stts_now_ns());
    return STTS_OK;
}

/* The notice before a sentence spoken untranslated, like the --max-lag one:
 * the notice language's phrase, or its warm-up translation when that language
 * is not the spoken one (no translation here: the engine may be what fails). */
static stts_status make_fail_notice(pipeline *pl, stts_error *err) {
    const char *nl = pl->p.notice_lang ? pl->p.notice_lang : pl->tgt_lang;
    char buf[256];
    const char *lu = NULL;
    text_phrase_format(nl, TEXT_PH_TRANSLATION_FAILED, NULL, 0, buf, sizeof buf, &lu);
    const char *tr = pl->notice_tr[TEXT_PH_TRANSLATION_FAILED];
    pl->fail_notice = strdup(tr && strcmp(lu, pl->tgt_lang) != 0 ? tr : buf);
    return pl->fail_notice ? STTS_OK : stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
}

/* The PIPELINE_NOT_READ notice, as the one above when translating; without
 * translation, in the spoken (source) language's table, English when it
 * has none (a phrase the voice may read badly, but never garbage). */
static stts_status make_not_read_notice(pipeline *pl, stts_error *err) {
    char buf[256];
    const char *lu = NULL;
    if (pl->p.translate) {
        const char *nl = pl->p.notice_lang ? pl->p.notice_lang : pl->tgt_lang;
        text_phrase_format(nl, TEXT_PH_NOT_READ, NULL, 0, buf, sizeof buf, &lu);
        const char *tr = pl->notice_tr[TEXT_PH_NOT_READ];
        pl->not_read_notice = strdup(tr && strcmp(lu, pl->tgt_lang) != 0 ? tr : buf);
    } else {
        text_phrase_format(pl->src_lang, TEXT_PH_NOT_READ, NULL, 0, buf, sizeof buf, &lu);
        pl->not_read_notice = strdup(buf);
    }
    return pl->not_read_notice ? STTS_OK : stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
}

stts_status pipeline_start(const pipeline_params *p, pipeline **out, stts_error *err) {
    *out = NULL;
    /* Checked before anything else (a caller that is not the CLI gets no
     * flag parsing): NaN fails "inside the range", and a NaN or infinite gap
     * made the sink write silence forever (audio_silence rounds it to a count). */
    if (p && !(p->gap_ms >= 0 && p->gap_ms <= 60000))
        return stts_error_set(err, STTS_ERR_INVALID_ARG,
                              "pipeline: gap_ms must be a number from 0 to 60000 (ms of silence between sentences), got %g",
                              p->gap_ms);
    /* The two other durations: an infinite or huge one overflowed the audio
     * queue's byte limit (a double too large for uint64_t: undefined), a NaN
     * lag was silently "off". 0 keeps each one's default meaning (no lag
     * limit; 60 s of queued audio); the range is --max-lag's. */
    if (p && !(p->max_lag_s >= 0 && p->max_lag_s <= 86400))
        return stts_error_set(err, STTS_ERR_INVALID_ARG,
                              "pipeline: max_lag_s must be a number from 0 (off) to 86400 seconds, got %g", p->max_lag_s);
    if (p && !(p->audio_queue_s >= 0 && p->audio_queue_s <= 86400))
        return stts_error_set(err, STTS_ERR_INVALID_ARG,
                              "pipeline: audio_queue_s must be a number from 0 (the default, 60) to 86400 seconds, got %g",
                              p->audio_queue_s);
    if (!p || !p->synth || !p->sink)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "pipeline: a synthesizer and an audio sink are required");
    if (p->translate && !p->model && !p->translate_fn)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "pipeline: translation is on but no model was given");
    if (p->translate && p->model) {
        if (nllb_model_lang_id(p->model, p->src_lang) < 0)
            return stts_error_set(err, STTS_ERR_INVALID_ARG,
                                  "unknown source language '%s' (see stream-tts translate --list-languages)", p->src_lang);
        if (nllb_model_lang_id(p->model, p->tgt_lang) < 0)
            return stts_error_set(err, STTS_ERR_INVALID_ARG,
                                  "unknown target language '%s' (see stream-tts translate --list-languages)", p->tgt_lang);
    }
    pipeline *pl = calloc(1, sizeof *pl);
    if (!pl) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    pl->p = *p;
    snprintf(pl->src_lang, sizeof pl->src_lang, "%s", p->src_lang ? p->src_lang : "eng_Latn");
    snprintf(pl->tgt_lang, sizeof pl->tgt_lang, "%s", p->tgt_lang ? p->tgt_lang : "jpn_Jpan");
    pl->p.src_lang = pl->src_lang;
    pl->p.tgt_lang = pl->tgt_lang;
    pl->t0 = stts_now_ns();
    double ahead = p->audio_queue_s > 0 ? p->audio_queue_s : 60;
    /* The audio queue must hold more than the lag limit, or there would
     * never be a backlog to skip. */
    if (p->max_lag_s > 0 && ahead < 2 * p->max_lag_s + 5) ahead = 2 * p->max_lag_s + 5;
    pl->cap_ns = (uint64_t)(ahead * 1e9);
    tq_init(&pl->q_text, p->text_queue);
    tq_init(&pl->q_spoken, p->text_queue);
    pthread_mutex_init(&pl->amu, NULL);
    pthread_cond_init(&pl->a_data, NULL);
    pthread_cond_init(&pl->a_space, NULL);
    pthread_mutex_init(&pl->smu, NULL);
    pthread_mutex_init(&pl->live_mu, NULL);
    stts_status st = STTS_OK;
    if (p->translate) {
        nllb_session_params sp = nllb_session_default_params();
        if (p->model) st = nllb_session_new(p->model, &sp, &pl->session, err);
        if (st == STTS_OK && p->cache_entries > 0 && !(pl->cache = mt_cache_new((size_t)p->cache_entries)))
            st = stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    }
    if (st == STTS_OK && (p->warmup || p->max_lag_s > 0)) st = warm_up(pl, err);   /* the --max-lag notice needs it */
    if (st == STTS_OK && p->translate) st = make_fail_notice(pl, err);
    if (st == STTS_OK) st = make_not_read_notice(pl, err);
    if (st == STTS_OK) {
        if (pthread_create(&pl->th_translate, NULL, translate_main, pl) != 0) {
            st = stts_error_set(err, STTS_ERR_INTERNAL, "pipeline: cannot start the translate thread");
        } else if (pthread_create(&pl->th_synth, NULL, synth_main, pl) != 0) {
            atomic_store(&pl->cancelled, 1);
            tq_wake(&pl->q_text);
            pthread_join(pl->th_translate, NULL);
            st = stts_error_set(err, STTS_ERR_INTERNAL, "pipeline: cannot start the synth thread");
        } else if (pthread_create(&pl->th_play, NULL, play_main, pl) != 0) {
            atomic_store(&pl->cancelled, 1);
            tq_wake(&pl->q_text);
            tq_wake(&pl->q_spoken);
            pthread_join(pl->th_translate, NULL);
            pthread_join(pl->th_synth, NULL);
            st = stts_error_set(err, STTS_ERR_INTERNAL, "pipeline: cannot start the player thread");
        } else {
            pl->started = 1;
        }
    }
    if (st != STTS_OK) {
        pl->joined = 1;
        pipeline_free(pl);
        return st;
    }
    *out = pl;
    return STTS_OK;
}

static char *dup_or_empty(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) { memcpy(d, s ? s : "", s ? n : 0); d[s ? n : 0] = '\0'; }
    return d;
}

stts_status pipeline_push(pipeline *pl, const ingest_sentence *s, stts_error *err) {
    return pipeline_push_session(pl, s, NULL, err);
}

stts_status pipeline_push_session(pipeline *pl, const ingest_sentence *s, const char *session, stts_error *err) {
    if (is_cancelled(pl)) return stts_error_set(err, STTS_ERR_CANCELLED, "pipeline cancelled");
    item *it = calloc(1, sizeof *it);
    if (!it) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    if (session && !(it->session = strdup(session))) {
        free(it);
        return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    }
    it->seq = s->seq;
    it->kind = s->kind;
    it->flags = s->flags;
    it->message_id = dup_or_empty(s->message_id, s->message_id ? strlen(s->message_id) : 0);
    it->source = dup_or_empty(s->text, s->len);
    it->notice_lang = s->lang ? strdup(s->lang) : NULL;
    it->t_input = s->arrival_ns;
    it->t_emit = s->emit_ns ? s->emit_ns : stts_now_ns();
    it->t_push = stts_now_ns();
    if (!it->message_id || !it->source || (s->lang && !it->notice_lang)) {
        item_free(it);
        return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_lock(&pl->smu);
    pl->st.pushed++;
    pl->in_flight++;
    pthread_mutex_unlock(&pl->smu);
    live_add(pl, it);
    if (tq_push(pl, &pl->q_text, it) != 0) {
        live_free(pl, it);
        pthread_mutex_lock(&pl->smu);
        pl->in_flight--;
        pthread_mutex_unlock(&pl->smu);
        return stts_error_set(err, STTS_ERR_CANCELLED, "pipeline cancelled");
    }
    return STTS_OK;
}

static void join_all(pipeline *pl) {
    if (pl->joined) return;
    pl->joined = 1;
    if (!pl->started) return;
    pthread_join(pl->th_translate, NULL);
    pthread_join(pl->th_synth, NULL);
    pthread_join(pl->th_play, NULL);
}

stts_status pipeline_finish(pipeline *pl, stts_error *err) {
    pl->finished = 1;
    tq_close(&pl->q_text);
    join_all(pl);
    if (is_cancelled(pl)) return stts_error_set(err, STTS_ERR_CANCELLED, "pipeline cancelled");
    return STTS_OK;
}

/* Called with amu held, after dropping items: when the item the player
 * wrote last is one of them, its audio may be in the device (being
 * written, or buffered and playing). Registers a device abort then, which
 * holds the player before it writes any later item; the caller runs it
 * with abort_device. Returns whether it did. */
static int abort_needed(pipeline *pl) {
    if (!pl->w_item || !is_dropped(pl->w_item)) return 0;
    pl->aborting++;
    pl->w_item = NULL;   /* after the abort the device holds none of it (see play_main for a late slice) */
    return 1;
}

/* Discards what the device holds (a write in progress returns at once) and
 * lets the player go on: everything it writes from now on plays. */
static void abort_device(pipeline *pl) {
    audio_abort(pl->p.sink);
    pthread_mutex_lock(&pl->amu);
    pl->aborting--;
    pthread_cond_broadcast(&pl->a_data);
    pthread_mutex_unlock(&pl->amu);
}

/* Sets the stop token of every live item matching session (NULL: all)
 * and wakes every thread that waits, wherever it waits. Returns how many
 * items were marked, and in *abort whether the device must be aborted
 * (abort_needed; the caller then calls abort_device). The marks and that
 * decision are one step under amu, so the player is either still on a
 * dropped item (and aborting cuts only dropped audio) or already writing
 * one not dropped (which is then not cut). */
static int mark_and_wake(pipeline *pl, const char *session, int *abort) {
    int n = 0;
    pthread_mutex_lock(&pl->amu);
    pthread_mutex_lock(&pl->live_mu);   /* order amu -> live_mu, as pipeline_replay's live_add */
    for (item *it = pl->live; it; it = it->live_next) {
        if (session && (!it->session || strcmp(it->session, session) != 0)) continue;
        if (atomic_load(&it->skipped)) continue;   /* already skipped: that is its outcome, not "stopped" */
        /* An ended one is marked too (its end, still in the device, is cut)
         * but was played: not counted. */
        if (!atomic_exchange(&it->drop, 1) && !it->ended) n++;
    }
    pthread_mutex_unlock(&pl->live_mu);
    *abort = abort_needed(pl);
    pthread_cond_broadcast(&pl->a_data);
    pthread_cond_broadcast(&pl->a_space);
    pthread_mutex_unlock(&pl->amu);
    tq_wake(&pl->q_text);
    tq_wake(&pl->q_spoken);
    return n;
}

void pipeline_cancel(pipeline *pl) {
    if (!pl || atomic_exchange(&pl->cancelled, 1)) return;
    /* For good: nothing is written after it, so no abort can cut later audio. */
    audio_abort(pl->p.sink);
    int abort;
    mark_and_wake(pl, NULL, &abort);
    if (abort) abort_device(pl);
}

/* Waits (at most 1 s) until the player has let go of a stopped sentence,
 * so a caller's "stopped" means the audio stopped. */
static void wait_player_released(pipeline *pl) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 1;
    pthread_mutex_lock(&pl->amu);
    while (pl->a_head && is_dropped(pl->a_head) && pl->a_head->played > 0 && !is_cancelled(pl))
        if (pthread_cond_timedwait(&pl->a_space, &pl->amu, &dl) == ETIMEDOUT) break;
    pthread_mutex_unlock(&pl->amu);
}

int pipeline_stop(pipeline *pl, const char *session) {
    if (!pl || is_cancelled(pl)) return 0;
    int abort = 0;
    int n = mark_and_wake(pl, session, &abort);
    if (abort) {
        abort_device(pl);   /* what the device holds goes too */
        wait_player_released(pl);
    }
    return n;
}

int pipeline_skip(pipeline *pl) {
    if (!pl || is_cancelled(pl)) return 0;
    pthread_mutex_lock(&pl->amu);
    item *it = pl->a_head;
    int hit = it && !is_dropped(it) && (it->played > 0 || it->n_pcm > 0);
    /* The player writes ahead of the ear by the device's buffer (0.4 s, and
     * its latency): a sentence it has begun may not be heard yet, the one
     * before still playing out its end (its start mark not yet passed).
     * That end is what the listener skips: the device is aborted and this
     * sentence starts again from its first sample. (marked and mark_start
     * were set before played counted anything, under amu since.) */
    uint64_t h = 0, p = 0;
    if (hit && it == pl->cur && it->played > 0 && it->marked &&
        !audio_mark_query(pl->p.sink, it->mark_start, &h, &p)) {
        it->rewind = 1;
        pl->aborting++;   /* the player writes nothing until the abort is done (abort_device) */
        pl->w_item = NULL;
        pthread_cond_broadcast(&pl->a_data);
        pthread_cond_broadcast(&pl->a_space);
        pthread_mutex_unlock(&pl->amu);
        abort_device(pl);
        return 1;
    }
    if (hit) atomic_store(&it->drop, 1);
    /* Only when its audio may be in the device: not yet written, it is
     * dropped before the player writes any (and the one before it, still
     * playing out its last samples, is not cut). */
    int abort = hit && pl->w_item == it && abort_needed(pl);
    pthread_cond_broadcast(&pl->a_data);
    pthread_cond_broadcast(&pl->a_space);
    pthread_mutex_unlock(&pl->amu);
    if (abort) {
        abort_device(pl);
        wait_player_released(pl);
    }
    return hit;
}

void pipeline_pause(pipeline *pl, int paused) {
    if (!pl) return;
    pthread_mutex_lock(&pl->amu);
    pl->paused = paused != 0;
    pthread_cond_broadcast(&pl->a_data);
    pthread_mutex_unlock(&pl->amu);
}

void pipeline_set_speed(pipeline *pl, double speed) {
    if (pl) atomic_store(&pl->speed, speed);
}

int pipeline_paused(pipeline *pl) {
    pthread_mutex_lock(&pl->amu);
    int p = pl->paused;
    pthread_mutex_unlock(&pl->amu);
    return p;
}

int pipeline_replay(pipeline *pl, int n, stts_error *err) {
    if (!pl || is_cancelled(pl) || n <= 0) return 0;
    pthread_mutex_lock(&pl->amu);
    if (n > pl->n_history) n = pl->n_history;
    if (n > 0 && pl->replay_waiting + n > REPLAY_WAITING_MAX) {
        /* All or nothing: a part of the request would say other sentences
         * than the ones asked for. */
        int waiting = pl->replay_waiting;
        pthread_mutex_unlock(&pl->amu);
        stts_error_set(err, STTS_ERR_INVALID_ARG,
                       "replay: %d sentence%s already waiting to be said again, and %d more would pass the limit "
                       "of %d; nothing added: wait until they have been said, or stop them (stream-tts ctl stop)",
                       waiting, waiting == 1 ? " is" : "s are", n, REPLAY_WAITING_MAX);
        return -1;
    }
    /* After the sentence playing now (if any), before everything else.
     * "Playing" is the one the player has taken, not one with samples
     * played: in front of a taken one, a copy was unlinked with it when it
     * ended (never said, never freed, its audio counted as queued for good). */
    item *after = pl->a_head && pl->a_head == pl->cur ? pl->a_head : NULL;
    int made = 0;
    for (int k = pl->n_history - n; k < pl->n_history; k++) {
        const item *h = pl->history[k];
        item *it = calloc(1, sizeof *it);
        if (!it) break;
        it->pcm = malloc(h->n_pcm * sizeof *it->pcm);
        it->source = strdup(h->source);
        it->spoken = strdup(h->spoken);
        it->message_id = strdup(h->message_id);
        it->session = h->session ? strdup(h->session) : NULL;
        if (!it->pcm || !it->source || !it->spoken || !it->message_id || (h->session && !it->session)) {
            item_free(it);
            break;
        }
        memcpy(it->pcm, h->pcm, h->n_pcm * sizeof *it->pcm);
        it->rate = h->rate;
        it->rate2 = h->rate2;
        it->rate2_from = h->rate2_from;
        it->n_pcm = it->cap_pcm = h->n_pcm;
        it->seq = h->seq;
        it->kind = h->kind;
        it->flags = h->flags;
        it->how = h->how;
        it->replay = 1;
        it->synth_done = 1;
        it->t_input = it->t_emit = it->t_push = stts_now_ns();
        live_add(pl, it);
        if (after) { it->next = after->next; after->next = it; }
        else { it->next = pl->a_head; pl->a_head = it; }
        if (!it->next) pl->a_tail = it;
        after = it;
        pl->queued_ns += span_ns(it, it->n_pcm);
        pl->replay_waiting++;
        made++;
    }
    pthread_cond_broadcast(&pl->a_data);
    pthread_mutex_unlock(&pl->amu);
    pthread_mutex_lock(&pl->smu);
    pl->in_flight += made;
    pthread_mutex_unlock(&pl->smu);
    return made;
}

void pipeline_free(pipeline *pl) {
    if (!pl) return;
    if (!pl->joined) {
        if (!pl->finished) pipeline_cancel(pl);
        tq_close(&pl->q_text);
        join_all(pl);
    }
    tq_destroy(&pl->q_text);
    tq_destroy(&pl->q_spoken);
    for (item *it = pl->a_head, *n; it; it = n) { n = it->next; item_free(it); }
    for (item *it = pl->done_head, *n; it; it = n) { n = it->next; item_free(it); }
    pthread_mutex_destroy(&pl->amu);
    pthread_cond_destroy(&pl->a_data);
    pthread_cond_destroy(&pl->a_space);
    pthread_mutex_destroy(&pl->smu);
    pthread_mutex_destroy(&pl->live_mu);
    for (int k = 0; k < pl->n_history; k++) item_free(pl->history[k]);
    if (pl->session) nllb_session_free(pl->session);
    mt_cache_free(pl->cache);
    free(pl->skip_pcm);
    for (int k = 0; k < TEXT_PH__COUNT; k++) free(pl->notice_src[k]), free(pl->notice_tr[k]);
    free(pl->fail_notice);
    free(pl->not_read_notice);
    free(pl->d_translate);
    free(pl->d_synth_first);
    free(pl->d_ready_out);
    free(pl);
}

/* ---- reporting ---------------------------------------------------------------------------- */

int pipeline_session_in_flight(pipeline *pl, const char *session) {
    int n = 0;
    pthread_mutex_lock(&pl->live_mu);
    for (const item *it = pl->live; it; it = it->live_next)
        n += it->session && session && strcmp(it->session, session) == 0;
    pthread_mutex_unlock(&pl->live_mu);
    return n;
}

int pipeline_in_flight(pipeline *pl) {
    pthread_mutex_lock(&pl->smu);
    int n = pl->in_flight;
    pthread_mutex_unlock(&pl->smu);
    return n;
}

void pipeline_get_stats(pipeline *pl, pipeline_stats *st) {
    pthread_mutex_lock(&pl->smu);
    *st = pl->st;
    st->queued = pl->in_flight;
    st->translate_p50 = percentile(pl->d_translate, pl->n_translate, 0.50);
    st->translate_p95 = percentile(pl->d_translate, pl->n_translate, 0.95);
    st->synth_first_p50 = percentile(pl->d_synth_first, pl->n_synth_first, 0.50);
    st->synth_first_p95 = percentile(pl->d_synth_first, pl->n_synth_first, 0.95);
    st->ready_first_out_p50 = percentile(pl->d_ready_out, pl->n_ready_out, 0.50);
    st->ready_first_out_p95 = percentile(pl->d_ready_out, pl->n_ready_out, 0.95);
    pthread_mutex_unlock(&pl->smu);
    pthread_mutex_lock(&pl->amu);
    st->lag_s = (double)pl->queued_ns / 1e9;
    pthread_mutex_unlock(&pl->amu);
}

void pipeline_print_summary(pipeline *pl, FILE *f) {
    pipeline_stats s;
    pipeline_get_stats(pl, &s);
    fprintf(f, "stream-tts: %llu sentences spoken, %llu skipped, %llu from cache, %llu already in the target "
               "language, %llu beam retries, %llu spoken untranslated after the guard\n",
            (unsigned long long)s.played, (unsigned long long)s.skipped, (unsigned long long)s.cache_hits,
            (unsigned long long)s.same_script, (unsigned long long)s.retries, (unsigned long long)s.fallbacks);
    if (s.not_read)
        fprintf(f, "stream-tts: %llu sentences in a language neither the model nor the voice reads: a notice "
                   "said instead\n", (unsigned long long)s.not_read);
    if (s.translate_errors || s.synth_errors || s.audio_errors)
        fprintf(f, "stream-tts: failures: %llu translations (spoken untranslated), %llu syntheses (not spoken), "
                   "%llu sentences lost to the audio output\n", (unsigned long long)s.translate_errors,
                (unsigned long long)s.synth_errors, (unsigned long long)s.audio_errors);
    fprintf(f, "stream-tts: warm-up %.1f ms\n", s.warmup_ms);
    if (s.translate_p50 >= 0)
        fprintf(f, "stream-tts: translation          p50 %7.1f ms  p95 %7.1f ms\n", s.translate_p50, s.translate_p95);
    if (s.synth_first_p50 >= 0)
        fprintf(f, "stream-tts: synthesis first chunk p50 %7.1f ms  p95 %7.1f ms\n", s.synth_first_p50,
                s.synth_first_p95);
    if (s.ready_first_out_p50 >= 0)
        fprintf(f, "stream-tts: sentence ready -> first sample out (device idle, %llu sentences) p50 %.1f ms  p95 %.1f ms\n",
                (unsigned long long)s.idle_samples, s.ready_first_out_p50, s.ready_first_out_p95);
}

void pipeline_status_line(pipeline *pl, char *buf, size_t cap) {
    pthread_mutex_lock(&pl->smu);
    int queued = pl->in_flight;
    double mt = pl->last_translate_ms, tts = pl->last_synth_ms;
    unsigned long long played = pl->st.played;
    pthread_mutex_unlock(&pl->smu);
    pthread_mutex_lock(&pl->amu);
    double lag = (double)pl->queued_ns / 1e9;
    pthread_mutex_unlock(&pl->amu);
    snprintf(buf, cap, "spoken %llu  queued %d  lag %.1f s  last: mt %.0f ms, tts first chunk %.0f ms", played, queued,
             lag, mt, tts);
}
