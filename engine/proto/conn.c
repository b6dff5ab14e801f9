#include "proto/conn.h"

#include "core/log.h"
#include "core/mem.h"
#include "core/outbuf.h"
#include "proto/proto_policy.h"
#include "core/request.h"

#include <string.h>
#include <time.h>

/* Postfix sends one query and waits for its answer, so more than a few in
 * flight on one connection means a client pipelining hard: stop reading
 * until answers drain. */
#define MAX_INFLIGHT 16
#define MAX_OUT_BUFFERED (256 * 1024)
#define READ_CHUNK 8192
#define WHO_MAX 640

typedef struct {
    op_conn_t *conn;
    op_request_t *req; /* while the request runs after op_request_start returned */
    int ready;         /* answered; reply holds the encoded answer if not yet sent */
    char *reply;
    size_t reply_len;
    uint64_t start_us;
    char who[WHO_MAX]; /* the decision log's "who" fields, captured at dispatch */
} slot_t;

struct op_conn {
    op_conn_t *prev, *next;
    op_daemon_t *d;
    op_listener_t *l;
    op_stream_t h;
    char peer[80];
    char *in;
    size_t in_len, in_cap, in_max;
    op_policy_parser_t parser;
    slot_t slots[MAX_INFLIGHT];
    unsigned head, count;
    op_outbuf_t out;
    int reading, closing, processing, log_decisions;
    uint64_t last_active;
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void on_closed(uv_handle_t *h)
{
    op_conn_t *c = h->data;
    op_daemon_t *d = c->d;
    if (c->prev)
        c->prev->next = c->next;
    else
        d->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    d->nconns--;
    op_policy_parser_free(&c->parser);
    free(c->in);
    op_outbuf_free(&c->out);
    op_listener_unref(c->l);
    free(c);
    op_daemon_conn_closed(d);
}

static void conn_close(op_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    for (unsigned i = 0; i < MAX_INFLIGHT; i++) {
        slot_t *s = &c->slots[i];
        if (s->req != NULL) {
            op_request_t *req = s->req;
            s->req = NULL;
            op_request_cancel(req);
        }
        free(s->reply);
        s->reply = NULL;
    }
    uv_close(&c->h.handle, on_closed);
}

static void flush(op_conn_t *c);
static void process_input(op_conn_t *c);

static void maybe_close_drained(op_conn_t *c)
{
    if (c->d->stopping && c->count == 0 && op_outbuf_idle(&c->out))
        conn_close(c);
}

static void on_written(op_outbuf_t *ob, int status)
{
    op_conn_t *c = ob->data;
    if (c->closing)
        return;
    if (status < 0) {
        op_info("connection %s: write failed: %s", c->peer, uv_strerror(status));
        conn_close(c);
        return;
    }
    flush(c);
    if (!c->processing)
        process_input(c); /* reading may have paused on a full output buffer */
    maybe_close_drained(c);
}

static void flush(op_conn_t *c)
{
    if (c->closing)
        return;
    int rc = op_outbuf_flush(&c->out);
    if (rc != 0) {
        op_info("connection %s: write failed: %s", c->peer, uv_strerror(rc));
        conn_close(c);
    }
}

static void out_append_answer(op_conn_t *c, const char *action, size_t len)
{
    size_t need = len + 16;
    if (need > OP_POLICY_MAX_ACTION + 16)
        need = OP_POLICY_MAX_ACTION + 16;
    size_t n = op_policy_encode(op_outbuf_reserve(&c->out, need), need, action, len);
    OP_ASSERT(n > 0);
    op_outbuf_commit(&c->out, n);
}

/* Moves answered slots at the head, in order, to the output buffer. */
static void drain_ready_slots(op_conn_t *c)
{
    while (c->count > 0 && c->slots[c->head].ready) {
        slot_t *s = &c->slots[c->head];
        if (s->reply != NULL) {
            op_outbuf_append(&c->out, s->reply, s->reply_len);
            free(s->reply);
            s->reply = NULL;
        }
        s->ready = 0;
        c->head = (c->head + 1) % MAX_INFLIGHT;
        c->count--;
    }
}

/* A value for the decision log: quoted when it has spaces, quotes or
 * nothing, cut at 200 bytes; control bytes were already refused by the
 * codec. */
static size_t append_kv(char *buf, size_t at, size_t cap, const char *key, const char *v,
                        size_t len)
{
    if (len > 200)
        len = 200;
    int quote = len == 0 || memchr(v, ' ', len) || memchr(v, '"', len) || memchr(v, '=', len);
    int n = snprintf(buf + at, cap - at, " %s=%s", key, quote ? "\"" : "");
    if (n < 0 || (size_t)n >= cap - at)
        return at;
    at += (size_t)n;
    for (size_t i = 0; i < len && at + 3 < cap; i++) {
        if (v[i] == '"' || v[i] == '\\')
            buf[at++] = '\\';
        buf[at++] = v[i];
    }
    if (quote && at + 1 < cap)
        buf[at++] = '"';
    buf[at] = '\0';
    return at;
}

static void log_decision(op_conn_t *c, slot_t *s, op_request_t *req, const op_answer_t *a)
{
    char action[256];
    size_t alen = append_kv(action, 0, sizeof action, "action", a->action, a->action_len);
    (void)alen;
    op_info("decision req=%llu service=%s tenant=%s%s%s check=%s reason=%s elapsed_us=%llu gen=%llu",
            (unsigned long long)req->serial, req->service->conf->name,
            *c->l->tenant ? c->l->tenant : "-", s->who, action, a->check, a->reason,
            (unsigned long long)(now_us() - s->start_us), (unsigned long long)req->gen->number);
}

/* Records the answer of slot s; answers leave in the order the queries
 * came, so an answer waits in its slot until those before it are out. */
static void complete_slot(op_conn_t *c, slot_t *s, const op_answer_t *a)
{
    s->req = NULL;
    s->ready = 1;
    if (s == &c->slots[c->head]) {
        out_append_answer(c, a->action, a->action_len);
        s->ready = 0;
        c->head = (c->head + 1) % MAX_INFLIGHT;
        c->count--;
        drain_ready_slots(c);
    } else {
        size_t cap = a->action_len + 16;
        s->reply = op_malloc(cap);
        s->reply_len = op_policy_encode(s->reply, cap, a->action, a->action_len);
    }
    if (!c->processing) {
        flush(c);
        process_input(c); /* reading may have paused with slots full */
        maybe_close_drained(c);
    }
}

static void on_done(op_request_t *req, const op_answer_t *a, void *data)
{
    slot_t *s = data;
    if (s->conn->log_decisions)
        log_decision(s->conn, s, req, a);
    complete_slot(s->conn, s, a);
}

static const op_policy_attr_t *find_attr(const op_policy_attr_t *a, size_t n, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (a[i].name_len == len && memcmp(a[i].name, name, len) == 0)
            return &a[i];
    return NULL;
}

static void capture_who(slot_t *s, const op_policy_attr_t *a, size_t n)
{
    static const char *const fields[][2] = {
        {"client", "client_address"}, {"sasl_user", "sasl_username"},
        {"sender", "sender"},         {"rcpt", "recipient"},
    };
    size_t at = 0;
    s->who[0] = '\0';
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const op_policy_attr_t *v = find_attr(a, n, fields[i][1]);
        at = append_kv(s->who, at, sizeof s->who, fields[i][0], v ? v->value : "",
                       v ? v->value_len : 0);
    }
}

