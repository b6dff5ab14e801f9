/* The metrics registry (engine/core/metrics.c) and the endpoint's HTTP
 * codec (engine/metrics/metrics_http.c). */
#include "ctest.h"
#include "core/metrics.h"
#include "metrics/metrics_http.h"

/* The value of the line of text that starts with want, or -1. */
static double value_of(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, line, n) == 0 && p[n] == ' ')
            return atof(p + n + 1);
    return -1;
}

CTEST(answers_by_check_and_class)
{
    op_metrics_init();
    static const struct {
        const char *action, *check, *reason;
    } seq[] = {
        {"REJECT 5.7.1 no", "PO3", "policy"},     {"DEFER 4.5.3 later", "PO7", "policy"},
        {"DUNNO", "-", "policy"},                 {"554 5.7.1 no", "PO3", "policy"},
        {"451 4.3.5 unavailable", "-", "deadline"}, {"OK", "-", "policy"},
        {"PREPEND X-A: b", "-", "policy"},        {"HOLD quarantine", "PO8", "policy"},
        {"DEFER_IF_PERMIT 4.7.1 x", "PO1", "policy"},
    };
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        op_metrics_req_t r = op_metrics_request("main", "postout", "lrz", "policy");
        op_metrics_answer(r, seq[i].action, strlen(seq[i].action), seq[i].check, seq[i].reason,
                          (uint64_t)(i + 1) * 300);
    }
    size_t len;
    char *t = op_metrics_render(&len);
    CHECK_INT(strlen(t), len);
    CHECK_INT(value_of(t, "outpost_requests_total{listener=\"main\",service=\"postout\",tenant=\"lrz\",protocol=\"policy\"}"), 9);
    CHECK_INT(value_of(t, "outpost_answers_total{service=\"postout\",check=\"PO3\",class=\"reject\"}"), 2);
    CHECK_INT(value_of(t, "outpost_answers_total{service=\"postout\",check=\"PO7\",class=\"defer\"}"), 1);
    CHECK_INT(value_of(t, "outpost_answers_total{service=\"postout\",check=\"PO1\",class=\"defer\"}"), 1);
    CHECK_INT(value_of(t, "outpost_answers_total{service=\"postout\",check=\"-\",class=\"accept\"}"), 3);
    CHECK_INT(value_of(t, "outpost_answers_total{service=\"postout\",check=\"-\",class=\"defer\"}"), 1);
    CHECK_INT(value_of(t, "outpost_answers_total{service=\"postout\",check=\"PO8\",class=\"other\"}"), 1);
    CHECK_INT(value_of(t, "outpost_default_answers_total{service=\"postout\",cause=\"deadline\"}"), 1);
    CHECK_INT(value_of(t, "outpost_request_duration_seconds_count{service=\"postout\"}"), 9);
    /* 300 us .. 2700 us: 0.0005 holds 300; 0.001 holds 300..900; 0.0025 up to 2400 */
    CHECK_INT(value_of(t, "outpost_request_duration_seconds_bucket{service=\"postout\",le=\"0.00025\"}"), 0);
    CHECK_INT(value_of(t, "outpost_request_duration_seconds_bucket{service=\"postout\",le=\"0.0005\"}"), 1);
    CHECK_INT(value_of(t, "outpost_request_duration_seconds_bucket{service=\"postout\",le=\"0.001\"}"), 3);
    CHECK_INT(value_of(t, "outpost_request_duration_seconds_bucket{service=\"postout\",le=\"0.0025\"}"), 8);
    CHECK_INT(value_of(t, "outpost_request_duration_seconds_bucket{service=\"postout\",le=\"+Inf\"}"), 9);
    CHECK(value_of(t, "outpost_request_duration_seconds_sum{service=\"postout\"}") > 0.0134 &&
          value_of(t, "outpost_request_duration_seconds_sum{service=\"postout\"}") < 0.0136);
    CHECK_INT(value_of(t, "outpost_requests_in_flight"), 0);
    CHECK(strstr(t, "# TYPE outpost_request_duration_seconds histogram\n") != NULL);
    CHECK(strstr(t, "# HELP outpost_answers_total ") != NULL);
    free(t);
}

CTEST(in_flight_until_answered_or_gone)
{
    op_metrics_init();
    op_metrics_req_t a = op_metrics_request("l", "s", "", "milter");
    op_metrics_req_t b = op_metrics_request("l", "s", "", "milter");
    size_t len;
    char *t = op_metrics_render(&len);
    CHECK_INT(value_of(t, "outpost_requests_in_flight"), 2);
    CHECK_INT(value_of(t, "outpost_requests_total{listener=\"l\",service=\"s\",tenant=\"-\",protocol=\"milter\"}"), 2);
    free(t);
    op_metrics_answer(a, "DUNNO", 5, "-", "policy", 10);
    op_metrics_request_gone(b);
    t = op_metrics_render(&len);
    CHECK_INT(value_of(t, "outpost_requests_in_flight"), 0);
    free(t);
}

