/* error.c - the project's one way to report a failure: a status code plus a
 * formatted sentence in a caller-owned buffer. */
#include "stts_common.h"

#include <stdarg.h>
#include <stdio.h>

stts_status stts_error_set(stts_error *e, stts_status code, const char *fmt, ...) {
    if (!e) return code;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

void stts_error_clear(stts_error *e) {
    if (!e) return;
    e->code = STTS_OK;
    e->msg[0] = '\0';
}

const char *stts_status_name(stts_status s) {
    switch (s) {
    case STTS_OK: return "ok";
    case STTS_ERR_INVALID_ARG: return "invalid argument";
    case STTS_ERR_IO: return "i/o error";
    case STTS_ERR_FORMAT: return "format error";
    case STTS_ERR_NOMEM: return "out of memory";
    case STTS_ERR_UNSUPPORTED: return "unsupported";
    case STTS_ERR_NOT_FOUND: return "not found";
    case STTS_ERR_DEVICE: return "device error";
    case STTS_ERR_CANCELLED: return "cancelled";
    case STTS_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}
