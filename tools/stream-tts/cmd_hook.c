/* cmd_hook.c - `stream-tts hook`: the command every Claude Code hook entry
 * runs. It reads the hook payload on stdin, hands it to the daemon as
 * {"v":1,"op":"hook","payload":...} and returns at once: all event logic
 * (what to speak, reconciling Stop with the live batches) is the daemon's.
 * When no daemon answers it starts one fully detached and, if that one does
 * not accept within the budget, spools the request for it.
 *
 * Claude Code feeds stdout back into the conversation on some events and
 * shows a notice on non-zero exits, so: nothing on stdout, exit 0 always,
 * errors to <socket folder>/hook.log (capped), and never wait for speech. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "stts_client.h"
#include "client/log_cap.h"

/* Budget after the input ends: connect, send and a reply, or a spawn and
 * retries, all inside it, so the hook stays under 50 ms at worst. */
#define HOOK_BUDGET_MS 40
/* $STREAM_TTS_HOOK_BUDGET_MS (1-10000) replaces it: for tests that check what
 * the daemon received on a machine too busy to answer within 40 ms. */
static int g_budget_ms = HOOK_BUDGET_MS;
/* stdin left open with no complete object: give up after this long idle,
 * or this long in all however the bytes trickle in (the idle wait alone kept
 * a hook alive without end on a slow trickle; Claude Code writes the object
 * at once and kills a hook at its timeout, a manual run may not). */
#define HOOK_STALL_MS 2000
#define HOOK_READ_MAX_MS 10000

static char g_log[PATH_MAX + 16];      /* "" -> stderr (which Claude Code keeps in its debug log) */
static char g_event[64] = "?";
/* Why $XDG_RUNTIME_DIR was passed over for the socket ("" when it was not):
 * logged when a daemon is started, not at every hook. */
static char g_path_note[512];

