/* bench-loadgen: a closed-loop load generator for the Postfix policy
 * delegation protocol, on libuv.
 *
 * Each of -c persistent connections behaves like one Postfix smtpd process:
 * it sends one RCPT-stage request, waits for the complete reply, then sends
 * the next.  The run is bounded by -d seconds and, optionally, by -n
 * measured requests, whichever comes first; the connect phase and the final
 * drain have bounds of their own, so the tool always terminates.
 *
 * The tests use the counts to prove that a server lost nothing, so nothing is
 * retried or reconnected: a malformed reply, a connect failure or a missing
 * reply is an error, a connection the server closes is dropped, and the exit
 * status is 0 only when both are zero.
 *
 * It must not be the bottleneck when measuring a fast server: requests are
 * built with memcpy into a per-connection buffer, writes try uv_try_write
 * first, latencies go into a fixed log-linear histogram; nothing is
 * allocated per request. */
#include "core/mem.h"

#include <uv.h>

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LG_MAX_CONNS 10000
#define LG_REQ_CAP 3072        /* one request is ~900 bytes plus the context and the fixed values */
#define LG_MAX_CONTEXT 256
#define LG_MAX_FIXED 253 /* --sender, --sasl-username, --client-address */
#define LG_MAX_RCPT_DOMAIN 253 /* --recipient-domain: one DNS name */
#define LG_REPLY_CAP 4096      /* the codec caps an action at 1000 bytes */
#define LG_MAX_ACTIONS 50
#define LG_CONNECT_BATCH 64    /* connects in flight: a burst of thousands would overflow the server's backlog */
#define LG_CONNECT_TIMEOUT_MS 10000
#define LG_DRAIN_TIMEOUT_MS 3000
#define LG_MAX_ERROR_MESSAGES 5
#define LG_SEED 0x6f7574706f7374ULL /* fixed: two runs send the same key sequence */

/* ---- latency histogram ------------------------------------------------
 * HDR-like: values below 2*SUB nanoseconds are exact; above, each power of
 * two is split into SUB linear buckets, so a bucket's width is at most 1/SUB
 * of its value.  Reporting the bucket midpoint bounds the error by 1/(2*SUB),
 * 0.4% with SUB = 128, and 64 powers of two cover every uint64_t. */
#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (64 * HIST_SUB)

static uint64_t hist[HIST_BUCKETS];
static uint64_t hist_count, hist_max;

static size_t hist_index(uint64_t v)
{
    if (v < 2 * HIST_SUB)
        return (size_t)v;
    unsigned shift = (unsigned)(63 - __builtin_clzll(v)) - HIST_SUB_BITS;
    return (size_t)shift * HIST_SUB + (size_t)(v >> shift);
}

static uint64_t hist_value(size_t i)
{
    if (i < 2 * HIST_SUB)
        return i;
    unsigned shift = (unsigned)(i / HIST_SUB) - 1;
    uint64_t low = (uint64_t)(i - (size_t)shift * HIST_SUB) << shift;
    return low + ((1ULL << shift) >> 1);
}

/* The value v such that a fraction q of the samples is <= v. */
static uint64_t hist_quantile(double q)
{
    uint64_t rank = (uint64_t)ceil(q * (double)hist_count), seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS && hist_count; i++) {
        seen += hist[i];
        if (seen >= rank && seen > 0) {
            uint64_t v = hist_value(i);
            return v > hist_max ? hist_max : v;
        }
    }
    return hist_max;
}

/* ---- state ------------------------------------------------------------ */

enum { PHASE_CONNECT, PHASE_WARMUP, PHASE_MEASURE, PHASE_DRAIN, PHASE_DONE };
enum { CONN_IDLE, CONN_CONNECTING, CONN_OPEN, CONN_CLOSED };

typedef struct {
    union {
        uv_pipe_t pipe;
        uv_tcp_t tcp;
    } h;
    uv_connect_t connect_req;
    uv_write_t write_req;
    unsigned index;
    int state;
    int in_flight;    /* a request was sent and its reply is not complete */
    int writing;      /* write_req is in use until its callback runs */
    int send_pending; /* the next request waits for write_req */
    int priming;      /* --ramp: the unmeasured first request is out */
    uint64_t sent_ns;
    size_t req_len;
    size_t in_len;
    char req[LG_REQ_CAP];
    char in[LG_REPLY_CAP];
} lg_conn_t;

typedef struct {
    char *text;
    size_t len;
    uint64_t count;
} lg_action_t;

