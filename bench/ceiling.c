/* bench-ceiling: the fastest honest Postfix policy server we know how to
 * write with the same building blocks as outpostd (libuv and the project's
 * codec, engine/proto/proto_policy.h), minus everything that makes outpostd
 * useful: no Lua, no configuration, every request answered "DUNNO".
 * outpostd's throughput is reported as a fraction of this one.
 *
 * To be a ceiling and not a strawman it does what an efficient server does:
 * one read buffer per connection that the kernel reads into directly,
 * consumed bytes compacted once per read, every complete request in a read
 * answered (pipelining), the replies of one read sent together with
 * uv_try_write, and nothing allocated per request.  While a reply cannot be
 * written the connection stops reading (backpressure), like outpostd.
 *
 * A parse error closes the connection without a reply, as outpostd does.
 * SIGTERM and SIGINT close everything and exit 0. */
#include "core/mem.h"
#include "proto/proto_policy.h"

#include <uv.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CEIL_IN_INITIAL 16384
/* The codec fails a request at max_request bytes, so the unconsumed bytes of
 * a connection never exceed it: twice leaves room for a full read on top. */
#define CEIL_IN_MAX (2 * OP_POLICY_MAX_REQUEST_DEFAULT)
#define CEIL_IN_MIN_FREE 2048 /* grow rather than read in small pieces */
#define CEIL_OUT_CAP 8192     /* replies of one read; flushed when nearly full */
#define CEIL_REPLY_MAX (sizeof "action=\n\n" + OP_POLICY_MAX_ACTION)
#define CEIL_BACKLOG 4096
#define CEIL_MAX_MESSAGES 10

static const char ACTION[] = "DUNNO";

typedef struct ceil_conn ceil_conn_t;
struct ceil_conn {
    union {
        uv_pipe_t pipe;
        uv_tcp_t tcp;
    } h;
    uv_write_t write_req;
    op_policy_parser_t parser;
    ceil_conn_t *prev, *next; /* all connections, for shutdown */
    int reading;
    int writing; /* out[0..out_len) belongs to libuv until on_write */
    int closing;
    char *in;
    size_t in_len, in_cap;
    size_t out_len;
    char out[CEIL_OUT_CAP];
};

static struct {
    uv_loop_t loop;
    uv_pipe_t unix_listener;
    uv_tcp_t tcp_listener;
    uv_signal_t sigterm, sigint;
    const char *unix_path;
    const char *tcp_spec;
    int have_unix, have_tcp;
    ceil_conn_t *conns;
    uint64_t requests, accepted, parse_errors, messages;
    int shutting_down;
} srv;

static uv_stream_t *conn_stream(ceil_conn_t *c) { return (uv_stream_t *)&c->h; }

static void message(const char *what, const char *detail)
{
    /* Rate-limited: a broken client must not turn the benchmark into a
     * logging benchmark. */
    if (srv.messages++ < CEIL_MAX_MESSAGES)
        fprintf(stderr, "ceiling: %s: %s\n", what, detail);
}

static void on_conn_closed(uv_handle_t *h)
{
    ceil_conn_t *c = h->data;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    op_policy_parser_free(&c->parser);
    free(c->in);
    free(c);
}

static void conn_close(ceil_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->h, on_conn_closed);
}

static void on_write(uv_write_t *req, int status);

/* Sends out[0..out_len).  Returns 1 when it all went out now, 0 when a
 * uv_write is pending (or the connection is closing). */
