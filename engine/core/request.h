/* A request: one question from the MTA, answered by one run of a service's
 * policy in its own Lua coroutine.  This file holds the yield contract
 * (docs/architecture.md explains it in full):
 *
 *  - The coroutine is anchored in the registry of its generation and holds a
 *    reference to the generation until the request ends.
 *  - A primitive that must wait calls op_request_yield() with a pending
 *    record.  When its I/O completes it calls op_pending_take(); NULL means
 *    the request gave up on it (deadline, client gone, shutdown) and the
 *    result must be dropped.  Otherwise it pushes its results on the
 *    request's coroutine and calls op_request_resume().
 *  - When a request gives up, it calls the pending record's cancel hook
 *    after detaching it; the hook stops the I/O if it can and frees the
 *    record (now or when the I/O ends).  The completion never resumes a
 *    coroutine that was given up, nor one of another request that reused
 *    the memory: records carry the request's serial number.
 *  - The deadline timer runs only while a request waits, so a policy that
 *    answers without waiting never touches a timer. */
#ifndef OP_REQUEST_H
#define OP_REQUEST_H

#include "core/trace.h"
#include "core/vm.h"

#include <lua.h>
#include <stdint.h>
#include <uv.h>

typedef struct op_request op_request_t;
typedef struct op_pending op_pending_t;

struct op_pending {
    op_request_t *req;   /* NULL once detached */
    uint64_t serial;     /* req->serial at attach time */
    /* Stops the I/O and frees the record, now or later; called after the
     * record was detached, so the I/O's completion sees op_pending_take()
     * return NULL. */
    void (*cancel)(op_pending_t *p);
};

/* What a finished request answers, handed to the done callback. */
typedef struct {
    const char *action;   /* Postfix action text, never NULL */
    size_t action_len;
    const char *check;    /* id of the check that decided, or "-" */
    const char *reason;   /* "policy", "error", "deadline", "bad-return", "shutdown", "no-service",
                           * "cpu-budget" */
    /* The outpost.action table the policy returned, at index `index` of L's
     * stack while done runs; index 0 for the default action.  Protocols
     * that need more than the text (milter replies and modifications) read
     * it there. */
    lua_State *L;
    int index;
    uint64_t durable; /* the request's durability ticket: the answer leaves once it is durable */
} op_answer_t;

typedef void (*op_request_done_cb)(op_request_t *req, const op_answer_t *answer, void *data);

typedef struct {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} op_request_attr_t;

struct op_request {
    uint64_t serial;           /* unique, also the request id in logs */
    op_gen_t *gen;
    const op_gen_service_t *service;
    lua_State *co;             /* the coroutine (NULL before start / after end) */
    int co_ref;
    op_pending_t *pending;     /* the primitive this request waits for */
    int timer_active;          /* deadline timer initialised */
    uv_timer_t deadline;
    uv_loop_t *loop;
    uint64_t start_us;
    double deadline_s;
    uint32_t budget_ms;        /* cpu_budget; 0 for a host coroutine: not watched */
    op_request_done_cb done;
    void *done_data;
    int finished;              /* done was called (or the request was cancelled) */
    int reusable;              /* its coroutine is back in sandbox.worker, poolable */
    op_phase_t phase;          /* which handler runs */
    int answer_index;          /* stack index of the returned action, 0 if none */
    /* The durability ticket (core/durable.h) of the counter writes the
     * request made, 0 if none: only then does its answer wait for them. */
    uint64_t durable;
    /* The Postfix attributes.  They point into the connection's buffer
     * while the policy runs without waiting, and into attr_copy once it has
     * waited (the buffer moves on to the next query). */
    const op_request_attr_t *attrs;
    size_t nattrs;
    op_request_attr_t *attr_copy;
    struct op_attrs_ud *attrs_ud; /* the Lua view of attrs, detached at the end */
    int host;                  /* a test-runner coroutine: no policy, no answer */
    /* Set only while the request is explained (dry run, core/trace.h):
     * the primitives record into it, and those that write peek or skip.
     * Owned by whoever started the request. */
    op_trace_t *trace;
    void (*host_finished)(op_request_t *req, int status, void *data);
};

