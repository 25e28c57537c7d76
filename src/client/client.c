/* client.c - the socket side of stts_client: where the daemon's socket is,
 * its folder's safety checks, connecting and exchanging lines under a
 * deadline, starting the daemon detached, and the spool of undelivered
 * requests. Everything here runs inside a Claude Code hook, so nothing may
 * block without a deadline and nothing may leak a descriptor to the daemon. */
#define _GNU_SOURCE
#include "stts_client.h"
#include "stts_compat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- paths and folders ------------------------------------------------- */

static size_t sun_path_cap(void) {
    struct sockaddr_un a;
    return sizeof a.sun_path;
}

/* 0 when $XDG_RUNTIME_DIR (xdg) can hold the socket folder; else -1 and why.
 * A stale value is common: a removed /run/user/UID after logout, or
 * another user's after su or sudo keeping the environment. */
static int runtime_dir_unusable(const char *xdg, char *why, size_t cap) {
    struct stat st;
    const char *w = NULL;
    if (xdg[0] != '/') w = "not an absolute path";
    else if (stat(xdg, &st) != 0) w = strerror(errno);
    else if (!S_ISDIR(st.st_mode)) w = "not a folder";
    else if (st.st_uid != getuid()) w = "it belongs to another user";
    else if (access(xdg, W_OK | X_OK) != 0) w = "not writable";
    else if (strlen(xdg) + sizeof "/stream-tts/socket" > sun_path_cap()) w = "too long for a socket path under it";
    if (!w) return 0;
    snprintf(why, cap, "%s", w);
    return -1;
}

stts_status client_socket_path_note(const char *override, char *buf, size_t cap, char *note, size_t note_cap,
                                    stts_error *err) {
    const char *env = getenv("STREAM_TTS_SOCKET");
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    char why[128];
    int n;
    if (note && note_cap) note[0] = '\0';
    if (override && *override) n = snprintf(buf, cap, "%s", override);
    else if (env && *env) n = snprintf(buf, cap, "%s", env);
    else if (xdg && *xdg && runtime_dir_unusable(xdg, why, sizeof why) == 0)
        n = snprintf(buf, cap, "%s/stream-tts/socket", xdg);
    else {
        /* Every client and the daemon apply the same rule, so they agree on
         * the fallback as long as they see the same folder. */
        n = snprintf(buf, cap, "/tmp/stream-tts-%u/socket", (unsigned)getuid());
        if (xdg && *xdg && note && note_cap)
            snprintf(note, note_cap, "XDG_RUNTIME_DIR=%.200s is unusable (%s): using %s instead", xdg, why, buf);
    }
    if (n >= 0 && (size_t)n < cap && buf[0] != '/') {
        /* A relative --socket or $STREAM_TTS_SOCKET: absolute from here on.
         * A hook starts the daemon after chdir("/"), so left relative the
         * daemon listened under / while the hook (in the project folder)
         * looked in its own folder: every hook started another daemon, and
         * spooled where no daemon ever replays. */
        char cwd[PATH_MAX], rel[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            return stts_error_set(err, STTS_ERR_IO, "socket path %s is relative and the current folder is unknown "
                                  "(%s); give an absolute path", buf, strerror(errno));
        snprintf(rel, sizeof rel, "%s", buf);
        n = snprintf(buf, cap, "%s/%s", strcmp(cwd, "/") ? cwd : "", rel);
    }
    if (n < 0 || (size_t)n >= cap || (size_t)n >= sun_path_cap())
        return stts_error_set(err, STTS_ERR_INVALID_ARG,
                              "socket path is %d bytes, longer than a Unix socket allows (%zu); "
                              "set STREAM_TTS_SOCKET or --socket to a shorter path", n, sun_path_cap() - 1);
    return STTS_OK;
}

stts_status client_socket_path(const char *override, char *buf, size_t cap, stts_error *err) {
    return client_socket_path_note(override, buf, cap, NULL, 0, err);
}

stts_status client_socket_dir(const char *sock_path, char *buf, size_t cap, stts_error *err) {
    const char *slash = strrchr(sock_path, '/');
    int n;
    if (!slash) n = snprintf(buf, cap, ".");
    else if (slash == sock_path) n = snprintf(buf, cap, "/");
    else n = snprintf(buf, cap, "%.*s", (int)(slash - sock_path), sock_path);
    if (n < 0 || (size_t)n >= cap)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "socket folder of %s does not fit in %zu bytes", sock_path, cap);
    return STTS_OK;
}

