#include "lua/testrunner.h"

#include "core/log.h"
#include "core/request.h"
#include "core/services.h"
#include "core/vm.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>

#include "testhost_lua.h"

typedef struct {
    int finished;
    int status;
} host_result_t;

static void on_host_finished(op_request_t *req, int status, void *data)
{
    host_result_t *r = data;
    r->finished = 1;
    r->status = status;
    uv_stop(req->loop);
}

int op_test_run(const op_config_t *cfg, const char *lua_dir, const char *config_path, int argc,
                char **argv)
{
    char err[1024];
    uv_loop_t *loop = uv_default_loop();
    op_services_private_state = 1; /* a daemon with this config may be running */
    if (cfg != NULL && op_services_start(loop, cfg, err, sizeof err) != 0) {
        fprintf(stderr, "outpostd test: %s\n", err);
        return 2;
    }
    lua_State *L = op_vm_new_state(lua_dir, 1, err, sizeof err);
    if (L == NULL) {
        fprintf(stderr, "outpostd test: %s\n", err);
        return 2;
    }
    if (cfg != NULL) {
        op_vm_set_lists_dir(L, cfg->lists_dir);
        op_vm_set_site_lua_dir(L, cfg->site_lua_dir);
        op_vm_set_config(L, cfg);
    }
    /* Specs find the tree and config they test through this table. */
    lua_newtable(L);
    lua_pushstring(L, lua_dir);
    lua_setfield(L, -2, "lua_dir");
    if (config_path != NULL) {
        lua_pushstring(L, config_path);
        lua_setfield(L, -2, "config_path");
    }
    lua_setglobal(L, "OUTPOST_TEST");

    lua_State *co = lua_newthread(L);
    int co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (luaL_loadbuffer(co, testhost_lua, sizeof testhost_lua - 1, "=engine/lua/testhost.lua") != 0) {
        fprintf(stderr, "outpostd test: %s\n", lua_tostring(co, -1));
        lua_close(L);
        return 2;
    }
    lua_createtable(co, argc, 0);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(co, argv[i]);
        lua_rawseti(co, -2, i + 1);
    }
    host_result_t result = {0, 0};
    op_request_t *host = op_request_host_new(loop, co, on_host_finished, &result);
    op_request_host_resume(host, 1);
    if (!result.finished)
        uv_run(loop, UV_RUN_DEFAULT);

    int passed = 0, failed = 0;
    if (!result.finished) {
        fprintf(stderr, "outpostd test: the specs waited for something that never came\n");
        failed = 1;
    } else if (result.status != 0) {
        fprintf(stderr, "outpostd test: %s\n", lua_tostring(co, -1));
        failed = 1;
    } else {
        passed = (int)lua_tointeger(co, 1);
        failed = (int)lua_tointeger(co, 2);
    }
    op_trace_free(host->trace); /* a spec's dry run left open */
    free(host);
    luaL_unref(L, LUA_REGISTRYINDEX, co_ref);
    lua_close(L);
    if (cfg != NULL) {
        op_services_stop();
        uv_run(loop, UV_RUN_NOWAIT);
    }
    printf("%d passed, %d failed\n", passed, failed);
    fflush(stdout);
    return failed > 0 ? 1 : 0;
}
