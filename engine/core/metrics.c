/* The metrics registry (metrics.h): families of series, each series a slot
 * in fixed arrays, bumped on the loop thread without locks or allocation;
 * the Prometheus text rendering; the engine's own families. */
#include "core/metrics.h"

#include "core/mem.h"
#include "lib/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_FAMILIES 48
#define MAX_SCALARS 16384
#define MAX_HISTOGRAMS 512

const double op_metrics_bucket_le[OP_METRICS_NBUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,     10,
};
/* The same bounds in microseconds, compared on the request path. */
static const uint64_t bucket_us[OP_METRICS_NBUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

typedef struct {
    char *values[OP_METRICS_MAX_LABELS];
    int slot;
    uint64_t hash;
} series_t;

struct op_metric_family {
    char *name, *help;
    op_metric_type_t type;
    size_t nlabels;
    char *labels[OP_METRICS_MAX_LABELS];
    size_t max_series, nseries;
    series_t *series;
    uint32_t *table; /* index + 1 into series, 0 = empty; open addressing */
    size_t table_mask;
    int overflow;    /* slot of the "other" series, -1 until the family is full */
};

typedef struct {
    uint64_t count, sum_us;
    uint64_t b[OP_METRICS_NBUCKETS]; /* not cumulative: rendering sums them */
} hist_t;

static op_metric_family_t *families[MAX_FAMILIES];
static size_t nfamilies;
static uint64_t counts[MAX_SCALARS];
static double gauges[MAX_SCALARS];
static size_t nscalars;
static hist_t hists[MAX_HISTOGRAMS];
static size_t nhists;

typedef struct {
    void (*fn)(void *);
    void *data;
} hook_t;
static hook_t hooks[32];
static size_t nhooks;

op_metrics_families_t op_mf;

/* Totals for `outpostctl stats`, kept as they are counted. */
static uint64_t tot_requests, tot_class[4], tot_defaults;

static char *dup_or_empty(const char *s)
{
    return op_strdup(s ? s : "");
}

op_metric_family_t *op_metrics_family(const char *name, const char *help, op_metric_type_t type,
                                      const char *labels, size_t max_series)
{
    if (nfamilies == MAX_FAMILIES)
        abort(); /* a programming error: raise MAX_FAMILIES */
    op_metric_family_t *f = op_calloc(1, sizeof *f);
    f->name = op_strdup(name);
    f->help = op_strdup(help);
    f->type = type;
    f->max_series = max_series < 2 ? 2 : max_series;
    f->overflow = -1;
    char *l = op_strdup(labels ? labels : ""), *save = NULL;
    for (char *t = strtok_r(l, ",", &save); t && f->nlabels < OP_METRICS_MAX_LABELS;
         t = strtok_r(NULL, ",", &save))
        f->labels[f->nlabels++] = op_strdup(t);
    free(l);
    size_t tsize = 16;
    while (tsize < f->max_series * 2)
        tsize *= 2;
    f->table = op_calloc(tsize, sizeof *f->table);
    f->table_mask = tsize - 1;
    f->series = op_calloc(f->max_series, sizeof *f->series);
    families[nfamilies++] = f;
    return f;
}

static uint64_t hash_values(size_t n, const char *const *v)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a: label values come from the configuration */
    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)(v[i] ? v[i] : ""); *p; p++)
            h = (h ^ *p) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
    }
    return h;
}

static int new_slot(op_metric_type_t type)
{
    if (type == OP_METRIC_HISTOGRAM) {
        if (nhists == MAX_HISTOGRAMS)
            return -1;
        return (int)nhists++;
    }
    if (nscalars == MAX_SCALARS)
        return -1;
    return (int)nscalars++;
}

static series_t *add_series(op_metric_family_t *f, const char *const *values, uint64_t h)
{
    int slot = new_slot(f->type);
    if (slot < 0)
        return NULL;
    series_t *s = &f->series[f->nseries];
    for (size_t i = 0; i < f->nlabels; i++)
        s->values[i] = dup_or_empty(values[i]);
    s->slot = slot;
    s->hash = h;
    size_t at = h & f->table_mask;
    while (f->table[at] != 0)
        at = (at + 1) & f->table_mask;
    f->table[at] = (uint32_t)(f->nseries + 1);
    f->nseries++;
    return s;
}

