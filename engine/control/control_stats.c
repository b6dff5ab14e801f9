/* `outpostctl stats` (control.h): the registry's numbers for a person
 * (core/metrics.h): rates over the last minute and since start, the checks
 * that refused most, latency per service, the dependencies' health. */
#include "control/control.h"

#include "core/mem.h"
#include "core/metrics.h"
#include "core/services.h"
#include "counters/counters.h"
#include "lib/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- reading the families ---- */

typedef struct {
    char service[72], check[72], cls[16];
    uint64_t n;
} refusal_t;

typedef struct {
    refusal_t v[256];
    size_t n;
} refusals_t;

static void each_refusal(const char *const *v, int slot, void *data)
{
    refusals_t *r = data;
    uint64_t n = (uint64_t)op_metrics_get(slot);
    if (n == 0 || r->n == sizeof r->v / sizeof r->v[0] ||
        (strcmp(v[2], "reject") != 0 && strcmp(v[2], "defer") != 0))
        return;
    refusal_t *x = &r->v[r->n++];
    snprintf(x->service, sizeof x->service, "%s", v[0]);
    snprintf(x->check, sizeof x->check, "%s", v[1]);
    snprintf(x->cls, sizeof x->cls, "%s", v[2]);
    x->n = n;
}

static int by_count(const void *a, const void *b)
{
    uint64_t x = ((const refusal_t *)a)->n, y = ((const refusal_t *)b)->n;
    return x < y ? 1 : x > y ? -1 : 0;
}

typedef struct {
    const char *label; /* first label to match, NULL: every series */
    double sum;
    int found;
} sum_t;

static void each_sum(const char *const *v, int slot, void *data)
{
    sum_t *s = data;
    if (s->label == NULL || strcmp(v[0], s->label) == 0) {
        s->sum += op_metrics_get(slot);
        s->found = 1;
    }
}

static double sum_of(const op_metric_family_t *f, const char *label)
{
    sum_t s = {label, 0, 0};
    op_metrics_each(f, each_sum, &s);
    return s.sum;
}

/* The upper bound of the bucket the q-quantile falls in, or -1. */
static double quantile_le(int slot, double q, uint64_t *count, double *sum)
{
    uint64_t cum[OP_METRICS_NBUCKETS];
    op_metrics_histogram(slot, count, sum, cum);
    if (*count == 0)
        return -1;
    for (int i = 0; i < OP_METRICS_NBUCKETS; i++)
        if ((double)cum[i] >= q * (double)*count)
            return op_metrics_bucket_le[i];
    return 1e9; /* over the last bound */
}

typedef struct {
    op_sb_t *b;
    int json, first;
} emit_t;

static void each_latency(const char *const *v, int slot, void *data)
{
    emit_t *e = data;
    uint64_t count;
    double sum, le = quantile_le(slot, 0.99, &count, &sum);
    double mean_ms = count ? sum * 1000 / (double)count : 0;
    char p99[32];
    if (le < 0)
        snprintf(p99, sizeof p99, "-");
    else if (le > 1e8)
        snprintf(p99, sizeof p99, "> 10 s");
    else
        snprintf(p99, sizeof p99, "<= %g ms", le * 1000);
    if (e->json) {
        op_sb_printf(e->b, "%s{\"service\":", e->first ? "" : ",");
        op_sb_json(e->b, v[0]);
        op_sb_printf(e->b, ",\"requests\":%llu,\"mean_ms\":%.3f,\"p99_le_ms\":", (unsigned long long)count, mean_ms);
        if (le < 0 || le > 1e8)
            op_sb_printf(e->b, "null}");
        else
            op_sb_printf(e->b, "%g}", le * 1000);
    } else {
        op_sb_printf(e->b, "  %-20s %10llu %10.3f  %s\n", v[0], (unsigned long long)count, mean_ms, p99);
    }
    e->first = 0;
}

