/* stream.c - incremental markdown-to-speech cleaning and sentence
 * segmentation (the text_stream of stts_text.h).
 *
 * Four layers, each fed one code point (or one decided token) at a time, so
 * the output never depends on where the input was split:
 *   1. sanitize  bytes -> valid UTF-8 code points; invalid bytes, controls,
 *                emoji and box drawing are dropped; '\n' ends a line.
 *   2. block     the start of each line decides what the line is (paragraph,
 *                heading, list item, quote, table row, fence, indented code,
 *                rule, trailer); it waits only for the few bytes it needs.
 *   3. inline    markup inside a line (code spans, emphasis, links, HTML,
 *                entities, footnotes) is removed; a token is consumed only
 *                once it is complete, otherwise its bytes wait.
 *   4. word      whole words: URLs -> domain, long paths -> last component.
 *   5. segment   sentence ends, abbreviations, long-sentence cuts, merging
 *                of short sentences, idle flush.
 * docs/FRONTEND.md lists the rules with their functions. */
#include "stts_text.h"

#include "lineclass.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ---- growable byte buffer ---------------------------------------------- */
typedef struct {
    char *p;
    size_t len, cap;
} tbuf;

static int tb_reserve(tbuf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

enum { LS_START, LS_INLINE, LS_DROP };
/* Dropped with their contents, across lines and deltas, to their close: a
 * <system-reminder>, an HTML comment, <script> and <style>, reasoning in
 * <thinking> tags and a tool call in <function_calls>. Only the last
 * few bytes wait for the close, so memory stays bounded. Unclosed, they end
 * with the text block, and one that opened mid-line (inline HTML rather than
 * an HTML block) also at a blank line, so a stray "<!--" in prose costs at
 * most its paragraph. */
enum { SK_NONE, SK_SYSREM, SK_COMMENT, SK_SCRIPT, SK_STYLE, SK_PRE, SK_THINK, SK_FCALLS };
static const struct {
    const char *close;
    size_t len;
    int consume;          /* 0: the close is a tag, left for the tag rule */
} skip_close[] = {{"", 0, 0}, {"</system-reminder>", 18, 1}, {"-->", 3, 1}, {"</script", 8, 0}, {"</style", 7, 0},
                  {"</pre", 5, 0}, {"</thinking>", 11, 1}, {"</function_calls>", 17, 1}};
enum { LK_PARA, LK_HEADING, LK_ITEM };
/* What decides a possible sentence end after its space (etc_wait): after
 * "etc." a lower-case letter, a digit or ( , ; : ) goes on; after "г." only
 * a lower-case letter; in an open « only the closing ». */
enum { WAIT_NONE, WAIT_ETC, WAIT_LOWER, WAIT_CLOSE };

struct text_stream {
    text_params p;
    char lang[32];
    text_sentence_fn fn;
    void *user;
    int oom;
    uint64_t invalid_bytes;
    unsigned char carry[4];
    size_t ncarry;
    uint64_t now;         /* arrival of the input being processed */
    uint64_t last_input;  /* arrival of the latest input */
    uint64_t idle_kept;   /* last_input when an idle flush kept an unfinished CJK clause; 0: none */
    int idle_fin;         /* tick: a line's start is decided on what came ("Done." waits for its next byte) */
    uint64_t idle_tried;  /* last_input when tick last decided a line's start that way */
    int force;            /* end/tick: deliver without holding short sentences */

    /* block layer */
    tbuf line;            /* bytes of the current line; [off, len) not consumed */
    size_t off;
    int ls, lk;
    int prev_blank, in_list;
    size_t list_col;      /* the open list item's content column ("- " at 0: 2; "10. " at 2: 6) */
    int in_fence;
    int fence_quote;      /* the fence opened inside a blockquote: the quote's end closes it */
    char fence_ch;
    size_t fence_len;
    long fence_lines;
    char code_lang[32];
    int in_icode;
    long icode_lines;
    int in_json;          /* unfenced JSON (a line starting {" or [{ ...): dropped to its closing bracket */
    int json_depth, json_str;
    long json_lines;
    int in_ucode;         /* UC_*: other unfenced code (a diff, YAML, a stack trace), dropped line by line */
    long ucode_lines;
    int ucode_gap;        /* UC_GO: blank lines were dropped; the next line decides whether the dump goes on */
    int ucode_quote;      /* it started in a blockquote: its lines are read past their '>' */
    int uc_wait;          /* UC_*: a line that starts such a block only if the next line bears it out
                           * ("stack backtrace:" over "0: ..."), held in uc_hold; the next line decides */
    int uc_hold_quote;    /* the held line was in a blockquote */
    tbuf uc_hold;         /* the held line (after its indentation and '>'), read as prose if not borne out */
    int yaml_key;         /* the last line was a bare "key:" at column 0: YAML may follow */
    int in_table, table_delim;   /* in_table 2: a table without leading pipes (rows are lines with a '|') */
    uint32_t table_cred_cols;    /* columns (the first 32) whose header names a credential ("| Password |") */
    /* A paragraph line with a '|' may be the header of a table without
     * leading pipes ("Name | Value" over "--- | ---"): its reading stops at
     * the '|' and the line waits for the next one. A delimiter row makes it a
     * table (the words read before the '|' are taken back from the sentence);
     * anything else reads on from the '|'. */
    int pipe_ok;          /* this line may be such a header */
    int pipe_hold;        /* stopped at its '|' */
    int pipe_wait;        /* the header line ended: in pend, the next line decides */
    tbuf pend;
    size_t pend_at;       /* the '|' in pend */
    uint32_t pend_prev_cp;
    size_t pipe_sent0;    /* sent.len when the line started */
    uint64_t pipe_gen0;
    long table_rows;
    int skip;             /* SK_*: inside an element whose contents are dropped to its end */
    long pre_lines;       /* SK_PRE: line ends inside the <pre> element */
    int skip_para;        /* it opened mid-line (inline HTML): a blank line ends it too */
    size_t inline0;       /* where this line's inline text starts (an HTML block opens there) */
    int in_quote, line_quote;   /* the previous / this line is in a blockquote */

    /* inline layer */
    int ending;           /* text_stream_end: the line being finished is the block's last */
    int sym_gap;          /* an emoji or a silent code span was just left out (GAP_MARK) */
    int url_depth;        /* inside a link destination "(...)" being skipped */
    uint32_t prev_cp;     /* last code point passed on (intraword '_') */

    /* word and segment layers */
    tbuf word;
    tbuf sent;
    size_t sent_chars;
    uint64_t sent_gen;    /* counts sentences taken out of sent (emitted, cut, unspaced) */
    int cjk_end;          /* sentence ended by a CJK terminator; closers may follow */
    int secret_pending;   /* a secret was left out of this sentence: its notice follows it */
    int secret_said;      /* the last thing delivered was the secret notice: a "sentence" of nothing but a
                           * secret after it (a JWT wrapped onto its next line) needs no second one */
    int pem;              /* inside a PEM block: 1 after -----BEGIN, 2 after -----END */
    int pem_hdr;          /* 1: in its BEGIN header; 2: the header ended its word; 3: and then its line */
    int pem_prev_secret;  /* secret_pending before it: a mere mention of the format restores it */
    int pem_words;
    int cred;             /* 1: the last word named a credential; 2: the next word is its value; 3: likewise
                           * unless a flag or a plain word; 4: likewise if it looks like a token */
    int bearer;           /* the last word was "Bearer" (1) or "Basic" (2): a token-like next word is its token */
    int mysql_words;      /* words left in a mysql/mariadb command line: its -pPASSWORD is a password */
    int user_flag;        /* the last word was "-u" or "--user": a user:password next is a credential */
    int key_words;        /* words left after one naming a key ("token", "secret"): 32+ hex there is a key */
    int digest_words;     /* words left after one naming a digest ("sha256", "checksum"): long hex there is one */
    int login_words;      /* words left after "credentials", "login", "sign in": user:PASS or user/PASS there */
    int pw_words;         /* words left in a command whose pw_flags take a password (docker login -p X) */
    char pw_flags[4];     /* "p" (docker/podman/az login, sshpass), "a" (redis-cli), "b" (gh secret set),
                           * "k" (openssl), "NP" (ssh-keygen's new and old passphrase) */
    int htpw_words;       /* words left in an htpasswd command line */
    int htpw_args;        /* its arguments so far (not flags) */
    int htpw_opts;        /* its flags: 1 -b (the password is an argument), 2 -n (no file argument) */
    int netrc;            /* .netrc layout "machine HOST login USER password PASS": 1 after machine,
                           * 2 after its host (or login's user), 3 after login */
    int user_pair;        /* "Username / password: admin / PASS": 1 the user comes next, 2 then the '/' */
    int bang_end;         /* a '!' after a left-out value went with it: a capital next ends the sentence */
    int login_cmd;        /* the last word was docker, podman ...: "login" may follow */
    int set_cmd;          /* the last word was setx, or set (and its flags): a name and its value follow */
    int gh_cmd;           /* 1: the last word was gh; 2: gh secret ("set" makes -b/--body take the secret) */
    int prose_pw;         /* 2: the last word named a password; 3: it was the bare name ("password"), whose next
                           * word may be it at once; 1: and then "is" (is_copula): the next word may be it */
    int cred_noun;        /* the last word named a credential, nothing after it: 2 a password, 1 a key or
                           * token; 0 when it was none. "for", "of" ... next opens cred_span */
    int key_qual;         /* the last word was "API", "access", "private" ...: a "key" next is a key's name */
    int cred_span;        /* words left in "The passphrase for the key is": a phrase between a credential's
                           * name and its "is" */
    int login_slash;      /* the last word was a lone '/' a few words after "login", "credentials": a
                           * password-like word next is the pair's password ("admin / admin123") */
    int word_code;        /* the word being built began in a code span */
    int word_is_code;     /* the word word_end is judging began in one ("the password `toor`") */
    int span_cue;         /* that phrase ended in "is", "was", "to", "=" or ':': 2 the next word may be the
                           * password (as prose_pw 1), 1 the key or token if it looks like one */
    char val_quote;       /* a left-out value opened this quote and has not closed it ("correct horse"):
                           * the words up to the closing one are the value too */
    int val_quote_words;  /* words it may still take (a stray quote does not eat the paragraph) */
    int etc_wait;         /* WAIT_*: the sentence so far ends in "etc." (or the like) and a space: the
                           * next character decides */
    size_t ord_at;        /* the sentence so far ends in a day "3." (or a letter "S.") and a space: the
                           * word from here on decides (a month continues it: "am 3. Oktober"); 0: none */
    int ord_kind;         /* ORD_*: what ended in '.' */
    int long_word;        /* the word passed WORD_MAX: judged by its start, the rest is not read */
    char lw_tail[16];     /* the last bytes of that word (its trailing punctuation) */
    size_t lw_tail_len;
    tbuf held;            /* short sentence waiting to be merged */
    uint64_t held_at;
    tbuf out;             /* scratch for delivery */
};

static void tb_put(text_stream *ts, tbuf *b, const char *s, size_t n) {
    if (tb_reserve(b, n) != 0) {
        ts->oom = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void text_default_params(text_params *p) {
    memset(p, 0, sizeof *p);
    p->read_tables = 0;
    p->max_sentence_chars = 200;
    p->merge_short_chars = 10;
    p->idle_flush_ns = 1500000000ull;
    p->notice_lang = "eng_Latn";
}

/* ---- character classes -------------------------------------------------- */
static uint32_t dec(const char *s, size_t n, size_t *k) {
    uint32_t cp = 0;
    *k = stts_utf8_decode((const unsigned char *)s, n, &cp);
    if (*k == 0) { *k = 1; cp = 0xFFFD; }
    return cp;
}

/* Scripts written without spaces: a word ends at each of their characters. */
static int is_nospace_script(uint32_t cp) {
    return (cp >= 0x2E80 && cp <= 0x9FFF) || (cp >= 0xF900 && cp <= 0xFAFF) ||
           (cp >= 0xFF00 && cp <= 0xFFEF) || (cp >= 0x20000 && cp <= 0x3FFFF);
}
/* 。！？｡ and the fullwidth full stop ． (Japanese technical writing: "です．") */
static int is_cjk_term(uint32_t cp) {
    return cp == 0x3002 || cp == 0xFF01 || cp == 0xFF1F || cp == 0xFF61 || cp == 0xFF0E;
}
/* Sentence ends of other scripts that, like '.', need a following space:
 * Arabic/Urdu question mark and full stop, Devanagari danda and double danda,
 * Greek question mark, Armenian full stop, Ethiopic full stop and question
 * mark, Myanmar full stop, Khmer khan and bariyoosan, Tibetan shad and
 * nyis shad, and the doubled marks !! ?? ?! !?. The Arabic
 * semicolon U+061B and comma U+060C are clause marks, not ends. */
static int is_script_term(uint32_t cp) {
    return cp == 0x061F || cp == 0x06D4 || cp == 0x0964 || cp == 0x0965 || cp == 0x037E || cp == 0x0589 ||
           cp == 0x1362 || cp == 0x1367 || cp == 0x104B || cp == 0x203C || cp == 0x2047 || cp == 0x2048 ||
           cp == 0x2049 || cp == 0x17D4 || cp == 0x17D5 || cp == 0x0F0D || cp == 0x0F0E;   /* Khmer, Tibetan */
}
/* The last code point of s[0, n) and where it starts. */
static uint32_t last_cp(const char *s, size_t n, size_t *start) {
    size_t st = n - 1, k;
    while (st > 0 && ((unsigned char)s[st] & 0xC0) == 0x80) st--;
    *start = st;
    uint32_t cp = 0;
    k = stts_utf8_decode((const unsigned char *)s + st, n - st, &cp);
    return k ? cp : 0xFFFD;
}
static int is_closer(uint32_t cp) {
    return cp == ')' || cp == ']' || cp == '"' || cp == '\'' || cp == 0x201D || cp == 0x2019 ||
           cp == 0xBB || cp == 0x300D || cp == 0x300F || cp == 0xFF09 || cp == 0x3011 ||
           cp == 0x3009 || cp == 0x300B;
}
/* Emoji, pictographs, dingbats, box drawing, geometric shapes: not speech. */
static int is_dropped_symbol(uint32_t cp) {
    return (cp >= 0x2500 && cp <= 0x25FF) || (cp >= 0x2600 && cp <= 0x27BF) ||
           (cp >= 0x2B00 && cp <= 0x2BFF) || (cp >= 0x1F000 && cp <= 0x1FAFF) ||
           (cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0xE0000 && cp <= 0xE007F) ||
           cp == 0x200D || cp == 0x20E3 || cp == 0x231A || cp == 0x231B ||
           (cp >= 0x23E9 && cp <= 0x23FA) || cp == 0x2139 || cp == 0x2328 || cp == 0x23CF;   /* ℹ ⌨ ⏏ */
}
/* A dropped emoji leaves a mark in the line (control bytes never reach it
 * otherwise), so the space it stood between can go: "Done ✅." was "Done .",
 * "完了 ✅ です" kept a space inside Japanese. KEYCAP_MARK is U+20E3: it also
 * takes the digit, '#' or '*' before it (1️⃣ was read "1"). GAP_MARK is in
 * lineclass.h: the classifier looks for it too. */
#define KEYCAP_MARK '\x02'
static int is_word_cp(uint32_t cp) { return cp >= 0x80 || isalnum((int)cp); }

/* ---- segment layer -------------------------------------------------------- */
static size_t count_chars(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static void call(text_stream *ts, const char *s, size_t n, text_kind kind, const char *lang,
                 uint64_t arrival) {
    ts->out.len = 0;
    tb_put(ts, &ts->out, s, n);
    if (ts->oom) return;
    text_sentence st = {ts->out.p, n, kind, lang, arrival};
    ts->fn(ts->user, &st);
}

static void flush_held(text_stream *ts) {
    if (ts->held.len == 0) return;
    tbuf h = ts->held;
    ts->held = ts->out;       /* swap so call() may use out freely */
    ts->out = h;
    ts->held.len = 0;
    text_sentence st = {h.p, h.len, TEXT_SPEECH, NULL, ts->held_at};
    ts->fn(ts->user, &st);
}

/* "OK." and "はい。" are short sentences; a heading or list item is not. */
static int ends_terminal(const char *s, size_t n) {
    unsigned char c = (unsigned char)s[n - 1];
    if (c == '.' || c == '!' || c == '?') return 1;
    size_t st;
    if (c >= 0x80 && is_script_term(last_cp(s, n, &st))) return 1;
    if (n >= 3) {
        const char *t = s + n - 3;
        return memcmp(t, "\xE3\x80\x82", 3) == 0 || memcmp(t, "\xEF\xBC\x81", 3) == 0 ||
               memcmp(t, "\xEF\xBC\x9F", 3) == 0 || memcmp(t, "\xE2\x80\xA6", 3) == 0 ||
               memcmp(t, "\xEF\xBC\x8E", 3) == 0;
    }
    return 0;
}

/* Punctuation and symbols that say nothing on their own (ASCII aside):
 * Latin-1 signs, general and supplemental punctuation, currency, arrows,
 * mathematical and technical symbols, CJK and fullwidth punctuation, and the
 * punctuation of the other scripts the segmenter knows. */
static int is_mute_cp(uint32_t cp) {
    return (cp >= 0x80 && cp <= 0xBF) || cp == 0xD7 || cp == 0xF7 || (cp >= 0x300 && cp <= 0x36F) ||
           cp == 0x37E || cp == 0x387 || (cp >= 0x55A && cp <= 0x55F) || cp == 0x589 || cp == 0x58A ||
           cp == 0x5BE || cp == 0x5C0 || cp == 0x5C3 || cp == 0x5C6 || cp == 0x5F3 || cp == 0x5F4 ||
           cp == 0x60C || cp == 0x61B || cp == 0x61F || (cp >= 0x66A && cp <= 0x66D) || cp == 0x6D4 ||
           cp == 0x964 || cp == 0x965 || cp == 0xE4F || cp == 0xE5A || cp == 0xE5B ||
           (cp >= 0x104A && cp <= 0x104F) || (cp >= 0x1360 && cp <= 0x1368) || (cp >= 0x2000 && cp <= 0x206F) ||
           (cp >= 0x20A0 && cp <= 0x20FF) || (cp >= 0x2190 && cp <= 0x245F) || (cp >= 0x2500 && cp <= 0x2BFF) ||
           (cp >= 0x2E00 && cp <= 0x2E7F) || (cp >= 0x3000 && cp <= 0x3004) || (cp >= 0x3008 && cp <= 0x3020) ||
           cp == 0x3030 || cp == 0x303D || cp == 0x30FB || (cp >= 0xFE10 && cp <= 0xFE6F) ||
           (cp >= 0xFF01 && cp <= 0xFF0F) || (cp >= 0xFF1A && cp <= 0xFF20) || (cp >= 0xFF3B && cp <= 0xFF40) ||
           (cp >= 0xFF5B && cp <= 0xFF65) || (cp >= 0xFFE0 && cp <= 0xFFFF) || is_dropped_symbol(cp);
}

/* Has s a letter or digit of any script, i.e. something to say? */
static int has_words(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t k;
        uint32_t cp = dec(s + i, n - i, &k);
        if (cp < 0x80 ? isalnum((int)cp) : !is_mute_cp(cp)) return 1;
        i += k;
    }
    return 0;
}

/* Every finished sentence passes here: short ones wait for the next. */
/* Text written mostly in a script without spaces (Japanese, Chinese, Thai):
 * more of its letters are of such scripts than of others. */
static int nospace_text(const char *s, size_t n) {
    long dense = 0, other = 0;
    for (size_t i = 0, k; i < n; i += k ? k : 1) {
        uint32_t cp = dec(s + i, n - i, &k);
        if (is_nospace_script(cp)) dense++;
        else if (cp < 0x80 ? isalpha((int)cp) != 0 : (cp >= 0xC0 && cp < 0x2000) || (cp >= 0xAC00 && cp <= 0xD7AF))
            other++;   /* letters of spaced scripts (Latin, Cyrillic, Arabic, Hangul...), not punctuation */
    }
    return dense > 0 && dense >= other;
}

static void deliver(text_stream *ts, const char *s, size_t n, text_kind kind, const char *lang,
                    uint64_t arrival) {
    if (n == 0) return;
    /* A "sentence" of punctuation alone ("。" after an idle flush of Japanese
     * text, "...", "(!)", "→", what is left of "🎉!") says nothing, and the
     * translator turns it into invented words ("本気になって。"): dropped. */
    if (kind == TEXT_SPEECH && !has_words(s, n)) return;
    if (kind == TEXT_SPEECH) ts->secret_said = 0;
    if (kind != TEXT_SPEECH) {
        flush_held(ts);
        call(ts, s, n, kind, lang, arrival);
        return;
    }
    if (ts->lk != LK_PARA) {
        /* List items and headings are boundaries of their own: never held,
         * never merged with what comes before or after. */
        flush_held(ts);
        call(ts, s, n, TEXT_SPEECH, NULL, arrival);
        return;
    }
    /* A short sentence waits to be merged with the next one only in the
     * same kind of script: "はい、了解です。 The build passed." went to the
     * translator whole (the Japanese with it), "Done. 次に…" to the Japanese
     * voice untranslated; the translate stage decides per sentence. */
    if (ts->held.len && nospace_text(ts->held.p, ts->held.len) != nospace_text(s, n)) flush_held(ts);
    if (ts->held.len) {
        /* Japanese joins without a space: "はい。次に…" */
        size_t st = ts->held.len - 1, k;
        while (st > 0 && ((unsigned char)ts->held.p[st] & 0xC0) == 0x80) st--;
        if (!is_nospace_script(dec(ts->held.p + st, ts->held.len - st, &k)) || !is_nospace_script(dec(s, n, &k)))
            tb_put(ts, &ts->held, " ", 1);
        tb_put(ts, &ts->held, s, n);
        if (ts->oom) return;
        s = ts->held.p;
        n = ts->held.len;
    }
    if (!ts->force && ts->p.merge_short_chars && count_chars(s, n) <= ts->p.merge_short_chars &&
        ends_terminal(s, n)) {
        if (s != ts->held.p) tb_put(ts, &ts->held, s, n);
        ts->held_at = arrival;
        return;
    }
    if (s == ts->held.p) {
        ts->held_at = arrival;
        flush_held(ts);
    } else {
        call(ts, s, n, TEXT_SPEECH, NULL, arrival);
    }
}

static void secret_notice(text_stream *ts);

static void emit_sentence(text_stream *ts) {
    size_t n = ts->sent.len;
    while (n > 0 && ts->sent.p[n - 1] == ' ') n--;
    if (n) deliver(ts, ts->sent.p, n, TEXT_SPEECH, NULL, ts->now);
    ts->sent_gen++;
    ts->sent.len = 0;
    ts->sent_chars = 0;
    ts->cjk_end = 0;
    ts->etc_wait = 0;
    ts->ord_at = 0;
    secret_notice(ts);
}

static int is_conj(const char *s, size_t n) {
    static const char *const w[] = {"and ", "but ", "or ", "so ", "because ", "which ",
                                    "while ", "although ", "then ", "when ", "where ", NULL};
    for (int i = 0; w[i]; i++) {
        size_t l = strlen(w[i]);
        if (n >= l && memcmp(s, w[i], l) == 0) return 1;
    }
    return 0;
}

/* A sentence over the limit is cut at the best clause boundary in its later
 * two thirds: ';' ':' > ',' '、' > before a conjunction > any space. */
/* Combining marks (and joiners) that belong to the character before them. */
static int is_combining(uint32_t cp) {
    return (cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x0483 && cp <= 0x0489) || (cp >= 0x0591 && cp <= 0x05C7) ||
           (cp >= 0x0610 && cp <= 0x061A) || (cp >= 0x064B && cp <= 0x065F) || cp == 0x0670 ||
           (cp >= 0x0900 && cp <= 0x0903) || (cp >= 0x093A && cp <= 0x094F) || (cp >= 0x0951 && cp <= 0x0957) ||
           (cp >= 0x0962 && cp <= 0x0963) || (cp >= 0x0981 && cp <= 0x0983) || (cp >= 0x09BC && cp <= 0x09D7) ||
           cp == 0x0E31 || (cp >= 0x0E34 && cp <= 0x0E3A) || (cp >= 0x0E47 && cp <= 0x0E4E) || cp == 0x0EB1 ||
           (cp >= 0x0EB4 && cp <= 0x0EBC) || (cp >= 0x0EC8 && cp <= 0x0ECD) || (cp >= 0x1AB0 && cp <= 0x1AFF) ||
           (cp >= 0x1DC0 && cp <= 0x1DFF) || cp == 0x200C || cp == 0x200D || (cp >= 0x20D0 && cp <= 0x20FF) ||
           (cp >= 0x3099 && cp <= 0x309A) || (cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0xFE20 && cp <= 0xFE2F);
}

static void cut_long(text_stream *ts) {
    const char *s = ts->sent.p;
    size_t n = ts->sent.len, chars = 0, min_chars = ts->p.max_sentence_chars / 3;
    size_t best = 0;
    int best_cls = -1;
    for (size_t i = 0; i < n; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) chars++;
        if (chars < min_chars) continue;
        int cls = -1;
        size_t at = 0;
        unsigned char c = (unsigned char)s[i];
        if ((c == ';' || c == ':') && i + 1 < n && s[i + 1] == ' ') { cls = 3; at = i + 1; }
        else if (c == ',' && i + 1 < n && s[i + 1] == ' ') { cls = 2; at = i + 1; }
        else if (c == 0xE3 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
                 (unsigned char)s[i + 2] == 0x81) { cls = 2; at = i + 3; }        /* 、 */
        else if (c == 0xEF && i + 2 < n && (unsigned char)s[i + 1] == 0xBC &&
                 ((unsigned char)s[i + 2] == 0x8C || (unsigned char)s[i + 2] == 0x9B ||
                  (unsigned char)s[i + 2] == 0x9A)) { cls = 3; at = i + 3; }      /* ，；： */
        else if (c == 0xD8 && i + 2 < n && ((unsigned char)s[i + 1] == 0x8C || (unsigned char)s[i + 1] == 0x9B) &&
                 s[i + 2] == ' ') { cls = (unsigned char)s[i + 1] == 0x9B ? 3 : 2; at = i + 2; }   /* Arabic ، ؛ */
        else if (c == ' ' && i + 1 < n && is_conj(s + i + 1, n - i - 1)) { cls = 1; at = i; }
        else if (c == ' ') { cls = 0; at = i; }
        if (cls >= 0 && cls >= best_cls && at < n) { best_cls = cls; best = at; }
    }
    if (best_cls < 0) {   /* no boundary at all (e.g. CJK without punctuation): cut before the last character */
        best = n - 1;
        while (best > 0 && ((unsigned char)s[best] & 0xC0) == 0x80) best--;
        /* ... and its marks: a cut before a combining mark (Thai ั, a
         * Devanagari vowel sign, an accent) left it alone at the start of
         * the next part, its letter in this one */
        size_t k;
        while (best > 0 && is_combining(dec(s + best, n - best, &k))) {
            best--;
            while (best > 0 && ((unsigned char)s[best] & 0xC0) == 0x80) best--;
        }
        if (best == 0) best = n;   /* all one cluster: kept whole */
    }
    size_t keep_from = best;
    while (keep_from < n && s[keep_from] == ' ') keep_from++;
    size_t e = best;
    while (e > 0 && s[e - 1] == ' ') e--;
    if (e) deliver(ts, s, e, TEXT_SPEECH, NULL, ts->now);
    ts->sent_gen++;
    ts->ord_at = 0;   /* the text moved: a waiting "3." is decided as no end */
    memmove(ts->sent.p, ts->sent.p + keep_from, n - keep_from);
    ts->sent.len = n - keep_from;
    ts->sent_chars = count_chars(ts->sent.p, ts->sent.len);
}

static int starts_ci(const char *s, size_t n, const char *pre) {
    size_t l = strlen(pre);
    if (n < l) return 0;
    for (size_t i = 0; i < l; i++)
        /* both sides as unsigned: a plain char pattern byte >= 0x80 is negative and never matched */
        if (tolower((unsigned char)s[i]) != tolower((unsigned char)pre[i])) return 0;
    return 1;
}

/* The byte length of a letter at w (n bytes): an ASCII letter, or a
 * two-byte UTF-8 letter of Latin-1 and Latin Extended, Greek or Cyrillic
 * ("т.е." is an initialism like "i.e."); 0 for anything else. */
static size_t abbr_letter(const char *w, size_t n) {
    unsigned char c = (unsigned char)w[0];
    if (c < 0x80) return isalpha(c) ? 1 : 0;
    if (n < 2 || ((unsigned char)w[1] & 0xC0) != 0x80 || c < 0xC3 || c > 0xD3) return 0;
    uint32_t cp = ((uint32_t)(c & 0x1F) << 6) | ((unsigned char)w[1] & 0x3F);
    if (cp == 0xD7 || cp == 0xF7) return 0;   /* × ÷ */
    return (cp >= 0xC0 && cp <= 0x24F) || (cp >= 0x386 && cp <= 0x3FF) || (cp >= 0x400 && cp <= 0x4FF) ? 2 : 0;
}

/* The case of a letter of a cased script (Latin with its Latin-1,
 * Extended-A/B and Vietnamese letters, Greek, Cyrillic, Armenian): 1 lower,
 * 2 upper, 0 anything else (digits, punctuation, scripts without case). */
static int letter_case(uint32_t cp) {
    if (cp < 0x80) return islower((int)cp) ? 1 : isupper((int)cp) ? 2 : 0;
    if (cp < 0xC0) return cp == 0xAA || cp == 0xBA || cp == 0xB5 ? 1 : 0;
    if (cp <= 0xFF) return cp == 0xD7 || cp == 0xF7 ? 0 : cp >= 0xDF ? 1 : 2;
    if (cp <= 0x17F) {   /* pairs, upper first; odd upper in 0x139..0x148 and 0x179..0x17E */
        if (cp == 0x138 || cp == 0x149 || cp == 0x17F) return 1;
        if (cp == 0x178) return 2;
        if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E)) return cp & 1 ? 2 : 1;
        return cp & 1 ? 1 : 2;
    }
    if (cp >= 0x1CD && cp <= 0x1DC) return cp & 1 ? 2 : 1;
    if (cp >= 0x1DE && cp <= 0x233) return cp & 1 ? 1 : 2;   /* Ș ș Ț ț ... */
    if (cp >= 0x250 && cp <= 0x2AF) return 1;                 /* IPA */
    if (cp == 0x386 || (cp >= 0x388 && cp <= 0x38F) || (cp >= 0x391 && cp <= 0x3AB)) return 2;
    if (cp == 0x390 || (cp >= 0x3AC && cp <= 0x3CE)) return 1;
    if (cp >= 0x400 && cp <= 0x42F) return 2;
    if (cp >= 0x430 && cp <= 0x45F) return 1;
    if (cp >= 0x460 && cp <= 0x4FF) return cp >= 0x482 && cp <= 0x489 ? 0 : cp & 1 ? 1 : 2;
    if (cp >= 0x531 && cp <= 0x556) return 2;
    if (cp >= 0x561 && cp <= 0x587) return 1;
    if (cp >= 0x1E00 && cp <= 0x1EFF) return cp >= 0x1E96 && cp <= 0x1E9F ? 1 : cp & 1 ? 1 : 2;
    if (cp >= 0x1F00 && cp <= 0x1FFF) return (cp & 0xF) < 8 ? 1 : 2;   /* polytonic Greek, roughly */
    return 0;
}

