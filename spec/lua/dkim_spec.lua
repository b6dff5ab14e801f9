-- outpost.dkim and site.dkim (MO8) on the messages spec/dkim/make_fixture.py
-- signed with python3-dkim when the harness started; the keys are in the
-- harness's unbound (inst.test, foreign.test), and sel._domainkey.slow.inst.test
-- is delegated to its silent server, so that lookup times out for real.
local dkim = require "outpost.dkim"
local site = require "site.dkim"

local ROOT = OUTPOST_TEST.lua_dir:gsub("/lua$", "")
local FIXTURE = ROOT .. "/build/harness/dns/dkim/"

-- A message as the milter hands it over: {name=, value=} headers (the value
-- without the space after the colon, folded with LF) and the body.
local function load(name)
    local f = assert(io.open(FIXTURE .. name .. ".eml", "rb"))
    local msg = f:read("*a")
    f:close()
    local head, body = msg:match("^(.-\r\n)\r\n(.*)$")
    local headers = {}
    for field in (head:gsub("\r\n([ \t])", "\n%1")):gmatch("([^\r]*)\r\n") do
        local n, v = field:match("^([^:]+): ?(.*)$")
        headers[#headers + 1] = { name = n, value = v }
    end
    return headers, body
end

local function results(name, chunk)
    local headers, body = load(name)
    local v = dkim.verifier()
    for _, h in ipairs(headers) do v:header(h.name, h.value) end
    v:eoh()
    chunk = chunk or #body
    for i = 1, #body, chunk do v:body(body:sub(i, i + chunk - 1)) end
    local out = {}
    for _, r in ipairs(v:result()) do out[#out + 1] = r.result end
    return table.concat(out, " "), v
end

local INST = { ["inst.test"] = true }
local SIGNING = { ["inst.test"] = true }
local say = {
    MO8 = function(domain, why, sigs) return { text = "REJECT 5.7.1 " .. domain .. " " .. why .. ": " .. sigs } end,
    MO8_dns = function(domain) return { text = "DEFER 4.7.5 " .. domain } end,
}
local function tx(name, sender)
    local headers, body = load(name)
    return { headers = headers, body = body, sender = sender or "" }
end

-- The keys the passing cases need, in the cache before the specs: on a
-- loaded machine a cold first query can pass the harness's 500 ms DNS
-- timeout, and these specs are about verifying, not DNS (the timeout case
-- has a spec of its own).
setup(function()
    local dns = require "outpost.dns"
    for _, name in ipairs { "rsa2026._domainkey.inst.test", "ed2026._domainkey.inst.test",
        "sel._domainkey.foreign.test", "testing._domainkey.inst.test", "semail._domainkey.inst.test" } do
        for _ = 1, 3 do
            if dns.txt(name) then break end
        end
    end
end)

describe("outpost.dkim", function()
    it("verifies RSA (relaxed and simple), Ed25519, l=, several signatures; keys from DNS", function()
        assert.equal("pass", results("rsa_relaxed"))
        assert.equal("pass", results("rsa_simple", 100))
        assert.equal("pass", results("rsa_relaxed_relaxed"))
        assert.equal("pass", results("ed25519", 7))
        assert.equal("pass", results("length_appended"))
        assert.equal("pass pass", results("two_sigs"))
        assert.equal("fail pass", results("bad_then_good"))
        assert.equal("pass", results("expires_later"))
    end)

    it("reports what failed, with d=, s=, a=", function()
        local _, v = results("body_altered")
        local r = v:result()[1]
        assert.same({ "fail", "inst.test", "rsa2026", "rsa-sha256", "body hash mismatch", false },
            { r.result, r.d, r.s, r.a, r.reason, r.testing })
        assert.equal("fail", results("header_altered"))
        assert.equal("fail", results("revoked"))
        assert.equal("permerror", results("no_key"))
        assert.equal("permerror", results("s_other"))
        assert.equal("permerror", results("garbage_key"))
        local _, t = results("testing_key")
        assert.is_true(t:result()[1].testing)
        assert.equal("", results("unsigned"))
        local _, x = results("expired")
        assert.equal("signature expired (x=)", x:result()[1].reason)
        assert.equal("fail", results("future_t"))
    end)

    it("a key lookup that times out is temperror, after waiting (the request yields)", function()
        local t0 = os.clock and os.time()
        assert.equal("temperror", results("timeout_key"))
        assert.is_true(os.time() - t0 < 5)
    end)

    it("a key lookup answered SERVFAIL is temperror", function()
        assert.equal("temperror", results("servfail_key"))
    end)

    it("refuses misuse", function()
        local v = dkim.verifier()
        assert.has_error(function() v:body("x") end)
        assert.has_error(function() v:result() end)
        v:eoh()
        assert.has_error(function() v:header("From", "a@b") end)
    end)
end)

describe("site.dkim: MO8", function()
    it("an institution From signed by a signing domain passes", function()
        assert.is_nil(site.mo8(tx("rsa_relaxed"), say, INST, SIGNING))
        assert.is_nil(site.mo8(tx("ed25519"), say, INST, SIGNING))
        assert.is_nil(site.mo8(tx("two_sigs"), say, INST, SIGNING))
    end)

    it("unsigned, foreign-signed or altered institution mail is refused, naming what to change", function()
        local a = site.mo8(tx("unsigned"), say, INST, SIGNING)
        assert.matches("^REJECT 5%.7%.1 inst%.test header From: no signature", a.text)
        assert.matches("d=foreign%.test s=sel a=rsa%-sha256 pass",
            site.mo8(tx("foreign"), say, INST, SIGNING).text)
        assert.matches("body hash mismatch", site.mo8(tx("body_altered"), say, INST, SIGNING).text)
        assert.matches("^REJECT", site.mo8(tx("revoked"), say, INST, SIGNING).text)
    end)

    it("a key that cannot be fetched now answers 4xx", function()
        assert.equal("DEFER 4.7.5 slow.inst.test", site.mo8(tx("timeout_key"), say, INST, SIGNING).text)
        assert.equal("DEFER 4.7.5 servfail.test", site.mo8(tx("servfail_key"), say,
            { ["servfail.test"] = true }, { ["servfail.test"] = true }).text)
    end)

    it("relaxed alignment: a signing domain's subdomain counts, and the From's subdomain needs it", function()
        assert.is_nil(site.mo8(tx("rsa_relaxed"), say, { ["inst.test"] = true }, { ["test"] = true }))
        assert.equal("inst.test", site.under("mail.inst.test", INST))
        assert.is_nil(site.under("notinst.test", INST))
    end)

    it("a non-institution From needs no signature; the envelope sender counts too", function()
        assert.is_nil(site.mo8(tx("unsigned"), say, { ["other.test"] = true }, SIGNING))
        local a = site.mo8(tx("unsigned"), say, { ["other.test"] = true }, SIGNING)
        assert.is_nil(a)
        a = site.mo8(tx("unsigned", "bounce@other.test"), say, { ["other.test"] = true }, SIGNING)
        assert.matches("other%.test envelope sender", a.text)
    end)

    it("a From that cannot be read counts as the institution's", function()
        local t = tx("unsigned")
        t.headers[1] = { name = "From", value = "<<<" }
        assert.matches("unreadable From", site.mo8(t, say, INST, SIGNING).text)
    end)
end)
