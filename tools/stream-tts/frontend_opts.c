/* frontend_opts.c - front-end flags and the input driver (see frontend_opts.h). */
#define _POSIX_C_SOURCE 200809L
#include "frontend_opts.h"

#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void frontend_opts_init(frontend_opts *o) {
    memset(o, 0, sizeof *o);
    ingest_default_params(&o->ingest);
    snprintf(o->notice_lang, sizeof o->notice_lang, "eng_Latn");
    o->ingest.text.notice_lang = o->notice_lang;
}

/* "--name VALUE" or "--name=VALUE": the value, or NULL if this is not --name. */
const char *cli_flag_value(const char *name, int argc, char **argv, int *i, int *missing) {
    size_t n = strlen(name);
    const char *a = argv[*i];
    *missing = 0;
    if (strncmp(a, name, n) != 0) return NULL;
    if (a[n] == '=') return a + n + 1;
    if (a[n] != '\0') return NULL;
    if (*i + 1 >= argc) { *missing = 1; return NULL; }
    return argv[++*i];
}

/* Boolean flags also accept "=true/false" (the configuration file writes them so). */
int cli_bool_flag(const char *name, const char *a, int *out, char *err, size_t cap) {
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '\0') { *out = 1; return 1; }
    if (a[n] != '=') return 0;
    const char *v = a + n + 1;
    if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1") || !strcmp(v, "on")) *out = 1;
    else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0") || !strcmp(v, "off")) *out = 0;
    else { snprintf(err, cap, "%s takes true or false, got '%s'", name, v); return -1; }
    return 1;
}

static int parse_num(const char *flag, const char *v, unsigned long lo, unsigned long hi, unsigned long *out,
                     char *err, size_t cap) {
    char *end;
    errno = 0;
    unsigned long x = strtoul(v, &end, 10);
    if (!v[0] || *end || errno || v[0] == '-' || x < lo || x > hi) {
        snprintf(err, cap, "%s expects a whole number from %lu to %lu, got '%s'", flag, lo, hi, v);
        return -1;
    }
    *out = x;
    return 0;
}

static int valid_lang(const char *v) {
    /* NLLB codes look like eng_Latn, zho_Hant */
    if (strlen(v) != 8 || v[3] != '_') return 0;
    for (int k = 0; k < 3; k++) if (v[k] < 'a' || v[k] > 'z') return 0;
    if (v[4] < 'A' || v[4] > 'Z') return 0;
    for (int k = 5; k < 8; k++) if (v[k] < 'a' || v[k] > 'z') return 0;
    return 1;
}

