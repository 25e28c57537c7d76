/* lineclass.c - is this line code or machine output pasted without a fence?
 * The shape tests behind stream.c's unfenced code blocks (lineclass.h has the
 * interface): diffs, YAML, Python, Java, Go and Rust traces, and the output
 * of test runners, compilers, loggers and shells. They see one line's bytes
 * and nothing else; the block layer in stream.c keeps the state. */
#include "lineclass.h"

#include <ctype.h>
#include <string.h>

/* The first pat (pl bytes) in s[0, n), ignoring ASCII case. (stream.c has
 * its own: the two files share only lineclass.h.) */
static const char *find_ci(const char *s, size_t n, const char *pat, size_t pl) {
    for (size_t i = 0; i + pl <= n; i++) {
        size_t k = 0;
        while (k < pl && tolower((unsigned char)s[i + k]) == tolower((unsigned char)pat[k])) k++;
        if (k == pl) return s + i;
    }
    return NULL;
}

/* ---- unfenced code other than JSON ---------------------------------------
 * Lines that are clearly code or data, written without a fence: a diff, YAML,
 * a stack trace. Each kind starts only on strong evidence, decided on its
 * complete line, and goes on while its lines keep the shape (a blank line or
 * any other line ends it; that line is read as usual): a prose line that
 * merely starts with '-' or '+' ("- item", "+ is nice", "-5 degrees",
 * "--verbose") is never taken. A false start would silence prose, worse than
 * one line of syntax read, so the first line of a YAML block ("services:") is
 * read: only the indented key under it shows that it is YAML. */

static int has_prefix(const char *s, size_t n, const char *pre) {
    size_t l = strlen(pre);
    return n >= l && memcmp(s, pre, l) == 0;
}
/* "-1,4 " / "+1,5 ": a hunk range and its space; the bytes it took, or 0. */
static size_t hunk_range(const char *s, size_t n, char sign) {
    size_t i = 0;
    if (i >= n || s[i++] != sign) return 0;
    size_t d = i;
    while (i < n && isdigit((unsigned char)s[i])) i++;
    if (i == d) return 0;
    if (i < n && s[i] == ',') {
        d = ++i;
        while (i < n && isdigit((unsigned char)s[i])) i++;
        if (i == d) return 0;
    }
    return i < n && s[i] == ' ' ? i + 1 : 0;
}
/* "@@ -1,4 +1,5 @@" (anything may follow: the function name) */
static int is_hunk(const char *s, size_t n) {
    if (!has_prefix(s, n, "@@ ")) return 0;
    size_t i = 3, k;
    if (!(k = hunk_range(s + i, n - i, '-'))) return 0;
    i += k;
    if (!(k = hunk_range(s + i, n - i, '+'))) return 0;
    i += k;
    return has_prefix(s + i, n - i, "@@");
}
/* "--- a/src/x.c", "+++ b/src/x.c", "--- /dev/null" (a date may follow) */
static int is_file_header(const char *s, size_t n) {
    if (!has_prefix(s, n, "--- ") && !has_prefix(s, n, "+++ ")) return 0;
    size_t a = 4, b = 4;
    while (b < n && s[b] != ' ') b++;
    return has_prefix(s + a, b - a, "a/") || has_prefix(s + a, b - a, "b/") || has_prefix(s + a, b - a, "/dev/null");
}
/* A removed or added line of code: '-' or '+' right before code
 * ("-foo()", "+x = f(y);") or before an indented line ("+    return x;"),
 * ending like code does (; { } ( ) [ ] , :). Not "- item", "+ is nice",
 * "--verbose ...", "-5 (approx)", "+1 (agreed)". */
static int is_diff_code_line(const char *s, size_t n) {
    if (n < 3 || (s[0] != '-' && s[0] != '+')) return 0;
    unsigned char c = (unsigned char)s[1];
    int code_start = (isalpha(c) || strchr("_$#@/\"'{}<", c)) || (c == ' ' && s[2] == ' ');
    if (!code_start) return 0;
    size_t e = n;
    while (e > 1 && s[e - 1] == ' ') e--;
    return e > 2 && strchr(";{}()[],:", s[e - 1]) != NULL;
}
/* "key:" or "key: value" with a key as configuration files write them
 * (lower case first, no spaces: "services", "runs-on"; prose capitalizes
 * "Note:"), a value not ending like a sentence */
int text_lc_yaml_key(const char *s, size_t n, int bare) {
    size_t i = 0;
    if (n == 0 || !(islower((unsigned char)s[0]) || s[0] == '_')) return 0;
    while (i < n && (isalnum((unsigned char)s[i]) || strchr("_.-", s[i]))) i++;
    if (i == n || s[i] != ':') return 0;
    size_t j = i + 1;
    while (j < n && s[j] == ' ') j++;
    if (bare) return j == n;
    size_t e = n;
    while (e > j && s[e - 1] == ' ') e--;
    return j == n || (j > i + 1 && !strchr(".!?", s[e - 1]));
}
/* "    at foo (src/a.js:10:5)", "\tat com.x.Y.z(Y.java:42)", "    at src/a.js:10:5",
 * "\tat com.x.Y.z(Y.java:42) ~[app.jar:1.0]" (Logback's packaging data),
 * "\tat com.x.Y.z(Y.java)" (compiled without line numbers) */
static int is_frame_line(const char *s, size_t n) {
    if (!has_prefix(s, n, "at ") || n < 6) return 0;
    size_t e = n;
    while (e > 3 && s[e - 1] == ' ') e--;
    if (s[e - 1] == ']') {
        size_t k = e - 1;
        while (k > 3 && s[k] != '[') k--;
        if (s[k] == '[' && s[k - 1] == '~') k--;
        if (s[k - 1] == ' ' && s[k - 2] == ')') e = k - 1;
    }
    if (s[e - 1] == ')') {
        const char *o = NULL;
        for (size_t k = 3; k < e; k++)
            if (s[k] == '(') o = s + k;
        if (!o) return 0;
        size_t ol = (size_t)(s + e - 1 - o);
        if (has_prefix(o, ol, "(Native Method") || has_prefix(o, ol, "(Unknown Source") || has_prefix(o, ol, "(native")) return 1;
        static const char *const src[] = {".java", ".kt", ".scala", ".groovy", NULL};
        for (int k = 0; src[k]; k++) {
            size_t l = strlen(src[k]);
            if (ol > l + 1 && memcmp(o + ol - l, src[k], l) == 0 && !memchr(o, ' ', ol)) return 1;
        }
        e--;
    }
    size_t d = e;
    while (d > 3 && isdigit((unsigned char)s[d - 1])) d--;
    return d < e && s[d - 1] == ':';
}
/* The line a Python traceback ends with: "ValueError: bad value", "KeyError" */
static int is_exception_line(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '.')) i++;
    if (i == 0 || (i < n && s[i] != ':')) return 0;
    static const char *const ends[] = {"Error", "Exception", "Warning", "Exit", "Interrupt", "Iteration", NULL};
    for (int k = 0; ends[k]; k++) {
        size_t l = strlen(ends[k]);
        if (i >= l && memcmp(s + i - l, ends[k], l) == 0) return 1;
    }
    return 0;
}

