/* jtalk.c - the Open JTalk backend, in-process: the naist-jdic dictionary
 * (plus the reading dictionaries) and one HTS voice are loaded once; each
 * utterance runs the front end the way the open_jtalk program does
 * (text2mecab, mecab, mecab2njd, the NJD passes, njd2jpcommon, labels),
 * then HTS engine's state and parameter generation, and then our own
 * vocoder loop: HTS_GStreamSet_create vocodes the whole utterance into one
 * buffer, so we call HTS engine's frame vocoder (HTS_Vocoder_synthesize,
 * declared in HTS_hidden.h from the same htsengine source version) once per
 * frame and hand each frame's samples out at once. The samples are the ones
 * HTS_Engine_synthesize_from_strings would have made (tests compare). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef STTS_HAVE_OPENJTALK
/* Order matters: njd.h before the passes that use NJD, and mecab.h before
 * HTS_hidden.h, which #defines names mecab.h uses for parameters. */
#include <mecab.h>
#include <njd.h>
#include <jpcommon.h>
#include <mecab2njd.h>
#include <njd2jpcommon.h>
#include <njd_set_accent_phrase.h>
#include <njd_set_accent_type.h>
#include <njd_set_digit.h>
#include <njd_set_long_vowel.h>
#include <njd_set_pronunciation.h>
#include <njd_set_unvoiced_vowel.h>
#include <text2mecab.h>
#include <HTS_engine.h>
#include <HTS_hidden.h>
#endif

#include "tts/tts_internal.h"

/* ---- voice files: lookup and listing (built with or without Open JTalk) -- */

#ifdef STTS_HAVE_OPENJTALK  /* only the in-process voice loads files */
static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Why p is not a file to read: "not found" said of a directory or a FIFO
 * sent the user looking for a file that is there. */
static const char *not_file_why(const char *p) {
    struct stat st;
    if (stat(p, &st) != 0) return "not found";
    if (S_ISDIR(st.st_mode)) return "is a directory, not a file";
    return "is not a regular file (a FIFO or a device)";
}

static stts_status find_voice(const char *name, char *path, size_t size, stts_error *err) {
    if (!name || !*name) name = "mei_normal";
    if (strchr(name, '/') || (strlen(name) > 9 && strcmp(name + strlen(name) - 9, ".htsvoice") == 0)) {
        if (!is_file(name))   /* with what to do, as for a voice name */
            return stts_error_set(err, STTS_ERR_NOT_FOUND,
                                  "voice file '%s' %s (give an .htsvoice file, or a voice name: `stream-tts voices` "
                                  "lists them; scripts/fetch-assets installs them)",
                                  name, not_file_why(name));
        snprintf(path, size, "%s", name);
        return STTS_OK;
    }
    char dirs[4096];
    tts_voice_dirs(dirs, sizeof dirs);
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        int n = snprintf(path, size, "%s/%s.htsvoice", d, name);
        if (n > 0 && (size_t)n < size && is_file(path)) return STTS_OK;
    }
    tts_voice_dirs(dirs, sizeof dirs);
    return stts_error_set(err, STTS_ERR_NOT_FOUND,
                          "Open JTalk voice '%s' not found in %s; run scripts/fetch-assets or pass a .htsvoice path",
                          name, dirs);
}
#endif

static stts_status jtalk_list(tts_voice_fn fn, void *user, int *stopped, stts_error *err) {
    (void)err;
    /* A name found in an earlier directory hides later ones, as in lookup. */
    char seen[64][128];
    int nseen = 0;
    char dirs[4096];
    tts_voice_dirs(dirs, sizeof dirs);
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d && !*stopped; d = strtok_r(NULL, ":", &save)) {
        struct dirent **names = NULL;
        int n = scandir(d, &names, NULL, alphasort);
        for (int i = 0; i < n; i++) {
            const char *f = names[i]->d_name;
            size_t l = strlen(f);
            if (!*stopped && l > 9 && strcmp(f + l - 9, ".htsvoice") == 0) {
                char name[128], path[4096];
                snprintf(name, sizeof name, "%.*s", (int)(l - 9 < 120 ? l - 9 : 120), f);
                snprintf(path, sizeof path, "%.2000s/%.1000s", d, f);
                int dup = 0;
                for (int k = 0; k < nseen; k++) dup |= strcmp(seen[k], name) == 0;
                if (!dup) {
                    if (nseen < 64) snprintf(seen[nseen++], sizeof seen[0], "%s", name);
                    tts_voice_info v = {TTS_BACKEND_OPENJTALK, "jpn_Jpan", name, path};
                    if (fn(user, &v)) *stopped = 1;
                }
            }
            free(names[i]);
        }
        free(names);
    }
    return STTS_OK;
}

#ifdef STTS_HAVE_OPENJTALK

#ifdef STTS_NAIST_JDIC_DIR
#define DEFAULT_DICT_DIR STTS_NAIST_JDIC_DIR
#else
#define DEFAULT_DICT_DIR "/var/lib/mecab/dic/open-jtalk/naist-jdic"
#endif
/* Pieces of text analysed at once: bounds the front end's work and the
 * utterance MLPG runs over; cut at sentence/clause marks first. */
#define PIECE_MAX 600

typedef struct {
    Mecab mecab;
    NJD njd;
    JPCommon jpc;
    HTS_Engine engine;
    int engine_loaded;
    size_t fperiod;
    double *raw;     /* one frame of vocoder output */
    int16_t *pcm;    /* the same frame as int16 */
    double *spec;
    double *lpf;
    char *buf;       /* text2mecab output, grown as needed */
    size_t buf_cap;
    int by_pause;    /* params.low_latency: one HTS pass per breath group */
} jtalk;