static struct {
    /* options */
    const char *unix_path;
    const char *tcp_spec;
    struct sockaddr_storage tcp_addr;
    unsigned conns;
    unsigned connect_batch; /* connects in flight at once */
    int ramp;               /* --ramp: a connection is up once its first request is answered */
    unsigned priming;       /* --ramp: connections waiting for that answer */
    double duration;
    uint64_t max_requests; /* 0: unlimited */
    uint64_t keys;
    uint64_t first_key; /* --first-key: keys are first_key + [0, keys) */
    const char *context;
    size_t context_len;
    const char *rcpt_domain; /* --recipient-domain: recipients are rcpt<k>@rcpt_domain */
    /* --sender, --sasl-username, --client-address: one value for every
     * request instead of one per key (a service with few accounts) */
    const char *fixed_sender, *fixed_sasl, *fixed_client;
    size_t rcpt_domain_len;
    double warmup;
    int quiet;
    long server_pid; /* 0: none */
    long server_sid; /* --server-session: every process of this session; 0: none */

    uv_loop_t loop;
    uv_timer_t connect_timer, warmup_timer, duration_timer, drain_timer;
    lg_conn_t *conn;
    unsigned next_connect, connecting, open;
    int phase;
    uint64_t rng;
    uint64_t instance_seq;
    unsigned pid;
    uint64_t inflight;

    uint64_t measure_start_ns, measure_end_ns;
    uint64_t requests, errors, dropped;
    double server_cpu_start, server_cpu_end;

    lg_action_t actions[LG_MAX_ACTIONS];
    size_t nactions;
    size_t last_action;
    uint64_t other_actions;
} lg = {.conns = 8, .connect_batch = LG_CONNECT_BATCH, .duration = 5, .keys = 1000, .context = "", .rcpt_domain = "example.net", .warmup = 0.5,
        .server_cpu_start = -1, .server_cpu_end = -1};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uv_stream_t *conn_stream(lg_conn_t *c) { return (uv_stream_t *)&c->h; }

/* The first few problems are described; the counts tell the rest. */
#define REPORT(c, fmt, ...)                                                    \
    do {                                                                       \
        if (lg.errors + lg.dropped <= LG_MAX_ERROR_MESSAGES)                   \
            fprintf(stderr, "loadgen: connection %u: " fmt "\n", (c)->index,   \
                    __VA_ARGS__);                                              \
    } while (0)

/* utime + stime of /proc/<pid>/stat in clock ticks, or -1 when unreadable.
 * With sid > 0: only when the process is in session sid, and with the
 * times of its waited-for children (cutime + cstime), so that the work of a
 * preforking server's children that exited during the run is counted. */
static long long proc_ticks(const char *pid, long sid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%s/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: skip to the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long long utime, stime;
    long long cutime, cstime;
    long session;
    /* fields 3..17: state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime cutime cstime */
    if (sscanf(p + 1, " %*c %*d %*d %ld %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld",
               &session, &utime, &stime, &cutime, &cstime) != 5)
        return -1;
    if (sid <= 0)
        return (long long)(utime + stime);
    if (session != sid)
        return -1;
    return (long long)(utime + stime) + cutime + cstime;
}

/* CPU seconds of the server (--server-pid), or of every process of its
 * session (--server-session); -1 when unreadable. */
static double server_cpu_seconds(void)
{
    long long ticks = 0;
    if (lg.server_sid > 0) {
        DIR *d = opendir("/proc");
        if (!d)
            return -1;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] < '1' || e->d_name[0] > '9')
                continue;
            long long t = proc_ticks(e->d_name, lg.server_sid);
            if (t > 0)
                ticks += t;
        }
        closedir(d);
    } else {
        char pid[24];
        snprintf(pid, sizeof pid, "%ld", lg.server_pid);
        ticks = proc_ticks(pid, 0);
        if (ticks < 0)
            return -1;
    }
    return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

/* ---- request building -------------------------------------------------- */

typedef struct {
    char *p, *end;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if ((size_t)(o->end - o->p) < n) {
        /* LG_REQ_CAP covers the longest request; reaching here is a bug. */
        fprintf(stderr, "loadgen: request buffer overflow\n");
        abort();
    }
    memcpy(o->p, s, n);
    o->p += n;
}

#define PUT_LIT(o, s) put((o), s, sizeof(s) - 1)

/* Inlined with a constant base, so the division becomes a multiplication:
 * a variable base made this a tenth of the generator's CPU time. */
