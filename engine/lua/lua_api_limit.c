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
 * They yield only with a backend that may wait (counters.h): then the
 * request waits for the answer like any primitive (the yield contract,
 * docs/architecture.md) and must be able to wait.  The RocksDB backend
 * answers at once, so with it nothing yields and the functions work
 * anywhere, also outside a request.  Misuse (an unknown limit name, a bad
 * argument) raises; a store failure returns nil, "unavailable".
 *
 * In a dry run (a request being explained, core/trace.h) nothing is
 * written: add and reserve peek (the backend's read-only check of the
 * same n) and answer what they would have answered, commit and release
 * answer 0 and do nothing; each call is a step of the trace with the
 * count it saw. */
#include "counters/counters.h"
#include "core/durable.h"
#include "core/mem.h"
#include "core/request.h"
#include "core/services.h"
#include "core/trace.h"
#include "lua/lua_api_ffi.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
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

/* The answer table's keys, and the sources' names, made once per state
 * and kept in the registry as a list: each answer takes them with
 * lua_rawgeti instead of hashing and interning ten keys and a source name
 * per call (issue 20, docs/performance.md). */
enum {
    K_OK = 1, K_LIMIT, K_SUBJECT, K_MAX, K_USED, K_REMAINING, K_NEXT_FREE, K_WINDOW,
    K_RESOLUTION, K_SOURCE,
    K_SOURCES /* + op_max_source_t: "default", "directory", "operator" */
};
static const char *const answer_keys[] = {"ok", "limit", "subject", "max", "used", "remaining",
                                          "next_free", "window", "resolution", "source"};
static const op_max_source_t sources[] = {OP_MAX_DEFAULT, OP_MAX_DIRECTORY, OP_MAX_OPERATOR};
#define NSOURCES (sizeof sources / sizeof sources[0])
/* Its registry key: the address is unique to this module. */
static const char keys_key = 0;

static void make_keys(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)&keys_key);
    lua_createtable(L, K_SOURCES - 1 + (int)NSOURCES, 0);
    for (int i = 0; i < K_SOURCES - 1; i++) {
        lua_pushstring(L, answer_keys[i]);
        lua_rawseti(L, -2, i + 1);
    }
    for (size_t i = 0; i < NSOURCES; i++) {
        lua_pushstring(L, op_counters_source_name(sources[i]));
        lua_rawseti(L, -2, K_SOURCES + (int)sources[i]);
    }
    lua_rawset(L, LUA_REGISTRYINDEX);
}

/* t[keys[k]] = the value on top, for t at index t and keys at index keys
 * (both absolute). */
static void set_key(lua_State *L, int t, int keys, int k)
{
    lua_rawgeti(L, keys, k);
    lua_insert(L, -2);
    lua_rawset(L, t);
}

static void set_int(lua_State *L, int t, int keys, int k, int64_t v)
{
    lua_pushnumber(L, (lua_Number)v);
    set_key(L, t, keys, k);
}

/* name_at and subject_at: where the limit name and the subject already
 * are on L's stack as Lua strings (the classic call's arguments), so they
 * are pushed without being hashed again; 0 when they are not (an answer
 * after a wait, on the request's coroutine). */