/* Go's and Rust's panics. The message before the dump ("panic: runtime
 * error: integer divide by zero", "thread 'main' panicked at src/main.rs:4:5:"
 * and its message) is what a listener wants to hear: it is read. What follows
 * is not: a Go dump starts at its complete "goroutine 1 [running]:" line (or
 * at the "[signal SIGSEGV: ... pc=0x...]" line between the message and it)
 * and goes on while lines are functions "main.divide(0x1, 0x0)", "created by
 * ...", their files "\t/home/u/app/main.go:8 +0x1d", or more goroutines
 * after blank lines (a dump of all goroutines is one block, one notice); the
 * go tool's "exit status 2" right after it is its last line (machine output,
 * dropped with it). A Rust backtrace starts at its complete "stack backtrace:"
 * line (lower case, nothing after it: "Stack backtrace: see below." is
 * prose) and goes on while lines are numbered frames "  0: rust_begin_unwind"
 * or their "at /rustc/.../panicking.rs:645:5"; the note "note: Some details
 * are omitted, run with `RUST_BACKTRACE=full` ..." is its last line. */
static size_t trim_end(const char *s, size_t n) {
    while (n > 0 && s[n - 1] == ' ') n--;
    return n;
}
/* "goroutine 1 [running]:", "goroutine 18 [chan receive, 2 minutes]:",
 * "goroutine 1 gp=0xc000002380 m=0 mp=0x5e3a40 [running]:" (Go 1.23's
 * GOTRACEBACK=system) */
static int is_goroutine_header(const char *s, size_t n) {
    n = trim_end(s, n);
    if (!has_prefix(s, n, "goroutine ") || n < 15 || s[n - 1] != ':' || s[n - 2] != ']') return 0;
    size_t i = 10, d = i;
    while (i < n && isdigit((unsigned char)s[i])) i++;
    if (i == d || s[i] != ' ') return 0;
    const char *o = memchr(s + i, '[', n - 2 - i);
    return o && isalpha((unsigned char)o[1]) && !memchr(o + 1, ']', (size_t)(s + n - 2 - (o + 1)));
}
/* "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x48f4a6]" */
static int is_go_signal_line(const char *s, size_t n) {
    n = trim_end(s, n);
    return has_prefix(s, n, "[signal ") && s[n - 1] == ']' && find_ci(s, n, " pc=0x", 6);
}
/* "main.divide(0x1, 0x0)", "main.(*T).Run(...)", "panic({0x4a0c60?, 0x5450a0?})",
 * "github.com/x/y.Map[...](0xc000010000)": a function in a Go dump */
static int is_go_func_line(const char *s, size_t n) {
    n = trim_end(s, n);
    if (n < 3 || s[n - 1] != ')' || !(isalpha((unsigned char)s[0]) || s[0] == '_')) return 0;
    size_t k = 0;
    while (k < n && s[k] != '(' && s[k] != ' ') k++;
    if (k == n || s[k] != '(') return 0;
    return memchr(s, '.', k) != NULL || (k == 5 && memcmp(s, "panic", 5) == 0);
}
/* "/home/u/app/main.go:8 +0x1d", "/usr/local/go/src/runtime/asm_amd64.s:1650 +0x1",
 * "C:/src/app/main.go:12": where a function of a Go dump is */
static int is_go_file_line(const char *s, size_t n) {
    n = trim_end(s, n);
    size_t e = 0;
    while (e < n && s[e] != ' ') e++;
    size_t d = e;
    while (d > 0 && isdigit((unsigned char)s[d - 1])) d--;
    if (d == e || d < 2 || s[d - 1] != ':') return 0;
    if (!memchr(s, '/', d) && !memchr(s, '\\', d) && !(d >= 4 && memcmp(s + d - 4, ".go:", 4) == 0)) return 0;
    return e == n || has_prefix(s + e, n - e, " +0x") || has_prefix(s + e, n - e, " fp=0x");
}
/* "0: rust_begin_unwind", "12:     0x55d5c7e0b2a1 - std::rt::lang_start" */
static int is_numbered_frame(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && isdigit((unsigned char)s[i])) i++;
    return i > 0 && i < n && s[i] == ':' && (i + 1 == n || s[i + 1] == ' ');
}

static int tool_line(const char *s, size_t n, size_t indent);
static int tool_goes_on(const char *t, size_t tn, size_t indent);
static int prompt_line(const char *s, size_t n);
static int prose_line(const char *s, size_t n);

/* Does the complete line s[0, n) (indentation included) go on the unfenced
 * code block? 2: yes, and it is its last line. */
int text_lc_goes_on(int kind, int gap, const char *s, size_t n) {
    size_t i = 0;
    while (i < n && s[i] == ' ') i++;
    const char *t = s + i;
    size_t tn = n - i;
    switch (kind) {
    case UC_DIFF:
        return s[0] == ' ' || s[0] == '+' || s[0] == '-' || s[0] == '\\' || has_prefix(s, n, "@@") ||
               has_prefix(s, n, "diff ") || has_prefix(s, n, "index ") || has_prefix(s, n, "new file mode") ||
               has_prefix(s, n, "deleted file mode") || has_prefix(s, n, "similarity index") ||
               has_prefix(s, n, "rename from") || has_prefix(s, n, "rename to") || has_prefix(s, n, "old mode") ||
               has_prefix(s, n, "new mode") || has_prefix(s, n, "Binary files");
    case UC_DIFF_LINES:   /* more such lines, a hunk, or a context line of code */
        if (is_diff_code_line(s, n) || is_hunk(s, n)) return 1;
        if (i == 1 && tn) {
            size_t e = tn;
            while (e > 0 && t[e - 1] == ' ') e--;
            return e && strchr(";{}()[],", t[e - 1]) != NULL;
        }
        return 0;
    case UC_YAML:
        return i > 0 || text_lc_yaml_key(s, n, 0);
    case UC_TRACE:
        if (i > 0 || has_prefix(s, n, "Traceback (most recent call last):") ||
            has_prefix(s, n, "During handling of the above exception") ||
            has_prefix(s, n, "The above exception was the direct cause"))
            return 1;
        return is_exception_line(s, n) ? 2 : 0;
    case UC_FRAMES:
        return (i > 0 && (is_frame_line(t, tn) || (has_prefix(t, tn, "... ") && tn > 9 && memcmp(t + tn - 5, " more", 5) == 0))) ||
               has_prefix(s, n, "Caused by: ");
    case UC_GO:
        if (gap) return is_goroutine_header(t, tn);   /* after blank lines: only another goroutine */
        if (is_goroutine_header(t, tn) || is_go_func_line(t, tn) || is_go_file_line(t, tn) ||
            has_prefix(t, tn, "created by ") || has_prefix(t, tn, "...additional frames elided..."))
            return 1;
        if (has_prefix(s, n, "exit status ") && n > 12) {
            size_t k = 12;
            while (k < n && isdigit((unsigned char)s[k])) k++;
            return k > 12 && trim_end(s, n) == k ? 2 : 0;
        }
        return 0;
    case UC_RUST:
        if (is_numbered_frame(t, tn) || (i > 0 && is_frame_line(t, tn))) return 1;
        return has_prefix(s, n, "note: Some details are omitted") ? 2 : 0;
    case UC_TOOL:
        if (tool_line(t, tn, i)) return prompt_line(t, trim_end(t, tn)) ? 3 : 1;
        return tool_goes_on(t, tn, i);
    case UC_SHELL:   /* a command's output: any line but prose or a fence */
        return tool_line(t, tn, i) || tool_goes_on(t, tn, i) ||
               (!prose_line(t, tn) && !has_prefix(t, tn, "```") && !has_prefix(t, tn, "~~~"));
    }
    return 0;
}

