/* test_client.c - the stts_client module against real sockets, files and
 * processes: socket path resolution, folder checks, line exchange with a
 * server thread (replies, timeouts, refused and missing sockets), the spool
 * (order, atomic names, drain), the detached spawn (no inherited descriptor,
 * own session) and hook payload forwarding. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/log_cap.h"
#include "stts_client.h"
#include "test.h"

static char g_tmp[64];

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int listen_on(const char *path) {
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 8) != 0) return -1;
    return fd;
}

static void test_socket_path(void) {
    char p[PATH_MAX];
    stts_error e;
    char xdg[64], sub[96];
    snprintf(xdg, sizeof xdg, "/tmp/stts-xdg-XXXXXX");
    CHECK(mkdtemp(xdg) != NULL);
    unsetenv("STREAM_TTS_SOCKET");
    setenv("XDG_RUNTIME_DIR", xdg, 1);
    CHECK(client_socket_path("/x/y.sock", p, sizeof p, &e) == STTS_OK);
    CHECK_EQ_STR(p, "/x/y.sock");
    CHECK(client_socket_path(NULL, p, sizeof p, &e) == STTS_OK);
    snprintf(sub, sizeof sub, "%s/stream-tts/socket", xdg);
    CHECK_EQ_STR(p, sub);
    /* A stale $XDG_RUNTIME_DIR (removed at logout, a file, another user's
     * after su): the /tmp folder, and a note saying why (it once gave a
     * socket folder that could not be made, and every hook was lost). */
    char fb[64], note[512];
    snprintf(fb, sizeof fb, "/tmp/stream-tts-%u/socket", (unsigned)getuid());
    const char *stale[] = {"/run/user/4242-stts-missing", "/etc/passwd", "relative/dir"};
    for (int i = 0; i < 3; i++) {
        setenv("XDG_RUNTIME_DIR", stale[i], 1);
        CHECK(client_socket_path_note(NULL, p, sizeof p, note, sizeof note, &e) == STTS_OK);
        CHECK_EQ_STR(p, fb);
        CHECK_MSG(strstr(note, stale[i]) && strstr(note, "unusable") && strstr(note, fb), "note: %s", note);
    }
    if (getuid() != 0) {   /* root may write anywhere */
        setenv("XDG_RUNTIME_DIR", "/", 1);
        CHECK(client_socket_path(NULL, p, sizeof p, &e) == STTS_OK);
        CHECK_EQ_STR(p, fb);
    }
    setenv("XDG_RUNTIME_DIR", xdg, 1);
    CHECK(client_socket_path_note(NULL, p, sizeof p, note, sizeof note, &e) == STTS_OK);
    CHECK_EQ_STR(note, "");
    rmdir(xdg);
    setenv("STREAM_TTS_SOCKET", "/e/s", 1);
    CHECK(client_socket_path("", p, sizeof p, &e) == STTS_OK);
    CHECK_EQ_STR(p, "/e/s");
    /* A relative path is made absolute against the current folder: a hook
     * starts the daemon after chdir("/"), so the two looked in different
     * folders (the daemon under /, every request spooled where no daemon
     * replays it). */
    char cwd[PATH_MAX], rel[PATH_MAX + 16];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    snprintf(rel, sizeof rel, "%s/run/s.sock", cwd);
    setenv("STREAM_TTS_SOCKET", "run/s.sock", 1);
    CHECK(client_socket_path(NULL, p, sizeof p, &e) == STTS_OK);
    CHECK_EQ_STR(p, rel);
    unsetenv("STREAM_TTS_SOCKET");
    CHECK(client_socket_path("run/s.sock", p, sizeof p, &e) == STTS_OK);
    CHECK_EQ_STR(p, rel);
    unsetenv("STREAM_TTS_SOCKET");
    unsetenv("XDG_RUNTIME_DIR");
    char want[64];
    snprintf(want, sizeof want, "/tmp/stream-tts-%u/socket", (unsigned)getuid());
    CHECK(client_socket_path(NULL, p, sizeof p, &e) == STTS_OK);
    CHECK_EQ_STR(p, want);
    char longp[200];
    memset(longp, 'a', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = '\0';
    CHECK(client_socket_path(longp, p, sizeof p, &e) == STTS_ERR_INVALID_ARG);
    CHECK(strstr(e.msg, "shorter") != NULL);
    CHECK(client_socket_dir("/a/b/socket", p, sizeof p, &e) == STTS_OK);
    CHECK_EQ_STR(p, "/a/b");
    CHECK(client_socket_dir("socket", p, sizeof p, &e) == STTS_OK);
    CHECK_EQ_STR(p, ".");
}

