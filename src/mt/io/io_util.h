/* io_util.h - small file helpers shared by the engine's readers (src/mt/io):
 * path joining, whole-file reads with a size cap, read-only mmap. */
#ifndef MT_IO_UTIL_H
#define MT_IO_UTIL_H

#include <stddef.h>

#include "stts_common.h"

/* malloc'ed "dir/name" (no double slash); NULL on out of memory. */
char *mtio_path_join(const char *dir, const char *name);
/* Reads a whole file (at most max_bytes) into a NUL-terminated malloc'ed
 * buffer. STTS_ERR_NOT_FOUND when the file does not exist. */
stts_status mtio_read_file(const char *path, size_t max_bytes, char **out, size_t *n, stts_error *err);
/* Maps a whole file read-only. A zero-length file yields STTS_ERR_FORMAT.
 * Release with mtio_unmap. */
stts_status mtio_map_file(const char *path, const void **data, size_t *n, stts_error *err);
void mtio_unmap(const void *data, size_t n);
/* 1 if path is a directory, 0 if it is something else, -1 if it is absent. */
int mtio_is_dir(const char *path);

#endif
