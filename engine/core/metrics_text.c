/* The Prometheus text exposition format (0.0.4) of the registry's
 * families (metrics.h: op_metrics_render), which the endpoint
 * (engine/metrics/) serves: HELP and TYPE lines, escaped label values,
 * cumulative histogram buckets. */
#include "core/metrics.h"
#include "core/metrics_registry.h"

#include "lib/strbuf.h"

#include <stdio.h>
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

static void put_labels(op_sb_t *b, const op_metric_family_t *f, const op_metric_series_t *s, const char *le)
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
        const op_metric_series_t *s = &f->series[i];
        if (f->type == OP_METRIC_COUNTER) {
            op_sb_printf(b, "%s", f->name);
            put_labels(b, f, s, NULL);
            op_sb_printf(b, " %llu\n", (unsigned long long)op__metrics_counts[s->slot]);
        } else if (f->type == OP_METRIC_GAUGE) {
            op_sb_printf(b, "%s", f->name);
            put_labels(b, f, s, NULL);
            op_sb_printf(b, " ");
            put_number(b, op__metrics_gauges[s->slot]);
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
    for (size_t i = 0; i < op__metrics_nfamilies; i++)
        render_family(&b, op__metrics_families[i]);
    *len = b.n;
    return b.p;
}
