/* What an operator does to the counters (outpostctl): reset a subject,
 * overrides with an audit trail, the subjects nearest their limit. */
#include "counters/counters_store.h"

#include "lib/siphash.h"
#include "core/log.h"
#include "core/mem.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define BIAS ((uint64_t)1 << 63)

int op_rocks_reset(op_rocks_t *c, const char *limit, const char *subject)
{
    if (op__limit(c, limit) == NULL)
        return OP_COUNTERS_ENOLIMIT;
    if (!op__key_ok(subject))
        return OP_COUNTERS_EINVAL;
    op__key_t lo, hi;
    op__key_init(&lo, 'c');
    op__key_str(&lo, limit);
    op__key_str(&lo, subject);
    hi = lo;
    hi.b[hi.n - 1] = 1;
    if (op__failing(c) || c->db == NULL)
        return OP_COUNTERS_EIO;
    int rc;
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rocksdb_writebatch_delete_range(wb, lo.b, lo.n, hi.b, hi.n);
    if ((rc = op__resv_forget_subject(c, wb, limit, subject)) < 0) {
        rocksdb_writebatch_destroy(wb);
        return rc;
    }
    op__mem_drop(c, limit, subject);
    op_notice("counters: %s %s reset", limit, subject);
    return op__write(c, wb);
}

/* ---- overrides ---- */

static void override_key(op__key_t *k, const char *limit, const char *subject)
{
    op__key_init(k, 'o');
    op__key_str(k, limit);
    op__key_str(k, subject);
    k->n--; /* no 0 after the last field */
}

/* Text with tabs and line ends would break the record and the control
 * protocol's lines: they become spaces. */
static void copy_clean(char *dst, size_t len, const char *src)
{
    size_t i = 0;
    for (; src[i] != '\0' && i + 1 < len; i++)
        dst[i] = (unsigned char)src[i] < 0x20 ? ' ' : src[i];
    dst[i] = '\0';
}

static int parse_override(const char *v, size_t vl, op_counters_override_t *o, int64_t now)
{
    char buf[512];
    if (vl >= sizeof buf)
        return -1;
    memcpy(buf, v, vl);
    buf[vl] = '\0';
    char *f[5], *p = buf;
    for (int i = 0; i < 5; i++) {
        f[i] = p;
        p = i < 4 ? strchr(p, '\t') : NULL;
        if (i < 4 && p == NULL)
            return -1;
        if (p != NULL)
            *p++ = '\0';
    }
    o->max = strtoll(f[0], NULL, 10);
    o->until = strtoll(f[1], NULL, 10);
    o->set_at = strtoll(f[2], NULL, 10);
    copy_clean(o->who, sizeof o->who, f[3]);
    copy_clean(o->reason, sizeof o->reason, f[4]);
    o->expired = o->until != 0 && o->until <= now;
    return 0;
}

/* The subject comes from mail (a sender, a SASL login, a client address):
 * keyed SipHash, so nobody can choose subjects that share one bucket of the
 * in-memory tables.  The limit's hash is mixed in with an odd multiplier, so
 * one subject under two limits lands apart.  Never stored: the key changes
 * with every process. */
uint64_t op__override_hash(const char *limit, const char *subject)
{
    return op_siphash(subject, strlen(subject)) ^
           op_siphash(limit, strlen(limit)) * UINT64_C(0x9e3779b97f4a7c15);
}

