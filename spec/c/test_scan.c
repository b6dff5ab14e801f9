/* The content scanners (engine/lookup/scan.c, scan_codec.c): the codecs
 * table-driven, the clients against the harness's real clamd and rspamd
 * (spec/harness/svc_scan.sh), and a listener of this test for what they
 * cannot be made to do: never answer, answer garbage. */
#include "ctest.h"
#include "ctest_loop.h"
#include "lookup/scan.h"

#include <stdlib.h>

/* ---- codecs ----------------------------------------------------------- */

CTEST(clamd_answers)
{
    static const struct {
        const char *in;
        op_clamd_status_t status;
        const char *detail;
        int rc;
    } cases[] = {
        {"stream: OK", OP_CLAMD_CLEAN, "", 0},
        {"stream: Outpost.Test.Marker.UNOFFICIAL FOUND", OP_CLAMD_INFECTED,
         "Outpost.Test.Marker.UNOFFICIAL", 0},
        {"1: stream: Eicar-Test-Signature FOUND", OP_CLAMD_INFECTED, "Eicar-Test-Signature", 0},
        {"INSTREAM size limit exceeded. ERROR", OP_CLAMD_ERROR, "INSTREAM size limit exceeded.", 0},
        {"stream: OK\r", OP_CLAMD_CLEAN, "", 0},
        {"OK", OP_CLAMD_ERROR, "malformed answer", -1},
        {"", OP_CLAMD_ERROR, "malformed answer", -1},
        {"stream:  FOUND", OP_CLAMD_ERROR, "malformed answer", -1},
        {"stream: two words FOUND", OP_CLAMD_ERROR, "malformed answer", -1},
        {"PONG", OP_CLAMD_ERROR, "malformed answer", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        op_clamd_result_t r;
        int rc = op_clamd_parse(cases[i].in, strlen(cases[i].in), &r);
        CHECK_INT(rc, cases[i].rc);
        CHECK_INT(r.status, cases[i].status);
        CHECK_STR(r.detail, cases[i].detail);
    }
    unsigned char h[4];
    op_clamd_chunk_header(0x01020304, h);
    CHECK_MEM((const char *)h, 4, "\x01\x02\x03\x04");
}

CTEST(http_responses)
{
    static const struct {
        const char *in;
        int eof;
        int rc;
        int status;
        const char *body;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", 0, OP_HTTP_DONE, 200, "{}"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n{}", 0, OP_HTTP_MORE, 0, NULL},
        {"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n{}", 1, OP_HTTP_ETRUNCATED, 0, NULL},
        {"HTTP/1.0 200 OK\r\n\r\n{\"a\":1}", 0, OP_HTTP_MORE, 0, NULL},
        {"HTTP/1.0 200 OK\r\n\r\n{\"a\":1}", 1, OP_HTTP_DONE, 200, "{\"a\":1}"},
        {"HTTP/1.1 200 OK\nContent-Length: 1\n\nx", 0, OP_HTTP_DONE, 200, "x"},
        {"HTTP/1.1 500 Internal\r\nContent-Length: 0\r\n\r\n", 0, OP_HTTP_DONE, 500, ""},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 0,
         OP_HTTP_EUNSUPPORTED, 0, NULL},
        {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 0,
         OP_HTTP_EMALFORMED, 0, NULL},
        {"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n{}", 0, OP_HTTP_EMALFORMED, 0, NULL},
        {"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n", 0, OP_HTTP_ETOOBIG, 0, NULL},
        {"HTTP/1.1 100 Continue\r\n\r\n", 0, OP_HTTP_EMALFORMED, 0, NULL},
        {"SMTP/1.1 200 OK\r\n", 0, OP_HTTP_EMALFORMED, 0, NULL},
        {"HTTP/1.1 2x0 OK\r\n\r\n", 0, OP_HTTP_EMALFORMED, 0, NULL},
        {"HTTP/1.1 200 OK\r\n folded\r\n\r\n", 0, OP_HTTP_EMALFORMED, 0, NULL},
        {"HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n", 0, OP_HTTP_EMALFORMED, 0, NULL},
        {"HTTP/1.1 200", 0, OP_HTTP_MORE, 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        op_http_response_t r;
        int rc = op_http_parse_response(cases[i].in, strlen(cases[i].in), cases[i].eof, 65536, &r);
        if (rc != cases[i].rc)
            fprintf(stderr, "  case %zu\n", i);
        CHECK_INT(rc, cases[i].rc);
        if (rc == OP_HTTP_DONE) {
            CHECK_INT(r.status, cases[i].status);
            CHECK_MEM(cases[i].in + r.body_off, r.body_len, cases[i].body);
        }
    }
    /* a header that never ends is refused at its bound */
    char *big = malloc(OP_HTTP_MAX_HEADER + 100);
    memcpy(big, "HTTP/1.1 200 OK\r\n", 17);
    memset(big + 17, 'a', OP_HTTP_MAX_HEADER + 83);
    op_http_response_t r;
    CHECK_INT(op_http_parse_response(big, OP_HTTP_MAX_HEADER + 100, 0, 65536, &r), OP_HTTP_ETOOBIG);
    free(big);
    CHECK(op_http_value_ok("127.0.0.1"));
    CHECK(!op_http_value_ok("a\r\nX-Injected: 1"));
}

