/* test_queue.c - the daemon's queue of sentences waiting for the pipeline
 * (src/daemon/queue.c): the order it gives, against the walk serve did
 * before (every waiting sentence looked at for each pick: the first one of
 * the highest rank) and, for --order session, a walk of the rule as stated
 * (the first urgent one, else the speaking session's first, else the
 * first), over random pushes, takes, drops and rank changes; and the cost
 * of a pick with --order newest, which was linear in the backlog. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stts_daemon.h"
#include "test.h"

enum { NSESS = 6, MAXN = 4096 };

static uint64_t ranks[NSESS];
static const char *const names[NSESS] = {"s0", "s1", "s2", "s3", "s4", "s5"};

static int sess_ix(const char *id) { return id[1] - '0'; }

static uint64_t rank_of(void *user, const char *session) {
    (void)user;
    return ranks[sess_ix(session)];
}

/* The reference: the list in arrival order, the pick as serve made it. */
static int ref[MAXN];   /* item number; its session is number % NSESS */
static int ref_urgent[MAXN];
static int ref_n;
static int ref_speaking = -1;   /* --order session: the session taken from last */

static int ref_take(daemon_order order) {
    int best = 0;
    if (order == DAEMON_ORDER_NEWEST) {
        long long r = -1;
        for (int k = 0; k < ref_n; k++)
            if ((long long)ranks[ref[k] % NSESS] > r) { r = (long long)ranks[ref[k] % NSESS]; best = k; }
    } else if (order == DAEMON_ORDER_SESSION) {
        int u = -1, sp = -1;
        for (int k = ref_n - 1; k >= 0; k--) {
            if (ref_urgent[k]) u = k;
            if (ref[k] % NSESS == ref_speaking) sp = k;
        }
        best = u >= 0 ? u : sp >= 0 ? sp : 0;
        if (!ref_urgent[best]) ref_speaking = ref[best] % NSESS;
    }
    int v = ref[best];
    memmove(ref + best, ref + best + 1, (size_t)(ref_n - best - 1) * sizeof *ref);
    memmove(ref_urgent + best, ref_urgent + best + 1, (size_t)(ref_n - best - 1) * sizeof *ref_urgent);
    ref_n--;
    return v;
}

