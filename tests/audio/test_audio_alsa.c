/* test_audio_alsa.c - the real PortAudio -> ALSA playback path with no
 * sound card: HOME points at a temporary directory whose .asoundrc makes
 * ALSA's default PCM the `file` plugin (over `null`), which writes every
 * byte PortAudio hands to ALSA into a file we then compare with what was
 * played. Also: marks, abort within its own give-up time, resampling to a forced device
 * rate, and (argument "nodevice") the one-line error when no device works.
 * ALSA reads its configuration once per process, so each mode is its own
 * process (two CTest entries). */
#define _DEFAULT_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stts_audio.h"
#include "test.h"

static char g_dir[256], g_raw[320];

static void setup_alsa(const char *pcm_def) {
    snprintf(g_dir, sizeof g_dir, "/tmp/stts-alsa-XXXXXX");
    if (!mkdtemp(g_dir)) TEST_SKIP_ALL("mkdtemp failed");
    snprintf(g_raw, sizeof g_raw, "%s/out.raw", g_dir);
    char rc[400];
    snprintf(rc, sizeof rc, "%s/.asoundrc", g_dir);
    FILE *f = fopen(rc, "w");
    fprintf(f, pcm_def, g_raw);
    fclose(f);
    setenv("HOME", g_dir, 1);
    /* Keep PulseAudio/JACK out of it: plain ALSA only. */
    unsetenv("PULSE_SERVER");
    setenv("JACK_NO_START_SERVER", "1", 1);
}

static void cleanup(void) {
    char rc[400];
    snprintf(rc, sizeof rc, "%s/.asoundrc", g_dir);
    unlink(rc);
    unlink(g_raw);
    rmdir(g_dir);
}

static int16_t *read_raw(size_t *n) {
    FILE *f = fopen(g_raw, "rb");
    if (!f) { *n = 0; return NULL; }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    int16_t *p = malloc((size_t)sz + 2);
    *n = fread(p, 2, (size_t)sz / 2, f);
    fclose(f);
    return p;
}

static int16_t *make_signal(size_t n, int rate) {
    int16_t *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (int16_t)(8000.0 * sin(2 * 3.14159265358979 * 440.0 * i / rate) + 1000);
    return p;
}

/* Finds sig in got after leading zeros; returns the offset or -1. Silence
 * the device inserted on an underrun (the writer descheduled on a loaded
 * machine: PortAudio then plays zeros) is skipped on both sides, so what is
 * compared is every sample played, in order, nothing added or lost. */
static long find_after_zeros(const int16_t *got, size_t ng, const int16_t *sig, size_t n) {
    size_t i = 0;
    while (i < ng && got[i] == 0) i++;
    long first = (long)i;
    size_t k = 0;
    for (; i < ng; i++) {
        if (got[i] == 0) continue;
        while (k < n && sig[k] == 0) k++;
        if (k >= n || got[i] != sig[k]) return -1;
        k++;
    }
    while (k < n && sig[k] == 0) k++;
    return k == n ? first : -1;
}

static audio_sink *open_default(int rate, int device_rate, stts_error *err) {
    audio_params p;
    audio_default_params(&p);
    p.sample_rate = rate;
    p.device_rate = device_rate;
    audio_sink *s = NULL;
    stts_status st = audio_open(&p, &s, err);
    CHECK_MSG(st == STTS_OK, "%s", err->msg);
    return s;
}

