/* pipe_client.h - the pipe mode through a running daemon (--daemon). */
#ifndef STTS_PIPE_CLIENT_H
#define STTS_PIPE_CLIENT_H

#include "frontend_opts.h"

/* Sends the input (stdin or --input, stream-json) to the daemon line by
 * line, then waits until it has been spoken. Returns the exit status; -1
 * when no daemon listens and mode is "auto" (speak in-process); -2 when the
 * daemon went away mid-stream: *fallback_reader (and *fallback_fd, to close
 * after it; 0 = stdin) continue the input from the next line, in-process. */
int pipe_via_daemon(const frontend_opts *fo, const char *mode, ingest_reader **fallback_reader, int *fallback_fd);

#endif