static void dispatch(op_conn_t *c)
{
    static op_request_attr_t *attrs;
    static size_t attrs_cap;
    size_t n = op_policy_nattrs(&c->parser);
    const op_policy_attr_t *pa = op_policy_attrs(&c->parser);
    if (attrs_cap < n) {
        attrs = op_realloc(attrs, n * sizeof *attrs);
        attrs_cap = n;
    }
    for (size_t i = 0; i < n; i++)
        attrs[i] = (op_request_attr_t){pa[i].name, pa[i].name_len, pa[i].value, pa[i].value_len};

    const op_policy_attr_t *ctx = find_attr(pa, n, "policy_context");
    const char *service_name =
        op_listener_service_for(c->l, ctx ? ctx->value : NULL, ctx ? ctx->value_len : 0);
    op_gen_t *gen = c->d->current;
    const op_gen_service_t *svc = op_gen_service(gen, service_name);

    slot_t *s = &c->slots[(c->head + c->count) % MAX_INFLIGHT];
    c->count++;
    s->conn = c;
    s->ready = 0;
    s->req = NULL;
    s->start_us = now_us();
    c->log_decisions = gen->cfg->log_decisions;
    if (c->log_decisions)
        capture_who(s, pa, n);

    if (svc == NULL) {
        /* The listener names a service the current configuration no longer
         * has: answer a safe temporary failure, never a crash. */
        static const char fallback[] = "451 4.3.5 policy service not configured";
        op_error("connection %s: listener %s: no service '%s' in the current configuration; "
                 "answering \"%s\"", c->peer, c->l->name, service_name, fallback);
        op_answer_t a = {fallback, sizeof fallback - 1, "-", "no-service", NULL, 0};
        complete_slot(c, s, &a);
        return;
    }
    /* NULL when the policy answered at once (done already ran). */
    s->req = op_request_start(c->d->loop, gen, svc, c->l->tenant, c->l->name, attrs, n, on_done, s);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void set_reading(op_conn_t *c)
{
    int want = !c->closing && !c->d->stopping && c->count < MAX_INFLIGHT &&
               c->out.len < MAX_OUT_BUFFERED;
    if (want == c->reading)
        return;
    c->reading = want;
    if (want)
        uv_read_start(&c->h.stream, on_alloc, on_read);
    else
        uv_read_stop(&c->h.stream);
}

static void process_input(op_conn_t *c)
{
    if (c->closing)
        return;
    c->processing = 1;
    size_t pos = 0;
    while (!c->closing && c->count < MAX_INFLIGHT && pos < c->in_len) {
        ssize_t r = op_policy_parse(&c->parser, c->in + pos, c->in_len - pos);
        if (r == 0)
            break;
        if (r < 0) {
            op_warn("connection %s (listener %s): malformed request: %s; closing the "
                    "connection without a reply",
                    c->peer, c->l->name, op_policy_strerror(r));
            c->processing = 0;
            conn_close(c);
            return;
        }
        dispatch(c);
        pos += (size_t)r;
    }
    c->processing = 0;
    if (c->closing)
        return;
    if (pos > 0) {
        memmove(c->in, c->in + pos, c->in_len - pos);
        c->in_len -= pos;
    }
    flush(c);
    if (!c->closing)
        set_reading(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    op_conn_t *c = h->data;
    if (c->in_cap - c->in_len < READ_CHUNK && c->in_cap < c->in_max) {
        size_t cap = c->in_cap ? c->in_cap * 2 : READ_CHUNK * 2;
        if (cap > c->in_max)
            cap = c->in_max;
        c->in = op_realloc(c->in, cap);
        c->in_cap = cap;
    }
    /* A full buffer gives libuv no room: it reports UV_ENOBUFS and the
     * connection closes.  Only a client pipelining far past Postfix's
     * behaviour gets there. */
    *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    op_conn_t *c = st->data;
    if (nread > 0) {
        c->in_len += (size_t)nread;
        c->last_active = uv_now(c->d->loop);
        process_input(c);
        return;
    }
    if (nread == 0)
        return;
    if (nread == UV_EOF) {
        if (c->in_len > 0)
            op_info("connection %s (listener %s): closed by the client in the middle of a "
                    "request (%zu bytes unanswered)", c->peer, c->l->name, c->in_len);
        else
            op_debug("connection %s: closed by the client", c->peer);
    } else {
        op_info("connection %s (listener %s): read failed: %s", c->peer, c->l->name,
                uv_strerror((int)nread));
    }
    conn_close(c);
}

static void describe_peer(op_conn_t *c)
{
    if (c->l->kind == OP_LISTEN_UNIX) {
        snprintf(c->peer, sizeof c->peer, "unix:%s", c->l->name);
        return;
    }
    struct sockaddr_storage sa;
    int len = sizeof sa;
    char ip[64] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&sa, &len) == 0) {
        if (sa.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&sa, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&sa, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
        }
    }
    snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
}

