/* log_cap.c - see log_cap.h.
 *
 * Several processes write and rotate the same log: hooks run in parallel
 * (hook.log), and two daemons overlap while one exits (serve.log). The
 * check "over the cap" and the rename were two steps, so two processes that
 * both found the log full both renamed it: the second moved the fresh log the
 * first (or a writer) had just begun over LOG.1, and the full generation was
 * lost. The rename is now done under an flock of the log file itself, by the
 * process that holds it, once it has checked that the file it locked is still
 * the one at the path and still over the cap: a second rotator either finds
 * the lock taken (someone rotates it: nothing to do) or, once it has it, finds
 * another file at the path. Writers take no lock: a line written to the old
 * file while it is renamed lands in LOG.1, which is kept. */
#define _GNU_SOURCE
#include "log_cap.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int client_log_rotate(const char *path) {
    struct stat st;
    /* The common case, a log under the cap, costs one stat and no lock. */
    if (!path || !path[0] || stat(path, &st) != 0 || st.st_size <= CLIENT_LOG_MAX) return 0;
    char old[PATH_MAX + 8];
    if (snprintf(old, sizeof old, "%s.1", path) >= (int)sizeof old) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) return 0;
    int done = 0;
    /* Never waits: a lock held means another process is rotating this very
     * file (a hook must not block on a stopped one). */
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
        struct stat mine, now;
        if (fstat(fd, &mine) == 0 && lstat(path, &now) == 0 && mine.st_dev == now.st_dev && mine.st_ino == now.st_ino &&
            mine.st_size > CLIENT_LOG_MAX)
            done = rename(path, old) == 0;
    }
    close(fd);   /* releases the lock */
    return done;
}

int client_log_moved(const char *path, int fd) {
    struct stat mine, now;
    if (fstat(fd, &mine) != 0) return 0;   /* nothing better to write to */
    return lstat(path, &now) != 0 || mine.st_dev != now.st_dev || mine.st_ino != now.st_ino;
}
