#include "counters/counter_window.h"

int64_t op_window_bucket(const op_window_t *w, int64_t now)
{
    int64_t q = now / w->resolution;
    return (now % w->resolution != 0 && now < 0) ? q - 1 : q;
}

int64_t op_window_first(const op_window_t *w, int64_t now)
{
    return op_window_bucket(w, now) - w->nbuckets + 1;
}

int64_t op_window_leaves(const op_window_t *w, int64_t b)
{
    return (b + w->nbuckets) * w->resolution;
}

void op_window_sum(const op_window_t *w, int64_t now, const op_bucket_t *b, size_t n,
                   int64_t max, int64_t want, op_window_sum_t *out)
{
    int64_t first = op_window_first(w, now), used = 0;
    for (size_t i = 0; i < n; i++)
        if (b[i].bucket >= first && b[i].count > 0)
            used += b[i].count;
    out->used = used;
    out->remaining = used < max ? max - used : 0;
    if (want > max) {
        out->next_free = -1;
        return;
    }
    if (used + want <= max) {
        out->next_free = now;
        return;
    }
    /* Old buckets leave one by one; the first moment enough have left. */
    int64_t left = used;
    for (size_t i = 0; i < n; i++) {
        if (b[i].bucket < first || b[i].count <= 0)
            continue;
        left -= b[i].count;
        if (left + want <= max) {
            int64_t t = op_window_leaves(w, b[i].bucket);
            out->next_free = t > now ? t : now;
            return;
        }
    }
    out->next_free = -1; /* not reached: when every bucket left, used is 0 */
}