static void jtalk_close(void *impl) {
    jtalk *j = impl;
    if (!j) return;
    Mecab_clear(&j->mecab);
    NJD_clear(&j->njd);
    JPCommon_clear(&j->jpc);
    if (j->engine_loaded) HTS_Engine_clear(&j->engine);
    free(j->raw);
    free(j->pcm);
    free(j->spec);
    free(j->lpf);
    free(j->buf);
    free(j);
}

/* ---- dictionaries ------------------------------------------------------ */

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcasecmp(s + n - m, suf) == 0;
}

static int cache_dir(char *out, size_t size) {
    const char *x = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    int n;
    if (x && *x) n = snprintf(out, size, "%s/stream-tts", x);
    else if (home && *home) n = snprintf(out, size, "%s/.cache/stream-tts", home);
    else n = snprintf(out, size, "/tmp/stream-tts-%ld", (long)getuid());
    if (n < 0 || (size_t)n >= size) return -1;
    /* mkdir -p for the last two levels is enough for these paths. */
    char parent[1024];
    snprintf(parent, sizeof parent, "%s", out);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) { *slash = '\0'; mkdir(parent, 0755); }
    if (mkdir(out, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

/* FNV-1a over the CSV bytes and the system dictionary path: the cache key. */
static int hash_file(const char *path, const char *salt, uint64_t *h) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    uint64_t x = 1469598103934665603ULL;
    unsigned char b[8192];
    size_t n;
    while ((n = fread(b, 1, sizeof b, f)) > 0)
        for (size_t i = 0; i < n; i++) { x ^= b[i]; x *= 1099511628211ULL; }
    fclose(f);
    for (const char *s = salt; *s; s++) { x ^= (unsigned char)*s; x *= 1099511628211ULL; }
    *h = x;
    return 0;
}

/* Appends s[0..n) to f with ASCII made full-width, as text2mecab will make
 * the text it looks up. */
static void put_fullwidth(FILE *f, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ') fputs("\xE3\x80\x80", f);
        else if (c >= 0x21 && c <= 0x7E) {
            char u[4];
            size_t k = stts_utf8_encode(0xFF01 + (c - 0x21), u);
            fwrite(u, 1, k, f);
        } else fputc(c, f);
    }
}

/* Morae of a katakana reading, or -1 if it is not all katakana. */
static int katakana_morae(const char *s) {
    int m = 0;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = stts_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (k == 0 || !((cp >= 0x30A1 && cp <= 0x30FA) || cp == 0x30FC)) return -1;
        /* small ァィゥェォャュョヮ join the mora before them */
        if (!(cp == 0x30A1 || cp == 0x30A3 || cp == 0x30A5 || cp == 0x30A7 || cp == 0x30A9 || cp == 0x30E3 ||
              cp == 0x30E5 || cp == 0x30E7 || cp == 0x30EE))
            m++;
        i += k;
    }
    return m;
}

/* Users write ASCII surfaces and may use the short form
 * "surface,katakana[,accent]"; this rewrites their file into what
 * mecab-dict-index takes (full naist-jdic lines, full-width surfaces). */