/* A reload frees the configuration's strings while requests of the old
 * generation are in flight: their answers must not read them. */
CTEST(service_name_outlives_its_configuration)
{
    op_metrics_init();
    char *name = strdup("reloaded");
    op_metrics_req_t r = op_metrics_request("l", name, "t", "policy");
    memset(name, 'x', strlen(name));
    free(name);
    op_metrics_answer(r, "DUNNO", 5, "-", "policy", 1);
    size_t len;
    char *t = op_metrics_render(&len);
    CHECK_INT(value_of(t, "outpost_answers_total{service=\"reloaded\",check=\"-\",class=\"accept\"}"), 1);
    free(t);
}

/* A policy that makes up check ids cannot grow the families: past the cap
 * they count as "other". */
CTEST(check_ids_are_capped)
{
    op_metrics_init();
    char id[32];
    for (int i = 0; i < OP_METRICS_MAX_CHECKS + 50; i++) {
        snprintf(id, sizeof id, "C%d", i);
        op_metrics_req_t r = op_metrics_request("l", "s", "t", "policy");
        op_metrics_answer(r, "REJECT 5.7.1 x", 14, id, "policy", 1);
    }
    size_t len;
    char *t = op_metrics_render(&len);
    CHECK_INT(value_of(t, "outpost_answers_total{service=\"s\",check=\"C0\",class=\"reject\"}"), 1);
    CHECK_INT(value_of(t, "outpost_answers_total{service=\"s\",check=\"other\",class=\"reject\"}"), 50);
    free(t);
}

CTEST(family_overflow_counts_in_other)
{
    op_metrics_init();
    op_metric_family_t *f = op_metrics_family("test_things_total", "Things.", OP_METRIC_COUNTER, "name", 4);
    const char *names[] = {"a", "b", "c", "d", "e", "a"};
    for (size_t i = 0; i < 6; i++)
        op_metrics_add(op_metrics_series(f, &names[i]), 1);
    size_t len;
    char *t = op_metrics_render(&len);
    CHECK_INT(value_of(t, "test_things_total{name=\"a\"}"), 2);
    CHECK_INT(value_of(t, "test_things_total{name=\"c\"}"), 1);
    CHECK_INT(value_of(t, "test_things_total{name=\"d\"}"), -1);
    CHECK_INT(value_of(t, "test_things_total{name=\"other\"}"), 2);
    CHECK_INT(value_of(t, "outpost_metrics_series_dropped_total{family=\"test_things_total\"}"), 2);
    free(t);
}

/* A listener's route (its labels resolved once) counts in the very series
 * the lookup of the same labels does, shows no series before its first
 * request, and keeps its own copy of the labels. */
CTEST(route_counts_as_the_lookup_does)
{
    op_metrics_init();
    char *svc = strdup("postout");
    op_metrics_route_t *r = op_metrics_route("main", svc, "", "policy");
    CHECK(r != NULL);
    CHECK(op_metrics_route("main", "postout", "", "policy") == r);
    CHECK(op_metrics_route("main", "postout", "lrz", "policy") != r);
    memset(svc, 'x', strlen(svc));
    free(svc);
    size_t len;
    char *t = op_metrics_render(&len);
    CHECK(strstr(t, "service=\"postout\"") == NULL);
    free(t);
    static const char *const actions[] = {"REJECT 5.7.1 no", "DUNNO", "defer 4.5.3 later", "HOLD x"};
    static const char *const checks[] = {"PO3", "-", "PO7", "PO8"};
    for (int i = 0; i < 8; i++) {
        op_metrics_req_t q = i % 2 ? op_metrics_request("main", "postout", NULL, "policy")
                                   : op_metrics_request_on(r);
        const char *a = actions[(i / 2) % 4];
        op_metrics_answer(q, a, strlen(a), checks[(i / 2) % 4], "policy", 700);
    }
    t = op_metrics_render(&len);
    CHECK_INT(value_of(t, "outpost_requests_total{listener=\"main\",service=\"postout\",tenant=\"-\",protocol=\"policy\"}"), 8);
    CHECK_INT(value_of(t, "outpost_answers_total{service=\"postout\",check=\"PO3\",class=\"reject\"}"), 2);
    CHECK_INT(value_of(t, "outpost_answers_total{service=\"postout\",check=\"-\",class=\"accept\"}"), 2);
    CHECK_INT(value_of(t, "outpost_answers_total{service=\"postout\",check=\"PO7\",class=\"defer\"}"), 2);
    CHECK_INT(value_of(t, "outpost_answers_total{service=\"postout\",check=\"PO8\",class=\"other\"}"), 2);
    CHECK_INT(value_of(t, "outpost_request_duration_seconds_count{service=\"postout\"}"), 8);
    CHECK_INT(value_of(t, "outpost_request_duration_seconds_bucket{service=\"postout\",le=\"0.001\"}"), 8);
    CHECK_INT(value_of(t, "outpost_requests_in_flight"), 0);
    CHECK(strstr(t, "service=\"xxxxxxx\"") == NULL);
    free(t);
}