static void test_bytes_reach_alsa(void) {
    stts_error err = {0};
    audio_sink *s = open_default(48000, 0, &err);
    if (!s) return;
    CHECK_EQ_INT(audio_device_rate(s), 48000);
    size_t n = 9600;  /* 200 ms, fits the 400 ms ring: no underrun inside */
    int16_t *sig = make_signal(n, 48000);
    uint64_t m0, m1, h0 = 0, p0 = 0, h1 = 0, p1 = 0;
    uint64_t t0 = stts_now_ns();
    CHECK_EQ_INT(audio_mark(s, &m0, &err), STTS_OK);
    for (size_t i = 0; i < n; i += 240) CHECK_EQ_INT(audio_write(s, sig + i, 240, audio_sample_rate(s), &err), STTS_OK);
    CHECK_EQ_INT(audio_mark(s, &m1, &err), STTS_OK);
    CHECK_EQ_INT(audio_drain(s, &err), STTS_OK);
    CHECK(audio_mark_query(s, m0, &h0, &p0) == 1);
    CHECK(audio_mark_query(s, m1, &h1, &p1) == 1);
    CHECK(h0 >= t0 && h1 >= h0 && p0 >= h0 && p1 >= h1);
    CHECK_EQ_INT(audio_close(s, &err), STTS_OK);
    size_t ng = 0;
    int16_t *got = read_raw(&ng);
    CHECK_MSG(ng >= n, "ALSA file got %zu samples, expected >= %zu", ng, n);
    long off = got ? find_after_zeros(got, ng, sig, n) : -1;
    CHECK_MSG(off >= 0, "the samples that reached ALSA differ from those played");
    printf("ALSA file: %zu samples, signal at %ld, marks handed %.1f ms apart\n", ng, off, (h1 - h0) / 1e6);
    free(got);
    free(sig);
    unlink(g_raw);
}

static void test_resample_to_device_rate(void) {
    stts_error err = {0};
    audio_sink *s = open_default(22050, 48000, &err);
    if (!s) return;
    CHECK_EQ_INT(audio_device_rate(s), 48000);
    size_t n = 4410;  /* 200 ms */
    int16_t *sig = make_signal(n, 22050);
    CHECK_EQ_INT(audio_write(s, sig, n, 22050, &err), STTS_OK);
    /* Then 200 ms of a 16 kHz voice: one device, one rate, both durations. */
    int16_t *sig16 = make_signal(3200, 16000);
    uint64_t id;
    CHECK_EQ_INT(audio_mark(s, &id, &err), STTS_OK);
    CHECK_EQ_INT(audio_write(s, sig16, 3200, 16000, &err), STTS_OK);
    free(sig16);
    CHECK_EQ_INT(audio_close(s, &err), STTS_OK);
    size_t ng = 0;
    int16_t *got = read_raw(&ng);
    /* Non-zero samples, so silence inserted on an underrun does not count. */
    size_t span = 0;
    double e = 0;
    for (size_t i = 0; i < ng; i++)
        if (got[i]) { span++; e += (double)got[i] * got[i]; }
    /* 2 x 200 ms at 48 kHz = 19200 samples; the 440 Hz tone keeps its power. */
    CHECK_MSG(span > 19000 && span < 19400, "resampled span %zu", span);
    double rms_in = 0;
    for (size_t i = 0; i < n; i++) rms_in += (double)sig[i] * sig[i];
    CHECK_NEAR(sqrt(e / span), sqrt(rms_in / n), 0.05 * sqrt(rms_in / n));
    free(got);
    free(sig);
    unlink(g_raw);
}

