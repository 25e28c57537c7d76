/* cmd_ctl.c - `stream-tts ctl stop|skip|pause|resume|replay [N]|speed X|
 * mute [SESSION]|unmute [SESSION]|status [--json]`: one request to the
 * daemon (docs/PROTOCOL.md), its reply printed. Exit 0 when the daemon
 * answered ok, 1 when it refused or none is listening, 2 on bad usage.
 * Built into the full program and the launcher (which runs it itself): it
 * needs only stts_client and jansson, nothing of the speech libraries. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "stts_client.h"
#include "stts_compat.h"
#include "stts_daemon.h"

/* The largest reply ctl reads: far above any status (sessions and the muted
 * list), small enough that a runaway peer cannot take the machine's memory. */
#define CTL_REPLY_MAX ((size_t)64 << 20)

/* --socket PATH or --socket=PATH (frontend_opts.c's cli_flag_value, which
 * the launcher does not link); NULL when argv[*i] is not --socket. */
static const char *socket_flag(int argc, char **argv, int *i, int *missing) {
    const char *a = argv[*i];
    *missing = 0;
    if (!strncmp(a, "--socket=", 9)) return a + 9;
    if (strcmp(a, "--socket") != 0) return NULL;
    if (*i + 1 >= argc) { *missing = 1; return NULL; }
    return argv[++*i];
}

static void usage(FILE *f) {
    fputs("usage: stream-tts ctl [--socket PATH] COMMAND\n"
          "  stop                    silence now and drop everything queued\n"
          "  skip                    end the sentence playing now\n"
          "  pause | resume          hold playback; resume continues from the same sample\n"
          "  replay [N]              say the last N sentences again (default 1, at most 16)\n"
          "  speed X                 speech rate for the next sentences (0.25 to 4)\n"
          "  mute [SESSION]          silence one session (or all) until unmute\n"
          "  unmute [SESSION]\n"
          "  status [--json]         sessions, queue, lag, model, device\n"
          "The socket is --socket, else $STREAM_TTS_SOCKET, $XDG_RUNTIME_DIR/stream-tts/socket,\n"
          "/tmp/stream-tts-$UID/socket.\n", f);
}

