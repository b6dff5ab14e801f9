/* require "outpost.scan": the content scanners (scan.h), for AO6.
 *
 *   scan.clamd(message)          -> { verdict = "clean" | "infected",
 *                                     signature = NAME (infected), ... }
 *   scan.rspamd(message, meta)   -> { action, score, required, skipped,
 *                                     symbols = { {name=, score=}, ... }
 *                                     (highest score first), ... }
 *   scan.enabled()               -> { clamd = bool, rspamd = bool }
 *
 * Both results also have sent (bytes scanned), truncated (the message was
 * longer than the scanner's max_size / stream_max) and elapsed (seconds).
 * meta (rspamd): ip, helo, from, user, queue_id, rcpts (a list).
 * Runtime outcomes are values: nil, token, detail with token
 *   "off"          the scanner is not configured (clamd { address })
 *   "timeout"      no connection or no answer in time
 *   "unavailable"  no connection (refused, no socket), or it was lost
 *   "error"        the scanner answered an error, or something unreadable
 * and detail the scanner's or our words.  Both yield under the contract
 * (docs/architecture.md); a request that gives up closes the connection. */
#include "core/mem.h"
#include "core/request.h"
#include "core/services.h"
#include "lookup/scan.h"

#include <lauxlib.h>
#include <lua.h>
#include <string.h>

int luaopen_outpost_scan(lua_State *L);

#define MAX_RCPTS 1000

typedef struct {
    op_pending_t pending;
    op_scan_t *scan;
    op_scan_kind_t kind;
} scan_op_t;

static const char *token_of(const char *error)
{
    if (strstr(error, "timeout") != NULL)
        return "timeout";
    if (strstr(error, "connect:") != NULL || strstr(error, "connection lost") != NULL ||
        strstr(error, "cancelled") != NULL || strstr(error, "without an answer") != NULL)
        return "unavailable";
    return "error";
}

static int push_result(lua_State *L, op_scan_kind_t kind, const op_scan_result_t *r)
{
    if (!r->ok) {
        lua_pushnil(L);
        lua_pushstring(L, token_of(r->error));
        lua_pushstring(L, r->error);
        return 3;
    }
    lua_createtable(L, 0, 10);
    if (kind == OP_SCAN_CLAMD) {
        lua_pushstring(L, r->clamd.status == OP_CLAMD_INFECTED ? "infected" : "clean");
        lua_setfield(L, -2, "verdict");
        if (r->clamd.status == OP_CLAMD_INFECTED) {
            lua_pushstring(L, r->clamd.detail);
            lua_setfield(L, -2, "signature");
        }
    } else {
        const op_rspamd_result_t *x = &r->rspamd;
        lua_pushstring(L, x->action);
        lua_setfield(L, -2, "action");
        lua_pushnumber(L, x->score);
        lua_setfield(L, -2, "score");
        lua_pushnumber(L, x->required);
        lua_setfield(L, -2, "required");
        lua_pushboolean(L, x->skipped);
        lua_setfield(L, -2, "skipped");
        lua_createtable(L, (int)x->nsymbols, 0);
        for (size_t i = 0; i < x->nsymbols; i++) {
            lua_createtable(L, 0, 2);
            lua_pushstring(L, x->symbols[i].name);
            lua_setfield(L, -2, "name");
            lua_pushnumber(L, x->symbols[i].score);
            lua_setfield(L, -2, "score");
            lua_rawseti(L, -2, (int)i + 1);
        }
        lua_setfield(L, -2, "symbols");
        lua_pushinteger(L, (lua_Integer)x->symbols_seen);
        lua_setfield(L, -2, "symbols_seen");
    }
    lua_pushinteger(L, (lua_Integer)r->sent);
    lua_setfield(L, -2, "sent");
    lua_pushboolean(L, r->truncated);
    lua_setfield(L, -2, "truncated");
    lua_pushnumber(L, r->elapsed);
    lua_setfield(L, -2, "elapsed");
    return 1;
}

