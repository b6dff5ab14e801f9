/* The lookup layer (lookup/cache.h) on its own: a fake service whose
 * operations the test completes by hand, on the cache's manual clock. */
#include "ctest.h"
#include "lib/siphash.h"
#include "lookup/cache.h"

#include <math.h>

/* ---- SipHash ---- */

CTEST(siphash_paper_vector)
{
    /* The paper's appendix A: key 00..0f, message 00..0e. */
    unsigned char key[16], msg[15];
    for (int i = 0; i < 16; i++)
        key[i] = (unsigned char)i;
    for (int i = 0; i < 15; i++)
        msg[i] = (unsigned char)i;
    CHECK(op_siphash_2_4(key, msg, sizeof msg) == 0xa129ca6149be45e5ULL);
    /* The reference implementation's first vector: the empty message. */
    CHECK(op_siphash_2_4(key, msg, 0) == 0x726fdb47dd0e0e31ULL);
}

CTEST(siphash_process_key_is_not_zero)
{
    unsigned char zero[16] = {0};
    CHECK(op_siphash("example.org", 11) != op_siphash_2_4(zero, "example.org", 11));
    CHECK(op_siphash("example.org", 11) == op_siphash("example.org", 11));
}

/* ---- a fake service ---- */

typedef struct {
    int begun, aborted, released;
    int fail_with;           /* begin returns it when < 0 */
    op_cache_flight_t *last; /* the last operation begun */
    void *last_arg;
} fake_t;

static fake_t fake;

static int fake_begin(void *owner, op_cache_flight_t *f, void *arg)
{
    fake_t *s = owner;
    if (s->fail_with < 0)
        return s->fail_with;
    s->begun++;
    s->last = f;
    s->last_arg = arg;
    op_cache_flight_set(f, arg);
    return 0;
}

static void fake_abort(void *owner, op_cache_flight_t *f)
{
    fake_t *s = owner;
    s->aborted++;
    if (s->last == f)
        s->last = NULL;
}

static int *value_new(int n)
{
    int *v = malloc(sizeof *v);
    *v = n;
    return v;
}

static void fake_release(void *v)
{
    fake.released++;
    free(v);
}

static op_cache_t *cache_new(size_t max, int with_abort)
{
    memset(&fake, 0, sizeof fake);
    op_cache_conf_t conf = {.max_entries = max, .max_ttl = INFINITY, .negative_max_ttl = 30};
    op_cache_ops_t ops = {.name = "fake", .begin = fake_begin,
                          .abort = with_abort ? fake_abort : NULL, .release = fake_release};
    return op_cache_new(NULL, &conf, &ops, &fake);
}

/* One waiter's outcome. */
typedef struct {
    op_lookup_req_t req;
    int calls;
    int got;
    double ttl;
} waiter_t;

static void on_answer(op_lookup_req_t *req, const void *value)
{
    waiter_t *w = req->data;
    w->calls++;
    w->got = *(const int *)value;
    w->ttl = req->ttl;
}

static int start(op_cache_t *c, waiter_t *w, const char *key)
{
    memset(w, 0, sizeof *w);
    w->req.data = w;
    return op_lookup_start(c, &w->req, key, strlen(key), 0, NULL, on_answer);
}

static int hit_value(op_cache_t *c, const char *key)
{
    waiter_t w;
    if (start(c, &w, key) != OP_LOOKUP_HIT) {
        op_lookup_cancel(&w.req);
        return -1;
    }
    return *(const int *)w.req.value;
}

/* ---- the cache ---- */

CTEST(miss_then_hit)
{
    op_cache_t *c = cache_new(10, 1);
    waiter_t w;
    CHECK_INT(start(c, &w, "k"), OP_LOOKUP_STARTED);
    CHECK_INT(fake.begun, 1);
    CHECK_INT(w.calls, 0);
    op_cache_complete(fake.last, value_new(7), 100, 0);
    CHECK_INT(w.calls, 1);
    CHECK_INT(w.got, 7);
    CHECK(w.ttl == 100);
    waiter_t h;
    CHECK_INT(start(c, &h, "k"), OP_LOOKUP_HIT);
    CHECK_INT(*(const int *)h.req.value, 7);
    CHECK_INT(h.calls, 0);
    CHECK_INT(fake.begun, 1);
    op_cache_stats_t s;
    op_cache_stats(c, &s);
    CHECK_INT(s.hits, 1);
    CHECK_INT(s.misses, 1);
    CHECK_INT(s.entries, 1);
    CHECK_INT(s.inflight, 0);
    op_cache_free(c);
    CHECK_INT(fake.released, 1);
}

