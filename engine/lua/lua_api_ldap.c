/* require "outpost.ldap": the LDAP service (engine/lookup/ldap_service.h) for policies.
 *
 *   ldap.search{base=, scope=, filter=, args=, attrs=, timeout=, cache=}
 *       yields unless the answer is cached; returns a list of entries
 *       {dn = "...", attrs = {name = {value, ...}}} (possibly empty), or
 *       nil, token: "timeout", "unavailable", "nosuchobject", "sizelimit",
 *       "invalid".  filter is a template (ldap_filter.h): request data goes
 *       into args and is escaped, never into the template.  The list is
 *       shared: the same cached answer gives the same (read-only: a new
 *       key raises) tables until it expires, so a policy may keep what it
 *       derived from them.  With the JIT on, a hit is answered by the FFI
 *       fast path (op__ffi_ldap below, lua_api_ffi.lua), with the same list.
 *   ldap.directory()  the directory { } settings (= outpost.config().directory)
 *   ldap.stats()      counters of the service (searches, cache hits, ...)
 *   ldap.flush()      empties the cache
 *   ldap.configured() true when an LDAP service runs
 *
 * In an explained request (core/trace.h) each search is a step of the
 * trace: its filter, cache or server, its time and the DNs found. */
#include "lookup/ldap_service.h"
#include "lookup/ldap_filter.h"
#include "core/mem.h"
#include "core/request.h"
#include "core/services.h"
#include "core/trace.h"
#include "lua/lua_api_ffi.h"
#include "lua/lua_api_spare.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <string.h>

int luaopen_outpost_ldap(lua_State *L);

#define ATTRS_MT "outpost.ldap.attrs"
/* The list of an answer and its entries: shared, so read-only (a new key
 * raises; Lua 5.1 cannot refuse a store to a key a table holds). */
#define ANSWER_MT "outpost.ldap.answer"
#define MAX_ATTRS 64
/* Decoded answers, by serial: registry[DECODED][2i+1] = serial,
 * [2i+2] = the list; direct-mapped, a collision replaces. */
#define DECODED "outpost.ldap.decoded"
#define DECODED_SLOTS 4096

typedef struct {
    op_pending_t pending;
    op_ldap_req_t search;
    int step; /* in the request's trace, or -1 */
} search_rec_t;

/* The one-record spare (lua_api_spare.h). */
static void *spare;

static search_rec_t *rec_take(void)
{
    return op_spare_take(&spare, sizeof(search_rec_t));
}

static void rec_give_back(search_rec_t *rec)
{
    op_spare_give_back(&spare, rec);
}

/* The answer for people: how many entries and the first DNs, or the token. */
static void trace_answer(op_trace_t *t, int step, const char *source, const op_ldap_result_t *r,
                         int rc)
{
    if (t == NULL || step < 0)
        return;
    if (r == NULL || r->status != OP_LDAP_OK) {
        op_trace_step_end(t, step, source,
                          op_ldap_status_token(r != NULL ? r->status : (op_ldap_status_t)-rc));
        return;
    }
    char out[600];
    int at = snprintf(out, sizeof out, "%zu %s", r->nentries, r->nentries == 1 ? "entry" : "entries");
    for (size_t i = 0; i < r->nentries && i < 3 && at > 0 && (size_t)at < sizeof out - 10; i++) {
        int n = snprintf(out + at, sizeof out - (size_t)at, "%s%.150s", i ? ", " : ": ",
                         r->entries[i].dn ? r->entries[i].dn : "");
        if (n > 0)
            at += n;
    }
    if (r->nentries > 3 && at > 0 && (size_t)at < sizeof out - 6)
        snprintf(out + at, sizeof out - (size_t)at, ", ...");
    op_trace_step_end(t, step, source, out);
}

static op_ldap_t *service(lua_State *L)
{
    if (op_services == NULL || op_services->ldap == NULL)
        luaL_error(L, "outpost.ldap: no LDAP service (configure ldap { uris = [...] })");
    return op_services->ldap;
}

static void push_decoded_cache(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, DECODED);
    if (lua_istable(L, -1))
        return;
    lua_pop(L, 1);
    lua_createtable(L, 2 * DECODED_SLOTS, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, DECODED);
}

static void decode(lua_State *L, const op_ldap_result_t *r);

/* Pushes an answer: the list of entries, or nil, token.  A cached answer
 * is decoded once, not on every request that reads it. */
