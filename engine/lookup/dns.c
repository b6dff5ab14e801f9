/* The DNS service (dns.h): c-ares channels on the libuv loop, the cache and
 * the coalescing of lookups.
 *
 * A cache entry is either resolved (it holds a result and is in the LRU
 * list) or in flight (it holds the waiters of its one query and cannot be
 * evicted).  Settings that need a new c-ares channel (servers, timeout,
 * tries) take effect by making a new channel for new queries; the old one
 * retires when its last query ends, so a reload cancels nothing. */
#include "lookup/dns.h"

#include "lookup/dns_parse.h"
#include "lib/hash.h"
#include "core/log.h"
#include "core/mem.h"
#include "lib/names.h"

#include <arpa/inet.h>
#include <ares.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct waiter {
    struct waiter *next;
    op_dns_cb cb;
    void *data;
} waiter_t;

typedef struct chan {
    ares_channel ch;
    int inflight;
    struct op_dns *dns;
} chan_t;

typedef struct entry {
    struct entry *hnext;        /* hash chain */
    struct entry *prev, *next;  /* LRU, resolved entries only (head = newest) */
    struct entry *dnext;        /* the deferred list */
    struct op_dns *dns;
    uint32_t hash;
    int type;
    char name[OP_NAME_MAX + 1];
    op_dns_result_t *res;       /* NULL while in flight */
    uint64_t expires_ms;
    /* in flight */
    waiter_t *waiters, **wtail;
    chan_t *chan;
    char cur[OP_NAME_MAX + 2];  /* the name on the wire (the end of a CNAME chain) */
    int hops;
    uint32_t chain_ttl;         /* smallest TTL of the CNAMEs followed */
    op_dns_status_t deferred;   /* a failure c-ares reported before ares_query returned */
} entry_t;

typedef struct poll {
    uv_poll_t h;
    ares_socket_t fd;
    struct poll *next;
    struct op_dns *dns;
} poll_t;

struct op_dns {
    uv_loop_t *loop;
    chan_t *cur, *old;
    uv_timer_t timer;       /* c-ares timeouts */
    uv_timer_t defer_timer; /* completes failures reported inside ares_query */
    int handles_open;
    int closing;
    int in_send;
    poll_t *polls;
    entry_t **buckets;
    size_t nbuckets;
    size_t nentries, nresolved;
    entry_t *lru_head, *lru_tail;
    entry_t *deferred;
    size_t cache_size;
    double max_ttl, negative_max_ttl;
    char *servers_csv;   /* "" = resolv.conf */
    int timeout_ms, tries;
    uint64_t clock_offset_ms;
    op_dns_stats_t stats;
};

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

/* ---- the cache ----------------------------------------------------- */

static uint64_t now_ms(const op_dns_t *dns)
{
    return uv_now(dns->loop) + dns->clock_offset_ms;
}

static uint32_t hash_key(const char *name, int type)
{
    return (uint32_t)op_hash_str(OP_HASH_INIT ^ (uint64_t)type, name);
}