CTEST(rspamd_json)
{
    const char *real =
        "{\"is_skipped\":true,\"score\":15.0,\"required_score\":15.0,\"action\":\"reject\","
        "\"symbols\":{\"GTUBE\":{\"name\":\"GTUBE\",\"score\":0.0,\"metric_score\":0.0}},"
        "\"messages\":{\"smtp_message\":\"Gtube pattern\"},\"message-id\":\"undef\","
        "\"time_real\":0.000715}";
    op_rspamd_result_t r;
    CHECK_INT(op_rspamd_parse(real, strlen(real), &r), 0);
    CHECK_STR(r.action, "reject");
    CHECK(r.score == 15.0 && r.required == 15.0 && r.skipped);
    CHECK_INT(r.nsymbols, 1);
    CHECK_STR(r.symbols[0].name, "GTUBE");

    const char *sorted = "{\"action\":\"add header\",\"score\":7.3,\"symbols\":{"
                         "\"A\":{\"score\":0.5,\"options\":[\"x\",{\"y\":[1,2,null]}]},"
                         "\"B\":{\"score\":3.5},\"C\":{\"score\":-1e0},\"D\":{}},"
                         "\"x\":[true,false,null,\"\\u00e9\\n\"]}";
    CHECK_INT(op_rspamd_parse(sorted, strlen(sorted), &r), 0);
    CHECK_STR(r.action, "add header");
    CHECK(r.score == 7.3 && !r.skipped);
    CHECK_INT(r.nsymbols, 4);
    CHECK_STR(r.symbols[0].name, "B");
    CHECK_STR(r.symbols[1].name, "A");
    CHECK_STR(r.symbols[3].name, "C");

    static const char *bad[] = {
        "", "[]", "{\"score\":1}", "{\"action\":\"reject\"}", "{\"action\":1,\"score\":1}",
        "{\"action\":\"x\",\"score\":1", "{\"action\":\"x\",\"score\":1}garbage",
        "{\"action\":\"x\",\"score\":1,\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}",
        "{\"action\":\"x\",\"score\":--1}", "{\"action\":\"a\x01\",\"score\":1}",
        "{\"action\":\"x\",\"score\":1,\"symbols\":{\"A\":{\"score\":\"high\"}}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (op_rspamd_parse(bad[i], strlen(bad[i]), &r) != -1)
            fprintf(stderr, "  bad %zu accepted\n", i);
        CHECK_INT(op_rspamd_parse(bad[i], strlen(bad[i]), &r), -1);
    }
    /* more symbols than kept: the highest scores stay */
    char many[8192];
    size_t n = (size_t)snprintf(many, sizeof many, "{\"action\":\"reject\",\"score\":1,\"symbols\":{");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "%s\"S%d\":{\"score\":%d}", i ? "," : "", i, i);
    n += (size_t)snprintf(many + n, sizeof many - n, "}}");
    CHECK_INT(op_rspamd_parse(many, n, &r), 0);
    CHECK_INT(r.nsymbols, OP_RSPAMD_MAX_SYMBOLS);
    CHECK_INT(r.symbols_seen, 100);
    CHECK_STR(r.symbols[0].name, "S99");
    CHECK(r.symbols[OP_RSPAMD_MAX_SYMBOLS - 1].score == 100 - OP_RSPAMD_MAX_SYMBOLS);
}

