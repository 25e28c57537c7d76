/* tokenizer.cc - the engine's only C++: a thin extern "C" shim over
 * libsentencepiece (Debian's libsentencepiece-dev, the canonical
 * implementation) that applies NLLB's fairseq id layout (see tokenizer.h):
 * spm id 0 (<unk>) -> 3, spm id k -> k + 1, language code i ->
 * spm_size + 1 + i, <mask> after them. Every C++ exception is caught here
 * and turned into an stts_error; nothing propagates into C. */
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include <sentencepiece_processor.h>

extern "C" {
#include "io/lang_codes.h"
#include "tokenizer.h"
}

struct mt_tokenizer {
    sentencepiece::SentencePieceProcessor sp;
    int spm_size = 0;
};

/* Above this, ids would not fit the layout's int32 arithmetic comfortably;
 * the real model has 256000 pieces. */
static const int kMaxPieces = 1 << 24;

extern "C" stts_status mt_tokenizer_load(const char *path, mt_tokenizer **out, stts_error *err) {
    if (!path || !out) return stts_error_set(err, STTS_ERR_INVALID_ARG, "mt_tokenizer_load: NULL argument");
    *out = nullptr;
    struct stat st;
    if (stat(path, &st) != 0)
        return stts_error_set(err, STTS_ERR_NOT_FOUND,
                              "%s: SentencePiece model not found (a model directory needs sentencepiece.bpe.model; "
                              "scripts/fetch-model downloads it)",
                              path);
    if (!S_ISREG(st.st_mode))
        return stts_error_set(err, STTS_ERR_FORMAT, "%s: not a regular file (expected a SentencePiece model)", path);
    /* An empty file was "Internal: unk is not defined." and a cut one a
     * protobuf call at a library source line: what happened (an interrupted
     * download, most likely) and the fix come first, the library's words last. */
    if (st.st_size == 0)
        return stts_error_set(err, STTS_ERR_FORMAT,
                              "%s: the file is empty (an interrupted download?); scripts/fetch-model downloads it "
                              "again",
                              path);
    try {
        mt_tokenizer *tok = new mt_tokenizer();
        sentencepiece::util::Status s = tok->sp.Load(path);
        if (!s.ok()) {
            std::string why = s.ToString();
            delete tok;
            return stts_error_set(err, STTS_ERR_FORMAT,
                                  "%s: not a valid SentencePiece model: truncated or corrupt (an interrupted "
                                  "download?); scripts/fetch-model downloads it again (SentencePiece: %.200s)",
                                  path, why.c_str());
        }
        int n = tok->sp.GetPieceSize();
        if (n < 3 || n > kMaxPieces) {
            delete tok;
            return stts_error_set(err, STTS_ERR_FORMAT, "%s: SentencePiece model has %d pieces (allowed 3..%d)", path,
                                  n, kMaxPieces);
        }
        tok->spm_size = n;
        *out = tok;
        return STTS_OK;
    } catch (const std::bad_alloc &) {
        return stts_error_set(err, STTS_ERR_NOMEM, "%s: out of memory loading the SentencePiece model", path);
    } catch (const std::exception &e) {
        return stts_error_set(err, STTS_ERR_INTERNAL, "%s: SentencePiece failed: %.300s", path, e.what());
    } catch (...) {
        return stts_error_set(err, STTS_ERR_INTERNAL, "%s: SentencePiece failed with an unknown exception", path);
    }
}

extern "C" void mt_tokenizer_free(mt_tokenizer *tok) { delete tok; }

extern "C" int mt_tokenizer_spm_size(const mt_tokenizer *tok) { return tok ? tok->spm_size : 0; }

extern "C" int mt_tokenizer_num_tokens(const mt_tokenizer *tok) {
    return tok ? tok->spm_size + 1 + NLLB_NUM_LANGS + 1 : 0;
}

extern "C" int mt_tokenizer_lang_id(const mt_tokenizer *tok, const char *code) {
    if (!tok || !code) return -1;
    int i = mt_lang_index(code);
    return i < 0 ? -1 : tok->spm_size + 1 + i;
}

