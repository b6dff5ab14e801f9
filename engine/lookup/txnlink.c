/* Transaction links (txnlink.h): an alias table of keys to entries, with
 * the entries in write order for expiry and eviction.  Not the lookup
 * cache: nothing here waits, an entry has several keys, and it ages by
 * writes, not reads.  The keys come from mail (envelopes, instance ids),
 * so the buckets are chosen by the keyed hash. */
#include "lookup/txnlink.h"

#include "core/mem.h"
#include "lib/siphash.h"

#include <string.h>

typedef struct entry entry_t;

typedef struct key_node {
    struct key_node *next; /* in its bucket */
    entry_t *e;
    char *key;
} key_node_t;

struct entry {
    entry_t *prev, *next; /* least recently written first */
    uint64_t written_ms;
    key_node_t *keys[OP_TXNLINK_MAX_KEYS];
    size_t nkeys;
    op_txnlink_field_t *fields; /* strings owned */
    size_t nfields, cap;
};

struct op_txnlink {
    key_node_t **buckets;
    size_t nbuckets; /* a power of 2 */
    entry_t *oldest, *newest;
    size_t count, max_entries;
    uint64_t ttl_ms;
};

static uint64_t hash(const char *s)
{
    return op_siphash(s, strlen(s));
}

static int usable_key(const char *k)
{
    return k != NULL && *k != '\0' && strnlen(k, OP_TXNLINK_MAX_LEN + 1) <= OP_TXNLINK_MAX_LEN;
}

static key_node_t **slot(op_txnlink_t *t, const char *key)
{
    key_node_t **p = &t->buckets[hash(key) & (t->nbuckets - 1)];
    while (*p != NULL && strcmp((*p)->key, key) != 0)
        p = &(*p)->next;
    return p;
}

op_txnlink_t *op_txnlink_new(size_t max_entries, uint64_t ttl_ms)
{
    op_txnlink_t *t = op_calloc(1, sizeof *t);
    t->max_entries = max_entries ? max_entries : 1;
    t->ttl_ms = ttl_ms;
    t->nbuckets = 16;
    while (t->nbuckets < t->max_entries * 2)
        t->nbuckets *= 2;
    t->buckets = op_calloc(t->nbuckets, sizeof *t->buckets);
    return t;
}

static void list_remove(op_txnlink_t *t, entry_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        t->oldest = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        t->newest = e->prev;
    e->prev = e->next = NULL;
}

static void list_append(op_txnlink_t *t, entry_t *e)
{
    e->prev = t->newest;
    e->next = NULL;
    if (t->newest)
        t->newest->next = e;
    else
        t->oldest = e;
    t->newest = e;
}

static void node_free(op_txnlink_t *t, key_node_t *n)
{
    key_node_t **p = slot(t, n->key);
    *p = n->next;
    free(n->key);
    free(n);
}

static void entry_free(op_txnlink_t *t, entry_t *e)
{
    for (size_t i = 0; i < e->nkeys; i++)
        node_free(t, e->keys[i]);
    for (size_t i = 0; i < e->nfields; i++) {
        free((char *)e->fields[i].name);
        free((char *)e->fields[i].value);
    }
    free(e->fields);
    list_remove(t, e);
    t->count--;
    free(e);
}

/* The node no longer belongs to its entry; an entry left without keys goes. */
static void detach(op_txnlink_t *t, key_node_t *n)
{
    entry_t *e = n->e;
    for (size_t i = 0; i < e->nkeys; i++)
        if (e->keys[i] == n) {
            e->keys[i] = e->keys[--e->nkeys];
            break;
        }
    n->e = NULL;
    if (e->nkeys == 0)
        entry_free(t, e);
}

static void expire(op_txnlink_t *t, uint64_t now_ms)
{
    while (t->oldest != NULL && now_ms - t->oldest->written_ms >= t->ttl_ms)
        entry_free(t, t->oldest);
}

