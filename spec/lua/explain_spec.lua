-- Dry runs (outpostctl explain; docs/operations.md, "Explain"): the trace
-- pipeline.lua records per check, and what outpost.limit and
-- outpost.txnlink do when the request is explained: counting peeks, nothing
-- is written.  spec/run-all.sh runs this file on RocksDB and again on the
-- harness's Redis (outpost-redis.conf).  The limit is spec_rcpt: 5 per hour.
local P = require "outpost.pipeline"
local A = require "outpost.action"
local explain = require "outpost.explain"
local limit = require "outpost.limit"
local txnlink = require "outpost.txnlink"
local outpost = require "outpost"

local run = string.format("%d-%d", os.time(), math.floor(outpost.now() * 1000) % 100000)
local n = 0
local function subject()
    n = n + 1
    return string.format("explain%d-%s@example.org", n, run)
end

-- fn() in a dry run; the trace rendered (text, or JSON when json)
local function dry(fn, json)
    explain.begin()
    local ok, err = pcall(fn)
    local trace = explain.finish(json)
    assert(ok, err)
    return trace
end

describe("a dry run of outpost.limit (" .. limit.backend() .. ")", function()
    it("add and reserve answer what they would, and add nothing", function()
        local s = subject()
        assert.is_true(limit.add("spec_rcpt", s, 3).ok)
        local a, r
        local trace = dry(function()
            a = assert(limit.add("spec_rcpt", s, 1))
            r = assert(limit.reserve("spec_rcpt", s, "explain." .. s, 2))
        end)
        -- as the write would have answered: 3 used + 1 fits, used after it 4
        assert.is_true(a.ok)
        assert.same({ 4, 1, 5 }, { a.used, a.remaining, a.max })
        assert.is_true(r.ok)
        assert.equal(5, r.used)
        assert.equal(3, limit.check("spec_rcpt", s).used) -- nothing was added
        assert.matches("limit add spec_rcpt " .. s:gsub("%p", "%%%0") .. " n=1 %[store", trace)
        assert.matches("would pass: 3 used of 5 %(default%) in a window of 3600s, this request " ..
            "would add 1 %(not added: dry run%)", trace)
        assert.matches("would pass: 3 used of 5 .* would add 2", trace)
    end)

    it("a full subject: the refusal and the count it saw", function()
        local s = subject()
        assert.is_true(limit.add("spec_rcpt", s, 5).ok)
        local a
        local trace = dry(function() a = assert(limit.reserve("spec_rcpt", s, "explain." .. s)) end)
        assert.is_false(a.ok)
        assert.equal(5, a.used)
        assert.is_number(a.next_free)
        assert.matches("would refuse: 5 used of 5", trace)
        assert.equal(5, limit.check("spec_rcpt", s).used)
    end)

    it("commit and release settle nothing; the reservations stay", function()
        local s, inst = subject(), "explain-inst." .. subject()
        assert.is_true(limit.reserve("spec_rcpt", s, inst, 2).ok)
        local c, rel, r2
        local trace = dry(function()
            c, rel = limit.commit(inst, 0)
            r2 = limit.release(inst)
        end)
        assert.same({ 0, 0, 0 }, { c, rel, r2 })
        assert.matches("limit commit instance=" .. inst:gsub("%p", "%%%0") .. " %[skipped", trace)
        assert.matches("nothing settled: dry run", trace)
        -- the real release still finds both
        assert.equal(2, limit.release(inst))
    end)

    it("outside a dry run, add adds again", function()
        local s = subject()
        dry(function() limit.add("spec_rcpt", s, 2) end)
        assert.equal(0, limit.check("spec_rcpt", s).used)
        assert.equal(2, limit.add("spec_rcpt", s, 2).used)
    end)
end)

describe("a dry run of outpost.txnlink", function()
    it("put, unlink and forget write nothing; get reads", function()
        local key = "i:explain." .. subject()
        local trace = dry(function()
            assert.is_true(txnlink.put({ key }, { a = "1" }))
            assert.is_nil(txnlink.get({ key }))
            txnlink.unlink(key)
        end)
        assert.is_nil(txnlink.get({ key }))
        assert.matches("txnlink put %[skipped", trace)
        assert.matches("txnlink unlink %[skipped", trace)
        assert.is_true(txnlink.put({ key }, { a = "2" }))
        dry(function() txnlink.forget(key) end)
        assert.equal("2", txnlink.get({ key }).a)
        txnlink.forget(key)
    end)
end)

