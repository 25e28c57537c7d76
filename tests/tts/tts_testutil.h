/* tts_testutil.h - helpers shared by the synthesis tests: collect the
 * chunks of an utterance, measure them (RMS, peak, clipping), hash them,
 * read a reference WAV, and pull the phoneme sequence out of Open JTalk
 * full-context labels. */
#ifndef STTS_TTS_TESTUTIL_H
#define STTS_TTS_TESTUTIL_H

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stts_common.h"
#include "stts_tts.h"

typedef struct {
    int16_t *pcm;
    size_t n, cap;
    size_t chunks;
    size_t min_chunk, max_chunk;
    uint64_t first_ns;   /* when the first chunk arrived */
    uint64_t first_cpu_ns;   /* the calling thread's CPU time then (thread_cpu_ns) */
    size_t stop_after;   /* set *stop after this many chunks (0 = never) */
    atomic_int *stop;
    int cb_stop_after;   /* return 1 from the callback after this many (0 = never) */
} collect;

/* CPU time of the calling thread, where the synthesizers run (src/tts starts
 * no thread): how far a synthesis has got, whatever else the machine runs. A
 * wall-clock share of a 5-70 ms synthesis moved with every preemption. */
static inline uint64_t thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline int collect_cb(void *user, const int16_t *pcm, size_t n) {
    collect *c = user;
    if (c->chunks == 0) { c->first_ns = stts_now_ns(); c->first_cpu_ns = thread_cpu_ns(); c->min_chunk = n; }
    if (c->n + n > c->cap) {
        size_t nc = (c->n + n) * 2 + 1024;
        int16_t *g = realloc(c->pcm, nc * sizeof *g);
        if (!g) return 1;
        c->pcm = g;
        c->cap = nc;
    }
    memcpy(c->pcm + c->n, pcm, n * sizeof *pcm);
    c->n += n;
    c->chunks++;
    if (n < c->min_chunk) c->min_chunk = n;
    if (n > c->max_chunk) c->max_chunk = n;
    if (c->stop_after && c->chunks == c->stop_after && c->stop) atomic_store(c->stop, 1);
    if (c->cb_stop_after && (int)c->chunks == c->cb_stop_after) return 1;
    return 0;
}

static inline void collect_free(collect *c) { free(c->pcm); memset(c, 0, sizeof *c); }

static inline double pcm_rms(const int16_t *p, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)p[i] * p[i];
    return n ? sqrt(s / n) : 0;
}

static inline size_t pcm_clipped(const int16_t *p, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += p[i] >= 32767 || p[i] <= -32768;
    return c;
}

static inline uint64_t pcm_hash(const int16_t *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n * 2; i++) { h ^= b[i]; h *= 1099511628211ULL; }
    return h;
}

/* Reads the samples of a 16-bit mono WAV (the canonical 44-byte header
 * open_jtalk and our sink write, or any chunk order). */
static inline int16_t *read_wav16(const char *path, size_t *n, int *rate) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char h[12];
    if (fread(h, 1, 12, f) != 12 || memcmp(h, "RIFF", 4) || memcmp(h + 8, "WAVE", 4)) { fclose(f); return NULL; }
    for (;;) {
        unsigned char ch[8];
        if (fread(ch, 1, 8, f) != 8) { fclose(f); return NULL; }
        uint32_t sz = ch[4] | ch[5] << 8 | ch[6] << 16 | (uint32_t)ch[7] << 24;
        if (!memcmp(ch, "fmt ", 4)) {
            unsigned char fm[64];
            if (sz > sizeof fm || fread(fm, 1, sz, f) != sz) { fclose(f); return NULL; }
            *rate = (int)(fm[4] | fm[5] << 8 | fm[6] << 16 | (uint32_t)fm[7] << 24);
        } else if (!memcmp(ch, "data", 4)) {
            int16_t *p = malloc(sz ? sz : 1);
            *n = fread(p, 2, sz / 2, f);
            fclose(f);
            return p;
        } else if (fseek(f, sz + (sz & 1), SEEK_CUR) != 0) { fclose(f); return NULL; }
    }
}

/* "sil k o N n i ch i w a sil" from labels (the phoneme between - and +). */
static inline char *label_phonemes(const char *labels) {
    size_t cap = strlen(labels) + 1, w = 0;
    char *out = malloc(cap);
    out[0] = '\0';
    const char *line = labels;
    while (*line) {
        const char *end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        const char *m = memchr(line, '-', (size_t)(end - line));
        const char *p = m ? memchr(m, '+', (size_t)(end - m)) : NULL;
        if (m && p) {
            if (w) out[w++] = ' ';
            memcpy(out + w, m + 1, (size_t)(p - m - 1));
            w += (size_t)(p - m - 1);
            out[w] = '\0';
        }
        line = *end ? end + 1 : end;
    }
    return out;
}

static inline const char *voice_path(const char *name, char *buf, size_t size) {
    snprintf(buf, size, "%s/assets/voices/%s.htsvoice", STTS_SHARED_DIR, name);
    return buf;
}

#endif
