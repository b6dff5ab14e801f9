/* The DNS service: c-ares driven by the libuv loop, with one cache shared by
 * every request and every generation (it lives as long as the process).
 *
 *  - Names are normalised (names.h) before lookup and caching, so
 *    `Example.ORG.` and `example.org` are one cache entry.
 *  - The cache respects TTLs (capped by max_ttl), caches NXDOMAIN and NODATA
 *    for min(SOA TTL, SOA minimum) as RFC 2308 says (capped by
 *    negative_max_ttl; without an SOA in the answer it does not cache them),
 *    is bounded (LRU eviction) and coalesces: lookups of a name already on
 *    the wire wait for that one query instead of sending their own.
 *  - CNAME chains are followed (up to OP_DNS_MAX_CNAME hops): the result
 *    holds the records at the end of the chain, with the smallest TTL on it.
 *  - Server failures (SERVFAIL, REFUSED, FORMERR, timeouts) are not cached.
 *  - Lookups follow the lookup layer's contract (cache.h): a caller that
 *    gives up cancels its request and is never called back; the query
 *    stays on the wire and its answer is cached.
 *
 * No Lua in here: lua_api_dns.c binds it. */
#ifndef OP_DNS_H
#define OP_DNS_H

#include "lookup/cache.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define OP_DNS_MAX_CNAME 8

/* Record types, as on the wire. */
enum {
    OP_DNS_A = 1,
    OP_DNS_PTR = 12,
    OP_DNS_MX = 15,
    OP_DNS_TXT = 16,
    OP_DNS_AAAA = 28,
};

typedef enum {
    OP_DNS_OK = 0,
    OP_DNS_NXDOMAIN,  /* the name does not exist */
    OP_DNS_NODATA,    /* the name exists, without records of that type */
    OP_DNS_SERVFAIL,  /* the server failed (or could not be reached) */
    OP_DNS_REFUSED,
    OP_DNS_TIMEOUT,
    OP_DNS_FORMERR,   /* the server did not understand the query, or sent garbage */
    OP_DNS_BADNAME,   /* the name cannot be valid; nothing was sent */
    OP_DNS_CANCELLED, /* the service stopped before an answer */
} op_dns_status_t;

/* One record: the address (A, AAAA, in inet_ntop form), the host name (MX,
 * PTR, normal form; "." for the root, i.e. a null MX) or the text (TXT: the
 * character-strings of the record joined, as SPF and DKIM read them). */
typedef struct {
    uint16_t pref; /* MX preference, 0 otherwise */
    uint16_t len;  /* of text */
    char *text;
} op_dns_rr_t;

/* A result, immutable once made and shared by reference (the cache holds
 * one).  rr is sorted: MX by preference then name, the others by text, so
 * results are stable whatever order the server used. */
typedef struct {
    int refs;
    /* Names the result for life (never reused, unlike its address), so a
     * binding may keep what it made of it per serial (lua_api_dns.c). */
    uint64_t serial;
    op_dns_status_t status;
    uint32_t ttl;         /* as received, the smallest along the CNAME chain (callers
                           * read req->ttl: after the caps, and what is left) */
    size_t n;
    op_dns_rr_t *rr;
} op_dns_result_t;

typedef struct {
    char **servers;       /* "IP", "IP:PORT", "[IPV6]:PORT"; none: resolv.conf */
    size_t nservers;
    double timeout;       /* seconds per try */
    int tries;
    size_t cache_size;    /* entries */
    double max_ttl;       /* seconds */
    double negative_max_ttl;
} op_dns_conf_t;

typedef struct op_dns op_dns_t;

op_dns_t *op_dns_new(uv_loop_t *loop, const op_dns_conf_t *conf, char *err, size_t errlen);

/* New settings: the cache is kept (shrunk by LRU when cache_size fell);
 * servers, timeout and tries apply to queries sent from now on.  Returns
 * 0, or -1 with a message (the old settings stay). */
