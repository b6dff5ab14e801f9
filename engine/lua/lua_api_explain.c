/* require "outpost.explain": the check pipeline's side of a dry run's
 * trace (core/trace.h).  A request is explained when outpostctl explain
 * or outpostd ask --dry-run started it; its req.explain is then true and
 * the pipeline (lua/lib/outpost/pipeline.lua) brackets each check:
 *
 *   explain.check_begin(id, description, mode)
 *   explain.check_end(verdict, text)
 *
 * Lookups and counters record their own steps from C.  Outside an
 * explained request both calls do nothing.
 *
 * For specs (outpostd test), in the spec's own coroutine:
 *   explain.begin()          the primitives called from now on run dry
 *   explain.finish([json])   -> the trace rendered (text, or JSON), and
 *                               the dry run ends
 *   explain.active()         -> whether this coroutine runs dry */
#include "core/request.h"
#include "core/trace.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>

int luaopen_outpost_explain(lua_State *L);

static op_trace_t *trace_of(lua_State *L)
{
    op_request_t *req = op_request_current(L);
    return req != NULL ? req->trace : NULL;
}

static int l_check_begin(lua_State *L)
{
    const char *id = luaL_checkstring(L, 1);
    const char *description = luaL_optstring(L, 2, "");
    const char *mode = luaL_optstring(L, 3, "enforce");
    op_trace_check_begin(trace_of(L), id, description, mode);
    return 0;
}

static int l_check_end(lua_State *L)
{
    const char *verdict = luaL_checkstring(L, 1);
    const char *text = luaL_optstring(L, 2, NULL);
    op_trace_check_end(trace_of(L), verdict, text);
    return 0;
}

static int l_active(lua_State *L)
{
    lua_pushboolean(L, trace_of(L) != NULL);
    return 1;
}

static op_request_t *host_request(lua_State *L, const char *who)
{
    op_request_t *req = op_request_current(L);
    if (req == NULL || !req->host)
        luaL_error(L, "%s: only a spec's own coroutine (outpostd test) starts a dry run this way; "
                      "the daemon's are started by outpostctl explain", who);
    return req;
}

static int l_begin(lua_State *L)
{
    op_request_t *req = host_request(L, "explain.begin");
    op_trace_free(req->trace);
    req->trace = op_trace_new();
    return 0;
}

static int l_finish(lua_State *L)
{
    op_request_t *req = host_request(L, "explain.finish");
    if (req->trace == NULL)
        return luaL_error(L, "explain.finish: no dry run began (explain.begin)");
    char *text = op_trace_render(req->trace, lua_toboolean(L, 1), "spec", "", 0, "-", "-", "-", 0);
    op_trace_free(req->trace);
    req->trace = NULL;
    lua_pushstring(L, text);
    free(text);
    return 1;
}

int luaopen_outpost_explain(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"check_begin", l_check_begin},
        {"check_end", l_check_end},
        {"active", l_active},
        {"begin", l_begin},
        {"finish", l_finish},
        {NULL, NULL},
    };
    lua_createtable(L, 0, 5);
    luaL_register(L, NULL, fns);
    return 1;
}
