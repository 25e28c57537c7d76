/* threadpool.c - see threadpool.h. The caller publishes a job pointer and
 * bumps a generation counter; workers notice by spinning (cheap while a
 * decoder step issues kernel after kernel) or, after a while, by waiting on a
 * condition variable. Chunks are claimed with an atomic counter. Completion
 * is the count of finished chunks, not of workers, so a descheduled worker
 * never delays a job it has not started. A worker announces itself
 * (`inside`) before reading the job pointer and the caller clears the pointer
 * then waits for `inside` to drain (sequentially consistent, Dekker style),
 * so no worker touches a job after mt_pool_run returned. */
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

/* Spin iterations before a worker sleeps (well under a millisecond). */
#define SPIN_LIMIT 20000

typedef struct {
    mt_pool_fn fn;
    void *ctx;
    int n;
    atomic_int next, done;
} pool_job;

struct mt_pool {
    int n;
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;
    atomic_int inside;
    atomic_int stop;
    _Atomic(pool_job *) job;
};

typedef struct {
    mt_pool *p;
    int tid;
} worker_arg;

static void work_on(pool_job *j, int tid) {
    for (;;) {
        int c = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (c >= j->n) break;
        j->fn(j->ctx, c, tid);
        atomic_fetch_add_explicit(&j->done, 1, memory_order_release);
    }
}

static void *worker_main(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    mt_pool *p = wa.p;
    unsigned seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen) {
            if (atomic_load(&p->stop)) return NULL;
            if (++spins < SPIN_LIMIT) {
                CPU_RELAX();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
            spins = 0;
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        atomic_fetch_add(&p->inside, 1);
        pool_job *j = atomic_load(&p->job);
        if (j) work_on(j, wa.tid);
        atomic_fetch_sub(&p->inside, 1);
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
    atomic_init(&p->inside, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->job, NULL);
    p->th = calloc((size_t)threads, sizeof *p->th);
    if (!p->th) {
        free(p);
        return NULL;
    }
    for (int i = 1; i < threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (wa) {
            wa->p = p;
            wa->tid = i;
        }
        if (!wa || pthread_create(&p->th[i], NULL, worker_main, wa) != 0) {
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
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->th);
    free(p);
}

int mt_pool_threads(const mt_pool *p) { return p->n; }

void mt_pool_run(mt_pool *p, int n_chunks, mt_pool_fn fn, void *ctx) {
    if (n_chunks <= 0) return;
    if (p->n == 1 || n_chunks == 1) {
        for (int c = 0; c < n_chunks; c++) fn(ctx, c, 0);
        return;
    }
    pool_job j;
    j.fn = fn;
    j.ctx = ctx;
    j.n = n_chunks;
    atomic_init(&j.next, 0);
    atomic_init(&j.done, 0);
    atomic_store(&p->job, &j);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_acq_rel);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    work_on(&j, 0);
    int spins = 0;
    while (atomic_load_explicit(&j.done, memory_order_acquire) < n_chunks) {
        if (++spins < SPIN_LIMIT) CPU_RELAX();
        else sched_yield();
    }
    atomic_store(&p->job, NULL);
    while (atomic_load(&p->inside) > 0) CPU_RELAX();
}
