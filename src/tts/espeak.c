/* espeak.c - the espeak-ng backend through libespeak-ng, in synchronous
 * mode: espeak_Synth() calls our callback with each buffer of samples as it
 * makes them (every ESPEAK_BUF_MS ms of audio), and the callback's return
 * value aborts synthesis. libespeak-ng keeps its state in globals, so one
 * espeak-ng handle per process (tts_open refuses a second). The table maps
 * NLLB-200 language codes to espeak-ng voices; a language missing from it
 * fails at open time. */
#define _POSIX_C_SOURCE 200809L
#ifdef STTS_HAVE_ESPEAK
#include <espeak-ng/speak_lib.h>
#endif
#include <math.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tts/tts_internal.h"

#define ESPEAK_BUF_MS 20

static const struct { const char *nllb, *voice; } k_table[] = {
    {"afr_Latn", "af"}, {"amh_Ethi", "am"}, {"arb_Arab", "ar"}, {"ars_Arab", "ar"}, {"ary_Arab", "ar"},
    {"arz_Arab", "ar"}, {"acm_Arab", "ar"}, {"apc_Arab", "ar"}, {"ajp_Arab", "ar"}, {"aeb_Arab", "ar"},
    {"acq_Arab", "ar"}, {"asm_Beng", "as"}, {"azj_Latn", "az"}, {"bak_Cyrl", "ba"}, {"bel_Cyrl", "be"},
    {"bul_Cyrl", "bg"}, {"ben_Beng", "bn"}, {"bos_Latn", "bs"}, {"cat_Latn", "ca"}, {"ces_Latn", "cs"},
    {"cym_Latn", "cy"}, {"dan_Latn", "da"}, {"deu_Latn", "de"}, {"ell_Grek", "el"}, {"eng_Latn", "en-us"},
    {"epo_Latn", "eo"}, {"spa_Latn", "es"}, {"est_Latn", "et"}, {"eus_Latn", "eu"}, {"pes_Arab", "fa"},
    {"prs_Arab", "fa"}, {"fin_Latn", "fi"}, {"fra_Latn", "fr"}, {"gle_Latn", "ga"}, {"gla_Latn", "gd"},
    {"grn_Latn", "gn"}, {"guj_Gujr", "gu"}, {"heb_Hebr", "he"}, {"hin_Deva", "hi"}, {"hrv_Latn", "hr"},
    {"hat_Latn", "ht"}, {"hun_Latn", "hu"}, {"hye_Armn", "hy"}, {"ind_Latn", "id"}, {"isl_Latn", "is"},
    {"ita_Latn", "it"}, {"kat_Geor", "ka"}, {"kaz_Cyrl", "kk"}, {"kan_Knda", "kn"}, {"kor_Hang", "ko"},
    {"kmr_Latn", "ku"}, {"kir_Cyrl", "ky"}, {"ltz_Latn", "lb"}, {"lit_Latn", "lt"}, {"ltg_Latn", "ltg"},
    {"lvs_Latn", "lv"}, {"mri_Latn", "mi"}, {"mkd_Cyrl", "mk"}, {"mal_Mlym", "ml"}, {"mar_Deva", "mr"},
    {"zsm_Latn", "ms"}, {"mlt_Latn", "mt"}, {"mya_Mymr", "my"}, {"nob_Latn", "nb"}, {"nno_Latn", "nb"},
    {"npi_Deva", "ne"}, {"nld_Latn", "nl"}, {"gaz_Latn", "om"}, {"ory_Orya", "or"}, {"pan_Guru", "pa"},
    {"pap_Latn", "pap"}, {"pol_Latn", "pl"}, {"por_Latn", "pt"}, {"quy_Latn", "qu"}, {"ron_Latn", "ro"},
    {"rus_Cyrl", "ru"}, {"snd_Arab", "sd"}, {"shn_Mymr", "shn"}, {"sin_Sinh", "si"}, {"slk_Latn", "sk"},
    {"slv_Latn", "sl"}, {"als_Latn", "sq"}, {"srp_Cyrl", "sr"}, {"swe_Latn", "sv"}, {"swh_Latn", "sw"},
    {"tam_Taml", "ta"}, {"tel_Telu", "te"}, {"tha_Thai", "th"}, {"tuk_Latn", "tk"}, {"tsn_Latn", "tn"},
    {"tur_Latn", "tr"}, {"tat_Cyrl", "tt"}, {"uig_Arab", "ug"}, {"ukr_Cyrl", "uk"}, {"urd_Arab", "ur"},
    {"uzn_Latn", "uz"}, {"vie_Latn", "vi"}, {"yue_Hant", "yue"}, {"zho_Hans", "cmn"}, {"zho_Hant", "cmn"},
    {"jpn_Jpan", "ja"},
};

