/* sigbus.c - a clear last word when a mapped file shrinks under stream-tts.
 *
 * The Open JTalk dictionaries (system and user .dic files) stay memory-mapped
 * while stream-tts runs. If one is truncated or rewritten in place, the next
 * read of a page past its new end raises SIGBUS, which would kill the process
 * with a bare "Bus error". This handler finds the file behind the faulting
 * address in /proc/self/maps (Linux; elsewhere it names the kinds of file
 * that can do this) and says which file it was and what to do, then exits
 * with status 1. Only async-signal-safe calls (open, read, write,
 * _exit) are used. NLLB weights used in place from their mapping (a file
 * already in the compute format) can fault the same way, and are named alike. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void put(const char *s) {
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t k = write(2, s, n);
        if (k <= 0) return;
        s += k;
        n -= (size_t)k;
    }
}

#ifdef __linux__   /* only the /proc/self/maps reader below needs it */
static uintptr_t hex(const char **p) {
    uintptr_t v = 0;
    for (;; (*p)++) {
        char c = **p;
        if (c >= '0' && c <= '9') v = v * 16 + (uintptr_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v = v * 16 + (uintptr_t)(c - 'a' + 10);
        else return v;
    }
}
#endif

/* Copies the path of the mapping holding addr into out ("" when unknown). */
static void mapped_file(uintptr_t addr, char *out, size_t cap) {
    out[0] = '\0';
#ifdef __linux__
    static char buf[8192];
    static char line[4096];
    size_t ll = 0;
    int fd = open("/proc/self/maps", O_RDONLY);
    if (fd < 0) return;
    ssize_t k;
    while ((k = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < k; i++) {
            if (buf[i] != '\n') {
                if (ll + 1 < sizeof line) line[ll++] = buf[i];
                continue;
            }
            line[ll] = '\0';
            ll = 0;
            const char *p = line;
            uintptr_t lo = hex(&p);
            if (*p++ != '-') continue;
            uintptr_t hi = hex(&p);
            if (addr < lo || addr >= hi) continue;
            const char *path = strchr(line, '/');
            if (path) {
                size_t n = strlen(path);
                if (n >= cap) n = cap - 1;
                memcpy(out, path, n);
                out[n] = '\0';
            }
            close(fd);
            return;
        }
    }
    close(fd);
#else
    (void)addr;   /* no /proc/self/maps (macOS): on_sigbus says what it can */
    (void)cap;
#endif
}

static void on_sigbus(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    (void)ctx;
    static char path[1024];
    mapped_file((uintptr_t)si->si_addr, path, sizeof path);
    put("stream-tts: ");
    if (path[0]) {
        put(path);
        put(" was truncated or rewritten in place while stream-tts had it mapped (SIGBUS); stopping. "
            "Replace dictionary and model files by writing a new file and renaming it over the old one, "
            "then restart stream-tts.\n");
    } else {
#ifdef __linux__
        put("a memory-mapped file was truncated while in use (SIGBUS); stopping. Restart stream-tts.\n");
#else
        put("a memory-mapped file (an Open JTalk dictionary, or an NLLB model file used in place) was truncated "
            "or rewritten in place while stream-tts had it mapped (SIGBUS); stopping. Replace dictionary and model "
            "files by writing a new file and renaming it over the old one, then restart stream-tts.\n");
#endif
    }
    _exit(1);
}

void cli_install_sigbus_handler(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
}
