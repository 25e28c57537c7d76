/* protect.c - see protect.h. */
#define _GNU_SOURCE   /* strndup, strncasecmp */
#include "protect.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Stand-ins: names the model has seen thousands of times and carries over. */
static const char *const k_names[] = {"Tom", "Mary", "Ken", "John", "Bob", "Jane", NULL};
static const char *const k_names_ja[] = {"\xE3\x83\x88\xE3\x83\xA0",                                  /* トム */
                                         "\xE3\x83\xA1\xE3\x82\xA2\xE3\x83\xAA\xE3\x83\xBC",          /* メアリー */
                                         "\xE3\x82\xB1\xE3\x83\xB3",                                  /* ケン */
                                         "\xE3\x82\xB8\xE3\x83\xA7\xE3\x83\xB3",                      /* ジョン */
                                         "\xE3\x83\x9C\xE3\x83\x96",                                  /* ボブ */
                                         "\xE3\x82\xB8\xE3\x82\xA7\xE3\x83\xBC\xE3\x83\xB3", NULL};   /* ジェーン */

int protect_is_token(const char *w, int n) {
    if (n <= 0) return 0;
    int digit = 0, lower = 0, inner_cap = 0, letters = 0;
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char)w[i];
        if (c >= 0x80) return 0;   /* words of other scripts are language */
        if (isdigit(c)) digit = 1;
        if (isalpha(c)) letters++;
        if (islower(c)) lower = 1;
        if (isupper(c) && i > 0 && islower((unsigned char)w[i - 1])) inner_cap = 1;
        if (strchr("_/\\@#$=<>{}[]()|`~^*", (int)c)) return 1;   /* code, paths, handles */
        if (c == ':' && i + 1 < n && w[i + 1] == ':') return 1;   /* std::string */
    }
    if (digit) return 1;                         /* numbers, versions, dates, utf8 */
    if (inner_cap) return 1;                     /* camelCase, PascalCase, iPhone */
    if (w[0] == '-' && n > 1 && (isalpha((unsigned char)w[1]) || w[1] == '-')) return 1;   /* --flag, -v */
    /* a dot inside: file.ext, os.path; not abbreviations (e.g, U.S) */
    const char *d = memchr(w, '.', (size_t)n);
    if (d && d > w && d < w + n - 1) {
        int longest = 0, cur = 0;
        for (int i = 0; i < n; i++) {
            if (w[i] == '.') cur = 0;
            else if (++cur > longest) longest = cur;
        }
        if (longest >= 2) return 1;
    }
    (void)lower, (void)letters;
    return 0;
}

static const char *const *renders_for(const char *tgt) {
    if (!tgt) return NULL;
    if (strcmp(tgt, "jpn_Jpan") == 0) return k_names_ja;
    size_t l = strlen(tgt);
    if (l > 5 && strcmp(tgt + l - 5, "_Latn") == 0) return k_names;   /* Latin targets keep names */
    return NULL;
}

static int has_word_ci(const char *s, const char *w) {
    size_t l = strlen(w);
    for (const char *p = s; *p; p++)
        if (strncasecmp(p, w, l) == 0 && (p == s || !isalnum((unsigned char)p[-1])) && !isalnum((unsigned char)p[l]))
            return 1;
    return 0;
}

void protect_clear(protect_map *m) {
    for (int i = 0; i < m->n; i++) free(m->tok[i]);
    memset(m, 0, sizeof *m);
}

int protect_apply(const char *src, const char *tgt_lang, protect_map *m, char **out) {
    memset(m, 0, sizeof *m);
    *out = NULL;
    const char *const *rend = renders_for(tgt_lang);
    if (!rend) return 0;
    /* names the sentence itself uses cannot stand in */
    int usable[8] = {0}, nusable = 0;
    for (int k = 0; k_names[k]; k++) {
        usable[k] = !has_word_ci(src, k_names[k]) && !strstr(src, rend[k]);
        nusable += usable[k];
    }
    size_t len = strlen(src), cap = len * 2 + 64, w = 0;
    char *o = malloc(cap);
    if (!o) return -1;
    int next = 0;
    for (size_t i = 0; i < len;) {
        if (src[i] == ' ') { o[w++] = src[i++]; continue; }
        size_t e = i;
        while (e < len && src[e] != ' ') e++;
        /* the word without its surrounding punctuation */
        size_t a = i, b = e;
        while (a < b && strchr("\"'([{", src[a])) a++;
        while (b > a && strchr(".,;:!?\"')]}", src[b - 1])) b--;
        int idx = -1;
        if (b > a && protect_is_token(src + a, (int)(b - a))) {
            for (int k = 0; k < m->n; k++)
                if (strlen(m->tok[k]) == b - a && memcmp(m->tok[k], src + a, b - a) == 0) idx = k;
            if (idx < 0 && m->n < PROTECT_MAX) {
                while (k_names[next] && !usable[next]) next++;
                if (k_names[next]) {
                    idx = m->n;
                    m->tok[idx] = strndup(src + a, b - a);
                    if (!m->tok[idx]) { free(o); protect_clear(m); return -1; }
                    m->render[idx] = rend[next];
                    m->n++;
                    usable[next++] = 0;
                }
            }
        }
        if (idx >= 0) {
            const char *name = NULL;
            for (int k = 0; k_names[k]; k++)
                if (rend[k] == m->render[idx]) name = k_names[k];
            memcpy(o + w, src + i, a - i);
            w += a - i;
            memcpy(o + w, name, strlen(name));
            w += strlen(name);
            memcpy(o + w, src + b, e - b);
            w += e - b;
        } else {
            memcpy(o + w, src + i, e - i);
            w += e - i;
        }
        i = e;
    }
    o[w] = '\0';
    (void)cap, (void)nusable;
    if (m->n == 0) { free(o); return 0; }
    *out = o;
    return 1;
}

char *protect_restore(const char *tr, const protect_map *m) {
    size_t len = strlen(tr), cap = len + 1;
    for (int k = 0; k < m->n; k++) cap += 2 * strlen(m->tok[k]) + 2 + len / 2 * strlen(m->tok[k]);
    char *o = malloc(cap);
    if (!o) return NULL;
    size_t w = 0;
    /* tokens whose stand-in the model dropped go first */
    for (int k = 0; k < m->n; k++)
        if (!strstr(tr, m->render[k])) {
            size_t l = strlen(m->tok[k]);
            memcpy(o + w, m->tok[k], l);
            w += l;
            o[w++] = ' ';
        }
    for (size_t i = 0; i < len;) {
        int hit = -1;
        for (int k = 0; k < m->n && hit < 0; k++) {
            size_t rl = strlen(m->render[k]);
            int ascii = (unsigned char)m->render[k][0] < 0x80;   /* Latin: "Tom", not "Tomorrow" */
            if (strncmp(tr + i, m->render[k], rl) == 0 &&
                (!ascii || ((i == 0 || !isalnum((unsigned char)tr[i - 1])) && !isalnum((unsigned char)tr[i + rl]))))
                hit = k;
        }
        if (hit >= 0) {
            size_t l = strlen(m->tok[hit]);
            memcpy(o + w, m->tok[hit], l);
            w += l;
            i += strlen(m->render[hit]);
        } else {
            o[w++] = tr[i++];
        }
    }
    o[w] = '\0';
    return o;
}
