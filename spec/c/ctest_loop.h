/* ctest_loop.h — for C tests that drive a libuv loop: run it until a
 * callback sets *done, bounded by a timer so a lost answer fails the test
 * instead of hanging it. */
#ifndef CTEST_LOOP_H
#define CTEST_LOOP_H

#include <uv.h>

static void ctest_guard_fired(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Runs loop until *done or secs pass; returns *done. */
static inline int ctest_run_until(uv_loop_t *loop, const int *done, double secs)
{
    uv_timer_t guard;
    int expired = 0;
    uv_timer_init(loop, &guard);
    guard.data = &expired;
    uv_timer_start(&guard, ctest_guard_fired, (uint64_t)(secs * 1000), 0);
    while (!*done && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *done;
}

static void ctest_tick(uv_timer_t *t)
{
    (void)t;
}

/* One turn of the loop, as the daemon's (it has listeners to wait for, so
 * its poll phase and what runs after it happen even with nothing ready). */
static inline void ctest_turn(uv_loop_t *loop)
{
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, ctest_tick, 0, 0);
    uv_run(loop, UV_RUN_NOWAIT);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

#endif
