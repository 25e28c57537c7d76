/* cmd_say.c - `stream-tts say` speaks (or writes) one utterance with the
 * synthesis and audio stages alone, and `stream-tts voices` lists the
 * voices of every backend. Audio is streamed: each chunk the synthesizer
 * makes goes to the sink at once. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "stts_audio.h"
#include "stts_tts.h"

static atomic_int g_stop = 0;

static void on_signal(int sig) {
    (void)sig;
    atomic_store(&g_stop, 1);
}

static void say_usage(FILE *f) {
    fprintf(f,
            "usage: stream-tts say [options] [--] [TEXT...]   (TEXT from stdin when not given)\n"
            "  --lang CODE            NLLB language code (default jpn_Jpan: Open JTalk; others: espeak-ng)\n"
            "  --voice FILE|NAME      .htsvoice file or name (mei_normal, tohoku-f01-neutral), or an espeak voice\n"
            "  --speed X              speaking rate factor (default 1.0)\n"
            "  --pitch SEMITONES      pitch shift (default 0)\n"
            "  --volume DB            gain in dB (default 0)\n"
            "  --rate HZ              output sample rate (default: the voice's; converted on output)\n"
            "  --output FILE.wav|-    write a WAV file, or raw s16le mono PCM to stdout with '-'\n"
            "                         (FILE.raw/.pcm: raw PCM to that file); default: the sound device\n"
            "  --audio-device N|NAME  sound device by index or name (see --list-audio-devices)\n"
            "  --list-audio-devices   list output devices and exit\n"
            "  --user-dict F[,F...]   extra reading dictionaries (.csv: surface,katakana[,accent] or naist-jdic; .dic)\n"
            "  --no-builtin-dict      do not load the software-terms reading dictionary\n"
            "  --dict-dir DIR         Open JTalk naist-jdic directory\n"
            "  --tts-command CMD      external TTS: CMD reads text on stdin and writes WAV on stdout\n"
            "  --labels               print Open JTalk's full-context labels instead of speaking\n"
            "  --verbose              print timing (first audio, real-time factor) on stderr\n");
}

static char *read_stdin(void) {
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    if (!b) return NULL;
    size_t k;
    while ((k = fread(b + n, 1, cap - n - 1, stdin)) > 0) {
        n += k;
        if (cap - n < 2) {
            char *g = realloc(b, cap * 2);
            if (!g) { free(b); return NULL; }
            b = g;
            cap *= 2;
        }
    }
    /* The synthesizer takes a C string: a NUL byte (a binary file, a
     * printf mistake) cut the text there and the rest was never said. It is
     * read as the space it stands in for, as `stream-tts translate` does. */
    for (size_t i = 0; i < n; i++)
        if (b[i] == '\0') b[i] = ' ';
    b[n] = '\0';
    return b;
}

typedef struct {
    audio_sink *sink;
    int rate;               /* the voice's: what the chunks are tagged with */
    stts_error err;
    int failed;
    size_t samples;
    uint64_t first_ns;
} say_ctx;

static int on_chunk(void *user, const int16_t *pcm, size_t n) {
    say_ctx *c = user;
    if (!c->first_ns) c->first_ns = stts_now_ns();
    c->samples += n;
    if (audio_write(c->sink, pcm, n, c->rate, &c->err) != STTS_OK) {
        c->failed = 1;
        return 1;
    }
    return atomic_load(&g_stop);
}

