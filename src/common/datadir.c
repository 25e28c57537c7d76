/* datadir.c - where an installed stream-tts keeps its data: the folder
 * share/stream-tts beside the program's bin/ (cmake --install --prefix P
 * puts the program in P/bin and the data in P/share/stream-tts), found from
 * the program's own path (stts_self_exe_path: /proc/self/exe, or
 * _NSGetExecutablePath on macOS) so any prefix works without a checkout or a
 * rebuild. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stts_common.h"
#include "stts_compat.h"

stts_status stts_data_dir(char *buf, size_t cap, stts_error *err) {
    char exe[PATH_MAX];
    ssize_t n = stts_self_exe_path(exe, sizeof exe);
    if (n <= 0) return stts_error_set(err, STTS_ERR_NOT_FOUND, "cannot find the running program (" STTS_SELF_EXE_SOURCE ")");
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    int k = snprintf(buf, cap, "%s/../share/stream-tts", exe);
    struct stat st;
    if (k < 0 || (size_t)k >= cap || stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
        if (cap) buf[0] = '\0';
        return stts_error_set(err, STTS_ERR_NOT_FOUND, "no share/stream-tts beside %s (not an installed copy)", exe);
    }
    return STTS_OK;
}
