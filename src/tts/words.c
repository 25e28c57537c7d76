/* words.c - identifiers, file names, paths and ISO dates/times rewritten into
 * words a synthesizer reads naturally, before Open JTalk or espeak-ng sees
 * the text (tts_words):
 *   useState -> use State, get_user_id -> get user id, is-valid -> is valid,
 *   base64Encode -> base64 Encode (but 10MB stays: a number and its unit),
 *   HTTPServer -> HTTP Server, os.path.join -> os path join,
 *   config.json -> config dot json (Japanese: ドット), src/main.c -> src main dot c,
 *   --verbose -> verbose;
 *   Japanese only: 2024-01-15 -> 2024年1月15日, 14:30 -> 14時30分,
 *   2024-01-15T14:30:05Z -> 2024年1月15日14時30分5秒.
 * Left alone: numbers, decimals, versions (1.2.3, v2.0: the Open JTalk
 * backend has its own rule), URLs, ALLCAPS and Capitalized words, and the
 * dictionary's inner-capital terms (GitHub, TypeScript: terms_mixed.h). The
 * Japanese reading of each word then comes from the reading dictionary
 * (data/dict/terms.txt: use -> ユーズ, state -> ステート). */
#define _GNU_SOURCE   /* memmem */
#include <ctype.h>
#include <string.h>

#include "tts/terms_mixed.h"
#include "tts/tts_internal.h"

static int is_tok(unsigned char c) {
    return isalnum(c) || c == '_' || c == '.' || c == '-' || c == '/' || c == ':' || c == '+';
}

static void put(char *out, size_t *w, const char *s, size_t n) {
    memcpy(out + *w, s, n);
    *w += n;
}
static void put_num(char *out, size_t *w, const char *s, size_t n) {
    while (n > 1 && *s == '0') { s++; n--; }   /* 01 -> 1 */
    put(out, w, s, n);
}

static int digits(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i])) return 0;
    return n > 0;
}
static int num2(const char *s) { return (s[0] - '0') * 10 + (s[1] - '0'); }

/* hh:mm[:ss] at s (exactly n bytes); writes 14時30分[5秒]. */
static int time_ja(const char *s, size_t n, char *out, size_t *w) {
    if ((n != 5 && n != 8) || !digits(s, 2) || s[2] != ':' || !digits(s + 3, 2)) return 0;
    if (n == 8 && (s[5] != ':' || !digits(s + 6, 2))) return 0;
    if (num2(s) > 23 || num2(s + 3) > 59 || (n == 8 && num2(s + 6) > 60)) return 0;
    put_num(out, w, s, 2);
    put(out, w, "\xE6\x99\x82", 3);                               /* 時 */
    put_num(out, w, s + 3, 2);
    put(out, w, "\xE5\x88\x86", 3);                               /* 分 */
    if (n == 8 && num2(s + 6) != 0) {
        put_num(out, w, s + 6, 2);
        put(out, w, "\xE7\xA7\x92", 3);                           /* 秒 */
    }
    return 1;
}

/* yyyy-mm-dd[Thh:mm[:ss[.frac]][Z|+hh:mm]] read the Japanese way. */
static int datetime_ja(const char *s, size_t n, char *out, size_t *w) {
    size_t w0 = *w;
    if (n >= 10 && digits(s, 4) && s[4] == '-' && digits(s + 5, 2) && s[7] == '-' && digits(s + 8, 2) &&
        num2(s + 5) >= 1 && num2(s + 5) <= 12 && num2(s + 8) >= 1 && num2(s + 8) <= 31) {
        put(out, w, s, 4);
        put(out, w, "\xE5\xB9\xB4", 3);                           /* 年 */
        put_num(out, w, s + 5, 2);
        put(out, w, "\xE6\x9C\x88", 3);                           /* 月 */
        put_num(out, w, s + 8, 2);
        put(out, w, "\xE6\x97\xA5", 3);                           /* 日 */
        if (n == 10) return 1;
        if (s[10] != 'T' && s[10] != 't') { *w = w0; return 0; }
        const char *t = s + 11;
        size_t tl = n - 11;
        /* the zone and fractions of a second are not read */
        size_t e = 0;
        while (e < tl && (isdigit((unsigned char)t[e]) || t[e] == ':')) e++;
        size_t rest = e;
        if (rest < tl && t[rest] == '.') { rest++; while (rest < tl && isdigit((unsigned char)t[rest])) rest++; }
        if (rest < tl && (t[rest] == 'Z' || t[rest] == 'z')) rest++;
        else if (rest < tl && (t[rest] == '+' || t[rest] == '-')) {
            rest++;
            while (rest < tl && (isdigit((unsigned char)t[rest]) || t[rest] == ':')) rest++;
        }
        if (rest != tl || !time_ja(t, e, out, w)) { *w = w0; return 0; }
        return 1;
    }
    return time_ja(s, n, out, w);
}

static int is_mixed_term(const char *s, size_t n) {
    for (int i = 0; k_mixed_terms[i]; i++)
        if (strlen(k_mixed_terms[i]) == n && memcmp(k_mixed_terms[i], s, n) == 0) return 1;
    return 0;
}

