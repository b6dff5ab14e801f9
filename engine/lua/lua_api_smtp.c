/* require "outpost.smtp": the SMTP call-out (smtp.h), for MO5.
 *
 *   smtp.verify(address, opts)   written in Lua (lua_api_smtp.lua): finds
 *       the host to ask (opts.host, smtp_verify { host }, or the MX through
 *       outpost.dns), then waits for the verdict here, at most opts.budget.
 *
 * The C functions below are the module's private helpers.
 *
 * A dry run (an explained request, core/trace.h) makes the call-out for
 * real: it is read-only to the remote (RCPT TO, then QUIT), and its
 * verdict fills the cache as any call-out does.  Each verdict is a step of
 * the trace: the address, cache or server, its time. */
#include "core/mem.h"
#include "core/request.h"
#include "core/services.h"
#include "core/trace.h"
#include "lookup/smtp.h"

#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>

/* engine/lua/lua_api_smtp.lua, turned into a C string by the Makefile. */
#include "lua_api_smtp_lua.h"

int luaopen_outpost_smtp(lua_State *L);

static const char *const verdicts[] = {"accepted", "rejected", "tempfail"};

typedef struct {
    op_pending_t pending;
    op_lookup_req_t req; /* cancelled when the budget runs out or the request gives up */
    uv_timer_t budget;   /* closed last: its close callback frees the record */
    int step;            /* in the request's trace, or -1 */
} verify_op_t;

static void trace_verdict(lua_State *L, const char *address, const char *where,
                          const char *source, const char *verdict, const char *reply)
{
    op_request_t *req = op_request_current(L);
    if (req == NULL || req->trace == NULL)
        return;
    char q[600], r[700];
    snprintf(q, sizeof q, "verify %.255s%s%.255s", address, where ? " at " : "", where ? where : "");
    snprintf(r, sizeof r, "%s%s%.600s", verdict, reply && *reply ? ": " : "", reply ? reply : "");
    op_trace_step_end(req->trace, op_trace_step(req->trace, "smtp", q, source), NULL, r);
}

static void trace_end(op_request_t *req, int step, const char *verdict, const char *reply)
{
    if (req->trace == NULL || step < 0)
        return;
    char r[700];
    snprintf(r, sizeof r, "%s%s%.600s", verdict, reply && *reply ? ": " : "", reply ? reply : "");
    op_trace_step_end(req->trace, step, NULL, r);
}

static op_smtp_t *service(lua_State *L)
{
    if (op_services == NULL || op_services->smtp == NULL)
        luaL_error(L, "smtp.verify: the SMTP call-out service is not running");
    return op_services->smtp;
}

static void op_free(uv_handle_t *h)
{
    free(h->data);
}

static int push_verdict(lua_State *L, const op_smtp_result_t *r)
{
    lua_pushstring(L, verdicts[r->verdict]);
    lua_pushstring(L, r->reply);
    return 2;
}

static void verify_done(op_lookup_req_t *lreq, const void *res)
{
    verify_op_t *op = lreq->data;
    uv_timer_stop(&op->budget);
    uv_close((uv_handle_t *)&op->budget, op_free);
    op_request_t *req = op_pending_take(&op->pending);
    if (req == NULL)
        return;
    const op_smtp_result_t *r = res;
    trace_end(req, op->step, verdicts[r->verdict], r->reply);
    op_request_resume(req, push_verdict(req->co, res));
}

/* The budget ran out: the request goes on with "pending", the session
 * goes on without it and fills the cache. */
static void budget_over(uv_timer_t *t)
{
    verify_op_t *op = t->data;
    op_lookup_cancel(&op->req);
    uv_close((uv_handle_t *)&op->budget, op_free);
    op_request_t *req = op_pending_take(&op->pending);
    if (req == NULL)
        return;
    trace_end(req, op->step, "pending", "the budget passed; the call-out goes on and fills the cache");
    lua_pushliteral(req->co, "pending");
    op_request_resume(req, 1);
}