/* A milter phase through the route: counted by phase, as a request of
 * protocol "milter"; a phase number past the route's table is looked up. */
CTEST(route_counts_milter_phases)
{
    op_metrics_init();
    op_metrics_route_t *r = op_metrics_route("mx", "mailout", "lm", "milter");
    for (unsigned i = 0; i < 6; i++) {
        op_metrics_req_t q = op_metrics_milter_phase_on(r, i % 3 == 2 ? 99 : 4, i % 3 == 2 ? "eom" : "rcpt");
        op_metrics_answer(q, "DUNNO", 5, "-", "policy", 10);
    }
    op_metrics_req_t q = op_metrics_milter_phase("mx", "mailout", "lm", "rcpt");
    op_metrics_answer(q, "DUNNO", 5, "-", "policy", 10);
    size_t len;
    char *t = op_metrics_render(&len);
    CHECK_INT(value_of(t, "outpost_milter_phases_total{service=\"mailout\",phase=\"rcpt\"}"), 5);
    CHECK_INT(value_of(t, "outpost_milter_phases_total{service=\"mailout\",phase=\"eom\"}"), 2);
    CHECK_INT(value_of(t, "outpost_requests_total{listener=\"mx\",service=\"mailout\",tenant=\"lm\",protocol=\"milter\"}"), 7);
    free(t);
}

/* A route whose labels arrive when their family is full counts in the
 * overflow series, and as dropped at each request, as the lookup does:
 * nothing of the overflow is kept in the route. */
CTEST(route_on_a_full_family_counts_as_dropped)
{
    op_metrics_init();
    char name[32];
    for (int i = 0; i < 1023; i++) { /* outpost_requests_total holds 1,024 with its "other" */
        snprintf(name, sizeof name, "l%d", i);
        op_metrics_req_t q = op_metrics_request(name, "s", "t", "policy");
        op_metrics_request_gone(q);
    }
    size_t len;
    char *t = op_metrics_render(&len);
    CHECK_INT(value_of(t, "outpost_requests_total{listener=\"other\",service=\"other\",tenant=\"other\",protocol=\"other\"}"), -1);
    free(t);
    op_metrics_route_t *r = op_metrics_route("late", "s", "t", "policy");
    for (int i = 0; i < 3; i++)
        op_metrics_answer(op_metrics_request_on(r), "DUNNO", 5, "-", "policy", 10);
    t = op_metrics_render(&len);
    CHECK_INT(value_of(t, "outpost_requests_total{listener=\"other\",service=\"other\",tenant=\"other\",protocol=\"other\"}"), 3);
    CHECK_INT(value_of(t, "outpost_metrics_series_dropped_total{family=\"outpost_requests_total\"}"), 3);
    CHECK_INT(value_of(t, "outpost_request_duration_seconds_count{service=\"s\"}"), 3);
    CHECK_INT(value_of(t, "outpost_requests_in_flight"), 0);
    free(t);
}

CTEST(label_values_are_escaped)
{
    op_metrics_init();
    op_metric_family_t *f = op_metrics_family("test_esc", "Escapes.", OP_METRIC_GAUGE, "v", 8);
    const char *v[1] = {"a\"b\\c\nd"};
    op_metrics_set(op_metrics_series(f, v), 2.5);
    size_t len;
    char *t = op_metrics_render(&len);
    CHECK(strstr(t, "test_esc{v=\"a\\\"b\\\\c\\nd\"} 2.5\n") != NULL);
    free(t);
}

