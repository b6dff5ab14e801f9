-- lua/lib/site/domains.lua: the institution's own domains (the list, then
-- the directory) and which DNS failures are the domain's.
local domains = require "site.domains"

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
end)
