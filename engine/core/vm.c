#include "core/vm.h"

#include "core/log.h"
#include "core/watchdog.h"
#include "lua/lua_api_request.h"
#include "core/mem.h"

#include <lauxlib.h>
#include <lualib.h>
#include <luajit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* engine/lua/sandbox.lua, turned into a C string by the Makefile. */
#include "sandbox_lua.h"

int luaopen_outpost(lua_State *L);        /* lua_api_outpost.c */
int luaopen_outpost_netset(lua_State *L); /* lua_api_netset.c */
int luaopen_outpost_lists(lua_State *L);  /* lua_api_lists.c */
int luaopen_outpost_dns(lua_State *L);    /* lua_api_dns.c */
int luaopen_outpost_smtp(lua_State *L);   /* lua_api_smtp.c */
int luaopen_outpost_limit(lua_State *L);  /* lua_api_limit.c */
int luaopen_outpost_ldap(lua_State *L);   /* lua_api_ldap.c */
int luaopen_outpost_txnlink(lua_State *L); /* lua_api_txnlink.c */
int luaopen_outpost_dkim(lua_State *L);   /* lua_api_dkim.c */
int luaopen_outpost_scan(lua_State *L);    /* lua_api_scan.c */
int luaopen_outpost_explain(lua_State *L); /* lua_api_explain.c */

/* The engine's C modules, preloaded so require finds them and nothing on
 * disk can shadow them.  Later modules (outpost.dns, ...) add a row. */
static const luaL_Reg c_modules[] = {
    {"outpost", luaopen_outpost},
    {"outpost.netset", luaopen_outpost_netset},
    {"outpost.listfile", luaopen_outpost_lists},
    {"outpost.dns", luaopen_outpost_dns},
    {"outpost.smtp", luaopen_outpost_smtp},
    {"outpost.limit", luaopen_outpost_limit},
    {"outpost.ldap", luaopen_outpost_ldap},
    {"outpost.txnlink", luaopen_outpost_txnlink},
    {"outpost.dkim", luaopen_outpost_dkim},
    {"outpost.scan", luaopen_outpost_scan},
    {"outpost.explain", luaopen_outpost_explain},
    {NULL, NULL},
};

static int open_sandbox(lua_State *L)
{
    if (luaL_loadbuffer(L, sandbox_lua, sizeof sandbox_lua - 1, "=engine/lua/sandbox.lua") != 0)
        return lua_error(L);
    lua_call(L, 0, 1);
    return 1;
}

lua_State *op_vm_new_state(const char *lua_dir, int jit, char *err, size_t errlen)
{
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        snprintf(err, errlen, "cannot create a Lua state (out of memory)");
        return NULL;
    }
    luaL_openlibs(L);
    /* Before any outpost module opens: each picks its classic functions or
     * its FFI fast paths by whether the JIT is on (lua/lua_api_ffi.h). */
    if (!jit)
        luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);

    /* The action metatable: the engine accepts as an answer only tables
     * made by outpost.action, never a bare string that might not be a
     * valid Postfix action. */
    lua_newtable(L);
    lua_pushstring(L, "outpost.action");
    lua_setfield(L, -2, "__name");
    lua_setfield(L, LUA_REGISTRYINDEX, OP_ACTION_MT);
    op_attrs_register(L);

    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/lib/?.lua;%s/lib/?/init.lua;%s", lua_dir, lua_dir, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 1);
    lua_getfield(L, -1, "preload");
    for (const luaL_Reg *m = c_modules; m->name != NULL; m++) {
        lua_pushcfunction(L, m->func);
        lua_setfield(L, -2, m->name);
    }
    lua_pushcfunction(L, open_sandbox);
    lua_setfield(L, -2, "outpost.sandbox");
    lua_pop(L, 2);

    /* outpost.sandbox needs to know where libraries live. */
    lua_getglobal(L, "require");
    lua_pushstring(L, "outpost.sandbox");
    if (lua_pcall(L, 1, 1, 0) != 0) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1));
        lua_close(L);
        return NULL;
    }
    lua_getfield(L, -1, "init");
    lua_pushfstring(L, "%s/lib", lua_dir);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
    return L;
}