/* What a word ending in '.' says about a sentence end before a space. */
enum {
    AB_NONE,   /* no abbreviation: the '.' ends the sentence */
    AB_GO,     /* never an end: "e.g.", "Dr.", "z.B.", "bzw.", "p. ex." */
    AB_ETC,    /* the next character decides, as after "etc.": "No. 5" vs "The answer is no. We" */
    AB_LOWER,  /* only a lower-case letter next goes on: "в 2024 г. мы", "100 руб. Потом" */
    AB_WORD    /* the next word decides: "z. B.", "S. 5", vs "Plan B. Then" */
};

/* Has the word a vowel letter (Latin with its accented vowels, Greek,
 * Cyrillic)? "bzw", "гг", "др", "κλπ" have none. */
static int has_vowel(const char *w, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t k;
        uint32_t cp = dec(w + i, n - i, &k);
        i += k;
        if (cp < 0x80) {
            if (cp && strchr("aeiouyAEIOUY", (int)cp)) return 1;
        } else if (cp >= 0xC0 && cp <= 0x24F) {
            /* accented Latin letters are vowels but for these consonants */
            static const uint32_t cons[] = {0xC7, 0xE7, 0xD1, 0xF1, 0xDF, 0xD0, 0xF0, 0xDE, 0xFE, 0x106, 0x107, 0x10C,
                                            0x10D, 0x10E, 0x10F, 0x110, 0x111, 0x11E, 0x11F, 0x141, 0x142, 0x143, 0x144,
                                            0x147, 0x148, 0x158, 0x159, 0x15A, 0x15B, 0x15E, 0x15F, 0x160, 0x161, 0x162,
                                            0x163, 0x164, 0x165, 0x179, 0x17A, 0x17B, 0x17C, 0x17D, 0x17E, 0x218, 0x219,
                                            0x21A, 0x21B};
            int c = 0;
            for (size_t j = 0; j < sizeof cons / sizeof cons[0]; j++) c |= cons[j] == cp;
            if (!c) return 1;
        } else if (cp >= 0x386 && cp <= 0x3CE) {
            uint32_t g = cp >= 0x391 && cp <= 0x3A9 ? cp + 0x20 : cp;
            if ((g >= 0x386 && g <= 0x390) || (g >= 0x3AC && g <= 0x3B0) || (g >= 0x3CA && g <= 0x3CE) || g == 0x3B1 ||
                g == 0x3B5 || g == 0x3B7 || g == 0x3B9 || g == 0x3BF || g == 0x3C5 || g == 0x3C9)
                return 1;
        } else if (cp >= 0x400 && cp <= 0x45F) {
            uint32_t c = cp < 0x410 ? cp + 0x50 : cp < 0x430 ? cp + 0x20 : cp;
            if (c == 0x430 || c == 0x435 || c == 0x438 || c == 0x43E || c == 0x443 || c == 0x44B || c == 0x44D ||
                c == 0x44E || c == 0x44F || c == 0x451 || c == 0x454 || c == 0x456 || c == 0x457)
                return 1;
        } else {
            return 1;   /* another script: not judged */
        }
    }
    return 0;
}

/* A letter and a dot ("z.", "B.", "т."). */
static int letter_dot(const char *w, size_t n) {
    size_t k = n ? abbr_letter(w, n) : 0;
    return k && n == k + 1 && w[k] == '.';
}

/* Abbreviations after which '.' plus space does not end a sentence (AB_GO),
 * or may not (AB_ETC, AB_LOWER, AB_WORD); w is the word (n bytes), prev the
 * word before it (pn bytes; 0: none). */
static int abbrev_class(const char *w, size_t n, const char *prev, size_t pn) {
    static const char *const ab[] = {"e.g.", "i.e.", "mr.", "mrs.", "dr.", "prof.", "sr.",
                                     "jr.", "vs.", "cf.", "approx.", "st.", "eq.",
                                     "al.", "p.", "pp.", "ca.", "resp.", "incl.", "excl.", "esp.", "viz.",
                                     /* "Jan. 2024", "Sec. 4", "Ch. 3" were cut after the dot */
                                     "jan.", "feb.", "apr.", "jun.", "jul.", "aug.", "sep.", "oct.",
                                     "nov.", "dec.", "sect.", "ch.", "ref.", "dept.", "ibid.",
                                     /* German: "bzw.", "vgl. Abschnitt 3", "Nr. 5", "Abs. 2", "ggf. Tests" */
                                     "bzw.", "evtl.", "ggf.", "inkl.", "vgl.", "nr.", "abs.", "bspw.", "sog.", "abb.",
                                     "kap.", "bd.", "hrsg.", "insb.", "gg\xc3\xbc.", "zzgl.", "mrd.", "jh.", "str.",
                                     "tel.",
                                     /* French "c.-à-d.", "réf.", "tél." */
                                     "c.-\xc3\xa0-d.", "r\xc3\xa9" "f.", "t\xc3\xa9l.",
                                     /* Spanish, Portuguese, Italian: "Sra.", "pág.", "núm.", "EE.UU.", "Sig.", "Dott." */
                                     "sra.", "sras.", "sres.", "dra.", "p\xc3\xa1g.", "p\xc3\xa1gs.", "n\xc3\xbam.",
                                     "aprox.", "ud.", "uds.", "vd.", "ee.uu.", "pag.", "sig.", "dott.",
                                     /* Dutch, Polish: "bijv.", "np.", "tzn.", "tj.", "ul." */
                                     "bijv.", "bv.", "nl.", "evt.", "dhr.", "mevr.", "zgn.", "np.", "tzn.", "tj.", "ul.",
                                     /* Russian, Ukrainian: see, figure, page, for example, compare, street, see, prof. */
                                     "\xD1\x81\xD0\xBC.", "\xD1\x80\xD0\xB8\xD1\x81.", "\xD1\x81\xD1\x82\xD1\x80.",
                                     "\xD0\xBD\xD0\xB0\xD0\xBF\xD1\x80.", "\xD1\x81\xD1\x80.", "\xD1\x83\xD0\xBB.",
                                     "\xD0\xB4\xD0\xB8\xD0\xB2.", "\xD0\xBF\xD1\x80\xD0\xBE\xD1\x84.", NULL};
    /* Also words ("Mar." and Spanish "mar", "Sec." and French "sec", "Ms."
     * and "5 ms.", "Mio." and Italian "mio"): with a capital they go on, in
     * lower case the next character decides. */
    static const char *const wordlike[] = {"ms.", "mar.", "sept.", "vol.", "sec.", "fig.", "art.", "tab.", "cap.",
                                           "mio.", NULL};
    /* May end a sentence in any case ("The answer is no. We", "Apple Inc.
     * It", "in your env. Then"): the next character decides ("No. 5"). */
    static const char *const etc_like[] = {"no.", "ok.", "min.", "max.", "avg.", "inc.", "ltd.", "co.", "corp.",
                                           "env.", NULL};
    char low[16];
    if (n >= sizeof low) return AB_NONE;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)w[i], d = i + 1 < n ? (unsigned char)w[i + 1] : 0;
        low[i] = (char)tolower(c);
        /* Cyrillic capitals А..Я (D0 90..D0 AF) as lower case (D0 B0..D0 BF, D1 80..D1 8F): "См." */
        if (c == 0xD0 && d >= 0x90 && d <= 0xAF) {
            low[i] = (char)(d < 0xA0 ? 0xD0 : 0xD1);
            low[i + 1] = (char)(d < 0xA0 ? d + 0x20 : d - 0x20);
            i++;
        }
    }
    low[n] = '\0';
    for (int i = 0; ab[i]; i++)
        if (strcmp(low, ab[i]) == 0) return AB_GO;
    for (int i = 0; wordlike[i]; i++)
        if (strcmp(low, wordlike[i]) == 0) return islower((unsigned char)w[0]) ? AB_ETC : AB_GO;
    for (int i = 0; etc_like[i]; i++)
        if (strcmp(low, etc_like[i]) == 0) return AB_ETC;
    if (n == 2 && w[0] == 'M') return AB_GO;   /* French "M. Dupont" */
    if (pn == 2 && starts_ci(prev, 2, "ad") && strcmp(low, "es.") == 0) return AB_GO;   /* Italian "ad es." */
    /* Groups of letters each closed by a dot. Initialisms and degrees: "U.S.",
     * "a.m.", "Ph.D.", "M.Sc.", "т.е.", two or more groups of one or two
     * letters, one of them a single letter (the two-letter groups of "Ph.D."
     * made it end a sentence before "degree"); written with spaces ("z. B.",
     * "d. h.", "p. ex.", "p. ej.", "т. е."), a group of one or two letters
     * after a single letter and a dot. */
    size_t groups = 0, singles = 0, longest = 0, letters = 0, lower = 0;
    for (size_t i = 0; i < n;) {
        size_t l = 0, b = 0, k, kk;
        while (i + b < n && (k = abbr_letter(w + i + b, n - i - b)) > 0) {
            lower += letter_case(dec(w + i + b, k, &kk)) == 1;
            b += k;
            l++;
        }
        if (l < 1 || i + b >= n || w[i + b] != '.') return AB_NONE;
        groups++;
        singles += l == 1;
        letters += l;
        if (l > longest) longest = l;
        i += b + 1;
    }
    if (longest <= 2 && singles >= 1 && groups >= 2) return AB_GO;
    if (groups != 1) return AB_NONE;
    if (letters <= 2 && pn && letter_dot(prev, pn)) return AB_GO;
    /* a single letter: "S. 5", "z. B.", "в 2024 г. мы" go on, "Plan B. Then" ends */
    if (letters == 1) return AB_WORD;
    /* a short lower-case word without a vowel is an abbreviation ("гг.",
     * "др.", "ff."), as are the units "тыс." "руб." (a sentence may start
     * with a lower-case word: "... is a sign. src/a.c is green" is two) */
    static const char *const units[] = {"\xD1\x82\xD1\x8B\xD1\x81.", "\xD1\x80\xD1\x83\xD0\xB1.",
                                        "\xD0\xBA\xD0\xBE\xD0\xBF.", "\xD1\x82\xD0\xB8\xD1\x81.", "tys.", NULL};
    for (int i = 0; units[i]; i++)
        if (strcmp(low, units[i]) == 0) return lower == letters ? AB_LOWER : AB_NONE;
    if (letters <= 4 && lower == letters && !has_vowel(w, n)) return AB_LOWER;
    return AB_NONE;
}

/* The end of the sentence so far without its closing quotes and brackets
 * ("stop.\"", "why?)", German „Wirklich?“), and without a space before a
 * closing guillemet (French "« Vraiment ? »"). */
static size_t skip_closers(const char *s, size_t n) {
    while (n > 0) {
        size_t st;
        uint32_t cp = last_cp(s, n, &st);
        if (!is_closer(cp) && cp != 0x201C && cp != 0x2018) break;
        n = st;
        if (cp == 0xBB && n > 1 && s[n - 1] == ' ') n--;
    }
    return n;
}

/* Greek writes its question mark as ';' (U+037E, which NFC turns into
 * U+003B): a ';' right after a Greek letter ends a sentence. */
static int greek_question(const char *s, size_t n) {
    size_t st;
    if (n < 3 || s[n - 1] != ';') return 0;
    uint32_t cp = last_cp(s, n - 1, &st);
    return (cp >= 0x370 && cp <= 0x3FF) || (cp >= 0x1F00 && cp <= 0x1FFF);
}

/* Does the sentence so far end with '.', '!', '?' or '…' (plus closers) that
 * a following space makes final? AB_NONE: yes; the other AB_* as for an
 * abbreviation; -1: no sentence end at all. */
static int ends_sentence(const text_stream *ts) {
    const char *s = ts->sent.p;
    size_t n = skip_closers(s, ts->sent.len);
    if (n == 0) return -1;
    unsigned char c = (unsigned char)s[n - 1];
    if (c == '!' || c == '?') return AB_NONE;
    if (n >= 3 && memcmp(s + n - 3, "\xE2\x80\xA6", 3) == 0) return AB_NONE;   /* … */
    size_t st;
    if (c >= 0x80 && is_script_term(last_cp(s, n, &st))) return AB_NONE;   /* ؟ ۔ । ॥ ... */
    if (greek_question(s, n)) return AB_NONE;
    if (c != '.') return -1;
    size_t w = n;
    while (w > 0 && s[w - 1] != ' ') w--;
    size_t pe = w ? w - 1 : 0, p = pe;   /* the word before it: "z." of "z. B." */
    while (p > 0 && s[p - 1] != ' ') p--;
    while (w < n && strchr("([{\"'", s[w])) w++;
    while (p < pe && strchr("([{\"'", s[p])) p++;
    /* "(a, b, etc.) more": a closed "etc." goes on */
    if (n < ts->sent.len && n - w == 4 && starts_ci(s + w, 4, "etc.")) return AB_GO;
    return abbrev_class(s + w, n - w, s + p, pe - p);
}

/* "etc." ends a sentence only when what follows does not continue it; so
 * does a trailing ellipsis: "Wait... what happened?" and "It is slow… but
 * it works." are one sentence each, "I see... Let me check." is two; and a
 * quoted "?" or "!": He asked "why?" and left. */
static int ends_etc(const text_stream *ts) {
    size_t n = ts->sent.len, z = skip_closers(ts->sent.p, n);   /* "wait..." and */
    if ((z >= 3 && memcmp(ts->sent.p + z - 3, "\xE2\x80\xA6", 3) == 0) ||
        (z >= 4 && memcmp(ts->sent.p + z - 3, "...", 3) == 0 && ts->sent.p[z - 4] != '.'))
        return 1;
    /* a quoted question or exclamation inside a sentence: asked "why?" and left */
    if (z < n && z >= 2 && (ts->sent.p[z - 1] == '?' || ts->sent.p[z - 1] == '!')) return 1;
    /* "etc." and its kin: German "usw.", Italian "ecc.", Dutch "enz.", Polish
     * "itd." and "itp.", Russian "т.д." and "т.п." ("и т.д.", "и т. д."),
     * Greek "κ.λπ." */
    static const char *const etc[] = {"etc.", "usw.", "usf.", "ecc.", "enz.", "itd.", "itp.", "\xD1\x82.\xD0\xB4.",
                                      "\xD1\x82.\xD0\xBF.", "\xD1\x82. \xD0\xB4.", "\xD1\x82. \xD0\xBF.",
                                      "\xCE\xBA.\xCE\xBB\xCF\x80.", "\xCE\xBA\xCE\xBB\xCF\x80.", NULL};
    if (n < 4 || ts->sent.p[n - 1] != '.') return 0;
    for (int i = 0; etc[i]; i++) {
        size_t l = strlen(etc[i]);
        if (n < l || (n > l && ts->sent.p[n - l - 1] != ' ' && ts->sent.p[n - l - 1] != '(' && ts->sent.p[n - l - 1] != ','))
            continue;
        if (starts_ci(ts->sent.p + n - l, l, etc[i])) return 1;
    }
    return 0;
}

/* A number and a '.' may be an ordinal: "am 3. Oktober", "den 1. Mai"
 * (German, the Scandinavian languages), "der 2. Versuch", "im 19.
 * Jahrhundert". The sentence so far ends in 1 to 3 digits and a '.'.
 * ORD_ARTICLE: after an article or a preposition with one ("der", "im",
 * "zum"): an ordinal, no end. ORD_DAY (1 to 31), ORD_NUM: the next word,
 * once complete, decides (a month or a lower-case word goes on). */
enum { ORD_NONE, ORD_DAY, ORD_NUM, ORD_LETTER, ORD_ARTICLE };
static int ends_day(const text_stream *ts) {
    static const char *const art[] = {"der", "die", "das", "dem", "den", "des", "am", "im", "zum", "zur", "vom",
                                      "beim", "ein", "eine", "einem", "einen", "einer", "eines", "jede", "jeder",
                                      "jedes", "jedem", "jeden", "diese", "dieser", "dieses", "diesem", "diesen",
                                      "sein", "seine", "seinem", "seinen", "seiner", "ihr", "ihre", "ihrem", "ihren",
                                      "ihrer", "unser", "unsere", "unserem", "unseren", NULL};
    const char *s = ts->sent.p;
    size_t n = ts->sent.len, d = 0;
    if (n < 2 || s[n - 1] != '.') return ORD_NONE;
    while (d < n - 1 && d < 4 && isdigit((unsigned char)s[n - 2 - d])) d++;
    if (d == 0 || d > 3 || (n - 1 - d > 0 && s[n - 2 - d] != ' ' && s[n - 2 - d] != '(')) return ORD_NONE;
    size_t e = n - 1 - d;   /* the word before the number: s[b, e - 1) */
    if (e > 1 && s[e - 1] == ' ') {
        size_t b = e - 1;
        while (b > 0 && s[b - 1] != ' ') b--;
        for (int i = 0; art[i]; i++)
            if (strlen(art[i]) == e - 1 - b && starts_ci(s + b, e - 1 - b, art[i])) return ORD_ARTICLE;
    }
    int day = 0;
    for (size_t i = 0; i < d; i++) day = day * 10 + (s[n - 1 - d + i] - '0');
    return day >= 1 && day <= 31 && d <= 2 ? ORD_DAY : ORD_NUM;
}
static int is_month(const char *w, size_t n) {
    static const char *const m[] = {"januar", "j\xc3\xa4nner", "februar", "m\xc3\xa4rz", "mars", "april", "mai", "juni",
                                    "juli", "august", "september", "oktober", "november", "dezember", "december",
                                    "desember", "jan", "feb", "m\xc3\xa4r", "apr", "jun", "jul", "aug", "sep", "sept",
                                    "okt", "nov", "dez", "dec", NULL};
    while (n && strchr(".,;:!?)\"'", w[n - 1])) n--;
    for (int i = 0; m[i]; i++) {
        size_t k = 0;   /* ASCII case folded; "ä" compared as bytes (starts_ci is for ASCII names) */
        while (k < n && m[i][k] && tolower((unsigned char)w[k]) == (unsigned char)m[i][k]) k++;
        if (k == n && !m[i][k]) return 1;
    }
    return 0;
}
/* The word after "3. " or "S. " is complete (it ends at s[n)): a lower-case
 * word goes on ("3. oktober", "в 2024 г. мы"), and after a number a month
 * ("am 3. Oktober"), after a single letter a digit ("S. 5") or another
 * letter and a dot ("z. B."); any other word starts the next sentence (it
 * is cut before it). */
static void day_decide(text_stream *ts) {
    size_t at = ts->ord_at, n = ts->sent.len;
    int kind = ts->ord_kind;
    ts->ord_at = 0;
    if (at == 0 || at > n) return;
    const char *w = ts->sent.p + at;
    size_t wl = n - at, a = 0, k;
    while (a < wl && strchr("([{\"'", w[a]) && w[a]) a++;
    if (a + 1 < wl && (unsigned char)w[a] == 0xC2 && (unsigned char)w[a + 1] == 0xAB) a += 2;   /* « */
    uint32_t cp = a < wl ? dec(w + a, wl - a, &k) : 0;
    if (letter_case(cp) == 1) return;
    if (kind == ORD_DAY && is_month(w, wl)) return;
    if (kind == ORD_LETTER) {
        size_t e = wl;
        while (e > a + 2 && strchr(",;:)", w[e - 1])) e--;
        if ((cp >= '0' && cp <= '9') || letter_dot(w + a, e - a)) return;
    }
    deliver(ts, ts->sent.p, at - 1, TEXT_SPEECH, NULL, ts->now);
    ts->sent_gen++;
    memmove(ts->sent.p, ts->sent.p + at, n - at);
    ts->sent.len = n - at;
    ts->sent_chars = count_chars(ts->sent.p, ts->sent.len);
    ts->cjk_end = 0;
    secret_notice(ts);
}

/* A French quotation still open: more « than » so far. */
static int open_guillemet(const text_stream *ts) {
    int depth = 0;
    for (size_t i = 0; i + 1 < ts->sent.len; i++)
        if ((unsigned char)ts->sent.p[i] == 0xC2) depth += ts->sent.p[i + 1] == '\xAB' ? 1 : ts->sent.p[i + 1] == '\xBB' ? -1 : 0;
    return depth > 0;
}

static void seg_space(text_stream *ts) {
    if (ts->sent.len == 0 || ts->sent.p[ts->sent.len - 1] == ' ') return;
    if (ts->ord_at) day_decide(ts);
    int ord = ts->cjk_end ? ORD_NONE : ends_day(ts);
    int end = ts->cjk_end ? AB_NONE : ord ? AB_GO : ends_etc(ts) ? AB_ETC : ends_sentence(ts);
    if (ord == ORD_DAY || ord == ORD_NUM || end == AB_WORD) {
        ts->ord_at = ts->sent.len + 1;
        ts->ord_kind = ord ? ord : ORD_LETTER;
    } else if (end == AB_ETC || end == AB_LOWER) {
        /* "a, b, etc. and c" goes on, "a, b, etc. Next" does not: wait for the next character
         * (likewise "Wait... what" and "Wait... Then") */
        ts->etc_wait = end == AB_ETC ? WAIT_ETC : WAIT_LOWER;
    } else if (end == AB_NONE) {
        /* « Vraiment ? » : the closing guillemet after its space stays with the sentence */
        if (ts->cjk_end || !open_guillemet(ts)) {
            emit_sentence(ts);
            return;
        }
        ts->etc_wait = WAIT_CLOSE;
    }
    tb_put(ts, &ts->sent, " ", 1);
    ts->sent_chars++;
}

/* 「はい。」と言った: a sentence end inside Japanese corner brackets is no end
 * of the sentence around them when it goes on after the closing bracket in
 * hiragana: any after a quotation that opened inside the sentence
 * (彼は「本当?」と言った, パスワードは「abc!」です), only the quoting particle
 * と or って after one that opened it (「はい。」と言った; 「完了。」これで is two). */
static int quote_goes_on(const text_stream *ts, uint32_t cp) {
    if (cp < 0x3041 || cp > 0x309F) return 0;
    const char *s = ts->sent.p;
    size_t n = ts->sent.len, st;
    if (n == 0) return 0;
    uint32_t last = last_cp(s, n, &st);
    if (last != 0x300D && last != 0x300F) return 0;
    int depth = 0;
    for (size_t i = n; i > 0; i = st) {
        uint32_t c = last_cp(s, i, &st);
        if (c == 0x300D || c == 0x300F) depth++;
        else if ((c == 0x300C || c == 0x300E) && --depth == 0) {
            while (st > 0 && s[st - 1] == ' ') st--;
            return st > 0 || cp == 0x3068 || cp == 0x3063;   /* と っ */
        }
    }
    return cp == 0x3068 || cp == 0x3063;
}

static void seg_put(text_stream *ts, const char *p, size_t k, uint32_t cp) {
    if (ts->etc_wait) {
        int mode = ts->etc_wait;
        ts->etc_wait = 0;
        /* a closing guillemet after its space ("fini. »") is the sentence's: the next space decides;
         * a lower-case letter (Latin, Greek, Cyrillic: "и т.д. лежат", "Подожди... что") goes on,
         * after "etc." also a digit or ( , ; : ) */
        int lc = letter_case(cp) == 1;
        if (cp != 0xBB &&
            !(mode == WAIT_LOWER && lc) &&
            !(mode == WAIT_ETC && (lc || (cp >= '0' && cp <= '9') || cp == '(' || cp == ',' || cp == ';' ||
                                   cp == ':' || cp == ')')))
            emit_sentence(ts);
    }
    if (ts->cjk_end) {
        /* "３．１４": a fullwidth decimal point, not a full stop */
        size_t pst;
        int decimal = ((cp < 0x80 && isdigit((int)cp)) || (cp >= 0xFF10 && cp <= 0xFF19)) && ts->sent.len >= 3 &&
                      last_cp(ts->sent.p, ts->sent.len, &pst) == 0xFF0E;
        if (decimal || quote_goes_on(ts, cp)) ts->cjk_end = 0;
        else if (!is_closer(cp) && !is_cjk_term(cp)) emit_sentence(ts);
    } else if (is_nospace_script(cp) && !is_closer(cp) && ts->sent.len) {
        /* "完了!次": an ASCII terminator inside CJK text; after its closers, like 。
         * ("「完了!」次", never "「完了!" and "」次") */
        size_t z = ts->sent.len, st;
        while (z > 0 && is_closer(last_cp(ts->sent.p, z, &st))) z = st;
        if (z > 0 && (ts->sent.p[z - 1] == '!' || ts->sent.p[z - 1] == '?') && !quote_goes_on(ts, cp)) emit_sentence(ts);
    }
    tb_put(ts, &ts->sent, p, k);
    ts->sent_chars++;
    if (is_cjk_term(cp)) ts->cjk_end = 1;
    if (ts->p.max_sentence_chars && ts->sent_chars > ts->p.max_sentence_chars) cut_long(ts);
}

static void seg_put_str(text_stream *ts, const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t k;
        uint32_t cp = dec(s + i, n - i, &k);
        if (cp == ' ') seg_space(ts);
        else seg_put(ts, s + i, k, cp);
        i += k;
    }
}

/* ---- word layer ----------------------------------------------------------- */

/* "https://www.github.com/a/b?x" -> "github.com"; 0 when not a URL. */
/* CommonMark's email autolink: <local@domain>, the local part of letters,
 * digits and .!#$%&'*+/=?^_`{|}~-, the domain dot-separated labels of
 * letters, digits and '-' (none starting or ending with it). */
static int email_autolink(const char *t, size_t n) {
    size_t i = 0;
    while (i < n && (isalnum((unsigned char)t[i]) || (t[i] && strchr(".!#$%&'*+/=?^_`{|}~-", t[i])))) i++;
    if (i == 0 || i >= n || t[i] != '@') return 0;
    size_t label = 0;
    for (i++; i < n; i++) {
        if (isalnum((unsigned char)t[i])) label++;
        else if (t[i] == '-' && label) label++;
        else if (t[i] == '.' && label && t[i - 1] != '-') label = 0;
        else return 0;
    }
    return label > 0 && t[n - 1] != '-';
}

