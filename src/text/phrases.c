/* phrases.c - what the program says in place of things it does not read out
 * (code, tables, tool calls, errors), per NLLB language code. Adding a
 * language is adding one table here; English is the fallback. */
#include "stts_text.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *lang;
    const char *ph[TEXT_PH__COUNT];
} phrase_table;

static const phrase_table tables[] = {
    {"eng_Latn", {
        [TEXT_PH_CODE_LANG_N] = "{a} code, {n} lines, omitted.",
        [TEXT_PH_CODE_LANG_1] = "{a} code, one line, omitted.",
        [TEXT_PH_CODE_N] = "Code block, {n} lines, omitted.",
        [TEXT_PH_CODE_1] = "Code block, one line, omitted.",
        [TEXT_PH_TABLE_N] = "Table, {n} rows, omitted.",
        [TEXT_PH_TABLE_1] = "Table, one row, omitted.",
        [TEXT_PH_TOOL_RUN] = "Running: {a}.",
        [TEXT_PH_TOOL_READ] = "Reading {a}.",
        [TEXT_PH_TOOL_EDIT] = "Editing {a}.",
        [TEXT_PH_TOOL_WRITE] = "Writing {a}.",
        [TEXT_PH_TOOL_GREP] = "Searching for {a}.",
        [TEXT_PH_TOOL_GLOB] = "Looking for files matching {a}.",
        [TEXT_PH_TOOL_LIST] = "Listing {a}.",
        [TEXT_PH_TOOL_FETCH] = "Fetching {a}.",
        [TEXT_PH_TOOL_WEBSEARCH] = "Searching the web for {a}.",
        [TEXT_PH_TOOL_AGENT] = "Starting a subagent: {a}.",
        [TEXT_PH_TOOL_TODO] = "Updating the to-do list.",
        [TEXT_PH_TOOL_OTHER] = "Using the {a} tool.",
        [TEXT_PH_ERR_GENERIC] = "Claude Code reported an error.",
        [TEXT_PH_ERR_AUTH] = "Claude Code could not log in.",
        [TEXT_PH_ERR_RATE_LIMIT] = "Claude Code hit a rate limit.",
        [TEXT_PH_ERR_BILLING] = "Claude Code reported a billing problem.",
        [TEXT_PH_ERR_MODEL] = "Claude Code could not find the model.",
        [TEXT_PH_ERR_API] = "The request failed with an API error.",
        [TEXT_PH_ERR_MAX_TURNS] = "Stopped: the maximum number of turns was reached.",
        [TEXT_PH_ERR_BUDGET] = "Stopped: the budget limit was reached.",
        [TEXT_PH_ERR_EXECUTION] = "The request stopped with an error.",
        [TEXT_PH_ERR_STRUCTURED] = "Stopped: the structured output did not match the schema.",
        [TEXT_PH_SECRET] = "Secret omitted.",
        [TEXT_PH_SKIPPING] = "Skipping ahead.",
        [TEXT_PH_TRANSLATION_FAILED] = "Translation failed.",
        [TEXT_PH_NOT_READ] = "A sentence in another language was not read.",
    }},
    {"jpn_Jpan", {
        [TEXT_PH_CODE_LANG_N] = "{a}のコード、{n}行、省略します。",
        [TEXT_PH_CODE_LANG_1] = "{a}のコード、1行、省略します。",
        [TEXT_PH_CODE_N] = "コード、{n}行、省略します。",
        [TEXT_PH_CODE_1] = "コード、1行、省略します。",
        [TEXT_PH_TABLE_N] = "表、{n}行、省略します。",
        [TEXT_PH_TABLE_1] = "表、1行、省略します。",
        [TEXT_PH_TOOL_RUN] = "実行中: {a}。",
        [TEXT_PH_TOOL_READ] = "{a}を読んでいます。",
        [TEXT_PH_TOOL_EDIT] = "{a}を編集しています。",
        [TEXT_PH_TOOL_WRITE] = "{a}を書いています。",
        [TEXT_PH_TOOL_GREP] = "{a}を検索しています。",
        [TEXT_PH_TOOL_GLOB] = "{a}に合うファイルを探しています。",
        [TEXT_PH_TOOL_LIST] = "{a}の一覧を見ています。",
        [TEXT_PH_TOOL_FETCH] = "{a}を取得しています。",
        [TEXT_PH_TOOL_WEBSEARCH] = "ウェブで{a}を検索しています。",
        [TEXT_PH_TOOL_AGENT] = "サブエージェントを開始します: {a}。",
        [TEXT_PH_TOOL_TODO] = "ToDoリストを更新しています。",
        [TEXT_PH_TOOL_OTHER] = "{a}ツールを使っています。",
        [TEXT_PH_ERR_GENERIC] = "Claude Codeでエラーが発生しました。",
        [TEXT_PH_ERR_AUTH] = "Claude Codeにログインできませんでした。",
        [TEXT_PH_ERR_RATE_LIMIT] = "Claude Codeが利用制限に達しました。",
        [TEXT_PH_ERR_BILLING] = "Claude Codeで支払いの問題が発生しました。",
        [TEXT_PH_ERR_MODEL] = "Claude Codeがモデルを見つけられませんでした。",
        [TEXT_PH_ERR_API] = "APIエラーでリクエストが失敗しました。",
        [TEXT_PH_ERR_MAX_TURNS] = "最大ターン数に達したため停止しました。",
        [TEXT_PH_ERR_BUDGET] = "予算の上限に達したため停止しました。",
        [TEXT_PH_ERR_EXECUTION] = "エラーでリクエストが停止しました。",
        [TEXT_PH_ERR_STRUCTURED] = "構造化出力がスキーマに合わなかったため停止しました。",
        [TEXT_PH_SECRET] = "秘密情報は省略します。",
        [TEXT_PH_SKIPPING] = "少し先に進みます。",
        [TEXT_PH_TRANSLATION_FAILED] = "翻訳できませんでした。",
        [TEXT_PH_NOT_READ] = "別の言語の文は読み上げませんでした。",
    }},
};

