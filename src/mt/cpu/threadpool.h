/* threadpool.h - the CPU backend's persistent worker pool. Threads are made
 * once (at model load) and reused for every kernel call, so the token loop
 * never creates threads. A call runs fn(ctx, tid, nthreads) on every thread
 * (the caller is tid 0) and returns when all are done. Workers spin briefly
 * for the next job (calls come back to back inside a decoder step), then
 * sleep on a condition variable.
 * Thread-safety: one mt_pool_run at a time (the backend's owner serialises). */
#ifndef MT_CPU_THREADPOOL_H
#define MT_CPU_THREADPOOL_H

typedef struct mt_pool mt_pool;
typedef void (*mt_pool_fn)(void *ctx, int tid, int nthreads);

/* threads >= 1 (total, including the caller). NULL when out of memory or
 * a thread could not be started. */
mt_pool *mt_pool_new(int threads);
void mt_pool_free(mt_pool *p);
int mt_pool_threads(const mt_pool *p);
void mt_pool_run(mt_pool *p, mt_pool_fn fn, void *ctx);

#endif
