/* stts_common.h - status codes, error messages, clocks and UTF-8 helpers
 * shared by every stage of stream-tts.
 *
 * Convention (whole project): a function that can fail returns stts_status
 * and, on failure, fills the caller's stts_error with one sentence that says
 * what failed, where (file, line, tensor, argument) and what to do about it.
 * Library code never prints and never exits; the CLI decides what to show. */
#ifndef STTS_COMMON_H
#define STTS_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    STTS_OK = 0,
    STTS_ERR_INVALID_ARG,  /* caller passed something out of range */
    STTS_ERR_IO,           /* open/read/write failed */
    STTS_ERR_FORMAT,       /* bytes did not parse: bad JSON, bad model file */
    STTS_ERR_NOMEM,
    STTS_ERR_UNSUPPORTED,  /* valid but not handled: dtype, language, device */
    STTS_ERR_NOT_FOUND,    /* file, voice, language or device missing */
    STTS_ERR_DEVICE,       /* audio or GPU device failure */
    STTS_ERR_CANCELLED,    /* stopped on request */
    STTS_ERR_INTERNAL
} stts_status;

#define STTS_ERROR_MAX 512
typedef struct {
    stts_status code;
    char msg[STTS_ERROR_MAX];
} stts_error;

/* Sets e->code and formats e->msg; returns code so callers can write
 * `return stts_error_set(err, STTS_ERR_IO, "...", ...);`. NULL e is allowed. */
stts_status stts_error_set(stts_error *e, stts_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void stts_error_clear(stts_error *e);
const char *stts_status_name(stts_status s);

/* The installed data folder: <folder of the running program>/../share/stream-tts
 * when it exists (dictionary, demo model, voices of an installed copy);
 * STTS_ERR_NOT_FOUND (buf = "") in a build tree. */
stts_status stts_data_dir(char *buf, size_t cap, stts_error *err);

/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC); all latency metrics use it. */
uint64_t stts_now_ns(void);

/* UTF-8: decodes one code point from s[0..n). Returns the number of bytes
 * consumed (1..4) and stores the code point, or returns 0 for an invalid or
 * truncated sequence (then *cp is undefined; the caller skips 1 byte).
 * Overlong forms, surrogates and values above U+10FFFF are invalid. */
size_t stts_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
/* Encodes cp into out (at least 4 bytes); returns bytes written. */
size_t stts_utf8_encode(uint32_t cp, char *out);
/* Length of the longest prefix of s[0..n) that is valid UTF-8 ending on a
 * character boundary (used to hold back a split multibyte tail). */
size_t stts_utf8_valid_prefix(const unsigned char *s, size_t n);

/* TEST-ONLY fault injection (docs/RELIABILITY.md). STTS_FAULT holds
 * "name:value" pairs separated by commas, e.g.
 * STTS_FAULT=audio_fail_after_ms:300,audio_down_ms:1500 (with
 * STTS_FAULT_AUDIO_BACK=FILE the outage lasts until FILE exists). Returns the value
 * of name, or -1 when it is not set. Read once per call; cheap enough for the
 * few places that ask (sink open, once per sentence). */
long stts_fault(const char *name);

#ifdef __cplusplus
}
#endif
#endif