/* Calls sandbox.<fn>(arg) with arg a string or nil; leaves nret results. */

static int call_sandbox(lua_State *L, const char *fn, const char *arg, int nret)
{
    lua_getglobal(L, "require");
    lua_pushstring(L, "outpost.sandbox");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, fn);
    lua_remove(L, -2);
    if (arg != NULL)
        lua_pushstring(L, arg);
    return lua_pcall(L, arg != NULL ? 1 : 0, nret, 0);
}

/* A service answers on a policy listener only with on_request, on a
 * milter listener only with milter handlers: a mismatch is a load error,
 * not a panic on the first request. */
static int check_handler(const op_gen_t *gen, const op_listener_conf_t *l, const char *name,
                         char *err, size_t errlen)
{
    const op_gen_service_t *gs = op_gen_service(gen, name);
    if (gs == NULL)
        return 0; /* config.c already refused it */
    if (l->protocol == OP_PROTO_POLICY && gs->handler_ref[OP_PHASE_REQUEST] == LUA_NOREF) {
        snprintf(err, errlen, "%s:%d: listener %s: service %s (%s) has no on_request, which a "
                 "policy listener needs", l->file, l->line, l->name, name, gs->conf->policy);
        return -1;
    }
    if (l->protocol == OP_PROTO_MILTER) {
        int any = 0;
        for (int ph = OP_PHASE_CONNECT; ph < OP_PHASE_COUNT; ph++)
            any |= gs->handler_ref[ph] != LUA_NOREF;
        if (!any) {
            snprintf(err, errlen, "%s:%d: listener %s: service %s (%s) has no milter handler "
                     "(on_connect ... on_eom), which a milter listener needs", l->file, l->line,
                     l->name, name, gs->conf->policy);
            return -1;
        }
    }
    return 0;
}

static int check_handlers(const op_gen_t *gen, char *err, size_t errlen)
{
    for (size_t i = 0; i < gen->cfg->nlisteners; i++) {
        const op_listener_conf_t *l = &gen->cfg->listeners[i];
        if (check_handler(gen, l, l->service, err, errlen) != 0)
            return -1;
        for (size_t j = 0; j < l->ncontexts; j++)
            if (check_handler(gen, l, l->contexts[j].service, err, errlen) != 0)
                return -1;
    }
    return 0;
}

void op_vm_set_site_lua_dir(lua_State *L, const char *dir)
{
    if (dir == NULL)
        return;
    lua_getglobal(L, "require");
    lua_pushstring(L, "outpost.sandbox");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "site");
    lua_pushfstring(L, "%s/lib", dir);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
}

void op_vm_set_lists_dir(lua_State *L, const char *dir)
{
    lua_pushstring(L, dir);
    lua_setfield(L, LUA_REGISTRYINDEX, "outpost.lists_dir");
}

/* "ID=MODE" list into the table at the top of L's stack. */
static void set_modes(lua_State *L, char *const *items, size_t n, const char *tenant_prefix)
{
    for (size_t i = 0; i < n; i++) {
        const char *item = items[i];
        if (tenant_prefix != NULL) {
            size_t tl = strlen(tenant_prefix);
            if (strncmp(item, tenant_prefix, tl) != 0 || item[tl] != ':')
                continue;
            item += tl + 1;
        }
        const char *eq = strchr(item, '=');
        lua_pushlstring(L, item, (size_t)(eq - item));
        lua_pushstring(L, eq + 1);
        lua_rawset(L, -3);
    }
}

