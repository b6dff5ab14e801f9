/* The LDAP service: searches on libldap's asynchronous API, driven by the
 * libuv loop (a connection's socket is watched with uv_poll; ldap_result is
 * called with a zero timeout when it is readable).  Knows nothing of Lua:
 * engine/lua/lua_api_ldap.c binds it as outpost.ldap.
 *
 *  - A pool of connections, each to the first of the configured URIs that
 *    answers (failover), bound with a simple bind (password from a file) or
 *    anonymously, optionally after StartTLS or over ldaps.  Connecting and
 *    binding run on libuv's thread pool, bounded by connect_timeout, so a
 *    slow server never blocks the loop; searches run on the loop.
 *  - A broken connection fails its searches with OP_LDAP_UNAVAILABLE and is
 *    re-established with exponential backoff (reconnect_min..reconnect_max).
 *    While no connection is up or being set up, searches fail at once.
 *  - Every search has its own timeout; a search nobody waits for any more
 *    is abandoned on the server.
 *  - A cache of answers (positive and negative TTLs, LRU bound) and
 *    coalescing: identical searches in flight share one server request.
 *    Both live in the service, so they survive reloads. */
#ifndef OP_LDAP_SERVICE_H
#define OP_LDAP_SERVICE_H

#include "config/config.h"
#include "lookup/cache.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct op_ldap op_ldap_t;
typedef struct op_ldap_req op_ldap_req_t;

typedef enum {
    OP_LDAP_OK = 0,
    OP_LDAP_TIMEOUT,
    OP_LDAP_UNAVAILABLE,
    OP_LDAP_NOSUCHOBJECT,
    OP_LDAP_SIZELIMIT,
    OP_LDAP_INVALID,
} op_ldap_status_t;

enum { OP_LDAP_SCOPE_BASE, OP_LDAP_SCOPE_ONE, OP_LDAP_SCOPE_SUB };

typedef struct {
    char *name;
    size_t nvalues;
    char **values; /* NUL-terminated copies; lens[i] counts embedded NULs */
    size_t *lens;
} op_ldap_attr_t;

typedef struct {
    char *dn;
    size_t nattrs;
    op_ldap_attr_t *attrs;
} op_ldap_entry_t;

/* An answer: immutable once made, shared by the cache and every waiter of
 * a coalesced search, freed with its last reference.  serial names it for
 * life (never reused), so a decoded copy can be kept per answer. */
typedef struct {
    int refs;
    uint64_t serial;
    op_ldap_status_t status;
    size_t nentries;
    op_ldap_entry_t *entries;
} op_ldap_result_t;

typedef struct {
    const char *base;
    int scope;               /* OP_LDAP_SCOPE_* */
    const char *filter;      /* already expanded (ldap_filter.h) */
    const char *const *attrs; /* NULL: all user attributes */
    size_t nattrs;
    double timeout;          /* seconds; 0: the configured default */
    int no_cache;            /* neither read nor fill the cache */
} op_ldap_query_t;

/* The answer of a search that was started; res is borrowed for the call
 * (op_ldap_result_ref to keep it). */
typedef void (*op_ldap_cb)(op_ldap_req_t *req, op_ldap_result_t *res);

/* A search, owned by the caller (embedded in its record) from
 * op_ldap_search until its callback fires or op_ldap_cancel. */
struct op_ldap_req {
    void *data;                  /* the caller's */
    const op_ldap_result_t *hit; /* after OP_LOOKUP_HIT: the cached answer, borrowed */
    /* private to the LDAP service */
    op_lookup_req_t lk;
    op_ldap_t *l;                /* while it waits */
    op_ldap_cb cb;
    uint64_t deadline_ms;
    op_ldap_req_t *tprev, *tnext; /* the service's waiters, by deadline */
};

typedef struct {
    uint64_t searches;   /* op_ldap_search calls */
    uint64_t cache_hits;
    uint64_t coalesced;  /* joined a search already in flight */
    uint64_t sent;       /* requests sent to a server */
    uint64_t timeouts;
    uint64_t connects;   /* connections established */
    uint64_t connect_failures;
    size_t cached;       /* answers in the cache now */
    size_t ready;        /* connections up now */
    op_cache_stats_t cache; /* the cache's own */
} op_ldap_stats_t;

/* Starts the service when cfg names servers; returns NULL with err empty
 * when it names none, NULL with a message on an error (an unreadable
 * password file). */
op_ldap_t *op_ldap_start(uv_loop_t *loop, const op_config_t *cfg, char *err, size_t errlen);

/* Applies a reloaded configuration: servers, bind, TLS (connections are
 * re-established once idle), timeouts, cache bounds and TTLs.  pool_size
 * needs a restart.  Returns -1 with a message and changes nothing when the
 * password file cannot be read. */
int op_ldap_reload(op_ldap_t *l, const op_config_t *cfg, char *err, size_t errlen);

/* Stops: searches still in flight answer OP_LDAP_UNAVAILABLE now; memory
 * goes when the loop has run the close callbacks. */
void op_ldap_stop(op_ldap_t *l);

/* Searches, as op_lookup_start (cache.h):
 *   OP_LOOKUP_HIT      the answer is cached: req->hit (borrowed); cb never fires
 *   OP_LOOKUP_STARTED  cb fires exactly once (the answer, or OP_LDAP_TIMEOUT
 *                      when the query's timeout passes first), unless
 *                      op_ldap_cancel(req) comes first
 *   -OP_LDAP_UNAVAILABLE (no server is reachable), -OP_LDAP_INVALID (the
 *                      server refused the search): cb never fires */
int op_ldap_search(op_ldap_t *l, op_ldap_req_t *req, const op_ldap_query_t *q, op_ldap_cb cb);

/* The cached answer of op_ldap_search(q) when there is one, else NULL,
 * starting nothing: a hit counts as op_ldap_search's would (a search, a
 * cache hit), a miss counts nothing (the caller then calls op_ldap_search,
 * which counts it).  NULL for a no_cache query.  Borrowed as req->hit. */
const op_ldap_result_t *op_ldap_peek(op_ldap_t *l, const op_ldap_query_t *q);

/* Gives up on a started search: its callback will not fire (a no-op once
 * it has).  The last waiter of a search abandons it on the server. */
void op_ldap_cancel(op_ldap_req_t *req);

void op_ldap_result_ref(op_ldap_result_t *r);
void op_ldap_result_unref(op_ldap_result_t *r);

/* "timeout", "unavailable", ... (never NULL; NULL for OP_LDAP_OK). */
const char *op_ldap_status_token(op_ldap_status_t s);

void op_ldap_stats(const op_ldap_t *l, op_ldap_stats_t *out);

/* Empties the cache (specs; an admin command later). */
void op_ldap_cache_flush(op_ldap_t *l);

#endif
