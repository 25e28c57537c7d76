/* threadpool.h - the CPU backend's persistent worker pool. Threads are made
 * once (at model load) and reused for every kernel call, so the token loop
 * never creates threads. A job is n chunks; fn(ctx, chunk, tid) runs once per
 * chunk on whichever thread claims it (the caller is tid 0 and works too).
 * mt_pool_run returns when every chunk is done. Chunks are claimed
 * dynamically, so a worker the OS has not scheduled yet (a busy machine)
 * does not hold the caller up: the caller takes its share.
 * Thread-safety: one mt_pool_run at a time per pool (each session has its own
 * executor and pool; the backend uses one more for weight conversion at load). */
#ifndef MT_CPU_THREADPOOL_H
#define MT_CPU_THREADPOOL_H

typedef struct mt_pool mt_pool;
typedef void (*mt_pool_fn)(void *ctx, int chunk, int tid);

/* threads >= 1 (total, including the caller). NULL when out of memory or
 * a thread could not be started. */
mt_pool *mt_pool_new(int threads);
void mt_pool_free(mt_pool *p);
int mt_pool_threads(const mt_pool *p);
void mt_pool_run(mt_pool *p, int n_chunks, mt_pool_fn fn, void *ctx);

#endif
