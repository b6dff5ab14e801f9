/* require "outpost.dns": DNS lookups that yield the request (dns.h).
 *
 *   dns.a(name), dns.aaaa(name), dns.mx(domain), dns.txt(name), dns.ptr(ip)
 *       a table of records with field ttl, or nil, token
 *   dns.mail_domain(domain), dns.fcrdns(ip)
 *       composites written in Lua (lua_api_dns.lua) on top of these
 *
 * Tokens: nxdomain, nodata, servfail, refused, timeout, formerr, badname,
 * cancelled (the daemon is stopping).
 *
 * In an explained request (core/trace.h) each lookup is a step of the
 * trace: the query, cache or server, its time and its answer. */
#include "lookup/dns.h"
#include "core/mem.h"
#include "core/request.h"
#include "core/services.h"
#include "core/trace.h"
#include "lua/lua_api_ffi.h"
#include "lua/lua_api_spare.h"

#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <string.h>

/* engine/lua/lua_api_dns.lua, turned into a C string by the Makefile. */
#include "lua_api_dns_lua.h"

int luaopen_outpost_dns(lua_State *L);

typedef struct {
    op_pending_t pending;
    op_lookup_req_t req;
    int type;
    int step; /* in the request's trace, or -1 */
} dns_op_t;

/* The one-record spare (lua_api_spare.h). */
static void *spare;

static dns_op_t *op_take(void)
{
    return op_spare_take(&spare, sizeof(dns_op_t));
}

static void op_give_back(dns_op_t *op)
{
    op_spare_give_back(&spare, op);
}

static const char *type_name(int type)
{
    switch (type) {
    case OP_DNS_A:
        return "a";
    case OP_DNS_AAAA:
        return "aaaa";
    case OP_DNS_MX:
        return "mx";
    case OP_DNS_TXT:
        return "txt";
    default:
        return "ptr";
    }
}

/* The answer for people: the first records and the TTL, or the token. */
static void trace_answer(op_trace_t *t, int step, const char *source, const op_dns_result_t *res,
                         int type, uint32_t ttl)
{
    if (t == NULL || step < 0)
        return;
    char out[512];
    size_t at = 0;
    if (res->status != OP_DNS_OK) {
        op_trace_step_end(t, step, source, op_dns_status_token(res->status));
        return;
    }
    for (size_t i = 0; i < res->n && i < 5 && at < sizeof out - 80; i++) {
        int len = res->rr[i].len > 60 ? 60 : (int)res->rr[i].len;
        int n = type == OP_DNS_MX
                    ? snprintf(out + at, sizeof out - at, "%s%d %.*s", i ? ", " : "",
                               res->rr[i].pref, len, res->rr[i].text)
                    : snprintf(out + at, sizeof out - at, "%s%.*s", i ? ", " : "", len,
                               res->rr[i].text);
        if (n > 0)
            at += (size_t)n;
    }
    snprintf(out + at, sizeof out - at, "%s (ttl %u)", res->n > 5 ? ", ..." : "", ttl);
    op_trace_step_end(t, step, source, out);
}

