/* compat.c - the Linux calls stream-tts makes, with POSIX fallbacks for
 * systems without them (macOS). See stts_compat.h. Each branch is chosen by
 * a feature macro (SOCK_CLOEXEC, MSG_NOSIGNAL, SO_PEERCRED,
 * _POSIX_ADVISORY_INFO, _POSIX_REALTIME_SIGNALS) rather than by OS name, and
 * STTS_COMPAT_POSIX (cmake -DSTTS_FORCE_POSIX_FALLBACKS=ON) skips the Linux
 * branches so the fallbacks are built and tested on Linux too. */
#define _GNU_SOURCE       /* glibc: accept4, pipe2, struct ucred, NSIG */
#define _DARWIN_C_SOURCE  /* macOS: SO_NOSIGPIPE, getpeereid, F_PREALLOCATE */
#include "stts_compat.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#ifdef __APPLE__
#include <mach-o/dyld.h>
#endif

/* The Linux (and POSIX.1-2024) one-call forms: SOCK_CLOEXEC came with
 * accept4 and pipe2 everywhere that has it; macOS has none of the three. */
#if defined(SOCK_CLOEXEC) && defined(SOCK_NONBLOCK) && !defined(STTS_COMPAT_POSIX)
#define HAVE_CLOEXEC_CALLS 1
#endif

#ifndef HAVE_CLOEXEC_CALLS
/* Close-on-exec, and O_NONBLOCK set or cleared, after the call: a fork in
 * another thread between the two can inherit the descriptor (the daemon
 * starts no program while it accepts, so this window is harmless here). */
static int set_fd_flags(int fd, int nonblock) {
    int fdf = fcntl(fd, F_GETFD), fl = fcntl(fd, F_GETFL);
    if (fdf < 0 || fl < 0 || fcntl(fd, F_SETFD, fdf | FD_CLOEXEC) != 0) return -1;
    int want = nonblock ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    return want == fl ? 0 : fcntl(fd, F_SETFL, want);
}
#endif

/* SO_NOSIGPIPE (macOS, BSDs; Linux has none) makes the socket itself never
 * raise SIGPIPE: set even where the headers have MSG_NOSIGNAL, which newer
 * macOS SDKs define but older macOS kernels may not honour. */
static int set_nosigpipe(int fd) {
#ifdef SO_NOSIGPIPE
    int one = 1;
    return setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#else
    (void)fd;
    return 0;
#endif
}

static int close_keep_errno(int fd) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

int stts_socket_cloexec(int domain, int type, int nonblock) {
#ifdef HAVE_CLOEXEC_CALLS
    int fd = socket(domain, type | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) return -1;
#else
    int fd = socket(domain, type, 0);
    if (fd < 0) return -1;
    if (set_fd_flags(fd, nonblock) != 0) return close_keep_errno(fd);
#endif
    if (set_nosigpipe(fd) != 0) return close_keep_errno(fd);
    return fd;
}

int stts_accept_cloexec(int fd, struct sockaddr *addr, socklen_t *addrlen, int nonblock) {
#ifdef HAVE_CLOEXEC_CALLS
    int c = accept4(fd, addr, addrlen, SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0));
    if (c < 0) return -1;
#else
    /* Linux's accept does not pass O_NONBLOCK on, BSD's does: set_fd_flags
     * sets or clears it, as accept4 would. */
    int c = accept(fd, addr, addrlen);
    if (c < 0) return -1;
    if (set_fd_flags(c, nonblock) != 0) return close_keep_errno(c);
#endif
    if (set_nosigpipe(c) != 0) return close_keep_errno(c);
    return c;
}

int stts_pipe_cloexec(int fds[2], int nonblock) {
#ifdef HAVE_CLOEXEC_CALLS
    return pipe2(fds, O_CLOEXEC | (nonblock ? O_NONBLOCK : 0));
#else
    if (pipe(fds) != 0) return -1;
    if (set_fd_flags(fds[0], nonblock) != 0 || set_fd_flags(fds[1], nonblock) != 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        errno = e;
        return -1;
    }
    return 0;
#endif
}

ssize_t stts_send_nosignal(int fd, const void *buf, size_t n, int flags) {
#if defined(MSG_NOSIGNAL) && !defined(STTS_COMPAT_POSIX)
    return send(fd, buf, n, flags | MSG_NOSIGNAL);
#elif defined(SO_NOSIGPIPE)
    return send(fd, buf, n, flags); /* set on the socket by stts_socket_cloexec / stts_accept_cloexec */
#else
    /* Neither (only with STTS_COMPAT_POSIX on Linux): block SIGPIPE in this
     * thread around the send and take the one it raised, unless one was
     * already pending before (that one is not ours to take). */
    sigset_t pipe_set, old, pend;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pend);
    int was_pending = sigismember(&pend, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t r = send(fd, buf, n, flags);
    int e = errno;
    if (r < 0 && e == EPIPE && !was_pending && sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE) == 1) {
        int sig;
        sigwait(&pipe_set, &sig);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return r;
#endif
}