static long count_lines(const char *dicdir, const char *name) {
    char p[1200];
    snprintf(p, sizeof p, "%.1000s/%s", dicdir, name);
    FILE *f = fopen(p, "r");
    if (!f) return -1;
    long n = 0;
    int c;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

static int parse_id(const char *s, long max, long *v) {
    char *end;
    *v = strtol(s, &end, 10);
    return *s && *end == '\0' && *v >= 0 && (max < 0 || *v < max);
}

static stts_status normalize_user_csv(const char *dicdir, const char *csv, const char *out, stts_error *err) {
    /* mecab-dict-index does not check context ids against the system
     * dictionary when building a user dictionary, and a bad id later reads
     * outside the connection matrix: check them here. */
    long nleft = count_lines(dicdir, "left-id.def"), nright = count_lines(dicdir, "right-id.def");
    FILE *in = fopen(csv, "r");
    if (!in) return stts_error_set(err, STTS_ERR_IO, "cannot read user dictionary '%s': %s", csv, strerror(errno));
    FILE *o = fopen(out, "w");
    if (!o) { fclose(in); return stts_error_set(err, STTS_ERR_IO, "cannot write '%s': %s", out, strerror(errno)); }
    char line[4096];
    int lineno = 0, entries = 0;
    stts_status st = STTS_OK;
    while (st == STTS_OK && fgets(line, sizeof line, in)) {
        lineno++;
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r')) line[--l] = '\0';
        if (l == 0 || line[0] == '#') continue;
        char *f[32];
        int nf = 0;
        for (char *p = line; nf < 32;) {
            f[nf++] = p;
            char *c = strchr(p, ',');
            if (!c) break;
            *c = '\0';
            p = c + 1;
        }
        if (nf >= 2 && nf <= 3) {
            int m = katakana_morae(f[1]);
            int acc = nf == 3 ? atoi(f[2]) : (m > 3 ? m - 2 : 1);
            if (m <= 0 || acc < 0 || acc > m || !f[0][0]) {
                st = stts_error_set(err, STTS_ERR_FORMAT,
                                    "user dictionary %s line %d: want surface,katakana reading[,accent 0..morae]", csv, lineno);
                break;
            }
            put_fullwidth(o, f[0], strlen(f[0]));
            fputs(",1348,1348,2000,\xE5\x90\x8D\xE8\xA9\x9E,\xE5\x9B\xBA\xE6\x9C\x89\xE5\x90\x8D\xE8\xA9\x9E,"
                  "\xE4\xB8\x80\xE8\x88\xAC,*,*,*,", o);  /* 名詞,固有名詞,一般 */
            put_fullwidth(o, f[0], strlen(f[0]));
            fprintf(o, ",%s,%s,%d/%d,C1\n", f[1], f[1], acc, m);
        } else if (nf >= 13) {
            long lid, rid, cost;
            if (!parse_id(f[1], nleft, &lid) || !parse_id(f[2], nright, &rid) ||
                !(cost = strtol(f[3], NULL, 10), f[3][0] && strspn(f[3], "-0123456789") == strlen(f[3]))) {
                st = stts_error_set(err, STTS_ERR_FORMAT,
                                    "user dictionary %s line %d: left/right context ids must be 0..%ld/0..%ld "
                                    "and the cost a number", csv, lineno, nleft - 1, nright - 1);
                break;
            }
            (void)cost;
            for (int i = 0; i < nf; i++) {
                if (i) fputc(',', o);
                if (i == 0 || i == 10) put_fullwidth(o, f[i], strlen(f[i]));
                else fputs(f[i], o);
            }
            fputc('\n', o);
        } else {
            st = stts_error_set(err, STTS_ERR_FORMAT,
                                "user dictionary %s line %d: %d fields; want surface,katakana[,accent] or a "
                                "naist-jdic line (15 fields)", csv, lineno, nf);
            break;
        }
        entries++;
    }
    fclose(in);
    if (fclose(o) != 0 && st == STTS_OK) st = stts_error_set(err, STTS_ERR_IO, "cannot write '%s'", out);
    if (st == STTS_OK && entries == 0)
        st = stts_error_set(err, STTS_ERR_FORMAT, "user dictionary %s has no entries", csv);
    return st;
}

/* Compiles a naist-jdic format CSV into a mecab user dictionary with
 * mecab's own dictionary compiler (in libmecab). The compiler exits the
 * process on bad input, so it runs in a forked child; its messages go to a
 * log whose last line becomes our error. */
static stts_status compile_csv(const char *dicdir, const char *csv, char *out, size_t size,
                               stts_error *err) {
    char dir[1024], tmp[1400], log[1400];
    uint64_t h;
    if (!file_exists(csv))
        return stts_error_set(err, STTS_ERR_NOT_FOUND, "user dictionary '%s' %s", csv, not_file_why(csv));
    if (hash_file(csv, dicdir, &h) != 0)
        return stts_error_set(err, STTS_ERR_IO, "cannot read user dictionary '%s': %s", csv, strerror(errno));
    if (cache_dir(dir, sizeof dir) != 0)
        return stts_error_set(err, STTS_ERR_IO, "cannot create a cache directory for compiled user dictionaries (set XDG_CACHE_HOME)");
    int n = snprintf(out, size, "%s/userdic-%016llx.dic", dir, (unsigned long long)h);
    if (n < 0 || (size_t)n >= size)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "cache path too long for '%s'", csv);
    if (file_exists(out)) return STTS_OK;
    char norm[1400];
    snprintf(tmp, sizeof tmp, "%.1150s.%ld.tmp", out, (long)getpid());
    snprintf(log, sizeof log, "%.1150s.%ld.log", out, (long)getpid());
    snprintf(norm, sizeof norm, "%.1150s.%ld.csv", out, (long)getpid());
    stts_status nst = normalize_user_csv(dicdir, csv, norm, err);
    if (nst != STTS_OK) { unlink(norm); return nst; }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return stts_error_set(err, STTS_ERR_INTERNAL, "fork failed compiling '%s': %s", csv, strerror(errno));
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); close(fd); }
        char *argv[] = {"mecab-dict-index", "-d", (char *)dicdir, "-u", tmp, "-f", "utf-8",
                        "-t", "utf-8", norm, NULL};
        _exit(mecab_dict_index(10, argv) == 0 ? 0 : 1);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !file_exists(tmp)) {
        char last[300] = "", line[300];
        FILE *f = fopen(log, "r");
        if (f) {
            while (fgets(line, sizeof line, f))
                if (line[0] != '\n' && strncmp(line, "reading", 7) != 0 && strncmp(line, "emitting", 8) != 0)
                    snprintf(last, sizeof last, "%s", line);
            fclose(f);
        }
        size_t l = strlen(last);
        while (l && (last[l - 1] == '\n' || last[l - 1] == '\r')) last[--l] = '\0';
        unlink(log);
        unlink(tmp);
        unlink(norm);
        return stts_error_set(err, STTS_ERR_FORMAT,
                              "user dictionary '%s' did not compile (%s); each line must be naist-jdic CSV: "
                              "surface,left-id,right-id,cost,POS,...,reading,pronunciation,accent/morae,chain-rule",
                              csv, l ? last : "mecab-dict-index failed");
    }
    unlink(log);
    unlink(norm);
    if (rename(tmp, out) != 0) {
        unlink(tmp);
        return stts_error_set(err, STTS_ERR_IO, "cannot store compiled dictionary '%s': %s", out, strerror(errno));
    }
    return STTS_OK;
}

/* Builds the comma-separated -u list: the built-in terms dictionary, then
 * the user's files (.csv compiled, anything else used as a compiled .dic). */
