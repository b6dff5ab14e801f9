-- outpost.pipeline, driven directly (the modes from a configuration are
-- proven end to end in spec/e2e/test_pipeline.sh).
local P = require "outpost.pipeline"
local A = require "outpost.action"

local function req(attrs) return { attrs = attrs, service = "test", tenant = "" } end

describe("outpost.pipeline", function()
    local ran
    local policy = P.service "test" {
        P.check("T1", "needs TLS", function(tx)
            ran[#ran + 1] = "T1"
            if not tx.tls then return A.reject("5.7.1", "use TLS") end
        end),
        P.check("T2", "needs a user", function(tx)
            ran[#ran + 1] = "T2"
            if not tx.sasl_user then return A.reject("5.7.0", "authenticate first") end
        end),
    }

    before_each(function() ran = {} end)

    it("answers with the first check that answers, naming it", function()
        local a = policy.on_request(req { encryption_protocol = "" })
        assert.equal("REJECT 5.7.1 use TLS", a.text)
        assert.equal("T1", a.check)
        assert.same({ "T1" }, ran)
    end)

    it("runs the checks in order and answers DUNNO when all pass", function()
        local a = policy.on_request(req { encryption_protocol = "TLSv1.3", sasl_username = "alice" })
        assert.equal("DUNNO", a.text)
        assert.same({ "T1", "T2" }, ran)
    end)

    it("derives what checks read from the attributes", function()
        local a = policy.on_request(req { encryption_protocol = "TLSv1.3", sasl_username = "" })
        assert.equal("T2", a.check)
    end)

    it("counts hits per check", function()
        policy.on_request(req { encryption_protocol = "" })
        assert.is_true(policy.stats.T1.hits >= 1)
        assert.is_true(policy.stats.T1.enforced >= 1)
    end)

    it("runs under other modes for specs: log-only goes on, off skips", function()
        local logged = policy.with_modes({ T1 = "log-only" })
        local a = logged.on_request(req { encryption_protocol = "", sasl_username = "alice" })
        assert.equal("DUNNO", a.text)
        assert.same({ "T1", "T2" }, ran)
        ran = {}
        a = policy.with_modes({ T1 = "off" }).on_request(req { encryption_protocol = "" })
        assert.equal("T2", a.check)
        assert.same({ "T2" }, ran)
        assert.has_error(function() policy.with_modes({ T9 = "off" }) end)
    end)

    it("refuses a check that returns something else", function()
        local bad = P.service "bad" { P.check("B1", "returns a string", function() return "REJECT" end) }
        assert.has_error(function() bad.on_request(req {}) end,
            "B1: a check returns nil or an outpost.action, not a string")
    end)

    it("refuses ill-formed checks when the policy loads", function()
        assert.has_error(function() P.check("po1", "x", function() end) end)
        assert.has_error(function() P.check("PO1", "", function() end) end)
        assert.has_error(function()
            P.service "dup" { P.check("D1", "a", function() end), P.check("D1", "b", function() end) }
        end)
    end)
end)