static int push_result(lua_State *L, const op_ldap_result_t *r)
{
    if (r->status != OP_LDAP_OK) {
        lua_pushnil(L);
        lua_pushstring(L, op_ldap_status_token(r->status));
        return 2;
    }
    push_decoded_cache(L);
    int slot = (int)(r->serial % DECODED_SLOTS) * 2;
    lua_rawgeti(L, -1, slot + 1);
    if (lua_type(L, -1) == LUA_TNUMBER && (uint64_t)lua_tonumber(L, -1) == r->serial) {
        lua_pop(L, 1);
        lua_rawgeti(L, -1, slot + 2);
        lua_remove(L, -2);
        return 1;
    }
    lua_pop(L, 1);
    decode(L, r);
    lua_pushnumber(L, (lua_Number)r->serial);
    lua_rawseti(L, -3, slot + 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, slot + 2);
    lua_remove(L, -2);
    return 1;
}

static void decode(lua_State *L, const op_ldap_result_t *r)
{
    lua_createtable(L, (int)r->nentries, 0);
    for (size_t i = 0; i < r->nentries; i++) {
        const op_ldap_entry_t *e = &r->entries[i];
        lua_createtable(L, 0, 2);
        lua_pushstring(L, e->dn);
        lua_setfield(L, -2, "dn");
        lua_createtable(L, 0, (int)e->nattrs);
        for (size_t j = 0; j < e->nattrs; j++) {
            const op_ldap_attr_t *a = &e->attrs[j];
            /* Attribute names are case-insensitive: stored in lower case,
             * found in any case through the metatable. */
            char name[128];
            size_t n = 0;
            for (; a->name[n] != '\0' && n < sizeof name - 1; n++)
                name[n] = (char)((a->name[n] >= 'A' && a->name[n] <= 'Z') ? a->name[n] + 32 : a->name[n]);
            lua_pushlstring(L, name, n);
            lua_createtable(L, (int)a->nvalues, 0);
            for (size_t k = 0; k < a->nvalues; k++) {
                lua_pushlstring(L, a->values[k], a->lens[k]);
                lua_rawseti(L, -2, (int)k + 1);
            }
            lua_rawset(L, -3);
        }
        luaL_getmetatable(L, ATTRS_MT);
        lua_setmetatable(L, -2);
        lua_setfield(L, -2, "attrs");
        luaL_getmetatable(L, ANSWER_MT);
        lua_setmetatable(L, -2);
        lua_rawseti(L, -2, (int)i + 1);
    }
    luaL_getmetatable(L, ANSWER_MT);
    lua_setmetatable(L, -2);
}

/* __newindex of an answer's tables: names the line that assigned. */
static int l_refuse(lua_State *L)
{
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : luaL_typename(L, 2);
    luaL_where(L, 1);
    lua_pushfstring(L, "cannot assign field %s of an LDAP answer: it is shared by every "
                       "request that reads it, and read-only", k);
    lua_concat(L, 2);
    return lua_error(L);
}

static int l_attrs_index(lua_State *L)
{
    size_t n;
    const char *k = lua_tolstring(L, 2, &n);
    if (k == NULL || lua_type(L, 2) != LUA_TSTRING)
        return 0;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < n; i++)
        luaL_addchar(&b, (k[i] >= 'A' && k[i] <= 'Z') ? (char)(k[i] + 32) : k[i]);
    luaL_pushresult(&b);
    lua_rawget(L, 1);
    return 1;
}

static void search_cancel(op_pending_t *p)
{
    search_rec_t *rec = (search_rec_t *)p;
    op_ldap_cancel(&rec->search);
    free(rec);
}

static void search_done(op_ldap_req_t *search, op_ldap_result_t *res)
{
    search_rec_t *rec = search->data;
    op_request_t *req = op_pending_take(&rec->pending);
    if (req == NULL)
        return; /* cannot happen: a cancelled search never answers; the cancel hook frees */
    if (req->trace != NULL)
        trace_answer(req->trace, rec->step, NULL, res, 0);
    free(rec);
    op_request_resume(req, push_result(req->co, res));
}

static int scope_arg(lua_State *L)
{
    lua_getfield(L, 1, "scope");
    const char *s = lua_isnil(L, -1) ? "sub" : lua_tostring(L, -1);
    lua_pop(L, 1);
    if (s != NULL && strcmp(s, "sub") == 0)
        return OP_LDAP_SCOPE_SUB;
    if (s != NULL && strcmp(s, "one") == 0)
        return OP_LDAP_SCOPE_ONE;
    if (s != NULL && strcmp(s, "base") == 0)
        return OP_LDAP_SCOPE_BASE;
    return luaL_argerror(L, 1, "scope must be \"sub\", \"one\" or \"base\"");
}

