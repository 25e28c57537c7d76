/* test_pipeline_units.c - the translate stage's decisions: script detection
 * (text already in the target language is not translated again), the
 * sanity guard's verdicts, and the LRU translation cache. */
#include <stdio.h>

#include "cache.h"
#include "stts_pipeline.h"
#include "guard.h"
#include "protect.h"
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "test.h"

static void script_fraction(void) {
    CHECK_NEAR(guard_script_fraction("東京は日本の首都です。", "jpn_Jpan"), 1.0, 1e-9);
    CHECK_NEAR(guard_script_fraction("Hello world", "eng_Latn"), 1.0, 1e-9);
    CHECK_NEAR(guard_script_fraction("Hello world", "jpn_Jpan"), 0.0, 1e-9);
    /* 3 kana/kanji and 3 Latin letters: digits and punctuation do not count. */
    CHECK_NEAR(guard_script_fraction("API を使う 123!", "jpn_Jpan"), 3.0 / 6.0, 1e-9);
    CHECK(guard_script_fraction("12345 !!!", "jpn_Jpan") < 0);          /* no letters */
    CHECK(guard_script_fraction("Hello", "xyz_Qaaa") < 0);              /* unknown script */
    CHECK_NEAR(guard_script_fraction("Привет мир", "rus_Cyrl"), 1.0, 1e-9);
}

static void already_in_target(void) {
    CHECK(guard_already_in_target("これは日本語の文です。", "eng_Latn", "jpn_Jpan"));
    CHECK(!guard_already_in_target("This is English.", "eng_Latn", "jpn_Jpan"));
    CHECK(!guard_already_in_target("Run 東京 tests now please", "eng_Latn", "jpn_Jpan"));
    /* Japanese with commands, paths and identifiers in it is Japanese */
    CHECK(guard_already_in_target("src/main.c の parse_args() を修正しました。", "eng_Latn", "jpn_Jpan"));
    CHECK(guard_already_in_target("このファイルは src/main.c と include/foo.h と config.json を使います。", "eng_Latn", "jpn_Jpan"));
    CHECK(guard_already_in_target("useState と useEffect を import してください。", "eng_Latn", "jpn_Jpan"));
    CHECK(guard_already_in_target("npm install を実行してから npm run build を実行します。", "eng_Latn", "jpn_Jpan"));
    CHECK(guard_already_in_target("git status で変更を確認します。", "eng_Latn", "jpn_Jpan"));
    CHECK(guard_already_in_target("src/main.c의 parse_args()를 수정했습니다.", "eng_Latn", "kor_Hang"));
    /* ... and with plain English words in it (by letters they outweighed it: translated into nonsense) */
    CHECK(guard_already_in_target("Docker Compose で PostgreSQL と Redis を起動します。", "eng_Latn", "jpn_Jpan"));
    CHECK(guard_already_in_target("Claude Code の新しい version を install しました。", "eng_Latn", "jpn_Jpan"));
    CHECK(guard_already_in_target("Unit test と integration test を追加しました。", "eng_Latn", "jpn_Jpan"));
    CHECK(guard_already_in_target("Claude Code 버전을 설치했습니다.", "eng_Latn", "kor_Hang"));
    /* English quoting Japanese is English */
    CHECK(!guard_already_in_target("The word こんにちは means hello.", "eng_Latn", "jpn_Jpan"));
    CHECK(!guard_already_in_target("Set the button text to 「保存する」 now.", "eng_Latn", "jpn_Jpan"));
    CHECK(!guard_already_in_target("Rename 設定 to 設定画面 in the menu.", "eng_Latn", "jpn_Jpan"));
    CHECK(!guard_already_in_target("The Japanese word for thanks is ありがとう.", "eng_Latn", "jpn_Jpan"));
    CHECK(!guard_already_in_target("Click the button labeled 保存.", "eng_Latn", "jpn_Jpan"));
    CHECK(!guard_already_in_target("Don't use the well-known src/main.c file.", "eng_Latn", "jpn_Jpan"));
    CHECK(!guard_already_in_target("12345 !!!", "eng_Latn", "jpn_Jpan"));
    /* Han is shared: Chinese is not Japanese (Open JTalk read it as Japanese), Japanese not Chinese */
    CHECK(!guard_already_in_target("这个函数返回一个列表，我们需要先检查它是否为空。", "eng_Latn", "jpn_Jpan"));
    CHECK(!guard_already_in_target("這個函數會傳回一個清單。", "eng_Latn", "jpn_Jpan"));
    CHECK(guard_already_in_target("设置完成了吗", "eng_Latn", "zho_Hans"));
    CHECK(!guard_already_in_target("東京都で会議を開催しました。", "eng_Latn", "zho_Hans"));
    CHECK(guard_already_in_target("東京都で会議を開催しました。", "eng_Latn", "jpn_Jpan"));
    CHECK(guard_already_in_target("設定変更。", "eng_Latn", "jpn_Jpan"));   /* kanji only, Japanese characters */
    /* Same script on both sides: never skipped (French source, English target). */
    CHECK(!guard_already_in_target("Bonjour tout le monde.", "fra_Latn", "eng_Latn"));
}

