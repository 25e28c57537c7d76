/* guard.c - script detection and the translation sanity guard.
 *
 * Scripts are recognised from Unicode blocks, which is enough to tell the
 * writing systems NLLB's codes name apart; a language whose script is not in
 * the table simply gets no script-based checks (never a false rejection). */
#include "guard.h"

#include <stdio.h>
#include <string.h>

#include "stts_common.h"

typedef struct {
    const char *tag;          /* NLLB code suffix */
    uint32_t lo[4], hi[4];    /* up to four code-point ranges */
} script_ranges;

/* Jpan counts kana and kanji; Hang also accepts hanja; Latn covers the
 * Latin-1 and Latin Extended letters too. */
static const script_ranges SCRIPTS[] = {
    {"Latn", {0x41, 0x61, 0xC0, 0x1E00}, {0x5A, 0x7A, 0x24F, 0x1EFF}},
    {"Jpan", {0x3040, 0x30A0, 0x4E00, 0x3400}, {0x309F, 0x30FF, 0x9FFF, 0x4DBF}},
    {"Hang", {0xAC00, 0x1100, 0x3130, 0x4E00}, {0xD7AF, 0x11FF, 0x318F, 0x9FFF}},
    {"Hans", {0x4E00, 0x3400, 0, 0}, {0x9FFF, 0x4DBF, 0, 0}},
    {"Hant", {0x4E00, 0x3400, 0, 0}, {0x9FFF, 0x4DBF, 0, 0}},
    {"Cyrl", {0x400, 0, 0, 0}, {0x4FF, 0, 0, 0}},
    {"Grek", {0x370, 0x1F00, 0, 0}, {0x3FF, 0x1FFF, 0, 0}},
    {"Arab", {0x600, 0x750, 0, 0}, {0x6FF, 0x77F, 0, 0}},
    {"Hebr", {0x590, 0, 0, 0}, {0x5FF, 0, 0, 0}},
    {"Deva", {0x900, 0, 0, 0}, {0x97F, 0, 0, 0}},
    {"Beng", {0x980, 0, 0, 0}, {0x9FF, 0, 0, 0}},
    {"Taml", {0xB80, 0, 0, 0}, {0xBFF, 0, 0, 0}},
    {"Thai", {0xE00, 0, 0, 0}, {0xE7F, 0, 0, 0}},
    {"Geor", {0x10A0, 0, 0, 0}, {0x10FF, 0, 0, 0}},
    {"Armn", {0x530, 0, 0, 0}, {0x58F, 0, 0, 0}},
    {"Ethi", {0x1200, 0, 0, 0}, {0x137F, 0, 0, 0}},
};

static const script_ranges *script_of_code(const char *code) {
    const char *us = code ? strchr(code, '_') : NULL;
    if (!us) return NULL;
    for (size_t i = 0; i < sizeof SCRIPTS / sizeof SCRIPTS[0]; i++)
        if (strcmp(us + 1, SCRIPTS[i].tag) == 0) return &SCRIPTS[i];
    return NULL;
}

static int in_script(const script_ranges *s, uint32_t cp) {
    for (int i = 0; i < 4; i++)
        if (s->hi[i] && cp >= s->lo[i] && cp <= s->hi[i]) return 1;
    return 0;
}

/* A letter of any known script (what the fractions count). */
static int is_letter(uint32_t cp) {
    if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    if (cp == 0xD7 || cp == 0xF7) return 0;
    for (size_t i = 0; i < sizeof SCRIPTS / sizeof SCRIPTS[0]; i++)
        if (in_script(&SCRIPTS[i], cp)) return 1;
    return 0;
}

static void count_letters(const char *text, const script_ranges *s, size_t *letters, size_t *in, size_t *chars) {
    const unsigned char *p = (const unsigned char *)text;
    size_t n = strlen(text), i = 0;
    *letters = *in = *chars = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = stts_utf8_decode(p + i, n - i, &cp);
        if (k == 0) { i++; continue; }
        i += k;
        (*chars)++;
        if (!is_letter(cp)) continue;
        (*letters)++;
        if (s && in_script(s, cp)) (*in)++;
    }
}

