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
typedef struct op_ffi_hit {
    double serial;
    double expires_ms;
    int status;
    int n;
} op_ffi_hit_t;
typedef struct op_ffi_ldap_query {
    const char *base;
    int scope;
    const char *filter;
    const char *const *args;
    const size_t *arg_lens;
    int nargs;
    const char *const *attrs;
    int nattrs;
    double timeout;
} op_ffi_ldap_query_t;
typedef struct op_ffi_api {
    size_t size;
    int (*domain)(const char *name, size_t len, char *out, size_t cap);
    const char *(*attr)(const void *attrs_ud, const char *name, size_t len, int *vlen);
    const char *(*netset_match)(const void *netset_ud, const char *addr, int *prefix);
    int (*limit)(int kind, const char *name, size_t name_len, const char *subject,
                 size_t subject_len, const char *instance, size_t instance_len, double n,
                 double dir_max, struct op_ffi_limit_answer *out);
    const char *(*limit_source)(int source);
    int (*dns)(int type, const char *name, size_t len, struct op_ffi_hit *out);
    int (*dns_reverse)(const char *ip, char *out, size_t cap);
    const char *(*dns_record)(double serial, int i, size_t *len, int *pref);
    const char *(*dns_token)(int status);
    double (*dns_now_ms)(void);
    int (*ldap)(const struct op_ffi_ldap_query *q, struct op_ffi_hit *out);
    const char *(*ldap_token)(int status);
    void (*foreign)(int delta);
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

-- DNS and LDAP cache hits (lua_api_dns.c, lua_api_ldap.c; architecture.md,
-- "The yield contract", rule 7).  The C side answers a hit only where the
-- classic function would answer it at once: inside a request that may
-- wait here (op_request_waitable: not in a table.sort or gsub callback,
-- not in a coroutine of the code's own, not outside a request), outside a
-- dry run.  Everything else, and every miss, is a tail call of the classic
-- function, which raises "cannot wait here", records the dry run's step,
-- or starts the lookup and yields, exactly as before.
--
-- One read-only table per cached answer.  A cached answer has a serial that
-- names it for life (never reused, unlike its address).  Its table is made
-- at its first hit in this state and kept in a direct-mapped slot list by
-- serial, so:
--  * the same answer gives the same table until its slot is taken by
--    another answer or the state ends; a table is never handed out for
--    another answer (the serial must match), so an entry that expired, was
--    evicted or flushed (ldap.flush) is never seen again: its next lookup
--    is a miss, and the new answer gets a new serial and a new table;
--  * the slots bound what a state keeps: at most SLOTS tables, whatever
--    the cache holds, and a stale one goes when its slot is reused or its
--    generation's lua_State closes (a reload: every table here belongs to
--    one state, none is shared across generations);
--  * no pointer into the C cache is kept: the records are copied into the
--    table when it is made, from the hit the C side holds a reference to.
-- The table refuses new keys (__newindex) and hides its metatable; Lua
-- 5.1's tables cannot refuse a store to a key they hold, so a record or
-- an MX entry can still be overwritten: do not (the same holds for the
-- LDAP lists, which both paths share: lua_api_ldap.c).
local setmetatable, floor, error, tostring = setmetatable, math.floor, error, tostring
local SLOTS = 4096
local shared = {}

local function refuse(_, k)
    error("cannot assign field " .. tostring(k) .. " of a cached DNS answer: it is shared " ..
        "by every request, and read-only", 2)
end
-- An answer's ttl is what it has left when read, as the classic call's is
-- when it is made: the table keeps its expiry (ms on the cache's clock).
local expiry = setmetatable({}, { __mode = "k" })
local dns_now_ms = api.dns_now_ms
local function ttl_of(t, k)
    if k == "ttl" then
        local e = expiry[t]
        if e == nil then return nil end
        local left = (e - dns_now_ms()) / 1000
        return left > 0 and floor(left) or 0
    end
end
local ANSWER_MT = { __index = ttl_of, __newindex = refuse, __metatable = "outpost.dns answer (read-only)" }
local RECORD_MT = { __newindex = refuse, __metatable = "outpost.dns record (read-only)" }
shared.ANSWER_MT, shared.RECORD_MT = ANSWER_MT, RECORD_MT
-- For lua_api_dns.lua's composites, whose answers derive from these: a
-- table of the same kind, expiring at `expires` (ms).
function shared.dns_answer(t, expires)
    expiry[t] = expires
    return setmetatable(t, ANSWER_MT)
end
function shared.expiry(t) return expiry[t] end
shared.refuse = refuse

local DNS_MX = 15
local dns_hit, dns_record, dns_token = api.dns, api.dns_record, api.dns_token
local hit = ffi.new("op_ffi_hit_t")
local rec_len, rec_pref = ffi.new("size_t[1]"), ffi.new("int[1]")
local dns_slots = {} -- [2i+1] = serial, [2i+2] = its table
-- A negative answer: nil and its token, each token made once per state.
local function negative(tokens, status, token_of)
    local t = tokens[status]
    if t == nil then
        t = ffi_string(token_of(status))
        tokens[status] = t
    end
    return nil, t
end
local dns_tokens, ldap_tokens = {}, {}

-- The table of the hit in `hit`, made at its first hit in this state.
local function dns_answer(type_)
    local serial = hit.serial
    local i = serial % SLOTS * 2
    if dns_slots[i + 1] == serial then return dns_slots[i + 2] end
    local t = {}
    for k = 0, hit.n - 1 do
        local p = dns_record(serial, k, rec_len, rec_pref)
        if p == nil then return nil end -- cannot happen: the hit is still held
        local text = ffi_string(p, rec_len[0])
        if type_ == DNS_MX then
            t[k + 1] = setmetatable({ pref = rec_pref[0], host = text }, RECORD_MT)
        else
            t[k + 1] = text
        end
    end
    expiry[t] = hit.expires_ms
    setmetatable(t, ANSWER_MT)
    dns_slots[i + 1], dns_slots[i + 2] = serial, t
    return t
end

local function make_dns(type_)
    return function(lookup)
        return function(name)
            if type(name) == "string" and dns_hit(type_, name, #name, hit) == 1 then
                if hit.status ~= 0 then return negative(dns_tokens, hit.status, dns_token) end
                local t = dns_answer(type_)
                if t ~= nil then return t end
            end
            return lookup(name)
        end
    end
end
make["dns.a"] = make_dns(1)
make["dns.aaaa"] = make_dns(28)
make["dns.mx"] = make_dns(DNS_MX)
make["dns.txt"] = make_dns(16)
-- dns.ptr: the reverse name of each address asked about is kept (false:
-- not an address, which the classic function answers), bounded, so an
-- address seen again costs a table read; the lookup is then dns's.
local REVERSE_MAX, REVERSE_CAP = 10000, 128
make["dns.ptr"] = function(ptr)
    local reverse, nreverse = {}, 0
    local dns_reverse = api.dns_reverse
    local buf = ffi.new("char[?]", REVERSE_CAP)
    return function(ip)
        if type(ip) ~= "string" then return ptr(ip) end
        local rev = reverse[ip]
        if rev == nil then
            local n = dns_reverse(ip, buf, REVERSE_CAP)
            rev = n >= 0 and ffi_string(buf, n)
            if nreverse >= REVERSE_MAX then reverse, nreverse = {}, 0 end
            reverse[ip], nreverse = rev, nreverse + 1
        end
        if rev and dns_hit(12, rev, #rev, hit) == 1 then
            if hit.status ~= 0 then return negative(dns_tokens, hit.status, dns_token) end
            local t = dns_answer(12)
            if t ~= nil then return t end
        end
        return ptr(ip)
    end
end

-- ldap.search: the plain shapes of its argument are read here (strings
-- where strings go, at most 9 args and 64 attrs, scope one of the three,
-- a timeout in range, no `cache = false`); any other goes to the classic
-- function, which converts (a number as an arg) or raises as it always
-- did.  The strings stay alive in the caller's query table for the call.
local LDAP_FILTER_ARGS, LDAP_MAX_ATTRS = 9, 64
local SCOPES = { sub = 2, one = 1, base = 0 } -- OP_LDAP_SCOPE_*
local rawget = rawget
make["ldap.search"] = function(search, helpers)
    local ldap_hit, ldap_token = api.ldap, api.ldap_token
    local decoded, hit_list = helpers.decoded, helpers.hit_list
    local q = ffi.new("op_ffi_ldap_query_t")
    local argv = ffi.new("const char *[?]", LDAP_FILTER_ARGS)
    local arglen = ffi.new("size_t[?]", LDAP_FILTER_ARGS)
    local attrv = ffi.new("const char *[?]", LDAP_MAX_ATTRS)
    q.args, q.arg_lens, q.attrs = argv, arglen, attrv
    local lhit = ffi.new("op_ffi_hit_t")
    -- 1 when query is a plain shape, now in q
    local function read(query)
        local base, filter = query.base, query.filter
        if type(base) ~= "string" or type(filter) ~= "string" then return 0 end
        local scope = query.scope
        if scope == nil then scope = 2 else scope = SCOPES[scope] end
        if scope == nil then return 0 end
        local args, attrs, timeout = query.args, query.attrs, query.timeout
        local nargs = 0
        if args ~= nil then
            if type(args) ~= "table" then return 0 end
            nargs = #args
            if nargs > LDAP_FILTER_ARGS then return 0 end
            for i = 1, nargs do
                local a = rawget(args, i)
                if type(a) ~= "string" then return 0 end
                argv[i - 1], arglen[i - 1] = a, #a
            end
        end
        local nattrs = -1
        if attrs ~= nil then
            if type(attrs) ~= "table" then return 0 end
            nattrs = #attrs
            if nattrs > LDAP_MAX_ATTRS then return 0 end
            for i = 1, nattrs do
                local a = rawget(attrs, i)
                if type(a) ~= "string" then return 0 end
                attrv[i - 1] = a
            end
        end
        if timeout == nil then
            timeout = 0
        elseif type(timeout) ~= "number" or not (timeout > 0 and timeout <= 90) then
            return 0
        end
        if query.cache == false then return 0 end
        q.base, q.scope, q.filter, q.nargs, q.nattrs, q.timeout = base, scope, filter, nargs, nattrs,
            timeout
        return 1
    end
    return function(query)
        if type(query) == "table" and read(query) == 1 and ldap_hit(q, lhit) == 1 then
            local status = lhit.status
            if status ~= 0 then return negative(ldap_tokens, status, ldap_token) end
            local serial = lhit.serial
            local i = serial % SLOTS * 2
            if decoded[i + 1] == serial then return decoded[i + 2] end
            local list = hit_list(serial) -- decoded once per answer and state (C)
            if list ~= nil then return list end
        end
        return search(query)
    end
end

-- Coroutines of the code's own (the test host's specs; the sandbox gives
-- policies no coroutine library): while one runs, no fast path above
-- answers (op_request_foreign), so a lookup in it goes to the classic
-- function, which refuses to wait there, as it always did.
if active then
    local foreign = api.foreign
    local co_create, co_resume = coroutine.create, coroutine.resume
    local function left(...)
        foreign(-1)
        return ...
    end
    coroutine.resume = function(co, ...)
        if type(co) ~= "thread" then return co_resume(co, ...) end
        foreign(1)
        return left(co_resume(co, ...))
    end
    local resume = coroutine.resume
    local function unwrap(ok, ...)
        if ok then return ... end
        local e = ...
        error(e, type(e) == "string" and 2 or 0)
    end
    coroutine.wrap = function(f)
        local co = co_create(f)
        return function(...) return unwrap(resume(co, ...)) end
    end
end

-- api: for specs, which call the C side directly (the registry is out of
-- a policy's reach).
return { active = active, make = make, classic = {}, fast = {}, api = api, shared = shared }