static void source_language(void) {
    CHECK_EQ_STR(guard_source_lang("这个函数返回一个列表。", "eng_Latn"), "zho_Hans");
    CHECK_EQ_STR(guard_source_lang("這個函數會傳回一個清單，這樣說。", "eng_Latn"), "zho_Hant");
    CHECK_EQ_STR(guard_source_lang("これは日本語の文です。", "eng_Latn"), "jpn_Jpan");
    CHECK_EQ_STR(guard_source_lang("src/main.c の parse_args() を修正しました。", "eng_Latn"), "jpn_Jpan");
    CHECK_EQ_STR(guard_source_lang("이 함수는 목록을 반환합니다.", "eng_Latn"), "kor_Hang");
    CHECK_EQ_STR(guard_source_lang("Эта функция возвращает список.", "eng_Latn"), "rus_Cyrl");
    CHECK_EQ_STR(guard_source_lang("הפונקציה מחזירה רשימה.", "eng_Latn"), "heb_Hebr");
    CHECK(guard_source_lang("The function returns a list.", "eng_Latn") == NULL);
    CHECK(guard_source_lang("La fonction renvoie une liste.", "eng_Latn") == NULL);   /* which Latin language? */
    CHECK(guard_source_lang("Click the button labeled 保存 to save it.", "eng_Latn") == NULL);
    CHECK(guard_source_lang("東京", "eng_Latn") == NULL);                 /* Japanese or Chinese: not said */
    CHECK(guard_source_lang("Эта функция возвращает список.", "ukr_Cyrl") == NULL);   /* the source's script */
    CHECK(guard_source_lang("12345 !!!", "eng_Latn") == NULL);
    CHECK(guard_source_lang(NULL, "eng_Latn") == NULL);
}

static void guard_verdicts(void) {
    char why[128];
    int32_t ok_ids[] = {2, 100, 10, 11, 12, 2};
    CHECK_EQ_INT(guard_check("It is raining.", "雨が降っている。", ok_ids, 6, 0, "eng_Latn", "jpn_Jpan", why, sizeof why), 0);
    CHECK_EQ_INT(guard_check("It is raining.", "", ok_ids, 6, 0, "eng_Latn", "jpn_Jpan", why, sizeof why), 1);
    CHECK(strstr(why, "empty") != NULL);
    int32_t loop1[] = {2, 100, 7, 7, 7, 7, 2};
    CHECK_EQ_INT(guard_check("Yes.", "はははは", loop1, 7, 0, "eng_Latn", "jpn_Jpan", why, sizeof why), 1);
    CHECK(strstr(why, "repeating") != NULL);
    int32_t loop2[] = {2, 100, 5, 6, 5, 6, 5, 6, 2};
    CHECK_EQ_INT(guard_check("Go now.", "行け行け行け", loop2, 9, 0, "eng_Latn", "jpn_Jpan", why, sizeof why), 1);
    int32_t three[] = {2, 100, 7, 7, 7, 2};   /* three of one token is still language */
    CHECK_EQ_INT(guard_check("Ha ha ha.", "ははは", three, 6, 0, "eng_Latn", "jpn_Jpan", why, sizeof why), 0);
    CHECK_EQ_INT(guard_check("Hi.", "こんにちは", ok_ids, 6, 1, "eng_Latn", "jpn_Jpan", why, sizeof why), 1);
    CHECK(strstr(why, "length limit") != NULL);
    CHECK_EQ_INT(guard_check("Hi.", "ああああいいいいううううええええおおおおかかかかきき", ok_ids, 6, 0, "eng_Latn",
                             "jpn_Jpan", why, sizeof why), 1);
    CHECK(strstr(why, "characters") != NULL);
    CHECK_EQ_INT(guard_check("Open the file now.", "Open the file now.", ok_ids, 6, 0, "eng_Latn", "jpn_Jpan", why,
                             sizeof why), 1);
    CHECK(strstr(why, "Jpan") != NULL);
    /* Mixed output with identifiers is fine when most letters are Japanese. */
    CHECK_EQ_INT(guard_check("Run make now.", "今すぐmakeを実行してください。", ok_ids, 6, 0, "eng_Latn", "jpn_Jpan",
                             why, sizeof why), 0);
}