CTEST(ttl_expiry)
{
    op_cache_t *c = cache_new(10, 1);
    op_cache_put(c, "k", 1, value_new(1), 60, 0);
    op_cache_advance_clock(c, 59.5);
    double ttl = 0;
    CHECK(op_cache_peek(c, "k", 1, &ttl) != NULL);
    CHECK(ttl > 0.4 && ttl < 0.6);
    op_cache_advance_clock(c, 0.5);
    CHECK(op_cache_peek(c, "k", 1, NULL) == NULL); /* expired: dropped and released */
    CHECK_INT(fake.released, 1);
    waiter_t w;
    CHECK_INT(start(c, &w, "k"), OP_LOOKUP_STARTED); /* asks again */
    CHECK_INT(fake.begun, 1);
    op_cache_complete(fake.last, value_new(2), 0, 0); /* ttl 0: handed out, not kept */
    CHECK_INT(w.got, 2);
    CHECK_INT(fake.released, 2);
    CHECK_INT(start(c, &w, "k"), OP_LOOKUP_STARTED);
    op_cache_complete(fake.last, value_new(3), 1, 0);
    op_cache_free(c);
}

CTEST(lru_eviction)
{
    op_cache_t *c = cache_new(3, 1);
    op_cache_put(c, "1", 1, value_new(1), 100, 0);
    op_cache_put(c, "2", 1, value_new(2), 100, 0);
    op_cache_put(c, "3", 1, value_new(3), 100, 0);
    CHECK_INT(hit_value(c, "1"), 1);               /* 1 is now the most recent */
    op_cache_put(c, "4", 1, value_new(4), 100, 0); /* evicts 2 */
    CHECK_INT(fake.released, 1);
    CHECK_INT(hit_value(c, "2"), -1);
    CHECK_INT(hit_value(c, "1"), 1);
    CHECK_INT(hit_value(c, "3"), 3);
    op_cache_stats_t s;
    op_cache_stats(c, &s);
    CHECK_INT(s.evictions, 1);
    CHECK_INT(s.entries, 3);
    op_cache_conf_t conf = {.max_entries = 1, .max_ttl = INFINITY, .negative_max_ttl = 30};
    op_cache_configure(c, &conf); /* keeps only the most recent: 3 */
    CHECK_INT(hit_value(c, "3"), 3);
    op_cache_stats(c, &s);
    CHECK_INT(s.entries, 1);
    op_cache_free(c);
    CHECK_INT(fake.released, 4);
}

CTEST(operations_in_flight_are_not_evicted)
{
    op_cache_t *c = cache_new(1, 1);
    waiter_t a, b;
    CHECK_INT(start(c, &a, "a"), OP_LOOKUP_STARTED);
    op_cache_flight_t *fa = fake.last;
    CHECK_INT(start(c, &b, "b"), OP_LOOKUP_STARTED);
    op_cache_flight_t *fb = fake.last;
    op_cache_put(c, "x", 1, value_new(9), 100, 0);
    op_cache_put(c, "y", 1, value_new(9), 100, 0);
    op_cache_complete(fa, value_new(1), 100, 0);
    op_cache_complete(fb, value_new(2), 100, 0);
    CHECK_INT(a.got, 1);
    CHECK_INT(b.got, 2);
    CHECK_INT(hit_value(c, "b"), 2);
    op_cache_free(c);
}

CTEST(negative_entries)
{
    op_cache_t *c = cache_new(10, 1);
    waiter_t w1, w2;
    CHECK_INT(start(c, &w1, "gone"), OP_LOOKUP_STARTED);
    CHECK_INT(start(c, &w2, "gone"), OP_LOOKUP_STARTED);
    op_cache_complete(fake.last, value_new(-1), 3600, 1); /* capped to 30 */
    CHECK(w1.ttl == 30 && w2.ttl == 30);
    CHECK_INT(w2.got, -1);
    op_cache_advance_clock(c, 29);
    CHECK_INT(hit_value(c, "gone"), -1);
    op_cache_advance_clock(c, 1);
    double ttl;
    CHECK(op_cache_peek(c, "gone", 4, &ttl) == NULL);
    /* a positive answer is not held to the negative cap */
    op_cache_put(c, "here", 4, value_new(5), 3600, 0);
    op_cache_advance_clock(c, 31);
    CHECK_INT(hit_value(c, "here"), 5);
    op_cache_free(c);
}