static void close_rejected(uv_handle_t *h)
{
    op_conn_t *c = h->data;
    op_listener_unref(c->l);
    free(c);
}

void op_conn_accept(op_listener_t *l)
{
    op_daemon_t *d = l->daemon;
    op_conn_t *c = op_calloc(1, sizeof *c);
    c->d = d;
    c->l = l;
    op_listener_ref(l);
    if (l->kind == OP_LISTEN_UNIX)
        uv_pipe_init(d->loop, &c->h.pipe, 0);
    else
        uv_tcp_init(d->loop, &c->h.tcp);
    c->h.handle.data = c;
    if (uv_accept(&l->h.stream, &c->h.stream) != 0) {
        uv_close(&c->h.handle, close_rejected);
        return;
    }
    const op_config_t *cfg = d->current->cfg;
    if (d->stopping || d->nconns >= cfg->max_connections) {
        static uint64_t last_warned;
        if (uv_now(d->loop) - last_warned > 10000) {
            op_warn("listener %s: %s; refusing connections", l->name,
                    d->stopping ? "shutting down" : "max_connections reached");
            last_warned = uv_now(d->loop);
        }
        uv_close(&c->h.handle, close_rejected);
        return;
    }
    if (l->kind == OP_LISTEN_TCP)
        uv_tcp_nodelay(&c->h.tcp, 1);
    describe_peer(c);
    op_outbuf_init(&c->out, &c->h.stream, on_written, c);
    op_policy_limits_t lim = {cfg->max_line, cfg->max_attrs, cfg->max_request};
    op_policy_parser_init(&c->parser, &lim);
    c->in_max = cfg->max_request + 2 * READ_CHUNK;
    c->last_active = uv_now(d->loop);
    c->next = d->conns;
    if (d->conns)
        d->conns->prev = c;
    d->conns = c;
    d->nconns++;
    set_reading(c);
}

