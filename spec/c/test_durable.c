/* The durability barrier (core/durable.h) on its own, with waiters of the
 * test's: a store's sync once per loop iteration, one at a time, and what
 * each waiter is told. */
#include "ctest.h"
#include "ctest_loop.h"
#include "core/durable.h"

static int sync_answer, syncs;

static int store_sync(void *data)
{
    (void)data;
    syncs++;
    return sync_answer;
}

typedef struct {
    op_durable_waiter_t w; /* first */
    int covered, released, rc;
} waiter_t;

static void on_covered(op_durable_waiter_t *w)
{
    ((waiter_t *)w)->covered++;
}

static void on_released(op_durable_waiter_t *w, int rc)
{
    ((waiter_t *)w)->released++;
    ((waiter_t *)w)->rc = rc;
}

static void waiter_init(waiter_t *t)
{
    *t = (waiter_t){.w = {.covered = on_covered, .released = on_released}, .rc = 99};
}


static void down(uv_loop_t *loop)
{
    op_durable_register(NULL, NULL, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    CHECK_INT(uv_loop_close(loop), 0);
}

CTEST(not_armed_nothing_waits_or_syncs)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    op_durable_register(&loop, store_sync, NULL);
    CHECK_INT(op_durable_armed(), 0);
    ctest_turn(&loop);
    CHECK_INT(syncs, 0);
    down(&loop);
}

CTEST(an_armed_barrier_syncs_once_and_releases_every_waiter)
{
    uv_loop_t loop;
    waiter_t a, b;
    uv_loop_init(&loop);
    waiter_init(&a);
    waiter_init(&b);
    op_durable_register(&loop, store_sync, NULL);
    op_durable_arm();
    CHECK_INT(op_durable_armed(), 1);
    op_durable_wait(&a.w);
    op_durable_wait(&b.w);
    op_durable_wait(&a.w); /* already waiting: once */
    CHECK(op_durable_waiting(&a.w));
    ctest_turn(&loop);
    CHECK_INT(syncs, 1);
    CHECK_INT(a.covered, 1);
    CHECK_INT(a.released, 1);
    CHECK_INT(a.rc, 0);
    CHECK_INT(b.released, 1);
    CHECK(!op_durable_waiting(&a.w));
    CHECK_INT(op_durable_armed(), 0);
    down(&loop);
}

/* A sync under way on another thread: no second one starts, a waiter
 * that goes away is never told, the failure reaches the others. */
CTEST(a_pending_sync_fails_the_waiters_it_covers)
{
    uv_loop_t loop;
    waiter_t a, gone, later;
    uv_loop_init(&loop);
    waiter_init(&a);
    waiter_init(&gone);
    waiter_init(&later);
    op_durable_register(&loop, store_sync, NULL);
    op_durable_arm();
    op_durable_wait(&a.w);
    op_durable_wait(&gone.w);
    sync_answer = OP_DURABLE_PENDING;
    ctest_turn(&loop);
    CHECK_INT(syncs, 1);
    CHECK_INT(a.covered, 1);
    CHECK_INT(a.released, 0);
    op_durable_cancel(&gone.w);
    op_durable_arm(); /* the next request's write */
    op_durable_wait(&later.w);
    ctest_turn(&loop);
    CHECK_INT(syncs, 1); /* one at a time */
    op_durable_done(-5);
    CHECK_INT(a.released, 1);
    CHECK_INT(a.rc, -5);
    CHECK_INT(gone.released, 0);
    CHECK_INT(later.released, 0); /* waits for the next sync */
    sync_answer = 0;
    ctest_turn(&loop);
    CHECK_INT(syncs, 2);
    CHECK_INT(later.covered, 1);
    CHECK_INT(later.released, 1);
    CHECK_INT(later.rc, 0);
    down(&loop);
}

/* A store going away syncs what is armed and lets every waiter go. */
CTEST(unregistering_releases_what_waits)
{
    uv_loop_t loop;
    waiter_t a;
    uv_loop_init(&loop);
    waiter_init(&a);
    op_durable_register(&loop, store_sync, NULL);
    op_durable_arm();
    op_durable_wait(&a.w);
    sync_answer = 0;
    down(&loop);
    CHECK_INT(syncs, 1);
    CHECK_INT(a.released, 1);
    CHECK_INT(a.rc, 0);
}

int main(int argc, char **argv)
{
    return ctest_main(argc, argv);
}
