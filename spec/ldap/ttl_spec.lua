-- Run by spec/e2e/test_ldap.sh with cache_ttl = 400ms, negative_ttl = 200ms
-- and cache_size = 2: answers expire after their TTL, the LRU bound holds.
local ldap = require "outpost.ldap"
local outpost = require "outpost"

local function find(uid)
    return assert(ldap.search { base = "dc=example,dc=org", filter = "(uid=%s)", args = { uid }, attrs = { "uid" } })
end

describe("cache TTLs and bound", function()
    it("reuses an answer with entries for cache_ttl, then asks again", function()
        find("alice")
        local s1 = ldap.stats()
        outpost.sleep(0.25)
        find("alice")                                   -- within 400ms: cached
        assert.equal(s1.sent, ldap.stats().sent)
        outpost.sleep(0.25)
        find("alice")                                   -- after: asked again
        assert.equal(s1.sent + 1, ldap.stats().sent)
    end)

    it("reuses an empty answer only for negative_ttl", function()
        assert.same({}, find("ghost"))
        local s1 = ldap.stats()
        assert.same({}, find("ghost"))
        assert.equal(s1.sent, ldap.stats().sent)
        outpost.sleep(0.25)
        assert.same({}, find("ghost"))
        assert.equal(s1.sent + 1, ldap.stats().sent)
    end)

    it("keeps at most cache_size answers, dropping the least recently used", function()
        ldap.flush()
        find("bob"); find("carol")
        find("bob")                                     -- bob is now the most recent
        find("dave")                                    -- evicts carol
        assert.equal(2, ldap.stats().cached)
        local s1 = ldap.stats()
        find("bob")
        assert.equal(s1.sent, ldap.stats().sent)
        find("carol")
        assert.equal(s1.sent + 1, ldap.stats().sent)
    end)
end)