static size_t skip_sp(const char *s, size_t n, size_t i) {
    while (i < n && s[i] == ' ') i++;
    return i;
}
static size_t word_to(const char *s, size_t n, size_t i) {
    while (i < n && s[i] != ' ') i++;
    return i;
}
/* A Go dump's "goroutine 1 [running]:" and a Rust "stack backtrace:" are
 * also prose-shaped ("goroutine 5 [idle]:" over a sentence about it): such a
 * line starts its block only when the next line is the block's first frame
 * ("main.main()", "0: rust_begin_unwind"). So does a diff's "--- old.txt"
 * without a/ or b/ (diff -u), when "+++ new.txt" follows. It is held
 * meanwhile, and read as prose when the next line is anything else (or
 * there is none). */
/* diff -u's "--- old.txt" or "+++ new.txt", a date may follow ("\t2024-01-01 10:00") */
static int diffu_header(const char *t, size_t n, const char *pre) {
    n = trim_end(t, n);
    if (n < 5 || !has_prefix(t, n, pre) || t[4] == ' ' || t[4] == '-' || t[4] == '+') return 0;
    size_t e = word_to(t, n, 4), d = skip_sp(t, n, e);
    return e == n || (d > e && d < n && isdigit((unsigned char)t[d]));
}
int text_lc_borne_out(int kind, const char *t, size_t n, size_t indent) {
    n = trim_end(t, n);
    if (kind == UC_TOOL) return tool_line(t, n, indent);
    if (kind == UC_DIFF) return diffu_header(t, n, "+++ ");
    if (kind == UC_GO)
        return is_go_func_line(t, n) || has_prefix(t, n, "created by ") || has_prefix(t, n, "...additional frames elided...");
    return n >= 2 && t[0] == '0' && t[1] == ':' && is_numbered_frame(t, n);   /* UC_RUST: frame 0 */
}
/* ---- test runner and compiler output pasted without a fence ---------------
 * Machine output of `go test`, pytest, cargo test, npm, tsc, eslint and C
 * compilers is not read (the listener hears "Code block, N lines, omitted."
 * and the prose around it). A block starts only at a line whose whole shape
 * is such output (tool_line): words alone never start one ("ok", "FAIL",
 * "test result" in prose are read). It goes on through more such lines and
 * the lines that only follow them (tool_goes_on), to a blank line or any
 * other line. */
/* "0.005s", "12s", "1.2s": a duration as go test and cargo print it; its length or 0 */
static size_t duration_len(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && isdigit((unsigned char)s[i])) i++;
    if (i == 0) return 0;
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && isdigit((unsigned char)s[i])) i++;
        if (i == d) return 0;
    }
    return i < n && s[i] == 's' && (i + 1 == n || s[i + 1] == ' ' || s[i + 1] == ')') ? i + 1 : 0;
}
/* go test's package lines: "ok  \tgithub.com/x/y\t0.01s", "FAIL\tgithub.com/x/y\t0.005s",
 * "ok  \tpkg\t(cached)", "FAIL\tpkg [build failed]", "?   \tpkg\t[no test files]",
 * "ok  \tpkg\t0.01s\tcoverage: 80.0% of statements" (tabs are spaces here) */
static int go_pkg_line(const char *s, size_t n) {
    size_t i, min_sp;
    if (has_prefix(s, n, "ok ")) i = 2, min_sp = 2;
    else if (has_prefix(s, n, "FAIL ")) i = 4, min_sp = 1;
    else if (has_prefix(s, n, "? ")) i = 1, min_sp = 2;
    else return 0;
    size_t p = skip_sp(s, n, i);
    if (p - i < min_sp || p == n) return 0;
    size_t pe = word_to(s, n, p), r = skip_sp(s, n, pe);
    if (r == pe || r == n) return 0;
    if (duration_len(s + r, n - r) || has_prefix(s + r, n - r, "(cached)")) return 1;
    return s[r] == '[' && trim_end(s, n) > r + 2 && s[trim_end(s, n) - 1] == ']' && !memchr(s + r + 1, '[', n - r - 1);
}
/* "path(12,5):", "path:12:5:", "path:12:5", "path:12:" at s[0, n): the length, or 0.
 * The path has an extension ("a.ts", "src/x.c"). */
static size_t diag_loc(const char *s, size_t n, int need_col) {
    size_t e = word_to(s, n, 0), k = 0;
    while (k < e && s[k] != '(' && s[k] != ':') k++;
    if (k == 0 || k == e) return 0;
    size_t dot = k;
    while (dot > 0 && s[dot - 1] != '.' && s[dot - 1] != '/') dot--;
    if (dot < 2 || s[dot - 1] != '.' || dot == k) return 0;
    size_t i = k + 1, d = i;
    while (i < e && isdigit((unsigned char)s[i])) i++;
    if (i == d) return 0;
    if (s[k] == '(') {
        if (i >= e || s[i] != ',') return 0;
        d = ++i;
        while (i < e && isdigit((unsigned char)s[i])) i++;
        return i > d && i + 2 == e && s[i] == ')' && s[i + 1] == ':' ? e : 0;
    }
    if (i < e && s[i] == ':' && i + 1 < e) {
        d = ++i;
        while (i < e && isdigit((unsigned char)s[i])) i++;
        if (i == d) return 0;
    } else if (need_col) return 0;
    return i == e || (i + 1 == e && s[i] == ':') ? e : 0;
}
/* A log line's timestamp at s[0, n) (after an optional '['): its template's
 * length, -1 while s[0, n) may still be the start of one, or 0. Templates:
 * '9' a digit, 'd' a digit or a space, '-' '-' or '/', 'T' 'T' or a space,
 * 'L' a glog level, "Mmm" a month; other bytes stand for themselves.
 * "2026-12-02 01:23:45", "2026-12-02T01:23:45", Go's log "2026/12/02 01:23:45",
 * glog's "I1202 01:23:45", syslog's "Dec  2 01:23:45". */