static size_t url_domain(const char *s, size_t n, const char **out) {
    size_t i;
    if (starts_ci(s, n, "https://")) i = 8;
    else if (starts_ci(s, n, "http://")) i = 7;
    else if (starts_ci(s, n, "ftp://")) i = 6;
    else if (starts_ci(s, n, "www.") && n > 4) i = 0;
    else return 0;
    size_t e = i;
    while (e < n && s[e] != '/' && s[e] != '?' && s[e] != '#') e++;
    for (size_t k = i; k < e; k++)
        if (s[k] == '@') i = k + 1;   /* user:pass@host */
    for (size_t k = i; k < e; k++)
        if (s[k] == ':') { e = k; break; }   /* :port */
    if (e - i > 4 && starts_ci(s + i, e - i, "www.")) i += 4;
    if (e <= i) return 0;
    *out = s + i;
    return e - i;
}

/* "/home/me/src/app/main.c" -> "main.c"; 0 when not a long path. */
static size_t path_last(const char *s, size_t n, const char **out) {
    size_t seps = 0;
    int other = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '/' || s[i] == '\\') seps++;
        else if (!isdigit((unsigned char)s[i]) && s[i] != '.' && s[i] != '-') other = 1;
    }
    if (seps == 0 || !other) return 0;   /* dates and fractions stay */
    int absolute = (s[0] == '/' && n > 1) || starts_ci(s, n, "~/") || starts_ci(s, n, "./") ||
                   starts_ci(s, n, "../") ||
                   (n > 3 && isalpha((unsigned char)s[0]) && s[1] == ':' && (s[2] == '\\' || s[2] == '/'));
    if (!absolute && seps < 2) return 0;  /* "and/or", "src/main.c" stay */
    /* a relative path needs a file-like part, a '.' inside a component
     * ("src/text/stream.c", "docs/.github/x"): "GET/POST/PUT/DELETE",
     * "read/write/execute", "Linux/macOS/Windows" are alternatives, and
     * their last word alone changed the meaning */
    if (!absolute) {
        int dotted = 0;
        for (size_t i = 0; i + 1 < n && !dotted; i++)
            dotted = s[i] == '.' && s[i + 1] != '/' && s[i + 1] != '\\' && s[i + 1] != '.';
        if (!dotted) return 0;
    }
    size_t e = n;
    while (e > 0 && (s[e - 1] == '/' || s[e - 1] == '\\')) e--;
    size_t b = e;
    while (b > 0 && s[b - 1] != '/' && s[b - 1] != '\\') b--;
    if (b >= e) return 0;
    /* a glob of a folder's files (the last part only stars: "./build/" and
     * a star): its folder too; the star alone read "every file anywhere" */
    if (b > 1) {
        size_t st = 0;
        while (b + st < e && s[b + st] == '*') st++;
        if (b + st == e) {
            b--;
            while (b > 0 && s[b - 1] != '/' && s[b - 1] != '\\') b--;
        }
    }
    *out = s + b;
    return e - b;
}

static int is_lead_punct(const char *s, size_t n, size_t *k) {
    if (n && strchr("([{\"'<", s[0]) && s[0]) { *k = 1; return 1; }
    if (n >= 3 && (memcmp(s, "\xE2\x80\x9C", 3) == 0 || memcmp(s, "\xE2\x80\x98", 3) == 0)) { *k = 3; return 1; }
    if (n >= 2 && memcmp(s, "\xC2\xAB", 2) == 0) { *k = 2; return 1; }
    return 0;
}
static int is_trail_punct(const char *s, size_t n, size_t *k) {
    if (n && s[n - 1] && strchr(".,;:!?)]}\"'>", s[n - 1])) { *k = 1; return 1; }
    size_t st;
    if (n && (unsigned char)s[n - 1] >= 0x80 && is_script_term(last_cp(s, n, &st))) { *k = n - st; return 1; }
    if (n >= 3 && (memcmp(s + n - 3, "\xE2\x80\x9D", 3) == 0 || memcmp(s + n - 3, "\xE2\x80\x99", 3) == 0 ||
                   memcmp(s + n - 3, "\xE2\x80\xA6", 3) == 0)) { *k = 3; return 1; }
    if (n >= 2 && memcmp(s + n - 2, "\xC2\xBB", 2) == 0) { *k = 2; return 1; }
    return 0;
}

/* ---- secrets (never spoken) ---------------------------------------------------
 * Decided per whole word (a run without spaces), so a secret split across
 * deltas is judged only once all of it is here. The word is left out of the
 * sentence and a "secret omitted" notice follows the sentence. docs/FRONTEND.md
 * lists the formats and the look-alikes that are still read. */
static int span_of(const char *s, size_t n, const char *extra) {
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr(extra, s[i])) return 0;
    return 1;
}
static int is_hex(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i])) return 0;
    return 1;
}
static int pre(const char *s, size_t n, const char *p, size_t *pl) {
    *pl = strlen(p);
    return n >= *pl && memcmp(s, p, *pl) == 0;
}

/* 8-4-4-4-12 hex: an identifier, read out. */
static int is_uuid(const char *s, size_t n) {
    if (n != 36) return 0;
    for (size_t i = 0; i < n; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i])) return 0;
    }
    return 1;
}

/* Random-looking base64: letters and digits in short runs ("wJalrXUtnFEMI"),
 * unlike an identifier's words ("getUserProfileById2"): the mean length of
 * its runs ([A-Z]?[a-z]+, [A-Z]+, [0-9]+) is under 3. */
static int looks_random(const char *s, size_t n) {
    size_t runs = 0, chars = 0;
    int up = 0, lo = 0, dg = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (isdigit(c)) {
            dg = 1;
            runs++;
            while (i < n && isdigit((unsigned char)s[i])) { i++; chars++; }
        } else if (islower(c)) {
            lo = 1;
            runs++;
            while (i < n && islower((unsigned char)s[i])) { i++; chars++; }
        } else if (isupper(c)) {
            up = 1;
            runs++;
            size_t u = 0;
            while (i + u < n && isupper((unsigned char)s[i + u])) u++;
            if (u > 1 && i + u < n && islower((unsigned char)s[i + u])) u--;   /* "HTTPServer": HTTP, Server */
            i += u;
            chars += u;
            if (u == 1) while (i < n && islower((unsigned char)s[i])) { i++; chars++; lo = 1; }
        } else {
            i++;
        }
    }
    if (up + lo + dg < 2 || runs == 0) return 0;
    return chars < 3 * runs;
}

/* HTTP Basic credentials: base64 (padded to a multiple of 4) of printable
 * "user:password". "Basic authentication" does not decode to that. */
static int is_basic_credentials(const char *s, size_t n) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (n < 8 || n % 4 != 0 || n > 1024) return 0;
    size_t m = n;
    while (m > n - 2 && s[m - 1] == '=') m--;
    uint32_t acc = 0;
    int bits = 0, colon = 0;
    for (size_t i = 0; i < m; i++) {
        const char *p = s[i] ? strchr(b64, s[i]) : NULL;
        if (!p) return 0;
        acc = (acc << 6) | (uint32_t)(p - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            unsigned char ch = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
            if (ch < 0x20 || ch > 0x7E) return 0;
            colon |= ch == ':';
        }
    }
    return colon;
}

/* 1: the word is a secret by a vendor's prefix (sk-, ghp_, AKIA, eyJ...): a
 * format so distinctive that it is a secret even glued to other text. */
static int is_prefixed_token(const char *s, size_t n) {
    size_t pl;
    static const struct { const char *prefix, *extra; size_t min; } keys[] = {
        {"sk-", "_-", 20},         /* Anthropic sk-ant-..., OpenAI sk-..., sk-proj-... */
        {"ghp_", "", 30}, {"gho_", "", 30}, {"ghu_", "", 30}, {"ghs_", "", 30}, {"ghr_", "", 30},
        {"github_pat_", "_", 20},  /* GitHub */
        {"glpat-", "_-", 20},      /* GitLab */
        {"xoxb-", "-", 10}, {"xoxp-", "-", 10}, {"xoxa-", "-", 10}, {"xoxs-", "-", 10}, {"xapp-", "-", 10},
        {"AIza", "_-", 30},        /* Google API keys */
        {"sk_live_", "", 16}, {"rk_live_", "", 16}, {"sk_test_", "", 16},   /* Stripe */
        {"npm_", "", 30}, {"hf_", "", 30}, {"pypi-", "_-", 30},
        {"ya29.", "_-.", 20},      /* Google OAuth access tokens */
        {"SG.", "_-.", 60},        /* SendGrid: SG.<22>.<43> (the dots kept it from the base64 rule) */
        /* HashiCorp Vault service, batch and recovery tokens: one dot, so
         * neither the base64 rule nor the dotted-token rule saw them */
        {"hvs.", "_-", 24}, {"hvb.", "_-", 24}, {"hvr.", "_-", 24},
        /* all hex after the prefix (DigitalOcean, Shopify, Supabase), so
         * the base64 rule, which wants both cases, never saw them */
        {"dop_v1_", "", 64}, {"doo_v1_", "", 64}, {"dor_v1_", "", 64},
        {"shpat_", "", 32}, {"shpca_", "", 32}, {"shppa_", "", 32}, {"shpss_", "", 32},
        {"sbp_", "", 40}, {"rk_test_", "", 16},
        {"HRKU-", "_-", 30},       /* Heroku */
        {"PMAK-", "-", 50},        /* Postman */
        {"glsa_", "_", 32},        /* Grafana service accounts */
        {"tskey-", "-", 20},       /* Tailscale */
        {"pscale_tkn_", "_-", 30}, /* PlanetScale */
        {"AGE-SECRET-KEY-1", "", 50},   /* age's private keys (upper case only) */
    };
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        if (pre(s, n, keys[k].prefix, &pl) && n - pl >= keys[k].min && span_of(s + pl, n - pl, keys[k].extra))
            return 1;
    /* AWS access key ids */
    if (n == 20 && (pre(s, n, "AKIA", &pl) || pre(s, n, "ASIA", &pl))) {
        int ok = 1;
        for (size_t i = 4; i < n; i++) ok &= isupper((unsigned char)s[i]) || isdigit((unsigned char)s[i]);
        if (ok) return 1;
    }
    /* Databricks personal access tokens: dapi + 32 hex digits, some with a
     * "-2" after them (all hex, so the base64 rule never saw them, and after
     * "token is" the hex rule wants the word to be hex from its start) */
    if (pre(s, n, "dapi", &pl) && n >= 36 && is_hex(s + 4, 32) &&
        (n == 36 || (n == 38 && s[36] == '-' && isdigit((unsigned char)s[37]))))
        return 1;
    /* JWT: eyJ<header>.<payload>.<signature>; also what is left of one
     * wrapped at a dot: "<payload>.<signature>" on the next line starts with
     * eyJ too but has one dot (a JSON object in base64url is no prose word) */
    if (pre(s, n, "eyJ", &pl)) {
        const char *d1 = memchr(s, '.', n);
        const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(s + n - d1 - 1)) : NULL;
        if (d1 && d2 && d2 - d1 > 4 && s + n - d2 > 4 && span_of(s, n, "_-.")) return 1;
        if (d1 && !d2 && d1 - s > 8 && s + n - d1 > 16 && span_of(s, n, "_-.")) return 1;
    }
    /* Microsoft Entra ID (Azure AD) client secrets: 3 characters, a digit,
     * "Q~", then 31 to 34 of [A-Za-z0-9_~.-]; the '~' and '.' kept them out
     * of every other class */
    if (n >= 37 && n <= 40 && isdigit((unsigned char)s[3]) && s[4] == 'Q' && s[5] == '~' &&
        span_of(s, n, "_~.-"))
        return 1;
    /* Telegram bot tokens: the bot's id (8 to 10 digits), ':', then 35 of
     * base64url (the ':' kept them out of the base64 rule) */
    {
        size_t d = 0;
        while (d < n && isdigit((unsigned char)s[d])) d++;
        if (d >= 8 && d <= 10 && d < n && s[d] == ':' && n - d - 1 >= 30 && n - d - 1 <= 40 &&
            span_of(s + d + 1, n - d - 1, "_-") && looks_random(s + d + 1, n - d - 1))
            return 1;
    }
    return 0;
}

/* 1: the word is a secret on its own. */
static int is_secret_token(const char *s, size_t n) {
    if (is_prefixed_token(s, n)) return 1;
    if (is_uuid(s, n)) return 0;
    /* git hashes (7..40 hex) are read; longer hex is a key or a digest */
    if (is_hex(s, n)) return n > 40;
    /* long base64 / base64url */
    size_t m = n;
    while (m > 0 && s[m - 1] == '=') m--;
    if (m >= 32 && span_of(s, m, "+/_-") && s[0] != '/' && looks_random(s, m)) return 1;
    /* dotted tokens (Discord <24>.<6>.<27>, Doppler dp.st.dev.<40>): a long
     * random part between dots; the dots kept them from the rule above */
    const char *d1 = memchr(s, '.', n);
    if (d1 && memchr(d1 + 1, '.', (size_t)(s + n - d1 - 1)) && span_of(s, n, "_-.")) {
        for (size_t a = 0; a < n;) {
            size_t e = a;
            while (e < n && s[e] != '.') e++;
            if (e - a >= 24 && looks_random(s + a, e - a)) return 1;
            a = e + 1;
        }
    }
    return 0;
}

/* The word s[0..n) with ASCII letters lowered, into low (cap bytes, NUL
 * ended); 0 when it is empty or does not fit (no name we look for is that
 * long). */
static int lower_word(const char *s, size_t n, char *low, size_t cap) {
    if (n == 0 || n >= cap) return 0;
    for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)s[i]);
    low[n] = '\0';
    return 1;
}

/* 1 when low contains one of words (NULL-ended). */
static int contains_any(const char *low, const char *const *words) {
    for (int i = 0; words[i]; i++)
        if (strstr(low, words[i])) return 1;
    return 0;
}

/* A word that may name a key in prose ("token", "Key", "auth"): its value
 * is left out only when that looks like a token. */
static int names_key(const char *s, size_t n) {
    static const char *const w[] = {"token", "key", "secret", "pass", "pwd", "auth", "credential", NULL};
    char low[64];
    return lower_word(s, n, low, sizeof low) && contains_any(low, w);
}

/* A value that is random letters and digits ("token: Xa9bC3dE5fG7hI9jK1lM3"),
 * not a word. */
static int looks_like_token(const char *s, size_t n) {
    size_t digits = 0, letters = 0;
    for (size_t i = 0; i < n; i++) {
        digits += isdigit((unsigned char)s[i]) != 0;
        letters += isalpha((unsigned char)s[i]) != 0;
    }
    return n >= 16 && digits && letters && span_of(s, n, "+/_-.=~") && looks_random(s, n);
}

/* Does a variable name say it holds a credential? strict: also for "name:"
 * in prose, where only unambiguous names count. */
static int is_cred_name(const char *s, size_t n, int strict) {
    static const char *const always[] = {"password", "passwd", "passphrase", "secret", "api_key", "apikey", "api-key",
                                         "access_key", "accesskey", "private_key", "privatekey", "auth_token",
                                         "access_token", "refresh_token", "credential", NULL};
    static const char *const loose[] = {"token", "pwd", "pass", "auth", NULL};
    char low[64];
    if (n > 1 && s[0] == '+') { s++; n--; }   /* "+DB_PASS=x", a headerless diff's added line */
    if (n == 0 || n >= sizeof low) return 0;
    int caps = 1, sep = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.') return 0;
        low[i] = (char)tolower((unsigned char)s[i]);
        if (islower((unsigned char)s[i])) caps = 0;
        if (s[i] == '_' || s[i] == '-') sep = 1;
    }
    low[n] = '\0';
    for (int i = 0; always[i]; i++)
        if (strstr(low, always[i])) return 1;
    if (strict && !caps) return 0;
    if (!caps && !sep) return 0;   /* "token=" in prose is rarer than GITHUB_TOKEN= */
    for (int i = 0; loose[i]; i++)
        if (strstr(low, loose[i])) return 1;
    return 0;
}

/* "--password", "--api-key", "--client-secret", "--token": a flag whose
 * name ends in a credential word takes the credential as its next word. */
static int is_cred_flag(const char *s, size_t n) {
    static const char *const ends[] = {"password", "passwd", "passphrase", "secret", "api-key", "api_key", "apikey",
                                       "access-key", "private-key", "token", NULL};
    if (n < 4 || s[0] != '-' || s[1] != '-') return 0;
    for (int i = 0; ends[i]; i++) {
        size_t l = strlen(ends[i]);
        if (n - 2 >= l && starts_ci(s + n - l, l, ends[i])) return 1;
    }
    return 0;
}

/* Lower-case letters only (or a capital first): after "--token" that is
 * prose ("pass --token to the CLI", "with --password set"), not a value. */
static int is_plain_word(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)s[i]) && !(i == 0 && isupper((unsigned char)s[i]))) return 0;
    return 1;
}

/* A password written in prose ("the password is hunter2xyz"): 6 to 64
 * characters with a letter and a digit or a symbol, not a path, not a number
 * with a unit ("12-characters"), not a compound adjective ("2FA-protected",
 * "SHA256-hashed") and not a standard's name (capitals, digits and dashes:
 * "SHA-256", "AES-256"). */
static int looks_like_password(const char *s, size_t n) {
    size_t letters = 0, digits = 0, symbols = 0, lower = 0, lead = 0, tail = 0;
    if (n < 6 || n > 64 || memchr(s, '/', n)) return 0;
    while (lead < n && isdigit((unsigned char)s[lead])) lead++;
    if (lead && lead < n && s[lead] == '-') return 0;
    while (tail < n && islower((unsigned char)s[n - 1 - tail])) tail++;
    if (tail >= 3 && tail < n && s[n - 1 - tail] == '-') return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (isalpha(ch)) letters++;
        else if (isdigit(ch)) digits++;
        else if (ch >= 0x80) return 0;   /* a word of another script */
        else if (strchr("!@#$%^&*+=?~_", ch)) symbols++;
        lower += islower(ch) != 0;
    }
    if (!lower && !symbols) return 0;
    return letters && (digits || symbols);
}

/* A word naming a password, in English or another language ("password",
 * "DB_PASSWORD", German "Passwort" and "Kennwort", Spanish "contraseña",
 * Portuguese "senha", Dutch "wachtwoord", Swedish "lösenord", Polish
 * "hasło", French "mot de passe", Korean "비밀번호"; not "passport"). */
static int names_password(const char *s, size_t n) {
    static const char *const w[] = {"password", "passwd", "passphrase", "passwort", "kennwort", "contrase\xc3\xb1" "a",
                                    "senha", "wachtwoord", "l\xc3\xb6senord", "has\xc5\x82o",
                                    "\xeb\xb9\x84\xeb\xb0\x80\xeb\xb2\x88\xed\x98\xb8", NULL};   /* 비밀번호 */
    char low[64];
    if (!lower_word(s, n, low, sizeof low)) return 0;
    return contains_any(low, w) || strcmp(low, "passe") == 0; /* French "mot de passe" (as a word: "passed" is English) */
}

/* "is" (or "was", "to") after a password's name, in those languages:
 * German "ist", "lautet", Spanish "es", French "est", Portuguese "é", Italian "è",
 * Swedish "är", Danish and Norwegian "er", Polish "jest". */
static int is_copula(const char *s, size_t n) {
    static const char *const w[] = {"is", "was", "to", "be", "been", "ist", "lautet", "war", "es", "era", "est", "\xc3\xa9",
                                    "\xc3\xa8", "\xc3\xa4r", "er", "jest", NULL};   /* Italian "è" */
    for (int i = 0; w[i]; i++)
        if (strlen(w[i]) == n && memcmp(s, w[i], n) == 0) return 1;
    return 0;
}

/* A word that is a dash or an arrow, set between a name and its value
 * ("Password — x", "Password - x", "token -> x"). */
static int is_dash_sep(const char *w, size_t n) {
    static const char *const d[] = {"-", "--", "->", "=>", "\xE2\x80\x94", "\xE2\x80\x93", "\xE2\x86\x92", NULL};   /* — – → */
    for (int i = 0; d[i]; i++)
        if (strlen(d[i]) == n && memcmp(w, d[i], n) == 0) return 1;
    return 0;
}

/* "should", "will", "has": "the password should be X" ("be" is a copula) */
static int is_modal(const char *s, size_t n) {
    static const char *const w[] = {"should", "must", "will", "would", "shall", "can", "could", "has", "have", "had", NULL};
    for (int i = 0; w[i]; i++)
        if (strlen(w[i]) == n && memcmp(s, w[i], n) == 0) return 1;
    return 0;
}

/* A word opening a phrase that says whose credential it is, between the
 * credential's name and its "is": "The passphrase FOR the key is ...",
 * "the password OF the root user was ...", "the token WE use is ...". Only
 * these: a noun right after the name makes the name a modifier ("the
 * password policy is described in "Security.md"", "the token format is
 * "JWT""), and what follows "is" is then about the policy, not a value. */
static int is_span_word(const char *s, size_t n) {
    static const char *const w[] = {"for", "of", "on", "in", "from", "at", "used", "that", "we", "you", "i", "they", NULL};
    char low[8];
    if (!lower_word(s, n, low, sizeof low)) return 0;
    for (int i = 0; w[i]; i++)
        if (strcmp(low, w[i]) == 0) return 1;
    return 0;
}

/* A word naming a key or token in prose (for cred_span): "secret", "token",
 * "key" after a word that makes it a credential (qual: "API key", "private
 * key"; "the key for this map" is a lookup key), or a credential's variable
 * name ("GITHUB_TOKEN", "SECRET"; "secretary" is a word). */
static int names_key_noun(const char *s, size_t n, int qual) {
    static const char *const w[] = {"secret", "token", "passcode", NULL};
    char low[64];
    if (!lower_word(s, n, low, sizeof low)) return 0;
    for (int i = 0; w[i]; i++)
        if (strcmp(low, w[i]) == 0) return 1;
    if (qual && (strcmp(low, "key") == 0 || strcmp(low, "token") == 0)) return 1;
    int caps = 1;
    for (size_t i = 0; i < n; i++) caps &= !islower((unsigned char)s[i]);
    return (caps || memchr(s, '_', n)) && n >= 5 && is_cred_name(s, n, 1);
}

/* A word that makes a "key" after it a credential ("API key", "access key"). */
static int is_key_qualifier(const char *s, size_t n) {
    static const char *const w[] = {"api", "access", "private", "secret", "signing", "encryption", "license", "master",
                                    "deploy", "client", "auth", "bearer", "bot", NULL};
    char low[16];
    if (!lower_word(s, n, low, sizeof low)) return 0;
    for (int i = 0; w[i]; i++)
        if (strcmp(low, w[i]) == 0) return 1;
    return 0;
}

/* A quoted value that names where a secret is, not the secret: a path or a
 * file name ("is "config/secrets.yaml"", "is "prod.pem""). */
static int is_reference_value(const char *s, size_t n) {
    static const char *const ext[] = {"md", "txt", "json", "yaml", "yml", "toml", "env", "ini", "cfg", "conf", "pem",
                                      "key", "crt", "pdf", "html", "xml", "csv", "log", "sh", "py", "js", "ts", NULL};
    if (memchr(s, '/', n) || memchr(s, '\\', n)) return 1;
    size_t d = n;
    while (d > 0 && s[d - 1] != '.') d--;
    if (d < 2) return 0;   /* no dot, or only a leading one */
    for (int i = 0; ext[i]; i++)
        if (n - d == strlen(ext[i]) && starts_ci(s + d, n - d, ext[i])) return 1;
    return 0;
}

/* Japanese and Chinese name a password or a key in text without spaces
 * ("パスワードはhunter2xyzです", "密码是 hunter2xyz"), so no word names it: the
 * sentence so far ends in such a phrase (an opening quote or a space aside).
 * 1: a password; 2: a token or key (then only a random value is one). */
static int cjk_secret_cue(const text_stream *ts) {
    static const char *const pw[] = {"\xe3\x83\x91\xe3\x82\xb9\xe3\x83\xaf\xe3\x83\xbc\xe3\x83\x89", /* パスワード */
                                     "\xe6\x9a\x97\xe8\xa8\xbc\xe7\x95\xaa\xe5\x8f\xb7",                 /* 暗証番号 */
                                     "\xe5\xaf\x86\xe7\xa0\x81", "\xe5\xaf\x86\xe7\xa2\xbc", NULL};      /* 密码 密碼 */
    static const char *const key[] = {"\xe3\x83\x88\xe3\x83\xbc\xe3\x82\xaf\xe3\x83\xb3",               /* トークン */
                                      "\xe3\x82\xad\xe3\x83\xbc",                                              /* キー */
                                      "\xe3\x82\xb7\xe3\x83\xbc\xe3\x82\xaf\xe3\x83\xac\xe3\x83\x83\xe3\x83\x88", /* シークレット */
                                      "\xe4\xbb\xa4\xe7\x89\x8c", "\xe5\xaf\x86\xe9\x92\xa5", NULL};      /* 令牌 密钥 */
    static const char *const after[] = {"\xe3\x81\xaf", "\xe3\x82\x92", "\xef\xbc\x9a", ":",            /* は を ： : */
                                        "\xe6\x98\xaf", "\xe4\xb8\xba", "\xe7\x82\xba", NULL};             /* 是 为 為 */
    const char *p = ts->sent.p;
    size_t n = ts->sent.len, st;
    for (;;) {   /* spaces and opening quotes: 「 『 “ " ' ( （ */
        if (n && (p[n - 1] == ' ' || p[n - 1] == '"' || p[n - 1] == '\'' || p[n - 1] == '(')) { n--; continue; }
        uint32_t cp = n ? last_cp(p, n, &st) : 0;
        if (cp == 0x300C || cp == 0x300E || cp == 0x201C || cp == 0xFF08) { n = st; continue; }
        break;
    }
    for (int i = 0; after[i]; i++) {
        size_t al = strlen(after[i]);
        if (n < al || memcmp(p + n - al, after[i], al) != 0) continue;
        size_t m = n - al;
        for (int k = 0; pw[k]; k++)
            if (m >= strlen(pw[k]) && memcmp(p + m - strlen(pw[k]), pw[k], strlen(pw[k])) == 0) return 1;
        for (int k = 0; key[k]; k++)
            if (m >= strlen(key[k]) && memcmp(p + m - strlen(key[k]), key[k], strlen(key[k])) == 0) return 2;
    }
    return 0;
}

/* A value that names no secret: "$VAR", "<your key>", "...", "xxxx", "${X}". */
static int is_placeholder_value(const char *s, size_t n) {
    if (n == 0 || s[0] == '$' || s[0] == '<' || s[0] == '{' || s[0] == '.' || s[0] == '*') return 1;
    size_t x = 0;
    for (size_t i = 0; i < n; i++) x += (s[i] | 32) == 'x';
    if (n >= 4 && starts_ci(s, n, "your")) return 1;   /* API_KEY=<your-key> (brackets already gone) */
    return x == n;
}

/* scheme://user:password@host...: the host, and whether a password was there. */
static size_t url_host_with_creds(const char *s, size_t n, const char **host, int *has_pass) {
    size_t i = 0;
    while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '.' || s[i] == '-')) i++;
    if (i == 0 || i + 3 > n || memcmp(s + i, "://", 3) != 0 || !isalpha((unsigned char)s[0])) return 0;
    size_t a = i + 3, e = a;
    while (e < n && s[e] != '/' && s[e] != '?' && s[e] != '#') e++;
    const char *at = NULL;
    for (size_t k = a; k < e; k++)
        if (s[k] == '@') at = s + k;
    if (!at) return 0;
    *has_pass = memchr(s + a, ':', (size_t)(at - (s + a))) != NULL;
    size_t h = (size_t)(at - s) + 1, he = h;
    while (he < e && s[he] != ':') he++;
    *host = s + h;
    return he - h;
}

/* Images and badges (a bare https://img.shields.io/... or .../shot.png) are not read. */
static int is_image_url(const char *s, size_t n) {
    static const char *const hosts[] = {"img.shields.io", "badgen.net", "badge.fury.io", "user-images.githubusercontent.com",
                                        "private-user-images.githubusercontent.com", "camo.githubusercontent.com",
                                        "avatars.githubusercontent.com", "i.imgur.com", "codecov.io/gh", NULL};
    const char *d;
    size_t dl = url_domain(s, n, &d);
    if (!dl) return 0;
    for (int i = 0; hosts[i]; i++) {
        size_t hl = strlen(hosts[i]);
        if ((dl == hl && starts_ci(d, dl, hosts[i])) || (hl > dl && starts_ci(d, n - (size_t)(d - s), hosts[i]))) return 1;
    }
    if (n - (size_t)(d - s) > 7 && starts_ci(d, n - (size_t)(d - s), "github.com/") &&
        (strstr(d, "/badge.svg") || strstr(d, "/workflows/")))
        return 1;
    size_t e = n;
    for (size_t k = (size_t)(d - s); k < n; k++)
        if (s[k] == '?' || s[k] == '#') { e = k; break; }
    static const char *const ext[] = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".bmp", ".ico", NULL};
    for (int i = 0; ext[i]; i++) {
        size_t el = strlen(ext[i]);
        if (e > el && starts_ci(s + e - el, el, ext[i]) && memchr(d, '/', e - (size_t)(d - s))) return 1;
    }
    return 0;
}

