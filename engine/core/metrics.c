/* The metrics registry (metrics.h): families of series, each series a slot
 * in fixed arrays, bumped on the loop thread without locks or allocation.
 * The text format is metrics_text.c; the engine's own families, the
 * request path's recording and the last minute are metrics_engine.c. */
#include "core/metrics.h"
#include "core/metrics_registry.h"

#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

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
    uint64_t count, sum_us;
    uint64_t b[OP_METRICS_NBUCKETS]; /* not cumulative: rendering sums them */
} hist_t;

op_metric_family_t *op__metrics_families[OP__METRICS_MAX_FAMILIES];
size_t op__metrics_nfamilies;
uint64_t op__metrics_counts[OP__METRICS_MAX_SCALARS];
double op__metrics_gauges[OP__METRICS_MAX_SCALARS];
static size_t nscalars;
static hist_t hists[MAX_HISTOGRAMS];
static size_t nhists;

typedef struct {
    void (*fn)(void *);
    void *data;
} hook_t;
static hook_t hooks[32];
static size_t nhooks;


static char *dup_or_empty(const char *s)
{
    return op_strdup(s ? s : "");
}

op_metric_family_t *op_metrics_family(const char *name, const char *help, op_metric_type_t type,
                                      const char *labels, size_t max_series)
{
    if (op__metrics_nfamilies == OP__METRICS_MAX_FAMILIES)
        abort(); /* a programming error: raise OP__METRICS_MAX_FAMILIES */
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
    op__metrics_families[op__metrics_nfamilies++] = f;
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
    if (nscalars == OP__METRICS_MAX_SCALARS)
        return -1;
    return (int)nscalars++;
}

static op_metric_series_t *add_series(op_metric_family_t *f, const char *const *values, uint64_t h)
{
    int slot = new_slot(f->type);
    if (slot < 0)
        return NULL;
    op_metric_series_t *s = &f->series[f->nseries];
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

static op_metric_series_t *overflow_series(op_metric_family_t *f)
{
    if (f->overflow < 0) {
        const char *other[OP_METRICS_MAX_LABELS] = {"other", "other", "other", "other"};
        op_metric_series_t *s = add_series(f, other, hash_values(f->nlabels, other));
        if (s == NULL)
            abort(); /* the arrays hold every family's cap: raise OP__METRICS_MAX_SCALARS */
        f->overflow = (int)(s - f->series);
    }
    if (op_mf.dropped != NULL && f != op_mf.dropped) {
        const char *v[1] = {f->name};
        op_metrics_add(op_metrics_series(op_mf.dropped, v), 1);
    }
    return &f->series[f->overflow];
}

op_metric_series_t *op__metrics_find(const op_metric_family_t *f, const char *const *values)
{
    uint64_t h = hash_values(f->nlabels, values);
    for (size_t at = h & f->table_mask; f->table[at] != 0; at = (at + 1) & f->table_mask) {
        op_metric_series_t *s = &f->series[f->table[at] - 1];
        if (s->hash != h)
            continue;
        size_t i = 0;
        while (i < f->nlabels && strcmp(s->values[i], values[i] ? values[i] : "") == 0)
            i++;
        if (i == f->nlabels)
            return s;
    }
    return NULL;
}

int op__metrics_full(const op_metric_family_t *f)
{
    return f->nseries + 1 >= f->max_series; /* the last place is the overflow's */
}

op_metric_series_t *op__metrics_intern(op_metric_family_t *f, const char *const *values)
{
    op_metric_series_t *s = op__metrics_find(f, values);
    if (s != NULL)
        return s;
    if (op__metrics_full(f))
        return overflow_series(f);
    s = add_series(f, values, hash_values(f->nlabels, values));
    return s != NULL ? s : overflow_series(f);
}

int op_metrics_series(op_metric_family_t *f, const char *const *values)
{
    return op__metrics_intern(f, values)->slot;
}

void op_metrics_add(int slot, uint64_t n)
{
    op__metrics_counts[slot] += n;
}

void op_metrics_set(int slot, double v)
{
    op__metrics_gauges[slot] = v;
}

void op_metrics_set_count(int slot, uint64_t n)
{
    op__metrics_counts[slot] = n;
}

double op_metrics_get(int slot)
{
    return op__metrics_gauges[slot] != 0 ? op__metrics_gauges[slot] : (double)op__metrics_counts[slot];
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

void op__metrics_registry_reset(void)
{
    for (size_t i = 0; i < op__metrics_nfamilies; i++) {
        op_metric_family_t *f = op__metrics_families[i];
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
    op__metrics_nfamilies = nscalars = nhists = 0;
    memset(op__metrics_counts, 0, sizeof op__metrics_counts);
    memset(op__metrics_gauges, 0, sizeof op__metrics_gauges);
    memset(hists, 0, sizeof hists);
    nhooks = 0;
}
