/* frontend.c - Claude Code stream-json (or transcript JSONL) lines in,
 * speakable sentences out. Decides which text is spoken, exactly once:
 *   - partial mode: text_delta text is spoken as it streams; the complete
 *     `assistant` line that follows adds only a missing suffix, if any;
 *   - otherwise the `assistant` text block is the source;
 *   - a text block already spoken (same message id, same text) is skipped;
 *   - result.result only when the turn spoke nothing else;
 *   - subagent lines, thinking and tool calls are silent unless enabled;
 *   - CLI error messages and error results become short error notices.
 * Cleaning and segmentation are the text stage's (one text_stream per
 * speaker: the main agent and each subagent that is spoken). */
#define _GNU_SOURCE   /* memmem */
#include "stts_ingest.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The main agent and the subagents spoken at once: Claude Code runs ten or
 * more Task agents in parallel, whose lines interleave; with 8 slots each
 * line evicted another's half-said sentence (fragments, and the complete
 * line said again). */
#define MAX_SOURCES 64
/* Hashes of spoken text blocks and announced tool ids remembered, the
 * oldest forgotten past this many: a resumed session re-emits its earlier
 * messages (a ring of 1024 said the first answer of an 1100-turn session
 * again). Grown as needed, so a short session stays small. */
#define SEEN_MAX ((size_t)1 << 16)
#define MAX_TOOL_JSON ((size_t)1 << 20)
#define MAX_GAPPED 8   /* blocks of one message with a gap given up, remembered (then forgotten, oldest first) */
#define MAX_LOSSES 4   /* later lost lines in one block's held text, remembered (then glued) */

enum { BLK_NONE, BLK_TEXT, BLK_THINK, BLK_TOOL, BLK_OTHER };

typedef struct {
    char *p;
    size_t len, cap;
} fbuf;

static int fb_put(fbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

typedef struct {
    fbuf a, b;              /* repaired copies (the one in use and scratch) */
    int oom;
    size_t utf8_at;         /* offset of the first invalid byte; (size_t)-1: none */
    int surrogates, numbers;
    /* the repaired line's first replaced escape, when it is a low surrogate
     * opening a string, and its last, when it is a high one closing a string
     * (0: none): half of a pair split across two text_delta lines */
    unsigned sur_head, sur_tail;
} json_fix;

static json_t *parse_json(json_fix *f, const char *line, size_t len, json_error_t *je);
static void json_fix_free(json_fix *f);
struct source;
static void gap_give_up(struct ingest_frontend *fe, struct source *s);

struct ingest_frontend;

typedef struct source {
    struct ingest_frontend *fe;
    char *parent;            /* NULL: the main agent */
    text_stream *ts;
    char msg_id[128];        /* current message.id; "" = none (the turn id is used) */
    int open_kind;           /* the content block open in partial mode */
    unsigned pend_high;      /* the open block's last delta ended in a lone high surrogate (now U+FFFD,
                              * cut off): the next delta's leading low one completes it */
    double pend_index;       /* that delta's block index */
    fbuf streamed;           /* text_delta text of the open text block */
    char tool_name[96];
    char tool_id[96];
    fbuf tool_json;
    fbuf msg_blocks;         /* partial mode: text of this message's finished text blocks, each + NUL */
    int holding;             /* the open text block repeats an earlier one so far: not fed yet */
    fbuf cut;                /* partial mode: text spoken of a block its stream cut (an "error"
                              * event, or a new message_start before its stop); the retried
                              * message streams it again from the start: not said twice */
    int cut_open;            /* ... and the text stage keeps the cut block's unfinished sentence for
                              * the retry to complete ("Delta ep" + "silon zeta.", not two pieces) */
    fbuf cut_blocks;         /* the cut message's text blocks, each + NUL: its finished ones and, last,
                              * the one its stream cut; the retry's text blocks are matched against
                              * them in order (pop_cut into cut), streamed again or sent as complete
                              * lines (the CLI's non-streaming fallback, under a new message id) */
    size_t cut_blocks_at;    /* the next one to match */
    int cut_last_open;       /* the last of them is the block the stream cut (cut_open applies to it) */
    int cut_cur_open;        /* the one in cut now is that block */
    char retry_id[128];      /* the message that retries the cut one (the first after it) */
    int msg_streamed;        /* this message began with a message_start (partial mode) */
    int cont;                /* the last text block stopped mid-sentence and is not ended (1; 2: after a space;
                              * CONT_TOKEN_LIMIT: its message hit the output token limit) */
    int stop_max_tokens;     /* partial mode: this message's message_delta said stop_reason "max_tokens" */
    uint64_t cont_ns;        /* ... since when (it ends whole after the idle flush time without input) */
    uint32_t cont_last;      /* its last code point (a seam without a space joins in unspaced scripts) */
    int cont_unspaced;       /* it holds a character of an unspaced script */
    int cite_run;            /* non-partial: the last block fed stopped mid-sentence (cited spans continue it) */
    uint64_t cite_last;      /* and its (message.id, text) hash: the same line again is a repeat */
    int gap;                 /* partial mode: a line was lost (broken, over-long) while this text block was
                              * open: streamed[0, gap_at) was fed, what streamed after the loss is held */
    int gap_closed;          /* and the block has stopped: its complete line may still come (SDK order) */
    uint64_t gap_stop_ns;    /* when it stopped: given up when the input is silent for the idle flush */
    size_t gap_at;
    size_t loss_at;          /* where the last lost line was (a second loss after gap_at): what streamed
                              * after it is whole */
    size_t losses[MAX_LOSSES]; /* where the later lost lines were (after gap_at, each after some text):
                              * the held text is pieces between them, each with its own word break */
    int nlosses;
    fbuf gapped;             /* the blocks of this message whose gap was never filled (their text as
                              * streamed, back to back): their complete lines are not said again */
    struct {
        size_t off, len;     /* the block's text in gapped */
        size_t at, tail;     /* its gap, and its last loss: text[tail, len) is whole */
        size_t losses[MAX_LOSSES];   /* its later losses */
        int nlosses;
    } grec[MAX_GAPPED];
    int ngapped;
    int msg_done;            /* partial mode: message_stop came; a block now starts a message whose start was lost */
    double last_index;       /* the index of this message's last content_block_start (-1: none) */
    int lost_between;        /* a line was lost while no block was open (the next block's start, perhaps) */
    uint64_t last_line;
    uint64_t used;           /* for eviction */
} source;

struct ingest_frontend {
    ingest_params p;
    char lang[32];
    ingest_sentence_fn fn;
    ingest_warn_fn warn;
    void *user;
    source *src[MAX_SOURCES];
    int nsrc;
    ingest_stats st;
    uint64_t seq, use_clock;
    uint64_t cur_line, cur_arrival;
    int in_tick;
    uint64_t turn;
    char turn_id[32];
    int turn_had_text, turn_error;
    int turn_active;            /* a main-agent assistant line or stream event came since the turn began
                                 * (a background subagent's lines come after its turn's result) */
    uint64_t init_line;         /* a system/init that came while a main-agent message streamed (0: none):
                                 * the next main-agent line says whether a new turn began there */
    uint64_t *seen;             /* hashes of spoken text blocks and announced tool ids, oldest first */
    size_t seen_n, seen_cap, seen_pos;   /* (a ring once seen_n reaches SEEN_MAX: seen_pos is the oldest) */
    uint64_t *seen_tab;         /* the same hashes, open addressing (0: empty), 2 x seen_cap slots */
    char unknown[16][40];       /* unknown type names already warned about */
    int nunknown;
    json_fix fix;               /* a line jansson rejected, repaired */
    fbuf spoken;                /* normalized text spoken by the main agent this session (bounded) */
    uint32_t *bounds;           /* sentence boundaries in spoken (ascending offsets) */
    size_t nbounds, bounds_cap;
    fbuf norm;                  /* scratch */
    fbuf pair;                  /* a delta's text with a split surrogate pair joined */
    int turn_structured;        /* the turn ended in structured output (StructuredOutput tool) */
    int turn_interrupted;       /* the user stopped it (an "aborted" line, "[Request interrupted ...]") */
    int turn_lost;              /* a line lost this turn may have been the main agent's assistant text */
    int muted;                  /* lines taken in as already said: no sentence, no warning (ingest_transcript_record) */
    int plain_warned;           /* plain text on a stream-json input was reported */
    int format_warned;          /* a line of the other format (transcript vs stream-json) was reported */
    int tr_command;             /* transcript: a slash command came; a turn starts if Claude answers it */
    int utf8_warned;            /* invalid UTF-8 in text or markdown input was reported */
    fbuf frag;                  /* the start of a line split in two (rejoin_split), waiting for its rest */
    int frag_held;              /* frag holds such a start */
    uint64_t frag_line;         /* its line number */
    int frag_joins;             /* lines appended to it so far */
    char frag_err[200];         /* its warning, given if no rest comes */
    int oom;
};

void ingest_default_params(ingest_params *p) {
    memset(p, 0, sizeof *p);
    text_default_params(&p->text);
}

static void warnf(ingest_frontend *fe, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void warnf(ingest_frontend *fe, const char *fmt, ...) {
    if (!fe->warn || fe->muted) return;
    char msg[400];
    int k = snprintf(msg, sizeof msg, "line %llu: ", (unsigned long long)fe->cur_line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + k, sizeof msg - (size_t)k, fmt, ap);
    va_end(ap);
    fe->warn(fe->user, fe->cur_line, msg);
}

static uint64_t fnv(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ull; }
    return h;
}
static uint64_t key_hash(const char *kind, const char *id, const char *text, size_t n) {
    uint64_t h = fnv(14695981039346656037ull, kind, strlen(kind) + 1);
    h = fnv(h, id, strlen(id) + 1);
    return fnv(h, text, n);
}
static uint64_t seen_key(uint64_t h) { return h ? h : 1; }   /* 0 marks an empty slot */
static size_t seen_slot(const ingest_frontend *fe, uint64_t h) {
    size_t mask = 2 * fe->seen_cap - 1, i = (size_t)(h ^ (h >> 29)) & mask;
    while (fe->seen_tab[i] && fe->seen_tab[i] != h) i = (i + 1) & mask;
    return i;
}
static int seen_has(const ingest_frontend *fe, uint64_t h) {
    h = seen_key(h);
    return fe->seen_cap && fe->seen_tab[seen_slot(fe, h)] == h;
}
/* Removes h from the table (linear probing: the entries after it that
 * probed past its slot move back, so no search stops early). */
static void seen_tab_del(ingest_frontend *fe, uint64_t h) {
    size_t mask = 2 * fe->seen_cap - 1, i = seen_slot(fe, h);
    if (fe->seen_tab[i] != h) return;
    for (size_t j = i;;) {
        j = (j + 1) & mask;
        uint64_t v = fe->seen_tab[j];
        if (!v) break;
        size_t home = (size_t)(v ^ (v >> 29)) & mask;
        /* v may fill the hole at i unless its home lies cyclically in (i, j] */
        if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
            fe->seen_tab[i] = v;
            i = j;
        }
    }
    fe->seen_tab[i] = 0;
}
static void seen_add(ingest_frontend *fe, uint64_t h) {
    h = seen_key(h);
    if (seen_has(fe, h)) return;
    if (fe->seen_n == fe->seen_cap && fe->seen_cap < SEEN_MAX) {
        /* grow: the ring is still in order [0, n); the table is rebuilt */
        size_t nc = fe->seen_cap ? fe->seen_cap * 2 : 256;
        uint64_t *r = realloc(fe->seen, nc * sizeof *r), *t = calloc(2 * nc, sizeof *t);
        if (r) fe->seen = r;
        if (!r || !t) { free(t); fe->oom = 1; return; }
        free(fe->seen_tab);
        fe->seen_tab = t;
        fe->seen_cap = nc;
        for (size_t k = 0; k < fe->seen_n; k++) fe->seen_tab[seen_slot(fe, fe->seen[k])] = fe->seen[k];
        fe->seen_pos = fe->seen_n;
    }
    if (fe->seen_n == fe->seen_cap) {   /* full at SEEN_MAX: the oldest goes */
        seen_tab_del(fe, fe->seen[fe->seen_pos]);
        fe->seen_n--;
    }
    fe->seen[fe->seen_pos] = h;
    fe->seen_tab[seen_slot(fe, h)] = h;
    fe->seen_pos = (fe->seen_pos + 1) % fe->seen_cap;
    fe->seen_n++;
}

/* ---- sentences out ---------------------------------------------------------- */
static void text_cb(void *user, const text_sentence *s) {
    source *src = user;
    ingest_frontend *fe = src->fe;
    if (fe->muted) return;
    ingest_sentence o;
    o.text = s->text;
    o.len = s->len;
    o.kind = s->kind;
    o.lang = s->lang;
    o.message_id = src->msg_id[0] ? src->msg_id : fe->turn_id;
    o.seq = fe->seq++;
    o.line_no = fe->in_tick ? src->last_line : fe->cur_line;
    o.arrival_ns = s->arrival_ns;
    o.emit_ns = stts_now_ns();
    if (s->kind == TEXT_SPEECH) fe->st.sentences++;
    else fe->st.notices++;
    fe->fn(fe->user, &o);
}

static void source_free(source *s) {
    if (!s) return;
    text_stream_free(s->ts);
    free(s->parent);
    free(s->streamed.p);
    free(s->tool_json.p);
    free(s->msg_blocks.p);
    free(s->cut.p);
    free(s->cut_blocks.p);
    free(s->gapped.p);
    free(s);
}

static source *source_get(ingest_frontend *fe, const char *parent) {
    for (int i = 0; i < fe->nsrc; i++) {
        source *s = fe->src[i];
        if ((!parent && !s->parent) || (parent && s->parent && strcmp(parent, s->parent) == 0)) {
            s->used = ++fe->use_clock;
            return s;
        }
    }
    int slot = fe->nsrc;
    if (slot == MAX_SOURCES) {   /* evict the least recently used subagent, one between blocks if any */
        slot = 1;
        for (int i = 2; i < fe->nsrc; i++) {
            int idle_i = fe->src[i]->open_kind == BLK_NONE, idle_s = fe->src[slot]->open_kind == BLK_NONE;
            if (idle_i > idle_s || (idle_i == idle_s && fe->src[i]->used < fe->src[slot]->used)) slot = i;
        }
        gap_give_up(fe, fe->src[slot]);
        text_stream_end(fe->src[slot]->ts, fe->cur_arrival);
        source_free(fe->src[slot]);
        fe->src[slot] = NULL;
    }
    source *s = calloc(1, sizeof *s);
    if (!s) { fe->oom = 1; return NULL; }
    s->fe = fe;
    if (parent && !(s->parent = strdup(parent))) { free(s); fe->oom = 1; return NULL; }
    if (text_stream_new(&fe->p.text, text_cb, s, &s->ts, NULL) != STTS_OK) {
        source_free(s);
        fe->oom = 1;
        return NULL;
    }
    s->used = ++fe->use_clock;
    s->last_index = -1;
    fe->src[slot] = s;
    if (slot == fe->nsrc) fe->nsrc++;
    return s;
}

/* Normalized text for "was this already said?": ASCII letters and digits
 * lowercased and every other byte of UTF-8 text kept; punctuation, markup
 * and white space dropped, so "**Done.**\n" and "Done" compare equal. With
 * bounds, the sentence boundaries are recorded too: after . ! ? a line break
 * and the other scripts' sentence ends (… 。！？． ؟ ۔ । ॥). */
static void spoken_bound(ingest_frontend *fe) {
    uint32_t pos = (uint32_t)fe->spoken.len;
    if (fe->nbounds && fe->bounds[fe->nbounds - 1] == pos) return;
    if (fe->nbounds == fe->bounds_cap) {
        size_t cap = fe->bounds_cap ? fe->bounds_cap * 2 : 256;
        uint32_t *b = realloc(fe->bounds, cap * sizeof *b);
        if (!b) { fe->oom = 1; return; }
        fe->bounds = b;
        fe->bounds_cap = cap;
    }
    fe->bounds[fe->nbounds++] = pos;
}

static size_t term_len(const unsigned char *t, size_t n) {
    static const char *const terms[] = {"\xE2\x80\xA6", "\xE3\x80\x82", "\xEF\xBC\x81", "\xEF\xBC\x9F", "\xD8\x9F",
                                        "\xDB\x94", "\xE0\xA5\xA4", "\xE0\xA5\xA5", "\xEF\xBC\x8E", NULL};
    for (int i = 0; terms[i]; i++) {
        size_t l = strlen(terms[i]);
        if (n >= l && memcmp(t, terms[i], l) == 0) return l;
    }
    return 0;
}

static void normalize_into(ingest_frontend *fe, fbuf *b, const char *t, size_t n, int bounds) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        char o;
        if (c >= 0x80) {
            size_t l = bounds ? term_len((const unsigned char *)t + i, n - i) : 0;
            if (l) {
                if (fb_put(b, t + i, l)) { fe->oom = 1; return; }
                i += l - 1;
                spoken_bound(fe);
                continue;
            }
            o = (char)c;
        } else if (c >= 'A' && c <= 'Z') o = (char)(c + 32);
        else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) o = (char)c;
        else {
            if (bounds && (c == '.' || c == '!' || c == '?' || c == '\n')) spoken_bound(fe);
            continue;
        }
        if (fb_put(b, &o, 1)) { fe->oom = 1; return; }
    }
}

