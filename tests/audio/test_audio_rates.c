/* test_audio_rates.c - the sink is the one place rates are converted: samples
 * tagged with one rate come out of a WAV or raw sink at another with the same
 * frequency (zero crossings), amplitude, timing (aligned with the ideal sine)
 * and duration (within 2 output frames); runs of different rates into one
 * WAV keep each one's duration and frequency, and marks sit on the frames
 * they bracket. The references are the ideal signals, computed here. */
#define _DEFAULT_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stts_audio.h"
#include "test.h"

#define AMP 8000.0
#define PI 3.14159265358979323846

static int16_t *sine(size_t n, double f, int rate) {
    int16_t *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (int16_t)lrint(AMP * sin(2 * PI * f * (double)i / rate));
    return p;
}

/* Frequency from upward zero crossings in [a, b), with the crossing times
 * interpolated between samples; -1 with fewer than 3 crossings. */
static double zc_freq(const int16_t *x, size_t a, size_t b, int rate) {
    double first = -1, last = -1;
    int n = 0;
    for (size_t i = a + 1; i < b; i++) {
        if (x[i - 1] < 0 && x[i] >= 0) {
            double t = (double)(i - 1) + (double)-x[i - 1] / ((double)x[i] - x[i - 1]);
            if (first < 0) first = t;
            last = t;
            n++;
        }
    }
    return n >= 3 ? (n - 1) * (double)rate / (last - first) : -1;
}

static double rms(const int16_t *x, size_t a, size_t b) {
    double e = 0;
    for (size_t i = a; i < b; i++) e += (double)x[i] * x[i];
    return b > a ? sqrt(e / (double)(b - a)) : 0;
}

/* RMS difference from the ideal sine at the output rate, starting at frame
 * `at` (where the run began): a converter that shifts the signal in time
 * (an uncompensated filter delay) or distorts it fails this. */
static double err_vs_ideal(const int16_t *x, size_t at, size_t a, size_t b, double f, int rate) {
    double e = 0;
    for (size_t i = a; i < b; i++) {
        double want = AMP * sin(2 * PI * f * (double)(i - at) / rate);
        e += (x[i] - want) * (x[i] - want);
    }
    return sqrt(e / (double)(b - a));
}

static char g_path[64];

static audio_sink *open_wav(int rate) {
    snprintf(g_path, sizeof g_path, "/tmp/stts-rates-XXXXXX");
    int fd = mkstemp(g_path);
    CHECK(fd >= 0);
    close(fd);
    audio_params p;
    audio_default_params(&p);
    p.kind = AUDIO_SINK_WAV;
    p.path = g_path;
    p.sample_rate = rate;
    audio_sink *s = NULL;
    stts_error err = {0};
    CHECK_EQ_INT(audio_open(&p, &s, &err), STTS_OK);
    return s;
}

/* The WAV's samples and its header's rate. */
static int16_t *read_wav(size_t *n, int *rate) {
    size_t len = 0;
    unsigned char *b = (unsigned char *)test_read_file(g_path, &len);
    unlink(g_path);
    *n = 0;
    *rate = 0;
    if (!b || len < 44) { free(b); return NULL; }
    *rate = b[24] | b[25] << 8 | b[26] << 16 | b[27] << 24;
    *n = (len - 44) / 2;
    int16_t *x = malloc(*n * sizeof *x + 2);
    memcpy(x, b + 44, *n * 2);
    free(b);
    return x;
}

/* Writes n samples in irregular pieces (1 sample up to a few thousand), as
 * a vocoder hands them out, so the converter's streaming is exercised. */
static void write_pieces(audio_sink *s, const int16_t *x, size_t n, int rate) {
    static const size_t sizes[] = {1, 7, 240, 1000, 333, 4096, 64, 2};
    stts_error err = {0};
    for (size_t i = 0, k = 0; i < n; k++) {
        size_t m = sizes[k % 8];
        if (m > n - i) m = n - i;
        CHECK_EQ_INT(audio_write(s, x + i, m, rate, &err), STTS_OK);
        i += m;
    }
}