static stts_status user_dict_list(const tts_params *p, const char *dicdir, char **out, stts_error *err) {
    size_t cap = 4096, len = 0;
    char *list = calloc(1, cap);
    if (!list) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
#ifdef STTS_BUILTIN_DICT
    if (p->builtin_dict) {
        /* An installed copy's own dictionary first, then the build tree's. */
        char inst[1200] = "";
        if (stts_data_dir(inst, sizeof inst - 24, NULL) == STTS_OK) strcat(inst, "/dict/stts-terms.dic");
        const char *dict = inst[0] && file_exists(inst) ? inst : STTS_BUILTIN_DICT;
        if (!file_exists(dict)) {
            free(list);
            return stts_error_set(err, STTS_ERR_NOT_FOUND,
                                  "the built-in reading dictionary is missing (%s%s%s); reinstall or rebuild stream-tts "
                                  "(target stts_user_dict) or pass builtin_dict=0 / --no-builtin-dict",
                                  inst[0] ? inst : "", inst[0] ? ", " : "", STTS_BUILTIN_DICT);
        }
        len = (size_t)snprintf(list, cap, "%s", dict);
    }
#endif
    if (p->user_dict && *p->user_dict) {
        char *copy = strdup(p->user_dict);
        if (!copy) { free(list); return stts_error_set(err, STTS_ERR_NOMEM, "out of memory"); }
        char *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            char path[1200];
            if (ends_with(tok, ".csv")) {
                stts_status st = compile_csv(dicdir, tok, path, sizeof path, err);
                if (st != STTS_OK) { free(copy); free(list); return st; }
            } else {
                if (!file_exists(tok)) {
                    stts_error_set(err, STTS_ERR_NOT_FOUND, "user dictionary '%s' %s", tok, not_file_why(tok));
                    free(copy); free(list);
                    return STTS_ERR_NOT_FOUND;
                }
                snprintf(path, sizeof path, "%s", tok);
            }
            size_t need = len + strlen(path) + 2;
            if (need > cap) {
                char *g = realloc(list, need * 2);
                if (!g) { free(copy); free(list); return stts_error_set(err, STTS_ERR_NOMEM, "out of memory"); }
                list = g; cap = need * 2;
            }
            len += (size_t)snprintf(list + len, cap - len, "%s%s", len ? "," : "", path);
        }
        free(copy);
    }
    *out = list;
    return STTS_OK;
}

/* MeCab's error is a trace of its source lines ("viterbi.cpp(50) [...]
 * dictionary.cpp(94) [...] dictionary file is broken: /x/sys.dic"): the
 * cause is what follows the last "] ". */
static const char *mecab_cause(const char *why) {
    const char *c = strrchr(why, ']');
    return c && c[1] == ' ' && c[2] ? c + 2 : why;
}

static stts_status load_mecab(jtalk *j, const tts_params *p, stts_error *err) {
    const char *dicdir = p->dict_dir && *p->dict_dir ? p->dict_dir : DEFAULT_DICT_DIR;
    /* what to do: the main command has no --dict-dir, `say` has */
    const char *fix = p->dict_dir && *p->dict_dir
                          ? "give --dict-dir the naist-jdic folder that holds sys.dic, or install Debian's "
                            "open-jtalk-mecab-naist-jdic (scripts/install-deps)"
                          : "install (or reinstall) Debian's open-jtalk-mecab-naist-jdic (scripts/install-deps)";
    char sysdic[1200];
    snprintf(sysdic, sizeof sysdic, "%s/sys.dic", dicdir);
    if (!file_exists(sysdic))
        return stts_error_set(err, STTS_ERR_NOT_FOUND, "Open JTalk dictionary not found in %s (no sys.dic): %s",
                              dicdir, fix);
    /* A file of the dictionary missing or empty: MeCab said "no such file or
     * directory" of an empty one, or gave no reason at all (char.bin). */
    static const char *const parts[] = {"sys.dic", "unk.dic", "matrix.bin", "char.bin"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        char f[1200];
        struct stat fst;
        snprintf(f, sizeof f, "%s/%s", dicdir, parts[i]);
        int there = stat(f, &fst) == 0 && S_ISREG(fst.st_mode);
        if (!there || fst.st_size == 0)
            return stts_error_set(err, STTS_ERR_FORMAT,
                                  "the Open JTalk dictionary in %s is incomplete: %s is %s; %s", dicdir, parts[i],
                                  there ? "empty" : "missing", fix);
    }
    char *users = NULL;
    stts_status st = user_dict_list(p, dicdir, &users, err);
    if (st != STTS_OK) return st;
    /* an empty compiled user dictionary: MeCab calls it "no such file" */
    for (const char *u = users; *u;) {
        size_t len = strcspn(u, ",");
        char f[1200];
        struct stat fst;
        snprintf(f, sizeof f, "%.*s", (int)(len < sizeof f ? len : sizeof f - 1), u);
        if (stat(f, &fst) == 0 && S_ISREG(fst.st_mode) && fst.st_size == 0) {
            stts_error_set(err, STTS_ERR_FORMAT,
                           "user dictionary %s is empty (compile it again with mecab-dict-index, or give the .csv "
                           "it was made from)", f);
            free(users);
            return STTS_ERR_FORMAT;
        }
        u += len;
        if (*u == ',') u++;
    }
    char *argv[5] = {"mecab", "-d", (char *)dicdir, NULL, NULL};
    int argc = 3;
    if (users[0]) { argv[3] = "-u"; argv[4] = users; argc = 5; }
    mecab_model_t *model = mecab_model_new(argc, argv);
    if (!model) {
        const char *why = mecab_strerror(NULL);
        char cause[600];
        snprintf(cause, sizeof cause, "%s", why ? mecab_cause(why) : "mecab failed");
        for (size_t k = strlen(cause); k > 0 && cause[k - 1] == ' '; k--) cause[k - 1] = '\0';
        /* a file of the system dictionary, or a user dictionary: different fixes */
        int in_sys = strstr(cause, dicdir) != NULL;
        stts_error_set(err, STTS_ERR_FORMAT, "cannot load the Open JTalk dictionary %s%s%s: %s; %s", dicdir,
                       users[0] ? " with user dictionaries " : "", users, cause,
                       in_sys ? fix : "rebuild or leave out the user dictionary it names");
        free(users);
        return STTS_ERR_FORMAT;
    }
    free(users);
    mecab_t *tagger = mecab_model_new_tagger(model);
    mecab_lattice_t *lattice = tagger ? mecab_model_new_lattice(model) : NULL;
    if (!tagger || !lattice) {
        if (tagger) mecab_destroy(tagger);
        mecab_model_destroy(model);
        return stts_error_set(err, STTS_ERR_INTERNAL, "mecab could not create a tagger for %s", dicdir);
    }
    /* Mecab_analysis/Mecab_clear use these as the C++ objects they are. */
    j->mecab.model = model;
    j->mecab.tagger = tagger;
    j->mecab.lattice = lattice;
    return STTS_OK;
}