static void secret_notice(text_stream *ts) {
    if (!ts->secret_pending) return;
    /* a PEM header on a line of its own is a key only when a body follows
     * (word_secret): the notice waits for that line, unless the text ends */
    if (ts->pem && ts->pem_hdr >= 2 && !ts->force) return;
    if (ts->secret_said) {
        ts->secret_pending = 0;
        return;
    }
    ts->secret_pending = 0;
    char buf[128];
    const char *lu;
    size_t len = text_phrase_format(ts->lang, TEXT_PH_SECRET, NULL, 0, buf, sizeof buf, &lu);
    deliver(ts, buf, len, TEXT_NOTICE_SECRET, lu, ts->now);
    ts->secret_said = 1;
}

/* Drops the space before a left-out word so "is sk-... ." reads "is." */
static void unspace(text_stream *ts) {
    if (ts->sent.len && ts->sent.p[ts->sent.len - 1] == ' ') {
        ts->sent_gen++;
        ts->sent.len--;
        ts->sent_chars--;
        ts->etc_wait = 0;
    }
}

/* The punctuation around a left-out value without the quotes that enclosed
 * it: DB_PASSWORD="x", read DB_PASSWORD, not DB_PASSWORD", (a lone quote is
 * no punctuation worth reading). lead: the text before the value (its
 * trailing quotes go), else the text after it (its leading quotes go);
 * at most max of them. */
static int is_quote_at(const char *s, size_t n, int end, size_t *k) {
    if (n && (end ? s[n - 1] : s[0]) && strchr("\"'`", end ? s[n - 1] : s[0])) { *k = 1; return 1; }
    static const char *const q[] = {"\xE2\x80\x9C", "\xE2\x80\x9D", "\xE2\x80\x98", "\xE2\x80\x99", NULL};
    for (int i = 0; q[i] && n >= 3; i++)
        if (memcmp(end ? s + n - 3 : s, q[i], 3) == 0) { *k = 3; return 1; }
    return 0;
}
static void put_unquoted(text_stream *ts, const char *s, size_t n, int lead, int max) {
    size_t k;
    for (int i = 0; i < max && is_quote_at(s, n, lead, &k); i++) {
        if (!lead) s += k;
        n -= k;
    }
    seg_put_str(ts, s, n);
}

/* 1 when the word was a secret (or PEM) and has been handled. */
/* A word holding user:password@host: the host is read in its place (after
 * the name of a NAME=URL, when there is one), with the word's surrounding
 * punctuation (w[0, a) and w[b, n)), and the secret notice is pending. */
static int put_cred_host(text_stream *ts, const char *w, size_t n, size_t a, size_t b, const char *name, size_t nl,
                         int vq, const char *host, size_t hl) {
    ts->secret_pending = 1;
    seg_put_str(ts, w, a);
    if (nl) {
        seg_put_str(ts, name, nl);
        seg_put_str(ts, " ", 1);
    }
    seg_put_str(ts, host, hl);
    put_unquoted(ts, w + b, n - b, 0, vq);   /* NAME="URL": the value's closing quotes */
    return 1;
}

/* A left-out value that opens a quote it does not close (PASSWORD: "correct
 * horse battery staple", DB_PASSWORD='two words'): the words up to the one
 * holding the closing quote are the value too (only the first was left out,
 * the rest was read). w[q] is the opening quote. A value does not span lines,
 * and at most 32 more words go. */
static void value_quote(text_stream *ts, const char *w, size_t n, size_t q) {
    if ((w[q] == '"' || w[q] == '\'') && !memchr(w + q + 1, w[q], n - q - 1)) {
        ts->val_quote = w[q];
        ts->val_quote_words = 32;
    }
}

/* What follows a left-out value: a '!' right after it may be its last
 * character ("Password: Hunt3r2024!"), and read it said "Password:
 * exclamation": it goes with the value. It may also have ended the
 * sentence: the next word decides (bang_end, word_end): a capital there
 * ends the sentence ("My password is hunter2xyz! Then go."), anything else
 * goes on ("with password Hunt3r2024! and change it"). Then the value's
 * closing quotes, as put_unquoted. */
static void put_value_tail(text_stream *ts, const char *t, size_t tn, int max) {
    size_t bang = 0;
    while (bang < tn && t[bang] == '!') bang++;
    ts->bang_end = bang == tn && bang > 0;
    put_unquoted(ts, t + bang, tn - bang, 0, max);
}

/* Does the sentence so far end in a user's name and a slash ("Username /
 * ")? Then "password:" names the second of a pair: "Username / password:
 * admin / Hunt3r2024", whose first value is the user. */
static int names_user(const char *s, size_t n) {
    static const char *const w[] = {"user", "username", "login", "email", "account", "id", NULL};
    char low[16];
    if (!lower_word(s, n, low, sizeof low)) return 0;
    for (int i = 0; w[i]; i++)
        if (strcmp(low, w[i]) == 0) return 1;
    return 0;
}
static int sent_ends_user_slash(const text_stream *ts) {
    const char *p = ts->sent.p;
    size_t n = ts->sent.len;
    while (n && p[n - 1] == ' ') n--;
    if (!n || p[n - 1] != '/') return 0;
    n--;
    while (n && p[n - 1] == ' ') n--;
    size_t e = n;
    while (n && p[n - 1] != ' ' && p[n - 1] != '*' && p[n - 1] != '(') n--;
    return names_user(p + n, e - n);
}

/* The quote a value's lead punctuation w[0, a) opened: its index, or -1. */
static long lead_quote(const char *w, size_t a) {
    for (size_t i = a; i > 0; i--)
        if (w[i - 1] == '"' || w[i - 1] == '\'') return (long)i - 1;
    return -1;
}

/* The first pat[0, pl) in s[0, n), or NULL. */
static const char *mem_find(const char *s, size_t n, const char *pat, size_t pl) {
    for (size_t i = 0; i + pl <= n; i++)
        if (s[i] == pat[0] && memcmp(s + i, pat, pl) == 0) return s + i;
    return NULL;
}

/* Words after one naming a key ("token", "secret") in which a token-like
 * word is taken for its value (within the sentence: see word_end). */
#define KEY_WORDS 5
/* Words between a credential's name and its "is" ("The passphrase for the
 * production key is ..."). */
#define CRED_SPAN 6

static int word_secret(text_stream *ts, const char *w, size_t n, size_t a, size_t b) {
    const char *c = w + a;
    size_t cl = b - a, k;
    if (ts->val_quote) {
        /* inside a quoted value: left out up to its closing quote, whatever
         * follows that quote (",", ")") is read */
        const char *q = memchr(w, ts->val_quote, n);
        unspace(ts);
        if (q || --ts->val_quote_words <= 0) ts->val_quote = 0;
        if (q) put_unquoted(ts, q + 1, n - (size_t)(q + 1 - w), 0, 2);
        return 1;
    }
    if (ts->pem && ts->pem_hdr == 2) {
        /* the header "-----BEGIN CERTIFICATE-----" ended its word: a body
         * follows on the next line, or (a key flattened onto one line) as
         * long base64 words; anything else on the same line means prose that
         * names the format ("starts with -----BEGIN CERTIFICATE----- and
         * ..."), which is read on (it swallowed the rest of the reply) */
        size_t bl = 0;
        while (bl < cl && (isalnum((unsigned char)c[bl]) || c[bl] == '+' || c[bl] == '/' || c[bl] == '=')) bl++;
        ts->pem_hdr = 0;
        if (bl < 16) {
            ts->pem = 0;
            ts->secret_pending = ts->pem_prev_secret;   /* no key was left out */
        }
    }
    if (ts->pem) {
        /* -----BEGIN ... ----- <base64 lines> -----END ... ----- : all of it
         * goes. A key quoted in JSON is one line with "\n" escapes, so the
         * markers sit inside words ("C7\n-----END", "KEY-----\n\","): they
         * are looked for anywhere in the word, and what follows the last
         * "-----" is punctuation read as usual (an end only at the word's end
         * swallowed the rest of the reply) */
        if (ts->pem_hdr == 3) {
            /* the first word on the lines after the header: a body is
             * base64 (16+ of it on a line, a flattened key's first word
             * too), an armor header ("Proc-Type:", "Version:") or the END
             * line of an empty block. Anything else is prose that named the
             * header on a line of its own ("start with the line" / header /
             * "and end with"): it is read on, with no notice (it swallowed
             * the prose up to the END line) */
            size_t bl = 0, hl = 0;
            while (bl < cl && (isalnum((unsigned char)c[bl]) || c[bl] == '+' || c[bl] == '/' || c[bl] == '=')) bl++;
            while (hl < cl && (isalpha((unsigned char)c[hl]) || c[hl] == '-')) hl++;
            int armor = hl > 0 && hl + 1 == n - a && w[a + hl] == ':';
            ts->pem_hdr = 0;
            if (bl < 16 && !armor && !mem_find(w, n, "-----END", 8)) {
                ts->pem = 0;
                ts->secret_pending = ts->pem_prev_secret;
            }
        }
    }
    if (ts->pem) {
        if (ts->pem_hdr == 1) {
            /* the header's closing dashes: at the word's end, or followed by
             * the "\n" of a key quoted in JSON (the body goes on in this
             * word); followed by anything else it was prose ("-----." ) */
            const char *h = mem_find(w, n, "-----", 5);
            if (h) {
                while (h + 5 < w + n && h[5] == '-') h++;
                h += 5;
                if (h == w + n) {
                    ts->pem_hdr = 2;
                    return 1;
                }
                ts->pem_hdr = 0;
                if (!(h[0] == '\\' && h + 1 < w + n && (h[1] == 'n' || h[1] == 'r'))) {
                    ts->pem = 0;
                    ts->secret_pending = ts->pem_prev_secret;
                    unspace(ts);
                    put_unquoted(ts, h, (size_t)(w + n - h), 0, 2);
                    return 1;
                }
            }
        }
        const char *e = ts->pem == 1 ? mem_find(w, n, "-----END", 8) : NULL, *t = w;
        if (e) {
            ts->pem = 2;
            t = e + 8;
        }
        const char *d = ts->pem == 2 ? mem_find(t, (size_t)(w + n - t), "-----", 5) : NULL;
        if (d) {
            while (d + 5 < w + n && d[5] == '-') d++;
            d += 5;
            while (w + n - d >= 2 && d[0] == '\\' && (d[1] == 'n' || d[1] == 'r')) d += 2;   /* its "\n" escape */
            ts->pem = 0;
            unspace(ts);   /* "key": "<PEM>", reads "key":, */
            put_unquoted(ts, d, (size_t)(w + n - d), 0, 2);
        } else if (++ts->pem_words > 2000) {
            ts->pem = 0;
        }
        return 1;
    }
    const char *pb = mem_find(w, n, "-----BEGIN", 10);
    if (pb) {
        /* also glued to what precedes it ({"private_key":"-----BEGIN ...):
         * that part is read */
        put_unquoted(ts, w, (size_t)(pb - w), 1, 2);   /* the value's opening quote goes with it */
        ts->cred = 0;   /* the PEM block is the value "private_key": waited for */
        ts->pem = 1;
        ts->pem_hdr = 1;
        ts->pem_words = 0;
        ts->pem_prev_secret = ts->secret_pending;
        ts->secret_pending = 1;
        return 1;
    }
    /* "Username / password: admin / PASS": the first value is the user (read),
     * the one after the '/' is the password; "admin/PASS" likewise */
    int upair = ts->user_pair;
    ts->user_pair = 0;
    if (upair == 1 && cl) {
        const char *sl = memchr(c, '/', cl);
        if (sl && sl > c && sl + 1 < c + cl && !is_placeholder_value(sl + 1, (size_t)(c + cl - sl - 1))) {
            ts->secret_pending = 1;
            ts->cred = 0;
            seg_put_str(ts, w, (size_t)(sl - w));
            put_value_tail(ts, w + b, n - b, 2);
            return 1;
        }
        ts->user_pair = 2;
        ts->cred = 0;
        seg_put_str(ts, w, n);
        return 1;
    }
    if (upair == 2 && cl == 1 && c[0] == '/') {   /* the pair's '/' goes with its password */
        ts->cred = 2;
        unspace(ts);
        return 1;
    }
    /* "Credentials are admin/Hunt3r2024!", "sign in with admin:Hunt3r2024!":
     * within a few words after a word naming a login, a user and a
     * password joined by ':' or '/' (the password with a digit or a symbol:
     * "with Google/GitHub", "user:pass" are read) */
    int in_login = ts->login_words > 0;
    if (ts->login_words) ts->login_words--;
    if (in_login && cl > 2) {
        const char *sep = NULL;
        for (size_t i = 1; i + 1 < cl && !sep; i++)
            if (c[i] == ':' || c[i] == '/') sep = c + i;
        size_t ul = sep ? (size_t)(sep - c) : 0, pl = sep ? cl - ul - 1 : 0;
        if (sep && span_of(c, ul, "._@-") && !memchr(sep + 1, '/', pl) && !memchr(sep + 1, ':', pl) &&
            looks_like_password(sep + 1, pl) && !is_placeholder_value(sep + 1, pl)) {
            ts->secret_pending = 1;
            ts->login_words = 0;
            seg_put_str(ts, w, (size_t)(sep - w));
            put_value_tail(ts, w + b, n - b, 2);
            return 1;
        }
    }
    /* spaced around its '/': "Login with admin / admin123", "credentials
     * are `admin` / `changeme123`" (the '/' goes with the password) */
    int lslash = ts->login_slash;
    ts->login_slash = in_login && n == 1 && w[0] == '/';
    if (lslash && cl && looks_like_password(c, cl) && !is_placeholder_value(c, cl)) {
        ts->secret_pending = 1;
        ts->login_words = 0;
        unspace(ts);
        if (ts->sent.len && ts->sent.p[ts->sent.len - 1] == '/') {
            ts->sent_gen++;
            ts->sent.len--;
            ts->sent_chars--;
            unspace(ts);
        }
        put_value_tail(ts, w + b, n - b, 2);
        return 1;
    }
    {
        static const char *const lw[] = {"credentials", "credential", "creds", "login", "log", "logon", "sign",
                                         "signin", NULL};
        char lowl[16];
        if (b == n || !strchr(".!?;", w[b]))
            if (lower_word(c, cl, lowl, sizeof lowl))
                for (int i = 0; lw[i]; i++)
                    if (strcmp(lowl, lw[i]) == 0) ts->login_words = 4;
    }
    int cred = ts->cred, bearer = ts->bearer, ppw = ts->prose_pw;
    int noun = ts->cred_noun, kqual = ts->key_qual, span = ts->cred_span, scue = ts->span_cue;
    ts->cred = ts->cred_noun = ts->key_qual = ts->cred_span = ts->span_cue = 0;
    /* .netrc: "machine HOST login USER password PASS" (also "account"); the
     * value after "password" has no '=', ':' or "is" to name it. Only in
     * that layout: "the login password field" in prose is read */
    int netrc = ts->netrc, netrc_pw = 0;
    ts->netrc = 0;
    if (cl == 7 && memcmp(c, "machine", 7) == 0 && b == n) ts->netrc = 1;
    else if (netrc == 1 || netrc == 3) ts->netrc = 2;   /* the host, or login's user */
    else if (netrc == 2 && b == n && ((cl == 5 && memcmp(c, "login", 5) == 0) || (cl == 7 && memcmp(c, "account", 7) == 0)))
        ts->netrc = 3;
    else if (netrc == 2 && b == n && ((cl == 8 && memcmp(c, "password", 8) == 0) || (cl == 6 && memcmp(c, "passwd", 6) == 0)))
        netrc_pw = 1;
    ts->prose_pw = 0;
    ts->bearer = 0;
    int mysql = ts->mysql_words > 0, user = ts->user_flag, keyw = ts->key_words > 0;
    /* 32+ hex only within 3 words of the key word ("the deploy key was added
     * in commit <sha>" is a commit); random letters and digits within 5 ("the
     * API key for staging is Xk9m...") */
    int keyhex = ts->key_words > KEY_WORDS - 3;
    if (ts->mysql_words) ts->mysql_words--;
    ts->user_flag = 0;
    if (ts->key_words) ts->key_words--;
    /* "mysql -uroot -pHUNTER2": mysql takes the password glued to -p (only in
     * a mysql command: "mkdir -p", "docker run -p8080:80" are read) */
    if (mysql && cl > 2 && c[0] == '-' && c[1] == 'p' && !is_placeholder_value(c + 2, cl - 2)) {
        ts->secret_pending = 1;
        seg_put_str(ts, w, a);
        seg_put_str(ts, c, 2);
        put_unquoted(ts, w + b, n - b, 0, 2);
        return 1;
    }
    /* "curl -u user:pass", "--user user:pass", "--user=user:pass": the
     * credentials go; "-u 1000:1000", "--user www-data:www-data" (uid:gid,
     * user:group) and "-u user:" (a prompt) are read */
    size_t us = 0;
    if (cl > 7 && memcmp(c, "--user=", 7) == 0) us = 7;
    if (user || us) {
        const char *u = c + us, *col = memchr(c + us, ':', cl - us);
        size_t ul = cl - us, nl = col ? (size_t)(col - u) : 0, pl = col ? ul - nl - 1 : 0, dg = 0;
        for (size_t i = 0; i < pl; i++) dg += isdigit((unsigned char)col[1 + i]) != 0;
        if (col && nl && pl && dg < pl && !is_placeholder_value(col + 1, pl) && !is_placeholder_value(u, nl) &&
            !(nl == pl && memcmp(u, col + 1, nl) == 0)) {
            ts->secret_pending = 1;
            if (us) {
                seg_put_str(ts, w, a);
                seg_put_str(ts, c, us - 1);
            } else {
                unspace(ts);
                put_unquoted(ts, w, a, 1, 2);
            }
            put_unquoted(ts, w + b, n - b, 0, 2);
            return 1;
        }
    }
    if (b == n && ((cl == 2 && memcmp(c, "-u", 2) == 0) || (cl == 6 && memcmp(c, "--user", 6) == 0))) ts->user_flag = 1;
    /* "docker login -u bob -p PASS", "sshpass -p PASS ssh", "redis-cli -a
     * PASS": the word after that flag is the password (only in those
     * commands: "docker run -p 8080:80" is a port) */
    int login = ts->login_cmd, gh = ts->gh_cmd;
    ts->login_cmd = 0;
    ts->gh_cmd = 0;
    if (ts->pw_words) ts->pw_words--;
    if (ts->pw_words && b == n && ((cl == 2 && c[0] == '-' && c[1] && strchr(ts->pw_flags, c[1])) ||
                                   (ts->pw_flags[0] == 'b' && cl == 6 && memcmp(c, "--body", 6) == 0))) {
        ts->cred = 2;
        ts->pw_words = 0;
    }
    /* openssl's "-pass pass:PASS" ("-passin", "-passout"): the password is
     * glued to "pass:" ("env:VAR" and "file:path" name none) */
    if (ts->pw_words && ts->pw_flags[0] == 'k' && cl > 5 && memcmp(c, "pass:", 5) == 0 &&
        !is_placeholder_value(c + 5, cl - 5)) {
        ts->secret_pending = 1;
        seg_put_str(ts, w, a);
        seg_put_str(ts, c, 4);
        put_unquoted(ts, w + b, n - b, 0, 2);
        return 1;
    }
    /* "htpasswd -b [-c] FILE USER PASS", "htpasswd -nb USER PASS": with -b
     * the password is a plain argument, the third (the second with -n) */
    if (ts->htpw_words) {
        ts->htpw_words--;
        if (cl > 1 && c[0] == '-') {
            for (size_t i = 1; i < cl; i++) ts->htpw_opts |= c[i] == 'b' ? 1 : c[i] == 'n' ? 2 : 0;
        } else if (++ts->htpw_args == ((ts->htpw_opts & 2) ? 2 : 3)) {
            ts->htpw_words = 0;
            if ((ts->htpw_opts & 1) && !is_placeholder_value(c, cl)) {
                ts->secret_pending = 1;
                unspace(ts);
                put_unquoted(ts, w + b, n - b, 0, 2);
                return 1;
            }
        }
    }
    /* "gh secret set NAME --body=VALUE" and "-bVALUE" (the flag parser takes
     * both): the flag is read, the secret glued to it is not */
    if (ts->pw_words && ts->pw_flags[0] == 'b') {
        size_t fl = cl > 7 && memcmp(c, "--body=", 7) == 0 ? 7 : cl > 2 && c[0] == '-' && c[1] == 'b' ? 2 : 0;
        size_t vs = fl, ve = cl;
        while (vs < ve && (c[vs] == '"' || c[vs] == '\'')) vs++;
        while (ve > vs && (c[ve - 1] == '"' || c[ve - 1] == '\'')) ve--;
        if (fl && vs < ve && !is_placeholder_value(c + vs, ve - vs)) {
            ts->secret_pending = 1;
            ts->pw_words = 0;
            seg_put_str(ts, w, a);
            seg_put_str(ts, c, fl == 7 ? 6 : 2);
            put_unquoted(ts, w + b, n - b, 0, (int)(vs - fl));   /* the value's closing quotes */
            if (vs > fl) value_quote(ts, w, n, (size_t)(c + fl - w));   /* --body="two words" */
            return 1;
        }
    }
    {
        const char *base = c;
        for (size_t i = 0; i < cl; i++)
            if (c[i] == '/') base = c + i + 1;
        size_t bl = (size_t)(c + cl - base);
        static const char *const reg[] = {"docker", "podman", "nerdctl", "buildah", "skopeo", "oras", "registry",
                                          "az", NULL};   /* az login -u USER -p PASS */
        for (int i = 0; reg[i]; i++)
            if (bl == strlen(reg[i]) && memcmp(base, reg[i], bl) == 0) ts->login_cmd = 1;
        if ((login && bl == 5 && memcmp(base, "login", 5) == 0) || (bl == 7 && memcmp(base, "sshpass", 7) == 0)) {
            strcpy(ts->pw_flags, "p");
            ts->pw_words = 16;
        }
        if (bl == 9 && memcmp(base, "redis-cli", 9) == 0) {
            strcpy(ts->pw_flags, "a");
            ts->pw_words = 16;
        }
        /* "openssl enc -k PASS" (and "-pass pass:PASS", below), "ssh-keygen
         * -N NEWPASS -P OLDPASS": the passphrase is the flag's word */
        if (bl == 7 && memcmp(base, "openssl", 7) == 0) {
            strcpy(ts->pw_flags, "k");
            ts->pw_words = 16;
        }
        if (bl == 10 && memcmp(base, "ssh-keygen", 10) == 0) {
            strcpy(ts->pw_flags, "NP");
            ts->pw_words = 16;
        }
        if (bl == 8 && memcmp(base, "htpasswd", 8) == 0) {
            ts->htpw_words = 12;
            ts->htpw_args = ts->htpw_opts = 0;
        }
        /* "gh secret set NAME --body VALUE" (or -b VALUE): the value is the
         * secret itself ("gh variable set" is not, nor "gh secret list") */
        if (bl == 2 && memcmp(base, "gh", 2) == 0) ts->gh_cmd = 1;
        if (gh == 1 && cl == 6 && memcmp(c, "secret", 6) == 0) ts->gh_cmd = 2;
        if (gh == 2 && cl == 3 && memcmp(c, "set", 3) == 0) {
            strcpy(ts->pw_flags, "b");
            ts->pw_words = 16;
        }
        static const char *const my[] = {"mysql", "mysqldump", "mysqladmin", "mysqlimport", "mysqlcheck", "mysqlshow",
                                         "mariadb", "mariadb-dump", "mariadb-admin", NULL};
        for (int i = 0; my[i]; i++)
            if ((size_t)(c + cl - base) == strlen(my[i]) && memcmp(base, my[i], strlen(my[i])) == 0) ts->mysql_words = 16;
    }
    /* 32+ hex digits a few words after "token", "secret", "key" ("the auth
     * token is 4f3a...", a Twilio auth token): a key, not a commit (those are
     * read; longer hex is a secret anywhere) */
    /* likewise random letters and digits there ("the secret key is
     * Xk9mP2qLw8vB3nR7tY5u"): too short for the base64 rule, which wants 32
     * (shorter hex and UUIDs, key ids, and dotted names such as
     * app.8d79d89a0da0c41aebb8.js stay read) */
    /* an AWS secret access key after "secret" or "key": 40 of [A-Za-z0-9/+]
     * with both cases and a digit (AWS's documented example key,
     * ".../bPxRfiCYEXAMPLEKEY", is not random enough for the rules above;
     * its '/' made it a path, and its last part was read) */
    int aws_secret = 0;
    if (keyw && cl == 40 && span_of(c, cl, "/+")) {
        int up = 0, lo = 0, dg = 0;
        for (size_t i = 0; i < cl; i++) {
            up |= isupper((unsigned char)c[i]) != 0;
            lo |= islower((unsigned char)c[i]) != 0;
            dg |= isdigit((unsigned char)c[i]) != 0;
        }
        /* and a '/' or '+': a 40-letter identifier ("getUserProfile...2024Report") has neither */
        aws_secret = up && lo && dg && (memchr(c, '/', cl) || memchr(c, '+', cl));
    }
    if (keyw && ((keyhex && cl >= 32 && is_hex(c, cl)) || aws_secret ||
                 (!is_hex(c, cl) && !is_uuid(c, cl) && span_of(c, cl, "_-") && looks_like_token(c, cl)))) {
        ts->secret_pending = 1;
        unspace(ts);
        put_unquoted(ts, w, a, 1, 2);
        put_unquoted(ts, w + b, n - b, 0, 2);
        return 1;
    }
    {
        size_t qs = 0, qe = cl;
        while (qs < qe && (c[qs] == '"' || c[qs] == '\'' || c[qs] == '`')) qs++;
        while (qe > qs && (c[qe - 1] == '"' || c[qe - 1] == '\'' || c[qe - 1] == '`')) qe--;
        static const char *const kw[] = {"token", "tokens", "secret", "secrets", "key", "keys", NULL};
        int named = is_cred_name(c + qs, qe - qs, 0);
        /* a dotted config key names one by its last part ("git config
         * github.token <40 hex>", "hub.oauthtoken") */
        size_t ks = qe;
        while (ks > qs && c[ks - 1] != '.') ks--;
        if (ks == qs) ks = qe;   /* no dot: the whole word, below */
        for (int i = 0; !named && kw[i]; i++)
            named = (qe - qs == strlen(kw[i]) && starts_ci(c + qs, qe - qs, kw[i])) ||
                    (qe - ks == strlen(kw[i]) && starts_ci(c + ks, qe - ks, kw[i]));
        /* key words of other languages (Spanish and Italian "clave", "chiave",
         * Portuguese "chave", French "clé", German "Schlüssel", Dutch
         * "sleutel", Korean 키, "secreto", "segreto", "segredo"); only a
         * random token after them is taken, so a broad match is safe */
        static const char *const kw_other[] = {"clave", "chave", "chiave", "cl\xc3\xa9", "schl\xc3\xbcssel", "sleutel",
                                               "nyckel", "n\xc3\xb8gle", "klucz", "\xed\x82\xa4", "secreto", "segreto",
                                               "segredo", NULL};
        char lowk[64];
        if (!named && lower_word(c + qs, qe - qs, lowk, sizeof lowk)) named = contains_any(lowk, kw_other);
        if (named) ts->key_words = KEY_WORDS;
        /* Korean glues its "is" to the name as a particle: "비밀번호는 X" */
        int particle = qe - qs > 3 && (memcmp(c + qe - 3, "\xeb\x8a\x94", 3) == 0 || memcmp(c + qe - 3, "\xec\x9d\x80", 3) == 0);
        /* "password", "DB_PASSWORD", "Passwort" (not "passport"): "is" may
         * follow, then the password itself; "Passwort:" (or the particle)
         * names it at once (the English names have their "name:" rules) */
        if (names_password(c + qs, qe - qs) && c[qs] != '-') {
            ts->prose_pw = (b < n && w[b] == ':' && !named) || particle ? 1 : 2;
            /* a bare name ("with password X"), not a pair (REDIS_PASSWORD=x,
             * whose next line is another pair) */
            if (ts->prose_pw == 2 && b == n && !memchr(c, '=', cl) && !memchr(c, ':', cl)) ts->prose_pw = 3;
        }
        if (b == n && qs == 0 && qe == cl) {
            if (names_password(c, cl) && c[0] != '-') ts->cred_noun = 2;
            else if (names_key_noun(c, cl, kqual)) ts->cred_noun = 1;
            ts->key_qual = is_key_qualifier(c, cl);
        }
    }
    size_t digits = 0;
    for (size_t i = 0; bearer && i < cl; i++) digits += isdigit((unsigned char)c[i]) != 0;
    if ((bearer == 1 && cl >= 16 && digits && span_of(c, cl, "-._~+/=")) ||
        (bearer == 2 && is_basic_credentials(c, cl))) {
        ts->secret_pending = 1;   /* "Authorization: Bearer <token>", "Basic <base64 of user:password>" */
        unspace(ts);
        put_unquoted(ts, w, a, 1, 2);
        put_unquoted(ts, w + b, n - b, 0, 2);
        return 1;
    }
    /* any case: HTTP/2 and "curl -v" show lower-case headers ("authorization:
     * basic ..."); the token tests below keep "bearer authentication" read */
    if (cl == 6 && b == n && starts_ci(c, 6, "bearer")) ts->bearer = 1;
    if (cl == 5 && b == n && starts_ci(c, 5, "basic")) ts->bearer = 2;
    long lq = lead_quote(w, a);
    /* "my password is hunter2xyz!" in prose: after a password's name and
     * "is", "was" or "to" (set it to), or their like in another language
     * (is_copula), a word in quotes or one that is no word (a letter with a
     * digit or a symbol) is the password; "the password is required", "is
     * case-sensitive", "is 12-characters long" are read */
    /* likewise after "パスワードは" (Japanese, Chinese: no word names it), and
     * a random token after "トークンは", "キー：" */
    int cue = ppw == 1 ? 1 : ppw ? 0 : cjk_secret_cue(ts);
    /* a word in a code span there is set apart like a quoted one ("with
     * the password `toor`"); not a flag ("the password `--stdin` option") */
    int codew = ts->word_is_code && cl && c[0] != '-';
    /* right after the name, without "is": a quoted word or one with a
     * digit or a symbol other than '_' ("with password Hunt3r2024!", "the
     * password \"x\""; "the password reset_token flow" is read) */
    int direct = 0;
    if (ppw == 3 && cl) {
        size_t marks = 0;   /* digits and symbols other than '_' */
        for (size_t i = 0; i < cl; i++) marks += isdigit((unsigned char)c[i]) || (c[i] != '_' && strchr("!@#$%^&*+=?~", c[i]));
        direct = lq >= 0 || codew || (looks_like_password(c, cl) && marks);
    }
    /* after "The passphrase for the key is" (cred_span): as after "password
     * is", but a quoted path or file name says where the secret is ("The
     * password for prod is in "vault.yaml"" stops at "in" anyway); after a
     * key's or token's name only a word that looks like one ("The token for
     * the bot is "expired"" is read) */
    int spanned = scue && !is_reference_value(c, cl) &&
                  (scue == 2 ? lq >= 0 || codew || looks_like_password(c, cl) : looks_like_password(c, cl) || looks_like_token(c, cl));
    if (cl && !is_placeholder_value(c, cl) &&
        ((cue == 1 && (lq >= 0 || codew || looks_like_password(c, cl))) || direct || spanned ||
         (cue == 2 && !is_hex(c, cl) && !is_uuid(c, cl) && span_of(c, cl, "_-") && looks_like_token(c, cl)))) {
        ts->secret_pending = 1;
        unspace(ts);
        put_value_tail(ts, w + b, n - b, 2);
        if (lq >= 0) value_quote(ts, w, n, (size_t)lq);
        return 1;
    }
    /* "is:" too: "The password is:" over a list item or a line holding it;
     * and a dash or an arrow between them ("- Password — Wonder!and9",
     * "DB password → x", a list of credentials) */
    if (ppw >= 2 && (((b == n || (b + 1 == n && w[b] == ':')) && is_copula(c, cl)) || is_dash_sep(w, n))) ts->prose_pw = 1;
    /* "should be", "will be", "has been", "is now": the value comes after them */
    if (ppw >= 2 && b == n && is_modal(c, cl)) ts->prose_pw = 2;
    if (ppw == 1 && b == n && cl == 3 && memcmp(c, "now", 3) == 0) ts->prose_pw = 1;
    if (scue && b == n && cl == 3 && memcmp(c, "now", 3) == 0) ts->span_cue = scue;
    /* "The passphrase for the key is "correct horse battery staple"": a
     * credential's name, a phrase opened by "for", "of" ... (is_span_word)
     * of at most CRED_SPAN words with no punctuation, then "is", "was",
     * "to" (is_copula), a ':' ending the phrase's last word, or a lone '='
     * or ':': the next word is taken as after "password is". "should be"
     * ends it too ("be" is a copula). A noun right after the name ("the
     * password policy is ...") opens no phrase. */
    if (noun && b == n && is_span_word(c, cl)) {
        ts->cred_span = CRED_SPAN;
        ts->cred_noun = noun;
    } else if (noun == 1 && (((b == n || (b + 1 == n && w[b] == ':')) && is_copula(c, cl)) || is_dash_sep(w, n))) {
        /* no phrase: "Set SECRET_KEY to 'django-insecure-...'", "the
         * webhook secret is whsec_..." (a password's name has prose_pw) */
        ts->span_cue = 1;
    } else if (span) {
        int sep = n == 1 && (w[0] == '=' || w[0] == ':');
        if (sep || (b == n && is_copula(c, cl)) || (b + 1 == n && w[b] == ':' && cl)) {
            ts->span_cue = noun;
        } else if (b == n && span > 1) {
            ts->cred_span = span - 1;
            ts->cred_noun = noun;
        }
    }
    if (((cred == 2 && !(cl == 1 && (c[0] == '=' || c[0] == ':'))) ||
         (cred == 3 && c[0] != '-' && (!is_plain_word(c, cl) || lq >= 0)) ||   /* --password "two words" */
         (cred == 4 && looks_like_token(c, cl))) &&
        cl && !is_placeholder_value(c, cl)) {
        ts->secret_pending = 1;   /* the value of "aws_secret_access_key = ..." */
        unspace(ts);
        put_value_tail(ts, w + b, n - b, 2);
        if (lq >= 0) value_quote(ts, w, n, (size_t)lq);
        return 1;
    }
    if (cred == 1 && n == 1 && (w[0] == '=' || w[0] == ':')) { ts->cred = 2; return 1; }
    /* long hex after a word naming a digest ("The sha256 is e3b0...",
     * "checksum: ..."): a checksum, not a secret; not read (64 digits say
     * nothing to a listener) and not announced as a secret either */
    if (ts->digest_words && !keyw && cl > 40 && is_hex(c, cl)) {
        unspace(ts);
        put_unquoted(ts, w, a, 1, 2);
        put_unquoted(ts, w + b, n - b, 0, 2);
        return 1;
    }
    {
        static const char *const dg[] = {"sha256", "sha-256", "sha384", "sha512", "sha-512", "sha3", "blake2", "digest",
                                         "checksum", "hash", NULL};
        char lowd[64];
        if (ts->digest_words) ts->digest_words--;
        if (lower_word(c, cl, lowd, sizeof lowd) && contains_any(lowd, dg)) ts->digest_words = 8;
    }
    if (cl && is_secret_token(c, cl)) {
        ts->secret_pending = 1;
        unspace(ts);
        put_unquoted(ts, w, a, 1, 2);
        put_unquoted(ts, w + b, n - b, 0, 2);
        return 1;
    }
    /* a connection string (Server=db;User Id=sa;Password=p@ss;, ODBC's
     * Uid=sa;Pwd=x), a form body (username=bob&password=x), compact JSON
     * ({"user":"bob","password":"x"}) or a glued "password:x": its ';' '&'
     * ',' separated pairs are names and values ('=' or ':'), and the rules
     * below saw only the first pair, or none; a credential's value goes,
     * the rest is read. A first NAME=value pair is left to the rule below,
     * which takes all of its value (quoted, a URL). */
    const char *ud;
    if ((memchr(c, '=', cl) || memchr(c, ':', cl)) && !url_domain(c, cl, &ud)) {
        size_t from = 0;   /* c[0, from) is out (a URL reads its domain, below) */
        int hit = 0, vq = 0, first = 1;   /* vq: the last value's opening quotes: its closing ones go too */
        for (size_t i = 0; i < cl && first >= 0;) {
            size_t e = i, ns = i, q;
            while (e < cl && c[e] != ';' && c[e] != '&' && c[e] != ',') e++;
            while (ns < e && (c[ns] == '{' || c[ns] == '[' || c[ns] == '"' || c[ns] == '\'')) ns++;
            /* each name of the pair, and of a chain: --from-literal=password=x */
            for (q = ns; q < e;) {
                while (q < e && c[q] != '=' && c[q] != ':') q++;
                if (q == e) break;
                size_t ne = q, vs = q + 1;
                int quoted = 0;
                while (ne > ns && (c[ne - 1] == '"' || c[ne - 1] == '\'')) { ne--; quoted = 1; }
                while (vs < e && (c[vs] == '"' || c[vs] == '\'')) vs++;
                /* a quoted key "token" (an API's JSON) names one too */
                int name = ne > ns && (is_cred_name(c + ns, ne - ns, c[q] == ':' && !quoted) ||
                                       (ne - ns == 3 && starts_ci(c + ns, 3, "pwd")) ||
                                       (quoted && ne - ns == 5 && starts_ci(c + ns, 5, "token")));
                if (first && c[q] == '=' && name) { first = -1; break; }
                first = 0;
                /* a value that is a secret by its own format goes under any
                 * name (Azure's ...;AccountKey=<base64>;EndpointSuffix=...) */
                size_t ve = e;
                while (ve > vs && (c[ve - 1] == '"' || c[ve - 1] == '\'' || c[ve - 1] == '}' || c[ve - 1] == ']')) ve--;
                if (!name && ve > vs && is_secret_token(c + vs, ve - vs)) name = 1;
                if (name && vs < e && !is_placeholder_value(c + vs, e - vs)) {
                    if (!hit) seg_put_str(ts, w, a);
                    hit = ts->secret_pending = 1;
                    seg_put_str(ts, c + from, q - from);
                    from = e;
                    vq = (int)(vs - q - 1);
                    break;
                }
                ns = q = vs;
            }
            if (first > 0) first = 0;
            i = e + 1;
        }
        if (hit) {
            seg_put_str(ts, c + from, cl - from);
            if (from == cl) put_unquoted(ts, w + b, n - b, 0, vq);
            else seg_put_str(ts, w + b, n - b);
            return 1;
        }
    }
    /* KEY=value with a credential-looking name: the name is read, the value is not */
    const char *eq = memchr(c, '=', cl);
    if (eq && eq > c) {
        size_t nl = (size_t)(eq - c), vs = nl + 1;
        const char *v = c + vs;
        size_t vl = cl - vs;
        int vq = 0;   /* the value's opening quotes: as many closing ones go with it */
        while (vl && (*v == '"' || *v == '\'')) { v++; vl--; vq++; }
        while (vl && (v[vl - 1] == '"' || v[vl - 1] == '\'')) vl--;
        /* DATABASE_URL=postgres://user:password@host/db: the name and the host
         * are read (the whole word was taken for a path, "db", without a notice) */
        const char *vh;
        int vpass = 0;
        size_t vhl = url_host_with_creds(v, vl, &vh, &vpass);
        if (vhl && vpass) return put_cred_host(ts, w, n, a, b, c, nl, vq, vh, vhl);
        /* a value that is a secret by its own format goes whatever the name
         * (MY_VAR=sk-ant-..., AccountKey=<88 base64>): the '=' kept the word
         * from the token rules */
        if (vl && (is_secret_token(v, vl) || (vl >= 32 && is_hex(v, vl) && names_key(c, nl)))) {
            ts->secret_pending = 1;
            seg_put_str(ts, w, a);
            const char *d;
            size_t dl = url_domain(c, nl, &d);   /* https://host/?key=sk-...: the host */
            if (dl) seg_put_str(ts, d, dl);
            else seg_put_str(ts, c, nl);
            put_unquoted(ts, w + b, n - b, 0, vq);
            return 1;
        }
        if (is_cred_name(c, nl, 0)) {
            if (vl == 0) { if (cl == nl + 1) ts->cred = 2; return 0; }
            if (!is_placeholder_value(v, vl)) {
                ts->secret_pending = 1;
                seg_put_str(ts, w, a);
                seg_put_str(ts, c, nl);
                put_value_tail(ts, w + b, n - b, vq);   /* the value's closing quotes */
                if (vq) value_quote(ts, w, n, (size_t)(v - w) - 1);   /* DB_PASSWORD="two words" */
                return 1;
            }
        }
    }
    /* "password: x", "DB_PASSWORD = x", "\"api_key\": \"x\"": the next word is the value */
    size_t cs = 0, ce = cl;
    while (cs < ce && (c[cs] == '"' || c[cs] == '\'')) cs++;
    /* a variable named in code: PowerShell's $env:API_KEY = "...", PHP's
     * $password = "..." (the sigil kept it from the names) */
    if (ce - cs > 5 && starts_ci(c + cs, 5, "$env:")) cs += 5;
    else if (ce - cs > 1 && c[cs] == '$') cs++;
    while (ce > cs && (c[ce - 1] == '"' || c[ce - 1] == '\'')) ce--;
    int colon = b < n && memchr(w + b, ':', n - b) != NULL;
    int equals = b < n && memchr(w + b, '=', n - b) != NULL;
    if (is_cred_name(c + cs, ce - cs, colon && !equals)) ts->cred = (colon || equals) ? 2 : 1;
    /* "The token: it expires" is read, "Vercel token: Xa9bC3dE5..." is not */
    else if (colon && !equals && names_key(c + cs, ce - cs)) ts->cred = 4;
    if (netrc_pw) ts->cred = 2;
    /* "Username / password:" or "user/password:": the next value is the user */
    if (colon) {
        const char *sl = memchr(c + cs, '/', ce - cs);
        if ((ts->cred == 2 && sent_ends_user_slash(ts)) ||
            (sl && names_user(c + cs, (size_t)(sl - c - cs)) && is_cred_name(sl + 1, (size_t)(c + ce - sl - 1), 0))) {
            ts->cred = 0;
            ts->user_pair = 1;
        }
    }
    /* a command-line flag "--password hunter2", "--api-key KEY": the next
     * word, unless it is another flag ("--password-stdin" names no value) or
     * a plain word (prose about the flag) */
    if (ts->cred == 1 && b == n && is_cred_flag(c, cl)) ts->cred = 3;
    /* "setx API_KEY value" (Windows), fish's "set -gx API_TOKEN value": the
     * name then its value, with no '=' between */
    int setcmd = ts->set_cmd;
    ts->set_cmd = (cl == 4 && starts_ci(c, 4, "setx")) || (cl == 3 && memcmp(c, "set", 3) == 0) ||
                  (setcmd && cl > 1 && c[0] == '-');
    if (setcmd && ts->cred == 1 && b == n && !(cl > 1 && c[0] == '-')) ts->cred = 3;
    /* user:password@ in a URL of any scheme: the host is read */
    const char *host;
    int pass = 0;
    size_t hl = url_host_with_creds(c, cl, &host, &pass);
    if (hl && pass) return put_cred_host(ts, w, n, a, b, NULL, 0, 0, host, hl);
    /* a vendor-prefixed key glued to other text ("key=sk-ant-...|foo",
     * "(ghp_...)x"): the key goes, the rest is read (a URL by its domain) */
    int glued = 0;
    for (size_t i = 0; i < cl; i++) {
        if (i && (isalnum((unsigned char)c[i - 1]) || c[i - 1] == '_' || c[i - 1] == '-' || c[i - 1] == '.')) continue;
        size_t e = i;
        while (e < cl && (isalnum((unsigned char)c[e]) || c[e] == '_' || c[e] == '-' || c[e] == '.')) e++;
        size_t t = e;
        while (t > i && c[t - 1] == '.') t--;
        if (t > i && is_prefixed_token(c + i, t - i)) {
            if (!glued) {
                glued = 1;
                const char *d;
                size_t dl = url_domain(c, cl, &d);
                seg_put_str(ts, w, a);
                if (dl) {
                    seg_put_str(ts, d, dl);
                    seg_put_str(ts, w + b, n - b);
                    ts->secret_pending = 1;
                    return 1;
                }
            }
            seg_put_str(ts, c, i);
            c += t;
            cl -= t;
            i = 0;
        }
    }
    if (glued) {
        ts->secret_pending = 1;
        seg_put_str(ts, c, cl);
        seg_put_str(ts, w + b, n - b);
        return 1;
    }
    (void)k;
    return 0;
}

