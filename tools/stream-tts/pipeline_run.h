/* pipeline_run.h - the command-line side of the speech pipeline: its flags,
 * the configuration file, model and voice selection, signal handling, the
 * terminal status line, and the run itself. cmd_run.c parses the front-end
 * flags and hands over here unless --dry-run. */
#ifndef STTS_PIPELINE_RUN_H
#define STTS_PIPELINE_RUN_H

#include <stdio.h>

#include "frontend_opts.h"
#include "stts_app.h"
#include "stts_pipeline.h"

typedef struct {
    const char *model;         /* --model DIR */
    const char *src, *tgt;     /* --src / --tgt (NLLB codes) */
    int no_translate;
    int beam;
    int threads;
    const char *device;        /* --device auto|cpu|cuda (translation engine) */
    int force_length;          /* --force-length N (benchmarks) */
    const char *weights;       /* --weights f32|bf16|f16|int8|auto (NULL: auto) */
    const char *shortlist;     /* --shortlist auto|none|FILE (NULL: auto) */
    const char *voice;
    double speed, pitch, volume_db;
    const char *user_dict;
    const char *tts_command;
    const char *output;        /* --output FILE.wav | - */
    const char *audio_device;
    double gap_ms;
    double max_lag_s;
    const char *metrics;
    int echo;
    int cache;
    int no_guard;
    int no_warmup;
    int status;                /* -1 auto (stderr is a terminal), 0 off, 1 on */
    const char *daemon;        /* --daemon auto|always|never */
    int pace_realtime;         /* --pace realtime: file/raw output no faster than it plays */
} pipeline_opts;

void pipeline_opts_init(pipeline_opts *o);
/* Like frontend_opts_parse: 1 consumed, 0 not ours, -1 bad value (err). */
int pipeline_opts_parse(pipeline_opts *o, int argc, char **argv, int *i, char *err, size_t errcap);
void pipeline_opts_usage(FILE *f);

/* Reads the configuration file (--config FILE in argv, else
 * $XDG_CONFIG_HOME/stream-tts/config or ~/.config/stream-tts/config) and
 * returns a new argv: the program name, one "--key=value" per setting, then
 * the real arguments, so flags given on the command line win. Returns NULL
 * with err filled when the file exists but has a bad line. *new_argc set;
 * free the result with config_argv_free. */
char **config_argv(int argc, char **argv, int *new_argc, char *err, size_t errcap);
/* After config_argv: how many of the new arguments (after argv[0]) came
 * from the file, and its path ("" when none was read), for error messages. */
int config_argc(void);
const char *config_path(void);
/* "PATH:LINE" of the configuration file's argument i (1..config_argc()). */
const char *config_where(int i);
void config_argv_free(char **argv, int argc);

/* The flags as stts_app and pipeline parameters (serve uses them too). */
void pipeline_opts_to_app(const pipeline_opts *po, app_params *ap);
void pipeline_opts_to_params(const pipeline_opts *po, const app *a, pipeline_params *pp);

/* Runs the pipeline to the end of input; returns the exit status. */
int pipeline_run(const frontend_opts *fo, const pipeline_opts *po);

#endif
