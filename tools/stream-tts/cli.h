/* cli.h - the subcommand entry points of the stream-tts program. Each
 * returns the process exit status: 0 success, 1 runtime failure, 2 usage.
 * argv[0] is the subcommand's name (or the program's, for cmd_run). */
#ifndef STTS_CLI_H
#define STTS_CLI_H

int cmd_run(int argc, char **argv);        /* default: the streaming pipeline, --dry-run */
int cmd_translate(int argc, char **argv);  /* stream-tts translate ... */
int cmd_say(int argc, char **argv);        /* stream-tts say ... */
int cmd_voices(int argc, char **argv);     /* stream-tts voices */
int cmd_serve(int argc, char **argv);      /* stream-tts serve: the daemon */
int cmd_ctl(int argc, char **argv);        /* stream-tts ctl ...: daemon controls */
int cmd_hook(int argc, char **argv);       /* stream-tts hook: Claude Code hook client */
int cmd_install_hooks(int argc, char **argv); /* stream-tts install-hooks */
int cmd_convert(int argc, char **argv);    /* stream-tts convert: checkpoint converter */
/* argv with each "--name=VALUE" of value_flags (NULL-terminated list) split
 * into two words; one allocation, free() it. NULL when out of memory. */
char **cli_split_equals(int argc, char **argv, const char *const *value_flags, int *out_argc);
/* fn(argc, argv) on that argv, freed after: a subcommand's entry point
 * taking both "--flag VALUE" and "--flag=VALUE". */
int cli_run_split(int argc, char **argv, const char *const *value_flags, int (*fn)(int, char **));
/* SIGBUS (a mapped dictionary truncated under us): one line naming the file, exit 1. */
void cli_install_sigbus_handler(void);

/* --device auto|cpu|cuda -> *device (an nllb_device). auto without a
 * usable GPU (nllb_cuda_probe) becomes the CPU here, with one line on
 * stderr saying why (prefixed by who); with one it stays auto, and the load
 * falls back to the CPU if the model does not fit there (cli_device_note).
 * Returns -1 for another value (the message is printed), else 0. */
int cli_device(const char *who, const char *value, int *device);
/* After a load: one line on stderr when an auto model runs on the CPU
 * although a GPU was there, and why (nllb_model_device_note). */
struct nllb_model;
void cli_device_note(const char *who, const struct nllb_model *m);
/* --help's words on what auto does in this build (two lines, the second
 * indented for the flag column). */
const char *cli_device_auto_help(void);

#endif
