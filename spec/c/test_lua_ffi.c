/* The FFI fast paths (lua/lua_api_ffi.h) against their classic twins: which
 * one a state picks, and that both answer and fail alike on the same inputs,
 * with the JIT on and off.  req.attrs is here because only C can make a
 * request's attrs userdata; spec/lua/ffi_spec.lua compares outpost.domain
 * and netset:match inside the engine. */
#include "ctest.h"
#include "core/vm.h"
#include "lua/lua_api_ffi.h"
#include "lib/netset.h"
#include "lua/lua_api_request.h"
#include "core/request.h"

#include <uv.h>

#include <lauxlib.h>
#include <lualib.h>

static lua_State *state(int jit)
{
    char err[512];
    lua_State *L = op_vm_new_state("lua", jit, err, sizeof err);
    if (L == NULL)
        fprintf(stderr, "op_vm_new_state: %s\n", err);
    return L;
}

/* Runs code as a function of the values pushed (nargs); its one result, a
 * string, is "" when all was well, else what went wrong. */
static const char *run(lua_State *L, const char *code, int nargs)
{
    if (luaL_loadstring(L, code) != 0)
        return lua_tostring(L, -1);
    lua_insert(L, -nargs - 1);
    if (lua_pcall(L, nargs, 1, 0) != 0)
        return lua_tostring(L, -1);
    return lua_isstring(L, -1) ? lua_tostring(L, -1) : "(the check returned no string)";
}

static const char *const WHICH =
    "local reg = debug.getregistry()['outpost.ffi']\n"
    "local mt = debug.getregistry()['outpost.attrs']\n"
    "local outpost = require 'outpost'\n"
    "local netset = require 'outpost.netset'\n"
    "local set_mt = debug.getmetatable(netset.new())\n"
    "local want = ...\n"
    "local pick = want and reg.fast or reg.classic\n"
    "if reg.active ~= want then return 'active is ' .. tostring(reg.active) end\n"
    "if outpost.domain ~= pick['outpost.domain'] then return 'outpost.domain' end\n"
    "if mt.__index ~= pick['attrs.__index'] then return 'attrs.__index' end\n"
    "if set_mt.__index.match ~= pick['netset.match'] then return 'netset.match' end\n"
    "for name, f in pairs(reg.fast) do\n"
    "  if debug.getinfo(f, 'S').what ~= 'Lua' then return name .. ': fast is not Lua' end\n"
    "  if debug.getinfo(reg.classic[name], 'S').what ~= 'C' then return name .. ': classic is not C' end\n"
    "end\n"
    "return ''\n";

CTEST(jit_on_picks_the_ffi_paths)
{
    unsetenv("OUTPOST_LUA_FFI");
    lua_State *L = state(1);
    CHECK(L != NULL);
    lua_pushboolean(L, 1);
    CHECK_STR(run(L, WHICH, 1), "");
    lua_close(L);
}

CTEST(jit_off_keeps_the_classic_functions)
{
    unsetenv("OUTPOST_LUA_FFI");
    lua_State *L = state(0);
    CHECK(L != NULL);
    lua_pushboolean(L, 0);
    CHECK_STR(run(L, WHICH, 1), "");
    lua_close(L);
}

CTEST(env_switch_forces_the_classic_functions)
{
    setenv("OUTPOST_LUA_FFI", "off", 1);
    lua_State *L = state(1);
    CHECK(L != NULL);
    lua_pushboolean(L, 0);
    CHECK_STR(run(L, WHICH, 1), "");
    lua_close(L);
    unsetenv("OUTPOST_LUA_FFI");
}

/* Both __index functions over the same names, each result compared; then
 * the request ends and both must raise the same error.  A loop of 200
 * rounds lets the JIT compile the fast one (hotloop is 56). */
static const char *const ATTRS =
    "local ud, detach = ...\n"
    "local reg = debug.getregistry()['outpost.ffi']\n"
    "local fast, classic = reg.fast['attrs.__index'], reg.classic['attrs.__index']\n"
    "local names = { 'sender', 'recipient', 'empty', 'sende', 'senderx', '', 'missing',\n"
    "                'sasl_username', 'nul\\0name', 1, true }\n"
    "for round = 1, 200 do\n"
    "  for _, k in ipairs(names) do\n"
    "    local a, b = fast(ud, k), classic(ud, k)\n"
    "    if a ~= b then return ('round %d, %s: fast %s, classic %s'):format(round, tostring(k),\n"
    "      tostring(a), tostring(b)) end\n"
    "  end\n"
    "end\n"
    "if ud.sender ~= 'a@example.org' then return 'ud.sender is ' .. tostring(ud.sender) end\n"
    "if ud['nul\\0name'] ~= 'x\\0y' then return 'a NUL inside' end\n"
    "detach()\n"
    "local ok1, e1 = pcall(fast, ud, 'sender')\n"
    "local ok2, e2 = pcall(classic, ud, 'sender')\n"
    "if ok1 or ok2 then return 'an ended request still read' end\n"
    "if e1 ~= e2 then return 'errors differ: ' .. e1 .. ' / ' .. e2 end\n"
    "if not e1:find('request has ended', 1, true) then return 'error: ' .. e1 end\n"
    "return ''\n";