double guard_script_fraction(const char *text, const char *nllb_code) {
    const script_ranges *s = script_of_code(nllb_code);
    if (!s || !text) return -1;
    size_t letters, in, chars;
    count_letters(text, s, &letters, &in, &chars);
    return letters ? (double)in / (double)letters : -1;
}

/* Ideographs, kana and hangul say about as much per character as two or
 * three Latin letters. */
static int is_dense(uint32_t cp) {
    return (cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) ||
           (cp >= 0xAC00 && cp <= 0xD7AF) || (cp >= 0x1100 && cp <= 0x11FF) || (cp >= 0x3130 && cp <= 0x318F);
}

/* A run of ASCII (no spaces) that is code rather than a word once the
 * punctuation around it is gone: a path, file name, call, flag, option or
 * identifier ("src/main.c", "parse_args()", "-r", "useState", "v1.2"). */
static int is_code_run(const char *s, size_t n) {
    while (n && strchr(".,;:!?\"'()[]", s[n - 1])) n--;
    while (n && strchr("\"'([", s[0])) { s++; n--; }
    if (!n) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') {
            if (i && c >= 'A' && c <= 'Z' && s[i - 1] >= 'a' && s[i - 1] <= 'z') return 1;   /* camelCase */
            continue;
        }
        if ((c == '\'' || c == '-') && i > 0 && i + 1 < n) continue;   /* don't, well-known */
        return 1;
    }
    return 0;
}

/* Kana: a sentence with any is Japanese, never Chinese (the prolonged-sound
 * mark and the middle dot, which Chinese text borrows, left out). */
static int is_kana(uint32_t cp) {
    return (cp >= 0x3041 && cp <= 0x309F) || (cp >= 0x30A1 && cp <= 0x30FA) || (cp >= 0x31F0 && cp <= 0x31FF) ||
           (cp >= 0xFF66 && cp <= 0xFF9D);
}

/* Characters of everyday Chinese that modern Japanese does not write: the
 * simplified forms (这 们 说 时 题 ...) and the traditional ones Japanese
 * replaced (這 說 對 經 ...), plus the particles 呢 吧 啊. Only characters
 * whose Japanese counterpart differs are listed: 会 時 問 題 個 並 過 為 数 網 are both. */
static const char CHINESE_SIMPLIFIED[] =
    "这们么吗说个还对时过为进问题请该让从给现经关发实应样谁据运码错误设开启动务库变类输结构项链页览检测试调读删"
    "创图长门东车马书见语话认记计论识议译讯执处备网络获显线选择组态块";
static const char CHINESE_TRADITIONAL[] = "這們麼嗎說還對讓從經關發實應樣據碼啟變鏈覽檢讀刪圖譯處裡擇顯";
static const char CHINESE_BOTH[] = "呢吧啊";

static int in_list(const char *list, uint32_t cp) {
    const unsigned char *p = (const unsigned char *)list;
    size_t n = strlen(list), i = 0;
    while (i < n) {
        uint32_t c;
        size_t k = stts_utf8_decode(p + i, n - i, &c);
        if (!k) return 0;
        if (c == cp) return 1;
        i += k;
    }
    return 0;
}

typedef struct {
    int kana, han, simplified, traditional, particles;
} cjk_counts;

static void count_cjk(const char *text, cjk_counts *c) {
    const unsigned char *p = (const unsigned char *)text;
    size_t n = strlen(text), i = 0;
    memset(c, 0, sizeof *c);
    while (i < n) {
        uint32_t cp;
        size_t k = stts_utf8_decode(p + i, n - i, &cp);
        if (!k) { i++; continue; }
        i += k;
        if (cp < 0x3000) continue;
        if (is_kana(cp)) c->kana++;
        else if ((cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF)) {
            c->han++;
            c->simplified += in_list(CHINESE_SIMPLIFIED, cp);
            c->traditional += in_list(CHINESE_TRADITIONAL, cp);
            c->particles += in_list(CHINESE_BOTH, cp);
        }
    }
}

/* Han text that is Chinese, not Japanese: no kana at all, and a character
 * Japanese does not use, or a run too long for a Japanese heading. */
static int is_chinese(const cjk_counts *c) {
    return c->han > 0 && c->kana == 0 && (c->simplified + c->traditional + c->particles > 0 || c->han >= 16);
}

