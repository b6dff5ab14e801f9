-- lua/lib/site/directory.lua against either fixture directory: the
-- attribute style of spec/fixtures/ldap/ (build/harness/outpost.conf) or
-- the group style of spec/fixtures/ldap-groups/ (outpost-groups.conf,
-- spec/run-all.sh runs this file with both).  The same people, addresses
-- and accounts in both; only directory { } differs.
local directory = require "site.directory"
local ldap = require "outpost.ldap"
local BASE = require("outpost").config().directory.base

-- entry DNs differ between the fixtures; their RDN and base do not
local function assert_dn(rdn, dn)
    assert.equal(rdn:lower(), dn:lower():match("^([^,]+)"))
    assert.equal(BASE:lower(), dn:lower():sub(-#BASE))
end

describe("directory.user", function()
    before_each(function() ldap.flush() end)

    it("gives a user's addresses, tier and lock state", function()
        local u = assert(directory.user("alice"))
        assert.equal("alice", u.uid)
        assert_dn("uid=alice", u.dn)
        assert.is_false(u.locked)
        assert.equal(250, u.limit) -- no tier in the directory: default_limit
        local a = u.addresses
        table.sort(a)
        assert.same({ "a.adams@lrz.example", "alice.adams@example.org", "alice@example.org",
            "alice@students.example.org" }, a)
    end)

    it("finds the user by the login with realm too (Postfix's SASL name alice@example.org)", function()
        local u = assert(directory.user("alice@example.org"))
        assert_dn("uid=alice", u.dn)
        assert.equal("alice", u.account)
        assert.is_true(directory.may_send_as(u, "alice.adams@example.org"))
        assert.is_false(directory.user("nobody@example.org"))
    end)

    it("reads the limit tiers 250, 500 and 1000", function()
        assert.equal(250, directory.user("dave").limit)
        assert.equal(500, directory.user("bob").limit)
        assert.equal(1000, directory.user("carol").limit)
    end)

    it("sees a locked account", function()
        assert.is_true(directory.user("mallory").locked)
        assert.is_false(directory.user("bob").locked)
    end)

    it("answers false for an unknown user, and for crafted names", function()
        assert.is_false(directory.user("nobody"))
        assert.is_false(directory.user("*"))
        assert.is_false(directory.user("alice)(uid=*"))
        assert.is_false(directory.user("ALICE*"))
    end)

    it("raises on misuse", function()
        assert.has_error(function() directory.user(nil) end)
        assert.has_error(function() directory.user("") end)
        assert.has_error(function() directory.user(42) end)
    end)
end)

describe("directory.may_send_as", function()
    it("compares addresses in normal form", function()
        local u = assert(directory.user("alice"))
        assert.is_true(directory.may_send_as(u, "alice@example.org"))
        assert.is_true(directory.may_send_as(u, "Alice.Adams@EXAMPLE.org."))
        assert.is_true(directory.may_send_as(u, "a.adams@lrz.example"))
        assert.is_false(directory.may_send_as(u, "bob@example.org"))
        assert.is_false(directory.may_send_as(u, "alice@example.org.evil.example"))
        assert.is_false(directory.may_send_as(u, "not an address"))
        assert.is_false(directory.may_send_as(u, nil))
        assert.has_error(function() directory.may_send_as({}, "alice@example.org") end)
    end)
end)

describe("directory.mailbox_exists", function()
    it("knows mailboxes, aliases and lists", function()
        assert.is_true(directory.mailbox_exists("bob@example.org"))
        assert.is_true(directory.mailbox_exists("Bob.Brown@Example.ORG"))
        assert.is_true(directory.mailbox_exists("d.davis@students.example.org"))
        assert.is_true(directory.mailbox_exists("all-staff@example.org"))
        assert.is_true(directory.mailbox_exists("staff@example.org"))
        assert.is_true(directory.mailbox_exists("noreply-ba@lrz.example"))
    end)
    it("answers false for unknown and crafted addresses", function()
        assert.is_false(directory.mailbox_exists("nobody@example.org"))
        assert.is_false(directory.mailbox_exists("*@example.org"))
        assert.is_false(directory.mailbox_exists("*"))
        assert.is_false(directory.mailbox_exists("bob@example.org)(mail=*"))
        assert.is_false(directory.mailbox_exists("no-at-sign"))
    end)
end)

describe("directory.is_local_domain", function()
    it("knows the institution's domains in any spelling", function()
        assert.is_true(directory.is_local_domain("example.org"))
        assert.is_true(directory.is_local_domain("Students.Example.ORG."))
        assert.is_true(directory.is_local_domain("lrz.example"))
        assert.is_true(directory.is_local_domain("b\195\188cher.example"))
    end)
    it("answers false for other domains", function()
        assert.is_false(directory.is_local_domain("example.net"))
        assert.is_false(directory.is_local_domain("evil.example.org"))
        assert.is_false(directory.is_local_domain("*"))
        assert.is_false(directory.is_local_domain("exa mple.org"))
    end)
end)

describe("directory.requires_authenticated_sender", function()
    it("is true for protected lists and their aliases", function()
        assert.is_true(directory.requires_authenticated_sender("all-staff@example.org"))
        assert.is_true(directory.requires_authenticated_sender("STAFF@example.org"))
        assert.is_true(directory.requires_authenticated_sender("all-students@students.example.org"))
    end)
    it("is false for open lists, people and unknown addresses", function()
        assert.is_false(directory.requires_authenticated_sender("chess@example.org"))
        assert.is_false(directory.requires_authenticated_sender("alice@example.org"))
        assert.is_false(directory.requires_authenticated_sender("nobody@example.org"))
        assert.is_false(directory.requires_authenticated_sender("*"))
    end)
end)

describe("directory.function_account", function()
    it("gives every tenant's account with senders, agreed limit and networks", function()
        local want = { ba = { 5000, "lrz.example" }, hm = { 2000, "hm.example.org" },
            lm = { 20000, "example.org" }, tu = { 100000, "tu.example.org" } }
        for t, w in pairs(want) do
            local f = assert(directory.function_account("app-" .. t))
            assert.equal(w[1], f.limit)
            assert.is_true(directory.enabled_for(f, t))
            assert.is_false(f.locked)
            assert.is_true(directory.may_send_as(f, "noreply-" .. t .. "@" .. w[2]))
            assert.is_true(directory.may_send_as(f, "portal-" .. t .. "@" .. w[2]))
            assert.is_true(#f.networks >= 1)
        end
        local tu = directory.function_account("app-tu")
        table.sort(tu.networks)
        assert.same({ "10.187.0.0/16", "192.0.2.0/24", "2001:db8:1::/48" }, tu.networks)
        assert.is_false(directory.enabled_for(directory.function_account("app-ba"), "tu"))
    end)
    it("knows locked accounts, accounts without limit or networks, and no people", function()
        assert.is_true(directory.function_account("app-locked").locked)
        local s = assert(directory.function_account("app-shared"))
        assert.is_nil(s.limit)
        assert.same({}, s.networks)
        assert.is_true(directory.enabled_for(s, "hm") and directory.enabled_for(s, "tu"))
        assert.is_false(directory.enabled_for(s, "lm"))
        assert.is_false(directory.function_account("alice"))
        assert.is_false(directory.function_account("app-*"))
    end)
end)
