/* The LDAP service's searches (ldap_service.h): the lookup cache (cache.h)
 * holds the answers and the waiters of each search in flight; this file
 * starts, dispatches and ends the searches, and keeps each waiter's own
 * timeout.  Connections are ldap_conn.c. */
#include "lookup/ldap_service.h"

#include "lookup/ldap_config.h"
#include "lookup/ldap_conn.h"
#include "core/metrics.h"
#include "core/log.h"
#include "core/mem.h"

#include <ldap.h>
#include <math.h>
#include <signal.h>
#include <string.h>

const char *op_ldap_status_token(op_ldap_status_t s)
{
    switch (s) {
    case OP_LDAP_OK:
        return NULL;
    case OP_LDAP_TIMEOUT:
        return "timeout";
    case OP_LDAP_NOSUCHOBJECT:
        return "nosuchobject";
    case OP_LDAP_SIZELIMIT:
        return "sizelimit";
    case OP_LDAP_INVALID:
        return "invalid";
    case OP_LDAP_UNAVAILABLE:
        break;
    }
    return "unavailable";
}

/* ---- results ---- */

static void free_entries(op_ldap_entry_t *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < e[i].nattrs; j++) {
            op_ldap_attr_t *a = &e[i].attrs[j];
            for (size_t k = 0; k < a->nvalues; k++)
                free(a->values[k]);
            free(a->values);
            free(a->lens);
            free(a->name);
        }
        free(e[i].attrs);
        free(e[i].dn);
    }
    free(e);
}

void op_ldap_result_ref(op_ldap_result_t *r)
{
    r->refs++;
}

void op_ldap_result_unref(op_ldap_result_t *r)
{
    if (r == NULL || --r->refs > 0)
        return;
    free_entries(r->entries, r->nentries);
    free(r);
}

static op_ldap_result_t *result_new(op_ldap_status_t status)
{
    static uint64_t serial;
    op_ldap_result_t *r = op_calloc(1, sizeof *r);
    r->refs = 1;
    r->serial = __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED);
    r->status = status;
    return r;
}

static void release_cached(void *v)
{
    op_ldap_result_unref(v);
}

static op_cache_conf_t cache_conf(const op_config_t *cfg)
{
    /* The TTLs are the service's (cache_ttl, negative_ttl): no caps here. */
    op_cache_conf_t c = {.max_entries = op_ldap_config(cfg)->cache_size, .max_ttl = INFINITY,
                         .negative_max_ttl = INFINITY};
    return c;
}

/* Copies an entry message into f's entries. */
void op__ldap_flight_add_entry(op__ldap_flight_t *f, LDAP *ld, LDAPMessage *msg)
{
    if (f->nentries == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 4;
        f->entries = op_realloc(f->entries, f->cap * sizeof *f->entries);
    }
    op_ldap_entry_t *e = &f->entries[f->nentries++];
    memset(e, 0, sizeof *e);
    char *dn = ldap_get_dn(ld, msg);
    e->dn = op_strdup(dn != NULL ? dn : "");
    ldap_memfree(dn);
    size_t cap = 0;
    BerElement *ber = NULL;
    for (char *a = ldap_first_attribute(ld, msg, &ber); a != NULL; a = ldap_next_attribute(ld, msg, ber)) {
        struct berval **vals = ldap_get_values_len(ld, msg, a);
        if (e->nattrs == cap) {
            cap = cap ? cap * 2 : 8;
            e->attrs = op_realloc(e->attrs, cap * sizeof *e->attrs);
        }
        op_ldap_attr_t *at = &e->attrs[e->nattrs++];
        at->name = op_strdup(a);
        at->nvalues = (size_t)ldap_count_values_len(vals);
        at->values = op_calloc(at->nvalues + 1, sizeof *at->values);
        at->lens = op_calloc(at->nvalues + 1, sizeof *at->lens);
        for (size_t i = 0; i < at->nvalues; i++) {
            at->values[i] = op_malloc(vals[i]->bv_len + 1);
            memcpy(at->values[i], vals[i]->bv_val, vals[i]->bv_len);
            at->values[i][vals[i]->bv_len] = '\0';
            at->lens[i] = vals[i]->bv_len;
        }
        ldap_value_free_len(vals);
        ldap_memfree(a);
    }
    if (ber != NULL)
        ber_free(ber, 0);
}

