/* The durability barrier: answers must not leave before the writes they
 * report are durable (the counters' group commit, docs/limits.md).
 *
 * Two sides meet here and know nothing of each other.  A store (counters)
 * registers its sync function and arms the barrier when it has writes not
 * yet durable; an answer's writer (the session's output buffer, outbuf.c)
 * waits on the barrier while it is armed.  Once per loop iteration (after
 * the poll phase) the sync runs and what waited is released together.
 * When the sync fails (< 0) every waiter is released with that error: its
 * answers are dropped and its connection closes.  One barrier per process. */
#ifndef OP_DURABLE_H
#define OP_DURABLE_H

#include <stdint.h>
#include <uv.h>

/* ---- the store's side ---- */

/* Registers sync (one at a time); op_durable_register(NULL, NULL, NULL)
 * removes it, syncing what is armed first and releasing every waiter. */
void op_durable_register(uv_loop_t *loop, int (*sync)(void *data), void *data);

/* The store has writes that must be durable before the next answers leave. */
void op_durable_arm(void);

/* sync may also answer OP_DURABLE_PENDING: the writes are under way (on
 * another thread); what waited for them waits until op_durable_done
 * reports how they ended (0 or < 0), and no other sync starts meanwhile. */
#define OP_DURABLE_PENDING 1
void op_durable_done(int rc);

/* ---- the waiting side ---- */

typedef struct op_durable_waiter op_durable_waiter_t;

struct op_durable_waiter {
    /* A sync starts that covers what the waiter holds now (what it adds
     * later waits for the next one). */
    void (*covered)(op_durable_waiter_t *w);
    /* That sync ended: 0, or < 0 when the writes failed.  The waiter no
     * longer waits when this runs; it may wait again. */
    void (*released)(op_durable_waiter_t *w, int rc);
    op_durable_waiter_t *next, **prev; /* the barrier's */
};

/* Armed: a waiter's answers must wait. */
int op_durable_armed(void);

/* w waits for the next sync (or already does: then nothing changes). */
void op_durable_wait(op_durable_waiter_t *w);

/* Tickets: what an answer that reports a write must wait for.  Taken
 * right after the store armed the barrier for the write (0: nothing to
 * wait for), it names the sync that makes the write durable.  Only answers
 * with a ticket wait: those of requests that counted nothing leave at
 * once, whatever the store is doing.  state: 0 durable (or no ticket), 1
 * not yet, -1 its sync failed (the answer must not leave). */
uint64_t op_durable_ticket(void);
int op_durable_ticket_state(uint64_t ticket);
/* w waits for the sync of ticket (the one under way, or the next). */
void op_durable_wait_for(op_durable_waiter_t *w, uint64_t ticket);
int op_durable_waiting(const op_durable_waiter_t *w);

/* w waits no more, and is not released (its owner goes away). */
void op_durable_cancel(op_durable_waiter_t *w);

#endif