const char *tts_espeak_voice_for(const char *nllb) {
    if (!nllb) return NULL;
    for (size_t i = 0; i < sizeof k_table / sizeof k_table[0]; i++)
        if (strcmp(k_table[i].nllb, nllb) == 0) return k_table[i].voice;
    return NULL;
}

#ifdef STTS_HAVE_ESPEAK

static atomic_int g_open = 0;   /* one espeak handle per process */
static int g_initialized = 0;   /* espeak_Initialize done (kept until exit) */
static int g_rate = 0;

typedef struct {
    int dummy;
} espeak_impl;

/* The output of the espeak_Synth call in progress. Synchronous mode runs
 * the callback inside espeak_Synth on the calling thread, and only one
 * handle exists, so a global is exact (events do not all carry user_data:
 * audio often comes with only the list terminator). */
static tts_out *g_out;

static int synth_cb(short *wav, int n, espeak_EVENT *ev) {
    (void)ev;
    tts_out *o = g_out;
    if (!o) return 0;
    if (wav && n > 0) return tts_out_emit(o, wav, (size_t)n) ? 1 : 0;
    return tts_out_should_stop(o) ? 1 : 0;
}

static stts_status espeak_synthesize(void *impl, const char *text, tts_out *o, stts_error *err) {
    (void)impl;
    /* identifiers as words: useState -> "use State" (tts_words) */
    size_t tl = strlen(text);
    char *words = malloc(TTS_WORDS_CAP(tl));
    if (!words) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    size_t wl = tts_words(text, tl, 0, NULL, NULL, words);
    g_out = o;
    espeak_ERROR e = espeak_Synth(words, wl + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, NULL, NULL);
    free(words);
    g_out = NULL;
    if (tts_out_should_stop(o)) return tts_out_cancelled(o, err);
    if (e != EE_OK) return stts_error_set(err, STTS_ERR_INTERNAL, "espeak-ng failed to synthesize (error %d)", (int)e);
    return STTS_OK;
}

static void espeak_close(void *impl) {
    free(impl);
    atomic_store(&g_open, 0);
}

static stts_status espeak_set_speed(void *impl, double speed, stts_error *err) {
    (void)impl; (void)err;
    int rate = (int)lround(175.0 * speed);
    espeak_SetParameter(espeakRATE, rate < 80 ? 80 : rate > 450 ? 450 : rate, 0);
    return STTS_OK;
}

static const tts_ops espeak_ops = {espeak_synthesize, NULL, espeak_close, espeak_set_speed};

