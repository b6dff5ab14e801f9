-- outpost.smtp.verify against the harness's Postfix (spec/harness/svc_smtp.sh):
-- verify.test's MX is 127.0.0.1; alice@ and bob@ exist, slow@ is accepted
-- after 2 s, busy@ gets 450, anyone else 550.  Config: step_timeout 4s.
local smtp = require "outpost.smtp"
local outpost = require "outpost"

describe("outpost.smtp.verify", function()
    it("accepts an address the MX accepts", function()
        local v, reply = smtp.verify("alice@verify.test")
        assert.equal("accepted", v)
        assert.matches("^250 ", reply)
    end)

    it("rejects on 5xx, with the server's reply", function()
        local v, reply = smtp.verify("nobody@verify.test")
        assert.equal("rejected", v)
        assert.matches("^550 5%.1%.1 <nobody@verify%.test>: .*User unknown", reply)
    end)

    it("tempfail on 4xx", function()
        local v, reply = smtp.verify("busy@verify.test")
        assert.equal("tempfail", v)
        assert.matches("^450 4%.2%.1 ", reply)
    end)

    it("answers from the cache the second time, whatever the spelling", function()
        smtp.verify("bob@verify.test")
        local t0 = outpost.now()
        local v = smtp.verify("BOB@Verify.Test")
        assert.equal("accepted", v)
        assert.is_true(outpost.now() - t0 < 0.01)
    end)

    it("rejects a domain without a mail server, without connecting", function()
        assert.same({ "rejected", "domain: nxdomain" }, { smtp.verify("x@nxdomain.test") })
        assert.same({ "rejected", "domain: nullmx" }, { smtp.verify("x@nullmx.test") })
    end)

    it("tempfail when the MX has no address or DNS fails", function()
        assert.same({ "tempfail", "dns: nxdomain" }, { smtp.verify("x@nomx.verify.test") })
        assert.same({ "tempfail", "dns: timeout" }, { smtp.verify("x@v.timeout.test") })
    end)

    it("asks opts.host on opts.port instead of the MX", function()
        -- nothing listens on port 1: connection refused
        local v, why = smtp.verify("carol@elsewhere.test", { host = "127.0.0.1", port = 1 })
        assert.equal("tempfail", v)
        assert.matches("connect: ECONNREFUSED", why)
        v, why = smtp.verify("dave@elsewhere.test", { host = "999.1.1.1" })
        assert.equal("tempfail", v)
        assert.matches("^cannot ask 999%.1%.1%.1 port %d+", why)
    end)

    it("returns pending past the budget, and the check fills the cache", function()
        local t0 = outpost.now()
        assert.equal("pending", (smtp.verify("slow@verify.test", { budget = 0.3 })))
        local waited = outpost.now() - t0
        assert.is_true(waited >= 0.29 and waited < 1, "waited " .. waited)
        outpost.sleep(2.2) -- Postfix answers slow@ after 2 s
        t0 = outpost.now()
        local v, reply = smtp.verify("slow@verify.test", { budget = 0.3 })
        assert.equal("accepted", v)
        assert.matches("^250 ", reply)
        assert.is_true(outpost.now() - t0 < 0.05)
    end)

    it("waits for the verdict within a budget that suffices", function()
        assert.equal("accepted", (smtp.verify("postmaster@verify.test", { budget = 3 })))
    end)

    it("nil, badaddress for what cannot be a mailbox", function()
        assert.same({ nil, "badaddress" }, { smtp.verify("no at sign") })
        assert.same({ nil, "badaddress" }, { smtp.verify("a b@verify.test") })
        assert.same({ nil, "badaddress" }, { smtp.verify("x@exa mple.test") })
    end)

    it("raises on misuse", function()
        assert.has_error(function() smtp.verify(42) end)
        assert.has_error(function() smtp.verify("a@b.test", { budget = -1 }) end)
        assert.has_error(function() smtp.verify("a@b.test", { port = 0 }) end)
        assert.has_error(function() smtp.verify("a@b.test", "fast") end)
    end)
end)