/* ---- voice ------------------------------------------------------------- */

/* HTS engine loads a voice whose end is missing: a [POSITION] range past
 * the end of the file leaves that model out without a word (a cut GV tree
 * loaded and spoke differently), so a download cut short passed for a
 * voice. The header's ranges ("KEY:start-end[,start-end...]", offsets into
 * the data after the "[DATA]" line) are checked against the file size
 * first. A file whose header cannot be read this way is left to HTS engine
 * (which refuses garbage). */
static stts_status check_voice_complete(const char *path, stts_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return STTS_OK;   /* HTS engine's load says why */
    char line[4096];
    int in_position = 0, found_data = 0;
    unsigned long long max_end = 0;
    long data_at = -1;
    for (int lines = 0; lines < 10000 && fgets(line, sizeof line, f); lines++) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '[') {
            in_position = strcmp(line, "[POSITION]") == 0;
            if (strcmp(line, "[DATA]") == 0) {
                found_data = 1;
                data_at = ftell(f);
                break;
            }
            continue;
        }
        const char *colon = in_position ? strchr(line, ':') : NULL;
        /* every number after the colon (starts and ends): the largest is an end */
        for (const char *q = colon ? colon + 1 : ""; *q;) {
            if (*q >= '0' && *q <= '9') {
                unsigned long long v = strtoull(q, (char **)&q, 10);
                if (v > max_end) max_end = v;
            } else {
                q++;
            }
        }
    }
    struct stat st;
    int ok = fstat(fileno(f), &st) == 0;
    fclose(f);
    /* Said here rather than by HTS engine, which gives no reason (and leaks
     * on that path): an empty file, or one without the [DATA] line every
     * voice has. */
    if (ok && st.st_size == 0)
        return stts_error_set(err, STTS_ERR_FORMAT,
                              "cannot load HTS voice %s: the file is empty (an interrupted download?); re-fetch it "
                              "with scripts/fetch-assets",
                              path);
    if (ok && !found_data)
        return stts_error_set(err, STTS_ERR_FORMAT,
                              "cannot load HTS voice %s: not a valid .htsvoice file (no [DATA] line); re-fetch it "
                              "with scripts/fetch-assets",
                              path);
    if (!found_data || data_at < 0 || !ok || max_end == 0) return STTS_OK;
    unsigned long long have = (unsigned long long)st.st_size - (unsigned long long)data_at;
    if (max_end + 1 > have)
        return stts_error_set(err, STTS_ERR_FORMAT,
                              "cannot load HTS voice %s: the file is truncated (its header places data up to byte "
                              "%llu after [DATA], the file holds %llu: an interrupted download or copy?); re-fetch "
                              "it with scripts/fetch-assets",
                              path, max_end + 1, have);
    return STTS_OK;
}

