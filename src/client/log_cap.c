/* log_cap.c - see log_cap.h. */
#define _GNU_SOURCE
#include "log_cap.h"

#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

int client_log_rotate(const char *path) {
    struct stat st;
    if (!path || !path[0] || stat(path, &st) != 0 || st.st_size <= CLIENT_LOG_MAX) return 0;
    char old[PATH_MAX + 8];
    if (snprintf(old, sizeof old, "%s.1", path) >= (int)sizeof old) return 0;
    return rename(path, old) == 0;
}