static int l_ldap_search(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    op_ldap_t *l = service(L);
    op_ldap_query_t q = {0};

    lua_getfield(L, 1, "base");
    q.base = lua_tostring(L, -1);
    if (lua_type(L, -1) != LUA_TSTRING)
        return luaL_argerror(L, 1, "base must be a string (a DN)");
    lua_pop(L, 1); /* the table keeps it alive */
    q.scope = scope_arg(L);

    lua_getfield(L, 1, "filter");
    if (lua_type(L, -1) != LUA_TSTRING)
        return luaL_argerror(L, 1, "filter must be a string (a template: %s, %1..%9)");
    const char *tmpl = lua_tostring(L, -1);
    lua_pop(L, 1);

    op_ldap_arg_t args[OP_LDAP_FILTER_ARGS];
    size_t nargs = 0;
    lua_getfield(L, 1, "args");
    int args_at = lua_gettop(L);
    luaL_checkstack(L, OP_LDAP_FILTER_ARGS + 8, "outpost.ldap.search");
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1))
            return luaL_argerror(L, 1, "args must be a list of strings");
        size_t n = lua_objlen(L, -1);
        if (n > OP_LDAP_FILTER_ARGS)
            return luaL_argerror(L, 1, "at most 9 args");
        for (size_t i = 0; i < n; i++) {
            lua_rawgeti(L, args_at, (int)i + 1);
            int t = lua_type(L, -1);
            if (t != LUA_TSTRING && t != LUA_TNUMBER)
                return luaL_argerror(L, 1, "args must be strings or numbers");
            /* Left on the stack, so a number turned string stays alive. */
            args[i].data = lua_tolstring(L, -1, &args[i].len);
        }
        nargs = n;
    }
    lua_remove(L, args_at);
    char filter[OP_LDAP_FILTER_MAX], err[200];
    if (op_ldap_filter_expand(tmpl, args, nargs, filter, sizeof filter, err, sizeof err) < 0)
        return luaL_argerror(L, 1, err);
    q.filter = filter;

    const char *attrs[MAX_ATTRS];
    lua_getfield(L, 1, "attrs");
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1))
            return luaL_argerror(L, 1, "attrs must be a list of attribute names");
        size_t n = lua_objlen(L, -1);
        if (n > MAX_ATTRS)
            return luaL_argerror(L, 1, "at most 64 attrs");
        for (size_t i = 0; i < n; i++) {
            lua_rawgeti(L, -1, (int)i + 1);
            if (lua_type(L, -1) != LUA_TSTRING)
                return luaL_argerror(L, 1, "attrs must be strings");
            attrs[i] = lua_tostring(L, -1);
            lua_pop(L, 1);
        }
        q.attrs = attrs;
        q.nattrs = n;
    }
    lua_pop(L, 1);

    lua_getfield(L, 1, "timeout");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) > 0 && lua_tonumber(L, -1) <= 90))
            return luaL_argerror(L, 1, "timeout must be seconds, more than 0 and at most 90");
        q.timeout = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "cache");
    q.no_cache = lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1);
    lua_pop(L, 1);

    op_request_t *req = op_request_check_wait(L, "outpost.ldap.search");
    search_rec_t *rec = rec_take();
    rec->pending.cancel = search_cancel;
    rec->search.data = rec;
    rec->step = -1;
    if (req->trace != NULL) {
        char what[OP_LDAP_FILTER_MAX + 300];
        snprintf(what, sizeof what, "%s base=%.250s%s", filter, q.base,
                 q.no_cache ? " (cache = false)" : "");
        rec->step = op_trace_step(req->trace, "ldap", what, "server");
    }
    int rc = op_ldap_search(l, &rec->search, &q, search_done);
    if (rc == OP_LOOKUP_STARTED)
        return op_request_yield(L, &rec->pending);
    const op_ldap_result_t *hit = rec->search.hit;
    if (req->trace != NULL)
        trace_answer(req->trace, rec->step, rc == OP_LOOKUP_HIT ? "cache" : "none",
                     rc == OP_LOOKUP_HIT ? hit : NULL, rc);
    rec_give_back(rec);
    if (rc == OP_LOOKUP_HIT)
        return push_result(L, hit);
    lua_pushnil(L);
    lua_pushstring(L, op_ldap_status_token((op_ldap_status_t)-rc));
    return 2;
}

/* ---- the FFI fast path of a cache hit (lua_api_ffi.h) ----
 *
 * ldap.search answered from the cache without a lua_State: lua_api_ffi.lua
 * reads the query table (only the plain shapes: anything else, and every
 * case below that returns 0, goes to l_ldap_search, the reference), this
 * expands the filter and peeks at the cache, and the chunk hands out the
 * answer's decoded list from DECODED, the same table l_ldap_search keeps
 * its lists in.  An answer not decoded yet in this state is decoded once
 * by l_ldap_hit_list, from the hit kept here. */

/* The last hit, kept (a reference) until the next, so that
 * l_ldap_hit_list can decode it even if the cache dropped it since. */
static op_ldap_result_t *last_hit;

