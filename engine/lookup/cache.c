/* The lookup cache (cache.h): a SipHash table of entries, an LRU list of
 * the answered ones, and the waiters of the ones in flight.
 *
 * An entry is an answer (in the table and the LRU list) or an operation in
 * flight (in the table, or nowhere for a FRESH one; never evicted).  When
 * an operation completes, its entry leaves the table before any waiter runs
 * and the answer, if kept, goes in as a new entry: so a waiter that looks
 * the key up again from its callback finds the answer or starts anew, and
 * one that cancels another waiter still pending finds it on the list. */
#include "lookup/cache.h"

#include "core/mem.h"
#include "core/metrics.h"
#include "lib/siphash.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { ANSWER, FLIGHT, COMPLETING };

/* An answer shared by its entry and a completion in progress: a waiter's
 * callback may clear the cache while the others still have to get it. */
typedef struct {
    int refs;
    void *value;
    void (*release)(void *);
} box_t;

struct op_cache_entry {
    struct op_cache_entry *hnext;       /* bucket chain */
    struct op_cache_entry *prev, *next; /* LRU list, answers only (head = newest) */
    op_cache_t *c;
    uint64_t hash;
    int state;
    int in_table;
    /* an answer */
    box_t *box;
    uint64_t expires_ms;
    int negative;
    /* in flight */
    op_lookup_req_t *waiters, *wtail;
    size_t nwaiters;
    void *op;
    uint64_t started_us;    /* for the dependency's latency histogram */
    const char *error_kind; /* op_cache_flight_error */
    size_t keylen;
    unsigned char key[];
};

typedef struct op_cache_entry entry_t;

struct op_cache {
    op_cache_t *prev_cache, *next_cache; /* every cache (op_cache_each) */
    uv_loop_t *loop;
    op_cache_conf_t conf;
    op_cache_ops_t ops;
    void *owner;
    entry_t **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;    /* in the table */
    size_t nanswers;
    entry_t *lru_head, *lru_tail;
    uint64_t clock_offset_ms;
    op_cache_stats_t stats;
    op_metrics_dep_t dep; /* its dependency's operations and latency */
};

static op_cache_t *first_cache, *last_cache;

static uint64_t now_ms(const op_cache_t *c)
{
    return (c->loop != NULL ? uv_now(c->loop) : 0) + c->clock_offset_ms;
}

static void box_unref(box_t *b)
{
    if (--b->refs > 0)
        return;
    if (b->release != NULL && b->value != NULL)
        b->release(b->value);
    free(b);
}

/* ---- the table ---- */

static entry_t **find_slot(op_cache_t *c, const void *key, size_t keylen, uint64_t h)
{
    entry_t **p = &c->buckets[h & (c->nbuckets - 1)];
    while (*p != NULL && !((*p)->hash == h && (*p)->keylen == keylen &&
                           memcmp((*p)->key, key, keylen) == 0))
        p = &(*p)->hnext;
    return p;
}

