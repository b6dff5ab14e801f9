-- The composite lookups of outpost.dns, built on its C primitives (which
-- yield, so these do too).  Run once per generation by luaopen_outpost_dns
-- with the module table and a helper that canonicalises an address.
local M, canonical_ip = ...
local normalize = require("outpost").domain

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
        local hosts = {}
        for _, r in ipairs(mx) do
            if r.host ~= "." then hosts[#hosts + 1] = r.host end
        end
        if #hosts == 0 then return nil, "nullmx" end
        return { kind = "mx", hosts = hosts, ttl = mx.ttl }
    end
    if err ~= "nodata" then return nil, err end
    local a, aerr = M.a(domain)
    local aaaa, aaaaerr = M.aaaa(domain)
    if a or aaaa then
        return { kind = "implicit", hosts = { normalize(domain) or domain }, ttl = min_ttl(a and a.ttl, aaaa and aaaa.ttl) }
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
function M.fcrdns(ip)
    local want = canonical_ip(ip)
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