/* ---- the clients against the real scanners ---------------------------- */

static int clamd_port, rspamd_port;
static char clamd_sock[700], marker[128];
static uv_loop_t loop;

static void load_env(void)
{
    char dir[600];
    clamd_port = ctest_harness_port("CLAMD_PORT");
    rspamd_port = ctest_harness_port("RSPAMD_PORT");
    snprintf(clamd_sock, sizeof clamd_sock, "unix:%s/scan/clamd.sock", ctest_harness_env("HARNESS_DIR", dir, sizeof dir));
    snprintf(marker, sizeof marker, "OUTPOST-TEST-VIRUS-MARKER-7f3a9c");
}

static op_scanner_conf_t conf(const char *address)
{
    op_scanner_conf_t c = {.address = address, .connect_timeout = 1, .timeout = 5,
                           .max_connections = 4, .max_size = 10 << 20, .stream_max = 10 << 20,
                           .chunk_size = 4096, .max_reply = 262144};
    return c;
}

typedef struct {
    int done;
    op_scan_result_t res;
} got_t;

static void on_scan(op_scan_t *scan, const op_scan_result_t *res, void *data)
{
    (void)scan;
    got_t *g = data;
    g->done = 1;
    g->res = *res;
}

static got_t scan_msg(op_scanner_t *s, const char *msg, size_t len)
{
    got_t g = {0};
    op_scan_meta_t meta = {.ip = "127.0.0.1", .from = "alice@example.org"};
    const char *rcpts[] = {"bob@example.org"};
    meta.rcpts = rcpts;
    meta.nrcpts = 1;
    CHECK(op_scan_start(s, msg, len, &meta, on_scan, &g) != NULL);
    CHECK(!g.done); /* never from inside the start */
    ctest_run_until(&loop, &g.done, 10);
    CHECK(g.done);
    return g;
}

static op_scanner_t *new_scanner(op_scan_kind_t kind, op_scanner_conf_t c)
{
    char err[256];
    op_scanner_t *s = op_scanner_new(&loop, kind, &c, err, sizeof err);
    CHECK(s != NULL);
    return s;
}

