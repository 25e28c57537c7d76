/* app.c - the program's assembly (see include/stts_app.h): model search
 * and load, voice, audio output, notice language and the signal thread,
 * used by the pipe mode and by the daemon alike. */
#define _POSIX_C_SOURCE 200809L
#include "stts_app.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stts_compat.h"
#include "stts_text.h"

#ifndef STTS_SOURCE_DIR
#define STTS_SOURCE_DIR ""
#endif

struct app {
    app_params p;
    char src[32], tgt[32];
    nllb_model *model;
    tts_synth *synth;
    tts_synth *src_synth;   /* reads failed translations; NULL: none could be opened */
    audio_sink *sink;
    char model_dir[PATH_MAX];
    const char *why;
    int demo, raw;
    char warning[STTS_ERROR_MAX];   /* app_model_warning */
    double load_ms;
    int sl_mode;        /* nllb_shortlist */
    int32_t *sl_ids;    /* --shortlist FILE */
    int sl_n;
};

void app_default_params(app_params *p) {
    memset(p, 0, sizeof *p);
    p->src = "eng_Latn";
    p->tgt = "jpn_Jpan";
    p->translate = 1;
    p->device = -1;
    p->speed = 1.0;
}

stts_status app_check_languages(const char *src, const char *tgt, stts_error *err) {
    const char *codes[2] = {src, tgt};
    for (int k = 0; k < 2; k++) {
        int known = 0;
        for (int i = 0; i < nllb_num_languages() && !known; i++) known = strcmp(codes[k], nllb_language_code(i)) == 0;
        if (!known)
            return stts_error_set(err, STTS_ERR_INVALID_ARG,
                                  "unknown language code '%s' for --%s: NLLB codes look like eng_Latn or "
                                  "jpn_Jpan (stream-tts translate --list-languages)", codes[k], k ? "tgt" : "src");
    }
    return STTS_OK;
}

static int is_model_dir(const char *dir) {
    char p[PATH_MAX];
    struct stat st;
    snprintf(p, sizeof p, "%s/config.json", dir);
    return stat(p, &st) == 0;
}

stts_status app_pick_model(const char *flag_model, char *dir, size_t cap, const char **why, stts_error *err) {
    if (flag_model) { snprintf(dir, cap, "%s", flag_model); *why = "--model"; return STTS_OK; }
    const char *env = getenv("STREAM_TTS_MODEL");
    if (env && *env) { snprintf(dir, cap, "%s", env); *why = "$STREAM_TTS_MODEL"; return STTS_OK; }
    const char *x = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    char p[PATH_MAX] = "";
    if (x && *x) snprintf(p, sizeof p, "%s/stream-tts/models/nllb-200-distilled-600M", x);
    else if (home && *home) snprintf(p, sizeof p, "%s/.local/share/stream-tts/models/nllb-200-distilled-600M", home);
    if (p[0] && is_model_dir(p)) { snprintf(dir, cap, "%s", p); *why = "installed NLLB-200-distilled-600M"; return STTS_OK; }
    /* The demo model: next to the executable in a build or install tree,
     * then in the source tree this binary was built from. */
    char exe[PATH_MAX];
    ssize_t k = stts_self_exe_path(exe, sizeof exe);
    if (k > 0) {
        char *slash = strrchr(exe, '/');
        if (slash) *slash = '\0';
        const char *rel[] = {"/../../models/demo-en-ja", "/../share/stream-tts/models/demo-en-ja", "/../models/demo-en-ja"};
        for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
            snprintf(p, sizeof p, "%s%s", exe, rel[i]);
            if (is_model_dir(p)) { snprintf(dir, cap, "%s", p); *why = "the bundled demo model"; return STTS_OK; }
        }
    }
    snprintf(p, sizeof p, "%s/models/demo-en-ja", STTS_SOURCE_DIR);
    if (STTS_SOURCE_DIR[0] && is_model_dir(p)) { snprintf(dir, cap, "%s", p); *why = "the bundled demo model"; return STTS_OK; }
    return stts_error_set(err, STTS_ERR_NOT_FOUND,
                          "no translation model found: give --model DIR, set $STREAM_TTS_MODEL, or install one with "
                          "scripts/fetch-model nllb-200-distilled-600M (or use --no-translate)");
}