int guard_already_in_target(const char *text, const char *src_lang, const char *tgt_lang) {
    const script_ranges *ss = script_of_code(src_lang), *ts = script_of_code(tgt_lang);
    if (!ts || ss == ts || !text) return 0;
    /* Han is shared: Chinese written to a Japanese listener, or Japanese to a
     * Chinese one, is not in the target, whatever the letters say (Open JTalk
     * read Chinese as Japanese readings of its characters). */
    const char *tag = strchr(tgt_lang, '_') + 1;
    if (!strcmp(tag, "Jpan") || !strcmp(tag, "Hans") || !strcmp(tag, "Hant")) {
        cjk_counts c;
        count_cjk(text, &c);
        if (tag[0] == 'J' && is_chinese(&c)) return 0;
        if (tag[0] == 'H' && c.kana > 0) return 0;
    }
    /* Claude's Japanese has commands, paths and identifiers in it
     * ("src/main.c の parse_args() を修正しました。", "npm install を実行します。"):
     * counted by letters those outweighed the Japanese, and the sentence went
     * to the translator as English (it came back as nonsense). So letters of
     * code runs do not count, and dense scripts' characters count double. */
    const unsigned char *p = (const unsigned char *)text;
    size_t n = strlen(text), i = 0;
    double in = 0, all = 0, dense_in = 0;
    int words = 0, last_in = 0;   /* Latin words (not code); whether the last letter is the target's */
    while (i < n) {
        if (p[i] > ' ' && p[i] < 0x80) {
            size_t e = i;
            while (e < n && p[e] > ' ' && p[e] < 0x80) e++;
            if (!is_code_run(text + i, e - i)) {
                int letters = 0;
                for (size_t k = i; k < e; k++)
                    if (((p[k] | 0x20) >= 'a' && (p[k] | 0x20) <= 'z')) {
                        all += 1;
                        letters++;
                        if (in_script(ts, p[k])) in += 1;
                    }
                if (letters) words++, last_in = in_script(ts, 'a');
            }
            i = e;
            continue;
        }
        uint32_t cp;
        size_t k = stts_utf8_decode(p + i, n - i, &cp);
        if (k == 0) { i++; continue; }
        i += k;
        if (!is_letter(cp)) continue;
        double w = is_dense(cp) ? 2 : 1;
        all += w;
        last_in = in_script(ts, cp);
        if (last_in) in += w;
        if (last_in && is_dense(cp)) dense_in += w;
    }
    if (all > 0 && in / all >= 0.5) return 1;
    /* Japanese (Korean, Chinese) with plain English words in it, as Claude
     * writes it: "Docker Compose で PostgreSQL と Redis を起動します。"
     * ("PostgreSQL が PostgreSQL に喜ばそうとして" came back). By letters the
     * English words outweigh it; by words they do not, and such a sentence
     * ends in the target's script (its verb), where English quoting a
     * Japanese word ends in English ("The word こんにちは means hello.").
     * So: ending in the dense script, with its characters outweighing three
     * a Latin word. */
    return last_in && dense_in > 0 && dense_in / (dense_in + 3.0 * words) >= 0.5;
}

