/* A thread of its own that runs jobs in the order they are posted and
 * reports each on the loop (the counters' group commit, counters_group.c).
 *
 * Why not libuv's pool (uv_queue_work): its post() signals a pool thread
 * while it still holds the queue's mutex, so on a machine with a free core
 * the woken thread blocks at once on that mutex and is woken a second time
 * when the loop lets go of it; any of the pool's threads may take the job
 * (their caches cold); and the completion goes through uv_async_send, whose
 * receiving side spins and calls sched_yield while the sender is still
 * between its two steps.  At one connection a postout request made 4.1–4.5
 * futex calls and up to 0.3 sched_yield with the pool, 2.0 and none with
 * this (docs/performance.md, "The per-turn cost at few connections").  Here:
 * the thread is woken (one futex call each side) only when it sleeps, the
 * signal is sent after the mutex is released, and the loop is woken
 * through an eventfd watched by a uv_poll, written only when the loop has
 * not yet been told of earlier completions.
 *
 * The loop thread never waits for a job, except in op_writer_stop, and
 * there at most the time it is given. */
#ifndef OP_COUNTERS_WRITER_H
#define OP_COUNTERS_WRITER_H

#include <uv.h>

typedef struct op_writer_job {
    struct op_writer_job *next; /* the writer's */
} op_writer_job_t;

typedef struct op_writer op_writer_t;

/* work runs on the writer's thread, done on the loop afterwards (also for
 * the jobs op_writer_stop finds ended but not yet reported).  NULL if the
 * thread or its eventfd cannot be made. */
op_writer_t *op_writer_start(uv_loop_t *loop, void (*work)(op_writer_job_t *job),
                             void (*done)(op_writer_job_t *job));

/* Queues job after those posted before it.  While jobs are posted and not
 * yet reported the writer keeps the loop alive, as uv_queue_work would. */
void op_writer_post(op_writer_t *w, op_writer_job_t *job);

/* The jobs posted so far no longer keep the loop alive (until the next
 * post): a job given up on (a write past write_timeout, on a frozen disk)
 * must not hold the daemon's stop, which ends when nothing else runs. */
void op_writer_unhold(op_writer_t *w);

/* Waits at most `seconds` until every posted job's work has ended (their
 * done callbacks have not run yet): 1 if they have, else 0. */
int op_writer_wait(op_writer_t *w, double seconds);

/* Stops the thread: waits at most `seconds` for the job under way, then
 * reports the ended jobs (done) and joins the thread.  A job that has not
 * ended by then is left to the thread, which ends after it without
 * reporting it; the writer's memory and eventfd are left to the process
 * (the thread still uses them).  Returns 0, or -1 when a job was left. */
int op_writer_stop(op_writer_t *w, double seconds);

#endif
