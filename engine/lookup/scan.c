/* The content scanners (scan.h): one connection per scan, a line per
 * scanner, the wire formats in scan_codec.c. */
#include "lookup/scan.h"

#include "core/log.h"
#include "core/mem.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#define CLAMD_REPLY_MAX 4096
#define HEAD_MAX 65536 /* rspamd's request header, recipients included */

enum { S_QUEUED, S_CONNECT, S_EXCHANGE, S_CLOSING };

struct op_scan {
    op_scan_t *next, *prev; /* the scanner's line (queued) or its active list */
    op_scanner_t *s;
    int state;
    int fired;     /* the callback ran (or never will: cancelled) */
    int answered;  /* the result is final */
    int handles;   /* open libuv handles */
    op_scan_cb cb;
    void *data;
    char *msg;     /* the bytes to send */
    size_t len;
    char *head;    /* clamd: the command; rspamd: the request header */
    size_t headlen;
    unsigned char (*lens)[4]; /* clamd: the chunks' lengths, and the end */
    uv_buf_t *bufs;
    size_t nbufs;
    union {
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    uv_timer_t timer;
    uv_connect_t connect;
    uv_write_t write;
    char *rbuf;
    size_t rlen, rcap;
    uint64_t t0;
    op_scan_result_t res;
};

struct op_scanner {
    uv_loop_t *loop;
    op_scan_kind_t kind;
    op_scanner_conf_t conf;
    char *address;
    int is_unix;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    struct sockaddr_storage addr;
    int closing;
    op_scan_t *active;
    op_scan_t *line, *line_tail; /* waiting, oldest first */
    op_scanner_stats_t stats;
};

static const char *kind_name(const op_scanner_t *s)
{
    return s->kind == OP_SCAN_CLAMD ? "clamd" : "rspamd";
}

/* ---- addresses ------------------------------------------------------ */

static int parse_address(const char *a, int *is_unix, char *path, size_t pathcap,
                         struct sockaddr_storage *addr)
{
    memset(addr, 0, sizeof *addr);
    if (a == NULL)
        return -1;
    if (strncmp(a, "unix:", 5) == 0) {
        size_t n = strlen(a + 5);
        if (n == 0 || n >= pathcap)
            return -1;
        memcpy(path, a + 5, n + 1);
        *is_unix = 1;
        return 0;
    }
    if (strncmp(a, "tcp:", 4) != 0)
        return -1;
    const char *hp = a + 4;
    char host[64];
    const char *colon;
    if (*hp == '[') {
        const char *close = strchr(hp, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - hp - 1) >= sizeof host)
            return -1;
        memcpy(host, hp + 1, (size_t)(close - hp - 1));
        host[close - hp - 1] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(hp, ':');
        if (colon == NULL || (size_t)(colon - hp) >= sizeof host)
            return -1;
        memcpy(host, hp, (size_t)(colon - hp));
        host[colon - hp] = '\0';
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || colon[1] == '\0' || port < 1 || port > 65535)
        return -1;
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)addr) != 0 &&
        uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)addr) != 0)
        return -1;
    *is_unix = 0;
    return 0;
}

int op_scan_address_ok(const char *address)
{
    int u;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    struct sockaddr_storage addr;
    return parse_address(address, &u, path, sizeof path, &addr);
}

/* ---- one scan ------------------------------------------------------- */

static void scan_free(op_scan_t *sc)
{
    free(sc->msg);
    free(sc->head);
    free(sc->lens);
    free(sc->bufs);
    free(sc->rbuf);
    free(sc);
}

static void unlink_active(op_scan_t *sc)
{
    op_scanner_t *s = sc->s;
    if (sc->prev) sc->prev->next = sc->next; else s->active = sc->next;
    if (sc->next) sc->next->prev = sc->prev;
    sc->next = sc->prev = NULL;
}