static long stamp_tmpl(const char *tp, const char *s, size_t n) {
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    size_t l = strlen(tp);
    for (size_t k = 0; k < l; k++) {
        if (k == n) return -1;
        char c = s[k], p = tp[k];
        int ok;
        if (p == 'M') {   /* three bytes: a month's name */
            size_t m = n - k < 3 ? n - k : 3;
            ok = 0;
            for (int j = 0; j < 12 && !ok; j++) ok = memcmp(s + k, months + 3 * j, m) == 0;
            if (!ok) return 0;
            if (m < 3) return -1;
            k += 2;
            continue;
        }
        if (p == '9') ok = isdigit((unsigned char)c);
        else if (p == 'd') ok = isdigit((unsigned char)c) || c == ' ';
        else if (p == '-') ok = c == '-' || c == '/';
        else if (p == 'T') ok = c == 'T' || c == ' ';
        else if (p == 'L') ok = c == 'I' || c == 'W' || c == 'E' || c == 'F';
        else ok = c == p;
        if (!ok) return 0;
    }
    return (long)l;
}
static long log_stamp(const char *s, size_t n) {
    static const char *const tp[] = {"9999-99-99T99:99:99", "L9999 99:99:99", "Mmm d9 99:99:99", NULL};
    size_t b = n && s[0] == '[';
    long best = 0;
    for (int k = 0; tp[k]; k++) {
        long r = stamp_tmpl(tp[k], s + b, n - b);
        if (r > 0) return r + (long)b;
        if (r < 0) best = -1;
    }
    return best;
}
/* A line that starts with a log timestamp, then text: "2026-12-02 01:23:45 INFO Starting",
 * "[2026-12-02T01:23:45Z] ERROR db: timeout", "I1202 01:23:45.123456 1234 main.go:12] msg",
 * "Dec  2 01:23:45 host sshd[123]: Accepted" ("2026-12-02 is the day" is prose: no time;
 * stamp_sentence says when a line that is also prose is read) */
static int log_line(const char *s, size_t n) {
    long r = log_stamp(s, n);
    if (r <= 0) return 0;
    size_t i = (size_t)r;
    if (i < n && (s[i] == '.' || s[i] == ',')) {   /* fraction */
        size_t d = ++i;
        while (i < n && isdigit((unsigned char)s[i])) i++;
        if (i == d) return 0;
    }
    if (i < n && s[i] == 'Z') i++;
    else if (i + 4 < n && (s[i] == '+' || s[i] == '-') && isdigit((unsigned char)s[i + 1])) {   /* +00:00, -0700 */
        i++;
        while (i < n && (isdigit((unsigned char)s[i]) || s[i] == ':')) i++;
    }
    if (s[0] == '[') {
        if (i == n || s[i] != ']') return 0;
        i++;
    }
    if (i == n || s[i] != ' ') return 0;
    return skip_sp(s, n, i) < n;
}
/* A bare "2026-12-02 01:23:45" (dashes, a space; no brackets, fraction or
 * zone) before a sentence, as prose writes it: "... is when it broke.",
 * "... The server crashed." Such a line on its own is read, timestamp and
 * all (it says when the sentence happened); a run of timestamped lines is a
 * log. With a log's marks it is a log line even alone: a level ("ERROR",
 * "Info"), a tag ("Error: ...", "db: ..."), key=value, a capitalised line
 * without a sentence's end ("... Server started"), or one word. */
static int stamp_sentence(const char *s, size_t n) {
    n = trim_end(s, n);
    if (n < 21 || log_stamp(s, n) != 19 || s[4] != '-' || s[10] != ' ' || s[19] != ' ') return 0;
    size_t j = skip_sp(s, n, 19);
    if (j == n) return 0;
    if (islower((unsigned char)s[j])) return 1;
    if (!isupper((unsigned char)s[j])) return 0;
    size_t e = j + 1;
    while (e < n && isalpha((unsigned char)s[e])) e++;
    if (e == n || s[e] != ' ' || (e - j > 1 && !islower((unsigned char)s[j + 1]))) return 0;
    static const char *const level[] = {"Info", "Warn", "Warning", "Error", "Debug", "Trace", "Fatal", "Critical", "Notice", NULL};
    for (int k = 0; level[k]; k++)
        if (strlen(level[k]) == e - j && memcmp(s + j, level[k], e - j) == 0) return 0;
    return !memchr(s + j, '=', n - j) && memchr(".!?", s[n - 1], 3) != NULL;
}
/* Is w[0, n) a command a prompt is followed by? 2: yes, 1: the start of one. */
static int shell_cmd(const char *w, size_t n) {
    static const char *const cmd[] = {
        "go", "npm", "npx", "yarn", "pnpm", "bun", "node", "deno", "make", "cmake", "ctest", "ninja", "cargo",
        "rustc", "rustup", "git", "gh", "python", "python3", "pip", "pip3", "pytest", "uv", "poetry", "tsc",
        "eslint", "prettier", "vitest", "jest", "docker", "kubectl", "terraform", "ls", "cd", "cat", "grep", "rg",
        "find", "echo", "export", "mkdir", "rm", "cp", "mv", "chmod", "curl", "wget", "ssh", "sudo", "brew", "apt",
        "apt-get", "dnf", "yum", "gcc", "g++", "clang", "java", "javac", "mvn", "gradle", "dotnet", "ruby", "bundle",
        "rails", "php", "composer", "swift", "flutter", "dart", "mix", "ghc", "cabal", "zig", "bash", "sh", "zsh",
        "tar", "systemctl", "journalctl", "valgrind", "gdb", "env", "psql", "mysql", "sqlite3", "redis-cli", "aws",
        "gcloud", "az", "heroku", "helm", "sed", "awk", "jq", "openssl", "ssh-keygen", "lsof", "netstat", "whoami",
        "ruff", "mypy", "tox", "nix", "xcodebuild", "adb", "vault", NULL};
    int r = 0;
    for (int k = 0; cmd[k] && r < 2; k++) {
        size_t l = strlen(cmd[k]);
        if (n <= l && memcmp(w, cmd[k], n) == 0) r = n == l ? 2 : 1;
    }
    return r;
}
static int command_words(const char *s, size_t n, size_t from);
/* A shell prompt with a command: "$ go test ./...", "% make", "$ ./run.sh -v" ("$5", "$HOME",
 * "$ is a sign" and "% of them" are prose). After "$ " any lower-case
 * command name counts when the line reads as a command (command_words):
 * no list holds every tool ("$ openssl rand -hex 16", "$ heroku
 * auth:token", "$ env | grep -i region"), and those print secrets. "% "
 * keeps to the list ("% of them agree" is prose). */
