/* shortlist.c - target-vocabulary shortlists of the LM head. A shortlist is
 * a sorted set of token ids whose LM-head rows are gathered once into their
 * own contiguous weight (backend weight_gather) and cached in the model, per
 * target language (auto) or per id set (a caller's list), so a decode step
 * reads only those rows. Every call adds the ids of its source sentences
 * that the cached set lacks as a small extra block (gathered per call, a few
 * rows; never per step).
 *
 * auto for a target language: the special ids, every language id and
 * <mask>, and every SentencePiece piece whose characters all belong to the
 * target's script(s), to Latin (names and identifiers are copied through) or
 * to no script (digits, punctuation, symbols, spaces). A piece that does not
 * decode to valid UTF-8 is kept. A target whose script code (the part after
 * '_') is not in the table below, or a model without a tokenizer, gets the
 * full vocabulary (no shortlist). */
#include <stdlib.h>
#include <string.h>

#include "model.h"

enum {
    SC_COMMON = 0, /* digits, punctuation, symbols, marks: allowed for every target */
    SC_LATIN = 1u << 0,
    SC_GREEK = 1u << 1,
    SC_CYRL = 1u << 2,
    SC_ARMN = 1u << 3,
    SC_HEBR = 1u << 4,
    SC_ARAB = 1u << 5,
    SC_DEVA = 1u << 6,
    SC_BENG = 1u << 7,
    SC_GURU = 1u << 8,
    SC_GUJR = 1u << 9,
    SC_ORYA = 1u << 10,
    SC_TAML = 1u << 11,
    SC_TELU = 1u << 12,
    SC_KNDA = 1u << 13,
    SC_MLYM = 1u << 14,
    SC_SINH = 1u << 15,
    SC_THAI = 1u << 16,
    SC_LAOO = 1u << 17,
    SC_TIBT = 1u << 18,
    SC_MYMR = 1u << 19,
    SC_GEOR = 1u << 20,
    SC_HANG = 1u << 21,
    SC_ETHI = 1u << 22,
    SC_KHMR = 1u << 23,
    SC_HIRA = 1u << 24,
    SC_KANA = 1u << 25,
    SC_HAN = 1u << 26,
    SC_OTHER = 1u << 30 /* a letter of a script not in this table */
};

typedef struct {
    uint32_t lo, hi, sc;
} range;

/* Letter blocks by script; code points not listed below U+0250 and the
 * symbol/punctuation blocks are common; anything else unlisted is OTHER. */