static inline __attribute__((always_inline)) void put_uint(out_t *o, uint64_t v, unsigned base)
{
    char tmp[24];
    char *t = tmp + sizeof tmp;
    do {
        *--t = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    put(o, t, (size_t)(tmp + sizeof tmp - t));
}

/* Documentation addresses only (RFC 5737 and RFC 3849): the TEST-NETs give
 * 759 IPv4 clients, larger key spaces continue in 2001:db8::/32, as Postfix
 * prints IPv6 clients.  192.0.2.254 is left for server_address. */
static void put_client_address(out_t *o, uint64_t k)
{
    static const char *const net[3] = {"192.0.2.", "198.51.100.", "203.0.113."};
    if (k < 3 * 253) {
        put(o, net[k / 253], strlen(net[k / 253]));
        put_uint(o, k % 253 + 1, 10);
        return;
    }
    PUT_LIT(o, "2001:db8::");
    if (k >> 16) {
        put_uint(o, (k >> 16) & 0xffff, 16);
        PUT_LIT(o, ":");
    }
    put_uint(o, k & 0xffff, 16);
}

static uint64_t next_key(void)
{
    /* splitmix64: fast, and fine for picking keys. */
    uint64_t z = (lg.rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return lg.first_key + (z ^ (z >> 31)) % lg.keys;
}

/* A Postfix 3.7 smtpd_access_policy request at the RCPT stage of an
 * authenticated submission, attributes in the order Postfix sends them. */
static size_t build_request(lg_conn_t *c)
{
    out_t o = {c->req, c->req + sizeof c->req};
    uint64_t k = next_key();
    uint64_t seq = ++lg.instance_seq;

    PUT_LIT(&o, "request=smtpd_access_policy\n"
                "protocol_state=RCPT\n"
                "protocol_name=ESMTP\n"
                "helo_name=client");
    put_uint(&o, k, 10);
    PUT_LIT(&o, ".example.org\n"
                "queue_id=\n"
                "sender=");
    if (lg.fixed_sender) {
        put(&o, lg.fixed_sender, strlen(lg.fixed_sender));
    } else {
        PUT_LIT(&o, "user");
        put_uint(&o, k, 10);
        PUT_LIT(&o, "@example.org");
    }
    PUT_LIT(&o, "\nrecipient=rcpt");
    put_uint(&o, k, 10);
    PUT_LIT(&o, "@");
    put(&o, lg.rcpt_domain, lg.rcpt_domain_len);
    PUT_LIT(&o, "\n"
                "recipient_count=0\n"
                "client_address=");
    if (lg.fixed_client)
        put(&o, lg.fixed_client, strlen(lg.fixed_client));
    else
        put_client_address(&o, k);
    PUT_LIT(&o, "\nclient_name=client");
    put_uint(&o, k, 10);
    PUT_LIT(&o, ".example.org\nreverse_client_name=client");
    put_uint(&o, k, 10);
    /* Unique per request: pid.connection.sequence, hex like Postfix's. */
    PUT_LIT(&o, ".example.org\ninstance=");
    put_uint(&o, lg.pid, 16);
    PUT_LIT(&o, ".");
    put_uint(&o, c->index, 16);
    PUT_LIT(&o, ".");
    put_uint(&o, seq, 16);
    PUT_LIT(&o, ".0\n"
                "sasl_method=PLAIN\n"
                "sasl_username=");
    if (lg.fixed_sasl) {
        put(&o, lg.fixed_sasl, strlen(lg.fixed_sasl));
    } else {
        PUT_LIT(&o, "user");
        put_uint(&o, k, 10);
        PUT_LIT(&o, "@example.org");
    }
    PUT_LIT(&o, "\n"
                "sasl_sender=\n"
                "size=0\n"
                "ccert_subject=\n"
                "ccert_issuer=\n"
                "ccert_fingerprint=\n"
                "encryption_protocol=TLSv1.3\n"
                "encryption_cipher=TLS_AES_256_GCM_SHA384\n"
                "encryption_keysize=256\n"
                "etrn_domain=\n"
                "stress=\n"
                "ccert_pubkey_fingerprint=\n"
                "client_port=");
    put_uint(&o, 1024 + seq % 64511, 10);
    PUT_LIT(&o, "\npolicy_context=");
    put(&o, lg.context, lg.context_len);
    PUT_LIT(&o, "\nserver_address=192.0.2.254\n"
                "server_port=587\n"
                "\n");
    return (size_t)(o.p - c->req);
}

/* ---- connections ------------------------------------------------------- */

static void finish(void);
static void end_measure(void);
static void start_connects(void);

static void conn_close(lg_conn_t *c)
{
    if (c->state == CONN_CLOSED || c->state == CONN_IDLE)
        return;
    if (c->state == CONN_OPEN)
        lg.open--;
    c->state = CONN_CLOSED;
    if (c->in_flight) {
        c->in_flight = 0;
        lg.inflight--;
    }
    uv_close((uv_handle_t *)&c->h, NULL);
    if (c->priming) {
        c->priming = 0;
        lg.priming--;
        if (lg.phase == PHASE_CONNECT)
            start_connects();
        return;
    }

    /* Nothing left to wait for: end the run instead of idling to -d. */
    if (lg.open == 0 && (lg.phase == PHASE_WARMUP || lg.phase == PHASE_MEASURE))
        end_measure();
    else if (lg.phase == PHASE_DRAIN && lg.inflight == 0)
        finish();
}

static void conn_error(lg_conn_t *c)
{
    lg.errors++;
    conn_close(c);
}

/* The server closed the connection or reset it. */
static void conn_lost(lg_conn_t *c, const char *how)
{
    /* After the run, a server may close idle connections (outpostd on
     * SIGTERM): only a lost request or a loss during the run is a drop. */
    if (c->in_flight || lg.phase == PHASE_WARMUP || lg.phase == PHASE_MEASURE) {
        lg.dropped++;
        REPORT(c, "dropped by the server (%s)%s", how,
               c->in_flight ? " with a request in flight" : "");
    }
    conn_close(c);
}

/* A failed read or write: the server going away is a drop, anything else an
 * error. */
static void conn_io_failed(lg_conn_t *c, const char *op, ssize_t err)
{
    if (err == UV_EOF || err == UV_ECONNRESET || err == UV_EPIPE) {
        conn_lost(c, err == UV_EOF ? "end of stream" : uv_strerror((int)err));
    } else {
        REPORT(c, "%s: %s", op, uv_strerror((int)err));
        conn_error(c);
    }
}

static void send_request(lg_conn_t *c);

static void on_write(uv_write_t *req, int status)
{
    lg_conn_t *c = req->data;
    c->writing = 0;
    if (c->state != CONN_OPEN)
        return;
    if (status < 0) {
        conn_io_failed(c, "write", status);
        return;
    }
    if (c->send_pending) {
        c->send_pending = 0;
        send_request(c);
    }
}

static void send_request(lg_conn_t *c)
{
    if (c->writing) {
        /* write_req still belongs to libuv; the reply can beat its callback. */
        c->send_pending = 1;
        return;
    }
    c->req_len = build_request(c);
    c->in_flight = 1;
    lg.inflight++;
    c->sent_ns = now_ns();

    uv_buf_t buf = uv_buf_init(c->req, (unsigned)c->req_len);
    int n = uv_try_write(conn_stream(c), &buf, 1);
    if (n == (int)c->req_len)
        return;
    if (n < 0 && n != UV_EAGAIN) {
        conn_io_failed(c, "write", n);
        return;
    }
    if (n < 0)
        n = 0;
    buf = uv_buf_init(c->req + n, (unsigned)(c->req_len - (size_t)n));
    c->writing = 1;
    int rc = uv_write(&c->write_req, conn_stream(c), &buf, 1, on_write);
    if (rc < 0) {
        c->writing = 0;
        conn_io_failed(c, "write", rc);
    }
}

static void count_action(const char *text, size_t len)
{
    /* Most replies repeat the previous action: start the search there. */
    lg_action_t *a;
    for (size_t j = 0; j < lg.nactions; j++) {
        size_t i = (lg.last_action + j) % lg.nactions;
        a = &lg.actions[i];
        if (a->len == len && memcmp(a->text, text, len) == 0) {
            a->count++;
            lg.last_action = i;
            return;
        }
    }
    if (lg.nactions == LG_MAX_ACTIONS) {
        lg.other_actions++;
        return;
    }
    /* At most LG_MAX_ACTIONS allocations in a run, none in the steady state. */
    a = &lg.actions[lg.nactions];
    a->text = op_strndup(text, len);
    a->len = len;
    a->count = 1;
    lg.last_action = lg.nactions++;
}

/* Checks in[0..len) against "action=TEXT\n\n" with TEXT non-empty and free
 * of control bytes.  Returns 1 when complete (TEXT in *text), 0 when more
 * bytes are needed, -1 with *why when the reply is malformed. */
static int parse_reply(const char *in, size_t len, const char **text,
                       size_t *text_len, const char **why)
{
    static const char prefix[] = "action=";
    const size_t plen = sizeof prefix - 1;
    if (memcmp(in, prefix, len < plen ? len : plen) != 0) {
        *why = "reply does not start with \"action=\"";
        return -1;
    }
    if (len < plen)
        return 0;
    const char *t = in + plen;
    const char *nl = memchr(t, '\n', len - plen);
    const char *scan_end = nl ? nl : in + len;
    for (const char *p = t; p < scan_end; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *why = "control byte in the action text";
            return -1;
        }
    }
    if (!nl) {
        if (len == LG_REPLY_CAP) {
            *why = "reply longer than the buffer";
            return -1;
        }
        return 0;
    }
    if (nl == t) {
        *why = "empty action";
        return -1;
    }
    if ((size_t)(nl + 1 - in) == len)
        return 0;
    if (nl[1] != '\n') {
        *why = "more than one line in the reply";
        return -1;
    }
    if ((size_t)(nl + 2 - in) != len) {
        *why = "bytes after the reply";
        return -1;
    }
    *text = t;
    *text_len = (size_t)(nl - t);
    return 1;
}

/* The start of a bad reply, control bytes escaped, for the message. */
static const char *excerpt(const char *s, size_t len)
{
    static char out[4 * 80 + 1];
    char *o = out;
    for (size_t i = 0; i < len && i < 80; i++) {
        unsigned char b = (unsigned char)s[i];
        if (b == '\n')
            o += sprintf(o, "\\n");
        else if (b < 0x20 || b >= 0x7f || b == '\\' || b == '"')
            o += sprintf(o, "\\x%02x", b);
        else
            *o++ = (char)b;
    }
    *o = '\0';
    return out;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    lg_conn_t *c = h->data;
    *buf = uv_buf_init(c->in + c->in_len, (unsigned)(sizeof c->in - c->in_len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    lg_conn_t *c = s->data;
    if (nread == 0 || c->state != CONN_OPEN)
        return;
    if (nread < 0) {
        conn_io_failed(c, "read", nread);
        return;
    }
    c->in_len += (size_t)nread;
    if (!c->in_flight) {
        REPORT(c, "%zu bytes with no request outstanding", c->in_len);
        conn_error(c);
        return;
    }

    const char *text = NULL, *why = NULL;
    size_t text_len = 0;
    int r = parse_reply(c->in, c->in_len, &text, &text_len, &why);
    if (r == 0)
        return;
    if (r < 0) {
        REPORT(c, "%s: \"%s\"", why, excerpt(c->in, c->in_len));
        conn_error(c);
        return;
    }

    uint64_t done = now_ns();
    c->in_flight = 0;
    lg.inflight--;
    c->in_len = 0;
    if (lg.phase == PHASE_MEASURE) {
        uint64_t latency = done - c->sent_ns;
        hist[hist_index(latency)]++;
        hist_count++;
        if (latency > hist_max)
            hist_max = latency;
        count_action(text, text_len);
        lg.requests++;
        if (lg.max_requests && lg.requests >= lg.max_requests)
            end_measure();
    }
    if (c->priming) { /* --ramp: this connection is up; open the next */
        c->priming = 0;
        lg.priming--;
        if (lg.phase == PHASE_CONNECT)
            start_connects();
        else if (lg.phase == PHASE_WARMUP || lg.phase == PHASE_MEASURE)
            send_request(c);
        return;
    }
    if (lg.phase == PHASE_WARMUP || lg.phase == PHASE_MEASURE)
        send_request(c);
    else if (lg.phase == PHASE_DRAIN && lg.inflight == 0)
        finish();
}

/* ---- phases ------------------------------------------------------------ */

static void on_phase_timer(uv_timer_t *t);

static void start_measure(void)
{
    lg.phase = PHASE_MEASURE;
    lg.measure_start_ns = now_ns();
    if (lg.server_pid || lg.server_sid)
        lg.server_cpu_start = server_cpu_seconds();
    uv_timer_start(&lg.duration_timer, on_phase_timer,
                   (uint64_t)llround(lg.duration * 1000.0), 0);
}

static void on_phase_timer(uv_timer_t *t)
{
    if (t == &lg.warmup_timer && lg.phase == PHASE_WARMUP)
        start_measure();
    else if (t == &lg.duration_timer)
        end_measure();
}

static void start_run(void)
{
    uv_timer_stop(&lg.connect_timer);
    if (!lg.quiet)
        fprintf(stderr, "loadgen: %u of %u connections open, %.1fs warmup, %.1fs run\n",
                lg.open, lg.conns, lg.warmup, lg.duration);
    if (lg.open == 0) {
        lg.measure_start_ns = lg.measure_end_ns = now_ns();
        finish();
        return;
    }
    if (lg.warmup > 0) {
        lg.phase = PHASE_WARMUP;
        uv_timer_start(&lg.warmup_timer, on_phase_timer,
                       (uint64_t)llround(lg.warmup * 1000.0), 0);
    } else {
        start_measure();
    }
    for (unsigned i = 0; i < lg.conns && lg.phase <= PHASE_MEASURE; i++)
        if (lg.conn[i].state == CONN_OPEN)
            send_request(&lg.conn[i]);
}

static void on_drain_timer(uv_timer_t *t)
{
    (void)t;
    for (unsigned i = 0; i < lg.conns; i++) {
        lg_conn_t *c = &lg.conn[i];
        if (c->state == CONN_OPEN && c->in_flight) {
            lg.errors++;
            REPORT(c, "no reply within %d ms after the end of the run",
                   LG_DRAIN_TIMEOUT_MS);
        }
    }
    finish();
}

/* The measured window ends; replies still in flight are awaited (a server
 * must not see a connection torn down mid-request) and checked, but not
 * counted, so requests == -n when -n is the bound. */
static void end_measure(void)
{
    if (lg.phase == PHASE_WARMUP) /* every connection died during warmup */
        lg.measure_start_ns = now_ns();
    else if (lg.phase != PHASE_MEASURE)
        return;
    lg.phase = PHASE_DRAIN;
    lg.measure_end_ns = now_ns();
    if (lg.server_pid || lg.server_sid)
        lg.server_cpu_end = server_cpu_seconds();
    uv_timer_stop(&lg.warmup_timer);
    uv_timer_stop(&lg.duration_timer);
    if (lg.inflight == 0)
        finish();
    else
        uv_timer_start(&lg.drain_timer, on_drain_timer, LG_DRAIN_TIMEOUT_MS, 0);
}

static void finish(void)
{
    if (lg.phase == PHASE_DONE)
        return;
    lg.phase = PHASE_DONE;
    for (unsigned i = 0; i < lg.conns; i++)
        conn_close(&lg.conn[i]);
    uv_close((uv_handle_t *)&lg.connect_timer, NULL);
    uv_close((uv_handle_t *)&lg.warmup_timer, NULL);
    uv_close((uv_handle_t *)&lg.duration_timer, NULL);
    uv_close((uv_handle_t *)&lg.drain_timer, NULL);
}

static void start_connects(void);

static void connect_failed(lg_conn_t *c, const char *why)
{
    lg.errors++;
    REPORT(c, "connect: %s", why);
    c->state = CONN_CLOSED;
    uv_close((uv_handle_t *)&c->h, NULL);
}

static void on_connect(uv_connect_t *req, int status)
{
    lg_conn_t *c = req->data;
    if (c->state != CONN_CONNECTING) /* closed by the connect timeout */
        return;
    lg.connecting--;
    if (status < 0) {
        connect_failed(c, uv_strerror(status));
    } else {
        c->state = CONN_OPEN;
        lg.open++;
        if (lg.tcp_spec)
            uv_tcp_nodelay(&c->h.tcp, 1); /* one small request per round trip */
        int rc = uv_read_start(conn_stream(c), on_alloc, on_read);
        if (rc < 0) {
            REPORT(c, "read: %s", uv_strerror(rc));
            conn_error(c);
        } else if (lg.ramp) {
            /* up once the server has accepted it and answered */
            c->priming = 1;
            lg.priming++;
            send_request(c);
            return;
        }
    }
    start_connects();
}

static void start_connects(void)
{
    while (lg.connecting + lg.priming < lg.connect_batch && lg.next_connect < lg.conns) {
        lg_conn_t *c = &lg.conn[lg.next_connect++];
        c->connect_req.data = c;
        c->write_req.data = c;
        c->state = CONN_CONNECTING;
        lg.connecting++;
        if (lg.unix_path) {
            uv_pipe_init(&lg.loop, &c->h.pipe, 0);
            c->h.pipe.data = c;
            uv_pipe_connect(&c->connect_req, &c->h.pipe, lg.unix_path, on_connect);
        } else {
            uv_tcp_init(&lg.loop, &c->h.tcp);
            c->h.tcp.data = c;
            int rc = uv_tcp_connect(&c->connect_req, &c->h.tcp,
                                    (const struct sockaddr *)&lg.tcp_addr, on_connect);
            if (rc < 0) {
                connect_failed(c, uv_strerror(rc));
                lg.connecting--;
            }
        }
    }
    if (lg.connecting == 0 && lg.priming == 0 && lg.next_connect == lg.conns &&
        lg.phase == PHASE_CONNECT)
        start_run();
}

static void on_connect_timer(uv_timer_t *t)
{
    (void)t;
    for (unsigned i = 0; i < lg.conns; i++) {
        lg_conn_t *c = &lg.conn[i];
        if (c->state == CONN_CONNECTING) {
            connect_failed(c, "no answer within the connect timeout");
        } else if (c->state == CONN_OPEN && c->priming) {
            REPORT(c, "%s", "no reply to the first request within the connect timeout");
            lg.phase = PHASE_DONE; /* conn_close must not open more */
            conn_error(c);
            lg.phase = PHASE_CONNECT;
        } else if (c->state == CONN_IDLE) { /* never attempted */
            c->state = CONN_CLOSED;
            lg.errors++;
        }
    }
    lg.connecting = 0;
    lg.next_connect = lg.conns;
    start_run();
}

/* ---- report ------------------------------------------------------------ */

static int by_count_desc(const void *a, const void *b)
{
    const lg_action_t *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->text, y->text);
}

static double us(uint64_t ns) { return floor((double)ns / 1000.0 + 0.5); }

static void report(void)
{
    if (lg.server_pid || lg.server_sid) {
        double cpu = lg.server_cpu_start >= 0 && lg.server_cpu_end >= 0
                         ? lg.server_cpu_end - lg.server_cpu_start
                         : -1;
        printf("server_cpu_s=%.3f\n", cpu);
    }
    qsort(lg.actions, lg.nactions, sizeof lg.actions[0], by_count_desc);
    for (size_t i = 0; i < lg.nactions; i++)
        printf("action %" PRIu64 " %s\n", lg.actions[i].count, lg.actions[i].text);
    if (lg.other_actions)
        printf("action %" PRIu64 " (other)\n", lg.other_actions);

    double seconds = (double)(lg.measure_end_ns - lg.measure_start_ns) / 1e9;
    double rps = seconds > 0 ? (double)lg.requests / seconds : 0;
    printf("requests=%" PRIu64 " errors=%" PRIu64 " dropped=%" PRIu64
           " seconds=%.3f rps=%.0f p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f\n",
           lg.requests, lg.errors, lg.dropped, seconds, rps,
           us(hist_quantile(0.50)), us(hist_quantile(0.90)),
           us(hist_quantile(0.99)), us(hist_max));
    fflush(stdout);
}

/* ---- options ----------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
        "usage: bench-loadgen (--unix PATH | --tcp HOST:PORT) [options]\n"
        "Closed-loop load for a Postfix policy server: each connection sends one\n"
        "RCPT-stage smtpd_access_policy request and waits for its reply.\n"
        "\n"
        "  --unix PATH       connect to a unix socket\n"
        "  --tcp HOST:PORT   connect over TCP; HOST is IPv4, [IPv6] or a name\n"
        "  -c N              concurrent persistent connections (default 8)\n"
        "  -d SECONDS        duration of the measured run (default 5)\n"
        "  -n COUNT          stop after COUNT measured requests (default: no limit;\n"
        "                    -d still bounds the run)\n"
        "  --keys N          key space: user<k>, client address and rcpt<k> with k\n"
        "                    from a fixed-seed PRNG over [0,N) (default 1000)\n"
        "  --context NAME    policy_context of every request (default empty)\n"
        "  --recipient-domain DOMAIN\n"
        "                    recipients are rcpt<k>@DOMAIN (default example.net)\n"
        "  --warmup SECONDS  load before the measured run, not counted (default 0.5)\n"
        "  --server-pid PID  also print the server's CPU seconds during the run\n"
        "                    (server_cpu_s=, from /proc/PID/stat)\n"
        "  --server-session SID\n"
        "                    the same for every process of session SID, with the\n"
        "                    children they waited for (a preforking server)\n"
        "  --first-key K     keys are K + [0,N) instead of [0,N) (default 0)\n"
        "  --connect-batch N connects in flight at once (default 64)\n"
        "  --ramp            a connection counts as open once the server has answered\n"
        "                    one unmeasured request on it; with --connect-batch 1 the\n"
        "                    connections open one after the other (a server with a\n"
        "                    short listen backlog, e.g. policyd-rate-limit's 5)\n"
        "  --sender ADDR, --sasl-username NAME, --client-address IP\n"
        "                    that value in every request instead of one per key\n"
        "  --quiet           no progress on stderr\n"
        "  -h, --help        this text\n"
        "\n"
        "Output, last lines: \"action COUNT TEXT\" per distinct action (most frequent\n"
        "first, at most 50; the rest as \"(other)\"), then\n"
        "requests=N errors=N dropped=N seconds=S rps=R p50_us=N p90_us=N p99_us=N max_us=N\n"
        "Exit status 0 when errors and dropped are both 0, else 1; 2 on bad usage.\n");
}

static void die_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "loadgen: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(bench-loadgen --help for usage)\n");
    exit(2);
}

static double parse_seconds(const char *s, const char *what, double min)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= min) || v > 86400)
        die_usage(what, s);
    return v;
}

static uint64_t parse_count(const char *s, const char *what, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    if (*s == '-')
        die_usage(what, s);
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        die_usage(what, s);
    return v;
}

static void resolve_tcp(const char *spec)
{
    char host[256];
    snprintf(host, sizeof host, "%s", spec);
    char *colon = strrchr(host, ':'), *name = host;
    if (colon && host[0] == '[' && colon[-1] == ']') { /* [IPv6]:PORT */
        name = host + 1;
        colon[-1] = '\0';
    } else if (colon && memchr(host, ':', (size_t)(colon - host))) {
        colon = NULL; /* an IPv6 literal needs its brackets */
    }
    if (colon)
        *colon = '\0';
    if (!colon || !*name || !colon[1])
        die_usage("bad --tcp %s: want HOST:PORT or [IPv6]:PORT", spec);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV}, *res;
    int rc = getaddrinfo(name, colon + 1, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "loadgen: --tcp %s: %s\n", spec, gai_strerror(rc));
        exit(2);
    }
    memcpy(&lg.tcp_addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
}

