/* pipeline_run.c - `stream-tts` without --dry-run: loads the model and the
 * voice, opens the audio output, starts the pipeline, drives the front end
 * into it from this thread, and reports. Signals are taken by a dedicated
 * thread (stts_app's sigwatch), which cancels the pipeline at once: audio
 * stops within one device period, and the process exits cleanly. Model
 * search, loading, voice and sink are stts_app's (shared with serve). */
#define _POSIX_C_SOURCE 200809L
#include "pipeline_run.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "nllb.h"
#include "pipe_client.h"
#include "stts_app.h"
#include "stts_audio.h"
#include "stts_pipeline.h"
#include "stts_tts.h"

void pipeline_opts_init(pipeline_opts *o) {
    memset(o, 0, sizeof *o);
    o->src = "eng_Latn";
    o->tgt = "jpn_Jpan";
    o->beam = 1;
    o->speed = 1.0;
    o->gap_ms = 150;
    o->cache = 256;
    o->status = -1;
    o->daemon = "auto";
}

static int parse_double(const char *flag, const char *v, double lo, double hi, double *out, char *err, size_t cap) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    /* written as "inside the range" so that NaN ("nan", which strtod
     * accepts) fails it: a NaN --gap-ms made the sink write silence forever */
    if (errno || end == v || *end || !(x >= lo && x <= hi)) {
        snprintf(err, cap, "%s expects a number from %g to %g, got '%s'", flag, lo, hi, v);
        return -1;
    }
    *out = x;
    return 0;
}

int pipeline_opts_parse(pipeline_opts *o, int argc, char **argv, int *i, char *err, size_t cap) {
    static const struct { const char *name; size_t off; } STR[] = {
        {"--model", offsetof(pipeline_opts, model)}, {"--src", offsetof(pipeline_opts, src)},
        {"--tgt", offsetof(pipeline_opts, tgt)}, {"--voice", offsetof(pipeline_opts, voice)},
        {"--user-dict", offsetof(pipeline_opts, user_dict)}, {"--tts-command", offsetof(pipeline_opts, tts_command)},
        {"--output", offsetof(pipeline_opts, output)}, {"--audio-device", offsetof(pipeline_opts, audio_device)},
        {"--metrics", offsetof(pipeline_opts, metrics)}, {"--daemon", offsetof(pipeline_opts, daemon)},
        {"--device", offsetof(pipeline_opts, device)},
        {"--weights", offsetof(pipeline_opts, weights)}, {"--shortlist", offsetof(pipeline_opts, shortlist)},
    };
    static const struct { const char *name; size_t off; double lo, hi; } NUM[] = {
        {"--speed", offsetof(pipeline_opts, speed), 0.25, 4}, {"--pitch", offsetof(pipeline_opts, pitch), -24, 24},
        {"--volume", offsetof(pipeline_opts, volume_db), -40, 20}, {"--gap-ms", offsetof(pipeline_opts, gap_ms), 0, 5000},
        {"--max-lag", offsetof(pipeline_opts, max_lag_s), 0, 86400},
    };
    static const struct { const char *name; size_t off; int lo, hi; } INT[] = {
        {"--beam", offsetof(pipeline_opts, beam), 1, 16}, {"--threads", offsetof(pipeline_opts, threads), 0, 256},
        {"--cache", offsetof(pipeline_opts, cache), 0, 1000000},
        {"--force-length", offsetof(pipeline_opts, force_length), 0, 1000},
    };
    static const struct { const char *name; size_t off; } BOOL[] = {
        {"--no-translate", offsetof(pipeline_opts, no_translate)}, {"--echo", offsetof(pipeline_opts, echo)},
        {"--no-guard", offsetof(pipeline_opts, no_guard)}, {"--no-warmup", offsetof(pipeline_opts, no_warmup)},
    };
    int missing;
    const char *v;
    if ((v = cli_flag_value("--pace", argc, argv, i, &missing)) || missing) {
        if (!missing && (strcmp(v, "realtime") == 0 || strcmp(v, "none") == 0)) {
            o->pace_realtime = strcmp(v, "realtime") == 0;
            return 1;
        }
        snprintf(err, cap, "--pace expects 'realtime' or 'none'%s%s%s", missing ? "" : ", got '", missing ? "" : v,
                 missing ? "" : "'");
        return -1;
    }
    for (size_t k = 0; k < sizeof STR / sizeof STR[0]; k++) {
        if ((v = cli_flag_value(STR[k].name, argc, argv, i, &missing)) || missing) {
            if (missing || !*v) { snprintf(err, cap, "%s needs a value", STR[k].name); return -1; }
            if (!strcmp(STR[k].name, "--daemon") && strcmp(v, "auto") && strcmp(v, "always") && strcmp(v, "never")) {
                snprintf(err, cap, "--daemon takes auto, always or never, got '%s'", v);
                return -1;
            }
            if (!strcmp(STR[k].name, "--device") && nllb_device_parse(v) < 0) {
                snprintf(err, cap, "--device takes auto, cpu or cuda, got '%s'", v);
                return -1;
            }
            if (!strcmp(STR[k].name, "--weights") && nllb_weights_parse(v) < 0) {
                snprintf(err, cap, "--weights takes int8, bf16, f16, f32 or auto, got '%s'", v);
                return -1;
            }
            *(const char **)((char *)o + STR[k].off) = v;
            return 1;
        }
    }
    for (size_t k = 0; k < sizeof NUM / sizeof NUM[0]; k++) {
        if ((v = cli_flag_value(NUM[k].name, argc, argv, i, &missing)) || missing) {
            if (missing) { snprintf(err, cap, "%s needs a number", NUM[k].name); return -1; }
            return parse_double(NUM[k].name, v, NUM[k].lo, NUM[k].hi, (double *)((char *)o + NUM[k].off), err, cap) ? -1 : 1;
        }
    }
    for (size_t k = 0; k < sizeof INT / sizeof INT[0]; k++) {
        if ((v = cli_flag_value(INT[k].name, argc, argv, i, &missing)) || missing) {
            double x;
            if (missing) { snprintf(err, cap, "%s needs a whole number", INT[k].name); return -1; }
            if (parse_double(INT[k].name, v, INT[k].lo, INT[k].hi, &x, err, cap) || x != (int)x) {
                snprintf(err, cap, "%s expects a whole number from %d to %d, got '%s'", INT[k].name, INT[k].lo,
                         INT[k].hi, v);
                return -1;
            }
            *(int *)((char *)o + INT[k].off) = (int)x;
            return 1;
        }
    }
    for (size_t k = 0; k < sizeof BOOL / sizeof BOOL[0]; k++) {
        int r = cli_bool_flag(BOOL[k].name, argv[*i], (int *)((char *)o + BOOL[k].off), err, cap);
        if (r) return r;
    }
    int on;
    int r = cli_bool_flag("--status", argv[*i], &on, err, cap);
    if (r < 0) return -1;
    if (r) { o->status = on; return 1; }
    if (strcmp(argv[*i], "--no-status") == 0) { o->status = 0; return 1; }
    return 0;
}

