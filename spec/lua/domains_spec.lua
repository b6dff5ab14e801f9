-- lua/lib/site/domains.lua: the institution's own domains (the list, then
-- the directory) and which DNS failures are the domain's.
local domains = require "site.domains"
local address = require "site.address"

describe("site.domains", function()
    it("LOCAL is local_domains.txt in outpost.domain form", function()
        assert.is_true(domains.LOCAL["example.org"])
        assert.is_true(domains.LOCAL["xn--bcher-kva.example"])
        assert.is_nil(domains.LOCAL["withmx.test"])
    end)

    it("is_local asks the list first, then the directory", function()
        assert.is_true(domains.is_local("example.org"))
        assert.is_false(domains.is_local("withmx.test"))
    end)

    it("is_permanent: the domain's failures (5xx), not ours (4xx)", function()
        for _, e in ipairs { "nullmx", "nxdomain", "nodata", "badname" } do
            assert.is_true(domains.is_permanent(e), e)
        end
        for _, e in ipairs { "timeout", "servfail", "refused", "formerr", "cancelled" } do
            assert.is_false(domains.is_permanent(e), e)
        end
        assert.is_false(domains.is_permanent(nil))
    end)
    it("address.untagged: the address without its tag, nil when it has none", function()
        assert.equal("bob@example.org", address.untagged("Bob+News@Example.ORG"))
        assert.is_nil(address.untagged("bob@example.org"))
        assert.is_nil(address.untagged("<>"))
        assert.equal("bob@example.org", address.untagged("bob-news@example.org", "-+"))
        assert.is_nil(address.untagged("bob+news@example.org", false))
    end)

    it("has_mailbox: the address, or the address without its tag, receives mail", function()
        assert.is_true(domains.has_mailbox("bob@example.org"))
        assert.is_true(domains.has_mailbox("bob+news@example.org"))
        assert.is_false(domains.has_mailbox("bob+news@example.org", false))
        assert.is_false(domains.has_mailbox("nobody+x@example.org"))
    end)
end)
