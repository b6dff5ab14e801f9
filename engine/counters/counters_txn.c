/* Transactions: reservations keyed by Postfix's `instance`.  A reservation
 * is an add (it counts against the limit at once) plus a record of it, both
 * in one WriteBatch; commit forgets the record, release subtracts it again.
 * Each record has a deadline, indexed by time, so a timer finds those that
 * were neither committed nor released.
 *
 * A reservation reads nothing: the record is a merge (RocksDB adds the
 * amounts and keeps the first deadline when it is read).  The deadline
 * index is in memory (counters_deadlines.c, rebuilt from the records when
 * the store opens), so a reservation writes two keys, its bucket and its
 * record.  Stores of older versions also have a 't' key per reservation:
 * the sweep still reads them, and drops one whose record has a later
 * deadline, or none, without releasing. */
#include "counters/counters_store.h"

#include "core/log.h"
#include "core/mem.h"

#include <string.h>

/* Parsed 'r' record: instance 0 limit 0 subject 0 bucket(8). */
typedef struct {
    const char *instance, *limit, *subject;
    int64_t bucket, n, deadline;
} resv_t;

#define BIAS ((uint64_t)1 << 63)

static int parse_resv(const char *k, size_t kl, resv_t *r)
{
    /* fields are 0-terminated inside the key, which the iterator keeps alive */
    const char *p = k + 1, *end = k + kl - 8;
    if (kl < 1 + 6 + 8)
        return -1;
    r->instance = p;
    p = memchr(p, 0, (size_t)(end - p));
    if (p == NULL)
        return -1;
    r->limit = ++p;
    p = memchr(p, 0, (size_t)(end - p));
    if (p == NULL)
        return -1;
    r->subject = ++p;
    p = memchr(p, 0, (size_t)(end - p));
    if (p == NULL || p + 1 != end)
        return -1;
    r->bucket = (int64_t)(op__get_be(end) - BIAS);
    return 0;
}

static void resv_key(op__key_t *k, const char *instance, const char *limit, const char *subject,
                     int64_t bucket)
{
    op__key_init(k, 'r');
    op__key_str(k, instance);
    op__key_str(k, limit);
    op__key_str(k, subject);
    op__key_u64(k, (uint64_t)bucket + BIAS);
}

/* Returns 1 and the value when the key exists, 0 when not, < 0 on error. */
static int get16(op_rocks_t *c, const op__key_t *k, int64_t *a, int64_t *b)
{
    if (c->db == NULL)
        return OP_COUNTERS_EIO;
    char *dberr = NULL;
    size_t vl = 0;
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    op__rec_read_options(c, ro); /* with the groups' records applied below */
    char *v = rocksdb_get(c->db, ro, k->b, k->n, &vl, &dberr);
    rocksdb_readoptions_destroy(ro);
    if (dberr != NULL) {
        op_error("counters: read of %s failed: %s", c->path, dberr);
        free(dberr);
        return OP_COUNTERS_EIO;
    }
    int found = v != NULL && vl == 16;
    if (found) {
        *a = op__get_le(v);
        *b = op__get_le(v + 8);
    }
    rocksdb_free(v);
    return op__rec_apply(c, k->b, k->n, found, a, b); /* the groups not yet written */
}

/* ---- the record's merge: amounts add up, the first deadline stays ---- */

static char *merge_values(const char *first, size_t first_len, const char *const *ops,
                          const size_t *lens, int nops, unsigned char *success, size_t *len)
{
    int64_t n = 0, deadline = 0;
    int have = 0;
    if (first != NULL && first_len == 16) {
        n = op__get_le(first);
        deadline = op__get_le(first + 8);
        have = 1;
    }
    for (int i = 0; i < nops; i++) {
        if (lens[i] != 16)
            continue;
        n += op__get_le(ops[i]);
        if (!have) {
            deadline = op__get_le(ops[i] + 8);
            have = 1;
        }
    }
    char *v = malloc(16);
    if (v == NULL) {
        *success = 0;
        return NULL;
    }
    op__put_le(v, n);
    op__put_le(v + 8, deadline);
    *success = 1;
    *len = 16;
    return v;
}