void pipeline_opts_usage(FILE *f) {
    fputs("speech pipeline:\n"
          "  --model DIR             NLLB model directory (HF layout). Default: $STREAM_TTS_MODEL, then\n"
          "                          ~/.local/share/stream-tts/models/nllb-200-distilled-600M (scripts/fetch-model),\n"
          "                          then the bundled demo model (models/demo-en-ja, English to Japanese only)\n"
          "  --src LANG              source language, an NLLB code (default eng_Latn)\n"
          "  --tgt LANG              spoken language (default jpn_Jpan); see stream-tts translate --list-languages\n"
          "  --no-translate          speak the source text itself (espeak-ng for English)\n"
          "  --beam N                beam search width (default 1, greedy; bad output is retried with 4)\n"
          "  --threads N             translation threads, 0..256 (default 0: all cores, at most 256)\n"
          "  --weights F             int8, bf16, f16, f32 or auto (default: the fastest, int8 on a CPU)\n"
          "  --shortlist S           auto (default), none (full vocabulary) or FILE of token ids\n"
          "  --device auto|cpu|cuda  where translation runs (default auto)\n",
          f);
    /* the translate help's indent is 16 columns; this one's 26 */
    const char *dh = cli_device_auto_help(), *nl = strchr(dh, '\n');
    fprintf(f, "                          %.*s\n", (int)(nl ? nl - dh : (long)strlen(dh)), dh);
    if (nl) fprintf(f, "                          %s\n", nl + 1 + strspn(nl + 1, " "));
    fputs("  --voice FILE|NAME       voice: .htsvoice or name (mei_normal, tohoku-f01-neutral) or espeak voice\n"
          "  --speed X --pitch ST --volume DB   voice rate factor, pitch shift in semitones, gain in dB\n"
          "  --user-dict F[,F...]    extra Japanese reading dictionaries (.csv or .dic)\n"
          "  --tts-command CMD       external TTS: CMD reads text on stdin, writes WAV on stdout\n"
          "  --output FILE.wav|-     write a WAV file, or raw s16le mono PCM to stdout ('-');\n"
          "                          default: the sound device (no sound card: use --output)\n"
          "  --audio-device N|NAME   sound device (stream-tts voices --audio-devices lists them)\n"
          "  --gap-ms N              silence between sentences (default 150)\n"
          "  --max-lag SECONDS       when unspoken audio exceeds this, skip older sentences (announced)\n"
          "  --metrics FILE          per-sentence timestamps as JSON lines\n"
          "  --pace realtime|none    with --output: write audio no faster than it plays, like a sound\n"
          "                          device (soak tests, --max-lag on files); default none\n"
          "  --echo                  print each sentence and its translation as it starts playing\n"
          "                          (on stdout; on stderr when --output -)\n"
          "  --cache N               translation cache entries (default 256; 0 = off)\n"
          "  --no-guard              speak translations even when they look broken\n"
          "  --no-warmup             skip the start-up warm-up translation and synthesis\n"
          "  --status / --no-status  one-line status on stderr (default: when stderr is a terminal)\n"
          "  --force-length N        decode exactly N tokens per sentence (benchmarks)\n"
          "  --daemon auto|always|never  speak through a running `stream-tts serve` (warm model, one queue\n"
          "                          for every session). auto (default): when one listens and this run has no\n"
          "                          --output/--metrics/--echo of its own; always: required (those flags then\n"
          "                          apply if it goes away mid-stream and speech continues here); never.\n"
          "                          Through the daemon its own language, voice and text options apply\n"
          "  --config FILE           configuration file (default ~/.config/stream-tts/config): lines of\n"
          "                          'key = value' with the long flag names; command-line flags win\n",
          f);
}