static void parse_options(int argc, char **argv)
{
    enum { OPT_UNIX = 256, OPT_TCP, OPT_KEYS, OPT_CONTEXT, OPT_RCPT_DOMAIN, OPT_WARMUP, OPT_QUIET, OPT_PID, OPT_SID, OPT_FIRST_KEY, OPT_SENDER, OPT_SASL, OPT_CLIENT, OPT_CONNECT_BATCH, OPT_RAMP };
    static const struct option longopts[] = {
        {"unix", required_argument, NULL, OPT_UNIX},
        {"tcp", required_argument, NULL, OPT_TCP},
        {"keys", required_argument, NULL, OPT_KEYS},
        {"context", required_argument, NULL, OPT_CONTEXT},
        {"recipient-domain", required_argument, NULL, OPT_RCPT_DOMAIN},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"server-pid", required_argument, NULL, OPT_PID},
        {"server-session", required_argument, NULL, OPT_SID},
        {"first-key", required_argument, NULL, OPT_FIRST_KEY},
        {"sender", required_argument, NULL, OPT_SENDER},
        {"connect-batch", required_argument, NULL, OPT_CONNECT_BATCH},
        {"ramp", no_argument, NULL, OPT_RAMP},
        {"sasl-username", required_argument, NULL, OPT_SASL},
        {"client-address", required_argument, NULL, OPT_CLIENT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "c:d:n:h", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_UNIX: lg.unix_path = optarg; break;
        case OPT_TCP: lg.tcp_spec = optarg; break;
        case 'c': lg.conns = (unsigned)parse_count(optarg, "bad -c %s: want 1..10000", 1, LG_MAX_CONNS); break;
        case 'd': lg.duration = parse_seconds(optarg, "bad -d %s: want seconds, > 0", 0.001); break;
        case 'n': lg.max_requests = parse_count(optarg, "bad -n %s: want a count >= 1", 1, UINT64_MAX); break;
        case OPT_KEYS: lg.keys = parse_count(optarg, "bad --keys %s: want 1..1000000000", 1, 1000000000); break;
        case OPT_CONTEXT: lg.context = optarg; break;
        case OPT_RCPT_DOMAIN: lg.rcpt_domain = optarg; break;
        case OPT_WARMUP: lg.warmup = parse_seconds(optarg, "bad --warmup %s: want seconds, >= 0", 0); break;
        case OPT_QUIET: lg.quiet = 1; break;
        case OPT_SID: lg.server_sid = (long)parse_count(optarg, "bad --server-session %s", 1, 4194304); break;
        case OPT_FIRST_KEY: lg.first_key = parse_count(optarg, "bad --first-key %s: want 0..1000000000", 0, 1000000000); break;
        case OPT_SENDER: lg.fixed_sender = optarg; break;
        case OPT_RAMP: lg.ramp = 1; break;
        case OPT_CONNECT_BATCH:
            lg.connect_batch = (unsigned)parse_count(optarg, "bad --connect-batch %s: want 1..10000", 1, LG_MAX_CONNS);
            break;
        case OPT_SASL: lg.fixed_sasl = optarg; break;
        case OPT_CLIENT: lg.fixed_client = optarg; break;
        case OPT_PID: lg.server_pid = (long)parse_count(optarg, "bad --server-pid %s", 1, 4194304); break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind < argc)
        die_usage("unexpected argument %s", argv[optind]);
    if (!lg.unix_path == !lg.tcp_spec)
        die_usage("%sgive exactly one of --unix PATH and --tcp HOST:PORT", "");
    if (lg.unix_path && strlen(lg.unix_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        die_usage("--unix %s: path too long for a unix socket", lg.unix_path);
    lg.context_len = strlen(lg.context);
    if (lg.context_len > LG_MAX_CONTEXT || strpbrk(lg.context, "\n\r"))
        die_usage("bad --context %s: at most 256 bytes, no line break", lg.context);
    const char *fixed[3] = {lg.fixed_sender, lg.fixed_sasl, lg.fixed_client};
    for (int i = 0; i < 3; i++)
        if (fixed[i] && (strlen(fixed[i]) > LG_MAX_FIXED || strpbrk(fixed[i], "\n\r")))
            die_usage("bad value %s: at most 253 bytes, no line break", fixed[i]);
    lg.rcpt_domain_len = strlen(lg.rcpt_domain);
    if (lg.rcpt_domain_len == 0 || lg.rcpt_domain_len > LG_MAX_RCPT_DOMAIN ||
        strpbrk(lg.rcpt_domain, " \t\n\r@<>"))
        die_usage("bad --recipient-domain %s: a domain name, at most 253 bytes", lg.rcpt_domain);
    if (lg.tcp_spec)
        resolve_tcp(lg.tcp_spec);
}

int main(int argc, char **argv)
{
    parse_options(argc, argv);
    signal(SIGPIPE, SIG_IGN); /* a closing server shows as EPIPE, counted */

    lg.rng = LG_SEED;
    lg.pid = (unsigned)getpid();
    lg.conn = op_calloc(lg.conns, sizeof *lg.conn);
    for (unsigned i = 0; i < lg.conns; i++)
        lg.conn[i].index = i;

    if (uv_loop_init(&lg.loop) != 0) {
        fprintf(stderr, "loadgen: uv_loop_init failed\n");
        return 2;
    }
    uv_timer_init(&lg.loop, &lg.connect_timer);
    uv_timer_init(&lg.loop, &lg.warmup_timer);
    uv_timer_init(&lg.loop, &lg.duration_timer);
    uv_timer_init(&lg.loop, &lg.drain_timer);

    /* All connections open before the clock starts: connect cost is not
     * request latency. */
    lg.phase = PHASE_CONNECT;
    uv_timer_start(&lg.connect_timer, on_connect_timer, LG_CONNECT_TIMEOUT_MS, 0);
    start_connects();

    uv_run(&lg.loop, UV_RUN_DEFAULT);
    uv_loop_close(&lg.loop);

    report();
    for (size_t i = 0; i < lg.nactions; i++)
        free(lg.actions[i].text);
    free(lg.conn);
    return lg.errors == 0 && lg.dropped == 0 ? 0 : 1;
}