static char *full_merge(void *state, const char *key, size_t klen, const char *existing,
                        size_t existing_len, const char *const *ops, const size_t *lens, int nops,
                        unsigned char *success, size_t *len)
{
    (void)state;
    (void)key;
    (void)klen;
    return merge_values(existing, existing_len, ops, lens, nops, success, len);
}

static char *partial_merge(void *state, const char *key, size_t klen, const char *const *ops,
                           const size_t *lens, int nops, unsigned char *success, size_t *len)
{
    (void)state;
    (void)key;
    (void)klen;
    return merge_values(NULL, 0, ops, lens, nops, success, len);
}

static void merge_free(void *state, const char *v, size_t len)
{
    (void)state;
    (void)len;
    free((void *)v);
}

static void merge_destroy(void *state)
{
    (void)state;
}

static const char *merge_name(void *state)
{
    (void)state;
    return "outpost.reservation";
}

rocksdb_mergeoperator_t *op__resv_merge_operator(void)
{
    return rocksdb_mergeoperator_create(NULL, merge_destroy, full_merge, partial_merge, merge_free,
                                        merge_name);
}

int op__bucket_sub(op_rocks_t *c, rocksdb_writebatch_t *wb, const op__limit_t *l,
                   const char *subject, int64_t bucket, int64_t n)
{
    op__win_t *e;
    int rc = op__mem_get(c, l->name, subject, &e);
    if (rc < 0)
        return rc;
    int64_t count = op__mem_count(e, bucket);
    if (count < 0)
        return 0; /* the bucket already left (or was reset): nothing to give back */
    op__bucket_put(c, wb, l, subject, bucket, count - n);
    return 0;
}

int op_rocks_reserve(op_rocks_t *c, const char *limit, const char *subject,
                        const char *instance, int64_t n, int64_t dir_max, op_counters_answer_t *a)
{
    const op__limit_t *l = op__limit(c, limit);
    if (l == NULL)
        return OP_COUNTERS_ENOLIMIT;
    if (!op__key_ok(subject) || !op__key_ok(instance) || n < 0)
        return OP_COUNTERS_EINVAL;
    if (op__failing(c))
        return OP_COUNTERS_EIO;
    rocksdb_writebatch_t *wb = op__batch(c);
    int64_t bucket;
    int rc = op__add_locked(c, l, subject, n, dir_max, a, wb, &bucket);
    if (rc < 0 || !a->ok || n == 0) {
        op__unused(c, wb); /* the bucket, if written, holds what it held */
        return rc;
    }
    op__key_t rk;
    resv_key(&rk, instance, limit, subject, bucket);
    /* Later recipients of the same transaction add to the record, which
     * keeps the first deadline (op__dl_add knows it already). */
    int64_t deadline = op_rocks_now(c) + (int64_t)(c->reservation_timeout + 0.999);
    if (!op__dl_add(c, rk.b, rk.n, deadline) && deadline < c->dl_spill_due)
        c->dl_spill_due = deadline; /* the index is full: the sweep reads the records then */
    char v[16];
    op__put_le(v, n);
    op__put_le(v + 8, deadline);
    rocksdb_writebatch_merge(wb, rk.b, rk.n, v, sizeof v);
    op__rec_merge(c, rk.b, rk.n, n, deadline);
    rc = op__write(c, wb);
    return rc < 0 ? rc : op__answer_after_add(c, l, subject, dir_max, a);
}

/* Every reservation of instance, in key order (limit, subject, bucket). */
typedef struct {
    char key[sizeof(op__key_t)];
    size_t klen;
    resv_t r;
} entry_t;

typedef struct {
    entry_t *e;
    size_t n, cap;
} entries_t;

static entry_t *entry_add(entries_t *es)
{
    if (es->n == es->cap) {
        es->cap = es->cap ? 2 * es->cap : 4;
        es->e = op_realloc(es->e, es->cap * sizeof *es->e);
    }
    return &es->e[es->n];
}

/* A record a group wrote that the store has not got yet: read like the
 * store's (its value comes from op__rec_apply). */
static void add_group_key(void *data, const char *k, size_t kl)
{
    entries_t *es = data;
    if (kl > sizeof es->e->key)
        return;
    for (size_t i = 0; i < es->n; i++)
        if (es->e[i].klen == kl && memcmp(es->e[i].key, k, kl) == 0)
            return;
    entry_t *e = entry_add(es);
    memcpy(e->key, k, kl);
    e->klen = kl;
    if (parse_resv(e->key, kl, &e->r) < 0)
        return;
    e->r.n = -1; /* not in the store */
    es->n++;
}