int op_dns_reconfigure(op_dns_t *dns, const op_dns_conf_t *conf, char *err, size_t errlen);

/* Stops the service: lookups in flight complete with OP_DNS_CANCELLED,
 * before this returns; handles are closed on the loop's next turn. */
void op_dns_free(op_dns_t *dns);

/* op_dns_lookup's failures (the callback never fires). */
enum {
    OP_DNS_EBADNAME = -1, /* the name cannot be valid (badname) */
    OP_DNS_ESTOPPED = -2, /* the service is stopping (cancelled) */
};

/* Looks name up (any spelling: it is normalised here); for PTR, name is
 * the reverse name (op_dns_reverse_name).  As op_lookup_start (cache.h):
 *   OP_LOOKUP_HIT      req->value is the cached op_dns_result_t (borrowed:
 *                      op_dns_result_ref to keep it), req->ttl its seconds left
 *   OP_LOOKUP_STARTED  cb(req, const op_dns_result_t *) fires once, with
 *                      req->ttl the answer's TTL (OP_DNS_CANCELLED at the
 *                      latest on op_dns_free), unless op_lookup_cancel(req)
 *   OP_DNS_EBADNAME, OP_DNS_ESTOPPED: cb never fires */
int op_dns_lookup(op_dns_t *dns, op_lookup_req_t *req, const char *name, size_t len, int type,
                  op_lookup_cb cb);

/* The cached answer of op_dns_lookup(name, type) when there is one, else
 * NULL, starting nothing: a hit counts as op_dns_lookup's would (a
 * lookup, a cache hit), a miss counts nothing (the caller then calls
 * op_dns_lookup, which counts it).  NULL too for a bad name or a stopping
 * service.  The answer is borrowed as after OP_LOOKUP_HIT; *expires_ms is
 * when it leaves the cache, on op_dns_now_ms's clock. */
const op_dns_result_t *op_dns_peek(op_dns_t *dns, const char *name, size_t len, int type,
                                   double *expires_ms);
/* The clock of the cache's TTLs, in milliseconds (the loop's). */
double op_dns_now_ms(const op_dns_t *dns);

op_dns_result_t *op_dns_result_ref(const op_dns_result_t *res);
void op_dns_result_unref(op_dns_result_t *res);

/* The stable token of a status: "nxdomain", "nodata", "servfail",
 * "refused", "timeout", "formerr", "badname", "cancelled" ("ok" for OK). */
const char *op_dns_status_token(op_dns_status_t status);

/* "192.0.2.1" -> "1.2.0.192.in-addr.arpa", IPv6 -> nibbles under ip6.arpa.
 * Returns 0, or -1 when ip is not an address literal. */
int op_dns_reverse_name(const char *ip, char *out, size_t cap);

/* The canonical text of an address literal (inet_ntop of inet_pton), so
 * "2001:DB8:0::1" and "2001:db8::1" compare equal.  0, or -1. */
int op_dns_canonical_ip(const char *ip, char *out, size_t cap);

/* 0 when s is a server as dns { servers } takes it: IP, IP:PORT or
 * [IPV6]:PORT (the checks of the configuration use it). */
int op_dns_server_check(const char *s);

/* Counters, for tests and the log. */
typedef struct {
    uint64_t lookups;   /* op_dns_lookup calls with a valid name */
    uint64_t hits;
    uint64_t coalesced; /* lookups that joined a query already on the wire */
    uint64_t queries;   /* queries sent (CNAME follow-ups included) */
    uint64_t evictions;
    size_t entries;     /* in the cache now (in-flight ones included) */
    op_cache_stats_t cache; /* the cache's own */
} op_dns_stats_t;
void op_dns_stats(const op_dns_t *dns, op_dns_stats_t *out);

/* Tests: moves the cache's clock forward by seconds (TTL expiry without
 * waiting). */
void op_dns_advance_clock(op_dns_t *dns, double seconds);

#endif
