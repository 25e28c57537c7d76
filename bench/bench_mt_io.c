/* bench_mt_io.c - load-path speed of the NLLB engine's checkpoint reader:
 * writes (once) an NLLB-200-distilled-600M-shaped model.safetensors with
 * deterministic pseudo-random weights, then times, with the file in the page
 * cache, (1) mt_checkpoint_open (mmap + header parse + validation) and
 * (2) mt_tensor_to_f32 of every tensor into one float buffer, against the
 * physical floor measured in the same process, before and after the timed
 * work: the best copy bandwidth of three probes (memcpy in 4 MB pieces as
 * the conversion goes tensor by tensor, one whole memcpy, an unrolled
 * 8-word loop), single-threaded like the conversion, applied to the bytes
 * that conversion must read plus write. Ratios compare best with best (the
 * medians are printed too); a conversion faster than the floor means the
 * probe is wrong, and the program says so.
 *
 *   bench_mt_io [--dir DIR] [--dtype f32|f16|bf16] [--reps N]
 * The file (1.2 GB for f16/bf16, 2.5 GB for f32) stays in DIR (default /tmp)
 * for reruns; delete it when done. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint.h"
#include "stts_common.h"

typedef struct {
    char name[96];
    int ndim;
    int64_t shape[2];
} spec;

static int add(spec *s, int n, const char *name, int ndim, int64_t a, int64_t b) {
    snprintf(s[n].name, sizeof s[n].name, "%s", name);
    s[n].ndim = ndim;
    s[n].shape[0] = a;
    s[n].shape[1] = b;
    return n + 1;
}

/* The tensors of NLLB-200-distilled-600M as transformers saves them to safetensors. */
static int layout(spec *s) {
    const int64_t D = 1024, F = 4096, V = 256206;
    int n = 0;
    char b[96];
    n = add(s, n, "model.shared.weight", 2, V, D);
    for (int side = 0; side < 2; side++) {
        const char *st = side ? "decoder" : "encoder";
        for (int l = 0; l < 12; l++) {
            static const char *att[] = {"self_attn", "encoder_attn"};
            for (int a = 0; a < 1 + side; a++) {
                static const char *proj[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
                for (int p = 0; p < 4; p++) {
                    snprintf(b, sizeof b, "model.%s.layers.%d.%s.%s.weight", st, l, att[a], proj[p]);
                    n = add(s, n, b, 2, D, D);
                    snprintf(b, sizeof b, "model.%s.layers.%d.%s.%s.bias", st, l, att[a], proj[p]);
                    n = add(s, n, b, 1, D, 0);
                }
                snprintf(b, sizeof b, "model.%s.layers.%d.%s_layer_norm.weight", st, l, att[a]);
                n = add(s, n, b, 1, D, 0);
                snprintf(b, sizeof b, "model.%s.layers.%d.%s_layer_norm.bias", st, l, att[a]);
                n = add(s, n, b, 1, D, 0);
            }
            snprintf(b, sizeof b, "model.%s.layers.%d.fc1.weight", st, l);
            n = add(s, n, b, 2, F, D);
            snprintf(b, sizeof b, "model.%s.layers.%d.fc1.bias", st, l);
            n = add(s, n, b, 1, F, 0);
            snprintf(b, sizeof b, "model.%s.layers.%d.fc2.weight", st, l);
            n = add(s, n, b, 2, D, F);
            snprintf(b, sizeof b, "model.%s.layers.%d.fc2.bias", st, l);
            n = add(s, n, b, 1, D, 0);
            snprintf(b, sizeof b, "model.%s.layers.%d.final_layer_norm.weight", st, l);
            n = add(s, n, b, 1, D, 0);
            snprintf(b, sizeof b, "model.%s.layers.%d.final_layer_norm.bias", st, l);
            n = add(s, n, b, 1, D, 0);
        }
        snprintf(b, sizeof b, "model.%s.layer_norm.weight", st);
        n = add(s, n, b, 1, D, 0);
        snprintf(b, sizeof b, "model.%s.layer_norm.bias", st);
        n = add(s, n, b, 1, D, 0);
    }
    return n;
}

static int64_t numel(const spec *s) { return s->ndim == 2 ? s->shape[0] * s->shape[1] : s->shape[0]; }

static int write_model(const char *path, const char *dt, size_t es) {
    static spec s[1024];
    int n = layout(s);
    size_t cap = 1 << 20, len = 0;
    char *h = malloc(cap);
    uint64_t off = 0;
    len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        uint64_t nb = (uint64_t)numel(&s[i]) * es;
        if (s[i].ndim == 2)
            len += (size_t)snprintf(h + len, cap - len,
                                    ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"data_offsets\":[%llu,%llu]}",
                                    s[i].name, dt, (long long)s[i].shape[0], (long long)s[i].shape[1],
                                    (unsigned long long)off, (unsigned long long)(off + nb));
        else
            len += (size_t)snprintf(h + len, cap - len,
                                    ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld],\"data_offsets\":[%llu,%llu]}",
                                    s[i].name, dt, (long long)s[i].shape[0], (unsigned long long)off,
                                    (unsigned long long)(off + nb));
        off += nb;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8) h[len++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    unsigned char hl[8];
    for (int i = 0; i < 8; i++) hl[i] = (unsigned char)((uint64_t)len >> (8 * i));
    fwrite(hl, 1, 8, f);
    fwrite(h, 1, len, f);
    free(h);
    /* Weights ~ N(0, 0.02)-ish: small values of both signs, f16/bf16/f32 encoded. */
    size_t chunk = 1 << 22;
    unsigned char *buf = malloc(chunk * es);
    uint64_t x = 88172645463325252ull, left = off / es;
    while (left) {
        size_t k = left < chunk ? (size_t)left : chunk;
        for (size_t i = 0; i < k; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            float v = ((float)(x >> 40) / (float)(1 << 24) - 0.5f) * 0.08f;
            uint32_t u;
            memcpy(&u, &v, 4);
            if (es == 4) memcpy(buf + 4 * i, &u, 4);
            else if (!strcmp(dt, "BF16")) { uint16_t b = (uint16_t)(u >> 16); memcpy(buf + 2 * i, &b, 2); }
            else { /* f32 -> f16, round toward zero, small normal values only */
                int e = (int)((u >> 23) & 255) - 127 + 15;
                uint16_t hv = (uint16_t)((u >> 16) & 0x8000);
                if (e > 0) hv |= (uint16_t)((e << 10) | ((u >> 13) & 1023));
                memcpy(buf + 2 * i, &hv, 2);
            }
        }
        if (fwrite(buf, es, k, f) != k) { /* disk full: leave no half-written model behind */
            free(buf);
            fclose(f);
            remove(path);
            return -1;
        }
        left -= k;
    }
    free(buf);
    return fclose(f);
}