/* NLLB-200's SentencePiece model has 256000 pieces at every size (600M,
 * 1.3B, 3.3B), for its 200 languages; the demo's has 8000, trained on
 * English and Japanese only (models/demo-en-ja/README.md). A property of
 * the files, not of the path: a copy, a link or a converted demo is known
 * too. */
#define NLLB200_SPM_PIECES 256000

int app_model_is_demo_files(const nllb_model *m) {
    int spm = m ? nllb_model_config(m)->spm_size : 0;
    return spm > 0 && spm != NLLB200_SPM_PIECES;
}

int app_demo_pair_warning(const nllb_model *m, const char *dir, const char *src, const char *tgt, char *buf,
                          size_t cap) {
    if (!app_model_is_demo_files(m) || (strcmp(src, "eng_Latn") == 0 && strcmp(tgt, "jpn_Jpan") == 0)) return 0;
    snprintf(buf, cap, "the model in %s is a small demo model, not NLLB-200 (its tokenizer has %d pieces, NLLB-200's "
             "%d for 200 languages): it only translates English to Japanese (eng_Latn -> jpn_Jpan), so %s -> %s "
             "gives nonsense; for other languages install a real NLLB model (scripts/fetch-model "
             "nllb-200-distilled-600M) and use it", dir, nllb_model_config(m)->spm_size, NLLB200_SPM_PIECES, src, tgt);
    return 1;
}

/* A model load failed for a directory taken from $STREAM_TTS_MODEL: the
 * user gave no --model, so the message names the variable as the source
 * (it read as if a flag were wrong) and how to fix it. */
static void name_env_source(const char *dir, stts_error *err) {
    if (!err || err->code == STTS_ERR_NOMEM || strncmp(err->msg, "device cuda: ", 13) == 0) return;
    char inner[sizeof err->msg], pre[PATH_MAX + 32];
    snprintf(inner, sizeof inner, "%s", err->msg);
    /* "model directory DIR does not exist (...)" keeps its wording after the source */
    snprintf(pre, sizeof pre, "model directory %s ", dir);
    int same = strncmp(inner, pre, strlen(pre)) == 0;
    stts_error_set(err, err->code,
                   "model directory '%s' (from $STREAM_TTS_MODEL)%s%s; set STREAM_TTS_MODEL to an NLLB or converted "
                   "model directory, or pass --model DIR", dir, same ? " " : ": ", same ? inner + strlen(pre) : inner);
}

/* TEST-ONLY (STTS_FAULT=model_load_delay_ms:N, docs/RELIABILITY.md): the
 * model load takes N ms longer, on the loading thread, as a large model on
 * a slow disk does; with STTS_FAULT_GATE=FILE it first creates FILE.held,
 * so a test can signal exactly then. */