static void each_ldap(const char *const *v, int slot, void *data)
{
    emit_t *e = data;
    if (e->json) {
        op_sb_printf(e->b, "%s{\"server\":", e->first ? "" : ",");
        op_sb_json(e->b, v[0]);
        op_sb_printf(e->b, ",\"connections_up\":%.0f}", op_metrics_get(slot));
    } else {
        op_sb_printf(e->b, "  ldap %-40s %s (%.0f connections up)\n", v[0],
            op_metrics_get(slot) > 0 ? "up" : "DOWN", op_metrics_get(slot));
    }
    e->first = 0;
}

static void each_dep(const char *const *v, int slot, void *data)
{
    emit_t *e = data;
    double ops = op_metrics_get(slot), errors = sum_of(op_mf.dep_errors, v[0]);
    double hits = sum_of(op_mf.cache_hits, v[0]), misses = sum_of(op_mf.cache_misses, v[0]);
    double entries = sum_of(op_mf.cache_entries, v[0]);
    if (e->json) {
        op_sb_printf(e->b, "%s{\"dependency\":", e->first ? "" : ",");
        op_sb_json(e->b, v[0]);
        op_sb_printf(e->b, ",\"operations\":%.0f,\"errors\":%.0f,\"cache_hits\":%.0f,\"cache_misses\":%.0f,"
                  "\"cache_entries\":%.0f}", ops, errors, hits, misses, entries);
    } else {
        op_sb_printf(e->b, "  %-10s %10.0f %8.0f %10.0f %10.0f %9.0f\n", v[0], ops, errors, hits, misses, entries);
    }
    e->first = 0;
}

/* ---- the answer ---- */

static double rate(uint64_t now, uint64_t then, double secs)
{
    return secs > 0 ? (double)(now - then) / secs : 0;
}