int frontend_opts_parse(frontend_opts *o, int argc, char **argv, int *i, char *err, size_t cap) {
    const char *a = argv[*i];
    int miss = 0;
    const char *v;
    unsigned long x;
    static const struct { const char *name; size_t off; } flags[] = {
        {"--dry-run", offsetof(frontend_opts, dry_run)},
        {"--json", offsetof(frontend_opts, json)},
        {"--stats", offsetof(frontend_opts, stats)},
        {"--hook", offsetof(frontend_opts, hook)},
        {"--speak-subagents", offsetof(frontend_opts, ingest) + offsetof(ingest_params, speak_subagents)},
        {"--announce-tools", offsetof(frontend_opts, ingest) + offsetof(ingest_params, announce_tools)},
        {"--speak-thinking", offsetof(frontend_opts, ingest) + offsetof(ingest_params, speak_thinking)},
        {"--read-tables", offsetof(frontend_opts, ingest) + offsetof(ingest_params, text) +
                              offsetof(text_params, read_tables)},
    };
    for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++) {
        int r = cli_bool_flag(flags[k].name, a, (int *)((char *)o + flags[k].off), err, cap);
        if (r) return r;
    }
    const char *files[] = {"--input", "--transcript", "--follow"};
    const char **dest[] = {&o->input, &o->transcript, &o->follow};
    for (int k = 0; k < 3; k++) {
        if ((v = cli_flag_value(files[k], argc, argv, i, &miss)) || miss) {
            if (miss || !v[0]) { snprintf(err, cap, "%s needs a file name", files[k]); return -1; }
            *dest[k] = v;
            return 1;
        }
    }
    if ((v = cli_flag_value("--idle-flush-ms", argc, argv, i, &miss)) || miss) {
        if (miss || parse_num("--idle-flush-ms", v, 0, 600000, &x, err, cap)) {
            if (miss) snprintf(err, cap, "--idle-flush-ms needs a number of milliseconds");
            return -1;
        }
        o->ingest.text.idle_flush_ns = (uint64_t)x * 1000000ull;
        return 1;
    }
    if ((v = cli_flag_value("--max-sentence-chars", argc, argv, i, &miss)) || miss) {
        if (miss || parse_num("--max-sentence-chars", v, 0, 100000, &x, err, cap)) {
            if (miss) snprintf(err, cap, "--max-sentence-chars needs a number (0 = no limit)");
            return -1;
        }
        if (x != 0 && x < 20) { snprintf(err, cap, "--max-sentence-chars must be 0 or at least 20, got %lu", x); return -1; }
        o->ingest.text.max_sentence_chars = (uint32_t)x;
        return 1;
    }
    if ((v = cli_flag_value("--merge-short-chars", argc, argv, i, &miss)) || miss) {
        if (miss || parse_num("--merge-short-chars", v, 0, 1000, &x, err, cap)) {
            if (miss) snprintf(err, cap, "--merge-short-chars needs a number (0 = never merge)");
            return -1;
        }
        o->ingest.text.merge_short_chars = (uint32_t)x;
        return 1;
    }
    if ((v = cli_flag_value("--max-line-mib", argc, argv, i, &miss)) || miss) {
        if (miss || parse_num("--max-line-mib", v, 1, 4096, &x, err, cap)) {
            if (miss) snprintf(err, cap, "--max-line-mib needs a number of MiB");
            return -1;
        }
        o->max_line = (size_t)x << 20;
        return 1;
    }
    if ((v = cli_flag_value("--input-format", argc, argv, i, &miss)) || miss) {
        if (!miss && !strcmp(v, "stream-json")) o->ingest.input_format = INGEST_INPUT_STREAM_JSON;
        else if (!miss && !strcmp(v, "text")) o->ingest.input_format = INGEST_INPUT_TEXT;
        else if (!miss && !strcmp(v, "markdown")) o->ingest.input_format = INGEST_INPUT_MARKDOWN;
        else {
            snprintf(err, cap, "--input-format expects stream-json, text or markdown, got '%s'", miss ? "" : v);
            return -1;
        }
        return 1;
    }
    if ((v = cli_flag_value("--notice-lang", argc, argv, i, &miss)) || miss) {
        if (miss || !valid_lang(v)) {
            snprintf(err, cap, "--notice-lang expects an NLLB language code like eng_Latn or jpn_Jpan, got '%s'",
                     miss ? "" : v);
            return -1;
        }
        snprintf(o->notice_lang, sizeof o->notice_lang, "%s", v);
        o->ingest.text.notice_lang = o->notice_lang;
        o->notice_lang_set = 1;   /* honoured as given, eng_Latn included */
        return 1;
    }
    return 0;
}

int frontend_opts_check(const frontend_opts *o, char *err, size_t cap) {
    if (o->hook && !o->dry_run) {
        /* The older Stop-hook mode, still in users' settings: it is now the
         * thin hook client (`stream-tts hook`): the payload goes to the
         * daemon, which speaks the turn from last_assistant_message and the
         * live batches; the transcript is never read for speech
         * (docs/HOOKS.md), no model is loaded inside the hook, nothing is
         * printed and the exit status is 0. The other flags given with it
         * are the daemon's business (its configuration file). */
        char name[] = "hook";
        char *args[] = {name, NULL};
        fflush(NULL);
        exit(cmd_hook(1, args));
    }
    int modes = (o->input != NULL) + (o->transcript != NULL) + (o->follow != NULL) + (o->hook != 0);
    if (modes > 1) {
        snprintf(err, cap, "use only one of --input, --transcript, --hook and --follow");
        return -1;
    }
    if (o->ingest.input_format != INGEST_INPUT_STREAM_JSON && (o->transcript || o->follow || o->hook)) {
        snprintf(err, cap, "--input-format text/markdown reads stdin or --input, not a transcript");
        return -1;
    }
    if (o->json && !o->dry_run) {
        snprintf(err, cap, "--json changes the --dry-run output; add --dry-run");
        return -1;
    }
    return 0;
}

