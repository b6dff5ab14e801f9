-- AO6 (lua/policies/appout_stage2.lua, lua/lib/site/scanning.lua): the
-- spam and virus check at stage 2's end of message, driven as the milter
-- engine drives on_eom, against the harness's real clamd (the test-only
-- marker signature) and rspamd (GTUBE rejected), spec/harness/svc_scan.sh.
-- A scanner that fails is the real clamd stopped (spec/harness/scan-ctl.sh);
-- the per-tenant levels are tried on rspamd's real score of a clean message.
local sandbox = require "outpost.sandbox"
local outpost = require "outpost"

local policy = sandbox.load_policy(OUTPOST_TEST.lua_dir .. "/policies/appout_stage2.lua")
local scanning = sandbox.require "site.scanning"

local MARKER = "OUTPOST-TEST-VIRUS-MARKER-7f3a9c"
local GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

local function ctx(body, tenant)
    return { phase = "eom", service = "appout-stage2", tenant = tenant or "lm",
        headers = {
            { name = "From", value = "Portal <noreply-lm@example.org>" },
            { name = "To", value = "bob@example.org" },
            { name = "Subject", value = "Your order" },
            { name = "Message-ID", value = "<ao6." .. math.floor(outpost.now() * 1e6) .. "@example.org>" },
            { name = "Date", value = "Mon, 7 Dec 2026 10:00:00 +0000" },
        },
        body = body or "Hello,\r\nyour order has shipped.\r\n",
        macros = { i = "4ABC123" }, sender = "noreply-lm@example.org",
        rcpts = { "bob@example.org" }, client = { address = "127.0.0.1" }, helo = "stage1.test",
        conn = {}, msg = {} }
end

describe("AO6: spam and virus scanning at stage 2", function()
    it("keeps the body for the scanners: max_size + 1", function()
        assert.equal(scanning.max_bytes() + 1, policy.keep_body)
        assert.is_true(policy.keep_body > 1024)
        assert.is_function(policy.on_eom)
        assert.is_function(policy.on_request) -- AO7, AO8 stay
        assert.is_function(policy.on_abort)  -- linked: gives back AO8's reservations
    end)

    it("a clean message goes on, with both verdicts in the decision detail", function()
        local a = policy.on_eom(ctx())
        assert.equal("DUNNO", a.text)
        assert.matches("^AO6 clamd=clean rspamd=no_action/", a.detail)
        assert.matches("symbols=", a.detail)
    end)

    it("a virus is refused with 5xx naming the signature", function()
        local a = policy.on_eom(ctx("see " .. MARKER .. "\r\n"))
        assert.equal("AO6", a.check)
        assert.equal("REJECT 5.7.1 message contains a virus (Outpost.Test.Marker.UNOFFICIAL) and was not delivered", a.text)
        assert.matches("clamd=infected:Outpost.Test.Marker.UNOFFICIAL", a.detail, 1, true)
    end)

    it("GTUBE is refused with 5xx and rspamd's verdict", function()
        local a = policy.on_eom(ctx(GTUBE .. "\r\n"))
        assert.equal("AO6", a.check)
        assert.matches("^REJECT 5%.7%.1 message looks like spam %(rspamd: reject, score 15%.0 of 15%.0; GTUBE", a.text)
        assert.matches("rspamd=reject/15.00/15.00", a.detail, 1, true)
    end)

    it("log-only: the virus is logged and the message goes on", function()
        local a = policy.with_modes({ AO6 = "log-only" }).on_eom(ctx("see " .. MARKER .. "\r\n"))
        assert.equal("DUNNO", a.text)
        assert.is_nil(a.check)
        assert.matches("clamd=infected", a.detail)
    end)

    it("off: no scan at all", function()
        local a = policy.with_modes({ AO6 = "off" }).on_eom(ctx("see " .. MARKER .. "\r\n"))
        assert.equal("DUNNO", a.text)
        assert.is_nil(rawget(a, "detail"))
    end)

    it("tag mode: spam goes on with an X-Outpost-AO6 header", function()
        local a = policy.with_modes({ AO6 = "tag" }).on_eom(ctx(GTUBE .. "\r\n"))
        assert.equal("DUNNO", a.text)
        assert.equal("X-Outpost-AO6", a.mods[1].name)
        assert.matches("^spam reject score 15%.0", a.mods[1].value)
    end)

    it("per-tenant levels: a score level below the clean message's score refuses it for that tenant only", function()
        local clean = policy.on_eom(ctx())
        local score = tonumber(clean.detail:match("rspamd=[%w_]+/([%d.-]+)/"))
        assert.is_number(score)
        local strict = scanning.ao6 { tenants = { tu = { reject_score = score - 1 } } }
        local P = sandbox.require "outpost.pipeline"
        local p = P.service("appout-stage2") { P.eom_check("AO6", "scan", strict) }
        assert.equal("DUNNO", p.on_eom(ctx(nil, "lm")).text)
        assert.matches("^REJECT 5%.7%.1 message looks like spam", p.on_eom(ctx(nil, "tu")).text)
        -- the tag level: the header, the message goes on
        local tagging = scanning.ao6 { tenants = { hm = { tag_score = score - 1 } } }
        p = P.service("appout-stage2") { P.eom_check("AO6", "scan", tagging) }
        local a = p.on_eom(ctx(nil, "hm"))
        assert.equal("DUNNO", a.text)
        assert.equal("X-Outpost-AO6", a.mods[1].name)
    end)

    it("clamd down: 4xx, the mail stays queued; back: it passes", function()
        local CTL = OUTPOST_TEST.lua_dir .. "/../spec/harness/scan-ctl.sh"
        assert(os.execute(CTL .. " clamd-stop >/dev/null 2>&1") == 0, "scan-ctl.sh clamd-stop")
        local ok, a = pcall(policy.on_eom, ctx())
        local log_only = ok and policy.with_modes({ AO6 = "log-only" }).on_eom(ctx())
        assert(os.execute(CTL .. " clamd-start >/dev/null 2>&1") == 0, "scan-ctl.sh clamd-start")
        assert(ok, a)
        assert.equal("AO6", a.check)
        assert.matches("^DEFER 4%.7%.0 message cannot be scanned now %(clamd: connect: ENOENT%)", a.text)
        assert.matches("clamd=unavailable:clamd:_connect:_ENOENT rspamd=no_action/", a.detail, 1, true)
        assert.equal("DUNNO", log_only.text)
        assert.equal("DUNNO", policy.on_eom(ctx()).text)
    end)

    it("a wrong level refuses the load", function()
        assert.has_error(function() scanning.ao6 { default = { reject_action = "bounce" } } end)
        assert.has_error(function() scanning.ao6 { tenants = { tu = { reject_scor = 3 } } } end)
    end)

    it("the message the scanners read: headers, blank line, body", function()
        local m, cut = scanning.message({ headers = { { name = "Subject", value = "a\n b" } }, body = "x\r\n" })
        assert.equal("Subject: a\r\n b\r\n\r\nx\r\n", m)
        assert.is_false(cut)
    end)
end)
