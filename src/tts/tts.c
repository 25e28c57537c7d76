/* tts.c - the front door of the synthesis stage: parameters, choosing and
 * opening a backend, the output path every chunk takes (stop flag, user
 * callback), text clean-up shared by the backends, voice lookup and voice
 * listing. Chunks leave at the voice's native rate: rates are converted in
 * one place, the audio sink (src/audio), which alone knows the rate its
 * output needs and may take voices of several rates in one stream. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tts/tts_internal.h"

struct tts_synth {
    tts_opened o;
    tts_backend backend;
    const char *also_reads;  /* its backend's (tts_backend_desc) */
    char lang[32];           /* the NLLB code it was opened for */
};

struct tts_out {
    tts_chunk_fn cb;
    void *user;
    const atomic_int *stop;
    int by_callback;         /* the callback asked to stop */
};

void tts_default_params(tts_params *p) {
    memset(p, 0, sizeof *p);
    p->lang = "jpn_Jpan";
    p->backend = TTS_BACKEND_AUTO;
    p->speed = 1.0;
    p->builtin_dict = 1;
    p->low_latency = 1;
}

/* Every backend, in listing order (`stream-tts voices`). A new speech
 * engine is a new file exporting a tts_backend_desc and one line here. */
static const tts_backend_desc *const k_backends[] = {
    &tts_jtalk_backend,
    &tts_espeak_backend,
    &tts_command_backend,
};
#define N_BACKENDS (sizeof k_backends / sizeof k_backends[0])

static const tts_backend_desc *backend_desc(tts_backend b) {
    for (size_t i = 0; i < N_BACKENDS; i++)
        if (k_backends[i]->id == b) return k_backends[i];
    return NULL;
}

const char *tts_backend_label(tts_backend b) {
    const tts_backend_desc *d = backend_desc(b);
    return d ? d->name : "auto";
}

/* 1 when lang is one of the space-separated codes in langs (NULL: any). */
static int speaks(const char *langs, const char *lang) {
    if (!langs) return 1;
    size_t n = strlen(lang);
    for (const char *p = langs; *p;) {
        size_t k = strcspn(p, " ");
        if (k == n && strncmp(p, lang, n) == 0) return 1;
        p += k;
        while (*p == ' ') p++;
    }
    return 0;
}

/* ---- output path -------------------------------------------------------- */

int tts_out_should_stop(tts_out *o) {
    return o->by_callback || (o->stop && atomic_load(o->stop));
}

stts_status tts_out_cancelled(tts_out *o, stts_error *err) {
    return stts_error_set(err, STTS_ERR_CANCELLED, "synthesis stopped by %s",
                          o->by_callback ? "the chunk callback" : "the stop flag");
}

static int deliver(tts_out *o, const int16_t *pcm, size_t n) {
    if (n && o->cb && o->cb(o->user, pcm, n) != 0) o->by_callback = 1;
    return tts_out_should_stop(o);
}

int tts_out_emit(tts_out *o, const int16_t *pcm, size_t n) {
    if (tts_out_should_stop(o)) return 1;
    return deliver(o, pcm, n);
}

/* ---- text helpers ------------------------------------------------------- */

static int droppable(uint32_t cp) {
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0) || cp >= 0x10000 ||
           (cp >= 0xD800 && cp <= 0xDFFF) || (cp >= 0xE000 && cp <= 0xF8FF) ||
           (cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0x200B && cp <= 0x200F) ||
           (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x206F) || cp == 0xFEFF ||
           cp == 0xFFFC || cp == 0xFFFD;
}

char *tts_clean_text(const char *text, stts_error *err) {
    size_t n = strlen(text);
    char *out = malloc(n + 1);
    if (!out) { stts_error_set(err, STTS_ERR_NOMEM, "out of memory for %zu bytes of text", n); return NULL; }
    size_t w = 0;
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = stts_utf8_decode(s + i, n - i, &cp);
        if (k == 0) {
            free(out);
            stts_error_set(err, STTS_ERR_FORMAT, "text is not valid UTF-8 (byte %zu)", i);
            return NULL;
        }
        if (cp == '\n' || cp == '\t' || cp == '\r') {
            out[w++] = ' ';
        } else if (!droppable(cp)) {
            memcpy(out + w, s + i, k);
            w += k;
        } else if (cp >= 0x10000 && w && out[w - 1] != ' ') {
            out[w++] = ' ';  /* an emoji between words still separates them */
        }
        i += k;
    }
    out[w] = '\0';
    return out;
}

