-- outpost.dns against the harness's unbound (spec/harness/dns/zones.conf),
-- configured in the dns section of build/harness/outpost.conf (timeout
-- 500ms, one try).  Lookups yield the coroutine busted runs in.
local dns = require "outpost.dns"
local sandbox = require "outpost.sandbox"

local function hosts(mx)
    local out = {}
    for i, r in ipairs(mx) do out[i] = r.pref .. " " .. r.host end
    return out
end

describe("outpost.dns lookups", function()
    it("mx: sorted by preference, with the TTL", function()
        local mx = assert(dns.mx("withmx.test"))
        assert.same({ "10 mx1.withmx.test", "20 mx2.withmx.test" }, hosts(mx))
        assert.is_true(mx.ttl > 0 and mx.ttl <= 300)
    end)

    it("a, aaaa, txt, ptr", function()
        assert.same({ "127.0.0.3" }, { unpack(assert(dns.a("aonly.test"))) })
        assert.same({ "2001:db8::3" }, { unpack(assert(dns.aaaa("aaaaonly.test"))) })
        assert.same({ "v=spf1 ip4:127.0.0.0/24 -all" }, { unpack(assert(dns.txt("example.org"))) })
        assert.same({ "good.example.org" }, { unpack(assert(dns.ptr("127.0.0.10"))) })
        assert.same({ "good6.example.org" }, { unpack(assert(dns.ptr("2001:DB8::10"))) })
    end)

    it("normalises names: case, trailing dot, IDN", function()
        local r = assert(dns.a("AONLY.Test."))
        assert.equal("127.0.0.3", r[1])
        local v, err = dns.a("b\195\188cher.test") -- xn--bcher-kva.test: not in the zone
        assert.is_nil(v)
        assert.equal("nxdomain", err)
    end)

    it("follows a CNAME chain to its end", function()
        local r = assert(dns.a("chain1.test"))
        assert.equal("127.0.0.20", r[1])
        assert.is_true(r.ttl <= 200)
    end)

    it("answers every failure token", function()
        local cases = {
            { dns.a, "nxdomain.test", "nxdomain" },
            { dns.mx, "aonly.test", "nodata" },
            { dns.a, "q.servfail.test", "servfail" },
            { dns.a, "q.refused.test", "refused" },
            { dns.a, "q.timeout.test", "timeout" },
            { dns.a, "exa mple.test", "badname" },
            { dns.ptr, "not-an-ip", "badname" },
        }
        for _, c in ipairs(cases) do
            local v, err = c[1](c[2])
            assert.is_nil(v, c[2])
            assert.equal(c[3], err, c[2])
        end
    end)

    it("refuses misuse with an error", function()
        assert.has_error(function() dns.a(nil) end)
        assert.has_error(function() dns.mx({}) end)
        local ok, err = pcall(table.sort, { "b", "a" }, function(x, y)
            dns.a("aonly.test")
            return x < y
        end)
        assert.is_false(ok)
        assert.matches("cannot wait here", err)
    end)

    it("answers a second lookup from the cache, with less TTL left", function()
        local first = assert(dns.txt("txtonly.test"))
        local second = assert(dns.txt("txtonly.test"))
        assert.equal("hello", second[1])
        assert.is_true(second.ttl <= first.ttl)
    end)
end)

describe("outpost.dns.mail_domain (PO5, MO4)", function()
    it("MX hosts by preference", function()
        local r = assert(dns.mail_domain("withmx.test"))
        assert.equal("mx", r.kind)
        assert.same({ "mx1.withmx.test", "mx2.withmx.test" }, r.hosts)
    end)
    it("the domain itself when it has only an A or AAAA", function()
        local r = assert(dns.mail_domain("AOnly.test"))
        assert.equal("implicit", r.kind)
        assert.same({ "aonly.test" }, r.hosts)
        assert.equal("implicit", assert(dns.mail_domain("aaaaonly.test")).kind)
    end)
    it("nullmx, nxdomain, nodata, timeout", function()
        assert.same({ nil, "nullmx" }, { dns.mail_domain("nullmx.test") })
        assert.same({ nil, "nxdomain" }, { dns.mail_domain("nxdomain.test") })
        assert.same({ nil, "nodata" }, { dns.mail_domain("txtonly.test") })
        assert.same({ nil, "timeout" }, { dns.mail_domain("md.timeout.test") })
    end)
end)

describe("outpost.dns.fcrdns (MO7)", function()
    it("confirms when a PTR name's address is the IP", function()
        assert.equal("good.example.org", (dns.fcrdns("127.0.0.10")))
        assert.equal("good6.example.org", (dns.fcrdns("2001:db8:0::10")))
    end)
    it("checks every PTR name, not only the first", function()
        assert.equal("multi2.example.org", (dns.fcrdns("127.0.0.15")))
    end)
    it("nomatch, nxdomain, timeout, badname", function()
        assert.same({ nil, "nomatch" }, { dns.fcrdns("127.0.0.11") })  -- A is 127.0.0.99
        assert.same({ nil, "nomatch" }, { dns.fcrdns("127.0.0.13") })  -- PTR name is NXDOMAIN
        assert.same({ nil, "nxdomain" }, { dns.fcrdns("127.0.0.12") }) -- no PTR
        assert.same({ nil, "timeout" }, { dns.fcrdns("127.0.0.14") })
        assert.same({ nil, "badname" }, { dns.fcrdns("300.1.1.1") })
    end)
end)

describe("a PO5 policy", function()
    local on_request = sandbox.load_policy("spec/lua/fixtures/po5_policy.lua").on_request
    local function ask(rcpt) return on_request({ attrs = { recipient = rcpt } }).text end

    it("goes on when the domain can receive mail", function()
        assert.equal("DUNNO", ask("bob@withmx.test"))
        assert.equal("DUNNO", ask("bob@aonly.test"))
    end)
    it("rejects with 5xx for NXDOMAIN and null MX", function()
        assert.matches("^REJECT 5%.1%.2 ", ask("bob@nxdomain.test"))
        assert.matches("^REJECT 5%.1%.10 .*null MX", ask("bob@nullmx.test"))
    end)
    it("defers with 4xx when DNS times out", function()
        assert.matches("^DEFER 4%.4%.3 .*timeout", ask("bob@po5.timeout.test"))
    end)
end)
