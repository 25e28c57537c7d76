/* main.c - the stream-tts program: picks a subcommand and hands over argv.
 * `stream-tts translate|say|voices|hook|install-hooks ...` run one part on
 * its own; `run` or anything else is the streaming pipeline (cmd_run).
 *
 * Built twice. The full program has every subcommand. The launcher
 * (STTS_LAUNCHER, installed as bin/stream-tts) has only the light ones
 * (hook, install-hooks, ctl, --version) and execs the full program for the rest:
 * loading the full program's ~45 shared libraries (audio, speech, MT) costs
 * more than everything `stream-tts hook` itself does, and Claude Code waits
 * for every hook (docs/PERFORMANCE.md, Hook client). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#ifdef STTS_LAUNCHER
#include "stts_client.h"
#include "stts_compat.h"
#endif

#if defined(__GLIBC__) && !defined(STTS_LAUNCHER)
#include <malloc.h>
#endif

#ifndef STTS_VERSION
#define STTS_VERSION "unknown"
#endif

#if defined(__GNUC__)
__attribute__((unused))  /* unused once every cmd_*.c file exists */
#endif
static int missing(const char *what) {
    fprintf(stderr, "stream-tts: '%s' is not available in this build\n", what);
    return 2;
}

/* A subcommand whose cmd_<name>.c is absent from this build (CMake defines
 * STTS_HAVE_CMD_<NAME> for each present one) is listed but says so. */
#define MISSING_CMD(name) ((int (*)(int, char **))0)
static const struct {
    const char *name, *what;
    int (*fn)(int, char **);
} k_cmds[] = {
#ifdef STTS_HAVE_CMD_RUN
    {"run", "speak Claude Code's stream-json output (the default: stream-tts [flags])", cmd_run},
#else
    {"run", "speak Claude Code's stream-json output (the default: stream-tts [flags])", MISSING_CMD(run)},
#endif
#ifdef STTS_HAVE_CMD_TRANSLATE
    {"translate", "translate text with the local NLLB engine", cmd_translate},
#else
    {"translate", "translate text with the local NLLB engine", MISSING_CMD(translate)},
#endif
#ifdef STTS_HAVE_CMD_SAY
    {"say", "speak (or write to a file) one text", cmd_say},
    {"voices", "list the voices of every speech backend", cmd_voices},
#else
    {"say", "speak (or write to a file) one text", MISSING_CMD(say)},
    {"voices", "list the voices of every speech backend", MISSING_CMD(voices)},
#endif
#ifdef STTS_HAVE_CMD_SERVE
    {"serve", "the daemon: one warm pipeline and one audio queue for every session", cmd_serve},
#else
    {"serve", "the daemon: one warm pipeline and one audio queue for every session", MISSING_CMD(serve)},
#endif
#if defined(STTS_HAVE_CMD_CTL) || defined(STTS_HAVE_CMD_SERVE)  /* serve and ctl come together */
    {"ctl", "control the daemon: stop, skip, pause, resume, replay, speed, mute, status", cmd_ctl},
#else
    {"ctl", "control the daemon: stop, skip, pause, resume, replay, speed, mute, status", MISSING_CMD(ctl)},
#endif
#ifdef STTS_HAVE_CMD_HOOK
    {"hook", "run by Claude Code hooks: hands the payload on stdin to the daemon", cmd_hook},
#else
    {"hook", "run by Claude Code hooks: hands the payload on stdin to the daemon", MISSING_CMD(hook)},
#endif
#ifdef STTS_HAVE_CMD_INSTALL_HOOKS
    {"install-hooks", "add (or --uninstall) the hook entries in Claude Code's settings.json", cmd_install_hooks},
#else
    {"install-hooks", "add (or --uninstall) the hook entries in Claude Code's settings.json", MISSING_CMD(install_hooks)},
#endif
#ifdef STTS_HAVE_CMD_CONVERT
    {"convert", "convert a Hugging Face NLLB checkpoint to the engine's format", cmd_convert},
#else
    {"convert", "convert a Hugging Face NLLB checkpoint to the engine's format", MISSING_CMD(convert)},
#endif
};
#define N_CMDS (sizeof k_cmds / sizeof k_cmds[0])

static void list_commands(FILE *f) {
    fprintf(f, "stream-tts %s - speaks Claude Code's replies, translated locally\n\n"
               "usage: stream-tts [SUBCOMMAND] [flags]   (each subcommand takes --help)\n\nsubcommands:\n",
            STTS_VERSION);
    for (size_t i = 0; i < N_CMDS; i++)
        fprintf(f, "  %-14s %s%s\n", k_cmds[i].name, k_cmds[i].what, k_cmds[i].fn ? "" : " (not in this build)");
    fputs("\nflags of the default subcommand (run):\n", f);
}

#ifdef STTS_LAUNCHER
/* `serve` could not be handed to the full program: said on stderr (serve.log
 * for a daemon a hook started) and, as any failed daemon start, in
 * serve.failed beside the socket (its --socket, else the default one), which
 * the next hook reads: it logs why in hook.log and holds off starting
 * another. Only stderr said it before, so hooks kept starting launchers
 * that failed at once, and hook.log said "started". */