char *op__control_stats(int json)
{
    op_sb_t b;
    op_sb_init(&b, 4096);
    op_metrics_init();
    op_metrics_collect();
    double now = (double)time(NULL);
    op_metrics_snap_t cur, zero;
    memset(&zero, 0, sizeof zero);
    op_metrics_snapshot(&cur, now);
    const op_metrics_snap_t *ago = op_metrics_minute_ago(now);
    double started = sum_of(op_mf.start_time, NULL), up = now - started;
    double minute = ago ? now - ago->t : 0;
    static const char *const cls[4] = {"accept", "reject", "defer", "other"};
    op_counters_t *c = op_services ? op_services->counters : NULL;
    const char *health = c ? op_counters_health(c) : NULL;
    refusals_t *rf = op_calloc(1, sizeof *rf);
    op_metrics_each(op_mf.answers, each_refusal, rf);
    qsort(rf->v, rf->n, sizeof rf->v[0], by_count);
    size_t top = rf->n < 10 ? rf->n : 10;
    emit_t e = {&b, json, 1};

    if (json) {
        op_sb_printf(&b, "ok\n{\"uptime_s\":%.0f,\"generation\":%.0f,\"in_flight\":%.0f,\"connections\":%.0f,",
            up, sum_of(op_mf.generation, NULL), sum_of(op_mf.inflight, NULL),
            sum_of(op_mf.connections, NULL));
        op_sb_printf(&b, "\"totals\":{\"requests\":%llu", (unsigned long long)cur.requests);
        for (int i = 0; i < 4; i++)
            op_sb_printf(&b, ",\"%s\":%llu", cls[i], (unsigned long long)cur.answers[i]);
        op_sb_printf(&b, ",\"default\":%llu},\"per_second_since_start\":{\"requests\":%.3f",
            (unsigned long long)cur.defaults, rate(cur.requests, 0, up));
        for (int i = 0; i < 4; i++)
            op_sb_printf(&b, ",\"%s\":%.3f", cls[i], rate(cur.answers[i], 0, up));
        op_sb_printf(&b, ",\"default\":%.3f},\"per_second_last_minute\":", rate(cur.defaults, 0, up));
        if (ago == NULL) {
            op_sb_printf(&b, "null");
        } else {
            op_sb_printf(&b, "{\"seconds\":%.0f,\"requests\":%.3f", minute, rate(cur.requests, ago->requests, minute));
            for (int i = 0; i < 4; i++)
                op_sb_printf(&b, ",\"%s\":%.3f", cls[i], rate(cur.answers[i], ago->answers[i], minute));
            op_sb_printf(&b, ",\"default\":%.3f}", rate(cur.defaults, ago->defaults, minute));
        }
        op_sb_printf(&b, ",\"top_refusing_checks\":[");
        for (size_t i = 0; i < top; i++) {
            op_sb_printf(&b, "%s{\"service\":", i ? "," : "");
            op_sb_json(&b, rf->v[i].service);
            op_sb_printf(&b, ",\"check\":");
            op_sb_json(&b, rf->v[i].check);
            op_sb_printf(&b, ",\"class\":\"%s\",\"answers\":%llu}", rf->v[i].cls, (unsigned long long)rf->v[i].n);
        }
        op_sb_printf(&b, "],\"latency\":[");
        op_metrics_each(op_mf.request_seconds, each_latency, &e);
        op_sb_printf(&b, "],\"ldap_servers\":[");
        e.first = 1;
        op_metrics_each(op_mf.ldap_up, each_ldap, &e);
        op_sb_printf(&b, "],\"dependencies\":[");
        e.first = 1;
        op_metrics_each(op_mf.dep_ops, each_dep, &e);
        op_sb_printf(&b, "],\"counters_store\":\"%s\"}\n", c == NULL ? "off" : health ? "failing" : "ok");
    } else {
        op_sb_printf(&b, "ok\nuptime %.0fs, generation %.0f, %.0f connections open, %.0f requests in flight\n\n",
            up, sum_of(op_mf.generation, NULL), sum_of(op_mf.connections, NULL),
            sum_of(op_mf.inflight, NULL));
        op_sb_printf(&b, "%-10s %12s %14s %14s\n", "per second", "total", "last minute", "since start");
        op_sb_printf(&b, "%-10s %12llu ", "requests", (unsigned long long)cur.requests);
        if (ago)
            op_sb_printf(&b, "%14.2f", rate(cur.requests, ago->requests, minute));
        else
            op_sb_printf(&b, "%14s", "-");
        op_sb_printf(&b, " %14.2f\n", rate(cur.requests, 0, up));
        for (int i = 0; i <= 4; i++) {
            uint64_t n = i < 4 ? cur.answers[i] : cur.defaults;
            uint64_t then = ago == NULL ? 0 : i < 4 ? ago->answers[i] : ago->defaults;
            op_sb_printf(&b, "%-10s %12llu ", i < 4 ? cls[i] : "default", (unsigned long long)n);
            if (ago)
                op_sb_printf(&b, "%14.2f", rate(n, then, minute));
            else
                op_sb_printf(&b, "%14s", "-");
            op_sb_printf(&b, " %14.2f\n", rate(n, 0, up));
        }
        op_sb_printf(&b, "(default: the service's default action or a fixed answer: deadline, policy "
                "error, no service, ...)\n\ntop refusing checks since start\n");
        if (top == 0)
            op_sb_printf(&b, "  none\n");
        for (size_t i = 0; i < top; i++)
            op_sb_printf(&b, "  %10llu  %-6s  %-20s %s\n", (unsigned long long)rf->v[i].n, rf->v[i].cls,
                rf->v[i].service, rf->v[i].check);
        op_sb_printf(&b, "\nlatency since start\n  %-20s %10s %10s  %s\n", "service", "requests", "mean ms", "p99");
        op_metrics_each(op_mf.request_seconds, each_latency, &e);
        op_sb_printf(&b, "\ndependencies\n");
        op_metrics_each(op_mf.ldap_up, each_ldap, &e);
        op_sb_printf(&b, "  %-10s %10s %8s %10s %10s %9s\n", "lookup", "operations", "errors", "cache hits",
            "misses", "entries");
        op_metrics_each(op_mf.dep_ops, each_dep, &e);
        op_sb_printf(&b, "  counters store: %s%s\n", c == NULL ? "off" : health ? "FAILING: " : "ok",
            health ? health : "");
    }
    free(rf);
    return b.p;
}
