/* The engine's own families (metrics.h: op_mf), what the request path
 * records in them (a request, its answer, a milter phase), the
 * dependencies', the store's, the reloads' and the connections' counts,
 * and the last minute's totals that `outpostctl stats` shows. */
#include "core/metrics.h"
#include "core/metrics_registry.h"

#include "core/mem.h"

#include <string.h>
#include <strings.h>
#include <time.h>

op_metrics_families_t op_mf;

/* Totals for `outpostctl stats`, kept as they are counted. */
static uint64_t tot_requests, tot_class[4], tot_defaults;

void op_metrics_init(void)
{
    if (op_mf.requests != NULL)
        return;
    op_mf.dropped = op_metrics_family(
        "outpost_metrics_series_dropped_total",
        "Label tuples counted in a family's \"other\" series because the family was full.",
        OP_METRIC_COUNTER, "family", OP__METRICS_MAX_FAMILIES);
    op_mf.start_time = op_metrics_family("outpost_start_time_seconds",
                                         "When the process started, seconds since the epoch.",
                                         OP_METRIC_GAUGE, "", 2);
    op_mf.requests = op_metrics_family(
        "outpost_requests_total",
        "Requests received (a policy query, a milter phase run by the policy).",
        OP_METRIC_COUNTER, "listener,service,tenant,protocol", 1024);
    op_mf.answers = op_metrics_family(
        "outpost_answers_total",
        "Answers by the check that decided (\"-\": none) and class (accept, reject = 5xx, "
        "defer = 4xx, other).",
        OP_METRIC_COUNTER, "service,check,class", 2048);
    op_mf.default_answers = op_metrics_family(
        "outpost_default_answers_total",
        "Answers that are the service's default action or a fixed answer, by cause (deadline, "
        "error, bad-return, cpu-budget, shutdown, no-service, unknown-context).",
        OP_METRIC_COUNTER, "service,cause", 512);
    op_mf.request_seconds = op_metrics_family(
        "outpost_request_duration_seconds",
        "Time from a request's arrival to its answer, per service.", OP_METRIC_HISTOGRAM,
        "service", 128);
    op_mf.inflight = op_metrics_family("outpost_requests_in_flight",
                                       "Requests received and not yet answered.",
                                       OP_METRIC_GAUGE, "", 2);
    op_mf.connections = op_metrics_family("outpost_connections_open",
                                          "MTA connections open now.", OP_METRIC_GAUGE, "", 2);
    op_mf.connections_refused = op_metrics_family(
        "outpost_connections_refused_total",
        "MTA connections closed at accept by a cap (overload) or allow_from.",
        OP_METRIC_COUNTER, "reason", 16);
    op_mf.dep_ops = op_metrics_family(
        "outpost_dependency_operations_total",
        "Operations sent to a dependency (a cache miss starts one; answers from the cache are "
        "not operations).",
        OP_METRIC_COUNTER, "dependency", 32);
    op_mf.dep_errors = op_metrics_family(
        "outpost_dependency_errors_total", "Operations of a dependency that failed, by kind.",
        OP_METRIC_COUNTER, "dependency,kind", 256);
    op_mf.dep_seconds = op_metrics_family("outpost_dependency_duration_seconds",
                                          "Time an operation of a dependency took.",
                                          OP_METRIC_HISTOGRAM, "dependency", 32);
    op_mf.cache_hits = op_metrics_family("outpost_cache_hits_total",
                                         "Lookups answered from a dependency's cache.",
                                         OP_METRIC_COUNTER, "dependency", 32);
    op_mf.cache_misses = op_metrics_family("outpost_cache_misses_total",
                                           "Lookups that started an operation.",
                                           OP_METRIC_COUNTER, "dependency", 32);
    op_mf.cache_coalesced = op_metrics_family(
        "outpost_cache_coalesced_total",
        "Lookups that joined an operation already in flight for the same key.",
        OP_METRIC_COUNTER, "dependency", 32);
    op_mf.cache_entries = op_metrics_family("outpost_cache_entries",
                                            "Answers a dependency's cache holds now.",
                                            OP_METRIC_GAUGE, "dependency", 32);
    op_mf.ldap_up = op_metrics_family(
        "outpost_ldap_connections_up",
        "LDAP connections bound and usable now, per server URI of ldap { uris }.",
        OP_METRIC_GAUGE, "server", 64);
    op_mf.reloads = op_metrics_family("outpost_reloads_total", "Reloads by result (ok, failed).",
                                      OP_METRIC_COUNTER, "result", 4);
    op_mf.generation = op_metrics_family("outpost_generation",
                                         "Number of the current generation (1 at start, +1 "
                                         "per reload that loaded).",
                                         OP_METRIC_GAUGE, "", 2);
    op_mf.generation_loaded = op_metrics_family(
        "outpost_generation_loaded_timestamp_seconds",
        "When the current generation became current, seconds since the epoch.", OP_METRIC_GAUGE,
        "", 2);
    op_mf.lua_memory = op_metrics_family("outpost_lua_memory_bytes",
                                         "Memory the Lua of the current generation holds.",
                                         OP_METRIC_GAUGE, "", 2);
    op_mf.counter_writes = op_metrics_family(
        "outpost_store_writes_total",
        "Writes of the counters store (the limits' counts): group commits of rocksdb.",
        OP_METRIC_COUNTER, "backend", 4);
    op_mf.counter_write_errors = op_metrics_family("outpost_store_write_errors_total",
                                                   "Writes of the counters store that failed.",
                                                   OP_METRIC_COUNTER, "backend", 4);
    op_mf.counter_write_seconds = op_metrics_family("outpost_store_write_duration_seconds",
                                                    "Time a write of the counters store took.",
                                                    OP_METRIC_HISTOGRAM, "backend", 4);
    op_mf.milter_phases = op_metrics_family(
        "outpost_milter_phases_total",
        "Milter phases run by a policy's handler (connect, helo, mail, rcpt, data, header, eoh, "
        "body, eom, abort), per service.",
        OP_METRIC_COUNTER, "service,phase", 512);
    /* The label-less families have their one series from the start. */
    const char *none[1] = {NULL};
    op_metrics_series(op_mf.inflight, none);
    op_metrics_series(op_mf.connections, none);
    op_metrics_series(op_mf.generation, none);
    op_metrics_series(op_mf.generation_loaded, none);
    op_metrics_series(op_mf.lua_memory, none);
    op_metrics_set(op_metrics_series(op_mf.start_time, none), (double)time(NULL));
    static const char *const results[] = {"ok", "failed"};
    for (int i = 0; i < 2; i++)
        op_metrics_series(op_mf.reloads, &results[i]);
}

