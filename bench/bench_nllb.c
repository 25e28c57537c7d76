/* bench_nllb.c - speed of the NLLB engine's CPU backend at full
 * NLLB-200-distilled-600M shape (d 1024, 12+12 layers, 16 heads, ffn 4096,
 * vocab 256206) with deterministic random weights built in memory.
 *
 * Work timed (the definition): encode a 20-token source, then
 * exactly 24 forced decode steps at batch 1 (force_length: </s> ignored),
 * greedy and beam 4, per weight format (several in one run: same probe,
 * same machine state). Reports ms per sentence, ms per decode step, the
 * bytes each step must read in that format (decoder weights + LM head, or
 * its shortlisted rows) and a read-bandwidth probe measured in the same
 * process before and after the timed work with the same thread count; the
 * floor is bytes / the best probe bandwidth of the run, never derived from
 * the engine's own speed.
 *
 *   bench_nllb [--weights f32|bf16|f16|int8[,...]] [--shortlist-rows N] [--threads N] [--reps N]
 *              [--steps N] [--src-len N] [--simd auto|scalar|avx2|avxvnni|avx512|avx512vnni|neon]
 *              [--device auto|cpu|cuda] [--json] [--help]
 * --shortlist-rows 0: the full vocabulary; a comma-separated list gives one
 * value per --weights entry (--weights f32,int8 --shortlist-rows 0,32000: f32
 * with the full LM head beside int8 with 32000 rows, the ratio in one
 * run; the text output then prints each format's greedy time over the first
 * format's). --json: one object per line per
 * weight format and search mode (keys weights, shortlist_rows, search,
 * ms_per_sentence, ms_per_step, encode_ms, bytes_per_step,
 * floor_ms_per_step, probe_gbps, ...). encode_ms is the encoder alone
 * (nllb_encode, best of reps, each after a sentence); first_step_ms is the
 * sentence's time to its first token, which adds the forced language step
 * (the decoder body read once). On the GPU (--device cuda, or auto
 * with a usable GPU) the probe is a device-to-device copy of 1 GiB (bytes
 * read + written per second, cudaMemcpy) in the same run, and the JSON adds
 * device and gpu_mem_bytes.
 *
 * On the CPU a second floor: the arithmetic one. The engine's own linear
 * kernel (same format, same SIMD level) runs on a weight block that stays in
 * cache, at the rows of each phase (1 for greedy, 4 for beam 4, the source
 * length for the encoder), on every thread at once; the multiply-adds of the
 * phase over that rate is the least time the kernel's instruction mix
 * allows. The encoder at 20+ rows and beam steps are bounded by it, not by
 * bytes, where integer dot products are slow (AVX2 without VNNI). */
#define _DEFAULT_SOURCE
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cpu/kernels.h"
#include "cuda/cuda_backend.h"
#include "nllb.h"
#include "quant.h"
#include "bench_util.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_AVX2_PROBE 1
#endif

static double now_ms(void) { return (double)stts_now_ns() / 1e6; }

/* This process's anonymous memory in transparent huge pages, MB (Linux:
 * /proc/self/smaps_rollup; -1 elsewhere): whether the weights streamed per
 * step sit in 2 MB pages (the probe's 1 GiB buffer is counted too). */
static double anon_huge_mb(void) {
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    if (!f) return -1;
    char line[256];
    double kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "AnonHugePages: %lf kB", &kb) == 1) break;
    fclose(f);
    return kb < 0 ? -1 : kb / 1024.0;
}

/* ---------------- read-bandwidth probe ----------------
 * At least as good at reading memory as the engine, so that no engine run
 * can beat its "floor": a persistent pool of threads started before any
 * timing (the engine's pool is persistent too), the caller working as well;
 * the buffer (1 GiB, far beyond the caches) 2 MB aligned with huge pages
 * asked for and touched first, as the engine's weights; work claimed
 * dynamically in 256 KB chunks (as the engine's linear layers); inside a
 * chunk, 4 rows of 4 KB read at once (the engine's 4-row blocks of W) with
 * 256-bit (or 512-bit) loads into 8 independent accumulators. Best of reps. */
typedef struct probe_pool probe_pool;
struct probe_pool {
    const float *buf;
    size_t n;          /* floats */
    int threads;
    pthread_t th[256];
    pthread_mutex_t mu;
    pthread_cond_t cv, done_cv;
    unsigned gen;
    int stop, running;
    volatile int next; /* chunk counter (atomic builtins) */
    int chunks;
    float sink[256];
};

#define PROBE_CHUNK (256 * 1024 / sizeof(float))
#define PROBE_ROW (4096 / sizeof(float))

