/* clock.c - monotonic time for latency metrics (never wall-clock time, which
 * can jump). */
#define _POSIX_C_SOURCE 200809L
#include "stts_common.h"

#include <time.h>

uint64_t stts_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