const char *guard_source_lang(const char *text, const char *src_lang) {
    static const struct { const char *tag, *code; } DEFAULT_LANG[] = {
        {"Hang", "kor_Hang"}, {"Cyrl", "rus_Cyrl"}, {"Grek", "ell_Grek"}, {"Arab", "arb_Arab"},
        {"Hebr", "heb_Hebr"}, {"Deva", "hin_Deva"}, {"Beng", "ben_Beng"}, {"Taml", "tam_Taml"},
        {"Thai", "tha_Thai"}, {"Geor", "kat_Geor"}, {"Armn", "hye_Armn"}, {"Ethi", "amh_Ethi"},
    };
    if (!text) return NULL;
    /* letters per script, dense ones double and code runs left out, as
     * guard_already_in_target counts them */
    double per[sizeof SCRIPTS / sizeof SCRIPTS[0]] = {0}, all = 0;
    const unsigned char *p = (const unsigned char *)text;
    size_t n = strlen(text), i = 0;
    while (i < n) {
        if (p[i] > ' ' && p[i] < 0x80) {
            size_t e = i;
            while (e < n && p[e] > ' ' && p[e] < 0x80) e++;
            if (!is_code_run(text + i, e - i))
                for (size_t k = i; k < e; k++)
                    if ((p[k] | 0x20) >= 'a' && (p[k] | 0x20) <= 'z') all += 1, per[0] += 1;   /* SCRIPTS[0]: Latn */
            i = e;
            continue;
        }
        uint32_t cp;
        size_t k = stts_utf8_decode(p + i, n - i, &cp);
        if (!k) { i++; continue; }
        i += k;
        if (!is_letter(cp)) continue;
        double w = is_dense(cp) ? 2 : 1;
        all += w;
        for (size_t s = 0; s < sizeof SCRIPTS / sizeof SCRIPTS[0]; s++)
            if (in_script(&SCRIPTS[s], cp)) { per[s] += w; break; }   /* Han: counted as Jpan, sorted out below */
    }
    size_t best = 0;
    for (size_t s = 1; s < sizeof SCRIPTS / sizeof SCRIPTS[0]; s++)
        if (per[s] > per[best]) best = s;
    if (all <= 0 || per[best] / all < 0.5) return NULL;
    const char *tag = SCRIPTS[best].tag, *code = NULL;
    if (!strcmp(tag, "Jpan")) {
        cjk_counts c;
        count_cjk(text, &c);
        if (is_chinese(&c)) code = c.traditional > c.simplified ? "zho_Hant" : "zho_Hans";
        else if (c.kana > 0) code = "jpn_Jpan";
        else return NULL;   /* a few Han characters alone: Japanese or Chinese, not said */
    } else {
        for (size_t d = 0; d < sizeof DEFAULT_LANG / sizeof DEFAULT_LANG[0]; d++)
            if (!strcmp(tag, DEFAULT_LANG[d].tag)) code = DEFAULT_LANG[d].code;
    }
    if (!code) return NULL;   /* Latin (which language?) or a script without one default */
    const char *us = src_lang ? strchr(src_lang, '_') : NULL;
    if (us && !strcmp(us, strchr(code, '_'))) return NULL;   /* the source's own script: its language stands */
    return code;
}

/* A token n-gram (n = 1..4) repeated back to back: the classic decoder loop. */
static int has_loop(const int32_t *ids, int n) {
    for (int g = 1; g <= 4; g++) {
        int need = g == 1 ? 4 : 3;   /* "ha ha ha" is language; 4 of one token is a loop */
        for (int start = 0; start + g * need <= n; start++) {
            int reps = 1;
            for (int pos = start + g; pos + g <= n; pos += g) {
                if (memcmp(ids + start, ids + pos, (size_t)g * sizeof *ids) != 0) break;
                if (++reps >= need) return 1;
            }
        }
    }
    return 0;
}

int guard_check(const char *source, const char *output, const int32_t *ids, int n_ids, int hit_max,
                const char *src_lang, const char *tgt_lang, char *why, size_t why_cap) {
    size_t s_letters, s_in, s_chars, o_letters, o_in, o_chars;
    const script_ranges *ts = script_of_code(tgt_lang), *ss = script_of_code(src_lang);
    count_letters(source, NULL, &s_letters, &s_in, &s_chars);
    count_letters(output ? output : "", ts, &o_letters, &o_in, &o_chars);
    if (s_letters > 0 && o_letters == 0) {
        snprintf(why, why_cap, "empty translation");
        return 1;
    }
    /* Skip the decoder-start and language tokens: they are not output. */
    if (n_ids > 2 && has_loop(ids + 2, n_ids - 2)) {
        snprintf(why, why_cap, "repeating output");
        return 1;
    }
    if (hit_max) {
        snprintf(why, why_cap, "no end of sentence within the length limit");
        return 1;
    }
    if (o_chars > 3 * s_chars + 16) {
        snprintf(why, why_cap, "output of %zu characters for %zu of input", o_chars, s_chars);
        return 1;
    }
    if (ts && ss && ts != ss && o_letters >= 4 && (double)o_in / (double)o_letters < 0.5) {
        snprintf(why, why_cap, "output mostly not in the %s script", strchr(tgt_lang, '_') + 1);
        return 1;
    }
    return 0;
}

int guard_hit_max(const nllb_model *m, const int32_t *ids, int n_ids) {
    return n_ids > 0 && !nllb_model_is_eos(m, ids[n_ids - 1]);
}
