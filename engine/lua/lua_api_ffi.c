#include "lua/lua_api_ffi.h"

#include "core/request.h"

#include <lauxlib.h>
#include <stdio.h>

/* engine/lua/lua_api_ffi.lua, turned into a C string by the Makefile. */
#include "lua_api_ffi_lua.h"

#define REG_KEY "outpost.ffi"

static const op_ffi_api_t api = {
    .size = sizeof(op_ffi_api_t),
    .domain = op__ffi_domain,
    .attr = op__ffi_attr,
    .netset_match = op__ffi_netset_match,
    .limit = op__ffi_limit,
    .limit_source = op__ffi_limit_source,
    .dns = op__ffi_dns,
    .dns_reverse = op__ffi_dns_reverse,
    .dns_record = op__ffi_dns_record,
    .dns_token = op__ffi_dns_token,
    .dns_now_ms = op__ffi_dns_now_ms,
    .ldap = op__ffi_ldap,
    .ldap_token = op__ffi_ldap_token,
    .foreign = op__ffi_foreign,
};

void op__ffi_foreign(int delta)
{
    op_request_foreign(delta);
}

/* The registry's "outpost.ffi" table, made on the first offer of a state:
 * the chunk's makers and its choice of path. */
static void push_state(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, REG_KEY);
    if (!lua_isnil(L, -1))
        return;
    lua_pop(L, 1);
    if (luaL_loadbuffer(L, lua_api_ffi_lua, sizeof lua_api_ffi_lua - 1, "=engine/lua/lua_api_ffi.lua") != 0)
        lua_error(L); /* built in: a broken chunk is a build bug, found by every test */
    lua_pushlightuserdata(L, (void *)&api);
    lua_call(L, 1, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, REG_KEY);
}

int op_ffi_offer(lua_State *L, const char *name, lua_CFunction classic)
{
    return op_ffi_offer_with(L, name, classic, 0);
}

int op_ffi_offer_with(lua_State *L, const char *name, lua_CFunction classic, int extra)
{
    if (extra < 0 && extra > LUA_REGISTRYINDEX)
        extra = lua_gettop(L) + extra + 1; /* the pushes below move relative indexes */
    push_state(L);
    int st = lua_gettop(L);
    /* One function value for the classic twin (each lua_pushcfunction
     * makes a new one), so a spec can compare a module's field with it. */
    lua_pushcfunction(L, classic);
    int fn = lua_gettop(L);
    lua_getfield(L, st, "classic");
    lua_pushvalue(L, fn);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);

    lua_getfield(L, st, "make");
    lua_getfield(L, -1, name);
    if (!lua_isfunction(L, -1))
        luaL_error(L, "outpost.ffi: no fast path named %s", name);
    lua_pushvalue(L, fn);
    if (extra != 0)
        lua_pushvalue(L, extra);
    else
        lua_pushnil(L);
    lua_call(L, 2, 1); /* make[name](classic, extra) -> the fast function */
    lua_getfield(L, st, "fast");
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);

    lua_getfield(L, st, "active");
    int active = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (!active) {
        lua_pop(L, 1);
        lua_pushvalue(L, fn);
    }
    lua_replace(L, st); /* the chosen one where the state table was */
    lua_settop(L, st);
    return active;
}

void op_ffi_offer_fields(lua_State *L, const char *module, const luaL_Reg *fns)
{
    char name[64];
    for (const luaL_Reg *f = fns; f->name != NULL; f++) {
        snprintf(name, sizeof name, "%s.%s", module, f->name);
        op_ffi_offer(L, name, f->func);
        lua_setfield(L, -2, f->name);
    }
}
