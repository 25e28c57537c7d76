/* cache.h - a small LRU map from a source sentence to its translation, so a
 * sentence Claude repeats (a recurring "Done." or "Let me check.") costs no
 * decoder time. Not thread-safe: owned by the translate thread. */
#ifndef PIPELINE_CACHE_H
#define PIPELINE_CACHE_H

#include <stddef.h>

typedef struct mt_cache mt_cache;

mt_cache *mt_cache_new(size_t capacity);   /* NULL on out of memory */
void mt_cache_free(mt_cache *c);
/* The cached translation (valid until the next put), or NULL. A hit
 * becomes the most recently used entry. */
const char *mt_cache_get(mt_cache *c, const char *source);
/* Stores a copy; evicts the least recently used entry when full. Returns 0,
 * or -1 on out of memory (the cache is then unchanged). */
int mt_cache_put(mt_cache *c, const char *source, const char *translation);
size_t mt_cache_size(const mt_cache *c);

#endif
