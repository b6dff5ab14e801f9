/* The DNS service (dns.h): lookups through the shared lookup cache
 * (cache.h), the queries behind them and what their answers mean.  The
 * c-ares channels on the loop are dns_chan.c; reading an answer is
 * dns_parse.c; address literals are dns_addr.c.
 *
 * A cache key is the record type (two bytes) and the name in normal form.
 * A query that nobody waits for any more stays on the wire (c-ares cannot
 * take it back) and its answer is cached: the cache has no abort hook.
 *
 * c-ares doubles its wait on every round of tries (timeout, 2 × timeout,
 * 4 × ...: with timeout 2s and tries 2 a silent server costs 6 s), and
 * 1.18 has no ARES_OPT_MAXTIMEOUTMS.  So each lookup has its own budget,
 * timeout × tries from its first query: when it runs out, the waiters get
 * OP_DNS_TIMEOUT and the query, left to c-ares, is dropped when it ends. */
#include "lookup/dns.h"

#include "lookup/dns_chan.h"
#include "lookup/dns_parse.h"
#include "core/mem.h"
#include "lib/names.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One query on the wire for one cache flight. */
struct op__dns_query {
    op_dns_t *dns;
    op_cache_flight_t *f;
    int type;
    op__dns_chan_t *chan;
    char cur[OP_NAME_MAX + 2]; /* the name on the wire (the end of a CNAME chain) */
    int hops;
    uint32_t chain_ttl;        /* smallest TTL of the CNAMEs followed */
    op_dns_status_t deferred;  /* a failure c-ares reported before ares_query returned */
    op__dns_query_t *dnext;    /* the deferred list */
    uint64_t expires;          /* uv_now() when the lookup's budget runs out */
    op__dns_query_t *bprev, *bnext; /* the budget list (dns_chan.h) */
    int budgeted;              /* on the budget list */
    int abandoned;             /* answered with its budget: c-ares's end is dropped */
};

/* ---- budgets ------------------------------------------------------- */

static void budget_add(op__dns_query_t *q)
{
    op_dns_t *dns = q->dns;
    q->expires = uv_now(dns->loop) + (uint64_t)dns->timeout_ms * (uint64_t)dns->tries;
    /* From the tail: the budget only changes on reload, so this is at once. */
    op__dns_query_t *after = dns->budget_tail;
    while (after != NULL && after->expires > q->expires)
        after = after->bprev;
    q->bprev = after;
    q->bnext = after != NULL ? after->bnext : dns->budget_head;
    if (q->bnext != NULL)
        q->bnext->bprev = q;
    else
        dns->budget_tail = q;
    if (after != NULL)
        after->bnext = q;
    else
        dns->budget_head = q;
    q->budgeted = 1;
}

static void budget_remove(op__dns_query_t *q)
{
    if (!q->budgeted)
        return;
    op_dns_t *dns = q->dns;
    if (q->bprev != NULL)
        q->bprev->bnext = q->bnext;
    else
        dns->budget_head = q->bnext;
    if (q->bnext != NULL)
        q->bnext->bprev = q->bprev;
    else
        dns->budget_tail = q->bprev;
    q->bprev = q->bnext = NULL;
    q->budgeted = 0;
}

uint64_t op__dns_budget_next(const op_dns_t *dns)
{
    if (dns->budget_head == NULL)
        return UINT64_MAX;
    uint64_t now = uv_now(dns->loop);
    return dns->budget_head->expires > now ? dns->budget_head->expires - now : 0;
}

/* ---- results ------------------------------------------------------- */

op_dns_result_t *op_dns_result_ref(const op_dns_result_t *res)
{
    op_dns_result_t *r = (op_dns_result_t *)res;
    r->refs++;
    return r;
}

void op_dns_result_unref(op_dns_result_t *res)
{
    if (res == NULL || --res->refs > 0)
        return;
    for (size_t i = 0; i < res->n; i++)
        free(res->rr[i].text);
    free(res->rr);
    free(res);
}

static void release_result(void *v)
{
    op_dns_result_unref(v);
}