static void fault_slow_load(void) {
    long ms = stts_fault("model_load_delay_ms");
    if (ms <= 0) return;
    const char *gate = getenv("STTS_FAULT_GATE");
    if (gate && *gate) {
        char held[PATH_MAX];
        snprintf(held, sizeof held, "%s.held", gate);
        int fd = open(held, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) close(fd);
    }
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

stts_status app_open(const app_params *p, app **out, stts_error *err) {
    *out = NULL;
    app *a = calloc(1, sizeof *a);
    if (!a) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    a->p = *p;
    snprintf(a->src, sizeof a->src, "%s", p->src ? p->src : "eng_Latn");
    snprintf(a->tgt, sizeof a->tgt, "%s", p->tgt ? p->tgt : "jpn_Jpan");
    a->p.src = a->src;
    a->p.tgt = a->tgt;
    a->why = "";
    a->raw = p->output && strcmp(p->output, "-") == 0;
    stts_status st = app_check_languages(a->src, a->tgt, err);
    if (st == STTS_OK && p->translate) {
        st = app_pick_model(p->model, a->model_dir, sizeof a->model_dir, &a->why, err);
        if (st == STTS_OK) {
            nllb_model_params mp = nllb_model_default_params();
            mp.threads = p->threads;
            if (p->device >= 0) mp.device = (nllb_device)p->device;
            int wf = nllb_weights_parse(p->weights ? p->weights : "auto");
            if (wf < 0)
                st = stts_error_set(err, STTS_ERR_INVALID_ARG,
                                    "--weights must be int8, bf16, f16, f32 or auto, got '%s'", p->weights);
            mp.weights = (nllb_weights)(wf < 0 ? 0 : wf);
            uint64_t t = stts_now_ns();
            if (st == STTS_OK) {
                fault_slow_load();
                st = nllb_model_load(a->model_dir, &mp, &a->model, err);
                if (st != STTS_OK && strcmp(a->why, "$STREAM_TTS_MODEL") == 0) name_env_source(a->model_dir, err);
            }
            a->load_ms = (double)(stts_now_ns() - t) / 1e6;
        }
        /* --shortlist: auto (default) | none | FILE of ids, read against the model's vocabulary */
        const char *sl = p->shortlist ? p->shortlist : "auto";
        a->sl_mode = strcmp(sl, "none") == 0 ? NLLB_SHORTLIST_NONE : NLLB_SHORTLIST_AUTO;
        if (st == STTS_OK && strcmp(sl, "none") != 0 && strcmp(sl, "auto") != 0) {
            st = nllb_shortlist_read(a->model, sl, &a->sl_ids, &a->sl_n, err);
            a->sl_mode = NLLB_SHORTLIST_IDS;
            if (st != STTS_OK) {   /* a bad flag value, like `translate --shortlist` says it */
                char msg[sizeof err->msg];
                snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
                st = stts_error_set(err, STTS_ERR_INVALID_ARG, "--shortlist: %s (a file of token ids, or auto, or none)",
                                    msg);
            }
        }
        if (st == STTS_OK) {
            a->demo = app_model_is_demo_files(a->model);
            /* Picked for the user (no NLLB found): refused. Chosen with --model
             * or $STREAM_TTS_MODEL: the user's choice, warned about once. */
            if (app_demo_pair_warning(a->model, a->model_dir, a->src, a->tgt, a->warning, sizeof a->warning) &&
                strcmp(a->why, "the bundled demo model") == 0)
                st = stts_error_set(err, STTS_ERR_UNSUPPORTED,
                                    "the demo model only translates eng_Latn to jpn_Jpan; install NLLB with "
                                    "scripts/fetch-model nllb-200-distilled-600M for %s -> %s", a->src, a->tgt);
        }
    }
    if (st == STTS_OK) {
        tts_params tp;
        tts_default_params(&tp);
        tp.lang = app_speak_lang(a);
        tp.voice = p->voice;
        tp.speed = p->speed;
        tp.pitch = p->pitch;
        tp.volume_db = p->volume_db;
        tp.user_dict = p->user_dict;
        if (p->tts_command) { tp.command = p->tts_command; tp.backend = TTS_BACKEND_COMMAND; }
        st = tts_open(&tp, &a->synth, err);
    }
    /* A voice of the source language for the sentences whose translation
     * fails, at its own rate (the sink converts, as for every voice). Optional: when there is none (no
     * voice for the language, espeak-ng already taken by the spoken voice, or
     * an error), the spoken voice reads the source (app_source_synth NULL). */
    if (st == STTS_OK && p->translate && strcmp(a->src, a->tgt) != 0) {
        tts_params sp;
        tts_default_params(&sp);
        sp.lang = a->src;
        sp.speed = p->speed;
        sp.volume_db = p->volume_db;
        stts_error ignored;
        if (tts_open(&sp, &a->src_synth, &ignored) != STTS_OK)
            a->src_synth = NULL;
    }
    if (st == STTS_OK) {
        audio_params ap;
        audio_default_params(&ap);
        ap.sample_rate = tts_sample_rate(a->synth);
        ap.device = p->audio_device;
        if (p->output) {
            if (a->raw) { ap.kind = AUDIO_SINK_RAW; ap.fd = 1; }
            else { ap.kind = AUDIO_SINK_WAV; ap.path = p->output; }
        }
        st = audio_open(&ap, &a->sink, err);
    }
    if (st != STTS_OK) {
        app_close(a, 1, NULL);
        return st;
    }
    *out = a;
    return STTS_OK;
}

stts_status app_close(app *a, int abort_audio, stts_error *err) {
    if (!a) return STTS_OK;
    stts_status st = STTS_OK;
    if (a->sink) {
        if (abort_audio) audio_abort(a->sink);
        st = audio_close(a->sink, err);
    }
    tts_close(a->src_synth);
    tts_close(a->synth);
    nllb_model_free(a->model);
    free(a->sl_ids);
    free(a);
    return st;
}

nllb_model *app_model(const app *a) { return a->model; }
tts_synth *app_synth(const app *a) { return a->synth; }
tts_synth *app_source_synth(const app *a) { return a->src_synth; }
audio_sink *app_sink(const app *a) { return a->sink; }
const char *app_model_dir(const app *a) { return a->model ? a->model_dir : ""; }
const char *app_model_why(const app *a) { return a->why; }
int app_model_is_demo(const app *a) { return a->demo; }
const char *app_model_warning(const app *a) { return a->warning; }
double app_model_load_ms(const app *a) { return a->load_ms; }
const char *app_speak_lang(const app *a) { return a->p.translate ? a->tgt : a->src; }
int app_sink_is_raw(const app *a) { return a->raw; }
int app_sink_is_file(const app *a) { return a->p.output != NULL; }
int app_shortlist(const app *a, const int32_t **ids, int *n) {
    *ids = a->sl_ids;
    *n = a->sl_n;
    return a->sl_mode;
}
const char *app_device_name(const app *a) {
    if (!a->p.output) return a->p.audio_device ? a->p.audio_device : "default sound device";
    return a->raw ? "raw PCM on stdout" : a->p.output;
}

const char *app_notice_lang(const char *current, const char *speak_lang, char *buf, size_t cap) {
    if (current && strcmp(current, "eng_Latn") != 0) return current;   /* chosen with --notice-lang */
    for (const char *const *l = text_phrase_languages(); *l; l++) {
        if (strcmp(*l, speak_lang) == 0) {
            snprintf(buf, cap, "%s", speak_lang);
            return buf;
        }
    }
    return current ? current : "eng_Latn";
}

/* ---- signals ------------------------------------------------------------------ */

/* SIGHUP (the terminal of a hand-started daemon closed, or a "reload"
 * out of habit) killed the process by its default action: no log line,
 * the socket left, the WAV header short of its last samples. It ends the
 * run as SIGTERM does now, unless it was ignored when the process started
 * (nohup asks for exactly that, and keeps it). */
static int g_watch_hup;

void app_signals_block(sigset_t *old) {
    struct sigaction hup;
    g_watch_hup = sigaction(SIGHUP, NULL, &hup) == 0 && hup.sa_handler != SIG_IGN;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (g_watch_hup) sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, old);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
}

