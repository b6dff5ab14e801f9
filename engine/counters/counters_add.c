/* The RocksDB backend's keys and the atomic check-and-add: a subject's
 * window read from memory (counters_mem.c), its effective maximum, and an
 * add written into the iteration's batch (counters_store.h has the key
 * layout; counters.c opens the store and writes the batches). */
#include "counters/counters_store.h"

#include "core/log.h"
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

void op__key_init(op__key_t *k, char tag)
{
    k->b[0] = tag;
    k->n = 1;
}

void op__key_str(op__key_t *k, const char *s)
{
    size_t len = strlen(s);
    OP_ASSERT(k->n + len + 1 <= sizeof k->b);
    memcpy(k->b + k->n, s, len + 1);
    k->n += len + 1;
}

void op__key_u64(op__key_t *k, uint64_t v)
{
    OP_ASSERT(k->n + 8 <= sizeof k->b);
    for (int i = 7; i >= 0; i--)
        k->b[k->n++] = (char)(v >> (8 * i));
}

uint64_t op__get_be(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | (unsigned char)p[i];
    return v;
}

int64_t op__get_le(const char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | (unsigned char)p[i];
    return (int64_t)v;
}

void op__put_le(char *p, int64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (char)((uint64_t)v >> (8 * i));
}

void op__scan_open(op_rocks_t *c, op__scan_t *s, const op__key_t *lo, const op__key_t *hi,
                   int records)
{
    s->ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_upper_bound(s->ro, hi->b, hi->n);
    if (records)
        op__rec_read_options(c, s->ro);
    s->it = rocksdb_create_iterator(c->db, s->ro);
    rocksdb_iter_seek(s->it, lo->b, lo->n);
}

int op__scan_close(op_rocks_t *c, op__scan_t *s)
{
    char *dberr = NULL;
    rocksdb_iter_get_error(s->it, &dberr);
    rocksdb_iter_destroy(s->it);
    rocksdb_readoptions_destroy(s->ro);
    if (dberr == NULL)
        return 0;
    op_error("counters: read of %s failed: %s", c->path, dberr);
    free(dberr);
    return OP_COUNTERS_EIO;
}

/* Buckets are signed times but sort as unsigned big-endian keys: the bias
 * keeps negative times (never expected, but a clock can be wrong) in order. */
#define BIAS ((uint64_t)1 << 63)
#define NEXT_FREE_UNKNOWN (-2)

int op__key_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= OP_COUNTERS_MAX_KEY;
}

/* ---- the window ---- */

static void window_key(op__key_t *k, const char *limit, const char *subject)
{
    op__key_init(k, 'c');
    op__key_str(k, limit);
    op__key_str(k, subject);
}

void op__bucket_put(op_rocks_t *c, rocksdb_writebatch_t *wb, const op__limit_t *l,
                    const char *subject, int64_t start, int64_t count)
{
    op__key_t k;
    window_key(&k, l->name, subject);
    op__key_u64(&k, (uint64_t)start + BIAS);
    int64_t leaves = op_window_leaves(&l->w, op_window_bucket(&l->w, start));
    op__win_t *e;
    if (op__mem_get(c, l->name, subject, &e) == 0) {
        op__mem_set(e, start, count, leaves);
        op__mem_dirty(e, c->next_seq); /* the collecting group's number-to-be */
    }
    else
        op__mem_clear(c); /* cannot happen: the caller read the window */
    if (count <= 0) {
        rocksdb_writebatch_delete(wb, k.b, k.n);
        return;
    }
    char v[16];
    op__put_le(v, count);
    op__put_le(v + 8, leaves);
    rocksdb_writebatch_put(wb, k.b, k.n, v, sizeof v);
}

void op__discard(op_rocks_t *c, rocksdb_writebatch_t *wb)
{
    OP_ASSERT(wb != c->pending); /* the group holds others' answered writes */
    rocksdb_writebatch_destroy(wb);
    /* the windows in memory may hold writes of the batch: read them again */
    op__mem_clear(c);
}

static int effective_max(op_rocks_t *c, const op__limit_t *l, const char *subject,
                         int64_t dir_max, op_counters_answer_t *a)
{
    op_counters_override_t o;
    int rc = op__override_get(c, l->name, subject, &o);
    if (rc < 0)
        return rc;
    if (rc == 1 && !o.expired) {
        a->max = o.max;
        a->source = OP_MAX_OPERATOR;
    } else if (dir_max >= 0) {
        a->max = dir_max < l->max_override ? dir_max : l->max_override;
        a->source = OP_MAX_DIRECTORY;
    } else {
        a->max = l->max;
        a->source = OP_MAX_DEFAULT;
    }
    return 0;
}

