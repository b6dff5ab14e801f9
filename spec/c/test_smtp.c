/* The SMTP call-out service against the harness's Postfix
 * (spec/harness/svc_smtp.sh): verify.test on 127.0.0.1:SMTP_VERIFY_PORT,
 * and a listener on SMTP_SLOW_PORT that waits 3 s before its greeting. */
#include "ctest.h"
#include "ctest_loop.h"
#include "lookup/smtp.h"

static int verify_port, slow_port;
static uv_loop_t loop;
static op_smtp_t *smtp;

static void load_env(void)
{
    verify_port = ctest_harness_port("SMTP_VERIFY_PORT");
    slow_port = ctest_harness_port("SMTP_SLOW_PORT");
}

static op_smtp_conf_t conf = {.helo = "outpost-test.example.org", .connect_timeout = 1,
                              .step_timeout = 1, .positive_ttl = 3600, .negative_ttl = 0.3,
                              .tempfail_ttl = 0, .per_destination = 4, .cache_size = 1000};

static void start(void)
{
    load_env();
    uv_loop_init(&loop);
    char err[128];
    smtp = op_smtp_new(&loop, &conf, err, sizeof err);
}

static void stop(void)
{
    op_smtp_free(smtp);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
}

typedef struct {
    op_lookup_req_t req;
    int done;
    op_smtp_result_t res;
} got_t;

static int ndone;
static void on_result(op_lookup_req_t *req, const void *res)
{
    got_t *g = req->data;
    g->done = 1;
    g->res = *(const op_smtp_result_t *)res;
    ndone++;
}

/* Starts a verification into g: 1 when it started or was answered at once. */
static int verify_into(got_t *g, const char *address, int port)
{
    g->req.data = g;
    int rc = op_smtp_verify(smtp, &g->req, address, "127.0.0.1", port, on_result);
    if (rc == OP_LOOKUP_HIT) {
        g->done = 1;
        g->res = *(const op_smtp_result_t *)g->req.value;
        ndone++;
    }
    return rc >= 0;
}

static void run_until(const int *done, double secs)
{
    ctest_run_until(&loop, done, secs);
}

static got_t verify(const char *address, int port)
{
    got_t g = {0};
    CHECK(verify_into(&g, address, port));
    run_until(&g.done, 8);
    CHECK(g.done);
    return g;
}

CTEST(verdicts)
{
    start();
    got_t g = verify("alice@verify.test", verify_port);
    CHECK_INT(g.res.verdict, OP_SMTP_ACCEPTED);
    CHECK_INT(g.res.code, 250);
    g = verify("nobody@verify.test", verify_port);
    CHECK_INT(g.res.verdict, OP_SMTP_REJECTED);
    CHECK_INT(g.res.code, 550);
    CHECK(strstr(g.res.reply, "User unknown") != NULL);
    g = verify("busy@verify.test", verify_port);
    CHECK_INT(g.res.verdict, OP_SMTP_TEMPFAIL);
    CHECK_INT(g.res.code, 450);
    stop();
}

CTEST(step_and_connect_timeouts_are_tempfail)
{
    start();
    uint64_t t0 = uv_hrtime();
    got_t g = verify("alice@verify.test", slow_port); /* greeting after 3 s */
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    CHECK_INT(g.res.verdict, OP_SMTP_TEMPFAIL);
    CHECK_STR(g.res.reply, "timeout");
    CHECK(secs >= 0.9 && secs < 2.5);
    g = verify("slow@verify.test", verify_port); /* RCPT answered after 2 s */
    CHECK_INT(g.res.verdict, OP_SMTP_TEMPFAIL);
    CHECK_STR(g.res.reply, "timeout");
    g = verify("alice@verify.test", 1); /* nothing listens */
    CHECK_INT(g.res.verdict, OP_SMTP_TEMPFAIL);
    CHECK_STR(g.res.reply, "connect: ECONNREFUSED");
    stop();
}

