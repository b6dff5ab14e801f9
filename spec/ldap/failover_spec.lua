-- Run by spec/e2e/test_ldap.sh with uris = [a dead port, a silent server,
-- the harness's slapd] and a short connect_timeout: the answers come from
-- the third.
local ldap = require "outpost.ldap"

describe("failover", function()
    it("answers from the first server that answers", function()
        local r, err = ldap.search { base = "dc=example,dc=org", filter = "(uid=%s)", args = { "alice" }, attrs = { "mail" },
            timeout = 5 }
        assert.is_nil(err)
        assert.same({ "alice@example.org" }, r[1].attrs.mail)
        assert.is_true(ldap.stats().ready >= 1)
    end)
end)
