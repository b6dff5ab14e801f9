#include "lookup/ldap_cache.h"

#include "lib/hash.h"
#include "core/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    struct entry *next;             /* bucket chain */
    struct entry *lru_prev, *lru_next; /* lru_prev toward the most recent */
    uint64_t hash;
    double expires;
    void *value;
    size_t keylen;
    char key[];
} entry_t;

struct op_ldap_cache {
    entry_t **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
    size_t max;
    entry_t *mru, *lru; /* ends of the LRU list */
    void (*release)(void *);
};

static uint64_t hash_bytes(const char *k, size_t n)
{
    return op_hash_bytes(OP_HASH_INIT, k, n);
}

op_ldap_cache_t *op_ldap_cache_new(size_t max_entries, void (*release)(void *value))
{
    op_ldap_cache_t *c = op_calloc(1, sizeof *c);
    c->nbuckets = 64;
    c->buckets = op_calloc(c->nbuckets, sizeof *c->buckets);
    c->max = max_entries;
    c->release = release;
    return c;
}

static void lru_unlink(op_ldap_cache_t *c, entry_t *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        c->mru = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        c->lru = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(op_ldap_cache_t *c, entry_t *e)
{
    e->lru_prev = NULL;
    e->lru_next = c->mru;
    if (c->mru)
        c->mru->lru_prev = e;
    c->mru = e;
    if (c->lru == NULL)
        c->lru = e;
}

static entry_t **find_slot(op_ldap_cache_t *c, const char *key, size_t keylen, uint64_t h)
{
    entry_t **slot = &c->buckets[h & (c->nbuckets - 1)];
    while (*slot != NULL) {
        entry_t *e = *slot;
        if (e->hash == h && e->keylen == keylen && memcmp(e->key, key, keylen) == 0)
            return slot;
        slot = &e->next;
    }
    return slot;
}

/* Unlinks the entry at slot; returns its value. */
static void *remove_at(op_ldap_cache_t *c, entry_t **slot)
{
    entry_t *e = *slot;
    *slot = e->next;
    lru_unlink(c, e);
    void *v = e->value;
    free(e);
    c->count--;
    return v;
}

static void release(op_ldap_cache_t *c, void *v)
{
    if (c->release != NULL && v != NULL)
        c->release(v);
}

static void grow(op_ldap_cache_t *c)
{
    size_t n = c->nbuckets * 2;
    entry_t **b = op_calloc(n, sizeof *b);
    for (size_t i = 0; i < c->nbuckets; i++) {
        entry_t *e = c->buckets[i];
        while (e != NULL) {
            entry_t *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
}

static void evict(op_ldap_cache_t *c)
{
    while (c->count > c->max && c->lru != NULL) {
        entry_t *e = c->lru;
        release(c, remove_at(c, find_slot(c, e->key, e->keylen, e->hash)));
    }
}

void *op_ldap_cache_get(op_ldap_cache_t *c, const char *key, size_t keylen, double now)
{
    uint64_t h = hash_bytes(key, keylen);
    entry_t **slot = find_slot(c, key, keylen, h);
    entry_t *e = *slot;
    if (e == NULL)
        return NULL;
    if (e->expires <= now) {
        release(c, remove_at(c, slot));
        return NULL;
    }
    lru_unlink(c, e);
    lru_push_front(c, e);
    return e->value;
}

void op_ldap_cache_put(op_ldap_cache_t *c, const char *key, size_t keylen, void *value, double expires)
{
    if (c->max == 0) {
        release(c, value);
        return;
    }
    uint64_t h = hash_bytes(key, keylen);
    entry_t **slot = find_slot(c, key, keylen, h);
    if (*slot != NULL)
        release(c, remove_at(c, slot));
    if (c->count >= c->nbuckets)
        grow(c);
    entry_t *e = op_malloc(sizeof *e + keylen);
    memcpy(e->key, key, keylen);
    e->keylen = keylen;
    e->hash = h;
    e->expires = expires;
    e->value = value;
    e->lru_prev = e->lru_next = NULL;
    slot = &c->buckets[h & (c->nbuckets - 1)];
    e->next = *slot;
    *slot = e;
    c->count++;
    lru_push_front(c, e);
    evict(c);
}

void *op_ldap_cache_take(op_ldap_cache_t *c, const char *key, size_t keylen)
{
    entry_t **slot = find_slot(c, key, keylen, hash_bytes(key, keylen));
    return *slot != NULL ? remove_at(c, slot) : NULL;
}

void op_ldap_cache_resize(op_ldap_cache_t *c, size_t max_entries)
{
    c->max = max_entries;
    evict(c);
}

void op_ldap_cache_clear(op_ldap_cache_t *c)
{
    while (c->lru != NULL) {
        entry_t *e = c->lru;
        release(c, remove_at(c, find_slot(c, e->key, e->keylen, e->hash)));
    }
}

size_t op_ldap_cache_count(const op_ldap_cache_t *c)
{
    return c->count;
}

void op_ldap_cache_free(op_ldap_cache_t *c)
{
    if (c == NULL)
        return;
    op_ldap_cache_clear(c);
    free(c->buckets);
    free(c);
}