static const range RANGES[] = {
    {0x0041, 0x005A, SC_LATIN},   {0x0061, 0x007A, SC_LATIN},   {0x00C0, 0x00D6, SC_LATIN},
    {0x00D8, 0x00F6, SC_LATIN},   {0x00F8, 0x024F, SC_LATIN},   {0x0250, 0x02AF, SC_LATIN},
    {0x02B0, 0x036F, SC_COMMON},  {0x0370, 0x03FF, SC_GREEK},   {0x0400, 0x052F, SC_CYRL},
    {0x0530, 0x058F, SC_ARMN},    {0x0590, 0x05FF, SC_HEBR},    {0x0600, 0x06FF, SC_ARAB},
    {0x0750, 0x077F, SC_ARAB},    {0x08A0, 0x08FF, SC_ARAB},    {0x0900, 0x097F, SC_DEVA},
    {0x0980, 0x09FF, SC_BENG},    {0x0A00, 0x0A7F, SC_GURU},    {0x0A80, 0x0AFF, SC_GUJR},
    {0x0B00, 0x0B7F, SC_ORYA},    {0x0B80, 0x0BFF, SC_TAML},    {0x0C00, 0x0C7F, SC_TELU},
    {0x0C80, 0x0CFF, SC_KNDA},    {0x0D00, 0x0D7F, SC_MLYM},    {0x0D80, 0x0DFF, SC_SINH},
    {0x0E00, 0x0E7F, SC_THAI},    {0x0E80, 0x0EFF, SC_LAOO},    {0x0F00, 0x0FFF, SC_TIBT},
    {0x1000, 0x109F, SC_MYMR},    {0x10A0, 0x10FF, SC_GEOR},    {0x1100, 0x11FF, SC_HANG},
    {0x1200, 0x139F, SC_ETHI},    {0x1780, 0x17FF, SC_KHMR},    {0x1AB0, 0x1AFF, SC_COMMON},
    {0x1C80, 0x1C8F, SC_CYRL},    {0x1CD0, 0x1DFF, SC_COMMON},  {0x1E00, 0x1EFF, SC_LATIN},
    {0x1F00, 0x1FFF, SC_GREEK},   {0x2000, 0x2BFF, SC_COMMON},  {0x2C60, 0x2C7F, SC_LATIN},
    {0x2D00, 0x2D2F, SC_GEOR},    {0x2D80, 0x2DDF, SC_ETHI},    {0x2DE0, 0x2DFF, SC_CYRL},
    {0x2E00, 0x2E7F, SC_COMMON},  {0x2E80, 0x2FDF, SC_HAN},     {0x2FF0, 0x303F, SC_COMMON},
    {0x3040, 0x309F, SC_HIRA},    {0x30A0, 0x30FF, SC_KANA},    {0x3130, 0x318F, SC_HANG},
    {0x3190, 0x31EF, SC_COMMON},  {0x31F0, 0x31FF, SC_KANA},    {0x3200, 0x33FF, SC_COMMON},
    {0x3400, 0x4DBF, SC_HAN},     {0x4DC0, 0x4DFF, SC_COMMON},  {0x4E00, 0x9FFF, SC_HAN},
    {0xA640, 0xA69F, SC_CYRL},    {0xA720, 0xA7FF, SC_LATIN},   {0xA960, 0xA97F, SC_HANG},
    {0xAB30, 0xAB6F, SC_LATIN},   {0xAC00, 0xD7FF, SC_HANG},    {0xE000, 0xF8FF, SC_COMMON},
    {0xF900, 0xFAFF, SC_HAN},     {0xFB00, 0xFB06, SC_LATIN},   {0xFB1D, 0xFB4F, SC_HEBR},
    {0xFB50, 0xFDFF, SC_ARAB},    {0xFE00, 0xFE6F, SC_COMMON},  {0xFE70, 0xFEFF, SC_ARAB},
    {0xFF00, 0xFF20, SC_COMMON},  {0xFF21, 0xFF3A, SC_LATIN},   {0xFF3B, 0xFF40, SC_COMMON},
    {0xFF41, 0xFF5A, SC_LATIN},   {0xFF5B, 0xFF65, SC_COMMON},  {0xFF66, 0xFF9F, SC_KANA},
    {0xFFA0, 0xFFDC, SC_HANG},    {0xFFE0, 0xFFFF, SC_COMMON},  {0x1F000, 0x1FAFF, SC_COMMON},
    {0x20000, 0x3134F, SC_HAN},
};

static uint32_t script_of(uint32_t cp) {
    if (cp < 0x80) return ((cp | 32) >= 'a' && (cp | 32) <= 'z') ? SC_LATIN : SC_COMMON;
    int lo = 0, hi = (int)(sizeof RANGES / sizeof *RANGES) - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < RANGES[mid].lo) hi = mid - 1;
        else if (cp > RANGES[mid].hi) lo = mid + 1;
        else return RANGES[mid].sc;
    }
    return cp < 0x0250 ? SC_COMMON : SC_OTHER;
}

static const struct {
    const char *code;
    uint32_t sc;
} SCRIPTS[] = {
    {"Latn", SC_LATIN}, {"Grek", SC_GREEK}, {"Cyrl", SC_CYRL}, {"Armn", SC_ARMN}, {"Hebr", SC_HEBR},
    {"Arab", SC_ARAB},  {"Deva", SC_DEVA},  {"Beng", SC_BENG}, {"Guru", SC_GURU}, {"Gujr", SC_GUJR},
    {"Orya", SC_ORYA},  {"Taml", SC_TAML},  {"Telu", SC_TELU}, {"Knda", SC_KNDA}, {"Mlym", SC_MLYM},
    {"Sinh", SC_SINH},  {"Thai", SC_THAI},  {"Laoo", SC_LAOO}, {"Tibt", SC_TIBT}, {"Mymr", SC_MYMR},
    {"Geor", SC_GEOR},  {"Hang", SC_HANG},  {"Ethi", SC_ETHI}, {"Khmr", SC_KHMR}, {"Hans", SC_HAN},
    {"Hant", SC_HAN},   {"Jpan", SC_HAN | SC_HIRA | SC_KANA},
};

