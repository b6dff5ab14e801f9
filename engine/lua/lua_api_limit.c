/* require "outpost.limit": the counters service (counters.h) for policies.
 *
 *   limit.check(name, subject [, n [, opts]])            would n more fit?  changes nothing
 *   limit.add(name, subject [, n [, opts]])              check-and-add, counted at once
 *   limit.reserve(name, subject, instance [, n [, opts]]) check-and-add, held for instance
 *   limit.commit(instance [, keep])                       -> committed, released
 *   limit.release(instance)                               -> released
 *
 * opts.max is the subject's maximum from the directory (a tier value),
 * capped at the limit's max_override; an operator override wins over it.
 * Answers are tables {ok, limit, subject, max, used, remaining, next_free,
 * window, resolution, source}; next_free is nil when n can never fit.
 *
 * None of them yields: the store answers on the loop thread at once, which
 * is also what makes check-and-add atomic.  Misuse (an unknown limit name,
 * a bad argument) raises; a store failure returns nil, "unavailable". */
#include "counters/counters.h"
#include "core/services.h"

#include <lauxlib.h>
#include <lua.h>
#include <string.h>

int luaopen_outpost_limit(lua_State *L);

static op_counters_t *counters(void)
{
    return op_services != NULL ? op_services->counters : NULL;
}

static const char *check_key(lua_State *L, int arg, const char *what)
{
    size_t len;
    const char *s = luaL_checklstring(L, arg, &len);
    if (len == 0 || len > OP_COUNTERS_MAX_KEY || strlen(s) != len)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s must be 1 to %d bytes without NUL", what,
                                              OP_COUNTERS_MAX_KEY));
    return s;
}

static int64_t check_n(lua_State *L, int arg)
{
    lua_Number n = luaL_optnumber(L, arg, 1);
    if (!(n >= 0 && n <= 1e9) || n != (lua_Number)(int64_t)n)
        luaL_argerror(L, arg, "n must be a whole number from 0 to 1e9");
    return (int64_t)n;
}

/* opts.max, or -1 */
static int64_t check_opts(lua_State *L, int arg)
{
    if (lua_isnoneornil(L, arg))
        return -1;
    luaL_checktype(L, arg, LUA_TTABLE);
    lua_getfield(L, arg, "max");
    int64_t max = -1;
    if (!lua_isnil(L, -1)) {
        lua_Number m = lua_tonumber(L, -1);
        if (!lua_isnumber(L, -1) || !(m >= 0 && m <= 1e9))
            luaL_argerror(L, arg, "opts.max must be a number from 0 to 1e9");
        max = (int64_t)m;
    }
    lua_pop(L, 1);
    return max;
}

static int failed(lua_State *L, int rc, const char *name)
{
    if (rc == OP_COUNTERS_ENOLIMIT)
        return luaL_error(L, "outpost.limit: no limit '%s' in the configuration", name);
    if (rc == OP_COUNTERS_EINVAL)
        return luaL_error(L, "outpost.limit: bad argument");
    lua_pushnil(L);
    lua_pushliteral(L, "unavailable");
    return 2;
}

static void set_int(lua_State *L, const char *k, int64_t v)
{
    lua_pushnumber(L, (lua_Number)v);
    lua_setfield(L, -2, k);
}

static int push_answer(lua_State *L, const char *name, const char *subject,
                       const op_counters_answer_t *a)
{
    lua_createtable(L, 0, 10);
    lua_pushboolean(L, a->ok);
    lua_setfield(L, -2, "ok");
    lua_pushstring(L, name);
    lua_setfield(L, -2, "limit");
    lua_pushstring(L, subject);
    lua_setfield(L, -2, "subject");
    set_int(L, "max", a->max);
    set_int(L, "used", a->used);
    set_int(L, "remaining", a->remaining);
    if (a->next_free >= 0)
        set_int(L, "next_free", a->next_free);
    set_int(L, "window", a->window);
    set_int(L, "resolution", a->resolution);
    lua_pushstring(L, op_counters_source_name(a->source));
    lua_setfield(L, -2, "source");
    return 1;
}

/* The limit name is checked before the service: a typo is misuse even in
 * a run without counters. */
static op_counters_t *need(lua_State *L, const char *name)
{
    op_counters_t *c = counters();
    if (c != NULL && name != NULL && !op_counters_has_limit(c, name))
        luaL_error(L, "outpost.limit: no limit '%s' in the configuration", name);
    return c;
}

static int unavailable(lua_State *L)
{
    lua_pushnil(L);
    lua_pushliteral(L, "unavailable");
    return 2;
}

static int l_limit_check_add(lua_State *L, int add)
{
    const char *name = check_key(L, 1, "limit name");
    const char *subject = check_key(L, 2, "subject");
    int64_t n = check_n(L, 3), dir_max = check_opts(L, 4);
    op_counters_t *c = need(L, name);
    if (c == NULL)
        return unavailable(L);
    op_counters_answer_t a;
    int rc = add ? op_counters_add(c, name, subject, n, dir_max, &a)
                 : op_counters_check(c, name, subject, n, dir_max, &a);
    return rc < 0 ? failed(L, rc, name) : push_answer(L, name, subject, &a);
}

static int l_limit_check(lua_State *L)
{
    return l_limit_check_add(L, 0);
}

static int l_limit_add(lua_State *L)
{
    return l_limit_check_add(L, 1);
}

static int l_limit_reserve(lua_State *L)
{
    const char *name = check_key(L, 1, "limit name");
    const char *subject = check_key(L, 2, "subject");
    const char *instance = check_key(L, 3, "instance");
    int64_t n = check_n(L, 4), dir_max = check_opts(L, 5);
    op_counters_t *c = need(L, name);
    if (c == NULL)
        return unavailable(L);
    op_counters_answer_t a;
    int rc = op_counters_reserve(c, name, subject, instance, n, dir_max, &a);
    return rc < 0 ? failed(L, rc, name) : push_answer(L, name, subject, &a);
}

static int l_limit_commit(lua_State *L)
{
    const char *instance = check_key(L, 1, "instance");
    lua_Number keep = luaL_optnumber(L, 2, -1);
    if (!lua_isnoneornil(L, 2) && !(keep >= 0))
        return luaL_argerror(L, 2, "keep must be a number >= 0");
    op_counters_t *c = need(L, NULL);
    if (c == NULL)
        return unavailable(L);
    int64_t committed, released;
    int rc = op_counters_commit(c, instance, (int64_t)keep, &committed, &released);
    if (rc < 0)
        return failed(L, rc, "");
    lua_pushnumber(L, (lua_Number)committed);
    lua_pushnumber(L, (lua_Number)released);
    return 2;
}

static int l_limit_release(lua_State *L)
{
    const char *instance = check_key(L, 1, "instance");
    op_counters_t *c = need(L, NULL);
    if (c == NULL)
        return unavailable(L);
    int64_t released;
    int rc = op_counters_release(c, instance, &released);
    if (rc < 0)
        return failed(L, rc, "");
    lua_pushnumber(L, (lua_Number)released);
    return 1;
}

int luaopen_outpost_limit(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"check", l_limit_check},
        {"add", l_limit_add},
        {"reserve", l_limit_reserve},
        {"commit", l_limit_commit},
        {"release", l_limit_release},
        {NULL, NULL},
    };
    lua_createtable(L, 0, 5);
    luaL_register(L, NULL, fns);
    return 1;
}