static void finish(op_scanner_t *s)
{
    op_scanner_free(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
}

static const char clean_msg[] = "From: alice@example.org\r\nTo: bob@example.org\r\n"
                                "Subject: hello\r\n\r\nA clean message.\r\n";

CTEST(clamd_clean_and_infected_over_tcp_and_unix)
{
    load_env();
    uv_loop_init(&loop);
    char addr[64], virus[512];
    snprintf(addr, sizeof addr, "tcp:127.0.0.1:%d", clamd_port);
    int vlen = snprintf(virus, sizeof virus, "Subject: x\r\n\r\nhello %s there\r\n", marker);
    const char *addrs[] = {addr, clamd_sock};
    for (int i = 0; i < 2; i++) {
        op_scanner_t *s = new_scanner(OP_SCAN_CLAMD, conf(addrs[i]));
        got_t g = scan_msg(s, clean_msg, sizeof clean_msg - 1);
        CHECK(g.res.ok);
        CHECK_INT(g.res.clamd.status, OP_CLAMD_CLEAN);
        CHECK_INT(g.res.sent, sizeof clean_msg - 1);
        g = scan_msg(s, virus, (size_t)vlen);
        CHECK(g.res.ok);
        CHECK_INT(g.res.clamd.status, OP_CLAMD_INFECTED);
        CHECK_STR(g.res.clamd.detail, "Outpost.Test.Marker.UNOFFICIAL");
        op_scanner_free(s);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    CHECK_INT(uv_loop_close(&loop), 0);
}

CTEST(clamd_chunks_and_stream_max)
{
    load_env();
    uv_loop_init(&loop);
    char addr[64];
    snprintf(addr, sizeof addr, "tcp:127.0.0.1:%d", clamd_port);
    /* 300 KB in 4 KiB chunks, the marker at the end: found */
    size_t len = 300000;
    char *big = malloc(len);
    memset(big, 'a', len);
    for (size_t i = 80; i < len; i += 80)
        big[i] = '\n';
    memcpy(big + len - 100, marker, strlen(marker));
    op_scanner_t *s = new_scanner(OP_SCAN_CLAMD, conf(addr));
    got_t g = scan_msg(s, big, len);
    CHECK(g.res.ok);
    CHECK_INT(g.res.clamd.status, OP_CLAMD_INFECTED);
    CHECK(!g.res.truncated);
    op_scanner_free(s);
    /* stream_max below the marker: only the first 200 KB go, clean, truncated */
    op_scanner_conf_t c = conf(addr);
    c.stream_max = 200000;
    s = new_scanner(OP_SCAN_CLAMD, c);
    g = scan_msg(s, big, len);
    CHECK(g.res.ok);
    CHECK_INT(g.res.clamd.status, OP_CLAMD_CLEAN);
    CHECK(g.res.truncated);
    CHECK_INT(g.res.sent, 200000);
    free(big);
    finish(s);
}

CTEST(rspamd_clean_and_gtube)
{
    load_env();
    uv_loop_init(&loop);
    char addr[64];
    snprintf(addr, sizeof addr, "tcp:127.0.0.1:%d", rspamd_port);
    op_scanner_t *s = new_scanner(OP_SCAN_RSPAMD, conf(addr));
    got_t g = scan_msg(s, clean_msg, sizeof clean_msg - 1);
    CHECK(g.res.ok);
    if (!g.res.ok)
        fprintf(stderr, "  error: %s\n", g.res.error);
    CHECK(strcmp(g.res.rspamd.action, "reject") != 0);
    CHECK(g.res.rspamd.required == 15.0);
    CHECK(g.res.rspamd.nsymbols > 0);
    static const char gtube[] = "From: alice@example.org\r\nSubject: x\r\n\r\n"
                                "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n";
    g = scan_msg(s, gtube, sizeof gtube - 1);
    CHECK(g.res.ok);
    CHECK_STR(g.res.rspamd.action, "reject");
    CHECK_STR(g.res.rspamd.symbols[0].name, "GTUBE");
    finish(s);
}

/* ---- faults ------------------------------------------------------------ */

/* A listener of this test: answers each connection with `answer` (NULL:
 * never) after reading, then keeps the connection open or closes it. */
static uv_tcp_t fake;
static const char *fake_answer;
static int fake_close, fake_conns, fake_open, fake_port;

static void fake_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    (void)h;
    static char buf[65536];
    (void)n;
    *b = uv_buf_init(buf, sizeof buf);
}

static void fake_closed(uv_handle_t *h)
{
    fake_open--;
    free(h);
}

static void fake_written(uv_write_t *w, int status)
{
    (void)status;
    if (fake_close)
        uv_close((uv_handle_t *)w->handle, fake_closed);
    free(w);
}

static void fake_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    if (n < 0) {
        if (!uv_is_closing((uv_handle_t *)st))
            uv_close((uv_handle_t *)st, fake_closed);
        return;
    }
    if (fake_answer != NULL && st->data == NULL) {
        st->data = st;
        uv_write_t *w = malloc(sizeof *w);
        uv_buf_t out = uv_buf_init((char *)fake_answer, (unsigned)strlen(fake_answer));
        uv_write(w, st, &out, 1, fake_written);
    }
}

