/* The session layer (session.h): accept, read with back-pressure,
 * buffered write, idle sweep, drain, abort and close, for every protocol. */
#include "core/session.h"

#include "core/log.h"
#include "core/mem.h"

#include <string.h>
#include <time.h>

/* Past this much output not yet taken by the peer, stop reading: a client
 * pipelining without reading its answers must not grow our buffer. */
#define MAX_OUT_BUFFERED (256 * 1024)

static void process_input(op_session_t *s);

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
    d->nconns--;
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
        op_info("%s %s: write failed: %s", s->ops->name, s->peer, uv_strerror(rc));
        session_close(s);
    }
}

static void on_written(op_outbuf_t *ob, int status)
{
    op_session_t *s = ob->data;
    if (s->closing)
        return;
    if (status < 0) {
        op_info("%s %s: write failed: %s", s->ops->name, s->peer, uv_strerror(status));
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
        s->in_len += (size_t)nread;
        s->last_active = uv_now(s->d->loop);
        process_input(s);
        return;
    }
    if (nread == 0)
        return;
    if (nread == UV_EOF) {
        if (s->in_len > 0)
            op_info("%s %s (listener %s): closed by the client in the middle of a "
                    "request (%zu bytes unanswered)", s->ops->name, s->peer, s->l->name,
                    s->in_len);
        else
            op_debug("%s %s: closed by the client", s->ops->name, s->peer);
    } else {
        op_info("%s %s (listener %s): read failed: %s", s->ops->name, s->peer, s->l->name,
                uv_strerror((int)nread));
    }
    session_close(s);
}

static void describe_peer(op_session_t *s)
{
    if (s->l->kind == OP_LISTEN_UNIX) {
        snprintf(s->peer, sizeof s->peer, "unix:%s", s->l->name);
        return;
    }
    struct sockaddr_storage sa;
    int len = sizeof sa;
    char ip[64] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&s->h.tcp, (struct sockaddr *)&sa, &len) == 0) {
        if (sa.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&sa, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&sa, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
        }
    }
    snprintf(s->peer, sizeof s->peer, "%s:%d", ip, port);
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
    if (d->stopping || d->nconns >= d->current->cfg->max_connections) {
        static uint64_t last_warned;
        if (uv_now(d->loop) - last_warned > 10000) {
            op_warn("listener %s: %s; refusing connections", l->name,
                    d->stopping ? "shutting down" : "max_connections reached");
            last_warned = uv_now(d->loop);
        }
        uv_close(&s->h.handle, close_rejected);
        return;
    }
    if (l->kind == OP_LISTEN_TCP)
        uv_tcp_nodelay(&s->h.tcp, 1);
    describe_peer(s);
    op_outbuf_init(&s->out, &s->h.stream, on_written, s);
    if (ops->open(s) != 0) {
        uv_close(&s->h.handle, close_rejected);
        return;
    }
    s->last_active = uv_now(d->loop);
    s->next = d->sessions;
    if (d->sessions)
        d->sessions->prev = s;
    d->sessions = s;
    d->nconns++;
    set_reading(s);
}

uint64_t op_session_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void op_session_sweep(op_daemon_t *d, uint64_t idle_ms)
{
    uint64_t now = uv_now(d->loop);
    for (op_session_t *s = d->sessions; s != NULL; s = s->next) {
        if (s->closing)
            continue;
        if (idle_ms > 0 && !s->ops->busy(s) && op_outbuf_idle(&s->out) &&
            now - s->last_active > idle_ms) {
            op_debug("%s %s: idle for %llus, closing", s->ops->name, s->peer,
                     (unsigned long long)(idle_ms / 1000));
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