static void fire(op_scan_t *sc)
{
    if (sc->fired)
        return;
    sc->fired = 1;
    sc->res.elapsed = (double)(uv_hrtime() - sc->t0) / 1e9;
    sc->cb(sc, &sc->res, sc->data);
}

static void begin(op_scan_t *sc);

static void maybe_free_scanner(op_scanner_t *s)
{
    if (!s->closing || s->active != NULL || s->line != NULL)
        return;
    free(s->address);
    free(s);
}

static void handle_closed(uv_handle_t *h)
{
    op_scan_t *sc = h->data;
    if (--sc->handles > 0)
        return;
    op_scanner_t *s = sc->s;
    fire(sc);
    unlink_active(sc);
    s->stats.active--;
    scan_free(sc);
    if (s->closing) {
        maybe_free_scanner(s);
        return;
    }
    if (s->line != NULL && s->stats.active < s->conf.max_connections) {
        op_scan_t *next = s->line;
        s->line = next->next;
        if (s->line == NULL)
            s->line_tail = NULL;
        else
            s->line->prev = NULL;
        s->stats.waiting--;
        begin(next);
    }
}

static void scan_close(op_scan_t *sc)
{
    if (sc->state == S_CLOSING)
        return;
    sc->state = S_CLOSING;
    uv_timer_stop(&sc->timer);
    uv_close((uv_handle_t *)&sc->timer, handle_closed);
    uv_close((uv_handle_t *)&sc->h.stream, handle_closed);
}

/* The result is final: the callback fires when the handles are closed. */
static void finish_error(op_scan_t *sc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void finish_error(op_scan_t *sc, const char *fmt, ...)
{
    if (!sc->answered) {
        sc->answered = 1;
        sc->res.ok = 0;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sc->res.error, sizeof sc->res.error, fmt, ap);
        va_end(ap);
        sc->s->stats.errors++;
    }
    scan_close(sc);
}

static void finish_ok(op_scan_t *sc)
{
    if (!sc->answered) {
        sc->answered = 1;
        sc->res.ok = 1;
    }
    scan_close(sc);
}

static void on_timeout(uv_timer_t *t)
{
    op_scan_t *sc = t->data;
    sc->s->stats.timeouts++;
    finish_error(sc, "%s: %s", kind_name(sc->s), sc->state == S_CONNECT ? "connect timeout" : "timeout");
}

static void arm(op_scan_t *sc, double secs)
{
    uv_timer_start(&sc->timer, on_timeout, (uint64_t)llround(secs * 1000.0), 0);
}

/* Reads what came so far; eof: the scanner closed the connection. */
static void judge(op_scan_t *sc, int eof)
{
    if (sc->s->kind == OP_SCAN_CLAMD) {
        char *end = memchr(sc->rbuf, '\0', sc->rlen);
        if (end == NULL)
            end = memchr(sc->rbuf, '\n', sc->rlen);
        if (end == NULL && !eof) {
            if (sc->rlen == sc->rcap)
                finish_error(sc, "clamd: answer too long");
            return;
        }
        if (end == NULL && sc->rlen == 0) {
            finish_error(sc, "clamd: closed without an answer");
            return;
        }
        size_t n = end ? (size_t)(end - sc->rbuf) : sc->rlen;
        if (op_clamd_parse(sc->rbuf, n, &sc->res.clamd) != 0 ||
            sc->res.clamd.status == OP_CLAMD_ERROR) {
            finish_error(sc, "clamd: %s", sc->res.clamd.detail);
            return;
        }
        finish_ok(sc);
        return;
    }
    op_http_response_t r;
    int rc = op_http_parse_response(sc->rbuf, sc->rlen, eof, sc->s->conf.max_reply, &r);
    if (rc == OP_HTTP_MORE) {
        if (sc->rlen == sc->rcap)
            finish_error(sc, "rspamd: answer too long");
        return;
    }
    if (rc < 0) {
        finish_error(sc, "rspamd: %s",
                     rc == OP_HTTP_ETOOBIG       ? "answer too long"
                     : rc == OP_HTTP_EUNSUPPORTED ? "unsupported transfer coding"
                     : rc == OP_HTTP_ETRUNCATED   ? "answer cut short"
                                                  : "malformed HTTP answer");
        return;
    }
    if (r.status != 200) {
        finish_error(sc, "rspamd: HTTP status %d", r.status);
        return;
    }
    if (op_rspamd_parse(sc->rbuf + r.body_off, r.body_len, &sc->res.rspamd) != 0) {
        finish_error(sc, "rspamd: malformed answer");
        return;
    }
    finish_ok(sc);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    op_scan_t *sc = h->data;
    *buf = uv_buf_init(sc->rbuf + sc->rlen, (unsigned)(sc->rcap - sc->rlen));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    op_scan_t *sc = st->data;
    if (sc->state != S_EXCHANGE)
        return;
    if (n == UV_EOF) {
        judge(sc, 1);
        return;
    }
    if (n < 0) {
        finish_error(sc, "%s: connection lost (%s)", kind_name(sc->s), uv_err_name((int)n));
        return;
    }
    sc->rlen += (size_t)n;
    judge(sc, 0);
}