/* ---- flights ---- */

static void flight_free(op__ldap_flight_t *f)
{
    free(f->base);
    free(f->filter);
    for (char **a = f->attrs; a != NULL && *a != NULL; a++)
        free(*a);
    free(f->attrs);
    free_entries(f->entries, f->nentries);
    free(f);
}

static void queue_remove(op_ldap_t *l, op__ldap_flight_t *f)
{
    op__ldap_flight_t **p = &l->queue;
    while (*p != NULL && *p != f)
        p = &(*p)->next;
    if (*p == f)
        *p = f->next;
    f->next = NULL;
}

/* Ends a flight: the cache keeps the answer for its TTL and hands it to
 * every waiter.  The flight must already be off its connection or the
 * queue. */
void op__ldap_flight_finish(op__ldap_flight_t *f, op_ldap_status_t status)
{
    op_ldap_t *l = f->l;
    op_ldap_result_t *r = result_new(status);
    if (status == OP_LDAP_OK) {
        r->entries = f->entries;
        r->nentries = f->nentries;
        f->entries = NULL;
        f->nentries = 0;
    }
    double ttl = 0;
    int negative = 0;
    if (status == OP_LDAP_OK && r->nentries > 0) {
        ttl = l->conf.cache_ttl;
    } else if (status == OP_LDAP_OK || status == OP_LDAP_NOSUCHOBJECT) {
        ttl = l->conf.negative_ttl;
        negative = 1;
    }
    op_cache_flight_t *cf = f->cf;
    flight_free(f);
    if (status != OP_LDAP_OK && status != OP_LDAP_NOSUCHOBJECT)
        op_cache_flight_error(cf, op_ldap_status_token(status));
    op_cache_complete(cf, r, ttl, negative);
}

/* The cache's abort hook: nobody waits any more, the search is abandoned
 * on its server. */
static void flight_abort(void *owner, op_cache_flight_t *cf)
{
    op_ldap_t *l = owner;
    op__ldap_flight_t *f = op_cache_flight_get(cf);
    if (f->conn != NULL)
        op__ldap_conn_abandon(f->conn, f);
    else
        queue_remove(l, f);
    flight_free(f);
}

/* ---- waiters and their timeouts ---- */

/* Every started search waits in one list ordered by deadline, under one
 * timer: a caller may free its request as soon as it cancels, which a
 * timer handle per search would not allow (its memory lives until its
 * close callback). */
static void on_deadline(uv_timer_t *t);

static void arm_deadline(op_ldap_t *l)
{
    if (l->waiting == NULL || l->stopping) {
        uv_timer_stop(&l->deadline);
        return;
    }
    uint64_t now = uv_now(l->loop);
    uint64_t due = l->waiting->deadline_ms;
    uv_timer_start(&l->deadline, on_deadline, due > now ? due - now : 0, 0);
}

static void waiting_add(op_ldap_t *l, op_ldap_req_t *req)
{
    op_ldap_req_t *after = l->waiting_last; /* timeouts are mostly alike: from the end */
    while (after != NULL && after->deadline_ms > req->deadline_ms)
        after = after->tprev;
    req->tprev = after;
    req->tnext = after != NULL ? after->tnext : l->waiting;
    if (req->tnext) req->tnext->tprev = req; else l->waiting_last = req;
    if (after) after->tnext = req; else l->waiting = req;
    req->l = l;
    if (l->waiting == req)
        arm_deadline(l);
}

/* The request no longer waits; 0 when it did not. */
static int waiting_remove(op_ldap_req_t *req)
{
    op_ldap_t *l = req->l;
    if (l == NULL)
        return 0;
    if (req->tprev) req->tprev->tnext = req->tnext; else l->waiting = req->tnext;
    if (req->tnext) req->tnext->tprev = req->tprev; else l->waiting_last = req->tprev;
    req->tprev = req->tnext = NULL;
    req->l = NULL;
    return 1;
}