void op_txnlink_free(op_txnlink_t *t)
{
    if (t == NULL)
        return;
    while (t->oldest != NULL)
        entry_free(t, t->oldest);
    free(t->buckets);
    free(t);
}

static entry_t *find(op_txnlink_t *t, const char *const *keys, size_t nkeys)
{
    for (size_t i = 0; i < nkeys; i++) {
        if (!usable_key(keys[i]))
            continue;
        key_node_t *n = *slot(t, keys[i]);
        if (n != NULL)
            return n->e;
    }
    return NULL;
}

static void link_key(op_txnlink_t *t, entry_t *e, const char *key)
{
    key_node_t **p = slot(t, key);
    key_node_t *n = *p;
    if (n != NULL && n->e == e)
        return;
    if (e->nkeys == OP_TXNLINK_MAX_KEYS) /* the key keeps naming what it named */
        return;
    if (n != NULL) {
        detach(t, n);
    } else {
        n = op_calloc(1, sizeof *n);
        n->key = op_strdup(key);
        *p = n;
    }
    n->e = e;
    e->keys[e->nkeys++] = n;
}

static char *cut(const char *s)
{
    return op_strndup(s, strnlen(s, OP_TXNLINK_MAX_LEN));
}

static int set_field(entry_t *e, const op_txnlink_field_t *f)
{
    if (f->name == NULL || f->value == NULL)
        return 0;
    for (size_t i = 0; i < e->nfields; i++)
        if (strcmp(e->fields[i].name, f->name) == 0) {
            free((char *)e->fields[i].value);
            e->fields[i].value = cut(f->value);
            return 0;
        }
    if (e->nfields == OP_TXNLINK_MAX_FIELDS)
        return -1;
    if (e->nfields == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 8;
        e->fields = op_realloc(e->fields, e->cap * sizeof *e->fields);
    }
    e->fields[e->nfields].name = cut(f->name);
    e->fields[e->nfields].value = cut(f->value);
    e->nfields++;
    return 0;
}

int op_txnlink_put(op_txnlink_t *t, const char *const *keys, size_t nkeys,
                   const op_txnlink_field_t *fields, size_t nfields, uint64_t now_ms)
{
    size_t usable = 0;
    for (size_t i = 0; i < nkeys; i++)
        usable += usable_key(keys[i]);
    if (usable == 0)
        return -1;
    expire(t, now_ms);
    entry_t *e = find(t, keys, nkeys);
    if (e == NULL) {
        if (t->count == t->max_entries)
            entry_free(t, t->oldest);
        e = op_calloc(1, sizeof *e);
        t->count++;
        list_append(t, e);
    }
    /* Keep e off the eviction path while its keys move. */
    list_remove(t, e);
    list_append(t, e);
    e->written_ms = now_ms;
    for (size_t i = 0; i < nkeys; i++)
        if (usable_key(keys[i]))
            link_key(t, e, keys[i]);
    int rc = 0;
    for (size_t i = 0; i < nfields; i++)
        if (set_field(e, &fields[i]) != 0)
            rc = -1;
    return rc;
}

const op_txnlink_field_t *op_txnlink_get(op_txnlink_t *t, const char *const *keys, size_t nkeys,
                                         size_t *n, uint64_t now_ms)
{
    expire(t, now_ms);
    entry_t *e = find(t, keys, nkeys);
    *n = e ? e->nfields : 0;
    return e ? e->fields : NULL;
}

void op_txnlink_unlink(op_txnlink_t *t, const char *key)
{
    if (!usable_key(key))
        return;
    key_node_t *n = *slot(t, key);
    if (n == NULL)
        return;
    detach(t, n);
    node_free(t, n);
}

void op_txnlink_forget(op_txnlink_t *t, const char *key)
{
    if (!usable_key(key))
        return;
    key_node_t *n = *slot(t, key);
    if (n != NULL)
        entry_free(t, n->e);
}

size_t op_txnlink_count(const op_txnlink_t *t)
{
    return t->count;
}
