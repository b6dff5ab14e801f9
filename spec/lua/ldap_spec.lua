-- outpost.ldap against the harness's slapd (spec/fixtures/ldap/): answers,
-- negative answers, error tokens, escaping, the cache.  Faults (slapd
-- killed, a silent server, failover) are in spec/e2e/test_ldap.sh, which
-- runs spec/ldap/*_spec.lua with configurations of their own.
local ldap = require "outpost.ldap"

local BASE = "dc=example,dc=org"

local function uids(entries)
    local t = {}
    for _, e in ipairs(entries) do t[#t + 1] = e.attrs.uid[1] end
    table.sort(t)
    return t
end

describe("outpost.ldap.search", function()
    before_each(function() ldap.flush() end)

    it("returns entries with dn and every value of every attribute asked for", function()
        local r, err = ldap.search { base = BASE, filter = "(uid=%s)", args = { "alice" },
            attrs = { "uid", "mail", "mailLocalAddress" } }
        assert.is_nil(err)
        assert.equal(1, #r)
        assert.equal("uid=alice,ou=people,dc=example,dc=org", r[1].dn)
        assert.same({ "alice@example.org" }, r[1].attrs.mail)
        local aliases = r[1].attrs.mailLocalAddress
        table.sort(aliases)
        assert.same({ "a.adams@lrz.example", "alice.adams@example.org", "alice@students.example.org" }, aliases)
        assert.is_nil(r[1].attrs.sn) -- not asked for
    end)

    it("finds attributes in any case and lists them in lower case", function()
        local r = assert(ldap.search { base = BASE, filter = "(uid=%s)", args = { "bob" }, attrs = { "mailSendLimit" } })
        assert.same({ "500" }, r[1].attrs.mailsendlimit)
        assert.same({ "500" }, r[1].attrs.MAILSENDLIMIT)
        local names = {}
        for k in pairs(r[1].attrs) do names[#names + 1] = k end
        assert.same({ "mailsendlimit" }, names)
    end)

    it("answers an empty list when nothing matches", function()
        local r, err = ldap.search { base = BASE, filter = "(uid=%s)", args = { "nobody-here" } }
        assert.is_nil(err)
        assert.same({}, r)
    end)

    it("takes %1 more than once, and scopes", function()
        local r = assert(ldap.search { base = BASE, filter = "(|(mail=%1)(mailLocalAddress=%1))",
            args = { "a.adams@lrz.example" }, attrs = { "uid" } })
        assert.same({ "alice" }, uids(r))
        r = assert(ldap.search { base = "uid=bob,ou=people," .. BASE, scope = "base", filter = "(objectClass=*)", attrs = { "uid" } })
        assert.same({ "bob" }, uids(r))
        r = assert(ldap.search { base = "ou=functions," .. BASE, scope = "one", filter = "(mailServiceTenant=%s)",
            args = { "tu" }, attrs = { "uid" } })
        assert.same({ "app-shared", "app-tu" }, uids(r))
    end)

    it("answers nosuchobject for a base that does not exist", function()
        assert.same({ nil, "nosuchobject" }, { ldap.search { base = "ou=nowhere," .. BASE, filter = "(uid=x)" } })
    end)

    it("answers sizelimit when more entries match than size_limit", function()
        assert.same({ nil, "sizelimit" }, { ldap.search { base = BASE, filter = "(uid=user*)", attrs = { "uid" } } })
    end)

    it("answers invalid for a base that is no DN", function()
        assert.same({ nil, "invalid" }, { ldap.search { base = "this is not a dn", filter = "(uid=x)" } })
    end)

    it("raises on misuse", function()
        local function bad(q, pat)
            local ok, err = pcall(ldap.search, q)
            assert.is_false(ok)
            assert.matches(pat, err)
        end
        bad({ filter = "(uid=x)" }, "base must be a string")
        bad({ base = BASE }, "filter must be a string")
        bad({ base = BASE, filter = "(uid=%s)" }, "wants argument 1, 0 given")
        bad({ base = BASE, filter = "(uid=%s)", args = { "a", "b" } }, "argument 2 is not used")
        bad({ base = BASE, filter = "(uid=%x)", args = { "a" } }, "bad placeholder")
        bad({ base = BASE, filter = "(uid=%s", args = { "a" } }, "unbalanced")
        bad({ base = BASE, filter = "(uid=%s)", args = { {} } }, "strings or numbers")
        bad({ base = BASE, filter = "(uid=x)", scope = "deep" }, "scope must be")
        bad({ base = BASE, filter = "(uid=x)", timeout = 0 }, "timeout must be")
        bad({ base = BASE, filter = "(uid=x)", attrs = "mail" }, "attrs must be")
        assert.has_error(function() ldap.search("(uid=x)") end)
    end)

    it("refuses to wait inside a table.sort callback", function()
        local ok, err = pcall(table.sort, { 3, 1, 2 }, function(a, b)
            ldap.search { base = BASE, filter = "(uid=%s)", args = { "alice" } }
            return a < b
        end)
        assert.is_false(ok)
        assert.matches("cannot wait here", err)
    end)
end)

describe("outpost.ldap escaping", function()
    before_each(function() ldap.flush() end)

    local function by_mail(v)
        return ldap.search { base = BASE, filter = "(&(objectClass=inetOrgPerson)(|(mail=%1)(mailLocalAddress=%1)))",
            args = { v }, attrs = { "uid" } }
    end

    it("matches values full of filter syntax exactly, as one value", function()
        assert.same({ "star" }, uids(assert(by_mail("st*r@example.org"))))
        assert.same({ "star" }, uids(assert(by_mail("(paren)@example.org"))))
        assert.same({ "star" }, uids(assert(by_mail("back\\slash@example.org"))))
        -- the * is a literal star, not a wildcard: stXr does not match
        assert.same({}, assert(by_mail("s*@example.org")))
    end)

    it("never lets a crafted value widen the filter", function()
        -- The same text written into the template is a wider filter (it
        -- matches every person, more than size_limit)...
        assert.same({ nil, "sizelimit" }, { ldap.search { base = BASE,
            filter = "(&(objectClass=inetOrgPerson)(mail=*)(objectClass=*))", attrs = { "uid" } } })
        -- ... but as an argument it is one assertion value that matches nothing.
        for _, v in ipairs { "*", "*)(objectClass=*", "x*)(|(uid=*", "alice)(uid=*", "*)", "\\2a", "alice\0",
            "\0*", "(|(uid=*))" } do
            local r, err = ldap.search { base = BASE, filter = "(&(objectClass=inetOrgPerson)(mail=%s))",
                args = { v }, attrs = { "uid" } }
            assert.is_nil(err, v)
            assert.same({}, r, v)
        end
        -- and the user whose name is a prefix of the crafted value is not found
        assert.same({}, assert(ldap.search { base = BASE, filter = "(uid=%s)", args = { "alice\0" } }))
    end)

    it("treats numbers as their decimal text", function()
        local r = assert(ldap.search { base = BASE, filter = "(&(uid=%s)(mailSendLimit=%s))", args = { "carol", 1000 },
            attrs = { "uid" } })
        assert.same({ "carol" }, uids(r))
    end)
end)

describe("outpost.ldap cache", function()
    before_each(function() ldap.flush() end)

    it("answers a repeated search from the cache without asking the server", function()
        local q = { base = BASE, filter = "(uid=%s)", args = { "carol" }, attrs = { "mail" } }
        local s0 = ldap.stats()
        local r1 = assert(ldap.search(q))
        local s1 = ldap.stats()
        assert.equal(s0.sent + 1, s1.sent)
        local r2 = assert(ldap.search(q))
        local s2 = ldap.stats()
        assert.equal(s1.sent, s2.sent)
        assert.equal(s1.cache_hits + 1, s2.cache_hits)
        assert.same(r1, r2)
        assert.is_true(s2.cached >= 1)
    end)

    it("caches negative answers too, but not with cache = false", function()
        local q = { base = BASE, filter = "(uid=%s)", args = { "ghost" } }
        assert.same({}, ldap.search(q))
        local s1 = ldap.stats()
        assert.same({}, ldap.search(q))
        assert.equal(s1.sent, ldap.stats().sent)
        q.cache = false
        assert.same({}, ldap.search(q))
        assert.equal(s1.sent + 1, ldap.stats().sent)
    end)

    it("keys on the filter, base, scope and attributes", function()
        assert(ldap.search { base = BASE, filter = "(uid=%s)", args = { "dave" }, attrs = { "mail" } })
        local s1 = ldap.stats()
        assert(ldap.search { base = BASE, filter = "(uid=%s)", args = { "dave" }, attrs = { "uid" } })
        assert(ldap.search { base = "ou=people," .. BASE, filter = "(uid=%s)", args = { "dave" }, attrs = { "mail" } })
        assert(ldap.search { base = BASE, filter = "(uid=%s)", args = { "erin" }, attrs = { "mail" } })
        assert.equal(s1.sent + 3, ldap.stats().sent)
    end)

    it("is emptied by flush", function()
        local q = { base = BASE, filter = "(uid=%s)", args = { "bob" } }
        assert(ldap.search(q))
        ldap.flush()
        assert.equal(0, ldap.stats().cached)
        local s1 = ldap.stats()
        assert(ldap.search(q))
        assert.equal(s1.sent + 1, ldap.stats().sent)
    end)
end)
