#include "lookup/ldap_service.h"

#include "lookup/ldap_cache.h"
#include "lookup/ldap_config.h"
#include "lookup/ldap_conn.h"
#include "core/log.h"
#include "core/mem.h"

#include <ldap.h>
#include <math.h>
#include <signal.h>
#include <string.h>

static double now_s(op_ldap_t *l)
{
    return (double)uv_now(l->loop) / 1000.0;
}

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
    free(f->key);
    free(f->base);
    free(f->filter);
    for (char **a = f->attrs; a != NULL && *a != NULL; a++)
        free(*a);
    free(f->attrs);
    free_entries(f->entries, f->nentries);
    free(f);
}

static void op_free(uv_handle_t *h)
{
    free(h->data);
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

/* A cache = false search is not in the table (it joins nobody and nobody
 * joins it), so it must not remove a cacheable search with its key. */
static void flights_remove(op_ldap_t *l, op__ldap_flight_t *f)
{
    if (!f->no_cache)
        op_ldap_cache_take(l->flights, f->key, f->keylen);
}

/* Ends a flight: answers every waiter, fills the cache, frees the flight.
 * The flight must already be off its connection or the queue. */
void op__ldap_flight_finish(op__ldap_flight_t *f, op_ldap_status_t status)
{
    op_ldap_t *l = f->l;
    flights_remove(l, f);
    op_ldap_result_t *r = result_new(status);
    if (status == OP_LDAP_OK) {
        r->entries = f->entries;
        r->nentries = f->nentries;
        f->entries = NULL;
        f->nentries = 0;
    }
    if (!f->no_cache) {
        double ttl = -1;
        if (status == OP_LDAP_OK && r->nentries > 0)
            ttl = l->conf.cache_ttl;
        else if (status == OP_LDAP_OK || status == OP_LDAP_NOSUCHOBJECT)
            ttl = l->conf.negative_ttl;
        if (ttl > 0) {
            op_ldap_result_ref(r);
            op_ldap_cache_put(l->cache, f->key, f->keylen, r, now_s(l) + ttl);
        }
    }
    /* Detach every waiter before calling any: a callback may start or
     * cancel searches. */
    op_ldap_op_t *waiters = f->waiters;
    f->waiters = NULL;
    for (op_ldap_op_t *op = waiters; op != NULL; op = op->next) {
        op->f = NULL;
        uv_timer_stop(&op->timer);
    }
    flight_free(f);
    for (op_ldap_op_t *op = waiters, *next; op != NULL; op = next) {
        next = op->next;
        if (!op->cancelled) {
            op->cancelled = 1; /* answered: a later cancel is a no-op */
            op->cb(r, op->data);
        }
        uv_close((uv_handle_t *)&op->timer, op_free);
    }
    op_ldap_result_unref(r);
}

/* Nobody waits any more: drop the flight (abandoned on its server). */
static void flight_abandon(op__ldap_flight_t *f)
{
    op_ldap_t *l = f->l;
    flights_remove(l, f);
    if (f->conn != NULL)
        op__ldap_conn_abandon(f->conn, f);
    else
        queue_remove(l, f);
    flight_free(f);
}

static void op_detach(op_ldap_op_t *op)
{
    op__ldap_flight_t *f = op->f;
    if (f == NULL)
        return;
    op->f = NULL;
    op_ldap_op_t **p = &f->waiters;
    while (*p != NULL && *p != op)
        p = &(*p)->next;
    if (*p == op)
        *p = op->next;
    if (f->waiters == NULL)
        flight_abandon(f);
}

static void on_op_timeout(uv_timer_t *t)
{
    op_ldap_op_t *op = t->data;
    op_ldap_t *l = op->l;
    op_detach(op);
    l->stats.timeouts++;
    op->cancelled = 1;
    op_ldap_result_t *r = result_new(OP_LDAP_TIMEOUT);
    op->cb(r, op->data);
    op_ldap_result_unref(r);
    uv_close((uv_handle_t *)&op->timer, op_free);
}

void op_ldap_cancel(op_ldap_op_t *op)
{
    if (op == NULL || op->cancelled)
        return;
    op->cancelled = 1;
    op_detach(op);
    uv_timer_stop(&op->timer);
    uv_close((uv_handle_t *)&op->timer, op_free);
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

static size_t make_key(const op_ldap_query_t *q, char **out)
{
    size_t n = strlen(q->base) + strlen(q->filter) + 8;
    for (size_t i = 0; i < q->nattrs; i++)
        n += strlen(q->attrs[i]) + 1;
    char *k = op_malloc(n);
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

int op_ldap_search(op_ldap_t *l, const op_ldap_query_t *q, op_ldap_cb cb, void *data,
                   op_ldap_op_t **opp, op_ldap_result_t **now)
{
    *opp = NULL;
    *now = NULL;
    l->stats.searches++;
    char *key;
    size_t keylen = make_key(q, &key);
    if (!q->no_cache) {
        op_ldap_result_t *hit = op_ldap_cache_get(l->cache, key, keylen, now_s(l));
        if (hit != NULL) {
            l->stats.cache_hits++;
            op_ldap_result_ref(hit);
            *now = hit;
            free(key);
            return 1;
        }
    }
    op__ldap_flight_t *f = q->no_cache ? NULL : op_ldap_cache_get(l->flights, key, keylen, 0);
    if (f != NULL) {
        l->stats.coalesced++;
        free(key);
    } else {
        if (l->stopping || !op__ldap_hopeful(l)) {
            free(key);
            *now = result_new(OP_LDAP_UNAVAILABLE);
            return 1;
        }
        f = op_calloc(1, sizeof *f);
        f->l = l;
        f->key = key;
        f->keylen = keylen;
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
        /* Sent now when a connection is up, so a refused search answers
         * here and never through a callback inside the caller's call. */
        op__ldap_conn_t *c = pick_conn(l);
        if (c != NULL) {
            int rc = op__ldap_conn_send(c, f->base, f->scope, f->filter, f->attrs, f->timeout, &f->msgid);
            if (rc != LDAP_SUCCESS) {
                flight_free(f);
                *now = result_new(rc == LDAP_FILTER_ERROR || rc == LDAP_PARAM_ERROR ? OP_LDAP_INVALID
                                                                                    : OP_LDAP_UNAVAILABLE);
                if ((*now)->status == OP_LDAP_UNAVAILABLE)
                    op__ldap_conn_fail_soon(c);
                return 1;
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
        if (!q->no_cache)
            op_ldap_cache_put(l->flights, f->key, f->keylen, f, INFINITY);
    }
    op_ldap_op_t *op = op_calloc(1, sizeof *op);
    op->l = l;
    op->f = f;
    op->cb = cb;
    op->data = data;
    op->next = f->waiters;
    f->waiters = op;
    uv_timer_init(l->loop, &op->timer);
    op->timer.data = op;
    double t = q->timeout > 0 ? q->timeout : l->conf.timeout;
    uv_timer_start(&op->timer, on_op_timeout, (uint64_t)ceil(t * 1000.0), 0);
    *opp = op;
    return 0;
}

void op_ldap_stats(const op_ldap_t *l, op_ldap_stats_t *out)
{
    *out = l->stats;
    out->cached = op_ldap_cache_count(l->cache);
    out->ready = 0;
    for (size_t i = 0; i < l->nconns; i++)
        if (l->conns[i].state == OP__LDAP_READY)
            out->ready++;
}

void op_ldap_cache_flush(op_ldap_t *l)
{
    op_ldap_cache_clear(l->cache);
}

/* ---- start, reload, stop ---- */

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
    l->cache = op_ldap_cache_new(op_ldap_config(cfg)->cache_size, release_cached);
    l->flights = op_ldap_cache_new(SIZE_MAX, NULL);
    l->nconns = op_ldap_config(cfg)->pool_size;
    l->conns = op_calloc(l->nconns, sizeof *l->conns);
    for (size_t i = 0; i < l->nconns; i++)
        op__ldap_conn_init(l, &l->conns[i]);
    for (size_t i = 0; i < l->nconns; i++)
        op__ldap_conn_connect(&l->conns[i]);
    return l;
}

int op_ldap_reload(op_ldap_t *l, const op_config_t *cfg, char *err, size_t errlen)
{
    int servers_changed = 0;
    if (op__ldap_settings_reload(l, cfg, &servers_changed, err, errlen) < 0)
        return -1;
    const op_ldap_config_t *lc = op_ldap_config(cfg);
    op_ldap_cache_resize(l->cache, lc->cache_size);
    if (lc->pool_size != l->nconns)
        op_notice("ldap: pool_size %zu takes effect at the next restart (now %zu)",
                  lc->pool_size, l->nconns);
    if (servers_changed) {
        /* Answers from other servers or another bind may differ. */
        op_ldap_cache_clear(l->cache);
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

void op_ldap_stop(op_ldap_t *l)
{
    if (l == NULL)
        return;
    l->stopping = 1;
    op__ldap_fail_queue(l);
    for (size_t i = 0; i < l->nconns; i++)
        op__ldap_conn_stop(&l->conns[i]);
    op_ldap_cache_free(l->cache);
    l->cache = NULL;
    op_ldap_cache_free(l->flights);
    l->flights = NULL;
    op__ldap_maybe_free(l);
}