/* Pushes a result: {records..., ttl = N} or nil, token. */
static int push_result(lua_State *L, const op_dns_result_t *res, int type, uint32_t ttl)
{
    if (res->status != OP_DNS_OK) {
        lua_pushnil(L);
        lua_pushstring(L, op_dns_status_token(res->status));
        return 2;
    }
    lua_createtable(L, (int)res->n, 1);
    for (size_t i = 0; i < res->n; i++) {
        if (type == OP_DNS_MX) {
            lua_createtable(L, 0, 2);
            lua_pushinteger(L, res->rr[i].pref);
            lua_setfield(L, -2, "pref");
            lua_pushlstring(L, res->rr[i].text, res->rr[i].len);
            lua_setfield(L, -2, "host");
        } else {
            lua_pushlstring(L, res->rr[i].text, res->rr[i].len);
        }
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_pushinteger(L, (lua_Integer)ttl);
    lua_setfield(L, -2, "ttl");
    return 1;
}

/* The request gave up: its waiter leaves the query (which stays on the
 * wire and fills the cache) and is never called back. */
static void dns_op_cancel(op_pending_t *p)
{
    dns_op_t *op = (dns_op_t *)p;
    op_lookup_cancel(&op->req);
    free(op);
}

static void dns_op_done(op_lookup_req_t *lreq, const void *value)
{
    dns_op_t *op = lreq->data;
    op_request_t *req = op_pending_take(&op->pending);
    int type = op->type, step = op->step;
    uint32_t ttl = (uint32_t)lreq->ttl;
    free(op);
    if (req == NULL)
        return; /* cannot happen: a cancelled waiter is never called */
    if (req->trace != NULL)
        trace_answer(req->trace, step, NULL, value, type, ttl);
    op_request_resume(req, push_result(req->co, value, type, ttl));
}

static int lookup(lua_State *L, const char *name, size_t len, int type, const char *who)
{
    op_request_t *req = op_request_check_wait(L, who);
    if (op_services == NULL || op_services->dns == NULL)
        return luaL_error(L, "%s: the DNS service is not running", who);
    dns_op_t *op = op_take();
    op->pending.cancel = dns_op_cancel;
    op->req.data = op;
    op->type = type;
    op->step = -1;
    if (req->trace != NULL) {
        char q[300];
        snprintf(q, sizeof q, "%s %.*s", type_name(type), len > 255 ? 255 : (int)len, name);
        op->step = op_trace_step(req->trace, "dns", q, "server");
    }
    int rc = op_dns_lookup(op_services->dns, &op->req, name, len, type, dns_op_done);
    if (rc == OP_LOOKUP_STARTED)
        return op_request_yield(L, &op->pending);
    if (rc == OP_LOOKUP_HIT) {
        if (req->trace != NULL)
            trace_answer(req->trace, op->step, "cache", op->req.value, type,
                         (uint32_t)op->req.ttl);
        const op_dns_result_t *value = op->req.value; /* the cache's, not the record's */
        uint32_t ttl = (uint32_t)op->req.ttl;
        op_give_back(op); /* before push_result, which may raise */
        return push_result(L, value, type, ttl);
    }
    if (req->trace != NULL)
        op_trace_step_end(req->trace, op->step, "none",
                          rc == OP_DNS_EBADNAME ? "badname" : "cancelled");
    op_give_back(op);
    lua_pushnil(L);
    if (rc == OP_DNS_EBADNAME)
        lua_pushliteral(L, "badname");
    else
        lua_pushliteral(L, "cancelled");
    return 2;
}

#define NAME_FN(fn, type)                                  \
    static int l_dns_##fn(lua_State *L)                    \
    {                                                      \
        size_t len;                                        \
        const char *name = luaL_checklstring(L, 1, &len);  \
        return lookup(L, name, len, type, "dns." #fn);     \
    }
NAME_FN(a, OP_DNS_A)
NAME_FN(aaaa, OP_DNS_AAAA)
NAME_FN(mx, OP_DNS_MX)
NAME_FN(txt, OP_DNS_TXT)

static int l_dns_ptr(lua_State *L)
{
    const char *ip = luaL_checkstring(L, 1);
    op_request_check_wait(L, "dns.ptr"); /* misuse is misuse, whatever the argument */
    char rev[128];
    if (op_dns_reverse_name(ip, rev, sizeof rev) != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "badname");
        return 2;
    }
    return lookup(L, rev, strlen(rev), OP_DNS_PTR, "dns.ptr");
}

/* ---- the FFI fast path of a cache hit (lua_api_ffi.h) ----
 *
 * dns.a/aaaa/mx/txt/ptr answered from the cache without a lua_State: the
 * hit's serial, expiry and status, and its records on demand
 * (op__ffi_dns_record).  lua_api_ffi.lua makes one read-only table per
 * answer (per serial) and hands the same one out for every later hit; the
 * first lookup of an answer (a miss) and every case below that returns 0
 * go through the classic functions above, which stay the reference. */

/* The last hit, kept (a reference) so that its records can be read after
 * the call that found it, even if the cache dropped it since. */
static op_dns_result_t *last_hit;

int op__ffi_dns(int type, const char *name, size_t len, op_ffi_hit_t *out)
{
    op_request_t *req = op_request_waitable();
    if (req == NULL || req->trace != NULL || op_services == NULL || op_services->dns == NULL)
        return 0; /* the classic call raises, records the dry run's step, or raises */
    double expires;
    const op_dns_result_t *res = op_dns_peek(op_services->dns, name, len, type, &expires);
    if (res == NULL)
        return 0;
    if (res != last_hit) {
        op_dns_result_t *prev = last_hit;
        last_hit = op_dns_result_ref(res);
        if (prev != NULL)
            op_dns_result_unref(prev);
    }
    out->serial = (double)res->serial;
    out->expires_ms = expires;
    out->status = (int)res->status;
    out->n = (int)res->n;
    return 1;
}

int op__ffi_dns_reverse(const char *ip, char *out, size_t cap)
{
    if (op_dns_reverse_name(ip, out, cap) != 0)
        return -1;
    return (int)strlen(out);
}

const char *op__ffi_dns_record(double serial, int i, size_t *len, int *pref)
{
    const op_dns_result_t *res = last_hit;
    if (res == NULL || (double)res->serial != serial || i < 0 || (size_t)i >= res->n)
        return NULL;
    *len = res->rr[i].len;
    *pref = res->rr[i].pref;
    return res->rr[i].text;
}

const char *op__ffi_dns_token(int status)
{
    return op_dns_status_token((op_dns_status_t)status);
}

double op__ffi_dns_now_ms(void)
{
    return op_services != NULL && op_services->dns != NULL ? op_dns_now_ms(op_services->dns)
                                                           : 0;
}

/* For lua_api_dns.lua: the canonical text of an address, or nil. */
static int l_dns_canonical_ip(lua_State *L)
{
    char out[64];
    if (op_dns_canonical_ip(luaL_checkstring(L, 1), out, sizeof out) != 0)
        return 0;
    lua_pushstring(L, out);
    return 1;
}

int luaopen_outpost_dns(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"a", l_dns_a},
        {"aaaa", l_dns_aaaa},
        {"mx", l_dns_mx},
        {"txt", l_dns_txt},
        {"ptr", l_dns_ptr},
        {NULL, NULL},
    };
    lua_createtable(L, 0, 8);
    op_ffi_offer_fields(L, "dns", fns);
    if (luaL_loadbuffer(L, lua_api_dns_lua, sizeof lua_api_dns_lua - 1, "=engine/lua/lua_api_dns.lua") != 0)
        return lua_error(L);
    lua_pushvalue(L, -2);
    lua_pushcfunction(L, l_dns_canonical_ip);
    lua_getfield(L, LUA_REGISTRYINDEX, "outpost.ffi"); /* op_ffi_offer made it */
    lua_call(L, 3, 0);
    return 1;
}