/* A word longer than this is judged by its first WORD_MAX bytes and the rest
 * is not buffered (a 10 MB token costs nothing). */
#define WORD_MAX 1024

static void word_end(text_stream *ts);

/* The word passed WORD_MAX bytes. No word is that long, so it is a URL (its
 * domain is read, as for any bare URL), or a key, token or data (never read:
 * with the secret notice when its start looks like a secret). Only text in a
 * script written without spaces (Thai, Lao...) is read on, in pieces. */
static void long_word(text_stream *ts) {
    const char *w = ts->word.p;
    size_t n = ts->word.len, a = 0, k, hi = 0;
    while (a < n && is_lead_punct(w + a, n - a, &k)) a += k;
    const char *c = w + a;
    size_t cl = n - a;
    for (size_t i = 0; i < cl; i++) hi += (unsigned char)c[i] >= 0x80;
    if (!ts->pem && ts->cred != 2 && !ts->val_quote && hi * 2 > cl) { word_end(ts); return; }
    ts->word.len = 0;   /* w stays valid: seg_* never touch the word buffer */
    ts->long_word = 1;
    ts->lw_tail_len = 0;
    if (ts->pem) { ts->pem_words++; return; }   /* inside a PEM block: dropped anyway */
    int value = ts->cred == 2 || ts->val_quote;   /* a quoted value's later word: it goes too */
    ts->cred = 0;
    const char *host, *d;
    int pass = 0;
    size_t hl = url_host_with_creds(c, cl, &host, &pass), dl;
    if (hl && pass) {
        ts->secret_pending = 1;
        seg_put_str(ts, w, a);
        seg_put_str(ts, host, hl);
    } else if (is_image_url(c, cl)) {
        unspace(ts);
    } else if (!value && (dl = url_domain(c, cl, &d)) != 0) {
        seg_put_str(ts, w, a);
        seg_put_str(ts, d, dl);
    } else {
        if (value || is_secret_token(c, cl) || looks_random(c, cl)) ts->secret_pending = 1;
        unspace(ts);
        seg_put_str(ts, w, a);
    }
}

/* The rest of a long word goes by; only its last bytes are kept. */
static void long_word_keep(text_stream *ts, const char *p, size_t k) {
    size_t cap = sizeof ts->lw_tail;
    if (ts->lw_tail_len + k > cap) {
        size_t drop = ts->lw_tail_len + k - cap;
        memmove(ts->lw_tail, ts->lw_tail + drop, ts->lw_tail_len - drop);
        ts->lw_tail_len -= drop;
    }
    memcpy(ts->lw_tail + ts->lw_tail_len, p, k);
    ts->lw_tail_len += k;
}

/* The long word ended: its trailing punctuation ("...token." ends a sentence). */
static void long_word_end(text_stream *ts) {
    const char *t = ts->lw_tail;
    size_t n = ts->lw_tail_len, s0 = 0, b, k;
    ts->long_word = 0;
    ts->lw_tail_len = 0;
    while (s0 < n && ((unsigned char)t[s0] & 0xC0) == 0x80) s0++;   /* a cut character */
    b = n;
    while (b > s0 && is_trail_punct(t + s0, b - s0, &k)) b -= k;
    if (b < n && ts->sent.len) seg_put_str(ts, t + b, n - b);
}

static void word_end(text_stream *ts) {
    if (ts->long_word) { long_word_end(ts); return; }
    if (ts->word.len == 0) return;
    const char *w = ts->word.p;
    size_t n = ts->word.len, a = 0, b = n, k;
    while (a < b && is_lead_punct(w + a, b - a, &k)) a += k;
    while (b > a && is_trail_punct(w + a, b - a, &k)) b -= k;
    ts->word.len = 0;   /* w stays valid: seg_* never touch the word buffer */
    ts->word_is_code = ts->word_code;
    ts->word_code = 0;
    if (ts->bang_end) {   /* "My password is hunter2xyz! Then go.": the '!' ended it */
        ts->bang_end = 0;
        if (a < n && isupper((unsigned char)w[a]) && ts->sent.len) {
            unspace(ts);
            seg_put_str(ts, ".", 1);
            seg_space(ts);
        }
    }
    /* an emoji shortcode (":rocket:", ":white_check_mark:", ":+1:") is an
     * emoji not yet rendered: left out like one, its punctuation kept */
    {
        size_t e = a, codes = 0;
        while (e < n && w[e] == ':') {
            size_t j = e + 1, letters = 0;
            while (j < n && (islower((unsigned char)w[j]) || isdigit((unsigned char)w[j]) || strchr("_+-", w[j]))) {
                letters += islower((unsigned char)w[j]) != 0;
                j++;
            }
            int plus1 = j - e == 3 && (w[e + 1] == '+' || w[e + 1] == '-') && w[e + 2] == '1';
            if (j >= n || w[j] != ':' || j == e + 1 || (!letters && !plus1)) break;
            e = j + 1;
            codes++;
        }
        size_t t = e;
        while (t < n && strchr(".,;!?)]}\"'", w[t])) t++;
        if (codes && t == n) {   /* "(:tada:)" goes with its brackets, "done :tada:!" keeps the '!' */
            unspace(ts);
            for (size_t k = e; k < n; k++)
                if (strchr(".,;!?", w[k])) seg_put_str(ts, w + k, 1);
            return;
        }
    }
    int handled = word_secret(ts, w, n, a, b);
    /* a sentence end (or a ';') closes the window after a key word: "Set the
     * key. The commit 9fce..." is a commit */
    if (b < n && (memchr(w + b, '.', n - b) || memchr(w + b, '!', n - b) || memchr(w + b, '?', n - b) ||
                  memchr(w + b, ';', n - b)))
        ts->key_words = ts->prose_pw = ts->digest_words = ts->login_words = ts->cred_span = ts->span_cue = 0;
    if (handled) return;
    /* a PEM marker that prose names on a line of its own ("and end with" /
     * "-----END CERTIFICATE-----"): its words without the dashes */
    if (b - a > 5 && (memcmp(w + a, "-----", 5) == 0 || memcmp(w + b - 5, "-----", 5) == 0)) {
        size_t da = a, db = b;
        while (da < db && w[da] == '-') da++;
        while (db > da && w[db - 1] == '-') db--;
        if (da - a >= 5 || b - db >= 5) {
            seg_put_str(ts, w, a);
            seg_put_str(ts, w + da, db - da);
            seg_put_str(ts, w + b, n - b);
            return;
        }
    }
    if (b > a && is_image_url(w + a, b - a)) {
        unspace(ts);
        seg_put_str(ts, w + b, n - b);
        return;
    }
    const char *core = NULL;
    size_t cl = 0;
    if (b > a) {
        cl = url_domain(w + a, b - a, &core);
        if (!cl) cl = path_last(w + a, b - a, &core);
    }
    if (cl) {
        seg_put_str(ts, w, a);
        seg_put_str(ts, core, cl);
        seg_put_str(ts, w + b, n - b);
    } else {
        seg_put_str(ts, w, n);
    }
}

/* One cleaned code point (or space) from the inline layer. */
/* After a left-out emoji or code span: the space before it goes when
 * punctuation follows ("Done ✅." -> "Done.", a repeated one too: "Use
 * `a && b`, `c || d`, or" -> "Use, or"), or text without spaces on both
 * sides ("完了 ✅ です" -> "完了です"). */
static int is_gap_punct(uint32_t cp) {
    return (cp < 0x80 && cp && strchr(".,;:!?", (int)cp)) || is_cjk_term(cp) || is_script_term(cp) || cp == 0x3001 ||
           cp == 0xFF0C || cp == 0xFF1A || cp == 0xFF1B || cp == 0x2026;
}
static int gap_close(text_stream *ts, const char *p, size_t k, uint32_t cp) {
    ts->sym_gap = 0;
    size_t n = ts->sent.len, st;
    if (cp == ')' && ts->word.len == 1 && ts->word.p[0] == '(') {   /* "(✅)": the brackets go too */
        ts->word.len = 0;
        return 1;
    }
    if (ts->word.len || ts->long_word || n < 2 || ts->sent.p[n - 1] != ' ' || ts->ord_at || ts->etc_wait) return 0;
    uint32_t before = last_cp(ts->sent.p, n - 1, &st);
    if (is_gap_punct(cp)) {
        unspace(ts);
        return n - 1 - st == k && memcmp(ts->sent.p + st, p, k) == 0;   /* the same mark again: said once */
    }
    if (is_nospace_script(cp) && is_nospace_script(before)) unspace(ts);
    return 0;
}

/* A URL being read takes a spaceless-script letter into its word when the
 * letter is part of it: "https://例え.jp/ドキュメント" and
 * ".../wiki/東京" were cut at the script change and read in pieces
 * ("https:例え.jp/ドキュメント"). Japanese writes a URL against its particles
 * ("https://example.comを開いて"), so such a letter joins only a host just
 * begun after "://", or a path, query or fragment part begun right after
 * '/', '=', '?', '&' or '#', and a path part ends at the first hiragana after
 * anything else ("/wiki/東京を参照" keeps を out; "/wiki/ひらがな" is whole). */
static int url_takes(const text_stream *ts, uint32_t cp) {
    const char *w = ts->word.p;
    size_t n = ts->word.len, start;
    if ((cp >= 0x3000 && cp <= 0x303F) || (cp >= 0xFF00 && cp <= 0xFFEF)) return 0;   /* punctuation */
    if (starts_ci(w, n, "https://")) start = 8;
    else if (starts_ci(w, n, "http://")) start = 7;
    else if (starts_ci(w, n, "ftp://")) start = 6;
    else return 0;
    size_t host_end = start;
    while (host_end < n && w[host_end] != '/' && w[host_end] != '?' && w[host_end] != '#') host_end++;
    size_t run = n;   /* the trailing run of non-ASCII bytes */
    while (run > start && (unsigned char)w[run - 1] >= 0x80) run--;
    if (host_end >= n) {   /* in the host */
        if (run < n) return 1;
        return run == start || w[run - 1] == '.' || w[run - 1] == '-';
    }
    if (run == n) return strchr("/=?&#", w[n - 1]) != NULL;
    if (run <= host_end || !strchr("/=?&#", w[run - 1])) return 0;
    int hira = cp >= 0x3041 && cp <= 0x309F, all_hira = 1;
    for (size_t i = run; i < n;) {
        uint32_t c;
        size_t k;
        c = dec(w + i, n - i, &k);
        if (!(c >= 0x3041 && c <= 0x309F)) all_hira = 0;
        i += k;
    }
    return !hira || all_hira;
}

static void put_cp(text_stream *ts, const char *p, size_t k, uint32_t cp) {
    if (cp == (uint32_t)GAP_MARK || cp == (uint32_t)KEYCAP_MARK) { ts->sym_gap = 1; return; }
    if (ts->sym_gap && cp != ' ' && gap_close(ts, p, k, cp)) return;
    ts->prev_cp = cp;
    if (cp == ' ') {
        word_end(ts);
        seg_space(ts);
    } else if (is_nospace_script(cp) && !(ts->word.len && !ts->long_word && url_takes(ts, cp))) {
        word_end(ts);
        seg_put(ts, p, k, cp);
    } else if (ts->long_word) {
        long_word_keep(ts, p, k);
    } else {
        tb_put(ts, &ts->word, p, k);
        if (ts->word.len > WORD_MAX) long_word(ts);
    }
}
static void put_bytes(text_stream *ts, const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t k;
        uint32_t cp = dec(s + i, n - i, &k);
        put_cp(ts, s + i, k, cp);
        i += k;
    }
}

static void hard_break(text_stream *ts) {
    word_end(ts);
    if (ts->ord_at) day_decide(ts);   /* "Siehe Kapitel 4. Dort" at the paragraph's end is two */
    if (ts->sent.len || ts->cjk_end) emit_sentence(ts);
    secret_notice(ts);
    /* A name ending its block ("New credentials:" over a list, a heading
     * "## Secrets:") names no value in the next block, whose first word is
     * prose ("Added a vault" lost "Added"): only a token-like word there is
     * still taken for the value; a flag or "password =" waiting for its
     * value stop waiting. */
    /* A password's name with its ':' or '=' ("Your new password:" over a
     * line holding it) is the exception: a word in quotes or one that is
     * no word (a letter with a digit or a symbol, looks_like_password)
     * there is the password, as after "password is"; prose is read. */
    int pw_named = ts->cred == 2 && ts->prose_pw == 2;
    ts->cred = ts->cred == 2 || ts->cred == 4 ? 4 : 0;
    /* likewise a password's name right before the break takes no value
     * without "is" in the next block, nor a user/password pair */
    if (ts->prose_pw >= 2) ts->prose_pw = pw_named ? 1 : 0;
    ts->cred_noun = ts->key_qual = ts->cred_span = 0;
    ts->user_pair = ts->bang_end = 0;
}

/* ---- inline layer ----------------------------------------------------------- */
/* The first pat in s[0, n), ignoring ASCII case ("</SCRIPT>"); pat is lower case. */
static const char *find_ci(const char *s, size_t n, const char *pat, size_t pl) {
    for (size_t i = 0; i + pl <= n; i++)
        if ((s[i] | 0x20) == (pat[0] | 0x20) && starts_ci(s + i, pl, pat)) return s + i;
    return NULL;
}