static stts_status load_voice(jtalk *j, const tts_params *p, tts_opened *o, stts_error *err) {
    char path[1024];
    stts_status st = find_voice(p->voice, path, sizeof path, err);
    if (st != STTS_OK) return st;
    if ((st = check_voice_complete(path, err)) != STTS_OK) return st;
    /* HTS engine prints its own complaints on stderr and returns FALSE; a
     * truncated or foreign file must not get further than here. */
    HTS_Engine_initialize(&j->engine);
    j->engine_loaded = 1;
    char *voices[1] = {path};
    if (HTS_Engine_load(&j->engine, voices, 1) != TRUE)
        return stts_error_set(err, STTS_ERR_FORMAT,
                              "cannot load HTS voice %s: not a valid .htsvoice file (re-fetch it with scripts/fetch-assets)", path);
    const char *fmt = HTS_Engine_get_fullcontext_label_format(&j->engine);
    if (!fmt || strcmp(fmt, "HTS_TTS_JPN") != 0)
        return stts_error_set(err, STTS_ERR_UNSUPPORTED,
                              "HTS voice %s is for label format '%s', not Open JTalk's HTS_TTS_JPN", path,
                              fmt ? fmt : "?");
    if (HTS_Engine_get_nstream(&j->engine) < 2 || HTS_Engine_get_nstream(&j->engine) > 3)
        return stts_error_set(err, STTS_ERR_UNSUPPORTED, "HTS voice %s has %zu streams; expected 2 or 3", path,
                              HTS_Engine_get_nstream(&j->engine));
    if (p->speed != 1.0) HTS_Engine_set_speed(&j->engine, p->speed);
    if (p->pitch != 0.0) HTS_Engine_add_half_tone(&j->engine, p->pitch);
    if (p->volume_db != 0.0) HTS_Engine_set_volume(&j->engine, p->volume_db);
    j->fperiod = HTS_Engine_get_fperiod(&j->engine);
    o->rate = (int)HTS_Engine_get_sampling_frequency(&j->engine);
    if (j->fperiod == 0 || j->fperiod > 100000 || o->rate < 8000 || o->rate > 192000)
        return stts_error_set(err, STTS_ERR_FORMAT, "HTS voice %s has frame period %zu and rate %d; not usable",
                              path, j->fperiod, o->rate);
    const char *base = strrchr(path, '/');
    snprintf(o->voice, sizeof o->voice, "%.200s", base ? base + 1 : path);
    char *dot = strrchr(o->voice, '.');
    if (dot && strcmp(dot, ".htsvoice") == 0) *dot = '\0';
    j->raw = calloc(j->fperiod, sizeof *j->raw);
    j->pcm = calloc(j->fperiod, sizeof *j->pcm);
    if (!j->raw || !j->pcm) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    return STTS_OK;
}

/* ---- front end ---------------------------------------------------------- */