/* A waiter's answer, from op_cache_complete. */
static void op_answered(op_lookup_req_t *lk, const void *value)
{
    op_ldap_req_t *req = lk->data;
    waiting_remove(req);
    req->cb(req, (op_ldap_result_t *)value);
}

static void on_deadline(uv_timer_t *t)
{
    op_ldap_t *l = t->data;
    uint64_t now = uv_now(l->loop);
    /* One at a time from the head: a callback may start or cancel searches. */
    while (l->waiting != NULL && l->waiting->deadline_ms <= now) {
        op_ldap_req_t *req = l->waiting;
        waiting_remove(req);
        op_lookup_cancel(&req->lk);
        l->stats.timeouts++;
        op_ldap_result_t *r = result_new(OP_LDAP_TIMEOUT);
        req->cb(req, r);
        op_ldap_result_unref(r);
    }
    arm_deadline(l);
}

void op_ldap_cancel(op_ldap_req_t *req)
{
    if (req == NULL || !waiting_remove(req))
        return;
    op_lookup_cancel(&req->lk);
}

static op__ldap_conn_t *pick_conn(op_ldap_t *l)
{
    op__ldap_conn_t *best = NULL;
    for (size_t i = 0; i < l->nconns; i++) {
        op__ldap_conn_t *c = &l->conns[i];
        if (c->state == OP__LDAP_READY && c->epoch == l->epoch && (best == NULL || c->nsent < best->nsent))
            best = c;
    }
    return best;
}

/* Sends queued flights on the least busy ready connections (from loop
 * callbacks only: it may answer searches). */
void op__ldap_dispatch(op_ldap_t *l)
{
    while (l->queue != NULL) {
        op__ldap_conn_t *best = pick_conn(l);
        if (best == NULL)
            return;
        op__ldap_flight_t *f = l->queue;
        l->queue = f->next;
        f->next = NULL;
        int rc = op__ldap_conn_send(best, f->base, f->scope, f->filter, f->attrs, f->timeout, &f->msgid);
        if (rc == LDAP_SUCCESS) {
            l->stats.sent++;
            f->conn = best;
            f->next = best->sent;
            best->sent = f;
            best->nsent++;
        } else if (rc == LDAP_FILTER_ERROR || rc == LDAP_PARAM_ERROR) {
            op__ldap_flight_finish(f, OP_LDAP_INVALID);
        } else {
            op__ldap_flight_finish(f, OP_LDAP_UNAVAILABLE);
            op__ldap_conn_fail_soon(best);
        }
    }
}

/* No connection is up and none is being set up: what waits can only fail. */
void op__ldap_fail_queue(op_ldap_t *l)
{
    while (l->queue != NULL) {
        op__ldap_flight_t *f = l->queue;
        l->queue = f->next;
        f->next = NULL;
        op__ldap_flight_finish(f, OP_LDAP_UNAVAILABLE);
    }
}

int op__ldap_hopeful(const op_ldap_t *l)
{
    for (size_t i = 0; i < l->nconns; i++)
        if (l->conns[i].state == OP__LDAP_READY || l->conns[i].state == OP__LDAP_CONNECTING)
            return 1;
    return 0;
}

#define KEY_BUF 2048

/* The cache key of q, written to buf when it fits in cap bytes (a search
 * answered from the cache then allocates nothing), else to memory of its
 * own: free *out when it is not buf. */
static size_t make_key(const op_ldap_query_t *q, char *buf, size_t cap, char **out)
{
    size_t n = strlen(q->base) + strlen(q->filter) + 8;
    for (size_t i = 0; i < q->nattrs; i++)
        n += strlen(q->attrs[i]) + 1;
    char *k = n <= cap ? buf : op_malloc(n);
    size_t o = 0;
    k[o++] = (char)('0' + q->scope);
    k[o++] = '\0';
    memcpy(k + o, q->base, strlen(q->base) + 1);
    o += strlen(q->base) + 1;
    memcpy(k + o, q->filter, strlen(q->filter) + 1);
    o += strlen(q->filter) + 1;
    k[o++] = q->attrs == NULL ? '*' : '!';
    for (size_t i = 0; i < q->nattrs; i++) {
        memcpy(k + o, q->attrs[i], strlen(q->attrs[i]) + 1);
        o += strlen(q->attrs[i]) + 1;
    }
    *out = k;
    return o;
}