int tts_has_speakable(const char *text) {
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = stts_utf8_decode(s + i, n - i, &cp);
        if (k == 0) { i++; continue; }
        i += k;
        if ((cp >= '0' && cp <= '9') || (cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z')) return 1;
        if (cp < 0xC0 || cp == 0xD7 || cp == 0xF7) continue;                /* Latin-1 symbols */
        if (cp >= 0x2000 && cp <= 0x2BFF) continue;                         /* punctuation, arrows, shapes */
        if (cp >= 0x3000 && cp <= 0x3004) continue;                         /* CJK punctuation */
        if (cp >= 0x3008 && cp <= 0x3020) continue;
        if (cp == 0x30FB || cp == 0x30FC) continue;                         /* ・ ー alone */
        if (cp >= 0xFF01 && cp <= 0xFF0F) continue;                         /* full-width punctuation */
        if ((cp >= 0xFF1A && cp <= 0xFF20) || (cp >= 0xFF3B && cp <= 0xFF40) || (cp >= 0xFF5B && cp <= 0xFF65))
            continue;
        if (cp >= 0xFE10 && cp <= 0xFE6F) continue;
        return 1;
    }
    return 0;
}

static int is_mark(const char *p, size_t left, const char *const *marks) {
    for (size_t i = 0; marks[i]; i++) {
        size_t m = strlen(marks[i]);
        if (m <= left && memcmp(p, marks[i], m) == 0) return (int)m;
    }
    return 0;
}

size_t tts_next_piece(const char *text, size_t len, size_t max) {
    if (len <= max) return len;
    static const char *const sentence[] = {"\xE3\x80\x82", "\xEF\xBC\x81", "\xEF\xBC\x9F", ". ", "! ", "? ", NULL};
    static const char *const clause[] = {"\xE3\x80\x81", "\xEF\xBC\x8C", ", ", "; ", ": ", NULL};
    size_t best_s = 0, best_c = 0, best_sp = 0;
    for (size_t i = 0; i < max;) {
        int m;
        if ((m = is_mark(text + i, len - i, sentence)) && i + (size_t)m <= max) best_s = i + (size_t)m;
        else if ((m = is_mark(text + i, len - i, clause)) && i + (size_t)m <= max) best_c = i + (size_t)m;
        else if (text[i] == ' ') best_sp = i + 1;
        i += m ? (size_t)m : 1;
    }
    size_t cut = best_s ? best_s : best_c ? best_c : best_sp;
    if (cut == 0) {
        cut = max;  /* back off to a character boundary */
        while (cut > 0 && ((unsigned char)text[cut] & 0xC0) == 0x80) cut--;
        if (cut == 0) cut = max;
    }
    return cut;
}

/* ---- voices ------------------------------------------------------------- */

const char *tts_voice_dirs(char *buf, size_t size) {
    size_t w = 0;
    buf[0] = '\0';
#define ADD(...) do { if (w < size) { int n_ = snprintf(buf + w, size - w, "%s", w ? ":" : ""); \
        if (n_ > 0) w += (size_t)n_; } if (w < size) { int n_ = snprintf(buf + w, size - w, __VA_ARGS__); \
        if (n_ > 0) w += (size_t)n_; } } while (0)
    const char *e = getenv("STTS_VOICE_DIR");
    if (e && *e) ADD("%s", e);
    const char *x = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    if (x && *x) ADD("%s/stream-tts/voices", x);
    else if (home && *home) ADD("%s/.local/share/stream-tts/voices", home);
    char inst[1024];
    if (stts_data_dir(inst, sizeof inst, NULL) == STTS_OK) ADD("%s/voices", inst); /* an installed copy's own */
    ADD("/usr/local/share/stream-tts/voices");
    ADD("/usr/share/stream-tts/voices");
#ifdef STTS_DEV_VOICE_DIR
    ADD("%s", STTS_DEV_VOICE_DIR);
#endif
#undef ADD
    if (w >= size) buf[size - 1] = '\0';
    return buf;
}

stts_status tts_list_voices(tts_backend which, tts_voice_fn fn, void *user, stts_error *err) {
    int stopped = 0;
    stts_status st = STTS_OK;
    for (size_t i = 0; i < N_BACKENDS && st == STTS_OK && !stopped; i++)
        if ((which == TTS_BACKEND_AUTO || which == k_backends[i]->id) && k_backends[i]->list)
            st = k_backends[i]->list(fn, user, &stopped, err);
    return st;
}

/* ---- open / synthesize -------------------------------------------------- */