static void test_prepare_dir(void) {
    char d[128], l[PATH_MAX];
    stts_error e;
    struct stat st;
    snprintf(d, sizeof d, "%s/run", g_tmp);
    CHECK(client_prepare_dir(d, &e) == STTS_OK);
    CHECK(stat(d, &st) == 0 && (st.st_mode & 0777) == 0700);
    CHECK(client_prepare_dir(d, &e) == STTS_OK); /* exists: fine */
    chmod(d, 0777);
    CHECK(client_prepare_dir(d, &e) == STTS_ERR_INVALID_ARG);
    CHECK(strstr(e.msg, "chmod 700") != NULL);
    chmod(d, 0700);
    snprintf(l, sizeof l, "%s/link", g_tmp);
    CHECK(symlink(d, l) == 0);
    CHECK(client_prepare_dir(l, &e) == STTS_ERR_INVALID_ARG);
    CHECK(strstr(e.msg, "not a folder") != NULL);
    snprintf(l, sizeof l, "%s/nope/deeper", g_tmp);
    CHECK(client_prepare_dir(l, &e) == STTS_ERR_IO);
    char sock[PATH_MAX], sp[PATH_MAX];
    snprintf(sock, sizeof sock, "%s/socket", d);
    CHECK(client_spool_dir(sock, sp, sizeof sp, &e) == STTS_OK);
    CHECK(stat(sp, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
}

/* A server thread: accepts one connection, reads one line, answers. */
typedef struct {
    int lfd;
    int mode; /* 0 reply, 1 never reply, 2 close without replying, 3 reply in two pieces */
    char got[256];
} server;

static void *serve_one(void *arg) {
    server *s = arg;
    int c = accept(s->lfd, NULL, NULL);
    if (c < 0) return NULL;
    size_t n = 0;
    while (n < sizeof s->got - 1) {
        ssize_t r = read(c, s->got + n, 1);
        if (r <= 0 || s->got[n] == '\n') break;
        n++;
    }
    s->got[n] = '\0';
    if (s->mode == 0) {
        const char *r = "{\"v\":1,\"ok\":true}\n{\"second\":1}\n";
        if (write(c, r, strlen(r)) < 0) perror("write");
    } else if (s->mode == 1) {
        /* Never replies, and holds the connection until the client has given
         * up and closed its end (10 s at most): its wait can only end by its
         * own timeout. (A fixed 1.5 s hold against a 1.4 s bound on the
         * client's wait left 0.1 s between "on time" and "at close".) */
        struct pollfd pf = {c, POLLIN, 0};
        char b;
        while (poll(&pf, 1, 10000) > 0 && read(c, &b, 1) > 0) {}
    } else if (s->mode == 3) {
        if (write(c, "{\"v\":1,", 7) < 0) perror("write");
        sleep_ms(20);
        if (write(c, "\"ok\":true}\n", 11) < 0) perror("write");
    }
    close(c);
    return NULL;
}

static void test_request(void) {
    char sock[PATH_MAX];
    stts_error e;
    snprintf(sock, sizeof sock, "%s/run/socket", g_tmp);
    char *reply = NULL;
    /* No socket file at all. */
    CHECK(client_request(sock, "{}", 2, 50, &reply, &e) == STTS_ERR_NOT_FOUND);
    /* A stale socket file nobody listens on: refused, also NOT_FOUND. */
    int fd = listen_on(sock);
    CHECK(fd >= 0);
    close(fd);
    CHECK(client_request(sock, "{}", 2, 50, &reply, &e) == STTS_ERR_NOT_FOUND);
    for (int mode = 0; mode < 4; mode++) {
        server s = {listen_on(sock), mode, ""};
        CHECK(s.lfd >= 0);
        pthread_t t;
        pthread_create(&t, NULL, serve_one, &s);
        uint64_t t0 = stts_now_ns();
        stts_status st = client_request(sock, "{\"v\":1,\"op\":\"status\"}", 22, 100, &reply, &e);
        double ms = (double)(stts_now_ns() - t0) / 1e6;
        pthread_join(t, NULL);
        close(s.lfd);
        CHECK_EQ_STR(s.got, "{\"v\":1,\"op\":\"status\"}");
        if (mode == 0 || mode == 3) {
            CHECK_MSG(st == STTS_OK, "mode %d: %s", mode, e.msg);
            CHECK_EQ_STR(reply, "{\"v\":1,\"ok\":true}");
        } else {
            CHECK(st == (mode == 2 ? STTS_ERR_NOT_FOUND : STTS_ERR_IO));   /* 2: closed, the request not taken */
            CHECK(reply == NULL);
            CHECK(strstr(e.msg, mode == 1 ? "within 100 ms" : "without replying") != NULL);
            /* gave up on time ("within 100 ms" above: the server holds on until
             * the client closes); the upper bound is a hang guard */
            if (mode == 1) CHECK_MSG(ms >= 99 && ms < 5000, "timeout took %.1f ms", ms);
        }
        free(reply);
        reply = NULL;
    }
    /* Two lines on one connection; a newline inside a request is refused. */
    server s = {listen_on(sock), 0, ""};
    pthread_t t;
    pthread_create(&t, NULL, serve_one, &s);
    client_conn *c;
    CHECK(client_conn_open(sock, 100, &c, &e) == STTS_OK);
    CHECK(client_conn_send(c, "a\nb", 3, 100, &e) == STTS_ERR_INVALID_ARG);
    CHECK(client_conn_send(c, "x", 1, 100, &e) == STTS_OK);
    const char *line;
    size_t n;
    CHECK(client_conn_recv(c, &line, &n, 100, &e) == STTS_OK && n == 17);
    CHECK(client_conn_recv(c, &line, &n, 100, &e) == STTS_OK);
    CHECK_EQ_STR(line, "{\"second\":1}");
    /* closed with no reply begun: the request was not taken */
    CHECK(client_conn_recv(c, &line, &n, 100, &e) == STTS_ERR_NOT_FOUND);
    client_conn_free(c);
    pthread_join(t, NULL);
    close(s.lfd);
    unlink(sock);
}

typedef struct {
    char lines[8][64];
    int n, stop_at;
} drained;

static stts_status on_spool(const char *line, size_t n, const char *path, void *user) {
    drained *d = user;
    (void)path;
    if (d->n == d->stop_at) return STTS_ERR_CANCELLED;
    snprintf(d->lines[d->n++], 64, "%.*s", (int)n, line);
    return d->n == 2 ? STTS_ERR_FORMAT : STTS_OK; /* a failing request is deleted all the same */
}

static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) n += e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."));
    if (d) closedir(d);
    return n;
}