extern "C" int mt_tokenizer_mask_id(const mt_tokenizer *tok) {
    return tok ? tok->spm_size + 1 + NLLB_NUM_LANGS : -1;
}

extern "C" const char *mt_lang_code(int i) {
    return i >= 0 && i < MT_NUM_LANG_CODES ? mt_lang_codes[i] : nullptr;
}

extern "C" stts_status mt_tokenizer_encode(const mt_tokenizer *tok, const char *text, int32_t **ids, size_t *n,
                                           stts_error *err) {
    if (!tok || !text || !ids || !n)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "mt_tokenizer_encode: NULL argument");
    *ids = nullptr;
    *n = 0;
    try {
        std::vector<int> v;
        sentencepiece::util::Status s = tok->sp.Encode(text, &v);
        if (!s.ok())
            return stts_error_set(err, STTS_ERR_INTERNAL, "SentencePiece encode failed: %.300s",
                                  s.ToString().c_str());
        int32_t *out = static_cast<int32_t *>(std::malloc((v.size() ? v.size() : 1) * sizeof(int32_t)));
        if (!out) return stts_error_set(err, STTS_ERR_NOMEM, "mt_tokenizer_encode: out of memory");
        /* HF NllbTokenizer._convert_token_to_id: spm id 0 is <unk>, the rest shift by one. */
        for (size_t i = 0; i < v.size(); i++) out[i] = v[i] == 0 ? NLLB_ID_UNK : v[i] + 1;
        *ids = out;
        *n = v.size();
        return STTS_OK;
    } catch (const std::bad_alloc &) {
        return stts_error_set(err, STTS_ERR_NOMEM, "mt_tokenizer_encode: out of memory");
    } catch (const std::exception &e) {
        return stts_error_set(err, STTS_ERR_INTERNAL, "SentencePiece encode failed: %.300s", e.what());
    } catch (...) {
        return stts_error_set(err, STTS_ERR_INTERNAL, "SentencePiece encode failed with an unknown exception");
    }
}

extern "C" stts_status mt_tokenizer_decode(const mt_tokenizer *tok, const int32_t *ids, size_t n, char **text,
                                           stts_error *err) {
    if (!tok || (!ids && n) || !text)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "mt_tokenizer_decode: NULL argument");
    *text = nullptr;
    try {
        std::vector<int> v;
        v.reserve(n);
        for (size_t i = 0; i < n; i++) {
            int32_t id = ids[i];
            if (id < 0)
                return stts_error_set(err, STTS_ERR_INVALID_ARG, "mt_tokenizer_decode: negative token id %d at %zu",
                                      (int)id, i);
            /* Skipped as HF decode(skip_special_tokens=True): <s> <pad> </s>
             * <unk> (0..3), language codes and <mask> (> spm_size), and ids of
             * the vocabulary's padding rows, which name no token. */
            if (id <= NLLB_ID_UNK || id > tok->spm_size) continue;
            v.push_back(id - 1);
        }
        std::string out;
        sentencepiece::util::Status s = tok->sp.Decode(v, &out);
        if (!s.ok())
            return stts_error_set(err, STTS_ERR_INTERNAL, "SentencePiece decode failed: %.300s",
                                  s.ToString().c_str());
        char *p = static_cast<char *>(std::malloc(out.size() + 1));
        if (!p) return stts_error_set(err, STTS_ERR_NOMEM, "mt_tokenizer_decode: out of memory");
        std::memcpy(p, out.data(), out.size());
        p[out.size()] = '\0';
        *text = p;
        return STTS_OK;
    } catch (const std::bad_alloc &) {
        return stts_error_set(err, STTS_ERR_NOMEM, "mt_tokenizer_decode: out of memory");
    } catch (const std::exception &e) {
        return stts_error_set(err, STTS_ERR_INTERNAL, "SentencePiece decode failed: %.300s", e.what());
    } catch (...) {
        return stts_error_set(err, STTS_ERR_INTERNAL, "SentencePiece decode failed with an unknown exception");
    }
}
