/* Reading policy.macros at load into the service's symbol lists
 * (milter_macros.h). */
#include "proto/milter_macros.h"

#include "core/mem.h"

#include <stdio.h>
#include <string.h>

/* policy.macros = { mail = { "{auth_authen}", "i" }, eom = { "i" }, ... }:
 * the macros the milter handlers read, per stage (docs/milter.md).  The
 * policy table is on the top of L; it stays there. */
static int load(lua_State *L, void **slot, char *err, size_t errlen)
{
    lua_getfield(L, -1, "macros");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "policy.macros must be a table of stage = { macro names }");
        lua_pop(L, 1);
        return -1;
    }
    op_milter_symlists_t *gs = op_calloc(1, sizeof *gs);
    *slot = gs; /* freed with the generation, even when the load fails */
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        const char *stage_name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
        int st = op_milter_stage(stage_name);
        if (st < 0 || !lua_istable(L, -1)) {
            snprintf(err, errlen, "policy.macros.%s: %s", stage_name,
                     st < 0 ? "no such stage (connect, helo, mail, rcpt, data, eoh, eom)"
                            : "must be a list of macro names");
            lua_pop(L, 3);
            return -1;
        }
        char *list = gs->lists[st];
        size_t at = 0, n = lua_objlen(L, -1);
        for (size_t i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, (int)i);
            const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
            size_t len = m ? strlen(m) : 0;
            if (!op_milter_macro_name_valid(m) || at + len + 1 > OP_MILTER_SYMLIST_MAX) {
                snprintf(err, errlen, "policy.macros.%s[%zu]: %s", stage_name, i,
                         !op_milter_macro_name_valid(m)
                             ? "not a macro name (one character, or {name})"
                             : "the list is longer than the protocol allows");
                lua_pop(L, 4);
                return -1;
            }
            at += (size_t)snprintf(list + at, OP_MILTER_SYMLIST_MAX + 1 - at, "%s%s",
                                   at ? " " : "", m);
            lua_pop(L, 1);
        }
        gs->set |= 1u << st;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return 0;
}

static void free_lists(void *slot)
{
    free(slot);
}

const op_gen_proto_t op_milter_gen_proto = {load, free_lists};

const op_milter_symlists_t *op_milter_symlists(const op_gen_service_t *svc)
{
    return svc->proto;
}
