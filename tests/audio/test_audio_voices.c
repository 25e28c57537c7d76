/* test_audio_voices.c - voices of different native rates into one output:
 * a notice by espeak-ng (22050 Hz) and a sentence by Open JTalk (48000 Hz),
 * streamed chunk by chunk as the backends hand them out, into one WAV at
 * 48 kHz and one at 22.05 kHz. The reference is each voice's own samples:
 * the run at the output's rate arrives bit-exact; the converted run lasts
 * as long (within 2 frames), keeps its level, and its loudness envelope
 * (10 ms windows) follows the original's in time: correlation > 0.98 and
 * best at lag 0 among lags of -3..3 ms (measured here: a 5 ms shift drops
 * it to 0.95-0.98, so a stretched or shifted run fails; going down to
 * 22.05 kHz removes Open JTalk's energy above 11 kHz, hence not 0.99). */
#define _DEFAULT_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stts_audio.h"
#include "stts_tts.h"
#include "test.h"

typedef struct {
    audio_sink *sink;
    int rate;
    int16_t *pcm;   /* what the voice handed out, for the reference */
    size_t n, cap;
} tee;

static int tee_chunk(void *user, const int16_t *pcm, size_t n) {
    tee *t = user;
    stts_error err = {0};
    if (t->n + n > t->cap) {
        t->cap = (t->n + n) * 2;
        t->pcm = realloc(t->pcm, t->cap * sizeof *t->pcm);
    }
    memcpy(t->pcm + t->n, pcm, n * sizeof *pcm);
    t->n += n;
    return audio_write(t->sink, pcm, n, t->rate, &err) != STTS_OK;
}

static double rms(const int16_t *x, size_t n) {
    double e = 0;
    for (size_t i = 0; i < n; i++) e += (double)x[i] * x[i];
    return n ? sqrt(e / (double)n) : 0;
}

/* Correlation of the 10 ms RMS envelopes of a (at ra) and b (at rb). */
static double envelope_corr(const int16_t *a, size_t na, int ra, const int16_t *b, size_t nb, int rb) {
    size_t w = (size_t)(na * 100 / ra < nb * 100 / rb ? na * 100 / ra : nb * 100 / rb);
    double *ea = calloc(w, sizeof *ea), *eb = calloc(w, sizeof *eb), ma = 0, mb = 0;
    for (size_t k = 0; k < w; k++) {
        ea[k] = rms(a + k * (size_t)ra / 100, (size_t)ra / 100);
        eb[k] = rms(b + k * (size_t)rb / 100, (size_t)rb / 100);
        ma += ea[k] / w;
        mb += eb[k] / w;
    }
    double sab = 0, saa = 0, sbb = 0;
    for (size_t k = 0; k < w; k++) {
        sab += (ea[k] - ma) * (eb[k] - mb);
        saa += (ea[k] - ma) * (ea[k] - ma);
        sbb += (eb[k] - mb) * (eb[k] - mb);
    }
    free(ea);
    free(eb);
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : 0;
}