void op_conn_sweep(op_daemon_t *d, uint64_t idle_ms)
{
    uint64_t now = uv_now(d->loop);
    for (op_conn_t *c = d->conns; c != NULL; c = c->next) {
        if (c->closing)
            continue;
        if (idle_ms > 0 && c->count == 0 && op_outbuf_idle(&c->out) &&
            now - c->last_active > idle_ms) {
            op_debug("connection %s: idle for %llus, closing", c->peer,
                     (unsigned long long)(idle_ms / 1000));
            conn_close(c);
            continue;
        }
        maybe_close_drained(c);
    }
}

void op_conn_drain_all(op_daemon_t *d)
{
    for (op_conn_t *c = d->conns; c != NULL; c = c->next) {
        if (c->closing)
            continue;
        set_reading(c);
        maybe_close_drained(c);
    }
}

void op_conn_abort_all(op_daemon_t *d)
{
    for (op_conn_t *c = d->conns; c != NULL; c = c->next) {
        if (c->closing)
            continue;
        c->processing = 1; /* answers collect; one flush below */
        for (unsigned i = 0; i < MAX_INFLIGHT; i++) {
            slot_t *s = &c->slots[i];
            if (s->req != NULL) {
                op_request_t *req = s->req;
                op_request_abort(req, "shutdown");
            }
        }
        c->processing = 0;
        flush(c);
        conn_close(c);
    }
}