static void table_grow(op_cache_t *c)
{
    size_t n = c->nbuckets * 2;
    entry_t **b = op_calloc(n, sizeof *b);
    for (size_t i = 0; i < c->nbuckets; i++)
        for (entry_t *e = c->buckets[i], *next; e != NULL; e = next) {
            next = e->hnext;
            e->hnext = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
}

static void table_insert(op_cache_t *c, entry_t *e)
{
    if (c->count >= c->nbuckets)
        table_grow(c);
    entry_t **slot = &c->buckets[e->hash & (c->nbuckets - 1)];
    e->hnext = *slot;
    *slot = e;
    e->in_table = 1;
    c->count++;
}

static void table_remove(op_cache_t *c, entry_t *e)
{
    if (!e->in_table)
        return;
    entry_t **p = find_slot(c, e->key, e->keylen, e->hash);
    *p = e->hnext;
    e->in_table = 0;
    c->count--;
}

static entry_t *entry_new(op_cache_t *c, const void *key, size_t keylen, uint64_t h, int state)
{
    entry_t *e = op_calloc(1, sizeof *e + keylen);
    e->c = c;
    e->hash = h;
    e->state = state;
    e->keylen = keylen;
    memcpy(e->key, key, keylen);
    return e;
}

/* ---- answers and the LRU ---- */

static void lru_unlink(op_cache_t *c, entry_t *e)
{
    if (e->prev) e->prev->next = e->next; else c->lru_head = e->next;
    if (e->next) e->next->prev = e->prev; else c->lru_tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(op_cache_t *c, entry_t *e)
{
    e->prev = NULL;
    e->next = c->lru_head;
    if (c->lru_head) c->lru_head->prev = e; else c->lru_tail = e;
    c->lru_head = e;
}

static void answer_drop(op_cache_t *c, entry_t *e)
{
    lru_unlink(c, e);
    table_remove(c, e);
    c->nanswers--;
    box_unref(e->box);
    free(e);
}

static void evict(op_cache_t *c)
{
    while (c->nanswers > c->conf.max_entries && c->lru_tail != NULL) {
        answer_drop(c, c->lru_tail);
        c->stats.evictions++;
    }
}

static double capped(const op_cache_t *c, double ttl, int negative)
{
    double cap = negative ? c->conf.negative_max_ttl : c->conf.max_ttl;
    if (ttl > cap)
        ttl = cap;
    return ttl > 0 ? ttl : 0;
}

/* Keeps box under key for ttl seconds (already capped), unless the bound
 * is 0 or the key is in flight. */
static void answer_store(op_cache_t *c, const void *key, size_t keylen, box_t *box, double ttl,
                         int negative)
{
    if (ttl < 0.001 || c->conf.max_entries == 0)
        return;
    uint64_t h = op_siphash(key, keylen);
    entry_t *old = *find_slot(c, key, keylen, h);
    if (old != NULL) {
        if (old->state != ANSWER)
            return;
        answer_drop(c, old);
    }
    entry_t *e = entry_new(c, key, keylen, h, ANSWER);
    e->box = box;
    box->refs++;
    e->negative = negative;
    e->expires_ms = now_ms(c) + (uint64_t)llround(ttl * 1000.0);
    table_insert(c, e);
    lru_push(c, e);
    c->nanswers++;
    evict(c);
}

/* The answer under key if it is still fresh (made the most recent); an
 * expired one is dropped; else what the key names (an operation), or NULL. */
static entry_t *lookup(op_cache_t *c, const void *key, size_t keylen, uint64_t h, double *ttl)
{
    entry_t *e = *find_slot(c, key, keylen, h);
    if (e == NULL || e->state != ANSWER)
        return e;
    uint64_t now = now_ms(c);
    if (now >= e->expires_ms) {
        answer_drop(c, e);
        return NULL;
    }
    lru_unlink(c, e);
    lru_push(c, e);
    c->stats.hits++;
    *ttl = (double)(e->expires_ms - now) / 1000.0;
    return e;
}

/* ---- requests ---- */

static void waiter_add(entry_t *e, op_lookup_req_t *req)
{
    req->entry = e;
    req->next = NULL;
    req->prev = e->wtail;
    if (e->wtail) e->wtail->next = req; else e->waiters = req;
    e->wtail = req;
    e->nwaiters++;
}

static void waiter_remove(entry_t *e, op_lookup_req_t *req)
{
    if (req->prev) req->prev->next = req->next; else e->waiters = req->next;
    if (req->next) req->next->prev = req->prev; else e->wtail = req->prev;
    req->prev = req->next = NULL;
    req->entry = NULL;
    e->nwaiters--;
}

int op_lookup_start(op_cache_t *c, op_lookup_req_t *req, const void *key, size_t keylen,
                    unsigned flags, void *arg, op_lookup_cb cb)
{
    req->cb = cb;
    req->entry = NULL;
    req->value = NULL;
    req->ttl = 0;
    int fresh = (flags & OP_LOOKUP_FRESH) != 0;
    uint64_t h = op_siphash(key, keylen);
    entry_t *e = NULL;
    if (!fresh) {
        double ttl = 0;
        e = lookup(c, key, keylen, h, &ttl);
        if (e != NULL && e->state == ANSWER) {
            req->value = e->box->value;
            req->ttl = ttl;
            return OP_LOOKUP_HIT;
        }
        if (e != NULL) {
            waiter_add(e, req);
            c->stats.coalesced++;
            return OP_LOOKUP_STARTED;
        }
    }
    e = entry_new(c, key, keylen, h, FLIGHT);
    waiter_add(e, req);
    if (!fresh)
        table_insert(c, e);
    e->started_us = uv_hrtime() / 1000;
    int rc = c->ops.begin(c->owner, e, arg);
    if (rc < 0) {
        waiter_remove(e, req);
        table_remove(c, e);
        free(e);
        return rc;
    }
    c->stats.misses++;
    c->stats.inflight++;
    return OP_LOOKUP_STARTED;
}

void op_lookup_cancel(op_lookup_req_t *req)
{
    entry_t *e = req->entry;
    if (e == NULL)
        return;
    waiter_remove(e, req);
    op_cache_t *c = e->c;
    if (e->nwaiters > 0 || e->state != FLIGHT || c->ops.abort == NULL)
        return;
    c->ops.abort(c->owner, e);
    table_remove(c, e);
    c->stats.inflight--;
    free(e);
}

void op_cache_complete(op_cache_flight_t *e, void *value, double ttl, int negative)
{
    op_cache_t *c = e->c;
    box_t *box = op_calloc(1, sizeof *box);
    box->refs = 1;
    box->value = value;
    box->release = c->ops.release;
    int fresh = !e->in_table;
    op_metrics_dep_done(&c->dep, uv_hrtime() / 1000 - e->started_us, e->error_kind);
    table_remove(c, e);
    e->state = COMPLETING;
    c->stats.inflight--;
    ttl = capped(c, ttl, negative);
    if (!fresh)
        answer_store(c, e->key, e->keylen, box, ttl, negative);
    /* One at a time off the list: a callback may cancel a later waiter. */
    while (e->waiters != NULL) {
        op_lookup_req_t *req = e->waiters;
        waiter_remove(e, req);
        req->ttl = fresh ? 0 : ttl;
        req->cb(req, value);
    }
    free(e);
    box_unref(box);
}

void op_cache_flight_error(op_cache_flight_t *f, const char *kind)
{
    f->error_kind = kind;
}

const void *op_cache_flight_key(const op_cache_flight_t *f, size_t *keylen)
{
    *keylen = f->keylen;
    return f->key;
}

void op_cache_flight_set(op_cache_flight_t *f, void *op)
{
    f->op = op;
}

void *op_cache_flight_get(const op_cache_flight_t *f)
{
    return f->op;
}

/* ---- direct use ---- */

const void *op_cache_peek(op_cache_t *c, const void *key, size_t keylen, double *ttl)
{
    double left = 0;
    entry_t *e = lookup(c, key, keylen, op_siphash(key, keylen), &left);
    if (e == NULL || e->state != ANSWER)
        return NULL;
    if (ttl != NULL)
        *ttl = left;
    return e->box->value;
}

uint64_t op_cache_now_ms(const op_cache_t *c)
{
    return now_ms(c);
}

void op_cache_put(op_cache_t *c, const void *key, size_t keylen, void *value, double ttl,
                  int negative)
{
    box_t *box = op_calloc(1, sizeof *box);
    box->refs = 1;
    box->value = value;
    box->release = c->ops.release;
    answer_store(c, key, keylen, box, capped(c, ttl, negative), negative);
    box_unref(box);
}

void op_cache_forget(op_cache_t *c, const void *key, size_t keylen)
{
    entry_t *e = *find_slot(c, key, keylen, op_siphash(key, keylen));
    if (e != NULL && e->state == ANSWER)
        answer_drop(c, e);
}

void op_cache_clear(op_cache_t *c)
{
    while (c->lru_head != NULL)
        answer_drop(c, c->lru_head);
}

/* ---- life ---- */

/* The caches' counts for a scrape: zeroed, then summed per dependency
 * (a name may have several caches). */
static void collect_one(const char *name, const op_cache_stats_t *st, void *pass)
{
    const char *v[1] = {name};
    int hits = op_metrics_series(op_mf.cache_hits, v), misses = op_metrics_series(op_mf.cache_misses, v);
    int coalesced = op_metrics_series(op_mf.cache_coalesced, v);
    int entries = op_metrics_series(op_mf.cache_entries, v);
    if (pass == NULL) {
        op_metrics_set_count(hits, 0);
        op_metrics_set_count(misses, 0);
        op_metrics_set_count(coalesced, 0);
        op_metrics_set(entries, 0);
        return;
    }
    op_metrics_add(hits, st->hits);
    op_metrics_add(misses, st->misses);
    op_metrics_add(coalesced, st->coalesced);
    op_metrics_set(entries, op_metrics_get(entries) + (double)st->entries);
}

static void collect_metrics(void *data)
{
    (void)data;
    op_cache_each(collect_one, NULL);
    op_cache_each(collect_one, &(int){1});
}

op_cache_t *op_cache_new(uv_loop_t *loop, const op_cache_conf_t *conf, const op_cache_ops_t *ops,
                         void *owner)
{
    op_cache_t *c = op_calloc(1, sizeof *c);
    c->loop = loop;
    c->conf = *conf;
    c->ops = *ops;
    c->owner = owner;
    c->dep = op_metrics_dep(ops->name != NULL ? ops->name : "?");
    static int collecting;
    if (!collecting++)
        op_metrics_on_collect(collect_metrics, NULL);
    c->nbuckets = 64;
    c->buckets = op_calloc(c->nbuckets, sizeof *c->buckets);
    c->prev_cache = last_cache;
    if (last_cache) last_cache->next_cache = c; else first_cache = c;
    last_cache = c;
    return c;
}

void op_cache_configure(op_cache_t *c, const op_cache_conf_t *conf)
{
    c->conf = *conf;
    evict(c);
}

void op_cache_free(op_cache_t *c)
{
    if (c == NULL)
        return;
    op_cache_clear(c);
    for (size_t i = 0; i < c->nbuckets; i++)
        while (c->buckets[i] != NULL) {
            entry_t *e = c->buckets[i];
            c->buckets[i] = e->hnext;
            while (e->waiters != NULL)
                waiter_remove(e, e->waiters);
            if (c->ops.abort != NULL)
                c->ops.abort(c->owner, e);
            free(e);
        }
    free(c->buckets);
    if (c->prev_cache) c->prev_cache->next_cache = c->next_cache; else first_cache = c->next_cache;
    if (c->next_cache) c->next_cache->prev_cache = c->prev_cache; else last_cache = c->prev_cache;
    free(c);
}

void op_cache_stats(const op_cache_t *c, op_cache_stats_t *out)
{
    *out = c->stats;
    out->entries = c->nanswers;
}

void op_cache_each(void (*fn)(const char *name, const op_cache_stats_t *stats, void *data),
                   void *data)
{
    for (op_cache_t *c = first_cache; c != NULL; c = c->next_cache) {
        op_cache_stats_t s;
        op_cache_stats(c, &s);
        fn(c->ops.name != NULL ? c->ops.name : "?", &s, data);
    }
}

void op_cache_advance_clock(op_cache_t *c, double seconds)
{
    c->clock_offset_ms += (uint64_t)llround(seconds * 1000.0);
}
