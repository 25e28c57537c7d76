/* command.c - the external-command backend: `sh -c CMD` reads the UTF-8
 * text on stdin and writes a RIFF WAV on stdout (macOS say, piper, a cloud
 * CLI). We write the text and read the WAV at the same time (poll), and hand
 * out PCM as it arrives, so a streaming command streams. Accepts 16-bit PCM,
 * mono or stereo (mixed down), any rate; the rate is learnt at open time by
 * a probe utterance, which also proves the command works before the
 * pipeline starts. A stop kills the command. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tts/tts_internal.h"

typedef struct {
    char *cmd;
    int rate;         /* fixed by the probe; later WAVs must match */
    int probe_ms;     /* the probe's time limit */
} command_impl;

/* Incremental WAV parser state. */
typedef struct {
    unsigned char hdr[4096];
    size_t hlen;
    int in_data;
    int channels, bits, rate;
    unsigned char carry[4];  /* partial frame between reads */
    size_t ncarry;
    int16_t pcm[4096];
} wav_reader;

static uint32_t le32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* Parses the header once enough bytes are in; returns 1 ready, 0 need more,
 * -1 bad. *consumed is how many header bytes precede the samples. */
static int parse_header(wav_reader *w, size_t *consumed, stts_error *err) {
    if (w->hlen < 12) return 0;
    if (memcmp(w->hdr, "RIFF", 4) != 0 || memcmp(w->hdr + 8, "WAVE", 4) != 0) {
        stts_error_set(err, STTS_ERR_FORMAT, "the TTS command did not write a RIFF WAV on stdout");
        return -1;
    }
    size_t pos = 12;
    int have_fmt = 0;
    while (pos + 8 <= w->hlen) {
        uint32_t size = le32(w->hdr + pos + 4);
        if (memcmp(w->hdr + pos, "data", 4) == 0) {
            if (!have_fmt) { stts_error_set(err, STTS_ERR_FORMAT, "TTS command WAV: data before fmt"); return -1; }
            *consumed = pos + 8;
            return 1;
        }
        if (pos + 8 + size > w->hlen) {
            if (pos + 8 + (size_t)size > sizeof w->hdr) {
                stts_error_set(err, STTS_ERR_FORMAT, "TTS command WAV: header chunk too large");
                return -1;
            }
            return 0;
        }
        if (memcmp(w->hdr + pos, "fmt ", 4) == 0 && size >= 16) {
            int fmt = le16(w->hdr + pos + 8);
            w->channels = le16(w->hdr + pos + 10);
            w->rate = (int)le32(w->hdr + pos + 12);
            w->bits = le16(w->hdr + pos + 22);
            if ((fmt != 1 && fmt != 0xFFFE) || w->bits != 16 || w->channels < 1 || w->channels > 2 ||
                w->rate < 8000 || w->rate > 192000) {
                /* the rate range too: a 16-bit mono WAV at 7999 Hz was refused
                 * by a message that named only what it had right */
                stts_error_set(err, STTS_ERR_UNSUPPORTED,
                               "TTS command WAV is format %d, %d-bit, %d channels, %d Hz; need 16-bit PCM, 1-2 "
                               "channels, 8000-192000 Hz",
                               fmt, w->bits, w->channels, w->rate);
                return -1;
            }
            have_fmt = 1;
        }
        pos += 8 + size + (size & 1);
    }
    return 0;
}

/* Feeds bytes; emits whole mono samples. Returns 1 to stop, -1 error. */
static int feed(wav_reader *w, const unsigned char *b, size_t n, tts_out *o, int want_rate, stts_error *err) {
    if (!w->in_data) {
        size_t take = sizeof w->hdr - w->hlen < n ? sizeof w->hdr - w->hlen : n;
        memcpy(w->hdr + w->hlen, b, take);
        w->hlen += take;
        size_t consumed = 0;
        int r = parse_header(w, &consumed, err);
        if (r < 0) return -1;
        if (r == 0) {
            if (take < n) { stts_error_set(err, STTS_ERR_FORMAT, "TTS command WAV header too long"); return -1; }
            return 0;
        }
        if (want_rate && w->rate != want_rate) {
            stts_error_set(err, STTS_ERR_FORMAT, "TTS command changed its rate from %d to %d Hz", want_rate, w->rate);
            return -1;
        }
        w->in_data = 1;
        /* Bytes after the header in hdr, then the rest of b. */
        size_t extra = w->hlen - consumed;
        unsigned char tmp[sizeof w->hdr];
        memcpy(tmp, w->hdr + consumed, extra);
        if (extra && feed(w, tmp, extra, o, want_rate, err)) return tts_out_should_stop(o) ? 1 : -1;
        return take < n ? feed(w, b + take, n - take, o, want_rate, err) : 0;
    }
    if (!o) return 0;  /* probe: header only */
    size_t frame = (size_t)w->channels * 2, np = 0;
    while (n > 0) {
        size_t t = frame - w->ncarry < n ? frame - w->ncarry : n;
        memcpy(w->carry + w->ncarry, b, t);
        w->ncarry += t;
        b += t;
        n -= t;
        if (w->ncarry == frame) {
            int v = (int16_t)le16(w->carry);
            if (w->channels == 2) v = (v + (int16_t)le16(w->carry + 2)) / 2;
            w->pcm[np++] = (int16_t)v;
            w->ncarry = 0;
            if (np == sizeof w->pcm / sizeof w->pcm[0]) {
                if (tts_out_emit(o, w->pcm, np)) return 1;
                np = 0;
            }
        }
    }
    if (np && tts_out_emit(o, w->pcm, np)) return 1;
    return 0;
}

