/* libFuzzer target for the address parsers written in Lua: site.address
 * (lua/lib/site/address.lua: parse, normalize, untagged, without_realm) and
 * message.rfc5322 (address lists, msg-ids, dates, RFC 2047 words), which
 * read what senders write.  They run in LuaJIT as the engine runs them; the
 * one engine module they need, outpost.domain, is bound here to the same C
 * function (engine/lib/names.c) lua_api_outpost.c binds.
 *
 * Checks, through a protected call, on any input string:
 *   - no call raises (a raise in a policy is the service's default action
 *     for every message that carries the string);
 *   - the results keep their contracts: a table or nil, "badaddress"; a
 *     normal form is at most 254 bytes and normalizing it again gives it
 *     back; an address list is entries with string address and display,
 *     at most rfc5322.MAX_ADDRESSES; msg-ids are "<...@...>".
 *
 * libFuzzer sees no coverage inside LuaJIT, so a line hook (the JIT off)
 * feeds it the Lua side's line-to-line edges as extra counters.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE \
 *       -Iengine $(pkg-config --cflags luajit) spec/fuzz/fuzz_address.c \
 *       engine/lib/names.c $(pkg-config --libs luajit libidn2) -o build/fuzz_address
 *   build/fuzz_address -max_total_time=60 spec/fuzz/corpus/address
 * Run from the repository's root (it reads lua/lib), or set OUTPOST_LUA_LIB. */
#include "lib/names.h"

#include <lauxlib.h>
#include <luajit.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define EDGES (1u << 16)
__attribute__((section("__libfuzzer_extra_counters"))) static uint8_t lua_edges[EDGES];
static uint32_t prev_loc;

static void line_hook(lua_State *L, lua_Debug *ar)
{
    if (lua_getinfo(L, "S", ar) == 0)
        return;
    uint32_t loc = (uint32_t)((uintptr_t)ar->source * 2654435761u) ^ (uint32_t)ar->currentline * 40503u;
    lua_edges[(loc ^ prev_loc) & (EDGES - 1)]++;
    prev_loc = loc >> 1;
}

static int l_domain(lua_State *L)
{
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    char out[OP_NAME_MAX + 1];
    if (op_name_normalize(name, len, out, sizeof out) != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "badname");
        return 2;
    }
    lua_pushstring(L, out);
    return 1;
}

static int open_outpost(lua_State *L)
{
    lua_newtable(L);
    lua_pushcfunction(L, l_domain);
    lua_setfield(L, -2, "domain");
    return 1;
}

static const char driver[] =
    "local address = require 'site.address'\n"
    "local rfc5322 = require 'message.rfc5322'\n"
    "local function check(c, what) if not c then error('contract broken: ' .. what, 0) end end\n"
    "return function(s)\n"
    "  local a, err = address.parse(s)\n"
    "  check(type(a) == 'table' or (a == nil and err == 'badaddress'), 'parse')\n"
    "  local n, e = address.normalize(s)\n"
    "  if n then\n"
    "    check(type(n) == 'string' and #n <= 254, 'normal form length')\n"
    "    check(n == '' or address.normalize(n) == n, 'normalize is idempotent')\n"
    "  else check(e == 'badaddress', 'normalize error token') end\n"
    "  address.normalize(s, { strip_tag = false, keep_case = true })\n"
    "  address.untagged(s); address.untagged(s, '+-')\n"
    "  check(address.without_realm(s) == s:match('^(.+)@[^@]+$'), 'without_realm splits at the last @')\n"
    "  local list, why = rfc5322.parse_address_list(s)\n"
    "  if list then\n"
    "    check(#list <= rfc5322.MAX_ADDRESSES, 'address count')\n"
    "    for _, m in ipairs(list) do\n"
    "      check(type(m.address) == 'string' and type(m.display) == 'string', 'list entry')\n"
    "      address.normalize(m.address)\n"
    "    end\n"
    "  else check(type(why) == 'string', 'list error') end\n"
    "  for _, obs in ipairs { false, true } do\n"
    "    local ids, r = rfc5322.parse_msg_ids(s, obs)\n"
    "    if ids then for _, id in ipairs(ids) do check(id:find('^<.+@.+>$'), 'msg-id form') end\n"
    "    else check(type(r) == 'string', 'msg-id error') end\n"
    "  end\n"
    "  local d, r = rfc5322.parse_date(s)\n"
    "  check(type(d) == 'table' or type(r) == 'string', 'date')\n"
    "  check(type(rfc5322.decode_words(s)) == 'string', 'decode_words')\n"
    "  check(rfc5322.longest_line('X', s) >= 0, 'longest_line')\n"
    "end\n";

static lua_State *L;
static int run_ref;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    L = luaL_newstate();
    if (L == NULL)
        abort();
    luaL_openlibs(L);
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF); /* hooks see every line */
    const char *lib = getenv("OUTPOST_LUA_LIB");
    char path[4096];
    snprintf(path, sizeof path, "%s/?.lua", lib ? lib : "lua/lib");
    lua_getglobal(L, "package");
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, open_outpost);
    lua_setfield(L, -2, "outpost");
    lua_pop(L, 2);
    if (luaL_loadbuffer(L, driver, sizeof driver - 1, "=fuzz_address") != 0 ||
        lua_pcall(L, 0, 1, 0) != 0) {
        fprintf(stderr, "fuzz_address: cannot load the parsers: %s\n", lua_tostring(L, -1));
        abort();
    }
    run_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_sethook(L, line_hook, LUA_MASKLINE, 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, run_ref);
    lua_pushlstring(L, (const char *)data, size);
    prev_loc = 0;
    if (lua_pcall(L, 1, 0, 0) != 0) {
        fprintf(stderr, "fuzz_address: the parsers raised on %zu bytes: %s\n", size,
                lua_tostring(L, -1));
        abort();
    }
    if (lua_gettop(L) != top)
        abort();
    lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