void op_vm_set_config(lua_State *L, const op_config_t *cfg)
{
    /* What policies and libraries may know of the configuration, as plain
     * tables; outpost.config() hands out copies. */
    lua_createtable(L, 0, 2);
    lua_createtable(L, 0, (int)cfg->nservices);
    for (size_t i = 0; i < cfg->nservices; i++) {
        const op_service_conf_t *svc = &cfg->services[i];
        lua_createtable(L, 0, 4);
        lua_pushnumber(L, svc->deadline);
        lua_setfield(L, -2, "deadline");
        lua_pushstring(L, svc->default_action);
        lua_setfield(L, -2, "default_action");
        lua_newtable(L);
        set_modes(L, svc->checks, svc->nchecks, NULL);
        lua_setfield(L, -2, "checks");
        lua_newtable(L); /* tenant -> {ID = MODE} */
        for (size_t t = 0; t < svc->ntenant_checks; t++) {
            const char *item = svc->tenant_checks[t];
            size_t tl = (size_t)(strchr(item, ':') - item);
            lua_pushlstring(L, item, tl);
            lua_rawget(L, -2);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                lua_newtable(L);
                char tenant[256];
                snprintf(tenant, sizeof tenant, "%.*s", (int)tl, item);
                set_modes(L, svc->tenant_checks, svc->ntenant_checks, tenant);
                lua_pushstring(L, tenant);
                lua_pushvalue(L, -2);
                lua_rawset(L, -4);
            }
            lua_pop(L, 1);
        }
        lua_setfield(L, -2, "tenant_checks");
        lua_setfield(L, -2, svc->name);
    }
    lua_setfield(L, -2, "services");
    op_config_push_lua(L, cfg); /* directory = {...}: sections only Lua reads */
    lua_setfield(L, LUA_REGISTRYINDEX, "outpost.config");
}

/* What the error handler of a request that hit the cap may still use: its
 * traceback, the log line. */
#define MEM_SLACK (1u << 20)

/* Past 7/8 of the cap the run is stopped at its next instruction, with a
 * Lua error that says where (a memory error says nowhere: Lua calls no
 * error handler for it); past the cap (one large allocation) growth is
 * refused.  Only a growth past 7/8 comes here: the allocator's common case
 * pays one comparison for the cap (issue 20, docs/performance.md).
 * Returns 0 when the growth is refused. */
static __attribute__((noinline)) int cap_allows(op_lua_mem_t *m, size_t want)
{
    if (!m->armed)
        return 1;
    if (want > m->max + (m->refused ? MEM_SLACK : 0)) {
        m->refused = 1;
        return 0;
    }
    if (!m->stopped) {
        m->stopped = 1;
        op_watchdog_stop_run("its generation's Lua reached 7/8 of lua_memory_max");
    }
    return 1;
}

/* An allocation or a resize.  total is what the generation holds after
 * the call: computed before it (unsigned arithmetic, right for a shrink
 * too) and kept only if the underlying allocator did what was asked. */
static __attribute__((noinline)) void *capped_realloc(op_lua_mem_t *m, void *ptr, size_t osize,
                                                      size_t nsize)
{
    size_t total = m->total - osize + nsize;
    if (__builtin_expect(nsize > osize && total > m->max - m->max / 8, 0) && !cap_allows(m, total))
        return NULL;
    void *p = m->f(m->ud, ptr, osize, nsize);
    if (__builtin_expect(p != NULL, 1))
        m->total = total;
    return p;
}

/* Split so that both paths are tail calls: about half the calls are frees,
 * which cannot fail and need no frame of ours. */
static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    op_lua_mem_t *m = ud;
    if (nsize == 0) {
        m->total -= osize;
        return m->f(m->ud, ptr, osize, 0);
    }
    return capped_realloc(m, ptr, osize, nsize);
}

static void cap_memory(op_gen_t *gen)
{
    lua_State *L = gen->L;
    gen->mem.f = lua_getallocf(L, &gen->mem.ud);
    gen->mem.total = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024u + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
    gen->mem.max = gen->cfg->lua_memory_max;
    lua_setallocf(L, capped_alloc, &gen->mem);
}

