/* test_settings.c - the settings.json merge of `stream-tts install-hooks`
 * against golden files in tests/client/settings/: NAME.before.json merged
 * with command /usr/local/bin/stream-tts must give NAME.after.json byte for
 * byte (the goldens were reviewed by hand); merging the result again
 * changes nothing; uninstalling it gives back the before file's JSON value
 * (ours removed, everything else kept). NAME.bad.json files are refused
 * with a message naming the file and, for syntax errors, the line.
 * STTS_REGEN_GOLDEN=1 rewrites the after files (review the diff!). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stts_client.h"
#include "test.h"

#define DIR STTS_SOURCE_DIR "/tests/client/settings/"
#define CMD "/usr/local/bin/stream-tts"

static const char *k_cases[] = {"empty", "other-keys", "other-hooks", "old-install"};

static client_settings_out merge(const char *name, const char *text, size_t n, int uninstall, stts_status *st) {
    client_settings_in in = {name, text, n, CMD, uninstall};
    client_settings_out out;
    stts_error e;
    *st = client_settings_merge(&in, &out, &e);
    if (*st != STTS_OK) fprintf(stderr, "%s: %s\n", name, e.msg);
    return out;
}

static int count_ours(const char *text) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, "\"" CMD "\"")); p++) n++;
    return n;
}

static void test_golden(void) {
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
        char bp[512], ap[512];
        snprintf(bp, sizeof bp, DIR "%s.before.json", k_cases[i]);
        snprintf(ap, sizeof ap, DIR "%s.after.json", k_cases[i]);
        size_t bn, an;
        char *before = test_read_file(bp, &bn);
        CHECK_MSG(before != NULL, "%s missing", bp);
        if (!before) continue;
        stts_status st;
        client_settings_out o = merge(bp, before, bn, 0, &st);
        CHECK(st == STTS_OK && o.changed);
        CHECK_MSG(o.added == 7, "%s: %d added", k_cases[i], o.added);
        if (st == STTS_OK && getenv("STTS_REGEN_GOLDEN")) {
            /* a run that writes the goldens compares them with themselves:
             * it never counts as a pass (review the diff, then run again) */
            FILE *f = fopen(ap, "w");
            if (f) { fputs(o.text, f); fclose(f); }
            CHECK_MSG(0, "STTS_REGEN_GOLDEN: wrote %s; review it with git diff and run without the variable", ap);
        }
        char *after = test_read_file(ap, &an);
        CHECK_MSG(after && o.text && strcmp(after, o.text) == 0, "%s differs from the golden:\n%s", ap, o.text ? o.text : "");
        CHECK_EQ_INT(count_ours(o.text ? o.text : ""), 7);
        /* Again: nothing to do. */
        client_settings_out o2 = merge(ap, o.text, strlen(o.text ? o.text : ""), 0, &st);
        CHECK(st == STTS_OK && !o2.changed && o2.added == 0 && o2.removed == 0);
        CHECK(o2.text && strcmp(o2.text, o.text) == 0);
        /* Uninstall: the before file's value, less any stream-tts entry it had. */
        client_settings_out u = merge(ap, o.text, strlen(o.text ? o.text : ""), 1, &st);
        CHECK(st == STTS_OK && u.changed && u.removed == 7);
        CHECK_EQ_INT(count_ours(u.text ? u.text : ""), 0);
        json_t *jb = json_loadb(before, bn, 0, NULL), *ju = json_loads(u.text ? u.text : "", 0, NULL);
        if (!jb) jb = json_object();
        if (strcmp(k_cases[i], "old-install") != 0)
            CHECK_MSG(json_equal(jb, ju), "%s: uninstall did not give back the original:\n%s", k_cases[i], u.text);
        else /* the old copies are gone as well; the foreign Stop hook stays */
            CHECK_EQ_STR(u.text, "{\n  \"hooks\": {\n    \"Stop\": [\n      {\n        \"hooks\": [\n          {\n"
                                 "            \"type\": \"command\",\n            \"command\": \"say done\"\n          }\n"
                                 "        ]\n      }\n    ]\n  }\n}\n");
        json_decref(jb);
        json_decref(ju);
        /* Uninstalling where nothing is ours changes nothing. */
        client_settings_out u2 = merge(ap, u.text, strlen(u.text ? u.text : ""), 1, &st);
        CHECK(st == STTS_OK && !u2.changed);
        free(u2.text);
        free(u.text);
        free(o2.text);
        free(o.text);
        free(after);
        free(before);
    }
}

