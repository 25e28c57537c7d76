/* cmd_run.c - `stream-tts [flags]`: the streaming front end. With --dry-run
 * it prints each sentence (or, with --json, one JSON object per sentence) on
 * stdout as soon as it is emitted; diagnostics go to stderr. The speech path
 * (translate, synthesize, play) is plugged in by the pipeline stage. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "frontend_opts.h"
#include "pipeline_run.h"
#include "stts_app.h"

/* --dry-run's SIGINT/SIGTERM: the input stops being read and what the
 * front end holds (a sentence not ended yet) is printed before the exit
 * (the signal's default action lost it). */
static volatile sig_atomic_t g_dry_signal;
static void on_dry_signal(int sig) { g_dry_signal = sig; }

static void usage(FILE *f) {
    fputs("usage: stream-tts [flags]          speak Claude Code's stream-json output\n"
          "       claude -p --output-format stream-json --verbose --include-partial-messages \"...\" | stream-tts --dry-run\n\n",
          f);
    frontend_opts_usage(f);
    pipeline_opts_usage(f);
    fputs("  --help                  show this help\n", f);
}

static void print_text(void *user, const ingest_sentence *s) {
    (void)user;
    fwrite(s->text, 1, s->len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

static void print_json(void *user, const ingest_sentence *s) {
    (void)user;
    json_t *o = json_object();
    json_object_set_new(o, "seq", json_integer((json_int_t)s->seq));
    json_object_set_new(o, "text", json_stringn(s->text, s->len));
    json_object_set_new(o, "kind", json_string(text_kind_name(s->kind)));
    json_object_set_new(o, "lang", s->lang ? json_string(s->lang) : json_null());
    json_object_set_new(o, "message_id", json_string(s->message_id));
    json_object_set_new(o, "line", json_integer((json_int_t)s->line_no));
    json_object_set_new(o, "arrival_ns", json_integer((json_int_t)s->arrival_ns));
    json_object_set_new(o, "emit_ns", json_integer((json_int_t)s->emit_ns));
    char *txt = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (txt) {
        fputs(txt, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        free(txt);
    }
    json_decref(o);
}

/* Adds a speech flag's name ("--tgt" of "--tgt=x") to the list of those
 * --dry-run ignores, once each. */
static void note_ignored(char *list, size_t cap, const char *arg) {
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(arg, "="), arg);
    for (const char *p = strstr(list, name); p; p = strstr(p + 1, name)) {
        size_t n = strlen(name);
        if ((p == list || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0')) return;
    }
    size_t len = strlen(list);
    snprintf(list + len, cap - len, "%s%s", len ? ", " : "", name);
}

/* The configuration file's settings come first in argv, so the command
 * line overrides them (see config_argv). */
static int run_with_args(int argc, char **argv) {
    frontend_opts o;
    frontend_opts_init(&o);
    pipeline_opts po;
    pipeline_opts_init(&po);
    char err[256];
    char speech_flags[512] = "";   /* given on the command line, unused by --dry-run */
    char src_where[512] = "", tgt_where[512] = "";   /* "FILE:LINE" of a --src/--tgt the configuration file gave */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--config") == 0) { i++; continue; }     /* read by config_argv */
        if (strncmp(argv[i], "--config=", 9) == 0) continue;
        int i0 = i, in_config = i <= config_argc();
        if (in_config && !strncmp(argv[i], "--serve.", 8)) continue;   /* "serve.KEY = VALUE": the daemon's own */
        /* A configuration line without "= value" (written "--key") must not
         * take the next argument as its value: the parsers see it alone.
         * Before, "weights" took "--config" and was reported as a bad
         * --weights value. */
        int bare = in_config && !strchr(argv[i0], '='), lim = bare ? i0 + 1 : argc;
        int r = frontend_opts_parse(&o, lim, argv, &i, err, sizeof err), speech = 0;
        if (r == 0) speech = (r = pipeline_opts_parse(&po, lim, argv, &i, err, sizeof err)) > 0;
        /* the configuration file's settings are for speaking runs too: not reported */
        if (speech && !in_config) note_ignored(speech_flags, sizeof speech_flags, argv[i0]);
        if (speech && in_config && !strncmp(argv[i0], "--src", 5))
            snprintf(src_where, sizeof src_where, "%s", config_where(i0));
        if (speech && in_config && !strncmp(argv[i0], "--tgt", 5))
            snprintf(tgt_where, sizeof tgt_where, "%s", config_where(i0));
        const char *from = in_config ? " in the configuration file " : "";
        const char *where = in_config ? config_where(i0) : "";
        if ((r > 0 && in_config && i != i0) || (r < 0 && bare)) {
            /* a line "tgt" without "= value": the flag took the next argument as its value */
            fprintf(stderr, "stream-tts: '%s' needs a value%s%s: write '%s = VALUE'\n", argv[i0] + 2, from, where,
                    argv[i0] + 2);
            return 2;
        }
        if (r < 0) {
            fprintf(stderr, "stream-tts: %s%s%s (see stream-tts --help)\n", err, from, where);
            return 2;
        }
        if (r == 0) {
            fprintf(stderr, "stream-tts: unknown %s '%s'%s%s (see stream-tts --help)\n",
                    argv[i][0] == '-' ? "option" : "argument", argv[i], from, where);
            return 2;
        }
    }
    if (frontend_opts_check(&o, err, sizeof err) != 0) {
        fprintf(stderr, "stream-tts: %s (see stream-tts --help)\n", err);
        return 2;
    }
    if (!o.dry_run) {
        /* an unknown code from the configuration file: said with its file:line,
         * as every other bad value there (the run checks the codes again) */
        stts_error lerr;
        if (app_check_languages(po.src, po.tgt, &lerr) != STTS_OK) {
            const char *where = strstr(lerr.msg, "for --tgt") ? tgt_where : src_where;
            fprintf(stderr, "stream-tts: %s%s%s\n", lerr.msg, where[0] ? " in the configuration file " : "", where);
            return 2;
        }
        return pipeline_run(&o, &po);
    }
    /* --dry-run neither translates nor speaks: a --tgt (even one that is
     * not a language code) passed silently, as if it applied. Said, not
     * refused: the sentences printed are still what was asked for. */
    if (speech_flags[0])
        fprintf(stderr, "stream-tts: warning: %s %s no effect with --dry-run, which prints the source sentences "
                        "untranslated and speaks nothing (leave %s out, or drop --dry-run to speak)\n",
                speech_flags, strchr(speech_flags, ',') ? "have" : "has", strchr(speech_flags, ',') ? "them" : "it");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_dry_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct sigaction hup;   /* a closed terminal ends it as SIGTERM does, unless nohup ignores it */
    if (sigaction(SIGHUP, NULL, &hup) == 0 && hup.sa_handler != SIG_IGN) sigaction(SIGHUP, &sa, NULL);
    int rc = frontend_drive(&o, o.json ? print_json : print_text, NULL, &g_dry_signal);
    fflush(stdout);
    if (g_dry_signal) {
        fprintf(stderr, "stream-tts: stopped (%s)\n", app_signal_word(g_dry_signal));
        return 128 + g_dry_signal;
    }
    return rc;
}

int cmd_run(int argc, char **argv) {
    char err[512];
    int n = 0;
    char **args = config_argv(argc, argv, &n, err, sizeof err);
    if (!args) {
        fprintf(stderr, "stream-tts: %s\n", err);
        return 2;
    }
    int rc = run_with_args(n, args);
    config_argv_free(args, n);
    return rc;
}