const char *op_dns_status_token(op_dns_status_t status)
{
    switch (status) {
    case OP_DNS_OK: return "ok";
    case OP_DNS_NXDOMAIN: return "nxdomain";
    case OP_DNS_NODATA: return "nodata";
    case OP_DNS_SERVFAIL: return "servfail";
    case OP_DNS_REFUSED: return "refused";
    case OP_DNS_TIMEOUT: return "timeout";
    case OP_DNS_FORMERR: return "formerr";
    case OP_DNS_BADNAME: return "badname";
    case OP_DNS_CANCELLED: return "cancelled";
    }
    return "servfail";
}

/* ---- queries ------------------------------------------------------- */

static op_dns_status_t map_ares(int status)
{
    switch (status) {
    case ARES_ETIMEOUT: return OP_DNS_TIMEOUT;
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED: return OP_DNS_CANCELLED;
    case ARES_EFORMERR:
    case ARES_EBADRESP: return OP_DNS_FORMERR;
    case ARES_EBADNAME: return OP_DNS_BADNAME;
    case ARES_EREFUSED: return OP_DNS_REFUSED;
    default: return OP_DNS_SERVFAIL; /* ECONNREFUSED (port closed), ENOMEM, ... */
    }
}

/* Hands res to the flight's waiters; the cache keeps it for its TTL when
 * the answer may be kept (ttl 0: not at all). */
static void complete(op__dns_query_t *q, op_dns_result_t *res, int negative)
{
    op_cache_flight_t *f = q->f;
    budget_remove(q);
    free(q);
    if (res->status != OP_DNS_OK && res->status != OP_DNS_NXDOMAIN && res->status != OP_DNS_NODATA)
        op_cache_flight_error(f, op_dns_status_token(res->status));
    op_cache_complete(f, res, res->ttl, negative);
}

static void complete_status(op__dns_query_t *q, op_dns_status_t st)
{
    complete(q, op__dns_result_new(st, 0), 0);
}

static void send_query(op__dns_query_t *q);

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    op__dns_query_t *q = arg;
    op_dns_t *dns = q->dns;
    q->chan->inflight--;
    if (q->abandoned) {
        free(q);
        return;
    }
    if (dns->in_send) {
        budget_remove(q); /* completed on the next turn whatever the budget says */
        /* Called from inside ares_query: the caller has not even got its
         * "started" yet.  Complete on the loop's next turn. */
        q->deferred = map_ares(status);
        q->dnext = dns->deferred;
        dns->deferred = q;
        return;
    }
    if (abuf == NULL || alen < 12) {
        complete_status(q, map_ares(status));
        return;
    }
    op__dns_answer_t a;
    if (op__dns_parse(abuf, alen, q->cur, q->type, &a) != 0) {
        complete_status(q, OP_DNS_FORMERR);
        return;
    }
    switch (a.rcode) {
    case 0:
    case 3:
        break;
    case 1: complete_status(q, OP_DNS_FORMERR); return;
    case 5: complete_status(q, OP_DNS_REFUSED); return;
    default: complete_status(q, OP_DNS_SERVFAIL); return; /* 2, 4 (NOTIMP), ... */
    }
    if (a.hops > 0 && a.ttl < q->chain_ttl)
        q->chain_ttl = a.ttl; /* the CNAMEs of this answer */
    if (a.cname[0] != '\0') {
        op_dns_result_unref(a.res);
        q->hops += a.hops;
        if (q->hops > OP_DNS_MAX_CNAME) {
            complete_status(q, OP_DNS_SERVFAIL);
            return;
        }
        snprintf(q->cur, sizeof q->cur, "%s", a.cname);
        send_query(q);
        return;
    }
    /* The cache caps the TTLs (max_ttl, negative_max_ttl) and tells the
     * waiters the capped one. */
    op_dns_result_t *res = a.res;
    if (res->status == OP_DNS_OK)
        res->ttl = res->ttl < q->chain_ttl ? res->ttl : q->chain_ttl;
    else if (a.has_soa)
        res->ttl = a.neg_ttl < q->chain_ttl ? a.neg_ttl : q->chain_ttl;
    else
        res->ttl = 0; /* RFC 2308 §5: no SOA, no negative caching */
    complete(q, res, res->status != OP_DNS_OK);
}

