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
typedef struct op_ffi_limit_answer {
    int ok;
    int source;
    double max, used, remaining;
    double next_free;
    double window, resolution;
} op_ffi_limit_answer_t;
typedef struct op_ffi_api {
    size_t size;
    int (*domain)(const char *name, size_t len, char *out, size_t cap);
    const char *(*attr)(const void *attrs_ud, const char *name, size_t len, int *vlen);
    const char *(*netset_match)(const void *netset_ud, const char *addr, int *prefix);
    int (*limit)(int kind, const char *name, size_t name_len, const char *subject,
                 size_t subject_len, const char *instance, size_t instance_len, double n,
                 double dir_max, struct op_ffi_limit_answer *out);
    const char *(*limit_source)(int source);
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

-- limit.check, add and reserve (lua_api_limit.c): on a backend that
-- answers at once (RocksDB) outside a dry run, one FFI call and the answer
-- table built here, in compiled code.  The arguments are checked as the
-- classic function checks them; anything else (a number where a string
-- goes, a numeric string for n, an opts table whose max is no number) and
-- every case the C side declines goes to the classic function, which
-- answers or raises exactly as it always did.
local MAX_KEY = 512 -- OP_COUNTERS_MAX_KEY (counters/counters.h)
local function key_ok(s)
    return type(s) == "string" and #s >= 1 and #s <= MAX_KEY
end
local function n_ok(n)
    return type(n) == "number" and n >= 0 and n <= 1e9 and n % 1 == 0
end
local sources = {} -- op_max_source_t -> its name, made once per name
local function limit_answer(a, name, subject)
    local src = a.source
    local source = sources[src]
    if source == nil then
        source = ffi_string(api.limit_source(src))
        sources[src] = source
    end
    local next_free = a.next_free
    return {
        ok = a.ok ~= 0, limit = name, subject = subject, max = a.max, used = a.used,
        remaining = a.remaining, next_free = next_free >= 0 and next_free or nil,
        window = a.window, resolution = a.resolution, source = source,
    }
end
local function dir_max_of(opts)
    if opts == nil then return -1 end
    if type(opts) ~= "table" then return nil end
    local max = opts.max
    if max == nil then return -1 end
    if type(max) == "number" and max >= 0 and max <= 1e9 then return max end
    return nil
end
local UNAVAILABLE = "unavailable"

local function make_count(kind)
    return function(check)
        local limit = api.limit
        local a = ffi.new("op_ffi_limit_answer_t")
        return function(name, subject, n, opts)
            if key_ok(name) and key_ok(subject) then
                if n == nil then n = 1 end
                local dir_max = dir_max_of(opts)
                if dir_max and n_ok(n) then
                    local rc = limit(kind, name, #name, subject, #subject, nil, 0, n, dir_max, a)
                    if rc == 1 then return limit_answer(a, name, subject) end
                    if rc == -1 then return nil, UNAVAILABLE end
                end
            end
            return check(name, subject, n, opts)
        end
    end
end
make["limit.check"] = make_count(0)
make["limit.add"] = make_count(1)

make["limit.reserve"] = function(reserve)
    local limit = api.limit
    local a = ffi.new("op_ffi_limit_answer_t")
    return function(name, subject, instance, n, opts)
        if key_ok(name) and key_ok(subject) and key_ok(instance) then
            if n == nil then n = 1 end
            local dir_max = dir_max_of(opts)
            if dir_max and n_ok(n) then
                local rc = limit(2, name, #name, subject, #subject, instance, #instance, n,
                    dir_max, a)
                if rc == 1 then return limit_answer(a, name, subject) end
                if rc == -1 then return nil, UNAVAILABLE end
            end
        end
        return reserve(name, subject, instance, n, opts)
    end
end

-- api: for specs, which call the C side directly (the registry is out of
-- a policy's reach).
return { active = active, make = make, classic = {}, fast = {}, api = api }
