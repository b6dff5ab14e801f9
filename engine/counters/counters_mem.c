/* The counters' windows in memory: a write-through copy of the store's
 * buckets, so a check reads no RocksDB (counters_store.h).
 *
 * An entry holds every bucket of one (limit, subject) that the store holds
 * and that has not left its window.  It is loaded from the store the first
 * time the subject is asked about, and every bucket write goes to both
 * (op__bucket_put).  The store stays the truth: an entry may be dropped at
 * any time (too many entries, a reset, a failed write, a reload) and is
 * read again when next needed. */
#include "counters/counters_store.h"

#include "core/log.h"
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

#define BIAS ((uint64_t)1 << 63)
#define MIN_SLOTS 1024

struct op__win {
    op__win_t *next;
    uint64_t hash;
    op__wbucket_t *b;
    size_t n, cap;
    int64_t now;      /* the clock when last asked: old buckets go before the array grows */
    uint64_t dirty;   /* the last group with its writes (counters_group.c) */
    op__wbucket_t small[2];
    char key[]; /* limit 0 subject 0 */
};

static void win_free(op__win_t *e)
{
    if (e->b != e->small)
        free(e->b);
    free(e);
}

static int win_is(const op__win_t *e, uint64_t h, const char *limit, size_t ll, const char *subject)
{
    return e->hash == h && memcmp(e->key, limit, ll + 1) == 0 &&
           strcmp(e->key + ll + 1, subject) == 0;
}

void op__mem_dirty(op__win_t *e, uint64_t seq)
{
    e->dirty = seq;
}

/* What memory forgets is read again from the store: right only once the
 * groups that hold its writes are settled. */
static void forgetting(op_rocks_t *c)
{
    uint64_t s = op__unsettled_seq(c);
    if (s > c->load_after)
        c->load_after = s;
}

void op__mem_clear(op_rocks_t *c)
{
    forgetting(c);
    for (size_t i = 0; i < c->nslots; i++) {
        for (op__win_t *e = c->slots[i], *next; e != NULL; e = next) {
            next = e->next;
            win_free(e);
        }
    }
    free(c->slots);
    c->slots = NULL;
    c->nslots = 0;
    c->nwins = 0;
}

void op__mem_drop(op_rocks_t *c, const char *limit, const char *subject)
{
    if (c->nslots == 0)
        return;
    uint64_t h = op__subject_hash(c, limit, subject);
    size_t ll = strlen(limit);
    for (op__win_t **p = &c->slots[h & (c->nslots - 1)]; *p != NULL; p = &(*p)->next) {
        if (win_is(*p, h, limit, ll, subject)) {
            op__win_t *e = *p;
            *p = e->next;
            forgetting(c);
            win_free(e);
            c->nwins--;
            return;
        }
    }
}

/* Over the cap, a whole chain goes (the one the new entry joins is kept):
 * cheap, and any entry can be read again from the store. */
static void evict(op_rocks_t *c, size_t keep)
{
    for (size_t tries = 0; c->nwins >= c->max_wins && tries < c->nslots; tries++) {
        size_t i = c->evict_at++ & (c->nslots - 1);
        if (i == keep)
            continue;
        int dirty = 0; /* a window with writes not yet in the store stays */
        for (op__win_t *e = c->slots[i]; e != NULL && !dirty; e = e->next)
            dirty = e->dirty > c->settled_seq;
        if (dirty)
            continue;
        for (op__win_t *e = c->slots[i], *next; e != NULL; e = next) {
            next = e->next;
            win_free(e);
            c->nwins--;
        }
        c->slots[i] = NULL;
    }
}

static void grow(op_rocks_t *c)
{
    size_t n = c->nslots ? c->nslots * 2 : MIN_SLOTS;
    op__win_t **s = op_calloc(n, sizeof *s);
    for (size_t i = 0; i < c->nslots; i++) {
        for (op__win_t *e = c->slots[i], *next; e != NULL; e = next) {
            next = e->next;
            e->next = s[e->hash & (n - 1)];
            s[e->hash & (n - 1)] = e;
        }
    }
    free(c->slots);
    c->slots = s;
    c->nslots = n;
}

