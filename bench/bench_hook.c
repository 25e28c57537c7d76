/* bench_hook.c - how long `stream-tts hook` holds Claude Code: the time from
 * the end of its input (stdin closed) to EOF on its stdout and its exit, as
 * Claude Code waits for it. Paths: a running daemon (an in-process fake
 * that answers at once, as `serve` does before any speech work), no daemon
 * (start one and spool), and the floor: /bin/true started the same way
 * (fork, exec, pipes), the cost of any hook command at all, and
 * `stream-tts --version`, the cost of loading this program and its libraries.
 * usage: bench_hook STREAM_TTS [RUNS]   (default 200 runs per path) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stts_client.h"

static const char *k_payload =
    "{\"session_id\":\"9f1c2e7a-3b4d-4c8e-a1f2-6d7e8f9a0b1c\",\"transcript_path\":\"/home/ana/.claude/projects/"
    "-home-ana-app/9f1c2e7a-3b4d-4c8e-a1f2-6d7e8f9a0b1c.jsonl\",\"cwd\":\"/home/ana/app\",\"hook_event_name\":"
    "\"MessageDisplay\",\"turn_id\":\"0c9e6a2f-7d41-4f4e-9a15-3f4f7c2b8d10\",\"message_id\":\"5b2a9c8e-1f63-4d8a-"
    "b7c4-9e0d2a6f1c3b\",\"index\":1,\"final\":false,\"delta\":\"The failing test is `test_empty`.\\nIt expects "
    "**None** but gets `[]`.\\n\"}\n";

static void *fake_daemon(void *arg) {
    int l = *(int *)arg;
    char buf[65536];
    for (;;) {
        int c = accept(l, NULL, NULL);
        if (c < 0) return NULL;
        ssize_t n;
        size_t got = 0;
        while ((n = read(c, buf, sizeof buf)) > 0) {
            got += (size_t)n;
            if (memchr(buf, '\n', (size_t)n)) break;
        }
        const char *ok = "{\"v\":1,\"ok\":true}\n";
        if (write(c, ok, strlen(ok)) < 0) { /* gone */
        }
        close(c);
    }
}

/* One run: ms from closing stdin to EOF on stdout. */
static double run_once(const char *prog, const char *arg) {
    int in[2], out[2];
    if (pipe(in) || pipe(out)) return -1;
    pid_t p = fork();
    if (p == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]); close(in[1]); close(out[0]); close(out[1]);
        execl(prog, prog, arg, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    if (write(in[1], k_payload, strlen(k_payload)) < 0) { /* true does not read */
    }
    uint64_t t0 = stts_now_ns();
    close(in[1]);
    char b[64];
    while (read(out[0], b, sizeof b) > 0) {
    }
    int st;
    waitpid(p, &st, 0);
    double ms = (double)(stts_now_ns() - t0) / 1e6;
    close(out[0]);
    return ms;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *name, double *v, int n, double floor_p50) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    double p50 = v[n / 2], p99 = v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], mx = v[n - 1];
    printf("| %-44s | %7.2f | %7.2f | %7.2f | %s", name, p50, p99, mx, floor_p50 > 0 ? "" : "-");
    if (floor_p50 > 0) printf("%.2fx", p50 / floor_p50);
    printf(" |\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_hook STREAM_TTS [RUNS]\n");
        return 2;
    }
    const char *bin = argv[1];
    int runs = argc > 2 ? atoi(argv[2]) : 200;
    if (runs < 10) runs = 10;
    signal(SIGPIPE, SIG_IGN);
    char dir[] = "/tmp/bench-hook-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char sock[100];
    snprintf(sock, sizeof sock, "%s/socket", dir);
    setenv("STREAM_TTS_DAEMON", "/bin/true", 1); /* the no-daemon path: a daemon that never listens */
    double *floor = calloc((size_t)runs, sizeof *floor), *start = calloc((size_t)runs, sizeof *start),
           *live = calloc((size_t)runs, sizeof *live), *spool = calloc((size_t)runs, sizeof *spool);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", sock);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 64)) { perror("listen"); return 1; }
    pthread_t t;
    pthread_create(&t, NULL, fake_daemon, &l);
    char nosock[100];
    snprintf(nosock, sizeof nosock, "%s/none/socket", dir);
    /* Paths interleaved run by run, so each sees the same machine load. */
    for (int i = 0; i < runs; i++) {
        floor[i] = run_once("/bin/true", "hook");
        start[i] = run_once(bin, "--version");
        setenv("STREAM_TTS_SOCKET", sock, 1);
        live[i] = run_once(bin, "hook");
        setenv("STREAM_TTS_SOCKET", nosock, 1);
        spool[i] = run_once(bin, "hook");
    }
    qsort(floor, (size_t)runs, sizeof *floor, cmp_d);
    double f50 = floor[runs / 2];
    printf("%d runs per path, interleaved; ms from the end of the hook's input to EOF on its stdout\n\n", runs);
    printf("| path | p50 ms | p99 ms | max ms | p50 / floor p50 |\n| --- | ---: | ---: | ---: | ---: |\n");
    report("floor: /bin/true with the same pipes", floor, runs, 0);
    report("stream-tts --version (loading the program)", start, runs, f50);
    report("stream-tts hook, daemon running (delivered)", live, runs, f50);
    report("stream-tts hook, no daemon (spawn, wait, spool)", spool, runs, f50);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) != 0;
}
