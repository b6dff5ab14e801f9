#include "core/request.h"

#include "core/log.h"
#include "core/watchdog.h"
#include "lua/lua_api_request.h"
#include "core/mem.h"

#include <lauxlib.h>
#include <string.h>
#include <time.h>

static uint64_t next_serial = 1;
/* The request whose coroutine is inside lua_resume right now.  The loop is
 * single-threaded, so at most one coroutine runs at a time; primitives use
 * this to find their request and to refuse to yield anywhere else. */
static op_request_t *running;
/* How many coroutines of the code's own run inside `running`'s (the test
 * host's specs: the sandbox gives policies no coroutine library).  A
 * primitive may not wait in one: its yield would go to that coroutine's
 * resumer, not to the engine.  Saved and cleared around each lua_resume
 * of a request, so a nested run starts at 0. */
static int foreign;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void free_on_close(uv_handle_t *h)
{
    free(h->data);
}

/* Drops the coroutine and the generation reference, then frees the
 * request (through the timer's close callback when a timer exists). */
static void release(op_request_t *req)
{
    op_attrs_detach(req);
    free(req->attr_copy);
    req->attr_copy = NULL;
    if (req->co != NULL) {
        op_gen_t *gen = req->gen;
        if (req->reusable && gen->npool < OP_GEN_POOL_MAX) {
            lua_settop(req->co, 0);
            gen->pool[gen->npool] = req->co;
            gen->pool_ref[gen->npool] = req->co_ref;
            gen->npool++;
        } else {
            luaL_unref(gen->L, LUA_REGISTRYINDEX, req->co_ref);
        }
        req->co = NULL;
    }
    op_gen_unref(req->gen);
    req->gen = NULL;
    if (req->timer_active) {
        req->deadline.data = req;
        uv_close((uv_handle_t *)&req->deadline, free_on_close);
    } else {
        free(req);
    }
}

static void detach_pending(op_request_t *req)
{
    op_pending_t *p = req->pending;
    if (p == NULL)
        return;
    req->pending = NULL;
    p->req = NULL;
    p->cancel(p);
}

static void answer(op_request_t *req, const char *action, size_t len, const char *check,
                   const char *reason)
{
    op_answer_t a = {.action = action, .action_len = len, .check = check, .reason = reason,
                     .L = req->co, .index = req->answer_index, .durable = req->durable};
    req->finished = 1;
    if (req->done != NULL)
        req->done(req, &a, req->done_data);
}

static void answer_default(op_request_t *req, const char *reason)
{
    const char *def = req->service->conf->default_action;
    answer(req, def, strlen(def), "-", reason);
}

/* The traceback of a coroutine, where it failed or where it waits. */
static void log_failure(op_request_t *req, const char *what, const char *msg)
{
    lua_State *L = req->gen->L;
    luaL_traceback(L, req->co, msg, 0);
    op_error("req=%llu service=%s gen=%llu: %s, answering the default action: %s",
             (unsigned long long)req->serial, req->service->conf->name,
             (unsigned long long)req->gen->number, what, lua_tostring(L, -1));
    lua_pop(L, 1);
}

static int is_action(op_request_t *req, int idx)
{
    lua_State *co = req->co;
    if (lua_type(co, idx) != LUA_TTABLE || !lua_getmetatable(co, idx))
        return 0;
    lua_rawgeti(co, LUA_REGISTRYINDEX, req->gen->action_mt_ref);
    int same = lua_rawequal(co, -1, -2);
    lua_pop(co, 2);
    return same;
}

/* The policy's answer is at index idx of the coroutine's stack. */
static void finish_returned(op_request_t *req, int idx)
{
    lua_State *co = req->co;
    if (lua_gettop(co) < idx || !is_action(req, idx)) {
        const char *got = lua_gettop(co) < idx ? "nothing" : luaL_typename(co, idx);
        op_error("req=%llu service=%s gen=%llu: policy returned %s, not an action "
                 "(use the constructors of outpost.action); answering the default action",
                 (unsigned long long)req->serial, req->service->conf->name,
                 (unsigned long long)req->gen->number, got);
        answer_default(req, "bad-return");
        return;
    }
    lua_getfield(co, idx, "text");
    lua_getfield(co, idx, "check");
    size_t len = 0;
    const char *text = lua_tolstring(co, -2, &len);
    const char *check = lua_tostring(co, -1);
    if (text == NULL || len == 0) {
        op_error("req=%llu service=%s: action without text; answering the default action",
                 (unsigned long long)req->serial, req->service->conf->name);
        answer_default(req, "bad-return");
    } else {
        /* text stays referenced by the action table on the stack while
         * done runs. */
        req->answer_index = idx;
        answer(req, text, len, check ? check : "-", "policy");
    }
}