static const char *const languages[] = {"eng_Latn", "jpn_Jpan", NULL};

const char *const *text_phrase_languages(void) { return languages; }

const char *text_kind_name(text_kind k) {
    switch (k) {
    case TEXT_SPEECH: return "speech";
    case TEXT_NOTICE_CODE: return "code";
    case TEXT_NOTICE_TABLE: return "table";
    case TEXT_NOTICE_TOOL: return "tool";
    case TEXT_NOTICE_ERROR: return "error";
    case TEXT_NOTICE_SECRET: return "secret";
    case TEXT_NOTICE_SKIP: return "skip";
    }
    return "unknown";
}

/* Appends src[0..n) to out if it fits whole; a cut would split a character. */
static void put(char *out, size_t cap, size_t *len, const char *src, size_t n) {
    if (*len + n + 1 > cap) {
        /* Copy what fits, ending on a UTF-8 character boundary. */
        size_t room = cap > *len + 1 ? cap - *len - 1 : 0;
        if (room > n) room = n;
        while (room > 0 && room < n && ((unsigned char)src[room] & 0xC0) == 0x80) room--;
        memcpy(out + *len, src, room);
        *len += room;
        return;
    }
    memcpy(out + *len, src, n);
    *len += n;
}

size_t text_phrase_format(const char *lang, text_phrase_id id, const char *a, long n,
                          char *out, size_t cap, const char **lang_used) {
    const phrase_table *t = &tables[0];
    if (lang) {
        for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
            if (strcmp(tables[i].lang, lang) == 0) t = &tables[i];
    }
    if (lang_used) *lang_used = t->lang;
    if (cap == 0) return 0;
    size_t len = 0;
    if ((int)id < 0 || id >= TEXT_PH__COUNT || !t->ph[id]) {
        out[0] = '\0';
        return 0;
    }
    const char *f = t->ph[id];
    while (*f) {
        if (f[0] == '{' && f[1] == 'a' && f[2] == '}') {
            size_t al = a ? strlen(a) : 0;
            /* "Running: jq ." + "." would read "jq ..": the argument's own
             * final period stands in for the phrase's. */
            if (al && a[al - 1] == '.' && (f[3] == '.' || strncmp(f + 3, "\xE3\x80\x82", 3) == 0)) al--;
            if (a) put(out, cap, &len, a, al);
            f += 3;
        } else if (f[0] == '{' && f[1] == 'n' && f[2] == '}') {
            char num[24];
            int k = snprintf(num, sizeof num, "%ld", n);
            put(out, cap, &len, num, (size_t)k);
            f += 3;
        } else {
            put(out, cap, &len, f, 1);
            f++;
        }
    }
    out[len] = '\0';
    return len;
}

