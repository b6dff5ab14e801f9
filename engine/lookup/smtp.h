/* The SMTP call-out (MO5): does a mail server accept mail for an address?
 * An async SMTP client on libuv asks EHLO (HELO if refused), MAIL FROM:<>,
 * RCPT TO:<address>, QUIT, with a timeout per step, and never sends DATA.
 *
 *  - Verdicts are cached per address (the domain part normalised, the whole
 *    address compared without case): accepted for positive_ttl, rejected
 *    for negative_ttl, tempfail for tempfail_ttl; bounded, LRU (the lookup
 *    cache, cache.h).
 *  - Verifications of one address in flight are shared (one session).
 *  - At most per_destination sessions talk to one IP:port at once; the
 *    rest wait in line.
 *  - A caller may stop waiting (op_lookup_cancel) and the session goes on,
 *    filling the cache: the policy answers 4xx now and the MTA's retry
 *    finds the verdict.
 *
 * Which host to ask (MX lookup) is the caller's business: lua_api_smtp.lua
 * resolves it with outpost.dns.  No Lua in here. */
#ifndef OP_SMTP_H
#define OP_SMTP_H

#include "lookup/cache.h"

#include <stddef.h>
#include <uv.h>

typedef enum {
    OP_SMTP_ACCEPTED,
    OP_SMTP_REJECTED, /* RCPT answered 5xx */
    OP_SMTP_TEMPFAIL, /* 4xx, a timeout, no connection, or the server would not talk */
} op_smtp_verdict_t;

typedef struct {
    op_smtp_verdict_t verdict;
    int code;          /* the RCPT reply code, 0 when there was none */
    char reply[256];   /* the server's reply ("550 5.1.1 <x@y>: ..."), or why: "timeout", ... */
} op_smtp_result_t;

typedef struct {
    const char *helo;       /* name given in EHLO */
    double connect_timeout; /* seconds */
    double step_timeout;    /* seconds per reply */
    double positive_ttl, negative_ttl, tempfail_ttl;
    size_t per_destination;
    size_t cache_size;
} op_smtp_conf_t;

typedef struct op_smtp op_smtp_t;

/* op_smtp_verify's failures (the callback never fires). */
enum {
    OP_SMTP_EINVAL = -1,   /* address, ip or port is not usable */
    OP_SMTP_ESTOPPED = -2, /* the service is stopping */
};

op_smtp_t *op_smtp_new(uv_loop_t *loop, const op_smtp_conf_t *conf, char *err, size_t errlen);
/* New settings apply to sessions started from now on; the cache is kept. */
void op_smtp_reconfigure(op_smtp_t *s, const op_smtp_conf_t *conf);
/* Sessions end (waiters get tempfail "cancelled" before this returns);
 * memory goes when their handles are closed. */
void op_smtp_free(op_smtp_t *s);

/* 0 when address is a plausible mailbox: local@domain, at most 254 bytes,
 * no space, control character, '<' or '>', a valid domain.  Writes the
 * cache key (lower case, domain normalised) to key (cap >= 256). */
int op_smtp_address_key(const char *address, char *key, size_t cap);

/* 1 and *out when a verdict for address is cached, else 0. */
int op_smtp_cached(op_smtp_t *s, const char *address, op_smtp_result_t *out);

/* Verifies address by asking ip:port (ip an address literal).  As
 * op_lookup_start (cache.h):
 *   OP_LOOKUP_HIT      a verdict is cached: req->value (const op_smtp_result_t *)
 *   OP_LOOKUP_STARTED  cb(req, const op_smtp_result_t *) fires once, unless
 *                      op_lookup_cancel(req) comes first (the session goes
 *                      on and fills the cache)
 *   OP_SMTP_EINVAL, OP_SMTP_ESTOPPED: cb never fires */
int op_smtp_verify(op_smtp_t *s, op_lookup_req_t *req, const char *address, const char *ip,
                   int port, op_lookup_cb cb);

typedef struct {
    unsigned long sessions;  /* SMTP connections made */
    unsigned long joined;    /* verifications that joined a session in flight */
    unsigned long hits;
    size_t active_max;       /* most sessions at once to one destination */
    op_cache_stats_t cache;  /* the verdict cache's own */
} op_smtp_stats_t;
void op_smtp_stats(const op_smtp_t *s, op_smtp_stats_t *out);

#endif
