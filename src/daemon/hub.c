/* hub.c - hook payloads and pipe clients' lines in, sentences out, per
 * session (see include/stts_daemon.h and docs/PROTOCOL.md).
 *
 * Each session has its own text stage (markdown state and segmenter), so
 * sessions never split each other's sentences. The MessageDisplay/Stop
 * reconciliation follows ../shared/docs/claude-code-hooks.md §5.3: every
 * message of the current turn keeps the text that was handed to the text
 * stage; a Stop's last_assistant_message L is compared with them after
 * whitespace normalisation: equal to one -> nothing; one is a prefix of L ->
 * only the rest; otherwise L entirely (recorded, so a repeated Stop, e.g.
 * the continuation with stop_hook_active, says nothing again).
 *
 * "Otherwise" may only mean that the batches are late: the order of the
 * last batch and Stop is not documented, and hooks are separate processes.
 * Speaking L at once would speak the message twice when its batches then
 * come, so that case is parked for stop_grace_ms (the design's grace):
 * batches arriving meanwhile are spoken live, and the parked Stop is then
 * reconciled again against them (a final batch ends the wait at once; any
 * other event of the session, a tick past the deadline too). */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stts_daemon.h"

enum { MAX_MSGS = 64 };   /* messages remembered per turn */
/* Sessions kept at once. A session that never gets its SessionEnd (Claude
 * Code killed, a terminal closed) or a local process sending made-up ids
 * would otherwise grow the daemon for its whole life: past this many, the
 * one quiet the longest (with no Stop waiting) is forgotten, its pending
 * words spoken first (a pipe session is ended as by its "end"). */
enum { MAX_SESSIONS = 256 };
/* Longest session_id accepted (Claude Code's are 36-byte UUIDs), as the
 * protocol's "session" field. */
enum { MAX_SESSION_ID = 256 };
/* MessageDisplay batches that come after a missing one (its hook timed out
 * or was spooled, so it comes late or never) wait this long for it, at most
 * MAX_HELD of them; then they are spoken and the missing one is a hole that
 * a late batch or the Stop fills. */
enum { HOLD_MS = 1000, MAX_HELD = 64 };
/* Held batches that may begin inside a code block the missing batch opened
 * (hole_in_code: their first fence line is a bare ``` and the count is odd)
 * wait on, HOLD_MS at a time, for the message's final batch, which tells,
 * up to this long; then they are read as the text stage stands. */
enum { HOLD_CODE_MS = 8000 };
/* Batches of a message whose Stop spoke it whole are recognised this long
 * after it (a slow hook, a spool replay: up to 0.5 s); a message that only
 * starts like it, later, is another one. */
enum { ADOPT_MS = 3000 };
/* Turns known to be over (cut with Esc, or ended) whose late batches are
 * not spoken, remembered per session (turn_ids are never reused). */
enum { CLOSED_TURNS = 8 };
/* prompt_ids of the prompts before the current one, remembered per session:
 * a Stop carrying one is of a turn before the last prompt (stale_stop). */
enum { OLD_PROMPTS = 8 };

typedef struct {
    long index;
    char *text;
    size_t len;
    int final;
    int quiet;             /* made before a barge-in: recorded, not said (session.quiet) */
} held_batch;

typedef struct {
    char *id;
    char *text;            /* everything handed to the text stage for it, in batch order */
    size_t len, cap;
    /* Each batch spoken: its index and where its text begins in text
     * (ascending); a jump in the indexes is a hole (a batch never seen). */
    long *seg_ix;
    size_t *seg_off;
    int nseg, seg_cap;
    held_batch *held;      /* batches after a missing one, waiting for it (ascending) */
    int nheld;
    uint64_t held_due;     /* monotonic ns: when the held ones are spoken anyway */
    uint64_t held_since;   /* ... and when the first of them was held */
    long next_index;       /* next MessageDisplay batch expected */
    int final;
    int aside;             /* a notification or notice, not an assistant message */
    int over;              /* of the turn before the last prompt, kept for its late batches (session.prev) */
    int from_stop;         /* spoken whole from a Stop's last_assistant_message, no batch seen */
    uint64_t stop_ns;      /* ... when (its late batches are looked for ADOPT_MS after it) */
    char *stop_pid;        /* ... that Stop's prompt_id (NULL: none) */
    unsigned long stop_ev; /* ... and the session's event number when it came (session.ev_n) */
} msg;

typedef struct session {
    struct session *next;
    char *id;
    text_stream *ts;       /* hook text */
    ingest_frontend *fe;   /* pipe client's stream-json, made on first line */
    char *turn_id;
    /* The last CLOSED_TURNS turns known over (a later turn began, a cut
     * turn's prompt had its Stop, a barge-in came after their own Stop):
     * a batch of one comes late (hooks are separate processes) and is not
     * spoken; ring, oldest overwritten. */
    char *closed[CLOSED_TURNS];
    int closed_next;
    msg msgs[MAX_MSGS];
    int n_msgs;
    const char *cur_id;    /* message the text stage is speaking (for sentences) */
    /* The message whose batch is being taken in is made of words a
     * barge-in cut (made before the prompt): its text is recorded as said
     * (the Stop does not say it; batches after it follow on), not spoken. */
    const msg *quiet;
    /* The server stopped its speech (daemon_hub_stopped) and no word came
     * since: what the text stage still holds (a sentence not ended) is of
     * before the stop and is not said when flushed. Without it the idle
     * flush said the cut sentence 1.5 s after an Esc and its stop. */
    int hush;
    int prompted;          /* a prompt came while this turn ran (a queued prompt) */
    char *prompted_id;     /* ... its prompt_id (NULL: none given) */
    int md_since_prompt;   /* ... and a MessageDisplay batch of the session came after it */
    int claim_tries;       /* pipe: lines looked at for Claude Code's session_id */
    char *last_notice;     /* the last notice said (Notification, StopFailure), and when */
    uint64_t last_notice_ns;
    unsigned long stop_n;
    char *parked;          /* a Stop's last_assistant_message waiting for late batches */
    size_t parked_len;
    uint64_t parked_due;   /* monotonic ns */
    /* The parked Stop came after a prompt taken for queued, with no batch
     * since: whose it is (that prompt's reply, or the end of the turn that
     * goes on) is decided when it is reconciled (flush_parked). */
    int parked_prompt;
    uint64_t used_ns;      /* last request of this session (MAX_SESSIONS) */
    /* When the current turn's speech began (its first MessageDisplay or
     * Stop; 0: none since the last prompt) and when the last prompt acted
     * on was made: a prompt replayed from the spool that is older than
     * either is stale (daemon_hub_hook_at). */
    uint64_t turn_ns, prompt_ns;
    int turn_over;         /* a Stop came: the next speech begins another turn */
    /* The last prompt came after its turn's Stop, and that turn's batches
     * can still come (hooks are separate processes; a Stop can even come
     * before its message's batches): prev_turn is that turn's turn_id
     * (NULL: none seen), prev_prompt the prompt's prompt_id (NULL: none
     * given; a batch carrying another was made before the prompt). Under
     * --on-prompt continue the turn's messages stay too, marked over, to
     * tell what its Stop said (keep_turn). */
    int prev;
    char *prev_turn, *prev_prompt;
    char *main_agent;      /* agent_id of the main thread under `claude --agent` (NULL: none seen) */
    /* Whose Stop is it (stale_stop). prompt_cur: the prompt_id of the last
     * prompt acted on (or, before any, the first one an event carried);
     * prompt_old: those before it (ring). at_prompt_turn: the turn_id
     * current when the last prompt came before its turn's Stop (the turn
     * may go on after a tool call); went_on: a batch of it came since. */
    char *prompt_cur;
    char *prompt_old[OLD_PROMPTS];
    int prompt_old_next;
    char *at_prompt_turn;
    int went_on;
    /* prompt_cur came with a UserPromptSubmit acted on (not only with a
     * speech event before any prompt): a copy of it does nothing. Without
     * ids: prompt_h, the hash of the last prompt's words (0: none). */
    int prompt_acted;
    uint64_t prompt_h;
    /* Without ids: the white-space-normalised hash (text_hash) of the last
     * Stop's last_assistant_message in this turn (stop_h) and, at a prompt,
     * of what ended the turn before it (prev_h: that Stop's text, or the
     * turn's last message when the prompt came first; 0: none);
     * md_after_prompt: a batch of the session came since the prompt;
     * prev_silent: the turn before the prompt had no message and no Stop.
     * parked_noid: the parked Stop carried no prompt_id. */
    uint64_t stop_h, prev_h;
    int md_after_prompt, prev_silent, parked_noid;
    /* Two text stages: the session's, and the kept turn's (session.prev,
     * --on-prompt continue: its late batches and Stop, stage_apart). ts,
     * cur_id and hush are the stage in use; ots, ocur and ohush the other
     * one (ots NULL: the kept turn's not made yet); apart: the one in use
     * is the kept turn's. The kept turn's stage keeps a sentence a late
     * batch left open for the next late batch of that message, until
     * ap_due (monotonic ns; 0: nothing to flush) or that turn's end. */
    text_stream *ots;
    const char *ocur;
    int ohush, apart;
    uint64_t ap_due;
    /* Whose late batch is it (adopt_stop_msg): the prompt_ids the session
     * has seen (any event), with the number of the event that first
     * carried each (ring; ev_n counts the session's events), and the last
     * Stop taken in (its prompt_id, its event number). */
    char *seen_pid[OLD_PROMPTS];
    unsigned long seen_ev[OLD_PROMPTS];
    int seen_next;
    unsigned long ev_n;
    char *stop_pid;
    unsigned long stop_ev;
    struct daemon_hub *hub;
} session;

/* A Claude Code session that a pipe client speaks (`claude -p ... |
 * stream-tts`, learnt from its stream-json lines' session_id): that
 * session's hook speech (MessageDisplay, Stop) is the same reply again and
 * is ignored while the pipe runs and CLAIM_LINGER_NS after it ended (its
 * Stop hook may come after the pipe's end). */
typedef struct claim {
    struct claim *next;
    char *sid;             /* Claude Code's session_id */
    char *pipe;            /* the pipe client's session */
    uint64_t ended_ns;     /* 0 while the pipe runs */
} claim;

#define CLAIM_LINGER_NS (30ull * 1000000000ull)
enum { CLAIM_TRIES = 4 };   /* lines of a pipe looked at for a session_id */

struct daemon_hub {
    daemon_hub_params p;
    claim *claims;
    char notice_lang[32];
    char *notify;
    daemon_hub_callbacks cb;
    void *user;
    session *sessions;
    uint64_t seq;
};

void daemon_hub_default_params(daemon_hub_params *p) {
    memset(p, 0, sizeof *p);
    text_default_params(&p->text);
    p->stop_on_prompt = 1;
    p->notify_types = "permission_prompt,idle_prompt,elicitation_dialog";
    p->speak_stop_failure = 1;
    p->stop_grace_ms = 250;
    p->notice_dedup_ms = 2000;
}

/* The flags of the sentences of message id (a pointer into s->msgs, as
 * cur_id is): a notification's are asides. */
static unsigned flags_of(const session *s, const char *id) {
    for (int k = 0; id && k < s->n_msgs; k++)
        if (s->msgs[k].id == id) return s->msgs[k].aside ? INGEST_SENT_ASIDE : 0;
    return 0;
}

static void emit(session *s, const char *msg_id, const text_sentence *t, uint64_t line_no) {
    daemon_hub *h = s->hub;
    ingest_sentence is = {.text = t->text, .len = t->len, .kind = t->kind, .lang = t->lang,
                          .message_id = msg_id ? msg_id : "", .seq = h->seq++, .line_no = line_no,
                          .arrival_ns = t->arrival_ns, .emit_ns = stts_now_ns(), .flags = flags_of(s, msg_id)};
    h->cb.sentence(h->user, s->id, &is);
}

static void on_text(void *user, const text_sentence *t) {
    session *s = user;
    if (s->hush) return;   /* words of before a stop, flushed */
    emit(s, s->cur_id, t, 0);
}