#ifdef HAVE_AVX2_PROBE
__attribute__((target("avx2"))) static float chunk_avx2(const float *p) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (size_t r = 0; r < PROBE_CHUNK; r += 4 * PROBE_ROW) { /* 4 rows at once */
        const float *r0 = p + r, *r1 = r0 + PROBE_ROW, *r2 = r1 + PROBE_ROW, *r3 = r2 + PROBE_ROW;
        for (size_t k = 0; k < PROBE_ROW; k += 16) {
            a0 = _mm256_add_ps(a0, _mm256_load_ps(r0 + k));
            a1 = _mm256_add_ps(a1, _mm256_load_ps(r1 + k));
            a2 = _mm256_add_ps(a2, _mm256_load_ps(r2 + k));
            a3 = _mm256_add_ps(a3, _mm256_load_ps(r3 + k));
            a4 = _mm256_add_ps(a4, _mm256_load_ps(r0 + k + 8));
            a5 = _mm256_add_ps(a5, _mm256_load_ps(r1 + k + 8));
            a6 = _mm256_add_ps(a6, _mm256_load_ps(r2 + k + 8));
            a7 = _mm256_add_ps(a7, _mm256_load_ps(r3 + k + 8));
        }
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    float o[8];
    _mm256_storeu_ps(o, s);
    return o[0] + o[1] + o[2] + o[3] + o[4] + o[5] + o[6] + o[7];
}

__attribute__((target("avx512f"))) static float chunk_avx512(const float *p) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (size_t r = 0; r < PROBE_CHUNK; r += 4 * PROBE_ROW) {
        const float *r0 = p + r, *r1 = r0 + PROBE_ROW, *r2 = r1 + PROBE_ROW, *r3 = r2 + PROBE_ROW;
        for (size_t k = 0; k < PROBE_ROW; k += 32) {
            a0 = _mm512_add_ps(a0, _mm512_load_ps(r0 + k));
            a1 = _mm512_add_ps(a1, _mm512_load_ps(r1 + k));
            a2 = _mm512_add_ps(a2, _mm512_load_ps(r2 + k));
            a3 = _mm512_add_ps(a3, _mm512_load_ps(r3 + k));
            a4 = _mm512_add_ps(a4, _mm512_load_ps(r0 + k + 16));
            a5 = _mm512_add_ps(a5, _mm512_load_ps(r1 + k + 16));
            a6 = _mm512_add_ps(a6, _mm512_load_ps(r2 + k + 16));
            a7 = _mm512_add_ps(a7, _mm512_load_ps(r3 + k + 16));
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                                              _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7))));
}
#endif

static float chunk_plain(const float *p) {
    float a[8] = {0};
    for (size_t i = 0; i < PROBE_CHUNK; i += 8)
        for (int k = 0; k < 8; k++) a[k] += p[i + k];
    return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
}

static int g_probe_level; /* 2 avx512, 1 avx2, 0 plain */

static void probe_work(probe_pool *pp, int tid) {
    float s = 0;
    for (;;) {
        int c = __atomic_fetch_add(&pp->next, 1, __ATOMIC_RELAXED);
        if (c >= pp->chunks) break;
        const float *p = pp->buf + (size_t)c * PROBE_CHUNK;
#ifdef HAVE_AVX2_PROBE
        if (g_probe_level == 2) s += chunk_avx512(p);
        else if (g_probe_level == 1) s += chunk_avx2(p);
        else
#endif
            s += chunk_plain(p);
    }
    pp->sink[tid] += s;
}

typedef struct {
    probe_pool *pp;
    int tid;
} probe_targ;

static void *probe_main(void *v) {
    probe_targ a = *(probe_targ *)v;
    free(v);
    probe_pool *pp = a.pp;
    unsigned seen = 0;
    for (;;) {
        /* spin briefly (as the engine's workers), then sleep */
        int spins = 0;
        while (__atomic_load_n(&pp->gen, __ATOMIC_ACQUIRE) == seen && !__atomic_load_n(&pp->stop, __ATOMIC_ACQUIRE)) {
            if (++spins > 20000) {
                pthread_mutex_lock(&pp->mu);
                while (pp->gen == seen && !pp->stop) pthread_cond_wait(&pp->cv, &pp->mu);
                pthread_mutex_unlock(&pp->mu);
            }
        }
        if (__atomic_load_n(&pp->stop, __ATOMIC_ACQUIRE)) return NULL;
        seen = __atomic_load_n(&pp->gen, __ATOMIC_ACQUIRE);
        probe_work(pp, a.tid);
        pthread_mutex_lock(&pp->mu);
        if (--pp->running == 0) pthread_cond_signal(&pp->done_cv);
        pthread_mutex_unlock(&pp->mu);
    }
}