/* Pushes the one argument of a handler onto co. */
typedef void (*op_request_push_cb)(lua_State *co, op_request_t *req, void *arg);

/* Starts a request running the service's handler for phase, called with
 * the value push_cb pushes; otherwise as op_request_start.  The service
 * must have a handler for the phase. */
op_request_t *op_request_start_phase(uv_loop_t *loop, op_gen_t *gen,
                                     const op_gen_service_t *service, op_phase_t phase,
                                     op_request_push_cb push_cb, void *push_arg,
                                     op_request_done_cb done, void *data);

/* Starts a request on gen for service (which must belong to gen).  Runs the
 * policy at once.  Returns the request while it waits for a primitive, or
 * NULL when it has already ended: then done was called before this
 * returned.  The request is owned by the engine: it frees itself after done
 * (or after cancel), so keep the pointer only until done.
 * tenant/listener are informational and copied into the Lua request. */
op_request_t *op_request_start(uv_loop_t *loop, op_gen_t *gen, const op_gen_service_t *service,
                               const char *tenant, const char *listener,
                               const op_request_attr_t *attrs, size_t nattrs,
                               op_request_done_cb done, void *data);

/* Whether the service's policy has a handler for phase. */
int op_request_has_handler(const op_gen_service_t *service, op_phase_t phase);

/* op_request_start in dry-run mode: the request carries trace (the
 * caller's, read in done), req.explain is true for the policy, and the
 * primitives that would write (counters, transaction links) only read. */
op_request_t *op_request_explain(uv_loop_t *loop, op_gen_t *gen, const op_gen_service_t *service,
                                 const char *tenant, const char *listener,
                                 const op_request_attr_t *attrs, size_t nattrs, op_trace_t *trace,
                                 op_request_done_cb done, void *data);

/* Gives up on a request without calling done (the client is gone). */
void op_request_cancel(op_request_t *req);

/* Ends a waiting request now with the service's default action (shutdown). */
void op_request_abort(op_request_t *req, const char *reason);

/* For primitives, before they start any I/O: the request L runs in, if it
 * may wait here.  Raises a Lua error naming `who` when it may not (outside a
 * request, inside a table.sort or gsub callback, inside a coroutine of the
 * policy's own): misuse, not an I/O outcome. */
op_request_t *op_request_check_wait(lua_State *L, const char *who);

/* Suspends the request; use as `return op_request_yield(L, p);` after
 * op_request_check_wait() succeeded and the I/O started. */
int op_request_yield(lua_State *L, op_pending_t *p);

/* The request a pending record still belongs to, detaching the record; NULL
 * when the request gave up on it.  After a non-NULL return the caller must
 * call op_request_resume() (or op_request_fail()). */
op_request_t *op_pending_take(op_pending_t *p);

/* Resumes req with nargs values the caller pushed on req->co. */
void op_request_resume(op_request_t *req, int nargs);

/* The request whose coroutine is L, when L is running inside a request;
 * NULL otherwise. */
op_request_t *op_request_current(lua_State *L);
/* The request whose coroutine runs now, or NULL: for the FFI fast paths
 * (lua/lua_api_ffi.h), which have no lua_State to ask about. */
op_request_t *op_request_running(void);
/* For the FFI fast paths of primitives that may wait (lua/lua_api_ffi.h):
 * the running request when op_request_check_wait on the Lua code running
 * now would pass, else NULL (outside a request, inside a C callback such
 * as a table.sort comparator, inside a coroutine of the code's own).  A
 * fast path that gets NULL leaves the call to its classic function, which
 * raises "cannot wait here" as always. */
op_request_t *op_request_waitable(void);
/* Entering (+1) and leaving (-1) a coroutine of the code's own, from the
 * wrappers of coroutine.resume and coroutine.wrap (lua_api_ffi.lua). */
void op_request_foreign(int delta);

/* Makes L (a coroutine the caller created) a host coroutine: primitives may
 * yield in it.  Used by `outpostd test`.  Resume it with
 * op_request_host_resume until it returns. */
op_request_t *op_request_host_new(uv_loop_t *loop, lua_State *co,
                                  void (*finished)(op_request_t *, int status, void *),
                                  void *data);
void op_request_host_resume(op_request_t *req, int nargs);

#endif