CTEST(classes)
{
    static const struct {
        const char *a, *cls;
    } c[] = {
        {"DUNNO", "accept"}, {"OK", "accept"}, {"dunno", "accept"}, {"PREPEND X: y", "accept"},
        {"REJECT", "reject"}, {"REJECT 5.1.1 x", "reject"}, {"550 5.7.1 x", "reject"},
        {"DEFER 4.7.1 x", "defer"}, {"DEFER_IF_PERMIT x", "defer"}, {"450 4.7.1 x", "defer"},
        {"HOLD x", "other"}, {"DISCARD", "other"}, {"", "other"}, {"OKAY", "other"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        CHECK_STR(op_metrics_class(c[i].a, strlen(c[i].a)), c[i].cls);
}

CTEST(dependency_errors_by_kind)
{
    op_metrics_dep_t d = op_metrics_dep("ldap");
    op_metrics_dep_done(&d, 1500, NULL);
    op_metrics_dep_done(&d, 2000000, "timeout");
    op_metrics_dep_done(&d, 10, "unavailable");
    op_metrics_dep_done(&d, 10, "timeout");
    size_t len;
    char *t = op_metrics_render(&len);
    CHECK_INT(value_of(t, "outpost_dependency_operations_total{dependency=\"ldap\"}"), 4);
    CHECK_INT(value_of(t, "outpost_dependency_errors_total{dependency=\"ldap\",kind=\"timeout\"}"), 2);
    CHECK_INT(value_of(t, "outpost_dependency_errors_total{dependency=\"ldap\",kind=\"unavailable\"}"), 1);
    CHECK_INT(value_of(t, "outpost_dependency_duration_seconds_count{dependency=\"ldap\"}"), 4);
    CHECK_INT(value_of(t, "outpost_dependency_duration_seconds_bucket{dependency=\"ldap\",le=\"1\"}"), 3);
    free(t);
}

CTEST(last_minute_ring)
{
    op_metrics_init();
    op_metrics_tick(1000);
    for (int i = 0; i < 30; i++) {
        op_metrics_req_t r = op_metrics_request("l", "s", "t", "policy");
        op_metrics_answer(r, "REJECT 5.7.1 x", 14, "X", "policy", 1);
    }
    for (int k = 1; k <= 10; k++)
        op_metrics_tick(1000 + 10 * k);
    const op_metrics_snap_t *s = op_metrics_minute_ago(1100);
    CHECK(s != NULL);
    CHECK(s != NULL && s->t >= 1030 && s->t <= 1100);
    CHECK(s != NULL && s->requests == 30);
    CHECK(op_metrics_minute_ago(2000) == NULL);
}

/* ---- HTTP ---- */

static int parse(const char *s)
{
    return op_http_parse(s, strlen(s));
}

CTEST(http_requests)
{
    CHECK_INT(parse("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"), 200);
    CHECK_INT(parse("GET /metrics HTTP/1.0\n\n"), 200);
    CHECK_INT(parse("GET /metrics?x=1 HTTP/1.1\r\n\r\n"), 200);
    CHECK_INT(parse("GET /metricsx HTTP/1.1\r\n\r\n"), 404);
    CHECK_INT(parse("GET / HTTP/1.1\r\n\r\n"), 404);
    CHECK_INT(parse("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\n"), 405);
    CHECK_INT(parse("HEAD /metrics HTTP/1.1\r\n\r\n"), 405);
    CHECK_INT(parse("GET /metrics HTTP/1.1\r\n"), 0);
    CHECK_INT(parse("GET /met"), 0);
    CHECK_INT(parse(""), 0);
    CHECK_INT(parse("garbage\r\n\r\n"), 400);
    CHECK_INT(parse("GET /metrics\r\n\r\n"), 400);
    CHECK_INT(parse("GET /metrics HTTP/2.0\r\n\r\n"), 400);
    CHECK_INT(parse("GET  /metrics HTTP/1.1\r\n\r\n"), 400);
    CHECK_INT(parse("GET /metrics HTTP/1.1\r\nno colon\r\n\r\n"), 400);
    CHECK_INT(parse("GET /metrics HTTP/1.1\r\n: empty name\r\n\r\n"), 400);
    CHECK_INT(parse("GET /a\x01 HTTP/1.1\r\n\r\n"), 400);
}

CTEST(http_head_too_long)
{
    char *big = malloc(OP_HTTP_MAX_HEAD + 1);
    memset(big, 'a', OP_HTTP_MAX_HEAD);
    big[OP_HTTP_MAX_HEAD] = '\0';
    memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
    CHECK_INT(op_http_parse(big, OP_HTTP_MAX_HEAD), 400);
    CHECK_INT(op_http_parse(big, 100), 0);
    free(big);
}

CTEST(http_answer_heads)
{
    char h[512];
    size_t n = op_http_head(h, sizeof h, 200, 1234);
    CHECK_INT(n, strlen(h));
    CHECK(strncmp(h, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(strstr(h, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != NULL);
    CHECK(strstr(h, "Content-Length: 1234\r\n") != NULL);
    CHECK(strstr(h, "Connection: close\r\n\r\n") != NULL);
    op_http_head(h, sizeof h, 405, 0);
    CHECK(strncmp(h, "HTTP/1.1 405 Method Not Allowed\r\n", 33) == 0);
    CHECK(strstr(h, "Allow: GET\r\n") != NULL);
    op_http_head(h, sizeof h, 404, 0);
    CHECK(strncmp(h, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
}

int main(int argc, char **argv)
{
    return ctest_main(argc, argv);
}