uint64_t op__subject_hash(op_rocks_t *c, const char *limit, const char *subject)
{
    if (strcmp(subject, c->memo_subject) == 0 && strcmp(limit, c->memo_limit) == 0 &&
        c->memo_limit[0] != 0)
        return c->memo_hash;
    size_t ll = strlen(limit), sl = strlen(subject);
    uint64_t h = op__override_hash(limit, subject);
    if (ll < sizeof c->memo_limit && sl < sizeof c->memo_subject) {
        memcpy(c->memo_limit, limit, ll + 1);
        memcpy(c->memo_subject, subject, sl + 1);
        c->memo_hash = h;
    }
    return h;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int index_one(const op_counters_override_t *o, void *data)
{
    op_rocks_t *c = data;
    c->override_hashes = op_realloc(c->override_hashes, (c->noverride_hashes + 1) * sizeof(uint64_t));
    c->override_hashes[c->noverride_hashes++] = op__override_hash(o->limit, o->subject);
    return 0;
}

void op__override_index(op_rocks_t *c)
{
    free(c->override_hashes);
    c->override_hashes = NULL;
    c->noverride_hashes = 0;
    op_rocks_override_list(c, NULL, index_one, c);
    if (c->noverride_hashes > 0)
        qsort(c->override_hashes, c->noverride_hashes, sizeof(uint64_t), cmp_u64);
}

int op__override_get(op_rocks_t *c, const char *limit, const char *subject,
                     op_counters_override_t *o)
{
    uint64_t h = op__subject_hash(c, limit, subject);
    if (c->db == NULL)
        return OP_COUNTERS_EIO;
    if (c->noverride_hashes == 0 ||
        bsearch(&h, c->override_hashes, c->noverride_hashes, sizeof h, cmp_u64) == NULL)
        return 0;
    op__key_t k;
    override_key(&k, limit, subject);
    char *dberr = NULL;
    size_t vl = 0;
    char *v = rocksdb_get(c->db, c->ropts, k.b, k.n, &vl, &dberr);
    if (dberr != NULL) {
        op_error("counters: read of %s failed: %s", c->path, dberr);
        free(dberr);
        return OP_COUNTERS_EIO;
    }
    if (v == NULL)
        return 0;
    int rc = parse_override(v, vl, o, op_rocks_now(c));
    rocksdb_free(v);
    if (rc < 0)
        return 0;
    snprintf(o->limit, sizeof o->limit, "%s", limit);
    snprintf(o->subject, sizeof o->subject, "%s", subject);
    return 1;
}

int op_rocks_override_set(op_rocks_t *c, const char *limit, const char *subject,
                             int64_t max, int64_t until, const char *who, const char *reason,
                             char *err, size_t errlen)
{
    const op__limit_t *l = op__limit(c, limit);
    if (l == NULL) {
        snprintf(err, errlen, "no limit '%s' in the configuration", limit);
        return OP_COUNTERS_ENOLIMIT;
    }
    int64_t now = op_rocks_now(c);
    if (!op__key_ok(subject) || max < 0) {
        snprintf(err, errlen, "bad subject or maximum");
        return OP_COUNTERS_EINVAL;
    }
    if (max > l->max_override) {
        snprintf(err, errlen, "%lld is above max_override %lld of limit %s (raise max_override "
                 "in the configuration first)", (long long)max, (long long)l->max_override, limit);
        return OP_COUNTERS_EINVAL;
    }
    if (until != 0 && until <= now) {
        snprintf(err, errlen, "--until is in the past");
        return OP_COUNTERS_EINVAL;
    }
    if (reason == NULL || reason[0] == '\0') {
        snprintf(err, errlen, "a reason is required");
        return OP_COUNTERS_EINVAL;
    }
    char w[64], r[256], v[512];
    copy_clean(w, sizeof w, who);
    copy_clean(r, sizeof r, reason);
    int n = snprintf(v, sizeof v, "%lld\t%lld\t%lld\t%s\t%s", (long long)max, (long long)until,
                     (long long)now, w, r);
    op__key_t k;
    override_key(&k, limit, subject);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rocksdb_writebatch_put(wb, k.b, k.n, v, (size_t)n);
    /* The audit trail: who, when, why, in the log as well as in the store. */
    op_notice("counters: override %s %s max=%lld until=%lld by %s: %s", limit, subject,
              (long long)max, (long long)until, w, r);
    int rc = op__write(c, wb);
    if (rc < 0) {
        snprintf(err, errlen, "the counters store failed (see the daemon's log)");
        return rc;
    }
    /* indexed now: the store has it once its group is written */
    c->override_hashes = op_realloc(c->override_hashes, (c->noverride_hashes + 1) * sizeof(uint64_t));
    c->override_hashes[c->noverride_hashes++] = op__override_hash(limit, subject);
    qsort(c->override_hashes, c->noverride_hashes, sizeof(uint64_t), cmp_u64);
    return rc;
}

int op_rocks_override_clear(op_rocks_t *c, const char *limit, const char *subject)
{
    op_counters_override_t o;
    if (!op__key_ok(limit) || !op__key_ok(subject))
        return OP_COUNTERS_EINVAL;
    int rc = op__override_get(c, limit, subject, &o);
    if (rc <= 0)
        return rc < 0 ? rc : OP_COUNTERS_ENOTFOUND;
    op__key_t k;
    override_key(&k, limit, subject);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rocksdb_writebatch_delete(wb, k.b, k.n);
    op_notice("counters: override %s %s cleared (was max=%lld by %s: %s)", limit, subject,
              (long long)o.max, o.who, o.reason);
    return op__write(c, wb); /* its hash stays indexed: a miss in the store is no harm */
}

int op_rocks_override_list(op_rocks_t *c, const char *limit,
                              int (*fn)(const op_counters_override_t *o, void *data), void *data)
{
    op__key_t lo, hi;
    op__key_init(&lo, 'o');
    if (limit != NULL)
        op__key_str(&lo, limit);
    hi = lo;
    if (limit != NULL)
        hi.b[hi.n - 1] = 1;
    else
        hi.b[0] = 'p';
    if (c->db == NULL)
        return OP_COUNTERS_EIO;
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_upper_bound(ro, hi.b, hi.n);
    rocksdb_iterator_t *it = rocksdb_create_iterator(c->db, ro);
    int64_t now = op_rocks_now(c);
    for (rocksdb_iter_seek(it, lo.b, lo.n); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl), *v = rocksdb_iter_value(it, &vl);
        const char *sep = memchr(k + 1, 0, kl - 1);
        op_counters_override_t o;
        if (sep == NULL || (size_t)(sep - k - 1) > OP_COUNTERS_MAX_KEY ||
            kl - (size_t)(sep - k) - 1 > OP_COUNTERS_MAX_KEY || parse_override(v, vl, &o, now) < 0)
            continue;
        memcpy(o.limit, k + 1, (size_t)(sep - k - 1));
        o.limit[sep - k - 1] = '\0';
        memcpy(o.subject, sep + 1, kl - (size_t)(sep - k) - 1);
        o.subject[kl - (size_t)(sep - k) - 1] = '\0';
        if (fn(&o, data) != 0)
            break;
    }
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return 0;
}

