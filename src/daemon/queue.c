/* queue.c - the daemon's sentences waiting for the speech pipeline (see
 * include/stts_daemon.h, daemon_queue).
 *
 * Every item is on two lists: all items in arrival order (doubly linked, so
 * that an item taken from the middle leaves in O(1)) and its session's items
 * in arrival order. Sessions with items are kept in a binary max-heap by
 * (rank, arrival of their oldest item): with --order newest the next item
 * is the heap top's oldest. That is what walking the whole queue for the
 * first item of the highest rank gave (the sessions of rank 0 share the
 * rank, so the earliest of their oldest items wins, i.e. arrival order
 * between them), in O(log sessions) instead of O(items) per pick: a backlog
 * of 80000 sentences took 80000 x 80000 steps to speak.
 *
 * A session's record (hash chain, heap slot) exists while it has items.
 *
 * --order session keeps the id of the session it took from last
 * ("speaking"); its record is found by the hash in O(1). Urgent items are
 * few (notifications): a count says whether any wait, and a take walks the
 * arrival list to the oldest only then.
 *
 * The item taken last is "in hand" (its session remembered) until the
 * caller says it is handed on (daemon_queue_handed): serve's speaker takes
 * a sentence under its lock and pushes it into the pipeline without it (a
 * push may block), so a stop in between found the sentence neither here nor
 * in the pipeline, and it was spoken after the stop. A drop covering the
 * item in hand now marks it, and the speaker stops it itself. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "stts_daemon.h"

typedef struct qsession qsession;

typedef struct qitem {
    struct qitem *prev, *next;   /* arrival order, every session */
    struct qitem *snext;         /* arrival order, its session */
    qsession *s;
    uint64_t seq;                /* arrival number */
    int urgent;
    void *data;
} qitem;

struct qsession {
    qsession *hnext;             /* hash chain */
    char *id;
    qitem *head, *tail;
    size_t n;                    /* its items */
    uint64_t rank;
    size_t heap_ix;
};

struct daemon_queue {
    qitem *head, *tail;
    size_t n;
    uint64_t seq;
    qsession **buckets;
    size_t nbuckets, nsessions;  /* nbuckets: a power of two */
    qsession **heap;             /* sessions with items; heap[0] speaks next (newest first) */
    size_t heap_cap;
    daemon_rank_fn rank;
    void *user;
    size_t n_urgent;             /* urgent items waiting */
    char *speaking;              /* DAEMON_ORDER_SESSION: the session taken from last */
    int in_hand;                 /* an item was taken and is not handed on yet */
    int hand_dropped;            /* ... and a drop of its session (or of all) came meanwhile */
    char *hand;                  /* its session; NULL (out of memory): any drop covers it */
};

static size_t hash(const char *s) {
    size_t h = 1469598103934665603ull;   /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* a goes before b: higher rank, else the older oldest item. */
static int before(const qsession *a, const qsession *b) {
    if (a->rank != b->rank) return a->rank > b->rank;
    return a->head->seq < b->head->seq;
}

static void heap_set(daemon_queue *q, size_t i, qsession *s) {
    q->heap[i] = s;
    s->heap_ix = i;
}

static void sift_down(daemon_queue *q, size_t i) {
    qsession *s = q->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->nsessions) break;
        if (c + 1 < q->nsessions && before(q->heap[c + 1], q->heap[c])) c++;
        if (!before(q->heap[c], s)) break;
        heap_set(q, i, q->heap[c]);
        i = c;
    }
    heap_set(q, i, s);
}

