-- directory.function_account_by_sender (lua/lib/site/directory.lua), AO8: the
-- function account that owns an envelope sender, for appout stage 2, which
-- has no SASL login.  Against the fixture directory (spec/fixtures/ldap/).
local directory = require "site.directory"
local ldap = require "outpost.ldap"

describe("directory.function_account_by_sender (AO8)", function()
    before_each(function() ldap.flush() end)

    it("finds each tenant's account by either of its senders, with its agreed limit", function()
        local want = { ["noreply-ba@lrz.example"] = { "app-ba", 5000 },
            ["portal-hm@hm.example.org"] = { "app-hm", 2000 },
            ["noreply-lm@example.org"] = { "app-lm", 20000 },
            ["portal-tu@tu.example.org"] = { "app-tu", 100000 } }
        for sender, w in pairs(want) do
            local f = assert(directory.function_account_by_sender(sender), sender)
            assert.equal(w[1], f.uid)
            assert.equal(w[2], f.limit)
            assert.is_true(directory.may_send_as(f, sender))
        end
    end)

    it("compares in normal form", function()
        assert.equal("app-lm", directory.function_account_by_sender("Portal-LM@Example.ORG.").uid)
    end)

    it("knows an account without agreed limit, and a locked one", function()
        local s = assert(directory.function_account_by_sender("shared-app@example.org"))
        assert.equal("app-shared", s.uid)
        assert.is_nil(s.limit)
        assert.is_true(directory.function_account_by_sender("noreply-locked@example.org").locked)
    end)

    it("answers false for people, unknown and crafted addresses", function()
        assert.is_false(directory.function_account_by_sender("alice@example.org"))
        assert.is_false(directory.function_account_by_sender("nobody@example.org"))
        assert.is_false(directory.function_account_by_sender("*@example.org"))
        assert.is_false(directory.function_account_by_sender("noreply-*"))
        assert.is_false(directory.function_account_by_sender("no-at-sign"))
        assert.has_error(function() directory.function_account_by_sender("") end)
        assert.has_error(function() directory.function_account_by_sender(nil) end)
    end)
end)
