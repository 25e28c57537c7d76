/* protect.h - identifiers, paths, code words and numbers through translation
 * unchanged. NLLB translates or mangles "useState", "src/main.c" or "8080";
 * each such token is swapped for a person's name (Tom, Mary, ...) that the
 * model carries over reliably (as トム, メアリー in Japanese), and after
 * translation the name's rendering is swapped back for the token. A token
 * whose name the model dropped is put in front of the sentence, so every
 * token reaches the output verbatim. docs/QUALITY.md has the measurements. */
#ifndef PIPELINE_PROTECT_H
#define PIPELINE_PROTECT_H

#define PROTECT_MAX 6

typedef struct {
    int n;
    char *tok[PROTECT_MAX];          /* the protected tokens (owned) */
    const char *render[PROTECT_MAX]; /* how the target writes each stand-in name */
} protect_map;

/* Does the word (punctuation already stripped) need protecting? */
int protect_is_token(const char *w, int n);
/* 1: *out (malloc'd) is src with stand-ins and m filled; 0: nothing to protect
 * or no stand-ins known for tgt_lang (*out NULL); -1: out of memory. */
int protect_apply(const char *src, const char *tgt_lang, protect_map *m, char **out);
/* The translation with the tokens back (malloc'd; NULL: out of memory). */
char *protect_restore(const char *translated, const protect_map *m);
void protect_clear(protect_map *m);

#endif
