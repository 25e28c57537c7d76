/* audio.c - the audio sinks: PortAudio device (single-producer ring buffer
 * drained by the stream callback, playback-position marks), WAV file and raw
 * PCM, and the program's one sample-rate converter.
 *
 * Rates: every write is tagged with the rate its samples were made at (a
 * voice's native rate). The sink alone converts, on the writer side, to the
 * rate of what it feeds: the device's rate for a sound card, the file's
 * (params.sample_rate) for WAV and raw PCM. Conversion lives here, not in
 * the speech backends, because only the sink knows that rate (a device may
 * refuse the one asked for) and because one output may take voices of
 * several native rates (notices and sentences, the daemon's sessions): each
 * run of one rate is converted with its own converter state, flushed when
 * the rate changes and at every mark and silence, so a sentence's converted
 * length is its duration at the output rate and marks sit on exact frames.
 *
 * Crash safety of WAV files: the header's sizes are rewritten (one 44-byte
 * pwrite, after the data it counts) at every playback mark, i.e. at each
 * sentence's start and end, and after every 0.5 s of audio, so a kill -9
 * leaves a file whose header covers all but at most the last 0.5 s written.
 *
 * A lost device: the first failing write closes the stream and the sink
 * goes "down": writes fail at once (the pipeline drops the audio and keeps
 * reading) and every write after a backoff (250 ms doubling to 2 s) tries to
 * reopen the device. */
#define _POSIX_C_SOURCE 200809L
#ifdef STTS_HAVE_ALSA
#include <alsa/asoundlib.h>
#endif
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <portaudio.h>
#include <samplerate.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "stts_audio.h"

#define MARKS 4096
#define STALL_NS 3000000000ULL  /* a device that takes nothing for 3 s is dead */
#define HEADER_EVERY_S 0.5      /* WAV: sizes rewritten at least this often */
#define BACKOFF_MIN_MS 250.0
#define BACKOFF_MAX_MS 2000.0

typedef struct {
    uint64_t pos;
    _Atomic uint64_t handed_ns, played_ns;
} mark;

struct audio_sink {
    audio_params p;
    int device_rate;
    /* file sinks */
    int fd;
    int own_fd;
    int seekable;
    uint64_t data_bytes;
    uint64_t header_bytes;  /* what the header on disk says */
    /* lost device: writes fail fast until a reopen works */
    int down;
    char down_why[256];     /* the failure that took it down, for later errors */
    uint64_t retry_ns;
    double backoff_ms;
    /* TEST-ONLY fault injection (STTS_FAULT, docs/RELIABILITY.md) */
    long fault_after_frames, fault_down_ms;
    uint64_t fault_up_ns;
    int file_errno;         /* a write failed: later writes fail too, unless the file can resume (file_resumes) */
    /* device sink */
    PaStream *stream;
    int pa_up;
    int channels;
    int started;
    int16_t *ring;
    uint64_t cap;
    _Atomic uint64_t wpos, rpos;
    atomic_uint abort_req, abort_ack;
    atomic_int cb_running;
    double latency_s;
    /* the rate converter (writer thread only) */
    SRC_STATE *src;         /* made on the first write that needs it */
    int src_in;             /* input rate of the run being converted; 0: none */
    unsigned src_epoch;     /* abort epoch the converter's state belongs to */
    unsigned w_epoch;       /* abort epoch the current write started in */
    float *fin, *fout;
    int16_t *conv;
    size_t conv_cap;
    /* marks (device: stamped by the callback; files: at once) */
    mark marks[MARKS];
    _Atomic uint64_t mark_head, mark_tail;
    uint64_t frames_in;
};

void audio_default_params(audio_params *p) {
    memset(p, 0, sizeof *p);
    p->kind = AUDIO_SINK_DEVICE;
    p->latency_ms = 20;
    p->ring_ms = 400;
    p->fd = 1;
}

static void sleep_ms(double ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(fmod(ms, 1000.0) * 1e6)};
    nanosleep(&ts, NULL);
}

/* ---- files -------------------------------------------------------------- */

static void put32(unsigned char *b, uint32_t v) { b[0] = v; b[1] = v >> 8; b[2] = v >> 16; b[3] = v >> 24; }
static void put16(unsigned char *b, uint16_t v) { b[0] = v & 0xFF; b[1] = v >> 8; }

/* *done (may be NULL) gets the bytes written, also when it fails part way. */
static stts_status write_all(int fd, const void *buf, size_t n, size_t *done, const char *what, stts_error *err) {
    const char *b = buf;
    if (done) *done = 0;
    while (n > 0) {
        ssize_t k = write(fd, b, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) { sleep_ms(1); continue; }
            int e = errno;
            stts_error_set(err, STTS_ERR_IO, "writing audio to %s failed: %s", what, strerror(e));
            errno = e;
            return STTS_ERR_IO;
        }
        b += k;
        n -= (size_t)k;
        if (done) *done += (size_t)k;
    }
    return STTS_OK;
}