/* OUTPOST_LUAJIT_TOOLS: LuaJIT's own tracing and profiling modules, started
 * as `luajit -j` would ("v=FILE dump=+rs,FILE p=vl,FILE", space separated;
 * each CMD=A,B runs require("jit.CMD").start(A, B)) in one generation:
 * number OUTPOST_LUAJIT_TOOLS_GEN, by default 1.  Only one, because LuaJIT's
 * profiler serves one state per process; a bench reloads after its warm-up
 * and profiles generation 2, the warm state alone.  For make bench-jit
 * (docs/performance.md), never for production: jit.v and jit.dump write a
 * line per trace event, jit.p samples with a timer signal.  They live in
 * LuaJIT's own directory (Debian: /usr/share/luajit-2.1.0-beta3/jit/), on
 * the host's package.path; policies cannot reach them. */
static int start_jit_tools(lua_State *L, const char *spec, char *err, size_t errlen)
{
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", spec) >= (int)sizeof buf) {
        snprintf(err, errlen, "OUTPOST_LUAJIT_TOOLS: longer than %zu bytes", sizeof buf - 1);
        return -1;
    }
    char *save = NULL;
    for (char *tool = strtok_r(buf, " ", &save); tool != NULL; tool = strtok_r(NULL, " ", &save)) {
        char *args = strchr(tool, '=');
        if (args != NULL)
            *args++ = '\0';
        lua_getglobal(L, "require");
        lua_pushfstring(L, "jit.%s", tool);
        if (lua_pcall(L, 1, 1, 0) != 0)
            goto fail;
        lua_getfield(L, -1, "start");
        lua_remove(L, -2);
        int nargs = 0;
        for (char *a = args; a != NULL && *a != '\0'; nargs++) {
            char *comma = strchr(a, ',');
            lua_pushlstring(L, a, comma != NULL ? (size_t)(comma - a) : strlen(a));
            a = comma != NULL ? comma + 1 : NULL;
        }
        if (lua_pcall(L, nargs, 0, 0) != 0)
            goto fail;
        op_warn("OUTPOST_LUAJIT_TOOLS: jit.%s started (%s): a bench's tool, it slows every request",
                tool, args != NULL ? args : "no arguments");
    }
    return 0;
fail:
    snprintf(err, errlen, "OUTPOST_LUAJIT_TOOLS: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
}

static void free_protos(op_gen_t *gen)
{
    if (gen->proto == NULL || gen->services == NULL)
        return;
    for (size_t i = 0; i < gen->cfg->nservices; i++)
        if (gen->services[i].proto != NULL)
            gen->proto->free(gen->services[i].proto);
}