static int full_failed(char **argv, const char *fmt, const char *a, const char *b) {
    char why[3 * PATH_MAX];
    snprintf(why, sizeof why, fmt, a, b);
    fprintf(stderr, "stream-tts: %s\n", why);
    if (argv[1] && strcmp(argv[1], "serve") == 0) {
        const char *sock = NULL;
        for (int i = 2; argv[i]; i++) {
            if (strcmp(argv[i], "--socket") == 0 && argv[i + 1]) sock = argv[++i];
            else if (strncmp(argv[i], "--socket=", 9) == 0) sock = argv[i] + 9;
        }
        stts_error e;
        if (client_write_start_failed(sock, why, &e) != STTS_OK) fprintf(stderr, "stream-tts: %s\n", e.msg);
    }
    return 1;
}

/* Replaces this process (same pid, so signals and exit status are the full
 * program's) with the full program: installed as <prefix>/libexec/stream-tts-full,
 * or the build tree's stream-tts beside this launcher. */
static int exec_full(char **argv) {
    char self[PATH_MAX], cand[PATH_MAX + 32];
    ssize_t n = stts_self_exe_path(self, sizeof self);
    if (n <= 0) return full_failed(argv, "cannot find the running program (" STTS_SELF_EXE_SOURCE ")%s%s", "", "");
    char *slash = strrchr(self, '/');
    *slash = '\0';
    const char *rel[] = {"/../libexec/stream-tts-full", "/stream-tts"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        snprintf(cand, sizeof cand, "%s%s", self, rel[i]);
        if (access(cand, X_OK) != 0) continue;
        argv[0] = cand;
        execv(cand, argv);
        return full_failed(argv, "cannot run the full program %s: %s; reinstall stream-tts (cmake --install)", cand,
                           strerror(errno));
    }
    return full_failed(argv, "the full program is missing or not executable (%s/../libexec/stream-tts-full; the "
                       "launcher %s/stream-tts runs it for everything but hook, install-hooks and ctl); reinstall "
                       "stream-tts (cmake --install)", self, self);
}
#endif

/* A subcommand that succeeded but whose output did not all reach stdout
 * (/dev/full, a disk that filled, a closed descriptor) fails: without this
 * `stream-tts translate ... > out.txt` on a full disk exited 0 with a short
 * file. A subcommand that already failed has said why. */
static int check_stdout(int rc) {
    int flush_failed = fflush(stdout) != 0, e = errno;
    if (rc != 0 || (!flush_failed && !ferror(stdout))) return rc;
    fprintf(stderr, "stream-tts: writing to standard output failed%s%s; the output is incomplete\n",
            flush_failed ? ": " : "", flush_failed ? strerror(e) : "");
    return 1;
}

static int run_cmd(int argc, char **argv) {
#ifndef STTS_LAUNCHER   /* the launcher maps no dictionary or model */
    cli_install_sigbus_handler();
#ifdef __GLIBC__
    /* The program runs for hours and now and then reads a multi-megabyte
     * JSON line (a tool result). glibc's dynamic mmap threshold rises to the
     * size of the first such buffer freed, so later ones come from the heap
     * of whichever thread freed them, and those heaps keep their high-water
     * marks: scripts/soak measured anonymous memory creeping 32 -> 44 MB over
     * 6 minutes, still rising. A fixed threshold (which also turns the dynamic
     * one off) sends every block of 256 KiB or more to mmap and back to the
     * kernel on free: flat after warm-up (0.4 MB/min, the noise of sentence
     * lengths), for a few page faults per long line. Scratch buffers of the
     * engine grow once and are reused, so no decode step pays for this. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
#endif
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "--version") == 0 || strcmp(sub, "version") == 0) {
        printf("stream-tts %s\n", STTS_VERSION);
        return 0;
    }
#ifdef STTS_LAUNCHER
    for (size_t i = 0; i < N_CMDS; i++)
        if (strcmp(sub, k_cmds[i].name) == 0 && k_cmds[i].fn) return k_cmds[i].fn(argc - 1, argv + 1);
    return exec_full(argv);
#endif
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        list_commands(stdout);
        fflush(stdout);
#ifdef STTS_HAVE_CMD_RUN
        char *help[] = {argv[0], (char *)"--help", NULL};
        return cmd_run(2, help);
#else
        return 0;
#endif
    }
    for (size_t i = 0; i < N_CMDS; i++) {
        if (strcmp(sub, k_cmds[i].name) != 0) continue;
        if (!k_cmds[i].fn) return missing(sub);
        return k_cmds[i].fn(argc - 1, argv + 1);
    }
#ifdef STTS_HAVE_CMD_RUN
    return cmd_run(argc, argv);
#else
    return missing("the pipeline");
#endif
}

int main(int argc, char **argv) { return check_stdout(run_cmd(argc, argv)); }