/* Runs the command on text; o NULL = probe (learn the rate only). */
static stts_status run(command_impl *c, const char *text, tts_out *o, int *rate_out, stts_error *err) {
    int in[2], out[2];
    if (pipe(in) != 0) return stts_error_set(err, STTS_ERR_IO, "pipe: %s", strerror(errno));
    if (pipe(out) != 0) { close(in[0]); close(in[1]); return stts_error_set(err, STTS_ERR_IO, "pipe: %s", strerror(errno)); }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]); close(in[1]); close(out[0]); close(out[1]);
        return stts_error_set(err, STTS_ERR_INTERNAL, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        setpgid(0, 0);  /* so a stop can kill the whole command */
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]); close(in[1]); close(out[0]); close(out[1]);
        execl("/bin/sh", "sh", "-c", c->cmd, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    close(in[0]);
    close(out[1]);
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    /* A command that exits early must not kill us with SIGPIPE. */
    struct sigaction ign, old;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &old);
    size_t tlen = strlen(text), tpos = 0;
    int wfd = in[1];
    if (tlen == 0) { close(wfd); wfd = -1; }
    wav_reader *w = calloc(1, sizeof *w);
    stts_status st = w ? STTS_OK : stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    int stopped = 0, timed_out = 0;
    unsigned char buf[16384];
    uint64_t deadline = stts_now_ns() + (uint64_t)c->probe_ms * 1000000ull;
    /* Synthesis has no deadline (a long sentence takes long), but a command
     * that neither takes text nor writes audio for 3 probe limits (30 s by
     * default) is hung: without this limit one stuck sentence stopped
     * speech for good (and a hung warm-up, start-up). */
    uint64_t stall_ns = (uint64_t)c->probe_ms * 3 * 1000000ull, last_io = stts_now_ns();
    while (st == STTS_OK) {
        if (o && tts_out_should_stop(o)) { stopped = 1; break; }
        if (o && stts_now_ns() - last_io > stall_ns) {
            timed_out = 1;
            st = stts_error_set(err, STTS_ERR_IO,
                                "the TTS command '%s' wrote no audio for %.1f s and was killed (a hung command? it "
                                "must read the text on stdin, write a WAV to stdout and exit)",
                                c->cmd, (double)stall_ns / 1e9);
            break;
        }
        if (!o && stts_now_ns() > deadline) {
            /* a probe that hangs would hang start-up: kill it hard (it may ignore SIGTERM) */
            timed_out = 1;
            st = stts_error_set(err, STTS_ERR_IO,
                                "the TTS command '%s' wrote no WAV header within %d ms and was killed (it must read "
                                "the text on stdin, write a WAV to stdout and exit)",
                                c->cmd, c->probe_ms);
            break;
        }
        struct pollfd pf[2] = {{out[0], POLLIN, 0}, {wfd, POLLOUT, 0}};
        int np = poll(pf, wfd >= 0 ? 2 : 1, 10);  /* 10 ms: stop flag latency */
        if (np < 0 && errno != EINTR) { st = stts_error_set(err, STTS_ERR_IO, "poll: %s", strerror(errno)); break; }
        if (wfd >= 0 && (pf[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t k = write(wfd, text + tpos, tlen - tpos);
            if (k > 0) { tpos += (size_t)k; last_io = stts_now_ns(); }
            if (tpos == tlen || (k < 0 && errno != EAGAIN && errno != EINTR)) { close(wfd); wfd = -1; }
        }
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t k = read(out[0], buf, sizeof buf);
            if (k == 0) break;
            if (k < 0) {
                if (errno == EINTR || errno == EAGAIN) continue;
                st = stts_error_set(err, STTS_ERR_IO, "reading the TTS command: %s", strerror(errno));
                break;
            }
            last_io = stts_now_ns();
            int r = feed(w, buf, (size_t)k, o, c->rate, err);
            if (r < 0) st = err ? err->code : STTS_ERR_FORMAT;
            else if (r > 0) stopped = 1;
            if (r != 0) break;
            if (!o && w->in_data) break;  /* the probe needs only the header */
        }
    }
    if (wfd >= 0) close(wfd);
    close(out[0]);
    int status = 0;
    int asked = stopped || st != STTS_OK || !o;
    if (asked) kill(-pid, timed_out ? SIGKILL : SIGTERM);
    /* Its stdout closed (or told to stop), the command should exit; one that
     * lingers (a process left holding on, a sleep after the WAV, SIGTERM
     * ignored) gets the stall limit, then is killed: waiting for it
     * unbounded hung like a silent command. */
    uint64_t exit_by = stts_now_ns() + stall_ns;
    pid_t wr;
    long nap_ns = 500000;   /* 0.5 ms doubling to 10 ms: a command exiting at once costs no latency */
    while ((wr = waitpid(pid, &status, WNOHANG)) == 0 || (wr < 0 && errno == EINTR)) {
        if (wr == 0 && stts_now_ns() > exit_by) {
            kill(-pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
            if (st == STTS_OK && !asked)
                st = stts_error_set(err, STTS_ERR_IO,
                                    "the TTS command '%s' closed its output but did not exit within %.1f s and was "
                                    "killed", c->cmd, (double)stall_ns / 1e9);
            break;
        }
        struct timespec nap = {0, nap_ns};
        nanosleep(&nap, NULL);
        if (nap_ns < 10000000) nap_ns *= 2;
    }
    sigaction(SIGPIPE, &old, NULL);
    if (st == STTS_OK && stopped) st = tts_out_cancelled(o, err);
    if (st == STTS_OK && !w->in_data) {
        /* the shell's 127 and 126 mean the program is not there or cannot run:
         * "wrote no WAV (exit status 127)" left the user to know that */
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        st = stts_error_set(err, STTS_ERR_FORMAT, "the TTS command '%s' wrote no WAV (exit status %d%s)", c->cmd, code,
                            code == 127   ? ": the shell did not find the program; check its name and $PATH"
                            : code == 126 ? ": the program is not executable"
                                          : "");
    }
    if (st == STTS_OK && o && WIFEXITED(status) && WEXITSTATUS(status) != 0)
        st = stts_error_set(err, STTS_ERR_IO, "the TTS command '%s' failed with exit status %d", c->cmd,
                            WEXITSTATUS(status));
    if (st == STTS_OK && rate_out) *rate_out = w->rate;
    free(w);
    return st;
}

static stts_status command_synthesize(void *impl, const char *text, tts_out *o, stts_error *err) {
    return run(impl, text, o, NULL, err);
}

static void command_close(void *impl) {
    command_impl *c = impl;
    if (!c) return;
    free(c->cmd);
    free(c);
}

static const tts_ops command_ops = {command_synthesize, NULL, command_close, NULL};

static stts_status command_open(const tts_params *p, tts_opened *o, stts_error *err) {
    if (!p->command || !*p->command)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "the command backend needs a command (--tts-command CMD)");
    command_impl *c = calloc(1, sizeof *c);
    if (!c || !(c->cmd = strdup(p->command))) {
        free(c);
        return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    }
    int rate = 0;
    c->probe_ms = p->probe_timeout_ms > 0 ? p->probe_timeout_ms : 10000;
    stts_status st = run(c, strcmp(p->lang, "jpn_Jpan") == 0 ? "\xE3\x81\x82" : "a", NULL, &rate, err);
    if (st != STTS_OK) {
        char why[STTS_ERROR_MAX];
        snprintf(why, sizeof why, "%s", err ? err->msg : "");
        command_close(c);
        return stts_error_set(err, st, "TTS command check failed: %s", why);
    }
    c->rate = rate;
    o->ops = &command_ops;
    o->impl = c;
    o->rate = rate;
    snprintf(o->voice, sizeof o->voice, "command:%.200s", p->command);
    return STTS_OK;
}

static stts_status command_list(tts_voice_fn fn, void *user, int *stopped, stts_error *err) {
    (void)err;
    tts_voice_info v = {TTS_BACKEND_COMMAND, "*", "(your command)", "--tts-command CMD: text on stdin, WAV on stdout"};
    if (fn(user, &v)) *stopped = 1;
    return STTS_OK;
}

/* A command given (--tts-command) wins over every built-in voice. */
static int command_probe(const tts_params *p) { return p->command && *p->command ? 3 : 0; }

const tts_backend_desc tts_command_backend = {TTS_BACKEND_COMMAND, "command", "the command backend", NULL,
                                              NULL, command_probe, command_open, command_list};
