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

    it("derives each field at its first read; a tx takes them without growing", function()
        local seen
        local probe = P.service "probe" {
            P.check("P1", "looks at its tx", function(tx)
                seen = { raw = rawget(tx, "sender"), keys = {} }
                for k in pairs(tx) do seen.keys[#seen.keys + 1] = k end
                table.sort(seen.keys)
                -- what the usual checks derive: the tx's hash part has
                -- their places from the start (pipeline.lua's request_tx)
                collectgarbage("stop")
                local before = collectgarbage("count")
                local v1, v2, v3, v4, v5, v6, v7 = tx.stage, tx.sasl_user, tx.sender,
                    tx.recipient, tx.client, tx.instance, tx.tls
                seen.grew = (collectgarbage("count") - before) * 1024
                collectgarbage("restart")
                seen.values = { v1, v2, v3, v4, v5, v6, v7 }
            end),
        }
        local attrs = { sender = "s@x", recipient = "r@y", sasl_username = "u",
            client_address = "192.0.2.1", instance = "i1", protocol_state = "RCPT",
            encryption_protocol = "TLSv1.3" }
        -- Several requests, the least any of them allocated: a request now
        -- and then allocates a few hundred bytes inside these reads that
        -- are not the tx's (472 at a first tx.client; 400 once on a second
        -- request in a full run; 208 at tx.recipient with the JIT off:
        -- LuaJIT's own, not traced further), never on every request.
        -- Each request has a tx of its own, so a tx that grows shows on
        -- every one (288 bytes).
        local a, least
        for _ = 1, 5 do
            a = probe.on_request(req(attrs))
            least = math.min(least or math.huge, seen.grew)
        end
        assert.equal("DUNNO", a.text)
        assert.is_nil(seen.raw)
        assert.same({ "attrs", "req", "service", "tenant" }, seen.keys)
        assert.same({ "RCPT", "u", "s@x", "r@y", "192.0.2.1", "i1", true }, seen.values)
        assert.equal(0, least) -- bytes allocated while deriving
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

    describe("end-of-message checks (milter)", function()
        local seen
        local mixed = P.service "mixed" {
            P.check("R1", "a request check", function() seen[#seen + 1] = "R1" end),
            P.eom_check("E1", "needs a Subject", function(tx)
                seen[#seen + 1] = "E1"
                for _, h in ipairs(tx.headers) do
                    if h.name:lower() == "subject" then return nil end
                end
                return A.reject("5.6.0", "no Subject from %s as %s", tx.sasl_user or "-", tx.sender)
            end),
        }
        local function ctx(headers)
            return { headers = headers, body = "", macros = { ["{auth_authen}"] = "alice", i = "Q1" },
                sender = "alice@example.org", client = { address = "192.0.2.7" }, service = "mixed", tenant = "" }
        end
        before_each(function() seen = {} end)

        it("a service gets on_eom for its eom checks, on_request runs only the others", function()
            assert.equal("DUNNO", mixed.on_request(req {}).text)
            assert.same({ "R1" }, seen)
            seen = {}
            local a = mixed.on_eom(ctx({ { name = "From", value = "a@b.c" } }))
            assert.equal("REJECT 5.6.0 no Subject from alice as alice@example.org", a.text)
            assert.equal("E1", a.check)
            assert.same({ "E1" }, seen)
            assert.equal("DUNNO", mixed.on_eom(ctx({ { name = "subject", value = "x" } })).text)
        end)

        it("the milter ctx gives the derived names", function()
            local got
            local p = P.service "derive" { P.eom_check("E2", "reads", function(tx)
                got = { tx.sasl_user, tx.sender, tx.client, tx.instance, tx.tls, tx.body, tx.macros.i }
            end) }
            p.on_eom(ctx({}))
            assert.same({ "alice", "alice@example.org", "192.0.2.7", "Q1", false, "", "Q1" }, got)
        end)

        it("modes apply as for request checks; only eom checks: no on_request", function()
            local only = P.service "only" { P.eom_check("E3", "always", function() return A.reject("5.7.1", "no") end) }
            assert.is_nil(only.on_request)
            assert.equal("REJECT 5.7.1 no", only.on_eom(ctx({})).text)
            assert.equal("DUNNO", only.with_modes({ E3 = "log-only" }).on_eom(ctx({})).text)
            assert.is_nil(only.with_modes({ E3 = "off" }).on_request)
            assert.is_function(P.service "none" {}.on_request)
        end)
    end)
    describe("stages, counts, derive and count", function()
        local limit = require "outpost.limit"
        local n = 0
        local function unique(prefix)
            n = n + 1
            return string.format("%s-%d-%d@example.org", prefix, os.time(), n)
        end
        local function at(stage, more)
            local attrs = { protocol_state = stage, encryption_protocol = "TLSv1.3" }
            for k, v in pairs(more or {}) do attrs[k] = v end
            return req(attrs)
        end

        it("a check runs only at its stages; no protocol_state is RCPT; 'not' is every other", function()
            local staged = P.service "staged" {
                P.check("S1", "mail and rcpt", { stages = "MAIL RCPT" }, function() ran[#ran + 1] = "S1" end),
                P.check("S2", "rcpt", { stages = "RCPT" }, function() ran[#ran + 1] = "S2" end),
                P.check("S3", "before data", { stages = "not DATA END-OF-MESSAGE" },
                    function() ran[#ran + 1] = "S3" end),
                P.check("S4", "always", function() ran[#ran + 1] = "S4" end),
            }
            local function stages_run(stage)
                ran = {}
                staged.on_request(at(stage))
                return table.concat(ran, " ")
            end
            assert.equal("S1 S2 S3 S4", stages_run("RCPT"))
            assert.equal("S1 S2 S3 S4", stages_run(nil))
            assert.equal("S1 S3 S4", stages_run("MAIL"))
            assert.equal("S3 S4", stages_run("CONNECT"))
            assert.equal("S4", stages_run("DATA"))
            assert.equal("S4", stages_run("END-OF-MESSAGE"))
            assert.equal("S3 S4", stages_run("BDAT")) -- unknown: "not DATA ..." includes it
        end)

        it("per_recipient: only a request that names a recipient", function()
            local p = P.service "per-rcpt" {
                P.check("R2", "each recipient", { stages = "not DATA END-OF-MESSAGE", per_recipient = true },
                    function() ran[#ran + 1] = "R2" end),
            }
            ran = {}
            p.on_request(at("RCPT", { recipient = "bob@example.org" }))
            p.on_request(at("RCPT", { recipient = "" }))
            p.on_request(at("MAIL"))
            p.on_request(at("DATA", { recipient = "bob@example.org" }))
            assert.same({ "R2" }, ran)
        end)

        it("refuses stages that name no protocol_state, and unknown options", function()
            assert.has_error(function() P.check("S5", "typo", { stages = "RCTP" }, function() end) end)
            assert.has_error(function() P.check("S5", "empty", { stages = "not" }, function() end) end)
            assert.has_error(function() P.check("S5", "option", { stage = "RCPT" }, function() end) end)
        end)

        it("derive: once per request, false kept, a failure (nil) asked again", function()
            local calls = 0
            local answers = {}
            local value = P.derive(function()
                calls = calls + 1
                return table.remove(answers, 1)
            end)
            local got = {}
            local p = P.service "derived" {
                P.check("D1", "reads", function(tx) got[#got + 1] = { value(tx) } end),
                P.check("D2", "reads again", function(tx) got[#got + 1] = { value(tx) } end),
            }
            answers = { "x" }
            p.on_request(at("RCPT"))
            assert.same({ { "x" }, { "x" } }, got)
            assert.equal(1, calls)
            got, answers = {}, { false }
            p.on_request(at("RCPT")) -- a new request asks again
            assert.same({ { false }, { false } }, got)
            assert.equal(2, calls)
            got, answers, calls = {}, {}, 0
            local failing = P.derive(function() calls = calls + 1 return nil, "timeout" end)
            P.service "failing" {
                P.check("D3", "a", function(tx) got[#got + 1] = { failing(tx) } end),
                P.check("D4", "b", function(tx) got[#got + 1] = { failing(tx) } end),
            }.on_request(at("RCPT"))
            assert.same({ { nil, "timeout" }, { nil, "timeout" } }, got)
            assert.equal(2, calls)
        end)

        it("count reserves for the transaction at RCPT; counts = true settles at DATA", function()
            local s, inst = unique("count"), "pipeline-count-" .. os.time()
            local counting = P.service "counting" {
                P.check("C1", "counts each recipient", { stages = "RCPT", counts = true }, function(tx)
                    local r = P.count(tx, "spec_rcpt", s)
                    if not r.ok then return A.defer("4.7.1", "over") end
                end),
            }
            for _ = 1, 3 do
                assert.equal("DUNNO", counting.on_request(at("RCPT", { instance = inst })).text)
            end
            assert.equal(3, limit.check("spec_rcpt", s).used)
            -- Postfix accepted 2 of them: DATA keeps 2, END-OF-MESSAGE finds nothing left
            assert.equal("DUNNO", counting.on_request(at("DATA", { instance = inst, recipient_count = "2" })).text)
            assert.equal(2, limit.check("spec_rcpt", s).used)
            counting.on_request(at("END-OF-MESSAGE", { instance = inst, recipient_count = "2" }))
            assert.equal(2, limit.check("spec_rcpt", s).used)
            assert.equal(0, limit.release(inst))
            -- without an instance: added for good
            counting.on_request(at("RCPT"))
            assert.equal(3, limit.check("spec_rcpt", s).used)
        end)

        it("a counting check that is off neither counts nor settles", function()
            local s, inst = unique("off"), "pipeline-off-" .. os.time()
            local counting = P.service "counting-off" {
                P.check("C2", "counts", { stages = "RCPT", counts = true }, function(tx)
                    P.count(tx, "spec_rcpt", s)
                end),
            }
            counting.on_request(at("RCPT", { instance = inst }))
            local off = counting.with_modes({ C2 = "off" })
            off.on_request(at("RCPT", { instance = inst }))
            assert.equal(1, limit.check("spec_rcpt", s).used)
            off.on_request(at("DATA", { instance = inst, recipient_count = "0" }))
            assert.equal(1, limit.check("spec_rcpt", s).used) -- still reserved, not settled
            assert.equal(1, limit.release(inst))
        end)
    end)
end)