static size_t run_of(const char *s, size_t n, size_t i, char c) {
    size_t r = 0;
    while (i + r < n && s[i + r] == c) r++;
    return r;
}

/* An HTML tag between '<' and '>': drops it; returns 0 if it is not a tag. */
/* The most bytes any one decision looks ahead (bounded rescans). */
#define LOOKAHEAD 256

/* after[0, an): the line after the '>' (final: all of it). -1: more bytes
 * are needed to decide. */
/* Does "</name>" (any case) follow in after[0, an), within LOOKAHEAD? -1:
 * not known yet (the line goes on and the window is not all here). */
static int close_follows(const char *name, size_t nl, const char *after, size_t an, int final) {
    size_t m = an < LOOKAHEAD ? an : LOOKAHEAD;
    for (size_t k = 0; k + 3 + nl <= m; k++) {
        if (after[k] != '<' || after[k + 1] != '/' || after[k + 2 + nl] != '>') continue;
        int same = 1;
        for (size_t c = 0; c < nl && same; c++) same = tolower((unsigned char)after[k + 2 + c]) == tolower((unsigned char)name[c]);
        if (same) return 1;
    }
    return an < LOOKAHEAD && !final ? -1 : 0;
}

/* An element's name said as a word ("the <script> tag", "A <textarea>
 * holds"): prose naming the element, not markup. */
static void tag_as_word(text_stream *ts, const char *name, size_t nl, const char *after, size_t an) {
    if (is_word_cp(ts->prev_cp) && ts->prev_cp != '_') put_cp(ts, " ", 1, ' ');
    put_bytes(ts, name, nl);
    if (an && isalnum((unsigned char)after[0])) put_cp(ts, " ", 1, ' ');   /* "<pre>text" */
}

static int html_tag(text_stream *ts, const char *t, size_t n, int at_start, const char *after, size_t an, int final) {
    size_t i = 0;
    int closing = 0;
    if (i < n && t[i] == '/') { closing = 1; i++; }
    size_t ns = i;
    if (i >= n || !isalpha((unsigned char)t[i])) return 0;
    while (i < n && (isalnum((unsigned char)t[i]) || t[i] == '-' || t[i] == '_' || t[i] == ':')) i++;
    size_t nl = i - ns;
    if (i < n && t[i] != ' ' && t[i] != '/' && t[i] != '\t') return 0;
    if (!closing && nl == 15 && memcmp(t + ns, "system-reminder", 15) == 0) {
        ts->skip = SK_SYSREM;
        ts->skip_para = 0;
        return 1;
    }
    if (!closing && ((nl == 8 && memcmp(t + ns, "thinking", 8) == 0) || (nl == 14 && memcmp(t + ns, "function_calls", 14) == 0))) {
        /* reasoning, or a tool call, written into the text in their tags:
         * never read ("<thinking>I should" read "thinkingI should" and the
         * reasoning). At a line start it runs to its close; mid-line only
         * when the close follows on the line, else it is prose naming the tag
         * ("wrap it in <thinking> tags"), read as before */
        int found = at_start;
        size_t m = an < LOOKAHEAD ? an : LOOKAHEAD;
        for (size_t k = 0; !found && k + 3 + nl <= m; k++)
            found = after[k] == '<' && after[k + 1] == '/' && memcmp(after + k + 2, t + ns, nl) == 0 && after[k + 2 + nl] == '>';
        if (!found && an < LOOKAHEAD && !final) return -1;
        if (found) {
            ts->skip = nl == 8 ? SK_THINK : SK_FCALLS;
            ts->skip_para = !at_start;
            return 1;
        }
    }
    /* <script>, <style>, <pre> mid-line open a dropped element only when
     * their close follows on the line, as <thinking>; else it is prose
     * naming the element ("I moved the <script> tag to the end ..." lost
     * the rest of its paragraph), and the name is read */
    int drop_el = !closing && t[n - 1] != '/' &&
                  ((nl == 6 && starts_ci(t + ns, nl, "script")) || (nl == 5 && starts_ci(t + ns, nl, "style")) ||
                   (nl == 3 && starts_ci(t + ns, nl, "pre")));
    if (drop_el && !at_start && i == n) {
        int cf = close_follows(t + ns, nl, after, an, final);
        if (cf < 0) return -1;
        if (!cf) {
            tag_as_word(ts, t + ns, nl, after, an);
            return 1;
        }
    }
    if (!closing && t[n - 1] != '/' && ((nl == 6 && starts_ci(t + ns, nl, "script")) || (nl == 5 && starts_ci(t + ns, nl, "style")))) {
        ts->skip = nl == 6 ? SK_SCRIPT : SK_STYLE;   /* code, not words */
        ts->skip_para = !at_start;
        return 1;
    }
    if (!closing && t[n - 1] != '/' && nl == 3 && starts_ci(t + ns, nl, "pre")) {
        /* preformatted text is code or program output, like a fence: its
         * notice comes at </pre> (it was read out as prose) */
        put_cp(ts, " ", 1, ' ');
        ts->skip = SK_PRE;
        ts->skip_para = !at_start;
        ts->pre_lines = 0;
        return 1;
    }
    static const char *const blocks[] = {"br", "p", "div", "li", "tr", "td", "th", "hr", "ul", "ol",
                                          "h1", "h2", "h3", "h4", "h5", "h6", "table", "details",
                                          "summary", "blockquote", "pre", NULL};
    for (int b = 0; blocks[b]; b++)
        if (strlen(blocks[b]) == nl && starts_ci(t + ns, nl, blocks[b])) { put_cp(ts, " ", 1, ' '); return 1; }
    /* <locale>, redis_<portnumber>, <your-api-key>: a placeholder, not a tag (no
     * attributes, not an HTML element name): the word is read without brackets */
    static const char *const inline_tags[] = {"a", "b", "i", "u", "s", "em", "strong", "code", "span", "img", "sub",
                                              "sup", "kbd", "small", "mark", "del", "ins", "abbr", "cite", "q",
                                              "var", "samp", "tt", "strike", "big", "font", "center", "section",
                                              "article", "header", "footer", "nav", "main", "figure", "figcaption",
                                              "dl", "dt", "dd", "caption", "thead", "tbody", "tfoot", "col",
                                              "colgroup", "picture", "source", "video", "audio", "svg", "path",
                                              "html", "head", "body", "title", "meta", "link", "script", "style",
                                              "input", "button", "form", "label", "select", "option", "textarea",
                                              "iframe", "wbr", "nobr", "dfn", "time", "data", "bdi", "bdo", "ruby",
                                              "rt", "rp", "template", "slot", "noscript", "object", "embed",
                                              "param", "canvas", "map", "area", "track", "fieldset", "legend",
                                              "output", "progress", "meter", "dialog", "menu", "aside", "address",
                                              "hgroup", "search", "image", "math", NULL};
    if (closing) return 1;
    int known = 0;
    for (int b = 0; inline_tags[b] && !known; b++) known = strlen(inline_tags[b]) == nl && starts_ci(t + ns, nl, inline_tags[b]);
    /* Element names that are also the usual placeholder words ("cp <source>
     * <dest>", "<path>", "<input> <output>"): an element only when its
     * closing tag follows on the line (within LOOKAHEAD); the words were lost */
    static const char *const ambiguous[] = {"source", "path", "input", "output", "data", "time", "title", "image",
                                            "label", "link", "option", "object", "template", "search", "map", "menu",
                                            "form", "header", "section", "address", "button", "main", "caption",
                                            "article", "slot", "select", "figure", "legend", "dialog", "var", NULL};
    int amb = 0;
    for (int b = 0; known && ambiguous[b] && !amb; b++) amb = strlen(ambiguous[b]) == nl && starts_ci(t + ns, nl, ambiguous[b]);
    /* likewise an element that is no inline formatting nor void, mid-line,
     * without attributes and without its close on the line: prose naming
     * it ("A <textarea> holds the input" read "A holds the input").
     * Formatting tags (<b>, <kbd>, ...) may close on a later line or piece
     * of a cut stream: they stay markup */
    static const char *const markup[] = {"a", "b", "i", "u", "s", "em", "strong", "code", "span", "sub", "sup", "kbd",
                                         "small", "mark", "del", "ins", "abbr", "cite", "q", "var", "samp", "tt",
                                         "strike", "big", "font", "center", "nobr", "dfn", "bdi", "bdo", "ruby", "rt",
                                         "rp", "img", "input", "wbr", "meta", "link", "col", "area", "source",
                                         "track", "embed", "param", "image", NULL};
    int is_markup = 0;
    for (int b = 0; markup[b] && !is_markup; b++) is_markup = strlen(markup[b]) == nl && starts_ci(t + ns, nl, markup[b]);
    if (known && !is_markup && !at_start) amb = 1;
    if (i == n && amb) {
        size_t m = an < LOOKAHEAD ? an : LOOKAHEAD;
        int closed = 0;
        for (size_t k = 0; k + 3 + nl <= m && !closed; k++) {
            if (after[k] != '<' || after[k + 1] != '/' || after[k + 2 + nl] != '>') continue;
            closed = 1;
            for (size_t c = 0; c < nl && closed; c++)
                closed = tolower((unsigned char)after[k + 2 + c]) == tolower((unsigned char)t[ns + c]);
        }
        if (!closed && an < LOOKAHEAD && !final) return -1;
        if (closed) return 1;
        known = 0;
    }
    /* "<your api key>", "<branch name>", "<input file>": words, not
     * attributes (no '=', no quotes, not all boolean attributes such as
     * <input checked>): a placeholder of several words, read without its
     * brackets (the tag was dropped with them) */
    if (i < n) {
        if (t[n - 1] == '/' || memchr(t + i, '=', n - i) || memchr(t + i, '"', n - i) || memchr(t + i, '\'', n - i))
            return 1;
        static const char *const boolean[] = {"checked", "disabled", "selected", "hidden", "required", "readonly",
                                              "multiple", "autofocus", "open", "controls", "autoplay", "loop",
                                              "muted", "defer", "async", "novalidate", "download", "inert", NULL};
        int all = known;
        for (size_t k = i; all && k < n;) {
            while (k < n && (t[k] == ' ' || t[k] == '\t')) k++;
            size_t e = k;
            while (e < n && t[e] != ' ' && t[e] != '\t') e++;
            int ok = e == k;
            for (int b = 0; !ok && boolean[b]; b++) ok = strlen(boolean[b]) == e - k && starts_ci(t + k, e - k, boolean[b]);
            all = ok;
            k = e;
        }
        if (all) return 1;
        known = 0;
    }
    if (known) return 1;
    if (i < n && an == 0 && !final) return -1;   /* is a word glued after it? */
    if (is_word_cp(ts->prev_cp) && ts->prev_cp != '_') put_cp(ts, " ", 1, ' ');   /* List<String> */
    put_bytes(ts, t + ns, n - ns);
    if (i < n && an && isalnum((unsigned char)after[0])) put_cp(ts, " ", 1, ' ');   /* a<b and c>d */
    return 1;
}

static int entity(text_stream *ts, const char *e, size_t n) {
    static const struct { const char *name, *text; } ents[] = {
        {"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"quot", "\""}, {"apos", "'"}, {"nbsp", " "},
        {"mdash", "\xE2\x80\x94"}, {"ndash", "\xE2\x80\x93"}, {"hellip", "\xE2\x80\xA6"},
        /* more of the named entities replies use ("&copy; 2024", "A &rarr; B"
         * were read out as written) */
        {"copy", "\xC2\xA9"}, {"reg", "\xC2\xAE"}, {"trade", "\xE2\x84\xA2"}, {"deg", "\xC2\xB0"},
        {"times", "\xC3\x97"}, {"divide", "\xC3\xB7"}, {"plusmn", "\xC2\xB1"}, {"minus", "\xE2\x88\x92"},
        {"middot", "\xC2\xB7"}, {"bull", "\xE2\x80\xA2"}, {"micro", "\xC2\xB5"}, {"sect", "\xC2\xA7"},
        {"rarr", "\xE2\x86\x92"}, {"larr", "\xE2\x86\x90"}, {"harr", "\xE2\x86\x94"}, {"rArr", "\xE2\x87\x92"},
        {"le", "\xE2\x89\xA4"}, {"ge", "\xE2\x89\xA5"}, {"ne", "\xE2\x89\xA0"}, {"asymp", "\xE2\x89\x88"},
        {"infin", "\xE2\x88\x9E"}, {"euro", "\xE2\x82\xAC"}, {"pound", "\xC2\xA3"}, {"yen", "\xC2\xA5"},
        {"cent", "\xC2\xA2"}, {"laquo", "\xC2\xAB"}, {"raquo", "\xC2\xBB"}, {"lsquo", "\xE2\x80\x98"},
        {"rsquo", "\xE2\x80\x99"}, {"ldquo", "\xE2\x80\x9C"}, {"rdquo", "\xE2\x80\x9D"}, {"frac12", "\xC2\xBD"},
        {"ensp", " "}, {"emsp", " "}, {"thinsp", " "},
    };
    for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++)
        if (strlen(ents[i].name) == n && memcmp(ents[i].name, e, n) == 0) {
            put_bytes(ts, ents[i].text, strlen(ents[i].text));
            return 1;
        }
    if (n >= 2 && e[0] == '#') {
        char num[12];
        if (n - 1 >= sizeof num) return 0;
        memcpy(num, e + 1, n - 1);
        num[n - 1] = '\0';
        char *end;
        long v = (num[0] == 'x' || num[0] == 'X') ? strtol(num + 1, &end, 16) : strtol(num, &end, 10);
        if (*end || v <= 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
        char b[4];
        size_t k = stts_utf8_encode((uint32_t)v, b);
        if ((uint32_t)v < 0x20 || is_dropped_symbol((uint32_t)v)) return 1;
        put_cp(ts, b, k, (uint32_t)v);
        return 1;
    }
    return 0;
}

/* A longer line is never held as a table header. */
#define PIPE_MAX 4096

/* ---- inline code -------------------------------------------------------------
 * What a code span says. Its words are read as written (identifiers, commands,
 * flags, file names: the voice's word rules read useState, --verbose and
 * config.json as words; long paths shrink to their last component, secrets
 * go as anywhere else), but syntax never is: a span with operators, brackets
 * or braces (`a && b`, `x => x + 1`, `{"a": 1}`, `arr[0]`) is not read at all,
 * since a voice would spell it symbol by symbol. A call is said by its name
 * (`foo(x, y)`, `useState()`), a placeholder by its word (`<branch>`), and a
 * span of one punctuation character as written: it names it ("the `;`"). */
#define CODE_MAX 256

/* A token heard as words: a letter or digit, and only characters that word
 * rules read or drop (_ . - / : @ + ~ % # , quotes ? $), '=' inside a NAME=value
 * or --flag=value, a final '!', a '\' of a drive path (C:\x\y). */
static int code_word(const char *t, size_t n) {
    int words = 0;
    for (size_t i = 0; i < n;) {
        size_t k;
        uint32_t cp = dec(t + i, n - i, &k);
        unsigned char c = (unsigned char)t[i];
        if (cp >= 0x80) words |= !is_mute_cp(cp);
        else if (isalnum(c)) words = 1;
        else if (c == '=') {
            if (i == 0 || i + 1 == n || t[i + 1] == '=' || !(isalnum((unsigned char)t[i - 1]) || t[i - 1] == '_'))
                return 0;
        } else if (c == '!') {
            /* at the end, or before closing quotes: 'Hunt3r 2024!' */
            for (size_t j = i + 1; j < n; j++)
                if (t[j] != '"' && t[j] != '\'') return 0;
        } else if (c == '$') {
            /* $VAR, "$VAR" name a variable; a '$' inside a token is an
             * expansion in shell syntax ("$HOME/.local/bin:$PATH" read as
             * "bin:$PATH\"" once the path rule cut it) */
            for (size_t j = 0; j < i; j++)
                if (t[j] != '"' && t[j] != '\'') return 0;
        } else if (c == '\\') {
            if (!(n > 3 && isalpha((unsigned char)t[0]) && t[1] == ':')) return 0;
        } else if (!strchr("_.-/:@+~%#,'\"?", c)) {
            return 0;
        }
        i += k;
    }
    return words;
}

/* An argument a voice says nothing for, left out of a span that has words:
 * "--" (end of options: `npm test -- --watch`), Go's package pattern "./..."
 * and "..." (`go test ./...` was not read at all), and the paths "." and
 * ".." (`git add .`, `pip install -e .`, `cd ..` were dropped whole, as
 * syntax). */
static int code_mute_arg(const char *t, size_t n) {
    return (n == 2 && t[0] == '-' && t[1] == '-') || (n == 5 && memcmp(t, "./...", 5) == 0) ||
           (n == 3 && memcmp(t, "...", 3) == 0) || (n == 1 && t[0] == '.') || (n == 2 && t[0] == '.' && t[1] == '.');
}

/* <name>: a placeholder, said as its word. */
static int code_placeholder(const char *t, size_t n) {
    if (n < 3 || t[0] != '<' || t[n - 1] != '>' || !isalpha((unsigned char)t[1])) return 0;
    for (size_t i = 1; i + 1 < n; i++)
        if (!isalnum((unsigned char)t[i]) && t[i] != '_' && t[i] != '-') return 0;
    return 1;
}

/* Does a '*' run of length r, opening emphasis, come before s[i] on the
 * line (within LOOKAHEAD bytes) and not closed yet? Then a run of r at a
 * word's end closes it (bold "src/", "*see the files in src/" and a star):
 * emphasis, not a glob. An opener is at a word's start before a letter,
 * not a glob's ("*.log", "*_test.go"); a closer ends a word. */
static int emphasis_open(const char *s, size_t i, size_t r) {
    size_t k = i > LOOKAHEAD ? i - LOOKAHEAD : 0;
    int open = 0;
    while (k < i) {
        if (s[k] != '*') { k++; continue; }
        size_t rr = run_of(s, i, k, '*');
        unsigned char pv = k ? (unsigned char)s[k - 1] : ' ', nx = k + rr < i ? (unsigned char)s[k + rr] : ' ';
        if (rr == r) {
            if ((isspace(pv) || strchr("([{\"'", pv)) && !isspace(nx) && !strchr("./_*", nx)) open++;
            else if (open && !isspace(pv) && (isspace(nx) || ispunct(nx))) open--;
        }
        k += rr;
    }
    return open > 0;
}

/* Is the '*' (or '_') run s[i, i + r) part of a file glob rather than
 * emphasis ("test_*.py", "*_test.go", "*.py", a "**" run before a slash)? Its word
 * (to the spaces around it) names a file: a '.' or '/' in it; and the run
 * is inside the word, or opens it before '.', '/' or '_' (a glob's shape;
 * "*main.c*" and "**README.md**" are emphasis: a letter follows). A '_' is
 * one only next to a '*'. Emphasis markers are dropped statelessly, so a
 * kept glob character unbalances nothing. -1: the word is not all here. */
static int glob_mark(const char *s, size_t n, size_t i, size_t r, int final) {
    size_t a = i, e = i + r;
    while (a > 0 && i - a < LOOKAHEAD && s[a - 1] != ' ') a--;
    while (e < n && e - i < LOOKAHEAD && s[e] != ' ') e++;
    if (e == n && !final && e - i < LOOKAHEAD) return -1;
    if (s[i] == '_' && !((i > a && s[i - 1] == '*') || (i + 1 < e && s[i + 1] == '*'))) return 0;
    size_t te = e;   /* the word without its closing punctuation */
    while (te > i + r && strchr(".,;:!?)]}\"'", s[te - 1])) te--;
    size_t ws = a;   /* the word's start past opening brackets and quotes */
    while (ws < i && strchr("([{\"'", s[ws])) ws++;
    /* a star ending a word after a slash, '_' or '-' ("test_*", "pkg-*",
     * a folder's "src/" and a star): a closing run with no opener is
     * literal (CommonMark), and an opener earlier on the line makes it
     * emphasis (emphasis_open); dropped, the glob read "src/" or "test" and
     * changed the meaning. A '_' before the star goes with it (alone it
     * was dropped as a mark). */
    if (s[i] == '*' && i + r == te && i > ws + 1 && strchr("/_-", s[i - 1]) && !emphasis_open(s, i, r)) return 1;
    if (s[i] == '_' && r == 1 && i > ws && i + 1 < te && s[i + 1] == '*') {
        size_t se = i + 1;
        while (se < te && s[se] == '*') se++;
        if (se == te && se - i - 1 <= 2 && !emphasis_open(s, i + 1, se - i - 1)) return 1;
    }
    int named = 0;
    for (size_t k = a; k < te; k++) named |= s[k] == '.' || s[k] == '/';
    if (!named || i + r >= te) return 0;
    if (i > ws) return 1;
    return s[i + r] == '.' || s[i + r] == '/' || s[i + r] == '_';
}

static void code_span(text_stream *ts, const char *s, size_t n) {
    while (n && s[0] == ' ') { s++; n--; }
    while (n && s[n - 1] == ' ') n--;
    if (n == 1 && ispunct((unsigned char)s[0]) && s[0] != '`') {   /* "the trailing `;`" names the character */
        put_bytes(ts, s, 1);
        return;
    }
    if (n > 2 && s[n - 1] == ')') {   /* a call: its name */
        const char *p = memchr(s, '(', n);
        if (p && p > s && (isalnum((unsigned char)p[-1]) || p[-1] == '_') && !memchr(s, ' ', (size_t)(p - s))) {
            size_t j = (size_t)(p - s);
            int d = 0;
            for (; j < n; j++) {
                d += s[j] == '(';
                d -= s[j] == ')';
                if (d == 0) break;
            }
            if (j == n - 1) n = (size_t)(p - s);
        }
    }
    int said = 0;   /* tokens that are words */
    for (int pass = 0; pass < 2; pass++) {   /* 0: judge every token; 1: read them */
        int any = 0;
        if (pass == 1 && !said) {   /* only mute arguments (`--`): nothing to read */
            ts->sym_gap = 1;
            return;
        }
        for (size_t i = 0; i < n;) {
            /* a dropped emoji's mark separates like a space ("`npm test ✅`") */
            while (i < n && (s[i] == ' ' || s[i] == GAP_MARK || s[i] == KEYCAP_MARK)) i++;
            size_t a = i, b = i;
            while (b < n && s[b] != ' ' && s[b] != GAP_MARK && s[b] != KEYCAP_MARK) b++;
            i = b;
            while (a < b && s[a] == '`') a++;   /* ``a `tick` b``: the inner backticks quote */
            while (b > a && s[b - 1] == '`') b--;
            if (a == b) continue;
            int ph = code_placeholder(s + a, b - a);
            if (code_mute_arg(s + a, b - a)) continue;
            if (pass == 0) {
                if (!ph && !code_word(s + a, b - a)) {   /* syntax: nothing of it is read */
                    ts->sym_gap = 1;
                    return;
                }
                said = 1;
                continue;
            }
            if (any) put_cp(ts, " ", 1, ' ');
            /* for word_secret: a span's first word is set apart like a
             * quoted one (a span of a command line is not: its later words
             * are arguments, "htpasswd -c .htpasswd admin") */
            if (!any && !ts->word.len) ts->word_code = 1;
            any = 1;
            if (ph) put_bytes(ts, s + a + 1, b - a - 2);
            else put_bytes(ts, s + a, b - a);
        }
    }
}

static void notice(text_stream *ts, text_kind kind, text_phrase_id many, text_phrase_id one,
                   text_phrase_id lang_many, text_phrase_id lang_one, const char *a, long n);