int op__window(op_rocks_t *c, const op__limit_t *l, const char *subject, int64_t want,
               int64_t dir_max, op_counters_answer_t *a, int64_t *cur_count, int64_t *now_out)
{
    memset(a, 0, sizeof *a);
    int rc = effective_max(c, l, subject, dir_max, a);
    if (rc < 0)
        return rc;
    op__win_t *e;
    if ((rc = op__mem_get(c, l->name, subject, &e)) < 0)
        return rc;
    int64_t now = op_rocks_now(c), cur = op_window_bucket(&l->w, now);
    *now_out = now;
    op__mem_touch(e, now);
    size_t n;
    const op__wbucket_t *wb = op__mem_buckets(e, &n);
    /* Buckets keep their first second, so those written under another
     * resolution (before a reload) still fall into place. */
    op_bucket_t small[64], *v = n <= 64 ? small : op_malloc(n * sizeof *v);
    *cur_count = 0;
    for (size_t i = 0; i < n; i++) {
        v[i] = (op_bucket_t){op_window_bucket(&l->w, wb[i].start), wb[i].count};
        if (wb[i].start == cur * l->w.resolution)
            *cur_count = wb[i].count;
    }
    op_window_sum_t s;
    op_window_sum(&l->w, now, v, n, a->max, want, &s);
    if (v != small)
        free(v);
    a->ok = s.used + want <= a->max;
    a->used = s.used;
    a->remaining = s.remaining;
    a->next_free = s.next_free;
    a->window = l->w.nbuckets * l->w.resolution;
    a->resolution = l->w.resolution;
    return 0;
}

static int lookup(op_rocks_t *c, const char *limit, const char *subject, int64_t n,
                  const op__limit_t **l)
{
    if ((*l = op__limit(c, limit)) == NULL)
        return OP_COUNTERS_ENOLIMIT;
    if (!op__key_ok(subject) || n < 0)
        return OP_COUNTERS_EINVAL;
    return 0;
}

int op_rocks_check(op_rocks_t *c, const char *limit, const char *subject, int64_t n,
                      int64_t dir_max, op_counters_answer_t *a)
{
    const op__limit_t *l;
    int64_t cur, now;
    int rc = lookup(c, limit, subject, n, &l);
    return rc < 0 ? rc : op__window(c, l, subject, n, dir_max, a, &cur, &now);
}

/* After an admitted add the answer describes the window with it: what
 * remains, and when one more fits (now, unless the add took the last slot:
 * then op__answer_after_add reads the window again). */
static void account_added(op_counters_answer_t *a, int64_t n, int64_t now)
{
    a->used += n;
    a->remaining = a->used < a->max ? a->max - a->used : 0;
    a->next_free = a->remaining > 0 ? now : NEXT_FREE_UNKNOWN;
}

/* Check and add in one step: nothing runs between the read and the write
 * (the loop thread does both), so no two requests pass the last slot. */
int op__add_locked(op_rocks_t *c, const op__limit_t *l, const char *subject, int64_t n,
                   int64_t dir_max, op_counters_answer_t *a, rocksdb_writebatch_t *wb,
                   int64_t *bucket)
{
    /* The bucket written is the one read: the same reading of the clock. */
    int64_t cur_count, now;
    int rc = op__window(c, l, subject, n, dir_max, a, &cur_count, &now);
    if (rc < 0 || !a->ok)
        return rc;
    *bucket = op_window_bucket(&l->w, now) * l->w.resolution;
    op__bucket_put(c, wb, l, subject, *bucket, cur_count + n);
    account_added(a, n, now);
    return 0;
}

/* The answer after an add: one more re-read gives next_free exactly when
 * the add used the last slot (rare, so the common path reads once). */
int op__answer_after_add(op_rocks_t *c, const op__limit_t *l, const char *subject,
                         int64_t dir_max, op_counters_answer_t *a)
{
    if (a->next_free != NEXT_FREE_UNKNOWN)
        return 0;
    op_counters_answer_t b;
    int64_t cur, now;
    int rc = op__window(c, l, subject, 1, dir_max, &b, &cur, &now);
    if (rc < 0)
        return rc;
    a->next_free = b.next_free;
    return 0;
}

int op_rocks_add(op_rocks_t *c, const char *limit, const char *subject, int64_t n,
                    int64_t dir_max, op_counters_answer_t *a)
{
    const op__limit_t *l;
    int rc = lookup(c, limit, subject, n, &l);
    if (rc < 0)
        return rc;
    if (op__failing(c))
        return OP_COUNTERS_EIO; /* memory must not count what will not be written */
    rocksdb_writebatch_t *wb = op__batch(c);
    int64_t bucket;
    rc = op__add_locked(c, l, subject, n, dir_max, a, wb, &bucket);
    if (rc < 0 || !a->ok) {
        op__unused(c, wb); /* nothing was added */
        return rc;
    }
    rc = op__write(c, wb);
    return rc < 0 ? rc : op__answer_after_add(c, l, subject, dir_max, a);
}
