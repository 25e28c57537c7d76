/* stts_compat.h - the few system calls whose Linux form macOS lacks.
 *
 * Each function takes the Linux call where the system has it (SOCK_CLOEXEC,
 * accept4, pipe2, MSG_NOSIGNAL, SO_PEERCRED, /proc/self/exe, posix_fallocate,
 * sigtimedwait) and a POSIX fallback elsewhere (fcntl after the call,
 * SO_NOSIGPIPE, getpeereid, _NSGetExecutablePath, ftruncate). The choice is
 * made by feature macros, not by OS name, so building with
 * -DSTTS_FORCE_POSIX_FALLBACKS=ON (STTS_COMPAT_POSIX) runs the fallbacks on
 * Linux too: scripts/check-posix-fallbacks tests the daemon and its clients
 * that way. Linux builds without the option behave exactly as before. */
#ifndef STTS_COMPAT_H
#define STTS_COMPAT_H

#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* socket(domain, type) close-on-exec, and non-blocking when nonblock;
 * where there is no MSG_NOSIGNAL, with SO_NOSIGPIPE set when the system has
 * it. -1 with errno on failure. */
int stts_socket_cloexec(int domain, int type, int nonblock);

/* accept(fd, addr, len) whose new descriptor is close-on-exec (and
 * non-blocking when nonblock), as accept4 would make it. */
int stts_accept_cloexec(int fd, struct sockaddr *addr, socklen_t *addrlen, int nonblock);

/* pipe(fds) with both ends close-on-exec (and non-blocking when nonblock). */
int stts_pipe_cloexec(int fds[2], int nonblock);

/* send(fd, buf, n, flags) that never raises SIGPIPE: MSG_NOSIGNAL, or
 * SO_NOSIGPIPE (fd must come from stts_socket_cloexec or
 * stts_accept_cloexec), or SIGPIPE blocked around the call. */
ssize_t stts_send_nosignal(int fd, const void *buf, size_t n, int flags);

/* The uid of the process at the other end of the Unix socket fd: 0 and
 * *uid set, or -1 with errno (and *uid = (uid_t)-1). */
int stts_peer_uid(int fd, uid_t *uid);

/* The running program's own path, symlinks resolved, like readlink() of
 * /proc/self/exe into buf of cap bytes: its length (at most cap - 1, so a
 * result of cap - 1 may be truncated), buf NUL-terminated; -1 with errno. */
ssize_t stts_self_exe_path(char *buf, size_t cap);
/* Where stts_self_exe_path looks, for error messages. */
#ifdef __APPLE__
#define STTS_SELF_EXE_SOURCE "_NSGetExecutablePath"
#else
#define STTS_SELF_EXE_SOURCE "/proc/self/exe"
#endif

/* Makes fd at least size bytes long, reserving the blocks where the system
 * can (posix_fallocate; F_PREALLOCATE on macOS), so a full disk fails now.
 * Returns 0 or an error number, as posix_fallocate does. */
int stts_preallocate(int fd, off_t size);

/* Waits up to timeout_ms for one of the signals in set (blocked in every
 * thread) and takes it: its number, 0 on timeout, -1 with errno. */
int stts_sigwait_timeout(const sigset_t *set, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