static void test_order_matches_the_walk(void) {
    srand(12345);
    for (int round = 0; round < 40; round++) {
        daemon_queue *q = NULL;
        stts_error err;
        stts_error_clear(&err);
        CHECK(daemon_queue_new(rank_of, NULL, &q, &err) == STTS_OK);
        if (!q) return;
        memset(ranks, 0, sizeof ranks);
        ref_n = 0;
        ref_speaking = -1;
        int next = 0;
        /* a quarter of the rounds in arrival order, a quarter by session */
        daemon_order order = round % 4 == 0 ? DAEMON_ORDER_ARRIVAL
                             : round % 4 == 1 ? DAEMON_ORDER_SESSION
                                              : DAEMON_ORDER_NEWEST;
        uint64_t prompt_n = 0;
        for (int step = 0; step < 3000; step++) {
            int op = rand() % 100, s = rand() % NSESS;
            if (op < 50 && ref_n < MAXN) {
                int v = next++ * NSESS + s;   /* session s */
                int *item = malloc(sizeof *item);
                *item = v;
                int urgent = rand() % 16 == 0;   /* a notification now and then */
                CHECK(daemon_queue_push(q, names[s], item, urgent, &err) == STTS_OK);
                ref_urgent[ref_n] = urgent;
                ref[ref_n++] = v;
            } else if (op < 85) {
                int *got = daemon_queue_take(q, order);
                daemon_queue_handed(q);   /* as serve's speaker, once it is in the pipeline */
                if (!ref_n) { CHECK(got == NULL); continue; }
                int want = ref_take(order);
                CHECK_MSG(got && *got == want, "round %d step %d: took %d, the walk takes %d", round, step,
                          got ? *got : -1, want);
                free(got);
            } else if (op < 93) {
                /* A prompt: the newest rank; now and then a tie, or back to 0
                 * (serve forgets ranks past 512 sessions). */
                int how = rand() % 10;
                ranks[s] = how == 0 ? 0 : how == 1 ? ranks[(s + 1) % NSESS] : ++prompt_n;
                daemon_queue_rerank(q, how == 1 && rand() % 2 ? NULL : names[s]);
            } else if (op < 97) {
                size_t n = daemon_queue_drop(q, names[s], free);
                if (ref_speaking == s) ref_speaking = -1;   /* a dropped session gives the speaker up */
                int kept = 0, dropped = 0;
                for (int k = 0; k < ref_n; k++) {
                    if (ref[k] % NSESS == s) {
                        dropped++;
                    } else {
                        ref_urgent[kept] = ref_urgent[k];
                        ref[kept++] = ref[k];
                    }
                }
                ref_n = kept;
                CHECK(n == (size_t)dropped);
            }
            CHECK(daemon_queue_count(q) == (size_t)ref_n);
            int has = 0;
            size_t of_s = 0;
            for (int k = 0; k < ref_n; k++) of_s += ref[k] % NSESS == s;
            CHECK(daemon_queue_session_count(q, names[s]) == of_s);
            for (int k = 0; k < ref_n && !has; k++) has = ref[k] % NSESS == s;
            CHECK(daemon_queue_has(q, names[s]) == has);
        }
        daemon_queue_free(q, free);
    }
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void ignore(void *p) { (void)p; }

/* --order newest over a backlog (a 2 MB message is 80000 sentences): the
 * session spoken first is the one whose sentences came last, so a walk
 * from the oldest crossed all the others' at every pick. 200000 picks of
 * 400000 waiting take milliseconds; the walk took hours. */
static void test_newest_pick_cost(void) {
    enum { N = 200000 };
    daemon_queue *q = NULL;
    stts_error err;
    stts_error_clear(&err);
    memset(ranks, 0, sizeof ranks);
    ranks[1] = 1;
    CHECK(daemon_queue_new(rank_of, NULL, &q, &err) == STTS_OK);
    if (!q) return;
    static int items[2 * N];
    for (int k = 0; k < 2 * N; k++) {
        items[k] = k;
        CHECK(daemon_queue_push(q, names[k < N ? 0 : 1], &items[k], 0, &err) == STTS_OK);
    }
    double t0 = cpu_s(), limit = 5.0;   /* far above the queue's (~0.05 s), far below the walk's */
    int ok = 1, k = 0;
    for (; k < 2 * N && ok; k++) {
        int *got = daemon_queue_take(q, DAEMON_ORDER_NEWEST);
        ok = got && *got == (k < N ? N + k : k - N);   /* all of s1, then s0, each oldest first */
        if ((k & 1023) == 0 && cpu_s() - t0 > limit) break;
    }
    CHECK_MSG(ok, "pick %d out of order", k - 1);
    CHECK_MSG(k == 2 * N, "%d of %d picks in %.1f s of CPU: a pick costs the length of the queue", k, 2 * N,
              cpu_s() - t0);
    daemon_queue_free(q, ignore);
}

/* serve's speaker takes a sentence under its lock and pushes it into the
 * pipeline without it. A stop in between (the session's items dropped here,
 * then the pipeline's stopped) found it in neither, and it was spoken after
 * the stop. The queue keeps the item in hand until it is handed on: a drop
 * of its session (or of all) marks it, one of another session does not, and
 * the items queued after the stop are untouched. */
static void test_drop_while_in_hand(void) {
    daemon_queue *q = NULL;
    stts_error err;
    stts_error_clear(&err);
    CHECK(daemon_queue_new(NULL, NULL, &q, &err) == STTS_OK);
    if (!q) return;
    static int items[6] = {0, 1, 2, 3, 4, 5};
    CHECK(daemon_queue_push(q, "a", &items[0], 0, &err) == STTS_OK);
    CHECK(daemon_queue_push(q, "a", &items[1], 0, &err) == STTS_OK);
    CHECK(daemon_queue_take(q, DAEMON_ORDER_ARRIVAL) == &items[0]);   /* in hand */
    CHECK(daemon_queue_has(q, "a") && !daemon_queue_has(q, "b"));
    CHECK(daemon_queue_drop(q, "b", NULL) == 0);
    CHECK(!daemon_queue_hand_dropped(q));
    CHECK(daemon_queue_drop(q, "a", NULL) == 1);   /* the stop: items[1] queued, items[0] in hand */
    CHECK(daemon_queue_hand_dropped(q));
    CHECK(!daemon_queue_has(q, "a"));
    CHECK(daemon_queue_push(q, "a", &items[2], 0, &err) == STTS_OK);   /* after the stop */
    CHECK(daemon_queue_handed(q) == 1);   /* the speaker stops items[0] */
    CHECK(daemon_queue_take(q, DAEMON_ORDER_ARRIVAL) == &items[2]);
    CHECK(daemon_queue_handed(q) == 0);   /* nothing dropped it: spoken */
    CHECK(daemon_queue_take(q, DAEMON_ORDER_ARRIVAL) == NULL && daemon_queue_count(q) == 0);
    /* A stop of everything covers the item in hand too. */
    CHECK(daemon_queue_push(q, "c", &items[3], 0, &err) == STTS_OK);
    CHECK(daemon_queue_take(q, DAEMON_ORDER_NEWEST) == &items[3]);
    CHECK(daemon_queue_drop(q, NULL, NULL) == 0);
    CHECK(daemon_queue_handed(q) == 1);
    CHECK(!daemon_queue_has(q, "c"));
    daemon_queue_free(q, NULL);
}

int main(void) {
    TEST_RUN(test_order_matches_the_walk);
    TEST_RUN(test_newest_pick_cost);
    TEST_RUN(test_drop_while_in_hand);
    return TEST_SUMMARY();
}
