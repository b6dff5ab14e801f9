#include "vm.h"

#include "log.h"
#include "lua_api_request.h"
#include "mem.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <string.h>

/* engine/sandbox.lua, turned into a C string by the Makefile. */
#include "sandbox_lua.h"

int luaopen_outpost(lua_State *L); /* lua_api_outpost.c */
int luaopen_outpost_ldap(lua_State *L); /* lua_api_ldap.c */

/* The engine's C modules, preloaded so require finds them and nothing on
 * disk can shadow them.  Later modules (outpost.dns, ...) add a row. */
static const luaL_Reg c_modules[] = {
    {"outpost", luaopen_outpost},
    {"outpost.ldap", luaopen_outpost_ldap},
    {NULL, NULL},
};

static int open_sandbox(lua_State *L)
{
    if (luaL_loadbuffer(L, sandbox_lua, sizeof sandbox_lua - 1, "=engine/sandbox.lua") != 0)
        return lua_error(L);
    lua_call(L, 0, 1);
    return 1;
}

lua_State *op_vm_new_state(const char *lua_dir, char *err, size_t errlen)
{
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        snprintf(err, errlen, "cannot create a Lua state (out of memory)");
        return NULL;
    }
    luaL_openlibs(L);

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

op_gen_t *op_gen_create(op_config_t *cfg, uint64_t number, char *err, size_t errlen)
{
    lua_State *L = op_vm_new_state(cfg->lua_dir, err, errlen);
    if (L == NULL) {
        op_config_free(cfg);
        return NULL;
    }
    op_gen_t *gen = op_calloc(1, sizeof *gen);
    gen->number = number;
    gen->L = L;
    gen->cfg = cfg;
    gen->refs = 1;
    lua_getfield(L, LUA_REGISTRYINDEX, OP_ACTION_MT);
    gen->action_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    gen->services = op_calloc(cfg->nservices, sizeof *gen->services);
    for (size_t i = 0; i < cfg->nservices; i++) {
        const op_service_conf_t *svc = &cfg->services[i];
        gen->services[i].conf = svc;
        if (call_sandbox(L, "load_policy", svc->policy, 1) != 0) {
            snprintf(err, errlen, "service %s (%s:%d): %s", svc->name, svc->file, svc->line,
                     lua_tostring(L, -1));
            goto fail;
        }
        gen->services[i].handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
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
    op_config_free(gen->cfg);
    free(gen->services);
    free(gen);
}

const op_gen_service_t *op_gen_service(const op_gen_t *gen, const char *name)
{
    for (size_t i = 0; i < gen->cfg->nservices; i++)
        if (strcmp(gen->cfg->services[i].name, name) == 0)
            return &gen->services[i];
    return NULL;
}
