/* The reservations' deadlines in memory: which record is due when, so a
 * reservation writes its record and its bucket, not a third key (the 't'
 * index) into the store's memtable.
 *
 * Nothing here needs to survive a crash: a record's value holds its
 * deadline (counters_txn.c), so op__dl_rebuild reads them all again when
 * the store opens.  Past DL_MAX entries a reservation writes its 't' key
 * into the store as before, and the sweep reads both.
 *
 * A hash table by record key (a commit or release forgets its entry) and a
 * binary heap by deadline (the sweep takes the due ones first, even after
 * the clock or the timeout changed). */
#include "counters/counters_store.h"
#include "lib/siphash.h"

#include "core/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>


typedef struct dl_node {
    struct dl_node *next; /* hash chain */
    uint64_t hash;
    int64_t deadline;
    size_t at; /* index in the heap */
    size_t klen;
    char key[];
} dl_node_t;

struct op__dl {
    dl_node_t **slots;
    size_t nslots;
    dl_node_t **heap;
    size_t n, cap;
};

/* Keys hold the subject, which comes from mail: keyed SipHash (siphash.h). */
static uint64_t key_hash(const char *k, size_t n)
{
    return op_siphash(k, n);
}

static void heap_set(op__dl_t *d, size_t i, dl_node_t *e)
{
    d->heap[i] = e;
    e->at = i;
}

static void heap_up(op__dl_t *d, size_t i)
{
    dl_node_t *e = d->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (d->heap[p]->deadline <= e->deadline)
            break;
        heap_set(d, i, d->heap[p]);
        i = p;
    }
    heap_set(d, i, e);
}

static void heap_down(op__dl_t *d, size_t i)
{
    dl_node_t *e = d->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, m = l;
        if (l >= d->n)
            break;
        if (l + 1 < d->n && d->heap[l + 1]->deadline < d->heap[l]->deadline)
            m = l + 1;
        if (d->heap[m]->deadline >= e->deadline)
            break;
        heap_set(d, i, d->heap[m]);
        i = m;
    }
    heap_set(d, i, e);
}

static dl_node_t **find(op__dl_t *d, uint64_t h, const char *key, size_t klen)
{
    dl_node_t **p = &d->slots[h & (d->nslots - 1)];
    while (*p != NULL &&
           ((*p)->hash != h || (*p)->klen != klen || memcmp((*p)->key, key, klen) != 0))
        p = &(*p)->next;
    return p;
}

static void unlink_node(op__dl_t *d, dl_node_t **p)
{
    dl_node_t *e = *p;
    *p = e->next;
    size_t i = e->at;
    dl_node_t *last = d->heap[--d->n];
    if (i < d->n) {
        heap_set(d, i, last);
        heap_up(d, i);
        heap_down(d, last->at);
    }
    free(e);
}

int op__dl_add(op_rocks_t *c, const char *key, size_t klen, int64_t deadline)
{
    op__dl_t *d = c->dl;
    if (d == NULL)
        d = c->dl = op_calloc(1, sizeof *d);
    if (d->nslots == 0) {
        d->nslots = 1024;
        d->slots = op_calloc(d->nslots, sizeof *d->slots);
    }
    uint64_t h = key_hash(key, klen);
    dl_node_t **p = find(d, h, key, klen);
    if (*p != NULL)
        return 1; /* a later recipient: the record keeps the first deadline */
    if (d->n >= c->dl_max)
        return 0;
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 1024;
        dl_node_t **nh = op_malloc(d->cap * sizeof *nh);
        if (d->n > 0)
            memcpy(nh, d->heap, d->n * sizeof *nh);
        free(d->heap);
        d->heap = nh;
    }
    if (d->n >= d->nslots) { /* grow the table at load 1 */
        size_t ns = 2 * d->nslots;
        dl_node_t **s = op_calloc(ns, sizeof *s);
        for (size_t i = 0; i < d->nslots; i++) {
            for (dl_node_t *e = d->slots[i], *next; e != NULL; e = next) {
                next = e->next;
                e->next = s[e->hash & (ns - 1)];
                s[e->hash & (ns - 1)] = e;
            }
        }
        free(d->slots);
        d->slots = s;
        d->nslots = ns;
        p = find(d, h, key, klen);
    }
    dl_node_t *e = op_malloc(sizeof *e + klen);
    e->next = NULL;
    e->hash = h;
    e->deadline = deadline;
    e->klen = klen;
    memcpy(e->key, key, klen);
    *p = e;
    d->heap[d->n] = e;
    e->at = d->n++;
    heap_up(d, e->at);
    return 1;
}