/* What errors call the output: the WAV file, or the file a RAW sink's fd
 * was opened on when the caller names it (`say --output x.raw`: a full disk
 * was reported as "standard output"). */
static const char *sink_name(const audio_sink *s) {
    return s->p.kind != AUDIO_SINK_DEVICE && s->p.path && strcmp(s->p.path, "-") != 0 ? s->p.path
                                                                                       : "standard output";
}

static void wav_header(unsigned char h[44], int rate, uint64_t data_bytes) {
    uint32_t d = data_bytes > 0xFFFFFFFFULL - 36 ? 0xFFFFFFFFU - 36 : (uint32_t)data_bytes;
    memcpy(h, "RIFF", 4);
    put32(h + 4, 36 + d);
    memcpy(h + 8, "WAVEfmt ", 8);
    put32(h + 16, 16);
    put16(h + 20, 1);
    put16(h + 22, 1);
    put32(h + 24, (uint32_t)rate);
    put32(h + 28, (uint32_t)rate * 2);
    put16(h + 32, 2);
    put16(h + 34, 16);
    memcpy(h + 36, "data", 4);
    put32(h + 40, d);
}

static stts_status open_file(audio_sink *s, stts_error *err) {
    if (s->p.kind == AUDIO_SINK_RAW) {
        if (s->p.fd < 0) return stts_error_set(err, STTS_ERR_INVALID_ARG, "raw PCM sink: no file descriptor");
        s->fd = s->p.fd;
        return STTS_OK;
    }
    if (!s->p.path || !*s->p.path) return stts_error_set(err, STTS_ERR_INVALID_ARG, "WAV sink: no file name");
    if (strcmp(s->p.path, "-") == 0) {
        s->fd = 1;
    } else {
        s->fd = open(s->p.path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (s->fd < 0)
            return stts_error_set(err, STTS_ERR_IO, "cannot write WAV file '%s': %s", s->p.path, strerror(errno));
        s->own_fd = 1;
    }
    s->seekable = lseek(s->fd, 0, SEEK_CUR) >= 0;
    unsigned char h[44];
    /* Unseekable (a pipe): the sizes say "as long as it goes". */
    wav_header(h, s->p.sample_rate, s->seekable ? 0 : 0xFFFFFFFFULL);
    return write_all(s->fd, h, sizeof h, NULL, sink_name(s), err);
}

/* Rewrites the WAV header to cover the whole frames written so far. One
 * pwrite of the whole header: a kill never leaves it half updated. */
static stts_status wav_refresh(audio_sink *s, stts_error *err) {
    if (s->p.kind != AUDIO_SINK_WAV || !s->seekable || s->fd < 0) return STTS_OK;
    uint64_t bytes = s->data_bytes & ~(uint64_t)1;
    if (bytes == s->header_bytes) return STTS_OK;
    unsigned char h[44];
    wav_header(h, s->p.sample_rate, bytes);
    if (pwrite(s->fd, h, sizeof h, 0) != (ssize_t)sizeof h)
        return stts_error_set(err, STTS_ERR_IO, "cannot update the WAV header of '%s': %s", s->p.path,
                              strerror(errno));
    s->header_bytes = bytes;
    return STTS_OK;
}

/* ---- device ------------------------------------------------------------- */

#ifdef STTS_HAVE_ALSA
static void alsa_quiet(const char *file, int line, const char *fn, int e, const char *fmt, ...) {
    (void)file; (void)line; (void)fn; (void)e; (void)fmt;
}
#endif

/* PortAudio's ALSA host prints every unusable PCM it probes and its JACK
 * host complains when no JACK server runs; the CLI has its own one-line
 * message for a missing device. So stderr is muted while PortAudio probes
 * (STTS_AUDIO_DEBUG=1 keeps it). */
static PaError pa_init(void) {
#ifdef STTS_HAVE_ALSA
    snd_lib_error_set_handler(alsa_quiet);
#endif
    const char *dbg = getenv("STTS_AUDIO_DEBUG");
    if (dbg && *dbg && strcmp(dbg, "0") != 0) return Pa_Initialize();
    fflush(stderr);
    int saved = dup(2), devnull = open("/dev/null", O_WRONLY);
    if (saved >= 0 && devnull >= 0) dup2(devnull, 2);
    PaError e = Pa_Initialize();
    if (saved >= 0 && devnull >= 0) dup2(saved, 2);
    if (saved >= 0) close(saved);
    if (devnull >= 0) close(devnull);
    return e;
}

static void stamp_marks(audio_sink *s, uint64_t upto, uint64_t now, uint64_t c0, double lat) {
    uint64_t tail = atomic_load_explicit(&s->mark_tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&s->mark_head, memory_order_acquire);
    while (tail < head) {
        mark *m = &s->marks[tail % MARKS];
        if (m->pos > upto) break;
        double ahead = m->pos > c0 ? (double)(m->pos - c0) / s->device_rate : 0.0;
        atomic_store_explicit(&m->handed_ns, now, memory_order_relaxed);
        atomic_store_explicit(&m->played_ns, now + (uint64_t)((lat + ahead) * 1e9), memory_order_release);
        tail++;
    }
    atomic_store_explicit(&s->mark_tail, tail, memory_order_release);
}

static int pa_callback(const void *in, void *out, unsigned long frames, const PaStreamCallbackTimeInfo *ti,
                       PaStreamCallbackFlags flags, void *user) {
    (void)in; (void)flags;
    audio_sink *s = user;
    int16_t *o = out;
    uint64_t now = stts_now_ns();
    uint64_t r = atomic_load_explicit(&s->rpos, memory_order_relaxed);
    uint64_t w = atomic_load_explicit(&s->wpos, memory_order_acquire);
    unsigned req = atomic_load_explicit(&s->abort_req, memory_order_acquire);
    if (req != atomic_load_explicit(&s->abort_ack, memory_order_relaxed)) {
        r = w;  /* discard everything queued */
        atomic_store_explicit(&s->rpos, r, memory_order_release);
        stamp_marks(s, r, now, r, 0);
        atomic_store_explicit(&s->abort_ack, req, memory_order_release);
    }
    uint64_t avail = w - r;
    unsigned long n = avail < frames ? (unsigned long)avail : frames;
    for (unsigned long i = 0; i < n; i++) {
        int16_t x = s->ring[(r + i) % s->cap];
        for (int c = 0; c < s->channels; c++) o[i * s->channels + c] = x;
    }
    memset(o + n * s->channels, 0, (frames - n) * s->channels * sizeof *o);
    double lat = ti ? ti->outputBufferDacTime - ti->currentTime : 0;
    if (!(lat >= 0 && lat < 1.0)) lat = s->latency_s;
    atomic_store_explicit(&s->rpos, r + n, memory_order_release);
    stamp_marks(s, r + n, now, r, lat);
    atomic_store_explicit(&s->cb_running, 1, memory_order_relaxed);
    return paContinue;
}

static int find_device(const char *want, stts_error *err) {
    int n = Pa_GetDeviceCount();
    if (!want || !*want) {
        int d = Pa_GetDefaultOutputDevice();
        if (d == paNoDevice)
            stts_error_set(err, STTS_ERR_DEVICE,
                           "no sound output device found; write to a file instead with --output FILE.wav "
                           "(or --output - for raw PCM on stdout)");
        return d;
    }
    char *end;
    long idx = strtol(want, &end, 10);
    if (*end == '\0') {
        const PaDeviceInfo *di = idx >= 0 && idx < n ? Pa_GetDeviceInfo((int)idx) : NULL;
        if (!di || di->maxOutputChannels < 1) {
            stts_error_set(err, STTS_ERR_NOT_FOUND, "audio device %ld is not an output device (`stream-tts voices --audio-devices` lists them)", idx);
            return paNoDevice;
        }
        return (int)idx;
    }
    int sub = paNoDevice;
    for (int i = 0; i < n; i++) {
        const PaDeviceInfo *di = Pa_GetDeviceInfo(i);
        if (!di || di->maxOutputChannels < 1) continue;
        if (strcmp(di->name, want) == 0) return i;
        size_t lw = strlen(want), ln = strlen(di->name);
        for (size_t k = 0; sub == paNoDevice && k + lw <= ln; k++)
            if (strncasecmp(di->name + k, want, lw) == 0) sub = i;
    }
    if (sub == paNoDevice)
        stts_error_set(err, STTS_ERR_NOT_FOUND, "no audio output device named '%s' (`stream-tts voices --audio-devices` lists them)", want);
    return sub;
}

static stts_status open_device(audio_sink *s, stts_error *err) {
    PaError pe = pa_init();
    if (pe != paNoError)
        return stts_error_set(err, STTS_ERR_DEVICE, "cannot start PortAudio (%s); use --output FILE.wav instead",
                              Pa_GetErrorText(pe));
    s->pa_up = 1;
    int dev = find_device(s->p.device, err);
    if (dev == paNoDevice) return err ? err->code : STTS_ERR_DEVICE;
    const PaDeviceInfo *di = Pa_GetDeviceInfo(dev);
    double lat = s->p.latency_ms > 0 ? s->p.latency_ms / 1000.0 : di->defaultLowOutputLatency;
    PaStreamParameters op;
    memset(&op, 0, sizeof op);
    op.device = dev;
    op.sampleFormat = paInt16;
    op.suggestedLatency = lat;
    /* Rate: forced, else ours if the device takes it, else its own. */
    double rates[2] = {s->p.device_rate ? s->p.device_rate : s->p.sample_rate, di->defaultSampleRate};
    int chosen = 0;
    for (int ri = 0; ri < (s->p.device_rate ? 1 : 2) && !chosen; ri++) {
        for (int ch = 1; ch <= 2 && !chosen; ch++) {
            if (ch > di->maxOutputChannels) break;
            op.channelCount = ch;
            if (Pa_IsFormatSupported(NULL, &op, rates[ri]) == paFormatIsSupported) {
                s->device_rate = (int)rates[ri];
                s->channels = ch;
                chosen = 1;
            }
        }
    }
    if (!chosen)
        return stts_error_set(err, STTS_ERR_DEVICE, "audio device '%s' takes neither %d Hz nor %.0f Hz 16-bit output",
                              di->name, (int)rates[0], di->defaultSampleRate);
    op.channelCount = s->channels;
    s->cap = (uint64_t)(s->device_rate * (s->p.ring_ms > 0 ? s->p.ring_ms : 400) / 1000.0) + 1024;
    s->ring = calloc(s->cap, sizeof *s->ring);
    if (!s->ring) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory for the audio ring");
    /* Small callback periods keep abort and marks tight (~5 ms). */
    unsigned long period = (unsigned long)(s->device_rate / 200);
    pe = Pa_OpenStream(&s->stream, NULL, &op, s->device_rate, period, paClipOff, pa_callback, s);
    if (pe != paNoError) {
        s->stream = NULL;
        return stts_error_set(err, STTS_ERR_DEVICE, "cannot open audio device '%s': %s; use --output FILE.wav instead",
                              di->name, Pa_GetErrorText(pe));
    }
    const PaStreamInfo *si = Pa_GetStreamInfo(s->stream);
    s->latency_s = si ? si->outputLatency : lat;
    return STTS_OK;
}

static stts_status start_stream(audio_sink *s, stts_error *err) {
    if (s->started) return STTS_OK;
    PaError pe = Pa_StartStream(s->stream);
    if (pe != paNoError) return stts_error_set(err, STTS_ERR_DEVICE, "cannot start audio output: %s", Pa_GetErrorText(pe));
    s->started = 1;
    return STTS_OK;
}

/* Copies device-rate samples into the ring, waiting for room. */
static stts_status ring_put(audio_sink *s, const int16_t *pcm, size_t n, unsigned epoch, stts_error *err) {
    uint64_t stall_since = 0, last_r = 0;
    while (n > 0) {
        if (atomic_load(&s->abort_req) != epoch) return stts_error_set(err, STTS_ERR_CANCELLED, "audio aborted");
        uint64_t w = atomic_load_explicit(&s->wpos, memory_order_relaxed);
        uint64_t r = atomic_load_explicit(&s->rpos, memory_order_acquire);
        uint64_t room = s->cap - (w - r);
        if (room == 0) {
            stts_status st = start_stream(s, err);  /* a full ring must play */
            if (st != STTS_OK) return st;
            uint64_t now = stts_now_ns();
            if (r != last_r || !stall_since) { stall_since = now; last_r = r; }
            else if (now - stall_since > STALL_NS)
                return stts_error_set(err, STTS_ERR_DEVICE, "the audio device stopped taking samples");
            sleep_ms(2);
            continue;
        }
        size_t k = n < room ? n : (size_t)room;
        for (size_t i = 0; i < k; i++) s->ring[(w + i) % s->cap] = pcm[i];
        atomic_store_explicit(&s->wpos, w + k, memory_order_release);
        pcm += k;
        n -= k;
    }
    /* Start once a latency's worth is queued, so the first callback has data. */
    if (!s->started && atomic_load(&s->wpos) - atomic_load(&s->rpos) >= (uint64_t)(s->device_rate * s->latency_s))
        return start_stream(s, err);
    return STTS_OK;
}

/* ---- rate conversion ------------------------------------------------------ */

/* What the sink feeds runs at this rate; every write is converted to it. */
static int out_rate(const audio_sink *s) {
    return s->p.kind == AUDIO_SINK_DEVICE ? s->device_rate : s->p.sample_rate;
}

static void go_down(audio_sink *s, const char *why);

/* A WAV file on disk (seekable) tries again after a failed write: the
 * daemon writing to one for days went silent for good after one "disk
 * full", though it said (and the pipeline says) speech comes back when the
 * output works again. A pipe or raw stream does not (its reader is gone). */
static int file_resumes(const audio_sink *s) { return s->p.kind == AUDIO_SINK_WAV && s->seekable && s->fd >= 0; }

/* Output-rate samples to the file or the device ring. */
static stts_status put_out(audio_sink *s, const int16_t *pcm, size_t n, stts_error *err) {
    if (n == 0) return STTS_OK;
    if (s->p.kind != AUDIO_SINK_DEVICE) {
        /* s16le on disk; this machine is little-endian (x86, arm). */
        size_t done = 0;
        stts_status st = write_all(s->fd, pcm, n * 2, &done, sink_name(s), err);
        s->data_bytes += done;
        s->frames_in = s->data_bytes / 2;
        if (st != STTS_OK) {
            /* Disk full and the like: the header keeps covering what is on disk. */
            s->file_errno = errno ? errno : EIO;
            if (file_resumes(s) && (s->data_bytes & 1)) {
                /* half a sample written: cut back to whole ones, so that
                 * a later write lands aligned */
                uint64_t whole = s->data_bytes & ~(uint64_t)1;
                if (ftruncate(s->fd, (off_t)(44 + whole)) == 0 && lseek(s->fd, (off_t)(44 + whole), SEEK_SET) >= 0) {
                    s->data_bytes = whole;
                    s->frames_in = whole / 2;
                } else {
                    s->file_errno = -1;   /* cannot realign: it stays failed */
                }
            }
            wav_refresh(s, NULL);
            return st;
        }
        if (s->data_bytes - s->header_bytes >= (uint64_t)(HEADER_EVERY_S * s->p.sample_rate) * 2)
            return wav_refresh(s, err);
        return STTS_OK;
    }
    stts_status st = ring_put(s, pcm, n, s->w_epoch, err);
    if (st == STTS_OK) s->frames_in += n;
    else if (st == STTS_ERR_DEVICE) go_down(s, err ? err->msg : "the audio device failed");
    return st;
}

/* Forgets the converter's history (after an abort, or at a run's end). */
static void conv_reset(audio_sink *s) {
    if (s->src) src_reset(s->src);
    s->src_in = 0;
}

/* Runs n samples at s->src_in through the converter; last=1 flushes what
 * it holds (the filter's tail), so the run comes out at its full length. */
static stts_status convert(audio_sink *s, const int16_t *pcm, size_t n, int last, stts_error *err) {
    if (!s->src) {
        int e = 0;
        /* SINC_FASTEST: band-limited (no audible aliasing in speech) at a
         * small fraction of a core even at 48 kHz. */
        s->src = src_new(SRC_SINC_FASTEST, 1, &e);
        if (!s->src) return stts_error_set(err, STTS_ERR_INTERNAL, "libsamplerate: %s", src_strerror(e));
    }
    double ratio = (double)out_rate(s) / s->src_in;
    size_t out_max = (size_t)ceil(n * ratio) + 512;
    if (n + out_max + 1 > s->conv_cap) {
        size_t cap = (n + out_max + 1) * 2;
        float *a = realloc(s->fin, cap * sizeof *a);
        if (a) s->fin = a;
        float *b = a ? realloc(s->fout, cap * sizeof *b) : NULL;
        if (b) s->fout = b;
        int16_t *c = b ? realloc(s->conv, cap * sizeof *c) : NULL;
        if (c) s->conv = c;
        if (!c) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory resampling audio");
        s->conv_cap = cap;
    }
    for (size_t i = 0; i < n; i++) s->fin[i] = pcm[i] / 32768.0f;
    SRC_DATA d;
    memset(&d, 0, sizeof d);
    d.data_in = s->fin;
    d.input_frames = (long)n;
    d.src_ratio = ratio;
    d.end_of_input = last;
    for (;;) {
        d.data_out = s->fout;
        d.output_frames = (long)out_max;
        int e = src_process(s->src, &d);
        if (e) return stts_error_set(err, STTS_ERR_INTERNAL, "libsamplerate: %s", src_strerror(e));
        for (long i = 0; i < d.output_frames_gen; i++) {
            float x = s->fout[i] * 32768.0f;
            s->conv[i] = x >= 32767.0f ? 32767 : x <= -32768.0f ? -32768 : (int16_t)lrintf(x);
        }
        stts_status st = put_out(s, s->conv, (size_t)d.output_frames_gen, err);
        if (st != STTS_OK) return st;
        d.data_in += d.input_frames_used;
        d.input_frames -= d.input_frames_used;
        if (d.input_frames == 0 && (!last || d.output_frames_gen == 0)) break;
    }
    return STTS_OK;
}

/* Called as each write begins: audio_abort (any thread) only bumps the
 * epoch; the writer then drops the converter's history of the discarded
 * audio here, so none of its tail plays after the abort. */
static void conv_sync(audio_sink *s) {
    s->w_epoch = atomic_load(&s->abort_req);
    if (s->w_epoch != s->src_epoch) { conv_reset(s); s->src_epoch = s->w_epoch; }
}

/* Ends the run being converted: its tail goes out and the converter is
 * free for the next run, of any rate. */
static stts_status conv_flush(audio_sink *s, stts_error *err) {
    conv_sync(s);
    if (!s->src_in) return STTS_OK;
    stts_status st = convert(s, NULL, 0, 1, err);
    conv_reset(s);
    return st;
}

/* ---- a lost output ------------------------------------------------------- */

static void close_device(audio_sink *s) {
    if (s->stream) {
        if (s->started) Pa_AbortStream(s->stream);
        Pa_CloseStream(s->stream);
        s->stream = NULL;
    }
    s->started = 0;
    if (s->pa_up) { Pa_Terminate(); s->pa_up = 0; }
    conv_reset(s);   /* what it held was for the lost output */
    free(s->ring);
    s->ring = NULL;
}

/* The output failed: what was queued is dropped, waiting marks are stamped
 * (nothing will play them), and writes fail at once until try_up works. */
static void go_down(audio_sink *s, const char *why) {
    if (s->down) return;
    s->down = 1;
    snprintf(s->down_why, sizeof s->down_why, "%s", why);
    s->backoff_ms = BACKOFF_MIN_MS;
    s->retry_ns = stts_now_ns() + (uint64_t)(s->backoff_ms * 1e6);
    if (s->p.kind == AUDIO_SINK_DEVICE) {
        close_device(s);
        uint64_t w = atomic_load(&s->wpos);
        atomic_store(&s->rpos, w);
        stamp_marks(s, w, stts_now_ns(), w, 0);
    }
}

/* Brings the output back, trying at most once per backoff interval. */
static stts_status try_up(audio_sink *s, stts_error *err) {
    uint64_t now = stts_now_ns();
    if (now < s->retry_ns)
        return stts_error_set(err, STTS_ERR_DEVICE, "%s (the output is retried every few seconds)", s->down_why);
    stts_status st = STTS_OK;
    const char *back = getenv("STTS_FAULT_AUDIO_BACK");   /* TEST-ONLY: outage ends when this file exists */
    if (s->fault_up_ns && (back && *back ? access(back, F_OK) != 0 : now < s->fault_up_ns)) {
        st = stts_error_set(err, STTS_ERR_DEVICE, "%s (the output is retried every few seconds)", s->down_why);
    } else if (s->p.kind == AUDIO_SINK_DEVICE) {
        st = open_device(s, err);
        if (st != STTS_OK) close_device(s);
    }
    if (st != STTS_OK) {
        s->backoff_ms = fmin(s->backoff_ms * 2, BACKOFF_MAX_MS);
        s->retry_ns = now + (uint64_t)(s->backoff_ms * 1e6);
        return st;
    }
    s->down = 0;
    return STTS_OK;
}

/* ---- public ------------------------------------------------------------- */

stts_status audio_open(const audio_params *p, audio_sink **out, stts_error *err) {
    *out = NULL;
    if (!p || p->sample_rate < 4000 || p->sample_rate > 384000)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "audio sink: sample rate %d Hz out of range",
                              p ? p->sample_rate : 0);
    audio_sink *s = calloc(1, sizeof *s);
    if (!s) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    s->p = *p;
    s->fd = -1;
    s->device_rate = p->sample_rate;
    stts_status st;
    switch (p->kind) {
    case AUDIO_SINK_DEVICE: st = open_device(s, err); break;
    case AUDIO_SINK_WAV:
    case AUDIO_SINK_RAW: st = open_file(s, err); break;
    default: st = stts_error_set(err, STTS_ERR_INVALID_ARG, "unknown audio sink kind %d", (int)p->kind);
    }
    if (st != STTS_OK) {
        audio_close(s, NULL);
        return st;
    }
    /* TEST-ONLY fault injection: the output disappears after this much
     * audio and comes back audio_down_ms later (never when unset). */
    long after = stts_fault("audio_fail_after_ms");
    s->fault_after_frames = after >= 0 ? after * (long)out_rate(s) / 1000 : -1;
    s->fault_down_ms = stts_fault("audio_down_ms");
    *out = s;
    return STTS_OK;
}

