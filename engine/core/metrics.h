/* The metrics registry: counters, gauges and histograms that the rest of
 * the engine bumps and that the Prometheus endpoint (engine/metrics/) and
 * `outpostctl stats` (control/) read.
 *
 * outpostd serves everything on one loop thread (the thread pool's work
 * reports back through after-work callbacks on the loop), so a value is a
 * plain integer: no lock, no atomic.  Never call these from another thread.
 *
 * A series (one family, one tuple of label values) is a slot, an index
 * into fixed arrays.  Services resolve their slots once, when they start;
 * so do listeners, for the labels of their own binding (op_metrics_route);
 * a request routed elsewhere by its policy_context resolves its labels
 * through a small hash table (no allocation once a tuple has been seen).
 * Every family has a cap on its series: past it a new tuple counts in the
 * family's overflow series, whose labels all read "other", and in
 * outpost_metrics_series_dropped_total.
 * Labels are names from the configuration or from the code (services,
 * tenants, listeners, check ids, dependencies), never a user, an address
 * or an IP. */
#ifndef OP_METRICS_H
#define OP_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { OP_METRIC_COUNTER, OP_METRIC_GAUGE, OP_METRIC_HISTOGRAM } op_metric_type_t;

typedef struct op_metric_family op_metric_family_t;

#define OP_METRICS_MAX_LABELS 4
/* The histograms' upper bounds, seconds: a policy answer from memory takes
 * ~0.1 ms, a lookup a few ms, a slow LDAP server or a DKIM key seconds, and
 * the default deadline is 10 s. */
#define OP_METRICS_NBUCKETS 16
extern const double op_metrics_bucket_le[OP_METRICS_NBUCKETS];

/* A family: name, help text, type, label names ("service,check,class", ""
 * for none) and the most series it may hold (the overflow series
 * included).  Families are made once, at start (op_metrics_init). */
op_metric_family_t *op_metrics_family(const char *name, const char *help, op_metric_type_t type,
                                      const char *labels, size_t max_series);

/* The slot of the series with these label values (as many as the family
 * has labels; NULL reads ""), made on first use; the overflow series once
 * the family is full.  Never fails. */
int op_metrics_series(op_metric_family_t *f, const char *const *values);

/* Counters and gauges. */
void op_metrics_add(int slot, uint64_t n);
void op_metrics_set(int slot, double v);
/* A counter kept elsewhere (the lookup caches' own counts), copied at
 * collect time. */
void op_metrics_set_count(int slot, uint64_t n);
double op_metrics_get(int slot);
/* Histograms: one observation of us microseconds. */
void op_metrics_observe_us(int slot, uint64_t us);
void op_metrics_histogram(int slot, uint64_t *count, double *sum_s, uint64_t buckets[OP_METRICS_NBUCKETS]);

/* Gauges that are cheaper to read when asked (connections open, cache
 * entries, LDAP servers up): fn sets them before a scrape or a stats. */
void op_metrics_on_collect(void (*fn)(void *data), void *data);
void op_metrics_off_collect(void (*fn)(void *data), void *data);
void op_metrics_collect(void);

/* Every series of f, in the order they were made. */
typedef void (*op_metrics_each_cb)(const char *const *values, int slot, void *data);
void op_metrics_each(const op_metric_family_t *f, op_metrics_each_cb fn, void *data);
const char *op_metrics_family_name(const op_metric_family_t *f);

/* The Prometheus text format (0.0.4) of every family, collect hooks run
 * first; the caller frees the text. */
char *op_metrics_render(size_t *len);

/* ---- The engine's families, made by op_metrics_init ---- */

typedef struct {
    op_metric_family_t *requests, *answers, *default_answers, *request_seconds;
    op_metric_family_t *inflight, *connections, *connections_refused;
    op_metric_family_t *dep_ops, *dep_errors, *dep_seconds;
    op_metric_family_t *cache_hits, *cache_misses, *cache_entries, *cache_coalesced;
    op_metric_family_t *ldap_up, *reloads, *generation, *generation_loaded, *lua_memory;
    op_metric_family_t *counter_writes, *counter_write_errors, *counter_write_seconds;
    op_metric_family_t *milter_phases, *dropped, *start_time;
} op_metrics_families_t;

extern op_metrics_families_t op_mf;

/* Makes the families (idempotent); the daemon, `outpostd test` and the
 * tests call it before anything counts. */
