/* lineclass.h - the line shapes of code and machine output pasted without a
 * fence (a diff, YAML, a stack trace, a goroutine dump, test runner and
 * compiler output, log lines, shell prompts), for stream.c's block layer.
 * Internal to stts_text, not in include/. Every test here is a pure function
 * of the bytes it is given: stream.c keeps the state (which block is open,
 * what is held) and decides when a line is complete enough to ask. */
#ifndef STTS_TEXT_LINECLASS_H
#define STTS_TEXT_LINECLASS_H

#include <stddef.h>

/* Where stream.c dropped an emoji it leaves this byte in the line (control
 * bytes never reach it otherwise): vitest's "✓ src/a.test.ts" keeps its mark
 * so that the classifier can see it. */
#define GAP_MARK '\x01'

/* The kinds of unfenced code block (0: none). UC_TOOL: test runner, compiler
 * and log output; UC_SHELL: the same after a shell prompt, whose command's
 * output may have any shape. */
enum { UC_NONE, UC_DIFF, UC_DIFF_LINES, UC_YAML, UC_TRACE, UC_FRAMES, UC_GO, UC_RUST, UC_TOOL, UC_SHELL };

/* May the line t[0, tn) (after indent spaces; more may come unless fin)
 * start unfenced code? 1: it may (decide on its complete line with
 * text_lc_kind), 0: no, -1: not known until more bytes come. The answer for
 * a prefix never changes with what follows it, so it does not depend on
 * where the input was split. mark: an emoji opened the line (GAP_MARK is
 * right before the indentation); yaml_key: the line before was a bare
 * "key:" at column 0; quoted: the line is in a blockquote (t is past its
 * '>'), where a command line ("> npm run build") is a prompt's. */
int text_lc_cand(const char *t, size_t tn, size_t indent, int fin, int mark, int yaml_key, int quoted);

/* The kind of block the complete line s[0, full) starts (its text after i
 * spaces), or UC_NONE. When it may start one only if the next line bears it
 * out ("goroutine 1 [running]:", "stack backtrace:", "--- old.txt", a lone
 * "FAIL"), *hold is set to that kind and UC_NONE returned. mark, yaml_key
 * and quoted as for text_lc_cand (with mark, s[-1] is the GAP_MARK). */
int text_lc_kind(const char *s, size_t full, size_t i, int mark, int yaml_key, int quoted, int *hold);

/* Does the complete line t[0, n) (after indent spaces) bear out a held line
 * of that kind (the block's first frame, "+++ new.txt", tool output)? */
int text_lc_borne_out(int kind, const char *t, size_t n, size_t indent);

/* Does the complete line s[0, n) (indentation included) go on an open block
 * of that kind? 2: yes, and it is the block's last line; 3: yes, and from
 * it on the block is UC_SHELL (a prompt line came). gap: blank lines
 * came since the block's last line (only a Go dump goes on past them). */
int text_lc_goes_on(int kind, int gap, const char *s, size_t n);

/* "key:" or "key: value" as configuration files write them (bare: "key:"
 * with nothing after it). */
int text_lc_yaml_key(const char *s, size_t n, int bare);

#endif
