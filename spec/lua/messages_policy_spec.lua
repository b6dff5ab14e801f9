-- lua/policies/messages.lua driven as the milter engine drives it: on_eom
-- with a ctx (PO8 asks the fixture directory about alice).
local sandbox = require "outpost.sandbox"

local policy = sandbox.load_policy(OUTPOST_TEST.lua_dir .. "/policies/messages.lua")

local GOOD = {
    { name = "From", value = "Alice Adams <alice.adams@example.org>" },
    { name = "To", value = "bob@example.net" },
    { name = "Date", value = "Sat, 28 Nov 2026 09:00:00 +0100" },
    { name = "Message-ID", value = "<1.2@example.org>" },
    { name = "Subject", value = "hi" },
}

local function ctx(opts)
    local headers = {}
    for _, h in ipairs(GOOD) do
        if not (opts.drop and opts.drop[h.name]) then
            headers[#headers + 1] = { name = h.name, value = (opts.set or {})[h.name] or h.value }
        end
    end
    for _, h in ipairs(opts.extra or {}) do headers[#headers + 1] = h end
    return { phase = "eom", service = "messages", tenant = "", headers = headers, body = opts.body or "Hello\r\n",
        macros = { ["{auth_authen}"] = opts.user or "alice" }, sender = "alice@example.org",
        client = { address = "192.0.2.7" }, conn = {}, msg = {} }
end

describe("the messages policy", function()
    it("keeps the body and has on_eom only", function()
        assert.equal(1048576, policy.keep_body)
        assert.is_function(policy.on_eom)
        assert.is_nil(policy.on_request)
    end)

    it("passes alice's good message", function()
        assert.equal("DUNNO", policy.on_eom(ctx {}).text)
    end)

    it("PO8: refuses someone else's From", function()
        local a = policy.on_eom(ctx { set = { From = "The Boss <boss@example.org>" } })
        assert.equal("PO8", a.check)
        assert.matches("^REJECT 5.7.1 header From boss@example.org is not yours", a.text)
    end)

    it("PO8: an unknown user is refused, no user is not PO8's business", function()
        assert.equal("PO8", policy.on_eom(ctx { user = "nobody-here" }).check)
        local c = ctx {}
        c.macros = {}
        assert.equal("DUNNO", policy.on_eom(c).text)
    end)

    it("PO8 in log-only lets G3 and G4 answer", function()
        local a = policy.with_modes({ PO8 = "log-only" }).on_eom(ctx { set = { From = "boss@example.org" } })
        assert.equal("DUNNO", a.text)
        assert.equal(1, policy.stats.PO8.logged)
    end)

    it("a truncated header (ctx.truncated) is refused, not judged on its part", function()
        -- issue 14 item 4: the second From was past the bound, so the part
        -- kept passes every check; the refusal must not depend on it
        local c = ctx {}
        c.truncated = "more than 1000 header fields"
        local a = policy.on_eom(c)
        assert.matches("^REJECT 5.3.4 ", a.text)
        assert.is_nil(a.check)
        -- every check off or log-only: still refused
        a = policy.with_modes({ PO8 = "log-only", G3 = "off", G4 = "log-only" }).on_eom(c)
        assert.matches("^REJECT 5.3.4 ", a.text)
    end)

    it("the message checks called on their own refuse a truncated header too", function()
        local message_checks = require "site.message_checks"
        local tx = { headers = ctx({}).headers, body = "", truncated = "a header of more than 256 KiB" }
        for _, fn in ipairs { message_checks.po8, message_checks.g3, message_checks.g4({}) } do
            local a = fn(tx)
            assert.matches("^REJECT 5.3.4 message header too large to check: a header of more", a.text)
        end
        assert.is_nil(message_checks.g3({ headers = ctx({}).headers }))
    end)

    it("G3: no Date, two From", function()
        local a = policy.on_eom(ctx { drop = { Date = true } })
        assert.equal("G3", a.check)
        assert.equal("REJECT 5.6.0 message does not follow RFC 5322: no Date header", a.text)
        a = policy.on_eom(ctx { extra = { { name = "From", value = "alice@example.org" } } })
        assert.equal("G3", a.check)
        assert.matches("2 From headers", a.text)
    end)

    it("G4: a shortener link in a base64 part", function()
        local a = policy.on_eom(ctx {
            extra = { { name = "Content-Type", value = "text/plain" },
                { name = "Content-Transfer-Encoding", value = "base64" } },
            body = "aHR0cHM6Ly9iaXQubHkveA==\r\n" }) -- https://bit.ly/x
        assert.equal("G4", a.check)
        assert.matches("URL shorteners %(bit.ly%)", a.text)
    end)

    it("G4 in tag mode: the message goes on with X-Outpost-G4 naming the shortener", function()
        local tagging = policy.with_modes({ G4 = "tag" })
        local before = policy.stats.G4.tagged
        local a = tagging.on_eom(ctx { body = "see https://bit.ly/3abc and http://tinyurl.com/x\r\n" })
        assert.equal("DUNNO", a.text)
        assert.is_nil(a.check)
        assert.same({ { op = "add", name = "X-Outpost-G4", value = "url-shortener bit.ly" } }, a.mods)
        assert.equal(before + 1, policy.stats.G4.tagged)
        assert.is_nil(tagging.on_eom(ctx {}).mods) -- no link, no header
    end)

    it("a check that refuses before G4 leaves no tag", function()
        local a = policy.with_modes({ G4 = "tag" }).on_eom(ctx {
            body = "https://bit.ly/x\r\n", set = { From = "boss@example.org" } })
        assert.equal("PO8", a.check) -- PO8 runs first and refuses: G4 never ran
        assert.is_nil(a.mods)
        a = policy.with_modes({ G4 = "tag", PO8 = "log-only" }).on_eom(ctx {
            body = "https://bit.ly/x\r\n", drop = { Date = true } })
        assert.equal("G3", a.check)
        assert.is_nil(a.mods) -- G3 refused before G4 ran
    end)

    it("only end-of-message checks can tag", function()
        local P = require "outpost.pipeline"
        local A = require "outpost.action"
        local p = P.service "tagtest" {
            P.check("XT1", "request", function() return A.reject("5.7.1", "x") end),
            P.eom_check("XT2", "message", function() return A.reject("5.7.1", "y") end),
        }
        assert.has_error(function() p.with_modes({ XT1 = "tag" }) end,
            "with_modes: only end-of-message checks can tag, not XT1")
        local a = p.with_modes({ XT2 = "tag" }).on_eom({ macros = {}, headers = {} })
        assert.same({ op = "add", name = "X-Outpost-XT2", value = "REJECT 5.7.1 y" }, a.mods[1])
    end)
end)
