/* pipe_client.c - the pipe mode through a running daemon (`--daemon
 * auto|always|never`): stream-json lines are handed to `stream-tts serve`
 * one request each ({"op":"line"}, docs/PROTOCOL.md), so a pipe gets the
 * warm model and the shared audio queue. At the end of input the client
 * waits until its speech is done. If the daemon goes away mid-stream, the
 * caller continues in-process with the same input reader, from the line
 * the daemon did not take. */
#define _POSIX_C_SOURCE 200809L
#include "pipe_client.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stts_client.h"

/* The line as a JSON string: invalid UTF-8 bytes become U+FFFD (the front
 * end would replace them anyway), so the request is always valid JSON. */
static json_t *line_string(const char *s, size_t n) {
    json_t *j = json_stringn(s, n);
    if (j) return j;
    char *buf = malloc(n * 3 + 1);
    if (!buf) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = stts_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (k == 0) { memcpy(buf + o, "\xEF\xBF\xBD", 3); o += 3; i++; }
        else { memcpy(buf + o, s + i, k); o += k; i += k; }
    }
    j = json_stringn(buf, o);
    free(buf);
    return j;
}

/* One request, its reply: 0 taken; -1 not taken (it could not be sent,
 * the daemon closed the connection before a byte of its reply, or refused
 * it); -2 unknown (no reply in time, or a reply cut short: a stuck daemon
 * may still act on it). */
static int exchange(client_conn *c, json_t *rq, int timeout_ms, char *why, size_t cap) {
    char *line = json_dumps(rq, JSON_COMPACT);
    json_decref(rq);
    stts_error err;
    if (!line) { snprintf(why, cap, "out of memory"); return -1; }
    stts_status st = client_conn_send(c, line, strlen(line), timeout_ms, &err);
    free(line);
    if (st != STTS_OK) { snprintf(why, cap, "%s", err.msg); return -1; }
    const char *rep = NULL;
    size_t n = 0;
    st = client_conn_recv(c, &rep, &n, timeout_ms, &err);
    if (st != STTS_OK) { snprintf(why, cap, "%s", err.msg); return st == STTS_ERR_NOT_FOUND ? -1 : -2; }
    json_error_t je;
    json_t *r = json_loadb(rep, n, 0, &je);
    int ok = r && json_is_true(json_object_get(r, "ok"));
    if (!ok) snprintf(why, cap, "the daemon refused: %.200s", r ? json_string_value(json_object_get(r, "error")) : rep);
    json_decref(r);
    return ok ? 0 : -1;
}

static json_t *request(const char *op, const char *session) {
    json_t *o = json_object();
    json_object_set_new(o, "v", json_integer(1));
    json_object_set_new(o, "op", json_string(op));
    json_object_set_new(o, "session", json_string(session));
    return o;
}

/* The end of input: the reply to end+wait comes when the session's speech
 * is done, so it is waited for as long as the daemon lives. A paused daemon
 * holds it: that is said once (the run sat silent before), found by a
 * status request on its own connection after 2 s without the reply. */
static int end_and_wait(client_conn *c, const char *path, const char *session, char *why, size_t cap) {
    json_t *rq = request("end", session);
    json_object_set_new(rq, "wait", json_true());
    char *line = json_dumps(rq, JSON_COMPACT);
    json_decref(rq);
    stts_error err;
    if (!line) { snprintf(why, cap, "out of memory"); return -1; }
    stts_status st = client_conn_send(c, line, strlen(line), 5000, &err);
    free(line);
    if (st != STTS_OK) { snprintf(why, cap, "%s", err.msg); return -1; }
    int told = 0;
    for (;;) {
        struct pollfd pfd = {client_conn_fd(c), POLLIN, 0};
        int pr = poll(&pfd, 1, 2000);
        if (pr < 0 && errno == EINTR) continue;
        if (pr != 0) break;   /* the reply (or the connection's end) is there */
        if (told) continue;
        static const char status[] = "{\"v\":1,\"op\":\"status\"}";
        char *rep = NULL;
        if (client_request(path, status, sizeof status - 1, 2000, &rep, &err) == STTS_OK && rep) {
            json_t *r = json_loads(rep, 0, NULL);
            if (r && json_is_true(json_object_get(r, "paused"))) {
                fprintf(stderr, "stream-tts: the daemon is paused: this run's speech waits for `stream-tts ctl resume` "
                                "(Ctrl-C leaves it queued there)\n");
                told = 1;
            }
            json_decref(r);
        }
        free(rep);
    }
    const char *rep = NULL;
    size_t n = 0;
    st = client_conn_recv(c, &rep, &n, 5000, &err);
    if (st != STTS_OK) { snprintf(why, cap, "%s", err.msg); return -1; }
    json_t *r = json_loadb(rep, n, 0, NULL);
    int ok = r && json_is_true(json_object_get(r, "ok"));
    if (!ok) snprintf(why, cap, "the daemon refused: %.200s", r ? json_string_value(json_object_get(r, "error")) : rep);
    json_decref(r);
    return ok ? 0 : -1;
}