/* ---- configuration file ------------------------------------------------------ */

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

void config_argv_free(char **argv, int argc) {
    if (!argv) return;
    for (int i = 1; i < argc; i++) free(argv[i]);
    free(argv);
}

/* What the last config_argv read; the CLI is single-threaded at that point.
 * g_config_lines[k] is the line of argument k + 1. */
static int g_config_n;
static char g_config_path[PATH_MAX];
static int *g_config_lines;
int config_argc(void) { return g_config_n; }
const char *config_path(void) { return g_config_path; }
const char *config_where(int i) {
    static char where[PATH_MAX + 16];
    if (i >= 1 && i <= g_config_n && g_config_lines)
        snprintf(where, sizeof where, "%s:%d", g_config_path, g_config_lines[i - 1]);
    else
        snprintf(where, sizeof where, "%s", g_config_path);
    return where;
}

static char **config_fail(FILE *f, char **out, int n, char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static char **config_fail(FILE *f, char **out, int n, char *err, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    if (f) fclose(f);
    config_argv_free(out, n);
    return NULL;
}

/* A relative path in the configuration file is taken from the file's
 * folder, not from wherever the command runs: a daemon a hook starts runs
 * in /, and `output = speech.wav` wrote /speech.wav (or failed), and the
 * same file read from two shells named two files. Keys whose value is a
 * path; the words they also take (-, auto, none, a voice's name) stay. */
static int config_path_key(const char *key, const char *val) {
    if (!strncmp(key, "serve.", 6)) key += 6;   /* the daemon's own settings: the same keys */
    static const char *const paths[] = {"model", "output", "metrics", "input", "transcript", "follow", "user-dict",
                                        "shortlist", "voice", NULL};
    int k = 0;
    while (paths[k] && strcmp(paths[k], key)) k++;
    if (!paths[k] || !*val || val[0] == '/' || val[0] == '~') return 0;
    if (!strcmp(key, "output") || !strcmp(key, "input")) return strcmp(val, "-") != 0;
    if (!strcmp(key, "shortlist")) return strcmp(val, "auto") && strcmp(val, "none");
    if (!strcmp(key, "voice")) { /* a file, not a voice's name (mei_normal, an espeak voice) */
        size_t n = strlen(val);
        return strchr(val, '/') || (n > 9 && !strcmp(val + n - 9, ".htsvoice"));
    }
    return 1;
}

/* "--key=value" with each relative path of value (user-dict: a comma-separated list) joined to dir. */
static char *config_arg(const char *key, const char *val, const char *dir) {
    int list = !strcmp(key, "user-dict") || !strcmp(key, "serve.user-dict"), items = 1;
    for (const char *c = val; list && *c; c++) items += *c == ',';
    size_t len = strlen(key) + strlen(val) + 4;
    if (dir && config_path_key(key, val)) len += (strlen(dir) + 1) * (size_t)items; /* the folder before each */
    char *arg = malloc(len);
    if (!arg) return NULL;
    size_t o = (size_t)snprintf(arg, len, "--%s=", key);
    if (!dir || !config_path_key(key, val)) {
        snprintf(arg + o, len - o, "%s", val);
        return arg;
    }
    for (const char *p = val; *p;) {
        size_t n = list ? strcspn(p, ",") : strlen(p);
        if (p[0] != '/' && p[0] != '~' && n) o += (size_t)snprintf(arg + o, len - o, "%s/", dir);
        o += (size_t)snprintf(arg + o, len - o, "%.*s", (int)n, p);
        p += n;
        if (*p == ',') o += (size_t)snprintf(arg + o, len - o, "%c", *p++);
    }
    return arg;
}

char **config_argv(int argc, char **argv, int *new_argc, char *err, size_t cap) {
    char path[PATH_MAX] = "";
    g_config_n = 0;
    g_config_path[0] = '\0';
    int explicit_path = 0;
    free(g_config_lines);
    g_config_lines = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (!strcmp(argv[i], "--config")) v = i + 1 < argc ? argv[++i] : "";
        else if (!strncmp(argv[i], "--config=", 9)) v = argv[i] + 9;
        if (!v) continue;
        if (!*v) {   /* was ignored (no value) or read as the file '' */
            snprintf(err, cap, "--config needs a file name (the configuration file; default ~/.config/stream-tts/config)");
            return NULL;
        }
        snprintf(path, sizeof path, "%s", v);
        explicit_path = 1;
    }
    if (!explicit_path) {
        const char *x = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
        if (x && *x) snprintf(path, sizeof path, "%s/stream-tts/config", x);
        else if (home && *home) snprintf(path, sizeof path, "%s/.config/stream-tts/config", home);
    }
    int cap_args = argc + 1, n = 0;
    char **out = calloc((size_t)cap_args, sizeof *out);
    if (!out) { snprintf(err, cap, "out of memory"); return NULL; }
    out[n++] = argv[0];
    FILE *f = path[0] ? fopen(path, "r") : NULL;
    if (!f && explicit_path) {
        snprintf(err, cap, "cannot read the configuration file '%s': %s", path, strerror(errno));
        free(out);
        return NULL;
    }
    if (f) {
        struct stat st;
        if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode))   /* fopen opens one; fgets then fails */
            return config_fail(f, out, n, err, cap, "the configuration file '%s' is a directory; --config takes a file of "
                               "'key = value' lines", path);
    }
    char dir[PATH_MAX] = "."; /* the configuration file's folder, absolute (config_arg) */
    if (f) {
        char *slash = strrchr(path, '/');
        if (slash) snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
        if (dir[0] != '/') {
            char cwd[PATH_MAX], joined[PATH_MAX];
            if (getcwd(cwd, sizeof cwd) && (size_t)snprintf(joined, sizeof joined, "%s/%s", cwd, dir) < sizeof joined)
                snprintf(dir, sizeof dir, "%s", joined);
        }
    }
    if (f) {
        char line[4096];
        int lineno = 0;
        while (fgets(line, sizeof line, f)) {
            lineno++;
            if (!strchr(line, '\n') && !feof(f))
                return config_fail(f, out, n, err, cap, "%s:%d: line longer than %zu bytes", path, lineno,
                                   sizeof line - 2);
            char *s = trim(line);
            if (!*s || *s == '#') continue;
            /* A '#' after white space starts a comment ("tgt = jpn_Jpan  # mine"). */
            for (char *h = strchr(s, '#'); h; h = strchr(h + 1, '#'))
                if (h > s && (h[-1] == ' ' || h[-1] == '\t')) { *h = '\0'; s = trim(s); break; }
            char *eq = strchr(s, '=');
            char *key = s, *val = NULL;
            if (eq) { *eq = '\0'; key = trim(s); val = trim(eq + 1); }
            if (!*key || key[0] == '-' || strpbrk(key, " \t")) {
                snprintf(err, cap, "%s:%d: expected 'key = value' with a long flag name as key (e.g. tgt = jpn_Jpan)",
                         path, lineno);
                fclose(f);
                config_argv_free(out, n);
                return NULL;
            }
            if (!strcmp(key, "config"))   /* was skipped without a word */
                return config_fail(f, out, n, err, cap, "%s:%d: a configuration file cannot name another one", path,
                                   lineno);
            if (n + 1 >= cap_args) {
                cap_args *= 2;
                char **g = realloc(out, (size_t)cap_args * sizeof *g);
                if (!g) { fclose(f); config_argv_free(out, n); snprintf(err, cap, "out of memory"); return NULL; }
                out = g;
                int *gl = realloc(g_config_lines, (size_t)cap_args * sizeof *gl);
                if (!gl) return config_fail(f, out, n, err, cap, "out of memory");
                g_config_lines = gl;
            }
            if (!g_config_lines && !(g_config_lines = calloc((size_t)cap_args, sizeof *g_config_lines)))
                return config_fail(f, out, n, err, cap, "out of memory");
            g_config_lines[n - 1] = lineno;
            char *arg;
            if (val) arg = config_arg(key, val, dir);
            else if ((arg = malloc(strlen(key) + 3))) sprintf(arg, "--%s", key);
            if (!arg) { fclose(f); config_argv_free(out, n); snprintf(err, cap, "out of memory"); return NULL; }
            out[n++] = arg;
        }
        if (ferror(f))
            return config_fail(f, out, n, err, cap, "cannot read the configuration file '%s': %s", path, strerror(errno));
        fclose(f);
    }
    /* A setting the command line gives too is left out here, not merely
     * overridden later: each flag is checked as it is read, so a bad value in
     * the file ("weights = int9") failed the run even with --weights int8 on
     * the command line, the very way to get past it. */
    int kept = 1;
    for (int k = 1; k < n; k++) {
        /* "--serve.order" is given by "--order" (serve's flag) */
        const char *flag = out[k];
        char unprefixed[256];
        if (!strncmp(flag, "--serve.", 8)) {
            snprintf(unprefixed, sizeof unprefixed, "--%s", flag + 8);
            flag = unprefixed;
        }
        size_t klen = strcspn(flag, "=");
        int given = 0;
        for (int i = 1; i < argc && !given; i++) {
            if (!strcmp(argv[i], "--")) break;
            given = !strncmp(argv[i], flag, klen) && (argv[i][klen] == '\0' || argv[i][klen] == '=');
        }
        if (given) { free(out[k]); continue; }
        g_config_lines[kept - 1] = g_config_lines[k - 1];
        out[kept++] = out[k];
    }
    n = kept;
    /* serve.KEY lines after the plain ones: for the daemon they win over
     * the same KEY written for every command, wherever each is in the
     * file (stable: each group keeps its order) */
    for (int a = 1, moved = 0; a + moved < n;) {
        if (strncmp(out[a], "--serve.", 8) != 0) { a++; continue; }
        char *s = out[a];
        int line = g_config_lines[a - 1];
        memmove(out + a, out + a + 1, (size_t)(n - a - 1) * sizeof *out);
        memmove(g_config_lines + a - 1, g_config_lines + a, (size_t)(n - a - 1) * sizeof *g_config_lines);
        out[n - 1] = s;
        g_config_lines[n - 2] = line;
        moved++;
    }
    g_config_n = n - 1;
    if (g_config_n > 0) snprintf(g_config_path, sizeof g_config_path, "%s", path);
    char **g = realloc(out, (size_t)(n + argc) * sizeof *g);
    if (!g) { config_argv_free(out, n); snprintf(err, cap, "out of memory"); return NULL; }
    out = g;
    for (int i = 1; i < argc; i++) {
        out[n] = strdup(argv[i]);
        if (!out[n]) { config_argv_free(out, n); snprintf(err, cap, "out of memory"); return NULL; }
        n++;
    }
    *new_argc = n;
    return out;
}

