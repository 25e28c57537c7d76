/* fault.c - TEST-ONLY fault injection: the STTS_FAULT environment variable
 * names the faults a reliability test wants (see docs/RELIABILITY.md). Not
 * set in normal use, and then every stts_fault() answers -1. */
#include <stdlib.h>
#include <string.h>

#include "stts_common.h"

long stts_fault(const char *name) {
    const char *f = getenv("STTS_FAULT");
    size_t n = strlen(name);
    for (const char *p = f; p && *p;) {
        if (strncmp(p, name, n) == 0 && p[n] == ':') return strtol(p + n + 1, NULL, 10);
        p = strchr(p, ',');
        if (p) p++;
    }
    return -1;
}