static void test_spool(void) {
    char sock[PATH_MAX], sp[PATH_MAX], path[PATH_MAX];
    stts_error e;
    snprintf(sock, sizeof sock, "%s/run/socket", g_tmp);
    CHECK(client_spool_dir(sock, sp, sizeof sp, &e) == STTS_OK);
    const char *req[] = {"{\"n\":1}", "{\"n\":2}", "{\"n\":3}", "{\"n\":4}"};
    char first[PATH_MAX] = "";
    for (int i = 0; i < 4; i++) {
        CHECK(client_spool_write(sp, req[i], strlen(req[i]), path, sizeof path, &e) == STTS_OK);
        if (!i) snprintf(first, sizeof first, "%s", path);
    }
    /* Name: 20-digit timestamp, '-', pid, ".json"; content: the line and '\n'. */
    const char *base = strrchr(first, '/') + 1;
    char want_tail[32];
    snprintf(want_tail, sizeof want_tail, "-%ld.json", (long)getpid());
    CHECK(strlen(base) == 20 + strlen(want_tail) && strcmp(base + 20, want_tail) == 0);
    size_t n;
    char *body = test_read_file(first, &n);
    CHECK_EQ_STR(body, "{\"n\":1}\n");
    free(body);
    /* An unfinished write (dot name) and foreign files are left alone. */
    char junk[PATH_MAX + 32];
    snprintf(junk, sizeof junk, "%s/.00000000000000000001-1.tmp", sp);
    FILE *f = fopen(junk, "w");
    if (f) { fputs("{\"partial\"", f); fclose(f); }
    CHECK(count_files(sp) == 5);
    drained d = {.stop_at = 3};
    size_t done = 0, dropped = 0;
    CHECK(client_spool_drain(sp, on_spool, &d, &done, &dropped, &e) == STTS_OK);
    CHECK_EQ_INT(d.n, 3);
    CHECK_EQ_STR(d.lines[0], "{\"n\":1}");
    CHECK_EQ_STR(d.lines[1], "{\"n\":2}");
    CHECK_EQ_STR(d.lines[2], "{\"n\":3}");
    CHECK_EQ_INT(done, 3);
    CHECK_EQ_INT(count_files(sp), 2); /* request 4 kept (cancelled) + the dot file */
    d.n = 0;
    d.stop_at = -1;
    CHECK(client_spool_drain(sp, on_spool, &d, &done, &dropped, &e) == STTS_OK);
    CHECK_EQ_INT(d.n, 1);
    CHECK_EQ_STR(d.lines[0], "{\"n\":4}");
    CHECK_EQ_INT(count_files(sp), 1);
    unlink(junk);
    /* An empty spool (no .json file): nothing called, nothing sorted (a
     * qsort of the empty list was undefined behaviour, found by UBSan). */
    d.n = 0;
    CHECK(client_spool_drain(sp, on_spool, &d, &done, &dropped, &e) == STTS_OK);
    CHECK_EQ_INT(d.n, 0);
    CHECK_EQ_INT(done, 0);
    /* Missing folder: nothing to do, no error. */
    char none[PATH_MAX];
    snprintf(none, sizeof none, "%s/absent", g_tmp);
    CHECK(client_spool_drain(none, on_spool, &d, &done, &dropped, &e) == STTS_OK && done == 0);
}

