/* chunked_writer.h - a thread body for the ingest tests: writes a buffer
 * into a pipe in pieces of pseudo-random size (1..max_chunk bytes, from
 * seed), then closes the pipe, so readers see input split anywhere. */
#ifndef TESTS_CHUNKED_WRITER_H
#define TESTS_CHUNKED_WRITER_H

#include <stddef.h>
#include <unistd.h>

typedef struct {
    int fd;
    const char *data;
    size_t len;
    unsigned seed;
    size_t max_chunk;
} writer_arg;

static void *chunked_writer(void *p) {
    writer_arg *w = p;
    size_t i = 0;
    unsigned s = w->seed;
    while (i < w->len) {
        s = s * 1103515245u + 12345u;
        size_t k = 1 + (s >> 16) % w->max_chunk;
        if (k > w->len - i) k = w->len - i;
        ssize_t n = write(w->fd, w->data + i, k);
        if (n <= 0) break;
        i += (size_t)n;
    }
    close(w->fd);
    return NULL;
}

#endif