static op_request_t *the_request;
static int l_detach(lua_State *L)
{
    (void)L;
    op_attrs_detach(the_request);
    return 0;
}

static void attrs_alike(int jit)
{
    static const op_request_attr_t attrs[] = {
        {"recipient", 9, "b@example.net", 13},
        {"sender", 6, "a@example.org", 13},
        {"empty", 5, "", 0},
        {"nul\0name", 8, "x\0y", 3},
        {"sasl_username", 13, "alice", 5},
    };
    lua_State *L = state(jit);
    CHECK(L != NULL);
    op_request_t *req = calloc(1, sizeof *req);
    req->attrs = attrs;
    req->nattrs = sizeof attrs / sizeof attrs[0];
    the_request = req;
    op_attrs_push(L, req);
    lua_pushcfunction(L, l_detach);
    CHECK_STR(run(L, ATTRS, 2), "");
    lua_close(L);
    free(req);
}

CTEST(attrs_alike_jit_on)
{
    attrs_alike(1);
}

CTEST(attrs_alike_jit_off)
{
    attrs_alike(0);
}

/* The C side alone: what the chunk relies on. */
CTEST(fast_functions_in_c)
{
    char out[254];
    CHECK_INT(op__ffi_domain("example.org", 11, out, sizeof out), OP_FFI_SAME);
    CHECK_INT(op__ffi_domain("Example.ORG.", 12, out, sizeof out), 11);
    CHECK_STR(out, "example.org");
    CHECK_INT(op__ffi_domain("example.org.", 12, out, sizeof out), 11);
    CHECK_INT(op__ffi_domain("a..b", 4, out, sizeof out), -1);
    CHECK_INT(op__ffi_domain("", 0, out, sizeof out), -1);
    CHECK_INT(op__ffi_domain("a\0b", 3, out, sizeof out), -1);

    op_netset_t *none = NULL;
    int prefix = 7;
    CHECK(op__ffi_netset_match(&none, "10.0.0.1", &prefix) == NULL);
    CHECK_INT(prefix, -1);
}

/* op_request_waitable, the fast paths' "may a primitive wait here?",
 * against op_request_check_wait, the classic functions' check, in every
 * place: the request's own code, a table.sort comparator, a gsub callback,
 * a coroutine of the code's own (resume and wrap, the wrappers
 * lua_api_ffi.lua installs), a nested pcall, and outside a request. */
static int l_waitable(lua_State *L)
{
    lua_pushboolean(L, op_request_waitable() != NULL);
    return 1;
}

static int l_check(lua_State *L)
{
    op_request_check_wait(L, "probe");
    return 0;
}

static const char *const PROBE =
    "local waitable, check = ...\n"
    "local out = {}\n"
    "local function probe(where)\n"
    "  out[#out + 1] = where .. '=' .. tostring(waitable()) .. '/' .. tostring((pcall(check)))\n"
    "end\n"
    "probe('own')\n"
    "pcall(probe, 'pcall')\n"
    "table.sort({ 2, 1 }, function(a, b) probe('sort') return a < b end)\n"
    "string.gsub('a', 'a', function() probe('gsub') end)\n"
    "coroutine.resume(coroutine.create(function() probe('resume') end))\n"
    "coroutine.wrap(function() probe('wrap') end)()\n"
    "probe('after')\n"
    "return table.concat(out, ' ')\n";

static int probe_status = -1;
static void probe_finished(op_request_t *req, int status, void *data)
{
    (void)req;
    (void)data;
    probe_status = status;
}

static void waitable_alike(int jit)
{
    lua_State *L = state(jit);
    CHECK(L != NULL);
    /* outside a request */
    lua_pushcfunction(L, l_waitable);
    lua_call(L, 0, 1);
    CHECK_INT(lua_toboolean(L, -1), 0);
    lua_pop(L, 1);
    lua_pushcfunction(L, l_check);
    CHECK_INT(lua_pcall(L, 0, 0, 0), LUA_ERRRUN);
    CHECK(strstr(lua_tostring(L, -1), "cannot wait here") != NULL);
    lua_pop(L, 1);

    uv_loop_t loop;
    uv_loop_init(&loop);
    lua_State *co = lua_newthread(L);
    luaL_ref(L, LUA_REGISTRYINDEX);
    CHECK_INT(luaL_loadstring(co, PROBE), 0);
    lua_pushcfunction(co, l_waitable);
    lua_pushcfunction(co, l_check);
    probe_status = -1;
    op_request_t *req = op_request_host_new(&loop, co, probe_finished, NULL);
    op_request_host_resume(req, 2);
    free(req);
    CHECK_INT(probe_status, 0);
    /* The classic check passes only in the request's own code; the fast
     * one must say the same everywhere. */
    CHECK_STR(lua_tostring(co, -1), "own=true/true pcall=true/true sort=false/false "
                                    "gsub=false/false resume=false/false wrap=false/false "
                                    "after=true/true");
    CHECK(op_request_waitable() == NULL); /* and not once the request left */
    lua_close(L);
    uv_loop_close(&loop);
}

CTEST(waitable_agrees_with_check_wait_jit_on)
{
    unsetenv("OUTPOST_LUA_FFI");
    waitable_alike(1);
}

int main(int argc, char **argv)
{
    return ctest_main(argc, argv);
}