static series_t *overflow_series(op_metric_family_t *f)
{
    if (f->overflow < 0) {
        const char *other[OP_METRICS_MAX_LABELS] = {"other", "other", "other", "other"};
        series_t *s = add_series(f, other, hash_values(f->nlabels, other));
        if (s == NULL)
            abort(); /* the arrays hold every family's cap: raise MAX_SCALARS */
        f->overflow = (int)(s - f->series);
    }
    if (op_mf.dropped != NULL && f != op_mf.dropped) {
        const char *v[1] = {f->name};
        op_metrics_add(op_metrics_series(op_mf.dropped, v), 1);
    }
    return &f->series[f->overflow];
}

/* The series of values: found, made, or the overflow.  Its label values
 * are the registry's copies, which live as long as the process. */
static series_t *intern(op_metric_family_t *f, const char *const *values)
{
    uint64_t h = hash_values(f->nlabels, values);
    for (size_t at = h & f->table_mask; f->table[at] != 0; at = (at + 1) & f->table_mask) {
        series_t *s = &f->series[f->table[at] - 1];
        if (s->hash != h)
            continue;
        size_t i = 0;
        while (i < f->nlabels && strcmp(s->values[i], values[i] ? values[i] : "") == 0)
            i++;
        if (i == f->nlabels)
            return s;
    }
    if (f->nseries + 1 >= f->max_series) /* the last place is the overflow's */
        return overflow_series(f);
    series_t *s = add_series(f, values, h);
    return s != NULL ? s : overflow_series(f);
}

int op_metrics_series(op_metric_family_t *f, const char *const *values)
{
    return intern(f, values)->slot;
}

void op_metrics_add(int slot, uint64_t n)
{
    counts[slot] += n;
}

void op_metrics_set(int slot, double v)
{
    gauges[slot] = v;
}

void op_metrics_set_count(int slot, uint64_t n)
{
    counts[slot] = n;
}

double op_metrics_get(int slot)
{
    return gauges[slot] != 0 ? gauges[slot] : (double)counts[slot];
}

void op_metrics_observe_us(int slot, uint64_t us)
{
    hist_t *h = &hists[slot];
    h->count++;
    h->sum_us += us;
    for (int i = 0; i < OP_METRICS_NBUCKETS; i++)
        if (us <= bucket_us[i]) {
            h->b[i]++;
            return;
        }
}

void op_metrics_histogram(int slot, uint64_t *count, double *sum_s, uint64_t buckets[OP_METRICS_NBUCKETS])
{
    const hist_t *h = &hists[slot];
    uint64_t cum = 0;
    for (int i = 0; i < OP_METRICS_NBUCKETS; i++)
        buckets[i] = cum += h->b[i];
    *count = h->count;
    *sum_s = (double)h->sum_us / 1e6;
}

void op_metrics_on_collect(void (*fn)(void *data), void *data)
{
    if (nhooks < sizeof hooks / sizeof hooks[0])
        hooks[nhooks++] = (hook_t){fn, data};
}

void op_metrics_off_collect(void (*fn)(void *data), void *data)
{
    for (size_t i = 0; i < nhooks; i++)
        if (hooks[i].fn == fn && hooks[i].data == data) {
            hooks[i] = hooks[--nhooks];
            return;
        }
}

void op_metrics_collect(void)
{
    for (size_t i = 0; i < nhooks; i++)
        hooks[i].fn(hooks[i].data);
}

void op_metrics_each(const op_metric_family_t *f, op_metrics_each_cb fn, void *data)
{
    for (size_t i = 0; i < f->nseries; i++)
        fn((const char *const *)f->series[i].values, f->series[i].slot, data);
}

const char *op_metrics_family_name(const op_metric_family_t *f)
{
    return f->name;
}

/* ---- rendering ---- */

/* A label value as the text format wants it: \\, \" and \n escaped. */
static void put_value(op_sb_t *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            op_sb_printf(b, "\\%c", *v);
        else if (*v == '\n')
            op_sb_printf(b, "\\n");
        else
            op_sb_printf(b, "%c", *v);
    }
}