static int pipeline_run_here(frontend_opts *fo, const pipeline_opts *po);

/* ---- the run ------------------------------------------------------------------------ */

typedef struct {
    pipeline *pl;
    volatile sig_atomic_t stop;
    FILE *echo;
    int status_on;
    pthread_mutex_t out_mu;   /* stderr/echo lines vs the status line */
    atomic_int done;
    atomic_int signal_no;
    pthread_mutex_t phase_mu; /* starting: the signal thread vs the end of start-up */
    int starting;             /* model load, voice, output, warm-up: until pipeline_start returns */
} run_ctx;

static void clear_status(run_ctx *c) {
    if (c->status_on) fputs("\r\033[K", stderr);
}

static void on_event(void *user, const pipeline_event *ev) {
    run_ctx *c = user;
    pthread_mutex_lock(&c->out_mu);
    clear_status(c);
    if (ev->kind == PIPELINE_EV_LOG) {
        fprintf(stderr, "stream-tts: %s\n", ev->message);
    } else if (c->echo) {
        if (ev->how == PIPELINE_MT || ev->how == PIPELINE_MT_RETRY || ev->how == PIPELINE_CACHE)
            fprintf(c->echo, "%s\n  -> %s\n", ev->source, ev->spoken);
        else if (ev->notice)   /* a failed translation: the notice, then the source */
            fprintf(c->echo, "%s %s\n", ev->notice, ev->spoken);
        else
            fprintf(c->echo, "%s\n", ev->spoken);
        fflush(c->echo);
    }
    pthread_mutex_unlock(&c->out_mu);
}