void frontend_opts_usage(FILE *f) {
    fputs("Input (default: stream-json on stdin, from claude -p --output-format stream-json --verbose\n"
          "       [--include-partial-messages]):\n"
          "  --input FILE            read stream-json from FILE instead of stdin ('-' = stdin)\n"
          "  --transcript FILE       speak the last turn of a Claude Code transcript (.jsonl)\n"
          "  --hook                  as `stream-tts hook` (older hook settings): hand the hook payload on stdin\n"
          "                          to the daemon; with --dry-run, print the last turn of its transcript\n"
          "  --follow FILE           speak each turn appended to a transcript (survives truncation/rotation)\n"
          "  --max-line-mib N        skip input lines longer than N MiB with a warning (default 256)\n"
          "  --input-format FMT      stream-json (default), text (plain text, read literally) or markdown\n"
          "What is spoken:\n"
          "  --speak-subagents       also speak subagents' text (parent_tool_use_id set; default: silent)\n"
          "  --announce-tools        announce each tool call (\"Running: git status.\")\n"
          "  --speak-thinking        also speak thinking text (default: never)\n"
          "  --read-tables           read tables row by row (default: \"Table, N rows, omitted.\")\n"
          "  --notice-lang CODE      language of notices, an NLLB code (default eng_Latn; jpn_Jpan has a table)\n"
          "Sentences:\n"
          "  --idle-flush-ms N       flush a fragment after N ms without input (default 1500)\n"
          "  --max-sentence-chars N  cut longer sentences at a clause boundary (default 200, 0 = off)\n"
          "  --merge-short-chars N   merge sentences of at most N characters with the next (default 10, 0 = off)\n"
          "Output:\n"
          "  --dry-run               print each sentence on its own line to stdout instead of speaking\n"
          "                          (untranslated: speech flags such as --tgt have no effect, with a warning)\n"
          "  --json                  with --dry-run: one JSON object per sentence (text, kind, lang,\n"
          "                          message_id, seq, line, arrival_ns, emit_ns)\n"
          "  --stats                 print input counters to stderr at the end\n",
          f);
}

static void warn_stderr(void *user, uint64_t line_no, const char *msg) {
    (void)user;
    (void)line_no;
    fprintf(stderr, "stream-tts: %s\n", msg);
}

static void print_stats(const ingest_frontend *fe) {
    ingest_stats s;
    ingest_frontend_stats(fe, &s);
    fprintf(stderr,
            "stream-tts: %llu lines (%llu bytes), %llu bad, %llu invalid UTF-8, %llu truncated, "
            "%llu unknown types, %llu missing fields, %llu subagent lines skipped, %llu duplicates skipped, "
            "%llu stream events, %llu results, %llu large tool results not parsed, %llu structured results, "
            "%llu interrupted turns, %llu plain-text lines; %llu sentences, %llu notices\n",
            (unsigned long long)s.lines, (unsigned long long)s.bytes, (unsigned long long)s.bad_lines,
            (unsigned long long)s.invalid_utf8, (unsigned long long)s.truncated,
            (unsigned long long)s.unknown_types, (unsigned long long)s.missing_fields,
            (unsigned long long)s.subagent_skipped, (unsigned long long)s.duplicates,
            (unsigned long long)s.stream_events, (unsigned long long)s.results,
            (unsigned long long)s.tool_results_skipped, (unsigned long long)s.structured_skipped,
            (unsigned long long)s.interrupted, (unsigned long long)s.plain_text_lines, (unsigned long long)s.sentences,
            (unsigned long long)s.notices);
}