stts_status audio_write(audio_sink *s, const int16_t *pcm, size_t n, int rate, stts_error *err) {
    if (!s || (!pcm && n)) return stts_error_set(err, STTS_ERR_INVALID_ARG, "audio_write: no sink or no samples");
    if (rate < 1000 || rate > 384000)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "audio_write: samples tagged with %d Hz, out of range", rate);
    if (n == 0) return STTS_OK;
    if (s->file_errno > 0 && file_resumes(s)) {
        s->file_errno = 0;   /* tried again: put_out sets it again if it fails */
    } else if (s->file_errno) {
        return stts_error_set(err, STTS_ERR_IO, "writing audio to %s failed earlier (%s); nothing more is written",
                              sink_name(s), s->file_errno > 0 ? strerror(s->file_errno) : "a partial sample");
    }
    if (s->down) {
        stts_status st = try_up(s, err);
        if (st != STTS_OK) return st;
    }
    int out = out_rate(s);
    /* TEST-ONLY fault injection (STTS_FAULT=audio_fail_after_ms:N), counted in output frames. */
    uint64_t n_out = (uint64_t)n * (uint64_t)out / (uint64_t)rate;
    if (s->fault_after_frames >= 0 && !s->fault_up_ns && s->frames_in + n_out > (uint64_t)s->fault_after_frames) {
        s->fault_up_ns = s->fault_down_ms >= 0 ? stts_now_ns() + (uint64_t)s->fault_down_ms * 1000000ull : UINT64_MAX;
        go_down(s, "the audio device was lost (injected fault)");
        return stts_error_set(err, STTS_ERR_DEVICE, "%s", s->down_why);
    }
    conv_sync(s);
    if (s->src_in && s->src_in != rate) {   /* another rate: the run before ends here */
        stts_status st = conv_flush(s, err);
        if (st != STTS_OK) return st;
    }
    if (rate == out) return put_out(s, pcm, n, err);   /* nothing to convert */
    s->src_in = rate;
    return convert(s, pcm, n, 0, err);
}