static int prompt_line(const char *s, size_t n) {
    if (n < 3 || (s[0] != '$' && s[0] != '%') || s[1] != ' ') return 0;
    size_t e = word_to(s, n, 2);
    if (has_prefix(s + 2, n - 2, "./") || has_prefix(s + 2, n - 2, "../")) return e > 4;
    if (e > 2 && shell_cmd(s + 2, e - 2) == 2) return 1;
    if (s[0] != '$' || e == 2 || !islower((unsigned char)s[2])) return 0;
    for (size_t i = 2; i < e; i++)
        if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && !strchr("-_.", s[i])) return 0;
    return command_words(s, trim_end(s, n), 2);
}
/* The words of s[from, n) read as a command, not a sentence: no English
 * function word outside quoted strings, and no sentence's end after a
 * letter ("make sure the tests pass", "go to the page.", "ls is short for
 * list", "npm install fixed it." are prose). */
static int command_words(const char *s, size_t n, size_t from) {
    static const char *const fw[] = {"the", "a", "an", "to", "is", "are", "was", "were", "be", "it", "its", "this",
                                     "that", "and", "or", "but", "of", "for", "you", "your", "we", "our", "in",
                                     "on", "with", "into", "sure", "if", "then", "so", "will", "can", "should",
                                     "must", "not", "by", "at", "as", "from", "when", "which", "what", "ahead",
                                     "back", "away", "there", "here", "now", "please", "i", "me", "my", "us", "they",
                                     "them", "he", "she", NULL};
    if (n > 1 && memchr(".!?:", s[n - 1], 4) && isalpha((unsigned char)s[n - 2])) return 0;
    char q = 0;
    size_t e;
    for (size_t i = skip_sp(s, n, from); i < n; i = skip_sp(s, n, e)) {
        e = word_to(s, n, i);
        if (!q && (s[i] == '"' || s[i] == '\'')) q = s[i++];
        if (q) {
            if (e > i && s[e - 1] == q) q = 0;
            continue;
        }
        size_t b = i, l;
        while (b < e && !isalpha((unsigned char)s[b])) b++;
        for (l = b; l < e && isalpha((unsigned char)s[l]); l++) {}
        for (int k = 0; fw[k] && l > b; k++)
            if (strlen(fw[k]) == l - b && find_ci(s + b, l - b, fw[k], l - b)) return 0;
    }
    return 1;
}
/* A quote that is a command line, "> npm run build": '>' is the prompt of
 * cmd.exe, PowerShell and npm's script lines, and the quote says nothing a
 * listener wants. A known command first, then command_words: "> go test
 * ./..." and "> git commit -m \"fix the bug\"" are commands; "> make sure
 * the tests pass", "> go to the page.", "> ls is short for list", "> npm
 * install fixed it." are prose. */
static int quoted_cmd(const char *s, size_t n) {
    n = trim_end(s, n);
    size_t e = word_to(s, n, 0);
    if (e == 0 || shell_cmd(s, e) != 2) return 0;
    return command_words(s, n, e);
}
/* vitest's and jest's result lines, after their check mark (an emoji, left as GAP_MARK, or
 * '×' '√'): "✓ src/a.test.ts (3 tests) 5ms", "× src/b.spec.ts > adds", "✓ adds 1 + 2 (5 ms)".
 * Also as list items ("- ✓ src/a.test.ts"). Checklists in prose ("✓ Tests pass") are read. */
static int mark_line(const char *s, size_t n) {
    size_t i = n > 2 && (s[0] == '-' || s[0] == '*' || s[0] == '+') && s[1] == ' ' ? 2 : 0;   /* "- ✓ ...": pasted as a list */
    if (i < n && s[i] == GAP_MARK) i += 1;
    else if (has_prefix(s + i, n - i, "\xC3\x97 ")) i += 2;   /* × */
    else if (has_prefix(s + i, n - i, "\xE2\x88\x9A ")) i += 3;   /* √ */
    else return 0;
    i = skip_sp(s, n, i);
    n = trim_end(s, n);
    size_t e = word_to(s, n, i);
    if (e > i && (find_ci(s + i, e - i, ".test.", 6) || find_ci(s + i, e - i, ".spec.", 6) ||
                  find_ci(s + i, e - i, "_test.", 6)) &&
        (e == n || s[e + 1] == '(' || s[e + 1] == '>'))
        return 1;
    /* a duration at the end: "(5 ms)", "(5ms)", "5ms", "(1.2 s)" */
    if (n < i + 4) return 0;
    size_t k = n;
    int paren = s[k - 1] == ')';
    if (paren) k--;
    size_t u = k;
    while (u > i && isalpha((unsigned char)s[u - 1])) u--;
    if (!((k - u == 2 && memcmp(s + u, "ms", 2) == 0) || (k - u == 1 && s[u] == 's'))) return 0;
    if (u > i && s[u - 1] == ' ') u--;
    size_t d = u;
    while (d > i && (isdigit((unsigned char)s[d - 1]) || s[d - 1] == '.')) d--;
    if (d == u || d == i) return 0;
    return paren ? s[d - 1] == '(' : s[d - 1] == ' ';
}
/* A line with a sentence's shape, which ends a shell command's output: a
 * capital (or a letter of another script, or inline code) first, after any
 * markdown marks ("## ", "- ", "1. ", "> ", "**") and emoji, and a sentence's end last
 * (". ! ? : ..." or a CJK one; closing quotes, brackets and marks aside):
 * "The file has two lines.", "Then:", "**Note:** it is slow.", "修正します。"
 * Output seldom has both: "README.md  src", "total 8", "On branch main". */
static int prose_line(const char *s, size_t n) {
    n = trim_end(s, n);
    while (n > 0 && s[n - 1] && strchr(")]\"'*_`", s[n - 1])) n--;
    if (n == 0) return 0;
    static const char *const cjk_end[] = {"\xE3\x80\x82", "\xEF\xBC\x81", "\xEF\xBC\x9F", "\xE2\x80\xA6", NULL};   /* 。！？… */
    int end = memchr(".!?:", s[n - 1], 4) != NULL;
    for (int k = 0; cjk_end[k] && !end; k++) end = n >= 3 && memcmp(s + n - 3, cjk_end[k], 3) == 0;
    if (!end) return 0;
    size_t i = 0, k;
    int code = 0;
    for (;;) {   /* markdown marks before the first word */
        for (k = i; k < n && s[k] == '#'; k++) {}
        if (k > i && k < n && s[k] == ' ') { i = k + 1; continue; }
        if (i + 1 < n && strchr("-*+>", s[i]) && s[i + 1] == ' ') { i += 2; continue; }
        if (i < n && (s[i] == GAP_MARK || s[i] == ' ')) { i++; continue; }   /* "✅ All tests pass." */
        for (k = i; k < n && isdigit((unsigned char)s[k]); k++) {}
        if (k > i && k + 1 < n && (s[k] == '.' || s[k] == ')') && s[k + 1] == ' ') { i = k + 2; continue; }
        if (i < n && (s[i] == '*' || s[i] == '_' || s[i] == '`')) { code |= s[i] == '`'; i++; continue; }
        break;
    }
    if (i >= n) return 0;
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x80 || (code && isalnum(c))) return 1;
    return isupper(c) && (i + 1 == n || islower((unsigned char)s[i + 1]) || s[i + 1] == ' ' || s[i + 1] == '\'');
}
/* Is this the extension of a source file a compiler or linter names? (exact: 2; a start of one: 1) */
static int src_ext(const char *s, size_t n) {
    static const char *const ext[] = {"c", "h", "cc", "cpp", "cxx", "hpp", "hh", "m", "mm", "go", "rs", "py", "js",
                                      "jsx", "mjs", "cjs", "ts", "tsx", "mts", "cts", "java", "kt", "swift", "rb",
                                      "php", "cs", "scala", "zig", "dart", "lua", "sh", "vue", "svelte", "hs", "ml",
                                      "ex", "exs", NULL};
    int r = 0;
    for (int k = 0; ext[k] && r < 2; k++) {
        size_t l = strlen(ext[k]);
        if (n <= l && memcmp(s, ext[k], n) == 0) r = n == l ? 2 : 1;
    }
    return r;
}
/* A line that is test runner or compiler output beyond doubt (after its
 * indentation; indent: how much there was). */