static int print_device(void *user, const audio_device_info *d) {
    if (user) ++*(int *)user;
    printf("%3d  %-40s  %-6s  %d ch  %.0f Hz%s\n", d->index, d->name, d->host_api, d->max_channels,
           d->default_rate, d->is_default ? "  (default)" : "");
    return 0;
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static int say_main(int argc, char **argv) {
    tts_params tp;
    tts_default_params(&tp);
    const char *output = NULL, *device = NULL;
    int labels = 0, verbose = 0, text_only = 0;
    int out_rate = 0;   /* --rate: the output's rate; the sink converts the voice's to it */
    char *text = NULL;
    size_t tlen = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED() do { if (!v) { fprintf(stderr, "stream-tts say: %s needs a value\n", a); free(text); return 2; } i++; } while (0)
/* A number, all of it: "abc" or "1.5x" is refused, not read as 0. */
#define NUM(dst) do { NEED(); char *e_; double x_ = strtod(v, &e_); \
        if (e_ == v || *e_) { fprintf(stderr, "stream-tts say: %s expects a number, got '%s'\n", a, v); free(text); return 2; } \
        (dst) = x_; } while (0)
        if (!text_only && strcmp(a, "--") == 0) { text_only = 1; continue; }
        if (text_only) goto add_word;  /* after "--": "-5 degrees" or "--help" is text to say */
        if (strcmp(a, "--lang") == 0) { NEED(); tp.lang = v; }
        else if (strcmp(a, "--voice") == 0) { NEED(); tp.voice = v; }
        else if (strcmp(a, "--speed") == 0) NUM(tp.speed);
        else if (strcmp(a, "--pitch") == 0) NUM(tp.pitch);
        else if (strcmp(a, "--volume") == 0) NUM(tp.volume_db);
        else if (strcmp(a, "--rate") == 0) {
            double r_;
            NUM(r_);
            /* checked before the conversion: 1e20 or nan became INT_MIN, which the
             * range message then showed ("sample rate -2147483648 Hz") */
            if (!(r_ >= 8000 && r_ <= 192000) || r_ != (double)(int)r_) {
                fprintf(stderr, "stream-tts: sample rate %s Hz out of range [8000, 192000] (a whole number)\n", v);
                free(text);
                return 1;
            }
            out_rate = (int)r_;
        }
        else if (strcmp(a, "--output") == 0 || strcmp(a, "-o") == 0) { NEED(); output = v; }
        else if (strcmp(a, "--audio-device") == 0) { NEED(); device = v; }
        else if (strcmp(a, "--user-dict") == 0) { NEED(); tp.user_dict = v; }
        else if (strcmp(a, "--dict-dir") == 0) { NEED(); tp.dict_dir = v; }
        else if (strcmp(a, "--tts-command") == 0) {
            NEED();
            /* empty: the default voice spoke instead, without a word (the main command refuses it) */
            if (!*v) { fprintf(stderr, "stream-tts say: --tts-command needs a command\n"); free(text); return 2; }
            tp.command = v;
        }
        else if (strcmp(a, "--no-builtin-dict") == 0) tp.builtin_dict = 0;
        else if (strcmp(a, "--labels") == 0) labels = 1;
        else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) verbose = 1;
        else if (strcmp(a, "--list-audio-devices") == 0) {
            stts_error err = {0};
            free(text);
            int n = 0;
            if (audio_list_devices(print_device, &n, &err) != STTS_OK) {
                fprintf(stderr, "stream-tts: %s\n", err.msg);
                return 1;
            }
            if (n == 0) fprintf(stderr, "stream-tts: no sound output devices; use --output FILE.wav or --output -\n");
            return 0;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) { say_usage(stdout); free(text); return 0; }
        else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "stream-tts say: unknown option %s\n", a);
            say_usage(stderr);
            free(text);
            return 2;
        } else {
        add_word:;
            size_t l = strlen(a);
            char *g = realloc(text, tlen + l + 2);
            if (!g) { free(text); return 1; }
            text = g;
            if (tlen) text[tlen++] = ' ';
            memcpy(text + tlen, a, l + 1);
            tlen += l;
        }
