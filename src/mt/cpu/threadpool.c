/* threadpool.c - see threadpool.h. A job is published by bumping an atomic
 * generation counter; workers notice it by spinning (cheap while a decoder
 * step issues kernel after kernel) or, after a while, by waiting on a
 * condition variable. Completion is an atomic count the caller spins on. */
#define _POSIX_C_SOURCE 200809L
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* Spin iterations before a worker sleeps (~tens of microseconds). */
#define SPIN_LIMIT 20000

struct mt_pool {
    int n;
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;       /* bumped once per job */
    atomic_int remaining;  /* workers still running the current job */
    atomic_int stop;
    mt_pool_fn fn;         /* written before gen is bumped (release) */
    void *ctx;
};

typedef struct {
    mt_pool *p;
    int tid;
} worker_arg;

static void *worker_main(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    mt_pool *p = wa.p;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
            if (atomic_load_explicit(&p->stop, memory_order_acquire)) return NULL;
            if (++spins < SPIN_LIMIT) {
                CPU_RELAX();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen &&
                   !atomic_load_explicit(&p->stop, memory_order_acquire))
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
            spins = 0;
        }
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) return NULL;
        seen = g;
        p->fn(p->ctx, wa.tid, p->n);
        atomic_fetch_sub_explicit(&p->remaining, 1, memory_order_acq_rel);
    }
}

mt_pool *mt_pool_new(int threads) {
    if (threads < 1) threads = 1;
    mt_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    atomic_init(&p->gen, 0);
    atomic_init(&p->remaining, 0);
    atomic_init(&p->stop, 0);
    p->th = calloc((size_t)threads, sizeof *p->th);
    if (!p->th) {
        free(p);
        return NULL;
    }
    for (int i = 1; i < threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa || (wa->p = p, wa->tid = i, pthread_create(&p->th[i], NULL, worker_main, wa) != 0)) {
            free(wa);
            p->n = i; /* join what started */
            mt_pool_free(p);
            return NULL;
        }
    }
    return p;
}

void mt_pool_free(mt_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store_explicit(&p->stop, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->th);
    free(p);
}

int mt_pool_threads(const mt_pool *p) { return p->n; }

void mt_pool_run(mt_pool *p, mt_pool_fn fn, void *ctx) {
    if (p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->remaining, p->n - 1, memory_order_release);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_acq_rel);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, 0, p->n);
    int spins = 0;
    while (atomic_load_explicit(&p->remaining, memory_order_acquire) > 0) {
        if (++spins < SPIN_LIMIT) CPU_RELAX();
        else sched_yield();
    }
}