/* The cache's begin hook: the first search of a key is sent now when a
 * connection is up (so a refused search fails here, never through a
 * callback inside the caller's call), else queued.  Fails with
 * -OP_LDAP_UNAVAILABLE or -OP_LDAP_INVALID. */
static int flight_begin(void *owner, op_cache_flight_t *cf, void *arg)
{
    op_ldap_t *l = owner;
    const op_ldap_query_t *q = arg;
    if (l->stopping || !op__ldap_hopeful(l))
        return -OP_LDAP_UNAVAILABLE;
    op__ldap_flight_t *f = op_calloc(1, sizeof *f);
    f->l = l;
    f->cf = cf;
    f->base = op_strdup(q->base);
    f->scope = q->scope;
    f->filter = op_strdup(q->filter);
    f->no_cache = q->no_cache;
    f->timeout = q->timeout > 0 ? q->timeout : l->conf.timeout;
    if (q->attrs != NULL) {
        f->attrs = op_calloc(q->nattrs + 1, sizeof *f->attrs);
        for (size_t i = 0; i < q->nattrs; i++)
            f->attrs[i] = op_strdup(q->attrs[i]);
    }
    op__ldap_conn_t *c = pick_conn(l);
    if (c != NULL) {
        int rc = op__ldap_conn_send(c, f->base, f->scope, f->filter, f->attrs, f->timeout, &f->msgid);
        if (rc != LDAP_SUCCESS) {
            flight_free(f);
            if (rc == LDAP_FILTER_ERROR || rc == LDAP_PARAM_ERROR)
                return -OP_LDAP_INVALID;
            op__ldap_conn_fail_soon(c);
            return -OP_LDAP_UNAVAILABLE;
        }
        l->stats.sent++;
        f->conn = c;
        f->next = c->sent;
        c->sent = f;
        c->nsent++;
    } else {
        op__ldap_flight_t **tail = &l->queue;
        while (*tail != NULL)
            tail = &(*tail)->next;
        *tail = f;
    }
    op_cache_flight_set(cf, f);
    return 0;
}

int op_ldap_search(op_ldap_t *l, op_ldap_req_t *req, const op_ldap_query_t *q, op_ldap_cb cb)
{
    req->hit = NULL;
    req->l = NULL;
    req->cb = cb;
    req->lk.data = req;
    l->stats.searches++;
    char buf[KEY_BUF], *key;
    size_t keylen = make_key(q, buf, sizeof buf, &key);
    int rc = op_lookup_start(l->cache, &req->lk, key, keylen, q->no_cache ? OP_LOOKUP_FRESH : 0,
                             (void *)q, op_answered);
    if (key != buf)
        free(key);
    if (rc == OP_LOOKUP_HIT) {
        req->hit = req->lk.value;
    } else if (rc == OP_LOOKUP_STARTED) {
        double t = q->timeout > 0 ? q->timeout : l->conf.timeout;
        req->deadline_ms = uv_now(l->loop) + (uint64_t)ceil(t * 1000.0);
        waiting_add(l, req);
    }
    return rc;
}

const op_ldap_result_t *op_ldap_peek(op_ldap_t *l, const op_ldap_query_t *q)
{
    if (q->no_cache)
        return NULL;
    char buf[KEY_BUF], *key;
    size_t keylen = make_key(q, buf, sizeof buf, &key);
    const op_ldap_result_t *r = op_cache_peek(l->cache, key, keylen, NULL);
    if (key != buf)
        free(key);
    if (r != NULL)
        l->stats.searches++;
    return r;
}

void op_ldap_stats(const op_ldap_t *l, op_ldap_stats_t *out)
{
    *out = l->stats;
    op_cache_stats(l->cache, &out->cache);
    out->cache_hits = out->cache.hits;
    out->coalesced = out->cache.coalesced;
    out->cached = out->cache.entries;
    out->ready = 0;
    for (size_t i = 0; i < l->nconns; i++)
        if (l->conns[i].state == OP__LDAP_READY)
            out->ready++;
}