static void on_deadline(uv_timer_t *t)
{
    op_request_t *req = t->data;
    detach_pending(req);
    char msg[128];
    snprintf(msg, sizeof msg, "deadline of %.3gs passed", req->deadline_s);
    log_failure(req, msg, "waiting at");
    answer_default(req, "deadline");
    release(req);
}

static void arm_deadline(op_request_t *req)
{
    if (req->deadline_s <= 0)
        return;
    if (!req->timer_active) {
        uv_update_time(req->loop);
        uv_timer_init(req->loop, &req->deadline);
        req->deadline.data = req;
        req->timer_active = 1;
        uint64_t elapsed_ms = (now_us() - req->start_us) / 1000u;
        uint64_t total_ms = (uint64_t)(req->deadline_s * 1000.0);
        uint64_t left = total_ms > elapsed_ms ? total_ms - elapsed_ms : 0;
        uv_timer_start(&req->deadline, on_deadline, left, 0);
    }
}

/* Returns 1 while the request waits, 0 once it has ended (and may be freed). */
static int run(op_request_t *req, int nargs)
{
    op_request_t *prev = running;
    int prev_foreign = foreign;
    running = req;
    foreign = 0;
    /* A nested run (a completion inside a policy's call) counts against
     * the outer run's budget. */
    op_lua_mem_t *mem = req->host ? NULL : &req->gen->mem;
    if (prev == NULL) {
        op_watchdog_enter(req->co, req->budget_ms, req->host ? "test" : req->service->conf->name,
                          req->serial);
        if (mem != NULL)
            mem->armed = 1;
    }
    int status = lua_resume(req->co, nargs);
    int stopped = prev == NULL && op_watchdog_leave();
    int refused = 0;
    if (prev == NULL && mem != NULL) {
        mem->armed = 0;
        refused = mem->refused || mem->stopped;
        mem->refused = mem->stopped = 0;
    }
    running = prev;
    foreign = prev_foreign;

    if (req->host) {
        if (status == LUA_YIELD && req->pending != NULL)
            return 1;
        if (status == LUA_YIELD) {
            lua_pushstring(req->co, "coroutine yielded outside an outpost primitive");
            status = LUA_ERRRUN;
        }
        req->host_finished(req, status, req->done_data);
        return 0;
    }
    if (stopped) {
        /* The coroutine died of the hook's error, or is suspended where
         * it stood: never reused. */
        detach_pending(req);
        const char *check = op_watchdog_check(), *why = op_watchdog_why();
        char budget[64];
        snprintf(budget, sizeof budget, "CPU budget of %ums exceeded", req->budget_ms);
        op_error("req=%llu service=%s gen=%llu check=%s: %s, stopped at %s; answering the "
                 "default action", (unsigned long long)req->serial, req->service->conf->name,
                 (unsigned long long)req->gen->number, check, why ? why : budget,
                 op_watchdog_where());
        const char *def = req->service->conf->default_action;
        answer(req, def, strlen(def), check, why ? "memory" : "cpu-budget");
    } else if (status == LUA_YIELD && req->pending != NULL) {
        arm_deadline(req); /* a primitive waits */
        return 1;
    } else if (status == LUA_YIELD) {
        /* sandbox.worker yielded (ok, answer): the policy is done and the
         * coroutine is ready for the next request. */
        req->reusable = 1;
        if (lua_toboolean(req->co, 1)) {
            finish_returned(req, 2);
        } else {
            const char *msg = lua_tostring(req->co, 2);
            op_error("req=%llu service=%s gen=%llu: policy raised an error%s, answering the "
                     "default action: %s", (unsigned long long)req->serial,
                     req->service->conf->name, (unsigned long long)req->gen->number,
                     refused ? " (its generation's Lua reached lua_memory_max)" : "",
                     msg ? msg : "(error object is not a string)");
            answer_default(req, "error");
        }
    } else {
        /* The coroutine itself died (out of memory, an error outside the
         * policy's xpcall): it is not reused. */
        const char *msg = lua_tostring(req->co, -1);
        log_failure(req, refused ? "request coroutine failed: its generation's Lua reached "
                    "lua_memory_max" : "request coroutine failed", msg ? msg : "(no message)");
        answer_default(req, "error");
    }
    if (refused) {
        /* What the request held is garbage once its coroutine is gone:
         * collect it now, not when the next request meets the cap. */
        op_gen_t *gen = req->gen;
        op_gen_ref(gen);
        release(req);
        lua_gc(gen->L, LUA_GCCOLLECT, 0);
        op_info("gen=%llu: after a full collection its Lua holds %zu KiB",
                (unsigned long long)gen->number, gen->mem.total / 1024);
        op_gen_unref(gen);
        return 0;
    }
    release(req);
    return 0;
}

typedef struct {
    const char *tenant, *listener;
    const op_request_attr_t *attrs;
    size_t nattrs;
} policy_args_t;