static void on_line_sentence(void *user, const ingest_sentence *in) {
    session *s = user;
    ingest_sentence is = *in;
    is.seq = s->hub->seq++;
    s->hub->cb.sentence(s->hub->user, s->id, &is);
}

static void on_line_warn(void *user, uint64_t line_no, const char *m) {
    (void)user; (void)line_no; (void)m;   /* a bad line is skipped; the pipe client saw it */
}

static void held_clear(msg *m) {
    for (int k = 0; k < m->nheld; k++) free(m->held[k].text);
    free(m->held);
    m->held = NULL;
    m->nheld = 0;
    m->held_due = 0;
    m->held_since = 0;
}

static void msg_free(msg *m) {
    held_clear(m);
    free(m->stop_pid);
    free(m->id);
    free(m->text);
    free(m->seg_ix);
    free(m->seg_off);
}

static void prev_clear(session *s) {
    free(s->prev_turn);
    free(s->prev_prompt);
    s->prev_turn = s->prev_prompt = NULL;
    s->prev = 0;
}

static void msgs_clear(session *s) {
    for (int k = 0; k < s->n_msgs; k++) msg_free(&s->msgs[k]);
    s->n_msgs = 0;
    s->cur_id = NULL;
    s->ocur = NULL;
    prev_clear(s);
}

static void session_free(session *s) {
    if (!s) return;
    msgs_clear(s);
    text_stream_free(s->ts);
    text_stream_free(s->ots);
    ingest_frontend_free(s->fe);
    free(s->parked);
    free(s->prompted_id);
    free(s->last_notice);
    free(s->turn_id);
    for (int k = 0; k < CLOSED_TURNS; k++) free(s->closed[k]);
    for (int k = 0; k < OLD_PROMPTS; k++) free(s->prompt_old[k]);
    for (int k = 0; k < OLD_PROMPTS; k++) free(s->seen_pid[k]);
    free(s->stop_pid);
    free(s->prompt_cur);
    free(s->at_prompt_turn);
    free(s->main_agent);
    free(s->id);
    free(s);
}

/* The other text stage becomes the one in use (session.ots). */
static void stage_swap(session *s) {
    text_stream *t = s->ts;
    s->ts = s->ots;
    s->ots = t;
    const char *c = s->cur_id;
    s->cur_id = s->ocur;
    s->ocur = c;
    int h = s->hush;
    s->hush = s->ohush;
    s->ohush = h;
    s->apart = !s->apart;
}

/* The stage not in use says what it holds, under its own message (on_text
 * reads the stage in use: swapped for the call). */
static void other_end(session *s, uint64_t now) {
    if (!s->ots) return;
    stage_swap(s);
    text_stream_end(s->ts, now);
    s->cur_id = NULL;
    stage_swap(s);
}

/* The kept turn's stage says what it still holds: a sentence a late batch
 * left open, which no later batch of its message completed in time, or
 * that turn is over (its successor kept, the session ends). Once, whole
 * as far as it came; nothing of it is lost. */
static void apart_end(session *s) {
    uint64_t now = stts_now_ns();
    s->ap_due = 0;
    if (!s->apart) {
        other_end(s, now);
        return;
    }
    text_stream_end(s->ts, now);
    s->cur_id = NULL;
}

/* m is about to be freed: no stage may speak under its id after that, so
 * the one speaking it says its pending words first. */
static void msg_going(session *s, const msg *m) {
    uint64_t now = stts_now_ns();
    if (s->cur_id == m->id) {
        text_stream_end(s->ts, now);
        s->cur_id = NULL;
    }
    if (s->ots && s->ocur == m->id) other_end(s, now);
}

static session *find(daemon_hub *h, const char *id) {
    for (session *s = h->sessions; s; s = s->next)
        if (strcmp(s->id, id) == 0) return s;
    return NULL;
}

static void forget(daemon_hub *h, session *s);
static void release_all_held(session *s);

/* At MAX_SESSIONS: forgets the session quiet the longest (not one whose
 * Stop waits for its grace), its pending words spoken first. */
static void make_room(daemon_hub *h) {
    int n = 0;
    session *old = NULL;
    for (session *s = h->sessions; s; s = s->next) {
        n++;
        if (!s->parked && (!old || s->used_ns < old->used_ns)) old = s;
    }
    if (n < MAX_SESSIONS || !old) return;
    if (old->fe) {
        daemon_hub_end(h, old->id);
        return;
    }
    release_all_held(old);
    apart_end(old);
    text_stream_end(old->ts, stts_now_ns());
    forget(h, old);
}