static void inline_run(text_stream *ts, int final) {
    const char *s = ts->line.p;
    size_t n = ts->line.len, i = ts->off;
    while (i < n && !ts->oom) {
        unsigned char c = (unsigned char)s[i];
        if (ts->pipe_hold) {
            if (ts->line.len <= PIPE_MAX) break;   /* waits for the line end */
            ts->pipe_hold = ts->pipe_ok = 0;       /* too long for a header: read on */
        }
        if (ts->skip) {
            const char *cl = skip_close[ts->skip].close;
            size_t cll = skip_close[ts->skip].len;
            const char *f = find_ci(s + i, n - i, cl, cll);
            if (f) {
                i = (size_t)(f - s) + (skip_close[ts->skip].consume ? cll : 0);
                if (ts->skip == SK_PRE) {
                    long lines = ts->pre_lines > 1 ? ts->pre_lines - 1 : 1;   /* "<pre>\n" a\n b\n "</pre>" */
                    ts->skip = SK_NONE;
                    notice(ts, TEXT_NOTICE_CODE, TEXT_PH_CODE_N, TEXT_PH_CODE_1, TEXT_PH_CODE_N, TEXT_PH_CODE_1, NULL,
                           lines);
                }
                ts->skip = SK_NONE;
                continue;
            }
            if (final) { i = n; break; }
            if (n - i >= cll) i = n - (cll - 1);   /* keep what may start the close */
            break;
        }
        if (ts->url_depth) {
            if (c == '(') ts->url_depth++;
            else if (c == ')') ts->url_depth--;
            i++;
            continue;
        }
        int need_next = (i + 1 == n && !final);
        switch (c) {
        case '\\':
            if (need_next) goto hold;
            /* a backslash ending its line is markdown's hard line break
             * ("first line\" over "second line"): a space, not "backslash" */
            if (i + 1 == n) { i++; break; }
            if (i + 1 < n && ispunct((unsigned char)s[i + 1])) { put_cp(ts, s + i + 1, 1, (unsigned char)s[i + 1]); i += 2; }
            else { put_cp(ts, "\\", 1, '\\'); i++; }
            break;
        case '`': {
            /* A code span is judged whole (code_span), so it waits for its
             * closing run of as many backticks, at most CODE_MAX bytes on. */
            size_t r = run_of(s, n - i > LOOKAHEAD ? i + LOOKAHEAD : n, i, '`');
            if (r < LOOKAHEAD && i + r == n && !final) goto hold;
            size_t a = i + r, j = a, end = n - a > CODE_MAX ? a + CODE_MAX : n;
            int found = 0;
            while (j < end && !found) {
                if (s[j] != '`') { j++; continue; }
                size_t q = run_of(s, n - j > LOOKAHEAD ? j + LOOKAHEAD : n, j, '`');
                if (q < LOOKAHEAD && j + q == n && !final) goto hold;   /* the run may go on */
                if (q == r) found = 1;
                else j += q;
            }
            if (found) {
                code_span(ts, s + a, j - a);
                i = j + r;
                break;
            }
            if (n - a < CODE_MAX && !final) goto hold;
            /* No close on the line. At the end of the block it is code cut
             * short ("Run `rm -rf ./build &&"): judged like a span. Elsewhere
             * (a stray backtick in prose, a span too long to be words) the
             * text is read on as markdown; the backticks are not read. */
            if (ts->ending && n - a < CODE_MAX) {
                code_span(ts, s + a, n - a);
                i = n;
                break;
            }
            i = a;
            break;
        }
        case '*': case '_': case '~': {
            /* runs are judged on at most LOOKAHEAD bytes, so a huge run costs no rescans */
            size_t r = run_of(s, n - i > LOOKAHEAD ? i + LOOKAHEAD : n, i, (char)c);
            int capped = r == LOOKAHEAD;
            if (!capped && i + r == n && !final) goto hold;
            unsigned char nx = capped ? c : i + r < n ? (unsigned char)s[i + r] : ' ';
            if (c == '*' && r == 1 && nx == KEYCAP_MARK) { i++; break; }   /* *️⃣ */
            uint32_t pv = ts->prev_cp;
            int keep;
            /* a power: "2**31", "10**-3" (no closing run follows in such a
             * line, so CommonMark leaves it literal; dropped, it read "231") */
            int power = c == '*' && r <= 2 && pv < 0x80 && isdigit((int)pv) && !capped &&
                        (isdigit(nx) || (nx == '-' && i + r + 1 < n && isdigit((unsigned char)s[i + r + 1])));
            if (c == '*' && r <= 2 && nx == '-' && i + r + 1 == n && !final) goto hold;
            int glob = 0;
            if ((c == '*' && r <= 2) || (c == '_' && r == 1)) {
                glob = glob_mark(s, n, i, r, final);
                if (glob < 0) goto hold;
            }
            if (c == '_') keep = (is_word_cp(pv) && (nx >= 0x80 || isalnum(nx))) || glob;   /* snake_case, test_*.py */
            /* 2*3; and "2 * 3", "a ** b": a run with a space on both sides
             * opens and closes no emphasis (CommonMark), it is the character
             * (the operator was dropped: "2 3") */
            else if (c == '*') keep = (r == 1 && pv < 0x80 && isdigit((int)pv) && isdigit(nx)) || (pv == ' ' && nx == ' ') ||
                                      power || glob;
            else keep = r == 1;                                                 /* ~/x, ~5 */
            if (keep) put_bytes(ts, s + i, r);
            i += r;
            break;
        }
        case '[':
            if (need_next) goto hold;
            if (i + 1 < n && s[i + 1] == '^') {   /* footnote [^1] or [^1]: */
                const char *e = memchr(s + i, ']', n - i < 64 ? n - i : 64);
                if (!e) {
                    if (!final && n - i < 64) goto hold;
                    i++;
                    break;
                }
                size_t j = (size_t)(e - s) + 1;
                if (j == n && !final) goto hold;
                if (j < n && s[j] == ':') j++;
                i = j;
                break;
            }
            i++;   /* link text: the bracket goes, the words stay */
            break;
        case ']':
            if (need_next) goto hold;
            if (i + 1 < n && s[i + 1] == '(') { ts->url_depth = 1; i += 2; break; }
            if (i + 1 < n && s[i + 1] == '[') {   /* [text][ref] */
                const char *e = memchr(s + i + 2, ']', n - i - 2 < 64 ? n - i - 2 : 64);
                if (!e) {
                    /* the window starts 2 bytes in: wait until all 64 of it are here */
                    if (!final && n - i - 2 < 64) goto hold;
                    i++;
                    break;
                }
                i = (size_t)(e - s) + 1;
                break;
            }
            i++;
            break;
        case '!':
            if (need_next) goto hold;
            if (i + 1 < n && s[i + 1] == '[') { i++; break; }   /* image: keep the alt text */
            put_cp(ts, "!", 1, '!');
            i++;
            break;
        case '<': {
            if (need_next) goto hold;
            unsigned char nx = i + 1 < n ? (unsigned char)s[i + 1] : ' ';
            if (!isalpha(nx) && nx != '/' && nx != '!') { put_cp(ts, "<", 1, '<'); i++; break; }
            if (nx == '!') {
                if (n - i < 4 && !final) goto hold;
                if (n - i >= 4 && memcmp(s + i, "<!--", 4) == 0) {
                    /* a comment: the search for "-->" starts at its own "--",
                     * so "<!-->" and "<!--->" close at once, as in HTML */
                    ts->skip = SK_COMMENT;
                    ts->skip_para = i != ts->inline0;
                    i += 2;
                    break;
                }
            }
            /* <code>...</code> is a code span written in HTML: judged like
             * one (its operators were read: "a < b && c"), its entities
             * decoded first; it waits for its close, at most CODE_MAX bytes
             * on, and without one on its line it is a tag as before (a
             * shorter "<cod" waits below, for its '>') */
            if (n - i >= 6 && starts_ci(s + i, 6, "<code>")) {
                size_t a = i + 6, lim = n - a > CODE_MAX ? CODE_MAX : n - a;
                const char *cl = find_ci(s + a, lim, "</code>", 7);
                if (!cl && lim < CODE_MAX && !final) goto hold;
                if (cl) {
                    char buf[CODE_MAX];
                    size_t bl = 0;
                    static const struct { const char *ent, *ch; } ents[] = {
                        {"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}, {"&quot;", "\""}, {"&#39;", "'"}, {"&apos;", "'"},
                        {"&nbsp;", " "}};
                    for (const char *p = s + a; p < cl;) {
                        size_t k = 0, el = 0;
                        for (; k < sizeof ents / sizeof ents[0]; k++) {
                            el = strlen(ents[k].ent);
                            if ((size_t)(cl - p) >= el && memcmp(p, ents[k].ent, el) == 0) break;
                        }
                        if (k < sizeof ents / sizeof ents[0]) { buf[bl++] = ents[k].ch[0]; p += el; }
                        else buf[bl++] = *p++;
                    }
                    code_span(ts, buf, bl);
                    i = (size_t)(cl - s) + 7;
                    break;
                }
            }
            size_t lim = n - i < 256 ? n - i : 256;
            const char *e = memchr(s + i + 1, '>', lim - 1);
            if (!e) {
                if (!final && n - i < 256) goto hold;
                put_cp(ts, "<", 1, '<');
                i++;
                break;
            }
            const char *t = s + i + 1;
            size_t tl = (size_t)(e - t);
            if (url_domain(t, tl, &t) || starts_ci(s + i + 1, tl, "mailto:") || email_autolink(s + i + 1, tl)) {
                /* autolink <https://...>; <mailto:a@b.c> and <a@b.c> read the
                 * address (the scheme was read out; "Co-Authored-By: Claude
                 * <noreply@anthropic.com>" kept its brackets) */
                size_t sk = starts_ci(s + i + 1, tl, "mailto:") ? 7 : 0;
                put_bytes(ts, s + i + 1 + sk, tl - sk);
                i = (size_t)(e - s) + 1;
                break;
            }
            int h = html_tag(ts, s + i + 1, tl, i == ts->inline0, e + 1, (size_t)(s + n - e - 1), final);
            if (h < 0) goto hold;
            if (h) { i = (size_t)(e - s) + 1; break; }
            put_cp(ts, "<", 1, '<');
            i++;
            break;
        }
        case '|':
            if (ts->pipe_ok && ts->sent_gen == ts->pipe_gen0 && ts->line.len <= PIPE_MAX) {
                ts->pipe_hold = 1;
                goto hold;
            }
            put_cp(ts, "|", 1, '|');
            i++;
            break;
        case '#':
            if (ts->lk == LK_HEADING && ts->prev_cp == ' ') {
                /* "## Summary ##": a closing sequence (#s after a space, then
                 * only spaces to the line end) is not read */
                size_t j = i;
                while (j < n && j - i < LOOKAHEAD && s[j] == '#') j++;
                while (j < n && j - i < LOOKAHEAD && s[j] == ' ') j++;
                if (j - i < LOOKAHEAD && j == n) {
                    if (!final) goto hold;
                    i = n;
                    break;
                }
            }
            if (need_next) goto hold;
            if (i + 1 < n && s[i + 1] == KEYCAP_MARK) { i++; break; }   /* #️⃣ */
            put_cp(ts, "#", 1, '#');
            i++;
            break;
        case '&': {
            size_t lim = n - i < 12 ? n - i : 12;
            const char *e = memchr(s + i, ';', lim);
            if (!e) {
                if (!final && n - i < 12) goto hold;
                put_cp(ts, "&", 1, '&');
                i++;
                break;
            }
            if (entity(ts, s + i + 1, (size_t)(e - s) - i - 1)) i = (size_t)(e - s) + 1;
            else { put_cp(ts, "&", 1, '&'); i++; }
            break;
        }
        default: {
            if (isdigit(c)) {   /* a keycap 1️⃣ is an emoji, its digit too */
                if (need_next) goto hold;
                if (i + 1 < n && s[i + 1] == KEYCAP_MARK) { i++; break; }
            }
            if (c < 0x80) {
                put_cp(ts, s + i, 1, c);
                i++;
            } else {
                size_t k;
                uint32_t cp = dec(s + i, n - i, &k);
                put_cp(ts, s + i, k, cp);
                i += k;
            }
        }
        }
    }
hold:
    ts->off = i;
}

/* ---- block layer ------------------------------------------------------------ */
static void notice(text_stream *ts, text_kind kind, text_phrase_id many, text_phrase_id one,
                   text_phrase_id lang_many, text_phrase_id lang_one, const char *a, long n) {
    char buf[256];
    const char *lu;
    text_phrase_id id = (a && a[0]) ? (n == 1 ? lang_one : lang_many) : (n == 1 ? one : many);
    size_t len = text_phrase_format(ts->lang, id, a, n, buf, sizeof buf, &lu);
    hard_break(ts);
    deliver(ts, buf, len, kind, lu, ts->now);
}

static void end_table(text_stream *ts) {
    if (!ts->in_table) return;
    ts->in_table = 0;
    if (ts->p.read_tables) { hard_break(ts); return; }
    long rows = ts->table_rows;
    if (ts->table_delim && rows > 1) rows--;   /* the header is not a data row */
    notice(ts, TEXT_NOTICE_TABLE, TEXT_PH_TABLE_N, TEXT_PH_TABLE_1, TEXT_PH_TABLE_N, TEXT_PH_TABLE_1,
           NULL, rows);
}

static void end_icode(text_stream *ts) {
    if (!ts->in_icode) return;
    ts->in_icode = 0;
    notice(ts, TEXT_NOTICE_CODE, TEXT_PH_CODE_N, TEXT_PH_CODE_1, TEXT_PH_CODE_N, TEXT_PH_CODE_1, NULL,
           ts->icode_lines);
}

static void end_json(text_stream *ts) {
    if (!ts->in_json) return;
    ts->in_json = 0;
    notice(ts, TEXT_NOTICE_CODE, TEXT_PH_CODE_N, TEXT_PH_CODE_1, TEXT_PH_CODE_LANG_N, TEXT_PH_CODE_LANG_1, "JSON",
           ts->json_lines);
}

/* ---- unfenced code other than JSON ---------------------------------------
 * lineclass.c says which lines start, bear out and go on a block (a diff,
 * YAML, a trace, tool output); here are the blocks' state and notices. */

static void end_ucode(text_stream *ts) {
    if (!ts->in_ucode) return;
    const char *lang = ts->in_ucode == UC_DIFF || ts->in_ucode == UC_DIFF_LINES ? "Diff"
                       : ts->in_ucode == UC_YAML                                ? "YAML"
                                                                                : NULL;
    ts->in_ucode = UC_NONE;
    ts->ucode_gap = ts->ucode_quote = 0;
    notice(ts, TEXT_NOTICE_CODE, TEXT_PH_CODE_N, TEXT_PH_CODE_1, TEXT_PH_CODE_LANG_N, TEXT_PH_CODE_LANG_1, lang,
           ts->ucode_lines);
}

static void uc_hold_line(text_stream *ts, int kind, const char *t, size_t n) {
    ts->uc_wait = kind;
    ts->uc_hold_quote = ts->line_quote;
    ts->uc_hold.len = 0;
    tb_put(ts, &ts->uc_hold, t, n);
}
static void read_aside(text_stream *ts, tbuf *text, size_t off, int lk, uint32_t prev_cp);
/* The held line was not borne out: it is read as a paragraph line. */
static void uc_resume(text_stream *ts) {
    ts->uc_wait = 0;
    read_aside(ts, &ts->uc_hold, 0, LK_PARA, ' ');
}

/* One line of unfenced JSON: brackets counted outside strings; the block
 * ends with the line that closes its first bracket. */
static void json_line(text_stream *ts, const char *s, size_t n) {
    ts->json_lines++;
    ts->json_str = 0;   /* a JSON string never spans lines */
    for (size_t k = 0; k < n; k++) {
        char ch = s[k];
        if (ts->json_str) {
            if (ch == '\\') k++;
            else if (ch == '"') ts->json_str = 0;
        } else if (ch == '"') {
            ts->json_str = 1;
        } else if (ch == '{' || ch == '[') {
            ts->json_depth++;
        } else if (ch == '}' || ch == ']') {
            ts->json_depth--;
        }
    }
    if (ts->json_depth <= 0) end_json(ts);
}

/* How many times pat occurs in s[0, n). */
static long count_of(const char *s, size_t n, const char *pat) {
    size_t pl = strlen(pat);
    long k = 0;
    for (size_t i = 0; i + pl <= n; i++)
        if (s[i] == pat[0] && memcmp(s + i, pat, pl) == 0) k++;
    return k;
}

static void end_fence(text_stream *ts) {
    if (!ts->in_fence) return;
    ts->in_fence = 0;
    notice(ts, TEXT_NOTICE_CODE, TEXT_PH_CODE_N, TEXT_PH_CODE_1, TEXT_PH_CODE_LANG_N,
           TEXT_PH_CODE_LANG_1, ts->code_lang, ts->fence_lines);
}

static int is_fence_close(const text_stream *ts, const char *s, size_t n) {
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '>')) i++;   /* indented or quoted fences */
    size_t r = run_of(s, n, i, ts->fence_ch);
    if (r < ts->fence_len) return 0;
    for (i += r; i < n; i++)
        if (s[i] != ' ') return 0;
    return 1;
}

/* A table row: counted, or (read_tables) rewritten as "a, b, c" for the
 * inline layer. Returns 1 if the line should be read. */
/* Is s[i] escaped by an odd number of backslashes before it? */
static int backslashed(const char *s, size_t i) {
    size_t k = 0;
    while (k < i && s[i - 1 - k] == '\\') k++;
    return k & 1;
}

static int table_row(text_stream *ts, const char *s, size_t n, tbuf *out) {
    int delim = 1;
    for (size_t i = 0; i < n; i++)
        if (!strchr("|-: ", s[i])) delim = 0;
    if (!ts->in_table) { ts->in_table = 1; ts->table_rows = 0; ts->table_delim = 0; ts->table_cred_cols = 0; }
    if (delim) { ts->table_delim = 1; return 0; }
    ts->table_rows++;
    if (!ts->p.read_tables) return 0;
    tbuf row = {0};
    int named = 0;   /* the previous cell names a credential (| DB_PASSWORD | hunter2 |) */
    int col = -1;
    /* The cells are what lies between unescaped pipes, empty ones too: "| a
     * || b |" has three, "|  | x |" two, and a Password column's cells are
     * counted from the header's (skipping runs of pipes took the cell after
     * an empty one for the one before it, and read a password). A leading
     * and a trailing pipe are the row's border. A pipe in a code span is
     * the span's text ("`a|b`": GFM would split it, but it is written as
     * one cell, and its column's cells stay in line with the header). */
    size_t i = 0, end = n;
    uint64_t unclosed = 0;   /* backtick run lengths with no closing run */
    while (i < end && s[i] == ' ') i++;
    while (end > i && s[end - 1] == ' ') end--;
    if (i < end && s[i] == '|') i++;
    if (end > i && s[end - 1] == '|' && !backslashed(s, end - 1)) end--;
    while (i <= end) {
        size_t st = i;
        while (i < end && !(s[i] == '|' && !backslashed(s, i))) {
            if (s[i] == '`' && !backslashed(s, i)) {
                size_t r = run_of(s, end, i, '`'), j = i + r, close = 0;
                /* a run length whose search failed has no closing run later
                 * either: not searched again (a line of lone backticks stays
                 * linear) */
                if (r >= 64 || (unclosed >> r & 1)) j = end;
                while (j < end && !close) {
                    if (s[j] != '`') { j++; continue; }
                    size_t rr = run_of(s, end, j, '`');
                    if (rr == r) close = j + rr;
                    j += rr;
                }
                if (!close && r < 64) unclosed |= 1ull << r;
                i = close ? close : i + r;   /* an unclosed run is literal backticks */
                continue;
            }
            i++;
        }
        size_t a = st, b = i;
        i++;   /* past the pipe (or the end: the loop stops) */
        while (a < b && s[a] == ' ') a++;
        while (b > a && s[b - 1] == ' ') b--;
        /* the cell without its code span or emphasis marks */
        size_t ca = a, cb = b;
        while (ca < cb && (s[ca] == '`' || s[ca] == '*' || s[ca] == '_')) ca++;
        while (cb > ca && (s[cb - 1] == '`' || s[cb - 1] == '*' || s[cb - 1] == '_')) cb--;
        col++;
        /* a header cell naming a credential ("| User | Password |"): that
         * column's body cells are values, as after a naming cell */
        if (!ts->table_delim && col < 32 && cb > ca && is_cred_name(s + ca, cb - ca, 0)) ts->table_cred_cols |= 1u << col;
        if (ts->table_delim && col < 32 && (ts->table_cred_cols >> col & 1)) {
            /* unless the cell is itself a variable's name (| DB_PASSWORD |
             * under "| Password | Notes |" is a label, not the value) */
            int var = cb > ca && span_of(s + ca, cb - ca, "_");
            for (size_t k = ca; var && k < cb; k++) var = !islower((unsigned char)s[k]);
            if (!(var && is_cred_name(s + ca, cb - ca, 0))) named = 1;
        }
        /* a body row's value cell after a credential's name: "password,
         * hunter2" was read (the name rules want "name:" or "name="); one
         * word that is not plain prose ("Hashed", "none") nor a placeholder */
        if (named && ts->table_delim && cb > ca && !memchr(s + ca, ' ', cb - ca) && !is_plain_word(s + ca, cb - ca) &&
            !is_placeholder_value(s + ca, cb - ca)) {
            ts->secret_pending = 1;
            named = 0;
            continue;
        }
        named = cb > ca && is_cred_name(s + ca, cb - ca, 0);
        if (b > a) {
            if (row.len) tb_put(ts, &row, ", ", 2);
            tb_put(ts, &row, s + a, b - a);
        }
    }
    *out = row;
    return row.len > 0;
}

static void inline_run(text_stream *ts, int final);

/* Reads text as a line of kind lk on its own, from offset off (the current
 * line, if any, waits aside). */
static void read_aside(text_stream *ts, tbuf *text, size_t off, int lk, uint32_t prev_cp) {
    tbuf saved = ts->line;
    size_t s_off = ts->off, s_inline0 = ts->inline0;
    int s_ls = ts->ls, s_lk = ts->lk, s_ok = ts->pipe_ok;
    ts->line = *text;
    ts->off = off;
    ts->inline0 = (size_t)-1;
    ts->ls = LS_INLINE;
    ts->lk = lk;
    ts->prev_cp = prev_cp;
    ts->pipe_ok = 0;
    inline_run(ts, 1);
    ts->url_depth = 0;
    word_end(ts);
    if (lk == LK_PARA) seg_space(ts);
    else hard_break(ts);
    *text = ts->line;
    text->len = 0;
    ts->line = saved;
    ts->off = s_off;
    ts->inline0 = s_inline0;
    ts->ls = s_ls;
    ts->lk = s_lk;
    ts->pipe_ok = s_ok;
    ts->prev_cp = ' ';
}

/* The held line was not a table header: it is read on from its '|'. */
static void pipe_resume(text_stream *ts) {
    ts->pipe_wait = 0;
    read_aside(ts, &ts->pend, ts->pend_at, LK_PARA, ts->pend_prev_cp);
}

/* The held line is a table header: what was read of it goes back, and the
 * table starts with it. */
static void pipe_table(text_stream *ts) {
    ts->pipe_wait = 0;
    ts->word.len = 0;
    ts->long_word = 0;
    ts->lw_tail_len = 0;
    if (ts->sent_gen == ts->pipe_gen0 && ts->sent.len >= ts->pipe_sent0) {
        ts->sent.len = ts->pipe_sent0;
        ts->sent_chars = count_chars(ts->sent.p, ts->sent.len);
    }
    hard_break(ts);
    ts->in_list = 0;
    ts->in_table = 2;
    ts->table_rows = 0;
    ts->table_delim = 0;
    ts->table_cred_cols = 0;   /* not the last table's Password column */
    tbuf row = {0};
    if (table_row(ts, ts->pend.p, ts->pend.len, &row)) read_aside(ts, &row, 0, LK_ITEM, ' ');
    free(row.p);
    ts->pend.len = 0;
}

/* Is the line a delimiter row ("--- | :---:")? 1 yes, 0 no, -1: not known yet. */
static int delim_row(const char *s, size_t n, int final) {
    size_t m = n < LOOKAHEAD ? n : LOOKAHEAD;
    int pipe = 0, dash = 0;
    for (size_t i = 0; i < m; i++) {
        if (s[i] == '|') pipe = 1;
        else if (s[i] == '-') dash = 1;
        else if (s[i] != ':' && s[i] != ' ') return 0;
    }
    if (m == n && !final) return -1;
    return m == n && pipe && dash;
}

/* Checks the trailer patterns; -1: undecided yet, 1: a trailer line, 0: not. */
static int trailer(const char *s, size_t n) {
    static const char *const pats[] = {"co-authored-by:", "generated with [claude code]",
                                       "generated with claude code", NULL};
    int undecided = 0;
    for (int p = 0; pats[p]; p++) {
        size_t l = strlen(pats[p]), m = n < l ? n : l;
        size_t k = 0;
        while (k < m && tolower((unsigned char)s[k]) == pats[p][k]) k++;
        if (k == m) {
            if (m == l) return 1;
            undecided = 1;
        }
    }
    return undecided ? -1 : 0;
}

/* Decides what the current line is once enough of it is there. Returns 0
 * when it needs more bytes. */