static probe_pool *probe_new(size_t bytes, int threads) {
    probe_pool *pp = calloc(1, sizeof *pp);
    if (!pp) return NULL;
    if (threads > 256) threads = 256;
    pp->threads = threads;
    pp->chunks = (int)(bytes / (PROBE_CHUNK * sizeof(float)));
    pp->n = (size_t)pp->chunks * PROBE_CHUNK;
    float *buf = NULL;
    if (posix_memalign((void **)&buf, 2u << 20, pp->n * sizeof(float)) != 0) {
        free(pp);
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    madvise(buf, pp->n * sizeof(float), MADV_HUGEPAGE);
#endif
    for (size_t i = 0; i < pp->n; i++) buf[i] = (float)(i & 1023) * 1e-3f;
    pp->buf = buf;
#ifdef HAVE_AVX2_PROBE
    __builtin_cpu_init();
    g_probe_level = __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") ? 1 : 0;
#endif
    pthread_mutex_init(&pp->mu, NULL);
    pthread_cond_init(&pp->cv, NULL);
    pthread_cond_init(&pp->done_cv, NULL);
    for (int t = 1; t < threads; t++) {
        probe_targ *a = malloc(sizeof *a);
        a->pp = pp;
        a->tid = t;
        pthread_create(&pp->th[t], NULL, probe_main, a);
    }
    return pp;
}

/* GB/s of one full read of the buffer by all threads; best of reps. */
static double probe_run(probe_pool *pp, int reps) {
    double best = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now_ms();
        pthread_mutex_lock(&pp->mu);
        __atomic_store_n(&pp->next, 0, __ATOMIC_RELAXED);
        pp->running = pp->threads - 1;
        __atomic_add_fetch(&pp->gen, 1, __ATOMIC_RELEASE);
        pthread_cond_broadcast(&pp->cv);
        pthread_mutex_unlock(&pp->mu);
        probe_work(pp, 0);
        pthread_mutex_lock(&pp->mu);
        while (pp->running > 0) pthread_cond_wait(&pp->done_cv, &pp->mu);
        pthread_mutex_unlock(&pp->mu);
        double ms = now_ms() - t0;
        double gbs = (double)pp->n * sizeof(float) / (ms * 1e6);
        if (gbs > best) best = gbs;
    }
    return best;
}

static void probe_free(probe_pool *pp) {
    if (!pp) return;
    pthread_mutex_lock(&pp->mu);
    __atomic_store_n(&pp->stop, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&pp->cv);
    pthread_mutex_unlock(&pp->mu);
    for (int t = 1; t < pp->threads; t++) pthread_join(pp->th[t], NULL);
    float s = 0;
    for (int t = 0; t < pp->threads; t++) s += pp->sink[t];
    if (s == 12345.678f) printf(" "); /* keep the sums alive */
    free((void *)pp->buf);
    pthread_mutex_destroy(&pp->mu);
    pthread_cond_destroy(&pp->cv);
    pthread_cond_destroy(&pp->done_cv);
    free(pp);
}

/* ---------------- arithmetic probe (CPU) ----------------
 * Multiply-adds per second of the engine's linear kernel for one weight
 * format at M rows, all threads at once, each on its own 64 x K weight
 * block (64 KB in int8: it stays in L2, so memory is not what is timed). */
enum { CP_N = 64, CP_K = 1024 };
typedef struct {
    int level, wfmt, M, iters;
    volatile int *go; /* 0 wait, 1 start, -1 give up */
    double ms;
} cprobe_arg;

/* Every thread ready with its data, then all start together. */
static int cprobe_wait(volatile int *go) {
    int g;
    while ((g = __atomic_load_n(go, __ATOMIC_ACQUIRE)) == 0) sched_yield();
    return g;
}

static void *cprobe_main(void *v) {
    cprobe_arg *a = v;
    const int M = a->M, K = CP_K, N = CP_N;
    float *x = malloc(sizeof(float) * (size_t)M * K), *y = calloc((size_t)M * N, sizeof(float));
    float *xs = malloc(sizeof(float) * (size_t)M), *ws = malloc(sizeof(float) * N);
    int8_t *xq = malloc((size_t)M * K);
    void *W = calloc((size_t)N * K, 4);
    a->ms = -1;
    if (!x || !y || !xs || !ws || !xq || !W) {
        cprobe_wait(a->go);
        goto out;
    }
    for (int i = 0; i < M * K; i++) x[i] = (float)((i * 37) % 201 - 100) * 0.01f;
    for (int m = 0; m < M; m++) xs[m] = mt_quantize_row_i8(x + (size_t)m * K, K, xq + (size_t)m * K);
    for (int n = 0; n < N; n++) ws[n] = 0.01f;
    for (int i = 0; i < N * K; i++) {
        int8_t q = (int8_t)((i * 13) % 255 - 127);
        if (a->wfmt == NLLB_WEIGHTS_INT8) ((int8_t *)W)[i] = q;
        else if (a->wfmt == NLLB_WEIGHTS_F32) ((float *)W)[i] = q * 0.01f;
        else ((uint16_t *)W)[i] = (uint16_t)(0x3c00 + (q & 0xff)); /* a finite bf16 / f16 value */
    }
    if (cprobe_wait(a->go) < 0) goto out;
    double t0 = now_ms();
    for (int it = 0; it < a->iters; it++) {
        /* the engine's layouts (kernels.h): interleaved where the level converts to it (cached data:
         * the layout moves the rate by little) */
        if (a->wfmt == NLLB_WEIGHTS_INT8)
            mt_linear_rows_i8(a->level, xq, xs, M, K, (const int8_t *)W, ws,
                              mt_i8_layout_prefers_interleaved(a->level) ? mt_i8_interleave_rows(K, N) : 0, N, NULL,
                              y, 0, 0, N);
        else if (a->wfmt == NLLB_WEIGHTS_F32)
            mt_linear_rows(a->level, x, M, K, (const float *)W, N, NULL, y, 0, 0, N);
        else
            mt_linear_rows_half(a->level, a->wfmt == NLLB_WEIGHTS_BF16, x, M, K, (const uint16_t *)W,
                                mt_half_layout_prefers_interleaved(a->level) && !(K & 31) ? N & ~3 : 0, N, NULL, y,
                                0, 0, N);
    }
    a->ms = now_ms() - t0;
out:
    free(x), free(y), free(xs), free(ws), free(xq), free(W);
    return NULL;
}