static void on_sentence(void *user, const ingest_sentence *s) {
    run_ctx *c = user;
    stts_error err;
    if (pipeline_push(c->pl, s, &err) != STTS_OK) __atomic_store_n(&c->stop, 1, __ATOMIC_RELAXED);
}

static void on_signal(void *user, int sig) {
    run_ctx *c = user;
    pthread_mutex_lock(&c->phase_mu);
    if (c->starting) {
        /* Start-up (a model load of seconds, a voice, the warm-up) cannot
         * be cut short, so the signal waited until it was over. Nothing has
         * been spoken or written yet (a WAV output holds its header, whole,
         * and no data; a metrics file is empty): exit now. */
        dprintf(2, "stream-tts: stopped (%s) while starting up\n", app_signal_word(sig));
        _exit(128 + sig);
    }
    pthread_mutex_unlock(&c->phase_mu);
    atomic_store(&c->signal_no, sig);
    __atomic_store_n(&c->stop, 1, __ATOMIC_RELAXED);   /* read by the reader thread */
    pipeline_cancel(c->pl);
}

static void *status_main(void *arg) {
    run_ctx *c = arg;
    struct timespec tick = {0, 250000000};
    while (!atomic_load(&c->done)) {
        nanosleep(&tick, NULL);
        if (atomic_load(&c->done)) break;
        char line[256];
        pipeline_status_line(c->pl, line, sizeof line);
        pthread_mutex_lock(&c->out_mu);
        fprintf(stderr, "\r\033[K%s", line);
        fflush(stderr);
        pthread_mutex_unlock(&c->out_mu);
    }
    return NULL;
}