/* One copy of cb bytes from b to a, three ways (see the header); returns
 * ms. */
static double copy_once(int how, char *restrict a, const char *restrict b, size_t cb) {
    uint64_t t0 = stts_now_ns();
    if (how == 0) {
        for (size_t o = 0; o < cb; o += (size_t)4 << 20)
            memcpy(a + o, b + o, cb - o < ((size_t)4 << 20) ? cb - o : ((size_t)4 << 20));
    } else if (how == 1) {
        memcpy(a, b, cb);
    } else {
        uint64_t *restrict d = (uint64_t *)a;
        const uint64_t *restrict s = (const uint64_t *)b;
        size_t n = cb / 64 * 8;
        for (size_t i = 0; i < n; i += 8) {
            uint64_t x0 = s[i], x1 = s[i + 1], x2 = s[i + 2], x3 = s[i + 3];
            uint64_t x4 = s[i + 4], x5 = s[i + 5], x6 = s[i + 6], x7 = s[i + 7];
            d[i] = x0; d[i + 1] = x1; d[i + 2] = x2; d[i + 3] = x3;
            d[i + 4] = x4; d[i + 5] = x5; d[i + 6] = x6; d[i + 7] = x7;
        }
        memcpy(a + n * 8, b + n * 8, cb - n * 8);
    }
    return (double)(stts_now_ns() - t0) / 1e6;
}

/* The best read+write GB/s of the three probes, reps runs each after a
 * warm-up; best[3] gets each probe's best. */
