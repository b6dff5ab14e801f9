/* require "outpost.netset": CIDR sets for policies and lists (netset.h).
 *
 *   local set = netset.new()
 *   set:add("10.0.0.0/8", "area-a")        -- raises on a bad network
 *   set:add_list({"192.0.2.0/24", ...})    -- several, same rules
 *   local label, prefix = set:match(ip)    -- longest match, or nil
 *   #set                                   -- number of prefixes */
#include "lib/netset.h"
#include "lua/lua_api_ffi.h"

#include <lauxlib.h>
#include <lua.h>

#define NETSET_MT "outpost.netset"

int luaopen_outpost_netset(lua_State *L);

static op_netset_t **check(lua_State *L)
{
    op_netset_t **s = luaL_checkudata(L, 1, NETSET_MT);
    if (*s == NULL)
        luaL_argerror(L, 1, "netset already freed");
    return s;
}

static int l_netset_new(lua_State *L)
{
    op_netset_t **s = lua_newuserdata(L, sizeof *s);
    *s = op_netset_new();
    luaL_getmetatable(L, NETSET_MT);
    lua_setmetatable(L, -2);
    return 1;
}

static int l_netset_add(lua_State *L)
{
    op_netset_t **s = check(L);
    const char *cidr = luaL_checkstring(L, 2);
    const char *label = luaL_optstring(L, 3, NULL);
    char err[200];
    if (op_netset_add(*s, cidr, label, err, sizeof err) != 0)
        return luaL_error(L, "%s", err);
    lua_settop(L, 1);
    return 1;
}

static int l_netset_match(lua_State *L)
{
    op_netset_t **s = check(L);
    const char *addr = luaL_checkstring(L, 2);
    int prefix = 0;
    const char *label = op_netset_match(*s, addr, &prefix);
    if (label == NULL)
        return 0;
    lua_pushstring(L, label);
    lua_pushinteger(L, prefix);
    return 2;
}

/* netset:match's fast path (lua_api_ffi.h); the caller has checked that
 * netset_ud is a netset's userdata. */
const char *op__ffi_netset_match(const void *netset_ud, const char *addr, int *prefix)
{
    const op_netset_t *s = *(op_netset_t *const *)netset_ud;
    *prefix = 0;
    if (s == NULL) {
        *prefix = -1;
        return NULL;
    }
    return op_netset_match(s, addr, prefix);
}

static int l_netset_len(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)op_netset_count(*check(L)));
    return 1;
}

static int l_netset_gc(lua_State *L)
{
    op_netset_t **s = luaL_checkudata(L, 1, NETSET_MT);
    op_netset_free(*s);
    *s = NULL;
    return 0;
}

int luaopen_outpost_netset(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"add", l_netset_add},
        {NULL, NULL},
    };
    luaL_newmetatable(L, NETSET_MT);
    lua_newtable(L);
    luaL_register(L, NULL, methods);
    op_ffi_offer(L, "netset.match", l_netset_match);
    lua_setfield(L, -2, "match");
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_netset_len);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, l_netset_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, NETSET_MT);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, l_netset_new);
    lua_setfield(L, -2, "new");
    return 1;
}