void op_metrics_init(void);
/* Forgets every series and value (tests). */
void op_metrics_reset(void);

/* One request of a protocol ("policy", "milter") on a listener for a
 * service and tenant: counted, and in flight until its answer. */
typedef struct {
    int service;   /* slot of its latency histogram, -1 before op_metrics_request */
    const char *service_name; /* the registry's copy: outlives a reload */
    int svc;       /* the service's place in that family: keys its answer series */
} op_metrics_req_t;
op_metrics_req_t op_metrics_request(const char *listener, const char *service, const char *tenant,
                                    const char *protocol);
/* The same labels resolved once instead of per request: a listener
 * resolves its own binding (listener, service, tenant, protocol) when it
 * is bound and at each reload, and its requests count through the route
 * without hashing a label (op_metrics_request stays for a policy_context
 * that picks another service per request).  A route is the registry's,
 * like a series: it outlives a reload, and one is made per distinct label
 * set (NULL past 1,024: look the labels up).  Its slots are resolved at
 * its first request, so no series shows before it counts. */
typedef struct op_metrics_route op_metrics_route_t;
op_metrics_route_t *op_metrics_route(const char *listener, const char *service, const char *tenant,
                                     const char *protocol);
op_metrics_req_t op_metrics_request_on(op_metrics_route_t *r);
/* Its answer: the action text (its class: accept, reject, defer, other),
 * the check id that decided ("-": none), the reason ("policy", or the cause
 * of a default action) and how long it took. */
void op_metrics_answer(op_metrics_req_t r, const char *action, size_t action_len, const char *check,
                       const char *reason, uint64_t elapsed_us);
/* A milter phase ("connect", ..., "eom") run by a service's handler: a
 * request of protocol "milter", and counted by phase. */
op_metrics_req_t op_metrics_milter_phase(const char *listener, const char *service,
                                         const char *tenant, const char *phase);
/* The same through the listener's route; number is the phase's (vm.h's
 * op_phase_t), which keys its series in the route. */
op_metrics_req_t op_metrics_milter_phase_on(op_metrics_route_t *r, unsigned number,
                                            const char *phase);
/* A request that ended without an answer (its client went away). */
void op_metrics_request_gone(op_metrics_req_t r);

/* "accept", "reject", "defer" or "other" for a Postfix action text. */
const char *op_metrics_class(const char *action, size_t len);
/* The check-id label: id itself while fewer than OP_METRICS_MAX_CHECKS ids
 * were seen, "other" after; "-" when no check decided. */
#define OP_METRICS_MAX_CHECKS 64
const char *op_metrics_check_label(const char *check);

/* A dependency (ldap, dns, smtp, counters, clamd, rspamd, dkim): its slots. */
typedef struct {
    int ops, seconds;
    const char *name;
} op_metrics_dep_t;
op_metrics_dep_t op_metrics_dep(const char *name);
/* One operation ended after us microseconds; kind NULL: success, else its
 * error kind ("timeout", "servfail", "unavailable", ...: a fixed token). */
void op_metrics_dep_done(const op_metrics_dep_t *d, uint64_t us, const char *kind);

/* One write of the counters store (a group commit of rocksdb) ended after
 * us microseconds, failed or not. */
void op_metrics_counter_write(const char *backend, uint64_t us, int failed);

/* A connection refused at accept, with session.c's reason text: counted
 * as "overload" (a max_connections or max_per_peer cap), "allow_from" or
 * "shutdown". */
void op_metrics_connection_refused(const char *why);

/* A reload's result: "ok", "failed". */
void op_metrics_reload(const char *result);

/* ---- `outpostctl stats`: totals kept each 10 s for the last minute ---- */
#define OP_METRICS_RING 7 /* 6 intervals of 10 s */
typedef struct {
    double t;                 /* seconds since the epoch */
    uint64_t requests;
    uint64_t answers[4];      /* accept, reject, defer, other */
    uint64_t defaults;        /* default-action answers */
} op_metrics_snap_t;
void op_metrics_snapshot(op_metrics_snap_t *s, double now);
/* Called every 10 s by the daemon's timer. */
void op_metrics_tick(double now);
/* The oldest kept snapshot at most ~60 s old, or NULL. */
const op_metrics_snap_t *op_metrics_minute_ago(double now);

#endif
