/* lang_codes.h - the generated table of NLLB-200 language codes
 * (lang_codes.c, made by scripts/gen-lang-codes). Internal to src/mt/io. */
#ifndef MT_IO_LANG_CODES_H
#define MT_IO_LANG_CODES_H

#define MT_NUM_LANG_CODES 202

/* Codes in vocabulary order: code i has token id spm_size + 1 + i. */
extern const char *const mt_lang_codes[MT_NUM_LANG_CODES];
/* Indices into mt_lang_codes sorted by strcmp of the code (binary search). */
extern const unsigned char mt_lang_codes_sorted[MT_NUM_LANG_CODES];

/* Index 0..201 of code, or -1 (plain C, no tokenizer needed). */
int mt_lang_index(const char *code);

#endif