static int classify(text_stream *ts, int final) {
    for (;;) {
        const char *s = ts->line.p + ts->off;
        size_t n = ts->line.len - ts->off;
        if (ts->pipe_wait) {
            int d = delim_row(s, n, final);
            if (d < 0) return 0;
            if (d) pipe_table(ts);
            else pipe_resume(ts);
            continue;
        }
        if (ts->uc_wait) {
            /* a held "goroutine 1 [running]:" or "stack backtrace:": this line decides */
            if (!final) return 0;
            size_t b = 0;
            while (b < n && s[b] == ' ') b++;
            int quoted = b < n && s[b] == '>';
            if (quoted) {
                b++;
                while (b < n && s[b] == ' ') b++;
            }
            if (quoted == ts->uc_hold_quote && text_lc_borne_out(ts->uc_wait, s + b, n - b, b)) {
                hard_break(ts);
                ts->in_ucode = ts->uc_wait;
                ts->ucode_quote = ts->uc_hold_quote;
                ts->ucode_lines = 1;
                ts->in_list = 0;
                ts->uc_wait = 0;
                ts->uc_hold.len = 0;
            } else {
                uc_resume(ts);
            }
            continue;
        }
        if (ts->skip) {
            /* inside a dropped element: no markdown; a blank line ends one
             * that opened mid-line (as it ends the paragraph it is in) */
            size_t m = n < LOOKAHEAD ? n : LOOKAHEAD, b = 0;
            while (ts->skip_para && b < m && s[b] == ' ') b++;
            if (ts->skip_para && b == n && n < LOOKAHEAD && !final) return 0;
            if (!(ts->skip_para && b == n && final)) { ts->ls = LS_INLINE; ts->lk = LK_PARA; return 1; }
            ts->skip = SK_NONE;
        }
        if (ts->in_fence == 2) {
            /* display math: to a line ending in $$ (\]), or to a blank line,
             * which ends it in markdown renderers (a stray opener costs at most
             * its paragraph) */
            if (!final) return 0;
            size_t e = n, b = 0;
            while (e > 0 && s[e - 1] == ' ') e--;
            while (b < e && (s[b] == ' ' || s[b] == '>')) b++;
            if (b == e) {
                end_fence(ts);
                continue;
            }
            int closed = e - b >= 2 && s[e - 2] == (ts->fence_ch == '$' ? '$' : '\\') &&
                         s[e - 1] == (ts->fence_ch == '$' ? '$' : ']');
            if (ts->fence_ch == 'e') {   /* \begin{...}: to the \end{...} that closes it */
                long d = (long)ts->fence_len + count_of(s, e, "\\begin{") - count_of(s, e, "\\end{");
                ts->fence_len = d > 0 ? (size_t)d : 0;
                closed = d <= 0;
            }
            if (!closed || (e - b > 2 && ts->fence_ch != 'e')) ts->fence_lines++;
            if (closed) end_fence(ts);
            ts->ls = LS_DROP;
            return 1;
        }
        if (ts->in_fence) {
            if (!final) return 0;
            if (ts->fence_quote) {
                /* a fence in a quote ends with the quote: a line without '>'
                 * is no lazy continuation of code (it and the rest of the
                 * reply went into the code block) */
                size_t q = 0;
                while (q < n && s[q] == ' ') q++;
                if (q == n || s[q] != '>') {
                    end_fence(ts);
                    ts->fence_quote = 0;
                    continue;
                }
            }
            if (is_fence_close(ts, s, n)) end_fence(ts);
            else ts->fence_lines++;
            ts->ls = LS_DROP;
            return 1;
        }
        if (ts->in_ucode) {
            if (!final) return 0;
            size_t b = 0;
            while (b < n && s[b] == ' ') b++;
            if (ts->ucode_quote && !ts->line_quote) {
                /* it started in a quote: its lines are past the '>' (as
                 * they were when it started); a line without one ends it */
                if (b < n && s[b] == '>') {
                    ts->off += b + 1;
                    if (b + 1 < n && s[b + 1] == ' ') ts->off++;
                    ts->line_quote = 1;
                    continue;
                }
                int gap = ts->ucode_gap;
                end_ucode(ts);   /* this line is read as usual */
                if (gap) ts->prev_blank = 1;
                continue;
            }
            if (ts->in_ucode == UC_GO && b == n) {
                /* a blank line in a Go dump: another goroutine may follow
                 * (the next line decides; it is dropped, not counted) */
                ts->ucode_gap = 1;
                ts->ls = LS_DROP;
                return 1;
            }
            int on = n ? text_lc_goes_on(ts->in_ucode, ts->ucode_gap, s, n) : 0;
            if (!on) {
                int gap = ts->ucode_gap;
                end_ucode(ts);   /* this line is read as usual */
                if (gap) ts->prev_blank = 1;   /* after the blank lines it dropped */
                continue;
            }
            ts->ucode_gap = 0;
            ts->ucode_lines++;
            if (on == 3) ts->in_ucode = UC_SHELL;   /* a prompt: what follows is its output */
            if (on == 2) end_ucode(ts);
            ts->ls = LS_DROP;
            return 1;
        }
        if (ts->in_json) {
            if (!final) return 0;
            size_t b = 0;
            while (b < n && s[b] == ' ') b++;
            if (b == n) {
                end_json(ts);   /* a blank line: a bracket never closed ends here */
                continue;
            }
            json_line(ts, s, n);
            ts->ls = LS_DROP;
            return 1;
        }
        /* emoji opening the line are not there ("🤖 Generated with ...") */
        if (n && (s[0] == GAP_MARK || s[0] == KEYCAP_MARK)) {
            ts->off++;
            continue;
        }
        /* decisions look at no more than LOOKAHEAD bytes (no rescans of a
         * long line); only a table row and a fence line wait for the line end */
        size_t full = n;
        int fin = final || n >= LOOKAHEAD || ts->idle_fin;
        if (n > LOOKAHEAD) n = LOOKAHEAD;
        size_t i = 0;
        while (i < n && s[i] == ' ') i++;
        if (i == n && !(final && i == full)) {
            if (!fin) return 0;
            ts->off += i;   /* hundreds of spaces, then text: a paragraph */
            ts->ls = LS_INLINE;
            ts->lk = LK_PARA;
            ts->prev_blank = 0;
            return 1;
        }
        if (i == n) {
            /* blank line: paragraph break */
            if (ts->in_table) end_table(ts);
            hard_break(ts);
            ts->prev_blank = 1;
            ts->ls = LS_DROP;
            return 1;
        }
        unsigned char c = (unsigned char)s[i];
        if (ts->in_quote && !ts->line_quote && c != '>') {   /* the quote ended */
            if (ts->in_table) end_table(ts);   /* a table in it too */
            hard_break(ts);
            ts->in_quote = 0;
        }
        /* indented code: 4 spaces past the content column, which in a list
         * item is its text's ("- Option B:" over a blank line and
         * "      rm -rf ..." at 6 is code in the item; "  More." is its
         * next paragraph) */
        if (i >= (ts->in_list ? ts->list_col + 4 : 4) && (ts->prev_blank || ts->in_icode)) {
            if (ts->in_table) end_table(ts);
            if (!ts->in_icode) { hard_break(ts); ts->in_icode = 1; ts->icode_lines = 0; }
            ts->icode_lines++;
            ts->prev_blank = 0;
            ts->ls = LS_DROP;
            return 1;
        }
        end_icode(ts);
        int nolead_row = 0;   /* a row of a table without leading pipes: a line with a '|' */
        if (ts->in_table == 2 && c != '|') {
            if (!final) return 0;
            nolead_row = memchr(s + i, '|', full - i) != NULL;
        }
        if (c == '|' || nolead_row) {
            if (!final) return 0;
            if (!ts->in_table) hard_break(ts);
            ts->prev_blank = 0;
            ts->in_list = 0;
            tbuf row = {0};
            if (table_row(ts, s + i, full - i, &row)) {
                free(ts->line.p);
                ts->line = row;
                ts->off = 0;
                ts->ls = LS_INLINE;
                ts->lk = LK_ITEM;
            } else {
                free(row.p);
                ts->ls = LS_DROP;
            }
            return 1;
        }
        /* a quoted line's '>' comes off below, and then the line may be the
         * table's next row ("> | a | b |"): each row was a table of its own */
        if (c != '>') end_table(ts);
        ts->prev_blank = 0;
        if (c == '[' && i + 1 < n && s[i + 1] != '^' && s[i + 1] != ']') {
            /* A link reference definition "[1]: https://... "Title"" is not
             * shown by any renderer: dropped (it was read, URL and all). A
             * footnote "[^1]: text" is read. Decided at "]:" (labels are short). */
            size_t k = i + 1;
            while (k < n && k - i < 80 && s[k] != ']' && s[k] != '[') k++;
            if (k == n && !fin && k - i < 80) return 0;
            if (k < n && s[k] == ']') {
                if (k + 1 == n && !fin) return 0;
                if (k + 1 < n && s[k + 1] == ':') {
                    size_t v = k + 2;
                    while (v < n && s[v] == ' ') v++;
                    if (v == n && !fin) return 0;
                    if (v < n) {
                        if (!final) return 0;
                        /* a URL-like destination, then nothing or a quoted title */
                        size_t de = v;
                        while (de < full && s[de] != ' ') de++;
                        int url = s[v] == '<' || s[v] == '/' || s[v] == '#' ||
                                  (de - v > 3 && find_ci(s + v, de - v, "://", 3)) || starts_ci(s + v, de - v, "www.");
                        /* or a relative path, which renderers hide as well
                         * ("./docs/SETUP.md", "../ci.yml", "docs/x.md",
                         * "CHANGELOG.md"): path characters only, and a '/' or
                         * a file extension ("[Note]: see." is prose) */
                        if (!url) {
                            int path = 1, slash = 0, ext = 0;
                            for (size_t q = v; q < de && path; q++) {
                                unsigned char ch = (unsigned char)s[q];
                                path = isalnum(ch) || strchr("._~/#?=&%+-", ch);
                                slash |= ch == '/';
                                ext |= ch == '.' && q + 1 < de && isalpha((unsigned char)s[q + 1]);
                            }
                            url = path && (slash || ext) && isalnum((unsigned char)s[de - 1]);
                        }
                        size_t t = de;
                        while (t < full && s[t] == ' ') t++;
                        size_t te = full;
                        while (te > t && s[te - 1] == ' ') te--;
                        int title = t == te || (te - t >= 2 && ((s[t] == '"' && s[te - 1] == '"') ||
                                                                (s[t] == '\'' && s[te - 1] == '\'') ||
                                                                (s[t] == '(' && s[te - 1] == ')')));
                        if (url && title) {
                            hard_break(ts);
                            ts->in_list = 0;
                            ts->ls = LS_DROP;
                            return 1;
                        }
                    }
                }
            }
        }
        {
            /* unfenced code other than JSON (lineclass.c): a candidate waits for its line end */
            int mark = ts->off > 0 && ts->line.p[ts->off - 1] == GAP_MARK;
            int cand = text_lc_cand(s + i, n - i, i, fin, mark, ts->yaml_key, ts->line_quote);
            if (cand < 0) return 0;
            if (cand) {
                if (!final) return 0;
                int hold;
                int kind = text_lc_kind(s, full, i, mark, ts->yaml_key, ts->line_quote, &hold);
                if (hold) {
                    /* the next line decides */
                    uc_hold_line(ts, hold, s + i, full - i);
                    ts->ls = LS_DROP;
                    return 1;
                }
                if (kind) {
                    hard_break(ts);
                    ts->in_ucode = kind;
                    ts->ucode_quote = ts->line_quote;
                    ts->ucode_lines = 1;
                    ts->in_list = 0;
                    ts->ls = LS_DROP;
                    return 1;
                }
            }
        }
        if (c == '{' || c == '[') {
            /* Unfenced JSON, never read: a line starting {" [{ [" or a lone { or [
             * ([text](url) and {x | x > 0} are prose). It waits for its line end. */
            size_t k = i + 1;
            while (k < n && s[k] == ' ') k++;
            if (k == n && !fin) return 0;
            int json = k == full ? final : k < n && (s[k] == '"' || (c == '[' && s[k] == '{'));
            if (json) {
                if (!final) return 0;
                hard_break(ts);
                ts->in_json = 1;
                ts->json_depth = 0;
                ts->json_lines = 0;
                ts->in_list = 0;
                json_line(ts, s + i, full - i);
                ts->ls = LS_DROP;
                return 1;
            }
        } else if (c == '`' || c == '~') {
            size_t r = run_of(s, n, i, (char)c);
            if (r < 3 && i + r == n && !fin) return 0;
            if (r >= 3 && !final) return 0;   /* the info string needs the whole line */
            if (r >= 3 && !(c == '`' && memchr(s + i + r, '`', full - i - r))) {
                hard_break(ts);
                ts->in_fence = 1;
                ts->fence_quote = ts->line_quote;
                ts->fence_ch = (char)c;
                ts->fence_len = r;
                ts->fence_lines = 0;
                text_code_language_name(s + i + r, full - i - r, ts->code_lang, sizeof ts->code_lang);
                ts->in_list = 0;
                ts->ls = LS_DROP;
                return 1;
            }
        } else if ((c == '$' && (i + 1 == n || s[i + 1] == '$')) || (c == '\\' && (i + 1 == n || s[i + 1] == '['))) {
            /* LaTeX display math, never read: a line that is "$$" or "\[" (then
             * the lines to the closing "$$" or "\]"), or one that is a whole
             * "$$ ... $$": "Math code, N lines, omitted." A line that only
             * starts with "$$" ("$$ is the shell's PID") is prose; one with
             * LaTeX right after the opener ("$$\begin{aligned}") opens a block.
             * "\[" only on a line of its own: "\[x\]" is also an escaped
             * bracket (--input-format text escapes every one). */
            if (i + 1 == n && !fin) return 0;
            if (i + 1 < n) {
                if (!final) return 0;
                size_t e = full;
                while (e > i && s[e - 1] == ' ') e--;
                int opens = e == i + 2;
                for (size_t k = i + 2; c == '$' && k < e && !opens && k < i + 2 + LOOKAHEAD; k++)
                    opens = s[k] && strchr("\\^{}", s[k]);
                int whole = c == '$' && e >= i + 5 && s[e - 1] == '$' && s[e - 2] == '$';
                if (opens || whole) {
                    hard_break(ts);
                    ts->in_fence = 2;
                    ts->fence_ch = (char)c;
                    ts->fence_lines = whole || e > i + 2;
                    memcpy(ts->code_lang, "Math", 5);
                    ts->in_list = 0;
                    if (whole) end_fence(ts);
                    ts->ls = LS_DROP;
                    return 1;
                }
            }
        } else if (c == '\\' && (n - i >= 7 ? memcmp(s + i, "\\begin{", 7) == 0 : memcmp(s + i, "\\begin{", n - i) == 0)) {
            /* a LaTeX environment on lines of its own, without $$
             * ("\begin{align}" ... "\end{align}"): display math too (it was
             * read out, backslashes, ampersands and all) */
            if (!final) return 0;
            long d = count_of(s, full, "\\begin{") - count_of(s, full, "\\end{");
            hard_break(ts);
            ts->in_fence = 2;
            ts->fence_ch = 'e';
            ts->fence_len = d > 0 ? (size_t)d : 0;
            ts->fence_lines = d <= 0;   /* a whole environment on one line */
            memcpy(ts->code_lang, "Math", 5);
            ts->in_list = 0;
            if (d <= 0) end_fence(ts);
            ts->ls = LS_DROP;
            return 1;
        } else if (c == '#') {
            size_t r = run_of(s, n, i, '#');
            if (i + r == n && !fin) return 0;
            if (r <= 6 && (i + r == n || s[i + r] == ' ')) {
                hard_break(ts);
                ts->off += i + r;
                ts->ls = LS_INLINE;
                ts->lk = LK_HEADING;
                ts->in_list = 0;
                return 1;
            }
        } else if (c == '>') {
            if (i + 1 == n && !fin) return 0;
            ts->off += i + 1;
            if (i + 1 < n && s[i + 1] == ' ') ts->off++;
            if (!ts->in_quote && !ts->line_quote) {   /* a quote starts its own block */
                hard_break(ts);
                ts->prev_blank = 1;
            }
            ts->line_quote = 1;
            continue;
        } else if (c == '-' || c == '*' || c == '+' || c == '_' || c == '=') {
            if (i + 1 == n && !fin) return 0;
            if (c != '_' && c != '=' && i + 1 < n && s[i + 1] == ' ') {
                /* list item; a task box "[ ] " / "[x] " goes too */
                size_t j = i + 2;
                static const char *const boxes[] = {"[ ] ", "[x] ", "[X] "};
                for (int b = 0; b < 3; b++) {
                    size_t m = n - j < 4 ? n - j : 4;
                    if (memcmp(s + j, boxes[b], m) == 0) {
                        if (m < 4 && !fin) return 0;
                        if (m == 4) j += 4;
                        break;
                    }
                }
                hard_break(ts);
                ts->off += j < n ? j : n;
                ts->ls = LS_INLINE;
                ts->lk = LK_ITEM;
                ts->in_list = 1;
                ts->list_col = i + 2;
                return 1;
            }
            if (c != '+') {   /* rule "---", "***", "___" or setext underline "===" */
                size_t k = i, cnt = 0;
                while (k < n && (s[k] == (char)c || s[k] == ' ')) { cnt += s[k] == (char)c; k++; }
                if (k == n) {
                    if (!fin) return 0;
                    if (cnt >= 3 || c == '=') {
                        hard_break(ts);
                        ts->prev_blank = 1;
                        ts->in_list = 0;
                        ts->ls = LS_DROP;
                        return 1;
                    }
                }
            }
        } else if (isdigit(c)) {
            size_t k = i;
            while (k < n && k - i < 9 && isdigit((unsigned char)s[k])) k++;
            if (k == n && !fin) return 0;
            if (k < n && (s[k] == '.' || s[k] == ')')) {
                if (k + 1 == n && !fin) return 0;
                if (k + 1 == n || s[k + 1] == ' ') {
                    hard_break(ts);
                    ts->off += k + 1 < n ? k + 2 : n;
                    ts->ls = LS_INLINE;
                    ts->lk = LK_ITEM;
                    ts->in_list = 1;
                    ts->list_col = k + 2;
                    return 1;
                }
            }
        }
        if (c == '[' && ts->line_quote) {
            /* a GitHub alert "> [!WARNING]": its title, "Warning", is a
             * sentence of its own (it was read "!WARNING" into the text) */
            size_t k = i + 2, e;
            if (!fin) return 0;
            while (k < n && isalpha((unsigned char)s[k])) k++;
            e = k + 1;
            while (e < n && s[e] == ' ') e++;
            if (i + 1 < n && s[i + 1] == '!' && k > i + 2 && k - i - 2 < 16 && k < n && s[k] == ']' && e == full) {
                char label[16];
                for (size_t j = 0; j < k - i - 2; j++)
                    label[j] = (char)(j ? tolower((unsigned char)s[i + 2 + j]) : toupper((unsigned char)s[i + 2 + j]));
                hard_break(ts);
                put_bytes(ts, label, k - i - 2);
                hard_break(ts);
                ts->ls = LS_DROP;
                return 1;
            }
        }
        if (c == 'c' || c == 'C' || c == 'g' || c == 'G') {
            int t = trailer(s + i, n - i);
            if (t < 0 && !fin) return 0;
            if (t == 1) { ts->ls = LS_DROP; return 1; }
        }
        if (i == 0) ts->in_list = 0;
        ts->off += i;
        ts->ls = LS_INLINE;
        ts->lk = LK_PARA;
        return 1;
    }
}

static void process_line(text_stream *ts, int final) {
    if (!ts->line.p && tb_reserve(&ts->line, 64) != 0) { ts->oom = 1; return; }
    if (ts->ls == LS_START) {
        if (!classify(ts, final)) return;
        ts->inline0 = ts->off;
        ts->pipe_ok = ts->ls == LS_INLINE && ts->lk == LK_PARA && !ts->line_quote && !ts->in_table && !ts->skip;
        ts->pipe_sent0 = ts->sent.len;
        ts->pipe_gen0 = ts->sent_gen;
    }
    if (ts->ls == LS_INLINE) inline_run(ts, final);
    else if (ts->ls == LS_DROP) ts->off = ts->line.len;
    /* keep the buffer small on very long lines */
    if (ts->off > 4096 && ts->off * 2 > ts->line.len) {
        memmove(ts->line.p, ts->line.p + ts->off, ts->line.len - ts->off);
        ts->line.len -= ts->off;
        ts->off = 0;
        ts->inline0 = (size_t)-1;   /* long past the line start */
    }
}

static void line_end(text_stream *ts) {
    /* a bare "key:" at column 0 ("services:"): an indented key under it is YAML */
    ts->yaml_key = !ts->pipe_hold && ts->ls == LS_INLINE && ts->lk == LK_PARA && !ts->line_quote && ts->inline0 == 0 &&
                   ts->line.len < 128 && text_lc_yaml_key(ts->line.p, ts->line.len, 1);
    if (ts->pipe_hold) {
        /* a possible table header: the line waits for the next */
        tbuf t = ts->pend;
        ts->pend = ts->line;
        ts->line = t;
        ts->pend_at = ts->off;
        ts->pend_prev_cp = ts->prev_cp;
        ts->pipe_hold = 0;
        ts->pipe_wait = 1;
    } else if (ts->ls == LS_INLINE) {
        if (ts->skip == SK_PRE) ts->pre_lines++;
        ts->url_depth = 0;
        word_end(ts);
        ts->val_quote = 0;   /* a quoted value ends with its line */
        if (ts->pem_hdr == 2) ts->pem_hdr = 3;   /* a PEM body follows its header's line */
        if (ts->lk == LK_PARA) seg_space(ts);
        else hard_break(ts);
    }
    ts->line.len = 0;
    ts->off = 0;
    ts->ls = LS_START;
    ts->lk = LK_PARA;
    ts->prev_cp = ' ';
    ts->in_quote = ts->line_quote;
    ts->line_quote = 0;
}

/* ---- sanitize layer -------------------------------------------------------- */
/* >0: length of a complete valid sequence; 0: invalid; -1: valid but cut short. */
static int utf8_need(const unsigned char *s, size_t n) {
    uint32_t cp;
    size_t k = stts_utf8_decode(s, n, &cp);
    if (k) return (int)k;
    unsigned c = s[0];
    size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || n >= len || c == 0xC0 || c == 0xC1 || c > 0xF4) return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (n >= 2 && ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) ||
                   (c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F)))
        return 0;
    return -1;
}

static void newline(text_stream *ts) {
    process_line(ts, 1);
    line_end(ts);
}

static void handle_cp(text_stream *ts, const unsigned char *p, size_t k) {
    uint32_t cp;
    if (k == 1) {
        cp = p[0];
        if (cp == '\n') { newline(ts); return; }
        if (cp == '\t') { tb_put(ts, &ts->line, " ", 1); return; }
        if (cp < 0x20 || cp == 0x7F) return;
        tb_put(ts, &ts->line, (const char *)p, 1);
        return;
    }
    stts_utf8_decode(p, k, &cp);
    /* the C1 line break NEL and the Unicode spaces (thin, narrow no-break,
     * en, em ...) separate words: "Third\u0085line" and "5\u2009ms" were
     * glued into one word or kept the odd space inside a word */
    if (cp == 0x85 || cp == 0xA0 || cp == 0x3000 || cp == 0x2028 || cp == 0x2029 || (cp >= 0x2000 && cp <= 0x200A) ||
        cp == 0x202F || cp == 0x205F) {   /* odd spaces */
        tb_put(ts, &ts->line, " ", 1);
        return;
    }
    /* invisible format characters: soft hyphen, bidi embeddings, overrides
     * and isolates, invisible operators, annotation marks (they reached the
     * translator and the voice) */
    if (cp < 0xA0 || cp == 0xFFFD || cp == 0xFEFF || cp == 0x2060 || (cp >= 0x200B && cp <= 0x200F) ||
        cp == 0xAD || (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2061 && cp <= 0x2069) ||
        (cp >= 0xFFF9 && cp <= 0xFFFB))
        return;
    if (is_dropped_symbol(cp)) {
        /* variation selectors only restyle the character before them */
        if (cp < 0xFE00 || cp > 0xFE0F) tb_put(ts, &ts->line, cp == 0x20E3 ? "\x02" : "\x01", 1);
        return;
    }
    tb_put(ts, &ts->line, (const char *)p, k);
}

static void feed_bytes(text_stream *ts, const unsigned char *u, size_t n) {
    size_t i = 0;
    while (i < n && !ts->oom) {
        if (ts->ncarry) {
            unsigned char tmp[4];
            size_t m = ts->ncarry;
            memcpy(tmp, ts->carry, m);
            while (m < 4 && i < n && utf8_need(tmp, m) < 0) tmp[m++] = u[i++];
            int r = utf8_need(tmp, m);
            if (r < 0) { memcpy(ts->carry, tmp, m); ts->ncarry = m; return; }
            ts->ncarry = 0;
            if (r > 0) handle_cp(ts, tmp, (size_t)r);
            else { ts->invalid_bytes++; feed_bytes(ts, tmp + 1, m - 1); }
            continue;
        }
        /* fast path: printable ASCII runs go straight to the line buffer */
        size_t j = i;
        while (j < n && u[j] >= 0x20 && u[j] < 0x7F) j++;
        if (j > i) { tb_put(ts, &ts->line, (const char *)u + i, j - i); i = j; continue; }
        int r = utf8_need(u + i, n - i);
        if (r > 0) { handle_cp(ts, u + i, (size_t)r); i += (size_t)r; }
        else if (r < 0) { memcpy(ts->carry, u + i, n - i); ts->ncarry = n - i; return; }
        else { ts->invalid_bytes++; i++; }
    }
}

/* ---- public API ---------------------------------------------------------------- */
static void reset_markdown(text_stream *ts) {
    ts->line.len = 0;
    ts->off = 0;
    ts->ls = LS_START;
    ts->lk = LK_PARA;
    ts->prev_blank = 1;
    ts->in_list = 0;
    ts->in_fence = ts->in_icode = ts->in_table = ts->in_json = ts->in_ucode = ts->ucode_gap = ts->ucode_quote = ts->yaml_key = 0;
    ts->skip = SK_NONE;
    ts->in_quote = ts->line_quote = 0;
    ts->url_depth = 0;
    ts->prev_cp = ' ';
    ts->sym_gap = 0;
    ts->ncarry = 0;
    ts->pem = ts->pem_hdr = 0;
    ts->cred = 0;
    ts->bearer = 0;
    ts->val_quote = 0;
    ts->pw_words = ts->login_cmd = ts->set_cmd = ts->gh_cmd = ts->prose_pw = ts->digest_words = ts->login_words = 0;
    ts->cred_noun = ts->key_qual = ts->cred_span = ts->span_cue = 0;
    ts->long_word = 0;
    ts->lw_tail_len = 0;
    ts->pipe_ok = ts->pipe_hold = ts->pipe_wait = 0;
    ts->pend.len = 0;
    ts->uc_wait = ts->uc_hold_quote = 0;
    ts->uc_hold.len = 0;
}

stts_status text_stream_new(const text_params *p, text_sentence_fn fn, void *user, text_stream **out,
                            stts_error *err) {
    if (!out || !fn) return stts_error_set(err, STTS_ERR_INVALID_ARG, "text_stream_new: out and fn are required");
    *out = NULL;
    text_stream *ts = calloc(1, sizeof *ts);
    if (!ts) return stts_error_set(err, STTS_ERR_NOMEM, "text_stream_new: out of memory");
    if (p) ts->p = *p;
    else text_default_params(&ts->p);
    const char *lang = ts->p.notice_lang ? ts->p.notice_lang : "eng_Latn";
    size_t l = strlen(lang);
    if (l >= sizeof ts->lang) {
        free(ts);
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "text_stream_new: notice language '%.40s' is not an NLLB code", lang);
    }
    memcpy(ts->lang, lang, l + 1);
    ts->p.notice_lang = ts->lang;
    ts->fn = fn;
    ts->user = user;
    reset_markdown(ts);
    *out = ts;
    return STTS_OK;
}

void text_stream_free(text_stream *ts) {
    if (!ts) return;
    free(ts->line.p);
    free(ts->word.p);
    free(ts->sent.p);
    free(ts->held.p);
    free(ts->out.p);
    free(ts->pend.p);
    free(ts->uc_hold.p);
    free(ts);
}

stts_status text_stream_feed(text_stream *ts, const char *s, size_t n, uint64_t arrival_ns, stts_error *err) {
    ts->now = arrival_ns;
    if (ts->held.len && arrival_ns - ts->last_input > ts->p.idle_flush_ns) flush_held(ts);   /* silence came first */
    ts->last_input = arrival_ns;
    feed_bytes(ts, (const unsigned char *)s, n);
    process_line(ts, 0);
    if (ts->oom) {
        ts->oom = 0;
        return stts_error_set(err, STTS_ERR_NOMEM, "text_stream_feed: out of memory");
    }
    return STTS_OK;
}

int text_stream_in_code_block(const text_stream *ts) { return ts->in_fence == 1; }

void text_stream_end(text_stream *ts, uint64_t now_ns) {
    ts->now = now_ns;
    ts->force = 1;
    if (ts->ncarry) { ts->invalid_bytes += ts->ncarry; ts->ncarry = 0; }
    ts->ending = 1;
    if (ts->line.len > ts->off || ts->ls != LS_START) newline(ts);
    if (ts->pipe_wait) pipe_resume(ts);
    if (ts->uc_wait) uc_resume(ts);
    ts->ending = 0;
    end_fence(ts);
    end_json(ts);
    end_ucode(ts);
    end_table(ts);
    end_icode(ts);
    hard_break(ts);
    flush_held(ts);
    ts->force = 0;
    ts->oom = 0;
    reset_markdown(ts);
}

/* The word being collected ends a sentence if the input stops here: its last
 * character (closing quotes and brackets aside) is '.', '!' or '?'. Claude's
 * deltas often end right after the period, the space coming with the next. */
static int word_ends_sentence(const text_stream *ts) {
    const char *w = ts->long_word ? ts->lw_tail : ts->word.p;
    size_t n = ts->long_word ? ts->lw_tail_len : ts->word.len;
    while (n > 0 && strchr("\"')]", w[n - 1])) n--;
    if (n == 0) return 0;
    size_t st;
    if ((unsigned char)w[n - 1] >= 0x80) return is_script_term(last_cp(w, n, &st));
    return w[n - 1] == '.' || w[n - 1] == '!' || w[n - 1] == '?' || greek_question(w, n);
}

/* An idle flush in text without spaces (Japanese, Chinese) has no word to
 * wait for, so it cut wherever the stream paused: "...まだ続きま" now and
 * "す。" later, a word said in two halves. When the fragment ends inside
 * such text and has a clause mark (、，,) before it, only the text up to
 * the mark goes; the unfinished clause waits for input (or the block end),
 * like an unfinished English word. 1 when it did so. */
static int idle_cut_cjk(text_stream *ts) {
    const char *s = ts->sent.p;
    size_t n = ts->sent.len, st;
    uint32_t last = last_cp(s, n, &st);
    if (!is_nospace_script(last) || is_cjk_term(last) || is_closer(last) || last == 0x3001 || last == 0xFF0C) return 0;
    size_t cut = 0;
    for (size_t i = st; i > 0;) {
        size_t ps;
        uint32_t cp = last_cp(s, i, &ps);
        if (cp == 0x3001 || cp == 0xFF0C || cp == ',') { cut = i; break; }
        if (!is_nospace_script(cp) || n - ps > 120) break;   /* only a clause of this script, not too far back */
        i = ps;
    }
    if (!cut) return 0;
    ts->now = ts->last_input;
    ts->force = 1;
    deliver(ts, s, cut, TEXT_SPEECH, NULL, ts->now);
    ts->force = 0;
    ts->sent_gen++;
    ts->ord_at = 0;
    memmove(ts->sent.p, ts->sent.p + cut, n - cut);
    ts->sent.len = n - cut;
    ts->sent_chars = count_chars(ts->sent.p, ts->sent.len);
    ts->idle_kept = ts->last_input;
    return 1;
}

/* A line's start waits for its classification and ends like a sentence ("Done.", which may still
 * become "Done.c:3:5: error"): after the idle time it is decided on what came, once. */
static int idle_line_start(const text_stream *ts) {
    if (ts->ls != LS_START || ts->line.len < ts->off + 2 || ts->idle_tried == ts->last_input) return 0;
    unsigned char a = (unsigned char)ts->line.p[ts->line.len - 2], z = (unsigned char)ts->line.p[ts->line.len - 1];
    return (z == '.' || z == '!' || z == '?') && (isalpha(a) || a >= 0x80);
}

void text_stream_tick(text_stream *ts, uint64_t now_ns) {
    /* silence since the last input: the fragment goes out, with a waiting short sentence */
    if (now_ns - ts->last_input < ts->p.idle_flush_ns) return;
    if (ts->pipe_hold || ts->pipe_wait) return;   /* a possible table header waits for its next line */
    /* an unfinished CJK clause kept by the last idle flush waits for input,
     * as text_stream_deadline says: a caller ticking on its own clock (the
     * pump wakes every 250 ms) cut it mid-word a tick later ("パラメータを検"
     * | "証しています。") */
    if (ts->idle_kept && ts->idle_kept == ts->last_input && !ts->held.len) return;
    if (idle_line_start(ts)) {
        ts->idle_tried = ts->last_input;
        ts->idle_fin = 1;
        process_line(ts, 0);
        ts->idle_fin = 0;
    }
    if (word_ends_sentence(ts)) word_end(ts);
    if (ts->sent.len && idle_cut_cjk(ts)) return;
    if (ts->sent.len) {
        ts->now = ts->last_input;
        ts->force = 1;
        emit_sentence(ts);
        ts->force = 0;
    } else {
        flush_held(ts);
    }
}

uint64_t text_stream_deadline(const text_stream *ts) {
    /* Only what tick can flush counts, or the caller would spin on a deadline
     * in the past: a pending word without a sentence end waits for input. */
    if (ts->pipe_hold || ts->pipe_wait) return 0;
    if (ts->idle_kept && ts->idle_kept == ts->last_input && !ts->held.len) return 0;   /* a kept CJK clause waits */
    return (ts->sent.len || ts->held.len || word_ends_sentence(ts) || idle_line_start(ts)) ? ts->last_input + ts->p.idle_flush_ns
                                                                                             : 0;
}

void text_stream_notice(text_stream *ts, text_kind kind, const char *text, const char *lang, uint64_t arrival_ns) {
    text_stream_end(ts, arrival_ns);
    ts->now = arrival_ns;
    deliver(ts, text, strlen(text), kind, lang, arrival_ns);
}

void text_stream_notice_now(text_stream *ts, text_kind kind, const char *text, const char *lang, uint64_t arrival_ns) {
    ts->now = arrival_ns;
    deliver(ts, text, strlen(text), kind, lang, arrival_ns);
}

int text_stream_drop_word(text_stream *ts) {
    /* bytes of the line not read yet (a construct waiting for more) or a
     * word past WORD_MAX (partly passed on): not a plain word to drop */
    if (ts->line.len > ts->off || ts->long_word || !ts->word.len) return 0;
    ts->word.len = 0;
    return 1;
}

void text_stream_discard_pending(text_stream *ts, uint64_t now_ns) {
    ts->now = now_ns;
    ts->word.len = 0;
    ts->sent.len = 0;
    ts->sent_chars = 0;
    ts->sent_gen++;
    ts->cjk_end = ts->etc_wait = 0;
    ts->ord_at = 0;
    secret_notice(ts);   /* a secret it held was left out all the same: said */
    ts->force = 1;
    flush_held(ts);      /* complete short sentences waiting to merge were said text */
    ts->force = 0;
    reset_markdown(ts);
}

uint64_t text_stream_invalid_bytes(const text_stream *ts) { return ts->invalid_bytes; }

/* ---- one-shot cleaning ---------------------------------------------------------- */
typedef struct {
    char *out;
    size_t cap, len;
    int secret;
} short_ctx;

static void short_cb(void *user, const text_sentence *s) {
    short_ctx *c = user;
    /* The secret is already left out; its notice inside a short text (a
     * tool's command) read as part of the command, or was cut to "Secret". */
    if (s->kind == TEXT_NOTICE_SECRET) { c->secret = 1; return; }
    if (c->len && c->len + 1 < c->cap) c->out[c->len++] = ' ';
    size_t room = c->cap - 1 - c->len, n = s->len;
    if (n > room) {
        n = room;
        while (n > 0 && ((unsigned char)s->text[n] & 0xC0) == 0x80) n--;
    }
    memcpy(c->out + c->len, s->text, n);
    c->len += n;
    c->out[c->len] = '\0';
}

size_t text_clean_short(const char *in, size_t n, char *out, size_t cap) {
    return text_clean_short_secret(in, n, out, cap, NULL);
}

size_t text_clean_short_secret(const char *in, size_t n, char *out, size_t cap, int *secret) {
    if (secret) *secret = 0;
    if (cap == 0) return 0;
    out[0] = '\0';
    text_params p;
    text_default_params(&p);
    p.max_sentence_chars = 0;
    p.merge_short_chars = 0;
    short_ctx c = {out, cap, 0, 0};
    text_stream *ts;
    if (text_stream_new(&p, short_cb, &c, &ts, NULL) != STTS_OK) return 0;
    /* one line: newlines would make list items and headings out of a command */
    for (size_t i = 0; i < n; i++) {
        char ch = in[i] == '\n' ? ' ' : in[i];
        if (text_stream_feed(ts, &ch, 1, 0, NULL) != STTS_OK) break;
    }
    text_stream_end(ts, 0);
    text_stream_free(ts);
    if (secret) *secret = c.secret;
    return c.len;
}
