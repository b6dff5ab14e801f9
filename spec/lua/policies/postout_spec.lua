-- lua/policies/postout.lua (PO1-PO7) inside the engine, with the real
-- primitives against the harness's servers: the fixture directory
-- (spec/fixtures/ldap/: alice, bob 500, carol 1000, mallory locked, erin on
-- conf/lists/locked_accounts.txt), the fixture zones
-- (spec/harness/dns/zones.conf: withmx.test, aonly.test, nullmx.test,
-- timeout.test, servfail.test) and the counters of limit postout_rcpt
-- (build/harness/outpost.conf: 250 per 24 h, max_override 1000; a private
-- store per run).  Faults: slapd paused through spec/harness/ldap-ctl.sh
-- (real); only the counters store failing is a fake.
local sandbox = require "outpost.sandbox"
local limit = require "outpost.limit"
local ldap = require "outpost.ldap"
local outpost = require "outpost"

local policy = sandbox.load_policy(OUTPOST_TEST.lua_dir .. "/policies/postout.lua")

local seq = 0
local function instance()
    seq = seq + 1
    return string.format("spec%x.%d", math.floor(outpost.now()), seq)
end

-- A Postfix RCPT request of alice, who passes every check; `over` changes
-- attributes (false removes one).
local function attrs(over)
    local a = {
        request = "smtpd_access_policy", protocol_state = "RCPT", protocol_name = "ESMTP",
        encryption_protocol = "TLSv1.3", sasl_method = "PLAIN", sasl_username = "alice",
        sender = "alice@example.org", recipient = "bob@example.org",
        client_address = "192.0.2.10", instance = instance(), recipient_count = "0",
    }
    for k, v in pairs(over or {}) do
        if v == false then a[k] = nil else a[k] = v end
    end
    return a
end

local function ask(over, p)
    return (p or policy).on_request({ attrs = attrs(over), service = "postout", tenant = "" })
end

