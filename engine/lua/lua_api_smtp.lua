-- outpost.smtp.verify, on the C helpers of lua_api_smtp.c and outpost.dns.
-- Run once per generation with the module table and the helpers.
local M, C = ...
local dns = require "outpost.dns"
local outpost = require "outpost"

local PERMANENT = { nxdomain = true, nodata = true, nullmx = true, badname = true }

local function is_ip(s)
    return s:match("^%d+%.%d+%.%d+%.%d+$") or s:find(":", 1, true)
end

-- verify(address, opts) -> verdict, reply
--   "accepted", reply      RCPT TO was answered 2xx
--   "rejected", reply      RCPT TO was answered 5xx (reply is the server's text),
--                          or the domain has no mail server ("domain: nxdomain", ...)
--   "tempfail", why        4xx, timeout, no connection, DNS failure
--   "pending"              opts.budget passed first; the check goes on and
--                          fills the cache, so the MTA's retry finds it
--   nil, "badaddress"      address cannot be a mailbox
-- opts: host (ask this host, not the MX), port, budget (seconds).
function M.verify(address, opts)
    if type(address) ~= "string" then error("smtp.verify: address must be a string", 2) end
    if opts ~= nil and type(opts) ~= "table" then error("smtp.verify: opts must be a table", 2) end
    opts = opts or {}
    local budget, port, host = opts.budget, opts.port, opts.host
    if budget ~= nil and (type(budget) ~= "number" or budget < 0 or budget > 3600) then
        error("smtp.verify: opts.budget must be seconds between 0 and 3600", 2)
    end
    if port ~= nil and (type(port) ~= "number" or port < 1 or port > 65535 or port % 1 ~= 0) then
        error("smtp.verify: opts.port must be a port number", 2)
    end
    if host ~= nil and type(host) ~= "string" then error("smtp.verify: opts.host must be a string", 2) end
    if not C.valid(address) then return nil, "badaddress" end

    local verdict, reply = C.cached(address)
    if verdict then return verdict, reply end
    local t0 = outpost.now()
    local default_host, default_port = C.defaults()
    host, port = host or default_host, port or default_port
    local candidates
    if host then
        candidates = { host }
    else
        local where, err = dns.mail_domain(address:match("@([^@]+)$"))
        if not where then
            if PERMANENT[err] then return "rejected", "domain: " .. err end
            return "tempfail", "dns: " .. err
        end
        candidates = where.hosts
    end
    local ip, last_err
    for _, h in ipairs(candidates) do
        if is_ip(h) then ip = h break end
        local a, err = dns.a(h)
        if a then ip = a[1] break end
        local aaaa = dns.aaaa(h)
        if aaaa then ip = aaaa[1] break end
        last_err = err
    end
    if not ip then return "tempfail", "dns: " .. tostring(last_err) end
    local left = budget and math.max(0, budget - (outpost.now() - t0)) or nil
    return C.verify_at(address, ip, port, left)
end