void op__dl_forget(op_rocks_t *c, const char *key, size_t klen)
{
    op__dl_t *d = c->dl;
    if (d == NULL || d->n == 0)
        return;
    dl_node_t **p = find(d, key_hash(key, klen), key, klen);
    if (*p != NULL)
        unlink_node(d, p);
}

int op__dl_pop_due(op_rocks_t *c, int64_t now, op__key_t *k)
{
    op__dl_t *d = c->dl;
    if (d == NULL || d->n == 0 || d->heap[0]->deadline > now)
        return 0;
    dl_node_t *e = d->heap[0];
    memcpy(k->b, e->key, e->klen);
    k->n = e->klen;
    unlink_node(d, find(d, e->hash, e->key, e->klen));
    return 1;
}

size_t op__dl_count(const op_rocks_t *c)
{
    return c->dl != NULL ? c->dl->n : 0;
}

void op__dl_clear(op_rocks_t *c)
{
    op__dl_t *d = c->dl;
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n; i++)
        free(d->heap[i]);
    free(d->heap);
    free(d->slots);
    free(d);
    c->dl = NULL;
}

/* The dl_max earliest deadlines of a scan: a heap with the latest on top. */
typedef struct {
    dl_node_t **e;
    size_t n;
} pick_t;

static void pick_swap(pick_t *p, size_t a, size_t b)
{
    dl_node_t *t = p->e[a];
    p->e[a] = p->e[b];
    p->e[b] = t;
}

static void pick_down(pick_t *p, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < p->n && p->e[l]->deadline > p->e[m]->deadline)
            m = l;
        if (l + 1 < p->n && p->e[l + 1]->deadline > p->e[m]->deadline)
            m = l + 1;
        if (m == i)
            return;
        pick_swap(p, i, m);
        i = m;
    }
}

static void pick_up(pick_t *p, size_t i)
{
    while (i > 0 && p->e[(i - 1) / 2]->deadline < p->e[i]->deadline) {
        pick_swap(p, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static dl_node_t *node_new(const char *key, size_t klen, int64_t deadline)
{
    dl_node_t *e = op_malloc(sizeof *e + klen);
    e->next = NULL;
    e->hash = key_hash(key, klen);
    e->deadline = deadline;
    e->klen = klen;
    memcpy(e->key, key, klen);
    return e;
}

/* Offers a record to the pick; what it cannot keep lowers spill_due. */
static void pick_offer(op_rocks_t *c, pick_t *p, size_t max, const char *key, size_t klen,
                       int64_t deadline)
{
    if (p->n < max) {
        p->e[p->n] = node_new(key, klen, deadline);
        pick_up(p, p->n++);
        return;
    }
    if (max == 0 || deadline >= p->e[0]->deadline) {
        if (deadline < c->dl_spill_due)
            c->dl_spill_due = deadline;
        return;
    }
    if (p->e[0]->deadline < c->dl_spill_due)
        c->dl_spill_due = p->e[0]->deadline;
    free(p->e[0]);
    p->e[0] = node_new(key, klen, deadline);
    pick_down(p, 0);
}

int op__dl_rebuild(op_rocks_t *c, int64_t now, op__dl_due_fn due, int64_t *total)
{
    op__dl_clear(c);
    c->dl_spill_due = INT64_MAX;
    size_t max = c->dl_max;
    pick_t p = {op_malloc((max ? max : 1) * sizeof *p.e), 0};
    op__key_t lo, hi;
    op__key_init(&lo, 'r');
    op__key_init(&hi, 's');
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_upper_bound(ro, hi.b, hi.n);
    rocksdb_iterator_t *it = rocksdb_create_iterator(c->db, ro);
    int rc = 0;
    for (rocksdb_iter_seek(it, lo.b, lo.n); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl), *v = rocksdb_iter_value(it, &vl);
        if (vl != 16 || kl > sizeof lo.b)
            continue;
        int64_t deadline = op__get_le(v + 8);
        if (deadline <= now && due != NULL) {
            /* the iterator reads a snapshot: releasing as it goes is safe */
            op__key_t rk;
            memcpy(rk.b, k, kl);
            rk.n = kl;
            if ((rc = due(c, &rk, now, total)) < 0)
                break;
            continue;
        }
        pick_offer(c, &p, max, k, kl, deadline);
    }
    char *dberr = NULL;
    rocksdb_iter_get_error(it, &dberr);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    for (size_t i = 0; i < p.n; i++) {
        op__dl_add(c, p.e[i]->key, p.e[i]->klen, p.e[i]->deadline);
        free(p.e[i]);
    }
    free(p.e);
    if (dberr != NULL) {
        free(dberr);
        c->dl_spill_due = INT64_MIN; /* read them all again at the next sweep */
        return OP_COUNTERS_EIO;
    }
    return rc;
}
