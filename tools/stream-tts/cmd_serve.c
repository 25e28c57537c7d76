/* cmd_serve.c - `stream-tts serve`: the per-user daemon. It listens on a
 * Unix socket (docs/PROTOCOL.md) before loading anything, then loads the
 * model, voice and audio output once (stts_app) and keeps one speech
 * pipeline warm for every session: one audio queue, sentences in arrival
 * order (or newest session first), per-session mute, optional cue on a
 * change of session.
 *
 * Threads: the main thread runs the poll loop (accept, read request lines,
 * answer, hook hub, spool, idle timers); the speaker thread loads the
 * model and pushes queued sentences into the pipeline (pipeline_push
 * blocks when the pipeline is full, which must never hold the poll loop);
 * a hub job thread while a long request (HUB_JOB_MIN) is taken, which owns
 * the hub meanwhile; the pipeline's own three threads; the signal thread. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "frontend_opts.h"
#include "pipeline_run.h"
#include "stts_app.h"
#include "stts_client.h"
#include "stts_compat.h"
#include "client/log_cap.h"
#include "stts_daemon.h"
#include "stts_pipeline.h"

/* Connections at once: MAX_CLIENTS that may stay (pipe clients, a hook
 * session's ctl ... anything), and RESERVE_SLOTS more taken only when those
 * are all held, each for one request: a control (`ctl stop`, `status`, ...)
 * or a hook. 64 long-lived pipe clients left no slot at all, and `ctl` waited
 * in the listen queue until one closed (it gives up after 10 s): a user must
 * always be able to stop the daemon. A reserve connection is closed once its
 * one request is answered, and must send it within CONN_QUIET_NS of being
 * accepted (bytes trickled in do not extend that), so no client can keep one;
 * the ops that keep a connection (line, end, ping: a pipe client's first
 * request) are refused there. Hooks may hold at most RESERVE_SLOTS -
 * RESERVE_CTL of them (a hook waits for the hub while a huge message is
 * being taken), so RESERVE_CTL always answer a control at once; a hook past
 * that gets "too many clients" and spools its request, which this daemon
 * replays within 0.5 s. The memory bound is unchanged: input buffers share
 * IN_BUDGET, and 8 more slots add at most 8 unsent-reply buffers. */
enum { MAX_CLIENTS = 64, RESERVE_SLOTS = 8, RESERVE_CTL = 2, ALL_SLOTS = MAX_CLIENTS + RESERVE_SLOTS };
/* A connection that has sent no complete request yet, or stops in the
 * middle of one, for this long is closed: 64 silent connections would
 * otherwise shut every hook out. One that has made a request may then
 * wait quietly (a pipe client between lines, an end+wait). */
#define CONN_QUIET_NS (5ull * 1000000000ull)
/* The input buffers of all connections together: each may hold a line of up
 * to DAEMON_MAX_LINE (16 MiB), so 64 connections could hold 1 GiB. Past this
 * budget the connection whose buffer would grow is refused and closed (error
 * reply, log line); 4 whole-size lines at once still fit (64 MiB + 256 KiB). */
#define IN_BUDGET (4 * IN_CAP_MAX)
/* A buffer never needs more than a whole line and one read beyond it (the
 * line is refused then): doubling past that would hold 32 MiB for 16. */
#define IN_CAP_MAX (DAEMON_MAX_LINE + 65536)
/* A buffer this large is freed once empty, not kept for the next line. */
#define IN_KEEP ((size_t)1 << 20)
/* Sessions muted one by one at most. An entry goes when its session ends
 * (SessionEnd, a pipe's end); any local process may mute made-up ids, so
 * at this many the entries of sessions the hub does not hold are dropped,
 * and a mute that still finds no room is refused (never a live session's
 * mute silently lost). */
enum { MAX_MUTED = 512 };

/* Sentences in the pipeline at once: the one playing and the next, made
 * ready while it plays (what the pipeline exists for); the rest wait in the
 * pending queue, where the controls and --order still reach them. */
enum { SPEAK_AHEAD = 2 };

/* Sentences of one session waiting at most (about 14 hours of speech): one
 * 8 MB message (a hook's largest) queued 566000, nine days of speech, and
 * the memory of each stayed with the process. Past it that session's
 * sentences are dropped (said once in the log), not another's: a reply of
 * another session still comes in, and speaks next under --order newest.
 * MAX_PENDING bounds all sessions together. Notifications are always taken. */
enum { MAX_PENDING_SESSION = 20000, MAX_PENDING = 100000 };

/* A sentence waiting for the pipeline (owned by the pending queue). */
typedef struct pend {
    char *session;
    char *text, *lang, *message_id;
    size_t len;
    text_kind kind;
    unsigned flags;   /* INGEST_SENT_* */
    uint64_t seq, arrival_ns, emit_ns;
} pend;

typedef struct {
    int fd;
    char *buf;
    size_t len, cap;
    char *waiting_end;   /* end {"wait":true}: session whose speech must finish first */
    char *pipe_session;  /* the session of its `line` requests, until its `end` */
    size_t scanned;      /* bytes of buf known to hold no '\n' */
    uint64_t heard_ns;   /* accepted, or last bytes received */
    int served;          /* requests answered */
    /* Replies not yet taken by the client's socket: sent as it reads them,
     * never waited for (the poll loop serves every client and hook). */
    char *out;
    size_t out_len, out_cap;
    uint64_t out_ns;     /* when out last shrank, or became non-empty */
    int broken;          /* a reply could not be kept or sent: close it */
    int held_lines;      /* requests left in buf while out was full: answered before more is read */
    int eof;             /* the client has closed its sending side: its lines are still served, its
                          * replies still sent, then it is closed (a client that pipelined requests
                          * and shut down writing lost the replies still queued when the daemon read
                          * its EOF) */
    int oneshot;         /* in a reserve slot (MAX_CLIENTS): one control or hook request, then closed */
    int reserve_hook;    /* ... and that request is a hook (RESERVE_CTL) */
    int in_job;          /* its request is the hub job's (hub_job): the reply comes when it ends */
    int wait_hub;        /* its next request needs the hub while a job holds it: left in buf until then */
} client;
/* A client whose unsent replies pass this many bytes gets no more of its
 * requests read until it takes them; one that takes none for
 * CONN_QUIET_NS is closed. */
enum { OUT_HIGH = 65536 };

typedef struct {
    /* settings */
    pipeline_opts po;
    char sock[108], dir[108], log_path[128], spool[128];   /* the socket path fits sockaddr_un */
    /* What this daemon made at those paths, so that it never removes or
     * talks over another daemon's: the socket it bound and the lock file it
     * holds (flock, for its whole life), by device and inode. */
    dev_t sock_dev, lock_dev;
    ino_t sock_ino, lock_ino;
    int lock_fd;
    daemon_order order;      /* --order */
    int cue;
    double idle_exit_s;
    int idle_held_said;      /* the log said once why an idle daemon stays (a control is set) */
    FILE *log;
    int err_is_log;          /* stderr is serve.log (a daemon a hook started): each line written once */
    pthread_mutex_t log_mu;

    /* the pending queue, between the poll loop and the speaker thread: a
     * sentence is appended, and the next one taken (--order newest too),
     * without walking it (a 2 MB delta is 80000 sentences) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    daemon_queue *pending;
    uint64_t overflow;       /* sentences dropped since the queue was full (MAX_PENDING_SESSION, MAX_PENDING) */
    uint64_t dropped_total;  /* ... since the start: a request's reply says how many were its own */
    int quit;
    pipeline *pl;            /* set once loaded (under mu); freed by the main thread after the speaker ends */
    app *app;
    FILE *metrics;
    char *muted_all;         /* non-NULL string "1" when everything is muted */
    json_t *muted;           /* object: session -> true */
    json_t *mute_tail;       /* object: the ones muted after their session ended (lifted at its next start) */
    json_t *newest;          /* object: session -> prompt counter, for --order newest */
    json_int_t prompt_n;
    char last_session[260];
    char state[32];          /* "loading", "ready", "failed" */
    char notice_lang[32];    /* notices: --notice-lang (flag or configuration file), else the spoken language's */
    char ready_msg[PATH_MAX * 2 + 256];   /* the speaker's "ready in" line, logged by the poll loop */
    int live;                /* poll loop only: the spool is drained, hooks are handled directly */
    char failed_path[128];   /* serve.failed: why the last start could not speak (for the hook) */
    char config_file[PATH_MAX];   /* the configuration file read (or the one it would read) */
    char model_desc[PATH_MAX + 64], device_desc[PATH_MAX];
    double speed;
    atomic_int sig;
    int wake[2];             /* self-pipe: the signal thread wakes poll */
    uint64_t last_activity;
    daemon_hub *hub;
    /* A request line of HUB_JOB_MIN bytes or more is acted on by a thread
     * of its own (hub_job), and the hub is that thread's until it ends: the
     * poll loop meanwhile answers every control and holds the requests
     * that need the hub (hook, line, end) where they are. The first four
     * are the poll loop's own. */
    struct hub_job *job;
    json_t *job_sessions;    /* the hub's sessions when the job began (status, mute) */
    json_t *job_ends;        /* pipe sessions whose client left meanwhile: ended after the job */
    /* Under mu: stops (and mutes) given while the job runs. Its sentences
     * of those sessions are dropped as they come, and the hub is told of
     * the stop once it is back, as if the stop came after the whole request
     * (the words its text stage still holds are not said when flushed). */
    int job_stop_all;
    json_t *job_stopped;     /* object: session -> true */
} server;

/* The text stage takes ~0.4 us a byte (an 8 MB MessageDisplay held the poll
 * loop for 3.5 s: ctl and every other client waited): a line this long
 * (~25 ms of it; a normal batch is a few KB) is the hub job's. */
#define HUB_JOB_MIN ((size_t)64 * 1024)
typedef struct hub_job {
    server *sv;
    pthread_t tid;
    uint64_t tick_ns;        /* not 0: the hub's timers due then (a parked 8 MB Stop said whole), no request */
    int fd;                  /* the client it answers (kept open meanwhile: fds of open clients are unique) */
    int oneshot;             /* that client is in a reserve slot: a line request is not acted on */
    char *line;              /* a copy: the client's buffer may move */
    size_t len;
    daemon_request rq;       /* parsed; when not a hook or line, for the poll loop to act on (back) */
    int back;
    char *reply;
    char *session;           /* a line request's session (the client's pipe_session) */
    int done;                /* under sv->mu */
} hub_job;

/* serve.log gains a line for every ctl op and every refused request: a
 * misbehaving client could fill the disk. Capped as hook.log is (the same
 * code, client/log_cap.c): past 1 MiB it becomes serve.log.1 and a new one
 * is opened. A daemon that a hook started also has its stdout and stderr on serve.log
 * (client_spawn_daemon): those descriptors move to the new file too, so the
 * old one stops growing. Called with log_mu held. */
static void log_reopen(server *sv);

static void log_cap(server *sv) {
    struct stat was;
    if (fstat(fileno(sv->log), &was) != 0 || was.st_size <= CLIENT_LOG_MAX) return;
    client_log_rotate(sv->log_path);
    /* Moved, by this call or by another process that rotated it first (a
     * second daemon while one exits): either way a new serve.log is opened.
     * Reopening only after its own rename left a daemon whose log another
     * process had rotated writing into serve.log.1 for good, past the cap. */
    log_reopen(sv);
}

/* A new serve.log when the path no longer names the one open (rotated, or
 * removed with its folder), with stdout and stderr moved along when they
 * were on it. Called with log_mu held. */
static void log_reopen(server *sv) {
    struct stat was, err2;
    if (fstat(fileno(sv->log), &was) != 0 || !client_log_moved(sv->log_path, fileno(sv->log))) return;
    FILE *f = fopen(sv->log_path, "ae");
    if (!f) return;   /* keep writing to the old one rather than lose lines */
    fchmod(fileno(f), 0600);
    for (int fd = 1; fd <= 2; fd++)
        if (fstat(fd, &err2) == 0 && err2.st_dev == was.st_dev && err2.st_ino == was.st_ino) {
            fflush(fd == 1 ? stdout : stderr);
            dup2(fileno(f), fd);
        }
    fclose(sv->log);
    sv->log = f;
}