static void on_deferred(uv_timer_t *t)
{
    op_dns_t *dns = t->data;
    op__dns_query_t *list = dns->deferred;
    dns->deferred = NULL;
    while (list != NULL) {
        op__dns_query_t *next = list->dnext;
        complete_status(list, list->deferred);
        list = next;
    }
}

void op__dns_budget_expire(op_dns_t *dns)
{
    uint64_t now = uv_now(dns->loop);
    while (dns->budget_head != NULL && dns->budget_head->expires <= now) {
        op__dns_query_t *q = dns->budget_head;
        budget_remove(q);
        q->abandoned = 1;
        op_cache_flight_t *f = q->f;
        q->f = NULL;
        op_cache_complete(f, op__dns_result_new(OP_DNS_TIMEOUT, 0), 0, 0);
    }
}

static void send_query(op__dns_query_t *q)
{
    op_dns_t *dns = q->dns;
    q->chan = dns->cur;
    q->chan->inflight++;
    dns->queries++;
    dns->in_send++;
    ares_query(q->chan->ch, q->cur, 1 /* IN */, q->type, on_answer, q);
    dns->in_send--;
    if (dns->deferred != NULL)
        uv_timer_start(&dns->defer_timer, on_deferred, 0, 0);
    op__dns_chan_arm(dns);
}

/* The cache's begin hook: the first lookup of a key sends its query. */
static int query_begin(void *owner, op_cache_flight_t *f, void *arg)
{
    (void)arg;
    op_dns_t *dns = owner;
    size_t keylen;
    const unsigned char *key = op_cache_flight_key(f, &keylen);
    op__dns_query_t *q = op_calloc(1, sizeof *q);
    q->dns = dns;
    q->f = f;
    q->type = (key[0] << 8) | key[1];
    memcpy(q->cur, key + 2, keylen - 2);
    q->cur[keylen - 2] = '\0';
    q->chain_ttl = UINT32_MAX;
    op_cache_flight_set(f, q);
    budget_add(q);
    send_query(q);
    return 0;
}

int op_dns_lookup(op_dns_t *dns, op_lookup_req_t *req, const char *name, size_t len, int type,
                  op_lookup_cb cb)
{
    unsigned char key[2 + OP_NAME_MAX + 1];
    if (op_name_normalize(name, len, (char *)key + 2, sizeof key - 2) != 0)
        return OP_DNS_EBADNAME;
    if (dns->closing)
        return OP_DNS_ESTOPPED;
    dns->lookups++;
    key[0] = (unsigned char)(type >> 8);
    key[1] = (unsigned char)type;
    return op_lookup_start(dns->cache, req, key, 2 + strlen((char *)key + 2), 0, NULL, cb);
}

const op_dns_result_t *op_dns_peek(op_dns_t *dns, const char *name, size_t len, int type,
                                   double *expires_ms)
{
    unsigned char key[2 + OP_NAME_MAX + 1];
    if (dns->closing || op_name_normalize(name, len, (char *)key + 2, sizeof key - 2) != 0)
        return NULL;
    key[0] = (unsigned char)(type >> 8);
    key[1] = (unsigned char)type;
    double ttl;
    const op_dns_result_t *res = op_cache_peek(dns->cache, key, 2 + strlen((char *)key + 2), &ttl);
    if (res == NULL)
        return NULL;
    dns->lookups++;
    *expires_ms = (double)(op_cache_now_ms(dns->cache) + (uint64_t)llround(ttl * 1000.0));
    return res;
}

double op_dns_now_ms(const op_dns_t *dns)
{
    return (double)op_cache_now_ms(dns->cache);
}

/* ---- life ---------------------------------------------------------- */

static char *servers_csv(const op_dns_conf_t *conf)
{
    size_t n = 1;
    for (size_t i = 0; i < conf->nservers; i++)
        n += strlen(conf->servers[i]) + 1;
    char *csv = op_calloc(1, n);
    for (size_t i = 0; i < conf->nservers; i++) {
        if (i > 0)
            strcat(csv, ",");
        strcat(csv, conf->servers[i]);
    }
    return csv;
}