static int is_ext(const char *s, size_t n) {
    static const char *const ext[] = {"c", "h", "cc", "cpp", "hpp", "cxx", "py", "pyi", "js", "mjs", "cjs", "ts",
                                      "tsx", "jsx", "json", "jsonl", "md", "txt", "yaml", "yml", "toml", "ini",
                                      "cfg", "conf", "sh", "bash", "zsh", "go", "rs", "java", "kt", "swift", "rb",
                                      "php", "html", "htm", "css", "scss", "sql", "xml", "csv", "log", "lock",
                                      "env", "wav", "png", "jpg", "jpeg", "gif", "svg", "pdf", "zip", "gz", "tar",
                                      "so", "o", "a", "exe", "dll", "lua", "vue", "cmake", "mk", "proto", "rst",
                                      "ipynb", "dockerfile", "gradle", "sum", "mod", "pem", "key", NULL};
    char low[16];
    if (n == 0 || n >= sizeof low) return 0;
    for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)s[i]);
    low[n] = '\0';
    for (int i = 0; ext[i]; i++)
        if (strcmp(low, ext[i]) == 0) return 1;
    return 0;
}

/* One token (a run of letters, digits and _ . - / : +) with at least one letter. */
static void split_token(const char *s, size_t n, int ja, tts_keep_fn keep, void *ku, char *out, size_t *w) {
    /* URLs, versions (v1.2.3) and mixed-case dictionary terms stay as written */
    if (memmem(s, n, "://", 3) || is_mixed_term(s, n)) { put(out, w, s, n); return; }
    int inner_cap = 0;
    for (size_t k = 1; k < n; k++) inner_cap |= isupper((unsigned char)s[k]) && islower((unsigned char)s[k - 1]);
    if (inner_cap && keep && keep(ku, s, n)) { put(out, w, s, n); return; }
    if ((s[0] == 'v' || s[0] == 'V') && n > 1 && isdigit((unsigned char)s[1])) {
        size_t k = 1;
        while (k < n && (isdigit((unsigned char)s[k]) || s[k] == '.')) k++;
        if (k == n) { put(out, w, s, n); return; }
    }
    /* the last '.' before a file extension is read as "dot" */
    size_t ext_dot = n;
    for (size_t i = n; i > 0; i--)
        if (s[i - 1] == '.') {
            if (i - 1 > 0 && isalnum((unsigned char)s[i - 2]) && is_ext(s + i, n - i) && !digits(s + i, n - i))
                ext_dot = i - 1;
            break;
        }
    int need_space = 0;
    size_t i = 0;
    while (i < n && s[i] == '-') i++;   /* --verbose: the dashes are not read */
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i == ext_dot) {
            put(out, w, ja ? " \xE3\x83\x89\xE3\x83\x83\xE3\x83\x88 " : " dot ", ja ? 11 : 5);   /* ドット */
            need_space = 0;
            continue;
        }
        int sep = c == '_' || c == '-' || c == '/' || c == ':' || c == '+';
        if (c == '.') {
            /* 3.5 and python3.11 keep their dot; os.path.join is three words */
            int num = i > 0 && i + 1 < n && isdigit((unsigned char)s[i - 1]) && isdigit((unsigned char)s[i + 1]);
            if (num) { out[(*w)++] = '.'; continue; }
            sep = 1;
        }
        if (sep) { need_space = *w > 0; continue; }
        if (i > 0 && isupper(c)) {
            unsigned char p = (unsigned char)s[i - 1];
            int nx_lower = i + 1 < n && islower((unsigned char)s[i + 1]);
            /* useState, base64Encode: a capital after a small letter or digit;
             * HTTPServer: the last capital of a run before small letters */
            /* digits then a capital split only after letters: base64Encode, not 10MB */
            int after_word_digits = 0;
            if (isdigit(p)) {
                size_t b = i - 1;
                while (b > 0 && isdigit((unsigned char)s[b - 1])) b--;
                after_word_digits = b > 0 && isalpha((unsigned char)s[b - 1]);
            }
            if (islower(p) || after_word_digits || (isupper(p) && nx_lower)) need_space = 1;
        }
        if (need_space) {
            if (*w > 0 && out[*w - 1] != ' ') out[(*w)++] = ' ';
            need_space = 0;
        }
        out[(*w)++] = (char)c;
    }
}

size_t tts_words(const char *in, size_t len, int ja, tts_keep_fn keep, void *keep_user, char *out) {
    size_t w = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)in[i];
        int start = (isalnum(c) || c == '_' || (c == '-' && i + 1 < len && in[i + 1] == '-')) &&
                    (i == 0 || !is_tok((unsigned char)in[i - 1]));
        if (!start) { out[w++] = in[i++]; continue; }
        size_t e = i;
        while (e < len && is_tok((unsigned char)in[e])) e++;
        /* a sentence's final period, a colon or a dash after the token is punctuation */
        size_t te = e;
        while (te > i && strchr(".:-/+", in[te - 1])) te--;
        const char *s = in + i;
        size_t n = te - i;
        int letters = 0;
        for (size_t k = 0; k < n; k++) letters |= isalpha((unsigned char)s[k]);
        if (n && ja && datetime_ja(s, n, out, &w)) {
        } else if (n && letters) {
            split_token(s, n, ja, keep, keep_user, out, &w);
        } else {
            memcpy(out + w, s, n);
            w += n;
        }
        memcpy(out + w, in + te, e - te);
        w += e - te;
        i = e;
    }
    out[w] = '\0';
    return w;
}