static double probe_gbs(char *a, const char *b, size_t cb, int reps, double best[3]) {
    double top = 0;
    for (int how = 0; how < 3; how++) {
        best[how] = 0;
        for (int r = 0; r < reps + 1; r++) {
            double ms = copy_once(how, a, b, cb);
            double gbs = 2.0 * (double)cb / (ms / 1e3) / 1e9;
            if (r && gbs > best[how]) best[how] = gbs;
        }
        if (best[how] > top) top = best[how];
    }
    return top;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    const char *dir = "/tmp", *dt = "f16";
    int reps = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--dtype") && i + 1 < argc) dt = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--dir DIR] [--dtype f32|f16|bf16] [--reps N]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1 || reps > 100) reps = 5;
    const char *sdt = !strcmp(dt, "f32") ? "F32" : !strcmp(dt, "bf16") ? "BF16" : "F16";
    size_t es = !strcmp(sdt, "F32") ? 4 : 2;
    char path[1024];
    snprintf(path, sizeof path, "%s/stts-bench-600m-%s.safetensors", dir, dt);
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "writing %s ...\n", path);
        if (write_model(path, sdt, es)) {
            fprintf(stderr, "cannot write %s\n", path);
            return 1;
        }
    }
    stts_error e = {0};
    mt_checkpoint *ck = NULL;
    /* Warm-up: open and read everything once so the file is in the page cache. */
    if (mt_checkpoint_open(path, &ck, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    size_t total = 0, src_bytes = 0;
    for (size_t i = 0; i < mt_checkpoint_count(ck); i++) {
        total += (size_t)mt_checkpoint_at(ck, i)->numel;
        src_bytes += mt_checkpoint_at(ck, i)->nbytes;
    }
    float *dst = malloc(total * sizeof *dst);
    if (!dst) return 1;
    memset(dst, 0, total * sizeof *dst);
    double t_open[100], t_conv[100], t_fresh[100];
    /* The probe's buffers: half the conversion's output each (a is dst). */
    size_t cb = total * sizeof *dst / 2;
    char *a = (char *)dst, *b = malloc(cb);
    if (!b) return 1;
    memset(b, 1, cb);
    double pb_before[3], pb_after[3];
    double gbs_before = probe_gbs(a, b, cb, reps, pb_before);
    /* Converting from a mapping whose pages are already faulted in. */
    for (int r = 0; r < reps + 1; r++) {
        uint64_t t0 = stts_now_ns();
        size_t o = 0;
        for (size_t i = 0; i < mt_checkpoint_count(ck); i++) {
            const mt_tensor *t = mt_checkpoint_at(ck, i);
            if (mt_tensor_to_f32(t, dst + o, (size_t)t->numel, &e)) return 1;
            o += (size_t)t->numel;
        }
        if (r) t_conv[r - 1] = (double)(stts_now_ns() - t0) / 1e6;
    }
    mt_checkpoint_close(ck);
    /* What a model load costs: open, then convert from the fresh mapping
     * (page faults on the page-cached file included). */
    size_t ntensors = 0;
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = stts_now_ns();
        if (mt_checkpoint_open(path, &ck, &e)) return 1;
        uint64_t t1 = stts_now_ns();
        size_t o = 0;
        for (size_t i = 0; i < mt_checkpoint_count(ck); i++) {
            const mt_tensor *t = mt_checkpoint_at(ck, i);
            if (mt_tensor_to_f32(t, dst + o, (size_t)t->numel, &e)) return 1;
            o += (size_t)t->numel;
        }
        t_open[r] = (double)(t1 - t0) / 1e6;
        t_fresh[r] = (double)(stts_now_ns() - t1) / 1e6;
        ntensors = mt_checkpoint_count(ck);
        mt_checkpoint_close(ck);
    }
    /* The probe again, after the timed work: the floor is the best seen. */
    double gbs_after = probe_gbs(a, b, cb, reps, pb_after);
    qsort(t_open, (size_t)reps, sizeof(double), cmp_d);
    qsort(t_conv, (size_t)reps, sizeof(double), cmp_d);
    qsort(t_fresh, (size_t)reps, sizeof(double), cmp_d);
    double copy_gbs = gbs_before > gbs_after ? gbs_before : gbs_after;
    double bytes = (double)src_bytes + (double)total * 4;
    double floor_ms = bytes / (copy_gbs * 1e9) * 1e3;
    printf("bench_mt_io: NLLB-200-distilled-600M-shaped model.safetensors, %s weights, %zu tensors, %.1f M params, "
           "%.2f GB file (page cache warm), best and median of %d\n",
           sdt, ntensors, (double)total / 1e6, (double)src_bytes / 1e9, reps);
    printf("  mt_checkpoint_open (mmap + header + validation): best %8.2f ms, median %8.2f ms\n", t_open[0],
           t_open[reps / 2]);
    printf("  mt_tensor_to_f32, all tensors (1 thread, pages mapped): best %8.1f ms (%.2f GB/s read+write), median "
           "%8.1f ms\n", t_conv[0], bytes / (t_conv[0] / 1e3) / 1e9, t_conv[reps / 2]);
    printf("  the same from a fresh mapping (open + convert = load): best %8.1f ms, median %8.1f ms\n", t_fresh[0],
           t_fresh[reps / 2]);
    printf("  probe (1 thread, read+write GB/s, best of %d): before %.2f (memcpy 4 MB %.2f, whole %.2f, loop %.2f), "
           "after %.2f (%.2f, %.2f, %.2f)\n", reps, gbs_before, pb_before[0], pb_before[1], pb_before[2], gbs_after,
           pb_after[0], pb_after[1], pb_after[2]);
    printf("  floor: %.2f GB/s -> %.1f ms for the same bytes; conversion / floor = %.2fx best (%.2fx median); "
           "fresh mapping %.2fx best (%.2fx median)\n", copy_gbs, floor_ms, t_conv[0] / floor_ms,
           t_conv[reps / 2] / floor_ms, t_fresh[0] / floor_ms, t_fresh[reps / 2] / floor_ms);
    if (t_conv[0] < floor_ms)
        printf("  WARNING: the conversion beat the probe: the probe is not the machine's copy bandwidth; "
               "do not quote this floor\n");
    free(dst);
    free(b);
    return 0;
}