static int tool_line(const char *s, size_t n, size_t indent) {
    n = trim_end(s, n);
    if (n < 4) return 0;
    size_t i, e;
    if (log_line(s, n) || prompt_line(s, n) || mark_line(s, n)) return 1;
    /* go test: "--- FAIL: TestFoo (0.00s)", "=== RUN   TestFoo", the package lines */
    if (has_prefix(s, n, "--- FAIL: ") || has_prefix(s, n, "--- PASS: ") || has_prefix(s, n, "--- SKIP: ")) {
        i = word_to(s, n, 10);
        return i > 10 && i + 3 < n && s[i + 1] == '(' && s[n - 1] == ')' && duration_len(s + i + 2, n - i - 2) == n - i - 3;
    }
    if (has_prefix(s, n, "=== RUN ") || has_prefix(s, n, "=== PAUSE ") || has_prefix(s, n, "=== CONT ") ||
        has_prefix(s, n, "=== NAME ")) {
        i = skip_sp(s, n, word_to(s, n, 4));
        return i < n && word_to(s, n, i) == n;
    }
    if (go_pkg_line(s, n)) return 1;
    /* Jest: "PASS src/a.test.ts", "FAIL src/b.spec.js (5.2 s)" */
    if (has_prefix(s, n, "PASS ") || has_prefix(s, n, "FAIL ")) {
        e = word_to(s, n, 5);
        if (!find_ci(s + 5, e - 5, ".test.", 6) && !find_ci(s + 5, e - 5, ".spec.", 6)) return 0;
        return e == n || (s[e + 1] == '(' && s[n - 1] == ')' && n - e < 16);
    }
    /* pytest's progress: "tests/test_x.py .F.s    [ 40%]" */
    if ((e = word_to(s, n, 0)) > 3 && memcmp(s + e - 3, ".py", 3) == 0 && e + 1 < n && s[n - 1] == ']' && s[n - 2] == '%') {
        i = e + 1;
        while (i < n && strchr(".FEsxX", s[i])) i++;
        i = i > e + 1 ? skip_sp(s, n, i) : 0;
        return i && s[i] == '[';
    }
    /* pytest: "E   AssertionError: ...", "FAILED tests/a.py::test_x - ...", "==== 1 failed in 0.1s ====",
     * "____ test_x ____" */
    if (s[0] == 'E' && has_prefix(s, n, "E   ")) return 1;
    if (has_prefix(s, n, "FAILED ") || has_prefix(s, n, "PASSED ") || has_prefix(s, n, "ERROR ") ||
        has_prefix(s, n, "SKIPPED ") || has_prefix(s, n, "XFAIL ") || has_prefix(s, n, "XPASS ")) {
        i = word_to(s, n, 0) + 1;
        e = word_to(s, n, i);
        return find_ci(s + i, e - i, "::", 2) != NULL;
    }
    if ((s[0] == '=' || s[0] == '_') && n >= 13) {
        /* a run of 5 or more on both sides, around pytest's words ("=== Summary ===" is a heading) */
        char c = s[0];
        size_t a = 0, b = n;
        while (a < n && s[a] == c) a++;
        while (b > a && s[b - 1] == c) b--;
        if (a < 5 || n - b < 5 || b <= a + 2 || s[a] != ' ' || s[b - 1] != ' ') return 0;
        static const char *const w[] = {"test", "passed", "failed", "error", "FAILURES", "ERRORS", "short test summary",
                                        "warnings summary", "skipped", "no tests ran", NULL};
        for (int k = 0; w[k]; k++)
            if (find_ci(s + a, b - a, w[k], strlen(w[k]))) return 1;
        return 0;
    }
    /* cargo test: "test result: FAILED. 1 passed; ...", "test tests::foo ... ok", "---- tests::foo stdout ----" */
    if (has_prefix(s, n, "test result: ok. ") || has_prefix(s, n, "test result: FAILED. ")) return 1;
    if (has_prefix(s, n, "test ")) {
        e = word_to(s, n, 5);
        if (e == 5 || !has_prefix(s + e, n - e, " ... ")) return 0;
        const char *r = s + e + 5;
        size_t rn = n - e - 5;
        return (rn == 2 && memcmp(r, "ok", 2) == 0) || (rn == 6 && memcmp(r, "FAILED", 6) == 0) ||
               has_prefix(r, rn, "ignored") || has_prefix(r, rn, "bench:");
    }
    if (has_prefix(s, n, "---- ") && n > 10 && memcmp(s + n - 5, " ----", 5) == 0) {
        e = word_to(s, n, 5);
        return has_prefix(s + e, n - e, " stdout ----") || has_prefix(s + e, n - e, " stderr ----");
    }
    /* npm: "npm ERR! code ELIFECYCLE", "npm WARN deprecated ...", npm 10's "npm error code 1" */
    if (has_prefix(s, n, "npm ERR! ") || has_prefix(s, n, "npm WARN ")) return 1;
    if (has_prefix(s, n, "npm error ") || has_prefix(s, n, "npm warn ")) {
        static const char *const w[] = {"code ", "path ", "command ", "errno ", "syscall ", "signal ",
                                        "A complete log ", "deprecated ", "ERESOLVE", "Missing script", NULL};
        i = s[4] == 'e' ? 10 : 9;
        for (int k = 0; w[k]; k++)
            if (has_prefix(s + i, n - i, w[k])) return 1;
        return 0;
    }
    /* eslint's "  12:5  error  'x' is defined but never used  no-unused-vars" */
    if (indent && isdigit((unsigned char)s[0])) {
        i = 0;
        while (i < n && isdigit((unsigned char)s[i])) i++;
        if (i == n || s[i] != ':') return 0;
        e = ++i;
        while (i < n && isdigit((unsigned char)s[i])) i++;
        if (i == e || i + 2 > n || s[i] != ' ' || s[i + 1] != ' ') return 0;
        i = skip_sp(s, n, i);
        return has_prefix(s + i, n - i, "error  ") || has_prefix(s + i, n - i, "warning  ");
    }
    /* rustc's "  --> src/main.rs:4:18" (where its error is; the "error[E0308]: ..." line before it is read) */
    if (has_prefix(s, n, "--> ") || has_prefix(s, n, "::: ")) return diag_loc(s + 4, n - 4, 0) == n - 4;
    /* make: "make: *** [Makefile:12: all] Error 1", "make[1]: *** ...", "make[1]: Entering directory '/x'" */
    if (has_prefix(s, n, "make: *** ")) return 1;
    if (has_prefix(s, n, "make[")) {
        i = 5;
        while (i < n && isdigit((unsigned char)s[i])) i++;
        return i > 5 && has_prefix(s + i, n - i, "]: ");
    }
    /* a Python frame without its "Traceback" line: "File \"/app/main.py\", line 10, in main" */
    if (has_prefix(s, n, "File \"")) {
        const char *q = memchr(s + 6, '"', n - 6);
        return q && (size_t)(s + n - q) > 8 && has_prefix(q, 8, "\", line ") && isdigit((unsigned char)q[8]);
    }
    /* tsc "src/a.ts(12,5): error TS2322: ...", "src/a.ts:12:5 - error TS2322: ...", compilers
     * "src/a.c:12:5: error: ...", "x.c:3: warning: ...", go build "./main.go:12:5: undefined: x" */
    if ((e = diag_loc(s, n, 0)) != 0) {
        const char *r = s + e;
        size_t rn = n - e;
        if (s[e - 1] != ':') return has_prefix(r, rn, " - error TS") || has_prefix(r, rn, " - warning TS");
        if (has_prefix(r, rn, " error TS") || has_prefix(r, rn, " warning TS") || has_prefix(r, rn, " error: ") ||
            has_prefix(r, rn, " warning: ") || has_prefix(r, rn, " fatal error: ") || has_prefix(r, rn, " note: ") ||
            has_prefix(r, rn, " error[E"))
            return 1;
        /* Python's "app.py:12: SyntaxError", "a.py:3: DeprecationWarning: ..." */
        if (rn > 6 && r[0] == ' ' && isupper((unsigned char)r[1])) {
            size_t we = 1;
            while (we < rn && isalnum((unsigned char)r[we])) we++;
            if ((we == rn || r[we] == ':') &&
                ((we > 6 && memcmp(r + we - 5, "Error", 5) == 0) || (we > 8 && memcmp(r + we - 7, "Warning", 7) == 0) ||
                 (we > 10 && memcmp(r + we - 9, "Exception", 9) == 0)))
                return 1;
        }
        return diag_loc(s, n, 1) == e && find_ci(s, e, ".go:", 4) != NULL;   /* go build, go vet */
    }
    return 0;
}
/* A line that starts a block of tool output only over a line that tool_line takes:
 * cargo's "running 3 tests", a lone "FAIL" or "PASS" (held; the next line decides) */