int pipeline_run(const frontend_opts *fo_in, const pipeline_opts *po) {
    frontend_opts fo_copy = *fo_in;
    frontend_opts *fo = &fo_copy;
    /* A running daemon speaks stream-json input (stdin/--input) for us. */
    int fallback_fd = -1;
    ingest_reader *fallback = NULL;
#ifdef STTS_HAVE_CMD_SERVE
    int stream_input = !fo->transcript && !fo->follow && !fo->hook;
    int own_output = po->output || po->metrics || po->echo;
    /* The daemon reads stream-json `line`s: text or markdown sent there was
     * never said (each line taken for broken JSON) though the run exited 0. */
    if (stream_input && fo->ingest.input_format != INGEST_INPUT_STREAM_JSON) {
        if (!strcmp(po->daemon, "always")) {
            fprintf(stderr, "stream-tts: --daemon always takes stream-json input only (the daemon reads Claude Code's "
                            "lines); --input-format text or markdown is spoken in-process: use --daemon auto or never\n");
            return 2;
        }
        stream_input = 0;
    }
    if (stream_input && (!strcmp(po->daemon, "always") || (!strcmp(po->daemon, "auto") && !own_output))) {
        int rc = pipe_via_daemon(fo, po->daemon, &fallback, &fallback_fd);
        if (rc >= 0) return rc;
        fo->reader = fallback;   /* NULL: no daemon; else the rest of the input */
    }
#endif
    int rc = pipeline_run_here(fo, po);
    ingest_reader_free(fallback);
    if (fallback_fd > 0) close(fallback_fd);
    return rc;
}