static int flush(ceil_conn_t *c)
{
    uv_buf_t buf = uv_buf_init(c->out, (unsigned)c->out_len);
    int n = uv_try_write(conn_stream(c), &buf, 1);
    if (n == (int)c->out_len) {
        c->out_len = 0;
        return 1;
    }
    if (n < 0 && n != UV_EAGAIN) {
        if (n != UV_EPIPE && n != UV_ECONNRESET)
            message("write", uv_strerror(n));
        conn_close(c);
        return 0;
    }
    if (n < 0)
        n = 0;
    buf = uv_buf_init(c->out + n, (unsigned)(c->out_len - (size_t)n));
    int rc = uv_write(&c->write_req, conn_stream(c), &buf, 1, on_write);
    if (rc < 0) {
        message("write", uv_strerror(rc));
        conn_close(c);
        return 0;
    }
    c->writing = 1;
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void set_reading(ceil_conn_t *c, int on)
{
    if (c->closing || c->reading == on)
        return;
    if (on) {
        int rc = uv_read_start(conn_stream(c), on_alloc, on_read);
        if (rc < 0) {
            message("read", uv_strerror(rc));
            conn_close(c);
            return;
        }
    } else {
        uv_read_stop(conn_stream(c));
    }
    c->reading = on;
}

/* Answers every complete request in in[0..in_len), then keeps only the
 * unconsumed tail.  Stops early when replies cannot be written, leaving the
 * rest for on_write. */
static void process(ceil_conn_t *c)
{
    size_t off = 0;
    while (!c->writing && !c->closing) {
        if (CEIL_OUT_CAP - c->out_len < CEIL_REPLY_MAX && !flush(c))
            break;
        ssize_t r = op_policy_parse(&c->parser, c->in + off, c->in_len - off);
        if (r == 0)
            break;
        if (r < 0) {
            srv.parse_errors++;
            message("closing a connection", op_policy_strerror(r));
            /* The requests before the bad one were valid: answer them (best
             * effort, the connection is going away anyway). */
            if (c->out_len > 0) {
                uv_buf_t buf = uv_buf_init(c->out, (unsigned)c->out_len);
                uv_try_write(conn_stream(c), &buf, 1);
            }
            conn_close(c);
            return;
        }
        off += (size_t)r;
        c->out_len += op_policy_encode(c->out + c->out_len, CEIL_OUT_CAP - c->out_len,
                                       ACTION, sizeof ACTION - 1);
        srv.requests++;
    }
    if (c->closing)
        return;
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    if (!c->writing && c->out_len > 0)
        flush(c);
    set_reading(c, !c->writing);
}

static void on_write(uv_write_t *req, int status)
{
    ceil_conn_t *c = req->data;
    c->writing = 0;
    if (c->closing)
        return;
    if (status < 0) {
        if (status != UV_EPIPE && status != UV_ECONNRESET)
            message("write", uv_strerror(status));
        conn_close(c);
        return;
    }
    c->out_len = 0;
    process(c); /* requests that arrived while the reply was stuck */
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    ceil_conn_t *c = h->data;
    if (c->in_cap - c->in_len < CEIL_IN_MIN_FREE && c->in_cap < CEIL_IN_MAX) {
        c->in_cap = c->in_cap * 2 > CEIL_IN_MAX ? CEIL_IN_MAX : c->in_cap * 2;
        c->in = op_realloc(c->in, c->in_cap);
    }
    /* A zero-length buffer makes libuv report UV_ENOBUFS: then we close. */
    *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    ceil_conn_t *c = s->data;
    if (nread == 0 || c->closing)
        return;
    if (nread < 0) {
        /* Postfix closes idle policy connections: EOF is normal. */
        if (nread != UV_EOF && nread != UV_ECONNRESET)
            message("read", uv_strerror((int)nread));
        conn_close(c);
        return;
    }
    c->in_len += (size_t)nread;
    process(c);
}

static void on_connection(uv_stream_t *listener, int status)
{
    if (status < 0) {
        message("accept", uv_strerror(status));
        return;
    }
    ceil_conn_t *c = op_calloc(1, sizeof *c);
    if (listener == (uv_stream_t *)&srv.tcp_listener)
        uv_tcp_init(&srv.loop, &c->h.tcp);
    else
        uv_pipe_init(&srv.loop, &c->h.pipe, 0);
    c->h.pipe.data = c; /* the same field in both union members */
    c->write_req.data = c;
    c->next = srv.conns;
    if (srv.conns)
        srv.conns->prev = c;
    srv.conns = c;

    int rc = uv_accept(listener, conn_stream(c));
    if (rc < 0) {
        message("accept", uv_strerror(rc));
        conn_close(c);
        return;
    }
    if (listener == (uv_stream_t *)&srv.tcp_listener)
        uv_tcp_nodelay(&c->h.tcp, 1); /* replies are small and awaited */
    srv.accepted++;
    op_policy_parser_init(&c->parser, NULL);
    c->in_cap = CEIL_IN_INITIAL;
    c->in = op_malloc(c->in_cap);
    set_reading(c, 1);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    (void)sig;
    if (srv.shutting_down)
        return;
    srv.shutting_down = 1;
    fprintf(stderr, "ceiling: signal %d, exiting after %" PRIu64 " requests on %" PRIu64
                    " connections (%" PRIu64 " parse errors)\n",
            signum, srv.requests, srv.accepted, srv.parse_errors);
    if (srv.have_unix)
        uv_close((uv_handle_t *)&srv.unix_listener, NULL);
    if (srv.have_tcp)
        uv_close((uv_handle_t *)&srv.tcp_listener, NULL);
    uv_close((uv_handle_t *)&srv.sigterm, NULL);
    uv_close((uv_handle_t *)&srv.sigint, NULL);
    for (ceil_conn_t *c = srv.conns; c; c = c->next)
        conn_close(c);
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: bench-ceiling [--unix PATH] [--tcp HOST:PORT]\n"
        "A bare Postfix policy server: parses each request with the outpost codec\n"
        "and answers action=DUNNO.  The baseline for outpostd's throughput.\n"
        "\n"
        "  --unix PATH       listen on a unix socket (a stale socket is replaced)\n"
        "  --tcp HOST:PORT   listen on TCP; HOST is an IPv4 or [IPv6] literal\n"
        "  -h, --help        this text\n"
        "At least one listener.  SIGTERM or SIGINT: exit 0.\n");
}

