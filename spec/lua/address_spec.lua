-- lua/lib/site/address.lua: one normal form for every way to write an address.
local address = require "site.address"

describe("address.normalize", function()
    it("lower-cases, strips <> and the +tag, and A-labels the domain", function()
        for _, v in ipairs {
            "alice@example.org", "Alice@Example.ORG", "<alice@example.org>", " alice@example.org. ",
            "alice+news@example.org", "ALICE+x+y@EXAMPLE.org",
        } do
            assert.equal("alice@example.org", address.normalize(v), v)
        end
        assert.equal("hans@xn--bcher-kva.example", address.normalize("Hans@Bücher.example"))
        assert.equal("hans@xn--bcher-kva.example", address.normalize("hans+1@xn--bcher-kva.example"))
    end)

    it("keeps the tag or the case when asked", function()
        assert.equal("alice+news@example.org", address.normalize("alice+news@example.org", { strip_tag = false }))
        assert.equal("alice@example.org", address.normalize("alice-news@example.org", { separators = "+-" }))
        assert.equal("Alice@example.org", address.normalize("Alice@EXAMPLE.org", { keep_case = true }))
    end)

    it("knows the null sender", function()
        assert.equal("", address.normalize(""))
        assert.equal("", address.normalize("<>"))
        assert.is_true(address.parse("<>").null)
    end)

    it("parses the parts", function()
        local a = address.parse("Bob+Tag@Example.org")
        assert.same({ local_part = "bob", domain = "example.org", tag = "Tag" }, a)
        assert.equal("a@b@example.org", address.normalize("a@b@example.org")) -- the last @ splits
    end)

    it("refuses what is not an address", function()
        for _, v in ipairs { "alice", "@example.org", "alice@", "a b@example.org", "alice@exa mple.org",
            string.rep("x", 65) .. "@example.org", "alice@exa..mple.org" } do
            local a, err = address.normalize(v)
            assert.is_nil(a, v)
            assert.equal("badaddress", err)
        end
        assert.has_error(function() address.normalize(nil) end)
    end)
end)

describe("address.subject", function()
    it("counts an authenticated user whatever sender they give", function()
        for _, sender in ipairs { "", "alice@example.org", "other@example.net", "ALICE+x@example.org" } do
            assert.equal("alice@example.org",
                address.subject { sasl_username = "Alice@Example.ORG", sender = sender })
        end
        assert.equal("alice", address.subject { sasl_username = "Alice", sender = "x@y.org" })
    end)

    it("counts the sender without SASL, the null sender per client", function()
        assert.equal("app@example.org", address.subject { sender = "App+1@Example.org" })
        assert.equal("<>@192.0.2.1", address.subject { sender = "", client_address = "192.0.2.1" })
    end)
end)

describe("address.without_realm", function()
    it("splits a login at its last @, as login:match('^(.+)@[^@]+$')", function()
        assert.equal("alice", address.without_realm("alice@example.org"))
        for _, login in ipairs { "alice", "alice@", "@example.org", "@", "", "a@b@example.org",
            "a@b@", "@@", "a@@b", "x@y", "\"a@b\"@example.org" } do
            assert.equal(login:match("^(.+)@[^@]+$"), address.without_realm(login), login)
        end
    end)
end)

describe("address.parse's caches", function()
    it("answer the same for the same string and options, and apart for other options", function()
        local form = { strip_tag = false }
        local a = address.parse("Carol+x@example.org", form)
        assert.equal(a, address.parse("Carol+x@example.org", form)) -- the shared table
        assert.equal("carol+x", a.local_part)
        assert.equal("carol", address.parse("Carol+x@example.org").local_part)
        assert.equal("carol@example.org", address.normalize("Carol+x@example.org"))
        assert.equal("carol+x@example.org", address.normalize("Carol+x@example.org", form))
        for _ = 1, 2 do -- a refusal, cached
            local bad, err = address.parse("no-at-sign")
            assert.is_nil(bad)
            assert.equal("badaddress", err)
            assert.same({ nil, "badaddress" }, { address.normalize("no-at-sign") })
        end
    end)
end)