/* The pipeline in this process. */
static int pipeline_run_here(frontend_opts *fo, const pipeline_opts *po) {
    stts_error err;
    stts_error_clear(&err);
    uint64_t t_start = stts_now_ns();
    int translate = !po->no_translate;
    /* Signals go to the signal thread only: blocked before any thread
     * starts (the engine's thread pool starts at model load). */
    sigset_t old;
    app_signals_block(&old);
    /* A closed standard output (`--output - | player` whose player quit, an
     * --echo reader gone) is a write error, reported as an audio output
     * failure while the input is still read; SIGPIPE killed the process
     * without a word (exit 141), and Claude Code's pipe with it. */
    signal(SIGPIPE, SIG_IGN);
    const char *speak_lang = translate ? po->tgt : po->src;
    if (!fo->notice_lang_set) {   /* --notice-lang given (eng_Latn included) is kept */
        const char *nl = app_notice_lang(fo->notice_lang, speak_lang, fo->notice_lang, sizeof fo->notice_lang);
        if (nl == fo->notice_lang) fo->ingest.text.notice_lang = fo->notice_lang;
    }
    /* An input that cannot be read fails now, before the model loads and
     * before --output truncates an existing file. */
    const char *in = fo->transcript ? fo->transcript : (fo->input && strcmp(fo->input, "-") != 0 ? fo->input : NULL);
    struct stat in_st;
    if (in && access(in, R_OK) != 0) {
        fprintf(stderr, "stream-tts: cannot read input '%s': %s\n", in, strerror(errno));
        app_signals_restore(&old);
        return 1;
    }
    if (in && stat(in, &in_st) == 0 && S_ISDIR(in_st.st_mode)) {   /* readable, but no input */
        fprintf(stderr, "stream-tts: cannot read input '%s': it is a directory; give a file of %s\n", in,
                fo->transcript ? "transcript lines (.jsonl)" : "stream-json lines");
        app_signals_restore(&old);
        return 1;
    }

    /* Everything that can fail at startup fails before any input is read. */
    if (app_check_languages(po->src, po->tgt, &err) != STTS_OK) {
        fprintf(stderr, "stream-tts: %s\n", err.msg);
        app_signals_restore(&old);
        return 2;
    }
    if (po->pace_realtime && !po->output) {   /* before the model loads and the device opens */
        fprintf(stderr, "stream-tts: --pace realtime paces --output FILE.wav or -; a sound device paces itself\n");
        app_signals_restore(&old);
        return 2;
    }
    run_ctx c;
    memset(&c, 0, sizeof c);
    pthread_mutex_init(&c.out_mu, NULL);
    pthread_mutex_init(&c.phase_mu, NULL);
    /* The signal thread runs from here, before the slow part of start-up:
     * a Ctrl-C during a model load ends the program at once (on_signal). */
    c.starting = 1;
    app_sigwatch *sw = NULL;
    app_sigwatch_start(on_signal, &c, &sw, &err);
    app_params ap;
    pipeline_opts_to_app(po, &ap);
    app *a = NULL;
    if (app_open(&ap, &a, &err) != STTS_OK) {
        /* --device cuda without a usable GPU: say what runs now, not only how to rebuild */
        int gpu = strncmp(err.msg, "device cuda: ", 13) == 0;
        fprintf(stderr, "stream-tts: %s%s\n", err.msg,
                gpu ? "; --device cpu runs on the CPU (--device auto, the default: the GPU where one is usable)" : "");
        app_sigwatch_stop(sw);
        app_signals_restore(&old);
        pthread_mutex_destroy(&c.out_mu);
        pthread_mutex_destroy(&c.phase_mu);
        return err.code == STTS_ERR_INVALID_ARG ? 2 : 1;   /* a bad flag value, as `translate` says */
    }
    if (translate) cli_device_note("stream-tts", app_model(a));
    if (translate)
        fprintf(stderr, "stream-tts: model %s (%s, %s)%s\n", app_model_dir(a), app_model_why(a),
                nllb_model_backend(app_model(a)),
                app_model_is_demo(a) ? "; a tiny English-to-Japanese demo, not NLLB: scripts/fetch-model installs the real one" : "");
    if (translate && *app_model_warning(a)) fprintf(stderr, "stream-tts: warning: %s\n", app_model_warning(a));
    tts_synth *synth = app_synth(a);
    fprintf(stderr, "stream-tts: voice %s (%s, %d Hz), speaking %s\n", tts_voice_name(synth),
            tts_backend_label(tts_backend_of(synth)), tts_sample_rate(synth), speak_lang);
    if (translate) {   /* who reads a sentence whose translation fails */
        tts_synth *ss = app_source_synth(a);
        if (ss)
            fprintf(stderr, "stream-tts: a sentence that cannot be translated is read untranslated by %s (%s)\n",
                    tts_voice_name(ss), tts_backend_label(tts_backend_of(ss)));
        else
            fprintf(stderr, "stream-tts: no voice for %s besides the spoken one: a sentence that cannot be "
                    "translated is read untranslated by %s\n", po->src, tts_voice_name(synth));
    }
    /* O_APPEND: each metrics line is one write() (see write_metrics). */
    FILE *metrics = NULL;
    int mfd = po->metrics ? open(po->metrics, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644) : -1;
    if (mfd >= 0 && !(metrics = fdopen(mfd, "a"))) close(mfd);
    if (po->metrics && !metrics) {
        fprintf(stderr, "stream-tts: cannot write the metrics file '%s': %s\n", po->metrics, strerror(errno));
        app_sigwatch_stop(sw);
        app_close(a, 0, &err);
        app_signals_restore(&old);
        pthread_mutex_destroy(&c.out_mu);
        pthread_mutex_destroy(&c.phase_mu);
        return 1;
    }

    c.echo = po->echo ? (app_sink_is_raw(a) ? stderr : stdout) : NULL;
    c.status_on = po->status < 0 ? isatty(2) : po->status;

    pipeline_params pp;
    pipeline_opts_to_params(po, a, &pp);
    pp.notice_lang = fo->notice_lang;
    pp.metrics = metrics;
    pp.on_event = on_event;
    pp.user = &c;

    int rc = 0;
    if (pipeline_start(&pp, &c.pl, &err) != STTS_OK) {
        fprintf(stderr, "stream-tts: %s\n", err.msg);
        rc = 1;
    } else {
        pthread_mutex_lock(&c.phase_mu);   /* signals now stop the pipeline (on_signal) */
        c.starting = 0;
        pthread_mutex_unlock(&c.phase_mu);
        pipeline_stats st0;
        pipeline_get_stats(c.pl, &st0);
        fprintf(stderr, "stream-tts: ready in %.0f ms (model load %.0f ms, warm-up %.0f ms)\n",
                (double)(stts_now_ns() - t_start) / 1e6, app_model_load_ms(a), st0.warmup_ms);
        pthread_t status_th;
        int have_status = c.status_on && pthread_create(&status_th, NULL, status_main, &c) == 0;
        rc = frontend_drive(fo, on_sentence, &c, &c.stop);
        stts_status fst = pipeline_finish(c.pl, &err);
        atomic_store(&c.done, 1);
        app_sigwatch_stop(sw);
        sw = NULL;
        if (have_status) pthread_join(status_th, NULL);
        pthread_mutex_lock(&c.out_mu);
        clear_status(&c);
        pthread_mutex_unlock(&c.out_mu);
        int sig = atomic_load(&c.signal_no);
        if (sig) {
            fprintf(stderr, "stream-tts: stopped (%s)\n", app_signal_word(sig));
            rc = 128 + sig;
        } else if (fst != STTS_OK && rc == 0) {
            rc = 1;
        }
        pipeline_stats fin;
        pipeline_get_stats(c.pl, &fin);
        if (fin.audio_errors && po->output && rc == 0) {
            fprintf(stderr, "stream-tts: %llu sentence%s could not be written to %s\n",
                    (unsigned long long)fin.audio_errors, fin.audio_errors == 1 ? "" : "s",
                    strcmp(po->output, "-") == 0 ? "standard output" : po->output);
            rc = 1;
        }
        pipeline_print_summary(c.pl, stderr);
        pipeline_free(c.pl);
    }
    app_sigwatch_stop(sw);   /* pipeline_start failed: still running */
    app_signals_restore(&old);
    if (metrics) fclose(metrics);
    if (app_close(a, atomic_load(&c.signal_no) != 0, &err) != STTS_OK && rc == 0) {
        fprintf(stderr, "stream-tts: %s\n", err.msg);
        rc = 1;
    }
    pthread_mutex_destroy(&c.out_mu);
    pthread_mutex_destroy(&c.phase_mu);
    return rc;
}

