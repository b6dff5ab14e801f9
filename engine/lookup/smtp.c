/* The SMTP call-out (smtp.h): sessions and the line per destination.  The
 * verdicts and the sharing of a session by the verifications of one address
 * are the lookup cache's (cache.h): a session is a cache flight. */
#include "lookup/smtp.h"

#include "core/log.h"
#include "core/mem.h"
#include "lib/names.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define KEY_MAX 256
#define REPLY_BUF 4096

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
    op_cache_flight_t *f; /* until the verdict is given */
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
    op_cache_t *cache; /* address key -> op_smtp_result_t */
    op_smtp_stats_t stats;
};

/* What op_smtp_verify hands the cache's begin hook for a new session. */
typedef struct {
    const char *address;
    const char *dest; /* ip:port */
    const struct sockaddr_storage *addr;
} verify_arg_t;

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
    const op_smtp_result_t *r = op_cache_peek(s->cache, key, strlen(key), NULL);
    if (r == NULL)
        return 0;
    *out = *r;
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

/* Gives the verdict once: the cache keeps it for its verdict's TTL and
 * hands it to every verification still waiting. */
static void finish(session_t *ss, op_smtp_verdict_t verdict, int code, const char *reply)
{
    if (ss->done)
        return;
    ss->done = 1;
    op_smtp_t *s = ss->s;
    ss->res.verdict = verdict;
    ss->res.code = code;
    snprintf(ss->res.reply, sizeof ss->res.reply, "%s", reply);
    op_smtp_result_t *r = op_malloc(sizeof *r);
    *r = ss->res;
    op_cache_flight_t *f = ss->f;
    ss->f = NULL;
    if (verdict == OP_SMTP_TEMPFAIL)
        op_cache_flight_error(f, "tempfail");
    op_cache_complete(f, r,
                      verdict == OP_SMTP_ACCEPTED   ? s->conf.positive_ttl
                      : verdict == OP_SMTP_REJECTED ? s->conf.negative_ttl
                                                    : s->conf.tempfail_ttl,
                      verdict == OP_SMTP_REJECTED);
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

/* The cache's begin hook: the first verification of an address starts a
 * session, at once or in its destination's line. */
static int session_begin(void *owner, op_cache_flight_t *f, void *arg)
{
    op_smtp_t *s = owner;
    const verify_arg_t *va = arg;
    size_t keylen;
    const char *key = op_cache_flight_key(f, &keylen);
    session_t *ss = op_calloc(1, sizeof *ss);
    ss->s = s;
    memcpy(ss->key, key, keylen);
    ss->key[keylen] = '\0';
    snprintf(ss->address, sizeof ss->address, "%s", va->address);
    ss->addr = *va->addr;
    ss->f = f;
    ss->state = S_QUEUED;
    ss->dest = dest_for(s, va->dest);
    ss->next = s->sessions;
    if (s->sessions)
        s->sessions->prev = ss;
    s->sessions = ss;
    op_cache_flight_set(f, ss);
    if (ss->dest->active < s->conf.per_destination) {
        session_start(ss);
    } else {
        *ss->dest->qtail = ss;
        ss->dest->qtail = &ss->qnext;
    }
    return 0;
}

int op_smtp_verify(op_smtp_t *s, op_lookup_req_t *req, const char *address, const char *ip,
                   int port, op_lookup_cb cb)
{
    char key[KEY_MAX];
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof addr);
    if (s->closing)
        return OP_SMTP_ESTOPPED;
    if (op_smtp_address_key(address, key, sizeof key) != 0 || port <= 0 || port > 65535)
        return OP_SMTP_EINVAL;
    if (uv_ip4_addr(ip, port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(ip, port, (struct sockaddr_in6 *)&addr) != 0)
        return OP_SMTP_EINVAL;
    char dkey[80];
    snprintf(dkey, sizeof dkey, "%s:%d", ip, port);
    verify_arg_t va = {address, dkey, &addr};
    return op_lookup_start(s->cache, req, key, strlen(key), 0, &va, cb);
}

/* ---- life ---------------------------------------------------------- */

/* No abort hook: a session nobody waits for goes on and fills the cache,
 * so the MTA's retry finds the verdict. */
static const op_cache_ops_t cache_ops = {.name = "smtp", .begin = session_begin, .abort = NULL,
                                         .release = free};

static void apply(op_smtp_t *s, const op_smtp_conf_t *conf)
{
    free(s->helo);
    s->helo = op_strdup(conf->helo != NULL && conf->helo[0] ? conf->helo : "localhost");
    s->conf = *conf;
    s->conf.helo = s->helo;
    if (s->conf.per_destination == 0)
        s->conf.per_destination = 1;
    /* The TTLs are per verdict (finish); a rejection counts as negative. */
    op_cache_conf_t cc = {.max_entries = conf->cache_size, .max_ttl = INFINITY,
                          .negative_max_ttl = INFINITY};
    if (s->cache != NULL)
        op_cache_configure(s->cache, &cc);
    else
        s->cache = op_cache_new(s->loop, &cc, &cache_ops, s);
}

op_smtp_t *op_smtp_new(uv_loop_t *loop, const op_smtp_conf_t *conf, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    op_smtp_t *s = op_calloc(1, sizeof *s);
    s->loop = loop;
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
    op_cache_free(s->cache);
    s->cache = NULL;
    maybe_free_service(s);
}

void op_smtp_stats(const op_smtp_t *s, op_smtp_stats_t *out)
{
    *out = s->stats;
    op_cache_stats(s->cache, &out->cache);
    out->joined = out->cache.coalesced;
    out->hits = out->cache.hits;
}
