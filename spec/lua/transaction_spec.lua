-- transaction: a policy request's record found by the milter of the same
-- transaction, over the real outpost.txnlink and outpost.limit (harness
-- config: limit spec_rcpt, 5 per hour).
local transaction = require "outpost.transaction"
local txnlink = require "outpost.txnlink"
local limit = require "outpost.limit"
local outpost = require "outpost"
local A = require "outpost.action"
local P = require "outpost.pipeline"

local run = string.format("%d%d", os.time(), math.floor(outpost.now() * 1000) % 100000)
local n = 0
local function fresh()
    n = n + 1
    return tostring(n) .. "x" .. run
end

-- A policy request and the milter ctx of the same transaction.
local function pair(id, opts)
    opts = opts or {}
    local port = opts.port or tostring(40000 + n)
    local attrs = {
        protocol_state = "RCPT", instance = "inst." .. id, queue_id = "",
        client_address = "192.0.2.7", client_port = port, sender = "Alice@example.org",
        sasl_username = "alice", recipient = "bob@example.net",
    }
    local ctx = { phase = "eom", macros = { i = "Q" .. id, ["{auth_authen}"] = "alice" },
        client = { address = "192.0.2.7", port = tonumber(port) }, sender = "alice@example.org",
        conn = {}, msg = {}, headers = {}, body = "" }
    return attrs, ctx
end

describe("outpost.txnlink", function()
    it("merges what is written under any known key", function()
        local k = fresh()
        assert.is_true(txnlink.put({ "a" .. k, false, "b" .. k }, { x = "1", n = 2, yes = true }))
        assert.is_true(txnlink.put({ "c" .. k, "a" .. k }, { y = "2" }))
        assert.same({ x = "1", n = "2", yes = "true", y = "2" }, txnlink.get({ "nothing", "c" .. k }))
        txnlink.forget("b" .. k)
        assert.is_nil(txnlink.get({ "a" .. k }))
    end)

    it("refuses what is not keys and fields", function()
        assert.has_error(function() txnlink.put({}, { x = "1" }) end)
        assert.has_error(function() txnlink.put({ 1 }, { x = "1" }) end)
        assert.has_error(function() txnlink.put({ "k" }, { x = {} }) end)
        assert.has_error(function() txnlink.put({ "k" }, { [1] = "v" }) end)
    end)
end)

describe("transaction", function()
    it("the milter finds a one-recipient transaction by client, port and sender", function()
        local attrs, ctx = pair(fresh())
        assert.is_true(transaction.record(attrs, { ["rcpt:bob@example.net"] = "DUNNO" }))
        local t = transaction.of_message(ctx)
        assert.equal(attrs.instance, t.instance)
        assert.equal("alice", t.sasl_user)
        assert.equal("DUNNO", t["rcpt:bob@example.net"])
    end)

    it("a later RCPT with the queue id joins the first; the milter finds it by queue id", function()
        local id = fresh()
        local attrs, ctx = pair(id)
        transaction.record(attrs, { ["rcpt:a"] = "DUNNO" })
        attrs.queue_id, attrs.recipient = "Q" .. id, "c@example.net"
        transaction.record(attrs, { ["rcpt:c"] = "REJECT 5.7.1 no" })
        ctx.client.port = 1 -- not the envelope key: only the queue id can find it
        local t = transaction.of_message(ctx)
        assert.same({ "DUNNO", "REJECT 5.7.1 no", "Q" .. id }, { t["rcpt:a"], t["rcpt:c"], t.queue_id })
    end)

    it("the next transaction on the connection does not see the previous one", function()
        local attrs, ctx = pair(fresh())
        transaction.record(attrs, { ["rcpt:a"] = "DUNNO" })
        attrs.instance = attrs.instance .. ".1"
        transaction.record(attrs, { ["rcpt:b"] = "DUNNO" })
        local t = transaction.of_message(ctx)
        assert.equal(attrs.instance, t.instance)
        assert.is_nil(t["rcpt:a"])
    end)

    it("another connection's transaction of the same sender is another", function()
        local attrs, ctx = pair(fresh(), { port = "1111" })
        transaction.record(attrs, {})
        ctx.client.port, ctx.macros.i = 2222, nil
        assert.is_nil(transaction.of_message(ctx))
    end)

    it("release gives back what the transaction reserved; after a commit nothing", function()
        local attrs, ctx = pair(fresh())
        local subject = "txn-" .. attrs.instance
        assert.is_true(limit.reserve("spec_rcpt", subject, attrs.instance, 2).ok)
        transaction.record(attrs, {})
        assert.equal(2, transaction.release(ctx))
        assert.equal(0, limit.check("spec_rcpt", subject).used)
        assert.equal("2", transaction.of_message(ctx).released)

        local attrs2, ctx2 = pair(fresh())
        local subject2 = "txn-" .. attrs2.instance
        limit.reserve("spec_rcpt", subject2, attrs2.instance, 1)
        transaction.record(attrs2, {})
        assert.equal(1, (transaction.commit(ctx2)))
        assert.equal(0, transaction.release(ctx2))
        assert.equal(1, limit.check("spec_rcpt", subject2).used)
    end)

    it("an unknown transaction releases nothing", function()
        local _, ctx = pair(fresh())
        assert.is_nil(transaction.release(ctx))
    end)
end)