/* ---- the request path ---- */

/* ---- the request path ----
 *
 * A request's labels would cost two hash lookups (its requests series, its
 * service's histogram) and its answer a third (service, check, class).  So
 * a listener's own binding is resolved into a route once (op_metrics_route
 * at bind and reload; its slots at its first request, so no series shows
 * before it counts), and a service's answer series are kept per check and
 * class once seen.  A request whose policy_context picks another service
 * is looked up as before.  Nothing is cached that is a family's overflow
 * series: each use of it counts in outpost_metrics_series_dropped_total. */

#define MAX_ROUTES 1024 /* outpost_requests_total's cap: a route per series at most */
#define SVC_MAX 128     /* outpost_request_duration_seconds's cap */
#define CHECK_KEYS (OP_METRICS_MAX_CHECKS + 2)

struct op_metrics_route {
    char *labels[4]; /* listener, service, tenant ("-": none), protocol */
    int requests;    /* slot + 1 in outpost_requests_total; 0 until the first request */
    int seconds;     /* slot of the service's histogram */
    int svc;         /* its series' index, which keys the answer cache */
    const char *service_name; /* the registry's copy */
    int phases[16];  /* slot + 1 in outpost_milter_phases_total, by phase number */
};

static op_metrics_route_t *routes[MAX_ROUTES];
static size_t nroutes;

/* By a service's index in outpost_request_duration_seconds: the slot + 1 of
 * its answers series by check key (check_key) and class; 0 until seen. */
