/* The durability barrier (durable.h): the store's sync once per loop
 * iteration, and the waiters it releases. */
#include "core/durable.h"

#include <stddef.h>
#include <stdint.h>

static struct {
    uv_check_t check;
    uv_idle_t idle;
    int inited, armed, busy;
    int (*sync)(void *data);
    void *data;
    op_durable_waiter_t *held;    /* waiting for the next sync */
    op_durable_waiter_t *writing; /* waiting for the sync under way (busy) */
    /* Syncs are numbered: `collecting` is the one the writes armed now will
     * be in, `syncing` the one under way (busy), `done` the last that
     * ended.  The last syncs that failed, so a ticket of one is refused. */
    uint64_t collecting, syncing, done;
    uint64_t failed[16];
    unsigned nfailed;
} barrier = {.collecting = 1};

void op_durable_cancel(op_durable_waiter_t *w)
{
    if (w->prev == NULL)
        return;
    *w->prev = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    w->next = NULL;
    w->prev = NULL;
}

static void push(op_durable_waiter_t **list, op_durable_waiter_t *w)
{
    w->next = *list;
    if (*list != NULL)
        (*list)->prev = &w->next;
    *list = w;
    w->prev = list;
}

void op_durable_wait(op_durable_waiter_t *w)
{
    if (w->prev == NULL)
        push(&barrier.held, w);
}

uint64_t op_durable_ticket(void)
{
    return barrier.armed ? barrier.collecting : barrier.busy ? barrier.syncing : 0;
}

int op_durable_ticket_state(uint64_t ticket)
{
    if (ticket == 0)
        return 0;
    for (unsigned i = 0; i < sizeof barrier.failed / sizeof barrier.failed[0]; i++)
        if (barrier.failed[i] == ticket)
            return -1;
    return ticket <= barrier.done ? 0 : 1;
}

void op_durable_wait_for(op_durable_waiter_t *w, uint64_t ticket)
{
    if (w->prev != NULL)
        return;
    if (barrier.busy && ticket <= barrier.syncing) {
        push(&barrier.writing, w); /* the sync under way has its writes */
        w->covered(w);
        return;
    }
    push(&barrier.held, w);
}

static void ended(uint64_t seq, int rc)
{
    barrier.done = seq;
    if (rc < 0)
        barrier.failed[barrier.nfailed++ % (sizeof barrier.failed / sizeof barrier.failed[0])] = seq;
}

int op_durable_waiting(const op_durable_waiter_t *w)
{
    return w->prev != NULL;
}

int op_durable_armed(void)
{
    return barrier.armed;
}

/* Moves the list at *from to *to (empty). */
static void move(op_durable_waiter_t **from, op_durable_waiter_t **to)
{
    *to = *from;
    *from = NULL;
    if (*to != NULL)
        (*to)->prev = to;
}

/* The same, each waiter told a sync starts that covers what it holds. */
static void cover(op_durable_waiter_t **from, op_durable_waiter_t **to)
{
    move(from, to);
    for (op_durable_waiter_t *w = *to; w != NULL; w = w->next)
        w->covered(w);
}

/* Releases a list of covered waiters.  A callback may wait again (on the
 * barrier's list) or cancel others: the list is re-read each time. */
static void release(op_durable_waiter_t **list, int rc)
{
    while (*list != NULL) {
        op_durable_waiter_t *w = *list;
        op_durable_cancel(w);
        w->released(w, rc);
    }
}

static void on_idle(uv_idle_t *h)
{
    (void)h; /* only there so the poll does not block while answers wait */
}

/* After the poll phase: the iteration's writes become durable, then what
 * waited for them leaves.  While a sync is under way (on another thread),
 * the next waits for it to end (op_durable_done). */
static void on_check(uv_check_t *h)
{
    (void)h;
    uv_idle_stop(&barrier.idle);
    if (!barrier.armed || barrier.busy)
        return;
    barrier.armed = 0;
    /* What the callbacks below make wait again waits for the next sync. */
    op_durable_waiter_t *list;
    cover(&barrier.held, &barrier.writing);
    barrier.syncing = barrier.collecting++;
    int rc = barrier.sync ? barrier.sync(barrier.data) : 0;
    if (rc == OP_DURABLE_PENDING) {
        barrier.busy = 1;
        return;
    }
    ended(barrier.syncing, rc);
    move(&barrier.writing, &list);
    release(&list, rc);
}

void op_durable_done(int rc)
{
    if (!barrier.busy)
        return;
    barrier.busy = 0;
    ended(barrier.syncing, rc);
    op_durable_waiter_t *list;
    move(&barrier.writing, &list);
    release(&list, rc);
    if (barrier.armed)
        uv_idle_start(&barrier.idle, on_idle); /* the next sync, at once */
}

void op_durable_register(uv_loop_t *loop, int (*sync)(void *data), void *data)
{
    if (loop != NULL && !barrier.inited) {
        uv_check_init(loop, &barrier.check);
        uv_idle_init(loop, &barrier.idle);
        uv_unref((uv_handle_t *)&barrier.check);
        uv_unref((uv_handle_t *)&barrier.idle);
        uv_check_start(&barrier.check, on_check);
        barrier.inited = 1;
    }
    int rc = 0;
    if (sync == NULL && barrier.armed && barrier.sync != NULL)
        rc = barrier.sync(barrier.data); /* the last writes of a store going away */
    if (sync == NULL && barrier.inited) {
        /* what still waits leaves now (or, if those writes failed, never);
         * a store going away ended its sync first (op_durable_done) */
        op_durable_waiter_t *list;
        cover(&barrier.held, &list);
        ended(barrier.collecting++, rc == OP_DURABLE_PENDING ? 0 : rc);
        release(&list, rc == OP_DURABLE_PENDING ? 0 : rc);
        uv_close((uv_handle_t *)&barrier.check, NULL);
        uv_close((uv_handle_t *)&barrier.idle, NULL);
        barrier.inited = 0;
    }
    barrier.sync = sync;
    barrier.data = data;
    barrier.armed = 0;
}

void op_durable_arm(void)
{
    if (!barrier.inited || barrier.armed)
        return;
    barrier.armed = 1;
    uv_idle_start(&barrier.idle, on_idle);
}