static void put_labels(op_sb_t *b, const op_metric_family_t *f, const series_t *s, const char *le)
{
    if (f->nlabels == 0 && le == NULL)
        return;
    op_sb_printf(b, "{");
    for (size_t i = 0; i < f->nlabels; i++) {
        op_sb_printf(b, "%s%s=\"", i ? "," : "", f->labels[i]);
        put_value(b, s->values[i]);
        op_sb_printf(b, "\"");
    }
    if (le != NULL)
        op_sb_printf(b, "%sle=\"%s\"", f->nlabels ? "," : "", le);
    op_sb_printf(b, "}");
}

static void put_number(op_sb_t *b, double v)
{
    if (v == (double)(int64_t)v && v < 9e15 && v > -9e15)
        op_sb_printf(b, "%lld\n", (long long)v);
    else
        op_sb_printf(b, "%.9g\n", v);
}

static void render_family(op_sb_t *b, const op_metric_family_t *f)
{
    static const char *const type_name[] = {"counter", "gauge", "histogram"};
    op_sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, type_name[f->type]);
    for (size_t i = 0; i < f->nseries; i++) {
        const series_t *s = &f->series[i];
        if (f->type == OP_METRIC_COUNTER) {
            op_sb_printf(b, "%s", f->name);
            put_labels(b, f, s, NULL);
            op_sb_printf(b, " %llu\n", (unsigned long long)counts[s->slot]);
        } else if (f->type == OP_METRIC_GAUGE) {
            op_sb_printf(b, "%s", f->name);
            put_labels(b, f, s, NULL);
            op_sb_printf(b, " ");
            put_number(b, gauges[s->slot]);
        } else {
            uint64_t count, cum[OP_METRICS_NBUCKETS];
            double sum;
            op_metrics_histogram(s->slot, &count, &sum, cum);
            for (int k = 0; k < OP_METRICS_NBUCKETS; k++) {
                char le[32];
                snprintf(le, sizeof le, "%g", op_metrics_bucket_le[k]);
                op_sb_printf(b, "%s_bucket", f->name);
                put_labels(b, f, s, le);
                op_sb_printf(b, " %llu\n", (unsigned long long)cum[k]);
            }
            op_sb_printf(b, "%s_bucket", f->name);
            put_labels(b, f, s, "+Inf");
            op_sb_printf(b, " %llu\n%s_sum", (unsigned long long)count, f->name);
            put_labels(b, f, s, NULL);
            op_sb_printf(b, " %.6f\n%s_count", sum, f->name);
            put_labels(b, f, s, NULL);
            op_sb_printf(b, " %llu\n", (unsigned long long)count);
        }
    }
}

char *op_metrics_render(size_t *len)
{
    op_metrics_collect();
    op_sb_t b;
    op_sb_init(&b, 65536);
    for (size_t i = 0; i < nfamilies; i++)
        render_family(&b, families[i]);
    *len = b.n;
    return b.p;
}

/* ---- the engine's families ---- */

void op_metrics_init(void)
{
    if (op_mf.requests != NULL)
        return;
    op_mf.dropped = op_metrics_family(
        "outpost_metrics_series_dropped_total",
        "Label tuples counted in a family's \"other\" series because the family was full.",
        OP_METRIC_COUNTER, "family", MAX_FAMILIES);
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
    for (size_t i = 0; i < nfamilies; i++) {
        op_metric_family_t *f = families[i];
        for (size_t k = 0; k < f->nseries; k++)
            for (size_t j = 0; j < f->nlabels; j++)
                free(f->series[k].values[j]);
        for (size_t j = 0; j < f->nlabels; j++)
            free(f->labels[j]);
        free(f->series);
        free(f->table);
        free(f->name);
        free(f->help);
        free(f);
    }
    nfamilies = nscalars = nhists = 0;
    memset(counts, 0, sizeof counts);
    memset(gauges, 0, sizeof gauges);
    memset(hists, 0, sizeof hists);
    memset(&op_mf, 0, sizeof op_mf);
    tot_requests = tot_defaults = 0;
    memset(tot_class, 0, sizeof tot_class);
    nhooks = 0;
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
    gauges[op_mf.inflight->series[0].slot] += 1;
    tot_requests++;
    /* The service's name as the registry keeps it: the configuration's
     * string may be freed by a reload before the request answers. */
    series_t *h = intern(op_mf.request_seconds, s);
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
        gauges[op_mf.inflight->series[0].slot] -= 1;
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
        gauges[op_mf.inflight->series[0].slot] -= 1;
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