static void scan_done(op_scan_t *scan, const op_scan_result_t *res, void *data)
{
    (void)scan;
    scan_op_t *op = data;
    op_request_t *req = op_pending_take(&op->pending);
    op_scan_kind_t kind = op->kind;
    free(op);
    if (req == NULL)
        return;
    op_request_resume(req, push_result(req->co, kind, res));
}

static void scan_cancel(op_pending_t *p)
{
    scan_op_t *op = (scan_op_t *)p;
    op_scan_cancel(op->scan);
    free(op);
}

static const char *opt_string(lua_State *L, int t, const char *k)
{
    lua_getfield(L, t, k);
    const char *v = NULL;
    if (lua_type(L, -1) == LUA_TSTRING)
        v = lua_tostring(L, -1);
    else if (!lua_isnil(L, -1))
        luaL_error(L, "scan.rspamd: meta.%s must be a string", k);
    lua_pop(L, 1); /* the string stays alive in meta, which is on the stack */
    return v;
}

static int start(lua_State *L, op_scan_kind_t kind)
{
    const char *who = kind == OP_SCAN_CLAMD ? "scan.clamd" : "scan.rspamd";
    size_t len;
    const char *msg = luaL_checklstring(L, 1, &len);
    op_scan_meta_t meta;
    memset(&meta, 0, sizeof meta);
    const char *rcpts[MAX_RCPTS];
    if (kind == OP_SCAN_RSPAMD && !lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        meta.ip = opt_string(L, 2, "ip");
        meta.helo = opt_string(L, 2, "helo");
        meta.from = opt_string(L, 2, "from");
        meta.user = opt_string(L, 2, "user");
        meta.queue_id = opt_string(L, 2, "queue_id");
        lua_getfield(L, 2, "rcpts");
        if (lua_istable(L, -1)) {
            size_t n = lua_objlen(L, -1);
            for (size_t i = 1; i <= n && meta.nrcpts < MAX_RCPTS; i++) {
                lua_rawgeti(L, -1, (int)i);
                if (lua_type(L, -1) == LUA_TSTRING)
                    rcpts[meta.nrcpts++] = lua_tostring(L, -1);
                lua_pop(L, 1); /* kept alive by the rcpts table */
            }
            meta.rcpts = rcpts;
        } else if (!lua_isnil(L, -1)) {
            return luaL_error(L, "scan.rspamd: meta.rcpts must be a list");
        }
        lua_pop(L, 1);
    }
    op_request_check_wait(L, who);
    op_scanner_t *s = op_services == NULL ? NULL
                      : kind == OP_SCAN_CLAMD ? op_services->clamd
                                              : op_services->rspamd;
    if (s == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "off");
        lua_pushfstring(L, "%s is not configured", kind == OP_SCAN_CLAMD ? "clamd" : "rspamd");
        return 3;
    }
    scan_op_t *op = op_calloc(1, sizeof *op);
    op->kind = kind;
    op->pending.cancel = scan_cancel;
    op->scan = op_scan_start(s, msg, len, &meta, scan_done, op);
    if (op->scan == NULL) {
        free(op);
        lua_pushnil(L);
        lua_pushliteral(L, "unavailable");
        lua_pushliteral(L, "the scanner is stopping");
        return 3;
    }
    return op_request_yield(L, &op->pending);
}

static int l_scan_clamd(lua_State *L)
{
    return start(L, OP_SCAN_CLAMD);
}

static int l_scan_rspamd(lua_State *L)
{
    return start(L, OP_SCAN_RSPAMD);
}

static int l_scan_enabled(lua_State *L)
{
    lua_createtable(L, 0, 2);
    lua_pushboolean(L, op_services != NULL && op_services->clamd != NULL);
    lua_setfield(L, -2, "clamd");
    lua_pushboolean(L, op_services != NULL && op_services->rspamd != NULL);
    lua_setfield(L, -2, "rspamd");
    return 1;
}

int luaopen_outpost_scan(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"clamd", l_scan_clamd},
        {"rspamd", l_scan_rspamd},
        {"enabled", l_scan_enabled},
        {NULL, NULL},
    };
    lua_createtable(L, 0, 3);
    luaL_register(L, NULL, fns);
    return 1;
}