/* The fake daemon: this program run as `test_client serve --socket PATH`
 * reports its arguments, session and open descriptors, then lingers. */
static int fake_daemon(int argc, char **argv) {
    const char *out = getenv("STTS_TEST_REPORT");
    if (!out) return 3;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    FILE *f = fopen(tmp, "w");
    if (!f) return 3;
    for (int i = 1; i < argc; i++) fprintf(f, "%s%s", argv[i], i + 1 < argc ? " " : "\n");
    const char *psid = getenv("STTS_TEST_PARENT_SID");
    fprintf(f, "own-session %d\n", psid && getsid(0) != (pid_t)atol(psid) && getsid(0) == getpgid(0));
    DIR *d = opendir("/proc/self/fd");
    int dfd = d ? dirfd(d) : -1;
    struct dirent *e;
    int fileno_f = fileno(f);
    fprintf(f, "fds");
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.' && atoi(e->d_name) != dfd && atoi(e->d_name) != fileno_f) fprintf(f, " %s", e->d_name);
    fprintf(f, "\n");
    if (d) closedir(d);
    fclose(f);
    rename(tmp, out);
    sleep_ms(1000);
    return 0;
}

static void test_spawn(void) {
    char exe[PATH_MAX], report[PATH_MAX], sock[PATH_MAX];
    stts_error e;
    CHECK(client_self_exe(exe, sizeof exe, &e) == STTS_OK);
    snprintf(report, sizeof report, "%s/report", g_tmp);
    snprintf(sock, sizeof sock, "%s/run/socket", g_tmp);
    setenv("STTS_TEST_REPORT", report, 1);
    char sid[32];
    snprintf(sid, sizeof sid, "%ld", (long)getsid(0));
    setenv("STTS_TEST_PARENT_SID", sid, 1);
    /* An inheritable pipe, as Claude Code's stdout would be. */
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(client_spawn_daemon(exe, sock, NULL, &e) == STTS_OK);
    close(p[1]);
    size_t n = 0;
    char *r = NULL;
    for (int i = 0; i < 2000 && !r; i++) {
        r = test_read_file(report, &n);
        if (!r) sleep_ms(5);
    }
    CHECK(r != NULL);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "serve --socket %s\nown-session 1\nfds 0 1 2\n", sock);
    CHECK_EQ_STR(r, want);
    free(r);
    /* EOF right away although the fake daemon still runs: it holds no copy. */
    char c;
    CHECK(read(p[0], &c, 1) == 0);
    close(p[0]);
    unlink(report);
}

