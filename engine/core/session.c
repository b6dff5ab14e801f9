/* The session layer (session.h): accept, read with back-pressure,
 * buffered write, idle sweep, drain, abort and close, for every protocol. */
#include "core/session.h"

#include "core/log.h"
#include "core/metrics.h"
#include "core/mem.h"
#include "lib/netset.h"

#include <string.h>
#include <time.h>

/* Past this much output not yet taken by the peer, stop reading: a client
 * pipelining without reading its answers must not grow our buffer. */
#define MAX_OUT_BUFFERED (256 * 1024)

static void process_input(op_session_t *s);

/* Lines a client can repeat at will, each kind limited on its own
 * (log.h): a flood of resets or refusals must not flood the log. */
static op_log_limit_t lim_refused, lim_reset, lim_timeout;

/* Counts the session in its listener and the daemon. */
static void count(op_session_t *s, int delta)
{
    op_daemon_t *d = s->d;
    d->nconns += (size_t)delta;
    s->l->nconns += (size_t)delta;
    if (s->l->kind == OP_LISTEN_TCP)
        d->nconns_tcp += (size_t)delta;
}

static void on_handle_closed(uv_handle_t *h)
{
    op_session_t *s = h->data;
    if (--s->handles > 0)
        return;
    op_daemon_t *d = s->d;
    if (s->prev)
        s->prev->next = s->next;
    else
        d->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    count(s, -1);
    if (s->peer_count != NULL)
        op__listener_peer_put(s->l, s->peer_count);
    s->ops->free(s);
    free(s->in);
    op_outbuf_free(&s->out);
    op_listener_unref(s->l);
    free(s);
    op_daemon_conn_closed(d);
}

void op_session_close_handle(op_session_t *s, uv_handle_t *h)
{
    h->data = s;
    s->handles++;
    uv_close(h, on_handle_closed);
}

static void session_close(op_session_t *s)
{
    if (s->closing)
        return;
    s->closing = 1;
    s->ops->cancel(s);
    op_session_close_handle(s, &s->h.handle);
}

static void maybe_close_drained(op_session_t *s)
{
    if (s->d->stopping && !s->ops->busy(s) && op_outbuf_idle(&s->out))
        session_close(s);
}

void op_session_flush(op_session_t *s)
{
    if (s->closing)
        return;
    int rc = op_outbuf_flush(&s->out);
    if (rc != 0) {
        op_log_limited(&lim_reset, uv_now(s->d->loop), OP_LOG_INFO, "%s %s: write failed: %s",
                       s->ops->name, s->peer, uv_strerror(rc));
        session_close(s);
    }
}

static void on_written(op_outbuf_t *ob, int status)
{
    op_session_t *s = ob->data;
    if (s->closing)
        return;
    if (status < 0) {
        op_log_limited(&lim_reset, uv_now(s->d->loop), OP_LOG_INFO, "%s %s: write failed: %s",
                       s->ops->name, s->peer, uv_strerror(status));
        session_close(s);
        return;
    }
    op_session_flush(s);
    if (!s->processing)
        process_input(s); /* reading may have paused on a full output buffer */
    maybe_close_drained(s);
}