stts_status client_prepare_dir(const char *dir, stts_error *err) {
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return stts_error_set(err, STTS_ERR_IO, "cannot make the folder %s: %s", dir, strerror(errno));
    struct stat st;
    if (lstat(dir, &st) != 0)
        return stts_error_set(err, STTS_ERR_IO, "cannot inspect %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "%s is not a folder (a link or a file); remove it "
                              "or choose another socket path", dir);
    if (st.st_uid != getuid())
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "%s belongs to uid %u, not to you (uid %u); "
                              "someone else made it: remove it or choose another socket path",
                              dir, (unsigned)st.st_uid, (unsigned)getuid());
    if (st.st_mode & 022)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "%s is writable by other users (mode %03o); "
                              "run chmod 700 on it", dir, (unsigned)(st.st_mode & 0777));
    return STTS_OK;
}

stts_status client_spool_dir(const char *sock_path, char *buf, size_t cap, stts_error *err) {
    char dir[PATH_MAX];
    stts_status s = client_socket_dir(sock_path, dir, sizeof dir, err);
    if (s != STTS_OK) return s;
    int n = snprintf(buf, cap, "%s/spool", dir);
    if (n < 0 || (size_t)n >= cap)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "spool folder path under %s too long", dir);
    return client_prepare_dir(buf, err);
}

/* ---- connection -------------------------------------------------------- */

struct client_conn {
    int fd;
    char *buf;       /* received bytes; buf[0..len) */
    size_t len, cap;
    size_t consumed; /* bytes of the line handed out by the last recv */
};

static uint64_t deadline_after(int timeout_ms) {
    return stts_now_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000u;
}

/* Milliseconds left before deadline, rounded up so a poll never spins. */
static int ms_left(uint64_t deadline) {
    uint64_t now = stts_now_ns();
    if (now >= deadline) return 0;
    return (int)((deadline - now + 999999u) / 1000000u);
}

stts_status client_conn_open(const char *sock_path, int timeout_ms, client_conn **out, stts_error *err) {
    *out = NULL;
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (strlen(sock_path) >= sizeof a.sun_path)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "socket path %s is too long", sock_path);
    memcpy(a.sun_path, sock_path, strlen(sock_path) + 1);
    int fd = stts_socket_cloexec(AF_UNIX, SOCK_STREAM, 1);
    if (fd < 0) return stts_error_set(err, STTS_ERR_IO, "socket(): %s", strerror(errno));
    uint64_t deadline = deadline_after(timeout_ms);
    for (;;) {
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) break;
        int e = errno;
        if (e == ENOENT || e == ECONNREFUSED) {
            close(fd);
            return stts_error_set(err, STTS_ERR_NOT_FOUND, "no daemon listens on %s (%s)", sock_path, strerror(e));
        }
        if (e == EINPROGRESS) { /* not on Unix sockets today, but allowed by POSIX */
            struct pollfd p = {fd, POLLOUT, 0};
            int r = poll(&p, 1, ms_left(deadline));
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (r == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) break;
            close(fd);
            return stts_error_set(err, STTS_ERR_IO, "connecting to %s: %s", sock_path,
                                  r == 0 ? "timed out" : strerror(soerr ? soerr : errno));
        }
        /* EAGAIN: the daemon's backlog is full; retry until the deadline. */
        if ((e == EAGAIN || e == EINTR) && ms_left(deadline) > 0) {
            struct timespec ts = {0, 500000};
            nanosleep(&ts, NULL);
            continue;
        }
        close(fd);
        return stts_error_set(err, STTS_ERR_IO, "connecting to %s: %s", sock_path,
                              e == EAGAIN ? "the daemon accepts no connection (timed out)" : strerror(e));
    }
    client_conn *c = calloc(1, sizeof *c);
    if (!c) { close(fd); return stts_error_set(err, STTS_ERR_NOMEM, "out of memory"); }
    c->fd = fd;
    *out = c;
    return STTS_OK;
}

