/* The SMTP call-out (smtp.h): sessions, the verdict cache, the line per
 * destination. */
#include "lookup/smtp.h"

#include "lib/hash.h"
#include "core/log.h"
#include "core/mem.h"
#include "lib/names.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define KEY_MAX 256
#define REPLY_BUF 4096

struct op_smtp_waiter {
    op_smtp_waiter_t *next;
    op_smtp_cb cb; /* NULL once forgotten */
    void *data;
};

typedef struct centry {
    struct centry *hnext, *prev, *next;
    uint32_t hash;
    char key[KEY_MAX];
    op_smtp_result_t res;
    uint64_t expires_ms;
} centry_t;

typedef struct dest {
    struct dest *next;
    char key[80]; /* ip:port */
    size_t active;
    struct session *queue, **qtail;
} dest_t;

enum { S_QUEUED, S_CONNECT, S_GREETING, S_EHLO, S_HELO, S_MAIL, S_RCPT, S_QUIT };

typedef struct session {
    struct session *next, *prev; /* every session */
    struct session *qnext;       /* in its destination's line */
    op_smtp_t *s;
    dest_t *dest;
    char key[KEY_MAX];
    char address[KEY_MAX];
    struct sockaddr_storage addr;
    op_smtp_waiter_t *waiters;
    int state;
    int done;       /* the verdict was given */
    int handles;    /* open libuv handles */
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect;
    uv_write_t write;
    char wbuf[KEY_MAX + 32];
    char rbuf[REPLY_BUF];
    size_t rlen;
    op_smtp_result_t res;
} session_t;

struct op_smtp {
    uv_loop_t *loop;
    op_smtp_conf_t conf;
    char *helo;
    int closing;
    session_t *sessions;
    dest_t *dests;
    centry_t **buckets;
    size_t nbuckets, nentries;
    centry_t *lru_head, *lru_tail;
    op_smtp_stats_t stats;
};

/* ---- the cache ----------------------------------------------------- */

static uint32_t hash_str(const char *k)
{
    return (uint32_t)op_hash_str(OP_HASH_INIT, k);
}