describe("the pipeline's trace", function()
    local policy = P.service "test" {
        P.check("T1", "passes", function() end),
        P.check("T2", "would refuse, log-only", function() return A.reject("5.7.1", "T2 says no") end),
        P.check("T3", "only at MAIL", { stages = "MAIL" }, function() return A.reject("5.7.1", "never") end),
        P.check("T4", "counts", function(tx)
            local r = assert(limit.reserve("spec_rcpt", tx.attrs.sasl_username, "explain.pipe", 1))
            if not r.ok then return A.defer("4.5.3", "limit of %d reached", r.max) end
        end),
        P.check("T5", "answers", function() return A.reject("5.1.1", "T5 refuses") end),
        P.check("T6", "after the answer", function() return A.reject("5.0.0", "not reached") end),
        P.eom_check("E1", "the message", function() end),
    }
    local modes = { T2 = "log-only" }
    local function request(s, explained)
        return { attrs = { sasl_username = s, protocol_state = "RCPT", recipient = "x@example.net" },
            service = "test", tenant = "", explain = explained }
    end

    it("records every check in order: id, mode, verdict, the action, the steps", function()
        local s = subject()
        local a
        local trace = dry(function() a = policy.with_modes(modes).on_request(request(s, true)) end)
        assert.equal("REJECT 5.1.1 T5 refuses", a.text)
        local ids = {}
        for id in trace:gmatch("\n(%u%d) ") do ids[#ids + 1] = id end
        assert.same({ "T1", "T2", "T3", "T4", "T5", "T6", "E1" }, ids)
        assert.matches("\nT1 +enforce +pass ", trace)
        assert.matches("\nT2 +log%-only +log%-only .-\n +would answer REJECT 5.7.1 T2 says no", trace)
        assert.matches("\nT3 +enforce +skipped .-\n +not run at protocol_state RCPT", trace)
        assert.matches("\nT4 +enforce +pass .-\n +limit reserve spec_rcpt", trace)
        assert.matches("\nT5 +enforce +answer .-\n +REJECT 5.1.1 T5 refuses", trace)
        assert.matches("\nT6 +enforce +not%-reached", trace)
        assert.matches("\nE1 +enforce +skipped .-end%-of%-message check", trace)
        assert.equal(0, limit.check("spec_rcpt", s).used)
    end)

    it("as JSON: the checks with their steps", function()
        local s = subject()
        local trace = dry(function() policy.with_modes(modes).on_request(request(s, true)) end, true)
        assert.matches('"id":"T4","description":"counts","mode":"enforce","verdict":"pass"', trace, 1, true)
        assert.matches('"kind":"limit"', trace, 1, true)
        assert.matches('"would":"pass","used":0,"max":5', trace, 1, true)
    end)

    it("records nothing for a request that is not explained", function()
        local s = subject()
        local trace = dry(function() policy.with_modes(modes).on_request(request(s, nil)) end)
        assert.is_nil(trace:match("\nT1 "))
        -- the limit's own step is there: the dry run is the primitives' flag
        assert.matches("limit reserve spec_rcpt", trace)
    end)

    it("does not count in the policy's stats", function()
        local p = policy.with_modes(modes)
        local before = p.stats.T5.hits
        dry(function() p.on_request(request(subject(), true)) end)
        assert.equal(before, p.stats.T5.hits)
        p.on_request(request(subject(), nil))
        assert.equal(before + 1, p.stats.T5.hits)
        assert.equal(1, limit.release("explain.pipe"))
    end)

    it("is off outside a dry run", function()
        assert.is_false(explain.active())
        local s = subject()
        policy.with_modes(modes).on_request(request(s, true))
        assert.equal(1, limit.check("spec_rcpt", s).used)
        assert.equal(1, limit.release("explain.pipe"))
    end)
end)
