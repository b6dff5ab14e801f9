-- The directory vocabulary's configuration (lua/lib/site/directory.lua,
-- directory { } in docs/config.md, "Fitting your directory"): flags from
-- groups (member, uniqueMember, memberUid), tier tables, the login rule
-- and the canonical account.  Vocabularies are built with directory.new on
-- the group-style fixture (spec/fixtures/ldap-groups/, suffix
-- dc=campus,dc=test, in the harness's slapd beside spec/fixtures/ldap/), so
-- this file runs under either harness config.
local directory = require "site.directory"
local ldap = require "outpost.ldap"

local B = "dc=campus,dc=test"
local GROUPS = {
    base = B,
    login = "without_realm",
    account_attr = "uid",
    user_filter = "(&(objectClass=inetOrgPerson)(objectClass=posixAccount)(uid=%s))",
    address_filter = "(|(mail=%1)(campusMailAlias=%1))",
    domain_filter = "(&(objectClass=campusMailDomainEntry)(campusMailDomain=%s))",
    protected_filter = "",
    protected_group = "cn=closed-lists,ou=groups," .. B,
    function_filter = "(&(objectClass=account)(uid=%s))",
    function_group = "cn=applications,ou=groups," .. B,
    sender_attrs = { "mail", "campusMailAlias" },
    lock_attr = "",
    lock_group = "cn=locked,ou=groups," .. B,
    tenants_attr = "",
    tenant_group = "cn=tenant-%t-apps,ou=groups," .. B,
    member_attrs = { "uniqueMember" },
    networks_attr = "campusClientNet",
    user_limit_attr = "campusMailTier",
    user_limit_tiers = { "1=250", "2=500", "3=1000" },
    function_limit_attr = "campusSendQuota",
    function_limit_tiers = {},
    default_limit = 250,
}

local function vocabulary(over)
    local s = {}
    for k, v in pairs(GROUPS) do s[k] = v end
    for k, v in pairs(over or {}) do s[k] = v end
    return directory.new(s)
end

describe("directory { } group style", function()
    before_each(function() ldap.flush() end)

    it("locks by membership of a group, whichever member attribute it uses", function()
        for _, g in ipairs {
            { "cn=locked,ou=groups," .. B, "uniqueMember" },
            { "cn=locked-names,ou=groups," .. B, "member" },
            { "cn=locked-posix,ou=groups," .. B, "memberUid" },
        } do
            local d = vocabulary { lock_group = g[1], member_attrs = { g[2] }, function_group = "" }
            assert.is_true(d.user("mallory").locked, g[2])
            assert.is_true(d.user("trent").locked, g[2])
            assert.is_false(d.user("alice").locked, g[2])
            assert.is_false(d.user("bob").locked, g[2])
            assert.is_true(d.function_account("app-locked").locked, g[2])
            assert.is_false(d.function_account("app-lm").locked, g[2])
        end
    end)

    it("locks by either the attribute or the group", function()
        local attr_only = vocabulary { lock_attr = "pwdAccountLockedTime", lock_group = "" }
        assert.is_true(attr_only.user("mallory").locked)
        assert.is_false(attr_only.user("trent").locked)
        local either = vocabulary { lock_attr = "pwdAccountLockedTime" }
        assert.is_true(either.user("mallory").locked)
        assert.is_true(either.user("trent").locked)
    end)

    it("reads one group entry for every member check: one search per group, not per request", function()
        local d = vocabulary()
        local who = { "alice", "bob", "carol", "dave", "erin", "mallory", "trent" }
        local before = ldap.stats().sent
        for _, u in ipairs(who) do assert.is_table(d.user(u)) end
        -- one search per user, and one for cn=locked
        assert.equal(#who + 1, ldap.stats().sent - before)
        before = ldap.stats().sent
        for _, u in ipairs(who) do d.user(u) end
        assert.equal(0, ldap.stats().sent - before) -- all from the cache
    end)

    it("reads every member attribute it is given (a directory may mix group classes)", function()
        local all = { "member", "uniqueMember", "memberUid" }
        for _, g in ipairs { "cn=locked", "cn=locked-names", "cn=locked-posix" } do
            local d = vocabulary { lock_group = g .. ",ou=groups," .. B, member_attrs = all }
            assert.is_true(d.user("trent").locked, g)
            assert.is_true(d.function_account("app-locked").locked, g)
            assert.is_false(d.user("alice").locked, g)
        end
        -- one that names none of the group's attributes sees no members
        local wrong = vocabulary { lock_group = "cn=locked-posix,ou=groups," .. B, member_attrs = { "member" } }
        assert.is_false(wrong.user("trent").locked)
        assert.has_error(function() vocabulary { member_attrs = { "owner" } } end)
    end)

    it("a group that does not exist has no members", function()
        local d = vocabulary { lock_group = "cn=no-such-group,ou=groups," .. B }
        assert.is_false(d.user("mallory").locked)
    end)

    it("reads a tier through the table, and a count without one", function()
        local d = vocabulary()
        assert.equal(250, d.user("dave").limit)   -- tier 1
        assert.equal(500, d.user("bob").limit)    -- tier 2
        assert.equal(1000, d.user("carol").limit) -- tier 3
        assert.equal(250, d.user("alice").limit)  -- no tier: default_limit
        local odd = vocabulary { user_limit_tiers = { "1=10", "2=20" } }
        assert.equal(250, odd.user("carol").limit) -- tier 3 not in the table: default_limit
        assert.equal(20000, d.function_account("app-lm").limit) -- AO8: a count
        local tiers = vocabulary { function_limit_attr = "campusMailTier", function_limit_tiers = { "1=7" } }
        assert.is_nil(tiers.function_account("app-lm").limit)
        assert.has_error(function() vocabulary { user_limit_tiers = { "gold" } } end)
    end)

    it("a function account is an entry of function_filter in function_group", function()
        local d = vocabulary()
        assert.equal("app-lm", d.function_account("app-lm").account)
        assert.is_false(d.function_account("app-retired")) -- not in cn=applications
        assert.is_false(d.function_account("alice"))       -- a person
        assert.is_false(d.function_account_by_sender("retired-app@example.org"))
        assert.equal("app-tu", d.function_account_by_sender("portal-tu@tu.example.org").uid)
        assert.is_true(vocabulary({ function_group = "" }).function_account("app-retired") ~= false)
    end)

    it("is enabled for a tenant by the group of its pattern", function()
        local d = vocabulary()
        local shared = assert(d.function_account("app-shared"))
        assert.is_true(d.enabled_for(shared, "hm"))
        assert.is_true(d.enabled_for(shared, "TU"))
        assert.is_false(d.enabled_for(shared, "lm"))
        assert.is_false(d.enabled_for(shared, "nosuch"))
        assert.is_false(d.enabled_for(shared, "x,cn=applications"))
        assert.is_true(d.enabled_for(d.function_account("app-lm"), "lm"))
        assert.has_error(function() d.enabled_for({}, "lm") end)
    end)

    it("protects a recipient by membership of a group", function()
        local d = vocabulary()
        assert.is_true(d.requires_authenticated_sender("all-staff@example.org"))
        assert.is_true(d.requires_authenticated_sender("Staff@Example.ORG"))
        assert.is_true(d.requires_authenticated_sender("all-students@students.example.org"))
        assert.is_false(d.requires_authenticated_sender("chess@example.org"))
        assert.is_false(d.requires_authenticated_sender("alice@example.org"))
        assert.is_false(d.requires_authenticated_sender("nobody@example.org"))
    end)
end)

describe("directory { login }", function()
    before_each(function() ldap.flush() end)

    it("as_given looks up the login unchanged", function()
        local d = vocabulary { login = "as_given" }
        assert.is_false(d.user("alice@example.org"))
        assert.is_false(d.function_account("app-lm@example.org"))
        assert.equal("alice", d.user("alice").account)
    end)

    it("without_realm: users and function accounts alike", function()
        local d = vocabulary { login = "without_realm" }
        assert.equal("alice", d.user("alice@example.org").account)
        assert.equal("app-lm", d.function_account("app-lm@example.org").account)
        assert.equal("alice", d.user("alice").account)
    end)

    it("both: as given first, then without the realm", function()
        local d = vocabulary { login = "both", user_filter = "(&(objectClass=inetOrgPerson)(|(uid=%1)(mail=%1)))" }
        local u = d.user("alice@example.org")
        assert.equal("alice", u.account)
        assert.equal("alice@example.org", u.uid)
        assert.equal("app-tu", d.function_account("app-tu@tu.example.org").account)
        assert.is_false(d.user("nobody@example.org"))
    end)

    it("the configured rule finds a function account by its login with realm (Cyrus SASL's form)", function()
        -- the harness's configured vocabulary, whichever fixture it runs on
        local f = assert(directory.function_account("app-lm@example.org"))
        assert.equal("app-lm", f.account)
        assert.is_true(directory.may_send_as(f, "noreply-lm@example.org"))
        assert.equal(directory.user("alice").account, directory.user("alice@example.org").account)
    end)
end)