static int tool_lone(const char *t, size_t n) {
    n = trim_end(t, n);
    if (n == 4) return memcmp(t, "FAIL", 4) == 0 || memcmp(t, "PASS", 4) == 0;
    if (!has_prefix(t, n, "running ")) return 0;
    size_t i = 8, d = i;
    while (i < n && isdigit((unsigned char)t[i])) i++;
    return i > d && (n - i == 5 || n - i == 6) && has_prefix(t + i, n - i, " test") && (n - i == 5 || t[n - 1] == 's');
}
/* Does the line go on a block of tool output? (After tool_line has said no.) */
static int tool_goes_on(const char *t, size_t tn, size_t indent) {
    size_t n = trim_end(t, tn);
    if (indent) return 1;   /* test logs, source excerpts, failure details */
    if ((n == 4 && (memcmp(t, "PASS", 4) == 0 || memcmp(t, "FAIL", 4) == 0)) || (n == 9 && memcmp(t, "failures:", 9) == 0) ||
        (n == 10 && memcmp(t, "successes:", 10) == 0))
        return 1;
    if (has_prefix(t, n, "exit status ") || has_prefix(t, n, "running ")) {   /* "exit status 1", "running 3 tests" */
        size_t i = t[0] == 'e' ? 12 : 8, d = i;
        while (i < n && isdigit((unsigned char)t[i])) i++;
        if (i == d) return 0;
        return t[0] == 'e' ? i == n : (has_prefix(t + i, n - i, " test") && (n - i == 5 || (n - i == 6 && t[n - 1] == 's')));
    }
    if ((has_prefix(t, n, "coverage: ") && find_ci(t, n, "% of statements", 15)) || has_prefix(t, n, "error: test failed, to rerun") ||
        (has_prefix(t, n, "platform ") && find_ci(t, n, " -- Python ", 11)) || has_prefix(t, n, "rootdir: ") ||
        (has_prefix(t, n, "collected ") && n > 16 && memcmp(t + n - 5, "items", 5) == 0) ||
        has_prefix(t, n, "note: "))   /* a compiler's note under its error */
        return 1;
    /* rustc's source excerpt: "4 |     let x: i32 = \"a\";" (a line number at column 0) */
    size_t d = 0;
    while (d < n && isdigit((unsigned char)t[d])) d++;
    if (d && d + 1 < n && t[skip_sp(t, n, d)] == '|' && skip_sp(t, n, d) > d) return 1;
    /* "tests/test_x.py:12: AssertionError" (pytest's failure location) */
    size_t e = diag_loc(t, n, 0);
    return e && t[e - 1] == ':';
}

/* May a line that starts t[0, n) (more may come unless fin) be one that
 * tool_line takes? -1: not known yet. The answer for a prefix never changes
 * with what follows it (what waits, waits for a line end), so it does not
 * depend on where the input was split. A first word that may be a path with
 * a location ("src/a.ts(12,5):", "./main.go:3:1:") waits while it is letters,
 * digits, "_-/" and has no '.' without a '/' before it: a sentence's last
 * word ("Done.") never waits. */