/* The request table's keys, interned once per Lua state and kept in its
 * registry: lua_setfield interns its key on every call (hash, lookup), a
 * fifth of what the table cost. */
enum { K_ID = 1, K_SERVICE, K_TENANT, K_LISTENER, K_ATTRS, K_EXPLAIN };
static const char *const request_keys[] = {"id", "service", "tenant", "listener", "attrs",
                                           "explain"};
static const char request_keys_anchor; /* its address is the registry key */

static void push_request_keys(lua_State *co)
{
    lua_pushlightuserdata(co, (void *)&request_keys_anchor);
    lua_rawget(co, LUA_REGISTRYINDEX);
    if (lua_istable(co, -1))
        return;
    lua_pop(co, 1);
    int n = (int)(sizeof request_keys / sizeof request_keys[0]);
    lua_createtable(co, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(co, request_keys[i]);
        lua_rawseti(co, -2, i + 1);
    }
    lua_pushlightuserdata(co, (void *)&request_keys_anchor);
    lua_pushvalue(co, -2);
    lua_rawset(co, LUA_REGISTRYINDEX);
}

static void push_request_table(lua_State *co, op_request_t *req, void *arg)
{
    const policy_args_t *pa = arg;
    /* Borrowed from the connection's buffer; copied only if the request
     * waits (own_attrs). */
    req->attrs = pa->attrs;
    req->nattrs = pa->nattrs;
    lua_createtable(co, 0, 6);
    int t = lua_gettop(co);
    push_request_keys(co);
    int k = t + 1;
    lua_rawgeti(co, k, K_ID);
    lua_pushnumber(co, (lua_Number)req->serial);
    lua_rawset(co, t);
    lua_rawgeti(co, k, K_SERVICE);
    lua_pushstring(co, req->service->conf->name);
    lua_rawset(co, t);
    lua_rawgeti(co, k, K_TENANT);
    lua_pushstring(co, pa->tenant ? pa->tenant : "");
    lua_rawset(co, t);
    lua_rawgeti(co, k, K_LISTENER);
    lua_pushstring(co, pa->listener ? pa->listener : "");
    lua_rawset(co, t);
    /* Attributes are read lazily: building a table of ~30 strings per
     * request cost more than everything else the engine does for a DUNNO
     * (bench: 28k -> 51k req/s at 64 connections without it). */
    lua_rawgeti(co, k, K_ATTRS);
    op_attrs_push(co, req);
    lua_rawset(co, t);
    if (req->trace != NULL) {
        lua_rawgeti(co, k, K_EXPLAIN);
        lua_pushboolean(co, 1);
        lua_rawset(co, t);
    }
    lua_pop(co, 1); /* the keys */
}

/* Before a request waits, its attributes move out of the connection's
 * buffer, which will hold the next query by the time it resumes. */
static void own_attrs(op_request_t *req)
{
    if (req->attr_copy != NULL || req->nattrs == 0)
        return;
    size_t bytes = req->nattrs * sizeof *req->attr_copy;
    for (size_t i = 0; i < req->nattrs; i++)
        bytes += req->attrs[i].name_len + req->attrs[i].value_len;
    req->attr_copy = op_malloc(bytes);
    char *p = (char *)(req->attr_copy + req->nattrs);
    for (size_t i = 0; i < req->nattrs; i++) {
        const op_request_attr_t *a = &req->attrs[i];
        memcpy(p, a->name, a->name_len);
        req->attr_copy[i].name = p;
        req->attr_copy[i].name_len = a->name_len;
        p += a->name_len;
        memcpy(p, a->value, a->value_len);
        req->attr_copy[i].value = p;
        req->attr_copy[i].value_len = a->value_len;
        p += a->value_len;
    }
    req->attrs = req->attr_copy;
}

static op_request_t *start(uv_loop_t *loop, op_gen_t *gen, const op_gen_service_t *service,
                           op_phase_t phase, op_request_push_cb push_cb, void *push_arg,
                           op_trace_t *trace, op_request_done_cb done, void *data)
{
    OP_ASSERT(service->handler_ref[phase] != LUA_NOREF);
    op_request_t *req = op_calloc(1, sizeof *req);
    req->serial = next_serial++;
    req->loop = loop;
    req->gen = gen;
    op_gen_ref(gen);
    req->service = service;
    req->phase = phase;
    req->done = done;
    req->done_data = data;
    req->trace = trace;
    req->start_us = now_us();
    req->deadline_s = service->conf->deadline;
    req->budget_ms = (uint32_t)(service->conf->cpu_budget * 1000.0 + 0.5);

    lua_State *L = gen->L;
    if (gen->npool > 0) {
        /* Suspended in sandbox.worker: the resume hands it the next job. */
        gen->npool--;
        req->co = gen->pool[gen->npool];
        req->co_ref = gen->pool_ref[gen->npool];
    } else {
        req->co = lua_newthread(L);
        req->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_rawgeti(req->co, LUA_REGISTRYINDEX, gen->worker_ref);
    }
    lua_rawgeti(req->co, LUA_REGISTRYINDEX, service->handler_ref[phase]);
    push_cb(req->co, req, push_arg);
    return run(req, 2) ? req : NULL;
}