static stts_status send_all(int fd, const char *p, size_t n, uint64_t deadline, stts_error *err) {
    while (n > 0) {
        ssize_t w = stts_send_nosignal(fd, p, n, 0);
        if (w > 0) { p += w; n -= (size_t)w; continue; }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pf = {fd, POLLOUT, 0};
            int left = ms_left(deadline);
            int r = left > 0 ? poll(&pf, 1, left) : 0;
            if (r > 0 || (r < 0 && errno == EINTR)) continue;
            return stts_error_set(err, STTS_ERR_IO, "sending to the daemon: timed out with %zu bytes unsent", n);
        }
        return stts_error_set(err, STTS_ERR_IO, "sending to the daemon: %s", strerror(errno));
    }
    return STTS_OK;
}

stts_status client_conn_send(client_conn *c, const char *line, size_t n, int timeout_ms, stts_error *err) {
    if (memchr(line, '\n', n))
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "a request line must not contain a newline");
    uint64_t deadline = deadline_after(timeout_ms);
    stts_status s = send_all(c->fd, line, n, deadline, err);
    return s != STTS_OK ? s : send_all(c->fd, "\n", 1, deadline, err);
}

stts_status client_conn_recv(client_conn *c, const char **line, size_t *n, int timeout_ms, stts_error *err) {
    if (c->consumed) { /* drop the previous line */
        memmove(c->buf, c->buf + c->consumed, c->len - c->consumed);
        c->len -= c->consumed;
        c->consumed = 0;
    }
    uint64_t deadline = deadline_after(timeout_ms);
    size_t scanned = 0;
    for (;;) {
        char *nl = c->len > scanned ? memchr(c->buf + scanned, '\n', c->len - scanned) : NULL;
        if (nl) {
            *nl = '\0';
            *line = c->buf;
            *n = (size_t)(nl - c->buf);
            c->consumed = *n + 1;
            return STTS_OK;
        }
        scanned = c->len;
        if (c->len > CLIENT_LINE_MAX)
            return stts_error_set(err, STTS_ERR_FORMAT, "the daemon's reply is longer than %u bytes", CLIENT_LINE_MAX);
        if (c->cap - c->len < 4096) {
            size_t nc = c->cap ? c->cap * 2 : 8192;
            char *nb = realloc(c->buf, nc + 1);
            if (!nb) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory reading a reply");
            c->buf = nb;
            c->cap = nc;
        }
        ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (r > 0) { c->len += (size_t)r; continue; }
        /* Closed or reset before a byte of the reply: the daemon did not
         * act on the request (it answers every request it reads; a daemon
         * exiting, on SIGTERM or idle, closes what it has not read, and a
         * connection still in its listen queue is reset). */
        if ((r == 0 || errno == ECONNRESET) && !c->len)
            return stts_error_set(err, STTS_ERR_NOT_FOUND, "the daemon closed the connection without replying "
                                  "(it was stopping)");
        if (r == 0) return stts_error_set(err, STTS_ERR_IO, "the daemon closed the connection in the middle of a reply");
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return stts_error_set(err, STTS_ERR_IO, "reading the reply: %s", strerror(errno));
        struct pollfd pf = {c->fd, POLLIN, 0};
        int left = ms_left(deadline);
        int pr = left > 0 ? poll(&pf, 1, left) : 0;
        if (pr > 0 || (pr < 0 && errno == EINTR)) continue;
        return stts_error_set(err, STTS_ERR_IO, "no reply from the daemon within %d ms", timeout_ms);
    }
}

int client_conn_fd(const client_conn *c) { return c ? c->fd : -1; }

void client_conn_free(client_conn *c) {
    if (!c) return;
    close(c->fd);
    free(c->buf);
    free(c);
}

