-- The FFI fast paths of the outpost.* modules (engine/lua/lua_api_ffi.h).
--
-- Run once per lua_State, with the host's globals (so `ffi` is here and
-- never in a policy's sandbox), by the first op_ffi_offer.  Its argument is
-- a light userdata: the address of the C table of function pointers.  It
-- returns {active, make, classic = {}, fast = {}}: make[name](classic) gives
-- the fast function of `name`, which leaves every case it does not answer
-- itself (an argument of another type, an ended request, a freed set) to
-- `classic`, the reference implementation, so both raise the same errors.
-- Those calls are tail calls: the C function then sees the caller's frame
-- as its own caller, and its error names the caller's line and the
-- function's name ('domain', 'match') as the classic call would.
--
-- The functions below are library code: with daemon { lua_jit = lib or
-- yes } a trace runs through them and through their C calls.  They keep
-- to what LuaJIT compiles: no pattern functions, no varargs, no
-- table made per call; the out-parameters are buffers made once here (a
-- call never yields, so no two calls share one at a time).
local api_ptr = ...
local ffi = require "ffi"

ffi.cdef [[
typedef struct op_ffi_api {
    size_t size;
    int (*domain)(const char *name, size_t len, char *out, size_t cap);
    const char *(*attr)(const void *attrs_ud, const char *name, size_t len, int *vlen);
    const char *(*netset_match)(const void *netset_ud, const char *addr, int *prefix);
} op_ffi_api_t;
]]

local api = ffi.cast("const op_ffi_api_t *", api_ptr)
assert(tonumber(api.size) == ffi.sizeof("op_ffi_api_t"),
    "engine/lua/lua_api_ffi.lua: its op_ffi_api_t differs from lua_api_ffi.h's")

local type, getmetatable, ffi_string = type, getmetatable, ffi.string
local SAME = -2
local NAME_CAP = 254 -- OP_NAME_MAX + 1 (lib/names.h)

-- Under lua_jit = no an FFI call costs six times a classic one
-- (docs/performance.md, bench-ffi_call): the classic functions stay.
-- OUTPOST_LUA_FFI=off forces them with the JIT on too (to compare, or to
-- rule the fast paths out when chasing a bug).
local active = jit.status() and os.getenv("OUTPOST_LUA_FFI") ~= "off"

local make = {}

make["outpost.domain"] = function(domain)
    local normalize = api.domain
    local out = ffi.new("char[?]", NAME_CAP)
    return function(name)
        if type(name) ~= "string" then return domain(name) end
        local n = normalize(name, #name, out, NAME_CAP)
        if n == SAME then return name end -- the common case: no new string
        if n >= 0 then return ffi_string(out, n) end
        return nil, "badname"
    end
end

make["attrs.__index"] = function(__index)
    local attr = api.attr
    local vlen = ffi.new("int[1]")
    return function(attrs, name)
        if type(name) == "string" then
            local v = attr(attrs, name, #name, vlen)
            if v ~= nil then return ffi_string(v, vlen[0]) end
            if vlen[0] == 0 then return nil end
        end
        return __index(attrs, name) -- raises for an ended request
    end
end

make["netset.match"] = function(match)
    local netset_match = api.netset_match
    local prefix = ffi.new("int[1]")
    return function(set, addr)
        -- The C function reads the userdata's payload as a netset: only a
        -- netset may reach it.  A policy cannot make a userdata, and only
        -- lua_api_netset.c gives one this protected metatable.
        if type(set) == "userdata" and getmetatable(set) == "outpost.netset"
            and type(addr) == "string" then
            local label = netset_match(set, addr, prefix)
            if label ~= nil then return ffi_string(label), prefix[0] end
            if prefix[0] == 0 then return end
        end
        return match(set, addr)
    end
end

return { active = active, make = make, classic = {}, fast = {} }
