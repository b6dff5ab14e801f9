/* The CPU watchdog: a request's Lua may run at most its service's
 * cpu_budget between two waits (docs/reliability.md).
 *
 * The loop thread only marks when a request's coroutine enters and leaves
 * lua_resume (two stores, no clock, no syscall); a thread of ours wakes
 * every few milliseconds and measures how long the same run has lasted.
 *
 *  - Past the budget it signals the loop thread, whose handler arms a
 *    count hook (lua_sethook is the one call LuaJIT allows asynchronously).
 *    Interpreted code then stops at its next instruction with a Lua error;
 *    the request answers the default action and the log names the
 *    service, the check and the file:line where it was stopped.
 *  - Stock LuaJIT does not run hooks inside a compiled trace, and no hook
 *    runs inside one long C call (a pattern match).  At twice the budget
 *    (and at least 1 s more) the loop is still stuck there: the watchdog
 *    logs why and ends the process, for its supervisor (systemd's
 *    Restart=, or any parent) to start it again.  Counters lose nothing:
 *    no answer leaves before its counter writes are durable. */
#ifndef OP_WATCHDOG_H
#define OP_WATCHDOG_H

#include <lua.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

/* Shared with the watchdog thread.  seq is odd while a request runs Lua. */
typedef struct {
    _Atomic uint64_t seq;
    _Atomic uint32_t budget_ms; /* of the run in progress; 0: not watched */
    lua_State *_Atomic L;       /* the coroutine in progress */
    /* for the last words of a process that cannot stop it */
    const char *_Atomic service;
    _Atomic uint64_t serial;
    volatile sig_atomic_t hooked; /* the signal handler armed the hook */
} op_watchdog_state_t;

extern op_watchdog_state_t op__watchdog;

/* Starts the watchdog thread (once; the caller's thread is the loop's). */
int op_watchdog_start(void);
/* Stops and joins it. */
void op_watchdog_stop(void);

/* Around lua_resume of a request on the loop thread. */
static inline void op_watchdog_enter(lua_State *co, uint32_t budget_ms, const char *service,
                                     uint64_t serial)
{
    atomic_store_explicit(&op__watchdog.service, service, memory_order_relaxed);
    atomic_store_explicit(&op__watchdog.serial, serial, memory_order_relaxed);
    atomic_store_explicit(&op__watchdog.L, co, memory_order_relaxed);
    atomic_store_explicit(&op__watchdog.budget_ms, budget_ms, memory_order_relaxed);
    uint64_t s = atomic_load_explicit(&op__watchdog.seq, memory_order_relaxed);
    atomic_store_explicit(&op__watchdog.seq, s + 1, memory_order_release);
}

void op__watchdog_unhook(void);

/* Returns 1 when the watchdog stopped the run that just ended. */
static inline int op_watchdog_leave(void)
{
    uint64_t s = atomic_load_explicit(&op__watchdog.seq, memory_order_relaxed);
    atomic_store_explicit(&op__watchdog.seq, s + 1, memory_order_release);
    atomic_signal_fence(memory_order_seq_cst); /* seq is even before hooked is read */
    if (op__watchdog.hooked) {
        op__watchdog_unhook();
        return 1;
    }
    return 0;
}

/* On the loop thread, inside the run: stop it at its next instruction as
 * if its budget had passed, for why (e.g. the memory cap, core/vm.c). */
void op_watchdog_stop_run(const char *why);

/* After op_watchdog_leave returned 1: why it was stopped (NULL: its CPU
 * budget), where ("file.lua:12"), and the check that ran ("PO3", or "-"). */
const char *op_watchdog_why(void);
/* After op_watchdog_leave returned 1: where the run was stopped
 * ("file.lua:12"), and the check that ran ("PO3", or "-"). */
const char *op_watchdog_where(void);
const char *op_watchdog_check(void);

#endif
