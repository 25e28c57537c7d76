/* stts_client.h - talking to the stream-tts daemon (`stream-tts serve`) over
 * its Unix socket, used by every client (hook, ctl, the pipe mode) and by the
 * daemon for the parts both sides share (socket path, folder checks, spool).
 *
 * Protocol (docs/PROTOCOL.md): newline-delimited JSON on a Unix stream
 * socket. A request is one line {"v":1,"op":OP,...}; the reply one line
 * {"v":1,"ok":true,...} or {"v":1,"ok":false,"error":"..."}.
 *
 * Socket path: --socket PATH, else $STREAM_TTS_SOCKET, else
 * $XDG_RUNTIME_DIR/stream-tts/socket, else /tmp/stream-tts-$UID/socket. The
 * folder is made with mode 0700 and must belong to the user.
 *
 * Spool: a request that could not be delivered (no daemon yet) is written
 * to <socket folder>/spool/<20-digit ns timestamp>-<pid>.json (a temporary
 * name, then rename), one request line per file. The daemon reads them in
 * name order at start (client_spool_drain) and deletes them. */
#ifndef STTS_CLIENT_H
#define STTS_CLIENT_H

#include <stddef.h>
#include <sys/types.h>

#include "stts_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CLIENT_PROTOCOL_VERSION 1
/* Longest request or reply line either side accepts (bytes, newline excluded). */
#define CLIENT_LINE_MAX (16u << 20)
/* Largest hook payload the hook client forwards. */
#define CLIENT_PAYLOAD_MAX (8u << 20)

/* ---- paths and folders ------------------------------------------------- */

/* The socket path: `override` (a --socket value) when non-NULL and non-empty,
 * else $STREAM_TTS_SOCKET, $XDG_RUNTIME_DIR/stream-tts/socket,
 * /tmp/stream-tts-$UID/socket. $XDG_RUNTIME_DIR counts only when it is an
 * existing folder of the user's, writable, short enough for a socket path
 * under it; else the /tmp path is used. Fails when it does not fit in a
 * sockaddr_un (108 bytes) or in buf. */
stts_status client_socket_path(const char *override, char *buf, size_t cap, stts_error *err);
/* The same; when a set $XDG_RUNTIME_DIR was passed over, note (when non-NULL)
 * gets one line saying why and which path is used instead (else ""). */
stts_status client_socket_path_note(const char *override, char *buf, size_t cap, char *note, size_t note_cap,
                                    stts_error *err);
/* The folder holding `sock_path` (everything before the last '/'; "." when none). */
stts_status client_socket_dir(const char *sock_path, char *buf, size_t cap, stts_error *err);
/* Makes `dir` (only its last component; the parent must exist) with mode 0700
 * when absent, then checks it: a real folder (not a link), owned by the
 * user, not writable by group or others. The default folders and spool/ are
 * 0700; a folder named by --socket may be the user's own 0755 folder. */
stts_status client_prepare_dir(const char *dir, stts_error *err);
/* <dir of sock_path>/spool, made and checked (mode 0700). */
stts_status client_spool_dir(const char *sock_path, char *buf, size_t cap, stts_error *err);

/* ---- connection -------------------------------------------------------- */

typedef struct client_conn client_conn;

/* Connects to the daemon's socket within timeout_ms. STTS_ERR_NOT_FOUND
 * when nobody listens (no socket file, or connection refused), STTS_ERR_IO
 * for anything else (timeout included). */
stts_status client_conn_open(const char *sock_path, int timeout_ms, client_conn **out, stts_error *err);
/* Sends line[0..n) and a '\n' (line must not contain one) within timeout_ms. */
stts_status client_conn_send(client_conn *c, const char *line, size_t n, int timeout_ms, stts_error *err);
/* Reads the next line (without its '\n', NUL-terminated) within timeout_ms.
 * *line stays owned by c and valid until the next call or client_conn_free.
 * A line over CLIENT_LINE_MAX, or EOF before a newline, is an error:
 * STTS_ERR_NOT_FOUND when the connection was closed or reset before a byte
 * of the reply (the daemon, exiting, did not act on the request), else
 * STTS_ERR_IO. */
stts_status client_conn_recv(client_conn *c, const char **line, size_t *n, int timeout_ms, stts_error *err);
int client_conn_fd(const client_conn *c);
void client_conn_free(client_conn *c);

/* One request, one reply: connect, send `line`, read the reply into *reply
 * (malloc'd, caller frees) within timeout_ms in total. */
stts_status client_request(const char *sock_path, const char *line, size_t n, int timeout_ms,
                           char **reply, stts_error *err);

/* ---- the daemon process ------------------------------------------------ */

/* The running program's own path (stts_self_exe_path: /proc/self/exe). */
stts_status client_self_exe(char *buf, size_t cap, stts_error *err);
/* Starts `program serve --socket sock_path` fully detached: double fork and
 * setsid, stdin from /dev/null, stdout/stderr appended to log_path (or
 * /dev/null when NULL), every other descriptor closed, signal mask and
 * dispositions reset. Returns once the intermediate child is reaped; never
 * waits for the daemon. */
stts_status client_spawn_daemon(const char *program, const char *sock_path, const char *log_path,
                                stts_error *err);