static void hook_log(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static void hook_log(const char *fmt, ...) {
    char msg[2048];   /* a daemon's failure (serve.failed) with its search paths and config file */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    time_t t = time(NULL);
    struct tm tm;
    char ts[32] = "";
    if (gmtime_r(&t, &tm)) strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char line[2200];
    int n = snprintf(line, sizeof line, "%s stream-tts hook[%ld] %s: %s\n", ts, (long)getpid(), g_event, msg);
    if (n < 0) return;
    if ((size_t)n >= sizeof line) n = (int)sizeof line - 1;
    int fd = -1;
    if (g_log[0]) {
        client_log_rotate(g_log);   /* capped, one old generation kept (serve.log shares the code) */
        fd = open(g_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    }
    if (fd < 0) fd = 2;
    if (write(fd, line, (size_t)n) < 0) { /* nowhere left to report it */
    }
    if (fd != 2) close(fd);
}

/* A closed fd 0, 1 or 2 would be reused by the next open() (a log line
 * could land on "stdout"): park /dev/null there first. */
static void ensure_std_fds(void) {
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            int n = open("/dev/null", O_RDWR);
            if (n >= 0 && n != fd) { dup2(n, fd); close(n); }
        }
}

/* Whether what stdin has given so far can be one whole JSON object, kept
 * across reads: every byte is scanned once. Re-parsing the whole buffer at
 * each pause that followed a '}' was quadratic (a multi-MB payload written
 * in pieces ending in '}' took seconds of CPU). Only brackets and strings
 * are tracked: valid JSON is split exactly so, so an object that parses is
 * never missed; client_hook_request still decides, at most once. */
typedef struct {
    size_t pos;     /* bytes scanned */
    int depth;      /* { and [ open, outside strings */
    int in_str, esc;
    int closed;     /* the top-level value has closed: only blanks may follow */
    int dead;       /* cannot become one object: never parse */
    int verdict;    /* -1 not parsed yet, else client_hook_request's answer */
} payload_scan;

static int is_blank(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

/* 1 when buf (trailing blanks aside) ends in '}' and parses as one object:
 * the writer has sent everything even though it keeps stdin open. */
static int looks_complete(payload_scan *sc, const char *buf, size_t n) {
    for (; sc->pos < n && !sc->dead; sc->pos++) {
        char c = buf[sc->pos];
        if (sc->in_str) {
            if (sc->esc) sc->esc = 0;
            else if (c == '\\') sc->esc = 1;
            else if (c == '"') sc->in_str = 0;
        } else if (sc->closed) {
            if (!is_blank(c)) sc->dead = 1;   /* a second value: one object never parses again */
        } else if (c == '"') {
            sc->in_str = 1;
        } else if (c == '{' || c == '[') {
            sc->depth++;
        } else if (c == '}' || c == ']') {
            if (--sc->depth < 0) sc->dead = 1;
            else if (sc->depth == 0) sc->closed = 1;
        }
    }
    if (sc->dead || !sc->closed) return 0;
    if (sc->verdict < 0) {   /* only blanks can follow: the answer cannot change */
        size_t m = n;
        while (m > 0 && is_blank(buf[m - 1])) m--;
        char *line;
        size_t len;
        sc->verdict = buf[m - 1] == '}' && client_hook_request(buf, m, &line, &len, NULL, 0, NULL) == STTS_OK;
        if (sc->verdict) free(line);
    }
    return sc->verdict;
}

/* Reads stdin to EOF (or to a complete object when it stays open), at most
 * CLIENT_PAYLOAD_MAX + 1 bytes. Returns NULL after logging why. */
static char *read_payload(size_t *n) {
    size_t cap = 65536, len = 0;
    payload_scan sc = {0, 0, 0, 0, 0, 0, -1};
    char *b = malloc(cap);
    if (!b) { hook_log("out of memory reading the payload"); return NULL; }
    const uint64_t t0 = stts_now_ns();
    for (;;) {
        if (len == cap) {
            if (cap > CLIENT_PAYLOAD_MAX) break;
            size_t nc = cap * 2;
            char *g = realloc(b, nc);
            if (!g) { free(b); hook_log("out of memory reading the payload"); return NULL; }
            b = g;
            cap = nc;
        }
        struct pollfd p = {0, POLLIN, 0};
        int r = poll(&p, 1, 0);
        if (r == 0) {
            if (len && looks_complete(&sc, b, len)) break;
            uint64_t spent = (stts_now_ns() - t0) / 1000000u;
            int wait = spent >= HOOK_READ_MAX_MS ? 0 : (int)(HOOK_READ_MAX_MS - spent);
            r = wait ? poll(&p, 1, wait < HOOK_STALL_MS ? wait : HOOK_STALL_MS) : 0;
            if (r == 0) {
                hook_log(wait > HOOK_STALL_MS ? "stdin stayed open with no complete payload for %d ms"
                                              : "stdin gave no complete payload in %d ms", wait > HOOK_STALL_MS ? HOOK_STALL_MS : HOOK_READ_MAX_MS);
                break;
            }
        }
        if (r < 0 && errno == EINTR) continue;
        ssize_t k = read(0, b + len, cap - len);
        if (k > 0) { len += (size_t)k; continue; }
        if (k == 0) break;
        if (errno == EINTR || errno == EAGAIN) continue;
        hook_log("cannot read stdin: %s", strerror(errno));
        free(b);
        return NULL;
    }
    *n = len;
    return b;
}

static uint64_t now_ms_since(uint64_t t0) { return (stts_now_ns() - t0) / 1000000u; }

/* The budget for sending n bytes: a large payload (a -p MessageDisplay
 * delta is a whole message, up to 8 MiB) gets 1 ms more per 64 KiB. */
static int budget_for(size_t n) { return g_budget_ms + (int)(n / 65536); }

/* Sends the line and checks the reply, within what is left of the budget.
 * Returns 0 when the daemon has the request (accepted, or refused for what
 * it says: spooling would not help), -1 when it does not (the send did not
 * finish, or the daemon turned the connection away): the caller spools it;
 * -2 when the connection closed before any reply (a daemon exiting). */
static int deliver(client_conn *c, const char *line, size_t n, uint64_t t0) {
    stts_error e;
    int budget = budget_for(n);
    int left = budget - (int)now_ms_since(t0);
    if (left < 5) left = 5;
    /* A line sent only in part is thrown away by the daemon when the
     * connection closes: the whole line goes to the spool. */
    if (client_conn_send(c, line, n, left, &e) != STTS_OK) { hook_log("%s", e.msg); return -1; }
    const char *reply;
    size_t rn;
    left = budget - (int)now_ms_since(t0);
    if (left < 5) left = 5;
    /* Sent whole but no reply: the daemon may well have it (spooling it
     * too could speak it twice). */
    stts_status st = client_conn_recv(c, &reply, &rn, left, &e);
    if (st == STTS_ERR_NOT_FOUND) {
        /* The daemon was exiting (SIGTERM, idle exit) and had not read the
         * request: nobody has it. It was logged as sent and lost. */
        hook_log("%s; the request goes to the next daemon", e.msg);
        return -2;
    }
    if (st != STTS_OK) { hook_log("sent, but %s", e.msg); return 0; }
    json_t *r = json_loadb(reply, rn, 0, NULL);
    int rc = 0;
    if (!json_is_true(json_object_get(r, "ok"))) {
        const char *why = json_string_value(json_object_get(r, "error"));
        /* Refusals of the connection, not of the request (PROTOCOL.md):
         * the daemon closed it without acting on the request. The input
         * budget's refusal is one too ("... connection closed, try again");
         * taken for a refusal of the payload, that request was lost. */
        if (why && (strncmp(why, "too many clients", 16) == 0 || strncmp(why, "nothing received", 16) == 0 ||
                    strncmp(why, "the daemon's input memory", 25) == 0)) {
            hook_log("the daemon turned the connection away: %.300s", why);
            rc = -1;
        } else {
            hook_log("the daemon refused the payload: %.300s", reply);
        }
    }
    json_decref(r);
    return rc;
}

/* A daemon that could not speak (no sound device, a bad model path...)
 * leaves its reason in serve.failed and exits; its requests stay spooled.
 * Starting it again at every hook would load the model again each time:
 * within this many seconds of that failure the hook only spools. */
#define HOOK_RESTART_HOLDOFF_S 10

/* 1 when the last start failed recently (logged, no start now); 0 to start
 * (a failure long ago is logged). */
static int last_start_failed(const char *dir) {
    char path[PATH_MAX + 16], why[1536] = "";
    snprintf(path, sizeof path, "%s/serve.failed", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return 0;
    struct stat st;
    memset(&st, 0, sizeof st);
    ssize_t k = fstat(fd, &st) == 0 ? read(fd, why, sizeof why - 1) : -1;
    close(fd);
    why[k > 0 ? k : 0] = '\0';
    why[strcspn(why, "\n")] = '\0';
    long age = k >= 0 ? (long)(time(NULL) - st.st_mtime) : -1;
    if (age >= 0 && age < HOOK_RESTART_HOLDOFF_S) {
        hook_log("the daemon is not started again: its start %ld s ago failed: %s (serve.log beside the socket "
                 "has more; fix that, or delete %s to retry at once); the request is spooled", age, why, path);
        return 1;
    }
    hook_log("the last daemon start failed: %s; starting it again", why);
    return 0;
}

/* No daemon: start one (unless another hook is starting one right now, or
 * the last start failed just now), then keep trying to connect until the
 * budget is spent. */
static client_conn *start_daemon(const char *sock, const char *dir, uint64_t t0) {
    stts_error e;
    char lock[PATH_MAX + 16], logp[PATH_MAX + 16], exe[PATH_MAX];
    snprintf(lock, sizeof lock, "%s/spawn.lock", dir);
    snprintf(logp, sizeof logp, "%s/serve.log", dir);
    if (last_start_failed(dir)) return NULL;
    int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) == 0) {
        /* Re-check under the lock: the holder before us may have started it. */
        client_conn *c = NULL;
        if (client_conn_open(sock, 2, &c, NULL) == STTS_OK) { close(lfd); return c; }
        const char *prog = getenv("STREAM_TTS_DAEMON");
        if (prog && *prog) snprintf(exe, sizeof exe, "%s", prog);
        else if (client_self_exe(exe, sizeof exe, &e) != STTS_OK) { hook_log("%s", e.msg); exe[0] = '\0'; }
        if (exe[0]) {
            if (client_spawn_daemon(exe, sock, logp, &e) != STTS_OK) hook_log("%s", e.msg);
            else hook_log("no daemon on %s: started %s serve (its output: %s)%s%s", sock, exe, logp,
                          g_path_note[0] ? "; " : "", g_path_note);
        }
    }
    client_conn *c = NULL;
    while (now_ms_since(t0) < (uint64_t)(g_budget_ms > 16 ? g_budget_ms - 8 : g_budget_ms / 2)) {
        if (client_conn_open(sock, 2, &c, NULL) == STTS_OK) break;
        c = NULL;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    if (lfd >= 0) close(lfd); /* releases the lock */
    return c;
}

static void spool(const char *sock, const char *line, size_t n) {
    stts_error e;
    char sp[PATH_MAX], path[PATH_MAX];
    if (client_spool_dir(sock, sp, sizeof sp, &e) == STTS_OK) {
        /* Requests too old to be spoken go: while no daemon can start,
         * nothing else empties the spool, and every event added a file. */
        size_t old = client_spool_prune(sp, CLIENT_SPOOL_MAX_AGE_S);
        if (old)
            hook_log("%zu spooled request%s older than %d s deleted (no daemon replayed them; they would not be "
                     "spoken now)", old, old == 1 ? "" : "s", CLIENT_SPOOL_MAX_AGE_S);
    }
    if (client_spool_dir(sock, sp, sizeof sp, &e) != STTS_OK ||
        client_spool_write(sp, line, n, path, sizeof path, &e) != STTS_OK) {
        hook_log("the daemon is not accepting and the request could not be spooled: %s; the payload is lost", e.msg);
        return;
    }
    hook_log("the daemon did not take the request; spooled to %s (the daemon replays it)", path);
}

/* 1 when the spool holds requests not yet replayed (a daemon that could not
 * start, or one still starting, will replay them). */
static int spool_pending(const char *sock) {
    stts_error e;
    char sp[PATH_MAX];
    if (client_spool_dir(sock, sp, sizeof sp, &e) != STTS_OK) return 0;
    DIR *d = opendir(sp);
    if (!d) return 0;
    int any = 0;
    struct dirent *de;
    while (!any && (de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        any = de->d_name[0] != '.' && l > 5 && strcmp(de->d_name + l - 5, ".json") == 0;
    }
    closedir(d);
    return any;
}

int cmd_hook(int argc, char **argv) {
    ensure_std_fds();
    signal(SIGPIPE, SIG_IGN);
    const char *sock_arg = NULL;
    int bad_arg = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) sock_arg = argv[++i];
        else if (strncmp(argv[i], "--socket=", 9) == 0) sock_arg = argv[i] + 9;
        else if (strcmp(argv[i], "--help") == 0) {
            /* The only output this command ever makes, and only on request. */
            fputs("usage: stream-tts hook [--socket PATH]\n"
                  "  run by Claude Code hooks (see stream-tts install-hooks): forwards the payload on stdin\n"
                  "  to the stream-tts daemon, starting it when needed; prints nothing, always exits 0.\n"
                  "  errors go to hook.log beside the socket. STREAM_TTS_HOOKS_OFF=1 turns it off.\n", stdout);
            return 0;
        } else bad_arg = i;
    }
    const char *budget = getenv("STREAM_TTS_HOOK_BUDGET_MS");
    if (budget && atoi(budget) >= 1 && atoi(budget) <= 10000) g_budget_ms = atoi(budget);
    const char *off = getenv("STREAM_TTS_HOOKS_OFF");
    if (off && *off && strcmp(off, "0") != 0) return 0;
    stts_error e;
    char sock[PATH_MAX], dir[PATH_MAX];
    if (client_socket_path_note(sock_arg, sock, sizeof sock, g_path_note, sizeof g_path_note, &e) != STTS_OK ||
        client_socket_dir(sock, dir, sizeof dir, &e) != STTS_OK) {
        hook_log("%s", e.msg);
        return 0;
    }
    if (client_prepare_dir(dir, &e) != STTS_OK) {
        /* An unsafe folder: neither connect (it may be someone else's
         * socket) nor log there. stderr reaches Claude Code's debug log. */
        hook_log("%s%s%s", e.msg, g_path_note[0] ? "; " : "", g_path_note);
        return 0;
    }
    snprintf(g_log, sizeof g_log, "%s/hook.log", dir);
    if (bad_arg) hook_log("unknown argument '%s' ignored", argv[bad_arg]);
    size_t n = 0;
    char *payload = read_payload(&n);
    if (!payload) return 0;
    uint64_t t0 = stts_now_ns(); /* the input has ended: the budget starts */
    char *line = NULL;
    size_t len = 0;
    char ev[sizeof g_event];
    stts_status st = client_hook_request(payload, n, &line, &len, ev, sizeof ev, &e);
    free(payload);
    if (st != STTS_OK) {
        hook_log("%s", e.msg);
        return 0;
    }
    if (ev[0]) snprintf(g_event, sizeof g_event, "%s", ev);
    client_conn *c = NULL;
    st = client_conn_open(sock, 10, &c, &e);
    if (st == STTS_ERR_NOT_FOUND && strcmp(ev, "SessionEnd") == 0) {
        /* No daemon: it holds no state of this session, so there is nothing
         * to end, and starting one (a model load) just to forget a session
         * would only cost. Requests spooled for a daemon to come may belong
         * to this session: then the end is spooled after them, in order. */
        if (spool_pending(sock)) spool(sock, line, len);
        free(line);
        return 0;
    }
    if (st == STTS_ERR_NOT_FOUND) c = start_daemon(sock, dir, t0);
    else if (st != STTS_OK) hook_log("%s", e.msg);
    int r = c ? deliver(c, line, len, t0) : -1;
    if (r == -2) {
        /* Its daemon went away without it: a new one (or the one replacing
         * it) takes it, or replays it from the spool once it is up. */
        client_conn_free(c);
        c = NULL;
        st = client_conn_open(sock, 10, &c, NULL);
        if (st == STTS_ERR_NOT_FOUND) c = start_daemon(sock, dir, t0);
        r = c ? deliver(c, line, len, t0) : -1;
    }
    if (r != 0) spool(sock, line, len);
    client_conn_free(c);
    free(line);
    return 0;
}