stts_status audio_silence(audio_sink *s, double ms, stts_error *err) {
    if (!s) return stts_error_set(err, STTS_ERR_INVALID_ARG, "audio_silence: no sink");
    static const int16_t zeros[1024];
    /* Made at the output rate: it needs no conversion, and the run before
     * it is flushed first (audio_write sees the rate change). */
    int out = out_rate(s);
    size_t n = (size_t)llround(ms * out / 1000.0);
    while (n > 0) {
        size_t k = n < 1024 ? n : 1024;
        stts_status st = audio_write(s, zeros, k, out, err);
        if (st != STTS_OK) return st;
        n -= k;
    }
    return STTS_OK;
}

stts_status audio_mark(audio_sink *s, uint64_t *id, stts_error *err) {
    uint64_t head = atomic_load(&s->mark_head);
    if (head - atomic_load(&s->mark_tail) >= MARKS)
        return stts_error_set(err, STTS_ERR_INTERNAL, "too many audio marks waiting for playback (%d)", MARKS);
    mark *m = &s->marks[head % MARKS];
    atomic_store(&m->handed_ns, 0);
    atomic_store(&m->played_ns, 0);
    /* A mark is a sentence boundary: the run before it is flushed, so the
     * mark sits after its last converted sample. */
    if (!s->down && !s->file_errno) conv_flush(s, NULL);
    wav_refresh(s, NULL);   /* sentence boundaries: the header follows the data */
    if (s->p.kind == AUDIO_SINK_DEVICE && !s->down) {
        m->pos = atomic_load(&s->wpos);
        atomic_store_explicit(&s->mark_head, head + 1, memory_order_release);
    } else {
        uint64_t now = stts_now_ns();
        m->pos = s->frames_in;
        atomic_store(&m->handed_ns, now);
        atomic_store(&m->played_ns, now);
        atomic_store(&s->mark_head, head + 1);
        atomic_store(&s->mark_tail, head + 1);
    }
    *id = head;
    return STTS_OK;
}

