/* bench_tts.c - Japanese synthesis speed: for 20 typical sentences (10-60
 * characters), time to the first audio chunk and real-time factor of the
 * in-process Open JTalk backend (dictionary and voice loaded once), pinned
 * to one core; side by side, in the same run, the Debian open_jtalk program
 * invoked per sentence (process start, dictionary and voice load,
 * synthesis, WAV written to /dev/null), the obvious alternative.
 *
 * usage: bench_tts [--voice FILE] [--reps N] [--no-peer]
 * Prints one row per sentence and a summary; docs/PERFORMANCE.md ## Speech. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stts_common.h"
#include "stts_tts.h"

static const char *k_sentences[20] = {
    "今日は良い天気です。",
    "ファイルを保存しました。",
    "テストがすべて通りました。",
    "この関数は引数を二つ受け取ります。",
    "ビルドに失敗したので、ログを確認してください。",
    "GitHubにpushしてからプルリクエストを作ります。",
    "READMEにインストール手順を追加しました。",
    "設定ファイルのパスが間違っているようです。",
    "次に、データベースのマイグレーションを実行します。",
    "エラーメッセージによると、メモリが足りません。",
    "変更点は三つあります。",
    "型の定義を修正して、コンパイルエラーを解消しました。",
    "この処理は非同期で実行されるため、呼び出し側では結果が返ってくるまで待つ必要があります。",
    "依存関係を最新の版に更新したところ、ビルドは通りましたが、非推奨の警告が二件出ました。",
    "ユーザーの入力をそのまま使うのは危険です。",
    "キャッシュを削除してから、もう一度試してください。",
    "ベンチマークの結果、キャッシュを入れたことで一回あたりの処理時間がおよそ半分になりました。",
    "残りの作業は、ドキュメントの更新と、境界条件を確かめるテストの追加、それから性能の測定です。",
    "このブランチをmainにマージしてもよろしいですか？",
    "以上で今回の作業はすべて完了しましたが、ほかに確認しておきたいことや質問はありますか？",
};

/* CPU time of this thread: the machine may be shared (2 cores, other
 * builds running), so CPU time is reported beside wall time. */
static uint64_t cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

typedef struct {
    uint64_t t0, first, c0, cfirst;
    size_t samples;
} run_stat;

