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
end)
