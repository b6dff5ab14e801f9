-- appout, AO1-AO5 (lua/policies/appout_stage1.lua) and AO7-AO8
-- (lua/policies/appout_stage2.lua), against the harness's real slapd with
-- the fixture directory (spec/fixtures/ldap/: app-ba, app-hm, app-lm,
-- app-tu, app-locked, app-shared), the real unbound with the fixture zones
-- (spec/harness/dns/zones.conf) and the real counters (limit appout_send in
-- spec/harness/outpost-test.conf.in: max 3 for a sender without an agreed
-- limit).  Per check: pass, fail, the dependency failing, log-only.
-- LDAP down is the real slapd killed (spec/harness/ldap-ctl.sh); only the
-- counter store failing is a fake (it cannot fail on demand).
--
-- Subjects of AO8 counters: noreply-hm@hm.example.org is filled to its
-- agreed limit and shared-app@example.org to the default; other specs and
-- the replay cases use the portal-* senders.
local sandbox = require "outpost.sandbox"
local ldap = require "outpost.ldap"
local limit = require "outpost.limit"
local outpost = require "outpost"

local DIR = OUTPOST_TEST.lua_dir .. "/policies/"
local stage1 = sandbox.load_policy(DIR .. "appout_stage1.lua")
local stage2 = sandbox.load_policy(DIR .. "appout_stage2.lua")
local LDAP_CTL = OUTPOST_TEST.lua_dir .. "/../spec/harness/ldap-ctl.sh"

-- The four tenants' function accounts (fixture.ldif).
local TENANTS = {
    ba = { uid = "app-ba", sender = "noreply-ba@lrz.example", portal = "portal-ba@lrz.example", ip = "10.156.7.8", limit = 5000 },
    hm = { uid = "app-hm", sender = "noreply-hm@hm.example.org", portal = "portal-hm@hm.example.org", ip = "10.28.7.8", limit = 2000 },
    lm = { uid = "app-lm", sender = "noreply-lm@example.org", portal = "portal-lm@example.org", ip = "10.153.7.8", limit = 20000 },
    tu = { uid = "app-tu", sender = "noreply-tu@tu.example.org", portal = "portal-tu@tu.example.org", ip = "10.187.7.8", limit = 100000 },
}

local run = string.format("%d-%d", os.time(), math.floor(outpost.now() * 1000) % 100000)
local n_inst = 0
local function instance()
    n_inst = n_inst + 1
    return string.format("appout.%s.%d", run, n_inst)
end

-- A request as Postfix sends it; `over` sets attributes, false removes one.
local function request(service, tenant, attrs, over)
    for k, v in pairs(over or {}) do
        if v == false then attrs[k] = nil else attrs[k] = v end
    end
    return { attrs = attrs, service = service, tenant = tenant }
end

local function s1(tenant, over)
    local t = TENANTS[tenant] or TENANTS.lm
    return request("appout-stage1", tenant, {
        request = "smtpd_access_policy", protocol_state = "RCPT", protocol_name = "ESMTP",
        encryption_protocol = "TLSv1.3", encryption_cipher = "TLS_AES_256_GCM_SHA384",
        sasl_method = "PLAIN", sasl_username = t.uid, sender = t.sender,
        recipient = "someone@withmx.test", client_address = t.ip, client_name = "app.example.org",
        instance = instance(),
    }, over)
end

local function s2(over)
    return request("appout-stage2", "", {
        request = "smtpd_access_policy", protocol_state = "RCPT", protocol_name = "ESMTP",
        sender = TENANTS.lm.portal, recipient = "someone@withmx.test",
        client_address = "127.0.0.1", client_name = "localhost", instance = instance(),
    }, over)
end

local function answer(policy, req) return policy.on_request(req) end

-- The real slapd killed for the duration of fn, then started again and
-- waited for (the next specs need it).
local function with_ldap_down(fn)
    ldap.flush()
    assert(os.execute(LDAP_CTL .. " kill >/dev/null 2>&1") == 0, "ldap-ctl.sh kill")
    local ok, err = pcall(fn)
    os.execute(LDAP_CTL .. " start >/dev/null 2>&1")
    local up = false
    for _ = 1, 60 do
        if ldap.search { base = "dc=example,dc=org", filter = "(uid=%s)", args = { "alice" }, cache = false } then
            up = true
            break
        end
        outpost.sleep(0.1)
    end
    ldap.flush()
    assert(up, "slapd did not come back")
    if not ok then error(err, 0) end