CTEST(keys_are_bytes_with_nul)
{
    op_cache_t *c = cache_new(10, 1);
    op_cache_put(c, "a\0b", 3, value_new(1), 100, 0);
    op_cache_put(c, "a\0c", 3, value_new(2), 100, 0);
    CHECK_INT(*(const int *)op_cache_peek(c, "a\0b", 3, NULL), 1);
    CHECK_INT(*(const int *)op_cache_peek(c, "a\0c", 3, NULL), 2);
    CHECK(op_cache_peek(c, "a", 1, NULL) == NULL);
    op_cache_forget(c, "a\0b", 3);
    CHECK(op_cache_peek(c, "a\0b", 3, NULL) == NULL);
    CHECK_INT(fake.released, 1);
    op_cache_free(c);
}

/* From the LDAP cache's tests, which this cache replaced. */
CTEST(replacing_releases_the_old_value)
{
    op_cache_t *c = cache_new(10, 1);
    op_cache_put(c, "k", 1, value_new(1), 100, 0);
    op_cache_put(c, "k", 1, value_new(2), 100, 0);
    CHECK_INT(fake.released, 1);
    CHECK_INT(hit_value(c, "k"), 2);
    op_cache_stats_t s;
    op_cache_stats(c, &s);
    CHECK_INT(s.entries, 1);
    op_cache_free(c);
}

CTEST(zero_bound_keeps_nothing)
{
    op_cache_t *c = cache_new(0, 1);
    op_cache_put(c, "k", 1, value_new(5), 100, 0);
    CHECK_INT(fake.released, 1);
    CHECK(op_cache_peek(c, "k", 1, NULL) == NULL);
    waiter_t w;
    CHECK_INT(start(c, &w, "k"), OP_LOOKUP_STARTED);
    op_cache_complete(fake.last, value_new(6), 100, 0);
    CHECK_INT(w.got, 6); /* handed out, then released */
    CHECK_INT(fake.released, 2);
    CHECK_INT(start(c, &w, "k"), OP_LOOKUP_STARTED);
    op_cache_complete(fake.last, value_new(7), 100, 0);
    op_cache_free(c);
}

CTEST(coalescing)
{
    op_cache_t *c = cache_new(10, 1);
    waiter_t w[5];
    for (int i = 0; i < 5; i++)
        CHECK_INT(start(c, &w[i], "k"), OP_LOOKUP_STARTED);
    CHECK_INT(fake.begun, 1);
    op_cache_stats_t s;
    op_cache_stats(c, &s);
    CHECK_INT(s.coalesced, 4);
    CHECK_INT(s.inflight, 1);
    op_cache_complete(fake.last, value_new(42), 10, 0);
    for (int i = 0; i < 5; i++) {
        CHECK_INT(w[i].calls, 1);
        CHECK_INT(w[i].got, 42);
    }
    op_cache_stats(c, &s);
    CHECK_INT(s.inflight, 0);
    CHECK_INT(s.entries, 1);
    op_cache_free(c);
}

CTEST(cancel_one_waiter_among_several)
{
    op_cache_t *c = cache_new(10, 1);
    waiter_t w[3];
    for (int i = 0; i < 3; i++)
        start(c, &w[i], "k");
    op_lookup_cancel(&w[1].req);
    op_lookup_cancel(&w[1].req); /* twice is harmless */
    CHECK_INT(fake.aborted, 0);
    op_cache_complete(fake.last, value_new(1), 10, 0);
    CHECK_INT(w[0].calls, 1);
    CHECK_INT(w[1].calls, 0);
    CHECK_INT(w[2].calls, 1);
    op_cache_free(c);
}

CTEST(cancel_of_the_last_waiter_aborts)
{
    op_cache_t *c = cache_new(10, 1);
    waiter_t a, b;
    start(c, &a, "k");
    start(c, &b, "k");
    op_lookup_cancel(&a.req);
    op_lookup_cancel(&b.req);
    CHECK_INT(fake.aborted, 1);
    CHECK(fake.last == NULL);
    op_cache_stats_t s;
    op_cache_stats(c, &s);
    CHECK_INT(s.inflight, 0);
    /* the key is free again: the next lookup starts a new operation */
    CHECK_INT(start(c, &a, "k"), OP_LOOKUP_STARTED);
    CHECK_INT(fake.begun, 2);
    op_cache_complete(fake.last, value_new(3), 10, 0);
    CHECK_INT(a.calls, 1);
    CHECK_INT(b.calls, 0);
    op_cache_free(c);
}

CTEST(cancel_of_the_last_waiter_without_abort_keeps_the_answer)
{
    op_cache_t *c = cache_new(10, 0);
    waiter_t a;
    start(c, &a, "k");
    op_cache_flight_t *f = fake.last;
    op_lookup_cancel(&a.req);
    waiter_t b;
    CHECK_INT(start(c, &b, "k"), OP_LOOKUP_STARTED); /* joins the one on the wire */
    CHECK_INT(fake.begun, 1);
    op_lookup_cancel(&b.req);
    op_cache_complete(f, value_new(8), 10, 0);
    CHECK_INT(a.calls + b.calls, 0);
    CHECK_INT(hit_value(c, "k"), 8);
    op_cache_free(c);
}

