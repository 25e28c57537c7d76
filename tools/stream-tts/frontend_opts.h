/* frontend_opts.h - the command-line side of the front end: the input and
 * text flags of `stream-tts`, their --help text, and a driver that runs the
 * chosen input mode (stdin/--input, --transcript, --hook, --follow) through
 * an ingest_frontend to its end. cmd_run.c uses it for --dry-run; the speech
 * pipeline calls frontend_drive() from its ingest thread with its own
 * sentence callback. Not thread-safe; one drive per thread. */
#ifndef STTS_FRONTEND_OPTS_H
#define STTS_FRONTEND_OPTS_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

#include "stts_ingest.h"

typedef struct {
    ingest_params ingest;     /* text/ingest options (notice language included) */
    const char *input;        /* stream-json file; NULL or "-" = stdin */
    const char *transcript;   /* --transcript FILE: speak its last turn */
    const char *follow;       /* --follow FILE: speak turns appended to it */
    int hook;                 /* --hook: Stop-hook payload on stdin names the transcript */
    int dry_run, json, stats;
    size_t max_line;          /* bytes; 0 = INGEST_DEFAULT_MAX_LINE */
    char notice_lang[32];
    int notice_lang_set;      /* --notice-lang was given (then it is kept, eng_Latn too) */
    ingest_reader *reader;    /* optional: an input already open (the pipe mode's daemon fallback) */
} frontend_opts;

void frontend_opts_init(frontend_opts *o);
/* Shared by every flag parser of the program: for argv[*i] = "--name VALUE"
 * (advancing *i) or "--name=VALUE", the value; NULL when argv[*i] is not
 * --name, with *missing set when it is but the value is absent. */
const char *cli_flag_value(const char *name, int argc, char **argv, int *i, int *missing);
/* A boolean flag: "--name" sets 1, "--name=true|false" (as the configuration
 * file writes it) sets either. 1 when a is --name, 0 when not, -1 on a bad
 * value (err filled). */
int cli_bool_flag(const char *name, const char *a, int *out, char *err, size_t cap);
/* Looks at argv[*i]: returns 1 if it was a front-end flag (then *i points at
 * its last word), 0 if it is not one of ours, -1 on a bad value (err says
 * which flag and what is expected). Accepts "--flag VALUE" and "--flag=VALUE". */
int frontend_opts_parse(frontend_opts *o, int argc, char **argv, int *i, char *err, size_t errcap);
/* Checks combinations after parsing; -1 with err filled when they conflict. */
int frontend_opts_check(const frontend_opts *o, char *err, size_t errcap);
/* Prints the front-end flags (one per line, for --help). */
void frontend_opts_usage(FILE *f);
/* Runs the input to its end (or until *stop becomes nonzero; stop may be
 * NULL). Warnings go to stderr as "stream-tts: line N: ...". Returns the exit
 * status: 0, or 1 when the input could not be read. */
int frontend_drive(const frontend_opts *o, ingest_sentence_fn fn, void *user, volatile sig_atomic_t *stop);

#endif
