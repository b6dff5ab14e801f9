-- bench/bench_dns.sh: one DNS lookup per request of a name never asked
-- before (the request id makes it unique), so every lookup is a query to
-- the harness's unbound (bench.test answers A for every name).
local A = require "outpost.action"
local dns = require "outpost.dns"
local outpost = require "outpost"
return function()
    local a, err = dns.a(string.format("r%d.bench.test", outpost.request_id()))
    if not a then return A.defer("4.4.3", "dns: %s", err) end
    return A.dunno()
end
