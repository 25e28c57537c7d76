/* log_cap.h - the one size cap of stream-tts's own logs (hook.log, serve.log),
 * shared by the hook and the daemon. Not in include/: internal to the tool. */
#ifndef STTS_CLIENT_LOG_CAP_H
#define STTS_CLIENT_LOG_CAP_H

/* The size past which a log is moved to LOG.1 (one old generation kept):
 * a log that gains a line per request must not fill the disk. */
#define CLIENT_LOG_MAX (1L << 20)

/* When the file at path is larger than CLIENT_LOG_MAX, renames it to
 * path.1 (replacing an older one). Returns 1 when it did, else 0. */
int client_log_rotate(const char *path);

#endif