/* Script mask of a target language code ("jpn_Jpan"), 0 when unknown. */
static uint32_t target_scripts(const char *code) {
    const char *u = code ? strchr(code, '_') : NULL;
    if (!u) return 0;
    for (size_t i = 0; i < sizeof SCRIPTS / sizeof *SCRIPTS; i++)
        if (!strcmp(u + 1, SCRIPTS[i].code)) return SCRIPTS[i].sc;
    return 0;
}

/* Union of the scripts of a piece's characters; SC_COMMON (0) for none,
 * UINT32_MAX when it is not valid UTF-8 (kept for every target). */
static uint32_t piece_scripts(const char *s) {
    uint32_t m = 0;
    size_t n = strlen(s);
    while (n) {
        uint32_t cp;
        size_t k = stts_utf8_decode((const unsigned char *)s, n, &cp);
        if (!k) return UINT32_MAX;
        m |= script_of(cp);
        s += k;
        n -= k;
    }
    return m;
}

static uint64_t hash_ids(const int32_t *ids, int n) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) h = (h ^ (uint32_t)ids[i]) * 1099511628211ull;
    return h;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Sorts and removes duplicates; returns the new count. */
static int sort_unique(int32_t *ids, int n) {
    qsort(ids, (size_t)n, sizeof *ids, cmp_i32);
    int w = 0;
    for (int i = 0; i < n; i++)
        if (w == 0 || ids[i] != ids[w - 1]) ids[w++] = ids[i];
    return w;
}

/* Adds the always-present ids (specials, languages, <mask>) to a list with
 * room for them. */
static int add_specials(const nllb_model *m, int32_t *ids, int n) {
    for (int i = 0; i < 4 && i < m->pub.vocab_size; i++) ids[n++] = i;
    for (int i = 0; i <= NLLB_NUM_LANGS; i++) {
        int id = m->pub.spm_size + 1 + i;
        if (id < m->pub.vocab_size) ids[n++] = id;
    }
    /* every id of generation_config's eos_token_id list, or decoding could
     * never stop on the ones past the first */
    for (int i = 0; i < m->cfg.n_gen_eos_ids; i++)
        if (m->cfg.gen_eos_ids[i] >= 0 && m->cfg.gen_eos_ids[i] < m->pub.vocab_size) ids[n++] = m->cfg.gen_eos_ids[i];
    return n;
}

#define SPECIALS (4 + NLLB_NUM_LANGS + 1 + (int)(sizeof ((mt_config *)0)->gen_eos_ids / sizeof(int)))

/* Caches sl (takes ownership) or frees it when building failed. Lock held. */
static stts_status finish(nllb_model *m, int32_t key, uint64_t hash, int32_t *ids, int n, const mt_shortlist **out,
                          stts_error *err) {
    mt_shortlist *sl = calloc(1, sizeof *sl);
    if (!sl) {
        free(ids);
        return stts_error_set(err, STTS_ERR_NOMEM, "out of memory for a shortlist");
    }
    sl->key = key;
    sl->hash = hash;
    sl->ids = ids;
    sl->n = n;
    stts_status st = m->be->ops->weight_gather(m->be, m->lm_head, ids, n, &sl->head, err);
    if (st) {
        free(ids);
        free(sl);
        return st;
    }
    sl->next = m->shortlists;
    m->shortlists = sl;
    *out = sl;
    return STTS_OK;
}