size_t text_code_language_name(const char *info, size_t n, char *out, size_t cap) {
    static const struct { const char *key, *name; } names[] = {
        {"python", "Python"}, {"py", "Python"}, {"python3", "Python"},
        {"javascript", "JavaScript"}, {"js", "JavaScript"}, {"jsx", "JavaScript"},
        {"typescript", "TypeScript"}, {"ts", "TypeScript"}, {"tsx", "TypeScript"},
        {"c", "C"}, {"h", "C"}, {"cpp", "C++"}, {"c++", "C++"}, {"cc", "C++"}, {"hpp", "C++"},
        {"cs", "C#"}, {"csharp", "C#"}, {"rust", "Rust"}, {"rs", "Rust"}, {"go", "Go"},
        {"golang", "Go"}, {"java", "Java"}, {"kotlin", "Kotlin"}, {"kt", "Kotlin"},
        {"swift", "Swift"}, {"ruby", "Ruby"}, {"rb", "Ruby"}, {"php", "PHP"},
        {"bash", "Shell"}, {"sh", "Shell"}, {"shell", "Shell"}, {"zsh", "Shell"},
        {"console", "Shell"}, {"shell-session", "Shell"}, {"powershell", "PowerShell"},
        {"ps1", "PowerShell"}, {"json", "JSON"}, {"jsonl", "JSON"}, {"yaml", "YAML"},
        {"yml", "YAML"}, {"toml", "TOML"}, {"ini", "INI"}, {"xml", "XML"}, {"html", "HTML"},
        {"css", "CSS"}, {"scss", "CSS"}, {"sql", "SQL"}, {"diff", "Diff"}, {"patch", "Diff"},
        {"markdown", "Markdown"}, {"md", "Markdown"}, {"cmake", "CMake"},
        {"make", "Makefile"}, {"makefile", "Makefile"}, {"dockerfile", "Dockerfile"},
        {"docker", "Dockerfile"}, {"lua", "Lua"}, {"perl", "Perl"}, {"r", "R"},
        {"scala", "Scala"}, {"haskell", "Haskell"}, {"hs", "Haskell"}, {"elixir", "Elixir"},
        {"ex", "Elixir"}, {"zig", "Zig"}, {"nix", "Nix"}, {"proto", "Protobuf"},
        {"graphql", "GraphQL"}, {"vue", "Vue"}, {"svelte", "Svelte"}, {"asm", "Assembly"},
        {"nasm", "Assembly"}, {"cuda", "CUDA"}, {"cu", "CUDA"}, {"mermaid", "Mermaid"},
    };
    if (cap == 0) return 0;
    out[0] = '\0';
    /* The language is the info string's first word: "python title=x" -> python. */
    size_t i = 0;
    while (i < n && (info[i] == ' ' || info[i] == '\t')) i++;
    if (i < n && info[i] == '{') i++;                   /* ```{python} */
    if (i < n && info[i] == '.') i++;                   /* ```.py */
    size_t s = i;
    while (i < n && (isalnum((unsigned char)info[i]) || info[i] == '+' || info[i] == '#' ||
                     info[i] == '-' || info[i] == '_'))
        i++;
    size_t w = i - s;
    if (w == 0 || w > 24) return 0;
    char key[32];
    for (size_t k = 0; k < w; k++) key[k] = (char)tolower((unsigned char)info[s + k]);
    key[w] = '\0';
    if (strcmp(key, "text") == 0 || strcmp(key, "txt") == 0 || strcmp(key, "plaintext") == 0 ||
        strcmp(key, "plain") == 0 || strcmp(key, "output") == 0 || strcmp(key, "log") == 0)
        return 0;
    const char *name = NULL;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (strcmp(names[k].key, key) == 0) name = names[k].name;
    char tmp[32];
    if (!name) {
        /* Unknown languages keep their own spelling, capitalised. */
        memcpy(tmp, info + s, w);
        tmp[w] = '\0';
        tmp[0] = (char)toupper((unsigned char)tmp[0]);
        name = tmp;
    }
    size_t len = strlen(name);
    if (len >= cap) len = cap - 1;
    memcpy(out, name, len);
    out[len] = '\0';
    return len;
}