int audio_mark_query(audio_sink *s, uint64_t id, uint64_t *handed_ns, uint64_t *played_ns) {
    uint64_t tail = atomic_load_explicit(&s->mark_tail, memory_order_acquire);
    if (id >= tail || tail - id > MARKS) return 0;
    mark *m = &s->marks[id % MARKS];
    if (played_ns) *played_ns = atomic_load_explicit(&m->played_ns, memory_order_acquire);
    if (handed_ns) *handed_ns = atomic_load_explicit(&m->handed_ns, memory_order_relaxed);
    /* A newer mark may have reused the slot since we read tail. */
    return atomic_load(&s->mark_head) - id <= MARKS;
}

stts_status audio_drain(audio_sink *s, stts_error *err) {
    if (!s) return stts_error_set(err, STTS_ERR_INVALID_ARG, "audio_drain: no sink");
    if (s->p.kind != AUDIO_SINK_DEVICE) {
        stts_status st = s->file_errno ? STTS_OK : conv_flush(s, err);
        stts_status st2 = wav_refresh(s, st == STTS_OK ? err : NULL);
        return st != STTS_OK ? st : st2;
    }
    if (s->down) return stts_error_set(err, STTS_ERR_DEVICE, "%s", s->down_why);
    stts_status fst = conv_flush(s, err);
    if (fst != STTS_OK) return fst;
    unsigned epoch = s->w_epoch;
    if (atomic_load(&s->wpos) == atomic_load(&s->rpos)) return STTS_OK;
    stts_status st = start_stream(s, err);
    if (st != STTS_OK) return st;
    uint64_t stall_since = stts_now_ns(), last_r = atomic_load(&s->rpos);
    while (atomic_load(&s->rpos) != atomic_load(&s->wpos)) {
        if (atomic_load(&s->abort_req) != epoch) return stts_error_set(err, STTS_ERR_CANCELLED, "audio aborted");
        uint64_t r = atomic_load(&s->rpos), now = stts_now_ns();
        if (r != last_r) { last_r = r; stall_since = now; }
        else if (now - stall_since > STALL_NS) {
            go_down(s, "the audio device stopped taking samples");
            return stts_error_set(err, STTS_ERR_DEVICE, "%s", s->down_why);
        }
        sleep_ms(2);
    }
    /* The last callback's samples are still in the device's buffer. */
    sleep_ms(s->latency_s * 1000.0 + 1.0);
    return STTS_OK;
}