int stts_peer_uid(int fd, uid_t *uid) {
    *uid = (uid_t)-1;
#if defined(SO_PEERCRED) && defined(__linux__) && (!defined(STTS_COMPAT_POSIX) || !defined(STTS_HAVE_GETPEEREID))
    /* Also the forced-fallback build on Linux: glibc has no getpeereid. */
    struct ucred uc;
    socklen_t ul = sizeof uc;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) != 0) return -1;
    if (ul != sizeof uc) { errno = EINVAL; return -1; }
    *uid = uc.uid;
    return 0;
#elif defined(STTS_HAVE_GETPEEREID)
    gid_t gid;
    return getpeereid(fd, uid, &gid);
#else
    /* No way to know the peer: callers refuse it (fail closed). */
    (void)fd;
    errno = ENOSYS;
    return -1;
#endif
}

ssize_t stts_self_exe_path(char *buf, size_t cap) {
    if (cap < 2) { errno = EINVAL; return -1; }
#if defined(__linux__)
    ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
    if (n < 0) return -1;
    buf[n] = '\0';
    return n;
#elif defined(__APPLE__)
    /* _NSGetExecutablePath may name a symlink or hold "..": realpath gives
     * what readlink(/proc/self/exe) gives on Linux, so paths relative to the
     * program (../share, ../libexec) work the same. */
    char raw[PATH_MAX], real[PATH_MAX];
    uint32_t rn = sizeof raw;
    if (_NSGetExecutablePath(raw, &rn) != 0) { errno = ENAMETOOLONG; return -1; }
    if (!realpath(raw, real)) return -1;
    size_t n = strlen(real);
    if (n > cap - 1) n = cap - 1;   /* truncated like readlink: callers check n == cap - 1 */
    memcpy(buf, real, n);
    buf[n] = '\0';
    return (ssize_t)n;
#else
    errno = ENOSYS;
    return -1;
#endif
}

int stts_preallocate(int fd, off_t size) {
#if defined(_POSIX_ADVISORY_INFO) && _POSIX_ADVISORY_INFO > 0 && !defined(STTS_COMPAT_POSIX)
    return posix_fallocate(fd, 0, size);
#else
    /* No posix_fallocate (macOS): reserve the blocks where the file system
     * can (F_PREALLOCATE), then set the size; a full disk still fails now
     * where F_PREALLOCATE works, and at the first write elsewhere. */
    struct stat st;
    if (fstat(fd, &st) != 0) return errno;
    if (st.st_size >= size) return 0;
#ifdef F_PREALLOCATE
    fstore_t fs = {F_ALLOCATECONTIG | F_ALLOCATEALL, F_PEOFPOSMODE, 0, size - st.st_size, 0};
    if (fcntl(fd, F_PREALLOCATE, &fs) != 0) {
        fs.fst_flags = F_ALLOCATEALL;   /* not in one piece, then */
        if (fcntl(fd, F_PREALLOCATE, &fs) != 0 && (errno == ENOSPC || errno == EFBIG || errno == EDQUOT))
            return errno;
    }
#endif
    return ftruncate(fd, size) == 0 ? 0 : errno;
#endif
}

int stts_sigwait_timeout(const sigset_t *set, int timeout_ms) {
#if defined(_POSIX_REALTIME_SIGNALS) && _POSIX_REALTIME_SIGNALS > 0 && !defined(STTS_COMPAT_POSIX)
    struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    int sig = sigtimedwait(set, NULL, &ts);
    return sig < 0 && errno == EAGAIN ? 0 : sig;
#else
    /* No sigtimedwait (macOS): look at the pending signals every 10 ms and
     * take one of set with sigwait, which then returns at once. Only one
     * thread may wait on set this way (another could take the signal
     * between the look and the sigwait). */
#ifdef NSIG
    const int nsig = NSIG;
#else
    const int nsig = 32;
#endif
    for (int waited = 0;; waited += 10) {
        sigset_t pend;
        if (sigpending(&pend) != 0) return -1;
        for (int s = 1; s < nsig; s++) {
            if (sigismember(set, s) == 1 && sigismember(&pend, s) == 1) {
                int sig, rc = sigwait(set, &sig);
                if (rc != 0) { errno = rc; return -1; }
                return sig;
            }
        }
        if (waited >= timeout_ms) return 0;
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
#endif
}
