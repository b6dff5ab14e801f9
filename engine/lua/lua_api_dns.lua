-- The composite lookups of outpost.dns, built on its C primitives (which
-- yield, so these do too).  Run once per generation by luaopen_outpost_dns
-- with the module table and a helper that canonicalises an address.
local M, canonical_ip, ffi_state = ...
local normalize = require("outpost").domain

-- With the FFI fast paths on (lua_api_ffi.lua), a cached lookup answers
-- with the one read-only table of its cache entry.  mail_domain's answer
-- is then made once per such table too (no table per request): kept
-- beside it in weak-keyed tables, so it lives as long as its lookup's
-- table does, and read-only like it (its ttl, read from the entry's
-- expiry, is what the lookup's answer has left).  Answers of the classic
-- functions (a miss, `lua_jit = no`) are new tables: mail_domain makes a
-- new answer for them, as it always did.
local shared = ffi_state and ffi_state.active and ffi_state.shared
local SHARED = shared and shared.ANSWER_MT.__metatable
local by_mx = setmetatable({}, { __mode = "k" })   -- mx answer -> mail_domain's, or false (nullmx)
local by_addr = setmetatable({}, { __mode = "k" }) -- a (or aaaa) answer -> { mail_domain's, the aaaa answer or false }
local function is_shared(t) return t == nil or getmetatable(t) == SHARED end
local function read_only(t) return setmetatable(t, shared.RECORD_MT) end

local function min_ttl(a, b)
    if a == nil then return b end
    if b == nil then return a end
    return a < b and a or b
end

-- Tokens that say the answer may be different later: a policy answers 4xx.
local TEMPORARY = { servfail = true, timeout = true, refused = true, formerr = true, cancelled = true }

-- Where mail for domain goes (RFC 5321 §5.1, RFC 7505):
--   {kind = "mx", hosts = {names by preference}, ttl = N}
--   {kind = "implicit", hosts = {domain}, ttl = N}   no MX, but an A or AAAA
--   nil, "nullmx"     the domain says it accepts no mail (MX 0 .)
--   nil, "nxdomain"   the domain does not exist
--   nil, "nodata"     neither MX nor A nor AAAA
--   nil, token        a lookup failed (servfail, timeout, refused, formerr, badname)
function M.mail_domain(domain)
    local mx, err = M.mx(domain)
    if mx then
        local one = shared and is_shared(mx)
        if one then
            local d = by_mx[mx]
            if d then return d end
            if d == false then return nil, "nullmx" end
        end
        local hosts = {}
        for i = 1, #mx do
            local host = mx[i].host
            if host ~= "." then hosts[#hosts + 1] = host end
        end
        if #hosts == 0 then
            if one then by_mx[mx] = false end
            return nil, "nullmx"
        end
        if not one then return { kind = "mx", hosts = hosts, ttl = mx.ttl } end
        local d = shared.dns_answer({ kind = "mx", hosts = read_only(hosts) }, shared.expiry(mx))
        by_mx[mx] = d
        return d
    end
    if err ~= "nodata" then return nil, err end
    local a, aerr = M.a(domain)
    local aaaa, aaaaerr = M.aaaa(domain)
    if a or aaaa then
        if not (shared and is_shared(a) and is_shared(aaaa)) then
            return { kind = "implicit", hosts = { normalize(domain) or domain }, ttl = min_ttl(a and a.ttl, aaaa and aaaa.ttl) }
        end
        local key, other = a or aaaa, a and aaaa or false
        local kept = by_addr[key]
        if kept and kept[2] == other then return kept[1] end
        local ea, eb = shared.expiry(key), other and shared.expiry(other)
        local d = shared.dns_answer({ kind = "implicit", hosts = read_only({ normalize(domain) or domain }) },
            eb and eb < ea and eb or ea)
        by_addr[key] = { d, other }
        return d
    end
    if TEMPORARY[aerr] then return nil, aerr end
    if TEMPORARY[aaaaerr] then return nil, aaaaerr end
    if aerr == "nxdomain" or aaaaerr == "nxdomain" then return nil, "nxdomain" end
    return nil, "nodata"
end

-- Forward-confirmed reverse DNS: the first PTR name of ip (in order) whose
-- A (for IPv4) or AAAA (for IPv6) records contain ip, and the smaller TTL
-- of the two lookups; or nil, "nomatch" when no PTR name confirms; or nil,
-- token when the PTR lookup failed (nxdomain: no PTR at all), or when a
-- forward lookup failed temporarily and none confirmed (so a policy defers
-- instead of rejecting on a DNS hiccup).
-- The canonical text of each address fcrdns was asked about (false: not
-- an address), so a client seen again costs a table read, not a C call
-- that stops the trace (canonical_ip is a classic function).  Emptied when
-- it grows past CANON_MAX.
local CANON_MAX = 10000
local canon, ncanon = {}, 0
function M.fcrdns(ip)
    local want = canon[ip]
    if want == nil then
        want = canonical_ip(ip) or false
        if type(ip) == "string" then
            if ncanon >= CANON_MAX then canon, ncanon = {}, 0 end
            canon[ip], ncanon = want, ncanon + 1
        end
    end
    if not want then return nil, "badname" end
    local ptr, err = M.ptr(ip)
    if not ptr then return nil, err end
    local forward = want:find(":", 1, true) and M.aaaa or M.a
    local temp
    for _, name in ipairs(ptr) do
        local addrs, ferr = forward(name)
        if addrs then
            for _, addr in ipairs(addrs) do
                if addr == want then return name, min_ttl(ptr.ttl, addrs.ttl) end
            end
        elseif TEMPORARY[ferr] then
            temp = temp or ferr
        end
    end
    if temp then return nil, temp end
    return nil, "nomatch"
end