static entry_t *table_find(op_dns_t *dns, const char *name, int type, uint32_t h)
{
    for (entry_t *e = dns->buckets[h & (dns->nbuckets - 1)]; e != NULL; e = e->hnext)
        if (e->hash == h && e->type == type && strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

static void table_grow(op_dns_t *dns)
{
    size_t n = dns->nbuckets * 2;
    entry_t **b = op_calloc(n, sizeof *b);
    for (size_t i = 0; i < dns->nbuckets; i++) {
        entry_t *e = dns->buckets[i];
        while (e != NULL) {
            entry_t *next = e->hnext;
            e->hnext = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(dns->buckets);
    dns->buckets = b;
    dns->nbuckets = n;
}

static void table_insert(op_dns_t *dns, entry_t *e)
{
    if (dns->nentries >= dns->nbuckets)
        table_grow(dns);
    entry_t **slot = &dns->buckets[e->hash & (dns->nbuckets - 1)];
    e->hnext = *slot;
    *slot = e;
    dns->nentries++;
}

static void table_remove(op_dns_t *dns, entry_t *e)
{
    entry_t **p = &dns->buckets[e->hash & (dns->nbuckets - 1)];
    while (*p != e)
        p = &(*p)->hnext;
    *p = e->hnext;
    dns->nentries--;
}

static void lru_unlink(op_dns_t *dns, entry_t *e)
{
    if (e->prev) e->prev->next = e->next; else dns->lru_head = e->next;
    if (e->next) e->next->prev = e->prev; else dns->lru_tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(op_dns_t *dns, entry_t *e)
{
    e->prev = NULL;
    e->next = dns->lru_head;
    if (dns->lru_head) dns->lru_head->prev = e; else dns->lru_tail = e;
    dns->lru_head = e;
}

/* Drops a resolved entry. */
static void entry_drop(op_dns_t *dns, entry_t *e)
{
    lru_unlink(dns, e);
    table_remove(dns, e);
    dns->nresolved--;
    op_dns_result_unref(e->res);
    free(e);
}

static void evict(op_dns_t *dns)
{
    while (dns->nresolved > dns->cache_size && dns->lru_tail != NULL) {
        entry_drop(dns, dns->lru_tail);
        dns->stats.evictions++;
    }
}

/* ---- c-ares on the loop -------------------------------------------- */

static void arm_timer(op_dns_t *dns);
static void retire_old(op_dns_t *dns);

static void poll_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    poll_t *p = h->data;
    op_dns_t *dns = p->dns;
    ares_socket_t fd = p->fd;
    ares_socket_t r = (status < 0 || (events & UV_READABLE)) ? fd : ARES_SOCKET_BAD;
    ares_socket_t w = (status < 0 || (events & UV_WRITABLE)) ? fd : ARES_SOCKET_BAD;
    /* The socket belongs to one channel; the other just checks its timeouts. */
    ares_process_fd(dns->cur->ch, r, w);
    if (dns->old != NULL)
        ares_process_fd(dns->old->ch, r, w);
    retire_old(dns);
    arm_timer(dns);
}

static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    op_dns_t *dns = data;
    poll_t **pp = &dns->polls;
    while (*pp != NULL && (*pp)->fd != fd)
        pp = &(*pp)->next;
    poll_t *p = *pp;
    if (!readable && !writable) {
        if (p != NULL) {
            *pp = p->next;
            uv_poll_stop(&p->h);
            uv_close((uv_handle_t *)&p->h, poll_closed);
        }
        return;
    }
    if (p == NULL) {
        p = op_calloc(1, sizeof *p);
        p->fd = fd;
        p->dns = dns;
        p->h.data = p;
        if (uv_poll_init_socket(dns->loop, &p->h, fd) != 0) {
            op_error("dns: cannot watch socket %d", (int)fd);
            free(p);
            return;
        }
        p->next = dns->polls;
        dns->polls = p;
    }
    uv_poll_start(&p->h, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0), on_poll);
}

static uint64_t chan_timeout_ms(chan_t *c, uint64_t best)
{
    struct timeval tv;
    struct timeval *t = ares_timeout(c->ch, NULL, &tv);
    if (t == NULL)
        return best;
    uint64_t ms = (uint64_t)t->tv_sec * 1000 + ((uint64_t)t->tv_usec + 999) / 1000;
    return ms < best ? ms : best;
}

static void on_timer(uv_timer_t *t)
{
    op_dns_t *dns = t->data;
    ares_process_fd(dns->cur->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    if (dns->old != NULL)
        ares_process_fd(dns->old->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    retire_old(dns);
    arm_timer(dns);
}

static void arm_timer(op_dns_t *dns)
{
    if (dns->closing)
        return;
    uint64_t ms = chan_timeout_ms(dns->cur, UINT64_MAX);
    if (dns->old != NULL)
        ms = chan_timeout_ms(dns->old, ms);
    if (ms == UINT64_MAX)
        uv_timer_stop(&dns->timer);
    else
        uv_timer_start(&dns->timer, on_timer, ms, 0);
}

static chan_t *chan_new(op_dns_t *dns, const char *csv, int timeout_ms, int tries, char *err,
                        size_t errlen)
{
    struct ares_options o;
    memset(&o, 0, sizeof o);
    /* NOCHECKRESP: hand SERVFAIL and REFUSED answers to us instead of
     * trying the next server and ending with "connection refused", so the
     * policy learns what the server said. */
    o.flags = ARES_FLAG_NOCHECKRESP;
    o.timeout = timeout_ms;
    o.tries = tries;
    o.sock_state_cb = sock_state;
    o.sock_state_cb_data = dns;
    chan_t *c = op_calloc(1, sizeof *c);
    c->dns = dns;
    int rc = ares_init_options(&c->ch, &o,
                               ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
                                   ARES_OPT_SOCK_STATE_CB);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "dns: cannot start the resolver: %s", ares_strerror(rc));
        free(c);
        return NULL;
    }
    if (csv[0] != '\0' && (rc = ares_set_servers_ports_csv(c->ch, csv)) != ARES_SUCCESS) {
        snprintf(err, errlen, "dns: servers '%s': %s", csv, ares_strerror(rc));
        ares_destroy(c->ch);
        free(c);
        return NULL;
    }
    return c;
}

static void chan_free(chan_t *c)
{
    ares_destroy(c->ch);
    free(c);
}

/* Outside c-ares callbacks only: a channel may not be destroyed from its own. */
static void retire_old(op_dns_t *dns)
{
    if (dns->old != NULL && dns->old->inflight == 0) {
        chan_t *c = dns->old;
        dns->old = NULL;
        chan_free(c);
    }
}

/* ---- lookups ------------------------------------------------------- */

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

/* Hands res to every waiter of e, and caches it for cache_s seconds (0: not
 * at all).  Waiters may look names up again from their callbacks (a
 * resumed policy goes on), so the entry is settled before they run. */
static void complete(op_dns_t *dns, entry_t *e, op_dns_result_t *res, double cache_s)
{
    waiter_t *w = e->waiters;
    e->waiters = NULL;
    e->chan = NULL;
    if (cache_s >= 0.001 && dns->cache_size > 0 && !dns->closing) {
        e->res = op_dns_result_ref(res);
        e->expires_ms = now_ms(dns) + (uint64_t)llround(cache_s * 1000.0);
        lru_push(dns, e);
        dns->nresolved++;
        evict(dns);
    } else {
        table_remove(dns, e);
        free(e);
    }
    while (w != NULL) {
        waiter_t *next = w->next;
        w->cb(w->data, res, res->ttl);
        free(w);
        w = next;
    }
    op_dns_result_unref(res);
}

static void send_query(op_dns_t *dns, entry_t *e);

static void complete_status(op_dns_t *dns, entry_t *e, op_dns_status_t st)
{
    complete(dns, e, op__dns_result_new(st, 0), 0);
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    entry_t *e = arg;
    op_dns_t *dns = e->dns;
    e->chan->inflight--;
    if (dns->in_send) {
        /* Called from inside ares_query: the caller has not even got its
         * "started" yet.  Complete on the loop's next turn. */
        e->deferred = map_ares(status);
        e->dnext = dns->deferred;
        dns->deferred = e;
        return;
    }
    if (abuf == NULL || alen < 12) {
        complete_status(dns, e, map_ares(status));
        return;
    }
    op__dns_answer_t a;
    if (op__dns_parse(abuf, alen, e->cur, e->type, &a) != 0) {
        complete_status(dns, e, OP_DNS_FORMERR);
        return;
    }
    switch (a.rcode) {
    case 0:
    case 3:
        break;
    case 1: complete_status(dns, e, OP_DNS_FORMERR); return;
    case 5: complete_status(dns, e, OP_DNS_REFUSED); return;
    default: complete_status(dns, e, OP_DNS_SERVFAIL); return; /* 2, 4 (NOTIMP), ... */
    }
    if (a.hops > 0 && a.ttl < e->chain_ttl)
        e->chain_ttl = a.ttl; /* the CNAMEs of this answer */
    if (a.cname[0] != '\0') {
        op_dns_result_unref(a.res);
        e->hops += a.hops;
        if (e->hops > OP_DNS_MAX_CNAME) {
            complete_status(dns, e, OP_DNS_SERVFAIL);
            return;
        }
        snprintf(e->cur, sizeof e->cur, "%s", a.cname);
        send_query(dns, e);
        return;
    }
    op_dns_result_t *res = a.res;
    double cache_s = 0;
    if (res->status == OP_DNS_OK) {
        uint32_t ttl = res->ttl < e->chain_ttl ? res->ttl : e->chain_ttl;
        if (ttl > dns->max_ttl)
            ttl = (uint32_t)dns->max_ttl;
        res->ttl = ttl;
        cache_s = ttl;
    } else if (a.has_soa) {
        uint32_t ttl = a.neg_ttl < e->chain_ttl ? a.neg_ttl : e->chain_ttl;
        if (ttl > dns->negative_max_ttl)
            ttl = (uint32_t)dns->negative_max_ttl;
        res->ttl = ttl;
        cache_s = ttl;
    } else {
        res->ttl = 0; /* RFC 2308 §5: no SOA, no negative caching */
    }
    complete(dns, e, res, cache_s);
}

static void on_deferred(uv_timer_t *t)
{
    op_dns_t *dns = t->data;
    entry_t *list = dns->deferred;
    dns->deferred = NULL;
    while (list != NULL) {
        entry_t *next = list->dnext;
        complete_status(dns, list, list->deferred);
        list = next;
    }
}

static void send_query(op_dns_t *dns, entry_t *e)
{
    e->chan = dns->cur;
    e->chan->inflight++;
    dns->stats.queries++;
    dns->in_send++;
    ares_query(e->chan->ch, e->cur, 1 /* IN */, e->type, on_answer, e);
    dns->in_send--;
    if (dns->deferred != NULL)
        uv_timer_start(&dns->defer_timer, on_deferred, 0, 0);
    arm_timer(dns);
}

op_dns_start_t op_dns_lookup(op_dns_t *dns, const char *name, size_t len, int type,
                             op_dns_cb cb, void *data, op_dns_result_t **hit, uint32_t *ttl)
{
    char norm[OP_NAME_MAX + 1];
    if (op_name_normalize(name, len, norm, sizeof norm) != 0)
        return OP_DNS_INVALID;
    if (dns->closing)
        return OP_DNS_STOPPED;
    dns->stats.lookups++;
    uint32_t h = hash_key(norm, type);
    entry_t *e = table_find(dns, norm, type, h);
    if (e != NULL && e->res != NULL) {
        uint64_t now = now_ms(dns);
        if (now < e->expires_ms) {
            lru_unlink(dns, e);
            lru_push(dns, e);
            dns->stats.hits++;
            *hit = op_dns_result_ref(e->res);
            *ttl = (uint32_t)((e->expires_ms - now) / 1000);
            return OP_DNS_HIT;
        }
        entry_drop(dns, e);
        e = NULL;
    }
    waiter_t *w = op_calloc(1, sizeof *w);
    w->cb = cb;
    w->data = data;
    if (e != NULL) {
        *e->wtail = w;
        e->wtail = &w->next;
        dns->stats.coalesced++;
        return OP_DNS_STARTED;
    }
    e = op_calloc(1, sizeof *e);
    e->dns = dns;
    e->hash = h;
    e->type = type;
    memcpy(e->name, norm, strlen(norm) + 1);
    memcpy(e->cur, norm, strlen(norm) + 1);
    e->chain_ttl = UINT32_MAX;
    e->waiters = w;
    e->wtail = &w->next;
    table_insert(dns, e);
    send_query(dns, e);
    return OP_DNS_STARTED;
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

static void apply_simple(op_dns_t *dns, const op_dns_conf_t *conf)
{
    dns->cache_size = conf->cache_size;
    dns->max_ttl = conf->max_ttl;
    dns->negative_max_ttl = conf->negative_max_ttl;
    evict(dns);
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
    dns->cur = chan_new(dns, dns->servers_csv, dns->timeout_ms, dns->tries, err, errlen);
    if (dns->cur == NULL) {
        free(dns->servers_csv);
        free(dns);
        return NULL;
    }
    dns->nbuckets = 64;
    dns->buckets = op_calloc(dns->nbuckets, sizeof *dns->buckets);
    apply_simple(dns, conf);
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
        chan_t *c = chan_new(dns, csv, timeout_ms, conf->tries, err, errlen);
        if (c == NULL) {
            free(csv);
            return -1;
        }
        if (dns->old != NULL)
            chan_free(dns->old); /* a second reload before the first retired: cancels its rest */
        dns->old = dns->cur;
        dns->cur = c;
        free(dns->servers_csv);
        dns->servers_csv = csv;
        dns->timeout_ms = timeout_ms;
        dns->tries = conf->tries;
        retire_old(dns);
        csv = NULL;
    }
    free(csv);
    apply_simple(dns, conf);
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
        chan_free(dns->old);
    chan_free(dns->cur);
    dns->old = dns->cur = NULL;
    while (dns->lru_head != NULL)
        entry_drop(dns, dns->lru_head);
    free(dns->buckets);
    free(dns->servers_csv);
    uv_close((uv_handle_t *)&dns->timer, dns_handle_closed);
    uv_close((uv_handle_t *)&dns->defer_timer, dns_handle_closed);
}

void op_dns_stats(const op_dns_t *dns, op_dns_stats_t *out)
{
    *out = dns->stats;
    out->entries = dns->nentries;
}

void op_dns_advance_clock(op_dns_t *dns, double seconds)
{
    dns->clock_offset_ms += (uint64_t)llround(seconds * 1000.0);
}

/* ---- addresses ----------------------------------------------------- */

int op_dns_canonical_ip(const char *ip, char *out, size_t cap)
{
    unsigned char buf[16];
    if (inet_pton(AF_INET, ip, buf) == 1)
        return inet_ntop(AF_INET, buf, out, (socklen_t)cap) ? 0 : -1;
    if (inet_pton(AF_INET6, ip, buf) == 1)
        return inet_ntop(AF_INET6, buf, out, (socklen_t)cap) ? 0 : -1;
    return -1;
}

int op_dns_reverse_name(const char *ip, char *out, size_t cap)
{
    unsigned char b[16];
    if (inet_pton(AF_INET, ip, b) == 1) {
        int n = snprintf(out, cap, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
        return n > 0 && (size_t)n < cap ? 0 : -1;
    }
    if (inet_pton(AF_INET6, ip, b) != 1 || cap < 16 * 4 + sizeof "ip6.arpa")
        return -1;
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 15; i >= 0; i--) {
        *p++ = hex[b[i] & 0xf];
        *p++ = '.';
        *p++ = hex[b[i] >> 4];
        *p++ = '.';
    }
    strcpy(p, "ip6.arpa");
    return 0;
}

int op_dns_server_check(const char *s)
{
    unsigned char buf[16];
    char host[64];
    const char *port = NULL;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || (size_t)(close - s - 1) >= sizeof host)
            return -1;
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        if (inet_pton(AF_INET6, host, buf) != 1)
            return -1;
        if (close[1] == '\0')
            return 0;
        if (close[1] != ':')
            return -1;
        port = close + 2;
    } else {
        if (inet_pton(AF_INET6, s, buf) == 1)
            return 0;
        const char *colon = strchr(s, ':');
        size_t hl = colon ? (size_t)(colon - s) : strlen(s);
        if (hl >= sizeof host)
            return -1;
        memcpy(host, s, hl);
        host[hl] = '\0';
        if (inet_pton(AF_INET, host, buf) != 1)
            return -1;
        if (colon == NULL)
            return 0;
        port = colon + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    return (*port != '\0' && *end == '\0' && p >= 1 && p <= 65535) ? 0 : -1;
}
