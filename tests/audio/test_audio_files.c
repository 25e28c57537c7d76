/* test_audio_files.c - the WAV and raw PCM sinks: bytes on disk are the
 * samples written (read back through an independent parser, and through
 * sox when it is installed), silence has the asked length, marks carry the
 * write time, unwritable paths give a clear error. */
#define _DEFAULT_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stts_audio.h"
#include "test.h"

static int16_t *make_signal(size_t n, int rate) {
    int16_t *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (int16_t)(8000.0 * sin(2 * 3.14159265358979 * 440.0 * i / rate) + 1000);
    return p;
}

static uint32_t rd32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static void test_wav_roundtrip(void) {
    char path[] = "/tmp/stts-wav-XXXXXX.wav";
    int fd = mkstemps(path, 4);
    CHECK(fd >= 0);
    close(fd);
    audio_params p;
    audio_default_params(&p);
    p.kind = AUDIO_SINK_WAV;
    p.path = path;
    p.sample_rate = 22050;
    audio_sink *s = NULL;
    stts_error err = {0};
    CHECK_EQ_INT(audio_open(&p, &s, &err), STTS_OK);
    if (!s) return;
    size_t n = 22050;
    int16_t *sig = make_signal(n, 22050);
    uint64_t m0 = 0, m1 = 0, h0 = 0, p0 = 0, h1 = 0, p1 = 0;
    uint64_t t0 = stts_now_ns();
    CHECK_EQ_INT(audio_mark(s, &m0, &err), STTS_OK);
    CHECK_EQ_INT(audio_write(s, sig, 1000, audio_sample_rate(s), &err), STTS_OK);
    CHECK_EQ_INT(audio_write(s, sig + 1000, n - 1000, audio_sample_rate(s), &err), STTS_OK);
    CHECK_EQ_INT(audio_mark(s, &m1, &err), STTS_OK);
    CHECK_EQ_INT(audio_silence(s, 250.0, &err), STTS_OK);  /* 5512.5 -> 5513 samples */
    CHECK(audio_mark_query(s, m0, &h0, &p0) == 1);
    CHECK(audio_mark_query(s, m1, &h1, &p1) == 1);
    CHECK(h0 >= t0 && h1 >= h0 && p1 == h1);
    CHECK(audio_mark_query(s, m1 + 1, NULL, NULL) == 0);  /* not made yet */
    CHECK_EQ_INT(audio_frames_written(s), n + 5513);
    CHECK_EQ_INT(audio_close(s, &err), STTS_OK);
    size_t len = 0;
    unsigned char *b = (unsigned char *)test_read_file(path, &len);
    CHECK(b && len == 44 + 2 * (n + 5513));
    if (b && len >= 44) {
        CHECK(memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WAVEfmt ", 8) == 0 && memcmp(b + 36, "data", 4) == 0);
        CHECK_EQ_INT(rd32(b + 4), len - 8);
        CHECK_EQ_INT(rd32(b + 24), 22050);
        CHECK_EQ_INT(rd32(b + 40), 2 * (n + 5513));
        CHECK(memcmp(b + 44, sig, n * 2) == 0);
        int zero = 1;
        for (size_t i = 44 + n * 2; i < len; i++) zero &= b[i] == 0;
        CHECK(zero);
    }
    /* sox reads it as the same thing (an independent WAV parser). */
    if (access("/usr/bin/soxi", X_OK) != 0) {
        TEST_SKIP("/usr/bin/soxi missing (Debian package sox): the WAV is not checked by an independent parser");
    } else {
        char cmd[512], out[64] = "";
        snprintf(cmd, sizeof cmd, "soxi -s '%s'", path);
        FILE *f = popen(cmd, "r");
        if (f) { if (!fgets(out, sizeof out, f)) out[0] = '\0'; pclose(f); }
        CHECK_EQ_INT(atol(out), n + 5513);
        snprintf(cmd, sizeof cmd, "soxi -r '%s'", path);
        f = popen(cmd, "r");
        if (f) { if (!fgets(out, sizeof out, f)) out[0] = '\0'; pclose(f); }
        CHECK_EQ_INT(atol(out), 22050);
    }
    free(b);
    free(sig);
    unlink(path);
}

static void test_raw_to_fd(void) {
    int fds[2];
    CHECK(pipe(fds) == 0);
    audio_params p;
    audio_default_params(&p);
    p.kind = AUDIO_SINK_RAW;
    p.fd = fds[1];
    p.sample_rate = 48000;
    audio_sink *s = NULL;
    stts_error err = {0};
    CHECK_EQ_INT(audio_open(&p, &s, &err), STTS_OK);
    int16_t *sig = make_signal(3000, 48000);
    CHECK_EQ_INT(audio_write(s, sig, 3000, audio_sample_rate(s), &err), STTS_OK);
    CHECK_EQ_INT(audio_silence(s, 1.0, &err), STTS_OK);
    CHECK_EQ_INT(audio_close(s, &err), STTS_OK);
    close(fds[1]);  /* the sink does not own a caller's fd */
    unsigned char buf[8000];
    size_t got = 0;
    ssize_t k;
    while ((k = read(fds[0], buf + got, sizeof buf - got)) > 0) got += (size_t)k;
    close(fds[0]);
    CHECK_EQ_INT(got, 2 * 3048);
    CHECK(memcmp(buf, sig, 6000) == 0);
    free(sig);
}

static void test_wav_to_pipe_is_streamable(void) {
    /* WAV on an unseekable fd (stdout into a pipe): header first with the
     * open-ended size, samples right after. */
    int fds[2];
    CHECK(pipe(fds) == 0);
    int saved = dup(1);
    dup2(fds[1], 1);
    audio_params p;
    audio_default_params(&p);
    p.kind = AUDIO_SINK_WAV;
    p.path = "-";
    p.sample_rate = 16000;
    audio_sink *s = NULL;
    stts_error err = {0};
    CHECK_EQ_INT(audio_open(&p, &s, &err), STTS_OK);
    int16_t x[4] = {1, -2, 3, -4};
    CHECK_EQ_INT(audio_write(s, x, 4, audio_sample_rate(s), &err), STTS_OK);
    CHECK_EQ_INT(audio_close(s, &err), STTS_OK);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    close(fds[1]);
    unsigned char b[64];
    ssize_t got = read(fds[0], b, sizeof b);
    close(fds[0]);
    CHECK_EQ_INT(got, 52);
    CHECK(memcmp(b, "RIFF", 4) == 0 && memcmp(b + 44, x, 8) == 0);
    CHECK_EQ_INT(rd32(b + 24), 16000);
}

static void test_errors(void) {
    audio_params p;
    audio_default_params(&p);
    p.kind = AUDIO_SINK_WAV;
    p.path = "/nonexistent-dir/x.wav";
    p.sample_rate = 48000;
    audio_sink *s = NULL;
    stts_error err = {0};
    CHECK_EQ_INT(audio_open(&p, &s, &err), STTS_ERR_IO);
    CHECK(strstr(err.msg, "/nonexistent-dir/x.wav") != NULL);
    CHECK(s == NULL);
    p.path = "/tmp/x.wav";
    p.sample_rate = 0;
    CHECK_EQ_INT(audio_open(&p, &s, &err), STTS_ERR_INVALID_ARG);
    /* Writing to a closed pipe reports an I/O error (no SIGPIPE death). */
    signal(SIGPIPE, SIG_IGN);
    int fds[2];
    CHECK(pipe(fds) == 0);
    close(fds[0]);
    audio_default_params(&p);
    p.kind = AUDIO_SINK_RAW;
    p.fd = fds[1];
    p.sample_rate = 48000;
    CHECK_EQ_INT(audio_open(&p, &s, &err), STTS_OK);
    int16_t x[16] = {0};
    CHECK_EQ_INT(audio_write(s, x, 16, audio_sample_rate(s), &err), STTS_ERR_IO);
    audio_close(s, NULL);
    close(fds[1]);
}

int main(void) {
    TEST_RUN(test_wav_roundtrip);
    TEST_RUN(test_raw_to_fd);
    TEST_RUN(test_wav_to_pipe_is_streamable);
    TEST_RUN(test_errors);
    return TEST_SUMMARY();
}