#define SPOKEN_MAX ((size_t)1 << 20)

/* A reply cut by the output token limit ("...a complete rewr") goes on in
 * the next message ("ite of the tokenizer stage."), after a user line of
 * Claude Code's own ("Output token limit hit. Resume directly ..."): the
 * open sentence is held for it, joined as it comes (mid-word), and for
 * longer than the idle flush since a new request is made first; the turn's
 * result ends it in any case. */
#define CONT_TOKEN_LIMIT 3
#define TOKEN_LIMIT_WAIT_NS (20ull * 1000000000ull)

/* How long a block held open waits for its continuation. */
static uint64_t cont_wait(const struct ingest_frontend *fe, const struct source *s);

/* The end of a text block of the main agent is a sentence boundary. */
static void end_block(ingest_frontend *fe, source *s) {
    gap_give_up(fe, s);   /* the held text is this block's: said before it ends */
    s->cont = 0;
    s->cont_unspaced = 0;
    s->cite_run = 0;
    if (s->cut_open && (s->cut.len || s->cut_blocks.len)) return;   /* the retry's text completes it (cut_check) */
    s->cut_open = 0;
    text_stream_end(s->ts, fe->cur_arrival);
    if (!s->parent) spoken_bound(fe);
}

/* Does a text block stop inside a sentence? The API splits one sentence into
 * several text blocks around cited spans ("citations": "The sky is " + "blue"
 * + ", the docs say."), so such a block's end is no sentence end: the next
 * text block of the message continues it (anything else ends it). A block
 * ending in a line break or after . ! ? : ; (closing markup and quotes
 * aside) ends where it is, as before; so does one glued to the next without
 * a space or punctuation between ("First block" + "second block": two blocks
 * that are not one sentence; cited spans keep their spaces), see feed_text. */
static int ends_mid_sentence(const char *t, size_t n) {
    while (n && (t[n - 1] == ' ' || t[n - 1] == '\t')) n--;
    while (n && strchr("*_`)]\"'", t[n - 1])) n--;
    if (!n || t[n - 1] == '\n' || t[n - 1] == '\r' || strchr(".!?:;", t[n - 1])) return 0;
    const unsigned char *u = (const unsigned char *)t;
    if ((n >= 3 && term_len(u + n - 3, 3) == 3) || (n >= 2 && term_len(u + n - 2, 2) == 2)) return 0;   /* 。！？．… */
    return 1;
}

/* The code point starting at t (n bytes, valid UTF-8 or repaired); 0 if none. */
static uint32_t cp_at(const unsigned char *t, size_t n) {
    if (!n) return 0;
    if (t[0] < 0x80) return t[0];
    size_t l = t[0] >= 0xF0 ? 4 : t[0] >= 0xE0 ? 3 : 2;
    if (l > n) return 0;
    uint32_t c = t[0] & (0x3F >> (l - 1));
    for (size_t i = 1; i < l; i++) c = (c << 6) | (t[i] & 0x3F);
    return c;
}

/* Scripts written without spaces between words (Han, kana, CJK punctuation
 * and fullwidth forms, Hangul, whose particles join their noun, Thai, Lao,
 * Myanmar, Khmer): a seam between two text blocks needs no space there. */
static int unspaced_script(uint32_t c) {
    return (c >= 0x0E00 && c <= 0x0EFF) || (c >= 0x1000 && c <= 0x109F) || (c >= 0x1780 && c <= 0x17FF) ||
           (c >= 0x2E80 && c <= 0x9FFF) || (c >= 0xAC00 && c <= 0xD7AF) || (c >= 0xF900 && c <= 0xFAFF) ||
           (c >= 0xFF00 && c <= 0xFFEF) || (c >= 0x20000 && c <= 0x3FFFF);
}

/* The end of a text block: held open when it stops mid-sentence. */
static void end_text_block(ingest_frontend *fe, source *s, const char *t, size_t n) {
    if (!ends_mid_sentence(t, n)) { end_block(fe, s); return; }
    s->cont = n && (t[n - 1] == ' ' || t[n - 1] == '\t') ? 2 : 1;
    s->cont_ns = fe->cur_arrival;
    size_t k = n;
    while (k > 0 && n - k < 4 && ((unsigned char)t[k - 1] & 0xC0) == 0x80) k--;
    s->cont_last = k ? cp_at((const unsigned char *)t + k - 1, n - k + 1) : 0;
    /* the open sentence so far: from the block's last sentence end or line
     * break on (end_block resets it between sentences) */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '\n' || c == '.' || c == '!' || c == '?' || term_len((const unsigned char *)t + i, n - i))
            s->cont_unspaced = 0;
        else if (c >= 0xE0 && unspaced_script(cp_at((const unsigned char *)t + i, n - i)))
            s->cont_unspaced = 1;
    }
}

/* Does text t continue the sentence the last block left open? A seam with a
 * space or punctuation does; so does one in an unspaced script: the open
 * block ends in one ("東京の天気は" + "晴れ"), or holds one and t starts
 * with one ("東京でAPI" + "を使います"). "First block" + "second block" does
 * not. */
static int seam_continues(const source *s, const char *t, size_t n) {
    if (!s->cont || !n) return 0;
    if (s->cont == 2 || s->cont == CONT_TOKEN_LIMIT || strchr(" \t\n,.;:!?)]", t[0])) return 1;
    if (unspaced_script(s->cont_last)) return 1;
    return s->cont_unspaced && unspaced_script(cp_at((const unsigned char *)t, n));
}

static void feed_text(ingest_frontend *fe, source *s, const char *t, size_t n) {
    stts_error e;
    if (s->cut_open) {
        /* other text than the cut block's continuation: the unfinished
         * sentence it kept ends first */
        s->cut_open = 0;
        text_stream_end(s->ts, fe->cur_arrival);
    }
    if (s->cont && n) {
        /* the first text after a block held open: a continuation has a space
         * or punctuation at the seam, else the held block ends here */
        if (!seam_continues(s, t, n)) end_block(fe, s);
        s->cont = 0;
    }
    s->last_line = fe->cur_line;
    if (text_stream_feed(s->ts, t, n, fe->cur_arrival, &e) != STTS_OK) fe->oom = 1;
    if (!s->parent) {
        fe->turn_had_text = 1;
        if (fe->spoken.len > SPOKEN_MAX) {
            /* keep the later half, from a sentence boundary on */
            size_t cut = fe->spoken.len - SPOKEN_MAX / 2, k = 0;
            while (k < fe->nbounds && fe->bounds[k] < cut) k++;
            if (k < fe->nbounds) cut = fe->bounds[k];
            memmove(fe->spoken.p, fe->spoken.p + cut, fe->spoken.len - cut);
            fe->spoken.len -= cut;
            for (size_t j = k; j < fe->nbounds; j++) fe->bounds[j - k] = fe->bounds[j] - (uint32_t)cut;
            fe->nbounds -= k;
        }
        normalize_into(fe, &fe->spoken, t, n, 1);
    }
}

/* ---- a line lost inside a streamed text block ----------------------------------
 * A broken or over-long line is skipped; when it was a text_delta, the text
 * streamed after it continues mid-word from somewhere else ("The quick bro"
 * + "ps over" was read "The quick brops over", a word that does not exist).
 * So after a lost line an open text block's deltas are held, not fed, until
 * the block's complete assistant line (which comes before its stop, or just
 * after it in the SDK's order) fills the gap: everything after what was fed
 * is taken from the line, the lost words included. When no such line comes,
 * the held text follows what was fed with a word break between: words cut
 * at the gap are fragments, never glued into one. */
static int has_type_member(const char *line, size_t len, const char *value);

static void mark_lost_answer(ingest_frontend *fe, const char *line, size_t len);

/* Does line[0, len) name one of these types (a "type" member)? */
static int names_type(const char *line, size_t len, const char *const *types) {
    for (int i = 0; types[i]; i++)
        if (has_type_member(line, len, types[i])) return 1;
    return 0;
}

/* Whose line was it? Its parent_tool_use_id, looked up lexically in what
 * is left of it: LOST_ANY when the member is not there (or cut before its
 * value), LOST_MAIN for null, LOST_SUB with the whole id copied to parent,
 * LOST_SUB_CUT when the id is cut short (a subagent's, but whose is not
 * known). */
enum { LOST_ANY, LOST_MAIN, LOST_SUB, LOST_SUB_CUT };
static int lost_speaker(const char *line, size_t len, char *parent, size_t cap) {
    parent[0] = '\0';
    const char *p = memmem(line, len, "\"parent_tool_use_id\"", 20);
    if (!p) return LOST_ANY;
    const char *e = line + len;
    p += 20;
    while (p < e && (*p == ' ' || *p == ':')) p++;
    if (e - p >= 4 && memcmp(p, "null", 4) == 0) return LOST_MAIN;
    if (p == e || *p != '"') return LOST_ANY;
    size_t k = 0;
    for (p++; p < e && *p != '"' && k + 1 < cap; p++) parent[k++] = *p;
    parent[k] = '\0';
    return p < e ? LOST_SUB : LOST_SUB_CUT;
}

/* line[0, len): what is left of the lost line (NULL: nothing, an over-long
 * line). Only a line that may have been a text_delta of a speaker makes a
 * gap in that speaker's open block: a tool result, a system or rate-limit
 * line cut short (long lines are the ones cut) costs nothing, and a line
 * naming its parent_tool_use_id concerns that speaker only (else a
 * subagent's broken line held the main agent's speech). */
static void mark_gaps(ingest_frontend *fe, const char *line, size_t len) {
    char parent[128] = "";
    int which = LOST_ANY;
    mark_lost_answer(fe, line, len);
    if (line) {
        static const char *const not_delta[] = {"tool_result", "user", "system", "result", "rate_limit_event", "assistant", NULL};
        if (names_type(line, len, not_delta)) return;
        which = lost_speaker(line, len, parent, sizeof parent);
        if (which == LOST_SUB_CUT) which = LOST_ANY;   /* whose is not known: any speaker's block may have lost it */
    }
    for (int i = 0; i < fe->nsrc; i++) {
        source *s = fe->src[i];
        if ((which == LOST_MAIN && s->parent) || (which == LOST_SUB && (!s->parent || strcmp(s->parent, parent) != 0))) continue;
        /* between blocks: if deltas come without their block's start, the
         * start and the first deltas may have been lost (on_event) */
        if (s->open_kind == BLK_NONE) s->lost_between = 1;
        /* a retried block has its own rules (it is fed later as a whole); a
         * held one (it repeats an earlier block so far) keeps the gap too:
         * only what came before the loss is fed when the hold ends */
        if (s->open_kind != BLK_TEXT || s->cut.len) continue;
        if (s->gap) {
            /* a second loss: what streams after it is whole, and no word runs
             * across it (unless there were too many) */
            if (s->streamed.len > s->loss_at && s->nlosses < MAX_LOSSES) s->losses[s->nlosses++] = s->streamed.len;
            s->loss_at = s->streamed.len;
            continue;
        }
        s->loss_at = s->streamed.len;
        s->gap = 1;
        s->gap_closed = 0;
        s->gap_at = s->streamed.len;
        s->nlosses = 0;
    }
}

/* The lost line (as for mark_gaps) may have been a complete assistant line
 * of the main agent: not a user, system, result, rate-limit or stream event
 * line, nor one naming a subagent's parent_tool_use_id, and no main-agent
 * text block streaming (its deltas carry the words). Its text is then
 * nowhere but in the turn's result, when it was the turn's last (the CLI
 * cuts long lines: anthropics/claude-code#3359, #2904), so that result is
 * said unless it was already spoken (on_result). */
static void mark_lost_answer(ingest_frontend *fe, const char *line, size_t len) {
    if (fe->p.transcript) return;
    for (int i = 0; i < fe->nsrc; i++)
        if (!fe->src[i]->parent && fe->src[i]->open_kind == BLK_TEXT) return;
    if (line) {
        static const char *const other[] = {"tool_result", "user", "system", "result", "rate_limit_event",
                                            "stream_event", NULL};
        char parent[128];
        if (names_type(line, len, other)) return;
        int who = lost_speaker(line, len, parent, sizeof parent);
        if (who == LOST_SUB || who == LOST_SUB_CUT) return;   /* a subagent's line */
    }
    fe->turn_lost = 1;
}

/* White space at the start and at the end of t[0, n). */
static size_t lead_ws(const char *t, size_t n) {
    size_t i = 0;
    while (i < n && isspace((unsigned char)t[i])) i++;
    return i;
}
static size_t trail_ws(const char *t, size_t n) {
    size_t i = 0;
    while (i < n && isspace((unsigned char)t[n - 1 - i])) i++;
    return i;
}

/* Does t[from, n) hold a block's held text, g[at, len) as pieces between
 * its later lost lines (loss[0..nl)), in order, the last piece at t's end
 * (white space aside)? The concatenated deltas of a block are its text, so
 * a line (or result) holding what came between the lost lines, in that
 * order, is that block's. Returns the bytes of the pieces matched, 0 when
 * not held (or nothing was held). */
static size_t holds_held_at(const char *t, size_t n, size_t from, const char *g, size_t at, size_t len,
                            const size_t *loss, int nl, int at_end) {
    size_t pos = from, got = 0, tn = n - trail_ws(t, n);
    for (int k = 0; k <= nl; k++) {
        size_t b = k ? loss[k - 1] : at, e = k < nl ? loss[k] : len;
        if (e <= b) continue;
        if (k == nl && at_end) {   /* the last piece ends the block */
            e -= trail_ws(g + b, e - b);
            if (e <= b) break;
            if (tn < pos + (e - b) || memcmp(t + tn - (e - b), g + b, e - b) != 0) return 0;
            got += e - b;
            break;
        }
        const char *f = pos < n ? memmem(t + pos, n - pos, g + b, e - b) : NULL;
        if (!f) return 0;
        pos = (size_t)(f - t) + (e - b);
        got += e - b;
    }
    return got;
}
static size_t holds_held(const char *t, size_t n, size_t from, const char *g, size_t at, size_t len,
                         const size_t *loss, int nl) {
    return holds_held_at(t, n, from, g, at, len, loss, nl, 1);
}

/* t: the complete text of the block with the gap. When it starts with what
 * was fed, the rest of it is fed and becomes what streamed; 1 then. (The
 * held text is not compared, but for a gap with nothing fed before it. An
 * earlier block's line after the stop, which would match a gap with
 * nothing fed before it, is skipped before: on_assistant.) */
static void release_hold(ingest_frontend *fe, source *s, int ended);
static int gap_fill(ingest_frontend *fe, source *s, const char *t, size_t n, int open) {
    if (!s->gap || n < s->gap_at || (s->gap_at && memcmp(t, s->streamed.p, s->gap_at) != 0)) return 0;
    if (!s->gap_at) {
        /* nothing fed to compare: the line must hold what was held, the
         * pieces between the lost lines in order, the last one at its end
         * (white space aside) when it comes after the stop (an earlier
         * block's line may come then); the open block's line (before its
         * stop) may hold more after them (its last deltas lost unseen) */
        const char *st = s->streamed.p ? s->streamed.p : "";   /* nothing streamed yet: "" */
        size_t m = holds_held_at(t, n, 0, st, 0, s->streamed.len, s->losses, s->nlosses, 0);
        /* after the stop too when 8 bytes or more of it are in the line
         * (the last deltas lost unseen; earlier blocks' lines are known) */
        if (lead_ws(st, s->streamed.len) < s->streamed.len &&
            !(m && (open || m >= 8 || holds_held(t, n, 0, st, 0, s->streamed.len, s->losses, s->nlosses))))
            return 0;
    }
    release_hold(fe, s, 0);   /* a held block: what came before the gap first */
    s->gap = s->gap_closed = 0;
    feed_text(fe, s, t + s->gap_at, n - s->gap_at);
    s->streamed.len = 0;
    if (fb_put(&s->streamed, t, n)) fe->oom = 1;
    return 1;
}

/* The block's complete line did not come (or does not match): the held
 * text is fed after a word break. A block that has stopped is then ended as
 * its stop would have. */
