/* lang_index.c - binary search of the generated NLLB language table. */
#include <string.h>

#include "io/lang_codes.h"

int mt_lang_index(const char *code) {
    if (!code) return -1;
    int lo = 0, hi = MT_NUM_LANG_CODES;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(mt_lang_codes[mt_lang_codes_sorted[mid]], code);
        if (c == 0) return mt_lang_codes_sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}