CTEST(cache_ttls_per_verdict)
{
    start();
    op_smtp_result_t r;
    CHECK(!op_smtp_cached(smtp, "alice@verify.test", &r));
    verify("alice@verify.test", verify_port);
    verify("nobody@verify.test", verify_port);
    verify("busy@verify.test", verify_port);
    CHECK(op_smtp_cached(smtp, "ALICE@verify.TEST.", &r));
    CHECK_INT(r.verdict, OP_SMTP_ACCEPTED);
    CHECK(op_smtp_cached(smtp, "nobody@verify.test", &r));
    CHECK_INT(r.verdict, OP_SMTP_REJECTED);
    CHECK(!op_smtp_cached(smtp, "busy@verify.test", &r)); /* tempfail_ttl 0 */
    usleep(400 * 1000);
    uv_update_time(&loop);
    CHECK(!op_smtp_cached(smtp, "nobody@verify.test", &r)); /* negative_ttl 0.3 s */
    CHECK(op_smtp_cached(smtp, "alice@verify.test", &r));
    stop();
}

CTEST(one_session_per_address_and_a_line_per_destination)
{
    start();
    static got_t g[40];
    ndone = 0;
    char addr[64];
    for (int i = 0; i < 40; i++) {
        /* 10 addresses, each asked 4 times */
        snprintf(addr, sizeof addr, "user%d@verify.test", i % 10);
        CHECK(verify_into(&g[i], addr, verify_port));
    }
    int all = 0;
    for (int tries = 0; tries < 100 && !all; tries++) {
        run_until(&all, 0.1);
        all = ndone == 40;
    }
    CHECK_INT(ndone, 40);
    op_smtp_stats_t st;
    op_smtp_stats(smtp, &st);
    CHECK_INT(st.sessions, 10);
    CHECK_INT(st.joined, 30);
    CHECK_INT(st.active_max, 4); /* per_destination */
    for (int i = 0; i < 40; i++)
        CHECK_INT(g[i].res.verdict, OP_SMTP_REJECTED);
    stop();
}

CTEST(forgotten_waiters_still_fill_the_cache)
{
    start();
    got_t g = {0};
    CHECK(verify_into(&g, "bob@verify.test", verify_port));
    op_lookup_cancel(&g.req);
    op_smtp_result_t r;
    int hit = 0;
    for (int i = 0; i < 50 && !hit; i++) {
        run_until(&g.done, 0.05);
        hit = op_smtp_cached(smtp, "bob@verify.test", &r);
    }
    CHECK(hit);
    CHECK(!g.done);
    stop();
}

CTEST(stopping_cancels_sessions_and_the_line)
{
    conf.per_destination = 1;
    start();
    got_t a = {0}, b = {0};
    CHECK(verify_into(&a, "alice@verify.test", slow_port));
    CHECK(verify_into(&b, "bob@verify.test", slow_port));
    uv_run(&loop, UV_RUN_NOWAIT);
    stop();
    CHECK(a.done && b.done);
    CHECK_STR(a.res.reply, "cancelled");
    CHECK_STR(b.res.reply, "cancelled");
}

CTEST(addresses)
{
    char key[256];
    CHECK_INT(op_smtp_address_key("Alice@Example.ORG.", key, sizeof key), 0);
    CHECK_STR(key, "alice@example.org");
    CHECK_INT(op_smtp_address_key("a@b\xc3\xbc.test", key, sizeof key), 0);
    CHECK_STR(key, "a@xn--b-eha.test");
    CHECK_INT(op_smtp_address_key("no-at", key, sizeof key), -1);
    CHECK_INT(op_smtp_address_key("@x.test", key, sizeof key), -1);
    CHECK_INT(op_smtp_address_key("a b@x.test", key, sizeof key), -1);
    CHECK_INT(op_smtp_address_key("a>@x.test", key, sizeof key), -1);
    CHECK_INT(op_smtp_address_key("a\r\nRSET@x.test", key, sizeof key), -1);
}

int main(int argc, char **argv)
{
    return ctest_main(argc, argv);
}
