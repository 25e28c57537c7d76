/* test.h - the project's minimal test harness. A test program is a main()
 * that calls TEST_RUN(fn) for each case; checks record failures with file and
 * line and keep going. TEST_SUMMARY() prints "N passed, N failed" (a closing
 * line CI reads) and yields the exit status. A missing prerequisite is never
 * a silent pass: TEST_SKIP_ALL() says why and exits 77 at once; TEST_SKIP()
 * marks the current case skipped (the caller then returns), and
 * TEST_SUMMARY() exits 77 when any case skipped and none failed. Both print
 * a line "SKIPPED: <reason>", which scripts/check-skips reads: CTest reports
 * the test as skipped (SKIP_RETURN_CODE 77, set on every test by
 * tests/CMakeLists.txt), and scripts/test fails on a skip of anything the
 * install step provides (tests/allowed-skips.txt lists what may skip). */
#ifndef STTS_TEST_H
#define STTS_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_passed_ = 0, test_failed_ = 0, test_case_failed_ = 0;
static int test_skipped_ = 0, test_case_skipped_ = 0;
static const char *test_current_ = "";

#define CHECK(cond) do { \
    if (!(cond)) { \
        fprintf(stderr, "%s:%d: [%s] CHECK failed: %s\n", __FILE__, __LINE__, test_current_, #cond); \
        test_case_failed_ = 1; \
    } } while (0)

#define CHECK_MSG(cond, ...) do { \
    if (!(cond)) { \
        fprintf(stderr, "%s:%d: [%s] CHECK failed: %s: ", __FILE__, __LINE__, test_current_, #cond); \
        fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); \
        test_case_failed_ = 1; \
    } } while (0)

#define CHECK_EQ_INT(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); \
    CHECK_MSG(a_ == b_, "%lld != %lld", a_, b_); } while (0)

#define CHECK_EQ_STR(a, b) do { const char *a_ = (a), *b_ = (b); \
    CHECK_MSG(a_ && b_ && strcmp(a_, b_) == 0, "\n  got:      \"%s\"\n  expected: \"%s\"", \
              a_ ? a_ : "(null)", b_ ? b_ : "(null)"); } while (0)

#define CHECK_NEAR(a, b, tol) do { double a_ = (a), b_ = (b); \
    CHECK_MSG(fabs(a_ - b_) <= (tol), "%.9g vs %.9g (tol %g)", a_, b_, (double)(tol)); } while (0)

#define TEST_RUN(fn) do { \
    test_current_ = #fn; test_case_failed_ = 0; test_case_skipped_ = 0; fn(); \
    if (test_case_failed_) { test_failed_++; fprintf(stderr, "FAIL %s\n", #fn); } \
    else if (test_case_skipped_) test_skipped_++; \
    else test_passed_++; } while (0)

/* Marks the current case skipped (a prerequisite is missing); the caller
 * returns. Checks already made in the case still count as failures. */
#define TEST_SKIP(...) do { printf("SKIPPED: [%s] ", test_current_); printf(__VA_ARGS__); \
    printf("\n"); fflush(stdout); test_case_skipped_ = 1; } while (0)

#define TEST_SUMMARY() ( test_skipped_ \
    ? printf("%d passed, %d failed, %d skipped\n", test_passed_, test_failed_, test_skipped_) \
    : printf("%d passed, %d failed\n", test_passed_, test_failed_), \
    test_failed_ ? 1 : test_skipped_ ? 77 : 0 )

/* Reads a whole file (NUL-terminated, *n = its length); NULL when it cannot
 * be read. The caller frees. */
#if defined(__GNUC__)
__attribute__((unused))
#endif
static char *test_read_file(const char *path, size_t *n) {
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0)
        b = malloc((size_t)len + 1);
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (!b) return NULL;
    b[len] = '\0';
    *n = (size_t)len;
    return b;
}

#define TEST_SKIP_ALL(...) do { printf("SKIPPED: "); printf(__VA_ARGS__); printf("\n"); \
    fflush(stdout); exit(test_failed_ ? 1 : 77); } while (0)

#endif