stts_status client_request(const char *sock_path, const char *line, size_t n, int timeout_ms,
                           char **reply, stts_error *err) {
    *reply = NULL;
    uint64_t deadline = deadline_after(timeout_ms);
    client_conn *c;
    stts_status s = client_conn_open(sock_path, timeout_ms, &c, err);
    if (s != STTS_OK) return s;
    s = client_conn_send(c, line, n, ms_left(deadline), err);
    const char *r = NULL;
    size_t rn = 0;
    if (s == STTS_OK) s = client_conn_recv(c, &r, &rn, ms_left(deadline), err);
    if (s == STTS_OK) {
        *reply = malloc(rn + 1);
        if (!*reply) s = stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
        else memcpy(*reply, r, rn + 1);
    }
    client_conn_free(c);
    return s;
}

/* ---- the daemon process ------------------------------------------------ */

stts_status client_self_exe(char *buf, size_t cap, stts_error *err) {
    ssize_t n = stts_self_exe_path(buf, cap);
    if (n < 0 || (size_t)n >= cap - 1)
        return stts_error_set(err, STTS_ERR_IO, "cannot find the running program (" STTS_SELF_EXE_SOURCE "): %s",
                              n < 0 ? strerror(errno) : "path too long");
    return STTS_OK;
}

/* Closes every descriptor from lo up; close_range when the kernel has it. */
static void close_from(int lo) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)lo, ~0u, 0u) == 0) return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536) max = 65536;
    for (int fd = lo; fd < max; fd++) close(fd);
}

stts_status client_write_start_failed(const char *sock, const char *why, stts_error *err) {
    char path[PATH_MAX], dir[PATH_MAX], file[PATH_MAX + 16];
    stts_status st = client_socket_path(sock, path, sizeof path, err);
    if (st == STTS_OK) st = client_socket_dir(path, dir, sizeof dir, err);
    if (st == STTS_OK) st = client_prepare_dir(dir, err);   /* never into a folder someone else can reach */
    if (st != STTS_OK) return st;
    snprintf(file, sizeof file, "%s/serve.failed", dir);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return stts_error_set(err, STTS_ERR_IO, "cannot write %s: %s", file, strerror(errno));
    /* One line: the hook reads the first line only. */
    size_t n = strcspn(why, "\n");
    int bad = write(fd, why, n) != (ssize_t)n || write(fd, "\n", 1) != 1;
    if (close(fd) != 0) bad = 1;
    return bad ? stts_error_set(err, STTS_ERR_IO, "cannot write %s", file) : STTS_OK;
}

/* How long client_spawn_daemon waits to learn whether the exec worked: an
 * exec that succeeds closes the pipe at once; a grandchild held up before
 * it (a stopped process, a swapped-out machine) is taken to have started. */
#define SPAWN_EXEC_WAIT_MS 100

