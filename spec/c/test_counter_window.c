/* Window arithmetic (counter_window.h): bucket edges, windows over
 * midnight, clocks that jump backwards, when the next slot frees. */
#include "counters/counter_window.h"
#include "ctest.h"

static const op_window_t day15 = {900, 96}; /* 24 h in 15-minute buckets */
#define DAY 86400
#define MIDNIGHT (20000 * (int64_t)DAY) /* some midnight UTC */

CTEST(bucket_edges)
{
    CHECK_INT(op_window_bucket(&day15, 0), 0);
    CHECK_INT(op_window_bucket(&day15, 899), 0);
    CHECK_INT(op_window_bucket(&day15, 900), 1);
    CHECK_INT(op_window_bucket(&day15, 1799), 1);
    CHECK_INT(op_window_bucket(&day15, -1), -1);
    CHECK_INT(op_window_bucket(&day15, -900), -1);
    CHECK_INT(op_window_bucket(&day15, -901), -2);
    CHECK_INT(op_window_first(&day15, 96 * 900), 1);
    CHECK_INT(op_window_first(&day15, 96 * 900 - 1), 0);
    CHECK_INT(op_window_leaves(&day15, 0), 96 * 900);
}

CTEST(bucket_at_window_start_counts_one_before_does_not)
{
    int64_t now = MIDNIGHT + 12345;
    int64_t first = op_window_first(&day15, now);
    op_bucket_t b[] = {{first - 1, 7}, {first, 3}, {op_window_bucket(&day15, now), 2}};
    op_window_sum_t s;
    op_window_sum(&day15, now, b, 3, 10, 1, &s);
    CHECK_INT(s.used, 5);
    CHECK_INT(s.remaining, 5);
    CHECK_INT(s.next_free, now);
}

CTEST(window_slides_over_midnight)
{
    /* 4 at 23:50 the day before, 6 at 00:10: a window over midnight */
    op_bucket_t b[] = {{op_window_bucket(&day15, MIDNIGHT - 600), 4},
                       {op_window_bucket(&day15, MIDNIGHT + 600), 6}};
    op_window_sum_t s;
    op_window_sum(&day15, MIDNIGHT + 700, b, 2, 10, 1, &s);
    CHECK_INT(s.used, 10);
    CHECK_INT(s.remaining, 0);
    /* the 23:45 bucket leaves at 23:45 the next day */
    CHECK_INT(s.next_free, MIDNIGHT - 900 + DAY);
    op_window_sum(&day15, MIDNIGHT - 900 + DAY - 1, b, 2, 10, 1, &s);
    CHECK_INT(s.used, 10);
    op_window_sum(&day15, MIDNIGHT - 900 + DAY, b, 2, 10, 1, &s);
    CHECK_INT(s.used, 6);
    CHECK_INT(s.next_free, MIDNIGHT - 900 + DAY);
}

CTEST(next_free_needs_enough_buckets_to_leave)
{
    op_window_t w = {60, 10}; /* 10 minutes in minutes */
    op_bucket_t b[] = {{100, 1}, {101, 1}, {105, 3}};
    op_window_sum_t s;
    op_window_sum(&w, 105 * 60 + 5, b, 3, 5, 3, &s);
    CHECK_INT(s.used, 5);
    /* 3 more need 3 free: bucket 100 and 101 leaving give 2, 105 gives 5 */
    CHECK_INT(s.next_free, (105 + 10) * 60);
    op_window_sum(&w, 105 * 60 + 5, b, 3, 5, 2, &s);
    CHECK_INT(s.next_free, (101 + 10) * 60);
    op_window_sum(&w, 105 * 60 + 5, b, 3, 5, 6, &s);
    CHECK_INT(s.next_free, -1); /* more than max never fits */
}

CTEST(clock_jumping_backwards_frees_nothing)
{
    op_window_t w = {60, 10};
    /* written at minute 200, now the clock says minute 150 */
    op_bucket_t b[] = {{200, 4}};
    op_window_sum_t s;
    op_window_sum(&w, 150 * 60, b, 1, 4, 1, &s);
    CHECK_INT(s.used, 4);
    CHECK_INT(s.remaining, 0);
    CHECK_INT(s.next_free, 210 * 60);
}

CTEST(empty_window_and_zero_max)
{
    op_window_sum_t s;
    op_window_sum(&day15, MIDNIGHT, NULL, 0, 0, 1, &s);
    CHECK_INT(s.used, 0);
    CHECK_INT(s.remaining, 0);
    CHECK_INT(s.next_free, -1);
    op_window_sum(&day15, MIDNIGHT, NULL, 0, 0, 0, &s);
    CHECK_INT(s.next_free, MIDNIGHT);
}

int main(int argc, char **argv)
{
    return ctest_main(argc, argv);
}
