-- Run by spec/e2e/test_ldap.sh with uris = [the silent server] (accepts TCP,
-- never answers) and connect_timeout = 5s: searches answer timeout within
-- their own timeout, not the connect timeout.
local ldap = require "outpost.ldap"
local outpost = require "outpost"

describe("a server that never answers", function()
    it("makes a search answer timeout within its timeout", function()
        local t0 = outpost.now()
        local r, err = ldap.search { base = "dc=example,dc=org", filter = "(uid=%s)", args = { "alice" }, timeout = 0.3 }
        local took = outpost.now() - t0
        assert.is_nil(r)
        assert.equal("timeout", err)
        assert.is_true(took >= 0.25 and took < 1.5, "took " .. took)
        assert.equal(1, ldap.stats().timeouts)
    end)
end)
