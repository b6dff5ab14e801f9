/* req.attrs: a request's Postfix attributes as Lua sees them, read lazily.
 *
 *   req.attrs.sasl_username      the value, a string, or nil when Postfix did
 *                                not send that attribute
 *   pairs(req.attrs)             every attribute (the sandbox's pairs honours
 *                                __pairs; LuaJIT's own does not)
 *
 * A userdata, not a table: most policies read a handful of the ~30
 * attributes, so strings are made only for those.  Once its request has
 * ended, reading it raises (a policy that kept it in a module-level local
 * would otherwise read freed memory). */
#ifndef OP_LUA_API_REQUEST_H
#define OP_LUA_API_REQUEST_H

#include "core/request.h"

#include <lua.h>

#define OP_ATTRS_MT "outpost.attrs"

struct op_attrs_ud {
    op_request_t *req; /* NULL once the request has ended */
};

/* Registers the metatable in L's registry; once per lua_State. */
void op_attrs_register(lua_State *L);
/* Pushes the attrs userdata of req onto co and remembers it in req. */
void op_attrs_push(lua_State *co, op_request_t *req);
/* The request ended: its attrs userdata no longer reads it. */
void op_attrs_detach(op_request_t *req);

#endif
