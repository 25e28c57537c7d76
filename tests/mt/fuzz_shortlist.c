/* fuzz_shortlist.c - libFuzzer target: the --shortlist file parser
 * (nllb_shortlist_parse, what nllb_shortlist_read runs on a file's bytes).
 * The first input byte picks the vocabulary size (small ones reach the
 * range check), the rest is the file. A list that parses must hold only ids
 * inside the vocabulary and read back the same when written one per line; a
 * failure must leave no ids and say why. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nllb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const int vocabs[4] = {1, 300, 256206, 2147483647};
    int vocab = vocabs[data[0] & 3];
    int32_t *ids = (int32_t *)1;
    int n = -1;
    stts_error e;
    stts_error_clear(&e);
    if (nllb_shortlist_parse((const char *)data + 1, size - 1, vocab, "fuzz", &ids, &n, &e) != STTS_OK) {
        if (ids || n != 0 || !e.msg[0]) abort();
        return 0;
    }
    if (!ids || n <= 0) abort();
    char *text = malloc((size_t)n * 12 + 1);
    if (!text) abort();
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= vocab) abort();
        len += (size_t)sprintf(text + len, "%d\n", ids[i]);
    }
    int32_t *again = NULL;
    int m = 0;
    if (nllb_shortlist_parse(text, len, vocab, "again", &again, &m, &e) != STTS_OK || m != n ||
        memcmp(again, ids, sizeof *ids * (size_t)n) != 0)
        abort();
    free(again);
    free(text);
    free(ids);
    return 0;
}