stts_status client_spawn_daemon(const char *program, const char *sock_path, const char *log_path,
                                stts_error *err) {
    /* Everything the grandchild needs is prepared before fork: after it,
     * only async-signal-safe calls. */
    char *const argv[] = {(char *)program, (char *)"serve", (char *)"--socket", (char *)sock_path, NULL};
    /* The exec's outcome: the grandchild writes its errno here when execv
     * fails; a successful exec closes the write end (O_CLOEXEC), so the
     * parent reads EOF. Without it a missing program failed silently in
     * the grandchild and the hook logged "started". */
    int ep[2];
    if (stts_pipe_cloexec(ep, 0) != 0) return stts_error_set(err, STTS_ERR_IO, "pipe: %s", strerror(errno));
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) {
        int e = errno;
        close(ep[0]);
        close(ep[1]);
        return stts_error_set(err, STTS_ERR_IO, "cannot open /dev/null: %s", strerror(e));
    }
    int logfd = log_path ? open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
    if (logfd < 0) logfd = devnull;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        if (logfd != devnull) close(logfd);
        close(devnull);
        close(ep[0]);
        close(ep[1]);
        return stts_error_set(err, STTS_ERR_IO, "fork: %s", strerror(e));
    }
    if (pid == 0) {
        if (setsid() < 0) _exit(127);
        pid_t g = fork();
        if (g != 0) _exit(g < 0 ? 127 : 0);
        /* The grandchild: no terminal, no parent session, no inherited
         * descriptor (Claude Code waits for EOF on the hook's pipes) but
         * the exec-status pipe, moved to fd 3 and closed by the exec. */
        if (dup2(devnull, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0) _exit(127);
        if (ep[1] != 3 && (dup2(ep[1], 3) < 0 || fcntl(3, F_SETFD, FD_CLOEXEC) < 0)) _exit(127);
        close_from(4);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < 32; sig++)
            if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
        if (chdir("/") != 0) _exit(127);
        execv(program, argv);
        int e = errno;
        if (write(3, &e, sizeof e) < 0) { /* the parent then takes it for started */
        }
        _exit(127);
    }
    close(ep[1]);
    if (logfd != devnull) close(logfd);
    close(devnull);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        close(ep[0]);
        return stts_error_set(err, STTS_ERR_IO, "starting %s serve failed in the intermediate process", program);
    }
    int exec_errno = 0;
    struct pollfd pf = {ep[0], POLLIN, 0};
    uint64_t deadline = deadline_after(SPAWN_EXEC_WAIT_MS);
    for (;;) {
        int r = poll(&pf, 1, ms_left(deadline));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;   /* no answer in time: taken for started */
        ssize_t k = read(ep[0], &exec_errno, sizeof exec_errno);
        if (k < 0 && errno == EINTR) continue;
        if (k != (ssize_t)sizeof exec_errno) exec_errno = 0;   /* EOF: the exec worked */
        break;
    }
    close(ep[0]);
    if (!exec_errno) return STTS_OK;
    char why[PATH_MAX + 512];
    snprintf(why, sizeof why, "cannot start the daemon: %s: %s (%s); reinstall stream-tts (cmake --install), or "
             "correct $STREAM_TTS_DAEMON if it names this program", program, strerror(exec_errno),
             exec_errno == ENOENT ? "the program is missing" : exec_errno == EACCES ? "the program is not executable"
                                                                                   : "the program cannot be run");
    if (log_path) {   /* serve.log, where a daemon's own start-up errors go */
        int lf = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (lf >= 0) {
            dprintf(lf, "stream-tts hook: %s\n", why);
            close(lf);
        }
    }
    stts_error e2;
    client_write_start_failed(sock_path, why, &e2);   /* failing that, hook.log still says why */
    return stts_error_set(err, STTS_ERR_NOT_FOUND, "%s", why);
}

/* ---- spool ------------------------------------------------------------- */

stts_status client_spool_write(const char *spool_dir, const char *line, size_t n,
                               char *path_out, size_t path_cap, stts_error *err) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long ns = (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
    char tmp[PATH_MAX], fin[PATH_MAX];
    int a = snprintf(tmp, sizeof tmp, "%s/.%020llu-%ld.tmp", spool_dir, ns, (long)getpid());
    int b = snprintf(fin, sizeof fin, "%s/%020llu-%ld.json", spool_dir, ns, (long)getpid());
    if (a < 0 || b < 0 || (size_t)a >= sizeof tmp || (size_t)b >= sizeof fin)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "spool folder path %s too long", spool_dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return stts_error_set(err, STTS_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    stts_status s = STTS_OK;
    const char *p = line;
    size_t left = n;
    int nl_done = 0;
    while (s == STTS_OK && (left > 0 || !nl_done)) {
        if (left == 0) { p = "\n"; left = 1; nl_done = 1; }
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) s = stts_error_set(err, STTS_ERR_IO, "writing %s: %s", tmp, w < 0 ? strerror(errno) : "no space");
        else { p += w; left -= (size_t)w; }
    }
    if (close(fd) != 0 && s == STTS_OK) s = stts_error_set(err, STTS_ERR_IO, "writing %s: %s", tmp, strerror(errno));
    if (s == STTS_OK && rename(tmp, fin) != 0)
        s = stts_error_set(err, STTS_ERR_IO, "cannot rename %s to %s: %s", tmp, fin, strerror(errno));
    if (s != STTS_OK) { unlink(tmp); return s; }
    if (path_out && path_cap) snprintf(path_out, path_cap, "%s", fin);
    return STTS_OK;
}