/* The input to its end; errors on stderr. */
static int pump(ingest_reader *r, ingest_frontend *fe, volatile sig_atomic_t *stop) {
    stts_error err;
    if (ingest_frontend_pump(fe, r, stop, &err) != STTS_OK) {
        fprintf(stderr, "stream-tts: %s\n", err.msg);
        return 1;
    }
    return 0;
}

static char *read_all_stdin(size_t cap) {
    char *buf = malloc(cap + 1);
    size_t n = 0;
    if (!buf) return NULL;
    for (;;) {
        ssize_t k = read(0, buf + n, cap - n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        n += (size_t)k;
        if (n == cap) break;
    }
    buf[n] = '\0';
    return buf;
}

int frontend_drive(const frontend_opts *o, ingest_sentence_fn fn, void *user, volatile sig_atomic_t *stop) {
    ingest_params p = o->ingest;
    p.text.notice_lang = o->notice_lang;
    p.transcript = o->transcript || o->follow || o->hook;
    ingest_frontend *fe = NULL;
    stts_error err;
    if (ingest_frontend_new(&p, fn, warn_stderr, user, &fe, &err) != STTS_OK) {
        fprintf(stderr, "stream-tts: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    if (o->transcript || o->hook) {
        char *path = NULL;
        if (o->hook) {
            char *payload = read_all_stdin((size_t)1 << 20);
            if (!payload || ingest_hook_transcript_path(payload, strlen(payload), &path, &err) != STTS_OK) {
                if (!payload) snprintf(err.msg, sizeof err.msg, "out of memory reading the hook payload");
                fprintf(stderr, "stream-tts: %s\n", err.msg);
                rc = 1;
            }
            free(payload);
        }
        if (rc == 0 && ingest_transcript_last_turn(fe, path ? path : o->transcript, &err) != STTS_OK) {
            fprintf(stderr, "stream-tts: %s\n", err.msg);
            rc = 1;
        }
        free(path);
    } else {
        ingest_reader *r = NULL;
        int fd = 0;
        if (o->reader) {
            rc = pump(o->reader, fe, stop);   /* the caller owns it */
        } else if (o->follow) {
            if (ingest_reader_follow(o->follow, 1, o->max_line, &r, &err) != STTS_OK) {
                fprintf(stderr, "stream-tts: %s\n", err.msg);
                rc = 1;
            } else {
                /* What the file holds already is remembered as said, not
                 * spoken: a resumed session writes its messages again, and
                 * a truncated or replaced file is read again from its start. */
                if (ingest_transcript_record(fe, o->follow, ingest_reader_follow_offset(r), &err) != STTS_OK)
                    fprintf(stderr, "stream-tts: warning: %s; its earlier turns may be spoken again if written "
                                    "again\n", err.msg);
                /* Ready: what is appended from now on is spoken (tests wait on this line). */
                fprintf(stderr, "stream-tts: following %s from its end\n", o->follow);
            }
        } else {
            if (o->input && strcmp(o->input, "-") != 0) {
                fd = open(o->input, O_RDONLY);
                struct stat sb;
                if (fd < 0) {
                    fprintf(stderr, "stream-tts: cannot open input '%s': %s\n", o->input, strerror(errno));
                    rc = 1;
                } else if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
                    /* read() said "cannot read input: Is a directory", naming no file */
                    fprintf(stderr, "stream-tts: cannot read input '%s': it is a directory; give a file of "
                                    "stream-json lines\n", o->input);
                    rc = 1;
                }
            }
            if (rc == 0 && ingest_reader_new(fd, o->max_line, &r, &err) != STTS_OK) {
                fprintf(stderr, "stream-tts: %s\n", err.msg);
                rc = 1;
            }
        }
        if (rc == 0 && r) rc = pump(r, fe, stop);
        ingest_reader_free(r);
        if (fd > 0) close(fd);
    }
    if (o->stats) print_stats(fe);
    ingest_frontend_free(fe);
    return rc;
}