static void one_conversion(int in_rate, int out_rate, double f) {
    audio_sink *s = open_wav(out_rate);
    if (!s) return;
    size_t n = (size_t)in_rate;   /* 1 s */
    int16_t *x = sine(n, f, in_rate);
    stts_error err = {0};
    uint64_t m0, m1;
    CHECK_EQ_INT(audio_mark(s, &m0, &err), STTS_OK);
    write_pieces(s, x, n, in_rate);
    CHECK_EQ_INT(audio_mark(s, &m1, &err), STTS_OK);   /* the run ends: its tail is out */
    uint64_t at_mark = audio_frames_written(s);
    CHECK_EQ_INT(audio_close(s, &err), STTS_OK);
    size_t ng = 0;
    int rate = 0;
    int16_t *y = read_wav(&ng, &rate);
    CHECK_EQ_INT(rate, out_rate);
    CHECK_EQ_INT(ng, at_mark);
    /* 1 s in, 1 s out. */
    CHECK_MSG(labs((long)ng - out_rate) <= 2, "%d -> %d Hz: %zu frames for 1 s", in_rate, out_rate, ng);
    if (y && ng > (size_t)out_rate / 2) {
        size_t a = (size_t)out_rate / 50, b = ng - (size_t)out_rate / 50;   /* 20 ms in from each end */
        double fz = zc_freq(y, a, b, out_rate);
        double e = err_vs_ideal(y, 0, a, b, f, out_rate);
        printf("%5d -> %5d Hz, %6.1f Hz tone: %zu frames, zero crossings say %.3f Hz, rms %.0f (in %.0f), "
               "error vs ideal %.1f\n", in_rate, out_rate, f, ng, fz, rms(y, a, b), rms(x, 0, n), e);
        CHECK_NEAR(fz, f, f * 0.001);
        CHECK_NEAR(rms(y, a, b), AMP / sqrt(2), AMP * 0.01);
        CHECK_MSG(e < AMP * 0.01, "%d -> %d Hz: %.1f rms away from the ideal sine", in_rate, out_rate, e);
    }
    free(x);
    free(y);
}

static void test_sine_keeps_frequency_and_duration(void) {
    one_conversion(22050, 48000, 440.0);    /* espeak-ng's rate to a device's */
    one_conversion(48000, 16000, 1000.0);   /* Open JTalk's to a phone-line file */
    one_conversion(16000, 44100, 300.0);
    one_conversion(48000, 22050, 3000.0);
    one_conversion(24000, 24000, 440.0);    /* no conversion: samples as written */
}

/* Unconverted runs arrive bit-exact; the same rate never passes the filter. */
static void test_same_rate_is_untouched(void) {
    audio_sink *s = open_wav(22050);
    if (!s) return;
    int16_t *x = sine(5000, 440.0, 22050);
    write_pieces(s, x, 5000, 22050);
    stts_error err = {0};
    CHECK_EQ_INT(audio_close(s, &err), STTS_OK);
    size_t ng = 0;
    int rate = 0;
    int16_t *y = read_wav(&ng, &rate);
    CHECK(ng == 5000 && y && memcmp(x, y, 5000 * 2) == 0);
    free(x);
    free(y);
}

/* Three voices' rates into one WAV, as notices by espeak-ng (22050 Hz),
 * sentences by Open JTalk (48000 Hz) and a command voice (16000 Hz) would
 * come: one output rate, each run its own duration and tone, gaps exact,
 * marks where the runs end. */