-- The answer's SMTP code, enhanced status and check.
local function expect(code, status, check, a)
    local want = code .. " " .. status .. " "
    assert.equal(want, a.text:sub(1, #want), a.text)
    assert.equal(check, a.check)
end

local function dunno(a) assert.equal("DUNNO", a.text) end

-- The subject PO7 counts for a login: its account, as the directory names
-- it (directory { account_attr }), whatever spelling of the login found it.
local directory = require "site.directory"
local function counted(login) return assert(directory.user(login)).account end

describe("postout", function()
    before_each(function() ldap.flush() end)

    it("accepts a good request: DUNNO", function()
        dunno(ask())
        dunno(ask { sender = "Alice.Adams@EXAMPLE.org", recipient = "someone@withmx.test" })
    end)

    describe("PO1 session is TLS-encrypted", function()
        it("PO1 pass: encrypted", function() dunno(ask { encryption_protocol = "TLSv1.2" }) end)
        it("PO1 fail: 530 5.7.10 and how to set up the client", function()
            local a = ask { encryption_protocol = "" }
            expect(530, "5.7.10", "PO1", a)
            assert.matches("port 465", a.text)
            expect(530, "5.7.10", "PO1", ask { encryption_protocol = false })
        end)
        it("PO1 log-only: goes on", function()
            dunno(ask({ encryption_protocol = "" }, policy.with_modes { PO1 = "log-only" }))
        end)
    end)

    describe("PO2 user authenticated", function()
        it("PO2 fail: 530 5.7.0", function()
            expect(530, "5.7.0", "PO2", ask { sasl_username = "" })
            expect(530, "5.7.0", "PO2", ask { sasl_username = false, sasl_method = false })
        end)
        it("PO2 log-only: the sender's checks have no login to check and pass", function()
            dunno(ask({ sasl_username = "" }, policy.with_modes { PO2 = "log-only" }))
        end)
    end)

    describe("PO3 account is not locked", function()
        it("PO3 fail: locked in the directory (mallory)", function()
            local a = ask { sasl_username = "mallory", sender = "mallory@example.org" }
            expect(550, "5.7.13", "PO3", a)
            assert.matches("mallory is locked", a.text)
            assert.matches("service desk", a.text)
        end)
        it("PO3 fail: on locked_accounts.txt only (erin), in any case", function()
            expect(550, "5.7.13", "PO3", ask { sasl_username = "erin", sender = "erin@students.example.org" })
            expect(550, "5.7.13", "PO3", ask { sasl_username = "ERIN", sender = "erin@students.example.org" })
        end)
        it("PO3 fail: the list's erin also locks the login with a realm (Cyrus SASL's form)", function()
            local a = ask { sasl_username = "erin@students.example.org", sender = "erin@students.example.org" }
            expect(550, "5.7.13", "PO3", a)
            assert.matches("erin@students.example.org is locked", a.text)
        end)
        it("PO3 fail: a login the directory does not know", function()
            local a = ask { sasl_username = "nobody", sender = "nobody@example.org" }
            expect(550, "5.7.1", "PO3", a)
            assert.matches("nobody is not enabled", a.text)
        end)
        it("PO3 log-only: mallory goes on to PO4, which accepts her own address", function()
            dunno(ask({ sasl_username = "mallory", sender = "m.mayer@example.org" },
                policy.with_modes { PO3 = "log-only" }))
        end)
    end)

    describe("PO4 user may use the envelope sender", function()
        it("PO4 pass: own addresses and aliases in any spelling, a +tag of one", function()
            dunno(ask { sender = "a.adams@lrz.example" })
            dunno(ask { sender = "ALICE@example.org." })
            dunno(ask { sender = "alice+lists@example.org" })
            dunno(ask { sasl_username = "user7@example.org", sender = "user7@example.org" })
        end)
        it("PO4 pass: the null sender (read receipts), still counted for the login", function()
            dunno(ask { sender = "" })
        end)
        it("PO4 fail: 553 5.7.1 names the address and the user's own", function()
            local a = ask { sender = "bob@example.org" }
            expect(553, "5.7.1", "PO4", a)
            assert.matches("alice may not send as <bob@example.org>", a.text, 1, true)
            assert.matches("alice@example.org", a.text, 1, true)
            expect(553, "5.7.1", "PO4", ask { sender = "alice@example.org.evil.example" })
            expect(553, "5.7.1", "PO4", ask { sender = "alice-x@example.org" })
        end)
        it("PO4 fail: a sender that is no address: 501 5.1.3", function()
            expect(501, "5.1.3", "PO4", ask { sender = "not an address" })
        end)
        it("PO4 log-only: goes on", function()
            dunno(ask({ sender = "bob@example.org" }, policy.with_modes { PO4 = "log-only" }))
        end)
    end)

    describe("PO5 recipient domain has MX or A/AAAA", function()
        it("PO5 pass: MX, only A, only AAAA", function()
            dunno(ask { recipient = "x@withmx.test" })
            dunno(ask { recipient = "x@aonly.test" })
            dunno(ask { recipient = "x@AAAAONLY.test." })
        end)
        it("PO5 fail: no such domain, or no mail records: 550 5.1.2 with the spelling hint", function()
            local a = ask { recipient = "x@nxdomain.test" }
            expect(550, "5.1.2", "PO5", a)
            assert.matches("check the spelling of <x@nxdomain.test>", a.text, 1, true)
            expect(550, "5.1.2", "PO5", ask { recipient = "x@txtonly.test" })
        end)
        it("PO5 fail: a null MX: 556 5.1.10", function()
            expect(556, "5.1.10", "PO5", ask { recipient = "x@nullmx.test" })
        end)
        it("PO5 fail: a recipient that is no address: 501 5.1.3", function()
            expect(501, "5.1.3", "PO5", ask { recipient = "no-at-sign" })
        end)
        it("PO5 DNS failing: timeout and servfail answer 451 4.4.3, never 5xx", function()
            local a = ask { recipient = "x@q.timeout.test" }
            expect(451, "4.4.3", "PO5", a)
            assert.matches("(timeout)", a.text, 1, true)
            expect(451, "4.4.3", "PO5", ask { recipient = "x@q.servfail.test" })
        end)
        it("PO5 log-only: goes on", function()
            dunno(ask({ recipient = "x@nxdomain.test" }, policy.with_modes { PO5 = "log-only" }))
        end)
    end)

    describe("PO6 recipient exists when its domain is local", function()
        it("PO6 pass: mailboxes, aliases, lists, +tags in local domains", function()
            dunno(ask { recipient = "Bob.Brown@Example.ORG" })
            dunno(ask { recipient = "d.davis@students.example.org" })
            dunno(ask { recipient = "chess@example.org" })
            dunno(ask { recipient = "bob+news@example.org" })
        end)
        it("PO6 pass: another institution's domain is not looked up", function()
            dunno(ask { recipient = "nobody@withmx.test" })
        end)
        it("PO6 fail: 550 5.1.1 for an unknown local recipient", function()
            local a = ask { recipient = "bbo@example.org" }
            expect(550, "5.1.1", "PO6", a)
            assert.matches("no mailbox <bbo@example.org>", a.text, 1, true)
            expect(550, "5.1.1", "PO6", ask { recipient = "nobody+x@example.org" })
            expect(550, "5.1.1", "PO6", ask { recipient = "*@example.org" })
        end)
        it("PO6 log-only: goes on", function()
            dunno(ask({ recipient = "bbo@example.org" }, policy.with_modes { PO6 = "log-only" }))
        end)
    end)

    describe("PO7 recipients per user per 24 h", function()
        it("PO7 pass: counts each accepted recipient for the login, whatever the sender", function()
            local inst = instance()
            dunno(ask { sasl_username = "user11@example.org", sender = "user11@example.org", instance = inst })
            dunno(ask { sasl_username = "user11@example.org", sender = "", instance = inst })
            local r = limit.check("postout_rcpt", counted("user11@example.org"))
            assert.equal(2, r.used)
        end)

        it("PO7 counts the account, not the login's spelling: carol and carol@example.org are one", function()
            local before = limit.check("postout_rcpt", "carol").used
            dunno(ask { sasl_username = "carol", sender = "carol@example.org" })
            dunno(ask { sasl_username = "carol@example.org", sender = "carol@example.org" })
            dunno(ask { sasl_username = "Carol@Example.ORG", sender = "carol@example.org" })
            assert.equal("carol", counted("carol@example.org"))
            assert.equal(before + 3, limit.check("postout_rcpt", "carol").used)
            assert.equal(0, limit.check("postout_rcpt", "carol@example.org").used)
        end)

        it("PO7 fail: 452 4.5.3 at the default 250, with when the next slot frees", function()
            local s = "user12@example.org"
            assert.is_true(limit.add("postout_rcpt", counted(s), 250).ok)
            local a = ask { sasl_username = s, sender = s }
            expect(452, "4.5.3", "PO7", a)
            assert.matches("limit of 250 recipients per 24 hours", a.text, 1, true)
            -- the bucket of the first add leaves the window 23 h 45 min to 24 h from now
            local next_free = limit.check("postout_rcpt", counted(s)).next_free
            local left = next_free - os.time()
            assert.is_true(left > 23 * 3600 and left <= 24 * 3600, tostring(left))
            assert.matches("from " .. os.date("!%Y-%m-%d %H:%M", next_free) .. " UTC (in 2", a.text, 1, true)
        end)

        it("PO7 tiers from the directory: bob 500, carol 1000", function()
            -- up to one below the tier, whatever other specs counted for bob
            local function fill(who, tier, leave)
                local used = limit.check("postout_rcpt", who, 1, { max = tier }).used
                if tier - leave - used > 0 then
                    assert.is_true(limit.add("postout_rcpt", who, tier - leave - used, { max = tier }).ok)
                end
            end
            fill("bob", 500, 1)
            dunno(ask { sasl_username = "bob", sender = "bob@example.org" }) -- the 500th
            local a = ask { sasl_username = "bob", sender = "bob@example.org" }
            expect(452, "4.5.3", "PO7", a)
            assert.matches("limit of 500 recipients", a.text, 1, true)
            fill("carol", 1000, 0)
            a = ask { sasl_username = "carol", sender = "carol@example.org" }
            assert.matches("limit of 1000 recipients", a.text, 1, true)
        end)

        it("PO7 commit at DATA keeps what Postfix accepted, END-OF-MESSAGE changes nothing", function()
            local s, inst = "user13@example.org", instance()
            for _, r in ipairs { "bob@example.org", "x@withmx.test", "x@aonly.test" } do
                dunno(ask { sasl_username = s, sender = s, recipient = r, instance = inst })
            end
            assert.equal(3, limit.check("postout_rcpt", counted(s)).used)
            -- a later restriction rejected one: Postfix says 2 at DATA
            dunno(ask { sasl_username = s, sender = s, protocol_state = "DATA", recipient = "",
                recipient_count = "2", instance = inst })
            assert.equal(2, limit.check("postout_rcpt", counted(s)).used)
            dunno(ask { sasl_username = s, sender = s, protocol_state = "END-OF-MESSAGE",
                recipient = "", recipient_count = "2", instance = inst })
            assert.equal(2, limit.check("postout_rcpt", counted(s)).used)
            assert.equal(0, limit.release(inst)) -- committed is final
        end)

        it("PO7 at DATA checks nothing else: no TLS, no recipient", function()
            dunno(ask { protocol_state = "DATA", encryption_protocol = "", recipient = "" })
        end)

        it("PO7 counters failing: 451 4.3.0 (a fake: the store cannot fail on demand)", function()
            -- the module table the policy calls (busted insulates spec
            -- files, so the spec's own require may give another table)
            local plimit = sandbox.writable(sandbox.require("outpost.limit"))
            local real = plimit.reserve
            plimit.reserve = function() return nil, "unavailable" end
            local ok, a = pcall(ask)
            plimit.reserve = real
            assert.is_true(ok, a)
            expect(451, "4.3.0", "PO7", a)
            assert.matches("(unavailable)", a.text, 1, true)
        end)

        it("PO7 log-only: goes on, counts nothing more", function()
            local s = "user14@example.org"
            assert.is_true(limit.add("postout_rcpt", counted(s), 250).ok)
            dunno(ask({ sasl_username = s, sender = s }, policy.with_modes { PO7 = "log-only" }))
            assert.equal(250, limit.check("postout_rcpt", counted(s)).used)
        end)

        it("PO7 off: counts nothing", function()
            local s = "user15@example.org"
            dunno(ask({ sasl_username = s, sender = s }, policy.with_modes { PO7 = "off" }))
            assert.equal(0, limit.check("postout_rcpt", counted(s)).used)
        end)
    end)

    describe("PO8, G3, G4 at end of message (the milter)", function()
        -- the milter engine's ctx for alice's message with header From `from`
        local function eom(from, extra_headers, body)
            local headers = {
                { name = "From", value = from },
                { name = "Date", value = "Sat, 28 Nov 2026 09:00:00 +0100" },
                { name = "Message-ID", value = "<1.2@example.org>" },
            }
            for _, h in ipairs(extra_headers or {}) do headers[#headers + 1] = h end
            return { phase = "eom", service = "postout", tenant = "", headers = headers,
                body = body or "Hello\r\n", macros = { ["{auth_authen}"] = "alice@example.org" },
                sender = "alice@example.org", client = { address = "192.0.2.10" }, conn = {}, msg = {} }
        end
        it("the policy keeps the body for G4 and answers the milter's end of message", function()
            assert.equal(1048576, policy.keep_body)
            assert.is_function(policy.on_eom)
            dunno(policy.on_eom(eom("Alice <alice.adams@example.org>")))
        end)
        it("PO8 fail: alice's message shows bob's address", function()
            local a = policy.on_eom(eom("Bob <bob@example.org>"))
            assert.equal("PO8", a.check)
            assert.matches("^REJECT 5.7.1 header From bob@example.org is not yours", a.text)
        end)
        it("G3 fail: two From headers; G4 fail: a shortener link", function()
            assert.equal("G3", policy.on_eom(eom("alice@example.org",
                { { name = "From", value = "alice@example.org" } })).check)
            assert.equal("G4", policy.on_eom(eom("alice@example.org", nil, "https://bit.ly/x\r\n")).check)
        end)
        it("log-only, as shipped: the message goes on", function()
            dunno(policy.with_modes({ PO8 = "log-only", G3 = "log-only", G4 = "log-only" })
                .on_eom(eom("Bob <bob@example.org>", nil, "https://bit.ly/x\r\n")))
        end)
    end)

    describe("stages", function()
        it("MAIL runs PO1-PO4 only", function()
            dunno(ask { protocol_state = "MAIL", recipient = "" })
            expect(553, "5.7.1", "PO4", ask { protocol_state = "MAIL", recipient = "", sender = "bob@example.org" })
            expect(530, "5.7.10", "PO1", ask { protocol_state = "MAIL", encryption_protocol = "" })
        end)
        it("CONNECT, EHLO and others check nothing", function()
            dunno(ask { protocol_state = "CONNECT", sasl_username = "", encryption_protocol = "" })
            dunno(ask { protocol_state = "EHLO", sasl_username = "", encryption_protocol = "" })
        end)
    end)

    describe("the directory down (slapd paused: searches time out)", function()
        local CTL = OUTPOST_TEST.lua_dir:gsub("/lua$", "") .. "/spec/harness/ldap-ctl.sh"
        local HARNESS = (OUTPOST_TEST.config_path or ""):match("^(.*)/[^/]*$") or "."
        local function ctl(what)
            return os.execute("HARNESS_DIR=" .. HARNESS .. " " .. CTL .. " " .. what .. " >/dev/null 2>&1")
        end
        before_each(function()
            assert.equal(0, ctl("pause"))
            -- The answer slapd gave after the last resume, to a search that
            -- had timed out, may still be on its way into the cache: let it
            -- arrive, then forget it.
            outpost.sleep(0.2)
            ldap.flush()
        end)
        after_each(function() ctl("resume") end)

        it("PO3 answers 451 4.3.0, never 5xx", function()
            local a = ask { sasl_username = "alice" }
            expect(451, "4.3.0", "PO3", a)
            assert.matches("(timeout)", a.text, 1, true)
        end)
        it("PO4 answers 451 4.3.0 when PO3 is off", function()
            expect(451, "4.3.0", "PO4", ask({}, policy.with_modes { PO3 = "off" }))
        end)
        it("PO6 answers 451 4.3.0 for a local recipient", function()
            expect(451, "4.3.0", "PO6", ask({}, policy.with_modes { PO3 = "off", PO4 = "off" }))
        end)
        it("PO7 answers 451 4.3.0 when it cannot read the tier", function()
            expect(451, "4.3.0", "PO7", ask({ recipient = "x@withmx.test" },
                policy.with_modes { PO3 = "off", PO4 = "off", PO6 = "off" }))
        end)
    end)

    it("counts hits per check", function()
        assert.is_true(policy.stats.PO1.enforced >= 1)
        assert.is_true(policy.stats.PO6.hits >= 1)
    end)
end)