static void cache_lru(void) {
    mt_cache *c = mt_cache_new(2);
    CHECK(c != NULL);
    CHECK(mt_cache_get(c, "a") == NULL);
    CHECK_EQ_INT(mt_cache_put(c, "a", "A"), 0);
    CHECK_EQ_INT(mt_cache_put(c, "b", "B"), 0);
    CHECK_EQ_STR(mt_cache_get(c, "a"), "A");         /* a is now the most recent */
    CHECK_EQ_INT(mt_cache_put(c, "c", "C"), 0);      /* evicts b */
    CHECK(mt_cache_get(c, "b") == NULL);
    CHECK_EQ_STR(mt_cache_get(c, "a"), "A");
    CHECK_EQ_STR(mt_cache_get(c, "c"), "C");
    CHECK_EQ_INT(mt_cache_put(c, "c", "C2"), 0);     /* update in place */
    CHECK_EQ_STR(mt_cache_get(c, "c"), "C2");
    CHECK_EQ_INT(mt_cache_size(c), 2);
    /* Many keys through a small cache: never more than capacity, lookups stay right. */
    mt_cache *d = mt_cache_new(16);
    char k[32], v[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof k, "key %d", i);
        snprintf(v, sizeof v, "val %d", i);
        mt_cache_put(d, k, v);
    }
    CHECK_EQ_INT(mt_cache_size(d), 16);
    CHECK_EQ_STR(mt_cache_get(d, "key 999"), "val 999");
    CHECK_EQ_STR(mt_cache_get(d, "key 984"), "val 984");
    CHECK(mt_cache_get(d, "key 983") == NULL);
    mt_cache_free(d);
    mt_cache_free(c);
}

/* Identifier protection: which words are protected, stand-ins in, tokens back. */
static void protect_tokens(void) {
    const char *yes[] = {"useState", "get_user_id", "src/main.c", "config.json", "8080", "v1.2.3", "--verbose", "-v",
                         "std::vector", "$HOME", "user@example.com", "os.path.join", "HttpClient", "x86_64", NULL};
    const char *no[] = {"use", "state", "the", "README", "API", "e.g", "U.S", "well-known", "Tom", "東京", NULL};
    for (int i = 0; yes[i]; i++) CHECK_MSG(protect_is_token(yes[i], (int)strlen(yes[i])), "%s", yes[i]);
    for (int i = 0; no[i]; i++) CHECK_MSG(!protect_is_token(no[i], (int)strlen(no[i])), "%s", no[i]);

    protect_map m;
    char *in = NULL;
    /* Japanese: stand-ins Tom, Mary (skipping a name the sentence uses), written トム, メアリー */
    CHECK_EQ_INT(protect_apply("Ken said: open config.json, then run useState and config.json again.", "jpn_Jpan", &m, &in), 1);
    CHECK_EQ_STR(in, "Ken said: open Tom, then run Mary and Tom again.");
    CHECK_EQ_INT(m.n, 2);
    /* the model wrote トム twice and dropped メアリー: every token still comes back */
    char *out = protect_restore("ケンはトムを開けてトムを使うと言った。", &m);
    CHECK_EQ_STR(out, "useState ケンはconfig.jsonを開けてconfig.jsonを使うと言った。");
    free(out);
    protect_clear(&m);
    free(in);
    /* Latin targets: the names themselves, whole words only */
    CHECK_EQ_INT(protect_apply("Set max_retries to 5.", "fra_Latn", &m, &in), 1);
    CHECK_EQ_STR(in, "Set Tom to Mary.");
    out = protect_restore("Réglez Tom sur Mary. Tomorrow.", &m);
    CHECK_EQ_STR(out, "Réglez max_retries sur 5. Tomorrow.");
    free(out);
    protect_clear(&m);
    free(in);
    /* nothing to protect, or a target without known stand-ins: untouched */
    CHECK_EQ_INT(protect_apply("The cat sat on the mat.", "jpn_Jpan", &m, &in), 0);
    CHECK(in == NULL);
    CHECK_EQ_INT(protect_apply("Run useState now.", "kor_Hang", &m, &in), 0);
    /* at most PROTECT_MAX tokens; later ones go through as they are */
    CHECK_EQ_INT(protect_apply("a1 b2 c3 d4 e5 f6 g7 h8", "jpn_Jpan", &m, &in), 1);
    CHECK_EQ_INT(m.n, PROTECT_MAX);
    CHECK(strstr(in, "g7 h8") != NULL);
    protect_clear(&m);
    free(in);
}

