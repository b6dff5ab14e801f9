/* bench-ffi_call: what one call from Lua into C costs through the classic
 * Lua C API (a lua_CFunction) and through the FFI, with the JIT on and off
 * (docs/performance.md, issue 20: FFI fast paths pay only where the JIT
 * compiles them).
 *
 * Each variant runs a Lua loop of N calls of a C function that adds two
 * integers, once as a lua_CFunction and once as an FFI call through a
 * function pointer (ffi.cast, as the outpost.* modules would hold one),
 * plus an empty loop to subtract.  Prints nanoseconds per call.  One
 * process, no I/O, bounded by N (default 10,000,000; argv[1]). */
#include <lauxlib.h>
#include <lualib.h>
#include <luajit.h>
#include <stdio.h>
#include <stdlib.h>

static int l_add(lua_State *L)
{
    lua_pushinteger(L, luaL_checkinteger(L, 1) + luaL_checkinteger(L, 2));
    return 1;
}

int bench_ffi_add(int a, int b);
int bench_ffi_add(int a, int b)
{
    return a + b;
}

static const char script[] =
    "local n, classic, ptr = ...\n"
    "local ffi = require 'ffi'\n"
    "local add = ffi.cast('int (*)(int, int)', ptr)\n"
    "local clock = os.clock\n"
    "local function time(f)\n"
    "  local best = math.huge\n"
    "  for _ = 1, 3 do\n"
    "    local t0 = clock(); f(); local t = clock() - t0\n"
    "    if t < best then best = t end\n"
    "  end\n"
    "  return best\n"
    "end\n"
    "local empty = time(function() local s = 0 for i = 1, n do s = s + i end return s end)\n"
    "local c = time(function() local s = 0 for i = 1, n do s = s + classic(i, 1) end return s end)\n"
    "local f = time(function() local s = 0 for i = 1, n do s = s + add(i, 1) end return s end)\n"
    "return (c - empty) * 1e9 / n, (f - empty) * 1e9 / n\n";

static int run(long n, int jit, double *classic_ns, double *ffi_ns)
{
    lua_State *L = luaL_newstate();
    if (L == NULL)
        return -1;
    luaL_openlibs(L);
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | (jit ? LUAJIT_MODE_ON : LUAJIT_MODE_OFF));
    if (luaL_loadbuffer(L, script, sizeof script - 1, "=ffi_call") != 0)
        goto fail;
    lua_pushnumber(L, (lua_Number)n);
    lua_pushcfunction(L, l_add);
    lua_pushlightuserdata(L, (void *)(size_t)bench_ffi_add);
    if (lua_pcall(L, 3, 2, 0) != 0)
        goto fail;
    *classic_ns = lua_tonumber(L, -2);
    *ffi_ns = lua_tonumber(L, -1);
    lua_close(L);
    return 0;
fail:
    fprintf(stderr, "bench-ffi_call: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return -1;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 10000000;
    if (n < 1000 || n > 1000000000) {
        fprintf(stderr, "usage: bench-ffi_call [N calls, 1000..1e9]\n");
        return 2;
    }
    printf("ns per call of a C function adding two integers, best of 3 loops of %ld calls, "
           "an empty loop subtracted\n", n);
    printf("%-12s %12s %12s\n", "JIT", "lua_CFunction", "FFI");
    for (int jit = 1; jit >= 0; jit--) {
        double c, f;
        if (run(n, jit, &c, &f) != 0)
            return 1;
        printf("%-12s %12.1f %12.1f\n", jit ? "on" : "off", c, f);
    }
    return 0;
}
