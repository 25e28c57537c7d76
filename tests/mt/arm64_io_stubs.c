/* arm64_io_stubs.c - the engine core's I/O seam (checkpoint.h, config.h,
 * tokenizer.h) stubbed for the cross-compiled arm64 test build
 * (scripts/test-arm64), which builds only the core sources: no jansson,
 * sentencepiece or zlib for arm64 are needed. Random in-memory models and
 * the backend need none of these; every entry point says what is missing. */
#include <stddef.h>

#include "checkpoint.h"
#include "config.h"
#include "io/lang_codes.h"
#include "tokenizer.h"

#define NO_IO(what) stts_error_set(err, STTS_ERR_UNSUPPORTED, "%s: not in the arm64 engine-core test build", what)

stts_status mt_checkpoint_open(const char *path, mt_checkpoint **out, stts_error *err) {
    (void)path;
    *out = NULL;
    return NO_IO("checkpoints");
}
void mt_checkpoint_close(mt_checkpoint *ck) { (void)ck; }
size_t mt_checkpoint_count(const mt_checkpoint *ck) { return (void)ck, 0; }
const mt_tensor *mt_checkpoint_at(const mt_checkpoint *ck, size_t i) { return (void)ck, (void)i, NULL; }
const mt_tensor *mt_checkpoint_find(const mt_checkpoint *ck, const char *name) { return (void)ck, (void)name, NULL; }
const char *mt_checkpoint_path(const mt_checkpoint *ck) { return (void)ck, "(none)"; }
const char *mt_checkpoint_weights(const mt_checkpoint *ck) { return (void)ck, NULL; }
int mt_checkpoint_source_dtype(const mt_checkpoint *ck) { return (void)ck, -1; }
const char *mt_dtype_name(mt_dtype d) { return (void)d, "?"; }
size_t mt_dtype_size(mt_dtype d) {
    return d == MT_DTYPE_F32 ? 4 : d == MT_DTYPE_F16 || d == MT_DTYPE_BF16 ? 2 : d == MT_DTYPE_I64 ? 8 : d == MT_DTYPE_I8 ? 1 : 0;
}
stts_status mt_tensor_to_f32(const mt_tensor *t, float *dst, size_t n, stts_error *err) {
    (void)t, (void)dst, (void)n;
    return NO_IO("tensor conversion");
}
stts_status mt_config_load_dir(const char *dir, mt_config *out, stts_error *err) {
    (void)dir, (void)out;
    return NO_IO("config.json");
}
stts_status mt_tokenizer_load(const char *path, mt_tokenizer **out, stts_error *err) {
    (void)path;
    *out = NULL;
    return NO_IO("SentencePiece");
}
void mt_tokenizer_free(mt_tokenizer *tok) { (void)tok; }
int mt_tokenizer_spm_size(const mt_tokenizer *tok) { return (void)tok, 0; }
int mt_tokenizer_num_tokens(const mt_tokenizer *tok) { return (void)tok, 0; }
int mt_tokenizer_lang_id(const mt_tokenizer *tok, const char *code) { return (void)tok, (void)code, -1; }
const char *mt_lang_code(int i) { return i >= 0 && i < MT_NUM_LANG_CODES ? mt_lang_codes[i] : NULL; }
stts_status mt_tokenizer_encode(const mt_tokenizer *tok, const char *text, int32_t **ids, size_t *n, stts_error *err) {
    (void)tok, (void)text, (void)ids, (void)n;
    return NO_IO("SentencePiece");
}
stts_status mt_tokenizer_decode(const mt_tokenizer *tok, const int32_t *ids, size_t n, char **text, stts_error *err) {
    (void)tok, (void)ids, (void)n, (void)text;
    return NO_IO("SentencePiece");
}