static stts_status espeak_open(const tts_params *p, tts_opened *o, stts_error *err) {
    const char *voice = p->voice && *p->voice ? p->voice : tts_espeak_voice_for(p->lang);
    if (!voice)
        return stts_error_set(err, STTS_ERR_UNSUPPORTED,
                              "no voice for language %s: espeak-ng has none in stream-tts's table "
                              "(see `stream-tts voices`); use --tts-command with your own TTS", p->lang);
    int expected = 0;
    if (!atomic_compare_exchange_strong(&g_open, &expected, 1))
        return stts_error_set(err, STTS_ERR_UNSUPPORTED,
                              "an espeak-ng synthesizer is already open in this process (libespeak-ng is global)");
    if (!g_initialized) {
        g_rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, ESPEAK_BUF_MS, NULL, 0);
        if (g_rate <= 0) {
            atomic_store(&g_open, 0);
            return stts_error_set(err, STTS_ERR_NOT_FOUND,
                                  "espeak-ng could not start: its data is missing (install espeak-ng-data)");
        }
        g_initialized = 1;
        espeak_SetSynthCallback(synth_cb);
    }
    if (espeak_SetVoiceByName(voice) != EE_OK) {
        atomic_store(&g_open, 0);
        /* a voice the user named (--voice): a misspelling, most likely, not a
         * missing package; the table's own voice missing: the package */
        return stts_error_set(err, STTS_ERR_NOT_FOUND,
                              p->voice && *p->voice
                                  ? "espeak-ng has no voice '%s' (for %s): `stream-tts voices --espeak` lists them; "
                                    "without --voice the language's default voice is used"
                                  : "espeak-ng has no voice '%s' for %s (install espeak-ng-data)",
                              voice, p->lang);
    }
    /* espeak's units: 175 words/min normal, pitch 0-100 (50 normal, about
     * 4 per semitone over the useful range), volume 0-200 (100 normal). */
    int rate = (int)lround(175.0 * p->speed);
    int pitch = (int)lround(50.0 + 4.0 * p->pitch);
    int vol = (int)lround(100.0 * pow(10.0, p->volume_db / 20.0));
    espeak_SetParameter(espeakRATE, rate < 80 ? 80 : rate > 450 ? 450 : rate, 0);
    espeak_SetParameter(espeakPITCH, pitch < 0 ? 0 : pitch > 100 ? 100 : pitch, 0);
    espeak_SetParameter(espeakVOLUME, vol < 0 ? 0 : vol > 200 ? 200 : vol, 0);
    espeak_SetParameter(espeakPUNCTUATION, espeakPUNCT_NONE, 0);
    espeak_impl *impl = calloc(1, sizeof *impl);
    if (!impl) { atomic_store(&g_open, 0); return stts_error_set(err, STTS_ERR_NOMEM, "out of memory"); }
    o->ops = &espeak_ops;
    o->impl = impl;
    o->rate = g_rate;
    snprintf(o->voice, sizeof o->voice, "espeak-ng:%s", voice);
    return STTS_OK;
}

#else
/* Built with -DSTTS_ESPEAK=OFF: no libespeak-ng in the program (its GPL
 * does not extend to the binary); Japanese and the command backend remain. */
static stts_status espeak_open(const tts_params *p, tts_opened *o, stts_error *err) {
    (void)o;
    return stts_error_set(err, STTS_ERR_UNSUPPORTED,
                          "this stream-tts was built without espeak-ng (-DSTTS_ESPEAK=OFF): %s needs it; speak "
                          "Japanese (jpn_Jpan, Open JTalk) or use --tts-command with your own TTS", p->lang);
}
#endif

static stts_status espeak_list(tts_voice_fn fn, void *user, int *stopped, stts_error *err) {
    (void)err;
#ifndef STTS_HAVE_ESPEAK
    (void)fn, (void)user, (void)stopped;
    return STTS_OK;   /* no espeak-ng voices in this build */
#endif
    for (size_t i = 0; i < sizeof k_table / sizeof k_table[0] && !*stopped; i++) {
        if (strcmp(k_table[i].nllb, "jpn_Jpan") == 0) continue;  /* Open JTalk speaks Japanese */
        tts_voice_info v = {TTS_BACKEND_ESPEAK, k_table[i].nllb, k_table[i].voice, "espeak-ng"};
        if (fn(user, &v)) *stopped = 1;
    }
    return STTS_OK;
}

/* Anything Open JTalk does not claim: the fallback of TTS_BACKEND_AUTO. */
static int espeak_probe(const tts_params *p) {
    (void)p;
    return 1;
}

/* Every espeak-ng voice reads Latin letters, and switches by itself to its
 * Korean and Hindi voices for Hangul and Devanagari; other scripts it
 * spells character by character ("Japanese letter, Japanese letter"). */
const tts_backend_desc tts_espeak_backend = {TTS_BACKEND_ESPEAK, "espeak-ng", "espeak-ng", NULL,
                                             "Latn Hang Deva", espeak_probe, espeak_open, espeak_list};