int cmd_ctl(int argc, char **argv) {
    const char *sock_flag = NULL, *cmd = NULL, *arg = NULL;
    int as_json = 0;
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *v;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        if ((v = socket_flag(argc, argv, &i, &missing)) || missing) {
            if (missing) { fprintf(stderr, "stream-tts ctl: --socket needs a path\n"); return 2; }
            sock_flag = v;
        } else if (!strcmp(argv[i], "--json")) {
            as_json = 1;
        } else if (!cmd) {
            cmd = argv[i];
        } else if (!arg) {
            arg = argv[i];
        } else {
            fprintf(stderr, "stream-tts ctl: unexpected '%s' (see stream-tts ctl --help)\n", argv[i]);
            return 2;
        }
    }
    if (!cmd) { usage(stderr); return 2; }
    json_t *rq = json_object();
    json_object_set_new(rq, "v", json_integer(DAEMON_PROTOCOL_VERSION));
    const char *ops[] = {"stop", "skip", "pause", "resume", "replay", "speed", "mute", "unmute", "status"};
    size_t k = 0;
    while (k < sizeof ops / sizeof ops[0] && strcmp(ops[k], cmd) != 0) k++;
    if (k == sizeof ops / sizeof ops[0]) {
        fprintf(stderr, "stream-tts ctl: unknown command '%s' (see stream-tts ctl --help)\n", cmd);
        json_decref(rq);
        return 2;
    }
    json_object_set_new(rq, "op", json_string(cmd));
    char *end;
    if (!strcmp(cmd, "replay") && arg) {
        long n = strtol(arg, &end, 10);
        if (*end || n < 1 || n > 16) { fprintf(stderr, "stream-tts ctl: replay takes N from 1 to 16, got '%s'\n", arg); json_decref(rq); return 2; }
        json_object_set_new(rq, "n", json_integer(n));
    } else if (!strcmp(cmd, "speed")) {
        double x = arg ? strtod(arg, &end) : 0;
        if (!arg || *end || !(x >= 0.25 && x <= 4)) {
            fprintf(stderr, "stream-tts ctl: speed takes a number from 0.25 to 4\n");
            json_decref(rq);
            return 2;
        }
        json_object_set_new(rq, "x", json_real(x));
    } else if ((!strcmp(cmd, "mute") || !strcmp(cmd, "unmute")) && arg) {
        json_object_set_new(rq, "session", json_string(arg));
    } else if (arg) {
        fprintf(stderr, "stream-tts ctl: '%s' takes no argument%s ('%s' given)\n", cmd,
                !strcmp(cmd, "status") ? " but --json" : "", arg);
        json_decref(rq);
        return 2;
    }
    char *line = json_dumps(rq, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(rq);
    char path[108];
    stts_error e;
    if (!line || client_socket_path(sock_flag, path, sizeof path, &e) != STTS_OK) {
        fprintf(stderr, "stream-tts ctl: %s\n", line ? e.msg : "out of memory");
        free(line);
        return 2;
    }
    /* Non-blocking: a blocking connect to a daemon whose listen queue is
     * full (stuck, or stopped, while hooks kept connecting) waited for a
     * place forever, and ctl is what a user runs to see what is wrong. */
    int fd = stts_socket_cloexec(AF_UNIX, SOCK_STREAM, 1);
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int rc_conn = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&a, sizeof a);
    for (int tries = 0; rc_conn != 0 && fd >= 0 && (errno == EAGAIN || errno == EINTR) && tries < 200; tries++) {
        struct timespec ts = {0, 10000000};   /* 2 s in all */
        nanosleep(&ts, NULL);
        rc_conn = connect(fd, (struct sockaddr *)&a, sizeof a);
    }
    if (rc_conn != 0 && fd >= 0 && errno == EAGAIN) {
        fprintf(stderr, "stream-tts ctl: the stream-tts daemon on %s accepts no connection (its queue of waiting "
                        "connections stayed full for 2 s: it is stuck or stopped); serve.log beside the socket "
                        "names its pid: kill it, and the next hook starts another\n", path);
        free(line);
        close(fd);
        return 1;
    }
    if (rc_conn != 0) {
        fprintf(stderr, "stream-tts ctl: no stream-tts daemon is listening on %s (%s); start one with "
                        "stream-tts serve\n", path, strerror(errno));
        free(line);
        if (fd >= 0) close(fd);
        return 1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);   /* the rest waits with poll() */
    size_t n = strlen(line);
    line[n] = '\n';   /* json_dumps leaves room only for the NUL: send it as two writes instead */
    line[n] = '\0';
    int ok = stts_send_nosignal(fd, line, n, 0) == (ssize_t)n && stts_send_nosignal(fd, "\n", 1, 0) == 1;
    free(line);
    /* The reply grows with the daemon's sessions and muted list: a fixed
     * 64 KiB buffer made `ctl status` fail on a busy daemon. Read a line of
     * any size up to CTL_REPLY_MAX (the daemon's own request line bound). */
    size_t cap = 65536, got = 0;
    char *buf = malloc(cap);
    if (!buf) ok = 0;
    /* A stop waits for the player to let go (at most 1 s); 10 s covers a loaded machine. */
    while (ok) {
        if (got == cap - 1) {
            char *g = cap < CTL_REPLY_MAX ? realloc(buf, cap * 2) : NULL;
            if (!g) { ok = 0; break; }
            buf = g;
            cap *= 2;
        }
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 10000) <= 0) { ok = 0; break; }
        ssize_t r = recv(fd, buf + got, cap - 1 - got, 0);
        if (r <= 0) { ok = got > 0; break; }
        got += (size_t)r;
        if (memchr(buf + got - (size_t)r, '\n', (size_t)r)) break;
    }
    close(fd);
    if (buf) buf[got] = '\0';
    if (!ok || !got) {
        fprintf(stderr, "stream-tts ctl: the daemon on %s did not answer\n", path);
        free(buf);
        return 1;
    }
    json_error_t je;
    json_t *r = json_loads(buf, 0, &je);
    if (!r) { fprintf(stderr, "stream-tts ctl: unreadable reply: %.300s\n", buf); free(buf); return 1; }
    int rc = json_is_true(json_object_get(r, "ok")) ? 0 : 1;
    if (rc) {
        fprintf(stderr, "stream-tts ctl: %s\n", json_string_value(json_object_get(r, "error")));
    } else if (as_json) {
        fputs(buf, stdout);
    } else if (!strcmp(cmd, "status")) {
        printf("state %s, pid %lld, socket %s\n", json_string_value(json_object_get(r, "state")),
               (long long)json_integer_value(json_object_get(r, "pid")), path);
        printf("model %s\noutput %s\n", json_string_value(json_object_get(r, "model")),
               json_string_value(json_object_get(r, "device")));
        printf("queue %lld, lag %.1f s, spoken %lld%s\n", (long long)json_integer_value(json_object_get(r, "queue")),
               json_number_value(json_object_get(r, "lag")), (long long)json_integer_value(json_object_get(r, "spoken")),
               json_is_true(json_object_get(r, "paused")) ? ", paused" : "");
        json_t *ss = json_object_get(r, "sessions");
        printf("sessions %zu", json_array_size(ss));
        for (size_t i = 0; i < json_array_size(ss); i++)
            printf("%s%s", i ? ", " : ": ", json_string_value(json_array_get(ss, i)));
        printf("\n");
        /* what silences or changes speech, so that a user who hears nothing finds why */
        json_t *oe = json_object_get(r, "output_error");
        if (json_is_string(oe)) printf("output failing: %s (speech is dropped until it works again)\n", json_string_value(oe));
        double speed = json_number_value(json_object_get(r, "speed"));
        if (speed > 0 && speed != 1.0) printf("speed %.2f\n", speed);
        json_t *mu = json_object_get(r, "muted");
        if (json_is_true(json_object_get(r, "muted_all"))) printf("muted: every session (stream-tts ctl unmute)\n");
        if (json_object_size(mu)) {
            printf("muted sessions %zu", json_object_size(mu));
            const char *k;
            json_t *v;
            size_t i = 0;
            json_object_foreach(mu, k, v) printf("%s%s", i++ ? ", " : ": ", k);
            printf("\n");
        }
    } else if (!strcmp(cmd, "skip")) {
        if (json_integer_value(json_object_get(r, "skipped")) > 0) printf("skipped the sentence playing\n");
        else printf("nothing was playing; nothing skipped\n");
    } else if (!strcmp(cmd, "replay")) {
        long long n = json_integer_value(json_object_get(r, "replayed"));
        if (n > 0) printf("replaying %lld sentence%s\n", n, n == 1 ? "" : "s");
        else if (json_is_true(json_object_get(r, "muted"))) printf("nothing replayed: every session is muted\n");
        else printf("nothing to replay: no sentence has been played yet\n");
    } else if ((!strcmp(cmd, "mute") || !strcmp(cmd, "unmute")) && json_is_false(json_object_get(r, "known"))) {
        printf("ok; note: the daemon holds no session with that id now (stream-tts ctl status lists them)\n");
    } else if (!strcmp(cmd, "stop")) {
        printf("stopped in %.1f ms (%lld sentences dropped)\n", json_number_value(json_object_get(r, "stop_ms")),
               (long long)json_integer_value(json_object_get(r, "dropped")));
    } else {
        printf("ok\n");
    }
    json_decref(r);
    free(buf);
    return rc;
}
