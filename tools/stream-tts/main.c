/* main.c - the stream-tts program: picks a subcommand and hands over argv.
 * `stream-tts translate|say|voices ...` run one stage on its own; anything
 * else is the streaming pipeline (cmd_run). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#if defined(__GNUC__)
__attribute__((unused))  /* unused once every cmd_*.c file exists */
#endif
static int missing(const char *what) {
    fprintf(stderr, "stream-tts: '%s' is not available in this build\n", what);
    return 2;
}

int main(int argc, char **argv) {
    cli_install_sigbus_handler();
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "translate") == 0) {
#ifdef STTS_HAVE_CMD_TRANSLATE
        return cmd_translate(argc - 1, argv + 1);
#else
        return missing(sub);
#endif
    }
    if (strcmp(sub, "say") == 0 || strcmp(sub, "voices") == 0) {
#ifdef STTS_HAVE_CMD_SAY
        return sub[0] == 's' ? cmd_say(argc - 1, argv + 1) : cmd_voices(argc - 1, argv + 1);
#else
        return missing(sub);
#endif
    }
#ifdef STTS_HAVE_CMD_RUN
    return cmd_run(argc, argv);
#else
    return missing("the pipeline");
#endif
}