static int push_answer(lua_State *L, const char *name, int name_at, const char *subject,
                       int subject_at, const op_counters_answer_t *a)
{
    lua_pushlightuserdata(L, (void *)&keys_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    int keys = lua_gettop(L);
    lua_createtable(L, 0, 10);
    int t = keys + 1;
    lua_pushboolean(L, a->ok);
    set_key(L, t, keys, K_OK);
    if (name_at > 0)
        lua_pushvalue(L, name_at);
    else
        lua_pushstring(L, name);
    set_key(L, t, keys, K_LIMIT);
    if (subject_at > 0)
        lua_pushvalue(L, subject_at);
    else
        lua_pushstring(L, subject);
    set_key(L, t, keys, K_SUBJECT);
    set_int(L, t, keys, K_MAX, a->max);
    set_int(L, t, keys, K_USED, a->used);
    set_int(L, t, keys, K_REMAINING, a->remaining);
    if (a->next_free >= 0)
        set_int(L, t, keys, K_NEXT_FREE, a->next_free);
    set_int(L, t, keys, K_WINDOW, a->window);
    set_int(L, t, keys, K_RESOLUTION, a->resolution);
    lua_rawgeti(L, keys, K_SOURCES + (int)a->source);
    if (lua_isnil(L, -1)) { /* a source added to counters.h but not to sources[] */
        lua_pop(L, 1);
        lua_pushstring(L, op_counters_source_name(a->source));
    }
    set_key(L, t, keys, K_SOURCE);
    lua_remove(L, keys);
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

/* ---- one operation, answered at once or after a wait ---- */

typedef enum { LIMIT_CHECK, LIMIT_ADD, LIMIT_RESERVE, LIMIT_COMMIT, LIMIT_RELEASE } limit_kind_t;

/* What the policy asked, checked. */
typedef struct {
    limit_kind_t kind;
    const char *who;                /* "limit.add", for "cannot wait here" */
    const char *name, *subject;     /* NULL for commit and release */
    const char *instance;           /* NULL for check and add */
    int64_t n, dir_max, keep;
} limit_args_t;

/* A call the request waits for (a backend that may wait).  The names are
 * copies: the strings on the Lua stack go with the frame that yields. */
typedef struct {
    op_pending_t pending;
    op_counters_call_t call;
    limit_kind_t kind;
    char name[OP_COUNTERS_MAX_KEY + 1];
    char subject[OP_COUNTERS_MAX_KEY + 1];
    limit_kind_t asked; /* a dry run's: what the policy called (kind is then LIMIT_CHECK) */
    int64_t n;
    int step;           /* its step in the trace, or -1 */
} limit_wait_t;

static const char *const kind_names[] = {"check", "add", "reserve", "commit", "release"};

/* ---- dry run: peek instead of writing ---- */

/* What add or reserve would have answered, from the peek's (check of the
 * same n): when it fits, the window with it added. */
static void as_if_added(limit_kind_t asked, int64_t n, int64_t now, op_counters_answer_t *a)
{
    if (asked == LIMIT_CHECK || !a->ok)
        return;
    a->used += n;
    a->remaining = a->used < a->max ? a->max - a->used : 0;
    a->next_free = a->remaining > 0 ? now : -1;
}

/* The peek's step: the count seen before, what this request would add. */
static void trace_peek(op_trace_t *t, int step, limit_kind_t asked, int64_t n, int rc,
                       const op_counters_answer_t *a)
{
    if (t == NULL || step < 0)
        return;
    char res[400];
    if (rc < 0) {
        op_trace_step_end(t, step, NULL, "unavailable (the store failed: the policy sees nil, "
                                         "\"unavailable\")");
        return;
    }
    int64_t seen = a->ok && asked != LIMIT_CHECK ? a->used - n : a->used;
    snprintf(res, sizeof res, "would %s: %lld used of %lld (%s) in a window of %llds, this "
             "request would add %lld%s",
             a->ok ? "pass" : "refuse", (long long)seen, (long long)a->max,
             op_counters_source_name(a->source), (long long)a->window,
             (long long)(asked == LIMIT_CHECK ? 0 : n),
             asked == LIMIT_CHECK ? " (a check adds nothing)" : " (not added: dry run)");
    op_trace_step_end(t, step, NULL, res);
    op_trace_step_str(t, step, "would", a->ok ? "pass" : "refuse");
    op_trace_step_num(t, step, "used", seen);
    op_trace_step_num(t, step, "max", a->max);
    op_trace_step_str(t, step, "max_source", op_counters_source_name(a->source));
    op_trace_step_num(t, step, "window", a->window);
    op_trace_step_num(t, step, "would_add", asked == LIMIT_CHECK ? 0 : n);
}

static int trace_start(op_trace_t *t, limit_kind_t asked, const char *name, const char *subject,
                       const char *instance, int64_t n)
{
    char q[2 * OP_COUNTERS_MAX_KEY + 64];
    if (asked == LIMIT_COMMIT || asked == LIMIT_RELEASE)
        snprintf(q, sizeof q, "%s instance=%s", kind_names[asked], instance);
    else
        snprintf(q, sizeof q, "%s %s %s n=%lld", kind_names[asked], name, subject, (long long)n);
    int step = op_trace_step(t, "limit", q, asked == LIMIT_COMMIT || asked == LIMIT_RELEASE
                                                 ? "skipped" : "store");
    op_trace_step_str(t, step, "op", kind_names[asked]);
    if (name != NULL) {
        op_trace_step_str(t, step, "limit", name);
        op_trace_step_str(t, step, "subject", subject);
    }
    return step;
}

static int start(op_counters_t *c, const limit_args_t *a, op_counters_call_t *call)
{
    switch (a->kind) {
    case LIMIT_CHECK:
        return op_counters_check(c, a->name, a->subject, a->n, a->dir_max, call);
    case LIMIT_ADD:
        return op_counters_add(c, a->name, a->subject, a->n, a->dir_max, call);
    case LIMIT_RESERVE:
        return op_counters_reserve(c, a->name, a->subject, a->instance, a->n, a->dir_max, call);
    case LIMIT_COMMIT:
        return op_counters_commit(c, a->instance, a->keep, call);
    case LIMIT_RELEASE:
        return op_counters_release(c, a->instance, call);
    }
    return OP_COUNTERS_EINVAL;
}

/* name_at, subject_at: as push_answer's. */
static int push_result(lua_State *L, limit_kind_t kind, const char *name, int name_at,
                       const char *subject, int subject_at, const op_counters_call_t *call)
{
    switch (kind) {
    case LIMIT_COMMIT:
        lua_pushnumber(L, (lua_Number)call->committed);
        lua_pushnumber(L, (lua_Number)call->released);
        return 2;
    case LIMIT_RELEASE:
        lua_pushnumber(L, (lua_Number)call->released);
        return 1;
    default:
        return push_answer(L, name, name_at, subject, subject_at, &call->answer);
    }
}

/* An operation that wrote: the request's answer must wait until the write
 * is durable, and only its answer (core/durable.h's tickets). */
static void note_write(op_request_t *req, limit_kind_t kind, int rc)
{
    if (req == NULL || rc < 0 || kind == LIMIT_CHECK)
        return;
    uint64_t t = op_durable_ticket();
    if (t > req->durable)
        req->durable = t;
}

/* The I/O cannot be taken back: a request that gives up leaves the record
 * to limit_done, which frees it. */
static void limit_cancel(op_pending_t *p)
{
    (void)p;
}

static void limit_done(op_counters_call_t *call)
{
    limit_wait_t *w = call->data;
    op_request_t *req = op_pending_take(&w->pending);
    if (req == NULL) {
        free(w);
        return;
    }
    /* misuse was answered at once: a completion is an I/O outcome */
    note_write(req, w->kind, call->rc);
    if (w->step >= 0) {
        as_if_added(w->asked, w->n, op_counters_now(counters()), &call->answer);
        trace_peek(req->trace, w->step, w->asked, w->n, call->rc, &call->answer);
    }
    int n = call->rc < 0 ? unavailable(req->co)
                         : push_result(req->co, w->kind, w->name, 0, w->subject, 0, call);
    free(w);
    op_request_resume(req, n);
}

/* A backend that answers at once (RocksDB) gets a call on the stack and
 * works anywhere, as before; one that may wait needs a request that can
 * wait (the yield contract, docs/architecture.md) and a pending record.
 * Called by the classic functions only: for check, add and reserve, the
 * limit name and the subject are their arguments 1 and 2. */
static int run(lua_State *L, const limit_args_t *a)
{
    op_counters_t *c = need(L, a->name);
    op_request_t *cur = op_request_current(L);
    op_trace_t *trace = cur != NULL ? cur->trace : NULL;
    if (c == NULL) {
        if (trace != NULL) {
            /* outpostd ask --dry-run without the store: said, not guessed */
            char why[700];
            snprintf(why, sizeof why, "not evaluated: the counts are not available (%s); the "
                     "policy sees nil, \"unavailable\"",
                     op_services && op_services->counters_unavailable[0]
                         ? op_services->counters_unavailable : "no counters service");
            op_trace_step_end(trace, trace_start(trace, a->kind, a->name, a->subject, a->instance,
                                                 a->n), "none", why);
        }
        return unavailable(L);
    }
    const char *name = a->name != NULL ? a->name : "";
    limit_kind_t asked = a->kind;
    int step = -1;
    limit_args_t peek;
    if (trace != NULL) {
        /* a dry run writes nothing: settling is skipped, counting peeks */
        step = trace_start(trace, asked, a->name, a->subject, a->instance, a->n);
        if (asked == LIMIT_COMMIT || asked == LIMIT_RELEASE) {
            op_trace_step_end(trace, step, NULL, "nothing settled: dry run");
            lua_pushnumber(L, 0);
            if (asked == LIMIT_RELEASE)
                return 1;
            lua_pushnumber(L, 0);
            return 2;
        }
        peek = *a;
        peek.kind = LIMIT_CHECK;
        a = &peek;
    }
    if (!op_counters_may_wait(c)) {
        op_counters_call_t call; /* never kept: the backend answers at once */
        int rc = start(c, a, &call);
        note_write(cur, a->kind, rc);
        if (step >= 0) {
            as_if_added(asked, a->n, op_counters_now(c), &call.answer);
            trace_peek(trace, step, asked, a->n, rc, &call.answer);
        }
        return rc < 0 ? failed(L, rc, name) : push_result(L, a->kind, name, 1, a->subject, 2, &call);
    }
    op_request_check_wait(L, a->who);
    limit_wait_t *w = op_calloc(1, sizeof *w);
    w->pending.cancel = limit_cancel;
    w->call.cb = limit_done;
    w->call.data = w;
    w->kind = a->kind;
    w->asked = asked;
    w->n = a->n;
    w->step = step;
    snprintf(w->name, sizeof w->name, "%s", name);
    snprintf(w->subject, sizeof w->subject, "%s", a->subject != NULL ? a->subject : "");
    int rc = start(c, a, &w->call);
    if (rc == OP_COUNTERS_STARTED)
        return op_request_yield(L, &w->pending);
    op_counters_call_t call = w->call;
    free(w); /* before failed() raises */
    note_write(cur, a->kind, rc);
    if (step >= 0) {
        as_if_added(asked, a->n, op_counters_now(c), &call.answer);
        trace_peek(trace, step, asked, a->n, rc, &call.answer);
    }
    return rc < 0 ? failed(L, rc, name) : push_result(L, a->kind, name, 1, a->subject, 2, &call);
}

/* check, add and reserve's fast path (lua_api_ffi.h): the case run()
 * answers at once, taken without a lua_State; every other case is left to
 * the classic function, which gets the same arguments.  The Lua side has
 * checked their types and ranges as check_key, check_n and check_opts do. */
int op__ffi_limit(int kind, const char *name, size_t name_len, const char *subject,
                  size_t subject_len, const char *instance, size_t instance_len, double n,
                  double dir_max, op_ffi_limit_answer_t *out)
{
    op_counters_t *c = counters();
    op_request_t *cur = op_request_running();
    if (c == NULL || op_counters_may_wait(c) || (cur != NULL && cur->trace != NULL) ||
        strlen(name) != name_len || strlen(subject) != subject_len ||
        (kind == LIMIT_RESERVE && strlen(instance) != instance_len) ||
        !op_counters_has_limit(c, name))
        return 0;
    limit_args_t a = {(limit_kind_t)kind, NULL, name, subject, kind == LIMIT_RESERVE ? instance : NULL,
                      (int64_t)n, dir_max < 0 ? -1 : (int64_t)dir_max, -1};
    if (a.kind != LIMIT_CHECK && a.kind != LIMIT_ADD && a.kind != LIMIT_RESERVE)
        return 0;
    op_counters_call_t call;
    int rc = start(c, &a, &call);
    if (rc == OP_COUNTERS_EINVAL || rc == OP_COUNTERS_ENOLIMIT)
        return 0; /* misuse, which nothing counted: the classic call raises */
    /* A request from another coroutine than the caller's would get a later
     * durability ticket than it needs: a wait, never a lost count. */
    note_write(cur, a.kind, rc);
    if (rc < 0)
        return -1;
    const op_counters_answer_t *ans = &call.answer;
    out->ok = ans->ok;
    out->source = (int)ans->source;
    out->max = (double)ans->max;
    out->used = (double)ans->used;
    out->remaining = (double)ans->remaining;
    out->next_free = (double)ans->next_free;
    out->window = (double)ans->window;
    out->resolution = (double)ans->resolution;
    return 1;
}

const char *op__ffi_limit_source(int source)
{
    return op_counters_source_name((op_max_source_t)source);
}

static int l_limit_check_add(lua_State *L, int add)
{
    limit_args_t a = {add ? LIMIT_ADD : LIMIT_CHECK, add ? "limit.add" : "limit.check", NULL,
                      NULL, NULL, 0, -1, -1};
    a.name = check_key(L, 1, "limit name");
    a.subject = check_key(L, 2, "subject");
    a.n = check_n(L, 3);
    a.dir_max = check_opts(L, 4);
    return run(L, &a);
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
    limit_args_t a = {LIMIT_RESERVE, "limit.reserve", NULL, NULL, NULL, 0, -1, -1};
    a.name = check_key(L, 1, "limit name");
    a.subject = check_key(L, 2, "subject");
    a.instance = check_key(L, 3, "instance");
    a.n = check_n(L, 4);
    a.dir_max = check_opts(L, 5);
    return run(L, &a);
}

static int l_limit_commit(lua_State *L)
{
    limit_args_t a = {LIMIT_COMMIT, "limit.commit", NULL, NULL, NULL, 0, -1, -1};
    a.instance = check_key(L, 1, "instance");
    lua_Number keep = luaL_optnumber(L, 2, -1);
    if (!lua_isnoneornil(L, 2) && !(keep >= 0))
        return luaL_argerror(L, 2, "keep must be a number >= 0");
    a.keep = (int64_t)keep;
    return run(L, &a);
}

static int l_limit_release(lua_State *L)
{
    limit_args_t a = {LIMIT_RELEASE, "limit.release", NULL, NULL, NULL, 0, -1, -1};
    a.instance = check_key(L, 1, "instance");
    return run(L, &a);
}

/* limit.backend(): "rocksdb" or "redis" (which may wait: docs/limits.md). */
static int l_limit_backend(lua_State *L)
{
    op_counters_t *c = counters();
    if (c == NULL)
        return unavailable(L);
    lua_pushstring(L, op_counters_backend_name(c));
    return 1;
}

int luaopen_outpost_limit(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"commit", l_limit_commit},
        {"release", l_limit_release},
        {"backend", l_limit_backend},
        {NULL, NULL},
    };
    static const luaL_Reg offered[] = {
        {"check", l_limit_check},
        {"add", l_limit_add},
        {"reserve", l_limit_reserve},
        {NULL, NULL},
    };
    make_keys(L);
    lua_createtable(L, 0, 6);
    luaL_register(L, NULL, fns);
    op_ffi_offer_fields(L, "limit", offered);
    return 1;
}