static void gap_give_up(ingest_frontend *fe, source *s) {
    if (!s->gap) return;
    release_hold(fe, s, 0);   /* a held block: what came before the gap first */
    int closed = s->gap_closed;
    s->gap = s->gap_closed = 0;
    const char *st = s->streamed.p ? s->streamed.p : "";
    /* each piece between lost lines after a word break: the words cut at
     * a loss are fragments, none glued into a word that does not exist */
    for (int k = 0; k <= s->nlosses; k++) {
        size_t b = k ? s->losses[k - 1] : s->gap_at, e = k < s->nlosses ? s->losses[k] : s->streamed.len;
        if (e > b) {
            /* (nothing fed before a gap at the block's start: no word to
             * break from, and a space there would continue the sentence
             * the block before left open, a table row's too) */
            if (b) feed_text(fe, s, " ", 1);
            feed_text(fe, s, st + b, e - b);
        }
    }
    if (s->ngapped == MAX_GAPPED) {   /* full: forget the oldest */
        size_t drop = s->grec[1].off;
        memmove(s->gapped.p, s->gapped.p + drop, s->gapped.len - drop);
        s->gapped.len -= drop;
        memmove(&s->grec[0], &s->grec[1], (MAX_GAPPED - 1) * sizeof s->grec[0]);
        for (int i = 0; i < MAX_GAPPED - 1; i++) s->grec[i].off -= drop;
        s->ngapped--;
    }
    size_t off = s->gapped.len;
    if (fb_put(&s->gapped, st, s->streamed.len)) fe->oom = 1;
    else {
        s->grec[s->ngapped].off = off;
        s->grec[s->ngapped].len = s->streamed.len;
        s->grec[s->ngapped].at = s->gap_at;
        s->grec[s->ngapped].tail = s->loss_at;
        memcpy(s->grec[s->ngapped].losses, s->losses, sizeof s->losses);
        s->grec[s->ngapped].nlosses = s->nlosses;
        s->ngapped++;
    }
    if (closed) {
        if (fb_put(&s->msg_blocks, st, s->streamed.len) || fb_put(&s->msg_blocks, "", 1)) fe->oom = 1;
        seen_add(fe, key_hash("text", s->msg_id[0] ? s->msg_id : fe->turn_id, st, s->streamed.len));
        end_text_block(fe, s, st, s->streamed.len);
    }
}

/* Is t the complete text of the block whose gap was never filled (its start
 * what was fed before the gap, then each piece held between its lost lines,
 * in order, the last at its end)? 8 bytes at least in all, or any line
 * matched (a block with little text after its last loss was said again). */
static int fills_gapped(const source *s, const char *t, size_t n) {
    for (int i = 0; i < s->ngapped; i++) {
        const char *g = s->gapped.p + s->grec[i].off;
        size_t pre = s->grec[i].at;
        if (n < pre || memcmp(t, g, pre) != 0) continue;
        /* and each piece held between lost lines, in order, the last at its end */
        size_t m = holds_held(t, n, pre, g, pre, s->grec[i].len, s->grec[i].losses, s->grec[i].nlosses);
        if (pre + m >= 8 && (m || lead_ws(g + pre, s->grec[i].len - pre) == s->grec[i].len - pre)) return 1;
        /* or not at its end (its last deltas lost unseen), 8 bytes held at least */
        if (holds_held_at(t, n, pre, g, pre, s->grec[i].len, s->grec[i].losses, s->grec[i].nlosses, 0) >= 8) return 1;
    }
    return 0;
}

static int is_bound(const ingest_frontend *fe, size_t pos) {
    if (pos == 0 || pos == fe->spoken.len) return 1;
    size_t lo = 0, hi = fe->nbounds;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (fe->bounds[mid] < pos) lo = mid + 1;
        else hi = mid;
    }
    return lo < fe->nbounds && fe->bounds[lo] == pos;
}

/* Was text t already spoken by the main agent this session, as whole
 * sentences? Its normalized form must occur in what was spoken starting and
 * ending at sentence boundaries ("Yes." is not inside "yesterday"). A long
 * one (32 normalized bytes or more) need only start at one: a result can
 * hold just the start of the last message, cut mid-sentence
 * (anthropics/claude-code#78686), and so much text is no coincidence. */
#define SPOKEN_START_ONLY 32
static int already_spoken(ingest_frontend *fe, const char *t, size_t n) {
    fe->norm.len = 0;
    normalize_into(fe, &fe->norm, t, n, 0);
    if (fe->norm.len == 0 || fe->spoken.len < fe->norm.len) return 0;
    const char *p = fe->spoken.p, *end = p + fe->spoken.len;
    while ((p = memmem(p, (size_t)(end - p), fe->norm.p, fe->norm.len)) != NULL) {
        size_t at = (size_t)(p - fe->spoken.p);
        if (is_bound(fe, at) && (fe->norm.len >= SPOKEN_START_ONLY || is_bound(fe, at + fe->norm.len))) return 1;
        p++;
    }
    return 0;
}

/* Partial mode: is the streamed text of the open block a prefix of (exact:
 * equal to) a text block this message already had? */
static int repeats_block(const source *s, int exact) {
    if (!s->msg_blocks.len) return 0;
    const char *p = s->msg_blocks.p, *end = p + s->msg_blocks.len;
    while (p && p < end) {
        size_t l = strlen(p);
        if (exact ? (l == s->streamed.len && (!l || memcmp(p, s->streamed.p, l) == 0))
                  : (l >= s->streamed.len && memcmp(p, s->streamed.p ? s->streamed.p : "", s->streamed.len) == 0))
            return 1;
        p += l + 1;
    }
    return 0;
}

/* Partial mode: the longest text block of this message already streamed
 * and closed that t continues (t longer); 0 when none. */
static size_t streamed_prefix(const source *s, const char *t, size_t n) {
    if (!s->msg_blocks.len) return 0;
    const char *p = s->msg_blocks.p, *end = p + s->msg_blocks.len;
    size_t best = 0;
    while (p && p < end) {
        size_t l = strlen(p);
        if (l > best && l < n && memcmp(p, t, l) == 0) best = l;
        p += l + 1;
    }
    return best;
}

/* The block of this message that streamed t[0, done) is t (its late
 * line gave the rest): so it is known, whole (the turn's result repeating
 * it was taken for a block it goes on from, and its rest said again). */
static void grow_block(ingest_frontend *fe, source *s, const char *t, size_t n, size_t done) {
    const char *p = s->msg_blocks.p, *end = p + s->msg_blocks.len;
    while (p && p < end) {
        size_t l = strlen(p);
        if (l == done && memcmp(p, t, done) == 0) {
            size_t at = (size_t)(p - s->msg_blocks.p), rest = s->msg_blocks.len - at - l;
            fbuf nb = {0};
            if (fb_put(&nb, s->msg_blocks.p, at) || fb_put(&nb, t, n) ||
                fb_put(&nb, s->msg_blocks.p + at + l, rest)) {
                fe->oom = 1;
                free(nb.p);
                return;
            }
            free(s->msg_blocks.p);
            s->msg_blocks = nb;
            return;
        }
        p += l + 1;
    }
}

/* Partial mode: is t a text block of this message already streamed and
 * closed, except for a part in its middle that never came (a delta lost
 * without a trace)? Such a block is t's start and t's end, at least 8 bytes
 * of each (two blocks that merely share a first and a last word are not
 * one), with nothing between. */
/* How many bytes p[0, l) and t[0, n) share at their start (*a) and, after
 * that, at their end (*z). */
static void common_ends(const char *p, size_t l, const char *t, size_t n, size_t *a, size_t *z) {
    *a = *z = 0;
    while (*a < l && *a < n && p[*a] == t[*a]) ++*a;
    while (*z < l - *a && *z < n - *a && p[l - 1 - *z] == t[n - 1 - *z]) ++*z;
}
static int middle_lost(const char *p, size_t l, const char *t, size_t n) {
    size_t a, z;
    common_ends(p, l, t, n, &a, &z);
    return l < n && a >= 8 && z >= 8 && a + z == l;
}
/* ... or t is such a block with a few bytes in its middle changed (a byte
 * the stream replaced with U+FFFD, a character one copy lost): at least 16
 * bytes the same at its start and 8 at its end, at most 8 different on
 * either side. Read whole, it was said twice; what the stream said of it
 * stands. */
static int middle_changed(const char *p, size_t l, const char *t, size_t n) {
    size_t a, z;
    common_ends(p, l, t, n, &a, &z);
    return a >= 16 && z >= 8 && l - a - z <= 8 && n - a - z <= 8;
}
static int streamed_with_gap(const source *s, const char *t, size_t n) {
    if (!s->msg_blocks.len) return 0;
    const char *p = s->msg_blocks.p, *end = p + s->msg_blocks.len;
    while (p && p < end) {
        size_t l = strlen(p);
        if (middle_lost(p, l, t, n) || middle_changed(p, l, t, n)) return 1;
        p += l + 1;
    }
    return 0;
}

/* ---- the result as the last block's complete line -----------------------------
 * A turn's result holds the text of its last text block (claude-stream-json.md
 * §6). When that block lost lines (a text_delta, and its complete assistant
 * line too: long lines are the ones the CLI cuts), the result is the only
 * copy of its words left, and it repeats the words already said: said whole
 * (the lost-answer rule), most of the block was said twice. So the result
 * is first taken for that block's complete line: it fills a gap still held
 * open, or gives what the block lacks at its end; nothing is said again.
 * White space at either end is not compared (a block may start with "\n\n"). */

/* The main agent's block held after a lost line (s->gap) and result text r:
 * when r starts with what was fed and holds what was held after that, the
 * rest of r is fed (the lost words included) as the block's complete line
 * would have been; 1 then. */
/* The offset in r after the text blocks of this message in msg_blocks
 * (all of them, or all but the last) that r starts with, in order, white
 * space between them aside: a result may hold the whole last message, its
 * blocks joined. */
static size_t skip_msg_blocks(const source *s, const char *r, size_t n, int but_last) {
    size_t at = lead_ws(r, n);
    if (!s->msg_blocks.len) return at;
    const char *p = s->msg_blocks.p, *end = p + s->msg_blocks.len;
    while (p && p < end) {
        size_t l = strlen(p), w = lead_ws(p, l), k;
        if (but_last && p + l + 1 >= end) break;
        k = l - w - trail_ws(p + w, l - w);
        if (!k || n - at < k || memcmp(r + at, p + w, k) != 0) break;
        at += k;
        at += lead_ws(r + at, n - at);
        p += l + 1;
    }
    return at;
}

static int result_fills_gap(ingest_frontend *fe, source *s, const char *r, size_t n) {
    if (!s->gap) return 0;
    const char *st = s->streamed.p ? s->streamed.p : "";
    size_t w = lead_ws(st, s->gap_at), pre = s->gap_at - w;
    size_t a = skip_msg_blocks(s, r, n, 0);   /* the message's blocks before this one */
    if (n - a < pre || memcmp(r + a, st + w, pre) != 0) return 0;
    /* the result is this block: what was fed starts it (8 bytes or more), or
     * what was held is in it, or what streamed after the last loss (8 bytes
     * or more) ends it (a second lost line glued words in what was held) */
    const char *h = st + s->gap_at, *z = st + s->loss_at;
    size_t hn = s->streamed.len - s->gap_at, hw = lead_ws(h, hn), zn = s->streamed.len - s->loss_at, zw = lead_ws(z, zn);
    h += hw;
    hn -= hw;
    hn -= trail_ws(h, hn);
    z += zw;
    zn -= zw;
    zn -= trail_ws(z, zn);
    size_t rz = n - trail_ws(r, n);
    if (pre < 8 && hn && !memmem(r + a + pre, n - a - pre, h, hn) &&
        !(zn >= 8 && rz >= a + pre + zn && memcmp(r + rz - zn, z, zn) == 0) &&
        pre + holds_held(r, n, a + pre, st, s->gap_at, s->streamed.len, s->losses, s->nlosses) < 8)
        return 0;
    /* the block's complete text: what was fed, then the result's rest */
    fbuf t = {0};
    if (fb_put(&t, st, s->gap_at) || fb_put(&t, r + a + pre, n - a - pre)) {
        fe->oom = 1;
        free(t.p);
        return 0;
    }
    int closed = s->gap_closed;
    if (!gap_fill(fe, s, t.p, t.len, 0)) {
        free(t.p);
        return 0;
    }
    if (closed) {   /* stopped already: ended as its line after the stop would have */
        if (fb_put(&s->msg_blocks, t.p, t.len) || fb_put(&s->msg_blocks, "", 1)) fe->oom = 1;
        seen_add(fe, key_hash("text", s->msg_id[0] ? s->msg_id : fe->turn_id, t.p, t.len));
        end_text_block(fe, s, t.p, t.len);
    }
    free(t.p);
    return 1;
}

/* How much of result text r the main agent's last text block of this
 * message said: n when all of it (r is the block, or its start: a result can
 * hold only a message's first part, anthropics/claude-code#78686; or the
 * block but for words lost in its middle, the held text given up after a
 * lost line or deltas that never came), the offset in r after the block when
 * r continues it (its last words were lost), 0 when r is not that block. */
static size_t result_said(const source *s, const char *r, size_t n) {
    if (!s->msg_blocks.len) return 0;
    const char *p = s->msg_blocks.p, *last = p;   /* the last block: after the last NUL but one */
    for (size_t i = 0; i + 1 < s->msg_blocks.len; i++)
        if (p[i] == '\0') last = p + i + 1;
    size_t l = strlen(last), a = skip_msg_blocks(s, r, n, 1), lw = lead_ws(last, l);
    last += lw;
    l -= lw;
    l -= trail_ws(last, l);
    size_t rn = n - a - trail_ws(r + a, n - a);
    if (!l || !rn) return 0;
    if (rn <= l && memcmp(r + a, last, rn) == 0) return n;
    if (l < rn && memcmp(r + a, last, l) == 0) return a + l;
    if (middle_lost(last, l, r + a, rn)) return n;
    /* the block whose gap was given up: its start and its held end (after
     * its last loss) */
    if (s->ngapped) {
        int i = s->ngapped - 1;   /* the last one: the turn's last block */
        const char *g = s->gapped.p + s->grec[i].off;
        size_t gw = lead_ws(g, s->grec[i].at), pre = s->grec[i].at - gw;
        const char *h = g + s->grec[i].tail;
        size_t hn = s->grec[i].len - s->grec[i].tail, hw = lead_ws(h, hn);
        h += hw;
        hn -= hw;
        hn -= trail_ws(h, hn);
        if (pre + hn >= 8 && pre + hn <= rn && memcmp(r + a, g + gw, pre) == 0 && memcmp(r + a + rn - hn, h, hn) == 0)
            return n;
        /* or each piece held between its lost lines, in order */
        if (pre <= rn && memcmp(r + a, g + gw, pre) == 0 &&
            pre + holds_held(r + a, rn, pre, g, s->grec[i].at, s->grec[i].len, s->grec[i].losses, s->grec[i].nlosses) >= 8)
            return n;
    }
    return 0;
}

/* The message's stream is cut (an "error" event, the next message_start
 * before its message_stop, or complete lines of another message: the CLI's
 * non-streaming fallback): what was said of its text blocks is kept, for the
 * retried message that sends them again (anthropics/claude-code#24663). The
 * open text block's part is, after a lost line, only what was fed: the held
 * rest comes again with the retry (fed now, it was said twice, the retry
 * diverging from the cut text at the gap). */
static void keep_cut(ingest_frontend *fe, source *s) {
    if (s->cut.len || s->cut_blocks.len) return;   /* a retry of a retry: the first cut's text stands */
    int open = s->open_kind == BLK_TEXT;
    if (!(s->msg_streamed && !s->msg_done && s->msg_blocks.len) && !open) return;
    if (s->msg_streamed && !s->msg_done && s->msg_blocks.len && fb_put(&s->cut_blocks, s->msg_blocks.p, s->msg_blocks.len))
        fe->oom = 1;
    size_t n = open ? (s->gap ? s->gap_at : s->streamed.len) : 0;
    s->gap = 0;
    s->cut_last_open = open && n;
    if (s->cut_last_open && (fb_put(&s->cut_blocks, s->streamed.p, n) || fb_put(&s->cut_blocks, "", 1))) fe->oom = 1;
    s->cut_blocks_at = 0;
    s->cut_open = s->cut_last_open;
    s->retry_id[0] = '\0';
}

/* The cut state is given up (the turn ended, another message than the
 * retry came): a sentence the stage kept for the retry ends now. */
static void drop_cut(ingest_frontend *fe, source *s) {
    s->cut.len = 0;
    s->cut_blocks.len = 0;
    s->cut_blocks_at = 0;
    s->retry_id[0] = '\0';
    if (s->cut_open) {
        s->cut_open = 0;
        text_stream_end(s->ts, fe->cur_arrival);
    }
}

/* The retry's next text block begins: the cut block it matches goes into
 * cut (empty when the retry has more blocks than the cut message had). */
static void pop_cut(source *s) {
    s->cut.len = 0;
    if (s->cut_blocks_at >= s->cut_blocks.len) return;
    const char *b = s->cut_blocks.p + s->cut_blocks_at;
    size_t l = strlen(b);
    s->cut_blocks_at += l + 1;
    if (l && fb_put(&s->cut, b, l)) s->fe->oom = 1;
    /* only the block the stream cut (the last) has an unfinished sentence kept */
    s->cut_cur_open = s->cut_blocks_at >= s->cut_blocks.len && s->cut_last_open;
    if (s->cut_blocks_at >= s->cut_blocks.len) s->cut_blocks.len = s->cut_blocks_at = 0;
}

/* Where the last sentence in t[0, n) ends: after ". " "! " "? ", a line
 * break or a CJK full stop, the space included (0: none). */
