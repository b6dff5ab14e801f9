/* require "outpost.dkim": a message's DKIM verification (lookup/dkim_verify.h)
 * as the milter handlers of a policy see the message, its key records
 * fetched through the DNS service while the body streams
 * (lookup/dkim_fetch.h).
 *
 *   local v = dkim.verifier()       kept in ctx.msg from one phase to the next
 *   v:header(name, value)           each header (on_eoh: ctx.headers)
 *   v:eoh()                         end of headers: starts the key lookups, never waits
 *   v:body(chunk)                   each body chunk (on_body: ctx.chunk)
 *   v:result()                      end of message: waits (yields) while a key
 *                                   is on the way, then verifies; a list of
 *                                   {result=, d=, s=, a=, reason=, testing=},
 *                                   top signature first, empty when unsigned
 *
 * A verifier that is dropped (its message ended, the connection closed)
 * cancels its lookups; their answers still fill the cache. */
#include "core/mem.h"
#include "core/request.h"
#include "core/services.h"
#include "lookup/dkim_fetch.h"
#include "lookup/dkim_verify.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

int luaopen_outpost_dkim(lua_State *L);

#define DKIM_MT "outpost.dkim.verifier"

typedef struct wait_s wait_t;

typedef struct {
    op_dkim_msg_t *msg;
    op_dkim_fetch_t *fetch;
    int eoh;
    wait_t *waiter; /* the request waiting in result(), if any */
} verifier_t;

struct wait_s {
    op_pending_t pending;
    verifier_t *v;
};

static verifier_t *check(lua_State *L)
{
    verifier_t *v = luaL_checkudata(L, 1, DKIM_MT);
    if (v->msg == NULL)
        luaL_error(L, "dkim: verifier already freed");
    return v;
}

static int l_verifier(lua_State *L)
{
    verifier_t *v = lua_newuserdata(L, sizeof *v);
    memset(v, 0, sizeof *v);
    luaL_getmetatable(L, DKIM_MT);
    lua_setmetatable(L, -2);
    v->msg = op_dkim_msg_new();
    if (v->msg == NULL)
        return luaL_error(L, "dkim: libopendkim does not start");
    return 1;
}

static int l_header(lua_State *L)
{
    verifier_t *v = check(L);
    size_t nlen, vlen;
    const char *name = luaL_checklstring(L, 2, &nlen);
    const char *value = luaL_checklstring(L, 3, &vlen);
    if (v->eoh)
        return luaL_error(L, "dkim: header after eoh");
    op_dkim_msg_header(v->msg, name, nlen, value, vlen);
    return 0;
}

static int l_eoh(lua_State *L)
{
    verifier_t *v = check(L);
    if (v->eoh)
        return 0;
    v->eoh = 1;
    op_dkim_msg_eoh(v->msg);
    v->fetch = op_dkim_fetch_start(op_services ? op_services->dns : NULL, v->msg);
    return 0;
}

static int l_body(lua_State *L)
{
    verifier_t *v = check(L);
    size_t len;
    const char *chunk = luaL_checklstring(L, 2, &len);
    if (!v->eoh)
        return luaL_error(L, "dkim: body before eoh");
    op_dkim_msg_body(v->msg, chunk, len);
    return 0;
}

static int push_verdicts(lua_State *L, verifier_t *v)
{
    const op_dkim_verdict_t *vs;
    size_t n = op_dkim_msg_eom(v->msg, &vs);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 6);
        lua_pushstring(L, op_dkim_result_token(vs[i].result));
        lua_setfield(L, -2, "result");
        lua_pushstring(L, vs[i].d);
        lua_setfield(L, -2, "d");
        lua_pushstring(L, vs[i].s);
        lua_setfield(L, -2, "s");
        lua_pushstring(L, vs[i].alg);
        lua_setfield(L, -2, "a");
        lua_pushstring(L, vs[i].reason);
        lua_setfield(L, -2, "reason");
        lua_pushboolean(L, vs[i].testing);
        lua_setfield(L, -2, "testing");
        lua_rawseti(L, -2, (int)i + 1);
    }
    return 1;
}

/* The request gave up (deadline, connection gone): it is no longer told;
 * the lookups go on for the verifier, which may still be asked again. */
static void wait_cancel(op_pending_t *p)
{
    wait_t *w = (wait_t *)p;
    if (w->v) {
        if (w->v->fetch)
            op_dkim_fetch_notify(w->v->fetch, NULL, NULL);
        w->v->waiter = NULL;
    }
    free(w);
}

static void keys_in(void *data)
{
    wait_t *w = data;
    verifier_t *v = w->v;
    v->waiter = NULL;
    op_request_t *req = op_pending_take(&w->pending);
    free(w);
    if (req == NULL)
        return;
    op_request_resume(req, push_verdicts(req->co, v));
}

static int l_result(lua_State *L)
{
    verifier_t *v = check(L);
    if (!v->eoh)
        return luaL_error(L, "dkim: result before eoh");
    if (v->fetch == NULL || op_dkim_fetch_done(v->fetch))
        return push_verdicts(L, v);
    op_request_check_wait(L, "dkim.result");
    if (v->waiter)
        return luaL_error(L, "dkim: result already awaited");
    wait_t *w = op_calloc(1, sizeof *w);
    w->pending.cancel = wait_cancel;
    w->v = v;
    v->waiter = w;
    op_dkim_fetch_notify(v->fetch, keys_in, w);
    return op_request_yield(L, &w->pending);
}

static int l_gc(lua_State *L)
{
    verifier_t *v = luaL_checkudata(L, 1, DKIM_MT);
    /* a waiting request holds v on its stack: no waiter can be left here,
     * but a stale one must not point at freed memory */
    if (v->waiter)
        v->waiter->v = NULL;
    op_dkim_fetch_free(v->fetch);
    v->fetch = NULL;
    op_dkim_msg_free(v->msg);
    v->msg = NULL;
    return 0;
}

int luaopen_outpost_dkim(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"header", l_header},
        {"eoh", l_eoh},
        {"body", l_body},
        {"result", l_result},
        {NULL, NULL},
    };
    luaL_newmetatable(L, DKIM_MT);
    lua_newtable(L);
    luaL_register(L, NULL, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, DKIM_MT);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, l_verifier);
    lua_setfield(L, -2, "verifier");
    return 1;
}