static op_cache_conf_t cache_conf(const op_dns_conf_t *conf)
{
    op_cache_conf_t c = {.max_entries = conf->cache_size, .max_ttl = conf->max_ttl,
                         .negative_max_ttl = conf->negative_max_ttl};
    return c;
}

op_dns_t *op_dns_new(uv_loop_t *loop, const op_dns_conf_t *conf, char *err, size_t errlen)
{
    static int library_ready;
    if (!library_ready) {
        int rc = ares_library_init(ARES_LIB_INIT_ALL);
        if (rc != ARES_SUCCESS) {
            snprintf(err, errlen, "dns: %s", ares_strerror(rc));
            return NULL;
        }
        library_ready = 1;
    }
    op_dns_t *dns = op_calloc(1, sizeof *dns);
    dns->loop = loop;
    dns->servers_csv = servers_csv(conf);
    dns->timeout_ms = (int)llround(conf->timeout * 1000.0);
    dns->tries = conf->tries;
    dns->cur = op__dns_chan_new(dns, dns->servers_csv, dns->timeout_ms, dns->tries, err, errlen);
    if (dns->cur == NULL) {
        free(dns->servers_csv);
        free(dns);
        return NULL;
    }
    op_cache_conf_t cc = cache_conf(conf);
    op_cache_ops_t ops = {.name = "dns", .begin = query_begin, .abort = NULL,
                          .release = release_result};
    dns->cache = op_cache_new(loop, &cc, &ops, dns);
    uv_timer_init(loop, &dns->timer);
    uv_timer_init(loop, &dns->defer_timer);
    dns->timer.data = dns;
    dns->defer_timer.data = dns;
    dns->handles_open = 2;
    return dns;
}

int op_dns_reconfigure(op_dns_t *dns, const op_dns_conf_t *conf, char *err, size_t errlen)
{
    char *csv = servers_csv(conf);
    int timeout_ms = (int)llround(conf->timeout * 1000.0);
    if (strcmp(csv, dns->servers_csv) != 0 || timeout_ms != dns->timeout_ms ||
        conf->tries != dns->tries) {
        op__dns_chan_t *c = op__dns_chan_new(dns, csv, timeout_ms, conf->tries, err, errlen);
        if (c == NULL) {
            free(csv);
            return -1;
        }
        if (dns->old != NULL)
            op__dns_chan_free(dns->old); /* a second reload before the first retired: cancels its rest */
        dns->old = dns->cur;
        dns->cur = c;
        free(dns->servers_csv);
        dns->servers_csv = csv;
        dns->timeout_ms = timeout_ms;
        dns->tries = conf->tries;
        op__dns_chan_retire_old(dns);
        csv = NULL;
    }
    free(csv);
    op_cache_conf_t cc = cache_conf(conf);
    op_cache_configure(dns->cache, &cc);
    return 0;
}

static void dns_handle_closed(uv_handle_t *h)
{
    op_dns_t *dns = h->data;
    if (--dns->handles_open == 0)
        free(dns);
}

void op_dns_free(op_dns_t *dns)
{
    if (dns == NULL)
        return;
    dns->closing = 1;
    on_deferred(&dns->defer_timer);
    /* Fires on_answer with ARES_EDESTRUCTION for every query in flight. */
    if (dns->old != NULL)
        op__dns_chan_free(dns->old);
    op__dns_chan_free(dns->cur);
    dns->old = dns->cur = NULL;
    op_cache_free(dns->cache);
    dns->cache = NULL;
    free(dns->servers_csv);
    uv_close((uv_handle_t *)&dns->timer, dns_handle_closed);
    uv_close((uv_handle_t *)&dns->defer_timer, dns_handle_closed);
}

void op_dns_stats(const op_dns_t *dns, op_dns_stats_t *out)
{
    op_cache_stats_t cs;
    op_cache_stats(dns->cache, &cs);
    memset(out, 0, sizeof *out);
    out->lookups = dns->lookups;
    out->hits = cs.hits;
    out->coalesced = cs.coalesced;
    out->queries = dns->queries;
    out->evictions = cs.evictions;
    out->entries = cs.entries + cs.inflight;
    out->cache = cs;
}

void op_dns_advance_clock(op_dns_t *dns, double seconds)
{
    op_cache_advance_clock(dns->cache, seconds);
}