/* Best of 3 of the aggregate GMAC/s (the slowest thread's time); 0 on failure. */
static double cprobe_gmacs(int level, int wfmt, int M, int threads) {
    cprobe_arg args[256];
    pthread_t th[256];
    if (threads > 256) threads = 256;
    /* ~20 ms a run on one AVX2 core at ~40 GMAC/s */
    int iters = (int)(800000000.0 / ((double)M * CP_K * CP_N)) + 1;
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        volatile int go = 0;
        int started = 0;
        for (int t = 0; t < threads; t++) {
            args[t] = (cprobe_arg){level, wfmt, M, iters, &go, 0};
            if (t && pthread_create(&th[t], NULL, cprobe_main, &args[t]) == 0) started = t;
            else if (t) break;
        }
        __atomic_store_n(&go, started == threads - 1 ? 1 : -1, __ATOMIC_RELEASE);
        if (started == threads - 1) cprobe_main(&args[0]);
        double worst = started == threads - 1 ? 0 : -1;
        for (int t = 0; t <= started; t++) {
            if (t) pthread_join(th[t], NULL);
            if (args[t].ms < 0) worst = -1;
            if (worst >= 0 && args[t].ms > worst) worst = args[t].ms;
        }
        if (worst <= 0) return 0;
        double g = (double)threads * iters * M * CP_K * CP_N / (worst * 1e6);
        if (g > best) best = g;
    }
    return best;
}

/* ---------------- timing the engine ---------------- */
typedef struct {
    double t_first, t_second, t_last;
    int calls;
} step_clock;

static void on_token(void *user, int sentence, int step, int32_t token) {
    (void)sentence, (void)step, (void)token;
    step_clock *c = user;
    double t = now_ms();
    if (c->calls == 0) c->t_first = t;
    if (c->calls == 1) c->t_second = t;
    c->t_last = t;
    c->calls++;
}

typedef struct {
    double sentence_ms, step_ms, first_ms, encode_ms;
} timing;

static const int32_t *g_sl_ids; /* shortlist (NULL: full vocabulary) */
static int g_sl_n;

static int run(nllb_session *s, const int32_t *src, int n, int beams, int steps, timing *out) {
    nllb_translate_params p = nllb_translate_default_params();
    p.num_beams = beams;
    p.force_length = steps;
    if (g_sl_ids) {
        p.shortlist = NLLB_SHORTLIST_IDS;
        p.shortlist_ids = g_sl_ids;
        p.n_shortlist_ids = g_sl_n;
    }
    step_clock clk = {0, 0, 0, 0};
    p.on_token = on_token;
    p.user = &clk;
    nllb_result r;
    stts_error e;
    const int32_t *one[1] = {src};
    double t0 = now_ms();
    if (nllb_translate_ids(s, one, &n, 1, 256079, &p, &r, &e) != STTS_OK) {
        fprintf(stderr, "bench_nllb: %s\n", e.msg);
        return -1;
    }
    double t1 = now_ms();
    int ok = r.n_ids == steps + 2 && clk.calls == steps + 1;
    nllb_result_clear(&r);
    if (!ok) {
        fprintf(stderr, "bench_nllb: expected %d tokens\n", steps);
        return -1;
    }
    /* first callback: after encode + the forced-language step (the decoder
     * body without the LM head); the next `steps` callbacks each close one
     * full decode step. Where the engine runs the forced step and the first
     * chosen one as one pass (the CPU: mt_decode_prefill) the first two
     * callbacks come together, so a step is timed from the second callback
     * to the last: steps - 1 whole steps either way. */
    out->sentence_ms = t1 - t0;
    out->step_ms = steps > 1 ? (clk.t_last - clk.t_second) / (steps - 1) : clk.t_last - clk.t_first;
    out->first_ms = clk.t_first - t0;
    return 0;
}

/* The encoder alone (nllb_encode: the encoder layers, its final LayerNorm
 * and every decoder layer's cross-attention K/V, the work its floors count),
 * ms. The time to the first callback also holds the forced step, which
 * reads the decoder body once (~3 ms at int8's bytes on the dev VM), so it
 * is not the encoder's time. */
static double encode_only_ms(nllb_session *s, const int32_t *src, int n, float *out) {
    stts_error e;
    double t0 = now_ms();
    if (nllb_encode(s, src, n, out, &e) != STTS_OK) {
        fprintf(stderr, "bench_nllb: %s\n", e.msg);
        return -1;
    }
    return now_ms() - t0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: bench_nllb [--weights f32|bf16|f16|int8[,...]] [--shortlist-rows N[,...]] [--threads N]\n"
               "                  [--reps N] [--steps N] [--src-len N]\n"
               "                  [--simd auto|scalar|avx2|avxvnni|avx512|avx512vnni|neon] [--device auto|cpu|cuda]\n"
               "                  [--json] [--help]\n"
               "Times the NLLB-200-distilled-600M shape with random weights (the shape is fixed).\n"
               "  --threads N   0..256, 0 (default) = all cores\n"
               "  --simd L      force a kernel level (one this CPU has); default auto\n");
}

