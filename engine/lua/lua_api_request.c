#include "lua/lua_api_request.h"
#include "lua/lua_api_ffi.h"

#include <lauxlib.h>
#include <string.h>

static op_request_t *live_request(lua_State *L)
{
    struct op_attrs_ud *ud = luaL_checkudata(L, 1, OP_ATTRS_MT);
    if (ud->req == NULL)
        luaL_error(L, "req.attrs: this request has ended; copy the values you need into "
                      "locals instead of keeping req.attrs");
    return ud->req;
}

static int l_attrs_index(lua_State *L)
{
    op_request_t *req = live_request(L);
    size_t len;
    const char *name = lua_tolstring(L, 2, &len);
    if (name == NULL || lua_type(L, 2) != LUA_TSTRING)
        return 0;
    for (size_t i = 0; i < req->nattrs; i++) {
        const op_request_attr_t *a = &req->attrs[i];
        if (a->name_len == len && memcmp(a->name, name, len) == 0) {
            lua_pushlstring(L, a->value, a->value_len);
            return 1;
        }
    }
    return 0;
}

/* req.attrs[name]'s fast path (lua_api_ffi.h): only ever called as the
 * attrs metatable's __index, so attrs_ud is an attrs userdata. */
const char *op__ffi_attr(const void *attrs_ud, const char *name, size_t len, int *vlen)
{
    const op_request_t *req = ((const struct op_attrs_ud *)attrs_ud)->req;
    *vlen = 0;
    if (req == NULL) {
        *vlen = -1;
        return NULL;
    }
    for (size_t i = 0; i < req->nattrs; i++) {
        const op_request_attr_t *a = &req->attrs[i];
        if (a->name_len == len && memcmp(a->name, name, len) == 0) {
            *vlen = (int)a->value_len;
            return a->value;
        }
    }
    return NULL;
}

static int l_attrs_newindex(lua_State *L)
{
    return luaL_error(L, "req.attrs is read-only (it is what the MTA sent)");
}

/* Iterator of __pairs: the control value is the previous name. */
static int l_attrs_next(lua_State *L)
{
    op_request_t *req = live_request(L);
    size_t i = 0;
    if (!lua_isnil(L, 2)) {
        size_t len;
        const char *prev = luaL_checklstring(L, 2, &len);
        while (i < req->nattrs &&
               !(req->attrs[i].name_len == len && memcmp(req->attrs[i].name, prev, len) == 0))
            i++;
        i++;
    }
    if (i >= req->nattrs)
        return 0;
    lua_pushlstring(L, req->attrs[i].name, req->attrs[i].name_len);
    lua_pushlstring(L, req->attrs[i].value, req->attrs[i].value_len);
    return 2;
}

static int l_attrs_pairs(lua_State *L)
{
    live_request(L);
    lua_pushcfunction(L, l_attrs_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int l_attrs_tostring(lua_State *L)
{
    struct op_attrs_ud *ud = luaL_checkudata(L, 1, OP_ATTRS_MT);
    if (ud->req == NULL)
        lua_pushstring(L, "req.attrs (request ended)");
    else
        lua_pushfstring(L, "req.attrs (%d attributes)", (int)ud->req->nattrs);
    return 1;
}

void op_attrs_register(lua_State *L)
{
    static const luaL_Reg mt[] = {
        {"__newindex", l_attrs_newindex},
        {"__pairs", l_attrs_pairs},
        {"__tostring", l_attrs_tostring},
        {NULL, NULL},
    };
    luaL_newmetatable(L, OP_ATTRS_MT);
    luaL_register(L, NULL, mt);
    op_ffi_offer(L, "attrs.__index", l_attrs_index);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "outpost.attrs");
    lua_setfield(L, -2, "__metatable"); /* getmetatable() must not hand it out */
    lua_pop(L, 1);
}

void op_attrs_push(lua_State *co, op_request_t *req)
{
    struct op_attrs_ud *ud = lua_newuserdata(co, sizeof *ud);
    ud->req = req;
    req->attrs_ud = ud;
    luaL_getmetatable(co, OP_ATTRS_MT);
    lua_setmetatable(co, -2);
}

void op_attrs_detach(op_request_t *req)
{
    if (req->attrs_ud != NULL) {
        req->attrs_ud->req = NULL;
        req->attrs_ud = NULL;
    }
}