static size_t last_sentence_end(const char *t, size_t n) {
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '\n') at = i + 1;
        else if ((t[i] == '.' || t[i] == '!' || t[i] == '?') && i + 1 < n && (t[i + 1] == ' ' || t[i + 1] == '\n'))
            at = i + 2;
        else if (term_len((const unsigned char *)t + i, n - i)) at = i + term_len((const unsigned char *)t + i, n - i);
    }
    return at > n ? n : at;
}

/* The retry diverged from the cut text (a fresh sample seldom repeats it
 * word for word): the sentences both share from the start were said and
 * are not said again; the cut's unfinished sentence, never said, gives way
 * to the retry's words ("The macOS job is sti" to "On macOS, the job is
 * still running."). */
static void retry_diverged(ingest_frontend *fe, source *s, const char *t, size_t n) {
    size_t m = 0;
    while (m < n && m < s->cut.len && t[m] == s->cut.p[m]) m++;
    size_t from = last_sentence_end(t, m);
    if (s->cut_open) {
        s->cut_open = 0;
        text_stream_discard_pending(s->ts, fe->cur_arrival);
    }
    s->cut.len = 0;
    if (from) fe->st.duplicates++;
    if (n > from) feed_text(fe, s, t + from, n - from);
}

/* After a cut stream: the open text block's streamed text, not fed while
 * it repeats the cut block's text; the part beyond it is fed as it comes;
 * from the first sentence they do not share when it diverges. ended: the
 * block ended still within the cut text (nothing new). */
static void cut_check(ingest_frontend *fe, source *s, int ended) {
    if (!s->cut.len) return;
    size_t m = s->streamed.len < s->cut.len ? s->streamed.len : s->cut.len;
    if (m && memcmp(s->streamed.p, s->cut.p, m) != 0) {
        retry_diverged(fe, s, s->streamed.p, s->streamed.len);
    } else if (s->streamed.len > s->cut.len) {
        size_t k = s->cut.len;
        s->cut.len = 0;
        if (s->cut_cur_open) s->cut_open = 0;   /* the rest continues the sentence the stage kept */
        feed_text(fe, s, s->streamed.p + k, s->streamed.len - k);
    } else if (ended) {
        s->cut.len = 0;
        fe->st.duplicates++;
    }
}

/* A held block (it repeated an earlier one so far) is decided: dropped if it
 * is an exact repeat when ended, otherwise spoken in full. */
/* The held block continues the sentence the block before it left open (a
 * cited span): the next part of that sentence, no repeat. */
static int hold_continues(const source *s) {
    return s->streamed.len && seam_continues(s, s->streamed.p, s->streamed.len);
}

static void release_hold(ingest_frontend *fe, source *s, int ended) {
    if (!s->holding) return;
    s->holding = 0;
    if (ended && !s->gap && repeats_block(s, 1) && !hold_continues(s)) { fe->st.duplicates++; return; }
    /* after a lost line only what came before it: the rest waits for the gap's fill */
    size_t n = s->gap ? s->gap_at : s->streamed.len;
    if (n) feed_text(fe, s, s->streamed.p, n);
}

/* A new message id for this speaker: whatever is pending belongs to the old one. */
static void set_msg(ingest_frontend *fe, source *s, const char *id) {
    const char *n = id ? id : "";
    if (strcmp(s->msg_id, n) == 0) return;
    release_hold(fe, s, 0);
    /* the first message after a cut is its retry; any later one ends that */
    if (s->cut_blocks.len || s->cut.len) {
        if (!s->retry_id[0] && n[0]) snprintf(s->retry_id, sizeof s->retry_id, "%s", n);
        else if (strcmp(s->retry_id, n) != 0) drop_cut(fe, s);
    }
    if (s->cont != CONT_TOKEN_LIMIT) end_block(fe, s);   /* the next message continues that one */
    s->stop_max_tokens = 0;
    s->msg_streamed = 0;
    snprintf(s->msg_id, sizeof s->msg_id, "%s", n);
    s->open_kind = BLK_NONE;
    s->msg_blocks.len = 0;
    s->gapped.len = 0;
    s->ngapped = 0;
    s->msg_done = 0;
    s->last_index = -1;
}

/* The blocks this speaker streamed since a lost message_start have no
 * message id (set_msg(NULL) at their content_block_start, or none yet): the
 * first line that names one is theirs. Blocks said so far are marked as
 * spoken under it, as content_block_stop would have. */
static void adopt_msg(ingest_frontend *fe, source *s, const char *id) {
    snprintf(s->msg_id, sizeof s->msg_id, "%s", id);
    if (!s->msg_blocks.len) return;
    const char *p = s->msg_blocks.p, *end = p + s->msg_blocks.len;
    while (p && p < end) {
        size_t l = strlen(p);
        seen_add(fe, key_hash("text", s->msg_id, p, l));
        p += l + 1;
    }
}

/* ---- JSON helpers ---------------------------------------------------------------- */
static const char *jstr(const json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}
static size_t jstrlen(const json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_length(v) : 0;
}

static void unknown_type(ingest_frontend *fe, const char *what, const char *name) {
    fe->st.unknown_types++;
    for (int i = 0; i < fe->nunknown; i++)
        if (strcmp(fe->unknown[i], name) == 0) return;
    if (fe->nunknown < 16) snprintf(fe->unknown[fe->nunknown++], sizeof fe->unknown[0], "%s", name);
    warnf(fe, "unknown %s \"%.60s\" ignored (further ones are counted, not reported)", what, name);
}

static void missing(ingest_frontend *fe, const char *what) {
    fe->st.missing_fields++;
    warnf(fe, "%s; line skipped", what);
}

/* ---- notices ---------------------------------------------------------------------- */
static void notice(ingest_frontend *fe, source *s, text_kind kind, text_phrase_id id, const char *arg) {
    char buf[320];
    const char *lu;
    text_phrase_format(fe->lang, id, arg, 0, buf, sizeof buf, &lu);
    s->last_line = fe->cur_line;
    /* an "error" event that cut a text block (keep_cut): said now, the
     * unfinished sentence left for the retry to complete */
    if (s->cut_open && (s->cut.len || s->cut_blocks.len)) text_stream_notice_now(s->ts, kind, buf, lu, fe->cur_arrival);
    else text_stream_notice(s->ts, kind, buf, lu, fe->cur_arrival);
}

static void basename_of(const char *path, char *out, size_t cap) {
    const char *b = path;
    size_t n = strlen(path);
    while (n > 1 && (path[n - 1] == '/' || path[n - 1] == '\\')) n--;
    for (size_t i = 0; i < n; i++)
        if (path[i] == '/' || path[i] == '\\') b = path + i + 1;
    size_t l = (size_t)(path + n - b);
    text_clean_short(b, l, out, cap);
}

/* A search pattern is read as written ("__init__", "*.ts", "\\w+" are no
 * markdown), unless it holds a secret (a key being searched for was read out
 * whole): then it is read cleaned, literally (its ASCII punctuation escaped),
 * without the secret. */
static void clean_pattern(const char *v, char *out, size_t cap) {
    char esc[400];
    size_t k = 0;
    for (const char *c = v; *c && k + 2 < sizeof esc; c++) {
        unsigned char u = (unsigned char)*c;
        if (u < 0x20) u = ' ';
        if (u < 0x80 && u > ' ' && !isalnum(u)) esc[k++] = '\\';
        esc[k++] = (char)u;
    }
    int secret = 0;
    text_clean_short_secret(esc, k, out, cap, &secret);
    if (secret) return;
    snprintf(out, cap, "%s", v);
    out[stts_utf8_valid_prefix((const unsigned char *)out, strlen(out))] = '\0';   /* a cut character, or bad bytes */
    for (char *c = out; *c; c++) if ((unsigned char)*c < 0x20) *c = ' ';
}

/* A tool call as a short sentence built from its name and input. */
static void announce_tool(ingest_frontend *fe, source *s, const char *name, const json_t *input) {
    char arg[200] = "";
    text_phrase_id id = TEXT_PH_TOOL_OTHER;
    const char *v;
    if (!name) name = "unnamed";
    if (strcmp(name, "Bash") == 0 && (v = jstr(input, "command"))) {
        size_t n = strcspn(v, "\n");
        text_clean_short(v, n, arg, sizeof arg);
        /* the first eight words say what it is */
        int words = 0;
        for (size_t i = 0; arg[i]; i++)
            if (arg[i] == ' ' && ++words == 8) { arg[i] = '\0'; break; }
        id = TEXT_PH_TOOL_RUN;
    } else if ((strcmp(name, "Read") == 0 || strcmp(name, "NotebookRead") == 0) &&
               (v = jstr(input, "file_path"))) {
        basename_of(v, arg, sizeof arg);
        id = TEXT_PH_TOOL_READ;
    } else if ((strcmp(name, "Edit") == 0 || strcmp(name, "MultiEdit") == 0) && (v = jstr(input, "file_path"))) {
        basename_of(v, arg, sizeof arg);
        id = TEXT_PH_TOOL_EDIT;
    } else if (strcmp(name, "NotebookEdit") == 0 && (v = jstr(input, "notebook_path"))) {
        basename_of(v, arg, sizeof arg);
        id = TEXT_PH_TOOL_EDIT;
    } else if (strcmp(name, "Write") == 0 && (v = jstr(input, "file_path"))) {
        basename_of(v, arg, sizeof arg);
        id = TEXT_PH_TOOL_WRITE;
    } else if (strcmp(name, "Grep") == 0 && (v = jstr(input, "pattern"))) {
        clean_pattern(v, arg, sizeof arg);
        id = TEXT_PH_TOOL_GREP;
    } else if (strcmp(name, "Glob") == 0 && (v = jstr(input, "pattern"))) {
        const char *b = v;
        while (strncmp(b, "**/", 3) == 0) b += 3;
        clean_pattern(b, arg, sizeof arg);
        id = TEXT_PH_TOOL_GLOB;
    } else if (strcmp(name, "LS") == 0 && (v = jstr(input, "path"))) {
        basename_of(v, arg, sizeof arg);
        id = TEXT_PH_TOOL_LIST;
    } else if (strcmp(name, "WebFetch") == 0 && (v = jstr(input, "url"))) {
        text_clean_short(v, strlen(v), arg, sizeof arg);
        id = TEXT_PH_TOOL_FETCH;
    } else if (strcmp(name, "WebSearch") == 0 && (v = jstr(input, "query"))) {
        text_clean_short(v, strlen(v), arg, sizeof arg);
        id = TEXT_PH_TOOL_WEBSEARCH;
    } else if ((strcmp(name, "Task") == 0 || strcmp(name, "Agent") == 0) && (v = jstr(input, "description"))) {
        text_clean_short(v, strlen(v), arg, sizeof arg);
        id = TEXT_PH_TOOL_AGENT;
    } else if (strcmp(name, "TodoWrite") == 0) {
        id = TEXT_PH_TOOL_TODO;
    } else {
        /* mcp__server__do_thing -> "do thing" */
        const char *b = name, *m;
        while ((m = strstr(b, "__")) && m[2]) b = m + 2;
        snprintf(arg, sizeof arg, "%s", b);
        for (char *c = arg; *c; c++) if (*c == '_' || (unsigned char)*c < 0x20) *c = ' ';
    }
    if (!arg[0] && id != TEXT_PH_TOOL_TODO) {
        snprintf(arg, sizeof arg, "%s", name);
        id = TEXT_PH_TOOL_OTHER;
    }
    notice(fe, s, TEXT_NOTICE_TOOL, id, arg);
}

static void maybe_announce(ingest_frontend *fe, source *s, const char *tool_id, const char *name,
                           const json_t *input) {
    if (!fe->p.announce_tools) return;
    if (tool_id) {
        uint64_t h = key_hash("tool", tool_id, "", 0);
        if (seen_has(fe, h)) return;
        seen_add(fe, h);
    }
    announce_tool(fe, s, name, input);
}

static text_phrase_id error_phrase(const char *code) {
    if (!code) return TEXT_PH_ERR_GENERIC;
    if (strstr(code, "structured_output")) return TEXT_PH_ERR_STRUCTURED;   /* error_max_structured_output_retries */
    if (strstr(code, "auth")) return TEXT_PH_ERR_AUTH;
    if (strstr(code, "rate")) return TEXT_PH_ERR_RATE_LIMIT;
    if (strstr(code, "billing")) return TEXT_PH_ERR_BILLING;
    if (strstr(code, "model")) return TEXT_PH_ERR_MODEL;
    if (strstr(code, "max_turns")) return TEXT_PH_ERR_MAX_TURNS;
    if (strstr(code, "budget")) return TEXT_PH_ERR_BUDGET;
    if (strstr(code, "during_execution")) return TEXT_PH_ERR_EXECUTION;
    if (strstr(code, "api") || strstr(code, "overloaded")) return TEXT_PH_ERR_API;
    return TEXT_PH_ERR_GENERIC;
}

/* The phrase for an API error by its HTTP status (a result's
 * api_error_status): the subtype says only "success" and terminal_reason
 * "api_error" for a failed login and an overload alike. */
static text_phrase_id status_phrase(double st) {
    if (st == 401 || st == 403) return TEXT_PH_ERR_AUTH;
    if (st == 429) return TEXT_PH_ERR_RATE_LIMIT;
    if (st == 529) return TEXT_PH_ERR_API;   /* overloaded */
    return TEXT_PH__COUNT;                   /* none: the subtype decides */
}

/* Claude Code's plan usage limit, "Claude AI usage limit reached|1751317200"
 * (the reset time after the bar; later "Claude usage limit reached. Your
 * limit will reset at ..."): a <synthetic> message and the result text, the
 * result with is_error true under subtype "success" (or, in some versions,
 * false). Only a short text that starts so and goes on after a bar or a
 * full stop, not a reply that talks about it. */
static int is_usage_limit(const char *t, size_t n) {
    static const char *const pre[] = {"Claude AI usage limit reached", "Claude usage limit reached", NULL};
    if (!t || n > 200) return 0;
    size_t a = lead_ws(t, n);
    for (int i = 0; pre[i]; i++) {
        size_t l = strlen(pre[i]);
        if (n - a >= l && memcmp(t + a, pre[i], l) == 0 &&
            (n - a == l || t[a + l] == '|' || t[a + l] == '.' || lead_ws(t + a + l, n - a - l) == n - a - l))
            return 1;
    }
    return 0;
}

/* The phrase for a CLI error message: its error field ("authentication_failed",
 * "rate_limit"), else what its text says ("API Error: 529 {...overloaded...}"
 * under error "unknown"). */
static text_phrase_id message_error_phrase(const char *err, const char *text) {
    text_phrase_id id = error_phrase(err);
    if (id != TEXT_PH_ERR_GENERIC || !text || strncmp(text, "API Error", 9) != 0) return id;
    const char *p = text + 9;
    while (*p == ':' || *p == ' ') p++;
    text_phrase_id by_status = isdigit((unsigned char)p[0]) ? status_phrase(atof(p)) : TEXT_PH__COUNT;
    if (by_status != TEXT_PH__COUNT) return by_status;
    return strstr(text, "overloaded") ? TEXT_PH_ERR_API : id;
}

/* ---- line handlers ----------------------------------------------------------------- */
/* The subagent a line is from (NULL: the main agent). Both markers are
 * honoured in both modes: stream-json's parent_tool_use_id and the
 * transcript's isSidechain (a transcript given to --input spoke its
 * subagents' text; a stream-json capture given to --transcript took a
 * subagent's prompt for the user's). */
static const char *parent_of(const json_t *root) {
    const char *p = jstr(root, "parent_tool_use_id");
    if (p) return p;
    return json_is_true(json_object_get(root, "isSidechain")) ? "sidechain" : NULL;
}