static void into_one_wav(tts_synth *en, tts_synth *ja, int out) {
    char path[] = "/tmp/stts-voices-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    audio_params p;
    audio_default_params(&p);
    p.kind = AUDIO_SINK_WAV;
    p.path = path;
    p.sample_rate = out;
    audio_sink *s = NULL;
    stts_error err = {0};
    CHECK_EQ_INT(audio_open(&p, &s, &err), STTS_OK);
    if (!s) return;
    tee t[2] = {{s, tts_sample_rate(en), NULL, 0, 0}, {s, tts_sample_rate(ja), NULL, 0, 0}};
    tts_synth *v[2] = {en, ja};
    const char *text[2] = {"Translation resumed.", "今日は良い天気ですね。"};
    uint64_t start[2], end[2], id;
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(audio_mark(s, &id, &err), STTS_OK);
        start[i] = audio_frames_written(s);
        CHECK_EQ_INT(tts_synthesize(v[i], text[i], tee_chunk, &t[i], NULL, &err), STTS_OK);
        CHECK_EQ_INT(audio_mark(s, &id, &err), STTS_OK);
        end[i] = audio_frames_written(s);
        CHECK_EQ_INT(audio_silence(s, 150.0, &err), STTS_OK);
    }
    CHECK_EQ_INT(audio_close(s, &err), STTS_OK);
    size_t len = 0;
    unsigned char *b = (unsigned char *)test_read_file(path, &len);
    unlink(path);
    CHECK(b && len > 44);
    if (!b || len <= 44) { free(b); free(t[0].pcm); free(t[1].pcm); return; }
    CHECK_EQ_INT(b[24] | b[25] << 8 | b[26] << 16 | b[27] << 24, out);
    const int16_t *y = (const int16_t *)(b + 44);
    CHECK_EQ_INT((len - 44) / 2, end[1] + (size_t)llround(0.150 * out));
    for (int i = 0; i < 2; i++) {
        long got = (long)(end[i] - start[i]);
        long want = lrint((double)t[i].n * out / t[i].rate);
        double c = envelope_corr(t[i].pcm, t[i].n, t[i].rate, y + start[i], (size_t)got, out);
        double lv = rms(y + start[i], (size_t)got) / rms(t[i].pcm, t[i].n);
        printf("%s (%d Hz, %.3f s) into %d Hz: %ld frames (want %ld), level ratio %.4f, envelope correlation %.4f\n",
               tts_backend_label(tts_backend_of(v[i])), t[i].rate, (double)t[i].n / t[i].rate, out, got, want, lv, c);
        CHECK_MSG(labs(got - want) <= 2, "%ld frames, want %ld", got, want);
        if (t[i].rate == out) {
            CHECK(got == (long)t[i].n && memcmp(y + start[i], t[i].pcm, t[i].n * 2) == 0);
        } else {
            CHECK_NEAR(lv, 1.0, 0.03);
            CHECK_MSG(c > 0.98, "envelope correlation %.4f", c);
            int best = 0;
            double bc = c;
            for (int ms = -3; ms <= 3; ms++) {
                if (!ms) continue;
                size_t ro = ms < 0 ? (size_t)(-ms * t[i].rate / 1000) : 0, yo = ms > 0 ? (size_t)(ms * out / 1000) : 0;
                double cl = envelope_corr(t[i].pcm + ro, t[i].n - ro, t[i].rate, y + start[i] + yo, (size_t)got - yo, out);
                if (cl > bc) { bc = cl; best = ms; }
            }
            CHECK_MSG(best == 0, "the envelope matches best %d ms off (%.4f vs %.4f at 0)", best, bc, c);
        }
    }
    free(b);
    free(t[0].pcm);
    free(t[1].pcm);
}

static void test_espeak_and_jtalk_in_one_output(void) {
    char vp[1024];
    snprintf(vp, sizeof vp, "%s/assets/voices/mei_normal.htsvoice", STTS_SHARED_DIR);
    if (access(vp, R_OK) != 0) { TEST_SKIP("%s missing (scripts/fetch-assets): no Open JTalk voice", vp); return; }
    tts_params p;
    tts_default_params(&p);
    p.lang = "eng_Latn";
    tts_synth *en = NULL, *ja = NULL;
    stts_error err = {0};
    CHECK_EQ_INT(tts_open(&p, &en, &err), STTS_OK);
    tts_default_params(&p);
    p.voice = vp;
    CHECK_EQ_INT(tts_open(&p, &ja, &err), STTS_OK);
    if (en && ja) {
        CHECK_EQ_INT(tts_sample_rate(en), 22050);
        CHECK_EQ_INT(tts_sample_rate(ja), 48000);
        into_one_wav(en, ja, 48000);   /* espeak-ng converted up */
        into_one_wav(en, ja, 22050);   /* Open JTalk converted down */
    }
    tts_close(en);
    tts_close(ja);
}

int main(void) {
    TEST_RUN(test_espeak_and_jtalk_in_one_output);
    return TEST_SUMMARY();
}
