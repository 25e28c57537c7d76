/* select.h - the search's per-step selection on the CPU (backend.h's
 * select_topk): each row's k best logit columns and their log-softmax
 * values, computed over fixed chunks of columns so that the backend can
 * split a row over its threads. Internal to src/mt/cpu.
 *
 * Why it exists: the search's own host loop (search.c, row_stats) walks a
 * row on one thread with a libm expf per column. For NLLB's 256206-column
 * LM head that is ~1.1 ms a row on the Zen 5 dev VM, 8% of an int8 greedy
 * step, with the other thread idle. */
#ifndef MT_CPU_SELECT_H
#define MT_CPU_SELECT_H

/* Columns per chunk. Fixed (not derived from the thread count) so that the
 * order of the exponential sums, and so their bits, is the same on any
 * number of threads. 8192 floats = 32 KB. */
#define MT_SEL_CHUNK 8192

/* The order of the selection: a before b when x[a] > x[b], or they are
 * equal and a < b (the search's rule: equal values, lower column first).
 * NaN is never selected. */
static inline int mt_sel_before(const float *x, int a, int b) { return x[a] > x[b] || (x[a] == x[b] && a < b); }

/* Columns [c0, c1) of x: the first (at most) k columns in that order into
 * top[], best first; returns how many (fewer than k only when the chunk has
 * fewer than k values that are not NaN). */
int mt_sel_topk_chunk(int level, const float *x, int c0, int c1, int k, int *top);

/* sum over columns [c0, c1) of exp(x[c] - mx), accumulated in double. The
 * SIMD levels compute exp with one polynomial of their own (error about one
 * ulp; terms below exp(-86) count as exp(-86), which a sum that holds
 * exp(0) = 1 cannot see), the scalar level with libm's expf. A NaN column
 * counts as exp(-86) there and not at all on the scalar level: both leave
 * it out of the sum as far as a double can tell. */
double mt_sel_expsum_chunk(int level, const float *x, int c0, int c1, float mx);

#endif