static int listen_unix(const char *path)
{
    if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        fprintf(stderr, "ceiling: --unix %s: path too long\n", path);
        return -1;
    }
    /* Replace a socket left by a killed run, never a regular file. */
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    uv_pipe_init(&srv.loop, &srv.unix_listener, 0);
    srv.have_unix = 1;
    int rc = uv_pipe_bind(&srv.unix_listener, path);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv.unix_listener, CEIL_BACKLOG, on_connection);
    if (rc < 0) {
        fprintf(stderr, "ceiling: --unix %s: %s\n", path, uv_strerror(rc));
        return -1;
    }
    return 0;
}

static int listen_tcp(const char *spec)
{
    char host[64];
    const char *port;
    struct sockaddr_storage addr;
    int rc;
    if (spec[0] == '[') {
        const char *end = strchr(spec, ']');
        if (!end || end[1] != ':' || (size_t)(end - spec - 1) >= sizeof host)
            goto bad;
        memcpy(host, spec + 1, (size_t)(end - spec - 1));
        host[end - spec - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strchr(spec, ':');
        if (!colon || strchr(colon + 1, ':') || (size_t)(colon - spec) >= sizeof host)
            goto bad;
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
        port = colon + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 0 || p > 65535)
        goto bad;
    if (spec[0] == '[')
        rc = uv_ip6_addr(host, (int)p, (struct sockaddr_in6 *)&addr);
    else
        rc = uv_ip4_addr(host, (int)p, (struct sockaddr_in *)&addr);
    if (rc < 0)
        goto bad;

    uv_tcp_init(&srv.loop, &srv.tcp_listener);
    srv.have_tcp = 1;
    rc = uv_tcp_bind(&srv.tcp_listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv.tcp_listener, CEIL_BACKLOG, on_connection);
    if (rc < 0) {
        fprintf(stderr, "ceiling: --tcp %s: %s\n", spec, uv_strerror(rc));
        return -1;
    }
    return 0;
bad:
    fprintf(stderr, "ceiling: bad --tcp %s: want IPv4:PORT or [IPv6]:PORT\n", spec);
    return -1;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"unix", required_argument, NULL, 'u'},
        {"tcp", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'u': srv.unix_path = optarg; break;
        case 't': srv.tcp_spec = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || (!srv.unix_path && !srv.tcp_spec)) {
        usage(stderr);
        return 2;
    }

    signal(SIGPIPE, SIG_IGN); /* a vanished client shows as EPIPE */
    if (uv_loop_init(&srv.loop) != 0) {
        fprintf(stderr, "ceiling: uv_loop_init failed\n");
        return 1;
    }
    if ((srv.unix_path && listen_unix(srv.unix_path) < 0) ||
        (srv.tcp_spec && listen_tcp(srv.tcp_spec) < 0))
        return 1;
    uv_signal_init(&srv.loop, &srv.sigterm);
    uv_signal_init(&srv.loop, &srv.sigint);
    uv_signal_start(&srv.sigterm, on_signal, SIGTERM);
    uv_signal_start(&srv.sigint, on_signal, SIGINT);
    fprintf(stderr, "ceiling: listening%s%s%s%s\n",
            srv.unix_path ? " on unix:" : "", srv.unix_path ? srv.unix_path : "",
            srv.tcp_spec ? " on tcp:" : "", srv.tcp_spec ? srv.tcp_spec : "");

    uv_run(&srv.loop, UV_RUN_DEFAULT);
    if (srv.unix_path)
        unlink(srv.unix_path);
    uv_loop_close(&srv.loop);
    return 0;
}