int pipe_via_daemon(const frontend_opts *fo, const char *mode, ingest_reader **fallback_reader, int *fallback_fd) {
    *fallback_reader = NULL;
    *fallback_fd = -1;
    int always = strcmp(mode, "always") == 0;
    char path[108];
    stts_error err;
    if (client_socket_path(NULL, path, sizeof path, &err) != STTS_OK) {
        if (!always) return -1;
        fprintf(stderr, "stream-tts: %s\n", err.msg);
        return 1;
    }
    client_conn *c = NULL;
    if (client_conn_open(path, 500, &c, &err) != STTS_OK) {
        if (!always) return -1;   /* auto: no daemon, speak in-process */
        fprintf(stderr, "stream-tts: --daemon always: no stream-tts daemon is listening on %s (%s); start one "
                        "with stream-tts serve, or use --daemon auto\n", path, err.msg);
        return 1;
    }
    /* A request at once: the daemon closes a connection that stays silent
     * for 5 s (docs/PROTOCOL.md), and the first input line may take longer. */
    char session[64], why[600];
    json_t *ping = json_object();
    json_object_set_new(ping, "v", json_integer(1));
    json_object_set_new(ping, "op", json_string("ping"));
    if (exchange(c, ping, 5000, why, sizeof why) != 0) {
        client_conn_free(c);
        /* A daemon that answers but refuses the pipe (its connections for
         * clients that stay are all in use) is said: two voices at once
         * would otherwise come unexplained. */
        if (!always && !strncmp(why, "the daemon refused", 18))
            fprintf(stderr, "stream-tts: %s; speaking in-process\n", why);
        if (!always) return -1;
        fprintf(stderr, "stream-tts: --daemon always: the stream-tts daemon on %s does not answer (%s)\n", path, why);
        return 1;
    }
    int fd = 0;
    if (fo->input && strcmp(fo->input, "-") != 0 && (fd = open(fo->input, O_RDONLY | O_CLOEXEC)) < 0) {
        fprintf(stderr, "stream-tts: cannot open input '%s': %s\n", fo->input, strerror(errno));
        client_conn_free(c);
        return 1;
    }
    ingest_reader *r = NULL;
    if (ingest_reader_new(fd, fo->max_line, &r, &err) != STTS_OK) {
        fprintf(stderr, "stream-tts: %s\n", err.msg);
        client_conn_free(c);
        if (fd > 0) close(fd);
        return 1;
    }
    snprintf(session, sizeof session, "pipe-%ld-%lld", (long)getpid(), (long long)time(NULL));
    fprintf(stderr, "stream-tts: speaking through the daemon on %s as session %s (--daemon never: in-process)\n",
            path, session);
    int rc = 0;
    for (;;) {
        ingest_line ln;
        ingest_result res;
        if (ingest_reader_next(r, -1, &ln, &res, &err) != STTS_OK) {
            fprintf(stderr, "stream-tts: %s\n", err.msg);
            rc = 1;
            break;
        }
        if (res == INGEST_EOF) break;
        if (res != INGEST_GOT_LINE) continue;
        json_t *rq = request("line", session);
        json_object_set_new(rq, "line", line_string(ln.data, ln.len));
        int x = exchange(c, rq, 30000, why, sizeof why);
        if (x != 0) {
            /* The daemon went away (or refused): the rest is spoken here,
             * from this line when the daemon did not take it (it was lost:
             * the rest began with the next one); a daemon that did not
             * answer in time may still speak it, so never twice. */
            fprintf(stderr, "stream-tts: the daemon stopped answering (%s); speaking in-process from here on (%s)\n",
                    why, x == -1 ? "from the line it did not take" : "from the next line: it may still speak this one");
            if (x == -1) ingest_reader_unread(r);
            client_conn_free(c);
            *fallback_reader = r;
            *fallback_fd = fd;
            return -2;
        }
    }
    if (rc == 0 && end_and_wait(c, path, session, why, sizeof why) != 0) {
        fprintf(stderr, "stream-tts: the daemon went away before finishing (%s)\n", why);
        rc = 1;
    }
    client_conn_free(c);
    ingest_reader_free(r);
    if (fd > 0) close(fd);
    return rc;
}