static void on_written(uv_write_t *w, int status)
{
    op_scan_t *sc = w->data;
    /* A scanner that answers before it read everything (clamd's size
     * limit) closes: its answer, if any, is read by on_read. */
    if (status < 0 && status != UV_ECANCELED && sc->state == S_EXCHANGE && sc->rlen == 0)
        finish_error(sc, "%s: connection lost while sending (%s)", kind_name(sc->s),
                     uv_err_name(status));
}

static void on_connect(uv_connect_t *c, int status)
{
    op_scan_t *sc = c->data;
    if (status == UV_ECANCELED || sc->state != S_CONNECT)
        return;
    if (status < 0) {
        finish_error(sc, "%s: connect: %s", kind_name(sc->s), uv_err_name(status));
        return;
    }
    sc->state = S_EXCHANGE;
    arm(sc, sc->s->conf.timeout);
    uv_read_start(&sc->h.stream, on_alloc, on_read);
    sc->write.data = sc;
    int rc = uv_write(&sc->write, &sc->h.stream, sc->bufs, (unsigned)sc->nbufs, on_written);
    if (rc != 0)
        finish_error(sc, "%s: send: %s", kind_name(sc->s), uv_err_name(rc));
}

static void begin(op_scan_t *sc)
{
    op_scanner_t *s = sc->s;
    sc->next = s->active;
    sc->prev = NULL;
    if (s->active)
        s->active->prev = sc;
    s->active = sc;
    s->stats.active++;
    if (s->stats.active > s->stats.active_max)
        s->stats.active_max = s->stats.active;
    sc->state = S_CONNECT;
    uv_timer_init(s->loop, &sc->timer);
    sc->timer.data = sc;
    sc->connect.data = sc;
    if (s->is_unix) {
        uv_pipe_init(s->loop, &sc->h.pipe, 0);
        sc->h.pipe.data = sc;
        sc->handles = 2;
        uv_pipe_connect(&sc->connect, &sc->h.pipe, s->path, on_connect);
    } else {
        uv_tcp_init(s->loop, &sc->h.tcp);
        sc->h.tcp.data = sc;
        sc->handles = 2;
        int rc = uv_tcp_connect(&sc->connect, &sc->h.tcp, (struct sockaddr *)&s->addr, on_connect);
        if (rc != 0) {
            finish_error(sc, "%s: connect: %s", kind_name(s), uv_err_name(rc));
            return;
        }
    }
    arm(sc, s->conf.connect_timeout);
}

/* ---- what is sent --------------------------------------------------- */

