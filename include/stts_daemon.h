/* stts_daemon.h - the daemon's library side (stream-tts serve): the
 * protocol reader (docs/PROTOCOL.md) and the hub
 * that turns Claude Code hook payloads and pipe clients' stream-json lines
 * into sentences, one text stage per session, with the MessageDisplay/Stop
 * reconciliation that speaks every sentence once.
 *
 * The socket path rule and spool are stts_client's. The socket server, threads and the speech pipeline are the CLI's
 * (tools/stream-tts/cmd_serve.c); nothing here prints or touches sockets.
 * Thread safety: a hub is used by one thread at a time. */
#ifndef STTS_DAEMON_H
#define STTS_DAEMON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "stts_client.h"
#include "stts_common.h"
#include "stts_ingest.h"
#include "stts_text.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DAEMON_PROTOCOL_VERSION 1
/* Longest request line accepted (a -p MessageDisplay delta is a whole
 * message): the clients' limit. The socket path rule, the folder checks and
 * the spool are stts_client's (include/stts_client.h), shared with them. */
#define DAEMON_MAX_LINE ((size_t)CLIENT_LINE_MAX)
/* Largest MessageDisplay "index" accepted (a batch number: 0, 1, 2, ...);
 * a negative or larger one is refused (PROTOCOL.md). */
#define DAEMON_MAX_INDEX 1000000L
#define DAEMON_MAX_INDEX_STR "1000000"

/* ---- protocol ----------------------------------------------------------------- */
typedef enum {
    DAEMON_OP_HOOK = 0, DAEMON_OP_LINE, DAEMON_OP_END, DAEMON_OP_STOP, DAEMON_OP_SKIP, DAEMON_OP_PAUSE,
    DAEMON_OP_RESUME, DAEMON_OP_REPLAY, DAEMON_OP_SPEED, DAEMON_OP_MUTE, DAEMON_OP_UNMUTE, DAEMON_OP_STATUS,
    DAEMON_OP_PING
} daemon_op;
const char *daemon_op_name(daemon_op op);

typedef struct {
    daemon_op op;
    json_t *root;          /* the whole request (owned; daemon_request_clear frees) */
    json_t *payload;       /* hook: the hook's object (borrowed from root) */
    const char *session;   /* line/end/mute/unmute: may be NULL for mute/unmute */
    const char *line;      /* line: one stream-json line */
    size_t line_len;
    int n;                 /* replay: how many (default 1) */
    double x;              /* speed */
    int wait;              /* end: reply only when the session's speech is done */
} daemon_request;

/* Parses one request line (without '\n'). Refuses, with a message naming
 * the problem: not JSON, not an object, "v" missing or not 1, unknown "op",
 * a field of the wrong type or out of range, longer than DAEMON_MAX_LINE,
 * a MessageDisplay payload whose integer "index" is outside 0..DAEMON_MAX_INDEX. */
stts_status daemon_request_parse(const char *line, size_t len, daemon_request *req, stts_error *err);
void daemon_request_clear(daemon_request *req);
/* 0 when payload is a MessageDisplay whose whole-number "index" is outside
 * 0..DAEMON_MAX_INDEX (the hub refuses it too); 1 otherwise. */
int daemon_index_ok(json_t *payload);
/* A whole number: a JSON integer, or a real with an integral value up to
 * 2^53 (requests are parsed with JSON_DECODE_INT_AS_REAL, so that a hook
 * payload holding an integer beyond 64 bits, e.g. in a tool's input, is
 * still JSON: every number then reads as a real). 1 and *out set, or 0. */
int daemon_json_whole(const json_t *v, json_int_t *out);
/* {"v":1,"ok":false,"error":msg}\n, malloc'd. */
char *daemon_reply_error(const char *msg);
/* Adds "v":1,"ok":true to obj (taken), serializes it with a '\n'; malloc'd. */
char *daemon_reply_ok(json_t *obj);

/* ---- hub --------------------------------------------------------------------- */
typedef struct {
    text_params text;           /* segmentation options and the notice language */
    int stop_on_prompt;         /* UserPromptSubmit stops that session's speech (1) */
    int drop_on_session_end;    /* SessionEnd drops its queued speech (0: it finishes) */
    const char *notify_types;   /* Notification types spoken, comma-separated; "" none */
    int speak_stop_failure;     /* StopFailure: a short spoken notice (1) */
    /* A Stop whose last_assistant_message matches no message of the turn
     * waits this long for late MessageDisplay batches before it is spoken
     * whole (the order of the last batch and Stop is not documented);
     * 0 speaks it at once. Default 250. */
    int stop_grace_ms;
    /* A Notification or StopFailure notice identical to the last one of
     * its session within this long is not spoken again (the same hook
     * registered twice, in user and project settings). Default 2000; 0 off. */
    int notice_dedup_ms;
} daemon_hub_params;

void daemon_hub_default_params(daemon_hub_params *p);

typedef struct {
    /* A sentence to speak for session (its message_id is the hook's). */
    void (*sentence)(void *user, const char *session, const ingest_sentence *s);
    /* Drop session's queued and playing speech now (barge-in, SessionEnd). */
    void (*stop)(void *user, const char *session);
} daemon_hub_callbacks;

typedef struct daemon_hub daemon_hub;

stts_status daemon_hub_new(const daemon_hub_params *p, const daemon_hub_callbacks *cb, void *user,
                           daemon_hub **out, stts_error *err);