#undef NEED
    }
    if (out_rate != 0 && (out_rate < 8000 || out_rate > 192000)) {
        /* the message and exit status tts_open gave when it resampled */
        fprintf(stderr, "stream-tts: sample rate %d Hz out of range [8000, 192000]\n", out_rate);
        free(text);
        return 1;
    }
    if (!text) text = read_stdin();
    if (!text) { fprintf(stderr, "stream-tts say: cannot read text\n"); return 1; }

    stts_error err = {0};
    tts_synth *tts = NULL;
    uint64_t t_open = stts_now_ns();
    if (tts_open(&tp, &tts, &err) != STTS_OK) {
        fprintf(stderr, "stream-tts: %s\n", err.msg);
        free(text);
        return 1;
    }
    double open_ms = (stts_now_ns() - t_open) / 1e6;
    if (labels) {
        char *lab = NULL;
        int rc = 0;
        if (tts_labels(tts, text, &lab, &err) != STTS_OK) { fprintf(stderr, "stream-tts: %s\n", err.msg); rc = 1; }
        else fputs(lab, stdout);
        free(lab);
        tts_close(tts);
        free(text);
        return rc;
    }

    audio_params ap;
    audio_default_params(&ap);
    ap.sample_rate = out_rate ? out_rate : tts_sample_rate(tts);
    ap.device = device;
    if (output) {
        if (strcmp(output, "-") == 0) { ap.kind = AUDIO_SINK_RAW; ap.fd = 1; }
        else { ap.kind = AUDIO_SINK_WAV; ap.path = output; }  /* .raw/.pcm: see below */
    }
    int raw_file = output && (ends_with(output, ".raw") || ends_with(output, ".pcm"));
    FILE *rawf = NULL;
    if (raw_file) {
        rawf = fopen(output, "wb");
        if (!rawf) {   /* why, like the WAV sink says it */
            fprintf(stderr, "stream-tts: cannot write raw PCM file '%s': %s\n", output, strerror(errno));
            tts_close(tts);
            free(text);
            return 1;
        }
        ap.kind = AUDIO_SINK_RAW;
        ap.fd = fileno(rawf);
        ap.path = output;   /* errors name the file, not standard output */
    }
    audio_sink *sink = NULL;
    if (audio_open(&ap, &sink, &err) != STTS_OK) {
        fprintf(stderr, "stream-tts: %s\n", err.msg);
        if (rawf) fclose(rawf);
        tts_close(tts);
        free(text);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct sigaction hup;   /* a closed terminal ends it as SIGTERM does, unless nohup ignores it */
    if (sigaction(SIGHUP, NULL, &hup) == 0 && hup.sa_handler != SIG_IGN) sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);  /* a closed pipe is an I/O error, reported */

    say_ctx c = {0};
    c.sink = sink;
    c.rate = tts_sample_rate(tts);
    uint64_t t0 = stts_now_ns();
    stts_status st = tts_synthesize(tts, text, on_chunk, &c, &g_stop, &err);
    uint64_t t1 = stts_now_ns();
    int rc = 0;
    if (c.failed) {
        fprintf(stderr, "stream-tts: %s\n", c.err.msg);
        rc = 1;
    } else if (st == STTS_ERR_CANCELLED) {
        audio_abort(sink);
        rc = 130;
    } else if (st != STTS_OK) {
        fprintf(stderr, "stream-tts: %s\n", err.msg);
        rc = 1;
    }
    if (rc == 130 || audio_close(sink, &err) != STTS_OK) {
        if (rc == 0) { fprintf(stderr, "stream-tts: %s\n", err.msg); rc = 1; }
        if (rc == 130) audio_close(sink, NULL);
    }
    if (rawf) fclose(rawf);
    if (verbose) {
        double audio_s = (double)c.samples / tts_sample_rate(tts);
        fprintf(stderr, "voice %s (%s), open %.1f ms, first audio %.2f ms, synthesis %.1f ms for %.2f s of audio "
                        "(real-time factor %.4f)\n",
                tts_voice_name(tts), tts_backend_label(tts_backend_of(tts)), open_ms,
                c.first_ns ? (c.first_ns - t0) / 1e6 : -1.0, (t1 - t0) / 1e6, audio_s,
                audio_s > 0 ? (t1 - t0) / 1e9 / audio_s : 0.0);
    }
    tts_close(tts);
    free(text);
    return rc;
}

static int print_voice(void *user, const tts_voice_info *v) {
    (void)user;
    printf("%-10s %-9s %-22s %s\n", tts_backend_label(v->backend), v->lang, v->name, v->detail);
    return 0;
}

int cmd_voices(int argc, char **argv) {
    tts_backend which = TTS_BACKEND_AUTO;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--openjtalk") == 0) which = TTS_BACKEND_OPENJTALK;
        else if (strcmp(argv[i], "--espeak") == 0) which = TTS_BACKEND_ESPEAK;
        else if (strcmp(argv[i], "--audio-devices") == 0) {
            stts_error err = {0};
            return audio_list_devices(print_device, NULL, &err) == STTS_OK ? 0 : (fprintf(stderr, "stream-tts: %s\n", err.msg), 1);
        } else {
            fprintf(stderr, "usage: stream-tts voices [--openjtalk|--espeak|--audio-devices]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    printf("%-10s %-9s %-22s %s\n", "backend", "language", "voice", "where");
    stts_error err = {0};
    if (tts_list_voices(which, print_voice, NULL, &err) != STTS_OK) {
        fprintf(stderr, "stream-tts: %s\n", err.msg);
        return 1;
    }
    char dirs[4096];
    printf("\nOpen JTalk voices are searched in %s\n", tts_voice_dirs(dirs, sizeof dirs));
    return 0;
}

/* Both "--flag VALUE" and "--flag=VALUE", as on the main command. */
int cmd_say(int argc, char **argv) {
    static const char *const value_flags[] = {"--lang",         "--voice",     "--speed",    "--pitch",
                                              "--volume",       "--rate",      "--output",   "--audio-device",
                                              "--user-dict",    "--dict-dir",  "--tts-command", NULL};
    return cli_run_split(argc, argv, value_flags, say_main);
}