/* "Stopped at the length limit" is "does not end with the model's eos id",
 * not "does not end with id 2" (a model whose config names another eos id
 * had every translation rejected by the guard as cut off). */
static void hit_max_uses_model_eos(void) {
    nllb_config c = nllb_config_600m();
    c.vocab_size = 600;
    c.spm_size = 300;
    c.d_model = 16;
    c.encoder_layers = c.decoder_layers = 1;
    c.encoder_attention_heads = c.decoder_attention_heads = 2;
    c.encoder_ffn_dim = c.decoder_ffn_dim = 16;
    c.max_position_embeddings = 32;
    c.eos_token_id = 5;
    nllb_model *m = NULL;
    stts_error e;
    CHECK_MSG(nllb_model_new_random(&c, 1, NULL, &m, &e) == STTS_OK, "%s", e.msg);
    if (!m) return;
    const int32_t ended[] = {5, 400, 17, 5}, cut[] = {5, 400, 17, 18}, two[] = {5, 400, 17, 2};
    CHECK_EQ_INT(guard_hit_max(m, ended, 4), 0);
    CHECK_EQ_INT(guard_hit_max(m, cut, 4), 1);
    CHECK_EQ_INT(guard_hit_max(m, two, 4), 1);   /* 2 is not this model's eos */
    CHECK_EQ_INT(guard_hit_max(m, ended, 0), 0);
    CHECK_EQ_INT(nllb_model_is_eos(m, 5), 1);
    CHECK_EQ_INT(nllb_model_is_eos(m, 2), 0);
    nllb_model_free(m);
}

/* pipeline_start refuses a gap (and a lag limit or audio queue length) that is NaN, infinite or negative with a clear
 * error, before it looks at anything else (the CLI checks --gap-ms; a
 * library caller did not get that check and a NaN gap wrote silence forever). */
static void gap_checked(void) {
    static const double bad[] = {NAN, INFINITY, -INFINITY, -1.0, 1e12};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pipeline_params p;
        pipeline_default_params(&p);
        p.gap_ms = bad[i];
        pipeline *pl = NULL;
        stts_error e = {0};
        CHECK_EQ_INT(pipeline_start(&p, &pl, &e), STTS_ERR_INVALID_ARG);
        CHECK(pl == NULL);
        CHECK_MSG(strstr(e.msg, "gap_ms") != NULL, "gap %g: %s", bad[i], e.msg);
    }
    /* the lag limit and the audio queue's length the same way: infinity
     * overflowed the queue's byte limit, NaN turned the lag limit off */
    for (int which = 0; which < 2; which++)
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            pipeline_params p;
            pipeline_default_params(&p);
            if (which) p.audio_queue_s = bad[i];
            else p.max_lag_s = bad[i];
            pipeline *pl = NULL;
            stts_error e = {0};
            CHECK_EQ_INT(pipeline_start(&p, &pl, &e), STTS_ERR_INVALID_ARG);
            CHECK(pl == NULL);
            CHECK_MSG(strstr(e.msg, which ? "audio_queue_s" : "max_lag_s") != NULL, "%g: %s", bad[i], e.msg);
        }
    /* a valid gap passes that check (and fails on the missing voice) */
    pipeline_params p;
    pipeline_default_params(&p);
    pipeline *pl = NULL;
    stts_error e = {0};
    CHECK_EQ_INT(pipeline_start(&p, &pl, &e), STTS_ERR_INVALID_ARG);
    CHECK_MSG(strstr(e.msg, "synthesizer") != NULL, "%s", e.msg);
}

int main(void) {
    TEST_RUN(gap_checked);
    TEST_RUN(protect_tokens);
    TEST_RUN(script_fraction);
    TEST_RUN(already_in_target);
    TEST_RUN(source_language);
    TEST_RUN(guard_verdicts);
    TEST_RUN(cache_lru);
    TEST_RUN(hit_max_uses_model_eos);
    return TEST_SUMMARY();
}