void audio_abort(audio_sink *s) {
    if (!s || s->p.kind != AUDIO_SINK_DEVICE) return;
    unsigned req = atomic_fetch_add(&s->abort_req, 1) + 1;
    if (!s->started || !s->stream) {
        /* No callback to do it: nothing is playing, just forget the queue.
         * (Only the writer thread starts the stream, so this is safe when
         * called from it; from elsewhere a start races at worst by one write.) */
        atomic_store(&s->rpos, atomic_load(&s->wpos));
        stamp_marks(s, atomic_load(&s->rpos), stts_now_ns(), atomic_load(&s->rpos), 0);
        atomic_store(&s->abort_ack, req);
        return;
    }
    /* The callback acknowledges within one period (5 ms); don't hang on a
     * dead device. */
    for (int i = 0; i < 50 && atomic_load(&s->abort_ack) != req; i++) sleep_ms(1);
}

stts_status audio_close(audio_sink *s, stts_error *err) {
    if (!s) return STTS_OK;
    stts_status st = STTS_OK;
    if (s->p.kind == AUDIO_SINK_DEVICE) {
        if (s->stream && !s->down) {
            st = audio_drain(s, err);
            if (s->started && s->stream) Pa_StopStream(s->stream);
        }
        close_device(s);
    } else if (s->fd >= 0) {
        st = audio_drain(s, err);   /* the converter's tail, then the header */
        if (s->own_fd && close(s->fd) != 0 && st == STTS_OK)
            st = stts_error_set(err, STTS_ERR_IO, "closing '%s' failed: %s", s->p.path, strerror(errno));
    }
    if (s->src) src_delete(s->src);
    free(s->ring);
    free(s->fin);
    free(s->fout);
    free(s->conv);
    free(s);
    return st;
}

int audio_sample_rate(const audio_sink *s) { return s->p.sample_rate; }
int audio_device_rate(const audio_sink *s) { return s->device_rate; }
uint64_t audio_frames_written(const audio_sink *s) { return s->frames_in; }

stts_status audio_list_devices(audio_device_fn fn, void *user, stts_error *err) {
    PaError pe = pa_init();
    if (pe != paNoError) return stts_error_set(err, STTS_ERR_DEVICE, "cannot start PortAudio: %s", Pa_GetErrorText(pe));
    int n = Pa_GetDeviceCount(), def = Pa_GetDefaultOutputDevice();
    for (int i = 0; i < n; i++) {
        const PaDeviceInfo *di = Pa_GetDeviceInfo(i);
        if (!di || di->maxOutputChannels < 1) continue;
        const PaHostApiInfo *hi = Pa_GetHostApiInfo(di->hostApi);
        audio_device_info d = {i, di->name, hi ? hi->name : "?", di->maxOutputChannels, di->defaultSampleRate, i == def};
        if (fn(user, &d)) break;
    }
    Pa_Terminate();
    return STTS_OK;
}