static int tool_cand(const char *t, size_t n, size_t indent, int fin) {
#define P_(x) {x, sizeof x - 1}
    static const struct {
        const char *s;
        size_t l;
    } pre[] = {P_("=== "), P_("ok  "), P_("FAIL "), P_("PASS "), P_("?  "), P_("E   "), P_("FAILED "), P_("PASSED "),
               P_("ERROR "), P_("SKIPPED "), P_("XFAIL "), P_("XPASS "), P_("test "), P_("---- "), P_("npm ERR! "),
               P_("npm WARN "), P_("npm error "), P_("npm warn "), P_("===="), P_("___"), P_("--> "), P_("::: "),
               P_("make: *** "), P_("make["), P_("File \""), P_("$ "), P_("% "), P_("running "),
               P_("\xC3\x97 "), P_("\xE2\x88\x9A "),
               /* a list item that opens with a mark waits for its line end: "- ✓ src/a.test.ts" */
               P_("- \x01"), P_("* \x01"), P_("+ \x01"), P_("- \xC3\x97 "), P_("* \xC3\x97 "), P_("+ \xC3\x97 "),
               P_("- \xE2\x88\x9A "), P_("* \xE2\x88\x9A "), P_("+ \xE2\x88\x9A "), {NULL, 0}};
#undef P_
    for (int k = 0; pre[k].s; k++) {
        if (t[0] != pre[k].s[0]) continue;   /* most lines: one compare each */
        size_t l = pre[k].l, m = n < l ? n : l;
        if (memcmp(t, pre[k].s, m) == 0) {
            if (m == l) return 1;
            if (!fin) return -1;
        }
    }
    if (fin && trim_end(t, n) == 4 && (memcmp(t, "FAIL", 4) == 0 || memcmp(t, "PASS", 4) == 0)) return 1;
    if (indent && t[0] == GAP_MARK) return 1;   /* jest's "  ✓ adds 1 + 2 (5 ms)" */
    long st = log_stamp(t, n);   /* a log line: "2026-12-02 01:23:45 ...", "[...] ..." */
    if (st) return st > 0 ? 1 : fin ? 0 : -1;
    if (indent && isdigit((unsigned char)t[0])) {   /* eslint: "12:5  error ..." */
        size_t i = 0;
        while (i < n && isdigit((unsigned char)t[i])) i++;
        if (i == n) return fin ? 0 : -1;
        return t[i] == ':';
    }
    /* a path: "./" or "../", or a directory before its first '.', or a source file's
     * name ("main.c:3:5:", "a.test.ts(1,2):"): what follows its '.' is a start of a
     * known extension (or "test." "spec." "d.") while it comes */
    size_t i = 0, dot = 0;   /* dot: after the last '.' of a name without a directory */
    int dir = 0;
    if (!fin && n < 3 && t[0] == '.' && (n == 1 || t[1] == '.' || t[1] == '/')) return -1;   /* "./" or "../" may come */
    if (has_prefix(t, n, "./") || has_prefix(t, n, "../")) dir = 1, i = t[1] == '/' ? 2 : 3;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '/') {
            if (dot) return 0;
            dir = 1;
        } else if (c == '.' && !dir) {
            if (i == 0 || (dot && !(i - dot == 1 && t[dot] == 'd') &&
                           !(i - dot == 4 && (memcmp(t + dot, "test", 4) == 0 || memcmp(t + dot, "spec", 4) == 0))))
                return 0;
            dot = i + 1;
        } else if (c == '(' || c == ':') return dir ? i > 0 : dot && src_ext(t + dot, i - dot) == 2;
        else if (c == ' ') return dir && i > 3 && memcmp(t + i - 3, ".py", 3) == 0;   /* pytest's progress */
        else if (!(isalnum(c) || c == '_' || c == '-' || c == '.')) return 0;
        else if (dot && !dir && !src_ext(t + dot, i + 1 - dot) && !(i == dot && t[i] == 'd') &&
                 !(i + 1 - dot <= 4 && (memcmp(t + dot, "test", i + 1 - dot) == 0 || memcmp(t + dot, "spec", i + 1 - dot) == 0)))
            return 0;
    }
    return fin ? 0 : -1;
}

int text_lc_cand(const char *t, size_t tn, size_t indent, int fin, int mark, int yaml_key, int quoted) {
    unsigned char c = (unsigned char)t[0];
    int cand = 0;
    static const char *const pre[] = {"diff --git ", "@@ -", "--- ", "+++ ", "Traceback (most recent call last):",
                                      "goroutine ", "[signal ", "stack backtrace:", NULL};
    for (int k = 0; pre[k] && !cand; k++) {
        size_t l = strlen(pre[k]), m = tn < l ? tn : l;
        if (memcmp(t, pre[k], m) == 0) {
            if (m < l && !fin) return -1;
            cand = m == l;
        }
    }
    /* a line after an emoji: vitest's "✓ src/a.test.ts (3 tests) 5ms" (the mark is left before it);
     * it waits only while its first word may be a test file's path ("✅ All done" does not) */
    if (!cand && mark && indent == 1) {
        size_t w = 0;
        while (w < tn && (isalnum((unsigned char)t[w]) || t[w] == '_' || t[w] == '.' || t[w] == '/' || t[w] == '-')) w++;
        if (w == tn && !fin) return -1;
        cand = w < tn && t[w] == ' ' &&
               (find_ci(t, w, ".test.", 6) || find_ci(t, w, ".spec.", 6) || find_ci(t, w, "_test.", 6));
    }
    if (!cand) {
        int tc = tool_cand(t, tn, indent, fin);
        if (tc < 0) return -1;
        cand = tc;
    }
    if ((c == '-' || c == '+') && !cand) {
        if (tn < 3 && !fin) return -1;
        cand = tn >= 3 && t[1] != c && (t[1] != ' ' || t[2] == ' ');
    }
    if (indent > 0 && (c == 'a' || (yaml_key && (isalpha(c) || c == '_')))) cand = 1;
    if (!cand && quoted && islower(c)) {   /* "> npm run build": its first word decides */
        size_t e = word_to(t, tn, 0);
        if (e == tn && !fin) return shell_cmd(t, e) ? -1 : 0;
        cand = shell_cmd(t, e) == 2;
    }
    return cand;
}

int text_lc_kind(const char *s, size_t full, size_t i, int mark, int yaml_key, int quoted, int *hold) {
    const char *t = s + i;
    size_t tf = full - i;
    *hold = UC_NONE;
    if (has_prefix(t, tf, "diff --git ") || is_hunk(t, tf) || is_file_header(t, tf)) return UC_DIFF;
    if (has_prefix(t, tf, "Traceback (most recent call last):")) return UC_TRACE;
    if (is_go_signal_line(t, tf)) return UC_GO;
    if (stamp_sentence(t, tf)) {   /* read unless another log line follows */
        *hold = UC_TOOL;
        return UC_NONE;
    }
    if (tool_line(t, tf, i)) return prompt_line(t, trim_end(t, tf)) ? UC_SHELL : UC_TOOL;
    if (mark && mark_line(s - 1, full + 1)) return UC_TOOL;   /* "✓ src/a.test.ts (3 tests) 5ms" */
    if (quoted && quoted_cmd(t, tf)) return UC_SHELL;
    if (is_goroutine_header(t, tf) || (trim_end(t, tf) == 16 && has_prefix(t, tf, "stack backtrace:")) ||
        diffu_header(t, tf, "--- ") || tool_lone(t, tf)) {
        *hold = t[0] == 'g' ? UC_GO : t[0] == 's' ? UC_RUST : t[0] == '-' ? UC_DIFF : UC_TOOL;
        return UC_NONE;
    }
    if (is_diff_code_line(t, tf)) return UC_DIFF_LINES;
    if (i > 0 && is_frame_line(t, tf)) return UC_FRAMES;
    if (i > 0 && yaml_key && text_lc_yaml_key(t, tf, 0)) return UC_YAML;
    return UC_NONE;
}
