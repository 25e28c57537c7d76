/* test_nllb_cli.c - `stream-tts translate` as a user runs it: lines in,
 * one translation per line out in order (an empty line stays empty), --json
 * ids equal to the HF greedy references, --list-languages, and exit status 2
 * with a clear message for bad flags and unknown language codes. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "test.h"

static char exe[1024], model[1024], refpath[1024];
static int g_with_stderr; /* 1: run() captures stderr too */

/* Runs cmd with `input` on stdin; returns the exit status and stdout (malloc'ed). */
static int run_n(const char *args, const char *input, size_t in_len, char **out) {
    char cmd[4096], inpath[] = "/tmp/stts-cli-in-XXXXXX";
    int fd = mkstemp(inpath);
    if (fd < 0) return -1;
    FILE *f = fdopen(fd, "w");
    fwrite(input, 1, in_len, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s translate %s < %s %s", exe, args, inpath, g_with_stderr ? "2>&1" : "2>/dev/null");
    FILE *p = popen(cmd, "r");
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t k;
    while (p && (k = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += k;
        if (n + 1 >= cap) buf = realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    int st = p ? pclose(p) : -1;
    remove(inpath);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int run(const char *args, const char *input, char **out) { return run_n(args, input, strlen(input), out); }

/* A NUL byte inside a line is a space, not the end of the line: the line
 * with NULs translates exactly like the line with spaces there. */
static void test_nul_inside_line(void) {
    const char *spaced = "The cat sat on the mat and looked at the door.\n";
    char nul[128];
    size_t n = strlen(spaced);
    memcpy(nul, spaced, n);
    for (size_t i = 0; i < n; i++)
        if (nul[i] == ' ' && i > 20) nul[i] = '\0';   /* every space after the first few words */
    char args[2200], *a = NULL, *b = NULL;
    snprintf(args, sizeof args, "--model %s --src eng_Latn --tgt jpn_Jpan --json --max-len 24", model);
    CHECK_EQ_INT(run_n(args, spaced, n, &a), 0);
    CHECK_EQ_INT(run_n(args, nul, n, &b), 0);
    /* the ms timing differs; ids, text and src_tokens must not */
    json_t *ja = json_loads(a, 0, NULL), *jb = json_loads(b, 0, NULL);
    CHECK(ja && jb);
    if (ja && jb) {
        CHECK(json_equal(json_object_get(ja, "ids"), json_object_get(jb, "ids")));
        CHECK(json_equal(json_object_get(ja, "src_tokens"), json_object_get(jb, "src_tokens")));
        CHECK(json_integer_value(json_object_get(ja, "src_tokens")) > 8);
    }
    json_decref(ja), json_decref(jb);
    free(a), free(b);
}

static void test_lines_in_order_with_json_ids(void) {
    json_error_t je;
    json_t *ref = json_load_file(refpath, 0, &je);
    CHECK(ref != NULL);
    if (!ref) return;
    json_t *cases = json_object_get(ref, "cases");
    /* three sentences around an empty line */
    const char *t1 = json_string_value(json_object_get(json_array_get(cases, 1), "text"));
    const char *t2 = json_string_value(json_object_get(json_array_get(cases, 4), "text"));
    const char *t3 = json_string_value(json_object_get(json_array_get(cases, 15), "text"));
    char input[2048];
    snprintf(input, sizeof input, "%s\n\n%s\n%s\n", t1, t2, t3);
    char args[2200], *out = NULL;
    /* f32 weights and the full vocabulary reproduce HF exactly */
    snprintf(args, sizeof args, "--model %s --src eng_Latn --tgt jpn_Jpan --json --max-len 24 --weights f32 "
                                "--shortlist none", model);
    CHECK_EQ_INT(run(args, input, &out), 0);
    int idx[4] = {1, -1, 4, 15}, line = 0;
    char *save = NULL;
    for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save), line++) {
        if (line >= 4) break;
        json_t *o = json_loads(l, 0, &je);
        CHECK_MSG(o != NULL, "line %d is not JSON: %s", line, l);
        if (!o) continue;
        json_t *ids = json_object_get(o, "ids");
        if (idx[line] < 0) {
            CHECK_EQ_INT(json_array_size(ids), 0);
            CHECK_EQ_STR(json_string_value(json_object_get(o, "text")), "");
        } else {
            json_t *c = json_array_get(cases, (size_t)idx[line]);
            CHECK(json_equal(ids, json_object_get(c, "greedy_ids")));
            CHECK_EQ_STR(json_string_value(json_object_get(o, "text")),
                         json_string_value(json_object_get(c, "greedy_text")));
        }
        json_decref(o);
    }
    CHECK_EQ_INT(line, 4);
    free(out);
    /* plain text: one line per input line, the empty one kept */
    snprintf(args, sizeof args, "--model %s --src eng_Latn --tgt jpn_Jpan --beam 4 --max-len 24", model);
    CHECK_EQ_INT(run(args, input, &out), 0);
    int nl = 0;
    for (char *c = out; *c; c++) nl += *c == '\n';
    CHECK_EQ_INT(nl, 4);
    free(out);
    json_decref(ref);
}

static void test_flags_and_languages(void) {
    char *out = NULL, args[2200];
    CHECK_EQ_INT(run("--list-languages", "", &out), 0);
    int nl = 0;
    for (char *c = out; *c; c++) nl += *c == '\n';
    CHECK_EQ_INT(nl, 202);
    CHECK(strstr(out, "eng_Latn\n") && strstr(out, "jpn_Jpan\n") && strstr(out, "zul_Latn\n"));
    free(out);
    snprintf(args, sizeof args, "--model %s --src eng_Latn --tgt jpn_Japn", model);
    CHECK_EQ_INT(run(args, "hi\n", &out), 2);
    free(out);
    snprintf(args, sizeof args, "--model %s --src eng_Latn --tgt jpn_Jpan --beam 0", model);
    CHECK_EQ_INT(run(args, "hi\n", &out), 2);
    free(out);
    /* no --model, --src or --tgt: $STREAM_TTS_MODEL and English to
     * Japanese, as the main command (translate once ignored the variable
     * and exited 2) */
    char *with = NULL;
    snprintf(args, sizeof args, "--model %s --src eng_Latn --tgt jpn_Jpan", model);
    CHECK_EQ_INT(run(args, "The weather is nice today.\n", &with), 0);
    setenv("STREAM_TTS_MODEL", model, 1);
    CHECK_EQ_INT(run("", "The weather is nice today.\n", &out), 0);
    CHECK(with && out && strlen(out) > 1 && strcmp(out, with) == 0);
    free(out);
    free(with);
    setenv("STREAM_TTS_MODEL", "/nonexistent-stts-model", 1);
    g_with_stderr = 1;
    CHECK_EQ_INT(run("", "hi\n", &out), 1);
    CHECK(strstr(out, "/nonexistent-stts-model") && strstr(out, "$STREAM_TTS_MODEL"));
    g_with_stderr = 0;
    unsetenv("STREAM_TTS_MODEL");
    free(out);
    CHECK_EQ_INT(run("--frobnicate", "", &out), 2);
    free(out);
    /* "--flag=VALUE" reads as "--flag VALUE" (it was refused as an unknown
     * option on every subcommand but the main one) */
    snprintf(args, sizeof args, "--model=%s --src=eng_Latn --tgt=jpn_Jpan --weights=f32 --max-len=12", model);
    CHECK_EQ_INT(run(args, "The weather is nice today.\n", &out), 0);
    snprintf(args, sizeof args, "--model %s --src eng_Latn --tgt jpn_Jpan --weights f32 --max-len 12", model);
    CHECK_EQ_INT(run(args, "The weather is nice today.\n", &with), 0);
    CHECK(out && with && strlen(out) > 1 && strcmp(out, with) == 0);
    free(out);
    free(with);
    CHECK_EQ_INT(run("--weights=bogus", "", &out), 2);
    free(out);
    CHECK_EQ_INT(run("--model /nonexistent --src eng_Latn --tgt jpn_Jpan", "hi\n", &out), 1);
    free(out);
}

/* A shortlist file holding the ids HF's greedy search chose (plus nothing
 * else but the specials) gives the same greedy ids: the argmax over a subset
 * that contains the full argmax is that argmax. */
static void test_shortlist_file_and_weight_flags(void) {
    json_error_t je;
    json_t *ref = json_load_file(refpath, 0, &je);
    CHECK(ref != NULL);
    if (!ref) return;
    json_t *c = json_array_get(json_object_get(ref, "cases"), 4);
    json_t *gids = json_object_get(c, "greedy_ids");
    char slpath[] = "/tmp/stts-sl-XXXXXX";
    int fd = mkstemp(slpath);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# ids of one HF greedy output\n");
    for (size_t i = 0; i < json_array_size(gids); i++)
        fprintf(f, "%lld\n", (long long)json_integer_value(json_array_get(gids, i)));
    fclose(f);
    char args[2400], *out = NULL, input[1024];
    snprintf(input, sizeof input, "%s\n", json_string_value(json_object_get(c, "text")));
    snprintf(args, sizeof args, "--model %s --src eng_Latn --tgt jpn_Jpan --json --max-len 24 --weights f32 "
                                "--shortlist %s", model, slpath);
    CHECK_EQ_INT(run(args, input, &out), 0);
    json_t *o = json_loads(out, 0, &je);
    CHECK_MSG(o && json_equal(json_object_get(o, "ids"), gids), "shortlisted greedy differs: %s", out);
    json_decref(o);
    free(out);
    /* every weight format and the auto shortlist run (quality: test_nllb_demo) */
    static const char *const fm[] = {"int8", "bf16", "f16", "auto"};
    for (int i = 0; i < 4; i++) {
        snprintf(args, sizeof args, "--model %s --src eng_Latn --tgt jpn_Jpan --max-len 8 --weights %s", model, fm[i]);
        CHECK_EQ_INT(run(args, input, &out), 0);
        CHECK(out[0] != 0);
        free(out);
    }
    /* bad values: exit 2 and a message naming the flag / file and line */
    g_with_stderr = 1;
    static const struct {
        const char *content, *want;
    } bad[] = {{"12\n999999999\n", ":2: token id 999999999 is outside the vocabulary"},
               {"# nothing\n\n", "has no token ids"},
               {"12\nthirteen\n", ":2: \"thirteen\" is not a token id"},
               /* the number as written, not strtol's clamp (9223372036854775807) */
               {"99999999999999999999\n", ":1: token id 99999999999999999999 is outside the vocabulary"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        f = fopen(slpath, "w");
        fputs(bad[i].content, f);
        fclose(f);
        snprintf(args, sizeof args, "--model %s --src eng_Latn --tgt jpn_Jpan --shortlist %s", model, slpath);
        CHECK_EQ_INT(run(args, "hi\n", &out), 2);
        CHECK_MSG(strstr(out, "--shortlist") && strstr(out, slpath) && strstr(out, bad[i].want), "%s", out);
        free(out);
    }
    /* a UTF-8 byte-order mark before the first id (a Windows editor's file,
     * CRLF lines too) was "not a token id" on line 1 */
    f = fopen(slpath, "w");
    fputs("\xEF\xBB\xBF" "5\r\n6\r\n7\r\n", f);
    fclose(f);
    snprintf(args, sizeof args, "--model %s --src eng_Latn --tgt jpn_Jpan --shortlist %s", model, slpath);
    CHECK_EQ_INT(run(args, "hi\n", &out), 0);
    free(out);
    remove(slpath);
    snprintf(args, sizeof args, "--model %s --src eng_Latn --tgt jpn_Jpan --shortlist %s", model, slpath);
    CHECK_EQ_INT(run(args, "hi\n", &out), 2); /* missing file */
    CHECK(strstr(out, slpath) != NULL);
    free(out);
    snprintf(args, sizeof args, "--model %s --src eng_Latn --tgt jpn_Jpan --weights q4", model);
    CHECK_EQ_INT(run(args, "hi\n", &out), 2);
    CHECK(strstr(out, "--weights") != NULL);
    free(out);
    /* A translation stopped by the length limit (no </s>) was cut short
     * without a word; --max-len 1 (the language token alone: an empty
     * line) stays accepted, as before, and says so. */
    snprintf(args, sizeof args, "--model %s --src eng_Latn --tgt jpn_Jpan --max-len 2", model);
    CHECK_EQ_INT(run(args, "The cat sat on the mat and looked at the door.\n", &out), 0);
    CHECK_MSG(strstr(out, "line 1: the translation stopped at --max-len 2 and may be cut short") != NULL, "%s", out);
    free(out);
    snprintf(args, sizeof args, "--model %s --src eng_Latn --tgt jpn_Jpan --max-len 1", model);
    CHECK_EQ_INT(run(args, "hi\n", &out), 0);
    CHECK_MSG(strstr(out, "line 1: the translation stopped at --max-len 1") != NULL, "%s", out);
    free(out);
    snprintf(args, sizeof args, "--model %s --src eng_Latn --tgt jpn_Jpan --device cuda", model);
    CHECK_EQ_INT(run(args, "hi\n", &out), 1);
    CHECK(strstr(out, "CUDA") != NULL);
    /* without a usable GPU, what to run instead (it said only how to rebuild) */
    if (strstr(out, "device cuda: ")) CHECK_MSG(strstr(out, "--device cpu runs on the CPU") != NULL, "%s", out);
    free(out);
    g_with_stderr = 0;
    json_decref(ref);
}

int main(void) {
    struct stat st;
    snprintf(exe, sizeof exe, "%s/tools/stream-tts", STTS_BINARY_DIR);
    snprintf(model, sizeof model, "%s/tests/fixtures/mt/tiny-f32-st", STTS_SOURCE_DIR);
    snprintf(refpath, sizeof refpath, "%s/tests/fixtures/mt/reference-f32.json", STTS_SOURCE_DIR);
    if (stat(exe, &st) != 0) TEST_SKIP_ALL("%s not built", exe);
    if (stat(refpath, &st) != 0) TEST_SKIP_ALL("no fixtures in tests/fixtures/mt");
    TEST_RUN(test_lines_in_order_with_json_ids);
    TEST_RUN(test_flags_and_languages);
    TEST_RUN(test_nul_inside_line);
    TEST_RUN(test_shortlist_file_and_weight_flags);
    return TEST_SUMMARY();
}