end

-- A fake counter store that fails (the real one cannot on demand).
local function with_counters_down(fn)
    -- the table the policies' pipeline reads (the sandbox's, which an earlier
    -- spec file may have required first), as mailout_spec.lua fakes it
    local limit = sandbox.writable(sandbox.require "outpost.limit")
    local reserve, add = limit.reserve, limit.add
    limit.reserve = function() return nil, "unavailable" end
    limit.add = limit.reserve
    local ok, err = pcall(fn)
    limit.reserve, limit.add = reserve, add
    if not ok then error(err, 0) end
end

describe("appout stage 1 (AO1-AO5)", function()
    before_each(function() ldap.flush() end)

    it("AO1-AO5 pass for each tenant's own function account and both its senders", function()
        for tenant, t in pairs(TENANTS) do
            assert.equal("DUNNO", answer(stage1, s1(tenant)).text, tenant)
            assert.equal("DUNNO", answer(stage1, s1(tenant, { sender = t.portal })).text, tenant)
        end
    end)

    describe("AO1 TLS", function()
        it("AO1 fails without TLS, naming the ports", function()
            local a = answer(stage1, s1("lm", { encryption_protocol = "" }))
            assert.equal("AO1", a.check)
            assert.matches("^REJECT 5%.7%.10 .*port 465 or STARTTLS on port 587", a.text)
            assert.equal("AO1", answer(stage1, s1("tu", { encryption_protocol = false })).check)
        end)
        it("AO1 has no dependency: it answers while the directory is down", function()
            with_ldap_down(function()
                assert.equal("AO1", answer(stage1, s1("ba", { encryption_protocol = "" })).check)
            end)
        end)
        it("AO1 log-only logs and goes on", function()
            local p = stage1.with_modes({ AO1 = "log-only" })
            local before = stage1.stats.AO1.logged
            assert.equal("DUNNO", p.on_request(s1("lm", { encryption_protocol = "" })).text)
            assert.equal(before + 1, stage1.stats.AO1.logged)
        end)
    end)

    describe("AO2 authenticated", function()
        it("AO2 fails without SASL login", function()
            local a = answer(stage1, s1("hm", { sasl_username = false, sasl_method = false }))
            assert.equal("AO2", a.check)
            assert.matches("^REJECT 5%.7%.0 .*function account", a.text)
            assert.equal("AO2", answer(stage1, s1("hm", { sasl_username = "" })).check)
        end)
        it("AO2 has no dependency: it answers while the directory is down", function()
            with_ldap_down(function()
                assert.equal("AO2", answer(stage1, s1("hm", { sasl_username = "" })).check)
            end)
        end)
        it("AO2 log-only goes on; AO3-AO5 need a login and pass it by", function()
            local p = stage1.with_modes({ AO2 = "log-only" })
            assert.equal("DUNNO", p.on_request(s1("hm", { sasl_username = "" })).text)
        end)
    end)

    describe("AO3 function account enabled for the tenant and not locked", function()
        it("AO3 fails for an unknown account and for a person's login", function()
            local a = answer(stage1, s1("lm", { sasl_username = "app-nobody" }))
            assert.equal("AO3", a.check)
            assert.matches("^REJECT 5%.7%.1 app%-nobody is not a function account", a.text)
            assert.equal("AO3", answer(stage1, s1("lm", { sasl_username = "alice", sender = "alice@example.org" })).check)
        end)
        it("AO3 fails for an account of another tenant", function()
            local a = answer(stage1, s1("tu", { sasl_username = "app-ba", sender = "noreply-ba@lrz.example" }))
            assert.equal("AO3", a.check)
            assert.matches("^REJECT 5%.7%.1 function account app%-ba is not enabled for appout%-tu", a.text)
        end)
        it("AO3 knows an account enabled for several tenants (app-shared: hm and tu, not lm)", function()
            local over = { sasl_username = "app-shared", sender = "shared-app@example.org", client_address = "10.1.2.3" }
            assert.equal("DUNNO", answer(stage1, s1("hm", over)).text)
            assert.equal("DUNNO", answer(stage1, s1("tu", over)).text)
            assert.equal("AO3", answer(stage1, s1("lm", over)).check)
        end)
        it("AO3 fails for a locked account", function()
            local a = answer(stage1, s1("lm", { sasl_username = "app-locked", sender = "noreply-locked@example.org",
                client_address = "10.1.2.3" }))
            assert.equal("AO3", a.check)
            assert.matches("^REJECT 5%.7%.1 function account app%-locked is locked", a.text)
        end)
        it("AO3 answers 4xx when the directory is down", function()
            with_ldap_down(function()
                local a = answer(stage1, s1("lm"))
                assert.equal("AO3", a.check)
                assert.matches("^DEFER 4%.3%.0 the account directory cannot be reached", a.text)
            end)
        end)
        it("AO3 answers 4xx for a listener without a tenant (our configuration error)", function()
            local a = answer(stage1, s1("", { sasl_username = "app-lm" }))
            assert.equal("AO3", a.check)
            assert.matches("^DEFER 4%.3%.5", a.text)
        end)
        it("AO3 log-only lets a locked account through to the next checks", function()
            local p = stage1.with_modes({ AO3 = "log-only" })
            assert.equal("DUNNO", p.on_request(s1("lm", { sasl_username = "app-locked",
                sender = "noreply-locked@example.org", client_address = "10.1.2.3" })).text)
        end)
    end)

    describe("AO4 authorised for the envelope sender", function()
        it("AO4 accepts the sender in any case and with its domain's trailing dot", function()
            assert.equal("DUNNO", answer(stage1, s1("tu", { sender = "Portal-TU@TU.example.org." })).text)
        end)
        it("AO4 fails for another account's or a person's address, and lists the account's own", function()
            local a = answer(stage1, s1("hm", { sender = "noreply-lm@example.org" }))
            assert.equal("AO4", a.check)
            assert.matches("^REJECT 5%.7%.1 function account app%-hm may not send as <noreply%-lm@example.org>", a.text)
            assert.matches("noreply%-hm@hm.example.org, portal%-hm@hm.example.org", a.text)
            assert.equal("AO4", answer(stage1, s1("lm", { sender = "alice@example.org" })).check)
        end)
        it("AO4 fails for the null sender", function()
            local a = answer(stage1, s1("ba", { sender = "" }))
            assert.equal("AO4", a.check)
            assert.matches("may not send as <> %(the null sender%)", a.text)
        end)
        it("AO4 answers 4xx when the directory is down (AO3 off)", function()
            with_ldap_down(function()
                local a = stage1.with_modes({ AO3 = "off" }).on_request(s1("hm"))
                assert.equal("AO4", a.check)
                assert.matches("^DEFER 4%.3%.0", a.text)
            end)
        end)
        it("AO4 log-only goes on", function()
            assert.equal("DUNNO", stage1.with_modes({ AO4 = "log-only" }).on_request(
                s1("hm", { sender = "noreply-lm@example.org" })).text)
        end)
    end)

    describe("AO5 client inside the account's networks", function()
        it("AO5 passes inside each of the account's networks, IPv4 and IPv6", function()
            for _, ip in ipairs { "10.187.0.1", "192.0.2.200", "2001:db8:1::25", "::ffff:10.187.1.1" } do
                assert.equal("DUNNO", answer(stage1, s1("tu", { client_address = ip })).text, ip)
            end
        end)
        it("AO5 fails outside them, even inside the campus: own networks replace the default", function()
            local a = answer(stage1, s1("ba", { client_address = "10.1.2.3" }))
            assert.equal("AO5", a.check)
            assert.matches("^REJECT 5%.7%.1 client 10%.1%.2%.3 is not in the networks allowed for function account app%-ba %(10%.156%.0%.0/16%)", a.text)
            assert.equal("AO5", answer(stage1, s1("tu", { client_address = "2001:db8:2::25" })).check)
            assert.equal("AO5", answer(stage1, s1("tu", { client_address = false })).check)
        end)
        it("AO5 takes the campus network for an account without networks (app-shared)", function()
            local over = { sasl_username = "app-shared", sender = "shared-app@example.org" }
            over.client_address = "10.2.3.4"
            assert.equal("DUNNO", answer(stage1, s1("hm", over)).text)
            over.client_address = "198.51.100.7"
            local a = answer(stage1, s1("hm", over))
            assert.equal("AO5", a.check)
            assert.matches("%(the campus network%)", a.text)
        end)
        it("AO5 answers 4xx when the directory is down (AO3, AO4 off)", function()
            with_ldap_down(function()
                local a = stage1.with_modes({ AO3 = "off", AO4 = "off" }).on_request(s1("tu"))
                assert.equal("AO5", a.check)
                assert.matches("^DEFER 4%.3%.0", a.text)
            end)
        end)
        it("AO5 log-only goes on", function()
            local p = stage1.with_modes({ AO5 = "log-only" })
            assert.equal("DUNNO", p.on_request(s1("ba", { client_address = "198.51.100.7" })).text)
        end)
        it("AO5 off per tenant, from the service's tenant modes", function()
            local p = stage1.with_modes({}, { ba = { AO5 = "off" } })
            assert.equal("DUNNO", p.on_request(s1("ba", { client_address = "198.51.100.7" })).text)
            local other = s1("tu", { client_address = "198.51.100.7" })
            assert.equal("AO5", p.on_request(other).check)
        end)
    end)
end)