static int by_key(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int d = memcmp(x->key, y->key, n);
    return d != 0 ? d : (x->klen > y->klen) - (x->klen < y->klen);
}

static int load_instance_store(op_rocks_t *c, const char *instance, entry_t **out, size_t *nout);

/* The store's records of instance, with the groups not yet written over
 * them, in key order. */
static int load_instance(op_rocks_t *c, const char *instance, entry_t **out, size_t *nout)
{
    if (c->db == NULL)
        return OP_COUNTERS_EIO;
    entries_t es = {0};
    int rc = load_instance_store(c, instance, &es.e, &es.n);
    if (rc < 0)
        return rc;
    es.cap = es.n;
    size_t stored = es.n;
    op__key_t lo;
    op__key_init(&lo, 'r');
    op__key_str(&lo, instance);
    op__rec_keys(c, lo.b, lo.n, add_group_key, &es);
    size_t keep = 0;
    for (size_t i = 0; i < es.n; i++) {
        entry_t *e = &es.e[i];
        int found = i < stored;
        if (!found)
            e->r.n = e->r.deadline = 0;
        if (op__rec_apply(c, e->key, e->klen, found, &e->r.n, &e->r.deadline))
            es.e[keep++] = *e;
    }
    if (keep != stored || es.n != stored)
        qsort(es.e, keep, sizeof *es.e, by_key);
    /* the parsed fields point into each key: into where it is now */
    for (size_t i = 0; i < keep; i++) {
        int64_t n = es.e[i].r.n, d = es.e[i].r.deadline;
        parse_resv(es.e[i].key, es.e[i].klen, &es.e[i].r);
        es.e[i].r.n = n;
        es.e[i].r.deadline = d;
    }
    *out = es.e;
    *nout = keep;
    return 0;
}