static void frontend_refresh(jtalk *j) {
    JPCommon_refresh(&j->jpc);
    NJD_refresh(&j->njd);
    Mecab_refresh(&j->mecab);
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Version numbers: Open JTalk reads "1.2.3" as "1.2" then "3" and "v1.2"
 * as the letter v. We write "v1.2.3" as バージョン1点2点3 (njd_set_digit
 * then reads each part as a number: いってんにてんさん); plain decimals
 * such as 3.12 are left to Open JTalk. out must hold 6 * len + 1 bytes
 * (each '.' becomes 3 bytes, each "v" 15). Returns the new length. */
static size_t normalize_versions(const char *in, size_t len, char *out) {
    static const char ver[] = "\xE3\x83\x90\xE3\x83\xBC\xE3\x82\xB8\xE3\x83\xA7\xE3\x83\xB3"; /* バージョン */
    static const char ten[] = "\xE7\x82\xB9";                                                      /* 点 */
    size_t w = 0;
    for (size_t i = 0; i < len;) {
        int vprefix = (in[i] == 'v' || in[i] == 'V') && (i == 0 || !((in[i - 1] | 0x20) >= 'a' && (in[i - 1] | 0x20) <= 'z')) &&
                      i + 1 < len && is_digit(in[i + 1]);
        size_t start = vprefix ? i + 1 : i;
        if (is_digit(in[start]) && (start == 0 || !is_digit(in[start - 1])) && (vprefix || start == i)) {
            /* Scan digits(.digits)* and count the dots. */
            size_t k = start, dots = 0;
            while (k < len && is_digit(in[k])) k++;
            while (k + 1 < len && in[k] == '.' && is_digit(in[k + 1])) {
                dots++;
                k++;
                while (k < len && is_digit(in[k])) k++;
            }
            if ((vprefix && dots >= 1) || dots >= 2) {
                if (vprefix) { memcpy(out + w, ver, sizeof ver - 1); w += sizeof ver - 1; }
                for (size_t m = start; m < k; m++) {
                    if (in[m] == '.') { memcpy(out + w, ten, sizeof ten - 1); w += sizeof ten - 1; }
                    else out[w++] = in[m];
                }
                i = k;
                continue;
            }
        }
        out[w++] = in[i++];
    }
    out[w] = '\0';
    return w;
}

/* tts_words asks: is this camelCase-looking token one dictionary word (a
 * user dictionary's StreamTTS)? mecab analyses it alone: one morpheme with
 * a reading (unknown words have none) means yes. */
static int known_word(void *user, const char *tok, size_t n) {
    jtalk *j = user;
    char plain[128], fw[3 * sizeof plain + 1];
    if (n >= sizeof plain) return 0;
    memcpy(plain, tok, n);
    plain[n] = '\0';
    text2mecab(fw, plain);
    int one = 0;
    if (Mecab_analysis(&j->mecab, fw) == TRUE && Mecab_get_size(&j->mecab) == 1) {
        const char *f = Mecab_get_feature(&j->mecab)[0];
        int commas = 0;
        for (const char *c = f; *c; c++) commas += *c == ',';
        one = commas >= 9;
    }
    Mecab_refresh(&j->mecab);
    return one;
}

/* Analyses piece[0..len): afterwards the JPCommon labels are ready. */
static stts_status frontend(jtalk *j, const char *piece, size_t len, stts_error *err) {
    /* Words may grow the text (TTS_WORDS_CAP), versions 6x more; text2mecab then turns each ASCII byte
     * into a 3-byte full-width character and copies everything else, so
     * 3x of that + 1 always fits. */
    /* identifiers and dates as words first (tts_words) */
    char *words = malloc(TTS_WORDS_CAP(len));
    if (!words) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory for %zu bytes of text", len);
    len = tts_words(piece, len, 1, known_word, j, words);
    size_t nlen = 6 * len + 1;
    size_t need = 3 * nlen + 1 + nlen;
    if (need > j->buf_cap) {
        char *g = realloc(j->buf, need);
        if (!g) { free(words); return stts_error_set(err, STTS_ERR_NOMEM, "out of memory for %zu bytes of text", len); }
        j->buf = g;
        j->buf_cap = need;
    }
    char *in = j->buf + 3 * nlen + 1;
    normalize_versions(words, len, in);
    free(words);
    text2mecab(j->buf, in);
    if (j->buf[0] == '\0') return STTS_OK;
    if (Mecab_analysis(&j->mecab, j->buf) != TRUE)
        return stts_error_set(err, STTS_ERR_INTERNAL, "mecab failed on the text \"%.60s\"", in);
    mecab2njd(&j->njd, Mecab_get_feature(&j->mecab), Mecab_get_size(&j->mecab));
    njd_set_pronunciation(&j->njd);
    njd_set_digit(&j->njd);
    njd_set_accent_phrase(&j->njd);
    njd_set_accent_type(&j->njd);
    njd_set_unvoiced_vowel(&j->njd);
    njd_set_long_vowel(&j->njd);
    njd2jpcommon(&j->jpc, &j->njd);
    JPCommon_make_label(&j->jpc);
    return STTS_OK;
}

/* ---- streaming vocoder -------------------------------------------------- */

static double frame_param(HTS_PStreamSet *pss, size_t s, size_t frame, size_t *msd_index, size_t k) {
    if (HTS_PStreamSet_is_msd(pss, s)) {
        if (HTS_PStreamSet_get_msd_flag(pss, s, frame) != TRUE) return HTS_NODATA;
        return HTS_PStreamSet_get_parameter(pss, s, *msd_index, k);
    }
    return HTS_PStreamSet_get_parameter(pss, s, frame, k);
}

/* What HTS_GStreamSet_create does, one frame at a time, with each frame's
 * samples handed out as soon as they exist. */
static stts_status vocode(jtalk *j, tts_out *o, stts_error *err) {
    HTS_Engine *e = &j->engine;
    HTS_PStreamSet *pss = &e->pss;
    size_t nstream = HTS_PStreamSet_get_nstream(pss);
    size_t total = HTS_PStreamSet_get_total_frame(pss);
    size_t mlen = HTS_PStreamSet_get_vector_length(pss, 0);
    size_t nlpf = nstream >= 3 ? HTS_PStreamSet_get_vector_length(pss, 2) : 0;
    if (nstream < 2 || HTS_PStreamSet_get_vector_length(pss, 1) != 1 || mlen < 1 || (nlpf && nlpf % 2 == 0))
        return stts_error_set(err, STTS_ERR_FORMAT, "the HTS voice has an unexpected stream layout");
    double *spec = realloc(j->spec, mlen * sizeof *spec);
    if (!spec) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    j->spec = spec;
    double *lpf = NULL;
    if (nlpf) {
        lpf = realloc(j->lpf, nlpf * sizeof *lpf);
        if (!lpf) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
        j->lpf = lpf;
    }
    const HTS_Condition *c = &e->condition;
    HTS_Vocoder v;
    HTS_Vocoder_initialize(&v, mlen - 1, c->stage, c->use_log_gain, c->sampling_frequency, c->fperiod);
    size_t msd[3] = {0, 0, 0};
    stts_status st = STTS_OK;
    for (size_t i = 0; i < total; i++) {
        for (size_t k = 0; k < mlen; k++) spec[k] = frame_param(pss, 0, i, &msd[0], k);
        double lf0 = frame_param(pss, 1, i, &msd[1], 0);
        for (size_t k = 0; k < nlpf; k++) lpf[k] = frame_param(pss, 2, i, &msd[2], k);
        for (size_t s = 0; s < nstream && s < 3; s++)
            if (HTS_PStreamSet_is_msd(pss, s) && HTS_PStreamSet_get_msd_flag(pss, s, i) == TRUE) msd[s]++;
        HTS_Vocoder_synthesize(&v, mlen - 1, lf0, spec, nlpf, lpf, c->alpha, c->beta, c->volume, j->raw, NULL);
        for (size_t k = 0; k < j->fperiod; k++) {
            double x = j->raw[k];
            j->pcm[k] = x > 32767.0 ? 32767 : x < -32768.0 ? -32768 : (int16_t)x;
        }
        if (tts_out_emit(o, j->pcm, j->fperiod)) { st = tts_out_cancelled(o, err); break; }
    }
    HTS_Vocoder_clear(&v);
    return st;
}

/* Is the centre phoneme of this full-context label a pause? */
static int is_pause(const char *label) {
    const char *m = strchr(label, '-');
    return m && strncmp(m + 1, "pau+", 4) == 0;
}

/* HTS passes over labels[from..to): state durations, parameter generation
 * (MLPG with global variance over the whole span), then the vocoder. */
static stts_status synth_span(jtalk *j, char **labels, size_t from, size_t to, tts_out *o, const char *piece,
                              stts_error *err) {
    if (tts_out_should_stop(o)) return tts_out_cancelled(o, err);
    stts_status st;
    if (HTS_Engine_generate_state_sequence_from_strings(&j->engine, labels + from, to - from) != TRUE ||
        HTS_Engine_generate_parameter_sequence(&j->engine) != TRUE)
        st = stts_error_set(err, STTS_ERR_INTERNAL, "HTS engine could not generate speech for \"%.60s\"", piece);
    else
        st = tts_out_should_stop(o) ? tts_out_cancelled(o, err) : vocode(j, o, err);
    HTS_Engine_refresh(&j->engine);
    return st;
}

static stts_status synth_piece(jtalk *j, const char *piece, size_t len, tts_out *o, int *spoke,
                               stts_error *err) {
    stts_status st = frontend(j, piece, len, err);
    size_t n = st == STTS_OK ? (size_t)JPCommon_get_label_size(&j->jpc) : 0;
    if (st == STTS_OK && n > 2) {
        char **labels = JPCommon_get_label_feature(&j->jpc);
        *spoke = 1;
        if (!j->by_pause) {
            st = synth_span(j, labels, 0, n, o, piece, err);
        } else {
            /* Low latency: the labels keep their whole-sentence context,
             * but each breath group (up to and including a pause) is its
             * own HTS pass, so the first audio waits only for the first
             * group's parameters. The cut is in silence, so the fresh
             * vocoder state of the next pass is inaudible. */
            size_t from = 0;
            for (size_t i = 1; st == STTS_OK && i < n; i++) {
                if (i == n - 1 || (is_pause(labels[i]) && i + 2 < n)) {
                    st = synth_span(j, labels, from, i + 1, o, piece, err);
                    from = i + 1;
                }
            }
        }
    }
    frontend_refresh(j);
    return st;
}

/* Only white space: nothing for the front end (a trailing newline piece). */
static int blank_piece(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return 0;
    return 1;
}

static stts_status jtalk_synthesize(void *impl, const char *text, tts_out *o, stts_error *err) {
    jtalk *j = impl;
    size_t len = strlen(text);
    int spoke = 0;
    for (size_t pos = 0; pos < len;) {
        size_t n = tts_next_piece(text + pos, len - pos, PIECE_MAX);
        if (blank_piece(text + pos, n)) { pos += n; continue; }   /* Open JTalk warns on empty labels */
        stts_status st = synth_piece(j, text + pos, n, o, &spoke, err);
        if (st != STTS_OK) return st;
        pos += n;
    }
    if (!spoke)
        return stts_error_set(err, STTS_ERR_INVALID_ARG, "nothing to say in \"%.60s\" (no readable words)", text);
    return STTS_OK;
}

static stts_status jtalk_labels(void *impl, const char *text, char **out, stts_error *err) {
    jtalk *j = impl;
    size_t len = strlen(text), cap = 1024, used = 0;
    char *res = malloc(cap);
    if (!res) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    res[0] = '\0';
    for (size_t pos = 0; pos < len;) {
        size_t n = tts_next_piece(text + pos, len - pos, PIECE_MAX);
        if (blank_piece(text + pos, n)) { pos += n; continue; }
        stts_status st = frontend(j, text + pos, n, err);
        if (st != STTS_OK) { frontend_refresh(j); free(res); return st; }
        int nl = JPCommon_get_label_size(&j->jpc);
        char **lab = JPCommon_get_label_feature(&j->jpc);
        for (int i = 0; i < nl; i++) {
            size_t l = strlen(lab[i]);
            if (used + l + 2 > cap) {
                size_t nc = (used + l + 2) * 2;
                char *g = realloc(res, nc);
                if (!g) { frontend_refresh(j); free(res); return stts_error_set(err, STTS_ERR_NOMEM, "out of memory"); }
                res = g; cap = nc;
            }
            memcpy(res + used, lab[i], l);
            used += l;
            res[used++] = '\n';
            res[used] = '\0';
        }
        frontend_refresh(j);
        pos += n;
    }
    *out = res;
    return STTS_OK;
}

static stts_status jtalk_set_speed(void *impl, double speed, stts_error *err) {
    (void)err;
    HTS_Engine_set_speed(&((jtalk *)impl)->engine, speed);
    return STTS_OK;
}

static const tts_ops jtalk_ops = {jtalk_synthesize, jtalk_labels, jtalk_close, jtalk_set_speed};

static stts_status jtalk_open(const tts_params *p, tts_opened *o, stts_error *err) {
    jtalk *j = calloc(1, sizeof *j);
    if (!j) return stts_error_set(err, STTS_ERR_NOMEM, "out of memory");
    j->by_pause = p->low_latency;
    Mecab_initialize(&j->mecab);
    NJD_initialize(&j->njd);
    JPCommon_initialize(&j->jpc);
    stts_status st = load_voice(j, p, o, err);
    if (st == STTS_OK) st = load_mecab(j, p, err);
    if (st != STTS_OK) { jtalk_close(j); return st; }
    o->ops = &jtalk_ops;
    o->impl = j;
    return STTS_OK;
}

#else  /* !STTS_HAVE_OPENJTALK */

static stts_status jtalk_open(const tts_params *p, tts_opened *o, stts_error *err) {
    (void)p;
    (void)o;
    return stts_error_set(err, STTS_ERR_UNSUPPORTED,
                          "this stream-tts was built without Open JTalk: run scripts/build-openjtalk and rebuild");
}

#endif

static int jtalk_probe(const tts_params *p) { return strcmp(p->lang, "jpn_Jpan") == 0 ? 2 : 0; }

/* Open JTalk reads Han as Japanese (Chinese comes out in Japanese readings,
 * which the pipeline accepts for a Japanese listener) and Latin letters and
 * words (its dictionary and letter names). */
const tts_backend_desc tts_jtalk_backend = {TTS_BACKEND_OPENJTALK, "openjtalk", "Open JTalk", "jpn_Jpan",
                                            "Hans Hant Latn", jtalk_probe, jtalk_open, jtalk_list};