/* A program that cannot be run (missing, not executable: a broken install,
 * a wrong $STREAM_TTS_DAEMON) is found out: client_spawn_daemon waits for
 * the grandchild's exec (a pipe closed by it; 100 ms at most), and when it
 * failed returns STTS_ERR_NOT_FOUND with why and writes the same to
 * serve.failed (client_write_start_failed), as a daemon that could not
 * start does: the next hook says it in hook.log and holds off. */

/* serve.failed in the socket folder of sock (a path; NULL or "": the
 * default socket, client_socket_path) holds why (one line, 0600, replaced):
 * why the last daemon start could not speak. Hooks read it before starting
 * another (docs/PROTOCOL.md); a daemon that speaks removes it. */
stts_status client_write_start_failed(const char *sock, const char *why, stts_error *err);

/* ---- spool ------------------------------------------------------------- */

/* Writes line[0..n) plus '\n' to a new file in spool_dir, atomically
 * (temporary name beginning with '.', then rename). The final path is
 * copied to path_out when non-NULL. */
stts_status client_spool_write(const char *spool_dir, const char *line, size_t n,
                               char *path_out, size_t path_cap, stts_error *err);
/* A spooled request older than this (by its name's timestamp) is not spoken:
 * the daemon drops it unread, and a hook that spools deletes such files. */
#define CLIENT_SPOOL_MAX_AGE_S 60
/* Deletes spool_dir's request files whose name's timestamp is more than
 * max_age_s old; returns how many. While no daemon can start (no sound
 * device, a bad configuration) nothing drains the spool, and every hook
 * event added a file to it, without bound. */
size_t client_spool_prune(const char *spool_dir, unsigned max_age_s);
/* Called for each spooled request in name order: the line without its
 * trailing newline (NUL-terminated) and the file's path. */
typedef stts_status (*client_spool_fn)(const char *line, size_t n, const char *path, void *user);
/* Lists spool_dir's *.json files (names beginning with '.' are unfinished
 * writes and skipped), sorts them by name and for each reads it (files over
 * CLIENT_LINE_MAX are deleted unread and counted), calls fn and deletes the
 * file. fn returning STTS_ERR_CANCELLED stops the drain and keeps that file;
 * any other status deletes it and goes on (a bad request is not retried
 * forever). *done counts the files handed to fn, *dropped the unreadable
 * ones (either may be NULL). A missing spool_dir is not an error. */
stts_status client_spool_drain(const char *spool_dir, client_spool_fn fn, void *user,
                               size_t *done, size_t *dropped, stts_error *err);

/* ---- hook payloads ----------------------------------------------------- */

/* Builds the request line {"v":1,"op":"hook","payload":P} from a hook
 * payload as read on stdin: P is the payload's bytes unchanged, except that
 * surrounding whitespace is trimmed and line breaks between tokens become
 * spaces (the request is one line), and an unpaired UTF-16 surrogate escape
 * (\uD83D alone) becomes \ufffd. The payload must be one JSON object in
 * valid UTF-8 (\u0000 allowed), at most CLIENT_PAYLOAD_MAX bytes; otherwise STTS_ERR_FORMAT
 * naming the line and column. *line is malloc'd (caller frees), without a
 * trailing newline. When event/event_cap are given, the payload's
 * hook_event_name is copied there ("" when absent). */
stts_status client_hook_request(const char *payload, size_t n, char **line, size_t *len,
                                char *event, size_t event_cap, stts_error *err);
/* Rewrites in place, in JSON text s[0..n), each \u escape of an unpaired
 * UTF-16 surrogate as \ufffd (the same length; jansson refuses them, and
 * JavaScript's JSON.stringify writes them for a string holding half an
 * emoji). Returns how many were rewritten. */
size_t client_json_fix_surrogates(char *s, size_t n);

/* ---- Claude Code settings ---------------------------------------------- */

/* Our hook entries, merged into (or removed from) a settings.json text.
 * `command` is the absolute path of the stream-tts program; each entry is
 * {"type":"command","command":command,"args":["hook"],"timeout":T}.
 * Events and timeouts follow docs/HOOKS.md. An entry is ours when its
 * "args" is ["hook"] and its command's last path component is "stream-tts". */
typedef struct {
    const char *name;   /* the file's name, for messages */
    const char *text;   /* the file's bytes (NULL or n == 0: no file / empty) */
    size_t n;
    const char *command;
    int uninstall;
} client_settings_in;
typedef struct {
    char *text;         /* the new file (malloc'd, caller frees), 2-space indent, trailing newline */
    int changed;        /* 0 when the new file is the same JSON value as the old one */
    int added, removed; /* handler entries added / removed */
    int hooks_disabled; /* the file holds "disableAllHooks": true: Claude Code runs none of its hooks */
} client_settings_out;
/* Refuses a text that is not a JSON object ("settings.json line L column C:
 * ..."), or whose "hooks" has the wrong shape, without touching anything.
 * Keys keep their order; every other key and hook is kept as it was. */
stts_status client_settings_merge(const client_settings_in *in, client_settings_out *out, stts_error *err);

#ifdef __cplusplus
}
#endif
#endif
