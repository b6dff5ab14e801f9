-- bench/bench_dns.sh: one DNS lookup per request, always the same name, so
-- every lookup after the first is a cache hit.
local A = require "outpost.action"
local dns = require "outpost.dns"
return function()
    local mx, err = dns.mx("withmx.test")
    if not mx then return A.defer("4.4.3", "dns: %s", err) end
    return A.dunno()
end