void op_ldap_cache_flush(op_ldap_t *l)
{
    op_cache_clear(l->cache);
}

/* ---- start, reload, stop ---- */

/* outpost_ldap_connections_up: per configured server, the connections
 * bound to it now (0 for a server none could reach). */
static void collect_up(void *data)
{
    op_ldap_t *l = data;
    for (size_t i = 0; i < l->conf.nuris; i++) {
        const char *v[1] = {l->conf.uris[i]};
        op_metrics_set(op_metrics_series(op_mf.ldap_up, v), 0);
    }
    for (size_t i = 0; i < l->nconns; i++) {
        if (l->conns[i].state != OP__LDAP_READY)
            continue;
        const char *v[1] = {l->conns[i].uri};
        int slot = op_metrics_series(op_mf.ldap_up, v);
        op_metrics_set(slot, op_metrics_get(slot) + 1);
    }
}

op_ldap_t *op_ldap_start(uv_loop_t *loop, const op_config_t *cfg, char *err, size_t errlen)
{
    err[0] = '\0';
    if (op_ldap_config(cfg)->nuris == 0)
        return NULL;
    /* libldap writes with write(2), and an unbind on a connection the
     * server reset would kill the process (the daemon ignores SIGPIPE too;
     * `outpostd test` and other hosts may not). */
    signal(SIGPIPE, SIG_IGN);
    op_ldap_t *l = op_calloc(1, sizeof *l);
    l->loop = loop;
    if (op__ldap_settings_load(l, cfg, err, errlen) < 0) {
        op__ldap_settings_free(l);
        free(l);
        return NULL;
    }
    op_cache_conf_t cc = cache_conf(cfg);
    op_cache_ops_t ops = {.name = "ldap", .begin = flight_begin, .abort = flight_abort,
                          .release = release_cached};
    l->cache = op_cache_new(loop, &cc, &ops, l);
    uv_timer_init(loop, &l->deadline);
    l->deadline.data = l;
    l->holds++;
    l->nconns = op_ldap_config(cfg)->pool_size;
    l->conns = op_calloc(l->nconns, sizeof *l->conns);
    for (size_t i = 0; i < l->nconns; i++)
        op__ldap_conn_init(l, &l->conns[i]);
    for (size_t i = 0; i < l->nconns; i++)
        op__ldap_conn_connect(&l->conns[i]);
    op_metrics_on_collect(collect_up, l);
    return l;
}

int op_ldap_reload(op_ldap_t *l, const op_config_t *cfg, char *err, size_t errlen)
{
    int servers_changed = 0;
    if (op__ldap_settings_reload(l, cfg, &servers_changed, err, errlen) < 0)
        return -1;
    op_cache_conf_t cc = cache_conf(cfg);
    op_cache_configure(l->cache, &cc);
    const op_ldap_config_t *lc = op_ldap_config(cfg);
    if (lc->pool_size != l->nconns)
        op_notice("ldap: pool_size %zu takes effect at the next restart (now %zu)",
                  lc->pool_size, l->nconns);
    if (servers_changed) {
        /* Answers from other servers or another bind may differ. */
        op_cache_clear(l->cache);
        l->epoch++;
        for (size_t i = 0; i < l->nconns; i++)
            op__ldap_conn_refresh(&l->conns[i]);
    }
    return 0;
}

void op__ldap_maybe_free(op_ldap_t *l)
{
    if (!l->stopping || l->holds > 0)
        return;
    op__ldap_settings_free(l);
    free(l->conns);
    free(l);
}

static void deadline_closed(uv_handle_t *h)
{
    op_ldap_t *l = h->data;
    l->holds--;
    op__ldap_maybe_free(l);
}

void op_ldap_stop(op_ldap_t *l)
{
    if (l == NULL)
        return;
    l->stopping = 1;
    op_metrics_off_collect(collect_up, l);
    op__ldap_fail_queue(l);
    for (size_t i = 0; i < l->nconns; i++)
        op__ldap_conn_stop(&l->conns[i]);
    op_cache_free(l->cache);
    l->cache = NULL;
    uv_close((uv_handle_t *)&l->deadline, deadline_closed);
    op__ldap_maybe_free(l);
}