static void test_abort_is_quick(void) {
    stts_error err = {0};
    audio_params p;
    audio_default_params(&p);
    p.sample_rate = 48000;
    p.ring_ms = 2000;
    audio_sink *s = NULL;
    CHECK_EQ_INT(audio_open(&p, &s, &err), STTS_OK);
    if (!s) return;
    size_t n = 48000;  /* 1 s queued */
    int16_t *sig = make_signal(n, 48000);
    /* audio_abort waits for the callback's acknowledgement (one 5 ms period)
     * and gives up after 50 sleeps of 1 ms. The bound is that give-up time
     * as measured here plus 0.5 s: an abort that waits for a dead callback
     * (or for the 1 s queued, on a device paced in real time) fails it.
     * (ALSA's null device drains 1 s in a few ms, so draining is no
     * baseline.) The two are timed one after the other, so load that comes
     * between them stretches one only: the bound was the give-up time plus
     * one 5 ms period, a few ms of margin against a load spike. */
    uint64_t t0 = stts_now_ns();
    for (int i = 0; i < 50; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    uint64_t give_up = stts_now_ns() - t0;
    CHECK_EQ_INT(audio_write(s, sig, n, audio_sample_rate(s), &err), STTS_OK);
    t0 = stts_now_ns();
    audio_abort(s);
    uint64_t dt = stts_now_ns() - t0;
    printf("abort with 1 s queued: %.1f ms (bound: 50 sleeps of 1 ms measured at %.1f ms, + 500 ms)\n", dt / 1e6,
           give_up / 1e6);
    CHECK_MSG(dt < give_up + 500000000ULL, "abort took %.1f ms, its give-up time here is %.1f ms", dt / 1e6,
              give_up / 1e6);
    /* After an abort the sink plays new audio normally. */
    CHECK_EQ_INT(audio_write(s, sig, 4800, audio_sample_rate(s), &err), STTS_OK);
    CHECK_EQ_INT(audio_drain(s, &err), STTS_OK);
    CHECK_EQ_INT(audio_close(s, &err), STTS_OK);
    free(sig);
    unlink(g_raw);
}

static int count_dev(void *user, const audio_device_info *d) {
    int *n = user;
    if (d->is_default) n[1] = 1;
    if (strcmp(d->name, "default") == 0) n[2] = d->index;
    n[0]++;
    return 0;
}

static void test_list_and_select(void) {
    stts_error err = {0};
    int n[3] = {0, 0, -1};
    CHECK_EQ_INT(audio_list_devices(count_dev, n, &err), STTS_OK);
    CHECK(n[0] >= 1);
    CHECK(n[1] == 1);
    /* By name and by index. */
    audio_params p;
    audio_default_params(&p);
    p.sample_rate = 48000;
    p.device = "default";
    audio_sink *s = NULL;
    CHECK_EQ_INT(audio_open(&p, &s, &err), STTS_OK);
    audio_close(s, NULL);
    char idx[16];
    snprintf(idx, sizeof idx, "%d", n[2]);
    p.device = idx;
    s = NULL;
    CHECK_EQ_INT(audio_open(&p, &s, &err), STTS_OK);
    audio_close(s, NULL);
    p.device = "no such device at all";
    CHECK_EQ_INT(audio_open(&p, &s, &err), STTS_ERR_NOT_FOUND);
    /* the hint names a command every subcommand's user has (the main
     * command has no --list-audio-devices) */
    CHECK(strstr(err.msg, "stream-tts voices --audio-devices") != NULL);
    p.device = "9999";
    CHECK_EQ_INT(audio_open(&p, &s, &err), STTS_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "stream-tts voices --audio-devices") != NULL);
    unlink(g_raw);
}

static void test_no_device_message(void) {
    audio_params p;
    audio_default_params(&p);
    p.sample_rate = 48000;
    audio_sink *s = NULL;
    stts_error err = {0};
    stts_status st = audio_open(&p, &s, &err);
    CHECK_MSG(st == STTS_ERR_DEVICE, "status %s: %s", stts_status_name(st), err.msg);
    CHECK(strstr(err.msg, "--output") != NULL);
    CHECK(strchr(err.msg, '\n') == NULL);
    printf("no-device message: %s\n", err.msg);
    CHECK(s == NULL);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "nodevice") == 0) {
        /* A default PCM that cannot open: a sound card that is not there. */
        setup_alsa("pcm.!default { type hw card 97 }\nctl.!default { type hw card 97 }\n# %s\n");
        TEST_RUN(test_no_device_message);
    } else {
        setup_alsa("pcm.!default { type file slave.pcm \"null\" file \"%s\" format \"raw\" }\n");
        TEST_RUN(test_bytes_reach_alsa);
        TEST_RUN(test_resample_to_device_rate);
        TEST_RUN(test_abort_is_quick);
        TEST_RUN(test_list_and_select);
    }
    cleanup();
    return TEST_SUMMARY();
}