static void logf_(server *sv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(server *sv, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    pthread_mutex_lock(&sv->log_mu);
    if (sv->log) log_cap(sv);
    if (sv->log) { fprintf(sv->log, "%s %s\n", ts, msg); fflush(sv->log); }
    if (!sv->log || !sv->err_is_log) fprintf(stderr, "stream-tts serve: %s\n", msg);
    pthread_mutex_unlock(&sv->log_mu);
}

static void pend_free(void *v) {
    pend *p = v;
    if (!p) return;
    free(p->session);
    free(p->text);
    free(p->lang);
    free(p->message_id);
    free(p);
}

static int is_muted(server *sv, const char *session) {
    return sv->muted_all || (session && json_object_get(sv->muted, session));
}

/* Drops pending sentences of session (NULL: all). Called with mu held. */
static size_t drop_pending(server *sv, const char *session) {
    return daemon_queue_drop(sv->pending, session, pend_free);
}

/* --order newest: a session's rank is its last prompt's number (0: none). mu held. */
static uint64_t session_rank(void *user, const char *session) {
    server *sv = user;
    json_int_t v = json_integer_value(json_object_get(sv->newest, session));
    return v > 0 ? (uint64_t)v : 0;
}

/* A sentence of session is not to be queued: muted, quitting, or stopped
 * while the hub job runs. mu held. */
static int sentence_refused(server *sv, const char *session) {
    return is_muted(sv, session) || sv->quit || sv->job_stop_all ||
           (sv->job_stopped && json_object_get(sv->job_stopped, session));
}

/* hub callbacks (the hub's owner: the poll loop, or the hub job's thread) */
static void hub_sentence(void *user, const char *session, const ingest_sentence *s) {
    server *sv = user;
    pthread_mutex_lock(&sv->mu);
    if (sentence_refused(sv, session)) {
        pthread_mutex_unlock(&sv->mu);
        return;
    }
    size_t mine = daemon_queue_session_count(sv->pending, session);
    if ((mine >= MAX_PENDING_SESSION || daemon_queue_count(sv->pending) >= MAX_PENDING) &&
        !(s->flags & INGEST_SENT_ASIDE)) {
        int first = !sv->overflow++;
        sv->dropped_total++;
        pthread_mutex_unlock(&sv->mu);
        if (first && mine >= MAX_PENDING_SESSION)
            logf_(sv, "%d sentences of session %s are waiting (hours of speech): its later sentences are dropped "
                  "until they are said (stream-tts ctl stop empties the queue)", MAX_PENDING_SESSION, session);
        else if (first)
            logf_(sv, "%d sentences are waiting (hours of speech): later sentences are dropped until the queue "
                  "shrinks (stream-tts ctl stop empties it)", MAX_PENDING);
        return;
    }
    pthread_mutex_unlock(&sv->mu);
    pend *p = calloc(1, sizeof *p);
    if (!p) return;
    p->session = strdup(session);
    p->text = strndup(s->text, s->len);
    p->len = s->len;
    p->lang = s->lang ? strdup(s->lang) : NULL;
    p->message_id = strdup(s->message_id ? s->message_id : "");
    p->kind = s->kind;
    p->flags = s->flags;
    p->seq = s->seq;
    p->arrival_ns = s->arrival_ns;
    p->emit_ns = s->emit_ns;
    if (!p->session || !p->text || !p->message_id || (s->lang && !p->lang)) {
        pend_free(p);
        logf_(sv, "out of memory: a sentence of session %s was dropped", session);
        return;
    }
    stts_error err;
    pthread_mutex_lock(&sv->mu);
    /* Asked again: on the hub job's thread a stop or mute from the poll loop
     * may have come while the copy was made, and it has emptied the queue
     * already (a sentence from before the stop queued after it was said). */
    if (sentence_refused(sv, session)) {
        pthread_mutex_unlock(&sv->mu);
        pend_free(p);
        return;
    }
    stts_status st = daemon_queue_push(sv->pending, session, p, (p->flags & INGEST_SENT_ASIDE) != 0, &err);
    if (daemon_queue_count(sv->pending) < MAX_PENDING_SESSION / 2 && sv->overflow) {
        uint64_t n = sv->overflow;
        sv->overflow = 0;
        pthread_mutex_unlock(&sv->mu);
        logf_(sv, "the queue has room again: %llu sentences were dropped", (unsigned long long)n);
        pthread_mutex_lock(&sv->mu);
    }
    pthread_cond_broadcast(&sv->cv);
    pthread_mutex_unlock(&sv->mu);
    if (st != STTS_OK) {
        pend_free(p);
        logf_(sv, "out of memory: a sentence of session %s was dropped", session);
    }
}

/* The session is over: its mute goes with it (or the table would keep
 * every muted session id for the daemon's life). After the hub has flushed
 * the session's last words, which the mute still held back. */
static void session_ended(server *sv, const char *session) {
    pthread_mutex_lock(&sv->mu);
    json_object_del(sv->muted, session);
    pthread_mutex_unlock(&sv->mu);
}

/* The hub's sessions (a new reference): while a job holds the hub, as they
 * were when it began. Poll loop only. */
static json_t *hub_sessions(server *sv) {
    return sv->job ? json_incref(sv->job_sessions) : daemon_hub_sessions(sv->hub);
}

/* Room for one more muted session; 0 when MAX_MUTED are muted and the hub
 * holds every one of them. mu held. */
static int mute_room(server *sv) {
    if (json_object_size(sv->muted) < MAX_MUTED) return 1;
    json_t *live = json_object(), *ids = hub_sessions(sv);
    size_t k;
    json_t *v;
    json_array_foreach(ids, k, v) json_object_set(live, json_string_value(v), json_true());
    const char *key;
    void *tmp;
    json_object_foreach_safe(sv->muted, tmp, key, v)
        if (!json_object_get(live, key)) {
            json_object_del(sv->mute_tail, key);
            json_object_del(sv->muted, key);
        }
    json_decref(ids);
    json_decref(live);
    return json_object_size(sv->muted) < MAX_MUTED;
}

/* A stop by the hub's owner (the poll loop with no job, or the job's
 * thread: a barge-in). */
static int stop_now(server *sv, const char *session) {
    /* Words the hub still holds (a sentence not ended) are of before the
     * stop too: not said when flushed (the hub's thread). */
    daemon_hub_stopped(sv->hub, session);
    pthread_mutex_lock(&sv->mu);
    size_t n = drop_pending(sv, session);
    pipeline *pl = sv->pl;
    pthread_mutex_unlock(&sv->mu);
    if (pl) n += (size_t)pipeline_stop(pl, session);
    return (int)n;
}

/* A stop from the poll loop (ctl stop, mute). While a job holds the hub it
 * silences at once all the same: the queue and the player are emptied now,
 * the job's later sentences of the session dropped, and the hub told when
 * it is back (job_finish). */
static int stop_session(server *sv, const char *session) {
    if (!sv->job) return stop_now(sv, session);
    pthread_mutex_lock(&sv->mu);
    /* bounded: past MAX_MUTED made-up ids, every session's (rather than a
     * table that any local client could grow during a long job) */
    if (!session || json_object_size(sv->job_stopped) >= MAX_MUTED) sv->job_stop_all = 1;
    else json_object_set_new(sv->job_stopped, session, json_true());
    size_t n = drop_pending(sv, session);
    pipeline *pl = sv->pl;
    pthread_mutex_unlock(&sv->mu);
    if (pl) n += (size_t)pipeline_stop(pl, session);
    return (int)n;
}

static void hub_stop(void *user, const char *session) { stop_now(user, session); }

/* ---- speaker thread ------------------------------------------------------------ */

static void on_event(void *user, const pipeline_event *ev) {
    server *sv = user;
    if (ev->kind == PIPELINE_EV_LOG) logf_(sv, "%s", ev->message);
    else if (ev->kind == PIPELINE_EV_PLAY && sv->po.echo) {
        /* --echo: as the pipe mode prints it, on serve's stdout (its log
         * when a hook started it); it was accepted and printed nothing */
        if (ev->how == PIPELINE_MT || ev->how == PIPELINE_MT_RETRY || ev->how == PIPELINE_CACHE)
            printf("%s\n  -> %s\n", ev->source, ev->spoken);
        else if (ev->notice)
            printf("%s %s\n", ev->notice, ev->spoken);
        else
            printf("%s\n", ev->spoken);
        fflush(stdout);
    }
}

/* The next sentence to speak: arrival order; with --order newest the
 * oldest sentence of the session whose prompt came last; with --order
 * session the speaking session's next while it has one, a notification
 * first. mu held. */
static pend *take(server *sv) { return daemon_queue_take(sv->pending, sv->order); }

/* TEST-ONLY (STTS_FAULT=serve_hold_seq:N, docs/RELIABILITY.md): the speaker
 * holds sentence N between taking it from the queue and handing it to the
 * pipeline, a window of microseconds otherwise: it creates FILE.held and
 * waits until FILE exists (STTS_FAULT_GATE=FILE; 60 s at most), so a test
 * can send a stop exactly there. */
static void hold_at_gate(uint64_t seq) {
    long n = stts_fault("serve_hold_seq");
    const char *gate = getenv("STTS_FAULT_GATE");
    if (n < 0 || (uint64_t)n != seq || !gate || !*gate) return;
    char held[PATH_MAX];
    snprintf(held, sizeof held, "%s.held", gate);
    int fd = open(held, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
    for (int i = 0; i < 12000 && access(gate, F_OK) != 0; i++) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
}

static void *speaker_main(void *arg) {
    server *sv = arg;
    stts_error err;
    stts_error_clear(&err);
    app_params ap;
    pipeline_opts_to_app(&sv->po, &ap);
    app *a = NULL;
    pipeline *pl = NULL;
    FILE *metrics = NULL;
    uint64_t t0 = stts_now_ns();
    if (app_open(&ap, &a, &err) == STTS_OK) {
        /* appended to (O_APPEND): a restart after an idle exit kept no
         * history, and a copy-and-truncate rotation left NULs before the
         * next line */
        if (sv->po.metrics && !(metrics = fopen(sv->po.metrics, "a")))
            stts_error_set(&err, STTS_ERR_IO, "cannot write the metrics file '%s': %s", sv->po.metrics, strerror(errno));
        if (!err.code) {
            pipeline_params pp;
            pipeline_opts_to_params(&sv->po, a, &pp);
            pp.notice_lang = sv->notice_lang;   /* as the hub writes them (serve_main) */
            pp.metrics = metrics;
            pp.on_event = on_event;
            pp.user = sv;
            /* --max-lag is applied here, to the pending queue (speaker_main):
             * the pipeline holds one sentence ahead, so its own backlog rule
             * would see none, and it skipped other sessions' notifications */
            pp.max_lag_s = 0;
            pipeline_start(&pp, &pl, &err);
        }
    }
    pthread_mutex_lock(&sv->mu);
    sv->app = a;
    sv->metrics = metrics;
    if (pl) {
        sv->pl = pl;
        snprintf(sv->state, sizeof sv->state, "ready");
        if (ap.translate)
            snprintf(sv->model_desc, sizeof sv->model_desc, "%s (%s)", app_model_dir(a), app_model_why(a));
        else
            snprintf(sv->model_desc, sizeof sv->model_desc, "none (speaking %s untranslated)", app_speak_lang(a));
        snprintf(sv->device_desc, sizeof sv->device_desc, "%s", app_device_name(a));
        const char *note = ap.translate && app_model(a) ? nllb_model_device_note(app_model(a)) : "";
        if (note[0]) logf_(sv, "--device auto: translating on the CPU: %s", note);
        if (ap.translate && *app_model_warning(a)) logf_(sv, "warning: %s", app_model_warning(a));
    } else {
        snprintf(sv->state, sizeof sv->state, "failed");
    }
    pthread_cond_broadcast(&sv->cv);
    pthread_mutex_unlock(&sv->mu);
    if (!pl) {
        /* The error speaks of flags (--output FILE.wav, --voice), but a
         * daemon a hook started got only --socket: what it speaks with
         * comes from the configuration file, so say which one. */
        char why[sizeof err.msg + PATH_MAX + 160];
        snprintf(why, sizeof why, "%s (a daemon started by a hook takes its settings from %s, one 'key = value' "
                 "a line, e.g. output = /path/to/speech.wav)", err.msg,
                 sv->config_file[0] ? sv->config_file : "~/.config/stream-tts/config");
        logf_(sv, "cannot start speaking: %s", why);
        /* The hook that started this daemon has returned long ago: the
         * next one reads why from serve.failed and says it in hook.log. */
        FILE *ff = fopen(sv->failed_path, "w");
        if (ff) {
            fchmod(fileno(ff), 0600);
            fprintf(ff, "%s\n", why);
            fclose(ff);
        }
        /* Without speech the daemon is useless: the poll loop exits. */
        pthread_mutex_lock(&sv->mu);
        sv->quit = 2;
        pthread_mutex_unlock(&sv->mu);
        if (write(sv->wake[1], "q", 1) < 0) {}
        return NULL;
    }
    unlink(sv->failed_path);
    /* Logged by the poll loop once it has drained the spool, so a client
     * that waits for this line finds hooks handled directly. */
    pthread_mutex_lock(&sv->mu);
    snprintf(sv->ready_msg, sizeof sv->ready_msg, "ready in %.0f ms: model %s; voice %s (%s, %d Hz); output %s",
             (double)(stts_now_ns() - t0) / 1e6, sv->model_desc, tts_voice_name(app_synth(a)),
             tts_backend_label(tts_backend_of(app_synth(a))), tts_sample_rate(app_synth(a)), sv->device_desc);
    pthread_mutex_unlock(&sv->mu);
    if (write(sv->wake[1], "r", 1) < 0) {}
    int lag_skipped = 0;
    for (;;) {
        /* One sentence playing and one being made ready: the next is chosen
         * only when there is room, so --order, mute, stop and speed apply to
         * all the rest (the pipeline took up to 60 s of audio ahead: a
         * 40-sentence backlog was spoken before a newer session's, and a
         * new speed reached none of it). */
        for (;;) {
            pthread_mutex_lock(&sv->mu);
            int quit = sv->quit;
            pthread_mutex_unlock(&sv->mu);
            if (quit || pipeline_in_flight(pl) < SPEAK_AHEAD) break;
            struct timespec ts = {0, 10 * 1000000L};   /* a poll: a sentence lasts seconds */
            nanosleep(&ts, NULL);
        }
        pthread_mutex_lock(&sv->mu);
        while (!daemon_queue_count(sv->pending) && !sv->quit) pthread_cond_wait(&sv->cv, &sv->mu);
        if (sv->quit) { pthread_mutex_unlock(&sv->mu); break; }
        pend *p = take(sv);   /* in hand until daemon_queue_handed: a stop meanwhile marks it */
        /* --max-lag: a sentence emitted longer ago than the limit, with a
         * newer one waiting, is skipped (announced before the next one said);
         * a notification or notice is never skipped: it may be another
         * session's permission prompt */
        if (sv->po.max_lag_s > 0 && p->kind == TEXT_SPEECH && !(p->flags & INGEST_SENT_ASIDE) &&
            daemon_queue_count(sv->pending) > 0 &&
            stts_now_ns() - p->emit_ns > (uint64_t)(sv->po.max_lag_s * 1e9)) {
            daemon_queue_handed(sv->pending);
            pthread_mutex_unlock(&sv->mu);
            if (!lag_skipped++) logf_(sv, "--max-lag %.1f s: skipping older sentences of session %s", sv->po.max_lag_s,
                                      p->session);
            pend_free(p);
            continue;
        }
        pthread_mutex_unlock(&sv->mu);
        if (lag_skipped) {
            logf_(sv, "--max-lag: skipped %d older sentence%s", lag_skipped, lag_skipped == 1 ? "" : "s");
            char skip[256];
            const char *lu = NULL;
            text_phrase_format(sv->notice_lang, TEXT_PH_SKIPPING, NULL, 0, skip, sizeof skip, &lu);
            ingest_sentence k = {.text = skip, .len = strlen(skip), .kind = TEXT_NOTICE_SKIP, .lang = lu,
                                 .message_id = "skip", .seq = p->seq, .arrival_ns = p->arrival_ns,
                                 .emit_ns = stts_now_ns()};
            pipeline_push_session(pl, &k, p->session, &err);
            lag_skipped = 0;
        }
        hold_at_gate(p->seq);   /* TEST-ONLY (STTS_FAULT=serve_hold_seq:N): the window made wide */
        pthread_mutex_lock(&sv->mu);
        if (daemon_queue_hand_dropped(sv->pending)) {
            /* A stop (or mute) of its session came since it was taken: it is
             * not spoken, as the ones still queued were not. */
            daemon_queue_handed(sv->pending);
            pthread_mutex_unlock(&sv->mu);
            pend_free(p);
            continue;
        }
        int change = sv->cue && sv->last_session[0] && strcmp(sv->last_session, p->session) != 0;
        snprintf(sv->last_session, sizeof sv->last_session, "%s", p->session);
        pthread_mutex_unlock(&sv->mu);
        if (change) {
            /* The optional cue: a short notice before another session speaks. */
            const char *cue = "Another session.";
            ingest_sentence c = {.text = cue, .len = strlen(cue), .kind = TEXT_NOTICE_TOOL, .lang = "eng_Latn",
                                 .message_id = "cue", .seq = p->seq, .arrival_ns = p->arrival_ns,
                                 .emit_ns = stts_now_ns(), .flags = INGEST_SENT_NO_REPLAY};
            pipeline_push_session(pl, &c, p->session, &err);
        }
        ingest_sentence s = {.text = p->text, .len = p->len, .kind = p->kind, .lang = p->lang,
                             .message_id = p->message_id, .seq = p->seq, .arrival_ns = p->arrival_ns,
                             .emit_ns = p->emit_ns, .flags = p->flags};
        stts_status st = pipeline_push_session(pl, &s, p->session, &err);
        pthread_mutex_lock(&sv->mu);
        int stopped = daemon_queue_handed(sv->pending);
        pthread_mutex_unlock(&sv->mu);
        /* A stop that came while it was being pushed may have looked at the
         * pipeline before it got there: stopped now (only this sentence and
         * its cue are the session's since that stop; the speaker is the one
         * pusher, and the next ones are still queued). */
        if (stopped && st == STTS_OK) pipeline_stop(pl, p->session);
        pend_free(p);
        if (st != STTS_OK) break;
    }
    return NULL;   /* the main thread frees the pipeline, the app and the metrics file */
}

/* ---- socket ---------------------------------------------------------------------- */

/* How long a start waits for the lock of a daemon that is exiting. */
#define LOCK_WAIT_NS (5ull * 1000000000ull)

/* Binds and listens on sv->sock (no file there), remembering its inode. */
static int listen_at(server *sv, char *err, size_t cap) {
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", sv->sock);
    int fd = stts_socket_cloexec(AF_UNIX, SOCK_STREAM, 1);
    if (fd < 0) { snprintf(err, cap, "socket: %s", strerror(errno)); return -1; }
    mode_t old = umask(0177);   /* the socket is born 0600 */
    int rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    umask(old);
    if (rc != 0 || chmod(sv->sock, 0600) != 0 || listen(fd, 64) != 0) {
        snprintf(err, cap, "cannot listen on %s: %s", sv->sock, strerror(errno));
        close(fd);
        return -1;
    }
    struct stat ss;
    if (lstat(sv->sock, &ss) == 0) sv->sock_dev = ss.st_dev, sv->sock_ino = ss.st_ino;
    return fd;
}

/* Takes the lock and listens; -1 with err filled. Another live daemon -> -2. */
static int open_listener(server *sv, char *err, size_t cap) {
    char lock_path[128];
    snprintf(lock_path, sizeof lock_path, "%s/serve.lock", sv->dir);
    int lfd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lfd < 0) { snprintf(err, cap, "cannot open '%s': %s", lock_path, strerror(errno)); return -1; }
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", sv->sock);
    /* The lock is held, but nobody answers on the socket: the daemon
     * holding it is exiting (it removes the socket first, then stops its
     * speech). A hook that found no socket started us; giving up would
     * leave its request in the spool with no daemon to replay it, so wait
     * for the lock a while. */
    uint64_t lock_t0 = stts_now_ns();
    while (flock(lfd, LOCK_EX | LOCK_NB) != 0) {
        /* Non-blocking: a live daemon with a full listen queue (busy,
         * stopped) would hold a blocking connect; EAGAIN is a live one. */
        int answers = 0, pr = stts_socket_cloexec(AF_UNIX, SOCK_STREAM, 1);
        if (pr >= 0) {
            answers = connect(pr, (struct sockaddr *)&a, sizeof a) == 0 || errno == EAGAIN || errno == EINPROGRESS;
            close(pr);
        }
        if (answers || stts_now_ns() - lock_t0 > LOCK_WAIT_NS) {
            snprintf(err, cap, "another stream-tts serve is already running on %s (stream-tts ctl status shows it)",
                     sv->sock);
            close(lfd);
            return -2;
        }
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    /* lfd stays open (and locked) for the daemon's life. */
    struct stat ls;
    if (fstat(lfd, &ls) == 0) sv->lock_dev = ls.st_dev, sv->lock_ino = ls.st_ino;
    sv->lock_fd = lfd;
    int probe = stts_socket_cloexec(AF_UNIX, SOCK_STREAM, 0);
    if (probe >= 0 && connect(probe, (struct sockaddr *)&a, sizeof a) == 0) {
        /* Someone answers without holding our lock (an older daemon):
         * leave it alone. */
        close(probe);
        snprintf(err, cap, "another stream-tts serve is already running on %s", sv->sock);
        return -2;
    }
    if (probe >= 0) close(probe);
    unlink(sv->sock);   /* a stale socket file from a daemon that died */
    return listen_at(sv, err, cap);
}

/* 1 when path names the file (dev, ino). */
static int same_file(const char *path, dev_t dev, ino_t ino) {
    struct stat st;
    return lstat(path, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

/* The socket path, checked at the spool tick. Its folder removed (a tmp
 * cleaner, $XDG_RUNTIME_DIR at logout) left a daemon nobody could reach:
 * `ctl` said none was running, each hook started a serve that waited 5 s for
 * the lock and gave up, and only the spool reached it. Now: still ours, 0;
 * gone while the lock is still ours (or can be taken again), listen there
 * again and return the new listening socket in *lfd (the old one in
 * *old_lfd, until its waiting connections are taken), 0; taken by another
 * daemon (another socket at the path, or another's lock), -1: this one
 * leaves, without removing what is not its own. The lock file is checked
 * (and made again) on its own too. */
static int keep_socket(server *sv, int *lfd, int *old_lfd) {
    char lock_path[128];
    snprintf(lock_path, sizeof lock_path, "%s/serve.lock", sv->dir);
    int sock_ours = same_file(sv->sock, sv->sock_dev, sv->sock_ino);
    struct stat st;
    if (!sock_ours && lstat(sv->sock, &st) == 0) {
        logf_(sv, "the socket %s is another daemon's now: exiting", sv->sock);
        return -1;
    }
    if (!same_file(lock_path, sv->lock_dev, sv->lock_ino)) {
        /* The lock file went (with the folder, or alone: an age-based tmp
         * cleaner skips a listening socket, not an old lock file), and a
         * starting daemon would take a new one at once: take it again, or
         * leave when another daemon did first. */
        stts_error e;
        stts_error_clear(&e);
        if (client_prepare_dir(sv->dir, &e) != STTS_OK) {
            logf_(sv, "the folder %s was removed and cannot be made again (%s): exiting", sv->dir, e.msg);
            return -1;
        }
        int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            logf_(sv, "the lock file %s was removed and cannot be made again (%s): exiting", lock_path,
                  strerror(errno));
            return -1;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            close(fd);
            /* A serve starting this very moment took it: while the socket
             * is still ours, that one finds us answering and leaves; look
             * again at the next tick rather than both leaving. */
            if (sock_ours) return 0;
            logf_(sv, "the lock file %s was removed and another daemon holds the new one: exiting", lock_path);
            return -1;
        }
        close(sv->lock_fd);
        struct stat ls;
        if (fstat(fd, &ls) == 0) sv->lock_dev = ls.st_dev, sv->lock_ino = ls.st_ino;
        sv->lock_fd = fd;
        if (sock_ours) logf_(sv, "the lock file %s was removed: made again", lock_path);
    }
    if (sock_ours) return 0;
    char err[300];
    int fd = listen_at(sv, err, sizeof err);
    if (fd < 0) {
        logf_(sv, "the socket %s was removed, and listening again failed (%s): exiting", sv->sock, err);
        return -1;
    }
    /* serve.log went with the folder: lines written to the removed file
     * were seen by nobody */
    pthread_mutex_lock(&sv->log_mu);
    if (sv->log) log_reopen(sv);
    pthread_mutex_unlock(&sv->log_mu);
    logf_(sv, "the socket %s was removed: listening on it again", sv->sock);
    /* The old listener is kept until the connections already waiting in
     * its queue are taken: closed now, they were reset unread (a hook that
     * had sent its request took it for delivered). */
    if (*old_lfd >= 0) close(*old_lfd);
    *old_lfd = *lfd;
    *lfd = fd;
    return 0;
}

/* Sends what it can of c's pending replies, without waiting. */
static void flush_out(client *c, uint64_t now) {
    size_t off = 0;
    while (off < c->out_len) {
        ssize_t k = stts_send_nosignal(c->fd, c->out + off, c->out_len - off, MSG_DONTWAIT);
        if (k > 0) { off += (size_t)k; continue; }
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        c->broken = 1;   /* the client has gone */
        break;
    }
    if (off) {
        memmove(c->out, c->out + off, c->out_len - off);
        c->out_len -= off;
        c->out_ns = now;
    }
}

/* Queues a reply line (taken) and sends what the socket takes now. It
 * waited up to 1 s per reply for a client that did not read its replies,
 * holding the poll loop: one such client sending many requests stalled
 * every hook and control for minutes. */
static void reply(client *c, char *line) {
    if (!line) return;
    size_t n = strlen(line);
    uint64_t now = stts_now_ns();
    if (c->out_len + n > c->out_cap) {
        size_t nc = c->out_cap ? c->out_cap : 4096;
        while (nc < c->out_len + n) nc *= 2;
        char *g = realloc(c->out, nc);
        if (!g) { c->broken = 1; free(line); return; }
        c->out = g;
        c->out_cap = nc;
    }
    if (!c->out_len) c->out_ns = now;
    memcpy(c->out + c->out_len, line, n);
    c->out_len += n;
    free(line);
    flush_out(c, now);
}

/* A connection refused at once: its one reply, into an empty socket buffer. */
static void reply_and_close(int fd, char *line) {
    client tmp = {.fd = fd};
    reply(&tmp, line);
    free(tmp.out);
    close(fd);
}

static json_t *status_json(server *sv) {
    json_t *o = json_object();
    pthread_mutex_lock(&sv->mu);
    pipeline *pl = sv->pl;
    json_object_set_new(o, "state", json_string(sv->state));
    size_t n_pend = daemon_queue_count(sv->pending);
    json_object_set_new(o, "pending", json_integer((json_int_t)n_pend));
    json_object_set_new(o, "model", json_string(sv->model_desc));
    json_object_set_new(o, "device", json_string(sv->device_desc));
    json_object_set_new(o, "muted", json_deep_copy(sv->muted));
    json_object_set_new(o, "muted_all", json_boolean(sv->muted_all != NULL));
    pthread_mutex_unlock(&sv->mu);
    json_object_set_new(o, "sessions", hub_sessions(sv));
    json_object_set_new(o, "pid", json_integer(getpid()));
    json_object_set_new(o, "socket", json_string(sv->sock));
    json_object_set_new(o, "speed", json_real(sv->speed));
    if (pl) {
        pipeline_stats st;
        pipeline_get_stats(pl, &st);
        json_object_set_new(o, "queue", json_integer((json_int_t)n_pend + st.queued));
        json_object_set_new(o, "lag", json_real(st.lag_s));
        json_object_set_new(o, "spoken", json_integer((json_int_t)st.played));
        json_object_set_new(o, "stopped", json_integer((json_int_t)st.stopped));
        json_object_set_new(o, "paused", json_boolean(pipeline_paused(pl)));
        /* a WAV on a full disk, a lost sound device: "ready" alone hid that nothing was heard */
        if (st.output_error[0]) json_object_set_new(o, "output_error", json_string(st.output_error));
    } else {
        json_object_set_new(o, "queue", json_integer((json_int_t)n_pend));
        json_object_set_new(o, "lag", json_real(0));
    }
    return o;
}

/* Is anything of session still queued or playing? */
static int session_busy(server *sv, const char *session) {
    pthread_mutex_lock(&sv->mu);
    int busy = daemon_queue_has(sv->pending, session);
    pipeline *pl = sv->pl;
    pthread_mutex_unlock(&sv->mu);
    /* its own sentences only: a pipe client (`claude -p ... | stream-tts`)
     * waited for every other session's speech too, and forever while paused */
    if (!busy && pl) busy = pipeline_session_in_flight(pl, session) > 0;
    return busy;
}

/* Acts on one parsed request (taken: cleared here); returns the reply line
 * (malloc'd) or NULL when the reply is deferred (end with wait). line is
 * the request as it came (spooled while loading). made_ns: when a spooled
 * request was made (stts_now_ns's clock), 0 for one that came on the
 * socket. */
static char *handle_rq(server *sv, client *c, daemon_request *taken, const char *line, size_t len, uint64_t made_ns) {
    daemon_request rq = *taken;
    memset(taken, 0, sizeof *taken);
    stts_error err;
    stts_error_clear(&err);
    json_t *out = json_object();
    char *r = NULL;
    pthread_mutex_lock(&sv->mu);
    pipeline *pl = sv->pl;
    pthread_mutex_unlock(&sv->mu);
    if (rq.op == DAEMON_OP_HOOK && c && !sv->live) {
        /* Still loading: the request waits in the spool, in order with the
         * ones hooks spooled, and stays there if this daemon cannot speak
         * (the next start speaks it). */
        char path[PATH_MAX];
        if (client_spool_write(sv->spool, line, len, path, sizeof path, &err) == STTS_OK) {
            json_object_set_new(out, "done", json_string("spooled until the voice is loaded"));
            daemon_request_clear(&rq);
            return daemon_reply_ok(out);
        }
        logf_(sv, "cannot spool a hook request while loading (%s): handled now", err.msg);
    }
    switch (rq.op) {
    case DAEMON_OP_HOOK: {
        const char *what = "";
        const char *ev = json_string_value(json_object_get(rq.payload, "hook_event_name"));
        const char *sid = json_string_value(json_object_get(rq.payload, "session_id"));
        pthread_mutex_lock(&sv->mu);
        uint64_t dropped0 = sv->dropped_total;
        pthread_mutex_unlock(&sv->mu);
        if (daemon_hub_hook_at(sv->hub, rq.payload, made_ns, &what, &err) != STTS_OK) {
            r = daemon_reply_error(err.msg);
            logf_(sv, "hook refused: %s", err.msg);
            break;
        }
        /* After the hub took it (a refused session_id is not kept), and only
         * for sessions the hub keeps (it forgets the quiet ones), so this
         * table stays as small as the hub's. */
        if (ev && sid && (!strcmp(ev, "UserPromptSubmit") || !strcmp(ev, "SessionStart")) &&
            strncmp(what, "ignored", 7) != 0) {   /* a stale replayed prompt is not the newest */
            pthread_mutex_lock(&sv->mu);
            json_object_set_new(sv->newest, sid, json_integer(++sv->prompt_n));
            daemon_queue_rerank(sv->pending, sid);
            if (json_object_size(sv->newest) > 512) {
                json_t *keep = json_object(), *ids = daemon_hub_sessions(sv->hub);
                size_t k;
                json_t *v;
                json_array_foreach(ids, k, v) {
                    json_t *n = json_object_get(sv->newest, json_string_value(v));
                    if (n) json_object_set(keep, json_string_value(v), n);
                }
                json_decref(ids);
                if (keep) {
                    json_decref(sv->newest);
                    sv->newest = keep;
                    daemon_queue_rerank(sv->pending, NULL);   /* the forgotten ones' are 0 now */
                }
            }
            pthread_mutex_unlock(&sv->mu);
        }
        if (ev && sid && !strcmp(ev, "SessionEnd")) session_ended(sv, sid);
        if (ev && sid && !strcmp(ev, "SessionStart")) {
            pthread_mutex_lock(&sv->mu);
            int lift = json_object_get(sv->mute_tail, sid) != NULL;
            if (lift) {
                json_object_del(sv->mute_tail, sid);
                json_object_del(sv->muted, sid);
            }
            pthread_mutex_unlock(&sv->mu);
            if (lift) logf_(sv, "session %s started again: the mute given after its end is lifted", sid);
        }
        /* sentences past the queue's bound: "spoken" would say they were not lost */
        pthread_mutex_lock(&sv->mu);
        uint64_t dropped = sv->dropped_total - dropped0;
        pthread_mutex_unlock(&sv->mu);
        char part[160];
        if (dropped) {
            snprintf(part, sizeof part, "%s, but %llu sentences dropped (the daemon's queue is full: %d a session, "
                     "%d in all)", what, (unsigned long long)dropped, MAX_PENDING_SESSION, MAX_PENDING);
            what = part;
        }
        json_object_set_new(out, "done", json_string(what));
        break;
    }
    case DAEMON_OP_LINE:
        if (c && (!c->pipe_session || strcmp(c->pipe_session, rq.session) != 0)) {
            free(c->pipe_session);
            c->pipe_session = strdup(rq.session);   /* out of memory: not ended at close */
        }
        if (daemon_hub_line(sv->hub, rq.session, rq.line, rq.line_len, &err) != STTS_OK) r = daemon_reply_error(err.msg);
        break;
    case DAEMON_OP_END:
        if (c && c->pipe_session && strcmp(c->pipe_session, rq.session) == 0) {
            free(c->pipe_session);
            c->pipe_session = NULL;
        }
        daemon_hub_end(sv->hub, rq.session);
        session_ended(sv, rq.session);
        if (rq.wait && c) {
            free(c->waiting_end);
            c->waiting_end = strdup(rq.session);
            json_decref(out);
            daemon_request_clear(&rq);
            return NULL;
        }
        break;
    case DAEMON_OP_STOP: {
        uint64_t t = stts_now_ns();
        int n = stop_session(sv, rq.session);
        json_object_set_new(out, "dropped", json_integer(n));
        json_object_set_new(out, "stop_ms", json_real((double)(stts_now_ns() - t) / 1e6));
        break;
    }
    case DAEMON_OP_SKIP:
        json_object_set_new(out, "skipped", json_integer(pl ? pipeline_skip(pl) : 0));
        break;
    case DAEMON_OP_PAUSE:
    case DAEMON_OP_RESUME:
        if (pl) pipeline_pause(pl, rq.op == DAEMON_OP_PAUSE);
        json_object_set_new(out, "paused", json_boolean(pl && pipeline_paused(pl)));
        break;
    case DAEMON_OP_REPLAY: {
        /* muted speech stays unheard: nothing under mute-all, and a muted
         * session's copies are dropped again as a mute drops its queue (it
         * replayed them) */
        pthread_mutex_lock(&sv->mu);
        int all = sv->muted_all != NULL;
        json_t *muted = json_deep_copy(sv->muted);
        pthread_mutex_unlock(&sv->mu);
        int made = pl && !all ? pipeline_replay(pl, rq.n, &err) : 0;
        if (made < 0) r = daemon_reply_error(err.msg);   /* too many replays waiting: says what to do */
        else {
            const char *k;
            json_t *v;
            if (made > 0) json_object_foreach(muted, k, v) pipeline_stop(pl, k);
            json_object_set_new(out, "replayed", json_integer(made));
            if (all) json_object_set_new(out, "muted", json_true());
        }
        json_decref(muted);
        break;
    }
    case DAEMON_OP_SPEED:
        /* Applied by the synth thread before its next sentence. */
        if (pl) pipeline_set_speed(pl, rq.x);
        else r = daemon_reply_error("the voice is still loading; try again");
        if (pl) sv->speed = rq.x;
        json_object_set_new(out, "speed", json_real(rq.x));
        break;
    case DAEMON_OP_MUTE:
    case DAEMON_OP_UNMUTE: {
        int mute = rq.op == DAEMON_OP_MUTE;
        pthread_mutex_lock(&sv->mu);
        if (rq.session) {
            if (!mute) json_object_del(sv->muted, rq.session);
            else if (json_object_get(sv->muted, rq.session) || mute_room(sv))
                json_object_set_new(sv->muted, rq.session, json_true());
            else {
                char m[96];
                snprintf(m, sizeof m, "too many sessions muted (%d); unmute some, or mute all", MAX_MUTED);
                r = daemon_reply_error(m);
            }
        } else {
            sv->muted_all = mute ? "1" : NULL;
            if (!mute) json_object_clear(sv->muted);
        }
        pthread_mutex_unlock(&sv->mu);
        if (mute && !r) stop_session(sv, rq.session);
        if (rq.session && !r) {
            /* a session the daemon does not hold: a mistyped id (ctl says
             * so), or one that ended, muted for the tail of its speech: that
             * mute is lifted when the session starts again (resumed under
             * the same id, its reply was dropped for good, unannounced) */
            json_t *ss = hub_sessions(sv);
            int known = 0;
            size_t i;
            json_t *v;
            json_array_foreach(ss, i, v) known |= json_is_string(v) && !strcmp(json_string_value(v), rq.session);
            json_decref(ss);
            json_object_set_new(out, "known", json_boolean(known));
            pthread_mutex_lock(&sv->mu);
            if (mute && !known) json_object_set_new(sv->mute_tail, rq.session, json_true());
            else json_object_del(sv->mute_tail, rq.session);
            pthread_mutex_unlock(&sv->mu);
        }
        break;
    }
    case DAEMON_OP_STATUS:
        json_decref(out);
        out = status_json(sv);
        break;
    case DAEMON_OP_PING:
        break;
    }
    if (!r) {
        if (rq.op != DAEMON_OP_HOOK && rq.op != DAEMON_OP_LINE && rq.op != DAEMON_OP_STATUS)
            logf_(sv, "%s%s%s", daemon_op_name(rq.op), rq.session ? " " : "", rq.session ? rq.session : "");
        r = daemon_reply_ok(out);
    } else {
        json_decref(out);
    }
    daemon_request_clear(&rq);
    return r;
}

/* Parses one request line into rq; NULL then, else the refusal's reply
 * line (logged). Every path that reads a request (socket, spool, the hub
 * job) refuses the same way. */
static char *parse_request(server *sv, const char *line, size_t len, daemon_request *rq) {
    stts_error err;
    if (daemon_request_parse(line, len, rq, &err) == STTS_OK) return NULL;
    logf_(sv, "request refused: %s", err.msg);
    return daemon_reply_error(err.msg);
}

/* Parses one request line and acts on it (handle_rq). */
static char *handle(server *sv, client *c, const char *line, size_t len, uint64_t made_ns) {
    daemon_request rq;
    char *refused = parse_request(sv, line, len, &rq);
    if (refused) return refused;
    sv->last_activity = stts_now_ns();
    return handle_rq(sv, c, &rq, line, len, made_ns);
}

/* A request made by c in a reserve slot (client.oneshot, MAX_CLIENTS): NULL
 * when it is served there, else the refusal (a reply line). ncl clients in
 * cl. */
static char *reserve_refusal(server *sv, const client *cl, int ncl, const client *c, daemon_op op) {
    char m[300];
    if (op == DAEMON_OP_LINE || op == DAEMON_OP_END || op == DAEMON_OP_PING) {
        /* ops of a connection that stays (ping is a pipe client's first
         * request): refused at once, it speaks in-process rather than
         * losing its first line to the close */
        snprintf(m, sizeof m, "the daemon's %d connections for clients that stay (pipes) are all in use: this "
                 "connection takes one control or hook request, not '%s'; connection closed", MAX_CLIENTS,
                 daemon_op_name(op));
        logf_(sv, "a '%s' request in a reserve slot refused (%d connections that stay are open)", daemon_op_name(op),
              MAX_CLIENTS);
        return daemon_reply_error(m);
    }
    if (op != DAEMON_OP_HOOK) return NULL;
    int hooks = 0;
    for (int k = 0; k < ncl; k++) hooks += &cl[k] != c && cl[k].oneshot && cl[k].reserve_hook;   /* others' */
    if (hooks < RESERVE_SLOTS - RESERVE_CTL) return NULL;
    /* "too many clients": `stream-tts hook` spools the request on that
     * prefix, and this daemon replays it at its next tick */
    snprintf(m, sizeof m, "too many clients; try again (every connection is in use; %d of the reserve are kept "
             "for ctl)", RESERVE_CTL);
    logf_(sv, "a hook request in a reserve slot refused: %d hooks hold the reserve", hooks);
    return daemon_reply_error(m);
}

/* ---- the hub job: one long request off the poll loop ------------------------------------- */

static void *job_main(void *arg) {
    hub_job *j = arg;
    server *sv = j->sv;
    if (j->tick_ns) {
        daemon_hub_tick(sv->hub, j->tick_ns);
    } else if ((j->reply = parse_request(sv, j->line, j->len, &j->rq)) != NULL) {
        /* refused: the reply says why */
    } else if (j->rq.op == DAEMON_OP_HOOK || (j->rq.op == DAEMON_OP_LINE && !j->oneshot)) {
        if (j->rq.op == DAEMON_OP_LINE) j->session = strdup(j->rq.session);   /* NULL: not ended at close */
        /* no client: it touches nothing of the poll loop's (the daemon is
         * live, so a hook is not spooled) */
        j->reply = handle_rq(sv, NULL, &j->rq, j->line, j->len, 0);
    } else {
        j->back = 1;   /* a control with a huge line: the poll loop's, as any control */
    }
    pthread_mutex_lock(&sv->mu);
    j->done = 1;
    pthread_mutex_unlock(&sv->mu);
    if (write(sv->wake[1], "j", 1) < 0) {}
    return NULL;
}

/* Starts the hub job for client c's request line; -1 when no thread could
 * be made (then it is acted on in the poll loop, as before). */
static int job_start(server *sv, client *c, const char *line, size_t len) {
    hub_job *j = calloc(1, sizeof *j);
    /* one copy of at most DAEMON_MAX_LINE beside IN_BUDGET: one job at a time */
    char *copy = j ? malloc(len) : NULL;
    json_t *ss = copy ? daemon_hub_sessions(sv->hub) : NULL;
    if (!ss) { free(copy); free(j); return -1; }
    memcpy(copy, line, len);
    *j = (hub_job){.sv = sv, .fd = c->fd, .oneshot = c->oneshot, .line = copy, .len = len};
    sv->job = j;
    sv->job_sessions = ss;
    if (pthread_create(&j->tid, NULL, job_main, j) != 0) {
        sv->job = NULL;
        json_decref(ss);
        sv->job_sessions = NULL;
        free(copy);
        free(j);
        return -1;
    }
    c->in_job = 1;
    return 0;
}

/* The hub's timers due at now, as a job when they would feed the text
 * stage a lot (a Stop of 8 MB parked for its grace, then said whole, held
 * the poll loop 2.3 s); else at once. */
static void hub_tick(server *sv, uint64_t now) {
    if (daemon_hub_tick_bytes(sv->hub, now) >= HUB_JOB_MIN) {
        hub_job *j = calloc(1, sizeof *j);
        json_t *ss = j ? daemon_hub_sessions(sv->hub) : NULL;
        if (ss) {
            *j = (hub_job){.sv = sv, .tick_ns = now, .fd = -1};
            sv->job = j;
            sv->job_sessions = ss;
            if (pthread_create(&j->tid, NULL, job_main, j) == 0) return;
            sv->job = NULL;
            sv->job_sessions = NULL;
        }
        json_decref(ss);
        free(j);
    }
    daemon_hub_tick(sv->hub, now);
}

static int job_done(server *sv) {
    pthread_mutex_lock(&sv->mu);
    int d = sv->job && sv->job->done;
    pthread_mutex_unlock(&sv->mu);
    return d;
}

static char *reserve_refusal(server *sv, const client *cl, int ncl, const client *c, daemon_op op);

/* The job has ended (or the daemon exits: cl NULL): the hub is the poll
 * loop's again. The stops and pipe ends that came meanwhile reach it, in
 * that order, and the client gets its reply. */
static void job_finish(server *sv, client *cl, int ncl) {
    hub_job *j = sv->job;
    pthread_join(j->tid, NULL);
    sv->job = NULL;
    json_decref(sv->job_sessions);
    sv->job_sessions = NULL;
    pthread_mutex_lock(&sv->mu);
    int all = sv->job_stop_all;
    json_t *stopped = sv->job_stopped;
    sv->job_stop_all = 0;
    sv->job_stopped = json_object();
    pthread_mutex_unlock(&sv->mu);
    if (all) daemon_hub_stopped(sv->hub, NULL);
    const char *key;
    json_t *v;
    if (!all) json_object_foreach(stopped, key, v) daemon_hub_stopped(sv->hub, key);
    json_decref(stopped);
    size_t i;
    json_array_foreach(sv->job_ends, i, v) {
        daemon_hub_end(sv->hub, json_string_value(v));
        session_ended(sv, json_string_value(v));
    }
    json_array_clear(sv->job_ends);
    client *c = NULL;
    for (int k = 0; cl && k < ncl && !c; k++)
        if (cl[k].in_job && cl[k].fd == j->fd) c = &cl[k];
    char *r = j->reply;
    if (c && j->back) {
        r = c->oneshot ? reserve_refusal(sv, cl, ncl, c, j->rq.op) : NULL;
        if (r) daemon_request_clear(&j->rq);
        else r = handle_rq(sv, c, &j->rq, j->line, j->len, 0);
    }
    if (c && j->session && (!c->pipe_session || strcmp(c->pipe_session, j->session) != 0)) {
        free(c->pipe_session);
        c->pipe_session = j->session;
        j->session = NULL;
    } else if (!c && j->session && cl) {
        /* its pipe client was closed meanwhile (it took no replies for 5 s):
         * that session ends as at any pipe client's close */
        daemon_hub_end(sv->hub, j->session);
        session_ended(sv, j->session);
    }
    if (c) {
        c->in_job = 0;
        reply(c, r);
    } else {
        free(r);
    }
    for (int k = 0; cl && k < ncl; k++) cl[k].wait_hub = 0;   /* their turn, in connection order */
    daemon_request_clear(&j->rq);
    free(j->session);
    free(j->line);
    free(j);
    sv->last_activity = stts_now_ns();
}

/* What the poll loop does with client c's next request line. */
enum { LINE_DONE, LINE_HELD, LINE_JOB };
static int serve_line(server *sv, client *cl, int ncl, client *c, const char *line, size_t ln, char **reply_out) {
    *reply_out = NULL;
    if (ln >= HUB_JOB_MIN) {
        if (sv->job) return LINE_HELD;   /* one job at a time; not parsed while it waits */
        if (c->oneshot && (*reply_out = reserve_refusal(sv, cl, ncl, c, DAEMON_OP_HOOK))) return LINE_DONE;
        /* while loading a hook is only spooled (quick): acted on here */
        if (sv->live && job_start(sv, c, line, ln) == 0) {
            c->reserve_hook = c->oneshot;
            sv->last_activity = stts_now_ns();
            return LINE_JOB;
        }
    }
    daemon_request rq;
    if ((*reply_out = parse_request(sv, line, ln, &rq)) != NULL) return LINE_DONE;
    if (c->oneshot && (*reply_out = reserve_refusal(sv, cl, ncl, c, rq.op))) {
        daemon_request_clear(&rq);
        return LINE_DONE;
    }
    c->reserve_hook = c->oneshot && rq.op == DAEMON_OP_HOOK;
    if (sv->job && (rq.op == DAEMON_OP_HOOK || rq.op == DAEMON_OP_LINE || rq.op == DAEMON_OP_END)) {
        daemon_request_clear(&rq);   /* parsed again when the hub is back */
        return LINE_HELD;
    }
    sv->last_activity = stts_now_ns();
    *reply_out = handle_rq(sv, c, &rq, line, ln, 0);
    return LINE_DONE;
}

/* Spooled requests (written by hook clients that found no daemon), in
 * name order; each is processed once and deleted (stts_client's drain). */
/* A spooled request older than this is dropped, not acted on: the daemon
 * could not start for a while (a configuration error, no sound device), and
 * "Claude needs your permission" or a reply's sentences said minutes late
 * only confuse. A normal start (model load) takes seconds. */
#define SPOOL_MAX_AGE_S CLIENT_SPOOL_MAX_AGE_S

static stts_status spool_one(const char *line, size_t n, const char *path, void *user) {
    server *sv = user;
    const char *name = strrchr(path, '/');
    /* The name begins with the spooling time: 20 digits of CLOCK_REALTIME ns. */
    const char *base = name ? name + 1 : path;
    unsigned long long ns = 0;
    int digits = 0;
    while (digits < 20 && base[digits] >= '0' && base[digits] <= '9') ns = ns * 10 + (unsigned)(base[digits++] - '0');
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long now = (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
    if (digits == 20 && now > ns && now - ns > SPOOL_MAX_AGE_S * 1000000000ull) {
        logf_(sv, "spool %s: dropped: spooled %llu s ago (requests older than %d s are not spoken)", base,
              (now - ns) / 1000000000ull, SPOOL_MAX_AGE_S);
        return STTS_OK;
    }
    /* When it was made, on the hub's clock: a prompt replayed after the
     * reply it started had begun is stale (daemon_hub_hook_at). */
    uint64_t mono = stts_now_ns(), age = digits == 20 && now > ns ? now - ns : 0;
    char *r = handle(sv, NULL, line, n, age < mono ? mono - age : 1);
    json_t *rj = r ? json_loads(r, 0, NULL) : NULL;
    const char *done = json_string_value(json_object_get(rj, "done"));   /* what the hub did, when it says */
    if (json_is_true(json_object_get(rj, "ok")))
        logf_(sv, "spool %s: done%s%s%s", base, done ? " (" : "", done ? done : "", done ? ")" : "");
    else
        logf_(sv, "spool %s: %s", base, r ? r : "");
    json_decref(rj);
    free(r);
    return STTS_OK;
}

static void process_spool(server *sv) {
    stts_error e;
    size_t done = 0, dropped = 0;
    if (client_spool_drain(sv->spool, spool_one, sv, &done, &dropped, &e) != STTS_OK) logf_(sv, "spool: %s", e.msg);
    if (dropped) logf_(sv, "spool: %zu unreadable files deleted", dropped);
}

static void on_signal(void *user, int sig) {
    server *sv = user;
    atomic_store(&sv->sig, sig);
    if (write(sv->wake[1], "s", 1) < 0) {}
}

static void usage(FILE *f) {
    fputs("usage: stream-tts serve [flags]   the per-user speech daemon (docs/PROTOCOL.md)\n"
          "  --socket PATH           socket (default $STREAM_TTS_SOCKET, $XDG_RUNTIME_DIR/stream-tts/socket,\n"
          "                          else /tmp/stream-tts-$UID/socket); the log is serve.log beside it\n"
          "  --pace realtime         a file or pipe output (--output) takes audio at playback speed\n"
          "  --order arrival|newest|session  which sentence speaks next: the oldest (arrival, the default);\n"
          "                          the newest prompt's session first (newest); or the session speaking\n"
          "                          goes on while it has sentences, so replies are not interleaved, and a\n"
          "                          notification goes first (session)\n"
          "  --cue                   a short spoken cue when the speaker changes session\n"
          "  --idle-exit SECONDS     exit after this long with nothing to say and no request (default 1800; 0 never)\n"
          "  --on-prompt stop|continue      UserPromptSubmit stops that session's speech (default stop)\n"
          "  --on-session-end finish|drop   SessionEnd lets its speech finish or drops it (default finish)\n"
          "  --notify TYPES|none     Notification types spoken (default permission_prompt,idle_prompt,elicitation_dialog)\n"
          "  --no-stop-failure       say nothing on StopFailure\n"
          "  --stop-grace MS         a Stop matching no live message waits this long for late batches (default 250)\n"
          "  --notice-lang CODE      language of notices, an NLLB code (default: the spoken language's when\n"
          "                          it has a phrase table, else eng_Latn)\n"
          "  --config FILE           settings file (default ~/.config/stream-tts/config, as for stream-tts;\n"
          "                          its speech settings apply, flags given here win); serve's own flags\n"
          "                          there as serve.KEY = VALUE (serve.order = session, serve.cue = true)\n"
          "and the speech flags of stream-tts (--model, --tgt, --voice, --output, --metrics, ...):\n", f);
    pipeline_opts_usage(f);
}

/* Why this start failed before the speaker could say so itself: printed,
 * and written to serve.failed by cmd_serve (the hook that started the
 * daemon has returned; the next one reads it, says it in hook.log and
 * holds off starting another daemon for a while). */
static char g_start_failed[700];

/* --notify: a type Claude Code is not known to send is most likely a typo,
 * which silently turned off the prompts it meant (claude-code-hooks.md 2);
 * said at start, and taken as given (a later CLI may add types). */
static void warn_notify_types(const char *list) {
    static const char *const known[] = {"permission_prompt", "idle_prompt", "auth_success", "elicitation_dialog",
                                        "elicitation_url_dialog", "elicitation_complete", "elicitation_response",
                                        "agent_needs_input", "agent_completed", NULL};
    if (!*list) return;
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        int ok = 0;
        for (int k = 0; known[k] && !ok; k++) ok = strlen(known[k]) == n && !strncmp(known[k], p, n);
        if (!ok)
            fprintf(stderr, "stream-tts serve: warning: --notify: '%.*s' is not a notification type Claude Code is "
                            "known to send (permission_prompt, idle_prompt, elicitation_dialog, auth_success, "
                            "agent_needs_input, ...; 'none' alone for none); taken as given\n", (int)n, p);
        p += n + (p[n] == ',');
    }
}

static void start_err(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* The configuration file's line of the `serve.` setting being read, if
 * one is: its errors say where it was written. */
static char g_cfg_where[PATH_MAX + 16];

static void start_err(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_start_failed, sizeof g_start_failed, fmt, ap);
    va_end(ap);
    size_t n = strlen(g_start_failed);
    if (g_cfg_where[0] && n < sizeof g_start_failed)
        snprintf(g_start_failed + n, sizeof g_start_failed - n, " (in the configuration file %.600s)", g_cfg_where);
    fprintf(stderr, "stream-tts serve: %s\n", g_start_failed);
}

static int serve_main(int argc, char **argv) {
    server sv;
    memset(&sv, 0, sizeof sv);
    pipeline_opts_init(&sv.po);
    sv.po.status = 0;
    sv.idle_exit_s = 1800;
    sv.speed = 1.0;
    const char *sock_flag = NULL, *notify = NULL;
    daemon_hub_params hp;
    daemon_hub_default_params(&hp);
    char err[1024];
    /* The main command's front-end flags: only --notice-lang means something
     * to the daemon (the others, input flags, are accepted from the
     * configuration file and left unused). */
    frontend_opts fo;
    frontend_opts_init(&fo);
    for (int i = 1; i < argc; i++) {
        int missing = 0, b, on;
        const char *v;
        g_cfg_where[0] = '\0';
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        if (!strcmp(argv[i], "--config")) {   /* read by config_argv */
            if (i + 1 < argc) snprintf(sv.config_file, sizeof sv.config_file, "%s", argv[i + 1]);
            i++;
            continue;
        }
        if (!strncmp(argv[i], "--config=", 9)) {
            snprintf(sv.config_file, sizeof sv.config_file, "%s", argv[i] + 9);
            continue;
        }
        if (i <= config_argc() && !strncmp(argv[i], "--serve.", 8)) {
            /* "serve.KEY = VALUE": a setting of the daemon's own (order,
             * cue, max-lag, idle-exit, ...), which the main command leaves
             * to it. A daemon a hook starts has no other way to get one. It
             * is read as the flag --KEY=VALUE below; a switch takes "true"
             * or "false". */
            snprintf(g_cfg_where, sizeof g_cfg_where, "%s", config_where(i));
            memmove(argv[i] + 2, argv[i] + 8, strlen(argv[i] + 8) + 1);
            char *eq = strchr(argv[i], '=');
            size_t klen = eq ? (size_t)(eq - argv[i]) : strlen(argv[i]);
            int is_switch = (klen == 5 && !strncmp(argv[i], "--cue", 5)) ||
                            (klen == 17 && !strncmp(argv[i], "--no-stop-failure", 17));
            if (!strncmp(argv[i], "--socket", 8) && (klen == 8)) {
                /* ctl and the hooks do not read the configuration file: a
                 * daemon listening elsewhere was out of their reach, and a
                 * hook started a second one on the default path */
                start_err("'serve.socket' is not read from the configuration file (the clients would not find "
                          "the daemon): set STREAM_TTS_SOCKET for every client and the daemon alike");
                return 2;
            }
            if (!is_switch && !eq) {
                /* a bare line: a switch of the speech flags ("serve.echo"), or a flag missing its value */
                int j = i, r = pipeline_opts_parse(&sv.po, i + 1, argv, &j, err, sizeof err);
                if (r == 0) r = frontend_opts_parse(&fo, i + 1, argv, &j, err, sizeof err);
                if (r > 0 && j == i) continue;
                start_err("'serve.%s' needs a value: write 'serve.%s = VALUE'", argv[i] + 2, argv[i] + 2);
                return 2;
            }
        } else if (i <= config_argc()) {
            /* From the configuration file, written for the main command:
             * its speech settings apply; its input flags (which mean
             * nothing to the daemon) are accepted and left unused. */
            int i0 = i;
            /* A line without "= value" (written "--key") is parsed alone: it
             * took the next argument as its value, and a bad one was
             * reported as that ("weights" with "--config"). */
            int bare = !strchr(argv[i0], '='), lim = bare ? i0 + 1 : argc;
            int r = pipeline_opts_parse(&sv.po, lim, argv, &i, err, sizeof err);
            if (r == 0) r = frontend_opts_parse(&fo, lim, argv, &i, err, sizeof err);
            if (r < 0 && bare) {
                start_err("'%s' needs a value in the configuration file %s: write '%s = VALUE'", argv[i0] + 2,
                          config_where(i0), argv[i0] + 2);
                return 2;
            }
            if (r < 0) {
                start_err("%s in the configuration file %s", err, config_where(i0));
                return 2;
            }
            if (r == 0) {
                start_err("unknown option '%s' in the configuration file %s (see stream-tts --help)",
                        argv[i], config_where(i0));
                return 2;
            }
            if (i != i0) {   /* a line "tgt" without "= value" took the next argument */
                start_err("'%s' needs a value in the configuration file %s: write '%s = VALUE'", argv[i0] + 2,
                          config_where(i0), argv[i0] + 2);
                return 2;
            }
            continue;
        }
        if ((v = cli_flag_value("--socket", argc, argv, &i, &missing)) || missing) {
            if (missing) goto needs;
            sock_flag = v;
        } else if ((v = cli_flag_value("--order", argc, argv, &i, &missing)) || missing) {
            if (missing || (strcmp(v, "arrival") && strcmp(v, "newest") && strcmp(v, "session"))) {
                start_err("--order takes 'arrival', 'newest' or 'session'");
                return 2;
            }
            sv.order = !strcmp(v, "newest")    ? DAEMON_ORDER_NEWEST
                       : !strcmp(v, "session") ? DAEMON_ORDER_SESSION
                                               : DAEMON_ORDER_ARRIVAL;
        } else if ((v = cli_flag_value("--idle-exit", argc, argv, &i, &missing)) || missing) {
            char *end;
            double x = missing ? -1 : strtod(v, &end);
            if (missing || end == v || *end || !(x >= 0 && x <= 1e7)) {   /* NaN and "" fail too */
                start_err("--idle-exit takes seconds (0 = never)");
                return 2;
            }
            sv.idle_exit_s = x;
        } else if ((v = cli_flag_value("--on-prompt", argc, argv, &i, &missing)) || missing) {
            if (missing || (strcmp(v, "stop") && strcmp(v, "continue"))) {
                start_err("--on-prompt takes 'stop' or 'continue'");
                return 2;
            }
            hp.stop_on_prompt = !strcmp(v, "stop");
        } else if ((v = cli_flag_value("--on-session-end", argc, argv, &i, &missing)) || missing) {
            if (missing || (strcmp(v, "finish") && strcmp(v, "drop"))) {
                start_err("--on-session-end takes 'finish' or 'drop'");
                return 2;
            }
            hp.drop_on_session_end = !strcmp(v, "drop");
        } else if ((v = cli_flag_value("--notify", argc, argv, &i, &missing)) || missing) {
            if (missing) goto needs;
            notify = strcmp(v, "none") ? v : "";
            warn_notify_types(notify);
        } else if ((v = cli_flag_value("--stop-grace", argc, argv, &i, &missing)) || missing) {
            char *end;
            long ms = missing ? -1 : strtol(v, &end, 10);
            if (missing || *end || ms < 0 || ms > 10000) {
                start_err("--stop-grace takes milliseconds from 0 to 10000");
                return 2;
            }
            hp.stop_grace_ms = (int)ms;
        } else if ((b = cli_bool_flag("--cue", argv[i], &on, err, sizeof err)) != 0) {
            if (b < 0) { start_err("%s", err); return 2; }   /* --cue=false turns off a serve.cue of the file */
            sv.cue = on;
        } else if ((b = cli_bool_flag("--no-stop-failure", argv[i], &on, err, sizeof err)) != 0) {
            if (b < 0) { start_err("%s", err); return 2; }
            hp.speak_stop_failure = !on;
        } else if (!strcmp(argv[i], "--notice-lang") || !strncmp(argv[i], "--notice-lang=", 14)) {
            if (frontend_opts_parse(&fo, argc, argv, &i, err, sizeof err) < 0) {
                start_err("%s", err);
                return 2;
            }
        } else {
            int r = pipeline_opts_parse(&sv.po, argc, argv, &i, err, sizeof err);
            if (r < 0) { start_err("%s (see stream-tts serve --help)", err); return 2; }
            if (r == 0) {
                start_err("unknown option '%s' (see stream-tts serve --help)", argv[i]);
                return 2;
            }
        }
        continue;
    needs:
        start_err("%s needs a value", argv[i]);
        return 2;
    }
    g_cfg_where[0] = '\0';   /* later start errors are not the last serve. line's */
    if (notify) hp.notify_types = notify;
    if (!sv.config_file[0]) {   /* no --config: where config_argv looked */
        const char *x = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
        if (x && *x) snprintf(sv.config_file, sizeof sv.config_file, "%s/stream-tts/config", x);
        else if (home && *home) snprintf(sv.config_file, sizeof sv.config_file, "%s/.config/stream-tts/config", home);
    }
    sv.speed = sv.po.speed;
    if (sv.po.output && !strcmp(sv.po.output, "-") && sv.po.echo) sv.po.echo = 0;
    stts_error e;
    if (app_check_languages(sv.po.src, sv.po.tgt, &e) != STTS_OK) {
        start_err("%s", e.msg);
        return 2;
    }
    char path_note[512];
    if (client_socket_path_note(sock_flag, sv.sock, sizeof sv.sock, path_note, sizeof path_note, &e) != STTS_OK ||
        client_socket_dir(sv.sock, sv.dir, sizeof sv.dir, &e) != STTS_OK) {
        start_err("%s", e.msg);
        return 2;
    }
    if (client_prepare_dir(sv.dir, &e) != STTS_OK || client_spool_dir(sv.sock, sv.spool, sizeof sv.spool, &e) != STTS_OK) {
        start_err("%s", e.msg);
        return 1;
    }
    if (sv.po.output && !strcmp(sv.po.output, "-")) {
        /* Raw PCM on stdout suits `stream-tts ... | player`; a daemon a hook
         * started has serve.log there (client_spawn_daemon): it spoke into
         * its own log, nothing was heard and nothing said why. */
        char lp[PATH_MAX];
        struct stat ls, os_;
        snprintf(lp, sizeof lp, "%s/serve.log", sv.dir);
        if (stat(lp, &ls) == 0 && fstat(1, &os_) == 0 && ls.st_dev == os_.st_dev && ls.st_ino == os_.st_ino) {
            start_err("output '-' (raw audio on stdout) cannot be heard: this daemon's stdout is its log %s (a hook "
                      "started it); set output to FILE.wav, or leave it out for the sound device, in %s (or give "
                      "serve --output), and keep '-' for stream-tts ... | player", lp,
                      sv.config_file[0] ? sv.config_file : "~/.config/stream-tts/config");
            return 2;
        }
    }
    pthread_mutex_init(&sv.log_mu, NULL);
    pthread_mutex_init(&sv.mu, NULL);
    pthread_cond_init(&sv.cv, NULL);
    snprintf(sv.state, sizeof sv.state, "loading");

    sigset_t old;
    app_signals_block(&old);
    signal(SIGPIPE, SIG_IGN);
    int lfd = open_listener(&sv, err, sizeof err);
    if (lfd < 0) {
        start_err("%s", err);
        return lfd == -2 ? 3 : 1;
    }
    sv.muted = json_object();
    sv.mute_tail = json_object();
    sv.job_stopped = json_object();
    sv.job_ends = json_array();
    sv.newest = json_object();
    if (daemon_queue_new(session_rank, &sv, &sv.pending, &e) != STTS_OK) {
        start_err("out of memory");
        return 1;
    }
    snprintf(sv.log_path, sizeof sv.log_path, "%s/serve.log", sv.dir);
    snprintf(sv.failed_path, sizeof sv.failed_path, "%s/serve.failed", sv.dir);
    sv.log = fopen(sv.log_path, "a");
    if (sv.log) fchmod(fileno(sv.log), 0600);
    /* A hook starts the daemon with stdout and stderr appended to serve.log
     * (client_spawn_daemon): the stderr copy of each line went to the same
     * file, so serve.log said everything twice. log_cap moves stderr to
     * the new file with the log, so this stays true. */
    struct stat log_st, err_st;
    sv.err_is_log = sv.log && fstat(fileno(sv.log), &log_st) == 0 && fstat(2, &err_st) == 0 &&
                    log_st.st_dev == err_st.st_dev && log_st.st_ino == err_st.st_ino;
    /* The notice language: --notice-lang (a flag, or the configuration
     * file's notice-lang) as given, else the spoken one when the phrase
     * table has it, as in the pipe mode. */
    if (fo.notice_lang_set) {
        snprintf(sv.notice_lang, sizeof sv.notice_lang, "%s", fo.notice_lang);
    } else {
        char nl[32];
        snprintf(sv.notice_lang, sizeof sv.notice_lang, "%s",
                 app_notice_lang("eng_Latn", sv.po.no_translate ? sv.po.src : sv.po.tgt, nl, sizeof nl));
    }
    hp.text.notice_lang = sv.notice_lang;
    daemon_hub_callbacks cb = {hub_sentence, hub_stop};
    if (daemon_hub_new(&hp, &cb, &sv, &sv.hub, &e) != STTS_OK || stts_pipe_cloexec(sv.wake, 1) != 0) {
        start_err("out of memory");
        return 1;
    }
    logf_(&sv, "listening on %s (pid %d, log %s)", sv.sock, (int)getpid(), sv.log_path);
    if (path_note[0]) logf_(&sv, "%s", path_note);
    app_sigwatch *sw = NULL;
    app_sigwatch_start(on_signal, &sv, &sw, &e);
    pthread_t speaker;
    if (pthread_create(&speaker, NULL, speaker_main, &sv) != 0) {
        start_err("cannot start the speaker thread");
        return 1;
    }

    client cl[ALL_SLOTS];
    int ncl = 0, full_said = 0;
    int old_lfd = -1;   /* a listener replaced by keep_socket, until its waiting connections are taken */
    size_t in_total = 0;   /* sum of the clients' buffer capacities, within IN_BUDGET */
    sv.last_activity = stts_now_ns();
    uint64_t last_spool = stts_now_ns();
    int rc = 0;
    for (;;) {
        struct pollfd pf[ALL_SLOTS + 2];
        pf[0] = (struct pollfd){lfd, ncl < ALL_SLOTS ? POLLIN : 0, 0};   /* full: new ones wait */
        pf[1] = (struct pollfd){sv.wake[0], POLLIN, 0};
        for (int k = 0; k < ncl; k++) {   /* no more requests read while its replies pile up */
            const int more = cl[k].out_len < OUT_HIGH && !cl[k].eof && !(cl[k].oneshot && cl[k].served) &&
                             !cl[k].in_job && !cl[k].wait_hub;
            pf[k + 2] = (struct pollfd){cl[k].fd, (short)((more ? POLLIN : 0) | (cl[k].out_len ? POLLOUT : 0)), 0};
        }
        uint64_t now = stts_now_ns();
        int timeout = 250;
        uint64_t dl = sv.job ? 0 : daemon_hub_deadline(sv.hub);   /* the job's hub: its timers wait */
        if (dl) timeout = dl <= now ? 0 : (int)((dl - now) / 1000000 + 1) < timeout ? (int)((dl - now) / 1000000 + 1) : timeout;
        int waiting = 0;
        for (int k = 0; k < ncl; k++) {
            waiting |= cl[k].waiting_end != NULL;
            if (cl[k].held_lines && cl[k].out_len < OUT_HIGH) timeout = 0;   /* its next requests, now */
            if (cl[k].wait_hub && !sv.job) timeout = 0;
        }
        if (waiting && timeout > 20) timeout = 20;
        poll(pf, (nfds_t)ncl + 2, timeout);
        if (atomic_load(&sv.sig)) {
            logf_(&sv, "stopping (%s)", app_signal_word(atomic_load(&sv.sig)));
            break;
        }
        pthread_mutex_lock(&sv.mu);
        int q = sv.quit;
        pthread_mutex_unlock(&sv.mu);
        if (q) { rc = 1; break; }
        if (pf[1].revents) { char b[16]; while (read(sv.wake[0], b, sizeof b) > 0) {} }
        if (!sv.live) {
            pthread_mutex_lock(&sv.mu);
            int ready = sv.ready_msg[0] != '\0';
            pthread_mutex_unlock(&sv.mu);
            if (ready) {
                /* Spooled requests (hooks that found no daemon, and those
                 * that came while loading) first, in order. */
                process_spool(&sv);
                sv.live = 1;
                logf_(&sv, "%s", sv.ready_msg);
            }
        }
        now = stts_now_ns();
        if (sv.job && job_done(&sv)) job_finish(&sv, cl, ncl);
        if (!sv.job) hub_tick(&sv, now);
        const int polled = ncl; /* clients accepted below have no poll result this pass */
        /* At most the free slots: the rest wait in the listen queue (polled
         * again once a slot frees). Accepted and turned away, a hook's
         * request, sent whole before the daemon read it (the daemon stopped
         * or busy), was lost: the hook had taken it for delivered when no
         * reply came within its 40 ms. A replaced listener's queue first
         * (older; nothing new reaches it), closed once empty. */
        const int from[2] = {old_lfd, (pf[0].revents & POLLIN) ? lfd : -1};
        int nstay = 0;   /* clients in the slots that may stay */
        for (int k = 0; k < ncl; k++) nstay += !cl[k].oneshot;
        for (int w = 0; w < 2; w++) {
            while (from[w] >= 0 && ncl < ALL_SLOTS) {
                int fd = stts_accept_cloexec(from[w], NULL, NULL, 1);
                if (fd < 0) {
                    if (w == 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) { close(old_lfd); old_lfd = -1; }
                    break;
                }
                uid_t peer;
                if (stts_peer_uid(fd, &peer) != 0 || peer != getuid()) {
                    reply_and_close(fd, daemon_reply_error("refused: the daemon serves its own user only"));
                    logf_(&sv, "refused a client of uid %d", (int)peer);   /* -1: unknown */
                    continue;
                }
                const int oneshot = nstay >= MAX_CLIENTS;
                nstay += !oneshot;
                cl[ncl++] = (client){.fd = fd, .heard_ns = now, .oneshot = oneshot};
            }
        }
        if (nstay == MAX_CLIENTS && full_said < 1) {
            logf_(&sv, "%d connections open: new ones get one control or hook request each (a reserve of %d)",
                  MAX_CLIENTS, RESERVE_SLOTS);
            full_said = 1;
        }
        if ((pf[0].revents & POLLIN) && ncl == ALL_SLOTS && full_said < 2) {
            logf_(&sv, "%d connections open (the reserve too): new ones wait in the listen queue until one closes",
                  ALL_SLOTS);
            full_said = 2;
        }
        if (ncl < MAX_CLIENTS / 2) full_said = 0;
        /* Clients in the order they connected: hooks are separate
         * processes, so requests that piled up while the daemon was busy
         * (or stopped) are taken in their order of arrival, as a reply's
         * words came (a downward loop said them newest first). Closed
         * ones are dropped after the loop, so slot k is the client polled
         * as k throughout. */
        for (int k = 0; k < ncl; k++) {
            client *c = &cl[k];
            int closed = 0;
            const short rev = k < polled ? pf[k + 2].revents : 0;
            if (c->out_len && (rev & (POLLOUT | POLLERR | POLLHUP))) flush_out(c, now);
            if (c->out_len < OUT_HIGH && !c->held_lines && !c->eof && !c->in_job && !c->wait_hub &&
                (rev & (POLLIN | POLLHUP | POLLERR))) {
                char buf[65536];
                ssize_t n = recv(c->fd, buf, sizeof buf, 0);
                if (n == 0) c->eof = 1; /* served and flushed below before it is closed */
                else if (n < 0 && errno != EAGAIN && errno != EINTR) closed = 1;
                else if (n > 0) {
                    if (c->len + (size_t)n > c->cap) {
                        size_t need = c->len + (size_t)n, nc = c->cap ? c->cap : 65536;
                        while (nc < need) nc *= 2;
                        if (nc > IN_CAP_MAX) nc = need > IN_CAP_MAX ? need : IN_CAP_MAX;
                        if (in_total - c->cap + nc > IN_BUDGET) {
                            char m[200];
                            snprintf(m, sizeof m, "the daemon's input memory (%zu MiB over all connections) is "
                                     "in use; request refused; connection closed, try again", IN_BUDGET >> 20);
                            reply(c, daemon_reply_error(m));
                            logf_(&sv, "a connection's %zu-byte request would pass %zu MiB of input over %d "
                                  "connections; refused, connection closed", need, IN_BUDGET >> 20, ncl);
                            closed = 1;
                        } else {
                            char *g = realloc(c->buf, nc);
                            if (!g) closed = 1;
                            else { in_total = in_total - c->cap + nc; c->buf = g; c->cap = nc; }
                        }
                    }
                    if (!closed) {
                        memcpy(c->buf + c->len, buf, (size_t)n);
                        c->len += (size_t)n;
                        if (!c->oneshot) c->heard_ns = now;   /* a reserve slot's time is counted from its accept */
                    }
                }
            }
            /* Every complete line gets its reply, in order. */
            size_t start = 0;
            while (!closed && !c->waiting_end && c->buf && c->out_len < OUT_HIGH && !c->broken &&
                   !(c->oneshot && c->served) && !c->in_job && !c->wait_hub) {
                /* A long line comes in many reads: search only the new bytes. */
                size_t from = start + (start ? 0 : c->scanned);
                char *nl_ = memchr(c->buf + from, '\n', c->len - from);
                if (!nl_) { c->scanned = c->len - start; break; }
                size_t ln = (size_t)(nl_ - (c->buf + start));
                char *r;
                int how = serve_line(&sv, cl, ncl, c, c->buf + start, ln, &r);
                if (how == LINE_HELD) {   /* the line stays, found again (scanned) when the hub is back */
                    c->wait_hub = 1;
                    c->scanned = ln;
                    break;
                }
                c->scanned = 0;
                start += ln + 1;
                c->served++;
                if (r) reply(c, r);
            }
            if (start) {
                memmove(c->buf, c->buf + start, c->len - start);
                c->len -= start;
            }
            if (!c->len && c->cap > IN_KEEP) {   /* a large line served: give its room back to the budget */
                in_total -= c->cap;
                free(c->buf);
                c->buf = NULL;
                c->cap = 0;
                c->scanned = 0;
            }
            c->held_lines = !closed && c->out_len >= OUT_HIGH;
            /* A request in the job, or one waiting for the hub, is whole and taken: none of the
             * checks below (a cut request, the time to send one) applies while it waits. */
            const int hub_wait = c->in_job || c->wait_hub;
            /* After its EOF: once every complete line is answered (none held,
             * none waiting on a session's end) and every reply sent. A last
             * line without its newline is a request cut short: said so. */
            /* A reserve slot's one request is answered: closed once its reply is sent (what
             * else it sent is not read: a connection closed before a reply was not taken). */
            if (!closed && c->oneshot && c->served && !c->out_len && !c->waiting_end && !hub_wait) closed = 1;
            if (!closed && c->eof && !c->held_lines && !c->waiting_end && !hub_wait) {
                if (c->len) {
                    reply(c, daemon_reply_error("the request ended without a newline; not read"));
                    c->len = 0;
                    c->scanned = 0;
                }
                if (!c->out_len) closed = 1;
            }
            if (!closed && c->out_len && now > c->out_ns && now - c->out_ns > CONN_QUIET_NS) {
                logf_(&sv, "a client took none of its replies (%zu bytes) for %llu s; connection closed", c->out_len,
                      CONN_QUIET_NS / 1000000000ull);
                closed = 1;
            }
            if (!closed && !c->out_len && !c->waiting_end && !hub_wait && (c->len > 0 || !c->served) &&
                now > c->heard_ns && now - c->heard_ns > CONN_QUIET_NS) {
                char m[128];
                snprintf(m, sizeof m, "nothing received for %llu s %s; connection closed",
                         CONN_QUIET_NS / 1000000000ull, c->len ? "in the middle of a request" : "after connecting");
                reply(c, daemon_reply_error(m));
                logf_(&sv, "%s", m);
                closed = 1;
            }
            if (!closed && c->len > DAEMON_MAX_LINE) {
                char m[128];
                snprintf(m, sizeof m, "request line longer than %zu bytes refused; connection closed", DAEMON_MAX_LINE);
                reply(c, daemon_reply_error(m));
                logf_(&sv, "%s", m);
                closed = 1;
            }
            if (!closed && c->waiting_end && !session_busy(&sv, c->waiting_end)) {
                free(c->waiting_end);
                c->waiting_end = NULL;
                reply(c, daemon_reply_ok(NULL));
            }
            if (c->broken && !c->in_job) closed = 1;   /* the job's client: at its end (job_finish) */
            if (closed) {
                if (c->pipe_session && sv.job) {
                    /* the hub is the job's: ended when it is back */
                    json_array_append_new(sv.job_ends, json_string(c->pipe_session));
                    logf_(&sv, "pipe session %s: the client left without \"end\"; ended", c->pipe_session);
                    free(c->pipe_session);
                } else if (c->pipe_session) {
                    /* A pipe client gone without its `end` (killed, crashed):
                     * its session ends here as with `end`, or it would stay
                     * forever, and so would its claim on Claude Code's
                     * session (whose hooks, resumed interactively, were then
                     * never spoken again). */
                    daemon_hub_end(sv.hub, c->pipe_session);
                    session_ended(&sv, c->pipe_session);
                    logf_(&sv, "pipe session %s: the client left without \"end\"; ended", c->pipe_session);
                    free(c->pipe_session);
                }
                close(c->fd);
                in_total -= c->cap;
                free(c->buf);
                free(c->out);
                free(c->waiting_end);
                c->fd = -1;   /* dropped below */
            }
        }
        int kept = 0;
        for (int k = 0; k < ncl; k++)
            if (cl[k].fd >= 0) cl[kept++] = cl[k];
        ncl = kept;
        if (now - last_spool > 500000000ull) {
            if (keep_socket(&sv, &lfd, &old_lfd) != 0) break;
            if (sv.live && !sv.job) process_spool(&sv);
            last_spool = now;
        }
        if (sv.idle_exit_s > 0 && ncl == 0 && (double)(now - sv.last_activity) / 1e9 > sv.idle_exit_s) {
            json_t *st = status_json(&sv);
            int idle = json_integer_value(json_object_get(st, "queue")) == 0;
            /* A control the user set lives only in this process: a muted,
             * paused or re-speeded daemon that exited came back (started by
             * the next hook) unmuted, unpaused and at speed 1, and spoke. It
             * stays while any is set. */
            double speed = json_number_value(json_object_get(st, "speed"));
            int held = json_is_true(json_object_get(st, "paused")) || json_is_true(json_object_get(st, "muted_all")) ||
                       json_object_size(json_object_get(st, "muted")) > 0 || (speed > 0 && speed != sv.po.speed);
            json_decref(st);
            if (idle && held && !sv.idle_held_said) {
                logf_(&sv, "idle for %.0f s, but kept running: it holds a control set with ctl (mute, pause or "
                           "speed) that a new daemon would not have", sv.idle_exit_s);
                sv.idle_held_said = 1;
            }
            if (idle && !held) {
                logf_(&sv, "idle for %.0f s: exiting (--idle-exit)", sv.idle_exit_s);
                break;
            }
            sv.last_activity = now;   /* still speaking: look again later */
        }
    }
    /* Only its own: a newer daemon may listen at the path (this one's
     * folder was removed and the newer one made it again); removing its
     * socket cut it off from every client for its whole life. */
    if (same_file(sv.sock, sv.sock_dev, sv.sock_ino)) unlink(sv.sock);
    close(lfd);
    if (old_lfd >= 0) close(old_lfd);
    /* Every connection closed now, not after speech has stopped: a hook
     * whose request was not read learns at once that it was not taken
     * (and hands it to the next daemon) instead of waiting past its budget
     * and taking it for delivered. */
    for (int k = 0; k < ncl; k++) {
        close(cl[k].fd);
        free(cl[k].buf);
        free(cl[k].out);
        free(cl[k].waiting_end);
        free(cl[k].pipe_session);
    }
    ncl = 0;
    pthread_mutex_lock(&sv.mu);
    if (!sv.quit) sv.quit = 1;
    pthread_cond_broadcast(&sv.cv);
    pipeline *pl = sv.pl;
    pthread_mutex_unlock(&sv.mu);
    /* Quitting drops what is queued (an idle exit has nothing queued). */
    if (pl) pipeline_cancel(pl);
    /* A job still taking a huge request: its sentences are dropped now
     * (quit), but its text stage's work cannot be cut short; its client
     * was closed above, unanswered (not taken, for the next daemon). */
    if (sv.job) job_finish(&sv, NULL, 0);
    /* A signal while the speaker still loads (the model, the voice, the
     * warm-up cannot be cut short): joining it waited out the whole load.
     * Nothing has been spoken or written, the socket is gone and every
     * connection closed: exit now, with a normal stop's status. */
    pthread_mutex_lock(&sv.mu);
    int loading = !sv.pl && strcmp(sv.state, "loading") == 0;
    pthread_mutex_unlock(&sv.mu);
    if (loading && atomic_load(&sv.sig)) {
        logf_(&sv, "exited while starting up");   /* flushed: _exit flushes nothing */
        _exit(rc);
    }
    pthread_join(speaker, NULL);
    if (pl) {
        if (sv.log) pipeline_print_summary(pl, sv.log);
        pipeline_free(pl);
    }
    if (sv.metrics) fclose(sv.metrics);
    app_close(sv.app, 1, NULL);
    app_sigwatch_stop(sw);
    app_signals_restore(&old);
    pthread_mutex_lock(&sv.mu);
    daemon_queue_free(sv.pending, pend_free);
    sv.pending = NULL;
    pthread_mutex_unlock(&sv.mu);
    daemon_hub_free(sv.hub);
    json_decref(sv.muted);
    json_decref(sv.mute_tail);
    json_decref(sv.job_stopped);
    json_decref(sv.job_ends);
    json_decref(sv.newest);
    close(sv.wake[0]);
    close(sv.wake[1]);
    logf_(&sv, "exited");
    if (sv.log) fclose(sv.log);
    return rc;
}

/* The user's configuration file (~/.config/stream-tts/config, the main
 * command's) comes first in argv, so flags given to serve win: a daemon
 * started by a hook gets only --socket and still speaks as the user set. */
/* serve.failed beside the socket, with why (0600, replaced; stts_client's,
 * shared with the hook and the launcher). */
static void write_start_failed(int argc, char **argv) {
    const char *sock_flag = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--socket") && i + 1 < argc) sock_flag = argv[++i];
        else if (!strncmp(argv[i], "--socket=", 9)) sock_flag = argv[i] + 9;
    }
    stts_error e;
    client_write_start_failed(sock_flag, g_start_failed, &e);   /* failing that, stderr said it */
}

int cmd_serve(int argc, char **argv) {
    char err[512];
    int n = 0;
    g_start_failed[0] = '\0';
    char **args = config_argv(argc, argv, &n, err, sizeof err);
    int rc;
    if (!args) {
        start_err("%s", err);
        rc = 2;
    } else {
        rc = serve_main(n, args);
        config_argv_free(args, n);
    }
    /* 3: another daemon runs (nothing failed); the speaker thread writes
     * serve.failed itself when the voice or output cannot be opened. */
    if ((rc == 1 || rc == 2) && g_start_failed[0]) write_start_failed(argc, argv);
    return rc;
}