static void test_hook_request(void) {
    char *line;
    size_t n;
    char ev[32];
    stts_error e;
    const char *pl = "  {\"session_id\":\"S\",\"hook_event_name\":\"Stop\",\r\n \"x\":1e5,\"u\":\"\\u00e9\"}\n\n";
    CHECK(client_hook_request(pl, strlen(pl), &line, &n, ev, sizeof ev, &e) == STTS_OK);
    CHECK_EQ_STR(line, "{\"v\":1,\"op\":\"hook\",\"payload\":{\"session_id\":\"S\",\"hook_event_name\":\"Stop\",   "
                       "\"x\":1e5,\"u\":\"\\u00e9\"}}");
    CHECK_EQ_INT(n, strlen(line));
    CHECK_EQ_STR(ev, "Stop");
    free(line);
    CHECK(client_hook_request("{}", 2, &line, &n, ev, sizeof ev, &e) == STTS_OK);
    CHECK_EQ_STR(ev, "");
    free(line);
    const char *bad[] = {"", "   ", "[1,2]", "\"s\"", "{\"a\":", "{\"a\":1}{", "{\"a\":\"\xff\"}", "{\"a\":\"x\ny\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        line = (char *)1;
        CHECK_MSG(client_hook_request(bad[i], strlen(bad[i]), &line, &n, ev, sizeof ev, &e) == STTS_ERR_FORMAT,
                  "case %zu", i);
        CHECK(line == NULL);
    }
    CHECK(client_hook_request("{\"a\":\n1", 7, &line, &n, NULL, 0, &e) == STTS_ERR_FORMAT);
    CHECK_MSG(strstr(e.msg, "line 2") != NULL, "%s", e.msg);
    /* a raw NUL inside the object (found by fuzz_hook_payload): refused, nothing forwarded */
    CHECK(client_hook_request("{\"s\":0\0}", 8, &line, &n, NULL, 0, &e) == STTS_ERR_FORMAT && !line);
    size_t big = CLIENT_PAYLOAD_MAX + 1;
    char *b = malloc(big);
    memset(b, ' ', big);
    b[0] = '{';
    b[big - 1] = '}';
    CHECK(client_hook_request(b, big, &line, &n, NULL, 0, &e) == STTS_ERR_FORMAT);
    CHECK(strstr(e.msg, "limit") != NULL);
    CHECK(client_hook_request(b, big - 1 - 1, &line, &n, NULL, 0, &e) == STTS_ERR_FORMAT); /* no closing brace */
    b[big - 2] = '}';
    CHECK(client_hook_request(b, big - 1, &line, &n, NULL, 0, &e) == STTS_OK);
    CHECK(n == 29 + big - 1 + 1 && memcmp(line, "{\"v\":1,\"op\":\"hook\",\"payload\":{ ", 31) == 0 &&
          memcmp(line + n - 3, " }}", 3) == 0);
    free(line);
    free(b);
}

/* hook.log and serve.log are rotated (LOG -> LOG.1 past CLIENT_LOG_MAX) by
 * every process that writes them: hooks run in parallel, and two daemons
 * overlap while one exits. Two that found the log over the cap at once both
 * renamed it: the second moved the fresh log the first had just begun over
 * the full generation in LOG.1, which was lost. Processes here write and
 * rotate one log as hook_log does; every rename must move a log over the
 * cap (a smaller one is a double rotation), and LOG.1 is a full generation
 * at the end. */
enum { ROT_PROCS = 6, ROT_LINES = 1500, ROT_LINE = 4096 };

static int rotate_worker(const char *path, int id) {
    char old[PATH_MAX + 8], line[ROT_LINE];
    snprintf(old, sizeof old, "%s.1", path);
    memset(line, 'a' + id, sizeof line);
    line[sizeof line - 1] = '\n';
    int bad = 0;
    for (int i = 0; i < ROT_LINES; i++) {
        if (client_log_rotate(path)) {
            struct stat st;
            /* Only a rename that moved a log over the cap is a rotation;
             * the next one needs another 1 MiB written first. */
            if (lstat(old, &st) != 0 || st.st_size <= CLIENT_LOG_MAX) bad++;
        }
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, line, sizeof line) != (ssize_t)sizeof line) bad++;
        if (fd >= 0) close(fd);
    }
    return bad > 255 ? 255 : bad;
}

static void test_log_rotate_concurrent(void) {
    char path[PATH_MAX], old[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/race.log", g_tmp);
    snprintf(old, sizeof old, "%s.1", path);
    pid_t kids[ROT_PROCS];
    for (int k = 0; k < ROT_PROCS; k++) {
        kids[k] = fork();
        if (kids[k] == 0) _exit(rotate_worker(path, k));
    }
    int bad = 0;
    for (int k = 0; k < ROT_PROCS; k++) {
        int st = 0;
        waitpid(kids[k], &st, 0);
        bad += WIFEXITED(st) ? WEXITSTATUS(st) : 1000;
    }
    CHECK_MSG(bad == 0, "%d rotations moved a log under the cap over LOG.1 (its generation lost)", bad);
    struct stat st;
    CHECK_MSG(stat(old, &st) == 0 && st.st_size > CLIENT_LOG_MAX, "LOG.1 is %lld bytes",
              stat(old, &st) == 0 ? (long long)st.st_size : -1LL);
    unlink(path);
    unlink(old);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "serve") == 0) return fake_daemon(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    snprintf(g_tmp, sizeof g_tmp, "/tmp/stts-client-XXXXXX");
    if (!mkdtemp(g_tmp)) TEST_SKIP_ALL("cannot make a temporary folder");
    TEST_RUN(test_socket_path);
    TEST_RUN(test_prepare_dir);
    TEST_RUN(test_request);
    TEST_RUN(test_spool);
    TEST_RUN(test_spawn);
    TEST_RUN(test_hook_request);
    TEST_RUN(test_log_rotate_concurrent);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
    return TEST_SUMMARY();
}