static void on_assistant(ingest_frontend *fe, const json_t *root) {
    const char *parent = parent_of(root);
    if (parent && !fe->p.speak_subagents) { fe->st.subagent_skipped++; return; }
    const json_t *msg = json_object_get(root, "message");
    if (!json_is_object(msg)) { missing(fe, "assistant line without a \"message\" object"); return; }
    const json_t *content = json_object_get(msg, "content");
    if (!json_is_array(content) && !json_is_string(content)) {
        missing(fe, "assistant message without \"content\"");
        return;
    }
    source *s = source_get(fe, parent);
    if (!s) return;
    const char *id = jstr(msg, "id");
    const char *model = jstr(msg, "model");
    const char *err = jstr(root, "error");
    int api_err = json_is_true(json_object_get(root, "is_api_error_message")) ||
                  json_is_true(json_object_get(root, "isApiErrorMessage"));
    int synthetic = model && strcmp(model, "<synthetic>") == 0;
    int aborted = json_is_true(json_object_get(root, "aborted"));
    if (aborted && !parent) fe->turn_interrupted = 1;
    /* if the message_start of the blocks streaming (or streamed) was lost,
     * they have no id yet and this line supplies it */
    if (id && id[0] && !s->msg_id[0] && (s->open_kind != BLK_NONE || s->msg_blocks.len || s->gap)) adopt_msg(fe, s, id);
    /* the block open in partial mode is this line's block */
    int streaming_this = id && s->open_kind != BLK_NONE && strcmp(s->msg_id, id) == 0;
    /* complete lines of another message while a streamed one is unfinished:
     * its stream stalled and the CLI asked again without streaming */
    if (!streaming_this && id && s->msg_streamed && !s->msg_done && s->msg_id[0] && strcmp(s->msg_id, id) != 0)
        keep_cut(fe, s);
    if (!streaming_this) set_msg(fe, s, id);
    /* the usage limit comes as a <synthetic> message without an error field
     * (it went down the silent local-command branch below) */
    const json_t *b0 = json_is_array(content) ? json_array_get(content, 0) : NULL;
    const char *t0 = b0 ? jstr(b0, "text") : json_string_value(content);
    int limit = synthetic && t0 && is_usage_limit(t0, b0 ? jstrlen(b0, "text") : json_string_length(content));
    if (api_err || (synthetic && err) || limit) {
        /* a CLI error dressed as a message: say what kind, do not read it */
        uint64_t h = key_hash("error", id ? id : fe->turn_id, err ? err : "", err ? strlen(err) : 0);
        if (!seen_has(fe, h)) {
            seen_add(fe, h);
            if (!parent) fe->turn_error = 1;
            notice(fe, s, TEXT_NOTICE_ERROR, limit ? TEXT_PH_ERR_RATE_LIMIT : message_error_phrase(err, t0), NULL);
        }
        return;
    }
    if (synthetic) {
        /* Local command output (/context tables): not the model speaking.
         * The turn's result repeats it, so that is silent too. */
        if (!parent) fe->turn_had_text = 1;
        return;
    }
    size_t nb = json_is_array(content) ? json_array_size(content) : 1;
    for (size_t b = 0; b < nb; b++) {
        const json_t *blk = json_is_array(content) ? json_array_get(content, b) : NULL;
        const char *bt = blk ? jstr(blk, "type") : "text";
        if (!bt) continue;
        /* a text block held open ends at any other block; but not the
         * line of a thinking or tool block that comes after the stops (SDK
         * order) while a stopped block waits for its complete line to fill
         * a gap: that line may still come (it gave the gap up, the lost
         * words never said) */
        if (strcmp(bt, "text") != 0 && !(s->gap && s->gap_closed && id && strcmp(s->msg_id, id) == 0))
            end_block(fe, s);
        if (strcmp(bt, "text") == 0 || (strcmp(bt, "thinking") == 0 && fe->p.speak_thinking)) {
            int think = bt[1] == 'h';
            const char *key = think ? "thinking" : "text";
            const char *t = blk ? jstr(blk, key) : json_string_value(content);
            size_t n = blk ? jstrlen(blk, key) : json_string_length(content);
            if (!t) { missing(fe, "text block without text"); continue; }
            /* Claude Code's placeholder for a message without text: not the
             * model's words; it was read out as "no content" */
            if (!think && ingest_is_placeholder(t, n)) continue;
            /* the open block is the line's last (a line holding the whole message
             * repeats the blocks already closed before it) */
            if (streaming_this && b + 1 == nb && s->open_kind == (think ? BLK_THINK : BLK_TEXT)) {
                /* a line was lost while it streamed: the line fills the gap */
                if (s->gap && !think) {
                    if (gap_fill(fe, s, t, n, 1)) continue;
                    gap_give_up(fe, s);
                }
                /* already streamed as deltas: only a missing tail is new */
                if (s->cut.len && !think) {
                    /* a retried block, held while it repeats the cut one: the line's
                     * text is the rest of it */
                    if (n > s->streamed.len && memcmp(t, s->streamed.p ? s->streamed.p : "", s->streamed.len) == 0 &&
                        fb_put(&s->streamed, t + s->streamed.len, n - s->streamed.len))
                        fe->oom = 1;
                    cut_check(fe, s, 0);
                    continue;
                }
                if (s->holding) {
                    /* not fed yet: the full text replaces what streamed; the block end decides */
                    if (n >= s->streamed.len && memcmp(t, s->streamed.p ? s->streamed.p : "", s->streamed.len) == 0) {
                        if (fb_put(&s->streamed, t + s->streamed.len, n - s->streamed.len)) fe->oom = 1;
                        if (!repeats_block(s, 0) || hold_continues(s)) release_hold(fe, s, 0);
                    }
                    continue;
                }
                /* an interrupted turn's line (aborted): its last word is cut
                 * ("Then I will upd"): not said, as in non-partial mode
                 * below; streamed already, it is dropped from the stage */
                size_t fn = n;
                if (aborted && !think && n && isalnum((unsigned char)t[n - 1])) {
                    while (fn > 0 && !isspace((unsigned char)t[fn - 1])) fn--;
                    while (fn > 0 && isspace((unsigned char)t[fn - 1])) fn--;
                }
                int prefix = n >= s->streamed.len && memcmp(t, s->streamed.p ? s->streamed.p : "", s->streamed.len) == 0;
                if (prefix && fn < s->streamed.len && s->streamed.len - fn < 64) text_stream_drop_word(s->ts);
                if (prefix && n > s->streamed.len) {
                    if (fn > s->streamed.len) feed_text(fe, s, t + s->streamed.len, fn - s->streamed.len);
                    if (fb_put(&s->streamed, t + s->streamed.len, n - s->streamed.len)) fe->oom = 1;
                } else {
                    fe->st.duplicates++;
                }
                continue;
            }
            uint64_t h = key_hash(key, id ? id : fe->turn_id, t, n);
            if (!think && s->cut_blocks.len) {
                /* a complete line of the retry: matched with the cut block,
                 * as a streamed one is (cut_check), said only where new */
                seen_add(fe, h);
                pop_cut(s);
                s->streamed.len = 0;
                if (fb_put(&s->streamed, t, n)) fe->oom = 1;
                if (s->cut.len) cut_check(fe, s, 1);
                else feed_text(fe, s, t, n);
                s->streamed.len = 0;
                if (fb_put(&s->msg_blocks, t, n) || fb_put(&s->msg_blocks, "", 1)) fe->oom = 1;
                end_text_block(fe, s, t, n);
                continue;
            }
            /* the line after the stop of a block with a lost line fills the gap;
             * an earlier block's line (SDK order: every line comes after
             * message_stop), said already, neither fills it nor gives it up */
            if (s->gap && s->gap_closed && !think && !seen_has(fe, h) && !fills_gapped(s, t, n)) {
                if (gap_fill(fe, s, t, n, 0)) {
                    if (fb_put(&s->msg_blocks, t, n) || fb_put(&s->msg_blocks, "", 1)) fe->oom = 1;
                    seen_add(fe, h);
                    end_text_block(fe, s, t, n);
                    continue;
                }
                gap_give_up(fe, s);
            }
            /* a block continuing a sentence that the block before it, fed just
             * now, left open (cited spans) is that sentence's next part even
             * when the same words came before in the message ("Use " "Python"
             * " for scripts and " "Python" ...): not a repeated line */
            if (seen_has(fe, h) && !(s->cite_run && !think && h != s->cite_last && seam_continues(s, t, n))) {
                fe->st.duplicates++;
                continue;
            }
            seen_add(fe, h);
            /* the block whose gap was never filled: all of it was said but the lost words */
            if (!think && fills_gapped(s, t, n)) { fe->st.duplicates++; continue; }
            /* Partial mode, the line after its block's stop (the order the SDK
             * documents) with deltas lost: only what was not streamed is new. */
            size_t done = think ? 0 : streamed_prefix(s, t, n);
            if (done) {
                fe->st.duplicates++;
                grow_block(fe, s, t, n, done);
            }
            /* said as it streamed, but for deltas that never came: not again */
            if (!done && !think && streamed_with_gap(s, t, n)) { fe->st.duplicates++; continue; }
            /* An interrupted turn's text ("aborted":true) stops mid-word: the
             * half word ("refactor the par") is not spoken. A text ending in
             * a space or punctuation stopped between words and is kept; only
             * the line's last block was cut. */
            size_t fn = n;
            if (aborted && b + 1 == nb && fn > done && isalnum((unsigned char)t[fn - 1])) {
                while (fn > done && !isspace((unsigned char)t[fn - 1])) fn--;
                while (fn > done && isspace((unsigned char)t[fn - 1])) fn--;
            }
            feed_text(fe, s, t + done, fn - done);
            if (think) end_block(fe, s);
            else {
                end_text_block(fe, s, t, n);
                s->cite_run = s->cont != 0;
                s->cite_last = h;
                /* the line says its message hit the output token limit (a
                 * transcript, some CLI versions): the next message goes on */
                const char *sr = jstr(msg, "stop_reason");
                if (s->cont && b + 1 == nb && !parent && sr && strcmp(sr, "max_tokens") == 0)
                    s->cont = CONT_TOKEN_LIMIT;
            }
        } else if (strcmp(bt, "tool_use") == 0 || strcmp(bt, "server_tool_use") == 0) {
            const char *nm = jstr(blk, "name");
            if (nm && strcmp(nm, "StructuredOutput") == 0) {
                /* the answer as JSON for a program: never read out */
                if (!parent) fe->turn_structured = 1;
                continue;
            }
            maybe_announce(fe, s, jstr(blk, "id"), nm, json_object_get(blk, "input"));
        }
    }
}

/* A block's content_block_stop (or message_stop for a block whose stop
 * was lost: a line cut short). */
static void block_stop(ingest_frontend *fe, source *s) {
    /* nothing streamed after the lost line (the lost line was the block's
     * complete line, a long one cut short, or its last delta): nothing is
     * held, and the block ends now as usual (a late complete line adds
     * only the rest); waiting would hold its last words back until the
     * next event, which may come only after a long tool run */
    if (s->gap && s->streamed.len == s->gap_at) s->gap = 0;
    if (s->open_kind == BLK_TEXT && s->gap) {
        /* a lost line and no complete line yet: it may follow the stop */
        s->gap_closed = 1;
        s->gap_stop_ns = fe->cur_arrival;
        s->last_line = fe->cur_line;
        s->open_kind = BLK_NONE;
        return;
    }
    if (s->open_kind == BLK_TEXT) cut_check(fe, s, 1);
    if (s->open_kind == BLK_TEXT || s->open_kind == BLK_THINK) {
        s->last_line = fe->cur_line;
        release_hold(fe, s, 1);
        if (s->open_kind == BLK_TEXT && (fb_put(&s->msg_blocks, s->streamed.p ? s->streamed.p : "", s->streamed.len) ||
                                         fb_put(&s->msg_blocks, "", 1)))
            fe->oom = 1;
        if (s->open_kind == BLK_TEXT) end_text_block(fe, s, s->streamed.p ? s->streamed.p : "", s->streamed.len);
        else end_block(fe, s);
        seen_add(fe, key_hash(s->open_kind == BLK_TEXT ? "text" : "thinking",
                              s->msg_id[0] ? s->msg_id : fe->turn_id,
                              s->streamed.p ? s->streamed.p : "", s->streamed.len));
    } else if (s->open_kind == BLK_TOOL && fe->p.announce_tools) {
        /* the complete assistant line normally announced it; if not, use the streamed input */
        json_t *in = json_loadb(s->tool_json.p ? s->tool_json.p : "{}", s->tool_json.len ? s->tool_json.len : 2,
                                JSON_DECODE_INT_AS_REAL, NULL);
        maybe_announce(fe, s, s->tool_id[0] ? s->tool_id : NULL, s->tool_name, in);
        json_decref(in);
    }
    s->open_kind = BLK_NONE;
}

static void on_event(ingest_frontend *fe, const json_t *root) {
    fe->st.stream_events++;
    const char *parent = jstr(root, "parent_tool_use_id");
    if (parent && !fe->p.speak_subagents) { fe->st.subagent_skipped++; return; }
    const json_t *ev = json_object_get(root, "event");
    const char *et = json_is_object(ev) ? jstr(ev, "type") : NULL;
    if (!et) { missing(fe, "stream_event without an event type"); return; }
    source *s = source_get(fe, parent);
    if (!s) return;
    /* a pending surrogate half joins only the next delta of its block */
    if (strcmp(et, "content_block_delta") != 0 && strcmp(et, "ping") != 0) s->pend_high = 0;
    if (strcmp(et, "content_block_delta") == 0) {
        const json_t *d = json_object_get(ev, "delta");
        const char *dt = json_is_object(d) ? jstr(d, "type") : NULL;
        if (!dt) { missing(fe, "content_block_delta without a delta type"); return; }
        if (strcmp(dt, "text_delta") == 0 || (strcmp(dt, "thinking_delta") == 0 && fe->p.speak_thinking)) {
            int think = dt[1] == 'h';
            const char *key = think ? "thinking" : "text";
            const char *t = jstr(d, key);
            if (!t) { missing(fe, "text_delta without text"); return; }
            size_t n = jstrlen(d, key);
            int kind = think ? BLK_THINK : BLK_TEXT;
            if (s->open_kind != kind) {   /* start was lost */
                s->pend_high = 0;
                gap_give_up(fe, s);
                if (s->msg_done) {   /* and the message's start: as at content_block_start */
                    set_msg(fe, s, NULL);
                    s->msg_done = 0;
                }
                s->open_kind = kind;
                s->streamed.len = 0;
                s->holding = 0;
                if (s->lost_between && !think) {
                    /* and a line lost before this delta (the start, or the
                     * first deltas too): held for the complete line, as after
                     * a loss inside the block */
                    s->gap = 1;
                    s->gap_closed = 0;
                    s->gap_at = s->loss_at = 0;
                    s->nlosses = 0;
                }
            }
            s->lost_between = 0;
            /* A UTF-16 surrogate pair split across two deltas (a writer that
             * cuts a string between its halves): each line had a lone half,
             * replaced by U+FFFD (parse_json). The high half at this delta's
             * end waits; the low half at the next delta's start completes the
             * character. One never completed is dropped. */
            const json_t *ix = json_object_get(ev, "index");
            double idx = json_is_number(ix) ? json_number_value(ix) : -1;
            unsigned high = s->pend_high && s->pend_index == idx ? s->pend_high : 0;
            s->pend_high = 0;
            if (high && fe->fix.sur_head && n >= 3 && memcmp(t, "\xEF\xBF\xBD", 3) == 0) {
                uint32_t cp = 0x10000 + ((high - 0xD800) << 10) + (fe->fix.sur_head - 0xDC00);
                char u[4] = {(char)(0xF0 | cp >> 18), (char)(0x80 | (cp >> 12 & 0x3F)), (char)(0x80 | (cp >> 6 & 0x3F)),
                             (char)(0x80 | (cp & 0x3F))};
                fe->pair.len = 0;
                if (fb_put(&fe->pair, u, 4) || fb_put(&fe->pair, t + 3, n - 3)) {
                    fe->oom = 1;
                    return;
                }
                t = fe->pair.p;
                n = fe->pair.len;
            }
            if (fe->fix.sur_tail && n >= 3 && memcmp(t + n - 3, "\xEF\xBF\xBD", 3) == 0) {
                s->pend_high = fe->fix.sur_tail;
                s->pend_index = idx;
                n -= 3;
                if (n == 0) return;
            }
            if (fb_put(&s->streamed, t, n)) fe->oom = 1;
            if (s->cut.len && !think) {
                cut_check(fe, s, 0);
            } else if (s->holding) {
                /* diverged, or the next part of an open sentence: say all of it now */
                if (!repeats_block(s, 0) || hold_continues(s)) release_hold(fe, s, 0);
            } else if (s->gap && !think) {
                /* held after a lost line, for the complete line to fill the gap */
            } else {
                feed_text(fe, s, t, n);
            }
        } else {
            s->pend_high = 0;   /* another kind of delta: not the block of the pending half */
            if (strcmp(dt, "input_json_delta") == 0 && s->open_kind == BLK_TOOL) {
                const char *t = jstr(d, "partial_json");
                size_t n = jstrlen(d, "partial_json");
                if (t && s->tool_json.len + n <= MAX_TOOL_JSON && fb_put(&s->tool_json, t, n)) fe->oom = 1;
            }
        }
        return;
    }
    if (strcmp(et, "message_start") == 0) {
        const json_t *m = json_object_get(ev, "message");
        /* a text block still open: its stream was cut and the CLI retries */
        keep_cut(fe, s);
        s->lost_between = 0;
        set_msg(fe, s, json_is_object(m) ? jstr(m, "id") : NULL);
        s->msg_streamed = 1;
        s->open_kind = BLK_NONE;
        s->msg_done = 0;   /* also when the id is the same (set_msg keeps the state then) */
        s->last_index = -1;
    } else if (strcmp(et, "content_block_start") == 0) {
        const json_t *cb = json_object_get(ev, "content_block");
        const char *t = json_is_object(cb) ? jstr(cb, "type") : NULL;
        if (!t) { missing(fe, "content_block_start without a block type"); return; }
        s->lost_between = 0;   /* a lost line before it was no part of this block */
        /* a block still open lost its content_block_stop: it stops here */
        if (s->open_kind != BLK_NONE) block_stop(fe, s);
        gap_give_up(fe, s);   /* the next block: the last one's line did not come */
        release_hold(fe, s, 1);
        /* a block after message_stop: the next message's start was lost (a
         * line cut short); its id is not known until a line names it (its
         * complete line was taken for another message and said again) */
        /* so does one whose index is not above the last one's (the index
         * restarts at 0 with each message; its message_stop was lost too) */
        const json_t *ix = json_object_get(ev, "index");
        double idx = json_is_number(ix) ? json_number_value(ix) : -1;
        if (s->msg_done || (idx >= 0 && s->last_index >= 0 && idx <= s->last_index)) {
            set_msg(fe, s, NULL);
            s->msg_done = 0;   /* set_msg keeps it when the id was already unknown */
        }
        s->last_index = idx;
        if (s->open_kind == BLK_TEXT || s->open_kind == BLK_THINK || strcmp(t, "text") != 0) end_block(fe, s);
        s->streamed.len = 0;
        s->tool_json.len = 0;
        if (strcmp(t, "text") == 0) {
            s->open_kind = BLK_TEXT;
            if (s->cut_blocks.len) pop_cut(s);   /* a retry's block: matched with the cut one */
            /* a later text block of the same message waits while it repeats an
             * earlier one; a retry's block matched with a cut one does not: the
             * cut decides what of it is new (cut_check) */
            s->holding = s->msg_blocks.len > 0 && !s->cut.len;
        } else if (strcmp(t, "tool_use") == 0 && jstr(cb, "name") && strcmp(jstr(cb, "name"), "StructuredOutput") == 0) {
            s->open_kind = BLK_OTHER;
            if (!parent) fe->turn_structured = 1;
        }
        else if (strcmp(t, "thinking") == 0 || strcmp(t, "redacted_thinking") == 0) s->open_kind = BLK_THINK;
        else if (strcmp(t, "tool_use") == 0 || strcmp(t, "server_tool_use") == 0) {
            s->open_kind = BLK_TOOL;
            snprintf(s->tool_name, sizeof s->tool_name, "%s", jstr(cb, "name") ? jstr(cb, "name") : "");
            snprintf(s->tool_id, sizeof s->tool_id, "%s", jstr(cb, "id") ? jstr(cb, "id") : "");
        } else s->open_kind = BLK_OTHER;
    } else if (strcmp(et, "content_block_stop") == 0) {
        block_stop(fe, s);
    } else if (strcmp(et, "message_stop") == 0) {
        /* a block still open lost its content_block_stop (a line cut
         * short): it stops here, so that its complete line, which may
         * follow (SDK order), fills a gap or is known as said */
        if (s->open_kind != BLK_NONE) block_stop(fe, s);
        s->msg_done = 1;
        s->last_line = fe->cur_line;
        release_hold(fe, s, 1);
        if (s->stop_max_tokens && s->cont && !parent) {
            s->cont = CONT_TOKEN_LIMIT;   /* held for the next message, which continues it */
            s->cont_ns = fe->cur_arrival;
        } else if (!s->gap_closed) {
            end_block(fe, s);   /* else the complete line may still come */
        }
        s->open_kind = BLK_NONE;
    } else if (strcmp(et, "error") == 0) {
        const json_t *e = json_object_get(ev, "error");
        keep_cut(fe, s);
        if (!parent) fe->turn_error = 1;
        notice(fe, s, TEXT_NOTICE_ERROR, error_phrase(json_is_object(e) ? jstr(e, "type") : NULL), NULL);
    } else if (strcmp(et, "message_delta") == 0) {
        const json_t *d = json_object_get(ev, "delta");
        const char *why = json_is_object(d) ? jstr(d, "stop_reason") : NULL;
        if (why && strcmp(why, "max_tokens") == 0) s->stop_max_tokens = 1;
    } else if (strcmp(et, "ping") != 0) {
        unknown_type(fe, "stream event type", et);
    }
}

