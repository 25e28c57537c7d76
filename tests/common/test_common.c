/* test_common.c - UTF-8 rules and error formatting shared by all stages. */
#include "stts_common.h"
#include "test.h"

static void utf8_valid(void) {
    uint32_t cp;
    CHECK_EQ_INT(stts_utf8_decode((const unsigned char *)"A", 1, &cp), 1); CHECK_EQ_INT(cp, 'A');
    CHECK_EQ_INT(stts_utf8_decode((const unsigned char *)"\xC3\xA9", 2, &cp), 2); CHECK_EQ_INT(cp, 0xE9);
    CHECK_EQ_INT(stts_utf8_decode((const unsigned char *)"\xE3\x81\x82", 3, &cp), 3); CHECK_EQ_INT(cp, 0x3042);
    CHECK_EQ_INT(stts_utf8_decode((const unsigned char *)"\xF0\x9F\x98\x80", 4, &cp), 4); CHECK_EQ_INT(cp, 0x1F600);
}

static void utf8_invalid(void) {
    uint32_t cp;
    CHECK_EQ_INT(stts_utf8_decode((const unsigned char *)"\xC0\xAF", 2, &cp), 0);      /* overlong */
    CHECK_EQ_INT(stts_utf8_decode((const unsigned char *)"\xED\xA0\x80", 3, &cp), 0);  /* surrogate */
    CHECK_EQ_INT(stts_utf8_decode((const unsigned char *)"\xF4\x90\x80\x80", 4, &cp), 0); /* > U+10FFFF */
    CHECK_EQ_INT(stts_utf8_decode((const unsigned char *)"\xE3\x81", 2, &cp), 0);      /* truncated */
    CHECK_EQ_INT(stts_utf8_decode((const unsigned char *)"\x80", 1, &cp), 0);          /* stray continuation */
    CHECK_EQ_INT(stts_utf8_valid_prefix((const unsigned char *)"ab\xE3\x81", 4), 2);
}

static void utf8_roundtrip(void) {
    char buf[4];
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp += 97) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        size_t n = stts_utf8_encode(cp, buf);
        uint32_t back = 0;
        CHECK_EQ_INT(stts_utf8_decode((unsigned char *)buf, n, &back), n);
        CHECK_EQ_INT(back, cp);
    }
}

static void error_format(void) {
    stts_error e;
    stts_error_clear(&e);
    CHECK_EQ_INT(stts_error_set(&e, STTS_ERR_IO, "cannot open %s", "x.json"), STTS_ERR_IO);
    CHECK_EQ_STR(e.msg, "cannot open x.json");
    CHECK_EQ_INT(e.code, STTS_ERR_IO);
    CHECK_EQ_INT(stts_error_set(NULL, STTS_ERR_FORMAT, "ignored"), STTS_ERR_FORMAT);
}

int main(void) {
    TEST_RUN(utf8_valid);
    TEST_RUN(utf8_invalid);
    TEST_RUN(utf8_roundtrip);
    TEST_RUN(error_format);
    return TEST_SUMMARY();
}