static void build_clamd(op_scan_t *sc, size_t chunk)
{
    if (chunk == 0)
        chunk = 65536;
    size_t nchunks = (sc->len + chunk - 1) / chunk;
    sc->head = op_malloc(OP_CLAMD_INSTREAM_LEN);
    memcpy(sc->head, OP_CLAMD_INSTREAM, OP_CLAMD_INSTREAM_LEN); /* its NUL included */
    sc->headlen = OP_CLAMD_INSTREAM_LEN;
    sc->lens = op_calloc(nchunks + 1, 4);
    sc->bufs = op_calloc(2 * nchunks + 2, sizeof(uv_buf_t));
    size_t b = 0;
    sc->bufs[b++] = uv_buf_init(sc->head, (unsigned)sc->headlen);
    for (size_t i = 0; i < nchunks; i++) {
        size_t off = i * chunk;
        size_t n = sc->len - off < chunk ? sc->len - off : chunk;
        op_clamd_chunk_header((uint32_t)n, sc->lens[i]);
        sc->bufs[b++] = uv_buf_init((char *)sc->lens[i], 4);
        sc->bufs[b++] = uv_buf_init(sc->msg + off, (unsigned)n);
    }
    op_clamd_chunk_header(0, sc->lens[nchunks]);
    sc->bufs[b++] = uv_buf_init((char *)sc->lens[nchunks], 4);
    sc->nbufs = b;
}

typedef struct {
    char *p;
    size_t n, cap;
} sbuf_t;

static void put(sbuf_t *b, const char *name, const char *value)
{
    if (value == NULL || value[0] == '\0' || !op_http_value_ok(value))
        return;
    size_t need = strlen(name) + strlen(value) + 4;
    if (b->n + need + 64 > HEAD_MAX) /* room kept for Content-Length and the end */
        return;
    while (b->n + need + 1 > b->cap) {
        b->cap *= 2;
        b->p = op_realloc(b->p, b->cap);
    }
    b->n += (size_t)snprintf(b->p + b->n, b->cap - b->n, "%s: %s\r\n", name, value);
}

static void build_rspamd(op_scan_t *sc, const op_scan_meta_t *m)
{
    sbuf_t b = {op_malloc(1024), 0, 1024};
    b.n = (size_t)snprintf(b.p, b.cap, "POST /checkv2 HTTP/1.1\r\nHost: localhost\r\n"
                                       "Connection: close\r\n");
    char clen[32];
    snprintf(clen, sizeof clen, "%zu", sc->len);
    put(&b, "Content-Length", clen);
    if (m != NULL) {
        put(&b, "IP", m->ip);
        put(&b, "Helo", m->helo);
        put(&b, "From", m->from);
        put(&b, "User", m->user);
        put(&b, "Queue-Id", m->queue_id);
        for (size_t i = 0; i < m->nrcpts; i++)
            put(&b, "Rcpt", m->rcpts[i]);
    }
    if (b.n + 3 > b.cap)
        b.p = op_realloc(b.p, b.cap = b.n + 3);
    memcpy(b.p + b.n, "\r\n", 3);
    b.n += 2;
    sc->head = b.p;
    sc->headlen = b.n;
    sc->bufs = op_calloc(2, sizeof(uv_buf_t));
    sc->bufs[0] = uv_buf_init(sc->head, (unsigned)sc->headlen);
    sc->bufs[1] = uv_buf_init(sc->msg, (unsigned)sc->len);
    sc->nbufs = 2;
}