static void push(op__win_t *e, int64_t start, int64_t count, int64_t leaves)
{
    if (e->n == e->cap && e->n > 0 && e->b[0].leaves <= e->now)
        op__mem_prune(e, e->now);
    if (e->n == e->cap) {
        size_t cap = e->cap * 2;
        op__wbucket_t *nb = op_malloc(cap * sizeof *nb);
        memcpy(nb, e->b, e->n * sizeof *nb);
        if (e->b != e->small)
            free(e->b);
        e->b = nb;
        e->cap = cap;
    }
    e->b[e->n++] = (op__wbucket_t){start, count, leaves};
}

/* Every bucket of the subject in the store, oldest first. */
static int load(op_rocks_t *c, const char *limit, const char *subject, op__win_t *e)
{
    /* An entry dropped with writes in a group not yet written: the store
     * has not got them (no waiting here: the request answers unavailable). */
    if ((c->group && c->load_after > c->settled_seq) || c->db == NULL)
        return OP_COUNTERS_EIO;
    op__key_t lo, hi;
    op__key_init(&lo, 'c');
    op__key_str(&lo, limit);
    op__key_str(&lo, subject);
    hi = lo;
    hi.b[hi.n - 1] = 1; /* just past every key of this subject */
    op__scan_t sc;
    for (op__scan_open(c, &sc, &lo, &hi, 0); rocksdb_iter_valid(sc.it); rocksdb_iter_next(sc.it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(sc.it, &kl), *val = rocksdb_iter_value(sc.it, &vl);
        if (kl != lo.n + 8 || vl != 16)
            continue;
        push(e, (int64_t)(op__get_be(k + kl - 8) - BIAS), op__get_le(val), op__get_le(val + 8));
    }
    return op__scan_close(c, &sc);
}

int op__mem_get(op_rocks_t *c, const char *limit, const char *subject, op__win_t **out)
{
    uint64_t h = op__subject_hash(c, limit, subject);
    size_t ll = strlen(limit), sl = strlen(subject);
    if (c->nslots != 0) {
        for (op__win_t *e = c->slots[h & (c->nslots - 1)]; e != NULL; e = e->next) {
            if (win_is(e, h, limit, ll, subject)) {
                *out = e;
                return 0;
            }
        }
    }
    op__win_t *e = op_calloc(1, sizeof *e + ll + sl + 2);
    e->hash = h;
    e->b = e->small;
    e->cap = sizeof e->small / sizeof e->small[0];
    memcpy(e->key, limit, ll + 1);
    memcpy(e->key + ll + 1, subject, sl + 1);
    int rc = load(c, limit, subject, e);
    if (rc < 0) {
        win_free(e);
        return rc;
    }
    if (c->nwins >= c->nslots)
        grow(c);
    size_t i = h & (c->nslots - 1);
    if (c->nwins >= c->max_wins)
        evict(c, i);
    e->next = c->slots[i];
    c->slots[i] = e;
    c->nwins++;
    *out = e;
    return 0;
}

void op__mem_touch(op__win_t *e, int64_t now)
{
    e->now = now;
}

void op__mem_prune(op__win_t *e, int64_t now)
{
    /* what the compaction filter drops from the store */
    size_t keep = 0;
    for (size_t i = 0; i < e->n; i++)
        if (e->b[i].leaves > now && e->b[i].count > 0)
            e->b[keep++] = e->b[i];
    e->n = keep;
}

const op__wbucket_t *op__mem_buckets(const op__win_t *e, size_t *n)
{
    *n = e->n;
    return e->b;
}

int64_t op__mem_count(const op__win_t *e, int64_t start)
{
    for (size_t i = e->n; i-- > 0;)
        if (e->b[i].start == start)
            return e->b[i].count;
    return -1;
}

void op__mem_set(op__win_t *e, int64_t start, int64_t count, int64_t leaves)
{
    size_t i = e->n;
    while (i > 0 && e->b[i - 1].start > start)
        i--;
    if (i > 0 && e->b[i - 1].start == start) {
        if (count > 0) {
            e->b[i - 1].count = count;
            e->b[i - 1].leaves = leaves;
        } else {
            memmove(&e->b[i - 1], &e->b[i], (e->n - i) * sizeof *e->b);
            e->n--;
        }
        return;
    }
    if (count <= 0)
        return;
    push(e, 0, 0, 0); /* room at the end */
    memmove(&e->b[i + 1], &e->b[i], (e->n - 1 - i) * sizeof *e->b);
    e->b[i] = (op__wbucket_t){start, count, leaves};
}