/* Moves heap[i] to its place (its key changed either way). */
static void heap_fix(daemon_queue *q, size_t i) {
    qsession *s = q->heap[i];
    while (i > 0 && before(s, q->heap[(i - 1) / 2])) {
        heap_set(q, i, q->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(q, i, s);
    sift_down(q, i);
}

static qsession **slot(const daemon_queue *q, const char *id) {
    qsession **pp = &q->buckets[hash(id) & (q->nbuckets - 1)];
    while (*pp && strcmp((*pp)->id, id) != 0) pp = &(*pp)->hnext;
    return pp;
}

static qsession *find(const daemon_queue *q, const char *id) { return *slot(q, id); }

/* Room for one more session: hash table and heap grown ahead. */
static int grow(daemon_queue *q) {
    if (q->nsessions + 1 > q->heap_cap) {
        size_t nc = q->heap_cap * 2;
        qsession **h = realloc(q->heap, nc * sizeof *h);
        if (!h) return -1;
        q->heap = h;
        q->heap_cap = nc;
    }
    if (q->nsessions + 1 > q->nbuckets) {
        size_t nb = q->nbuckets * 2;
        qsession **b = calloc(nb, sizeof *b);
        if (!b) return -1;
        for (size_t k = 0; k < q->nbuckets; k++)
            for (qsession *s = q->buckets[k], *nx; s; s = nx) {
                nx = s->hnext;
                size_t j = hash(s->id) & (nb - 1);
                s->hnext = b[j];
                b[j] = s;
            }
        free(q->buckets);
        q->buckets = b;
        q->nbuckets = nb;
    }
    return 0;
}

/* Forgets session s (it has no items left). */
static void session_remove(daemon_queue *q, qsession *s) {
    qsession **pp = slot(q, s->id);
    *pp = s->hnext;
    size_t i = s->heap_ix;
    q->nsessions--;
    if (i < q->nsessions) {
        heap_set(q, i, q->heap[q->nsessions]);
        heap_fix(q, i);
    }
    free(s->id);
    free(s);
}

static void unlink_item(daemon_queue *q, qitem *it) {
    if (it->prev) it->prev->next = it->next;
    else q->head = it->next;
    if (it->next) it->next->prev = it->prev;
    else q->tail = it->prev;
    q->n--;
    if (it->urgent) q->n_urgent--;
}

stts_status daemon_queue_new(daemon_rank_fn rank, void *user, daemon_queue **out, stts_error *err) {
    *out = NULL;
    daemon_queue *q = calloc(1, sizeof *q);
    if (q) {
        q->nbuckets = q->heap_cap = 16;
        q->buckets = calloc(q->nbuckets, sizeof *q->buckets);
        q->heap = malloc(q->heap_cap * sizeof *q->heap);
    }
    if (!q || !q->buckets || !q->heap) {
        if (q) { free(q->buckets); free(q->heap); free(q); }
        return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    }
    q->rank = rank;
    q->user = user;
    *out = q;
    return STTS_OK;
}

void daemon_queue_free(daemon_queue *q, void (*free_item)(void *)) {
    if (!q) return;
    daemon_queue_drop(q, NULL, free_item);
    free(q->hand);
    free(q->speaking);
    free(q->buckets);
    free(q->heap);
    free(q);
}

stts_status daemon_queue_push(daemon_queue *q, const char *session, void *item, int urgent, stts_error *err) {
    qitem *it = calloc(1, sizeof *it);
    if (!it) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    qsession *s = find(q, session);
    if (!s) {
        if (grow(q) != 0 || !(s = calloc(1, sizeof *s)) || !(s->id = strdup(session))) {
            free(s);
            free(it);
            return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
        }
        s->rank = q->rank ? q->rank(q->user, session) : 0;
        qsession **pp = slot(q, session);
        *pp = s;
    }
    it->s = s;
    it->seq = q->seq++;
    it->urgent = urgent != 0;
    q->n_urgent += it->urgent;
    it->data = item;
    it->prev = q->tail;
    if (q->tail) q->tail->next = it;
    else q->head = it;
    q->tail = it;
    q->n++;
    s->n++;
    if (s->tail) {
        s->tail->snext = it;   /* its oldest item, its key, is unchanged */
        s->tail = it;
    } else {
        s->head = s->tail = it;
        heap_set(q, q->nsessions++, s);
        heap_fix(q, s->heap_ix);
    }
    return STTS_OK;
}

/* The item that order takes next; q->n > 0. */
static qitem *next_item(const daemon_queue *q, daemon_order order) {
    if (order == DAEMON_ORDER_NEWEST) return q->heap[0]->head;
    if (order == DAEMON_ORDER_SESSION) {
        if (q->n_urgent)
            for (qitem *it = q->head; it; it = it->next)
                if (it->urgent) return it;
        qsession *s = q->speaking ? find(q, q->speaking) : NULL;
        if (s) return s->head;
    }
    return q->head;   /* arrival order: the oldest item, which is its session's oldest */
}

/* it, which is its session's oldest, removed (nothing in hand changes); its data. */
static void *remove_item(daemon_queue *q, qitem *it) {
    qsession *s = it->s;
    s->n--;
    unlink_item(q, it);
    s->head = it->snext;
    void *data = it->data;
    free(it);
    if (!s->head) {
        s->tail = NULL;
        session_remove(q, s);
    } else {
        heap_fix(q, s->heap_ix);   /* its oldest item is younger now */
    }
    return data;
}

/* The oldest urgent item need not be its session's oldest: it is unlinked
 * from its session's list where it is. */
static void *remove_urgent(daemon_queue *q, qitem *it) {
    qsession *s = it->s;
    if (s->head == it) return remove_item(q, it);
    qitem *p = s->head;
    while (p->snext != it) p = p->snext;
    p->snext = it->snext;
    if (s->tail == it) s->tail = p;
    s->n--;
    unlink_item(q, it);   /* its session's oldest item, its key, is unchanged */
    void *data = it->data;
    free(it);
    return data;
}

void *daemon_queue_take(daemon_queue *q, daemon_order order) {
    if (!q->n) return NULL;
    qitem *it = next_item(q, order);
    free(q->hand);
    q->hand = strdup(it->s->id);
    q->in_hand = 1;
    q->hand_dropped = 0;
    if (order == DAEMON_ORDER_SESSION && !it->urgent && (!q->speaking || strcmp(q->speaking, it->s->id) != 0)) {
        free(q->speaking);
        q->speaking = strdup(it->s->id);   /* NULL (out of memory): arrival order for the next take */
    }
    return it->urgent ? remove_urgent(q, it) : remove_item(q, it);
}

int daemon_queue_hand_dropped(const daemon_queue *q) { return q->in_hand && q->hand_dropped; }

int daemon_queue_handed(daemon_queue *q) {
    int dropped = q->in_hand && q->hand_dropped;
    q->in_hand = q->hand_dropped = 0;
    free(q->hand);
    q->hand = NULL;
    return dropped;
}

size_t daemon_queue_drop(daemon_queue *q, const char *session, void (*free_item)(void *)) {
    size_t n = 0;
    /* The item in hand is no longer here: the drop is noted for it. */
    if (q->in_hand && (!session || !q->hand || strcmp(q->hand, session) == 0)) q->hand_dropped = 1;
    /* A dropped session (a stop, a prompt's barge-in) no longer holds the
     * speaker: its next sentences wait their turn behind the others'. */
    if (q->speaking && (!session || strcmp(q->speaking, session) == 0)) {
        free(q->speaking);
        q->speaking = NULL;
    }
    if (!session) {
        while (q->n) {
            void *d = remove_item(q, q->head);
            if (free_item) free_item(d);
            n++;
        }
        return n;
    }
    qsession *s = find(q, session);
    if (!s) return 0;
    for (qitem *it = s->head, *nx; it; it = nx) {
        nx = it->snext;
        unlink_item(q, it);
        if (free_item) free_item(it->data);
        free(it);
        n++;
    }
    s->head = s->tail = NULL;
    session_remove(q, s);
    return n;
}

size_t daemon_queue_count(const daemon_queue *q) { return q->n; }

size_t daemon_queue_session_count(const daemon_queue *q, const char *session) {
    const qsession *s = find(q, session);
    return s ? s->n : 0;
}

int daemon_queue_has(const daemon_queue *q, const char *session) {
    /* The item in hand is on its way to the pipeline: not spoken yet (an
     * end with "wait" answered before it was pushed). */
    if (q->in_hand && !q->hand_dropped && (!q->hand || strcmp(q->hand, session) == 0)) return 1;
    return find(q, session) != NULL;
}

void daemon_queue_rerank(daemon_queue *q, const char *session) {
    if (!q->rank) return;
    if (session) {
        qsession *s = find(q, session);
        if (!s) return;
        s->rank = q->rank(q->user, session);
        heap_fix(q, s->heap_ix);
        return;
    }
    for (size_t i = 0; i < q->nsessions; i++) q->heap[i]->rank = q->rank(q->user, q->heap[i]->id);
    for (size_t i = q->nsessions / 2; i-- > 0;) sift_down(q, i);   /* heapify */
}
