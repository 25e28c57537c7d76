/* tokenizer.h - NLLB's tokenizer: SentencePiece pieces mapped to fairseq ids,
 * plus the 202 language codes. Internal to the engine; include/nllb.h exposes
 * tokenize/detokenize on a loaded model.
 *
 * Id layout (HF NllbTokenizer, verified against the real vocabulary):
 *   0 <s>, 1 <pad>, 2 </s>, 3 <unk>; spm piece k (k >= 3) -> k + 1, spm unk -> 3;
 *   language code i (vocabulary order of shared/nllb special_tokens_map) ->
 *   spm_size + 1 + i (eng_Latn = 256047, jpn_Jpan = 256079 with the real model);
 *   <mask> -> spm_size + 1 + 202. config.vocab_size may be larger (padding).
 * Seam: src/mt/io/ implements it over libsentencepiece (a thin C++ shim). */
#ifndef MT_TOKENIZER_H
#define MT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "stts_common.h"

#define NLLB_NUM_LANGS 202
#define NLLB_ID_BOS 0
#define NLLB_ID_PAD 1
#define NLLB_ID_EOS 2
#define NLLB_ID_UNK 3

typedef struct mt_tokenizer mt_tokenizer;

stts_status mt_tokenizer_load(const char *spm_model_path, mt_tokenizer **out, stts_error *err);
void mt_tokenizer_free(mt_tokenizer *tok);

int mt_tokenizer_spm_size(const mt_tokenizer *tok);
int mt_tokenizer_num_tokens(const mt_tokenizer *tok); /* spm_size + 1 + 202 + 1 */
/* -1 when code is not one of the 202 NLLB codes. */
int mt_tokenizer_lang_id(const mt_tokenizer *tok, const char *code);
/* The code of language index i (0..201), in vocabulary order. */
const char *mt_lang_code(int i);

/* Text to ids, without language code or </s>. *ids is malloc'ed (caller frees). */
stts_status mt_tokenizer_encode(const mt_tokenizer *tok, const char *text, int32_t **ids, size_t *n,
                                stts_error *err);
/* Ids to text; special ids and language codes are skipped, as HF's
 * decode(skip_special_tokens=True). *text is malloc'ed (caller frees). */
stts_status mt_tokenizer_decode(const mt_tokenizer *tok, const int32_t *ids, size_t n, char **text,
                                stts_error *err);

/* Added by src/mt/io. The id of <mask> (spm_size + 1 + 202). */
int mt_tokenizer_mask_id(const mt_tokenizer *tok);

/* Thread safety: a loaded tokenizer is immutable; encode, decode and the
 * lookups may be called from any number of threads at once. */

#endif