static int is_spool_name(const char *n) {
    size_t l = strlen(n);
    return n[0] != '.' && l > 5 && strcmp(n + l - 5, ".json") == 0;
}

size_t client_spool_prune(const char *spool_dir, unsigned max_age_s) {
    DIR *d = opendir(spool_dir);
    if (!d) return 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long now = (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
    size_t removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_spool_name(e->d_name)) continue;
        /* The name begins with the spooling time: 20 digits of CLOCK_REALTIME ns. */
        unsigned long long ns = 0;
        int digits = 0;
        while (digits < 20 && e->d_name[digits] >= '0' && e->d_name[digits] <= '9')
            ns = ns * 10 + (unsigned)(e->d_name[digits++] - '0');
        if (digits != 20 || now <= ns || now - ns <= (unsigned long long)max_age_s * 1000000000ull) continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0) removed++;
    }
    closedir(d);
    return removed;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads a spool file of at most CLIENT_LINE_MAX + 1 bytes. NULL with *bad
 * set: the file is there but unusable (a link, not a file, too big). */
static char *read_spool_file(const char *path, size_t *n, int *bad) {
    *n = 0;
    *bad = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) { *bad = errno != ENOENT; return NULL; }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (unsigned long long)st.st_size > CLIENT_LINE_MAX + 1ull) {
        close(fd);
        *bad = 1;
        return NULL;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *b = malloc(cap + 1);
    if (!b) { close(fd); return NULL; }
    for (;;) {
        if (len == cap) break; /* grew after fstat: read what fstat promised */
        ssize_t r = read(fd, b + len, cap - len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
    }
    close(fd);
    while (len > 0 && (b[len - 1] == '\n' || b[len - 1] == '\r')) len--;
    b[len] = '\0';
    *n = len;
    return b;
}

stts_status client_spool_drain(const char *spool_dir, client_spool_fn fn, void *user,
                               size_t *done, size_t *dropped, stts_error *err) {
    if (done) *done = 0;
    if (dropped) *dropped = 0;
    DIR *d = opendir(spool_dir);
    if (!d) {
        if (errno == ENOENT) return STTS_OK;
        return stts_error_set(err, STTS_ERR_IO, "cannot read the spool folder %s: %s", spool_dir, strerror(errno));
    }
    char **names = NULL;
    size_t count = 0, cap = 0;
    stts_status s = STTS_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_spool_name(e->d_name)) continue;
        if (count == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **nn = realloc(names, nc * sizeof *nn);
            if (!nn) { s = stts_error_set(err, STTS_ERR_NOMEM, "out of memory listing %s", spool_dir); break; }
            names = nn;
            cap = nc;
        }
        if (!(names[count] = strdup(e->d_name))) {
            s = stts_error_set(err, STTS_ERR_NOMEM, "out of memory listing %s", spool_dir);
            break;
        }
        count++;
    }
    closedir(d);
    /* qsort(NULL, 0, ...) is undefined behaviour (UBSan stops on it): an
     * empty spool has nothing to sort. */
    if (s == STTS_OK && count) qsort(names, count, sizeof *names, cmp_names);
    for (size_t i = 0; s == STTS_OK && i < count; i++) {
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", spool_dir, names[i]) >= (int)sizeof path) continue;
        size_t n;
        int bad;
        char *line = read_spool_file(path, &n, &bad);
        if (!line) {
            if (bad) { /* unusable: counted, removed so it cannot block the spool */
                unlink(path);
                if (dropped) (*dropped)++;
            }
            continue;
        }
        stts_status r = fn(line, n, path, user);
        free(line);
        if (r == STTS_ERR_CANCELLED) break;
        unlink(path);
        if (done) (*done)++;
    }
    for (size_t i = 0; i < count; i++) free(names[i]);
    free(names);
    return s;
}