static void test_refused(void) {
    const struct { const char *file, *needle; } bad[] = {
        {"malformed-trailing-comma", "line 4"},
        {"hooks-not-object", "\"hooks\" is not an object"},
        {"event-not-array", "\"Stop\" is not an array"},
        {"duplicate-key", "duplicate"},
        {"not-object", "not an object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char p[512];
        snprintf(p, sizeof p, DIR "%s.bad.json", bad[i].file);
        size_t n;
        char *t = test_read_file(p, &n);
        CHECK_MSG(t != NULL, "%s missing", p);
        client_settings_in in = {p, t, n, CMD, 0};
        client_settings_out o;
        stts_error e;
        CHECK(client_settings_merge(&in, &o, &e) == STTS_ERR_FORMAT);
        CHECK(o.text == NULL);
        CHECK_MSG(strstr(e.msg, p) && strstr(e.msg, bad[i].needle), "%s: %s", bad[i].file, e.msg);
        in.uninstall = 1;
        CHECK(client_settings_merge(&in, &o, &e) == STTS_ERR_FORMAT);
        free(t);
    }
    /* A relative command would need a shell to find it: refused. */
    client_settings_in in = {"x", NULL, 0, "stream-tts", 0};
    client_settings_out o;
    stts_error e;
    CHECK(client_settings_merge(&in, &o, &e) == STTS_ERR_INVALID_ARG);
}

/* Reals keep their short form (jansson alone wrote 0.1 as
 * 0.10000000000000001); integers stay integers; a marker-like string of
 * the user's is left alone. */
static void test_numbers_kept(void) {
    const char *before = "{\"env\": {\"A\": 0.1, \"B\": [1.5, 2.5e-07, 0.30000000000000004, -0.0, 7, 1.0]},"
                         " \"s\": \"\\u0001stts-real-0\\u0001\"}";
    for (int un = 0; un < 2; un++) {
        client_settings_in in = {"numbers.json", before, strlen(before), CMD, un};
        client_settings_out o;
        stts_error e;
        CHECK(client_settings_merge(&in, &o, &e) == STTS_OK);
        CHECK_MSG(o.text && strstr(o.text, "\"A\": 0.1,") && strstr(o.text, "1.5,") && strstr(o.text, "2.5e-07,") &&
                      strstr(o.text, "0.30000000000000004,") && strstr(o.text, "-0.0,") && strstr(o.text, "7,") &&
                      strstr(o.text, "1.0\n") && strstr(o.text, "\"s\": \"\\u0001stts-real-0\\u0001\""),
                  "%s", o.text ? o.text : "(null)");
        json_t *a = json_loads(before, 0, NULL), *b = o.text ? json_loads(o.text, 0, NULL) : NULL;
        if (b && un == 0) json_object_del(b, "hooks");
        CHECK_MSG(a && b && json_equal(a, b), "the values read back the same: %s", o.text ? o.text : "(null)");
        json_decref(a);
        json_decref(b);
        free(o.text);
    }
}

/* Entries of the older Stop-hook mode (`stream-tts --hook`, written by hand
 * for earlier versions) are ours too: install-hooks replaces them and
 * --uninstall removes them (both once kept them: every Stop was sent twice,
 * and after an uninstall the daemon was still started). A compound shell
 * command or another program stays. */
static void test_old_hook_mode_entries(void) {
    const char *before =
        "{\"hooks\": {\"Stop\": ["
        "{\"hooks\": [{\"type\": \"command\", \"command\": \"/usr/local/bin/stream-tts --hook\"}]},"
        "{\"hooks\": [{\"type\": \"command\", \"command\": \"~/.local/bin/stream-tts  --hook --tgt fra_Latn\"}]},"
        "{\"hooks\": [{\"type\": \"command\", \"command\": \"stream-tts\", \"args\": [\"--hook\", \"--voice\", \"x\"]}]},"
        "{\"hooks\": [{\"type\": \"command\", \"command\": \"stream-tts --hook && say done\"}]},"
        "{\"hooks\": [{\"type\": \"command\", \"command\": \"my-stream-tts --hook\"}]},"
        "{\"hooks\": [{\"type\": \"command\", \"command\": \"stream-tts --follow x.jsonl\"}]}"
        "]}}";
    stts_status st;
    client_settings_out o = merge("old-mode", before, strlen(before), 0, &st);
    CHECK(st == STTS_OK && o.changed && o.removed == 3 && o.added == 7);
    const char *t = o.text ? o.text : "";
    CHECK_MSG(!strstr(t, "bin/stream-tts --hook") && !strstr(t, "--voice"), "%s", t);
    CHECK(strstr(t, "stream-tts --hook && say done") && strstr(t, "my-stream-tts --hook") &&
          strstr(t, "stream-tts --follow x.jsonl"));
    client_settings_out u = merge("old-mode", before, strlen(before), 1, &st);
    CHECK(st == STTS_OK && u.changed && u.removed == 3);
    CHECK(u.text && !strstr(u.text, "bin/stream-tts --hook") && strstr(u.text, "say done"));
    free(u.text);
    free(o.text);
    /* A command under another name is refused: its entries would not be
     * found again (a second run added them again, --uninstall found none). */
    client_settings_in in = {"other-name", "{}", 2, "/opt/x/stts-hook", 0};
    stts_error e;
    CHECK(client_settings_merge(&in, &o, &e) == STTS_ERR_INVALID_ARG);
    CHECK_MSG(strstr(e.msg, "named stream-tts") != NULL, "%s", e.msg);
}

int main(void) {
    TEST_RUN(test_golden);
    TEST_RUN(test_refused);
    TEST_RUN(test_numbers_kept);
    TEST_RUN(test_old_hook_mode_entries);
    return TEST_SUMMARY();
}
