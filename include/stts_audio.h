/* stts_audio.h - where speech goes: a sound device through PortAudio, a WAV
 * file, or raw 16-bit PCM to a file descriptor (stdout for pipes).
 *
 * All sinks take mono int16 samples tagged with their rate (audio_write's
 * rate: what the voice made them at) and are the program's one place that
 * converts rates (libsamplerate): to params.sample_rate for a WAV or raw
 * file, to the device's rate for a sound card (params.sample_rate when the
 * device takes it). Writes of different rates may follow each other; each
 * keeps its duration. The device sink puts samples in a ring buffer that a
 * low-latency PortAudio callback drains; audio_write blocks while the ring
 * is full (back-pressure for the pipeline).
 *
 * Timing: audio_mark() registers the current write position; once playback
 * passes it, audio_mark_query() gives when that position was handed to the
 * device and when it is (estimated to be) heard, on the stts_now_ns() clock.
 * A pipeline marks before an utterance's first sample and after its last:
 * the first mark's times are "first sample out", the second's "last sample
 * played". For file and raw sinks both times are the write time.
 *
 * Thread safety: one thread writes (write, silence, mark, drain, close);
 * audio_abort() and audio_mark_query() may be called from any other thread.
 *
 * No sound card (servers, CI, containers): audio_open fails with
 * STTS_ERR_DEVICE and a one-line message pointing at the fallback, writing
 * to a file (stream-tts --output FILE.wav, or --output - for raw PCM). */
#ifndef STTS_AUDIO_H
#define STTS_AUDIO_H

#include <stddef.h>
#include <stdint.h>

#include "stts_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    AUDIO_SINK_DEVICE = 0,  /* PortAudio */
    AUDIO_SINK_WAV,         /* RIFF WAV file; path "-" writes to stdout */
    AUDIO_SINK_RAW          /* headerless s16le mono to params.fd */
} audio_sink_kind;

typedef struct {
    audio_sink_kind kind;
    int sample_rate;        /* output rate: of the file; the device's if it takes it; required */
    const char *device;     /* DEVICE: name (case-insensitive substring) or index; NULL = default */
    int device_rate;        /* DEVICE: force the device to this rate (0 = sample_rate if it can) */
    double latency_ms;      /* DEVICE: requested output latency (default 20) */
    double ring_ms;         /* DEVICE: ring buffer length (default 400) */
    const char *path;       /* WAV; RAW: optional, the file fd writes to, for messages (NULL: standard output) */
    int fd;                 /* RAW (default 1 = stdout) */
} audio_params;

typedef struct audio_sink audio_sink;

void audio_default_params(audio_params *p);
stts_status audio_open(const audio_params *p, audio_sink **out, stts_error *err);
/* Drains (device: plays what is queued), finalizes the WAV header, frees. */
stts_status audio_close(audio_sink *s, stts_error *err);

/* Queues n samples made at `rate` Hz (tagged with their rate: a voice's
 * native rate); blocks while the ring is full. Returns
 * STTS_ERR_CANCELLED when audio_abort() was called during the write. */
stts_status audio_write(audio_sink *s, const int16_t *pcm, size_t n, int rate, stts_error *err);
/* Queues ms of silence (the gap between sentences). Like audio_mark and
 * audio_drain, it ends the run being converted (its tail is written). */
stts_status audio_silence(audio_sink *s, double ms, stts_error *err);
/* Waits until everything written has been played. */
stts_status audio_drain(audio_sink *s, stts_error *err);
/* Discards queued audio; the device falls silent within one callback
 * period (well under 50 ms). Writes in progress return CANCELLED; later
 * writes play normally. Any thread. */
void audio_abort(audio_sink *s);

/* Marks the current write position; *id names it for audio_mark_query. */
stts_status audio_mark(audio_sink *s, uint64_t *id, stts_error *err);
/* 1 and the times when playback has reached mark id, 0 when not yet (or
 * when the mark is too old to be remembered: the last 4096 are kept). */
int audio_mark_query(audio_sink *s, uint64_t id, uint64_t *handed_ns, uint64_t *played_ns);

int audio_sample_rate(const audio_sink *s);   /* params.sample_rate: a file's rate */
int audio_device_rate(const audio_sink *s);   /* the rate the device runs at */
/* Frames handed to the output so far, at its rate (after conversion). */
uint64_t audio_frames_written(const audio_sink *s);

/* Lists output devices; `index` is what --audio-device accepts. */
typedef struct {
    int index;
    const char *name;
    const char *host_api;
    int max_channels;
    double default_rate;
    int is_default;
} audio_device_info;
typedef int (*audio_device_fn)(void *user, const audio_device_info *d);
stts_status audio_list_devices(audio_device_fn fn, void *user, stts_error *err);

#ifdef __cplusplus
}
#endif
#endif