void daemon_hub_free(daemon_hub *h);
/* One hook payload, acted on by hook_event_name. *what gets a short word
 * for the reply and the log ("spoken", "duplicate", "ignored", ...).
 * Fails on a payload without session_id or hook_event_name, or NOMEM. */
stts_status daemon_hub_hook(daemon_hub *h, json_t *payload, const char **what, stts_error *err);
/* The same for a request made at made_ns (stts_now_ns's clock) and acted on
 * only now: one replayed from the spool, after requests that came straight
 * in. A UserPromptSubmit made before its session's current turn began to
 * speak, or before a prompt already acted on, is stale: the reply it
 * started is what it would stop, so it does nothing (*what "ignored
 * (stale: ...)"). made_ns 0 is now. */
stts_status daemon_hub_hook_at(daemon_hub *h, json_t *payload, uint64_t made_ns, const char **what,
                               stts_error *err);
/* The server stopped session's speech (NULL: every session's): ctl stop,
 * mute, a barge-in. Words still pending in its text stage (a sentence not
 * ended yet) are not said when they are flushed (idle timer, end of the
 * message or session); new words of the session lift this, and a sentence
 * they complete is said whole. */
void daemon_hub_stopped(daemon_hub *h, const char *session);
/* A pipe client's stream-json line, and its end of input. */
stts_status daemon_hub_line(daemon_hub *h, const char *session, const char *line, size_t len, stts_error *err);
void daemon_hub_end(daemon_hub *h, const char *session);
/* Idle timers of every session's text stage. */
void daemon_hub_tick(daemon_hub *h, uint64_t now_ns);
uint64_t daemon_hub_deadline(const daemon_hub *h);
/* Bytes of text the timers due at now would hand to the text stages (held
 * batches released, a parked Stop's message said; pending words flushed
 * are not counted: one sentence at most), so that
 * the server can run a long tick off its poll loop (cmd_serve's hub job). */
size_t daemon_hub_tick_bytes(const daemon_hub *h, uint64_t now_ns);
/* Sessions known (registered or with speech), as a JSON array of ids. */
json_t *daemon_hub_sessions(const daemon_hub *h);
/* Sentences emitted so far, all sessions. */
uint64_t daemon_hub_sentences(const daemon_hub *h);

/* ---- sentences waiting for the speech pipeline ---------------------------------- */
/* Items (the caller's) of sessions, taken in one of three orders
 * (daemon_order). Push, take, rerank and daemon_queue_has are O(log
 * sessions); dropping a session's items is O(their number); a take in
 * DAEMON_ORDER_SESSION with urgent items waiting walks to the oldest of them.
 * One thread at a time (serve holds its lock). */
typedef struct daemon_queue daemon_queue;
typedef enum {
    /* the oldest item, whoever's */
    DAEMON_ORDER_ARRIVAL = 0,
    /* the oldest item of the session of highest rank (the caller's: serve's
     * --order newest ranks a session by its last prompt), the sessions of
     * equal rank (all of rank 0, say) in arrival order between them */
    DAEMON_ORDER_NEWEST = 1,
    /* the session taken from last keeps the speaker while it has items, so
     * two replies streaming at once are not interleaved sentence by
     * sentence; then the oldest item, whoever's. Urgent items (a permission
     * prompt) go first, oldest first, and leave the speaker where it was. */
    DAEMON_ORDER_SESSION = 2,
} daemon_order;
/* A session's rank, asked when it gets its first waiting item and on
 * daemon_queue_rerank; higher speaks first, 0 when it has none. */
typedef uint64_t (*daemon_rank_fn)(void *user, const char *session);

stts_status daemon_queue_new(daemon_rank_fn rank, void *user, daemon_queue **out, stts_error *err);
/* Frees the queue and, through free_item (may be NULL), the items still in it. */
void daemon_queue_free(daemon_queue *q, void (*free_item)(void *));
/* urgent: see DAEMON_ORDER_SESSION (the other orders ignore it). */
stts_status daemon_queue_push(daemon_queue *q, const char *session, void *item, int urgent, stts_error *err);
/* The next item, removed; NULL when empty. It is then "in hand" (its
 * session remembered) until daemon_queue_handed: the caller hands it on
 * (serve: into the pipeline) without holding its lock. */
void *daemon_queue_take(daemon_queue *q, daemon_order order);
/* 1 when a drop of the in-hand item's session (or of all) came after it
 * was taken: a stop that found it neither queued nor in the pipeline. The
 * caller does not hand it on (hand_dropped, before), or stops it where it
 * went (handed, after). daemon_queue_handed ends the hand. */
int daemon_queue_hand_dropped(const daemon_queue *q);
int daemon_queue_handed(daemon_queue *q);
/* Removes the items of session (NULL: all) through free_item; how many (the
 * item in hand is not counted: it is only marked, see above). */
size_t daemon_queue_drop(daemon_queue *q, const char *session, void (*free_item)(void *));
size_t daemon_queue_count(const daemon_queue *q);
/* Items of session waiting (not the one in hand). O(1). */
size_t daemon_queue_session_count(const daemon_queue *q, const char *session);
/* session has items queued, or the item in hand (not dropped). */
int daemon_queue_has(const daemon_queue *q, const char *session);
/* The rank of session (NULL: of every session) changed: asked again. */
void daemon_queue_rerank(daemon_queue *q, const char *session);

#ifdef __cplusplus
}
#endif
#endif