static int load_instance_store(op_rocks_t *c, const char *instance, entry_t **out, size_t *nout)
{
    op__key_t lo, hi;
    op__key_init(&lo, 'r');
    op__key_str(&lo, instance);
    hi = lo;
    hi.b[hi.n - 1] = 1;
    size_t n = 0, cap = 4;
    entry_t *e = op_malloc(cap * sizeof *e);
    op__scan_t sc;
    for (op__scan_open(c, &sc, &lo, &hi, 1); rocksdb_iter_valid(sc.it); rocksdb_iter_next(sc.it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(sc.it, &kl), *v = rocksdb_iter_value(sc.it, &vl);
        if (vl != 16 || kl > sizeof e->key)
            continue;
        if (n == cap) {
            entry_t *ne = op_malloc(2 * cap * sizeof *ne);
            memcpy(ne, e, n * sizeof *ne);
            free(e);
            e = ne;
            cap *= 2;
        }
        memcpy(e[n].key, k, kl);
        e[n].klen = kl;
        if (parse_resv(e[n].key, kl, &e[n].r) < 0)
            continue;
        e[n].r.n = op__get_le(v);
        e[n].r.deadline = op__get_le(v + 8);
        n++;
    }
    if (op__scan_close(c, &sc) < 0) {
        free(e);
        return OP_COUNTERS_EIO;
    }
    *out = e;
    *nout = n;
    return 0;
}

/* A 't' key of an older version stays until its deadline: the sweep drops
 * it then, finding no record. */
static void forget(op_rocks_t *c, rocksdb_writebatch_t *wb, const entry_t *e)
{
    rocksdb_writebatch_delete(wb, e->key, e->klen);
    op__rec_delete(c, e->key, e->klen);
}

static int same_group(const entry_t *a, const entry_t *b)
{
    return strcmp(a->r.limit, b->r.limit) == 0 && strcmp(a->r.subject, b->r.subject) == 0;
}

/* Settles an instance: keeps at most `keep` per (limit, subject), newest
 * buckets released first, and forgets every record.  keep < 0 keeps all. */
static int settle(op_rocks_t *c, const char *instance, int64_t keep, int64_t *kept,
                  int64_t *released)
{
    entry_t *e;
    size_t n;
    *kept = *released = 0;
    if (!op__key_ok(instance))
        return OP_COUNTERS_EINVAL;
    if (op__failing(c))
        return OP_COUNTERS_EIO;
    int rc = load_instance(c, instance, &e, &n);
    if (rc < 0)
        return rc;
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    for (size_t i = 0; i < n && rc == 0;) {
        size_t j = i;
        int64_t total = 0;
        while (j < n && same_group(&e[i], &e[j]))
            total += e[j++].r.n;
        int64_t give = keep < 0 || total <= keep ? 0 : total - keep;
        *kept += total - give;
        *released += give;
        const op__limit_t *l = op__limit(c, e[i].r.limit); /* NULL: the limit was removed */
        for (size_t k = j; k-- > i;) {
            int64_t g = give < e[k].r.n ? give : e[k].r.n;
            if (g > 0 && l != NULL && (rc = op__bucket_sub(c, wb, l, e[k].r.subject, e[k].r.bucket, g)) < 0)
                break;
            give -= g;
            forget(c, wb, &e[k]);
        }
        i = j;
    }
    if (rc < 0) {
        free(e);
        op__discard(c, wb);
        return rc;
    }
    rc = op__write(c, wb);
    for (size_t i = 0; i < n && rc >= 0; i++)
        op__dl_forget(c, e[i].key, e[i].klen); /* forgotten by the store now */
    free(e);
    return rc;
}

int op_rocks_commit(op_rocks_t *c, const char *instance, int64_t keep, int64_t *committed,
                       int64_t *released)
{
    return settle(c, instance, keep, committed, released);
}

int op_rocks_release(op_rocks_t *c, const char *instance, int64_t *released)
{
    int64_t kept;
    return settle(c, instance, 0, &kept, released);
}

/* Releases record rk if its own deadline passed: a 't' entry of a later
 * recipient (the record keeps the first deadline) or of a record since
 * settled only goes.  tk, when not NULL, is the store's index entry. */
static int expire_record(op_rocks_t *c, const op__key_t *rk, const char *tk, size_t tkl,
                         int64_t now, int64_t *total)
{
    resv_t r;
    int64_t n, deadline;
    /* One batch per record: two records may share a bucket, and a batch's
     * reads do not see its own pending writes. */
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    if (tk != NULL)
        rocksdb_writebatch_delete(wb, tk, tkl);
    if (parse_resv(rk->b, rk->n, &r) == 0 && get16(c, rk, &n, &deadline) == 1 &&
        deadline <= now) {
        const op__limit_t *l = op__limit(c, r.limit);
        if (l != NULL)
            op__bucket_sub(c, wb, l, r.subject, r.bucket, n);
        rocksdb_writebatch_delete(wb, rk->b, rk->n);
        op__rec_delete(c, rk->b, rk->n);
        op__dl_forget(c, rk->b, rk->n); /* due by its 't' key, if also in memory */
        *total += n;
        op_info("counters: released %lld of %s for %s (instance %s): not committed within "
                "reservation_timeout", (long long)n, r.limit, r.subject, r.instance);
    }
    if (rocksdb_writebatch_count(wb) == 0) {
        rocksdb_writebatch_destroy(wb);
        return 0;
    }
    return op__write(c, wb);
}

static int expire_due(op_rocks_t *c, const op__key_t *rk, int64_t now, int64_t *total)
{
    return expire_record(c, rk, NULL, 0, now, total);
}

int64_t op_rocks_expire(op_rocks_t *c)
{
    if (op__failing(c) || c->db == NULL)
        return 0; /* the next tick after it recovers */
    int64_t now = op_rocks_now(c);
    int64_t total = 0;
    op__key_t rk;
    while (op__dl_pop_due(c, now, &rk))
        if (expire_record(c, &rk, NULL, 0, now, &total) < 0)
            return total;
    /* a record the full index could not take is due: read them all */
    if (now >= c->dl_spill_due && op__dl_rebuild(c, now, expire_due, &total) < 0)
        return total;
    if (now < c->last_sweep)
        c->expired_until = 0; /* the clock went back: deadlines before the mark may be new */
    c->last_sweep = now;
    op__key_t lo, hi;
    op__key_init(&lo, 't');
    op__key_u64(&lo, (uint64_t)c->expired_until + BIAS);
    op__key_init(&hi, 't');
    op__key_u64(&hi, (uint64_t)now + 1 + BIAS);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_upper_bound(ro, hi.b, hi.n);
    rocksdb_iterator_t *it = rocksdb_create_iterator(c->db, ro);
    for (rocksdb_iter_seek(it, lo.b, lo.n); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (kl < 9 || kl - 8 > sizeof lo.b)
            continue;
        rk.b[0] = 'r';
        memcpy(rk.b + 1, k + 9, kl - 9);
        rk.n = kl - 8;
        if (expire_record(c, &rk, k, kl, now, &total) < 0)
            break;
    }
    char *dberr = NULL;
    rocksdb_iter_get_error(it, &dberr);
    if (dberr == NULL && !rocksdb_iter_valid(it))
        c->expired_until = now + 1; /* everything up to now was handled */
    free(dberr);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return total;
}

typedef struct {
    const char *limit, *subject;
    op__key_t *keys;
    size_t n;
} forget_t;

/* Collects (op__rec_delete would move the records being walked). */
static void forget_group_key(void *data, const char *k, size_t kl)
{
    forget_t *f = data;
    char key[sizeof(op__key_t)];
    resv_t r;
    if (kl > sizeof key)
        return;
    memcpy(key, k, kl);
    if (parse_resv(key, kl, &r) == 0 && strcmp(r.limit, f->limit) == 0 &&
        strcmp(r.subject, f->subject) == 0) {
        f->keys = op_realloc(f->keys, (f->n + 1) * sizeof *f->keys);
        memcpy(f->keys[f->n].b, k, kl);
        f->keys[f->n++].n = kl;
    }
}

/* A reset forgives what (limit, subject) holds reserved: its records go
 * with its buckets, or their release would later take from the buckets
 * counted after the reset (issue 14).  A scan, like op_rocks_reserved. */
int op__resv_forget_subject(op_rocks_t *c, rocksdb_writebatch_t *wb, const char *limit,
                            const char *subject)
{
    op__key_t lo, hi;
    op__key_init(&lo, 'r');
    op__key_init(&hi, 's');
    op__scan_t sc;
    for (op__scan_open(c, &sc, &lo, &hi, 1); rocksdb_iter_valid(sc.it); rocksdb_iter_next(sc.it)) {
        size_t kl;
        const char *k = rocksdb_iter_key(sc.it, &kl);
        resv_t r;
        if (parse_resv(k, kl, &r) == 0 && strcmp(r.limit, limit) == 0 &&
            strcmp(r.subject, subject) == 0) {
            rocksdb_writebatch_delete(wb, k, kl);
            op__rec_delete(c, k, kl);
            op__dl_forget(c, k, kl);
        }
    }
    if (op__scan_close(c, &sc) < 0)
        return OP_COUNTERS_EIO;
    forget_t f = {limit, subject, NULL, 0};
    op__rec_keys(c, lo.b, lo.n, forget_group_key, &f); /* and those not yet in the store */
    for (size_t i = 0; i < f.n; i++) {
        rocksdb_writebatch_delete(wb, f.keys[i].b, f.keys[i].n);
        op__rec_delete(c, f.keys[i].b, f.keys[i].n);
        op__dl_forget(c, f.keys[i].b, f.keys[i].n);
    }
    free(f.keys);
    return 0;
}

int op_rocks_reserved(op_rocks_t *c, const char *limit, const char *subject, int64_t *n)
{
    /* Records are keyed by instance first: an admin's question, so a scan
     * (of the store: a group not yet written is not seen). */
    if (c->db == NULL)
        return OP_COUNTERS_EIO;
    op__key_t lo, hi;
    op__key_init(&lo, 'r');
    op__key_init(&hi, 's');
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_upper_bound(ro, hi.b, hi.n);
    rocksdb_iterator_t *it = rocksdb_create_iterator(c->db, ro);
    *n = 0;
    for (rocksdb_iter_seek(it, lo.b, lo.n); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl), *v = rocksdb_iter_value(it, &vl);
        resv_t r;
        if (vl == 16 && parse_resv(k, kl, &r) == 0 && strcmp(r.limit, limit) == 0 &&
            strcmp(r.subject, subject) == 0)
            *n += op__get_le(v);
    }
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return 0;
}