void op_session_answered(op_session_t *s)
{
    if (s->processing)
        return; /* process_input flushes when it is done */
    op_session_flush(s);
    process_input(s); /* reading may have paused with requests in flight */
    maybe_close_drained(s);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void set_reading(op_session_t *s)
{
    int want = !s->closing && !s->d->stopping && s->out.len < MAX_OUT_BUFFERED &&
               s->ops->may_read(s);
    if (want == s->reading)
        return;
    s->reading = want;
    if (want)
        uv_read_start(&s->h.stream, on_alloc, on_read);
    else
        uv_read_stop(&s->h.stream);
}

static void process_input(op_session_t *s)
{
    if (s->closing)
        return;
    s->processing = 1;
    size_t pos = 0;
    while (!s->closing && pos < s->in_len && s->ops->can_take(s)) {
        ssize_t r = s->ops->feed(s, s->in + pos, s->in_len - pos);
        if (r == 0)
            break;
        if (r < 0) {
            s->processing = 0;
            session_close(s);
            return;
        }
        pos += (size_t)r;
        if (s->finish) {
            s->processing = 0;
            op_session_flush(s);
            session_close(s);
            return;
        }
    }
    s->processing = 0;
    if (s->closing)
        return;
    if (pos > 0) {
        memmove(s->in, s->in + pos, s->in_len - pos);
        s->in_len -= pos;
        s->started = uv_now(s->d->loop); /* what is left began with the last read */
    }
    op_session_flush(s);
    set_reading(s);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    op_session_t *s = h->data;
    size_t chunk = s->ops->read_chunk;
    if (s->in_cap - s->in_len < chunk && s->in_cap < s->in_max) {
        size_t cap = s->in_cap ? s->in_cap * 2 : chunk * 2;
        if (cap > s->in_max)
            cap = s->in_max;
        s->in = op_realloc(s->in, cap);
        s->in_cap = cap;
    }
    /* A full buffer gives libuv no room: it reports UV_ENOBUFS and the
     * session closes.  Only a client sending far past what the protocol
     * lets it (Postfix waits for its answers) gets there. */
    *buf = uv_buf_init(s->in + s->in_len, (unsigned)(s->in_cap - s->in_len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    op_session_t *s = st->data;
    if (nread > 0) {
        s->last_active = uv_now(s->d->loop);
        if (s->in_len == 0)
            s->started = s->last_active; /* a new request begins */
        s->in_len += (size_t)nread;
        process_input(s);
        return;
    }
    if (nread == 0)
        return;
    if (nread == UV_EOF) {
        if (s->in_len > 0)
            op_log_limited(&lim_reset, uv_now(s->d->loop), OP_LOG_INFO,
                           "%s %s (listener %s): closed by the client in the middle of a "
                           "request (%zu bytes unanswered)", s->ops->name, s->peer,
                           s->l->name, s->in_len);
        else
            op_debug("%s %s: closed by the client", s->ops->name, s->peer);
    } else {
        op_log_limited(&lim_reset, uv_now(s->d->loop), OP_LOG_INFO,
                       "%s %s (listener %s): read failed: %s", s->ops->name, s->peer,
                       s->l->name, uv_strerror((int)nread));
    }
    session_close(s);
}

/* Writes the peer's address into s->peer (and ip, for tcp). */
static void describe_peer(op_session_t *s, char *ip, size_t iplen)
{
    snprintf(ip, iplen, "?");
    if (s->l->kind == OP_LISTEN_UNIX) {
        snprintf(s->peer, sizeof s->peer, "unix:%s", s->l->name);
        return;
    }
    struct sockaddr_storage sa;
    int len = sizeof sa;
    int port = 0;
    if (uv_tcp_getpeername(&s->h.tcp, (struct sockaddr *)&sa, &len) == 0) {
        if (sa.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&sa, ip, iplen);
            port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&sa, ip, iplen);
            port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
        }
    }
    snprintf(s->peer, sizeof s->peer, "%s:%d", ip, port);
}

/* The share of max_connections TCP listeners may never take while a
 * unix listener (Postfix's) is configured: a flood on TCP, where any
 * local user can connect, must not lock Postfix out. */
static size_t tcp_cap(const op_daemon_t *d, size_t max)
{
    for (size_t i = 0; i < d->nlisteners; i++)
        if (d->listeners[i]->kind == OP_LISTEN_UNIX && !d->listeners[i]->closed)
            return max - max / 4;
    return max;
}

/* Why a new connection is refused, or NULL. */
static const char *refusal(const op_session_t *s, const char *ip)
{
    const op_daemon_t *d = s->d;
    const op_listener_t *l = s->l;
    size_t max = d->current->cfg->max_connections;
    if (d->stopping)
        return "shutting down";
    if (l->kind == OP_LISTEN_TCP && l->allow_from != NULL &&
        op_netset_match(l->allow_from, ip, NULL) == NULL)
        return "not in the listener's allow_from";
    if (l->max_connections > 0 && l->nconns >= l->max_connections)
        return "the listener's max_connections reached";
    if (d->nconns >= max)
        return "max_connections reached";
    if (l->kind == OP_LISTEN_TCP && d->nconns_tcp >= tcp_cap(d, max))
        return "max_connections reached for TCP (a quarter is kept for unix listeners)";
    if (l->kind == OP_LISTEN_TCP && l->max_per_peer > 0 &&
        op__listener_peer_count(l, ip) >= l->max_per_peer)
        return "the listener's max_per_peer reached for this address";
    return NULL;
}

static void close_rejected(uv_handle_t *h)
{
    op_session_t *s = h->data;
    op_listener_unref(s->l);
    free(s);
}

void op_session_accept(op_listener_t *l, const op_session_ops_t *ops)
{
    op_daemon_t *d = l->daemon;
    op_session_t *s = op_calloc(1, ops->size);
    s->ops = ops;
    s->d = d;
    s->l = l;
    op_listener_ref(l);
    if (l->kind == OP_LISTEN_UNIX)
        uv_pipe_init(d->loop, &s->h.pipe, 0);
    else
        uv_tcp_init(d->loop, &s->h.tcp);
    s->h.handle.data = s;
    if (uv_accept(&l->h.stream, &s->h.stream) != 0) {
        uv_close(&s->h.handle, close_rejected);
        return;
    }
    char ip[46];
    describe_peer(s, ip, sizeof ip);
    const char *why = refusal(s, ip);
    if (why != NULL) {
        op_log_limited(&lim_refused, uv_now(d->loop), OP_LOG_WARNING,
                       "listener %s: %s: %s; connection refused", l->name, s->peer, why);
        op_metrics_connection_refused(why);
        uv_close(&s->h.handle, close_rejected);
        return;
    }
    if (l->kind == OP_LISTEN_TCP) {
        uv_tcp_nodelay(&s->h.tcp, 1);
        s->peer_count = op__listener_peer(l, ip);
        s->peer_count->n++;
    }
    op_outbuf_init(&s->out, &s->h.stream, on_written, s);
    if (ops->open(s) != 0) {
        if (s->peer_count != NULL)
            op__listener_peer_put(l, s->peer_count);
        uv_close(&s->h.handle, close_rejected);
        return;
    }
    s->last_active = uv_now(d->loop);
    s->next = d->sessions;
    if (d->sessions)
        d->sessions->prev = s;
    d->sessions = s;
    count(s, 1);
    set_reading(s);
}

uint64_t op_session_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void op_session_sweep(op_daemon_t *d, uint64_t idle_ms, uint64_t request_ms)
{
    uint64_t now = uv_now(d->loop);
    op_log_limit_flush(&lim_refused, now, OP_LOG_WARNING, "connection refused");
    op_log_limit_flush(&lim_reset, now, OP_LOG_INFO, "closed by the client / failed");
    op_log_limit_flush(&lim_timeout, now, OP_LOG_INFO, "request not complete");
    for (op_session_t *s = d->sessions; s != NULL; s = s->next) {
        if (s->closing)
            continue;
        int quiet = !s->ops->busy(s) && op_outbuf_idle(&s->out);
        if (idle_ms > 0 && quiet && now - s->last_active > idle_ms) {
            op_debug("%s %s: idle for %llus, closing", s->ops->name, s->peer,
                     (unsigned long long)(idle_ms / 1000));
            session_close(s);
            continue;
        }
        /* Bytes that trickle in refresh last_active; the request's start
         * does not move until it is complete. */
        if (request_ms > 0 && quiet && s->in_len > 0 && now - s->started > request_ms) {
            op_log_limited(&lim_timeout, now, OP_LOG_INFO,
                           "%s %s (listener %s): request not complete after %llus "
                           "(%zu bytes); closing", s->ops->name, s->peer, s->l->name,
                           (unsigned long long)((now - s->started) / 1000), s->in_len);
            session_close(s);
            continue;
        }
        maybe_close_drained(s);
    }
}

void op_session_drain_all(op_daemon_t *d)
{
    for (op_session_t *s = d->sessions; s != NULL; s = s->next) {
        if (s->closing)
            continue;
        set_reading(s);
        maybe_close_drained(s);
    }
}

void op_session_abort_all(op_daemon_t *d)
{
    for (op_session_t *s = d->sessions; s != NULL; s = s->next) {
        if (s->closing)
            continue;
        s->processing = 1; /* answers collect; one flush below */
        s->ops->abort(s);
        s->processing = 0;
        op_session_flush(s);
        session_close(s);
    }
}