/* ---- top ---- */

static int by_fill(const void *a, const void *b)
{
    const op_counters_top_t *x = a, *y = b;
    /* used/max descending, compared without division */
    double fx = x->max > 0 ? (double)x->used / (double)x->max : (x->used > 0 ? 1e18 : 0);
    double fy = y->max > 0 ? (double)y->used / (double)y->max : (y->used > 0 ? 1e18 : 0);
    if (fx != fy)
        return fx < fy ? 1 : -1;
    return x->used < y->used ? 1 : x->used > y->used ? -1 : strcmp(x->subject, y->subject);
}

int op_rocks_top(op_rocks_t *c, const char *limit, op_counters_top_t *out, size_t n)
{
    const op__limit_t *l = op__limit(c, limit);
    if (l == NULL)
        return OP_COUNTERS_ENOLIMIT;
    if (c->db == NULL) /* the store's counts: a group not yet written is not in them */
        return OP_COUNTERS_EIO;
    op__key_t lo, hi;
    op__key_init(&lo, 'c');
    op__key_str(&lo, limit);
    hi = lo;
    hi.b[hi.n - 1] = 1;
    int64_t first = op_window_first(&l->w, op_rocks_now(c));
    size_t cap = n + 1, have = 0;
    op_counters_top_t *all = op_calloc(cap, sizeof *all);
    char subj[OP_COUNTERS_MAX_KEY + 1] = "";
    int64_t used = 0;
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_upper_bound(ro, hi.b, hi.n);
    rocksdb_iterator_t *it = rocksdb_create_iterator(c->db, ro);
    rocksdb_iter_seek(it, lo.b, lo.n);
    for (;;) {
        int valid = rocksdb_iter_valid(it);
        size_t kl = 0, vl = 0;
        const char *k = valid ? rocksdb_iter_key(it, &kl) : NULL;
        const char *v = valid ? rocksdb_iter_value(it, &vl) : NULL;
        const char *s = valid ? k + lo.n : NULL;
        size_t sl = valid && kl >= lo.n + 9 ? kl - lo.n - 9 : 0;
        int same = valid && strlen(subj) == sl && memcmp(subj, s, sl) == 0;
        if (!same && subj[0] != '\0' && used > 0) {
            /* keep the n best: collect, sort when full, cut back to n */
            op_counters_override_t o;
            int64_t max = l->max;
            if (op__override_get(c, limit, subj, &o) == 1 && !o.expired)
                max = o.max;
            snprintf(all[have].subject, sizeof all[have].subject, "%s", subj);
            all[have].used = used;
            all[have].max = max;
            if (++have == cap) {
                qsort(all, have, sizeof *all, by_fill);
                have = n;
            }
        }
        if (!valid)
            break;
        if (!same) {
            if (sl > OP_COUNTERS_MAX_KEY) {
                rocksdb_iter_next(it);
                continue;
            }
            memcpy(subj, s, sl);
            subj[sl] = '\0';
            used = 0;
        }
        if (vl == 16 && (int64_t)(op__get_be(k + kl - 8) - BIAS) >= first * l->w.resolution &&
            op__get_le(v) > 0)
            used += op__get_le(v);
        rocksdb_iter_next(it);
    }
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    qsort(all, have, sizeof *all, by_fill);
    if (have > n)
        have = n;
    memcpy(out, all, have * sizeof *out);
    free(all);
    return (int)have;
}

uint64_t op_rocks_disk_bytes(op_rocks_t *c)
{
    uint64_t total = 0;
    DIR *d = opendir(c->path);
    if (d == NULL)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char p[4096];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", c->path, e->d_name);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
            total += (uint64_t)st.st_size; /* not st_blocks: the WAL is preallocated */
    }
    closedir(d);
    return total;
}