static void lru_unlink(op_smtp_t *s, centry_t *e)
{
    if (e->prev) e->prev->next = e->next; else s->lru_head = e->next;
    if (e->next) e->next->prev = e->prev; else s->lru_tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(op_smtp_t *s, centry_t *e)
{
    e->prev = NULL;
    e->next = s->lru_head;
    if (s->lru_head) s->lru_head->prev = e; else s->lru_tail = e;
    s->lru_head = e;
}

static centry_t **cache_slot(op_smtp_t *s, const char *key, uint32_t h)
{
    centry_t **p = &s->buckets[h & (s->nbuckets - 1)];
    while (*p != NULL && !((*p)->hash == h && strcmp((*p)->key, key) == 0))
        p = &(*p)->hnext;
    return p;
}

static void cache_drop(op_smtp_t *s, centry_t *e)
{
    centry_t **p = cache_slot(s, e->key, e->hash);
    *p = e->hnext;
    lru_unlink(s, e);
    s->nentries--;
    free(e);
}

static void cache_bound(op_smtp_t *s)
{
    while (s->nentries > s->conf.cache_size && s->lru_tail != NULL)
        cache_drop(s, s->lru_tail);
}

static void cache_put(op_smtp_t *s, const char *key, const op_smtp_result_t *res, double ttl)
{
    if (ttl < 0.001 || s->conf.cache_size == 0)
        return;
    uint32_t h = hash_str(key);
    centry_t **p = cache_slot(s, key, h);
    centry_t *e = *p;
    if (e == NULL) {
        if (s->nentries >= s->nbuckets) {
            size_t n = s->nbuckets * 2;
            centry_t **b = op_calloc(n, sizeof *b);
            for (size_t i = 0; i < s->nbuckets; i++)
                for (centry_t *c = s->buckets[i], *nx; c != NULL; c = nx) {
                    nx = c->hnext;
                    c->hnext = b[c->hash & (n - 1)];
                    b[c->hash & (n - 1)] = c;
                }
            free(s->buckets);
            s->buckets = b;
            s->nbuckets = n;
        }
        e = op_calloc(1, sizeof *e);
        e->hash = h;
        snprintf(e->key, sizeof e->key, "%s", key);
        e->hnext = s->buckets[h & (s->nbuckets - 1)];
        s->buckets[h & (s->nbuckets - 1)] = e;
        s->nentries++;
    } else {
        lru_unlink(s, e);
    }
    e->res = *res;
    e->expires_ms = uv_now(s->loop) + (uint64_t)llround(ttl * 1000.0);
    lru_push(s, e);
    cache_bound(s);
}

int op_smtp_address_key(const char *address, char *key, size_t cap)
{
    size_t len = strlen(address);
    const char *at = strrchr(address, '@');
    if (len > 254 || at == NULL || at == address || cap < KEY_MAX)
        return -1;
    for (const char *p = address; p < at; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '<' || *p == '>')
            return -1;
    char domain[OP_NAME_MAX + 1];
    if (op_name_normalize(at + 1, strlen(at + 1), domain, sizeof domain) != 0)
        return -1;
    size_t llen = (size_t)(at - address);
    if (llen > 64 || llen + 1 + strlen(domain) + 1 > cap)
        return -1;
    for (size_t i = 0; i < llen; i++)
        key[i] = (address[i] >= 'A' && address[i] <= 'Z') ? (char)(address[i] + 32) : address[i];
    key[llen] = '@';
    strcpy(key + llen + 1, domain);
    return 0;
}

int op_smtp_cached(op_smtp_t *s, const char *address, op_smtp_result_t *out)
{
    char key[KEY_MAX];
    if (op_smtp_address_key(address, key, sizeof key) != 0)
        return 0;
    centry_t *e = *cache_slot(s, key, hash_str(key));
    if (e == NULL)
        return 0;
    if (uv_now(s->loop) >= e->expires_ms) {
        cache_drop(s, e);
        return 0;
    }
    lru_unlink(s, e);
    lru_push(s, e);
    s->stats.hits++;
    *out = e->res;
    return 1;
}

/* ---- sessions ------------------------------------------------------ */

static void session_start(session_t *ss);

static dest_t *dest_for(op_smtp_t *s, const char *key)
{
    for (dest_t *d = s->dests; d != NULL; d = d->next)
        if (strcmp(d->key, key) == 0)
            return d;
    dest_t *d = op_calloc(1, sizeof *d);
    snprintf(d->key, sizeof d->key, "%s", key);
    d->qtail = &d->queue;
    d->next = s->dests;
    s->dests = d;
    return d;
}

/* Gives the verdict once: cache, then every waiter still waiting. */
static void finish(session_t *ss, op_smtp_verdict_t verdict, int code, const char *reply)
{
    if (ss->done)
        return;
    ss->done = 1;
    op_smtp_t *s = ss->s;
    ss->res.verdict = verdict;
    ss->res.code = code;
    snprintf(ss->res.reply, sizeof ss->res.reply, "%s", reply);
    if (!s->closing)
        cache_put(s, ss->key, &ss->res,
                  verdict == OP_SMTP_ACCEPTED   ? s->conf.positive_ttl
                  : verdict == OP_SMTP_REJECTED ? s->conf.negative_ttl
                                                : s->conf.tempfail_ttl);
    op_smtp_waiter_t *w = ss->waiters;
    ss->waiters = NULL;
    while (w != NULL) {
        op_smtp_waiter_t *next = w->next;
        if (w->cb != NULL)
            w->cb(w->data, &ss->res);
        free(w);
        w = next;
    }
}

/* A stopped service goes when its last session has. */
static void maybe_free_service(op_smtp_t *s)
{
    if (!s->closing || s->sessions != NULL)
        return;
    for (dest_t *d = s->dests, *n; d != NULL; d = n) {
        n = d->next;
        free(d);
    }
    free(s->helo);
    free(s);
}

static void session_free(session_t *ss)
{
    op_smtp_t *s = ss->s;
    if (ss->prev) ss->prev->next = ss->next; else s->sessions = ss->next;
    if (ss->next) ss->next->prev = ss->prev;
    free(ss);
}

static void handle_closed(uv_handle_t *h)
{
    session_t *ss = h->data;
    if (--ss->handles > 0)
        return;
    dest_t *d = ss->dest;
    op_smtp_t *s = ss->s;
    d->active--;
    session_free(ss);
    if (s->closing) {
        maybe_free_service(s);
        return;
    }
    /* The next in line gets the slot. */
    if (d->queue != NULL) {
        session_t *next = d->queue;
        d->queue = next->qnext;
        if (d->queue == NULL)
            d->qtail = &d->queue;
        session_start(next);
    }
}

static void session_close(session_t *ss)
{
    if (ss->state == S_QUIT + 1)
        return;
    ss->state = S_QUIT + 1;
    uv_timer_stop(&ss->timer);
    uv_close((uv_handle_t *)&ss->timer, handle_closed);
    uv_close((uv_handle_t *)&ss->tcp, handle_closed);
}

static void fail(session_t *ss, const char *why)
{
    finish(ss, OP_SMTP_TEMPFAIL, 0, why);
    session_close(ss);
}

static void on_timeout(uv_timer_t *t)
{
    session_t *ss = t->data;
    fail(ss, ss->state == S_CONNECT ? "connect timeout" : "timeout");
}

static void arm(session_t *ss, double secs)
{
    uv_timer_start(&ss->timer, on_timeout, (uint64_t)llround(secs * 1000.0), 0);
}

static void on_written(uv_write_t *w, int status)
{
    session_t *ss = w->data;
    if (status < 0 && status != UV_ECANCELED)
        fail(ss, "connection lost");
}

static void send_line(session_t *ss, int state, const char *fmt, const char *arg)
{
    int n = snprintf(ss->wbuf, sizeof ss->wbuf, fmt, arg);
    uv_buf_t b = uv_buf_init(ss->wbuf, (unsigned)n);
    ss->state = state;
    ss->write.data = ss;
    if (uv_write(&ss->write, (uv_stream_t *)&ss->tcp, &b, 1, on_written) != 0) {
        fail(ss, "connection lost");
        return;
    }
    arm(ss, ss->s->conf.step_timeout);
}

/* One complete reply: its code and its text (lines joined by spaces). */
static void on_reply(session_t *ss, int code, const char *text)
{
    int cls = code / 100;
    char why[300]; /* cut to op_smtp_result_t.reply by finish() */
    switch (ss->state) {
    case S_GREETING:
        if (cls == 2)
            return send_line(ss, S_EHLO, "EHLO %s\r\n", ss->s->helo);
        snprintf(why, sizeof why, "greeting: %s", text);
        return fail(ss, why);
    case S_EHLO:
        if (cls == 2)
            return send_line(ss, S_MAIL, "MAIL FROM:<>\r\n", NULL);
        if (cls == 5)
            return send_line(ss, S_HELO, "HELO %s\r\n", ss->s->helo);
        snprintf(why, sizeof why, "ehlo: %s", text);
        return fail(ss, why);
    case S_HELO:
        if (cls == 2)
            return send_line(ss, S_MAIL, "MAIL FROM:<>\r\n", NULL);
        snprintf(why, sizeof why, "helo: %s", text);
        return fail(ss, why);
    case S_MAIL:
        if (cls == 2)
            return send_line(ss, S_RCPT, "RCPT TO:<%s>\r\n", ss->address);
        /* The server refuses the null sender: nothing is learnt about the address. */
        snprintf(why, sizeof why, "mail from: %s", text);
        return fail(ss, why);
    case S_RCPT:
        finish(ss, cls == 2 ? OP_SMTP_ACCEPTED : cls == 5 ? OP_SMTP_REJECTED : OP_SMTP_TEMPFAIL,
               code, text);
        return send_line(ss, S_QUIT, "QUIT\r\n", NULL);
    case S_QUIT:
        return session_close(ss);
    }
}

/* Splits rbuf into lines; a reply ends with "ddd " or "ddd" alone. */
static void parse_replies(session_t *ss)
{
    for (;;) {
        char *end = memchr(ss->rbuf, '\n', ss->rlen);
        if (end == NULL) {
            if (ss->rlen == sizeof ss->rbuf)
                fail(ss, "reply too long");
            return;
        }
        /* Find the last line of a complete reply. */
        char *line = ss->rbuf;
        for (;;) {
            char *nl = memchr(line, '\n', (size_t)(ss->rbuf + ss->rlen - line));
            if (nl == NULL)
                return; /* a continued reply, not complete yet */
            if (nl - line < 3 || line[0] < '1' || line[0] > '5') {
                fail(ss, "protocol error");
                return;
            }
            if (line[3] != '-') {
                int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
                size_t used = (size_t)(nl + 1 - ss->rbuf);
                /* The text: every line of the reply, codes included, CRLF as spaces. */
                char text[256];
                size_t tl = used < sizeof text - 1 ? used : sizeof text - 1;
                memcpy(text, ss->rbuf, tl);
                text[tl] = '\0';
                for (size_t i = 0; i < tl; i++)
                    if (text[i] == '\r' || text[i] == '\n')
                        text[i] = ' ';
                while (tl > 0 && text[tl - 1] == ' ')
                    text[--tl] = '\0';
                memmove(ss->rbuf, ss->rbuf + used, ss->rlen - used);
                ss->rlen -= used;
                on_reply(ss, code, text);
                if (ss->state > S_QUIT)
                    return;
                break;
            }
            line = nl + 1;
        }
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    session_t *ss = h->data;
    *buf = uv_buf_init(ss->rbuf + ss->rlen, (unsigned)(sizeof ss->rbuf - ss->rlen));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    session_t *ss = st->data;
    if (n < 0) {
        fail(ss, ss->state == S_QUIT ? "closed" : "connection lost");
        return;
    }
    ss->rlen += (size_t)n;
    parse_replies(ss);
}

static void on_connect(uv_connect_t *c, int status)
{
    session_t *ss = c->data;
    if (status == UV_ECANCELED)
        return;
    if (status < 0) {
        char why[128];
        snprintf(why, sizeof why, "connect: %s", uv_err_name(status));
        fail(ss, why);
        return;
    }
    ss->state = S_GREETING;
    uv_read_start((uv_stream_t *)&ss->tcp, on_alloc, on_read);
    arm(ss, ss->s->conf.step_timeout);
}

static void session_start(session_t *ss)
{
    op_smtp_t *s = ss->s;
    ss->dest->active++;
    if (ss->dest->active > s->stats.active_max)
        s->stats.active_max = ss->dest->active;
    s->stats.sessions++;
    uv_tcp_init(s->loop, &ss->tcp);
    uv_timer_init(s->loop, &ss->timer);
    ss->tcp.data = ss->timer.data = ss;
    ss->handles = 2;
    ss->state = S_CONNECT;
    ss->connect.data = ss;
    int rc = uv_tcp_connect(&ss->connect, &ss->tcp, (struct sockaddr *)&ss->addr, on_connect);
    if (rc != 0) {
        char why[128];
        snprintf(why, sizeof why, "connect: %s", uv_err_name(rc));
        fail(ss, why);
        return;
    }
    arm(ss, s->conf.connect_timeout);
}

op_smtp_waiter_t *op_smtp_verify(op_smtp_t *s, const char *address, const char *ip, int port,
                                 op_smtp_cb cb, void *data)
{
    char key[KEY_MAX];
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof addr);
    if (s->closing || op_smtp_address_key(address, key, sizeof key) != 0 || port <= 0 ||
        port > 65535)
        return NULL;
    if (uv_ip4_addr(ip, port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(ip, port, (struct sockaddr_in6 *)&addr) != 0)
        return NULL;
    op_smtp_waiter_t *w = op_calloc(1, sizeof *w);
    w->cb = cb;
    w->data = data;
    for (session_t *ss = s->sessions; ss != NULL; ss = ss->next) {
        if (!ss->done && strcmp(ss->key, key) == 0) {
            w->next = ss->waiters;
            ss->waiters = w;
            s->stats.joined++;
            return w;
        }
    }
    session_t *ss = op_calloc(1, sizeof *ss);
    ss->s = s;
    snprintf(ss->key, sizeof ss->key, "%s", key);
    snprintf(ss->address, sizeof ss->address, "%s", address);
    ss->addr = addr;
    ss->waiters = w;
    ss->state = S_QUEUED;
    char dkey[80];
    snprintf(dkey, sizeof dkey, "%s:%d", ip, port);
    ss->dest = dest_for(s, dkey);
    ss->next = s->sessions;
    if (s->sessions)
        s->sessions->prev = ss;
    s->sessions = ss;
    if (ss->dest->active < s->conf.per_destination) {
        session_start(ss);
    } else {
        *ss->dest->qtail = ss;
        ss->dest->qtail = &ss->qnext;
    }
    return w;
}

void op_smtp_forget(op_smtp_waiter_t *w)
{
    w->cb = NULL;
}

/* ---- life ---------------------------------------------------------- */

static void apply(op_smtp_t *s, const op_smtp_conf_t *conf)
{
    free(s->helo);
    s->helo = op_strdup(conf->helo != NULL && conf->helo[0] ? conf->helo : "localhost");
    s->conf = *conf;
    s->conf.helo = s->helo;
    if (s->conf.per_destination == 0)
        s->conf.per_destination = 1;
    cache_bound(s);
}

op_smtp_t *op_smtp_new(uv_loop_t *loop, const op_smtp_conf_t *conf, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    op_smtp_t *s = op_calloc(1, sizeof *s);
    s->loop = loop;
    s->nbuckets = 64;
    s->buckets = op_calloc(s->nbuckets, sizeof *s->buckets);
    apply(s, conf);
    return s;
}

void op_smtp_reconfigure(op_smtp_t *s, const op_smtp_conf_t *conf)
{
    apply(s, conf);
}

void op_smtp_free(op_smtp_t *s)
{
    if (s == NULL)
        return;
    s->closing = 1;
    while (s->lru_head != NULL)
        cache_drop(s, s->lru_head);
    free(s->buckets);
    s->buckets = NULL;
    /* Queued sessions have no handles: they end here. */
    for (dest_t *d = s->dests; d != NULL; d = d->next) {
        while (d->queue != NULL) {
            session_t *ss = d->queue;
            d->queue = ss->qnext;
            finish(ss, OP_SMTP_TEMPFAIL, 0, "cancelled");
            session_free(ss);
        }
        d->qtail = &d->queue;
    }
    for (session_t *ss = s->sessions; ss != NULL; ss = ss->next) {
        finish(ss, OP_SMTP_TEMPFAIL, 0, "cancelled");
        session_close(ss);
    }
    maybe_free_service(s);
}

void op_smtp_stats(const op_smtp_t *s, op_smtp_stats_t *out)
{
    *out = s->stats;
}