op_gen_t *op_gen_create(op_config_t *cfg, uint64_t number, const op_gen_proto_t *proto, char *err,
                        size_t errlen)
{
    lua_State *L = op_vm_new_state(cfg->lua_dir, cfg->lua_jit != OP_LUA_JIT_NO, err, errlen);
    if (L == NULL) {
        op_config_free(cfg);
        return NULL;
    }
    op_vm_set_lists_dir(L, cfg->lists_dir);
    op_vm_set_site_lua_dir(L, cfg->site_lua_dir);
    op_vm_set_config(L, cfg);
    op_gen_t *gen = op_calloc(1, sizeof *gen);
    gen->number = number;
    gen->L = L;
    gen->cfg = cfg;
    gen->refs = 1;
    gen->proto = proto;
    cap_memory(gen);
    /* The interpreter runs every loop where the watchdog's hook can stop
     * it; a compiled trace runs no hook (core/watchdog.h).  With lua_jit =
     * lib the sandbox marks every function of a policy or site file
     * never-compile (jit.off(chunk, true)) as it loads it: a trace that
     * reaches one aborts, so a policy's own loops stay interpreted while the
     * engine's libraries are compiled (docs/reliability.md).  lua_jit = no
     * turned the compiler off in op_vm_new_state. */
    if (cfg->lua_jit == OP_LUA_JIT_LIB && call_sandbox(L, "interpret_policies", NULL, 0) != 0) {
        snprintf(err, errlen, "sandbox: %s", lua_tostring(L, -1));
        goto fail;
    }
    const char *tools = getenv("OUTPOST_LUAJIT_TOOLS");
    const char *tools_gen = getenv("OUTPOST_LUAJIT_TOOLS_GEN");
    if (tools != NULL && *tools != '\0' &&
        number == (tools_gen != NULL ? strtoull(tools_gen, NULL, 10) : 1) &&
        start_jit_tools(L, tools, err, errlen) != 0)
        goto fail;
    lua_getfield(L, LUA_REGISTRYINDEX, OP_ACTION_MT);
    gen->action_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    gen->services = op_calloc(cfg->nservices, sizeof *gen->services);
    for (size_t i = 0; i < cfg->nservices; i++) {
        const op_service_conf_t *svc = &cfg->services[i];
        gen->services[i].conf = svc;
        /* outpost.config().loading tells a policy which service it is being
         * loaded for (the same file may serve several). */
        lua_getfield(L, LUA_REGISTRYINDEX, "outpost.config");
        lua_pushstring(L, svc->name);
        lua_setfield(L, -2, "loading");
        lua_pop(L, 1);
        if (call_sandbox(L, "load_policy", svc->policy, 1) != 0) {
            snprintf(err, errlen, "service %s (%s:%d): %s", svc->name, svc->file, svc->line,
                     lua_tostring(L, -1));
            goto fail;
        }
        op_gen_service_t *gs = &gen->services[i];
        for (int ph = 0; ph < OP_PHASE_COUNT; ph++) {
            lua_getfield(L, -1, op_phase_handler_name((op_phase_t)ph));
            gs->handler_ref[ph] = lua_isfunction(L, -1) ? luaL_ref(L, LUA_REGISTRYINDEX) : LUA_NOREF;
            if (gs->handler_ref[ph] == LUA_NOREF)
                lua_pop(L, 1);
        }
        lua_getfield(L, -1, "keep_body");
        gs->keep_body = lua_isnumber(L, -1) ? (size_t)lua_tonumber(L, -1) : 0;
        lua_pop(L, 1);
        if (proto != NULL && proto->load(L, &gs->proto, err, errlen) != 0) {
            char why[400];
            snprintf(why, sizeof why, "%s", err);
            snprintf(err, errlen, "service %s (%s:%d): %s", svc->name, svc->file, svc->line, why);
            goto fail;
        }
        gs->policy_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_getfield(L, LUA_REGISTRYINDEX, "outpost.config");
    lua_pushnil(L);
    lua_setfield(L, -2, "loading");
    lua_pop(L, 1);
    if (check_handlers(gen, err, errlen) != 0)
        goto fail;
    lua_getglobal(L, "require");
    lua_pushstring(L, "outpost.sandbox");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "worker");
    gen->worker_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    if (call_sandbox(L, "freeze", NULL, 0) != 0) {
        snprintf(err, errlen, "sandbox: %s", lua_tostring(L, -1));
        goto fail;
    }
    return gen;

fail:
    lua_close(L);
    free_protos(gen);
    op_config_free(cfg);
    free(gen->services);
    free(gen);
    return NULL;
}

void op_gen_ref(op_gen_t *gen)
{
    gen->refs++;
}

void op_gen_unref(op_gen_t *gen)
{
    OP_ASSERT(gen->refs > 0);
    if (--gen->refs > 0)
        return;
    op_info("generation %llu closed: its last request has ended", (unsigned long long)gen->number);
    lua_close(gen->L);
    free_protos(gen);
    op_config_free(gen->cfg);
    free(gen->services);
    free(gen);
}

const char *op_phase_handler_name(op_phase_t phase)
{
    static const char *const names[OP_PHASE_COUNT] = {
        "on_request", "on_connect", "on_helo", "on_mail", "on_rcpt", "on_data",
        "on_header",  "on_eoh",     "on_body", "on_eom",  "on_abort",
    };
    return (unsigned)phase < OP_PHASE_COUNT ? names[phase] : "?";
}

const op_gen_service_t *op_gen_service(const op_gen_t *gen, const char *name)
{
    for (size_t i = 0; i < gen->cfg->nservices; i++)
        if (strcmp(gen->cfg->services[i].name, name) == 0)
            return &gen->services[i];
    return NULL;
}
