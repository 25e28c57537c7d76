/* cli_args.c - command-line helpers shared by the full program and the
 * launcher (which links no front end): see cli.h. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A subcommand's argv with each "--name=VALUE" of the named value flags
 * split into "--name" "VALUE", in one allocation the caller frees. The main
 * command and serve read both spellings flag by flag (cli_flag_value); the
 * other subcommands compare whole words, so without this `translate
 * --tgt=fra_Latn` was refused as an unknown option. A word after "--" or a
 * flag not in the list is left as it is (a text to say may hold '='). */
char **cli_split_equals(int argc, char **argv, const char *const *value_flags, int *out_argc) {
    size_t extra = 0;
    int words = argc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        const char *eq = argv[i][0] == '-' ? strchr(argv[i], '=') : NULL;
        if (!eq) continue;
        for (const char *const *f = value_flags; *f; f++)
            if (strlen(*f) == (size_t)(eq - argv[i]) && !strncmp(argv[i], *f, (size_t)(eq - argv[i]))) {
                extra += (size_t)(eq - argv[i]) + 1;
                words++;
                break;
            }
    }
    char **out = malloc(((size_t)words + 1) * sizeof *out + extra);
    if (!out) return NULL;
    char *names = (char *)(out + words + 1);
    int n = 0, rest = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (i > 0 && !rest && !strcmp(a, "--")) rest = 1;
        const char *eq = i > 0 && !rest && a[0] == '-' ? strchr(a, '=') : NULL;
        int split = 0;
        if (eq)
            for (const char *const *f = value_flags; *f; f++)
                if (strlen(*f) == (size_t)(eq - a) && !strncmp(a, *f, (size_t)(eq - a))) { split = 1; break; }
        if (!split) { out[n++] = argv[i]; continue; }
        size_t len = (size_t)(eq - a);
        memcpy(names, a, len);
        names[len] = '\0';
        out[n++] = names;
        names += len + 1;
        out[n++] = (char *)eq + 1;
    }
    out[n] = NULL;
    *out_argc = n;
    return out;
}

int cli_run_split(int argc, char **argv, const char *const *value_flags, int (*fn)(int, char **)) {
    int n;
    char **args = cli_split_equals(argc, argv, value_flags, &n);
    if (!args) {
        fprintf(stderr, "stream-tts: out of memory reading the command line\n");
        return 1;
    }
    int rc = fn(n, args);
    free(args);
    return rc;
}