stts_status mt_shortlist_auto(const nllb_model *cm, int32_t tgt_id, const mt_shortlist **out, stts_error *err) {
    nllb_model *m = (nllb_model *)cm; /* the cache is the model's one mutable part, under sl_lock */
    *out = NULL;
    if (!m->tok) return STTS_OK; /* random model: no pieces to classify */
    const char *code = NULL;
    for (int i = 0; i < NLLB_NUM_LANGS; i++)
        if (m->pub.spm_size + 1 + i == tgt_id) code = mt_lang_code(i);
    uint32_t allow = target_scripts(code);
    if (!allow) return STTS_OK; /* unknown script: the full vocabulary */
    allow |= SC_LATIN;
    pthread_mutex_lock(&m->sl_lock);
    for (mt_shortlist *sl = m->shortlists; sl; sl = sl->next)
        if (sl->key == tgt_id) {
            *out = sl;
            pthread_mutex_unlock(&m->sl_lock);
            return STTS_OK;
        }
    stts_status st = STTS_OK;
    int spm = m->pub.spm_size;
    int32_t *ids = malloc(sizeof(int32_t) * ((size_t)spm + 1 + SPECIALS));
    if (!ids) st = stts_error_set(err, STTS_ERR_NOMEM, "out of memory for a shortlist");
    int n = 0;
    for (int32_t id = 4; !st && id <= spm && id < m->pub.vocab_size; id++) {
        char *text = NULL;
        if ((st = mt_tokenizer_decode(m->tok, &id, 1, &text, err))) break;
        uint32_t sc = piece_scripts(text);
        free(text);
        if (sc == UINT32_MAX || (sc & ~allow) == 0) ids[n++] = id;
    }
    if (!st) {
        n = add_specials(m, ids, n);
        n = sort_unique(ids, n);
        st = finish(m, tgt_id, 0, ids, n, out, err);
    } else {
        free(ids);
    }
    pthread_mutex_unlock(&m->sl_lock);
    return st;
}

stts_status mt_shortlist_ids(const nllb_model *cm, const int32_t *list, int n_list, const mt_shortlist **out,
                             stts_error *err) {
    nllb_model *m = (nllb_model *)cm;
    *out = NULL;
    if (n_list < 1) return stts_error_set(err, STTS_ERR_INVALID_ARG, "the shortlist is empty");
    /* the same list as a previous call (a session passes its list with every
     * sentence): found by its hash and bytes as given, before any work */
    const uint64_t gh = hash_ids(list, n_list);
    pthread_mutex_lock(&m->sl_lock);
    for (mt_shortlist *sl = m->shortlists; sl; sl = sl->next)
        if (sl->key == -1 && sl->given && sl->given_hash == gh && sl->n_given == n_list &&
            !memcmp(sl->given, list, sizeof(int32_t) * (size_t)n_list)) {
            *out = sl;
            pthread_mutex_unlock(&m->sl_lock);
            return STTS_OK;
        }
    pthread_mutex_unlock(&m->sl_lock);
    for (int i = 0; i < n_list; i++)
        if (list[i] < 0 || list[i] >= m->pub.vocab_size)
            return stts_error_set(err, STTS_ERR_INVALID_ARG, "shortlist id %d (entry %d) is outside the vocabulary (0..%d)",
                                  list[i], i + 1, m->pub.vocab_size - 1);
    int32_t *ids = malloc(sizeof(int32_t) * ((size_t)n_list + SPECIALS));
    int32_t *given = malloc(sizeof(int32_t) * (size_t)n_list);
    if (!ids || !given) {
        free(ids);
        free(given);
        return stts_error_set(err, STTS_ERR_NOMEM, "out of memory for a shortlist");
    }
    memcpy(ids, list, sizeof(int32_t) * (size_t)n_list);
    memcpy(given, list, sizeof(int32_t) * (size_t)n_list);
    int n = add_specials(m, ids, n_list);
    n = sort_unique(ids, n);
    uint64_t h = hash_ids(ids, n);
    pthread_mutex_lock(&m->sl_lock);
    for (mt_shortlist *sl = m->shortlists; sl; sl = sl->next)
        if (sl->key == -1 && sl->hash == h && sl->n == n && !memcmp(sl->ids, ids, sizeof(int32_t) * (size_t)n)) {
            /* the same set in another order: cached already */
            *out = sl;
            pthread_mutex_unlock(&m->sl_lock);
            free(ids);
            free(given);
            return STTS_OK;
        }
    stts_status st = finish(m, -1, h, ids, n, out, err);
    if (!st) {
        mt_shortlist *sl = (mt_shortlist *)*out;
        sl->given = given, sl->n_given = n_list, sl->given_hash = gh;
    } else {
        free(given);
    }
    pthread_mutex_unlock(&m->sl_lock);
    return st;
}

int mt_shortlist_has(const mt_shortlist *sl, int32_t id) {
    int lo = 0, hi = sl->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (sl->ids[mid] < id) lo = mid + 1;
        else if (sl->ids[mid] > id) hi = mid - 1;
        else return 1;
    }
    return 0;
}