static void verify_cancel(op_pending_t *p)
{
    verify_op_t *op = (verify_op_t *)p;
    op_lookup_cancel(&op->req);
    uv_timer_stop(&op->budget);
    uv_close((uv_handle_t *)&op->budget, op_free);
}

/* _verify_at(address, ip, port, budget|nil) -> verdict, reply | "pending" */
static int l_smtp_verify_at(lua_State *L)
{
    const char *address = luaL_checkstring(L, 1);
    const char *ip = luaL_checkstring(L, 2);
    lua_Integer port = luaL_checkinteger(L, 3);
    double budget = luaL_optnumber(L, 4, -1);
    op_request_t *req = op_request_check_wait(L, "smtp.verify");
    op_smtp_t *s = service(L);
    op_smtp_result_t cached;
    if (op_smtp_cached(s, address, &cached)) {
        trace_verdict(L, address, NULL, "cache", verdicts[cached.verdict], cached.reply);
        return push_verdict(L, &cached);
    }
    verify_op_t *op = op_calloc(1, sizeof *op);
    op->pending.cancel = verify_cancel;
    op->req.data = op;
    op->step = -1;
    int rc = op_smtp_verify(s, &op->req, address, ip, (int)port, verify_done);
    if (rc == OP_LOOKUP_HIT) {
        const op_smtp_result_t *hit = op->req.value;
        trace_verdict(L, address, ip, "cache", verdicts[hit->verdict], hit->reply);
        int n = push_verdict(L, op->req.value);
        free(op);
        return n;
    }
    if (rc < 0) {
        /* The service is stopping, or ip/port/address is not usable: no session. */
        free(op);
        lua_pushliteral(L, "tempfail");
        lua_pushfstring(L, "cannot ask %s port %d", ip, (int)port);
        return 2;
    }
    if (req->trace != NULL) {
        char q[600];
        snprintf(q, sizeof q, "verify %.255s at %.64s port %d", address, ip, (int)port);
        op->step = op_trace_step(req->trace, "smtp", q, "server");
    }
    uv_timer_init(req->loop, &op->budget);
    op->budget.data = op;
    if (budget >= 0)
        uv_timer_start(&op->budget, budget_over, (uint64_t)llround(budget * 1000.0), 0);
    return op_request_yield(L, &op->pending);
}

/* _cached(address) -> verdict, reply | nil */
static int l_smtp_cached(lua_State *L)
{
    op_smtp_result_t r;
    const char *address = luaL_checkstring(L, 1);
    if (!op_smtp_cached(service(L), address, &r))
        return 0;
    trace_verdict(L, address, NULL, "cache", verdicts[r.verdict], r.reply);
    return push_verdict(L, &r);
}

/* _valid(address) -> true | false */
static int l_smtp_valid(lua_State *L)
{
    char key[256];
    lua_pushboolean(L, op_smtp_address_key(luaL_checkstring(L, 1), key, sizeof key) == 0);
    return 1;
}

/* _defaults() -> host|nil, port */
static int l_smtp_defaults(lua_State *L)
{
    service(L);
    if (op_services->smtp_host[0])
        lua_pushstring(L, op_services->smtp_host);
    else
        lua_pushnil(L);
    lua_pushinteger(L, op_services->smtp_port);
    return 2;
}

int luaopen_outpost_smtp(lua_State *L)
{
    static const luaL_Reg helpers[] = {
        {"verify_at", l_smtp_verify_at},
        {"cached", l_smtp_cached},
        {"valid", l_smtp_valid},
        {"defaults", l_smtp_defaults},
        {NULL, NULL},
    };
    lua_createtable(L, 0, 2); /* the module */
    if (luaL_loadbuffer(L, lua_api_smtp_lua, sizeof lua_api_smtp_lua - 1, "=engine/lua/lua_api_smtp.lua") != 0)
        return lua_error(L);
    lua_pushvalue(L, -2);
    lua_createtable(L, 0, 4);
    luaL_register(L, NULL, helpers);
    lua_call(L, 2, 0);
    return 1;
}