typedef int svc_answers_t[CHECK_KEYS][4];
static svc_answers_t *svc_answers[SVC_MAX];

static int is_overflow(const op_metric_family_t *f, const op_metric_series_t *s)
{
    return f->overflow >= 0 && s == &f->series[f->overflow];
}

static void inflight_add(double d)
{
    op__metrics_gauges[op_mf.inflight->series[0].slot] += d;
}

/* The histogram series of service, as a request carries it. */
static op_metrics_req_t req_of(const char *service)
{
    const char *s[1] = {service};
    /* The service's name as the registry keeps it: the configuration's
     * string may be freed by a reload before the request answers. */
    op_metric_series_t *h = op__metrics_intern(op_mf.request_seconds, s);
    return (op_metrics_req_t){h->slot, h->values[0], (int)(h - op_mf.request_seconds->series)};
}

op_metrics_req_t op_metrics_request(const char *listener, const char *service, const char *tenant,
                                    const char *protocol)
{
    if (op_mf.requests == NULL)
        op_metrics_init();
    const char *v[4] = {listener, service, tenant && *tenant ? tenant : "-", protocol};
    op_metrics_add(op_metrics_series(op_mf.requests, v), 1);
    inflight_add(1);
    tot_requests++;
    return req_of(service);
}

op_metrics_route_t *op_metrics_route(const char *listener, const char *service, const char *tenant,
                                     const char *protocol)
{
    const char *v[4] = {listener, service, tenant && *tenant ? tenant : "-", protocol};
    for (size_t i = 0; i < nroutes; i++) {
        size_t k = 0;
        while (k < 4 && strcmp(routes[i]->labels[k], v[k] ? v[k] : "") == 0)
            k++;
        if (k == 4)
            return routes[i];
    }
    if (nroutes == MAX_ROUTES)
        return NULL;
    op_metrics_route_t *r = op_calloc(1, sizeof *r);
    for (size_t k = 0; k < 4; k++)
        r->labels[k] = op_strdup(v[k] ? v[k] : "");
    routes[nroutes++] = r;
    return r;
}

/* The route's slots, resolved at its first request; 0 while one of its
 * series would be its family's overflow (the request is then looked up,
 * and counted as dropped, each time, as any other). */
static int route_resolve(op_metrics_route_t *r)
{
    if (op_mf.requests == NULL)
        op_metrics_init();
    const char *const *labels = (const char *const *)r->labels;
    const char *s[1] = {r->labels[1]};
    op_metric_series_t *q = op__metrics_find(op_mf.requests, labels);
    op_metric_series_t *h = op__metrics_find(op_mf.request_seconds, s);
    if ((q == NULL && op__metrics_full(op_mf.requests)) ||
        (h == NULL && op__metrics_full(op_mf.request_seconds)) ||
        (q != NULL && is_overflow(op_mf.requests, q)) ||
        (h != NULL && is_overflow(op_mf.request_seconds, h)))
        return 0;
    q = q != NULL ? q : op__metrics_intern(op_mf.requests, labels);
    h = h != NULL ? h : op__metrics_intern(op_mf.request_seconds, s);
    r->requests = q->slot + 1;
    r->seconds = h->slot;
    r->svc = (int)(h - op_mf.request_seconds->series);
    r->service_name = h->values[0];
    return 1;
}

op_metrics_req_t op_metrics_request_on(op_metrics_route_t *r)
{
    if (r->requests == 0 && !route_resolve(r))
        return op_metrics_request(r->labels[0], r->labels[1], r->labels[2], r->labels[3]);
    op__metrics_counts[r->requests - 1]++;
    inflight_add(1);
    tot_requests++;
    return (op_metrics_req_t){r->seconds, r->service_name, r->svc};
}

op_metrics_req_t op_metrics_milter_phase(const char *listener, const char *service,
                                         const char *tenant, const char *phase)
{
    if (op_mf.requests == NULL)
        op_metrics_init();
    const char *v[2] = {service, phase};
    op_metrics_add(op_metrics_series(op_mf.milter_phases, v), 1);
    return op_metrics_request(listener, service, tenant, "milter");
}

