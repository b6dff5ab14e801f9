/* The core Lua module, require "outpost": waiting, logging, time.
 *
 *   outpost.sleep(seconds)       waits on a libuv timer (yields the request)
 *   outpost.log(level, message)  one log line tagged with the request id
 *   outpost.now()                wall-clock seconds (float)
 *   outpost.request_id()         id of the running request, or nil
 *   outpost.generation()         number of the running request's generation, or nil
 *   outpost.domain(name)         the normal form of a domain name (names.h), or nil, "badname"
 *   outpost.config()             a copy of the services' settings: {services = {NAME =
 *                                {checks = {ID = MODE}, tenant_checks = {TENANT = {...}},
 *                                deadline =, default_action =}},
 *                                directory = {KEY = value}} (config_lua.c)
 *   outpost.version              daemon version string
 *   outpost.action_metatable     the metatable outpost.action gives its answers */
#include "core/log.h"
#include "core/mem.h"
#include "lib/names.h"
#include "core/request.h"
#include "core/vm.h"
#include "lua/lua_api_ffi.h"

#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <string.h>
#include <sys/time.h>

#ifndef OP_VERSION
#define OP_VERSION "0.0.0"
#endif

int luaopen_outpost(lua_State *L);

typedef struct {
    op_pending_t pending;
    uv_timer_t timer;
} sleep_op_t;

static void sleep_free(uv_handle_t *h)
{
    free(h->data);
}

static void sleep_cancel(op_pending_t *p)
{
    sleep_op_t *op = (sleep_op_t *)p;
    uv_timer_stop(&op->timer);
    uv_close((uv_handle_t *)&op->timer, sleep_free);
}

static void sleep_done(uv_timer_t *t)
{
    sleep_op_t *op = t->data;
    op_request_t *req = op_pending_take(&op->pending);
    uv_close((uv_handle_t *)&op->timer, sleep_free);
    if (req == NULL)
        return;
    lua_pushboolean(req->co, 1);
    op_request_resume(req, 1);
}

static int l_outpost_sleep(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    if (!(s >= 0 && s <= 3600))
        return luaL_argerror(L, 1, "seconds must be between 0 and 3600");
    op_request_t *req = op_request_check_wait(L, "outpost.sleep");
    if (s == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    sleep_op_t *op = op_calloc(1, sizeof *op);
    op->pending.cancel = sleep_cancel;
    uv_timer_init(req->loop, &op->timer);
    op->timer.data = op;
    uv_timer_start(&op->timer, sleep_done, (uint64_t)ceil(s * 1000.0), 0);
    return op_request_yield(L, &op->pending);
}

static int l_outpost_log(lua_State *L)
{
    const char *level_name = luaL_checkstring(L, 1);
    const char *msg = luaL_checkstring(L, 2);
    op_log_level_t level;
    if (op_log_level_parse(level_name, &level) != 0)
        return luaL_argerror(L, 1, "level must be debug, info, notice, warning or error");
    op_request_t *req = op_request_current(L);
    if (req != NULL && !req->host)
        op_log(level, "req=%llu service=%s: %s", (unsigned long long)req->serial,
               req->service->conf->name, msg);
    else
        op_log(level, "lua: %s", msg);
    return 0;
}

static int l_outpost_now(lua_State *L)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    lua_pushnumber(L, (lua_Number)tv.tv_sec + (lua_Number)tv.tv_usec / 1e6);
    return 1;
}

static int l_outpost_request_id(lua_State *L)
{
    op_request_t *req = op_request_current(L);
    if (req == NULL)
        return 0;
    lua_pushnumber(L, (lua_Number)req->serial);
    return 1;
}

static int l_outpost_generation(lua_State *L)
{
    op_request_t *req = op_request_current(L);
    if (req == NULL || req->gen == NULL)
        return 0;
    lua_pushnumber(L, (lua_Number)req->gen->number);
    return 1;
}

static int l_outpost_domain(lua_State *L)
{
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    char out[OP_NAME_MAX + 1];
    if (op_name_normalize(name, len, out, sizeof out) != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "badname");
        return 2;
    }
    lua_pushstring(L, out);
    return 1;
}

/* outpost.domain's fast path (lua_api_ffi.h).  Most names reach it already
 * in normal form (the libraries normalise once and pass the result on): it
 * says so, and the caller hands back the string it has instead of making
 * the same one again. */
int op__ffi_domain(const char *name, size_t len, char *out, size_t cap)
{
    if (op_name_normalize(name, len, out, cap) != 0)
        return -1;
    size_t n = strlen(out);
    if (n == len && memcmp(out, name, len) == 0)
        return OP_FFI_SAME;
    return (int)n;
}

static void deep_copy(lua_State *L, int idx)
{
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pushvalue(L, -2);
        if (lua_istable(L, -2))
            deep_copy(L, -2);
        else
            lua_pushvalue(L, -2);
        lua_rawset(L, -5);
        lua_pop(L, 1);
    }
}

/* A copy, so one policy cannot change what another sees. */
static int l_outpost_config(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "outpost.config");
    if (!lua_istable(L, -1)) {
        lua_newtable(L);
        return 1;
    }
    deep_copy(L, -1);
    return 1;
}

int luaopen_outpost(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"sleep", l_outpost_sleep},
        {"log", l_outpost_log},
        {"now", l_outpost_now},
        {"request_id", l_outpost_request_id},
        {"generation", l_outpost_generation},
        {"config", l_outpost_config},
        {NULL, NULL},
    };
    lua_createtable(L, 0, 8);
    luaL_register(L, NULL, fns);
    op_ffi_offer(L, "outpost.domain", l_outpost_domain);
    lua_setfield(L, -2, "domain");
    lua_pushstring(L, OP_VERSION);
    lua_setfield(L, -2, "version");
    lua_getfield(L, LUA_REGISTRYINDEX, OP_ACTION_MT);
    lua_setfield(L, -2, "action_metatable");
    return 1;
}
