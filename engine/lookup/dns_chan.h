/* Internal to the DNS service (dns.c, dns_chan.c, not for other modules):
 * the service's state and its c-ares channels on the libuv loop. */
#ifndef OP_DNS_CHAN_H
#define OP_DNS_CHAN_H

#include "lookup/cache.h"
#include "lookup/dns.h"

#include <ares.h>

typedef struct op__dns_chan {
    ares_channel ch;
    int inflight;
    struct op_dns *dns;
} op__dns_chan_t;

typedef struct op__dns_poll op__dns_poll_t;
typedef struct op__dns_query op__dns_query_t;

struct op_dns {
    uv_loop_t *loop;
    op__dns_chan_t *cur, *old; /* old: retiring after a reload, until its last query ends */
    uv_timer_t timer;          /* c-ares timeouts */
    uv_timer_t defer_timer;    /* completes failures reported inside ares_query */
    int handles_open;
    int closing;
    int in_send;
    op__dns_poll_t *polls;
    op__dns_query_t *deferred;
    op_cache_t *cache;         /* type + name -> op_dns_result_t */
    char *servers_csv;         /* "" = resolv.conf */
    int timeout_ms, tries;
    /* Queries on the wire by the time their lookup gives up (timeout ×
     * tries after it began, whatever c-ares's backoff), soonest first. */
    op__dns_query_t *budget_head, *budget_tail;
    uint64_t lookups, queries;
};

/* A new channel for servers csv; NULL with a message in err. */
op__dns_chan_t *op__dns_chan_new(op_dns_t *dns, const char *csv, int timeout_ms, int tries,
                                 char *err, size_t errlen);
/* Destroys c: c-ares calls back every query still on it (ARES_EDESTRUCTION). */
void op__dns_chan_free(op__dns_chan_t *c);
/* Frees the old channel once its last query has ended (outside c-ares callbacks). */
void op__dns_chan_retire_old(op_dns_t *dns);
/* Sets the c-ares timeout timer after queries were sent or answered. */
void op__dns_chan_arm(op_dns_t *dns);

/* ms until the soonest lookup runs out of its budget (UINT64_MAX: none);
 * the timer fires then too (dns.c). */
uint64_t op__dns_budget_next(const op_dns_t *dns);
/* Answers OP_DNS_TIMEOUT to the lookups whose budget ran out; their
 * queries stay with c-ares until it gives up, and are then dropped. */
void op__dns_budget_expire(op_dns_t *dns);

#endif