void pipeline_opts_to_app(const pipeline_opts *po, app_params *ap) {
    app_default_params(ap);
    ap->model = po->model;
    ap->src = po->src;
    ap->tgt = po->tgt;
    ap->translate = !po->no_translate;
    ap->threads = po->threads;
    ap->weights = po->weights;
    /* --device auto|cpu|cuda (checked when parsed): auto given explicitly
     * says on stderr why it runs on the CPU; absent, the engine's default. */
    if (po->device) {
        int dev;
        if (cli_device("stream-tts", po->device, &dev) == 0) ap->device = dev;
    }
    ap->shortlist = po->shortlist;
    ap->voice = po->voice;
    ap->speed = po->speed;
    ap->pitch = po->pitch;
    ap->volume_db = po->volume_db;
    ap->user_dict = po->user_dict;
    ap->tts_command = po->tts_command;
    ap->output = po->output;
    ap->audio_device = po->audio_device;
}

void pipeline_opts_to_params(const pipeline_opts *po, const app *a, pipeline_params *pp) {
    pipeline_default_params(pp);
    pp->src_lang = po->src;
    pp->tgt_lang = po->tgt;
    pp->translate = !po->no_translate;
    pp->model = app_model(a);
    pp->model_langs = app_model_is_demo(a) ? "eng_Latn,jpn_Jpan" : NULL;   /* models/demo-en-ja/README.md */
    pp->num_beams = po->beam;
    pp->force_length = po->force_length;
    pp->guard = !po->no_guard;
    pp->cache_entries = po->cache;
    pp->synth = app_synth(a);
    pp->source_synth = app_source_synth(a);
    pp->sink = app_sink(a);
    pp->gap_ms = po->gap_ms;
    pp->max_lag_s = po->max_lag_s;
    pp->warmup = !po->no_warmup;
    pp->shortlist = app_shortlist(a, &pp->shortlist_ids, &pp->n_shortlist_ids);
    pp->sink_is_file = app_sink_is_file(a);   /* file writes are not playback (plot-timeline says so) */
    /* --pace realtime: one parser for the pipe mode and serve; a sound
     * device paces itself (pacing it again would halve the speed) */
    pp->simulate_realtime = po->pace_realtime && app_sink_is_file(a);
    /* Test hook for the order/once-only tests: random stage delays. */
    const char *delay = getenv("STREAM_TTS_TEST_DELAY_US");
    if (delay) pp->test_delay_max_us = (unsigned)strtoul(delay, NULL, 10);
}
