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

void op_metrics_reset(void)
{
    op__metrics_registry_reset();
    memset(&op_mf, 0, sizeof op_mf);
    tot_requests = tot_defaults = 0;
    memset(tot_class, 0, sizeof tot_class);
}

/* ---- the request path ---- */

op_metrics_req_t op_metrics_request(const char *listener, const char *service, const char *tenant,
                                    const char *protocol)
{
    if (op_mf.requests == NULL)
        op_metrics_init();
    const char *v[4] = {listener, service, tenant && *tenant ? tenant : "-", protocol};
    op_metrics_add(op_metrics_series(op_mf.requests, v), 1);
    const char *s[1] = {service};
    op__metrics_gauges[op_mf.inflight->series[0].slot] += 1;
    tot_requests++;
    /* The service's name as the registry keeps it: the configuration's
     * string may be freed by a reload before the request answers. */
    op_metric_series_t *h = op__metrics_intern(op_mf.request_seconds, s);
    return (op_metrics_req_t){h->slot, h->values[0]};
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

void op_metrics_request_gone(op_metrics_req_t r)
{
    if (r.service >= 0)
        op__metrics_gauges[op_mf.inflight->series[0].slot] -= 1;
}

static int prefix(const char *a, size_t len, const char *p)
{
    size_t n = strlen(p);
    return len >= n && strncasecmp(a, p, n) == 0 && (len == n || a[n] == ' ' || a[n] == '\t');
}

static const char *const class_name[4] = {"accept", "reject", "defer", "other"};

static int class_of(const char *a, size_t len)
{
    if (len > 0 && a[0] == '5')
        return 1;
    if (len > 0 && a[0] == '4')
        return 2;
    if (prefix(a, len, "REJECT"))
        return 1;
    if (prefix(a, len, "DEFER") || prefix(a, len, "DEFER_IF_PERMIT") || prefix(a, len, "DEFER_IF_REJECT"))
        return 2;
    if (prefix(a, len, "DUNNO") || prefix(a, len, "OK") || prefix(a, len, "PREPEND") ||
        (len > 0 && a[0] == '2'))
        return 0;
    return 3;
}

const char *op_metrics_class(const char *action, size_t len)
{
    return class_name[class_of(action, len)];
}

static char *check_ids[OP_METRICS_MAX_CHECKS];
static size_t nchecks;

const char *op_metrics_check_label(const char *check)
{
    if (check == NULL || *check == '\0' || strcmp(check, "-") == 0)
        return "-";
    for (size_t i = 0; i < nchecks; i++)
        if (check_ids[i][0] == check[0] && strcmp(check_ids[i], check) == 0)
            return check_ids[i];
    /* Check ids are a policy's names (PO1, MO5, ...); the cap keeps a
     * policy that makes them up per request from growing the families. */
    if (nchecks == OP_METRICS_MAX_CHECKS || strlen(check) > 32)
        return "other";
    check_ids[nchecks] = op_strdup(check);
    return check_ids[nchecks++];
}

void op_metrics_answer(op_metrics_req_t r, const char *action, size_t action_len, const char *check,
                       const char *reason, uint64_t elapsed_us)
{
    int cls = class_of(action, action_len);
    const char *v[3] = {r.service_name, op_metrics_check_label(check), class_name[cls]};
    op_metrics_add(op_metrics_series(op_mf.answers, v), 1);
    tot_class[cls]++;
    if (reason != NULL && strcmp(reason, "policy") != 0) {
        const char *d[2] = {r.service_name, reason};
        op_metrics_add(op_metrics_series(op_mf.default_answers, d), 1);
        tot_defaults++;
    }
    if (r.service >= 0) {
        op_metrics_observe_us(r.service, elapsed_us);
        op__metrics_gauges[op_mf.inflight->series[0].slot] -= 1;
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