static void test_mixed_rates_into_one_wav(void) {
    const int out = 24000;
    const struct { int rate; double secs, f; } runs[] = {{22050, 0.5, 300.0}, {48000, 0.7, 1000.0}, {16000, 0.3, 500.0},
                                                         {48000, 0.25, 700.0}};
    enum { NR = 4 };
    audio_sink *s = open_wav(out);
    if (!s) return;
    stts_error err = {0};
    uint64_t start[NR], end[NR];
    for (int r = 0; r < NR; r++) {
        size_t n = (size_t)lrint(runs[r].secs * runs[r].rate);
        int16_t *x = sine(n, runs[r].f, runs[r].rate);
        uint64_t id;
        CHECK_EQ_INT(audio_mark(s, &id, &err), STTS_OK);
        start[r] = audio_frames_written(s);
        write_pieces(s, x, n, runs[r].rate);
        CHECK_EQ_INT(audio_mark(s, &id, &err), STTS_OK);
        end[r] = audio_frames_written(s);
        CHECK_EQ_INT(audio_silence(s, 100.0, &err), STTS_OK);   /* 2400 frames at 24 kHz */
        free(x);
    }
    uint64_t total = audio_frames_written(s);
    CHECK_EQ_INT(audio_close(s, &err), STTS_OK);
    size_t ng = 0;
    int rate = 0;
    int16_t *y = read_wav(&ng, &rate);
    CHECK_EQ_INT(rate, out);
    CHECK_EQ_INT(ng, total);
    if (!y) return;
    for (int r = 0; r < NR; r++) {
        long want = lrint(runs[r].secs * out);
        long got = (long)(end[r] - start[r]);
        CHECK_MSG(labs(got - want) <= 2, "run %d (%d Hz, %.2f s): %ld frames, want %ld", r, runs[r].rate,
                  runs[r].secs, got, want);
        if (r + 1 < NR) CHECK_EQ_INT(start[r + 1] - end[r], 2400);   /* the gap, exactly */
        size_t a = (size_t)start[r] + out / 50, b = (size_t)end[r] - out / 50;
        double fz = zc_freq(y, a, b, out);
        double e = err_vs_ideal(y, (size_t)start[r], a, b, runs[r].f, out);
        printf("run %d: %5d Hz %.2f s -> %ld frames at %d Hz, %.3f Hz (want %.0f), error vs ideal %.1f\n", r,
               runs[r].rate, runs[r].secs, got, out, fz, runs[r].f, e);
        CHECK_NEAR(fz, runs[r].f, runs[r].f * 0.001);
        CHECK_MSG(e < AMP * 0.01, "run %d: %.1f rms away from the ideal sine", r, e);
        /* The gap after it is silent: no converter tail leaks into it. */
        if (r + 1 < NR) CHECK(rms(y, (size_t)end[r] + 8, (size_t)start[r + 1]) < 1.0);
    }
    free(y);
}

/* Raw PCM (--output -) converts the same way; a tag out of range is refused. */
static void test_raw_and_bad_tags(void) {
    int fds[2];
    CHECK(pipe(fds) == 0);
    audio_params p;
    audio_default_params(&p);
    p.kind = AUDIO_SINK_RAW;
    p.fd = fds[1];
    p.sample_rate = 8000;
    audio_sink *s = NULL;
    stts_error err = {0};
    CHECK_EQ_INT(audio_open(&p, &s, &err), STTS_OK);
    if (!s) return;
    int16_t *x = sine(4800, 440.0, 48000);   /* 100 ms */
    CHECK_EQ_INT(audio_write(s, x, 4800, 48000, &err), STTS_OK);
    CHECK_EQ_INT(audio_write(s, x, 10, 0, &err), STTS_ERR_INVALID_ARG);
    CHECK(strstr(err.msg, "0 Hz") != NULL);
    CHECK_EQ_INT(audio_close(s, &err), STTS_OK);
    close(fds[1]);
    int16_t buf[2000];
    size_t got = 0;
    ssize_t k;
    while ((k = read(fds[0], (char *)buf + got, sizeof buf - got)) > 0) got += (size_t)k;
    close(fds[0]);
    CHECK_MSG(labs((long)got / 2 - 800) <= 2, "100 ms at 8 kHz: %zu frames", got / 2);
    free(x);
}

int main(void) {
    TEST_RUN(test_sine_keeps_frequency_and_duration);
    TEST_RUN(test_same_rate_is_untouched);
    TEST_RUN(test_mixed_rates_into_one_wav);
    TEST_RUN(test_raw_and_bad_tags);
    return TEST_SUMMARY();
}
