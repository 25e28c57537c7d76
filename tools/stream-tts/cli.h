/* cli.h - the subcommand entry points of the stream-tts program. Each
 * returns the process exit status: 0 success, 1 runtime failure, 2 usage. */
#ifndef STTS_CLI_H
#define STTS_CLI_H

int cmd_run(int argc, char **argv);        /* default: the streaming pipeline, --dry-run */
int cmd_translate(int argc, char **argv);  /* stream-tts translate ... */
int cmd_say(int argc, char **argv);        /* stream-tts say ... */
int cmd_voices(int argc, char **argv);     /* stream-tts voices */
/* SIGBUS (a mapped dictionary truncated under us): one line naming the file, exit 1. */
void cli_install_sigbus_handler(void);

#endif