static void new_turn(ingest_frontend *fe) {
    fe->turn++;
    snprintf(fe->turn_id, sizeof fe->turn_id, "turn-%llu", (unsigned long long)fe->turn);
    fe->turn_had_text = 0;
    fe->turn_error = 0;
    fe->turn_active = 0;
    fe->turn_structured = 0;
    fe->turn_interrupted = 0;
    fe->turn_lost = 0;
    fe->init_line = 0;
}

/* A turn had output but no result line (a killed CLI, a cut capture) and
 * the next turn's init came at line `at`: that turn's state (text said,
 * error, structured output) must not decide the next turn's fallback. A
 * result still to come is kept from repeating text by already_spoken. */
static void turn_without_result(ingest_frontend *fe, uint64_t at) {
    for (int i = 0; i < fe->nsrc; i++) {
        source *s = fe->src[i];
        drop_cut(fe, s);   /* no retry crosses a turn */
        end_block(fe, s);
        /* a block the killed CLI left open is over: the next turn's message
         * is no retry of it */
        s->open_kind = BLK_NONE;
        s->holding = 0;
    }
    uint64_t cur = fe->cur_line;
    fe->cur_line = at;   /* the warning names the init */
    warnf(fe, "the previous turn ended without a result line; a new turn starts here");
    fe->cur_line = cur;
    new_turn(fe);
}

/* A main-agent line after an init that came mid-message (init_line): the
 * same message going on means a background task finished and the main
 * agent went on (that init ended nothing); another message means the CLI
 * was killed mid-message and a new turn began at the init. */
static void settle_init(ingest_frontend *fe, const char *msg_id, int new_msg) {
    if (!fe->init_line) return;
    uint64_t at = fe->init_line;
    fe->init_line = 0;
    const source *m = fe->src[0];
    if (new_msg || (msg_id && m->msg_id[0] && strcmp(msg_id, m->msg_id) != 0)) turn_without_result(fe, at);
}

/* A result text that is one JSON object or array (structured output from a
 * CLI that does not send structured_output separately). */
static int looks_like_json(const char *r) {
    if (!r) return 0;
    while (*r == ' ' || *r == '\n' || *r == '\t' || *r == '\r') r++;
    if (*r != '{' && *r != '[') return 0;
    json_fix f = {0};
    json_error_t je;
    json_t *j = parse_json(&f, r, strlen(r), &je);   /* big numbers are still JSON */
    int ok = j && (json_is_object(j) || json_is_array(j));
    json_decref(j);
    json_fix_free(&f);
    return ok;
}

static void on_result(ingest_frontend *fe, const json_t *root) {
    fe->st.results++;
    source *s = source_get(fe, NULL);   /* the main agent (never evicted) */
    if (!s) return;
    const char *sub = jstr(root, "subtype");
    const char *r = jstr(root, "result");
    size_t rn = jstrlen(root, "result");
    /* the usage limit is an error whatever is_error says (a version writing
     * it false said nothing at all) */
    int limit = is_usage_limit(r, rn);
    int is_err = json_is_true(json_object_get(root, "is_error")) || (sub && strncmp(sub, "error", 5) == 0) || limit;
    json_t *so = json_object_get(root, "structured_output");
    int structured = fe->turn_structured || (so && !json_is_null(so)) || looks_like_json(r);
    /* The last block lost a line and its complete line never came: the
     * result is that line (before end_block gives the gap up) */
    int taken = !is_err && !structured && r && result_fills_gap(fe, s, r, rn);
    if (taken) fe->st.duplicates++;
    else if (!is_err && !structured && r && fe->turn_had_text && fe->turn_lost) {
        /* a turn that lost a line that may have been its last assistant
         * line: the result is said (below) unless the last block said it;
         * when it continues that block, only the rest is new, said now as
         * the block's end (a sentence it left open goes on) */
        gap_give_up(fe, s);
        size_t done = result_said(s, r, rn);
        if (done) {
            taken = 1;
            fe->st.duplicates++;
            if (done < rn) {
                /* a block held open (it stopped mid-sentence) goes on: no seam
                 * to judge; one already ended (message_stop flushed it) is
                 * followed by the rest, from the start of a word cut at its
                 * end ("The quick bro" + "brown fox.", not "wn fox.") */
                if (s->cont) s->cont = 0;
                else
                    while (done > 0 && isalnum((unsigned char)r[done - 1]) && isalnum((unsigned char)r[done])) done--;
                feed_text(fe, s, r + done, rn - done);
            }
        }
    }
    for (int i = 0; i < fe->nsrc; i++) {
        drop_cut(fe, fe->src[i]);   /* no retry crosses a turn */
        end_block(fe, fe->src[i]);
        fe->src[i]->lost_between = 0;
    }
    /* A turn the user interrupted ends in an error result
     * (error_during_execution, terminal_reason "aborted_streaming"): they
     * stopped it themselves, so no error is announced. A result that names
     * another cause (error_max_turns, ...) is still said. */
    const char *tr = jstr(root, "terminal_reason");
    int interrupted = (tr && strncmp(tr, "aborted", 7) == 0) ||
                      (fe->turn_interrupted && sub && strcmp(sub, "error_during_execution") == 0);
    if (is_err && interrupted) {
        fe->st.interrupted++;
    } else if (is_err) {
        if (!fe->turn_error) {
            set_msg(fe, s, NULL);
            /* what the CLI says of the failure, most specific first: the
             * usage limit, the API's HTTP status, the subtype, the reason */
            const char *why = sub && strcmp(sub, "success") != 0 ? sub : jstr(root, "terminal_reason");
            const json_t *hs = json_object_get(root, "api_error_status");
            double status = json_is_number(hs) ? json_number_value(hs) : json_is_string(hs) ? atof(json_string_value(hs)) : 0;
            text_phrase_id id = limit ? TEXT_PH_ERR_RATE_LIMIT : status_phrase(status);
            if (id == TEXT_PH__COUNT) {
                id = error_phrase(why);
                if (id == TEXT_PH_ERR_GENERIC && sub && strcmp(sub, "success") == 0) id = TEXT_PH_ERR_API;
            }
            notice(fe, s, TEXT_NOTICE_ERROR, id, NULL);
        }
    } else if (!taken && (!fe->turn_had_text || fe->turn_lost)) {
        /* nothing was said this turn (or a line that may have held the
         * turn's last text was lost): the result text is the answer, unless
         * it is structured output (JSON for a program) or text this session
         * already spoke (a background task's turn repeats the last answer;
         * the turn's text spoken before the lost line) */
        if (structured) {
            fe->st.structured_skipped++;
        } else if (r && already_spoken(fe, r, rn)) {
            fe->st.duplicates++;
        } else if (r && r[0] && !ingest_is_placeholder(r, rn)) {
            /* (the placeholder is the result of a turn whose last message
             * had no text: silent here as in its assistant line) */
            set_msg(fe, s, NULL);
            feed_text(fe, s, r, rn);
            end_block(fe, s);
        }
    }
    new_turn(fe);
}

/* The text of a user line's first text block (or its string content). */
static const char *user_text(const json_t *root) {
    const json_t *msg = json_object_get(root, "message");
    const json_t *c = json_is_object(msg) ? json_object_get(msg, "content") : NULL;
    if (json_is_string(c)) return json_string_value(c);
    size_t i;
    json_t *b;
    if (json_is_array(c))
        json_array_foreach(c, i, b) {
            const char *bt = jstr(b, "type");
            if (bt && strcmp(bt, "text") == 0) return jstr(b, "text");
        }
    return NULL;
}

/* Claude Code's own prompts that start a turn of its own: a finished
 * background task's notification (origin.kind "task-notification",
 * claude-stream-json.md §6). It is stored with isMeta in some versions, and
 * was then no turn boundary: the reply before it was said again with the
 * task's turn. */
static int is_task_notification(const json_t *root) {
    const json_t *o = json_object_get(root, "origin");
    const char *k = json_is_object(o) ? jstr(o, "kind") : NULL;
    return k && strcmp(k, "task-notification") == 0;
}

static int is_prompt_obj(const json_t *root) {
    const char *type = jstr(root, "type");
    if (!type || strcmp(type, "user") != 0) return 0;
    if (parent_of(root)) return 0;   /* a subagent's prompt, not the user's */
    if (is_task_notification(root)) return 1;
    if (json_is_true(json_object_get(root, "isMeta")) ||
        json_is_true(json_object_get(root, "isCompactSummary")) || json_is_true(json_object_get(root, "isSynthetic")))
        return 0;
    const json_t *msg = json_object_get(root, "message");
    const json_t *c = json_is_object(msg) ? json_object_get(msg, "content") : NULL;
    const char *text = NULL;
    int attached = 0;
    if (json_is_string(c)) text = json_string_value(c);
    else if (json_is_array(c)) {
        size_t i;
        json_t *b;
        json_array_foreach(c, i, b) {
            const char *bt = jstr(b, "type");
            if (bt && strcmp(bt, "tool_result") == 0) return 0;
            if (bt && strcmp(bt, "text") == 0 && !text) text = jstr(b, "text");
            /* a pasted screenshot or file sent without words is a prompt too
             * (else the turn before it was said again as part of this one) */
            if (bt && (strcmp(bt, "image") == 0 || strcmp(bt, "document") == 0)) attached = 1;
        }
    }
    if (!text) return attached;
    /* Claude Code's own user lines, not the user's (claude-stream-json.md
     * §5): an interrupt, a local command's output, a deferred tool loaded;
     * the prompt it adds after a reply cut by the output token limit (the
     * next message continues the same reply); a slash command or a `!`
     * shell line and their output, which Claude does not answer (the reply
     * before them is still the last one) */
    static const char *const own[] = {"[Request interrupted", "<local-command-", "Output token limit hit",
                                      "<command-name>", "<command-message>", "<bash-input>", "<bash-stdout>",
                                      "<bash-stderr>", NULL};
    for (int i = 0; own[i]; i++)
        if (strncmp(text, own[i], strlen(own[i])) == 0) return 0;
    return strcmp(text, "Tool loaded.") != 0;
}

/* A slash command the user typed: Claude Code's "<command-message>x is
 * running…</command-message>\n<command-name>/x</command-name>..." user line
 * (either tag first). A prompt command or a skill is then expanded in an
 * isMeta line and answered; a local command (/cost, /model, /compact) is
 * answered by its <local-command-stdout> alone. */
static int is_command_obj(const json_t *root) {
    const char *type = jstr(root, "type");
    if (!type || strcmp(type, "user") != 0 || parent_of(root)) return 0;
    if (json_is_true(json_object_get(root, "isMeta")) || json_is_true(json_object_get(root, "isCompactSummary")))
        return 0;
    const char *t = user_text(root);
    if (!t) return 0;
    t += lead_ws(t, strlen(t));
    return strncmp(t, "<command-name>", 14) == 0 || strncmp(t, "<command-message>", 17) == 0;
}

/* A main-agent assistant line that answers: the model's (or an API error
 * in its place), not a <synthetic> message (a local command's output, "No
 * response requested."). */
static int is_reply_obj(const json_t *root) {
    const char *type = jstr(root, "type");
    if (!type || strcmp(type, "assistant") != 0 || parent_of(root)) return 0;
    const json_t *msg = json_object_get(root, "message");
    const char *model = json_is_object(msg) ? jstr(msg, "model") : NULL;
    if (!model || strcmp(model, "<synthetic>") != 0) return 1;
    return json_is_true(json_object_get(root, "isApiErrorMessage")) ||
           json_is_true(json_object_get(root, "is_api_error_message")) || jstr(root, "error");
}

static const char *const ignored_types[] = {
    "system", "user", "rate_limit_event", "control_request", "control_response",
    "control_cancel_request", "keep_alive", "tool_progress", "auth_status", "summary",
    "file-history-snapshot", "attachment", "queue-operation", "progress", "subagent_token_usage",
    "active_goal",   /* 2.1.220: the session's goal, null when none */
    /* a transcript's session metadata (its title, the last prompt for the resume list) */
    "custom-title", "ai-title", "last-prompt", NULL};

/* A file of the other format speaks wrongly (a transcript given to --input
 * speaks every turn; a stream-json capture given to --transcript has no
 * prompts to find the last turn by): said once, with the flag to use. */
static void check_format(ingest_frontend *fe, const json_t *root, const char *type) {
    if (fe->format_warned) return;
    if (fe->p.transcript) {
        if (strcmp(type, "stream_event") != 0 && strcmp(type, "result") != 0) return;
        warnf(fe, "a \"%s\" line: this looks like stream-json output (claude -p --output-format stream-json), "
                  "not a transcript; read it with --input FILE (or on stdin)", type);
    } else {
        /* parentUuid (null on a session's first line) is the transcript's
         * own: some wrappers write sessionId for session_id in stream-json */
        if (!json_object_get(root, "parentUuid") || json_object_get(root, "session_id")) return;
        warnf(fe, "camelCase parentUuid/sessionId: this looks like a Claude Code transcript (~/.claude/projects/...), "
                  "not stream-json; every turn in it is spoken; --transcript FILE speaks its last turn");
    }
    fe->format_warned = 1;
}