op_metrics_req_t op_metrics_milter_phase_on(op_metrics_route_t *r, unsigned number,
                                            const char *phase)
{
    if (op_mf.requests == NULL)
        op_metrics_init();
    int *cached = number < sizeof r->phases / sizeof r->phases[0] ? &r->phases[number] : NULL;
    if (cached != NULL && *cached > 0) {
        op__metrics_counts[*cached - 1]++;
    } else {
        const char *v[2] = {r->labels[1], phase};
        op_metric_series_t *p = op__metrics_intern(op_mf.milter_phases, v);
        op_metrics_add(p->slot, 1);
        if (cached != NULL && !is_overflow(op_mf.milter_phases, p))
            *cached = p->slot + 1;
    }
    return op_metrics_request_on(r);
}

void op_metrics_request_gone(op_metrics_req_t r)
{
    if (r.service >= 0)
        inflight_add(-1);
}

/* Whether action a starts with the word w (any case), n its length. */
static int word(const char *a, size_t len, const char *w, size_t n)
{
    return len >= n && strncasecmp(a, w, n) == 0 && (len == n || a[n] == ' ' || a[n] == '\t');
}
#define WORD(w) word(a, len, w, sizeof w - 1)

static const char *const class_name[4] = {"accept", "reject", "defer", "other"};

/* By the first character, so an answer compares against one or two words
 * rather than all seven (every answer is classed). */
static int class_of(const char *a, size_t len)
{
    if (len == 0)
        return 3;
    switch (a[0]) {
    case '5':
        return 1;
    case '4':
        return 2;
    case '2':
        return 0;
    case 'R':
    case 'r':
        return WORD("REJECT") ? 1 : 3;
    case 'D':
    case 'd':
        if (WORD("DEFER") || WORD("DEFER_IF_PERMIT") || WORD("DEFER_IF_REJECT"))
            return 2;
        return WORD("DUNNO") ? 0 : 3;
    case 'O':
    case 'o':
        return WORD("OK") ? 0 : 3;
    case 'P':
    case 'p':
        return WORD("PREPEND") ? 0 : 3;
    default:
        return 3;
    }
}

const char *op_metrics_class(const char *action, size_t len)
{
    return class_name[class_of(action, len)];
}

static char *check_ids[OP_METRICS_MAX_CHECKS];
static size_t nchecks;

/* A check id's key in the answer cache: 0 "-" (none), 1 "other", 2 + its
 * place in check_ids. */
static int check_key(const char *check)
{
    if (check == NULL || *check == '\0' || strcmp(check, "-") == 0)
        return 0;
    for (size_t i = 0; i < nchecks; i++)
        if (check_ids[i][0] == check[0] && strcmp(check_ids[i], check) == 0)
            return 2 + (int)i;
    /* Check ids are a policy's names (PO1, MO5, ...); the cap keeps a
     * policy that makes them up per request from growing the families. */
    if (nchecks == OP_METRICS_MAX_CHECKS || strlen(check) > 32)
        return 1;
    check_ids[nchecks] = op_strdup(check);
    return 2 + (int)nchecks++;
}

static const char *check_name(int key)
{
    return key == 0 ? "-" : key == 1 ? "other" : check_ids[key - 2];
}

const char *op_metrics_check_label(const char *check)
{
    return check_name(check_key(check));
}