describe("P.service with link = true", function()
    local policy = P.service("linked", { link = true }) {
        P.check("XA1", "notes what it saw", function(tx)
            tx.notes.seen = tx.recipient
            if tx.recipient == "no@example.net" then return A.reject("5.7.1", "not you") end
        end),
        P.check("XA2", "log-only here", function(tx)
            if tx.recipient == "bob@example.net" then return A.reject("5.7.1", "would refuse") end
        end),
        P.eom_check("XA3", "reads the policy's record", function(tx)
            if tx.policy then
                return A.dunno():add_header("X-Policy", tx.policy["rcpt:bob@example.net"] or "-")
            end
        end),
    }
    local modes = policy.with_modes({ XA2 = "log-only" })

    it("records each answer, log-only hits and notes; the eom check reads them", function()
        local attrs, ctx = pair(fresh())
        assert.equal("DUNNO", modes.on_request({ attrs = attrs, service = "linked", tenant = "" }).text)
        attrs.recipient = "no@example.net"
        assert.equal("XA1", modes.on_request({ attrs = attrs, service = "linked", tenant = "" }).check)
        local t = transaction.of_message(ctx)
        assert.equal("DUNNO", t["rcpt:bob@example.net"])
        assert.equal("REJECT 5.7.1 not you", t["rcpt:no@example.net"])
        assert.equal("REJECT 5.7.1 would refuse", t["logonly:XA2"])
        assert.equal("no@example.net", t["note:seen"])
        local a = modes.on_eom(ctx)
        assert.same({ op = "add", name = "X-Policy", value = "DUNNO" }, a.mods[1])
    end)

    it("has an on_abort that releases", function()
        local attrs, ctx = pair(fresh())
        limit.reserve("spec_rcpt", "txn-abort-" .. attrs.instance, attrs.instance, 1)
        modes.on_request({ attrs = attrs, service = "linked", tenant = "" })
        assert.equal("DUNNO", modes.on_abort(ctx).text)
        assert.equal(0, limit.check("spec_rcpt", "txn-abort-" .. attrs.instance).used)
    end)

    it("end of message keeps one reservation per accepted recipient, or none if refused", function()
        local attrs, ctx = pair(fresh())
        local subject = "txn-eom-" .. attrs.instance
        limit.reserve("spec_rcpt", subject, attrs.instance, 3)
        modes.on_request({ attrs = attrs, service = "linked", tenant = "" })
        ctx.rcpts = { "bob@example.net", "carol@example.net" }
        modes.on_eom(ctx)
        assert.equal(2, limit.check("spec_rcpt", subject).used)
        assert.equal(0, transaction.release(ctx))

        local refusing = P.service("linked", { link = true }) {
            P.check("XA1", "x", function() end),
            P.eom_check("XA3", "refuses", function() return A.reject("5.7.1", "no") end),
        }
        local attrs2, ctx2 = pair(fresh())
        local subject2 = "txn-eom-" .. attrs2.instance
        limit.reserve("spec_rcpt", subject2, attrs2.instance, 2)
        refusing.on_request({ attrs = attrs2, service = "linked", tenant = "" })
        ctx2.rcpts = { "bob@example.net" }
        assert.equal("XA3", refusing.on_eom(ctx2).check)
        assert.equal(0, limit.check("spec_rcpt", subject2).used)
    end)

    it("without link nothing is recorded and there is no on_abort", function()
        local plain = P.service("linked") { P.check("XA1", "x", function() end) }
        local attrs, ctx = pair(fresh())
        plain.on_request({ attrs = attrs, service = "linked", tenant = "" })
        assert.is_nil(plain.on_abort)
        assert.is_nil(transaction.of_message(ctx))
    end)
end)
