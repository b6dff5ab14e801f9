/* require "outpost.txnlink": the transaction links (txnlink.h) for policies.
 *
 *   txnlink.put(keys, fields)   -> true; nil, "full" when fields did not all fit
 *   txnlink.get(keys)           -> a fresh table of the fields, or nil
 *   txnlink.unlink(key)         the key no longer names its entry
 *   txnlink.forget(key)         the entry key names is gone, under every key
 *
 * keys is a list of strings (empty ones and false are skipped), fields a
 * table of string keys to strings, numbers or booleans (stored as strings).
 * Which keys name a transaction is the caller's business (lua/lib/
 * transaction.lua); this binding knows no protocol.  None of them yields.
 *
 * In a dry run (a request being explained, core/trace.h) put, unlink and
 * forget change nothing: they answer as if they had, and the trace says
 * they were skipped.  get reads as always. */
#include "core/request.h"
#include "core/services.h"
#include "core/trace.h"
#include "lookup/txnlink.h"

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

int luaopen_outpost_txnlink(lua_State *L);

static op_txnlink_t *table(lua_State *L)
{
    if (op_services == NULL || op_services->txnlink == NULL)
        luaL_error(L, "outpost.txnlink: the service is not running");
    return op_services->txnlink;
}

static uint64_t now_ms(void)
{
    return op_services->loop != NULL ? uv_now(op_services->loop) : uv_hrtime() / 1000000u;
}

/* keys at arg: strings onto the stack (kept alive there), pointers into out. */
static size_t check_keys(lua_State *L, int arg, const char **out)
{
    luaL_checktype(L, arg, LUA_TTABLE);
    size_t n = 0;
    int len = (int)lua_objlen(L, arg);
    for (int i = 1; i <= len; i++) {
        lua_rawgeti(L, arg, i);
        if (lua_type(L, -1) == LUA_TSTRING) {
            if (n == OP_TXNLINK_MAX_KEYS)
                luaL_argerror(L, arg, "at most 8 keys");
            out[n++] = lua_tostring(L, -1);
        } else if (!lua_isnil(L, -1) && !(lua_isboolean(L, -1) && !lua_toboolean(L, -1))) {
            luaL_argerror(L, arg, "keys are strings (or false to skip)");
        }
    }
    return n;
}

/* In a dry run: the step that says what was not written, and 1. */
static int dry(lua_State *L, const char *what, const char *key)
{
    op_request_t *req = op_request_current(L);
    if (req == NULL || req->trace == NULL)
        return 0;
    int step = op_trace_step(req->trace, "txnlink", what, "skipped");
    op_trace_step_end(req->trace, step, NULL, key ? key : "not written: dry run");
    return 1;
}

static int l_put(lua_State *L)
{
    op_txnlink_t *t = table(L);
    const char *keys[OP_TXNLINK_MAX_KEYS];
    size_t nkeys = check_keys(L, 1, keys);
    luaL_checktype(L, 2, LUA_TTABLE);
    op_txnlink_field_t fields[OP_TXNLINK_MAX_FIELDS];
    size_t n = 0;
    int full = 0;
    lua_pushnil(L);
    while (lua_next(L, 2) != 0) {
        luaL_checkstack(L, 4, "outpost.txnlink.put");
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_argerror(L, 2, "field names are strings");
        if (lua_isboolean(L, -1)) {
            lua_pushstring(L, lua_toboolean(L, -1) ? "true" : "false");
            lua_replace(L, -2);
        } else if (!lua_isstring(L, -1)) {
            luaL_argerror(L, 2, "field values are strings, numbers or booleans");
        } else {
            lua_tostring(L, -1); /* a number becomes its string, in place */
        }
        if (n == OP_TXNLINK_MAX_FIELDS) {
            full = 1;
            lua_pop(L, 1);
            continue;
        }
        fields[n].name = lua_tostring(L, -2);
        fields[n].value = lua_tostring(L, -1);
        n++;
        /* keep the value on the stack (the key stays for lua_next) */
        lua_pushvalue(L, -2);
    }
    if (nkeys == 0)
        luaL_argerror(L, 1, "no key");
    if (dry(L, "put", NULL)) {
        lua_pushboolean(L, 1);
        return 1;
    }
    if (op_txnlink_put(t, keys, nkeys, fields, n, now_ms()) != 0 || full) {
        lua_pushnil(L);
        lua_pushliteral(L, "full");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_get(lua_State *L)
{
    op_txnlink_t *t = table(L);
    const char *keys[OP_TXNLINK_MAX_KEYS];
    size_t nkeys = check_keys(L, 1, keys), n = 0;
    const op_txnlink_field_t *f = op_txnlink_get(t, keys, nkeys, &n, now_ms());
    if (f == NULL) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, f[i].value);
        lua_setfield(L, -2, f[i].name);
    }
    return 1;
}

static int l_unlink(lua_State *L)
{
    op_txnlink_t *t = table(L);
    const char *key = luaL_checkstring(L, 1);
    if (!dry(L, "unlink", NULL))
        op_txnlink_unlink(t, key);
    return 0;
}

static int l_forget(lua_State *L)
{
    op_txnlink_t *t = table(L);
    const char *key = luaL_checkstring(L, 1);
    if (!dry(L, "forget", NULL))
        op_txnlink_forget(t, key);
    return 0;
}

int luaopen_outpost_txnlink(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"put", l_put}, {"get", l_get}, {"unlink", l_unlink}, {"forget", l_forget}, {NULL, NULL},
    };
    lua_createtable(L, 0, 4);
    luaL_register(L, NULL, fns);
    return 1;
}