static session *get(daemon_hub *h, const char *id, stts_error *err) {
    session *s = find(h, id);
    if (s) {
        s->used_ns = stts_now_ns();
        return s;
    }
    make_room(h);
    s = calloc(1, sizeof *s);
    if (!s || !(s->id = strdup(id))) {
        free(s);
        stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->hub = h;
    s->used_ns = stts_now_ns();
    if (text_stream_new(&h->p.text, on_text, s, &s->ts, err) != STTS_OK) {
        session_free(s);
        return NULL;
    }
    s->next = h->sessions;
    h->sessions = s;
    return s;
}

static void forget(daemon_hub *h, session *s) {
    for (session **pp = &h->sessions; *pp; pp = &(*pp)->next)
        if (*pp == s) { *pp = s->next; break; }
    session_free(s);
}

stts_status daemon_hub_new(const daemon_hub_params *p, const daemon_hub_callbacks *cb, void *user,
                           daemon_hub **out, stts_error *err) {
    *out = NULL;
    daemon_hub *h = calloc(1, sizeof *h);
    if (!h) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    h->p = *p;
    snprintf(h->notice_lang, sizeof h->notice_lang, "%s", p->text.notice_lang ? p->text.notice_lang : "eng_Latn");
    h->p.text.notice_lang = h->notice_lang;
    h->notify = strdup(p->notify_types ? p->notify_types : "");
    if (!h->notify) { free(h); return stts_error_set(err, STTS_ERR_NOMEM, "out of memory"); }
    h->cb = *cb;
    h->user = user;
    *out = h;
    return STTS_OK;
}

static void claim_free(claim *c) {
    free(c->sid);
    free(c->pipe);
    free(c);
}

/* The claim on Claude Code session sid, forgetting those that expired. */
static claim *claimed(daemon_hub *h, const char *sid, uint64_t now) {
    claim *found = NULL;
    for (claim **pp = &h->claims; *pp;) {
        claim *c = *pp;
        if (c->ended_ns && now - c->ended_ns > CLAIM_LINGER_NS) {
            *pp = c->next;
            claim_free(c);
            continue;
        }
        if (strcmp(c->sid, sid) == 0) found = c;
        pp = &c->next;
    }
    return found;
}

static void add_claim(daemon_hub *h, const char *sid, const char *pipe) {
    claim *c = claimed(h, sid, stts_now_ns());
    char *p = strdup(pipe);
    if (!p) return;
    if (c) {
        free(c->pipe);
        c->pipe = p;
        c->ended_ns = 0;
        return;
    }
    c = calloc(1, sizeof *c);
    if (!c || !(c->sid = strdup(sid))) { free(c); free(p); return; }   /* out of memory: hooks speak it too */
    c->pipe = p;
    c->next = h->claims;
    h->claims = c;
}

void daemon_hub_free(daemon_hub *h) {
    if (!h) return;
    while (h->claims) { claim *c = h->claims; h->claims = c->next; claim_free(c); }
    while (h->sessions) forget(h, h->sessions);
    free(h->notify);
    free(h);
}

/* ---- reconciliation ------------------------------------------------------------ */

/* Offset in l just after the part matching m, comparing with every run of
 * white space as one space and ignoring leading/trailing white space of m;
 * -1 when m (so normalised) is not a prefix of l. */
static long prefix_offset(const char *m, size_t mn, const char *l, size_t ln) {
    size_t i = 0, j = 0;
    while (i < mn && isspace((unsigned char)m[i])) i++;
    while (j < ln && isspace((unsigned char)l[j])) j++;
    while (i < mn) {
        if (isspace((unsigned char)m[i])) {
            while (i < mn && isspace((unsigned char)m[i])) i++;
            if (i == mn) break;   /* m's trailing white space */
            if (j >= ln || !isspace((unsigned char)l[j])) return -1;
            while (j < ln && isspace((unsigned char)l[j])) j++;
            continue;
        }
        if (j >= ln || m[i] != l[j]) return -1;
        i++;
        j++;
    }
    return (long)j;
}

static int all_space(const char *s, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (!isspace((unsigned char)s[k])) return 0;
    return 1;
}

static msg *find_msg(session *s, const char *id) {
    for (int k = 0; k < s->n_msgs; k++)
        if (strcmp(s->msgs[k].id, id) == 0) return &s->msgs[k];
    return NULL;
}

static msg *new_msg(session *s, const char *id, stts_error *err) {
    if (s->n_msgs == MAX_MSGS) {   /* a very long turn: forget the oldest */
        /* When a text stage speaks it, its pending words go out under its
         * id now, before the id is freed (cur_id and ocur never point at a
         * forgotten message). */
        msg_going(s, &s->msgs[0]);
        msg_free(&s->msgs[0]);
        memmove(s->msgs, s->msgs + 1, (MAX_MSGS - 1) * sizeof s->msgs[0]);
        s->n_msgs--;
    }
    msg *m = &s->msgs[s->n_msgs];
    memset(m, 0, sizeof *m);
    if (!(m->id = strdup(id))) { stts_error_set(err, STTS_ERR_NOMEM, "out of memory"); return NULL; }
    s->n_msgs++;
    return m;
}

static int msg_append(msg *m, const char *t, size_t n) {
    if (m->len + n + 1 > m->cap) {
        size_t nc = m->cap ? m->cap : 256;
        while (nc < m->len + n + 1) nc *= 2;
        char *g = realloc(m->text, nc);
        if (!g) return -1;
        m->text = g;
        m->cap = nc;
    }
    memcpy(m->text + m->len, t, n);
    m->len += n;
    m->text[m->len] = '\0';
    return 0;
}

/* Speaks t as (more of) message m. */
static stts_status speak(session *s, msg *m, const char *t, size_t n, int end, stts_error *err) {
    uint64_t now = stts_now_ns();
    if (s->cur_id && s->cur_id != m->id) text_stream_end(s->ts, now);   /* the previous message is over */
    s->cur_id = m->id;
    if (msg_append(m, t, n) != 0) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    int say = n && s->quiet != m;
    if (say) s->hush = 0;   /* new words after a stop: the sentence they complete is said whole */
    if (say && text_stream_feed(s->ts, t, n, now, err) != STTS_OK) return err->code;
    if (end) {
        m->final = 1;
        text_stream_end(s->ts, now);
    }
    return STTS_OK;
}

/* ---- batches out of order ------------------------------------------------------ */

/* Records that batch index begins at off of m's text, at position pos of
 * the (ascending) list. */
static int seg_insert(msg *m, int pos, long index, size_t off) {
    if (m->nseg == m->seg_cap) {
        int nc = m->seg_cap ? m->seg_cap * 2 : 8;
        long *ix = realloc(m->seg_ix, (size_t)nc * sizeof *ix);
        if (!ix) return -1;
        m->seg_ix = ix;
        size_t *of = realloc(m->seg_off, (size_t)nc * sizeof *of);
        if (!of) return -1;
        m->seg_off = of;
        m->seg_cap = nc;
    }
    memmove(m->seg_ix + pos + 1, m->seg_ix + pos, (size_t)(m->nseg - pos) * sizeof *m->seg_ix);
    memmove(m->seg_off + pos + 1, m->seg_off + pos, (size_t)(m->nseg - pos) * sizeof *m->seg_off);
    m->seg_ix[pos] = index;
    m->seg_off[pos] = off;
    m->nseg++;
    return 0;
}

/* Speaks batch index (the next expected one) as more of m. */
static stts_status speak_batch(session *s, msg *m, long index, const char *t, size_t n, int final, stts_error *err) {
    if (seg_insert(m, m->nseg, index, m->len) != 0) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    m->next_index = index + 1;
    return speak(s, m, t, n, final, err);
}

/* Batches of m before its next expected one that were never seen (held
 * ones waited in vain and were spoken past them). */
static int has_holes(const msg *m) {
    if (m->nseg && m->seg_ix[0] > 0) return 1;
    for (int k = 1; k < m->nseg; k++)
        if (m->seg_ix[k] != m->seg_ix[k - 1] + 1) return 1;
    return 0;
}

static int is_hole(const msg *m, long index) {
    if (index >= m->next_index) return 0;
    for (int k = 0; k < m->nseg; k++)
        if (m->seg_ix[k] == index) return 0;
    return 1;
}

/* Words of m said now, apart from its text stream's flow (a missing batch
 * that came late, or the missing text the Stop supplied): what is pending
 * goes first, then t alone. m's text is left to the caller. */
static stts_status say_apart(session *s, msg *m, const char *t, size_t n, stts_error *err) {
    if (s->quiet == m) return STTS_OK;
    uint64_t now = stts_now_ns();
    if (s->cur_id) text_stream_end(s->ts, now);
    s->cur_id = m->id;
    if (n) s->hush = 0;
    if (n && text_stream_feed(s->ts, t, n, now, err) != STTS_OK) return err->code;
    text_stream_end(s->ts, now);
    return STTS_OK;
}

/* A missing batch that came after the held ones were spoken: said now (out
 * of order, but once) and put in its place in m's text for the Stop. */
static stts_status fill_hole(session *s, msg *m, long index, const char *t, size_t n, stts_error *err) {
    int pos = 0;
    while (pos < m->nseg && m->seg_ix[pos] < index) pos++;
    size_t at = pos < m->nseg ? m->seg_off[pos] : m->len;
    if (seg_insert(m, pos, index, at) != 0 || msg_append(m, t, n) != 0)
        return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    memmove(m->text + at + n, m->text + at, m->len - n - at);
    memcpy(m->text + at, t, n);
    for (int k = pos + 1; k < m->nseg; k++) m->seg_off[k] += n;
    return say_apart(s, m, t, n, err);
}

/* Holds a batch that came after a missing one; 1 when that index is held already. */
static int hold(msg *m, long index, const char *t, size_t n, int final, int quiet, stts_error *err) {
    int pos = 0;
    while (pos < m->nheld && m->held[pos].index < index) pos++;
    if (pos < m->nheld && m->held[pos].index == index) return 1;
    held_batch *g = realloc(m->held, (size_t)(m->nheld + 1) * sizeof *g);
    char *c = malloc(n + 1);
    if (g) m->held = g;
    if (!g || !c) { free(c); stts_error_set(err, STTS_ERR_NOMEM, "out of memory"); return -1; }
    memcpy(c, t, n);
    c[n] = '\0';
    memmove(m->held + pos + 1, m->held + pos, (size_t)(m->nheld - pos) * sizeof *m->held);
    m->held[pos] = (held_batch){index, c, n, final, quiet};
    m->nheld++;
    if (!m->held_due) {
        m->held_since = stts_now_ns();
        m->held_due = m->held_since + (uint64_t)HOLD_MS * 1000000u;
    }
    return 0;
}

/* ---- code blocks across a missing batch ------------------------------------------ */

/* A missing batch may have opened or closed a fenced code block: the held
 * batches after it, fed to the text stage as they stand, then had their code
 * read out as prose and their prose dropped as code (a review found
 * "curl -H 'Authorization: Bearer ...'" said aloud, and the sentence after
 * the block lost, when the batch with the opening ```bash timed out). The
 * fences (CommonMark's: ``` or ~~~, 3 or more, an opening one may carry an
 * info string, a closing one is at least as long and carries none) are
 * followed here, a line at a time, as the text stage follows them. */
typedef struct {
    int in;         /* inside a block */
    char ch;        /* its fence character and length */
    size_t len;
    int lines;      /* fence lines seen */
    int first_bare; /* the first fence line seen carried no info string (it may close a block) */
    int at_start;   /* the next byte begins a line */
} fence_scan;

/* One line (without its newline); 1 when it is a fence line. */
static int fence_line(fence_scan *f, const char *t, size_t n) {
    size_t i = 0;
    while (i < n && (t[i] == ' ' || t[i] == '>')) i++;   /* indented or quoted fences, as the text stage */
    if (i == n || (t[i] != '`' && t[i] != '~')) return 0;
    char c = t[i];
    size_t r = 0;
    while (i + r < n && t[i + r] == c) r++;
    if (r < 3) return 0;
    size_t j = i + r;
    int bare = 1;
    for (size_t k = j; k < n; k++) {
        if (c == '`' && t[k] == '`') return 0;   /* inline code, not a fence */
        if (t[k] != ' ' && t[k] != '\t' && t[k] != '\r') bare = 0;
    }
    if (f->in) {
        if (c != f->ch || r < f->len || !bare) return 0;   /* a line of the block */
        f->in = 0;
    } else {
        f->in = 1, f->ch = c, f->len = r;
    }
    if (!f->lines++) f->first_bare = bare;
    return 1;
}

/* Text t (lines, the last one possibly unfinished: it is taken as a line). */
static void fence_text(fence_scan *f, const char *t, size_t n) {
    for (size_t a = 0; a < n;) {
        const char *nl = memchr(t + a, '\n', n - a);
        size_t e = nl ? (size_t)(nl - t) : n;
        fence_line(f, t + a, e - a);
        a = e + 1;
    }
}

/* L's fence lines followed up to a point, for the holes' spans (reconcile_holes). */
typedef struct {
    fence_scan f;
    size_t pos;     /* the next line's start */
    size_t open_at; /* where the open block's opening line starts */
} fence_walk;

/* Takes in L's lines that start before upto; stops early, at a line end,
 * when the walk leaves a block (stop_on_close). 1 when it did. */
static int fence_walk_to(fence_walk *w, const char *l, size_t ln, size_t upto, int stop_on_close) {
    while (w->pos < upto && w->pos < ln) {
        const char *nl = memchr(l + w->pos, '\n', ln - w->pos);
        size_t e = nl ? (size_t)(nl - l) : ln;
        int was = w->f.in;
        fence_line(&w->f, l + w->pos, e - w->pos);
        if (!was && w->f.in) w->open_at = w->pos;
        w->pos = e < ln ? e + 1 : ln;
        if (stop_on_close && was && !w->f.in) return 1;
    }
    return 0;
}

/* The words of L's span [*a, *b) said apart (a hole's, or the rest after
 * the last batch) without code at its edges: a span that begins inside a
 * block (its opening line was spoken, or held and spoken past the hole)
 * starts after the line that closes it; one that leaves a block open
 * (cut_open, a hole's) ends before that block's opening line, whose lines
 * came after the hole and were taken as code there (release_held). */
static void span_outside_code(fence_walk *w, const char *l, size_t ln, size_t *a, size_t *b, int cut_open) {
    fence_walk_to(w, l, ln, *a, 0);
    if (w->f.in) {
        if (fence_walk_to(w, l, ln, *b, 1) && w->pos < *b) *a = w->pos;
        else { *a = *b; return; }
    }
    fence_walk_to(w, l, ln, *b, 0);
    if (cut_open && w->f.in && w->open_at >= *a && w->open_at < *b) *b = w->open_at;
}

/* How m's held batches begin, the missing batch before them unseen:
 * HOLE_CODE inside a code block it opened, HOLE_PROSE outside any,
 * HOLE_ASIS as the text stage stands (it reads on), HOLE_UNKNOWN not known
 * yet. A message ends with its blocks closed: once it is over (its final
 * batch held, or `over`: another message or its Stop came), the held text
 * begins inside a block when, read from outside one, it would leave one
 * open and its first fence line can close one (bare; it then does).
 * Before that, a bare first fence line may as well open the block the next
 * batches go on with: not known. A first fence line with an info string
 * opens one: outside. No fence line: outside once the message is over (a
 * block the stage is in was closed in the hole), else as the stage stands
 * (more lines of its block, or prose after prose: a sentence that goes on
 * past the hole stays whole). */
enum { HOLE_UNKNOWN = -1, HOLE_PROSE, HOLE_CODE, HOLE_ASIS };
static int hole_in_code(const msg *m, int over) {
    fence_scan f = {0};
    for (int k = 0; k < m->nheld; k++) fence_text(&f, m->held[k].text, m->held[k].len);
    over = over || m->held[m->nheld - 1].final;
    if (!f.lines) return over ? HOLE_PROSE : HOLE_ASIS;
    if (!f.first_bare) return HOLE_PROSE;
    if (!over) return HOLE_UNKNOWN;
    return f.in ? HOLE_CODE : HOLE_PROSE;
}

/* Speaks the held batches: those that follow on (HELD_NEXT), or all of
 * them, the missing ones given up on, becoming holes: HELD_ALL when the
 * message may go on (the wait is over, too many held), HELD_OVER when it is
 * over (another message of the turn speaks, the turn or session ends, its
 * Stop came). Past a hole the text stage starts afresh (what it held open
 * before the hole is said), inside a code block when hole_in_code says the
 * missing batch opened one. */
enum { HELD_NEXT, HELD_ALL, HELD_OVER };
static stts_status release_held(session *s, msg *m, int how, stts_error *err) {
    stts_status st = STTS_OK;
    const msg *was = s->quiet;
    const int all = how != HELD_NEXT;
    if (all && m->nheld && m->held[0].index != m->next_index && !m->held[0].quiet && s->quiet != m) {
        const int in = hole_in_code(m, how == HELD_OVER);
        const int stage = s->cur_id == m->id && text_stream_in_code_block(s->ts);
        if ((in == HOLE_CODE && !stage) || (in == HOLE_PROSE && stage)) {
            /* the block state the hole left differs from the stage's: what
             * it holds is said (an open block's notice), then afresh */
            uint64_t now = stts_now_ns();
            if (s->cur_id) text_stream_end(s->ts, now);
            s->cur_id = m->id;
            if (in == HOLE_CODE && text_stream_feed(s->ts, "```\n", 4, now, err) != STTS_OK) st = err->code;
        }
    }
    int k = 0;
    for (; k < m->nheld && (all || m->held[k].index == m->next_index); k++) {
        held_batch *b = &m->held[k];
        s->quiet = b->quiet ? m : NULL;
        if (st == STTS_OK) st = speak_batch(s, m, b->index, b->text, b->len, b->final, err);
        free(b->text);
    }
    s->quiet = was;
    memmove(m->held, m->held + k, (size_t)(m->nheld - k) * sizeof *m->held);
    m->nheld -= k;
    if (!m->nheld) held_clear(m);
    return st;
}

/* For a message with holes: its runs of consecutive batches found in l in
 * order (the first at l's start unless batch 0 is a hole; a later one at
 * the start of a line, as batches are whole lines). On a match: 1, the
 * spans of l the holes held in gs/ge (*ng of them) and where l goes on
 * after the last run in *tail. */
enum { MAX_HOLES = 64 };
static int match_runs(const msg *m, const char *l, size_t ln, size_t *gs, size_t *ge, int *ng, size_t *tail) {
    if (ln > (1u << 20)) return 0;   /* bounded work: such a Stop is reconciled as a whole */
    size_t j = 0;
    int n = 0;
    for (int i = 0; i < m->nseg;) {
        int e = i + 1;
        while (e < m->nseg && m->seg_ix[e] == m->seg_ix[e - 1] + 1) e++;
        size_t a = m->seg_off[i], b = e < m->nseg ? m->seg_off[e] : m->len;
        int gap = i > 0 || m->seg_ix[0] > 0;
        i = e;
        if (all_space(m->text + a, b - a)) continue;
        long off = -1;
        size_t p = j;
        if (!gap) off = prefix_offset(m->text + a, b - a, l + j, ln - j);
        else
            for (; p < ln; p++) {
                if (p > j && l[p - 1] != '\n') continue;
                if ((off = prefix_offset(m->text + a, b - a, l + p, ln - p)) >= 0) break;
            }
        if (off < 0) return 0;
        if (gap) {
            if (n == MAX_HOLES) return 0;
            gs[n] = j;
            ge[n] = p;
            n++;
        }
        j = p + (size_t)off;
    }
    *ng = n;
    *tail = j;
    return 1;
}

/* Every held batch of the session spoken (the turn or the session ends). */
static stts_status stage_apart_begin(session *s, stts_error *err);
static void stage_apart_end(session *s);

static void release_all_held(session *s) {
    for (int k = 0; k < s->n_msgs; k++)
        if (s->msgs[k].nheld) {
            stts_error e;
            /* A message of the turn kept at the prompt: in that turn's
             * stage, after the sentence it may hold open for this message
             * (in the session's, these words came before it). Out of
             * memory: in the session's stage. */
            int apart = s->msgs[k].over && !s->apart && stage_apart_begin(s, &e) == STTS_OK;
            release_held(s, &s->msgs[k], HELD_OVER, &e);   /* only out of memory can fail */
            if (apart) stage_apart_end(s);
        }
}

/* Turn id (taken, or freed) is over for good: its late batches are ignored. */
static void close_id(session *s, char *id) {
    if (!id) return;
    if (strlen(id) > MAX_SESSION_ID) {
        /* Not a Claude Code id (a UUID): not kept, so made-up ids cannot
         * make the ring hold 8 lines' worth of memory per session. */
        free(id);
        return;
    }
    free(s->closed[s->closed_next]);
    s->closed[s->closed_next] = id;
    s->closed_next = (s->closed_next + 1) % CLOSED_TURNS;
}

/* The current turn is over for good. */
static void close_turn(session *s) {
    close_id(s, s->turn_id);
    s->turn_id = NULL;
}

static int turn_closed(const session *s, const char *turn) {
    for (int k = 0; k < CLOSED_TURNS; k++)
        if (s->closed[k] && strcmp(s->closed[k], turn) == 0) return 1;
    return 0;
}

static void new_turn(session *s) {
    release_all_held(s);
    apart_end(s);   /* the turn kept at a prompt is long over */
    text_stream_end(s->ts, stts_now_ns());
    /* A message a Stop spoke whole (no batch of it seen yet) stays: its
     * batches, late, may be the ones that start this turn (the Stop came
     * first and carries no turn_id). */
    int keep = -1;
    for (int k = 0; k < s->n_msgs; k++)
        if (s->msgs[k].from_stop && !s->msgs[k].over) keep = k;
    for (int k = 0; k < s->n_msgs; k++)
        if (k != keep) msg_free(&s->msgs[k]);
    if (keep > 0) s->msgs[0] = s->msgs[keep];
    s->n_msgs = keep >= 0;
    s->cur_id = NULL;
    prev_clear(s);   /* a turn after the prompt's is over too: the one before it is long over */
}

static uint64_t text_hash(const char *t, size_t n);

/* The first batch of another turn after the turn the last prompt came in
 * went on after it (a prompt during a tool call; its batches came after
 * the prompt, so it was current): that turn is over. Its held batches are
 * said now (before the new turn's words), its pending words too. Its Stop
 * may still come (each hook is its own process), carrying the prompt
 * before the last one: it is a Stop of the turn before the last prompt now
 * (stale_stop), not the new turn's. Under the barge-in its messages go, as
 * at any turn's end (new_turn); under --on-prompt continue they are kept
 * as the turn before the prompt's (session.prev), so that late Stop, or a
 * late batch, says only what they did not. */
static void turn_gone_on_over(session *s) {
    char *t = s->at_prompt_turn;
    s->at_prompt_turn = NULL;
    s->went_on = 0;
    /* Without ids its late Stop is told by its text (stale_stop): what
     * ended it, its Stop's text, or its last message when none came. */
    const msg *last = NULL;
    for (int k = 0; k < s->n_msgs; k++)
        if (!s->msgs[k].aside && !s->msgs[k].over) last = &s->msgs[k];
    uint64_t ended = s->turn_over && s->stop_h ? s->stop_h : last && last->text ? text_hash(last->text, last->len) : 0;
    if (ended) {
        s->prev_h = ended;
        s->prev_silent = 0;
    }
    if (s->hub->p.stop_on_prompt) {
        free(t);
        new_turn(s);
        return;
    }
    release_all_held(s);
    apart_end(s);   /* what its messages from before the prompt left open there */
    text_stream_end(s->ts, stts_now_ns());
    prev_clear(s);   /* its messages from before the prompt are over already (hold_turn) */
    for (int k = 0; k < s->n_msgs; k++) s->msgs[k].over = 1;
    s->prev = 1;
    s->prev_turn = t && strlen(t) <= MAX_SESSION_ID ? t : NULL;   /* NULL: told less */
    if (!s->prev_turn) free(t);
}

/* pid was carried by an event of the session numbered ev or before (the
 * ring of seen_pid; one evicted from it counts as not seen). */
static int pid_seen_by(const session *s, const char *pid, unsigned long ev) {
    for (int k = 0; k < OLD_PROMPTS; k++)
        if (s->seen_pid[k] && strcmp(s->seen_pid[k], pid) == 0) return s->seen_ev[k] <= ev;
    return 0;
}

/* The session's next event, carrying pid (NULL: none): numbered, and pid
 * remembered with the first event that carried it. Ids longer than Claude
 * Code's are not kept (at most OLD_PROMPTS small strings). */
static void note_event(session *s, const char *pid) {
    s->ev_n++;
    if (!pid || strlen(pid) > MAX_SESSION_ID) return;
    for (int k = 0; k < OLD_PROMPTS; k++)
        if (s->seen_pid[k] && strcmp(s->seen_pid[k], pid) == 0) return;
    char *c = strdup(pid);
    if (!c) return;   /* out of memory: told less */
    free(s->seen_pid[s->seen_next]);
    s->seen_pid[s->seen_next] = c;
    s->seen_ev[s->seen_next] = s->ev_n;
    s->seen_next = (s->seen_next + 1) % OLD_PROMPTS;
}

/* A batch of message mid (unknown) whose text t is in the text a Stop spoke
 * whole (index 0: at its start; later ones: at a line's start): that Stop
 * was this message's, and its batches came later than the Stop's grace (a
 * slow hook, or one replayed from the spool). The Stop's message becomes
 * mid, complete, so none of its batches is spoken again. NULL otherwise.
 * over: the batch is of the turn before the prompt (session.prev), and so
 * is the Stop, however late (a batch replayed from the spool): that turn
 * is over, no later message of it can start like L. Else of the current
 * turn. */
static msg *adopt_stop_msg(session *s, const char *mid, const char *t, size_t n, long index, int over,
                           const char *pid) {
    if (all_space(t, n)) return NULL;
    for (int k = s->n_msgs - 1; k >= 0; k--) {
        msg *m = &s->msgs[k];
        if (!m->from_stop || m->over != over || m->len > (1u << 20) ||
            (!over && stts_now_ns() - m->stop_ns > (uint64_t)ADOPT_MS * 1000000u))
            continue;
        /* A batch made while another prompt was current than the Stop's
         * (prompt_id: the current prompt, claude-code-hooks.md 2), one the
         * session had never seen before that Stop came, was made after it:
         * of a new turn (no UserPromptSubmit hook installed, a queued
         * prompt taken at once), however it begins. Taken for the Stop's,
         * its message was lost (said by no one: its batches "complete", the
         * turn's Stop naming its last message only). A prompt_id seen before
         * the Stop can be the older one (a Stop made after a queued prompt
         * may carry that prompt's id: PROTOCOL.md, known limit): adopted as
         * before. turn_id and message_id cannot tell: the Stop carries
         * neither, and no batch of its message was seen. */
        if (!over && pid && m->stop_pid && strcmp(pid, m->stop_pid) != 0 && !pid_seen_by(s, pid, m->stop_ev))
            continue;
        int found = 0;
        for (size_t p = 0; p < m->len && !found; p++) {
            if (p > 0 && (index == 0 || m->text[p - 1] != '\n')) {
                if (index == 0) break;
                continue;
            }
            found = prefix_offset(t, n, m->text + p, m->len - p) >= 0;
        }
        if (!found) continue;
        char *id = strdup(mid);
        if (!id) return NULL;
        if (s->cur_id == m->id) s->cur_id = id;
        if (s->ocur == m->id) s->ocur = id;
        free(m->id);
        m->id = id;
        m->from_stop = 0;
        free(m->stop_pid);
        m->stop_pid = NULL;
        m->next_index = 0;   /* every batch of it is "after final": ignored */
        m->final = 1;
        return m;
    }
    return NULL;
}

/* The turn's id and what the last prompt left (reset_turn, hold_turn). */
static void forget_turn_id(session *s) {
    free(s->turn_id);
    s->turn_id = NULL;
    s->prompted = 0;
    free(s->prompted_id);
    s->prompted_id = NULL;
    s->md_since_prompt = 0;
}

/* Forgets the turn, including words still pending in the text stage
 * (barge-in: they belong to a reply the user talked over). */
static stts_status reset_turn(session *s, stts_error *err) {
    /* The new text stage first: on failure the session keeps a usable one
     * (flush_parked cannot forget the session). */
    text_stream *ts = NULL;
    if (text_stream_new(&s->hub->p.text, on_text, s, &ts, err) != STTS_OK) return err->code;
    text_stream_free(s->ts);
    s->ts = ts;
    apart_end(s);   /* the kept turn's words were not cut (--on-prompt continue) */
    msgs_clear(s);
    forget_turn_id(s);
    return STTS_OK;
}

/* Forgets the turn kept for its late batches (session.prev). */
static void drop_prev(session *s) {
    apart_end(s);   /* a sentence its late batches left open: said now */
    int j = 0;
    for (int k = 0; k < s->n_msgs; k++) {
        msg *m = &s->msgs[k];
        if (!m->over) { s->msgs[j++] = *m; continue; }
        msg_going(s, m);   /* its pending words go out under its id first */
        msg_free(m);
    }
    s->n_msgs = j;
    prev_clear(s);
}

/* A prompt after its turn's Stop: that turn is over (closed, so its late
 * batches are not taken for the next turn's) and the state is the next
 * turn's. What tells its late batches apart is kept (session.prev): a
 * barge-in ignores them, as it cut their words or the Stop said them (a
 * Stop that came before its message's batches says it whole: they were
 * said again after the barge-in). With --on-prompt continue nothing was
 * cut, so the turn's messages stay, marked over, and its late batches are
 * reconciled with them: forgotten, a batch whose words the Stop had said
 * looked new and was said a second time, and after the next turn's first
 * batch it made the old turn current again, so the next turn's batches
 * were ignored and its Stop said them again. */
static stts_status keep_turn(session *s, const char *pid, stts_error *err) {
    char *turn = s->turn_id && strlen(s->turn_id) <= MAX_SESSION_ID ? strdup(s->turn_id) : NULL;
    char *prompt = pid && strlen(pid) <= MAX_SESSION_ID ? strdup(pid) : NULL;   /* NULL on failure: told less */
    close_turn(s);
    if (s->hub->p.stop_on_prompt) {
        if (reset_turn(s, err) != STTS_OK) { free(turn); free(prompt); return err->code; }
    } else {
        drop_prev(s);   /* the turn before the last one is long over */
        text_stream_end(s->ts, stts_now_ns());   /* pending words are said, not dropped */
        for (int k = 0; k < s->n_msgs; k++) s->msgs[k].over = 1;
        s->prompted = 0;
        free(s->prompted_id);
        s->prompted_id = NULL;
        s->md_since_prompt = 0;
    }
    s->prev = 1;
    s->prev_turn = turn;
    s->prev_prompt = prompt;
    return STTS_OK;
}

/* A prompt before its turn's Stop, no message of it streaming (a prompt
 * during a tool call, or the turn's Stop late): the turn may go on after it
 * (its batches, then its Stop, are its own), so it is not closed here; the
 * first batch of another turn closes it (turn_before_prompt_over). The
 * barge-in resets its state; under --on-prompt continue its messages stay,
 * marked over, so that a batch of it that comes after the next turn began
 * is said only when its words were not (a copy of one said is not). */
static stts_status hold_turn(session *s, stts_error *err) {
    if (s->hub->p.stop_on_prompt) return reset_turn(s, err);
    drop_prev(s);   /* the turn before the last one is long over */
    text_stream_end(s->ts, stts_now_ns());   /* pending words are said, not dropped */
    for (int k = 0; k < s->n_msgs; k++) s->msgs[k].over = 1;
    forget_turn_id(s);
    return STTS_OK;
}

/* The first batch of another turn than the one the last prompt came in
 * (before that turn's Stop, which did not go on since: hold_turn): that
 * turn is over. Left open, a late batch of it (each hook is its own
 * process) made it current again and closed the new turn: the new turn's
 * rest was ignored, its Stop said it again, or the late batch said words
 * of it again. Closed: under the barge-in a late batch is ignored (the
 * prompt cut that reply); under --on-prompt continue it goes with the
 * turn's kept messages (session.prev), said once if its words were not. */
static void turn_before_prompt_over(session *s) {
    char *t = s->at_prompt_turn;
    s->at_prompt_turn = NULL;
    if (!s->hub->p.stop_on_prompt && !s->prev) {
        s->prev = 1;
        s->prev_turn = strlen(t) <= MAX_SESSION_ID ? strdup(t) : NULL;   /* NULL: told less */
    }
    close_id(s, t);
}

/* A batch of the turn kept at the last prompt: of its turn_id, or, when
 * none of it was seen (its Stop came first), made before that prompt
 * (made_before: replayed from the spool; or another prompt_id:
 * claude-code-hooks.md 2, the current prompt on every event) and not of an
 * older turn. Without ids nothing tells, and a batch of a turn never seen
 * is the next turn's (its Stop may have said it: known limit for CLIs
 * before v2.1.196). */
static int of_prev_turn(const session *s, const char *turn, const char *pid, int made_before) {
    if (!s->prev) return 0;
    if (turn && s->prev_turn) return strcmp(turn, s->prev_turn) == 0;
    if (turn && turn_closed(s, turn)) return 0;
    return made_before || (pid && s->prev_prompt && strcmp(pid, s->prev_prompt) != 0);
}

/* A message of the turn is still coming (no final batch yet). */
static int turn_running(const session *s) {
    for (int k = 0; k < s->n_msgs; k++)
        if (!s->msgs[k].aside && !s->msgs[k].over && !s->msgs[k].final) return 1;
    return 0;
}

static const char *str(json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static stts_status flush_parked(session *s, stts_error *err);
static stts_status reconcile(session *s, const char *l, size_t ln, int may_park, int over, const char **what,
                             stts_error *err);

/* ---- whose Stop is it ---------------------------------------------------------- */

/* 64-bit FNV-1a of t with white space compared as prefix_offset does
 * (leading and trailing ignored, every run one space); never 0. */
static uint64_t text_hash(const char *t, size_t n) {
    uint64_t h = 1469598103934665603ull;
    size_t i = 0;
    while (i < n && isspace((unsigned char)t[i])) i++;
    while (i < n) {
        unsigned char c = (unsigned char)t[i++];
        if (isspace(c)) {
            while (i < n && isspace((unsigned char)t[i])) i++;
            if (i == n) break;
            c = ' ';
        }
        h = (h ^ c) * 1099511628211ull;
    }
    return h ? h : 1;
}

static int prompt_was_old(const session *s, const char *pid) {
    for (int k = 0; k < OLD_PROMPTS; k++)
        if (s->prompt_old[k] && strcmp(s->prompt_old[k], pid) == 0) return 1;
    return 0;
}

/* pid is the current prompt now; the one before goes to the ring. Ids
 * longer than Claude Code's (UUIDs) are not kept: made-up ones cannot make
 * a session hold more than OLD_PROMPTS small strings. */
static void prompt_now(session *s, const char *pid) {
    if (!pid || strlen(pid) > MAX_SESSION_ID) return;   /* none: the last one known stays current */
    if (s->prompt_cur && strcmp(s->prompt_cur, pid) == 0) return;
    char *c = strdup(pid);
    if (!c) return;   /* out of memory: told less */
    if (s->prompt_cur) {
        free(s->prompt_old[s->prompt_old_next]);
        s->prompt_old[s->prompt_old_next] = s->prompt_cur;
        s->prompt_old_next = (s->prompt_old_next + 1) % OLD_PROMPTS;
    }
    s->prompt_cur = c;
}

/* A Stop of a turn before the last prompt acted on, delivered after it (a
 * copy of its Stop from a hook registered twice, or its only Stop, late:
 * each hook is its own process). Reconciled as the new turn's, it said the
 * old reply again, took the new turn's first message for a prefix of it
 * (said the old rest in the middle of the new turn and closed that message,
 * whose own rest was lost), or made the new turn look over.
 *
 * With prompt_id (v2.1.196+: the prompt current when the event was made) a
 * Stop carrying one of the prompts before the current one is that turn's,
 * unless that turn went on after the prompt (the prompt came during a tool
 * call, before its Stop: a batch of its turn_id since). After a prompt taken
 * for queued (session.prompted) the turn it came in goes on, and its Stop is
 * reconciled as usual. An id never seen is not taken for stale (the prompt
 * hook may have failed).
 *
 * Without ids nothing tells a Stop's turn. One whose text is exactly what
 * ended the turn before the prompt (its Stop's text, or its last message
 * when the prompt came before its Stop), once a batch of the new turn came,
 * is taken for that turn's: the new turn's reply came in batches, and its
 * own Stop, even with the same words, finds nothing unsaid in them unless
 * a batch of it is missing (the cost of this rule). Before any batch of the
 * new turn it may be the new reply's only speech (older CLIs, narration): it
 * is the new turn's, as before (parked for the grace, it is looked at again
 * once batches came). Returns 1 when stale. */
static int stale_stop(const session *s, const char *pid, const char *l, size_t ln) {
    if (s->prompted || s->went_on) return 0;
    if (pid) return prompt_was_old(s, pid);
    if (!l || !s->prev_h || !s->md_after_prompt) return 0;
    return text_hash(l, ln) == s->prev_h;
}

/* Words of the turn kept at the last prompt (its late batches, its Stop
 * after the prompt: --on-prompt continue) are said in a text stage of their
 * own (session.ots): said in the session's, they flushed a sentence of the
 * new turn still waiting for its end, cut in two ("The new reply is" |
 * "still one sentence."). That stage lives as long as the kept turn: it was
 * flushed after each late batch, so a late message's sentence split over
 * two of its batches was said in two parts ("Also this sentence" | "goes on
 * here."). Now a sentence left open waits for the next batch of its message
 * (another message's batch, or a final one, ends it as in the session's
 * stage), at most the text stage's idle time (ap_due, daemon_hub_tick), or
 * the kept turn's end (drop_prev, new_turn, the session's end). */
static stts_status stage_apart_begin(session *s, stts_error *err) {
    if (!s->ots) {
        if (text_stream_new(&s->hub->p.text, on_text, s, &s->ots, err) != STTS_OK) return err->code;
        s->ocur = NULL;
        s->ohush = 0;
    }
    /* The session's stage holds nothing of a message of the kept turn (it
     * was flushed at the prompt, and since then only the kept turn's stage
     * speaks them), which adopt_stop_msg may rename: it lets go of it. */
    const msg *m = NULL;
    for (int k = 0; k < s->n_msgs && !m; k++)
        if (s->msgs[k].id == s->cur_id) m = &s->msgs[k];
    if (m && m->over) {
        text_stream_end(s->ts, stts_now_ns());
        s->cur_id = NULL;
    }
    stage_swap(s);
    return STTS_OK;
}

static void stage_apart_end(session *s) {
    stage_swap(s);
    s->ap_due = stts_now_ns() + s->hub->p.text.idle_flush_ns;
}

/* A stale Stop (stale_stop). The barge-in cut that turn's words, or its
 * batches and first Stop said them: nothing. With --on-prompt continue
 * nothing was cut: a text equal to what ended it says nothing; otherwise
 * it is reconciled with that turn's kept messages (keep_turn) or, when that
 * turn said nothing at all, said whole; in a text stage of its own, so a
 * sentence of the new turn still waiting for its end is not cut in two.
 * Only for the turn just before the prompt: an older turn's Stop says
 * nothing. The new turn's state (its messages, a parked Stop, turn_over)
 * is never touched. */
static stts_status on_stale_stop(session *s, const char *pid, const char *l, size_t ln, const char **what,
                                 stts_error *err) {
    *what = "ignored (a Stop of the turn before the last prompt)";
    if (s->hub->p.stop_on_prompt || !l || all_space(l, ln)) return STTS_OK;
    /* What is kept (prev_h, prev_silent, the messages) is of the turn just
     * before the last prompt: an older one's Stop was reconciled long ago. */
    const char *before = s->prompt_old[(s->prompt_old_next + OLD_PROMPTS - 1) % OLD_PROMPTS];
    if (pid && (!before || strcmp(pid, before) != 0)) return STTS_OK;
    uint64_t h = text_hash(l, ln);
    if (h == s->prev_h) return STTS_OK;
    int kept = 0;
    for (int k = 0; k < s->n_msgs; k++) kept |= s->msgs[k].over && !s->msgs[k].aside;
    if (!kept && !s->prev_silent) return STTS_OK;   /* its messages were not kept: their words were said */
    if (stage_apart_begin(s, err) != STTS_OK) return err->code;
    stts_status st = reconcile(s, l, ln, 0, 1, what, err);
    stage_apart_end(s);
    if (st == STTS_OK) {
        s->prev_h = h;   /* a copy of it says nothing */
        s->prev_silent = 0;
    }
    return st;
}

/* quiet: the batch was made before the prompt that barged in (daemon_hub_hook_at);
 * over: it is of the turn kept at the last prompt (keep_turn), and goes
 * with its messages only. */
static stts_status on_message_display(session *s, json_t *pl, int quiet, int over, const char **what,
                                      stts_error *err) {
    const char *mid = str(pl, "message_id"), *turn = str(pl, "turn_id");
    json_t *delta = json_object_get(pl, "delta"), *idx = json_object_get(pl, "index");
    if (!mid || !json_is_string(delta))
        return stts_error_set(err, STTS_ERR_FORMAT, "MessageDisplay payload needs \"message_id\" and \"delta\" strings");
    if (!daemon_index_ok(pl))
        return stts_error_set(err, STTS_ERR_FORMAT, "MessageDisplay \"index\" must be a whole number from 0 to %ld",
                              DAEMON_MAX_INDEX);
    if (!over && turn && (!s->turn_id || strcmp(turn, s->turn_id) != 0)) {
        /* A parked Stop stays: Stop ends a turn, so batches of another turn
         * within the grace are its own late ones (a new prompt cannot come
         * that fast). The turn before is over: a batch of it that comes
         * later is ignored (daemon_hub_hook_at), not made current again. */
        if (!s->turn_id && s->at_prompt_turn && strcmp(turn, s->at_prompt_turn) != 0) turn_before_prompt_over(s);
        /* The turn before, still current: no prompt reset it (no
         * UserPromptSubmit hook installed), or it went on after the prompt
         * (a prompt during a tool call). Tested after close_turn, which
         * clears turn_id, this never ran (since 19264a4): the old turn's
         * messages stayed current, so the new turn's Stop was matched
         * against them (a reply equal to an old message was taken for said,
         * and lost), and its held batches waited past the new turn. */
        int had = s->turn_id != NULL;
        int went_on = had && s->at_prompt_turn && !strcmp(s->turn_id, s->at_prompt_turn);
        /* Under --on-prompt continue the turn a prompt was queued in ends
         * here as a turn that went on after the prompt does (its id kept
         * for its late batches): copied before close_turn takes it. */
        char *queued = s->prompted && !s->hub->p.stop_on_prompt && had && strlen(s->turn_id) <= MAX_SESSION_ID
                           ? strdup(s->turn_id)
                           : NULL;   /* NULL on failure: told less */
        close_turn(s);
        if (s->prompted && s->hub->p.stop_on_prompt) {
            /* The turn a prompt came in is over: what it left pending is
             * dropped, as a barge-in drops it. */
            if (reset_turn(s, err) != STTS_OK) return err->code;
        } else if (s->prompted) {
            /* --on-prompt continue cuts nothing: reset here, the turn lost
             * the words its text stage held (a line ending no sentence
             * yet) and its held batches, and its final batch, late, was
             * ignored as of a closed turn. They are said now, before the
             * new turn's words, and its messages are kept for its late
             * batches and Stop (session.prev), as for a turn that went on
             * after the prompt. */
            free(s->at_prompt_turn);
            s->at_prompt_turn = queued;
            turn_gone_on_over(s);
            forget_turn_id(s);
        } else if (went_on) {
            turn_gone_on_over(s);
        } else if (had) {
            new_turn(s);
        }
        free(s->turn_id);
        if (!(s->turn_id = strdup(turn))) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    }
    json_int_t ix;
    int has_index = daemon_json_whole(idx, &ix);
    const char *t = json_string_value(delta);
    size_t n = json_string_length(delta);
    /* Claude Code's "(no content)" stands for an empty message: as the
     * whole of one (its first batch and its last), a batch like any other
     * with no words (it was read out, and translated into an invented
     * sentence); as one batch of a longer message, Claude's own words */
    if ((has_index ? ix == 0 : !find_msg(s, mid)) && json_is_true(json_object_get(pl, "final")) &&
        ingest_is_placeholder(t, n))
        t = "", n = 0;
    msg *m = find_msg(s, mid);
    if (!m && (m = adopt_stop_msg(s, mid, t, n, has_index ? (long)ix : 0, over, str(pl, "prompt_id")))) {
        *what = "already spoken (by its Stop)";
        return STTS_OK;
    }
    if (!m && !(m = new_msg(s, mid, err))) return err->code;
    if (over) m->over = 1;   /* a message of that turn never seen: its words were not said */
    long index = has_index ? (long)ix : m->next_index;
    int final = json_is_true(json_object_get(pl, "final"));
    if (is_hole(m, index)) {
        *what = quiet ? "not spoken (made before the prompt that barged in)" : "spoken (a missing batch, late)";
        s->quiet = quiet ? m : NULL;
        stts_status st = fill_hole(s, m, index, t, n, err);
        s->quiet = NULL;
        return st;
    }
    if (m->final) { *what = "ignored (message already complete)"; return STTS_OK; }
    if (index < m->next_index) { *what = "duplicate"; return STTS_OK; }
    if (index > m->next_index) {
        /* An earlier batch is missing (its hook timed out, or it was
         * spooled and comes later): this one waits for it, so the words
         * keep their order; HOLD_MS at most (daemon_hub_tick), or the Stop
         * reconciles them. */
        int r = hold(m, index, t, n, final, quiet, err);
        if (r < 0) return err->code;
        *what = r ? "duplicate" : "held (an earlier batch is missing)";
        return m->nheld > MAX_HELD ? release_held(s, m, HELD_ALL, err) : STTS_OK;
    }
    /* Another message's held batches go first (a message is over when the
     * next one of its turn speaks). */
    for (int k = 0; k < s->n_msgs; k++)
        if (&s->msgs[k] != m && s->msgs[k].over == m->over && s->msgs[k].nheld &&
            release_held(s, &s->msgs[k], HELD_OVER, err) != STTS_OK)
            return err->code;
    *what = quiet ? "not spoken (made before the prompt that barged in)" : "spoken";
    s->quiet = quiet ? m : NULL;
    stts_status st = speak_batch(s, m, index, t, n, final, err);
    s->quiet = NULL;
    if (st == STTS_OK && m->nheld) st = release_held(s, m, HELD_NEXT, err);   /* the missing one came: those after it follow */
    /* A message complete while a Stop waits: reconcile now, no need to wait
     * (a Stop after the prompt is not the kept turn's). */
    if (st == STTS_OK && m->final && !m->over && s->parked) st = flush_parked(s, err);
    return st;
}

/* L against message m, which has holes: when m's batches are found in L
 * (and, unless m is the latest message, nothing follows them), the words
 * the holes held and what follows are spoken, and m's text becomes L (a
 * repeated Stop finds it whole). STTS_ERR_NOT_FOUND when m is not L. */
static stts_status reconcile_holes(session *s, msg *m, int latest, const char *l, size_t ln, const char **what,
                                   stts_error *err) {
    size_t gs[MAX_HOLES], ge[MAX_HOLES], tail;
    int ng;
    if (!match_runs(m, l, ln, gs, ge, &ng, &tail)) return STTS_ERR_NOT_FOUND;
    int rest = !all_space(l + tail, ln - tail);
    if (rest && !latest) return STTS_ERR_NOT_FOUND;
    int said = rest;
    fence_walk w = {0};
    for (int g = 0; g < ng; g++) {
        size_t a = gs[g], b = ge[g];
        span_outside_code(&w, l, ln, &a, &b, 1);
        if (all_space(l + a, b - a)) continue;
        said = 1;
        if (say_apart(s, m, l + a, b - a, err) != STTS_OK) return err->code;
    }
    if (rest) {
        size_t a = tail, b = ln;
        span_outside_code(&w, l, ln, &a, &b, 0);
        if (!all_space(l + a, b - a) && say_apart(s, m, l + a, b - a, err) != STTS_OK) return err->code;
    }
    *what = said ? "missing batches spoken" : "already spoken";
    /* m is L now: one run from batch 0, complete. */
    long next = m->nheld ? m->held[m->nheld - 1].index + 1 : m->next_index;
    held_clear(m);
    m->len = 0;
    m->nseg = 0;
    if (msg_append(m, l, ln) != 0 || seg_insert(m, 0, 0, 0) != 0)
        return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    m->next_index = next > m->next_index ? next : m->next_index;
    m->final = 1;
    return STTS_OK;
}

/* L as several of the turn's messages joined, the last one the latest:
 * last_assistant_message is taken to be the last message only (inferred,
 * unconfirmed), and a version giving the whole turn's text matched no
 * message, so the Stop said the whole turn again. The offset in l after the
 * messages from some k0 to latest, each found where the one before ended
 * (white space compared as in prefix_offset); -1 when none. */
static long concat_offset(session *s, int latest, int over, const char *l, size_t ln) {
    if (latest < 1 || ln > (1u << 20)) return -1;   /* bounded work */
    for (int k0 = latest - 1; k0 >= 0; k0--) {
        size_t j = 0;
        int ok = 1, n = 0;
        for (int k = k0; k <= latest && ok; k++) {
            const msg *m = &s->msgs[k];
            if (m->aside || m->over != over || all_space(m->text ? m->text : "", m->len)) continue;
            long off = has_holes(m) || m->nheld ? -1 : prefix_offset(m->text, m->len, l + j, ln - j);
            if (off < 0) ok = 0;
            else { j += (size_t)off; n++; }
        }
        if (ok && n >= 2) return (long)j;
    }
    return -1;
}

/* L waits stop_grace_ms for late batches (flush_parked then reconciles it). */
static stts_status park(session *s, const char *l, size_t ln, stts_error *err) {
    if (!(s->parked = malloc(ln + 1))) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    memcpy(s->parked, l, ln);
    s->parked[ln] = '\0';
    s->parked_len = ln;
    s->parked_due = stts_now_ns() + (uint64_t)s->hub->p.stop_grace_ms * 1000000u;
    return STTS_OK;
}

/* Reconciles L with the turn's messages; may_park: the no-match case waits
 * for late batches (parked) instead of speaking L now. over: with the
 * messages of the turn kept at the last prompt (session.prev) instead, for
 * a Stop of that turn (stale_stop), never parked. */
static stts_status reconcile(session *s, const char *l, size_t ln, int may_park, int over, const char **what,
                             stts_error *err) {
    /* The message the live path is speaking (the latest assistant message)
     * may be a prefix; notifications spoken meanwhile do not count. */
    int latest = s->n_msgs - 1;
    while (latest >= 0 && (s->msgs[latest].aside || s->msgs[latest].over != over)) latest--;
    for (int k = s->n_msgs - 1; k >= 0; k--) {
        msg *m = &s->msgs[k];
        if (m->aside || m->over != over) continue;   /* over: the turn before the prompt, its Stop reconciled */
        if (has_holes(m)) {
            stts_status st = reconcile_holes(s, m, k == latest, l, ln, what, err);
            if (st != STTS_ERR_NOT_FOUND) return st;
            continue;
        }
        /* Held batches are not spoken yet: m's text is what was. */
        long off = prefix_offset(m->text ? m->text : "", m->len, l, ln);
        if (off < 0) continue;
        if (all_space(l + off, ln - (size_t)off)) {
            *what = "already spoken";
            if (m->nheld) return release_held(s, m, HELD_OVER, err);   /* not in L: their own words */
            if (!m->final && s->cur_id == m->id) { m->final = 1; text_stream_end(s->ts, stts_now_ns()); }
            return STTS_OK;
        }
        if (k == latest) {
            *what = "rest spoken";
            held_clear(m);   /* L holds their words, and the missing ones' */
            return speak(s, m, l + off, ln - (size_t)off, 1, err);
        }
    }
    long joined = concat_offset(s, latest, over, l, ln);
    if (joined >= 0) {
        msg *m = &s->msgs[latest];
        if (all_space(l + joined, ln - (size_t)joined)) {
            *what = "already spoken";
            if (!m->final && s->cur_id == m->id) { m->final = 1; text_stream_end(s->ts, stts_now_ns()); }
            return STTS_OK;
        }
        *what = "rest spoken";
        return speak(s, m, l + joined, ln - (size_t)joined, 1, err);
    }
    if (may_park && !over && s->hub->p.stop_grace_ms > 0) {
        *what = "spoken from last_assistant_message unless its batches come within the grace";
        return park(s, l, ln, err);
    }
    char id[64];
    snprintf(id, sizeof id, "stop-%lu", ++s->stop_n);
    msg *m = new_msg(s, id, err);
    if (!m) return err->code;
    m->from_stop = 1;
    m->over = over;
    m->stop_ns = stts_now_ns();
    if (!over && s->stop_pid && !(m->stop_pid = strdup(s->stop_pid)))
        return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    m->stop_ev = s->stop_ev;
    *what = "spoken from last_assistant_message";
    return speak(s, m, l, ln, 1, err);
}

/* The parked Stop, reconciled for good (before anything else of the
 * session is acted on, and at its deadline). */
static stts_status flush_parked(session *s, stts_error *err) {
    if (!s->parked) return STTS_OK;
    char *l = s->parked;
    s->parked = NULL;
    int after_prompt = s->parked_prompt;
    s->parked_prompt = 0;
    if (!after_prompt && s->parked_noid && stale_stop(s, NULL, l, s->parked_len)) {
        /* Without ids, parked before any batch of the new turn: they came
         * meanwhile, so it is the Stop of the turn before the prompt. */
        free(l);
        return STTS_OK;
    }
    if (after_prompt && s->prompted && !s->md_since_prompt && turn_running(s)) {
        /* No batch of the turn the prompt came in since it, its message
         * still unfinished: that turn was cut (Esc), and this Stop ends the prompt's own reply, whose
         * batches never came (a narration, a hook that timed out).
         * Matched against the cut message, a reply equal to it ("Done.")
         * was not said, one that began like it lost its first words. */
        close_turn(s);
        if (reset_turn(s, err) != STTS_OK) { free(l); return err->code; }
        s->turn_ns = stts_now_ns();
    }
    const char *what;
    stts_status st = reconcile(s, l, s->parked_len, 0, 0, &what, err);
    free(l);
    return st;
}

/* after_prompt: the Stop may be the reply to the prompt taken for queued or
 * the end of the turn it came in (daemon_hub_hook_at): it waits the grace. */
static stts_status on_stop(session *s, json_t *pl, int after_prompt, const char **what, stts_error *err) {
    json_t *lv = json_object_get(pl, "last_assistant_message");
    const char *l = json_string_value(lv);
    size_t ln = json_string_length(lv);
    if (s->parked && l) {
        /* The same Stop again while the first waits for its late batches
         * (the hook registered twice, under two paths): it waits with it.
         * Reconciling now would end the grace and say L before the
         * batches, which then are said again. */
        long off = prefix_offset(s->parked, s->parked_len, l, ln);
        if (off >= 0 && all_space(l + off, ln - (size_t)off)) {
            *what = "duplicate (waiting for its batches)";
            return STTS_OK;
        }
    }
    if (flush_parked(s, err) != STTS_OK) return err->code;
    if (!l || all_space(l, ln) || ingest_is_placeholder(l, ln)) {   /* "(no content)": an empty reply */
        *what = "nothing to reconcile";
        return STTS_OK;
    }
    s->stop_h = text_hash(l, ln);
    s->parked_noid = !str(pl, "prompt_id");
    /* Whose Stop (adopt_stop_msg): kept until the next Stop taken in, so a
     * parked one, reconciled later, still has its own. */
    const char *spid = str(pl, "prompt_id");
    free(s->stop_pid);
    s->stop_pid = spid && strlen(spid) <= MAX_SESSION_ID ? strdup(spid) : NULL;   /* NULL on failure: told less */
    s->stop_ev = s->ev_n;
    if (after_prompt) {
        *what = "waiting for the turn's batches (the end of the turn a prompt came in, or that prompt's reply)";
        s->parked_prompt = 1;
        return park(s, l, ln, err);
    }
    return reconcile(s, l, ln, 1, 0, what, err);
}

static int listed(const char *list, const char *word) {
    size_t n = strlen(word);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        if (k == n && strncmp(p, word, n) == 0) return 1;
        p += k + (e ? 1 : 0);
    }
    return 0;
}

/* A short English sentence said as its own message (translated like speech).
 * The same text again within notice_dedup_ms is a duplicate (*what). */
static stts_status say(session *s, const char *id, const char *text, const char **what, stts_error *err) {
    uint64_t now = stts_now_ns();
    uint64_t window = (uint64_t)s->hub->p.notice_dedup_ms * 1000000u;
    if (window && s->last_notice && strcmp(s->last_notice, text) == 0 && now - s->last_notice_ns < window) {
        *what = "duplicate";
        return STTS_OK;
    }
    char *copy = strdup(text);
    if (!copy) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    free(s->last_notice);
    s->last_notice = copy;
    s->last_notice_ns = now;
    *what = "spoken";
    msg *m = new_msg(s, id, err);
    if (!m) return err->code;
    m->aside = 1;
    return speak(s, m, text, strlen(text), 1, err);
}

/* A subagent's speech: its MessageDisplay batches (agent_id set) and its
 * SubagentStop (whose last_assistant_message is the subagent's report to the
 * main agent). Not spoken, as the pipe mode does not speak subagents by
 * default, and kept out of the main agent's turn: a report recorded there
 * became the turn's latest message, so the main Stop no longer found its
 * own message as a prefix and said it again. "agent_id": null is no agent. */
static int subagent_speech(json_t *pl, const char *ev, const session *s) {
    if (strcmp(ev, "SubagentStop") == 0) return 1;
    json_t *a = json_object_get(pl, "agent_id");
    if (strcmp(ev, "MessageDisplay") != 0 || !a || json_is_null(a)) return 0;
    /* Under `claude --agent NAME` the main thread carries an agent_id too
     * (on every event): its batches are the reply, not a subagent's. */
    return !(s && s->main_agent && json_is_string(a) && strcmp(json_string_value(a), s->main_agent) == 0);
}

/* UserPromptSubmit, SessionStart and Stop are the main thread's (a
 * subagent ends with SubagentStop): an agent_id on them is the main
 * thread's under `claude --agent`. */
static void note_main_agent(session *s, json_t *pl, const char *ev) {
    const char *a = str(pl, "agent_id");
    if (!a || (strcmp(ev, "UserPromptSubmit") && strcmp(ev, "SessionStart") && strcmp(ev, "Stop"))) return;
    if (s->main_agent && strcmp(s->main_agent, a) == 0) return;
    char *c = strdup(a);
    if (!c) return;   /* out of memory: its batches stay unspoken, the Stop still speaks */
    free(s->main_agent);
    s->main_agent = c;
}

stts_status daemon_hub_hook(daemon_hub *h, json_t *pl, const char **what, stts_error *err) {
    return daemon_hub_hook_at(h, pl, 0, what, err);
}

stts_status daemon_hub_hook_at(daemon_hub *h, json_t *pl, uint64_t made_ns, const char **what, stts_error *err) {
    *what = "ignored";
    uint64_t t = made_ns ? made_ns : stts_now_ns();
    const char *sid = str(pl, "session_id"), *ev = str(pl, "hook_event_name");
    if (!sid || !ev)
        return stts_error_set(err, STTS_ERR_FORMAT, "hook payload needs \"session_id\" and \"hook_event_name\" strings");
    /* "" and "\u0000..." (empty as a C string) get the rule they break */
    if (!*sid || strlen(sid) > MAX_SESSION_ID || strlen(sid) != json_string_length(json_object_get(pl, "session_id")))
        return stts_error_set(err, STTS_ERR_FORMAT, "hook payload \"session_id\" must be 1 to %d bytes, without \\u0000",
                              MAX_SESSION_ID);
    /* Before any session state is touched (a parked Stop keeps its grace). */
    if (subagent_speech(pl, ev, find(h, sid))) { *what = "ignored (subagent)"; return STTS_OK; }
    if (strcmp(ev, "SessionEnd") == 0) {
        session *s = find(h, sid);
        if (s) release_all_held(s);
        if (s && flush_parked(s, err) != STTS_OK) return err->code;
        if (h->p.drop_on_session_end) h->cb.stop(h->user, sid);
        else if (s) {
            apart_end(s);   /* the kept turn's words first: they came before */
            text_stream_end(s->ts, stts_now_ns());
        }
        if (s) forget(h, s);
        *what = h->p.drop_on_session_end ? "session dropped" : "session finished";
        return STTS_OK;
    }
    int speech = !strcmp(ev, "MessageDisplay") || !strcmp(ev, "Stop");
    claim *cl = h->claims ? claimed(h, sid, stts_now_ns()) : NULL;
    if (cl && speech) { *what = "ignored (a pipe client speaks this session)"; return STTS_OK; }
    if (cl && cl->ended_ns && strcmp(ev, "SessionStart") == 0) {
        /* The session goes on interactively (resumed): its hooks speak again. */
        for (claim **pp = &h->claims; *pp; pp = &(*pp)->next)
            if (*pp == cl) { *pp = cl->next; claim_free(cl); break; }
    }
    static const char *const acted_on[] = {"MessageDisplay", "Stop", "UserPromptSubmit", "Notification",
                                           "StopFailure", "SessionStart"};
    int known = 0;
    for (size_t k = 0; k < sizeof acted_on / sizeof acted_on[0]; k++) known |= strcmp(ev, acted_on[k]) == 0;
    if (!known) {
        /* Accepted and ignored (PreToolUse added by hand, a newer event):
         * no session is made for it, but a parked Stop of a known one is
         * reconciled, as for any other event of the session. */
        session *s = find(h, sid);
        return s ? flush_parked(s, err) : STTS_OK;
    }
    session *s = get(h, sid, err);
    if (!s) return err->code;
    note_main_agent(s, pl, ev);
    const char *turn = str(pl, "turn_id"), *pid = str(pl, "prompt_id");
    note_event(s, pid);
    int md = !strcmp(ev, "MessageDisplay");
    /* A batch of the turn kept at the last prompt (keep_turn): by its ids,
     * or made before that prompt (replayed from the spool). */
    int late = md && of_prev_turn(s, turn, pid, made_ns && t < s->prompt_ns);
    if (late && !h->p.stop_on_prompt) {
        /* In a text stage of its own: a sentence of the new turn still
         * waiting for its end is not cut in two. */
        if (stage_apart_begin(s, err) != STTS_OK) return err->code;
        stts_status st = on_message_display(s, pl, 0, 1, what, err);
        stage_apart_end(s);
        return st;
    }
    if (speech && made_ns && t < s->prompt_ns && !s->prompted) {
        /* Replayed from the spool after a prompt made later was acted on:
         * that prompt barged in on this very reply and forgot its turn, so
         * a Stop would find nothing and say the whole reply again in the
         * middle of the next turn, and a batch would speak words the user
         * talked over. (A queued prompt, s->prompted, kept its turn: its
         * late batches and Stop go on as usual.) */
        *what = "ignored (stale: replayed after a later prompt)";
        return STTS_OK;
    }
    if (speech && pid && !s->prompt_cur) prompt_now(s, pid);   /* no prompt seen yet: the current one */
    if (speech && !md) {
        json_t *lv = json_object_get(pl, "last_assistant_message");
        const char *l = json_string_value(lv);
        size_t ln = l ? json_string_length(lv) : 0;
        if (stale_stop(s, pid, l, ln)) return on_stale_stop(s, pid, l, ln, what, err);
    }
    if (speech) {
        /* The turn's speech begins: its first batch (a turn_id not seen
         * before), or the first Stop or batch since the last prompt or
         * Stop (sessions whose hooks send no turn_id, or no batches). */
        if (late || (md && turn && turn_closed(s, turn))) {
            /* A late batch of a turn known over (a later turn began, the
             * Stop of the prompt after a cut turn came, or a barge-in after
             * its own Stop): its words are of before what the user asked
             * next, or were said by its Stop. */
            *what = "ignored (its turn is over)";
            return STTS_OK;
        }
        if (md) {
            s->md_after_prompt = 1;
            if (turn && s->at_prompt_turn && !strcmp(turn, s->at_prompt_turn)) s->went_on = 1;
        }
        int fresh = !s->turn_ns || s->turn_over || (md && turn && (!s->turn_id || strcmp(turn, s->turn_id)));
        /* A batch of the turn a prompt came in, carrying another prompt_id
         * than that prompt's: made while an earlier prompt was current
         * (prompt_id is the current prompt: claude-code-hooks.md 2), so
         * before the barge-in, which cut its words (after Esc, the next
         * prompt can come while a batch's hook still runs). Recorded, not
         * said; nor a sign that the turn goes on after the prompt. */
        int quiet = md && h->p.stop_on_prompt && s->prompted && pid && s->prompted_id && strcmp(pid, s->prompted_id) &&
                    turn && s->turn_id && !strcmp(turn, s->turn_id);
        if (md && s->prompted && !quiet) s->md_since_prompt = 1;
        int after_prompt = 0;
        if (!md && s->prompted && !s->md_since_prompt && turn_running(s)) {
            /* A Stop after a prompt that came while a message streamed, no
             * batch since (that message still unfinished): the end of the
             * prompt's own reply (the turn was cut with Esc, which fires no
             * hook; the reply's batches never came) or of the turn that
             * goes on (a prompt queued meanwhile; the order of its final
             * batch and Stop is not documented). prompt_id is the *current*
             * prompt (claude-code-hooks.md 2), so the queued prompt's id on
             * it proves neither; one of another prompt is the old turn's
             * Stop, and without ids (before v2.1.196) nothing tells. With a
             * grace it waits: a batch of the old turn meanwhile makes it
             * that turn's (flush_parked). Without one, the prompt's id
             * makes it the reply's, at once, and its absence the old
             * turn's. */
            int same = pid && s->prompted_id && !strcmp(pid, s->prompted_id);
            json_t *lv = json_object_get(pl, "last_assistant_message");
            int has_l = json_is_string(lv) && !all_space(json_string_value(lv), json_string_length(lv));
            if ((same || !pid || !s->prompted_id) && has_l && h->p.stop_grace_ms > 0) {
                after_prompt = 1;
            } else if (same) {
                close_turn(s);
                if (reset_turn(s, err) != STTS_OK) { forget(h, s); return err->code; }
                fresh = 1;
            }
        }
        stts_status st = md ? on_message_display(s, pl, quiet, 0, what, err) : on_stop(s, pl, after_prompt, what, err);
        if (st == STTS_OK) {
            if (fresh) s->turn_ns = t;
            s->turn_over = !md;
        }
        return st;
    }
    if (strcmp(ev, "UserPromptSubmit") == 0 && (t < s->turn_ns || t < s->prompt_ns)) {
        /* Replayed from the spool after the speech of a turn that began
         * after it was made: that is the reply to this very prompt (Claude
         * Code waits for the hook before the model sees the prompt), or to
         * a later one. Acting now would cut that reply, and forgetting the
         * turn would make its Stop say it all again. */
        *what = "ignored (stale: replayed after the reply it started had begun)";
        return STTS_OK;
    }
    if (flush_parked(s, err) != STTS_OK) return err->code;
    if (strcmp(ev, "UserPromptSubmit") == 0) {
        json_t *wv = json_object_get(pl, "prompt");
        uint64_t words = json_is_string(wv) ? text_hash(json_string_value(wv), json_string_length(wv)) : 0;
        if (pid ? (s->prompt_acted && s->prompt_cur && !strcmp(pid, s->prompt_cur)) || prompt_was_old(s, pid)
                : words && words == s->prompt_h && !s->turn_ns) {
            /* A copy of a prompt acted on (its hook registered twice, or
             * delivered late: each hook is its own process): the same
             * prompt_id, or one of the prompts before. Acted on again, it
             * cut the reply that had begun (stop) and forgot its turn, so
             * its Stop said it again; a copy of an older prompt made it
             * current again. Without ids, the same words with no speech of
             * the session since that prompt (nothing to cut or reset):
             * after the reply began nothing tells a copy from the user
             * sending the same words again, and it is acted on. */
            *what = "duplicate (a copy of a prompt acted on)";
            return STTS_OK;
        }
        s->prompt_h = words;
        s->prompt_ns = t;
        /* What tells a Stop of the turn before this prompt (stale_stop),
         * kept as it is for a copy of the same prompt (its hook registered
         * twice): that copy would otherwise make the turn before it the
         * empty one between them. */
        int again = pid && s->prompt_cur && !strcmp(pid, s->prompt_cur);
        prompt_now(s, pid);
        if (pid && s->prompt_cur && !strcmp(pid, s->prompt_cur)) s->prompt_acted = 1;
        if (!again) {
            free(s->at_prompt_turn);
            s->at_prompt_turn = NULL;
            s->went_on = s->md_after_prompt = 0;
        }
        /* Barge-in: what was said of the last turn no longer matters. */
        if (h->p.stop_on_prompt) h->cb.stop(h->user, sid);
        if (!s->turn_over && turn_running(s)) {
            /* A prompt queued while a message streams: the turn goes on
             * (its late batches continue that message, and its Stop finds
             * them), so its state stays until a batch of another turn.
             * Not after a Stop: that turn is over, and a message still
             * without its final batch was cut (Esc, an API error); kept,
             * it made every later prompt look queued, and a reply equal to
             * the turn's before it ("Done.") was taken for spoken. The
             * turn kept at the prompt before goes: this turn's batches
             * made after this prompt carry another prompt_id than that
             * one's. */
            drop_prev(s);
            s->prompted = 1;
            s->md_since_prompt = 0;
            free(s->prompted_id);
            s->prompted_id = str(pl, "prompt_id") ? strdup(str(pl, "prompt_id")) : NULL;   /* NULL: no such test */
            if (!again) {
                s->prev_h = s->stop_h = 0;   /* that turn goes on: its Stop is its own */
                s->prev_silent = 0;
            }
            *what = h->p.stop_on_prompt ? "stopped (turn still running)" : "turn still running";
            return STTS_OK;
        }
        if (!again) {
            const msg *last = NULL;
            for (int k = 0; k < s->n_msgs; k++)
                if (!s->msgs[k].aside && !s->msgs[k].over) last = &s->msgs[k];
            s->prev_h = s->turn_over && s->stop_h ? s->stop_h : last && last->text ? text_hash(last->text, last->len) : 0;
            s->prev_silent = !s->turn_over && !last;
            s->stop_h = 0;
            if (!s->turn_over && s->turn_id && strlen(s->turn_id) <= MAX_SESSION_ID)
                s->at_prompt_turn = strdup(s->turn_id);   /* NULL on failure: told less */
        }
        /* After its Stop the turn is over: a batch of it still to come
         * was said by that Stop (the rest of its message) or is of a reply
         * this barge-in cut (keep_turn). Without a Stop (or with batches
         * after it: a Stop hook kept Claude going) the turn may go on
         * after a tool call (a prompt typed meanwhile), and --on-prompt
         * continue lets it finish: not closed. */
        stts_status st = s->turn_over ? keep_turn(s, str(pl, "prompt_id"), err) : hold_turn(s, err);
        if (st != STTS_OK) { forget(h, s); return err->code; }
        s->turn_ns = 0;
        s->turn_over = 0;
        *what = h->p.stop_on_prompt ? "stopped" : "new turn";
        return STTS_OK;
    }
    if (strcmp(ev, "Notification") == 0) {
        const char *type = str(pl, "notification_type"), *m = str(pl, "message");
        if (!m) {
            *what = json_object_get(pl, "message") ? "not spoken (\"message\" is not a string)"
                                                   : "not spoken (no \"message\")";
            return STTS_OK;
        }
        if (!type || !listed(h->notify, type)) { *what = "not spoken (type)"; return STTS_OK; }
        /* nothing to say: answered so (it was "spoken", and nothing was) */
        size_t k = 0;
        while (m[k] && isspace((unsigned char)m[k])) k++;
        if (!m[k]) { *what = "not spoken (empty message)"; return STTS_OK; }
        return say(s, "notification", m, what, err);
    }
    if (strcmp(ev, "StopFailure") == 0) {
        if (!h->p.speak_stop_failure) return STTS_OK;
        const char *e = str(pl, "error");
        char text[160];
        char word[64] = "an error";
        if (e) {
            snprintf(word, sizeof word, "%s", e);
            for (char *c = word; *c; c++)
                if (*c == '_' || !isalnum((unsigned char)*c)) *c = ' ';
        }
        snprintf(text, sizeof text, "Claude Code stopped: %s.", word);
        return say(s, "stop-failure", text, what, err);
    }
    if (strcmp(ev, "SessionStart") == 0) { *what = "registered"; return STTS_OK; }
    return STTS_OK;
}

stts_status daemon_hub_line(daemon_hub *h, const char *sid, const char *line, size_t len, stts_error *err) {
    session *s = get(h, sid, err);
    if (!s) return err->code;
    if (!s->fe) {
        ingest_params ip;
        ingest_default_params(&ip);
        ip.text = h->p.text;
        if (ingest_frontend_new(&ip, on_line_sentence, on_line_warn, s, &s->fe, err) != STTS_OK) return err->code;
    }
    if (s->claim_tries < CLAIM_TRIES) {
        /* Claude Code's session_id (system/init, and every event, carry
         * it): its hooks then leave this reply to the pipe. */
        s->claim_tries++;
        json_t *j = json_loadb(line, len, 0, NULL);
        const char *cs = json_is_object(j) ? str(j, "session_id") : NULL;
        if (cs && *cs && strlen(cs) <= 256) {
            add_claim(h, cs, sid);
            s->claim_tries = CLAIM_TRIES;
        }
        json_decref(j);
    }
    ingest_stats st;
    ingest_frontend_stats(s->fe, &st);
    uint64_t no = st.lines + 1;
    return ingest_frontend_feed(s->fe, line, len, no, stts_now_ns(), 0, err);
}

void daemon_hub_end(daemon_hub *h, const char *sid) {
    uint64_t now = stts_now_ns();
    for (claim *c = h->claims; c; c = c->next)
        if (!c->ended_ns && strcmp(c->pipe, sid) == 0) c->ended_ns = now ? now : 1;
    session *s = find(h, sid);
    if (!s) return;
    if (s->fe) ingest_frontend_finish(s->fe, stts_now_ns());
    forget(h, s);
}

void daemon_hub_stopped(daemon_hub *h, const char *sid) {
    for (session *s = h->sessions; s; s = s->next)
        if (!sid || strcmp(s->id, sid) == 0) s->hush = s->ohush = 1;   /* both text stages */
}

void daemon_hub_tick(daemon_hub *h, uint64_t now) {
    for (session *s = h->sessions; s; s = s->next) {
        for (int k = 0; k < s->n_msgs; k++) {
            msg *m = &s->msgs[k];
            if (m->nheld && m->held_due <= now) {
                stts_error e;
                if (hole_in_code(m, 0) == HOLE_UNKNOWN && now - m->held_since < (uint64_t)HOLD_CODE_MS * 1000000u) {
                    m->held_due = now + (uint64_t)HOLD_MS * 1000000u;   /* in a code block or not: its end tells */
                    continue;
                }
                /* A message of the turn kept at the prompt: apart from the
                 * new turn's words (stage_apart; out of memory: in the
                 * session's stage). */
                int apart = m->over && stage_apart_begin(s, &e) == STTS_OK;
                release_held(s, m, HELD_ALL, &e);   /* only out of memory can fail */
                if (apart) stage_apart_end(s);
                if (m->final && !m->over && s->parked) flush_parked(s, &e);
            }
        }
        if (s->parked && s->parked_due <= now) {
            stts_error e;
            flush_parked(s, &e);   /* only out of memory can fail: that Stop is then not spoken */
        }
        if (s->ap_due && s->ap_due <= now) apart_end(s);   /* a late sentence no batch completed */
        uint64_t d = text_stream_deadline(s->ts);
        if (d && d <= now) text_stream_tick(s->ts, now);
        if (s->fe) {
            d = ingest_frontend_deadline(s->fe);
            if (d && d <= now) ingest_frontend_tick(s->fe, now);
        }
    }
}

size_t daemon_hub_tick_bytes(const daemon_hub *h, uint64_t now) {
    size_t n = 0;
    for (const session *s = h->sessions; s; s = s->next) {
        int held = 0;
        for (int k = 0; k < s->n_msgs; k++) {
            const msg *m = &s->msgs[k];
            if (!m->nheld || m->held_due > now) continue;
            held = 1;
            for (int b = 0; b < m->nheld; b++) n += m->held[b].len;
        }
        /* a parked Stop is reconciled when due, or when a held batch released now completes its message */
        if (s->parked && (s->parked_due <= now || held)) n += s->parked_len;
    }
    return n;
}

uint64_t daemon_hub_deadline(const daemon_hub *h) {
    uint64_t best = 0;
    for (const session *s = h->sessions; s; s = s->next) {
        uint64_t d = text_stream_deadline(s->ts);
        if (d && (!best || d < best)) best = d;
        if (s->parked && (!best || s->parked_due < best)) best = s->parked_due;
        if (s->ap_due && (!best || s->ap_due < best)) best = s->ap_due;
        for (int k = 0; k < s->n_msgs; k++)
            if (s->msgs[k].nheld && (!best || s->msgs[k].held_due < best)) best = s->msgs[k].held_due;
        if (s->fe && (d = ingest_frontend_deadline(s->fe)) && (!best || d < best)) best = d;
    }
    return best;
}

json_t *daemon_hub_sessions(const daemon_hub *h) {
    json_t *a = json_array();
    for (const session *s = h->sessions; s && a; s = s->next) json_array_append_new(a, json_string(s->id));
    return a;
}

uint64_t daemon_hub_sentences(const daemon_hub *h) { return h->seq; }
