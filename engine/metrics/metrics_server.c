/* The Prometheus endpoint (metrics_server.h): listener and connections.
 * The request head is read by metrics_http.c. */
#include "metrics/metrics_server.h"

#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "metrics/metrics_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct conn conn_t;

struct op_metrics_server {
    uv_tcp_t tcp;
    uv_loop_t *loop;
    size_t max_connections;
    uint64_t timeout_ms;
    size_t nconns;
    conn_t *conns; /* open connections, for stop */
    int stopping;
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    op_metrics_server_t *srv;
    conn_t *prev, *next;
    int open_handles;
    int closing;
    int answered;
    size_t n;
    char in[OP_HTTP_MAX_HEAD];
    char *out;
};

static op_log_limit_t lim_refused;

static void conn_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    if (--c->open_handles > 0)
        return;
    free(c->out);
    free(c);
}

static void conn_close(conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    op_metrics_server_t *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    uv_close((uv_handle_t *)&c->timer, conn_closed);
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void free_server(uv_handle_t *h)
{
    free(h->data);
}

static void on_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    conn_close(w->data);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn_t *c = h->data;
    *buf = uv_buf_init(c->in + c->n, (unsigned)(sizeof c->in - c->n));
}

/* The whole answer in one buffer, written once: libuv sends what the
 * socket takes and the rest as the scraper reads. */
static void answer(conn_t *c, int code)
{
    c->answered = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    size_t body_len;
    char *body;
    if (code == OP_HTTP_OK) {
        body = op_metrics_render(&body_len);
    } else {
        body = op_strdup(op_http_error_body(code));
        body_len = strlen(body);
    }
    char head[512];
    size_t head_len = op_http_head(head, sizeof head, code, body_len);
    c->out = op_malloc(head_len + body_len);
    memcpy(c->out, head, head_len);
    memcpy(c->out + head_len, body, body_len);
    free(body);
    uv_buf_t b = uv_buf_init(c->out, (unsigned)(head_len + body_len));
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
        conn_close(c);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    conn_t *c = st->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->n += (size_t)nread;
    int code = op_http_parse(c->in, c->n);
    if (code != OP_HTTP_MORE)
        answer(c, code);
    else if (c->n == sizeof c->in)
        answer(c, OP_HTTP_BAD);
}

static void on_connection(uv_stream_t *ls, int status)
{
    op_metrics_server_t *s = ls->data;
    if (status < 0 || s->stopping)
        return;
    conn_t *c = op_calloc(1, sizeof *c);
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    /* Scrapes never keep the loop alive: on SIGTERM the daemon drains its
     * MTA connections, not a scraper. */
    uv_unref((uv_handle_t *)&c->tcp);
    uv_unref((uv_handle_t *)&c->timer);
    c->open_handles = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    if (s->nconns > s->max_connections) {
        op_log_limited(&lim_refused, uv_now(s->loop), OP_LOG_WARNING,
                       "metrics: %zu scrape connections open (max_connections); one more closed",
                       s->max_connections);
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, s->timeout_ms, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

op_metrics_server_t *op_metrics_server_start(uv_loop_t *loop, const op_metrics_conf_t *conf, char *err,
                                             size_t errlen)
{
    err[0] = '\0';
    if (conf == NULL || conf->listen == NULL)
        return NULL;
    op_metrics_server_t *s = op_calloc(1, sizeof *s);
    s->loop = loop;
    s->max_connections = conf->max_connections;
    s->timeout_ms = (uint64_t)(conf->timeout * 1000);
    uv_tcp_init(loop, &s->tcp);
    s->tcp.data = s;
    struct sockaddr_storage sa;
    int rc = strchr(conf->host, ':') ? uv_ip6_addr(conf->host, conf->port, (struct sockaddr_in6 *)&sa)
                                     : uv_ip4_addr(conf->host, conf->port, (struct sockaddr_in *)&sa);
    if (rc == 0)
        rc = uv_tcp_bind(&s->tcp, (const struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->tcp, 64, on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "metrics: cannot listen on %s: %s", conf->listen, uv_strerror(rc));
        uv_close((uv_handle_t *)&s->tcp, free_server);
        return NULL;
    }
    uv_unref((uv_handle_t *)&s->tcp);
    op_notice("metrics: serving GET /metrics on %s", conf->listen);
    return s;
}

void op_metrics_server_stop(op_metrics_server_t *s)
{
    if (s == NULL)
        return;
    s->stopping = 1;
    while (s->conns != NULL)
        conn_close(s->conns);
    uv_close((uv_handle_t *)&s->tcp, free_server);
}
