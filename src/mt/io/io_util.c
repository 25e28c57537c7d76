/* io_util.c - file helpers for the engine's readers: path joining, capped
 * whole-file reads, read-only mmap of checkpoints. POSIX. */
#define _POSIX_C_SOURCE 200809L
#include "io/io_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

char *mtio_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    while (a > 1 && dir[a - 1] == '/') a--;
    char *p = malloc(a + 1 + b + 1);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

int mtio_is_dir(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    return S_ISDIR(st.st_mode) ? 1 : 0;
}

/* Opens path for reading without blocking: open() of a FIFO waits for a
 * writer, so a FIFO in a model directory hung the load. O_NONBLOCK changes
 * nothing for the regular files the callers go on to read or map. */
static int open_ro(const char *path) { return open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); }

static stts_status not_regular(const char *path, const struct stat *st, stts_error *err) {
    const char *what = S_ISDIR(st->st_mode) ? "a directory" : S_ISFIFO(st->st_mode) ? "a FIFO" : "not a regular file";
    return stts_error_set(err, STTS_ERR_IO, "%s: %s, where a regular file is expected", path, what);
}

static stts_status open_err(const char *path, stts_error *err) {
    int e = errno;
    if (e == ENOENT || e == ENOTDIR)
        return stts_error_set(err, STTS_ERR_NOT_FOUND, "%s: file not found", path);
    return stts_error_set(err, STTS_ERR_IO, "%s: cannot open: %s", path, strerror(e));
}

stts_status mtio_read_file(const char *path, size_t max_bytes, char **out, size_t *n, stts_error *err) {
    int fd = open_ro(path);
    if (fd < 0) return open_err(path, err);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return stts_error_set(err, STTS_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return not_regular(path, &st, err);
    }
    if ((unsigned long long)st.st_size > max_bytes) {
        close(fd);
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: %lld bytes is larger than the %zu allowed for this file",
                              path, (long long)st.st_size, max_bytes);
    }
    size_t size = (size_t)st.st_size, got = 0;
    char *buf = malloc(size + 1);
    if (!buf) {
        close(fd);
        return stts_error_set(err, STTS_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, size);
    }
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = errno;
            free(buf);
            close(fd);
            return stts_error_set(err, STTS_ERR_IO, "%s: read failed after %zu of %zu bytes: %s", path, got, size,
                                  r < 0 ? strerror(e) : "file shrank");
        }
        got += (size_t)r;
    }
    close(fd);
    buf[size] = '\0';
    *out = buf;
    *n = size;
    return STTS_OK;
}

stts_status mtio_map_file(const char *path, const void **data, size_t *n, stts_error *err) {
    int fd = open_ro(path);
    if (fd < 0) return open_err(path, err);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return stts_error_set(err, STTS_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return not_regular(path, &st, err);
    }
    if (st.st_size == 0) {
        close(fd);
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: the file is empty (an interrupted download?)", path);
    }
    if ((unsigned long long)st.st_size > (unsigned long long)SIZE_MAX) {
        close(fd);
        return stts_error_set(err, STTS_ERR_UNSUPPORTED, "%s: too large to map on this system", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return stts_error_set(err, STTS_ERR_IO, "%s: mmap failed: %s", path, strerror(e));
    *data = p;
    *n = (size_t)st.st_size;
    return STTS_OK;
}

void mtio_unmap(const void *data, size_t n) {
    if (data && n) munmap((void *)data, n);
}