const char *app_signal_word(int sig) {
    return sig == SIGINT ? "interrupt" : sig == SIGHUP ? "hangup" : "terminated";
}

void app_signals_restore(const sigset_t *old) {
    /* The watcher took one signal and the run ended by it; a second one
     * still pending (logind at logout sends SIGTERM, then SIGHUP; a double
     * Ctrl-C) would kill the process at the unblock below, before its
     * cleanup (the WAV header, the socket). It is taken here: the run is
     * ending already. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (g_watch_hup) sigaddset(&set, SIGHUP);
    for (int k = 0; k < 8 && stts_sigwait_timeout(&set, 0) > 0; k++) {}
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

struct app_sigwatch {
    pthread_t th;
    app_signal_fn fn;
    void *user;
    atomic_int done, sig;
};

static void *sigwatch_main(void *arg) {
    app_sigwatch *w = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (g_watch_hup) sigaddset(&set, SIGHUP);
    while (!atomic_load(&w->done)) {
        int sig = stts_sigwait_timeout(&set, 100);   /* sigtimedwait; macOS has none */
        if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
            atomic_store(&w->sig, sig);
            w->fn(w->user, sig);
            break;
        }
    }
    return NULL;
}

stts_status app_sigwatch_start(app_signal_fn fn, void *user, app_sigwatch **out, stts_error *err) {
    *out = NULL;
    app_sigwatch *w = calloc(1, sizeof *w);
    if (!w) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    w->fn = fn;
    w->user = user;
    if (pthread_create(&w->th, NULL, sigwatch_main, w) != 0) {
        free(w);
        return stts_error_set(err, STTS_ERR_INTERNAL, "cannot start the signal thread");
    }
    *out = w;
    return STTS_OK;
}

int app_sigwatch_stop(app_sigwatch *w) {
    if (!w) return 0;
    atomic_store(&w->done, 1);
    pthread_join(w->th, NULL);
    int sig = atomic_load(&w->sig);
    free(w);
    return sig;
}