static stts_status check_params(const tts_params *p, stts_error *err) {
    if (!p->lang || !*p->lang) return stts_error_set(err, STTS_ERR_INVALID_ARG, "no language given (e.g. jpn_Jpan)");
    if (!(p->speed > 0.25 && p->speed <= 4.0))
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "speed %g out of range (0.25, 4]", p->speed);
    if (!(p->pitch >= -24.0 && p->pitch <= 24.0))
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "pitch shift %g semitones out of range [-24, 24]", p->pitch);
    if (!(p->volume_db >= -40.0 && p->volume_db <= 20.0))
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "volume %g dB out of range [-40, 20]", p->volume_db);
    return STTS_OK;
}

stts_status tts_open(const tts_params *p, tts_synth **out, stts_error *err) {
    *out = NULL;
    if (!p) return stts_error_set(err, STTS_ERR_INVALID_ARG, "tts_open: no parameters");
    stts_status st = check_params(p, err);
    if (st != STTS_OK) return st;
    const tts_backend_desc *d = NULL;
    if (p->backend == TTS_BACKEND_AUTO) {
        int best = 0;
        for (size_t i = 0; i < N_BACKENDS; i++) {
            int c = k_backends[i]->probe ? k_backends[i]->probe(p) : 0;
            if (c > best) { best = c; d = k_backends[i]; }
        }
        if (!d) return stts_error_set(err, STTS_ERR_UNSUPPORTED, "no speech backend speaks %s", p->lang);
    } else if (!(d = backend_desc(p->backend))) {
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "unknown TTS backend %d", (int)p->backend);
    }
    if (!speaks(d->langs, p->lang))
        return stts_error_set(err, STTS_ERR_UNSUPPORTED, "%s speaks only %s, not %s", d->title, d->langs, p->lang);
    tts_synth *s = calloc(1, sizeof *s);
    if (!s) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    s->backend = d->id;
    s->also_reads = d->also_reads;
    snprintf(s->lang, sizeof s->lang, "%s", p->lang ? p->lang : "");
    st = d->open(p, &s->o, err);
    if (st != STTS_OK) { free(s); return st; }
    *out = s;
    return STTS_OK;
}

void tts_close(tts_synth *s) {
    if (!s) return;
    if (s->o.ops) s->o.ops->close(s->o.impl);
    free(s);
}

int tts_sample_rate(const tts_synth *s) { return s->o.rate; }

int tts_reads_lang(const tts_synth *s, const char *nllb_code) {
    const char *us = nllb_code ? strchr(nllb_code, '_') : NULL;
    if (!s || !us || !s->also_reads) return 1;   /* nothing known: trusted */
    const char *own = strchr(s->lang, '_');
    if (own && strcmp(own, us) == 0) return 1;
    return speaks(s->also_reads, us + 1);
}
tts_backend tts_backend_of(const tts_synth *s) { return s->backend; }
const char *tts_voice_name(const tts_synth *s) { return s->o.voice; }

stts_status tts_synthesize(tts_synth *s, const char *text, tts_chunk_fn cb, void *user,
                           const atomic_int *stop, stts_error *err) {
    if (!s || !text) return stts_error_set(err, STTS_ERR_INVALID_ARG, "tts_synthesize: no synthesizer or no text");
    char *clean = tts_clean_text(text, err);
    if (!clean) return err ? err->code : STTS_ERR_FORMAT;
    if (!tts_has_speakable(clean)) {
        free(clean);
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "nothing to say in \"%.60s\" (empty, punctuation or symbols only)",
                              text);
    }
    tts_out o;
    memset(&o, 0, sizeof o);
    o.cb = cb;
    o.user = user;
    o.stop = stop;
    stts_status st = s->o.ops->synthesize(s->o.impl, clean, &o, err);
    free(clean);
    return st;
}

stts_status tts_set_speed(tts_synth *s, double speed, stts_error *err) {
    if (!s || !(speed >= 0.25 && speed <= 4.0))
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "speed %g out of range [0.25, 4]", speed);
    if (!s->o.ops->set_speed)
        return stts_error_set(err, STTS_ERR_UNSUPPORTED, "the %s voice's speed is fixed when it is opened",
                              tts_backend_label(s->backend));
    return s->o.ops->set_speed(s->o.impl, speed, err);
}

stts_status tts_labels(tts_synth *s, const char *text, char **out, stts_error *err) {
    *out = NULL;
    if (!s || !text) return stts_error_set(err, STTS_ERR_INVALID_ARG, "tts_labels: no synthesizer or no text");
    if (!s->o.ops->labels)
        return stts_error_set(err, STTS_ERR_UNSUPPORTED, "%s has no label front end", tts_backend_label(s->backend));
    char *clean = tts_clean_text(text, err);
    if (!clean) return err ? err->code : STTS_ERR_FORMAT;
    stts_status st = s->o.ops->labels(s->o.impl, clean, out, err);
    free(clean);
    return st;
}