static void dispatch(ingest_frontend *fe, const json_t *root, const char *type) {
    check_format(fe, root, type);
    if (strcmp(type, "assistant") == 0) {
        if (fe->p.transcript && fe->tr_command && is_reply_obj(root)) {
            /* Claude answers the slash command (a prompt command, a skill):
             * its turn, as ingest_transcript_last_turn finds it */
            fe->tr_command = 0;
            for (int i = 0; i < fe->nsrc; i++) end_block(fe, fe->src[i]);
            new_turn(fe);
        }
        if (!parent_of(root)) {
            const json_t *msg = json_object_get(root, "message");
            settle_init(fe, json_is_object(msg) ? jstr(msg, "id") : NULL, 0);
            fe->turn_active = 1;
        }
        on_assistant(fe, root);
        return;
    }
    if (!fe->p.transcript && fe->turn_active && strcmp(type, "system") == 0 && jstr(root, "subtype") &&
        strcmp(jstr(root, "subtype"), "init") == 0) {
        /* An init starts every turn; one after a turn that had output but no
         * result line starts the next turn here. But a second init also
         * comes when a background task finishes and the main agent goes on
         * (claude-stream-json.md §3), perhaps while a message streams: that
         * ended neither the block (one sentence was said as two pieces) nor
         * the turn, so while a main-agent message is unfinished the next
         * main-agent line decides (settle_init). */
        const source *m = fe->src[0];   /* the main agent (never evicted) */
        if (m->open_kind != BLK_NONE || (m->msg_streamed && !m->msg_done)) {
            if (!fe->init_line) fe->init_line = fe->cur_line;
            return;
        }
        turn_without_result(fe, fe->cur_line);
        return;
    }
    if (strcmp(type, "user") == 0 && !parent_of(root)) {
        const char *ut = user_text(root);
        if (ut && strncmp(ut, "[Request interrupted", 20) == 0) fe->turn_interrupted = 1;
        source *m = ut && strncmp(ut, "Output token limit hit", 22) == 0 ? source_get(fe, NULL) : NULL;
        if (m && m->cont) {   /* the reply cut by the limit goes on in the next message */
            m->cont = CONT_TOKEN_LIMIT;
            m->cont_ns = fe->cur_arrival;
        }
    }
    if (fe->p.transcript) {
        if (strcmp(type, "user") == 0 && is_prompt_obj(root)) {
            fe->tr_command = 0;
            for (int i = 0; i < fe->nsrc; i++) end_block(fe, fe->src[i]);
            new_turn(fe);
        } else if (strcmp(type, "user") == 0 && is_command_obj(root)) {
            fe->tr_command = 1;
        }
    } else if (strcmp(type, "stream_event") == 0) {
        if (!jstr(root, "parent_tool_use_id")) {
            const json_t *ev = json_object_get(root, "event");
            const char *et = json_is_object(ev) ? jstr(ev, "type") : NULL;
            settle_init(fe, NULL, et && strcmp(et, "message_start") == 0);
            fe->turn_active = 1;
        }
        on_event(fe, root);
        return;
    } else if (strcmp(type, "result") == 0) {
        on_result(fe, root);
        return;
    }
    for (int i = 0; ignored_types[i]; i++)
        if (strcmp(type, ignored_types[i]) == 0) return;
    if (fe->p.transcript && (strcmp(type, "result") == 0 || strcmp(type, "stream_event") == 0)) return;
    /* A transcript's record format is internal and gains metadata lines
     * with new CLI versions (claude-stream-json.md §7): counted, not warned
     * about; they are not the model speaking. */
    if (fe->p.transcript) { fe->st.unknown_types++; return; }
    unknown_type(fe, "line type", type);
}

/* ---- public API ---------------------------------------------------------------------- */
stts_status ingest_frontend_new(const ingest_params *p, ingest_sentence_fn fn, ingest_warn_fn warn, void *user,
                                ingest_frontend **out, stts_error *err) {
    if (!out || !fn) return stts_error_set(err, STTS_ERR_INVALID_ARG, "ingest_frontend_new: out and fn are required");
    *out = NULL;
    ingest_frontend *fe = calloc(1, sizeof *fe);
    if (!fe) return stts_error_set(err, STTS_ERR_NOMEM, "ingest_frontend_new: out of memory");
    if (p) fe->p = *p;
    else ingest_default_params(&fe->p);
    const char *lang = fe->p.text.notice_lang ? fe->p.text.notice_lang : "eng_Latn";
    if (strlen(lang) >= sizeof fe->lang) {
        free(fe);
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "notice language '%.40s' is not an NLLB code (like eng_Latn)", lang);
    }
    strcpy(fe->lang, lang);
    fe->p.text.notice_lang = fe->lang;
    fe->fn = fn;
    fe->warn = warn;
    fe->user = user;
    new_turn(fe);
    if (!source_get(fe, NULL)) {
        ingest_frontend_free(fe);
        return stts_error_set(err, STTS_ERR_NOMEM, "ingest_frontend_new: out of memory");
    }
    *out = fe;
    return STTS_OK;
}

void ingest_frontend_free(ingest_frontend *fe) {
    if (!fe) return;
    for (int i = 0; i < fe->nsrc; i++) source_free(fe->src[i]);
    json_fix_free(&fe->fix);
    free(fe->seen);
    free(fe->seen_tab);
    free(fe->spoken.p);
    free(fe->bounds);
    free(fe->norm.p);
    free(fe->pair.p);
    free(fe->frag.p);
    free(fe);
}

/* ---- parsing untrusted JSON -------------------------------------------------------
 * Every line (and the hook payload, and a transcript's prompt check) goes
 * through parse_json: one jansson parse, and only when jansson rejects the
 * line for one of the reasons below, a repaired copy is parsed again, so a
 * writer's small fault never costs a whole line of text:
 *   - invalid UTF-8 bytes -> U+FFFD (the text stage drops it);
 *   - an unpaired UTF-16 surrogate escape (an emoji cut in half) -> \ufffd;
 *   - a number too large for a double (1e999, a 400-digit integer) -> 0.
 * Integers are read as reals (JSON_DECODE_INT_AS_REAL): jansson rejects an
 * integer beyond 64 bits, and one in a tool input or structured output must
 * not cost the line's text; nothing here reads a number as an id or count. */
#define JSON_FLAGS (JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL)

/* A UTF-8 byte order mark (a file saved by a Windows editor or PowerShell's
 * redirection, or several such files concatenated) is not part of the JSON:
 * jansson rejects it, which cost the whole line. */
static void skip_bom(const char **line, size_t *len) {
    if (*len >= 3 && memcmp(*line, "\xEF\xBB\xBF", 3) == 0) {
        *line += 3;
        *len -= 3;
    }
}

static void json_fix_free(json_fix *f) {
    free(f->a.p);
    free(f->b.p);
}

/* Replaces each \u escape of an unpaired UTF-16 surrogate with \ufffd into
 * out; returns how many were replaced. An escape counts only when an odd
 * number of backslashes precede it ("\\\\uD83D" is text). */
static int hex4(const char *p, unsigned *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
        if (d < 0) return 0;
        *v = *v * 16 + (unsigned)d;
    }
    return 1;
}

static int repair_surrogates(json_fix *f, fbuf *out, const char *line, size_t len, int *oom) {
    out->len = 0;
    int fixed = 0;
    size_t i = 0, bs = 0;
    f->sur_head = f->sur_tail = 0;
    while (i < len) {
        unsigned v, w;
        if (line[i] == 'u' && bs % 2 == 1 && i + 4 < len && hex4(line + i + 1, &v) && v >= 0xD800 && v <= 0xDFFF) {
            int paired = v <= 0xDBFF && i + 10 < len && line[i + 5] == '\\' &&
                         line[i + 6] == 'u' && hex4(line + i + 7, &w) && w >= 0xDC00 && w <= 0xDFFF;
            if (paired) {
                if (fb_put(out, line + i, 11)) { *oom = 1; return fixed; }
                i += 11;
            } else {
                /* at a string's edge, the other half may be at the next
                 * delta's (on_event): a low one right after an opening
                 * quote (a closing one is never followed by a backslash),
                 * a high one right before the closing quote */
                size_t q = i - 1;   /* its backslash */
                if (!fixed && v >= 0xDC00 && q > 0 && line[q - 1] == '"') {
                    size_t k = 0;
                    while (k + 1 < q && line[q - 2 - k] == '\\') k++;
                    if (k % 2 == 0) f->sur_head = v;
                }
                f->sur_tail = v <= 0xDBFF && i + 5 < len && line[i + 5] == '"' ? v : 0;
                if (fb_put(out, "ufffd", 5)) { *oom = 1; return fixed; }
                i += 5;
                fixed++;
            }
            bs = 0;
            continue;
        }
        bs = line[i] == '\\' ? bs + 1 : 0;
        if (fb_put(out, line + i, 1)) { *oom = 1; return fixed; }
        i++;
    }
    return fixed;
}

/* Replaces each invalid UTF-8 byte with U+FFFD into out; returns the offset
 * of the first bad byte. */
static size_t repair_utf8(fbuf *out, const char *line, size_t len, int *oom) {
    out->len = 0;
    size_t first = (size_t)-1, i = 0;
    while (i < len) {
        size_t ok = stts_utf8_valid_prefix((const unsigned char *)line + i, len - i);
        if (fb_put(out, line + i, ok)) { *oom = 1; return first; }
        i += ok;
        if (i < len) {
            if (first == (size_t)-1) first = i;
            if (fb_put(out, "\xEF\xBF\xBD", 3)) { *oom = 1; return first; }
            i++;
        }
    }
    return first;
}

/* Replaces each number token (outside strings) that overflows a double with
 * 0 into out; returns how many. Strings are skipped with their escapes. */
static int repair_numbers(fbuf *out, const char *line, size_t len, int *oom) {
    out->len = 0;
    int fixed = 0, in_str = 0;
    size_t i = 0;
    while (i < len) {
        char c = line[i];
        if (in_str) {
            if (c == '\\' && i + 1 < len) {
                if (fb_put(out, line + i, 2)) { *oom = 1; return fixed; }
                i += 2;
                continue;
            }
            if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t e = i + 1;
            while (e < len && strchr("0123456789+-.eE", line[e]) && line[e]) e++;
            /* the longest finite double has 309 integer digits; a longer token or
             * a big exponent is out of range (checked without strtod's locale) */
            size_t digits = 0, exp_at = 0;
            for (size_t k = i; k < e; k++) {
                if (line[k] == 'e' || line[k] == 'E') { exp_at = k; break; }
                if (line[k] == '.') break;
                digits += line[k] >= '0' && line[k] <= '9';
            }
            long ex = 0;
            if (exp_at) {
                size_t k = exp_at + 1;
                int neg = k < e && line[k] == '-';
                if (k < e && (line[k] == '-' || line[k] == '+')) k++;
                for (; k < e && ex < 100000; k++) ex = ex * 10 + (line[k] - '0');
                if (neg) ex = -ex;
            }
            if ((long)digits + ex > 308) {
                if (fb_put(out, "0", 1)) { *oom = 1; return fixed; }
                fixed++;
                i = e;
                continue;
            }
            if (fb_put(out, line + i, e - i)) { *oom = 1; return fixed; }
            i = e;
            continue;
        }
        if (fb_put(out, line + i, 1)) { *oom = 1; return fixed; }
        i++;
    }
    return fixed;
}

/* Parses line, repairing it as above when jansson rejects it; NULL with je
 * set when it is not JSON even then (or f->oom). */
static json_t *parse_json(json_fix *f, const char *line, size_t len, json_error_t *je) {
    skip_bom(&line, &len);
    f->utf8_at = (size_t)-1;
    f->surrogates = f->numbers = 0;
    f->sur_head = f->sur_tail = 0;
    json_t *root = json_loadb(line, len, JSON_FLAGS, je);
    const char *cur = line;
    size_t cur_len = len;
    if (!root && json_error_code(je) == json_error_invalid_utf8) {
        f->utf8_at = repair_utf8(&f->a, cur, cur_len, &f->oom);
        if (f->oom) return NULL;
        cur = f->a.p;
        cur_len = f->a.len;
        root = json_loadb(cur, cur_len, JSON_FLAGS, je);
    }
    if (!root && strstr(je->text, "invalid Unicode")) {
        f->surrogates = repair_surrogates(f, &f->b, cur, cur_len, &f->oom);
        if (f->oom) return NULL;
        fbuf t = f->a;   /* the repaired copy is in b: keep it in a */
        f->a = f->b;
        f->b = t;
        cur = f->a.p;
        cur_len = f->a.len;
        if (f->surrogates) root = json_loadb(cur, cur_len, JSON_FLAGS, je);
    }
    if (!root && strstr(je->text, "overflow")) {
        f->numbers = repair_numbers(&f->b, cur, cur_len, &f->oom);
        if (f->oom) return NULL;
        if (f->numbers) root = json_loadb(f->b.p, f->b.len, JSON_FLAGS, je);
    }
    return root;
}

/* ---- large tool results: recognised without parsing -------------------------
 * Tool results (file contents, command output) are most of the bytes Claude
 * Code emits and are never spoken. Parsing them with jansson caps the front
 * end at jansson's speed, so a large line is first checked lexically: a line
 * that is one object ({...}) holding the members "type":"user" and
 * "type":"tool_result" is a tool-result message and needs nothing from us.
 * This is not a parser: it only looks for those tokens, and a quote counts
 * only when an even number of backslashes precede it (an escaped quote sits
 * inside a string). Any doubt falls back to the full parse, so malformed or
 * truncated lines still get their warning. */
#define FAST_SKIP_MIN_LINE 4096

static int quote_is_structural(const char *line, const char *q) {
    size_t bs = 0;
    while (q - bs > line && q[-(ptrdiff_t)bs - 1] == '\\') bs++;
    return bs % 2 == 0;
}

