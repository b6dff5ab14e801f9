-- outpost.scan (AO6) against the harness's clamd and rspamd
-- (spec/harness/svc_scan.sh): clamd knows one test-only signature, the
-- marker string below, as Outpost.Test.Marker.UNOFFICIAL; rspamd rejects
-- GTUBE.  The harness configuration points clamd { } at clamd's unix socket
-- and rspamd { } at its TCP port.
local scan = require "outpost.scan"

local MARKER = "OUTPOST-TEST-VIRUS-MARKER-7f3a9c"
local GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
local function message(body)
    return "From: app@example.org\r\nTo: bob@example.org\r\nSubject: test\r\n" ..
        "Message-ID: <1@example.org>\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\n" .. body .. "\r\n"
end
local META = { ip = "127.0.0.1", from = "app@example.org", rcpts = { "bob@example.org" } }

describe("outpost.scan", function()
    it("says which scanners are configured", function()
        assert.same({ clamd = true, rspamd = true }, scan.enabled())
    end)

    it("clamd: a clean message", function()
        local r = assert(scan.clamd(message("Hello, nothing to see.")))
        assert.equal("clean", r.verdict)
        assert.is_nil(r.signature)
        assert.is_false(r.truncated)
        assert.is_true(r.sent > 0 and r.elapsed >= 0)
    end)

    it("clamd: the marker is found, with the signature's name", function()
        local r = assert(scan.clamd(message("see " .. MARKER .. " here")))
        assert.equal("infected", r.verdict)
        assert.equal("Outpost.Test.Marker.UNOFFICIAL", r.signature)
    end)

    it("rspamd: a clean message is not rejected; GTUBE is", function()
        local r = assert(scan.rspamd(message("Hello, a plain message."), META))
        assert.are_not.equal("reject", r.action)
        assert.equal(15, r.required)
        assert.is_number(r.score)
        r = assert(scan.rspamd(message(GTUBE), META))
        assert.equal("reject", r.action)
        assert.equal("GTUBE", r.symbols[1].name)
    end)

    it("refuses misuse", function()
        assert.has_error(function() scan.clamd(nil) end)
        assert.has_error(function() scan.rspamd("x", { ip = 1 }) end)
        assert.has_error(function() scan.rspamd("x", { rcpts = "bob" }) end)
    end)

    it("cannot wait inside a C callback", function()
        assert.has_error(function()
            string.gsub("x", "x", function() scan.clamd("m") end)
        end, nil)
    end)
end)