static void fake_conn(uv_stream_t *server, int status)
{
    (void)status;
    uv_tcp_t *c = malloc(sizeof *c);
    uv_tcp_init(&loop, c);
    c->data = NULL;
    uv_accept(server, (uv_stream_t *)c);
    fake_conns++;
    fake_open++;
    uv_read_start((uv_stream_t *)c, fake_alloc, fake_read);
}

static void fake_start(const char *answer, int close_after)
{
    fake_answer = answer;
    fake_close = close_after;
    fake_conns = 0;
    uv_tcp_init(&loop, &fake);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    CHECK_INT(uv_tcp_bind(&fake, (struct sockaddr *)&a, 0), 0);
    CHECK_INT(uv_listen((uv_stream_t *)&fake, 64, fake_conn), 0);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_getsockname(&fake, (struct sockaddr *)&ss, &len);
    fake_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void fake_close_all(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (h->type == UV_TCP && h != (uv_handle_t *)&fake && !uv_is_closing(h))
        uv_close(h, fake_closed);
}

static void fake_stop(void)
{
    uv_close((uv_handle_t *)&fake, NULL);
    uv_walk(&loop, fake_close_all, NULL);
}

CTEST(silent_scanner_times_out_and_garbage_is_an_error)
{
    uv_loop_init(&loop);
    fake_start(NULL, 0);
    char addr[64];
    snprintf(addr, sizeof addr, "tcp:127.0.0.1:%d", fake_port);
    op_scanner_conf_t c = conf(addr);
    c.timeout = 0.5;
    op_scanner_t *s = new_scanner(OP_SCAN_CLAMD, c);
    uint64_t t0 = uv_hrtime();
    got_t g = scan_msg(s, clean_msg, sizeof clean_msg - 1);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    CHECK(!g.res.ok);
    CHECK_STR(g.res.error, "clamd: timeout");
    CHECK(secs >= 0.45 && secs < 1.5);
    op_scanner_free(s);
    fake_stop();
    uv_run(&loop, UV_RUN_DEFAULT);

    static const char *garbage[] = {"stream: what is this\n", "\x01\x02\xff\n", "HTTP/1.1 200 OK\r\n\r\n"};
    for (int i = 0; i < 3; i++) {
        fake_start(garbage[i], 1);
        snprintf(addr, sizeof addr, "tcp:127.0.0.1:%d", fake_port);
        s = new_scanner(OP_SCAN_CLAMD, conf(addr));
        g = scan_msg(s, clean_msg, sizeof clean_msg - 1);
        CHECK(!g.res.ok);
        CHECK(strncmp(g.res.error, "clamd: ", 7) == 0);
        op_scanner_free(s);
        fake_stop();
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    static const char *http_garbage[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{oops",
        "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{}",
        "garbage garbage garbage\r\n\r\n",
    };
    static const char *why[] = {"rspamd: malformed answer", "rspamd: HTTP status 503",
                                "rspamd: unsupported transfer coding", "rspamd: answer cut short",
                                "rspamd: malformed HTTP answer"};
    for (int i = 0; i < 5; i++) {
        fake_start(http_garbage[i], 1);
        snprintf(addr, sizeof addr, "tcp:127.0.0.1:%d", fake_port);
        s = new_scanner(OP_SCAN_RSPAMD, conf(addr));
        g = scan_msg(s, clean_msg, sizeof clean_msg - 1);
        CHECK(!g.res.ok);
        CHECK_STR(g.res.error, why[i]);
        op_scanner_free(s);
        fake_stop();
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    CHECK_INT(uv_loop_close(&loop), 0);
}

CTEST(refused_and_missing_socket_are_errors)
{
    uv_loop_init(&loop);
    op_scanner_t *s = new_scanner(OP_SCAN_CLAMD, conf("tcp:127.0.0.1:1"));
    got_t g = scan_msg(s, clean_msg, sizeof clean_msg - 1);
    CHECK(!g.res.ok);
    CHECK_STR(g.res.error, "clamd: connect: ECONNREFUSED");
    op_scanner_free(s);
    s = new_scanner(OP_SCAN_RSPAMD, conf("unix:/nonexistent/rspamd.sock"));
    g = scan_msg(s, clean_msg, sizeof clean_msg - 1);
    CHECK(!g.res.ok);
    CHECK_STR(g.res.error, "rspamd: connect: ENOENT");
    char err[256];
    op_scanner_conf_t c = conf("tcp:localhost:3310");
    CHECK(op_scanner_new(&loop, OP_SCAN_CLAMD, &c, err, sizeof err) == NULL);
    CHECK(strstr(err, "tcp:IP:PORT") != NULL);
    finish(s);
}

CTEST(connection_cap_queues_and_cancel_leaves_the_line)
{
    uv_loop_init(&loop);
    fake_start(NULL, 0);
    char addr[64];
    snprintf(addr, sizeof addr, "tcp:127.0.0.1:%d", fake_port);
    op_scanner_conf_t c = conf(addr);
    c.max_connections = 2;
    c.timeout = 0.3;
    op_scanner_t *s = new_scanner(OP_SCAN_CLAMD, c);
    got_t g[5];
    op_scan_t *h[5];
    memset(g, 0, sizeof g);
    for (int i = 0; i < 5; i++)
        h[i] = op_scan_start(s, clean_msg, sizeof clean_msg - 1, NULL, on_scan, &g[i]);
    op_scanner_stats_t st;
    op_scanner_stats(s, &st);
    CHECK_INT(st.active, 2);
    CHECK_INT(st.waiting, 3);
    op_scan_cancel(h[3]); /* waiting: leaves the line */
    op_scan_cancel(h[0]); /* connecting: its callback never fires */
    ctest_run_until(&loop, &g[4].done, 5);
    CHECK(!g[0].done && !g[3].done);
    CHECK(g[1].done && g[2].done && g[4].done);
    CHECK_STR(g[4].res.error, "clamd: timeout");
    op_scanner_stats(s, &st);
    CHECK(st.active_max == 2);
    CHECK_INT(st.waiting, 0);
    op_scanner_free(s);
    fake_stop();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
}

CTEST(free_cancels_what_is_in_flight)
{
    uv_loop_init(&loop);
    fake_start(NULL, 0);
    char addr[64];
    snprintf(addr, sizeof addr, "tcp:127.0.0.1:%d", fake_port);
    op_scanner_conf_t c = conf(addr);
    c.max_connections = 1;
    op_scanner_t *s = new_scanner(OP_SCAN_RSPAMD, c);
    got_t g[2];
    memset(g, 0, sizeof g);
    op_scan_start(s, clean_msg, sizeof clean_msg - 1, NULL, on_scan, &g[0]);
    op_scan_start(s, clean_msg, sizeof clean_msg - 1, NULL, on_scan, &g[1]);
    uv_run(&loop, UV_RUN_NOWAIT);
    op_scanner_free(s);
    CHECK(g[0].done && g[1].done);
    CHECK_STR(g[0].res.error, "cancelled");
    CHECK_STR(g[1].res.error, "cancelled");
    fake_stop();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
}

int main(int argc, char **argv)
{
    return ctest_main(argc, argv);
}
