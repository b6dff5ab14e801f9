/* What the three files of the metrics registry share, and nothing else
 * includes: the registry (metrics.c) owns these arrays, the text rendering
 * (metrics_text.c) reads them, the engine's families (metrics_engine.c)
 * bump the in-flight gauge and keep a series' name without a second
 * lookup.  Everything else goes through metrics.h. */
#ifndef OP_METRICS_REGISTRY_H
#define OP_METRICS_REGISTRY_H

#include "core/metrics.h"

#include <stddef.h>
#include <stdint.h>

#define OP__METRICS_MAX_FAMILIES 48
#define OP__METRICS_MAX_SCALARS 16384

typedef struct {
    char *values[OP_METRICS_MAX_LABELS];
    int slot;
    uint64_t hash;
} op_metric_series_t;

struct op_metric_family {
    char *name, *help;
    op_metric_type_t type;
    size_t nlabels;
    char *labels[OP_METRICS_MAX_LABELS];
    size_t max_series, nseries;
    op_metric_series_t *series;
    uint32_t *table; /* index + 1 into series, 0 = empty; open addressing */
    size_t table_mask;
    int overflow;    /* slot of the "other" series, -1 until the family is full */
};

extern op_metric_family_t *op__metrics_families[OP__METRICS_MAX_FAMILIES];
extern size_t op__metrics_nfamilies;
extern uint64_t op__metrics_counts[OP__METRICS_MAX_SCALARS];
extern double op__metrics_gauges[OP__METRICS_MAX_SCALARS];

/* The series of values if f has it, else NULL. */
op_metric_series_t *op__metrics_find(const op_metric_family_t *f, const char *const *values);
/* Whether a new series of f would be its overflow series. */
int op__metrics_full(const op_metric_family_t *f);
/* The series of values: found, made, or the overflow.  Its label values
 * are the registry's copies, which live as long as the process. */
op_metric_series_t *op__metrics_intern(op_metric_family_t *f, const char *const *values);

/* Frees every family and forgets every value and collect hook
 * (op_metrics_reset, for the tests). */
void op__metrics_registry_reset(void);

#endif
