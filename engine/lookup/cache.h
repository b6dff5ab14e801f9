/* The lookup layer: one cache and one asynchronous contract for every
 * service that asks something slow of the outside world (DNS, LDAP, the
 * SMTP call-out).  Knows nothing of those protocols; spec/c/test_lookup_cache.c
 * drives it directly.
 *
 * A cache maps a key (bytes) to an answer (an opaque value the owning
 * service made) for a TTL, bounded by an LRU; answers marked negative
 * ("no such name", "no such entry") have their own TTL cap.  Keys are
 * hashed with SipHash under the process key (lib/siphash.h), so a sender
 * cannot aim its names at one bucket.
 *
 * The contract is libuv's, with a request the caller owns (embeds in its
 * own record) and keeps alive until it is answered or cancelled:
 *
 *   rc = op_lookup_start(cache, &req, key, keylen, flags, arg, cb);
 *     OP_LOOKUP_HIT (1)      answered now from the cache: req.value, req.ttl;
 *                            cb never fires
 *     OP_LOOKUP_STARTED (0)  cb(&req, value) fires exactly once, from the
 *                            loop, unless op_lookup_cancel(&req) comes first
 *     < 0                    failed (the service's code); cb never fires
 *   op_lookup_cancel(&req)   cb will not fire for req; req may be reused
 *
 * Lookups of a key already in flight wait on that one operation
 * (coalescing).  The service starts an operation in ops.begin, and ends it
 * with op_cache_complete(), which caches the answer and calls every waiter.
 * When the last waiter of an operation cancels, ops.abort stops it; without
 * an abort hook the operation goes on and its answer is cached. */
#ifndef OP_LOOKUP_CACHE_H
#define OP_LOOKUP_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct op_cache op_cache_t;
typedef struct op_cache_entry op_cache_flight_t; /* an operation in flight */
typedef struct op_lookup_req op_lookup_req_t;

/* value is borrowed for the call (the service's type: op_dns_result_t, ...). */
typedef void (*op_lookup_cb)(op_lookup_req_t *req, const void *value);

struct op_lookup_req {
    void *data;        /* the caller's */
    const void *value; /* after OP_LOOKUP_HIT: the answer, borrowed until the
                        * caller next calls into this cache */
    double ttl;        /* on a hit, the seconds the answer has left; in cb, its
                        * TTL after the caps (0 for a FRESH lookup) */
    /* private to cache.c */
    op_lookup_cb cb;
    struct op_cache_entry *entry;
    op_lookup_req_t *prev, *next;
};

enum { OP_LOOKUP_STARTED = 0, OP_LOOKUP_HIT = 1 };

/* flags of op_lookup_start */
enum {
    OP_LOOKUP_FRESH = 1, /* neither read nor fill the cache, nor share the operation */
};

typedef struct {
    const char *name; /* "dns", "ldap", "smtp": names the cache's stats */
    /* Starts the operation for f (its key: op_cache_flight_key); arg is the
     * start call's.  Returns 0, then ends it later (never before returning)
     * with op_cache_complete(f, ...); or a negative code, which the start
     * call returns (no operation, no callback). */
    int (*begin)(void *owner, op_cache_flight_t *f, void *arg);
    /* Nobody waits for f any more: stop it; it must not complete after.
     * NULL: the operation goes on and its answer is cached. */
    void (*abort)(void *owner, op_cache_flight_t *f);
    /* An answer leaves the cache, or was not kept.  NULL: nothing to free. */
    void (*release)(void *value);
} op_cache_ops_t;

typedef struct {
    size_t max_entries;      /* answers kept (0: none) */
    double max_ttl;          /* caps, seconds (INFINITY: none) */
    double negative_max_ttl;
} op_cache_conf_t;

typedef struct {
    uint64_t hits;       /* answered from the cache */
    uint64_t misses;     /* started an operation */
    uint64_t coalesced;  /* joined an operation in flight */
    uint64_t evictions;  /* dropped by the LRU bound */
    size_t entries;      /* answers held now */
    size_t inflight;     /* operations in flight now */
} op_cache_stats_t;

/* loop gives the clock (uv_now); NULL: a clock that only
 * op_cache_advance_clock moves (unit tests). */
op_cache_t *op_cache_new(uv_loop_t *loop, const op_cache_conf_t *conf, const op_cache_ops_t *ops,
                         void *owner);
/* Drops every answer.  Operations still in flight are aborted (when there
 * is an abort hook) and their waiters never called: complete them first. */
void op_cache_free(op_cache_t *c);
/* New bounds, applied at once (reload); the answers are kept. */
void op_cache_configure(op_cache_t *c, const op_cache_conf_t *conf);

int op_lookup_start(op_cache_t *c, op_lookup_req_t *req, const void *key, size_t keylen,
                    unsigned flags, void *arg, op_lookup_cb cb);
void op_lookup_cancel(op_lookup_req_t *req);

/* Ends f: caches value for ttl seconds (after the caps; ttl < 1 ms or a
 * FRESH operation: not at all), then calls f's waiters with it.  The cache
 * owns value from here (ops.release). */
void op_cache_complete(op_cache_flight_t *f, void *value, double ttl, int negative);

/* Before op_cache_complete: the operation failed, with kind (a fixed
 * token: "timeout", "servfail", "unavailable", ...), for the metrics of
 * the dependency (core/metrics.h); answers that are an outcome (nxdomain,
 * no such entry, a 5xx) are not failures. */
void op_cache_flight_error(op_cache_flight_t *f, const char *kind);

const void *op_cache_flight_key(const op_cache_flight_t *f, size_t *keylen);
/* The service's record of the operation (set in begin). */
void op_cache_flight_set(op_cache_flight_t *f, void *op);
void *op_cache_flight_get(const op_cache_flight_t *f);

/* The cached answer for key, without starting anything (a hit counts, and
 * the entry becomes the most recent), or NULL.  *ttl: seconds left. */
const void *op_cache_peek(op_cache_t *c, const void *key, size_t keylen, double *ttl);
/* Stores value under key as op_cache_complete would; a key in flight
 * keeps its operation and value is released. */
void op_cache_put(op_cache_t *c, const void *key, size_t keylen, void *value, double ttl,
                  int negative);
void op_cache_forget(op_cache_t *c, const void *key, size_t keylen);
/* Drops every answer (operations in flight go on). */
void op_cache_clear(op_cache_t *c);

/* The clock of the cache's TTLs, in milliseconds (the loop's uv_now, or
 * the tests' clock): an answer peeked with *ttl left expires at
 * op_cache_now_ms(c) + llround(ttl * 1000). */
uint64_t op_cache_now_ms(const op_cache_t *c);

void op_cache_stats(const op_cache_t *c, op_cache_stats_t *out);
/* Every cache of the process with its stats (the one place metrics read),
 * oldest first.  Loop thread only. */
void op_cache_each(void (*fn)(const char *name, const op_cache_stats_t *stats, void *data),
                   void *data);
/* Tests: moves the cache's clock forward (TTL expiry without waiting). */
void op_cache_advance_clock(op_cache_t *c, double seconds);

#endif
