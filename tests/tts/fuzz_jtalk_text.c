/* fuzz_jtalk_text.c - libFuzzer target for the Japanese text entry: any
 * bytes go through tts_labels (clean-up, version normalization, text2mecab,
 * mecab with the reading dictionaries, the NJD passes, label making) and,
 * for short inputs, the start of synthesis (HTS state/parameter generation
 * and a few vocoder frames). Run under ASan+UBSan by scripts/run-fuzzers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stts_tts.h"

static tts_synth *g_synth;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* HTS engine keeps some model arrays through pointers offset before their
 * blocks (1-based indexing), which LeakSanitizer cannot see as references:
 * close the voice at exit so nothing is reported as leaked. */
static void close_synth(void) { tts_close(g_synth); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    tts_params p;
    tts_default_params(&p);
    p.voice = STTS_SHARED_DIR "/assets/voices/mei_normal.htsvoice";
    stts_error err = {0};
    if (tts_open(&p, &g_synth, &err) != STTS_OK) {
        fprintf(stderr, "fuzz_jtalk_text: %s\n", err.msg);
        abort();
    }
    atexit(close_synth);
    return 0;
}

static int stop_soon(void *user, const int16_t *pcm, size_t n) {
    (void)pcm;
    (void)n;
    return ++*(int *)user >= 4;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';  /* the API takes C strings: an embedded NUL ends the text */
    char *labels = NULL;
    stts_error err = {0};
    if (tts_labels(g_synth, text, &labels, &err) == STTS_OK) free(labels);
    if (size <= 64) {
        int frames = 0;
        tts_synthesize(g_synth, text, stop_soon, &frames, NULL, &err);
    }
    free(text);
    return 0;
}
