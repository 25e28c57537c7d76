/* cache.c - LRU translation cache: a chained hash table for lookup and a
 * doubly linked list for recency, both O(1) per operation. */
#define _POSIX_C_SOURCE 200809L
#include "cache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char *key, *val;
    uint64_t hash;
    struct entry *hnext;          /* bucket chain */
    struct entry *prev, *next;    /* recency: head = most recent */
} entry;

struct mt_cache {
    size_t cap, size, nbuckets;
    entry **buckets;
    entry *head, *tail;
};

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

mt_cache *mt_cache_new(size_t capacity) {
    mt_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->cap = capacity ? capacity : 1;
    c->nbuckets = 16;
    while (c->nbuckets < c->cap * 2) c->nbuckets *= 2;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    if (!c->buckets) { free(c); return NULL; }
    return c;
}

void mt_cache_free(mt_cache *c) {
    if (!c) return;
    for (entry *e = c->head, *n; e; e = n) {
        n = e->next;
        free(e->key);
        free(e->val);
        free(e);
    }
    free(c->buckets);
    free(c);
}

static void unlink_lru(mt_cache *c, entry *e) {
    if (e->prev) e->prev->next = e->next; else c->head = e->next;
    if (e->next) e->next->prev = e->prev; else c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_front(mt_cache *c, entry *e) {
    e->next = c->head;
    e->prev = NULL;
    if (c->head) c->head->prev = e;
    c->head = e;
    if (!c->tail) c->tail = e;
}

static entry **find_slot(mt_cache *c, const char *key, uint64_t h) {
    entry **pp = &c->buckets[h & (c->nbuckets - 1)];
    while (*pp && !((*pp)->hash == h && strcmp((*pp)->key, key) == 0)) pp = &(*pp)->hnext;
    return pp;
}

const char *mt_cache_get(mt_cache *c, const char *source) {
    entry *e = *find_slot(c, source, fnv1a(source));
    if (!e) return NULL;
    unlink_lru(c, e);
    push_front(c, e);
    return e->val;
}

int mt_cache_put(mt_cache *c, const char *source, const char *translation) {
    uint64_t h = fnv1a(source);
    entry **pp = find_slot(c, source, h);
    char *val = strdup(translation);
    if (!val) return -1;
    if (*pp) {            /* update in place */
        free((*pp)->val);
        (*pp)->val = val;
        unlink_lru(c, *pp);
        push_front(c, *pp);
        return 0;
    }
    entry *e = calloc(1, sizeof *e);
    char *key = strdup(source);
    if (!e || !key) { free(e); free(key); free(val); return -1; }
    if (c->size == c->cap) {   /* evict the least recently used */
        entry *old = c->tail;
        entry **op = find_slot(c, old->key, old->hash);
        *op = old->hnext;
        unlink_lru(c, old);
        free(old->key);
        free(old->val);
        free(old);
        c->size--;
        pp = find_slot(c, source, h);   /* the chain may have changed */
    }
    e->key = key;
    e->val = val;
    e->hash = h;
    *pp = e;
    push_front(c, e);
    c->size++;
    return 0;
}

size_t mt_cache_size(const mt_cache *c) { return c->size; }
