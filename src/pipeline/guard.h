/* guard.h - decisions the translate stage makes about text: which writing
 * system a sentence is in (so Japanese that Claude already wrote in Japanese
 * is not translated again) and whether a translation is sane enough to speak
 * (empty, looping, far too long, or still in the source script are not). */
#ifndef PIPELINE_GUARD_H
#define PIPELINE_GUARD_H

#include <stddef.h>
#include <stdint.h>

#include "nllb.h"

/* Fraction (0..1) of the letters of text that belong to the script of the
 * NLLB code (its suffix: Latn, Jpan, Hang, Hans, Cyrl, ...); -1 when the text
 * has no letters or the script is not one this module knows. Digits,
 * punctuation and symbols are not letters. */
double guard_script_fraction(const char *text, const char *nllb_code);

/* 1 when the sentence is already mostly (>= 50 % of its letters) in the
 * target's script and that script differs from the source's. Letters of
 * code in it (paths, calls, flags, camelCase identifiers) do not count;
 * ideographs, kana and hangul count double. */
int guard_already_in_target(const char *text, const char *src_lang, const char *tgt_lang);

/* The language a sentence is written in when its script says so and that
 * is not the source's script: a Chinese, Korean or Russian reply to an
 * English-source pipeline is tokenized as that language, not as English.
 * Kana make Japanese; Han without kana with characters Japanese does not
 * use make Chinese (zho_Hans, or zho_Hant when its traditional forms
 * outnumber the simplified); other scripts their most spoken language
 * (Hang kor_Hang, Cyrl rus_Cyrl, Arab arb_Arab, ...). NULL when the
 * sentence is mostly Latin, mixed, in the source's script, or a few Han
 * characters that could be either. */
const char *guard_source_lang(const char *text, const char *src_lang);

/* Checks a translation. ids: the decoder sequence (as nllb_result), hit_max:
 * decoding stopped at the length limit without </s>. Returns 0 when it is
 * fine, else 1 with a short reason in why. */
int guard_check(const char *source, const char *output, const int32_t *ids, int n_ids, int hit_max,
                const char *src_lang, const char *tgt_lang, char *why, size_t why_cap);

/* 1 when the decoder sequence ids of model m stopped at the length limit:
 * it does not end with one of the model's eos ids (nllb_model_is_eos; not
 * a fixed 2: a model's config may name other ids, or a list). */
int guard_hit_max(const nllb_model *m, const int32_t *ids, int n_ids);

#endif
