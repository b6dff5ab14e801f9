/* Sliding-window arithmetic of the counters, without storage: which bucket
 * a moment falls in, which buckets a window covers, and what a window's
 * buckets mean for a maximum (used, remaining, when the next slot frees).
 *
 * A window of W seconds at resolution R keeps W/R buckets of R seconds.
 * At time t the window is the bucket holding t and the W/R - 1 before it,
 * so it reaches back between W - R and W seconds: exact at resolution R.
 * Buckets after the current one (written before the clock jumped
 * backwards) still count: a clock step must never free slots. */
#ifndef OP_COUNTER_WINDOW_H
#define OP_COUNTER_WINDOW_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t resolution; /* seconds per bucket, >= 1 */
    int64_t nbuckets;   /* window / resolution, >= 1 */
} op_window_t;

typedef struct {
    int64_t bucket;     /* time / resolution */
    int64_t count;
} op_bucket_t;

typedef struct {
    int64_t used;       /* sum of the window's buckets */
    int64_t remaining;  /* max - used, at least 0 */
    int64_t next_free;  /* epoch second from which `want` more fit; now when they fit now;
                           -1 when they never will (want > max) */
} op_window_sum_t;

/* The bucket holding second `now` (floor division, also for now < 0). */
int64_t op_window_bucket(const op_window_t *w, int64_t now);

/* The oldest bucket still in the window at `now`. */
int64_t op_window_first(const op_window_t *w, int64_t now);

/* The second at which bucket b leaves the window. */
int64_t op_window_leaves(const op_window_t *w, int64_t b);

/* Sums buckets (ascending by bucket; those before op_window_first are
 * ignored) against max for `want` more. */
void op_window_sum(const op_window_t *w, int64_t now, const op_bucket_t *b, size_t n,
                   int64_t max, int64_t want, op_window_sum_t *out);

#endif