op_request_t *op_request_start_phase(uv_loop_t *loop, op_gen_t *gen,
                                     const op_gen_service_t *service, op_phase_t phase,
                                     op_request_push_cb push_cb, void *push_arg,
                                     op_request_done_cb done, void *data)
{
    return start(loop, gen, service, phase, push_cb, push_arg, NULL, done, data);
}

op_request_t *op_request_start(uv_loop_t *loop, op_gen_t *gen, const op_gen_service_t *service,
                               const char *tenant, const char *listener,
                               const op_request_attr_t *attrs, size_t nattrs,
                               op_request_done_cb done, void *data)
{
    policy_args_t pa = {tenant, listener, attrs, nattrs};
    return op_request_start_phase(loop, gen, service, OP_PHASE_REQUEST, push_request_table, &pa,
                                  done, data);
}

int op_request_has_handler(const op_gen_service_t *service, op_phase_t phase)
{
    return service->handler_ref[phase] != LUA_NOREF;
}

op_request_t *op_request_explain(uv_loop_t *loop, op_gen_t *gen, const op_gen_service_t *service,
                                 const char *tenant, const char *listener,
                                 const op_request_attr_t *attrs, size_t nattrs, op_trace_t *trace,
                                 op_request_done_cb done, void *data)
{
    policy_args_t pa = {tenant, listener, attrs, nattrs};
    return start(loop, gen, service, OP_PHASE_REQUEST, push_request_table, &pa, trace, done, data);
}

void op_request_cancel(op_request_t *req)
{
    OP_ASSERT(req != running);
    detach_pending(req);
    req->finished = 1;
    release(req);
}

void op_request_abort(op_request_t *req, const char *reason)
{
    OP_ASSERT(req != running);
    detach_pending(req);
    answer_default(req, reason);
    release(req);
}

op_request_t *op_request_check_wait(lua_State *L, const char *who)
{
    op_request_t *req = running;
    if (req == NULL || req->co != L || !lua_isyieldable(L))
        luaL_error(L, "%s: cannot wait here: outpost primitives may only wait in a request's "
                      "own code, not in a callback of table.sort or string.gsub, nor in a "
                      "coroutine of your own", who);
    /* The loop's clock is cached per iteration; a timer started after a
     * long stretch of Lua would otherwise fire early. */
    uv_update_time(req->loop);
    return req;
}

int op_request_yield(lua_State *L, op_pending_t *p)
{
    op_request_t *req = running;
    OP_ASSERT(req != NULL && req->co == L && req->pending == NULL);
    own_attrs(req);
    p->req = req;
    p->serial = req->serial;
    req->pending = p;
    return lua_yield(L, 0);
}

op_request_t *op_pending_take(op_pending_t *p)
{
    op_request_t *req = p->req;
    if (req == NULL || req->serial != p->serial || req->pending != p)
        return NULL;
    req->pending = NULL;
    p->req = NULL;
    return req;
}

void op_request_resume(op_request_t *req, int nargs)
{
    (void)run(req, nargs);
}

op_request_t *op_request_current(lua_State *L)
{
    return running != NULL && running->co == L ? running : NULL;
}

op_request_t *op_request_running(void)
{
    return running;
}

op_request_t *op_request_waitable(void)
{
    op_request_t *req = running;
    /* The Lua running now is req->co's own code unless a coroutine of the
     * code's own runs (foreign); lua_isyieldable(req->co) is then false
     * exactly where op_request_check_wait's is: inside a C call boundary
     * (a table.sort comparator, a gsub callback, a finalizer). */
    if (req == NULL || foreign > 0 || !lua_isyieldable(req->co))
        return NULL;
    uv_update_time(req->loop); /* as op_request_check_wait: a hit is judged at the same time */
    return req;
}

void op_request_foreign(int delta)
{
    foreign += delta;
}

op_request_t *op_request_host_new(uv_loop_t *loop, lua_State *co,
                                  void (*finished)(op_request_t *, int status, void *), void *data)
{
    op_request_t *req = op_calloc(1, sizeof *req);
    req->serial = next_serial++;
    req->loop = loop;
    req->co = co;
    req->host = 1;
    req->host_finished = finished;
    req->done_data = data;
    req->start_us = now_us();
    return req;
}

void op_request_host_resume(op_request_t *req, int nargs)
{
    (void)run(req, nargs);
}