CTEST(a_failed_start_never_calls_back)
{
    op_cache_t *c = cache_new(10, 1);
    fake.fail_with = -5;
    waiter_t w;
    CHECK_INT(start(c, &w, "k"), -5);
    fake.fail_with = 0;
    op_cache_stats_t s;
    op_cache_stats(c, &s);
    CHECK_INT(s.inflight, 0);
    CHECK_INT(start(c, &w, "k"), OP_LOOKUP_STARTED);
    op_cache_complete(fake.last, value_new(1), 10, 0);
    CHECK_INT(w.calls, 1);
    op_cache_free(c);
}

CTEST(fresh_neither_reads_nor_fills_nor_shares)
{
    op_cache_t *c = cache_new(10, 1);
    op_cache_put(c, "k", 1, value_new(1), 100, 0);
    waiter_t a, b, d;
    memset(&a, 0, sizeof a);
    a.req.data = &a;
    CHECK_INT(op_lookup_start(c, &a.req, "k", 1, OP_LOOKUP_FRESH, NULL, on_answer),
              OP_LOOKUP_STARTED);
    op_cache_flight_t *fa = fake.last;
    memset(&b, 0, sizeof b);
    b.req.data = &b;
    CHECK_INT(op_lookup_start(c, &b.req, "k", 1, OP_LOOKUP_FRESH, NULL, on_answer),
              OP_LOOKUP_STARTED);
    CHECK_INT(fake.begun, 2);
    CHECK_INT(start(c, &d, "k"), OP_LOOKUP_HIT);
    op_cache_complete(fa, value_new(2), 100, 0);
    CHECK_INT(a.got, 2);
    CHECK(a.ttl == 0);
    op_lookup_cancel(&b.req); /* aborts its own operation */
    CHECK_INT(fake.aborted, 1);
    CHECK_INT(hit_value(c, "k"), 1);
    op_cache_free(c);
}

/* Callbacks that change the cache while a completion hands out its answer. */
static op_cache_t *reentrant_cache;
static waiter_t reentrant[3];

static void on_answer_then_meddle(op_lookup_req_t *req, const void *value)
{
    on_answer(req, value);
    op_lookup_cancel(&reentrant[2].req); /* a later waiter of the same operation */
    op_cache_clear(reentrant_cache);     /* drops the answer just cached */
    waiter_t again;
    CHECK_INT(start(reentrant_cache, &again, "k"), OP_LOOKUP_STARTED);
    op_lookup_cancel(&again.req);
}

CTEST(callbacks_may_cancel_and_clear)
{
    op_cache_t *c = reentrant_cache = cache_new(10, 1);
    for (int i = 0; i < 3; i++)
        start(c, &reentrant[i], "k");
    reentrant[0].req.cb = on_answer_then_meddle;
    op_cache_complete(fake.last, value_new(4), 100, 0);
    CHECK_INT(reentrant[0].got, 4);
    CHECK_INT(reentrant[1].got, 4); /* still valid after the clear */
    CHECK_INT(reentrant[2].calls, 0);
    CHECK_INT(fake.released, 1);
    op_cache_free(c);
}

CTEST(many_keys_stay_bounded)
{
    op_cache_t *c = cache_new(5000, 1);
    char k[32];
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(k, sizeof k, "key%d", i);
        op_cache_put(c, k, (size_t)n, value_new(i), 100, 0);
    }
    int found = 0;
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(k, sizeof k, "key%d", i);
        const int *v = op_cache_peek(c, k, (size_t)n, NULL);
        if (v != NULL) {
            CHECK_INT(*v, i);
            CHECK(i >= 15000); /* only the newest survive */
            found++;
        }
    }
    CHECK_INT(found, 5000);
    op_cache_free(c);
    CHECK_INT(fake.released, 20000);
}

static void count_cache(const char *name, const op_cache_stats_t *s, void *data)
{
    if (strcmp(name, "fake") == 0)
        *(uint64_t *)data += s->hits * 100 + s->entries;
}

CTEST(every_cache_reports_in_one_place)
{
    op_cache_t *c = cache_new(10, 1);
    op_cache_put(c, "k", 1, value_new(1), 100, 0);
    hit_value(c, "k");
    uint64_t seen = 0;
    op_cache_each(count_cache, &seen);
    CHECK_INT(seen, 101);
    op_cache_free(c);
    seen = 0;
    op_cache_each(count_cache, &seen);
    CHECK_INT(seen, 0);
}

int main(int argc, char **argv) { return ctest_main(argc, argv); }