/* Does line contain the member "type" : "<value>" (any whitespace)? */
static int has_type_member(const char *line, size_t len, const char *value) {
    char needle[32];
    int nl = snprintf(needle, sizeof needle, "\"%s\"", value);
    const char *end = line + len, *p = line;
    while ((p = memmem(p, (size_t)(end - p), needle, (size_t)nl)) != NULL) {
        const char *q = p;
        p += nl;
        /* After a closing quote no letter can follow, so a structural quote
         * before the value's letters opens the value string. */
        if (!quote_is_structural(line, q) || !quote_is_structural(line, p - 1)) continue;
        const char *b = q - 1;
        while (b >= line && (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\n')) b--;
        if (b < line || *b != ':') continue;
        b--;
        while (b >= line && (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\n')) b--;
        if (b - 5 < line || memcmp(b - 5, "\"type\"", 6) != 0) continue;
        if (quote_is_structural(line, b) && quote_is_structural(line, b - 5)) return 1;
    }
    return 0;
}

static int is_large_tool_result(const char *line, size_t len) {
    if (len < FAST_SKIP_MIN_LINE) return 0;
    size_t a = 0, z = len;
    while (a < z && (line[a] == ' ' || line[a] == '\t')) a++;
    while (z > a && (line[z - 1] == ' ' || line[z - 1] == '\t' || line[z - 1] == '\r')) z--;
    if (z - a < 2 || line[a] != '{' || line[z - 1] != '}') return 0;
    return has_type_member(line, len, "tool_result") && has_type_member(line, len, "user");
}

/* Valid UTF-8 without control characters: words, not binary garbage. */
static int looks_like_text(const char *line, size_t len) {
    if (stts_utf8_valid_prefix((const unsigned char *)line, len) != len) return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)line[i] < 0x20 && line[i] != '\t' && line[i] != '\r') return 0;
    return 1;
}

/* ---- a line split in two ------------------------------------------------------
 * Claude Code 2.1.74 wrote an event (a rate_limit_event) into the middle of
 * another line when it came while that line was being written: the line's
 * start, the whole event and its '\n', then the rest of the line on a line
 * of its own (anthropics/claude-code#49640). Both halves fail to parse and
 * the text of the split line (often the whole answer) was lost. So a line
 * that fails to parse and starts with '{' is kept, with its warning held
 * back: a complete event ending it is taken off and handled, and when the
 * next line does not parse on its own either, the two are joined (the rest
 * of a line never starts with '{' unless it was split right before one; up
 * to 4 such rests are joined while the JSON is still incomplete). */
#define INJECTED_WINDOW 16384   /* an injected event is a few hundred bytes */
#define FRAG_MAX_JOINS 4

static int known_type(const char *type) {
    if (strcmp(type, "assistant") == 0 || strcmp(type, "stream_event") == 0 || strcmp(type, "result") == 0) return 1;
    for (int i = 0; ignored_types[i]; i++)
        if (strcmp(type, ignored_types[i]) == 0) return 1;
    return 0;
}

/* The offset of a complete top-level event (an object with a known "type")
 * that ends line after its start; len when there is none. The event is
 * handled here: it came before the rest of the line it was written into. */
static size_t take_injected(ingest_frontend *fe, const char *line, size_t len) {
    size_t z = len;
    while (z > 0 && (line[z - 1] == ' ' || line[z - 1] == '\t')) z--;
    if (z < 2 || line[z - 1] != '}') return len;
    size_t lo = z > INJECTED_WINDOW ? z - INJECTED_WINDOW : 1;
    int tries = 0;   /* an event nests a few objects deep: its own '{' is among the last few */
    for (size_t i = z - 1; i >= lo && tries < 16; i--) {
        if (line[i] != '{' || line[i + 1] != '"') continue;
        tries++;
        json_error_t je;
        json_t *ev = json_loadb(line + i, z - i, JSON_FLAGS, &je);
        const char *type = json_is_object(ev) ? jstr(ev, "type") : NULL;
        if (type && known_type(type)) {
            dispatch(fe, ev, type);
            json_decref(ev);
            return i;
        }
        json_decref(ev);
        if (ev) break;   /* a complete value that is no event: not an injection */
    }
    return len;
}

/* The held line was not continued: its warning is given now, under its number. */
static void frag_flush(ingest_frontend *fe) {
    if (!fe->frag_held) return;
    uint64_t cur = fe->cur_line;
    fe->cur_line = fe->frag_line;
    fe->st.bad_lines += 1 + (uint64_t)fe->frag_joins;
    if (fe->frag_joins == 1)
        warnf(fe, "%s; line %llu did not complete it and is skipped too", fe->frag_err,
              (unsigned long long)fe->frag_line + 1);
    else if (fe->frag_joins)
        warnf(fe, "%s; lines %llu to %llu did not complete it and are skipped too", fe->frag_err,
              (unsigned long long)fe->frag_line + 1, (unsigned long long)(fe->frag_line + (uint64_t)fe->frag_joins));
    else
        warnf(fe, "%s", fe->frag_err);
    fe->cur_line = cur;
    fe->frag_held = 0;
    mark_gaps(fe, fe->frag.p, fe->frag.len);   /* the held line is lost: a text_delta perhaps */
    fe->frag.len = 0;
}

/* line (from its first non-blank byte) failed to parse (je). Returns the
 * object it completes, or NULL with *held set when it is kept for the next
 * line (no warning yet). */
static json_t *rejoin_split(ingest_frontend *fe, const char *line, size_t len, const json_error_t *je, int *held) {
    *held = 0;
    if (!fe->frag_held && line[0] != '{') return NULL;
    size_t n = take_injected(fe, line, len);
    if (fe->frag_held) {
        size_t keep = fe->frag.len;
        if (fb_put(&fe->frag, line, n)) { fe->oom = 1; return NULL; }
        json_error_t je2;
        json_t *root = parse_json(&fe->fix, fe->frag.p, fe->frag.len, &je2);
        if (root) {
            warnf(fe, "lines %llu to %llu are one JSON line broken apart (Claude Code can write another event "
                      "into the middle of a line); read as one",
                  (unsigned long long)fe->frag_line, (unsigned long long)fe->cur_line);
            fe->frag_held = 0;
            fe->frag.len = 0;
            return root;
        }
        if (n && line[0] != '{' && json_error_code(&je2) == json_error_premature_end_of_input &&
            looks_like_text(line, n) && fe->frag_joins + 1 < FRAG_MAX_JOINS) {
            fe->frag_joins++;
            *held = 1;   /* still incomplete: perhaps the next line is the rest */
            return NULL;
        }
        fe->frag.len = keep;
        frag_flush(fe);
    }
    /* the start of a line whose event was taken off, or a line cut short: keep it */
    if (n && line[0] == '{' && (n < len || json_error_code(je) == json_error_premature_end_of_input)) {
        fe->frag.len = 0;
        if (fb_put(&fe->frag, line, n)) { fe->oom = 1; return NULL; }
        fe->frag_held = 1;
        fe->frag_line = fe->cur_line;
        fe->frag_joins = 0;
        if (n < len)
            snprintf(fe->frag_err, sizeof fe->frag_err,
                     "an event was written into the middle of this line and the rest of it did not follow; skipped");
        else
            snprintf(fe->frag_err, sizeof fe->frag_err, "not valid JSON (%s, at column %d); skipped", je->text, je->column);
        *held = 1;
    }
    return NULL;
}

/* An array whose every element is an object with a string "type": the
 * messages of --output-format json --verbose. */
static int is_event_array(const json_t *a) {
    size_t i;
    json_t *ev;
    if (json_array_size(a) == 0) return 0;
    json_array_foreach(a, i, ev)
        if (!json_is_object(ev) || !jstr(ev, "type")) return 0;
    return 1;
}

/* --input-format text|markdown: each line is text of one long main-agent
 * block (blank lines are paragraph breaks). Plain text is read literally:
 * its ASCII punctuation is backslash-escaped so no markdown rule applies,
 * and its indentation is not code. */
static void feed_plain(ingest_frontend *fe, const char *line, size_t len) {
    source *s = source_get(fe, NULL);
    if (!s) return;
    while (len && (line[len - 1] == '\r')) len--;
    /* The text stage drops invalid bytes and keeps the text around them; a
     * file in another encoding (Latin-1) loses a letter per accent, so say
     * where, once, like other bad input (a line never splits a character). */
    size_t ok = stts_utf8_valid_prefix((const unsigned char *)line, len);
    if (ok < len) {
        fe->st.invalid_utf8++;
        if (!fe->utf8_warned++)
            warnf(fe, "invalid UTF-8 at byte %zu dropped (is the input in another encoding?); further such "
                      "lines are counted, not reported", ok + 1);
    }
    if (fe->p.input_format == INGEST_INPUT_MARKDOWN) {
        feed_text(fe, s, line, len);
    } else {
        size_t i = 0;
        while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
        fe->norm.len = 0;
        for (; i < len; i++) {
            unsigned char c = (unsigned char)line[i];
            if (c < 0x80 && c > ' ' && !((c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z')))
                if (fb_put(&fe->norm, "\\", 1)) { fe->oom = 1; return; }
            if (fb_put(&fe->norm, line + i, 1)) { fe->oom = 1; return; }
        }
        if (fe->norm.len) feed_text(fe, s, fe->norm.p, fe->norm.len);
    }
    feed_text(fe, s, "\n", 1);
}

stts_status ingest_frontend_feed(ingest_frontend *fe, const char *line, size_t len, uint64_t line_no,
                                 uint64_t arrival_ns, unsigned flags, stts_error *err) {
    fe->st.lines++;
    fe->st.bytes += len + 1;
    fe->cur_line = line_no;
    fe->cur_arrival = arrival_ns;
    if (flags & INGEST_LINE_TOO_LONG) {
        frag_flush(fe);
        mark_gaps(fe, NULL, 0);
        fe->st.bad_lines++;
        warnf(fe, "line longer than the limit; skipped");
        return STTS_OK;
    }
    /* Plain text and markdown often end without a newline (an editor's
     * file, `printf`, a heredoc piped through tr): nothing tells a cut line
     * from a finished one there, so only JSON input, which can tell, warns
     * (below). */
    int cut = (flags & INGEST_LINE_TRUNCATED) != 0;
    if (fe->p.input_format == INGEST_INPUT_STREAM_JSON) skip_bom(&line, &len);
    size_t k = 0;
    while (k < len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r')) k++;
    if (fe->p.input_format == INGEST_INPUT_TEXT || fe->p.input_format == INGEST_INPUT_MARKDOWN) {
        feed_plain(fe, line, len);
        if (fe->oom) { fe->oom = 0; return stts_error_set(err, STTS_ERR_NOMEM, "out of memory at line %llu", (unsigned long long)line_no); }
        return STTS_OK;
    }
    if (k == len) return STTS_OK;   /* blank line */
    if (!cut && is_large_tool_result(line, len)) {
        frag_flush(fe);
        fe->st.tool_results_skipped++;
        return STTS_OK;
    }
    json_error_t je;
    json_t *root = parse_json(&fe->fix, line, len, &je);
    if (fe->fix.oom) {
        fe->fix.oom = 0;
        json_decref(root);
        return stts_error_set(err, STTS_ERR_NOMEM, "out of memory repairing line %llu", (unsigned long long)line_no);
    }
    /* A last line without its newline is only suspect when it is not one
     * whole JSON value: a transcript may simply end so (claude-stream-json.md
     * §10), and every --transcript of such a session warned. */
    if (cut && !(json_is_object(root) || json_is_array(root))) {
        fe->st.truncated++;
        warnf(fe, "input ended without a newline: the last line may be cut short");
    }
    if (fe->fix.utf8_at != (size_t)-1) {
        fe->st.invalid_utf8++;
        warnf(fe, "invalid UTF-8 at byte %zu replaced", fe->fix.utf8_at + 1);
    }
    if (fe->fix.surrogates) {
        warnf(fe, "%d unpaired UTF-16 surrogate escape%s replaced", fe->fix.surrogates, fe->fix.surrogates == 1 ? "" : "s");
        fe->st.invalid_utf8++;
    }
    if (fe->fix.numbers) warnf(fe, "%d number%s out of range replaced by 0", fe->fix.numbers, fe->fix.numbers == 1 ? "" : "s");
    if (root) {
        frag_flush(fe);
    } else {
        int held;
        root = rejoin_split(fe, line + k, len - k, &je, &held);
        if (fe->oom) {
            fe->oom = 0;
            json_decref(root);
            return stts_error_set(err, STTS_ERR_NOMEM, "out of memory at line %llu", (unsigned long long)line_no);
        }
        if (held) return STTS_OK;
    }
    if (!root) {
        fe->st.bad_lines++;
        if (line[k] != '{' && line[k] != '[' && looks_like_text(line, len)) {
            /* Words, not JSON: someone piped plain text in. Say so once, with the fix. */
            fe->st.plain_text_lines++;
            if (!fe->plain_warned++)
                warnf(fe, "this is plain text, not Claude Code stream-json: run claude -p --output-format "
                          "stream-json --verbose, or read plain text with --input-format text (or markdown); "
                          "further such lines are skipped without a warning");
            return STTS_OK;
        }
        warnf(fe, "not valid JSON (%s, at column %d); skipped", je.text, je.column);
        mark_gaps(fe, line, len);
        return STTS_OK;
    }
    if (json_is_array(root) && is_event_array(root)) {
        /* claude -p --output-format json with --verbose (or the verbose view
         * mode in settings) writes one JSON array of every message of the
         * session, the result last (anthropics/claude-code#84784): each is
         * read as a line of its own, in order (it was skipped whole) */
        size_t i;
        json_t *ev;
        json_array_foreach(root, i, ev) {
            const char *type = json_is_object(ev) ? jstr(ev, "type") : NULL;
            if (type) dispatch(fe, ev, type);
        }
    } else if (!json_is_object(root)) {
        fe->st.bad_lines++;
        warnf(fe, "not a JSON object; skipped");
    } else {
        const char *type = jstr(root, "type");
        if (!type) {
            fe->st.bad_lines++;
            warnf(fe, "no \"type\" field; skipped");
        } else {
            dispatch(fe, root, type);
        }
    }
    json_decref(root);
    if (fe->oom) {
        fe->oom = 0;
        return stts_error_set(err, STTS_ERR_NOMEM, "out of memory at line %llu", (unsigned long long)line_no);
    }
    return STTS_OK;
}

stts_status ingest_frontend_pump(ingest_frontend *fe, ingest_reader *r, volatile sig_atomic_t *stop,
                                 stts_error *err) {
    for (;;) {
        if (stop && __atomic_load_n(stop, __ATOMIC_RELAXED)) break;   /* set from other threads */
        uint64_t now = stts_now_ns(), dl = ingest_frontend_deadline(fe);
        int timeout = 250;   /* wake up now and then to look at *stop */
        if (dl) {
            /* Only silence in the input flushes: when the deadline passed while
             * the callback was busy (a slow consumer), a line already waiting is
             * read first (timeout 0) and the tick happens only if none is. */
            uint64_t ms = dl <= now ? 0 : (dl - now + 999999) / 1000000;
            if (ms < (uint64_t)timeout) timeout = (int)ms;
        }
        if (!stop) timeout = dl ? timeout : -1;   /* nothing to wait for but input */
        ingest_line ln;
        ingest_result res;
        stts_status st = ingest_reader_next(r, timeout, &ln, &res, err);
        if (st != STTS_OK) {
            ingest_frontend_finish(fe, stts_now_ns());
            return st;
        }
        if (res == INGEST_EOF) break;
        if (res == INGEST_TIMEOUT) { ingest_frontend_tick(fe, stts_now_ns()); continue; }
        st = ingest_frontend_feed(fe, ln.data, ln.len, ln.no, stts_now_ns(), ln.flags, err);
        if (st != STTS_OK) return st;
    }
    ingest_frontend_finish(fe, stts_now_ns());
    return STTS_OK;
}

void ingest_frontend_tick(ingest_frontend *fe, uint64_t now_ns) {
    fe->in_tick = 1;
    for (int i = 0; i < fe->nsrc; i++) {
        source *s = fe->src[i];
        /* a stopped block waiting for its complete line, and the input went
         * silent: the line is not coming now (the CLI runs a tool); given up
         * before the idle flush would say part of what was fed on its own */
        uint64_t td = text_stream_deadline(s->ts);
        if (s->gap_closed && (now_ns - s->gap_stop_ns >= fe->p.text.idle_flush_ns || (td && now_ns >= td)))
            gap_give_up(fe, s);
        /* a complete block held open for a cited span's continuation, and
         * none came: it ends whole. The idle flush kept its last word back
         * as unfinished ("All 42" of "All 42 pass", a one-word "Done" not at
         * all) until the next line; a transcript has no result line after
         * the reply to end it (--follow said it at the next prompt). */
        if (s->cont && now_ns >= s->cont_ns + cont_wait(fe, s)) end_block(fe, s);
        text_stream_tick(s->ts, now_ns);
    }
    fe->in_tick = 0;
}

static uint64_t cont_wait(const struct ingest_frontend *fe, const struct source *s) {
    return s->cont == CONT_TOKEN_LIMIT ? TOKEN_LIMIT_WAIT_NS : fe->p.text.idle_flush_ns;
}

uint64_t ingest_frontend_deadline(const ingest_frontend *fe) {
    uint64_t d = 0;
    for (int i = 0; i < fe->nsrc; i++) {
        uint64_t t = text_stream_deadline(fe->src[i]->ts);
        if (fe->src[i]->gap_closed) {
            uint64_t g = fe->src[i]->gap_stop_ns + fe->p.text.idle_flush_ns;
            if (!t || g < t) t = g;
        }
        if (fe->src[i]->cont) {   /* a block held open ends whole then (ingest_frontend_tick) */
            uint64_t g = fe->src[i]->cont_ns + cont_wait(fe, fe->src[i]);
            if (!t || g < t) t = g;
        }
        if (t && (!d || t < d)) d = t;
    }
    return d;
}

void ingest_frontend_finish(ingest_frontend *fe, uint64_t now_ns) {
    frag_flush(fe);
    fe->in_tick = 1;   /* sentences belong to the last line that fed them */
    for (int i = 0; i < fe->nsrc; i++) {
        gap_give_up(fe, fe->src[i]);
        text_stream_end(fe->src[i]->ts, now_ns);
    }
    fe->in_tick = 0;
}

void ingest_frontend_stats(const ingest_frontend *fe, ingest_stats *out) { *out = fe->st; }

void ingest_frontend_mute(ingest_frontend *fe, int on) { fe->muted = on != 0; }

int ingest_is_placeholder(const char *text, size_t len) {
    static const char ph[] = "(no content)";
    if (!text) return 0;
    size_t a = lead_ws(text, len), b = trail_ws(text, len);
    return a < len && len - a - b == sizeof ph - 1 && memcmp(text + a, ph, sizeof ph - 1) == 0;
}

/* ---- transcripts ------------------------------------------------------------------------ */
int ingest_transcript_line_kind(const char *line, size_t len) {
    /* repaired like a fed line: a prompt with half an emoji is still the
     * prompt that starts the last turn */
    json_fix f = {0};
    json_error_t je;
    json_t *root = parse_json(&f, line, len, &je);
    json_fix_free(&f);
    if (!root) return INGEST_TRANSCRIPT_OTHER;
    int k = !json_is_object(root) ? INGEST_TRANSCRIPT_OTHER
            : is_prompt_obj(root)  ? INGEST_TRANSCRIPT_PROMPT
            : is_command_obj(root) ? INGEST_TRANSCRIPT_COMMAND
            : is_reply_obj(root)   ? INGEST_TRANSCRIPT_REPLY
                                   : INGEST_TRANSCRIPT_OTHER;
    json_decref(root);
    return k;
}

int ingest_transcript_is_prompt(const char *line, size_t len) {
    return ingest_transcript_line_kind(line, len) == INGEST_TRANSCRIPT_PROMPT;
}

stts_status ingest_hook_transcript_path(const char *payload, size_t len, char **path, stts_error *err) {
    *path = NULL;
    json_error_t je;
    json_fix f = {0};
    json_t *root = parse_json(&f, payload, len, &je);
    json_fix_free(&f);
    if (!root)
        return stts_error_set(err, STTS_ERR_FORMAT, "the hook payload on stdin is not JSON (%s at column %d); "
                              "run stream-tts --hook from a Claude Code Stop hook", je.text, je.column);
    const char *p = json_is_object(root) ? jstr(root, "transcript_path") : NULL;
    if (!p || !p[0]) {
        json_decref(root);
        return stts_error_set(err, STTS_ERR_FORMAT, "the hook payload has no \"transcript_path\" string");
    }
    *path = strdup(p);
    json_decref(root);
    if (!*path) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    return STTS_OK;
}