describe("appout stage 2 (AO7, AO8)", function()
    before_each(function() ldap.flush() end)

    describe("AO7 recipients deliverable", function()
        it("AO7 passes for domains with MX, with only A or AAAA, and existing local recipients", function()
            for _, r in ipairs { "x@withmx.test", "x@aonly.test", "x@aaaaonly.test", "bob@example.org",
                "Bob.Brown@Example.ORG", "all-staff@example.org", "a.adams@lrz.example", "bob+news@example.org" } do
                assert.equal("DUNNO", answer(stage2, s2 { recipient = r }).text, r)
            end
        end)
        it("AO7 fails 5xx for a domain that does not exist, has no mail records, or a null MX", function()
            local a = answer(stage2, s2 { recipient = "x@no-such-domain.test" })
            assert.equal("AO7", a.check)
            assert.equal("REJECT 5.1.2 recipient domain no-such-domain.test does not exist (no MX, A or AAAA record); correct or remove the address", a.text)
            assert.matches("^REJECT 5%.1%.2", answer(stage2, s2 { recipient = "x@txtonly.test" }).text)
            assert.matches("^REJECT 5%.1%.10 recipient domain nullmx.test accepts no mail",
                answer(stage2, s2 { recipient = "x@nullmx.test" }).text)
            assert.matches("^REJECT 5%.1%.3", answer(stage2, s2 { recipient = "not an address" }).text)
        end)
        it("AO7 fails 5xx for an unknown recipient in a local domain", function()
            local a = answer(stage2, s2 { recipient = "nobody@example.org" })
            assert.equal("AO7", a.check)
            assert.matches("^REJECT 5%.1%.1 recipient <nobody@example.org> does not exist", a.text)
            assert.equal("AO7", answer(stage2, s2 { recipient = "nobody@lrz.example" }).check)
            assert.equal("AO7", answer(stage2, s2 { recipient = "nobody+bob@example.org" }).check)
        end)
        it("AO7 answers 4xx when DNS times out or fails, so the mail stays queued", function()
            local a = answer(stage2, s2 { recipient = "x@timeout.test" })
            assert.equal("AO7", a.check)
            assert.matches("^DEFER 4%.4%.3 recipient domain timeout.test cannot be checked now %(DNS: timeout%)", a.text)
            assert.matches("^DEFER 4%.4%.3", answer(stage2, s2 { recipient = "x@servfail.test" }).text)
            assert.matches("^DEFER 4%.4%.3", answer(stage2, s2 { recipient = "x@refused.test" }).text)
        end)
        it("AO7 answers 4xx for a local recipient when the directory is down", function()
            with_ldap_down(function()
                local a = stage2.with_modes({ AO8 = "off" }).on_request(s2 { recipient = "bob@example.org" })
                assert.equal("AO7", a.check)
                assert.matches("^DEFER 4%.4%.3 recipient <bob@example.org> cannot be checked now %(directory:", a.text)
            end)
        end)
        it("AO7 checks recipients only at RCPT", function()
            assert.equal("DUNNO", answer(stage2, s2 { protocol_state = "DATA", recipient = "x@nullmx.test",
                recipient_count = "1" }).text)
        end)
        it("AO7 log-only goes on", function()
            local p = stage2.with_modes({ AO7 = "log-only" })
            assert.equal("DUNNO", p.on_request(s2 { recipient = "x@nullmx.test" }).text)
        end)
    end)

    describe("AO8 sender under its agreed send limit", function()
        it("AO8 counts per recipient against the sender's agreed limit from the directory", function()
            for tenant, t in pairs(TENANTS) do
                local inst = instance()
                assert.equal("DUNNO", answer(stage2, s2 { sender = t.portal, instance = inst }).text, tenant)
                local r = limit.check("appout_send", t.portal, 1, { max = t.limit })
                assert.is_true(r.used >= 1, tenant)
                assert.equal(t.limit, r.max, tenant)
            end
        end)
        it("AO8 defers (4xx, stays queued) when the agreed limit is reached, naming limit and next slot", function()
            local t = TENANTS.hm
            assert.is_true(limit.add("appout_send", t.sender, 2000, { max = 2000 }).ok)
            local a = answer(stage2, s2 { sender = t.sender })
            assert.equal("AO8", a.check)
            assert.matches("^DEFER 4%.7%.1 sender noreply%-hm@hm.example.org has reached its agreed send limit of 2000 recipients per 24 h; the mail stays queued and is sent from %d+%-%d+%-%d+ %d+:%d+ UTC", a.text)
            -- the same counter, however the sender is written
            assert.equal("AO8", answer(stage2, s2 { sender = "NoReply-HM+news@HM.example.org" }).check)
        end)
        it("AO8 uses the limit's default for a sender without an agreed limit (app-shared: 3)", function()
            local inst = instance()
            for i = 1, 3 do
                assert.equal("DUNNO", answer(stage2, s2 { sender = "shared-app@example.org", instance = inst }).text, i)
            end
            local a = answer(stage2, s2 { sender = "Shared-App@example.org", instance = inst })
            assert.equal("AO8", a.check)
            assert.matches("agreed send limit of 3 recipients per 24 h", a.text)
        end)
        it("AO8 keeps at DATA what Postfix accepted and gives the rest back", function()
            local s, inst = TENANTS.ba.portal, instance()
            local before = limit.check("appout_send", s, 1, { max = 5000 }).used
            answer(stage2, s2 { sender = s, instance = inst, recipient = "a@withmx.test" })
            answer(stage2, s2 { sender = s, instance = inst, recipient = "b@withmx.test" })
            assert.equal(before + 2, limit.check("appout_send", s, 1, { max = 5000 }).used)
            assert.equal("DUNNO", answer(stage2, s2 { sender = s, instance = inst, protocol_state = "DATA",
                recipient_count = "1" }).text)
            assert.equal(before + 1, limit.check("appout_send", s, 1, { max = 5000 }).used)
        end)
        it("AO8 does not count the null sender (stage 1's bounces to the application)", function()
            assert.equal("DUNNO", answer(stage2, s2 { sender = "" }).text)
            assert.equal(0, limit.check("appout_send", "<>", 1).used)
        end)
        it("AO8 answers 4xx when the directory is down (AO7 off)", function()
            with_ldap_down(function()
                local a = stage2.with_modes({ AO7 = "off" }).on_request(s2 { sender = TENANTS.tu.portal })
                assert.equal("AO8", a.check)
                assert.matches("^DEFER 4%.3%.0", a.text)
            end)
        end)
        it("AO8 answers 4xx when the counters are unavailable (fake store)", function()
            with_counters_down(function()
                local a = answer(stage2, s2 { sender = TENANTS.lm.portal })
                assert.equal("AO8", a.check)
                assert.matches("^DEFER 4%.3%.0 the send limit of portal%-lm@example.org cannot be counted now %(unavailable%)", a.text)
            end)
        end)
        it("AO8 log-only goes on past the limit", function()
            local p = stage2.with_modes({ AO8 = "log-only" })
            assert.equal("DUNNO", p.on_request(s2 { sender = TENANTS.hm.sender }).text)
        end)
    end)
end)