int main(int argc, char **argv) {
    int threads = 0, reps = 3, steps = 24, src_len = 20, sl_rows = 0, json = 0, device = NLLB_DEVICE_AUTO;
    nllb_simd simd = NLLB_SIMD_AUTO;
    char wlist[128] = "f32", sllist[128] = "0";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        static const char *const value_flags[] = {"--threads", "--reps",   "--steps", "--src-len", "--shortlist-rows",
                                                  "--weights", "--device", "--simd",  NULL};
        int known = 0;
        for (const char *const *f = value_flags; *f && !known; f++) known = !strcmp(a, *f);
        if (!known) {
            fprintf(stderr, "bench_nllb: unknown option '%s' (bench_nllb --help lists them)\n", a);
            return 2;
        }
        if (!v) {
            fprintf(stderr, "bench_nllb: %s needs a value (bench_nllb --help)\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--threads")) {
            /* the engine's range, as translate and the main command */
            if (bench_int_flag("bench_nllb", "--threads (0 = all cores)", v, 0, 256, &threads)) return 2;
        } else if (!strcmp(a, "--reps")) {
            if (bench_int_flag("bench_nllb", a, v, 1, 100000, &reps)) return 2;
        } else if (!strcmp(a, "--steps")) {
            /* 2 at least: a step is timed between the second and the last
             * token (with the prefill the first two come together, and one
             * step timed nothing: 0.002 ms against a 7 ms floor) */
            if (bench_int_flag("bench_nllb", a, v, 2, 100000, &steps)) return 2;
        } else if (!strcmp(a, "--src-len")) {
            if (bench_int_flag("bench_nllb", a, v, 2, 1024, &src_len)) return 2;
        } else if (!strcmp(a, "--shortlist-rows")) {
            snprintf(sllist, sizeof sllist, "%s", v); /* one value, or one per --weights entry */
        }
        else if (!strcmp(a, "--weights")) snprintf(wlist, sizeof wlist, "%s", v);
        else if (!strcmp(a, "--device")) {
            if ((device = nllb_device_parse(v)) < 0) {
                fprintf(stderr, "bench_nllb: --device must be auto, cpu or cuda (got \"%s\")\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--simd")) {
            int sv = nllb_simd_parse(v);
            if (sv < 0) {
                fprintf(stderr, "bench_nllb: --simd must be auto, scalar, avx2, avxvnni, avx512, avx512vnni or neon (got \"%s\")\n",
                        v);
                return 2;
            }
            simd = (nllb_simd)sv;
        }
    }
    if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads > 256) threads = 256; /* all cores of a larger machine: the engine's limit */
    nllb_config cfg = nllb_config_600m();
    int slr[8], nsl = 0;
    for (char *save = NULL, *t = strtok_r(sllist, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *end = NULL;
        errno = 0;
        long x = strtol(t, &end, 10);
        if (nsl == 8 || end == t || *end || errno || x < 0 || x > cfg.vocab_size) { /* one line, not two */
            fprintf(stderr, "bench_nllb: --shortlist-rows takes up to 8 values from 0 (full vocabulary) to %d (got \"%s\")\n",
                    cfg.vocab_size, t);
            return 2;
        }
        slr[nsl] = (int)x;
        nsl++;
    }
    if (reps < 1 || steps < 1 || src_len < 2 || src_len > 1024 || nsl < 1) {
        fprintf(stderr, "bench_nllb: out-of-range arguments\n");
        return 2;
    }
    int wfs[8], nw = 0;
    for (char *save = NULL, *t = strtok_r(wlist, ",", &save); t && nw < 8; t = strtok_r(NULL, ",", &save)) {
        int w = nllb_weights_parse(t);
        if (w <= NLLB_WEIGHTS_AUTO) {
            fprintf(stderr, "bench_nllb: --weights takes f32, bf16, f16 or int8 (comma-separated), not \"%s\"\n", t);
            return 2;
        }
        wfs[nw++] = w;
    }
    if (nsl != 1 && nsl != nw) {
        fprintf(stderr, "bench_nllb: --shortlist-rows gives %d values for %d --weights entries (give one, or one each)\n",
                nsl, nw);
        return 2;
    }
    int32_t *sl = NULL; /* the ids of the current format's shortlist */
    double greedy_ms[8] = {0};
    int32_t *src = malloc(sizeof(int32_t) * (size_t)src_len);
    src[0] = 256047; /* eng_Latn */
    for (int i = 1; i < src_len - 1; i++) src[i] = 1000 + 7919 * i % 200000;
    src[src_len - 1] = 2;

    /* On the GPU (--device cuda, or auto with a usable GPU) the probe is a
     * device-to-device copy of 1 GiB (bytes read + written per second). */
    stts_error pe;
    int gpu_ok = nllb_cuda_probe(&pe) == STTS_OK;
    if (device == NLLB_DEVICE_CUDA && !gpu_ok) {   /* said before any probe line (it printed 0.00 GB/s first) */
        fprintf(stderr, "bench_nllb: --device cuda: %s\n", pe.msg);
        free(src);
        return 1;
    }
    int gpu = device == NLLB_DEVICE_CUDA || (device == NLLB_DEVICE_AUTO && gpu_ok);
    /* the probe's threads and buffer exist before anything is timed */
    probe_pool *pp = gpu ? NULL : probe_new((size_t)1 << 30, threads);
    if (!gpu && !pp) {
        fprintf(stderr, "bench_nllb: cannot allocate the probe's 1 GiB\n");
        return 1;
    }
    double bw_first = gpu ? mt_cuda_d2d_bandwidth((size_t)1 << 30, 10) : probe_run(pp, 5), bw_best = bw_first;
    size_t gmem_ctx = gpu ? mt_cuda_mem_used() : 0; /* the context alone (the probe's buffers are freed) */
    if (gpu && !json) printf("bench_nllb: GPU: device-to-device copy probe (1 GiB, read + write) %.2f GB/s\n", bw_first);
    if (!json)
        printf("bench_nllb: NLLB-200-distilled-600M shape, random weights, %d threads; work: encode %d tokens + %d "
               "forced decode steps, batch 1; LM head %s\n  read-bandwidth probe (%d threads, 1 GiB, 4 rows at "
               "once): %.2f GB/s before the runs\n",
               threads, src_len, steps, nsl > 1 ? "per format (below)" : slr[0] ? "shortlisted" : "full vocabulary",
               threads, bw_first);
    int rc = 0;
    for (int wi = 0; wi < nw && !rc; wi++) {
        sl_rows = slr[nsl > 1 ? wi : 0];
        free(sl);
        sl = bench_shortlist_ids(&cfg, sl_rows);
        g_sl_ids = sl;
        g_sl_n = sl ? sl_rows : 0;
        nllb_model_params mp = nllb_model_default_params();
        mp.threads = threads;
        mp.simd = simd;
        mp.weights = (nllb_weights)wfs[wi];
        mp.device = (nllb_device)device;
        nllb_model *m = NULL;
        stts_error e;
        double t0 = now_ms();
        if (nllb_model_new_random(&cfg, 2024, &mp, &m, &e) != STTS_OK) {
            fprintf(stderr, "bench_nllb: %s\n", e.msg);
            rc = 1;
            break;
        }
        double build_ms = now_ms() - t0;
        size_t gmem_model = gpu ? mt_cuda_mem_used() : 0;
        nllb_session_params sp = nllb_session_default_params();
        sp.max_beams = 4;
        nllb_session *s = NULL;
        if (nllb_session_new(m, &sp, &s, &e) != STTS_OK) {
            fprintf(stderr, "bench_nllb: %s\n", e.msg);
            nllb_model_free(m);
            rc = 1;
            break;
        }
        size_t step_b = nllb_model_step_bytes_rows(m, sl_rows), enc_b = nllb_model_encode_bytes(m);
        size_t full_b = nllb_model_step_bytes_rows(m, 0);
        /* the forced first step reads the decoder body once (its LM head is
         * skipped): one row of the head is ~1 KB, inside the rounding */
        size_t body_b = nllb_model_step_bytes_rows(m, 1);
        float *enc_out = malloc(sizeof(float) * (size_t)src_len * cfg.d_model);
        if (!enc_out) {
            fprintf(stderr, "bench_nllb: out of memory\n");
            nllb_session_free(s);
            nllb_model_free(m);
            rc = 1;
            break;
        }
        timing res[2];
        for (int k = 0; k < 2 && !rc; k++) {
            int beams = k ? 4 : 1;
            timing best = {1e30, 1e30, 1e30, 1e30}, warm;
            if (run(s, src, src_len, beams, steps, &warm)) rc = 1; /* warm-up: every cache page touched once */
            if (!rc && encode_only_ms(s, src, src_len, enc_out) < 0) rc = 1;
            double enc_best = 1e30;
            for (int r = 0; r < reps && !rc; r++) {
                timing t;
                if (run(s, src, src_len, beams, steps, &t)) rc = 1;
                else if (t.sentence_ms < best.sentence_ms) best = t;
                /* each rep's encoder pass after its sentence: the same cache
                 * state as inside translate (the decoder's weights last read) */
                double e_ms = rc ? -1 : encode_only_ms(s, src, src_len, enc_out);
                if (e_ms < 0) rc = 1;
                else if (e_ms < enc_best) enc_best = e_ms;
            }
            best.encode_ms = enc_best;
            res[k] = best;
        }
        /* the probe again after the timed work (the machine may be shared):
         * the floor uses the best bandwidth of the whole run */
        double bw_after = gpu ? mt_cuda_d2d_bandwidth((size_t)1 << 30, 5) : probe_run(pp, 3);
        size_t gmem = gpu ? mt_cuda_mem_used() : 0; /* weights, a 4-row session, the CUDA context */
        /* The bound is for KV caches of 8 rows: the session grown to 8
         * sentences at the default length (max_length 200, so every cache
         * holds 200 positions), measured after the timed work */
        size_t gmem8 = 0;
        if (gpu && !rc) {
            const int32_t *eight[8];
            int lens8[8];
            nllb_result r8[8];
            for (int i = 0; i < 8; i++) eight[i] = src, lens8[i] = src_len;
            nllb_translate_params p8 = nllb_translate_default_params();
            p8.max_length = 200;
            stts_error e8;
            if (nllb_translate_ids(s, eight, lens8, 8, 256079, &p8, r8, &e8) != STTS_OK) {
                fprintf(stderr, "bench_nllb: a batch of 8: %s\n", e8.msg);
                rc = 1;
            } else {
                for (int i = 0; i < 8; i++) nllb_result_clear(&r8[i]);
                gmem8 = mt_cuda_mem_used();
            }
        }
        if (bw_after > bw_best) bw_best = bw_after;
        const char *wn = nllb_weights_name(nllb_model_weights(m));
        double floor_step = step_b / (bw_best * 1e6), floor_enc = enc_b / (bw_best * 1e6);
        /* the arithmetic floor (CPU): the Linear layers' multiply-adds (the
         * attention's, ~1% of them here, left out) over the kernel's rate at
         * each phase's rows, measured now with this format and level */
        const double d = cfg.d_model, head = sl_rows ? sl_rows : cfg.vocab_size;
        const double enc_macs = (double)src_len * (cfg.encoder_layers * (4 * d * d + 2 * d * cfg.encoder_ffn_dim) +
                                                   cfg.decoder_layers * 2 * d * d);
        const double row_macs = cfg.decoder_layers * (6 * d * d + 2 * d * cfg.decoder_ffn_dim) + head * d;
        double gm[3] = {0, 0, 0}; /* GMAC/s at 1 row, 4 rows, src_len rows */
        if (!gpu && !rc) {
            /* the level the engine runs, which STTS_SIMD may have forced
             * below --simd's: its backend names it ("cpu avx2 x2") */
            int level = mt_kernels_pick((int)simd), wf = (int)nllb_model_weights(m);
            char lv[32];
            if (sscanf(nllb_model_backend(m), "cpu %31s", lv) == 1 && nllb_simd_parse(lv) > 0)
                level = mt_kernels_pick(nllb_simd_parse(lv));
            gm[0] = cprobe_gmacs(level, wf, 1, threads);
            gm[1] = cprobe_gmacs(level, wf, 4, threads);
            gm[2] = cprobe_gmacs(level, wf, src_len, threads);
        }
        double cfloor_step[2] = {gm[0] > 0 ? row_macs / (gm[0] * 1e6) : 0, gm[1] > 0 ? 4 * row_macs / (gm[1] * 1e6) : 0};
        double cfloor_enc = gm[2] > 0 ? enc_macs / (gm[2] * 1e6) : 0;
        /* the forced first step: the decoder body at one row (every search
         * starts from one hypothesis), no LM head */
        const double body_macs = cfg.decoder_layers * (6 * d * d + 2 * d * cfg.decoder_ffn_dim);
        double floor_first = body_b / (bw_best * 1e6);
        if (gm[0] > 0 && body_macs / (gm[0] * 1e6) > floor_first) floor_first = body_macs / (gm[0] * 1e6);
        /* the sentence's floor: each phase at the larger of its two floors;
         * the task's phases, the encoder and `steps` steps: the forced step
         * as a pass of its own is the engine's choice (the CPU folds it into
         * the first chosen step, mt_decode_prefill), not the task's */
        double sfloor[2];
        for (int k = 0; k < 2; k++)
            sfloor[k] = (cfloor_enc > floor_enc ? cfloor_enc : floor_enc) +
                        steps * (cfloor_step[k] > floor_step ? cfloor_step[k] : floor_step);
        double la[3] = {0, 0, 0};
        if (getloadavg(la, 3) < 0) la[0] = -1;
        for (int k = 0; k < 2 && !rc; k++) {
            if (json) {
                printf("{\"weights\":\"%s\",\"shortlist_rows\":%d,\"search\":\"%s\",\"ms_per_sentence\":%.2f,"
                       "\"ms_per_step\":%.3f,\"encode_ms\":%.2f,\"bytes_per_step\":%zu,\"floor_ms_per_step\":%.3f,"
                       "\"probe_gbps\":%.3f,\"probe_gbps_before\":%.3f,\"probe_gbps_after\":%.3f,"
                       "\"step_over_floor\":%.3f,\"encode_bytes\":%zu,\"encode_floor_ms\":%.2f,\"threads\":%d,"
                       "\"steps\":%d,\"src_len\":%d,\"backend\":\"%s\",\"load_avg\":%.2f,\"device\":\"%s\","
                       "\"gpu_mem_bytes\":%zu,\"gpu_context_bytes\":%zu,\"gpu_model_bytes\":%zu,"
                       "\"gpu_session8_bytes\":%zu,\"macs_per_step\":%.0f,\"compute_gmacs_step\":%.2f,"
                       "\"compute_floor_ms_per_step\":%.3f,\"encode_macs\":%.0f,\"compute_gmacs_encode\":%.2f,"
                       "\"encode_compute_floor_ms\":%.2f,\"sentence_floor_ms\":%.2f,\"anon_huge_mb\":%.0f,"
                       "\"first_step_ms\":%.2f,\"first_step_floor_ms\":%.2f}\n",
                       wn, sl_rows, k ? "beam4" : "greedy", res[k].sentence_ms, res[k].step_ms, res[k].encode_ms,
                       step_b, floor_step, bw_best, bw_first, bw_after, res[k].step_ms / floor_step, enc_b,
                       floor_enc, threads, steps, src_len, nllb_model_backend(m), la[0], gpu ? "cuda" : "cpu", gmem,
                       gmem_ctx, gmem_model - gmem_ctx, gmem8 > gmem_model ? gmem8 - gmem_model : 0,
                       (k ? 4 : 1) * row_macs, gm[k], cfloor_step[k], enc_macs, gm[2], cfloor_enc, sfloor[k], anon_huge_mb(),
                       res[k].first_ms, (cfloor_enc > floor_enc ? cfloor_enc : floor_enc) + floor_first);
            } else {
                if (k == 0)
                    printf("  %s weights (%s, built in %.0f ms): %.1f MB held; a decode step reads %.1f MB (%.1f MB "
                           "with the full LM head), encode %.1f MB; anonymous memory in huge pages: %.0f MB\n",
                           wn, nllb_model_backend(m), build_ms, nllb_model_weight_bytes(m) / 1e6, step_b / 1e6,
                           full_b / 1e6, enc_b / 1e6, anon_huge_mb());
                if (k == 0 && gpu)
                    printf("    GPU memory in use: %.1f MB (context %.1f MB, + model %.1f MB; with a session of 8 "
                           "sentences x 200 positions: %.1f MB in all, its KV caches and buffers %.1f MB)\n",
                           gmem / 1e6, gmem_ctx / 1e6, (gmem_model - gmem_ctx) / 1e6, gmem8 / 1e6,
                           gmem8 > gmem_model ? (gmem8 - gmem_model) / 1e6 : 0.0);
                printf("    %-7s %8.1f ms/sentence %8.2f ms/step (floor %.2f, %.2fx) encode %6.1f ms (floor %.1f, "
                       "%.2fx)  [probe after %.2f GB/s]\n",
                       k ? "beam 4" : "greedy", res[k].sentence_ms, res[k].step_ms, floor_step,
                       res[k].step_ms / floor_step, res[k].encode_ms, floor_enc, res[k].encode_ms / floor_enc,
                       bw_after);
                printf("            first token (encode + the forced step, in the sentence) %.1f ms (floor %.1f, "
                       "%.2fx)\n",
                       res[k].first_ms, (cfloor_enc > floor_enc ? cfloor_enc : floor_enc) + floor_first,
                       res[k].first_ms / ((cfloor_enc > floor_enc ? cfloor_enc : floor_enc) + floor_first));
                if (!gpu && gm[k] > 0 && gm[2] > 0)
                    printf("            arithmetic floor (the kernel at %d row%s: %.1f GMAC/s; at %d: %.1f): step %.2f "
                           "ms (%.2fx), encode %.1f ms (%.2fx); sentence floor %.1f ms (%.2fx)\n",
                           k ? 4 : 1, k ? "s" : "", gm[k], src_len, gm[2], cfloor_step[k],
                           res[k].step_ms / cfloor_step[k], cfloor_enc, res[k].encode_ms / cfloor_enc, sfloor[k],
                           res[k].sentence_ms / sfloor[k]);
            }
        }
        if (!rc) greedy_ms[wi] = res[0].sentence_ms;
        fflush(stdout);
        free(enc_out);
        nllb_session_free(s);
        nllb_model_free(m);
    }
    if (!json && !rc && nw > 1) /* the ratios (e.g. int8 + 32000 rows over f32 full), same run */
        for (int wi = 1; wi < nw; wi++) {
            char a[32] = "full vocabulary", b[32] = "full vocabulary";
            if (slr[nsl > 1 ? wi : 0]) snprintf(a, sizeof a, "%d rows", slr[nsl > 1 ? wi : 0]);
            if (slr[0]) snprintf(b, sizeof b, "%d rows", slr[0]);
            printf("  greedy %s (%s) / %s (%s), this run: %.1f / %.1f ms = %.3fx\n",
                   nllb_weights_name((nllb_weights)wfs[wi]), a, nllb_weights_name((nllb_weights)wfs[0]), b,
                   greedy_ms[wi], greedy_ms[0], greedy_ms[wi] / greedy_ms[0]);
        }
    if (!json) {
        double la[3] = {0, 0, 0};
        if (getloadavg(la, 3) < 0) la[0] = -1;
        printf("  best probe of the run %.2f GB/s (floors use it); load average %.2f (the machine may be shared)\n",
               bw_best, la[0]);
    }
    if (pp) probe_free(pp);
    free(src);
    free(sl);
    return rc;
}