int op__ffi_ldap(const op_ffi_ldap_query_t *fq, op_ffi_hit_t *out)
{
    op_request_t *req = op_request_waitable();
    if (req == NULL || req->trace != NULL || op_services == NULL || op_services->ldap == NULL)
        return 0;
    if (fq->nargs > OP_LDAP_FILTER_ARGS || fq->nattrs > MAX_ATTRS)
        return 0;
    op_ldap_arg_t args[OP_LDAP_FILTER_ARGS];
    for (int i = 0; i < fq->nargs; i++) {
        args[i].data = fq->args[i];
        args[i].len = fq->arg_lens[i];
    }
    char filter[OP_LDAP_FILTER_MAX], err[200];
    if (op_ldap_filter_expand(fq->filter, args, (size_t)fq->nargs, filter, sizeof filter, err,
                              sizeof err) < 0)
        return 0; /* the classic call raises with err */
    op_ldap_query_t q = {
        .base = fq->base,
        .scope = fq->scope,
        .filter = filter,
        .attrs = fq->nattrs >= 0 ? (const char *const *)fq->attrs : NULL,
        .nattrs = fq->nattrs >= 0 ? (size_t)fq->nattrs : 0,
        .timeout = fq->timeout,
    };
    const op_ldap_result_t *r = op_ldap_peek(op_services->ldap, &q);
    if (r == NULL)
        return 0;
    if (r != last_hit) {
        op_ldap_result_t *prev = last_hit;
        last_hit = (op_ldap_result_t *)r;
        op_ldap_result_ref(last_hit);
        if (prev != NULL)
            op_ldap_result_unref(prev);
    }
    out->serial = (double)r->serial;
    out->expires_ms = 0;
    out->status = (int)r->status;
    out->n = (int)r->nentries;
    return 1;
}

const char *op__ffi_ldap_token(int status)
{
    return op_ldap_status_token((op_ldap_status_t)status);
}

/* l_ldap_hit_list(serial): the decoded list of the last hit when it is
 * still that serial (and stores it in DECODED), else nothing. */
static int l_ldap_hit_list(lua_State *L)
{
    lua_Number serial = luaL_checknumber(L, 1);
    if (last_hit == NULL || (lua_Number)last_hit->serial != serial || last_hit->status != OP_LDAP_OK)
        return 0;
    return push_result(L, last_hit);
}

/* The generation's outpost.config().directory (config_lua.c), itself, not
 * a copy: lua/lib/site/directory.lua reads it from there; this name stays for
 * code written against it. */
static int l_ldap_directory(lua_State *L)
{
    service(L);
    lua_getfield(L, LUA_REGISTRYINDEX, "outpost.config");
    if (!lua_istable(L, -1))
        return luaL_error(L, "outpost.ldap.directory: no configuration");
    lua_getfield(L, -1, "directory");
    return 1;
}

static int l_ldap_stats(lua_State *L)
{
    op_ldap_stats_t s;
    op_ldap_stats(service(L), &s);
    lua_createtable(L, 0, 10);
#define F(name)                                                                \
    lua_pushnumber(L, (lua_Number)s.name);                                     \
    lua_setfield(L, -2, #name)
    F(searches);
    F(cache_hits);
    F(coalesced);
    F(sent);
    F(timeouts);
    F(connects);
    F(connect_failures);
    F(cached);
    F(ready);
#undef F
    return 1;
}

static int l_ldap_flush(lua_State *L)
{
    op_ldap_cache_flush(service(L));
    return 0;
}

static int l_ldap_configured(lua_State *L)
{
    lua_pushboolean(L, op_services != NULL && op_services->ldap != NULL);
    return 1;
}

int luaopen_outpost_ldap(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"search", l_ldap_search},
        {"directory", l_ldap_directory},
        {"stats", l_ldap_stats},
        {"flush", l_ldap_flush},
        {"configured", l_ldap_configured},
        {NULL, NULL},
    };
    luaL_newmetatable(L, ATTRS_MT);
    lua_pushcfunction(L, l_attrs_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_refuse);
    lua_setfield(L, -2, "__newindex");
    lua_pushliteral(L, "outpost.ldap attributes (read-only)");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
    luaL_newmetatable(L, ANSWER_MT);
    lua_pushcfunction(L, l_refuse);
    lua_setfield(L, -2, "__newindex");
    lua_pushliteral(L, "outpost.ldap answer (read-only)");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
    lua_createtable(L, 0, 5);
    luaL_register(L, NULL, fns);
    /* The fast path's helpers: the table of decoded answers (made now, so
     * the chunk and l_ldap_search share it) and the decoder of a hit. */
    lua_createtable(L, 0, 2);
    push_decoded_cache(L);
    lua_setfield(L, -2, "decoded");
    lua_pushcfunction(L, l_ldap_hit_list);
    lua_setfield(L, -2, "hit_list");
    op_ffi_offer_with(L, "ldap.search", l_ldap_search, -1);
    lua_setfield(L, -3, "search");
    lua_pop(L, 1);
    return 1;
}
