/* log_cap.h - the one size cap of stream-tts's own logs (hook.log, serve.log),
 * shared by the hook and the daemon. Not in include/: internal to the tool. */
#ifndef STTS_CLIENT_LOG_CAP_H
#define STTS_CLIENT_LOG_CAP_H

/* The size past which a log is moved to LOG.1 (one old generation kept):
 * a log that gains a line per request must not fill the disk. */
#define CLIENT_LOG_MAX (1L << 20)

/* When the file at path is larger than CLIENT_LOG_MAX, renames it to
 * path.1 (replacing an older one). Returns 1 when it did, else 0 (under the
 * cap, or another process is rotating it or has just done so). Safe with
 * any number of processes rotating the same log at once: each generation is
 * moved once (log_cap.c says how). Never blocks. */
int client_log_rotate(const char *path);

/* 1 when fd, a log opened at path, is no longer the file at path (rotated
 * by this process or another, or removed): its writer reopens path, or
 * would write into LOG.1 for ever. */
int client_log_moved(const char *path, int fd);

#endif