op_scan_t *op_scan_start(op_scanner_t *s, const char *msg, size_t len, const op_scan_meta_t *meta,
                         op_scan_cb cb, void *data)
{
    if (s == NULL || s->closing)
        return NULL;
    op_scan_t *sc = op_calloc(1, sizeof *sc);
    sc->s = s;
    sc->cb = cb;
    sc->data = data;
    sc->t0 = uv_hrtime();
    size_t cap = s->conf.max_size;
    if (s->kind == OP_SCAN_CLAMD && s->conf.stream_max > 0 && s->conf.stream_max < cap)
        cap = s->conf.stream_max;
    sc->len = len < cap ? len : cap;
    sc->res.sent = sc->len;
    sc->res.truncated = len > sc->len;
    sc->msg = op_malloc(sc->len + 1);
    memcpy(sc->msg, msg, sc->len);
    if (s->kind == OP_SCAN_CLAMD) {
        build_clamd(sc, s->conf.chunk_size);
        sc->rcap = CLAMD_REPLY_MAX;
    } else {
        build_rspamd(sc, meta);
        sc->rcap = s->conf.max_reply + OP_HTTP_MAX_HEADER;
    }
    sc->rbuf = op_malloc(sc->rcap);
    s->stats.scans++;
    if (s->stats.active < s->conf.max_connections) {
        begin(sc);
    } else {
        sc->state = S_QUEUED;
        s->stats.queued++;
        s->stats.waiting++;
        sc->prev = s->line_tail;
        if (s->line_tail)
            s->line_tail->next = sc;
        else
            s->line = sc;
        s->line_tail = sc;
    }
    return sc;
}

void op_scan_cancel(op_scan_t *sc)
{
    op_scanner_t *s = sc->s;
    sc->fired = 1;
    if (sc->state == S_QUEUED) {
        if (sc->prev) sc->prev->next = sc->next; else s->line = sc->next;
        if (sc->next) sc->next->prev = sc->prev; else s->line_tail = sc->prev;
        s->stats.waiting--;
        scan_free(sc);
        maybe_free_scanner(s);
        return;
    }
    if (!sc->answered) {
        sc->answered = 1;
        snprintf(sc->res.error, sizeof sc->res.error, "cancelled");
    }
    scan_close(sc);
}

/* ---- life ----------------------------------------------------------- */

static int apply(op_scanner_t *s, const op_scanner_conf_t *conf, char *err, size_t errlen)
{
    int is_unix;
    char path[sizeof s->path];
    struct sockaddr_storage addr;
    if (parse_address(conf->address, &is_unix, path, sizeof path, &addr) != 0) {
        snprintf(err, errlen, "%s: address %s is not unix:/path or tcp:IP:PORT",
                 s->kind == OP_SCAN_CLAMD ? "clamd" : "rspamd",
                 conf->address ? conf->address : "(none)");
        return -1;
    }
    free(s->address);
    s->address = op_strdup(conf->address);
    s->is_unix = is_unix;
    memcpy(s->path, path, sizeof path);
    s->addr = addr;
    s->conf = *conf;
    s->conf.address = s->address;
    if (s->conf.max_connections == 0)
        s->conf.max_connections = 1;
    if (s->conf.max_reply == 0)
        s->conf.max_reply = 262144;
    return 0;
}

op_scanner_t *op_scanner_new(uv_loop_t *loop, op_scan_kind_t kind, const op_scanner_conf_t *conf,
                             char *err, size_t errlen)
{
    op_scanner_t *s = op_calloc(1, sizeof *s);
    s->loop = loop;
    s->kind = kind;
    if (apply(s, conf, err, errlen) != 0) {
        free(s->address);
        free(s);
        return NULL;
    }
    return s;
}

int op_scanner_reconfigure(op_scanner_t *s, const op_scanner_conf_t *conf, char *err, size_t errlen)
{
    return apply(s, conf, err, errlen);
}

void op_scanner_free(op_scanner_t *s)
{
    if (s == NULL)
        return;
    s->closing = 1;
    while (s->line != NULL) {
        op_scan_t *sc = s->line;
        s->line = sc->next;
        snprintf(sc->res.error, sizeof sc->res.error, "cancelled");
        fire(sc);
        scan_free(sc);
    }
    s->line_tail = NULL;
    s->stats.waiting = 0;
    for (op_scan_t *sc = s->active; sc != NULL; sc = sc->next) {
        if (!sc->answered) {
            sc->answered = 1;
            snprintf(sc->res.error, sizeof sc->res.error, "cancelled");
        }
        fire(sc);
        scan_close(sc);
    }
    maybe_free_scanner(s);
}

void op_scanner_stats(const op_scanner_t *s, op_scanner_stats_t *out)
{
    *out = s->stats;
}