void op_metrics_answer(op_metrics_req_t r, const char *action, size_t action_len, const char *check,
                       const char *reason, uint64_t elapsed_us)
{
    int cls = class_of(action, action_len);
    int key = check_key(check);
    int *cached = NULL;
    if (r.svc >= 0 && r.svc < SVC_MAX) {
        if (svc_answers[r.svc] == NULL)
            svc_answers[r.svc] = op_calloc(1, sizeof *svc_answers[r.svc]);
        cached = &(*svc_answers[r.svc])[key][cls];
    }
    if (cached != NULL && *cached > 0) {
        op__metrics_counts[*cached - 1]++;
    } else {
        const char *v[3] = {r.service_name, check_name(key), class_name[cls]};
        op_metric_series_t *a = op__metrics_intern(op_mf.answers, v);
        op_metrics_add(a->slot, 1);
        if (cached != NULL && !is_overflow(op_mf.answers, a))
            *cached = a->slot + 1;
    }
    tot_class[cls]++;
    if (reason != NULL && strcmp(reason, "policy") != 0) {
        const char *d[2] = {r.service_name, reason};
        op_metrics_add(op_metrics_series(op_mf.default_answers, d), 1);
        tot_defaults++;
    }
    if (r.service >= 0) {
        op_metrics_observe_us(r.service, elapsed_us);
        inflight_add(-1);
    }
}

op_metrics_dep_t op_metrics_dep(const char *name)
{
    op_metrics_init();
    const char *v[1] = {name};
    return (op_metrics_dep_t){op_metrics_series(op_mf.dep_ops, v),
                              op_metrics_series(op_mf.dep_seconds, v), name};
}

void op_metrics_dep_done(const op_metrics_dep_t *d, uint64_t us, const char *kind)
{
    op_metrics_add(d->ops, 1);
    op_metrics_observe_us(d->seconds, us);
    if (kind != NULL) {
        const char *v[2] = {d->name, kind};
        op_metrics_add(op_metrics_series(op_mf.dep_errors, v), 1);
    }
}

void op_metrics_counter_write(const char *backend, uint64_t us, int failed)
{
    op_metrics_init();
    const char *v[1] = {backend};
    op_metrics_add(op_metrics_series(op_mf.counter_writes, v), 1);
    op_metrics_observe_us(op_metrics_series(op_mf.counter_write_seconds, v), us);
    if (failed)
        op_metrics_add(op_metrics_series(op_mf.counter_write_errors, v), 1);
}

void op_metrics_connection_refused(const char *why)
{
    op_metrics_init();
    const char *v[1] = {strstr(why, "allow_from") ? "allow_from"
                        : strstr(why, "shutting") ? "shutdown"
                                                  : "overload"};
    op_metrics_add(op_metrics_series(op_mf.connections_refused, v), 1);
}

void op_metrics_reload(const char *result)
{
    op_metrics_init();
    const char *v[1] = {result};
    op_metrics_add(op_metrics_series(op_mf.reloads, v), 1);
}

/* The routes a listener holds point into what this frees: the tests
 * call it before any listener is bound. */
void op_metrics_reset(void)
{
    op__metrics_registry_reset();
    memset(&op_mf, 0, sizeof op_mf);
    tot_requests = tot_defaults = 0;
    memset(tot_class, 0, sizeof tot_class);
    for (size_t i = 0; i < nroutes; i++) {
        for (size_t k = 0; k < 4; k++)
            free(routes[i]->labels[k]);
        free(routes[i]);
    }
    nroutes = 0;
    for (size_t i = 0; i < SVC_MAX; i++) {
        free(svc_answers[i]);
        svc_answers[i] = NULL;
    }
}

/* ---- the last minute, for `outpostctl stats` ---- */

static op_metrics_snap_t ring[OP_METRICS_RING];
static size_t ring_head, ring_n;

void op_metrics_snapshot(op_metrics_snap_t *s, double now)
{
    s->t = now;
    s->requests = tot_requests;
    memcpy(s->answers, tot_class, sizeof s->answers);
    s->defaults = tot_defaults;
}

void op_metrics_tick(double now)
{
    op_metrics_snapshot(&ring[ring_head], now);
    ring_head = (ring_head + 1) % OP_METRICS_RING;
    if (ring_n < OP_METRICS_RING)
        ring_n++;
}

const op_metrics_snap_t *op_metrics_minute_ago(double now)
{
    /* the oldest kept, which is at most 70 s old */
    for (size_t k = ring_n; k > 0; k--) {
        const op_metrics_snap_t *s = &ring[(ring_head + OP_METRICS_RING - k) % OP_METRICS_RING];
        if (now - s->t <= 70)
            return s;
    }
    return NULL;
}