static int on_chunk(void *user, const int16_t *pcm, size_t n) {
    (void)pcm;
    run_stat *r = user;
    if (!r->first) { r->first = stts_now_ns(); r->cfirst = cpu_ns(); }
    r->samples += n;
    return 0;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static size_t utf8_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* Runs open_jtalk once on text; returns wall ms (fork to exit) and the
 * child's CPU ms in *cpu_ms. */
static double run_open_jtalk(const char *voice, const char *text, double *cpu_ms) {
    int in[2];
    if (pipe(in) != 0) return -1;
    uint64_t t0 = stts_now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        close(in[0]);
        close(in[1]);
        execl("/usr/bin/open_jtalk", "open_jtalk", "-x", "/var/lib/mecab/dic/open-jtalk/naist-jdic", "-m", voice,
              "-ow", "/dev/null", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    if (write(in[1], text, strlen(text)) < 0 || write(in[1], "\n", 1) < 0) {}
    close(in[1]);
    int st = 0;
    struct rusage ru;
    wait4(pid, &st, 0, &ru);
    double wall = (stts_now_ns() - t0) / 1e6;
    *cpu_ms = ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 + ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return -1;
    return wall;
}

int main(int argc, char **argv) {
    const char *voice = STTS_VOICE_FILE;
    int reps = 5, peer = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--voice") == 0 && i + 1 < argc) voice = argv[++i];
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-peer") == 0) peer = 0;
        else { fprintf(stderr, "usage: bench_tts [--voice FILE] [--reps N] [--no-peer]\n"); return 2; }
    }
    if (reps < 1) reps = 1;
    /* One core: the issue's target is per core; the child open_jtalk
     * inherits the same affinity. */
    cpu_set_t cs;
    CPU_ZERO(&cs);
    CPU_SET(0, &cs);
    int pinned = sched_setaffinity(0, sizeof cs, &cs) == 0;

    tts_params p;
    tts_default_params(&p);
    p.voice = voice;
    tts_synth *s = NULL;
    stts_error err = {0};
    uint64_t o0 = stts_now_ns();
    if (tts_open(&p, &s, &err) != STTS_OK) { fprintf(stderr, "bench_tts: %s\n", err.msg); return 1; }
    double open_ms = (stts_now_ns() - o0) / 1e6;
    int rate = tts_sample_rate(s);
    int have_peer = peer && access("/usr/bin/open_jtalk", X_OK) == 0;

    printf("bench_tts: voice %s, %d Hz, %d reps per sentence, %s, open %.1f ms (dictionaries + voice, once)\n",
           tts_voice_name(s), rate, reps, pinned ? "pinned to CPU 0" : "not pinned", open_ms);
    printf("wall = elapsed time; cpu = this thread's CPU time (the dev machine is shared); per-sentence columns: medians of the reps; summary: over all runs\n");
    printf("%3s %5s %7s | %8s %8s %8s %8s %7s %7s | %9s %9s\n", "#", "chars", "audio_s", "first_ms", "first_cpu",
           "synth_ms", "synth_cpu", "RTF", "RTF_cpu", "ojt_ms", "ojt_cpu");
    double firsts[20], rtfs[20], peers[20], synths[20], cfirsts[20], csynths[20], cpeers[20];
    double tot_audio = 0, tot_synth = 0, tot_peer = 0, tot_csynth = 0, tot_cpeer = 0;
    /* Every run's first-audio time, for the summary's median and maximum
     * over all runs (the per-sentence columns are medians of the reps). */
    static double all_f[20 * 64], all_cf[20 * 64];
    int n_all = 0;
    for (int i = 0; i < 20; i++) {
        double f[64], t[64], pj[64], cf[64], ct[64], cp[64];
        size_t samples = 0;
        for (int r = 0; r < reps && r < 64; r++) {
            run_stat st = {0};
            st.c0 = cpu_ns();
            st.t0 = stts_now_ns();
            if (tts_synthesize(s, k_sentences[i], on_chunk, &st, NULL, &err) != STTS_OK) {
                fprintf(stderr, "bench_tts: %s\n", err.msg);
                return 1;
            }
            uint64_t t1 = stts_now_ns(), c1 = cpu_ns();
            f[r] = (st.first - st.t0) / 1e6;
            t[r] = (t1 - st.t0) / 1e6;
            cf[r] = (st.cfirst - st.c0) / 1e6;
            ct[r] = (c1 - st.c0) / 1e6;
            all_f[n_all] = f[r];
            all_cf[n_all++] = cf[r];
            samples = st.samples;
            cp[r] = 0;
            pj[r] = have_peer ? run_open_jtalk(voice, k_sentences[i], &cp[r]) : 0;
        }
        int n = reps < 64 ? reps : 64;
        double audio_s = (double)samples / rate;
        firsts[i] = median(f, n);
        synths[i] = median(t, n);
        rtfs[i] = synths[i] / 1000.0 / audio_s;
        peers[i] = have_peer ? median(pj, n) : 0;
        cfirsts[i] = median(cf, n);
        csynths[i] = median(ct, n);
        cpeers[i] = have_peer ? median(cp, n) : 0;
        tot_audio += audio_s;
        tot_synth += synths[i];
        tot_csynth += csynths[i];
        tot_peer += peers[i];
        tot_cpeer += cpeers[i];
        printf("%3d %5zu %7.2f | %8.2f %8.2f %8.1f %8.1f %7.4f %7.4f | %9.1f %9.1f\n", i + 1,
               utf8_chars(k_sentences[i]), audio_s, firsts[i], cfirsts[i], synths[i], csynths[i], rtfs[i],
               csynths[i] / 1000.0 / audio_s, peers[i], cpeers[i]);
    }
    double fmax = 0, cfmax = 0;
    for (int k = 0; k < n_all; k++) {
        fmax = all_f[k] > fmax ? all_f[k] : fmax;
        cfmax = all_cf[k] > cfmax ? all_cf[k] : cfmax;
    }
    double fmed = median(all_f, n_all), cfmed = median(all_cf, n_all);
    double pmed = have_peer ? median(peers, 20) : 0, cpmed = have_peer ? median(cpeers, 20) : 0;
    printf("summary: first audio over all %d runs: median %.2f ms wall / %.2f ms cpu, max %.2f / %.2f (target <= 10); "
           "real-time factor %.4f wall / %.4f cpu over %.1f s of audio (target <= 0.05)\n",
           n_all, fmed, cfmed, fmax, cfmax, tot_synth / 1000.0 / tot_audio, tot_csynth / 1000.0 / tot_audio, tot_audio);
    if (have_peer)
        printf("peer: open_jtalk per sentence median %.1f ms wall / %.1f ms cpu to a finished WAV; in-process first "
               "audio is %.0fx sooner (wall), %.0fx (cpu); whole sentences %.2fx the peer's time (wall), %.2fx (cpu)\n",
               pmed, cpmed, pmed / fmed, cpmed / cfmed, tot_synth / tot_peer, tot_csynth / tot_cpeer);
    tts_close(s);
    return 0;
}
